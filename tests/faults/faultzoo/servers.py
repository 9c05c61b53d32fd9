"""Loopback servers for the fault zoo, each misbehaving in one way:
  TlsServer        openssl s_server -www (any leaf, chain, OCSP staple, flags)
  GnutlsServer     gnutls-serv --http with a priority string (old protocols)
  RawServer        accepts TCP, then: "rst" (RST at once), "rst_after_hello"
                   (reads the ClientHello, then RST), "fin_after_hello" (reads,
                   then an orderly close) or "silent" (holds it, says nothing)
  SilentTlsServer  completes the TLS handshake, then never answers HTTP
  FakeFapiao       HTTPS answering like fapiao (docs/api.md, problem+json) with a
                   chosen fault: 429, 503 DEGRADED, 403 IP_NOT_ALLOWED, …
  ConnectProxy     a small HTTP CONNECT proxy
  PlainHttpServer  plain HTTP that is not fapiao
  FakeDns          UDP DNS with NXDOMAIN / SERVFAIL / REFUSED / silent names
All bind 127.0.0.1 (FakeDns may take another loopback address) on a port the
OS picks, all have stop() and are context managers; stop() closes every
connection they hold."""
import base64
import ctypes
import http.server
import json
import select
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse


def _die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    return _free_port()


def wait_port(port, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class TlsServer:
    """openssl s_server -www with the given leaf (and optional chain file);
    extra: more s_server flags (-status_file, -Verify 1, -tls1_2, …)."""

    def __init__(self, cert, key, chain_extra=None, log_path=None, extra=()):
        self.cert, self.key, self.chain_extra = cert, key, chain_extra
        self.extra = list(extra)
        self.proc = None
        self.port = None
        self.log_path = log_path

    def start(self):
        for _ in range(3):
            self.port = _free_port()
            cmd = ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port,
                   "-cert", self.cert, "-key", self.key, "-www", "-quiet", "-naccept", "1000"]
            if self.chain_extra:
                cmd += ["-cert_chain", self.chain_extra]
            cmd += self.extra
            out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=out, preexec_fn=_die_with_parent)
            if out is not subprocess.DEVNULL:
                out.close()
            if wait_port(self.port, 10, self.proc):
                return self
            self.stop()
        raise AssertionError("openssl s_server did not start: %s" % " ".join(cmd))

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            finally:
                self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


class _PlainHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "not-fapiao/1.0"
    sys_version = ""

    def _answer(self, body=True):
        data = b"<html><body><h1>Welcome to some other web server</h1></body></html>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self):
        self._answer()

    def do_HEAD(self):
        self._answer(False)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(min(n, 1 << 20))
        self._answer()

    def log_message(self, *a):
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    """The zoo's small HTTP servers: HTTP/1.1, quiet, _send() with a length."""
    protocol_version = "HTTP/1.1"
    sys_version = ""
    extra_headers = ()

    def log_message(self, *a):
        pass

    def _send(self, status, body, ctype="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in tuple(self.extra_headers) + tuple(headers):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


HTML = "text/html; charset=utf-8"


class _ServedHttp:
    """An http.server handler class served on 127.0.0.1:<random> by a thread,
    over TLS when the instance has cert and key (self.cert, self.key)."""

    cert = key = None

    def _serve(self, handler):
        ctx = None
        if self.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, self.key)

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                c, a = self.socket.accept()
                c.settimeout(10)
                return (ctx.wrap_socket(c, server_side=True) if ctx else c), a

            def handle_error(self, request, client_address):
                pass  # handshakes the doctor gives up on are not errors here

        self.httpd = S(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.cert else "http", self.port)

    def stop(self):
        if getattr(self, "httpd", None) is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


class PlainHttpServer(_ServedHttp):
    """A plain-HTTP server that is not fapiao (200 text/html everywhere)."""

    def __init__(self):
        self.httpd = None
        self.thread = None

    def start(self):
        return self._serve(_PlainHandler)


LOGIN_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>上网认证 / Network login</title></head>
<body><h1>欢迎使用访客 Wi-Fi / Guest Wi-Fi</h1>
<form method="post" action="/portal/login">
  <input name="username" placeholder="手机号 / phone">
  <input name="password" type="password" placeholder="验证码 / code">
  <button type="submit">登录 / Log in</button>
</form></body></html>
""".encode()


class CaptivePortal(_ServedHttp):
    """What a guest network or a web-authentication gateway puts on every
    port it intercepts: mode "redirect" answers any request with 302 to
    its login page on another host name (http://localhost:<port>/portal/
    login?url=<the URL asked for>), mode "login" with the login page itself
    (200 text/html), mode "511" with 511 Network Authentication Required
    and the page.  With cert and key it speaks HTTPS (a portal with a
    certificate the client trusts, as a corporate gateway's is)."""

    MODES = ("redirect", "login", "511")

    def __init__(self, mode, cert=None, key=None):
        assert mode in self.MODES, mode
        self.mode, self.cert, self.key = mode, cert, key
        self.requests = []
        self.httpd = None

    def start(self):
        outer = self

        class H(_Handler):
            server_version = "portal"

            def do_GET(self):
                outer.requests.append(self.path)
                if self.path.startswith("/portal/login") or outer.mode == "login":
                    return self._send(200, LOGIN_PAGE, HTML)
                if outer.mode == "511":
                    return self._send(511, LOGIN_PAGE, HTML)
                scheme = "https" if outer.cert else "http"
                asked = "%s://%s%s" % (scheme, self.headers.get("Host", ""), self.path)
                loc = "http://localhost:%d/portal/login?url=%s" % (
                    outer.port, urllib.parse.quote(asked, safe=""))
                self._send(302, b"", HTML, [("Location", loc)])

            do_POST = do_GET

        return self._serve(H)


class GnutlsServer(TlsServer):
    """gnutls-serv --http with a priority string, e.g. only TLS 1.0
    ("NORMAL:-VERS-ALL:+VERS-TLS1.0"), which OpenSSL 3 refuses to serve."""

    def __init__(self, cert, key, priority, log_path=None):
        super().__init__(cert, key, log_path=log_path)
        self.priority = priority

    def start(self):
        for _ in range(3):
            self.port = _free_port()
            cmd = ["gnutls-serv", "--http", "--port", str(self.port), "--x509certfile",
                   self.cert, "--x509keyfile", self.key, "--priority", self.priority]
            out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=out, preexec_fn=_die_with_parent)
            if out is not subprocess.DEVNULL:
                out.close()
            if wait_port(self.port, 10, self.proc):
                return self
            self.stop()
        raise AssertionError("gnutls-serv did not start: %s" % " ".join(cmd))


class _Acceptor:
    """A listening socket on 127.0.0.1 served by one thread per connection;
    every accepted socket is kept until stop()."""

    def __init__(self):
        self.sock = None
        self.conns = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = None

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if not r:
                continue
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with self._lock:
                self.conns.append(c)
            threading.Thread(target=self._serve_safe, args=(c,), daemon=True).start()

    def _serve_safe(self, c):
        try:
            self.serve(c)
        except OSError:
            pass

    def serve(self, c):
        raise NotImplementedError

    def stop(self):
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        with self._lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def _rst_close(c):
    """close() that sends RST instead of FIN (SO_LINGER on, timeout 0)."""
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


class RawServer(_Acceptor):
    MODES = ("rst", "rst_after_hello", "fin_after_hello", "silent")

    def __init__(self, mode):
        assert mode in self.MODES, mode
        super().__init__()
        self.mode = mode

    def serve(self, c):
        if self.mode == "rst":
            _rst_close(c)
            return
        if self.mode == "silent":
            self._stop.wait()  # hold the connection open, read nothing
            return
        c.settimeout(10)
        try:
            c.recv(65536)  # the ClientHello (or a plain request)
        except OSError:
            pass
        if self.mode == "rst_after_hello":
            _rst_close(c)
        else:
            c.shutdown(socket.SHUT_RDWR)
            c.close()


class SilentTlsServer(_Acceptor):
    """Completes the TLS handshake (leaf from the test PKI), reads the
    request and never answers it."""

    def __init__(self, cert, key):
        super().__init__()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)

    def serve(self, c):
        c.settimeout(10)
        t = self.ctx.wrap_socket(c, server_side=True)
        with self._lock:
            self.conns.append(t)
        t.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not t.recv(65536):
                    return
            except socket.timeout:
                continue


# ---- a server answering like fapiao, with one fault ---------------------------
# The problem+json of src/server/server.c fp_problem() and src/lib/errors.c.
PROBLEMS = {
    "RATE_LIMITED": (429, "Rate limited", "请求过于频繁，请稍后重试",
                     "Too many requests; retry later"),
    "DEGRADED": (503, "Service degraded", "服务处于降级模式，暂不接受写入",
                 "The service is degraded and does not accept writes now"),
    "IP_NOT_ALLOWED": (403, "IP not allowed", "来源 IP 不在白名单内",
                       "The client IP address is not on the allowlist"),
    "FORBIDDEN": (403, "Forbidden", "没有执行此操作的权限", "You are not allowed to do this"),
}

READY = {"checks": [{"name": "database", "ok": True},
                    {"name": "number_range", "ok": True, "remaining": 99000, "warning": False,
                     "warn_below": 1000},
                    {"name": "accepting", "ok": True}], "status": "ready"}


def problem_body(code, rid):
    status, title, zh, en = PROBLEMS[code]
    return status, json.dumps({"type": "urn:fapiao:error:" + code, "status": status,
                               "code": code, "title": title, "message_zh": zh,
                               "message_en": en, "request_id": rid},
                              ensure_ascii=False).encode()


class FakeFapiao(_ServedHttp):
    """HTTPS on 127.0.0.1 answering like fapiao (docs/api.md; docs/operations.md: /readyz JSON,
    POST /v1/token, GET /v1/invoices, problem+json with Retry-After on 429
    and 503), except for one fault:
      rate_limited   /readyz → 429 RATE_LIMITED, Retry-After: 7
      degraded       /readyz → 503 DEGRADED, Retry-After: 7
      degraded_readyz  /readyz → 503 {"status":"degraded","checks":[… disk …]}
      ip_not_allowed /v1/token and /v1/invoices → 403 IP_NOT_ALLOWED
      scope_missing  /v1/invoices → 403 FORBIDDEN (the token works)
      bad_gateway    everything → 502 text/html, as a reverse proxy whose
                     fapiao behind it is down
      redirect       /readyz → 301 to https://elsewhere.example/readyz
    Every request is recorded in .requests as (method, path)."""

    def __init__(self, cert, key, fault):
        self.cert, self.key, self.fault = cert, key, fault
        self.requests = []
        self.httpd = None

    def start(self):
        outer = self

        class H(_Handler):
            server_version = "fapiao"
            extra_headers = (("X-Request-Id", "fake-0001"),)

            def _problem(self, code):
                status, body = problem_body(code, "fake-0001")
                extra = [("Retry-After", "7")] if status in (429, 503) else []
                self._send(status, body, "application/problem+json", extra)

            def _route(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(min(n, 1 << 20))
                path = self.path.split("?")[0]
                outer.requests.append((method, path))
                f = outer.fault
                if f == "bad_gateway":
                    return self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
                                      "text/html")
                if path == "/readyz" and f == "rate_limited":
                    return self._problem("RATE_LIMITED")
                if path == "/readyz" and f == "degraded":
                    return self._problem("DEGRADED")
                if path == "/readyz" and f == "degraded_readyz":
                    doc = {"checks": [{"name": "database", "ok": True},
                                      {"name": "disk", "ok": False,
                                       "reason": "12 MB free, below --min-free-mb 64"},
                                      {"name": "accepting", "ok": True}],
                           "status": "degraded"}
                    return self._send(503, json.dumps(doc).encode(), headers=[("Retry-After", "7")])
                if path == "/readyz" and f == "redirect":
                    return self._send(301, b"", "text/html",
                                      [("Location", "https://elsewhere.example/readyz")])
                if path in ("/readyz", "/healthz"):
                    return self._send(200, json.dumps(READY).encode())
                if path == "/v1/token" and method == "POST":
                    if f == "ip_not_allowed":
                        return self._problem("IP_NOT_ALLOWED")
                    return self._send(200, json.dumps({
                        "access_token": "fake-token", "token_type": "Bearer",
                        "expires_in": 3600, "scope": "invoices:issue invoices:read"}).encode())
                if path == "/v1/invoices" and method == "GET":
                    if f == "ip_not_allowed":
                        return self._problem("IP_NOT_ALLOWED")
                    if f == "scope_missing":
                        return self._problem("FORBIDDEN")
                    return self._send(200, b'{"items":[],"next":null}')
                return self._send(404, b'{"code":"NOT_FOUND"}', "application/problem+json")

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

        return self._serve(H)


class ConnectProxy(_Acceptor):
    """An HTTP proxy that only does CONNECT (what https_proxy needs).  mode:
      tunnel  tunnels every CONNECT
      auth    wants Proxy-Authorization: Basic of self.user:self.password,
              else 407 with Proxy-Authenticate (as squid with basic auth)
      deny    403 to every CONNECT (squid's `http_access deny` for the port)
      close   reads the CONNECT and closes the connection without answering
    Every CONNECT target is recorded in .targets."""

    MODES = ("tunnel", "auth", "deny", "close")
    user, password = "zoo", "s3cret@1"

    def __init__(self, mode="tunnel"):
        assert mode in self.MODES, mode
        super().__init__()
        self.mode = mode
        self.targets = []

    def _refuse(self, c, head):
        if self.mode == "close":
            c.shutdown(socket.SHUT_RDWR)
            return True
        if self.mode == "deny":
            body = b"<html><body>Access Denied: CONNECT to this port is not allowed</body></html>"
            c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            return True
        if self.mode == "auth":
            want = "Basic " + base64.b64encode(
                ("%s:%s" % (self.user, self.password)).encode()).decode()
            got = [l.split(b":", 1)[1].strip().decode("latin-1")
                   for l in head.split(b"\r\n")
                   if l.lower().startswith(b"proxy-authorization:")]
            if got != [want]:
                c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                          b"Proxy-Authenticate: Basic realm=\"zoo proxy\"\r\n"
                          b"Content-Length: 0\r\n\r\n")
                return True
        return False

    def serve(self, c):
        c.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            b = c.recv(4096)
            if not b:
                return
            head += b
        line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(line) < 2 or line[0] != "CONNECT":
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        with self._lock:
            self.targets.append(line[1])
        if self._refuse(c, head):
            return
        host, _, port = line[1].rpartition(":")
        try:
            up = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError):
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with self._lock:
            self.conns.append(up)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        c.settimeout(None)
        up.settimeout(None)
        socks = [c, up]
        while not self._stop.is_set():
            r, _, _ = select.select(socks, [], [], 0.1)
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                (up if s is c else c).sendall(data)

# ---- DNS -----------------------------------------------------------------
QTYPE_A, QTYPE_AAAA = 1, 28
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_REFUSED = 0, 1, 2, 3, 5


def parse_query(data):
    """(id, flags, qname(lowercase, no trailing dot), qtype, qclass, question_bytes)."""
    if len(data) < 12:
        raise ValueError("short")
    qid, flags, qd, _an, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    if qd < 1:
        raise ValueError("no question")
    i, labels = 12, []
    while True:
        n = data[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            raise ValueError("compression in question")
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", data[i:i + 4])
    question = data[12:i + 4]
    return qid, flags, ".".join(labels).lower(), qtype, qclass, question


def build_response(qid, qflags, question, rcode, answers=()):
    """answers: list of (rtype, ttl, rdata bytes), all for the question name."""
    opcode = qflags & 0x7800
    rd = qflags & 0x0100
    flags = 0x8000 | opcode | 0x0400 | rd | 0x0080 | rcode  # QR AA RD RA
    out = struct.pack("!HHHHHH", qid, flags, 1, len(answers), 0, 0) + question
    for rtype, ttl, rdata in answers:
        out += struct.pack("!HHHIH", 0xC00C, rtype, 1, ttl, len(rdata)) + rdata
    return out


class FakeDns:
    """UDP DNS on 127.0.0.1:<random> (or the given address).  Zone (names lowercase):
      localhost, ok.doctor.test   A 127.0.0.1 TTL 30; AAAA: no data
      v6only.doctor.test          AAAA ::1 TTL 30; A: no data
      nx.doctor.test              NXDOMAIN
      fail.doctor.test            SERVFAIL
      refused.doctor.test         REFUSED
      silent.doctor.test          never answered
      hijacked.doctor.test        A 127.0.0.1 TTL 30 (a hijacked answer: the
                                  server is at 127.0.0.2); AAAA: no data
      dual.doctor.test            A 127.0.0.1 and AAAA ::1, TTL 30
      anything else               NXDOMAIN
    records={name: [(qtype, address)]} replaces a name's records (a second,
    trusted server that answers differently).
    Every query is recorded in .queries as (qname, qtype)."""

    A_NAMES = ("localhost", "ok.doctor.test", "hijacked.doctor.test")

    def __init__(self, host="127.0.0.1", port=0, records=None, netns=None):
        self.netns = netns  # a faultzoo.netns.Netns to serve in, or None
        self.records = dict(records or {})
        self.records.setdefault("dual.doctor.test", [(QTYPE_A, "127.0.0.1"), (QTYPE_AAAA, "::1")])
        self.queries = []
        self._stop = threading.Event()
        self.sock = None
        self.thread = None
        self.host, self.port = host, port

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def start(self):
        self.sock = (self.netns.socket(socket.AF_INET, socket.SOCK_DGRAM) if self.netns
                     else socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        self.sock.bind((self.host, self.port))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def answer(self, data):
        try:
            qid, flags, name, qtype, _qc, question = parse_query(data)
        except (ValueError, IndexError, struct.error):
            if len(data) >= 2:
                return struct.pack("!HHHHHH", struct.unpack("!H", data[:2])[0],
                                   0x8000 | RCODE_FORMERR, 0, 0, 0, 0)
            return None
        self.queries.append((name, qtype))
        if name == "silent.doctor.test":
            return None
        if name == "nx.doctor.test":
            return build_response(qid, flags, question, RCODE_NXDOMAIN)
        if name == "fail.doctor.test":
            return build_response(qid, flags, question, RCODE_SERVFAIL)
        if name == "refused.doctor.test":
            return build_response(qid, flags, question, RCODE_REFUSED)
        if name in self.records:
            fam = {QTYPE_A: socket.AF_INET, QTYPE_AAAA: socket.AF_INET6}
            return build_response(qid, flags, question, RCODE_NOERROR,
                                  [(t, 30, socket.inet_pton(fam[t], a))
                                   for t, a in self.records[name] if t == qtype])
        if name in self.A_NAMES:
            if qtype == QTYPE_A:
                return build_response(qid, flags, question, RCODE_NOERROR,
                                      [(QTYPE_A, 30, socket.inet_aton("127.0.0.1"))])
            return build_response(qid, flags, question, RCODE_NOERROR)
        if name == "v6only.doctor.test":
            if qtype == QTYPE_AAAA:
                return build_response(qid, flags, question, RCODE_NOERROR,
                                      [(QTYPE_AAAA, 30, socket.inet_pton(socket.AF_INET6, "::1"))])
            return build_response(qid, flags, question, RCODE_NOERROR)
        return build_response(qid, flags, question, RCODE_NXDOMAIN)

    def _loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            resp = self.answer(data)
            if resp is not None:
                try:
                    self.sock.sendto(resp, peer)
                except OSError:
                    pass

    def stop(self):
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()
