"""Layer 1, the client machine itself: proxy variables and the clock.

The clock faults move only the doctor's clock (and curl's) with faketime;
the server keeps the real time and says so in its HTTP Date header, which is
how the doctor tells a wrong local clock from a wrong certificate."""
from faultzoo.doctor import check, covers, doctor, verdict_code
from faultzoo.servers import closed_port


@covers("PROXY_UNREACHABLE")
def test_https_proxy_unreachable(server):
    port = closed_port()
    check("https_proxy points at a closed port", "PROXY_UNREACHABLE", server.base_url,
          "--cacert", server.ca_cert, phase="local",
          env={"https_proxy": "http://127.0.0.1:%d" % port,
               "HTTPS_PROXY": "http://127.0.0.1:%d" % port})


@covers("PROXY_ENV_SET")
def test_https_proxy_that_works_is_named(server, connect_proxy):
    """A working proxy is not a fault, but the doctor connects directly and
    says that clients may not: PROXY_ENV_SET (info), verdict OK."""
    text, js = check("https_proxy set, proxy works", "OK", server.base_url,
                     "--cacert", server.ca_cert, warning="PROXY_ENV_SET", phase="local",
                     env={"https_proxy": "http://127.0.0.1:%d" % connect_proxy.port})
    assert js.doc["phases"][0]["details"].get("proxy_answers") is True, js


def test_no_proxy_exempts_host(server):
    port = closed_port()
    env = {"https_proxy": "http://127.0.0.1:%d" % port, "NO_PROXY": "127.0.0.1",
           "no_proxy": "127.0.0.1"}
    run = doctor(server.base_url, "--cacert", server.ca_cert, "--json", env=env)
    assert verdict_code(run.doc) == "OK" and run.rc == 0, run


@covers("CLOCK_SKEW")
def test_clock_an_hour_ahead(server, faketime):
    """Certificates still verify; the server's Date says the clock is off."""
    text, js = check("local clock 1 hour ahead", "CLOCK_SKEW", server.base_url,
                     "--cacert", server.ca_cert, phase="local", prefix=faketime("+1h"))
    skew = js.doc["phases"][0]["details"]["clock_skew_s"]
    assert 3500 < skew < 3700, skew


@covers("CLOCK_SKEW")
def test_clock_past_the_certificate(server, faketime):
    """1000 days ahead the certificate looks expired; the doctor names the
    clock, not the certificate, because the server's Date disagrees."""
    text, js = check("local clock 1000 days ahead (certificate looks expired)", "CLOCK_SKEW",
                     server.base_url, "--cacert", server.ca_cert, phase="local",
                     prefix=faketime("+1000d"))
    assert js.doc["phases"][3]["finding"] in ("TLS_CERT_EXPIRED", "TLS_CERT_NOT_YET_VALID"), js


@covers("CLOCK_SKEW")
def test_clock_never_set(server, faketime):
    """A clock years in the past (a machine without NTP or RTC battery)."""
    check("local clock 10 years behind", "CLOCK_SKEW", server.base_url,
          "--cacert", server.ca_cert, phase="local", prefix=faketime("-10y"))


@covers("TLS_CERT_EXPIRED")
def test_clock_ahead_without_server_date(pki, tls_server, faketime):
    """openssl s_server sends no Date: 400 days ahead, a 365-day certificate
    can only be called expired."""
    s = tls_server(pki["direct"])
    check("local clock 400 days ahead, server sends no Date", "TLS_CERT_EXPIRED",
          "https://127.0.0.1:%d" % s.port, "--cacert", pki.root_cert, "--timeout", "5",
          phase="tls", prefix=faketime("+400d"))
