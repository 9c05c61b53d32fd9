"""SIGTERM against the real binary (issue 12, storage faults items 5 and 9;
docs/operations.md, "Shutdown").

- A commit stalled by a slow disk (a real loop device throttled by a cgroup
  v1 blkio limit on the server's own writes): SIGTERM must not abort the
  process (libmicrohttpd aborts when it is stopped with suspended
  connections).  Every waiting client gets a complete 503 with Retry-After:
  SHUTTING_DOWN when its request was still queued (nothing stored) or
  OUTCOME_UNKNOWN when it was inside the committing batch; a retry with the
  same key after a restart tells the outcome.
- Keep-alive clients sending requests while SIGTERM arrives: every request
  the server read (it is in the access log) gets a complete answer; a
  connection may only be closed before a request was read.

Loop devices, mounts and cgroups are named per run and removed in finally
blocks even when the test fails."""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import SLOW, Server

BLKIO = Path("/sys/fs/cgroup/blkio")


def _run(*cmd):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 0, "%s: %s" % (" ".join(cmd), r.stderr.decode(errors="replace"))
    return r.stdout.decode().strip()


class ThrottledDisk:
    """An ext4 file system on a loop device, and a blkio cgroup that can
    throttle writes to that device for the processes put into it."""

    def __init__(self, base):
        self.base = Path(base)
        self.tag = "fapiao-lc-%d-%06x" % (os.getpid(), random.getrandbits(24))
        self.image = self.base / (self.tag + ".img")
        self.mnt = self.base / (self.tag + ".mnt")
        self.cgroup = BLKIO / self.tag
        self.loop = None
        self.mounted = False

    def setup(self):
        with open(self.image, "wb") as f:
            f.truncate(128 << 20)
        self.loop = _run("losetup", "--find", "--show", str(self.image))
        _run("mkfs.ext4", "-q", "-F", self.loop)
        self.mnt.mkdir()
        _run("mount", self.loop, str(self.mnt))
        self.mounted = True
        self.cgroup.mkdir()
        self.devno = (Path("/sys/block") / Path(self.loop).name / "dev").read_text().strip()
        return self

    def add(self, pid):
        (self.cgroup / "cgroup.procs").write_text("%d\n" % pid)

    def throttle(self, bps):
        (self.cgroup / "blkio.throttle.write_bps_device").write_text("%s %d\n" % (self.devno, bps))
        (self.cgroup / "blkio.throttle.write_iops_device").write_text("%s 1\n" % self.devno)

    def unthrottle(self):
        for f in ("blkio.throttle.write_bps_device", "blkio.throttle.write_iops_device"):
            try:
                (self.cgroup / f).write_text("%s 0\n" % self.devno)
            except OSError:
                pass

    def teardown(self):
        if self.cgroup.exists():
            self.unthrottle()
            # anything left inside goes back to the root group first
            try:
                for pid in (self.cgroup / "cgroup.procs").read_text().split():
                    try:
                        (BLKIO / "cgroup.procs").write_text(pid + "\n")
                    except OSError:
                        pass
            except OSError:
                pass
            for _ in range(50):
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.mnt)], timeout=60)
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], timeout=60)
        shutil.rmtree(self.mnt, ignore_errors=True)
        try:
            self.image.unlink()
        except OSError:
            pass


@pytest.fixture
def throttled_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root (loop devices, mounts, cgroups)")
    if not (BLKIO / "blkio.throttle.write_bps_device").exists():
        pytest.skip("no cgroup v1 blkio controller at %s" % BLKIO)
    for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed" % tool)
    d = ThrottledDisk(tmp_path)
    try:
        d.setup()
        yield d
    finally:
        d.teardown()


def _issue_body():
    from conftest import EXAMPLE_BODY
    return EXAMPLE_BODY


def _one_issue(srv, token, key, out, timeout):
    """One POST /v1/invoices on its own connection; out[key] = (status,
    code, retry_after, replayed) or ("error", repr)."""
    c = srv.connection(timeout)
    try:
        c.request("POST", "/v1/invoices", body=_issue_body(),
                  headers={"Authorization": "Bearer " + token,
                           "Content-Type": "application/json", "Idempotency-Key": key})
        r = c.getresponse()
        body = r.read()
        code = None
        if r.getheader("Content-Type", "").startswith("application/problem+json"):
            code = json.loads(body)["code"]
        out[key] = (r.status, code, r.getheader("Retry-After"),
                    r.getheader("Idempotent-Replayed"))
    except Exception as e:  # a reset or a timeout is what the test looks for
        out[key] = ("error", repr(e))
    finally:
        c.close()


def test_sigterm_during_a_stalled_commit_answers_everyone(throttled_disk):
    disk = throttled_disk
    # the store's own write deadline (docs/storage-space.md) would answer the
    # stalled requests before SIGTERM comes; this test is about shutdown
    srv = Server(disk.mnt / "inst", serve_args=["--write-deadline-ms", "600000"])
    try:
        srv.start()
        token = srv.token()
        assert srv.issue("warm-up").status == 201
        pid = srv.proc.pid
        disk.add(pid)
        # a few hundred bytes a second: one commit (WAL frames of a few
        # pages) takes far longer than the 30 s the old shutdown waited
        disk.throttle(512)
        results = {}
        keys = ["stall-%d" % i for i in range(6)]
        threads = []
        for k in keys:
            t = threading.Thread(target=_one_issue, args=(srv, token, k, results, 120))
            t.start()
            threads.append(t)
            time.sleep(0.05)
        time.sleep(2)
        assert not results, "the throttled disk did not stall the commit: %r" % results
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=90)
        answered_after = time.monotonic() - t0
        assert all(not t.is_alive() for t in threads)
        # every client got a complete answer: 503 + Retry-After, saying
        # either "not stored" (queued) or "outcome unknown" (committing)
        for k in keys:
            st = results[k]
            assert st[0] == 503, (k, st, srv.log_tail())
            assert st[1] in ("SHUTTING_DOWN", "OUTCOME_UNKNOWN"), (k, st)
            assert st[2] and int(st[2]) >= 1, (k, st)
        codes = {results[k][1] for k in keys}
        assert "OUTCOME_UNKNOWN" in codes, results  # the stalled batch
        # the answers came with the grace period (default 10 s), not after
        # the disk recovered
        assert answered_after < 60, answered_after
        disk.unthrottle()
        t1 = time.monotonic()
        rc = srv.proc.wait(timeout=120)
        print("stalled commit: answered %.1f s after SIGTERM (codes %s); exit %r %.1f s after "
              "the disk recovered" % (answered_after, sorted(codes), rc, time.monotonic() - t1))
        srv.proc = None
        srv.last_exit = rc
        log = srv.log_text()
        assert rc == 0, "exit %r (SIGABRT is -6):\n%s" % (rc, srv.log_tail())
        assert "suspended connections" not in log
        assert "OUTCOME_UNKNOWN" in log  # the stop summary says what it did

        # a retry with the same key tells the outcome; "not stored" was true
        srv.start()
        stored = {row[0] for row in srv.db_query("SELECT serial FROM invoices")}
        for k in keys:
            if results[k][1] == "SHUTTING_DOWN":
                assert k not in stored, k
            r = srv.issue(k)
            assert r.status == 201, (k, r)
            if results[k][1] == "SHUTTING_DOWN":
                assert r.header("Idempotent-Replayed") is None, k
        n = srv.db_query("SELECT count(*) FROM invoices WHERE serial LIKE 'stall-%'")[0][0]
        assert n == len(keys)
    finally:
        disk.unthrottle()
        problems = srv.close()
    assert not problems, problems


# ---- keep-alive requests while SIGTERM arrives ------------------------------

def _keepalive_client(srv, token, n, stop_at, results, kinds):
    """Sends requests one after another on one connection (reconnecting when
    the server closes it) until the server is gone.  results: list of
    (request_id, outcome) where outcome is the status or an error."""
    conn = None
    i = 0
    while time.monotonic() < stop_at:
        if conn is None:
            conn = srv.connection(30 * SLOW)
            try:
                conn.connect()
            except OSError:
                results.append((None, "connect-refused"))
                return
        rid = "ka-%d-%d" % (n, i)
        kind = kinds[i % len(kinds)]
        i += 1
        h = {"Authorization": "Bearer " + token, "X-Request-Id": rid}
        try:
            if kind == "issue":
                h.update({"Content-Type": "application/json", "Idempotency-Key": rid})
                conn.request("POST", "/v1/invoices", body=_issue_body(), headers=h)
            else:
                conn.request("GET", kind, headers=h)
            r = conn.getresponse()
            body = r.read()
            results.append((rid, r.status))
            if r.status == 200 and kind.startswith("/v1/invoices"):
                json.loads(body)  # complete
            if r.getheader("Connection", "").lower() == "close" or r.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            results.append((rid, "error:" + type(e).__name__))
            conn.close()
            conn = None
            time.sleep(0.01)


def test_sigterm_answers_every_request_it_read(make_server):
    srv = make_server(serve_args=["--fault-injection"])
    token = srv.token()
    for i in range(60):  # a list page of some size: its answer takes a while to send
        assert srv.issue("ka-seed-%d" % i).status == 201
    # issues wait a little in the writer, so some are suspended at SIGTERM
    r = srv.post_json("/v1/_faults", {"fsync_delay_ms": 150})
    assert r.status == 200, r
    kinds = ["/v1/invoices?limit=50", "issue", "/healthz", "/v1/invoices?limit=50", "/readyz"]
    results = [[] for _ in range(8)]
    stop_at = time.monotonic() + 30 * SLOW
    threads = [threading.Thread(target=_keepalive_client,
                                args=(srv, token, n, stop_at, results[n], kinds))
               for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    sent_before = sum(len(r) for r in results)
    srv.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=60 * SLOW)
    rc = srv.proc.wait(timeout=60 * SLOW)
    srv.proc = None
    srv.last_exit = rc
    assert rc == 0, srv.log_tail()
    assert sent_before > 20, "too little traffic before SIGTERM: %d" % sent_before

    logged = {}
    for line in (srv.data_dir / "access.log").read_text().splitlines():
        x = json.loads(line)
        # the client's X-Request-Id is logged apart from the server's own
        logged[x.get("client_request_id", x["request_id"])] = x
    client = {}
    for per in results:
        for rid, outcome in per:
            if rid is not None:
                client[rid] = outcome
    # every request the server read was answered, completely
    unanswered = {rid: x for rid, x in logged.items()
                  if rid.startswith("ka-") and not rid.startswith("ka-seed")
                  and (x.get("termination") or not x.get("status"))}
    assert not unanswered, unanswered
    reset_after_read = {rid: (o, logged[rid]) for rid, o in client.items()
                        if not isinstance(o, int) and rid in logged}
    assert not reset_after_read, reset_after_read
    for rid, o in client.items():
        if isinstance(o, int):
            assert rid in logged, rid
            assert logged[rid]["status"] == o, (rid, o, logged[rid])
    # and the stop happened while requests were going on
    ended = [o for per in results for rid, o in per if not isinstance(o, int)]
    assert len(ended) >= 1, "SIGTERM did not meet any traffic"


def test_clients_gone_while_their_issue_is_suspended(make_server):
    """Clients send an issue request and go away while it waits for the
    writer (as wrk does at its end).  libmicrohttpd then closes each
    connection without calling the handler again; the request must still
    leave the list of suspended requests and give back its in-flight count,
    so the server neither crashes on SIGTERM (a freed request walked by the
    shutdown) nor waits for requests that are gone."""
    srv = make_server(serve_args=["--fault-injection"])
    token = srv.token()
    assert srv.issue("gone-seed").status == 201
    r = srv.post_json("/v1/_faults", {"fsync_delay_ms": 300})
    assert r.status == 200, r
    n = 24
    for i in range(n):
        conn = srv.connection(30 * SLOW)
        conn.connect()
        body = _issue_body()
        conn.putrequest("POST", "/v1/invoices")
        for k, v in (("Authorization", "Bearer " + token), ("Content-Type", "application/json"),
                     ("Idempotency-Key", "gone-%d" % i), ("Content-Length", str(len(body)))):
            conn.putheader(k, v)
        conn.endheaders(body)
        conn.sock.shutdown(socket.SHUT_RDWR)  # gone before the answer
        conn.close()
    # every request was committed (the writer goes on without its client)
    deadline = time.monotonic() + 30 * SLOW
    while time.monotonic() < deadline:
        done = srv.db_query("SELECT count(*) FROM invoices WHERE serial LIKE 'gone-%'")[0][0]
        if done == n + 1:
            break
        time.sleep(0.1)
    assert done == n + 1, done
    r = srv.post_json("/v1/_faults", {"fsync_delay_ms": 0})
    assert r.status == 200, r
    # the server still serves, and stops cleanly and at once (nothing in flight)
    assert srv.issue("gone-after").status == 201
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(timeout=60 * SLOW)
    srv.proc = None
    srv.last_exit = rc
    assert rc == 0, srv.log_tail()
    last = srv.log_text().split("=== serve")[-1]
    assert "issues done within the grace period" in last, srv.log_tail()
    assert "never resumed" not in last, srv.log_tail()
