"""Backup and archive health (issue 18 "Metrics and health",
docs/recovery.md): with `serve --archive`, /metrics has the last archive
and full backup times, the archive lag, and the last `fapiao backup verify`
outcome and time (a failed or a stale verify is seen without reading the
set); /readyz warns, still ready, while the archive-command falls behind.

No timing assertions: bounded waits for a state, then states, counts and
the order of timestamps."""
import re
import subprocess
import time

from conftest import BIN, SLOW


def metrics(srv):
    r = srv.request("GET", "/metrics", auth=False)
    assert r.status == 200
    return {m.group(1).decode(): float(m.group(2)) for m in
            re.finditer(rb"^(fapiao_(?:archive|backup)_[a-z_]+) (-?[0-9.]+)$", r.body, re.M)}


def wait_metric(srv, pred, what):
    deadline = time.monotonic() + 30 * SLOW
    m = {}
    while time.monotonic() < deadline:
        m = metrics(srv)
        if pred(m):
            return m
        time.sleep(0.1)
    raise AssertionError("%s: %r\n%s" % (what, m, srv.log_tail()))


def verify(*args):
    r = subprocess.run([BIN, "backup", "verify"] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120 * SLOW)
    return r.returncode, r.stdout.decode()


def test_verify_outcome_and_time_in_metrics(make_server, tmp_path):
    bset = tmp_path / "set"
    srv = make_server(["--archive", str(bset), "--archive-interval", "1"])
    for i in range(3):
        assert srv.issue("m-%d" % i).status == 201
    t_issued = time.time()
    m = wait_metric(srv, lambda m: m.get("fapiao_archive_last_success_timestamp_seconds", 0)
                    > t_issued and m.get("fapiao_backup_last_full_timestamp_seconds", 0) > 0,
                    "the archive never held the invoices")
    for name in ("fapiao_archive_lag_seconds", "fapiao_archive_records_total",
                 "fapiao_archive_command_pending", "fapiao_archive_command_failures_total"):
        assert name in m, name
    assert m["fapiao_backup_last_verify_ok"] == -1
    assert m["fapiao_backup_last_verify_timestamp_seconds"] == 0
    first_full = sorted(p.name for p in bset.glob("full-*"))[0]
    srv.stop()

    t0 = time.time()
    rc, out = verify("--from", bset)
    t1 = time.time()
    assert rc == 0, out
    srv.start()  # its archiver starts a second full in the same set
    m = metrics(srv)
    assert m["fapiao_backup_last_verify_ok"] == 1
    assert t0 - 1 <= m["fapiao_backup_last_verify_timestamp_seconds"] <= t1 + 1, (t0, t1, m)

    # a corrupted file in the first full (the running archiver does not
    # touch it): the verify fails, and the metrics say so at once
    gz = bset / first_full / "fapiao.db.gz"
    data = bytearray(gz.read_bytes())
    data[len(data) // 2] ^= 0x01
    gz.write_bytes(bytes(data))
    t2 = time.time()
    rc, out = verify("--from", bset, "--backup", first_full)
    assert rc == 1 and first_full in out, out
    m = metrics(srv)
    assert m["fapiao_backup_last_verify_ok"] == 0
    assert m["fapiao_backup_last_verify_timestamp_seconds"] >= t2 - 1
    srv.stop()


def test_readyz_warns_while_the_archive_command_fails(make_server, tmp_path):
    srv = make_server(["--archive", str(tmp_path / "set"), "--archive-interval", "1",
                       "--archive-command", "false"])
    assert srv.issue("w-1").status == 201

    def archive_check():
        r = srv.request("GET", "/readyz", auth=False)
        body = r.json()
        checks = body.get("checks", body) if isinstance(body, dict) else body
        for c in checks:
            if isinstance(c, dict) and c.get("name") == "archive":
                return r.status, c
        raise AssertionError("no archive check in /readyz: %r" % body)

    deadline = time.monotonic() + 30 * SLOW
    status, c = archive_check()
    while not c["warning"] and time.monotonic() < deadline:
        time.sleep(0.1)
        status, c = archive_check()
    assert c["warning"] and c["command_pending"] > 0, c
    assert status == 200 and c["ok"], "a late archive is a warning, not unready"
    m = metrics(srv)
    assert m["fapiao_archive_command_pending"] > 0
    assert m["fapiao_archive_command_failures_total"] > 0
    srv.stop()


def test_archive_command_gets_every_file(make_server, tmp_path):
    """--archive-command runs once per new file with %p and %f (it used to
    run `sh -c ""` for each: every file "taken", none pushed)."""
    bset, dest = tmp_path / "set", tmp_path / "pushed"
    dest.mkdir()
    srv = make_server(["--archive", str(bset), "--archive-interval", "1",
                       "--archive-command", "cp -r %%p %s/%%f" % dest])
    for part in range(2):  # at least two log segments
        assert srv.issue("c-%d" % part).status == 201
        t = time.time()
        wait_metric(srv, lambda m: m.get("fapiao_archive_last_success_timestamp_seconds", 0) > t,
                    "the archive never held invoice %d" % part)
    wait_metric(srv, lambda m: m.get("fapiao_archive_command_pending", 1) == 0,
                "the command never took the files")
    srv.stop()
    fulls = {p.name for p in bset.glob("full-*")}
    segs = {p.name for p in bset.glob("full-*/log/*.seg")}
    assert len(fulls) == 1 and len(segs) >= 2, (fulls, segs)
    assert {p.name for p in dest.glob("full-*")} == fulls
    assert {p.name for p in dest.glob("*.seg")} == segs
    for s in segs:
        assert (dest / s).read_bytes() == next(bset.glob("full-*/log/" + s)).read_bytes()
