/* credentials.js — the seller's API credentials (docs/console.md
 * "Credentials"): the list (GET /v1/admin/credentials: never a secret),
 * create (POST /v1/admin/credentials), rotate with an overlap for the old
 * secret (POST …/{id}/rotate) and revoke (POST …/{id}/revoke), all with
 * the CSRF token through fpApi.  A new secret is shown once, with a copy
 * button and a warning, and cleared from the page when closed.  The routes
 * need credentials:admin (the admin role): any other role sees the API's
 * 403 here, in the chosen language. */
"use strict";
const $ = (id) => document.getElementById(id);

Object.assign(FP_EN, {
  secret_once: "The secret is shown only now: copy it and keep it safe. It cannot be shown " +
    "again once closed; a lost secret means a new rotation.",
  client_id: "Client id", client_secret: "Secret", old_until: "Old secret valid until (CST)",
  copy: "Copy the secret", saved: "Saved: close", copied_ok: "Copied",
  list: "This seller's API credentials", roles: "Roles", created: "Created",
  rotated: "Last rotated", allowed_ips: "Allowed addresses", act: "Rotate or revoke",
  overlap: "Old secret stays valid", ov_day: "24 hours", ov_hour: "1 hour", ov_week: "7 days",
  ov_now: "ends now", rotate: "Rotate", revoke: "Revoke", create: "Create a credential",
  client_id_opt: "Client id (optional)", r_issuer: "issuer", r_reviewer: "reviewer",
  r_auditor: "auditor", create_btn: "Create",
  cli_note: "Admin and instance-wide credentials are managed with fapiao keys on the server.",
  active: "active", revoked: "revoked", due: "rotation due", cli_only: "fapiao keys only",
  sure_revoke: "Revoke this credential? Its tokens stop within a second.",
  revoked_ok: "Revoked:", none_cred: "No credential yet",
});

function fpCst(ts) {
  if (!ts) return "";
  return new Date(ts * 1000).toLocaleString("sv-SE", { timeZone: "Asia/Shanghai" });
}

function fpShowSecret(doc) {
  $("secret-id").textContent = doc.client_id;
  $("secret").textContent = doc.client_secret;
  $("secret-until").textContent = doc.previous_secrets_valid_until === undefined ? "—"
    : fpCst(doc.previous_secrets_valid_until);
  $("copied").textContent = "";
  $("secret-box").hidden = false;
}

function fpCredRow(c) {
  const tr = fpEl("tr");
  tr.id = "cred-" + c.client_id;
  const state = fpI18n.t(c.state, c.state === "active" ? "有效" : "已吊销") +
    (c.rotation_due ? " · " + fpI18n.t("due", "需轮换") : "");
  for (const v of [c.client_id, c.roles, state, fpCst(c.created_at), fpCst(c.last_rotated_at),
                   c.allowed_ips])
    tr.appendChild(fpEl("td", v));
  const td = tr.appendChild(fpEl("td"));
  if (!c.managed_here) {
    td.appendChild(fpEl("span", fpI18n.t("cli_only", "仅限 fapiao keys")));
  } else if (c.state === "active") {
    const b = fpEl("button", fpI18n.t("rotate", "轮换密钥"), "rotate");
    b.type = "button";
    b.addEventListener("click", () => { $("a-id").value = c.client_id; fpRotate(); });
    const v = fpEl("button", fpI18n.t("revoke", "吊销"), "revoke");
    v.type = "button";
    v.addEventListener("click", () => { $("a-id").value = c.client_id; fpRevoke(); });
    td.append(b, v);
  }
  return tr;
}

async function fpList() {
  const res = await fpApi("GET", "/v1/admin/credentials");
  if (res.status !== 200) { $("message").textContent = fpProblem(res); return false; }
  const rows = (res.doc.credentials || []).map(fpCredRow);
  $("credentials").tBodies[0].replaceChildren(...rows);
  if (!rows.length) $("message").textContent = fpI18n.t("none_cred", "还没有凭据");
  return true;
}

async function fpRotate() {
  const id = $("a-id").value.trim();
  const res = await fpApi("POST", "/v1/admin/credentials/" + encodeURIComponent(id) + "/rotate",
                          { overlap_seconds: Number($("a-overlap").value) });
  if (res.status !== 200) { $("message").textContent = fpProblem(res); return; }
  $("message").textContent = "";
  fpShowSecret(res.doc);
  fpList();
}

async function fpRevoke() {
  const id = $("a-id").value.trim();
  if (!window.confirm(fpI18n.t("sure_revoke", "确定吊销此凭据？其访问令牌约一秒内失效。") +
                      "\n" + id)) return;
  const res = await fpApi("POST", "/v1/admin/credentials/" + encodeURIComponent(id) + "/revoke");
  if (res.status !== 200) { $("message").textContent = fpProblem(res); return; }
  if (await fpList()) $("message").textContent = fpI18n.t("revoked_ok", "已吊销：") + " " + id;
}

async function fpCreate() {
  const roles = ["issuer", "reviewer", "auditor"].filter((r) => $("c-" + r).checked);
  const body = { roles: roles.join(",") };
  if ($("c-id").value.trim()) body.client_id = $("c-id").value.trim();
  if ($("c-ips").value.trim()) body.allowed_ips = $("c-ips").value.trim();
  const res = await fpApi("POST", "/v1/admin/credentials", body);
  if (res.status !== 201) { $("message").textContent = fpProblem(res); return; }
  $("message").textContent = "";
  fpShowSecret(res.doc);
  fpList();
}

document.addEventListener("DOMContentLoaded", async () => {
  if (!(await fpSession())) return;
  $("act").addEventListener("submit", (ev) => { ev.preventDefault(); fpRotate(); });
  $("revoke").addEventListener("click", fpRevoke);
  $("create").addEventListener("submit", (ev) => { ev.preventDefault(); fpCreate(); });
  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("secret").textContent);
      $("copied").textContent = fpI18n.t("copied_ok", "已复制");
    } catch (e) { /* no clipboard (http, or refused): select it for Ctrl+C */
      window.getSelection().selectAllChildren($("secret"));
    }
  });
  $("saved").addEventListener("click", () => {
    $("secret").textContent = "";
    $("secret-box").hidden = true;
  });
  fpList();
});
