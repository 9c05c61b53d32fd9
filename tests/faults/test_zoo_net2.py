"""The client's network, past the proxy: a captive portal or a
web-authentication gateway answering in place of the server
(faultzoo/servers.py CaptivePortal: a 302 to its login page on another
host, the login page itself, 511); in a network namespace, a name with A
and AAAA whose IPv6 path drops while IPv4 works."""
import select
import socket
import ssl
import subprocess
import threading
import uuid

import pytest

from faultzoo.doctor import check, covers, doctor, phase_status, verdict_code
from faultzoo.netns import Netns, available as netns_available
from faultzoo.servers import CaptivePortal, FakeDns


@pytest.fixture
def portal():
    started = []

    def start(mode, leaf=None):
        p = CaptivePortal(mode, *((leaf.cert, leaf.key) if leaf else ())).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@covers("HTTP_CAPTIVE_PORTAL")
def test_portal_redirects_to_its_login_page(portal):
    p = portal("redirect")
    text, js = check("captive portal redirects to its login page (http://)",
                     "HTTP_CAPTIVE_PORTAL", p.base_url, "--timeout", "3", phase="http")
    seen = js.doc["phases"][4]["details"]["captive_portal"]
    assert seen.startswith("302 to http://localhost:%d/portal/login" % p.port), seen
    assert "/readyz" in p.requests, p.requests


@covers("HTTP_CAPTIVE_PORTAL")
def test_gateway_login_page_over_https(portal, pki):
    """A gateway whose certificate the client trusts (as a corporate one's
    is) serves its login page, 200 text/html, for /readyz."""
    p = portal("login", pki["direct"])
    text, js = check("login page answers instead of the server (https://)",
                     "HTTP_CAPTIVE_PORTAL", p.base_url, "--cacert", pki.root_cert,
                     "--timeout", "3", phase="http")
    assert "password field" in js.doc["verdict"]["message"], js


@covers("HTTP_CAPTIVE_PORTAL")
def test_network_authentication_required(portal):
    p = portal("511")
    check("captive portal answers 511 Network Authentication Required",
          "HTTP_CAPTIVE_PORTAL", p.base_url, "--timeout", "3", phase="http")


def test_redirect_to_another_host_is_not_a_portal(pki, fake_fapiao):
    """A 301 to another host without a login page's URL stays HTTP_REDIRECT
    (a warning): the server moved, nothing intercepts."""
    s = fake_fapiao("redirect")
    run = doctor(s.base_url, "--cacert", pki.root_cert, "--json")
    assert verdict_code(run.doc) == "OK", run
    assert "HTTP_REDIRECT" in [w["code"] for w in run.doc["warnings"]], run


# ---- IPv6 broken, IPv4 working (in a network namespace) --------------------
@covers("IPV6_BROKEN")
def test_ipv6_path_drops_ipv4_works(netns):
    """dual.doctor.test has A 127.0.0.1 and AAAA ::1 (a fake DNS inside the
    namespace); the port listens on both, and nftables drops IPv6 to it, as
    a broken IPv6 route or firewall does.  IPv4 connects; a client trying
    IPv6 first waits out its timeout."""
    port = 4443
    listeners = []
    dns = FakeDns(netns=netns)
    try:
        for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            s = netns.socket(fam, socket.SOCK_STREAM)
            listeners.append(s)
            s.bind((addr, port))
            s.listen(8)
        dns.start()
        netns.nft("add rule inet zoo input ip6 daddr ::1 tcp dport %d drop" % port)
        text, js = check("IPv6 path drops, IPv4 works (name has A and AAAA)", "IPV6_BROKEN",
                         "https://dual.doctor.test:%d" % port, "--dns-server", dns.addr,
                         "--timeout", "2", phase="tcp", prefix=netns.prefix(), with_curl=False)
        attempts = {a["address"]: a["result"] for a in js.doc["phases"][2]["details"]["attempts"]}
        assert attempts == {"127.0.0.1": "connected", "::1": "timeout"}, attempts
        # the same with --ipv4 is healthy as far as TCP goes (nothing speaks TLS here)
        run = doctor("https://dual.doctor.test:%d" % port, "--dns-server", dns.addr,
                     "--timeout", "2", "--ipv4", "--json", prefix=netns.prefix())
        assert phase_status(run.doc, "tcp") == "ok", run
    finally:
        dns.stop()
        for s in listeners:
            s.close()


def test_ipv6_refused_is_not_broken(netns):
    """Nothing listens on IPv6: a refusal fails over at once, no finding."""
    port = 4443
    s = netns.socket(socket.AF_INET, socket.SOCK_STREAM)
    dns = FakeDns(netns=netns)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(8)
        dns.start()
        run = doctor("https://dual.doctor.test:%d" % port, "--dns-server", dns.addr,
                     "--timeout", "2", "--json", prefix=netns.prefix())
        assert phase_status(run.doc, "tcp") == "ok", run
        assert verdict_code(run.doc) != "IPV6_BROKEN", run
    finally:
        dns.stop()
        s.close()


# ---- a path MTU black hole (two namespaces joined by a veth pair) ----------
class _TlsListener:
    """A TLS server on a socket of a namespace: completes every handshake
    (the test PKI's leaf, a chain larger than one packet) and keeps the
    connection until stop()."""

    def __init__(self, sock, leaf):
        self.sock, self.conns, self.handshakes = sock, [], 0
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(leaf.chain, leaf.key)  # leaf and intermediate
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.sock.listen(8)
        self.thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if r:
                c, _ = self.sock.accept()
                self.conns.append(c)
                threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(15)
            t = self.ctx.wrap_socket(c, server_side=True)
            self.handshakes += 1
            self.conns.append(t)
            t.recv(4096)
        except (OSError, ssl.SSLError):
            pass

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=5)
        for c in self.conns + [self.sock]:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def mtu_path():
    """(client namespace, server namespace) joined by a veth pair, 10.77.0.1
    and 10.77.0.2, both ends MTU 1500, so both offer an MSS of 1460.  On the
    way out of the server's namespace nftables drops every packet longer
    than 1000 bytes and says nothing — a hop of MTU 1000 (a PPPoE or tunnel
    link) whose ICMP "fragmentation needed" is filtered: full-sized packets
    vanish, small ones pass, and the server never learns to send smaller.
    (Lowering the client end's MTU alone makes no black hole: the client
    then offers a smaller MSS, and nftables here could not rewrite the MSS
    option on the way; tried, it left 948.)"""
    why = netns_available()
    if why:
        pytest.skip(why)
    a, b = Netns(), Netns()
    try:
        a.start()
        b.start()
        va, vb = "zmA" + uuid.uuid4().hex[:8], "zmB" + uuid.uuid4().hex[:8]
        r = subprocess.run(["ip", "link", "add", va, "netns", a.name, "type", "veth", "peer",
                            "name", vb, "netns", b.name], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        a.ip("addr", "add", "10.77.0.1/24", "dev", va)
        b.ip("addr", "add", "10.77.0.2/24", "dev", vb)
        a.ip("link", "set", va, "up")
        # one TCP segment per packet: a GSO packet carries several, and the
        # length rule would drop the small-MSS ones too
        b.ip("link", "set", vb, "gso_max_segs", "1", "up")
        b.nft("add chain inet zoo out { type filter hook postrouting priority 0; }")
        b.nft("add rule inet zoo out ip daddr 10.77.0.1 meta length > 1000 drop")
        yield a, b
    finally:
        b.stop()
        a.stop()


@covers("TCP_MTU_BLACKHOLE")
def test_mtu_black_hole(mtu_path, pki):
    client, server_ns = mtu_path
    s = server_ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.77.0.2", 4443))
    srv = _TlsListener(s, pki["valid"]).start()
    try:
        text, js = check("path MTU black hole (large packets dropped, no ICMP)",
                         "TCP_MTU_BLACKHOLE", "https://10.77.0.2:4443", "--cacert",
                         pki.root_cert, "--timeout", "2", phase="tcp", prefix=client.prefix(),
                         curl_alt=(28,))  # curl waits in the handshake until --max-time
        probe = js.doc["phases"][3]["details"]["small_mss_probe"]
        assert probe["handshake"] is True and probe["mss"] == 536, probe
        assert js.doc["phases"][3]["status"] == "fail", js
        assert srv.handshakes >= 2, "the small-MSS handshakes never reached the server"
    finally:
        srv.stop()

