/* handlers_token.c — credentials: POST /v1/token (a client secret for a
 * bearer token) and POST /v1/credentials/rotate (docs/security.md). */
#include "internal.h"
#include "audit_queue.h"
#include "client_cache.h"
#include "fapiao/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum MHD_Result fp_h_token(fp_req *r)
{
    fp_server *s = r->srv;
    int wait_s = 0;
    if (fp_auth_gate_blocked(r, &wait_s)) { /* before any secret is hashed */
        r->retry_after = wait_s;
        return fp_problem(r, FPC_AUTH_FAILURES_LIMITED, NULL, NULL, NULL);
    }
    enum MHD_Result answered;
    cJSON *doc = fp_req_json_body(r, 4, &answered);
    if (!doc)
        return answered;
    fp_errors es = {0};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(doc, "client_id");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(doc, "client_secret");
    if (!cJSON_IsObject(doc)) {
        fp_errors_add(&es, FPC_FIELD_TYPE, "", "请求体必须是 JSON 对象",
                      "The body must be a JSON object");
    } else {
        for (const cJSON *c = doc->child; c; c = c->next)
            if (strcmp(c->string, "client_id") && strcmp(c->string, "client_secret"))
                fp_errors_add(&es, FPC_UNKNOWN_FIELD, c->string, NULL, NULL);
        if (!id)
            fp_errors_add(&es, FPC_FIELD_REQUIRED, "client_id", NULL, NULL);
        else if (!cJSON_IsString(id))
            fp_errors_add(&es, FPC_FIELD_TYPE, "client_id", NULL, NULL);
        if (!sec)
            fp_errors_add(&es, FPC_FIELD_REQUIRED, "client_secret", NULL, NULL);
        else if (!cJSON_IsString(sec))
            fp_errors_add(&es, FPC_FIELD_TYPE, "client_secret", NULL, NULL);
    }
    if (es.n > 0) {
        cJSON_Delete(doc);
        return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    }
    /* the id tried, for the audit record of a failure (bounded, only the
     * characters an id may have) */
    fp_client_id_sanitize(id->valuestring, r->attempted_id);
    if (!fp_client_id_valid(id->valuestring)) {
        /* no such client can exist, but the attempt is worth a record (the
         * '|' injection of issue 13 looked like this); a 400 is not
         * audited by fp_problem */
        r->auth_gated = 1;
        fp_auth_gate g = fp_auth_gate_failure(r, &wait_s);
        cJSON_Delete(doc);
        if (g == FP_AUTH_GATE_LIMITED) {
            r->retry_after = wait_s;
            return fp_problem(r, FPC_AUTH_FAILURES_LIMITED, NULL, NULL, NULL);
        }
        if (g == FP_AUTH_GATE_COUNT) {
            r->log_suppressed = 1;
            fp_audit_queue_count(s->audit_q, r->client_ip, "auth.failure", "INVALID_FIELD");
        } else {
            fp_audit_queue_add(s->audit_q, r->attempted_id, "auth.failure", "POST /v1/token",
                               r->rid, r->client_ip, "INVALID_FIELD", 0, r->client_rid);
        }
        fp_errors_add(&es, FPC_INVALID_FIELD, "client_id",
                      "client_id 须为 1–64 个字符（A-Z a-z 0-9 . _ -）",
                      "client_id is 1-64 characters of A-Z a-z 0-9 . _ -");
        return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    }
    fp_client_info c;
    memset(&c, 0, sizeof c);
    int rc = fp_store_client_check_secret(s->o.store, id->valuestring, sec->valuestring,
                                          (int64_t)time(NULL), &c);
    cJSON_Delete(doc);
    r->attempted_seller = rc == 0 || rc == FP_ECRYPTO ? c.seller_id : 0;
    if (rc == FP_EIO)
        return fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
    if (rc < 0)
        return fp_problem(r, FPC_UNAUTHENTICATED, "client_id 或 client_secret 错误",
                          "Wrong client_id or client_secret", NULL);
    /* the same checks as every bearer request: revoked, allowlist, bound
     * client certificate (authz.c) */
    fp_cached_client cc;
    memset(&cc, 0, sizeof cc);
    snprintf(cc.client_id, sizeof cc.client_id, "%s", c.client_id);
    cc.seller_id = c.seller_id;
    cc.roles = c.roles;
    cc.revoked = c.revoked_at != 0;
    if (c.allowed_ips[0]) {
        cc.has_allowlist = 1;
        if (fp_allowlist_parse(c.allowed_ips, &cc.allow, NULL, 0) < 0)
            cc.allow.n = 0;
    }
    snprintf(cc.cert_sha256, sizeof cc.cert_sha256, "%s", c.cert_sha256);
    enum MHD_Result res;
    if (fp_authorize_client(r, &cc, 1, &res))
        return res;
    fp_token_claims cl = {0};
    snprintf(cl.client_id, sizeof cl.client_id, "%s", c.client_id);
    cl.seller_id = c.seller_id;
    cl.expires = (int64_t)time(NULL) + s->o.token_ttl;
    cl.secret_id = c.matched_secret_id; /* the token dies with this secret */
    char tok[FP_TOKEN_MAX];
    if (fp_token_issue(s->o.token_key, &cl, tok) < 0)
        return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    r->claims = cl;
    fp_buf b;
    fp_jw w;
    fp_jw_start(&w, &b, 4096);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "access_token", tok);
    fp_jw_kstr(&w, "token_type", "Bearer");
    fp_jw_kint(&w, "expires_in", s->o.token_ttl);
    char roles[64];
    fp_roles_format(c.roles, roles, sizeof roles);
    fp_jw_kstr(&w, "scope", roles);
    fp_jw_obj_close(&w);
    return fp_respond_buf(r, 200, &b);
}

/* POST /v1/credentials/rotate {"client_secret": "...", "overlap_seconds": N}:
 * the caller gets a new secret (shown once); its newest current secret
 * stays valid for the overlap (default 24 h, at most 30 days), so a fleet
 * of clients can switch over, and older ones end now (at most two live).
 * The body must hold one of the caller's current secrets: a token alone
 * (stolen: it lives an hour) must not be able to make itself a permanent
 * credential and lock the owner out (issue 13; docs/security.md).  An
 * operator rotates any client with `fapiao keys rotate`.  Clients rotate
 * themselves this way every 72 h or sooner. */
enum MHD_Result fp_h_rotate_secret(fp_req *r)
{
    int64_t overlap = 86400;
    char current[FP_SECRET_LEN + 1] = "";
    enum MHD_Result answered;
    cJSON *doc = fp_req_json_body(r, 4, &answered);
    if (!doc)
        return answered;
    fp_errors es = {0};
    if (!cJSON_IsObject(doc)) {
        fp_errors_add(&es, FPC_FIELD_TYPE, "", "请求体必须是 JSON 对象",
                      "The body must be a JSON object");
    } else {
        for (const cJSON *c = doc->child; c; c = c->next)
            if (strcmp(c->string, "overlap_seconds") && strcmp(c->string, "client_secret"))
                fp_errors_add(&es, FPC_UNKNOWN_FIELD, c->string, NULL, NULL);
        fp_req_overlap(doc, &overlap, &es);
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(doc, "client_secret");
        if (!sec)
            fp_errors_add(&es, FPC_FIELD_REQUIRED, "client_secret",
                          "轮换密钥须提供当前的 client_secret",
                          "Rotating needs the current client_secret");
        else if (!cJSON_IsString(sec))
            fp_errors_add(&es, FPC_FIELD_TYPE, "client_secret", NULL, NULL);
        else
            snprintf(current, sizeof current, "%s", sec->valuestring);
    }
    cJSON_Delete(doc);
    if (es.n)
        return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    int64_t now = (int64_t)time(NULL);
    fp_client_info ci;
    memset(&ci, 0, sizeof ci);
    int rc = fp_store_client_check_secret(r->srv->o.store, r->claims.client_id, current, now, &ci);
    explicit_bzero(current, sizeof current);
    if (rc == FP_EIO)
        return fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
    if (rc < 0)
        return fp_problem(r, FPC_UNAUTHENTICATED, "client_secret 不是此凭据的当前密钥",
                          "client_secret is not a current secret of this credential", NULL);
    char secret[FP_SECRET_LEN + 1];
    if (fp_secret_generate(secret) < 0)
        return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    fp_err err = {0};
    fp_audit_rec a = fp_req_audit(r, "credentials.rotate");
    rc = fp_store_client_rotate(r->srv->o.store, r->claims.client_id, secret, now, overlap, &a,
                                &err);
    if (rc == FP_ENOTFOUND)
        return fp_problem(r, FPC_UNAUTHENTICATED, "访问令牌所属的客户端不存在（未知客户端）",
                          "The token's client does not exist (unknown client)", NULL);
    if (rc == FP_ECONFLICT)
        return fp_problem(r, FPC_UNAUTHENTICATED, "凭据已吊销", "The credential has been revoked",
                          NULL);
    if (rc < 0)
        return fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
    enum MHD_Result res =
        fp_secret_answer(r, 200, r->claims.client_id, secret, NULL, now + overlap);
    explicit_bzero(secret, sizeof secret);
    return res;
}
