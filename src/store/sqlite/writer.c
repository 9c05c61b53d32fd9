/* writer.c — the SQLite backend's writer: the queue, group commit, the
 * range cache, the deadline thread and the checkpointer.
 *
 * Why one writer: SQLite allows one writer at a time anyway; funnelling all
 * writes through one thread lets it put everything that queued during the
 * previous fsync into the next transaction, so one fsync acknowledges many
 * invoices (2.5k commits/s one by one, ~30k rows/s batched on this machine).
 * Per invoice the transaction holds two INSERTs (invoice, audit); the
 * UNIQUE(seller_id, serial) constraint is the idempotency check, and numbers
 * come from an in-memory copy of the range written back once per
 * transaction.  Any error that leaves a statement half-done rolls the whole
 * batch back and fails every request of it (their clients retry with the
 * same keys, which is always safe); nobody is answered before COMMIT has
 * returned.
 *
 * Why a checkpointer thread: a checkpoint copies WAL pages into the database
 * file and fsyncs it; on the writer it would add 8-20 ms to some commits.
 *
 * Who owns what, under which lock (struct fp_store in internal.h):
 *   wlock    the writer connection wdb and its statements wst, the range
 *            cache (ranges, nranges), the issue clock (clock, clock_*,
 *            issue_t), the audit chain's head (audit_*), job_hook.  Held by
 *            the writer thread for a whole batch (run_batch releases it),
 *            and by every synchronous write (jobs.c, clients.c, red_forms.c,
 *            ranges.c, audit_log.c, the write probe) for its transaction.
 *   q        the queue, the batch being written, the writer and deadline
 *            threads and the outcome hook: ../writeq.c, which both backends
 *            share, says who owns what there (its lock is taken after
 *            wlock, never before it).
 *   cklock   the checkpointer's ck_pending and ck_stop; cdb is its own.
 *   rlock    the read pool's free list (open.c).
 *   atomics  the counters, the injected faults and the histograms.
 * The checkpointer's timed wait runs on CLOCK_MONOTONIC (clock.h), so a
 * wall-clock step neither stalls nor hurries it. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fapiao/clock.h"
#include "fapiao/jobs.h"
#include "fapiao/metrics.h"
#include "internal.h"

#define SQ_STR_(x) #x
#define SQ_STR(x)  SQ_STR_(x) /* a number's macro as SQL text */

const char *const fp_sq_write_sql[WQ__N] = {
    [WQ_BEGIN] = "BEGIN IMMEDIATE",
    [WQ_COMMIT] = "COMMIT",
    [WQ_ROLLBACK] = "ROLLBACK",
    [WQ_FIND] = "SELECT request_hash, doc, number FROM invoices WHERE seller_id=?1 AND serial=?2",
    [WQ_RANGE] = ("SELECT id, prefix, next, last FROM number_ranges "
                  "WHERE seller_id=?1 AND next <= last AND substr(prefix, 1, 2) = ?2 "
                  "ORDER BY id LIMIT 1"),
    [WQ_SET_NEXT] = "UPDATE number_ranges SET next=?2 WHERE id=?1",
    [WQ_INS_INVOICE] = ("INSERT INTO invoices(number, seller_id, serial, request_hash, status, "
                        "invoice_type, buyer_tax_id, total_with_tax, issued_at, doc, color, "
                        "original_number) "
                        "VALUES(?1, ?2, ?3, ?4, 'accepted', ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
    [WQ_FORM_STATE] = "SELECT state FROM red_forms WHERE id=?1",
    [WQ_FORM_ISSUED] = "UPDATE red_forms SET state='issued', red_number=?2 WHERE id=?1",
    /* the outbox (migration 3): a render job, and a notify job blocked
     * behind it when the issuing client has a webhook; the render waits
     * for its first run with a fair tag (migration 9, jobs.h) */
    [WQ_INS_RENDER] = ("INSERT INTO jobs(invoice_number, seller_id, client_id, kind, state, "
                       "next_at, first_at, updated_at, cost, fair_tag) "
                       "VALUES(?1, ?2, ?3, 'render', 'pending', ?4, ?4, ?4, ?5, " FP_JOBS_FAIR_TAG(
                           "?2", "?5") ")"),
    [WQ_INS_NOTIFY] = ("INSERT INTO jobs(invoice_number, seller_id, client_id, kind, event, "
                       "event_id, after_job, state, next_at, first_at, updated_at) "
                       "SELECT ?1, ?2, ?3, 'notify', 'invoice.rendered', "
                       "'evt_' || ?1 || '_rendered', ?4, 'blocked', ?5, ?5, ?5 "
                       "FROM clients WHERE client_id=?3 AND coalesce(webhook_url, '') <> ''"),
    /* the same while renders are served on first request (jobs.h,
     * docs/outbox.md): not blocked, so the event (with the PDF's link) goes
     * out without waiting for the render; it waits with a fair tag */
    [WQ_INS_NOTIFY_EARLY] =
        ("INSERT INTO jobs(invoice_number, seller_id, client_id, kind, event, "
         "event_id, after_job, state, next_at, first_at, updated_at, cost, fair_tag) "
         "SELECT ?1, ?2, ?3, 'notify', 'invoice.issued', 'evt_' || ?1 || '_issued', ?4, "
         "'pending', ?5, ?5, ?5, " SQ_STR(FP_JOB_BASE_COST) ", " FP_JOBS_FAIR_TAG(
             "?2", SQ_STR(FP_JOB_BASE_COST)) " FROM clients WHERE client_id=?3 AND "
                                             "coalesce(webhook_url, '') <> ''"),
    /* the upload to the tax platform (migration 11, upload.c): only
     * while the upstream is configured (fp_store_set_upload) */
    [WQ_INS_UPLOAD] = ("INSERT OR IGNORE INTO uploads(invoice_number, seller_id, state, next_at, "
                       "first_at, updated_at) VALUES(?1, ?2, 'pending', ?3, ?3, ?3)"),
    /* the credit line (migration 13, credit_tx.c) */
    [WQ_CREDIT_LEFT] =
        "SELECT limit_fen - used_fen FROM upstream_credit WHERE seller_id=?1 AND month=?2",
    [WQ_CREDIT_ADD] = ("UPDATE upstream_credit SET used_fen = used_fen + ?3 "
                       "WHERE seller_id=?1 AND month=?2"),
    /* the audit chain (audit.h): the id is assigned, not left to SQLite,
     * so that ids are consecutive */
    [WQ_INS_AUDIT] = ("INSERT INTO audit(id, ts, actor, action, target, request_id, client_ip, "
                      "outcome, prev_hash, hash, seller_id, client_request_id) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
};

/* ---- checkpointer ---- */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    fp_sqlite *s = arg;
    if (frames >= s->o.checkpoint_frames) {
        pthread_mutex_lock(&s->cklock);
        s->ck_pending = 1;
        pthread_cond_signal(&s->ckcond);
        pthread_mutex_unlock(&s->cklock);
    }
    return SQLITE_OK;
}

/* The least time between two checkpoints.  Once the WAL is over
 * checkpoint_frames, the WAL hook fires after every commit; while readers
 * keep the WAL from being reset, each of those checkpoints syncs the WAL
 * (and the database file) again: at 200 invoices/s that was ~35 WAL syncs
 * a second besides the writer's own, on the file the writer syncs to
 * commit (docs/performance.md §5b).  Ten a second keep the WAL as short. */
#define CKPT_GAP_MS 100

/* How long the writer has had no batch before the WAL is truncated. */
#define WAL_IDLE_MS 1000

/* Under a steady load the WAL seldom restarts (a restart needs a moment
 * when every frame is checkpointed and no reader is on the WAL), so it
 * grows: 25 MB a second at 500 invoices/s here.  Truncating it is not
 * free (ftruncate of 510 MB: 0.7 s on this machine's disk), so not in the
 * writer's commit (journal_size_limit, open.c): here, once the writer has
 * been idle WAL_IDLE_MS, a TRUNCATE checkpoint that does not wait for
 * anyone (busy: next time) takes a WAL over wal_keep_bytes back to 0.
 * docs/performance.md §5c. */
static void truncate_idle_wal(fp_sqlite *s)
{
    char wal[1100];
    struct stat st;
    snprintf(wal, sizeof wal, "%s-wal", s->o.path);
    if (stat(wal, &st) < 0 || st.st_size <= s->o.wal_keep_bytes ||
        fp_mono_us() - atomic_load(&s->last_batch_at_us) < WAL_IDLE_MS * 1000LL)
        return;
    pthread_mutex_lock(&s->q.lock);
    int busy = s->q.head || s->q.batch;
    pthread_mutex_unlock(&s->q.lock);
    if (busy)
        return;
    sqlite3_busy_timeout(s->cdb, 0);
    int rc = sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sqlite3_busy_timeout(s->cdb, 5000);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
        fp_failstop_note_db(s->cdb, "checkpoint");
}

/* How long a restart waits for readers still on the WAL's old frames
 * (the writer waits meanwhile), and the passes that catch up first. */
#define RESTART_WAIT_MS 5
#define CATCH_UP_PASSES 3

/* The growth itself (above) costs every commit under load: a WAL that
 * never restarts is appended to, so each commit's fdatasync also commits
 * the file's new blocks through the file system's journal (at 2,000
 * invoices/s the WAL reached 23 GB in 600 s; docs/performance.md §5e).  A
 * passive checkpoint never catches up with a writer that commits every
 * few ms, so the checkpointer makes the restart happen once the WAL holds
 * more than wal_keep_bytes (frames, not the file's size: after a restart
 * the file keeps its size and is written over).  A few more passes
 * first, without holding anyone up, each copying what was committed while
 * the previous one ran; then it takes the writer's lock between two
 * batches, checkpoints the last few commits' frames and waits up to
 * RESTART_WAIT_MS for readers to leave the old frames
 * (SQLITE_CHECKPOINT_RESTART).  The writer waits for that (a few ms, once
 * per wal_keep_bytes of WAL); its next commit writes the WAL from the
 * start, over blocks already on disk.  Busy (a reader stayed): the next
 * pass tries again. */
static void restart_full_wal(fp_sqlite *s, int frames, int done)
{
    if ((int64_t)frames * s->page_size <= s->o.wal_keep_bytes)
        return;
    for (int i = 0; i < CATCH_UP_PASSES && done < frames; i++)
        if (sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &done) !=
            SQLITE_OK)
            return; /* the next pass says why */
    pthread_mutex_lock(&s->wlock);
    sqlite3_busy_timeout(s->cdb, RESTART_WAIT_MS);
    int rc = sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
    sqlite3_busy_timeout(s->cdb, 5000);
    pthread_mutex_unlock(&s->wlock);
    if (rc == SQLITE_OK)
        atomic_fetch_add(&s->wal_restarts, 1);
    else if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
        fp_failstop_note_db(s->cdb, "checkpoint");
}

static void *ckpt_main(void *arg)
{
    fp_sqlite *s = arg;
    int64_t last = 0; /* the last checkpoint, fp_mono_us */
    pthread_mutex_lock(&s->cklock);
    while (!s->ck_stop) {
        if (!s->ck_pending)
            fp_cond_wait_ms(&s->ckcond, &s->cklock, 1000);
        int64_t gap = last + CKPT_GAP_MS * 1000 - fp_mono_us();
        if (s->ck_pending && gap > 0 && !s->ck_stop) { /* too soon: once the gap is over */
            fp_cond_wait_ms(&s->ckcond, &s->cklock, (int)(gap / 1000) + 1);
            continue;
        }
        s->ck_pending = 0;
        if (s->ck_stop)
            break;
        last = fp_mono_us();
        pthread_mutex_unlock(&s->cklock);
        /* PASSIVE never blocks the writer; a periodic pass (once a second)
         * keeps the WAL short on a quiet server too.  None after a
         * fail-stop: the WAL may hold the only good copy. */
        if (fp_failstop_get(s->fs, NULL, 0) == FP_FAILSTOP_NONE) {
            int frames = 0, done = 0;
            if (sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames,
                                          &done) != SQLITE_OK)
                fp_failstop_note_db(s->cdb, "checkpoint");
            else {
                truncate_idle_wal(s);
                restart_full_wal(s, frames, done);
            }
        }
        pthread_mutex_lock(&s->cklock);
    }
    pthread_mutex_unlock(&s->cklock);
    return NULL;
}

/* ---- writer ---- */

/* Writes back every range whose next moved.  0 or FP_EIO. */
static int flush_ranges(fp_sqlite *s)
{
    for (int i = 0; i < s->nranges; i++) {
        range_cache *rc = &s->ranges[i];
        if (!rc->dirty)
            continue;
        sqlite3_bind_int64(s->wst[WQ_SET_NEXT], 1, rc->id);
        sqlite3_bind_int64(s->wst[WQ_SET_NEXT], 2, rc->next);
        if (fp_sq_step_done(s->wst[WQ_SET_NEXT]) < 0)
            return FP_EIO;
        rc->dirty = 0;
    }
    return 0;
}

/* The range to take the seller's next number from, loading it when the
 * cached one is used up.  NULL: exhausted (*err = 0) or error (*err < 0). */
static range_cache *range_for(fp_sqlite *s, int64_t seller_id, int *err)
{
    range_cache *rc = NULL;
    char yy[3];
    fp_sq_current_yy(yy, s->issue_t);
    *err = 0;
    for (int i = 0; i < s->nranges && !rc; i++)
        if (s->ranges[i].seller_id == seller_id)
            rc = &s->ranges[i];
    if (rc && rc->next <= rc->last && !memcmp(rc->prefix, yy, 2))
        return rc;
    if (rc && flush_ranges(s) < 0) { /* the used-up range must read as used up */
        *err = FP_EIO;
        return NULL;
    }
    if (!rc && s->nranges == RANGE_CACHE) {
        /* many sellers: evict one that is clean; when every entry moved in
         * this transaction, write them all back first (in it, as before
         * COMMIT), after which any can go */
        int victim = -1;
        for (int i = 0; i < s->nranges && victim < 0; i++)
            if (!s->ranges[i].dirty)
                victim = i;
        if (victim < 0) {
            if (flush_ranges(s) < 0) {
                *err = FP_EIO;
                return NULL;
            }
            victim = 0;
        }
        s->ranges[victim] = s->ranges[--s->nranges];
    }
    sqlite3_stmt *st = s->wst[WQ_RANGE];
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, yy, 2, SQLITE_TRANSIENT);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        sqlite3_reset(st);
        if (step != SQLITE_DONE)
            *err = FP_EIO;
        return NULL;
    }
    if (!rc)
        rc = &s->ranges[s->nranges++];
    rc->seller_id = seller_id;
    rc->id = sqlite3_column_int64(st, 0);
    snprintf(rc->prefix, sizeof rc->prefix, "%.5s", (const char *)sqlite3_column_text(st, 1));
    rc->next = sqlite3_column_int64(st, 2);
    rc->last = sqlite3_column_int64(st, 3);
    rc->reserved = 0;
    rc->dirty = 0;
    sqlite3_reset(st);
    return rc;
}

/* Answers a request whose serial already exists (also earlier in this
 * batch): the stored response if the body is the same, else KEY_REUSED.
 * FP_ENOTFOUND when the serial is new. */
static int answer_existing(fp_sqlite *s, fp_issue_req *r)
{
    sqlite3_stmt *st = s->wst[WQ_FIND];
    sqlite3_bind_int64(st, 1, r->seller_id);
    sqlite3_bind_text(st, 2, r->serial, -1, SQLITE_STATIC);
    int rc = 0, step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? FP_ENOTFOUND : FP_EIO;
    } else if (sqlite3_column_bytes(st, 0) == 32 &&
               memcmp(sqlite3_column_blob(st, 0), r->request_hash, 32) == 0) {
        int n = sqlite3_column_bytes(st, 1);
        r->response = malloc((size_t)n + 1);
        if (r->response) {
            memcpy(r->response, sqlite3_column_text(st, 1), (size_t)n + 1);
            r->response_len = (size_t)n;
            r->result = FP_ISSUE_REPLAY;
            fp_sq_col(st, 2, r->number, sizeof r->number);
        } else {
            rc = FP_ENOMEM;
        }
    } else {
        r->result = FP_ISSUE_KEY_REUSED;
    }
    sqlite3_reset(st);
    return rc;
}

/* A red invoice consumes its form: a replay is answered first (the form is
 * then already issued), otherwise the form must be ready.  0 to go on, 1
 * when r is answered, FP_EIO. */
static int red_precheck(fp_sqlite *s, fp_issue_req *r)
{
    int found = answer_existing(s, r);
    if (found != FP_ENOTFOUND)
        return found == 0 ? 1 : FP_EIO;
    sqlite3_stmt *st = s->wst[WQ_FORM_STATE];
    sqlite3_bind_int64(st, 1, r->red_form_id);
    int ok = 0, step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        fp_red_state rs; /* red.h's table: confirmed or no confirmation needed */
        ok = state && fp_red_state_parse(state, &rs) == 0 && fp_red_issuable(rs);
    }
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return FP_EIO;
    if (!ok) {
        r->result = FP_ISSUE_FORM_STATE;
        return 1;
    }
    return 0;
}

/* The outbox jobs of a new invoice, in its transaction. */
static int enqueue_jobs(fp_sqlite *s, fp_issue_req *r)
{
    int64_t now = fp_steady_ms(); /* job times: the steady wall clock (jobs.h) */
    sqlite3_stmt *j = s->wst[WQ_INS_RENDER];
    sqlite3_bind_text(j, 1, r->number, FP_NUMBER_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(j, 2, r->seller_id);
    sqlite3_bind_text(j, 3, r->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(j, 4, now);
    /* the render's cost (jobs.h): what every render pays, and its lines */
    sqlite3_bind_int64(j, 5, FP_JOB_BASE_COST + (r->lines > 0 ? r->lines : 1));
    int rc = fp_sq_step_done(j);
    sqlite3_clear_bindings(j);
    if (rc < 0)
        return rc;
    int64_t render_id = sqlite3_last_insert_rowid(s->wdb);
    j = s->wst[atomic_load(&s->notify_early) ? WQ_INS_NOTIFY_EARLY : WQ_INS_NOTIFY];
    sqlite3_bind_text(j, 1, r->number, FP_NUMBER_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(j, 2, r->seller_id);
    sqlite3_bind_text(j, 3, r->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(j, 4, render_id);
    sqlite3_bind_int64(j, 5, now);
    rc = fp_sq_step_done(j);
    sqlite3_clear_bindings(j);
    if (rc < 0 || !atomic_load(&s->upload_on))
        return rc;
    j = s->wst[WQ_INS_UPLOAD];
    sqlite3_bind_text(j, 1, r->number, FP_NUMBER_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(j, 2, r->seller_id);
    sqlite3_bind_int64(j, 3, now);
    rc = fp_sq_step_done(j);
    sqlite3_clear_bindings(j);
    return rc;
}
static int issue_one(fp_sqlite *s, fp_issue_req *r)
{
    int err;
    if (fp_sq_clock_take(s, r))
        return 0;
    if (r->red_form_id) {
        int pre = red_precheck(s, r);
        if (pre != 0)
            return pre < 0 ? FP_EIO : 0;
    }
    range_cache *rc = range_for(s, r->seller_id, &err);
    if (!rc) {
        if (err < 0)
            return FP_EIO;
        /* exhausted, unless the key was used before: that still replays */
        int found = answer_existing(s, r);
        if (found == FP_ENOTFOUND)
            r->result = FP_ISSUE_EXHAUSTED;
        return found == 0 || found == FP_ENOTFOUND ? 0 : FP_EIO;
    }
    /* the archive holds a reservation past this number before it is given
     * out, so a restore can never hand it out again (docs/recovery.md) */
    if (s->reserve_fn && rc->next >= rc->reserved &&
        s->reserve_fn(rc->id, rc->next, &rc->reserved, s->reserve_arg) < 0)
        return FP_EIO;
    int64_t credit;
    char month[7];
    int over = fp_sq_credit_check(s, r, &credit, month);
    if (over) { /* over the credit line, unless the key was used before: that replays */
        int found = over < 0 ? FP_EIO : answer_existing(s, r);
        if (found == FP_ENOTFOUND)
            r->result = FP_ISSUE_CREDIT_EXCEEDED;
        return found == 0 || found == FP_ENOTFOUND ? 0 : FP_EIO;
    }
    snprintf(r->number, sizeof r->number, "%s%015" PRId64, rc->prefix, rc->next);
    fp_doc_patch_number(&r->doc, r->number);

    sqlite3_stmt *st = s->wst[WQ_INS_INVOICE];
    sqlite3_bind_text(st, 1, r->number, FP_NUMBER_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->seller_id);
    sqlite3_bind_text(st, 3, r->serial, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, r->request_hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->invoice_type, -1, SQLITE_STATIC);
    if (r->buyer_tax_id[0])
        sqlite3_bind_text(st, 6, r->buyer_tax_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, r->total_with_tax);
    sqlite3_bind_int64(st, 8, r->issued_at);
    sqlite3_bind_text(st, 9, r->doc.json, (int)r->doc.len, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, r->red_form_id ? "red" : "blue", -1, SQLITE_STATIC);
    if (r->red_form_id)
        sqlite3_bind_text(st, 11, r->original_number, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 11);
    int step = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(s->wdb);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (step != SQLITE_DONE) {
        r->number[0] = 0;
        /* only the statement was undone; the transaction goes on */
        if (ext == SQLITE_CONSTRAINT_UNIQUE)
            return answer_existing(s, r) == 0 ? 0 : FP_EIO;
        return FP_EIO;
    }
    fp_audit_rec a = {.ts = r->issued_at,
                      .actor = r->actor,
                      .action = r->red_form_id ? "invoice.issue_red" : "invoice.issue",
                      .target = r->number,
                      .request_id = r->request_id,
                      .client_ip = r->client_ip,
                      .outcome = "created",
                      .seller_id = r->seller_id,
                      .client_request_id = r->client_request_id[0] ? r->client_request_id : NULL};
    if (fp_sq_audit_append(s, &a, NULL) < 0)
        return FP_EIO; /* the invoice row is in: only a rollback undoes it */
    if (enqueue_jobs(s, r) < 0 || fp_sq_credit_apply(s, r, credit, month) < 0)
        return FP_EIO;
    if (r->red_form_id) {
        sqlite3_stmt *u = s->wst[WQ_FORM_ISSUED];
        sqlite3_bind_int64(u, 1, r->red_form_id);
        sqlite3_bind_text(u, 2, r->number, FP_NUMBER_LEN, SQLITE_STATIC);
        if (fp_sq_step_done(u) < 0)
            return FP_EIO;
    }
    rc->next++;
    rc->dirty = 1;
    r->result = FP_ISSUE_CREATED;
    r->response = r->doc.json;
    r->response_len = r->doc.len;
    r->doc.json = NULL;
    return 0;
}

/* After a rollback nothing of the batch exists: every request fails (its
 * client retries with the same key) and the range cache is re-read. */
static void fail_batch(fp_sqlite *s, fp_issue_req *head, const char *why)
{
    for (fp_issue_req *r = head; r; r = r->next)
        fp_issue_req_fail(r, why);
    s->nranges = 0;
    s->clock.mark = s->clock_committed;
}

/* After a commit: what the client is told was stored, for the check that
 * follows a fail-stop. */
static void note_acked(fp_sqlite *s, fp_issue_req *head)
{
    const char *nums[64];
    int n = 0;
    for (fp_issue_req *r = head; r; r = r->next)
        if (r->result == FP_ISSUE_CREATED) {
            if (n == 64) {
                fp_failstop_acked(s->fs, nums, n, 0, NULL);
                n = 0;
            }
            nums[n++] = r->number;
        }
    fp_failstop_acked(s->fs, nums, n, s->audit_stale ? 0 : s->audit_last_id, s->audit_last_hash);
}

/* Called with wlock held (../writeq.c's writer thread); releases it. */
static void run_batch(void *be, fp_issue_req *head, int n)
{
    fp_sqlite *s = be;
    char stop_why[320];
    fp_failstop_check_files(s->fs, NULL); /* a few µs: never write into a deleted file */
    if (fp_failstop_get(s->fs, stop_why, sizeof stop_why) != FP_FAILSTOP_NONE) {
        char why[400];
        snprintf(why, sizeof why, "store fail-stopped: %s", stop_why);
        fail_batch(s, head, why); /* never started: nothing of it was written */
    } else if (fp_sq_step_done(s->wst[WQ_BEGIN]) < 0) {
        fp_failstop_note_db(s->wdb, "BEGIN");
        fail_batch(s, head, sqlite3_errmsg(s->wdb));
    } else {
        int ok = 1, created = 0;
        for (fp_issue_req *r = head; r && ok; r = r->next) {
            ok = issue_one(s, r) == 0;
            created |= r->result == FP_ISSUE_CREATED;
        }
        if (ok)
            ok = flush_ranges(s) == 0;
        if (ok)
            ok = fp_sq_clock_flush(s) == 0;
        /* the job outcomes queued meanwhile ride on this commit (jobs.c):
         * no fsync of their own */
        struct sq_jdone *jd = ok ? fp_sq_jobs_apply_queued(s) : NULL;
        int64_t t_write = fp_mono_us(); /* an injected delay counts as a slow write */
        int injected = ok && fp_sq_fault_before_commit(s) < 0;
        ok = ok && !injected;
        int64_t t0 = fp_mono_us();
        int commit_failed = 0;
        if (ok)
            commit_failed = !(ok = fp_sq_step_done(s->wst[WQ_COMMIT]) == 0);
        if (ok)
            s->clock_committed = s->clock.mark;
        if (ok)
            fp_sq_fault_after_commit(s);
        if (ok && fp_failstop_check_files(s->fs, NULL) < 0)
            ok = 0, commit_failed = 1; /* committed into a file no longer at its path */
        int64_t commit_us = fp_mono_us() - t0;
        atomic_fetch_add(&s->fsync_us, (uint64_t)commit_us);
        atomic_store(&s->last_commit_us, commit_us);
        atomic_store(&s->last_batch_at_us, fp_mono_us());
        fp_hist_observe(atomic_load(&s->h_commit), commit_us);
        fp_hist_observe(atomic_load(&s->h_batch), n);
        /* a stalled disk: committed, but the breaker hears a failure */
        int slow =
            s->o.slow_write_ms > 0 && fp_mono_us() - t_write > (int64_t)s->o.slow_write_ms * 1000;
        if (slow)
            atomic_fetch_add(&s->slow_writes, 1);
        fp_writeq_outcome(&s->q, ok && !slow);
        if (!ok) {
            char why[160];
            snprintf(why, sizeof why, "%s",
                     injected ? "injected fault: store write" : sqlite3_errmsg(s->wdb));
            if (!injected)
                fp_failstop_note_db(s->wdb, commit_failed ? "COMMIT" : "group commit");
            if (fp_failstop_get(s->fs, stop_why, sizeof stop_why) != FP_FAILSTOP_NONE)
                snprintf(why, sizeof why, "store fail-stopped: %.130s", stop_why);
            if (!sqlite3_get_autocommit(s->wdb))
                fp_sq_step_done(s->wst[WQ_ROLLBACK]);
            fail_batch(s, head, why);
            /* a COMMIT that failed on I/O may still have reached the disk */
            int unknown = commit_failed && fp_failstop_get(s->fs, NULL, 0) != FP_FAILSTOP_NONE;
            for (fp_issue_req *r = head; r; r = r->next)
                r->outcome_unknown = unknown;
        } else {
            note_acked(s, head);
            if (s->log)
                fp_sq_log_commit(s); /* continuous archiving (backup.c) */
            if (created && s->job_hook)
                s->job_hook(s->job_hook_arg);
        }
        fp_sq_jobs_settle(s, jd, ok); /* before wlock goes: their threads wait for it */
    }
    pthread_mutex_unlock(&s->wlock);
    fp_writeq_answer(&s->q, head, n); /* everything above is durable or failed */
}

void sq_store_submit(void *be, fp_issue_req *r)
{
    fp_sqlite *s = be;
    fp_writeq_submit(&s->q, r);
}

int sq_store_cancel_queued(void *be, const char *why)
{
    fp_sqlite *s = be;
    return fp_writeq_cancel(&s->q, why);
}

/* ---- the threads ---- */

int fp_sq_writer_start(fp_sqlite *s, fp_err *err)
{
    sqlite3_wal_hook(s->wdb, wal_hook, s);
    if (pthread_create(&s->ckpt, NULL, ckpt_main, s) != 0)
        return fp_fail(err, FP_EIO, "cannot start checkpointer thread");
    s->ckpt_started = 1;
    return fp_writeq_start(&s->q, &s->wlock, run_batch, s, err);
}

/* The writer drains the queue first (every queued request gets its
 * answer), then the deadline thread and the checkpointer stop. */
void fp_sq_writer_stop(fp_sqlite *s)
{
    fp_writeq_stop(&s->q);
    if (s->ckpt_started) {
        pthread_mutex_lock(&s->cklock);
        s->ck_stop = 1;
        pthread_cond_signal(&s->ckcond);
        pthread_mutex_unlock(&s->cklock);
        pthread_join(s->ckpt, NULL);
        s->ckpt_started = 0;
    }
}

void fp_sq_writer_sync_init(fp_sqlite *s)
{
    pthread_mutex_init(&s->wlock, NULL);
    fp_sq_jobs_sync_init(s); /* a job thread's wait for a batch (jobs.c) */
    fp_writeq_init(&s->q, s->o.max_batch, s->o.write_deadline_ms);
    pthread_mutex_init(&s->cklock, NULL);
    fp_cond_init_mono(&s->ckcond); /* the checkpointer's timed wait */
    pthread_mutex_init(&s->rlock, NULL);
    pthread_cond_init(&s->rcond, NULL);
}
