/* numkeeper.c — the number keeper's thread (numkeeper.h, docs/upstream.md
 * "Numbers"): QDFPPLFM through src/upstream/, the ranges through the
 * store.  It lives beside the outbox's job threads: a thread on the store
 * that calls out and writes back. */
#include "fapiao/numkeeper.h"
#include "fapiao/keeper.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SELLERS    4096
#define MAX_PER_SELLER 8 /* downloads per seller and pass */

struct fp_numkeeper {
    fp_numkeeper_opts o;
    fp_keeper *thread;
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
    /* the message is the platform's or ours: no secrets in it */
    char clean[256];
    fp_keeper_clean(msg, clean, sizeof clean);
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
static int pass(void *arg)
{
    fp_numkeeper *k = arg;
    int failed = 0;
    sellers *s = calloc(1, sizeof *s);
    if (!s || fp_store_sellers(k->o.store, collect, s) < 0) {
        free(s);
        return 1;
    }
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
    free(s);
    return failed;
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
    int rc = fp_keeper_start("number keeper", pass, k, o->check_ms, &k->thread, err);
    if (rc < 0) {
        free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void fp_numkeeper_stop(fp_numkeeper *k)
{
    if (!k)
        return;
    fp_keeper_stop(k->thread);
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
