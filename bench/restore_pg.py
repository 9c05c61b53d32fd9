#!/usr/bin/python3
"""restore_pg.py — the PostgreSQL variant of bench/restore.sh (issue 18;
docs/recovery.md "PostgreSQL"):

    PG=1 bench/restore.sh [BUILD_DIR] [N]     (or bench/restore_pg.py BUILD_DIR N)

A throw-away PostgreSQL 15 with the shipped pgBackRest files (the drill's
helpers, tests/drills/pgpitr.py), `fapiao serve --database` on it:
1. N invoices through HTTPS by bench_ratebench (up to FILL_RATE/s, rounds
   until N are stored);
2. issue latency at STEADY_RATE/s, then the same while `pgbackrest backup
   --type=full` runs (the stall: p99 and the requests not answered 201);
3. full backup time, `pgbackrest verify` time, and the RTO: `pgbackrest
   restore` into a new data directory plus PostgreSQL's start, WAL replay and
   promotion, to the latest archived state;
4. the archive lag under LAG_RATE/s for LAG_SECONDS: now() minus
   pg_stat_archiver.last_archived_time, sampled every second (bounded by
   archive_timeout = 60 s when little WAL is written).
Not in make test.  Results: stdout and bench/results/restore-pg-latest.md
(RESTORE_OUT=FILE elsewhere)."""
import os
import subprocess
import sys
import shutil
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(sys.argv[1] if len(sys.argv) > 1 else "build")
if not BUILD.is_absolute():
    BUILD = REPO / BUILD
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
ENV = os.environ.get
FILL_RATE, STEADY_RATE = int(ENV("FILL_RATE", "6000")), int(ENV("STEADY_RATE", "500"))
LAG_RATE, LAG_SECONDS = int(ENV("LAG_RATE", "2000")), int(ENV("LAG_SECONDS", "20"))
FILL_ROUNDS = int(ENV("FILL_ROUNDS", "100"))
OUT = Path(ENV("RESTORE_OUT", str(REPO / "bench" / "results" / "restore-pg-latest.md")))
os.environ["FAPIAO_BIN"] = str(BUILD / "fapiao")
sys.path.insert(0, str(REPO / "tests" / "drills"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import pgpitr  # noqa: E402
import conftest as e2e  # noqa: E402

RB = BUILD / "bench_ratebench"


def field(line, name):
    for part in line.split():
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    return "?"


def lat(line):
    f = lambda n: field(line, n)  # noqa: E731
    return "%s / %s / %s; %s (%s / %s / %s / %s) of %s" % (
        f("ok_p50_ms"), f("ok_p99_ms"), f("ok_max_ms"), f("errors"), f("shed"), f("other"),
        f("transport"), f("unfinished"), f("sent"))


def main():
    why = pgpitr.missing()
    if why or not RB.exists():
        print("restore_pg.py: %s" % (why or "%s missing (make build)" % RB), file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="fapiao-restore-pg.", dir=ENV("FAPIAO_BENCH_TMPDIR", "/tmp")))
    os.chmod(tmp, 0o755)  # the server's user goes through it to pg/
    ws = pgpitr.Workspace(tmp / "pg")
    pg = pgpitr.Cluster(ws, "primary")
    rs = None
    srv = None
    rows = []
    try:
        pg.initdb()
        pg.start()
        subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "fapiao",
                        "fapiao"], check=True, timeout=60)
        pg.pgbackrest("stanza-create")
        srv = e2e.Server(tmp / "node", serve_args=["--database", pg.url, "--client-rate", "0",
                                                   "--max-connections-per-ip", "512"])
        srv.start()
        srv.stop()
        pgpitr.seed_from_sqlite(pg, srv.db_path)
        srv.start()
        tok = srv.token()

        def rb(rate, duration, prefix):
            r = subprocess.run([str(RB), "--url", "https://127.0.0.1:%d/v1/invoices" % srv.port,
                                "--token", tok, "--body", str(REPO / "examples" / "invoice.json"),
                                "--cacert", srv.ca_cert, "--rate", str(rate), "--duration",
                                str(duration), "--key-prefix", prefix, "--connections", "32",
                                "--warmup-url", "https://127.0.0.1:%d/healthz" % srv.port],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=duration + 120)
            return ([l for l in r.stdout.decode().splitlines()
                     if l.startswith("ratebench rate=")] or ["ratebench failed"])[-1]

        def stored():
            return pg.rows("SELECT count(*) AS n FROM invoices")[0]["n"]

        print("# filling %d invoices at up to %d/s" % (N, FILL_RATE))
        t0, have, part = time.monotonic(), 0, 0
        while have < N and part < FILL_ROUNDS:
            chunk = min(N - have, FILL_RATE * 60)
            rb(FILL_RATE, -(-chunk // FILL_RATE), "fill%d" % part)
            part, have = part + 1, stored()
            print("  round %d: %d stored" % (part, have))
        fill_s = time.monotonic() - t0
        size = pg.rows("SELECT pg_database_size('fapiao') / 1048576 AS mb")[0]["mb"]
        rows.append(("invoices stored (N=%d) / database size / fill time" % N,
                     "%d / %d MB / %.1f s" % (have, size, fill_s)))

        print("# steady %d/s without a backup" % STEADY_RATE)
        before = rb(STEADY_RATE, 10, "before")
        print(before)
        print("# the same load with pgbackrest backup --type=full running")
        during = []
        th = threading.Thread(target=lambda: during.append(rb(STEADY_RATE, 30, "during")))
        th.start()
        time.sleep(1)
        t0 = time.monotonic()
        pg.pgbackrest("backup", "--type=full", timeout=3600)
        bk_s = time.monotonic() - t0
        th.join()
        print(during[0])
        rows.append(("pgbackrest backup --type=full (zstd, 2 processes, start-fast)",
                     "%.1f s" % bk_s))
        rows.append(("issue latency at %d/s, no backup: ok p50 / p99 / max ms; not 201 (shed 429 "
                     "/ other / transport / unfinished)" % STEADY_RATE, lat(before)))
        rows.append(("the same during the full backup (30 s run, backup from second 1)",
                     lat(during[0])))
        t0 = time.monotonic()
        pg.pgbackrest("verify", timeout=3600)
        rows.append(("pgbackrest verify (every file's checksum, WAL continuity)",
                     "%.1f s" % (time.monotonic() - t0)))

        print("# archive lag at %d/s for %ds" % (LAG_RATE, LAG_SECONDS))
        lag_out = []
        th = threading.Thread(target=lambda: lag_out.append(rb(LAG_RATE, LAG_SECONDS, "lag")))
        th.start()
        maxlag = 0.0
        for _ in range(LAG_SECONDS + 2):
            r = pg.rows("SELECT coalesce(extract(epoch FROM now() - last_archived_time), 0)"
                        " AS lag FROM pg_stat_archiver")
            maxlag = max(maxlag, float(r[0]["lag"]))
            time.sleep(1)
        th.join()
        rows.append(("archive lag at %d/s: max now() - pg_stat_archiver.last_archived_time"
                     % LAG_RATE, "%.1f s; load achieved %s/s, p99 %s ms, errors %s" % (
                         maxlag, field(lag_out[0], "rate"), field(lag_out[0], "ok_p99_ms"),
                         field(lag_out[0], "errors"))))
        srv.stop()
        final = stored()
        pg.pgbackrest("check")  # the last segment archived
        pg.stop()

        rs = pgpitr.Cluster(ws, "restored")
        t0 = time.monotonic()
        pg_r = rs.pgbackrest("restore", "--type=default", timeout=3600)
        t1 = time.monotonic()
        rs.start()
        pgpitr.wait_for(lambda: rs.rows("SELECT pg_is_in_recovery() AS r")[0]["r"] is False,
                        "the restored cluster to be promoted", seconds=3600)
        t2 = time.monotonic()
        got = rs.rows("SELECT count(*) AS n FROM invoices")[0]["n"]
        assert pg_r.returncode == 0
        rows.append(("restore to the latest state = RTO: pgbackrest restore + PostgreSQL start,"
                     " WAL replay, promotion", "%.1f s (%.1f + %.1f); invoices %d of %d" % (
                         t2 - t0, t1 - t0, t2 - t1, got, final)))
    finally:
        if srv:
            srv.kill9()
        for c in (pg, rs):
            if c:
                c.stop("immediate")
        if ENV("FAPIAO_BENCH_KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
    load = open("/proc/loadavg").read().split()[:3]
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode().strip()
    text = "# bench/restore_pg.py — %s, revision %s, %d cores, load average %s\n\n" % (
        time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), rev, os.cpu_count(), " ".join(load))
    text += "| what | figure |\n|---|---|\n" + "".join("| %s | %s |\n" % r for r in rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
