/* audit.js — the audit log (GET /v1/audit, newest first, pages of 200
 * through next_before; audit:read: a seller's auditor sees its seller's
 * records, an operator-auditor all).  The filters (actor, action, target,
 * outcome: a part of the text) apply to the records loaded so far; "load
 * older" fetches the next page.  Verifying the hash chain is `fapiao audit
 * verify` (docs/audit.md): there is no HTTP route for it. */
"use strict";
const $ = (id) => document.getElementById(id);
const fpRecords = [];
let fpBefore = null;

function fpTime(ts) {
  /* China Standard Time, whatever the browser's zone */
  return new Date((ts + 8 * 3600) * 1000).toISOString().replace("T", " ").slice(0, 19);
}

function fpFilter() {
  const want = { actor: $("q-actor").value.trim(), action: $("q-action").value.trim(),
                 target: $("q-target").value.trim(), outcome: $("q-outcome").value.trim() };
  const shown = fpRecords.filter((r) =>
    Object.entries(want).every(([k, v]) => !v || String(r[k] || "").includes(v)));
  $("records").tBodies[0].replaceChildren(...shown.map((r) => {
    const tr = fpEl("tr");
    for (const v of [r.id, fpTime(r.ts), r.actor, r.action, r.target, r.outcome, r.client_ip])
      tr.appendChild(fpEl("td", v));
    return tr;
  }));
  $("count").textContent = shown.length;
  $("loaded").textContent = fpRecords.length;
}

async function fpLoad() {
  const res = await fpApi("GET", "/v1/audit?limit=200" + (fpBefore ? "&before=" + fpBefore : ""));
  if (res.status !== 200) { $("message").textContent = fpProblem(res); return; }
  fpRecords.push(...(res.doc.records || []));
  fpBefore = res.doc.next_before;
  $("more").hidden = fpBefore === null || fpBefore === undefined;
  fpFilter();
}

document.addEventListener("DOMContentLoaded", async () => {
  if (!(await fpSession())) return;
  $("filter").addEventListener("submit", (ev) => { ev.preventDefault(); fpFilter(); });
  $("more").addEventListener("click", fpLoad);
  fpLoad();
});
