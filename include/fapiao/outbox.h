/* outbox.h — the workers that run the store's outbox jobs (jobs.h): render
 * the PDF (in isolated worker processes, pdf.h) and announce state changes
 * to the issuing client's webhook.
 *
 * A bounded pool of threads claims due jobs with a lease longer than any
 * job can take (render timeout or webhook timeout, plus a margin).  A
 * failed attempt is retried after an exponential backoff with "equal
 * jitter" (half the delay fixed, half random, so successive waits never
 * shrink); renders give up after render_attempts (a document the renderer
 * refuses gives up at once), webhooks after retry_for; the job is then
 * dead: visible in the API and metrics until an admin re-drives it.
 *
 * Webhooks: POST of the event (webhook.h) with its signature headers; a
 * 2xx delivers it.  One circuit breaker per target origin
 * (scheme://host:port): while it is open the target's jobs wait without
 * using attempts.
 *
 * A bounded backlog (docs/outbox.md): a keeper thread counts the pending
 * renders and the oldest one's age (adaptively, about once a second).  At
 * render_backlog_max pending renders or render_age_max_ms of age the
 * outbox switches to on-demand mode: a GET of a PDF not rendered yet asks
 * fp_outbox_render_now, which renders that invoice ahead of the
 * background, on a foreground job thread in the foreground renderer pool
 * (normal scheduling policy; the background's renderers run at SCHED_IDLE
 * and cannot hold it up), within on_demand_wait_ms, stores the
 * file and completes its render job; new invoices' webhook events go out
 * at once with the PDF's link (fp_store_set_notify_early).  The background
 * goes on rendering at its full rate meanwhile; below half of both
 * thresholds the mode is background again (hysteresis).  The same thread
 * prunes done jobs older than job_retention_ms in small batches.
 *
 * PDFs are written to pdf_dir/<first 5 digits>/<digits 15-17>/<number>.pdf
 * atomically (temporary file, fsync, rename, directory fsync) before the
 * job completes, so a crash in between only renders it again. */
#ifndef FAPIAO_OUTBOX_H
#define FAPIAO_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/breaker.h"
#include "fapiao/err.h"
#include "fapiao/jobs.h"
#include "fapiao/clock.h"
#include "fapiao/json.h"
#include "fapiao/store.h"

typedef struct fp_outbox fp_outbox;

typedef struct fp_outbox_opts {
    fp_store *store;
    const char *pdf_dir;    /* required */
    const char *render_exe; /* the fapiao binary (runs `render-worker`) */
    const char *font_path;  /* NULL: default */
    int workers;            /* job threads, default 2 */
    int render_workers;     /* renderer processes, default = workers */
    int render_fg_workers;  /* foreground renderers (and threads) for on-demand renders, at the
                               normal policy: default 1, at most 8, -1: none (on-demand renders
                               then run in the background pool, docs/outbox.md) */
    int render_timeout_ms;  /* per render, default 30000 */
    size_t render_mem;      /* address space per renderer, default 1 GiB */
    int render_attempts;    /* default 3 */
    int backoff_ms;         /* first retry delay, default 10000 */
    int backoff_max_ms;     /* default 3600000 */
    int64_t retry_for_ms;   /* webhook retry period, default 24 h */
    int webhook_timeout_ms; /* per delivery, default 10000 */
    fp_breaker_opts webhook_breaker; /* zero: defaults (5 in a row, 5 s open) */
    int allow_private_webhooks;      /* else loopback/private/link-local/metadata targets
                                        are refused when connecting (webhook.h) */
    const fp_clock *clock;           /* NULL: the real clocks (clock.h); tests pass a fake */
    /* the bounded backlog (docs/outbox.md); 0: the default, -1: off */
    int64_t render_backlog_max; /* pending renders: on-demand mode, default 20000 */
    int64_t render_age_max_ms;  /* the oldest pending render's age: the same, default 10 s */
    int on_demand_wait_ms;      /* an on-demand render's deadline, default 3000 */
    int64_t on_demand_after_ms; /* background mode: a GET renders a render job queued this
                                   long ago and never tried, default 500 (-1: off) */
    int64_t job_retention_ms;   /* done jobs are deleted after it, default 7 days */
} fp_outbox_opts;

/* Puts jobs left running by a crash back to pending, starts the renderer
 * processes and the job threads. */
int fp_outbox_start(const fp_outbox_opts *o, fp_outbox **out, fp_err *err);
/* Stops taking jobs, waits for running ones (bounded by their timeouts). */
void fp_outbox_stop(fp_outbox *ob);
/* Wakes a worker (new jobs). */
void fp_outbox_kick(fp_outbox *ob);

/* Test-only faults (fapiao serve --fault-injection): FP_RENDER_FAULT_FAIL
 * makes every render fail with "injected fault: render"; FP_RENDER_FAULT_HOLD
 * makes the background job threads claim nothing until the fault is lifted,
 * so a test can queue a backlog of a known shape (on-demand renders are held
 * too unless the foreground threads run them: render_fg_workers). */
enum { FP_RENDER_FAULT_NONE = 0, FP_RENDER_FAULT_FAIL = 1, FP_RENDER_FAULT_HOLD = 2 };
void fp_outbox_set_render_fault(fp_outbox *ob, int fault);
int fp_outbox_render_fault(fp_outbox *ob);

/* Disk space (docs/storage-space.md).  fn (NULL: never) says whether the
 * outbox must not write now; while it says so no job is claimed, so no PDF,
 * job row or delivery state is written.  Jobs already running finish. */
void fp_outbox_set_pause(fp_outbox *ob, int (*fn)(void *arg, char *why, size_t cap), void *arg);
/* 1 while PDF files cannot be written for want of space (the last PDF write
 * failed with ENOSPC or EDQUOT; such a failure is retried with backoff for
 * as long as it lasts and never uses up the render's attempts); why gets
 * the error. */
int fp_outbox_pdf_space_short(fp_outbox *ob, char *why, size_t cap);

/* ---- the bounded backlog (docs/outbox.md) ---- */

/* How an on-demand render ended, as told to its done callback. */
typedef enum {
    FP_OD_DONE = 0,    /* rendered and stored: the file is there, the job done */
    FP_OD_TIMEOUT,     /* the deadline passed first (the render goes on) */
    FP_OD_NOT_PENDING, /* its render job was not pending (running elsewhere, done, dead) */
    FP_OD_FAILED,      /* the attempt failed (the job's retry or death as usual) */
    FP_OD_STOPPING,    /* the outbox stops */
} fp_outbox_od_result;

/* Queues the render of invoice `number` of seller_id for a job thread,
 * ahead of the background's jobs; done(result, arg) is called exactly once,
 * from another thread, by the deadline (on_demand_wait_ms on the monotonic
 * clock) at the latest.  Queued renders are served fairly across sellers:
 * the seller with the fewest renders in progress first, and a seller holds
 * at most a quarter of the queue.  0 when queued; FP_EBUSY when the queue
 * or the seller's share is full (done is not called). */
int fp_outbox_render_now(fp_outbox *ob, int64_t seller_id, const char *number,
                         void (*done)(int result, void *arg), void *arg);

/* Whether a GET of a PDF whose render job is pending renders it now
 * (fp_outbox_render_now): always in on-demand mode; in background mode when
 * the job was queued at least on_demand_after_ms ago (first_at, job times)
 * and has not failed yet (tried_and_failed = 0): the background is late
 * for it, and a client should not wait for the mode to switch
 * (docs/outbox.md). */
int fp_outbox_render_due(fp_outbox *ob, int64_t first_at, int tried_and_failed);

typedef struct fp_outbox_backlog {
    int on_demand;        /* the mode */
    int64_t pending;      /* pending renders at the last count (-1: not counted yet) */
    int64_t oldest_ms;    /* the oldest pending render's age then */
    uint64_t rendered_bg; /* renders completed by the background */
    uint64_t rendered_od; /* ... on first request */
    uint64_t od_timeouts; /* on-demand renders past their deadline */
    uint64_t od_refused;  /* refused: the queue or the seller's share was full */
    uint64_t switches;    /* times the mode changed */
    uint64_t pruned;      /* done jobs deleted */
} fp_outbox_backlog;
void fp_outbox_backlog_get(fp_outbox *ob, fp_outbox_backlog *out);

/* The file of a rendered invoice (it may not exist yet). */
void fp_outbox_pdf_path(const char *pdf_dir, const char *number, char *out, size_t cap);

/* Appends outbox metrics (jobs by kind and state and the oldest pending
 * age from jobs — a count taken elsewhere, off the HTTP threads, see
 * fp_health_jobs; NULL leaves them out — runs by result, breaker states)
 * in Prometheus text format.  Touches no database. */
void fp_outbox_metrics(fp_outbox *ob, const fp_jobs_counts *jobs, fp_buf *b);

#endif
