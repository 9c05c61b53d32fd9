"""Layer 4, TLS, as the client's machine spoils it (issue 23): an
SSL-inspection proxy that re-signs the connection with a corporate CA the
machine trusts (faultzoo/intercept.py); a trust store without the root the
server's chain needs; a client stack too old for a server that wants TLS 1.2+
or modern ciphers, simulated by restricting the doctor's own priorities
(--tls-max, --tls-priority)."""
import subprocess

import pytest

from faultzoo.doctor import check, covers, doctor, phase_status, verdict_code
from faultzoo.fapiao import with_cert
from faultzoo.intercept import InterceptProxy


def url(s):
    return "https://127.0.0.1:%d" % s.port


def openssl_pin(cert):
    """curl's pin of a certificate's key, computed by openssl (not by the
    doctor): sha256 of the DER SubjectPublicKeyInfo, in base64."""
    sh = ("openssl x509 -in \"$0\" -pubkey -noout | openssl pkey -pubin -outform der | "
          "openssl dgst -sha256 -binary | base64")
    r = subprocess.run(["sh", "-c", sh, cert], stdout=subprocess.PIPE, timeout=60, check=True)
    return "sha256//" + r.stdout.decode().strip()


@pytest.fixture
def real_fapiao(pki, make_server):
    """A real fapiao serving the root-signed "direct" leaf."""
    return with_cert(make_server, pki["direct"], pki.root_cert)


@pytest.fixture
def intercepted(pki, real_fapiao):
    """(the fapiao server, the interception proxy in front of it)."""
    p = InterceptProxy(pki["intercepted"], real_fapiao.port).start()
    yield real_fapiao, p
    p.stop()


@covers("TLS_INTERCEPTED")
def test_inspection_proxy_against_the_expected_issuer(pki, intercepted):
    """The machine trusts the inspection CA (--cacert), so the chain
    verifies and every client is content; the issuer is not the server's."""
    _, proxy = intercepted
    text, js = check("SSL-inspection proxy re-signs (--expect-issuer)", "TLS_INTERCEPTED",
                     url(proxy), "--cacert", pki.inspection_cert, "--expect-issuer",
                     "fapiao test root CA", "--timeout", "5", phase="tls")
    msg = js.doc["verdict"]["message"]
    assert "Example Corp Security Gateway" in msg and "Example Corp SSL Inspection CA" in msg, msg
    det = js.doc["phases"][3]["details"]
    assert det["interceptor"] == '"Example Corp Security Gateway" (Example Corp SSL Inspection CA)'
    assert proxy.relayed >= 2, proxy.relayed  # the doctor and curl went through it


@covers("TLS_INTERCEPTED")
def test_inspection_proxy_against_the_pin(pki, intercepted):
    _, proxy = intercepted
    pin = openssl_pin(pki["direct"].cert)
    text, js = check("SSL-inspection proxy re-signs (--pin)", "TLS_INTERCEPTED", url(proxy),
                     "--cacert", pki.inspection_cert, "--pin", pin, "--timeout", "5",
                     phase="tls")
    det = js.doc["phases"][3]["details"]
    assert det["pin"] == openssl_pin(pki["intercepted"].cert) != pin, det
    assert "--pin" in js.doc["verdict"]["message"], js.doc["verdict"]


def test_interception_is_invisible_without_an_expectation(pki, intercepted):
    """Without --expect-issuer or --pin the re-signed chain is valid: the
    doctor (like every client) sees a healthy server through the proxy."""
    _, proxy = intercepted
    run = doctor(url(proxy), "--cacert", pki.inspection_cert, "--timeout", "5", "--json")
    assert verdict_code(run.doc) == "OK" and run.rc == 0, run


def test_the_real_server_meets_the_expectations(pki, real_fapiao):
    """Directly, the issuer and the pin (one of two, as for a key rollover)
    match: no finding; the pin the doctor computes is openssl's."""
    pin = openssl_pin(pki["direct"].cert)
    other = openssl_pin(pki["intercepted"].cert)
    run = doctor(real_fapiao.base_url, "--cacert", pki.root_cert, "--expect-issuer",
                 "FAPIAO TEST ROOT", "--pin", "%s;%s" % (other, pin), "--timeout", "5", "--json")
    assert verdict_code(run.doc) == "OK" and run.rc == 0, run
    assert run.doc["phases"][3]["details"]["pin"] == pin, run.doc["phases"][3]


@pytest.mark.parametrize("bad", ["sha256//short", "md5//" + "A" * 43 + "=",
                                 "sha256//" + "A" * 43 + "=;"])
def test_a_malformed_pin_is_a_usage_error(bad):
    run = doctor("https://127.0.0.1:1", "--pin", bad)
    assert run.rc == 2 and "--pin" in run.err, run


@covers("TLS_ROOT_MISSING")
@pytest.mark.parametrize("store,fault", [
    ("other", "root CA missing from the trust store (--cacert)"),
    ("system", "test root missing from the system trust store"),
])
def test_root_missing(pki, tls_server, store, fault):
    """The server sends leaf + intermediate, as it should; the store lacks
    the root above the intermediate (an old Java cacerts, an old CA bundle)."""
    s = tls_server(pki["valid"], extra=pki.intermediate_cert)
    args = ["--cacert", pki.other_root_cert] if store == "other" else []
    text, js = check(fault, "TLS_ROOT_MISSING", url(s), *args, "--timeout", "5", phase="tls")
    msg = js.doc["verdict"]["message"]
    assert "fapiao test root CA" in msg, msg
    assert (pki.other_root_cert if store == "other" else "system") in msg, msg


@covers("TLS_CLIENT_TOO_OLD")
@pytest.mark.parametrize("server_prio,client,fault", [
    ("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", ["--tls-max", "1.0"],
     "client offers only TLS 1.0, server wants 1.2+"),
    ("NORMAL:-VERS-ALL:+VERS-TLS1.3", ["--tls-max", "1.2"],
     "client offers only TLS 1.2, server wants 1.3"),
    ("NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.3",
     ["--tls-priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+3DES-CBC"],
     "client offers only 3DES, server wants modern ciphers"),
])
def test_client_too_old(pki, gnutls_server, server_prio, client, fault):
    s = gnutls_server(pki["direct"], server_prio)
    text, js = check(fault, "TLS_CLIENT_TOO_OLD", url(s), "--cacert", pki.root_cert,
                     *client, "--timeout", "5", phase="tls",
                     with_curl="--tls-max" in client)
    det = js.doc["phases"][3]["details"]
    assert det["server_protocol"].startswith("TLS1."), det
    assert det["server_protocol"] in js.doc["verdict"]["message"], js.doc["verdict"]


def test_an_old_client_is_not_blamed_for_an_old_server(pki, gnutls_server):
    """A server that speaks only TLS 1.0 refuses a TLS 1.2 client too: the
    server is at fault (TLS_PROTOCOL_MISMATCH), not the client."""
    s = gnutls_server(pki["direct"], "NORMAL:-VERS-ALL:+VERS-TLS1.0")
    run = doctor(url(s), "--cacert", pki.root_cert, "--tls-max", "1.2", "--timeout", "5",
                 "--json")
    assert verdict_code(run.doc) == "TLS_PROTOCOL_MISMATCH", run
    assert run.doc["phases"][3]["details"]["server_protocol"] == "none", run.doc["phases"][3]
    assert phase_status(run.doc, "tls") == "fail", run


@pytest.mark.parametrize("args", [["--tls-max", "1.4"], ["--tls-max", "2"],
                                  ["--tls-priority", "NOT-A-PRIORITY"]])
def test_bad_tls_options_are_usage_errors(args):
    run = doctor("https://127.0.0.1:1", *args)
    assert run.rc == 2, run
