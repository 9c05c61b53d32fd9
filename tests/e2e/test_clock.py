"""The issue clock against the real binary (issue 12, storage item 7;
docs/operations.md, "Clock"): the server runs under libfaketime with its
clock read from a file the test rewrites, so the clock can step back across
New Year and jump ahead while the server runs.  No invoice dated or
numbered 2026 may follow a 2027 one; a large step back answers 503
CLOCK_BEHIND, a jump 503 CLOCK_JUMPED until `fapiao clock confirm`; `audit
verify` reports the audit record written by the stepped-back clock.

faketime works by LD_PRELOAD, which an ASan build refuses: skipped under
FAPIAO_SANITIZED=1 (the unit test test_clock covers the store logic)."""
import glob
import json
import subprocess
import time

import pytest

from conftest import BIN, SANITIZED, SLOW, assert_problem

NEW_YEAR = 1798732800  # 2027-01-01T00:00:00+08:00


def _libfaketime():
    if SANITIZED:
        pytest.skip("faketime works by LD_PRELOAD, which an ASan build refuses "
                    "(FAPIAO_SANITIZED=1)")
    libs = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not libs:
        pytest.skip("libfaketime is not installed (Debian package libfaketime)")
    return libs[0]


def test_clock_steps_back_across_new_year(make_server, tmp_path, monkeypatch):
    lib = _libfaketime()
    srv = make_server(start=False)
    r = subprocess.run([BIN, "ranges", "import", "--data-dir", str(srv.data_dir), "--prefix",
                        "27440", "--first", "1", "--last", "1000"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr

    spec = tmp_path / "faketime.spec"

    def set_clock(target):
        """From now on (within the cache second) the server reads target."""
        spec.write_text("%+ds\n" % int(target - time.time()))
        time.sleep(0.2)  # FAKETIME_NO_CACHE: read at every call

    spec.write_text("%+ds\n" % int(NEW_YEAR + 5 - time.time()))
    fake_env = {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": str(spec),
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    for k, v in fake_env.items():
        monkeypatch.setenv(k, v)
    srv.start()

    a = srv.issue("ny-a")
    assert a.status == 201, a
    a_doc = a.json()
    assert a_doc["number"].startswith("27"), a_doc["number"]
    assert a_doc["issued_at"].startswith("2027-01-01T00:00"), a_doc["issued_at"]

    # an NTP-sized step back across New Year: issued at the mark, still 2027
    set_clock(NEW_YEAR - 30)
    b = srv.issue("ny-b")
    assert b.status == 201, b
    b_doc = b.json()
    assert b_doc["number"].startswith("27"), b_doc
    assert b_doc["issued_at"] >= a_doc["issued_at"], (a_doc["issued_at"], b_doc["issued_at"])
    assert b_doc["issued_at"].startswith("2027-01-01"), b_doc["issued_at"]

    # an hour back: refused, named, logged at the highest severity
    set_clock(NEW_YEAR - 3600)
    c = srv.issue("ny-c")
    p = assert_problem(c, 503, "CLOCK_BEHIND")
    assert int(c.header("Retry-After")) >= 1
    assert "2027-01-01" in p["message_en"] and "2026-12-31" in p["message_en"], p
    bad = srv.request("GET", "/v1/invoices", auth="not-a-token")  # audited at the clock
    assert bad.status == 401
    deadline = time.monotonic() + 10 * SLOW
    while '"clock_behind","severity":"critical"' not in srv.log_text():
        assert time.monotonic() < deadline, srv.log_tail()
        time.sleep(0.1)

    # the clock passes the mark again
    set_clock(NEW_YEAR + 60)
    d = srv.issue("ny-d")
    assert d.status == 201, d
    assert d.json()["number"].startswith("27")

    # a jump of three days: refused until an operator confirms
    jumped = NEW_YEAR + 60 + 3 * 86400
    set_clock(jumped)
    srv._token = None  # the old token expired in the jump
    e = srv.issue("ny-e")
    assert_problem(e, 503, "CLOCK_JUMPED")
    assert '"clock_jumped","severity":"critical"' in srv.log_text()
    conf = subprocess.run([BIN, "clock", "confirm", "--data-dir", str(srv.data_dir)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
    assert conf.returncode == 0, conf.stderr
    e = srv.issue("ny-e")
    assert e.status == 201, e
    assert e.json()["issued_at"].startswith("2027-01-04"), e.json()["issued_at"]
    assert srv.stop() == 0

    for k in fake_env:
        monkeypatch.delenv(k)
    rows = srv.db_query("SELECT number, issued_at FROM invoices ORDER BY rowid")
    assert len(rows) == 4, rows
    for (n1, t1), (n2, t2) in zip(rows, rows[1:]):
        assert t2 >= t1, rows
        assert n2[:2] >= n1[:2], rows  # no 2026 number after a 2027 one
    assert all(n.startswith("27") for n, _ in rows), rows
    assert srv.db_query("SELECT count(*) FROM audit WHERE action='clock.confirm'")[0][0] == 1

    # the authentication failure was audited by the clock an hour back
    v = subprocess.run([BIN, "audit", "verify", "--data-dir", str(srv.data_dir), "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
    assert v.returncode == 4, (v.returncode, v.stdout, v.stderr)
    rep = json.loads(v.stdout)
    assert rep["intact"] is True
    assert rep["timestamps_backwards"]["records"] >= 1, rep
    assert rep["timestamps_backwards"]["invoices"] == 0, rep
