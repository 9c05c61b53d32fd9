/* i18n.js — Chinese first, English on request (kept in localStorage).
 * Elements name their text with data-i18n; the Chinese is in the HTML. */
"use strict";
const FP_EN = {
  title: "Invoicing console", user: "User", password: "Password", totp: "One-time code (6 digits)",
  enrol: "First sign-in: enrolment token", signin: "Sign in",
  enrolled: "Scan the QR code with your authenticator",
  recovery: "Recovery codes (shown once: keep them safe)",
  overview: "Overview", logout: "Sign out", health: "Service status", chart: "Recent readiness checks",
  ok: "ok", failing: "failing", bad: "Wrong user, password or code",
  throttled: "Too many attempts; retry in", seconds: "s", again: "Sign in with your one-time code now",
  invoices: "Invoices", redforms: "Red forms", deliveries: "Deliveries", audit: "Audit log",
  credentials: "Credentials",
  number: "Invoice number", serial: "Serial", buyer_tax_id: "Buyer tax id", from: "Issued from",
  to: "to", search: "Search", issued_at: "Issued at", buyer: "Buyer", total_amount: "Amount",
  total_tax: "Tax", total_with_tax: "Total with tax", status: "Status", remark: "Remark",
  more: "More", detail: "Invoice", item: "Item", quantity: "Quantity", amount: "Amount",
  tax_rate: "Tax rate", tax: "Tax", pdf: "PDF preview (new tab)", xml: "Download XML",
  none: "No invoice matches",
  form_id: "Red form id", open: "Open", redform: "Red form", state: "State",
  line: "Line", confirm: "Confirm", reject: "Reject", withdraw: "Withdraw",
  blue_number: "Blue invoice", reason: "Reason", initiated_by: "Initiated by",
  red_number: "Red invoice", done: "Done:",
  st_dead: "dead letters", st_pending: "pending", st_running: "running", st_blocked: "blocked",
  st_done: "done", st_all: "all", refresh: "Refresh", job: "Job", kind: "Kind",
  attempts: "Attempts", last_error: "Last error", redrive: "Re-drive",
  redriven: "Re-driven: job", nojobs: "No job in this state",
  actor: "Actor", action: "Action", target: "Target", outcome: "Outcome", filter: "Filter",
  shown: "Shown", older: "Load older records", time: "Time (CST)", client_ip: "Client address",
};
const fpI18n = {
  lang: localStorage.getItem("fp-lang") || "zh",
  t(key, zh) { return this.lang === "en" && FP_EN[key] ? FP_EN[key] : zh; },
  apply() {
    document.documentElement.lang = this.lang === "en" ? "en" : "zh-CN";
    for (const el of document.querySelectorAll("[data-i18n]")) {
      if (!el.dataset.zh) el.dataset.zh = el.textContent;
      el.textContent = this.t(el.dataset.i18n, el.dataset.zh);
    }
    const b = document.getElementById("lang");
    if (b) b.textContent = this.lang === "en" ? "中文" : "English";
  },
};
document.addEventListener("DOMContentLoaded", () => {
  fpI18n.apply();
  const b = document.getElementById("lang");
  if (b) b.addEventListener("click", () => {
    fpI18n.lang = fpI18n.lang === "en" ? "zh" : "en";
    localStorage.setItem("fp-lang", fpI18n.lang);
    fpI18n.apply();
  });
});
