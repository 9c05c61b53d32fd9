"""soak_probe.py — what the server was doing, second by second, during
bench/soak.sh (docs/performance.md §5c).

Once a second the soak's sampler scrapes the server's plain-HTTP metrics
listener (--metrics-listen on loopback, so a scrape needs neither a TLS
handshake nor a slot of the API listener) and reads the kernel's TCP
counters; `Probe.row` turns two scrapes into one line of deltas and gauges.
`write` puts the lines next to ratebench's per-second issue timeline
(completions, 429s, transport errors, p99, connections opened), joined on
the second since the load started, so a slow second can be matched to the
server's commits, admission limit, connections and checkpoints.

Standard library only."""
import http.client
import os
import re
import time

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')

# the kernel's counters that say whether the listen queue overflowed (a
# dropped SYN is retried by the client after 1 s, then 3 s) and whether TCP
# retransmitted on loopback at all
NSTAT = ("TcpExtListenOverflows", "TcpExtListenDrops", "TcpRetransSegs",
         "TcpExtTCPTimeouts", "TcpExtTCPSynRetrans", "TcpAttemptFails", "TcpEstabResets",
         "TcpExtTCPAbortOnData", "TcpExtTCPAbortOnClose")


def nstat():
    """The kernel's TCP counters, absolute (from /proc, like nstat -az)."""
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for head, vals in zip(lines[::2], lines[1::2]):
            names, nums = head.split(), vals.split()
            pre = names[0].rstrip(":")
            for n, v in zip(names[1:], nums[1:]):
                try:
                    out[pre + n] = int(v)
                except ValueError:
                    pass
    return {k: out.get(k, 0) for k in NSTAT}


def parse(text):
    """{name: {labels: value}} of a Prometheus text page."""
    m = {}
    for line in text.splitlines():
        g = LINE.match(line)
        if g:
            try:
                m.setdefault(g.group(1), {})[g.group(2) or ""] = float(g.group(3))
            except ValueError:
                pass
    return m


def total(m, name, match=""):
    return sum(v for k, v in m.get(name, {}).items() if match in k)


def one(m, name):
    return total(m, name)


def hist_quantile(cur, prev, name, q):
    """The q-quantile's upper bucket bound of a histogram's growth between
    two scrapes (None when nothing was observed)."""
    def buckets(m):
        out = {}
        for k, v in m.get(name + "_bucket", {}).items():
            le = re.search(r'le="([^"]+)"', k)
            if le:
                out[float("inf") if le.group(1) == "+Inf" else float(le.group(1))] = v
        return out
    b1, b0 = buckets(cur), buckets(prev)
    les = sorted(b1)
    if not les:
        return None
    n = b1[les[-1]] - b0.get(les[-1], 0)
    if n <= 0:
        return None
    for le in les:
        if b1[le] - b0.get(le, 0) >= q * n:
            return le
    return les[-1]


class Probe:
    def __init__(self, port, data_dir):
        self.port = port
        self.wal = os.path.join(data_dir, "fapiao.db-wal")
        self.prev = None
        self.rows = []

    def scrape(self):
        t = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            c.request("GET", "/metrics")
            r = c.getresponse()
            text = r.read().decode(errors="replace")
            c.close()
        except (OSError, http.client.HTTPException):
            text = None
        return text, (time.monotonic() - t) * 1000

    def sample(self):
        """One scrape, now."""
        t = time.monotonic()
        text, ms = self.scrape()
        cur = {"t": t, "scrape_ms": ms, "m": parse(text) if text is not None else None,
               "tcp": nstat()}
        try:
            cur["wal_kb"] = os.stat(self.wal).st_size // 1024
        except OSError:
            cur["wal_kb"] = 0
        if self.prev is not None:
            self.rows.append(self.row(self.prev, cur))
        if cur["m"] is not None:
            self.prev = cur
        return cur

    @staticmethod
    def row(p, c):
        m0, m1 = p["m"], c["m"] or {}

        def d(name, match=""):  # growth since the last scrape (about 1 s)
            return total(m1, name, match) - total(m0, name, match) if m1 else 0.0

        commits = d("fapiao_store_commits_total")
        reqs = d("fapiao_store_requests_total")
        cd = "fapiao_store_commit_duration_seconds"
        cd_n = d(cd + "_count")
        row = {
            "t": c["t"],
            "scrape_ms": c["scrape_ms"],
            "commits": commits,
            "stored": reqs,
            "batch": reqs / commits if commits else 0.0,
            "commit_mean_ms": d(cd + "_sum") / cd_n * 1000 if cd_n else 0.0,
            "commit_p99_ms": (hist_quantile(m1, m0, cd, 0.99) or 0.0) * 1000 if m1 else 0.0,
            "queue": one(m1, "fapiao_store_queue_depth"),
            "limit": one(m1, "fapiao_concurrency_limit"),
            "inflight": one(m1, "fapiao_concurrency_inflight"),
            "conns": one(m1, "fapiao_http_connections"),
            "conns_new": d("fapiao_http_connections_total"),
            "waiting": one(m1, "fapiao_http_connections_waiting"),
            "refused": d("fapiao_http_connections_refused_total"),
            "cut": d("fapiao_http_connections_cut_total"),
            "adm_429": d("fapiao_admission_refused_total"),
            "http_429": d("fapiao_http_requests_total", 'code="429"'),
            "http_503": d("fapiao_http_requests_total", 'code="503"'),
            "backlog": one(m1, "fapiao_render_backlog"),
            "wal_kb": c["wal_kb"],
        }
        for k in NSTAT:
            row[k] = c["tcp"][k] - p["tcp"][k]
        # the reasons behind refused / cut connections, when any
        for fam in ("fapiao_http_connections_refused_total", "fapiao_http_connections_cut_total",
                    "fapiao_admission_refused_total"):
            for lab, v in m1.get(fam, {}).items():
                dv = v - m0.get(fam, {}).get(lab, 0)
                if dv:
                    row.setdefault("why", []).append("%s%s=%d" % (fam.split("_")[-3], lab, dv))
        return row

    COLS = ("scrape_ms", "commits", "stored", "batch", "commit_mean_ms", "commit_p99_ms",
            "queue", "limit", "inflight", "conns", "conns_new", "waiting", "refused", "cut",
            "adm_429", "http_429", "http_503", "backlog", "wal_kb") + NSTAT

    def write(self, path, timeline):
        """The server's series, joined with ratebench's timeline on the
        second since the load started (its t0, on the same monotonic clock:
        a row sampled at t covers the second before t)."""
        issue, load_t0 = {}, None
        if timeline and os.path.exists(timeline):
            with open(timeline) as f:
                for line in f:
                    if line.startswith("# t0_monotonic_s "):
                        load_t0 = float(line.split()[2])
                    elif not line.startswith("#"):
                        v = line.split()
                        issue[int(v[0])] = v[1:]
        # load_s: the second of ratebench's line; t: when the server was
        # scraped, in seconds since the load started
        head = ("load_s ok shed other transport p50_ms p99_ms max_ms connects t "
                + " ".join(self.COLS) + " why")
        with open(path, "w") as fo:
            fo.write("# " + head + "\n")
            for r in self.rows:
                sec = int(r["t"] - load_t0 + 1000) - 1001 if load_t0 is not None else -1
                iv = issue.get(sec, [])
                iv = (iv + ["-"] * 8)[:8]
                vals = ["%d" % sec] + iv + ["%.1f" % (r["t"] - (load_t0 or 0))] + [
                    ("%.1f" % r[k]) if isinstance(r[k], float) else str(r[k]) for k in self.COLS]
                vals.append(",".join(r.get("why", [])) or "-")
                fo.write(" ".join(vals) + "\n")

    def totals(self):
        """Sums over the run of the kernel's counters and the server's
        refusals (for the summary table)."""
        out = {k: sum(r[k] for r in self.rows) for k in NSTAT}
        for k in ("refused", "cut", "adm_429", "conns_new"):
            out[k] = round(sum(r[k] for r in self.rows))
        out["worst_scrape_ms"] = max((r["scrape_ms"] for r in self.rows), default=0)
        return out
