"""The client's network, past the proxy: a captive portal or a
web-authentication gateway answering in place of the server
(faultzoo/servers.py CaptivePortal: a 302 to its login page on another
host, the login page itself, 511)."""
import pytest

from faultzoo.doctor import check, covers, doctor, verdict_code
from faultzoo.servers import CaptivePortal


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
