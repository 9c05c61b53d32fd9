"""Helpers of the PostgreSQL point-in-time drill (test_pitr_pg.py,
docs/recovery.md "PostgreSQL"): throw-away PostgreSQL 15 clusters run the way
tests/pg/pg-harness.sh runs one (a temporary directory, a free loopback port,
the socket in that directory, fsync on, trust on 127.0.0.1 only; as the
`postgres` user, or `fapiao-pgtest`, when the tests run as root), with
pgBackRest archiving their WAL into a repository in the same directory.

The pgBackRest and PostgreSQL settings are the shipped ones,
deploy/pgbackrest/pgbackrest.conf and postgresql.fapiao.conf, with only the
paths and the port replaced: the drill tests those files.

Also here: a check of the audit chain read by SQL, the same hashes as
src/audit/chain.c, independent of `fapiao audit verify`.  (The demo
installation gets into PostgreSQL by `fapiao init --demo --database URL`.)"""
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PGBIN = Path(os.environ.get("FAPIAO_PGBIN", "/usr/lib/postgresql/15/bin"))
PGBACKREST = shutil.which("pgbackrest") or "/usr/bin/pgbackrest"
DEPLOY = REPO / "deploy" / "pgbackrest"
STANZA = "fapiao"


def missing():
    """Why the drill cannot run here, or None."""
    for b in ("initdb", "pg_ctl", "postgres"):
        if not os.access(PGBIN / b, os.X_OK):
            return "PostgreSQL 15 binaries not found in %s (scripts/install-deps.sh --test)" % PGBIN
    if not os.access(PGBACKREST, os.X_OK):
        return "pgbackrest not found (scripts/install-deps.sh --test)"
    return None


def server_user():
    """The user the server runs as: none (ourselves) unless root, as in
    tests/pg/pg-harness.sh."""
    if os.getuid() != 0:
        return None
    for user in ("postgres", "fapiao-pgtest"):
        if subprocess.run(["id", "-u", user], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0:
            return user
    subprocess.run(["flock", "-w", "30", "/run/lock/fapiao-pgtest.lock", "sh", "-c",
                    "id -u fapiao-pgtest >/dev/null 2>&1 || useradd --system --no-create-home"
                    " --home-dir /nonexistent --shell /usr/sbin/nologin fapiao-pgtest"],
                   check=True, timeout=60)
    return "fapiao-pgtest"


def free_port():
    for _ in range(20):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p != 5432:
            return p
    raise AssertionError("no free port")


class Workspace:
    """The temporary directory of one drill: clusters, the pgBackRest
    repository, its spool, lock and log directories, owned by the server's
    user."""

    def __init__(self, base):
        self.dir = Path(base)
        self.user = server_user()
        self.repo = self.dir / "repo"
        for d in (self.dir, self.repo, self.dir / "spool", self.dir / "lock", self.dir / "log"):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755 if d == self.dir else 0o750)
            if self.user:
                shutil.chown(d, self.user)

    def run(self, argv, env=None, timeout=120, check=True):
        """argv as the server's user; returns the CompletedProcess."""
        pre = ["runuser", "-u", self.user, "--"] if self.user else []
        extra = ["%s=%s" % kv for kv in (env or {}).items()]
        r = subprocess.run(pre + ["env"] + extra + [str(a) for a in argv],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           cwd=str(self.dir))
        if check and r.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s" % (
                " ".join(map(str, argv)), r.returncode, r.stdout.decode(errors="replace"),
                r.stderr.decode(errors="replace")))
        return r

    def own(self, path):
        if self.user:
            shutil.chown(path, self.user)


class Cluster:
    """One PostgreSQL data directory (made by initdb, or by a pgBackRest
    restore) and its server, with its own pgBackRest configuration file
    (the shipped one, pointing at this data directory and port)."""

    def __init__(self, ws, name, port=None):
        self.ws = ws
        self.name = name
        self.data = ws.dir / name
        self.port = port or free_port()
        self.conf = ws.dir / ("pgbackrest-%s.conf" % name)
        self.started = False
        self._write_conf()

    def _write_conf(self):
        text = (DEPLOY / "pgbackrest.conf").read_text()
        subst = {"repo1-path=/var/lib/pgbackrest": "repo1-path=%s" % self.ws.repo,
                 "spool-path=/var/spool/pgbackrest": "spool-path=%s" % (self.ws.dir / "spool"),
                 "log-path=/var/log/pgbackrest": "log-path=%s" % (self.ws.dir / "log"),
                 "pg1-path=/var/lib/postgresql/15/main": "pg1-path=%s" % self.data,
                 "pg1-port=5432": "pg1-port=%d" % self.port,
                 "pg1-socket-path=/var/run/postgresql": "pg1-socket-path=%s" % self.ws.dir}
        for a, b in subst.items():
            assert a in text, "deploy/pgbackrest/pgbackrest.conf lacks %r" % a
            text = text.replace(a, b)
        # the lock directory, the database user of the test cluster, and less
        # console output; everything else as shipped
        text = text.replace("[global]\n", "[global]\nlock-path=%s\nlog-level-console=warn\n"
                            % (self.ws.dir / "lock"), 1)
        text = text.replace("\nlog-level-console=info\n", "\n")
        text += "pg1-user=fapiao\n"
        self.conf.write_text(text)
        self.ws.own(self.conf)

    @property
    def env(self):
        # archive_command and restore_command run with the server's
        # environment: this names their configuration file
        return {"PGBACKREST_CONFIG": str(self.conf)}

    @property
    def url(self):
        return "postgresql://fapiao@127.0.0.1:%d/fapiao" % self.port

    def initdb(self):
        self.ws.run([PGBIN / "initdb", "-D", self.data, "-U", "fapiao", "--auth=trust", "-E",
                     "UTF8", "--locale=C.UTF-8", "--data-checksums"])
        frag = (DEPLOY / "postgresql.fapiao.conf").read_text()
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# deploy/pgbackrest/postgresql.fapiao.conf\n" + frag)

    def start(self):
        opts = ("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s "
                "-c fsync=on -c synchronous_commit=on -c max_connections=40 "
                "-c shared_buffers=32MB" % (self.port, self.ws.dir))
        self.started = True
        self.ws.run([PGBIN / "pg_ctl", "-D", self.data, "-l", self.ws.dir / ("%s.log" % self.name),
                     "-w", "-t", "120", "-o", opts, "start"], env=self.env, timeout=150)

    def stop(self, mode="fast"):
        if self.started:
            self.ws.run([PGBIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop"],
                        timeout=90, check=False)
            self.started = False

    def log_tail(self, n=40):
        p = self.ws.dir / ("%s.log" % self.name)
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:]) if p.exists() else ""

    def psql(self, sql, db="fapiao"):
        r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.port), "-U", "fapiao", "-d", db, "-1", "-f", "-"],
                           input=sql.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        assert r.returncode == 0, "psql failed: %s\n%s" % (r.stderr.decode(errors="replace"), sql[:400])
        return r.stdout.decode()

    def rows(self, select):
        """The rows of a SELECT as dicts (through json_agg)."""
        out = self.psql("SELECT coalesce(json_agg(q), '[]') FROM (%s) q" % select).strip()
        return json.loads(out)

    def pgbackrest(self, *args, timeout=300, check=True):
        r = self.ws.run([PGBACKREST, "--config=%s" % self.conf, "--stanza=%s" % STANZA]
                        + list(args), timeout=timeout, check=check)
        # an option of the shipped file that this pgBackRest does not know
        # is only a warning to it: a failure here
        err = r.stderr.decode(errors="replace")
        assert "configuration file contains" not in err, err
        return r


# ---- the audit chain, checked by SQL ------------------------------------

_V1_FIELDS = ("actor", "action", "target", "request_id", "client_ip", "outcome")


def _record_hash(r, prev):
    seller = str(r["seller_id"]) if r["seller_id"] and r["seller_id"] > 0 else None
    fields = [r[f] for f in _V1_FIELDS]
    if seller is not None or r["client_request_id"] is not None:
        tag, fields = b"FPAUDRv2", fields + [seller, r["client_request_id"]]
    else:
        tag = b"FPAUDRv1"
    h = hashlib.sha256(tag + struct.pack(">qq", r["id"], r["ts"]))
    for v in fields:
        if v is None:
            h.update(b"\xff\xff\xff\xff")
        else:
            b = v.encode()
            h.update(struct.pack(">I", len(b)) + b)
    h.update(prev)
    return h.digest()


def audit_verify(cluster, pub_path):
    """The checks of `fapiao audit verify`, by SQL: consecutive ids from 1,
    each record's prev_hash its predecessor's hash and its hash recomputed,
    audit_head on the last record, every checkpoint over a record's hash and
    signed by the audit key (Ed25519, audit.pub).  Returns (records,
    checkpoints); raises AssertionError naming the first fault."""
    recs = cluster.rows("SELECT id, ts, actor, action, target, request_id, client_ip, outcome,"
                        " seller_id, client_request_id, encode(prev_hash, 'hex') AS prev,"
                        " encode(hash, 'hex') AS hash FROM audit ORDER BY id")
    prev = bytes(32)
    hashes = {}
    for i, r in enumerate(recs, 1):
        assert r["id"] == i, "audit: id %d where %d was expected (a gap)" % (r["id"], i)
        assert bytes.fromhex(r["prev"]) == prev, "audit: record %d does not link" % i
        h = _record_hash(r, prev)
        assert bytes.fromhex(r["hash"]) == h, "audit: record %d's hash differs" % i
        hashes[i] = prev = h
    head = cluster.rows("SELECT last_id, encode(last_hash, 'hex') AS h FROM audit_head")[0]
    assert head["last_id"] == len(recs) and bytes.fromhex(head["h"]) == prev, \
        "audit: audit_head is not on the last record"
    cps = cluster.rows("SELECT id, upto_id, encode(upto_hash, 'hex') AS uh, ts,"
                       " encode(signature, 'hex') AS sig FROM audit_checkpoints ORDER BY id")
    if cps:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        pub = Ed25519PublicKey.from_public_bytes(read_pub(pub_path))
        for c in cps:
            uh = bytes.fromhex(c["uh"])
            assert hashes.get(c["upto_id"]) == uh, "audit: checkpoint %d not over the chain" % c["id"]
            msg = b"FPAUDCv1" + struct.pack(">qq", c["id"], c["upto_id"]) + uh + \
                struct.pack(">q", c["ts"])
            pub.verify(bytes.fromhex(c["sig"]), msg)  # raises InvalidSignature
    return len(recs), len(cps)


def read_pub(path):
    """The 32-byte Ed25519 public key of an audit.pub file (hex)."""
    text = Path(path).read_text()
    for line in text.splitlines():
        line = line.strip()
        if len(line) == 64 and all(c in "0123456789abcdefABCDEF" for c in line):
            return bytes.fromhex(line)
    raise AssertionError("no public key in %s" % path)


def wait_for(pred, what, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)
