/* topn.c — counters per key with a cardinality cap (topn.h). */
#include "fapiao/topn.h"
#include "fapiao/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char key[FP_TOPN_KEY];
    uint64_t total; /* every count of the key */
    uint64_t base;  /* with a slot: what it counted before (stays in "other") */
    int slot;
} entry;

struct fp_topn {
    pthread_mutex_t mu;
    int n, used;   /* slots; slots handed out */
    int64_t shown; /* scrapes so far */
    int nkeys;
    uint64_t spill; /* counts of keys beyond FP_TOPN_KEYS */
    entry *e;       /* open addressing, FP_TOPN_KEYS * 2 cells */
};

#define CELLS (FP_TOPN_KEYS * 2)

fp_topn *fp_topn_new(int n)
{
    fp_topn *t = calloc(1, sizeof *t);
    if (!t || !(t->e = calloc(CELLS, sizeof *t->e))) {
        free(t);
        return NULL;
    }
    t->n = n < 1 ? 1 : n;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void fp_topn_free(fp_topn *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->e);
    free(t);
}

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void fp_topn_inc(fp_topn *t, const char *key)
{
    if (!t || !key)
        return;
    char k[FP_TOPN_KEY];
    size_t len = strnlen(key, sizeof k - 1);
    memcpy(k, key, len);
    k[len] = 0;
    pthread_mutex_lock(&t->mu);
    for (uint32_t i = hash(k) % CELLS;; i = (i + 1) % CELLS) {
        entry *e = &t->e[i];
        if (e->key[0] && !strcmp(e->key, k)) {
            e->total++;
            break;
        }
        if (!e->key[0]) {
            if (t->nkeys == FP_TOPN_KEYS || !k[0]) {
                t->spill++;
                break;
            }
            memcpy(e->key, k, len + 1);
            e->total = 1;
            t->nkeys++;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* Free slots go to the keys counted most, one by one. */
static void hand_out(fp_topn *t)
{
    while (t->used < t->n) {
        entry *best = NULL;
        for (int i = 0; i < CELLS; i++) {
            entry *e = &t->e[i];
            if (e->key[0] && !e->slot && strcmp(e->key, "other") &&
                (!best || e->total > best->total))
                best = e;
        }
        if (!best)
            return;
        best->slot = 1;
        best->base = t->shown ? best->total : 0; /* nothing shown yet: take it all */
        t->used++;
    }
}

void fp_topn_metrics(fp_topn *t, fp_buf *b, const char *name, const char *help, const char *label)
{
    if (!t)
        return;
    fp_metrics_scrape f;
    if (fp_metrics_family_begin(
            b, &f,
            &(fp_metrics_opts){
                .name = name, .help = help, .type = FP_METRICS_COUNTER, .labels = {label}}) < 0)
        return;
    pthread_mutex_lock(&t->mu);
    hand_out(t);
    t->shown++;
    uint64_t other = t->spill;
    for (int i = 0; i < CELLS; i++) {
        const entry *e = &t->e[i];
        if (!e->key[0])
            continue;
        if (e->slot)
            fp_metrics_family_sample(b, &f, (const char *[]){e->key},
                                     (int64_t)(e->total - e->base));
        other += e->slot ? e->base : e->total;
    }
    pthread_mutex_unlock(&t->mu);
    fp_metrics_family_sample(b, &f, (const char *[]){"other"}, (int64_t)other);
}
