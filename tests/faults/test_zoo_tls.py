"""Layer 4, TLS: certificates from the test PKI (faultzoo/certs.py) served by
openssl s_server or by a real fapiao; old protocol versions and ciphers from
gnutls-serv; a stapled OCSP response that says "revoked"; a server that
wants a client certificate; servers that accept and then say nothing, close,
or speak plain HTTP."""
import pytest

from faultzoo.doctor import check, covers, doctor, phase_status, verdict_code
from faultzoo.fapiao import with_cert


def url(s):
    return "https://127.0.0.1:%d" % s.port


@covers("TLS_SELF_SIGNED")
def test_self_signed_without_cacert(server):
    check("fapiao's self-signed certificate, no --cacert", "TLS_SELF_SIGNED", server.base_url,
          phase="tls")


@covers("TLS_CERT_EXPIRED", "TLS_CERT_NOT_YET_VALID", "TLS_HOSTNAME_MISMATCH",
        "TLS_SELF_SIGNED", "TLS_CHAIN_INCOMPLETE", "TLS_UNTRUSTED_ISSUER", "TLS_WEAK_KEY")
@pytest.mark.parametrize("leaf,code,fault", [
    ("expired", "TLS_CERT_EXPIRED", "certificate expired"),
    ("notyet", "TLS_CERT_NOT_YET_VALID", "certificate not yet valid"),
    ("wronghost", "TLS_HOSTNAME_MISMATCH", "certificate for another host name"),
    ("selfsigned", "TLS_SELF_SIGNED", "self-signed certificate"),
    ("chainless", "TLS_CHAIN_INCOMPLETE", "intermediate certificate not sent"),
    ("untrusted", "TLS_UNTRUSTED_ISSUER", "certificate from an unknown CA"),
    ("weak", "TLS_WEAK_KEY", "RSA 1024-bit certificate key"),
])
def test_bad_certificate(pki, tls_server, leaf, code, fault):
    extra = pki.other_root_cert if leaf == "untrusted" else None
    # OpenSSL's default security level refuses to serve a 1024-bit key
    flags = ["-cipher", "DEFAULT@SECLEVEL=0"] if leaf == "weak" else []
    s = tls_server(pki[leaf], extra=extra, flags=flags)
    check(fault, code, url(s), "--cacert", pki.root_cert, "--timeout", "5", phase="tls")


@covers("TLS_CERT_REVOKED")
def test_revoked_certificate_stapled_ocsp(pki, tls_server):
    """The server staples an OCSP response (signed by the root) saying the
    certificate is revoked.  curl does not look at it without --cert-status."""
    s = tls_server(pki["revoked"], flags=["-status_file", pki.ocsp_revoked])
    check("certificate revoked (stapled OCSP)", "TLS_CERT_REVOKED", url(s),
          "--cacert", pki.root_cert, "--timeout", "5", phase="tls")


@covers("TLS_PLAIN_HTTP")
def test_https_to_plain_http(plain_http):
    check("https:// to a plain-HTTP port", "TLS_PLAIN_HTTP", url(plain_http), "--timeout", "5",
          phase="tls")


@covers("TLS_PROTOCOL_MISMATCH")
@pytest.mark.parametrize("version", ["TLS1.0", "TLS1.1"])
def test_server_speaks_only_old_tls(pki, gnutls_server, version):
    """Only TLS 1.0 or 1.1: today's clients (and the doctor) want 1.2+; the
    doctor names the version the server does speak."""
    s = gnutls_server(pki["direct"], "NORMAL:-VERS-ALL:+VERS-%s" % version)
    text, js = check("server speaks only %s" % version.replace("TLS", "TLS "),
                     "TLS_PROTOCOL_MISMATCH", url(s), "--cacert", pki.root_cert,
                     "--timeout", "5", phase="tls")
    assert version in js.doc["verdict"]["message"], js.doc["verdict"]
    assert js.doc["phases"][3]["details"]["legacy_protocol"] == version, js.doc["phases"][3]


@covers("TLS_PROTOCOL_MISMATCH")
def test_no_common_cipher(pki, gnutls_server):
    """TLS 1.2 with only a CAMELLIA-CBC suite and RSA key exchange, which an
    ECDSA certificate cannot do: the server has nothing to offer."""
    s = gnutls_server(pki["direct"],
                      "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+CAMELLIA-128-CBC:-KX-ALL:+RSA")
    check("no cipher suite in common", "TLS_PROTOCOL_MISMATCH", url(s),
          "--cacert", pki.root_cert, "--timeout", "5", phase="tls")


@covers("TLS_HANDSHAKE_FAILED")
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_client_certificate_required(pki, tls_server, version):
    """Mutual TLS: with TLS 1.2 the server refuses inside the handshake; with
    TLS 1.3 the client's handshake completes and the refusal comes with the
    first read — both are the TLS layer's fault."""
    s = tls_server(pki["direct"], flags=[version, "-Verify", "1"])
    label = {"-tls1_2": "TLS 1.2", "-tls1_3": "TLS 1.3"}[version]
    text, js = check("server requires a client certificate (%s)" % label,
                     "TLS_HANDSHAKE_FAILED", url(s), "--cacert", pki.root_cert,
                     "--timeout", "5", phase="tls")
    assert "client certificate" in js.doc["verdict"]["message"], js.doc["verdict"]


@covers("TLS_HANDSHAKE_FAILED")
def test_server_closes_after_client_hello(raw_server):
    s = raw_server("fin_after_hello")
    check("server closes after the ClientHello", "TLS_HANDSHAKE_FAILED", url(s),
          "--timeout", "3", phase="tls")


@covers("TLS_TIMEOUT")
def test_server_accepts_and_never_answers(raw_server):
    """TCP is accepted (the kernel does that), the ClientHello is never
    answered: the doctor waits its timeout for TLS, then the same for a plain
    HTTP request (a plain-HTTP server may wait for a line end), so 2×."""
    s = raw_server("silent")
    text, js = check("server accepts, never answers (no ServerHello)", "TLS_TIMEOUT", url(s),
                     "--timeout", "1", phase="tls")
    assert js.elapsed < 2 * 1 + 1.5, js.elapsed


def test_optional_client_certificate_goes_on(pki, tls_server):
    """A server that asks for a client certificate but does not insist."""
    s = tls_server(pki["direct"], flags=["-verify", "1"])
    run = doctor(url(s), "--cacert", pki.root_cert, "--timeout", "5", "--json")
    assert phase_status(run.doc, "tls") == "ok", run
    assert verdict_code(run.doc) == "HTTP_WRONG_SERVICE", run


def test_valid_chain_passes_tls(pki, tls_server):
    """The leaf + intermediate chain verifies against the root; s_server is
    not fapiao, so the first failing layer is HTTP (wrong service)."""
    s = tls_server(pki["valid"], extra=pki.intermediate_cert)
    run = doctor(url(s), "--cacert", pki.root_cert, "--timeout", "5", "--json")
    assert phase_status(run.doc, "tls") == "ok", run
    assert verdict_code(run.doc) == "HTTP_WRONG_SERVICE" and run.rc == 50, run


@covers("TLS_CERT_EXPIRING_SOON")
def test_expiring_soon_is_a_warning(pki, make_server):
    srv = with_cert(make_server, pki["expiring"], pki.root_cert)
    check("certificate expires in 10 days", "OK", srv.base_url, "--cacert", pki.root_cert,
          warning="TLS_CERT_EXPIRING_SOON", phase="tls")
