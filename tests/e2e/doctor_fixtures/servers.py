"""Loopback servers for the doctor tests: a TLS server (openssl s_server),
a plain HTTP server and a fake DNS server.  All bind 127.0.0.1 on a port
the OS picks (or free_port()), all have stop() and are context managers."""
import ctypes
import http.server
import select
import signal
import socket
import struct
import subprocess
import threading
import time


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
    """openssl s_server -www with the given leaf (and optional chain file)."""

    def __init__(self, cert, key, chain_extra=None, log_path=None):
        self.cert, self.key, self.chain_extra = cert, key, chain_extra
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


class PlainHttpServer:
    """A plain-HTTP server that is not fapiao (200 text/html everywhere)."""

    def __init__(self):
        self.httpd = None
        self.thread = None

    def start(self):
        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            timeout = 5
        self.httpd = S(("127.0.0.1", 0), _PlainHandler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


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
    """UDP DNS on 127.0.0.1:<random>.  Zone (names lowercase):
      localhost, ok.doctor.test   A 127.0.0.1 TTL 30; AAAA: no data
      v6only.doctor.test          AAAA ::1 TTL 30; A: no data
      nx.doctor.test              NXDOMAIN
      fail.doctor.test            SERVFAIL
      refused.doctor.test         REFUSED
      silent.doctor.test          never answered
      anything else               NXDOMAIN
    Every query is recorded in .queries as (qname, qtype)."""

    A_NAMES = ("localhost", "ok.doctor.test")

    def __init__(self):
        self.queries = []
        self._stop = threading.Event()
        self.sock = None
        self.thread = None

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
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
