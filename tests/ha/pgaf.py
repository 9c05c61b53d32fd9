"""pgaf.py — a throw-away pg_auto_failover formation for one test run.

    from pgaf import Formation
    with Formation() as f:          # monitor + primary + synchronous secondary
        f.url                       # postgresql://USER@127.0.0.1:P1,127.0.0.1:P2/fapiao?
                                    #   target_session_attrs=read-write
        f.primary()                 # the node the monitor calls primary
        f.kill_keeper(node)         # kill -9 a node's pg_autoctl and its postgres
        f.switchover()              # pg_autoctl perform switchover

    python3 tests/ha/pgaf.py run -- COMMAND [ARGS...]   (FAPIAO_PG_URL for COMMAND;
        FAPIAO_PGAF_DIR names the formation's directory, for bench/ha.sh)

Everything lives in one temporary directory (data directories, pg_autoctl's
configuration and state: HOME and the XDG directories point into it) on
free loopback ports picked per run (never 5432), so two runs at once share
nothing.  PostgreSQL and pg_autoctl refuse to run as root, and CI is root:
as tests/pg/pg-harness.sh does, the processes then run as `postgres`
(Debian's postgresql-15 creates it) or, without it, the system user
`fapiao-pgtest`, created once under a lock.  Every keeper runs in a process
group of its own; teardown (also on failure, and at interpreter exit) kills
the groups and each postmaster named by its postmaster.pid, then removes
the directory.

The monitor's failover settings are tuned from the defaults (about a
minute) to about 20 s, keeping the split-brain protection: the monitor
waits primary_demote_timeout before it promotes the standby of a primary
that stopped reporting, and that is longer than the keepers'
network_partition_timeout, after which a primary that can reach neither
the monitor nor its standby demotes itself.  docs/ha.md §5 lists the
values (MONITOR_SETTINGS, KEEPER_SETTINGS below).
"""
import atexit
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PGBIN = os.environ.get("FAPIAO_PGBIN", "/usr/lib/postgresql/15/bin")
PG_AUTOCTL = shutil.which("pg_autoctl") or "/usr/bin/pg_autoctl"

# The monitor (pgautofailover.* GUCs, milliseconds).  Detection: a health
# check every second, 1 s timeout, one retry after 0.5 s; a node is
# unhealthy when its checks fail and its keeper has not reported for 5 s.
# Then the monitor waits primary_demote_timeout (15 s) for the old primary
# to acknowledge its demotion before promoting the standby.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": 1000,
    "pgautofailover.health_check_timeout": 1000,
    "pgautofailover.health_check_max_retries": 1,
    "pgautofailover.health_check_retry_delay": 500,
    "pgautofailover.node_considered_unhealthy_timeout": 5000,
    "pgautofailover.primary_demote_timeout": 15000,
    "pgautofailover.startup_grace_period": 5000,
}
# The keepers (pg_autoctl config, seconds).  network_partition_timeout must
# stay below the monitor's primary_demote_timeout: a primary cut off from
# the monitor and the standby demotes itself (10 s) before the monitor may
# promote the standby (15 s), so two primaries never take writes at once.
KEEPER_SETTINGS = {
    "timeout.network_partition_timeout": 10,
    "timeout.prepare_promotion_catchup": 15,
    "timeout.prepare_promotion_walreceiver": 3,
}
assert (KEEPER_SETTINGS["timeout.network_partition_timeout"] * 1000
        < MONITOR_SETTINGS["pgautofailover.primary_demote_timeout"])

_LIVE = []


@atexit.register
def _teardown_leftovers():
    for f in list(_LIVE):
        f.close()


def available():
    """None when the formation can be made here, else why not."""
    if not os.access(PG_AUTOCTL, os.X_OK):
        return "pg_autoctl not found (install pg-auto-failover-cli: scripts/install-deps.sh --test)"
    if not os.path.exists(os.path.join(PGBIN, "pg_ctl")):
        return "PostgreSQL 15 binaries not found in %s" % PGBIN
    if not os.path.isdir("/usr/lib/postgresql/15/lib") or not any(
            n.startswith("pgautofailover") for n in os.listdir("/usr/lib/postgresql/15/lib")):
        return "the pgautofailover extension is missing (install postgresql-15-auto-failover)"
    return None


def _free_port(taken):
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p != 5432 and p not in taken:
            taken.add(p)
            return p
    raise RuntimeError("no free port")


def _service_user():
    """(uid, gid, name) to run PostgreSQL as; None when not root."""
    if os.getuid() != 0:
        return None
    for name in ("postgres", "fapiao-pgtest"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid, name
        except KeyError:
            pass
    with open("/run/lock/fapiao-pgtest.lock", "w") as lk:  # as pg-harness.sh
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            pwd.getpwnam("fapiao-pgtest")
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                            "/nonexistent", "--shell", "/usr/sbin/nologin", "fapiao-pgtest"],
                           check=True)
    pw = pwd.getpwnam("fapiao-pgtest")
    return pw.pw_uid, pw.pw_gid, "fapiao-pgtest"


class Node:
    def __init__(self, name, pgdata, port):
        self.name, self.pgdata, self.port = name, pgdata, port
        self.proc = None  # the keeper (pg_autoctl run), leader of its process group

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.pgdata, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None


class Formation:
    """A monitor, a primary and a synchronous secondary (see the top)."""

    def __init__(self, dbname="fapiao", log=None):
        why = available()
        if why:
            raise RuntimeError(why)
        self.dbname = dbname
        self.log = log or (lambda msg: print("pgaf: " + msg, file=sys.stderr, flush=True))
        self.user = _service_user()
        self.dir = tempfile.mkdtemp(prefix="fapiao-pgaf.", dir=os.environ.get("TMPDIR"))
        os.chmod(self.dir, 0o755)
        if self.user:
            os.chown(self.dir, self.user[0], self.user[1])
        self.username = self.user[2] if self.user else pwd.getpwuid(os.getuid()).pw_name
        ports = set()
        self.monitor = Node("monitor", os.path.join(self.dir, "monitor"), _free_port(ports))
        self.nodes = [Node("node%d" % i, os.path.join(self.dir, "node%d" % i), _free_port(ports))
                      for i in (1, 2)]
        self.env = dict(os.environ, HOME=self.dir, XDG_CONFIG_HOME=self.dir + "/config",
                        XDG_DATA_HOME=self.dir + "/share", XDG_RUNTIME_DIR=self.dir + "/run",
                        PG_CONFIG=PGBIN + "/pg_config",
                        PATH=PGBIN + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
                        PGCONNECT_TIMEOUT="5")
        for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGDATA"):
            self.env.pop(k, None)
        self.closed = False
        _LIVE.append(self)

    # ---- running things as the service user ---------------------------------
    def _popen_kw(self):
        kw = dict(env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL)
        if self.user:
            kw.update(user=self.user[0], group=self.user[1], extra_groups=[])
        return kw

    def ctl(self, *args, timeout=120, check=True):
        r = subprocess.run([PG_AUTOCTL] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, **self._popen_kw())
        out = r.stdout.decode(errors="replace")
        if check and r.returncode != 0:
            raise RuntimeError("pg_autoctl %s failed (%d):\n%s" % (" ".join(args), r.returncode,
                                                                  out[-3000:]))
        return out

    def psql(self, port, sql, db=None, timeout=30):
        """Runs sql on the server at port; its rows as lists of strings."""
        r = subprocess.run([PGBIN + "/psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U",
                            self.username, "-d", db or self.dbname, "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=self.env)
        if r.returncode != 0:
            raise RuntimeError("psql on %d: %s" % (port, r.stderr.decode(errors="replace")))
        return [ln.split("\t") for ln in r.stdout.decode().splitlines() if ln]

    def _start_keeper(self, node):
        logf = open(os.path.join(self.dir, node.name + ".log"), "ab")
        node.proc = subprocess.Popen([PG_AUTOCTL, "run", "--pgdata", node.pgdata],
                                     stdout=logf, stderr=logf, start_new_session=True,
                                     **self._popen_kw())
        logf.close()

    # ---- the formation -----------------------------------------------------
    @property
    def monitor_uri(self):
        return "postgres://autoctl_node@127.0.0.1:%d/pg_auto_failover?sslmode=disable" % (
            self.monitor.port)

    @property
    def url(self):
        hosts = ",".join("127.0.0.1:%d" % n.port for n in self.nodes)
        return "postgresql://%s@%s/%s?target_session_attrs=read-write&connect_timeout=3" % (
            self.username, hosts, self.dbname)

    @property
    def conninfo(self):
        """The same in libpq's keyword form."""
        return ("host=%s port=%s user=%s dbname=%s target_session_attrs=read-write "
                "connect_timeout=3" % (",".join("127.0.0.1" for _ in self.nodes),
                                       ",".join(str(n.port) for n in self.nodes),
                                       self.username, self.dbname))

    def start(self, timeout=240):
        t0 = time.monotonic()
        m = self.monitor
        self.ctl("create", "monitor", "--pgdata", m.pgdata, "--pgport", str(m.port),
                 "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl",
                 "--pgctl", PGBIN + "/pg_ctl")
        self.ctl("config", "set", "--pgdata", m.pgdata, "postgresql.listen_addresses", "127.0.0.1")
        self._start_keeper(m)
        self._wait(lambda: self.psql(m.port, "select 1", db="pg_auto_failover"), "the monitor",
                   t0 + timeout)
        sets = "".join("ALTER SYSTEM SET %s TO %d;" % kv for kv in MONITOR_SETTINGS.items())
        for stmt in sets.split(";")[:-1] + ["SELECT pg_reload_conf()"]:
            self.psql(m.port, stmt, db="pg_auto_failover")
        want = ["single", "primary"]
        for i, n in enumerate(self.nodes):
            self.ctl("create", "postgres", "--pgdata", n.pgdata, "--pgport", str(n.port),
                     "--listen", "127.0.0.1", "--hostname", "127.0.0.1", "--name", n.name,
                     "--monitor", self.monitor_uri, "--auth", "trust", "--no-ssl",
                     "--dbname", self.dbname, "--pgctl", PGBIN + "/pg_ctl", timeout=180)
            for k, v in KEEPER_SETTINGS.items():
                self.ctl("config", "set", "--pgdata", n.pgdata, k, str(v))
            self._start_keeper(n)
            if i == 0:
                self._wait(lambda: self.states().get("node1") == ("single", "single"),
                           "node1 single", t0 + timeout)
        self._wait(lambda: self.settled(), "primary + secondary", t0 + timeout)
        self.log("formation up in %.1f s: %s" % (time.monotonic() - t0, self.url))
        return self

    def _wait(self, ok, what, deadline):
        last = None
        while time.monotonic() < deadline:
            try:
                if ok():
                    return
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                last = e
            for n in [self.monitor] + self.nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    raise RuntimeError("pg_autoctl of %s exited (%s):\n%s" % (
                        n.name, n.proc.returncode, self.log_tail(n)))
            time.sleep(0.25)
        raise RuntimeError("timed out waiting for %s (%s); states %r\n%s" % (
            what, last, self._states_or_none(), "\n".join(self.log_tail(n) for n in self.nodes)))

    def _states_or_none(self):
        try:
            return self.states()
        except Exception as e:  # noqa: BLE001 - for a message only
            return repr(e)

    def states(self):
        """{node name: (reported state, goal state)} as the monitor has them."""
        rows = self.psql(self.monitor.port, "select nodename, reportedstate, goalstate "
                         "from pgautofailover.node", db="pg_auto_failover", timeout=10)
        return {r[0]: (r[1], r[2]) for r in rows}

    def settled(self):
        """A primary and a secondary, both where the monitor wants them."""
        st = self.states()
        have = sorted(rep for rep, goal in st.values() if rep == goal)
        return len(st) == 2 and have == ["primary", "secondary"]

    def primary(self):
        """The node reported primary (or wait_primary), else None."""
        st = self.states()
        for n in self.nodes:
            if st.get(n.name, ("",))[0] in ("primary", "wait_primary", "single"):
                return n
        return None

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def wait_settled(self, timeout=120):
        self._wait(self.settled, "primary + secondary", time.monotonic() + timeout)

    def sync_standby_names(self, node):
        return self.psql(node.port, "show synchronous_standby_names")[0][0]

    # ---- faults ------------------------------------------------------------
    def kill_keeper(self, node, pm_signal=signal.SIGKILL):
        """kill -9 the node's pg_autoctl (its whole process group) and its
        postgres together: without the keeper nothing restarts postgres.
        pm_signal: what the postmaster gets (teardown: SIGQUIT)."""
        pm = node.postmaster_pid()
        if node.proc is not None:
            try:
                os.killpg(node.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pm:
            try:
                os.kill(pm, pm_signal)
            except ProcessLookupError:
                pass
        if node.proc is not None:
            node.proc.wait(timeout=30)
            node.proc = None

    def restart_keeper(self, node):
        """Starts a killed node's keeper again (it rejoins as a secondary)."""
        assert node.proc is None
        self._start_keeper(node)

    def switchover(self, wait=60):
        return self.ctl("perform", "switchover", "--pgdata", self.monitor.pgdata, "--wait",
                        str(wait), timeout=wait + 30)

    # ---- teardown ----------------------------------------------------------
    def log_tail(self, node, n=30):
        try:
            with open(os.path.join(self.dir, node.name + ".log"), "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "--- %s\n%s" % (node.name, "\n".join(lines[-n:]))
        except OSError:
            return ""

    def close(self):
        if self.closed:
            return
        self.closed = True
        everyone = self.nodes + [self.monitor]
        # the keepers first (kill -9: nothing may start postgres again), then
        # an immediate shutdown of each postmaster (SIGQUIT: it stops its
        # children and waits for them; a kill -9 of the postmaster left the
        # monitor's logger and healthcheck worker running for good)
        for n in everyone:
            self.kill_keeper(n, signal.SIGQUIT)
        # wait for the ports so that the directory is not removed under a
        # dying server, then kill -9 whatever still runs in our directory
        deadline = time.monotonic() + 20
        for n in everyone:
            while time.monotonic() < deadline and self._listening(n.port):
                time.sleep(0.1)
        self._kill_leftovers(deadline)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in _LIVE:
            _LIVE.remove(self)

    def _leftovers(self):
        """PIDs of processes whose working directory is under ours (postgres
        processes run in their data directory)."""
        mine, root = [], os.path.realpath(self.dir) + os.sep
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cwd = os.readlink("/proc/%s/cwd" % pid) + os.sep
            except OSError:
                continue
            if cwd.startswith(root):
                mine.append(int(pid))
        return mine

    def _kill_leftovers(self, deadline):
        while time.monotonic() < deadline and self._leftovers():
            time.sleep(0.1)  # an immediate shutdown takes a moment
        for pid in self._leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @staticmethod
    def _listening(port):
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()


def _main(argv):
    if len(argv) < 3 or argv[0] != "run" or argv[1] != "--":
        print("usage: pgaf.py run -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    why = available()
    if why:
        print("pgaf: SKIP: " + why, file=sys.stderr)
        return 77
    f = Formation()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        f.start()
        env = dict(os.environ, FAPIAO_PG_URL=f.url, FAPIAO_PGAF_DIR=f.dir,
                   FAPIAO_PGAF_STATE=json.dumps({
                       "monitor_pgdata": f.monitor.pgdata, "monitor_port": f.monitor.port,
                       "nodes": {n.name: {"pgdata": n.pgdata, "port": n.port,
                                          "keeper_pid": n.proc.pid} for n in f.nodes}}))
        return subprocess.call(argv[2:], env=env)
    finally:
        f.close()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
