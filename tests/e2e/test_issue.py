"""Issuing invoices: the 201, reading back, idempotent replay (also across a
restart), key reuse, missing/invalid keys and concurrent requests with one key."""
import os
import re
import stat
import subprocess
import threading
import time

import pytest

from conftest import (BIN, as_issued, EXAMPLE_BODY, SLOW, assert_problem, dumps, example_doc, scaled)

NUMBER_RE = re.compile(r"^[0-9]{20}$")


def distinct_body(**changes):
    doc = example_doc()
    doc.update(changes)
    return dumps(doc)


def assert_issued(r, key):
    assert r.status == 201, r
    assert r.content_type == "application/json", r.content_type
    doc = r.json()
    assert NUMBER_RE.match(doc.get("number", "")), doc.get("number")
    assert doc["serial"] == key
    assert doc["status"] == "accepted"
    assert doc["color"] == "blue"
    assert doc["invoice_type"] == "02"
    assert r.header("Location") == "/v1/invoices/" + doc["number"]
    assert r.header("X-Request-Id")
    return doc


def test_issue_returns_201_with_computed_totals(server):
    r = server.issue("issue-totals-1")
    doc = assert_issued(r, "issue-totals-1")
    assert r.header("Idempotent-Replayed") in (None, "false"), "first issue marked as replay"
    assert doc["total_amount"] == "900.00"
    assert doc["total_tax"] == "54.00"
    assert doc["total_with_tax"] == "954.00"
    assert doc["total_with_tax_words"] == "玖佰伍拾肆圆整"
    assert isinstance(doc["items"], list) and doc["items"], doc["items"]
    first = doc["items"][0]
    assert first["line"] == 1
    assert first["amount"] == "1000.00"
    assert first["tax_rate"] == "0.06"
    assert first["tax"] == "60.00"
    assert first["amount_with_tax"] == "1060.00"
    assert doc["buyer"]["tax_id"] == "91350200MA2YJ1XR9G"
    assert doc["links"]["self"] == "/v1/invoices/" + doc["number"]


def test_read_back_by_number_and_serial(server):
    key = "issue-read-1"
    r = server.issue(key)
    doc = assert_issued(r, key)

    g = server.request("GET", "/v1/invoices/" + doc["number"])
    assert g.status == 200, g
    assert g.content_type == "application/json"
    assert as_issued(g.body) == r.body, "GET by number differs from the 201 body"

    s = server.request("GET", "/v1/invoices?serial=" + key)
    assert s.status == 200, s
    lst = s.json()
    assert lst["next_cursor"] is None
    # the outbox may have moved the status on (rendered ...) meanwhile
    assert lst["invoices"][0]["status"] in ("accepted", "rendered")
    assert [dict(i, status="accepted") for i in lst["invoices"]] == [doc]

    none = server.request("GET", "/v1/invoices?serial=never-used-key")
    assert none.status == 200, none
    assert none.json()["invoices"] == []


def test_unknown_number_is_404(server):
    r = server.request("GET", "/v1/invoices/99999999999999999999")
    assert_problem(r, 404, "NOT_FOUND")


def test_distinct_keys_get_distinct_numbers(server):
    numbers = set()
    for i in range(5):
        numbers.add(assert_issued(server.issue("issue-distinct-%d" % i), "issue-distinct-%d" % i)["number"])
    assert len(numbers) == 5


def test_replay_is_byte_identical_with_header(server):
    key = "issue-replay-1"
    first = server.issue(key)
    doc = assert_issued(first, key)
    assert first.header("Idempotent-Replayed") in (None, "false")

    again = server.issue(key)
    assert again.status == 201, again
    assert again.header("Idempotent-Replayed") == "true"
    assert again.body == first.body, "replay body is not byte-identical"
    assert again.header("Location") == "/v1/invoices/" + doc["number"]

    # still exactly one invoice with that serial
    s = server.request("GET", "/v1/invoices?serial=" + key).json()
    assert [d["number"] for d in s["invoices"]] == [doc["number"]]


def test_replay_after_restart(server):
    key = "issue-restart-1"
    first = server.issue(key)
    doc = assert_issued(first, key)

    rc = server.stop()
    assert rc == 0, "SIGTERM exit status %r" % rc
    server.start()

    again = server.issue(key)
    assert again.status == 201, again
    assert again.header("Idempotent-Replayed") == "true"
    assert again.body == first.body, "replay after restart is not byte-identical"

    g = server.request("GET", "/v1/invoices/" + doc["number"])
    assert g.status == 200 and as_issued(g.body) == first.body
    s = server.request("GET", "/v1/invoices?serial=" + key).json()
    assert [d["number"] for d in s["invoices"]] == [doc["number"]]
    # the key still remembers its body after the restart
    other = server.issue(key, body=distinct_body(drawer="李四"))
    assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")


def test_same_key_different_body_is_422(server):
    key = "issue-reuse-1"
    first = server.issue(key)
    doc = assert_issued(first, key)

    other = server.issue(key, body=distinct_body(drawer="李四"))
    assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")

    # nothing changed: the original still reads back and still replays
    g = server.request("GET", "/v1/invoices/" + doc["number"])
    assert g.status == 200 and as_issued(g.body) == first.body
    s = server.request("GET", "/v1/invoices?serial=" + key).json()
    assert [d["number"] for d in s["invoices"]] == [doc["number"]]
    again = server.issue(key)
    assert again.status == 201 and again.body == first.body
    assert again.header("Idempotent-Replayed") == "true"


def test_missing_key_is_400(server):
    before = server.db_query("SELECT count(*) FROM invoices")[0][0]
    r = server.issue(None)
    assert_problem(r, 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert server.db_query("SELECT count(*) FROM invoices")[0][0] == before


@pytest.mark.parametrize("key", [
    "has space",
    "slash/inside",
    "semi;colon",
    "quote\"d",
    "a" * 65,
    "ünïcode",
], ids=["space", "slash", "semicolon", "quote", "65-chars", "non-ascii"])
def test_invalid_key_is_400(server, key):
    before = server.db_query("SELECT count(*) FROM invoices")[0][0]
    raw = key.encode("utf-8")  # http.client sends bytes header values as-is
    r = server.request("POST", "/v1/invoices", body=EXAMPLE_BODY,
                       headers={"Content-Type": "application/json", "Idempotency-Key": raw})
    assert_problem(r, 400, "IDEMPOTENCY_KEY_INVALID")
    assert server.db_query("SELECT count(*) FROM invoices")[0][0] == before


def test_empty_key_is_400(server):
    before = server.db_query("SELECT count(*) FROM invoices")[0][0]
    r = server.request("POST", "/v1/invoices", body=EXAMPLE_BODY,
                       headers={"Content-Type": "application/json", "Idempotency-Key": ""})
    assert r.status == 400, r
    assert_problem(r, 400, r.json()["code"])
    assert r.json()["code"] in ("IDEMPOTENCY_KEY_REQUIRED", "IDEMPOTENCY_KEY_INVALID")
    assert server.db_query("SELECT count(*) FROM invoices")[0][0] == before


def test_keys_are_case_sensitive(server):
    a = assert_issued(server.issue("issue-Case-Key"), "issue-Case-Key")
    b = server.issue("issue-case-key")
    assert b.header("Idempotent-Replayed") in (None, "false"), "keys differing in case collided"
    b = assert_issued(b, "issue-case-key")
    assert a["number"] != b["number"]


def test_longest_key_with_every_allowed_class_is_accepted(server):
    key = ("AZaz09_-.:" * 7)[:64]
    assert len(key) == 64
    doc = assert_issued(server.issue(key), key)
    s = server.request("GET", "/v1/invoices?serial=" + key).json()
    assert [d["number"] for d in s["invoices"]] == [doc["number"]]


def test_concurrent_requests_with_one_key_create_one_invoice(server):
    key = "issue-concurrent-1"
    n = scaled(50)
    barrier = threading.Barrier(n, timeout=60 * SLOW)
    results = [None] * n

    def worker(i):
        conn = server.connection(timeout=60 * SLOW)
        try:
            conn.connect()  # handshake before the barrier so the POSTs overlap
            barrier.wait()
            results[i] = server.issue(key, conn=conn)
        except Exception as e:  # recorded and asserted below
            results[i] = e
        finally:
            conn.close()

    server.token()  # fetch once, before the threads
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120 * SLOW
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "requests did not finish in time"

    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, "client errors: %r" % errors[:5]

    created = [r for r in results if r.status == 201]
    others = [r for r in results if r.status != 201]
    print("concurrent: %d x 201 (%d replays), %d others" % (
        len(created), sum(r.header("Idempotent-Replayed") == "true" for r in created), len(others)))
    for r in others:
        assert_problem(r, 409, "IDEMPOTENCY_IN_PROGRESS")
    assert created, "no request got a 201"
    numbers = {r.json()["number"] for r in created}
    assert len(numbers) == 1, "one key produced several numbers: %r" % numbers
    fresh = [r for r in created if r.header("Idempotent-Replayed") != "true"]
    assert len(fresh) == 1, "%d 201s without Idempotent-Replayed: true" % len(fresh)
    assert all(r.body == created[0].body for r in created), "201 bodies differ"

    s = server.request("GET", "/v1/invoices?serial=" + key)
    assert s.status == 200
    assert [d["number"] for d in s.json()["invoices"]] == list(numbers)
    assert server.db_query("SELECT count(*) FROM invoices WHERE serial = ?", (key,))[0][0] == 1

    again = server.issue(key)
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true"
    assert again.body == created[0].body


def test_concurrent_same_key_two_bodies(server):
    """Racing requests with one key but two different bodies: one invoice;
    every 201 carries it and came from a request with the stored body; the
    requests with the other body get 422 (or 409 while in flight)."""
    key = "issue-concurrent-2"
    n = scaled(40)
    bodies = [EXAMPLE_BODY, distinct_body(drawer="李四")]
    barrier = threading.Barrier(n, timeout=60 * SLOW)
    results = [None] * n

    def worker(i):
        conn = server.connection(timeout=60 * SLOW)
        try:
            conn.connect()
            barrier.wait()
            results[i] = server.issue(key, body=bodies[i % 2], conn=conn)
        except Exception as e:  # recorded and asserted below
            results[i] = e
        finally:
            conn.close()

    server.token()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120 * SLOW
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "requests did not finish in time"
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, "client errors: %r" % errors[:5]

    created = [(i, r) for i, r in enumerate(results) if r.status == 201]
    assert created, "no request got a 201"
    winner = created[0][0] % 2
    numbers = {r.json()["number"] for _, r in created}
    assert len(numbers) == 1, "one key produced several numbers: %r" % numbers
    assert all(i % 2 == winner for i, _ in created), "201 for both bodies"
    assert all(r.body == created[0][1].body for _, r in created)
    for i, r in enumerate(results):
        if r.status == 201:
            continue
        if i % 2 == winner:
            assert_problem(r, 409, "IDEMPOTENCY_IN_PROGRESS")
        else:
            assert r.status in (409, 422), r
            assert_problem(r, r.status, {409: "IDEMPOTENCY_IN_PROGRESS",
                                         422: "IDEMPOTENCY_KEY_REUSED"}[r.status])
    assert server.db_query("SELECT count(*) FROM invoices WHERE serial = ?", (key,))[0][0] == 1
    s = server.request("GET", "/v1/invoices?serial=" + key).json()
    assert [d["number"] for d in s["invoices"]] == list(numbers)


def test_init_output_and_refusal_to_overwrite(server):
    d = server.data_dir
    assert os.path.realpath(server.init_out["data_dir"]) == os.path.realpath(d)
    assert os.path.realpath(server.ca_cert) == os.path.realpath(d / "tls" / "server.crt")
    assert (d / "fapiao.db").is_file() and (d / "tls" / "server.key").is_file()
    key_mode = stat.S_IMODE(os.stat(d / "tls" / "server.key").st_mode)
    assert key_mode & 0o077 == 0, "server.key is readable by others: %o" % key_mode

    issued = server.issue("issue-before-reinit")
    assert issued.status == 201, issued
    db_before = (d / "fapiao.db").stat().st_size
    r = subprocess.run([BIN, "init", "--data-dir", str(d), "--demo", "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert (d / "fapiao.db").stat().st_size >= db_before
    # the installation is untouched: old credentials and invoices still work
    t = server.get_token_response()
    assert t.status == 200, t
    g = server.request("GET", "/v1/invoices/" + issued.json()["number"], auth=t.json()["access_token"])
    assert g.status == 200 and as_issued(g.body) == issued.body


# ---- docs/domain.md rules over HTTPS ----

def test_tax_inclusive_line_shows_the_net_unit_price_in_json_and_xml(server):
    doc = example_doc()
    doc["price_includes_tax"] = True
    line = dict(doc["items"][0])
    line.update(quantity="3", unit_price="33.3333333333333")
    doc["items"] = [line]
    r = server.issue("issue-netprice-1", body=dumps(doc))
    assert r.status == 201, r
    it = r.json()["items"][0]
    # 100.00 gross at 6%: 94.34 net; the net price is 94.34 / 3 at 13 decimals
    assert (it["amount"], it["tax"], it["amount_with_tax"]) == ("94.34", "5.66", "100.00")
    assert it["unit_price"] == "31.4466666666667"
    assert it["unit_price_with_tax"] == "33.3333333333333"
    x = server.request("GET", "/v1/invoices/%s/xml" % r.json()["number"])
    assert x.status == 200, x
    text = x.body.decode("utf-8")
    assert "<UnPrice>31.4466666666667</UnPrice>" in text, text
    assert "33.3333333333333" not in text


@pytest.mark.parametrize("change,code,field", [
    ({"drawer": "\u3000 \u3000"}, "FIELD_REQUIRED", "drawer"),
    ({"buyer": {"name": "  ", "tax_id": "91350200MA2YJ1XR9G"}}, "FIELD_REQUIRED", "buyer.name"),
    ({"invoice_type": "01", "buyer": {"name": "王五", "tax_id": "11010519491231002X", "natural_person": True}},
     "SPECIAL_INVOICE_NOT_ALLOWED", "buyer.natural_person"),
    ({"buyer": {"name": "王五", "tax_id": "110105194912310020", "natural_person": True}},
     "INVALID_TAX_ID", "buyer.tax_id"),
])
def test_domain_refusals(server, change, code, field):
    r = server.issue("issue-domain-%s" % field.replace(".", "-"), body=distinct_body(**change))
    assert_problem(r, 400, code, field=field)


def test_natural_person_with_a_resident_id_is_accepted(server):
    r = server.issue("issue-resident-1", body=distinct_body(
        buyer={"name": "王五", "tax_id": "11010519491231002X", "natural_person": True}))
    assert r.status == 201, r
    b = r.json()["buyer"]
    assert (b["name"], b["tax_id"], b["natural_person"]) == ("王五（个人）", "11010519491231002X", True)
    assert "warnings" not in r.json()
