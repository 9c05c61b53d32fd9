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
#include "fapiao/clock.h"
#include "fapiao/jobs.h"
#include "fapiao/seal.h"
#include "internal.h"

#include <errno.h>
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
        sqlite3_stmt *st = fp_sq_jq(s, q, err);
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
        sqlite3_stmt *st = fp_sq_jq(s, JQ_CLAIM, err);
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
        sqlite3_stmt *st = fp_sq_jq(s, JQ_NEXT_DUE, err);
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
    sqlite3_stmt *st = fp_sq_jq(s, JQ_CLAIM_RENDER, err);
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

/* How long a job thread waits for a running invoice batch to take its
 * outcome before it commits it itself. */
#define JD_WAIT_MS 20

/* Invoices are queued for the writer or being written: a batch that will
 * take the queued outcomes is coming. */
static int writer_busy(fp_sqlite *s)
{
    pthread_mutex_lock(&s->q.lock); /* alone: never wlock while holding it */
    int busy = s->q.head || s->q.batch;
    pthread_mutex_unlock(&s->q.lock);
    return busy;
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
    if (writer_busy(s)) { /* ride on its commit; at most JD_WAIT_MS, then commit ourselves */
        if (fp_sq_jobs_wait_settled(s, d, fp_mono_ns() + JD_WAIT_MS * 1000000LL))
            goto settled;
    }
    fp_sq_wlock(s);
    pthread_mutex_lock(&s->jdmu);
    int done = d->done;
    pthread_mutex_unlock(&s->jdmu);
    if (!done) {
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
        fp_sq_jobs_settle(s, l, rc == 0);
    }
    fp_sq_wunlock(s);
settled:
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
    int rc = fp_sq_set_job(s, j, "pending", next_at, 0, why, fp_steady_ms(), err);
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
    sqlite3_stmt *st = fp_sq_prep(
        db,
        "SELECT i.status, i.failure, i.serial, j.state, j.last_error, j.next_at, j.first_at "
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
            out->render_first_at = sqlite3_column_int64(st, 6);
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
