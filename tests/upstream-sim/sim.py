#!/usr/bin/python3
"""A simulator of the tax platform's direct connection (乐企), for tests.

Written from docs/upstream.md and the public sources it cites, independently
of src/upstream/ (no shared code or tables): if the C side misreads the
wire format, the two disagree and the tests fail.

    sim.py --dir DIR --key HEX [--unit JRDWPTBH] [--credit YUAN] [--tax-id ID]

It listens on two loopback ports it picks itself and writes them to
DIR/ports.json ({"port", "control_port", "ca"}):

  HTTPS port    POST /access/v2/invoke/{nlbm}/{fwbm} (and /access/newsandbox/…)
                body base64(SM4-ECB-PKCS#7(JSON)), answers
                {"body": "{\"Response\": {\"RequestId\", \"Data\" | \"Error\"}}",
                 "httpStatusCode": "200"}, gzip'd when the client accepts it.
  control port  plain HTTP, loopback only, never faulted:
                GET  /state            the state and the log of every request
                POST /faults           {"name": {...options}} sets faults,
                                       {} clears them all
                POST /buyer            {"uuid", "answer": "Y"|"N"|"lapse"} the buyer's
                                       answer to a red form
                POST /buyer-files      {"lzfphm", "chyyDm"?} the buyer files a red
                                       form about that blue (03: the seller answers)
                POST /forget           {"uuid"} the platform loses that red form
                                       (a red invoice naming it is then rejected)
                POST /credit           {"nsrsbh", "granted"} this month's credit
                POST /ranges           {"nsrsbh", "first", "last"} numbers the
                                       taxpayer already holds (handed out
                                       before this connection, imported by hand)

Faults (POST /faults; each may carry "times": N, applied N times then gone,
and "for_s": S, in force for S seconds from when it was set, then gone by
itself: {"reset": {"for_s": 60}} is a 60 s outage):
  reset        {"times"}            TCP reset before the TLS handshake
  filtered     {"seconds"}          accept, never answer, close after seconds
  slow         {"seconds"}          answer after seconds
  store_then_hang {"seconds", "fwbm"} process (and store) the request, then
                                    answer nothing and close after seconds
  http5xx      {"status"}           500 / 502 with an HTML body
  rate_limit   {}                   429 with Error 请求过于频繁
  maintenance  {}                   503 with Error 系统维护中
  wrong_key    {}                   Data sealed with another key
  ip_unregistered {"mode": "403"|"reset"}
  reject       {"fphm": [...]}      those invoices fail validation (status 01)
  result_not_found {"times"}        CXQDFPSCJG answers 01 (no such sllsh) though
                                    the batch was stored

The state: numbers handed out per taxpayer (QDFPPLFM, idempotent per ywlsh),
the credit per taxpayer and month (CXSXED / XZTHSXED), uploaded invoices by
fphm with their validation (totals, number within a range, credit,
duplicate fphm: a known fphm sent again is answered per invoice with status
"02" 发票号码重复 and not stored twice), upload results by sllsh, red forms.  Every request is
logged, duplicates included.
"""
import argparse
import base64
import datetime
import gzip
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import uuid as uuidlib
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

MAX_BODY = 16 << 20
MAX_HOLD_S = 120  # every wait the sim does is bounded

# Red form states (hzqrxxztDm) as public API documents list them (01
# no confirmation needed, 02 seller entered / awaiting the buyer, 04
# confirmed, 05 voided: the buyer said no, 07 voided: not confirmed within
# 72 hours, 08 voided: withdrawn); docs/upstream.md "Red forms".  ISSUED is
# the sim's own mark for a form a red invoice was uploaded on.
FORM_NO_CONFIRMATION = "01"
FORM_AWAITING_BUYER = "02"
FORM_AWAITING_SELLER = "03"  # the buyer filed it: the seller confirms
FORM_CONFIRMED = "04"
FORM_REJECTED = "05"
FORM_SELLER_REJECTED = "06"
FORM_LAPSED = "07"
FORM_WITHDRAWN = "08"
FORM_WITHDRAWN_CONFIRMED = "09"
FORM_ISSUED = "11"


# ---- SM4 --------------------------------------------------------------------

def sm4(key, data, encrypt):
    c = Cipher(algorithms.SM4(key), modes.ECB())
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(data) + op.finalize()


def seal(key, obj):
    pt = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    n = 16 - len(pt) % 16
    return base64.b64encode(sm4(key, pt + bytes([n]) * n, True)).decode("ascii")


class Garbled(Exception):
    pass


def unseal(key, text):
    try:
        ct = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise Garbled("not base64")
    if not ct or len(ct) % 16:
        raise Garbled("not whole blocks")
    pt = sm4(key, ct, False)
    n = pt[-1]
    if not 1 <= n <= 16 or pt[-n:] != bytes([n]) * n:
        raise Garbled("bad padding")
    try:
        return json.loads(pt[:-n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Garbled("not JSON")


# ---- state ------------------------------------------------------------------

def money(s):
    try:
        d = Decimal(str(s))
    except (InvalidOperation, ValueError):
        raise ValueError("not an amount: %r" % (s,))
    if d != d.quantize(Decimal("0.01")) and d.as_tuple().exponent < -2:
        raise ValueError("more than 2 decimals: %r" % (s,))
    return d


def first_number():
    """The first pre-assigned number: this year (China Standard Time),
    province 44, channel 0, from 500000000001 on (above any range `fapiao
    init --demo` makes, so a download never overlaps it)."""
    yy = (datetime.datetime.utcnow() + datetime.timedelta(hours=8)).year % 100
    return int("%02d440%015d" % (yy, 500000000001))


class State:
    def __init__(self, credit):
        self.lock = threading.Lock()
        self.default_credit = Decimal(credit)
        self.next_number = first_number()
        self.ranges = {}         # nsrsbh -> [(first, last)]
        self.number_serials = {} # ywlsh -> answer
        self.credit = {}         # (nsrsbh, yyyyMM) -> dict
        self.credit_serials = {}
        self.invoices = {}       # fphm -> {"status", "message", "sllsh", "doc"}
        self.batches = {}        # sllsh -> [{"fphm", "status", "message"}]
        self.forms = {}          # uuid -> form
        self.form_serials = {}   # QDHZQRDSQ ywlsh -> uuid: a repeat gets the same form
        self.faults = {}
        self.log = []
        self.seq = 0

    def month_credit(self, nsrsbh, month):
        k = (nsrsbh, month)
        if k not in self.credit:
            self.credit[k] = {"granted": self.default_credit, "downloaded": Decimal(0),
                              "used": Decimal(0)}
        return self.credit[k]

    def prune(self):
        """Drop the time-boxed faults whose time is up (the lock held)."""
        now = time.monotonic()
        for name in [n for n, f in self.faults.items() if f.get("until", now + 1) <= now]:
            del self.faults[name]

    def take_fault(self, name):
        """The fault's options when set (counting down its times), else None."""
        self.prune()
        f = self.faults.get(name)
        if f is None:
            return None
        if "times" in f:
            f["times"] -= 1
            if f["times"] <= 0:
                del self.faults[name]
        return dict(f, on=True)  # never empty, so "if fault:" reads right

    def in_range(self, nsrsbh, fphm):
        try:
            n = int(fphm)
        except (TypeError, ValueError):
            return False
        return any(a <= n <= b for a, b in self.ranges.get(nsrsbh, []))


class Refusal(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code, self.msg = code, msg


def ok(**fields):
    return dict(returncode="00", returnmsg="成功", **fields)


def now_month():
    """The month in China Standard Time, as invoices' kprq."""
    return (datetime.datetime.utcnow() + datetime.timedelta(hours=8)).strftime("%Y%m")


# ---- services ----------------------------------------------------------------

def svc_numbers(st, req):
    nsrsbh, serial = req.get("nsrsbh"), req.get("ywlsh")
    try:
        count = int(req.get("lysl"))
    except (TypeError, ValueError):
        raise Refusal("10", "领用数量无效")
    if not nsrsbh or not serial:
        raise Refusal("10", "纳税人识别号与业务流水号必填")
    if not 1 <= count <= 5000:
        raise Refusal("11", "领用数量须为 1-5000")
    if serial in st.number_serials:
        return st.number_serials[serial]
    first = st.next_number
    st.next_number += count
    st.ranges.setdefault(nsrsbh, []).append((first, first + count - 1))
    ans = ok(fpqshm="%020d" % first, fpzzhm="%020d" % (first + count - 1), lysl=str(count))
    st.number_serials[serial] = ans
    return ans


def svc_credit_query(st, req):
    c = st.month_credit(req.get("nsrsbh"), now_month())
    usable = c["granted"] - c["downloaded"]
    return ok(ztsxbz="Y", bysxed=str(c["granted"]), kysyed=str(usable),
              yxzed=str(c["downloaded"]), yxzwsyed=str(c["downloaded"] - c["used"]),
              sq=now_month())


def svc_credit_transfer(st, req):
    serial = req.get("ywlsh")
    if serial in st.credit_serials:
        return st.credit_serials[serial]
    try:
        amount = money(req.get("sqed"))
    except ValueError:
        raise Refusal("20", "申请额度无效")
    c = st.month_credit(req.get("nsrsbh"), now_month())
    if req.get("sqlx") == "0":
        if amount > c["granted"] - c["downloaded"]:
            raise Refusal("21", "申请额度超过可用授信额度")
        c["downloaded"] += amount
    elif req.get("sqlx") == "1":
        if amount > c["downloaded"] - c["used"]:
            raise Refusal("22", "退回额度超过已下载未使用额度")
        c["downloaded"] -= amount
    else:
        raise Refusal("20", "申请类型无效")
    today = datetime.date.today()
    ans = ok(syqjq=today.replace(day=1).isoformat(), syqjz=today.isoformat())
    st.credit_serials[serial] = ans
    return ans


def check_invoice(st, inv):
    """Why inv cannot be accepted, or None (amounts in Decimal)."""
    for k in ("fphm", "lzfpbz", "fppz", "kprq", "xsfnsrsbh", "xsfmc", "gmfmc", "hjje", "hjse",
              "jshj", "kpr", "fpmxList"):
        if inv.get(k) in (None, ""):
            return "缺少字段 %s" % k
    if inv["fphm"] in set(st.faults.get("reject", {}).get("fphm", [])):
        return "发票信息校验不通过（模拟）"
    if not st.in_range(inv["xsfnsrsbh"], inv["fphm"]):
        return "发票号码不在已分配的号段内"
    try:
        hjje, hjse, jshj = money(inv["hjje"]), money(inv["hjse"]), money(inv["jshj"])
        je = sum((money(l["je"]) for l in inv["fpmxList"]), Decimal(0))
        se = sum((money(l["se"]) for l in inv["fpmxList"]), Decimal(0))
    except (ValueError, KeyError, TypeError):
        return "金额格式错误"
    if je != hjje or se != hjse or hjje + hjse != jshj:
        return "合计金额与明细不符"
    if inv["lzfpbz"] == "1":
        # a red invoice names its confirmed form (uuid and number) and the
        # blue invoice that form is about
        form = st.forms.get(inv.get("hzqrduuid") or "")
        if not form or form["hzfpxxqrdbh"] != inv.get("hzqrxxdbh"):
            return "红字确认单不存在"
        if form["lzfphm"] != inv.get("dylzfphm"):
            return "红字确认单与对应蓝字发票不符"
        if form["hzqrxxztDm"] not in (FORM_CONFIRMED, FORM_NO_CONFIRMATION):
            return "红字确认单状态不允许开具"
    month = inv["kprq"][:7].replace("-", "")
    c = st.month_credit(inv["xsfnsrsbh"], month)
    if inv["lzfpbz"] == "0" and c["used"] + hjje > c["downloaded"]:
        return "授信额度不足"
    return None


def svc_upload(st, req):
    invoices = req if isinstance(req, list) else [req]
    sllsh = "SL" + uuidlib.uuid4().hex[:18].upper()
    results, entries = [], []
    for inv in invoices:
        if not isinstance(inv, dict):
            raise Refusal("30", "发票数据格式错误")
        fphm = inv.get("fphm")
        prior = st.invoices.get(fphm)
        if prior is not None:
            status, msg, outcome = "02", "发票号码重复", "duplicate"  # stored once, never twice
        else:
            why = check_invoice(st, inv)
            status, msg = ("01", why) if why else ("00", "成功")
            outcome = "rejected" if why else "accepted"
            if not why:
                c = st.month_credit(inv["xsfnsrsbh"], inv["kprq"][:7].replace("-", ""))
                c["used"] += money(inv["hjje"]) if inv["lzfpbz"] == "0" else Decimal(0)
                if inv["lzfpbz"] == "1":
                    blue = st.invoices.get(inv.get("dylzfphm"), {}).get("doc", {})
                    if blue.get("kprq", "")[:7] == inv["kprq"][:7]:  # same month: give back
                        c["used"] += money(inv["hjje"])
                    st.forms[inv["hzqrduuid"]]["hzqrxxztDm"] = FORM_ISSUED
                st.invoices[fphm] = {"status": status, "message": msg, "sllsh": sllsh,
                                     "doc": inv}
        results.append({"fphm": fphm, "status": status, "message": msg})
        entries.append({"fphm": fphm, "outcome": outcome, "message": msg})
    st.batches[sllsh] = results
    return ok(sllsh=sllsh), {"sllsh": sllsh, "invoices": entries}


def svc_upload_result(st, req):
    r = st.batches.get(req.get("sllsh"))
    if r is None or st.take_fault("result_not_found"):
        return dict(returncode="01", returnmsg="未查询到受理流水号"), {"sllsh": req.get("sllsh")}
    return ok(fpxxList=r), {"sllsh": req.get("sllsh")}


def svc_red_apply(st, req):
    for k in ("xsfnsrsbh", "lzfphm", "hzcxje", "hzcxse", "chyyDm", "hzqrdmxList"):
        if req.get(k) in (None, ""):
            raise Refusal("40", "缺少字段 %s" % k)
    blue = st.invoices.get(req["lzfphm"])
    if not blue or blue["status"] != "00":
        raise Refusal("41", "蓝字发票不存在或未上传成功")
    if req["chyyDm"] not in ("01", "02", "03", "04"):
        raise Refusal("42", "冲红原因代码无效")
    try:
        if -money(req["hzcxje"]) > money(blue["doc"]["hjje"]):
            raise Refusal("43", "红冲金额超过蓝字发票金额")
    except ValueError:
        raise Refusal("40", "金额格式错误")
    serials = st.form_serials
    if req.get("ywlsh") and req["ywlsh"] in serials:  # a repeat: the form already made
        f = st.forms[serials[req["ywlsh"]]]
        return ok(uuid=f["uuid"], hzfpxxqrdbh=f["hzfpxxqrdbh"], hzqrxxztDm=f["hzqrxxztDm"])
    u = uuidlib.uuid4().hex
    if req.get("ywlsh"):
        serials[req["ywlsh"]] = u
    no = "%020d" % (44030026000000000000 + len(st.forms) + 1)
    # a 普票 buyer that is a natural person needs no confirmation; else the buyer confirms
    needs = not (blue["doc"].get("fppz") == "02" and blue["doc"].get("gmfzrrbz") == "Y")
    form = {"uuid": u, "hzfpxxqrdbh": no,
            "hzqrxxztDm": FORM_AWAITING_BUYER if needs else FORM_NO_CONFIRMATION,
            "xsfnsrsbh": req["xsfnsrsbh"], "lzfphm": req["lzfphm"], "request": req}
    st.forms[u] = form
    return ok(uuid=u, hzfpxxqrdbh=no, hzqrxxztDm=form["hzqrxxztDm"])


def svc_red_answer(st, req):
    """The seller's answer (this connection is the seller's): Y / N to a
    form the buyer filed, C to withdraw one the seller filed."""
    form = st.forms.get(req.get("uuid"))
    if not form or form["hzfpxxqrdbh"] != req.get("hzqrdbh") or \
            form["xsfnsrsbh"] != req.get("xsfnsrsbh"):
        raise Refusal("44", "红字确认单不存在")
    qrlx, state, by_buyer = req.get("qrlx"), form["hzqrxxztDm"], form.get("lrfsf") == "1"
    if qrlx in ("Y", "N") and not by_buyer:
        raise Refusal("45", "销方录入的确认单须由购方确认")
    if qrlx in ("Y", "N") and state == FORM_AWAITING_SELLER:
        form["hzqrxxztDm"] = FORM_CONFIRMED if qrlx == "Y" else FORM_SELLER_REJECTED
    elif qrlx == "C" and not by_buyer and state in (FORM_AWAITING_BUYER, FORM_NO_CONFIRMATION):
        form["hzqrxxztDm"] = FORM_WITHDRAWN
    elif qrlx == "C" and not by_buyer and state == FORM_CONFIRMED:
        form["hzqrxxztDm"] = FORM_WITHDRAWN_CONFIRMED
    else:
        raise Refusal("46", "确认单状态不允许此操作")
    return ok(hzqrxxztDm=form["hzqrxxztDm"])


def file_as_buyer(st, req):
    """The buyer files a form about a blue invoice the platform holds: a
    full reversal (chyyDm 01) unless told otherwise; it awaits the seller."""
    blue = st.invoices.get(req.get("lzfphm"))
    if not blue or blue["status"] != "00":
        return None
    doc = blue["doc"]
    neg = lambda v: str(-money(v))  # noqa: E731
    lines = [{"xh": str(i + 1), "lzmxxh": str(l.get("mxxh", i + 1)), "je": neg(l["je"]),
              "se": neg(l["se"]), "fpspsl": neg(l["sl"]) if l.get("sl") else "",
              "sphfwssflhbbm": l.get("sphfwssflhbbm", ""), "xmmc": l.get("xmmc", "")}
             for i, l in enumerate(doc["fpmxList"])]
    u = uuidlib.uuid4().hex
    no = "%020d" % (44030026000000000000 + len(st.forms) + 1)
    form = {"uuid": u, "hzfpxxqrdbh": no, "hzqrxxztDm": FORM_AWAITING_SELLER,
            "xsfnsrsbh": doc["xsfnsrsbh"], "lzfphm": doc["fphm"], "lrfsf": "1",
            "request": {"xsfnsrsbh": doc["xsfnsrsbh"], "gmfnsrsbh": doc.get("gmfnsrsbh", ""),
                        "lzfphm": doc["fphm"], "chyyDm": req.get("chyyDm", "01"), "lrfsf": "1",
                        "hzcxje": neg(doc["hjje"]), "hzcxse": neg(doc["hjse"]),
                        "hzqrdmxList": lines}}
    st.forms[u] = form
    return form


def form_view(f):
    return {"uuid": f["uuid"], "hzfpxxqrdbh": f["hzfpxxqrdbh"], "hzqrxxztDm": f["hzqrxxztDm"],
            "xsfnsrsbh": f["xsfnsrsbh"], "lzfphm": f["lzfphm"]}


def svc_red_list(st, req):
    want = req.get("hzqrxxztDm") or None
    rows = [form_view(f) for f in st.forms.values()
            if f["xsfnsrsbh"] == req.get("xsfnsrsbh") and (not want or f["hzqrxxztDm"] == want)]
    try:
        page, size = max(1, int(req.get("pageNumber") or 1)), int(req.get("pageSize") or 20)
    except ValueError:
        raise Refusal("47", "分页参数无效")
    size = min(max(size, 1), 100)
    return ok(total=str(len(rows)), list=rows[(page - 1) * size:page * size])


def svc_red_detail(st, req):
    f = st.forms.get(req.get("uuid"))
    if not f:
        return dict(returncode="01", returnmsg="未查询到红字确认单")
    return ok(**form_view(f), chyyDm=f["request"].get("chyyDm", ""),
              lrfsf=f.get("lrfsf", "0"), hzqrdmxList=f["request"].get("hzqrdmxList", []))


def svc_rates(st, req):
    return ok(slList=[{"slv": s} for s in ("0.13", "0.09", "0.06", "0.03", "0.01", "0")])


def svc_taxcodes(st, req):
    rows = [{"sphfwssflhbbm": "3040201000000000000", "spfwjc": "信息技术服务", "slv": "0.06"},
            {"sphfwssflhbbm": "1090511030000000000", "spfwjc": "计算机设备", "slv": "0.13"}]
    return ok(sjc=datetime.datetime.utcnow().strftime("%Y%m%d%H%M%S"),
              list=[] if req.get("sjc") else rows)


def svc_adjust(st, req):
    if not req.get("xsfnsrsbh") or not req.get("sxedsq"):
        raise Refusal("50", "缺少字段")
    return ok()


SERVICES = {
    "QDFPPLFM": svc_numbers, "CXSXED": svc_credit_query, "XZTHSXED": svc_credit_transfer,
    "TZSXEDYXQ": svc_adjust, "QDFPSC": svc_upload, "CXQDFPSCJG": svc_upload_result,
    "QDHZQRDSQ": svc_red_apply, "QDHZQRDQR": svc_red_answer, "CXQDHZQRDLB": svc_red_list,
    "CXQDHZQRDMX": svc_red_detail, "CXKYSL": svc_rates, "CXSSFLBM": svc_taxcodes,
}


# ---- the platform's HTTPS side ------------------------------------------------

class Platform(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lqpt-sim"

    def log_message(self, fmt, *args):  # quiet; the state's log is the record
        pass

    def send(self, status, obj=None, raw=None, ctype="application/json"):
        body = raw if raw is not None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
        gz = "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > 64
        if gz:
            body = gzip.compress(body)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if gz:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def envelope(self, status, response):
        response.setdefault("RequestId", uuidlib.uuid4().hex)
        self.send(status, {"body": json.dumps({"Response": response}, ensure_ascii=False),
                           "httpStatusCode": str(status)})

    def error(self, status, code, msg):
        self.envelope(status, {"Error": {"code": code, "Message": msg}})

    def do_POST(self):
        st, sim = self.server.state, self.server.sim
        parts = self.path.split("/")
        # /access/v2/invoke/{nlbm}/{fwbm} or /access/newsandbox/v2/invoke/{nlbm}/{fwbm}
        fwbm = parts[-1] if len(parts) >= 6 and parts[1] == "access" else None
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self.send(413, raw=b"too large", ctype="text/plain")
        text = self.rfile.read(length).decode("ascii", "replace")
        with st.lock:
            st.seq += 1
            entry = {"seq": st.seq, "t": time.time(), "fwbm": fwbm, "client": self.client_address[0],
                     "headers": {k: self.headers.get(k) for k in
                                 ("fwbm", "nlbm", "jrdwptbh", "sydwptbh", "sxcsbz")}}
            st.log.append(entry)
            ip = st.take_fault("ip_unregistered")
            faults = {n: st.take_fault(n) for n in ("slow", "http5xx", "rate_limit",
                                                    "maintenance", "wrong_key")}
        if ip is not None or self.client_address[0] not in sim.registered:
            entry["outcome"] = "ip_unregistered"
            return self.error(403, "403", "请求IP地址未备案")
        if faults["slow"]:
            time.sleep(min(float(faults["slow"].get("seconds", 1)), MAX_HOLD_S))
        if faults["http5xx"]:
            entry["outcome"] = "5xx"
            return self.send(int(faults["http5xx"].get("status", 502)),
                             raw=b"<html><body>Bad Gateway</body></html>", ctype="text/html")
        if faults["rate_limit"]:
            entry["outcome"] = "rate_limited"
            return self.error(429, "4290", "请求过于频繁，请稍后再试")
        if faults["maintenance"]:
            entry["outcome"] = "maintenance"
            return self.error(503, "5030", "系统维护中，请稍后再试")
        if fwbm not in SERVICES or self.headers.get("fwbm") != fwbm:
            entry["outcome"] = "no_service"
            return self.error(404, "4040", "服务编码不存在：%s" % fwbm)
        if self.headers.get("jrdwptbh") != sim.unit:
            entry["outcome"] = "unit_wrong"
            return self.error(200, "4002", "接入单位平台编号不存在")
        try:
            req = unseal(sim.key, text)
        except Garbled as e:
            entry["outcome"] = "undecryptable"
            return self.error(200, "4001", "报文解密失败：%s" % e)
        entry["request"] = req
        with st.lock:
            try:
                ans = SERVICES[fwbm](st, req)
            except Refusal as r:
                ans = dict(returncode=r.code, returnmsg=r.msg)
            if isinstance(ans, tuple):
                ans, extra = ans
                entry.update(extra)
            entry["returncode"] = ans.get("returncode")
            hang = st.faults.get("store_then_hang")
            if hang and hang.get("fwbm", fwbm) == fwbm:
                st.take_fault("store_then_hang")
            else:
                hang = None
        if hang:  # stored; the caller never learns it
            entry["outcome"] = "stored_no_answer"
            time.sleep(min(float(hang.get("seconds", 5)), MAX_HOLD_S))
            self.close_connection = True
            return
        entry["outcome"] = "answered"
        key = sim.other_key if faults["wrong_key"] else sim.key
        self.envelope(200, {"Data": seal(key, ans)})


class PlatformServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        st = self.state
        with st.lock:
            reset = st.take_fault("reset")
            ip = st.faults.get("ip_unregistered")
            if ip and ip.get("mode") == "reset":
                st.take_fault("ip_unregistered")
            else:
                ip = None
            filtered = st.take_fault("filtered")
            if reset or ip or filtered:
                st.seq += 1
                st.log.append({"seq": st.seq, "t": time.time(), "fwbm": None,
                               "outcome": "reset" if reset or ip else "filtered"})
        if reset or ip:
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.close()
            return
        if filtered:
            time.sleep(min(float(filtered.get("seconds", 5)), MAX_HOLD_S))
            request.close()
            return
        request.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            request.close()
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


# ---- control ------------------------------------------------------------------

class Control(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False, default=str).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.server.state
        if self.path != "/state":
            return self.reply(404, {"error": "no such path"})
        with st.lock:
            st.prune()
            self.reply(200, {
                "faults": st.faults, "log": st.log,
                "invoices": {k: {x: v[x] for x in ("status", "message", "sllsh")}
                             for k, v in st.invoices.items()},
                "ranges": {k: [["%020d" % a, "%020d" % b] for a, b in v]
                           for k, v in st.ranges.items()},
                "credit": {"%s/%s" % k: {x: str(y) for x, y in v.items()}
                           for k, v in st.credit.items()},
                "forms": {k: form_view(v) for k, v in st.forms.items()},
            })

    def do_POST(self):
        st = self.server.state
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(min(n, 1 << 20)) or b"{}")
        except ValueError:
            return self.reply(400, {"error": "not JSON"})
        with st.lock:
            if self.path == "/faults":
                if not req:
                    st.faults.clear()
                else:
                    st.faults.update({k: dict(v or {}) for k, v in req.items()})
                    for f in st.faults.values():
                        if "for_s" in f and "until" not in f:
                            f["until"] = time.monotonic() + min(float(f["for_s"]), 3600)
                return self.reply(200, {"faults": st.faults})
            if self.path == "/buyer":
                f = st.forms.get(req.get("uuid"))
                if not f or f["hzqrxxztDm"] != FORM_AWAITING_BUYER:
                    return self.reply(409, {"error": "no form awaiting the buyer"})
                f["hzqrxxztDm"] = {"Y": FORM_CONFIRMED, "lapse": FORM_LAPSED}.get(
                    req.get("answer"), FORM_REJECTED)
                return self.reply(200, form_view(f))
            if self.path == "/buyer-files":
                f = file_as_buyer(st, req)
                return self.reply(200 if f else 404, form_view(f) if f else
                                  {"error": "no such accepted blue invoice"})
            if self.path == "/forget":  # a planted mismatch: the platform loses a form
                f = st.forms.pop(req.get("uuid"), None)
                return self.reply(200 if f else 404, {"forgotten": bool(f)})
            if self.path == "/ranges":
                st.ranges.setdefault(req["nsrsbh"], []).append(
                    (int(req["first"]), int(req["last"])))
                return self.reply(200, {"ranges": len(st.ranges[req["nsrsbh"]])})
            if self.path == "/credit":
                c = st.month_credit(req["nsrsbh"], now_month())
                c["granted"] = Decimal(str(req["granted"]))
                return self.reply(200, {"granted": str(c["granted"])})
        self.reply(404, {"error": "no such path"})


def self_signed(dirpath):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lqpt-sim")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"),
                 x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(dirpath, "cert.pem"), os.path.join(dirpath, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--key", required=True, help="the SM4 key, 32 hex digits")
    ap.add_argument("--unit", default="PT0001", help="the registered jrdwptbh")
    ap.add_argument("--credit", default="1000000.00", help="each month's granted credit")
    ap.add_argument("--registered", default="127.0.0.1", help="registered client IPs, comma-sep")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    class Sim:
        pass
    sim = Sim()
    sim.key = bytes.fromhex(a.key)
    sim.other_key = bytes(b ^ 0x5A for b in sim.key)
    sim.unit = a.unit
    sim.registered = set(a.registered.split(","))
    state = State(a.credit)

    cert, key = self_signed(a.dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    platform = PlatformServer(("127.0.0.1", 0), Platform, bind_and_activate=True)
    platform.state, platform.sim, platform.ctx = state, sim, ctx
    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    control.daemon_threads = True
    control.state = state
    tmp = os.path.join(a.dir, "ports.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"port": platform.server_address[1],
                   "control_port": control.server_address[1], "ca": cert}, f)
    os.rename(tmp, os.path.join(a.dir, "ports.json"))
    threading.Thread(target=control.serve_forever, daemon=True).start()
    try:
        platform.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
