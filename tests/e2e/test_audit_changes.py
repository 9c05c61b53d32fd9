"""Every state change is audited in the same transaction as the change
(docs/audit.md), through the real binary:

- over the API: self-service credential rotation and the red-form moves
  (create, confirm, reject, withdraw) each leave exactly one record, with
  the caller as actor and the request's id;
- through the CLI: `keys create|rotate|set|revoke`, `ranges import` and
  `webhook set|remove` each leave exactly one record, actor "cli:<user>";
- when the record cannot be written — a trigger added to the database
  refuses the insert, a real SQLite failure — the change is refused and
  nothing of it remains (the API answers 503, the CLI exits 1).

The log verifies (`fapiao audit verify`) after all of it."""
import json
import sqlite3
import subprocess

from conftest import BIN, SLOW, assert_problem, dumps, example_doc

API_ACTIONS = ("red_form.create", "red_form.confirm", "red_form.reject", "red_form.withdraw",
               "credentials.rotate")
CLI_ACTIONS = ("keys.create", "keys.rotate", "keys.set", "keys.revoke", "ranges.import",
               "webhook.set", "webhook.remove")


def refuse_audit(srv, actions):
    """A trigger that makes the audit insert of these actions fail."""
    con = sqlite3.connect(str(srv.db_path), timeout=30)
    try:
        names = ", ".join("'%s'" % a for a in actions)
        con.execute("CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit "
                    "WHEN NEW.action IN (%s) BEGIN "
                    "SELECT RAISE(ABORT, 'audit insert refused by the test'); END" % names)
        con.commit()
    finally:
        con.close()


def allow_audit(srv):
    con = sqlite3.connect(str(srv.db_path), timeout=30)
    try:
        con.execute("DROP TRIGGER test_refuse_audit")
        con.commit()
    finally:
        con.close()


def records_of(srv, request_id):
    return srv.db_query("SELECT actor, action, target, outcome, client_ip FROM audit "
                        "WHERE request_id=?", (request_id,))


def audit_count(srv):
    return srv.db_query("SELECT count(*) FROM audit")[0][0]


def blue(srv, k):
    doc = example_doc()
    doc["items"] = [dict(doc["items"][0], quantity="10", unit_price="100.00")]
    r = srv.issue(k, body=dumps(doc))
    assert r.status == 201, r
    return r.json()["number"]


def new_form(srv, number, req):
    return srv.post_json("/v1/invoices/%s/red-forms" % number, req)


def act(srv, form_id, action):
    return srv.request("POST", "/v1/red-forms/%s/%s" % (form_id, action))


def form_state(srv, form_id):
    return srv.db_query("SELECT state FROM red_forms WHERE form_no=?", (form_id,))[0][0]


def test_api_changes_are_audited_in_their_transaction(make_server):
    srv = make_server()
    cid = srv.client_id
    number = blue(srv, "audit-changes-blue")
    allowance = {"reason": "allowance", "buyer_has_deducted": True,
                 "items": [{"line": 1, "amount": "-10.00"}]}
    by_buyer = {"reason": "service_stop", "initiated_by": "buyer",
                "items": [{"line": 1, "amount": "-100.00", "quantity": "-1"}]}
    plain = {"reason": "allowance", "items": [{"line": 1, "amount": "-5.00"}]}

    def one_record(r, action, target, outcome):
        rows = records_of(srv, r.header("X-Request-Id"))
        assert rows == [(cid, action, target, outcome, "127.0.0.1")], (action, rows)

    # each change: exactly one record, the caller's, in the request's name
    r = new_form(srv, number, allowance)
    assert r.status == 201, r
    fa = r.json()["form_id"]
    one_record(r, "red_form.create", fa, "awaiting_buyer")
    r = act(srv, fa, "confirm")
    assert r.status == 200, r
    one_record(r, "red_form.confirm", fa, "confirmed")
    r = new_form(srv, number, by_buyer)
    assert r.status == 201, r
    fb = r.json()["form_id"]
    one_record(r, "red_form.create", fb, "awaiting_seller")
    r = act(srv, fb, "reject")
    assert r.status == 200, r
    one_record(r, "red_form.reject", fb, "rejected")
    r = new_form(srv, number, plain)
    assert r.status == 201, r
    fc = r.json()["form_id"]
    one_record(r, "red_form.create", fc, "no_confirmation_needed")
    r = act(srv, fc, "withdraw")
    assert r.status == 200, r
    one_record(r, "red_form.withdraw", fc, "withdrawn")
    r = srv.post_json("/v1/credentials/rotate",
                      {"overlap_seconds": 600, "client_secret": srv.client_secret})
    assert r.status == 200, r
    one_record(r, "credentials.rotate", cid, "ok")
    secret = r.json()["client_secret"]
    # a refused move changes nothing and records no change
    r = act(srv, fa, "reject")
    assert_problem(r, 409, "RED_FORM_STATE")
    assert records_of(srv, r.header("X-Request-Id")) == []

    # the audit insert fails: every change is refused and leaves nothing
    open_a = new_form(srv, number, allowance).json()["form_id"]
    open_b = new_form(srv, number, by_buyer).json()["form_id"]
    open_c = new_form(srv, number, plain).json()["form_id"]
    forms = srv.db_query("SELECT count(*) FROM red_forms")[0][0]
    secrets = srv.db_query("SELECT count(*) FROM client_secrets")[0][0]
    before = audit_count(srv)
    refuse_audit(srv, API_ACTIONS)
    try:
        assert_problem(new_form(srv, number, plain), 503, "DEGRADED")
        for form_id, action, state in ((open_a, "confirm", "awaiting_buyer"),
                                       (open_b, "reject", "awaiting_seller"),
                                       (open_a, "withdraw", "awaiting_buyer"),
                                       (open_c, "withdraw", "no_confirmation_needed")):
            assert_problem(act(srv, form_id, action), 503, "DEGRADED")
            assert form_state(srv, form_id) == state, (form_id, action)
        assert_problem(srv.post_json("/v1/credentials/rotate", {"client_secret": secret}), 503,
                       "DEGRADED")
        assert srv.db_query("SELECT count(*) FROM red_forms")[0][0] == forms
        assert srv.db_query("SELECT count(*) FROM client_secrets")[0][0] == secrets
        assert audit_count(srv) == before
        # the secret of the refused rotation never existed: the last one works
        assert srv.get_token_response(cid, secret).status == 200
    finally:
        allow_audit(srv)
    # and once the record can be written, the same changes go through
    r = act(srv, open_a, "confirm")
    assert r.status == 200, r
    one_record(r, "red_form.confirm", open_a, "confirmed")
    assert srv.stop() == 0
    v = subprocess.run([BIN, "audit", "verify", "--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert v.returncode == 0, v.stdout + v.stderr


def cli(srv, *args, ok=True):
    r = subprocess.run([BIN] + list(args) + ["--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=60 * SLOW,
                       env={"LANG": "en_US.UTF-8", "USER": "auditee", "PATH": "/usr/bin:/bin"})
    if ok:
        assert r.returncode == 0, (args, r.stderr)
    return r


def last_record(srv):
    return srv.db_query("SELECT actor, action, target, outcome FROM audit "
                        "ORDER BY id DESC LIMIT 1")[0]


def test_cli_changes_are_audited_in_their_transaction(make_server):
    srv = make_server(start=False)
    prefix, base = srv.db_query("SELECT prefix, max(last) + 1 FROM number_ranges")[0]
    rng = "%d..%d" % (base, base + 9)
    # (arguments, action, target, outcome, probe of the changed state, its value after)
    steps = [
        (["keys", "create", "--roles", "issuer", "--client-id", "aud-1", "--json"],
         "keys.create", "aud-1", "issuer",
         "SELECT count(*) FROM clients WHERE client_id='aud-1'", 1),
        (["keys", "rotate", "--client-id", "aud-1", "--overlap", "60"],
         "keys.rotate", "aud-1", "ok",
         "SELECT count(*) FROM client_secrets WHERE client_id='aud-1'", 2),
        (["keys", "set", "--client-id", "aud-1", "--roles", "issuer,reviewer"],
         "keys.set", "aud-1", "ok",
         "SELECT count(*) FROM clients WHERE client_id='aud-1' AND roles LIKE '%reviewer%'", 1),
        (["ranges", "import", "--prefix", prefix, "--first", str(base), "--last", str(base + 9)],
         "ranges.import", "%s:%s" % (prefix, rng), "ok",
         "SELECT count(*) FROM number_ranges", 2),
        (["webhook", "set", "--client-id", "aud-1", "--url", "https://erp.example/hook"],
         "webhook.set", "aud-1", "https://erp.example/hook",
         "SELECT count(*) FROM clients WHERE webhook_url IS NOT NULL", 1),
        (["webhook", "remove", "--client-id", "aud-1"],
         "webhook.remove", "aud-1", "ok",
         "SELECT count(*) FROM clients WHERE webhook_url IS NOT NULL", 0),
        (["keys", "revoke", "--client-id", "aud-1"],
         "keys.revoke", "aud-1", "ok",
         "SELECT count(*) FROM clients WHERE revoked_at IS NOT NULL", 1),
    ]
    # the same commands while the record cannot be written: refused, no trace
    refused = [
        (["keys", "create", "--roles", "issuer", "--client-id", "aud-2"],
         "SELECT count(*) FROM clients WHERE client_id='aud-2'"),
        (["keys", "rotate", "--client-id", srv.client_id],
         "SELECT count(*) FROM client_secrets"),
        (["keys", "set", "--client-id", srv.client_id, "--roles", "auditor"],
         "SELECT group_concat(roles) FROM clients"),
        (["ranges", "import", "--prefix", prefix, "--first", str(base + 10),
          "--last", str(base + 19)], "SELECT count(*) FROM number_ranges"),
        (["webhook", "set", "--client-id", srv.client_id, "--url", "https://x.example/h"],
         "SELECT count(*) FROM clients WHERE webhook_url IS NOT NULL"),
        (["keys", "revoke", "--client-id", srv.client_id],
         "SELECT count(*) FROM clients WHERE revoked_at IS NOT NULL"),
    ]
    for args, action, target, outcome, probe, after in steps:
        n = audit_count(srv)
        cli(srv, *args)
        assert audit_count(srv) == n + 1, args
        assert last_record(srv) == ("cli:auditee", action, target, outcome), args
        assert srv.db_query(probe)[0][0] == after, args
    refuse_audit(srv, CLI_ACTIONS)
    try:
        for args, probe in refused:
            n, state = audit_count(srv), srv.db_query(probe)
            r = cli(srv, *args, ok=False)
            assert r.returncode == 1, (args, r.returncode, r.stdout, r.stderr)
            assert "audit" in r.stderr, (args, r.stderr)
            assert "client_secret" not in r.stdout, (args, r.stdout)  # no secret shown
            assert srv.db_query(probe) == state, args
            assert audit_count(srv) == n, args
    finally:
        allow_audit(srv)
    v = subprocess.run([BIN, "audit", "verify", "--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert v.returncode == 0, v.stdout + v.stderr
