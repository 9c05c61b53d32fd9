"""Black-box test helpers for the fapiao binary.

Everything here talks to a real `fapiao serve` process over HTTPS on
127.0.0.1 only, verifying the server certificate the binary generated at
`fapiao init` (cafile=ca_cert, check_hostname on).

Environment:
  FAPIAO_BIN        path of the binary (default /work/main/build/fapiao)
  FAPIAO_SANITIZED  "1" when the binary is an ASan/UBSan build: load counts
                    are scaled down and timeouts scaled up.
"""
import atexit
import ctypes
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("FAPIAO_BIN", str(REPO / "build" / "fapiao"))
SANITIZED = os.environ.get("FAPIAO_SANITIZED") == "1"
# Multiplier for timeouts; divisor for load counts.
SLOW = 3 if SANITIZED else 1
# No config file of the host's (/etc/fapiao/fapiao.conf, or a FAPIAO_CONFIG
# the shell exported) reaches a fapiao the tests start: init, serve and every
# CLI command read its database setting.  /dev/null is the default for every
# process started from here on (the faults and drills suites load this file
# too); fapiao_env() forces it for the helpers below whatever a test put into
# os.environ, and a test of the config file sets its own (test_config.py).
# Whether the environment the tests were started from named a config file
# itself (kept across the loads of this file: the faults suite loads it too).
os.environ.setdefault("FAPIAO_TEST_CONFIG_GIVEN", "1" if os.environ.get("FAPIAO_CONFIG") else "")
os.environ["FAPIAO_CONFIG"] = os.devnull

# A fapiao package installed on the host once broke the suite.  What forces
# FAPIAO_CONFIG above does not reach the processes some tests start with an
# environment of their own (env={"LANG": "C"} to check a message's language):
# those read /etc/fapiao/fapiao.conf.  So the suite refuses to start beside an
# /etc/fapiao unless the environment it was started from sets FAPIAO_CONFIG.
HOST_ETC = Path("/etc/fapiao")


def host_config_problem(etc=HOST_ETC, given=None):
    """Why the tests must not run on this host (zh + en), or None."""
    if given is None:
        given = os.environ.get("FAPIAO_TEST_CONFIG_GIVEN")
    if given or not etc.exists():
        return None
    return ("%s 存在（主机上装有 fapiao 软件包？）：以自带环境启动 fapiao 的测试会读取其中的 "
            "fapiao.conf。请先卸载（apt-get purge fapiao）并删除该目录，或在启动测试的环境中"
            "设置 FAPIAO_CONFIG（如 FAPIAO_CONFIG=/dev/null）后再运行。\n"
            "%s exists (a fapiao package installed on this host?): the tests that start "
            "fapiao with an environment of their own would read its fapiao.conf. Remove it "
            "(apt-get purge fapiao, then the directory), or set FAPIAO_CONFIG (e.g. "
            "FAPIAO_CONFIG=/dev/null) in the environment you start the tests from."
            % (etc, etc))


def pytest_sessionstart(session):
    problem = host_config_problem()
    if problem:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


def fapiao_env(**extra):
    """The environment of a fapiao process: the tests', FAPIAO_CONFIG=/dev/null, extra."""
    return dict(os.environ, FAPIAO_CONFIG=os.devnull, **extra)


EXAMPLE_PATH = REPO / "examples" / "invoice.json"
EXAMPLE_BODY = EXAMPLE_PATH.read_bytes()
PROBLEM_CT = "application/problem+json"

# Servers that are alive (or were during the current test): their log tails
# are attached to the report of a failing test.
_LIVE_SERVERS = []
_LIVE_LOCK = threading.Lock()


def _die_with_parent():
    """preexec_fn: the server gets SIGKILL if the test process dies, so an
    aborted run leaves no stray servers (Linux PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


@atexit.register
def _kill_leftovers():
    with _LIVE_LOCK:
        servers = list(_LIVE_SERVERS)
    for s in servers:
        if s.proc is not None:
            s.kill9()


def scaled(n):
    """A load count, halved (at least 1) for sanitized builds."""
    return max(1, n // 2) if SANITIZED else n


def example_doc():
    return json.loads(EXAMPLE_BODY)


def dumps(doc):
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


_STATUS_RE = re.compile(rb'"status":"(?:accepted|rendered|delivered|confirmed)"')


def as_issued(body):
    """A stored invoice as GET returns it, with its status put back to the
    "accepted" of the 201: the outbox moves the status on (rendered,
    delivered, confirmed) after the answer; everything else stays byte for
    byte.  The first "status" is the top-level one (it follows number and
    serial, and a string cannot hold an unescaped quote)."""
    return _STATUS_RE.sub(b'"status":"accepted"', body, count=1)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %s %r>" % (self.status, self.content_type, self.body[:500])


class PortTaken(AssertionError):
    """The chosen port was taken between free_port() and the bind."""


class Server:
    """One fapiao installation (data dir) and at most one serving process."""

    def __init__(self, base_dir, serve_args=(), init_args=(), demo=True):
        """demo=False: a production data directory (`fapiao init` without
        --demo): no seller, credential, range or certificate until the test
        adds them (then set client_id/client_secret and call trust())."""
        self.base_dir = Path(base_dir)
        self.data_dir = self.base_dir / "data"
        self.serve_args = list(serve_args)
        self.init_args = list(init_args)  # extra `fapiao init` arguments
        self.demo = demo
        self.proc = None
        self.port = None
        self.log_path = None
        self.last_exit = None
        self._token = None
        self.init_out = self._init()
        self.client_id = self.init_out.get("client_id")
        self.client_secret = self.init_out.get("client_secret")
        self.db_path = self.data_dir / "fapiao.db"
        self.log_path = self.data_dir / "serve.log"
        self.ca_cert = self._ctx = None
        if self.init_out["ca_cert"]:
            self.trust(self.init_out["ca_cert"])
        with _LIVE_LOCK:
            _LIVE_SERVERS.append(self)

    def trust(self, ca_cert):
        """Verify the server's certificate against ca_cert from now on."""
        self.ca_cert = str(ca_cert)
        self._ctx = ssl.create_default_context(cafile=self.ca_cert)
        self._ctx.check_hostname = True
        self._ctx.verify_mode = ssl.CERT_REQUIRED

    # ---- process control -------------------------------------------------
    def _init(self):
        self.base_dir.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([BIN, "init", "--data-dir", str(self.data_dir), "--json"]
                           + (["--demo"] if self.demo else []) + self.init_args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=fapiao_env(),
                           timeout=60 * SLOW)
        assert r.returncode == 0, "fapiao init failed (%d): %s" % (
            r.returncode, r.stderr.decode(errors="replace"))
        out = json.loads(r.stdout.decode("utf-8"))
        want = ("client_id", "client_secret") if self.demo else ()
        for k in want + ("data_dir", "ca_cert", "base_url"):
            assert k in out, "init output lacks %r: %r" % (k, out)
        return out

    def start(self, timeout=None):
        # free_port() cannot reserve the port: another process may take it
        # before the server binds.  That (and only that) is retried.
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except PortTaken:
                if attempt == 2:
                    raise

    def _start_once(self, timeout=None):
        assert self.proc is None, "server already running"
        timeout = timeout or 15 * SLOW
        self.port = free_port()
        self._token = None
        logf = open(self.log_path, "ab")
        logf.write(("\n=== serve on port %d at %s\n" % (self.port, time.ctime())).encode())
        logf.flush()
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", str(self.data_dir),
             "--listen", "127.0.0.1:%d" % self.port] + self.serve_args,
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
            # glibc writes fatal errors (heap corruption) to the tty unless told;
            # no config file of the host's (fapiao_env); renders never go
            # on-demand by the oldest one's age, which a loaded machine
            # reaches at any time (tests/e2e/test_backlog.py sets it)
            env=fapiao_env(LIBC_FATAL_STDERR_="1", FAPIAO_RENDER_AGE_MAX="0"),
            preexec_fn=_die_with_parent)
        logf.close()
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                self.last_exit = rc
                tail = self.log_tail()
                if "cannot listen on" in tail.split("=== serve on port")[-1]:
                    raise PortTaken(tail)
                raise AssertionError("fapiao serve exited with %d during startup:\n%s"
                                     % (rc, tail))
            try:
                r = self.request("GET", "/healthz", auth=False, timeout=2 * SLOW)
                if r.status == 200:
                    return self
                last_err = "healthz status %d" % r.status
            except (OSError, http.client.HTTPException) as e:
                last_err = repr(e)
            time.sleep(0.05)
        self.kill9()
        raise AssertionError("fapiao serve not healthy after %ss (%s):\n%s"
                             % (timeout, last_err, self.log_tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.proc is None:
            return None
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = self.proc.wait(timeout=30)
        self.proc = None
        self.last_exit = rc
        return rc

    def stop(self, timeout=None):
        """SIGTERM and wait; returns the exit status (SIGKILL after timeout)."""
        if self.proc is None:
            return self.last_exit
        timeout = timeout or 20 * SLOW
        try:
            self.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None
            self.last_exit = "timeout"
            raise AssertionError("fapiao serve did not stop within %ss after SIGTERM:\n%s"
                                 % (timeout, self.log_tail()))
        self.proc = None
        self.last_exit = rc
        return rc

    def close(self):
        """Teardown: stop, and report an unclean exit or sanitizer output."""
        rc = self.stop() if self.proc is not None else None
        with _LIVE_LOCK:
            if self in _LIVE_SERVERS:
                _LIVE_SERVERS.remove(self)
        problems = []
        if rc not in (None, 0):
            problems.append("fapiao serve exited with %r after SIGTERM (expected 0)" % rc)
        log = self.log_text()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                problems.append("sanitizer report in server log: %s" % marker)
        return problems

    def log_text(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", errors="replace")
        except (OSError, AttributeError, TypeError):
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    # ---- HTTP --------------------------------------------------------------
    @property
    def host(self):
        return "127.0.0.1"

    @property
    def base_url(self):
        return "https://127.0.0.1:%d" % self.port

    def connection(self, timeout=None):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self._ctx,
                                           timeout=timeout or 30 * SLOW)

    def request(self, method, path, body=None, headers=None, auth=True, timeout=None,
                conn=None):
        """One request.  auth=True adds the bearer token; auth may also be a
        token string to use.  A fresh connection unless conn is given."""
        h = {}
        if auth is True:
            h["Authorization"] = "Bearer " + self.token()
        elif isinstance(auth, str):
            h["Authorization"] = "Bearer " + auth
        if headers:
            h.update(headers)
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, r.headers, data)
        finally:
            if own:
                c.close()

    def post_json(self, path, doc, headers=None, auth=True):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        body = doc if isinstance(doc, (bytes, bytearray)) else dumps(doc)
        return self.request("POST", path, body=body, headers=h, auth=auth)

    def issue(self, key, body=EXAMPLE_BODY, auth=True, conn=None, content_type="application/json",
              extra_headers=None):
        h = {}
        if content_type is not None:
            h["Content-Type"] = content_type
        if key is not None:
            h["Idempotency-Key"] = key
        h.update(extra_headers or {})
        return self.request("POST", "/v1/invoices", body=body, headers=h, auth=auth, conn=conn)

    def get_token_response(self, client_id=None, client_secret=None):
        return self.post_json("/v1/token", {
            "client_id": self.client_id if client_id is None else client_id,
            "client_secret": self.client_secret if client_secret is None else client_secret,
        }, auth=False)

    def token(self):
        if self._token is None:
            r = self.get_token_response()
            assert r.status == 200, "token request failed: %r" % r
            self._token = r.json()["access_token"]
        return self._token

    def healthy(self):
        try:
            return self.request("GET", "/healthz", auth=False).status == 200
        except (OSError, http.client.HTTPException):
            return False

    # ---- direct database access (read-only) --------------------------------
    def db_query(self, sql, args=()):
        con = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


def curl(server, method, path, body_file=None, headers=None, auth=True, out_dir=None):
    """Runs the real curl client; returns (status:int, headers:dict-lower, body:bytes,
    curl_rc:int, stderr:str).  Status 0 means no HTTP response was read."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    body_out = out_dir / "curl-body.out"
    hdr_out = out_dir / "curl-headers.out"
    for p in (body_out, hdr_out):
        if p.exists():
            p.unlink()
    cmd = ["curl", "-sS", "--cacert", server.ca_cert, "-o", str(body_out),
           "-D", str(hdr_out), "-w", "%{http_code}", "-X", method,
           "--max-time", str(60 * SLOW), "--noproxy", "*"]
    h = dict(headers or {})
    if auth is True:
        h["Authorization"] = "Bearer " + server.token()
    elif isinstance(auth, str):
        h["Authorization"] = "Bearer " + auth
    for k, v in h.items():
        cmd += ["-H", "%s: %s" % (k, v)]
    if body_file is not None:
        cmd += ["--data-binary", "@" + str(body_file)]
    cmd.append(server.base_url + path)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90 * SLOW)
    code_txt = r.stdout.decode().strip()
    status = int(code_txt) if code_txt.isdigit() else 0
    headers_out = {}
    if hdr_out.exists():
        # Keep the last response's headers (skip "100 Continue" blocks).
        blocks = hdr_out.read_bytes().decode("latin-1").replace("\r\n", "\n").strip().split("\n\n")
        for line in blocks[-1].split("\n")[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers_out[k.strip().lower()] = v.strip()
    body = body_out.read_bytes() if body_out.exists() else b""
    return status, headers_out, body, r.returncode, r.stderr.decode(errors="replace")


def assert_problem(resp, status, code, field=None):
    """resp: Response, or a (status, headers-dict-lower, body) tuple from curl."""
    if isinstance(resp, Response):
        st, ct, body = resp.status, resp.content_type, resp.body
        rid = resp.header("X-Request-Id")
    else:
        st, hdrs, body = resp[0], resp[1], resp[2]
        ct = hdrs.get("content-type", "").split(";")[0].strip().lower()
        rid = hdrs.get("x-request-id")
    assert st == status, "expected HTTP %d %s, got %d: %r" % (status, code, st, body[:500])
    assert ct == PROBLEM_CT, "content-type %r, expected %s" % (ct, PROBLEM_CT)
    p = json.loads(body.decode("utf-8"))
    assert p.get("code") == code, "code %r, expected %r: %r" % (p.get("code"), code, p)
    assert p.get("status") == status, p
    assert p.get("type") == "urn:fapiao:error:" + code, p
    assert isinstance(p.get("title"), str) and p["title"], p
    for k in ("message_zh", "message_en", "request_id"):
        assert isinstance(p.get(k), str) and p[k].strip(), "%s empty: %r" % (k, p)
    assert rid, "no X-Request-Id header on error response"
    assert p["request_id"] == rid, "request_id %r != X-Request-Id %r" % (p["request_id"], rid)
    if field is not None:
        errs = p.get("errors")
        assert isinstance(errs, list) and errs, "no errors[] naming %r: %r" % (field, p)
        named = [e for e in errs if e.get("field") == field]
        assert named, "errors[] does not name field %r: %r" % (field, errs)
        for e in named:
            assert e.get("code") == code, e
            assert isinstance(e.get("message_zh"), str) and e["message_zh"].strip(), e
            assert isinstance(e.get("message_en"), str) and e["message_en"].strip(), e
    return p


# ---- pytest plumbing ---------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        with _LIVE_LOCK:
            servers = list(_LIVE_SERVERS)
        for s in servers:
            rep.sections.append(("fapiao server log tail (%s)" % s.data_dir, s.log_tail()))


def _make_server(base, serve_args=()):
    s = Server(base, serve_args)
    try:
        s.start()
    except BaseException:
        s.close()
        raise
    return s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A fresh installation and running server per test module.  Its
    modules make many authentication failures from 127.0.0.1 over their
    tests on purpose, so the per-address failure budget is off here (it
    would answer their later 401s and token exchanges with 429); the budget
    itself is tested in test_auth_flood.py, on servers of their own."""
    s = _make_server(tmp_path_factory.mktemp("fapiao"), ["--auth-fail-rate", "0"])
    yield s
    problems = s.close()
    assert not problems, "\n".join(problems) + "\n" + s.log_tail()


@pytest.fixture
def make_server(tmp_path_factory):
    """Factory for servers a test needs for itself (own data dir, own args)."""
    made = []

    def make(serve_args=(), start=True, init_args=(), demo=True):
        s = Server(tmp_path_factory.mktemp("fapiao"), serve_args, init_args, demo)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    problems = []
    for s in made:
        problems += s.close()
    assert not problems, "\n".join(problems)
