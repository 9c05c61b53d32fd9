/* common.js — what every signed-in page shares: the session (GET
 * /console/api/session, which also gives the CSRF token every change must
 * send; no session: back to the sign-in page), the page menu, sign-out, and
 * fpApi() for the /v1 routes through the session cookie. */
"use strict";
let fpCsrf = "";

const FP_PAGES = [
  ["overview.html", "overview", "概览"], ["invoices.html", "invoices", "发票"],
  ["red-forms.html", "redforms", "红字确认单"], ["deliveries.html", "deliveries", "投递"],
  ["audit.html", "audit", "审计日志"],
];

function fpEl(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

/* A change (not GET) sends the CSRF token; the answer's JSON (or {}) with
 * its status.  A problem answer shows in the chosen language. */
async function fpApi(method, path, body) {
  const h = {};
  if (method !== "GET") h["X-CSRF-Token"] = fpCsrf;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const r = await fetch(path, { method, credentials: "same-origin", headers: h,
                                body: body === undefined ? undefined : JSON.stringify(body) });
  const doc = await r.json().catch(() => ({}));
  return { status: r.status, doc };
}

function fpProblem(res) {
  const d = res.doc || {};
  return res.status + " " + ((fpI18n.lang === "en" ? d.message_en : d.message_zh) || d.code || "");
}

function fpMenu() {
  const nav = document.getElementById("menu");
  if (!nav) return;
  const here = location.pathname.split("/").pop() || "overview.html";
  nav.replaceChildren(...FP_PAGES.map(([href, key, zh]) => {
    const a = fpEl("a", zh);
    a.href = href;
    a.dataset.i18n = key;
    if (href === here) a.className = "here";
    return a;
  }));
}

async function fpSession() {
  const r = await fetch("api/session", { credentials: "same-origin" });
  if (r.status !== 200) { location.href = "index.html"; return false; }
  const s = await r.json();
  fpCsrf = s.csrf_token;
  document.getElementById("who").textContent = s.user + " (" + s.roles + ")";
  document.getElementById("logout").addEventListener("click", async () => {
    await fpApi("POST", "api/logout");
    location.href = "index.html";
  });
  return true;
}

fpMenu();
