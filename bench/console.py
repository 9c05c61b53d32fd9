#!/usr/bin/env python3
"""console.py — the server CPU one open console overview costs (issue 22,
docs/console.md "Overview").  Run by bench/console.sh.

A fresh data dir and `fapiao serve` on a free loopback port, a console user
signed in (enrolment token, then a computed TOTP code).  Phases of MINUTES
each, the server's CPU (utime + stime of /proc/PID/stat) read before and
after each:
  idle                nothing but the server's own threads (the alerting's
                      sampling every 5 s);
  idle + overview     one open overview polling as the page does
                      (overview.js: GET /readyz every 2 s, GET
                      /console/api/overview?range=hour every 10 s, with the
                      session cookie);
  issuing             invoices at RATE/s (one keep-alive connection);
  issuing + overview  both.
The overview's cost is each pair's difference, per minute and per poll;
one invoice's is (issuing - idle) / invoices.  Then CALLS calls of each
route the page polls, back to back, for the CPU per call (the idle rate
taken out), and the per-minute cost they add up to.  Everything stays on
loopback; every loop is bounded in time."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

from soak import free_port  # bench/soak.py: a free loopback port

BIN = sys.argv[1]
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MINUTES = float(os.environ.get("MINUTES", "1"))
RATE = float(os.environ.get("RATE", "5"))
CALLS = int(os.environ.get("CALLS", "1000"))
READY_S, HISTORY_S = 2.0, 10.0  # web/console/overview.js FP_READY_MS, FP_HISTORY_MS
PASSWORD = "bench console password"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """The process's user + system CPU seconds (all threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def totp(seed):
    key = base64.b32decode(seed + "=" * (-len(seed) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time() // 30)), hashlib.sha1).digest()
    off = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff) % 1000000)


class Client:
    def __init__(self, port, ca):
        self.port, self.ctx = port, ssl.create_default_context(cafile=ca)
        self.c = None

    def req(self, method, path, body=None, headers=None):
        for _ in range(2):  # one reconnect
            if self.c is None:
                self.c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                                     timeout=30)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                return r.status, r.read(), r
            except (OSError, http.client.HTTPException):
                self.c.close()
                self.c = None
        return 0, b"", None


def issuer(cl, token, body, until, tag, out):
    n, errors, i = 0, 0, 0
    t_next = time.monotonic()
    while time.monotonic() < until:
        st, _, _ = cl.req("POST", "/v1/invoices", body,
                          {"Authorization": "Bearer " + token,
                           "Content-Type": "application/json",
                           "Idempotency-Key": "bench-console-%s-%d" % (tag, i)})
        i += 1
        n += st == 201
        errors += st != 201
        t_next += 1.0 / RATE
        time.sleep(max(0.0, min(t_next - time.monotonic(), until - time.monotonic())))
    out.update(invoices=n, errors=errors)


def overview(cl, cookie, until, out):
    """The page's two timers: /readyz every READY_S, the history every HISTORY_S."""
    polls = {"readyz": 0, "overview": 0, "bad": 0}
    t0 = time.monotonic()
    next_r, next_h = t0, t0
    while time.monotonic() < until:
        now = time.monotonic()
        if now >= next_r:
            st, _, _ = cl.req("GET", "/readyz", headers={"Cookie": cookie})
            polls["readyz"] += 1
            polls["bad"] += st not in (200, 503)
            next_r += READY_S
        if now >= next_h:
            st, _, _ = cl.req("GET", "/console/api/overview?range=hour",
                              headers={"Cookie": cookie})
            polls["overview"] += 1
            polls["bad"] += st != 200
            next_h += HISTORY_S
        time.sleep(max(0.0, min(next_r, next_h, until) - time.monotonic()))
    out.update(polls)


def phase(pid, fn):
    c0, t0 = cpu_s(pid), time.monotonic()
    res = fn()
    return cpu_s(pid) - c0, time.monotonic() - t0, res


def start(tmp):
    data = os.path.join(tmp, "data")
    init = json.loads(subprocess.run([BIN, "init", "--data-dir", data, "--demo", "--json"],
                                     check=True, stdout=subprocess.PIPE).stdout)
    enrol = subprocess.run([BIN, "users", "add", "--data-dir", data, "--user", "bench",
                            "--roles", "auditor", "--password-stdin"], input=PASSWORD + "\n",
                           check=True, capture_output=True, text=True).stdout.strip()
    port = free_port()
    log = open(os.path.join(tmp, "serve.log"), "wb")
    srv = subprocess.Popen([BIN, "serve", "--data-dir", data, "--listen", "127.0.0.1:%d" % port,
                            "--console-dir", os.path.join(REPO, "web", "console")],
                           stdout=log, stderr=log)
    return srv, port, init, enrol


def sign_in(cl, enrol):
    def login(**f):
        return cl.req("POST", "/console/api/login", json.dumps(dict(
            user="bench", password=PASSWORD, **f)).encode(), {"Content-Type": "application/json"})
    st, body, _ = login(enrol_token=enrol)
    assert st == 201, (st, body)
    uri = json.loads(body)["otpauth_uri"]
    seed = uri.split("secret=")[1].split("&")[0]
    st, body, r = login(totp=totp(seed))
    assert st == 200, (st, body)
    return r.getheader("Set-Cookie").split(";")[0]


def main():
    tmp = tempfile.mkdtemp(prefix="fapiao-console-bench-")
    srv, port, init, enrol = start(tmp)
    ca = init["ca_cert"]
    try:
        cl = Client(port, ca)
        deadline = time.monotonic() + 30
        while cl.req("GET", "/healthz")[0] != 200:
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.2)
        st, body, _ = cl.req("POST", "/v1/token", json.dumps(
            {"client_id": init["client_id"], "client_secret": init["client_secret"]}).encode(),
            {"Content-Type": "application/json"})
        token = json.loads(body)["access_token"]
        cookie = sign_in(cl, enrol)
        body = open(os.path.join(REPO, "examples", "invoice.json"), "rb").read()
        dur = MINUTES * 60
        time.sleep(6)  # the history's first samples

        idle = phase(srv.pid, lambda: time.sleep(dur))

        def run(tag, issuing, with_overview):
            def go():
                until = time.monotonic() + dur
                a, b = {"invoices": 0, "errors": 0}, {"readyz": 0, "overview": 0, "bad": 0}
                ts = []
                if issuing:
                    ts.append(threading.Thread(target=issuer, args=(
                        Client(port, ca), token, body, until, tag, a)))
                if with_overview:
                    ts.append(threading.Thread(target=overview, args=(
                        Client(port, ca), cookie, until, b)))
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(dur + 120)
                time.sleep(max(0.0, until - time.monotonic()))
                return a, b
            return go

        phases = {"idle": (idle[0], idle[1], ({"invoices": 0, "errors": 0},
                                               {"readyz": 0, "overview": 0, "bad": 0}))}
        phases["idle + overview"] = phase(srv.pid, run("idle", False, True))
        phases["issuing"] = phase(srv.pid, run("alone", True, False))
        phases["issuing + overview"] = phase(srv.pid, run("both", True, True))
        calls = {}
        for path in ("/readyz", "/console/api/overview?range=hour",
                     "/console/api/overview?range=day"):
            def burst(path=path):
                bad = 0
                for _ in range(CALLS):
                    bad += cl.req("GET", path, headers={"Cookie": cookie})[0] not in (200,)
                return bad
            calls[path] = phase(srv.pid, burst)
        st, body, _ = cl.req("GET", "/console/api/overview?range=hour", headers={"Cookie": cookie})
        size = len(body)
    finally:
        srv.terminate()
        srv.wait(30)
    report(phases, calls, size)
    bad = sum(p[2][0]["errors"] + p[2][1]["bad"] for p in phases.values())
    return 0 if bad == 0 and not any(c[2] for c in calls.values()) else 1


def per_min(p):
    """CPU seconds per minute of a phase."""
    return p[0] / p[1] * 60


def report(phases, calls, size):
    idle, ov, alone, both = (phases[k] for k in ("idle", "idle + overview", "issuing",
                                                  "issuing + overview"))
    inv_a = alone[2][0]["invoices"]
    per_invoice = (alone[0] - idle[0] * alone[1] / idle[1]) / max(inv_a, 1)
    polls = ov[2][1]
    polls_min = (polls["readyz"] + polls["overview"]) / ov[1] * 60
    busy = {k: (p[0] - idle[0] / idle[1] * p[1]) / CALLS for k, p in calls.items()}
    from_calls = (60 / READY_S * busy["/readyz"] +
                  60 / HISTORY_S * busy["/console/api/overview?range=hour"])
    out = ["# One open console overview: server CPU (bench/console.sh)\n",
           "%s, %d cores, load average %.1f at the end (a shared machine); %g min per phase, "
           "invoices at %g/s; the page's polling: /readyz every %g s, "
           "/console/api/overview?range=hour every %g s (answer %d bytes).\n"
           % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), os.getloadavg()[0], MINUTES,
              RATE, READY_S, HISTORY_S, size),
           "| phase | wall s | invoices | polls (readyz + overview) | server CPU s | CPU ms/min |",
           "|---|---|---|---|---|---|"]
    for name, p in phases.items():
        out.append("| %s | %.0f | %d | %d + %d | %.2f | %.0f |"
                   % (name, p[1], p[2][0]["invoices"], p[2][1]["readyz"], p[2][1]["overview"],
                      p[0], per_min(p) * 1000))
    out += ["", "| cost | server CPU |", "|---|---|",
            "| one issued invoice ((issuing - idle) / invoices) | %.2f ms |" % (per_invoice * 1000)]
    for k, p in calls.items():
        out.append("| one GET %s (%d back to back, idle rate taken out) | %.3f ms |"
                   % (k, CALLS, busy[k] * 1000))
    out += ["| one open overview per minute, from the calls (%d readyz + %d overview) | "
            "**%.1f ms/min** (= %.1f invoices) |"
            % (60 / READY_S, 60 / HISTORY_S, from_calls * 1000, from_calls / per_invoice),
            "| ... per poll | %.3f ms |" % (from_calls * 1000 / (60 / READY_S + 60 / HISTORY_S)),
            "| one open overview per minute, (idle + overview) - idle (%.0f polls/min) | "
            "%.1f ms/min |" % (polls_min, (per_min(ov) - per_min(idle)) * 1000),
            "| one open overview per minute, (issuing + overview) - issuing | %.1f ms/min |"
            % ((per_min(both) - per_min(alone)) * 1000)]
    out.append("\nThe phase differences are within the noise of CPU ticks (%d/s) and of the "
               "issuing itself; the back-to-back calls measure the routes with less noise. "
               "The history is minutes old here: a series holds at most 8192 samples (about "
               "11 h at 5 s), so an overview of a server up for hours reads more samples per "
               "call than in this run." % TICK)
    print("\n".join(out))

if __name__ == "__main__":
    sys.exit(main())
