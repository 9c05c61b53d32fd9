"""The outbox against the real binary: PDFs rendered after the durable write
(202 while pending), isolation of a render that hangs, signed webhooks to a
real local receiver (retries with growing intervals while it is down or
failing, dead letter and re-drive, at-least-once across kill -9), receipt
confirmation, and what /metrics shows of it."""
import hashlib
import hmac
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import BIN, REPO, SLOW, assert_problem, example_doc, free_port

WAIT = 30 * SLOW
# The receivers here listen on 127.0.0.1, which webhooks may reach only when
# the operator allows it (docs/security.md "Webhook targets").
ALLOW = ["--allow-private-webhooks"]


class Receiver:
    """A webhook receiver on 127.0.0.1.  `plan` is a list of statuses
    answered in turn (the last one repeats); "hang" holds the request until
    release() is called.  Every request is recorded with its arrival time."""

    def __init__(self, port=None, plan=(200,)):
        self.port = port or free_port()
        self.plan = list(plan)
        self.calls = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.httpd = None

    def start(self):
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.lock:
                    i = len(rec.calls)
                    rec.calls.append({"t": time.monotonic(), "headers": dict(self.headers),
                                      "body": body, "path": self.path})
                    action = rec.plan[min(i, len(rec.plan) - 1)]
                if action == "hang":
                    rec.released.wait(60)
                    action = 200
                self.send_response(action)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def release(self):
        self.released.set()

    @property
    def url(self):
        return "http://127.0.0.1:%d/fapiao/events" % self.port

    def wait_calls(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.calls) >= n:
                    return list(self.calls)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError("receiver got %d of %d calls within %ss"
                                 % (len(self.calls), n, timeout))


@pytest.fixture
def receivers():
    made = []

    def make(*a, **kw):
        r = Receiver(*a, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.release()
        r.stop()


def set_webhook(srv, url, allow_private=True):
    out = subprocess.run([BIN, "webhook", "set", "--data-dir", str(srv.data_dir),
                          "--client-id", srv.client_id, "--url", url]
                         + (["--allow-private"] if allow_private else []),
                         capture_output=True, text=True, timeout=30, env={"LANG": "C"})
    assert out.returncode == 0, out.stderr
    m = re.search(r"^secret: (whsec_\S+)$", out.stdout, re.M)
    assert m, out.stdout
    return m.group(1)


def verify(call, secret):
    """The receiver's side of docs/webhooks.md."""
    h = {k.lower(): v for k, v in call["headers"].items()}
    ts, nonce, sig = h["x-fapiao-timestamp"], h["x-fapiao-nonce"], h["x-fapiao-signature"]
    mac = hmac.new(secret.encode(), ts.encode() + b"." + nonce.encode() + b"." + call["body"],
                   hashlib.sha256).hexdigest()
    assert abs(int(ts) - time.time()) < 300, "timestamp too far off: %s" % ts
    assert re.fullmatch(r"[0-9a-f]{32}", nonce), nonce
    return hmac.compare_digest(sig, "v1=" + mac)


def issue(srv, key, doc=None):
    r = srv.post_json("/v1/invoices", doc or example_doc(), headers={"Idempotency-Key": key})
    assert r.status == 201, r
    return r.json()["number"]


def wait_for(pred, timeout=WAIT, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


def status_of(srv, number):
    r = srv.request("GET", "/v1/invoices/" + number)
    assert r.status == 200, r
    return r.json()["status"]


def jobs(srv, **q):
    qs = "&".join("%s=%s" % kv for kv in q.items())
    r = srv.request("GET", "/v1/jobs" + ("?" + qs if qs else ""))
    assert r.status == 200, r
    return r.json()["jobs"]


def metric(srv, name, labels=""):
    text = srv.request("GET", "/metrics", auth=False).body.decode()
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def test_pdf_webhook_ack(make_server, receivers):
    srv = make_server(serve_args=ALLOW + ["--retry-backoff-ms", "200"])
    rec = receivers().start()
    secret = set_webhook(srv, rec.url)
    number = issue(srv, "outbox-happy-1")

    # the PDF: 202 with Retry-After until rendered, then the document
    def pdf_ready():
        r = srv.request("GET", "/v1/invoices/%s/pdf" % number)
        if r.status == 202:
            assert r.header("Retry-After") == "1", r
            assert r.json()["number"] == number
            return None
        return r
    r = wait_for(pdf_ready, what="the PDF")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/pdf"
    assert r.body.startswith(b"%PDF-") and r.body.rstrip().endswith(b"%%EOF")

    # the webhook: one signed event with a stable id, then `delivered`
    calls = rec.wait_calls(1)
    assert verify(calls[0], secret), "signature does not verify"
    assert not verify(dict(calls[0], body=calls[0]["body"] + b" "), secret)
    ev = json.loads(calls[0]["body"])
    assert ev["id"] == "evt_%s_rendered" % number
    assert ev["type"] == "invoice.rendered"
    assert ev["data"]["number"] == number and ev["data"]["serial"] == "outbox-happy-1"
    assert ev["data"]["links"]["pdf"] == "/v1/invoices/%s/pdf" % number
    h = {k.lower(): v for k, v in calls[0]["headers"].items()}
    assert h["x-fapiao-event-id"] == ev["id"]
    assert h["content-type"] == "application/json"
    wait_for(lambda: status_of(srv, number) == "delivered", what="status delivered")

    # the caller confirms receipt
    r = srv.request("POST", "/v1/invoices/%s/ack" % number)
    assert r.status == 200 and r.json() == {"number": number, "status": "confirmed"}, r
    assert status_of(srv, number) == "confirmed"
    assert srv.db_query("SELECT count(*) FROM audit WHERE action='invoice.ack' AND target=?",
                        (number,))[0][0] == 1
    listed = srv.request("GET", "/v1/invoices?serial=outbox-happy-1").json()["invoices"]
    assert listed[0]["status"] == "confirmed"
    assert_problem(srv.request("POST", "/v1/invoices/26440000000000999999/ack"), 404, "NOT_FOUND")
    assert_problem(srv.request("GET", "/v1/invoices/26440000000000999999/pdf"), 404, "NOT_FOUND")

    # a run is counted just after its outcome is stored (the status seen
    # above): wait for the count, then it must be exact
    for kind in ("render", "notify"):
        labels = '{kind="%s",result="ok"}' % kind
        wait_for(lambda: (metric(srv, "fapiao_outbox_runs_total", labels) or 0) >= 1,
                 timeout=5 * SLOW, what="the %s run in /metrics" % kind)
        assert metric(srv, "fapiao_outbox_runs_total", labels) == 1
    # the job gauges are the health thread's count (taken every second)
    wait_for(lambda: metric(srv, "fapiao_outbox_jobs", '{kind="notify",state="pending"}') == 0,
             timeout=5, what="no pending notify job in /metrics")
    assert len(rec.calls) == 1


def test_retries_grow_until_receiver_returns(make_server, receivers):
    """Down (connection refused), then failing (503 twice), then up: every
    attempt waits at least as long as the one before, and the event arrives
    once the receiver is back."""
    srv = make_server(serve_args=ALLOW + ["--retry-backoff-ms", "300"])
    port = free_port()
    rec = receivers(port=port, plan=(503, 503, 200))
    secret = set_webhook(srv, rec.url)
    number = issue(srv, "outbox-down-1")

    def notify_attempts():
        js = [j for j in jobs(srv) if j["kind"] == "notify"]
        return js and js[0]["attempts"] >= 2 and js[0]
    job = wait_for(notify_attempts, what="two failed deliveries")
    assert job["state"] in ("pending", "running")
    assert "connect" in (job["last_error"] or "").lower(), job
    rec.start()
    calls = rec.wait_calls(3)
    assert [verify(c, secret) for c in calls] == [True, True, True]
    ids = {json.loads(c["body"])["id"] for c in calls}
    assert ids == {"evt_%s_rendered" % number}, "one event, one id on every retry"
    gaps = [b["t"] - a["t"] for a, b in zip(calls, calls[1:])]
    # attempt n waits in [d/2, d] with d = 300 ms * 2^(n-1): the 3rd and 4th
    # failures are followed by at least 0.6 s and 1.2 s
    assert gaps[0] >= 0.55, gaps
    assert gaps[1] >= gaps[0] * 0.95, gaps
    wait_for(lambda: status_of(srv, number) == "delivered", what="delivered")
    done = [j for j in jobs(srv) if j["kind"] == "notify"][0]
    assert done["state"] == "done" and done["attempts"] == 5, done


def test_dead_letter_and_redrive(make_server, receivers):
    # retries every ~100-400 ms; after 5 failures in a row the receiver's
    # breaker opens for 5 s, then lets one try through, which fails again:
    # dead letter once the 10 s retry period is over.  (With a 4 s period a
    # first attempt delayed by a loaded machine could be the only one.)
    srv = make_server(serve_args=ALLOW + ["--retry-backoff-ms", "100", "--webhook-retry-for", "10"])
    rec = receivers(plan=(500,)).start()
    set_webhook(srv, rec.url)
    number = issue(srv, "outbox-dead-1")
    dead = wait_for(lambda: jobs(srv, state="dead"), what="a dead letter")
    assert len(dead) == 1 and dead[0]["kind"] == "notify", dead
    assert dead[0]["invoice_number"] == number
    assert "500" in dead[0]["last_error"] or "circuit" in dead[0]["last_error"], dead
    n_calls = len(rec.calls)
    assert n_calls >= 2
    time.sleep(0.5)
    assert len(rec.calls) == n_calls, "a dead letter is not retried"
    wait_for(lambda: metric(srv, "fapiao_outbox_jobs", '{kind="notify",state="dead"}') == 1,
             timeout=5, what="one dead notify job in /metrics")
    assert status_of(srv, number) == "rendered"

    # the CLI sees it too
    out = subprocess.run([BIN, "outbox", "list", "--data-dir", str(srv.data_dir),
                          "--state", "dead", "--json"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert [j["id"] for j in json.loads(out.stdout)] == [dead[0]["id"]]

    # a job that is not dead cannot be re-driven
    render = [j for j in jobs(srv) if j["kind"] == "render"][0]
    assert_problem(srv.request("POST", "/v1/jobs/%d/redrive" % render["id"]), 409, "JOB_STATE")
    assert_problem(srv.request("POST", "/v1/jobs/99999/redrive"), 404, "NOT_FOUND")

    # the receiver is fixed; re-driven, the event arrives (once the
    # breaker's 5 s are over: the re-driven job has a new 10 s period)
    rec.plan = [200]
    r = srv.request("POST", "/v1/jobs/%d/redrive" % dead[0]["id"])
    assert r.status == 200 and r.json()["state"] in ("pending", "running", "done"), r
    wait_for(lambda: status_of(srv, number) == "delivered", what="delivered after re-drive")
    assert srv.db_query("SELECT count(*) FROM audit WHERE action='job.redrive'")[0][0] == 1


def test_kill_during_delivery_resumes(make_server, receivers):
    """kill -9 while the receiver holds the POST: after restart the event is
    sent again with the same id (at least once)."""
    srv = make_server(serve_args=ALLOW + ["--retry-backoff-ms", "200"])
    rec = receivers(plan=("hang", 200)).start()
    secret = set_webhook(srv, rec.url)
    number = issue(srv, "outbox-kill-1")
    first = rec.wait_calls(1)[0]
    srv.kill9()
    rec.release()
    srv.start()
    calls = rec.wait_calls(2)
    assert verify(calls[1], secret)
    assert json.loads(calls[1]["body"])["id"] == json.loads(first["body"])["id"]
    assert json.loads(calls[1]["body"]) == json.loads(first["body"])
    wait_for(lambda: status_of(srv, number) == "delivered", what="delivered after restart")
    assert "recovered_jobs" in srv.log_text()


def test_render_hang_is_bounded_and_isolated(make_server, monkeypatch):
    """A render that never finishes (the worker's test fault) is killed at
    --render-timeout, retried, then failed with the reason; meanwhile other
    invoices render and the API answers."""
    monkeypatch.setenv("FP_RENDER_FAULT", "sleep")
    srv = make_server(serve_args=["--render-timeout", "1", "--retry-backoff-ms", "100",
                                  "--outbox-workers", "2"])
    doc = example_doc()
    doc["remark"] = "FAULT:SLEEP"
    stuck = issue(srv, "outbox-hang-1", doc)
    r = srv.request("GET", "/v1/invoices/%s/pdf" % stuck)
    assert r.status == 202 and r.header("Retry-After") == "1", r
    fine = issue(srv, "outbox-hang-2")
    wait_for(lambda: srv.request("GET", "/v1/invoices/%s/pdf" % fine).status == 200,
             what="the other invoice's PDF")
    assert srv.healthy()
    wait_for(lambda: status_of(srv, stuck) == "failed", timeout=60 * SLOW, what="failed")
    inv = srv.request("GET", "/v1/invoices/" + stuck).json()
    assert "longer than 1000 ms" in inv["failure"], inv
    r = srv.request("GET", "/v1/invoices/%s/pdf" % stuck)
    assert_problem(r, 500, "RENDER_FAILED")
    render = [j for j in jobs(srv, state="dead") if j["invoice_number"] == stuck]
    assert render and render[0]["attempts"] == 3, render
    dead = '{kind="render",result="dead"}'  # counted just after the job is stored dead
    wait_for(lambda: metric(srv, "fapiao_outbox_runs_total", dead) == 1, timeout=5 * SLOW,
             what="the dead render in /metrics")


def test_five_thousand_lines(make_server, tmp_path):
    """A 5,000-line invoice with long names: rendered (many pages) within the
    bounds, or failed with a reason; the server keeps answering throughout."""
    srv = make_server(serve_args=["--max-body", str(4 << 20)])
    doc = example_doc()
    line = dict(doc["items"][0])
    line["name"] = "超长项目名称" * 12
    line["spec"] = "规格" * 20
    doc["items"] = [dict(line) for _ in range(5000)]
    number = issue(srv, "outbox-5000", doc)
    t0 = time.monotonic()
    while True:
        assert srv.healthy()
        r = srv.request("GET", "/v1/invoices/%s/pdf" % number)
        if r.status != 202 or time.monotonic() - t0 > 120 * SLOW:
            break
        time.sleep(0.2)
    if r.status == 200:
        pdf = tmp_path / "5000.pdf"
        pdf.write_bytes(r.body)
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=60)
        pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))
        assert pages > 100, info.stdout
    else:
        assert_problem(r, 500, "RENDER_FAILED")


def test_webhook_cli_errors(server):
    bad = subprocess.run([BIN, "webhook", "set", "--data-dir", str(server.data_dir),
                          "--client-id", server.client_id, "--url", "ftp://x/"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "http" in bad.stderr
    unknown = subprocess.run([BIN, "webhook", "set", "--data-dir", str(server.data_dir),
                              "--client-id", "nobody", "--url", "https://hooks.example.com/"],
                             capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
    show = subprocess.run([BIN, "webhook", "show", "--data-dir", str(server.data_dir),
                           "--client-id", server.client_id], capture_output=True, text=True,
                          timeout=30, env={"LANG": "C"})
    assert show.returncode == 0 and "no webhook" in show.stdout
    r = server.request("GET", "/v1/jobs?state=nonsense")
    assert_problem(r, 400, "INVALID_FIELD")


def test_documented_shell_verification(make_server, receivers, tmp_path):
    """examples/verify-webhook.sh (docs/webhooks.md) accepts a real delivery
    and refuses it with one byte changed or with another secret."""
    srv = make_server(serve_args=ALLOW + ["--retry-backoff-ms", "200"])
    rec = receivers().start()
    secret = set_webhook(srv, rec.url)
    issue(srv, "outbox-shell-1")
    call = rec.wait_calls(1)[0]
    h = {k.lower(): v for k, v in call["headers"].items()}
    body = tmp_path / "body.json"
    body.write_bytes(call["body"])
    script = str(REPO / "examples" / "verify-webhook.sh")
    args = [h["x-fapiao-timestamp"], h["x-fapiao-nonce"], h["x-fapiao-signature"], str(body)]
    ok = subprocess.run([script, secret] + args, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr
    wrong = subprocess.run([script, secret + "x"] + args, capture_output=True, timeout=30)
    assert wrong.returncode == 1
    body.write_bytes(call["body"].replace(b"rendered", b"renderee", 1))
    tampered = subprocess.run([script, secret] + args, capture_output=True, timeout=30)
    assert tampered.returncode == 1


def test_private_webhook_target_refused_before_connecting(make_server):
    """Without --allow-private-webhooks, a webhook to a host name that
    resolves to 127.0.0.1 is refused when connecting: the listener sees no
    connection and the event is a dead letter naming the reason."""
    import select
    import socket
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener6 = None
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        try:  # localhost may resolve to ::1 first
            listener6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            listener6.bind(("::1", port))
            listener6.listen(16)
        except OSError:
            listener6 = None
        srv = make_server(serve_args=["--retry-backoff-ms", "100"])
        # a host name passes when stored: it is judged by where it resolves
        set_webhook(srv, "http://localhost:%d/fapiao/events" % port, allow_private=False)
        number = issue(srv, "private-target-1")

        def dead_notify():
            return [j for j in jobs(srv, state="dead")
                    if j["kind"] == "notify" and j["invoice_number"] == number]
        dead = wait_for(dead_notify, what="the notify job to be a dead letter")
        err = dead[0]["last_error"]
        assert "not allowed" in err and "loopback" in err, err
        assert "--allow-private-webhooks" in err, err
        assert dead[0]["attempts"] == 1, dead  # a policy refusal is not retried
        socks = [listener] + ([listener6] if listener6 else [])
        readable, _, _ = select.select(socks, [], [], 0.5)
        assert not readable, "the webhook target saw a connection"
        assert status_of(srv, number) == "rendered"
    finally:
        listener.close()
        if listener6:
            listener6.close()


@pytest.mark.parametrize("url,cls", [
    ("http://127.0.0.1:9/x", "loopback"),
    ("http://127.1/x", "loopback"),
    ("https://10.1.2.3/x", "private"),
    ("https://user@192.168.1.1:8443/x", "private"),
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("http://100.100.100.200/", "metadata"),
    ("http://[::1]:8080/", "loopback"),
    ("http://[fd00::1]/", "private"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[::ffff:172.16.0.1]/", "private"),
    ("http://0.0.0.0/", "unspecified"),
])
def test_private_webhook_literal_refused_when_stored(server, url, cls):
    out = subprocess.run([BIN, "webhook", "set", "--data-dir", str(server.data_dir),
                          "--client-id", server.client_id, "--url", url],
                         capture_output=True, text=True, timeout=30, env={"LANG": "C"})
    assert out.returncode == 2, (url, out.stdout, out.stderr)
    assert cls in out.stderr and "--allow-private" in out.stderr, out.stderr
    ok = subprocess.run([BIN, "webhook", "set", "--data-dir", str(server.data_dir),
                         "--client-id", server.client_id, "--url", url, "--allow-private"],
                        capture_output=True, text=True, timeout=30, env={"LANG": "C"})
    assert ok.returncode == 0, ok.stderr
    pub = subprocess.run([BIN, "webhook", "set", "--data-dir", str(server.data_dir),
                          "--client-id", server.client_id, "--url", "https://8.8.8.8/hook"],
                         capture_output=True, text=True, timeout=30, env={"LANG": "C"})
    assert pub.returncode == 0, pub.stderr
    subprocess.run([BIN, "webhook", "remove", "--data-dir", str(server.data_dir),
                    "--client-id", server.client_id], capture_output=True, timeout=30, check=True)
