#!/usr/bin/env python3
"""render_html.py — the Chromium side of bench/render.sh.

  render_html.py html DOC.json OUT.html
      The invoice document as an HTML page laid out like the fapiao PDF
      (241 mm x 140 mm page, same blocks, same table, WenQuanYi Micro Hei),
      the way invoicing apps that print with headless Chromium do it.  The
      QR code is an empty box: Chromium has no QR encoder, and drawing one
      would only make it slower.

  render_html.py time CHROMIUM PAGE.html OUT_DIR RUNS
      Runs `CHROMIUM --headless --no-sandbox --disable-gpu --print-to-pdf`
      once to warm the disk cache and profile, then RUNS times, each a fresh
      browser process as those apps spawn one per PDF.  Prints one line:
        chromium runs=5 ok=5 mean_s=0.912 min_s=0.870 max_s=0.990
            cpu_s_per_pdf=1.10 max_rss_mb=180 pdf_bytes=51234
      cpu_s_per_pdf is user+system time of Chromium and every process it
      started (RUSAGE_CHILDREN); max_rss_mb the largest single process.
"""
import html
import json
import os
import resource
import subprocess
import sys
import time

CSS = """
@page { size: 241mm 140mm; margin: 0; }
* { box-sizing: border-box; }
body { margin: 0; font-family: "WenQuanYi Micro Hei", sans-serif; color: #000; }
.page { position: relative; width: 241mm; height: 140mm; }
.form { color: #994d29; }
.qr { position: absolute; left: 12mm; top: 4.5mm; width: 20mm; height: 20mm;
      border: 0.3mm solid #000; }
.title { position: absolute; left: 0; right: 0; top: 8mm; text-align: center;
         font-size: 17pt; color: #994d29; }
.title span { border-bottom: 0.8mm double #994d29; padding: 0 4mm 1mm; }
.stamp { position: absolute; left: 46mm; top: 6.5mm; width: 20mm; height: 11mm;
         border: 1.4pt solid #db1414; color: #db1414; font-size: 16pt; text-align: center;
         line-height: 10mm; }
.info { position: absolute; left: 166mm; top: 7mm; font-size: 8.5pt; line-height: 5.5mm; }
.frame { position: absolute; left: 10mm; top: 27mm; width: 221mm; height: 102mm;
         border: 0.8pt solid #994d29; }
.parties { display: flex; height: 18mm; border-bottom: 0.5pt solid #994d29; }
.party { flex: 1; display: flex; }
.party + .party { border-left: 0.5pt solid #994d29; }
.side { width: 6mm; writing-mode: vertical-rl; text-orientation: upright; font-size: 7.5pt;
        border-right: 0.5pt solid #994d29; display: flex; align-items: center;
        justify-content: center; color: #994d29; }
.pbody { padding: 1.5mm; font-size: 8pt; line-height: 7mm; overflow: hidden; }
table { border-collapse: collapse; width: 221mm; table-layout: fixed; font-size: 7.5pt; }
th { color: #994d29; font-weight: normal; height: 6mm; font-size: 8pt; }
td { height: 5.2mm; padding: 0 1.5mm; overflow: hidden; white-space: nowrap;
     text-overflow: ellipsis; }
td.n { text-align: right; }
td.c { text-align: center; }
.rows { height: 52mm; }
.totals { position: absolute; top: 76mm; left: 0; right: 0; }
.row { display: flex; border-top: 0.5pt solid #994d29; align-items: center; font-size: 8.5pt; }
.remark { display: flex; border-top: 0.5pt solid #994d29; height: 13mm; font-size: 8pt; }
.footer { position: absolute; left: 12mm; right: 10mm; top: 131.5mm; font-size: 8.5pt;
          display: flex; justify-content: space-between; }
"""

COLS = [("项目名称", 64, ""), ("规格型号", 22, ""), ("单位", 13, "c"), ("数量", 22, "n"),
        ("单价", 24, "n"), ("金额", 28, "n"), ("税率/征收率", 20, "c"), ("税额", 28, "n")]
DISPLAY = {"exempt": ("免税", "***"), "non_taxable": ("不征税", "")}
ROWS_PER_PAGE = 10


def rate_text(rate):
    # "0.06" -> "6%" on the string, as pdf.c does (no floating point)
    whole, _, frac = rate.partition(".")
    frac = (frac + "0000")[:4]
    bp = int(whole or "0") * 10000 + int(frac)
    pct, rest = divmod(bp, 100)
    return "%d%%" % pct if rest == 0 else ("%d.%s%%" % (pct, ("%02d" % rest).rstrip("0")))


def e(s):
    return html.escape(s or "")


def page(doc, items, n, total):
    title = "电子发票（增值税专用发票）" if doc["invoice_type"] == "01" else "电子发票（普通发票）"
    d = doc["issued_at"]
    out = ['<div class="page"><div class="qr"></div>',
           '<div class="title"><span>%s</span></div>' % title]
    if doc.get("color") == "red":
        out.append('<div class="stamp">红字</div>')
    out.append('<div class="info"><span class="form">发票号码：</span>%s<br>'
               '<span class="form">开票日期：</span>%s年%s月%s日</div>'
               % (e(doc["number"]), d[0:4], d[5:7], d[8:10]))
    out.append('<div class="frame"><div class="parties">')
    for side, key in (("购买方信息", "buyer"), ("销售方信息", "seller")):
        p = doc[key]
        out.append('<div class="party"><div class="side">%s</div><div class="pbody">'
                   '<span class="form">名称：</span>%s<br>'
                   '<span class="form">统一社会信用代码/纳税人识别号：</span>%s</div></div>'
                   % (side, e(p.get("name")), e(p.get("tax_id"))))
    out.append('</div><table><colgroup>%s</colgroup><tr>%s</tr>'
               % ("".join('<col style="width:%dmm">' % w for _, w, _ in COLS),
                  "".join("<th>%s</th>" % t for t, _, _ in COLS)))
    for it in items:
        rate, tax = DISPLAY.get(it.get("policy"), (rate_text(it["tax_rate"]), it["tax"]))
        cells = [it["name"], it.get("spec"), it.get("unit"), it.get("quantity"),
                 it.get("unit_price"), it["amount"], rate, tax]
        out.append("<tr>%s</tr>" % "".join('<td class="%s">%s</td>' % (COLS[k][2], e(c))
                                           for k, c in enumerate(cells)))
    out.append("</table>")
    if n == total:
        out.append('<div class="totals">'
                   '<div class="row" style="height:6mm"><span class="form" style="width:64mm;'
                   'text-align:center">合　　计</span><span style="margin-left:auto;width:58mm;'
                   'text-align:right">¥%s</span><span style="width:46mm;text-align:right;'
                   'padding-right:1.5mm">¥%s</span></div>'
                   '<div class="row" style="height:7mm"><span class="form" style="width:42mm;'
                   'text-align:center">价税合计（大写）</span><span>⊗ %s</span>'
                   '<span style="margin-left:auto;width:63mm"><span class="form">（小写）</span>'
                   '¥%s</span></div>'
                   '<div class="remark"><div class="side">备注</div>'
                   '<div style="padding:1mm 1.5mm">%s</div></div></div>'
                   % (e(doc["total_amount"]), e(doc["total_tax"]),
                      e(doc["total_with_tax_words"]), e(doc["total_with_tax"]),
                      e(doc.get("remark"))))
    else:
        out.append('<div class="totals form" style="text-align:center;padding-top:10mm">'
                   '（本页未完，续见第 %d 页）</div>' % (n + 1))
    out.append('</div><div class="footer"><span><span class="form">开票人：</span>%s</span>'
               '<span class="form">第 %d 页 / 共 %d 页</span></div></div>'
               % (e(doc["drawer"]), n, total))
    return "".join(out)


def to_html(doc):
    items = doc["items"]
    pages = [items[i:i + ROWS_PER_PAGE] for i in range(0, len(items), ROWS_PER_PAGE)]
    body = "".join(page(doc, p, n + 1, len(pages)) for n, p in enumerate(pages))
    return ('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<title>电子发票 %s</title><style>%s</style></head><body>%s</body></html>'
            % (e(doc["number"]), CSS, body))


def time_chromium(chromium, page_html, out_dir, runs):
    os.makedirs(out_dir, exist_ok=True)
    url = "file://" + os.path.abspath(page_html)
    profile = os.path.join(out_dir, "profile")

    def once(i):
        out = os.path.join(out_dir, "chromium-%d.pdf" % i)
        if os.path.exists(out):
            os.unlink(out)
        t0 = time.monotonic()
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--no-pdf-header-footer",
                            "--user-data-dir=" + profile, "--print-to-pdf=" + out, url],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        dt = time.monotonic() - t0
        ok = r.returncode == 0 and os.path.exists(out) and os.path.getsize(out) > 0
        if not ok:
            sys.stderr.write(r.stderr.decode(errors="replace")[-2000:])
        return dt, ok, out

    once(0)  # warm-up: disk cache, profile directory
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    times, ok, last = [], 0, None
    for i in range(1, runs + 1):
        dt, good, out = once(i)
        times.append(dt)
        ok += good
        if good:
            last = out
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print("chromium runs=%d ok=%d mean_s=%.3f min_s=%.3f max_s=%.3f cpu_s_per_pdf=%.3f "
          "max_rss_mb=%.0f pdf_bytes=%d pdf=%s"
          % (runs, ok, sum(times) / len(times), min(times), max(times), cpu / runs,
             after.ru_maxrss / 1024, os.path.getsize(last) if last else 0, last or "-"))
    return 0 if ok == runs else 1


def main(argv):
    if len(argv) == 4 and argv[1] == "html":
        with open(argv[2], encoding="utf-8") as f:
            doc = json.load(f)
        with open(argv[3], "w", encoding="utf-8") as f:
            f.write(to_html(doc))
        return 0
    if len(argv) == 6 and argv[1] == "time":
        return time_chromium(argv[2], argv[3], argv[4], int(argv[5]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
