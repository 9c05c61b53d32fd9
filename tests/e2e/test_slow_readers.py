"""Clients that never read their answers (docs/security.md "Response
memory"): 64 connections that ask for large pages and never read must not
pin the server's memory; the response-memory budget refuses new large
answers with 503 when spent; a response not sent within the send deadline
has its connection cut.  RSS is read from /proc/<pid>/status (loose bound)."""
import json
import re
import socket
import time

import pytest

from conftest import SANITIZED, SLOW, assert_problem, example_doc

LINES = 1000  # about 400 KB per stored document


def big_doc(i):
    doc = example_doc()
    line = dict(doc["items"][0])
    line["name"] = "超长项目名称" * 12
    line["spec"] = "规格%d" % i
    doc["items"] = [dict(line) for _ in range(LINES)]
    return doc


def populate(srv, n):
    # renders of these would only cost CPU here: make them fail at once
    r = srv.post_json("/v1/_faults", {"render": "fail"})
    assert r.status == 200, r
    numbers = []
    for i in range(n):
        r = srv.post_json("/v1/invoices", big_doc(i), headers={"Idempotency-Key": "big-%d" % i})
        assert r.status == 201, r
        numbers.append(r.json()["number"])
    return numbers


def metric(srv, name):
    text = srv.request("GET", "/metrics", auth=False).body.decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    assert m, name
    return float(m.group(1))


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def slow_reader(srv, path, rcvbuf=4096):
    """A TLS connection that sends one request and never reads."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10 * SLOW)
    s.connect(("127.0.0.1", srv.port))
    t = srv._ctx.wrap_socket(s, server_hostname="127.0.0.1")
    t.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % (path, srv.token())).encode())
    return t


def close_all(socks):
    for t in socks:
        try:
            t.close()
        except OSError:
            pass


def peak_rss(pid, seconds):
    peak, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.1)
    return peak


def test_64_slow_readers_keep_rss_bounded(make_server):
    # all from 127.0.0.1: room for them under the per-address connection cap
    srv = make_server(serve_args=["--fault-injection", "--max-body", str(2 << 20),
                                  "--max-connections-per-ip", "200"])
    populate(srv, 20)  # a page of all of them is ~8 MB
    pid = srv.proc.pid
    before = rss_mb(pid)
    socks = []
    try:
        for _ in range(64):
            socks.append(slow_reader(srv, "/v1/invoices?limit=200"))
        peak = peak_rss(pid, 4 * SLOW)
        print("RSS before %.1f MB, peak with 64 slow readers %.1f MB" % (before, peak))
        # ASan's shadow memory and quarantine: judge the growth there
        bound = before + 200 if SANITIZED else 200
        assert peak < bound, "RSS %.1f MB with 64 slow readers (before: %.1f MB)" % (peak, before)
        # legitimate requests are still served meanwhile
        r = srv.request("GET", "/v1/invoices?limit=200")
        assert r.status == 200, r
        page = r.json()
        assert len(page["invoices"]) == 20 and page["next_cursor"] is None
        assert all(len(inv["items"]) == LINES for inv in page["invoices"])
        r = srv.issue("after-slow-readers")
        assert r.status == 201, r
    finally:
        close_all(socks)


def test_streamed_page_is_the_same(make_server):
    """The page read in parts is the page: cursors, limits, filters."""
    srv = make_server(serve_args=["--fault-injection", "--max-body", str(2 << 20)])
    numbers = populate(srv, 5)
    small = [srv.issue("small-%d" % i).json()["number"] for i in range(3)]
    everything = numbers + small
    r = srv.request("GET", "/v1/invoices?limit=200")
    assert r.status == 200 and r.header("Content-Type") == "application/json", r
    assert [i["number"] for i in r.json()["invoices"]] == everything
    got, cursor = [], None
    while True:
        r = srv.request("GET", "/v1/invoices?limit=3" + ("&cursor=" + cursor if cursor else ""))
        assert r.status == 200, r
        page = r.json()
        assert len(page["invoices"]) <= 3
        got += [i["number"] for i in page["invoices"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == everything
    r = srv.request("GET", "/v1/invoices?limit=1&cursor=" + everything[-1])
    assert r.json() == {"invoices": [], "next_cursor": None}


def test_budget_refuses_large_answers_when_spent(make_server):
    srv = make_server(serve_args=["--fault-injection", "--max-body", str(2 << 20),
                                  "--response-memory-mb", "1"])
    numbers = populate(srv, 20)
    socks = []
    try:
        # a ~9 MB page each: once the kernel's socket buffers are full, each
        # connection holds its current part (a whole ~460 KB document)
        # unread, and a few of them spend the 1 MiB budget
        deadline = time.monotonic() + 20 * SLOW
        while True:
            socks.append(slow_reader(srv, "/v1/invoices?limit=200"))
            time.sleep(0.3)
            r = srv.request("GET", "/v1/invoices/" + numbers[1])
            if r.status != 200 or time.monotonic() > deadline or len(socks) >= 16:
                break
        p = assert_problem(r, 503, "RESPONSE_MEMORY_EXHAUSTED")
        assert int(r.header("Retry-After")) >= 1
        assert p["message_zh"] and p["message_en"]
        r = srv.request("GET", "/v1/invoices?limit=200")
        assert_problem(r, 503, "RESPONSE_MEMORY_EXHAUSTED")
        # small answers and writes go on
        assert srv.request("GET", "/healthz", auth=False).status == 200
        assert srv.request("GET", "/v1/invoices?limit=1&serial=none").status == 200
        assert srv.issue("during-budget").status == 201
        assert metric(srv, "fapiao_response_memory_refused_total") >= 2
        assert metric(srv, "fapiao_response_memory_limit_bytes") == 1 << 20
    finally:
        close_all(socks)
    # the budget comes back when those connections are gone
    deadline = time.monotonic() + 15 * SLOW
    while True:
        r = srv.request("GET", "/v1/invoices/" + numbers[1])
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status == 200, r


def test_send_deadline_cuts_a_reader_that_does_not_read(make_server):
    srv = make_server(serve_args=["--fault-injection", "--max-body", str(2 << 20),
                                  "--send-timeout-ms", "1500"])
    populate(srv, 20)
    t = slow_reader(srv, "/v1/invoices?limit=200")
    try:
        time.sleep(4 * SLOW)
        data, eof = b"", False
        t.settimeout(5 * SLOW)
        while True:
            try:
                chunk = t.recv(1 << 16)
            except (ConnectionResetError, OSError):
                eof = True
                break
            if not chunk:
                eof = True
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        assert b"transfer-encoding: chunked" in head.lower(), head
        # cut: the closing zero-length chunk never came
        assert eof and not body.endswith(b"\r\n0\r\n\r\n"), len(body)
        assert len(body) < 20 * 400000, len(body)
    finally:
        t.close()
    # the cut is logged as such, and the server serves on
    assert srv.healthy()
    deadline = time.monotonic() + 5 * SLOW
    while time.monotonic() < deadline:
        log = (srv.data_dir / "access.log").read_text(encoding="utf-8")
        recs = [json.loads(x) for x in log.splitlines() if x.strip()]
        if any(x.get("path") == "/v1/invoices" and x.get("termination") for x in recs):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no cut request in the access log")
    assert metric(srv, "fapiao_http_send_timeouts_total") >= 1


def test_serve_help_and_bad_values(tmp_path):
    import subprocess
    from conftest import BIN
    out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for flag in ("--response-memory-mb", "--send-timeout-ms", "--allow-private-webhooks"):
        assert flag in out.stdout, flag
    for args in (["--response-memory-mb", "0"], ["--send-timeout-ms", "5"]):
        r = subprocess.run([BIN, "serve", "--data-dir", str(tmp_path)] + args,
                           capture_output=True, text=True, timeout=30, env={"LANG": "C"})
        assert r.returncode == 2 and args[0] in r.stderr, (args, r.stderr)
