"""Issue 13 item 8: an insider with the data directory and the audit log.

Through the real binary (docs/audit.md "What an insider can and cannot do"):
- a deleted key pair is not made anew by the next command once the log holds
  a signed checkpoint (before the fix any CLI command silently made a new
  pair, and a rewritten log verified against it);
- a log rewritten and re-signed with a key of the insider's own verifies
  against the data directory's audit.pub, but not against a copy of the
  public key kept elsewhere (`audit verify --pubkey`);
- a log rewritten and re-signed with the real key (the insider has it) is
  caught by the checkpoints shipped before the rewrite (`--checkpoints`);
- serve --checkpoint-sink ships every checkpoint (a directory, or a command);
- the signing key can live outside the data directory (--audit-key), under
  the key-file rule (0600, or 0640 when root owns it)."""
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess

import pytest

from conftest import BIN, SLOW, Server

FIELDS = ("actor", "action", "target", "request_id", "client_ip", "outcome",
          "seller_id", "client_request_id")


def fapiao(*args, env=None, timeout=60):
    e = {"LANG": "C", "PATH": "/usr/bin:/bin"}
    e.update(env or {})
    r = subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout * SLOW, env=e)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def verify(data_dir, *extra):
    return fapiao("audit", "verify", "--data-dir", data_dir, "--json", *extra)


def issue_some(srv, n, tag):
    for i in range(n):
        r = srv.issue("%s-%d" % (tag, i))
        assert r.status == 201, r


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    """A data dir with a few invoices issued and the server stopped (the
    stop signs a checkpoint)."""
    srv = Server(tmp_path_factory.mktemp("insider"))
    srv.start()
    issue_some(srv, 5, "insider")
    assert srv.stop() == 0
    yield srv
    assert not srv.close()


def copy_of(srv, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(srv.data_dir, dst)
    return dst


def record_hash(row, prev):
    """The record hash of docs/audit.md (chain.c fp_audit_hash), redone the
    way an insider would."""
    # version 2 (migration 7) when a seller or a client request id is set:
    # those two fields are hashed too
    v2 = row["seller_id"] is not None or row["client_request_id"] is not None
    h = hashlib.sha256()
    h.update((b"FPAUDRv2" if v2 else b"FPAUDRv1") + struct.pack(">qq", row["id"], row["ts"]))
    for f in FIELDS if v2 else FIELDS[:6]:
        v = row[f]
        if isinstance(v, int):
            v = str(v)
        if v is None:
            h.update(b"\xff\xff\xff\xff")
        else:
            b = v.encode("utf-8")
            h.update(struct.pack(">I", len(b)) + b)
    h.update(prev)
    return h.digest()


def rewrite_log(db, new_target="REWRITTEN"):
    """Changes record 2's target, re-hashes the chain from there and drops
    the checkpoints, so that the next store open signs the rewritten head."""
    con = sqlite3.connect(str(db))
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute(
        "SELECT id, ts, %s, prev_hash, hash FROM audit ORDER BY id" % ", ".join(FIELDS))]
    assert len(rows) >= 3
    rows[1]["target"] = new_target
    prev = bytes(rows[0]["hash"])
    for r in rows[1:]:
        h = record_hash(r, prev)
        con.execute("UPDATE audit SET target=?, prev_hash=?, hash=? WHERE id=?",
                    (r["target"], prev, h, r["id"]))
        prev = h
    con.execute("DELETE FROM audit_checkpoints")
    con.commit()
    con.close()


def test_record_hash_matches_the_binary(issued):
    """The test's re-hashing is the binary's (else the rewrites below prove
    nothing)."""
    con = sqlite3.connect(str(issued.db_path))
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute(
        "SELECT id, ts, %s, prev_hash, hash FROM audit ORDER BY id" % ", ".join(FIELDS))]
    con.close()
    for r in rows:
        assert record_hash(r, bytes(r["prev_hash"])) == bytes(r["hash"]), r["id"]


def test_deleted_key_pair_is_not_made_anew(issued, tmp_path):
    d = copy_of(issued, tmp_path, "nokey")
    (d / "audit.key").unlink()
    (d / "audit.pub").unlink()
    # a read-only command needs no key and makes none
    rc, out, err = fapiao("keys", "list", "--data-dir", d)
    assert rc == 0, err
    assert not (d / "audit.key").exists() and not (d / "audit.pub").exists()
    # a command that writes (and so would sign) refuses
    rc, out, err = fapiao("keys", "create", "--data-dir", d, "--roles", "auditor")
    assert rc != 0, out
    assert "audit key" in err and "missing" in err and "restore it" in err, err
    assert not (d / "audit.key").exists() and not (d / "audit.pub").exists()
    # serve refuses too, and still makes nothing
    s = subprocess.run([BIN, "serve", "--data-dir", str(d), "--listen", "127.0.0.1:0"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW,
                       env={"LANG": "C", "PATH": "/usr/bin:/bin"})
    assert s.returncode != 0
    assert b"restore it" in s.stderr, s.stderr
    assert not (d / "audit.key").exists()


def test_key_deleted_but_pub_kept_is_not_made_anew(issued, tmp_path):
    d = copy_of(issued, tmp_path, "pubonly")
    (d / "audit.key").unlink()
    rc, _, err = fapiao("keys", "create", "--data-dir", d, "--roles", "auditor")
    assert rc != 0 and "restore it" in err, err
    assert not (d / "audit.key").exists()


def test_resigned_with_own_key_fails_against_kept_pubkey(issued, tmp_path):
    kept = tmp_path / "kept.pub"
    shutil.copy(issued.data_dir / "audit.pub", kept)
    d = copy_of(issued, tmp_path, "ownkey")
    rewrite_log(d / "fapiao.db")
    # the insider brings a key pair of their own (made by a scratch install)
    scratch = Server(tmp_path / "scratch")
    assert not scratch.close()
    for f in ("audit.key", "audit.pub"):
        shutil.copy(scratch.data_dir / f, d / f)
        os.chmod(d / f, 0o600)
    rc, out, err = fapiao("keys", "create", "--data-dir", d, "--roles", "auditor")  # a write signs the head
    assert rc == 0, err
    rc, out, err = verify(d)
    assert rc == 0, out + err  # the data directory's own audit.pub is fooled
    rc, out, err = verify(d, "--pubkey", kept)
    assert rc == 1, out + err
    assert json.loads(out)["finding"]["kind"] == "checkpoint_forged"


def test_resigned_with_the_real_key_fails_against_shipped_checkpoints(issued, tmp_path):
    kept = tmp_path / "kept.pub"
    shutil.copy(issued.data_dir / "audit.pub", kept)
    sink = tmp_path / "sink"
    sink.mkdir()
    d = copy_of(issued, tmp_path, "realkey")
    rc, out, err = fapiao("audit", "export", "--data-dir", d, "--checkpoint-sink", sink)
    assert rc == 0, err
    lines = (sink / "checkpoints.jsonl").read_text().splitlines()
    assert lines and all(json.loads(x)["type"] == "checkpoint" for x in lines)
    # shipping again adds nothing
    rc, out, err = fapiao("audit", "export", "--data-dir", d, "--checkpoint-sink", sink)
    assert rc == 0 and "shipped 0 " in out, out
    assert (sink / "checkpoints.jsonl").read_text().splitlines() == lines
    rc, out, err = verify(d, "--pubkey", kept, "--checkpoints", sink)
    assert rc == 0, out + err
    rewrite_log(d / "fapiao.db")
    rc, out, err = fapiao("keys", "create", "--data-dir", d, "--roles", "auditor")  # signed with audit.key
    assert rc == 0, err
    rc, out, err = verify(d, "--pubkey", kept)
    assert rc == 0, out + err  # the limit of a signature: the key signs anything
    rc, out, err = verify(d, "--pubkey", kept, "--checkpoints", sink)
    assert rc == 1, out + err
    f = json.loads(out)["finding"]
    assert f["kind"] == "checkpoint_mismatch", f
    assert "rewritten after it was shipped" in f["message"]


def test_erased_log_fails_against_shipped_checkpoints(issued, tmp_path):
    sink = tmp_path / "sink"
    sink.mkdir()
    d = copy_of(issued, tmp_path, "erased")
    assert fapiao("audit", "export", "--data-dir", d, "--checkpoint-sink", sink)[0] == 0
    con = sqlite3.connect(str(d / "fapiao.db"))
    con.execute("DELETE FROM audit")
    con.execute("DELETE FROM audit_checkpoints")
    con.commit()
    con.close()
    rc, out, err = verify(d, "--pubkey", d / "audit.pub", "--checkpoints", sink)
    assert rc == 1, out + err
    assert json.loads(out)["finding"]["kind"] == "truncated"


def test_serve_ships_checkpoints_to_a_dir_and_a_command(make_server, tmp_path):
    sink = tmp_path / "sink"
    sink.mkdir()
    hooked = tmp_path / "hooked.jsonl"
    srv = make_server(serve_args=["--checkpoint-sink", str(sink)])
    issue_some(srv, 3, "ship")
    assert srv.stop() == 0
    last = srv.db_query("SELECT max(id) FROM audit_checkpoints")[0][0]
    lines = [json.loads(x) for x in (sink / "checkpoints.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == list(range(1, last + 1))
    rc, out, err = verify(srv.data_dir, "--checkpoints", sink / "checkpoints.jsonl")
    assert rc == 0, out + err
    # a command receives the same lines on stdin
    srv.serve_args = ["--checkpoint-sink", "cmd:cat >> %s" % hooked]
    srv.start()
    issue_some(srv, 2, "hook")
    assert srv.stop() == 0
    got = [json.loads(x) for x in hooked.read_text().splitlines()]
    last = srv.db_query("SELECT max(id) FROM audit_checkpoints")[0][0]
    assert [x["id"] for x in got] == list(range(1, last + 1))


def test_checkpoint_hook_failures(issued, tmp_path):
    d = copy_of(issued, tmp_path, "hooks")
    got = tmp_path / "got.jsonl"
    rc, out, err = fapiao("audit", "export", "--data-dir", d, "--checkpoint-sink", "cmd:exit 3")
    assert rc == 3 and "failed (exit status 3)" in err, err
    assert not (d / "fapiao.db.cp-shipped").exists()  # nothing acknowledged
    rc, out, err = fapiao("audit", "export", "--data-dir", d, "--checkpoint-sink",
                          "cmd:cat > %s" % got)
    assert rc == 0, err
    n = len(got.read_text().splitlines())
    assert n >= 1 and ("shipped %d " % n) in out
    # acknowledged: the next run sends nothing (the command is not even run)
    rc, out, err = fapiao("audit", "export", "--data-dir", d, "--checkpoint-sink",
                          "cmd:exit 3")
    assert rc == 0 and "shipped 0 " in out, out + err


def test_sink_file_made_append_only(make_server, tmp_path):
    """The documented setup: checkpoints.jsonl under chattr +a.  The server's
    O_APPEND writes go through; rewriting the file does not (even as root)."""
    sink = tmp_path / "worm"
    sink.mkdir()
    f = sink / "checkpoints.jsonl"
    f.touch()
    if subprocess.run(["chattr", "+a", str(f)], capture_output=True).returncode != 0:
        pytest.skip("chattr +a not supported here")
    try:
        srv = make_server(serve_args=["--checkpoint-sink", str(sink)])
        issue_some(srv, 2, "worm")
        assert srv.stop() == 0
        ids = [json.loads(x)["id"] for x in f.read_text().splitlines()]
        last = srv.db_query("SELECT max(id) FROM audit_checkpoints")[0][0]
        assert ids == list(range(1, last + 1))
        with pytest.raises(PermissionError):
            open(f, "w").close()
        with pytest.raises(PermissionError):
            os.truncate(f, 0)
        assert [json.loads(x)["id"] for x in f.read_text().splitlines()] == ids
    finally:
        subprocess.run(["chattr", "-a", str(f)], capture_output=True)


def test_serve_refuses_an_unwritable_sink(make_server, tmp_path):
    srv = make_server(start=False)
    srv.serve_args = ["--checkpoint-sink", str(tmp_path / "no-such-dir")]
    with pytest.raises(AssertionError, match="cannot ship audit checkpoints"):
        srv.start()


def test_audit_key_outside_the_data_dir(make_server, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    key = keys / "audit.key"
    srv = make_server(start=False, init_args=["--audit-key", str(key)])
    d = srv.data_dir
    assert key.exists() and (keys / "audit.pub").exists()
    assert not (d / "audit.key").exists() and not (d / "audit.pub").exists()
    assert os.stat(key).st_mode & 0o777 == 0o600
    srv.serve_args = ["--audit-key", str(key)]
    srv.start()
    issue_some(srv, 2, "ext")
    assert srv.stop() == 0
    assert not (d / "audit.key").exists()
    rc, out, err = verify(d, "--pubkey", keys / "audit.pub")
    assert rc == 0, out + err
    assert json.loads(out)["checkpoints"] >= 1
    # FAPIAO_AUDIT_KEY does the same for every command
    rc, out, err = fapiao("keys", "list", "--data-dir", d, env={"FAPIAO_AUDIT_KEY": str(key)})
    assert rc == 0, err
    # forgetting where the key is: refused, nothing made in the data dir
    srv.serve_args = []
    with pytest.raises(AssertionError, match="restore it"):
        srv.start()
    assert not (d / "audit.key").exists()
    # the key-file rule on the configured path (root's 0640 allowed)
    srv.serve_args = ["--audit-key", str(key)]
    os.chmod(key, 0o644)
    with pytest.raises(AssertionError, match="audit signing key"):
        srv.start()
    if os.geteuid() == 0:
        os.chmod(key, 0o640)
        srv.start()
        assert srv.stop() == 0
    os.chmod(key, 0o600)
