"""Layer 3, TCP: a closed port; a port behind an nftables `drop` (filtered)
or `reject`, and a network without a route, inside a network namespace the
test creates (the doctor and curl run in it with `ip netns exec`); servers
that accept and reset the connection (SO_LINGER {1, 0}) at once or after
reading the TLS ClientHello."""
from faultzoo import SLOW
from faultzoo.doctor import check, covers
from faultzoo.servers import closed_port

TIMEOUT = 2  # the doctor's --timeout (per network step) for the namespace faults


@covers("TCP_REFUSED")
def test_tcp_refused():
    check("closed port (nothing listens)", "TCP_REFUSED", "https://127.0.0.1:%d" % closed_port(),
          "--timeout", "3", phase="tcp")


@covers("TCP_TIMEOUT")
def test_tcp_filtered_port(netns):
    """SYNs to the port are dropped: connect() gets no answer, and the
    doctor must say so within its connect timeout, not the kernel's ~2 min."""
    port = 4443
    netns.nft("add rule inet zoo input tcp dport %d drop" % port)
    text, js = check("filtered port (firewall drops SYN)", "TCP_TIMEOUT",
                     "https://127.0.0.1:%d" % port, "--timeout", str(TIMEOUT), phase="tcp",
                     prefix=netns.prefix())
    for run in (text, js):
        assert run.elapsed < TIMEOUT + 1.5 * SLOW, \
            "--timeout %d but the doctor took %.2fs: %r" % (TIMEOUT, run.elapsed, run)
    attempt = js.doc["phases"][2]["details"]["attempts"][0]
    assert attempt["result"] == "timeout", attempt
    assert TIMEOUT * 1000 * 0.9 <= attempt["connect_ms"] < TIMEOUT * 1000 + 500 * SLOW, attempt


@covers("TCP_REFUSED")
def test_tcp_rejected_with_reset(netns):
    """A firewall that rejects with a TCP RST looks exactly like a closed port."""
    port = 4443
    netns.nft("add rule inet zoo input tcp dport %d reject with tcp reset" % port)
    check("firewall rejects with TCP RST", "TCP_REFUSED", "https://127.0.0.1:%d" % port,
          "--timeout", str(TIMEOUT), phase="tcp", prefix=netns.prefix())


@covers("TCP_UNREACHABLE")
def test_tcp_rejected_admin_prohibited(netns):
    port = 4443
    netns.nft("add rule inet zoo input tcp dport %d reject with icmpx type admin-prohibited"
              % port)
    check("firewall rejects with ICMP admin-prohibited", "TCP_UNREACHABLE",
          "https://127.0.0.1:%d" % port, "--timeout", str(TIMEOUT), phase="tcp",
          prefix=netns.prefix())


@covers("TCP_UNREACHABLE")
def test_tcp_no_route(netns):
    """The namespace has only lo: 192.0.2.1 (TEST-NET-1) has no route."""
    check("no route to the server's network", "TCP_UNREACHABLE", "https://192.0.2.1:443",
          "--timeout", str(TIMEOUT), phase="tcp", prefix=netns.prefix())


@covers("TCP_RESET")
def test_reset_on_accept(raw_server):
    """RST right after accept().  Whether the client sees it while connecting
    or while sending its ClientHello is a race: the doctor names TCP_RESET
    either way; curl says 7 or 35."""
    s = raw_server("rst")
    check("server resets at once (RST after accept)", "TCP_RESET",
          "https://127.0.0.1:%d" % s.port, "--timeout", "3", phase="tcp", curl_alt=(7, 35))


@covers("TCP_RESET")
def test_reset_after_client_hello(raw_server):
    s = raw_server("rst_after_hello")
    text, js = check("server resets after the TLS ClientHello", "TCP_RESET",
                     "https://127.0.0.1:%d" % s.port, "--timeout", "3", phase="tcp")
    assert js.doc["phases"][3]["finding"] == "TCP_RESET", js.doc["phases"][3]


@covers("TCP_RESET")
def test_reset_plain_http(raw_server):
    """http:// to a server that resets after reading the request."""
    s = raw_server("rst_after_hello")
    text, js = check("server resets after the HTTP request (http://)", "TCP_RESET",
                     "http://127.0.0.1:%d" % s.port, "--timeout", "3", phase="tcp")
    assert js.doc["phases"][4]["status"] == "fail", js.doc["phases"][4]
