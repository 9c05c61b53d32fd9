"""Layer 6, the API: credentials refused, a token past its lifetime (a real
`fapiao serve --token-ttl 1`), and — until issue 7 brings allowlists and
roles to the server — 403 IP_NOT_ALLOWED and 403 FORBIDDEN from FakeFapiao,
answering as docs/api.md says fapiao will."""
import time

import pytest

from faultzoo.doctor import check, covers
from faultzoo.fapiao import cli_flag, create_key


@covers("AUTH_BAD_CREDENTIALS")
def test_wrong_client_secret(server):
    check("wrong client_secret", "AUTH_BAD_CREDENTIALS", server.base_url,
          "--cacert", server.ca_cert, "--client-id", server.client_id,
          "--client-secret", "fps_wrong-secret-000", phase="api")


@covers("AUTH_BAD_CREDENTIALS")
def test_unknown_client_id(server):
    check("unknown client_id", "AUTH_BAD_CREDENTIALS", server.base_url,
          "--cacert", server.ca_cert, "--client-id", "nobody-00000000",
          "--client-secret", server.client_secret, phase="api")


@covers("AUTH_BAD_CREDENTIALS")
def test_invalid_token(server):
    check("invalid access token", "AUTH_BAD_CREDENTIALS", server.base_url,
          "--cacert", server.ca_cert, "--token", "not-a-token", phase="api")


@covers("AUTH_TOKEN_EXPIRED")
def test_expired_token(make_server):
    srv = make_server(serve_args=["--token-ttl", "1"])
    token = srv.token()
    # a token is valid through the whole second it expires in
    deadline = time.monotonic() + 10
    while srv.request("GET", "/v1/invoices?limit=1", auth=token).status != 401:
        assert time.monotonic() < deadline, "the 1-second token does not expire"
        time.sleep(0.2)
    check("access token expired", "AUTH_TOKEN_EXPIRED", srv.base_url, "--cacert", srv.ca_cert,
          "--token", token, phase="api")


@covers("AUTH_IP_NOT_ALLOWED")
@pytest.mark.skipif(not (cli_flag(["keys", "create"], "--allow-ip") and
                         cli_flag(["keys", "create"], "--roles")),
                    reason="needs issue 7 allowlists (fapiao keys create --roles R "
                           "--allow-ip CIDR, 403 IP_NOT_ALLOWED)")
def test_ip_not_allowed_real_server(make_server):
    """A credential allowed only from TEST-NET-1; the doctor comes from 127.0.0.1."""
    srv = make_server()
    key = create_key(srv, "--roles", "issuer", "--allow-ip", "192.0.2.0/24")
    check("client IP not on the allowlist (real fapiao)", "AUTH_IP_NOT_ALLOWED", srv.base_url,
          "--cacert", srv.ca_cert, "--client-id", key["client_id"],
          "--client-secret", key["client_secret"], phase="api")


@covers("AUTH_IP_NOT_ALLOWED")
def test_ip_not_allowed(pki, fake_fapiao):
    s = fake_fapiao("ip_not_allowed")
    text, js = check("client IP not on the allowlist (403 IP_NOT_ALLOWED)",
                     "AUTH_IP_NOT_ALLOWED", s.base_url, "--cacert", pki.root_cert,
                     "--client-id", "demo-1", "--client-secret", "fps_x", phase="api")
    assert ("POST", "/v1/token") in s.requests, s.requests


@covers("AUTH_SCOPE_MISSING")
@pytest.mark.skipif(not cli_flag(["keys", "create"], "--roles"),
                    reason="needs issue 7 roles (fapiao keys create --roles, 403 FORBIDDEN "
                           "naming the missing permission)")
def test_scope_missing_real_server(make_server):
    """An admin manages credentials and ranges and may not read invoices."""
    srv = make_server()
    key = create_key(srv, "--roles", "admin")
    r = srv.get_token_response(key["client_id"], key["client_secret"])
    assert r.status == 200, r
    check("credential lacks the permission (real fapiao)", "AUTH_SCOPE_MISSING", srv.base_url,
          "--cacert", srv.ca_cert, "--token", r.json()["access_token"], phase="api")


@covers("AUTH_SCOPE_MISSING")
def test_scope_missing(pki, fake_fapiao):
    s = fake_fapiao("scope_missing")
    check("credential lacks the permission (403 FORBIDDEN)", "AUTH_SCOPE_MISSING", s.base_url,
          "--cacert", pki.root_cert, "--token", "fake-token", phase="api")
    assert ("GET", "/v1/invoices") in s.requests, s.requests
