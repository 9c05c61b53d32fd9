/* common.c — rules both backends apply the same way around their own SQL
 * (internal.h): the constant-time client-secret check, the red-form
 * caps against the blue invoice's earlier forms, and which answers to a
 * filed red form go to the tax platform. */
#include <stdlib.h>
#include <string.h>

#include "fapiao/auth.h"
#include "fapiao/crypto.h"
#include "internal.h"

void fp_secret_check_row(fp_secret_check *c, const unsigned char salt[16],
                         const unsigned char want[32], int64_t id)
{
    unsigned char h[32];
    fp_secret_hash(salt, c->secret, h);
    int eq = fp_ct_equal(h, want, 32);
    if (eq && !c->matched)
        c->matched_id = id;
    c->matched |= eq;
    c->candidates++;
}

int fp_secret_check_end(fp_secret_check *c, int rc, fp_client_info *out)
{
    for (; c->candidates < FP_SECRETS_LIVE_MAX; c->candidates++) { /* the same work, always */
        static const unsigned char dummy_salt[16];
        unsigned char h[32];
        fp_secret_hash(dummy_salt, c->secret, h);
    }
    if (rc == 0 && !c->matched)
        rc = FP_ECRYPTO;
    if (rc == 0)
        out->matched_secret_id = c->matched_id;
    return rc;
}

fp_red_used *fp_red_used_new(const fp_red_form *f, int *maxline)
{
    *maxline = 0;
    for (int i = 0; i < f->nlines; i++)
        if (f->lines[i].line + 1 > *maxline) /* + 1: a discounted line's discount */
            *maxline = f->lines[i].line + 1;
    return calloc((size_t)*maxline + 1, sizeof(fp_red_used));
}

int fp_red_form_fits(fp_red_form *f, const fp_red_used *used, int maxline, fp_errors *es)
{
    fp_red_settle(f, used, maxline);
    return fp_red_check_caps(f, used, maxline, es) < 0 ? FP_ERANGE : 0;
}

int fp_red_answer_check(const fp_red_form_rec *rec, const char *action, char *qrlx)
{
    /* confirm and reject answer a form the buyer filed; withdraw takes back
     * one we filed (docs/upstream.md "Red forms") */
    static const struct {
        const char *action, *by;
        char qrlx;
        fp_red_action act;
    } answers[] = {{"confirm", "buyer", 'Y', FP_RED_ACT_CONFIRM},
                   {"reject", "buyer", 'N', FP_RED_ACT_REJECT},
                   {"withdraw", "seller", 'C', FP_RED_ACT_WITHDRAW}};
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        if (strcmp(action, answers[i].action) != 0)
            continue;
        if (!rec->up_uuid[0])
            return 1;
        fp_red_state from;
        if (rec->up_answer[0] || strcmp(rec->initiated_by, answers[i].by) != 0 ||
            fp_red_state_parse(rec->state, &from) < 0 ||
            fp_red_transition(from, answers[i].act) < 0)
            return FP_ECONFLICT;
        *qrlx = answers[i].qrlx;
        return 0;
    }
    return FP_EINVAL;
}
