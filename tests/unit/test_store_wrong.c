/* test_store_wrong.c — tests of the store's contract suite
 * (store_contract.h): deliberately wrong backends, each a wrapper of the
 * SQLite backend's table of operations that breaks exactly one guarantee,
 * must fail the suite, and in the check that states that guarantee.
 *
 *   reuse      after a failed commit, the next invoice is acknowledged with
 *              the number acknowledged last before the failure (a counter
 *              rewound to a stale copy);
 *   no_idem    a replayed key gets a second invoice (the key is not what
 *              the backend deduplicates on);
 *   early_ack  answers CREATED when a request is queued, before its commit;
 *   red_over   stores a red form its blue invoice has no room for (the cap
 *              check is skipped);
 *   audit_gap  its audit snapshot's scan leaves out the second record (what
 *              a backend's reader with an off-by-one would hand the auditor).
 *
 * The SQLite backend itself passes the same suite in test_store.c.  The
 * suite's failures here are expected: it runs in collect mode, which
 * reports them (on stderr) and takes them out of the count. */
#include "check.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/store/sqlite/internal.h"
#include "store_contract.h"

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

/* ---- a done callback wrapped by the backend ---- */

typedef struct wrapped {
    fp_issue_req *r;
    void (*done)(fp_issue_req *r, void *arg);
    void *arg;
} wrapped;

static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static wrapped wraps[SC_MAX_REQS * 4];
static int nwraps;
/* reuse's state: the number acknowledged last, and whether a rollback
 * happened since */
static char last_acked[FP_NUMBER_LEN + 1];
static int rewind_next;

static void wrap(fp_issue_req *r, void (*fn)(fp_issue_req *r, void *arg))
{
    pthread_mutex_lock(&wmu);
    if (nwraps < (int)NCASES(wraps))
        wraps[nwraps++] = (wrapped){r, r->done, r->arg};
    pthread_mutex_unlock(&wmu);
    r->done = fn;
}

/* Calls r's own done callback. */
static void unwrap_done(fp_issue_req *r)
{
    wrapped w = {0};
    pthread_mutex_lock(&wmu);
    for (int i = 0; i < nwraps; i++)
        if (wraps[i].r == r)
            w = wraps[i];
    pthread_mutex_unlock(&wmu);
    if (w.done) {
        r->done = w.done;
        r->arg = w.arg;
        w.done(r, w.arg);
    }
}

static int wrong_open(const fp_store_opts *o, void **be, fp_err *err)
{
    pthread_mutex_lock(&wmu);
    nwraps = 0;
    last_acked[0] = 0;
    rewind_next = 0;
    pthread_mutex_unlock(&wmu);
    return fp_store_sqlite_ops.open(o, be, err);
}

/* ---- reuse: a number counter rewound after a rollback ---- */

static void reuse_done(fp_issue_req *r, void *arg)
{
    (void)arg;
    if (r->result == FP_ISSUE_FAILED)
        rewind_next = last_acked[0] != 0;
    else if (r->result == FP_ISSUE_CREATED && rewind_next) {
        memcpy(r->number, last_acked, sizeof r->number);
        rewind_next = 0;
    } else if (r->result == FP_ISSUE_CREATED)
        memcpy(last_acked, r->number, sizeof last_acked);
    unwrap_done(r);
}

static void reuse_submit(void *be, fp_issue_req *r)
{
    wrap(r, reuse_done);
    fp_store_sqlite_ops.store_submit(be, r);
}

/* ---- no_idem: the key is made unique, so a replay is a new invoice ---- */

static int idem_counter;

static void no_idem_submit(void *be, fp_issue_req *r)
{
    char serial[sizeof r->serial];
    snprintf(serial, sizeof serial, "%.50s#%d", r->serial, ++idem_counter);
    memcpy(r->serial, serial, sizeof serial);
    fp_store_sqlite_ops.store_submit(be, r);
}

/* ---- early_ack: CREATED when queued ---- */

static void ignore_done(fp_issue_req *r, void *arg)
{
    (void)r;
    (void)arg;
}

static void early_ack_submit(void *be, fp_issue_req *r)
{
    void (*done)(fp_issue_req *, void *) = r->done;
    void *arg = r->arg;
    r->result = FP_ISSUE_CREATED; /* "it will be" */
    done(r, arg);
    r->done = ignore_done;
    fp_store_sqlite_ops.store_submit(be, r);
}

/* ---- red_over: a form stored without the cap check ---- */

static int red_over_create(void *be, int64_t seller_id, fp_red_form *f, const char *state,
                           int64_t expires_at, const fp_red_form_up *up, fp_red_form_rec *out,
                           fp_errors *es, const fp_audit_rec *audit, fp_err *err)
{
    int rc = fp_store_sqlite_ops.store_red_form_adopt(be, seller_id, f, state, expires_at, up, out,
                                                      es, audit, err);
    if (rc != FP_ERANGE)
        return rc;
    fp_sqlite *s = be;
    int64_t id = 0;
    char form_no[24];
    sqlite3 *db = fp_sq_wlock(s);
    rc = fp_sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == 0 &&
        (rc = fp_sq_red_form_insert(s, seller_id, f, state, expires_at, &id, form_no, err)) == 0)
        rc = fp_sq_exec(db, "COMMIT", err);
    if (rc < 0)
        fp_sq_exec(db, "ROLLBACK", NULL);
    fp_sq_wunlock(s);
    return rc < 0 ? rc : fp_store_sqlite_ops.store_red_form_get(be, seller_id, form_no, out);
}

/* sellers: a second seller with a tax id already taken is stored (the
 * check skipped, as a backend without it would) */
static int dup_seller_create(void *be, const fp_seller *seller, int64_t *id,
                             const fp_audit_rec *audit, fp_err *err)
{
    (void)audit;
    return fp_store_sqlite_ops.store_add_seller(be, seller, id, err);
}

/* ---- the runs ---- */

/* ---- audit_gap: a snapshot whose scan drops the second record ---- */

typedef struct gap_ctx {
    int (*fn)(fp_audit_snap *a, void *arg);
    void *arg;
    int (*scan)(fp_audit_snap *a, const fp_audit_scan *q, fp_err *err);
    fp_audit_scan q;
    int rows;
} gap_ctx;

static gap_ctx *gap; /* the snapshot running (the suite is single-threaded) */

static int gap_row(const fp_audit_row *r, void *arg)
{
    gap_ctx *g = arg;
    return ++g->rows == 2 ? 0 : g->q.on_row(r, g->q.arg);
}

static int gap_cp(const fp_audit_cp *cp, void *arg)
{
    gap_ctx *g = arg;
    return g->q.on_cp(cp, g->q.arg);
}

static int gap_scan(fp_audit_snap *a, const fp_audit_scan *q, fp_err *err)
{
    gap_ctx *g = gap;
    g->q = *q;
    g->rows = 0;
    fp_audit_scan w = *q;
    w.on_row = gap_row;
    w.on_cp = gap_cp;
    w.arg = g;
    return g->scan(a, &w, err);
}

static int gap_fn(fp_audit_snap *a, void *arg)
{
    gap_ctx *g = arg;
    g->scan = a->scan;
    a->scan = gap_scan;
    gap = g;
    return g->fn(a, g->arg);
}

static int audit_gap_snapshot(void *be, int (*fn)(fp_audit_snap *a, void *arg), void *arg,
                              fp_err *err)
{
    gap_ctx g = {.fn = fn, .arg = arg};
    return sq_store_audit_snapshot(be, gap_fn, &g, err);
}

typedef struct wrong {
    const char *name;
    const char *caught_by; /* the check that states the guarantee it breaks */
    fp_store_ops ops;
} wrong;

int main(void)
{
    static char tmpdir[] = "/tmp/fapiao-test-store-wrong-XXXXXX";
    char *example = check_read_file(FP_SOURCE_DIR "/examples/invoice.json", NULL);
    static fp_errors es;
    static fp_invoice inv;
    if (!CHECK(example != NULL) ||
        !CHECK(fp_invoice_parse(example, strlen(example), NULL, &inv, &es) == 0) ||
        !CHECK(mkdtemp(tmpdir) != NULL))
        return check_summary();

    static wrong wrongs[] = {
        {"reuse", "no_reuse", {0}},        {"no_idem", "idempotency", {0}},
        {"early_ack", "durable_ack", {0}}, {"red_over", "red_caps", {0}},
        {"audit_gap", "audit_chain", {0}}, {"dup_seller", "sellers", {0}},
    };
    for (size_t i = 0; i < NCASES(wrongs); i++) {
        wrongs[i].ops = fp_store_sqlite_ops;
        wrongs[i].ops.name = wrongs[i].name;
        wrongs[i].ops.open = wrong_open;
    }
    wrongs[0].ops.store_submit = reuse_submit;
    wrongs[1].ops.store_submit = no_idem_submit;
    wrongs[2].ops.store_submit = early_ack_submit;
    wrongs[3].ops.store_red_form_adopt = red_over_create;
    wrongs[4].ops.store_audit_snapshot = audit_gap_snapshot;
    wrongs[5].ops.store_seller_create = dup_seller_create;

    for (size_t i = 0; i < NCASES(wrongs); i++) {
        wrong *w = &wrongs[i];
        fprintf(stderr, "--- wrong backend %s: the suite must fail (its failures follow) ---\n",
                w->name);
        int failed[SC_NCHECKS];
        int n = sc_run(&w->ops, w->name, &inv, tmpdir, 1, failed);
        char which[256] = "";
        int caught = 0;
        for (int c = 0; c < SC_NCHECKS; c++)
            if (failed[c]) {
                size_t at = strlen(which);
                snprintf(which + at, sizeof which - at, "%s%s", at ? ", " : "", sc_checks[c].name);
                caught |= !strcmp(sc_checks[c].name, w->caught_by);
            }
        printf("wrong backend %-9s: %d of %d contract checks failed (%s)\n", w->name, n, SC_NCHECKS,
               n ? which : "none");
        check_ctx("wrong backend %s", w->name);
        CHECK_MSG(n > 0, "the contract suite passed a backend that breaks %s", w->caught_by);
        CHECK_MSG(caught, "check %s did not catch it (failed: %s)", w->caught_by,
                  n ? which : "none");
    }
    check_ctx("%s", "");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    CHECK(system(cmd) == 0);
    fp_invoice_clear(&inv);
    free(example);
    return check_summary();
}
