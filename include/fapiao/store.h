/* store.h — durable storage of invoices on SQLite (WAL, synchronous=FULL).
 *
 * Writes go through one writer thread that commits everything queued while
 * the previous commit's fsync ran (group commit): per request the number is
 * assigned from a number range, the invoice row (which is also the
 * idempotency record) and an audit record are inserted, all in one
 * transaction.  Only after COMMIT returns does the writer call each request's
 * done callback, so an acknowledgement always means durable.  WAL
 * checkpoints run on their own thread, never on the writer.
 *
 * Reads use a small pool of read-only connections and never wait for the
 * writer. */
#ifndef FAPIAO_STORE_H
#define FAPIAO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/audit.h"
#include "fapiao/err.h"
#include "fapiao/invoice.h"

typedef struct fp_store fp_store;

typedef struct fp_store_opts {
    const char *path;      /* database file */
    int read_conns;        /* read pool size (default 4) */
    int max_batch;         /* requests per transaction (default 512) */
    int checkpoint_frames; /* WAL frames that trigger a checkpoint (default 4000) */
    /* the audit log (audit.h) */
    const char *audit_key_path; /* Ed25519 key; default audit.key beside the database (the
                                   public key: the same name with .pub), created when missing */
    int audit_checkpoint_every; /* records per signed checkpoint (default 1000; <0: only
                                   fp_store_audit_checkpoint and close sign) */
    int audit_checkpoint_secs;  /* fp_store_audit_checkpoint signs at most once per this many
                                   seconds (default 60; <0: every call) */
} fp_store_opts;

int fp_store_open(const fp_store_opts *o, fp_store **out, fp_err *err);
/* Drains the writer queue (every queued request gets its answer), stops the
 * threads, checkpoints and closes. */
void fp_store_close(fp_store *s);

int fp_store_migration_count(void);
const char *fp_store_migration_sql(int version);

/* ---- issuing (asynchronous, group-committed) ---- */
typedef enum fp_issue_result {
    FP_ISSUE_PENDING = 0,
    FP_ISSUE_CREATED,    /* new invoice, durable */
    FP_ISSUE_REPLAY,     /* same key, same body: original response */
    FP_ISSUE_KEY_REUSED, /* same key, another body */
    FP_ISSUE_EXHAUSTED,  /* no number left */
    FP_ISSUE_FAILED,     /* storage error: nothing stored */
    FP_ISSUE_FORM_STATE, /* red: the form is not ready (or already used) */
} fp_issue_result;

typedef struct fp_issue_req fp_issue_req;
struct fp_issue_req {
    /* in */
    int64_t seller_id;
    char serial[65];
    unsigned char request_hash[32];
    fp_doc doc; /* response body with number placeholders */
    char invoice_type[3];
    char buyer_tax_id[21];
    int64_t total_with_tax;
    int64_t issued_at; /* unix seconds */
    char actor[65], request_id[72], client_ip[48];
    /* red invoices: the form (row id) it consumes, and the blue number */
    int64_t red_form_id;
    char original_number[FP_NUMBER_LEN + 1];
    void (*done)(fp_issue_req *r, void *arg);
    void *arg;
    /* out (valid in done) */
    fp_issue_result result;
    char number[FP_NUMBER_LEN + 1]; /* CREATED and REPLAY; empty otherwise */
    char *response;                 /* malloc'ed body for CREATED/REPLAY */
    size_t response_len;
    char error[128];
    /* queue link, owned by the store */
    fp_issue_req *next;
};

/* Queues r; r->done runs later on the writer thread. */
void fp_store_submit(fp_store *s, fp_issue_req *r);

/* ---- reads ---- */
/* Finds the invoice issued with serial.  Returns 0 with its number, a
 * malloc'ed doc and the request hash; FP_ENOTFOUND; or FP_EIO. */
int fp_store_find_serial(fp_store *s, int64_t seller_id, const char *serial, unsigned char hash[32],
                         char number[FP_NUMBER_LEN + 1], char **doc, size_t *len);
int fp_store_get_invoice(fp_store *s, int64_t seller_id, const char *number, char **doc,
                         size_t *len);

/* Listing: every filter optional; cursor is the last number of the previous
 * page.  Appends the documents to `out` as the members of a JSON array and
 * sets next_cursor ("" when this was the last page). */
typedef struct fp_list_query {
    const char *serial, *buyer_tax_id, *cursor;
    int64_t from_ts, to_ts; /* issued_at in [from_ts, to_ts); 0: open */
    int limit;              /* 1..200 */
} fp_list_query;
int fp_store_list_invoices(fp_store *s, int64_t seller_id, const fp_list_query *q, fp_buf *out,
                           char next_cursor[FP_NUMBER_LEN + 1]);

typedef struct fp_client_rec {
    char client_id[65];
    int64_t seller_id;
    unsigned char salt[16];
    unsigned char hash[32];
    char scope[128];
    int disabled;
    unsigned roles;         /* rbac.h FP_ROLE_*; 0 when adding: every role (the demo credential) */
    char secret_prefix[16]; /* when adding: the first characters of the secret */
} fp_client_rec;
int fp_store_get_client(fp_store *s, const char *client_id, fp_client_rec *c);
int fp_store_get_seller(fp_store *s, int64_t seller_id, fp_seller *out);
/* Remaining numbers over all ranges of a seller (seller_id 0: of all)
 * usable this year: a number is valid only in its prefix year. */
int fp_store_numbers_remaining(fp_store *s, int64_t seller_id, int64_t *remaining);
/* A cheap read to prove the database answers. */
int fp_store_ping(fp_store *s, fp_err *err);

/* ---- credentials (clients.c) ---- */
typedef struct fp_client_info {
    char client_id[65];
    int64_t seller_id;
    unsigned roles;                 /* rbac.h */
    char allowed_ips[512];          /* "" : any address */
    char cert_sha256[65];           /* "" : no client-certificate binding */
    int64_t created_at, revoked_at; /* unix s; revoked_at 0: active */
    int active_secrets;             /* secrets valid now */
    int64_t newest_secret_at;
    int64_t old_secrets_expire_at; /* when the overlap of a rotation ends, 0: none */
    char secret_prefixes[64];      /* of the valid secrets, newest first */
} fp_client_info;

/* Every client, in client_id order (the secrets' fields only when
 * with_secrets). */
int fp_store_clients(fp_store *s, int with_secrets, void (*fn)(const fp_client_info *c, void *arg),
                     void *arg);
int fp_store_client_info(fp_store *s, const char *client_id, fp_client_info *out);
/* Checks secret against the client's secrets valid at now (constant time
 * per candidate; the same work for an unknown client).  0 with the client
 * in out; FP_ENOTFOUND (unknown), FP_ECRYPTO (wrong or expired secret).  A
 * revoked client still matches: the caller refuses it with its own
 * message. */
int fp_store_client_check_secret(fp_store *s, const char *client_id, const char *secret,
                                 int64_t now, fp_client_info *out);
/* The changes below take `audit`, the record of the change (audit.h: actor
 * and action required; target defaults to what was changed, outcome to
 * "ok" unless said otherwise), and append it in the change's own
 * transaction: when the record cannot be written the change is rolled back
 * and refused (docs/audit.md).  NULL records nothing: only for setup
 * (`fapiao init`) and tests. */

/* A new client with its first secret (generated by the caller). */
int fp_store_client_create(fp_store *s, const fp_client_info *c, const char *secret,
                           const fp_audit_rec *audit, fp_err *err);
/* Rotation: adds secret; every secret of the client valid beyond
 * now + overlap_s now ends then.  FP_ENOTFOUND, FP_ECONFLICT (revoked). */
int fp_store_client_rotate(fp_store *s, const char *client_id, const char *secret, int64_t now,
                           int64_t overlap_s, const fp_audit_rec *audit, fp_err *err);
int fp_store_client_revoke(fp_store *s, const char *client_id, int64_t now,
                           const fp_audit_rec *audit, fp_err *err);
/* NULL leaves a field as it is; "" clears allowed_ips / cert_sha256. */
int fp_store_client_update(fp_store *s, const char *client_id, const unsigned *roles,
                           const char *allowed_ips, const char *cert_sha256,
                           const fp_audit_rec *audit, fp_err *err);

/* ---- setup (synchronous, used by `fapiao init`) ---- */
int fp_store_add_seller(fp_store *s, const fp_seller *seller, int64_t *id, fp_err *err);
int fp_store_add_client(fp_store *s, const fp_client_rec *c, fp_err *err);
typedef struct fp_range_rec {
    int64_t id, seller_id, first, last, next, created_at;
    char prefix[6];
} fp_range_rec;
/* Calls fn for every range (all sellers), oldest first. */
int fp_store_ranges(fp_store *s, void (*fn)(const fp_range_rec *r, void *arg), void *arg);

/* Refuses (FP_EINVAL / FP_ECONFLICT) a prefix that is not 5 digits, a bad
 * first..last, or a range overlapping another of the same prefix.  The
 * check, the insert and audit (target "PREFIX:FIRST..LAST") are one
 * transaction. */
int fp_store_add_range(fp_store *s, int64_t seller_id, const char prefix[6], int64_t first,
                       int64_t last, const fp_audit_rec *audit, fp_err *err);

/* ---- red forms (synchronous; rare, so one transaction each) ---- */
#include "fapiao/red.h"

typedef struct fp_red_form_rec {
    int64_t id;
    char form_no[24];
    char blue_number[FP_NUMBER_LEN + 1];
    fp_red_reason reason;
    char initiated_by[8];
    char state[24];                 /* lapsed is reported once awaiting_* expired */
    int64_t created_at, expires_at; /* expires_at 0: no deadline */
    char red_number[FP_NUMBER_LEN + 1];
    int64_t total_amount, total_tax;
    fp_red_line *lines; /* line, has_qty, qty, amount, tax only */
    int nlines;
} fp_red_form_rec;
void fp_red_form_rec_clear(fp_red_form_rec *r);

/* Stores a new form in `state` after settling its tax (fp_red_settle) and
 * checking the caps against every form of the same blue invoice that is
 * issued or still open, in the same transaction.  FP_ERANGE with the refusal in es when a cap is
 * exceeded.  audit: target defaults to the new form number, outcome to
 * `state`. */
int fp_store_red_form_create(fp_store *s, int64_t seller_id, fp_red_form *f, const char *state,
                             int64_t expires_at, fp_red_form_rec *out, fp_errors *es,
                             const fp_audit_rec *audit, fp_err *err);
int fp_store_red_form_get(fp_store *s, int64_t seller_id, const char *form_no,
                          fp_red_form_rec *out);
/* action: "confirm", "reject" or "withdraw".  FP_ECONFLICT when the state
 * does not allow it (out then holds the current form).  audit: target
 * defaults to the form number, outcome to the new state.  A form found
 * lapsed is stored as lapsed, with its own record (action
 * "red_form.lapse", outcome "lapsed"), before the FP_ECONFLICT. */
int fp_store_red_form_act(fp_store *s, int64_t seller_id, const char *form_no, const char *action,
                          fp_red_form_rec *out, const fp_audit_rec *audit, fp_err *err);

/* ---- health and fault injection ---- */
/* A durable write (one row rewritten, fsync'ed) like an issue's, through
 * the same connection and fault injection: the health checker's probe. */
int fp_store_probe_write(fp_store *s, fp_err *err);

/* Called on the writer thread after every group commit (ok = committed)
 * and every probe: the store's circuit breaker listens here. */
void fp_store_set_outcome_hook(fp_store *s, void (*fn)(int ok, void *arg), void *arg);

/* Test-only faults (fapiao serve --fault-injection): every write fails
 * (write_fail), or waits write_delay_ms before its COMMIT, or fsync_delay_ms
 * after it (a slow disk: the answer waits). */
typedef struct fp_store_faults {
    int write_fail;
    int write_delay_ms;
    int fsync_delay_ms;
} fp_store_faults;
void fp_store_set_faults(fp_store *s, const fp_store_faults *f);
void fp_store_get_faults(fp_store *s, fp_store_faults *f);

/* Histograms the writer fills (metrics.h; NULL: none): requests per group
 * commit, and microseconds per COMMIT. */
struct fp_metric;
void fp_store_set_histograms(fp_store *s, struct fp_metric *batch, struct fp_metric *commit_us);

/* Counters for metrics and benchmarks. */
typedef struct fp_store_stats {
    uint64_t commits, requests, max_batch;
    uint64_t fsync_us_total;
} fp_store_stats;
void fp_store_get_stats(fp_store *s, fp_store_stats *st);

/* ---- the audit log (audit.h) ----
 * Every record is appended to the hash chain inside the transaction of the
 * change it records (issue_one for invoices, jobs.c for re-drives and
 * acknowledgements, the credential, range and red-form changes above); a
 * signed checkpoint follows in the same transaction every
 * audit_checkpoint_every records.  The head is kept in memory and
 * re-read after any rollback, so a rolled-back record is never linked to. */

/* One record in its own transaction on the writer connection (for what
 * changes nothing: authentication failures and refusals).
 * Subject to the injected write faults like every write. */
int fp_store_audit(fp_store *s, const fp_audit_rec *rec, fp_err *err);
/* n records in one transaction (all or none). */
int fp_store_audit_batch(fp_store *s, const fp_audit_rec *recs, int n, fp_err *err);
/* Signs the chain's head as a new checkpoint when records were appended
 * since the last one and that one is at least audit_checkpoint_secs old (so
 * a quiet log gets its tail signed; call it periodically, e.g. once a
 * second: when nothing is due it runs no SQL, it only takes the writer lock
 * for a moment, which may mean waiting for a group commit in flight).
 * fp_store_close signs the tail too.  1 signed, 0 nothing due, or a
 * negative FP_E… code. */
int fp_store_audit_checkpoint(fp_store *s, fp_err *err);

/* Audit records for GET /v1/audit, newest first, id < before (0: from the
 * newest), at most limit; fn gets each with its hash (hex). */
typedef struct fp_audit_view {
    int64_t id, ts;
    const char *actor, *action, *target, *request_id, *client_ip, *outcome, *hash_hex;
} fp_audit_view;
int fp_store_audit_rows(fp_store *s, int64_t before, int limit,
                        void (*fn)(const fp_audit_view *v, void *arg), void *arg);

typedef struct fp_audit_head {
    int64_t last_id; /* the last record (or the pruned anchor), 0: none */
    unsigned char last_hash[FP_AUDIT_HASH_LEN];
    int64_t cp_id, cp_upto; /* the last checkpoint (0: none) */
} fp_audit_head;
int fp_store_audit_head(fp_store *s, fp_audit_head *h, fp_err *err);

/* Retention: deletes the records up to the newest checkpoint whose records
 * are all older than before_ts (unix seconds), and the checkpoints before
 * it; that checkpoint stays as the anchor the rest verifies from, and an
 * `audit.prune` record (target "upto:<id>") is appended.  *upto (0:
 * nothing to prune) and *anchor_cp say what was done.  The caller enforces
 * the retention period (fapiao audit prune: 6 years by default). */
int fp_store_audit_prune(fp_store *s, int64_t before_ts, const char *actor, int64_t *upto,
                         int64_t *anchor_cp, fp_err *err);

#endif
