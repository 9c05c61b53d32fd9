/* ratelimit.c — GCRA token buckets and the sharded per-client table of
 * ratelimit.h. */
#include "fapiao/ratelimit.h"
#include "fapiao/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_S         1000000000LL
#define TAT_NEVER        INT64_MIN /* a bucket nobody used: full */
#define WINDOW_MAX       (INT64_MAX / 4)
#define DEFAULT_MAX_KEYS 4096
#define MAX_SHARDS       64
#define KEYS_PER_SHARD   16 /* fewer shards than that for small tables */

/* ---- GCRA ---- */

/* Emission interval and window for rate requests per period_s seconds and
 * burst.  Rates above one per ns get T = 1 ns (the resolution of the
 * clock).  period_s x 1e9 <= 8.64e13: no overflow. */
static void gcra_params(int64_t rate, int64_t burst, int64_t period_s, int64_t *interval,
                        int64_t *window)
{
    if (rate <= 0) {
        *interval = 0;
        *window = 0;
        return;
    }
    if (burst <= 0)
        burst = rate;
    if (period_s <= 0 || period_s > FP_RATELIMIT_PERIOD_MAX)
        period_s = 1;
    int64_t period = period_s * NS_PER_S;
    int64_t t = rate >= period ? 1 : (period + rate - 1) / rate;
    *interval = t;
    *window = burst > WINDOW_MAX / t ? WINDOW_MAX : burst * t;
}

/* The decision of one take: 1 and *new_tat, or 0 and *wait (> 0).  Pure:
 * the caller commits *new_tat. */
static int gcra(int64_t tat, int64_t now, int64_t interval, int64_t window, int64_t *new_tat,
                int64_t *wait)
{
    if (interval == 0) { /* unlimited */
        *new_tat = tat;
        *wait = 0;
        return 1;
    }
    int64_t base = tat > now ? tat : now;
    int64_t next = base + interval;
    if (next - now > window) {
        *wait = next - now - window;
        return 0;
    }
    *new_tat = next;
    *wait = 0;
    return 1;
}

void fp_bucket_init(fp_bucket *b, int64_t rate, int64_t burst, int64_t period_s)
{
    gcra_params(rate, burst, period_s, &b->interval_ns, &b->window_ns);
    atomic_init(&b->tat, TAT_NEVER);
}

int fp_bucket_peek(const fp_bucket *b, int64_t now_ns, int64_t *retry_after_ns)
{
    int64_t tat = atomic_load_explicit(&((fp_bucket *)b)->tat, memory_order_relaxed);
    int64_t next, wait;
    int ok = gcra(tat, now_ns, b->interval_ns, b->window_ns, &next, &wait);
    if (retry_after_ns)
        *retry_after_ns = wait;
    return ok;
}

int fp_bucket_take(fp_bucket *b, int64_t now_ns, int64_t *retry_after_ns)
{
    int64_t tat = atomic_load_explicit(&b->tat, memory_order_relaxed);
    int64_t next, wait = 0;
    int ok;
    for (;;) {
        ok = gcra(tat, now_ns, b->interval_ns, b->window_ns, &next, &wait);
        if (!ok || b->interval_ns == 0)
            break;
        /* lost the race: tat now holds the winner's value, decide again */
        if (atomic_compare_exchange_weak_explicit(&b->tat, &tat, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    if (retry_after_ns)
        *retry_after_ns = wait;
    return ok;
}

int64_t fp_ratelimit_retry_after_s(int64_t retry_after_ns)
{
    if (retry_after_ns <= NS_PER_S)
        return 1;
    return retry_after_ns / NS_PER_S + (retry_after_ns % NS_PER_S != 0);
}

/* ---- keys ---- */

typedef struct rl_key {
    uint64_t hash; /* never 0: 0 marks an empty slot */
    uint32_t len;  /* the whole key's length */
    char s[FP_RATELIMIT_KEY_MAX];
} rl_key;

/* FNV-1a with a per-table seed, then a splitmix finaliser so that both the
 * shard bits (high) and the slot bits (low) are well mixed. */
static void key_make(rl_key *k, const char *s, uint64_t seed)
{
    size_t n = strlen(s);
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    k->hash = h ? h : 1;
    k->len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    size_t c = n < FP_RATELIMIT_KEY_MAX ? n : FP_RATELIMIT_KEY_MAX;
    memcpy(k->s, s, c);
    if (c < FP_RATELIMIT_KEY_MAX)
        memset(k->s + c, 0, FP_RATELIMIT_KEY_MAX - c);
}

static int key_eq(const rl_key *a, const rl_key *b)
{
    if (a->hash != b->hash || a->len != b->len)
        return 0;
    size_t c = a->len < FP_RATELIMIT_KEY_MAX ? a->len : FP_RATELIMIT_KEY_MAX;
    return memcmp(a->s, b->s, c) == 0;
}

/* ---- the table ---- */

typedef struct rl_slot {
    rl_key k;
    int64_t tat, interval_ns, window_ns;
    int64_t last_ns; /* last request, for LRU eviction */
} rl_slot;

/* Each shard is an open-addressing table (linear probing, at most half
 * full, deletion by backward shift so there are no tombstones) under its own
 * mutex.  Aligned so two shards' mutexes never share a cache line. */
typedef struct rl_shard {
    pthread_mutex_t mu;
    rl_slot *slots;
    uint32_t mask;
    int n;
} __attribute__((aligned(64))) rl_shard;

typedef struct rl_override {
    rl_key k;
    int64_t interval_ns, window_ns;
} rl_override;

struct fp_ratelimit {
    fp_bucket global;
    int64_t client_interval, client_window; /* the per-client default */
    uint64_t seed;
    int shard_bits, nshards, shard_cap;
    rl_shard *shards;
    pthread_rwlock_t ov_mu;
    _Atomic int nov;
    rl_override ov[FP_RATELIMIT_MAX_OVERRIDES];
    _Atomic uint64_t admitted, refused_global, refused_client, evicted;
};

static const char *const scope_names[] = {"admitted", "global", "client"};

const char *fp_ratelimit_scope_name(fp_ratelimit_scope s)
{
    return (unsigned)s < 3 ? scope_names[s] : "?";
}

static uint32_t slot_home(const rl_shard *s, uint64_t hash)
{
    return (uint32_t)hash & s->mask;
}

static rl_shard *shard_of(fp_ratelimit *rl, uint64_t hash)
{
    return &rl->shards[rl->shard_bits ? hash >> (64 - rl->shard_bits) : 0];
}

static rl_slot *slot_find(rl_shard *s, const rl_key *k)
{
    for (uint32_t i = slot_home(s, k->hash);; i = (i + 1) & s->mask) {
        rl_slot *e = &s->slots[i];
        if (!e->k.hash)
            return NULL;
        if (key_eq(&e->k, k))
            return e;
    }
}

/* Removes slot i and shifts later members of its probe run back, so every
 * key stays reachable from its home slot without tombstones. */
static void slot_delete(rl_shard *s, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & s->mask;
        if (!s->slots[j].k.hash)
            break;
        uint32_t h = slot_home(s, s->slots[j].k.hash);
        /* the entry at j may not move before its home: skip it when home
         * lies cyclically in (i, j] */
        if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
            continue;
        s->slots[i] = s->slots[j];
        i = j;
    }
    s->slots[i].k.hash = 0;
    s->n--;
}

/* Makes room in a full shard: drops every key whose bucket is full again
 * (nothing is lost: it would restart full), else the least recently used. */
static uint64_t shard_evict(rl_shard *s, int64_t now)
{
    uint64_t dropped = 0;
    for (uint32_t i = 0; i <= s->mask;) {
        rl_slot *e = &s->slots[i];
        if (e->k.hash && e->tat <= now) {
            slot_delete(s, i); /* a later entry may now sit at i: look again */
            dropped++;
        } else {
            i++;
        }
    }
    if (dropped)
        return dropped;
    uint32_t lru = 0;
    int found = 0;
    for (uint32_t i = 0; i <= s->mask; i++) {
        rl_slot *e = &s->slots[i];
        if (e->k.hash && (!found || e->last_ns < s->slots[lru].last_ns)) {
            lru = i;
            found = 1;
        }
    }
    if (found)
        slot_delete(s, lru);
    return (uint64_t)found;
}

static rl_slot *slot_insert(fp_ratelimit *rl, rl_shard *s, const rl_key *k, int64_t now)
{
    if (s->n >= rl->shard_cap)
        atomic_fetch_add_explicit(&rl->evicted, shard_evict(s, now), memory_order_relaxed);
    uint32_t i = slot_home(s, k->hash);
    while (s->slots[i].k.hash)
        i = (i + 1) & s->mask;
    rl_slot *e = &s->slots[i];
    e->k = *k;
    e->tat = TAT_NEVER;
    s->n++;
    return e;
}

/* rwlock held (read or write). */
static rl_override *override_find(fp_ratelimit *rl, const rl_key *k)
{
    int n = atomic_load_explicit(&rl->nov, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        if (key_eq(&rl->ov[i].k, k))
            return &rl->ov[i];
    return NULL;
}

/* The limits for k: its override, else the per-client default. */
static void key_params(fp_ratelimit *rl, const rl_key *k, int64_t *interval, int64_t *window)
{
    *interval = rl->client_interval;
    *window = rl->client_window;
    if (atomic_load_explicit(&rl->nov, memory_order_acquire) == 0)
        return;
    pthread_rwlock_rdlock(&rl->ov_mu);
    rl_override *o = override_find(rl, k);
    if (o) {
        *interval = o->interval_ns;
        *window = o->window_ns;
    }
    pthread_rwlock_unlock(&rl->ov_mu);
}

int fp_ratelimit_new(const fp_ratelimit_opts *o, fp_ratelimit **out, fp_err *err)
{
    static const fp_ratelimit_opts none = {0};
    if (!o)
        o = &none;
    *out = NULL;
    if (o->global_rate < 0 || o->global_burst < 0 || o->client_rate < 0 || o->client_burst < 0 ||
        o->max_keys < 0 || o->client_period_s < 0 || o->client_period_s > FP_RATELIMIT_PERIOD_MAX ||
        o->global_period_s < 0 || o->global_period_s > FP_RATELIMIT_PERIOD_MAX)
        return fp_fail(err, FP_EINVAL,
                       "ratelimit: negative rate, burst or max_keys, or a period "
                       "beyond a day");
    int max_keys = o->max_keys ? o->max_keys : DEFAULT_MAX_KEYS;
    if (max_keys > (1 << 24))
        return fp_fail(err, FP_EINVAL, "ratelimit: max_keys %d is above %d", max_keys, 1 << 24);

    fp_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        goto nomem;
    fp_bucket_init(&rl->global, o->global_rate, o->global_burst, o->global_period_s);
    gcra_params(o->client_rate, o->client_burst, o->client_period_s, &rl->client_interval,
                &rl->client_window);
    /* a hash seed, not a time: the wall clock's milliseconds and the
     * monotonic nanoseconds differ from one start to the next */
    rl->seed = ((uint64_t)fp_wall_ms() * 1000000 + (uint64_t)(fp_mono_ns() % 1000000)) ^
               (uint64_t)(uintptr_t)rl;

    /* as many shards as keeps >= KEYS_PER_SHARD keys in each, up to 64 */
    while (rl->shard_bits < 6 && (max_keys >> (rl->shard_bits + 1)) >= KEYS_PER_SHARD)
        rl->shard_bits++;
    rl->nshards = 1 << rl->shard_bits;
    rl->shard_cap = (max_keys + rl->nshards - 1) / rl->nshards;
    uint32_t nslots = 2;
    while (nslots < 2u * (uint32_t)rl->shard_cap)
        nslots <<= 1;
    if (pthread_rwlock_init(&rl->ov_mu, NULL) != 0) {
        free(rl);
        goto nomem;
    }
    /* calloc would not honour the shards' cache-line alignment */
    rl->shards = aligned_alloc(_Alignof(rl_shard), (size_t)rl->nshards * sizeof *rl->shards);
    if (!rl->shards)
        goto fail;
    memset(rl->shards, 0, (size_t)rl->nshards * sizeof *rl->shards);
    for (int i = 0; i < rl->nshards; i++) {
        rl_shard *s = &rl->shards[i];
        s->mask = nslots - 1;
        s->slots = calloc(nslots, sizeof *s->slots);
        if (!s->slots || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->slots);
            while (i-- > 0) {
                pthread_mutex_destroy(&rl->shards[i].mu);
                free(rl->shards[i].slots);
            }
            goto fail;
        }
    }
    *out = rl;
    return 0;
fail:
    free(rl->shards);
    pthread_rwlock_destroy(&rl->ov_mu);
    free(rl);
nomem:
    return fp_fail(err, FP_ENOMEM, "ratelimit: out of memory");
}

void fp_ratelimit_free(fp_ratelimit *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < rl->nshards; i++) {
        pthread_mutex_destroy(&rl->shards[i].mu);
        free(rl->shards[i].slots);
    }
    free(rl->shards);
    pthread_rwlock_destroy(&rl->ov_mu);
    free(rl);
}

/* Counts a refusal and reports the longer of the two waits, so a client
 * told to come back is not refused by the other bucket when it does. */
static int refuse(fp_ratelimit *rl, fp_ratelimit_scope scope, int64_t wait, int64_t other_wait,
                  int64_t *retry_after_ns, fp_ratelimit_scope *which)
{
    atomic_fetch_add_explicit(scope == FP_RATELIMIT_GLOBAL ? &rl->refused_global
                                                           : &rl->refused_client,
                              1, memory_order_relaxed);
    if (retry_after_ns)
        *retry_after_ns = wait > other_wait ? wait : other_wait;
    if (which)
        *which = scope;
    return 0;
}

static int admit(fp_ratelimit *rl, int64_t *retry_after_ns, fp_ratelimit_scope *which)
{
    atomic_fetch_add_explicit(&rl->admitted, 1, memory_order_relaxed);
    if (retry_after_ns)
        *retry_after_ns = 0;
    if (which)
        *which = FP_RATELIMIT_ADMITTED;
    return 1;
}

int fp_ratelimit_check(fp_ratelimit *rl, const char *key, int64_t now_ns, int64_t *retry_after_ns,
                       fp_ratelimit_scope *which)
{
    int64_t gwait;
    int per_key = key && key[0] &&
                  (rl->client_interval || atomic_load_explicit(&rl->nov, memory_order_acquire));
    if (!per_key) {
        if (!fp_bucket_take(&rl->global, now_ns, &gwait))
            return refuse(rl, FP_RATELIMIT_GLOBAL, gwait, 0, retry_after_ns, which);
        return admit(rl, retry_after_ns, which);
    }

    rl_key k;
    key_make(&k, key, rl->seed);
    rl_shard *s = shard_of(rl, k.hash);
    pthread_mutex_lock(&s->mu);
    rl_slot *e = slot_find(s, &k);
    if (!e) {
        int64_t interval, window;
        key_params(rl, &k, &interval, &window);
        if (interval == 0) { /* unlimited key: nothing to remember */
            pthread_mutex_unlock(&s->mu);
            if (!fp_bucket_take(&rl->global, now_ns, &gwait))
                return refuse(rl, FP_RATELIMIT_GLOBAL, gwait, 0, retry_after_ns, which);
            return admit(rl, retry_after_ns, which);
        }
        e = slot_insert(rl, s, &k, now_ns);
        e->interval_ns = interval;
        e->window_ns = window;
    }
    e->last_ns = now_ns;
    /* a limit lowered by fp_ratelimit_set_key_limit: cap the old debt */
    if (e->interval_ns && e->tat > now_ns && e->tat - now_ns > e->window_ns)
        e->tat = now_ns + e->window_ns;

    int64_t next, cwait;
    if (!gcra(e->tat, now_ns, e->interval_ns, e->window_ns, &next, &cwait)) {
        pthread_mutex_unlock(&s->mu);
        fp_bucket_peek(&rl->global, now_ns, &gwait);
        return refuse(rl, FP_RATELIMIT_CLIENT, cwait, gwait, retry_after_ns, which);
    }
    /* the client admits: take the global token while still holding the
     * shard, so no other request of this key can spend the same token */
    if (!fp_bucket_take(&rl->global, now_ns, &gwait)) {
        pthread_mutex_unlock(&s->mu);
        return refuse(rl, FP_RATELIMIT_GLOBAL, gwait, 0, retry_after_ns, which);
    }
    e->tat = next;
    pthread_mutex_unlock(&s->mu);
    return admit(rl, retry_after_ns, which);
}

int fp_ratelimit_peek(fp_ratelimit *rl, const char *key, int64_t now_ns, int64_t *retry_after_ns)
{
    int64_t wait = 0;
    if (!key || !key[0]) {
        int ok = fp_bucket_peek(&rl->global, now_ns, &wait);
        if (retry_after_ns)
            *retry_after_ns = ok ? 0 : wait;
        return ok;
    }
    rl_key k;
    key_make(&k, key, rl->seed);
    rl_shard *s = shard_of(rl, k.hash);
    pthread_mutex_lock(&s->mu);
    const rl_slot *e = slot_find(s, &k);
    int ok = 1;
    if (e) { /* an untracked key would start full: admitted */
        int64_t tat = e->tat;
        if (e->interval_ns && tat > now_ns && tat - now_ns > e->window_ns)
            tat = now_ns + e->window_ns;
        int64_t next;
        ok = gcra(tat, now_ns, e->interval_ns, e->window_ns, &next, &wait);
    }
    pthread_mutex_unlock(&s->mu);
    if (ok && !fp_bucket_peek(&rl->global, now_ns, &wait))
        ok = 0;
    if (retry_after_ns)
        *retry_after_ns = ok ? 0 : wait;
    return ok;
}

/* Applies new limits to k's bucket if it is tracked. */
static void retune_slot(fp_ratelimit *rl, const rl_key *k, int64_t interval, int64_t window)
{
    rl_shard *s = shard_of(rl, k->hash);
    pthread_mutex_lock(&s->mu);
    rl_slot *e = slot_find(s, k);
    if (e) {
        e->interval_ns = interval;
        e->window_ns = window;
    }
    pthread_mutex_unlock(&s->mu);
}

int fp_ratelimit_set_key_limit(fp_ratelimit *rl, const char *key, int64_t rate_per_s, int64_t burst,
                               fp_err *err)
{
    if (!key || !key[0] || rate_per_s < 0 || burst < 0)
        return fp_fail(err, FP_EINVAL, "ratelimit: empty key or negative rate or burst");
    rl_key k;
    key_make(&k, key, rl->seed);
    int64_t interval, window;
    gcra_params(rate_per_s, burst, 1, &interval, &window);

    pthread_rwlock_wrlock(&rl->ov_mu);
    rl_override *o = override_find(rl, &k);
    if (!o) {
        int n = atomic_load_explicit(&rl->nov, memory_order_relaxed);
        if (n >= FP_RATELIMIT_MAX_OVERRIDES) {
            pthread_rwlock_unlock(&rl->ov_mu);
            return fp_fail(err, FP_ERANGE, "ratelimit: more than %d keys with their own limit",
                           FP_RATELIMIT_MAX_OVERRIDES);
        }
        o = &rl->ov[n];
        o->k = k;
        atomic_store_explicit(&rl->nov, n + 1, memory_order_release);
    }
    o->interval_ns = interval;
    o->window_ns = window;
    pthread_rwlock_unlock(&rl->ov_mu);
    retune_slot(rl, &k, interval, window);
    return 0;
}

int fp_ratelimit_clear_key_limit(fp_ratelimit *rl, const char *key)
{
    if (!key || !key[0])
        return FP_ENOTFOUND;
    rl_key k;
    key_make(&k, key, rl->seed);
    pthread_rwlock_wrlock(&rl->ov_mu);
    rl_override *o = override_find(rl, &k);
    if (!o) {
        pthread_rwlock_unlock(&rl->ov_mu);
        return FP_ENOTFOUND;
    }
    int n = atomic_load_explicit(&rl->nov, memory_order_relaxed);
    *o = rl->ov[n - 1];
    atomic_store_explicit(&rl->nov, n - 1, memory_order_release);
    pthread_rwlock_unlock(&rl->ov_mu);
    retune_slot(rl, &k, rl->client_interval, rl->client_window);
    return 0;
}

void fp_ratelimit_stats_get(fp_ratelimit *rl, fp_ratelimit_stats *out)
{
    memset(out, 0, sizeof *out);
    out->admitted = atomic_load_explicit(&rl->admitted, memory_order_relaxed);
    out->refused_global = atomic_load_explicit(&rl->refused_global, memory_order_relaxed);
    out->refused_client = atomic_load_explicit(&rl->refused_client, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&rl->evicted, memory_order_relaxed);
    out->max_keys = (int64_t)rl->nshards * rl->shard_cap;
    for (int i = 0; i < rl->nshards; i++) {
        pthread_mutex_lock(&rl->shards[i].mu);
        out->keys += rl->shards[i].n;
        pthread_mutex_unlock(&rl->shards[i].mu);
    }
}
