"""Number ranges seen from outside: numbers are the range's sequence in
order; an exhausted range answers 503 NUMBER_RANGE_EXHAUSTED (retryable,
bilingual) while earlier keys still replay; /readyz and /metrics report the
exhaustion; nothing changes across a restart (no number is invented), and
numbers continue consecutively across a restart.

The installations are made with `fapiao init --demo-range-size N`."""
import re

from conftest import as_issued, assert_problem, dumps, example_doc

NUMBER_RE = re.compile(r"^[0-9]{20}$")


def ranged_server(make_server, size):
    return make_server(init_args=["--demo-range-size", str(size)])


def issue_number(server, key):
    r = server.issue(key)
    assert r.status == 201, r
    assert r.header("Idempotent-Replayed") in (None, "false"), "fresh key answered as replay"
    number = r.json()["number"]
    assert NUMBER_RE.match(number), number
    assert r.header("Location") == "/v1/invoices/" + number
    return number, r


def assert_sequence(numbers, first=1):
    """Same 5-digit prefix, 15-digit sequence first, first+1, ..."""
    prefixes = {n[:5] for n in numbers}
    assert len(prefixes) == 1, "prefix changed within one range: %r" % numbers
    assert [n[5:] for n in numbers] == ["%015d" % (first + i) for i in range(len(numbers))], numbers


def readyz(server):
    r = server.request("GET", "/readyz", auth=False)
    assert r.content_type == "application/json", r
    doc = r.json()
    checks = {c["name"]: c for c in doc["checks"]}
    return r, doc, checks


def metric(server, name):
    m = server.request("GET", "/metrics", auth=False)
    assert m.status == 200, m
    for line in m.body.decode("utf-8").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("metric %s missing:\n%s" % (name, m.body.decode("utf-8")[:2000]))


def assert_exhausted_state(server, issued, round_name):
    """The range of 3 is used up: the state every observer must see."""
    fresh = server.issue("range-fresh-%s" % round_name)
    p = assert_problem(fresh, 503, "NUMBER_RANGE_EXHAUSTED")
    retry = fresh.header("Retry-After")
    assert retry is not None and retry.strip().isdigit(), "Retry-After %r" % retry
    assert re.search(r"[\u4e00-\u9fff]", p["message_zh"]), p["message_zh"]
    assert re.search(r"[A-Za-z]", p["message_en"]) and p["message_en"] != p["message_zh"], p
    assert "Idempotent-Replayed" not in fresh.headers or fresh.header("Idempotent-Replayed") == "false"

    # earlier keys still replay, byte for byte
    for key, (number, first) in issued.items():
        again = server.issue(key)
        assert again.status == 201, again
        assert again.header("Idempotent-Replayed") == "true", again
        assert again.body == first.body, "replay of %s differs" % key
        assert again.header("Location") == "/v1/invoices/" + number
        g = server.request("GET", "/v1/invoices/" + number)
        assert g.status == 200 and as_issued(g.body) == first.body, g

    r, doc, checks = readyz(server)
    assert r.status == 503, r
    assert doc["status"] == "not_ready", doc
    assert checks["number_range"]["ok"] is False, doc
    assert checks["number_range"]["remaining"] == 0, doc
    assert checks["database"]["ok"] is True, doc
    assert r.header("Retry-After"), "readyz 503 without Retry-After"

    assert metric(server, "fapiao_numbers_remaining") == 0

    # nothing was invented: exactly the three invoices, the range used up
    assert server.db_query("SELECT count(*) FROM invoices")[0][0] == 3
    assert server.db_query("SELECT sum(last - next + 1) FROM number_ranges")[0][0] == 0
    assert sorted(r[0] for r in server.db_query("SELECT number FROM invoices")) == \
        sorted(n for n, _ in issued.values())


def test_range_of_three_exhausts_and_stays_exhausted(make_server):
    server = ranged_server(make_server, 3)

    r, doc, checks = readyz(server)
    assert r.status == 200, r
    assert checks["number_range"]["ok"] is True and checks["number_range"]["remaining"] == 3, doc
    assert metric(server, "fapiao_numbers_remaining") == 3

    issued = {}
    for i in range(3):
        key = "range-%d" % i
        issued[key] = issue_number(server, key)
        assert metric(server, "fapiao_numbers_remaining") == 2 - i
    numbers = [issued["range-%d" % i][0] for i in range(3)]
    assert_sequence(numbers, first=1)
    assert [n[-3:] for n in numbers] == ["001", "002", "003"]

    assert_exhausted_state(server, issued, "a")
    # a key that was refused for exhaustion is still refused (not stored, no number)
    assert_problem(server.issue("range-fresh-a"), 503, "NUMBER_RANGE_EXHAUSTED")

    rc = server.stop()
    assert rc == 0, "SIGTERM exit status %r" % rc
    server.start()
    assert_exhausted_state(server, issued, "b")
    assert_problem(server.issue("range-fresh-a"), 503, "NUMBER_RANGE_EXHAUSTED")
    # a reused key with another body is still refused as reuse, not as exhaustion
    doc = example_doc()
    doc["drawer"] = "李四"
    assert_problem(server.issue("range-0", body=dumps(doc)), 422, "IDEMPOTENCY_KEY_REUSED")


def test_numbers_continue_across_restart(make_server):
    server = ranged_server(make_server, 5)
    first = [issue_number(server, "cont-%d" % i)[0] for i in range(2)]
    assert server.db_query("SELECT next FROM number_ranges")[0][0] == 3

    rc = server.stop()
    assert rc == 0, "SIGTERM exit status %r" % rc
    server.start()

    _, doc, checks = readyz(server)
    assert checks["number_range"]["remaining"] == 3, doc
    second = [issue_number(server, "cont-%d" % i)[0] for i in range(2, 4)]
    assert_sequence(first + second, first=1)
    assert [n[-3:] for n in first + second] == ["001", "002", "003", "004"]

    r, doc, checks = readyz(server)
    assert r.status == 200, r
    assert checks["number_range"]["ok"] is True and checks["number_range"]["remaining"] == 1, doc
    assert metric(server, "fapiao_numbers_remaining") == 1
    assert server.db_query("SELECT count(*) FROM invoices")[0][0] == 4
    assert server.db_query("SELECT next FROM number_ranges")[0][0] == 5
