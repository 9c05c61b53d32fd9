/* sqlite.c — the embedded store: one writer thread with group commit, a
 * checkpointer thread, and a pool of read-only connections.
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
 * file and fsyncs it; on the writer it would add 8-20 ms to some commits. */
#include "fapiao/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fapiao/audit.h"
#include "fapiao/clock.h"
#include "fapiao/jobs.h"
#include "fapiao/metrics.h"
#include "failstop.h"
#include "internal.h"

#include <cjson/cJSON.h>

#define MAX_READERS 16

enum { RQ_FIND_SERIAL, RQ_GET_INVOICE, RQ_GET_CLIENT, RQ_GET_SELLER, RQ_REMAINING, RQ_PING, RQ__N };
static const char *const read_sql[RQ__N] = {
    [RQ_FIND_SERIAL] =
        "SELECT request_hash, doc, number FROM invoices WHERE seller_id=?1 AND serial=?2",
    [RQ_GET_INVOICE] = "SELECT doc, status, failure FROM invoices WHERE seller_id=?1 AND number=?2",
    [RQ_GET_CLIENT] = ("SELECT seller_id, secret_salt, secret_hash, scope, disabled FROM clients "
                       "WHERE client_id=?1"),
    [RQ_GET_SELLER] = "SELECT name, tax_id, address, phone, bank, account FROM sellers WHERE id=?1",
    [RQ_REMAINING] =
        ("SELECT COALESCE(SUM(last - next + 1), 0) FROM number_ranges "
         "WHERE (?1 = 0 OR seller_id = ?1) AND next <= last AND substr(prefix, 1, 2) = ?2"),
    [RQ_PING] = "SELECT count(*) FROM sqlite_master",
};

enum {
    WQ_BEGIN,
    WQ_COMMIT,
    WQ_ROLLBACK,
    WQ_FIND,
    WQ_RANGE,
    WQ_SET_NEXT,
    WQ_INS_INVOICE,
    WQ_INS_AUDIT,
    WQ_FORM_STATE,
    WQ_FORM_ISSUED,
    WQ_INS_RENDER,
    WQ_INS_NOTIFY,
    WQ__N
};
static const char *const write_sql[WQ__N] = {
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
    /* the audit chain (audit.h): the id is assigned, not left to SQLite,
     * so that ids are consecutive */
    [WQ_INS_AUDIT] = ("INSERT INTO audit(id, ts, actor, action, target, request_id, client_ip, "
                      "outcome, prev_hash, hash, seller_id, client_request_id) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
};

/* The writer's view of a seller's current number range.  Numbers are handed
 * out from memory and `next` is written back once per transaction, in that
 * same transaction; after a rollback the cache is dropped and re-read. */
#define RANGE_CACHE 64
typedef struct range_cache {
    int64_t seller_id, id, next, last;
    char prefix[6];
    int dirty;
} range_cache;

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap);

typedef struct reader {
    sqlite3 *db;
    sqlite3_stmt *st[RQ__N];
} reader;

struct fp_store {
    fp_store_opts o;
    fp_failstop *fs; /* fail-stop state; its VFS opens every connection's files */
    sqlite3 *wdb;
    sqlite3_stmt *wst[WQ__N];
    pthread_mutex_t wlock;           /* the writer connection */
    range_cache ranges[RANGE_CACHE]; /* writer thread only */
    int nranges;
    /* the issue clock (clock.c; writer thread): the mark as committed, the
     * issue time of the request at hand (its number's year), the last
     * confirmation seen, when the last refusal was logged */
    fp_issue_clock clock;
    int64_t clock_committed, issue_t, clock_confirmed, clock_logged;
    fp_clock_verdict clock_last;

    pthread_t writer;
    int writer_started;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    fp_issue_req *qhead, *qtail;
    int stopping;
    char draining[128]; /* fp_store_cancel_queued: refuse new requests */
    /* the batch being written (under qlock): its requests past their
     * deadline are answered FP_ISSUE_UNKNOWN (they may yet be committed) */
    fp_issue_req *batch;
    pthread_t reaper;
    int reaper_started, reaper_stop;
    pthread_cond_t rpcond;
    pthread_mutex_t hooklock; /* outcome_hook off the writer (the reaper) */

    pthread_t ckpt;
    int ckpt_started;
    sqlite3 *cdb;
    pthread_mutex_t cklock;
    pthread_cond_t ckcond;
    int ck_pending, ck_stop;

    reader readers[MAX_READERS];
    int nreaders;
    int rfree[MAX_READERS], nfree;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;

    _Atomic uint64_t commits, requests, max_batch, fsync_us;
    _Atomic uint64_t slow_writes, timed_out, unknown;
    _Atomic int64_t last_commit_us, last_probe_us;

    void (*job_hook)(void *arg); /* called after a commit that queued jobs */
    void *job_hook_arg;
    void (*outcome_hook)(int ok, void *arg); /* after every commit and probe */
    void *outcome_hook_arg;
    _Atomic int fault_write_fail, fault_write_delay_ms, fault_fsync_delay_ms;
    struct fp_metric *_Atomic h_batch, *_Atomic h_commit;

    /* the audit chain's head and last checkpoint (under wlock; stale after
     * a rollback: re-read before the next append) */
    int audit_ready, audit_stale;
    int64_t audit_last_id, audit_cp_id, audit_cp_upto, audit_cp_ts;
    unsigned char audit_last_hash[FP_AUDIT_HASH_LEN];
    unsigned char audit_sk[FP_AUDIT_KEY_LEN], audit_pk[FP_AUDIT_KEY_LEN];
    sqlite3_stmt *audit_cp_st;
    fp_store *audit_next; /* the registry of writer connections */
};

static int audit_append(fp_store *s, const fp_audit_rec *rec, fp_err *err);
static int audit_change(fp_store *s, const fp_audit_rec *audit, const char *target,
                        const char *outcome, fp_err *err);
static int audit_open(fp_store *s, fp_err *err);
static void audit_close(fp_store *s);

/* Tells the outcome hook (the store breaker) about a write. */
static void outcome(fp_store *s, int ok)
{
    pthread_mutex_lock(&s->hooklock);
    if (s->outcome_hook)
        s->outcome_hook(ok, s->outcome_hook_arg);
    pthread_mutex_unlock(&s->hooklock);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The injected faults before a COMMIT: 0, or -1 when the write must fail. */
static int fault_before_commit(fp_store *s)
{
    int d = atomic_load(&s->fault_write_delay_ms);
    if (d > 0)
        sleep_ms(d);
    return atomic_load(&s->fault_write_fail) ? -1 : 0;
}

static void fault_after_commit(fp_store *s)
{
    int d = atomic_load(&s->fault_fsync_delay_ms);
    if (d > 0)
        sleep_ms(d);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int exec(sqlite3 *db, const char *sql, fp_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fp_failstop_note_db(db, "statement");
        int rc = fp_fail(err, FP_EIO, "sqlite: %s (in: %.60s)", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int open_conn(const char *path, int flags, const char *vfs, sqlite3 **db, fp_err *err)
{
    if (sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK) {
        int rc =
            fp_fail(err, FP_EIO, "open %s: %s", path, *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(*db, 5000);
    sqlite3_extended_result_codes(*db, 1);
    return 0;
}

static int migrate(sqlite3 *db, fp_err *err)
{
    sqlite3_stmt *st;
    int have = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    if (sqlite3_step(st) == SQLITE_ROW)
        have = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int want = fp_store_migration_count();
    if (have > want)
        return fp_fail(err, FP_EINVAL,
                       "database schema version %d is newer than this fapiao (%d): upgrade fapiao",
                       have, want);
    for (int v = have + 1; v <= want; v++) {
        char setv[64];
        snprintf(setv, sizeof setv, "PRAGMA user_version=%d", v);
        int rc;
        if ((rc = exec(db, "BEGIN IMMEDIATE", err)) < 0)
            return rc;
        if ((rc = exec(db, fp_store_migration_sql(v), err)) < 0 || (rc = exec(db, setv, err)) < 0 ||
            (rc = exec(db, "COMMIT", err)) < 0) {
            exec(db, "ROLLBACK", NULL);
            return rc;
        }
    }
    return 0;
}

/* ---- checkpointer ---- */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    fp_store *s = arg;
    if (frames >= s->o.checkpoint_frames) {
        pthread_mutex_lock(&s->cklock);
        s->ck_pending = 1;
        pthread_cond_signal(&s->ckcond);
        pthread_mutex_unlock(&s->cklock);
    }
    return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
    fp_store *s = arg;
    pthread_mutex_lock(&s->cklock);
    while (!s->ck_stop) {
        if (!s->ck_pending)
            fp_cond_wait_ms(&s->ckcond, &s->cklock, 1000);
        s->ck_pending = 0;
        if (s->ck_stop)
            break;
        pthread_mutex_unlock(&s->cklock);
        /* PASSIVE never blocks the writer; a periodic pass (once a second)
         * keeps the WAL short on a quiet server too.  None after a
         * fail-stop: the WAL may hold the only good copy. */
        if (fp_failstop_get(s->fs, NULL, 0) == FP_FAILSTOP_NONE &&
            sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) !=
                SQLITE_OK)
            fp_failstop_note_db(s->cdb, "checkpoint");
        pthread_mutex_lock(&s->cklock);
    }
    pthread_mutex_unlock(&s->cklock);
    return NULL;
}

/* ---- writer ---- */

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : FP_EIO;
}

static void set_failed(fp_issue_req *r, const char *why)
{
    r->result = FP_ISSUE_FAILED;
    r->number[0] = 0; /* a number of a rolled-back batch was never stored */
    snprintf(r->error, sizeof r->error, "%s", why);
    free(r->response);
    r->response = NULL;
}

/* Writes back every range whose next moved.  0 or FP_EIO. */
static int flush_ranges(fp_store *s)
{
    for (int i = 0; i < s->nranges; i++) {
        range_cache *rc = &s->ranges[i];
        if (!rc->dirty)
            continue;
        sqlite3_bind_int64(s->wst[WQ_SET_NEXT], 1, rc->id);
        sqlite3_bind_int64(s->wst[WQ_SET_NEXT], 2, rc->next);
        if (step_done(s->wst[WQ_SET_NEXT]) < 0)
            return FP_EIO;
        rc->dirty = 0;
    }
    return 0;
}

/* A number is valid only in its prefix year (DOMAIN.md): the two-digit
 * year, China Standard Time, that a range must start with to be used now.
 * FP_TEST_YEAR overrides it so tests can cross a new year. */
static void current_yy(char yy[3], int64_t issue_t)
{
    const char *t = getenv("FP_TEST_YEAR");
    if (t && strlen(t) == 2 && t[0] >= '0' && t[0] <= '9' && t[1] >= '0' && t[1] <= '9') {
        memcpy(yy, t, 3);
        return;
    }
    /* the issue time, not the clock: issued_at and the number's year agree */
    time_t now = (time_t)(issue_t ? issue_t : (int64_t)time(NULL)) + 8 * 3600;
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(yy, 3, "%02u", (unsigned)(tm.tm_year + 1900) % 100u);
}

/* The range to take the seller's next number from, loading it when the
 * cached one is used up.  NULL: exhausted (*err = 0) or error (*err < 0). */
static range_cache *range_for(fp_store *s, int64_t seller_id, int *err)
{
    range_cache *rc = NULL;
    char yy[3];
    current_yy(yy, s->issue_t);
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
    rc->dirty = 0;
    sqlite3_reset(st);
    return rc;
}

/* Answers a request whose serial already exists (also earlier in this
 * batch): the stored response if the body is the same, else KEY_REUSED.
 * FP_ENOTFOUND when the serial is new. */
static int answer_existing(fp_store *s, fp_issue_req *r)
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
            copy_col(st, 2, r->number, sizeof r->number);
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
static int red_precheck(fp_store *s, fp_issue_req *r)
{
    int found = answer_existing(s, r);
    if (found != FP_ENOTFOUND)
        return found == 0 ? 1 : FP_EIO;
    sqlite3_stmt *st = s->wst[WQ_FORM_STATE];
    sqlite3_bind_int64(st, 1, r->red_form_id);
    int ok = 0, step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        ok = state && (!strcmp(state, "no_confirmation_needed") || !strcmp(state, "confirmed"));
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

int64_t fp_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The outbox jobs of a new invoice, in its transaction. */
static int enqueue_jobs(fp_store *s, fp_issue_req *r)
{
    int64_t now = fp_unix_ms();
    sqlite3_stmt *j = s->wst[WQ_INS_RENDER];
    sqlite3_bind_text(j, 1, r->number, FP_NUMBER_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(j, 2, r->seller_id);
    sqlite3_bind_text(j, 3, r->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(j, 4, now);
    /* the render's cost (jobs.h): what every render pays, and its lines */
    sqlite3_bind_int64(j, 5, FP_JOB_BASE_COST + (r->lines > 0 ? r->lines : 1));
    int rc = step_done(j);
    sqlite3_clear_bindings(j);
    if (rc < 0)
        return rc;
    int64_t render_id = sqlite3_last_insert_rowid(s->wdb);
    j = s->wst[WQ_INS_NOTIFY];
    sqlite3_bind_text(j, 1, r->number, FP_NUMBER_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(j, 2, r->seller_id);
    sqlite3_bind_text(j, 3, r->actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(j, 4, render_id);
    sqlite3_bind_int64(j, 5, now);
    rc = step_done(j);
    sqlite3_clear_bindings(j);
    return rc;
}

/* ---- the issue clock (clock.c; docs/operations.md, "Clock") ---- */

static void clock_read(fp_store *s, int64_t *wall, int64_t *boot)
{
    if (s->o.clock_now) {
        s->o.clock_now(wall, boot);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    *boot = (int64_t)ts.tv_sec;
    *wall = (int64_t)time(NULL);
}

static void cst_text(int64_t t, char out[32])
{
    time_t c = (time_t)t + 8 * 3600;
    struct tm tm;
    gmtime_r(&c, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

/* The stored mark and confirmation; 0 when the row is missing. */
static int clock_load(sqlite3 *db, int64_t *mark, int64_t *confirmed)
{
    sqlite3_stmt *st;
    *mark = *confirmed = 0;
    if (sqlite3_prepare_v2(db, "SELECT mark, coalesce(confirmed_at, 0) FROM issue_clock WHERE id=1",
                           -1, &st, NULL) != SQLITE_OK)
        return FP_EIO;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *mark = sqlite3_column_int64(st, 0);
        *confirmed = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : FP_EIO;
}

/* A refused request is logged at the highest severity: once when the
 * verdict changes, then at most once a minute. */
static void clock_log(fp_store *s, fp_clock_verdict v, int64_t now, int64_t boot)
{
    if (v == s->clock_last && boot - s->clock_logged < 60)
        return;
    s->clock_last = v;
    s->clock_logged = boot;
    char m[32], n[32];
    cst_text(s->clock.mark, m);
    cst_text(now, n);
    if (v == FP_CLOCK_BEHIND)
        fprintf(stderr,
                "{\"event\":\"clock_behind\",\"severity\":\"critical\",\"mark\":\"%s\","
                "\"now\":\"%s\",\"message\":\"the clock is %lld s behind the last issue "
                "time; issuing is refused until it passes %s "
                "(系统时钟落后于最近开票时间，暂停开票)\"}\n",
                m, n, (long long)(s->clock.mark - now), m);
    else
        fprintf(stderr,
                "{\"event\":\"clock_jumped\",\"severity\":\"critical\",\"mark\":\"%s\","
                "\"now\":\"%s\",\"message\":\"the clock jumped ahead by more than %d s since "
                "the last issue; issuing is refused until an operator runs fapiao clock confirm "
                "(系统时钟突然跳前，须确认后才能开票)\"}\n",
                m, n, s->clock.jump_s);
    fflush(stderr);
}

/* The issue time of r: 0 with r->issued_at (and its document) set, or 1
 * when r is refused (CLOCK_BEHIND / CLOCK_JUMPED). */
static int clock_take(fp_store *s, fp_issue_req *r)
{
    int64_t wall, boot, t = 0;
    clock_read(s, &wall, &boot);
    fp_clock_verdict v = fp_issue_clock_decide(&s->clock, r->issued_at, boot, &t);
    if (v == FP_CLOCK_JUMPED) {
        /* an operator's confirmation (fapiao clock confirm) made on this
         * clock: the jump is real, take the clock as it is now */
        int64_t mark, confirmed;
        if (clock_load(s->wdb, &mark, &confirmed) == 0 && confirmed > s->clock_confirmed) {
            s->clock_confirmed = confirmed;
            if (llabs(r->issued_at - confirmed) <= s->clock.jump_s) {
                s->clock.base_wall = r->issued_at;
                s->clock.base_boot = boot;
                v = fp_issue_clock_decide(&s->clock, r->issued_at, boot, &t);
            }
        }
    }
    if (v != FP_CLOCK_OK) {
        r->result = v == FP_CLOCK_BEHIND ? FP_ISSUE_CLOCK_BEHIND : FP_ISSUE_CLOCK_JUMPED;
        r->clock_mark = s->clock.mark;
        /* behind: until the clock is within the step of the mark */
        int64_t wait = v == FP_CLOCK_BEHIND ? s->clock.mark - s->clock.step_s - r->issued_at : 60;
        r->clock_retry_s = wait < 1 ? 1 : wait > 3600 ? 3600 : (int)wait;
        clock_log(s, v, r->issued_at, boot);
        return 1;
    }
    if (s->clock_last != FP_CLOCK_OK) {
        fprintf(stderr, "{\"event\":\"clock_ok\"}\n");
        s->clock_last = FP_CLOCK_OK;
    }
    if (t != r->issued_at && r->doc.json) {
        /* the first "issued_at":" is the top-level key: it comes before
         * every nested object, and a string cannot hold an unescaped quote */
        static const char key[] = "\"issued_at\":\"";
        char *at = memmem(r->doc.json, r->doc.len, key, sizeof key - 1);
        char txt[32];
        cst_text(t, txt);
        size_t n = strlen(txt);
        if (at && (size_t)(at - r->doc.json) + sizeof key - 1 + n < r->doc.len &&
            at[sizeof key - 1 + n] == '"')
            memcpy(at + sizeof key - 1, txt, n);
    }
    r->issued_at = t;
    s->issue_t = t;
    /* the mark moves now (later requests of the batch see it); a rollback
     * puts it back (fail_batch) */
    if (t > s->clock.mark)
        s->clock.mark = t;
    s->clock.base_wall = t;
    s->clock.base_boot = boot;
    return 0;
}

/* In the batch's transaction: the mark as it is after the batch. */
static int clock_flush(fp_store *s)
{
    if (s->clock.mark <= s->clock_committed)
        return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(s->wdb, "UPDATE issue_clock SET mark=?1 WHERE id=1 AND mark < ?1", -1,
                           SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return FP_EIO;
    sqlite3_bind_int64(st, 1, s->clock.mark);
    int rc = step_done(st);
    sqlite3_finalize(st);
    return rc;
}

static int clock_open(fp_store *s, fp_err *err)
{
    int64_t confirmed, wall, boot;
    if (clock_load(s->wdb, &s->clock.mark, &confirmed) < 0)
        return fp_fail(err, FP_EIO, "issue clock: %s", sqlite3_errmsg(s->wdb));
    s->clock_committed = s->clock.mark;
    s->clock_confirmed = confirmed;
    s->clock.step_s = s->o.clock_step_s > 0 ? s->o.clock_step_s : 60;
    s->clock.jump_s = s->o.clock_jump_s > 0 ? s->o.clock_jump_s : 86400;
    /* a jump while no process ran cannot be told from downtime: the clock
     * at open is trusted (docs/operations.md, "Clock") */
    clock_read(s, &wall, &boot);
    s->clock.base_wall = wall;
    s->clock.base_boot = boot;
    /* said at once, not only at the first refused request */
    if (s->clock.mark && wall < s->clock.mark - s->clock.step_s)
        clock_log(s, FP_CLOCK_BEHIND, wall, boot);
    return 0;
}

/* One request inside the open transaction: the invoice, its audit record
 * and its outbox jobs in the common case.  The idempotency check is the UNIQUE(seller_id, serial)
 * constraint itself; only a conflict costs a lookup.  Returns FP_EIO when the transaction cannot go
 * on (the batch is then rolled back and every request fails). */
static int issue_one(fp_store *s, fp_issue_req *r)
{
    int err;
    if (clock_take(s, r))
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
    if (audit_append(s, &a, NULL) < 0)
        return FP_EIO; /* the invoice row is in: only a rollback undoes it */
    if (enqueue_jobs(s, r) < 0)
        return FP_EIO;
    if (r->red_form_id) {
        sqlite3_stmt *u = s->wst[WQ_FORM_ISSUED];
        sqlite3_bind_int64(u, 1, r->red_form_id);
        sqlite3_bind_text(u, 2, r->number, FP_NUMBER_LEN, SQLITE_STATIC);
        if (step_done(u) < 0)
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
static void fail_batch(fp_store *s, fp_issue_req *head, const char *why)
{
    for (fp_issue_req *r = head; r; r = r->next) {
        if (r->result == FP_ISSUE_CREATED && r->doc.json == NULL) {
            r->doc.json = r->response; /* give the document back for free() */
            r->response = NULL;
        }
        set_failed(r, why);
    }
    s->nranges = 0;
    s->clock.mark = s->clock_committed;
}

/* After a commit: what the client is told was stored, for the check that
 * follows a fail-stop. */
static void note_acked(fp_store *s, fp_issue_req *head)
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

/* Called with wlock held (see writer_main); releases it. */
static void run_batch(fp_store *s, fp_issue_req *head, int n)
{
    char stop_why[320];
    fp_failstop_check_files(s->fs, NULL); /* a few µs: never write into a deleted file */
    if (fp_failstop_get(s->fs, stop_why, sizeof stop_why) != FP_FAILSTOP_NONE) {
        char why[400];
        snprintf(why, sizeof why, "store fail-stopped: %s", stop_why);
        fail_batch(s, head, why); /* never started: nothing of it was written */
    } else if (step_done(s->wst[WQ_BEGIN]) < 0) {
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
            ok = clock_flush(s) == 0;
        int64_t t_write = now_us(); /* an injected delay counts as a slow write */
        int injected = ok && fault_before_commit(s) < 0;
        ok = ok && !injected;
        int64_t t0 = now_us();
        int commit_failed = 0;
        if (ok)
            commit_failed = !(ok = step_done(s->wst[WQ_COMMIT]) == 0);
        if (ok)
            s->clock_committed = s->clock.mark;
        if (ok)
            fault_after_commit(s);
        if (ok && fp_failstop_check_files(s->fs, NULL) < 0)
            ok = 0, commit_failed = 1; /* committed into a file no longer at its path */
        int64_t commit_us = now_us() - t0;
        atomic_fetch_add(&s->fsync_us, (uint64_t)commit_us);
        atomic_store(&s->last_commit_us, commit_us);
        fp_hist_observe(atomic_load(&s->h_commit), commit_us);
        fp_hist_observe(atomic_load(&s->h_batch), n);
        /* a stalled disk: committed, but the breaker hears a failure */
        int slow =
            s->o.slow_write_ms > 0 && now_us() - t_write > (int64_t)s->o.slow_write_ms * 1000;
        if (slow)
            atomic_fetch_add(&s->slow_writes, 1);
        outcome(s, ok && !slow);
        if (!ok) {
            char why[160];
            snprintf(why, sizeof why, "%s",
                     injected ? "injected fault: store write" : sqlite3_errmsg(s->wdb));
            if (!injected)
                fp_failstop_note_db(s->wdb, commit_failed ? "COMMIT" : "group commit");
            if (fp_failstop_get(s->fs, stop_why, sizeof stop_why) != FP_FAILSTOP_NONE)
                snprintf(why, sizeof why, "store fail-stopped: %.130s", stop_why);
            if (!sqlite3_get_autocommit(s->wdb))
                step_done(s->wst[WQ_ROLLBACK]);
            fail_batch(s, head, why);
            /* a COMMIT that failed on I/O may still have reached the disk */
            int unknown = commit_failed && fp_failstop_get(s->fs, NULL, 0) != FP_FAILSTOP_NONE;
            for (fp_issue_req *r = head; r; r = r->next)
                r->outcome_unknown = unknown;
        } else {
            note_acked(s, head);
            if (created && s->job_hook)
                s->job_hook(s->job_hook_arg);
        }
    }
    pthread_mutex_unlock(&s->wlock);
    atomic_fetch_add(&s->commits, 1);
    atomic_fetch_add(&s->requests, (uint64_t)n);
    uint64_t mb = atomic_load(&s->max_batch);
    while ((uint64_t)n > mb && !atomic_compare_exchange_weak(&s->max_batch, &mb, (uint64_t)n))
        ;
    /* from here no request of the batch is answered early any more */
    pthread_mutex_lock(&s->qlock);
    s->batch = NULL;
    pthread_mutex_unlock(&s->qlock);
    /* answer only now: everything above is durable or failed */
    for (fp_issue_req *r = head, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        if (atomic_load(&r->early))
            fp_issue_req_release(r); /* answered at its deadline already */
        else
            r->done(r, r->arg);
    }
}

/* ---- deadlines (docs/storage-space.md, "stalled disk") ---- */

void fp_issue_req_release(fp_issue_req *r)
{
    if (!r)
        return;
    if (atomic_load(&r->refs) > 0 && atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    free(r->response);
    free(r->doc.json);
    free(r);
}

static int64_t mono_ms(void)
{
    return now_us() / 1000;
}

/* Every 50 ms: queued requests past their deadline leave the queue with
 * FP_ISSUE_TIMEOUT (nothing of them was written); requests of the batch
 * being written (in practice: whose COMMIT is still running) at their
 * deadline are answered FP_ISSUE_UNKNOWN and stay with the writer, which
 * releases them when the batch ends.  Both count as failed writes for the
 * store breaker. */
static void *reaper_main(void *arg)
{
    fp_store *s = arg;
    pthread_mutex_lock(&s->qlock);
    while (!s->reaper_stop) {
        fp_cond_wait_ms(&s->rpcond, &s->qlock, 50);
        if (s->reaper_stop)
            break;
        int64_t now = mono_ms();
        int failures = 0;
        fp_issue_req *expired = NULL, **pp = &s->qhead, *prev = NULL;
        while (*pp) {
            fp_issue_req *r = *pp;
            if (r->deadline_ms && now >= r->deadline_ms) {
                *pp = r->next;
                if (s->qtail == r)
                    s->qtail = prev;
                r->next = expired;
                expired = r;
                continue;
            }
            prev = r;
            pp = &r->next;
        }
        for (fp_issue_req *r = s->batch; r; r = r->next)
            if (r->deadline_ms && now >= r->deadline_ms && !atomic_load(&r->early)) {
                atomic_store(&r->refs, 2); /* the writer's and the caller's */
                atomic_store(&r->early, FP_ISSUE_UNKNOWN);
                atomic_fetch_add(&s->unknown, 1);
                failures++;
                r->done(r, r->arg); /* under qlock: the writer cannot release it meanwhile */
            }
        pthread_mutex_unlock(&s->qlock);
        for (fp_issue_req *r = expired, *next; r; r = next) {
            next = r->next;
            r->next = NULL;
            r->result = FP_ISSUE_TIMEOUT;
            r->number[0] = 0;
            snprintf(r->error, sizeof r->error, "still queued for the writer at its deadline");
            atomic_fetch_add(&s->timed_out, 1);
            failures++;
            r->done(r, r->arg);
        }
        for (int i = 0; i < failures; i++)
            outcome(s, 0);
        pthread_mutex_lock(&s->qlock);
    }
    pthread_mutex_unlock(&s->qlock);
    return NULL;
}

static void *writer_main(void *arg)
{
    fp_store *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->qlock);
        while (!s->qhead && !s->stopping)
            pthread_cond_wait(&s->qcond, &s->qlock);
        if (!s->qhead && s->stopping) {
            pthread_mutex_unlock(&s->qlock);
            break;
        }
        pthread_mutex_unlock(&s->qlock);
        /* The writer connection first, then the batch: while another
         * write holds it (a job, a probe, an audit record; on a stalled
         * disk for seconds) requests wait in the queue, where their
         * deadline answers them "nothing stored". */
        pthread_mutex_lock(&s->wlock);
        pthread_mutex_lock(&s->qlock);
        if (!s->qhead) { /* all timed out meanwhile */
            pthread_mutex_unlock(&s->qlock);
            pthread_mutex_unlock(&s->wlock);
            continue;
        }
        /* take up to max_batch requests */
        fp_issue_req *head = s->qhead, *tail = head;
        int n = 1;
        while (tail->next && n < s->o.max_batch) {
            tail = tail->next;
            n++;
        }
        s->qhead = tail->next;
        if (!s->qhead)
            s->qtail = NULL;
        tail->next = NULL;
        s->batch = head;
        pthread_mutex_unlock(&s->qlock);
        run_batch(s, head, n);
    }
    return NULL;
}

void fp_store_submit(fp_store *s, fp_issue_req *r)
{
    r->next = NULL;
    r->result = FP_ISSUE_PENDING;
    atomic_store(&r->early, 0);
    atomic_store(&r->refs, 0);
    r->deadline_ms = s->o.write_deadline_ms > 0 ? mono_ms() + s->o.write_deadline_ms : 0;
    pthread_mutex_lock(&s->qlock);
    if (s->stopping || s->draining[0]) {
        char why[sizeof s->draining];
        snprintf(why, sizeof why, "%s", s->draining[0] ? s->draining : "store is shutting down");
        pthread_mutex_unlock(&s->qlock);
        set_failed(r, why);
        r->done(r, r->arg);
        return;
    }
    if (s->qtail)
        s->qtail->next = r;
    else
        s->qhead = r;
    s->qtail = r;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
}

int fp_store_clock_get(fp_store *s, int64_t *mark, int64_t *confirmed_at, fp_err *err)
{
    pthread_mutex_lock(&s->wlock);
    int rc = clock_load(s->wdb, mark, confirmed_at);
    if (rc < 0)
        fp_fail(err, rc, "issue clock: %s", sqlite3_errmsg(s->wdb));
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int fp_store_clock_confirm(fp_store *s, const char *actor, fp_err *err)
{
    int64_t wall, boot;
    clock_read(s, &wall, &boot);
    char txt[32], target[64];
    cst_text(wall, txt);
    snprintf(target, sizeof target, "clock %s", txt);
    fp_audit_rec a = {
        .ts = wall, .actor = actor, .action = "clock.confirm", .target = target, .outcome = "ok"};
    pthread_mutex_lock(&s->wlock);
    int rc = exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->wdb, "UPDATE issue_clock SET confirmed_at=?1 WHERE id=1", -1, &st,
                               NULL) != SQLITE_OK) {
            rc = fp_fail(err, FP_EIO, "issue clock: %s", sqlite3_errmsg(s->wdb));
        } else {
            sqlite3_bind_int64(st, 1, wall);
            if (step_done(st) < 0)
                rc = fp_fail(err, FP_EIO, "issue clock: %s", sqlite3_errmsg(s->wdb));
            sqlite3_finalize(st);
        }
        if (rc == 0)
            rc = audit_append(s, &a, err);
        if (rc == 0)
            rc = exec(s->wdb, "COMMIT", err);
        if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
            exec(s->wdb, "ROLLBACK", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int fp_store_cancel_queued(fp_store *s, const char *why)
{
    pthread_mutex_lock(&s->qlock);
    snprintf(s->draining, sizeof s->draining, "%s", why && *why ? why : "cancelled");
    fp_issue_req *head = s->qhead;
    s->qhead = s->qtail = NULL;
    pthread_mutex_unlock(&s->qlock);
    int n = 0;
    for (fp_issue_req *r = head, *next; r; r = next, n++) {
        next = r->next;
        r->next = NULL;
        set_failed(r, why);
        r->done(r, r->arg);
    }
    return n;
}

/* ---- open / close ---- */

int fp_store_open(const fp_store_opts *o, fp_store **out, fp_err *err)
{
    int rc;
    fp_store *s = calloc(1, sizeof *s);
    if (!s)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    s->o = *o;
    if (s->o.read_conns <= 0)
        s->o.read_conns = 4;
    if (s->o.read_conns > MAX_READERS)
        s->o.read_conns = MAX_READERS;
    if (s->o.max_batch <= 0)
        s->o.max_batch = 512;
    if (s->o.checkpoint_frames <= 0)
        s->o.checkpoint_frames = 4000;
    if (s->o.slow_write_ms == 0)
        s->o.slow_write_ms = 2000;
    if (s->o.write_deadline_ms == 0)
        s->o.write_deadline_ms = 5000;
    fp_store_shm_guard();
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->hooklock, NULL);
    fp_cond_init_mono(&s->rpcond);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_mutex_init(&s->cklock, NULL);
    fp_cond_init_mono(&s->ckcond);
    pthread_mutex_init(&s->rlock, NULL);
    pthread_cond_init(&s->rcond, NULL);

    /* Before any connection: the check from the disk (docs/storage.md).
     * A failure leaves the store open read-only (fail-stop). */
    if ((rc = fp_failstop_new(o->path, &s->fs, err)) < 0)
        goto fail;
    const char *vfs = fp_failstop_vfs_name(s->fs);
    int bg_check = 0;
    if (access(o->path, F_OK) == 0) {
        fp_store_check_report rep;
        int sync =
            s->o.start_check == FP_START_CHECK_SYNC ||
            (s->o.start_check == FP_START_CHECK_AUTO && fp_failstop_needs_sync_check(o->path));
        fp_failstop_startup(s->fs, sync, &rep);
        bg_check = !sync && s->o.start_check == FP_START_CHECK_AUTO;
    }
    if ((rc = open_conn(o->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs, &s->wdb, err)) <
        0)
        goto fail;
    /* journal_mode=WAL is persistent; synchronous=FULL makes every COMMIT
     * fsync the WAL, which is what makes an acknowledgement durable. */
    if ((rc = exec(s->wdb,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                   "PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0; "
                   "PRAGMA journal_size_limit=67108864",
                   err)) < 0)
        goto fail;
    if ((rc = migrate(s->wdb, err)) < 0)
        goto fail;
    if ((rc = fp_failstop_watch_files(s->fs, err)) < 0)
        goto fail;
    for (int i = 0; i < WQ__N; i++)
        if (sqlite3_prepare_v3(s->wdb, write_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->wst[i],
                               NULL) != SQLITE_OK) {
            rc = fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(s->wdb));
            goto fail;
        }
    if ((rc = audit_open(s, err)) < 0) {
        char why[320];
        if (fp_failstop_get(s->fs, why, sizeof why) == FP_FAILSTOP_NONE)
            goto fail;
        /* read-only already: serve what can be read */
        fprintf(stderr, "{\"level\":\"error\",\"event\":\"audit_unreadable\",\"detail\":\"%s\"}\n",
                err ? err->msg : "");
    }
    if ((rc = clock_open(s, err)) < 0)
        goto fail;
    for (int i = 0; i < s->o.read_conns; i++) {
        reader *rd = &s->readers[i];
        if ((rc = open_conn(o->path, SQLITE_OPEN_READONLY, vfs, &rd->db, err)) < 0)
            goto fail;
        s->nreaders++;
        for (int q = 0; q < RQ__N; q++)
            if (sqlite3_prepare_v3(rd->db, read_sql[q], -1, SQLITE_PREPARE_PERSISTENT, &rd->st[q],
                                   NULL) != SQLITE_OK) {
                rc = fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(rd->db));
                goto fail;
            }
        s->rfree[s->nfree++] = i;
    }
    /* A connection checkpoints only once it has opened the WAL: read first. */
    if ((rc = open_conn(o->path, SQLITE_OPEN_READWRITE, vfs, &s->cdb, err)) < 0 ||
        (rc = exec(s->cdb, "SELECT count(*) FROM sqlite_master", err)) < 0)
        goto fail;
    sqlite3_wal_hook(s->wdb, wal_hook, s);
    if (pthread_create(&s->ckpt, NULL, ckpt_main, s) != 0) {
        rc = fp_fail(err, FP_EIO, "cannot start checkpointer thread");
        goto fail;
    }
    s->ckpt_started = 1;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        rc = fp_fail(err, FP_EIO, "cannot start writer thread");
        goto fail;
    }
    s->writer_started = 1;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        rc = fp_fail(err, FP_EIO, "cannot start the deadline thread");
        goto fail;
    }
    s->reaper_started = 1;
    if (bg_check)
        fp_failstop_background_check(s->fs); /* its failure trips the fail-stop */
    *out = s;
    return 0;
fail:
    fp_store_close(s);
    return rc;
}

void fp_store_close(fp_store *s)
{
    if (!s)
        return;
    fp_failstop_background_stop(s->fs); /* interrupts a start-up check still running */
    if (s->writer_started) {
        pthread_mutex_lock(&s->qlock);
        s->stopping = 1;
        pthread_cond_signal(&s->qcond);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->writer, NULL);
    }
    if (s->reaper_started) {
        pthread_mutex_lock(&s->qlock);
        s->reaper_stop = 1;
        pthread_cond_signal(&s->rpcond);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->reaper, NULL);
    }
    if (s->ckpt_started) {
        pthread_mutex_lock(&s->cklock);
        s->ck_stop = 1;
        pthread_cond_signal(&s->ckcond);
        pthread_mutex_unlock(&s->cklock);
        pthread_join(s->ckpt, NULL);
    }
    /* after a fail-stop nothing is checkpointed, not even by the last
     * close: the WAL may hold the only good copy of the last commits */
    int stopped = fp_failstop_get(s->fs, NULL, 0) != FP_FAILSTOP_NONE;
    for (int i = 0; stopped && i < s->nreaders; i++)
        sqlite3_db_config(s->readers[i].db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    if (stopped && s->cdb)
        sqlite3_db_config(s->cdb, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    if (stopped && s->wdb)
        sqlite3_db_config(s->wdb, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    for (int i = 0; i < s->nreaders; i++) {
        for (int q = 0; q < RQ__N; q++)
            sqlite3_finalize(s->readers[i].st[q]);
        sqlite3_close(s->readers[i].db);
    }
    sqlite3_close(s->cdb);
    audit_close(s); /* signs the tail: needs the write statements */
    for (int i = 0; i < WQ__N; i++)
        sqlite3_finalize(s->wst[i]);
    if (s->wdb) {
        if (!stopped)
            sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(s->wdb);
    }
    fp_failstop_free(s->fs); /* after the last connection: it owns their VFS */
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->cklock);
    pthread_cond_destroy(&s->ckcond);
    pthread_mutex_destroy(&s->rlock);
    pthread_cond_destroy(&s->rcond);
    pthread_mutex_destroy(&s->hooklock);
    pthread_cond_destroy(&s->rpcond);
    free(s);
}

/* ---- reads ---- */

static reader *acquire(fp_store *s)
{
    pthread_mutex_lock(&s->rlock);
    while (s->nfree == 0)
        pthread_cond_wait(&s->rcond, &s->rlock);
    reader *r = &s->readers[s->rfree[--s->nfree]];
    pthread_mutex_unlock(&s->rlock);
    return r;
}

static void release(fp_store *s, reader *r, sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    fp_failstop_note_db(r->db, "read"); /* corruption found by a read */
    pthread_mutex_lock(&s->rlock);
    s->rfree[s->nfree++] = (int)(r - s->readers);
    pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rlock);
}

static char *dup_text(sqlite3_stmt *st, int col, size_t *len)
{
    int n = sqlite3_column_bytes(st, col);
    const unsigned char *t = sqlite3_column_text(st, col);
    char *p = malloc((size_t)n + 1);
    if (p && t) {
        memcpy(p, t, (size_t)n + 1);
        if (len)
            *len = (size_t)n;
    }
    return p;
}

/* The document in column col with the current status (columns col+1,
 * col+2) patched in; malloc'ed. */
static char *with_status(sqlite3_stmt *st, int col, size_t *len)
{
    fp_buf b;
    fp_buf_init(&b, 0);
    fp_doc_append_status(&b, (const char *)sqlite3_column_text(st, col),
                         (size_t)sqlite3_column_bytes(st, col),
                         (const char *)sqlite3_column_text(st, col + 1),
                         (const char *)sqlite3_column_text(st, col + 2));
    return fp_buf_take(&b, len);
}

/* A stored document must still be JSON: a damaged cell (SQLite keeps no
 * checksums) is refused, never served, and stops writes.  1 when it
 * parses. */
static int doc_parses(fp_store *s, sqlite3_stmt *st, int col, const char *what, const char *id)
{
    const char *p = (const char *)sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    cJSON *j = p ? cJSON_ParseWithLength(p, (size_t)n) : NULL;
    int ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!ok)
        fp_failstop_trip(s->fs, FP_FAILSTOP_CORRUPT, 0,
                         "the stored document of %s %.64s is not valid JSON (damaged row)", what,
                         id);
    return ok;
}

static int step_row(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? FP_ENOTFOUND : FP_EIO;
}

int fp_store_find_serial(fp_store *s, int64_t seller_id, const char *serial, unsigned char hash[32],
                         char number[FP_NUMBER_LEN + 1], char **doc, size_t *len)
{
    reader *r = acquire(s);
    sqlite3_stmt *st = r->st[RQ_FIND_SERIAL];
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
    int rc = step_row(st);
    if (rc == 0) {
        if (sqlite3_column_bytes(st, 0) == 32)
            memcpy(hash, sqlite3_column_blob(st, 0), 32);
        else
            memset(hash, 0, 32);
        copy_col(st, 2, number, FP_NUMBER_LEN + 1);
        if (!doc_parses(s, st, 1, "invoice", number))
            rc = FP_ECORRUPT;
        else if (!(*doc = dup_text(st, 1, len)))
            rc = FP_ENOMEM;
    }
    release(s, r, st);
    return rc;
}

int fp_store_get_invoice(fp_store *s, int64_t seller_id, const char *number, char **doc,
                         size_t *len)
{
    reader *r = acquire(s);
    sqlite3_stmt *st = r->st[RQ_GET_INVOICE];
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, number, -1, SQLITE_STATIC);
    int rc = step_row(st);
    if (rc == 0 && !doc_parses(s, st, 0, "invoice", number))
        rc = FP_ECORRUPT;
    else if (rc == 0 && !(*doc = with_status(st, 0, len)))
        rc = FP_ENOMEM;
    release(s, r, st);
    return rc;
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

int fp_store_get_client(fp_store *s, const char *client_id, fp_client_rec *c)
{
    reader *r = acquire(s);
    sqlite3_stmt *st = r->st[RQ_GET_CLIENT];
    sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    int rc = step_row(st);
    if (rc == 0) {
        memset(c, 0, sizeof *c);
        snprintf(c->client_id, sizeof c->client_id, "%s", client_id);
        c->seller_id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) == 16 && sqlite3_column_bytes(st, 2) == 32) {
            memcpy(c->salt, sqlite3_column_blob(st, 1), 16);
            memcpy(c->hash, sqlite3_column_blob(st, 2), 32);
        } else {
            rc = FP_EIO;
        }
        copy_col(st, 3, c->scope, sizeof c->scope);
        c->disabled = sqlite3_column_int(st, 4);
    }
    release(s, r, st);
    return rc;
}

int fp_store_get_seller(fp_store *s, int64_t seller_id, fp_seller *out)
{
    reader *r = acquire(s);
    sqlite3_stmt *st = r->st[RQ_GET_SELLER];
    sqlite3_bind_int64(st, 1, seller_id);
    int rc = step_row(st);
    if (rc == 0) {
        copy_col(st, 0, out->name, sizeof out->name);
        copy_col(st, 1, out->tax_id, sizeof out->tax_id);
        copy_col(st, 2, out->address, sizeof out->address);
        copy_col(st, 3, out->phone, sizeof out->phone);
        copy_col(st, 4, out->bank, sizeof out->bank);
        copy_col(st, 5, out->account, sizeof out->account);
    }
    release(s, r, st);
    return rc;
}

int fp_store_numbers_remaining(fp_store *s, int64_t seller_id, int64_t *remaining)
{
    reader *r = acquire(s);
    sqlite3_stmt *st = r->st[RQ_REMAINING];
    char yy[3];
    current_yy(yy, 0);
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, yy, 2, SQLITE_TRANSIENT);
    int rc = step_row(st);
    if (rc == 0)
        *remaining = sqlite3_column_int64(st, 0);
    release(s, r, st);
    return rc;
}

int fp_store_ping(fp_store *s, fp_err *err)
{
    reader *r = acquire(s);
    sqlite3_stmt *st = r->st[RQ_PING];
    int rc = step_row(st);
    if (rc < 0)
        fp_fail(err, FP_EIO, "database: %s", sqlite3_errmsg(r->db));
    release(s, r, st);
    return rc;
}

/* ---- setup ---- */

static int setup_exec(fp_store *s, const char *sql, fp_err *err,
                      void (*bind)(sqlite3_stmt *, const void *), const void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    pthread_mutex_lock(&s->wlock);
    if (sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(s->wdb));
    } else {
        bind(st, arg);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

static void bind_seller(sqlite3_stmt *st, const void *arg)
{
    const fp_seller *x = arg;
    sqlite3_bind_text(st, 1, x->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, x->tax_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, x->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, x->phone, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, x->bank, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, x->account, -1, SQLITE_STATIC);
}

int fp_store_add_seller(fp_store *s, const fp_seller *seller, int64_t *id, fp_err *err)
{
    int rc = setup_exec(s,
                        "INSERT INTO sellers(name, tax_id, address, phone, bank, account) "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                        err, bind_seller, seller);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(s->wdb);
    return rc;
}

typedef struct range_arg {
    int64_t seller_id, first, last;
    const char *prefix;
} range_arg;

static void bind_range(sqlite3_stmt *st, const void *arg)
{
    const range_arg *r = arg;
    sqlite3_bind_int64(st, 1, r->seller_id);
    sqlite3_bind_text(st, 2, r->prefix, 5, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->first);
    sqlite3_bind_int64(st, 4, r->last);
    sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
}

int fp_store_add_range(fp_store *s, int64_t seller_id, const char prefix[6], int64_t first,
                       int64_t last, const fp_audit_rec *audit, fp_err *err)
{
    /* Numbers are unique across sellers: a range may not overlap any other
     * range of the same prefix, or issuing would hit used numbers. */
    for (int i = 0; i < 5; i++)
        if (prefix[i] < '0' || prefix[i] > '9')
            return fp_fail(err, FP_EINVAL,
                           "range prefix must be 5 digits (year, province, channel)");
    if (prefix[5] != 0 || first < 1 || first > last || last > 999999999999999LL)
        return fp_fail(err, FP_EINVAL, "range must satisfy 1 <= first <= last <= 999999999999999");
    /* the check, the insert and its audit record: one transaction */
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = NULL;
    int rc = exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto unlock;
    int overlap = -1;
    if (sqlite3_prepare_v2(s->wdb,
                           "SELECT count(*) FROM number_ranges WHERE prefix=?1 AND first<=?3 "
                           "AND last>=?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, prefix, 5, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, first);
        sqlite3_bind_int64(st, 3, last);
        if (sqlite3_step(st) == SQLITE_ROW)
            overlap = sqlite3_column_int(st, 0) > 0;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (overlap != 0) {
        rc = overlap > 0
                 ? fp_fail(err, FP_ECONFLICT, "range %s %lld..%lld overlaps an existing range",
                           prefix, (long long)first, (long long)last)
                 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
        goto rollback;
    }
    if (sqlite3_prepare_v2(s->wdb,
                           "INSERT INTO number_ranges(seller_id, prefix, first, last, next, "
                           "created_at) VALUES(?1, ?2, ?3, ?4, ?3, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    range_arg a = {seller_id, first, last, prefix};
    bind_range(st, &a);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto dberr;
    sqlite3_finalize(st);
    st = NULL;
    char target[48];
    snprintf(target, sizeof target, "%.5s:%lld..%lld", prefix, (long long)first, (long long)last);
    if ((rc = audit_change(s, audit, target, "ok", err)) < 0 ||
        (rc = exec(s->wdb, "COMMIT", err)) < 0)
        goto rollback;
    goto unlock;
dberr:
    rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
rollback:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(s->wdb))
        exec(s->wdb, "ROLLBACK", NULL);
unlock:
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

void fp_store_get_stats(fp_store *s, fp_store_stats *st)
{
    st->commits = atomic_load(&s->commits);
    st->requests = atomic_load(&s->requests);
    st->max_batch = atomic_load(&s->max_batch);
    st->fsync_us_total = atomic_load(&s->fsync_us);
    st->slow_writes = atomic_load(&s->slow_writes);
    st->timed_out = atomic_load(&s->timed_out);
    st->unknown = atomic_load(&s->unknown);
    st->last_commit_us = atomic_load(&s->last_commit_us);
    st->last_probe_us = atomic_load(&s->last_probe_us);
    st->slow_write_ms = s->o.slow_write_ms;
}

/* ---- red forms ---- */

void fp_red_form_rec_clear(fp_red_form_rec *r)
{
    if (!r)
        return;
    free(r->lines);
    memset(r, 0, sizeof *r);
}

static int is_open_state(const char *st)
{
    return !strcmp(st, "no_confirmation_needed") || !strcmp(st, "awaiting_buyer") ||
           !strcmp(st, "awaiting_seller") || !strcmp(st, "confirmed");
}

/* Reads a form with its lines on connection db (writer or reader). */
static int form_read(sqlite3 *db, int64_t seller_id, const char *form_no, int64_t id,
                     fp_red_form_rec *out)
{
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    memset(out, 0, sizeof *out);
    const char *sql = "SELECT id, form_no, blue_number, reason, initiated_by, state, created_at, "
                      "COALESCE(expires_at, 0), COALESCE(red_number, ''), total_amount, total_tax "
                      "FROM red_forms WHERE seller_id=?1 AND (form_no=?2 OR id=?3)";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return FP_EIO;
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, form_no ? form_no : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = FP_ENOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW)
        goto out;
    out->id = sqlite3_column_int64(st, 0);
    copy_col(st, 1, out->form_no, sizeof out->form_no);
    copy_col(st, 2, out->blue_number, sizeof out->blue_number);
    fp_red_reason_parse((const char *)sqlite3_column_text(st, 3), &out->reason);
    copy_col(st, 4, out->initiated_by, sizeof out->initiated_by);
    copy_col(st, 5, out->state, sizeof out->state);
    out->created_at = sqlite3_column_int64(st, 6);
    out->expires_at = sqlite3_column_int64(st, 7);
    copy_col(st, 8, out->red_number, sizeof out->red_number);
    out->total_amount = sqlite3_column_int64(st, 9);
    out->total_tax = sqlite3_column_int64(st, 10);
    /* a form awaiting the other side lapses after its deadline */
    if (out->expires_at && time(NULL) >= out->expires_at && !strncmp(out->state, "awaiting_", 9))
        snprintf(out->state, sizeof out->state, "lapsed");
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT line, quantity, amount, tax FROM red_form_lines WHERE form_id=?1 "
            "ORDER BY line",
            -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, out->id);
    int cap = 8;
    out->lines = calloc((size_t)cap, sizeof *out->lines);
    while (out->lines && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->nlines == cap) {
            fp_red_line *nl = realloc(out->lines, sizeof *nl * (size_t)(cap *= 2));
            if (!nl)
                goto out;
            out->lines = nl;
        }
        fp_red_line *l = &out->lines[out->nlines++];
        memset(l, 0, sizeof *l);
        l->line = sqlite3_column_int(st, 0);
        const char *q = (const char *)sqlite3_column_text(st, 1);
        l->has_qty = q && *q;
        if (l->has_qty)
            fp_qty_parse(q, &l->qty);
        l->amount = sqlite3_column_int64(st, 2);
        l->tax = sqlite3_column_int64(st, 3);
    }
    rc = out->lines && step == SQLITE_DONE ? 0 : FP_EIO;
out:
    sqlite3_finalize(st);
    return rc;
}

int fp_store_red_form_get(fp_store *s, int64_t seller_id, const char *form_no, fp_red_form_rec *out)
{
    reader *r = acquire(s);
    int rc = form_read(r->db, seller_id, form_no, -1, out);
    release(s, r, NULL);
    return rc;
}

/* What the forms of blue invoice `blue` that are issued or still open took
 * from each line (1-based index into used). */
static int used_by_forms(sqlite3 *db, const char *blue, fp_red_used *used, int nused)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            db,
            "SELECT f.state, COALESCE(f.expires_at, 0), l.line, l.quantity, l.amount, "
            "l.tax FROM red_forms f JOIN red_form_lines l ON l.form_id = f.id "
            "WHERE f.blue_number=?1",
            -1, &st, NULL) != SQLITE_OK)
        return FP_EIO;
    sqlite3_bind_text(st, 1, blue, -1, SQLITE_STATIC);
    int step;
    int64_t now = (int64_t)time(NULL);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        int64_t exp = sqlite3_column_int64(st, 1);
        int line = sqlite3_column_int(st, 2);
        if (!state || line < 1 || line > nused)
            continue;
        int counts =
            !strcmp(state, "issued") ||
            (is_open_state(state) && !(exp && now >= exp && !strncmp(state, "awaiting_", 9)));
        if (!counts)
            continue;
        fp_qty q = 0;
        const char *qs = (const char *)sqlite3_column_text(st, 3);
        if (qs && *qs)
            fp_qty_parse(qs, &q);
        used[line - 1].qty += q;
        used[line - 1].amount += sqlite3_column_int64(st, 4);
        used[line - 1].tax += sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : FP_EIO;
}

int fp_store_red_form_create(fp_store *s, int64_t seller_id, fp_red_form *f, const char *state,
                             int64_t expires_at, fp_red_form_rec *out, fp_errors *es,
                             const fp_audit_rec *audit, fp_err *err)
{
    memset(out, 0, sizeof *out);
    int maxline = 0;
    for (int i = 0; i < f->nlines; i++)
        if (f->lines[i].line + 1 > maxline) /* + 1: a discounted line's discount */
            maxline = f->lines[i].line + 1;
    fp_red_used *used = calloc((size_t)maxline + 1, sizeof *used);
    if (!used)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    int rc = 0;
    int64_t id = 0;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&s->wlock);
    if (exec(s->wdb, "BEGIN IMMEDIATE", err) < 0) {
        rc = FP_EIO;
        goto unlock;
    }
    if (used_by_forms(s->wdb, f->blue_number, used, maxline) < 0) {
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
        goto rollback;
    }
    fp_red_settle(f, used, maxline);
    if (fp_red_check_caps(f, used, maxline, es) < 0) {
        rc = FP_ERANGE;
        goto rollback;
    }
    if (sqlite3_prepare_v2(s->wdb,
                           "INSERT INTO red_forms(form_no, seller_id, blue_number, reason, "
                           "initiated_by, state, created_at, expires_at, total_amount, total_tax) "
                           "VALUES('', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, f->blue_number, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, fp_red_reason_name(f->reason), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f->initiated_by_buyer ? "buyer" : "seller", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (int64_t)time(NULL));
    if (expires_at)
        sqlite3_bind_int64(st, 7, expires_at);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int64(st, 8, f->total_amount);
    sqlite3_bind_int64(st, 9, f->total_tax);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto dberr;
    sqlite3_finalize(st);
    st = NULL;
    id = sqlite3_last_insert_rowid(s->wdb);
    /* form numbers: RF + 18 digits of the row id (unique, never reused) */
    char form_no[24], sql[128];
    snprintf(form_no, sizeof form_no, "RF%018lld", (long long)id);
    snprintf(sql, sizeof sql, "UPDATE red_forms SET form_no='%s' WHERE id=%lld", form_no,
             (long long)id);
    if (exec(s->wdb, sql, err) < 0)
        goto rollback;
    if (sqlite3_prepare_v2(s->wdb,
                           "INSERT INTO red_form_lines(form_id, line, quantity, amount, tax) "
                           "VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    for (int i = 0; i < f->nlines; i++) {
        char q[64] = "";
        if (f->lines[i].has_qty)
            fp_qty_format(f->lines[i].qty, q, sizeof q);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, f->lines[i].line);
        sqlite3_bind_text(st, 3, q, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, f->lines[i].amount);
        sqlite3_bind_int64(st, 5, f->lines[i].tax);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto dberr;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = audit_change(s, audit, form_no, state, err)) < 0 || exec(s->wdb, "COMMIT", err) < 0)
        goto rollback;
    rc = form_read(s->wdb, seller_id, NULL, id, out);
    goto unlock;
dberr:
    rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
rollback:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(s->wdb))
        exec(s->wdb, "ROLLBACK", NULL);
    if (rc == 0)
        rc = FP_EIO;
unlock:
    pthread_mutex_unlock(&s->wlock);
    free(used);
    return rc;
}

int fp_store_red_form_act(fp_store *s, int64_t seller_id, const char *form_no, const char *action,
                          fp_red_form_rec *out, const fp_audit_rec *audit, fp_err *err)
{
    static const struct {
        const char *action, *to;
        const char *from[4];
    } moves[] = {
        {"confirm", "confirmed", {"awaiting_buyer", "awaiting_seller", NULL}},
        {"reject", "rejected", {"awaiting_buyer", "awaiting_seller", NULL}},
        {"withdraw",
         "withdrawn",
         {"no_confirmation_needed", "awaiting_buyer", "awaiting_seller", "confirmed"}},
    };
    int m = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(action, moves[i].action))
            m = i;
    memset(out, 0, sizeof *out);
    if (m < 0)
        return fp_fail(err, FP_EINVAL, "unknown action %s", action);
    /* the move and its audit record: one transaction */
    pthread_mutex_lock(&s->wlock);
    int rc = exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0)
        rc = form_read(s->wdb, seller_id, form_no, -1, out);
    int refused = 0;
    if (rc == 0) {
        int allowed = 0;
        for (int i = 0; i < 4 && moves[m].from[i]; i++)
            allowed |= !strcmp(out->state, moves[m].from[i]);
        /* a lapse that was only computed on read is stored (and audited)
         * on the way to refusing; anything else refused changes nothing */
        const char *to = allowed ? moves[m].to : !strcmp(out->state, "lapsed") ? "lapsed" : NULL;
        refused = !allowed;
        if (to) {
            char sql[128];
            snprintf(sql, sizeof sql, "UPDATE red_forms SET state='%s' WHERE id=%lld", to,
                     (long long)out->id);
            fp_audit_rec lapse;
            const fp_audit_rec *a = audit;
            if (audit && !allowed) {
                lapse = *audit;
                lapse.action = "red_form.lapse";
                lapse.outcome = "lapsed";
                a = &lapse;
            }
            if ((rc = exec(s->wdb, sql, err)) == 0 &&
                (rc = audit_change(s, a, out->form_no, to, err)) == 0 && allowed)
                snprintf(out->state, sizeof out->state, "%s", to);
        }
    }
    if (rc == 0)
        rc = exec(s->wdb, "COMMIT", err);
    if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
        exec(s->wdb, "ROLLBACK", NULL);
    if (rc == 0 && refused)
        rc = FP_ECONFLICT;
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int fp_store_list_invoices_part(fp_store *s, int64_t seller_id, const fp_list_query *q,
                                size_t soft_bytes, fp_buf *out, int *rows,
                                char last[FP_NUMBER_LEN + 1], int *more)
{
    /* One statement for every filter combination: absent filters are NULL
     * and match everything; ordered by number, which is the issue order
     * within a range. */
    static const char sql[] =
        "SELECT number, doc, status, failure FROM invoices WHERE seller_id=?1 "
        "AND (?2 IS NULL OR serial=?2) AND (?3 IS NULL OR buyer_tax_id=?3) "
        "AND (?4 IS NULL OR issued_at >= ?4) AND (?5 IS NULL OR issued_at < ?5) "
        "AND (?6 IS NULL OR number > ?6) ORDER BY number LIMIT ?7";
    reader *r = acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    *more = 0;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, seller_id);
    if (q->serial)
        sqlite3_bind_text(st, 2, q->serial, -1, SQLITE_STATIC);
    if (q->buyer_tax_id)
        sqlite3_bind_text(st, 3, q->buyer_tax_id, -1, SQLITE_STATIC);
    if (q->from_ts)
        sqlite3_bind_int64(st, 4, q->from_ts);
    if (q->to_ts)
        sqlite3_bind_int64(st, 5, q->to_ts);
    if (q->cursor)
        sqlite3_bind_text(st, 6, q->cursor, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, q->limit + 1); /* one more tells whether a page follows */
    int n = 0, step, corrupt = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == q->limit || (soft_bytes && n > 0 && out->len >= soft_bytes)) {
            *more = 1;
            break;
        }
        copy_col(st, 0, last, FP_NUMBER_LEN + 1);
        if (!doc_parses(s, st, 1, "invoice", last)) {
            corrupt = 1;
            break;
        }
        if ((*rows)++ > 0)
            fp_buf_append(out, ",", 1);
        n++;
        fp_doc_append_status(
            out, (const char *)sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1),
            (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3));
    }
    rc = corrupt                                     ? FP_ECORRUPT
         : step == SQLITE_ROW || step == SQLITE_DONE ? (out->overflow ? FP_ENOMEM : 0)
                                                     : FP_EIO;
out:
    sqlite3_finalize(st);
    release(s, r, NULL);
    return rc;
}

int fp_store_list_invoices(fp_store *s, int64_t seller_id, const fp_list_query *q, fp_buf *out,
                           char next_cursor[FP_NUMBER_LEN + 1])
{
    int rows = 0, more = 0;
    char last[FP_NUMBER_LEN + 1] = "";
    int rc = fp_store_list_invoices_part(s, seller_id, q, 0, out, &rows, last, &more);
    snprintf(next_cursor, FP_NUMBER_LEN + 1, "%s", rc == 0 && more ? last : "");
    return rc;
}

int fp_store_ranges(fp_store *s, void (*fn)(const fp_range_rec *r, void *arg), void *arg)
{
    reader *r = acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO, step = SQLITE_ERROR;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT id, seller_id, prefix, first, last, next, created_at "
                           "FROM number_ranges ORDER BY id",
                           -1, &st, NULL) == SQLITE_OK) {
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            fp_range_rec rec = {0};
            rec.id = sqlite3_column_int64(st, 0);
            rec.seller_id = sqlite3_column_int64(st, 1);
            copy_col(st, 2, rec.prefix, sizeof rec.prefix);
            rec.first = sqlite3_column_int64(st, 3);
            rec.last = sqlite3_column_int64(st, 4);
            rec.next = sqlite3_column_int64(st, 5);
            rec.created_at = sqlite3_column_int64(st, 6);
            fn(&rec, arg);
        }
        rc = step == SQLITE_DONE ? 0 : FP_EIO;
    }
    sqlite3_finalize(st);
    release(s, r, NULL);
    return rc;
}

/* ---- for the other store files (internal.h) ---- */

sqlite3 *fp_store_wlock(fp_store *s)
{
    pthread_mutex_lock(&s->wlock);
    return s->wdb;
}

void fp_store_wunlock(fp_store *s)
{
    pthread_mutex_unlock(&s->wlock);
}

sqlite3 *fp_store_racquire(fp_store *s, void **slot)
{
    reader *r = acquire(s);
    *slot = r;
    return r->db;
}

void fp_store_rrelease(fp_store *s, void *slot)
{
    release(s, slot, NULL);
}

int fp_store_exec(sqlite3 *db, const char *sql, fp_err *err)
{
    return exec(db, sql, err);
}

void fp_store_set_job_hook(fp_store *s, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&s->wlock);
    s->job_hook = fn;
    s->job_hook_arg = arg;
    pthread_mutex_unlock(&s->wlock);
}

/* Writes after a fail-stop: FP_EIO with the reason. */
static int refuse_stopped(fp_store *s, fp_err *err)
{
    char why[320];
    if (fp_failstop_get(s->fs, why, sizeof why) == FP_FAILSTOP_NONE)
        return 0;
    return fp_fail(err, FP_EIO,
                   "store fail-stopped (writes refused until an operator checks it): %.180s", why);
}

int fp_store_probe_write(fp_store *s, fp_err *err)
{
    int64_t t0 = now_us(); /* the wait for the writer counts: a stalled commit holds it */
    /* the files first: a deleted or replaced database is not written to */
    if (refuse_stopped(s, err) < 0 || fp_failstop_check_files(s->fs, err) < 0)
        return FP_EIO;
    pthread_mutex_lock(&s->wlock);
    int rc = exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO health_probe(id, at) VALUES(1, %lld)",
                 (long long)fp_unix_ms());
        rc = exec(s->wdb, sql, err);
        if (rc == 0 && fault_before_commit(s) < 0)
            rc = fp_fail(err, FP_EIO, "injected fault: store write");
        if (rc == 0 && (rc = exec(s->wdb, "COMMIT", err)) == 0)
            fault_after_commit(s);
        if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
            exec(s->wdb, "ROLLBACK", NULL);
    }
    int64_t took = now_us() - t0;
    atomic_store(&s->last_probe_us, took);
    if (rc == 0 && s->o.slow_write_ms > 0 && took > (int64_t)s->o.slow_write_ms * 1000) {
        atomic_fetch_add(&s->slow_writes, 1);
        rc = fp_fail(err, FP_ETIMEDOUT,
                     "write probe took %lld ms, over the %d ms limit: the disk is stalled",
                     (long long)(took / 1000), s->o.slow_write_ms);
    }
    outcome(s, rc == 0);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

void fp_store_set_outcome_hook(fp_store *s, void (*fn)(int ok, void *arg), void *arg)
{
    pthread_mutex_lock(&s->wlock);
    pthread_mutex_lock(&s->hooklock);
    s->outcome_hook = fn;
    s->outcome_hook_arg = arg;
    pthread_mutex_unlock(&s->hooklock);
    pthread_mutex_unlock(&s->wlock);
}

void fp_store_set_faults(fp_store *s, const fp_store_faults *f)
{
    atomic_store(&s->fault_write_fail, f->write_fail);
    atomic_store(&s->fault_write_delay_ms, f->write_delay_ms);
    atomic_store(&s->fault_fsync_delay_ms, f->fsync_delay_ms);
}

void fp_store_get_faults(fp_store *s, fp_store_faults *f)
{
    f->write_fail = atomic_load(&s->fault_write_fail);
    f->write_delay_ms = atomic_load(&s->fault_write_delay_ms);
    f->fsync_delay_ms = atomic_load(&s->fault_fsync_delay_ms);
}

void fp_store_set_histograms(fp_store *s, struct fp_metric *batch, struct fp_metric *commit_us)
{
    atomic_store(&s->h_batch, batch);
    atomic_store(&s->h_commit, commit_us);
}

/* ---- the audit chain (audit.h) ----
 *
 * The chain's head (last id and hash) and the last checkpoint live in
 * memory, owned by whoever holds wlock; an append inside a transaction
 * advances them.  Every rollback on the writer connection marks them stale
 * (a rollback hook sees them all: run_batch, jobs.c's finish(), the red-form
 * functions, and SQLite's own rollback after an I/O error), and the next
 * append re-reads them inside its transaction, so records of a rolled-back
 * transaction never become anyone's predecessor.  Another process writing
 * the same database (a CLI command while the server runs) makes the cached
 * id collide with the PRIMARY KEY: the append then re-reads the head and
 * tries once more.
 *
 * jobs.c's helpers get only the writer connection; the registry maps it
 * back to its store. */

static pthread_mutex_t audit_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static fp_store *audit_reg;

static void audit_rollback_hook(void *arg)
{
    ((fp_store *)arg)->audit_stale = 1;
}

static int audit_load_head(fp_store *s, fp_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    s->audit_last_id = s->audit_cp_id = s->audit_cp_upto = s->audit_cp_ts = 0;
    memset(s->audit_last_hash, 0, sizeof s->audit_last_hash);
    if (sqlite3_prepare_v2(s->wdb,
                           "SELECT id, upto_id, upto_hash, ts FROM audit_checkpoints "
                           "ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        s->audit_cp_id = sqlite3_column_int64(st, 0);
        s->audit_cp_upto = sqlite3_column_int64(st, 1);
        s->audit_cp_ts = sqlite3_column_int64(st, 3);
        /* a pruned log may hold no record: the anchor is the head */
        s->audit_last_id = s->audit_cp_upto;
        if (sqlite3_column_bytes(st, 2) == FP_AUDIT_HASH_LEN)
            memcpy(s->audit_last_hash, sqlite3_column_blob(st, 2), FP_AUDIT_HASH_LEN);
    } else if (step != SQLITE_DONE) {
        goto dberr;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->wdb, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK)
        goto dberr;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_int64(st, 0) > s->audit_last_id) {
        s->audit_last_id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) != FP_AUDIT_HASH_LEN) {
            /* appending would chain onto a record that proves nothing */
            rc = fp_fail(err, FP_EIO,
                         "audit record %lld has no valid hash: the log was changed behind the "
                         "store's back (run fapiao audit verify)",
                         (long long)s->audit_last_id);
            goto out;
        }
        memcpy(s->audit_last_hash, sqlite3_column_blob(st, 1), FP_AUDIT_HASH_LEN);
    } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
        goto dberr;
    }
    s->audit_stale = 0;
    rc = 0;
    goto out;
dberr:
    rc = fp_fail(err, FP_EIO, "reading the audit chain: %s", sqlite3_errmsg(s->wdb));
out:
    sqlite3_finalize(st);
    return rc;
}

/* Signs the head as the next checkpoint, inside the open transaction. */
static int audit_write_cp(fp_store *s, fp_err *err)
{
    for (int attempt = 0;; attempt++) {
        fp_audit_cp cp = {
            .id = s->audit_cp_id + 1, .upto_id = s->audit_last_id, .ts = (int64_t)time(NULL)};
        memcpy(cp.upto_hash, s->audit_last_hash, FP_AUDIT_HASH_LEN);
        if (fp_audit_cp_sign(&cp, s->audit_sk, s->audit_pk) < 0)
            return fp_fail(err, FP_ECRYPTO, "cannot sign the audit checkpoint");
        sqlite3_stmt *st = s->audit_cp_st;
        sqlite3_bind_int64(st, 1, cp.id);
        sqlite3_bind_int64(st, 2, cp.upto_id);
        sqlite3_bind_blob(st, 3, cp.upto_hash, FP_AUDIT_HASH_LEN, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, cp.ts);
        sqlite3_bind_blob(st, 5, cp.sig, FP_AUDIT_SIG_LEN, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        int ext = sqlite3_extended_errcode(s->wdb);
        if (step != SQLITE_DONE)
            fp_fail(err, FP_EIO, "audit checkpoint: %s", sqlite3_errmsg(s->wdb));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (step == SQLITE_DONE) {
            s->audit_cp_id = cp.id;
            s->audit_cp_upto = cp.upto_id;
            s->audit_cp_ts = cp.ts;
            return 0;
        }
        if (ext != SQLITE_CONSTRAINT_PRIMARYKEY || attempt > 0)
            return FP_EIO;
        int rc = audit_load_head(s, err); /* another process signed one */
        if (rc < 0)
            return rc;
        if (s->audit_last_id == s->audit_cp_upto)
            return 0;
    }
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int audit_append(fp_store *s, const fp_audit_rec *rec, fp_err *err)
{
    if (!rec->actor || !rec->action || !rec->outcome)
        return fp_fail(err, FP_EINVAL, "an audit record needs actor, action and outcome");
    fp_audit_rec r = *rec;
    if (!r.ts)
        r.ts = (int64_t)time(NULL);
    unsigned char h[FP_AUDIT_HASH_LEN];
    for (int attempt = 0;; attempt++) {
        int rc;
        if (s->audit_stale && (rc = audit_load_head(s, err)) < 0)
            return rc;
        fp_audit_row row;
        fp_audit_row_from_rec(&row, s->audit_last_id + 1, &r);
        fp_audit_hash(&row, s->audit_last_hash, h);
        sqlite3_stmt *a = s->wst[WQ_INS_AUDIT];
        sqlite3_bind_int64(a, 1, row.id);
        sqlite3_bind_int64(a, 2, r.ts);
        bind_text_or_null(a, 3, r.actor);
        bind_text_or_null(a, 4, r.action);
        bind_text_or_null(a, 5, r.target);
        bind_text_or_null(a, 6, r.request_id);
        bind_text_or_null(a, 7, r.client_ip);
        bind_text_or_null(a, 8, r.outcome);
        sqlite3_bind_blob(a, 9, s->audit_last_hash, FP_AUDIT_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(a, 10, h, FP_AUDIT_HASH_LEN, SQLITE_STATIC);
        if (r.seller_id > 0) /* hashed as its decimal text (audit.h) */
            sqlite3_bind_int64(a, 11, r.seller_id);
        else
            sqlite3_bind_null(a, 11);
        bind_text_or_null(a, 12, r.client_request_id);
        int step = sqlite3_step(a);
        int ext = sqlite3_extended_errcode(s->wdb);
        if (step != SQLITE_DONE)
            fp_fail(err, FP_EIO, "audit record: %s", sqlite3_errmsg(s->wdb));
        sqlite3_reset(a);
        sqlite3_clear_bindings(a);
        if (step == SQLITE_DONE)
            break;
        if (ext != SQLITE_CONSTRAINT_PRIMARYKEY || attempt > 0)
            return FP_EIO;
        s->audit_stale = 1; /* another process appended: re-read and retry */
    }
    s->audit_last_id++;
    memcpy(s->audit_last_hash, h, FP_AUDIT_HASH_LEN);
    if (s->o.audit_checkpoint_every > 0 &&
        s->audit_last_id - s->audit_cp_upto >= s->o.audit_checkpoint_every)
        return audit_write_cp(s, err);
    return 0;
}

/* The record of a change: the caller's, with the store's target and
 * outcome where the caller left them NULL. */
static fp_audit_rec change_record(const fp_audit_rec *audit, const char *target,
                                  const char *outcome)
{
    fp_audit_rec r = *audit;
    if (!r.target)
        r.target = target;
    if (!r.outcome)
        r.outcome = outcome ? outcome : "ok";
    return r;
}

static int audit_change(fp_store *s, const fp_audit_rec *audit, const char *target,
                        const char *outcome, fp_err *err)
{
    if (!audit)
        return 0;
    fp_audit_rec r = change_record(audit, target, outcome);
    return audit_append(s, &r, err);
}

int fp_store_audit_change(sqlite3 *db, const fp_audit_rec *audit, const char *target,
                          const char *outcome, fp_err *err)
{
    if (!audit)
        return 0;
    fp_audit_rec r = change_record(audit, target, outcome);
    return fp_store_audit_append_conn(db, &r, err);
}

int fp_store_audit_append_conn(sqlite3 *db, const fp_audit_rec *rec, fp_err *err)
{
    fp_store *s;
    pthread_mutex_lock(&audit_reg_lock);
    for (s = audit_reg; s && s->wdb != db; s = s->audit_next)
        ;
    pthread_mutex_unlock(&audit_reg_lock);
    if (!s)
        return fp_fail(err, FP_EINVAL, "not a store's writer connection");
    return audit_append(s, rec, err);
}

/* Records of a database from before the chain (migration 6) get chained
 * once, in id order, and signed by a first checkpoint; only when no record
 * has a hash and no checkpoint exists yet, so a record slipped in later
 * without a hash is never laundered into the chain. */
static int audit_chain_legacy(fp_store *s, fp_err *err)
{
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int rc = exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        return rc;
    int64_t chained = -1, cps = -1;
    if (sqlite3_prepare_v2(s->wdb,
                           "SELECT (SELECT count(*) FROM audit WHERE hash IS NOT NULL), "
                           "(SELECT count(*) FROM audit_checkpoints)",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_step(sel) != SQLITE_ROW)
        goto dberr;
    chained = sqlite3_column_int64(sel, 0);
    cps = sqlite3_column_int64(sel, 1);
    sqlite3_finalize(sel);
    sel = NULL;
    if (chained == 0 && cps == 0) {
        if (sqlite3_prepare_v2(s->wdb,
                               "SELECT id, ts, actor, action, target, request_id, client_ip, "
                               "outcome FROM audit WHERE id > ?1 ORDER BY id LIMIT 1000",
                               -1, &sel, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->wdb, "UPDATE audit SET prev_hash=?2, hash=?3 WHERE id=?1", -1,
                               &upd, NULL) != SQLITE_OK)
            goto dberr;
        unsigned char prev[FP_AUDIT_HASH_LEN] = {0}, h[FP_AUDIT_HASH_LEN];
        int64_t last = 0;
        for (;;) {
            /* a chunk at a time: no UPDATE while the SELECT walks the table */
            enum { CHUNK = 1000 };
            int64_t ids[CHUNK];
            unsigned char(*hashes)[FP_AUDIT_HASH_LEN] = malloc(2 * CHUNK * FP_AUDIT_HASH_LEN);
            if (!hashes) {
                rc = fp_fail(err, FP_ENOMEM, "out of memory");
                goto rollback;
            }
            int n = 0, step;
            sqlite3_bind_int64(sel, 1, last);
            while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
                fp_audit_row row;
                memset(&row, 0, sizeof row);
                row.id = sqlite3_column_int64(sel, 0);
                row.ts = sqlite3_column_int64(sel, 1);
                for (int i = 0; i < FP_AUDIT__V1_FIELDS; i++)
                    if (sqlite3_column_type(sel, 2 + i) != SQLITE_NULL) {
                        row.f[i].p = (const char *)sqlite3_column_text(sel, 2 + i);
                        row.f[i].n = (size_t)sqlite3_column_bytes(sel, 2 + i);
                    }
                fp_audit_hash(&row, prev, h);
                ids[n] = row.id;
                memcpy(hashes[2 * n], prev, FP_AUDIT_HASH_LEN);
                memcpy(hashes[2 * n + 1], h, FP_AUDIT_HASH_LEN);
                memcpy(prev, h, FP_AUDIT_HASH_LEN);
                n++;
            }
            sqlite3_reset(sel);
            for (int i = 0; i < n && step == SQLITE_DONE; i++) {
                sqlite3_bind_int64(upd, 1, ids[i]);
                sqlite3_bind_blob(upd, 2, hashes[2 * i], FP_AUDIT_HASH_LEN, SQLITE_STATIC);
                sqlite3_bind_blob(upd, 3, hashes[2 * i + 1], FP_AUDIT_HASH_LEN, SQLITE_STATIC);
                if (step_done(upd) < 0)
                    step = SQLITE_ERROR;
            }
            free(hashes);
            if (step != SQLITE_DONE)
                goto dberr;
            if (n == 0)
                break;
            last = ids[n - 1];
        }
        if (last) {
            s->audit_last_id = last;
            memcpy(s->audit_last_hash, prev, FP_AUDIT_HASH_LEN);
            s->audit_cp_id = s->audit_cp_upto = 0;
            if ((rc = audit_write_cp(s, err)) < 0)
                goto rollback;
        }
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return exec(s->wdb, "COMMIT", err) < 0 ? (exec(s->wdb, "ROLLBACK", NULL), FP_EIO) : 0;
dberr:
    rc = fp_fail(err, FP_EIO, "chaining the audit log: %s", sqlite3_errmsg(s->wdb));
rollback:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    exec(s->wdb, "ROLLBACK", NULL);
    return rc < 0 ? rc : FP_EIO;
}

static int audit_open(fp_store *s, fp_err *err)
{
    char key[4096], pub[4096];
    if (s->o.audit_checkpoint_every == 0)
        s->o.audit_checkpoint_every = 1000;
    if (s->o.audit_checkpoint_secs == 0)
        s->o.audit_checkpoint_secs = 60;
    if (fp_audit_key_paths(s->o.path, s->o.audit_key_path, key, pub, sizeof key) < 0)
        return fp_fail(err, FP_ERANGE, "audit key path too long");
    /* once a checkpoint is signed, a missing key is restored, never made
     * anew (chain.c key_missing) */
    sqlite3_stmt *cst = NULL;
    int signed_before = 1;
    if (sqlite3_prepare_v2(s->wdb, "SELECT EXISTS(SELECT 1 FROM audit_checkpoints)", -1, &cst,
                           NULL) == SQLITE_OK &&
        sqlite3_step(cst) == SQLITE_ROW)
        signed_before = sqlite3_column_int(cst, 0);
    sqlite3_finalize(cst);
    int rc = fp_audit_key_open(key, pub, !signed_before, s->audit_sk, s->audit_pk, err);
    if (rc < 0)
        return rc;
    if (sqlite3_prepare_v3(s->wdb,
                           "INSERT INTO audit_checkpoints(id, upto_id, upto_hash, ts, signature) "
                           "VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, SQLITE_PREPARE_PERSISTENT, &s->audit_cp_st, NULL) != SQLITE_OK)
        return fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(s->wdb));
    /* a first record without a hash: a database from before the chain */
    sqlite3_stmt *st = NULL;
    int legacy = 0;
    if (sqlite3_prepare_v2(s->wdb, "SELECT hash IS NULL FROM audit ORDER BY id LIMIT 1", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        legacy = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (legacy && (rc = audit_chain_legacy(s, err)) < 0)
        return rc;
    if ((rc = audit_load_head(s, err)) < 0)
        return rc;
    sqlite3_rollback_hook(s->wdb, audit_rollback_hook, s);
    pthread_mutex_lock(&audit_reg_lock);
    s->audit_next = audit_reg;
    audit_reg = s;
    pthread_mutex_unlock(&audit_reg_lock);
    s->audit_ready = 1;
    return 0;
}

/* Signs the head when it moved since the last checkpoint (force: however
 * recent that one is).  1 signed, 0 nothing to do, or an error. */
static int audit_checkpoint(fp_store *s, int force, fp_err *err)
{
    if (refuse_stopped(s, err) < 0)
        return FP_EIO;
    pthread_mutex_lock(&s->wlock);
    int due = s->audit_stale || s->audit_last_id > s->audit_cp_upto;
    if (due && !force && !s->audit_stale && s->o.audit_checkpoint_secs > 0 &&
        (int64_t)time(NULL) - s->audit_cp_ts < s->o.audit_checkpoint_secs)
        due = 0;
    int rc = 0, wrote = 0;
    if (due && (rc = exec(s->wdb, "BEGIN IMMEDIATE", err)) == 0) {
        if (s->audit_stale)
            rc = audit_load_head(s, err);
        if (rc == 0 && s->audit_last_id > s->audit_cp_upto) {
            rc = audit_write_cp(s, err);
            wrote = rc == 0;
        }
        if (rc == 0)
            rc = exec(s->wdb, "COMMIT", err);
        if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
            exec(s->wdb, "ROLLBACK", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc < 0 ? rc : wrote;
}

int fp_store_audit_checkpoint(fp_store *s, fp_err *err)
{
    return audit_checkpoint(s, 0, err);
}

static void audit_close(fp_store *s)
{
    pthread_mutex_lock(&audit_reg_lock);
    for (fp_store **p = &audit_reg; *p; p = &(*p)->audit_next)
        if (*p == s) {
            *p = s->audit_next;
            break;
        }
    pthread_mutex_unlock(&audit_reg_lock);
    if (s->audit_ready)
        audit_checkpoint(s, 1, NULL); /* a clean shutdown leaves no unsigned tail */
    sqlite3_finalize(s->audit_cp_st);
    s->audit_cp_st = NULL;
    s->audit_ready = 0;
    explicit_bzero(s->audit_sk, sizeof s->audit_sk);
}

int fp_store_audit_batch(fp_store *s, const fp_audit_rec *recs, int n, fp_err *err)
{
    for (int i = 0; i < n; i++)
        if (!recs[i].actor || !recs[i].action || !recs[i].outcome)
            return fp_fail(err, FP_EINVAL, "an audit record needs actor, action and outcome");
    if (n <= 0)
        return 0;
    if (refuse_stopped(s, err) < 0)
        return FP_EIO;
    pthread_mutex_lock(&s->wlock);
    int rc = exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        for (int i = 0; i < n && rc == 0; i++)
            rc = audit_append(s, &recs[i], err);
        if (rc == 0 && fault_before_commit(s) < 0)
            rc = fp_fail(err, FP_EIO, "injected fault: store write");
        if (rc == 0 && (rc = exec(s->wdb, "COMMIT", err)) == 0)
            fault_after_commit(s);
        if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
            exec(s->wdb, "ROLLBACK", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int fp_store_audit(fp_store *s, const fp_audit_rec *rec, fp_err *err)
{
    return fp_store_audit_batch(s, rec, 1, err);
}

int fp_store_audit_head(fp_store *s, fp_audit_head *h, fp_err *err)
{
    pthread_mutex_lock(&s->wlock);
    int rc = s->audit_stale ? audit_load_head(s, err) : 0;
    if (rc == 0) {
        h->last_id = s->audit_last_id;
        memcpy(h->last_hash, s->audit_last_hash, FP_AUDIT_HASH_LEN);
        h->cp_id = s->audit_cp_id;
        h->cp_upto = s->audit_cp_upto;
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

static int int_or_null(sqlite3 *db, const char *sql, int64_t arg, int64_t *v, int *null)
{
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, arg);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *null = sqlite3_column_type(st, 0) == SQLITE_NULL;
            *v = sqlite3_column_int64(st, 0);
            rc = 0;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int fp_store_audit_prune(fp_store *s, int64_t before_ts, const char *actor, int64_t *upto,
                         int64_t *anchor_cp, fp_err *err)
{
    *upto = *anchor_cp = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto unlock;
    s->audit_stale = 1;
    if ((rc = audit_load_head(s, err)) < 0)
        goto rollback;
    /* the newest checkpoint that ends before the first record to keep */
    int64_t keep = 0, first = 0, cp_id = 0, cp_upto = 0;
    int keep_null = 1, first_null = 1, cp_null = 1, upto_null = 1;
    if (int_or_null(s->wdb, "SELECT min(id) FROM audit WHERE ts >= ?1", before_ts, &keep,
                    &keep_null) < 0 ||
        int_or_null(s->wdb, "SELECT min(id) FROM audit WHERE id > ?1", 0, &first, &first_null) <
            0 ||
        int_or_null(s->wdb, "SELECT max(id) FROM audit_checkpoints WHERE ?1 = 0 OR upto_id < ?1",
                    keep_null ? 0 : keep, &cp_id, &cp_null) < 0)
        goto dberr;
    if (!cp_null && int_or_null(s->wdb, "SELECT upto_id FROM audit_checkpoints WHERE id = ?1",
                                cp_id, &cp_upto, &upto_null) < 0)
        goto dberr;
    if (cp_null || upto_null || first_null || cp_upto < first) {
        rc = exec(s->wdb, "COMMIT", err); /* nothing old enough ends at a checkpoint */
        goto unlock;
    }
    char sql[160], target[48];
    snprintf(sql, sizeof sql,
             "DELETE FROM audit WHERE id <= %lld; DELETE FROM audit_checkpoints WHERE id < %lld",
             (long long)cp_upto, (long long)cp_id);
    snprintf(target, sizeof target, "upto:%lld", (long long)cp_upto);
    fp_audit_rec rec = {
        .actor = actor ? actor : "cli", .action = "audit.prune", .target = target, .outcome = "ok"};
    if ((rc = exec(s->wdb, sql, err)) < 0 || (rc = audit_append(s, &rec, err)) < 0 ||
        (rc = exec(s->wdb, "COMMIT", err)) < 0)
        goto rollback;
    *upto = cp_upto;
    *anchor_cp = cp_id;
    goto unlock;
dberr:
    rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
rollback:
    if (!sqlite3_get_autocommit(s->wdb))
        exec(s->wdb, "ROLLBACK", NULL);
unlock:
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

/* ---- fail-stop (failstop.c, docs/storage.md) ---- */

int fp_store_failstop(fp_store *s, char *why, size_t cap)
{
    return fp_failstop_get(s->fs, why, cap);
}

const char *fp_store_failstop_name(int cause)
{
    return fp_failstop_cause_name(cause);
}

int fp_store_check_files(fp_store *s, fp_err *err)
{
    return fp_failstop_check_files(s->fs, err);
}

int fp_store_check_path(const char *db_path, int full, fp_store_check_report *rep)
{
    return fp_failstop_check_marked(db_path, full, rep);
}

int fp_store_check_now(fp_store *s, int full, fp_store_check_report *rep)
{
    fp_failstop_expect ex;
    fp_failstop_expected(s->fs, &ex);
    return fp_failstop_check_live(s->fs, &ex, full, rep);
}

int fp_store_failstop_clear_marker(const char *db_path)
{
    return fp_failstop_marker_clear(db_path);
}
