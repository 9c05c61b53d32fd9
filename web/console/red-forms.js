/* red-forms.js — one red form (红字确认单) by its id (GET
 * /v1/red-forms/{form}): its state, blue invoice and lines, and the
 * reviewer's confirm / reject / withdraw (POST …/confirm, /reject,
 * /withdraw with the CSRF token).  The API decides: a role without
 * red_forms:write or a state that does not allow the move is refused, and
 * the refusal shows here.  The states: docs/domain.md §8. */
"use strict";
const $ = (id) => document.getElementById(id);

function fpShowForm(f) {
  $("f-id").textContent = f.form_id;
  $("f-state").textContent = f.state;
  const rows = [["blue_number", "蓝字发票号码", f.blue_number], ["reason", "原因", f.reason],
                ["initiated_by", "发起方", f.initiated_by],
                ["total_with_tax", "价税合计", f.total_with_tax],
                ["red_number", "红字发票号码", f.red_number]];
  $("f-fields").replaceChildren(...rows.filter((r) => r[2] !== undefined).flatMap(([key, zh, v]) => {
    const dt = fpEl("dt", fpI18n.t(key, zh));
    dt.dataset.i18n = key;
    return [dt, fpEl("dd", v)];
  }));
  $("f-items").tBodies[0].replaceChildren(...(f.items || []).map((l) => {
    const tr = fpEl("tr");
    for (const v of [l.line, l.name, l.amount, l.tax]) tr.appendChild(fpEl("td", v));
    return tr;
  }));
  $("form").hidden = false;
}

async function fpOpenForm(id) {
  const res = await fpApi("GET", "/v1/red-forms/" + encodeURIComponent(id));
  if (res.status !== 200) { $("form").hidden = true; $("message").textContent = fpProblem(res); return; }
  $("message").textContent = "";
  fpShowForm(res.doc);
}

async function fpAct(action) {
  const id = $("f-id").textContent;
  const res = await fpApi("POST", "/v1/red-forms/" + encodeURIComponent(id) + "/" + action);
  if (res.status !== 200) { $("message").textContent = fpProblem(res); return; }
  $("message").textContent = fpI18n.t("done", "已完成：") + " " + action;
  fpShowForm(res.doc);
}

document.addEventListener("DOMContentLoaded", async () => {
  if (!(await fpSession())) return;
  $("find").addEventListener("submit", (ev) => {
    ev.preventDefault();
    fpOpenForm($("q-form").value.trim());
  });
  for (const b of document.querySelectorAll("button[data-act]"))
    b.addEventListener("click", () => fpAct(b.dataset.act));
  if (location.hash.length > 1) fpOpenForm(decodeURIComponent(location.hash.slice(1)));
});
