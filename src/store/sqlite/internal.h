/* internal.h — what the SQLite backend's files share (src/store/sqlite/;
 * not a public header): the store's state, the helpers for statements and
 * columns (db.c: the one set of them), the writer connection under its
 * lock, a reader from the pool, and the audit chain's append.
 *
 * Who owns what, and under which lock: writer.c's opening comment. */
#ifndef FAPIAO_STORE_SQLITE_INTERNAL_H
#define FAPIAO_STORE_SQLITE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fapiao/audit.h"
#include "fapiao/jobs.h"
#include "fapiao/store.h"
#include "../internal.h"
#include "failstop.h"

typedef struct fp_sqlite fp_sqlite;

#define MAX_READERS 16

/* the prepared statements of every reader (invoices.c) */
enum {
    RQ_FIND_SERIAL,
    RQ_GET_INVOICE,
    RQ_GET_CLIENT,
    RQ_GET_SELLER,
    RQ_SELLER_GEN,
    RQ_REMAINING,
    RQ_PING,
    RQ__N
};
extern const char *const fp_sq_read_sql[RQ__N];

/* the writer's prepared statements (writer.c) */
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
    WQ_INS_NOTIFY_EARLY,
    WQ_INS_UPLOAD,
    WQ_CREDIT_LEFT,
    WQ_CREDIT_ADD,
    WQ__N
};
extern const char *const fp_sq_write_sql[WQ__N];
#define FP_SQ_JOB_STMTS 16 /* jobs.c's kept statements on the writer connection */

/* The writer's view of a seller's current number range.  Numbers are handed
 * out from memory and `next` is written back once per transaction, in that
 * same transaction; after a rollback the cache is dropped and re-read. */
#define RANGE_CACHE 64
typedef struct range_cache {
    int64_t seller_id, id, next, last;
    int64_t reserved; /* numbers below it are reserved in the archive (0: none) */
    char prefix[6];
    int dirty;
} range_cache;

typedef struct reader {
    sqlite3 *db;
    sqlite3_stmt *st[RQ__N];
} reader;

struct fp_sqlite {
    fp_store_opts o;
    fp_failstop *fs; /* fail-stop state; its VFS opens every connection's files */
    sqlite3 *wdb;
    sqlite3_stmt *wst[WQ__N];
    sqlite3_stmt *jst[FP_SQ_JOB_STMTS]; /* jobs.c's, kept from their first use (under wlock) */
    pthread_mutex_t wlock;              /* the writer connection */
    range_cache ranges[RANGE_CACHE];    /* writer thread only */
    int nranges;
    /* the issue clock (clock.c; writer thread): the mark as committed, the
     * issue time of the request at hand (its number's year), the last
     * confirmation seen, when the last refusal was logged */
    fp_issue_clock clock;
    int64_t clock_committed, issue_t, clock_confirmed, clock_logged;
    fp_clock_verdict clock_last;

    /* the queue, the writer and deadline threads, the outcome hook
     * (../writeq.c); its draining set at open when read_only */
    fp_writeq q;
    char ro_uri[PATH_MAX * 3 + 32]; /* read_only: the URI every connection opens */

    pthread_t ckpt;
    int ckpt_started;
    sqlite3 *cdb;
    int64_t page_size;             /* the database's, read at open (writer.c) */
    _Atomic uint64_t wal_restarts; /* restarts the checkpointer made (writer.c) */
    pthread_mutex_t cklock;
    pthread_cond_t ckcond;
    int ck_pending, ck_stop;

    reader readers[MAX_READERS];
    int nreaders;
    int rfree[MAX_READERS], nfree;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;

    _Atomic uint64_t fsync_us, slow_writes;
    _Atomic int64_t last_commit_us, last_probe_us;
    _Atomic int64_t last_batch_at_us; /* fp_mono_us when the writer last finished a batch */

    /* jobs.c: job outcomes waiting for the next commit on the writer
     * connection (a writer batch or the first waiting job thread takes
     * them all; docs/outbox.md "Job outcomes are group-committed") */
    pthread_mutex_t jdmu; /* jd_head, jd_tail, and each outcome's done */
    pthread_cond_t jdcv;  /* outcomes settled (monotonic clock) */
    struct sq_jdone *jd_head, **jd_tail;
    void (*job_hook)(void *arg); /* called after a commit that queued jobs */
    _Atomic int notify_early;    /* fp_store_set_notify_early (jobs.h) */
    _Atomic int upload_on;       /* fp_store_set_upload (upload.c) */
    _Atomic int credit_on;       /* fp_store_set_credit (credit_tx.c) */
    void *job_hook_arg;
    _Atomic int fault_write_fail, fault_write_delay_ms, fault_fsync_delay_ms;
    struct fp_metric *_Atomic h_batch, *_Atomic h_commit;

    /* the audit chain's head and last checkpoint (under wlock; stale after
     * a rollback: re-read before the next append) */
    int audit_ready, audit_stale;
    int64_t audit_last_id, audit_cp_id, audit_cp_upto, audit_cp_ts;
    int64_t
        audit_cp_mono_ms; /* when the last checkpoint was, on fp_mono_ms: the interval's start */
    unsigned char audit_last_hash[FP_AUDIT_HASH_LEN];
    unsigned char audit_sk[FP_AUDIT_KEY_LEN], audit_pk[FP_AUDIT_KEY_LEN];
    sqlite3_stmt *audit_cp_st;

    /* the change log (backup.c; under wlock): the session recording the
     * transaction at hand, the committed ones queued for the archiver, and
     * whether a foreign write broke it */
    struct sqlite3_session *log;
    /* the archive's number reservations (store_backup.h): called by the
     * writer, wlock held, before a range's next reaches its reservation */
    int (*reserve_fn)(int64_t range_id, int64_t next, int64_t *upto, void *arg);
    void *reserve_arg;
    void *log_head, *log_tail;
    size_t log_bytes;
    int log_broken;
};

/* ---- db.c: statements and columns ---- */
/* Runs sql (one or more statements); FP_EIO with SQLite's message. */
/* writer.c: the store's locks and condition variables (the two with timed
 * waits run on CLOCK_MONOTONIC), made once at open. */
void fp_sq_writer_sync_init(fp_sqlite *s);
void fp_sq_jobs_sync_init(fp_sqlite *s); /* job_outcome.c: the outcome queue */
int fp_sq_exec(sqlite3 *db, const char *sql, fp_err *err);
/* Opens a connection with the store's settings (busy timeout, extended
 * codes) through vfs. */
int fp_sq_open_conn(const char *path, int flags, const char *vfs, sqlite3 **db, fp_err *err);
/* a restore's replay connection, with every changeset given so far applied
 * (backup.c); NULL when applying them failed */
struct fp_store_replay;
sqlite3 *fp_sq_replay_db(struct fp_store_replay *r, fp_err *err);
/* Prepares sql on db; on failure fills err and returns NULL. */
sqlite3_stmt *fp_sq_prep(sqlite3 *db, const char *sql, fp_err *err);
/* Runs a prepared statement (NULL: a failed prepare) to its first result
 * and finalizes it: 0 or FP_EIO. */
int fp_sq_run(sqlite3 *db, sqlite3_stmt *st, fp_err *err);
/* Steps a statement to SQLITE_DONE and resets it: 0 or FP_EIO. */
int fp_sq_step_done(sqlite3_stmt *st);
/* Steps once: 0 on a row, FP_ENOTFOUND when done, FP_EIO. */
int fp_sq_step_row(sqlite3_stmt *st);
/* Copies a text column into dst (NULL: ""). */
void fp_sq_col(sqlite3_stmt *st, int col, char *dst, size_t cap);
/* A malloc'ed copy of a text column (*len: its length). */
char *fp_sq_dup_text(sqlite3_stmt *st, int col, size_t *len);
void fp_sq_bind_text_or_null(sqlite3_stmt *st, int i, const char *v);
/* The one integer (or NULL) that sql with ?1 = arg yields. */
int fp_sq_int_or_null(sqlite3 *db, const char *sql, int64_t arg, int64_t *v, int *null);

/* ---- open.c ---- */
/* Locks the writer connection (shared with the group-commit writer thread,
 * so keep the hold short) and returns it. */
sqlite3 *fp_sq_wlock(fp_sqlite *s);
/* jobs.c, with wlock held inside the writer's open transaction: applies
 * every queued job outcome (each in its own savepoint) and returns them;
 * after the COMMIT (or the rollback) fp_sq_jobs_settle tells their job
 * threads.  NULL: none queued. */
/* ---- job_outcome.c: jobs.c's kept statements and a job's outcome ---- */

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

/* Kept statement q (JQ_*) on the writer connection, prepared on first use
 * (NULL: it failed, err says why); fp_sq_jq_run steps it to its first
 * result and resets it.  Under wlock. */
sqlite3_stmt *fp_sq_jq(fp_sqlite *s, int q, fp_err *err);
int fp_sq_jq_run(sqlite3 *db, sqlite3_stmt *st, fp_err *err);
/* Updates j's row if j->lease_owner still holds it: 0, FP_ECONFLICT or
 * FP_EIO.  In the caller's transaction. */
int fp_sq_set_job(fp_sqlite *s, const fp_job *j, const char *state, int64_t next_at,
                  int count_attempt, const char *error, int64_t now, fp_err *err);

/* A job's outcome waiting for a commit (jobs.c).  It lives on its job
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

struct sq_jdone *fp_sq_jobs_apply_queued(fp_sqlite *s);
void fp_sq_jobs_settle(fp_sqlite *s, struct sq_jdone *l, int committed);
int fp_sq_jobs_wait_settled(fp_sqlite *s, sq_jdone *d, int64_t until_ns);
void fp_sq_wunlock(fp_sqlite *s);
/* A read-only connection from the pool; give it back with rrelease. */
sqlite3 *fp_sq_racquire(fp_sqlite *s, void **slot);
void fp_sq_rrelease(fp_sqlite *s, void *slot);
reader *fp_sq_acquire(fp_sqlite *s);
void fp_sq_release(fp_sqlite *s, reader *r, sqlite3_stmt *st);
/* Writes after a fail-stop: FP_EIO with the reason. */
int fp_sq_refuse_stopped(fp_sqlite *s, fp_err *err);
int fp_sq_migrate(sqlite3 *db, fp_err *err);

/* ---- backup.c: the change log (store_backup.h) ---- */
/* With wlock held, after a commit: queues the session's changes. */
void fp_sq_log_commit(fp_sqlite *s);
void fp_sq_log_free(fp_sqlite *s);
/* the queue: committed transactions in order (log.c) */
typedef struct log_txn {
    struct log_txn *next;
    int64_t ms;
    int n;
    void *cs;
} log_txn;
void fp_sq_log_queue_free(void *head);

/* ---- writer.c ---- */
/* The injected faults around a COMMIT (fp_store_set_faults): before, 0 or
 * -1 when the write must fail; after, a delay. */
int fp_sq_fault_before_commit(fp_sqlite *s);
void fp_sq_fault_after_commit(fp_sqlite *s);
int fp_sq_writer_start(fp_sqlite *s, fp_err *err);
void fp_sq_writer_stop(fp_sqlite *s);

/* ---- issue_clock.c: the writer's issue clock ---- */
int fp_sq_clock_open(fp_sqlite *s, fp_err *err);
int fp_sq_clock_take(fp_sqlite *s, fp_issue_req *r);
int fp_sq_clock_flush(fp_sqlite *s);

/* ---- ranges.c ---- */
/* The two-digit year (CST) a range must start with to be used for an
 * invoice issued at issue_t (0: now). */
void fp_sq_current_yy(char yy[3], int64_t issue_t);

/* ---- red_forms.c ---- */
/* Stores form f (settled) in `state`, with its lines, inside the
 * transaction open on the locked writer connection; no cap check (the
 * caller's: sq_store_red_form_adopt).  *id and form_no get the new form's. */
int fp_sq_red_form_insert(fp_sqlite *s, int64_t seller_id, const fp_red_form *f, const char *state,
                          int64_t expires_at, int64_t *id, char form_no[24], fp_err *err);

/* ---- audit_log.c ---- */
int fp_sq_audit_open(fp_sqlite *s, fp_err *err);
void fp_sq_audit_close(fp_sqlite *s);
/* Appends rec to the chain inside the transaction open on the locked
 * writer connection. */
int fp_sq_audit_append(fp_sqlite *s, const fp_audit_rec *rec, fp_err *err);
/* The audit record of a change (docs/audit.md): *audit with its target
 * and outcome defaulting to these when NULL.  Nothing when audit is NULL. */
int fp_sq_audit_change(fp_sqlite *s, const fp_audit_rec *audit, const char *target,
                       const char *outcome, fp_err *err);
/* The end of a change on the writer connection (wlock held, inside its
 * BEGIN): when rc is 0, the change's audit record (fp_sq_audit_change) and
 * COMMIT; when rc or either of those fails, ROLLBACK.  Returns rc or the
 * first failure: no change without its record (docs/audit.md). */
int fp_sq_end_audited(fp_sqlite *s, const fp_audit_rec *audit, const char *target,
                      const char *outcome, int rc, fp_err *err);

/* ---- webhook_secrets.c ----
 * A webhook secret sealed for the row of client_id (webhook.key beside the
 * database, made on first use), and opened into secret (a plaintext value
 * from before sealing is left as it is). */
int fp_sq_webhook_seal(sqlite3 *db, const char *client_id, const char *secret, char *out,
                       size_t cap, fp_err *err);
int fp_sq_webhook_unseal(sqlite3 *db, const char *client_id, const char *stored, char *secret,
                         size_t cap, fp_err *err);

/* The fair_tag (migration 9) of a job that seller S queues now at cost C
 * (SQL parameters, e.g. "?2"): the larger of its seller's last waiting tag
 * and the smallest waiting tag of anyone (a seller that was idle starts at
 * the current "virtual time", with no credit for having been idle), plus
 * its cost.  Two lookups in the partial indexes jobs_fair and
 * jobs_fair_seller.  The rule and why: docs/webhooks.md, "Order of
 * service". */
#define FP_JOBS_FAIR_TAG(S, C)                                                                     \
    "(max(coalesce((SELECT min(fair_tag) FROM jobs WHERE fair_tag IS NOT NULL), 0), "              \
    "coalesce((SELECT max(fair_tag) FROM jobs WHERE seller_id = " S " AND fair_tag IS NOT NULL), " \
    "0)) + " C ")"

/* ---- credit_tx.c: the credit line in the issuing transaction (credit.h) ----
 * Before the invoice's INSERT: its effect (*delta, fen) on the credit of
 * its month; 0 to go on, 1 when it would exceed the month's limit
 * (r->credit_left set: the caller answers CREDIT_EXCEEDED unless the key
 * replays), FP_EIO.  After the INSERT: the effect applied. */
int fp_sq_credit_check(fp_sqlite *s, fp_issue_req *r, int64_t *delta, char month[7]);
int fp_sq_credit_apply(fp_sqlite *s, const fp_issue_req *r, int64_t delta, const char *month);

/* ---- the operations (../internal.h), one sq_<name> per row ---- */
int sq_open(const fp_store_opts *o, void **be, fp_err *err);
void sq_close(void *be);
#define FP_SQ_DECLARE(ret, op, params, args) ret sq_##op(void *be, FP_UNPAREN params);
FP_STORE_OPS(FP_SQ_DECLARE)
#undef FP_SQ_DECLARE

#endif
