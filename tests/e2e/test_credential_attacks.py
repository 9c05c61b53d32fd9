"""The credential findings of issue 13 replayed against the real binary:

- a stolen 1-hour token could make itself a permanent credential through
  POST /v1/credentials/rotate and lock the owner out, and the owner's
  `keys rotate --overlap 0` did not evict it (tokens outlived their secret);
  300 rotations left 301 live secrets;
- a client id with '|' injected token fields (`probeN|0|99999999999`: a
  token read as client probeN, seller 0, living until the year 5138);
- a failed /v1/token was audited with actor '', and the audit log took the
  client's X-Request-Id as its request id;
- GET /v1/audit showed seller A's auditor seller B's records.

Each test fails on the code before the fix (see the assertion it names)."""
import json
import sqlite3
import subprocess
import time

from conftest import BIN, SLOW, assert_problem


def keys(srv, *args, ok=True):
    out = subprocess.run([BIN, "keys"] + list(args) + ["--data-dir", str(srv.data_dir)],
                         capture_output=True, text=True, timeout=30 * SLOW, env={"LANG": "C"})
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def create(srv, roles="issuer", *extra):
    doc = json.loads(keys(srv, "create", "--roles", roles, "--json", *extra).stdout)
    return doc["client_id"], doc["client_secret"]


def token(srv, cid, secret):
    r = srv.get_token_response(cid, secret)
    assert r.status == 200, r
    return r.json()["access_token"]


def wrong(secret):
    """secret with its last character changed (always a different one)."""
    return secret[:-1] + ("y" if secret.endswith("x") else "x")


def wait_status(srv, tok, want, seconds):
    """Polls a cheap authenticated read until it answers `want`; the
    answer.  The server's client cache refreshes every second."""
    deadline = time.monotonic() + seconds * SLOW
    while True:
        r = srv.request("GET", "/v1/invoices?limit=1", auth=tok)
        if r.status == want or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def live_secrets(srv, cid):
    listed = {c["client_id"]: c for c in json.loads(keys(srv, "list", "--json").stdout)}
    return listed[cid]["active_secrets"]


# ---- 1: rotation ----------------------------------------------------------

def test_token_alone_cannot_rotate(make_server):
    srv = make_server()
    cid, secret = create(srv, "issuer")
    stolen = token(srv, cid, secret)
    # the attack: the token alone, overlap 0 (before: 200, a new secret, the
    # owner locked out)
    r = srv.post_json("/v1/credentials/rotate", {"overlap_seconds": 0}, auth=stolen)
    assert_problem(r, 400, "FIELD_REQUIRED", "client_secret")
    wrong = create(srv, "issuer")[1]  # somebody else's well-formed secret
    r = srv.post_json("/v1/credentials/rotate", {"overlap_seconds": 0, "client_secret": wrong},
                      auth=stolen)
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert "client_secret" in r.json()["message_en"]
    # the owner is not locked out, and rotates with its secret
    assert srv.get_token_response(cid, secret).status == 200
    r = srv.post_json("/v1/credentials/rotate", {"overlap_seconds": 0, "client_secret": secret},
                      auth=stolen)
    assert r.status == 200, r
    assert srv.get_token_response(cid, r.json()["client_secret"]).status == 200
    assert_problem(srv.get_token_response(cid, secret), 401, "UNAUTHENTICATED")


def test_owner_rotation_evicts_a_stolen_token(make_server):
    """The operator's answer to a leak, `keys rotate --overlap 0`, ends the
    old secret and every token minted from it within about a second
    (before: the token lived on for its hour, and could rotate again)."""
    srv = make_server()
    cid, secret = create(srv, "issuer")
    stolen = token(srv, cid, secret)
    assert srv.request("GET", "/v1/invoices?limit=1", auth=stolen).status == 200
    doc = json.loads(keys(srv, "rotate", "--client-id", cid, "--overlap", "0", "--json").stdout)
    t0 = time.monotonic()
    r = wait_status(srv, stolen, 401, 5)
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert "rotated" in r.json()["message_en"], r.json()
    assert time.monotonic() - t0 <= 3 * SLOW
    # it cannot mint anything either
    r = srv.post_json("/v1/credentials/rotate", {"client_secret": secret}, auth=stolen)
    assert_problem(r, 401, "UNAUTHENTICATED")
    # the owner's new secret works, and its tokens
    fresh = token(srv, cid, doc["client_secret"])
    assert srv.request("GET", "/v1/invoices?limit=1", auth=fresh).status == 200


def test_token_dies_when_the_overlap_ends(make_server):
    srv = make_server()
    cid, secret = create(srv, "issuer")
    old_tok = token(srv, cid, secret)
    doc = json.loads(keys(srv, "rotate", "--client-id", cid, "--overlap", "2", "--json").stdout)
    new_tok = token(srv, cid, doc["client_secret"])
    # during the overlap both tokens work
    assert srv.request("GET", "/v1/invoices?limit=1", auth=old_tok).status == 200
    ends = doc["previous_secrets_valid_until"]
    while time.time() <= ends + 0.2:
        time.sleep(0.1)
    r = wait_status(srv, old_tok, 401, 3)
    assert_problem(r, 401, "UNAUTHENTICATED")  # before: 200 until the token's own expiry
    assert srv.request("GET", "/v1/invoices?limit=1", auth=new_tok).status == 200


def test_live_secrets_are_capped_at_two(make_server):
    srv = make_server()
    cid, secret = create(srv, "issuer")
    tok = token(srv, cid, secret)
    history = [secret]
    for _ in range(5):
        r = srv.post_json("/v1/credentials/rotate", {"client_secret": history[-1]}, auth=tok)
        assert r.status == 200, r
        history.append(r.json()["client_secret"])
        tok = token(srv, cid, history[-1])
        assert live_secrets(srv, cid) == 2  # before: one more per rotation
    for s in history[:-2]:
        assert_problem(srv.get_token_response(cid, s), 401, "UNAUTHENTICATED")
    for s in history[-2:]:
        assert srv.get_token_response(cid, s).status == 200
    # the CLI's rotation obeys the same cap
    keys(srv, "rotate", "--client-id", cid, "--overlap", "3600")
    assert live_secrets(srv, cid) == 2


# ---- 10: client ids -------------------------------------------------------

INJECTED = "probeN|0|99999999999"


def test_client_id_cannot_inject_token_fields(make_server):
    srv = make_server()
    create(srv, "auditor", "--client-id", "probeN")  # the client it would impersonate
    out = keys(srv, "create", "--roles", "issuer", "--client-id", INJECTED, ok=False)
    assert out.returncode == 2 and "client-id" in out.stderr  # before: created
    for bad in ("a b", "x" * 65, "", "ünï"):
        out = keys(srv, "create", "--roles", "issuer", "--client-id", bad, ok=False)
        assert out.returncode == 2, bad
    out = keys(srv, "create", "--roles", "issuer", "--seller-id", "0", ok=False)
    assert out.returncode == 2
    # a client row from before the rule (or written behind the CLI's back)
    # with the injecting id and a secret we know: the exchange refuses it
    # (before: 200, and the token was read as probeN of seller 0)
    src_id, secret = create(srv, "issuer")
    with sqlite3.connect(str(srv.db_path), timeout=30) as db:
        db.execute("INSERT INTO clients(client_id, seller_id, secret_salt, secret_hash, scope, "
                   "created_at, roles) SELECT ?1, seller_id, secret_salt, secret_hash, scope, "
                   "created_at, roles FROM clients WHERE client_id=?2", (INJECTED, src_id))
        db.execute("INSERT INTO client_secrets(client_id, salt, hash, prefix, created_at) "
                   "SELECT ?1, salt, hash, prefix, created_at FROM client_secrets "
                   "WHERE client_id=?2", (INJECTED, src_id))
    db.close()
    r = srv.get_token_response(INJECTED, secret)
    assert_problem(r, 400, "INVALID_FIELD", "client_id")
    assert "access_token" not in r.json()
    # the attempt is audited, its id made harmless
    opa = token(srv, *create(srv, "operator-auditor"))
    recs = audit_records(srv, opa, lambda rs: any(x["actor"] == "probeN?0?99999999999"
                                                   for x in rs))
    tried = [x for x in recs if x["actor"] == "probeN?0?99999999999"]
    assert tried and tried[0]["action"] == "auth.failure", recs
    assert tried[0]["outcome"] == "INVALID_FIELD" and tried[0]["seller_id"] is None
    # a version-1 token (the injectable text format) is refused outright
    assert srv.request("GET", "/v1/invoices", auth="fpt1.cHJvYmVOfDB8OTk5OTk5OTk5OTl8MQ.AAAA"
                       ).status == 401


# ---- 7: audit content -----------------------------------------------------

def audit_records(srv, tok, want=None, seconds=10):
    """GET /v1/audit as tok, polled until want(records) holds (failures are
    audited in batches every 200 ms)."""
    deadline = time.monotonic() + seconds * SLOW
    while True:
        r = srv.request("GET", "/v1/audit?limit=1000", auth=tok)
        assert r.status == 200, r
        recs = r.json()["records"]
        if want is None or want(recs) or time.monotonic() > deadline:
            return recs
        time.sleep(0.1)


def test_failed_exchange_records_the_tried_id_and_both_request_ids(make_server):
    srv = make_server()
    cid, secret = create(srv, "issuer")
    r = srv.get_token_response("ghost-client", secret)
    assert_problem(r, 401, "UNAUTHENTICATED")
    r = srv.post_json("/v1/token", {"client_id": cid, "client_secret": wrong(secret)},
                      headers={"X-Request-Id": "erp-req-77"}, auth=False)
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert r.header("X-Request-Id") == "erp-req-77"  # the API still echoes it

    def failures(recs, actor):
        return [x for x in recs if x["action"] == "auth.failure" and
                x["target"] == "POST /v1/token" and x["actor"] == actor]
    # seller 1's auditor (the demo credential) sees the attempt on its client
    recs = audit_records(srv, True, lambda rs: failures(rs, cid), seconds=5)
    mine = failures(recs, cid)
    assert mine, [x for x in recs if x["action"] == "auth.failure"]  # before: actor ''
    mine = mine[0]
    assert mine["client_request_id"] == "erp-req-77", mine
    assert mine["request_id"] and mine["request_id"] != "erp-req-77", mine  # the server's
    assert mine["seller_id"] == 1
    # an unknown id belongs to no seller: the operator-auditor sees it
    opa = token(srv, *create(srv, "operator-auditor"))
    recs = audit_records(srv, opa, lambda rs: failures(rs, "ghost-client"))
    ghost = failures(recs, "ghost-client")[0]
    assert ghost["seller_id"] is None and ghost["client_request_id"] is None, ghost
    # the access log carries the same pair
    deadline = time.monotonic() + 5 * SLOW
    line = None
    while line is None and time.monotonic() < deadline:
        for x in (srv.data_dir / "access.log").read_text().splitlines():
            doc = json.loads(x)
            if doc.get("client_request_id") == "erp-req-77":
                line = doc
        time.sleep(0.05)
    assert line and line["request_id"] == mine["request_id"], line
    # both fields are in the chain: it verifies, and changing one is caught
    srv.stop()
    v = subprocess.run([BIN, "audit", "verify", "--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert v.returncode == 0, v.stdout + v.stderr
    with sqlite3.connect(str(srv.db_path)) as db:
        db.execute("UPDATE audit SET client_request_id='forged' WHERE id=?", (mine["id"],))
    db.close()
    v = subprocess.run([BIN, "audit", "verify", "--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert v.returncode != 0 and "%d" % mine["id"] in v.stdout + v.stderr, v.stdout + v.stderr


# ---- 6: audit scope and the role model ------------------------------------

def test_audit_is_scoped_to_the_seller(make_server):
    srv = make_server()
    with sqlite3.connect(str(srv.db_path), timeout=30) as db:
        db.execute("INSERT INTO sellers(id, name, tax_id) VALUES(2, 'Seller B', "
                   "'91310000MA1FL00002')")
    db.close()
    a_aud = token(srv, *create(srv, "auditor"))
    b_cid, b_sec = create(srv, "issuer", "--seller-id", "2")
    b_iss = token(srv, b_cid, b_sec)
    b_aud = token(srv, *create(srv, "auditor", "--seller-id", "2"))
    # seller B's records: a refusal and a failed login
    assert srv.request("GET", "/v1/jobs", auth=b_iss).status == 403
    assert srv.get_token_response(b_cid, wrong(b_sec)).status == 401
    # seller A's: an invoice
    assert srv.issue("scope-a-1").status == 201

    def has_b(recs):
        return any(x["actor"] == b_cid for x in recs)
    b_view = audit_records(srv, b_aud, has_b)
    assert has_b(b_view), b_view
    a_view = audit_records(srv, a_aud)
    assert not [x for x in a_view if x["actor"] == b_cid], a_view  # before: B's records shown
    b_view = audit_records(srv, b_aud, lambda rs: sum(x["actor"] == b_cid for x in rs) >= 2)
    assert sum(x["actor"] == b_cid for x in b_view) >= 2, b_view  # the denial and the failure
    assert a_view and all(x["seller_id"] == 1 for x in a_view), a_view
    assert any(x["action"] == "invoice.issue" for x in a_view)
    assert all(x["seller_id"] == 2 for x in b_view), b_view
    assert not any(x["action"] == "invoice.issue" for x in b_view)
    # paging stays inside the seller
    first = srv.request("GET", "/v1/audit?limit=1", auth=b_aud).json()
    assert first["next_before"] is not None
    rest = srv.request("GET", "/v1/audit?limit=1000&before=%d" % first["next_before"],
                       auth=b_aud).json()["records"]
    assert rest and all(x["seller_id"] == 2 for x in rest)

    # the operator-auditor sees every seller and the instance-wide records
    opa = token(srv, *create(srv, "operator-auditor"))
    op = token(srv, *create(srv, "operator"))
    every = audit_records(srv, opa, has_b)
    assert has_b(every), every
    assert any(x["seller_id"] is None for x in every)  # instance-wide (CLI keys.create)
    assert {x["seller_id"] for x in every} >= {1, 2, None}
    # the operator runs the instance but reads no audit log and no invoices
    assert_problem(srv.request("GET", "/v1/audit", auth=op), 403, "FORBIDDEN")
    assert_problem(srv.request("GET", "/v1/invoices", auth=op), 403, "FORBIDDEN")
    assert srv.request("GET", "/v1/jobs", auth=op).status == 200
    # roles of both kinds on one credential are refused
    out = keys(srv, "create", "--roles", "operator,issuer", ok=False)
    assert out.returncode == 2
