/* test_job_outcome.c — job outcomes are group-committed
 * (src/store/sqlite/job_outcome.c; docs/outbox.md "Job outcomes are
 * group-committed"), checked directly on a store in a temp dir:
 *
 *   savepoints   four render jobs' completions go into one transaction (a
 *                job thread's own); the third one's invoice update fails
 *                (a trigger aborts it) after its job row was already set
 *                done: only that outcome is rolled back, to its savepoint —
 *                its job is still running and its invoice accepted — while
 *                the other three are done and their invoices rendered;
 *   batch        four completions ride on an invoice batch of the writer
 *                whose COMMIT fails (the store's injected write fault):
 *                every outcome fails with the batch, nothing of any is
 *                applied (jobs running, invoices accepted, no invoice
 *                added), and each completes once the fault is lifted.
 *
 * Both put the outcomes into one transaction by holding what that
 * transaction waits for (the writer lock, or the database's write lock on
 * a side connection) until every outcome is queued: states and counts are
 * asserted, never timings. */
#include "check.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/store/sqlite/internal.h"
#include "fapiao/jobs.h"
#include "store_contract.h"

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define NJOBS   4
#define POISON  2 /* the job whose invoice update fails */
#define WAIT_MS 10000

typedef struct jthread {
    pthread_t th;
    fp_store *s;
    fp_job j;
    int rc;
    fp_err err;
} jthread;

static void *complete_main(void *arg)
{
    jthread *t = arg;
    t->rc = fp_jobs_complete(t->s, &t->j, fp_wall_ms(), &t->err);
    return NULL;
}

static fp_sqlite *sq_of(fp_store *s)
{
    return (fp_sqlite *)((struct fp_store *)s)->be;
}

static void nap_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Outcomes queued for the next transaction on the writer connection. */
static int queued(fp_sqlite *sq)
{
    int n = 0;
    pthread_mutex_lock(&sq->jdmu);
    for (sq_jdone *d = sq->jd_head; d; d = d->next)
        n++;
    pthread_mutex_unlock(&sq->jdmu);
    return n;
}

/* Polls cond (bounded in count and time): 1 once it holds. */
static int wait_for(int (*cond)(fp_sqlite *, int), fp_sqlite *sq, int want)
{
    for (int i = 0; i < WAIT_MS / 5; i++) {
        if (cond(sq, want))
            return 1;
        nap_ms(5);
    }
    return cond(sq, want);
}

static int n_queued(fp_sqlite *sq, int want)
{
    return queued(sq) >= want;
}

/* The writer has taken a batch (and, its BEGIN blocked, holds it). */
static int writer_in_batch(fp_sqlite *sq, int want)
{
    (void)want;
    pthread_mutex_lock(&sq->q.lock);
    int in = sq->q.batch != NULL;
    pthread_mutex_unlock(&sq->q.lock);
    return in;
}

static int64_t db_int(const char *path, const char *sql, const char *arg)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (arg)
            sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static int job_is(const char *path, int64_t id, const char *state)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id=%lld AND state=?1",
             (long long)id);
    return db_int(path, sql, state) == 1;
}

static int invoice_is(const char *path, const char *number, const char *status)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM invoices WHERE number='%.20s' AND status=?1",
             number);
    return db_int(path, sql, status) == 1;
}

static sqlite3 *side_open(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int side_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    CHECK_MSG(rc == SQLITE_OK, "side connection: %s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    return rc == SQLITE_OK;
}

/* NJOBS invoices issued and their render jobs claimed (in t[].j). */
static int setup(sc_env *e, const fp_invoice *inv, const char *dir, const char *label,
                 jthread t[NJOBS])
{
    if (!sc_begin(e, &fp_store_sqlite_ops, inv, dir, "outcome", label, 1, 100))
        return 0;
    for (int i = 0; i < NJOBS; i++) {
        char serial[32];
        snprintf(serial, sizeof serial, "%s-%d", label, i);
        int k = sc_issue(e, serial, (unsigned char)(0x10 + i));
        if (k < 0 || !CHECK_EQ_INT(e->result[k], FP_ISSUE_CREATED))
            return 0;
    }
    for (int i = 0; i < NJOBS; i++) {
        fp_err err = {0};
        int64_t due = 0;
        memset(&t[i], 0, sizeof t[i]);
        t[i].s = e->s;
        if (!CHECK_MSG(fp_jobs_claim(e->s, fp_wall_ms(), 7, 600000, &t[i].j, &due, &err) == 0,
                       "claim %d: %s", i, err.msg) ||
            !CHECK_EQ_INT(t[i].j.kind, FP_JOB_RENDER))
            return 0;
    }
    return 1;
}

static void start_all(jthread t[NJOBS])
{
    for (int i = 0; i < NJOBS; i++)
        if (pthread_create(&t[i].th, NULL, complete_main, &t[i]) != 0) {
            fprintf(stderr, "test_job_outcome: pthread_create failed\n");
            exit(1);
        }
}

static void join_all(jthread t[NJOBS])
{
    for (int i = 0; i < NJOBS; i++)
        pthread_join(t[i].th, NULL);
}

static void test_savepoints(const fp_invoice *inv, const char *dir)
{
    check_ctx("savepoints");
    sc_env e;
    jthread t[NJOBS];
    if (!setup(&e, inv, dir, "savepoint", t)) {
        sc_end(&e);
        return;
    }
    /* the poisoned invoice's status update aborts: after its job row was
     * set done in the same outcome */
    sqlite3 *side = side_open(e.path);
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE TRIGGER poison BEFORE UPDATE OF status ON invoices "
             "WHEN OLD.number='%.20s' BEGIN SELECT RAISE(ABORT, 'poisoned by the test'); END",
             t[POISON].j.invoice_number);
    side_exec(side, sql);

    /* one transaction for all four: the writer lock is held until every
     * outcome is queued; the first thread to get it commits them all */
    fp_sqlite *sq = sq_of(e.s);
    fp_sq_wlock(sq);
    start_all(t);
    int all_queued = wait_for(n_queued, sq, NJOBS);
    fp_sq_wunlock(sq);
    join_all(t);
    if (!CHECK_MSG(all_queued, "only %d of %d outcomes queued", queued(sq), NJOBS))
        goto out;

    for (int i = 0; i < NJOBS; i++) {
        const char *n = t[i].j.invoice_number;
        check_ctx("savepoints: job %d%s", i, i == POISON ? " (poisoned)" : "");
        if (i == POISON) {
            CHECK_EQ_INT(t[i].rc, FP_EIO);
            CHECK_MSG(strstr(t[i].err.msg, "poisoned") != NULL, "error: %s", t[i].err.msg);
            /* its savepoint undid the job row it had set done */
            CHECK_MSG(job_is(e.path, t[i].j.id, "running"), "job %lld not running",
                      (long long)t[i].j.id);
            CHECK_MSG(invoice_is(e.path, n, "accepted"), "invoice %s not accepted", n);
        } else {
            CHECK_EQ_INT(t[i].rc, 0);
            CHECK_MSG(job_is(e.path, t[i].j.id, "done"), "job %lld not done", (long long)t[i].j.id);
            CHECK_MSG(invoice_is(e.path, n, "rendered"), "invoice %s not rendered", n);
        }
    }
    /* the poisoned one still holds its lease: once the cause is gone it
     * completes */
    check_ctx("savepoints: poisoned job again");
    side_exec(side, "DROP TRIGGER poison");
    fp_err err = {0};
    CHECK_EQ_INT(fp_jobs_complete(e.s, &t[POISON].j, fp_wall_ms(), &err), 0);
    CHECK(job_is(e.path, t[POISON].j.id, "done"));
    CHECK(invoice_is(e.path, t[POISON].j.invoice_number, "rendered"));
out:
    sqlite3_close(side);
    sc_end(&e);
    check_ctx("%s", "");
}

static void test_batch_rollback(const fp_invoice *inv, const char *dir)
{
    check_ctx("batch rollback");
    sc_env e;
    jthread t[NJOBS];
    if (!setup(&e, inv, dir, "batch", t)) {
        sc_end(&e);
        return;
    }
    int64_t invoices = db_int(e.path, "SELECT count(*) FROM invoices", NULL);
    /* the database's write lock on a side connection: the writer takes the
     * next invoice and waits in its BEGIN, holding the writer lock, so the
     * outcomes queue up behind it and ride on its batch */
    sqlite3 *side = side_open(e.path);
    if (!side_exec(side, "BEGIN IMMEDIATE"))
        goto out;
    fp_sqlite *sq = sq_of(e.s);
    int want = 0;
    int k = sc_submit(&e, "batch-carrier", 0x40, &want);
    int in_batch = k >= 0 && wait_for(writer_in_batch, sq, 1);
    start_all(t);
    int all_queued = in_batch && wait_for(n_queued, sq, NJOBS);
    sc_faults(&e, 1); /* the batch's COMMIT fails */
    side_exec(side, "COMMIT");
    join_all(t);
    int answered = k >= 0 && sc_wait(&e, want);
    sc_faults(&e, 0);
    if (!CHECK_MSG(in_batch && all_queued && answered,
                   "not one batch: writer in batch %d, %d of %d outcomes queued, answered %d",
                   in_batch, queued(sq), NJOBS, answered))
        goto out;
    CHECK_MSG(e.result[k] != FP_ISSUE_CREATED, "the failed batch's invoice was acknowledged");
    CHECK_EQ_INT(db_int(e.path, "SELECT count(*) FROM invoices", NULL), invoices);
    for (int i = 0; i < NJOBS; i++) {
        check_ctx("batch rollback: job %d", i);
        CHECK_EQ_INT(t[i].rc, FP_EIO);
        CHECK_MSG(job_is(e.path, t[i].j.id, "running"), "job %lld not running",
                  (long long)t[i].j.id);
        CHECK_MSG(invoice_is(e.path, t[i].j.invoice_number, "accepted"), "invoice %s not accepted",
                  t[i].j.invoice_number);
    }
    /* nothing was half-applied: each completes as if for the first time */
    for (int i = 0; i < NJOBS; i++) {
        check_ctx("batch rollback: job %d again", i);
        fp_err err = {0};
        CHECK_EQ_INT(fp_jobs_complete(e.s, &t[i].j, fp_wall_ms(), &err), 0);
        CHECK(job_is(e.path, t[i].j.id, "done"));
        CHECK(invoice_is(e.path, t[i].j.invoice_number, "rendered"));
    }
out:
    sqlite3_close(side);
    sc_end(&e);
    check_ctx("%s", "");
}

int main(void)
{
    static char tmpdir[] = "/tmp/fapiao-test-job-outcome-XXXXXX";
    static fp_invoice inv;
    char *example = NULL;
    (void)sc_run; /* the contract suite runs in test_store.c */
    if (sc_fixture(tmpdir, &example, &inv)) {
        test_savepoints(&inv, tmpdir);
        test_batch_rollback(&inv, tmpdir);
    }
    sc_fixture_end(tmpdir, example, &inv);
    return check_summary();
}
