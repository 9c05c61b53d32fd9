"""The HA drills' rig (docs/ha.md §7): a pg_auto_failover formation
(tests/ha/pgaf.py), two fapiao nodes on it behind HAProxy
(deploy/haproxy/haproxy.cfg as shipped, its values from the environment),
and a load client that issues unique keys at a steady rate and retries every
key that got no answer with the same key.

One formation, one pair of nodes and one proxy serve all three drills of a
run (module scope): making a formation takes about half a minute on this
machine.  The drills run in the order node loss, switchover, primary loss:
each leaves a formation with a primary and a synchronous secondary, except
the last, after which nothing else runs.
"""
import http.client
import importlib.util
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ha"))
import pgaf  # noqa: E402

_spec = importlib.util.spec_from_file_location("e2e_helpers", ROOT / "tests" / "e2e" / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
RATE = int(os.environ.get("FAPIAO_DRILL_RATE", "300"))  # offered invoices/s
MIN_RATE = 200  # acknowledged invoices/s at the fault moment (issue 17)
MAX_UNAVAILABLE_S = 90

# ---- HAProxy -----------------------------------------------------------------

class Proxy:
    def __init__(self, base, nodes, ca, trust_ctx):
        self.dir = Path(base)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = str(self.dir / "admin.sock")
        self.nodes = nodes
        self.ca = ca
        self.ctx = trust_ctx
        self.proc = None
        self.port = None

    def start(self):
        for attempt in range(3):
            self.port = e2e.free_port()
            env = dict(os.environ, FAPIAO_LISTEN="127.0.0.1:%d" % self.port,
                       FAPIAO_NODE1="127.0.0.1:%d" % self.nodes[0].port,
                       FAPIAO_NODE2="127.0.0.1:%d" % self.nodes[1].port,
                       FAPIAO_CA=str(self.ca), FAPIAO_CHECK_NAME="localhost",
                       FAPIAO_HAPROXY_SOCK=self.sock)
            logf = open(self.dir / "haproxy.log", "ab")
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(HAPROXY_CFG)], env=env,
                                         stdout=logf, stderr=logf, stdin=subprocess.DEVNULL,
                                         preexec_fn=e2e._die_with_parent)
            logf.close()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ready_servers() == 2:
                    return self
                time.sleep(0.2)
            self.stop()
        raise AssertionError("haproxy did not come up:\n" + self.log_tail())

    def admin(self, cmd):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(cmd.encode() + b"\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        return out.decode(errors="replace")

    def server_states(self, backend="fapiao_nodes"):
        """{server name: status} from `show stat` (UP, DOWN, DRAIN, MAINT...);
        a server not checked yet is "INI" (HAProxy calls it UP from the start)."""
        try:
            lines = self.admin("show stat").splitlines()
        except OSError:
            return {}
        if not lines:
            return {}
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for ln in lines[1:]:
            row = dict(zip(head, ln.split(",")))
            if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
                st = row.get("status", "")
                if st.startswith("UP") and not row.get("check_status", "").startswith("L7OK"):
                    st = "INI " + row.get("check_status", "")
                out[row["svname"]] = st
        return out

    def ready_servers(self):
        return sum(1 for st in self.server_states().values() if st.startswith("UP"))

    def log_tail(self, n=40):
        try:
            return "\n".join((self.dir / "haproxy.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


# ---- the load client -----------------------------------------------------------

class Load:
    """Issues unique keys through the proxy at `rate` per second from
    `threads` threads with keep-alive connections.  A key whose request got
    no answer (connection lost, timeout) or a 5xx is retried with the same
    key (after the Retry-After it was given, at most 1 s) until it gets a
    final answer or the client's end; 201 and the replay 200 are
    acknowledgements, logged with their number and time."""

    def __init__(self, host, port, ctx, token, rate=RATE, threads=64, prefix="drill"):
        self.host, self.port, self.ctx, self.token = host, port, ctx, token
        self.rate, self.nthreads, self.prefix = rate, threads, prefix
        self.lock = threading.Lock()
        self.next_key = 0
        self.retry = queue.Queue()
        self.acked = {}  # key -> (number, monotonic time)
        self.final_refused = {}  # key -> status (a 4xx that is final)
        self.errors = {}  # "503 DEGRADED", "ConnectionResetError", ... -> count
        self.issuing = threading.Event()
        self.stop_all = threading.Event()
        self.t0 = None
        self.threads = []

    def _count(self, what):
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1

    def _take(self):
        """The next key to send, or None.  New keys are paced: key i is due at
        t0 + i/rate."""
        try:
            return self.retry.get_nowait()
        except queue.Empty:
            pass
        if not self.issuing.is_set():
            try:
                return self.retry.get(timeout=0.2)
            except queue.Empty:
                return None
        with self.lock:
            i = self.next_key
            self.next_key += 1
        due = self.t0 + i / self.rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return "%s-%07d" % (self.prefix, i)

    def _worker(self):
        conn = None
        while not self.stop_all.is_set():
            key = self._take()
            if key is None:
                if not self.issuing.is_set() and self.retry.empty() and self.pending() == 0:
                    break
                continue
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                       timeout=15)
                conn.request("POST", "/v1/invoices", body=e2e.EXAMPLE_BODY, headers={
                    "Authorization": "Bearer " + self.token, "Content-Type": "application/json",
                    "Idempotency-Key": key})
                r = conn.getresponse()
                body = r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                self._count(type(e).__name__)
                if conn is not None:
                    conn.close()
                conn = None
                self.retry.put(key)
                time.sleep(0.05)
                continue
            if status in (200, 201):
                number = json.loads(body).get("number")
                with self.lock:
                    self.acked[key] = (number, time.monotonic())
                continue
            try:
                code = json.loads(body).get("code", "")
            except ValueError:
                code = ""
            self._count("%d %s" % (status, code))
            if status == 503 and not r.getheader("Retry-After"):
                self._count("503 without Retry-After")
            if status >= 500 or status == 429 or (status == 409 and code != "IDEMPOTENCY_KEY_REUSED"):
                ra = r.getheader("Retry-After")
                time.sleep(min(1.0, float(ra)) if ra and ra.isdigit() else 0.2)
                self.retry.put(key)
            else:
                with self.lock:
                    self.final_refused[key] = status

    def pending(self):
        with self.lock:
            return self.next_key - len(self.acked) - len(self.final_refused)

    def start(self):
        self.t0 = time.monotonic()
        self.issuing.set()
        for _ in range(self.nthreads):
            t = threading.Thread(target=self._worker, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def ack_rate(self, t_from, t_to):
        with self.lock:
            n = sum(1 for _, t in self.acked.values() if t_from <= t < t_to)
        return n / max(1e-9, t_to - t_from)

    def longest_gap(self, t_from, t_to):
        """The longest time in [t_from, t_to] with no acknowledgement."""
        with self.lock:
            ts = sorted(t for _, t in self.acked.values() if t_from <= t <= t_to)
        points = [t_from] + ts + [t_to]
        return max(b - a for a, b in zip(points, points[1:]))

    def finish(self, timeout=120):
        """Stops new keys and waits (bounded) until every key has an answer."""
        self.issuing.clear()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pending() > 0:
            time.sleep(0.2)
        self.stop_all.set()
        for t in self.threads:
            t.join(timeout=20)


# ---- fixtures ------------------------------------------------------------------

class Rig:
    def __init__(self, base):
        self.base = Path(base)
        self.form = pgaf.Formation()
        self.nodes = []
        self.proxy = None

    def up(self):
        self.form.start()
        # node1 names the database by URL, node2 in libpq's keyword form:
        # both multi-host, both with target_session_attrs=read-write
        args = ["--trusted-proxy", "127.0.0.1/32", "--client-rate", "0",
                "--global-rate", "0", "--concurrency-max", "off", "--auth-fail-rate", "0",
                # every test connection comes from 127.0.0.1 (the PROXY header says so)
                "--max-connections-per-ip", "1000"]
        # `fapiao init --demo --database URL` migrates the schema and puts the
        # demo seller, credential and range into PostgreSQL, as an operator
        # sets a node up (docs/ha.md); node2's own init only makes its data
        # directory, whose keys and certificate are then node1's
        n1 = e2e.Server(self.base / "node1", ["--database", self.form.url] + args,
                        init_args=["--database", self.form.url])
        assert not n1.db_path.exists(), "init made a SQLite file beside a server database"
        n2 = e2e.Server(self.base / "node2", ["--database", self.form.conninfo] + args)
        # one installation: node2 takes node1's keys and certificate
        for name in ("token.key", "audit.key", "webhook.key", "audit.pub"):
            src = n1.data_dir / name
            if src.exists():
                shutil.copy2(src, n2.data_dir / name)
        shutil.rmtree(n2.data_dir / "tls")
        shutil.copytree(n1.data_dir / "tls", n2.data_dir / "tls")
        n2.trust(n1.ca_cert)
        self.nodes = [n1, n2]
        self._start_direct(n1)
        self._start_direct(n2)
        self.proxy = Proxy(self.base / "haproxy", self.nodes, n1.ca_cert, n1._ctx).start()
        self.token = None
        self.token = self.via_proxy().token()
        return self

    def _start_direct(self, node, port=None):
        """Server.start() checks /healthz directly, but the node expects a
        PROXY header from 127.0.0.1 (the proxy's address): start it and wait
        for its port, then use it through the proxy."""
        for attempt in range(3):
            node.port = port or e2e.free_port()
            logf = open(node.log_path, "ab")
            node.proc = subprocess.Popen(
                [e2e.BIN, "serve", "--data-dir", str(node.data_dir), "--listen",
                 "127.0.0.1:%d" % node.port] + node.serve_args,
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                env=e2e.fapiao_env(LIBC_FATAL_STDERR_="1", FAPIAO_RENDER_AGE_MAX="0"),
                preexec_fn=e2e._die_with_parent)
            logf.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and node.proc.poll() is None:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", node.port)) == 0:
                        return
                time.sleep(0.1)
            rc = node.proc.poll()
            node.kill9()
            if rc is None or port or "cannot listen" not in node.log_tail():
                raise AssertionError("node did not start (%r):\n%s" % (rc, node.log_tail()))

    def via_proxy(self):
        """A Server-like handle for requests through the proxy."""
        n = self.nodes[0]
        h = e2e.Server.__new__(e2e.Server)
        h.port, h._ctx, h._token = self.proxy.port, n._ctx, self.token
        h.client_id, h.client_secret = n.client_id, n.client_secret
        return h

    def db(self, sql):
        return self.form.psql(self.form.primary().port, sql)

    def down(self):
        if self.proxy:
            self.proxy.stop()
        for n in self.nodes:
            n.kill9()
        self.form.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    why = pgaf.available()
    if why:
        pytest.fail("the drills need pg_auto_failover: " + why)
    r = Rig(tmp_path_factory.mktemp("drills"))
    try:
        yield r.up()
    finally:
        r.down()


def check_database(rig, load):
    """The figures the issue asks for, from the client's log and the
    database: lost acknowledged invoices, duplicates, numbers reused or
    skipped."""
    rows = rig.db("select serial, number from invoices where serial like '%s-%%'" % load.prefix)
    stored = {}
    dup = 0
    for serial, number in rows:
        dup += serial in stored
        stored[serial] = number
    lost = [k for k, (num, _) in load.acked.items() if stored.get(k) != num]
    numbers = [r[0] for r in rig.db("select number from invoices order by number")]
    # a number is the range's prefix and 15 digits (src/store/pg/writer.c):
    # every number a range handed out must be an invoice, and no other
    handed = set()
    for prefix, first, nx in rig.db("select prefix, first, next from number_ranges"):
        handed.update("%s%015d" % (prefix, i) for i in range(int(first), int(nx)))
    have = set(numbers)
    return {"acked": len(load.acked), "stored": len(stored), "lost": len(lost),
            "lost_keys": lost[:10], "duplicates": dup + (len(numbers) - len(have)),
            "numbers": len(numbers), "range_consumed": len(handed),
            "skipped": len(handed - have), "outside_ranges": len(have - handed)}
