"""Issue 13 item 13 (second bullet): who may read /metrics
(docs/security.md "Metrics exposure").  The families carry per-seller
volumes; by default /metrics is public on the main port (documented), and
the operator can require a bearer token (--metrics-token-file) or move the
scrape to a separate loopback listener (--metrics-listen), after which the
main port's /metrics needs the token or is absent."""
import http.client
import os
import re

import pytest

from conftest import assert_problem

TOKEN = "m3tr1cs-t0ken-for-tests-0123456789"


def token_file(tmp_path, mode=0o600, text=TOKEN + "\n"):
    p = tmp_path / "metrics.token"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def metrics_port(srv):
    m = re.findall(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", srv.log_text())
    assert m, srv.log_tail()
    return int(m[-1])


def plain_get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), r
    finally:
        c.close()


def test_default_is_public_on_the_main_port(server):
    r = server.request("GET", "/metrics", auth=False)
    assert r.status == 200 and b"fapiao_" in r.body


def test_token_required_on_the_main_port(make_server, tmp_path):
    srv = make_server(serve_args=["--metrics-token-file", str(token_file(tmp_path))])
    r = srv.request("GET", "/metrics", auth=False)
    assert_problem(r, 401, "UNAUTHENTICATED")
    assert r.header("WWW-Authenticate") == "Bearer"
    r = srv.request("GET", "/metrics", auth=False,
                    headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
    assert_problem(r, 401, "UNAUTHENTICATED")
    # an API token is not the metrics token
    r = srv.request("GET", "/metrics")
    assert_problem(r, 401, "UNAUTHENTICATED")
    r = srv.request("GET", "/metrics", auth=False, headers={"Authorization": "Bearer " + TOKEN})
    assert r.status == 200 and b"fapiao_http_requests_total" in r.body, r


def test_separate_listener_serves_only_metrics(make_server):
    srv = make_server(serve_args=["--metrics-listen", "127.0.0.1:0"])
    port = metrics_port(srv)
    assert port != srv.port
    status, body, r = plain_get(port, "/metrics")
    assert status == 200 and "fapiao_http_requests_total" in body
    assert r.getheader("Content-Type").startswith("text/plain")
    assert plain_get(port, "/v1/invoices")[0] == 404
    assert plain_get(port, "/healthz")[0] == 404
    # the main port's /metrics is gone
    assert_problem(srv.request("GET", "/metrics", auth=False), 404, "NOT_FOUND")


def test_separate_listener_with_token(make_server, tmp_path):
    srv = make_server(serve_args=["--metrics-listen", "127.0.0.1:0",
                                  "--metrics-token-file", str(token_file(tmp_path))])
    port = metrics_port(srv)
    assert plain_get(port, "/metrics")[0] == 401
    assert plain_get(port, "/metrics", {"Authorization": "Bearer " + TOKEN})[0] == 200
    assert_problem(srv.request("GET", "/metrics", auth=False), 401, "UNAUTHENTICATED")
    r = srv.request("GET", "/metrics", auth=False, headers={"Authorization": "Bearer " + TOKEN})
    assert r.status == 200


@pytest.mark.parametrize("args,msg", [
    (["--metrics-listen", "0.0.0.0:0"], "loopback address"),
    (["--metrics-listen", "nonsense"], "--metrics-listen must be HOST:PORT"),
])
def test_bad_listener_refused(make_server, args, msg):
    srv = make_server(start=False)
    srv.serve_args = args
    with pytest.raises(AssertionError, match=msg):
        srv.start()


def test_loose_or_short_token_file_refused(make_server, tmp_path):
    srv = make_server(start=False)
    srv.serve_args = ["--metrics-token-file", str(token_file(tmp_path, mode=0o644))]
    with pytest.raises(AssertionError, match="metrics token file"):
        srv.start()
    srv.serve_args = ["--metrics-token-file", str(token_file(tmp_path, text="short\n"))]
    with pytest.raises(AssertionError, match="16-256 characters"):
        srv.start()
