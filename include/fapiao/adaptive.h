/* adaptive.h — an adaptive concurrency limit for in-flight requests.
 *
 * Admission is capped at `limit` requests in flight, and the limit follows
 * the latency the store gives us: it grows while latency stays near its
 * no-load level and shrinks when requests queue, so a slow store sheds load
 * early (a quick refusal) instead of letting every request wait.  Integer
 * arithmetic only (src/core has no floating point), so a run is
 * deterministic for a given sequence of calls.
 *
 * Two latency estimates:
 *   short  the median latency of the last round.  A round is at least
 *          `limit` completed requests (at least 32: about one round trip of
 *          the whole window) and lasts at least min_round_ns (0: no
 *          minimum; the server uses 50 ms).  The median, not the mean: a
 *          slow fsync or a thread that loses its CPU for a few ms delays a
 *          whole batch of requests at once, and a round's mean jumps
 *          several-fold for reasons a lower limit would not change;
 *   long   the no-load latency, measured by a probe (below) and only by a
 *          probe, so it can rise when the store has become slower for good.
 * Neither a slow EWMA of all samples nor the lowest round seen would do for
 * `long`: with the limit above capacity the EWMA learns the queueing delay
 * as normal and the limit drifts up for ever (and from a start above
 * capacity it never sees the no-load latency at all); the lowest round
 * follows the noise down and holds the limit too low.
 *
 * At the end of each round, with r = short / long, and only if the limit
 * refused requests during the round (otherwise the limit is not what bounds
 * the concurrency: latency then rises with the load, and a lower limit
 * would refuse requests without making anyone faster; nor is there
 * evidence for more):
 *   r > tolerance (1.5)  in two rounds in a row (one is noise as often as
 *                        not), each with refusals >= 1/16 of its
 *                        completions (a stall piles a few ms of requests
 *                        up to the limit and gets a handful refused; that
 *                        latency is the stall's, not the limit's):
 *                        decrease, gradient style, to limit * long *
 *                        tolerance / short (Little's law: the concurrency
 *                        that keeps the throughput at the tolerance line),
 *                        using the lower of the two rounds, but at most
 *                        halved per decision;
 *   r < grow (1.1)       additive increase: limit += 1 + limit / 32;
 *   otherwise            hold.
 *   r < 1 / tolerance    also (refusals or not): the store got much faster
 *                        (a slow spell is over): probe now.
 * A failure (ok = 0: error or timeout) is a drop: limit *= 3/4 at once.
 * After any decrease the requests already in flight (admitted under the old
 * limit) complete before the next decision, like TCP's recovery, so one
 * congestion event is not counted twice; likewise after a probe.
 *
 * Probe (like BBR's ProbeRTT): after the second round and then every
 * probe_interval_ns, but only once the limit has refused a request since
 * the last probe (`long` serves only the decisions of rounds with
 * refusals; while the clients stay below the limit, the probe's half cap
 * would be the only thing refusing them), admission is held at limit / 2
 * until the requests from before have drained, and one round of at least 64 requests is measured
 * under it.  If latency fell by 20 % or more (short / probe >= 1.25), the
 * store was still queueing: the probe goes on at half again, so from a
 * limit far above capacity one probe finds the baseline in log2(limit / C)
 * levels.  (20 %, not 50 %: a store that batches, like a group commit on a
 * CPU it shares with TLS, answers only 20-40 % faster at half the
 * concurrency while it queues.)  Otherwise that round's median becomes
 * `long`.  A probe costs about one round at half the limit per interval.
 * probe_interval_ns < 0 disables probes; `long` is then the first round's
 * median, lowered by any lower round.
 *
 * In a store that serves C requests at once with flat latency below C and
 * latency growing linearly with the queue above, the limit settles in
 * [0.9 C, 1.6 C] from a start far below or far above C, with goodput >= 90 %
 * of capacity, also with service times varying by +-50 % and with stalls
 * that delay a quarter of a round (test_adaptive.c).  A group-commit store
 * is different: its latency grows with its load well below saturation, so
 * the server uses tolerance 2.0, grow 1.5 and 50 ms rounds (server.c;
 * bench/overload.sh measures the result).
 *
 * Thread-safe: one mutex, taken once by acquire and once by release or
 * cancel. */
#ifndef FAPIAO_ADAPTIVE_H
#define FAPIAO_ADAPTIVE_H

#include "fapiao/err.h"

#include <stdint.h>

typedef struct fp_adaptive fp_adaptive;

typedef struct fp_adaptive_opts {
    int initial_limit;         /* default 20 (clamped into [min, max]) */
    int min_limit;             /* default 2 */
    int max_limit;             /* default 1000; at most 1000000 */
    int tolerance_permille;    /* decrease above short/long = this/1000; default 1500 */
    int grow_permille;         /* increase below short/long = this/1000; default 1100 */
    int64_t probe_interval_ns; /* default 10 s; < 0 disables probes */
    int64_t min_round_ns;      /* a round lasts at least this long; default 0: no minimum */
} fp_adaptive_opts;

/* FP_EINVAL for inconsistent options (min > max, grow >= tolerance, ...);
 * FP_ENOMEM. */
int fp_adaptive_new(const fp_adaptive_opts *o, fp_adaptive **out, fp_err *err);
void fp_adaptive_free(fp_adaptive *a);

/* 1: admitted (in flight + 1; call fp_adaptive_release exactly once when it
 * ends); 0: refused, the limit is reached. */
int fp_adaptive_acquire(fp_adaptive *a, int64_t now_ns);

/* Ends an admitted request: latency_ns its duration, ok 0 for a failure or
 * timeout (a drop signal: the limit is cut). */
void fp_adaptive_release(fp_adaptive *a, int64_t now_ns, int64_t latency_ns, int ok);

/* Ends an admitted request that never reached the store (answered before
 * it was submitted: a bad body, a replay, a refusal further on): in flight
 * - 1, no latency sample, no signal. */
void fp_adaptive_cancel(fp_adaptive *a);

int fp_adaptive_limit(fp_adaptive *a);    /* the current limit (not lowered by a probe) */
int fp_adaptive_inflight(fp_adaptive *a); /* admitted and not yet released */

typedef struct fp_adaptive_stats {
    int limit, inflight;
    int probing;        /* 1 while a probe holds admission at limit / 2 */
    int64_t short_ns;   /* last round's mean latency (0 before the first) */
    int64_t long_ns;    /* the no-load latency estimate (0 before the first) */
    uint64_t admitted;  /* acquire returned 1 */
    uint64_t refused;   /* acquire returned 0 */
    uint64_t failures;  /* releases with ok = 0 */
    uint64_t decreases; /* limit cuts (latency or failure) */
    uint64_t probes;    /* probes completed */
    uint64_t cancelled; /* fp_adaptive_cancel calls */
} fp_adaptive_stats;

void fp_adaptive_stats_get(fp_adaptive *a, fp_adaptive_stats *out);

#endif
