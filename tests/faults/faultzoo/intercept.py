"""A TLS interception proxy on loopback, as a corporate SSL-inspection
gateway or antivirus HTTPS scanning does it: Python's ssl terminates the
client's TLS with a certificate from the inspection CA (certs.py
"intercepted"), opens its own TLS connection to the real server (without
verifying it, as such boxes are often set up) and relays the bytes both
ways.  A client that trusts the inspection CA — as a machine whose group
policy installed it does — sees a valid chain; only an expectation of the
real issuer or key (`fapiao doctor --expect-issuer / --pin`) tells."""
import select
import socket
import ssl

from .servers import _Acceptor


class InterceptProxy(_Acceptor):
    def __init__(self, leaf, upstream_port):
        super().__init__()
        self.upstream_port = upstream_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(leaf.chain, leaf.key)
        self.up_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.up_ctx.check_hostname = False
        self.up_ctx.verify_mode = ssl.CERT_NONE
        self.relayed = 0  # connections carried through to the server

    def serve(self, c):
        c.settimeout(10)
        t = self.ctx.wrap_socket(c, server_side=True)
        raw = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        up = self.up_ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        with self._lock:
            self.conns += [t, up]
            self.relayed += 1
        socks = [t, up]
        while not self._stop.is_set():
            ready = [s for s in socks if s.pending()] or select.select(socks, [], [], 0.1)[0]
            for s in ready:
                try:
                    data = s.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                if not data:
                    return
                (up if s is t else t).sendall(data)
