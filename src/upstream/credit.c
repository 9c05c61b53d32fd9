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
 * issuing transaction calls fp_up_credit_fen (the store's credit.c, with
 * the check and the decrement atomic in it); fp_up_credit_effect is the
 * same rule on a stored document. */
#include "fapiao/money.h"
#include "fapiao/upstream.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fapiao/clock.h"

/* "2026-11-25T09:08:07+08:00" → "202611" (the document's time is CST). */
static int month_of(const char *issued_at, char out[7])
{
    if (!issued_at || strlen(issued_at) < 7 || issued_at[4] != '-')
        return FP_EINVAL;
    snprintf(out, 7, "%.4s%.2s", issued_at, issued_at + 5);
    return 0;
}

void fp_up_credit_month(int64_t unix_s, char out[7])
{
    time_t t = (time_t)(unix_s + FP_CST_OFFSET_S);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 7, "%04u%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u);
}

int64_t fp_up_credit_fen(int red, int64_t amount, const char *month, const char *blue_month)
{
    if (!red)
        return amount;
    /* amount < 0: given back, only within the blue's month */
    return blue_month && month && !strcmp(blue_month, month) ? amount : 0;
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
    char blue_month[7];
    if (d->red && month_of(blue_issued_at, blue_month))
        return fp_fail(err, FP_EINVAL, "red invoice %s: the blue's issue time is unknown",
                       d->number);
    *fen = fp_up_credit_fen(d->red, amount, month, d->red ? blue_month : NULL);
    return 0;
}
