/* test_ratelimit.c — ratelimit.h: GCRA buckets on a fake clock (exact burst,
 * exact spacing, exact Retry-After, no more than burst after idling), the
 * global + per-client table (independence, the order of the two checks,
 * overrides, eviction against a brute-force model of the same policy) and
 * threads hammering one bucket. */
#include "check.h"

#include "fapiao/err.h"
#include "fapiao/ratelimit.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define S  1000000000LL
#define MS 1000000LL
#define T0 (1000 * S) /* a monotonic clock is far from 0 */

static fp_ratelimit *rl_new(const fp_ratelimit_opts *o)
{
    fp_ratelimit *rl = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_ratelimit_new(o, &rl, &err) == 0 && rl, "fp_ratelimit_new: %s", err.msg))
        exit(1);
    return rl;
}

/* How many takes in a row succeed at one instant (stops at `most`). */
static int drain(fp_bucket *b, int64_t now, int most)
{
    int n = 0;
    while (n < most && fp_bucket_take(b, now, NULL))
        n++;
    return n;
}

static int drain_key(fp_ratelimit *rl, const char *key, int64_t now, int most)
{
    int n = 0;
    while (n < most && fp_ratelimit_check(rl, key, now, NULL, NULL))
        n++;
    return n;
}

/* ---- one bucket ---- */

static void test_bucket(void)
{
    static const struct {
        int64_t rate, burst;
        int64_t interval; /* expected T */
        int64_t period;   /* seconds; 0 = 1 */
    } cases[] = {
        {10, 5, 100 * MS},
        {1000, 1000, MS},
        {1, 1, S},
        {3, 2, 333333334},
        /* 1e9/3 rounded up */ {7, 0, 142857143}, /* burst 0 = rate */
        {200000, 50, 5000},
        /* per minute: T = 60 s / rate */
        {1, 1, 60 * S, 60},
        {30, 0, 2 * S, 60},
        {7, 3, 8571428572, 60}, /* 60e9/7 rounded up */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        int64_t rate = cases[i].rate, T = cases[i].interval;
        int64_t burst = cases[i].burst ? cases[i].burst : rate;
        check_ctx("bucket[%zu] rate %" PRId64 " burst %" PRId64 " per %" PRId64 " s", i, rate,
                  burst, cases[i].period);
        fp_bucket b;
        fp_bucket_init(&b, rate, cases[i].burst, cases[i].period);
        CHECK_EQ_INT(b.interval_ns, T);
        int64_t retry = -1;

        /* exactly `burst` at once, then the exact wait for one token */
        CHECK_EQ_INT(drain(&b, T0, (int)burst + 10), burst);
        CHECK_EQ_INT(fp_bucket_take(&b, T0, &retry), 0);
        CHECK_EQ_INT(retry, T);
        CHECK_EQ_INT(fp_bucket_peek(&b, T0, &retry), 0);
        CHECK_EQ_INT(retry, T);
        CHECK_EQ_INT(fp_bucket_take(&b, T0 + T - 1, &retry), 0);
        CHECK_EQ_INT(retry, 1);

        /* then exactly one every T */
        int spaced = 1;
        for (int k = 1; k <= 50; k++) {
            int64_t t = T0 + k * T;
            spaced &= fp_bucket_take(&b, t, &retry) == 1 && retry == 0;
            spaced &= fp_bucket_take(&b, t, &retry) == 0 && retry == T;
        }
        CHECK_MSG(spaced, "one token per interval");

        /* partial refill: two intervals idle give two tokens */
        int64_t t = T0 + 50 * T;
        if (burst >= 2) {
            CHECK_EQ_INT(drain(&b, t + 2 * T, 10), 2);
        }

        /* idle for long: back to burst, never above */
        t += 3600 * S;
        CHECK_EQ_INT(fp_bucket_peek(&b, t, &retry), 1);
        CHECK_EQ_INT(retry, 0);
        CHECK_EQ_INT(drain(&b, t, (int)burst + 10), burst);
        t += 100000 * S;
        CHECK_EQ_INT(drain(&b, t, (int)burst + 10), burst);
    }
    check_ctx("%s", "");
}

static void test_bucket_unlimited(void)
{
    check_ctx("bucket unlimited");
    fp_bucket b;
    fp_bucket_init(&b, 0, 0, 0);
    int64_t retry = -1;
    CHECK_EQ_INT(drain(&b, T0, 1000000), 1000000);
    CHECK_EQ_INT(fp_bucket_take(&b, T0, &retry), 1);
    CHECK_EQ_INT(retry, 0);
    /* a clock that is zero or negative (a fake one) is fine too */
    fp_bucket_init(&b, 1, 2, 1);
    CHECK_EQ_INT(drain(&b, 0, 10), 2);
    fp_bucket_init(&b, 1, 2, 1);
    CHECK_EQ_INT(drain(&b, -5 * S, 10), 2);
    CHECK_EQ_INT(drain(&b, -4 * S, 10), 1);
    check_ctx("%s", "");
}

static void test_retry_after_s(void)
{
    static const struct {
        int64_t ns, s;
    } cases[] = {
        {-5, 1},
        {0, 1},
        {1, 1},
        {S - 1, 1},
        {S, 1},
        {S + 1, 2},
        {2 * S + S / 2, 3},
        {3 * S, 3},
        {3600 * S + 1, 3601},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("retry_after_s[%zu] %" PRId64, i, cases[i].ns);
        CHECK_EQ_INT(fp_ratelimit_retry_after_s(cases[i].ns), cases[i].s);
    }
    check_ctx("%s", "");
}

/* ---- global + per-client ---- */

static void test_options(void)
{
    check_ctx("options");
    static const fp_ratelimit_opts bad[] = {
        {.global_rate = -1},
        {.global_burst = -1},
        {.client_rate = -1},
        {.client_burst = -1},
        {.max_keys = -1},
        {.max_keys = (1 << 24) + 1},
        {.client_period_s = -1},
        {.global_period_s = -1},
        {.global_period_s = FP_RATELIMIT_PERIOD_MAX + 1},
    };
    for (size_t i = 0; i < NCASES(bad); i++) {
        check_ctx("options bad[%zu]", i);
        fp_ratelimit *rl = (fp_ratelimit *)1;
        fp_err err = {0};
        CHECK_EQ_INT(fp_ratelimit_new(&bad[i], &rl, &err), FP_EINVAL);
        CHECK(rl == NULL);
        CHECK(err.msg[0] != 0);
    }
    check_ctx("options defaults");
    fp_ratelimit_free(NULL);
    fp_ratelimit *rl = rl_new(NULL); /* everything unlimited, 4096 keys */
    fp_ratelimit_stats st;
    CHECK_EQ_INT(drain_key(rl, "a", T0, 5000), 5000);
    fp_ratelimit_stats_get(rl, &st);
    CHECK_EQ_INT(st.max_keys, 4096);
    CHECK_EQ_INT(st.admitted, 5000);
    CHECK_EQ_INT(st.keys, 0); /* unlimited keys are not tracked */
    CHECK_EQ_STR(fp_ratelimit_scope_name(FP_RATELIMIT_ADMITTED), "admitted");
    CHECK_EQ_STR(fp_ratelimit_scope_name(FP_RATELIMIT_GLOBAL), "global");
    CHECK_EQ_STR(fp_ratelimit_scope_name(FP_RATELIMIT_CLIENT), "client");
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

static void test_per_key(void)
{
    check_ctx("per key");
    fp_ratelimit_opts o = {.client_rate = 10, .client_burst = 5};
    fp_ratelimit *rl = rl_new(&o);
    int64_t retry = -1;
    fp_ratelimit_scope which = -1;
    CHECK_EQ_INT(fp_ratelimit_check(rl, "a", T0, &retry, &which), 1);
    CHECK_EQ_INT(which, FP_RATELIMIT_ADMITTED);
    CHECK_EQ_INT(retry, 0);
    CHECK_EQ_INT(drain_key(rl, "a", T0, 100), 4);
    CHECK_EQ_INT(fp_ratelimit_check(rl, "a", T0, &retry, &which), 0);
    CHECK_EQ_INT(which, FP_RATELIMIT_CLIENT);
    CHECK_EQ_INT(retry, 100 * MS);
    /* other keys are independent */
    CHECK_EQ_INT(drain_key(rl, "b", T0, 100), 5);
    CHECK_EQ_INT(drain_key(rl, "c", T0 + 1, 100), 5);
    /* keys differing in length only, or only after the stored prefix */
    char long1[200], long2[200], prefix[FP_RATELIMIT_KEY_MAX + 1];
    memset(long1, 'k', sizeof long1 - 1);
    long1[sizeof long1 - 1] = 0;
    memcpy(long2, long1, sizeof long2);
    long2[150] = 'z';
    memcpy(prefix, long1, FP_RATELIMIT_KEY_MAX);
    prefix[FP_RATELIMIT_KEY_MAX] = 0;
    CHECK_EQ_INT(drain_key(rl, long1, T0, 100), 5);
    CHECK_EQ_INT(drain_key(rl, long2, T0, 100), 5);
    CHECK_EQ_INT(drain_key(rl, prefix, T0, 100), 5);
    CHECK_EQ_INT(drain_key(rl, long1, T0, 100), 0);
    /* no key: the global bucket only (unlimited here) */
    CHECK_EQ_INT(drain_key(rl, NULL, T0, 1000), 1000);
    CHECK_EQ_INT(drain_key(rl, "", T0, 1000), 1000);
    /* "a" refills at its own rate */
    CHECK_EQ_INT(drain_key(rl, "a", T0 + 100 * MS - 1, 100), 0);
    CHECK_EQ_INT(drain_key(rl, "a", T0 + 100 * MS, 100), 1);
    CHECK_EQ_INT(drain_key(rl, "a", T0 + 3600 * S, 100), 5);
    fp_ratelimit_stats st;
    fp_ratelimit_stats_get(rl, &st);
    CHECK_EQ_INT(st.keys, 6);
    CHECK_EQ_INT(st.refused_global, 0);
    CHECK(st.refused_client > 0);
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

static void test_global(void)
{
    check_ctx("global cap across keys");
    fp_ratelimit_opts o = {
        .global_rate = 100, .global_burst = 20, .client_rate = 10, .client_burst = 5};
    fp_ratelimit *rl = rl_new(&o);
    const char *keys[] = {"k1", "k2", "k3", "k4", "k5"};
    int total = 0;
    for (int i = 0; i < 4; i++)
        total += drain_key(rl, keys[i], T0, 100);
    CHECK_EQ_INT(total, 20);
    int64_t retry = -1;
    fp_ratelimit_scope which = -1;
    CHECK_EQ_INT(fp_ratelimit_check(rl, "k5", T0, &retry, &which), 0);
    CHECK_EQ_INT(which, FP_RATELIMIT_GLOBAL);
    CHECK_EQ_INT(retry, 10 * MS);
    /* a client refusal: the client's wait (longer than the global one) */
    CHECK_EQ_INT(fp_ratelimit_check(rl, "k1", T0, &retry, &which), 0);
    CHECK_EQ_INT(which, FP_RATELIMIT_CLIENT);
    CHECK_EQ_INT(retry, 100 * MS);
    /* 10 ms later one global token: k5 gets it, k1 is still over its own */
    CHECK_EQ_INT(fp_ratelimit_check(rl, "k1", T0 + 10 * MS, &retry, &which), 0);
    CHECK_EQ_INT(which, FP_RATELIMIT_CLIENT);
    CHECK_EQ_INT(drain_key(rl, "k5", T0 + 10 * MS, 100), 1);
    fp_ratelimit_free(rl);

    check_ctx("client refusal while the global wait is longer");
    fp_ratelimit_opts o1 = {
        .global_rate = 1, .global_burst = 6, .client_rate = 10, .client_burst = 5};
    rl = rl_new(&o1);
    CHECK_EQ_INT(drain_key(rl, "k1", T0, 100), 5);
    CHECK_EQ_INT(drain_key(rl, "k2", T0, 100), 1);
    /* k1 is refused by its own bucket (100 ms) but must not come back
     * before the global bucket has a token (1 s) */
    CHECK_EQ_INT(fp_ratelimit_check(rl, "k1", T0, &retry, &which), 0);
    CHECK_EQ_INT(which, FP_RATELIMIT_CLIENT);
    CHECK_EQ_INT(retry, S);
    CHECK_EQ_INT(drain_key(rl, "k1", T0 + S - 1, 100), 0);
    CHECK_EQ_INT(drain_key(rl, "k1", T0 + S, 100), 1);
    fp_ratelimit_free(rl);

    check_ctx("client refusals consume no global token");
    fp_ratelimit_opts o2 = {
        .global_rate = 1, .global_burst = 10, .client_rate = 1, .client_burst = 2};
    rl = rl_new(&o2);
    CHECK_EQ_INT(drain_key(rl, "greedy", T0, 1000), 2);
    for (int i = 0; i < 1000; i++)
        fp_ratelimit_check(rl, "greedy", T0, NULL, NULL);
    total = 0;
    for (int i = 0; i < 4; i++)
        total += drain_key(rl, keys[i], T0, 100);
    CHECK_EQ_INT(total, 8); /* 2 + 8 = the global burst of 10 */
    fp_ratelimit_free(rl);

    check_ctx("global refusals consume no client token");
    fp_ratelimit_opts o3 = {
        .global_rate = 1, .global_burst = 3, .client_rate = 1, .client_burst = 3};
    rl = rl_new(&o3);
    CHECK_EQ_INT(drain_key(rl, "a", T0, 100), 3); /* the global bucket is empty */
    int64_t t = T0;
    for (int i = 0; i < 100; i++, t += MS) {
        fp_ratelimit_check(rl, "b", t, &retry, &which);
        if (which != FP_RATELIMIT_GLOBAL)
            break;
    }
    CHECK_EQ_INT(which, FP_RATELIMIT_GLOBAL);
    /* 3 s later the global bucket is full; "b" still has all of its 3 */
    CHECK_EQ_INT(drain_key(rl, "b", T0 + 3 * S, 100), 3);
    fp_ratelimit_stats st;
    fp_ratelimit_stats_get(rl, &st);
    CHECK_EQ_INT(st.admitted, 6);
    CHECK_EQ_INT(st.refused_global, 100);
    CHECK_EQ_INT(st.refused_client, 2); /* the last call of each drain_key */
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

static void test_overrides(void)
{
    check_ctx("overrides");
    fp_ratelimit_opts o = {.client_rate = 1, .client_burst = 5, .max_keys = 16};
    fp_ratelimit *rl = rl_new(&o);
    fp_err err = {0};
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, "vip", 100, 50, &err), 0);
    CHECK_EQ_INT(drain_key(rl, "vip", T0, 1000), 50);
    CHECK_EQ_INT(drain_key(rl, "vip", T0 + 10 * MS, 1000), 1);
    CHECK_EQ_INT(drain_key(rl, "pleb", T0, 1000), 5);
    /* survives eviction: 40 other keys push "vip" out of a 16-key table */
    char k[32];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "other%d", i);
        fp_ratelimit_check(rl, k, T0 + S + i, NULL, NULL);
    }
    CHECK_EQ_INT(drain_key(rl, "vip", T0 + 2 * S, 1000), 50);
    /* retuning a tracked key: now unlimited, then back to the default */
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, "vip", 0, 0, &err), 0);
    CHECK_EQ_INT(drain_key(rl, "vip", T0 + 2 * S, 1000), 1000);
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, "vip", 1000, 1000, &err), 0);
    CHECK_EQ_INT(drain_key(rl, "vip", T0 + 10 * S, 2000), 1000); /* 1 s of debt */
    /* lowered to 10/s, burst 2: the debt is capped at the new burst (0.2 s),
     * so one token is back after 0.1 s (not after 0.9 s) */
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, "vip", 10, 2, &err), 0);
    CHECK_EQ_INT(drain_key(rl, "vip", T0 + 10 * S, 100), 0);
    CHECK_EQ_INT(drain_key(rl, "vip", T0 + 10 * S + 100 * MS - 1, 100), 0);
    CHECK_EQ_INT(drain_key(rl, "vip", T0 + 10 * S + 100 * MS, 100), 1);
    CHECK_EQ_INT(fp_ratelimit_clear_key_limit(rl, "vip"), 0);
    CHECK_EQ_INT(fp_ratelimit_clear_key_limit(rl, "vip"), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_ratelimit_clear_key_limit(rl, NULL), FP_ENOTFOUND);
    CHECK_EQ_INT(drain_key(rl, "vip", T0 + 20 * S, 1000), 5); /* the default again */
    /* errors */
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, "x", -1, 0, &err), FP_EINVAL);
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, "", 1, 0, &err), FP_EINVAL);
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, NULL, 1, 0, NULL), FP_EINVAL);
    int rc = 0, i;
    for (i = 0; i <= FP_RATELIMIT_MAX_OVERRIDES && rc == 0; i++) {
        snprintf(k, sizeof k, "ov%d", i);
        rc = fp_ratelimit_set_key_limit(rl, k, 1000, 0, &err);
    }
    CHECK_EQ_INT(rc, FP_ERANGE);
    CHECK_EQ_INT(i, FP_RATELIMIT_MAX_OVERRIDES + 1);
    /* replacing an existing override does not need a new entry */
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, "ov3", 1, 1, &err), 0);
    CHECK_EQ_INT(drain_key(rl, "ov3", T0, 100), 1);
    fp_ratelimit_free(rl);

    check_ctx("override with an unlimited default");
    fp_ratelimit_opts o2 = {0};
    rl = rl_new(&o2);
    CHECK_EQ_INT(fp_ratelimit_set_key_limit(rl, "limited", 1, 3, &err), 0);
    CHECK_EQ_INT(drain_key(rl, "limited", T0, 100), 3);
    CHECK_EQ_INT(drain_key(rl, "free", T0, 100), 100);
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

/* ---- eviction ---- */

static void test_eviction(void)
{
    check_ctx("eviction prefers full buckets");
    fp_ratelimit_opts o = {.client_rate = 1, .client_burst = 5, .max_keys = 16};
    fp_ratelimit *rl = rl_new(&o);
    char k[32];
    CHECK_EQ_INT(drain_key(rl, "heavy", T0, 100), 5); /* full again at T0 + 5 s */
    for (int i = 0; i < 15; i++) {
        snprintf(k, sizeof k, "light%d", i);
        CHECK_EQ_INT(fp_ratelimit_check(rl, k, T0 + MS + i, NULL, NULL), 1); /* full at +1 s */
    }
    fp_ratelimit_stats st;
    fp_ratelimit_stats_get(rl, &st);
    CHECK_EQ_INT(st.keys, 16);
    CHECK_EQ_INT(st.max_keys, 16);
    /* at +2 s a new key: the 15 light ones are full again and go, not the
     * least recently used "heavy", which has earned only 2 tokens back */
    CHECK_EQ_INT(fp_ratelimit_check(rl, "new", T0 + 2 * S, NULL, NULL), 1);
    fp_ratelimit_stats_get(rl, &st);
    CHECK_EQ_INT(st.evicted, 15);
    CHECK_EQ_INT(st.keys, 2);
    CHECK_EQ_INT(drain_key(rl, "heavy", T0 + 2 * S, 100), 2);
    fp_ratelimit_free(rl);

    check_ctx("eviction of a busy key");
    rl = rl_new(&o);
    CHECK_EQ_INT(drain_key(rl, "heavy", T0, 100), 5);
    for (int i = 0; i < 16; i++) { /* none full again: the LRU goes */
        snprintf(k, sizeof k, "busy%d", i);
        CHECK_EQ_INT(drain_key(rl, k, T0 + MS + i, 100), 5);
    }
    /* "heavy" was forgotten: it starts again full, with 5 and not more */
    CHECK_EQ_INT(drain_key(rl, "heavy", T0 + 2 * MS, 100), 5);
    CHECK_EQ_INT(drain_key(rl, "heavy", T0 + 2 * MS, 100), 0);
    fp_ratelimit_stats_get(rl, &st);
    CHECK_EQ_INT(st.evicted, 2);
    CHECK_EQ_INT(st.keys, 16);
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

/* A brute-force model of the same policy (one shard: max_keys < 32): a list
 * of keys, exact GCRA, eviction of every full bucket else the LRU.  The
 * table must make exactly the same decisions over a long random run, which
 * also exercises probing, wrap-around and backward-shift deletion. */
typedef struct model_key {
    int id;
    int64_t tat, last;
} model_key;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_model(void)
{
    enum { CAP = 16, KEYS = 50, OPS = 200000, BURST = 3 };
    const int64_t T = MS; /* rate 1000/s */
    check_ctx("model");
    fp_ratelimit_opts o = {.client_rate = 1000, .client_burst = BURST, .max_keys = CAP};
    fp_ratelimit *rl = rl_new(&o);
    model_key m[CAP];
    int n = 0, mismatches = 0, max_burst = 0;
    uint64_t evicted = 0;
    int64_t now = T0;
    int run_key = -1, run = 0; /* admissions of one key at one instant */
    for (int op = 0; op < OPS; op++) {
        /* mostly a few hot keys, sometimes the cold tail; time moves by
         * 1 ns .. 0.4 ms so ties never happen and buckets half refill */
        int id = rng() % 4 ? (int)(rng() % 8) : (int)(rng() % KEYS);
        int64_t step = (rng() % 3 == 0) ? 1 : 1 + (int64_t)(rng() % (400 * 1000));
        now += step;
        char k[16];
        snprintf(k, sizeof k, "key%d", id);

        int i;
        for (i = 0; i < n && m[i].id != id; i++)
            ;
        if (i == n) {
            if (n == CAP) {
                int kept = 0;
                for (int j = 0; j < n; j++)
                    if (m[j].tat > now)
                        m[kept++] = m[j];
                if (kept == n) {
                    int lru = 0;
                    for (int j = 1; j < n; j++)
                        if (m[j].last < m[lru].last)
                            lru = j;
                    m[lru] = m[--n];
                    kept = n;
                    evicted++;
                } else {
                    evicted += (uint64_t)(n - kept);
                }
                n = kept;
            }
            i = n++;
            m[i].id = id;
            m[i].tat = INT64_MIN;
        }
        m[i].last = now;
        int64_t base = m[i].tat > now ? m[i].tat : now;
        int want = base + T - now <= BURST * T;
        int64_t want_retry = want ? 0 : base + T - now - BURST * T;
        if (want)
            m[i].tat = base + T;

        int64_t retry = -1;
        int got = fp_ratelimit_check(rl, k, now, &retry, NULL);
        if (got != want || retry != want_retry) {
            if (mismatches++ < 5)
                CHECK_MSG(0, "op %d key%d: got %d retry %" PRId64 ", want %d retry %" PRId64, op,
                          id, got, retry, want, want_retry);
        }
        if (got && id == run_key && step == 1) {
            run++;
        } else {
            run_key = got ? id : -1;
            run = got;
        }
        if (run > max_burst)
            max_burst = run;
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(max_burst <= BURST);
    fp_ratelimit_stats st;
    fp_ratelimit_stats_get(rl, &st);
    CHECK_EQ_INT(st.keys, n);
    CHECK_EQ_INT(st.evicted, evicted);
    CHECK(evicted > 1000); /* the run did exercise eviction */
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

/* Many keys through a sharded table: capacity holds, every key still gets
 * exactly its burst whether tracked or evicted. */
static void test_many_keys(void)
{
    check_ctx("many keys");
    fp_ratelimit_opts o = {.client_rate = 1, .client_burst = 2, .max_keys = 1024};
    fp_ratelimit *rl = rl_new(&o);
    fp_ratelimit_stats st;
    fp_ratelimit_stats_get(rl, &st);
    CHECK(st.max_keys >= 1024 && st.max_keys < 1024 + 64);
    int bad = 0;
    char k[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof k, "client-%d", i % 5000);
        int got = drain_key(rl, k, T0 + i, 10);
        bad += got > 2;
    }
    CHECK_EQ_INT(bad, 0);
    fp_ratelimit_stats_get(rl, &st);
    CHECK(st.keys <= st.max_keys);
    CHECK(st.keys > 900);
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

/* ---- threads ---- */

enum { THREADS = 4, TAKES = 100000 };

typedef struct hammer {
    fp_bucket *b;
    fp_ratelimit *rl;
    const char *key;
    int admitted;
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    for (int i = 0; i < TAKES; i++) {
        if (h->b)
            h->admitted += fp_bucket_take(h->b, T0, NULL);
        else
            h->admitted += fp_ratelimit_check(h->rl, h->key, T0, NULL, NULL);
    }
    return NULL;
}

static int run_hammer(fp_bucket *b, fp_ratelimit *rl, const char *const keys[THREADS],
                      int per_thread[THREADS])
{
    pthread_t t[THREADS];
    hammer h[THREADS];
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        h[i] = (hammer){.b = b, .rl = rl, .key = keys ? keys[i] : NULL};
        if (pthread_create(&t[i], NULL, hammer_main, &h[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += h[i].admitted;
        if (per_thread)
            per_thread[i] = h[i].admitted;
    }
    return total;
}

static void test_threads(void)
{
    check_ctx("threads: one bucket");
    fp_bucket b;
    fp_bucket_init(&b, 10, 1000, 1);
    CHECK_EQ_INT(run_hammer(&b, NULL, NULL, NULL), 1000);

    check_ctx("threads: one key");
    fp_ratelimit_opts o = {.client_rate = 10, .client_burst = 1000};
    fp_ratelimit *rl = rl_new(&o);
    static const char *const same[THREADS] = {"k", "k", "k", "k"};
    CHECK_EQ_INT(run_hammer(NULL, rl, same, NULL), 1000);
    fp_ratelimit_free(rl);

    check_ctx("threads: keys under a global cap");
    fp_ratelimit_opts o2 = {
        .global_rate = 10, .global_burst = 1000, .client_rate = 10, .client_burst = 300};
    rl = rl_new(&o2);
    static const char *const keys[THREADS] = {"a", "b", "c", "d"};
    int per[THREADS];
    CHECK_EQ_INT(run_hammer(NULL, rl, keys, per), 1000);
    for (int i = 0; i < THREADS; i++)
        CHECK(per[i] >= 100 && per[i] <= 300);
    fp_ratelimit_stats st;
    fp_ratelimit_stats_get(rl, &st);
    CHECK_EQ_INT(st.admitted, 1000);
    CHECK_EQ_INT(st.admitted + st.refused_global + st.refused_client, THREADS * TAKES);
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

/* fp_ratelimit_peek answers what fp_ratelimit_check would, and changes
 * nothing: no token spent, no key tracked, no counter moved. */
static void test_peek(void)
{
    check_ctx("%s", "peek");
    fp_ratelimit_opts o = {.client_rate = 2, .client_burst = 3, .global_rate = 100};
    fp_ratelimit *rl = rl_new(&o);
    int64_t wait = -1;
    CHECK(fp_ratelimit_peek(rl, "ip:a", T0, &wait) == 1 && wait == 0);
    fp_ratelimit_stats st;
    fp_ratelimit_stats_get(rl, &st);
    CHECK(st.keys == 0 && st.admitted == 0); /* an untracked key stays untracked */
    for (int i = 0; i < 10; i++)             /* peeking spends nothing */
        CHECK(fp_ratelimit_peek(rl, "ip:a", T0, NULL) == 1);
    CHECK(drain_key(rl, "ip:a", T0, 10) == 3);
    CHECK(fp_ratelimit_peek(rl, "ip:a", T0, &wait) == 0);
    int64_t want = 0;
    CHECK(fp_ratelimit_check(rl, "ip:a", T0, &want, NULL) == 0);
    CHECK_MSG(wait == want && wait == S / 2, "peek wait %" PRId64 " check wait %" PRId64, wait,
              want);
    CHECK(fp_ratelimit_peek(rl, "ip:b", T0, NULL) == 1); /* keys are independent */
    CHECK(fp_ratelimit_peek(rl, "ip:a", T0 + S / 2, NULL) == 1);
    fp_ratelimit_stats_get(rl, &st);
    CHECK(st.keys == 1 && st.admitted == 3 && st.refused_client == 2);
    fp_ratelimit_free(rl);
    /* the global bucket is part of the answer */
    fp_ratelimit_opts g = {.client_rate = 100, .global_rate = 1, .global_burst = 1};
    rl = rl_new(&g);
    CHECK(fp_ratelimit_check(rl, "ip:a", T0, NULL, NULL) == 1);
    CHECK(fp_ratelimit_peek(rl, "ip:b", T0, &wait) == 0 && wait == S);
    CHECK(fp_ratelimit_peek(rl, NULL, T0, NULL) == 0);
    fp_ratelimit_free(rl);
    /* a rate per minute: 2 per 60 s, burst 3 */
    fp_ratelimit_opts m = {.client_rate = 2, .client_burst = 3, .client_period_s = 60};
    rl = rl_new(&m);
    CHECK(drain_key(rl, "k", T0, 10) == 3);
    CHECK(fp_ratelimit_check(rl, "k", T0 + 29 * S, &wait, NULL) == 0 && wait == S);
    CHECK(fp_ratelimit_check(rl, "k", T0 + 30 * S, NULL, NULL) == 1);
    CHECK(fp_ratelimit_peek(rl, "k", T0 + 59 * S, NULL) == 0);
    CHECK(fp_ratelimit_peek(rl, "k", T0 + 60 * S, NULL) == 1);
    fp_ratelimit_free(rl);
    fp_ratelimit_opts bad = {.client_rate = 1, .client_period_s = 86401};
    fp_err err = {0};
    CHECK(fp_ratelimit_new(&bad, &rl, &err) == FP_EINVAL);
    check_ctx("%s", "");
}

/* Rates per minute (--client-rate N/min, --global-rate N/min): one token
 * per 60 s / N, a refusal told to wait the minute out, both buckets. */
static void test_per_minute(void)
{
    check_ctx("%s", "per minute bucket");
    fp_bucket b;
    int64_t wait = -1;
    fp_bucket_init(&b, 1, 1, 60);
    CHECK(fp_bucket_take(&b, T0, &wait) == 1 && wait == 0);
    CHECK(fp_bucket_take(&b, T0 + MS, &wait) == 0);
    CHECK_EQ_INT(wait, 60 * S - MS);
    CHECK_EQ_INT(fp_ratelimit_retry_after_s(wait), 60);
    CHECK(fp_bucket_take(&b, T0 + 59 * S, &wait) == 0 && wait == S);
    CHECK(fp_bucket_take(&b, T0 + 60 * S, &wait) == 1 && wait == 0);
    CHECK(fp_bucket_take(&b, T0 + 60 * S, NULL) == 0);

    check_ctx("%s", "per minute client");
    fp_ratelimit_opts c = {.client_rate = 1, .client_burst = 1, .client_period_s = 60};
    fp_ratelimit *rl = rl_new(&c);
    fp_ratelimit_scope which = FP_RATELIMIT_ADMITTED;
    CHECK(fp_ratelimit_check(rl, "cli-a", T0, &wait, &which) == 1);
    CHECK(fp_ratelimit_check(rl, "cli-a", T0 + S, &wait, &which) == 0);
    CHECK(which == FP_RATELIMIT_CLIENT && fp_ratelimit_retry_after_s(wait) == 59);
    CHECK(fp_ratelimit_check(rl, "cli-b", T0 + S, NULL, NULL) == 1); /* its own bucket */
    CHECK(fp_ratelimit_check(rl, "cli-a", T0 + 60 * S, &wait, &which) == 1);
    CHECK(which == FP_RATELIMIT_ADMITTED && wait == 0);
    fp_ratelimit_free(rl);

    check_ctx("%s", "per minute global");
    fp_ratelimit_opts g = {.global_rate = 2, .global_burst = 1, .global_period_s = 60};
    rl = rl_new(&g);
    CHECK(fp_ratelimit_check(rl, "cli-a", T0, NULL, NULL) == 1);
    CHECK(fp_ratelimit_check(rl, "cli-b", T0, &wait, &which) == 0);
    CHECK(which == FP_RATELIMIT_GLOBAL && wait == 30 * S);
    CHECK(fp_ratelimit_check(rl, NULL, T0 + 30 * S, NULL, NULL) == 1);
    CHECK(fp_ratelimit_check(rl, NULL, T0 + 59 * S, &wait, NULL) == 0 && wait == S);
    fp_ratelimit_free(rl);
    check_ctx("%s", "");
}

int main(void)
{
    test_bucket();
    test_bucket_unlimited();
    test_retry_after_s();
    test_options();
    test_per_key();
    test_global();
    test_overrides();
    test_eviction();
    test_model();
    test_many_keys();
    test_threads();
    test_peek();
    test_per_minute();
    return check_summary();
}
