"""Backups and continuous archiving (docs/recovery.md), on real files and
real processes: kill -9 and rm -rf of the data directory, then restore to
the latest archived state; a point-in-time restore; a flipped byte, a
missing and a reordered file each fail verify naming the file; a restored
directory passes `fapiao audit verify` and serves, numbering on.

No timing assertions: the tests wait (bounded) for the archive to report a
state, then assert on states and counts."""
import json
import re
import shutil
import subprocess
import time

from conftest import BIN, SLOW

INTERVAL = 1  # --archive-interval for these tests


def run(*args, ok=True):
    r = subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120 * SLOW)
    out = r.stdout.decode() + r.stderr.decode()
    if ok:
        assert r.returncode == 0, "fapiao %s failed (%d): %s" % (args, r.returncode, out)
    return r.returncode, out


def archive_mark(srv):
    """fapiao_archive_last_success_timestamp_seconds from /metrics."""
    r = srv.request("GET", "/metrics", auth=False)
    assert r.status == 200
    m = re.search(rb"^fapiao_archive_last_success_timestamp_seconds ([0-9.]+)$", r.body, re.M)
    assert m, "no archive metric"
    return float(m.group(1))


def wait_archived(srv, t):
    """Until the archive holds everything committed before wall time t
    (bounded: 30 s)."""
    deadline = time.monotonic() + 30 * SLOW
    while time.monotonic() < deadline:
        if archive_mark(srv) > t:
            return
        time.sleep(0.1)
    raise AssertionError("the archive did not pass %.3f:\n%s" % (t, srv.log_tail()))


def issue_many(srv, prefix, n, log):
    """Issues n invoices; log gets (key, number, wall time of the 201)."""
    tok = srv.token()
    for i in range(n):
        key = "%s-%d" % (prefix, i)
        r = srv.issue(key, auth=tok)
        assert r.status == 201, r
        log.append((key, r.json()["number"], time.time()))


def numbers(db):
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return {row[0] for row in con.execute("SELECT number FROM invoices")}
    finally:
        con.close()


def test_kill9_rmrf_restore_latest_then_serve(make_server, tmp_path):
    bset = tmp_path / "set"
    keys = tmp_path / "keys.txt"
    srv = make_server(["--archive", str(bset), "--archive-interval", str(INTERVAL)])
    run("backup", "keys", "--data-dir", srv.data_dir, "--to", keys)
    had = [k for k in ("token.key", "audit.key", "webhook.key", "tls/server.key")
           if (srv.data_dir / k).exists()]
    log = []
    issue_many(srv, "a", 40, log)
    t_a = time.time()
    wait_archived(srv, t_a)         # every one of these is archived now
    issue_many(srv, "b", 20, log)   # and these may or may not be
    t_kill = time.time()
    srv.kill9()
    shutil.rmtree(srv.data_dir)
    _, out = run("backup", "restore", "--from", bset, "--to", srv.data_dir, "--to-latest",
                 "--keys", keys)
    missing = [l for l in out.splitlines() if "missing private keys" in l]
    assert all(k not in (missing[0].split("(")[0] if missing else "") for k in had), out
    got = numbers(srv.db_path)
    acked = {n for _, n, _ in log}
    before = {n for _, n, t in log if t <= t_a}
    assert before <= got, "acknowledged and archived, yet lost: %s" % sorted(before - got)
    assert got <= acked, "restored invoices nobody was answered 201 for"
    lost = [(k, n, t) for k, n, t in log if n not in got]
    # the real RPO seen: acknowledged invoices lost, and how long before
    # the kill the newest of them was acknowledged
    rpo = (t_kill - min(t for _, _, t in lost)) if lost else 0.0
    print("RPO seen: %d of %d acknowledged invoices lost; oldest lost acked %.3f s before the "
          "kill (interval %d s)" % (len(lost), len(log), rpo, INTERVAL))
    # every lost one was acknowledged less than an interval (plus the
    # round) before the kill: the ones the archive held are all back
    assert all(t > t_a for _, _, t in lost)
    run("audit", "verify", "--data-dir", srv.data_dir)
    srv.start()
    r = srv.issue("after-restore", auth=srv.token())
    assert r.status == 201, r
    new = r.json()["number"]
    assert new not in got, "a number was reused"
    assert int(new) > max(int(n) for n in got), "the numbering did not follow on"
    srv.stop()


def test_point_in_time_restore(make_server, tmp_path):
    bset = tmp_path / "set"
    srv = make_server(["--archive", str(bset), "--archive-interval", str(INTERVAL)])
    log_a, log_b = [], []
    issue_many(srv, "before", 15, log_a)
    t = time.time()  # after every 201 of A, before B's first request
    issue_many(srv, "mistake", 15, log_b)
    wait_archived(srv, time.time())
    srv.stop()
    out_dir = tmp_path / "pitr"
    run("backup", "restore", "--from", bset, "--to", out_dir, "--to-time", "%.3f" % t)
    got = numbers(out_dir / "fapiao.db")
    assert got == {n for _, n, _ in log_a}, "a point-in-time restore must hold exactly A"
    latest = tmp_path / "latest"
    run("backup", "restore", "--from", bset, "--to", latest, "--to-latest")
    assert numbers(latest / "fapiao.db") == {n for _, n, _ in log_a + log_b}
    # a target that exists is never written into
    rc, out = run("backup", "restore", "--from", bset, "--to", latest, "--to-latest", ok=False)
    assert rc == 1 and "exists" in out


def newest_full(bset):
    return sorted(p.name for p in bset.glob("full-*"))[-1]


def backup_files(bset):
    return sorted(p for p in bset.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_flipped_missing_reordered_files_fail_verify_by_name(make_server, tmp_path):
    bset = tmp_path / "set"
    srv = make_server(["--archive", str(bset), "--archive-interval", str(INTERVAL)])
    log = []
    for part in range(3):  # at least three log segments
        issue_many(srv, "p%d" % part, 5, log)
        wait_archived(srv, time.time())
    srv.stop()
    run("backup", "create", "--data-dir", srv.data_dir, "--to", bset)  # a second full
    _, out = run("backup", "verify", "--from", bset)
    assert out.count(" ok: ") == 2, out
    files = backup_files(bset)
    segs = [p for p in files if p.suffix == ".seg"]
    assert len(segs) >= 3 and len(files) >= 10
    checked = 0
    for f in files:
        work = tmp_path / ("w%d" % checked)
        shutil.copytree(bset, work)
        target = work / f.relative_to(bset)
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        rc, out = run("backup", "verify", "--from", work, ok=False)
        rel = str(f.relative_to(bset))
        assert rc == 1, "a flipped byte in %s passed verify:\n%s" % (rel, out)
        named = rel in out or (f.name == "SHA256SUMS" and
                               str(f.parent.relative_to(bset)) in out)
        assert named, "verify did not name %s:\n%s" % (rel, out)
        # the restore refuses it too, and writes nothing
        rc, out = run("backup", "restore", "--from", work, "--to", work / "r", "--to-latest",
                      ok=False)
        if rel.startswith(newest_full(bset)):
            # the restore uses this full: it must refuse, name it and write nothing
            assert rc == 1 and rel in out, out
            assert not (work / "r").exists() and not (work / "r.tmp").exists()
        checked += 1
    # a missing segment, and two segments swapped
    work = tmp_path / "missing"
    shutil.copytree(bset, work)
    (work / segs[1].relative_to(bset)).unlink()
    rc, out = run("backup", "verify", "--from", work, ok=False)
    assert rc == 1 and segs[1].name in out, out
    work = tmp_path / "swapped"
    shutil.copytree(bset, work)
    a, b = work / segs[0].relative_to(bset), work / segs[1].relative_to(bset)
    tmp = a.with_suffix(".x")
    a.rename(tmp), b.rename(a), tmp.rename(b)
    rc, out = run("backup", "verify", "--from", work, ok=False)
    assert rc == 1 and segs[0].name in out, out
    shutil.rmtree(work / newest_full(bset))  # so the restore must use the swapped log
    rc, out = run("backup", "restore", "--from", work, "--to", tmp_path / "never", "--to-latest",
                  ok=False)
    assert rc == 1 and segs[0].name in out
    assert not (tmp_path / "never").exists() and not (tmp_path / "never.tmp").exists()
    print("verify named each of %d files with a flipped byte" % checked)


def test_bad_counts_refused_before_anything_is_done(make_server, tmp_path):
    """--keep-full and --older-than-days take whole numbers; anything else is
    a usage error naming the flag (before, "abc" read as 0: keep every full)."""
    srv = make_server(start=False)
    to = tmp_path / "backups"
    for args in (("create", "--data-dir", srv.data_dir, "--to", to, "--keep-full", "abc"),
                 ("create", "--data-dir", srv.data_dir, "--to", to, "--keep-full", "-1"),
                 ("prune", "--from", to, "--older-than-days", "7x")):
        rc, out = run("backup", *args, ok=False)
        assert rc == 2, (args, out)
        flag = args[-2]
        assert flag in out and "须为" in out and "whole number" in out, out
    assert not to.exists() or not any(to.iterdir())


def test_archive_refused_on_postgresql_in_both_languages(make_server, tmp_path):
    """--archive ships SQLite's change log: with a PostgreSQL database it is a
    usage error naming pgBackRest, in Chinese and English (before: an
    English-only "the change log needs a writing SQLite store" after the store
    was opened), and nothing is written to the archive directory."""
    srv = make_server(start=False)
    arch = tmp_path / "archive"
    rc, out = run("serve", "--data-dir", srv.data_dir, "--listen", "127.0.0.1:0",
                  "--database", "postgresql://127.0.0.1:1/fapiao", "--archive", arch, ok=False)
    assert rc == 2, out
    assert "pgBackRest" in out and "只适用于" in out and "works with the embedded SQLite" in out, out
    assert not arch.exists()


def test_point_in_time_restore_never_reuses_a_number(make_server, tmp_path):
    """The numbers given out after T are in buyers' hands: a restore to T
    moves each range past the highest number the archive holds (the log
    past T, and a later full's base and log), so serving the restored
    directory never issues an acknowledged number again."""
    bset = tmp_path / "set"
    keys = tmp_path / "keys.txt"
    srv = make_server(["--archive", str(bset), "--archive-interval", str(INTERVAL)])
    run("backup", "keys", "--data-dir", srv.data_dir, "--to", keys)
    log_a, log_b, log_c = [], [], []
    issue_many(srv, "before", 10, log_a)
    t = time.time()
    issue_many(srv, "after", 10, log_b)        # in the first full's log, past T
    wait_archived(srv, time.time())
    srv.stop()
    srv.start()                                # the archiver starts a second full
    issue_many(srv, "later", 10, log_c)        # in the second full's log
    wait_archived(srv, time.time())
    srv.stop()
    assert len(list(bset.glob("full-*"))) >= 2
    shutil.rmtree(srv.data_dir)
    _, out = run("backup", "restore", "--from", bset, "--to", srv.data_dir, "--to-time",
                 "%.3f" % t, "--keys", keys)
    assert numbers(srv.db_path) == {n for _, n, _ in log_a}, "the restore must hold exactly A"
    srv.start()
    r = srv.issue("after-restore", auth=srv.token())
    assert r.status == 201, r
    new = int(r.json()["number"])
    acked = [int(n) for _, n, _ in log_a + log_b + log_c]
    assert new > max(acked), "number %d reuses or falls behind one acknowledged (max %d)" % (
        new, max(acked))
    assert "range 1 (" in out, out  # what the restore moved (English: the test locale)
    srv.stop()


def test_kill9_before_the_next_round_restore_latest_never_reuses_a_number(make_server, tmp_path):
    """Numbers acknowledged after the archive's last round are unknown to
    the log, but never to the archive: the writer reserves numbers in the
    set (fsynced) before it gives them out, and the restore moves each range
    past its reservation.  A long interval: no log round after the first
    full, so every invoice below is acknowledged after the last round."""
    bset = tmp_path / "set"
    keys = tmp_path / "keys.txt"
    srv = make_server(["--archive", str(bset), "--archive-interval", "3600"])
    run("backup", "keys", "--data-dir", srv.data_dir, "--to", keys)
    deadline = time.monotonic() + 30 * SLOW
    while not list(bset.glob("full-*/manifest.sha256")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(bset.glob("full-*/manifest.sha256")), "no first full"
    log = []
    issue_many(srv, "unarchived", 30, log)
    srv.kill9()
    shutil.rmtree(srv.data_dir)
    _, out = run("backup", "restore", "--from", bset, "--to", srv.data_dir, "--to-latest",
                 "--keys", keys)
    acked = [int(n) for _, n, _ in log]
    assert not numbers(srv.db_path) & {n for _, n, _ in log}, "not archived, yet restored?"
    srv.start()
    r = srv.issue("after-restore", auth=srv.token())
    assert r.status == 201, r
    new = int(r.json()["number"])
    assert new > max(acked), "number %d reuses or falls behind one acknowledged (max %d)" % (
        new, max(acked))
    assert "range 1 (" in out and "reserved" in out, out
    srv.stop()
