"""Layer 2, DNS: a fake UDP DNS server on loopback answers NXDOMAIN,
SERVFAIL, REFUSED, nothing, or only AAAA, for names of its own zone
(faultzoo/servers.py FakeDns).  The doctor asks it through --dns-server;
curl, which only reads /etc/resolv.conf, asks a second instance on port 53
of a 127.53.x.y address from a private mount namespace (the curl_dns
fixture; its resolv.conf has `options timeout:1 attempts:1`, and curl gets
--max-time 5, so a silent server ends in curl's "could not resolve")."""
from faultzoo import SLOW
from faultzoo.doctor import check, covers, doctor, phase_status, verdict_code
from faultzoo.fapiao import with_cert
from faultzoo.servers import closed_port


def dns_check(fault, code, host, fake_dns, curl_dns, *extra, timeout="3"):
    port = closed_port()
    return check(fault, code, "https://%s:%d" % (host, port), "--dns-server", fake_dns.addr,
                 "--timeout", timeout, *extra, phase="dns", with_curl=curl_dns is not None,
                 curl_prefix=curl_dns, curl_max_time=5, timeout=30 * SLOW)


@covers("DNS_NXDOMAIN")
def test_dns_nxdomain(fake_dns, curl_dns):
    dns_check("name does not exist (NXDOMAIN)", "DNS_NXDOMAIN", "nx.doctor.test", fake_dns,
              curl_dns)
    assert ("nx.doctor.test", 1) in fake_dns.queries, fake_dns.queries


@covers("DNS_SERVFAIL")
def test_dns_servfail(fake_dns, curl_dns):
    dns_check("DNS server fails (SERVFAIL)", "DNS_SERVFAIL", "fail.doctor.test", fake_dns,
              curl_dns)


@covers("DNS_REFUSED")
def test_dns_refused(fake_dns, curl_dns):
    dns_check("DNS server refuses (REFUSED)", "DNS_REFUSED", "refused.doctor.test", fake_dns,
              curl_dns)


@covers("DNS_TIMEOUT")
def test_dns_timeout(fake_dns, curl_dns):
    text, js = dns_check("DNS server does not answer", "DNS_TIMEOUT", "silent.doctor.test",
                         fake_dns, curl_dns, timeout="1")
    assert js.elapsed < 1 + 1.5 * SLOW, "--timeout 1 but the run took %.1fs" % js.elapsed
    assert ("silent.doctor.test", 1) in fake_dns.queries, fake_dns.queries


@covers("DNS_NO_ADDRESS")
def test_dns_aaaa_only_with_ipv4(fake_dns, curl_dns):
    dns_check("name has only IPv6, client wants IPv4", "DNS_NO_ADDRESS", "v6only.doctor.test",
              fake_dns, curl_dns, "--ipv4")


def test_dns_aaaa_only(fake_dns):
    """Without --ipv4 the doctor goes on over ::1, where nothing listens."""
    run = doctor("https://v6only.doctor.test:%d" % closed_port(), "--dns-server", fake_dns.addr,
                 "--timeout", "3", "--json")
    assert verdict_code(run.doc) in ("TCP_REFUSED", "TCP_UNREACHABLE"), run
    assert phase_status(run.doc, "dns") == "ok", run


def _values(obj, key):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                yield v
            yield from _values(v, key)
    elif isinstance(obj, list):
        for v in obj:
            yield from _values(v, key)


def test_dns_name_resolved_by_fake_dns_to_real_server(fake_dns, pki, make_server):
    """ok.doctor.test exists only in the fake DNS (A 127.0.0.1, TTL 30); a
    real fapiao server presents a certificate for that name."""
    srv = with_cert(make_server, pki["dnsname"], pki.root_cert)
    text, js = check("healthy, name from DNS", "OK", "https://ok.doctor.test:%d" % srv.port,
                     "--dns-server", fake_dns.addr, "--cacert", pki.root_cert, "--timeout", "5",
                     "--client-id", srv.client_id, "--client-secret", srv.client_secret,
                     with_curl=False)
    assert ("ok.doctor.test", 1) in fake_dns.queries, fake_dns.queries
    assert phase_status(js.doc, "dns") == "ok" and phase_status(js.doc, "api") == "ok", js
    dns = [p for p in js.doc["phases"] if p["name"] == "dns"]
    assert 30 in list(_values(dns, "ttl")), "DNS phase does not report TTL 30: %r" % dns


def test_resolve_skips_dns(pki, make_server):
    srv = with_cert(make_server, pki["dnsname"], pki.root_cert)
    text, js = check("healthy, --resolve", "OK", "https://ok.doctor.test:%d" % srv.port,
                     "--resolve", "ok.doctor.test:%d:127.0.0.1" % srv.port,
                     "--cacert", pki.root_cert, with_curl=False)
    assert phase_status(js.doc, "dns") == "skipped", js


@covers("DNS_WRONG_ADDRESS")
def test_dns_wrong_address_against_expected(fake_dns, curl_dns):
    """The resolver answers 127.0.0.1 where the server is 127.0.0.2 (an ISP
    or internal DNS answering a wrong address); curl goes there and finds
    the port closed."""
    text, js = dns_check("DNS answers a wrong address (--expect-address)", "DNS_WRONG_ADDRESS",
                         "hijacked.doctor.test", fake_dns, curl_dns,
                         "--expect-address", "127.0.0.2")
    d = js.doc["phases"][1]["details"]
    assert d["expected"] == "127.0.0.2", d
    assert "127.0.0.1" in js.doc["verdict"]["message"], js


@covers("DNS_WRONG_ADDRESS")
def test_dns_wrong_address_against_trusted_resolver(fake_dns):
    """A second DNS server, trusted (--trusted-dns), knows the right
    address; the usual one answers another."""
    from faultzoo.servers import QTYPE_A, FakeDns
    trusted = FakeDns(records={"hijacked.doctor.test": [(QTYPE_A, "127.0.0.2")]}).start()
    try:
        text, js = check("DNS answers a wrong address (--trusted-dns)", "DNS_WRONG_ADDRESS",
                         "https://hijacked.doctor.test:%d" % closed_port(),
                         "--dns-server", fake_dns.addr, "--trusted-dns", trusted.addr,
                         "--timeout", "3", phase="dns", with_curl=False)
        assert js.doc["phases"][1]["details"]["trusted_addresses"] == ["127.0.0.2"], js
        assert ("hijacked.doctor.test", 1) in trusted.queries, trusted.queries
    finally:
        trusted.stop()


def test_dns_expected_address_matches(fake_dns):
    """The right address (or one only of the other family) is no finding:
    the run goes on to TCP, where nothing listens."""
    for expect in ("127.0.0.1", "::2"):
        run = doctor("https://hijacked.doctor.test:%d" % closed_port(), "--dns-server",
                     fake_dns.addr, "--expect-address", expect, "--timeout", "3", "--json")
        assert verdict_code(run.doc) == "TCP_REFUSED", run
        assert phase_status(run.doc, "dns") == "ok", run


def test_expect_address_must_be_addresses():
    run = doctor("https://hijacked.doctor.test:443", "--expect-address", "not-an-ip")
    assert run.rc == 2, run
