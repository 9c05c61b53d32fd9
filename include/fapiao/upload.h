/* upload.h — uploading issued invoices to the tax platform (docs/upstream.md,
 * "Upload pipeline"): the per-invoice upload rows in the store and their
 * states.
 *
 * While the upstream is configured (fp_store_set_upload on), the issuing
 * transaction writes an upload row for every invoice, blue and red, beside
 * its render job: pending.  The upload worker (src/outbox/upload.c) sends
 * pending rows in batches (QDFPSC) and stores the batch's sllsh on them
 * (submitted), then asks for the result (CXQDFPSCJG) with backoff until
 * each is accepted or rejected (the platform's message kept as the reason:
 * a dead letter).  A row with an sllsh is never sent again before that
 * sllsh has been queried.
 *
 *   pending -> submitted -> accepted | rejected (reason)
 *
 * Times are unix milliseconds on the steady wall clock (clock.h), as the
 * job rows' (jobs.h). */
#ifndef FAPIAO_UPLOAD_H
#define FAPIAO_UPLOAD_H

#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/invoice.h"
#include "fapiao/store.h"

typedef enum {
    FP_UPLOAD_PENDING = 0,
    FP_UPLOAD_SUBMITTED,
    FP_UPLOAD_ACCEPTED,
    FP_UPLOAD_REJECTED,
    FP_UPLOAD__STATES
} fp_upload_state;

const char *fp_upload_state_name(int state);
/* -1 when unknown */
int fp_upload_state_from_name(const char *s);

/* on != 0: new invoices get an upload row (from the next batch). */
void fp_store_set_upload(fp_store *s, int on);

typedef struct fp_upload_row {
    int64_t seller_id;
    char number[FP_NUMBER_LEN + 1];
    int state; /* fp_upload_state */
    char sllsh[64];
    char reason[256];
    int attempts;
    int64_t next_at, first_at;
} fp_upload_row;

/* Rows due at now, oldest first, at most limit into out: with_sllsh 0 the
 * pending ones never sent (sllsh NULL), 1 those with an sllsh to ask
 * about (submitted, or pending after an unanswered send). */
int fp_store_upload_due(fp_store *s, int64_t now, int with_sllsh, int limit, fp_upload_row *out,
                        int *n, fp_err *err);

/* Sets a row's state, sllsh (NULL: none, "" keeps it), reason (NULL:
 * none) and next_at; attempts + 1 when count.  FP_ENOTFOUND for no row. */
int fp_store_upload_set(fp_store *s, const char *number, int state, const char *sllsh,
                        const char *reason, int64_t next_at, int count, fp_err *err);

/* The row of one invoice; FP_ENOTFOUND when it has none. */
int fp_store_upload_get(fp_store *s, int64_t seller_id, const char *number, fp_upload_row *out);

typedef struct fp_upload_counts {
    int64_t n[FP_UPLOAD__STATES];
    int64_t oldest_waiting_at; /* first_at of the oldest pending or submitted row, 0: none */
} fp_upload_counts;
int fp_store_upload_counts(fp_store *s, fp_upload_counts *c, fp_err *err);

/* Re-drives dead letters: the rejected row of number (NULL: every rejected
 * row) back to pending, due at now, without sllsh, reason or attempts.  *n
 * gets how many; FP_ENOTFOUND when number has no rejected row.  Each row
 * moved gets an audit record in the same transaction (audit's actor,
 * action "upload.redrive", target "upload:NUMBER from STATE", the row's
 * seller); audit NULL writes none. */
int fp_store_upload_redrive(fp_store *s, const char *number, int64_t now, const fp_audit_rec *audit,
                            int64_t *n, fp_err *err);

#endif
