/* overview.js — the overview page: who is signed in (GET
 * /console/api/session, which also gives the CSRF token every change must
 * send), the service's readiness (/readyz) polled every 5 s, and a chart
 * of its checks (Debian's Chart.js, /console/vendor/chart.js). */
"use strict";
let fpCsrf = "";
const fpPoints = [];
let fpChart = null;

async function fpSession() {
  const r = await fetch("api/session", { credentials: "same-origin" });
  if (r.status !== 200) { location.href = "index.html"; return false; }
  const s = await r.json();
  fpCsrf = s.csrf_token;
  document.getElementById("who").textContent = s.user + " (" + s.roles + ")";
  return true;
}

async function fpPoll() {
  const r = await fetch("/readyz", { credentials: "same-origin" });
  const doc = await r.json().catch(() => ({ checks: [] }));
  const checks = doc.checks || [];
  document.getElementById("status").textContent = doc.status || String(r.status);
  document.getElementById("checks").replaceChildren(...checks.map((c) => {
    const li = document.createElement("li");
    li.textContent = c.name + ": " + (c.ok ? fpI18n.t("ok", "正常") : fpI18n.t("failing", "异常"));
    li.className = c.ok ? "ok" : "failing";
    return li;
  }));
  fpPoints.push({ t: new Date().toLocaleTimeString(), bad: checks.filter((c) => !c.ok).length });
  if (fpPoints.length > 60) fpPoints.shift();
  if (typeof Chart === "undefined") return;
  const data = { labels: fpPoints.map((p) => p.t),
                 datasets: [{ label: fpI18n.t("failing", "异常"), data: fpPoints.map((p) => p.bad) }] };
  if (!fpChart) fpChart = new Chart(document.getElementById("chart"), { type: "line", data,
    options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
  else { fpChart.data = data; fpChart.update(); }
}

document.addEventListener("DOMContentLoaded", async () => {
  if (!(await fpSession())) return;
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("api/logout", { method: "POST", credentials: "same-origin",
                                headers: { "X-CSRF-Token": fpCsrf } });
    location.href = "index.html";
  });
  fpPoll();
  setInterval(fpPoll, 5000);
});
