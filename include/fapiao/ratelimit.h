/* ratelimit.h — token buckets: one global, one per client credential.
 *
 * Buckets use GCRA (the generic cell rate algorithm), which is a token bucket
 * stored as one number: the "theoretical arrival time" (TAT) at which the
 * bucket would be full again, in monotonic nanoseconds.  With a rate of N
 * requests per period P seconds (P = 1 or 60 from the CLI: N/s, N/min),
 * emission interval T = P x 1e9 / N ns and burst B a request at time `now`
 * is admitted when
 *
 *     max(TAT, now) + T - now <= B * T          and then TAT = max(TAT, now) + T
 *
 * so B requests pass at once from a full bucket, then one every T; a bucket
 * left idle is full again once now >= TAT and never holds more than B, since
 * max() forgets how long ago that was.  A refused request learns the exact
 * wait until one token is back: max(TAT, now) + T - B * T - now.  All
 * arithmetic is integer and exact when N divides P x 1e9; otherwise T is
 * rounded up, so the enforced rate is never above the configured one (off by
 * less than 1 ns per request).
 *
 * Time is always passed in by the caller (CLOCK_MONOTONIC ns in the server, a
 * fake clock in tests).  rate 0 means unlimited; burst 0 means "one period's
 * worth" (burst = rate); period 0 means one second.
 *
 * fp_ratelimit checks a request against its client's bucket and the global
 * bucket.  Order: client first, then global, the client's decision held under
 * its shard lock while the global token is taken, and committed only if the
 * global bucket admits.  So a refusal consumes nothing anywhere: a client over
 * its own limit cannot drain the global budget of everyone else (that is why
 * the client goes first), and a global refusal leaves the client's tokens for
 * its retry.
 *
 * Client buckets live in a fixed-capacity hash table (max_keys, default
 * 4096; memory is bounded whatever the number of credentials).  When a new
 * key arrives at a full table, every key whose bucket is full again (TAT <=
 * now: forgetting it loses nothing, GCRA would start it full anyway) is
 * evicted; if there is none, the least recently used key is.  An evicted key
 * simply starts again with a full bucket: at most B at once, never more, but
 * a heavy key evicted while not full may get up to B extra requests over its
 * rate — the global bucket still bounds the total.  Keys are compared on
 * their first FP_RATELIMIT_KEY_MAX bytes, their length and a 64-bit hash of
 * the whole key.
 *
 * Thread-safe: the global bucket is one atomic word updated by CAS; the key
 * table is split into up to 64 shards, each with its own mutex. */
#ifndef FAPIAO_RATELIMIT_H
#define FAPIAO_RATELIMIT_H

#include "fapiao/err.h"

#include <stdatomic.h>
#include <stdint.h>

/* ---- one bucket ---- */

typedef struct fp_bucket {
    _Atomic int64_t tat; /* theoretical arrival time, ns */
    int64_t interval_ns; /* T = ceil(period x 1e9 / rate); 0 = unlimited */
    int64_t window_ns;   /* B * T: how far TAT may run ahead of now */
} fp_bucket;

/* The longest period a rate may be given per: a day. */
#define FP_RATELIMIT_PERIOD_MAX 86400

/* rate requests per period_s seconds (rate 0 = unlimited; period 0 = 1;
 * a period outside 0..FP_RATELIMIT_PERIOD_MAX is taken as 1: fp_ratelimit_new
 * checks it), burst in requests (0 = rate).  The bucket starts full. */
void fp_bucket_init(fp_bucket *b, int64_t rate, int64_t burst, int64_t period_s);

/* 1: admitted, one token consumed, *retry_after_ns = 0.  0: refused, nothing
 * consumed, *retry_after_ns = the exact wait until one token is available
 * (> 0).  retry_after_ns may be NULL. */
int fp_bucket_take(fp_bucket *b, int64_t now_ns, int64_t *retry_after_ns);

/* Like fp_bucket_take but consumes nothing: would a take succeed now? */
int fp_bucket_peek(const fp_bucket *b, int64_t now_ns, int64_t *retry_after_ns);

/* Whole seconds for a Retry-After header: the wait rounded up, at least 1. */
int64_t fp_ratelimit_retry_after_s(int64_t retry_after_ns);

/* ---- global + per-client limits ---- */

#define FP_RATELIMIT_KEY_MAX       64  /* bytes of a key stored and compared */
#define FP_RATELIMIT_MAX_OVERRIDES 256 /* fp_ratelimit_set_key_limit entries */

typedef struct fp_ratelimit fp_ratelimit;

typedef struct fp_ratelimit_opts {
    int64_t global_rate;     /* requests per global_period_s over all clients; 0 = unlimited */
    int64_t global_burst;    /* 0 = global_rate */
    int64_t client_rate;     /* requests per client_period_s per key; 0 = unlimited */
    int64_t client_burst;    /* 0 = client_rate */
    int max_keys;            /* tracked keys; 0 = 4096 */
    int64_t client_period_s; /* the rates' periods in seconds (0, 1: per second; at most */
    int64_t global_period_s; /* FP_RATELIMIT_PERIOD_MAX); overrides stay per second */
} fp_ratelimit_opts;

/* Which bucket refused a request (for metrics labels). */
typedef enum {
    FP_RATELIMIT_ADMITTED = 0,
    FP_RATELIMIT_GLOBAL = 1,
    FP_RATELIMIT_CLIENT = 2
} fp_ratelimit_scope;

/* "admitted", "global", "client". */
const char *fp_ratelimit_scope_name(fp_ratelimit_scope s);

/* FP_EINVAL for a negative rate, burst or max_keys, or a period outside
 * 0..FP_RATELIMIT_PERIOD_MAX; FP_ENOMEM. */
int fp_ratelimit_new(const fp_ratelimit_opts *o, fp_ratelimit **out, fp_err *err);
void fp_ratelimit_free(fp_ratelimit *rl);

/* 1: admitted (one token taken from the client's and the global bucket).
 * 0: refused, nothing consumed; *which says which bucket refused and
 * *retry_after_ns how long until both would admit one request.  key NULL or
 * "" checks the global bucket only.  retry_after_ns and which may be NULL. */
int fp_ratelimit_check(fp_ratelimit *rl, const char *key, int64_t now_ns, int64_t *retry_after_ns,
                       fp_ratelimit_scope *which);

/* Would fp_ratelimit_check admit one request of key now?  Consumes nothing,
 * counts nothing, tracks no new key (an untracked key starts full).  1 or 0,
 * with *retry_after_ns as fp_ratelimit_check gives it.  For a decision taken
 * before expensive work whose outcome decides whether a token is spent
 * (the server's authentication-failure limit, docs/security.md). */
int fp_ratelimit_peek(fp_ratelimit *rl, const char *key, int64_t now_ns, int64_t *retry_after_ns);

/* Gives one key its own rate and burst (0 = unlimited / = rate), replacing
 * the per-client default; it survives eviction.  A bucket already tracked
 * keeps its current debt (how far its TAT is ahead of now), capped at the
 * new burst.  FP_EINVAL (bad values), FP_ERANGE (FP_RATELIMIT_MAX_OVERRIDES
 * keys already have one). */
int fp_ratelimit_set_key_limit(fp_ratelimit *rl, const char *key, int64_t rate_per_s, int64_t burst,
                               fp_err *err);
/* Back to the per-client default.  FP_ENOTFOUND when key had no override. */
int fp_ratelimit_clear_key_limit(fp_ratelimit *rl, const char *key);

typedef struct fp_ratelimit_stats {
    uint64_t admitted;       /* requests admitted */
    uint64_t refused_global; /* refused by the global bucket */
    uint64_t refused_client; /* refused by a client bucket */
    uint64_t evicted;        /* keys dropped from the table */
    int64_t keys;            /* keys tracked now */
    int64_t max_keys;        /* table capacity */
} fp_ratelimit_stats;

void fp_ratelimit_stats_get(fp_ratelimit *rl, fp_ratelimit_stats *out);

#endif
