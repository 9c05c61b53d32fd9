"""GET /v1/invoices: filters (serial, buyer tax id, date range) and cursor
pagination over HTTPS."""
import datetime
import json

from conftest import assert_problem, dumps, example_doc

# Two valid buyers (USCC check characters are right).
BUYER_A = "91350200MA2YJ1XR9G"
BUYER_B = "91440300MA5FDEMX19"


def issue_for(server, key, tax_id):
    doc = example_doc()
    doc["buyer"]["tax_id"] = tax_id
    r = server.issue(key, body=dumps(doc))
    assert r.status == 201, r
    return r.json()["number"]


def listing(server, query):
    r = server.request("GET", "/v1/invoices?" + query)
    assert r.status == 200, r
    return r.json()


def test_pages_filters_and_dates(server):
    numbers_a = [issue_for(server, "list-a-%d" % i, BUYER_A) for i in range(5)]
    numbers_b = [issue_for(server, "list-b-%d" % i, BUYER_B) for i in range(2)]

    # walk buyer A two at a time: every invoice once, in number order, then the end
    seen, cursor, pages = [], None, 0
    while True:
        q = "buyer_tax_id=%s&limit=2" % BUYER_A + ("&cursor=" + cursor if cursor else "")
        page = listing(server, q)
        pages += 1
        assert len(page["invoices"]) <= 2
        seen += [d["number"] for d in page["invoices"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == numbers_a
    assert pages == 3
    assert all(d["buyer"]["tax_id"] == BUYER_A for d in listing(server, "buyer_tax_id=" + BUYER_A)["invoices"])

    # by serial: exactly that invoice, the same document as GET by number
    one = listing(server, "serial=list-b-1")
    assert [d["number"] for d in one["invoices"]] == [numbers_b[1]]
    direct = server.request("GET", "/v1/invoices/" + numbers_b[1])
    # the same document; only its status may move on in between (the
    # outbox renders the PDF meanwhile: accepted -> rendered -> ...)
    got, listed = json.loads(direct.body), dict(one["invoices"][0])
    order = ["accepted", "rendered", "delivered", "confirmed"]
    assert order.index(got.pop("status")) >= order.index(listed.pop("status"))
    assert got == listed

    # dates are China Standard Time days; today holds them all, yesterday none
    today = (datetime.datetime.utcnow() + datetime.timedelta(hours=8)).date()
    yday = today - datetime.timedelta(days=1)
    all_today = listing(server, "from=%s&to=%s&limit=200" % (today, today))
    got = {d["number"] for d in all_today["invoices"]}
    assert set(numbers_a + numbers_b) <= got
    assert listing(server, "from=%s&to=%s" % (yday, yday))["invoices"] == []
    assert listing(server, "to=%s" % yday)["invoices"] == []


def test_bad_query_parameters(server):
    for query, field in [("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"),
                         ("from=2026-13-01", "from"), ("to=2026-02-30", "to"),
                         ("cursor=abc", "cursor"), ("colour=red", "colour")]:
        r = server.request("GET", "/v1/invoices?" + query)
        code = "UNKNOWN_FIELD" if field == "colour" else "INVALID_FIELD"
        assert_problem(r, 400, code, field=field)


def test_listing_needs_a_token(server):
    r = server.request("GET", "/v1/invoices?limit=1", auth=False)
    assert_problem(r, 401, "UNAUTHENTICATED")
