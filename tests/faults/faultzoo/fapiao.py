"""Real `fapiao serve` instances in the states the doctor must name."""
import json
import ssl
import subprocess
import time
from pathlib import Path

from . import BIN, SLOW

_HELP = {}


def serve_help():
    if "serve" not in _HELP:
        r = subprocess.run([BIN, "serve", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        _HELP["serve"] = r.stdout.decode(errors="replace")
    return _HELP["serve"]


def cli_flag(args, flag):
    """Whether `fapiao ARGS --help` mentions flag (a feature of a later issue)."""
    key = " ".join(args)
    if key not in _HELP:
        try:
            r = subprocess.run([BIN] + list(args) + ["--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            _HELP[key] = r.stdout.decode(errors="replace")
        except (OSError, subprocess.TimeoutExpired):
            _HELP[key] = ""
    return flag in _HELP[key].replace("[", " ").replace("]", " ").split()


def create_key(srv, *args):
    """`fapiao keys create --data-dir D --json ARGS` (issue 7) -> its JSON."""
    r = subprocess.run([BIN, "keys", "create", "--data-dir", str(srv.data_dir), "--json"]
                       + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60 * SLOW)
    assert r.returncode == 0, "fapiao keys create %s: %s" % (args, r.stderr.decode())
    return json.loads(r.stdout)


def serve_flag(*candidates):
    """The first of the candidate `fapiao serve` flags this binary has, or None."""
    words = serve_help().replace("[", " ").replace("]", " ").replace(",", " ").split()
    for c in candidates:
        if c in words:
            return c
    return None


def with_cert(make_server, leaf, root_cert, init_args=(), serve_args=()):
    """A real fapiao server whose TLS certificate is one of the test leaves."""
    srv = make_server(start=False, init_args=init_args, serve_args=serve_args)
    tls = Path(srv.ca_cert).parent
    (tls / "server.crt").write_bytes(Path(leaf.chain).read_bytes())
    (tls / "server.key").write_bytes(Path(leaf.key).read_bytes())
    srv._ctx = ssl.create_default_context(cafile=root_cert)
    srv.start()
    return srv


def wait_readyz(srv, pred, timeout=15, what="/readyz"):
    """Polls GET /readyz until pred(response) holds; returns the response."""
    deadline = time.monotonic() + timeout * SLOW
    r = None
    while time.monotonic() < deadline:
        r = srv.request("GET", "/readyz", auth=False)
        if pred(r):
            return r
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s: last answer %r" % (what, r))
