/* handlers_invoices.c — invoices: POST /v1/invoices (issuing; blue and red
 * share this path, handlers_red.c brings the red document), its answer
 * after the group commit or at shutdown, GET /v1/invoices/{number} and
 * GET /v1/invoices (the listing; sent by list_stream.c). */
#include "internal.h"
#include "fapiao/clock.h"
#include "fapiao/adaptive.h"
#include "fapiao/crypto.h"
#include "fapiao/metrics.h"
#include "fapiao/money.h"
#include "fapiao/upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int key_char_ok(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == '-' || c == '.' || c == ':';
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

static enum MHD_Result issue_or_suspend(fp_req *r, const char *key, fp_issue_prepare_fn prep,
                                        int *suspended);

enum MHD_Result fp_issue_common(fp_req *r, fp_issue_prepare_fn prep)
{
    fp_server *s = r->srv;
    const char *key = fp_req_header(r, "Idempotency-Key");
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
    else /* (the resumed handler cannot run before this call returns) */
        r->issue_pending = 1;
    return res;
}

/* Once the request holds an inflight count and an adaptive-limit slot:
 * answers directly (problem or replay), or sets r->issue, suspends and hands
 * the request to the store. */
static enum MHD_Result issue_submit(fp_req *r, const char *key, fp_issue_prepare_fn prep,
                                    int *suspended)
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
    time_t cst = now + FP_CST_OFFSET_S; /* issue times are China Standard Time */
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
    /* after the replay: a retry learns what was issued before the seller
     * was disabled; nothing new is stored for a disabled seller */
    if (seller.disabled) {
        free(ir->doc.json);
        free(ir);
        return fp_problem(r, FPC_SELLER_DISABLED, NULL, NULL, NULL);
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
static enum MHD_Result issue_or_suspend(fp_req *r, const char *key, fp_issue_prepare_fn prep,
                                        int *suspended)
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
    /* 22 KB: one per worker thread rather than a large malloc (and the
     * allocator's consolidation it sets off) per request; used and done
     * with before this function returns */
    static _Thread_local fp_errors es_local;
    fp_errors *es = &es_local;
    fp_invoice_defaults def = {seller->drawer, seller->remark};
    int bad = fp_invoice_parse_with(r->body.p ? r->body.p : "", r->body.len,
                                    atomic_load(&r->srv->codes), &def, &inv, es) < 0;
    if (bad)
        *res = fp_problem_errors(r, es);
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
        ir->total_amount = inv.total_amount; /* the credit line's basis (credit.h) */
        ir->lines = inv.nitems;
    }
    free(canon);
    fp_invoice_clear(&inv);
    return bad;
}

enum MHD_Result fp_h_issue(fp_req *r)
{
    if (!fp_req_is_json(fp_req_header(r, "Content-Type")))
        return fp_problem(r, FPC_UNSUPPORTED_MEDIA_TYPE, NULL, NULL, NULL);
    return fp_issue_common(r, prepare_blue);
}

/* 503 CLOCK_BEHIND / CLOCK_JUMPED, naming the last issue time and the
 * clock (docs/operations.md, "Clock"). */
static enum MHD_Result clock_refused(fp_req *r, const fp_issue_req *ir)
{
    char mark[32], now[32], zh[320], en[320];
    time_t m = (time_t)ir->clock_mark + FP_CST_OFFSET_S,
           n = (time_t)ir->issued_at + FP_CST_OFFSET_S;
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

/* 422 CREDIT_EXCEEDED with the month's remaining credit (yuan) in the
 * messages (docs/upstream.md, "Credit"). */
static enum MHD_Result credit_refused(fp_req *r, const fp_issue_req *ir)
{
    char left[32], zh[200], en[200];
    fp_money_format(ir->credit_left, left);
    snprintf(zh, sizeof zh, "本张发票金额（不含税）超过本月剩余授信额度（剩余 %s 元），未开具",
             left);
    snprintf(en, sizeof en,
             "The invoice's amount (excluding VAT) exceeds the month's remaining credit line "
             "(remaining %s yuan); nothing was issued",
             left);
    return fp_problem(r, FPC_CREDIT_EXCEEDED, zh, en, NULL);
}

enum MHD_Result fp_h_issue_resumed(fp_req *r)
{
    fp_issue_req *ir = r->issue;
    enum MHD_Result res;
    r->issue_pending = 0;
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
        fp_server_metrics_issued(r->srv, r->claims.seller_id, r->claims.client_id);
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
    case FP_ISSUE_CREDIT_EXCEEDED:
        res = credit_refused(r, ir);
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
    r->issue_pending = 0;
    if (r->admitted) {
        fp_adaptive_cancel(r->srv->adaptive);
        r->admitted = 0;
    }
    r->retry_after = 5;
    enum MHD_Result res = fp_problem(r, FPC_OUTCOME_UNKNOWN, NULL, NULL, NULL);
    atomic_fetch_sub(&r->srv->inflight, 1);
    return res;
}

/* The connection of a suspended issue request ended without its handler
 * running again: the client went away (libmicrohttpd closes a resumed
 * connection whose peer is gone without calling the handler), or the
 * daemon stopped.  It leaves the list of suspended requests, the writer no
 * longer resumes it (it keeps and frees the request when it answers), and
 * what fp_h_issue_resumed would have given back is given back. */
void fp_issue_gone(fp_server *s, fp_req *r)
{
    if (r->parked) {
        pthread_mutex_lock(&s->park_lock);
        fp_server_unpark(s, r);
        pthread_mutex_unlock(&s->park_lock);
    }
    if (!r->issue_pending)
        return;
    r->issue_pending = 0;
    fp_parked_issue *p = (fp_parked_issue *)r->issue;
    int unclaimed = 0;
    if (p && atomic_compare_exchange_strong(&p->claim, &unclaimed, 2))
        r->issue = NULL; /* the writer's now (on_committed releases it) */
    if (r->admitted) {
        fp_adaptive_cancel(s->adaptive);
        r->admitted = 0;
    }
    atomic_fetch_sub(&s->inflight, 1);
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
    /* with the upstream configured: its upload to the tax platform
     * (upload.h), added as the document's last member */
    fp_upload_row u;
    if (len < 2 || doc[len - 1] != '}' ||
        fp_store_upload_get(r->srv->o.store, r->claims.seller_id, r->param, &u) != 0)
        return fp_respond_json(r, 200, doc, len);
    fp_buf b;
    fp_buf_init(&b, 0);
    fp_buf_append(&b, doc, len - 1);
    free(doc);
    fp_buf_puts(&b, ",\"upload\":{\"state\":\"");
    fp_buf_puts(&b, fp_upload_state_name(u.state));
    fp_buf_puts(&b, "\"");
    if (u.reason[0]) {
        fp_buf_puts(&b, ",\"reason\":\"");
        fp_json_escape(&b, u.reason);
        fp_buf_puts(&b, "\"");
    }
    fp_buf_puts(&b, "}}");
    return fp_respond_buf(r, 200, &b);
}

/* yyyy-mm-dd (China Standard Time, a year 2000-2999) to the unix time of
 * its midnight (clock.h's one parser). */
static int parse_day(const char *s, int64_t *ts)
{
    if (fp_cst_day_parse(s, ts) < 0 || strncmp(s, "2", 1) != 0)
        return -1;
    return 0;
}

typedef struct list_args {
    fp_errors es;
} list_args;

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    static const char *const known[] = {"serial", "buyer_tax_id", "from",   "to",
                                        "cursor", "limit",        "upload", NULL};
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

/* GET /v1/invoices?serial=&buyer_tax_id=&from=&to=&cursor=&limit=&upload= */
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
    if ((v = ARG("upload")) && (q.upload = fp_upload_state_from_name(v) + 1) == 0)
        fp_errors_add(&a->es, FPC_INVALID_FIELD, "upload",
                      "upload 须为 pending、submitted、accepted 或 rejected",
                      "upload must be pending, submitted, accepted or rejected");
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
