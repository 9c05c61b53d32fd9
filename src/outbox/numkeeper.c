/* numkeeper.c — the number keeper's thread (numkeeper.h, docs/upstream.md
 * "Numbers"): QDFPPLFM through src/upstream/, the ranges through the
 * store.  It lives beside the outbox's job threads: a thread on the store
 * that calls out and writes back. */
#include "fapiao/numkeeper.h"
#include "fapiao/clock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SELLERS    4096
#define MAX_PER_SELLER 8 /* downloads per seller and pass */

struct fp_numkeeper {
    fp_numkeeper_opts o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop;
    _Atomic uint64_t downloads, numbers, failures;
};

typedef struct sellers {
    int64_t id[MAX_SELLERS];
    char tax_id[MAX_SELLERS][21];
    int n;
} sellers;

static void collect(const fp_seller *x, void *arg)
{
    sellers *s = arg;
    if (s->n < MAX_SELLERS && !x->disabled && x->tax_id[0]) {
        s->id[s->n] = x->id;
        snprintf(s->tax_id[s->n], sizeof s->tax_id[0], "%s", x->tax_id);
        s->n++;
    }
}

typedef struct count_ranges {
    int64_t seller_id, n;
} count_ranges;

static void count_one(const fp_range_rec *r, void *arg)
{
    count_ranges *c = arg;
    c->n += r->seller_id == c->seller_id;
}

static void log_failure(const char *tax_id, const char *kind, const char *msg)
{
    /* the message is the platform's or ours: no secrets in it; quotes and
     * backslashes would break the line's JSON, so they are left out */
    char clean[256];
    size_t j = 0;
    for (size_t i = 0; msg[i] && j + 1 < sizeof clean; i++)
        if (msg[i] != '"' && msg[i] != '\\' && (unsigned char)msg[i] >= 0x20)
            clean[j++] = msg[i];
    clean[j] = 0;
    fprintf(stderr,
            "{\"event\":\"numbers_download_failed\",\"tax_id\":\"%s\",\"kind\":\"%s\","
            "\"message\":\"%s\"}\n",
            tax_id, kind, clean);
}

/* One download for a seller: the numbers added, or -1. */
static int64_t download(fp_numkeeper *k, int64_t seller_id, const char *tax_id)
{
    count_ranges c = {.seller_id = seller_id};
    if (fp_store_ranges(k->o.store, count_one, &c) < 0)
        return -1;
    char serial[64];
    fp_up_numbers_serial(tax_id, c.n, serial);
    fp_up_numbers n;
    fp_up_result res;
    fp_up_kind kind = fp_up_numbers_download(k->o.conf, tax_id, k->o.batch, serial, &n, &res);
    if (kind != FP_UP_OK) {
        log_failure(tax_id, fp_up_kind_get(kind)->name, res.message);
        return -1;
    }
    char prefix[6];
    int64_t first, last;
    fp_err err = {0};
    fp_audit_rec a = {.ts = 0, /* now */
                      .actor = "upstream",
                      .action = "ranges.download",
                      .outcome = "ok",
                      .seller_id = seller_id};
    if (fp_up_numbers_range(&n, prefix, &first, &last, &err) < 0 ||
        fp_store_add_range(k->o.store, seller_id, prefix, first, last, &a, &err) < 0) {
        log_failure(tax_id, "LOCAL", err.msg);
        return -1;
    }
    fprintf(stderr,
            "{\"event\":\"numbers_downloaded\",\"tax_id\":\"%s\",\"ywlsh\":\"%s\","
            "\"first\":\"%s\",\"last\":\"%s\"}\n",
            tax_id, serial, n.first, n.last);
    atomic_fetch_add(&k->downloads, 1);
    atomic_fetch_add(&k->numbers, (uint64_t)(last - first + 1));
    return last - first + 1;
}

/* Every seller below the mark gets numbers; 1 when a download failed. */
static int pass(fp_numkeeper *k, sellers *s)
{
    int failed = 0;
    s->n = 0;
    if (fp_store_sellers(k->o.store, collect, s) < 0)
        return 1;
    for (int i = 0; i < s->n; i++) {
        int64_t left = 0;
        if (fp_store_numbers_remaining(k->o.store, s->id[i], &left) < 0) {
            failed = 1;
            continue;
        }
        for (int d = 0; left < k->o.low && d < MAX_PER_SELLER; d++) {
            int64_t got = download(k, s->id[i], s->tax_id[i]);
            if (got < 0) {
                atomic_fetch_add(&k->failures, 1);
                failed = 1;
                break;
            }
            left += got;
        }
    }
    return failed;
}

static void *keeper_main(void *arg)
{
    fp_numkeeper *k = arg;
    sellers *s = malloc(sizeof *s);
    long backoff = k->o.check_ms;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        pthread_mutex_unlock(&k->mu);
        int failed = s ? pass(k, s) : 1;
        /* after a failure: wait longer each time (to 60 s), then as usual */
        backoff = failed ? (backoff * 2 > 60000 ? 60000 : backoff * 2) : k->o.check_ms;
        pthread_mutex_lock(&k->mu);
        if (!k->stop)
            fp_cond_wait_ms(&k->cond, &k->mu, (int)(failed ? backoff : k->o.check_ms));
    }
    pthread_mutex_unlock(&k->mu);
    free(s);
    return NULL;
}

int fp_numkeeper_start(const fp_numkeeper_opts *o, fp_numkeeper **out, fp_err *err)
{
    *out = NULL;
    if (o->batch < 1 || o->batch > FP_UP_MAX_NUMBERS || o->check_ms < 1)
        return fp_fail(err, FP_EINVAL, "numbers: batch 1-%d and a check interval are needed",
                       FP_UP_MAX_NUMBERS);
    fp_numkeeper *k = calloc(1, sizeof *k);
    if (!k)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    k->o = *o;
    pthread_mutex_init(&k->mu, NULL);
    fp_cond_init_mono(&k->cond);
    if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
        pthread_cond_destroy(&k->cond);
        pthread_mutex_destroy(&k->mu);
        free(k);
        return fp_fail(err, FP_EIO, "cannot start the number keeper thread");
    }
    *out = k;
    return 0;
}

void fp_numkeeper_stop(fp_numkeeper *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

void fp_numkeeper_stats_get(fp_numkeeper *k, fp_numkeeper_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!k)
        return;
    out->downloads = atomic_load(&k->downloads);
    out->numbers = atomic_load(&k->numbers);
    out->failures = atomic_load(&k->failures);
}
