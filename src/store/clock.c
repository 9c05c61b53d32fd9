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
#include "fapiao/store.h"

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
