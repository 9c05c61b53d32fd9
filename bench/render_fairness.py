#!/usr/bin/python3
"""Render fairness (issue 13, item 12; docs/webhooks.md, "Order of service").

Reproduces the audit's measurement: seller A issues twenty 5,000-line
invoices, then seller B one 1-line invoice; the figure is the time from B's
201 until B's PDF is available (GET .../pdf answers 200), beside the time B's
PDF takes when nothing else is queued.  Default serve options (2 job threads,
2 renderer processes).

    FAPIAO_BIN=build/fapiao bench/render_fairness.py [--big N] [--lines N]

Uses the black-box helpers of tests/e2e (a fresh data directory, a free port
on 127.0.0.1).  Prints one Markdown table row per measurement."""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from conftest import Server, dumps, example_doc  # noqa: E402
from test_render_fairness import add_seller, issued  # noqa: E402


def wait_pdf(srv, number, token, limit=600):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        r = srv.request("GET", "/v1/invoices/%s/pdf" % number, auth=token)
        if r.status == 200:
            return time.monotonic() - t0
        assert r.status == 202, r
        time.sleep(0.01)
    raise SystemExit("B's PDF not ready after %d s" % limit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=20)
    ap.add_argument("--lines", type=int, default=5000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(tmp, ["--max-body", str(4 << 20)])
        try:
            _, cid, secret = add_seller(srv)
            srv.start()
            r = srv.get_token_response(cid, secret)
            assert r.status == 200, r
            token_b = r.json()["access_token"]
            small = example_doc()
            small["items"] = small["items"][:1]
            # unloaded: B alone
            n = issued(srv.issue("bench-b-alone", body=dumps(small), auth=token_b))
            alone = wait_pdf(srv, n, token_b)
            big = example_doc()
            big["items"] = [dict(big["items"][0]) for _ in range(a.lines)]
            body = dumps(big)
            for i in range(a.big):
                issued(srv.issue("bench-a-%d" % i, body=body))
            n = issued(srv.issue("bench-b-after", body=dumps(small), auth=token_b))
            behind = wait_pdf(srv, n, token_b)
            waiting = srv.db_query("SELECT count(*) FROM jobs WHERE kind='render' "
                                   "AND state IN ('pending', 'running')")[0][0]
            print("| binary | B alone | B after %d x %d-line invoices of A | "
                  "A's renders not finished when B's PDF was ready |" % (a.big, a.lines))
            print("|---|---|---|---|")
            print("| %s | %.2f s | %.2f s | %d of %d |" % (
                os.environ.get("FAPIAO_BIN", "build/fapiao"), alone, behind, waiting, a.big))
        finally:
            srv.close()


if __name__ == "__main__":
    main()
