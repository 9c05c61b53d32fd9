"""Read-only commands are read-only (issue 14): `fapiao ranges list`,
`keys list`, `outbox list` and `audit verify` change no byte of the
database, its WAL and its -shm (nor create them).  The server is stopped
first, since a serving process writes its own probes; the store is one that
served: invoices issued, jobs queued, audit records beyond the last signed
checkpoint (a command that opened the store for writing would sign them on
close).  A database that would need migrating is refused by the read-only
commands, not migrated."""
import hashlib
import sqlite3
import subprocess

from conftest import BIN

FILES = ("fapiao.db", "fapiao.db-wal", "fapiao.db-shm")
COMMANDS = (
    ("ranges", "list"),
    ("keys", "list"),
    ("outbox", "list"),
    ("audit", "verify"),
)


def digests(data_dir):
    out = {}
    for name in FILES:
        p = data_dir / name
        out[name] = hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None
    return out


def run(*args):
    r = subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def test_read_only_commands_change_no_byte(make_server):
    srv = make_server()
    for i in range(5):
        r = srv.issue("ro-%d" % i)
        assert r.status == 201, r
    srv.stop()
    before = digests(srv.data_dir)
    assert before["fapiao.db"] is not None
    for cmd in COMMANDS:
        rc, out, err = run(*cmd, "--data-dir", str(srv.data_dir))
        assert rc == 0, (cmd, rc, out, err)
        assert digests(srv.data_dir) == before, "%s changed the store's files" % " ".join(cmd)
    # the listings saw the store
    rc, out, _ = run("outbox", "list", "--data-dir", str(srv.data_dir))
    assert out.count("render") >= 5, out


def test_read_only_commands_refuse_to_migrate(make_server):
    srv = make_server(start=False)
    db = srv.data_dir / "fapiao.db"
    con = sqlite3.connect(str(db))
    version = con.execute("PRAGMA user_version").fetchone()[0]
    con.execute("PRAGMA user_version=%d" % (version - 1))
    con.commit()
    con.close()
    before = digests(srv.data_dir)
    for cmd in (("ranges", "list"), ("keys", "list"), ("outbox", "list")):
        rc, out, err = run(*cmd, "--data-dir", str(srv.data_dir))
        assert rc != 0, (cmd, out)
        assert "migrated" in err and "升级" in err, (cmd, err)
        assert digests(srv.data_dir) == before, "%s changed the store's files" % " ".join(cmd)


def test_read_only_commands_after_a_crash_change_no_byte(make_server):
    """Killed while serving: the WAL and -shm stay, and the audit records
    since the last checkpoint are unsigned (a command that opened the store
    for writing would sign them and checkpoint the WAL)."""
    srv = make_server()
    for i in range(5):
        r = srv.issue("crash-%d" % i)
        assert r.status == 201, r
    srv.kill9()
    before = digests(srv.data_dir)
    assert before["fapiao.db-wal"] is not None
    for cmd in COMMANDS:
        rc, out, err = run(*cmd, "--data-dir", str(srv.data_dir))
        assert rc == 0, (cmd, rc, out, err)
        assert digests(srv.data_dir) == before, "%s changed the store's files" % " ".join(cmd)
