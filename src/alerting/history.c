/* history.c — the in-memory metrics history the built-in evaluator reads
 * and the console charts (include/fapiao/alerting.h, docs/alerting.md).
 *
 * Why only watched series: /metrics has thousands of series (a histogram
 * per route, per bucket), and keeping hours of each would cost tens of MB.
 * A watch names a family and a matcher; a series is kept only when one
 * takes it, for the longest keep_s of those that do.  Series and watches
 * have caps; a sample beyond them is dropped, never an allocation without
 * bound.  Everything is under one mutex: a scrape every few seconds and an
 * evaluation after it are the only writers and readers. */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WATCHES 64
#define MAX_SERIES  1024
#define MAX_POINTS  8192 /* per series: 6 h at 5 s is 4320 */

typedef struct series {
    char *key;
    size_t name_len; /* the family name: key[0..name_len) */
    fp_ahist_point *p;
    int cap, head, n; /* ring: oldest at head */
} series;

struct fp_ahist {
    pthread_mutex_t lock;
    int step_s;
    fp_amatch watches[MAX_WATCHES];
    int keep_s[MAX_WATCHES];
    int nwatches;
    series s[MAX_SERIES];
    int ns;
};

fp_ahist *fp_ahist_new(int step_s)
{
    fp_ahist *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    h->step_s = step_s > 0 ? step_s : 1;
    return h;
}

void fp_ahist_free(fp_ahist *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->nwatches; i++)
        fp_amatch_free(&h->watches[i]);
    for (int i = 0; i < h->ns; i++) {
        free(h->s[i].key);
        free(h->s[i].p);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

int fp_ahist_watch(fp_ahist *h, const char *metric, const char *match, int keep_s, fp_err *err)
{
    pthread_mutex_lock(&h->lock);
    int rc = FP_ENOMEM;
    if (h->nwatches < MAX_WATCHES) {
        rc = fp_amatch_parse(&h->watches[h->nwatches], metric, match, err);
        if (rc == 0)
            h->keep_s[h->nwatches++] = keep_s;
    } else {
        fp_fail(err, rc, "监视的序列过多 / too many watched series");
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* The longest keep of the watches taking key (0: none). */
static int keep_for(const fp_ahist *h, const char *key, size_t name_len)
{
    int keep = 0;
    for (int i = 0; i < h->nwatches; i++)
        if (h->keep_s[i] > keep && fp_amatch_key(&h->watches[i], key, name_len))
            keep = h->keep_s[i];
    return keep;
}

static series *find_series(fp_ahist *h, const char *key)
{
    for (int i = 0; i < h->ns; i++)
        if (!strcmp(h->s[i].key, key))
            return &h->s[i];
    return NULL;
}

static series *new_series(fp_ahist *h, const char *key, size_t name_len, int keep_s)
{
    if (h->ns == MAX_SERIES)
        return NULL;
    long cap = (long)keep_s / h->step_s + 2;
    if (cap > MAX_POINTS)
        cap = MAX_POINTS;
    series *s = &h->s[h->ns];
    s->key = strdup(key);
    s->p = calloc((size_t)cap, sizeof *s->p);
    if (!s->key || !s->p) {
        free(s->key);
        free(s->p);
        memset(s, 0, sizeof *s);
        return NULL;
    }
    s->name_len = name_len;
    s->cap = (int)cap;
    h->ns++;
    return s;
}

static size_t name_len_of(const char *key)
{
    return strcspn(key, "{ ");
}

/* 1 when the sample was kept. */
static int add_locked(fp_ahist *h, const char *key, int64_t t_ms, double v)
{
    if (isnan(v))
        return 0;
    series *s = find_series(h, key);
    if (!s) {
        size_t nl = name_len_of(key);
        int keep = keep_for(h, key, nl);
        if (keep <= 0 || !(s = new_series(h, key, nl, keep)))
            return 0;
    }
    if (s->n && s->p[(s->head + s->n - 1) % s->cap].t_ms >= t_ms)
        return 0; /* time goes forward only */
    if (s->n == s->cap) {
        s->head = (s->head + 1) % s->cap;
        s->n--;
    }
    s->p[(s->head + s->n) % s->cap] = (fp_ahist_point){t_ms, v};
    s->n++;
    return 1;
}

void fp_ahist_add(fp_ahist *h, const char *key, int64_t t_ms, double v)
{
    pthread_mutex_lock(&h->lock);
    (void)add_locked(h, key, t_ms, v);
    pthread_mutex_unlock(&h->lock);
}

/* One exposition line "key value [ts]" into key (NUL-terminated copy) and
 * v: 1, or 0 for comments, blank and malformed lines. */
static int parse_line(const char *line, size_t n, char *key, size_t cap, double *v)
{
    if (!n || line[0] == '#')
        return 0;
    /* the key ends at the first space outside the braces */
    size_t i = 0;
    int in_braces = 0, in_quotes = 0;
    for (; i < n; i++) {
        char c = line[i];
        if (in_quotes) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_quotes = 0;
        } else if (c == '"') {
            in_quotes = 1;
        } else if (c == '{') {
            in_braces = 1;
        } else if (c == '}') {
            in_braces = 0;
        } else if (c == ' ' && !in_braces) {
            break;
        }
    }
    if (i >= n || i + 1 > cap)
        return 0;
    memcpy(key, line, i);
    key[i] = 0;
    char num[64];
    size_t j = i + 1, k = 0;
    while (j < n && line[j] != ' ' && k + 1 < sizeof num)
        num[k++] = line[j++];
    num[k] = 0;
    char *end;
    *v = strtod(num, &end);
    return k > 0 && *end == 0;
}

int fp_ahist_add_text(fp_ahist *h, const char *text, size_t len, int64_t t_ms)
{
    char key[1536];
    int kept = 0;
    pthread_mutex_lock(&h->lock);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        double v;
        if (parse_line(p, n, key, sizeof key, &v))
            kept += add_locked(h, key, t_ms, v);
        p += n + 1;
    }
    pthread_mutex_unlock(&h->lock);
    return kept;
}

int fp_ahist_each(fp_ahist *h, const char *metric, const char *match, fp_ahist_fn fn, void *arg)
{
    fp_amatch m;
    fp_err err = {0};
    if (fp_amatch_parse(&m, metric, match, &err) < 0)
        return 0;
    fp_ahist_point *buf = malloc(MAX_POINTS * sizeof *buf);
    int count = 0;
    pthread_mutex_lock(&h->lock);
    for (int i = 0; buf && i < h->ns; i++) {
        series *s = &h->s[i];
        if (!fp_amatch_key(&m, s->key, s->name_len))
            continue;
        for (int k = 0; k < s->n; k++)
            buf[k] = s->p[(s->head + k) % s->cap];
        fn(s->key, buf, s->n, arg);
        count++;
    }
    pthread_mutex_unlock(&h->lock);
    free(buf);
    fp_amatch_free(&m);
    return count;
}
