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

#include "fapiao/jobs.h"
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
    X(int, store_red_form_create,                                                                  \
      (int64_t seller_id, fp_red_form * f, const char *state, int64_t expires_at,                  \
       fp_red_form_rec *out, fp_errors *es, const fp_audit_rec *audit, fp_err *err),               \
      (seller_id, f, state, expires_at, out, es, audit, err))                                      \
    X(int, store_red_form_get, (int64_t seller_id, const char *form_no, fp_red_form_rec *out),     \
      (seller_id, form_no, out))                                                                   \
    X(int, store_red_form_act,                                                                     \
      (int64_t seller_id, const char *form_no, const char *action, fp_red_form_rec *out,           \
       const fp_audit_rec *audit, fp_err *err),                                                    \
      (seller_id, form_no, action, out, audit, err))                                               \
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
      (now, fn, arg))

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

/* The backends this build has. */
extern const fp_store_ops fp_store_sqlite_ops;
extern const fp_store_ops fp_store_pg_ops; /* pg/: a postgresql:// URL */

/* Opens a store on the given backend (fp_store_open chooses it by path;
 * tests choose it themselves, e.g. to run the contract suite against a
 * deliberately wrong wrapper of a backend). */
int fp_store_open_ops(const fp_store_ops *ops, const fp_store_opts *o, fp_store **out, fp_err *err);

#endif
