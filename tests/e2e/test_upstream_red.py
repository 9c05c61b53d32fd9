"""Red forms filed upstream while serving (docs/upstream.md, "Red forms"),
against the simulator (tests/upstream-sim/sim.py):

  - with [upstream] configured, a red form made through the API is filed
    with the platform (QDHZQRDSQ) by `fapiao serve`; the platform's uuid,
    form number and state are stored on the form, and our state follows
    the platform's while the buyer decides (CXQDHZQRDMX);
  - the buyer confirms: the red invoice issues (201); before that it is
    refused (409 RED_FORM_STATE);
  - the buyer rejects, or the form lapses (07, not confirmed within 72 h):
    the red invoice is refused with RED_FORM_STATE and nothing is stored;
  - a filing whose answer is lost (the platform stored the form and never
    answered) is asked again with the same business serial (ywlsh), and the
    platform answers with the form it made: one form, filed once.
"""
import itertools
import json
import subprocess
import sys
import time

from conftest import REPO, SLOW, assert_problem

sys.path.insert(0, str(REPO / "tests" / "upstream-sim"))
from simctl import TAX_ID, write_conf  # noqa: E402
from test_upstream import sim, up  # noqa: E402,F401  (the simulator fixture, the CLI)

SIMCTL = REPO / "tests" / "upstream-sim" / "simctl.py"
_keys = itertools.count(1)


def wait_for(what, cond, seconds=30):
    deadline = time.monotonic() + seconds * SLOW
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def start(make_server, tmp_path, sim, timeout_ms=4000):
    """A server filing red forms every 50 ms, with numbers from the
    platform (so an uploaded blue's number is one the platform assigned)
    and credit downloaded there: returns (server, config)."""
    conf = write_conf(tmp_path, sim.port, sim.ca, timeout_ms=timeout_ms, slow=SLOW)
    with open(conf, "a") as f:
        f.write("numbers-low = 5\nnumbers-batch = 20\nnumbers-check-ms = 50\n"
                "red-forms-check-ms = 50\n")
    srv = make_server(serve_args=["--config", str(conf)], init_args=["--demo-range-size", "1"])
    wait_for("numbers downloaded",
             lambda: len(srv.db_query("SELECT id FROM number_ranges")) >= 2)
    assert up(conf, "credit", "--download", "10000.00", "--serial", "c-red")["kind"] == "OK"
    return srv, conf


def uploaded_blue(srv, conf, sim, tmp_path):
    """A blue invoice the platform has accepted (the platform files a red
    form only against one it has)."""
    assert srv.issue("demo-%d" % next(_keys)).status == 201  # the demo range's one number
    r = srv.issue("blue-%d" % next(_keys))
    assert r.status == 201, r
    doc = r.json()
    p = tmp_path / ("blue-%s.json" % doc["number"])
    p.write_text(json.dumps(doc, ensure_ascii=False))
    u = up(conf, "upload", "--doc", str(p))
    assert u["kind"] == "OK", u
    assert sim.state()["invoices"][doc["number"]]["status"] == "00"
    return doc


def new_form(srv, blue):
    r = srv.post_json("/v1/invoices/%s/red-forms" % blue["number"], {"reason": "issue_error"})
    assert r.status == 201, r
    return r.json()["form_id"]


def form_in(srv, form_id, state):
    r = srv.request("GET", "/v1/red-forms/%s" % form_id)
    assert r.status == 200, r
    f = r.json()
    return f if f["state"] == state and "upstream" in f else None


def red_invoice(srv, form_id):
    return srv.request("POST", "/v1/red-forms/%s/invoice" % form_id,
                       headers={"Idempotency-Key": "red-%s-%d" % (form_id, next(_keys))})


def count_invoices(srv):
    return srv.db_query("SELECT count(*) FROM invoices")[0][0]


def test_filed_confirmed_by_the_buyer_then_issued(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    form_id = new_form(srv, blue)
    f = wait_for("the form filed", lambda: form_in(srv, form_id, "awaiting_buyer"))
    platform = sim.state()["forms"]
    assert list(platform) == [f["upstream"]["uuid"]]
    p = platform[f["upstream"]["uuid"]]
    assert f["upstream"] == {"uuid": p["uuid"], "number": p["hzfpxxqrdbh"], "state": "02"}
    assert p["lzfphm"] == blue["number"]
    # stored on the form, audited as the platform's doing
    assert srv.db_query("SELECT up_uuid, up_number, up_state FROM red_forms WHERE form_no=?",
                        (form_id,)) == [(p["uuid"], p["hzfpxxqrdbh"], "02")]
    assert srv.db_query("SELECT count(*) FROM audit WHERE action='red_form.file' AND "
                        "actor='upstream' AND target=?", (form_id,))[0][0] == 1
    # awaiting the buyer: no red invoice yet
    assert_problem(red_invoice(srv, form_id), 409, "RED_FORM_STATE")
    sim.buyer(p["uuid"], "Y")
    f = wait_for("the buyer's confirmation", lambda: form_in(srv, form_id, "confirmed"))
    assert f["upstream"]["state"] == "04"
    r = red_invoice(srv, form_id)
    assert r.status == 201, r
    assert r.json()["color"] == "red" and r.json()["original_number"] == blue["number"]
    assert form_in(srv, form_id, "issued")
    # filed once
    filings = [e for e in sim.state()["log"] if e["fwbm"] == "QDHZQRDSQ"]
    assert len(filings) == 1 and filings[0]["request"]["ywlsh"].endswith(form_id)


def test_rejected_or_lapsed_form_refuses_the_red_invoice(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    for answer, state, code in (("reject", "rejected", "05"), ("lapse", "lapsed", "07")):
        form_id = new_form(srv, blue)  # the rejected one no longer holds the blue
        f = wait_for("the form filed", lambda: form_in(srv, form_id, "awaiting_buyer"))
        # the buyer answers through simctl's command line, as by hand
        r = subprocess.run(["/usr/bin/python3", str(SIMCTL), "--control", str(sim.control),
                            "redform", answer, f["upstream"]["uuid"]],
                           capture_output=True, timeout=30 * SLOW)
        assert r.returncode == 0, r.stdout + r.stderr
        f = wait_for("the buyer's answer", lambda: form_in(srv, form_id, state))
        assert f["upstream"]["state"] == code
        before = count_invoices(srv)
        assert_problem(red_invoice(srv, form_id), 409, "RED_FORM_STATE")
        assert count_invoices(srv) == before  # nothing stored
        assert form_in(srv, form_id, state)


def test_lost_answer_files_the_form_once(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim, timeout_ms=1000)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    # the platform stores the first filing and never answers it: the
    # keeper's 1 s timeout ends it (TIMEOUT_UNKNOWN) while the form exists
    sim.faults({"store_then_hang": {"fwbm": "QDHZQRDSQ", "seconds": 3, "times": 1}})
    form_id = new_form(srv, blue)
    f = wait_for("the form filed", lambda: form_in(srv, form_id, "awaiting_buyer"), seconds=60)
    log = [e for e in sim.state()["log"] if e["fwbm"] == "QDHZQRDSQ"]
    assert log[0]["outcome"] == "stored_no_answer" and log[-1]["outcome"] == "answered", log
    assert len({e["request"]["ywlsh"] for e in log}) == 1
    # one form on the platform, and it is the one stored on ours
    assert list(sim.state()["forms"]) == [f["upstream"]["uuid"]]
    assert "red_form_file_failed" in srv.log_text() and "TIMEOUT_UNKNOWN" in srv.log_text()


def upload_of(srv, number):
    rows = srv.db_query("SELECT state, reason FROM uploads WHERE invoice_number=?", (number,))
    return rows[0] if rows and rows[0][0] not in ("pending", "submitted") else None


def confirmed_form(srv, sim, blue):
    """A form of ours filed upstream and confirmed by the buyer there."""
    form_id = new_form(srv, blue)
    f = wait_for("the form filed", lambda: form_in(srv, form_id, "awaiting_buyer"))
    sim.buyer(f["upstream"]["uuid"], "Y")
    return form_id, wait_for("the buyer's confirmation", lambda: form_in(srv, form_id, "confirmed"))


def test_red_upload_names_its_form_and_blue(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    form_id, f = confirmed_form(srv, sim, blue)
    r = red_invoice(srv, form_id)
    assert r.status == 201, r
    red = r.json()["number"]
    assert wait_for("the red upload", lambda: upload_of(srv, red), seconds=60) == ("accepted", None)
    # the platform's log: the red invoice went up naming the form and its blue
    sent = [inv for e in sim.state()["log"] if e["fwbm"] == "QDFPSC" and "request" in e
            for inv in e["request"] if inv["fphm"] == red]
    assert sent and all(inv["lzfpbz"] == "1" and inv["hzqrduuid"] == f["upstream"]["uuid"] and
                        inv["hzqrxxdbh"] == f["upstream"]["number"] and
                        inv["dylzfphm"] == blue["number"] for inv in sent), sent
    st = sim.state()
    assert st["invoices"][red]["status"] == "00"
    assert st["forms"][f["upstream"]["uuid"]]["hzqrxxztDm"] == "11"  # used by the red invoice


def test_red_upload_of_a_form_the_platform_lost_is_a_dead_letter(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    form_id, f = confirmed_form(srv, sim, blue)
    assert sim.forget(f["upstream"]["uuid"])["forgotten"]
    r = red_invoice(srv, form_id)
    assert r.status == 201, r  # ours is confirmed: the red invoice issues here
    red = r.json()["number"]
    state, reason = wait_for("the red upload", lambda: upload_of(srv, red), seconds=60)
    assert state == "rejected" and "红字确认单不存在" in reason, reason
    up = srv.request("GET", "/v1/invoices/" + red).json()["upload"]
    assert up["state"] == "rejected" and "红字确认单不存在" in up["reason"]
    rejected = [e for e in sim.state()["log"] if e["fwbm"] == "QDFPSC" and
                any(i["fphm"] == red and i["outcome"] == "rejected" for i in e.get("invoices", []))]
    assert len(rejected) == 1


def test_red_upload_naming_another_blues_form_is_rejected(sim, tmp_path, make_server):
    """The simulator's check, driven by hand (`fapiao upstream upload` sends
    a document as given): a confirmed form of blue A named by a red invoice
    of blue B is rejected with the platform's message."""
    from test_upstream import red_of  # noqa: E402  (the red fixture against a blue)
    srv, conf = start(make_server, tmp_path, sim)
    blue_a = uploaded_blue(srv, conf, sim, tmp_path)
    blue_b = uploaded_blue(srv, conf, sim, tmp_path)
    form_id, f = confirmed_form(srv, sim, blue_a)
    first = 26449999990000000001  # numbers the platform knows, apart from the server's
    sim._ctl("/ranges", {"nsrsbh": TAX_ID, "first": str(first), "last": str(first + 9)})
    verdicts = []
    for n, blue in enumerate((blue_b, blue_a)):
        red = red_of(tmp_path, blue["number"], "%020d" % (first + n), f["upstream"]["number"])
        u = up(conf, "upload", "--doc", str(red), "--red-uuid", f["upstream"]["uuid"])
        assert u["kind"] == "OK", u
        verdicts.append(up(conf, "result", "--sllsh", u["sllsh"])["invoices"][0])
    assert verdicts[0]["status"] == "01" and "与对应蓝字发票不符" in verdicts[0]["message"]
    assert verdicts[1]["status"] == "00", verdicts  # its own blue's: accepted


# ---- forms the buyer files about our invoices, our answers through QDHZQRDQR ----

def incoming_form(srv, sim, blue, by_hand=False):
    """The buyer files a form about blue on the platform (by_hand: through
    simctl's command line); the red keeper takes it in: (our form, the
    platform's form)."""
    if by_hand:
        r = subprocess.run(["/usr/bin/python3", str(SIMCTL), "--control", str(sim.control),
                            "redform", "file-as-buyer", blue["number"]],
                           capture_output=True, timeout=30 * SLOW)
        assert r.returncode == 0, r.stdout + r.stderr
        p = json.loads(r.stdout)
    else:
        p = sim.file_as_buyer(blue["number"])
    assert p["hzqrxxztDm"] == "03"
    rows = wait_for("the buyer's form taken in", lambda: srv.db_query(
        "SELECT form_no FROM red_forms WHERE up_uuid=?", (p["uuid"],)))
    assert len(rows) == 1
    f = form_in(srv, rows[0][0], "awaiting_seller")
    assert f and f["initiated_by"] == "buyer" and f["blue_number"] == blue["number"], f
    assert f["upstream"] == {"uuid": p["uuid"], "number": p["hzfpxxqrdbh"], "state": "03"}
    return f, p


def answers(sim, uuid):
    return [e for e in sim.state()["log"]
            if e["fwbm"] == "QDHZQRDQR" and e.get("request", {}).get("uuid") == uuid]


def act(srv, form_id, action):
    return srv.request("POST", "/v1/red-forms/%s/%s" % (form_id, action))


def test_buyers_form_confirmed_by_our_reviewer_then_issued(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    f, p = incoming_form(srv, sim, blue)
    assert_problem(red_invoice(srv, f["form_id"]), 409, "RED_FORM_STATE")  # not yet answered
    r = act(srv, f["form_id"], "confirm")
    assert r.status == 202, r  # the platform's to take: our state waits for it
    assert r.json()["state"] == "awaiting_seller" and r.json()["upstream"]["answer"] == "Y"
    assert_problem(act(srv, f["form_id"], "reject"), 409, "RED_FORM_STATE")  # one answer
    g = wait_for("the platform's confirmation", lambda: form_in(srv, f["form_id"], "confirmed"))
    assert g["upstream"]["state"] == "04" and "answer" not in g["upstream"]
    assert sim.state()["forms"][p["uuid"]]["hzqrxxztDm"] == "04"
    sent = answers(sim, p["uuid"])
    assert [(e["request"]["qrlx"], e["request"]["hzqrdbh"], e["outcome"]) for e in sent] == \
        [("Y", p["hzfpxxqrdbh"], "answered")]
    assert srv.db_query("SELECT outcome FROM audit WHERE action='red_form.confirm' AND target=?",
                        (f["form_id"],)) == [("pending_upstream",)]
    r = red_invoice(srv, f["form_id"])
    assert r.status == 201, r
    red = r.json()["number"]
    assert wait_for("the red upload", lambda: upload_of(srv, red), seconds=60) == ("accepted", None)
    up = [i for e in sim.state()["log"] if e["fwbm"] == "QDFPSC" and "request" in e
          for i in e["request"] if i["fphm"] == red]
    assert up and up[0]["hzqrduuid"] == p["uuid"] and up[0]["hzqrxxdbh"] == p["hzfpxxqrdbh"]
    # taken in once, however many passes listed it
    assert srv.db_query("SELECT count(*) FROM red_forms WHERE up_uuid=?", (p["uuid"],)) == [(1,)]


def test_buyers_form_rejected_by_our_reviewer(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    f, p = incoming_form(srv, sim, blue, by_hand=True)
    assert act(srv, f["form_id"], "reject").status == 202
    g = wait_for("the platform's rejection", lambda: form_in(srv, f["form_id"], "rejected"))
    assert g["upstream"]["state"] == "06"
    assert sim.state()["forms"][p["uuid"]]["hzqrxxztDm"] == "06"
    assert [e["request"]["qrlx"] for e in answers(sim, p["uuid"])] == ["N"]
    before = count_invoices(srv)
    assert_problem(red_invoice(srv, f["form_id"]), 409, "RED_FORM_STATE")
    assert count_invoices(srv) == before


def test_lost_answer_confirms_once(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim, timeout_ms=1000)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    f, p = incoming_form(srv, sim, blue)
    # the platform takes the confirmation and never answers it: the keeper's
    # 1 s timeout ends the call, and its next pass looks before sending
    sim.faults({"store_then_hang": {"fwbm": "QDHZQRDQR", "seconds": 3, "times": 1}})
    assert act(srv, f["form_id"], "confirm").status == 202
    wait_for("the platform's confirmation", lambda: form_in(srv, f["form_id"], "confirmed"),
             seconds=60)
    sent = answers(sim, p["uuid"])
    assert [(e["request"]["qrlx"], e["outcome"]) for e in sent] == [("Y", "stored_no_answer")]
    log = sim.state()["log"]
    looked = [e for e in log if e["fwbm"] == "CXQDHZQRDMX" and e["seq"] > sent[0]["seq"] and
              e.get("request", {}).get("uuid") == p["uuid"]]
    assert looked, "no look at the form after the lost answer"
    assert "red_form_answer_failed" in srv.log_text() and "TIMEOUT_UNKNOWN" in srv.log_text()
    assert red_invoice(srv, f["form_id"]).status == 201


def test_our_withdraw_goes_upstream(sim, tmp_path, make_server):
    srv, conf = start(make_server, tmp_path, sim)
    blue = uploaded_blue(srv, conf, sim, tmp_path)
    form_id = new_form(srv, blue)
    f = wait_for("the form filed", lambda: form_in(srv, form_id, "awaiting_buyer"))
    uuid = f["upstream"]["uuid"]
    assert_problem(act(srv, form_id, "confirm"), 409, "RED_FORM_STATE")  # the buyer's to confirm
    assert act(srv, form_id, "withdraw").status == 202
    g = wait_for("the platform's withdrawal", lambda: form_in(srv, form_id, "withdrawn"))
    assert g["upstream"]["state"] == "08"
    assert sim.state()["forms"][uuid]["hzqrxxztDm"] == "08"
    assert [e["request"]["qrlx"] for e in answers(sim, uuid)] == ["C"]
