/* deliveries.js — outbox jobs by state (GET /v1/jobs?state=…, newest
 * first, pages of 50 through next_before); a dead letter has a re-drive
 * button (POST /v1/jobs/{id}/redrive with the CSRF token; jobs:redrive,
 * i.e. admin or operator: any other role sees the API's 403 here).
 * docs/webhooks.md says what a dead letter is. */
"use strict";
const $ = (id) => document.getElementById(id);
let fpBefore = null;

function fpJobRow(j) {
  const tr = fpEl("tr");
  tr.id = "job-" + j.id;
  for (const v of [j.id, j.invoice_number, j.kind + (j.event ? " / " + j.event : ""), j.state,
                   j.attempts, j.last_error])
    tr.appendChild(fpEl("td", v));
  const td = tr.appendChild(fpEl("td"));
  if (j.state === "dead") {
    const b = fpEl("button", fpI18n.t("redrive", "重新投递"), "redrive");
    b.type = "button";
    b.dataset.i18n = "redrive";
    b.addEventListener("click", async () => {
      const res = await fpApi("POST", "/v1/jobs/" + j.id + "/redrive");
      if (res.status !== 200) { $("message").textContent = fpProblem(res); return; }
      $("message").textContent = fpI18n.t("redriven", "已重新投递任务") + " " + j.id;
      tr.replaceWith(fpJobRow(res.doc));
    });
    td.appendChild(b);
  }
  return tr;
}

async function fpJobs(append) {
  const p = new URLSearchParams();
  if ($("q-state").value) p.set("state", $("q-state").value);
  if (append && fpBefore) p.set("before", fpBefore);
  const res = await fpApi("GET", "/v1/jobs?" + p.toString());
  if (res.status !== 200) { $("message").textContent = fpProblem(res); return; }
  const rows = (res.doc.jobs || []).map(fpJobRow);
  const body = $("jobs").tBodies[0];
  if (append) body.append(...rows); else body.replaceChildren(...rows);
  fpBefore = res.doc.next_before;
  $("more").hidden = fpBefore === null || fpBefore === undefined;
  $("message").textContent = body.rows.length ? "" : fpI18n.t("nojobs", "没有该状态的任务");
}

document.addEventListener("DOMContentLoaded", async () => {
  if (!(await fpSession())) return;
  $("filter").addEventListener("submit", (ev) => { ev.preventDefault(); fpJobs(false); });
  $("more").addEventListener("click", () => fpJobs(true));
  fpJobs(false);
});
