/* credit.h — the credit line (授信额度) the tax platform grants a seller per
 * month, kept in the store so that issuing checks it in the issuing
 * transaction (docs/upstream.md, "Credit").
 *
 * A row per (seller, month): limit_fen, the credit downloaded from the
 * platform for that month (XZTHSXED, read back as CXSXED's yxzed, written
 * by `fapiao upstream credit refresh`), and used_fen, what this store's
 * invoices of that month took (src/upstream/credit.c's rule: a blue takes
 * its amount excluding VAT, a red of the blue's month gives it back).
 * While the credit is on (fp_store_set_credit: the upstream configured),
 * an invoice that would take more than limit_fen - used_fen is answered
 * FP_ISSUE_CREDIT_EXCEEDED with nothing stored, and a stored one moves
 * used_fen in the same transaction, so concurrent requests cannot
 * overspend.  A month without a row is not enforced (its credit is not
 * known yet): the refresh writes it. */
#ifndef FAPIAO_CREDIT_H
#define FAPIAO_CREDIT_H

#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/store.h"

typedef struct fp_credit_row {
    int64_t seller_id;
    char month[7]; /* yyyyMM */
    int64_t limit_fen, used_fen;
    int64_t updated_at; /* unix ms */
} fp_credit_row;

/* on != 0: issuing checks and moves the credit (from the next batch). */
void fp_store_set_credit(fp_store *s, int on);
/* The month's limit as the platform has it.  A new row starts with
 * used_fen = first_used (what the platform counts as used: invoices of the
 * month issued before the first refresh); an existing row keeps its own. */
int fp_store_credit_set(fp_store *s, int64_t seller_id, const char *month, int64_t limit_fen,
                        int64_t first_used, fp_err *err);
/* Every row, by seller and month. */
int fp_store_credit_list(fp_store *s, void (*fn)(const fp_credit_row *c, void *arg), void *arg,
                         fp_err *err);

#endif
