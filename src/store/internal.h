/* internal.h — the store's seam (src/store/; not a public header).
 *
 * include/fapiao/store.h and jobs.h are the one interface the server, the
 * outbox, the CLI and health use.  Behind them a backend is a table of
 * operations, chosen when the store is opened (store.c): a file path opens
 * SQLite (sqlite/), a postgresql:// URL PostgreSQL (pg/, docs/ha.md).  Every public fp_store_* /
 * fp_jobs_* function taking a store calls through the table with the backend's own state (be), and
 * means what its comment in store.h / jobs.h says: that is the contract a
 * backend must keep (tests/unit/store_contract.h checks it).
 *
 * The operations are listed once, in FP_STORE_OPS: X(return type, name,
 * (parameters after the store), (their names)).  fp_store_ops gets one
 * member per row, `name`, of type ret (*)(void *be, parameters); the
 * public function is fp_<name>. */
#ifndef FAPIAO_STORE_INTERNAL_H
#define FAPIAO_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "fapiao/jobs.h"
#include "fapiao/upload.h"
#include "fapiao/credit.h"
#include "fapiao/store.h"

#define FP_STORE_OPS(X)                                                                            \
    X(int, store_clock_get, (int64_t * mark, int64_t * confirmed_at, fp_err * err),                \
      (mark, confirmed_at, err))                                                                   \
    X(int, store_clock_confirm, (const char *actor, fp_err *err), (actor, err))                    \
    X(void, store_submit, (fp_issue_req * r), (r))                                                 \
    X(int, store_cancel_queued, (const char *why), (why))                                          \
    X(int, store_find_serial,                                                                      \
      (int64_t seller_id, const char *serial, unsigned char hash[32],                              \
       char number[FP_NUMBER_LEN + 1], char **doc, size_t *len),                                   \
      (seller_id, serial, hash, number, doc, len))                                                 \
    X(int, store_get_invoice, (int64_t seller_id, const char *number, char **doc, size_t *len),    \
      (seller_id, number, doc, len))                                                               \
    X(int, store_list_invoices_part,                                                               \
      (int64_t seller_id, const fp_list_query *q, size_t soft_bytes, fp_buf *out, int *rows,       \
       char last[FP_NUMBER_LEN + 1], int *more),                                                   \
      (seller_id, q, soft_bytes, out, rows, last, more))                                           \
    X(int, store_get_client, (const char *client_id, fp_client_rec *c), (client_id, c))            \
    X(int, store_get_seller, (int64_t seller_id, fp_seller * out), (seller_id, out))               \
    X(int, store_sellers_generation, (int64_t * gen), (gen))                                       \
    X(int, store_sellers, (void (*fn)(const fp_seller *x, void *arg), void *arg), (fn, arg))       \
    X(int, store_seller_create,                                                                    \
      (const fp_seller *seller, int64_t *id, const fp_audit_rec *audit, fp_err *err),              \
      (seller, id, audit, err))                                                                    \
    X(int, store_seller_update, (const fp_seller *seller, const fp_audit_rec *audit, fp_err *err), \
      (seller, audit, err))                                                                        \
    X(int, store_numbers_remaining, (int64_t seller_id, int64_t * remaining),                      \
      (seller_id, remaining))                                                                      \
    X(int, store_ping, (fp_err * err), (err))                                                      \
    X(int, store_clients,                                                                          \
      (int with_secrets, void (*fn)(const fp_client_info *c, void *arg), void *arg),               \
      (with_secrets, fn, arg))                                                                     \
    X(int, store_client_check_secret,                                                              \
      (const char *client_id, const char *secret, int64_t now, fp_client_info *out),               \
      (client_id, secret, now, out))                                                               \
    X(int, store_live_secrets,                                                                     \
      (int64_t now,                                                                                \
       void (*fn)(const char *client_id, int64_t secret_id, int64_t expires_at, void *arg),        \
       void *arg),                                                                                 \
      (now, fn, arg))                                                                              \
    X(int, store_client_create,                                                                    \
      (const fp_client_info *c, const char *secret, const fp_audit_rec *audit, fp_err *err),       \
      (c, secret, audit, err))                                                                     \
    X(int, store_client_rotate,                                                                    \
      (const char *client_id, const char *secret, int64_t now, int64_t overlap_s,                  \
       const fp_audit_rec *audit, fp_err *err),                                                    \
      (client_id, secret, now, overlap_s, audit, err))                                             \
    X(int, store_client_revoke,                                                                    \
      (const char *client_id, int64_t now, const fp_audit_rec *audit, fp_err *err),                \
      (client_id, now, audit, err))                                                                \
    X(int, store_client_update,                                                                    \
      (const char *client_id, const unsigned *roles, const char *allowed_ips,                      \
       const char *cert_sha256, const fp_audit_rec *audit, fp_err *err),                           \
      (client_id, roles, allowed_ips, cert_sha256, audit, err))                                    \
    X(int, store_add_seller, (const fp_seller *seller, int64_t *id, fp_err *err),                  \
      (seller, id, err))                                                                           \
    X(int, store_add_client, (const fp_client_rec *c, fp_err *err), (c, err))                      \
    X(int, store_ranges, (void (*fn)(const fp_range_rec *r, void *arg), void *arg), (fn, arg))     \
    X(int, store_add_range,                                                                        \
      (int64_t seller_id, const char prefix[6], int64_t first, int64_t last,                       \
       const fp_audit_rec *audit, fp_err *err),                                                    \
      (seller_id, prefix, first, last, audit, err))                                                \
    X(int, store_advance_range,                                                                    \
      (int64_t range_id, int64_t next, const fp_audit_rec *audit, fp_range_rec *before,            \
       fp_err *err),                                                                               \
      (range_id, next, audit, before, err))                                                        \
    X(int, store_red_form_get, (int64_t seller_id, const char *form_no, fp_red_form_rec *out),     \
      (seller_id, form_no, out))                                                                   \
    X(int, store_red_form_act,                                                                     \
      (int64_t seller_id, const char *form_no, const char *action, fp_red_form_rec *out,           \
       const fp_audit_rec *audit, fp_err *err),                                                    \
      (seller_id, form_no, action, out, audit, err))                                               \
    X(int, store_red_forms_upstream, (void (*fn)(const fp_red_form_due *d, void *arg), void *arg), \
      (fn, arg))                                                                                   \
    X(int, store_red_form_upstream,                                                                \
      (int64_t seller_id, const char *form_no, const fp_red_form_up *u, const char *from,          \
       const char *to, const fp_audit_rec *audit, fp_err *err),                                    \
      (seller_id, form_no, u, from, to, audit, err))                                               \
    X(int, store_red_form_answer,                                                                  \
      (int64_t seller_id, const char *form_no, const char *action, fp_red_form_rec *out,           \
       const fp_audit_rec *audit, fp_err *err),                                                    \
      (seller_id, form_no, action, out, audit, err))                                               \
    X(int, store_red_form_adopt,                                                                   \
      (int64_t seller_id, fp_red_form * f, const char *state, int64_t expires_at,                  \
       const fp_red_form_up *up, fp_red_form_rec *out, fp_errors *es, const fp_audit_rec *audit,   \
       fp_err *err),                                                                               \
      (seller_id, f, state, expires_at, up, out, es, audit, err))                                  \
    X(int, store_failstop, (char *why, size_t cap), (why, cap))                                    \
    X(int, store_check_now, (int full, fp_store_check_report *rep), (full, rep))                   \
    X(int, store_check_files, (fp_err * err), (err))                                               \
    X(int, store_probe_write, (fp_err * err), (err))                                               \
    X(void, store_set_outcome_hook, (void (*fn)(int ok, void *arg), void *arg), (fn, arg))         \
    X(void, store_set_faults, (const fp_store_faults *f), (f))                                     \
    X(void, store_get_faults, (fp_store_faults * f), (f))                                          \
    X(void, store_set_histograms, (struct fp_metric * batch, struct fp_metric * commit_us),        \
      (batch, commit_us))                                                                          \
    X(void, store_get_stats, (fp_store_stats * st), (st))                                          \
    X(int, store_audit_batch, (const fp_audit_rec *recs, int n, fp_err *err), (recs, n, err))      \
    X(int, store_audit_checkpoint, (fp_err * err), (err))                                          \
    X(int, store_audit_rows,                                                                       \
      (int64_t seller_id, int64_t before, int limit,                                               \
       void (*fn)(const fp_audit_view *v, void *arg), void *arg),                                  \
      (seller_id, before, limit, fn, arg))                                                         \
    X(int, store_audit_head, (fp_audit_head * h, fp_err * err), (h, err))                          \
    X(int, store_audit_snapshot,                                                                   \
      (int (*fn)(fp_audit_snap * a, void *arg), void *arg, fp_err *err), (fn, arg, err))           \
    X(int, store_audit_prune,                                                                      \
      (int64_t before_ts, const char *actor, int64_t *upto, int64_t *anchor_cp, fp_err *err),      \
      (before_ts, actor, upto, anchor_cp, err))                                                    \
    X(void, store_set_job_hook, (void (*fn)(void *arg), void *arg), (fn, arg))                     \
    X(int, jobs_recover, (int64_t * n, fp_err * err), (n, err))                                    \
    X(int, jobs_claim,                                                                             \
      (int64_t now, int64_t owner, int64_t lease_ms, fp_job * out, int64_t * next_due,             \
       fp_err * err),                                                                              \
      (now, owner, lease_ms, out, next_due, err))                                                  \
    X(int, jobs_complete, (const fp_job *j, int64_t now, fp_err *err), (j, now, err))              \
    X(int, jobs_fail,                                                                              \
      (const fp_job *j, int64_t now, int64_t next_at, int dead, const char *error, fp_err *err),   \
      (j, now, next_at, dead, error, err))                                                         \
    X(int, jobs_defer, (const fp_job *j, int64_t next_at, const char *why, fp_err *err),           \
      (j, next_at, why, err))                                                                      \
    X(int, jobs_redrive,                                                                           \
      (int64_t seller_id, int64_t id, const char *actor, const char *request_id,                   \
       const char *client_request_id, const char *client_ip, fp_err *err),                         \
      (seller_id, id, actor, request_id, client_request_id, client_ip, err))                       \
    X(int, jobs_get, (int64_t seller_id, int64_t id, fp_job * out), (seller_id, id, out))          \
    X(int, jobs_list,                                                                              \
      (int64_t seller_id, int state, int64_t before, int limit,                                    \
       void (*fn)(const fp_job *j, void *arg), void *arg, fp_err *err),                            \
      (seller_id, state, before, limit, fn, arg, err))                                             \
    X(int, jobs_count, (fp_jobs_counts * c, fp_err * err), (c, err))                               \
    X(int, jobs_claim_render,                                                                      \
      (int64_t seller_id, const char *number, int64_t now, int64_t owner, int64_t lease_ms,        \
       fp_job *out, fp_err *err),                                                                  \
      (seller_id, number, now, owner, lease_ms, out, err))                                         \
    X(void, store_set_notify_early, (int on), (on))                                                \
    X(void, store_set_upload, (int on), (on))                                                      \
    X(int, store_upload_due,                                                                       \
      (int64_t now, int with_sllsh, int limit, fp_upload_row *out, int *n, fp_err *err),           \
      (now, with_sllsh, limit, out, n, err))                                                       \
    X(int, store_upload_set,                                                                       \
      (const char *number, int state, const char *sllsh, const char *reason, int64_t next_at,      \
       int count, fp_err *err),                                                                    \
      (number, state, sllsh, reason, next_at, count, err))                                         \
    X(int, store_upload_get, (int64_t seller_id, const char *number, fp_upload_row *out),          \
      (seller_id, number, out))                                                                    \
    X(int, store_upload_counts, (fp_upload_counts * c, fp_err * err), (c, err))                    \
    X(void, store_set_credit, (int on), (on))                                                      \
    X(int, store_credit_set,                                                                       \
      (int64_t seller_id, const char *month, int64_t limit_fen, int64_t first_used, fp_err *err),  \
      (seller_id, month, limit_fen, first_used, err))                                              \
    X(int, store_credit_list,                                                                      \
      (void (*fn)(const fp_credit_row *c, void *arg), void *arg, fp_err *err), (fn, arg, err))     \
    X(int, store_upload_redrive,                                                                   \
      (const char *number, int64_t now, const fp_audit_rec *audit, int64_t *n, fp_err *err),       \
      (number, now, audit, n, err))                                                                \
    X(int, jobs_prune, (int64_t before, int limit, int64_t *n, fp_err *err),                       \
      (before, limit, n, err))                                                                     \
    X(int, store_invoice_state, (int64_t seller_id, const char *number, fp_invoice_state *out),    \
      (seller_id, number, out))                                                                    \
    X(int, store_invoice_ack,                                                                      \
      (int64_t seller_id, const char *number, const char *actor, const char *request_id,           \
       const char *client_request_id, const char *client_ip, fp_err *err),                         \
      (seller_id, number, actor, request_id, client_request_id, client_ip, err))                   \
    X(int, store_webhook_get,                                                                      \
      (const char *client_id, char *url, size_t url_cap, char *secret, size_t secret_cap),         \
      (client_id, url, url_cap, secret, secret_cap))                                               \
    X(int, store_webhook_seal_all, (int *sealed, fp_err *err), (sealed, err))                      \
    X(int, store_webhook_set,                                                                      \
      (const char *client_id, const char *url, const char *secret, const fp_audit_rec *audit,      \
       fp_err *err),                                                                               \
      (client_id, url, secret, audit, err))                                                        \
    X(int, store_silence_create,                                                                   \
      (const fp_silence *x, int64_t *id, const fp_audit_rec *audit, fp_err *err),                  \
      (x, id, audit, err))                                                                         \
    X(int, store_silence_expire,                                                                   \
      (int64_t id, int64_t now, const fp_audit_rec *audit, fp_err *err), (id, now, audit, err))    \
    X(int, store_silences, (int64_t now, void (*fn)(const fp_silence *x, void *arg), void *arg),   \
      (now, fn, arg))                                                                              \
    X(int, store_user_create, (const fp_user *u, const fp_audit_rec *audit, fp_err *err),          \
      (u, audit, err))                                                                             \
    X(int, store_user_update, (const fp_user *u, const fp_audit_rec *audit, fp_err *err),          \
      (u, audit, err))                                                                             \
    X(int, store_user_get, (const char *name, fp_user *out), (name, out))                          \
    X(int, store_users, (void (*fn)(const fp_user *u, void *arg), void *arg), (fn, arg))           \
    X(int, store_user_take_step, (const char *name, int64_t step, fp_err *err), (name, step, err))

#define FP_UNPAREN(...) __VA_ARGS__

typedef struct fp_store_ops {
    const char *name; /* "sqlite" */
    /* opens the backend's state into *be (store.h fp_store_open) */
    int (*open)(const fp_store_opts *o, void **be, fp_err *err);
    void (*close)(void *be); /* drains, stops, closes (store.h fp_store_close) */
#define FP_STORE_OP_MEMBER(ret, op, params, args) ret (*op)(void *be, FP_UNPAREN params);
    FP_STORE_OPS(FP_STORE_OP_MEMBER)
#undef FP_STORE_OP_MEMBER
} fp_store_ops;

struct fp_store {
    const fp_store_ops *ops;
    void *be;
};

/* credit_rule.c: the effect (*delta, fen) of r on the credit of its month
 * (month set) while on; 1 when it takes credit (to be checked against the
 * month's row), else 0. */
int fp_store_credit_delta(int on, const fp_issue_req *r, int64_t *delta, char month[7]);

/* The backends this build has. */
extern const fp_store_ops fp_store_sqlite_ops;
extern const fp_store_ops fp_store_pg_ops; /* pg/: a postgresql:// URL */

/* Opens a store on the given backend (fp_store_open chooses it by path;
 * tests choose it themselves, e.g. to run the contract suite against a
 * deliberately wrong wrapper of a backend). */
int fp_store_open_ops(const fp_store_ops *ops, const fp_store_opts *o, fp_store **out, fp_err *err);

/* ---- writeq.c: the issue requests' queue both backends' writers share ---- */

typedef struct fp_writeq {
    pthread_mutex_t lock; /* head, tail, stopping, draining, reaper_stop, batch */
    pthread_cond_t cond;
    fp_issue_req *head, *tail;
    int stopping;
    char draining[128]; /* fp_store_cancel_queued, read-only: refuse new requests */
    /* the batch being written (under lock): its requests past their
     * deadline are answered FP_ISSUE_UNKNOWN (they may yet be committed) */
    fp_issue_req *batch;
    int max_batch, deadline_ms;
    pthread_t writer, reaper;
    int writer_started, reaper_started, reaper_stop;
    pthread_cond_t rpcond;
    pthread_mutex_t *wlock; /* the backend's writer lock: run() gets it held */
    void (*run)(void *be, fp_issue_req *head, int n);
    void *be;
    pthread_mutex_t hooklock;
    void (*outcome_hook)(int ok, void *arg); /* after every commit and probe */
    void *outcome_hook_arg;
    _Atomic uint64_t commits, requests, max_seen, timed_out, unknown;
} fp_writeq;

void fp_writeq_init(fp_writeq *q, int max_batch, int write_deadline_ms);
void fp_writeq_fini(fp_writeq *q);
/* Starts the writer thread (taking wlock, then up to max_batch requests,
 * and calling run, which must release wlock and end with
 * fp_writeq_answer) and the deadline thread. */
int fp_writeq_start(fp_writeq *q, pthread_mutex_t *wlock,
                    void (*run)(void *be, fp_issue_req *head, int n), void *be, fp_err *err);
void fp_writeq_stop(fp_writeq *q); /* drains the queue, then stops both threads */
void fp_writeq_submit(fp_writeq *q, fp_issue_req *r); /* store.h fp_store_submit */
int fp_writeq_cancel(fp_writeq *q, const char *why);  /* store.h fp_store_cancel_queued */
/* Counts the batch of n, then answers each request (or releases the ones
 * the deadline thread answered). */
void fp_writeq_answer(fp_writeq *q, fp_issue_req *head, int n);
void fp_writeq_outcome(fp_writeq *q, int ok); /* tells the outcome hook */
void fp_writeq_set_outcome_hook(fp_writeq *q, void (*fn)(int ok, void *arg), void *arg);
void fp_writeq_stats(fp_writeq *q, fp_store_stats *st); /* commits, requests, max_batch, ... */
/* r failed (nothing of it stored): FP_ISSUE_FAILED with why, the document
 * given back when it had become the response. */
void fp_issue_req_fail(fp_issue_req *r, const char *why);

/* ---- clock.c: the issue clock both backends apply in the batch ---- */
/* The wall clock and CLOCK_BOOTTIME in seconds (o->clock_now in tests). */
void fp_issue_clock_read(const fp_store_opts *o, int64_t *wall, int64_t *boot);
/* t as ISO 8601 in CST ("2026-01-02T03:04:05+08:00"). */
void fp_issue_clock_text(int64_t t, char out[32]);
/* The issue clock applied to r in the batch's transaction: FP_CLOCK_OK with
 * r->issued_at (and its document) set and the mark moved, else r refused
 * (result, clock_mark, clock_retry_s).  confirmed() reads the operator's
 * last confirmation, asked only on a jump; *confirmed_seen the last one
 * this writer took. */
fp_clock_verdict fp_issue_clock_take(fp_issue_clock *c, int64_t *confirmed_seen,
                                     int (*confirmed)(void *arg, int64_t *at), void *arg,
                                     fp_issue_req *r, int64_t boot);

/* ---- common.c: rules both backends apply around their own SQL ---- */
/* The client-secret check (store.h fp_store_client_check_secret): the same
 * work whatever the client id, so the time of an answer does not tell
 * whether the id exists (issue 13).  Each live secret row goes through
 * _row, real candidates first; _end pads with dummy hashes up to
 * FP_SECRETS_LIVE_MAX and turns rc (the client's lookup) into the answer. */
typedef struct fp_secret_check {
    const char *secret;
    int matched, candidates;
    int64_t matched_id;
} fp_secret_check;
void fp_secret_check_row(fp_secret_check *c, const unsigned char salt[16],
                         const unsigned char want[32], int64_t id);
int fp_secret_check_end(fp_secret_check *c, int rc, fp_client_info *out);
/* The per-line usage array of the blue invoice's other forms (red.h),
 * sized for f's lines: free() it; NULL when out of memory. */
fp_red_used *fp_red_used_new(const fp_red_form *f, int *maxline);
/* f settled against used, then its caps checked: 0, or FP_ERANGE with es. */
int fp_red_form_fits(fp_red_form *f, const fp_red_used *used, int maxline, fp_errors *es);
/* Whether our reviewer's action on form rec goes upstream as an answer
 * (fp_store_red_form_answer's rules): 0 with *qrlx set, 1 when the form is
 * not filed, FP_ECONFLICT, or FP_EINVAL for an unknown action. */
int fp_red_answer_check(const fp_red_form_rec *rec, const char *action, char *qrlx);

/* ---- migrate.c: moving a SQLite store to a server database ---- */
/* One column's value as the source holds it. */
typedef enum { FP_MIG_NULL, FP_MIG_INT, FP_MIG_TEXT, FP_MIG_BLOB } fp_mig_kind;
typedef struct fp_mig_val {
    fp_mig_kind kind;
    int64_t i;
    const void *p; /* TEXT, BLOB */
    size_t n;
} fp_mig_val;
/* The tables copied, in an order their references allow, and what each
 * reads beyond its columns (invoices: SQLite's rowid as seq). */
typedef struct fp_mig_table {
    const char *name, *extra, *order;
} fp_mig_table;
extern const fp_mig_table fp_mig_tables[];
extern const int fp_mig_ntables;
/* 1: table is copied; 2: left out on purpose (migrate.c says why); 0: a
 * table migrate-store does not know, which makes it refuse the source. */
int fp_mig_known(const char *table);
/* Where the rows go: table() once per table with its column names, row()
 * per row, each 0 or an error that stops the copy. */
typedef struct fp_mig_sink {
    int (*table)(void *arg, int t, const char *const *cols, int ncols, fp_err *err);
    int (*row)(void *arg, const fp_mig_val *v, int n, fp_err *err);
    int (*end)(void *arg, int t, fp_err *err);
    void *arg;
} fp_mig_sink;
/* sqlite/export.c: every table of the SQLite file at path, in one read
 * transaction, into sink; *mark and *confirmed the issue clock's. */
int fp_sq_export(const char *path, const fp_mig_sink *sink, int64_t *mark, int64_t *confirmed,
                 fp_err *err);
/* pg/import.c: an empty database at url (its schema this build's), the
 * rows copied into it in one transaction (begin, the sink, finish with the
 * issue clock: the audit head, the sequences and the sellers' generation
 * set from what was copied, COMMIT); abort rolls back. */
typedef struct fp_pg_import fp_pg_import;
int fp_pg_import_begin(const char *url, fp_pg_import **out, fp_mig_sink *sink, fp_err *err);
int fp_pg_import_finish(fp_pg_import *im, int64_t mark, int64_t confirmed, fp_err *err);
/* After finish: the rows table t holds now (-1: unreadable). */
int64_t fp_pg_import_count(fp_pg_import *im, int t);
void fp_pg_import_free(fp_pg_import *im); /* rolls back what is not finished */

#endif
