#!/usr/bin/env python3
"""auth_flood.py — an unauthenticated flood of bad tokens against the real
server, with the default authentication-failure budgets (docs/security.md,
"Authentication failures").  Run by bench/auth_flood.sh.

Phases: a fresh data dir and server on a free loopback port; legitimate
issuing alone for DURATION s (one keep-alive connection from 127.0.0.1,
sequential); then the same beside a flood of bad bearer tokens and bad
token exchanges from 127.0.0.2-127.0.0.9 (one process and keep-alive
connection per address) for DURATION s.  Reports legitimate latency in
both phases, the flood's rate and answers, and how much the audit table
and the access log grew per second.  Everything stays on loopback; every
loop is bounded in time."""
import http.client
import json
import multiprocessing as mp
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
DURATION = float(os.environ.get("DURATION", "10"))
FLOODERS = ["127.0.0.%d" % i for i in range(2, 10)]
EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                       "invoice.json")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ctx_for(ca):
    c = ssl.create_default_context(cafile=ca)
    return c


def conn(port, ca, src=None):
    return http.client.HTTPSConnection("127.0.0.1", port, context=ctx_for(ca), timeout=30,
                                       source_address=(src, 0) if src else None)


def flooder(port, ca, src, client_id, until, q):
    c = conn(port, ca, src)
    n, st = 0, {}
    while time.monotonic() < until:
        try:
            if n % 10 == 9:
                c.request("POST", "/v1/token", headers={"Content-Type": "application/json"},
                          body=json.dumps({"client_id": client_id, "client_secret": "fps_x%d" % n}))
            else:
                c.request("GET", "/v1/invoices?limit=1",
                          headers={"Authorization": "Bearer fpt2.flood%d.%s" % (n, "A" * 43)})
            r = c.getresponse()
            r.read()
            st[r.status] = st.get(r.status, 0) + 1
        except (OSError, http.client.HTTPException):
            st["error"] = st.get("error", 0) + 1
            c.close()
            c = conn(port, ca, src)
        n += 1
    c.close()
    q.put(st)


def legit(port, ca, token, body, until, tag):
    c = conn(port, ca)
    lat, errors, i = [], 0, 0
    while time.monotonic() < until:
        t0 = time.monotonic()
        try:
            c.request("POST", "/v1/invoices", body=body,
                      headers={"Authorization": "Bearer " + token,
                               "Content-Type": "application/json",
                               "Idempotency-Key": "bench-%s-%d" % (tag, i)})
            r = c.getresponse()
            r.read()
            if r.status != 201:
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            c.close()
            c = conn(port, ca)
        lat.append(time.monotonic() - t0)
        i += 1
    c.close()
    return lat, errors


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000 if v else float("nan")


def audit_auth(db):
    """Rows and bytes of the authentication-failure records (auth.*): the
    text of their fields plus 64 bytes per row for the hash, ids and the
    record's overhead in the table."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
    try:
        return con.execute(
            "SELECT count(*), ifnull(sum(length(actor)+length(action)+ifnull(length(target),0)"
            "+ifnull(length(request_id),0)+ifnull(length(client_ip),0)+length(outcome)"
            "+ifnull(length(client_request_id),0)+64),0) FROM audit WHERE action LIKE 'auth.%'"
        ).fetchone()
    finally:
        con.close()


def failure_log_bytes(path):
    """Bytes of access-log lines about failures (401, 403, 429) and of the
    lines counting those left out."""
    n = 0
    for p in (path + ".1", path):
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if d.get("status") in (401, 403, 429) or d.get("event") == "access_log_suppressed":
                    n += len(line)
    return n


def main():
    tmp = tempfile.mkdtemp(prefix="fapiao-authflood-")
    data = os.path.join(tmp, "data")
    init = json.loads(subprocess.run([BIN, "init", "--data-dir", data, "--demo", "--json"], check=True,
                                     stdout=subprocess.PIPE).stdout)
    ca, cid, secret = init["ca_cert"], init["client_id"], init["client_secret"]
    port = free_port()
    log = open(os.path.join(tmp, "serve.log"), "wb")
    srv = subprocess.Popen([BIN, "serve", "--data-dir", data, "--listen", "127.0.0.1:%d" % port],
                           stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                c = conn(port, ca)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        c = conn(port, ca)
        c.request("POST", "/v1/token", headers={"Content-Type": "application/json"},
                  body=json.dumps({"client_id": cid, "client_secret": secret}))
        token = json.loads(c.getresponse().read())["access_token"]
        body = open(EXAMPLE, "rb").read()
        db, alog = os.path.join(data, "fapiao.db"), os.path.join(data, "access.log")

        lat0, err0 = legit(port, ca, token, body, time.monotonic() + DURATION, "quiet")
        a0, l0 = audit_auth(db), failure_log_bytes(alog)
        q = mp.Queue()
        until = time.monotonic() + DURATION
        procs = [mp.Process(target=flooder, args=(port, ca, ip, cid, until, q)) for ip in FLOODERS]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        lat1, err1 = legit(port, ca, token, body, until, "flood")
        flood = {}
        for _ in procs:
            for k, v in q.get(timeout=60).items():
                flood[k] = flood.get(k, 0) + v
        for p in procs:
            p.join(30)
        dt = time.monotonic() - t0
        time.sleep(0.5)  # the audit queue flushes every 200 ms
        a1 = audit_auth(db)
    finally:
        srv.terminate()
        srv.wait(30)
    a2, l2 = audit_auth(db), failure_log_bytes(alog)  # + the last window's counts, flushed at stop
    sent = sum(v for k, v in flood.items() if k != "error")
    out = []
    out.append("# Authentication-failure flood (bench/auth_flood.sh)\n")
    out.append("%s, %d cores; default budgets (--auth-fail-rate 5 --auth-fail-burst 30 "
               "--auth-record-rate 10 --auth-record-burst 50); %g s per phase.\n"
               % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), DURATION))
    out.append("| legitimate issuing (127.0.0.1, sequential, keep-alive) | invoices | errors "
               "| p50 ms | p99 ms | max ms |")
    out.append("|---|---|---|---|---|---|")
    for name, lat, err in (("alone", lat0, err0), ("beside the flood", lat1, err1)):
        out.append("| %s | %d | %d | %.1f | %.1f | %.1f |"
                   % (name, len(lat), err, pct(lat, 50), pct(lat, 99), max(lat) * 1000))
    out.append("")
    out.append("| flood (127.0.0.2-9, 8 processes, keep-alive) | value |")
    out.append("|---|---|")
    out.append("| requests answered | %d (%.0f/s) |" % (sent, sent / dt))
    for k in sorted(flood, key=str):
        out.append("| answered %s | %d |" % (k, flood[k]))
    out.append("| auth.* audit rows added during the flood | %d |" % (a1[0] - a0[0]))
    out.append("| ... and in all (with the last counts, flushed at stop) | %d |"
               % (a2[0] - a0[0]))
    out.append("| audit growth from failures | %.2f KB/s |" % ((a2[1] - a0[1]) / 1024 / dt))
    out.append("| access-log growth from failures | %.2f KB/s |" % ((l2 - l0) / 1024 / dt))
    print("\n".join(out))
    return 0 if err0 == 0 and err1 == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
