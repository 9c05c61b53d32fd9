"""Credentials: POST /v1/token and the bearer check on /v1 routes."""
import socket
import ssl
import time

import pytest

from conftest import EXAMPLE_BODY, assert_problem


def test_token_ok(server):
    r = server.get_token_response()
    assert r.status == 200, r
    assert r.content_type == "application/json"
    t = r.json()
    assert isinstance(t["access_token"], str) and len(t["access_token"]) >= 16
    assert t["token_type"] == "Bearer"
    assert isinstance(t["expires_in"], int) and not isinstance(t["expires_in"], bool)
    assert t["expires_in"] > 0
    assert "scope" in t
    # and the token works
    g = server.request("GET", "/v1/invoices?serial=auth-nothing", auth=t["access_token"])
    assert g.status == 200, g
    assert g.json()["invoices"] == []


def test_wrong_secret(server):
    r = server.get_token_response(client_secret=server.client_secret + "x")
    p = assert_problem(r, 401, "UNAUTHENTICATED")
    assert "access_token" not in p


def test_empty_secret(server):
    r = server.get_token_response(client_secret="")
    assert_problem(r, 401, "UNAUTHENTICATED")


def test_unknown_client(server):
    r = server.get_token_response(client_id="no-such-client")
    assert_problem(r, 401, "UNAUTHENTICATED")


def test_other_clients_secret_does_not_work(server):
    # the right secret with a wrong client id
    r = server.get_token_response(client_id=server.client_id + "0")
    assert_problem(r, 401, "UNAUTHENTICATED")


PROTECTED = [
    ("GET", "/v1/invoices?serial=auth-x", None, {}),
    ("GET", "/v1/invoices/00000000000000000001", None, {}),
    ("POST", "/v1/invoices", EXAMPLE_BODY,
     {"Content-Type": "application/json", "Idempotency-Key": "auth-never-issued"}),
]


def _tamper(tok, pos):
    c = tok[pos]
    repl = "A" if c != "A" else "g"
    return tok[:pos] + repl + tok[pos + 1:]


@pytest.mark.parametrize("method,path,body,headers", PROTECTED,
                         ids=["list", "get", "issue"])
def test_missing_and_bad_bearer(server, method, path, body, headers):
    tok = server.token()
    bad_auth = {
        "missing": None,
        "garbage": "Bearer garbage",
        "empty_bearer": "Bearer ",
        "basic_scheme": "Basic dXNlcjpwYXNz",
        "raw_token_no_scheme": tok,
        "tampered_middle": "Bearer " + _tamper(tok, len(tok) // 2),
        "tampered_near_end": "Bearer " + _tamper(tok, len(tok) - 5),
        "truncated": "Bearer " + tok[:-8],
        "extended": "Bearer " + tok + "AAAA",
    }
    for name, value in bad_auth.items():
        h = dict(headers)
        if value is not None:
            h["Authorization"] = value
        r = server.request(method, path, body=body, headers=h, auth=False)
        try:
            assert_problem(r, 401, "UNAUTHENTICATED")
        except AssertionError as e:
            raise AssertionError("Authorization %s: %s" % (name, e)) from None
    # nothing was issued by the refused POSTs
    s = server.request("GET", "/v1/invoices?serial=auth-never-issued")
    assert s.status == 200 and s.json()["invoices"] == []


def test_token_endpoint_needs_no_bearer_and_health_is_public(server):
    assert server.request("GET", "/healthz", auth=False).status == 200
    assert server.get_token_response().status == 200


def test_expired_token(make_server, server):
    short = make_server(serve_args=["--token-ttl", "1"])
    r = short.get_token_response()
    assert r.status == 200, r
    t = r.json()
    assert t["expires_in"] == 1
    time.sleep(2.5)
    g = short.request("GET", "/v1/invoices?serial=x", auth=t["access_token"])
    assert_problem(g, 401, "TOKEN_EXPIRED")
    p = short.issue("auth-expired", auth=t["access_token"])
    assert_problem(p, 401, "TOKEN_EXPIRED")
    # a fresh token works again
    fresh = short.get_token_response().json()["access_token"]
    ok = short.request("GET", "/v1/invoices?serial=x", auth=fresh)
    assert ok.status == 200, ok


def test_token_from_another_installation_is_refused(make_server, server):
    other = make_server()
    foreign = other.token()
    r = server.request("GET", "/v1/invoices?serial=x", auth=foreign)
    assert_problem(r, 401, "UNAUTHENTICATED")
    mine = server.token()
    r2 = other.request("GET", "/v1/invoices?serial=x", auth=mine)
    assert_problem(r2, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "::1"])
def test_certificate_verifies_for_its_names(server, name):
    """The self-signed certificate from init verifies (cafile=ca_cert) for
    127.0.0.1, localhost and ::1 (we always connect to 127.0.0.1 and only
    vary the name checked)."""
    ctx = ssl.create_default_context(cafile=server.ca_cert)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_certificate_does_not_verify_for_other_names(server):
    ctx = ssl.create_default_context(cafile=server.ca_cert)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            with ctx.wrap_socket(raw, server_hostname="example.com"):
                pass
    assert server.healthy()


def test_plain_http_on_tls_port_does_not_hurt(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            raw.recv(4096)
        except OSError:
            pass
    assert server.healthy()
