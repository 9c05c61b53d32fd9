"""The tax platform connection (src/upstream/, docs/upstream.md) against the
simulator (tests/upstream-sim/sim.py, a real HTTPS server written apart
from the C side):

  - every service round-trips through the whole envelope (SM4, base64, the
    headers, the nested answer, gzip): numbers, credit, upload and its
    result, red forms with the buyer's confirmation, tax codes, rates;
  - each fault the simulator injects surfaces as its kind on the C side
    (`fapiao upstream` prints it), and a timeout after the simulator stored
    an upload leaves it stored once: the resend is logged as a duplicate,
    never dropped silently.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, REPO, SLOW

sys.path.insert(0, str(REPO / "tests" / "upstream-sim"))
from simctl import KEY, TAX_ID, Sim, write_conf  # noqa: E402  (the simulator's test-side handle)

FIXTURES = REPO / "tests" / "data" / "xml"


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path, slow=SLOW)
    yield s
    s.stop()


def up(conf, *args):
    r = subprocess.run([BIN, "upstream", args[0], "--config", str(conf)] + list(args[1:]),
                       capture_output=True, timeout=60 * SLOW)
    out = r.stdout.decode()
    assert r.returncode in (0, 1), r.stderr.decode() + out
    doc = json.loads(out)
    assert (r.returncode == 0) == (doc["kind"] == "OK"), out
    return doc


def doc_file(tmp, name, **changes):
    d = json.loads((FIXTURES / ("%s-doc.json" % name)).read_text())
    d["seller"]["tax_id"] = TAX_ID
    # issued now (China Standard Time): the credit downloaded is this month's
    d["issued_at"] = time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(time.time() + 8 * 3600))
    for k, v in changes.items():
        d[k] = v
    p = tmp / ("%s-%s.json" % (name, d["number"]))
    p.write_text(json.dumps(d, ensure_ascii=False))
    return p


def red_of(tmp, blue_number, number, form_no):
    """The red fixture reversing the whole blue fixture (900.00 + 54.00)."""
    item = {"line": 1, "line_kind": "normal", "name": "*信息技术服务*软件维护服务费",
            "tax_code": "3040201000000000000", "spec": "V2", "unit": "年", "quantity": "-1",
            "unit_price": "900.00", "amount": "-900.00", "tax_rate": "0.06", "tax": "-54.00",
            "amount_with_tax": "-954.00"}
    return doc_file(tmp, "red", number=number, original_number=blue_number,
                    red_form_id=form_no, items=[item], total_amount="-900.00",
                    total_tax="-54.00", total_with_tax="-954.00")


def prepare(tmp, conf, count=10):
    """Numbers and credit for TAX_ID: returns the first number."""
    n = up(conf, "numbers", "--count", str(count), "--serial", "n-%d" % count)
    assert n["kind"] == "OK" and n["count"] == count
    c = up(conf, "credit", "--download", "10000.00", "--serial", "c-%d" % count)
    assert c["kind"] == "OK", c
    return int(n["first"])


def test_every_service_round_trips(sim, tmp_path):
    conf = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW)
    ping = up(conf, "ping")
    assert ping["kind"] == "OK" and ping["data"]["slList"]
    assert up(conf, "taxcodes")["data"]["list"]
    first = prepare(tmp_path, conf)
    credit = up(conf, "credit")
    assert credit["downloaded"] == "10000.00" and credit["downloaded_unused"] == "10000.00"
    assert up(conf, "credit", "--adjust", "2026-11")["kind"] == "OK"
    # the same serial hands out the same numbers (QDFPPLFM is idempotent per ywlsh)
    again = up(conf, "numbers", "--count", "10", "--serial", "n-10")
    assert int(again["first"]) == first

    blue_no = "%020d" % first
    blue = doc_file(tmp_path, "blue", number=blue_no)
    u = up(conf, "upload", "--doc", str(blue))
    assert u["kind"] == "OK" and u["sllsh"]
    res = up(conf, "result", "--sllsh", u["sllsh"])
    assert res["invoices"] == [{"fphm": blue_no, "status": "00", "message": "成功"}]
    assert up(conf, "result", "--sllsh", "SL-UNKNOWN")["kind"] == "NOT_FOUND"

    red_no = "%020d" % (first + 1)
    draft = red_of(tmp_path, blue_no, red_no, "")
    form = up(conf, "red-apply", "--blue", str(blue), "--red", str(draft))
    assert form["kind"] == "OK" and form["state"] == "02", form  # awaiting the buyer
    listed = up(conf, "red-list", "--state", "02")
    assert [f["uuid"] for f in listed["data"]["list"]] == [form["uuid"]]
    # a red invoice before the buyer confirms is refused by the platform
    red = red_of(tmp_path, blue_no, red_no, form["number"])
    early = up(conf, "upload", "--doc", str(red), "--red-uuid", form["uuid"])
    assert up(conf, "result", "--sllsh", early["sllsh"])["invoices"][0]["status"] == "01"
    sim.buyer(form["uuid"], "Y")
    detail = up(conf, "red-detail", "--uuid", form["uuid"])
    assert detail["state"] == "04" and detail["number"] == form["number"]
    red_no2 = "%020d" % (first + 2)
    red = red_of(tmp_path, blue_no, red_no2, form["number"])
    u2 = up(conf, "upload", "--doc", str(red), "--red-uuid", form["uuid"])
    assert up(conf, "result", "--sllsh", u2["sllsh"])["invoices"][0]["status"] == "00"
    # a second form, withdrawn by the seller
    f2 = up(conf, "red-apply", "--blue", str(blue), "--red", str(draft))
    w = up(conf, "red-answer", "--uuid", f2["uuid"], "--number", f2["number"], "--answer", "C")
    assert w["kind"] == "OK"
    assert up(conf, "red-detail", "--uuid", f2["uuid"])["state"] == "08"

    st = sim.state()
    assert st["invoices"][blue_no]["status"] == "00"
    assert st["invoices"][red_no2]["status"] == "00"
    # the envelope's headers as the simulator saw them
    h = [e["headers"] for e in st["log"] if e.get("fwbm") == "QDFPSC"][0]
    assert h["fwbm"] == "QDFPSC" and h["nlbm"] == "202007" and h["jrdwptbh"] == "PT0001"


FAULTS = [
    ("rate_limit", {"rate_limit": {}}, "RATE_LIMITED"),
    ("maintenance", {"maintenance": {}}, "MAINTENANCE"),
    ("5xx", {"http5xx": {"status": 502}}, "SERVER"),
    ("garbled", {"wrong_key": {}}, "KEY_WRONG"),
    ("ip 403", {"ip_unregistered": {"mode": "403"}}, "IP_NOT_REGISTERED"),
    ("ip reset", {"ip_unregistered": {"mode": "reset"}}, "CONNECT"),
    ("reset", {"reset": {}}, "CONNECT"),
    ("filtered", {"filtered": {"seconds": 4}}, "CONNECT"),
    ("slow", {"slow": {"seconds": 4 * SLOW}}, "TIMEOUT_UNKNOWN"),  # past the 1.5 s x SLOW timeout
]


@pytest.mark.parametrize("name,fault,kind", FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_surfaces_as_its_kind(sim, tmp_path, name, fault, kind):
    conf = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW, timeout_ms=1500)
    assert up(conf, "ping")["kind"] == "OK"  # control: the connection works
    sim.faults(fault)
    assert up(conf, "ping")["kind"] == kind
    sim.faults({})
    assert up(conf, "ping")["kind"] == "OK"


def test_configuration_faults(sim, tmp_path):
    wrong = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW, key="00112233445566778899aabbccddeeff")
    assert up(wrong, "ping")["kind"] == "KEY_WRONG"
    unit = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW, unit="PT9999")
    assert up(unit, "ping")["kind"] == "UNIT_WRONG"
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, never listening: refused, and nobody else gets it
    try:
        closed = s.getsockname()[1]
        assert up(write_conf(tmp_path, closed, sim.ca), "ping")["kind"] == "CONNECT"
    finally:
        s.close()


def test_timeout_after_store_is_not_lost_nor_silently_duplicated(sim, tmp_path):
    conf = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW, timeout_ms=1500)
    first = prepare(tmp_path, conf)
    blue_no = "%020d" % first
    blue = doc_file(tmp_path, "blue", number=blue_no)
    sim.faults({"store_then_hang": {"seconds": 4, "fwbm": "QDFPSC", "times": 1}})
    assert up(conf, "upload", "--doc", str(blue))["kind"] == "TIMEOUT_UNKNOWN"
    st = sim.state()
    assert st["invoices"][blue_no]["status"] == "00"  # stored, though we never heard
    again = up(conf, "upload", "--doc", str(blue))
    res = up(conf, "result", "--sllsh", again["sllsh"])["invoices"][0]
    assert res["status"] == "02" and "重复" in res["message"]  # a duplicate, not a rejection
    outcomes = [i["outcome"] for e in sim.state()["log"] if e.get("fwbm") == "QDFPSC"
                for i in e.get("invoices", [])]
    assert outcomes == ["accepted", "duplicate"]


def test_rejection_of_a_named_invoice_and_validation(sim, tmp_path):
    conf = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW)
    first = prepare(tmp_path, conf)
    named = "%020d" % first
    sim.faults({"reject": {"fphm": [named]}})
    u = up(conf, "upload", "--doc", str(doc_file(tmp_path, "blue", number=named)))
    assert up(conf, "result", "--sllsh", u["sllsh"])["invoices"][0]["status"] == "01"
    sim.faults({})
    # a number outside every assigned range
    out = doc_file(tmp_path, "blue", number="%020d" % (first + 1000))
    r = up(conf, "result", "--sllsh", up(conf, "upload", "--doc", str(out))["sllsh"])
    assert r["invoices"][0]["status"] == "01" and "号段" in r["invoices"][0]["message"]
    # totals that do not add up
    bad = doc_file(tmp_path, "blue", number="%020d" % (first + 1), total_amount="901.00")
    r = up(conf, "result", "--sllsh", up(conf, "upload", "--doc", str(bad))["sllsh"])
    assert r["invoices"][0]["status"] == "01" and "合计" in r["invoices"][0]["message"]


def test_key_file_must_be_private(sim, tmp_path):
    conf = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW)
    kf = tmp_path / ("sm4-%s.key" % KEY[:4])
    kf.chmod(0o644)
    r = subprocess.run([BIN, "upstream", "ping", "--config", str(conf)], capture_output=True,
                       timeout=30)
    assert r.returncode == 2 and KEY not in (r.stdout + r.stderr).decode()


def test_config_file_sections(tmp_path):
    """`fapiao serve` passes over [upstream]; `fapiao upstream` checks its keys."""
    conf = tmp_path / "both.conf"
    conf.write_text("[serve]\nthreads = 2\n[upstream]\nurl = https://127.0.0.1:1\n"
                    "jrdwptbh = PT0001\nkey-file = /nonexistent\n")
    r = subprocess.run([BIN, "serve", "--config", str(conf), "--data-dir", str(tmp_path),
                        "--print-config"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"threads = 2" in r.stdout and b"jrdwptbh" not in r.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("[upstream]\nurl = https://127.0.0.1:1\ntimeout-ms = soon\nfrobnicate = 1\n")
    r = subprocess.run([BIN, "upstream", "ping", "--config", str(bad)], capture_output=True,
                       timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 2 and "frobnicate" in err and ":4:" in err, err
    assert "fapiao upstream --help" in err, err
    none = tmp_path / "none.conf"
    none.write_text("[serve]\nthreads = 2\n")
    r = subprocess.run([BIN, "upstream", "ping", "--config", str(none)], capture_output=True,
                       timeout=30)
    assert r.returncode == 2 and b"[upstream]" in r.stderr
