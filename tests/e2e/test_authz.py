"""The authorization matrix (tests/data/authz_matrix.csv) against the real
server: every route x every role x {valid token, expired token, revoked
client, wrong IP, no token}.  Clients are made with `fapiao keys create`,
revoked and re-fenced with `fapiao keys revoke|set` while the server runs;
expired tokens are real ones issued by the server with --token-ttl 1.
The same matrix is walked through the console: a signed-in person of each
seller role calls every /v1 route with the session cookie and its CSRF
token, and gets what a bearer token of that role gets (docs/console.md)."""
import csv
import json
import re
import subprocess
import time

import pytest

from conftest import BIN, EXAMPLE_BODY, REPO, SLOW
from test_console import PASSWORD, enrol, login, session_of, totp, users

MATRIX = REPO / "tests" / "data" / "authz_matrix.csv"
ROLES = ("issuer", "reviewer", "auditor", "admin", "operator", "operator-auditor")
SELLER_ROLES = ROLES[:4]  # a console person has one of these (or an instance-wide one)


def keys(srv, *args):
    out = subprocess.run([BIN, "keys"] + list(args) + ["--data-dir", str(srv.data_dir)],
                         capture_output=True, text=True, timeout=30 * SLOW, env={"LANG": "C"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def create(srv, roles, **kw):
    extra = []
    for k, v in kw.items():
        extra += ["--" + k.replace("_", "-"), v]
    doc = json.loads(keys(srv, "create", "--roles", roles, "--json", *extra))
    return doc["client_id"], doc["client_secret"]


def token_for(srv, cid, secret):
    r = srv.get_token_response(cid, secret)
    assert r.status == 200, r
    return r.json()["access_token"]


def rows():
    with open(MATRIX, newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines))


def objects(srv, key):
    """A rendered blue invoice, two red forms of it and two issuer
    credentials: what the matrix's {placeholders} name."""
    r = srv.issue(key)
    assert r.status == 201, r
    inv = r.json()["number"]
    deadline = time.monotonic() + 30 * SLOW
    while srv.request("GET", "/v1/invoices/%s/pdf" % inv).status != 200:
        assert time.monotonic() < deadline, "the blue invoice was never rendered"
        time.sleep(0.1)
    forms = []
    for q in ("-0.5", "-0.1"):
        r = srv.post_json("/v1/invoices/%s/red-forms" % inv,
                          {"reason": "sales_return", "items": [{"line": 1, "quantity": q}]})
        assert r.status == 201, r
        forms.append(r.json()["form_id"])
    # what the admin's credential routes rotate and revoke
    targets = [create(srv, "issuer")[0] for _ in range(2)]
    return {"{invoice}": inv, "{form}": forms[0], "{form2}": forms[1],
            "{credential}": targets[0], "{credential2}": targets[1]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import Server
    # the matrix makes hundreds of failures a second from one address on
    # purpose: the per-address failure budget (test_auth_flood.py) is off
    srv = Server(tmp_path_factory.mktemp("authz"), ["--fault-injection",
                                                    "--auth-fail-rate", "0"])
    people = {role: users(srv, "add", "--user", "p-" + role, "--roles", role,
                          "--password-stdin", stdin=PASSWORD + "\n").stdout.strip()
              for role in SELLER_ROLES}
    srv.start()
    try:
        clients = {}
        for role in ROLES:
            clients[role] = {state: create(srv, role) for state in ("valid", "revoked", "wrong_ip")}

        # objects the routes act on, made by the demo credential (every role)
        subst = objects(srv, "authz-blue")
        subst["{job}"] = str(srv.request("GET", "/v1/jobs").json()["jobs"][-1]["id"])

        # expired tokens: issued by the server itself with a 1-second lifetime
        srv.stop()
        srv.serve_args += ["--token-ttl", "1"]
        srv.start()
        expired = {role: token_for(srv, *clients[role]["valid"]) for role in ROLES}
        srv.stop()
        srv.serve_args = srv.serve_args[:-2]
        srv.start()
        tokens = {role: {state: token_for(srv, *clients[role][state])
                         for state in ("valid", "revoked", "wrong_ip")} for role in ROLES}
        for role in ROLES:
            tokens[role]["expired"] = expired[role]
            keys(srv, "revoke", "--client-id", clients[role]["revoked"][0])
            keys(srv, "set", "--client-id", clients[role]["wrong_ip"][0],
                 "--allow-ip", "10.9.9.9,2001:db8::/32")
        time.sleep(2.2)  # tokens expired; the server's client cache (1 s) refreshed
        yield {"srv": srv, "clients": clients, "tokens": tokens, "people": people,
               "subst": subst}
    finally:
        problems = srv.close()
        assert not problems, problems


def request(world, row, n, session=None, subst=None):
    """The row's request with a bearer token of its role and state, or with
    session = (cookie, csrf token) instead of any token."""
    srv = world["srv"]
    role, state = row["role"], row["state"]
    path = row["path"]
    for k, v in (subst or world["subst"]).items():
        path = path.replace(k, v)
    headers, body = {}, None
    if row["method"] == "POST":
        headers["Content-Type"] = "application/json"
        body = b"{}"
    if row["path"] == "/v1/token":
        cid, secret = world["clients"][role][{"expired": "valid", "no_token": "valid"}.get(
            state, state)]
        body = json.dumps({"client_id": cid, "client_secret": secret}).encode()
        return srv.request("POST", path, body=body, headers=headers, auth=False)
    if row["path"] == "/v1/credentials/rotate":  # needs the current secret, not only a token
        body = json.dumps({"client_secret": world["clients"][role][
            "valid" if state in ("expired", "no_token") else state][1]}).encode()
    if row["path"] == "/v1/admin/credentials" and row["method"] == "POST":
        body = json.dumps({"roles": "issuer"}).encode()
    if row["path"] == "/v1/invoices" and row["method"] == "POST":
        body = EXAMPLE_BODY
        headers["Idempotency-Key"] = "authz-%d" % n
    if row["path"].endswith("/red-forms"):
        body = json.dumps({"reason": "sales_return",
                           "items": [{"line": 1, "quantity": "-0.1"}]}).encode()
    if row["path"].endswith("/invoice"):
        headers["Idempotency-Key"] = "authz-red-%d" % n
    auth = False if state == "no_token" else world["tokens"][role][state]
    if session:
        auth = False
        headers.update({"Cookie": session[0], "X-CSRF-Token": session[1]})
    return srv.request(row["method"], path, body=body, headers=headers, auth=auth)


def test_matrix_is_complete():
    """Every row of the server's routing table is in the matrix, with every
    role, and nothing else is."""
    table = rows()
    in_matrix = {(r["method"], re.sub(r"\{[a-z0-9]+\}", "{}", r["path"])) for r in table}
    src = (REPO / "src" / "server" / "server.c").read_text()
    start = src.index("static const fp_route routes[]")
    in_server = set(re.findall(r'\{"(GET|POST)", "([^"]+)"', src[start:src.index("};", start)]))
    assert in_matrix == in_server, (in_matrix ^ in_server)
    for method, path in {(r["method"], r["path"]) for r in table}:
        assert {r["role"] for r in table if (r["method"], r["path"]) == (method, path)} == \
            set(ROLES)


def test_authorization_matrix(world):
    mismatches, n = [], 0
    for row in rows():
        for state in ("valid", "expired", "revoked", "wrong_ip", "no_token"):
            n += 1
            r = request(world, dict(row, state=state), n)
            want = int(row[state])
            if r.status != want:
                mismatches.append("%s %s as %s/%s: %d, expected %d (%s)" % (
                    row["method"], row["path"], row["role"], state, r.status, want,
                    r.body[:160]))
            elif want in (401, 403) and row["path"] not in ("/healthz",) and \
                    not row["path"].startswith("/console/"):  # no bearer token there
                code = r.json()["code"]
                expect = {"expired": "TOKEN_EXPIRED", "wrong_ip": "IP_NOT_ALLOWED",
                          "no_token": "UNAUTHENTICATED", "revoked": "UNAUTHENTICATED",
                          "valid": "FORBIDDEN"}[state]
                if code != expect:
                    mismatches.append("%s %s as %s/%s: code %s, expected %s" % (
                        row["method"], row["path"], row["role"], state, code, expect))
    assert n == len(rows()) * 5
    assert not mismatches, "\n".join(mismatches)


def test_forbidden_names_the_permission(world):
    srv = world["srv"]
    r = srv.request("POST", "/v1/jobs/%s/redrive" % world["subst"]["{job}"],
                    auth=world["tokens"]["issuer"]["valid"])
    assert r.status == 403
    doc = r.json()
    assert doc["code"] == "FORBIDDEN"
    assert "jobs:redrive" in doc["message_en"] and "jobs:redrive" in doc["message_zh"]
    assert "issuer" in doc["message_en"]


def test_keys_list_shows_state(world):
    out = json.loads(keys(world["srv"], "list", "--json"))
    by_id = {c["client_id"]: c for c in out}
    rev = by_id[world["clients"]["admin"]["revoked"][0]]
    assert rev["revoked_at"] > 0 and rev["roles"] == "admin"
    ip = by_id[world["clients"]["auditor"]["wrong_ip"][0]]
    assert ip["allowed_ips"] == "10.9.9.9,2001:db8::/32"
    assert all(c["active_secrets"] >= 1 for c in out)
    assert all(not c["secret_prefixes"] or c["secret_prefixes"].startswith("fps_") for c in out)


# A session cannot use an API client's own routes: it has no client secret
# to rotate (handlers_console.c, docs/console.md).  Every other /v1 route
# answers a person as it answers a bearer token of the same role.
CONSOLE_DIFFERS = {("POST", "/v1/credentials/rotate"): 403}


def test_matrix_through_the_console(world):
    srv = world["srv"]
    sessions = {}
    for role in SELLER_ROLES:
        seed, _ = enrol(srv, "p-" + role, world["people"][role])
        r = login(srv, "p-" + role, totp=totp(seed))
        assert r.status == 200, r
        sessions[role] = session_of(r)
    # new objects: the bearer walk left its own changed (a form withdrawn,
    # a red invoice issued, a credential revoked)
    subst = dict(world["subst"], **objects(srv, "authz-console-blue"))
    walked, mismatches = 0, []
    for n, row in enumerate(rows()):
        if row["role"] not in SELLER_ROLES or not row["path"].startswith("/v1/"):
            continue
        walked += 1
        r = request(world, dict(row, state="valid"), 10000 + n, sessions[row["role"]], subst)
        want = CONSOLE_DIFFERS.get((row["method"], row["path"]), int(row["valid"]))
        if r.status != want:
            mismatches.append("%s %s as a console %s: %d, expected %d (%s)" % (
                row["method"], row["path"], row["role"], r.status, want, r.body[:160]))
    assert walked == 4 * len({(r["method"], r["path"]) for r in rows()
                              if r["path"].startswith("/v1/")})
    assert not mismatches, "\n".join(mismatches)
