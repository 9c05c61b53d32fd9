"""Done-when 3 of issue 21: when `fapiao issue` cannot get through, its final
error names the cause with the doctor's finding code and knowledge-base
article — each fault built for real, with the fault zoo's pieces
(tests/faults/faultzoo): a real `fapiao serve` whose certificate (from a test
PKI) has expired, a port filtered by nftables in a network namespace the test
makes, a real credential whose allowlist excludes 127.0.0.1.  Also
certificate pinning (--pin): the right pin works, a wrong one fails at once,
never retried, with a finding of its own (docs/client.md).
"""
import base64
import datetime as dt
import hashlib
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, EXAMPLE_BODY, REPO, SLOW, free_port

sys.path.insert(0, str(REPO / "tests" / "faults"))
from faultzoo.certs import Pki  # noqa: E402
from faultzoo.netns import Netns, available as netns_available  # noqa: E402

EXIT_REJECTED, EXIT_UNAVAILABLE = 3, 4


def issue(server_url, cred, invoice, *extra, prefix=(), serial="diag-1", timeout=120):
    r = subprocess.run(list(prefix) + [BIN, "issue", "--server", server_url, "--credential",
                                       cred, "--serial", serial, "--json", *extra, invoice],
                       capture_output=True, timeout=timeout * SLOW,
                       env={"LANG": "en_US.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
    assert lines, "no JSON from fapiao issue (rc %d): %s" % (r.returncode, r.stderr.decode())
    return r.returncode, lines[0]


def assert_finding(e, finding):
    assert e["finding"] == finding, e
    assert e["article"] == "kb/%s.md" % finding and (REPO / e["article"]).exists(), e


@pytest.fixture
def invoice(tmp_path):
    p = tmp_path / "invoice.json"
    p.write_bytes(EXAMPLE_BODY)
    return str(p)


def write_cred(path, client_id, client_secret, ca_cert=None):
    doc = {"client_id": client_id, "client_secret": client_secret}
    if ca_cert:
        doc["ca_cert"] = str(ca_cert)
    path.write_text(json.dumps(doc))
    return str(path)


def test_expired_server_certificate(make_server, tmp_path, invoice):
    """A real fapiao serve with a test-PKI certificate that expires a few
    seconds after the server loaded it (fapiao serve refuses to start with
    one already expired, tls_load.c)."""
    pki = Pki(tmp_path / "pki")
    pki.root = pki._ca("root", "fapiao client test root CA")
    srv = make_server(start=False)
    now = dt.datetime.utcnow()
    life = 6 * SLOW
    leaf = pki._leaf("short", pki.root, now - dt.timedelta(days=1),
                     now + dt.timedelta(seconds=life), ips=("127.0.0.1", "::1"))
    tls = Path(srv.ca_cert).parent
    (tls / "server.crt").write_bytes(Path(leaf.chain).read_bytes())
    (tls / "server.key").write_bytes(Path(leaf.key).read_bytes())
    srv._ctx = ssl._create_unverified_context()  # /healthz whether or not it has expired yet
    srv.start()
    # wait (bounded) until the certificate is past its notAfter
    end = now + dt.timedelta(seconds=life + 1.5)
    for _ in range(100):
        if dt.datetime.utcnow() >= end:
            break
        time.sleep(0.2)
    assert dt.datetime.utcnow() >= end
    cred = write_cred(tmp_path / "cred.json", srv.client_id, srv.client_secret, pki.root[0])
    rc, out = issue(srv.base_url, cred, invoice, "--deadline", "5")
    e = out["error"]
    assert rc == EXIT_UNAVAILABLE and e["code"] == "TLS", e
    assert_finding(e, "TLS_CERT_EXPIRED")
    assert e["attempts"] == 1, e  # a refused certificate is not retried
    assert srv.db_query("SELECT count(*) FROM invoices WHERE serial = 'diag-1'")[0][0] == 0


@pytest.mark.skipif(netns_available() is not None, reason=str(netns_available()))
def test_filtered_port(tmp_path, invoice):
    """SYNs dropped by nftables in a namespace of the test's own: the
    connect times out, the doctor says TCP_TIMEOUT."""
    port = free_port()
    cred = write_cred(tmp_path / "cred.json", "c", "s")
    with Netns() as ns:
        ns.nft("add rule inet zoo input tcp dport %d drop" % port)
        rc, out = issue("https://127.0.0.1:%d" % port, cred, invoice, "--deadline", "3",
                        "--timeouts", "1000,1000,5000,5000", prefix=ns.prefix())
    e = out["error"]
    assert rc == EXIT_UNAVAILABLE and e["code"] == "TIMEOUT" and e["retryable"] is True, e
    assert_finding(e, "TCP_TIMEOUT")


def test_client_ip_not_allowed(make_server, tmp_path, invoice):
    """A real credential allowed only from TEST-NET-1; the client is 127.0.0.1."""
    srv = make_server()
    r = subprocess.run([BIN, "keys", "create", "--data-dir", str(srv.data_dir), "--json",
                        "--roles", "issuer", "--allow-ip", "192.0.2.0/24"],
                       capture_output=True, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr
    key = json.loads(r.stdout)
    cred = write_cred(tmp_path / "cred.json", key["client_id"], key["client_secret"],
                      srv.ca_cert)
    rc, out = issue(srv.base_url, cred, invoice, "--deadline", "10")
    e = out["error"]
    assert rc == EXIT_REJECTED and e["status"] == 403 and e["code"] == "IP_NOT_ALLOWED", e
    assert e["retryable"] is False and e["attempts"] == 1, e
    assert_finding(e, "AUTH_IP_NOT_ALLOWED")


# ---- certificate pinning ----------------------------------------------------

def server_pin(srv):
    """sha256//BASE64 of the server certificate's public key (DER SPKI)."""
    crt = Path(srv.ca_cert).parent / "server.crt"
    pub = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-pubkey"],
                         capture_output=True, check=True, timeout=30).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=30).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def pin_server(tmp_path_factory):
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("fapiao"))
    s.start()
    yield s
    s.close()


def test_the_right_pin_issues(pin_server, tmp_path, invoice):
    cred = write_cred(tmp_path / "cred.json", pin_server.client_id, pin_server.client_secret,
                      pin_server.ca_cert)
    rc, out = issue(pin_server.base_url, cred, invoice, "--pin", server_pin(pin_server))
    assert rc == 0, out
    assert len(out["number"]) == 20


def test_a_wrong_pin_fails_at_once(pin_server, tmp_path, invoice):
    cred = write_cred(tmp_path / "cred.json", pin_server.client_id, pin_server.client_secret,
                      pin_server.ca_cert)
    wrong = "sha256//" + base64.b64encode(hashlib.sha256(b"another key").digest()).decode()
    second = pin_server.base_url  # listed twice: one attempt on each
    rc, out = issue(pin_server.base_url + "," + second, cred, invoice, "--pin", wrong,
                    "--deadline", "30", serial="pin-wrong")
    e = out["error"]
    assert e["code"] == "PIN_MISMATCH", e
    assert e["retryable"] is False and rc == EXIT_REJECTED, e
    assert e["attempts"] == 2, e  # each address once, no backoff, no retry
    assert_finding(e, "TLS_PIN_MISMATCH")
    n = pin_server.db_query("SELECT count(*) FROM invoices WHERE serial = 'pin-wrong'")[0][0]
    assert n == 0


def test_a_wrong_pin_stops_a_spool_drain_and_keeps_the_rows(pin_server, tmp_path, invoice):
    """The pin is the connection's fault, not the row's: the drain stops and
    the rows wait (not "failed"); with the right pin they are issued."""
    cred = write_cred(tmp_path / "cred.json", pin_server.client_id, pin_server.client_secret,
                      pin_server.ca_cert)
    spool = str(tmp_path / "spool")
    for s in ("pin-spool-1", "pin-spool-2"):
        r = subprocess.run([BIN, "issue", "--spool", spool, "--serial", s, invoice],
                           capture_output=True, timeout=60 * SLOW)
        assert r.returncode == 0, r.stderr
    wrong = "sha256//" + base64.b64encode(hashlib.sha256(b"another key").digest()).decode()

    def drain(pin):
        return subprocess.run([BIN, "spool", "drain", "--spool", spool, "--server",
                               pin_server.base_url, "--credential", cred, "--pin", pin,
                               "--deadline", "30", "--json"],
                              capture_output=True, timeout=120 * SLOW)

    r = drain(wrong)
    assert r.returncode != 0 and b"PIN_MISMATCH" in r.stdout + r.stderr, r
    rows = subprocess.run([BIN, "spool", "list", "--spool", spool, "--json"],
                          capture_output=True, timeout=60 * SLOW).stdout.decode()
    states = [json.loads(l)["state"] for l in rows.splitlines()]
    assert "failed" not in states and "issued" not in states, states
    r = drain(server_pin(pin_server))
    assert r.returncode == 0, r
    rows = subprocess.run([BIN, "spool", "list", "--spool", spool, "--json"],
                          capture_output=True, timeout=60 * SLOW).stdout.decode()
    assert [json.loads(l)["state"] for l in rows.splitlines()] == ["issued", "issued"]
