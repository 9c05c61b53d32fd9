/* limits.c — the rate limits a SIGHUP may change (docs/configuration.md):
 * the admission buckets (--client-rate, --global-rate, per second or per
 * minute, and their bursts)
 * and the authentication-failure budget (auth_gate.c), held together in one
 * fp_limits that a request borrows and a reload replaces whole.
 *
 * Why a replacement and not an edit: a bucket's rate lives in every tracked
 * key's slot (ratelimit.h), and changing them in place would race with the
 * checks.  A new set starts with full buckets, which a reload may grant
 * once.  The old set is freed when no request holds it: a request counts
 * itself in (limits_users) before it loads the pointer and out after its
 * check, so once the reloading thread, after the swap, sees the count at
 * zero, nobody can still hold the old set (every access is seq_cst).  A
 * server so busy that the count never reads zero within the wait keeps the
 * old set until it stops. */
#include "internal.h"

#include <stdlib.h>
#include <time.h>

#define RETIRED_WAIT_MS 2000

/* The defaults of fp_server_opts (server.h), filled into o's rate fields. */
static void limits_defaults(fp_server_opts *o)
{
    if (o->client_rate == 0) /* unset; -1 is "no limit" */
        o->client_rate = 1000;
    if (o->client_burst == 0 && o->client_rate > 0)
        o->client_burst = o->client_rate + o->client_rate / 5;
    if (o->auth_fail_rate == 0)
        o->auth_fail_rate = 5;
    if (o->auth_fail_burst <= 0)
        o->auth_fail_burst = o->auth_fail_rate > 0 ? 6 * o->auth_fail_rate : 0;
    if (o->auth_record_rate == 0)
        o->auth_record_rate = 10;
    if (o->auth_record_burst <= 0)
        o->auth_record_burst = o->auth_record_rate > 0 ? 5 * o->auth_record_rate : 0;
}

void fp_limits_free(fp_limits *l)
{
    if (!l)
        return;
    fp_ratelimit_free(l->rl);
    fp_ratelimit_free(l->authrl);
    free(l);
}

/* A set made from o (its defaults filled in first). */
static int limits_new(fp_server_opts *o, fp_limits **out, fp_err *err)
{
    limits_defaults(o);
    fp_limits *l = calloc(1, sizeof *l);
    if (!l)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    fp_ratelimit_opts rlo = {.global_rate = o->global_rate > 0 ? o->global_rate : 0,
                             .global_burst = o->global_burst,
                             .global_period_s = o->global_period_s,
                             .client_rate = o->client_rate > 0 ? o->client_rate : 0,
                             .client_burst = o->client_burst,
                             .client_period_s = o->client_period_s};
    int rc = 0;
    if ((rlo.global_rate || rlo.client_rate) && (rc = fp_ratelimit_new(&rlo, &l->rl, err)) < 0)
        goto fail;
    if (o->auth_fail_rate > 0) {
        fp_ratelimit_opts ao = {.client_rate = o->auth_fail_rate,
                                .client_burst = o->auth_fail_burst,
                                .client_period_s = o->auth_fail_period_s};
        if ((rc = fp_ratelimit_new(&ao, &l->authrl, err)) < 0)
            goto fail;
    }
    fp_bucket_init(&l->auth_record, o->auth_record_rate > 0 ? o->auth_record_rate : 0,
                   o->auth_record_burst, 1);
    *out = l;
    return 0;
fail:
    fp_limits_free(l);
    return rc;
}

int fp_limits_init(fp_server *s, fp_err *err)
{
    fp_limits *l = NULL;
    int rc = limits_new(&s->o, &l, err);
    if (rc == 0)
        atomic_store(&s->limits, l);
    return rc;
}

fp_limits *fp_limits_hold(fp_server *s)
{
    atomic_fetch_add(&s->limits_users, 1);
    return atomic_load(&s->limits);
}

void fp_limits_release(fp_server *s)
{
    atomic_fetch_sub(&s->limits_users, 1);
}

void fp_limits_stop(fp_server *s)
{
    fp_limits_free(atomic_exchange(&s->limits, NULL));
    for (int i = 0; i < s->nretired; i++)
        fp_limits_free(s->retired[i]);
    s->nretired = 0;
}

int fp_server_set_limits(fp_server *s, const fp_server_opts *o, fp_err *err)
{
    fp_server_opts n = s->o;
    n.client_rate = o->client_rate;
    n.client_burst = o->client_burst;
    n.client_period_s = o->client_period_s;
    n.global_rate = o->global_rate;
    n.global_burst = o->global_burst;
    n.global_period_s = o->global_period_s;
    n.auth_fail_rate = o->auth_fail_rate;
    n.auth_fail_burst = o->auth_fail_burst;
    n.auth_fail_period_s = o->auth_fail_period_s;
    n.auth_record_rate = o->auth_record_rate;
    n.auth_record_burst = o->auth_record_burst;
    fp_limits *l = NULL;
    int rc = limits_new(&n, &l, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->limits_lock); /* one reload at a time */
    if (s->nretired == FP_LIMITS_RETIRED_MAX) {
        pthread_mutex_unlock(&s->limits_lock);
        fp_limits_free(l);
        return fp_fail(err, FP_EBUSY,
                       "限流设置已替换 %d 次而旧设置仍在使用，需重启 / the rate limits were "
                       "replaced %d times while the old ones were still in use; restart",
                       FP_LIMITS_RETIRED_MAX, FP_LIMITS_RETIRED_MAX);
    }
    fp_limits *old = atomic_exchange(&s->limits, l);
    int freed = 0;
    for (int i = 0; i < RETIRED_WAIT_MS && !freed; i++) {
        if (atomic_load(&s->limits_users) == 0) {
            fp_limits_free(old);
            freed = 1;
        } else {
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
    }
    if (!freed)
        s->retired[s->nretired++] = old;
    pthread_mutex_unlock(&s->limits_lock);
    return 0;
}

/* The tax code table is swapped whole too; the old one is the caller's to
 * keep until the server stops (a request may still be reading it). */
const fp_taxcode_table *fp_server_set_codes(fp_server *s, const fp_taxcode_table *codes)
{
    return atomic_exchange(&s->codes, codes);
}
