/* handlers_console.c — the console's HTTP side (docs/console.md): login,
 * logout and the session's own view under /console/api/, the session
 * cookie as an alternative to a bearer token on the /v1 routes, and the
 * static files of /console/.  The people side (passwords, TOTP, delays,
 * sessions) is src/console/ (console.h).
 *
 * The cookie: HttpOnly; Secure; SameSite=Strict; Path=/.  SameSite does
 * not stop a page served by another port of the same host (same site), so
 * every request that changes state must also carry the session's CSRF
 * token in X-CSRF-Token, which only the console's own pages can read
 * (GET /console/api/session, same origin). */
#include "internal.h"

#include "audit_queue.h"
#include "fapiao/console.h"
#include "fapiao/crypto.h"

#include <cjson/cJSON.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COOKIE "fp_console"

static const char *session_cookie(fp_req *r)
{
    return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, COOKIE);
}

static int is_safe_method(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD");
}

static enum MHD_Result no_console(fp_req *r)
{
    return fp_problem(r, FPC_NOT_FOUND, "未启用控制台", "The console is not enabled", NULL);
}

/* The session of the request's cookie: 0 with *who, else 1 with *res (401). */
static int need_session(fp_req *r, fp_console_who *who, enum MHD_Result *res)
{
    if (fp_console_session(r->srv->o.console, session_cookie(r), (int64_t)time(NULL), who) == 0)
        return 0;
    *res = fp_problem(r, FPC_UNAUTHENTICATED, "控制台会话不存在或已过期，请重新登录",
                      "No console session, or it expired: sign in again", NULL);
    return 1;
}

/* A state change needs the session's CSRF token in X-CSRF-Token (403). */
static int need_csrf(fp_req *r, const fp_console_who *who, enum MHD_Result *res)
{
    const char *t = fp_req_header(r, "X-CSRF-Token");
    if (t && strlen(t) == strlen(who->csrf) && fp_ct_equal(t, who->csrf, strlen(t)))
        return 0;
    *res =
        fp_problem(r, FPC_FORBIDDEN, "缺少或错误的 X-CSRF-Token（跨站请求伪造防护）",
                   "Missing or wrong X-CSRF-Token (cross-site request forgery protection)", NULL);
    return 1;
}

static void set_claims(fp_req *r, const fp_console_who *who)
{
    snprintf(r->claims.client_id, sizeof r->claims.client_id, "user:%.59s", who->user);
    r->claims.seller_id = who->seller_id;
}

int fp_console_gate(fp_req *r, enum MHD_Result *res)
{
    if (!r->srv->o.console || !session_cookie(r) || fp_req_header(r, "Authorization"))
        return 0;
    fp_console_who who;
    if (need_session(r, &who, res))
        return 1;
    set_claims(r, &who);
    if (!is_safe_method(r->method) && need_csrf(r, &who, res))
        return 1;
    if (r->route->perm == FP_PERM_NONE) { /* an API client's self-service (its own secret) */
        *res = fp_problem(r, FPC_FORBIDDEN, "控制台会话不能调用 API 客户端自身的接口",
                          "A console session cannot use an API client's own endpoints", NULL);
        return 1;
    }
    return fp_authorize_roles(r, who.roles, who.seller_id, res) ? 1 : 2;
}

/* The JSON answer of a console call with the security headers and, when
 * given, a Set-Cookie. */
static enum MHD_Result answer(fp_req *r, int status, fp_buf *b, const char *cookie)
{
    size_t len;
    char *body = fp_buf_take(b, &len);
    if (!body)
        return MHD_NO;
    const char *h[] = {FP_CONSOLE_SECURITY_HEADERS, cookie ? "Set-Cookie" : NULL, cookie, NULL};
    return fp_respond(r, status, "application/json", body, len, h);
}

enum MHD_Result fp_console_answer(fp_req *r, int status, fp_buf *b)
{
    return answer(r, status, b, NULL);
}

/* The session's view (user, roles, seller, CSRF token, end) as the answer. */
static enum MHD_Result who_answer(fp_req *r, const fp_console_who *who, const char *cookie)
{
    char roles[64];
    fp_roles_format(who->roles, roles, sizeof roles);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 4096);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "user", who->user);
    fp_jw_kstr(&w, "roles", roles);
    fp_jw_kint(&w, "seller_id", who->seller_id);
    fp_jw_kstr(&w, "csrf_token", who->csrf);
    fp_jw_kint(&w, "expires", who->expires);
    fp_jw_obj_close(&w);
    return answer(r, 200, &b, cookie);
}

static const char *jstr(const cJSON *doc, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static enum MHD_Result login_ok(fp_req *r, const fp_login_res *x)
{
    fp_console *c = r->srv->o.console;
    char cookie[160];
    snprintf(cookie, sizeof cookie,
             COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; Secure; SameSite=Strict", x->sid,
             fp_console_max_age(c));
    fp_audit_queue_add(r->srv->audit_q, r->attempted_id, "console.login", "session", r->rid,
                       r->client_ip, "ok", x->who.seller_id, r->client_rid);
    return who_answer(r, &x->who, cookie);
}

static enum MHD_Result login_enrolled(fp_req *r, const fp_login_res *x)
{
    gnutls_datum_t in = {x->qr_png, (unsigned)x->qr_len}, b64 = {NULL, 0};
    if (x->qr_png)
        gnutls_base64_encode2(&in, &b64);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 1u << 20);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "otpauth_uri", x->otpauth);
    fp_jw_kstr(&w, "qr_png_base64", b64.data ? (const char *)b64.data : "");
    fp_jw_key(&w, "recovery_codes");
    fp_jw_arr_open(&w);
    for (int i = 0; i < FP_RECOVERY_CODES; i++)
        fp_jw_str(&w, x->recovery[i]);
    fp_jw_arr_close(&w);
    fp_jw_obj_close(&w);
    gnutls_free(b64.data);
    return answer(r, 201, &b, NULL);
}

static enum MHD_Result login_answer(fp_req *r, const fp_login_res *x)
{
    switch (x->st) {
    case FP_LOGIN_OK:
        return login_ok(r, x);
    case FP_LOGIN_ENROLLED:
        return login_enrolled(r, x);
    case FP_LOGIN_THROTTLED:
    case FP_LOGIN_BUSY: {
        char zh[160], en[160];
        r->retry_after = x->retry_after;
        fp_audit_queue_count(r->srv->audit_q, r->client_ip, "console.login", x->why);
        snprintf(zh, sizeof zh, "%s，请在 %d 秒后重试",
                 x->st == FP_LOGIN_BUSY ? "登录请求过多" : "登录失败次数过多", x->retry_after);
        snprintf(en, sizeof en, "%s; retry in %d s",
                 x->st == FP_LOGIN_BUSY ? "Too many logins at once" : "Too many failed logins",
                 x->retry_after);
        return fp_problem(r, FPC_RATE_LIMITED, zh, en, NULL);
    }
    case FP_LOGIN_BAD:
        return fp_problem(r, FPC_UNAUTHENTICATED, "用户名、密码或动态口令错误",
                          "Wrong user, password or one-time code", NULL);
    default:
        return fp_problem(r, FPC_DEGRADED, "暂时无法登录", "Cannot sign in just now", NULL);
    }
}

enum MHD_Result fp_h_console_login(fp_req *r)
{
    if (!r->srv->o.console)
        return no_console(r);
    enum MHD_Result answered;
    cJSON *doc = fp_req_json_body(r, 2, &answered);
    if (!doc)
        return answered;
    fp_login_req q = {.user = jstr(doc, "user"),
                      .password = jstr(doc, "password"),
                      .totp = jstr(doc, "totp"),
                      .enrol_token = jstr(doc, "enrol_token"),
                      .recovery = jstr(doc, "recovery_code"),
                      .ip = r->client_ip,
                      .now = (int64_t)time(NULL)};
    if (!q.user || !q.password || (!q.totp && !q.enrol_token && !q.recovery) ||
        strlen(q.user) > FP_USER_NAME_MAX) {
        cJSON_Delete(doc);
        return fp_problem(
            r, FPC_FIELD_REQUIRED, "需要 user、password 与 totp（或 enrol_token、recovery_code）",
            "user, password and totp (or enrol_token, recovery_code) are required", NULL);
    }
    /* who tried, for the audit records (only the characters a name may have) */
    size_t n = snprintf(r->attempted_id, sizeof r->attempted_id, "user:%.59s", q.user);
    for (size_t i = 5; i < n && i < sizeof r->attempted_id; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789._-@", r->attempted_id[i]))
            r->attempted_id[i] = '_';
    fp_login_res x;
    fp_console_login(r->srv->o.console, &q, &x);
    if (x.st == FP_LOGIN_BAD || x.st == FP_LOGIN_OK) { /* the seller of an audited attempt */
        fp_user u;
        if (fp_store_user_get(r->srv->o.store, q.user, &u) == 0)
            r->attempted_seller = u.seller_id;
    }
    cJSON_Delete(doc); /* q's strings are doc's */
    enum MHD_Result res = login_answer(r, &x);
    fp_login_res_clear(&x);
    return res;
}

int fp_console_need_session(fp_req *r, fp_console_who *who, enum MHD_Result *res)
{
    if (r->srv->o.console)
        return need_session(r, who, res);
    *res = no_console(r);
    return 1;
}

enum MHD_Result fp_h_console_logout(fp_req *r)
{
    fp_console_who who;
    enum MHD_Result res;
    if (fp_console_need_session(r, &who, &res))
        return res;
    set_claims(r, &who);
    if (need_csrf(r, &who, &res))
        return res;
    fp_console_logout(r->srv->o.console, session_cookie(r));
    fp_audit_queue_add(r->srv->audit_q, r->claims.client_id, "console.logout", "session", r->rid,
                       r->client_ip, "ok", who.seller_id, r->client_rid);
    fp_buf b;
    fp_buf_init(&b, 64);
    fp_buf_append(&b, "{}", 2);
    return answer(r, 200, &b, COOKIE "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
}

enum MHD_Result fp_h_console_session(fp_req *r)
{
    fp_console_who who;
    enum MHD_Result res;
    if (fp_console_need_session(r, &who, &res))
        return res;
    return who_answer(r, &who, NULL);
}
