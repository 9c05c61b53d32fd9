"""The operations console (docs/console.md) against the real binary:
`fapiao users` (add, list, disable, reset-2fa; Argon2id, the enrolment
token kept only as its hash, every change audited), the TOTP enrolment and
login (a computed code, a wrong one, a replayed one), the growing delay
after failures (the Retry-After answers grow), the session cookie on /v1
with its CSRF header and the same role checks as the API, logout, and the
static pages' security headers and refusals."""
import base64
import hashlib
import hmac
import json
import struct
import subprocess
import time
from urllib.parse import parse_qs, urlparse

from conftest import BIN, REPO, SLOW

PASSWORD = "correct horse battery"


def users(srv, *args, ok=True, stdin=None, lang="C"):
    out = subprocess.run([BIN, "users"] + list(args) + ["--data-dir", str(srv.data_dir)],
                         input=stdin, capture_output=True, text=True, timeout=60 * SLOW,
                         env={"LANG": lang})
    if ok:
        assert out.returncode == 0, out.stderr
    return out


def listed(srv):
    return {d["user"]: d for d in
            (json.loads(l) for l in users(srv, "list", "--json").stdout.splitlines())}


def test_users_lifecycle_audited(make_server):
    srv = make_server(start=False)
    out = users(srv, "add", "--user", "li.na", "--roles", "reviewer", "--password-stdin",
                stdin="correct horse battery\n")
    token = out.stdout.strip()
    assert token.startswith("fpe_") and "enrol" in out.stderr
    row = srv.db_query("SELECT pw_hash, enrol_hash, enrolled, totp_seed, roles, seller_id "
                       "FROM console_users WHERE name = 'li.na'")[0]
    assert row[0].startswith("$argon2id$v=19$m=65536,t=3,p=1$")
    assert "correct horse" not in row[0]
    assert row[1] == hashlib.sha256(token.encode()).hexdigest()  # only the hash is kept
    assert row[2:] == (0, "", 2, 1)
    assert listed(srv)["li.na"] == {"user": "li.na", "roles": "reviewer", "seller_id": 1,
                                    "state": "enrolling"}
    # a generated password is printed once, before the token
    out = users(srv, "add", "--user", "ops", "--roles", "operator")
    pw, token2 = out.stdout.split()
    assert len(pw) >= 20 and token2.startswith("fpe_")
    assert listed(srv)["ops"]["seller_id"] == 0

    out = users(srv, "reset-2fa", "--user", "li.na")
    token3 = out.stdout.strip()
    assert token3.startswith("fpe_") and token3 != token
    assert srv.db_query("SELECT enrol_hash FROM console_users WHERE name = 'li.na'")[0][0] == \
        hashlib.sha256(token3.encode()).hexdigest()
    users(srv, "disable", "--user", "li.na")
    assert listed(srv)["li.na"]["state"] == "disabled"
    zh = users(srv, "list", lang="zh_CN.UTF-8").stdout
    assert "已停用" in zh

    audit = srv.db_query("SELECT action, target FROM audit WHERE target LIKE 'user:%' "
                         "ORDER BY id")
    assert audit == [("users.add", "user:li.na"), ("users.add", "user:ops"),
                     ("users.reset_2fa", "user:li.na"), ("users.disable", "user:li.na")]


def test_users_refusals(make_server):
    srv = make_server(start=False)
    users(srv, "add", "--user", "a", "--roles", "issuer", "--password-stdin",
          stdin="long enough password\n")
    cases = [
        (["add", "--user", "a", "--roles", "issuer"], 1),           # taken
        (["add", "--user", "B!", "--roles", "issuer"], 2),          # bad name
        (["add", "--user", "b", "--roles", "wizard"], 2),           # bad role
        (["add", "--user", "b", "--roles", "issuer", "--seller-id", "99"], 1),  # no seller
        (["disable", "--user", "nobody"], 1),
        (["reset-2fa", "--user", "nobody"], 1),
    ]
    for args, rc in cases:
        assert users(srv, *args, ok=False).returncode == rc, args
    short = users(srv, "add", "--user", "c", "--roles", "issuer", "--password-stdin",
                  stdin="short\n", ok=False)
    assert short.returncode == 1 and "12" in short.stderr
    assert set(listed(srv)) == {"a"}
    assert srv.db_query("SELECT count(*) FROM audit WHERE target LIKE 'user:%'")[0][0] == 1


# ---- login and sessions ----------------------------------------------------

def totp(seed_b32, t=None, step_offset=0):
    """RFC 6238 with SHA-1, 6 digits, 30 s steps (what the server checks)."""
    key = base64.b32decode(seed_b32 + "=" * (-len(seed_b32) % 8))
    step = int((time.time() if t is None else t) // 30) + step_offset
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff) % 1000000)


def login(srv, user, password=PASSWORD, **fields):
    body = dict(user=user, password=password, **fields)
    return srv.request("POST", "/console/api/login", json.dumps(body).encode(),
                       {"Content-Type": "application/json"}, auth=False)


def console_server(make_server, roles=(("li.na", "auditor"),), serve_args=()):
    srv = make_server(start=False, serve_args=["--console-dir", str(REPO / "web" / "console")]
                      + list(serve_args))
    tokens = {}
    for name, role in roles:
        tokens[name] = users(srv, "add", "--user", name, "--roles", role, "--password-stdin",
                             stdin=PASSWORD + "\n").stdout.strip()
    srv.start()
    return srv, tokens


def enrol(srv, user, token):
    r = login(srv, user, enrol_token=token)
    assert r.status == 201, r
    doc = r.json()
    assert base64.b64decode(doc["qr_png_base64"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(doc["recovery_codes"]) == 8
    uri = urlparse(doc["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    return parse_qs(uri.query)["secret"][0], doc["recovery_codes"]


def session_of(resp):
    cookie = resp.header("Set-Cookie")
    assert cookie.startswith("fp_console=")
    attrs = {a.strip().split("=")[0] for a in cookie.split(";")[1:]}
    assert {"HttpOnly", "Secure", "SameSite"} <= attrs and "SameSite=Strict" in cookie
    return cookie.split(";")[0], resp.json()["csrf_token"]


def fresh_code(seed, used):
    """A code of a later 30 s step than any in used (waits, bounded)."""
    deadline = time.time() + 35
    while time.time() < deadline:
        step = int(time.time() // 30)
        if all(step > u for u in used):
            return totp(seed), step
        time.sleep(0.5)
    raise AssertionError("no new TOTP step within 35 s")


def test_enrol_login_replay_and_session(make_server):
    srv, tokens = console_server(make_server, (("li.na", "auditor"),))
    # before enrolment a code cannot be used, and the token only once
    assert login(srv, "li.na", totp="123456").status == 401
    seed, recovery = enrol(srv, "li.na", tokens["li.na"])
    assert login(srv, "li.na", enrol_token=tokens["li.na"]).status == 401
    code, step = totp(seed), int(time.time() // 30)
    wrong = "%06d" % ((int(code) + 1) % 1000000)
    assert login(srv, "li.na", totp=wrong).status == 401
    r = login(srv, "li.na", totp=code)
    if r.status == 401:  # the step turned between computing and checking: once more
        code, step = fresh_code(seed, [step - 1])
        r = login(srv, "li.na", totp=code)
    assert r.status == 200, r
    cookie, csrf = session_of(r)
    assert r.json()["roles"] == "auditor"
    # the same code again: refused (replay), whatever the password
    assert login(srv, "li.na", totp=code).status == 401
    # a recovery code instead of the TOTP code: good once
    assert login(srv, "li.na", recovery_code=recovery[3]).status == 200
    assert login(srv, "li.na", recovery_code=recovery[3]).status == 401
    left = srv.db_query("SELECT recovery FROM console_users WHERE name = 'li.na'")[0][0]
    assert sorted(left.split(",")) == sorted(
        hashlib.sha256(c.encode()).hexdigest() for i, c in enumerate(recovery) if i != 3)

    h = {"Cookie": cookie}
    assert srv.request("GET", "/console/api/session", headers=h, auth=False).json()["user"] == "li.na"
    assert srv.request("GET", "/v1/audit", headers=h, auth=False).status == 200
    # a change without the CSRF header: 403 whatever the role
    r = srv.request("POST", "/v1/jobs/1/redrive", headers=h, auth=False)
    assert r.status == 403 and "CSRF" in r.json()["message_en"], r
    # with it, the API's own permission check: an auditor cannot re-drive
    r = srv.request("POST", "/v1/jobs/1/redrive", headers=dict(h, **{"X-CSRF-Token": csrf}),
                    auth=False)
    assert r.status == 403 and "jobs:redrive" in r.json()["message_en"], r
    # nor rotate a credential through the console session
    r = srv.request("POST", "/v1/credentials/rotate", headers=dict(h, **{"X-CSRF-Token": csrf}),
                    auth=False)
    assert r.status == 403, r
    # logout needs the CSRF token too; afterwards the cookie is worthless
    assert srv.request("POST", "/console/api/logout", headers=h, auth=False).status == 403
    r = srv.request("POST", "/console/api/logout", headers=dict(h, **{"X-CSRF-Token": csrf}),
                    auth=False)
    assert r.status == 200 and "Max-Age=0" in r.header("Set-Cookie")
    assert srv.request("GET", "/console/api/session", headers=h, auth=False).status == 401
    assert srv.request("GET", "/v1/audit", headers=h, auth=False).status == 401

    deadline = time.time() + 10 * SLOW
    while time.time() < deadline:
        actions = [a for (a,) in srv.db_query(
            "SELECT action FROM audit WHERE actor = 'user:li.na' OR target = 'user:li.na' "
            "ORDER BY id")]
        if "console.logout" in actions:
            break
        time.sleep(0.2)
    assert actions[:1] == ["users.add"]
    for a in ("users.enrol_2fa", "auth.failure", "console.login", "auth.denied",
              "users.recovery_code_used", "console.logout"):
        assert a in actions, (a, actions)


def test_failures_grow_the_delay(make_server):
    srv, _ = console_server(make_server, (("wang", "issuer"),))
    seen = []
    for _round in range(3):
        for _ in range(12):  # bounded: a 429 comes within the free failures + 1
            r = login(srv, "wang", password="not the password", totp="000000")
            if r.status == 429:
                break
            assert r.status == 401, r
        assert r.status == 429, r
        seen.append(int(r.header("Retry-After")))
        time.sleep(seen[-1] + 0.3)
    assert seen[-1] > seen[0], seen


def test_static_pages_headers_and_refusals(make_server):
    srv, _ = console_server(make_server, ())
    for path in ("/console/", "/console/index.html", "/console/login.js"):
        r = srv.request("GET", path, auth=False)
        assert r.status == 200, (path, r)
        csp = r.header("Content-Security-Policy")
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert "script-src 'self'" in csp
        assert r.header("X-Content-Type-Options") == "nosniff"
        assert r.header("Referrer-Policy") == "no-referrer"
    assert b"<script>" not in srv.request("GET", "/console/", auth=False).body  # no inline script
    r = srv.request("GET", "/console/vendor/chart.js", auth=False)  # Debian's libjs-chart.js
    assert r.status == 200 and r.content_type == "text/javascript" and b"Chart.js" in r.body[:200]
    for path in ("/console/../fapiao.db", "/console/..%2f..%2ffapiao.db", "/console/%2e%2e/token.key",
                 "/console/.hidden", "/console/vendor/../../token.key", "/console//etc/passwd"):
        r = srv.request("GET", path, auth=False)
        assert r.status == 404, (path, r)
    assert srv.request("POST", "/console/index.html", auth=False).status == 405
    # the console's API without a session
    assert srv.request("GET", "/console/api/session", auth=False).status == 401


def signed_in(srv, user, token):
    """Enrols and signs in through the API: the session's headers (cookie, CSRF)."""
    seed, _ = enrol(srv, user, token)
    code, _step = fresh_code(seed, [])
    r = login(srv, user, totp=code)
    assert r.status == 200, r
    cookie, csrf = session_of(r)
    return {"Cookie": cookie, "X-CSRF-Token": csrf}


def test_overview_history(make_server):
    """GET /console/api/overview: a session's; the binned history the built-in
    alerting samples (every 5 s, without --alerting too) with the issued
    invoices in it, and the rules' active alerts (none here)."""
    srv, tokens = console_server(make_server, (("zhang", "auditor"),))
    assert srv.request("GET", "/console/api/overview", auth=False).status == 401
    h = signed_in(srv, "zhang", tokens["zhang"])
    r = srv.request("GET", "/console/api/overview?range=week", headers=h, auth=False)
    assert r.status == 400 and r.json()["code"] == "INVALID_FIELD", r
    for i in range(5):
        assert srv.issue("ov-%d" % i).status == 201
    deadline = time.time() + 30 * SLOW
    while time.time() < deadline:
        r = srv.request("GET", "/console/api/overview", headers=h, auth=False)
        assert r.status == 200 and r.header("Content-Security-Policy"), r
        doc = r.json()
        issued = [v for v in doc["issued_per_s"] if v]
        if round(sum(issued) * doc["bin_s"]) >= 5:
            break
        time.sleep(0.5)
    assert doc["history"] is True and doc["range"] == "hour" and doc["bin_s"] == 30
    lines = ("issued_per_s", "p99_ms", "errors_per_s", "refused_per_s", "degraded",
             "failing_checks")
    assert all(len(doc[k]) == len(doc["t"]) == 120 for k in lines), doc
    # five invoices in one or two 30 s bins
    assert round(sum(issued) * doc["bin_s"]) == 5, doc["issued_per_s"]
    assert [v for v in doc["p99_ms"] if v]  # the issue's latency
    assert not [v for v in doc["degraded"] if v] and not [v for v in doc["errors_per_s"] if v]
    assert doc["alerts"] == []
    day = srv.request("GET", "/console/api/overview?range=day", headers=h, auth=False).json()
    assert day["range"] == "day" and day["bin_s"] == 720
    assert round(sum(v for v in day["issued_per_s"] if v) * day["bin_s"]) == 5
