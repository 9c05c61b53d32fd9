"""Render fairness across sellers (issue 13, item 12; docs/webhooks.md,
"Order of service").

Seller A queues many large invoices, then seller B one 1-line invoice, while
the outbox is held (the test-only "render": "hold" fault), so all of them wait
whatever the renderer's speed; then the hold is lifted.  With
one job thread (and so one renderer process) the renders run one after the
other, so the order in which they completed is the order in which the outbox
served them.  That order is read from the store (the render jobs' completion
stamps, written one by one by the single job thread): B's PDF must come
before all but the first of A's invoices that were still waiting when B's
was queued.  A first-in-first-out outbox serves B last.

No timing is asserted: only the order of completions and counts."""
import json
import sqlite3
import subprocess
import time

from conftest import BIN, SLOW, dumps, example_doc

A_INVOICES = 10
A_LINES = 2000


def cli(srv, *args):
    r = subprocess.run([BIN] + list(args) + ["--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=60 * SLOW, env={"LANG": "C"})
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def add_seller(srv):
    """Seller B with its own number range and issuing credential (there is no
    command that adds a seller: the row is written as `fapiao init` writes
    its own, before the server starts)."""
    prefix, first = srv.db_query("SELECT prefix, max(last) + 1 FROM number_ranges")[0]
    con = sqlite3.connect(str(srv.db_path), timeout=30)
    try:
        with con:
            sid = con.execute("INSERT INTO sellers(name, tax_id) VALUES(?, ?)",
                              ("公平调度测试乙有限公司", "91310000MA1GFAIR01")).lastrowid
    finally:
        con.close()
    cli(srv, "ranges", "import", "--seller-id", str(sid), "--prefix", prefix,
        "--first", str(first), "--last", str(first + 99))
    doc = json.loads(cli(srv, "keys", "create", "--roles", "issuer", "--seller-id", str(sid),
                         "--client-id", "fair-seller-b", "--json"))
    return sid, doc["client_id"], doc["client_secret"]


def issued(r):
    assert r.status == 201, r
    return r.json()["number"]


def render_jobs(srv, numbers):
    """{invoice number: (state, updated_at)} of their render jobs."""
    marks = ",".join("?" * len(numbers))
    rows = srv.db_query("SELECT invoice_number, state, updated_at FROM jobs "
                        "WHERE kind='render' AND invoice_number IN (%s)" % marks, numbers)
    return {n: (st, at) for n, st, at in rows}


def test_small_seller_is_not_queued_behind_a_large_backlog(make_server):
    srv = make_server(serve_args=["--outbox-workers", "1", "--max-body", str(4 << 20),
                                  "--fault-injection"],
                      start=False)
    _, cid_b, secret_b = add_seller(srv)
    srv.start()
    r = srv.get_token_response(cid_b, secret_b)
    assert r.status == 200, r
    token_b = r.json()["access_token"]

    big = example_doc()
    big["items"] = [dict(big["items"][0]) for _ in range(A_LINES)]
    big_body = dumps(big)
    small = example_doc()
    small["items"] = small["items"][:1]

    # hold the outbox: the backlog's shape is then the test's, not the
    # renderer's speed against the issuing's
    r = srv.post_json("/v1/_faults", {"render": "hold"})
    assert r.status == 200 and r.json()["render"] == "hold", r
    a_numbers = [issued(srv.issue("fair-a-%d" % i, body=big_body)) for i in range(A_INVOICES)]
    b_number = issued(srv.issue("fair-b-1", body=dumps(small), auth=token_b))
    jobs = render_jobs(srv, a_numbers + [b_number])
    assert [st for st, _ in jobs.values()] == ["pending"] * (A_INVOICES + 1), jobs
    waiting = a_numbers
    r = srv.post_json("/v1/_faults", {"render": "ok"})
    assert r.status == 200 and r.json()["render"] == "ok", r

    deadline = time.monotonic() + 300 * SLOW
    while True:
        jobs = render_jobs(srv, a_numbers + [b_number])
        if all(st in ("done", "dead") for st, _ in jobs.values()):
            break
        assert time.monotonic() < deadline, "renders not finished: %r" % jobs
        time.sleep(0.2)
    assert all(st == "done" for st, _ in jobs.values()), jobs

    # one job thread: completions are one after the other, so their stamps
    # order them
    b_done = jobs[b_number][1]
    before_b = [n for n in waiting if jobs[n][1] <= b_done]
    assert len(before_b) <= 1, (
        "B's 1-line PDF was served after %d of the %d large invoices of A that were waiting "
        "when it was queued (fair: at most 1)" % (len(before_b), len(waiting)))
    r = srv.request("GET", "/v1/invoices/%s/pdf" % b_number, auth=token_b)
    assert r.status == 200 and r.body.startswith(b"%PDF-"), r
