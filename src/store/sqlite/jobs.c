/* jobs.c — the outbox's rows (see jobs.h): claim with a lease, complete or
 * fail in one transaction with the invoice state, recover after a crash.
 *
 * Every write runs on the store's writer connection under its lock, so it
 * queues behind (never interleaves with) a group commit.  A claim is
 * committed with synchronous=NORMAL: losing it in a power cut only means the
 * job is pending again, which recovery does anyway; completions and
 * failures are fully durable.
 *
 * Completions and failures are group-committed: each is queued (jd_*), and
 * the next transaction on the writer connection takes every queued one —
 * the writer's batch of invoices when one is running (writer.c), else the
 * first job thread to get the lock.  A job thread returns only once its
 * outcome is committed (or failed), as before; but one fsync now carries
 * many outcomes and an invoice batch, instead of one fsync per job, each
 * holding the writer's lock (docs/outbox.md, "Job outcomes are
 * group-committed").  Each outcome runs in its own savepoint, so one that
 * fails is undone alone.
 *
 * The statements of the hot path (claims, outcomes) are prepared once per
 * writer connection and kept (jq below): compiling them for every job was
 * about 70% of the instructions of a claim and its completion
 * (docs/performance.md). */
#include "fapiao/jobs.h"
#include "fapiao/seal.h"
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[FP_JOB__KINDS] = {"render", "notify"};
static const char *const state_names[FP_JS__STATES] = {"blocked", "pending", "running", "done",
                                                       "dead"};

const char *fp_job_kind_name(fp_job_kind k)
{
    return (unsigned)k < FP_JOB__KINDS ? kind_names[k] : "?";
}

const char *fp_job_state_name(fp_job_state s)
{
    return (unsigned)s < FP_JS__STATES ? state_names[s] : "?";
}

int fp_job_state_from_name(const char *s)
{
    for (int i = 0; i < FP_JS__STATES; i++)
        if (s && !strcmp(s, state_names[i]))
            return i;
    return -1;
}

static int kind_from_name(const char *s)
{
    for (int i = 0; i < FP_JOB__KINDS; i++)
        if (s && !strcmp(s, kind_names[i]))
            return i;
    return 0;
}

#define JOB_COLS                                                                                   \
    "id, seller_id, invoice_number, client_id, kind, state, event, event_id, attempts, next_at, "  \
    "first_at, updated_at, lease_owner, lease_until, last_error"

/* The kept statements on the writer connection (s->jst, finalized by
 * fp_sq_close); used under wlock only. */
enum {
    JQ_PICK_LEASE,
    JQ_PICK_RETRY,
    JQ_PICK_FAIR,
    JQ_CLAIM,
    JQ_NEXT_DUE,
    JQ_CLAIM_RENDER,
    JQ_SET_JOB,
    JQ_INV_RENDERED,
    JQ_INV_FAILED,
    JQ_INV_DELIVERED,
    JQ_UNBLOCK_NOTIFY,
    JQ_INS_NOTIFY,
    JQ_SAVE,
    JQ_UNDO,
    JQ_RELEASE,
    JQ__N
};
_Static_assert(JQ__N <= FP_SQ_JOB_STMTS, "raise FP_SQ_JOB_STMTS in internal.h");

static const char *const jq_sql[JQ__N] = {
    /* The order of jobs.h (why: docs/webhooks.md, "Order of service").
     * Three lookups, each the start of an index range, so a claim costs the
     * same with 100,000 jobs waiting (an OR would scan every done job):
     * expired leases in (state, next_at); retries in jobs_retry (next_at,
     * pending and untagged only); first runs in jobs_fair (fair_tag, tagged
     * only), which hold only pending jobs and are due when queued.  The
     * planner, left to itself, takes (state, next_at) for the last two and
     * walks every pending job: 30-40 ms a claim with 100,000 waiting, 6-30
     * us with the indexes named (docs/webhooks.md). */
    [JQ_PICK_LEASE] = "SELECT id FROM jobs WHERE state='running' AND lease_until < ?1 LIMIT 1",
    [JQ_PICK_RETRY] = "SELECT id FROM jobs INDEXED BY jobs_retry WHERE state='pending' AND "
                      "fair_tag IS NULL AND next_at <= ?1 ORDER BY next_at LIMIT 1",
    [JQ_PICK_FAIR] = "SELECT id FROM jobs INDEXED BY jobs_fair WHERE fair_tag IS NOT NULL AND "
                     "state='pending' ORDER BY fair_tag, id LIMIT 1",
    [JQ_CLAIM] =
        "UPDATE jobs SET state='running', lease_owner=?2, lease_until=?3, "
        "attempts=attempts+1, updated_at=?4, fair_tag=NULL WHERE id=?1 RETURNING " JOB_COLS,
    [JQ_NEXT_DUE] = "SELECT min(next_at) FROM jobs WHERE state='pending'",
    [JQ_CLAIM_RENDER] =
        "UPDATE jobs SET state='running', lease_owner=?3, lease_until=?4, attempts=attempts+1, "
        "updated_at=?5, fair_tag=NULL WHERE id=(SELECT max(id) FROM jobs WHERE "
        "invoice_number=?1 AND kind='render') AND seller_id=?2 AND state='pending' "
        "RETURNING " JOB_COLS,
    [JQ_SET_JOB] = "UPDATE jobs SET state=?3, next_at=?4, last_error=?5, updated_at=?6, "
                   "attempts=attempts-?7, lease_owner=NULL, lease_until=NULL "
                   "WHERE id=?1 AND state='running' AND lease_owner=?2",
    /* rendered, or delivered when its invoice.issued event (on-demand
     * mode, jobs.h) reached the client already */
    [JQ_INV_RENDERED] = "UPDATE invoices SET status=CASE WHEN EXISTS(SELECT 1 FROM jobs "
                        "WHERE after_job=?3 AND event='invoice.issued' AND state='done') "
                        "THEN 'delivered' ELSE 'rendered' END, failure=NULL "
                        "WHERE number=?1 AND status IN ('accepted', 'failed')",
    [JQ_INV_FAILED] = "UPDATE invoices SET status='failed', failure=?2 "
                      "WHERE number=?1 AND status='accepted'",
    [JQ_INV_DELIVERED] = "UPDATE invoices SET status='delivered' "
                         "WHERE number=?1 AND status='rendered'",
    /* the notify job waits for its first run with a fair tag like a render
     * (jobs.h): behind its own seller's queued jobs, as it would be first
     * in, first out */
    [JQ_UNBLOCK_NOTIFY] =
        "UPDATE jobs SET state='pending', next_at=?3, updated_at=?3, "
        "event='invoice.' || ?2, event_id='evt_' || ?1 || '_' || ?2, "
        "cost=?6, fair_tag=" FP_JOBS_FAIR_TAG("?5", "?6") " WHERE after_job=?4 AND state='blocked'",
    [JQ_INS_NOTIFY] =
        "INSERT OR IGNORE INTO jobs(invoice_number, seller_id, client_id, kind, event, "
        "event_id, state, next_at, first_at, updated_at, cost, fair_tag) "
        "SELECT ?1, ?5, ?7, 'notify', 'invoice.' || ?2, 'evt_' || ?1 || '_' || ?2, "
        "'pending', ?3, ?3, ?3, ?6, " FP_JOBS_FAIR_TAG(
            "?5", "?6") " FROM clients "
                        "WHERE client_id=?7 AND "
                        "coalesce(webhook_url, '') <> '' "
                        /* the client has the PDF's link already */
                        "AND NOT (?2 = 'rendered' AND EXISTS(SELECT 1 FROM jobs "
                        "WHERE after_job=?4 AND event='invoice.issued'))",
    /* one queued outcome, inside the group's transaction */
    [JQ_SAVE] = "SAVEPOINT job_outcome",
    [JQ_UNDO] = "ROLLBACK TO job_outcome",
    [JQ_RELEASE] = "RELEASE job_outcome",
};

/* Kept statement q, prepared on first use (NULL: it failed, err says why). */
static sqlite3_stmt *jq(fp_sqlite *s, int q, fp_err *err)
{
    if (!s->jst[q] && sqlite3_prepare_v3(s->wdb, jq_sql[q], -1, SQLITE_PREPARE_PERSISTENT,
                                         &s->jst[q], NULL) != SQLITE_OK) {
        fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
        sqlite3_finalize(s->jst[q]);
        s->jst[q] = NULL;
    }
    return s->jst[q];
}

/* fp_sq_run for a kept statement: stepped to its first result, then reset
 * (not finalized). */
static int jq_run(sqlite3 *db, sqlite3_stmt *st, fp_err *err)
{
    if (!st)
        return FP_EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_reset(st);
        return FP_EIO;
    }
    sqlite3_reset(st);
    return 0;
}

/* A claim is committed with synchronous=NORMAL (above).  Not a kept
 * statement: SQLite applies this pragma when it compiles it, not when it
 * runs. */
static void set_sync(sqlite3 *db, int normal)
{
    fp_sq_exec(db, normal ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL", NULL);
}

static void read_job(sqlite3_stmt *st, fp_job *j)
{
    memset(j, 0, sizeof *j);
    j->id = sqlite3_column_int64(st, 0);
    j->seller_id = sqlite3_column_int64(st, 1);
    fp_sq_col(st, 2, j->invoice_number, sizeof j->invoice_number);
    fp_sq_col(st, 3, j->client_id, sizeof j->client_id);
    j->kind = (fp_job_kind)kind_from_name((const char *)sqlite3_column_text(st, 4));
    int state = fp_job_state_from_name((const char *)sqlite3_column_text(st, 5));
    j->state = state < 0 ? FP_JS_DEAD : (fp_job_state)state;
    fp_sq_col(st, 6, j->event, sizeof j->event);
    fp_sq_col(st, 7, j->event_id, sizeof j->event_id);
    j->attempts = sqlite3_column_int(st, 8);
    j->next_at = sqlite3_column_int64(st, 9);
    j->first_at = sqlite3_column_int64(st, 10);
    j->updated_at = sqlite3_column_int64(st, 11);
    j->lease_owner = sqlite3_column_int64(st, 12);
    j->lease_until = sqlite3_column_int64(st, 13);
    fp_sq_col(st, 14, j->last_error, sizeof j->last_error);
}

/* BEGIN IMMEDIATE on the locked writer connection (the writer's own kept
 * statements: the same connection, under the same lock). */
static int begin(fp_sqlite *s, fp_err *err)
{
    if (fp_sq_step_done(s->wst[WQ_BEGIN]) == 0)
        return 0;
    fp_failstop_note_db(s->wdb, "statement");
    return fp_fail(err, FP_EIO, "sqlite: %s (in: BEGIN IMMEDIATE)", sqlite3_errmsg(s->wdb));
}

static int finish(fp_sqlite *s, int rc, fp_err *err)
{
    if (rc == 0 && fp_sq_step_done(s->wst[WQ_COMMIT]) == 0)
        return 0;
    if (rc == 0) {
        fp_failstop_note_db(s->wdb, "statement");
        fp_fail(err, FP_EIO, "sqlite: %s (in: COMMIT)", sqlite3_errmsg(s->wdb));
    }
    /* the rollback also drops any audit record of the transaction from the
     * chain: the store's rollback hook makes it re-read its head */
    if (!sqlite3_get_autocommit(s->wdb))
        fp_sq_step_done(s->wst[WQ_ROLLBACK]);
    return rc ? rc : FP_EIO;
}

int sq_jobs_recover(void *be, int64_t *n, fp_err *err)
{
    fp_sqlite *s = be;
    sqlite3 *db = fp_sq_wlock(s);
    int rc = fp_sq_exec(db,
                        "UPDATE jobs SET state='pending', lease_owner=NULL, lease_until=NULL "
                        "WHERE state='running'",
                        err);
    *n = rc == 0 ? sqlite3_changes(db) : 0;
    fp_sq_wunlock(s);
    return rc;
}

int sq_jobs_claim(void *be, int64_t now, int64_t owner, int64_t lease_ms, fp_job *out,
                  int64_t *next_due, fp_err *err)
{
    fp_sqlite *s = be;
    *next_due = 0;
    sqlite3 *db = fp_sq_wlock(s);
    set_sync(db, 1);
    int rc = FP_ENOTFOUND;
    int64_t id = 0;
    for (int q = JQ_PICK_LEASE; q <= JQ_PICK_FAIR && !id; q++) {
        sqlite3_stmt *st = jq(s, q, err);
        if (!st) {
            rc = FP_EIO;
            break;
        }
        sqlite3_bind_int64(st, 1, now);
        if (sqlite3_step(st) == SQLITE_ROW)
            id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    if (id) {
        sqlite3_stmt *st = jq(s, JQ_CLAIM, err);
        rc = FP_EIO;
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int64(st, 2, owner);
            sqlite3_bind_int64(st, 3, now + lease_ms);
            sqlite3_bind_int64(st, 4, now);
            if (sqlite3_step(st) == SQLITE_ROW) {
                read_job(st, out);
                rc = 0;
            }
            /* RETURNING rows are final only once the statement is done */
            if (sqlite3_step(st) != SQLITE_DONE && rc == 0)
                rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
            sqlite3_reset(st);
        }
    } else if (rc == FP_ENOTFOUND) {
        sqlite3_stmt *st = jq(s, JQ_NEXT_DUE, err);
        if (st && sqlite3_step(st) == SQLITE_ROW)
            *next_due = sqlite3_column_int64(st, 0);
        if (st)
            sqlite3_reset(st);
    }
    set_sync(db, 0);
    fp_sq_wunlock(s);
    return rc;
}

int sq_jobs_claim_render(void *be, int64_t seller_id, const char *number, int64_t now,
                         int64_t owner, int64_t lease_ms, fp_job *out, fp_err *err)
{
    fp_sqlite *s = be;
    sqlite3 *db = fp_sq_wlock(s);
    set_sync(db, 1); /* a claim, as in sq_jobs_claim */
    sqlite3_stmt *st = jq(s, JQ_CLAIM_RENDER, err);
    int rc = FP_EIO;
    if (st) {
        sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, seller_id);
        sqlite3_bind_int64(st, 3, owner);
        sqlite3_bind_int64(st, 4, now + lease_ms);
        sqlite3_bind_int64(st, 5, now);
        rc = FP_ENOTFOUND;
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            read_job(st, out);
            rc = 0;
            step = sqlite3_step(st); /* RETURNING rows are final once it is done */
        }
        if (step != SQLITE_DONE)
            rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    set_sync(db, 0);
    fp_sq_wunlock(s);
    return rc;
}

void sq_store_set_notify_early(void *be, int on)
{
    fp_sqlite *s = be;
    atomic_store(&s->notify_early, on != 0);
}

int sq_jobs_prune(void *be, int64_t before, int limit, int64_t *n, fp_err *err)
{
    fp_sqlite *s = be;
    *n = 0;
    /* Both in the index jobs_due (state, next_at): a done job's next_at is
     * when it finished.  Notify jobs go first, so a render whose notify
     * goes in this batch can go in the next one (after_job is a foreign
     * key). */
    static const char *const del[] = {
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state='done' AND next_at < ?1 "
        "AND kind='notify' LIMIT ?2)",
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs j WHERE state='done' AND next_at < ?1 "
        "AND kind='render' AND NOT EXISTS(SELECT 1 FROM jobs a WHERE a.after_job=j.id) LIMIT ?2)",
    };
    sqlite3 *db = fp_sq_wlock(s);
    int rc = begin(s, err);
    for (int i = 0; i < 2 && rc == 0 && *n < limit; i++) {
        sqlite3_stmt *st = fp_sq_prep(db, del[i], err);
        if (st) {
            sqlite3_bind_int64(st, 1, before);
            sqlite3_bind_int64(st, 2, limit - *n);
        }
        rc = fp_sq_run(db, st, err);
        if (rc == 0)
            *n += sqlite3_changes(db);
    }
    rc = finish(s, rc, err);
    if (rc < 0)
        *n = 0;
    fp_sq_wunlock(s);
    return rc;
}

/* Updates j's row if j->lease_owner still holds it: 0, FP_ECONFLICT or
 * FP_EIO.  Runs inside the caller's transaction. */
static int set_job(fp_sqlite *s, const fp_job *j, const char *state, int64_t next_at,
                   int count_attempt, const char *error, int64_t now, fp_err *err)
{
    sqlite3_stmt *st = jq(s, JQ_SET_JOB, err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_int64(st, 1, j->id);
    sqlite3_bind_int64(st, 2, j->lease_owner);
    sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, next_at);
    if (error)
        sqlite3_bind_text(st, 5, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int(st, 7, count_attempt ? 0 : 1);
    int rc = jq_run(s->wdb, st, err);
    if (rc == 0 && sqlite3_changes(s->wdb) != 1)
        rc = fp_fail(err, FP_ECONFLICT, "job %lld is no longer leased to this worker",
                     (long long)j->id);
    return rc;
}

static int exec_bound(fp_sqlite *s, int q, const char *t1, const char *t2, int64_t i3, fp_err *err)
{
    sqlite3_stmt *st = jq(s, q, err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
    if (t2)
        sqlite3_bind_text(st, 2, t2, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, i3);
    return jq_run(s->wdb, st, err);
}

/* The parameters of render_outcome's two notify statements: ?1 the
 * invoice, ?2 the event, ?3 now, ?4 the render job, ?5 the seller, ?6 the
 * cost, ?7 the client.  0, or FP_EIO for a statement that failed to
 * prepare. */
static int bind_notify(sqlite3_stmt *st, const char *n, const char *ev, int64_t now,
                       const fp_job *j)
{
    if (!st)
        return FP_EIO;
    sqlite3_bind_text(st, 1, n, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, j->id);
    sqlite3_bind_int64(st, 5, j->seller_id);
    sqlite3_bind_int64(st, 6, FP_JOB_BASE_COST);
    sqlite3_bind_text(st, 7, j->client_id, -1, SQLITE_STATIC);
    return 0;
}

/* After a render finished (ok) or died: the invoice's state, and its notify
 * job unblocked with the matching event.  When no blocked notify job exists
 * (an earlier outcome was already announced) a new one is queued if the
 * client has a webhook; the event id is unique, so it happens once. */
static int render_outcome(fp_sqlite *s, const fp_job *j, int ok, const char *error, int64_t now,
                          fp_err *err)
{
    const char *n = j->invoice_number;
    int rc = ok ? exec_bound(s, JQ_INV_RENDERED, n, NULL, j->id, err)
                : exec_bound(s, JQ_INV_FAILED, n, error, 0, err);
    if (rc < 0)
        return rc;
    const char *ev = ok ? "rendered" : "failed";
    sqlite3_stmt *st = jq(s, JQ_UNBLOCK_NOTIFY, err);
    if ((rc = bind_notify(st, n, ev, now, j)) < 0 || (rc = jq_run(s->wdb, st, err)) < 0 ||
        sqlite3_changes(s->wdb) > 0)
        return rc;
    st = jq(s, JQ_INS_NOTIFY, err);
    if ((rc = bind_notify(st, n, ev, now, j)) < 0)
        return rc;
    return jq_run(s->wdb, st, err);
}

/* A job's outcome waiting for a commit (above).  It lives on its job
 * thread's stack: the thread waits for wlock, and whoever commits it sets
 * done under wlock, so the thread sees it settled once it has the lock. */
typedef struct sq_jdone {
    struct sq_jdone *next;
    const fp_job *j;
    int complete, dead; /* complete, or a failed attempt (dead or retried) */
    int64_t now, next_at;
    const char *error;
    int rc, done;
    fp_err err;
} sq_jdone;

/* One outcome, in the open transaction (sq_jobs_complete, sq_jobs_fail). */
static int apply_one(fp_sqlite *s, sq_jdone *d)
{
    const fp_job *j = d->j;
    if (d->complete) {
        int rc = set_job(s, j, "done", d->now, 1, NULL, d->now, &d->err);
        if (rc == 0 && j->kind == FP_JOB_RENDER)
            return render_outcome(s, j, 1, NULL, d->now, &d->err);
        if (rc == 0 &&
            (!strcmp(j->event, "invoice.rendered") || !strcmp(j->event, "invoice.issued")))
            return exec_bound(s, JQ_INV_DELIVERED, j->invoice_number, NULL, 0, &d->err);
        return rc;
    }
    int rc = set_job(s, j, d->dead ? "dead" : "pending", d->next_at, 1, d->error, d->now, &d->err);
    if (rc == 0 && d->dead && j->kind == FP_JOB_RENDER)
        rc = render_outcome(s, j, 0, d->error, d->now, &d->err);
    return rc;
}

sq_jdone *fp_sq_jobs_apply_queued(fp_sqlite *s)
{
    pthread_mutex_lock(&s->jdmu);
    sq_jdone *l = s->jd_head;
    s->jd_head = NULL;
    s->jd_tail = &s->jd_head;
    pthread_mutex_unlock(&s->jdmu);
    for (sq_jdone *d = l; d; d = d->next) {
        if ((d->rc = jq_run(s->wdb, jq(s, JQ_SAVE, &d->err), &d->err)) < 0)
            continue;
        fp_err e;
        if ((d->rc = apply_one(s, d)) < 0)
            jq_run(s->wdb, jq(s, JQ_UNDO, &e), &e);
        if (jq_run(s->wdb, jq(s, JQ_RELEASE, &e), &e) < 0 && d->rc == 0)
            d->rc = fp_fail(&d->err, FP_EIO, "%s", e.msg);
    }
    return l;
}

void fp_sq_jobs_settle(sq_jdone *l, int committed)
{
    for (sq_jdone *d = l; d; d = d->next) {
        if (!committed && d->rc == 0)
            d->rc = fp_fail(&d->err, FP_EIO, "the job's outcome was rolled back with its batch");
        d->done = 1;
    }
}

/* Queues d and waits for the writer lock: settled by then (a writer batch
 * or another job thread committed it), or this thread commits every
 * outcome queued so far, its own included. */
static int outcome(fp_sqlite *s, sq_jdone *d, fp_err *err)
{
    pthread_mutex_lock(&s->jdmu);
    *s->jd_tail = d;
    s->jd_tail = &d->next;
    pthread_mutex_unlock(&s->jdmu);
    fp_sq_wlock(s);
    if (!d->done) {
        fp_err e = {0};
        int rc = begin(s, &e);
        sq_jdone *l = NULL;
        if (rc == 0) {
            l = fp_sq_jobs_apply_queued(s);
            rc = finish(s, 0, &e);
        } else { /* nothing began: every queued outcome fails with it */
            pthread_mutex_lock(&s->jdmu);
            l = s->jd_head;
            s->jd_head = NULL;
            s->jd_tail = &s->jd_head;
            pthread_mutex_unlock(&s->jdmu);
        }
        for (sq_jdone *x = l; x && rc < 0; x = x->next)
            if (x->rc == 0)
                x->rc = fp_fail(&x->err, rc, "%s", e.msg);
        fp_sq_jobs_settle(l, rc == 0);
    }
    fp_sq_wunlock(s);
    if (d->rc < 0 && err)
        *err = d->err;
    return d->rc;
}

int sq_jobs_complete(void *be, const fp_job *j, int64_t now, fp_err *err)
{
    sq_jdone d = {.j = j, .complete = 1, .now = now};
    return outcome(be, &d, err);
}

int sq_jobs_fail(void *be, const fp_job *j, int64_t now, int64_t next_at, int dead,
                 const char *error, fp_err *err)
{
    sq_jdone d = {.j = j, .dead = dead, .now = now, .next_at = next_at, .error = error};
    return outcome(be, &d, err);
}

int sq_jobs_defer(void *be, const fp_job *j, int64_t next_at, const char *why, fp_err *err)
{
    fp_sqlite *s = be;
    fp_sq_wlock(s);
    int rc = set_job(s, j, "pending", next_at, 0, why, fp_steady_ms(), err);
    fp_sq_wunlock(s);
    return rc;
}

/* An audit record in the caller's transaction, linked into the chain
 * (audit.h); a rollback of that transaction takes it out again. */
static int audit(fp_sqlite *s, int64_t seller_id, const char *actor, const char *action,
                 const char *target, const char *request_id, const char *client_request_id,
                 const char *client_ip, fp_err *err)
{
    fp_audit_rec r = {.ts = fp_wall_ms() / 1000,
                      .actor = actor ? actor : "",
                      .action = action,
                      .target = target,
                      .request_id = request_id ? request_id : "",
                      .client_ip = client_ip ? client_ip : "",
                      .outcome = "ok",
                      .seller_id = seller_id,
                      .client_request_id =
                          client_request_id && *client_request_id ? client_request_id : NULL};
    return fp_sq_audit_append(s, &r, err);
}

int sq_jobs_redrive(void *be, int64_t seller_id, int64_t id, const char *actor,
                    const char *request_id, const char *client_request_id, const char *client_ip,
                    fp_err *err)
{
    fp_sqlite *s = be;
    fp_job j;
    int rc = sq_jobs_get(s, seller_id, id, &j);
    if (rc < 0)
        return rc == FP_ENOTFOUND ? fp_fail(err, rc, "no job %lld", (long long)id)
                                  : fp_fail(err, rc, "cannot read job %lld", (long long)id);
    sqlite3 *db = fp_sq_wlock(s);
    rc = begin(s, err);
    if (rc == 0) {
        /* due at once (next_at 0) on the clock of whichever process
         * claims it: the CLI's steady clock is the wall clock, a running
         * server's may differ by a wall-clock step since it started */
        int64_t now = fp_steady_ms();
        sqlite3_stmt *st = fp_sq_prep(db,
                                      "UPDATE jobs SET state='pending', attempts=0, next_at=0, "
                                      "first_at=?2, updated_at=?2 WHERE id=?1 AND state='dead'",
                                      err);
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int64(st, 2, now);
        }
        rc = fp_sq_run(db, st, err);
        if (rc == 0 && sqlite3_changes(db) != 1)
            rc = fp_fail(err, FP_ECONFLICT, "job %lld is %s, not dead", (long long)id,
                         fp_job_state_name(j.state));
        char target[32];
        snprintf(target, sizeof target, "job:%lld", (long long)id);
        if (rc == 0)
            rc = audit(s, j.seller_id, actor, "job.redrive", target, request_id, client_request_id,
                       client_ip, err);
        rc = finish(s, rc, err);
    }
    fp_sq_wunlock(s);
    return rc;
}

int sq_jobs_get(void *be, int64_t seller_id, int64_t id, fp_job *out)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = fp_sq_prep(
        db, "SELECT " JOB_COLS " FROM jobs WHERE id=?1 AND (?2 = 0 OR seller_id=?2)", NULL);
    int rc = FP_EIO;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, seller_id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            read_job(st, out);
        rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? FP_ENOTFOUND : FP_EIO;
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}

int sq_jobs_list(void *be, int64_t seller_id, int state, int64_t before, int limit,
                 void (*fn)(const fp_job *j, void *arg), void *arg, fp_err *err)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = fp_sq_prep(db,
                                  "SELECT " JOB_COLS " FROM jobs WHERE (?1 = 0 OR seller_id=?1) "
                                  "AND (?2 IS NULL OR state=?2) AND (?3 = 0 OR id < ?3) "
                                  "ORDER BY id DESC LIMIT ?4",
                                  err);
    int rc = FP_EIO;
    if (st) {
        sqlite3_bind_int64(st, 1, seller_id);
        if (state >= 0)
            sqlite3_bind_text(st, 2, fp_job_state_name((fp_job_state)state), -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
        sqlite3_bind_int64(st, 3, before);
        sqlite3_bind_int(st, 4, limit);
        int step;
        fp_job j;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            read_job(st, &j);
            fn(&j, arg);
        }
        rc = step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}

int sq_jobs_count(void *be, fp_jobs_counts *c, fp_err *err)
{
    fp_sqlite *s = be;
    memset(c, 0, sizeof *c);
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    /* every state but done: done only grows and is not worth a scan */
    sqlite3_stmt *st = fp_sq_prep(db,
                                  "SELECT kind, state, count(*), min(first_at) FROM jobs "
                                  "WHERE state IN ('blocked', 'pending', 'running', 'dead') "
                                  "GROUP BY kind, state",
                                  err);
    int rc = FP_EIO;
    if (st) {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            int k = kind_from_name((const char *)sqlite3_column_text(st, 0));
            int state = fp_job_state_from_name((const char *)sqlite3_column_text(st, 1));
            if (state < 0)
                continue;
            c->n[k][state] = sqlite3_column_int64(st, 2);
            int64_t first = sqlite3_column_int64(st, 3);
            if (state == FP_JS_PENDING && (!c->oldest_pending_at || first < c->oldest_pending_at))
                c->oldest_pending_at = first;
            if (state == FP_JS_PENDING && k == FP_JOB_RENDER)
                c->oldest_render_at = first;
        }
        rc = step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}

int sq_store_invoice_state(void *be, int64_t seller_id, const char *number, fp_invoice_state *out)
{
    fp_sqlite *s = be;
    memset(out, 0, sizeof *out);
    out->render_state = -1;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st =
        fp_sq_prep(db,
                   "SELECT i.status, i.failure, i.serial, j.state, j.last_error, j.next_at "
                   "FROM invoices i LEFT JOIN jobs j ON j.id = (SELECT max(id) FROM "
                   "jobs WHERE invoice_number=i.number AND kind='render') "
                   "WHERE i.number=?1 AND i.seller_id=?2",
                   NULL);
    int rc = FP_EIO;
    if (st) {
        sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, seller_id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            fp_sq_col(st, 0, out->status, sizeof out->status);
            fp_sq_col(st, 1, out->failure, sizeof out->failure);
            fp_sq_col(st, 2, out->serial, sizeof out->serial);
            if (sqlite3_column_type(st, 3) != SQLITE_NULL)
                out->render_state =
                    fp_job_state_from_name((const char *)sqlite3_column_text(st, 3));
            fp_sq_col(st, 4, out->render_error, sizeof out->render_error);
            out->render_next_at = sqlite3_column_int64(st, 5);
        }
        rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? FP_ENOTFOUND : FP_EIO;
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}

int sq_store_invoice_ack(void *be, int64_t seller_id, const char *number, const char *actor,
                         const char *request_id, const char *client_request_id,
                         const char *client_ip, fp_err *err)
{
    fp_sqlite *s = be;
    sqlite3 *db = fp_sq_wlock(s);
    int rc = begin(s, err);
    if (rc == 0) {
        sqlite3_stmt *st = fp_sq_prep(
            db, "UPDATE invoices SET status='confirmed' WHERE number=?1 AND seller_id=?2", err);
        if (st) {
            sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, seller_id);
        }
        rc = fp_sq_run(db, st, err);
        if (rc == 0 && sqlite3_changes(db) != 1)
            rc = fp_fail(err, FP_ENOTFOUND, "no invoice %s", number);
        if (rc == 0)
            rc = audit(s, seller_id, actor, "invoice.ack", number, request_id, client_request_id,
                       client_ip, err);
        rc = finish(s, rc, err);
    }
    fp_sq_wunlock(s);
    return rc;
}

int sq_store_webhook_get(void *be, const char *client_id, char *url, size_t url_cap, char *secret,
                         size_t secret_cap)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = fp_sq_prep(db,
                                  "SELECT coalesce(webhook_url, ''), coalesce(webhook_secret, '') "
                                  "FROM clients WHERE client_id=?1",
                                  NULL);
    int rc = FP_EIO;
    if (st) {
        sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        fp_err err = {0};
        int sealed_ok = 1;
        if (step == SQLITE_ROW) {
            fp_sq_col(st, 0, url, url_cap);
            /* stored sealed (webhook_secrets.c): longer than the secret */
            const unsigned char *v = sqlite3_column_text(st, 1);
            if (fp_sq_webhook_unseal(db, client_id, v ? (const char *)v : "", secret, secret_cap,
                                     &err) < 0)
                sealed_ok = 0;
        }
        rc = step == SQLITE_ROW    ? (sealed_ok ? 0 : FP_ECRYPTO)
             : step == SQLITE_DONE ? FP_ENOTFOUND
                                   : FP_EIO;
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}

int sq_store_webhook_set(void *be, const char *client_id, const char *url, const char *secret,
                         const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    sqlite3 *db = fp_sq_wlock(s);
    /* the secret is stored sealed (webhook_secrets.c) */
    char *sealed = NULL;
    if (url && secret) {
        size_t cap = FP_SEAL_LEN(strlen(secret));
        int rc = (sealed = malloc(cap))
                     ? fp_sq_webhook_seal(db, client_id, secret, sealed, cap, err)
                     : fp_fail(err, FP_ENOMEM, "out of memory");
        if (rc < 0) {
            free(sealed);
            fp_sq_wunlock(s);
            return rc;
        }
    }
    int rc = begin(s, err);
    if (rc == 0) {
        sqlite3_stmt *st = fp_sq_prep(
            db, "UPDATE clients SET webhook_url=?2, webhook_secret=?3 WHERE client_id=?1", err);
        if (st) {
            sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
            if (url) {
                sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, sealed, -1, SQLITE_STATIC);
            }
        }
        rc = fp_sq_run(db, st, err);
        if (rc == 0 && sqlite3_changes(db) != 1)
            rc = fp_fail(err, FP_ENOTFOUND, "no client %s", client_id);
        if (rc == 0) /* the change and its record: one transaction */
            rc = fp_sq_audit_change(s, audit, client_id, "ok", err);
        rc = finish(s, rc, err);
    }
    free(sealed);
    fp_sq_wunlock(s);
    return rc;
}
