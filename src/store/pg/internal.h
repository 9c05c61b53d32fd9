/* internal.h — what the PostgreSQL backend's files share (src/store/pg/;
 * not a public header): the store's state, the query helpers (conn.c), the
 * writer connection under its lock, the read pool, and the audit chain's
 * append.
 *
 * Who owns what (docs/ha.md §3 says what it guarantees across nodes):
 *   wlock   the writer connection w and the transaction state on it (tx:
 *           the audit head and issue clock rows locked in it).  Held by the
 *           writer thread for a whole group commit and by every
 *           synchronous write (ranges, sellers, clients, audit records).
 *   q       the queue of issue requests, the batch being written, the
 *           writer and deadline threads, the outcome hook: ../writeq.c,
 *           which both backends share, says who owns what there.
 *   rlock   the read pool's free list.
 *   atomics the counters, the injected faults, the hooks' histograms.
 * Nothing read from the database is cached across transactions: the range
 * rows, the audit head and the issue clock's mark are read under FOR UPDATE
 * inside each transaction that uses them, so several nodes can share one
 * database and a node that lost its connection has nothing stale to drop. */
#ifndef FAPIAO_STORE_PG_INTERNAL_H
#define FAPIAO_STORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fapiao/audit.h"
#include "fapiao/store.h"
#include "../internal.h"

#define PG_MAX_READERS 16
#define PG_MAX_PARAMS  24

typedef struct fp_pg {
    fp_store_opts o;
    char *url;
    uint32_t node_tag; /* random: makes job lease owners unique across nodes (jobs.c) */
    PGconn *w;
    int w_prepared;             /* the server process w's statements were prepared on (0: none) */
    uint64_t w_prepared_resets; /* pg_reconnects() then: a new server may reuse the pid */
    pthread_mutex_t wlock;
    /* the transaction open on w (under wlock) */
    struct {
        int head_locked, head_dirty;
        int64_t last_id;
        unsigned char last_hash[FP_AUDIT_HASH_LEN];
        int64_t cp_id, cp_upto, cp_ts; /* the last checkpoint, read with the head */
    } tx;
    /* the audit key (audit_key_path): checkpoints are signed only with it */
    int audit_signs;
    unsigned char audit_sk[FP_AUDIT_KEY_LEN], audit_pk[FP_AUDIT_KEY_LEN];
    int64_t audit_cp_mono_ms; /* this node's last checkpoint (fp_mono_ms) */

    fp_writeq q; /* the queue, the writer and deadline threads (../writeq.c) */

    /* the issue clock: the mark is the database's; the base is this node's */
    fp_issue_clock clock;
    int64_t clock_confirmed;

    PGconn *readers[PG_MAX_READERS];
    int nreaders;
    int rfree[PG_MAX_READERS], nfree;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;

    _Atomic uint64_t commit_us_total;
    _Atomic int64_t last_commit_us, last_probe_us;
    _Atomic int notify_early; /* fp_store_set_notify_early (jobs.h; writer.c) */
    _Atomic int upload_on;    /* fp_store_set_upload (upload.h; writer.c) */
    _Atomic int credit_on;    /* fp_store_set_credit (credit.h; credit.c) */
    void (*job_hook)(void *arg);
    void *job_hook_arg;
    _Atomic int fault_write_fail, fault_write_delay_ms, fault_fsync_delay_ms;
    struct fp_metric *_Atomic h_batch, *_Atomic h_commit;
} fp_pg;

/* ---- conn.c: parameters, queries, the read pool (open.c: open, close, the schema) ---- */
/* Query parameters with their types fixed (int8, text, bytea), so that
 * PostgreSQL never has to guess one. */
typedef struct pg_params {
    int n;
    Oid type[PG_MAX_PARAMS];
    const char *v[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS], fmt[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
} pg_params;
void pg_i64(pg_params *p, int64_t v);
void pg_i64_null(pg_params *p);            /* an SQL NULL of type int8 */
void pg_text(pg_params *p, const char *v); /* NULL: SQL NULL */
void pg_bin(pg_params *p, const void *v, int len);
/* Runs sql; the result when it returned rows or a command status, else
 * NULL with *rc FP_ECONFLICT (a unique violation) or FP_EIO and err
 * filled. */
PGresult *pg_q(PGconn *c, const char *sql, const pg_params *p, int *rc, fp_err *err);
/* Runs sql that returns nothing to keep: 0, or *rc as above. */
int pg_exec(PGconn *c, const char *sql, const pg_params *p, fp_err *err);
int64_t pg_int(const PGresult *r, int row, int col);
/* Copies a text column (NULL: ""). */
void pg_col(const PGresult *r, int row, int col, char *dst, size_t cap);
/* A bytea column (text form \x...) of exactly n bytes into out: 0, else -1. */
int pg_bytea(const PGresult *r, int row, int col, unsigned char *out, size_t n);
/* The connection is usable again: reset after a lost connection or when
 * it is on a standby (the primary moved); each reset is counted. */
void pg_heal(PGconn *c);
/* Resets so far in this process: caches of what was read key on it. */
uint64_t pg_reconnects(void);
PGconn *pg_racquire(fp_pg *s);
void pg_rrelease(fp_pg *s, PGconn *c);
/* The two-digit year (CST) of issue time t (0: now) a range must start with. */
void pg_current_yy(char yy[3], int64_t t);

/* ---- writer.c: the batch (its queue and threads: ../writeq.c) ---- */
int pg_writer_start(fp_pg *s, fp_err *err);

/* ---- audit_chain.c: transactions on the writer connection, the chain ---- */
/* Signs the chain's head now when records followed the last checkpoint
 * (force: whatever its age; close uses it): 1 signed, 0 nothing due. */
int pg_audit_sign(fp_pg *s, int force, fp_err *err);
/* BEGIN on the locked writer connection; commit or roll back with these
 * (they write the audit head back and reset the transaction state). */
int pg_tx_begin(fp_pg *s, fp_err *err);
int pg_tx_commit(fp_pg *s, fp_err *err);
void pg_tx_rollback(fp_pg *s);
/* The chain's head locked for the rest of the transaction, and the last
 * checkpoint read under it (s->tx). */
int pg_head_lock(fp_pg *s, fp_err *err);
/* Appends rec to the chain inside the open transaction (the head row
 * locked FOR UPDATE at the first append of the transaction). */
int pg_audit_append(fp_pg *s, const fp_audit_rec *rec, fp_err *err);
/* The record of a change (audit NULL: nothing), target and outcome
 * defaulting to these. */
int pg_audit_change(fp_pg *s, const fp_audit_rec *audit, const char *target, const char *outcome,
                    fp_err *err);
/* The end of a change on the writer connection (wlock held, inside its
 * transaction): when rc is 0, the change's audit record (pg_audit_change)
 * and COMMIT; when rc or the record fails, ROLLBACK.  Returns rc or the
 * first failure: no change without its record (as fp_sq_end_audited). */
int pg_end_audited(fp_pg *s, const fp_audit_rec *audit, const char *target, const char *outcome,
                   int rc, fp_err *err);

/* ---- open.c ---- */
extern const int pg_schema_version; /* the schema version this build knows */

/* ---- the operations (../internal.h), one pg_<name> per row ---- */
/* credit.c: the credit line in the issuing transaction (credit.h), as
 * SQLite's fp_sq_credit_check / _apply */
int pg_credit_check(fp_pg *s, fp_issue_req *r, int64_t *delta, char month[7]);
int pg_credit_apply(fp_pg *s, const fp_issue_req *r, int64_t delta, const char *month);

int pg_open(const fp_store_opts *o, void **be, fp_err *err);
void pg_close(void *be);
#define FP_PG_DECLARE(ret, op, params, args) ret pg_##op(void *be, FP_UNPAREN params);
FP_STORE_OPS(FP_PG_DECLARE)
#undef FP_PG_DECLARE

#endif
