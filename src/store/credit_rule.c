/* credit_rule.c — the credit line's effect of an issue request (credit.h),
 * for both backends' issuing transactions (sqlite/credit_tx.c,
 * pg/credit.c): src/upstream/credit.c's rule on the request's parts. */
#include "fapiao/upstream.h"
#include "internal.h"

int fp_store_credit_delta(int on, const fp_issue_req *r, int64_t *delta, char month[7])
{
    *delta = 0;
    month[0] = 0;
    if (!on)
        return 0;
    fp_up_credit_month(r->issued_at, month);
    *delta = fp_up_credit_fen(r->red_form_id != 0, r->total_amount, month, r->blue_month);
    return *delta > 0; /* a red's give-back or nothing: never refused */
}
