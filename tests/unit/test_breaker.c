/* test_breaker.c — the circuit breaker's states (breaker.h), driven with an
 * explicit clock. */
#include "check.h"
#include "fapiao/breaker.h"

static int changes;
static fp_breaker_state last_from, last_to;

static void on_change(const fp_breaker *b, fp_breaker_state from, fp_breaker_state to, void *arg)
{
    (void)b;
    (void)arg;
    changes++;
    last_from = from;
    last_to = to;
}

static void test_consecutive(void)
{
    check_ctx("consecutive");
    fp_breaker b;
    fp_breaker_opts o = {.consecutive = 5,
                         .open_ms = 1000,
                         .max_open_ms = 3000,
                         .min_volume = 1000,
                         .on_change = on_change};
    fp_breaker_init(&b, "t", &o);
    int64_t t = 100000, retry = 0;
    changes = 0;
    /* four failures and a success: the run is broken, still closed */
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(fp_breaker_allow(&b, t, NULL), 1);
        fp_breaker_record(&b, t, 0);
    }
    CHECK_EQ_INT(fp_breaker_allow(&b, t, NULL), 1);
    fp_breaker_record(&b, t, 1);
    CHECK_EQ_INT(fp_breaker_get(&b, t), FP_BREAKER_CLOSED);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(fp_breaker_allow(&b, t, NULL), 1);
        fp_breaker_record(&b, t, 0);
    }
    CHECK_EQ_INT(fp_breaker_get(&b, t), FP_BREAKER_OPEN);
    CHECK_EQ_INT(changes, 1);
    CHECK_EQ_INT(last_to, FP_BREAKER_OPEN);
    /* open: refused, with the time to come back */
    CHECK_EQ_INT(fp_breaker_allow(&b, t + 999, &retry), 0);
    CHECK_EQ_INT(retry, t + 1000);
    /* half-open at the deadline: one probe at a time */
    CHECK_EQ_INT(fp_breaker_allow(&b, t + 1000, NULL), 1);
    CHECK_EQ_INT(fp_breaker_get(&b, t + 1000), FP_BREAKER_HALF_OPEN);
    CHECK_EQ_INT(fp_breaker_allow(&b, t + 1000, &retry), 0);
    CHECK(retry > t + 1000);
    /* the probe fails: open again for twice as long */
    fp_breaker_record(&b, t + 1001, 0);
    CHECK_EQ_INT(fp_breaker_get(&b, t + 1001), FP_BREAKER_OPEN);
    CHECK_EQ_INT(fp_breaker_allow(&b, t + 1002, &retry), 0);
    CHECK_EQ_INT(retry, t + 1001 + 2000);
    /* and again: capped at max_open_ms */
    CHECK_EQ_INT(fp_breaker_allow(&b, t + 3001, NULL), 1);
    fp_breaker_record(&b, t + 3001, 0);
    CHECK_EQ_INT(fp_breaker_allow(&b, t + 3002, &retry), 0);
    CHECK_EQ_INT(retry, t + 3001 + 3000);
    /* a successful probe closes it, and the old failures are forgotten */
    CHECK_EQ_INT(fp_breaker_allow(&b, t + 6001, NULL), 1);
    fp_breaker_record(&b, t + 6001, 1);
    CHECK_EQ_INT(fp_breaker_get(&b, t + 6001), FP_BREAKER_CLOSED);
    CHECK_EQ_INT(last_from, FP_BREAKER_HALF_OPEN);
    CHECK_EQ_INT(last_to, FP_BREAKER_CLOSED);
    for (int i = 0; i < 4; i++)
        fp_breaker_record(&b, t + 6002, 0);
    CHECK_EQ_INT(fp_breaker_get(&b, t + 6002), FP_BREAKER_CLOSED);
    /* the next opening waits open_ms again, not the doubled time */
    fp_breaker_record(&b, t + 6002, 0);
    CHECK_EQ_INT(fp_breaker_allow(&b, t + 6003, &retry), 0);
    CHECK_EQ_INT(retry, t + 6002 + 1000);
    CHECK_EQ_INT(b.opened_total, 4);
    fp_breaker_destroy(&b);
}

static void test_rate(void)
{
    check_ctx("error rate");
    fp_breaker b;
    fp_breaker_opts o = {.consecutive = -1,
                         .min_volume = 20,
                         .fail_permille = 50,
                         .window_ms = 10000,
                         .on_change = on_change};
    fp_breaker_init(&b, "rate", &o);
    int64_t t = 5000000;
    /* 19 successes and 1 failure: 5 %, not above 5 % */
    for (int i = 0; i < 19; i++)
        fp_breaker_record(&b, t + i, 1);
    fp_breaker_record(&b, t + 19, 0);
    CHECK_EQ_INT(fp_breaker_get(&b, t + 20), FP_BREAKER_CLOSED);
    /* a second failure: 2 of 21 */
    fp_breaker_record(&b, t + 20, 0);
    CHECK_EQ_INT(fp_breaker_get(&b, t + 21), FP_BREAKER_OPEN);
    fp_breaker_destroy(&b);

    /* failures spread out: each falls out of the window before the next */
    check_ctx("error rate, window");
    fp_breaker_init(&b, "rate2", &o);
    for (int round = 0; round < 5; round++) {
        int64_t base = t + (int64_t)round * 20000;
        for (int i = 0; i < 25; i++)
            fp_breaker_record(&b, base + i, 1);
        fp_breaker_record(&b, base + 30, 0);
        CHECK_EQ_INT(fp_breaker_get(&b, base + 31), FP_BREAKER_CLOSED);
    }
    /* below min_volume nothing opens it, however bad */
    fp_breaker_init(&b, "rate3", &o);
    for (int i = 0; i < 19; i++)
        fp_breaker_record(&b, t + i, 0);
    CHECK_EQ_INT(fp_breaker_get(&b, t + 20), FP_BREAKER_CLOSED);
    fp_breaker_destroy(&b);
}

int main(void)
{
    test_consecutive();
    test_rate();
    return check_summary();
}
