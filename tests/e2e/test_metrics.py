"""/metrics of the real server after real traffic: Prometheus text format
that `promtool check metrics` (Debian's prometheus package) accepts, with
the families issue 5 asks for, and values that follow the traffic."""
import re
import subprocess

import pytest

from conftest import SLOW


def scrape(srv):
    r = srv.request("GET", "/metrics", auth=False)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r
    return r.body.decode()


def value(text, series):
    m = re.search(r"^%s (\S+)$" % re.escape(series), text, re.M)
    return float(m.group(1)) if m else None


def test_promtool_accepts_metrics_after_traffic(make_server):
    srv = make_server(serve_args=["--fault-injection"])
    for i in range(5):
        assert srv.issue("metrics-%d" % i).status == 201
    assert srv.issue("metrics-0", body=b"{").status == 400
    assert srv.request("GET", "/nope").status == 404
    text = scrape(srv)
    out = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                         capture_output=True, timeout=60 * SLOW)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), \
        (out.stdout + out.stderr).decode()

    for family in ("fapiao_http_requests_total", "fapiao_http_request_duration_seconds_bucket",
                   "fapiao_http_inflight_requests", "fapiao_http_connections",
                   "fapiao_admission_refused_total", "fapiao_store_commit_batch_size_bucket",
                   "fapiao_store_commit_duration_seconds_bucket", "fapiao_store_queue_depth",
                   "fapiao_outbox_jobs", "fapiao_numbers_remaining",
                   "fapiao_certificate_expiry_timestamp_seconds", "fapiao_degraded",
                   "fapiao_store_breaker_state", "fapiao_health_check_ok",
                   "process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_open_fds"):
        assert re.search(r"^%s[ {]" % family, text, re.M), "no %s in /metrics" % family

    post = 'method="POST",route="/v1/invoices"'
    assert value(text, 'fapiao_http_requests_total{%s,code="2xx"}' % post) == 5
    assert value(text, 'fapiao_http_requests_total{%s,code="4xx"}' % post) == 1
    assert value(text, 'fapiao_http_request_duration_seconds_count{%s}' % post) == 6
    assert value(text, 'fapiao_http_requests_total{method="any",route="unmatched",code="4xx"}') == 1
    assert value(text, "fapiao_store_commit_batch_size_count") >= 5
    assert value(text, 'fapiao_store_commit_batch_size_bucket{le="+Inf"}') == \
        value(text, "fapiao_store_commit_batch_size_count")
    # this scrape is itself in flight, on an open connection
    assert value(text, "fapiao_http_inflight_requests") >= 1
    assert value(text, "fapiao_http_connections") >= 1
    assert value(text, "process_open_fds") > 5


@pytest.mark.parametrize("n", [3])
def test_counters_only_grow(server, n):
    before = value(scrape(server), "fapiao_http_connections_total")
    for i in range(n):
        server.request("GET", "/healthz", auth=False)
    after = value(scrape(server), "fapiao_http_connections_total")
    assert after >= before + n


def test_every_answer_is_counted_before_the_client_has_it(make_server):
    """A request is in fapiao_http_requests_total by the time its client has
    the answer: a scrape on another connection right after each answer sees
    the exact count (it used to be counted after the last byte was sent,
    so a quick scrape could miss the request before it)."""
    srv = make_server()
    a, b = srv.connection(), srv.connection()
    series = {404: 'fapiao_http_requests_total{method="any",route="unmatched",code="4xx"}',
              200: 'fapiao_http_requests_total{method="GET",route="/healthz",code="2xx"}'}
    try:
        before = {k: value(srv.request("GET", "/metrics", auth=False, conn=b).body.decode(), v)
                  or 0 for k, v in series.items()}
        for i in range(1, 401):
            path, status = ("/nope", 404) if i % 2 else ("/healthz", 200)
            assert srv.request("GET", path, auth=False, conn=a).status == status
            text = srv.request("GET", "/metrics", auth=False, conn=b).body.decode()
            want = {404: (i + 1) // 2, 200: i // 2}
            for k, v in series.items():
                assert value(text, v) == before[k] + want[k], (i, v, value(text, v))
    finally:
        a.close()
        b.close()
