/* login.js — POST /console/api/login: password + TOTP, or at the first
 * sign-in password + enrolment token (the answer: the TOTP QR code and
 * recovery codes, shown once). */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { user: $("user").value, password: $("password").value };
    if ($("enrol").value) body.enrol_token = $("enrol").value; else body.totp = $("totp").value;
    const r = await fetch("api/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const doc = await r.json().catch(() => ({}));
    if (r.status === 200) { location.href = "overview.html"; return; }
    if (r.status === 201) {
      $("qr").src = "data:image/png;base64," + doc.qr_png_base64;
      $("uri").textContent = doc.otpauth_uri;
      $("codes").replaceChildren(...doc.recovery_codes.map((c) => {
        const li = document.createElement("li"); li.textContent = c; return li; }));
      $("enrolled").hidden = false;
      $("enrol").value = "";
      $("message").textContent = fpI18n.t("again", "现在请用动态口令登录");
      return;
    }
    $("message").textContent = r.status === 429
      ? fpI18n.t("throttled", "尝试次数过多，请稍后重试：") + " " + r.headers.get("Retry-After") + fpI18n.t("seconds", " 秒")
      : (fpI18n.lang === "en" ? doc.message_en : doc.message_zh) || fpI18n.t("bad", "登录失败");
  });
});
