"""Many sellers at once against the real binary: 200 sellers, each with its
own number range (`fapiao ranges import --seller-id`) and credential
(`fapiao keys create --seller-id`), issue at the same moment.  The writer
caches the ranges of 64 sellers; a group commit holding more sellers than
that must still succeed for every request (issue 12: it used to fail the
whole batch with 503 and count a failure against the store's breaker).

The 200 seller rows are written into the data directory's database before
the server starts (faster than 200 runs of `fapiao sellers add`, which
tests/e2e/test_production.py covers).  A store write delay (`--fault-injection`, under the 2 s
slow-commit threshold) holds each group commit open long enough for the
requests to pile up, so that one commit carries well over 64 sellers."""
import json
import re
import sqlite3
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

from conftest import BIN, SLOW, example_doc, dumps

SELLERS = 200
PER_SELLER = 10


def cli(srv, *args):
    r = subprocess.run([BIN] + list(args) + ["--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=60 * SLOW, env={"LANG": "C"})
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def metrics(srv):
    text = srv.request("GET", "/metrics", auth=False).body.decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_200_sellers_issue_at_once(make_server):
    # the 200 connections are opened (TLS handshakes) one after the other
    # and then wait for the start line: under load that can take longer
    # than the slow-client deadlines, which are not what is tested here
    srv = make_server(serve_args=["--fault-injection", "--concurrency-max", "off",
                                  "--header-timeout-ms", "600000", "--idle-timeout", "600",
                                  # 200 clients from one address, all connected at once
                                  "--max-connections-per-ip", "512",
                                  "--handshake-timeout-ms", "600000"],
                      start=False)
    prefix, base = srv.db_query("SELECT prefix, max(last) + 1 FROM number_ranges")[0]
    con = sqlite3.connect(str(srv.db_path), timeout=30)
    try:
        with con:
            ids = []
            for i in range(SELLERS):
                cur = con.execute("INSERT INTO sellers(name, tax_id) VALUES(?, ?)",
                                  ("多销售方测试%03d有限公司" % i, "91310000MA1G%06d" % i))
                ids.append(cur.lastrowid)
    finally:
        con.close()

    def provision(k):
        sid = ids[k]
        first = base + k * PER_SELLER
        cli(srv, "ranges", "import", "--seller-id", str(sid), "--prefix", prefix,
            "--first", str(first), "--last", str(first + PER_SELLER - 1))
        doc = json.loads(cli(srv, "keys", "create", "--roles", "issuer", "--seller-id", str(sid),
                             "--client-id", "many-%03d" % k, "--json"))
        return sid, first, doc["client_id"], doc["client_secret"]

    with ThreadPoolExecutor(max_workers=4) as ex:
        sellers = list(ex.map(provision, range(SELLERS)))
    srv.start()
    tokens = []
    for sid, first, cid, secret in sellers:
        r = srv.get_token_response(cid, secret)
        assert r.status == 200, r
        tokens.append(r.json()["access_token"])

    r = srv.post_json("/v1/_faults", {"store_write_delay_ms": 1000})
    assert r.status == 200, r
    body = dumps(example_doc())
    conns = [srv.connection() for _ in range(SELLERS)]
    for c in conns:
        c.connect()  # TLS handshakes before the start line
    start = threading.Barrier(SELLERS)
    results = [None] * SELLERS

    def issue(k):
        start.wait(timeout=60 * SLOW)
        results[k] = srv.issue("many-sellers-%d" % k, body=body, auth=tokens[k], conn=conns[k])

    threads = [threading.Thread(target=issue, args=(k,)) for k in range(SELLERS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120 * SLOW)
    finally:
        for c in conns:
            c.close()
    srv.post_json("/v1/_faults", {"store_write_delay_ms": 0})

    statuses = [r.status if r is not None else None for r in results]
    assert statuses == [201] * SELLERS, \
        "not all 201: %r" % sorted(set((s, (r.body[:200] if r else b"")) for s, r in
                                       zip(statuses, results) if s != 201))
    for k, r in enumerate(results):
        sid, first, cid, _ = sellers[k]
        assert r.json()["number"] == prefix + "%015d" % first, (k, r.json()["number"])

    m = metrics(srv)
    # one group commit really held more sellers than the cache has entries
    over_64 = m["fapiao_store_commit_batch_size_count"] - \
        m['fapiao_store_commit_batch_size_bucket{le="64"}']
    assert over_64 >= 1, "no group commit larger than 64: %r" % {
        k: v for k, v in m.items() if k.startswith("fapiao_store_commit_batch_size")}
    # and nothing counted as a failure: no degradation, breaker closed
    assert m["fapiao_degraded"] == 0 and m["fapiao_store_breaker_state"] == 0, m
    assert m.get("fapiao_degraded_total", 0) == 0
    assert m.get("fapiao_store_breaker_opened_total", 0) == 0
    assert srv.request("GET", "/readyz", auth=False).status == 200
    rows = srv.db_query("SELECT count(*), count(DISTINCT seller_id) FROM invoices "
                        "WHERE serial LIKE 'many-sellers-%'")
    assert rows == [(SELLERS, SELLERS)]
    assert srv.db_query("SELECT count(*) FROM number_ranges WHERE seller_id > 1 "
                        "AND next = first + 1") == [(SELLERS,)]
    assert re.search(r'"to":"open"', srv.log_text()) is None
