#!/usr/bin/env python3
"""soak.py — the soak run behind bench/soak.sh (read its header for what is
measured and the knobs).  Standard library only; gnuplot draws the chart
when it is installed (scripts/install-deps.sh --test)."""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from soak_probe import Probe, nstat

TICK = os.sysconf("SC_CLK_TCK")


def env_num(name, default):
    v = os.environ.get(name)
    return type(default)(v) if v else default


def say(msg):
    print("[soak %s] %s" % (time.strftime("%T"), msg), file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


class Api:
    """HTTPS to the server, one connection per thread."""

    def __init__(self, port, ca):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.local = threading.local()
        self.token = None

    def req(self, method, path, body=None, headers=None, auth=True, timeout=30):
        h = dict(headers or {})
        if auth and self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            h["Content-Type"] = "application/json"
        for attempt in range(2):
            c = getattr(self.local, "c", None)
            if c is None:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                                timeout=timeout)
                self.local.c = c
            try:
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                c.close()
                self.local.c = None
                if attempt:
                    raise
        return None


def proc_stat(pid):
    """(utime+stime, cutime+cstime) in seconds, ppid; None when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    f = s[s.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK, int(f[1])


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def renderer_cpu(server_pid):
    """CPU seconds of the server's child processes (the renderers): the
    live ones, plus those the server has reaped (its cutime)."""
    total = 0.0
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[2] == server_pid:
                total += st[0]
    me = proc_stat(server_pid)
    return total + (me[1] if me else 0.0)


def dir_bytes(path):
    n = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                n += os.lstat(os.path.join(root, name)).st_blocks * 512
                files += 1
            except OSError:
                pass
    return n, files


METRICS = {
    "backlog": r"^fapiao_render_backlog (\S+)$",
    "oldest": r"^fapiao_render_backlog_oldest_seconds (\S+)$",
    "on_demand": r"^fapiao_render_on_demand (\S+)$",
    "bg": r'^fapiao_pdfs_rendered_total\{how="background"\} (\S+)$',
    "od": r'^fapiao_pdfs_rendered_total\{how="on_demand"\} (\S+)$',
    "od_timeouts": r"^fapiao_render_on_demand_timeouts_total (\S+)$",
    "pruned": r"^fapiao_outbox_jobs_pruned_total (\S+)$",
}


def scrape(mport):
    """The render and outbox gauges from the plain-HTTP metrics listener
    (with --metrics-listen the API listener serves no /metrics: scraping it
    read nothing, and the table said 0 renders)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            return {}
    except (OSError, http.client.HTTPException):
        return {}
    text = body.decode(errors="replace")
    out = {}
    for k, rx in METRICS.items():
        m = re.search(rx, text, re.M)
        if m:
            out[k] = float(m.group(1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--repo", required=True)
    a = ap.parse_args()
    rate = env_num("RATE", 2000)
    secs = env_num("SOAK_SECONDS", 600)
    conns = env_num("CONNS", 64)
    sample_rate = env_num("SAMPLE_RATE", 2.0)
    drain_max = env_num("DRAIN_SECONDS", 600)
    fapiao = os.path.join(a.build, "fapiao")
    ratebench = os.path.join(a.build, "bench_ratebench")
    results = os.path.join(a.repo, "bench", "results")
    os.makedirs(results, exist_ok=True)
    parent = os.environ.get("FAPIAO_BENCH_TMPDIR") or a.build
    tmp = tempfile.mkdtemp(prefix="fapiao-soak.", dir=parent)
    data = os.path.join(tmp, "data")
    say("data dir %s; %d invoices/s for %d s, %d connections" % (data, rate, secs, conns))
    out = subprocess.run([fapiao, "init", "--data-dir", data, "--demo", "--json"], capture_output=True,
                         text=True, timeout=120)
    if out.returncode:
        sys.exit("fapiao init failed: " + out.stderr)
    init = json.loads(out.stdout)
    port = free_port()
    mport = free_port()
    errlog = open(os.path.join(tmp, "serve.err"), "wb")
    serve = subprocess.Popen(
        [fapiao, "serve", "--data-dir", data, "--listen", "127.0.0.1:%d" % port,
         "--access-log", "off", "--client-rate", "0", "--max-connections-per-ip", "512",
         "--metrics-listen", "127.0.0.1:%d" % mport]
        + os.environ.get("SOAK_SERVE_ARGS", "").split(),
        stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog,
        env=dict(os.environ, FAPIAO_CONFIG=os.devnull))
    api = Api(port, init["ca_cert"])
    probe = Probe(mport, data)
    tcp0 = nstat()
    stop = threading.Event()
    series, samples = [], []
    slock = threading.Lock()
    try:
        for _ in range(300):
            try:
                if api.req("GET", "/healthz", auth=False, timeout=2)[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if serve.poll() is not None:
                sys.exit("fapiao serve exited: see %s/serve.err" % tmp)
            time.sleep(0.1)
        st, body = api.req("POST", "/v1/token", body=json.dumps(
            {"client_id": init["client_id"], "client_secret": init["client_secret"]}), auth=False)
        api.token = json.loads(body)["access_token"]
        with open(os.path.join(a.repo, "examples", "invoice.json"), "rb") as f:
            doc = f.read()
        disk0 = dir_bytes(data)[0]
        t0 = time.monotonic()
        state = {"load_end": None, "pdf": (disk0, 0)}

        # ---- the per-second series ----
        def sampler():
            i = 0
            while not stop.is_set():
                t = time.monotonic() - t0
                m = scrape(mport)
                s = proc_stat(serve.pid)
                row = {"t": t, "server_cpu": s[0] if s else 0.0,
                       "render_cpu": renderer_cpu(serve.pid), "rss_kb": rss_kb(serve.pid)}
                row.update(m)
                probe.sample()
                if i % 10 == 0:  # walking the PDF tree is not free
                    state["pdf"] = dir_bytes(data)
                row["disk"], row["files"] = state["pdf"]
                with slock:
                    series.append(row)
                i += 1
                stop.wait(max(0.0, t0 + i - time.monotonic()))

        # ---- PDF availability: own invoices, GET .../pdf until 200 ----
        def availability(key):
            sent = time.monotonic()
            try:
                st, body = api.req("POST", "/v1/invoices", body=doc,
                                   headers={"Idempotency-Key": key})
            except (OSError, http.client.HTTPException) as e:
                st, body = 0, str(e).encode()
            if st != 201:
                with slock:
                    samples.append({"t": sent - t0, "issue_ms": None, "ms": None,
                                    "failed": "%d %s" % (st, body[:200])})
                return
            created = time.monotonic()
            number = json.loads(body)["number"]
            rec = {"t": created - t0, "issue_ms": (created - sent) * 1000, "ms": None}
            deadline = created + 300
            while time.monotonic() < deadline and not stop.is_set():
                try:
                    st, _ = api.req("GET", "/v1/invoices/%s/pdf" % number)
                except (OSError, http.client.HTTPException):
                    st = 0
                if st == 200:
                    rec["ms"] = (time.monotonic() - created) * 1000
                    break
                time.sleep(0.05)
            with slock:
                samples.append(rec)

        def sample_loop():
            i = 0
            while not stop.is_set() and state["load_end"] is None:
                threading.Thread(target=availability, args=("soak-s-%d-%d" % (os.getpid(), i),),
                                 daemon=True).start()
                i += 1
                stop.wait(max(0.0, t0 + i / sample_rate - time.monotonic()))

        threads = [threading.Thread(target=sampler, daemon=True),
                   threading.Thread(target=sample_loop, daemon=True)]
        for th in threads:
            th.start()
        timeline = os.path.join(tmp, "timeline.txt")
        rb = subprocess.run(
            [ratebench, "--url", "https://127.0.0.1:%d/v1/invoices" % port, "--rate", str(rate),
             "--duration", str(secs), "--connections", str(conns), "--token", api.token,
             "--cacert", init["ca_cert"], "--body", os.path.join(a.repo, "examples", "invoice.json"),
             "--key-prefix", "soak%d" % os.getpid(), "--warmup-url",
             "https://127.0.0.1:%d/healthz" % port, "--timeline", timeline,
             "--warmup-batch", str(env_num("WARMUP_BATCH", 16))],
            capture_output=True, text=True, timeout=secs + 120)
        state["load_end"] = time.monotonic() - t0
        sys.stderr.write(rb.stderr[-2000:] + rb.stdout[-3000:])
        line = [ln for ln in rb.stdout.splitlines() if ln.startswith("ratebench rate=")]
        rbf = dict(kv.split("=", 1) for kv in line[-1].split()[1:]) if line else {}
        say("load over at %.0f s; waiting for the backlog to drain (at most %d s)"
            % (state["load_end"], drain_max))
        drained_at = None
        end = time.monotonic() + drain_max
        while time.monotonic() < end:
            with slock:
                last = series[-1] if series else {}
                waiting = sum(1 for r in samples if r["ms"] is None)
            if last.get("backlog") == 0 and last.get("t", 0) > state["load_end"] + 1:
                drained_at = last["t"]
                break
            if serve.poll() is not None:
                break
            time.sleep(1)
        time.sleep(2)  # the last sample polls finish
        stop.set()
        for th in threads:
            th.join(10)
        with slock:
            series_c, samples_c = list(series), list(samples)
        tcp1 = nstat()
    finally:
        stop.set()
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
        errlog.close()

    # ---- figures ----
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "fapiao.db"), uri=True)
    invoices = db.execute("SELECT count(*) FROM invoices").fetchone()[0]
    job_rows = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    db.close()
    disk1, files1 = dir_bytes(data)
    load = [r for r in series_c if r["t"] <= state["load_end"]]
    first, last_load, last = series_c[0], load[-1] if load else series_c[-1], series_c[-1]
    server_cpu = last["server_cpu"] - first["server_cpu"]
    render_cpu = last["render_cpu"] - first["render_cpu"]
    lat = [r["ms"] for r in samples_c if r["ms"] is not None]
    never = sum(1 for r in samples_c if r["ms"] is None and not r.get("failed"))
    sample_fail = [r["failed"] for r in samples_c if r.get("failed")]
    if sample_fail:
        say("%d sample issues failed, e.g. %s" % (len(sample_fail), sample_fail[0]))
    od = last.get("od", 0)
    bg = last.get("bg", 0)
    drain_rate = None
    if drained_at and drained_at - state["load_end"] > 1:
        drain_rate = (last.get("bg", 0) - last_load.get("bg", 0)) / (drained_at - state["load_end"])
    max_backlog = max((r.get("backlog", 0) for r in series_c), default=0)
    max_oldest = max((r.get("oldest", 0) for r in series_c), default=0)
    max_rss = max((r["rss_kb"] for r in series_c), default=0)

    def f(v, fmt="%.2f"):
        return "n/a" if v is None else fmt % v

    loadavg = open("/proc/loadavg").read().split()[:3]
    pt = probe.totals()
    mc = re.search(r"(\d+) opened during the run", rb.stdout)
    rbf_conn = mc.group(1) if mc else "n/a"
    rows = [
        ("offered rate", "%d invoices/s for %d s, %d connections" % (rate, secs, conns)),
        ("achieved (201/s over the run)", rbf.get("rate", "n/a")),
        ("issue p50 / p99 / p99.9 (ms, from scheduled send)",
         "%s / %s / %s" % (rbf.get("p50_ms"), rbf.get("p99_ms"), rbf.get("p999_ms"))),
        ("429s / errors", "%s / %s" % (rbf.get("shed"), rbf.get("errors"))),
        ("invoices stored", "%d" % invoices),
        ("render backlog: max / at load end", "%d / %d" % (max_backlog, last_load.get("backlog", 0))),
        ("oldest pending render: max (s)", "%d" % max_oldest),
        ("on-demand mode at any time", "yes" if any(r.get("on_demand") for r in series_c) else "no"),
        ("PDFs rendered: background / on demand (share)",
         "%d / %d (%s %%)" % (bg, od, f(100.0 * od / (bg + od) if bg + od else None, "%.1f"))),
        ("PDF availability p50 / p99 / max (ms; %d samples, %d never, %d not issued)"
         % (len(lat) + never, never, len(sample_fail)),
         "%s / %s / %s" % (f(pct(lat, 50), "%.0f"), f(pct(lat, 99), "%.0f"),
                           f(max(lat) if lat else None, "%.0f"))),
        ("background catch-up after the load", "%s renders/s (drained at %s s)"
         % (f(drain_rate, "%.0f"), f(drained_at, "%.0f"))),
        ("server CPU (s) / per invoice (us)",
         "%.1f / %s" % (server_cpu, f(server_cpu * 1e6 / invoices if invoices else None, "%.0f"))),
        ("renderer CPU (s) / per PDF (us)",
         "%.1f / %s" % (render_cpu, f(render_cpu * 1e6 / (bg + od) if bg + od else None, "%.0f"))),
        ("server RSS: start / max / end (MB)", "%.0f / %.0f / %.0f"
         % (first["rss_kb"] / 1024, max_rss / 1024, last["rss_kb"] / 1024)),
        ("disk growth per invoice (bytes; DB + PDFs)",
         f((disk1 - disk0) / invoices if invoices else None, "%.0f")),
        ("client reconnects during the run / server connections refused / cut",
         "%s / %d / %d" % (rbf_conn, pt["refused"], pt["cut"])),
        ("kernel (whole machine, over the run): listen overflows / drops / SYN retransmits",
         "%d / %d / %d" % tuple(tcp1[k] - tcp0[k] for k in (
             "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPSynRetrans"))),
        ("slowest /metrics scrape (ms)", "%.0f" % pt["worst_scrape_ms"]),
        ("job rows left / done jobs pruned", "%d / %d" % (job_rows, last.get("pruned", 0))),
        ("machine", "%d CPUs, load average at the end %s (shared with other work)"
         % (os.cpu_count(), " ".join(loadavg))),
    ]
    md = ["# bench/soak.sh — %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "",
          "| measure | value |", "|---|---|"] + ["| %s | %s |" % r for r in rows]
    text = "\n".join(md) + "\n"
    print(text)
    with open(os.path.join(results, "soak-latest.md"), "w") as fo:
        fo.write(text)
    tsv = os.path.join(results, "soak-latest.tsv")
    with open(tsv, "w") as fo:
        fo.write("# t_s backlog oldest_s on_demand server_cpu_s render_cpu_s rss_mb bg od "
                 "server_cores render_cores\n")
        prev = None
        for r in series_c:
            dt = r["t"] - prev["t"] if prev else 0
            sc = (r["server_cpu"] - prev["server_cpu"]) / dt if dt > 0 else 0
            rc = (r["render_cpu"] - prev["render_cpu"]) / dt if dt > 0 else 0
            fo.write("%.1f %d %d %d %.2f %.2f %.1f %d %d %.3f %.3f\n" % (
                r["t"], r.get("backlog", 0), r.get("oldest", 0), r.get("on_demand", 0),
                r["server_cpu"], r["render_cpu"], r["rss_kb"] / 1024, r.get("bg", 0),
                r.get("od", 0), sc, max(rc, 0)))
            prev = r
    # ratebench's timeline: second, ok, shed, other, transport, p50, p99, max
    tl = os.path.join(results, "soak-latest-issue.tsv")
    shutil.copyfile(timeline, tl) if os.path.exists(timeline) else open(tl, "w").close()
    # what the server was doing each second, next to the client's second
    probe.write(os.path.join(results, "soak-latest-server.tsv"), tl)
    say("server series: bench/results/soak-latest-server.tsv")
    gp = shutil.which("gnuplot")
    if gp:
        png = os.path.join(results, "soak-latest.png")
        le = state["load_end"]
        script = """
set terminal pngcairo size 1000,900 font ",9"
set output '%(png)s'
set multiplot layout 3,1 title 'bench/soak.sh: %(rate)d invoices/s for %(secs)d s (dashed: load ends)'
set xlabel 'seconds since start'
set arrow 1 from %(le).0f, graph 0 to %(le).0f, graph 1 nohead dt 2
set ylabel 'pending renders'
set y2label 'oldest pending (s)'
set y2tics
set ytics nomirror
plot '%(tsv)s' using 1:2 with lines title 'render backlog', \
     '' using 1:3 axes x1y2 with lines title 'oldest pending render (s)', \
     '' using 1:($4*%(bmax)d*0.9) axes x1y1 with steps title 'on-demand mode (high)'
unset y2tics
unset y2label
unset arrow 1
set xlabel 'seconds since the load started (by completion)'
set ylabel 'issue latency (ms)'
set y2label '429s per second'
set y2tics
plot '%(tl)s' using 1:7 with lines title 'issue p99 (ms, per second)', \
     '' using 1:6 with lines title 'issue p50 (ms)', \
     '' using 1:3 axes x1y2 with impulses title '429s'
unset y2tics
unset y2label
set xlabel 'seconds since start'
set arrow 1 from %(le).0f, graph 0 to %(le).0f, graph 1 nohead dt 2
set ylabel 'CPU (cores)'
set y2label 'server RSS (MB)'
set y2tics
plot '%(tsv)s' using 1:10 with lines title 'server CPU', \
     '' using 1:11 with lines title 'renderer CPU', \
     '' using 1:7 axes x1y2 with lines title 'server RSS (MB)'
unset multiplot
""" % {"png": png, "rate": rate, "secs": secs, "le": le, "tsv": tsv, "tl": tl,
       "bmax": max(1, max_backlog)}
        r = subprocess.run([gp], input=script, capture_output=True, text=True)
        if r.returncode:
            say("gnuplot: " + r.stderr[-500:])
        else:
            say("chart: %s" % png)
    else:
        say("no gnuplot: no chart (scripts/install-deps.sh --test installs it)")
    if os.environ.get("FAPIAO_BENCH_KEEP") == "1":
        say("kept %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
