"""The PostgreSQL point-in-time drill (issue 18; docs/recovery.md
"PostgreSQL"), on real processes: a throw-away PostgreSQL 15 archiving its WAL
with pgBackRest (the shipped deploy/pgbackrest/ files), a full and an
incremental backup, `fapiao serve --database postgresql://…` issuing, the
time T noted, a mistake after T (the client's secret rotated with no
overlap: the old secret revoked), more invoices; then `pgbackrest restore
--type=time --target=T` into a new data directory, PostgreSQL started on it
and a fapiao node on that.

Asserted: every invoice acknowledged before T is there and none after T;
the mistake is undone (the old secret works again, the new one does not);
the audit chain verifies (checked by SQL with the hashes of
src/audit/chain.c and the checkpoints' signatures against audit.pub:
`fapiao audit verify` opens the SQLite file only, docs/ha.md section 4);
the node serves; after the runbook's step that carries the ranges' `next`
forward from the lost timeline (`fapiao ranges advance --database`), the next number follows on, reusing none
acknowledged before or after T; the restored cluster archives again
(`pgbackrest check`) and the repository verifies (`pgbackrest verify`).

No timing assertions; every wait is bounded.  Prints how long the restore
and the start took (the figures of docs/recovery.md)."""
import datetime
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

import pgpitr

_E2E = "fapiao_e2e_conftest"  # loaded under its own name, as tests/faults does
if _E2E not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        _E2E, pgpitr.REPO / "tests" / "e2e" / "conftest.py")
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_E2E] = _mod
    _spec.loader.exec_module(_mod)
e2e = sys.modules[_E2E]

pytestmark = pytest.mark.skipif(pgpitr.missing() is not None, reason=str(pgpitr.missing()))


@pytest.fixture
def ws():
    # not tmp_path: its parents are 0700 and the server's user must get in
    d = tempfile.mkdtemp(prefix="fapiao-pitr.", dir="/tmp")
    w = pgpitr.Workspace(d)
    w.clusters = []
    yield w
    for c in w.clusters:
        c.stop("immediate")
    shutil.rmtree(d, ignore_errors=True)


def issue(srv, prefix, n, tok):
    """n invoices; returns their numbers in order (each one answered 201)."""
    out = []
    for i in range(n):
        r = srv.issue("%s-%d" % (prefix, i), auth=tok)
        assert r.status == 201, r
        out.append(r.json()["number"])
    return out


def token_status(srv, secret):
    return srv.get_token_response(client_secret=secret).status


def test_pitr_pg_restore_before_mistake(ws, tmp_path):
    pg = pgpitr.Cluster(ws, "primary")
    ws.clusters.append(pg)
    pg.initdb()
    pg.start()
    subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "fapiao", "fapiao"],
                   check=True, timeout=60)
    pg.pgbackrest("stanza-create")
    pg.pgbackrest("check")

    # the node: `fapiao init --demo --database URL` puts the schema, the
    # demo seller, credential and range into PostgreSQL and keeps the keys,
    # certificate and tax codes in the data directory
    # no --audit-key: the default DIR/audit.key signs the checkpoints (it
    # used to reach the PostgreSQL store as no key: nothing was signed)
    srv = e2e.Server(tmp_path / "node", init_args=["--database", pg.url],
                     serve_args=["--database", pg.url])
    try:
        assert not srv.db_path.exists(), "init made a SQLite file beside a server database"
        pg.pgbackrest("backup", "--type=full")
        srv.start()
        old_secret = srv.client_secret
        tok = srv.token()
        before = issue(srv, "a1", 8, tok)
        pg.pgbackrest("backup", "--type=incr")  # online, while the node runs
        before += issue(srv, "a2", 8, tok)
        srv.stop()  # a node closing signs an audit checkpoint: one before T
        srv.start()
        tok = srv.token()
        t = datetime.datetime.now(datetime.timezone.utc)  # after every 201 above
        time.sleep(0.05)
        # the mistake: the secret rotated with no overlap, the old one revoked
        r = srv.post_json("/v1/credentials/rotate",
                          {"client_secret": old_secret, "overlap_seconds": 0}, auth=tok)
        assert r.status == 200, r
        new_secret = r.json()["client_secret"]
        assert token_status(srv, old_secret) == 401
        tok = srv.post_json("/v1/token", {"client_id": srv.client_id,
                                          "client_secret": new_secret},
                            auth=False).json()["access_token"]
        after = issue(srv, "b", 8, tok)
        srv.stop()
        # what the lost timeline used of each range, recorded before the
        # restore (runbook step 2)
        lost_next = {r["id"]: r["next"] for r in pg.rows("SELECT id, next FROM number_ranges")}
        rotated = "SELECT count(*) AS n FROM audit WHERE action = 'credentials.rotate'"
        assert pg.rows(rotated)[0]["n"] == 1
        pg.pgbackrest("check")  # switches the WAL segment and waits until it is archived
        pg.stop()

        target = t.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        rs = pgpitr.Cluster(ws, "restored")
        ws.clusters.append(rs)
        t0 = time.monotonic()
        rs.pgbackrest("restore", "--type=time", "--target=" + target, "--target-action=promote")
        t1 = time.monotonic()
        rs.start()
        pgpitr.wait_for(lambda: rs.rows("SELECT pg_is_in_recovery() AS r")[0]["r"] is False,
                        "the restored cluster to be promoted")
        t2 = time.monotonic()
        print("pgbackrest restore --type=time: %.1f s; PostgreSQL start and recovery to T: %.1f s"
              % (t1 - t0, t2 - t1))

        got = {r["number"] for r in rs.rows("SELECT number FROM invoices")}
        assert got == set(before), "restored: %d, before T: %d, after T among them: %d" % (
            len(got), len(before), len(got & set(after)))
        # the audit chain verifies; the rotation (after T) is not in it
        recs, cps = pgpitr.audit_verify(rs, srv.data_dir / "audit.pub")
        assert recs >= len(before) and cps >= 1, (recs, cps)
        print("restored: %d invoices (all before T, none of the %d after); audit: %d records, "
              "%d checkpoints verified" % (len(got), len(after), recs, cps))
        assert rs.rows(rotated)[0]["n"] == 0

        # the restored ranges stand where T left them: the next number is
        # the first one the lost timeline acknowledged after T
        restored_next = {r["id"]: r["next"] for r in rs.rows("SELECT id, next FROM number_ranges")}
        assert any(restored_next[i] < lost_next[i] for i in lost_next), (restored_next, lost_next)
        # runbook step 6: carry them forward with `fapiao ranges advance`
        # (through the store seam, audited), so no acknowledged number is reused
        for i, n in lost_next.items():
            r = subprocess.run([e2e.BIN, "ranges", "advance", "--data-dir", str(srv.data_dir),
                                "--database", rs.url, "--range-id", str(i), "--to", str(n)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            assert r.returncode == 0, r.stdout.decode(errors="replace")
        assert {r["id"]: r["next"] for r in rs.rows("SELECT id, next FROM number_ranges")} == {
            i: max(n, restored_next[i]) for i, n in lost_next.items()}
        moved = "SELECT count(*) AS n FROM audit WHERE action = 'ranges.advance'"
        assert rs.rows(moved)[0]["n"] == sum(n > restored_next[i] for i, n in lost_next.items())

        srv.serve_args = ["--database", rs.url]
        srv.start()
        assert token_status(srv, new_secret) == 401, "the mistake was not undone"
        assert token_status(srv, old_secret) == 200
        srv._token = None
        r = srv.request("GET", "/v1/invoices/" + before[-1])
        assert r.status == 200, r
        r = srv.issue("after-restore")
        assert r.status == 201, r
        new = r.json()["number"]
        assert new not in set(before) | set(after), "a number was reused"
        assert int(new) > max(int(n) for n in before + after), "the numbering did not follow on"
        srv.stop()

        # the restored cluster is the new primary: it archives (timeline 2),
        # and the repository's backups and WAL check out
        rs.pgbackrest("check")
        rs.pgbackrest("verify")
        info = rs.pgbackrest("info", "--output=json").stdout.decode()
        assert '"full"' in info and '"incr"' in info, info
    finally:
        srv.kill9()
        for c in ws.clusters:
            if c.started:
                print(c.name, "log:\n", c.log_tail(15))


def test_init_demo_onto_postgresql(ws, tmp_path):
    """`fapiao init --demo --database URL`: the schema and the demo data go
    into PostgreSQL (no fapiao.db), the audit key into the data directory;
    a second init of that directory is refused; the CLI reads the seller
    back and the audit chain verifies.  Init used to ignore --database and
    made a SQLite file."""
    pg = pgpitr.Cluster(ws, "initdb")
    ws.clusters.append(pg)
    pg.initdb()
    pg.start()
    subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "fapiao", "fapiao"],
                   check=True, timeout=60)
    srv = e2e.Server(tmp_path / "node", init_args=["--database", pg.url],
                     serve_args=["--database", pg.url])
    assert not srv.db_path.exists()
    assert (srv.data_dir / "audit.key").exists() and (srv.data_dir / "token.key").exists()
    assert pg.rows("SELECT count(*) AS n FROM sellers")[0]["n"] == 1
    assert pg.rows("SELECT count(*) AS n FROM number_ranges")[0]["n"] == 1

    def cli(*args):
        return subprocess.run([e2e.BIN, *args, "--data-dir", str(srv.data_dir),
                               "--database", pg.url],
                              capture_output=True, timeout=120,
                              env=dict(os.environ, FAPIAO_CONFIG=os.devnull, LANG="C.UTF-8"))

    again = cli("init", "--demo")
    assert again.returncode == 1 and b"already initialised (token.key exists)" in again.stderr
    assert pg.rows("SELECT count(*) AS n FROM sellers")[0]["n"] == 1
    try:
        srv.start()
        r = srv.issue("pg-init-1")
        assert r.status == 201, r
    finally:
        srv.stop()
    listed = cli("sellers", "list")
    assert listed.returncode == 0 and b"91440300MA5FDEMX19" in listed.stdout, listed
    v = cli("audit", "verify")
    assert v.returncode == 0 and b"audit log intact" in v.stdout, v
