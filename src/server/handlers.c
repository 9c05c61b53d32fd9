/* handlers.c — one function per route of the table in server.c. */
#include "internal.h"
#include "audit_queue.h"
#include "client_cache.h"
#include "fapiao/adaptive.h"
#include "fapiao/crypto.h"
#include "fapiao/metrics.h"
#include "fapiao/money.h"
#include "fapiao/health.h"
#include "fapiao/outbox.h"
#include "fapiao/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *header(fp_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static int is_json_ctype(const char *ct)
{
    if (!ct)
        return 0;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ';
}

static enum MHD_Result bad_body(fp_req *r, const fp_errors *es)
{
    fp_code top = fp_errors_top(es);
    /* a document-level error (bad JSON, bad UTF-8) has no field: message only */
    if (es->n == 1 && es->e[0].field[0] == 0)
        return fp_problem(r, top, es->e[0].zh, es->e[0].en, NULL);
    return fp_problem(r, top, NULL, NULL, es);
}

/* The audit record of a change this request makes (target and outcome
 * left to the store), written in the change's transaction. */
static fp_audit_rec request_audit(const fp_req *r, const char *action)
{
    fp_audit_rec a = {.actor = r->claims.client_id,
                      .action = action,
                      .request_id = r->rid,
                      .client_ip = r->client_ip};
    return a;
}

static int key_char_ok(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '-' || c == '.' || c == ':';
}

/* ---- POST /v1/token ---- */

enum MHD_Result fp_h_token(fp_req *r)
{
    fp_server *s = r->srv;
    int wait_s = 0;
    if (fp_auth_gate_blocked(r, &wait_s)) { /* before any secret is hashed */
        r->retry_after = wait_s;
        return fp_problem(r, FPC_AUTH_FAILURES_LIMITED, NULL, NULL, NULL);
    }
    if (!is_json_ctype(header(r, "Content-Type")))
        return fp_problem(r, FPC_UNSUPPORTED_MEDIA_TYPE, NULL, NULL, NULL);
    fp_code code = FPC_NONE;
    char detail[128];
    cJSON *doc =
        fp_json_parse(r->body.p ? r->body.p : "", r->body.len, 4, &code, detail, sizeof detail);
    if (!doc)
        return fp_problem(r, code, NULL, detail, NULL);
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
    if (c.revoked_at)
        return fp_problem(r, FPC_UNAUTHENTICATED, "凭据已吊销", "The credential has been revoked",
                          NULL);
    fp_cached_client cc;
    memset(&cc, 0, sizeof cc);
    snprintf(cc.client_id, sizeof cc.client_id, "%s", c.client_id);
    if (c.allowed_ips[0]) {
        cc.has_allowlist = 1;
        if (fp_allowlist_parse(c.allowed_ips, &cc.allow, NULL, 0) < 0)
            cc.allow.n = 0;
    }
    enum MHD_Result res;
    if (fp_check_client_ip(r, &cc, &res))
        return res;
    /* a credential bound to a client certificate is worth nothing without it */
    char peer[65] = "";
    if (c.cert_sha256[0] &&
        (fp_tls_peer_sha256(r->conn, peer) < 0 || strcmp(peer, c.cert_sha256) != 0))
        return fp_problem(r, FPC_FORBIDDEN, "此凭据必须使用绑定的客户端证书（双向 TLS）",
                          "This credential must present its bound client certificate (mTLS)", NULL);
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
    fp_buf_init(&b, 4096);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "access_token", tok);
    fp_jw_kstr(&w, "token_type", "Bearer");
    fp_jw_kint(&w, "expires_in", s->o.token_ttl);
    char roles[64];
    fp_roles_format(c.roles, roles, sizeof roles);
    fp_jw_kstr(&w, "scope", roles);
    fp_jw_obj_close(&w);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    return body ? fp_respond_json(r, 200, body, len) : MHD_NO;
}

/* ---- POST /v1/invoices ---- */

static enum MHD_Result replay(fp_req *r, char *doc, size_t len, const char *number)
{
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/invoices/%.20s", number);
    const char *hdrs[] = {"Location", loc, "Idempotent-Replayed", "true", NULL};
    return fp_respond(r, 201, "application/json", doc, len, hdrs);
}

/* The writer's answer (or the store's deadline thread's).  Unless shutdown
 * answered the client already (it then owns nothing of the request: r may be
 * gone, so r is not touched before the claim), the connection resumes into
 * fp_h_issue_resumed. */
static void on_committed(fp_issue_req *ir, void *arg)
{
    fp_parked_issue *p = (fp_parked_issue *)ir;
    int unclaimed = 0;
    if (atomic_compare_exchange_strong(&p->claim, &unclaimed, 1)) {
        fp_req *r = arg;
        MHD_resume_connection(r->conn);
        return;
    }
    /* shutdown answered: drop the writer's hold.  A request answered at its
     * deadline (early) is held twice (the writer's release follows), so
     * this frees only when nothing else holds it. */
    fp_issue_req_release(ir);
}

/* Blue and red issues differ only in how the request becomes a document:
 * a prepare function fills ir (doc, request hash, type, buyer, total; for
 * red also the form and the blue number) or answers with a problem, in
 * which case it returns 1 with *res set. */
typedef int (*prepare_fn)(fp_req *r, const char *key, const char *issued_at,
                          const fp_seller *seller, fp_issue_req *ir, enum MHD_Result *res);

static enum MHD_Result issue_or_suspend(fp_req *r, const char *key, prepare_fn prep,
                                        int *suspended);

static enum MHD_Result issue_common(fp_req *r, prepare_fn prep)
{
    fp_server *s = r->srv;
    const char *key = header(r, "Idempotency-Key");
    if (!key || !*key)
        return fp_problem(r, FPC_IDEMPOTENCY_KEY_REQUIRED, NULL, NULL, NULL);
    size_t kl = strlen(key);
    int kok = kl <= 64;
    for (size_t i = 0; kok && i < kl; i++)
        kok = key_char_ok(key[i]);
    if (!kok)
        return fp_problem(r, FPC_IDEMPOTENCY_KEY_INVALID, NULL, NULL, NULL);
    /* Count ourselves before looking at `stopping`: fp_server_stop waits for
     * inflight to reach zero after setting it (see there). */
    atomic_fetch_add(&s->inflight, 1);
    int suspended = 0;
    enum MHD_Result res = issue_or_suspend(r, key, prep, &suspended);
    if (!suspended) /* answered directly; else fp_h_issue_resumed gives it back */
        atomic_fetch_sub(&s->inflight, 1);
    return res;
}

/* Once the request holds an inflight count and an adaptive-limit slot:
 * answers directly (problem or replay), or sets r->issue, suspends and hands
 * the request to the store. */
static enum MHD_Result issue_submit(fp_req *r, const char *key, prepare_fn prep, int *suspended)
{
    fp_server *s = r->srv;
    if (atomic_load(&s->stopping))
        return fp_problem(r, FPC_SHUTTING_DOWN, NULL, NULL, NULL);
    fp_seller seller;
    if (fp_server_seller(s, r->claims.seller_id, &seller) < 0)
        return fp_problem(r, FPC_FORBIDDEN, "凭据绑定的销售方不存在",
                          "The credential's seller does not exist", NULL);
    fp_parked_issue *parked = calloc(1, sizeof *parked);
    if (!parked)
        return MHD_NO;
    fp_issue_req *ir = &parked->ir;
    time_t now = time(NULL);
    struct tm tm;
    time_t cst = now + 8 * 3600; /* issue times are China Standard Time */
    gmtime_r(&cst, &tm);
    char issued_at[40];
    strftime(issued_at, sizeof issued_at, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    enum MHD_Result res = MHD_NO;
    if (prep(r, key, issued_at, &seller, ir, &res)) {
        free(ir->doc.json);
        free(ir);
        return res;
    }

    /* Fast path: an already durable key is answered from a read connection. */
    char *doc = NULL;
    size_t dlen = 0;
    unsigned char have[32];
    char num[FP_NUMBER_LEN + 1];
    int frc = fp_store_find_serial(s->o.store, r->claims.seller_id, key, have, num, &doc, &dlen);
    if (frc != FP_ENOTFOUND) {
        int same = frc == 0 && fp_ct_equal(have, ir->request_hash, 32);
        free(ir->doc.json);
        free(ir);
        if (frc == FP_ECORRUPT) {
            char what[96];
            snprintf(what, sizeof what, "Idempotency-Key %.64s", key);
            return fp_corrupt_row(r, what);
        }
        if (frc < 0)
            return fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable",
                              NULL);
        if (!same) {
            free(doc);
            return fp_problem(r, FPC_IDEMPOTENCY_KEY_REUSED, NULL, NULL, NULL);
        }
        return replay(r, doc, dlen, num);
    }

    ir->seller_id = r->claims.seller_id;
    snprintf(ir->serial, sizeof ir->serial, "%s", key);
    ir->issued_at = (int64_t)now;
    snprintf(ir->actor, sizeof ir->actor, "%s", r->claims.client_id);
    snprintf(ir->request_id, sizeof ir->request_id, "%s", r->rid);
    snprintf(ir->client_request_id, sizeof ir->client_request_id, "%s", r->client_rid);
    snprintf(ir->client_ip, sizeof ir->client_ip, "%s", r->client_ip);
    r->submit_ns = fp_now_ns();
    ir->done = on_committed;
    ir->arg = r;
    r->issue = ir;
    *suspended = 1;
    MHD_suspend_connection(r->conn);
    fp_server_park(s, r);
    fp_store_submit(s->o.store, ir);
    return MHD_YES;
}

/* The adaptive limit: how many issues may be in the server at once.  It is
 * taken before any work on the request (parsing, rendering the document,
 * the idempotency lookup), so that a refusal is cheap: under overload the
 * refused requests must not eat the CPU the admitted ones need (that CPU
 * is shared with TLS, and on a small machine with the clients too).  A
 * request answered without reaching the store gives its slot back without
 * a latency sample; the sample is the store's time, submit to resume. */
static enum MHD_Result issue_or_suspend(fp_req *r, const char *key, prepare_fn prep, int *suspended)
{
    fp_server *s = r->srv;
    if (s->adaptive && !fp_adaptive_acquire(s->adaptive, fp_now_ns())) {
        fp_counter_inc(s->m_limited[FP_REFUSED_CONCURRENCY]);
        char zh[160], en[160];
        int limit = fp_adaptive_limit(s->adaptive);
        snprintf(zh, sizeof zh, "服务繁忙（同时处理的开票请求已达上限 %d），请稍后重试", limit);
        snprintf(en, sizeof en,
                 "Busy: %d issue requests are already being handled (adaptive limit); retry",
                 limit);
        return fp_problem(r, FPC_RATE_LIMITED, zh, en, NULL);
    }
    r->admitted = s->adaptive != NULL;
    enum MHD_Result res = issue_submit(r, key, prep, suspended);
    if (r->admitted && !*suspended) {
        fp_adaptive_cancel(s->adaptive);
        r->admitted = 0;
    }
    return res;
}

static int prepare_blue(fp_req *r, const char *key, const char *issued_at, const fp_seller *seller,
                        fp_issue_req *ir, enum MHD_Result *res)
{
    fp_invoice inv;
    fp_errors *es = malloc(sizeof *es);
    if (!es)
        return 1;
    int bad =
        fp_invoice_parse(r->body.p ? r->body.p : "", r->body.len, r->srv->o.codes, &inv, es) < 0;
    if (bad)
        *res = bad_body(r, es);
    free(es);
    char *canon = bad ? NULL : fp_invoice_canonical(&inv);
    if (!bad && (!canon || fp_invoice_render(&inv, seller, key, issued_at, &ir->doc) < 0)) {
        *res = fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
        bad = 1;
    }
    if (!bad) {
        fp_sha256(canon, strlen(canon), ir->request_hash);
        memcpy(ir->invoice_type, inv.invoice_type, 3);
        snprintf(ir->buyer_tax_id, sizeof ir->buyer_tax_id, "%s",
                 inv.buyer.tax_id ? inv.buyer.tax_id : "");
        ir->total_with_tax = inv.total_with_tax;
        ir->lines = inv.nitems;
    }
    free(canon);
    fp_invoice_clear(&inv);
    return bad;
}

enum MHD_Result fp_h_issue(fp_req *r)
{
    if (!is_json_ctype(header(r, "Content-Type")))
        return fp_problem(r, FPC_UNSUPPORTED_MEDIA_TYPE, NULL, NULL, NULL);
    return issue_common(r, prepare_blue);
}

/* ---- red forms ---- */

static enum MHD_Result form_response(fp_req *r, int status, const fp_red_form_rec *rec)
{
    char *blue = NULL;
    size_t blen = 0;
    fp_red_form f;
    fp_err err = {0};
    memset(&f, 0, sizeof f);
    if (fp_store_get_invoice(r->srv->o.store, r->claims.seller_id, rec->blue_number, &blue, &blen) <
            0 ||
        fp_red_form_load(blue, blen, rec->reason, rec->lines, rec->nlines, &f, &err) < 0) {
        free(blue);
        fp_red_form_clear(&f);
        return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    }
    free(blue);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 16u << 20);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "form_id", rec->form_no);
    fp_jw_kstr(&w, "state", rec->state);
    fp_jw_kstr(&w, "blue_number", rec->blue_number);
    fp_jw_kstr(&w, "invoice_type", f.invoice_type);
    fp_jw_kstr(&w, "reason", fp_red_reason_name(rec->reason));
    fp_jw_kstr(&w, "initiated_by", rec->initiated_by);
    fp_jw_kint(&w, "created_at", rec->created_at);
    if (rec->expires_at)
        fp_jw_kint(&w, "expires_at", rec->expires_at);
    if (rec->red_number[0])
        fp_jw_kstr(&w, "red_number", rec->red_number);
    fp_jw_key(&w, "items");
    fp_jw_arr_open(&w);
    for (int i = 0; i < f.nlines; i++) {
        const fp_red_line *l = &f.lines[i];
        char q[64], rate[16];
        fp_jw_obj_open(&w);
        fp_jw_kint(&w, "line", l->line);
        fp_jw_kstr(&w, "name", l->name);
        if (l->has_qty) {
            fp_qty_format(l->qty, q, sizeof q);
            fp_jw_kstr(&w, "quantity", q);
            fp_jw_kstr(&w, "unit_price", l->unit_price);
        }
        fp_jw_kmoney(&w, "amount", l->amount);
        fp_rate_format(l->rate_bp, rate, sizeof rate);
        fp_jw_kstr(&w, "tax_rate", rate);
        fp_jw_kmoney(&w, "tax", l->tax);
        fp_jw_kmoney(&w, "amount_with_tax", l->amount + l->tax);
        fp_jw_obj_close(&w);
    }
    fp_jw_arr_close(&w);
    fp_jw_kmoney(&w, "total_amount", rec->total_amount);
    fp_jw_kmoney(&w, "total_tax", rec->total_tax);
    fp_jw_kmoney(&w, "total_with_tax", rec->total_amount + rec->total_tax);
    fp_jw_obj_close(&w);
    fp_red_form_clear(&f);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    if (!body)
        return MHD_NO;
    if (status == 201) {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/red-forms/%s", rec->form_no);
        const char *hdrs[] = {"Location", loc, NULL};
        return fp_respond(r, 201, "application/json", body, len, hdrs);
    }
    return fp_respond_json(r, status, body, len);
}

/* POST /v1/invoices/{number}/red-forms */
enum MHD_Result fp_h_red_form_create(fp_req *r)
{
    fp_server *s = r->srv;
    if (!is_json_ctype(header(r, "Content-Type")))
        return fp_problem(r, FPC_UNSUPPORTED_MEDIA_TYPE, NULL, NULL, NULL);
    char *blue = NULL;
    size_t blen = 0;
    enum MHD_Result res;
    if (fp_load_invoice(r, r->param, &blue, &blen, &res))
        return res;
    fp_red_form f;
    fp_errors *es = calloc(1, sizeof *es);
    if (!es) {
        free(blue);
        return MHD_NO;
    }
    int rc;
    if (fp_red_form_parse(r->body.p ? r->body.p : "", r->body.len, blue, blen, &f, es) < 0) {
        res = bad_body(r, es);
    } else {
        /* 72 hours for the other side to confirm (DOMAIN.md) */
        const char *state = f.initiated_by_buyer   ? "awaiting_seller"
                            : f.buyer_has_deducted ? "awaiting_buyer"
                                                   : "no_confirmation_needed";
        int64_t expires =
            strcmp(state, "no_confirmation_needed") ? (int64_t)time(NULL) + 72 * 3600 : 0;
        fp_red_form_rec rec;
        fp_err err = {0};
        fp_audit_rec a = request_audit(r, "red_form.create");
        rc = fp_store_red_form_create(s->o.store, r->claims.seller_id, &f, state, expires, &rec, es,
                                      &a, &err);
        if (rc == FP_ERANGE)
            res = fp_problem(r, FPC_RED_EXCEEDS_BLUE, NULL, NULL, es);
        else if (rc < 0)
            res = fp_problem(r, FPC_DEGRADED, "红字确认单未能保存", err.msg, NULL);
        else
            res = form_response(r, 201, &rec);
        fp_red_form_rec_clear(&rec);
    }
    fp_red_form_clear(&f);
    free(es);
    free(blue);
    return res;
}

/* GET /v1/red-forms/{id} */
enum MHD_Result fp_h_red_form_get(fp_req *r)
{
    fp_red_form_rec rec;
    int rc = fp_store_red_form_get(r->srv->o.store, r->claims.seller_id, r->param, &rec);
    enum MHD_Result res = rc == FP_ENOTFOUND ? fp_problem(r, FPC_NOT_FOUND, "红字确认单不存在",
                                                          "No such red form", NULL)
                          : rc < 0           ? fp_problem(r, FPC_DEGRADED, NULL, NULL, NULL)
                                             : form_response(r, 200, &rec);
    fp_red_form_rec_clear(&rec);
    return res;
}

/* POST /v1/red-forms/{id}/confirm|reject|withdraw: the action is the last
 * path segment of the route. */
enum MHD_Result fp_h_red_form_act(fp_req *r)
{
    const char *action = strrchr(r->route->pattern, '/') + 1;
    fp_red_form_rec rec;
    fp_err err = {0};
    char what[32];
    snprintf(what, sizeof what, "red_form.%s", action);
    fp_audit_rec a = request_audit(r, what);
    int rc = fp_store_red_form_act(r->srv->o.store, r->claims.seller_id, r->param, action, &rec, &a,
                                   &err);
    enum MHD_Result res;
    if (rc == FP_ENOTFOUND) {
        res = fp_problem(r, FPC_NOT_FOUND, "红字确认单不存在", "No such red form", NULL);
    } else if (rc == FP_ECONFLICT) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "红字确认单当前状态为 %s，不能执行 %s", rec.state, action);
        snprintf(en, sizeof en, "The red form is %s; %s is not possible", rec.state, action);
        res = fp_problem(r, FPC_RED_FORM_STATE, zh, en, NULL);
    } else if (rc < 0) {
        res = fp_problem(r, FPC_DEGRADED, NULL, err.msg, NULL);
    } else {
        res = form_response(r, 200, &rec);
    }
    fp_red_form_rec_clear(&rec);
    return res;
}

static int prepare_red(fp_req *r, const char *key, const char *issued_at, const fp_seller *seller,
                       fp_issue_req *ir, enum MHD_Result *res)
{
    fp_red_form_rec rec;
    int rc = fp_store_red_form_get(r->srv->o.store, r->claims.seller_id, r->param, &rec);
    if (rc < 0) {
        *res = rc == FP_ENOTFOUND
                   ? fp_problem(r, FPC_NOT_FOUND, "红字确认单不存在", "No such red form", NULL)
                   : fp_problem(r, FPC_DEGRADED, NULL, NULL, NULL);
        return 1;
    }
    /* issued forms go on: a retry with the same key is a replay */
    if (strcmp(rec.state, "no_confirmation_needed") && strcmp(rec.state, "confirmed") &&
        strcmp(rec.state, "issued")) {
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "红字确认单当前状态为 %s，不能开具红字发票", rec.state);
        snprintf(en, sizeof en, "The red form is %s; no red invoice can be issued", rec.state);
        *res = fp_problem(r, FPC_RED_FORM_STATE, zh, en, NULL);
        fp_red_form_rec_clear(&rec);
        return 1;
    }
    char *blue = NULL;
    size_t blen = 0;
    fp_red_form f;
    fp_err err = {0};
    memset(&f, 0, sizeof f);
    int bad = fp_store_get_invoice(r->srv->o.store, r->claims.seller_id, rec.blue_number, &blue,
                                   &blen) < 0 ||
              fp_red_form_load(blue, blen, rec.reason, rec.lines, rec.nlines, &f, &err) < 0 ||
              fp_red_render(&f, seller, key, rec.form_no, issued_at, &ir->doc) < 0;
    if (bad) {
        *res = fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    } else {
        /* the request is the form: same key + same form replays */
        char what[64];
        snprintf(what, sizeof what, "red-form:%s", rec.form_no);
        fp_sha256(what, strlen(what), ir->request_hash);
        memcpy(ir->invoice_type, f.invoice_type, 3);
        const cJSON *buyer = cJSON_GetObjectItemCaseSensitive(f.blue, "buyer");
        const cJSON *tid = cJSON_GetObjectItemCaseSensitive(buyer, "tax_id");
        snprintf(ir->buyer_tax_id, sizeof ir->buyer_tax_id, "%s",
                 cJSON_IsString(tid) ? tid->valuestring : "");
        ir->total_with_tax = f.total_amount + f.total_tax;
        ir->lines = f.nlines;
        ir->red_form_id = rec.id;
        snprintf(ir->original_number, sizeof ir->original_number, "%s", rec.blue_number);
    }
    free(blue);
    fp_red_form_clear(&f);
    fp_red_form_rec_clear(&rec);
    return bad;
}

/* POST /v1/red-forms/{id}/invoice (Idempotency-Key): the red invoice. */
enum MHD_Result fp_h_red_invoice(fp_req *r)
{
    return issue_common(r, prepare_red);
}

/* 503 CLOCK_BEHIND / CLOCK_JUMPED, naming the last issue time and the
 * clock (docs/operations.md, "Clock"). */
static enum MHD_Result clock_refused(fp_req *r, const fp_issue_req *ir)
{
    char mark[32], now[32], zh[320], en[320];
    time_t m = (time_t)ir->clock_mark + 8 * 3600, n = (time_t)ir->issued_at + 8 * 3600;
    struct tm tm;
    gmtime_r(&m, &tm);
    strftime(mark, sizeof mark, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    gmtime_r(&n, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    r->retry_after = ir->clock_retry_s;
    if (ir->result == FP_ISSUE_CLOCK_BEHIND) {
        snprintf(zh, sizeof zh,
                 "服务器时钟（%s）早于最近开票时间（%s），为避免开票日期倒退，暂停开票；"
                 "请校正时钟或等待时钟追上",
                 now, mark);
        snprintf(en, sizeof en,
                 "The server clock (%s) is behind the last issue time (%s); issuing is paused so "
                 "that issue dates never go backwards. Fix the clock or wait until it passes",
                 now, mark);
        return fp_problem(r, FPC_CLOCK_BEHIND, zh, en, NULL);
    }
    snprintf(zh, sizeof zh,
             "服务器时钟（%s）自最近一次开票（%s）后突然跳前超过一天；时钟无误时由运维执行 "
             "fapiao clock confirm 确认后恢复开票",
             now, mark);
    snprintf(en, sizeof en,
             "The server clock (%s) jumped ahead by more than a day since the last issue (%s); "
             "if the clock is right, an operator confirms it with fapiao clock confirm",
             now, mark);
    return fp_problem(r, FPC_CLOCK_JUMPED, zh, en, NULL);
}

enum MHD_Result fp_h_issue_resumed(fp_req *r)
{
    fp_issue_req *ir = r->issue;
    enum MHD_Result res;
    /* answered at its deadline while the writer still holds it: only
     * `early` may be read */
    fp_issue_result result = atomic_load(&ir->early) ? FP_ISSUE_UNKNOWN : ir->result;
    if (r->admitted) {
        int64_t now = fp_now_ns();
        fp_adaptive_release(r->srv->adaptive, now, now - r->submit_ns,
                            result != FP_ISSUE_FAILED && result != FP_ISSUE_TIMEOUT &&
                                result != FP_ISSUE_UNKNOWN);
        r->admitted = 0;
    }
    switch (result) {
    case FP_ISSUE_CREATED: {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/invoices/%s", ir->number);
        const char *hdrs[] = {"Location", loc, NULL};
        res = fp_respond(r, 201, "application/json", ir->response, ir->response_len, hdrs);
        ir->response = NULL;
        break;
    }
    case FP_ISSUE_REPLAY:
        res = replay(r, ir->response, ir->response_len, ir->number);
        ir->response = NULL;
        break;
    case FP_ISSUE_KEY_REUSED:
        res = fp_problem(r, FPC_IDEMPOTENCY_KEY_REUSED, NULL, NULL, NULL);
        break;
    case FP_ISSUE_EXHAUSTED:
        res = fp_problem(r, FPC_NUMBER_RANGE_EXHAUSTED, NULL, NULL, NULL);
        break;
    case FP_ISSUE_FORM_STATE:
        res = fp_problem(r, FPC_RED_FORM_STATE, "红字确认单未确认或已开具红字发票",
                         "The red form is not confirmed, or its red invoice was issued already",
                         NULL);
        break;
    case FP_ISSUE_CLOCK_BEHIND:
    case FP_ISSUE_CLOCK_JUMPED:
        res = clock_refused(r, ir);
        break;
    case FP_ISSUE_TIMEOUT:
        r->retry_after = 2;
        res = fp_problem(r, FPC_WRITE_TIMEOUT, NULL, NULL, NULL);
        break;
    case FP_ISSUE_UNKNOWN:
        r->retry_after = 2;
        res = fp_problem(r, FPC_WRITE_OUTCOME_UNKNOWN, NULL, NULL, NULL);
        break;
    default: {
        if (fp_failstop_refuse(r, ir->outcome_unknown, &res))
            break;
        if (!strcmp(ir->error, FP_SHUTDOWN_WHY)) {
            r->retry_after = 5;
            res = fp_problem(r, FPC_SHUTTING_DOWN, NULL, NULL, NULL);
            break;
        }
        char en[192];
        snprintf(en, sizeof en, "The invoice was not stored (%s); retry with the same key",
                 ir->error);
        res = fp_problem(r, FPC_DEGRADED, "发票未能保存，请使用相同流水号重试", en, NULL);
    }
    }
    atomic_fetch_sub(&r->srv->inflight, 1);
    return res;
}

/* Answered at shutdown while its batch was committing (fp_server_stop):
 * the writer owns the request now and may still store it. */
enum MHD_Result fp_h_issue_abandoned(fp_req *r)
{
    if (r->admitted) {
        fp_adaptive_cancel(r->srv->adaptive);
        r->admitted = 0;
    }
    r->retry_after = 5;
    enum MHD_Result res = fp_problem(r, FPC_OUTCOME_UNKNOWN, NULL, NULL, NULL);
    atomic_fetch_sub(&r->srv->inflight, 1);
    return res;
}

/* ---- reads ---- */

int fp_load_invoice(fp_req *r, const char *number, char **doc, size_t *len, enum MHD_Result *res)
{
    int rc = fp_store_get_invoice(r->srv->o.store, r->claims.seller_id, number, doc, len);
    if (rc == FP_ENOTFOUND)
        *res = fp_problem(r, FPC_NOT_FOUND, "发票不存在", "No such invoice", NULL);
    else if (rc == FP_ECORRUPT) {
        char what[64];
        snprintf(what, sizeof what, "invoice %.24s", number);
        *res = fp_corrupt_row(r, what);
    } else if (rc < 0)
        *res = fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
    return rc < 0;
}

enum MHD_Result fp_h_get_invoice(fp_req *r)
{
    char *doc = NULL;
    size_t len = 0;
    enum MHD_Result res;
    if (fp_load_invoice(r, r->param, &doc, &len, &res))
        return res;
    return fp_respond_json(r, 200, doc, len);
}

/* yyyy-mm-dd (China Standard Time) to the unix time of its midnight. */
static int parse_day(const char *s, int64_t *ts)
{
    int y, m, d;
    char tail;
    if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 ||
        m > 12 || d < 1 || d > 31 || y < 2000 || y > 2999)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d) /* 2026-02-30 */
        return -1;
    *ts = (int64_t)t - 8 * 3600;
    return 0;
}

typedef struct list_args {
    fp_errors es;
} list_args;

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    static const char *const known[] = {"serial", "buyer_tax_id", "from", "to",
                                        "cursor", "limit",        NULL};
    list_args *a = cls;
    (void)kind;
    (void)value;
    int ok = 0;
    for (const char *const *k = known; *k && !ok; k++)
        ok = strcmp(*k, key) == 0;
    if (!ok)
        fp_errors_add(&a->es, FPC_UNKNOWN_FIELD, key, "未定义的查询参数",
                      "Unknown query parameter");
    return MHD_YES;
}

/* GET /v1/invoices?serial=&buyer_tax_id=&from=&to=&cursor=&limit= */
enum MHD_Result fp_h_list_invoices(fp_req *r)
{
    list_args *a = calloc(1, sizeof *a);
    if (!a)
        return MHD_NO;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_arg, a);
    fp_list_query q = {.limit = 50};
    const char *v;
#define ARG(name) MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name)
    q.serial = ARG("serial");
    q.buyer_tax_id = ARG("buyer_tax_id");
    if ((v = ARG("from")) && parse_day(v, &q.from_ts) < 0)
        fp_errors_add(&a->es, FPC_INVALID_FIELD, "from", "日期格式须为 yyyy-mm-dd",
                      "Dates are yyyy-mm-dd");
    if ((v = ARG("to"))) {
        if (parse_day(v, &q.to_ts) < 0)
            fp_errors_add(&a->es, FPC_INVALID_FIELD, "to", "日期格式须为 yyyy-mm-dd",
                          "Dates are yyyy-mm-dd");
        else
            q.to_ts += 86400; /* to is inclusive */
    }
    if ((v = ARG("limit"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || end == v || n < 1 || n > 200)
            fp_errors_add(&a->es, FPC_INVALID_FIELD, "limit", "limit 须为 1–200",
                          "limit must be 1-200");
        else
            q.limit = (int)n;
    }
    if ((v = ARG("cursor"))) {
        int ok = strlen(v) == FP_NUMBER_LEN;
        for (int i = 0; ok && v[i]; i++)
            ok = v[i] >= '0' && v[i] <= '9';
        if (!ok)
            fp_errors_add(&a->es, FPC_INVALID_FIELD, "cursor",
                          "cursor 无效（使用上一页返回的 next_cursor）",
                          "Invalid cursor (use the next_cursor of the previous page)");
        q.cursor = v;
    }
#undef ARG
    if (a->es.n > 0) {
        enum MHD_Result res = fp_problem(r, fp_errors_top(&a->es), NULL, NULL, &a->es);
        free(a);
        return res;
    }
    free(a);
    return fp_list_invoices_send(r, &q);
}

/* ---- operations ---- */

enum MHD_Result fp_h_healthz(fp_req *r)
{
    return fp_respond_json(r, 200, strdup("{\"status\":\"ok\"}"), strlen("{\"status\":\"ok\"}"));
}

enum MHD_Result fp_h_readyz(fp_req *r)
{
    fp_err err = {0};
    int db_ok = fp_store_ping(r->srv->o.store, &err) == 0;
    int stopping = atomic_load(&r->srv->stopping);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 16384);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_key(&w, "checks");
    fp_jw_arr_open(&w);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "name", "database");
    fp_jw_kbool(&w, "ok", db_ok);
    if (!db_ok)
        fp_jw_kstr(&w, "reason", err.msg);
    fp_jw_obj_close(&w);
    int ready = db_ok && !stopping, degraded = 0;
    if (r->srv->o.health) {
        ready &= fp_health_report(r->srv->o.health, &w, &degraded);
    } else {
        int64_t remaining = 0;
        int range_ok = db_ok && fp_store_numbers_remaining(r->srv->o.store, 0, &remaining) == 0 &&
                       remaining > 0;
        ready &= range_ok;
        fp_jw_obj_open(&w);
        fp_jw_kstr(&w, "name", "number_range");
        fp_jw_kbool(&w, "ok", range_ok);
        fp_jw_kint(&w, "remaining", remaining);
        /* still ready, but time to import the next range (fapiao ranges import) */
        fp_jw_kbool(&w, "warning", db_ok && remaining < r->srv->o.range_warn);
        fp_jw_kint(&w, "warn_below", r->srv->o.range_warn);
        fp_jw_obj_close(&w);
    }
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "name", "accepting");
    fp_jw_kbool(&w, "ok", !stopping);
    fp_jw_obj_close(&w);
    fp_jw_arr_close(&w);
    char fs_why[320];
    int fs = fp_store_failstop(r->srv->o.store, fs_why, sizeof fs_why);
    if (fs != FP_FAILSTOP_NONE) { /* named at the top too: it needs an operator */
        ready = 0;
        fp_jw_kstr(&w, "failstop", fp_store_failstop_name(fs));
        fp_jw_kstr(&w, "failstop_reason", fs_why);
    }
    fp_jw_kstr(&w, "status",
               ready                    ? "ready"
               : fs != FP_FAILSTOP_NONE ? "failstop"
               : degraded               ? "degraded"
                                        : "not_ready");
    fp_jw_obj_close(&w);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    if (!body)
        return MHD_NO;
    if (ready)
        return fp_respond_json(r, 200, body, len);
    const char *hdrs[] = {"Retry-After", "5", NULL};
    return fp_respond(r, 503, "application/json", body, len, hdrs);
}

enum MHD_Result fp_h_openapi(fp_req *r)
{
    const char *doc = fp_openapi_json();
    return fp_respond_json(r, 200, strdup(doc), strlen(doc));
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
    if (!is_json_ctype(header(r, "Content-Type")))
        return fp_problem(r, FPC_UNSUPPORTED_MEDIA_TYPE, NULL, NULL, NULL);
    fp_code code = FPC_NONE;
    char detail[128], current[FP_SECRET_LEN + 1] = "";
    cJSON *doc =
        fp_json_parse(r->body.p ? r->body.p : "", r->body.len, 4, &code, detail, sizeof detail);
    if (!doc)
        return fp_problem(r, code, NULL, detail, NULL);
    fp_errors es = {0};
    if (!cJSON_IsObject(doc)) {
        fp_errors_add(&es, FPC_FIELD_TYPE, "", "请求体必须是 JSON 对象",
                      "The body must be a JSON object");
    } else {
        for (const cJSON *c = doc->child; c; c = c->next)
            if (strcmp(c->string, "overlap_seconds") && strcmp(c->string, "client_secret"))
                fp_errors_add(&es, FPC_UNKNOWN_FIELD, c->string, NULL, NULL);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(doc, "overlap_seconds");
        if (o && (!cJSON_IsNumber(o) || o->valuedouble < 0 || o->valuedouble > 30 * 86400 ||
                  o->valuedouble != (double)o->valueint))
            fp_errors_add(&es, FPC_INVALID_FIELD, "overlap_seconds", "须为 0 到 2592000 的整数秒",
                          "must be 0-2592000 whole seconds");
        else if (o)
            overlap = o->valueint;
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
    fp_audit_rec a = request_audit(r, "credentials.rotate");
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
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 4096);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "client_id", r->claims.client_id);
    fp_jw_kstr(&w, "client_secret", secret);
    fp_jw_kint(&w, "previous_secrets_valid_until", now + overlap);
    fp_jw_obj_close(&w);
    explicit_bzero(secret, sizeof secret);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    return body ? fp_respond_json(r, 200, body, len) : MHD_NO;
}
