"""HTTP parsing refusals against the real server over raw TLS sockets
(docs/security.md, "HTTP parsing"): ambiguous message framing (request
smuggling behind a proxy), NUL in the request target, and an access log that
stays valid UTF-8 JSON whatever bytes the URL carries."""
import json
import socket
import ssl
import time

import pytest

from conftest import SLOW, assert_problem, Response  # noqa: F401


def raw_exchange(srv, data, timeout=10 * SLOW):
    """Sends data on one TLS connection and reads until the server closes it
    (or timeout).  Returns (bytes read, closed_by_server)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    t = srv._ctx.wrap_socket(s, server_hostname="127.0.0.1")
    try:
        t.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = t.recv(65536)
            except socket.timeout:
                return out, False
            except (ssl.SSLError, ConnectionResetError):
                return out, True
            if not chunk:
                return out, True
            out += chunk
        return out, False
    finally:
        t.close()


def split_responses(data):
    """HTTP/1.1 responses in data (Content-Length or chunked bodies)."""
    out = []
    while data.startswith(b"HTTP/"):
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            body, data = rest[:n], rest[n:]
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                n = int(size_line.split(b";")[0], 16)
                body += rest[:n]
                rest = rest[n + 2:]
                if n == 0:
                    break
            data = rest
        else:
            body, data = rest, b""
        out.append((status, hdrs, body))
    return out


def problem_of(resp):
    status, hdrs, body = resp
    return assert_problem((status, hdrs, body), status, json.loads(body)["code"])


SMUGGLED = b"GET /v1/invoices/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

FRAMINGS = {
    # both Content-Length and Transfer-Encoding: which one frames the body
    # depends on who reads it (CL.TE / TE.CL smuggling)
    "cl_and_te": (b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "te_and_cl": (b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
    # two Content-Lengths that differ
    "two_cl": (b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 0\r\nContent-Length: 2\r\n\r\n{}"),
    # a Transfer-Encoding other than chunked, or two of them
    "te_gzip": (b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    "two_te": (b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("name", sorted(FRAMINGS))
def test_ambiguous_framing_refused_and_closed(server, name):
    data, closed = raw_exchange(server, FRAMINGS[name] + SMUGGLED)
    rs = split_responses(data)
    assert rs, "no response at all: %r" % data[:300]
    p = problem_of(rs[0])
    assert rs[0][0] == 400 and p["code"] == "AMBIGUOUS_FRAMING", (name, p)
    assert rs[0][1].get("connection", "").lower() == "close", rs[0][1]
    # the smuggled second request is never served
    assert len(rs) == 1, "served %d responses: %r" % (len(rs), [r[0] for r in rs])
    assert closed, "the server kept the connection open"


def test_equal_duplicate_content_length_and_normal_keepalive(server):
    """Framing that is not ambiguous still works, pipelined on one connection."""
    good = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, _ = raw_exchange(server, good)
    rs = split_responses(data)
    assert [r[0] for r in rs] == [200, 400, 200], rs
    assert json.loads(rs[1][2])["code"] != "AMBIGUOUS_FRAMING"


@pytest.mark.parametrize("target", [
    "/v1/invoices/{n}%00/xml", "/v1/invoices/{n}%00", "/healthz%00", "/v1/invoices?serial=a%00b",
])
def test_nul_in_target_refused(server, target):
    r = server.issue("nul-" + str(abs(hash(target)) % 100000))
    assert r.status in (200, 201), r
    number = r.json()["number"]
    t = target.replace("{n}", number)
    req = ("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n"
           % (t, server.token())).encode()
    data, _ = raw_exchange(server, req)
    rs = split_responses(data)
    assert rs, data[:300]
    p = problem_of(rs[0])
    assert rs[0][0] == 400 and p["code"] == "INVALID_PATH", (t, p)


def test_access_log_valid_utf8_json(make_server):
    srv = make_server()
    log = srv.data_dir / "access.log"
    # raw invalid UTF-8, an escaped invalid byte, an over-long path cut in
    # the middle of a multi-byte character, a control character
    targets = [b"/v1/\xff\xfe/x", b"/v1/%C3%28", b"/" + "发票".encode() * 200,
               b"/v1/%01%1b[31m", b"/v1/\xe5\x8f"]
    for t in targets:
        raw_exchange(srv, b"GET " + t + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    srv.stop()
    lines = log.read_bytes().splitlines()
    assert len(lines) >= len(targets), lines
    paths = []
    for ln in lines:
        text = ln.decode("utf-8")  # raises on invalid UTF-8
        rec = json.loads(text)
        paths.append(rec.get("path", ""))
    joined = "\n".join(paths)
    assert "\\xFF" in joined or "%FF" in joined, paths
    assert "发票" in joined, "valid UTF-8 is kept as it is"
