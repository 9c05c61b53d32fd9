"""libfapiao-client through the CLI: `fapiao issue` (one and --batch), `get`
and `pdf-download` against a real `fapiao serve`, and the retry policy
against a scripted fake server on loopback (plain HTTP), which records every
request it gets: the Idempotency-Key never changes across retries, only what
is safe is retried, a 401 gets one token refresh, Retry-After is a floor,
the token is refreshed before it expires, and a failure carries a finding
code with its knowledge-base article (include/fapiao-client/client.h,
docs/client.md).
"""
import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import BIN, EXAMPLE_BODY, REPO, SLOW, example_doc, free_port

EXIT_REJECTED, EXIT_UNAVAILABLE = 3, 4


def cli(*args, timeout=120):
    r = subprocess.run([BIN, *args], capture_output=True, timeout=timeout * SLOW,
                       env={"LANG": "en_US.UTF-8", "PATH": "/usr/bin:/bin"})
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def cli_json(*args, timeout=120):
    rc, out, err = cli(*args, "--json", timeout=timeout)
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    return rc, lines, err


@pytest.fixture(scope="module")
def cred(server, tmp_path_factory):
    p = tmp_path_factory.mktemp("cred") / "cred.json"
    p.write_text(json.dumps(server.init_out))
    return str(p)


@pytest.fixture(scope="module")
def invoice_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("inv") / "invoice.json"
    p.write_bytes(EXAMPLE_BODY)
    return str(p)


def issued_count(server, serial):
    return server.db_query("SELECT count(*) FROM invoices WHERE serial = ?", (serial,))[0][0]


# ---- against the real server ---------------------------------------------

def test_issue_replays_with_the_same_serial_and_fails_over(server, cred, invoice_file):
    rc, out, err = cli_json("issue", "--server", server.base_url, "--credential", cred,
                            "--serial", "cli-one", invoice_file)
    assert rc == 0, err
    first = out[0]
    assert len(first["number"]) == 20 and first["replayed"] is False, first
    # again, the first address down: the same invoice, replayed, not a second one
    dead = "https://127.0.0.1:%d" % free_port()
    rc, out, err = cli_json("issue", "--server", dead + "," + server.base_url,
                            "--credential", cred, "--serial", "cli-one", invoice_file)
    assert rc == 0, err
    assert out[0]["number"] == first["number"] and out[0]["replayed"] is True, out
    assert issued_count(server, "cli-one") == 1


def test_get_and_pdf_download(server, cred, invoice_file, tmp_path):
    rc, out, err = cli_json("issue", "--server", server.base_url, "--credential", cred,
                            "--serial", "cli-get", invoice_file)
    assert rc == 0, err
    number = out[0]["number"]
    rc, text, err = cli("get", number, "--server", server.base_url, "--credential", cred)
    assert rc == 0, err
    assert json.loads(text)["number"] == number
    pdf = tmp_path / "inv.pdf"
    rc, out, err = cli_json("pdf-download", number, "-o", str(pdf),
                            "--server", server.base_url, "--credential", cred)
    assert rc == 0, err
    assert pdf.read_bytes().startswith(b"%PDF-") and out[0]["bytes"] == pdf.stat().st_size
    rc, _, err = cli("get", "9" * 20, "--server", server.base_url, "--credential", cred)
    assert rc == EXIT_REJECTED and "NOT_FOUND" in err, err


def test_a_refused_invoice_is_not_retried(server, cred, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"invoice_type":"01"}')
    rc, out, _ = cli_json("issue", "--server", server.base_url, "--credential", cred,
                          "--serial", "cli-bad", str(bad))
    assert rc == EXIT_REJECTED
    e = out[0]["error"]
    assert e["status"] == 400 and e["retryable"] is False, e
    assert e["attempts"] == 2, e  # the token, then the one refused issue
    assert issued_count(server, "cli-bad") == 0


def test_batch_summary_and_rerun(server, cred, tmp_path):
    lines = [json.dumps({"serial": "batch-%d" % i, "invoice": example_doc()}) for i in range(4)]
    lines.insert(2, "not json")
    batch = tmp_path / "b.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    args = ("issue", "--server", server.base_url, "--credential", cred, "--batch", str(batch))
    rc, out, err = cli_json(*args)
    assert rc == EXIT_REJECTED, err  # the bad line
    assert out[-1]["summary"] == {"lines": 5, "issued": 4, "replayed": 0, "rejected": 0,
                                  "unavailable": 0, "bad_lines": 1}, out[-1]
    numbers = {o["serial"]: o["number"] for o in out if "number" in o}
    rc, out, err = cli_json(*args)
    assert out[-1]["summary"]["replayed"] == 4 and out[-1]["summary"]["issued"] == 0, out
    assert {o["serial"]: o["number"] for o in out if "number" in o} == numbers
    for i in range(4):
        assert issued_count(server, "batch-%d" % i) == 1
    rc, text, err = cli(*args)  # the human summary
    assert "5 lines: issued 0, issued before 4, refused 0, unavailable 0, bad lines 1" in text


def test_connection_refused_carries_the_doctors_finding(cred, invoice_file):
    dead = "https://127.0.0.1:%d" % free_port()
    rc, out, _ = cli_json("issue", "--server", dead, "--credential", cred, "--serial", "x-1",
                          "--deadline", "2", invoice_file)
    assert rc == EXIT_UNAVAILABLE
    e = out[0]["error"]
    assert e["finding"] == "TCP_REFUSED" and e["retryable"] is True, e
    assert e["article"] == "kb/TCP_REFUSED.md" and (REPO / e["article"]).exists()


# ---- against a scripted fake server ----------------------------------------

class Fake:
    """Answers /v1/token with tokens of ttl seconds and /v1/invoices from a
    script of answers: (status, headers, problem code) or "drop" (the
    connection is closed with no answer).  Records every request."""

    def __init__(self, script, ttl=3600):
        self.script = list(script)
        self.ttl = ttl
        self.requests = []  # (path, idempotency key, body, token, monotonic time)
        self.tokens = {}    # token -> issue time
        self.expired_used = 0
        self.lock = threading.Lock()
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.handle(self, body)

            def do_GET(self):
                fake.handle(self, b"")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def send(self, h, status, doc, headers=(), ctype="application/json"):
        data = json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def handle(self, h, body):
        now = time.monotonic()
        with self.lock:
            if h.path == "/v1/token":
                tok = "t%d" % len(self.tokens)
                self.tokens[tok] = now
                self.requests.append((h.path, None, body, None, now))
                return self.send(h, 200, {"access_token": tok, "token_type": "Bearer",
                                          "expires_in": self.ttl})
            tok = (h.headers.get("Authorization") or "")[7:]
            if tok in self.tokens and now > self.tokens[tok] + self.ttl + 0.5:
                self.expired_used += 1
            self.requests.append((h.path, h.headers.get("Idempotency-Key"), body, tok, now))
            step = self.script.pop(0) if self.script else (500, (), "INTERNAL")
        if step == "drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        status, headers, code = step
        if status == 201:
            return self.send(h, 201, {"number": "1" * 20, "serial": "s"})
        self.send(h, status, {"type": "urn:fapiao:error:" + code, "status": status, "code": code,
                              "title": code, "message_zh": code, "message_en": code,
                              "request_id": "r"}, headers, "application/problem+json")

    def issues(self):
        return [r for r in self.requests if r[0] == "/v1/invoices"]

    def token_requests(self):
        return [r for r in self.requests if r[0] == "/v1/token"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_cred(tmp_path):
    p = tmp_path / "cred.json"
    p.write_text(json.dumps({"client_id": "c", "client_secret": "s"}))
    return str(p)


def fake_issue(fake, fake_cred, invoice_file, serial="k-1", deadline="60"):
    return cli_json("issue", "--server", fake.url, "--credential", fake_cred, "--serial", serial,
                    "--deadline", deadline, invoice_file)


def test_every_retry_sends_the_same_key_and_body(fake_cred, invoice_file):
    fake = Fake([(503, [("Retry-After", "0")], "SHUTTING_DOWN"), "drop", (500, (), "INTERNAL"),
                 (429, [("Retry-After", "0")], "RATE_LIMITED"),
                 (409, (), "IDEMPOTENCY_IN_PROGRESS"), (201, (), None)])
    try:
        rc, out, err = fake_issue(fake, fake_cred, invoice_file, serial="ERP-2024:0001")
        assert rc == 0, err
        assert out[0]["number"] == "1" * 20
        issues = fake.issues()
        assert len(issues) == 6
        assert {r[1] for r in issues} == {"ERP-2024:0001"}
        assert len({r[2] for r in issues}) == 1
    finally:
        fake.close()


@pytest.mark.parametrize("status,code,finding", [
    (400, "INVALID_FIELD", ""),
    (403, "IP_NOT_ALLOWED", "AUTH_IP_NOT_ALLOWED"),
    (403, "FORBIDDEN", "AUTH_SCOPE_MISSING"),
    (404, "NOT_FOUND", ""),
    (409, "RED_FORM_STATE", ""),
    (413, "BODY_TOO_LARGE", ""),
    (422, "IDEMPOTENCY_KEY_REUSED", ""),
])
def test_other_4xx_are_never_retried(fake_cred, invoice_file, status, code, finding):
    fake = Fake([(status, (), code), (201, (), None)])
    try:
        rc, out, _ = fake_issue(fake, fake_cred, invoice_file)
        assert rc == EXIT_REJECTED
        e = out[0]["error"]
        assert (e["status"], e["code"], e.get("finding", "")) == (status, code, finding)
        if finding:
            assert e["article"] == "kb/%s.md" % finding and (REPO / e["article"]).exists()
        assert len(fake.issues()) == 1
    finally:
        fake.close()


def test_a_401_gets_one_refresh_and_one_retry(fake_cred, invoice_file):
    fake = Fake([(401, (), "TOKEN_EXPIRED"), (201, (), None)])
    try:
        rc, _, err = fake_issue(fake, fake_cred, invoice_file)
        assert rc == 0, err
        assert len(fake.token_requests()) == 2 and len(fake.issues()) == 2
        assert fake.issues()[0][3] != fake.issues()[1][3]  # the new token
    finally:
        fake.close()
    fake = Fake([(401, (), "TOKEN_EXPIRED"), (401, (), "TOKEN_EXPIRED"), (201, (), None)])
    try:
        rc, out, _ = fake_issue(fake, fake_cred, invoice_file)
        assert rc == EXIT_REJECTED and out[0]["error"]["finding"] == "AUTH_TOKEN_EXPIRED"
        assert len(fake.token_requests()) == 2 and len(fake.issues()) == 2
    finally:
        fake.close()


def test_retry_after_is_a_floor(fake_cred, invoice_file):
    fake = Fake([(503, [("Retry-After", "2")], "DEGRADED"), (201, (), None)])
    try:
        rc, _, err = fake_issue(fake, fake_cred, invoice_file)
        assert rc == 0, err
        first, second = fake.issues()
        assert second[4] - first[4] >= 1.95  # never sooner than asked
    finally:
        fake.close()


def test_the_token_is_refreshed_before_it_expires(fake_cred, invoice_file):
    # a 2 s token; three waits of Retry-After 1 outlive it within one call
    fake = Fake([(503, [("Retry-After", "1")], "DEGRADED")] * 3 + [(201, (), None)], ttl=2)
    try:
        rc, _, err = fake_issue(fake, fake_cred, invoice_file)
        assert rc == 0, err
        assert len(fake.token_requests()) >= 2
        assert fake.expired_used == 0
        assert len(fake.issues()) == 4  # no 401 round trip was needed
    finally:
        fake.close()


def test_the_deadline_ends_the_retries(fake_cred, invoice_file):
    fake = Fake([(503, [("Retry-After", "30")], "DEGRADED")] * 3)
    try:
        rc, out, _ = fake_issue(fake, fake_cred, invoice_file, deadline="3")
        assert rc == EXIT_UNAVAILABLE
        e = out[0]["error"]
        assert e["retryable"] is True and e["code"] == "DEGRADED", e
        assert len(fake.issues()) == 1  # a 30 s wait would pass the 3 s deadline
    finally:
        fake.close()


def test_the_c_example_issues_through_the_shared_library(server, invoice_file):
    """examples/client/issue.c, built against libfapiao-client.so.0."""
    from pathlib import Path
    example = Path(BIN).parent / "client_example"
    assert example.exists(), "build the client_example target"
    args = [str(example), server.base_url, server.client_id, server.client_secret,
            str(server.ca_cert), "example-1", invoice_file]
    first = subprocess.run(args, capture_output=True, timeout=60 * SLOW)
    assert first.returncode == 0, first.stderr
    number = first.stdout.decode().split()[0]
    again = subprocess.run(args, capture_output=True, timeout=60 * SLOW)
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode().strip() == number + " (issued before)"
    assert issued_count(server, "example-1") == 1
