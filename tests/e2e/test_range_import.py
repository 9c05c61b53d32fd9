"""`fapiao ranges import|list` beside a running server, and the /readyz
warning before a range runs out."""
import json
import subprocess

from conftest import BIN, SLOW, assert_problem


def ranges(server, *args):
    return subprocess.run([BIN, "ranges"] + list(args) + ["--data-dir", str(server.data_dir)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30 * SLOW)


def number_range_check(server):
    r = server.request("GET", "/readyz", auth=False)
    return r.status, [c for c in r.json()["checks"] if c["name"] == "number_range"][0]


def test_import_while_serving_and_warning(make_server):
    srv = make_server(serve_args=["--range-warn", "5"], init_args=["--demo-range-size", "3"])
    status, check = number_range_check(srv)
    assert status == 200 and check["remaining"] == 3 and check["warning"] is True
    for i in range(3):
        assert srv.issue("imp-%d" % i).status == 201
    assert_problem(srv.issue("imp-3"), 503, "NUMBER_RANGE_EXHAUSTED")

    # the operator imports the next range while the server runs
    prefix = srv.request("GET", "/v1/invoices?serial=imp-0").json()["invoices"][0]["number"][:5]
    r = ranges(srv, "import", "--prefix", prefix, "--first", "1000", "--last", "1009")
    assert r.returncode == 0, r.stderr
    again = srv.issue("imp-3")  # the refused key now gets the new range's first number
    assert again.status == 201, again
    assert again.json()["number"] == prefix + "%015d" % 1000
    status, check = number_range_check(srv)
    assert status == 200 and check["remaining"] == 9 and check["warning"] is False

    # overlapping or malformed ranges are refused and change nothing
    bad = ranges(srv, "import", "--prefix", prefix, "--first", "1005", "--last", "2000")
    assert bad.returncode == 1 and b"overlaps" in bad.stderr
    bad = ranges(srv, "import", "--prefix", "26A40", "--first", "1", "--last", "2")
    assert bad.returncode == 1
    listed = [json.loads(l) for l in ranges(srv, "list", "--json").stdout.splitlines()]
    assert [(x["first"], x["last"], x["remaining"]) for x in listed] == [(1, 3, 0), (1000, 1009, 9)]
    m = srv.request("GET", "/metrics", auth=False).body.decode()
    assert "fapiao_numbers_remaining 9" in m
    assert "fapiao_numbers_warning_threshold 5" in m


def test_import_usage_errors(server):
    assert ranges(server, "import").returncode == 2
    r = subprocess.run([BIN, "ranges", "frobnicate"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 2


def test_numbers_only_from_this_years_ranges(make_server, monkeypatch):
    """A number is valid only in its prefix year: after new year the old
    range is not used, even with numbers left (FP_TEST_YEAR moves the
    server's clock year; nothing else in the server reads it)."""
    srv = make_server(start=False)
    monkeypatch.setenv("FP_TEST_YEAR", "99")
    srv.start()
    status, check = number_range_check(srv)
    assert status == 503 and check["remaining"] == 0
    assert_problem(srv.issue("year-1"), 503, "NUMBER_RANGE_EXHAUSTED")
    # a range for year 99 makes it usable again
    r = ranges(srv, "import", "--prefix", "99440", "--first", "1", "--last", "5")
    assert r.returncode == 0, r.stderr
    ok = srv.issue("year-1")
    assert ok.status == 201 and ok.json()["number"] == "99440" + "%015d" % 1
