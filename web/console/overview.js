/* overview.js — the overview page (docs/console.md "Overview"): the
 * service's readiness (/readyz, every 2 s, so a degraded state shows
 * within 5 s), the alerts active now and the metrics history of the last
 * hour or day (GET /console/api/overview, every 10 s: the server samples
 * every 5 s) drawn with Debian's Chart.js (/console/vendor/chart.js). */
"use strict";
Object.assign(FP_EN, {
  alerts: "Alerts", no_alerts: "No alert is active", history: "Metrics history",
  last_hour: "Last hour", last_day: "Last day", chart: "Issued, errors and 429s (per second)",
  chart_p99: "Issuing latency p99 (ms)", chart_health: "Degraded and failing checks",
  s_ok: "Healthy", s_degraded: "Degraded", issued: "issued", errors: "5xx errors",
  refused: "429 refused", p99: "p99 ms", degraded: "degraded", failing_checks: "failing checks",
  firing: "firing", pending: "pending", no_history: "No metrics history on this server",
});
const FP_READY_MS = 2000, FP_HISTORY_MS = 10000;
const fpCharts = {};
let fpRange = "hour";

async function fpPollReady() {
  const r = await fetch("/readyz", { credentials: "same-origin" }).catch(() => null);
  const doc = r ? await r.json().catch(() => ({})) : {};
  const checks = doc.checks || [];
  const healthy = r !== null && r.status === 200;
  const st = document.getElementById("status");
  st.textContent = healthy ? fpI18n.t("s_ok", "正常") : fpI18n.t("s_degraded", "降级");
  st.className = "state " + (healthy ? "ok" : "degraded");
  st.dataset.state = healthy ? "ok" : "degraded";
  document.getElementById("checks").replaceChildren(...checks.map((c) => fpEl("li",
    c.name + ": " + (c.ok ? fpI18n.t("ok", "正常") : fpI18n.t("failing", "异常")),
    c.ok ? "ok" : "failing")));
}

function fpSummary(a) {
  const s = fpI18n.lang === "en" ? a.summary_en : a.summary_zh;
  return (s || "").replace(/\{\{\s*\$labels\.[a-z_]+\s*\}\}\s*/g, "");
}

function fpDrawAlerts(alerts) {
  document.getElementById("alerts").replaceChildren(...alerts.map((a) => {
    const li = fpEl("li", "[" + a.severity + "] " + a.name + " (" +
      fpI18n.t(a.state, a.state === "firing" ? "触发中" : "待定") + ") " + fpSummary(a), a.state);
    li.dataset.name = a.name;
    return li;
  }));
  document.getElementById("no-alerts").hidden = alerts.length > 0;
}

function fpLine(key, zh, data, color) {
  return { label: fpI18n.t(key, zh), data, borderColor: color, backgroundColor: color,
           spanGaps: false, pointRadius: 2, borderWidth: 1.5 };
}

function fpDraw(id, labels, datasets) {
  if (typeof Chart === "undefined") return;
  const data = { labels, datasets };
  if (!fpCharts[id]) {
    fpCharts[id] = new Chart(document.getElementById(id), { type: "line", data,
      options: { animation: false, scales: { y: { beginAtZero: true } } } });
  } else {
    fpCharts[id].data = data;
    fpCharts[id].update();
  }
}

async function fpPollHistory() {
  const res = await fpApi("GET", "/console/api/overview?range=" + fpRange);
  if (res.status !== 200) {
    document.getElementById("history-note").textContent = fpProblem(res);
    return;
  }
  const d = res.doc;
  document.getElementById("history-note").textContent =
    d.history ? "" : fpI18n.t("no_history", "此服务器没有指标历史");
  if (!d.history) return;
  fpDrawAlerts(d.alerts || []);
  const fmt = d.range === "day" ? { hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  const labels = d.t.map((t) => new Date(t).toLocaleTimeString("zh-CN", fmt));
  fpDraw("chart", labels, [fpLine("issued", "开票", d.issued_per_s, "#2a6"),
                           fpLine("errors", "5xx 错误", d.errors_per_s, "#c33"),
                           fpLine("refused", "429 拒绝", d.refused_per_s, "#d90")]);
  fpDraw("chart-p99", labels, [fpLine("p99", "p99 毫秒", d.p99_ms, "#36c")]);
  fpDraw("chart-health", labels, [fpLine("degraded", "降级", d.degraded, "#c33"),
                                  fpLine("failing_checks", "失败的检查", d.failing_checks, "#888")]);
}

function fpSetRange(range) {
  fpRange = range;
  for (const r of ["hour", "day"])
    document.getElementById("range-" + r).classList.toggle("here", r === range);
  fpPollHistory();
}

document.addEventListener("DOMContentLoaded", async () => {
  if (!(await fpSession())) return;
  document.getElementById("range-hour").addEventListener("click", () => fpSetRange("hour"));
  document.getElementById("range-day").addEventListener("click", () => fpSetRange("day"));
  fpPollReady();
  fpPollHistory();
  setInterval(fpPollReady, FP_READY_MS);
  setInterval(fpPollHistory, FP_HISTORY_MS);
});
