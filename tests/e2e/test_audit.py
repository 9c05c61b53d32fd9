"""The tamper-evident audit log through the real binary (docs/audit.md).

Invoices are issued through a running server; after it stops (a clean stop
signs the chain's tail) `fapiao audit verify` must find the log intact.  Each
tamper case works on its own copy of the data directory and changes the
SQLite file the way someone with write access to it would (the sqlite3
module: one byte of a record, one byte of a hash, a deleted row, two rows'
contents swapped, the tail cut off below a checkpoint); verify must exit 1
and name the first bad record.  A bundle exported from the log verifies on
its own, and a changed bundle does not.  After a restart the chain goes on
from the last record."""
import json
import shutil
import sqlite3
import subprocess
import time

import pytest

from conftest import BIN, SANITIZED, SLOW, Server

N_FIRST = 12  # invoices issued before the first stop


def fapiao(*args, timeout=60):
    r = subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout * SLOW,
                       env={"LANG": "C", "PATH": "/usr/bin:/bin"})
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def verify(data_dir, *extra):
    return fapiao("audit", "verify", "--data-dir", data_dir, *extra)


def issue_ok(srv, key):
    r = srv.issue(key)
    assert r.status == 201, r
    return r.json()["number"]


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    """A data dir with N_FIRST invoices issued and the server stopped."""
    srv = Server(tmp_path_factory.mktemp("audit-e2e"))
    srv.start()
    numbers = [issue_ok(srv, "audit-e2e-%d" % i) for i in range(N_FIRST)]
    assert srv.stop() == 0
    yield srv, numbers
    problems = srv.close()
    assert not problems, problems


def copy_of(issued, tmp_path, name):
    srv, _ = issued
    dst = tmp_path / name
    shutil.copytree(srv.data_dir, dst)
    return dst


def db(path):
    return sqlite3.connect(str(path / "fapiao.db"))


def last_id(data_dir):
    with db(data_dir) as c:
        return c.execute("SELECT max(id) FROM audit").fetchone()[0]


def test_issued_invoices_are_chained_and_verify(issued):
    srv, numbers = issued
    rows = srv.db_query("SELECT id, action, target, outcome, length(prev_hash), length(hash) "
                        "FROM audit WHERE action='invoice.issue' ORDER BY id")
    assert [r[2] for r in rows] == numbers
    assert all(r[3] == "created" and r[4] == 32 and r[5] == 32 for r in rows)
    ids = [r[0] for r in srv.db_query("SELECT id FROM audit ORDER BY id")]
    assert ids == list(range(1, len(ids) + 1))
    rc, out, err = verify(srv.data_dir)
    assert rc == 0, (out, err)
    assert "audit log intact" in out
    rc, out, err = verify(srv.data_dir, "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["intact"] and rep["finding"] is None
    assert rep["records"] == len(ids) and rep["last_id"] == ids[-1]
    # the clean stop signed the tail
    assert rep["last_checkpoint"]["upto_id"] == ids[-1]
    assert rep["unsigned_tail"] == 0
    with open(srv.data_dir / "audit.pub") as f:
        assert rep["pubkey"] == f.read().strip()


def test_incremental_verification_from_a_checkpoint(issued):
    srv, _ = issued
    rc, out, err = verify(srv.data_dir, "--from-checkpoint", "1", "--json")
    assert rc == 0, (out, err)
    rep = json.loads(out)
    assert rep["intact"] and rep["anchor_checkpoint"] == 1


def flip_blob(con, table, col, row_id, byte):
    (b,) = con.execute("SELECT %s FROM %s WHERE id=?" % (col, table), (row_id,)).fetchone()
    b = bytearray(b)
    b[byte] ^= 0x01
    con.execute("UPDATE %s SET %s=? WHERE id=?" % (table, col), (bytes(b), row_id))


def swap_rows(con, a, b):
    cols = "ts, actor, action, target, request_id, client_ip, outcome, prev_hash, hash"
    ra = con.execute("SELECT %s FROM audit WHERE id=?" % cols, (a,)).fetchone()
    rb = con.execute("SELECT %s FROM audit WHERE id=?" % cols, (b,)).fetchone()
    sets = ", ".join("%s=?" % c.strip() for c in cols.split(","))
    con.execute("UPDATE audit SET %s WHERE id=?" % sets, rb + (a,))
    con.execute("UPDATE audit SET %s WHERE id=?" % sets, ra + (b,))


def cut_tail(con, n):
    (last,) = con.execute("SELECT max(id) FROM audit").fetchone()
    con.execute("DELETE FROM audit WHERE id > ?", (last - n,))


# (name, change(con), expected kind, substring naming the first bad record)
TAMPER = [
    ("one byte of a record",
     lambda c: c.execute("UPDATE audit SET outcome='creaTed' WHERE id=5"),
     "altered", "hash mismatch at record 5 (altered)"),
    ("one byte of the actor",
     lambda c: c.execute("UPDATE audit SET actor=substr(actor, 1, length(actor) - 1) || 'X' "
                         "WHERE id=3"),
     "altered", "hash mismatch at record 3 (altered)"),
    ("one byte of a stored hash",
     lambda c: flip_blob(c, "audit", "hash", 7, 0),
     "altered", "hash mismatch at record 7"),
    ("one byte of a prev_hash",
     lambda c: flip_blob(c, "audit", "prev_hash", 8, 31),
     "altered", "record 8"),
    ("one row deleted",
     lambda c: c.execute("DELETE FROM audit WHERE id=6"),
     "missing", "record 6 missing (gap 5→7)"),
    ("two rows swapped",
     lambda c: swap_rows(c, 4, 9),
     "reordered", "record 4 is out of place: it holds record 9 (reordered)"),
    ("the tail cut off below a checkpoint",
     lambda c: cut_tail(c, 3),
     "truncated", "but the log ends at"),
    ("a checkpoint's signature changed",
     lambda c: flip_blob(c, "audit_checkpoints", "signature", 1, 3),
     "checkpoint_forged", "checkpoint 1: signature invalid"),
]


@pytest.mark.parametrize("name,change,kind,says", TAMPER, ids=[t[0] for t in TAMPER])
def test_tampering_is_detected_and_named(issued, tmp_path, name, change, kind, says):
    d = copy_of(issued, tmp_path, "tampered")
    con = db(d)
    with con:
        change(con)
    con.close()
    rc, out, err = verify(d)
    assert rc == 1, (name, rc, out, err)
    assert "audit log TAMPERED" in out and says in out, out
    rc, out, err = verify(d, "--json")
    assert rc == 1
    rep = json.loads(out)
    assert not rep["intact"] and rep["finding"]["kind"] == kind, rep
    assert says in rep["finding"]["message"]


def test_truncation_names_the_checkpoint_and_the_end(issued, tmp_path):
    d = copy_of(issued, tmp_path, "truncated")
    last = last_id(d)
    con = db(d)
    with con:
        cut_tail(con, 3)
    con.close()
    rc, out, _ = verify(d, "--json")
    assert rc == 1
    f = json.loads(out)["finding"]
    # the first checkpoint beyond the new end: the one the stop signed at
    # `last`, or one the health thread signed earlier inside the cut-off
    # tail (it signs a first checkpoint as soon as records exist, so a slow
    # run can have one at record 10 or 11)
    con = sqlite3.connect(str(d / "fapiao.db"))
    try:
        ((cp, upto),) = con.execute("SELECT id, upto_id FROM audit_checkpoints WHERE upto_id > ? "
                                    "ORDER BY id LIMIT 1", (last - 3,)).fetchall()
        assert con.execute("SELECT count(*) FROM audit_checkpoints WHERE upto_id=?",
                           (last,)).fetchone()[0] == 1
    finally:
        con.close()
    assert f["checkpoint"] == cp and f["record"] == last - 2, (f, cp, upto)
    assert ("checkpoint %d covers records up to %d but the log ends at %d (truncated)"
            % (cp, upto, last - 3)) in f["message"]


def test_chinese_finding(issued, tmp_path):
    d = copy_of(issued, tmp_path, "zh")
    con = db(d)
    with con:
        con.execute("DELETE FROM audit WHERE id=6")
    con.close()
    r = subprocess.run([BIN, "audit", "verify", "--data-dir", str(d)], stdout=subprocess.PIPE,
                       env={"LANG": "zh_CN.UTF-8", "PATH": "/usr/bin:/bin"}, timeout=60 * SLOW)
    assert r.returncode == 1
    assert "审计日志被篡改" in r.stdout.decode() and "第 6 条记录缺失" in r.stdout.decode()


def test_bundle_export_and_verify(issued, tmp_path):
    srv, _ = issued
    bundle = tmp_path / "audit.jsonl"
    rc, out, err = fapiao("audit", "export", "--data-dir", srv.data_dir, "--out", bundle)
    assert rc == 0, err
    lines = [json.loads(l) for l in bundle.read_text().splitlines()]
    assert lines[0]["type"] == "fapiao-audit-bundle" and lines[0]["version"] == 1
    assert lines[0]["pubkey"] == (srv.data_dir / "audit.pub").read_text().strip()
    assert lines[-1]["type"] == "end"
    recs = [l for l in lines if l["type"] == "record"]
    assert len(recs) == lines[-1]["records"] == last_id(srv.data_dir)
    assert all(len(r["hash"]) == 64 and len(r["prev_hash"]) == 64 for r in recs)
    # against the trusted key of the data dir, and on its own
    rc, out, err = fapiao("audit", "verify", "--bundle", bundle, "--data-dir", srv.data_dir)
    assert rc == 0 and "audit log intact" in out, (out, err)
    rc, out, err = fapiao("audit", "verify", "--bundle", bundle, "--pubkey",
                          srv.data_dir / "audit.pub", "--json")
    assert rc == 0 and json.loads(out)["intact"], out
    rc, out, err = fapiao("audit", "verify", "--bundle", bundle)
    assert rc == 0 and "compare it with an audit.pub you trust" in out

    # one changed record in the bundle
    changed = tmp_path / "changed.jsonl"
    out_lines = []
    for l in bundle.read_text().splitlines():
        o = json.loads(l)
        if o["type"] == "record" and o["id"] == 4:
            o["client_ip"] = "10.6.6.6"
        out_lines.append(json.dumps(o, ensure_ascii=False))
    changed.write_text("\n".join(out_lines) + "\n")
    rc, out, err = fapiao("audit", "verify", "--bundle", changed, "--data-dir", srv.data_dir)
    assert rc == 1 and "hash mismatch at record 4 (altered)" in out, out

    # a part of the log, widened to checkpoints
    part = tmp_path / "part.jsonl"
    rc, out, err = fapiao("audit", "export", "--data-dir", srv.data_dir, "--out", part,
                          "--from", 3, "--to", 5)
    assert rc == 0, err
    rc, out, err = fapiao("audit", "verify", "--bundle", part, "--data-dir", srv.data_dir)
    assert rc == 0, out


def test_list_newest_first(issued):
    srv, numbers = issued
    rc, out, err = fapiao("audit", "list", "--data-dir", srv.data_dir, "--limit", 3, "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert len(rows) == 3 and rows[0]["id"] == last_id(srv.data_dir)
    rc, out, err = fapiao("audit", "list", "--data-dir", srv.data_dir)
    assert rc == 0 and numbers[-1] in out


def test_usage_errors_exit_2(tmp_path):
    assert fapiao("audit")[0] == 2
    assert fapiao("audit", "bogus")[0] == 2
    assert fapiao("audit", "verify")[0] == 2
    assert fapiao("audit", "verify", "--data-dir", tmp_path)[0] == 2  # not a data dir
    assert fapiao("audit", "export", "--data-dir", tmp_path)[0] == 2  # no --out


def test_chain_continues_after_restart(make_server):
    srv = make_server()
    for i in range(3):
        issue_ok(srv, "audit-restart-a-%d" % i)
    # verify while the server runs: a consistent snapshot, the tail unsigned
    rc, out, err = verify(srv.data_dir, "--json")
    assert rc == 0, (out, err)
    assert json.loads(out)["records"] >= 3
    assert srv.stop() == 0
    before = srv.db_query("SELECT max(id), hash FROM audit GROUP BY id ORDER BY id DESC "
                          "LIMIT 1")[0]
    srv.start()
    numbers = [issue_ok(srv, "audit-restart-b-%d" % i) for i in range(3)]
    assert srv.stop() == 0
    first_new = srv.db_query("SELECT id, prev_hash FROM audit WHERE target=?", (numbers[0],))[0]
    assert first_new[0] == before[0] + 1 and first_new[1] == before[1]
    rc, out, err = verify(srv.data_dir, "--json")
    assert rc == 0, (out, err)
    rep = json.loads(out)
    assert rep["intact"] and rep["unsigned_tail"] == 0
    assert rep["records"] == srv.db_query("SELECT count(*) FROM audit")[0][0]
    # and it keeps serving
    srv.start()
    issue_ok(srv, "audit-restart-c")


def test_prune_respects_retention_and_keeps_a_verifiable_rest(issued, tmp_path):
    d = copy_of(issued, tmp_path, "prune")
    (cps_before,) = sqlite3.connect(str(d / "fapiao.db")).execute(
        "SELECT max(upto_id) FROM audit_checkpoints").fetchone()
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    rc, out, err = fapiao("audit", "prune", "--data-dir", d, "--before", today)
    assert rc == 2 and "kept 6 years" in err, (rc, out, err)
    rc, out, err = fapiao("audit", "prune", "--data-dir", d, "--before", "2019-02-30")
    assert rc == 2, (out, err)
    rc, out, err = fapiao("audit", "prune", "--data-dir", d, "--before", "2019-01-01")
    assert rc == 0 and "nothing to prune" in out, (out, err)
    if SANITIZED:
        pytest.skip("faketime works by LD_PRELOAD, which an ASan build refuses "
                    "(test_audit.c prunes under ASan)")
    if not shutil.which("faketime"):
        pytest.skip("faketime is not installed (Debian package faketime)")
    # seven years on, today's records are past the 6-year retention
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600 + 86400))
    r = subprocess.run(["faketime", "-f", "+2557d", BIN, "audit", "prune", "--data-dir", str(d),
                        "--before", tomorrow], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env={"LANG": "C", "PATH": "/usr/bin:/bin"}, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr
    assert ("deleted audit records up to %d" % cps_before) in r.stdout.decode()
    with db(d) as c:
        assert c.execute("SELECT min(id) FROM audit").fetchone()[0] == cps_before + 1
        assert c.execute("SELECT target FROM audit WHERE action='audit.prune'").fetchone()[0] \
            == "upto:%d" % cps_before
    rc, out, err = verify(d, "--json")
    assert rc == 0, (out, err)
    rep = json.loads(out)
    assert rep["intact"] and rep["first_id"] == cps_before + 1 and rep["anchor_checkpoint"]
