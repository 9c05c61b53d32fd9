/* job_outcome.c — the outcome of a job on the writer connection (jobs.c's
 * kept statements, the job's row, the invoice's state, its notify job) and
 * the queue of outcomes that a writer batch or a job thread commits
 * together (docs/outbox.md, "Job outcomes are group-committed").
 *
 * Apart from jobs.c because writer.c calls it: nothing here takes a lock of
 * open.c's or calls back into the writer, so the calls between the store's
 * files stay free of loops (tests/unit/test_layers.c). */
#include "fapiao/clock.h"
#include "fapiao/jobs.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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
sqlite3_stmt *fp_sq_jq(fp_sqlite *s, int q, fp_err *err)
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
int fp_sq_jq_run(sqlite3 *db, sqlite3_stmt *st, fp_err *err)
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

/* Updates j's row if j->lease_owner still holds it: 0, FP_ECONFLICT or
 * FP_EIO.  Runs inside the caller's transaction. */
int fp_sq_set_job(fp_sqlite *s, const fp_job *j, const char *state, int64_t next_at,
                  int count_attempt, const char *error, int64_t now, fp_err *err)
{
    sqlite3_stmt *st = fp_sq_jq(s, JQ_SET_JOB, err);
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
    int rc = fp_sq_jq_run(s->wdb, st, err);
    if (rc == 0 && sqlite3_changes(s->wdb) != 1)
        rc = fp_fail(err, FP_ECONFLICT, "job %lld is no longer leased to this worker",
                     (long long)j->id);
    return rc;
}

static int exec_bound(fp_sqlite *s, int q, const char *t1, const char *t2, int64_t i3, fp_err *err)
{
    sqlite3_stmt *st = fp_sq_jq(s, q, err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
    if (t2)
        sqlite3_bind_text(st, 2, t2, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, i3);
    return fp_sq_jq_run(s->wdb, st, err);
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
    sqlite3_stmt *st = fp_sq_jq(s, JQ_UNBLOCK_NOTIFY, err);
    if ((rc = bind_notify(st, n, ev, now, j)) < 0 || (rc = fp_sq_jq_run(s->wdb, st, err)) < 0 ||
        sqlite3_changes(s->wdb) > 0)
        return rc;
    st = fp_sq_jq(s, JQ_INS_NOTIFY, err);
    if ((rc = bind_notify(st, n, ev, now, j)) < 0)
        return rc;
    return fp_sq_jq_run(s->wdb, st, err);
}

/* One outcome, in the open transaction (sq_jobs_complete, sq_jobs_fail). */
static int apply_one(fp_sqlite *s, sq_jdone *d)
{
    const fp_job *j = d->j;
    if (d->complete) {
        int rc = fp_sq_set_job(s, j, "done", d->now, 1, NULL, d->now, &d->err);
        if (rc == 0 && j->kind == FP_JOB_RENDER)
            return render_outcome(s, j, 1, NULL, d->now, &d->err);
        if (rc == 0 &&
            (!strcmp(j->event, "invoice.rendered") || !strcmp(j->event, "invoice.issued")))
            return exec_bound(s, JQ_INV_DELIVERED, j->invoice_number, NULL, 0, &d->err);
        return rc;
    }
    int rc =
        fp_sq_set_job(s, j, d->dead ? "dead" : "pending", d->next_at, 1, d->error, d->now, &d->err);
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
        if ((d->rc = fp_sq_jq_run(s->wdb, fp_sq_jq(s, JQ_SAVE, &d->err), &d->err)) < 0)
            continue;
        fp_err e;
        if ((d->rc = apply_one(s, d)) < 0)
            fp_sq_jq_run(s->wdb, fp_sq_jq(s, JQ_UNDO, &e), &e);
        if (fp_sq_jq_run(s->wdb, fp_sq_jq(s, JQ_RELEASE, &e), &e) < 0 && d->rc == 0)
            d->rc = fp_fail(&d->err, FP_EIO, "%s", e.msg);
    }
    return l;
}

void fp_sq_jobs_settle(fp_sqlite *s, sq_jdone *l, int committed)
{
    if (!l)
        return;
    /* under jdmu throughout: a settled outcome's thread may return (and
     * its record go) as soon as it sees done */
    pthread_mutex_lock(&s->jdmu);
    for (sq_jdone *d = l, *next; d; d = next) {
        next = d->next;
        if (!committed && d->rc == 0)
            d->rc = fp_fail(&d->err, FP_EIO, "the job's outcome was rolled back with its batch");
        d->done = 1;
    }
    pthread_cond_broadcast(&s->jdcv);
    pthread_mutex_unlock(&s->jdmu);
}

/* The queue of job outcomes and the condition a job thread waits on for
 * the batch that commits its outcome (made here, beside that wait: the
 * monowait lint checks that it runs on the monotonic clock). */
void fp_sq_jobs_sync_init(fp_sqlite *s)
{
    pthread_mutex_init(&s->jdmu, NULL);
    fp_cond_init_mono(&s->jdcv);
    s->jd_tail = &s->jd_head;
}

/* Waits until d is settled (another thread's commit carried it) or the
 * monotonic deadline until (ns) passes: 1 when settled. */
int fp_sq_jobs_wait_settled(fp_sqlite *s, sq_jdone *d, int64_t until)
{
    pthread_mutex_lock(&s->jdmu);
    while (!d->done && fp_cond_wait_until(&s->jdcv, &s->jdmu, until) != ETIMEDOUT)
        ;
    int done = d->done;
    pthread_mutex_unlock(&s->jdmu);
    return done;
}
