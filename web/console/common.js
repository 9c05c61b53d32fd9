/* common.js — what every signed-in page shares: the header (title from
 * FP_PAGES by <body data-page>, who is signed in, the language switch,
 * sign-out) and the page menu, drawn here so each page's HTML holds only
 * its own content; the session (GET /console/api/session, which also gives
 * the CSRF token every change must send; no session: back to the sign-in
 * page); and fpApi() for the /v1 routes through the session cookie. */
"use strict";
let fpCsrf = "";

const FP_PAGES = [
  ["overview.html", "overview", "概览"], ["invoices.html", "invoices", "发票"],
  ["red-forms.html", "redforms", "红字确认单"], ["deliveries.html", "deliveries", "投递"],
  ["audit.html", "audit", "审计日志"], ["credentials.html", "credentials", "凭据"],
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

/* Runs before i18n.js's DOMContentLoaded handler, which translates the
 * data-i18n texts and wires the #lang button drawn here. */
function fpChrome() {
  const page = FP_PAGES.find((p) => p[1] === document.body.dataset.page) || FP_PAGES[0];
  const h1 = fpEl("h1", page[2]);
  h1.dataset.i18n = page[1];
  const lang = fpEl("button", "English");
  lang.id = "lang";
  const out = fpEl("button", "退出");
  out.id = "logout";
  out.dataset.i18n = "logout";
  const who = fpEl("span");
  who.id = "who";
  for (const b of [lang, out]) b.type = "button";
  const header = fpEl("header");
  header.append(h1, who, lang, out);
  const nav = fpEl("nav");
  nav.id = "menu";
  nav.append(...FP_PAGES.map(([href, key, zh]) => {
    const a = fpEl("a", zh);
    a.href = href;
    a.dataset.i18n = key;
    if (href === page[0]) a.className = "here";
    return a;
  }));
  document.body.prepend(header, nav);
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

fpChrome();
