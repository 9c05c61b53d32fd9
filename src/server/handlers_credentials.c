/* handlers_credentials.c — an admin manages its seller's API credentials
 * over HTTP (the console's credentials page; docs/console.md
 * "Credentials", docs/security.md):
 *   GET  /v1/admin/credentials              list (never a secret)
 *   POST /v1/admin/credentials              create: the secret shown once
 *   POST /v1/admin/credentials/{id}/rotate  a new secret, shown once
 *   POST /v1/admin/credentials/{id}/revoke
 * Permission credentials:admin (the admin role).  The scope is the
 * caller's seller: another seller's credential, or an instance-wide one,
 * is "not found" (a client's seller never changes, so the check before the
 * store's change holds).  Credentials holding admin or an instance-wide
 * role stay with `fapiao keys` on the server: a stolen admin token (it
 * lives an hour) must not make itself, or another admin, a permanent
 * secret — the reason POST /v1/credentials/rotate wants the current secret
 * (issue 13).  Each change is audited in its own transaction by the store,
 * with the credential's seller, so the seller's auditor sees it. */
#include "internal.h"
#include "fapiao/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A secret older than this is due for rotation (docs/security.md). */
#define ROTATION_DUE_S (72 * 3600)

static int protected_roles(unsigned roles)
{
    return (roles & (FP_ROLE_ADMIN | FP_ROLE_INSTANCE)) != 0;
}

typedef struct list_ctx {
    fp_jw *w;
    int64_t seller, now;
    const char *want; /* find: the id looked for; list: NULL */
    fp_client_info *found;
} list_ctx;

static void on_client(const fp_client_info *c, void *arg)
{
    list_ctx *l = arg;
    if (c->seller_id != l->seller || fp_roles_instance_wide(c->roles))
        return; /* not this seller's */
    if (l->want) {
        if (!strcmp(c->client_id, l->want))
            *l->found = *c;
        return;
    }
    char roles[64];
    fp_roles_format(c->roles, roles, sizeof roles);
    fp_jw *w = l->w;
    fp_jw_obj_open(w);
    fp_jw_kstr(w, "client_id", c->client_id);
    fp_jw_kint(w, "seller_id", c->seller_id);
    fp_jw_kstr(w, "roles", roles);
    fp_jw_kstr(w, "state", c->revoked_at ? "revoked" : "active");
    fp_jw_kint(w, "created_at", c->created_at);
    if (c->revoked_at)
        fp_jw_kint(w, "revoked_at", c->revoked_at);
    fp_jw_kint(w, "last_rotated_at", c->newest_secret_at);
    fp_jw_kint(w, "active_secrets", c->active_secrets);
    if (c->old_secrets_expire_at > l->now)
        fp_jw_kint(w, "previous_secrets_valid_until", c->old_secrets_expire_at);
    fp_jw_kstr(w, "allowed_ips", c->allowed_ips[0] ? c->allowed_ips : "any");
    fp_jw_kbool(w, "rotation_due",
                !c->revoked_at && c->newest_secret_at &&
                    l->now - c->newest_secret_at > ROTATION_DUE_S);
    fp_jw_kbool(w, "managed_here", !protected_roles(c->roles)); /* else fapiao keys only */
    fp_jw_obj_close(w);
}

/* GET /v1/admin/credentials */
enum MHD_Result fp_h_credentials_list(fp_req *r)
{
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 4u << 20);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kint(&w, "seller_id", r->scope_seller);
    fp_jw_key(&w, "credentials");
    fp_jw_arr_open(&w);
    list_ctx l = {&w, r->scope_seller, (int64_t)time(NULL), NULL, NULL};
    if (fp_store_clients(r->srv->o.store, 1, on_client, &l) < 0) {
        fp_buf_free(&b);
        return fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
    }
    fp_jw_arr_close(&w);
    fp_jw_obj_close(&w);
    return fp_respond_buf(r, 200, &b);
}

/* The credential of the path, this seller's, still active and managed
 * here: 0 with *c, else 1 with the answer in *res. */
static int load_target(fp_req *r, fp_client_info *c, enum MHD_Result *res)
{
    memset(c, 0, sizeof *c);
    list_ctx l = {NULL, r->scope_seller, 0, r->param, c};
    if (fp_store_clients(r->srv->o.store, 0, on_client, &l) < 0) {
        *res = fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
        return 1;
    }
    if (!c->client_id[0]) {
        char zh[128], en[128];
        snprintf(zh, sizeof zh, "本销售方没有凭据 %s", r->param);
        snprintf(en, sizeof en, "This seller has no credential %s", r->param);
        *res = fp_problem(r, FPC_NOT_FOUND, zh, en, NULL);
        return 1;
    }
    if (protected_roles(c->roles)) {
        *res = fp_problem(r, FPC_CREDENTIAL_PROTECTED, NULL, NULL, NULL);
        return 1;
    }
    if (c->revoked_at) {
        *res = fp_problem(r, FPC_CREDENTIAL_STATE, NULL, NULL, NULL);
        return 1;
    }
    return 0;
}

/* The record of a change to credential c, with c's seller (its auditor
 * sees it); written by the store in the change's transaction. */
static fp_audit_rec change_audit(const fp_req *r, const char *action, const fp_client_info *c)
{
    fp_audit_rec a = fp_req_audit(r, action);
    a.target = c->client_id;
    a.seller_id = c->seller_id;
    a.client_request_id = r->client_rid;
    return a;
}

/* The answer that shows a new secret once (never cached). */
enum MHD_Result fp_secret_answer(fp_req *r, int status, const char *client_id, const char *secret,
                                 const char *roles, int64_t previous_until)
{
    fp_buf b;
    fp_jw w;
    fp_jw_start(&w, &b, 4096);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "client_id", client_id);
    fp_jw_kstr(&w, "client_secret", secret);
    if (roles)
        fp_jw_kstr(&w, "roles", roles);
    if (previous_until >= 0)
        fp_jw_kint(&w, "previous_secrets_valid_until", previous_until);
    fp_jw_obj_close(&w);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    if (!body)
        return MHD_NO;
    const char *h[] = {"Cache-Control", "no-store", NULL};
    return fp_respond(r, status, "application/json", body, len, h);
}

void fp_req_overlap(const cJSON *doc, int64_t *overlap, fp_errors *es)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(doc, "overlap_seconds");
    if (o && (!cJSON_IsNumber(o) || o->valuedouble < 0 || o->valuedouble > 30 * 86400 ||
              o->valuedouble != (double)o->valueint))
        fp_errors_add(es, FPC_INVALID_FIELD, "overlap_seconds", "须为 0 到 2592000 的整数秒",
                      "must be 0-2592000 whole seconds");
    else if (o)
        *overlap = o->valueint;
}

static const char *opt_str(const cJSON *doc, const char *key, fp_errors *es)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (v && !cJSON_IsString(v)) {
        fp_errors_add(es, FPC_FIELD_TYPE, key, NULL, NULL);
        return NULL;
    }
    return v ? v->valuestring : NULL;
}

/* Only the named fields, in an object. */
static void only_fields(const cJSON *doc, const char *const *names, fp_errors *es)
{
    if (!cJSON_IsObject(doc)) {
        fp_errors_add(es, FPC_FIELD_TYPE, "", "请求体必须是 JSON 对象",
                      "The body must be a JSON object");
        return;
    }
    for (const cJSON *c = doc->child; c; c = c->next) {
        int known = 0;
        for (int i = 0; names[i]; i++)
            known |= !strcmp(c->string, names[i]);
        if (!known)
            fp_errors_add(es, FPC_UNKNOWN_FIELD, c->string, NULL, NULL);
    }
}

/* The create body's checks into c (roles, client_id, allowed_ips). */
static void create_fields(const cJSON *doc, fp_client_info *c, fp_errors *es)
{
    static const char *const names[] = {"roles", "client_id", "allowed_ips", NULL};
    only_fields(doc, names, es);
    if (es->n)
        return;
    const char *roles = opt_str(doc, "roles", es);
    const char *id = opt_str(doc, "client_id", es);
    const char *ips = opt_str(doc, "allowed_ips", es);
    if (!roles && !cJSON_GetObjectItemCaseSensitive(doc, "roles"))
        fp_errors_add(es, FPC_FIELD_REQUIRED, "roles", NULL, NULL);
    else if (roles && fp_roles_parse(roles, &c->roles) < 0)
        fp_errors_add(es, FPC_INVALID_FIELD, "roles",
                      "须为 issuer、reviewer、auditor 中的一个或多个（逗号分隔）",
                      "must be one or more of issuer, reviewer, auditor (comma-separated)");
    if (id && !fp_client_id_valid(id))
        fp_errors_add(es, FPC_INVALID_FIELD, "client_id",
                      "client_id 须为 1–64 个字符（A-Z a-z 0-9 . _ -）",
                      "client_id is 1-64 characters of A-Z a-z 0-9 . _ -");
    else if (id)
        snprintf(c->client_id, sizeof c->client_id, "%s", id);
    fp_allowlist al;
    char bad[64] = "";
    if (ips && strlen(ips) >= sizeof c->allowed_ips) {
        fp_errors_add(es, FPC_INVALID_FIELD, "allowed_ips", "允许地址列表最长 511 个字符",
                      "The allowed addresses are at most 511 characters");
    } else if (ips && ips[0] && strcmp(ips, "any") &&
               fp_allowlist_parse(ips, &al, bad, sizeof bad) < 0) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "%s 不是 IPv4/IPv6 地址或 CIDR", bad);
        snprintf(en, sizeof en, "%s is not an IPv4/IPv6 address or CIDR", bad);
        fp_errors_add(es, FPC_INVALID_FIELD, "allowed_ips", zh, en);
    } else if (ips && strcmp(ips, "any")) {
        snprintf(c->allowed_ips, sizeof c->allowed_ips, "%s", ips);
    }
}

/* POST /v1/admin/credentials {"roles", "client_id"?, "allowed_ips"?} */
enum MHD_Result fp_h_credentials_create(fp_req *r)
{
    enum MHD_Result answered;
    cJSON *doc = fp_req_json_body(r, 4, &answered);
    if (!doc)
        return answered;
    fp_errors es = {0};
    fp_client_info c;
    memset(&c, 0, sizeof c);
    create_fields(doc, &c, &es);
    cJSON_Delete(doc);
    if (es.n)
        return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    if (protected_roles(c.roles))
        return fp_problem(r, FPC_CREDENTIAL_PROTECTED, NULL, NULL, NULL);
    if (!c.client_id[0]) {
        unsigned char rnd[6];
        char hex[13];
        if (fp_random(rnd, sizeof rnd) < 0)
            return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
        fp_hex(rnd, sizeof rnd, hex);
        snprintf(c.client_id, sizeof c.client_id, "cli-%s", hex);
    }
    c.seller_id = r->scope_seller;
    char secret[FP_SECRET_LEN + 1], roles[64];
    if (fp_secret_generate(secret) < 0)
        return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    fp_roles_format(c.roles, roles, sizeof roles);
    fp_err err = {0};
    fp_audit_rec a = change_audit(r, "credentials.admin_create", &c);
    int rc = fp_store_client_create(r->srv->o.store, &c, secret, &a, &err);
    enum MHD_Result res;
    if (rc == FP_ECONFLICT)
        res = fp_problem(r, FPC_CREDENTIAL_EXISTS, NULL, NULL, NULL);
    else if (rc < 0)
        res = fp_problem(r, FPC_DEGRADED, "凭据未能保存", err.msg, NULL);
    else
        res = fp_secret_answer(r, 201, c.client_id, secret, roles, -1);
    explicit_bzero(secret, sizeof secret);
    return res;
}

/* POST /v1/admin/credentials/{id}/rotate {"overlap_seconds"?}: the CLI's
 * rotation (fapiao keys rotate): the newest previous secret stays valid
 * for the overlap (default 24 h, 0 ends it now), older ones end now. */
enum MHD_Result fp_h_credentials_rotate(fp_req *r)
{
    enum MHD_Result res;
    cJSON *doc = fp_req_json_body(r, 4, &res);
    if (!doc)
        return res;
    static const char *const names[] = {"overlap_seconds", NULL};
    fp_errors es = {0};
    int64_t overlap = 86400;
    only_fields(doc, names, &es);
    if (!es.n)
        fp_req_overlap(doc, &overlap, &es);
    cJSON_Delete(doc);
    if (es.n)
        return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    fp_client_info c;
    if (load_target(r, &c, &res))
        return res;
    char secret[FP_SECRET_LEN + 1];
    if (fp_secret_generate(secret) < 0)
        return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    int64_t now = (int64_t)time(NULL);
    fp_err err = {0};
    fp_audit_rec a = change_audit(r, "credentials.admin_rotate", &c);
    int rc = fp_store_client_rotate(r->srv->o.store, c.client_id, secret, now, overlap, &a, &err);
    if (rc == FP_ECONFLICT) /* revoked since load_target */
        res = fp_problem(r, FPC_CREDENTIAL_STATE, NULL, NULL, NULL);
    else if (rc < 0)
        res = fp_problem(r, FPC_DEGRADED, "密钥未能轮换", err.msg, NULL);
    else
        res = fp_secret_answer(r, 200, c.client_id, secret, NULL, now + overlap);
    explicit_bzero(secret, sizeof secret);
    return res;
}

/* POST /v1/admin/credentials/{id}/revoke: the token exchange refuses it
 * now, its tokens within about a second (client_cache.h).  No body. */
enum MHD_Result fp_h_credentials_revoke(fp_req *r)
{
    enum MHD_Result res;
    fp_client_info c;
    if (load_target(r, &c, &res))
        return res;
    int64_t now = (int64_t)time(NULL);
    fp_err err = {0};
    fp_audit_rec a = change_audit(r, "credentials.admin_revoke", &c);
    if (fp_store_client_revoke(r->srv->o.store, c.client_id, now, &a, &err) < 0)
        return fp_problem(r, FPC_DEGRADED, "凭据未能吊销", err.msg, NULL);
    fp_buf b;
    fp_jw w;
    fp_jw_start(&w, &b, 4096);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "client_id", c.client_id);
    fp_jw_kstr(&w, "state", "revoked");
    fp_jw_kint(&w, "revoked_at", now);
    fp_jw_obj_close(&w);
    return fp_respond_buf(r, 200, &b);
}
