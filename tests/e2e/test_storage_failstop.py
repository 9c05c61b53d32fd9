"""Storage faults stop acknowledgements (docs/storage.md), on real files and a
real block device:

- write I/O errors on a loop device whose backing tmpfs fills and later
  grows again: no 201 after the first error, 503 STORE_FAILSTOP, /readyz
  names the cause, nothing clears it on a timer, the check from the disk
  and a restart decide, every acknowledged invoice survives, no number is
  issued twice;
- the database file deleted, renamed or replaced while serving;
- damaged b-tree pages found by the quick_check at start, and a stored
  document whose JSON no longer parses.

Every mount, loop device and directory is unique per run and removed in a
finally, also when the test fails."""
import json
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import time

import pytest

from conftest import BIN, SLOW, Server, assert_problem

FAST_PROBE = ["--probe-interval-ms", "500"]
# The breaker of degraded mode closes again after 2 s (open_ms) plus a
# probe: waiting well past that shows the fail-stop does not clear by time.
PAST_BREAKER_RECOVERY_S = 6


def readyz(srv):
    r = srv.request("GET", "/readyz", auth=False)
    return r, {c["name"]: c for c in r.json()["checks"]}


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def failstopped(srv):
    r, checks = readyz(srv)
    return r.status == 503 and r.json().get("status") == "failstop" and (r, checks)


def assert_failstop_refusal(resp):
    assert_problem(resp, 503, "STORE_FAILSTOP")
    body = resp.json()
    assert "operator" in body["message_en"] and "运维" in body["message_zh"], body
    return body


def emerg_lines(srv):
    return [json.loads(line) for line in srv.log_text().splitlines()
            if line.startswith("{") and '"event":"store_failstop"' in line]


def operator_token(srv):
    """A token of an instance-wide `operator` credential: the store check
    is the instance's, not a seller's (docs/security.md, role model)."""
    doc = json.loads(cli("keys", "create", "--data-dir", str(srv.data_dir), "--roles",
                         "operator", "--json").stdout)
    r = srv.get_token_response(doc["client_id"], doc["client_secret"])
    assert r.status == 200, r
    return r.json()["access_token"]


def cli(*args, check=True):
    r = subprocess.run([BIN] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120 * SLOW)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


# ---- item 2: the database file deleted, renamed or replaced -------------

def _delete(db):
    os.unlink(db)


def _rename(db):
    os.rename(db, str(db) + ".moved")


def _replace(db):
    # another SQLite file at the same path (a restore over a running server)
    tmp = str(db) + ".other"
    c = sqlite3.connect(tmp)
    c.execute("CREATE TABLE x(y)")
    c.commit()
    c.close()
    os.rename(tmp, db)


@pytest.mark.parametrize("how", [_delete, _rename, _replace], ids=["deleted", "renamed", "replaced"])
def test_database_file_gone_stops_writes(make_server, how):
    srv = make_server(serve_args=FAST_PROBE)
    issued = [srv.issue("gone-before-%d" % i) for i in range(3)]
    assert [r.status for r in issued] == [201] * 3, issued
    how(srv.db_path)
    # the health thread compares the open file with the path every second
    r, checks = wait_for(lambda: failstopped(srv), 10 * SLOW, "the fail-stop")
    assert checks["store_failstop"]["ok"] is False
    assert "file_replaced" in checks["store_failstop"]["reason"], checks
    assert r.json()["failstop"] == "file_replaced", r.json()
    after = srv.issue("gone-after")
    body = assert_failstop_refusal(after)
    assert "file_replaced" in body["message_en"], body
    lines = emerg_lines(srv)
    assert lines and lines[0]["level"] == "emerg" and lines[0]["cause"] == "file_replaced", lines
    metrics = srv.request("GET", "/metrics", auth=False).body.decode()
    assert "\nfapiao_store_failstop 1\n" in metrics
    # reads of what was acknowledged go on from the open file
    for r in issued:
        got = srv.request("GET", "/v1/invoices/%s" % r.json()["number"])
        assert got.status == 200, got
    # not on a timer
    time.sleep(PAST_BREAKER_RECOVERY_S)
    assert_failstop_refusal(srv.issue("gone-later"))
    assert failstopped(srv)
    if how is _delete:
        # the marker stops a restart or a re-init from starting over on an
        # empty database (which would issue the used numbers again)
        srv.stop()
        assert os.path.exists(str(srv.db_path) + "-failstop")
        for cmd in (["serve", "--data-dir", str(srv.data_dir), "--listen", "127.0.0.1:0"],
                    ["init", "--data-dir", str(srv.data_dir)]):
            r = cli(*cmd, check=False)
            assert r.returncode == 1 and b"do not run fapiao init" in r.stderr, (cmd, r)


def test_renamed_back_and_restarted_resumes(make_server):
    """The operator puts the file back, checks, restarts: the check from the
    disk finds every acknowledged invoice and writes resume without issuing
    a number twice."""
    srv = make_server(serve_args=FAST_PROBE)
    nums = [srv.issue("back-%d" % i).json()["number"] for i in range(5)]
    moved = str(srv.db_path) + ".moved"
    os.rename(srv.db_path, moved)
    wait_for(lambda: failstopped(srv), 10 * SLOW, "the fail-stop")
    assert_failstop_refusal(srv.issue("back-refused"))
    os.rename(moved, srv.db_path)
    marker = str(srv.db_path) + "-failstop"
    assert os.path.exists(marker), "no fail-stop marker written"
    assert "acked %s" % nums[-1] in open(marker).read()
    # still stopped: only a restart resumes writes
    time.sleep(2)
    assert_failstop_refusal(srv.issue("back-refused-2"))
    srv.stop()
    out = cli("check", "--data-dir", str(srv.data_dir), "--json")
    rep = json.loads(out.stdout)
    assert rep["ok"] and rep["from_disk"] and rep["after_failstop"], rep
    assert rep["acknowledged_checked"] >= 5 and rep["acknowledged_missing"] == 0, rep
    assert rep["audit_head_checked"] and rep["failstop_cleared"], rep
    assert not os.path.exists(marker)
    srv.start()
    r, checks = readyz(srv)
    assert r.status == 200 and checks["store_failstop"]["ok"], r
    new = srv.issue("back-after")
    assert new.status == 201, new
    assert new.json()["number"] not in nums
    for n in nums:
        assert srv.request("GET", "/v1/invoices/%s" % n).status == 200


# ---- item 8: damaged pages, damaged documents ---------------------------

def _page_of(db, table):
    c = sqlite3.connect(db)
    try:
        size = c.execute("PRAGMA page_size").fetchone()[0]
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
    finally:
        c.close()
    return size, root


@pytest.mark.parametrize("table", ["number_ranges", "jobs"])
def test_damaged_pages_found_at_start(make_server, table):
    srv = make_server(serve_args=FAST_PROBE)
    nums = [srv.issue("pages-%d" % i).json()["number"] for i in range(3)]
    srv.stop()  # a clean stop checkpoints: every page is in the database file
    size, root = _page_of(str(srv.db_path), table)
    with open(srv.db_path, "r+b") as f:
        # the b-tree page header (type, freeblock, cell count, content
        # start) and the start of the cell pointer array, in the real file
        off = (root - 1) * size + (100 if root == 1 else 0)
        f.seek(off)
        f.write(bytes([0x0d, 0xff, 0xff, 0x7f, 0xff, 0x00, 0x03]) + b"\xee" * 9)
    srv.start()
    # after a clean stop the start-up quick_check runs beside the server
    # (docs/storage.md): on this small database it is done within moments
    r, checks = wait_for(lambda: failstopped(srv), 20 * SLOW, "the start-up check to fail")
    assert r.json()["failstop"] == "corruption", r.json()
    # the quick_check finds it, or a read of the damaged page first (the
    # health thread reads the ranges every second)
    named = ("quick_check", "malformed")
    assert any(w in checks["store_failstop"]["reason"] for w in named), checks
    refused = srv.issue("pages-after")
    assert_failstop_refusal(refused)
    lines = emerg_lines(srv)
    assert lines and lines[0]["cause"] == "corruption", lines
    assert any(w in lines[0]["reason"] for w in named), lines
    # what can be read is served
    if table != "invoices":
        got = srv.request("GET", "/v1/invoices/%s" % nums[0])
        assert got.status == 200, got
    # and it stays so
    time.sleep(PAST_BREAKER_RECOVERY_S)
    assert_failstop_refusal(srv.issue("pages-later"))


def test_damaged_document_is_refused_not_served(make_server):
    srv = make_server(serve_args=FAST_PROBE)
    good = srv.issue("doc-good").json()["number"]
    bad = srv.issue("doc-bad").json()["number"]
    srv.stop()
    data = bytearray(srv.db_path.read_bytes())
    needle = ('"number":"%s"' % bad).encode()
    at = data.find(needle)
    assert at > 0, "the document is not in the database file"
    data[at] = 0x01  # one byte of the stored cell: same length, no longer JSON
    srv.db_path.write_bytes(bytes(data))
    srv.start()
    got = srv.request("GET", "/v1/invoices/%s" % bad)
    assert_problem(got, 500, "STORE_CORRUPT_ROW")
    assert bad in got.json()["message_en"], got.json()
    # the replay of its key is refused the same way, never a 201 of garbage
    replay = srv.issue("doc-bad")
    assert replay.status in (500, 503), replay
    assert replay.json()["code"] in ("STORE_CORRUPT_ROW", "STORE_FAILSTOP"), replay
    lst = srv.request("GET", "/v1/invoices?limit=10")
    assert_problem(lst, 500, "STORE_CORRUPT_ROW")
    # a damaged row means a damaged file: writes stop
    assert_failstop_refusal(srv.issue("doc-after"))
    assert srv.request("GET", "/v1/invoices/%s" % good).status == 200


# ---- item 1: write I/O errors on a real block device ----------------------

def _run(*cmd, check=True):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d): %s" % (cmd, r.returncode, r.stderr.decode()))
    return r.stdout.decode().strip()


def _tmpfs_used(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


class FlakyDisk:
    """ext4 (no journal, so it keeps accepting writes after errors, as a disk
    that recovers does) on a loop device whose backing file lives on a small
    tmpfs: once the tmpfs is full, writes to the device fail with EIO; after
    `grow` they work again.  Names are unique per run; `close` undoes
    everything that was set up, whatever failed."""

    def __init__(self):
        tag = "%d-%06x" % (os.getpid(), random.randrange(1 << 24))
        self.top = tempfile.mkdtemp(prefix="fapiao-eio-%s-" % tag)
        self.backing = os.path.join(self.top, "backing")
        self.mnt = os.path.join(self.top, "mnt")
        os.mkdir(self.backing)
        os.mkdir(self.mnt)
        self.tmpfs_name = "fapiao-eio-%s" % tag
        self.loop = None
        self.mounted = self.tmpfs = False
        _run("mount", "-t", "tmpfs", "-o", "size=64m", self.tmpfs_name, self.backing)
        self.tmpfs = True
        img = os.path.join(self.backing, "disk.img")
        with open(img, "wb") as f:
            f.truncate(160 << 20)  # sparse: blocks cost tmpfs space once written
        _run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", img)
        self.loop = _run("losetup", "-f", "--show", img)
        _run("mount", self.loop, self.mnt)
        self.mounted = True

    def limit(self, headroom):
        """Lets the device take only about `headroom` more bytes."""
        size = _tmpfs_used(self.backing) + headroom
        _run("mount", "-o", "remount,size=%d" % size, self.backing)

    def grow(self):
        _run("mount", "-o", "remount,size=256m", self.backing)

    def close(self):
        errors = []
        if self.mounted:
            if subprocess.run(["umount", self.mnt]).returncode != 0:
                subprocess.run(["umount", "-l", self.mnt])
        if self.loop:
            if subprocess.run(["losetup", "-d", self.loop]).returncode != 0:
                errors.append("losetup -d %s failed" % self.loop)
        if self.tmpfs:
            if subprocess.run(["umount", self.backing]).returncode != 0:
                subprocess.run(["umount", "-l", self.backing])
        shutil.rmtree(self.top, ignore_errors=True)
        return errors


def _needs_root_and_loop():
    if os.geteuid() != 0:
        pytest.skip("needs root (mount, losetup)")
    for tool in ("losetup", "mkfs.ext4", "mount"):
        if shutil.which(tool) is None:
            pytest.skip("needs %s" % tool)


def test_write_eio_fails_stop_until_operator(tmp_path):
    _needs_root_and_loop()
    disk = FlakyDisk()
    srv = None
    try:
        srv = Server(disk.mnt, FAST_PROBE + ["--outbox-workers", "1"])
        srv.start()
        op = operator_token(srv)  # made before the fault: the CLI writes
        acked = {}  # key -> number of every 201
        for i in range(5):
            r = srv.issue("eio-warm-%d" % i)
            assert r.status == 201, r
            acked["eio-warm-%d" % i] = r.json()["number"]
        disk.limit(3 << 20)
        # issue until the device fails; nothing but 201 before, and never a
        # 201 after the first refusal
        first_bad, after = None, []
        deadline = time.monotonic() + 180 * SLOW
        i = 0
        while time.monotonic() < deadline and len(after) < 30:
            key = "eio-%d" % i
            i += 1
            r = srv.issue(key)
            if first_bad is None:
                if r.status == 201:
                    acked[key] = r.json()["number"]
                    continue
                first_bad = (key, r)
            else:
                after.append((key, r))
        assert first_bad is not None, "the device never failed (%d invoices)" % len(acked)
        key, r = first_bad
        body = assert_failstop_refusal(r)
        assert "io_error" in body["message_en"], body
        unknown = [key]  # its COMMIT may or may not have reached the disk
        assert [a[1].status for a in after] == [503] * len(after), after[:3]
        for k, a in after:
            assert_failstop_refusal(a)
        rz, checks = readyz(srv)
        assert rz.status == 503 and rz.json()["failstop"] == "io_error", rz
        assert "io_error" in checks["store_failstop"]["reason"], checks
        lines = emerg_lines(srv)
        assert lines and lines[0]["level"] == "emerg" and lines[0]["cause"] == "io_error", lines

        # the device works again; the fail-stop does not clear by itself
        disk.grow()
        time.sleep(PAST_BREAKER_RECOVERY_S)
        assert_failstop_refusal(srv.issue("eio-after-grow"))
        assert failstopped(srv)
        # reads go on
        some = list(acked.values())[-1]
        assert srv.request("GET", "/v1/invoices/%s" % some).status == 200

        # operator: the check on the running server reads from the disk,
        # and does not resume writes
        chk = srv.post_json("/v1/admin/store/check", {}, auth=op)
        assert chk.status == 200, chk
        cj = chk.json()
        assert cj["from_disk"] is True and cj["writes"] == "stopped", cj
        assert_failstop_refusal(srv.issue("eio-after-check"))

        # operator: restart; the start checks from the disk what the marker
        # names (written once the disk took it again)
        srv.stop()
        marker = open(str(srv.db_path) + "-failstop").read()
        assert "acked %s" % list(acked.values())[-1] in marker, marker
        srv.start()
        rz, checks = readyz(srv)
        resumed = rz.json().get("status") != "failstop"
        start_log = srv.log_text().split("=== serve on port")[-1]
        if resumed:
            assert '"event":"store_failstop_cleared"' in start_log, start_log
            assert not os.path.exists(str(srv.db_path) + "-failstop")
            fresh = srv.issue("eio-resumed")
            assert fresh.status == 201, fresh
            acked["eio-resumed"] = fresh.json()["number"]
        else:
            # the check from the disk found a loss: read-only, restore from a
            # backup, and the loss is named (see the docstring)
            reason = rz.json()["failstop_reason"]
            assert "restore" in reason and "check_failed" == rz.json()["failstop"], rz.json()
            assert_failstop_refusal(srv.issue("eio-still-stopped"))
            startup = [json.loads(l) for l in start_log.splitlines()
                       if l.startswith("{") and '"cause":"check_failed"' in l]
            assert startup, start_log
        # every acknowledged invoice is there, each under its own number --
        # or, on a storage stack that lost an fsynced write, the start-up
        # check named it and writes stay stopped
        missing = []
        for k, n in acked.items():
            got = srv.request("GET", "/v1/invoices/%s" % n)
            if got.status != 200:
                # lost (404), or, after a check that found a loss, on a page
                # the lost write left unreadable (503: the read failed)
                assert got.status == 404 or (not resumed and got.status == 503), \
                    (k, n, got, resumed, srv.log_tail())
                missing.append(n)
        if resumed:
            assert not missing, missing
        else:
            full_reason = startup[0]["reason"]
            for n in missing:
                assert n in full_reason or "..." in full_reason or len(full_reason) > 250, \
                    (n, full_reason)
        assert len(set(acked.values())) == len(acked)
        if resumed:
            # the one whose outcome was unknown: a retry replays or issues,
            # never with a number already acknowledged to another key
            for k in unknown:
                again = srv.issue(k)
                assert again.status in (200, 201), again
                n = again.json()["number"]
                assert n not in {v for kk, v in acked.items() if kk != k}, (k, n)
        print("acknowledged %d, first refusal after %d requests, resumed after restart: %s, "
              "acknowledged but lost by the storage stack: %s"
              % (len(acked), i - len(after), resumed, missing))
    finally:
        if srv is not None:
            srv.close()
        problems = disk.close()
        assert not problems, problems


def test_checks_beside_cli_commands_keep_the_wal(make_server):
    """The checks inside a running server (the start-up quick_check beside
    it, POST /v1/admin/store/check) must not drop SQLite's file locks (a
    close() of any fd on the database does that): otherwise a CLI command's
    last close checkpoints and deletes the WAL under the server, which then
    sees its WAL deleted and stops writing."""
    srv = make_server(serve_args=FAST_PROBE)
    assert srv.issue("cli-1").status == 201
    chk = srv.post_json("/v1/admin/store/check", {"full": True}, auth=operator_token(srv))
    assert chk.status == 200 and chk.json()["ok"] and chk.json()["writes"] == "allowed", chk
    for i in range(2):
        cli("keys", "create", "--data-dir", str(srv.data_dir), "--roles", "issuer")
        cli("ranges", "list", "--data-dir", str(srv.data_dir))
    time.sleep(2)  # the health thread's file check runs every second
    r, checks = readyz(srv)
    assert r.status == 200 and checks["store_failstop"]["ok"], r.json()
    assert srv.issue("cli-2").status == 201
