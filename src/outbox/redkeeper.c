/* redkeeper.c — the red keeper's thread (redkeeper.h, docs/upstream.md
 * "Red forms"): QDHZQRDSQ, QDHZQRDQR, CXQDHZQRDLB and CXQDHZQRDMX through
 * src/upstream/, the forms through the store.  Like the number keeper, a
 * thread on the store that calls out and writes back.
 *
 * Our answers (the reviewer's confirm / reject, our withdraw) wait on the
 * form in the store until the platform has taken them: each is sent after
 * a look at the form (CXQDHZQRDMX), so an answer whose reply was lost is
 * never sent twice — the look shows it taken and the form moves. */
#include "fapiao/redkeeper.h"
#include "fapiao/clock.h"
#include "fapiao/keeper.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DUE 1000 /* forms per pass (the store names at most this many) */

#define MAX_SELLERS 256 /* sellers whose incoming forms are listed per pass */
#define LIST_PAGE   100 /* forms per CXQDHZQRDLB page (one page per pass) */

struct fp_redkeeper {
    fp_redkeeper_opts o;
    fp_keeper *thread;
    _Atomic uint64_t filed, synced, failures;
};

/* The platform's state of a form the buyer filed that awaits our answer
 * (redforms.c's table). */
#define BUYER_FILED_AWAITING_US "03" /* 购方录入待销方确认 */

typedef struct due_list {
    fp_red_form_due d[MAX_DUE];
    int n;
} due_list;

static void collect(const fp_red_form_due *d, void *arg)
{
    due_list *l = arg;
    if (l->n < MAX_DUE)
        l->d[l->n++] = *d;
}

static void log_event(const char *event, const char *form_no, const char *kind, const char *msg)
{
    /* the message is the platform's or ours: no secrets in it */
    char clean[256];
    fp_keeper_clean(msg, clean, sizeof clean);
    fprintf(stderr, "{\"event\":\"%s\",\"form_id\":\"%s\",\"kind\":\"%s\",\"message\":\"%s\"}\n",
            event, form_no, kind, clean);
}

/* Stores what the platform says of form d (our state follows its state
 * when the table knows it): 0, or -1. */
static int store_up(fp_redkeeper *k, const fp_red_form_due *d, const fp_up_red_form *f,
                    const char *action)
{
    fp_red_form_up u;
    fp_red_state ours;
    snprintf(u.uuid, sizeof u.uuid, "%s", f->uuid);
    snprintf(u.number, sizeof u.number, "%s", f->number);
    snprintf(u.state, sizeof u.state, "%s", f->state);
    const char *to = fp_up_red_state(f->state, &ours) == 0 ? fp_red_state_name(ours) : NULL;
    if (!to)
        log_event("red_form_state_unknown", d->form_no, "PROTOCOL", f->state);
    fp_err err = {0};
    fp_audit_rec a = {.ts = 0, /* now */
                      .actor = "upstream",
                      .action = action,
                      .outcome = to ? to : d->state,
                      .seller_id = d->seller_id};
    int rc = fp_store_red_form_upstream(k->o.store, d->seller_id, d->form_no, &u, d->state, to, &a,
                                        &err);
    if (rc == FP_ECONFLICT) /* moved meanwhile (issued, withdrawn): looked at again */
        return 0;
    if (rc < 0) {
        log_event("red_form_upstream_failed", d->form_no, "LOCAL", err.msg);
        return -1;
    }
    fprintf(stderr,
            "{\"event\":\"red_form_upstream\",\"form_id\":\"%s\",\"uuid\":\"%s\","
            "\"number\":\"%s\",\"hzqrxxztDm\":\"%s\",\"state\":\"%s\"}\n",
            d->form_no, u.uuid, u.number, u.state, to ? to : d->state);
    return 0;
}

/* The blue document and the red draft of a stored form, as QDHZQRDSQ maps
 * them; 0, or -1 (f and red cleared by the caller either way). */
static int form_docs(fp_redkeeper *k, const fp_red_form_due *d, const fp_red_form_rec *rec,
                     fp_red_form *f, fp_invoice_doc *red, fp_err *err)
{
    fp_seller seller;
    char *blue = NULL;
    size_t blen = 0;
    fp_doc doc = {0};
    time_t cst = (time_t)(fp_wall_ms() / 1000) + FP_CST_OFFSET_S; /* China Standard Time */
    struct tm tm;
    char issued_at[40];
    gmtime_r(&cst, &tm);
    strftime(issued_at, sizeof issued_at, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
    int rc =
        fp_store_get_seller(k->o.store, d->seller_id, &seller) < 0 ||
                fp_store_get_invoice(k->o.store, d->seller_id, rec->blue_number, &blue, &blen) <
                    0 ||
                fp_red_form_load(blue, blen, rec->reason, rec->lines, rec->nlines, f, err) < 0 ||
                fp_red_render(f, &seller, rec->form_no, rec->form_no, issued_at, &doc) < 0 ||
                fp_invoice_doc_read(doc.json, doc.len, red, err) < 0
            ? -1
            : 0;
    free(doc.json);
    free(blue);
    return rc;
}

/* Files form d (QDHZQRDSQ under its serial): 0, or -1. */
static int file_form(fp_redkeeper *k, const fp_red_form_due *d)
{
    fp_red_form_rec rec;
    fp_red_form f;
    fp_invoice_doc red;
    fp_err err = {0};
    memset(&f, 0, sizeof f);
    memset(&red, 0, sizeof red);
    int rc = fp_store_red_form_get(k->o.store, d->seller_id, d->form_no, &rec);
    if (rc < 0 || strcmp(rec.state, d->state) != 0) { /* gone, or lapsed on read */
        fp_red_form_rec_clear(&rec);
        return rc == FP_ENOTFOUND || rc == 0 ? 0 : -1;
    }
    if (form_docs(k, d, &rec, &f, &red, &err) < 0) {
        log_event("red_form_file_failed", d->form_no, "LOCAL", err.msg);
        rc = -1;
    } else {
        char serial[64];
        fp_up_red_serial(f.doc.seller.tax_id, d->form_no, serial);
        fp_up_red_form out;
        fp_up_result res;
        fp_up_kind kind = fp_up_red_apply(k->o.conf, &f.doc, &red, serial, &out, &res);
        if (kind != FP_UP_OK) {
            log_event("red_form_file_failed", d->form_no, fp_up_kind_get(kind)->name, res.message);
            rc = -1;
        } else if ((rc = store_up(k, d, &out, "red_form.file")) == 0) {
            atomic_fetch_add(&k->filed, 1);
        }
    }
    fp_invoice_doc_clear(&red);
    fp_red_form_clear(&f);
    fp_red_form_rec_clear(&rec);
    return rc;
}

/* Looks filed form d up (CXQDHZQRDMX) and follows its state: 0, or -1. */
static int sync_form(fp_redkeeper *k, const fp_red_form_due *d)
{
    fp_seller seller;
    if (fp_store_get_seller(k->o.store, d->seller_id, &seller) < 0)
        return -1;
    fp_up_red_form out;
    fp_up_result res;
    fp_up_kind kind = fp_up_red_detail(k->o.conf, seller.tax_id, d->up_uuid, &out, NULL, &res);
    if (kind != FP_UP_OK) {
        log_event("red_form_sync_failed", d->form_no, fp_up_kind_get(kind)->name, res.message);
        return -1;
    }
    fp_red_state ours;
    if (fp_up_red_state(out.state, &ours) == 0 && strcmp(fp_red_state_name(ours), d->state) == 0)
        return 0; /* no news */
    if (store_up(k, d, &out, "red_form.sync") < 0)
        return -1;
    atomic_fetch_add(&k->synced, 1);
    return 0;
}

/* Sends our answer to filed form d (QDHZQRDQR), after looking at the form
 * first: a form that moved there (the answer taken, a reply lost, or the
 * buyer withdrew, or it lapsed) is stored as it is and the answer settled;
 * 0, or -1 to try again. */
static int answer_form(fp_redkeeper *k, const fp_red_form_due *d)
{
    fp_seller seller;
    fp_up_red_form out;
    fp_up_result res;
    fp_red_state ours;
    if (fp_store_get_seller(k->o.store, d->seller_id, &seller) < 0)
        return -1;
    for (int sent = 0;; sent++) {
        fp_up_kind kind = fp_up_red_detail(k->o.conf, seller.tax_id, d->up_uuid, &out, NULL, &res);
        if (kind != FP_UP_OK) {
            log_event("red_form_answer_failed", d->form_no, fp_up_kind_get(kind)->name,
                      res.message);
            return -1;
        }
        int moved = fp_up_red_state(out.state, &ours) == 0 &&
                    strcmp(fp_red_state_name(ours), d->state) != 0;
        if (moved || sent) /* stored with its new state: the answer settled */
            return store_up(k, d, &out, "red_form.answer");
        kind =
            fp_up_red_answer(k->o.conf, seller.tax_id, d->up_uuid, out.number, d->answer[0], &res);
        if (kind == FP_UP_REFUSED) { /* the platform will not take it: settled, as it stands */
            log_event("red_form_answer_refused", d->form_no, "REFUSED", res.message);
            fp_red_form_up u;
            snprintf(u.uuid, sizeof u.uuid, "%s", out.uuid);
            snprintf(u.number, sizeof u.number, "%s", out.number);
            snprintf(u.state, sizeof u.state, "%s", out.state);
            fp_audit_rec a = {.actor = "upstream",
                              .action = "red_form.answer",
                              .outcome = "refused",
                              .seller_id = d->seller_id};
            fp_err err = {0};
            int rc = fp_store_red_form_upstream(k->o.store, d->seller_id, d->form_no, &u, d->state,
                                                d->state, &a, &err);
            return rc == 0 || rc == FP_ECONFLICT ? 0 : -1;
        }
        if (kind != FP_UP_OK) { /* the next pass looks before sending again */
            log_event("red_form_answer_failed", d->form_no, fp_up_kind_get(kind)->name,
                      res.message);
            return -1;
        }
    }
}

/* The API's request for a form the buyer filed (docs/api.md): its reason
 * and, unless a full reversal, its lines (blue line, quantity, amount). */
static char *incoming_request(const cJSON *data)
{
    const cJSON *dm = cJSON_GetObjectItemCaseSensitive(data, "chyyDm");
    long code;
    if (!cJSON_IsString(dm) || fp_up_whole(dm->valuestring, 1, 4, &code) < 0)
        return NULL;
    fp_red_reason reason = (fp_red_reason)(code - 1);
    cJSON *req = cJSON_CreateObject(), *items = NULL, *e;
    if (!req || !cJSON_AddStringToObject(req, "reason", fp_red_reason_name(reason)) ||
        !cJSON_AddStringToObject(req, "initiated_by", "buyer"))
        goto fail;
    if (reason != FP_RED_ISSUE_ERROR && !(items = cJSON_AddArrayToObject(req, "items")))
        goto fail;
    const cJSON *lines = items ? cJSON_GetObjectItemCaseSensitive(data, "hzqrdmxList") : NULL;
    cJSON_ArrayForEach(e, lines)
    {
        const cJSON *ln = cJSON_GetObjectItemCaseSensitive(e, "lzmxxh");
        const cJSON *je = cJSON_GetObjectItemCaseSensitive(e, "je");
        const cJSON *sl = cJSON_GetObjectItemCaseSensitive(e, "fpspsl");
        long line;
        cJSON *it = cJSON_CreateObject();
        if (!it || !cJSON_AddItemToArray(items, it) || !cJSON_IsString(ln) || !cJSON_IsString(je) ||
            fp_up_whole(ln->valuestring, 1, FP_MAX_ITEMS, &line) < 0 ||
            !cJSON_AddNumberToObject(it, "line", (double)line) ||
            !cJSON_AddStringToObject(it, "amount", je->valuestring) ||
            (reason == FP_RED_SALES_RETURN && cJSON_IsString(sl) &&
             !cJSON_AddStringToObject(it, "quantity", sl->valuestring)))
            goto fail;
    }
    char *s = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    return s;
fail:
    cJSON_Delete(req);
    return NULL;
}

/* Takes in the form uuid that the buyer filed about one of seller's blue
 * invoices (CXQDHZQRDMX for its lines): awaiting our answer.  0 (also when
 * it is already here), or -1. */
static int adopt_form(fp_redkeeper *k, const fp_seller *seller, const char *uuid)
{
    fp_up_red_form out;
    fp_up_result res;
    cJSON *data = NULL;
    fp_up_kind kind = fp_up_red_detail(k->o.conf, seller->tax_id, uuid, &out, &data, &res);
    if (kind != FP_UP_OK) {
        cJSON_Delete(data);
        log_event("red_form_incoming_failed", uuid, fp_up_kind_get(kind)->name, res.message);
        return -1;
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(data, "data");
    d = d ? d : data;
    const cJSON *lz = cJSON_GetObjectItemCaseSensitive(d, "lzfphm");
    char *req = incoming_request(d), *blue = NULL;
    size_t blen = 0;
    fp_red_form f;
    fp_errors *es = calloc(1, sizeof *es);
    fp_err err = {0};
    memset(&f, 0, sizeof f);
    int rc = -1;
    if (!req || !es || !cJSON_IsString(lz) ||
        fp_store_get_invoice(k->o.store, seller->id, lz->valuestring, &blue, &blen) < 0 ||
        fp_red_form_parse(req, strlen(req), blue, blen, &f, es) < 0) {
        log_event("red_form_incoming_failed", uuid, "LOCAL",
                  es && es->n ? es->e[0].en : "the form does not map to a blue here");
    } else {
        fp_red_form_up up;
        snprintf(up.uuid, sizeof up.uuid, "%s", out.uuid);
        snprintf(up.number, sizeof up.number, "%s", out.number);
        snprintf(up.state, sizeof up.state, "%s", out.state);
        fp_red_state st = FP_RED_ST_AWAITING_SELLER;
        fp_red_form_rec rec;
        fp_audit_rec a = {
            .actor = "upstream", .action = "red_form.incoming", .seller_id = seller->id};
        rc = fp_store_red_form_adopt(k->o.store, seller->id, &f, fp_red_state_name(st),
                                     fp_red_deadline(st, fp_wall_s()), &up, &rec, es, &a, &err);
        if (rc == 0)
            fprintf(stderr,
                    "{\"event\":\"red_form_incoming\",\"form_id\":\"%s\",\"uuid\":\"%s\","
                    "\"number\":\"%s\"}\n",
                    rec.form_no, up.uuid, up.number);
        else if (rc != FP_ECONFLICT) /* ECONFLICT: here already */
            log_event("red_form_incoming_failed", uuid, "LOCAL",
                      err.msg[0] ? err.msg : "refused by the caps of the blue invoice");
        fp_red_form_rec_clear(&rec);
        rc = rc == 0 || rc == FP_ECONFLICT ? 0 : -1;
    }
    fp_red_form_clear(&f);
    free(es);
    free(blue);
    free(req);
    cJSON_Delete(data);
    return rc;
}

typedef struct seller_list {
    fp_seller *s;
    int n;
} seller_list;

static void collect_seller(const fp_seller *x, void *arg)
{
    seller_list *l = arg;
    if (l->n < MAX_SELLERS && !x->disabled)
        l->s[l->n++] = *x;
}

/* Whether uuid is a due form's here (one we know and still follow). */
static int known(const due_list *l, const char *uuid)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->d[i].up_uuid, uuid))
            return 1;
    return 0;
}

/* The forms the buyers filed about each seller's invoices that await our
 * answer (CXQDHZQRDLB, state 03), taken in once: 1 when something failed. */
static int incoming(fp_redkeeper *k, const due_list *due)
{
    seller_list l = {calloc(MAX_SELLERS, sizeof(fp_seller)), 0};
    int failed = !l.s || fp_store_sellers(k->o.store, collect_seller, &l) < 0;
    for (int i = 0; i < l.n; i++) {
        cJSON *data = NULL, *e;
        fp_up_result res;
        fp_up_kind kind = fp_up_red_list(k->o.conf, l.s[i].tax_id, BUYER_FILED_AWAITING_US, 1,
                                         LIST_PAGE, &data, &res);
        if (kind != FP_UP_OK)
            log_event("red_form_incoming_failed", "", fp_up_kind_get(kind)->name, res.message);
        failed |= kind != FP_UP_OK;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(data, "data");
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d ? d : data, "list"))
        {
            const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "uuid");
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "hzqrxxztDm");
            if (cJSON_IsString(u) && !known(due, u->valuestring) && cJSON_IsString(st) &&
                !strcmp(st->valuestring, BUYER_FILED_AWAITING_US))
                failed |= adopt_form(k, &l.s[i], u->valuestring) < 0;
        }
        cJSON_Delete(data);
    }
    free(l.s);
    return failed;
}

/* Every due form, then the forms filed against us: 1 when something
 * failed. */
static int pass(void *arg)
{
    fp_redkeeper *k = arg;
    int failed = 0;
    due_list *l = calloc(1, sizeof *l);
    if (!l || fp_store_red_forms_upstream(k->o.store, collect, l) < 0) {
        free(l);
        return 1;
    }
    for (int i = 0; i < l->n; i++) {
        const fp_red_form_due *d = &l->d[i];
        int rc = d->answer[0]    ? answer_form(k, d)
                 : d->up_uuid[0] ? sync_form(k, d)
                                 : file_form(k, d);
        if (rc < 0) {
            atomic_fetch_add(&k->failures, 1);
            failed = 1;
        }
    }
    if (incoming(k, l)) {
        atomic_fetch_add(&k->failures, 1);
        failed = 1;
    }
    free(l);
    return failed;
}

int fp_redkeeper_start(const fp_redkeeper_opts *o, fp_redkeeper **out, fp_err *err)
{
    *out = NULL;
    fp_redkeeper *k = calloc(1, sizeof *k);
    if (!k)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    k->o = *o;
    int rc = fp_keeper_start("red keeper", pass, k, o->check_ms, &k->thread, err);
    if (rc < 0) {
        free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void fp_redkeeper_stop(fp_redkeeper *k)
{
    if (!k)
        return;
    fp_keeper_stop(k->thread);
    free(k);
}

void fp_redkeeper_stats_get(fp_redkeeper *k, fp_redkeeper_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!k)
        return;
    out->filed = atomic_load(&k->filed);
    out->synced = atomic_load(&k->synced);
    out->failures = atomic_load(&k->failures);
}
