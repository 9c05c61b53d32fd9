"""Issue 19, the dynamic alert's series (docs/alerting.md "Per seller and per
client"): invoices issued per seller and per client, on the metrics listener
only (--metrics-listen), capped at the top --metrics-top-n by volume plus
"other".  25 sellers, each with its own credential, issue; the scrape shows
exactly N + 1 label values in each family, the busiest keys among them, and
"other" holding the rest.  Counters only grow: a key left in "other" that
issues more later adds to "other", never gets a series of its own that
would make "other" go backwards."""
import json
import re
import sqlite3
import subprocess

from conftest import BIN, SLOW
from test_metrics_access import metrics_port, plain_get

SELLERS = 25
TOP_N = 20
BUSY = 5  # the first BUSY sellers issue twice


def cli(srv, *args):
    r = subprocess.run([BIN] + list(args) + ["--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=60 * SLOW, env={"LANG": "C"})
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def family(text, name, label):
    """{label value: count} of one family."""
    pat = r'^%s\{%s="([^"]*)"\} (\d+)$' % (re.escape(name), label)
    return {k: int(v) for k, v in re.findall(pat, text, re.M)}


def scrape(srv):
    status, body, _ = plain_get(metrics_port(srv), "/metrics")
    assert status == 200, body
    return (family(body, "fapiao_issued_by_seller_total", "seller"),
            family(body, "fapiao_issued_by_client_total", "client"))


def issue(srv, token, key):
    r = srv.issue(key, auth=token)
    assert r.status == 201, r


def test_top_n_plus_other(make_server):
    srv = make_server(serve_args=["--metrics-listen", "127.0.0.1:0"], start=False)
    prefix, base = srv.db_query("SELECT prefix, max(last) + 1 FROM number_ranges")[0]
    con = sqlite3.connect(str(srv.db_path), timeout=30)
    try:
        with con:
            ids = [con.execute("INSERT INTO sellers(name, tax_id) VALUES(?, ?)",
                               ("指标测试%02d有限公司" % i, "91310000MA1T%06d" % i)).lastrowid
                   for i in range(SELLERS)]
    finally:
        con.close()
    creds = []
    for k, sid in enumerate(ids):
        first = base + k * 10
        cli(srv, "ranges", "import", "--seller-id", str(sid), "--prefix", prefix,
            "--first", str(first), "--last", str(first + 9))
        doc = json.loads(cli(srv, "keys", "create", "--roles", "issuer", "--seller-id", str(sid),
                             "--client-id", "topn-%02d" % k, "--json"))
        creds.append((str(sid), doc["client_id"], doc["client_secret"]))
    srv.start()
    tokens = []
    for sid, cid, secret in creds:
        r = srv.get_token_response(cid, secret)
        assert r.status == 200, r
        tokens.append(r.json()["access_token"])
    for k, tok in enumerate(tokens):
        for j in range(2 if k < BUSY else 1):
            issue(srv, tok, "topn-%02d-%d" % (k, j))
    total = SELLERS + BUSY

    by_seller, by_client = scrape(srv)
    for fam, keys in ((by_seller, [c[0] for c in creds]), (by_client, [c[1] for c in creds])):
        assert len(fam) == TOP_N + 1, fam
        assert "other" in fam and set(fam) - {"other"} <= set(keys), fam
        # the busiest keys have their own series
        assert set(keys[:BUSY]) <= set(fam), fam
        assert sum(fam.values()) == total, fam
        assert fam["other"] == SELLERS - TOP_N, fam

    # a key left in "other" issues again: "other" grows, no new series
    left = [k for k, c in enumerate(creds) if c[1] not in by_client]
    assert len(left) == SELLERS - TOP_N
    issue(srv, tokens[left[0]], "topn-again")
    by_seller2, by_client2 = scrape(srv)
    assert set(by_client2) == set(by_client) and set(by_seller2) == set(by_seller)
    assert by_client2["other"] == by_client["other"] + 1
    # its seller (ties of one invoice each may have gone either way)
    sid = creds[left[0]][0]
    grew = sid if sid in by_seller else "other"
    assert by_seller2[grew] == by_seller[grew] + 1
    assert sum(by_seller2.values()) == sum(by_client2.values()) == total + 1
    for k in by_client:
        assert by_client2[k] >= by_client[k]


def test_main_port_metrics_have_no_per_client_series(server):
    """Without --metrics-listen the families are not kept or shown."""
    r = server.issue("topn-main-port")
    assert r.status == 201, r
    text = server.request("GET", "/metrics", auth=False).body.decode()
    assert "fapiao_http_requests_total" in text
    assert "fapiao_issued_by_" not in text


def test_top_n_is_a_serve_option(make_server):
    """--metrics-top-n N caps at N + 1 values (one table row: flag, env,
    config, --print-config)."""
    srv = make_server(serve_args=["--metrics-listen", "127.0.0.1:0", "--metrics-top-n", "1"])
    issue(srv, srv.token(), "topn-one")
    by_seller, by_client = scrape(srv)
    assert set(by_client) == {srv.client_id, "other"} and by_client["other"] == 0, by_client
    assert len(by_seller) == 2 and by_seller["other"] == 0, by_seller
