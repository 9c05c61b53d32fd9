"""Issue 19, the audit-verification alert (docs/alerting.md "Audit
verification"): `fapiao serve` verifies its own audit chain every
--audit-verify-interval seconds on one of its store's read connections, from
the last checkpoint it verified, and exposes the result.  A record changed
behind the server's back (as tests/e2e/test_audit.py's tampering does)
turns fapiao_audit_verify_last_ok to 0 and counts a failure, which is what
FapiaoAuditVerifyFailed fires on."""
import re
import sqlite3
import time

from conftest import SLOW


def metric(srv, name):
    text = srv.request("GET", "/metrics", auth=False).body.decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def wait_for(cond, what, srv):
    deadline = time.monotonic() + 60 * SLOW
    for _ in range(3000):
        if cond():
            return
        assert time.monotonic() < deadline, "%s: %s" % (what, srv.log_tail())
        time.sleep(0.1)
    raise AssertionError(what)


def test_a_changed_record_flips_the_metric(make_server):
    srv = make_server(serve_args=["--audit-verify-interval", "1"])
    for i in range(3):
        r = srv.issue("audit-watch-%d" % i)
        assert r.status == 201, r
    runs = metric(srv, "fapiao_audit_verify_runs_total")
    assert runs is not None, "no fapiao_audit_verify_runs_total"
    # a run that saw the new records, intact
    wait_for(lambda: metric(srv, "fapiao_audit_verify_runs_total") >= runs + 2,
             "two more verification runs", srv)
    assert metric(srv, "fapiao_audit_verify_last_ok") == 1
    assert metric(srv, "fapiao_audit_verify_failures_total") == 0
    # one byte of the newest record, behind the server's back
    con = sqlite3.connect(str(srv.db_path), timeout=30)
    try:
        with con:
            con.execute("UPDATE audit SET outcome = outcome || 'X' "
                        "WHERE id = (SELECT max(id) FROM audit)")
    finally:
        con.close()
    wait_for(lambda: metric(srv, "fapiao_audit_verify_last_ok") == 0,
             "fapiao_audit_verify_last_ok to become 0", srv)
    assert metric(srv, "fapiao_audit_verify_failures_total") >= 1
    assert "audit log verification failed" in srv.log_text()
    assert "审计日志校验失败" in srv.log_text()


def test_off_with_interval_zero(make_server):
    """--audit-verify-interval 0 turns the check off: no families."""
    srv = make_server(serve_args=["--audit-verify-interval", "0"])
    assert metric(srv, "fapiao_audit_verify_runs_total") is None
