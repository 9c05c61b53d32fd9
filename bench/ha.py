"""ha.py — the HA benchmark (bench/ha.sh runs it; docs/ha.md §9).

Side by side, in one run, on this machine:
  sqlite   one node on SQLite;
  pg1      one node on PostgreSQL with a synchronous standby (pg_auto_failover);
  pg2      two nodes on that PostgreSQL behind HAProxy (deploy/haproxy/haproxy.cfg);
each under bench_ratebench at a steady RATE/s (default 2,000) for DURATION s:
durable invoices/s (rows added to the invoices table / the run's span) and the
p99 latency from the scheduled send time; then
  failover the time from kill -9 of the primary's keeper and postgres (drill 2)
           to the standby promoted (the monitor's view) and to the first 201
           through the proxy again (a light steady load of retried keys).

Usage: ha.py BUILD_DIR [PHASES...]   (phases: sqlite pg1 pg2 failover; default all)
Environment: RATE (2000), DURATION (20), CONNS (64), FAPIAO_BENCH_SERVE_EXTRA.
Writes a markdown table to stdout and to bench/results/ha-latest.md.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "drills"))
os.environ.setdefault("FAPIAO_BIN", str(ROOT / "build" / "fapiao"))
import conftest as rigmod  # noqa: E402  (tests/drills: formation, nodes, proxy, load)

e2e, pgaf = rigmod.e2e, rigmod.pgaf
RATE = int(os.environ.get("RATE", "2000"))
DURATION = int(os.environ.get("DURATION", "20"))
CONNS = int(os.environ.get("CONNS", "64"))
EXTRA = os.environ.get("FAPIAO_BENCH_SERVE_EXTRA", "").split()
SERVE = ["--client-rate", "0", "--global-rate", "0", "--concurrency-max", "off",
         "--auth-fail-rate", "0", "--access-log", "off", "--max-connections-per-ip", "1000"] + EXTRA


def say(msg):
    print("ha.sh: " + msg, file=sys.stderr, flush=True)


def ratebench(build, port, ca, token, prefix):
    out = subprocess.run(
        [str(Path(build) / "bench_ratebench"), "--url", "https://127.0.0.1:%d/v1/invoices" % port,
         "--rate", str(RATE), "--duration", str(DURATION), "--connections", str(CONNS),
         "--token", token, "--cacert", str(ca), "--body", str(e2e.EXAMPLE_PATH),
         "--key-prefix", prefix, "--warmup-url", "https://127.0.0.1:%d/healthz" % port,
         # 8 handshakes at a time: 64 at once through the proxy (PROXY v2) fail
         # on the node ("received handshake message out of context"); see the report
         "--warmup-batch", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=DURATION + 90)
    text = out.stdout.decode(errors="replace")
    line = [ln for ln in text.splitlines() if ln.startswith("ratebench rate=")]
    if not line:
        raise RuntimeError("ratebench gave no result:\n" + text[-2000:])
    return dict(kv.split("=", 1) for kv in line[-1].split()[1:])


def measure(name, build, port, ca, token, count):
    before = count()
    key = re.sub(r"[^A-Za-z0-9]", "", name)[:12] + str(int(time.time()))
    r = ratebench(build, port, ca, token, key)
    added = count() - before
    span = float(r.get("span_s", DURATION)) or DURATION
    row = {"setup": name, "target": RATE, "durable_per_s": round(added / span),
           "ok": int(r.get("ok", 0)), "p50_ms": r.get("ok_p50_ms"), "p99_ms": r.get("ok_p99_ms"),
           "errors": int(r.get("errors", 0))}
    say(json.dumps(row))
    return row


def phase_sqlite(build, base):
    s = e2e.Server(base / "sqlite", SERVE)
    s.start()
    try:
        count = lambda: s.db_query("select count(*) from invoices")[0][0]  # noqa: E731
        return measure("sqlite", build, s.port, s.ca_cert, s.token(), count)
    finally:
        s.close()


def phase_pg(build, base, phases, results):
    rig = rigmod.Rig(base / "pg")
    try:
        rig.form.start()
        if "pg1" in phases:  # one node, no proxy, on the formation
            n = e2e.Server(base / "pg1", ["--database", rig.form.url] + SERVE)
            n.start()
            rigmod.seed_from_sqlite(rig.form, n.db_path)
            count = lambda: int(rig.db("select count(*) from invoices")[0][0])  # noqa: E731
            results.append(measure("pg1 (sync standby)", build, n.port, n.ca_cert, n.token(),
                                   count))
            n.close()
            # pg2 seeds its own installation (another client secret)
            rig.db("truncate jobs, invoices, client_secrets, clients, number_ranges, sellers "
                   "cascade")
        if "pg2" in phases or "failover" in phases:
            rig.form.start = lambda timeout=0: rig.form  # already up
            rig.up()
            count = lambda: int(rig.db("select count(*) from invoices")[0][0])  # noqa: E731
            if "pg2" in phases:
                results.append(measure("pg2 (2 nodes + HAProxy)", build, rig.proxy.port,
                                       rig.nodes[0].ca_cert, rig.token, count))
            if "failover" in phases:
                results.append(failover(rig))
    finally:
        rig.down()


def failover(rig):
    rig.form.wait_settled(timeout=120)
    old = rig.form.primary()
    survivor = next(n for n in rig.form.nodes if n is not old)
    load = rigmod.Load("127.0.0.1", rig.proxy.port, rig.nodes[0]._ctx, rig.token, rate=100,
                       threads=16, prefix="fo%d" % int(time.time())).start()
    try:
        time.sleep(3)
        t0 = time.monotonic()
        rig.form.kill_keeper(old)
        promoted = None
        deadline = t0 + 180
        while time.monotonic() < deadline:
            if promoted is None and rig.form.states().get(survivor.name, ("",))[0] in (
                    "wait_primary", "primary"):
                promoted = time.monotonic() - t0
            if promoted is not None and load.ack_rate(time.monotonic() - 1, time.monotonic()) > 0:
                break
            time.sleep(0.1)
        with load.lock:
            after = sorted(t for _, t in load.acked.values() if t > t0)
        first_ack = (after[0] - t0) if after else None
    finally:
        load.finish(timeout=60)
    row = {"setup": "failover (drill 2)", "promoted_s": promoted and round(promoted, 1),
           "writes_back_s": first_ack and round(first_ack, 1), "goal_s": 30,
           "client_errors": load.errors}
    say(json.dumps(row))
    return row


def main(argv):
    build = Path(argv[0] if argv else "build").resolve()
    phases = set(argv[1:] or ["sqlite", "pg1", "pg2", "failover"])
    os.environ["FAPIAO_BIN"] = str(build / "fapiao")
    e2e.BIN = str(build / "fapiao")
    base = Path(tempfile.mkdtemp(prefix="fapiao-ha-bench."))
    results = []
    try:
        if "sqlite" in phases:
            results.append(phase_sqlite(build, base))
        if phases & {"pg1", "pg2", "failover"}:
            phase_pg(build, base, phases, results)
    finally:
        subprocess.run(["rm", "-rf", str(base)])
    lines = ["# bench/ha.sh — %s" % time.strftime("%Y-%m-%d %H:%M"),
             "", "Steady %d/s for %d s over %d connections (bench_ratebench); load average "
             "at the end: %s." % (RATE, DURATION, CONNS, os.getloadavg()[0]), "",
             "| setup | durable invoices/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|"]
    for r in results:
        if "durable_per_s" in r:
            lines.append("| %s | %d | %s | %s | %d |" % (r["setup"], r["durable_per_s"],
                                                      r["p50_ms"], r["p99_ms"], r["errors"]))
    for r in results:
        if "promoted_s" in r:
            lines += ["", "Failover (drill 2: kill -9 the primary's pg_autoctl and postgres): "
                      "standby promoted after %s s, writes acknowledged again after %s s "
                      "(goal <= 30 s); clients saw %s." % (r["promoted_s"], r["writes_back_s"],
                                                          json.dumps(r["client_errors"]))]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / "ha-latest.md"
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
