#!/usr/bin/env python3
"""upload_outage.py — the run behind bench/upload_outage.sh (read its header
for what is measured and the knobs).  Standard library only, plus the
simulator's own tests/upstream-sim/ modules (simctl starts and drives it,
simlog judges its log the way tests/e2e/test_upload.py does).  Everything
stays on loopback; every loop is bounded in count and time."""
import argparse
import http.client
import json
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from soak import Api, free_port  # HTTPS to the server, a connection per thread


def env_num(name, default):
    v = os.environ.get(name)
    return type(default)(v) if v else default


INVOICES = env_num("INVOICES", 1000)
RATE = env_num("RATE", 8.0)
OUTAGE_S = env_num("OUTAGE_S", 60.0)
OUTAGE_AT = env_num("OUTAGE_AT", 40.0)
DRAIN_SECONDS = env_num("DRAIN_SECONDS", 900.0)
HANG_S = 6  # > the client's timeout-ms (4 s): the reply is lost


def say(msg):
    print("[upload-outage %s] %s" % (time.strftime("%T"), msg), file=sys.stderr, flush=True)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


def gauge(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


class Run:
    def __init__(self, api, db, body):
        self.api, self.db, self.body = api, db, body
        self.issued = []    # (due offset s, latency s, status, number or None, answered at)
        self.scrapes = []   # (offset s, backlog, oldest age s, breaker open 0|1)
        self.t0 = None
        self.outage = None  # (start, end) offsets
        self.outage_wall = None  # the same in wall-clock seconds (the simulator's log's t)
        self.pending_faults = {}  # the earlier faults not yet met when the outage began
        self.cleared_at = None  # every invoice issued before the outage's end accepted
        self.zero_at = None     # the backlog gauge's first 0 after the outage's end
        self.issuing_done = threading.Event()
        self.stop = threading.Event()

    def now(self):
        return time.monotonic() - self.t0

    def issue_all(self):
        """Open loop: invoice i is due at i/RATE; its latency counts from then."""
        for i in range(INVOICES):
            due = i / RATE
            wait = due - self.now()
            if wait > 0:
                time.sleep(wait)
            try:
                st, data = self.api.req("POST", "/v1/invoices", body=self.body,
                                        headers={"Idempotency-Key": str(uuid.uuid4())})
                number = json.loads(data)["number"] if st == 201 else None
            except (OSError, http.client.HTTPException, ValueError):
                st, number = "error", None
            done = self.now()
            self.issued.append((due, done - due, st, number, done))
        self.issuing_done.set()

    def unaccepted_upto(self, number):
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=30)
        try:
            return con.execute("SELECT count(*) FROM uploads WHERE state != 'accepted' "
                               "AND invoice_number <= ?", (number,)).fetchone()[0]
        finally:
            con.close()

    def scrape(self):
        """Each second: the upload gauges, and once the outage is over, whether
        its backlog (the invoices issued up to its end) is cleared."""
        while not self.stop.wait(1.0):
            try:
                st, data = self.api.req("GET", "/metrics", timeout=10)
            except (OSError, http.client.HTTPException):
                continue
            if st != 200:
                continue
            text = data.decode()
            t = self.now()
            backlog = gauge(text, "fapiao_upload_backlog")
            self.scrapes.append((t, backlog, gauge(text, "fapiao_upload_oldest_age_seconds"),
                                 gauge(text, "fapiao_upload_breaker_open")))
            if self.outage is None or t < self.outage[1]:
                continue
            if self.zero_at is None and backlog == 0:
                self.zero_at = t
            if self.cleared_at is None:
                before = [n for _, _, _, n, at in list(self.issued)
                          if n is not None and at <= self.outage[1]]
                if before and self.unaccepted_upto(max(before)) == 0:
                    self.cleared_at = t


def faults_schedule(sim, run):
    """The faults, each set at its offset into the run: the short ones
    first, so that the time from the outage's end until its backlog is
    cleared measures the outage (what of them the worker had not met yet
    when the outage began is reported)."""
    plan = [(2, {"store_then_hang": {"seconds": HANG_S, "fwbm": "QDFPSC", "times": 2}}),
            (6, {"http5xx": {"status": 502, "times": 3}}),
            (10, {"reset": {"times": 3}}),
            (14, {"store_then_hang": {"seconds": HANG_S, "fwbm": "CXQDFPSCJG", "times": 1}}),
            (18, {"result_not_found": {"times": 1}}),
            (OUTAGE_AT, {"reset": {"for_s": OUTAGE_S}})]
    for at, f in plan:
        while run.now() < at:
            time.sleep(0.05)
        if "reset" in f and "for_s" in f["reset"]:
            run.pending_faults = sim.state()["faults"]
            run.outage = (run.now(), run.now() + OUTAGE_S)
            run.outage_wall = (time.time(), time.time() + OUTAGE_S)
        sim.faults(f)
        say("fault %s" % json.dumps(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--repo", required=True)
    a = ap.parse_args()
    repo = Path(a.repo)
    sys.path.insert(0, str(repo / "tests" / "upstream-sim"))
    from simctl import TAX_ID, Sim, write_conf
    from simlog import check_log, upload_counts

    tmp = Path(tempfile.mkdtemp(prefix="fapiao-upload-outage-"))
    load0 = os.getloadavg()
    sim = Sim(tmp)
    srv = None
    try:
        conf = write_conf(tmp, sim.port, sim.ca)
        with open(conf, "a") as f:
            f.write(os.environ.get("UPLOAD_CONF", "").replace("\\n", "\n") + "\n")
        credit = "%.2f" % (INVOICES * 900 + 1000)
        sim._ctl("/credit", {"nsrsbh": TAX_ID, "granted": credit})
        r = subprocess.run([a.bin, "upstream", "credit", "--config", str(conf), "--download",
                            credit, "--serial", "bench-1"], capture_output=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit("credit download failed: %s" % (r.stdout + r.stderr).decode())
        data = tmp / "data"
        init = json.loads(subprocess.run([a.bin, "init", "--data-dir", str(data), "--demo",
                                          "--json"], check=True, stdout=subprocess.PIPE,
                                         timeout=120).stdout)
        db = str(data / "fapiao.db")
        con = sqlite3.connect(db)
        (prefix, first, last), = con.execute("SELECT prefix, first, last FROM number_ranges")
        con.close()
        sim._ctl("/ranges", {"nsrsbh": TAX_ID, "first": "%s%015d" % (prefix, first),
                             "last": "%s%015d" % (prefix, last)})
        port = None
        for _ in range(5):  # a free port may be taken before serve binds it
            port = free_port()
            log = open(tmp / "serve.log", "ab")
            srv = subprocess.Popen([a.bin, "serve", "--data-dir", str(data), "--listen",
                                    "127.0.0.1:%d" % port, "--config", str(conf)],
                                   stdout=log, stderr=log)
            api = Api(port, init["ca_cert"])
            deadline = time.monotonic() + 60
            while srv.poll() is None and time.monotonic() < deadline:
                try:
                    if api.req("GET", "/healthz", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            if srv.poll() is None:
                break
            srv = None
        if srv is None:
            raise SystemExit("fapiao serve did not start: see %s" % (tmp / "serve.log"))
        st, body = api.req("POST", "/v1/token", body=json.dumps(
            {"client_id": init["client_id"], "client_secret": init["client_secret"]}))
        api.token = json.loads(body)["access_token"]

        run = Run(api, db, (repo / "examples" / "invoice.json").read_bytes())
        run.t0, run.wall0 = time.monotonic(), time.time()
        say("%d invoices at %g/s, a %g s outage at %g s" % (INVOICES, RATE, OUTAGE_S, OUTAGE_AT))
        threads = [threading.Thread(target=run.issue_all), threading.Thread(target=run.scrape)]
        for t in threads:
            t.start()
        faults_schedule(sim, run)
        threads[0].join(INVOICES / RATE + 600)
        say("issued %d; draining" % len(run.issued))
        numbers = [n for _, _, _, n, _ in run.issued if n]
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            if numbers and run.unaccepted_upto(max(numbers)) == 0 and run.scrapes \
                    and run.scrapes[-1][1] == 0 and run.cleared_at is not None:
                break
            time.sleep(1)
        drained = run.now()
        run.stop.set()
        threads[1].join(30)
        state = sim.state()
        load1 = os.getloadavg()
    finally:
        if srv is not None:
            srv.terminate()
            srv.wait(60)
        sim.stop()

    # ---- the verdicts --------------------------------------------------------
    checks = []

    def check(name, ok, detail=""):
        checks.append((name, bool(ok), detail))

    try:
        stored = check_log(state["log"])
        check("the log: no invoice re-sent after it was accepted, none re-sent without a "
              "CXQDFPSCJG query for its earlier sllsh", True)
    except AssertionError as e:
        stored = {}
        check("the log: no invoice re-sent after it was accepted, none re-sent without a "
              "CXQDFPSCJG query for its earlier sllsh", False, str(e))
    outcomes, resent = upload_counts(state["log"])
    sims = state["invoices"]
    not_once = [n for n in numbers if stored.get(n) != 1]
    check("every invoice accepted exactly once in the simulator (%d)" % len(numbers),
          not not_once and all(sims.get(n, {}).get("status") == "00" for n in numbers),
          ", ".join(not_once[:5]))
    dup = sum(1 for v in stored.values() if v > 1)
    check("0 duplicates stored", dup == 0, "%d" % dup)
    check("no rejection", outcomes.get("rejected", 0) == 0)
    o0, o1 = run.outage or (0, 0)
    during = [x for x in run.issued if o0 <= x[0] < o1]
    outside = [x for x in run.issued if not o0 <= x[0] < o1]
    check("every issue answered 201 (%d), %d of them during the outage"
          % (len(run.issued), len(during)),
          len(run.issued) == INVOICES and all(x[2] == 201 for x in run.issued) and during)
    w0, w1 = run.outage_wall or (0, 0)
    resets = sum(1 for e in state["log"] if e.get("outcome") == "reset" and w0 <= e["t"] < w1)
    check("the worker met the outage (%d connections reset during it)" % resets, resets > 0)
    check("drained: every upload accepted, backlog 0", run.cleared_at is not None
          and run.scrapes and run.scrapes[-1][1] == 0)

    backlog_max = max((x[1] for x in run.scrapes if x[1] is not None), default=None)
    age_max = max((x[2] for x in run.scrapes if x[2] is not None), default=None)
    # the breaker after the outage: the last second it read open
    open_after = [x[0] for x in run.scrapes if x[0] >= o1 and x[3] == 1]
    ms = [x[1] * 1000 for x in during], [x[1] * 1000 for x in outside]
    out = ["# Uploads under a 60 s platform outage (bench/upload_outage.sh)", "",
           "%s, %d cores, load average %.1f at the start and %.1f at the end (the machine "
           "was shared with other builds and tests: latencies are upper bounds).  %d invoices "
           "at %g/s (open loop, one keep-alive connection), the outage (every connection "
           "to the platform reset) from %.0f s to %.0f s; before it, from 2 s on: 2 timeouts "
           "after storing (QDFPSC), 3 x 502, 3 resets, 1 timeout after storing "
           "(CXQDFPSCJG), 1 sllsh the platform did not know (not yet met when the outage "
           "began: %s).  [upstream] %s."
           % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.cpu_count(), load0[0],
              load1[0], INVOICES, RATE, o0, o1,
              ", ".join(sorted(run.pending_faults)) or "none",
              os.environ.get("UPLOAD_CONF") or "at its shipped defaults (batch 100, poll "
              "1 s, backoff 2 s doubling to 300 s), timeout-ms 4000"), "",
           "| check | result |", "|---|---|"]
    out += ["| %s | %s |" % (n, "ok" if ok else "FAILED " + d) for n, ok, d in checks]
    out += ["", "| figure | value |", "|---|---|",
            "| invoices issued (201) during the outage / outside | %d / %d |"
            % (sum(1 for x in during if x[2] == 201), sum(1 for x in outside if x[2] == 201)),
            "| issue latency p50 / p99 / max during the outage, ms | %.1f / %.1f / %.1f |"
            % (pct(ms[0], 50), pct(ms[0], 99), max(ms[0], default=float("nan"))),
            "| issue latency p50 / p99 / max outside it, ms | %.1f / %.1f / %.1f |"
            % (pct(ms[1], 50), pct(ms[1], 99), max(ms[1], default=float("nan"))),
            "| outage's end until every invoice issued before it was accepted, s | %s |"
            % ("%.0f" % (run.cleared_at - o1) if run.cleared_at else "never"),
            "| outage's end until the backlog gauge first read 0, s | %s |"
            % ("%.0f" % (run.zero_at - o1) if run.zero_at else "never"),
            "| outage's end until the breaker last read open, s | %s |"
            % ("%.0f" % (open_after[-1] - o1) if open_after else "closed at once"),
            "| upload backlog max (scraped each second) | %s |" % backlog_max,
            "| oldest pending upload's age max, s | %s |" % age_max,
            "| QDFPSC per-invoice outcomes in the simulator's log | %s |"
            % ", ".join("%s %d" % kv for kv in sorted(outcomes.items())),
            "| invoices sent more than once (answered as duplicates, stored once) | %d |"
            % resent,
            "| requests the simulator logged | %d |" % len(state["log"]),
            "| run until drained, s | %.0f |" % drained]
    text = "\n".join(out) + "\n"
    print(text)
    out_md = Path(os.environ.get("OUT") or repo / "bench" / "results" / "upload-outage-latest.md")
    out_md.write_text(text)
    # the per-second series beside it: what the worker and its breaker did when
    with open(out_md.with_suffix(".tsv"), "w") as f:
        f.write("t_s\tbacklog\toldest_age_s\tbreaker_open\n")
        for t, b, g, br in run.scrapes:
            f.write("%.0f\t%s\t%s\t%s\n" % (t, b, g, br))
    # and every request the simulator saw, on the run's clock
    with open(str(out_md.with_suffix("")) + "-requests.tsv", "w") as f:
        f.write("t_s\tfwbm\toutcome\treturncode\tinvoices\n")
        for e in state["log"]:
            f.write("%.1f\t%s\t%s\t%s\t%d\n" % (e["t"] - run.wall0, e.get("fwbm"),
                                                   e.get("outcome"), e.get("returncode"),
                                                   len(e.get("invoices", []))))
    if os.environ.get("FAPIAO_BENCH_KEEP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        say("kept %s" % tmp)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
