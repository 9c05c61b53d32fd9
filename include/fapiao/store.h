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
    /* a WAL file larger than this is truncated once the writer is idle
     * (default 64 MiB; docs/performance.md §5c) */
    int64_t wal_keep_bytes;
    /* the audit log (audit.h) */
    const char *audit_key_path; /* Ed25519 key; default audit.key beside the database (the
                                   public key: the same name with .pub), created when missing */
    int audit_checkpoint_every; /* records per signed checkpoint (default 1000; <0: only
                                   fp_store_audit_checkpoint and close sign) */
    int audit_checkpoint_secs;  /* fp_store_audit_checkpoint signs at most once per this many
                                   seconds (default 60; <0: every call) */
    /* the issue clock (docs/operations.md, "Clock"): a request's issued_at
     * is the caller's clock reading, checked against the stored high-water
     * mark of issue times */
    int clock_step_s; /* a backward step up to this issues at the mark (default 60) */
    int clock_jump_s; /* a forward jump beyond this since the last issue is refused until
                         fp_store_clock_confirm (default 86400) */
    /* tests: the wall clock and CLOCK_BOOTTIME in seconds (default: the real ones) */
    void (*clock_now)(int64_t *wall, int64_t *boot);
    /* A stalled disk (docs/storage-space.md): a group commit or write probe
     * slower than slow_write_ms (default 2000; <0: never) is reported to
     * the outcome hook as a failure.  A request still queued for the writer
     * write_deadline_ms (default 5000; <0: no deadline) after its submit is
     * answered FP_ISSUE_TIMEOUT (nothing stored); one in the batch being
     * written (in practice: committing) then is answered FP_ISSUE_UNKNOWN at
     * once (see fp_issue_req.early).  The writer takes its connection's lock
     * before it takes a batch, so requests wait for another write (a job, a
     * probe) in the queue. */
    int slow_write_ms;
    int write_deadline_ms;
    int start_check; /* FP_START_CHECK_*: the check at open (docs/storage.md) */
    /* Read-only (the CLI's listing and verifying commands): no migration
     * (a database needing one is refused, FP_EINVAL), no writer thread, no
     * audit checkpoint signed and no WAL checkpoint on close; issuing and
     * every other write is refused.  A cleanly stopped database's files
     * are not changed by a byte. */
    int read_only;
    /* A server database (postgresql://, docs/ha.md): the directory of the
     * keys kept beside a database file (webhook.key); NULL: none, and the
     * webhook secrets cannot be sealed or opened. */
    const char *key_dir;
} fp_store_opts;

/* The check at open.  SYNC: PRAGMA quick_check from the disk before the
 * store opens, and after a fail-stop the check of what was acknowledged (a
 * pass resumes writes, a failure opens it read-only).  AUTO (fapiao serve):
 * SYNC after a fail-stop or an unclean stop (a WAL left with frames in it),
 * else the quick_check runs on a thread of its own while the store serves
 * (1M invoices: about a minute cold); a failure fail-stops.  NONE (CLI
 * commands): no check; a store with an uncleared fail-stop opens
 * read-only. */
enum { FP_START_CHECK_NONE = 0, FP_START_CHECK_SYNC = 1, FP_START_CHECK_AUTO = 2 };
int fp_store_open(const fp_store_opts *o, fp_store **out, fp_err *err);
/* ---- moving a store (fapiao migrate-store, docs/ha.md) ----
 * Copies every table of the SQLite store at sqlite_path (sellers, clients
 * and their secrets as stored, number ranges, invoices with their
 * documents and idempotency records, red forms with their upstream
 * fields, outbox jobs, uploads to the tax platform, the credit line, alert
 * silences, console users, audit records and checkpoints with their hashes
 * unchanged, the issue clock) into the
 * PostgreSQL database at url, in one transaction on the target, then
 * counts the rows there.  The target's schema is brought to this build's
 * version first (a newer one is refused); a target holding any seller,
 * client, range, invoice, audit record or job is refused FP_ECONFLICT.
 * A source holding a table this build does not name (migrate.c) is
 * refused FP_EINVAL before anything is copied.
 * The caller makes sure nothing serves the source meanwhile. */
#define FP_MIGRATE_TABLES 14
typedef struct fp_store_migrate_report {
    int ntables;
    struct {
        const char *name;
        int64_t copied, target; /* rows read from the source, counted on the target */
    } t[FP_MIGRATE_TABLES];
} fp_store_migrate_report;
int fp_store_migrate(const char *sqlite_path, const char *url, fp_store_migrate_report *rep,
                     fp_err *err);

/* 1 when path names a server database (a postgresql:// or postgres://
 * URL: the PostgreSQL backend, docs/ha.md), 0 for a SQLite file or NULL. */
int fp_store_is_url(const char *path);
/* Makes SQLite's default VFS one that allocates DB-shm before mapping it,
 * so a full disk gives SQLITE_FULL, never SIGBUS (shmguard.c).  Idempotent;
 * fp_store_open calls it. */
void fp_store_shm_guard(void);
/* For tools that read a SQLite store's file directly (audit verify,
 * export, list): opens path read-only like sqlite3_open_v2 (its result
 * code; *db set even on failure), immutable when neither -wal nor -shm
 * exists so that no file is created or changed (see read_only). */
struct sqlite3;
int fp_store_sqlite_open_ro(const char *path, struct sqlite3 **db);
/* Drains the writer queue (every queued request gets its answer), stops the
 * threads, checkpoints and closes. */
void fp_store_close(fp_store *s);

int fp_store_migration_count(void);
const char *fp_store_migration_sql(int version);

/* ---- issuing (asynchronous, group-committed) ---- */
typedef enum fp_issue_result {
    FP_ISSUE_PENDING = 0,
    FP_ISSUE_CREATED,         /* new invoice, durable */
    FP_ISSUE_REPLAY,          /* same key, same body: original response */
    FP_ISSUE_KEY_REUSED,      /* same key, another body */
    FP_ISSUE_EXHAUSTED,       /* no number left */
    FP_ISSUE_FAILED,          /* storage error: nothing stored */
    FP_ISSUE_FORM_STATE,      /* red: the form is not ready (or already used) */
    FP_ISSUE_CLOCK_BEHIND,    /* issued_at more than clock_step_s before the mark */
    FP_ISSUE_CLOCK_JUMPED,    /* the clock jumped ahead: an operator must confirm it */
    FP_ISSUE_TIMEOUT,         /* still queued at its deadline: nothing stored */
    FP_ISSUE_UNKNOWN,         /* its batch was still committing at the deadline: the outcome is
                                 unknown (a retry with the same key tells) */
    FP_ISSUE_CREDIT_EXCEEDED, /* the month's credit line would be exceeded (credit.h) */
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
    int lines;         /* the invoice's lines: its render's cost (jobs.h) */
    int64_t issued_at; /* unix seconds: the caller's clock; the store may raise it to the
                          mark (a small backward step) and patches the document */
    char actor[65], request_id[72], client_ip[48];
    char client_request_id[72]; /* the client's X-Request-Id ("": none) */
    /* red invoices: the form (row id) it consumes, and the blue number */
    int64_t red_form_id;
    char original_number[FP_NUMBER_LEN + 1];
    /* the credit line (credit.h): the amount excluding VAT (fen; a red's is
     * negative) and, for a red, its blue's month (yyyyMM) */
    int64_t total_amount;
    char blue_month[7];
    void (*done)(fp_issue_req *r, void *arg);
    void *arg;
    /* out (valid in done) */
    fp_issue_result result;
    char number[FP_NUMBER_LEN + 1]; /* CREATED and REPLAY; empty otherwise */
    char *response;                 /* malloc'ed body for CREATED/REPLAY */
    size_t response_len;
    char error[128];
    int64_t clock_mark;  /* CLOCK_*: the last issue time (unix s) */
    int clock_retry_s;   /* CLOCK_*: when to try again (seconds, 1..3600) */
    int64_t credit_left; /* CREDIT_EXCEEDED: the month's remaining credit (fen) */
    /* Answered before its batch finished (FP_ISSUE_UNKNOWN), set before done
     * runs; 0 otherwise.  Such a request is shared: the writer still holds
     * it, so its result, response and number must not be read, and it is
     * freed by the last fp_issue_req_release. */
    _Atomic int early;
    _Atomic int refs;
    int64_t deadline_ms; /* CLOCK_MONOTONIC ms; set by fp_store_submit */
    int outcome_unknown; /* FAILED: the COMMIT itself failed on I/O (fail-stop): the
                            invoice may still be on the disk; a retry with the same
                            key after the operator's check tells */
    /* queue link, owned by the store */
    fp_issue_req *next;
};

/* ---- the issue clock (docs/operations.md, "Clock") ---- */
typedef enum { FP_CLOCK_OK = 0, FP_CLOCK_BEHIND, FP_CLOCK_JUMPED } fp_clock_verdict;
typedef struct fp_issue_clock {
    int64_t mark;      /* the last issue time (unix s); 0: nothing issued yet */
    int64_t base_wall; /* a wall-clock reading trusted at base_boot (the last issue, */
    int64_t base_boot; /* the store's open, or a confirmation); CLOCK_BOOTTIME s */
    int step_s, jump_s;
} fp_issue_clock;
/* The verdict for a request read at wall-clock `now` (boot: CLOCK_BOOTTIME
 * then).  OK: *use is the issue time (now, or the mark after a small
 * backward step).  BEHIND: now is more than step_s before the mark.
 * JUMPED: the wall clock moved more than jump_s further than the elapsed
 * real time since the base. */
fp_clock_verdict fp_issue_clock_decide(const fp_issue_clock *c, int64_t now, int64_t boot,
                                       int64_t *use);
/* The state of a store's issue clock as stored: the mark, and when an
 * operator last confirmed a jump (0: never). */
int fp_store_clock_get(fp_store *s, int64_t *mark, int64_t *confirmed_at, fp_err *err);
/* An operator confirms that the clock is right after a forward jump: the
 * writer accepts the current clock from now on.  Audited (clock.confirm,
 * actor) in the same transaction. */
int fp_store_clock_confirm(fp_store *s, const char *actor, fp_err *err);

/* Queues r; r->done runs later, on the writer thread, or on the store's
 * deadline thread for a request answered at its deadline. */
void fp_store_submit(fp_store *s, fp_issue_req *r);
/* Frees r (malloc'ed, with its response and doc.json) once neither the
 * caller nor the writer needs it any more. */
void fp_issue_req_release(fp_issue_req *r);

/* Shutdown: every request still waiting in the queue (not in the batch
 * being committed) fails now with `why` (nothing of it was stored), and
 * every later fp_store_submit fails the same way.  Returns how many were
 * failed; their done callbacks ran on the calling thread. */
int fp_store_cancel_queued(fp_store *s, const char *why);

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
    int upload;             /* 0: any; else the upload state (upload.h) + 1 */
} fp_list_query;
int fp_store_list_invoices(fp_store *s, int64_t seller_id, const fp_list_query *q, fp_buf *out,
                           char next_cursor[FP_NUMBER_LEN + 1]);
/* A part of a listing, for answers sent as they are read: rows after
 * q->cursor (at most q->limit), each preceded by "," unless it is the first
 * (*rows counts them across parts), stopping early once out holds
 * soft_bytes (0: no such stop) after at least one row.  last is the number
 * of the last row written; *more is 1 when rows may follow it. */
int fp_store_list_invoices_part(fp_store *s, int64_t seller_id, const fp_list_query *q,
                                size_t soft_bytes, fp_buf *out, int *rows,
                                char last[FP_NUMBER_LEN + 1], int *more);

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
/* The seller with every field (disabled ones too); FP_ENOTFOUND. */
int fp_store_get_seller(fp_store *s, int64_t seller_id, fp_seller *out);
/* A number that changes whenever any seller is added or changed, by any
 * process on the database (docs/sellers.md): a cached seller read at
 * generation g is current while this still says g. */
int fp_store_sellers_generation(fp_store *s, int64_t *gen);
/* Every seller, in id order. */
int fp_store_sellers(fp_store *s, void (*fn)(const fp_seller *x, void *arg), void *arg);
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
    int64_t matched_secret_id;     /* fp_store_client_check_secret: the secret that matched */
} fp_client_info;

/* Live secrets per client after a rotation: the new one and the newest
 * previous one (for the overlap); a third rotation ends the oldest. */
#define FP_SECRETS_LIVE_MAX 2

/* Every client, in client_id order (the secrets' fields only when
 * with_secrets). */
int fp_store_clients(fp_store *s, int with_secrets, void (*fn)(const fp_client_info *c, void *arg),
                     void *arg);
/* Checks secret against the client's secrets valid at now (constant time
 * per candidate; the same queries and at least FP_SECRETS_LIVE_MAX hashes
 * for an unknown or malformed client id).  0 with the client in out and
 * the matching secret's id in out->matched_secret_id; FP_ENOTFOUND
 * (unknown), FP_ECRYPTO (wrong or expired secret).  A revoked client still
 * matches: the caller refuses it with its own message. */
int fp_store_client_check_secret(fp_store *s, const char *client_id, const char *secret,
                                 int64_t now, fp_client_info *out);
/* Every secret valid at now: (client, secret id, expires_at or 0). */
int fp_store_live_secrets(fp_store *s, int64_t now,
                          void (*fn)(const char *client_id, int64_t secret_id, int64_t expires_at,
                                     void *arg),
                          void *arg);
/* The changes below take `audit`, the record of the change (audit.h: actor
 * and action required; target defaults to what was changed, outcome to
 * "ok" unless said otherwise), and append it in the change's own
 * transaction: when the record cannot be written the change is rolled back
 * and refused (docs/audit.md).  NULL records nothing: only for setup
 * (`fapiao init`) and tests. */

/* A new client with its first secret (generated by the caller).
 * FP_EINVAL for a client id outside [A-Za-z0-9._-]{1,64} or a seller < 1. */
int fp_store_client_create(fp_store *s, const fp_client_info *c, const char *secret,
                           const fp_audit_rec *audit, fp_err *err);
/* Rotation: adds secret; the newest previous secret ends at now +
 * overlap_s (if later), every older one now, so at most
 * FP_SECRETS_LIVE_MAX stay live.  FP_ENOTFOUND, FP_ECONFLICT (revoked). */
int fp_store_client_rotate(fp_store *s, const char *client_id, const char *secret, int64_t now,
                           int64_t overlap_s, const fp_audit_rec *audit, fp_err *err);
int fp_store_client_revoke(fp_store *s, const char *client_id, int64_t now,
                           const fp_audit_rec *audit, fp_err *err);
/* NULL leaves a field as it is; "" clears allowed_ips / cert_sha256. */
int fp_store_client_update(fp_store *s, const char *client_id, const unsigned *roles,
                           const char *allowed_ips, const char *cert_sha256,
                           const fp_audit_rec *audit, fp_err *err);

/* ---- sellers (`fapiao sellers`; docs/sellers.md) ----
 * A new seller (seller->id is ignored; *id gets the new one), or every
 * field of seller->id replaced (disable and enable are such an update).
 * FP_EINVAL without a name or a tax id (the caller checks the USCC's
 * shape), FP_ECONFLICT when another seller has the tax id, FP_ENOTFOUND
 * (update) for an unknown id.  audit target "seller:ID". */
int fp_store_seller_create(fp_store *s, const fp_seller *seller, int64_t *id,
                           const fp_audit_rec *audit, fp_err *err);
int fp_store_seller_update(fp_store *s, const fp_seller *seller, const fp_audit_rec *audit,
                           fp_err *err);

/* ---- setup (synchronous, used by `fapiao init --demo` and tests: no
 * audit record, no check against the other sellers) ---- */
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
/* Moves range range_id's next forward to next (docs/recovery.md: the
 * numbers given out after a restored point): never back — a next at or
 * below the current one changes nothing — and never past last + 1
 * (FP_EINVAL); FP_ENOTFOUND for no such range.  *before: the range as it
 * was.  The update and its audit record (target "PREFIX:ID:FROM->TO", only
 * when it moved) are one transaction. */
int fp_store_advance_range(fp_store *s, int64_t range_id, int64_t next, const fp_audit_rec *audit,
                           fp_range_rec *before, fp_err *err);

/* ---- alert silences (docs/alerting.md "Silences"; synchronous, rare) ---- */
typedef struct fp_silence {
    int64_t id;
    char matchers[512]; /* "alertname=X,severity=P1" (k=v or k=~re, ',' between) */
    int64_t starts_at, ends_at, created_at, expired_at; /* unix s; expired_at 0: not expired */
    char comment[256], created_by[80];
} fp_silence;
/* Stores a silence (id, created_at and expired_at are set here) with its
 * audit record (action alerts.silence, target "silence:ID") in one
 * transaction; FP_EINVAL for empty matchers or ends_at <= starts_at. */
int fp_store_silence_create(fp_store *s, const fp_silence *x, int64_t *id,
                            const fp_audit_rec *audit, fp_err *err);
/* Ends a silence now (ends_at = expired_at = now) with its audit record;
 * FP_ENOTFOUND when no such silence is still active. */
int fp_store_silence_expire(fp_store *s, int64_t id, int64_t now, const fp_audit_rec *audit,
                            fp_err *err);
/* Calls fn for each silence, newest first: active at now only (now > 0),
 * or all (now 0). */
int fp_store_silences(fp_store *s, int64_t now, void (*fn)(const fp_silence *x, void *arg),
                      void *arg);

/* ---- console users (docs/console.md; synchronous, rare) ---- */
#define FP_USER_NAME_MAX 64
/* A person who signs in to the console: the roles of an API client (rbac.h,
 * one kind; seller_id 0 for the instance-wide ones), an Argon2id password
 * hash, a TOTP seed sealed at rest (seal.h, aad "user:NAME"; "" before
 * enrolment), the SHA-256 (hex) of the one-time enrolment token ("" once
 * used), the hashes of the unused recovery codes, and the last TOTP time
 * step accepted (a code is good once). */
typedef struct fp_user {
    char name[FP_USER_NAME_MAX + 1];
    unsigned roles;
    int64_t seller_id;
    char pw_hash[160];
    char totp_seed[160];
    char enrol_hash[65];
    char recovery[800]; /* hex SHA-256 of each unused code, ',' between */
    int enrolled, disabled;
    int64_t totp_step;
    int64_t created_at, updated_at;
} fp_user;
/* Adds u (created_at, updated_at set here) with its audit record (target
 * "user:NAME") in one transaction; FP_ECONFLICT when the name is taken. */
int fp_store_user_create(fp_store *s, const fp_user *u, const fp_audit_rec *audit, fp_err *err);
/* Writes u's roles, seller, hashes, seed, flags and step over the stored
 * row (audit NULL: no record); FP_ENOTFOUND for no such user. */
int fp_store_user_update(fp_store *s, const fp_user *u, const fp_audit_rec *audit, fp_err *err);
/* 0, FP_ENOTFOUND or FP_EIO. */
int fp_store_user_get(fp_store *s, const char *name, fp_user *out);
/* Calls fn for every user, by name. */
int fp_store_users(fp_store *s, void (*fn)(const fp_user *u, void *arg), void *arg);
/* The replay check of a TOTP code, atomic: 0 when step is later than the
 * user's last accepted one (now stored), FP_ECONFLICT when it is not (the
 * code was used), FP_ENOTFOUND for no such user. */
int fp_store_user_take_step(fp_store *s, const char *name, int64_t step, fp_err *err);

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
    /* on the tax platform ("" until filed; docs/upstream.md "Red forms") */
    char up_uuid[64], up_number[32], up_state[8];
    char up_answer[2]; /* our answer not yet taken there: Y, N or C ("" none) */
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

/* ---- red forms on the tax platform (the red keeper, redkeeper.h) ---- */
typedef struct fp_red_form_due {
    int64_t seller_id;
    char form_no[24];
    char up_uuid[64]; /* "" while not filed */
    char state[24];   /* as stored */
    char answer[2];   /* our answer to send (QDHZQRDQR's qrlx), "" none */
} fp_red_form_due;
typedef struct fp_red_form_up {
    char uuid[64], number[32], state[8]; /* uuid, hzfpxxqrdbh, hzqrxxztDm */
} fp_red_form_up;
/* fn for each form the keeper has work on: open and not filed, or filed
 * and awaiting the other side (at most 1000, oldest first). */
int fp_store_red_forms_upstream(fp_store *s, void (*fn)(const fp_red_form_due *d, void *arg),
                                void *arg);
/* Stores the platform's uuid, number and state on the form while it is
 * still in state `from` (as stored), and moves it to `to` (NULL: stays),
 * with its audit record; with a `to`, an answer waiting to be sent is
 * settled (cleared).  FP_ECONFLICT, nothing stored, when no form of
 * the seller by that number is in `from` (it moved meanwhile, or is gone). */
int fp_store_red_form_upstream(fp_store *s, int64_t seller_id, const char *form_no,
                               const fp_red_form_up *u, const char *from, const char *to,
                               const fp_audit_rec *audit, fp_err *err);
/* Our reviewer's confirm / reject / withdraw of a filed form, to be sent
 * upstream by the red keeper: stores the answer (Y / N / C) on the form,
 * whose state stays until the platform has taken it, with its audit
 * record (outcome "pending_upstream").  1, nothing stored, when the form
 * is not filed (the caller acts locally); FP_ECONFLICT (out holds the
 * form) when the answer is not ours to give (confirm / reject: a form the
 * buyer filed; withdraw: one we filed), not allowed in its state, or
 * another answer is waiting. */
int fp_store_red_form_answer(fp_store *s, int64_t seller_id, const char *form_no,
                             const char *action, fp_red_form_rec *out, const fp_audit_rec *audit,
                             fp_err *err);
/* A form the buyer filed on the platform about the seller's blue invoice,
 * taken in as fp_store_red_form_create does, with the platform's uuid,
 * number and state (up) in the same transaction.  FP_ECONFLICT, nothing
 * stored, when a form with that uuid is already here.  (up NULL: exactly
 * fp_store_red_form_create.) */
int fp_store_red_form_adopt(fp_store *s, int64_t seller_id, fp_red_form *f, const char *state,
                            int64_t expires_at, const fp_red_form_up *up, fp_red_form_rec *out,
                            fp_errors *es, const fp_audit_rec *audit, fp_err *err);

/* ---- fail-stop (docs/storage.md) ----
 * Any SQLITE_IOERR* on any of the store's files (write, fsync, truncate,
 * read), SQLITE_CORRUPT or SQLITE_NOTADB where a statement fails, a stored
 * document that no longer parses, a database file or WAL deleted, renamed
 * or replaced under the open store, or a failed check at open, stops all
 * writes for the life of the process: queued and new issues fail, every
 * write to the database and its WAL is refused below SQLite, reads go on.
 * Nothing clears it but a restart whose check from the disk passes.
 * SQLITE_FULL is not a cause (disk full is retryable). */
enum {
    FP_FAILSTOP_NONE = 0,
    FP_FAILSTOP_IO,        /* an I/O error */
    FP_FAILSTOP_CORRUPT,   /* corruption found */
    FP_FAILSTOP_FILE_GONE, /* the file at the path is not the open one */
    FP_FAILSTOP_CHECK,     /* the check after an earlier fail-stop failed */
};
/* FP_FAILSTOP_NONE while writes may go on; else the cause, with the reason
 * (English, one line) in why. */
int fp_store_failstop(fp_store *s, char *why, size_t cap);
const char *fp_store_failstop_name(int cause); /* "io_error", "corruption", ... */

typedef struct fp_store_check_report {
    int ok;
    int full;            /* integrity_check rather than quick_check */
    int from_disk;       /* the cached pages were dropped after fsync */
    int after_failstop;  /* a marker of an earlier fail-stop was checked */
    char integrity[256]; /* "ok" or the first problem SQLite reported */
    int acked_checked, acked_missing, audit_checked;
    char problems[768];
    int64_t elapsed_ms;
} fp_store_check_report;

/* The check of a database by path, from the disk (no store open needed;
 * safe beside a running server: nothing is written): quick_check (full:
 * integrity_check), and the numbers and audit head a marker of an earlier
 * fail-stop names.  0 passed, FP_EIO failed (rep says why). */
int fp_store_check_path(const char *db_path, int full, fp_store_check_report *rep);
/* The same check on a running store, with what it acknowledged last.  A
 * pass does not resume writes (only a restart does, docs/storage.md). */
int fp_store_check_now(fp_store *s, int full, fp_store_check_report *rep);
/* Clears the marker of an earlier fail-stop (after a passed offline check). */
int fp_store_failstop_clear_marker(const char *db_path);
/* Compares the open database file and WAL with their paths (fstat vs
 * stat: link count, device, inode); fail-stop when either was deleted,
 * renamed or replaced.  0 or FP_EIO. */
int fp_store_check_files(fp_store *s, fp_err *err);

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
    uint64_t slow_writes;   /* commits and probes over slow_write_ms */
    uint64_t timed_out;     /* FP_ISSUE_TIMEOUT answers */
    uint64_t unknown;       /* FP_ISSUE_UNKNOWN answers */
    int64_t last_commit_us; /* the latest commit's duration */
    int64_t last_probe_us;  /* the latest write probe's, with its wait for the writer */
    int slow_write_ms;      /* the threshold in force */
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
    int64_t seller_id; /* 0: instance-wide */
    const char *client_request_id;
} fp_audit_view;
/* seller_id > 0: only that seller's records (a seller-scoped auditor);
 * 0: every record (an operator-auditor: docs/security.md); < 0: none. */
int fp_store_audit_rows(fp_store *s, int64_t seller_id, int64_t before, int limit,
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

/* ---- the raw chain, for the auditor (auditor.h: verify, export, ship) ----
 * fp_store_audit_snapshot runs fn on one read snapshot of the audit log:
 * every call on the snapshot sees the same records and checkpoints, while
 * a server goes on writing.  A read-only store (fp_store_opts.read_only)
 * is enough; the backend's SQL stays in the backend. */
typedef enum fp_audit_cp_at {
    FP_CP_ID,          /* the checkpoint with id arg */
    FP_CP_AFTER_ID,    /* the first with id > arg */
    FP_CP_BEFORE_UPTO, /* the last with upto_id < arg */
    FP_CP_FROM_UPTO,   /* the first with upto_id >= arg */
} fp_audit_cp_at;

typedef struct fp_audit_scan {
    int64_t from, to;                 /* records with from <= id <= to (to 0: to the end) */
    int no_rows;                      /* checkpoints only */
    int64_t cp_after;                 /* checkpoints with id > cp_after, */
    int64_t cp_upto_min, cp_upto_max; /* upto_id >= min and (max 0: any) <= max */
    int cp_limit;                     /* at most this many checkpoints (0: all) */
    /* called in chain order: a checkpoint right after the record it ends at
     * (the row and checkpoint live until the call returns); nonzero stops */
    int (*on_row)(const fp_audit_row *r, void *arg);
    int (*on_cp)(const fp_audit_cp *cp, void *arg);
    void *arg;
} fp_audit_scan;

typedef struct fp_audit_snap fp_audit_snap;
struct fp_audit_snap {
    /* the first and last record ids: 0, or FP_ENOTFOUND for an empty log */
    int (*bounds)(fp_audit_snap *a, int64_t *min_id, int64_t *max_id, fp_err *err);
    /* a checkpoint (fp_audit_cp_at): 1 found, 0 none, or an error */
    int (*cp)(fp_audit_snap *a, fp_audit_cp_at at, int64_t arg, fp_audit_cp *out, fp_err *err);
    /* the stored hash of record id: 1 (a hash of the right length), 0 */
    int (*hash_at)(fp_audit_snap *a, int64_t id, unsigned char h[FP_AUDIT_HASH_LEN]);
    /* the first record whose stored hash is h: 1 found, 0 */
    int (*find_hash)(fp_audit_snap *a, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id);
    /* 0 (also when a callback stopped it) or an error */
    int (*scan)(fp_audit_snap *a, const fp_audit_scan *q, fp_err *err);
    /* the newest limit records, newest first */
    int (*latest)(fp_audit_snap *a, int limit, void (*fn)(const fp_audit_row *r, void *arg),
                  void *arg, fp_err *err);
    /* invoices whose issued_at is more than tolerance seconds below an
     * earlier stored one's: how many, the largest step back, the first
     * such number ("" none); best effort */
    void (*invoices_back)(fp_audit_snap *a, int64_t tolerance, int64_t *count, int64_t *max_back,
                          char *first, size_t cap);
    void *be; /* the backend's */
};
/* fn's result, or an error opening the snapshot. */
int fp_store_audit_snapshot(fp_store *s, int (*fn)(fp_audit_snap *a, void *arg), void *arg,
                            fp_err *err);

#endif
