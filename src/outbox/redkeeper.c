/* redkeeper.c — the red keeper's thread (redkeeper.h, docs/upstream.md
 * "Red forms"): QDHZQRDSQ and CXQDHZQRDMX through src/upstream/, the
 * forms through the store.  Like the number keeper, a thread on the store
 * that calls out and writes back. */
#include "fapiao/redkeeper.h"
#include "fapiao/clock.h"
#include "fapiao/keeper.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DUE 1000 /* forms per pass (the store names at most this many) */

struct fp_redkeeper {
    fp_redkeeper_opts o;
    fp_keeper *thread;
    _Atomic uint64_t filed, synced, failures;
};

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

/* Every due form: 1 when something failed. */
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
        int rc = l->d[i].up_uuid[0] ? sync_form(k, &l->d[i]) : file_form(k, &l->d[i]);
        if (rc < 0) {
            atomic_fetch_add(&k->failures, 1);
            failed = 1;
        }
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
