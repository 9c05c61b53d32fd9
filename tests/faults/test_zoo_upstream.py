"""Upstream (the tax platform link, docs/upstream.md): `fapiao doctor
--upstream` against the simulator (tests/upstream-sim/sim.py, a real HTTPS
server speaking the platform's envelope), each fault injected through the
simulator's control port or by a wrong setting on our side.  The doctor runs
DNS, TCP, TLS and one harmless query (CXKYSL) through the real envelope and
names the cause with its article."""
import json
import subprocess
import sys

import pytest

from faultzoo import BIN, REPO, SLOW
from faultzoo.doctor import covers

sys.path.insert(0, str(REPO / "tests" / "upstream-sim"))
from simctl import Sim, write_conf  # noqa: E402


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path, slow=SLOW)
    yield s
    s.stop()


def doctor(conf):
    r = subprocess.run([BIN, "doctor", "--upstream", "--config", str(conf), "--json",
                        "--timeout", "2"], capture_output=True, timeout=60 * SLOW)
    doc = json.loads(r.stdout)
    assert r.returncode == doc["exit_code"], r.stderr
    return doc


@covers("UPSTREAM_IP_NOT_REGISTERED", "UPSTREAM_RATE_LIMITED", "UPSTREAM_MAINTENANCE",
        "UPSTREAM_KEY_WRONG", "UPSTREAM_UNIT_WRONG")
@pytest.mark.parametrize("name,fault,conf_change,code", [
    ("healthy", None, None, "OK"),
    ("ip 403", {"ip_unregistered": {"mode": "403"}}, None, "UPSTREAM_IP_NOT_REGISTERED"),
    ("rate limited", {"rate_limit": {}}, None, "UPSTREAM_RATE_LIMITED"),
    ("maintenance", {"maintenance": {}}, None, "UPSTREAM_MAINTENANCE"),
    ("garbled", {"wrong_key": {}}, None, "UPSTREAM_KEY_WRONG"),
    ("our key wrong", None, {"key": "00112233445566778899aabbccddeeff"}, "UPSTREAM_KEY_WRONG"),
    ("unit wrong", None, {"unit": "PT9999"}, "UPSTREAM_UNIT_WRONG"),
    ("5xx", {"http5xx": {"status": 500}}, None, "HTTP_SERVER_ERROR"),
    ("ip reset", {"ip_unregistered": {"mode": "reset"}}, None, "TCP_RESET"),
    # the platform takes the request and never answers within our timeout
    # (4 s): what a timeout after storing looks like from outside
    ("hang", {"slow": {"seconds": 8 * SLOW}}, None, "HTTP_TIMEOUT"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_doctor_upstream_names_the_cause(sim, tmp_path, name, fault, conf_change, code):
    conf = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW, **(conf_change or {}))
    if fault:
        sim.faults(fault)
    doc = doctor(conf)
    got = doc["verdict"]["code"] if doc["verdict"] else "OK"
    assert got == code, json.dumps(doc, ensure_ascii=False)
    if code.startswith("UPSTREAM_"):
        assert doc["verdict"]["article"] == "kb/%s.md" % code
        assert (REPO / "kb" / ("%s.md" % code)).exists()
    phases = {p["name"]: p["status"] for p in doc["phases"]}
    assert phases["dns"] in ("ok", "skipped")
    # a reset after connect() is the tcp phase's finding (doctor.h)
    assert phases["tcp"] == ("fail" if code == "TCP_RESET" else "ok")
