/* client_cache.c — a snapshot of the clients table (client_cache.h).
 *
 * The snapshot is a sorted array swapped as a whole.  A lookup that finds
 * it older than refresh_ms refreshes it itself (one thread at a time; the
 * others keep using the old one meanwhile), so there is no extra thread and
 * no staleness beyond refresh_ms plus one read. */
#include "client_cache.h"
#include "fapiao/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct snapshot {
    fp_cached_client *v;
    int n, cap;
    int refs;
    int64_t max_secret_id; /* the newest secret it knows (of any client) */
} snapshot;

struct fp_client_cache {
    fp_store *store;
    int refresh_ms;
    pthread_mutex_t mu;
    snapshot *cur;
    int64_t loaded_ms;
    int refreshing;
};

static void add(const fp_client_info *ci, void *arg)
{
    snapshot *s = arg;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        fp_cached_client *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return;
        s->v = v;
        s->cap = cap;
    }
    fp_cached_client *c = &s->v[s->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->client_id, sizeof c->client_id, "%s", ci->client_id);
    c->seller_id = ci->seller_id;
    c->roles = ci->roles;
    c->revoked = ci->revoked_at != 0;
    snprintf(c->cert_sha256, sizeof c->cert_sha256, "%s", ci->cert_sha256);
    if (ci->allowed_ips[0]) {
        c->has_allowlist = 1;
        /* an unparsable list allows nothing (fail closed) */
        if (fp_allowlist_parse(ci->allowed_ips, &c->allow, NULL, 0) < 0)
            c->allow.n = 0;
    }
}

static void put(snapshot *s)
{
    if (s && --s->refs == 0) {
        free(s->v);
        free(s);
    }
}

static fp_cached_client *find(snapshot *s, const char *client_id)
{
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, cmp = strcmp(client_id, s->v[mid].client_id);
        if (cmp == 0)
            return &s->v[mid];
        if (cmp < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

static void add_secret(const char *client_id, int64_t secret_id, int64_t expires_at, void *arg)
{
    snapshot *s = arg;
    if (secret_id > s->max_secret_id)
        s->max_secret_id = secret_id;
    fp_cached_client *c = find(s, client_id);
    if (!c)
        return;
    if (c->nsecrets == FP_CACHED_SECRETS) { /* ids ascend: drop the oldest */
        memmove(c->secret_id, c->secret_id + 1, (FP_CACHED_SECRETS - 1) * sizeof *c->secret_id);
        memmove(c->secret_expires, c->secret_expires + 1,
                (FP_CACHED_SECRETS - 1) * sizeof *c->secret_expires);
        c->nsecrets--;
    }
    c->secret_id[c->nsecrets] = secret_id;
    c->secret_expires[c->nsecrets] = expires_at;
    c->nsecrets++;
}

/* Reads the table and the live secrets into a new snapshot; NULL on
 * failure. */
static snapshot *load(fp_store *store)
{
    snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->refs = 1;
    /* fp_store_clients returns them in client_id order (find's search) */
    if (fp_store_clients(store, 0, add, s) < 0 ||
        fp_store_live_secrets(store, (int64_t)time(NULL), add_secret, s) < 0) {
        put(s);
        return NULL;
    }
    return s;
}

int fp_client_cache_new(fp_store *s, int refresh_ms, fp_client_cache **out, fp_err *err)
{
    fp_client_cache *c = calloc(1, sizeof *c);
    if (!c)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    c->store = s;
    c->refresh_ms = refresh_ms > 0 ? refresh_ms : 1000;
    pthread_mutex_init(&c->mu, NULL);
    c->cur = load(s);
    c->loaded_ms = fp_mono_ms();
    *out = c;
    return 0;
}

void fp_client_cache_free(fp_client_cache *c)
{
    if (!c)
        return;
    put(c->cur);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Looks client_id up in the current snapshot, refreshing it first when it
 * is older than max_age_ms.  max_age_ms < 0: refresh now, even while
 * another thread refreshes (a token of a secret newer than the snapshot:
 * only the server can have minted it, so this costs one read per new
 * secret, not one per request).  *max_secret: the snapshot's newest
 * secret id (may be NULL). */
static int lookup(fp_client_cache *c, const char *client_id, fp_cached_client *out,
                  int64_t max_age_ms, int64_t *max_secret)
{
    int64_t now = fp_mono_ms();
    pthread_mutex_lock(&c->mu);
    int force = max_age_ms < 0;
    int stale = !c->cur || force || now - c->loaded_ms >= max_age_ms;
    if (stale && (force || !c->refreshing)) {
        c->refreshing += 1;
        pthread_mutex_unlock(&c->mu);
        snapshot *fresh = load(c->store);
        pthread_mutex_lock(&c->mu);
        c->refreshing -= 1;
        if (fresh && (!c->cur || now >= c->loaded_ms)) {
            put(c->cur);
            c->cur = fresh;
            c->loaded_ms = now;
        } else {
            put(fresh);
        }
    }
    snapshot *s = c->cur;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&c->mu);
    if (!s)
        return FP_EIO;
    const fp_cached_client *hit = find(s, client_id);
    int rc = hit ? 0 : FP_ENOTFOUND;
    if (hit)
        *out = *hit;
    if (max_secret)
        *max_secret = s->max_secret_id;
    pthread_mutex_lock(&c->mu);
    put(s);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int fp_client_cache_get(fp_client_cache *c, const char *client_id, fp_cached_client *out)
{
    int rc = lookup(c, client_id, out, c->refresh_ms, NULL);
    /* a client made since the last refresh: look again (at most 20 reads
     * a second for tokens of clients that are gone) */
    if (rc == FP_ENOTFOUND)
        rc = lookup(c, client_id, out, 50, NULL);
    return rc;
}

int fp_cached_secret_live(const fp_cached_client *c, int64_t secret_id, int64_t now)
{
    for (int i = 0; i < c->nsecrets; i++)
        if (c->secret_id[i] == secret_id)
            return c->secret_expires[i] == 0 || c->secret_expires[i] > now;
    return 0;
}

int fp_client_cache_get_for_token(fp_client_cache *c, const char *client_id, int64_t secret_id,
                                  int64_t now, fp_cached_client *out, int *live)
{
    int64_t max_secret = 0;
    int rc = lookup(c, client_id, out, c->refresh_ms, &max_secret);
    *live = rc == 0 && fp_cached_secret_live(out, secret_id, now);
    if (rc != FP_EIO && !*live) {
        /* a secret (or client) newer than the snapshot: read it now; else
         * look again at most 20 times a second (tokens of secrets or
         * clients that are gone) */
        rc = lookup(c, client_id, out, secret_id > max_secret ? -1 : 50, NULL);
        *live = rc == 0 && fp_cached_secret_live(out, secret_id, now);
    }
    return rc;
}
