"""Degraded mode against the real binary, with the test-only fault injection
(`serve --fault-injection`, POST /v1/_faults): failing store writes open the
store's circuit breaker, writes get 503 DEGRADED with Retry-After and the
reason, /readyz names the failing checks, reads go on; once the fault is
removed the service recovers by itself, and /metrics shows every step."""
import re
import time

from conftest import SLOW, assert_problem

FAULT_ARGS = ["--fault-injection", "--probe-interval-ms", "500"]


def faults(srv, **f):
    r = srv.post_json("/v1/_faults", f)
    assert r.status == 200, r
    return r.json()


def metrics(srv):
    text = srv.request("GET", "/metrics", auth=False).body.decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def readyz(srv):
    r = srv.request("GET", "/readyz", auth=False)
    return r, {c["name"]: c for c in r.json()["checks"]}


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def test_store_failure_degrades_and_recovers(make_server):
    srv = make_server(serve_args=FAULT_ARGS)
    ok = srv.issue("deg-before")
    assert ok.status == 201, ok
    number = ok.json()["number"]
    m = metrics(srv)
    assert m["fapiao_degraded"] == 0 and m["fapiao_store_breaker_state"] == 0
    r, checks = readyz(srv)
    assert r.status == 200 and checks["database_write"]["ok"] is True, r

    assert faults(srv, store_write="fail")["store_write"] == "fail"
    # writes fail; nothing else than 503 DEGRADED comes back, each with a
    # Retry-After; the breaker opens after a few failures
    statuses = []
    for i in range(12):
        x = srv.issue("deg-during-%d" % i)
        statuses.append(x.status)
        assert_problem(x, 503, "DEGRADED")
        assert int(x.header("Retry-After")) >= 1, x
    assert set(statuses) == {503}

    def breaker_open():
        m = metrics(srv)
        return m["fapiao_degraded"] == 1 and m["fapiao_store_breaker_state"] in (1, 2) and m
    m = wait_for(breaker_open, 10 * SLOW, "the store breaker to open")
    assert m["fapiao_store_breaker_opened_total"] >= 1
    assert m['fapiao_health_check_ok{check="store_breaker"}'] == 0

    refused = srv.issue("deg-refused")
    assert_problem(refused, 503, "DEGRADED")
    body = refused.json()
    assert "breaker" in body["message_en"], body
    assert body["message_zh"].startswith("服务降级") and "熔断" in body["message_zh"], body
    assert 1 <= int(refused.header("Retry-After")) <= 60

    r, checks = readyz(srv)
    assert r.status == 503 and r.json()["status"] == "degraded", r
    assert checks["store_breaker"]["ok"] is False
    assert checks["database_write"]["ok"] is False
    assert r.header("Retry-After")

    # reads keep working; other writes are refused too
    g = srv.request("GET", "/v1/invoices/" + number)
    assert g.status == 200 and g.json()["number"] == number
    assert_problem(srv.request("POST", "/v1/invoices/%s/ack" % number), 503, "DEGRADED")
    assert srv.request("GET", "/v1/invoices?serial=deg-before").status == 200
    # nothing was stored while failing
    assert srv.db_query("SELECT count(*) FROM invoices")[0][0] == 1

    # the fault goes away: recovery without a restart
    faults(srv, store_write="ok")
    wait_for(lambda: readyz(srv)[0].status == 200, 15 * SLOW, "/readyz 200 again")
    after = srv.issue("deg-after")
    assert after.status == 201, after
    m = metrics(srv)
    assert m["fapiao_degraded"] == 0 and m["fapiao_store_breaker_state"] == 0
    assert m["fapiao_degraded_total"] == 1
    log = srv.log_text()
    assert '"event":"degraded"' in log and '"event":"recovered"' in log
    assert re.search(r'"breaker":"store","from":"closed","to":"open"', log)
    assert re.search(r'"breaker":"store","from":"half_open","to":"closed"', log)


def test_slow_fsync_is_visible_and_answers_wait(make_server):
    srv = make_server(serve_args=FAULT_ARGS)
    faults(srv, fsync_delay_ms=300)
    t0 = time.monotonic()
    r = srv.issue("slow-fsync-1")
    took = time.monotonic() - t0
    assert r.status == 201 and took >= 0.3, (r, took)
    faults(srv, fsync_delay_ms=0)
    assert srv.issue("slow-fsync-2").status == 201


def test_render_fault_marks_failed(make_server):
    srv = make_server(serve_args=FAULT_ARGS + ["--retry-backoff-ms", "50"])
    faults(srv, render="fail")
    number = srv.issue("render-fault-1").json()["number"]
    wait_for(lambda: srv.request("GET", "/v1/invoices/" + number).json()["status"] == "failed",
             20 * SLOW, "render to fail")
    inv = srv.request("GET", "/v1/invoices/" + number).json()
    assert "injected fault: render" in inv["failure"]
    faults(srv, render="ok")


def test_faults_route_needs_the_flag(server):
    assert_problem(server.post_json("/v1/_faults", {"store_write": "fail"}), 404, "NOT_FOUND")
    assert_problem(server.request("GET", "/v1/_faults"), 404, "NOT_FOUND")
    assert server.issue("no-fault-flag").status == 201


def test_faults_input_checked(make_server):
    srv = make_server(serve_args=FAULT_ARGS)
    assert_problem(srv.post_json("/v1/_faults", {"store_write": "maybe"}), 400, "INVALID_FIELD")
    assert_problem(srv.post_json("/v1/_faults", {"nope": 1}), 400, "UNKNOWN_FIELD")
    assert_problem(srv.post_json("/v1/_faults", [1]), 400, "FIELD_TYPE")
    assert srv.request("GET", "/v1/_faults").json()["store_write"] == "ok"
    assert srv.issue("faults-input").status == 201
