"""The operations console (docs/console.md) against the real binary.  This
file covers what exists so far: `fapiao users` (add, list, disable,
reset-2fa), the password hashed with Argon2id and the enrolment token kept
only as a hash, every change audited, and the refusals of bad input."""
import hashlib
import json
import subprocess

from conftest import BIN, SLOW


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
