"""Uploads to the tax platform (issue 20; include/fapiao/upload.h,
docs/upstream.md "Upload pipeline").

With `[upstream]` in the config file, the issuing transaction writes an
upload row (pending) beside the render job, for every invoice; the
invoice's JSON carries it as "upload".  Without `[upstream]` nothing
changes: no upload row, no "upload" member.

The upload worker (src/outbox/upload.c) against the simulator
(tests/upstream-sim/sim.py): invoices issued under injected faults
(timeouts after the simulator stored the batch, 5xx, resets, a 5 s outage
the simulator ends by itself)
all end accepted, each stored exactly once upstream; a batch that had an
sllsh is never sent again before that sllsh was queried; issuing to our own
clients goes on during the outage.  200 invoices here;
FAPIAO_UPLOAD_INVOICES=1000 for the issue's count; bench/upload_outage.sh
is the full-scale run (1,000 invoices, a 60 s outage, figures).
"""
import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest

from conftest import BIN, REPO, SLOW, assert_problem

sys.path.insert(0, str(REPO / "tests" / "upstream-sim"))
from simctl import TAX_ID, Sim, write_conf  # noqa: E402
from simlog import check_log  # noqa: E402

COUNT = int(os.environ.get("FAPIAO_UPLOAD_INVOICES", "200"))
OUTAGE_S = 5  # x SLOW; bench/upload_outage.sh holds it for 60 s at 1,000 invoices


def issue(server):
    r = server.issue(str(uuid.uuid4()))
    assert r.status == 201, r
    return r.json()["number"]


def test_no_upstream_no_upload(make_server):
    s = make_server()
    number = issue(s)
    doc = s.request("GET", "/v1/invoices/" + number).json()
    assert "upload" not in doc
    assert s.db_query("SELECT count(*) FROM uploads") == [(0,)]
    assert s.request("GET", "/v1/invoices?upload=pending").json()["invoices"] == []
    assert [d["number"] for d in s.request("GET", "/v1/invoices").json()["invoices"]] == [number]


def test_every_invoice_gets_a_pending_upload(make_server, tmp_path):
    # the platform is not reached in this step: any address will do
    conf = write_conf(tmp_path, 9, tmp_path / "none.pem")
    s = make_server(["--config", str(conf)])
    numbers = [issue(s) for _ in range(3)]
    for n in numbers:
        doc = s.request("GET", "/v1/invoices/" + n).json()
        assert doc["upload"] == {"state": "pending"}
    rows = s.db_query("SELECT invoice_number, state, sllsh FROM uploads ORDER BY invoice_number")
    assert rows == [(n, "pending", None) for n in sorted(numbers)]


@pytest.fixture
def sim(tmp_path):
    s = Sim(tmp_path, slow=SLOW)
    yield s
    s.stop()


def upload_conf(tmp_path, sim):
    """The simulator's [upstream] with a quick worker and credit ready for
    the demo seller (its numbers: known_range, once the server exists)."""
    conf = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW, timeout_ms=1500)
    with open(conf, "a") as f:
        f.write("upload-batch = 25\nupload-poll-ms = 50\nupload-backoff-ms = 100\n"
                "upload-backoff-max-ms = 800\n")
    for args in (["credit", "--download", "900000.00", "--serial", "c-1"],):
        r = subprocess.run([BIN, "upstream", args[0], "--config", str(conf)] + args[1:],
                           capture_output=True, timeout=60 * SLOW)
        assert r.returncode == 0, r.stdout + r.stderr
    return conf


def known_range(s, sim):
    """The demo seller's range (made by `fapiao init --demo`) told to the
    simulator as numbers the taxpayer already holds: the platform accepts
    only numbers it handed out."""
    (prefix, first, last), = s.db_query("SELECT prefix, first, last FROM number_ranges")
    sim._ctl("/ranges", {"nsrsbh": TAX_ID, "first": "%s%015d" % (prefix, first),
                         "last": "%s%015d" % (prefix, last)})
    return prefix


def wait_settled(s, numbers, seconds):
    """Until no upload row of numbers is pending or submitted (bounded)."""
    deadline = time.monotonic() + seconds * SLOW
    while True:
        rows = dict(s.db_query("SELECT invoice_number, state FROM uploads"))
        left = [n for n in numbers if rows.get(n) in ("pending", "submitted", None)]
        if not left:
            return rows
        assert time.monotonic() < deadline, "%d uploads unsettled: %s" % (len(left), left[:5])
        time.sleep(0.2)


def outage(s, sim, seconds, count):
    """A time-boxed outage (every connection to the platform reset for
    seconds): count invoices issued at a steady pace across it, each
    answered 201 (issuing never stops); returns their numbers once the
    simulator has ended the outage itself."""
    sim.faults({"reset": {"for_s": seconds}})
    t0 = time.monotonic()
    numbers = []
    for i in range(count):
        r = s.issue(str(uuid.uuid4()))
        assert r.status == 201, r  # issuing never stopped
        numbers.append(r.json()["number"])
        time.sleep(max(0.0, t0 + (i + 1) * seconds / count - time.monotonic()))
    deadline = time.monotonic() + seconds + 10 * SLOW
    while "reset" in sim.state()["faults"]:
        assert time.monotonic() < deadline, "the outage did not end"
        time.sleep(0.2)
    resets = [e for e in sim.state()["log"] if e.get("outcome") == "reset"]
    assert resets, "the worker never met the outage"
    return numbers


def test_every_invoice_accepted_once_under_faults(sim, make_server, tmp_path):
    conf = upload_conf(tmp_path, sim)
    s = make_server(["--config", str(conf)])
    known_range(s, sim)
    numbers = []
    faults = [{"store_then_hang": {"seconds": 3 * SLOW, "fwbm": "QDFPSC", "times": 2}},
              {"http5xx": {"status": 502, "times": 3}},
              {"reset": {"times": 3}},
              {"store_then_hang": {"seconds": 3 * SLOW, "fwbm": "CXQDFPSCJG", "times": 1}},
              # the platform does not know an sllsh it gave: queried, then sent again
              {"result_not_found": {}}]
    quarter = COUNT // 5
    for k, f in enumerate(faults):
        sim.faults(f)
        numbers += [issue(s) for _ in range(quarter // 2)]
        if k == 1:  # an outage: every connection reset for OUTAGE_S, then over by itself
            numbers += outage(s, sim, OUTAGE_S * SLOW, quarter)
        if "result_not_found" in f:  # until a batch was queried in vain and sent again
            deadline = time.monotonic() + 60 * SLOW
            while not re.search(r'^fapiao_upload_total\{outcome="resent"\} [1-9]',
                                s.request("GET", "/metrics").body.decode(), re.M):
                assert time.monotonic() < deadline, "no batch was sent again"
                time.sleep(0.2)
            sim.faults({})
    numbers += [issue(s) for _ in range(COUNT - len(numbers))]
    rows = wait_settled(s, numbers, 120 + COUNT // 10)
    assert all(rows[n] == "accepted" for n in numbers), \
        [(n, rows[n]) for n in numbers if rows[n] != "accepted"][:5]
    st = sim.state()
    assert set(numbers) <= set(st["invoices"])
    assert all(st["invoices"][n]["status"] == "00" for n in numbers)
    stored = check_log(st["log"])
    assert all(stored.get(n) == 1 for n in numbers)  # each stored exactly once
    # the lost replies were answered as duplicates, never as rejections
    outcomes = [i["outcome"] for e in st["log"] if e.get("fwbm") == "QDFPSC"
                for i in e.get("invoices", [])]
    assert "rejected" not in outcomes and "duplicate" in outcomes
    metrics = s.request("GET", "/metrics").body.decode()
    assert "fapiao_upload_backlog 0" in metrics
    assert "fapiao_upload_oldest_age_seconds 0" in metrics
    assert re.search(r'^fapiao_upload_total\{outcome="duplicate"\} [1-9]', metrics, re.M)
    assert re.search(r'^fapiao_upload_total\{outcome="accepted"\} [1-9]', metrics, re.M)
    assert re.search(r'^fapiao_upload_total\{outcome="resent"\} [1-9]', metrics, re.M)
    lint = subprocess.run(["promtool", "check", "metrics"], input=metrics.encode(),
                          capture_output=True, timeout=60 * SLOW)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint
    doc = s.request("GET", "/v1/invoices/" + numbers[0]).json()
    assert doc["upload"] == {"state": "accepted"}


def test_rejection_is_a_dead_letter_with_the_platforms_message(sim, make_server, tmp_path):
    conf = upload_conf(tmp_path, sim)
    s = make_server(["--config", str(conf)])
    second = known_range(s, sim) + "%015d" % 2
    sim.faults({"reject": {"fphm": [second]}})
    numbers = [issue(s) for _ in range(3)]
    assert numbers[1] == second
    rows = wait_settled(s, numbers, 60)
    assert [rows[n] for n in numbers] == ["accepted", "rejected", "accepted"]
    up = s.request("GET", "/v1/invoices/" + numbers[1]).json()["upload"]
    assert up["state"] == "rejected" and "校验不通过" in up["reason"]
    metrics = s.request("GET", "/metrics").body.decode()
    assert "fapiao_upload_rejected 1" in metrics
    # the listing filter by upload state
    listed = {}
    for state in ("pending", "submitted", "accepted", "rejected"):
        r = s.request("GET", "/v1/invoices?upload=" + state)
        assert r.status == 200, r
        listed[state] = [d["number"] for d in r.json()["invoices"]]
    assert listed == {"pending": [], "submitted": [], "accepted": [numbers[0], numbers[2]],
                      "rejected": [numbers[1]]}
    assert_problem(s.request("GET", "/v1/invoices?upload=lost"), 400, "INVALID_FIELD",
                   field="upload")
    # fixed upstream, re-driven by the operator: sent again and accepted
    sim.faults({})
    r = subprocess.run([BIN, "upstream", "redrive", "--data-dir", str(s.data_dir), "--number",
                        numbers[1]], capture_output=True, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr
    again = subprocess.run([BIN, "upstream", "redrive", "--data-dir", str(s.data_dir),
                            "--number", numbers[1]], capture_output=True, timeout=60 * SLOW)
    assert again.returncode == 1  # no rejected upload left to re-drive
    # who re-drove which upload from which state: one audit record, written
    # with the state change (the refused second re-drive wrote none)
    audit = s.db_query("SELECT actor, target, outcome, seller_id FROM audit "
                       "WHERE action = 'upload.redrive'")
    assert [a[1:] for a in audit] == [("upload:%s from rejected" % numbers[1], "ok", 1)], audit
    assert audit[0][0].startswith("cli:"), audit
    rows = wait_settled(s, numbers, 60)
    assert [rows[n] for n in numbers] == ["accepted"] * 3
    assert s.request("GET", "/v1/invoices/" + numbers[1]).json()["upload"] == {"state": "accepted"}
