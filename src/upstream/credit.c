/* credit.c — what an invoice does to the credit line (授信额度), the rules in
 * one place (docs/upstream.md §5, "Credit"):
 *
 *   - the basis is the month's total amount EXCLUDING VAT (金额, hjje), not
 *     价税合计: a blue invoice takes its total_amount in the month (China
 *     Standard Time) it was issued;
 *   - a red invoice against a blue one of the SAME month gives its amount
 *     back (its total_amount is negative); against an earlier month's blue
 *     it gives nothing back.
 *
 * Both rules come from the platform's published descriptions as public
 * sources repeat them; check them against the official manual.  The
 * issuing transaction will call this (with the check and the decrement
 * atomic); today it is the rule and its tests. */
#include "fapiao/money.h"
#include "fapiao/upstream.h"

#include <stdio.h>
#include <string.h>

/* "2026-11-25T09:08:07+08:00" → "202611" (the document's time is CST). */
static int month_of(const char *issued_at, char out[7])
{
    if (!issued_at || strlen(issued_at) < 7 || issued_at[4] != '-')
        return FP_EINVAL;
    snprintf(out, 7, "%.4s%.2s", issued_at, issued_at + 5);
    return 0;
}

int fp_up_credit_effect(const fp_invoice_doc *d, const char *blue_issued_at, int64_t *fen,
                        char month[7], fp_err *err)
{
    *fen = 0;
    if (month_of(d->issued_at, month))
        return fp_fail(err, FP_EINVAL, "invoice %s: issued_at is not yyyy-MM…", d->number);
    int64_t amount;
    if (fp_money_parse(d->total_amount, &amount))
        return fp_fail(err, FP_EINVAL, "invoice %s: total_amount is not an amount", d->number);
    if (!d->red) {
        *fen = amount;
        return 0;
    }
    char blue_month[7];
    if (month_of(blue_issued_at, blue_month))
        return fp_fail(err, FP_EINVAL, "red invoice %s: the blue's issue time is unknown",
                       d->number);
    *fen = strcmp(blue_month, month) == 0 ? amount : 0; /* amount < 0: given back */
    return 0;
}
