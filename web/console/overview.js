/* overview.js — the overview page: who is signed in (common.js), the
 * service's readiness (/readyz) polled every 5 s, and a chart of its checks
 * (Debian's Chart.js, /console/vendor/chart.js). */
"use strict";
const fpPoints = [];
let fpChart = null;

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
  fpPoll();
  setInterval(fpPoll, 5000);
});
