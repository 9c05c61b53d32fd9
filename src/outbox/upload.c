/* upload.c — the upload worker (upload.h; docs/upstream.md, "Upload
 * pipeline"): one thread that sends issued invoices to the tax platform and
 * follows them to accepted or rejected.
 *
 * A round first asks about every due row that has an sllsh (CXQDFPSCJG),
 * then sends due pending rows without one in a batch of one seller's
 * invoices (QDFPSC) and stores the returned sllsh on them (submitted).  So
 * a row that has an sllsh is never sent again before that sllsh has been
 * queried: only a query that finds nothing for it (the platform does not
 * know the sllsh, or does not list the invoice) clears the sllsh, and only
 * after resend_after attempts.
 *
 * A reply lost after sending (a timeout, a reset, a 5xx) leaves no sllsh:
 * the same invoices (same fphm) go out again after a backoff.  The
 * platform's invoice number is unique, so an invoice it already stored is
 * answered as a duplicate, which counts as accepted, never as a rejection
 * (fp_up_item_verdict_of; inferred, to be checked against the manual).
 *
 * One breaker guards the upstream: calls that fail on the way (connect,
 * timeout, 5xx, maintenance, rate limit, a refused address or key) count
 * as failures; while it is open no call is made and the rows wait, their
 * attempts untouched.  A rejection keeps the platform's message as the
 * row's reason: a dead letter (visible in the API and the metrics). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/clock.h"
#include "fapiao/crypto.h"
#include "fapiao/metrics.h"
#include "fapiao/uploader.h"
#include "fapiao/upstream.h"

struct fp_uploader {
    fp_uploader_opts o;
    fp_breaker br;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    uint64_t kicks;
    fp_upload_row *rows;      /* o.batch */
    fp_up_upload_item *items; /* o.batch */
    fp_up_red_ref *refs;      /* o.batch: a red row's form on the platform */
    fp_red_form_up *forms;    /* o.batch: what refs point into */
    atomic_uint_fast64_t n[FP_UPO__N];
};

static const char *const outcome_names[FP_UPO__N] = {"submitted", "accepted", "duplicate",
                                                     "rejected",  "retry",    "resent"};

/* Exponential from backoff_ms, at most backoff_max_ms, half of it random. */
static int64_t delay_ms(const fp_uploader *u, int attempts)
{
    int shift = attempts < 1 ? 0 : attempts > 24 ? 24 : attempts - 1;
    int64_t full = (int64_t)u->o.backoff_ms << shift;
    if (full > u->o.backoff_max_ms || full <= 0)
        full = u->o.backoff_max_ms;
    uint32_t r = 0;
    fp_random(&r, sizeof r);
    return full - (int64_t)(r % (uint32_t)(full / 2 + 1));
}

static void event(const char *what, const char *sllsh, int rows, const fp_up_result *res)
{
    fprintf(stderr,
            "{\"event\":\"upload\",\"what\":\"%s\",\"sllsh\":\"%s\",\"rows\":%d,\"kind\":\"%s\","
            "\"http\":%d}\n",
            what, sllsh ? sllsh : "", rows, res ? fp_up_kind_get(res->kind)->name : "",
            res ? res->http_status : 0);
}

/* A row's new state; outcome counted.  Store failures are reported and the
 * row stays as it was (due again). */
static void set_row(fp_uploader *u, const fp_upload_row *r, int state, const char *sllsh,
                    const char *reason, int64_t next_at, int count, fp_upload_outcome o)
{
    fp_err err = {0};
    if (fp_store_upload_set(u->o.store, r->number, state, sllsh, reason, next_at, count, &err) <
        0) {
        fprintf(stderr, "{\"event\":\"upload\",\"what\":\"store_failed\",\"number\":\"%s\"}\n",
                r->number);
        return;
    }
    atomic_fetch_add(&u->n[o], 1);
}

/* Whether the platform answered (the breaker's success). */
static int answered(fp_up_kind k)
{
    return k == FP_UP_OK || k == FP_UP_REFUSED || k == FP_UP_NOT_FOUND || k == FP_UP_LOCAL;
}

static int seller_tax_id(fp_uploader *u, int64_t seller_id, char out[21])
{
    fp_seller *s = calloc(1, sizeof *s);
    int rc = s ? fp_store_get_seller(u->o.store, seller_id, s) : FP_ENOMEM;
    if (rc == 0)
        snprintf(out, 21, "%s", s->tax_id);
    free(s);
    return rc;
}

/* The rows rows[0..n) of one sllsh: what the platform says of each. */
static void query(fp_uploader *u, fp_upload_row *g, int n, int64_t now)
{
    char nsrsbh[21], sllsh[64];
    snprintf(sllsh, sizeof sllsh, "%s", g[0].sllsh);
    fp_up_result res = {0};
    int ni = 0;
    fp_up_kind k = FP_UP_LOCAL;
    if (seller_tax_id(u, g[0].seller_id, nsrsbh) == 0)
        k = fp_up_upload_result(u->o.up, nsrsbh, sllsh, u->items, u->o.batch, &ni, &res);
    fp_breaker_record(&u->br, fp_mono_ms(), answered(k));
    if (k != FP_UP_OK && k != FP_UP_NOT_FOUND)
        event("query_failed", sllsh, n, &res);
    /* the rows of one sllsh stay together: one wait and one resend decision
     * for all of them, so no query of that sllsh follows a resend of part */
    int most = 0;
    for (int i = 0; i < n; i++)
        most = g[i].attempts > most ? g[i].attempts : most;
    int64_t next = now + delay_ms(u, most + 1);
    int resend = (k == FP_UP_OK || k == FP_UP_NOT_FOUND) && most + 1 >= u->o.resend_after;
    for (int i = 0; i < n; i++) {
        const fp_upload_row *r = &g[i];
        const fp_up_upload_item *it = NULL;
        for (int j = 0; k == FP_UP_OK && j < ni && !it; j++)
            if (!strcmp(u->items[j].number, r->number))
                it = &u->items[j];
        if (it) {
            fp_up_item_verdict v = fp_up_item_verdict_of(it);
            if (v == FP_UP_ITEM_REJECTED) {
                char why[256];
                snprintf(why, sizeof why, "%.8s: %.240s", it->status, it->message);
                set_row(u, r, FP_UPLOAD_REJECTED, "", why, now, 0, FP_UPO_REJECTED);
            } else
                set_row(u, r, FP_UPLOAD_ACCEPTED, "", NULL, now, 0,
                        v == FP_UP_ITEM_ACCEPTED ? FP_UPO_ACCEPTED : FP_UPO_DUPLICATE);
        } else if (resend) {
            /* queried and not known: sent again, the duplicate rule keeps it once */
            set_row(u, r, FP_UPLOAD_PENDING, NULL, NULL, now, 1, FP_UPO_RESENT);
        } else
            set_row(u, r, r->state, "", NULL, next, 1, FP_UPO_RETRY);
    }
}

/* Asks about every due row with an sllsh, one call per sllsh.  The number
 * of calls made; -1 when the breaker refused one. */
static int poll_round(fp_uploader *u, int64_t now)
{
    int n = 0, calls = 0;
    fp_err err = {0};
    if (fp_store_upload_due(u->o.store, now, 1, u->o.batch, u->rows, &n, &err) < 0)
        return 0;
    for (int i = 0; i < n; i++) {
        if (!u->rows[i].sllsh[0])
            continue;
        /* the rows of this sllsh to the front of rows[i..n) */
        int m = i + 1;
        for (int j = i + 1; j < n; j++)
            if (!strcmp(u->rows[j].sllsh, u->rows[i].sllsh)) {
                fp_upload_row t = u->rows[m];
                u->rows[m++] = u->rows[j];
                u->rows[j] = t;
            }
        if (m == n && n == u->o.batch && i > 0)
            break; /* the limit may have cut this sllsh's rows: next round, whole */
        if (!fp_breaker_allow(&u->br, fp_mono_ms(), NULL))
            return -1;
        query(u, &u->rows[i], m - i, now);
        calls++;
        i = m - 1;
    }
    return calls;
}

/* Red document d's form as the platform knows it (its uuid and number,
 * stored by the red keeper) into u->refs[i]: 0, FP_EINVAL (err set) when
 * the form is not filed, or the store's error. */
static int red_ref(fp_uploader *u, int64_t seller_id, const fp_invoice_doc *d, int i, fp_err *err)
{
    fp_red_form_rec rec;
    memset(&rec, 0, sizeof rec);
    u->refs[i] = (fp_up_red_ref){NULL, NULL};
    if (!d->red)
        return 0;
    int rc =
        fp_store_red_form_get(u->o.store, seller_id, d->red_form_id ? d->red_form_id : "", &rec);
    if (rc == 0 && (!rec.up_uuid[0] || !rec.up_number[0]))
        rc = fp_fail(err, FP_EINVAL, "red form %s is not filed with the tax platform", rec.form_no);
    else if (rc == FP_ENOTFOUND)
        rc = fp_fail(err, FP_EINVAL, "red form %s is not in the store",
                     d->red_form_id ? d->red_form_id : "");
    else if (rc == 0) {
        fp_red_form_up *f = &u->forms[i];
        snprintf(f->uuid, sizeof f->uuid, "%s", rec.up_uuid);
        snprintf(f->number, sizeof f->number, "%s", rec.up_number);
        u->refs[i] = (fp_up_red_ref){f->uuid, f->number};
    }
    fp_red_form_rec_clear(&rec);
    return rc;
}

/* Loads and checks the documents of rows[0..n) (one seller's): a row whose
 * document cannot be read or mapped (a red one: whose form is not filed)
 * is rejected with our reason and left out.  The rows kept move to the
 * front; their count. */
static int load_docs(fp_uploader *u, int n, fp_invoice_doc *docs, int64_t now)
{
    int kept = 0;
    for (int i = 0; i < n; i++) {
        fp_upload_row *r = &u->rows[i];
        char *doc = NULL;
        size_t len = 0;
        fp_err err = {0};
        int rc = fp_store_get_invoice(u->o.store, r->seller_id, r->number, &doc, &len);
        if (rc == FP_ENOTFOUND)
            snprintf(err.msg, sizeof err.msg, "the invoice is not in the store");
        cJSON *probe = NULL;
        if (rc == 0 && (rc = fp_invoice_doc_read(doc, len, &docs[kept], &err)) == 0 &&
            ((rc = red_ref(u, r->seller_id, &docs[kept], kept, &err)) < 0 ||
             !(probe = fp_up_invoice_fields(&docs[kept], u->o.up->ptbh, &u->refs[kept], &err)))) {
            fp_invoice_doc_clear(&docs[kept]);
            rc = rc < 0 ? rc : FP_EINVAL;
        }
        cJSON_Delete(probe);
        free(doc);
        if (rc == 0) {
            u->rows[kept++] = *r;
        } else if (rc == FP_ENOTFOUND || rc == FP_EINVAL) {
            char why[256];
            snprintf(why, sizeof why, "fapiao: %.240s", err.msg);
            set_row(u, r, FP_UPLOAD_REJECTED, NULL, why, now, 0, FP_UPO_REJECTED);
        } /* else the store failed: the row stays due */
    }
    return kept;
}

/* Sends one batch of due pending rows of one seller.  1 when a call was
 * made, 0 when there was nothing to send, -1 when the breaker refused. */
static int send_round(fp_uploader *u, int64_t now)
{
    int n = 0;
    fp_err err = {0};
    if (fp_store_upload_due(u->o.store, now, 0, u->o.batch, u->rows, &n, &err) < 0 || n == 0)
        return 0;
    int m = 0; /* the first row's seller only: CXQDFPSCJG asks per taxpayer */
    for (int i = 0; i < n; i++)
        if (u->rows[i].seller_id == u->rows[0].seller_id)
            u->rows[m++] = u->rows[i];
    fp_invoice_doc *docs = calloc((size_t)m, sizeof *docs);
    const fp_invoice_doc **dp = calloc((size_t)m, sizeof *dp);
    int rc = 0;
    if (!docs || !dp)
        goto done;
    m = load_docs(u, m, docs, now);
    if (m == 0)
        goto done;
    rc = -1;
    if (!fp_breaker_allow(&u->br, fp_mono_ms(), NULL))
        goto done;
    rc = 1;
    for (int i = 0; i < m; i++)
        dp[i] = &docs[i];
    char sllsh[64];
    fp_up_result res = {0};
    fp_up_kind k = fp_up_upload(u->o.up, dp, m, u->refs, sllsh, &res);
    fp_breaker_record(&u->br, fp_mono_ms(), answered(k));
    for (int i = 0; i < m; i++) {
        const fp_upload_row *r = &u->rows[i];
        if (k == FP_UP_OK) /* the first query after a short wait */
            set_row(u, r, FP_UPLOAD_SUBMITTED, sllsh, NULL, now + u->o.backoff_ms, 0,
                    FP_UPO_SUBMITTED);
        else if (k == FP_UP_REFUSED) {
            char why[256];
            snprintf(why, sizeof why, "%.8s: %.240s", res.code, res.message);
            set_row(u, r, FP_UPLOAD_REJECTED, NULL, why, now, 0, FP_UPO_REJECTED);
        } else /* nothing sent, or the reply lost: the same invoices again later */
            set_row(u, r, FP_UPLOAD_PENDING, NULL, NULL, now + delay_ms(u, r->attempts + 1), 1,
                    FP_UPO_RETRY);
    }
    event(k == FP_UP_OK ? "sent" : "send_failed", sllsh, m, &res);
done:
    for (int i = 0; docs && i < m; i++)
        fp_invoice_doc_clear(&docs[i]);
    free(docs);
    free(dp);
    return rc;
}

static void *run(void *arg)
{
    fp_uploader *u = arg;
    pthread_mutex_lock(&u->mu);
    while (!u->stopping) {
        uint64_t seen = u->kicks;
        pthread_mutex_unlock(&u->mu);
        int64_t now = fp_steady_ms();
        int p = poll_round(u, now); /* queries before any send */
        int s = p < 0 ? -1 : send_round(u, now);
        pthread_mutex_lock(&u->mu);
        if ((p > 0 || s > 0) || u->stopping || u->kicks != seen)
            continue;
        fp_cond_wait_ms(&u->cv, &u->mu, u->o.poll_ms);
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

/* Frees u; its breaker, lock and condition too when made. */
static void uploader_free(fp_uploader *u, int made)
{
    if (made) {
        fp_breaker_destroy(&u->br);
        pthread_cond_destroy(&u->cv);
        pthread_mutex_destroy(&u->mu);
    }
    free(u->rows);
    free(u->items);
    free(u->refs);
    free(u->forms);
    free(u);
}

int fp_uploader_start(const fp_uploader_opts *o, fp_uploader **out, fp_err *err)
{
    *out = NULL;
    if (!o->store || !o->up)
        return fp_fail(err, FP_EINVAL, "uploader: a store and an upstream are required");
    fp_uploader *u = calloc(1, sizeof *u);
    if (!u)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    u->o = *o;
    if (u->o.batch <= 0)
        u->o.batch = 100;
    if (u->o.poll_ms <= 0)
        u->o.poll_ms = 1000;
    if (u->o.backoff_ms <= 0)
        u->o.backoff_ms = 2000;
    if (u->o.backoff_max_ms < u->o.backoff_ms)
        u->o.backoff_max_ms = u->o.backoff_ms > 300000 ? u->o.backoff_ms : 300000;
    if (u->o.resend_after <= 0)
        u->o.resend_after = 5;
    /* the breaker's waits start at the configured backoff unless given, and
     * double to at most 30 s: a row may wait minutes for its next try, but
     * after an outage the platform is asked again within half a minute
     * (bench/upload_outage.sh: with the rows' 300 s as the cap, the backlog
     * of a 60 s outage took 182 s to clear; docs/upstream.md §9) */
    if (!u->o.breaker.open_ms)
        u->o.breaker.open_ms = u->o.backoff_ms;
    if (!u->o.breaker.max_open_ms)
        u->o.breaker.max_open_ms = u->o.backoff_max_ms < 30000 ? u->o.backoff_max_ms : 30000;
    u->rows = calloc((size_t)u->o.batch, sizeof *u->rows);
    u->items = calloc((size_t)u->o.batch, sizeof *u->items);
    u->refs = calloc((size_t)u->o.batch, sizeof *u->refs);
    u->forms = calloc((size_t)u->o.batch, sizeof *u->forms);
    if (!u->rows || !u->items || !u->refs || !u->forms) {
        uploader_free(u, 0);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    fp_breaker_init(&u->br, "upstream", &u->o.breaker);
    pthread_mutex_init(&u->mu, NULL);
    fp_cond_init_mono(&u->cv);
    if (pthread_create(&u->th, NULL, run, u) != 0) {
        uploader_free(u, 1);
        return fp_fail(err, FP_EIO, "uploader: cannot start its thread");
    }
    *out = u;
    return 0;
}

void fp_uploader_stop(fp_uploader *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->mu);
    u->stopping = 1;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
    pthread_join(u->th, NULL);
    uploader_free(u, 1);
}

void fp_uploader_kick(fp_uploader *u)
{
    if (!u)
        return;
    pthread_mutex_lock(&u->mu);
    u->kicks++;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

uint64_t fp_uploader_count(fp_uploader *u, fp_upload_outcome o)
{
    return u && (unsigned)o < FP_UPO__N ? (uint64_t)atomic_load(&u->n[o]) : 0;
}

void fp_uploader_metrics(fp_uploader *u, fp_buf *b)
{
    fp_upload_counts c;
    fp_err err = {0};
    if (fp_store_upload_counts(u->o.store, &c, &err) == 0) {
        fp_metrics_emit(b, "fapiao_upload_backlog",
                        "Invoices not yet accepted or rejected by the tax platform (pending or "
                        "submitted).",
                        FP_METRICS_GAUGE, c.n[FP_UPLOAD_PENDING] + c.n[FP_UPLOAD_SUBMITTED], 1);
        int64_t age = c.oldest_waiting_at ? fp_steady_ms() - c.oldest_waiting_at : 0;
        fp_metrics_emit(b, "fapiao_upload_oldest_age_seconds",
                        "Age of the oldest invoice waiting for the tax platform.", FP_METRICS_GAUGE,
                        age > 0 ? age : 0, 1000);
        fp_metrics_emit(b, "fapiao_upload_rejected",
                        "Invoices the tax platform rejected (dead letters to look at).",
                        FP_METRICS_GAUGE, c.n[FP_UPLOAD_REJECTED], 1);
    }
    fp_metrics_scrape f;
    if (fp_metrics_family_begin(
            b, &f,
            &(fp_metrics_opts){.name = "fapiao_upload_total",
                               .help = "Upload rows the worker handled, by outcome.",
                               .type = FP_METRICS_COUNTER,
                               .labels = {"outcome"}}) == 0)
        for (int i = 0; i < FP_UPO__N; i++)
            fp_metrics_family_sample(b, &f, (const char *[]){outcome_names[i]},
                                     (int64_t)fp_uploader_count(u, (fp_upload_outcome)i));
    fp_breaker_state bs;
    uint64_t opened = 0;
    fp_breaker_snapshot(&u->br, fp_mono_ms(), &bs, NULL, &opened);
    fp_metrics_emit(b, "fapiao_upload_breaker_open",
                    "1 while the breaker on the tax platform is open or half-open.",
                    FP_METRICS_GAUGE, bs != FP_BREAKER_CLOSED, 1);
}
