/* adaptive.c — the adaptive concurrency limit of adaptive.h.  Everything
 * happens under one mutex; state changes only in fp_adaptive_release (and
 * the round's in-flight peak in acquire). */
#include "fapiao/adaptive.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEF_INITIAL   20
#define DEF_MIN       2
#define DEF_MAX       1000
#define LIMIT_CAP     1000000
#define DEF_TOLERANCE 1500 /* permille: decrease when short > 1.5 x long */
#define DEF_GROW      1100 /* permille: increase when short < 1.1 x long */
#define DEF_PROBE_NS  (10 * 1000000000LL)
#define MIN_ROUND     32   /* samples in a round, at least */
#define PROBE_ROUND   64   /* samples in a probe's measuring round, at least */
#define GROW_DIV      32   /* increase: 1 + limit / 32 per round */
#define DEEPER        1700 /* permille: a probe goes on at half while latency falls this much */
#define FAIL_NUM      3    /* failure: limit * 3 / 4 */
#define FAIL_DEN      4
#define LAT_MAX       (3600 * 1000000000LL) /* samples are clamped to 1 h: no overflow */

enum { PROBE_OFF, PROBE_DRAIN, PROBE_MEASURE };

struct fp_adaptive {
    pthread_mutex_t mu;
    fp_adaptive_opts o;
    int limit, inflight;

    /* the current round */
    int round_len, round_n, round_peak;
    int64_t round_sum;

    int64_t short_ns, long_ns; /* 0: not measured yet */
    int rounds;                /* rounds completed, up to 2 */
    int recover_left;          /* completions to ignore after a decrease */

    int probe, probe_limit, probe_drain;
    int64_t probe_ref; /* mean latency at the level before this probe level */
    int64_t next_probe_ns;

    uint64_t admitted, refused, failures, decreases, probes;
};

int fp_adaptive_new(const fp_adaptive_opts *opts, fp_adaptive **out, fp_err *err)
{
    fp_adaptive_opts o = {0};
    if (opts)
        o = *opts;
    *out = NULL;
    if (o.min_limit <= 0)
        o.min_limit = DEF_MIN;
    if (o.max_limit <= 0)
        o.max_limit = DEF_MAX;
    if (o.initial_limit <= 0)
        o.initial_limit = DEF_INITIAL;
    if (o.tolerance_permille <= 0)
        o.tolerance_permille = DEF_TOLERANCE;
    if (o.grow_permille <= 0)
        o.grow_permille = DEF_GROW;
    if (o.probe_interval_ns == 0)
        o.probe_interval_ns = DEF_PROBE_NS;
    if (o.max_limit > LIMIT_CAP || o.min_limit > o.max_limit)
        return fp_fail(err, FP_EINVAL, "adaptive: need 1 <= min_limit (%d) <= max_limit (%d) <= %d",
                       o.min_limit, o.max_limit, LIMIT_CAP);
    if (o.grow_permille < 1000 || o.grow_permille >= o.tolerance_permille ||
        o.tolerance_permille > 100000)
        return fp_fail(err, FP_EINVAL,
                       "adaptive: need 1000 <= grow_permille (%d) < tolerance_permille (%d)",
                       o.grow_permille, o.tolerance_permille);
    if (o.initial_limit < o.min_limit)
        o.initial_limit = o.min_limit;
    if (o.initial_limit > o.max_limit)
        o.initial_limit = o.max_limit;

    fp_adaptive *a = calloc(1, sizeof *a);
    if (!a)
        return fp_fail(err, FP_ENOMEM, "adaptive: out of memory");
    if (pthread_mutex_init(&a->mu, NULL) != 0) {
        free(a);
        return fp_fail(err, FP_ENOMEM, "adaptive: mutex");
    }
    a->o = o;
    a->limit = o.initial_limit;
    a->next_probe_ns = INT64_MIN;
    a->round_len = a->limit > MIN_ROUND ? a->limit : MIN_ROUND;
    *out = a;
    return 0;
}

void fp_adaptive_free(fp_adaptive *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* The admission cap now: the limit, or half of it during a probe. */
static int cap_now(const fp_adaptive *a)
{
    if (a->probe != PROBE_OFF && a->probe_limit < a->limit)
        return a->probe_limit;
    return a->limit;
}

static void round_reset(fp_adaptive *a)
{
    int len = a->probe == PROBE_MEASURE ? a->probe_limit : a->limit;
    int least = a->probe == PROBE_MEASURE ? PROBE_ROUND : MIN_ROUND;
    a->round_len = len > least ? len : least;
    a->round_n = 0;
    a->round_sum = 0;
    a->round_peak = a->inflight;
}

static int clamp_limit(const fp_adaptive *a, int64_t v)
{
    if (v < a->o.min_limit)
        return a->o.min_limit;
    if (v > a->o.max_limit)
        return a->o.max_limit;
    return (int)v;
}

/* Lowers the limit and waits for the requests admitted under the old one
 * before deciding anything again. */
static void decrease(fp_adaptive *a, int64_t to)
{
    int v = clamp_limit(a, to);
    if (v < a->limit) {
        a->limit = v;
        a->decreases++;
    }
    a->recover_left = a->inflight;
    round_reset(a);
}

/* Holds admission at half the current level (the limit, or the previous
 * probe level) until the requests from before have drained, then measures
 * one round. */
static void probe_level(fp_adaptive *a, int from, int64_t ref)
{
    a->probe_limit = clamp_limit(a, from / 2);
    a->probe_ref = ref;
    a->probe_drain = a->inflight;
    a->probe = a->probe_drain ? PROBE_DRAIN : PROBE_MEASURE;
    a->recover_left = 0;
    round_reset(a);
}

/* A round under the probe's cap has completed: its mean is the no-load
 * latency from now on, lower or higher than before. */
static void probe_end(fp_adaptive *a, int64_t now_ns, int64_t mean)
{
    /* Halving concurrency cut latency nearly in half too: the store was
     * still queueing at this level, so its no-load latency is lower yet.
     * Go on at half again (from a limit far above capacity this finds the
     * baseline in one probe, log2(limit / capacity) levels deep). */
    if (a->probe_ref && a->probe_ref * 1000 / mean >= DEEPER && a->probe_limit > a->o.min_limit) {
        probe_level(a, a->probe_limit, mean);
        return;
    }
    a->long_ns = mean;
    a->short_ns = mean;
    a->probe = PROBE_OFF;
    /* the requests admitted under the probe's cap finish fast: they say
     * nothing about the full limit (counting them makes the limit creep up
     * after every probe) */
    a->recover_left = a->inflight;
    a->probes++;
    a->next_probe_ns = now_ns + a->o.probe_interval_ns;
    round_reset(a);
}

static void round_end(fp_adaptive *a)
{
    int64_t mean = a->round_sum / a->round_n;
    a->short_ns = mean;
    if (a->rounds < 2)
        a->rounds++;
    if (a->long_ns == 0) {
        /* first round: a provisional baseline (its requests met an empty
         * store all at once: not a steady state); the first probe follows
         * the second round */
        a->long_ns = mean;
        round_reset(a);
        return;
    }
    if (a->o.probe_interval_ns < 0) {
        if (mean < a->long_ns)
            a->long_ns = mean;
    } else if (mean * a->o.tolerance_permille < a->long_ns * 1000) {
        /* far below the baseline: the store got faster (a slow spell
         * taken as the new normal is over); measure it now.  Only a probe
         * sets `long`: taking the lowest round mean would follow the noise
         * down and hold the limit low. */
        a->next_probe_ns = INT64_MIN;
    }
    int64_t r = mean * 1000 / a->long_ns;
    if (r > a->o.tolerance_permille) {
        /* Little's law: limit * long / short requests in flight is what the
         * store completes at no-load latency; at most halve per round */
        int64_t to = (int64_t)a->limit * a->long_ns / mean;
        if (to < a->limit / 2)
            to = a->limit / 2;
        if (to >= a->limit)
            to = a->limit - 1;
        decrease(a, to);
        return;
    }
    if (r < a->o.grow_permille && 2 * a->round_peak >= a->limit)
        a->limit = clamp_limit(a, (int64_t)a->limit + 1 + a->limit / GROW_DIV);
    round_reset(a);
}

int fp_adaptive_acquire(fp_adaptive *a, int64_t now_ns)
{
    (void)now_ns;
    pthread_mutex_lock(&a->mu);
    int ok = a->inflight < cap_now(a);
    if (ok) {
        a->inflight++;
        a->admitted++;
        if (a->inflight > a->round_peak)
            a->round_peak = a->inflight;
    } else {
        a->refused++;
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

void fp_adaptive_release(fp_adaptive *a, int64_t now_ns, int64_t latency_ns, int ok)
{
    if (latency_ns < 1)
        latency_ns = 1;
    if (latency_ns > LAT_MAX)
        latency_ns = LAT_MAX;
    pthread_mutex_lock(&a->mu);
    if (a->inflight > 0)
        a->inflight--;
    /* a probe first waits for the requests admitted before it */
    int old = a->probe == PROBE_DRAIN;
    if (old && --a->probe_drain <= 0) {
        a->probe = PROBE_MEASURE;
        round_reset(a);
    }
    if (!ok) {
        /* a drop: cut at once, but once per recovery (a burst of failures
         * from the same overload is one signal); its latency says nothing */
        a->failures++;
        if (a->recover_left > 0)
            a->recover_left--;
        else
            decrease(a, (int64_t)a->limit * FAIL_NUM / FAIL_DEN);
        goto out;
    }
    if (old)
        goto out;
    if (a->probe == PROBE_MEASURE) {
        a->round_sum += latency_ns;
        if (++a->round_n >= a->round_len)
            probe_end(a, now_ns, a->round_sum / a->round_n);
        goto out;
    }
    if (a->recover_left > 0) {
        a->recover_left--;
    } else {
        a->round_sum += latency_ns;
        if (++a->round_n >= a->round_len)
            round_end(a);
    }
    if (a->o.probe_interval_ns > 0 && a->rounds >= 2 && a->probe == PROBE_OFF &&
        now_ns >= a->next_probe_ns)
        probe_level(a, a->limit, a->short_ns);
out:
    pthread_mutex_unlock(&a->mu);
}

int fp_adaptive_limit(fp_adaptive *a)
{
    pthread_mutex_lock(&a->mu);
    int v = a->limit;
    pthread_mutex_unlock(&a->mu);
    return v;
}

int fp_adaptive_inflight(fp_adaptive *a)
{
    pthread_mutex_lock(&a->mu);
    int v = a->inflight;
    pthread_mutex_unlock(&a->mu);
    return v;
}

void fp_adaptive_stats_get(fp_adaptive *a, fp_adaptive_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&a->mu);
    out->limit = a->limit;
    out->inflight = a->inflight;
    out->probing = a->probe != PROBE_OFF;
    out->short_ns = a->short_ns;
    out->long_ns = a->long_ns;
    out->admitted = a->admitted;
    out->refused = a->refused;
    out->failures = a->failures;
    out->decreases = a->decreases;
    out->probes = a->probes;
    pthread_mutex_unlock(&a->mu);
}
