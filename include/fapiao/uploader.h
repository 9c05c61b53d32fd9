/* uploader.h — the upload worker (src/outbox/upload.c; docs/upstream.md §9):
 * one thread that sends the store's pending upload rows (upload.h) to the
 * tax platform in batches (QDFPSC), stores each batch's sllsh, asks for the
 * results (CXQDFPSCJG) with backoff, and ends every row accepted or
 * rejected (a dead letter with the platform's message).  A row with an
 * sllsh is never sent again before that sllsh was queried; a lost reply
 * without one is answered by sending the same invoices again, which the
 * platform answers as duplicates (accepted).  One breaker on the platform. */
#ifndef FAPIAO_UPLOADER_H
#define FAPIAO_UPLOADER_H

#include <stdint.h>

#include "fapiao/breaker.h"
#include "fapiao/err.h"
#include "fapiao/json.h"
#include "fapiao/store.h"
#include "fapiao/upload.h"
#include "fapiao/upstream.h"

typedef struct fp_uploader fp_uploader;

typedef struct fp_uploader_opts {
    fp_store *store;
    const fp_upstream_conf *up; /* kept: must outlive the worker */
    int batch;                  /* invoices per QDFPSC, default 100 */
    int poll_ms;                /* idle wait between looks at the table, default 1000 */
    int backoff_ms;             /* first retry (and first result query) delay, default 2000 */
    int backoff_max_ms;         /* default 300000 */
    int resend_after;           /* result queries finding nothing before the batch is
                                   sent again (duplicates then answer it), default 5 */
    fp_breaker_opts breaker;    /* zero: the defaults (breaker.h), but open_ms and
                                   max_open_ms those of the backoff */
} fp_uploader_opts;

/* How the worker ended a row or a call (fapiao_upload_total's outcome). */
typedef enum {
    FP_UPO_SUBMITTED = 0, /* sent: the platform's sllsh stored on the row */
    FP_UPO_ACCEPTED,      /* status 00 */
    FP_UPO_DUPLICATE,     /* already stored upstream: accepted (docs/upstream.md) */
    FP_UPO_REJECTED,      /* the platform's message kept: a dead letter */
    FP_UPO_RETRY,         /* a call failed or told nothing: the rows wait and retry */
    FP_UPO_RESENT,        /* an sllsh the platform never knew: the rows go out again */
    FP_UPO__N
} fp_upload_outcome;

/* Starts the worker thread.  0, or a negative FP_E code with err. */
int fp_uploader_start(const fp_uploader_opts *o, fp_uploader **out, fp_err *err);
/* Stops it (the call in flight finishes, bounded by the upstream timeouts);
 * NULL is a no-op. */
void fp_uploader_stop(fp_uploader *u);
/* Wakes the worker (new invoices). */
void fp_uploader_kick(fp_uploader *u);
/* Rows ended with outcome o since the start. */
uint64_t fp_uploader_count(fp_uploader *u, fp_upload_outcome o);
/* The upload metrics (backlog, oldest age, outcomes, the breaker) in the
 * Prometheus text format. */
void fp_uploader_metrics(fp_uploader *u, fp_buf *b);

#endif
