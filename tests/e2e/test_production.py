"""A production data directory (issue 16): `fapiao init` without --demo,
then the operator's own seller (`fapiao sellers`), tax code table
(`fapiao taxcodes import`), number range, credential and certificate (made
here by a CA of the test's own with openssl), `fapiao serve`, and an
invoice whose seller fields appear in the JSON, the XML and the PDF text.

The error paths each give a zh + en message and change nothing (the
database's sellers, audit records and the tax code file are compared before
and after): a bad USCC, a duplicate seller, a malformed tax code line, and
issuing for a disabled seller (403 SELLER_DISABLED, nothing stored) while
the server runs — the disable is made by the CLI and holds from the next
request, without a restart (docs/sellers.md)."""
import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET

from conftest import BIN, REPO, SLOW, assert_problem, dumps, example_doc

SAMPLE_CODES = REPO / "data" / "taxcodes-sample.csv"
# a USCC made for these tests (check character computed), not a company's
USCC = "91310000MA1FL0000N"
OTHER_USCC = "91440300MA5FDEMX19"
SELLER = {
    "--name": "沪测试供应链管理有限公司",
    "--address": "上海市浦东新区世纪大道100号50层",
    "--phone": "021-68880000",
    "--bank": "中国工商银行上海市分行营业部",
    "--account": "1001234567890123456",
    "--tax-bureau": "13101150000",
    "--drawer": "李会计",
}


def cli(srv, *args, ok=True, lang="C"):
    """Runs a fapiao subcommand on srv's data directory.  LANG=C: the
    language is unknown, so messages come in both Chinese and English."""
    r = subprocess.run([BIN] + list(args) + ["--data-dir", str(srv.data_dir)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60 * SLOW,
                       env={"LANG": lang, "PATH": "/usr/bin:/bin"})
    out = r.stdout.decode("utf-8", errors="replace")
    err = r.stderr.decode("utf-8", errors="replace")
    if ok:
        assert r.returncode == 0, (args, r.returncode, out, err)
    return r.returncode, out, err


def add_seller(srv, uscc=USCC, **extra):
    args = ["sellers", "add", "--uscc", uscc]
    for k, v in dict(SELLER, **extra).items():
        args += [k, v]
    _, out, _ = cli(srv, *args)
    return int(out.strip())


def state(srv):
    """What the error paths must leave as it was."""
    return {
        "sellers": srv.db_query("SELECT * FROM sellers ORDER BY id"),
        "generation": srv.db_query("SELECT gen FROM seller_generation"),
        # refusals (auth.failure, auth.denied) are audited on purpose, by a
        # queue that writes them a moment later (docs/security.md), so they
        # are not part of what an error path must leave as it was
        "audit": srv.db_query("SELECT count(*) FROM audit WHERE action NOT LIKE 'auth.%'")[0][0],
        "invoices": srv.db_query("SELECT count(*) FROM invoices")[0][0],
        "taxcodes": (srv.data_dir / "taxcodes.csv").read_bytes(),
    }


def make_ca_and_cert(tmp):
    """A CA of the test's own and a server certificate for 127.0.0.1 signed
    by it, as a company's PKI would issue one."""
    tmp.mkdir(parents=True, exist_ok=True)

    def run(*a):
        r = subprocess.run(["openssl"] + list(a), cwd=tmp, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 0, (a, r.stderr)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
        "-subj", "/CN=fapiao test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (tmp / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "basicConstraints=critical,CA:FALSE\n"
                                 "keyUsage=critical,digitalSignature\n"
                                 "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "30", "-extfile", "ext.cnf")
    return tmp / "ca.crt", tmp / "server.crt", tmp / "server.key"


def provision(srv, tmp):
    """Seller, tax codes, range, credential and certificate on a production
    data directory; returns the seller id."""
    sid = add_seller(srv)
    cli(srv, "taxcodes", "import", "--file", str(SAMPLE_CODES))
    year = time.strftime("%y", time.gmtime(time.time() + 8 * 3600))
    cli(srv, "ranges", "import", "--seller-id", str(sid), "--prefix", year + "310",
        "--first", "1", "--last", "1000")
    _, out, _ = cli(srv, "keys", "create", "--roles", "issuer,reviewer", "--seller-id", str(sid),
                    "--json")
    cred = json.loads(out)
    srv.client_id, srv.client_secret = cred["client_id"], cred["client_secret"]
    ca, crt, key = make_ca_and_cert(tmp)
    (srv.data_dir / "tls" / "server.crt").write_bytes(crt.read_bytes())
    (srv.data_dir / "tls" / "server.key").write_bytes(key.read_bytes())
    (srv.data_dir / "tls" / "server.key").chmod(0o600)
    srv.trust(ca)
    return sid


def wait_for(pred, what, timeout=30 * SLOW):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def both_languages(err, zh, en):
    assert zh in err, "no Chinese message %r in %r" % (zh, err)
    assert en in err, "no English message %r in %r" % (en, err)


# ---- production init -----------------------------------------------------------

def test_production_init_has_no_demo_data_and_serve_says_what_is_missing(make_server):
    srv = make_server(start=False, demo=False)
    assert srv.init_out["demo"] is False and srv.init_out["ca_cert"] is None
    assert "client_id" not in srv.init_out
    assert srv.db_query("SELECT count(*) FROM sellers") == [(0,)]
    assert srv.db_query("SELECT count(*) FROM clients") == [(0,)]
    assert srv.db_query("SELECT count(*) FROM number_ranges") == [(0,)]
    assert srv.db_query("SELECT action FROM audit") == [("init",)]
    assert not (srv.data_dir / "tls" / "server.crt").exists()
    assert not (srv.data_dir / "tls" / "server.key").exists()
    _, out, _ = cli(srv, "sellers", "list", "--json")
    assert json.loads(out) == []
    # the empty table: a header, no rows
    rc, _, err = cli(srv, "taxcodes", "show", "3040201000000000000", ok=False)
    assert rc == 1 and "0 rows" in err and "共 0 行" in err, err

    r = subprocess.run([BIN, "serve", "--data-dir", str(srv.data_dir), "--listen",
                        "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60 * SLOW, env={"LANG": "C"})
    err = r.stderr.decode()
    assert r.returncode != 0, err
    both_languages(err, "缺少 TLS 证书或私钥", "the TLS certificate or key is missing")
    assert str(srv.data_dir / "tls" / "server.crt") in err
    assert "fapiao init --data-dir DIR --self-signed" in err

    # --self-signed on the initialised directory adds a certificate, nothing else
    before = state(srv)
    cli(srv, "init", "--self-signed")
    assert (srv.data_dir / "tls" / "server.crt").exists()
    assert state(srv) == before
    # ... once: a second time it is refused like any init of a used directory
    rc, _, err = cli(srv, "init", "--self-signed", ok=False)
    assert rc == 1 and "already initialised" in err


def test_production_happy_path(make_server, tmp_path):
    srv = make_server(start=False, demo=False)
    sid = provision(srv, tmp_path / "pki")
    actions = [a for (a,) in srv.db_query("SELECT action FROM audit ORDER BY id")]
    assert actions[:3] == ["init", "sellers.add", "taxcodes.import"], actions
    srv.start()

    # the seller's default drawer fills a request without one
    doc = example_doc()
    del doc["drawer"]
    r = srv.issue("prod-1", body=dumps(doc))
    assert r.status == 201, r
    inv = r.json()
    seller = inv["seller"]
    assert seller == {"name": SELLER["--name"], "tax_id": USCC, "address": SELLER["--address"],
                      "phone": SELLER["--phone"], "bank": SELLER["--bank"],
                      "account": SELLER["--account"], "tax_bureau_code": SELLER["--tax-bureau"]}
    assert inv["drawer"] == SELLER["--drawer"]
    # the imported table is the one used: the short name comes from it
    assert inv["items"][0]["name"].startswith("*信息技术服务*"), inv["items"][0]
    assert srv.db_query("SELECT seller_id FROM invoices WHERE number=?", (inv["number"],)) == \
        [(sid,)]

    x = srv.request("GET", "/v1/invoices/%s/xml" % inv["number"])
    assert x.status == 200, x
    root = ET.fromstring(x.body)
    si = root.find(".//SellerInformation")
    want = {"SellerIdNum": USCC, "SellerName": SELLER["--name"],
            "SellerAddr": SELLER["--address"], "SellerTelNum": SELLER["--phone"],
            "SellerBankName": SELLER["--bank"], "SellerBankAccNum": SELLER["--account"]}
    assert {k: si.findtext(k) for k in want} == want
    assert root.findtext(".//TaxSupervisionInfo/TaxBureauCode") == SELLER["--tax-bureau"]

    def pdf():
        p = srv.request("GET", "/v1/invoices/%s/pdf" % inv["number"])
        return p if p.status == 200 else None
    p = wait_for(pdf, "the PDF")
    pdf_path = tmp_path / "inv.pdf"
    pdf_path.write_bytes(p.body)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf_path), "-"],
                          stdout=subprocess.PIPE, check=True, timeout=60).stdout.decode()
    flat = re.sub(r"\s+", "", text)
    for v in (SELLER["--name"], USCC, SELLER["--address"], SELLER["--phone"], SELLER["--bank"],
              SELLER["--account"]):
        assert re.sub(r"\s+", "", v) in flat, (v, text)


# ---- the error paths: a zh + en message, nothing changed ---------------------------

def test_bad_uscc_refused(make_server):
    srv = make_server(start=False, demo=False)
    add_seller(srv)
    before = state(srv)
    bad = USCC[:-1] + ("A" if USCC[-1] != "A" else "B")  # wrong check character
    for uscc in (bad, "91310000MA1FL000", "91310000ma1fl0000n", ""):
        rc, out, err = cli(srv, "sellers", "add", "--name", "坏代码公司", "--uscc", uscc, ok=False)
        assert rc == 2 and out == "", (uscc, rc, out, err)
        both_languages(err, "统一社会信用代码", "USCC")
        assert "无效" in err and "is not valid" in err, err
    rc, _, err = cli(srv, "sellers", "set", "--seller-id", "1", "--uscc", bad, ok=False)
    assert rc == 2, err
    both_languages(err, "无效", "is not valid")
    assert state(srv) == before


def test_duplicate_seller_refused(make_server):
    srv = make_server(start=False, demo=False)
    add_seller(srv)
    other = add_seller(srv, uscc=OTHER_USCC, **{"--name": "第二家公司"})
    before = state(srv)
    rc, out, err = cli(srv, "sellers", "add", "--name", "重复公司", "--uscc", USCC, ok=False)
    assert rc == 1 and out == "", (rc, out, err)
    both_languages(err, "已有销售方使用统一社会信用代码 " + USCC,
                   "another seller has the USCC " + USCC)
    # another seller may not take it either
    rc, _, err = cli(srv, "sellers", "set", "--seller-id", str(other), "--uscc", USCC, ok=False)
    assert rc == 1
    both_languages(err, "已有销售方使用", "another seller has the USCC")
    assert state(srv) == before
    _, out, _ = cli(srv, "sellers", "list", "--json")
    assert [s["tax_id"] for s in json.loads(out)] == [USCC, OTHER_USCC]


def test_taxcodes_import_counts_and_malformed_line(make_server, tmp_path):
    srv = make_server(start=False, demo=False)
    _, out, _ = cli(srv, "taxcodes", "import", "--file", str(SAMPLE_CODES), "--json")
    rows = [l for l in SAMPLE_CODES.read_text().splitlines()
            if l and not l.startswith("#") and not l.startswith("code,")]
    assert json.loads(out) == {"rows": len(rows), "added": len(rows), "changed": 0,
                               "removed": 0}
    _, out, _ = cli(srv, "taxcodes", "show", "3040201000000000000", "--json")
    shown = json.loads(out)
    assert shown["code"] == "3040201000000000000" and shown["summary"] is False

    # one row changed (its rates), one removed, one added
    changed = list(rows)
    code0 = changed[0].split(",")[0]
    f = changed[0].split(",")
    assert f[2] != "0.01", f
    f[2] = "0.01"
    changed[0] = ",".join(f)
    removed = changed.pop()
    changed.append("1090512000000000000,新增测试编码,0.13,0")
    new = tmp_path / "next.csv"
    new.write_text("code,short_name,rates,summary\n" + "\n".join(changed) + "\n")
    _, out, _ = cli(srv, "taxcodes", "import", "--file", str(new), "--json")
    assert json.loads(out) == {"rows": len(rows), "added": 1, "changed": 1, "removed": 1}
    rc, _, _ = cli(srv, "taxcodes", "show", removed.split(",")[0], ok=False)
    assert rc == 1
    _, out, _ = cli(srv, "taxcodes", "show", code0, "--json")
    assert json.loads(out)["rates"] == "0.01"

    before = state(srv)
    lines = ["code,short_name,rates,summary"] + changed
    lines.insert(3, "3040201000000000000,坏行,0.06")  # line 4: three fields
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    rc, out, err = cli(srv, "taxcodes", "import", "--file", str(bad), ok=False)
    assert rc == 1 and out == "", (rc, out, err)
    both_languages(err, "第 4 行格式有误，未导入任何内容", "line 4 is malformed; nothing was imported")
    for body, line in (("code,short_name,rates,summary\n12345,短,0.06,0\n", 2),
                       ("3040201000000000000,名,0.06,0\n3040201000000000000,名,abc,0\n", 2)):
        bad.write_text(body)
        rc, _, err = cli(srv, "taxcodes", "import", "--file", str(bad), ok=False)
        assert rc == 1
        both_languages(err, "第 %d 行" % line, "line %d" % line)
    assert state(srv) == before
    assert not list(srv.data_dir.glob("taxcodes.csv.import-*"))


def test_disabled_seller_refused_while_serving(make_server, tmp_path):
    srv = make_server(start=False, demo=False)
    sid = provision(srv, tmp_path / "pki")
    srv.start()
    first = srv.issue("dis-1")
    assert first.status == 201, first

    cli(srv, "sellers", "disable", "--seller-id", str(sid))
    _, out, _ = cli(srv, "sellers", "show", "--seller-id", str(sid), "--json")
    assert json.loads(out)["disabled"] is True
    before = state(srv)
    # the very next request is refused: no restart, no waiting
    r = srv.issue("dis-2")
    p = assert_problem(r, 403, "SELLER_DISABLED")
    assert "停用" in p["message_zh"] and "disabled" in p["message_en"], p
    # a retry of what was issued before the disable still learns its invoice
    again = srv.issue("dis-1")
    assert again.status == 201 and again.header("Idempotent-Replayed") == "true", again
    assert again.body == first.body
    assert state(srv) == before
    assert srv.db_query("SELECT count(*) FROM invoices WHERE serial='dis-2'") == [(0,)]
    # the refusal itself is audited (written by the refusal queue shortly after)
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline and not srv.db_query(
            "SELECT 1 FROM audit WHERE action='auth.denied' AND outcome='SELLER_DISABLED'"):
        time.sleep(0.05)
    assert srv.db_query("SELECT count(*) FROM audit WHERE action='auth.denied'"
                        " AND outcome='SELLER_DISABLED'") == [(1,)]

    cli(srv, "sellers", "enable", "--seller-id", str(sid))
    r = srv.issue("dis-2")
    assert r.status == 201, r
    actions = [a for (a,) in srv.db_query(
        "SELECT action FROM audit WHERE action LIKE 'sellers.%' ORDER BY id")]
    assert actions == ["sellers.add", "sellers.disable", "sellers.enable"], actions


def test_taxcodes_import_reaches_a_running_server_on_sighup(make_server, tmp_path):
    """`fapiao taxcodes import` while serving, then SIGHUP: the next request
    is checked against the new table (docs/taxcodes.md); a table that no
    longer loads keeps the one in use."""
    import signal
    from test_config import wait_log
    srv = make_server()
    new_code = "1090512000000000000"
    doc = example_doc()
    for it in doc["items"]:
        it["tax_code"] = new_code
    r = srv.issue("tc-before", body=dumps(doc))
    assert_problem(r, 400, "INVALID_TAX_CODE")

    table = tmp_path / "codes.csv"
    table.write_text(SAMPLE_CODES.read_text() + "%s,新增测试编码,0.06;0.13,0\n" % new_code)
    cli(srv, "taxcodes", "import", "--file", str(table))
    mark = len(srv.log_text())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "reloaded the tax code table", mark)
    r = srv.issue("tc-after", body=dumps(doc))
    assert r.status == 201, r

    # an unreadable table on the next SIGHUP: the loaded one stays in use
    codes = srv.data_dir / "taxcodes.csv"
    codes.write_text("code,short_name,rates,summary\nnot-a-code,x,0.06,0\n")
    mark = len(srv.log_text())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "keeping the previous one", mark)
    r = srv.issue("tc-after-2", body=dumps(doc))
    assert r.status == 201, r
