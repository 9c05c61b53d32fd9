"""Checks on the simulator's request log (sim.py GET /state "log"), shared
by tests/e2e/test_upload.py and bench/upload_outage.py so the test and the
full-scale outage run judge the same way.  Shares nothing with the C side."""


def check_log(log):
    """No QDFPSC resent an invoice of a batch that had an sllsh before a
    CXQDFPSCJG query for that sllsh; no invoice sent again after a query
    told us it was accepted.  Returns the accepted-once count per fphm."""
    sllsh_of, queried, known_ok, stored = {}, set(), set(), {}
    for e in log:
        if e.get("fwbm") == "QDFPSC" and "invoices" in e:
            for i in e["invoices"]:
                n = i["fphm"]
                assert n not in known_ok, "%s sent again after it was accepted" % n
                prior = sllsh_of.get(n)
                assert prior is None or prior in queried, \
                    "%s resent before its sllsh %s was queried" % (n, prior)
                if i["outcome"] == "accepted":
                    stored[n] = stored.get(n, 0) + 1
                if e.get("outcome") == "answered":  # the caller got this sllsh
                    sllsh_of[n] = e["sllsh"]
        if e.get("fwbm") == "CXQDFPSCJG" and e.get("outcome") == "answered":
            sllsh = e["request"]["sllsh"]
            queried.add(sllsh)  # asked, whatever the answer
            for n, sl in sllsh_of.items():
                if sl == sllsh and e.get("returncode") == "00":
                    known_ok.add(n)  # the simulator answers every fphm of its batch
    return stored


def upload_counts(log):
    """Per-invoice outcomes of every QDFPSC the simulator processed
    ({"accepted": n, "duplicate": n, "rejected": n}) and the number of
    invoices sent more than once."""
    outcomes, sent = {}, {}
    for e in log:
        if e.get("fwbm") == "QDFPSC":
            for i in e.get("invoices", []):
                outcomes[i["outcome"]] = outcomes.get(i["outcome"], 0) + 1
                sent[i["fphm"]] = sent.get(i["fphm"], 0) + 1
    return outcomes, sum(1 for v in sent.values() if v > 1)
