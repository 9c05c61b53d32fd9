/* jobs.h — the durable outbox in the store (migration 3), and the invoice
 * states it moves.
 *
 * The issuing transaction inserts a `render` job for every invoice and,
 * when the issuing client has a webhook, a `notify` job blocked behind the
 * render.  Workers claim due jobs with a lease (running, lease_owner,
 * lease_until); a finished job is completed only by the worker still holding
 * its lease, in one transaction with the invoice state it changes:
 *
 *   render done     invoice accepted|failed -> rendered (delivered when its
 *                   invoice.issued event was delivered already); notify
 *                   unblocked (event invoice.rendered) unless an
 *                   invoice.issued event went out for it
 *   render dead     invoice -> failed (failure = last error); notify
 *                   unblocked with event invoice.failed
 *   notify done     invoice rendered -> delivered (invoice.rendered or
 *                   invoice.issued)
 *
 * While renders are served on first request (docs/outbox.md: the outbox's
 * on-demand mode, fp_store_set_notify_early) a new invoice's notify job is
 * not blocked: it is pending at once with event invoice.issued, which
 * carries the PDF's link like every event.
 *   ack (API)       invoice -> confirmed
 *
 * After a crash every running job is pending again (fp_jobs_recover, run by
 * the only process holding the data directory's lock), so a job's effect
 * happens at least once; render output is written idempotently and each
 * event has a stable id for receivers to drop duplicates.
 *
 * Times are unix milliseconds on the steady wall clock (fp_steady_ms,
 * clock.h): rows are shared with other processes, so they hold Unix times,
 * but a wall-clock step while the server runs neither hurries nor stalls a
 * retry, a lease or a backoff (docs/architecture.md, "Clocks"). */
#ifndef FAPIAO_JOBS_H
#define FAPIAO_JOBS_H

#include <stdint.h>

#include "fapiao/clock.h"
#include "fapiao/err.h"
#include "fapiao/invoice.h"
#include "fapiao/store.h"

typedef enum { FP_JOB_RENDER = 0, FP_JOB_NOTIFY = 1, FP_JOB__KINDS } fp_job_kind;

/* A job's cost for the fair order of first runs (fp_jobs_claim), in units
 * of one invoice line's share of a render: a render costs FP_JOB_BASE_COST
 * + its invoice's lines, a notify FP_JOB_BASE_COST.  The base is what every
 * job pays whatever its size (a worker round trip, the PDF's font subset
 * and QR code, an fsync, a commit): a 1-line render takes about as long as
 * 20 lines of a long invoice (docs/webhooks.md, "Order of service"). */
#define FP_JOB_BASE_COST 20
typedef enum {
    FP_JS_BLOCKED = 0,
    FP_JS_PENDING,
    FP_JS_RUNNING,
    FP_JS_DONE,
    FP_JS_DEAD,
    FP_JS__STATES
} fp_job_state;

const char *fp_job_kind_name(fp_job_kind k);
const char *fp_job_state_name(fp_job_state s);
/* -1 when unknown */
int fp_job_state_from_name(const char *s);

typedef struct fp_job {
    int64_t id, seller_id;
    char invoice_number[FP_NUMBER_LEN + 1];
    char client_id[65];
    fp_job_kind kind;
    fp_job_state state;
    char event[32], event_id[64];
    int attempts;
    int64_t next_at, first_at, updated_at, lease_owner, lease_until;
    char last_error[256];
} fp_job;

/* Called (on the writer thread, after COMMIT) whenever a transaction queued
 * new jobs: the outbox uses it to wake a worker. */
void fp_store_set_job_hook(fp_store *s, void (*fn)(void *arg), void *arg);

/* Puts every running job back to pending; *n gets how many. */
int fp_jobs_recover(fp_store *s, int64_t *n, fp_err *err);

/* Claims one job, in this order (docs/webhooks.md, "Order of service"):
 *   1. a running one whose lease expired;
 *   2. a pending one that ran before (retried, deferred, recovered after a
 *      crash, re-driven) and is due (next_at <= now), the one due first;
 *   3. a first run, fairly across sellers: the smallest fair_tag.  A job's
 *      tag is given when it is queued (a render) or unblocked (a notify):
 *      the larger of its seller's last waiting tag and the smallest waiting
 *      tag, plus its cost (FP_JOB_BASE_COST).  So a seller's own jobs keep their order,
 *      and a seller with a large backlog waits behind sellers with less.
 * It becomes running, leased to owner until now + lease_ms, attempts + 1,
 * and loses its tag.  FP_ENOTFOUND when none is due; *next_due then holds
 * when the next pending job is due (0: none). */
int fp_jobs_claim(fp_store *s, int64_t now, int64_t owner, int64_t lease_ms, fp_job *out,
                  int64_t *next_due, fp_err *err);

/* Claims the render job of invoice `number` of seller_id like
 * fp_jobs_claim (running, leased to owner, attempts + 1, no tag), whether
 * or not it is due: the render on first request (docs/outbox.md).
 * FP_ENOTFOUND when that job is not pending (running elsewhere, done,
 * dead, or none). */
int fp_jobs_claim_render(fp_store *s, int64_t seller_id, const char *number, int64_t now,
                         int64_t owner, int64_t lease_ms, fp_job *out, fp_err *err);

/* on != 0: new invoices' notify jobs are queued pending with event
 * invoice.issued instead of blocked behind the render (the outbox's
 * on-demand mode; docs/outbox.md).  Takes effect from the next batch. */
void fp_store_set_notify_early(fp_store *s, int on);

/* Deletes at most limit done jobs finished (next_at) before `before`, in
 * one short transaction: notify jobs first, then renders that no job
 * waits on any more (after_job).  *n gets how many rows went.  Dead jobs
 * are kept (they wait for an admin).  The invoice keeps its state, and its
 * PDF file stays where it is (docs/outbox.md, "Job retention"). */
int fp_jobs_prune(fp_store *s, int64_t before, int limit, int64_t *n, fp_err *err);

/* Completes j (see the table above).  FP_ECONFLICT when j's lease is no
 * longer held by j->lease_owner (another worker took it over): nothing
 * changes. */
int fp_jobs_complete(fp_store *s, const fp_job *j, int64_t now, fp_err *err);

/* A failed attempt: pending again at next_at, or dead when dead != 0.
 * FP_ECONFLICT as above. */
int fp_jobs_fail(fp_store *s, const fp_job *j, int64_t now, int64_t next_at, int dead,
                 const char *error, fp_err *err);

/* Puts j back to pending at next_at without counting the attempt (its
 * target's circuit breaker is open). */
int fp_jobs_defer(fp_store *s, const fp_job *j, int64_t next_at, const char *why, fp_err *err);

/* A dead job is pending again now, with attempts 0 and a new first_at (so
 * its retry period starts over).  An audit record names actor (and the
 * job's seller; client_request_id: the client's X-Request-Id, may be NULL).
 * FP_ENOTFOUND, or FP_ECONFLICT when the job is not dead. */
int fp_jobs_redrive(fp_store *s, int64_t seller_id, int64_t id, const char *actor,
                    const char *request_id, const char *client_request_id, const char *client_ip,
                    fp_err *err);

int fp_jobs_get(fp_store *s, int64_t seller_id, int64_t id, fp_job *out);

/* Jobs of a seller (0: all sellers) in state (-1: any), newest first, with
 * id < before (0: from the newest); at most limit; fn per job. */
int fp_jobs_list(fp_store *s, int64_t seller_id, int state, int64_t before, int limit,
                 void (*fn)(const fp_job *j, void *arg), void *arg, fp_err *err);

typedef struct fp_jobs_counts {
    int64_t n[FP_JOB__KINDS][FP_JS__STATES]; /* done is not counted (it only grows) */
    int64_t oldest_pending_at;               /* first_at of the oldest pending job, 0: none */
    int64_t oldest_render_at;                /* ... of the oldest pending render, 0: none */
} fp_jobs_counts;
int fp_jobs_count(fp_store *s, fp_jobs_counts *c, fp_err *err);

/* ---- invoice state ---- */
typedef struct fp_invoice_state {
    char status[16];   /* accepted rendered delivered confirmed failed */
    char failure[256]; /* when failed */
    char serial[65];
    int render_state; /* fp_job_state of the latest render job, -1: none */
    char render_error[256];
    int64_t render_next_at;  /* when a pending render is tried next (unix ms) */
    int64_t render_first_at; /* when that render job was queued (job times) */
} fp_invoice_state;
int fp_store_invoice_state(fp_store *s, int64_t seller_id, const char *number,
                           fp_invoice_state *out);

/* The caller confirms receipt: status confirmed (idempotent), audited.
 * FP_ENOTFOUND for another seller's or an unknown number. */
int fp_store_invoice_ack(fp_store *s, int64_t seller_id, const char *number, const char *actor,
                         const char *request_id, const char *client_request_id,
                         const char *client_ip, fp_err *err);

/* ---- webhook configuration of a client ----
 * The secret is stored sealed (seal.h, key DIR/webhook.key); get opens it
 * (FP_ECRYPTO when it cannot: webhook.key missing or replaced). */
int fp_store_webhook_get(fp_store *s, const char *client_id, char *url, size_t url_cap,
                         char *secret, size_t secret_cap);
/* Seals the secrets stored in plaintext by earlier versions (serve runs it
 * at start); *sealed gets how many. */
int fp_store_webhook_seal_all(fp_store *s, int *sealed, fp_err *err);
/* url NULL removes the webhook.  FP_ENOTFOUND for an unknown client.  audit:
 * the record of the change, in its transaction (store.h; target defaults
 * to the client id). */
int fp_store_webhook_set(fp_store *s, const char *client_id, const char *url, const char *secret,
                         const fp_audit_rec *audit, fp_err *err);

#endif
