/* clock.c — the issue clock's verdict (docs/operations.md, "Clock").
 *
 * An invoice's issue time (开票日期) and its number's year must never go
 * backwards in the store: the store keeps a high-water mark of issue times.
 * A small backward step (an NTP correction) issues at the mark; a larger
 * one is refused until the clock passes the mark again.  A forward jump is
 * recognised by comparing the wall clock with CLOCK_BOOTTIME (which counts
 * suspended time too): since the last issue, the wall clock may not have
 * moved more than jump_s further than real time did.  A bogus jump thus
 * cannot raise the mark; an operator confirms a real one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/clock.h"
#include "internal.h"

fp_clock_verdict fp_issue_clock_decide(const fp_issue_clock *c, int64_t now, int64_t boot,
                                       int64_t *use)
{
    if (c->mark > 0 && now < c->mark - c->step_s)
        return FP_CLOCK_BEHIND;
    int64_t expected = c->base_wall + (boot - c->base_boot);
    if (c->base_wall > 0 && now - expected > c->jump_s)
        return FP_CLOCK_JUMPED;
    *use = now < c->mark ? c->mark : now;
    return FP_CLOCK_OK;
}

void fp_issue_clock_read(const fp_store_opts *o, int64_t *wall, int64_t *boot)
{
    if (o->clock_now) {
        o->clock_now(wall, boot);
        return;
    }
    *boot = fp_boot_ns() / 1000000000;
    *wall = fp_wall_s();
}

void fp_issue_clock_text(int64_t t, char out[32])
{
    struct tm tm;
    fp_cst_tm(t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

fp_clock_verdict fp_issue_clock_take(fp_issue_clock *c, int64_t *confirmed_seen,
                                     int (*confirmed)(void *arg, int64_t *at), void *arg,
                                     fp_issue_req *r, int64_t boot)
{
    int64_t t = 0, at = 0;
    fp_clock_verdict v = fp_issue_clock_decide(c, r->issued_at, boot, &t);
    /* an operator's confirmation (fapiao clock confirm) made on this
     * clock: the jump is real, take the clock as it is now */
    if (v == FP_CLOCK_JUMPED && confirmed(arg, &at) == 0 && at > *confirmed_seen) {
        *confirmed_seen = at;
        if (llabs(r->issued_at - at) <= c->jump_s) {
            c->base_wall = r->issued_at;
            c->base_boot = boot;
            v = fp_issue_clock_decide(c, r->issued_at, boot, &t);
        }
    }
    if (v != FP_CLOCK_OK) {
        r->result = v == FP_CLOCK_BEHIND ? FP_ISSUE_CLOCK_BEHIND : FP_ISSUE_CLOCK_JUMPED;
        r->clock_mark = c->mark;
        /* behind: until the clock is within the step of the mark */
        int64_t wait = v == FP_CLOCK_BEHIND ? c->mark - c->step_s - r->issued_at : 60;
        r->clock_retry_s = wait < 1 ? 1 : wait > 3600 ? 3600 : (int)wait;
        return v;
    }
    if (t != r->issued_at && r->doc.json) {
        /* the first "issued_at":" is the top-level key: it comes before
         * every nested object, and a string cannot hold an unescaped quote */
        static const char key[] = "\"issued_at\":\"";
        char *p = memmem(r->doc.json, r->doc.len, key, sizeof key - 1);
        char txt[32];
        fp_issue_clock_text(t, txt);
        size_t n = strlen(txt);
        if (p && (size_t)(p - r->doc.json) + sizeof key - 1 + n < r->doc.len &&
            p[sizeof key - 1 + n] == '"')
            memcpy(p + sizeof key - 1, txt, n);
    }
    r->issued_at = t;
    /* the mark moves now (later requests of the batch see it); a rollback
     * puts it back */
    if (t > c->mark)
        c->mark = t;
    c->base_wall = t;
    c->base_boot = boot;
    return FP_CLOCK_OK;
}
