"""`fapiao doctor <url>` seen from outside: for every layer a connection
crosses (local proxy settings, DNS, TCP, TLS, HTTP, API) a real loopback
fault is staged and the doctor must name it with the right finding code
and the finding's stable exit code (OK 0, local 10, dns 20, tcp 30, tls 40,
http 50, api 60; usage errors 2).

Fixtures (tests/e2e/doctor_fixtures/):
  certs.py    a test PKI built with certtool (root, intermediate, unknown
              root; valid / expired / not-yet-valid / wrong host /
              self-signed / chain-incomplete / untrusted / expiring leaves)
  servers.py  openssl s_server (TLS), a plain http.server that is not
              fapiao, a fake UDP DNS server, a closed-port helper

Only 127.0.0.1; every doctor run is bounded by a subprocess timeout; every
server started is stopped at teardown.

The JSON shape is read through verdict_code()/verdict()/phases() only, so
that it is easy to adapt when the real document is known.
"""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, SLOW
from doctor_fixtures.certs import Pki
from doctor_fixtures.servers import FakeDns, PlainHttpServer, TlsServer, closed_port

EXIT = {"OK": 0, "PROXY_UNREACHABLE": 10, "DNS_NXDOMAIN": 20, "DNS_SERVFAIL": 20,
        "DNS_REFUSED": 20, "DNS_TIMEOUT": 20, "DNS_NO_ADDRESS": 20, "TCP_REFUSED": 30,
        "TLS_SELF_SIGNED": 40, "TLS_PLAIN_HTTP": 40, "TLS_CERT_EXPIRED": 40,
        "TLS_CERT_NOT_YET_VALID": 40, "TLS_HOSTNAME_MISMATCH": 40,
        "TLS_CHAIN_INCOMPLETE": 40, "TLS_UNTRUSTED_ISSUER": 40,
        "HTTP_WRONG_SERVICE": 50, "HTTP_TLS_REQUIRED": 50, "HTTP_NOT_READY": 50, "AUTH_BAD_CREDENTIALS": 60}
LAYER_OF_EXIT = {10: "local", 20: "dns", 30: "tcp", 40: "tls", 50: "http", 60: "api"}
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "no_proxy", "NO_PROXY")
RUN_TIMEOUT = 60 * SLOW


# ---- the binary must have `doctor` at all: one clear failure otherwise -----
def _doctor_available():
    try:
        r = subprocess.run([BIN, "doctor", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "cannot run %s doctor --help: %r" % (BIN, e)
    text = (r.stdout + r.stderr).decode(errors="replace")
    if "unknown command" in text or "doctor" not in text:
        return "%s has no `doctor` command (rc %d): %s" % (BIN, r.returncode, text.strip()[:300])
    return None


_MISSING = _doctor_available()
if _MISSING:
    pytest.fail("fapiao doctor is not implemented in this binary -- " + _MISSING,
                pytrace=False)


# ---- JSON accessors: the one place that knows the document's shape ----------
def verdict(doc):
    v = doc.get("verdict")
    if isinstance(v, str):
        return {"code": v}
    if isinstance(v, dict):
        return v
    # tolerate a flat document {"code": ..., "exit_code": ...}
    return {k: doc[k] for k in ("code", "exit_code", "article", "cause", "fix") if k in doc}


def verdict_code(doc):
    v = verdict(doc)
    return v.get("code") or v.get("finding")


def phases(doc):
    ps = doc.get("phases") or doc.get("layers") or []
    if isinstance(ps, dict):  # {"dns": {...}, ...}
        ps = [dict(v, name=k) for k, v in ps.items()]
    return ps


def phase_status(doc, name):
    for p in phases(doc):
        if (p.get("name") or p.get("layer")) == name:
            return (p.get("status") or "").lower()
    return None


def warning_codes(doc):
    out = []
    for w in doc.get("warnings") or []:
        out.append(w if isinstance(w, str) else (w.get("code") or w.get("finding")))
    for p in phases(doc):
        for w in p.get("warnings") or p.get("findings") or []:
            out.append(w if isinstance(w, str) else (w.get("code") or w.get("finding")))
    return out


# ---- running the doctor -----------------------------------------------------
class Run:
    def __init__(self, args, r):
        self.args = args
        self.rc = r.returncode
        self.out = r.stdout.decode("utf-8", errors="replace")
        self.err = r.stderr.decode("utf-8", errors="replace")
        self.doc = None
        if "--json" in args:
            try:
                self.doc = json.loads(self.out)
            except ValueError as e:
                raise AssertionError("--json output does not parse (%s), rc %d:\nstdout: %s\n"
                                     "stderr: %s" % (e, self.rc, self.out[:3000], self.err[:2000]))

    def __repr__(self):
        return "doctor %s -> rc %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(self.args), self.rc, self.out[-4000:], self.err[-2000:])


def doctor(*args, env=None, timeout=RUN_TIMEOUT):
    e = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    e.update(env or {})
    args = [str(a) for a in args]
    t0 = time.monotonic()
    try:
        r = subprocess.run([BIN, "doctor"] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=e,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("fapiao doctor %s did not finish within %ss" % (args, timeout))
    run = Run(args, r)
    run.elapsed = time.monotonic() - t0
    assert run.rc >= 0, "doctor killed by signal %d: %r" % (-run.rc, run)
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in run.err, "sanitizer report: %r" % run
    return run


def expect(code, *args, env=None, phase=None, timeout=RUN_TIMEOUT):
    """Runs the doctor twice (text, then --json) and checks verdict + exit code
    in both; for a failure, that the failing phase is named in the JSON."""
    want_rc = EXIT[code]
    text = doctor(*args, env=env, timeout=timeout)
    assert text.rc == want_rc, "expected %s / exit %d: %r" % (code, want_rc, text)
    assert code in text.out, "text report does not name %s: %r" % (code, text)
    assert "kb/%s.md" % code in text.out, "text report lacks the article kb/%s.md: %r" % (code, text)
    tail = "\n".join(text.out.strip().splitlines()[-12:])
    assert code in tail, "the report does not END with the verdict %s: %r" % (code, text)

    js = doctor(*(list(args) + ["--json"]), env=env, timeout=timeout)
    assert verdict_code(js.doc) == code, "expected verdict %s, got %r: %r" % (
        code, verdict_code(js.doc), js)
    assert js.rc == want_rc, "expected exit %d with --json: %r" % (want_rc, js)
    v = verdict(js.doc)
    if "exit_code" in v:
        assert v["exit_code"] == want_rc, v
    if "article" in v:
        assert v["article"].endswith("kb/%s.md" % code), v
    ps = phases(js.doc)
    assert ps, "no phases in --json: %r" % js
    for p in ps:
        if "duration_ms" in p and p["duration_ms"] is not None:
            assert isinstance(p["duration_ms"], (int, float)) and p["duration_ms"] >= 0, p
    if want_rc:
        layer = phase or LAYER_OF_EXIT[want_rc]
        st = phase_status(js.doc, layer)
        assert st == "fail", "phase %r should be 'fail', is %r: %s" % (
            layer, st, json.dumps(ps, ensure_ascii=False)[:2000])
    else:
        failed = [p for p in ps if (p.get("status") or "").lower() == "fail"]
        assert not failed, "healthy verdict but failing phases: %r" % failed
    return text, js


# ---- fixtures ---------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki")).build()


@pytest.fixture
def tls_server(tmp_path):
    started = []

    def start(leaf, extra=None):
        s = TlsServer(leaf.cert, leaf.key, chain_extra=extra, log_path=tmp_path / "s_server.log")
        started.append(s)
        return s.start()

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def plain_http():
    s = PlainHttpServer().start()
    yield s
    s.stop()


@pytest.fixture
def fake_dns():
    d = FakeDns().start()
    yield d
    d.stop()


def fapiao_with_cert(make_server, leaf, root_cert, init_args=()):
    """A real fapiao server whose TLS certificate is one of the test leaves."""
    import ssl
    srv = make_server(start=False, init_args=init_args)
    tls = Path(srv.ca_cert).parent
    (tls / "server.crt").write_bytes(Path(leaf.chain).read_bytes())
    (tls / "server.key").write_bytes(Path(leaf.key).read_bytes())
    srv._ctx = ssl.create_default_context(cafile=root_cert)
    srv.start()
    return srv


# ---- healthy ----------------------------------------------------------------
def test_healthy_fapiao_with_cacert(server):
    text, js = expect("OK", server.base_url, "--cacert", server.ca_cert)
    for name in ("dns", "tcp", "tls", "http"):
        st = phase_status(js.doc, name)
        assert st in ("ok", "warn", "skipped"), "phase %s: %r in %r" % (name, st, phases(js.doc))
    assert phase_status(js.doc, "tcp") == "ok" and phase_status(js.doc, "tls") == "ok", phases(js.doc)


def test_healthy_fapiao_with_credentials(server):
    text, js = expect("OK", server.base_url, "--cacert", server.ca_cert,
                      "--client-id", server.client_id, "--client-secret", server.client_secret)
    assert phase_status(js.doc, "api") == "ok", "api phase should run and pass: %r" % phases(js.doc)


def test_healthy_fapiao_with_token(server):
    expect("OK", server.base_url, "--cacert", server.ca_cert, "--token", server.token())


def test_timings_per_phase(server):
    js = doctor(server.base_url, "--cacert", server.ca_cert, "--json")
    timed = [p for p in phases(js.doc) if isinstance(p.get("duration_ms"), (int, float))]
    assert len(timed) >= 3, "per-phase timings missing: %r" % phases(js.doc)


# ---- local: proxy -----------------------------------------------------------
def test_https_proxy_unreachable(server):
    port = closed_port()
    expect("PROXY_UNREACHABLE", server.base_url, "--cacert", server.ca_cert,
           env={"https_proxy": "http://127.0.0.1:%d" % port,
                "HTTPS_PROXY": "http://127.0.0.1:%d" % port})


def test_no_proxy_exempts_host(server):
    port = closed_port()
    env = {"https_proxy": "http://127.0.0.1:%d" % port, "NO_PROXY": "127.0.0.1",
           "no_proxy": "127.0.0.1"}
    run = doctor(server.base_url, "--cacert", server.ca_cert, "--json", env=env)
    assert verdict_code(run.doc) != "PROXY_UNREACHABLE", run
    assert run.rc != 10, run
    assert verdict_code(run.doc) == "OK" and run.rc == 0, run


# ---- DNS ------------------------------------------------------------------
def test_dns_nxdomain(fake_dns):
    expect("DNS_NXDOMAIN", "https://nx.doctor.test:%d" % closed_port(),
           "--dns-server", fake_dns.addr, "--timeout", "3")
    assert any(q[0] == "nx.doctor.test" for q in fake_dns.queries), fake_dns.queries


def test_dns_servfail(fake_dns):
    expect("DNS_SERVFAIL", "https://fail.doctor.test:%d" % closed_port(),
           "--dns-server", fake_dns.addr, "--timeout", "3")


def test_dns_refused(fake_dns):
    expect("DNS_REFUSED", "https://refused.doctor.test:%d" % closed_port(),
           "--dns-server", fake_dns.addr, "--timeout", "3")


def test_dns_timeout(fake_dns):
    text, js = expect("DNS_TIMEOUT", "https://silent.doctor.test:%d" % closed_port(),
                      "--dns-server", fake_dns.addr, "--timeout", "1", timeout=30 * SLOW)
    assert js.elapsed < 10 * SLOW, "--timeout 1 but the run took %.1fs" % js.elapsed
    assert any(q[0] == "silent.doctor.test" for q in fake_dns.queries), fake_dns.queries


def test_dns_aaaa_only(fake_dns):
    """Either DNS_NO_ADDRESS (IPv4 only doctor) or it goes on over ::1 (where
    nothing listens on that port -> some TCP finding). Never a crash."""
    port = closed_port()
    run = doctor("https://v6only.doctor.test:%d" % port, "--dns-server", fake_dns.addr,
                 "--timeout", "3", "--json")
    code = verdict_code(run.doc)
    assert code in ("DNS_NO_ADDRESS", "TCP_REFUSED", "TCP_UNREACHABLE", "TCP_TIMEOUT"), run
    assert run.rc in (20, 30), run
    if code == "DNS_NO_ADDRESS":
        assert run.rc == 20 and phase_status(run.doc, "dns") == "fail", run


def test_dns_aaaa_only_with_ipv4(fake_dns):
    expect("DNS_NO_ADDRESS", "https://v6only.doctor.test:%d" % closed_port(),
           "--dns-server", fake_dns.addr, "--timeout", "3", "--ipv4")


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
    srv = fapiao_with_cert(make_server, pki["dnsname"], pki.root_cert)
    url = "https://ok.doctor.test:%d" % srv.port
    text, js = expect("OK", url, "--dns-server", fake_dns.addr, "--cacert", pki.root_cert,
                      "--timeout", "5")
    assert any(q[0] == "ok.doctor.test" for q in fake_dns.queries), \
        "--dns-server was not queried: %r" % fake_dns.queries
    assert phase_status(js.doc, "dns") == "ok", phases(js.doc)
    dns = [p for p in phases(js.doc) if p.get("name") == "dns"]
    assert 30 in list(_values(dns, "ttl")), "DNS phase does not report TTL 30: %r" % dns


def test_dns_name_with_credentials_via_fake_dns(fake_dns, pki, make_server):
    srv = fapiao_with_cert(make_server, pki["dnsname"], pki.root_cert)
    expect("OK", "https://ok.doctor.test:%d" % srv.port, "--dns-server", fake_dns.addr,
           "--cacert", pki.root_cert, "--client-id", srv.client_id,
           "--client-secret", srv.client_secret, "--timeout", "5")


def test_resolve_skips_dns(pki, make_server):
    srv = fapiao_with_cert(make_server, pki["dnsname"], pki.root_cert)
    text, js = expect("OK", "https://ok.doctor.test:%d" % srv.port, "--resolve",
                      "ok.doctor.test:%d:127.0.0.1" % srv.port, "--cacert", pki.root_cert)
    assert phase_status(js.doc, "dns") in ("skipped", "ok"), phases(js.doc)


# ---- TCP --------------------------------------------------------------------
def test_tcp_refused():
    expect("TCP_REFUSED", "https://127.0.0.1:%d" % closed_port(), "--timeout", "3")


# ---- TLS ------------------------------------------------------------------
def test_self_signed_without_cacert(server):
    expect("TLS_SELF_SIGNED", server.base_url)


def test_https_to_plain_http(plain_http):
    expect("TLS_PLAIN_HTTP", "https://127.0.0.1:%d" % plain_http.port, "--timeout", "5")


@pytest.mark.parametrize("leaf,code", [
    ("expired", "TLS_CERT_EXPIRED"),
    ("notyet", "TLS_CERT_NOT_YET_VALID"),
    ("wronghost", "TLS_HOSTNAME_MISMATCH"),
    ("selfsigned", "TLS_SELF_SIGNED"),
    ("chainless", "TLS_CHAIN_INCOMPLETE"),
    ("untrusted", "TLS_UNTRUSTED_ISSUER"),
])
def test_bad_certificate(pki, tls_server, leaf, code):
    extra = pki.other_root_cert if leaf == "untrusted" else None
    s = tls_server(pki[leaf], extra=extra)
    expect(code, "https://127.0.0.1:%d" % s.port, "--cacert", pki.root_cert, "--timeout", "5")


def test_valid_chain_passes_tls(pki, tls_server):
    """The leaf + intermediate chain verifies against the root; s_server is
    not fapiao, so the first failing layer is HTTP (wrong service)."""
    s = tls_server(pki["valid"], extra=pki.intermediate_cert)
    run = doctor("https://127.0.0.1:%d" % s.port, "--cacert", pki.root_cert, "--timeout", "5",
                 "--json")
    assert phase_status(run.doc, "tls") in ("ok", "warn"), run
    assert verdict_code(run.doc) == "HTTP_WRONG_SERVICE" and run.rc == 50, run


def test_expiring_soon_is_a_warning(pki, make_server):
    srv = fapiao_with_cert(make_server, pki["expiring"], pki.root_cert)
    text, js = expect("OK", srv.base_url, "--cacert", pki.root_cert)
    assert "TLS_CERT_EXPIRING_SOON" in text.out, text
    assert "TLS_CERT_EXPIRING_SOON" in warning_codes(js.doc) or \
        "TLS_CERT_EXPIRING_SOON" in js.out, js
    assert phase_status(js.doc, "tls") in ("warn", "ok"), phases(js.doc)


# ---- HTTP -----------------------------------------------------------------
def test_http_to_wrong_service(plain_http):
    expect("HTTP_WRONG_SERVICE", "http://127.0.0.1:%d" % plain_http.port, "--timeout", "5")


def test_http_to_tls_port(server):
    expect("HTTP_TLS_REQUIRED", "http://127.0.0.1:%d" % server.port, "--timeout", "5")


def test_https_to_wrong_service(pki, tls_server):
    s = tls_server(pki["direct"])
    expect("HTTP_WRONG_SERVICE", "https://127.0.0.1:%d" % s.port, "--cacert", pki.root_cert,
           "--timeout", "5")


def test_not_ready_when_ranges_exhausted(make_server):
    srv = make_server(init_args=["--demo-range-size", "1"])
    r = srv.issue("doctor-exhaust-1")
    assert r.status == 201, r
    ready = srv.request("GET", "/readyz", auth=False)
    assert ready.status == 503, ready
    expect("HTTP_NOT_READY", srv.base_url, "--cacert", srv.ca_cert)


# ---- API ------------------------------------------------------------------
def test_wrong_client_secret(server):
    expect("AUTH_BAD_CREDENTIALS", server.base_url, "--cacert", server.ca_cert,
           "--client-id", server.client_id, "--client-secret", "fps_wrong-secret-000")


def test_unknown_client_id(server):
    expect("AUTH_BAD_CREDENTIALS", server.base_url, "--cacert", server.ca_cert,
           "--client-id", "nobody-00000000", "--client-secret", server.client_secret)


# ---- usage ----------------------------------------------------------------
@pytest.mark.parametrize("args", [
    [],
    ["https://127.0.0.1:1", "--timeout"],
    ["https://127.0.0.1:1", "--timeout", "abc"],
    ["https://127.0.0.1:1", "--no-such-option"],
    ["not a url"],
    ["ftp://127.0.0.1:21/"],
    ["https://127.0.0.1:1", "--dns-server", "not-an-ip"],
    ["https://127.0.0.1:1", "https://127.0.0.1:2"],
])
def test_usage_errors_exit_2(args):
    run = doctor(*args, timeout=30)
    assert run.rc == 2, "expected usage error (2): %r" % run
    assert run.err.strip(), "usage error without a message on stderr: %r" % run
