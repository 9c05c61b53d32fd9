/* adaptive.c — the adaptive concurrency limit of adaptive.h.  Everything
 * happens under one mutex; state changes only in fp_adaptive_release and
 * fp_adaptive_cancel (and the round's "someone was refused" flag in
 * acquire). */
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
#define DEEPER        1250 /* permille: a probe goes on at half while latency falls by 20 % */
#define REFUSED_DIV   16   /* a cut needs refusals >= completions / 16 in the round */
#define FAIL_NUM      3    /* failure: limit * 3 / 4 */
#define FAIL_DEN      4
#define LAT_MAX       (3600 * 1000000000LL) /* samples are clamped to 1 h: no overflow */
#define SUB_BITS      4                     /* histogram: 16 buckets per power of two (6 % wide) */
#define NBUCKETS      (64 << SUB_BITS)

enum { PROBE_OFF, PROBE_DRAIN, PROBE_MEASURE };

struct fp_adaptive {
    pthread_mutex_t mu;
    fp_adaptive_opts o;
    int limit, inflight;

    /* the current round */
    int round_len, round_n;
    int round_refused;       /* acquire said no this many times during the round */
    int64_t round_t0;        /* the round's first sample, INT64_MIN before it */
    uint32_t hist[NBUCKETS]; /* the round's latencies, log-bucketed (for the median) */

    int64_t short_ns, long_ns; /* 0: not measured yet */
    int rounds;                /* rounds completed, up to 2 */
    int recover_left;          /* completions to ignore after a decrease */
    int over;                  /* rounds in a row over tolerance (a cut takes 2) */
    int64_t over_lat;          /* the lower median of those rounds */

    int probe, probe_limit, probe_drain;
    int64_t probe_ref; /* median latency at the level before this probe level */
    int64_t next_probe_ns;
    uint64_t refused_mark; /* `refused` when the last probe ended (or at the start) */

    uint64_t admitted, refused, failures, decreases, probes, cancelled;
};

static void round_reset(fp_adaptive *a);

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
    round_reset(a);
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

/* Latency histogram: bucket = the top SUB_BITS + 1 significant bits. */
static int bucket_of(int64_t ns)
{
    uint64_t v = (uint64_t)ns;
    int msb = 63 - __builtin_clzll(v | 1);
    if (msb < SUB_BITS)
        return (int)v;
    return (msb - SUB_BITS + 1) * (1 << SUB_BITS) +
           (int)((v >> (msb - SUB_BITS)) & ((1 << SUB_BITS) - 1));
}

/* the middle of a bucket's range */
static int64_t bucket_mid(int b)
{
    if (b < (1 << SUB_BITS))
        return b;
    int e = b / (1 << SUB_BITS) - 1, m = b % (1 << SUB_BITS);
    int64_t lo = (int64_t)((1 << SUB_BITS) + m) << e;
    return lo + (((int64_t)1 << e) >> 1);
}

static void sample(fp_adaptive *a, int64_t now_ns, int64_t ns)
{
    if (a->round_t0 == INT64_MIN)
        a->round_t0 = now_ns;
    a->hist[bucket_of(ns)]++;
    a->round_n++;
}

static int round_done(const fp_adaptive *a, int64_t now_ns)
{
    return a->round_n >= a->round_len &&
           (a->o.min_round_ns <= 0 || now_ns - a->round_t0 >= a->o.min_round_ns);
}

/* The round's median latency.  Not the mean: a commit that stalls on a slow
 * fsync, or a thread that loses its CPU for a few ms, delays a whole batch
 * of requests at once, and a round's mean jumps several-fold for reasons
 * that admitting fewer requests would not change; the median moves only
 * when most requests got slower. */
static int64_t round_median(const fp_adaptive *a)
{
    int want = (a->round_n + 1) / 2, seen = 0;
    for (int b = 0; b < NBUCKETS; b++) {
        seen += (int)a->hist[b];
        if (seen >= want)
            return bucket_mid(b);
    }
    return 1;
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
    a->round_refused = 0;
    a->round_t0 = INT64_MIN;
    memset(a->hist, 0, sizeof a->hist);
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
    a->over = 0;
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
    a->over = 0;
    round_reset(a);
}

/* A round under the probe's cap has completed: its median is the no-load
 * latency from now on, lower or higher than before. */
static void probe_end(fp_adaptive *a, int64_t now_ns, int64_t mean)
{
    /* Halving concurrency cut latency by a fifth or more: the store was
     * still queueing at this level, so its no-load latency is lower yet.
     * Go on at half again (from a limit far above capacity this finds the
     * baseline in one probe, log2(limit / capacity) levels deep).  A fifth,
     * not a half: a store that batches (group commit) on a CPU it shares
     * with the rest of the server answers only 20-40 % faster at half the
     * concurrency while it queues. */
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
    a->refused_mark = a->refused; /* its own refusals do not call for the next one */
    round_reset(a);
}

static void round_end(fp_adaptive *a)
{
    int64_t mean = round_median(a);
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
         * sets `long`: taking the lowest round would follow the noise
         * down and hold the limit low. */
        a->next_probe_ns = INT64_MIN;
    }
    int64_t r = mean * 1000 / a->long_ns;
    /* Only a round in which the limit turned requests away says anything
     * about the limit: without refusals the latency is the load's doing
     * (the store and its CPU are busier), and a lower limit would only
     * refuse requests without making anyone faster.  A cut takes more
     * than a few refusals: one for every REFUSED_DIV completions at
     * least.  A stall (a slow fsync, the CPU busy elsewhere) piles the
     * requests of a few ms up to the limit and a handful get refused,
     * while the latency that comes with it is the load's, not the
     * limit's; cutting then only starts more refusals.  Growth takes one
     * refusal: someone was turned away while latency was fine. */
    int bound = a->round_refused > 0;
    int binds = (int64_t)a->round_refused * REFUSED_DIV >= a->round_n;
    if (!(r > a->o.tolerance_permille && binds))
        a->over = 0;
    else if (a->over++ == 0 || mean < a->over_lat)
        a->over_lat = mean;
    if (a->over == 1) {
        /* one round over tolerance is noise as often as not (a slow fsync
         * spell, the CPU lent to another process): cut on the second in a
         * row, by the lower of the two */
        round_reset(a);
        return;
    }
    if (a->over >= 2) {
        /* Little's law: at `short` the store completes limit / short
         * requests per unit of time; at the tolerance line (long *
         * tolerance) the same throughput needs limit * line / short in
         * flight.  At most halve per cut. */
        int64_t line = a->long_ns * a->o.tolerance_permille / 1000; /* < over_lat */
        int64_t to = (int64_t)a->limit * line / a->over_lat;
        if (to < a->limit / 2)
            to = a->limit / 2;
        if (to >= a->limit)
            to = a->limit - 1;
        decrease(a, to);
        return;
    }
    if (r < a->o.grow_permille && bound)
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
    } else {
        a->refused++;
        if (a->round_refused < INT32_MAX)
            a->round_refused++;
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
        sample(a, now_ns, latency_ns);
        if (round_done(a, now_ns))
            probe_end(a, now_ns, round_median(a));
        goto out;
    }
    if (a->recover_left > 0) {
        a->recover_left--;
    } else {
        sample(a, now_ns, latency_ns);
        if (round_done(a, now_ns))
            round_end(a);
    }
    /* A probe is due only once the limit has turned someone away since the
     * last one: `long` is only used by the decisions of rounds with
     * refusals, and while the concurrency stays below the limit, a probe's
     * half cap is what refuses requests — every probe_interval, a burst of
     * 429s to clients that the limit never bounded (docs/performance.md
     * §5c). */
    if (a->o.probe_interval_ns > 0 && a->rounds >= 2 && a->probe == PROBE_OFF &&
        now_ns >= a->next_probe_ns && a->refused > a->refused_mark)
        probe_level(a, a->limit, a->short_ns);
out:
    pthread_mutex_unlock(&a->mu);
}

void fp_adaptive_cancel(fp_adaptive *a)
{
    pthread_mutex_lock(&a->mu);
    if (a->inflight > 0)
        a->inflight--;
    a->cancelled++;
    if (a->probe == PROBE_DRAIN && --a->probe_drain <= 0) {
        a->probe = PROBE_MEASURE;
        round_reset(a);
    }
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
    out->cancelled = a->cancelled;
    pthread_mutex_unlock(&a->mu);
}
