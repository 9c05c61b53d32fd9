"""The bounded render backlog (docs/outbox.md): past --render-backlog-max
pending renders the outbox renders PDFs on first request, webhook events go
out at once with the PDF's link, the mode returns to background below half
the threshold; done jobs are pruned after --job-retention.  States and
counts only: a backlog is built with the render fault and a one-hour retry
backoff, so nothing renders in the background while a test looks."""
import json
import os
import time

from conftest import SLOW
from test_outbox import ALLOW, issue, jobs, metric, receivers, set_webhook, status_of, wait_for  # noqa: F401

WAIT = 30 * SLOW
# renders that fail wait 30-60 min for their retry: only on-demand renders them
# (and no switch by age: the tests count jobs)
HOLD = ["--fault-injection", "--retry-backoff-ms", "3600000", "--render-age-max", "0"]


def faults(srv, render):
    r = srv.post_json("/v1/_faults", {"render": render})
    assert r.status == 200, r


def failed_once(srv, numbers):
    """Every render of numbers tried and failed once (pending, with an error)."""
    def ok():
        js = [j for j in jobs(srv, limit=200) if j["kind"] == "render"
              and j["invoice_number"] in numbers]
        return len(js) == len(numbers) and all(
            j["state"] == "pending" and j["attempts"] == 1 and j["last_error"] for j in js)
    wait_for(ok, what="every render failed once")


def pdf(srv, number):
    return srv.request("GET", "/v1/invoices/%s/pdf" % number)


def test_on_demand_and_back(make_server):
    srv = make_server(serve_args=HOLD + ["--render-backlog-max", "4"])
    faults(srv, "fail")
    numbers = [issue(srv, "backlog-%d" % i) for i in range(6)]
    failed_once(srv, numbers)
    # the keeper counts 6 pending renders: at the threshold of 4, on demand
    wait_for(lambda: metric(srv, "fapiao_render_on_demand") == 1, what="on-demand mode")
    # (a count taken while the last render was running saw 5: the next one 6)
    wait_for(lambda: metric(srv, "fapiao_render_backlog") == 6, what="a backlog of 6")
    assert metric(srv, "fapiao_render_mode_switches_total") == 1
    ready = srv.request("GET", "/readyz", auth=False).json()
    ob = [c for c in ready["checks"] if c["name"] == "outbox"][0]
    assert ob["render_mode"] == "on_demand" and ob["render_backlog"] == 6, ob

    faults(srv, "ok")
    # each GET renders its PDF now, ahead of the retry an hour away
    for i, n in enumerate(numbers[:3]):
        r = pdf(srv, n)
        assert r.status == 200 and r.body.startswith(b"%PDF-"), r
        assert metric(srv, "fapiao_pdfs_rendered_total", '{how="on_demand"}') == i + 1
    # ... and its render job is done: the background will not render it again
    done = {j["invoice_number"] for j in jobs(srv, state="done") if j["kind"] == "render"}
    assert done == set(numbers[:3])
    assert all(status_of(srv, n) == "rendered" for n in numbers[:3])
    # a second GET serves the stored file, no second render
    assert pdf(srv, numbers[0]).status == 200
    assert metric(srv, "fapiao_pdfs_rendered_total", '{how="on_demand"}') == 3

    # 3 pending is not yet half of 4: still on demand; at 2 it switches back
    wait_for(lambda: metric(srv, "fapiao_render_backlog") == 3, what="a backlog of 3")
    assert metric(srv, "fapiao_render_on_demand") == 1
    assert pdf(srv, numbers[3]).status == 200
    wait_for(lambda: metric(srv, "fapiao_render_on_demand") == 0, what="background mode")
    assert metric(srv, "fapiao_render_backlog") == 2
    assert metric(srv, "fapiao_render_mode_switches_total") == 2
    assert metric(srv, "fapiao_pdfs_rendered_total", '{how="on_demand"}') == 4
    assert metric(srv, "fapiao_pdfs_on_demand_ratio") == 1
    ready = srv.request("GET", "/readyz", auth=False).json()
    ob = [c for c in ready["checks"] if c["name"] == "outbox"][0]
    assert ob["render_mode"] == "background" and ob["pdfs_rendered_on_demand"] == 4, ob

    # background mode: a GET no longer renders (the retry is an hour away)
    r = pdf(srv, numbers[4])
    assert r.status == 503 and r.json()["code"] == "PDF_RETRYING", r
    assert metric(srv, "fapiao_pdfs_rendered_total", '{how="on_demand"}') == 4


def test_on_demand_events_carry_the_pdf_link(make_server, receivers):
    srv = make_server(serve_args=ALLOW + HOLD + ["--render-backlog-max", "2"])
    rec = receivers().start()
    set_webhook(srv, rec.url)
    faults(srv, "fail")
    held = [issue(srv, "early-%d" % i) for i in range(2)]
    failed_once(srv, held)
    wait_for(lambda: metric(srv, "fapiao_render_on_demand") == 1, what="on-demand mode")
    assert rec.calls == []  # their events wait for their renders

    # a new invoice's event goes out at once, its render still failing
    n = issue(srv, "early-new")
    calls = rec.wait_calls(1)
    ev = json.loads(calls[0]["body"])
    assert ev["type"] == "invoice.issued" and ev["id"] == "evt_%s_issued" % n, ev
    assert ev["data"]["links"]["pdf"] == "/v1/invoices/%s/pdf" % n
    assert ev["data"]["status"] == "issued"
    render = [j for j in jobs(srv) if j["kind"] == "render" and j["invoice_number"] == n][0]
    assert render["state"] != "done", render

    # the link works: rendered on first request, then delivered; no second
    # event for it
    faults(srv, "ok")
    wait_for(lambda: [j for j in jobs(srv) if j["kind"] == "notify"
                      and j["invoice_number"] == n and j["state"] == "done"],
             what="the issued event done")
    r = pdf(srv, n)
    assert r.status == 200 and r.body.startswith(b"%PDF-"), r
    assert status_of(srv, n) == "delivered"
    notes = [j for j in jobs(srv) if j["kind"] == "notify" and j["invoice_number"] == n]
    assert [j["event"] for j in notes] == ["invoice.issued"], notes
    assert len(rec.calls) == 1


def test_done_jobs_are_pruned(make_server, receivers):
    srv = make_server(serve_args=ALLOW + ["--job-retention", "1"])
    rec = receivers().start()
    set_webhook(srv, rec.url)
    numbers = [issue(srv, "prune-%d" % i) for i in range(3)]
    for n in numbers:
        wait_for(lambda: status_of(srv, n) == "delivered", what="delivered")
    # a second after they are done, the keeper deletes the 6 rows
    wait_for(lambda: metric(srv, "fapiao_outbox_jobs_pruned_total") == 6, what="6 pruned")
    assert jobs(srv) == []
    assert srv.db_query("SELECT count(*) FROM jobs")[0][0] == 0
    # the invoices keep their state and their PDFs
    for n in numbers:
        assert status_of(srv, n) == "delivered"
        r = pdf(srv, n)
        assert r.status == 200 and r.body.startswith(b"%PDF-"), r
    assert len(rec.calls) == 3


def render_workers(srv):
    """{pid: foreground?} of the server's renderer processes."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == srv.proc.pid and b"render-worker" in argv:
            out[int(d)] = b"--foreground" in argv
    return out


def test_on_demand_renders_in_the_foreground_pool(make_server):
    """An on-demand render runs in the foreground pool (normal scheduling
    policy) while the background job threads claim nothing (held): the
    background's SCHED_IDLE renderers cannot stand between a waiting client
    and its PDF (docs/outbox.md)."""
    srv = make_server(serve_args=HOLD + ["--render-backlog-max", "2"])
    faults(srv, "hold")
    numbers = [issue(srv, "fg-%d" % i) for i in range(3)]
    wait_for(lambda: metric(srv, "fapiao_render_on_demand") == 1, what="on-demand mode")
    assert metric(srv, "fapiao_render_backlog") == 3

    r = pdf(srv, numbers[0])
    assert r.status == 200 and r.body.startswith(b"%PDF-"), r
    assert metric(srv, "fapiao_render_pool_renders_total", '{pool="foreground"}') == 1
    assert metric(srv, "fapiao_render_pool_renders_total", '{pool="background"}') == 0
    assert metric(srv, "fapiao_pdfs_rendered_total", '{how="on_demand"}') == 1
    # the background is still held: the other two wait, untouched
    states = {j["invoice_number"]: (j["state"], j["attempts"])
              for j in jobs(srv) if j["kind"] == "render"}
    assert states == {numbers[0]: ("done", 1), numbers[1]: ("pending", 0),
                      numbers[2]: ("pending", 0)}, states

    # the processes: one foreground renderer at the normal policy, the
    # background's (one per job thread, 2) at SCHED_IDLE
    ws = render_workers(srv)
    fg = [p for p, f in ws.items() if f]
    bg = [p for p, f in ws.items() if not f]
    assert len(fg) == 1 and len(bg) == 2, ws
    assert os.sched_getscheduler(fg[0]) == os.SCHED_OTHER
    assert all(os.sched_getscheduler(p) == os.SCHED_IDLE for p in bg)


def test_no_foreground_pool(make_server):
    """--render-foreground-workers 0: on-demand renders run in the
    background pool, held like the rest."""
    srv = make_server(serve_args=HOLD + ["--render-backlog-max", "2", "--render-on-demand-wait",
                                         "300", "--render-foreground-workers", "0"])
    faults(srv, "hold")
    numbers = [issue(srv, "nofg-%d" % i) for i in range(3)]
    wait_for(lambda: metric(srv, "fapiao_render_on_demand") == 1, what="on-demand mode")
    assert pdf(srv, numbers[0]).status == 202
    assert all(not f for f in render_workers(srv).values())
    faults(srv, "ok")
    wait_for(lambda: metric(srv, "fapiao_render_pool_renders_total", '{pool="background"}') == 3,
             what="3 background renders")
    assert metric(srv, "fapiao_render_pool_renders_total", '{pool="foreground"}') == 0


def test_a_late_render_is_rendered_on_its_get(make_server):
    """Background mode that never switches (no threshold by count or age),
    the background held: a GET of a PDF whose render job was queued at least
    --render-on-demand-after ago renders it now, in the foreground pool, and
    the mode stays background.  (Before: 202 until the mode switched, which
    at 2,000/s took the first 10-14 s of a run: docs/performance.md.)"""
    srv = make_server(serve_args=HOLD + ["--render-backlog-max", "0",
                                         "--render-on-demand-after", "200"])
    faults(srv, "hold")
    numbers = [issue(srv, "late-%d" % i) for i in range(2)]
    wait_for(lambda: pdf(srv, numbers[0]).status == 200, what="the late PDF rendered on its GET")
    assert metric(srv, "fapiao_render_on_demand") == 0
    assert metric(srv, "fapiao_render_mode_switches_total") == 0
    assert metric(srv, "fapiao_pdfs_rendered_total", '{how="on_demand"}') == 1
    assert metric(srv, "fapiao_render_pool_renders_total", '{pool="foreground"}') == 1
    assert metric(srv, "fapiao_render_pool_renders_total", '{pool="background"}') == 0
    states = {j["invoice_number"]: (j["state"], j["attempts"])
              for j in jobs(srv) if j["kind"] == "render"}
    assert states == {numbers[0]: ("done", 1), numbers[1]: ("pending", 0)}, states


def test_a_late_render_waits_with_the_rule_off(make_server):
    """--render-on-demand-after 0: in background mode a GET never renders;
    a late PDF is 202 until the background (held here) gets to it."""
    srv = make_server(serve_args=HOLD + ["--render-backlog-max", "0",
                                         "--render-on-demand-after", "0"])
    faults(srv, "hold")
    number = issue(srv, "late-off")
    time.sleep(0.5)  # older than the default threshold (500 ms)
    r = pdf(srv, number)
    assert r.status == 202 and r.header("Retry-After") == "1", r
    assert metric(srv, "fapiao_pdfs_rendered_total", '{how="on_demand"}') == 0
    faults(srv, "ok")
    wait_for(lambda: pdf(srv, number).status == 200, what="the background render")
    assert metric(srv, "fapiao_render_pool_renders_total", '{pool="background"}') == 1
