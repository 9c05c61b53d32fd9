"""Layer 5, HTTP: the wrong scheme, the wrong service, a server that
completes TLS and then never answers, and fapiao's own answers — not ready
(number range exhausted), degraded, rate limited — from a real `fapiao
serve` where the server can already be put in that state, and otherwise from
FakeFapiao, a small HTTPS server answering exactly like fapiao's docs/api.md
(status, Retry-After, problem+json {"type":"urn:fapiao:error:CODE", "code",
"title", "message_zh", "message_en", "request_id"}) so the doctor's reading
of those answers is proven now."""
import os

import pytest

from faultzoo.doctor import check, covers
from faultzoo.fapiao import serve_flag, wait_readyz


def url(s):
    return "https://127.0.0.1:%d" % s.port


@covers("HTTP_TLS_REQUIRED")
def test_http_to_tls_port(server):
    check("http:// to the HTTPS port", "HTTP_TLS_REQUIRED", "http://127.0.0.1:%d" % server.port,
          "--timeout", "5", phase="http")


@covers("HTTP_WRONG_SERVICE")
def test_http_to_wrong_service(plain_http):
    check("another web server (http://)", "HTTP_WRONG_SERVICE",
          "http://127.0.0.1:%d" % plain_http.port, "--timeout", "5", phase="http")


@covers("HTTP_WRONG_SERVICE")
def test_https_to_wrong_service(pki, tls_server):
    s = tls_server(pki["direct"])
    check("another web server (https://)", "HTTP_WRONG_SERVICE", url(s),
          "--cacert", pki.root_cert, "--timeout", "5", phase="http")


@covers("HTTP_TIMEOUT")
def test_tls_then_no_http_answer(pki, silent_tls):
    s = silent_tls()
    text, js = check("TLS completes, no HTTP answer", "HTTP_TIMEOUT", url(s),
                     "--cacert", pki.root_cert, "--timeout", "2", phase="http")
    assert phase_ok(js, "tls"), js
    assert js.elapsed < 2 + 1.5, js.elapsed


@covers("HTTP_TIMEOUT")
def test_plain_http_never_answers(raw_server):
    s = raw_server("silent")
    text, js = check("server accepts, never answers (http://)", "HTTP_TIMEOUT",
                     "http://127.0.0.1:%d" % s.port, "--timeout", "1", phase="http")
    assert js.elapsed < 1 + 1.5, js.elapsed


def phase_ok(js, name):
    return [p for p in js.doc["phases"] if p["name"] == name][0]["status"] == "ok"


@covers("HTTP_NOT_READY")
def test_not_ready_when_ranges_exhausted(make_server):
    probe = ["--probe-interval-ms", "200"] if serve_flag("--probe-interval-ms") else []
    srv = make_server(init_args=["--demo-range-size", "1"], serve_args=probe)
    r = srv.issue("doctor-exhaust-1")
    assert r.status == 201, r
    wait_readyz(srv, lambda r: r.status == 503, what="/readyz 503 after the last number")
    text, js = check("number range exhausted (/readyz 503)", "HTTP_NOT_READY", srv.base_url,
                     "--cacert", srv.ca_cert, phase="http")
    assert "number_range" in js.doc["verdict"]["message"], js.doc["verdict"]


@covers("STORE_FAILSTOP")
def test_store_failstop_named(make_server):
    """The real server, its database file deleted while it serves: the store
    fail-stops (docs/storage.md) and /readyz says 503 {"status": "failstop",
    "failstop": "file_replaced"}; the doctor names that, not a generic not-ready."""
    probe = ["--probe-interval-ms", "200"] if serve_flag("--probe-interval-ms") else []
    srv = make_server(serve_args=probe)
    assert srv.issue("doctor-failstop-1").status == 201
    os.unlink(str(srv.db_path))
    wait_readyz(srv, lambda r: r.status == 503 and b'"failstop"' in r.body,
                what="/readyz fail-stop after the database file was deleted")
    text, js = check("store fail-stop (database file deleted while serving)", "STORE_FAILSTOP",
                     srv.base_url, "--cacert", srv.ca_cert, phase="http")
    assert "file_replaced" in js.doc["verdict"]["message"], js.doc["verdict"]


@covers("NUMBER_RANGE_LOW")
def test_number_range_low_is_a_warning(make_server):
    srv = make_server(serve_args=["--range-warn", "100000000"])
    wait_readyz(srv, lambda r: b'"warning":true' in r.body, what="/readyz warning")
    check("number range running low", "OK", srv.base_url, "--cacert", srv.ca_cert,
          warning="NUMBER_RANGE_LOW", phase="http")


@covers("HTTP_DEGRADED")
@pytest.mark.skipif(not serve_flag("--min-free-mb"),
                    reason="needs issue 5 degraded mode (fapiao serve --min-free-mb)")
def test_degraded_real_server(make_server):
    """A free-disk threshold no disk meets: the real server degrades, and
    /readyz says 503 {"status": "degraded", "checks": [...]}."""
    srv = make_server(start=False, serve_args=["--min-free-mb", "1000000",
                                                "--probe-interval-ms", "200"])
    st = os.statvfs(srv.data_dir)
    if st.f_bavail * st.f_frsize >= 1000000 * 2**20:
        pytest.skip("the disk has more than --min-free-mb's maximum (1 TB) free")
    srv.start()
    wait_readyz(srv, lambda r: r.status == 503 and b"degraded" in r.body,
                what="/readyz degraded")
    check("server degraded (real fapiao, disk below --min-free-mb)", "HTTP_DEGRADED",
          srv.base_url, "--cacert", srv.ca_cert, phase="http")


@covers("HTTP_DEGRADED")
def test_degraded_readyz(pki, fake_fapiao):
    s = fake_fapiao("degraded_readyz")
    text, js = check("server degraded (/readyz status degraded)", "HTTP_DEGRADED", s.base_url,
                     "--cacert", pki.root_cert, phase="http")
    assert "disk" in js.doc["verdict"]["message"] and "7" in js.doc["verdict"]["message"], js


@covers("HTTP_DEGRADED")
def test_degraded_problem(pki, fake_fapiao):
    s = fake_fapiao("degraded")
    text, js = check("server degraded (503 DEGRADED problem)", "HTTP_DEGRADED", s.base_url,
                     "--cacert", pki.root_cert, phase="http")
    assert "Retry-After: 7" in js.doc["verdict"]["message"], js.doc["verdict"]


@covers("HTTP_RATE_LIMITED")
@pytest.mark.skipif(not serve_flag("--client-rate"),
                    reason="needs issue 5 rate limiting (fapiao serve --client-rate)")
def test_rate_limited_real_server(make_server):
    """One request per minute per credential, no burst: after the test's
    own requests, the doctor's get 429 with a Retry-After.  Per minute, not
    per second: the doctor runs three times (text, JSON, curl), and on a
    loaded machine that took over a second, long enough for a refill to let
    it through."""
    burst = ["--client-burst", "1"] if serve_flag("--client-burst") else []
    srv = make_server(serve_args=["--client-rate", "1/min"] + burst)
    for _ in range(3):
        srv.get_token_response()
    check("rate limited (real fapiao, 429)", "HTTP_RATE_LIMITED", srv.base_url,
          "--cacert", srv.ca_cert, "--client-id", srv.client_id,
          "--client-secret", srv.client_secret, phase="api")


@covers("HTTP_RATE_LIMITED")
def test_rate_limited(pki, fake_fapiao):
    s = fake_fapiao("rate_limited")
    text, js = check("rate limited (429 RATE_LIMITED)", "HTTP_RATE_LIMITED", s.base_url,
                     "--cacert", pki.root_cert, phase="http")
    msg = js.doc["verdict"]["message"]
    assert "Retry-After: 7" in msg and "Too many requests" in msg, msg
    http = js.doc["phases"][4]["details"]
    assert http["problem_code"] == "RATE_LIMITED" and http["retry_after"] == "7", http


@covers("HTTP_SERVER_ERROR")
def test_bad_gateway(pki, fake_fapiao):
    """A reverse proxy whose fapiao behind it is down answers 502."""
    s = fake_fapiao("bad_gateway")
    check("reverse proxy answers 502 (backend down)", "HTTP_SERVER_ERROR", s.base_url,
          "--cacert", pki.root_cert, phase="http")


@covers("HTTP_REDIRECT")
def test_redirect_is_a_warning(pki, fake_fapiao):
    s = fake_fapiao("redirect")
    text, js = check("/readyz redirects elsewhere (301)", "OK", s.base_url,
                     "--cacert", pki.root_cert, warning="HTTP_REDIRECT", phase="http")
    assert "elsewhere.example" in text.out, text
