"""Bad requests: each is answered with the right application/problem+json
error, the server stays up, nothing stored changes, and an Idempotency-Key
used with a refused request is not consumed."""
import json

import pytest

from conftest import as_issued, EXAMPLE_BODY, assert_problem, curl, dumps, example_doc


def _doc(mutate):
    d = example_doc()
    mutate(d)
    return dumps(d)


def _set(path, value):
    def m(d):
        obj = d
        for p in path[:-1]:
            obj = obj[p]
        obj[path[-1]] = value
    return m


def _delete(name):
    def m(d):
        del d[name]
    return m


def _invalid_utf8_body():
    # "张三" (the drawer) replaced by bytes that are not UTF-8
    body = EXAMPLE_BODY.replace("张三".encode("utf-8"), b"\xff\xfe\xc3\x28")
    assert body != EXAMPLE_BODY
    return body


def _duplicate_key_body():
    body = EXAMPLE_BODY.decode("utf-8")
    i = body.index("{") + 1
    return (body[:i] + '"drawer": "李四", ' + body[i:]).encode("utf-8")


# name -> (body bytes, content type, status, code, field)
POST_CASES = {
    "malformed_json": (b'{"invoice_type": "02", "buyer": ', "application/json",
                       400, "MALFORMED_JSON", None),
    "trailing_garbage": (EXAMPLE_BODY + b" }", "application/json", 400, "MALFORMED_JSON", None),
    "not_json_at_all": (b"hello", "application/json", 400, "MALFORMED_JSON", None),
    "unit_price_number": (b"", "application/json", 400, "FIELD_TYPE", "items[0].unit_price"),
    "quantity_number": (b"", "application/json", 400, "FIELD_TYPE", "items[0].quantity"),
    "unit_price_number_no_discount_line": (b"", "application/json", 400, "FIELD_TYPE",
                                           "items[0].unit_price"),
    "tax_rate_number": (b"", "application/json", 400, "FIELD_TYPE", "items[0].tax_rate"),
    "amount_number": (b"", "application/json", 400, "FIELD_TYPE", "items[1].amount"),
    "unknown_field": (b"", "application/json", 400, "UNKNOWN_FIELD", "buyer.nickname"),
    "unknown_top_field": (b"", "application/json", 400, "UNKNOWN_FIELD", "nickname"),
    "missing_drawer": (b"", "application/json", 400, "FIELD_REQUIRED", "drawer"),
    "duplicate_key": (_duplicate_key_body(), "application/json", 400, "DUPLICATE_FIELD", None),
    "text_plain": (EXAMPLE_BODY, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE", None),
    "form_urlencoded": (EXAMPLE_BODY, "application/x-www-form-urlencoded", 415,
                        "UNSUPPORTED_MEDIA_TYPE", None),
}
MUTATIONS = {
    "unit_price_number": lambda d: d["items"][0].__setitem__("unit_price", 1000.00),
    "quantity_number": lambda d: d["items"][0].__setitem__("quantity", 1),
    "unit_price_number_no_discount_line": lambda d: (d["items"].pop(),
                                                     d["items"][0].__setitem__("unit_price", 1000)),
    "tax_rate_number": lambda d: d["items"][0].__setitem__("tax_rate", 0.06),
    "amount_number": lambda d: d["items"][1].__setitem__("amount", -100.00),
    "unknown_field": _set(["buyer", "nickname"], "小王"),
    "unknown_top_field": _set(["nickname"], "x"),
    "missing_drawer": _delete("drawer"),
}


def _body(name):
    body = POST_CASES[name][0]
    if name in MUTATIONS:
        body = _doc(MUTATIONS[name])
    return body


@pytest.fixture(scope="module")
def reference(server):
    """An invoice issued before any bad request; must read back unchanged."""
    r = server.issue("errors-reference")
    assert r.status == 201, r
    return r


def assert_unchanged(server, reference, fresh_key=None):
    assert server.healthy(), "server stopped answering /healthz"
    doc = json.loads(reference.body)
    g = server.request("GET", "/v1/invoices/" + doc["number"])
    assert g.status == 200, g
    assert as_issued(g.body) == reference.body, "a stored invoice changed"
    if fresh_key is not None:
        # the key used by the refused request was not consumed
        s = server.request("GET", "/v1/invoices?serial=" + fresh_key)
        assert s.status == 200 and s.json()["invoices"] == [], s
        ok = server.issue(fresh_key)
        assert ok.status == 201, ok
        assert ok.header("Idempotent-Replayed") in (None, "false"), \
            "key of a refused request was stored (got a replay)"
        assert ok.json()["serial"] == fresh_key


@pytest.mark.parametrize("name", sorted(POST_CASES))
def test_bad_post(server, reference, name):
    _, ctype, status, code, field = POST_CASES[name]
    key = "errors-" + name.replace("_", "-")
    before = server.db_query("SELECT count(*) FROM invoices")[0][0]
    r = server.issue(key, body=_body(name), content_type=ctype)
    p = assert_problem(r, status, code, field)
    if field is not None:
        # the body has exactly one defect: no further (consequential) errors
        extra = [e for e in p["errors"] if (e.get("field"), e.get("code")) != (field, code)]
        assert not extra, "one defect (%s %s) but further errors reported: %r" % (
            code, field, extra)
    assert server.db_query("SELECT count(*) FROM invoices")[0][0] == before
    assert_unchanged(server, reference, fresh_key=key)


def test_missing_content_type_is_415(server, reference):
    key = "errors-no-content-type"
    r = server.issue(key, content_type=None)
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_unchanged(server, reference, fresh_key=key)


def test_invalid_utf8_with_curl(server, reference, tmp_path):
    key = "errors-invalid-utf8"
    f = tmp_path / "bad-utf8.json"
    f.write_bytes(_invalid_utf8_body())
    st, hdrs, body, rc, err = curl(server, "POST", "/v1/invoices", body_file=f,
                                   headers={"Content-Type": "application/json",
                                            "Idempotency-Key": key},
                                   out_dir=tmp_path)
    assert rc == 0, "curl failed (%d): %s" % (rc, err)
    assert_problem((st, hdrs, body), 400, "INVALID_UTF8")
    assert_unchanged(server, reference, fresh_key=key)


def test_invalid_utf8_variants(server, reference):
    # an overlong "/", a UTF-8-encoded surrogate, a 5-byte sequence
    key = "errors-invalid-utf8-overlong"
    for i, bad in enumerate([b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]):
        k = "%s-%d" % (key, i)
        body = EXAMPLE_BODY.replace("张三".encode("utf-8"), bad)
        r = server.issue(k, body=body)
        assert_problem(r, 400, "INVALID_UTF8")
        assert_unchanged(server, reference, fresh_key=k)


def test_body_too_large_with_curl(server, reference, tmp_path):
    key = "errors-too-large"
    f = tmp_path / "big.json"
    # valid JSON (a 2 MiB remark) so only the size is wrong
    pad = 2 * 1024 * 1024
    f.write_bytes(b'{"remark": "' + b"a" * pad + b'", "drawer": "x"}')
    st, hdrs, body, rc, err = curl(server, "POST", "/v1/invoices", body_file=f,
                                   headers={"Content-Type": "application/json",
                                            "Idempotency-Key": key},
                                   out_dir=tmp_path)
    # The server may close the connection after answering; curl may then
    # report a send/receive error, which is fine only if the 413 was read.
    assert st == 413, "expected a 413 response, got %r (curl rc %d: %s)" % (st, rc, err)
    assert_problem((st, hdrs, body), 413, "BODY_TOO_LARGE")
    assert_unchanged(server, reference, fresh_key=key)


def test_unknown_path_is_404(server, reference):
    for method, path in [("GET", "/v1/no-such-thing"), ("GET", "/nope"),
                         ("GET", "/v1/invoices/00000000000000000000")]:
        r = server.request(method, path)
        assert_problem(r, 404, "NOT_FOUND")
    assert_unchanged(server, reference)


def test_unknown_path_with_curl(server, reference, tmp_path):
    st, hdrs, body, rc, err = curl(server, "GET", "/v1/does-not-exist", out_dir=tmp_path)
    assert rc == 0, err
    assert_problem((st, hdrs, body), 404, "NOT_FOUND")
    assert_unchanged(server, reference)


def test_request_id_echo_and_generation(server, tmp_path):
    r = server.request("GET", "/healthz", auth=False, headers={"X-Request-Id": "abc-123"})
    assert r.status == 200
    assert r.header("X-Request-Id") == "abc-123"
    r2 = server.request("GET", "/healthz", auth=False)
    assert r2.header("X-Request-Id"), "no X-Request-Id generated"
    r3 = server.request("GET", "/healthz", auth=False)
    assert r3.header("X-Request-Id") != r2.header("X-Request-Id"), "request ids repeat"
    # echoed on errors too, and in the problem body
    e = server.request("GET", "/v1/nope", headers={"X-Request-Id": "abc-123"})
    p = assert_problem(e, 404, "NOT_FOUND")
    assert p["request_id"] == "abc-123"
    # with curl
    st, hdrs, body, rc, err = curl(server, "GET", "/healthz", auth=False,
                                   headers={"X-Request-Id": "curl-req-7"}, out_dir=tmp_path)
    assert rc == 0 and st == 200, err
    assert hdrs.get("x-request-id") == "curl-req-7"


def test_health_and_ready(server):
    h = server.request("GET", "/healthz", auth=False)
    assert h.status == 200
    r = server.request("GET", "/readyz", auth=False)
    assert r.status == 200, r
    assert "checks" in r.json()


def test_max_body_option_and_chunked_upload(make_server, tmp_path):
    small = make_server(serve_args=["--max-body", "4096"])
    assert len(EXAMPLE_BODY) < 4096
    ok = small.issue("errors-max-body-ok")
    assert ok.status == 201, ok
    big = dumps(dict(example_doc(), remark="备" * 2000))  # ~6 KB of valid JSON
    assert len(big) > 4096
    r = small.issue("errors-max-body-big", body=big)
    assert_problem(r, 413, "BODY_TOO_LARGE")
    # the same with chunked transfer encoding (no Content-Length): the limit
    # must hold while streaming, too
    f = tmp_path / "big.json"
    f.write_bytes(big)
    st, hdrs, body, rc, err = curl(small, "POST", "/v1/invoices", body_file=f,
                                   headers={"Content-Type": "application/json",
                                            "Idempotency-Key": "errors-max-body-chunked",
                                            "Transfer-Encoding": "chunked"},
                                   out_dir=tmp_path)
    assert st == 413, "expected 413, got %r (curl rc %d: %s)" % (st, rc, err)
    assert_problem((st, hdrs, body), 413, "BODY_TOO_LARGE")
    assert small.healthy()
    for key in ("errors-max-body-big", "errors-max-body-chunked"):
        s = small.request("GET", "/v1/invoices?serial=" + key)
        assert s.status == 200 and s.json()["invoices"] == [], s
    g = small.request("GET", "/v1/invoices/" + ok.json()["number"])
    assert g.status == 200 and as_issued(g.body) == ok.body


def test_method_not_allowed(server, reference):
    for method, path in [("PUT", "/v1/invoices"), ("DELETE", "/v1/invoices"),
                         ("DELETE", "/v1/invoices/" + json.loads(reference.body)["number"])]:
        r = server.request(method, path, body=b"" if method == "PUT" else None)
        assert_problem(r, 405, "METHOD_NOT_ALLOWED")
    assert_unchanged(server, reference)


def test_invalid_request_id_is_not_echoed(server):
    for bad in ["has spaces in it", "x" * 300, "semi;colon<script>"]:
        r = server.request("GET", "/healthz", auth=False, headers={"X-Request-Id": bad})
        assert r.status == 200
        rid = r.header("X-Request-Id")
        assert rid and rid != bad, "invalid X-Request-Id %r echoed" % bad


def test_token_endpoint_malformed_json(server):
    r = server.request("POST", "/v1/token", body=b'{"client_id": ',
                       headers={"Content-Type": "application/json"}, auth=False)
    assert_problem(r, 400, "MALFORMED_JSON")
    assert server.healthy()


def test_keep_alive_connection_survives_refused_requests(server, reference):
    """Refused requests with a body must not leave unread body bytes on a
    kept-alive connection: the next request on the same connection is
    answered normally (the server may also close it, which http.client
    notices from Connection: close and reconnects)."""
    token = server.token()
    json_h = {"Content-Type": "application/json"}
    bad = [
        ("415", {"Content-Type": "text/plain", "Idempotency-Key": "ka-415"}, EXAMPLE_BODY, True, 415),
        ("no key", json_h, EXAMPLE_BODY, True, 400),
        ("bad key", dict(json_h, **{"Idempotency-Key": "bad key"}), EXAMPLE_BODY, True, 400),
        ("no auth", dict(json_h, **{"Idempotency-Key": "ka-401"}), EXAMPLE_BODY, False, 401),
        ("malformed", dict(json_h, **{"Idempotency-Key": "ka-400"}), b"{" + b"x" * 3000, True, 400),
    ]
    conn = server.connection()
    try:
        for i, (name, headers, body, auth, status) in enumerate(bad):
            r = server.request("POST", "/v1/invoices", body=body, headers=headers,
                               auth=token if auth else False, conn=conn)
            assert r.status == status, "%s: %r" % (name, r)
            h = server.request("GET", "/healthz", auth=False, conn=conn)
            assert h.status == 200, "after %s: %r" % (name, h)
            key = "errors-keepalive-%d" % i
            ok = server.request("POST", "/v1/invoices", body=EXAMPLE_BODY,
                                headers=dict(json_h, **{"Idempotency-Key": key}),
                                auth=token, conn=conn)
            assert ok.status == 201, "after %s: %r" % (name, ok)
            assert ok.json()["serial"] == key
    finally:
        conn.close()
    assert_unchanged(server, reference)


def test_openapi_json(server):
    o = server.request("GET", "/openapi.json", auth=False)
    assert o.status == 200, o
    assert o.content_type == "application/json"
    spec = o.json()
    assert str(spec.get("openapi", "")).startswith("3.1"), spec.get("openapi")
    assert "/v1/invoices" in spec.get("paths", {})


def test_metrics_prometheus_text(server):
    m = server.request("GET", "/metrics", auth=False)
    assert m.status == 200, m
    assert m.content_type == "text/plain", m.content_type
    assert m.body.strip(), "empty metrics"
