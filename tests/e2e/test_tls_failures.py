"""The server's record of failed TLS handshakes (src/server/tls_failures.c,
docs/security.md "Failed handshakes"), with real failing clients: one that
does not trust our CA (its alert: unknown_ca), one that offers only TLS 1.0,
one with a client certificate from another CA (--client-ca), one that goes
away mid-handshake.  Each is seen per client address and reason in
GET /v1/admin/tls-failures (operator) and by reason in
fapiao_tls_handshake_failures_total; the table is bounded."""
import json
import re
import shutil
import socket
import ssl
import subprocess

import pytest

from conftest import BIN, SLOW


def metric(srv, reason):
    text = srv.request("GET", "/metrics", auth=False).body.decode()
    m = re.search(r'^fapiao_tls_handshake_failures_total\{reason="%s"\} (\S+)$'
                  % re.escape(reason), text, re.M)
    return float(m.group(1)) if m else None


def token(srv, roles):
    out = subprocess.run([BIN, "keys", "create", "--roles", roles, "--json",
                          "--data-dir", str(srv.data_dir)],
                         capture_output=True, text=True, timeout=30 * SLOW)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    r = srv.get_token_response(doc["client_id"], doc["client_secret"])
    assert r.status == 200, r
    return r.json()["access_token"]


def failures(srv, tok):
    r = srv.request("GET", "/v1/admin/tls-failures", auth=tok)
    assert r.status == 200, r
    return r.json()


def entries(doc, address):
    return {e["reason"]: e for e in doc["failures"] if e["address"] == address}


def connect_from(srv, src):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10 * SLOW,
                                 source_address=(src, 0))
    return s


def handshake_fails(ctx, srv, src):
    s = connect_from(srv, src)
    try:
        with pytest.raises((ssl.SSLError, OSError)):
            ctx.wrap_socket(s, server_hostname="127.0.0.1").do_handshake()
    finally:
        s.close()


def test_untrusting_client_and_tls10_client_recorded(make_server):
    srv = make_server()
    op = token(srv, "operator")
    assert failures(srv, op)["failures"] == []

    # 1. a client that does not trust our CA: it ends with alert unknown_ca
    untrusting = ssl.create_default_context()  # the system's CAs, not ours
    for _ in range(2):
        handshake_fails(untrusting, srv, "127.0.0.71")

    # 2. a client that offers TLS 1.0 only
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1
    handshake_fails(old, srv, "127.0.0.72")

    # 3. a client that sends its ClientHello and goes away
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = srv._ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    s = connect_from(srv, "127.0.0.73")
    s.sendall(out.read())
    s.recv(65536)  # the server's first flight: the handshake is on
    s.close()

    # a good client from the same address as 1. is not a failure
    st, _ = https_get(srv, "127.0.0.71")
    assert st == 200

    want = {("127.0.0.71", "unknown_ca"): 2, ("127.0.0.72", "version_too_old"): 1,
            ("127.0.0.73", "closed_in_handshake"): 1}
    doc = wait_for(srv, op, want)
    for (addr, reason), n in want.items():
        assert reason in entries(doc, addr), (addr, reason, doc["failures"])
        e = entries(doc, addr)[reason]
        assert e["count"] == n, e
        assert e["first_seen_ms"] <= e["last_seen_ms"], e
    assert set(entries(doc, "127.0.0.71")) == {"unknown_ca"}
    assert doc["totals"]["unknown_ca"] == 2 and doc["evicted"] == 0
    assert metric(srv, "unknown_ca") == 2
    assert metric(srv, "version_too_old") == 1
    assert metric(srv, "closed_in_handshake") == 1
    assert metric(srv, "client_cert_untrusted") == 0
    # the metric has reasons for labels, never addresses
    text = srv.request("GET", "/metrics", auth=False).body.decode()
    assert "127.0.0.7" not in "\n".join(
        ln for ln in text.splitlines() if ln.startswith("fapiao_tls_handshake_failures_total"))
    # libmicrohttpd's line for a failed handshake points to the record
    assert "see GET /v1/admin/tls-failures" in srv.log_text()

    # operator only
    r = srv.request("GET", "/v1/admin/tls-failures")  # the demo issuer
    assert r.status == 403, r
    assert srv.request("GET", "/v1/admin/tls-failures", auth=False).status == 401


def https_get(srv, src):
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv._ctx,
                                    timeout=10 * SLOW, source_address=(src, 0))
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_for(srv, op, want, limit=None):
    """The record once it holds `want` (the close that records a failure
    may come a moment after the client's error)."""
    import time
    deadline = time.monotonic() + (limit or 10 * SLOW)
    while True:
        doc = failures(srv, op)
        have = {(e["address"], e["reason"]): e["count"] for e in doc["failures"]}
        if all(have.get(k, 0) >= n for k, n in want.items()) or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def test_client_certificate_from_another_ca_recorded(make_server, tmp_path):
    """With --client-ca, certificates are requested, not required: a client
    certificate from another CA does not stop the handshake (and is not
    used), and it is recorded as client_cert_untrusted; one from the
    client CA is not."""
    from test_tls import Pki, client_context
    ca = Pki(tmp_path / "clients", cn="client CA")
    good_crt, good_key = ca.cert("erp", cn="erp-1", client=True)
    other = Pki(tmp_path / "other", name="ca2", cn="another CA")
    bad_crt, bad_key = other.cert("intruder", cn="erp-1", client=True)
    srv = make_server(serve_args=["--client-ca", str(ca.ca_crt)])
    op = token(srv, "operator")
    for src, crt, key in (("127.0.0.81", bad_crt, bad_key), ("127.0.0.82", good_crt, good_key)):
        s = connect_from(srv, src)
        tls = client_context(srv.ca_cert, crt, key).wrap_socket(s, server_hostname="127.0.0.1")
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 200")
        tls.close()
    srv.request("GET", "/healthz", auth=False)
    doc = wait_for(srv, op, {("127.0.0.81", "client_cert_untrusted"): 1})
    assert entries(doc, "127.0.0.81")["client_cert_untrusted"]["count"] == 1
    assert entries(doc, "127.0.0.82") == {}
    assert metric(srv, "client_cert_untrusted") == 1


def test_table_is_bounded_oldest_evicted(make_server):
    """More failing addresses than the table holds (256): the least
    recently seen entries make room and are counted; totals keep all."""
    srv = make_server()
    op = token(srv, "operator")
    n = 256 + 6
    for i in range(n):
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = srv._ctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
        with pytest.raises(ssl.SSLWantReadError):
            obj.do_handshake()
        s = connect_from(srv, "127.0.%d.%d" % (1 + i // 200, 1 + i % 200))
        s.sendall(out.read())
        s.recv(65536)
        s.close()
    import time
    deadline = time.monotonic() + 20 * SLOW
    while metric(srv, "closed_in_handshake") != n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(srv, "closed_in_handshake") == n
    doc = failures(srv, op)
    assert doc["capacity"] == 256
    assert len(doc["failures"]) == 256
    assert doc["evicted"] == n - 256
    addrs = {e["address"] for e in doc["failures"]}
    assert "127.0.1.1" not in addrs  # the first one seen is gone
    assert "127.0.2.%d" % (n - 200) in addrs  # the last one is kept


def test_cli_tls_failures_reads_the_record(make_server, tmp_path):
    """`fapiao tls failures` with an operator's credential prints the
    table (and --json the endpoint's document); an issuer's is refused."""
    srv = make_server()
    handshake_fails(ssl.create_default_context(), srv, "127.0.0.91")
    out = subprocess.run([BIN, "keys", "create", "--roles", "operator", "--json",
                          "--data-dir", str(srv.data_dir)],
                         capture_output=True, text=True, timeout=30 * SLOW)
    doc = json.loads(out.stdout)
    doc.update(ca_cert=srv.ca_cert, base_url=srv.base_url)
    cred = tmp_path / "operator.json"
    cred.write_text(json.dumps(doc))
    env = {"LANG": "en_US.UTF-8", "PATH": "/usr/bin:/bin"}
    import time
    deadline = time.monotonic() + 10 * SLOW
    while True:
        r = subprocess.run([BIN, "tls", "failures", "--server", srv.base_url, "--credential",
                            str(cred)], capture_output=True, text=True, env=env,
                           timeout=60 * SLOW)
        if "127.0.0.91" in r.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("127.0.0.91")]
    assert line and line[0].split()[1:3] == ["unknown_ca", "1"], r.stdout
    r = subprocess.run([BIN, "tls", "failures", "--server", srv.base_url, "--credential",
                        str(cred), "--json"], capture_output=True, text=True, env=env,
                       timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["totals"]["unknown_ca"] == 1
    issuer = tmp_path / "issuer.json"
    issuer.write_text(json.dumps(srv.init_out))
    r = subprocess.run([BIN, "tls", "failures", "--server", srv.base_url, "--credential",
                        str(issuer)], capture_output=True, text=True, env=env,
                       timeout=60 * SLOW)
    assert r.returncode == 3 and "403" in r.stderr + r.stdout, (r.returncode, r.stderr)
