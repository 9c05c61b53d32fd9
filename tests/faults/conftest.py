"""Fixtures of the fault zoo (tests/faults/): every fault `fapiao doctor`
can name, built for real on this machine — closed and firewalled ports in a
network namespace, resetting and silent servers, a test PKI with broken
certificates, a fake DNS server, old TLS versions, a clock moved with
faketime, and real `fapiao serve` instances (tests/e2e/conftest.py's Server)
in the states that make the doctor speak.

Only loopback and namespaces the tests create; every server and namespace is
removed at teardown.  FAPIAO_BIN names the binary; FAPIAO_SANITIZED=1 marks
an ASan build (faketime's LD_PRELOAD does not mix with it: those faults are
skipped).  FAPIAO_WRITE_DOCS=1 rewrites the curl table of docs/doctor.md
(test_zz_curl_table.py)."""
import os
import random
import shutil
import subprocess

import pytest

import faultzoo
from faultzoo import SANITIZED
from faultzoo.certs import Pki
from faultzoo.netns import Netns, available as netns_available
from faultzoo.servers import (ConnectProxy, FakeDns, FakeFapiao, GnutlsServer, PlainHttpServer,
                              RawServer, SilentTlsServer, TlsServer)

# the e2e fixtures (a real `fapiao serve` per module or per test) and the
# hook that attaches server logs to failing tests
server = faultzoo.e2e.server
make_server = faultzoo.e2e.make_server
pytest_runtest_makereport = faultzoo.e2e.pytest_runtest_makereport
pytest_sessionstart = faultzoo.e2e.pytest_sessionstart  # refuses a host with /etc/fapiao


def _doctor_missing():
    try:
        r = subprocess.run([faultzoo.BIN, "doctor", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "cannot run %s doctor --help: %r" % (faultzoo.BIN, e)
    text = (r.stdout + r.stderr).decode(errors="replace")
    if "unknown command" in text or "doctor" not in text:
        return "%s has no `doctor` command (rc %d)" % (faultzoo.BIN, r.returncode)
    return None


_MISSING = _doctor_missing()
if _MISSING:
    pytest.fail("fapiao doctor is not implemented in this binary -- " + _MISSING,
                pytrace=False)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki")).build()


def _factory(tmp_path, make):
    started = []

    def start(*a, **kw):
        s = make(*a, **kw)
        started.append(s)
        return s.start()

    return start, started


@pytest.fixture
def tls_server(tmp_path):
    """tls_server(leaf, extra_chain=None, flags=()) -> openssl s_server."""
    start, started = _factory(tmp_path, lambda leaf, extra=None, flags=(): TlsServer(
        leaf.cert, leaf.key, chain_extra=extra, log_path=tmp_path / "s_server.log", extra=flags))
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def gnutls_server(tmp_path):
    """gnutls_server(leaf, priority) -> gnutls-serv --http."""
    start, started = _factory(tmp_path, lambda leaf, prio: GnutlsServer(
        leaf.cert, leaf.key, prio, log_path=tmp_path / "gnutls-serv.log"))
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def raw_server(tmp_path):
    """raw_server(mode) with mode in RawServer.MODES."""
    start, started = _factory(tmp_path, RawServer)
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def silent_tls(tmp_path, pki):
    start, started = _factory(tmp_path, lambda: SilentTlsServer(pki["direct"].cert,
                                                                pki["direct"].key))
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def fake_fapiao(tmp_path, pki):
    """fake_fapiao(fault) -> FakeFapiao with the root-signed "direct" leaf."""
    start, started = _factory(tmp_path, lambda fault: FakeFapiao(pki["direct"].cert,
                                                                 pki["direct"].key, fault))
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def connect_proxy():
    p = ConnectProxy().start()
    yield p
    p.stop()


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


@pytest.fixture
def curl_dns(tmp_path):
    """The fake DNS for curl, which only reads /etc/resolv.conf: a FakeDns on
    port 53 of a random 127.53.x.y, and a command prefix that runs curl in a
    private mount namespace with a resolv.conf naming it.  None when that is
    not possible here (then the DNS faults have no curl column)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        yield None
        return
    host = "127.53.%d.%d" % (random.randint(0, 255), random.randint(1, 254))
    try:
        d = FakeDns(host, 53).start()
    except OSError:
        yield None
        return
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver %s\noptions timeout:1 attempts:1\n" % host)
    prefix = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"',
              str(resolv)]
    r = subprocess.run(prefix + ["true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    yield prefix if r.returncode == 0 else None
    d.stop()


@pytest.fixture
def netns():
    """A fresh network namespace (lo up, an nft table `inet zoo` with an
    input chain); skipped with the reason when namespaces are not allowed."""
    why = netns_available()
    if why:
        pytest.skip(why)
    ns = Netns().start()
    yield ns
    ns.stop()


FAKETIME = shutil.which("faketime")


@pytest.fixture
def faketime():
    """faketime(offset) -> command prefix running a program with the clock
    moved by offset ("+1h", "-10y", …: libfaketime's -f format)."""
    if SANITIZED:
        pytest.skip("faketime works by LD_PRELOAD, which an ASan build refuses "
                    "(FAPIAO_SANITIZED=1)")
    if not FAKETIME:
        pytest.skip("faketime is not installed (Debian package faketime)")
    return lambda offset: [FAKETIME, "-f", offset]
