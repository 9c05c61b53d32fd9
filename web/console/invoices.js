/* invoices.js — find invoices through GET /v1/invoices (serial, buyer tax
 * id, a CST date range; cursor pages of 20) or one by its number (GET
 * /v1/invoices/{number}); the detail links the PDF (opened in a new tab:
 * the console's CSP allows no <object>) and the XML download. */
"use strict";
const $ = (id) => document.getElementById(id);
let fpCursor = null;
let fpQuery = "";

function fpCell(tr, text) { tr.appendChild(fpEl("td", text)); }

function fpShow(doc) {
  $("d-number").textContent = doc.number;
  const b = doc.buyer || {};
  const rows = [["serial", "流水号", doc.serial], ["status", "状态", doc.status],
                ["issued_at", "开票时间", doc.issued_at], ["buyer", "购买方", b.name],
                ["buyer_tax_id", "购买方税号", b.tax_id],
                ["total_amount", "金额", doc.total_amount], ["total_tax", "税额", doc.total_tax],
                ["total_with_tax", "价税合计", doc.total_with_tax], ["remark", "备注", doc.remark]];
  $("d-fields").replaceChildren(...rows.flatMap(([key, zh, v]) => {
    const dt = fpEl("dt", fpI18n.t(key, zh));
    dt.dataset.i18n = key;
    return [dt, fpEl("dd", v === undefined ? "" : v)];
  }));
  $("d-items").tBodies[0].replaceChildren(...(doc.items || []).map((it) => {
    const tr = fpEl("tr");
    for (const v of [it.name, it.quantity, it.amount, it.tax_rate, it.tax]) fpCell(tr, v);
    return tr;
  }));
  const base = "/v1/invoices/" + encodeURIComponent(doc.number);
  $("d-pdf").href = base + "/pdf";
  $("d-xml").href = base + "/xml";
  $("d-xml").setAttribute("download", doc.number + ".xml");
  $("detail").hidden = false;
}

async function fpOpen(number) {
  const res = await fpApi("GET", "/v1/invoices/" + encodeURIComponent(number));
  if (res.status !== 200) { $("message").textContent = fpProblem(res); return; }
  $("message").textContent = "";
  fpShow(res.doc);
}

async function fpPage(append) {
  const q = fpQuery + (append && fpCursor ? "&cursor=" + encodeURIComponent(fpCursor) : "");
  const res = await fpApi("GET", "/v1/invoices?limit=20" + q);
  if (res.status !== 200) { $("message").textContent = fpProblem(res); return; }
  const body = $("results").tBodies[0];
  const rows = (res.doc.invoices || []).map((d) => {
    const tr = fpEl("tr");
    const a = fpEl("a", d.number);
    a.href = "#" + d.number;
    a.addEventListener("click", (ev) => { ev.preventDefault(); fpShow(d); });
    tr.appendChild(fpEl("td")).appendChild(a);
    fpCell(tr, d.serial);
    fpCell(tr, d.issued_at);
    fpCell(tr, (d.buyer || {}).name);
    fpCell(tr, d.total_with_tax);
    fpCell(tr, d.status);
    return tr;
  });
  if (append) body.append(...rows); else body.replaceChildren(...rows);
  fpCursor = res.doc.next_cursor || null;
  $("more").hidden = !fpCursor;
  $("results").hidden = false;
  $("message").textContent = body.rows.length ? "" : fpI18n.t("none", "没有符合条件的发票");
}

document.addEventListener("DOMContentLoaded", async () => {
  if (!(await fpSession())) return;
  $("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("detail").hidden = true;
    const number = $("q-number").value.trim();
    if (number) { $("results").hidden = true; $("more").hidden = true; fpOpen(number); return; }
    const p = new URLSearchParams();
    for (const [id, name] of [["q-serial", "serial"], ["q-buyer", "buyer_tax_id"],
                              ["q-from", "from"], ["q-to", "to"]])
      if ($(id).value.trim()) p.set(name, $(id).value.trim());
    fpQuery = p.toString() ? "&" + p.toString() : "";
    fpPage(false);
  });
  $("more").addEventListener("click", () => fpPage(true));
  if (location.hash.length > 1) fpOpen(decodeURIComponent(location.hash.slice(1)));
});
