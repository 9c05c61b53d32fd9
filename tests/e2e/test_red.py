"""Red invoices (红字发票) over HTTPS: red forms (红字确认单) for every reason,
the caps across forms, the confirmation states and their 409s, the red
invoice itself (negative, color red, remark, 专票 stays 专票), idempotent
replay also across a restart, 404s and request validation."""
import itertools
import re
import sqlite3
import time

import pytest

from conftest import as_issued, EXAMPLE_BODY, assert_problem, dumps, example_doc

NUMBER_RE = re.compile(r"^[0-9]{20}$")
FORM_RE = re.compile(r"^RF[0-9]{18}$")
_keys = itertools.count(1)


def key(tag):
    return "red-%s-%d-%d" % (tag, int(time.time() * 1000) % 100000000, next(_keys))


def blue_body(quantity="10", unit_price="100.00", discount=None, invoice_type="02"):
    """The example invoice with one line of quantity × price (optionally a
    discount line after it)."""
    doc = example_doc()
    doc["invoice_type"] = invoice_type
    line = dict(doc["items"][0])
    line["quantity"] = quantity
    line["unit_price"] = unit_price
    items = [line]
    if discount:
        d = dict(doc["items"][1])
        d["amount"] = discount
        items.append(d)
    doc["items"] = items
    return dumps(doc)


def issue_blue(server, body=None):
    r = server.issue(key("blue"), body=body if body is not None else blue_body())
    assert r.status == 201, r
    doc = r.json()
    assert doc["color"] == "blue"
    return doc


def create_form(server, number, req):
    return server.post_json("/v1/invoices/%s/red-forms" % number, req)


def form_ok(server, number, req, state="no_confirmation_needed"):
    r = create_form(server, number, req)
    assert r.status == 201, r
    f = r.json()
    assert FORM_RE.match(f["form_id"]), f
    assert r.header("Location") == "/v1/red-forms/" + f["form_id"]
    assert f["state"] == state, f
    assert f["blue_number"] == number
    assert f["reason"] == req["reason"]
    return f


def act(server, form_id, action):
    return server.request("POST", "/v1/red-forms/%s/%s" % (form_id, action))


def get_form(server, form_id):
    return server.request("GET", "/v1/red-forms/%s" % form_id)


def red_invoice(server, form_id, k):
    return server.request("POST", "/v1/red-forms/%s/invoice" % form_id, headers={"Idempotency-Key": k})


def assert_red(r, blue, form_id, reason):
    assert r.status == 201, r
    assert r.content_type == "application/json"
    d = r.json()
    assert NUMBER_RE.match(d["number"]), d
    assert d["number"] != blue["number"]
    assert r.header("Location") == "/v1/invoices/" + d["number"]
    assert d["color"] == "red"
    assert d["original_number"] == blue["number"]
    assert d["red_form_id"] == form_id
    assert d["red_reason"] == reason
    assert d["invoice_type"] == blue["invoice_type"]
    assert d["status"] == "accepted"
    for k in ("total_amount", "total_tax", "total_with_tax"):
        assert d[k].startswith("-"), (k, d[k])
    assert d["total_with_tax_words"].startswith("（负数）"), d["total_with_tax_words"]
    assert blue["number"] in d["remark"], d["remark"]
    assert form_id in d["remark"], d["remark"]
    assert d["buyer"]["name"] == blue["buyer"]["name"]
    assert d["seller"]["tax_id"] == blue["seller"]["tax_id"]
    for it in d["items"]:
        # a reversed discount line is the one positive red line
        assert it["amount"].startswith("-") != (it["line_kind"] == "discount"), it
    return d


def test_sales_return_partial_issue_read_back_and_replay_across_restart(server):
    blue = issue_blue(server)
    assert blue["total_amount"] == "1000.00"
    f = form_ok(server, blue["number"],
                {"reason": "sales_return", "items": [{"line": 1, "quantity": "-3"}]})
    assert f["initiated_by"] == "seller"
    assert "expires_at" not in f
    assert f["items"][0]["quantity"] == "-3"
    assert f["items"][0]["unit_price"] == "100.00"
    assert f["items"][0]["amount"] == "-300.00"
    assert f["items"][0]["tax"] == "-18.00"
    assert (f["total_amount"], f["total_tax"], f["total_with_tax"]) == ("-300.00", "-18.00", "-318.00")
    g = get_form(server, f["form_id"])
    assert g.status == 200, g
    assert g.json() == f

    k = key("sr")
    r = red_invoice(server, f["form_id"], k)
    red = assert_red(r, blue, f["form_id"], "sales_return")
    assert r.header("Idempotent-Replayed") in (None, "false")
    assert red["serial"] == k
    assert len(red["items"]) == 1
    it = red["items"][0]
    assert (it["quantity"], it["unit_price"], it["amount"], it["tax"]) == ("-3", "100.00", "-300.00", "-18.00")
    assert it["amount_with_tax"] == "-318.00"
    assert (red["total_amount"], red["total_tax"], red["total_with_tax"]) == ("-300.00", "-18.00", "-318.00")
    assert red["total_with_tax_words"] == "（负数）叁佰壹拾捌圆整"

    got = server.request("GET", "/v1/invoices/" + red["number"])
    assert got.status == 200, got
    assert as_issued(got.body) == r.body

    g = get_form(server, f["form_id"]).json()
    assert g["state"] == "issued"
    assert g["red_number"] == red["number"]

    again = red_invoice(server, f["form_id"], k)
    assert again.status == 201, again
    assert again.header("Idempotent-Replayed") == "true"
    assert again.body == r.body

    server.stop()
    server.start()
    after = red_invoice(server, f["form_id"], k)
    assert after.status == 201, after
    assert after.header("Idempotent-Replayed") == "true"
    assert after.body == r.body
    assert as_issued(server.request("GET", "/v1/invoices/" + red["number"]).body) == r.body
    assert get_form(server, f["form_id"]).json()["state"] == "issued"

    # another key: the form is used up
    assert_problem(red_invoice(server, f["form_id"], key("sr-other")), 409, "RED_FORM_STATE")
    for a in ("confirm", "reject", "withdraw"):
        assert_problem(act(server, f["form_id"], a), 409, "RED_FORM_STATE")

    # the rest of the line (7) can still be returned, not more
    assert_problem(create_form(server, blue["number"],
                               {"reason": "sales_return", "items": [{"line": 1, "quantity": "-7.0000000000001"}]}),
                   400, "RED_EXCEEDS_BLUE", field="items[0]")
    form_ok(server, blue["number"], {"reason": "sales_return", "items": [{"line": 1, "quantity": "-7"}]})


def test_two_partial_forms_over_the_blue_second_refused(server):
    # example invoice: 1 × 1000.00 with a -100.00 discount: caps 900.00 / 54.00,
    # and a unit is worth its net value, 900.00 (docs/domain.md)
    blue = issue_blue(server, EXAMPLE_BODY)
    assert blue["total_amount"] == "900.00"
    f1 = form_ok(server, blue["number"], {"reason": "sales_return", "items": [{"line": 1, "quantity": "-0.5"}]})
    assert (f1["items"][0]["amount"], f1["items"][0]["tax"]) == ("-450.00", "-27.00")
    p = assert_problem(create_form(server, blue["number"],
                                   {"reason": "sales_return", "items": [{"line": 1, "quantity": "-0.5000000000001"}]}),
                       400, "RED_EXCEEDS_BLUE", field="items[0]")
    assert p["errors"][0]["field"] == "items[0]"
    # the rest up to the net cap is fine: 450.00 more, not a fen over
    assert_problem(create_form(server, blue["number"],
                               {"reason": "allowance", "items": [{"line": 1, "amount": "-450.01"}]}),
                   400, "RED_EXCEEDS_BLUE", field="items[0]")
    f2 = form_ok(server, blue["number"], {"reason": "sales_return", "items": [{"line": 1, "quantity": "-0.5"}]})
    assert (f2["items"][0]["amount"], f2["items"][0]["tax"]) == ("-450.00", "-27.00")
    assert_problem(create_form(server, blue["number"],
                               {"reason": "allowance", "items": [{"line": 1, "amount": "-0.01"}]}),
                   400, "RED_EXCEEDS_BLUE", field="items[0]")
    # withdrawing the first form frees its share
    w = act(server, f1["form_id"], "withdraw")
    assert w.status == 200, w
    assert w.json()["state"] == "withdrawn"
    form_ok(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-450.00"}]})
    # discount line alone
    assert_problem(create_form(server, blue["number"], {"reason": "allowance", "items": [{"line": 2, "amount": "-1.00"}]}),
                   400, "INVALID_FIELD", field="items[0].line")


def test_allowance_awaiting_buyer_then_confirm_then_issue(server):
    blue = issue_blue(server)
    f = form_ok(server, blue["number"],
                {"reason": "allowance", "buyer_has_deducted": True, "items": [{"line": 1, "amount": "-50.00"}]},
                state="awaiting_buyer")
    assert f["expires_at"] - f["created_at"] == 72 * 3600, f
    assert "quantity" not in f["items"][0]
    k = key("al")
    assert_problem(red_invoice(server, f["form_id"], k), 409, "RED_FORM_STATE")
    c = act(server, f["form_id"], "confirm")
    assert c.status == 200, c
    assert c.json()["state"] == "confirmed"
    assert_problem(act(server, f["form_id"], "confirm"), 409, "RED_FORM_STATE")
    assert_problem(act(server, f["form_id"], "reject"), 409, "RED_FORM_STATE")
    r = red_invoice(server, f["form_id"], k)  # the key refused before is usable now
    red = assert_red(r, blue, f["form_id"], "allowance")
    it = red["items"][0]
    assert "quantity" not in it and "unit_price" not in it
    assert (it["amount"], it["tax"]) == ("-50.00", "-3.00")
    assert red["total_with_tax"] == "-53.00"
    assert get_form(server, f["form_id"]).json()["state"] == "issued"


def test_buyer_initiated_reject_and_illegal_transitions(server):
    blue = issue_blue(server)
    f = form_ok(server, blue["number"],
                {"reason": "service_stop", "initiated_by": "buyer",
                 "items": [{"line": 1, "amount": "-200.00", "quantity": "-2"}]},
                state="awaiting_seller")
    assert f["initiated_by"] == "buyer"
    assert "expires_at" in f
    r = act(server, f["form_id"], "reject")
    assert r.status == 200, r
    assert r.json()["state"] == "rejected"
    for a in ("confirm", "reject", "withdraw"):
        assert_problem(act(server, f["form_id"], a), 409, "RED_FORM_STATE")
    assert_problem(red_invoice(server, f["form_id"], key("rej")), 409, "RED_FORM_STATE")
    assert get_form(server, f["form_id"]).json()["state"] == "rejected"
    # a rejected form no longer holds its share: the whole line is free
    form_ok(server, blue["number"], {"reason": "service_stop", "items": [{"line": 1, "amount": "-1000.00"}]})


def test_withdraw_paths(server):
    blue = issue_blue(server)
    # no_confirmation_needed: confirm/reject impossible, withdraw fine
    f = form_ok(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-1.00"}]})
    assert_problem(act(server, f["form_id"], "confirm"), 409, "RED_FORM_STATE")
    assert_problem(act(server, f["form_id"], "reject"), 409, "RED_FORM_STATE")
    w = act(server, f["form_id"], "withdraw")
    assert w.status == 200 and w.json()["state"] == "withdrawn", w
    assert_problem(act(server, f["form_id"], "withdraw"), 409, "RED_FORM_STATE")
    assert_problem(red_invoice(server, f["form_id"], key("wd")), 409, "RED_FORM_STATE")
    # awaiting_buyer: withdraw
    f = form_ok(server, blue["number"],
                {"reason": "allowance", "buyer_has_deducted": True, "items": [{"line": 1, "amount": "-1.00"}]},
                state="awaiting_buyer")
    w = act(server, f["form_id"], "withdraw")
    assert w.status == 200 and w.json()["state"] == "withdrawn", w
    assert_problem(act(server, f["form_id"], "confirm"), 409, "RED_FORM_STATE")
    # confirmed: withdraw, then no invoice
    f = form_ok(server, blue["number"],
                {"reason": "allowance", "initiated_by": "buyer", "items": [{"line": 1, "amount": "-1.00"}]},
                state="awaiting_seller")
    assert act(server, f["form_id"], "confirm").json()["state"] == "confirmed"
    w = act(server, f["form_id"], "withdraw")
    assert w.status == 200 and w.json()["state"] == "withdrawn", w
    assert_problem(red_invoice(server, f["form_id"], key("wd2")), 409, "RED_FORM_STATE")


def test_issue_error_reverses_everything(server):
    blue = issue_blue(server, EXAMPLE_BODY)  # with a discount line
    f = form_ok(server, blue["number"], {"reason": "issue_error"})
    r = red_invoice(server, f["form_id"], key("ie"))
    red = assert_red(r, blue, f["form_id"], "issue_error")
    for k in ("total_amount", "total_tax", "total_with_tax"):
        assert red[k] == "-" + blue[k], (k, red[k], blue[k])
    assert red["total_with_tax_words"] == "（负数）" + blue["total_with_tax_words"]
    # lines identical: the line at its price and its discount line, negated
    kinds = [(i["line_kind"], i["amount"], i.get("quantity")) for i in red["items"]]
    assert kinds == [("discounted", "-1000.00", "-1"), ("discount", "100.00", None)]
    # nothing is left to reverse
    assert_problem(create_form(server, blue["number"], {"reason": "issue_error"}), 400, "RED_EXCEEDS_BLUE",
                   field="items[0]")
    assert_problem(create_form(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-0.01"}]}),
                   400, "RED_EXCEEDS_BLUE", field="items[0]")
    # a red invoice cannot itself be reversed
    assert_problem(create_form(server, red["number"], {"reason": "issue_error"}), 400, "INVALID_FIELD")


def test_issue_error_of_a_plain_invoice_and_after_partial(server):
    blue = issue_blue(server)
    form_ok(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-0.01"}]})
    assert_problem(create_form(server, blue["number"], {"reason": "issue_error"}), 400, "RED_EXCEEDS_BLUE",
                   field="items[0]")
    blue2 = issue_blue(server)
    f = form_ok(server, blue2["number"], {"reason": "issue_error"})
    red = assert_red(red_invoice(server, f["form_id"], key("ie2")), blue2, f["form_id"], "issue_error")
    assert red["total_with_tax"] == "-" + blue2["total_with_tax"] == "-1060.00"


def test_special_invoice_reversed_by_special(server):
    blue = issue_blue(server, blue_body(invoice_type="01"))
    assert blue["invoice_type"] == "01"
    f = form_ok(server, blue["number"], {"reason": "sales_return", "items": [{"line": 1, "quantity": "-1"}]})
    assert f["invoice_type"] == "01"
    red = assert_red(red_invoice(server, f["form_id"], key("zp")), blue, f["form_id"], "sales_return")
    assert red["invoice_type"] == "01"
    assert red["buyer"]["tax_id"] == blue["buyer"]["tax_id"]
    got = server.request("GET", "/v1/invoices/" + red["number"]).json()
    assert got["invoice_type"] == "01"


def test_not_found(server):
    assert_problem(create_form(server, "26310000999999999999", {"reason": "issue_error"}), 404, "NOT_FOUND")
    unknown = "RF999999999999999999"
    assert_problem(get_form(server, unknown), 404, "NOT_FOUND")
    for a in ("confirm", "reject", "withdraw"):
        assert_problem(act(server, unknown, a), 404, "NOT_FOUND")
    assert_problem(red_invoice(server, unknown, key("nf")), 404, "NOT_FOUND")


@pytest.mark.parametrize("req,code,field", [
    ({"reason": "sales_return", "items": [{"line": 1, "quantity": "3"}]}, "INVALID_FIELD", "items[0].quantity"),
    ({"reason": "sales_return", "items": [{"line": 1}]}, "FIELD_REQUIRED", "items[0].quantity"),
    ({"reason": "sales_return", "items": [{"line": 1, "quantity": "-1", "amount": "-90.00"}]},
     "TOLERANCE_EXCEEDED", "items[0].amount"),
    ({"reason": "service_stop", "items": [{"line": 1}]}, "FIELD_REQUIRED", "items[0].amount"),
    ({"reason": "service_stop", "items": [{"line": 1, "amount": "-150.00", "quantity": "-1"}]},
     "TOLERANCE_EXCEEDED", "items[0].amount"),
    ({"reason": "allowance", "items": [{"line": 1, "amount": "-1.00", "quantity": "-1"}]},
     "INVALID_FIELD", "items[0].quantity"),
    ({"reason": "allowance", "items": [{"line": 1, "amount": "1.00"}]}, "INVALID_FIELD", "items[0].amount"),
    ({"reason": "allowance", "items": [{"line": 1, "amount": "-1.00", "price": "1"}]},
     "UNKNOWN_FIELD", "items[0].price"),
    ({"reason": "allowance", "items": [{"line": 2, "amount": "-1.00"}]}, "INVALID_FIELD", "items[0].line"),
    ({"reason": "allowance", "items": []}, "FIELD_REQUIRED", "items"),
    ({"reason": "issue_error", "items": [{"line": 1, "amount": "-1.00"}]}, "INVALID_FIELD", "items"),
    ({"reason": "cancel"}, "INVALID_FIELD", "reason"),
    ({"items": [{"line": 1, "amount": "-1.00"}]}, "FIELD_REQUIRED", "reason"),
    ({"reason": "issue_error", "extra": 1}, "UNKNOWN_FIELD", "extra"),
])
def test_form_validation(server, req, code, field):
    blue = getattr(test_form_validation, "_blue", None)
    if blue is None:
        blue = test_form_validation._blue = issue_blue(server)
    assert_problem(create_form(server, blue["number"], req), 400, code, field=field)


def test_form_request_plumbing(server):
    blue = issue_blue(server)
    path = "/v1/invoices/%s/red-forms" % blue["number"]
    r = server.request("POST", path, body=b'{"reason":"issue_error"}', headers={"Content-Type": "text/plain"})
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    r = server.request("POST", path, body=b'{"reason":', headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "MALFORMED_JSON")
    r = server.request("POST", path, body=b'{"reason":"issue_error"}', headers={"Content-Type": "application/json"},
                       auth=False)
    assert r.status == 401, r
    f = form_ok(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-1.00"}]})
    r = server.request("POST", "/v1/red-forms/%s/invoice" % f["form_id"])
    assert_problem(r, 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert server.request("GET", "/v1/red-forms/%s" % f["form_id"], auth=False).status == 401
    # a key used for a blue invoice is not a red invoice's key
    k = key("mix")
    assert server.issue(k).status == 201
    assert_problem(red_invoice(server, f["form_id"], k), 422, "IDEMPOTENCY_KEY_REUSED")
    # a key used for one form is not another form's
    k2 = key("mix2")
    assert red_invoice(server, f["form_id"], k2).status == 201
    f2 = form_ok(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-1.00"}]})
    assert_problem(red_invoice(server, f2["form_id"], k2), 422, "IDEMPOTENCY_KEY_REUSED")


def test_lapsed_form_after_deadline(server):
    """72 hours cannot pass in a test: with the server stopped, the form's
    deadline is moved into the past in the database, then the server is
    asked again."""
    blue = issue_blue(server)
    f = form_ok(server, blue["number"],
                {"reason": "allowance", "buyer_has_deducted": True, "items": [{"line": 1, "amount": "-1000.00"}]},
                state="awaiting_buyer")
    # an open awaiting form holds its share
    assert_problem(create_form(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-0.01"}]}),
                   400, "RED_EXCEEDS_BLUE", field="items[0]")
    server.stop()
    con = sqlite3.connect(str(server.db_path))
    try:
        con.execute("UPDATE red_forms SET expires_at=? WHERE form_no=?", (int(time.time()) - 1, f["form_id"]))
        con.commit()
    finally:
        con.close()
    server.start()
    g = get_form(server, f["form_id"])
    assert g.status == 200 and g.json()["state"] == "lapsed", g
    for a in ("confirm", "reject", "withdraw"):
        assert_problem(act(server, f["form_id"], a), 409, "RED_FORM_STATE")
    assert_problem(red_invoice(server, f["form_id"], key("lapse")), 409, "RED_FORM_STATE")
    assert get_form(server, f["form_id"]).json()["state"] == "lapsed"
    # a lapsed form no longer holds its share
    form_ok(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-1000.00"}]})


def test_last_part_takes_the_remaining_tax(server):
    """0.50 at 6% has tax 0.03; reversed as 0.25 + 0.25 each half rounds to
    0.02, so the second half takes the 0.01 that is left instead of being
    refused, and the line ends fully reversed."""
    blue = issue_blue(server, blue_body(quantity="1", unit_price="0.50"))
    assert blue["items"][0]["tax"] == "0.03"
    half = {"reason": "allowance", "items": [{"line": 1, "amount": "-0.25"}]}
    first = form_ok(server, blue["number"], half)
    second = form_ok(server, blue["number"], half)
    assert (first["items"][0]["tax"], second["items"][0]["tax"]) == ("-0.02", "-0.01")
    assert_problem(create_form(server, blue["number"], {"reason": "allowance", "items": [{"line": 1, "amount": "-0.01"}]}),
                   400, "RED_EXCEEDS_BLUE", field="items[0]")


# ---- red at net value, the last part takes the rest (docs/domain.md) ----

def incl_body(quantity, unit_price, rate="0.06"):
    doc = example_doc()
    doc["price_includes_tax"] = True
    line = dict(doc["items"][0])
    line.update(quantity=quantity, unit_price=unit_price, tax_rate=rate)
    doc["items"] = [line]
    return dumps(doc)


def test_tax_inclusive_line_returned_at_net_value_unit_by_unit(server):
    """3 × 33.33 gross at 6% is 94.33 net + 5.66 tax; 1 unit credits -31.44
    and -1.89 (not -33.33 and -2.00), and the three units one by one reverse
    exactly the blue line."""
    blue = issue_blue(server, incl_body("3", "33.33"))
    it = blue["items"][0]
    assert (it["amount"], it["tax"], it["unit_price"], it["unit_price_with_tax"]) == \
        ("94.33", "5.66", "31.4433333333333", "33.33")
    one = {"reason": "sales_return", "items": [{"line": 1, "quantity": "-1"}]}
    f1 = form_ok(server, blue["number"], one)
    assert (f1["items"][0]["amount"], f1["items"][0]["tax"]) == ("-31.44", "-1.89")
    red = assert_red(red_invoice(server, f1["form_id"], key("incl")), blue, f1["form_id"], "sales_return")
    r0 = red["items"][0]
    assert (r0["quantity"], r0["amount"], r0["tax"], r0["amount_with_tax"]) == ("-1", "-31.44", "-1.89", "-33.33")
    assert r0["unit_price"] == "31.4433333333333"
    f2 = form_ok(server, blue["number"], one)
    f3 = form_ok(server, blue["number"], one)
    amounts = [f["items"][0]["amount"] for f in (f1, f2, f3)]
    taxes = [f["items"][0]["tax"] for f in (f1, f2, f3)]
    assert amounts == ["-31.44", "-31.45", "-31.44"], amounts
    assert taxes == ["-1.89", "-1.89", "-1.88"], taxes
    assert_problem(create_form(server, blue["number"],
                               {"reason": "sales_return", "items": [{"line": 1, "quantity": "-0.0000000000001"}]}),
                   400, "RED_EXCEEDS_BLUE", field="items[0]")


def test_discounted_line_returned_at_net_value_both_units(server):
    """2 × 500.00 with a -100.00 discount at 6%: a unit is worth 450.00 + 27.00;
    both units can be returned (today's code refused the second)."""
    blue = issue_blue(server, blue_body(quantity="2", unit_price="500.00", discount="-100.00"))
    assert blue["total_amount"] == "900.00"
    one = {"reason": "sales_return", "items": [{"line": 1, "quantity": "-1"}]}
    f1 = form_ok(server, blue["number"], one)
    assert (f1["items"][0]["amount"], f1["items"][0]["tax"]) == ("-450.00", "-27.00")
    assert f1["items"][0]["unit_price"] == "450"
    f2 = form_ok(server, blue["number"], one)
    assert (f2["items"][0]["amount"], f2["items"][0]["tax"]) == ("-450.00", "-27.00")
    red = assert_red(red_invoice(server, f2["form_id"], key("disc")), blue, f2["form_id"], "sales_return")
    assert (red["total_amount"], red["total_tax"]) == ("-450.00", "-27.00")
    assert_problem(create_form(server, blue["number"], one), 400, "RED_EXCEEDS_BLUE", field="items[0]")


def test_last_unit_takes_the_rest_of_the_amount(server):
    """3 × 0.335 = 1.01: returned unit by unit 0.34 + 0.34 + 0.33 (the third
    was refused before); 3 × 0.3333333 = 1.00 leaves nothing behind."""
    for price, want in (("0.335", ["-0.34", "-0.34", "-0.33"]), ("0.3333333", ["-0.33", "-0.34", "-0.33"])):
        blue = issue_blue(server, blue_body(quantity="3", unit_price=price))
        one = {"reason": "sales_return", "items": [{"line": 1, "quantity": "-1"}]}
        got = [form_ok(server, blue["number"], one)["items"][0]["amount"] for _ in range(3)]
        assert got == want, (price, got)
        assert_problem(create_form(server, blue["number"],
                                   {"reason": "allowance", "items": [{"line": 1, "amount": "-0.01"}]}),
                       400, "RED_EXCEEDS_BLUE", field="items[0]")


def test_natural_person_red_invoice_keeps_the_flag(server):
    doc = example_doc()
    doc["buyer"] = {"name": "王五（个人）", "tax_id": "11010519491231002X", "natural_person": True}
    blue = issue_blue(server, dumps(doc))
    assert blue["buyer"]["name"] == "王五（个人）"  # not twice
    assert blue["buyer"]["natural_person"] is True
    f = form_ok(server, blue["number"], {"reason": "issue_error"})
    red = assert_red(red_invoice(server, f["form_id"], key("np")), blue, f["form_id"], "issue_error")
    assert red["buyer"] == blue["buyer"]
    assert red["buyer"]["natural_person"] is True
