"""The admin's credential routes /v1/admin/credentials
(src/server/handlers_credentials.c, docs/console.md "Credentials"): their
refusals (bad input, admin credentials kept for the CLI, taken ids, revoked
credentials) and the list, over the API."""
import subprocess
import time

from conftest import BIN, SLOW, assert_problem


def cli(srv, *args):
    out = subprocess.run([BIN] + list(args) + ["--data-dir", str(srv.data_dir)],
                         capture_output=True, text=True, timeout=60 * SLOW, env={"LANG": "C"})
    assert out.returncode == 0, out.stderr
    return out.stdout



def test_refusals_over_the_api(make_server):
    """The demo credential holds admin on seller 1 (fapiao init)."""
    srv = make_server()
    cli(srv, "keys", "create", "--roles", "operator", "--client-id", "ops-1", "--json")
    base = "/v1/admin/credentials"
    for body, code, field in (({}, "FIELD_REQUIRED", "roles"),
                              ({"roles": 1}, "FIELD_TYPE", "roles"),
                              ({"roles": "wizard"}, "INVALID_FIELD", "roles"),
                              ({"roles": "issuer", "name": "x"}, "UNKNOWN_FIELD", "name"),
                              ({"roles": "issuer", "client_id": "a|b"}, "INVALID_FIELD",
                               "client_id"),
                              ({"roles": "issuer", "allowed_ips": "10.0.0.0/33"},
                               "INVALID_FIELD", "allowed_ips")):
        assert_problem(srv.post_json(base, body), 400, code, field)
    for roles in ("admin", "issuer,admin", "operator"):  # the CLI's, never the API's
        assert_problem(srv.post_json(base, {"roles": roles}), 403, "CREDENTIAL_PROTECTED")
    r = srv.post_json(base, {"roles": "issuer", "client_id": "erp-9",
                             "allowed_ips": "127.0.0.1"})
    assert r.status == 201 and r.header("Cache-Control") == "no-store", r
    assert r.json()["client_secret"].startswith("fps_") and r.json()["roles"] == "issuer"
    assert_problem(srv.post_json(base, {"roles": "issuer", "client_id": "erp-9"}), 409,
                   "CREDENTIAL_EXISTS")
    generated = srv.post_json(base, {"roles": "auditor"}).json()["client_id"]
    assert generated.startswith("cli-"), generated

    assert_problem(srv.post_json(base + "/erp-9/rotate", {"overlap_seconds": -1}), 400,
                   "INVALID_FIELD", "overlap_seconds")
    assert_problem(srv.post_json(base + "/nobody/rotate", {}), 404, "NOT_FOUND")
    assert_problem(srv.post_json(base + "/ops-1/rotate", {}), 404, "NOT_FOUND")  # not a seller's
    assert_problem(srv.post_json(base + "/%s/rotate" % srv.client_id, {}), 403,
                   "CREDENTIAL_PROTECTED")  # its own (an admin): no token-only rotation
    r = srv.post_json(base + "/erp-9/rotate", {"overlap_seconds": 0})
    assert r.status == 200 and r.header("Cache-Control") == "no-store", r
    assert r.json()["previous_secrets_valid_until"] <= int(time.time()) + 1
    assert srv.post_json(base + "/erp-9/revoke", {}).status == 200
    assert_problem(srv.post_json(base + "/erp-9/revoke", {}), 409, "CREDENTIAL_STATE")
    assert_problem(srv.post_json(base + "/erp-9/rotate", {}), 409, "CREDENTIAL_STATE")

    r = srv.request("GET", base)
    assert r.status == 200 and b"fps_" not in r.body, r
    by_id = {c["client_id"]: c for c in r.json()["credentials"]}
    assert "ops-1" not in by_id and r.json()["seller_id"] == 1
    assert by_id["erp-9"]["state"] == "revoked" and by_id["erp-9"]["allowed_ips"] == "127.0.0.1"
    assert by_id["erp-9"]["managed_here"] and not by_id[srv.client_id]["managed_here"]
    assert by_id[generated]["roles"] == "auditor" and by_id[generated]["state"] == "active"
