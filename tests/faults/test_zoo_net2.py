"""The client's network, past the proxy: a captive portal or a
web-authentication gateway answering in place of the server
(faultzoo/servers.py CaptivePortal: a 302 to its login page on another
host, the login page itself, 511); in a network namespace, a name with A
and AAAA whose IPv6 path drops while IPv4 works."""
import socket

import pytest

from faultzoo.doctor import check, covers, doctor, phase_status, verdict_code
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
