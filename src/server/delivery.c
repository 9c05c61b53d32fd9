/* delivery.c — the document and delivery end of the pipeline:
 *   GET  /v1/invoices/{number}/pdf     the PDF, or 202 + Retry-After while
 *                                      its render job has not finished; in
 *                                      the outbox's on-demand mode it is
 *                                      rendered now (docs/outbox.md)
 *   POST /v1/invoices/{number}/ack     the caller confirms receipt
 *   GET  /v1/jobs?state=&before=&limit=  outbox jobs (dead letters among them)
 *   GET  /v1/jobs/{id}
 *   POST /v1/jobs/{id}/redrive         a dead job runs again */
#include "delivery.h"
#include "http_limits.h"
#include "fapiao/jobs.h"
#include "fapiao/outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PDF_MAX_BYTES (256u << 20)

static enum MHD_Result unavailable(fp_req *r)
{
    return fp_problem(r, FPC_DEGRADED, "数据库暂不可用", "The database is unavailable", NULL);
}

/* A store look-up that failed (rc < 0): 404 naming what is missing, or 503. */
static enum MHD_Result lookup_failed(fp_req *r, int rc, const char *zh, const char *en)
{
    return rc == FP_ENOTFOUND ? fp_problem(r, FPC_NOT_FOUND, zh, en, NULL) : unavailable(r);
}

#define NO_INVOICE "发票不存在", "No such invoice"
#define NO_JOB     "任务不存在", "No such job"

/* The PDF read from its file as it is sent, not held in memory (a client
 * that does not read pins nothing; docs/security.md "Response memory").
 * NULL with errno on failure. */
static struct MHD_Response *pdf_response(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > PDF_MAX_BYTES) {
        close(fd);
        errno = EIO;
        return NULL;
    }
    *len = (size_t)sb.st_size;
    struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)sb.st_size, fd);
    if (!resp) {
        close(fd);
        errno = ENOMEM;
    }
    return resp; /* owns fd */
}

/* What an on-demand render holds in the response-memory budget while it
 * runs: the PDF is built in memory before it is written (http_limits.h). */
#define OD_RESERVE FP_LARGE_RESPONSE

/* The outbox's answer (another thread): the connection resumes into
 * fp_h_pdf_resumed. */
static void od_done(int result, void *arg)
{
    fp_req *r = arg;
    r->od_result = result;
    r->pdf_od = 2;
    MHD_resume_connection(r->conn);
}

/* A PDF whose render job is pending is rendered now in on-demand mode, and
 * in background mode once the background is late for it
 * (fp_outbox_render_due): the connection is suspended (never a blocked
 * HTTP thread) until the outbox answers, by its deadline at the latest.
 * 1 when suspended; 0 to answer as usual (not due, stopping, over the
 * budget). */
static int od_suspend(fp_req *r, const fp_invoice_state *st)
{
    fp_server *s = r->srv;
    fp_outbox *ob = s->o.outbox;
    if (!ob || !fp_outbox_render_due(ob, st->render_first_at, st->render_error[0] != 0))
        return 0;
    /* counted before stopping is read: shutdown waits for it (server.c) */
    atomic_fetch_add(&s->inflight, 1);
    if (atomic_load(&s->stopping) || fp_resp_budget_take(s, OD_RESERVE) < 0) {
        atomic_fetch_sub(&s->inflight, 1);
        return 0;
    }
    r->resp_held += OD_RESERVE;
    r->pdf_od = 1;
    MHD_suspend_connection(r->conn);
    /* the queue or the seller's share is full: resumed at once into the
     * usual answer (202 while it waits for the background) */
    if (fp_outbox_render_now(ob, r->claims.seller_id, r->param, od_done, r) < 0)
        od_done(FP_OD_TIMEOUT, r);
    return 1;
}

static enum MHD_Result pdf_answer(fp_req *r, int may_render)
{
    fp_invoice_state st;
    int rc = fp_store_invoice_state(r->srv->o.store, r->claims.seller_id, r->param, &st);
    if (rc < 0)
        return lookup_failed(r, rc, NO_INVOICE);
    /* no render job: rendered before its job was pruned (docs/outbox.md),
     * if the file is there */
    if (r->srv->o.pdf_dir && (st.render_state == FP_JS_DONE || st.render_state < 0)) {
        char path[4096];
        fp_outbox_pdf_path(r->srv->o.pdf_dir, r->param, path, sizeof path);
        size_t len = 0;
        struct MHD_Response *pdf = pdf_response(path, &len);
        if (!pdf && st.render_state < 0 && errno == ENOENT)
            goto pending;
        if (pdf) {
            char disp[96];
            snprintf(disp, sizeof disp, "inline; filename=\"%s.pdf\"", r->param);
            MHD_add_response_header(pdf, "Content-Disposition", disp);
            r->resp_len = len;
            return fp_respond_response(r, 200, "application/pdf", pdf);
        }
        /* done but the file is gone: a server fault, not "pending" */
        char en[320];
        snprintf(en, sizeof en, "The rendered PDF is missing: %s", strerror(errno));
        return fp_problem(r, FPC_INTERNAL, "已生成的 PDF 文件丢失", en, NULL);
    }
    if (may_render && st.render_state == FP_JS_PENDING && od_suspend(r, &st))
        return MHD_YES;
    if (st.render_state == FP_JS_DEAD) {
        char en[400];
        snprintf(en, sizeof en, "The invoice PDF could not be rendered: %s", st.render_error);
        return fp_problem(r, FPC_RENDER_FAILED, NULL, en, NULL);
    }
    if (st.render_state == FP_JS_PENDING && st.render_error[0]) {
        /* a failed attempt (e.g. the PDF disk is full, or a re-driven dead
         * job): say why, and when it is tried again */
        int64_t wait = st.render_next_at - fp_steady_ms(); /* job times (jobs.h) */
        r->retry_after = wait > 1000 ? (int)((wait + 999) / 1000) : 1;
        char zh[400], en[400];
        snprintf(zh, sizeof zh, "发票 PDF 暂时无法生成，将在 %d 秒后自动重试：%.300s",
                 r->retry_after, st.render_error);
        snprintf(en, sizeof en,
                 "The invoice PDF cannot be rendered right now; retried in %d s: %.300s",
                 r->retry_after, st.render_error);
        return fp_problem(r, FPC_PDF_RETRYING, zh, en, NULL);
    }
pending: /* queued or rendering (or no renderer configured) */;
    fp_buf b;
    fp_jw w;
    fp_jw_start(&w, &b, 4096);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "number", r->param);
    fp_jw_kstr(&w, "status", st.status);
    fp_jw_kstr(&w, "pdf", st.render_state < 0 ? "not_queued" : "rendering");
    fp_jw_kint(&w, "retry_after", 1);
    fp_jw_obj_close(&w);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    if (!body)
        return MHD_NO;
    const char *h[] = {"Retry-After", "1", NULL};
    return fp_respond(r, 202, "application/json", body, len, h);
}

enum MHD_Result fp_h_get_invoice_pdf(fp_req *r)
{
    return pdf_answer(r, 1);
}

enum MHD_Result fp_h_pdf_resumed(fp_req *r)
{
    /* the reservation ends with the render; the answer is the file */
    fp_resp_budget_release(r->srv, OD_RESERVE);
    r->resp_held -= OD_RESERVE;
    r->pdf_od = 0;
    enum MHD_Result res = pdf_answer(r, 0);
    atomic_fetch_sub(&r->srv->inflight, 1);
    return res;
}

enum MHD_Result fp_h_ack(fp_req *r)
{
    fp_err err = {0};
    int rc = fp_store_invoice_ack(r->srv->o.store, r->claims.seller_id, r->param,
                                  r->claims.client_id, r->rid, r->client_rid, r->client_ip, &err);
    if (rc < 0)
        return lookup_failed(r, rc, NO_INVOICE);
    fp_buf b;
    fp_jw w;
    fp_jw_start(&w, &b, 4096);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "number", r->param);
    fp_jw_kstr(&w, "status", "confirmed");
    fp_jw_obj_close(&w);
    return fp_respond_buf(r, 200, &b);
}

static void write_job(fp_jw *w, const fp_job *j)
{
    fp_jw_obj_open(w);
    fp_jw_kint(w, "id", j->id);
    fp_jw_kstr(w, "invoice_number", j->invoice_number);
    fp_jw_kstr(w, "kind", fp_job_kind_name(j->kind));
    fp_jw_kstr(w, "state", fp_job_state_name(j->state));
    if (j->kind == FP_JOB_NOTIFY) {
        fp_jw_kstr(w, "event", j->event);
        fp_jw_kstr(w, "event_id", j->event_id);
    }
    fp_jw_kint(w, "attempts", j->attempts);
    fp_jw_kint(w, "first_at_ms", j->first_at);
    fp_jw_kint(w, "next_at_ms", j->next_at);
    fp_jw_kint(w, "updated_at_ms", j->updated_at);
    fp_jw_kstr(w, "last_error", j->last_error[0] ? j->last_error : NULL);
    fp_jw_obj_close(w);
}

typedef struct list_ctx {
    fp_jw *w;
    int64_t last;
    int n;
} list_ctx;

static void on_job(const fp_job *j, void *arg)
{
    list_ctx *c = arg;
    write_job(c->w, j);
    c->last = j->id;
    c->n++;
}

static int parse_id(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < 1)
        return -1;
    *out = v;
    return 0;
}

/* A page of a listing, {"<key>":[...],"next_before":N|null}: page_open
 * writes up to the list's items, page_close the rest (next_before when the
 * page is full) and answers. */
static void page_open(fp_buf *b, fp_jw *w, size_t cap, const char *key)
{
    fp_buf_init(b, cap);
    fp_jw_init(w, b);
    fp_jw_obj_open(w);
    fp_jw_key(w, key);
    fp_jw_arr_open(w);
}

static enum MHD_Result page_close(fp_req *r, fp_buf *b, fp_jw *w, int full, int64_t last)
{
    fp_jw_arr_close(w);
    fp_jw_key(w, "next_before");
    if (full)
        fp_jw_int(w, last);
    else
        fp_jw_null(w);
    fp_jw_obj_close(w);
    size_t len;
    char *body = fp_buf_take(b, &len);
    return body ? fp_respond_json(r, 200, body, len) : MHD_NO;
}

/* GET /v1/jobs?state=dead&before=ID&limit=N */
enum MHD_Result fp_h_list_jobs(fp_req *r)
{
#define ARG(name) MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name)
    fp_errors es = {0};
    int state = -1, limit = 50;
    int64_t before = 0;
    const char *v;
    if ((v = ARG("state")) && (state = fp_job_state_from_name(v)) < 0)
        fp_errors_add(&es, FPC_INVALID_FIELD, "state",
                      "state 须为 blocked、pending、running、done 或 dead",
                      "state must be blocked, pending, running, done or dead");
    if ((v = ARG("before")) && parse_id(v, &before) < 0)
        fp_errors_add(&es, FPC_INVALID_FIELD, "before", "before 须为任务编号",
                      "before must be a job id");
    int64_t n;
    if ((v = ARG("limit"))) {
        if (parse_id(v, &n) < 0 || n > 200)
            fp_errors_add(&es, FPC_INVALID_FIELD, "limit", "limit 须为 1–200",
                          "limit must be 1-200");
        else
            limit = (int)n;
    }
#undef ARG
    if (es.n)
        return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    fp_buf b;
    fp_jw w;
    page_open(&b, &w, 16u << 20, "jobs");
    list_ctx c = {&w, 0, 0};
    fp_err err = {0};
    if (fp_jobs_list(r->srv->o.store, r->scope_seller, state, before, limit, on_job, &c, &err) <
        0) {
        fp_buf_free(&b);
        return unavailable(r);
    }
    return page_close(r, &b, &w, c.n == limit, c.last);
}

static enum MHD_Result job_answer(fp_req *r, int64_t id)
{
    fp_job j;
    int rc = fp_jobs_get(r->srv->o.store, r->scope_seller, id, &j);
    if (rc < 0)
        return lookup_failed(r, rc, NO_JOB);
    fp_buf b;
    fp_jw w;
    fp_jw_start(&w, &b, 8192);
    write_job(&w, &j);
    return fp_respond_buf(r, 200, &b);
}

enum MHD_Result fp_h_get_job(fp_req *r)
{
    int64_t id;
    if (parse_id(r->param, &id) < 0)
        return fp_problem(r, FPC_NOT_FOUND, NO_JOB, NULL);
    return job_answer(r, id);
}

enum MHD_Result fp_h_redrive_job(fp_req *r)
{
    int64_t id;
    if (parse_id(r->param, &id) < 0)
        return fp_problem(r, FPC_NOT_FOUND, NO_JOB, NULL);
    fp_err err = {0};
    int rc = fp_jobs_redrive(r->srv->o.store, r->scope_seller, id, r->claims.client_id, r->rid,
                             r->client_rid, r->client_ip, &err);
    if (rc == FP_ENOTFOUND)
        return fp_problem(r, FPC_NOT_FOUND, NO_JOB, NULL);
    if (rc == FP_ECONFLICT)
        return fp_problem(r, FPC_JOB_STATE, NULL, NULL, NULL);
    if (rc < 0)
        return unavailable(r);
    if (r->srv->o.outbox)
        fp_outbox_kick(r->srv->o.outbox);
    return job_answer(r, id);
}

typedef struct audit_ctx {
    fp_jw *w;
    int64_t last;
    int n;
} audit_ctx;

static void on_audit(const fp_audit_view *v, void *arg)
{
    audit_ctx *c = arg;
    fp_jw *w = c->w;
    fp_jw_obj_open(w);
    fp_jw_kint(w, "id", v->id);
    fp_jw_kint(w, "ts", v->ts);
    fp_jw_kstr(w, "actor", v->actor);
    fp_jw_kstr(w, "action", v->action);
    fp_jw_kstr(w, "target", v->target);
    fp_jw_kstr(w, "request_id", v->request_id);
    fp_jw_kstr(w, "client_ip", v->client_ip);
    fp_jw_kstr(w, "outcome", v->outcome);
    fp_jw_kstr(w, "hash", v->hash_hex[0] ? v->hash_hex : NULL);
    if (v->seller_id)
        fp_jw_kint(w, "seller_id", v->seller_id);
    else {
        fp_jw_key(w, "seller_id");
        fp_jw_null(w);
    }
    fp_jw_kstr(w, "client_request_id", v->client_request_id);
    fp_jw_obj_close(w);
    c->last = v->id;
    c->n++;
}

/* GET /v1/audit?before=ID&limit=N — the audit log, newest first: a
 * seller's auditor sees its seller's records, an operator-auditor every
 * record (docs/security.md). */
enum MHD_Result fp_h_list_audit(fp_req *r)
{
#define ARG(name) MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name)
    fp_errors es = {0};
    int64_t before = 0, n = 100;
    const char *v;
    if ((v = ARG("before")) && parse_id(v, &before) < 0)
        fp_errors_add(&es, FPC_INVALID_FIELD, "before", "before 须为记录编号",
                      "before must be a record id");
    if ((v = ARG("limit")) && (parse_id(v, &n) < 0 || n > 1000))
        fp_errors_add(&es, FPC_INVALID_FIELD, "limit", "limit 须为 1–1000", "limit must be 1-1000");
#undef ARG
    if (es.n)
        return fp_problem(r, fp_errors_top(&es), NULL, NULL, &es);
    fp_buf b;
    fp_jw w;
    page_open(&b, &w, 64u << 20, "records");
    audit_ctx c = {&w, 0, 0};
    if (fp_store_audit_rows(r->srv->o.store, r->scope_seller, before, (int)n, on_audit, &c) < 0) {
        fp_buf_free(&b);
        return unavailable(r);
    }
    return page_close(r, &b, &w, c.n == n, c.last);
}
