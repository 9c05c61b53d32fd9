"""The built-in notifier end to end (docs/alerting.md "Built-in evaluator",
issue 19 "Done when" 2): `fapiao serve --alerting FILE` with no Prometheus,
its DingTalk receiver pointed at a DingTalk-shaped robot this test runs on a
free loopback port.  The robot checks each request as DingTalk does (the
timestamp and HMAC-SHA256 signature on the URL, a markdown body) and keeps
what came.

A store fault injected through POST /v1/_faults opens the store's breaker:
the P1 FapiaoStoreBreakerOpen reaches the robot, signed, its text Chinese
first; removing the fault brings the resolve message; a silence made with
`fapiao alerts silence` before a second fault keeps that one quiet.  The
bound is loose (3 min); the time from fault to notification is printed (the
shipped 5 s interval; the rule's `for: 20s` is most of it)."""
import base64
import hashlib
import hmac
import http.server
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import BIN, SANITIZED, free_port

P1 = "FapiaoStoreBreakerOpen"
BOUND_S = 180
SECRET = "SECtest-robot-secret-0123456789"


class Robot:
    """A DingTalk custom robot: verifies timestamp + sign, keeps
    (monotonic time, body, signature ok)."""

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(min(n, 1 << 20))
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                ok = outer.signed(q)
                body = json.loads(raw)
                with outer.lock:
                    outer.got.append((time.monotonic(), body, ok, q))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"errcode": 0 if ok else 310000,
                                             "errmsg": "ok" if ok else "sign not match"}).encode())

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def signed(q):
        try:
            ts = q["timestamp"][0]
            sign = q["sign"][0]
        except KeyError:
            return False
        if abs(int(ts) - time.time() * 1000) > 3600 * 1000:
            return False
        want = base64.b64encode(hmac.new(SECRET.encode(), ("%s\n%s" % (ts, SECRET)).encode(),
                                         hashlib.sha256).digest()).decode()
        return hmac.compare_digest(sign, want) and q.get("access_token") == ["tok"]

    def find(self, since, word, alertname=P1):
        with self.lock:
            for t, body, ok, _ in self.got:
                text = body.get("markdown", {}).get("text", "")
                if t >= since and alertname in text and word in text:
                    return t, body, ok
        return None

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(pred, timeout, what, step=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def faults(srv, **f):
    r = srv.post_json("/v1/_faults", f)
    assert r.status == 200, r


def write_conf(tmp_path, robot_port, extra=""):
    sec = tmp_path / "dingtalk.secret"
    sec.write_text(SECRET + "\n")
    sec.chmod(0o600)
    conf = tmp_path / "alerting.conf"
    conf.write_text(
        "[notify]\ninstance = fapiao-e2e\n%s"
        "[receiver ops-dingtalk]\ntype = dingtalk\n"
        "url = http://127.0.0.1:%d/robot/send?access_token=tok\n"
        "secret-file = %s\n" % (extra, robot_port, sec))
    return conf


@pytest.mark.skipif(SANITIZED, reason="a timer-bound pipeline (the rules' 20 s): runs once, on "
                    "the optimised build; the notifier's code runs under ASan in unit.test_alerting")
def test_store_fault_pages_dingtalk_and_resolves(make_server, tmp_path):
    robot = Robot()
    conf = write_conf(tmp_path, robot.port)
    srv = make_server(serve_args=["--fault-injection", "--probe-interval-ms", "500",
                                  "--alerting", str(conf)])
    try:
        assert srv.issue("notify-before").status == 201
        # 1. the fault: the P1 reaches the robot, signed, in Chinese first
        t_fault = time.monotonic()
        faults(srv, store_write="fail")
        for i in range(6):
            assert srv.issue("notify-during-%d" % i).status == 503
        t, body, ok = wait_for(lambda: robot.find(t_fault, "告警 / FIRING"), BOUND_S,
                               "the P1 at the robot")
        print("\nfault -> DingTalk P1 (%s): %.1f s (interval 5 s; for: 20s)" % (P1, t - t_fault))
        assert ok, "the robot rejected the signature"
        assert body["msgtype"] == "markdown"
        text = body["markdown"]["text"]
        assert "熔断" in text and text.index("熔断") < text.index("circuit breaker"), text
        assert "P1" in body["markdown"]["title"]
        assert "ALERT_STORE_BREAKER_OPEN" in text and "fapiao-e2e" in text
        # 2. the fault removed: the resolve message
        t_fix = time.monotonic()
        faults(srv, store_write="ok")
        wait_for(lambda: srv.issue("notify-after-%d" % time.monotonic_ns()).status == 201, 30,
                 "issuing to recover")
        t, body, ok = wait_for(lambda: robot.find(t_fix, "已恢复 / RESOLVED"), BOUND_S,
                               "the resolve at the robot")
        print("fault removed -> resolve: %.1f s" % (t - t_fix))
        assert ok
        # 3. a silence made before a second fault keeps it quiet
        sil = alerts(srv, "silence", "--match", "alertname=" + P1, "--match", "severity=P1",
                     "--for", "2h", "--comment", "维护 / maintenance")
        sid = sil.stdout.strip()
        assert sid.isdigit(), sil
        listed = alerts(srv, "list", "--json").stdout.splitlines()
        assert [json.loads(x)["id"] for x in listed] == [int(sid)]
        t_second = time.monotonic()
        faults(srv, store_write="fail")
        for i in range(6):
            srv.issue("notify-second-%d" % i)
        # the rule's for: 20s and a round of 5 s: well past it, nothing came
        time.sleep(45)
        assert robot.find(t_second, "FIRING") is None, robot.got[-1]
        # expired (audited), the firing P1 goes out at the next round
        alerts(srv, "expire", sid)
        t, body, ok = wait_for(lambda: robot.find(t_second, "告警 / FIRING"), BOUND_S,
                               "the P1 once the silence expired")
        assert ok
        faults(srv, store_write="ok")
        audit = subprocess.run([BIN, "audit", "list", "--data-dir", str(srv.data_dir)],
                               capture_output=True, text=True, timeout=60).stdout
        assert "alerts.silence" in audit and "alerts.expire" in audit, audit
        # every request the robot got was signed
        assert all(g[2] for g in robot.got), [g[3] for g in robot.got]
    finally:
        robot.close()


def alerts(srv, *args):
    p = subprocess.run([BIN, "alerts", args[0], "--data-dir", str(srv.data_dir)] + list(args[1:]),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p
    return p


def test_alerts_test_reaches_every_receiver(tmp_path):
    """`fapiao alerts test`: a signed test message to the robot; a receiver
    that cannot be reached fails the command and is named."""
    robot = Robot()
    try:
        conf = write_conf(tmp_path, robot.port)
        p = subprocess.run([BIN, "alerts", "test", "--alerting", str(conf)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p
        assert len(robot.got) == 1 and robot.got[0][2], robot.got
        assert "测试" in robot.got[0][1]["markdown"]["text"]
        with open(conf, "a") as f:
            f.write("[receiver dead]\ntype = webhook\nurl = http://127.0.0.1:%d/x\n"
                    % free_port())
        p = subprocess.run([BIN, "alerts", "test", "--alerting", str(conf)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and "dead" in p.stderr, p
        assert "tok" not in p.stderr and SECRET not in p.stderr, p.stderr
    finally:
        robot.close()


AM_PAYLOAD = {
    "version": "4", "status": "firing", "receiver": "china-robots",
    "groupLabels": {"alertname": "FapiaoDegraded"}, "commonLabels": {"severity": "P1"},
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "FapiaoDegraded", "severity": "P1", "instance": "fapiao-2:9464"},
        "annotations": {"summary_zh": "fapiao 实例 fapiao-2:9464 处于降级模式，开票被拒绝",
                        "summary_en": "fapiao instance fapiao-2:9464 is degraded",
                        "runbook": "kb/HTTP_DEGRADED.md"},
        "startsAt": "2026-12-07T08:00:00Z"}],
}


def test_alertmanager_bridge_forwards_signed(make_server, tmp_path):
    """Alertmanager's webhook payload, POSTed to the bridge's loopback
    listener, reaches the DingTalk robot signed, Chinese first; what is not
    a payload is refused (400) and nothing is forwarded."""
    robot = Robot()
    bport = free_port()
    conf = write_conf(tmp_path, robot.port, "bridge-listen = 127.0.0.1:%d\n" % bport)
    make_server(serve_args=["--alerting", str(conf)])
    try:
        url = "http://127.0.0.1:%d/alertmanager" % bport
        req = urllib.request.Request(url, data=json.dumps(AM_PAYLOAD).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
        assert len(robot.got) == 1 and robot.got[0][2], robot.got
        text = robot.got[0][1]["markdown"]["text"]
        assert text.index("降级模式") < text.index("is degraded"), text
        assert "fapiao-2:9464" in text and "kb/HTTP_DEGRADED.md" in text
        bad = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(bad, timeout=30)
            raise AssertionError("an empty payload was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400
        assert len(robot.got) == 1
    finally:
        robot.close()
