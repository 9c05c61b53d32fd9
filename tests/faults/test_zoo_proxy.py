"""Layer 1, the client's proxy: a CONNECT proxy on loopback
(faultzoo/servers.py ConnectProxy) that wants a password (407), denies the
tunnel (403) or closes the connection on CONNECT.  The doctor takes the
proxy from https_proxy (as a client does) or from --proxy, asks it for the
tunnel to the server and names its answer; curl, given the same
https_proxy, fails with one exit code for all of them."""
import pytest

from faultzoo.doctor import check, covers, doctor, verdict_code
from faultzoo.servers import ConnectProxy


@pytest.fixture
def proxy():
    started = []

    def start(mode):
        p = ConnectProxy(mode).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def env_for(p, userinfo=""):
    url = "http://%s127.0.0.1:%d" % (userinfo, p.port)
    return {"https_proxy": url, "HTTPS_PROXY": url}


@covers("PROXY_AUTH_REQUIRED")
def test_proxy_wants_a_password(server, proxy):
    p = proxy("auth")
    text, js = check("proxy requires authentication (407)", "PROXY_AUTH_REQUIRED",
                     server.base_url, "--cacert", server.ca_cert, phase="local",
                     env=env_for(p))
    d = js.doc["phases"][0]["details"]
    assert d["proxy_status"] == 407 and d["proxy_authenticate"].startswith("Basic"), d
    assert p.targets and p.targets[0].endswith(":%d" % server.port), p.targets


@covers("PROXY_AUTH_REQUIRED")
def test_proxy_refuses_the_password_given(server, proxy):
    p = proxy("auth")
    run = doctor(server.base_url, "--cacert", server.ca_cert, "--json",
                 env=env_for(p, "zoo:wrong@"))
    assert verdict_code(run.doc) == "PROXY_AUTH_REQUIRED" and run.rc == 10, run
    assert "refused the user name and password" in run.doc["verdict"]["message"], run


def test_proxy_with_the_right_password_tunnels(server, proxy):
    """user:password from the proxy URL (URL-encoded: %40 is @) go out as
    Basic credentials; the tunnel works, the verdict is OK."""
    p = proxy("auth")
    run = doctor(server.base_url, "--cacert", server.ca_cert, "--json",
                 env=env_for(p, "zoo:s3cret%401@"))
    assert verdict_code(run.doc) == "OK" and run.rc == 0, run
    assert "PROXY_ENV_SET" in [w["code"] for w in run.doc["warnings"]], run
    assert run.doc["phases"][0]["details"]["proxy_status"] == 200, run


@covers("PROXY_BLOCKED")
def test_proxy_denies_the_port(server, proxy):
    p = proxy("deny")
    text, js = check("proxy denies CONNECT (403)", "PROXY_BLOCKED", server.base_url,
                     "--cacert", server.ca_cert, phase="local", env=env_for(p))
    assert js.doc["phases"][0]["details"]["proxy_status"] == 403, js


@covers("PROXY_BLOCKED")
def test_proxy_closes_on_connect(server, proxy):
    p = proxy("close")
    check("proxy closes the connection on CONNECT", "PROXY_BLOCKED", server.base_url,
          "--cacert", server.ca_cert, phase="local", env=env_for(p))
    assert p.targets, "the doctor never sent CONNECT"


def test_proxy_option_overrides_the_variables(server, proxy):
    """--proxy names the proxy to check even with no variable set, and wins
    over NO_PROXY (the operator asked for it)."""
    p = proxy("deny")
    run = doctor(server.base_url, "--cacert", server.ca_cert, "--json",
                 "--proxy", "http://127.0.0.1:%d" % p.port, env={"NO_PROXY": "*"})
    assert verdict_code(run.doc) == "PROXY_BLOCKED" and run.rc == 10, run
    assert run.doc["phases"][0]["details"]["proxy_var"] == "--proxy", run


# ---- a proxy auto-config (PAC) file: --pac ----------------------------------
PAC = """// the network's proxy.pac: the intranet direct, the rest through the proxy
function FindProxyForURL(url, host) {
  if (isPlainHostName(host) || shExpMatch(host, "*.intranet.test"))
    return "DIRECT";
  if (isInNet(host, "127.0.0.0", "255.0.0.0") && dnsDomainLevels(host) == 3)
    return "PROXY 127.0.0.1:%d; DIRECT";
  return "DIRECT";
}
"""


def pac_file(tmp_path, body):
    f = tmp_path / "proxy.pac"
    f.write_text(body)
    return str(f)


@covers("PROXY_PAC")
def test_pac_picks_a_proxy(server, proxy, tmp_path):
    """The PAC file sends the server through a working proxy: a warning
    (programs without PAC support go direct, which works here: curl's 0),
    and the proxy is checked as --proxy would be."""
    p = proxy("tunnel")
    text, js = check("PAC file sends the server through a proxy", "OK", server.base_url,
                     "--cacert", server.ca_cert, "--pac", pac_file(tmp_path, PAC % p.port),
                     warning="PROXY_PAC", phase="local")
    d = js.doc["phases"][0]["details"]
    assert d["pac_result"] == "PROXY 127.0.0.1:%d; DIRECT" % p.port, d
    assert d["proxy_var"] == "PAC" and d["proxy_status"] == 200, d
    assert "PROXY_ENV_SET" in [w["code"] for w in js.doc["warnings"]], js
    assert p.targets, "the PAC's proxy got no CONNECT"


@covers("PROXY_PAC")
def test_pac_proxy_denies(server, proxy, tmp_path):
    """The PAC's proxy refuses the server: the verdict is the proxy's
    refusal, the PAC's choice a warning beside it."""
    p = proxy("deny")
    text, js = check("PAC file sends the server to a proxy that denies it", "PROXY_BLOCKED",
                     server.base_url, "--cacert", server.ca_cert,
                     "--pac", pac_file(tmp_path, PAC % p.port), phase="local", with_curl=False)
    assert "PROXY_PAC" in [w["code"] for w in js.doc["warnings"]], js


@covers("PROXY_PAC")
@pytest.mark.parametrize("body,said", [
    ("function FindProxyForURL(url, host) { while (true) {} }", "did not finish"),
    ("function FindProxyForURL(url, host) { return \"DIRECT\"", "SyntaxError"),
    ("function FindProxyForURL(url, host) { return dateRange(\"JAN\") ? \"DIRECT\" : \"\"; }",
     "dateRange is not supported"),
    ("var notTheFunction = 1;", "no function FindProxyForURL"),
])
def test_pac_that_fails(server, tmp_path, body, said):
    """A PAC file that loops, does not parse or calls what the doctor does
    not offer is named (a warning: browsers then go direct) within the
    doctor's timeout; the run goes on directly."""
    run = doctor(server.base_url, "--cacert", server.ca_cert, "--timeout", "2",
                 "--pac", pac_file(tmp_path, body), "--json")
    assert verdict_code(run.doc) == "OK" and run.rc == 0, run
    w = [w for w in run.doc["warnings"] if w["code"] == "PROXY_PAC"]
    assert w and said in w[0]["message"], run


def test_pac_direct(server, tmp_path):
    run = doctor(server.base_url, "--cacert", server.ca_cert, "--json",
                 "--pac", pac_file(tmp_path, 'function FindProxyForURL(u, h) { return "DIRECT"; }'),
                 env={"https_proxy": "http://127.0.0.1:9"})
    assert verdict_code(run.doc) == "OK" and run.rc == 0, run
    assert run.doc["warnings"] == [], run
    assert run.doc["phases"][0]["details"]["pac_result"] == "DIRECT", run
