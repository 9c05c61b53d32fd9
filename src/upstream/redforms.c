/* redforms.c — red forms on the tax platform (docs/upstream.md "Red
 * forms"): the platform's form states (hzqrxxztDm) as our form states, in
 * one table, and the business serial that files a form once.
 *
 * The codes 01–10 are as public third-party API documents repeat the
 * platform's list; 11–13 are not named in any source found: read as voided
 * (withdrawn), so a red invoice is never issued on them (**check** all of
 * them against the official manual). */
#include "fapiao/upstream.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *code;
    fp_red_state ours;
} states[] = {
    {"01", FP_RED_ST_NO_CONFIRMATION_NEEDED}, /* 无需确认 */
    {"02", FP_RED_ST_AWAITING_BUYER},         /* 销方录入待购方确认 */
    {"03", FP_RED_ST_AWAITING_SELLER},        /* 购方录入待销方确认 */
    {"04", FP_RED_ST_CONFIRMED},              /* 购销双方已确认 */
    {"05", FP_RED_ST_REJECTED},               /* 作废（销方录入购方否认） */
    {"06", FP_RED_ST_REJECTED},               /* 作废（购方录入销方否认） */
    {"07", FP_RED_ST_LAPSED},                 /* 作废（超72小时未确认） */
    {"08", FP_RED_ST_WITHDRAWN},              /* 作废（发起方撤销） */
    {"09", FP_RED_ST_WITHDRAWN},              /* 作废（确认后撤销） */
    {"10", FP_RED_ST_WITHDRAWN},              /* 作废（异常凭证） */
    {"11", FP_RED_ST_WITHDRAWN},              /* not in the sources: voided */
    {"12", FP_RED_ST_WITHDRAWN},              /* not in the sources: voided */
    {"13", FP_RED_ST_WITHDRAWN},              /* not in the sources: voided */
};

int fp_up_red_state(const char *hzqrxxztDm, fp_red_state *out)
{
    for (size_t i = 0; hzqrxxztDm && i < sizeof states / sizeof states[0]; i++)
        if (strcmp(hzqrxxztDm, states[i].code) == 0) {
            *out = states[i].ours;
            return 0;
        }
    return FP_EINVAL;
}

void fp_up_red_serial(const char *tax_id, const char *form_no, char out[64])
{
    snprintf(out, 64, "HZ%.20s%.24s", tax_id, form_no);
}
