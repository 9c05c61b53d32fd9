"""Disk space and stalled disks on real block devices (docs/storage-space.md).

Every test builds its own small ext4 filesystem in a file, attaches it to a
loop device (`losetup -f`), mounts it on a fresh mktemp directory and puts a
real `fapiao serve` data directory (or its PDF directory) there; the stalled
disk comes from a cgroup v1 blkio throttle on that loop device.  Names are
unique per run (pid + random), and everything is undone in teardown, also
on failure.  `mkfs.ext4 -m 0`: with reserved blocks root (the tests run as
root) would write into them and the disk would never look full.  Small
filesystems get 1 KiB blocks, which is what turned a full disk into SIGBUS
through SQLite's memory-mapped -shm file.

The tests need root, losetup and mkfs.ext4; the stall test also needs cgroup
v1 blkio (/sys/fs/cgroup/blkio)."""
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import BIN, SLOW, Server, assert_problem

BLKIO = Path("/sys/fs/cgroup/blkio")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("losetup") or not shutil.which("mkfs.ext4"),
    reason="needs root, losetup and mkfs.ext4")


def _run(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, "%s failed: %s" % (" ".join(cmd), r.stderr.decode(errors="replace"))
    return r.stdout.decode().strip()


class LoopFs:
    """A small ext4 on a loop device, mounted at a fresh directory."""

    def __init__(self, size_mb, where=None):
        self.tag = "fpspace-%d-%s" % (os.getpid(), secrets.token_hex(4))
        self.img_dir = Path(tempfile.mkdtemp(prefix=self.tag + "-img-"))
        self.img = self.img_dir / "disk.img"
        self.dev = None
        self.mnt = None
        self.own_mnt = where is None
        self.fillers = []
        try:
            with open(self.img, "wb") as f:
                f.truncate(size_mb << 20)
            _run("mkfs.ext4", "-q", "-F", "-m", "0", "-L", self.tag[:16], str(self.img))
            self.dev = _run("losetup", "-f", "--show", str(self.img))
            if where is None:
                self.mnt = Path(tempfile.mkdtemp(prefix=self.tag + "-mnt-"))
            else:
                self.mnt = Path(where)
                self.mnt.mkdir(parents=True, exist_ok=True)
            _run("mount", self.dev, str(self.mnt))
        except BaseException:
            self.close()
            raise

    @property
    def majmin(self):
        st = os.stat(self.dev)
        return "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))

    def free(self):
        v = os.statvfs(self.mnt)
        return v.f_bavail * v.f_frsize

    def fill(self, leave=0):
        """Fills the filesystem until about `leave` bytes are free."""
        os.sync()
        i = len(self.fillers)
        path, tail = self.mnt / ("filler-%d" % i), self.mnt / ("filler-%d-tail" % i)
        self.fillers += [path, tail]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        tfd = os.open(tail, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            want = self.free() - leave
            if want > 0:
                try:
                    os.posix_fallocate(fd, 0, want)
                except OSError:
                    pass
            if leave == 0:  # the last blocks, one KiB at a time
                try:
                    while True:
                        os.write(tfd, b"\0" * 1024)
                        os.fsync(tfd)
                except OSError:
                    pass
        finally:
            os.close(fd)
            os.close(tfd)
        os.sync()
        return self.free()

    def unfill(self):
        for p in self.fillers:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        self.fillers = []
        os.sync()

    def close(self):
        if self.mnt is not None and os.path.ismount(self.mnt):
            r = subprocess.run(["umount", str(self.mnt)], stderr=subprocess.PIPE)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", str(self.mnt)])
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev])
            self.dev = None
        if self.mnt is not None and self.own_mnt:
            try:
                self.mnt.rmdir()
            except OSError:
                pass
        shutil.rmtree(self.img_dir, ignore_errors=True)


@pytest.fixture
def loopfs():
    made = []

    def make(size_mb, where=None):
        fs = LoopFs(size_mb, where)
        made.append(fs)
        return fs

    yield make
    for fs in reversed(made):
        fs.close()


@pytest.fixture
def servers():
    made = []

    def make(base, serve_args=(), log_dir=None):
        s = Server(base, serve_args)
        if log_dir is not None:  # the server log must not need the full disk
            s.log_path = Path(log_dir) / "serve.log"
        made.append(s)
        return s

    yield made, make
    problems = []
    for s in made:
        problems += s.close()
    assert not problems, "\n".join(problems)


def readyz(srv):
    r = srv.request("GET", "/readyz", auth=False)
    return r, {c["name"]: c for c in r.json()["checks"]}


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def issue_ok(srv, key):
    r = srv.issue(key)
    assert r.status == 201, r
    return r.json()["number"]


def jobs_of(srv, numbers):
    q = ",".join("?" * len(numbers))
    return sorted(srv.db_query(
        "SELECT invoice_number, kind, state, attempts, updated_at FROM jobs "
        "WHERE invoice_number IN (%s) AND kind='render'" % q, numbers))


def pdf_files(data_dir):
    return sorted(str(p) for p in (Path(data_dir) / "pdf").rglob("*.pdf"))


# ---- disk full: the outbox pauses, issuing degrades, freeing recovers --------

def test_disk_full_pauses_outbox_degrades_and_recovers(loopfs, servers, tmp_path):
    _, make = servers
    fs = loopfs(64)
    # thresholds: outbox 32 MiB (4 x) > degrade 8 MiB > reserve 2 MiB (1/4)
    srv = make(fs.mnt / "fapiao", ["--min-free-mb", "8", "--probe-interval-ms", "300",
                                   "--retry-backoff-ms", "200"], log_dir=tmp_path)
    srv.start()
    first = issue_ok(srv, "space-first")
    wait_for(lambda: srv.request("GET", "/v1/invoices/%s/pdf" % first).status == 200, 30,
             "the first PDF")
    time.sleep(1.5)  # the reserve file is made within a second

    # between the thresholds (32 MiB > free > 8 MiB): the outbox pauses,
    # issuing goes on
    fs.fill(leave=16 << 20)
    wait_for(lambda: readyz(srv)[1]["disk_free"].get("outbox_paused"), 10,
             "the outbox pause")  # old: never
    numbers = [issue_ok(srv, "space-%d" % i) for i in range(5)]
    before_jobs = jobs_of(srv, numbers)
    before_pdfs = pdf_files(srv.data_dir)
    assert all(j[2] == "pending" and j[3] == 0 for j in before_jobs), before_jobs
    time.sleep(3)
    # nothing of the outbox was written: no PDF, no job row touched
    assert jobs_of(srv, numbers) == before_jobs
    assert pdf_files(srv.data_dir) == before_pdfs
    r = srv.request("GET", "/v1/invoices/%s/pdf" % numbers[0])
    assert r.status == 202, r
    r, checks = readyz(srv)
    disk = checks["disk_free"]
    assert r.status == 200, r  # a warning, not unready
    assert disk["ok"] and disk["warning"] and disk["outbox_paused"], disk
    assert (disk["outbox_pause_below"], disk["degrade_below"], disk["reserve"]) == (
        32 << 20, 8 << 20, 2 << 20), disk
    assert "outbox paused" in disk["reason"], disk
    # the reserve is allocated (it was made while there was room)
    assert (srv.data_dir / "fapiao.reserve").stat().st_size == 2 << 20

    # below the degrade threshold: writes 503, the outbox stays paused
    fs.fill(leave=4 << 20)
    wait_for(lambda: readyz(srv)[0].status == 503, 10, "degraded for disk")
    r, checks = readyz(srv)
    assert not checks["disk_free"]["ok"], checks["disk_free"]
    assert "below the minimum" in checks["disk_free"]["reason"], checks["disk_free"]
    p = assert_problem(srv.issue("space-refused"), 503, "DEGRADED")
    assert "disk" in p["message_en"], p
    assert srv.request("GET", "/v1/invoices/%s" % first).status == 200  # reads go on
    time.sleep(3)
    assert jobs_of(srv, numbers) == before_jobs
    assert pdf_files(srv.data_dir) == before_pdfs

    # space back: everything resumes by itself
    fs.unfill()
    wait_for(lambda: readyz(srv)[0].status == 200, 15, "recovery")
    for n in numbers:
        wait_for(lambda n=n: srv.request("GET", "/v1/invoices/%s/pdf" % n).status == 200, 30,
                 "PDF of %s after the pause" % n)
    issue_ok(srv, "space-after")
    log = srv.log_text()
    assert '"event":"outbox_paused"' in log and '"event":"outbox_resumed"' in log


# ---- restart on a full disk: starts, reads, writes degraded, no SIGBUS -------

def test_restart_on_full_disk_serves_reads_without_sigbus(loopfs, servers, tmp_path):
    _, make = servers
    fs = loopfs(48)
    srv = make(fs.mnt / "fapiao", ["--min-free-mb", "8", "--probe-interval-ms", "300"],
               log_dir=tmp_path)
    srv.start()
    numbers = [issue_ok(srv, "full-%d" % i) for i in range(3)]
    time.sleep(1.5)  # the reserve file is made within a second (old: none)
    assert srv.stop() == 0
    wal = srv.data_dir / "fapiao.db-wal"
    # the disk fills up while the server is down, up to the last blocks: so
    # little that the first connection cannot build its -shm file
    left = fs.fill(leave=10 << 10)
    assert left < 64 << 10, left
    srv.start(timeout=30)  # old: exits "disk I/O error", or dies of SIGBUS
    assert srv.running()
    r = srv.request("GET", "/v1/invoices/%s" % numbers[0])
    assert r.status == 200, r
    r = srv.request("GET", "/v1/invoices?limit=10")
    assert r.status == 200 and len(r.json()["invoices"]) == 3, r
    wait_for(lambda: readyz(srv)[0].status == 503, 10, "degraded")
    assert_problem(srv.issue("full-refused"), 503, "DEGRADED")
    assert '"event":"reserve_released"' in srv.log_text()
    rc = srv.stop()
    assert rc == 0, "exit %r (SIGBUS is %d)" % (rc, -signal.SIGBUS)
    # space back: a restart issues again, nothing was lost
    fs.unfill()
    srv.start(timeout=30)
    wait_for(lambda: readyz(srv)[0].status == 200, 15, "ready after freeing space")
    for n in numbers:
        assert srv.request("GET", "/v1/invoices/%s" % n).status == 200
    issue_ok(srv, "full-after")
    print("wal after the stops: %s" % (wal.stat().st_size if wal.exists() else "none"))


def test_shm_guard_turns_sigbus_into_an_error(loopfs, tmp_path):
    """The read-only CLI (`fapiao audit verify`) on a full disk whose -shm
    must be rebuilt: a clean error or success, never a signal."""
    fs = loopfs(16)
    data = fs.mnt / "d"
    r = subprocess.run([BIN, "init", "--data-dir", str(data), "--demo", "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    for p in data.glob("fapiao.db-*"):
        p.unlink()
    # ten 1 KiB blocks left: the unix VFS extends -shm (32 KiB) by one byte
    # per 4 KiB page, which fits; the first store into a hole does not: SIGBUS
    fs.fill(leave=10 << 10)
    r = subprocess.run([BIN, "audit", "verify", "--data-dir", str(data)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode >= 0, "killed by signal %d: %s" % (-r.returncode, r.stderr)
    assert r.returncode == 0 or b"full" in r.stderr, r.stderr


# ---- the PDF directory briefly full ------------------------------------------

def test_pdf_dir_full_keeps_retrying_and_renders_after(loopfs, servers, tmp_path):
    _, make = servers
    srv = make(tmp_path / "srv", ["--retry-backoff-ms", "200", "--probe-interval-ms", "300"])
    pdf = loopfs(4, where=srv.data_dir / "pdf")
    pdf.fill(leave=0)
    srv.start()
    number = issue_ok(srv, "pdf-full")
    # old: three tries in about a second, then dead, the invoice failed
    # a try that hit the full disk leaves its error on the job (its attempt is
    # not counted, and the running state lasts only as long as a render)
    wait_for(lambda: "No space left" in (srv.db_query(
        "SELECT last_error FROM jobs WHERE invoice_number=? AND kind='render'",
        (number,))[0][0] or ""), 20, "a render try")
    wait_for(lambda: readyz(srv)[0].status == 503, 10, "/readyz naming the PDF storage")
    time.sleep(4 * SLOW)  # many backoffs of 200 ms
    (state, err), = srv.db_query("SELECT state, last_error FROM jobs WHERE invoice_number=? AND "
                                 "kind='render'", (number,))
    assert state in ("pending", "running"), (state, err)
    assert "No space left" in (err or ""), err
    status = srv.db_query("SELECT status FROM invoices WHERE number=?", (number,))[0][0]
    assert status == "accepted", status
    r, checks = readyz(srv)
    assert r.status == 503 and not checks["pdf_storage"]["ok"], checks["pdf_storage"]
    assert "No space left" in checks["pdf_storage"]["reason"], checks["pdf_storage"]
    assert checks["disk_free"]["ok"], checks["disk_free"]  # the data directory is fine
    # GET …/pdf: a problem with the cause and Retry-After, never a bare 500
    r = srv.request("GET", "/v1/invoices/%s/pdf" % number)
    if r.status == 202:  # caught between two tries (running)
        time.sleep(0.5)
        r = srv.request("GET", "/v1/invoices/%s/pdf" % number)
    p = assert_problem(r, 503, "PDF_RETRYING")
    assert "No space left" in p["message_en"], p
    assert int(r.header("Retry-After")) >= 1
    # issuing is not affected by the PDF disk
    issue_ok(srv, "pdf-full-2")

    pdf.unfill()
    wait_for(lambda: srv.request("GET", "/v1/invoices/%s/pdf" % number).status == 200, 90,
             "the PDF once space is back")
    wait_for(lambda: readyz(srv)[0].status == 200, 10, "ready again")
    status = srv.db_query("SELECT status FROM invoices WHERE number=?", (number,))[0][0]
    assert status == "rendered", status
    srv.stop()  # before the PDF filesystem is unmounted


# ---- a stalled disk: cgroup blkio throttle on the loop device -----------------

class Throttle:
    def __init__(self, dev_majmin, write_bps, write_iops):
        self.path = BLKIO / ("fpstall-%d-%s" % (os.getpid(), secrets.token_hex(4)))
        self.path.mkdir()
        self.pids = []
        self.majmin = dev_majmin
        (self.path / "blkio.throttle.write_bps_device").write_text(
            "%s %d\n" % (dev_majmin, write_bps))
        (self.path / "blkio.throttle.write_iops_device").write_text(
            "%s %d\n" % (dev_majmin, write_iops))

    def add(self, pid):
        (self.path / "cgroup.procs").write_text("%d\n" % pid)
        self.pids.append(pid)

    def close(self):
        # lift the limits first: bios queued in the throttle go at once
        for f in ("blkio.throttle.write_bps_device", "blkio.throttle.write_iops_device"):
            try:
                (self.path / f).write_text("%s 0\n" % self.majmin)
            except OSError:
                pass
        for pid in self.pids:
            try:
                (BLKIO / "cgroup.procs").write_text("%d\n" % pid)
            except OSError:
                pass
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)


@pytest.mark.skipif(not (BLKIO / "blkio.throttle.write_iops_device").exists(),
                    reason="needs cgroup v1 blkio")
def test_stalled_disk_times_out_queued_requests_and_opens_breaker(loopfs, servers, tmp_path):
    _, make = servers
    fs = loopfs(64)
    # the defaults: a write over 2 s is slow, an issue's deadline is 5 s
    srv = make(fs.mnt / "fapiao", ["--min-free-mb", "8", "--probe-interval-ms", "300",
                                   "--outbox-workers", "1"],
               log_dir=tmp_path)
    srv.start()
    issue_ok(srv, "stall-warm")
    srv.token()
    th = Throttle(fs.majmin, 2048, 1)
    try:
        th.add(srv.proc.pid)
        results = {}

        def one(i):
            key = "stall-%d" % i
            try:
                results[key] = srv.issue(key)
            except Exception as e:  # noqa: BLE001 — recorded, asserted below
                results[key] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(60)
        took = time.monotonic() - t0
        codes = {}
        for key, r in results.items():
            assert not isinstance(r, Exception), (key, r)
            if r.status == 201:
                codes.setdefault("201", []).append(key)
                continue
            p = r.json()
            codes.setdefault(p["code"], []).append(key)
            if p["code"] in ("WRITE_TIMEOUT", "WRITE_OUTCOME_UNKNOWN"):
                assert_problem(r, 503, p["code"])
                assert r.header("Retry-After"), r
                assert "Idempotency-Key" in p["message_en"], p
        # queued behind the stalled commit: answered at the deadline, nothing stored
        assert codes.get("WRITE_TIMEOUT"), codes
        print("answers under the stall: %s in %.1f s" % (
            {k: len(v) for k, v in codes.items()}, took))
        # /readyz names the slow write; the breaker opens
        def stalled():
            r, checks = readyz(srv)
            return r.status == 503 and not checks["database_write"]["ok"] and checks
        checks = wait_for(stalled, 30, "/readyz naming the stalled disk")
        why = checks["database_write"].get("reason", "") + checks["store_breaker"].get(
            "reason", "")
        assert "stalled" in why or "breaker" in why, checks
        wait_for(lambda: readyz(srv)[1]["store_breaker"]["state"] != 0, 30, "the breaker")
        assert srv.issue("stall-refused").status == 503
    finally:
        th.close()
    # unthrottled: recovery, and the unknown outcomes are learned by retrying
    wait_for(lambda: readyz(srv)[0].status == 200, 60, "recovery after the stall")
    for key in codes["WRITE_TIMEOUT"]:  # nothing of them was stored
        assert not srv.db_query("SELECT 1 FROM invoices WHERE serial=?", (key,)), key
    for key in results:
        r = srv.issue(key)
        assert r.status == 201, (key, r)
    n = srv.db_query("SELECT count(*), count(DISTINCT serial) FROM invoices "
                     "WHERE serial LIKE 'stall-%'")[0]
    assert n[0] == n[1] == len(results) + 1, n
