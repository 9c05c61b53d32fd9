"""Secrets at rest (issue 13, item 9): the files `fapiao init` and
`fapiao serve` make are the service user's only, key files looser than
PostgreSQL's rule refuse the start, and the server cannot dump core nor be
read by another process of its user.

The tests run as root, and root's reads ignore modes: permissions are
asserted by their bits, and the one refusal that needs a real denied read
runs the server as uid 65534 under setpriv (a data directory of its own in
a fresh temporary directory, removed afterwards).
"""
import os
import re
import shutil
import signal
import ssl
import stat
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, SLOW, _die_with_parent

ROOT = os.geteuid() == 0
NOBODY = 65534
SETPRIV = shutil.which("setpriv")


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def serve_refused(server, extra=()):
    """`fapiao serve` that must refuse to start; returns its stderr."""
    r = subprocess.run([BIN, "serve", "--data-dir", str(server.data_dir),
                        "--listen", "127.0.0.1:0"] + list(extra),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
    err = r.stderr.decode("utf-8", errors="replace")
    assert r.returncode == 1, "serve did not refuse (%d):\n%s" % (r.returncode, err)
    assert "listening on" not in err, err
    return err


def test_init_and_serve_make_private_files(make_server):
    """Everything in the data directory is the service user's only: the
    directories 0700, the database, its WAL, the keys, the access log and
    the PDFs without group or other bits (umask 077)."""
    s = make_server()
    r = s.issue("keyfiles-1")
    assert r.status == 201, r
    number = r.json()["number"]
    deadline = time.monotonic() + 30 * SLOW
    while time.monotonic() < deadline:  # the PDF lands in DIR/pdf
        if s.request("GET", "/v1/invoices/%s/pdf" % number).status == 200:
            break
        time.sleep(0.1)
    d = s.data_dir
    assert mode(d) == 0o700 and mode(d / "tls") == 0o700, (oct(mode(d)), oct(mode(d / "tls")))
    for name in ("fapiao.db", "fapiao.db-wal", "token.key", "audit.key", "tls/server.key",
                 "access.log"):
        assert (d / name).exists(), name
    loose = []
    for root, dirs, files in os.walk(d):
        for n in dirs:
            if mode(Path(root) / n) != 0o700:
                loose.append((os.path.join(root, n), oct(mode(Path(root) / n))))
        for n in files:
            p = Path(root) / n
            # serve.log is the test harness's own file; the audit public key
            # is meant to be copied out
            if p.name in ("serve.log", "audit.pub"):
                continue
            if mode(p) & 0o077:
                loose.append((str(p), oct(mode(p))))
    assert not loose, loose


# which file, how to point serve at it
KEY_FILES = {
    "tls-key": ("tls/server.key", "私钥", "private key", ()),
    "token.key": ("token.key", "令牌签名密钥", "token signing key", ()),
    "audit.key": ("audit.key", "审计签名密钥", "audit signing key", ()),
    "passphrase": ("key.pass", "私钥口令文件", "key passphrase file",
                   ("--key-passphrase-file", "{path}")),
}


@pytest.mark.parametrize("loose", [0o644, 0o660, 0o604], ids=["0644", "0660", "0604"])
@pytest.mark.parametrize("which", list(KEY_FILES))
def test_loose_key_file_refuses_start(make_server, which, loose):
    s = make_server(start=False)
    rel, what_zh, what_en, extra = KEY_FILES[which]
    path = s.data_dir / rel
    if which == "passphrase":
        path.write_text("a passphrase\n")
    os.chmod(path, loose)
    err = serve_refused(s, [x.format(path=path) for x in extra])
    assert "%s has mode %04o" % (what_en, loose) in err, err
    assert "fix: chmod " in err and str(path) in err, err
    assert what_zh in err, err
    # fixed as the message says, it starts
    os.chmod(path, 0o600)
    s.serve_args = [x.format(path=path) for x in extra]
    s.start()
    assert s.healthy()


@pytest.mark.skipif(not ROOT, reason="root-owned files need root")
def test_root_owned_key_files_may_be_group_readable(make_server):
    """Debian's /etc/ssl/private layout: root:ssl-cert 0640."""
    s = make_server(start=False)
    pw = s.data_dir / "key.pass"
    pw.write_text("unused\n")
    for rel in ("tls/server.key", "token.key", "key.pass"):
        os.chmod(s.data_dir / rel, 0o640)
    s.serve_args = ["--key-passphrase-file", str(pw)]
    s.start()
    assert s.healthy()
    assert "is not encrypted; the passphrase file" in s.log_text(), s.log_tail()


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_key_file_of_another_user_refuses_start(make_server):
    s = make_server(start=False)
    key = s.data_dir / "tls" / "server.key"
    os.chown(key, NOBODY, -1)
    err = serve_refused(s)
    assert "is owned by uid %d" % NOBODY in err and "fix: chown 0" in err, err


def test_serve_cannot_dump_core(make_server):
    s = make_server()
    limits = Path("/proc/%d/limits" % s.proc.pid).read_text()
    core = [x for x in limits.splitlines() if x.startswith("Max core file size")]
    assert core and core[0].split()[4:6] == ["0", "0"], core


# ---- as an unprivileged service user (setpriv) ---------------------------

class Unprivileged:
    """`fapiao serve` as uid/gid 65534 on a data directory it owns, in a
    temporary directory of its own."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="fapiao-keyfiles-%d-" % os.getpid(),
                                          dir="/tmp"))
        os.chmod(self.base, 0o755)
        self.data = self.base / "data"
        r = subprocess.run([BIN, "init", "--data-dir", str(self.data), "--demo", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
        assert r.returncode == 0, r.stderr
        for root, dirs, files in os.walk(self.data):
            for n in dirs + files:
                os.chown(os.path.join(root, n), NOBODY, NOBODY)
        os.chown(self.data, NOBODY, NOBODY)
        # /etc/ssl/private as Debian has it: root:ssl-cert 0710, the key
        # root:ssl-cert 0640, the service user in the group
        self.private = self.base / "private"
        self.private.mkdir(mode=0o710)
        os.chown(self.private, 0, NOBODY)
        self.key = self.private / "server.key"
        shutil.copyfile(self.data / "tls" / "server.key", self.key)
        os.chown(self.key, 0, NOBODY)
        os.chmod(self.key, 0o640)
        self.crt = self.data / "tls" / "server.crt"
        self.proc = None
        self.log = self.base / "serve.log"

    def start(self):
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [SETPRIV, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", "--",
             BIN, "serve", "--data-dir", str(self.data), "--listen", "127.0.0.1:0",
             "--cert", str(self.crt), "--key", str(self.key)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, preexec_fn=_die_with_parent)
        logf.close()
        deadline = time.monotonic() + 20 * SLOW
        while time.monotonic() < deadline:
            m = re.search(r"listening on https://127\.0\.0\.1:(\d+)", self.log.read_text())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                return None
            time.sleep(0.05)
        raise AssertionError("not listening:\n" + self.log.read_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def close(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def unprivileged():
    u = Unprivileged()
    try:
        yield u
    finally:
        u.close()


@pytest.mark.skipif(not ROOT or not SETPRIV, reason="needs root and setpriv")
def test_unprivileged_service_user(unprivileged):
    u = unprivileged
    # control: a process of that user is normally readable by its user
    # (/proc/PID/environ is owned by it), so the check below means something
    ctl = subprocess.Popen([SETPRIV, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                            "--clear-groups", "--", "sleep", "30"], preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + 5
        while (os.stat("/proc/%d/environ" % ctl.pid).st_uid != NOBODY
               and time.monotonic() < deadline):
            time.sleep(0.02)  # until setpriv has exec'd sleep
        assert os.stat("/proc/%d/environ" % ctl.pid).st_uid == NOBODY
    finally:
        ctl.kill()
        ctl.wait()

    port = u.start()
    assert port, u.log.read_text()
    ctx = ssl.create_default_context(cafile=str(u.crt))
    with urllib.request.urlopen("https://127.0.0.1:%d/healthz" % port, context=ctx,
                                timeout=30 * SLOW) as r:
        assert r.status == 200
    pid = u.proc.pid
    status = Path("/proc/%d/status" % pid).read_text()
    assert re.search(r"^Uid:\s+%d\s" % NOBODY, status, re.M), status
    # PR_SET_DUMPABLE 0: /proc/PID belongs to root, not to the process's user
    assert os.stat("/proc/%d/environ" % pid).st_uid == 0
    limits = Path("/proc/%d/limits" % pid).read_text()
    assert re.search(r"^Max core file size\s+0\s+0\s", limits, re.M), limits
    # what it made in its data directory is its own only
    for name in ("fapiao.db-wal", "access.log"):
        p = u.data / name
        assert p.exists() and mode(p) & 0o077 == 0, (name, oct(mode(p)))
        assert os.stat(p).st_uid == NOBODY
    assert u.stop() == 0, u.log.read_text()

    # a key root keeps to itself (root:nogroup 0600) cannot be read: the
    # refusal names the file and the reason
    os.chmod(u.key, 0o600)
    assert u.start() is None
    log = u.log.read_text()
    assert "cannot read the private key %s: Permission denied" % u.key in log, log
    assert u.proc.returncode == 1, log
