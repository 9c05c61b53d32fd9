"""The CLI on PostgreSQL and `fapiao migrate-store` (docs/ha.md, "Moving from
one node on SQLite"), against a throw-away PostgreSQL 15 that
tests/pg/pg-harness.sh starts for this module (skipped only when the
PostgreSQL binaries are absent).  Each test has a database of its own.

- the store commands take --database: sellers add/list, ranges import/list,
  keys create/list, audit verify and check work on PostgreSQL; backup create
  refuses it, naming pgBackRest;
- a data directory with invoices, a red form and a credential, moved with
  migrate-store (refused while its server runs, and into a non-empty
  target), then served from PostgreSQL: the old invoices and their PDF, a
  token from the old credential, numbers going on without reuse, and the
  audit chain verifying on PostgreSQL;
- the tables added since (issue 20's uploads, credit line and red forms'
  upstream fields, alert silences, console users) moved with their counts
  checked, and a source with a table migrate-store does not name refused
  before anything is copied."""
import itertools
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, SLOW, dumps, example_doc

HARNESS = Path(__file__).resolve().parents[1] / "pg" / "pg-harness.sh"
sys.path.insert(0, str(HARNESS.parents[1] / "upstream-sim"))
from simctl import write_conf  # noqa: E402
_dbs = itertools.count(1)


@pytest.fixture(scope="module")
def pg_url():
    """The harness's URL while its command (a shell waiting on stdin) runs;
    closing stdin stops and removes the cluster."""
    p = subprocess.Popen([str(HARNESS), "run", "--", "/bin/sh", "-c",
                          'echo "URL $FAPIAO_PG_URL"; read x'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = None
    for _ in range(200):  # the harness prints a few lines before the URL
        line = p.stdout.readline().decode()
        if not line:
            break
        if line.startswith("URL "):
            url = line[4:].strip()
            break
    if url is None:
        rc = p.wait(timeout=60)
        err = p.stderr.read().decode(errors="replace")
        if rc == 77:
            pytest.skip("PostgreSQL 15 binaries absent: " + err)
        raise AssertionError("pg-harness failed (%s): %s" % (rc, err))
    yield url
    p.stdin.close()
    p.wait(timeout=120)


def psql(url, sql):
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", url, "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode().strip()


def new_db(pg_url):
    name = "t%d_%d" % (os.getpid(), next(_dbs))
    psql(pg_url, "CREATE DATABASE %s" % name)
    return pg_url.rsplit("/", 1)[0] + "/" + name


def cli(*args, ok=True):
    r = subprocess.run([BIN] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120 * SLOW,
                       env=dict(os.environ, FAPIAO_CONFIG=os.devnull, LANG="C"))
    out, err = r.stdout.decode(), r.stderr.decode()
    if ok:
        assert r.returncode == 0, "fapiao %s: %d\n%s%s" % (" ".join(map(str, args)),
                                                          r.returncode, out, err)
    return r.returncode, out, err


def test_cli_on_postgresql(make_server, pg_url):
    url = new_db(pg_url)
    srv = make_server(start=False, demo=False)
    d = ["--data-dir", srv.data_dir, "--database", url]
    cli("sellers", "add", *d, "--name", "迁移测试销售方有限公司", "--uscc", "91310000MA1FL0000N")
    _, out, _ = cli("sellers", "list", *d)
    assert "91310000MA1FL0000N" in out
    cli("ranges", "import", *d, "--prefix", "26310", "--first", 1, "--last", 100,
        "--seller-id", 1)
    _, out, _ = cli("ranges", "list", *d)
    assert "remaining 100" in out, out
    _, out, _ = cli("keys", "create", *d, "--roles", "issuer", "--seller-id", 1,
                    "--client-id", "pg-cli")
    assert "client_secret: fps_" in out
    _, out, _ = cli("keys", "list", *d)
    assert "pg-cli" in out
    # all of it went to PostgreSQL, none to the data directory's SQLite file
    assert psql(url, "SELECT count(*) FROM sellers") == "1"
    assert psql(url, "SELECT count(*) FROM clients WHERE client_id = 'pg-cli'") == "1"
    _, out, _ = cli("sellers", "list", "--data-dir", srv.data_dir)
    assert "91310000MA1FL0000N" not in out
    # the same through FAPIAO_DATABASE, as serve reads it
    r = subprocess.run([BIN, "ranges", "list", "--data-dir", str(srv.data_dir)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW,
                       env=dict(os.environ, FAPIAO_CONFIG=os.devnull, FAPIAO_DATABASE=url))
    assert r.returncode == 0 and b"remaining 100" in r.stdout, r
    _, out, _ = cli("audit", "verify", *d)
    assert "intact" in out and "3 records" in out, out
    _, out, _ = cli("check", *d)
    assert "check passed" in out
    rc, _, err = cli("backup", "create", *d, "--to", srv.base_dir / "backups", ok=False)
    assert rc == 2 and "pgBackRest" in err and "docs/recovery.md" in err, err


def issue(srv, key):
    r = srv.issue(key)
    assert r.status == 201, r
    return r.json()


def wait_pdf(srv, number, timeout=60 * SLOW):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = srv.request("GET", "/v1/invoices/%s/pdf" % number)
        if r.status != 202:
            return r
        time.sleep(0.2)
    raise AssertionError("no PDF for %s within %ss" % (number, timeout))


def test_migrate_store(make_server, pg_url):
    srv = make_server()
    blues = [issue(srv, "mig-%d" % i) for i in range(3)]
    doc = example_doc()
    doc["invoice_type"] = "02"
    blue = srv.issue("mig-red-blue", body=dumps(doc))
    assert blue.status == 201, blue
    blue = blue.json()
    f = srv.post_json("/v1/invoices/%s/red-forms" % blue["number"], {"reason": "issue_error"})
    assert f.status == 201, f
    form = f.json()["form_id"]
    red = srv.request("POST", "/v1/red-forms/%s/invoice" % form,
                      headers={"Idempotency-Key": "mig-red-1"})
    assert red.status == 201, red
    red = red.json()
    old = {b["number"]: b for b in blues + [blue, red]}
    assert wait_pdf(srv, blues[0]["number"]).status == 200
    url = new_db(pg_url)

    # refused while the server holds the data directory
    rc, _, err = cli("migrate-store", "--from", srv.data_dir, "--to", url, ok=False)
    assert rc == 1 and "stop it first" in err, err
    assert psql(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'invoices'") == "0"
    srv.stop()

    _, out, _ = cli("migrate-store", "--from", srv.data_dir, "--to", url)
    assert "audit chain on the target: intact" in out, out
    assert "MISMATCH" not in out
    invoices = srv.db_query("SELECT count(*) FROM invoices")[0][0]
    assert "invoices" in out and psql(url, "SELECT count(*) FROM invoices") == str(invoices)
    assert psql(url, "SELECT count(*) FROM audit") == str(
        srv.db_query("SELECT count(*) FROM audit")[0][0])
    assert psql(url, "SELECT state FROM red_forms WHERE form_no = '%s'" % form) == "issued"
    # a second copy into the same database is refused, and changes nothing
    rc, _, err = cli("migrate-store", "--from", srv.data_dir, "--to", url, ok=False)
    assert rc == 1 and "not empty" in err, err
    assert psql(url, "SELECT count(*) FROM invoices") == str(invoices)

    # served from PostgreSQL: the old invoices, their PDF, the old credential
    srv.serve_args += ["--database", url]
    srv.start()
    for number, d in old.items():
        r = srv.request("GET", "/v1/invoices/%s" % number)
        assert r.status == 200, r
        assert r.json()["number"] == number and r.json()["color"] == d["color"]
    r = wait_pdf(srv, blues[1]["number"])
    assert r.status == 200 and r.body.startswith(b"%PDF-"), r
    # the same key replays the old invoice; a new one takes the next number
    again = srv.issue("mig-0")
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true", again
    assert again.json() == blues[0]
    new = issue(srv, "mig-after")
    assert new["number"] not in old
    assert int(new["number"][5:]) == max(int(n[5:]) for n in old) + 1, (new, sorted(old))
    srv.stop()
    _, out, _ = cli("audit", "verify", "--data-dir", srv.data_dir, "--database", url)
    assert "intact" in out, out


# Each table added since migrate-store was written, with a column that shows
# its rows came over as stored.
UPSTREAM_TABLES = {
    "uploads": "SELECT invoice_number || ':' || state || ':' || coalesce(sllsh, '') "
               "FROM uploads ORDER BY invoice_number",
    "upstream_credit": "SELECT month || ':' || limit_fen || ':' || used_fen "
                       "FROM upstream_credit ORDER BY month",
    "red_forms": "SELECT form_no || ':' || coalesce(up_uuid, '') || ':' || "
                 "coalesce(up_number, '') || ':' || coalesce(up_state, '') "
                 "FROM red_forms ORDER BY id",
    "alert_silences": "SELECT id || ':' || comment FROM alert_silences ORDER BY id",
    "console_users": "SELECT name || ':' || roles FROM console_users ORDER BY name",
}


def test_migrate_store_upstream_tables(make_server, pg_url, tmp_path):
    # [upstream] configured (the platform is not reached here): every
    # invoice gets its upload row in the issuing transaction
    conf = write_conf(tmp_path, 9, tmp_path / "none.pem")
    srv = make_server(["--config", str(conf)])
    numbers = [issue(srv, "up-mig-%d" % i)["number"] for i in range(3)]
    doc = example_doc()
    doc["invoice_type"] = "02"
    blue = srv.issue("up-mig-blue", body=dumps(doc))
    assert blue.status == 201, blue
    f = srv.post_json("/v1/invoices/%s/red-forms" % blue.json()["number"],
                      {"reason": "issue_error"})
    assert f.status == 201, f
    srv.stop()
    # what the upload worker, the credit download, the red keeper, the
    # alert silences and the console would have written (the platform is
    # not reached in this test), as rows in the source
    con = sqlite3.connect(str(srv.db_path))
    with con:
        con.execute("UPDATE uploads SET state = 'accepted', sllsh = 'SL0001' "
                    "WHERE invoice_number = ?", (numbers[0],))
        con.execute("UPDATE uploads SET state = 'rejected', reason = '校验不通过' "
                    "WHERE invoice_number = ?", (numbers[1],))
        con.execute("INSERT INTO upstream_credit VALUES(1, '202612', 90000000, 270000, 1)")
        con.execute("UPDATE red_forms SET up_uuid = 'U-1', up_number = 'HZ-1', up_state = '02'")
        con.execute("INSERT INTO alert_silences(matchers, comment, created_by, starts_at, "
                    "ends_at, created_at) VALUES('alertname=X', '迁移', 'ops', 1, 2, 1)")
        con.execute("INSERT INTO console_users(name, roles, pw_hash, created_at, updated_at) "
                    "VALUES('ops', 3, 'x', 1, 1)")
    source = {t: srv.db_query(q) for t, q in UPSTREAM_TABLES.items()}
    assert all(source.values()), source

    # a table this fapiao does not know: refused, nothing copied
    with con:
        con.execute("CREATE TABLE added_later(x INTEGER)")
    url = new_db(pg_url)
    rc, _, err = cli("migrate-store", "--from", srv.data_dir, "--to", url, ok=False)
    assert rc == 1 and "added_later" in err and "does not know" in err, err
    assert psql(url, "SELECT count(*) FROM invoices") == "0"
    with con:
        con.execute("DROP TABLE added_later")
    con.close()

    _, out, _ = cli("migrate-store", "--from", srv.data_dir, "--to", url)
    assert "MISMATCH" not in out and "audit chain on the target: intact" in out, out
    for table, q in UPSTREAM_TABLES.items():
        n = srv.db_query("SELECT count(*) FROM %s" % table)[0][0]
        row = [line.split() for line in out.splitlines() if line.split()[:1] == [table]]
        assert row == [[table, str(n), str(n)]], (table, out)
        assert psql(url, q).splitlines() == [r[0] for r in source[table]], table
    # the silences' ids go on after the copied ones
    assert psql(url, "SELECT nextval(pg_get_serial_sequence('alert_silences', 'id'))") == "2"

    # the rejected upload re-driven on PostgreSQL: the row and its audit
    # record in one transaction, the chain still intact
    cli("upstream", "redrive", "--data-dir", srv.data_dir, "--database", url,
        "--number", numbers[1])
    assert psql(url, "SELECT state || ':' || coalesce(reason, '') FROM uploads "
                     "WHERE invoice_number = '%s'" % numbers[1]) == "pending:"
    assert psql(url, "SELECT target || ':' || outcome || ':' || seller_id FROM audit "
                     "WHERE action = 'upload.redrive'") == "upload:%s from rejected:ok:1" % numbers[1]
    assert psql(url, "SELECT actor FROM audit WHERE action = 'upload.redrive'").startswith("cli:")
    rc, _, _ = cli("upstream", "redrive", "--data-dir", srv.data_dir, "--database", url,
                   "--number", numbers[1], ok=False)
    assert rc == 1
    assert psql(url, "SELECT count(*) FROM audit WHERE action = 'upload.redrive'") == "1"
    _, out, _ = cli("audit", "verify", "--data-dir", srv.data_dir, "--database", url)
    assert "intact" in out, out
