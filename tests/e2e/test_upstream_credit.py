"""The credit line (授信额度) at issuing (docs/upstream.md, "Credit"), against
the simulator (tests/upstream-sim/sim.py):

  - `fapiao upstream credit refresh` downloads the month's usable credit
    (CXSXED, XZTHSXED) and stores it per seller; issuing takes each
    invoice's amount excluding VAT from it in the issuing transaction;
  - an invoice over what is left is refused 422 CREDIT_EXCEEDED with the
    remaining amount, before anything is stored (rows counted before and
    after), while a replay of a stored key still replays;
  - a red invoice of the blue's month gives its amount back;
  - the metric fapiao_upstream_credit_remaining_fen{seller} follows;
  - without [upstream] nothing is checked (the same issuing goes on).
"""
import json
import re
import subprocess
import sys
import time

from conftest import BIN, REPO, SLOW, assert_problem

sys.path.insert(0, str(REPO / "tests" / "upstream-sim"))
from simctl import TAX_ID, write_conf  # noqa: E402
from test_upload import known_range  # noqa: E402
from test_upstream import sim  # noqa: E402,F401  (the simulator fixture)


def credit_cmd(srv, conf, sub):
    r = subprocess.run([BIN, "upstream", "credit", sub, "--data-dir", str(srv.data_dir),
                        "--config", str(conf)], capture_output=True, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr.decode() + r.stdout.decode()
    return [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]


def remaining_metric(srv, family="fapiao_upstream_credit_remaining_fen"):
    text = srv.request("GET", "/metrics", auth=False).body.decode()
    m = re.findall(r'^%s\{seller="(\d+)"\} (-?\d+)$' % family, text, re.M)
    return {int(k): int(v) for k, v in m}


def invoices(srv):
    return srv.db_query("SELECT count(*) FROM invoices")[0][0]


def test_credit_exhausted_refuses_before_storing(sim, tmp_path, make_server):
    # 2,000.00 granted: the example invoice takes 900.00 (excluding VAT), so
    # two fit and the third is over by 700.00 (200.00 left)
    sim._ctl("/credit", {"nsrsbh": TAX_ID, "granted": "2000.00"})
    conf = write_conf(tmp_path, sim.port, sim.ca, slow=SLOW)
    srv = make_server(serve_args=["--config", str(conf)])
    known_range(srv, sim)  # the platform accepts the demo range's invoices (uploads)
    rows = credit_cmd(srv, conf, "refresh")
    assert len(rows) == 1 and rows[0]["limit_fen"] == 200000 and rows[0]["used_fen"] == 0, rows
    seller = rows[0]["seller_id"]
    state = sim.state()
    credit_calls = [e["fwbm"] for e in state["log"] if e["fwbm"] in ("CXSXED", "XZTHSXED")]
    assert credit_calls == ["CXSXED", "XZTHSXED", "CXSXED"]  # (the red keeper lists forms too)
    assert remaining_metric(srv) == {seller: 200000}

    blues = []
    for i in range(2):
        r = srv.issue("credit-%d" % i)
        assert r.status == 201, r
        assert r.json()["total_amount"] == "900.00"
        blues.append(r.json()["number"])
    first_blue = blues[0]
    assert remaining_metric(srv) == {seller: 20000}
    # the line itself, which FapiaoUpstreamCreditLow divides by (docs/alerting.md)
    assert remaining_metric(srv, "fapiao_upstream_credit_limit_fen") == {seller: 200000}
    before = invoices(srv)
    r = srv.issue("credit-2")
    p = assert_problem(r, 422, "CREDIT_EXCEEDED")
    assert "200.00" in p["message_zh"] and "200.00" in p["message_en"], p
    assert invoices(srv) == before  # nothing stored
    # a stored key still replays; the refused one is refused again
    again = srv.issue("credit-1")
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true", again
    assert_problem(srv.issue("credit-2"), 422, "CREDIT_EXCEEDED")
    assert invoices(srv) == before
    shown = credit_cmd(srv, conf, "show")
    assert [(x["limit_fen"], x["used_fen"], x["remaining_fen"]) for x in shown] == \
        [(200000, 180000, 20000)]

    # the platform grants more: a refresh downloads it, issuing goes on, and
    # what this store used is kept (not reset by the refresh)
    sim._ctl("/credit", {"nsrsbh": TAX_ID, "granted": "3000.00"})
    rows = credit_cmd(srv, conf, "refresh")
    assert [(x["limit_fen"], x["used_fen"]) for x in rows] == [(300000, 180000)]
    assert srv.issue("credit-2").status == 201
    assert invoices(srv) == before + 1
    assert remaining_metric(srv) == {seller: 30000}

    # a red invoice of the blue's month gives the blue's amount back, so a
    # blue that did not fit fits again
    assert_problem(srv.issue("credit-3"), 422, "CREDIT_EXCEEDED")
    f = srv.post_json("/v1/invoices/%s/red-forms" % first_blue, {"reason": "issue_error"})
    assert f.status == 201 and f.json()["state"] == "no_confirmation_needed", f
    # with [upstream], a red invoice waits for its form to be filed with the
    # platform (the red keeper, once the blue's upload is accepted)
    form_id = f.json()["form_id"]

    def form():
        return srv.request("GET", "/v1/red-forms/%s" % form_id).json()

    deadline = time.monotonic() + 60 * SLOW
    while time.monotonic() < deadline and "upstream" not in form():
        time.sleep(0.1)
    if form()["state"] == "awaiting_buyer":  # the platform wants the buyer's yes
        sim._ctl("/buyer", {"uuid": form()["upstream"]["uuid"], "answer": "Y"})
        while time.monotonic() < deadline and form()["state"] != "confirmed":
            time.sleep(0.1)
    red = srv.request("POST", "/v1/red-forms/%s/invoice" % f.json()["form_id"],
                      headers={"Idempotency-Key": "credit-red"})
    assert red.status == 201 and red.json()["total_amount"] == "-900.00", red
    assert remaining_metric(srv) == {seller: 120000}
    assert srv.issue("credit-3").status == 201
    assert remaining_metric(srv) == {seller: 30000}


def test_no_upstream_no_check(make_server):
    srv = make_server()
    for i in range(3):
        assert srv.issue("plain-%d" % i).status == 201
    assert remaining_metric(srv) == {}
