/* metrics.c — the registry, series and exposition of metrics.h.
 *
 * Concurrency: the registry's list of families and collectors changes
 * only under m->lock, which fp_metrics_write holds too.  A family's series
 * live in a fixed array sized at registration; a new series is filled in
 * under the family's lock and then published by a release store of the
 * count, so lookups (acquire load, linear scan) never lock and a series,
 * once visible, never moves or changes its labels.  Values are relaxed
 * atomics: a scrape reads each one once, so it may see an observation's
 * bucket but not yet its sum — harmless for monitoring, and _count is
 * derived from the buckets so the histogram stays self-consistent. */
#include "fapiao/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHILDREN 64
#define MAX_NAME         200
#define MAX_VALUE        1024
#define DROPPED_NAME     "fapiao_metrics_series_dropped_total"

const int64_t fp_metrics_latency_us[FP_METRICS_LATENCY_US_N] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

struct fp_metric {
    _Atomic int64_t v;         /* counter or gauge value; histogram sum */
    _Atomic uint64_t *buckets; /* histogram: nbounds + 1 (the last is +Inf) */
    fp_metrics_family *fam;
    char *values[FP_METRICS_MAX_LABELS];
    char *lbl; /* rendered `a="x",b="y"` (escaped), "" without labels */
};

struct fp_metrics_family {
    fp_metrics *reg;
    char *name, *help;
    fp_metrics_type type;
    int nlabels;
    char *labels[FP_METRICS_MAX_LABELS];
    int64_t scale;
    int nbounds;
    int64_t bounds[FP_METRICS_MAX_BOUNDS];
    char le[FP_METRICS_MAX_BOUNDS][32]; /* bounds formatted for the `le` label */
    void (*collect)(fp_metrics_family *f, void *arg);
    void *arg;
    pthread_mutex_t lock; /* creating a series */
    fp_metric **children;
    size_t cap;
    _Atomic size_t n;
};

typedef struct entry {
    fp_metrics_family *fam; /* or, when NULL, a collector: */
    void (*fn)(fp_buf *out, void *arg);
    void *arg;
} entry;

struct fp_metrics {
    pthread_mutex_t lock;
    entry *e;
    size_t n, cap;
    _Atomic uint64_t dropped; /* series refused */
};

/* ---- names ---- */

static const char *const type_names[] = {"counter", "gauge", "histogram"};

/* Words promtool's linter refuses after an underscore: metric types and
 * abbreviated units. */
static const char *const banned_words[] = {
    "counter", "gauge", "histogram", "summary", "s",  "ms", "us", "ns", "sec",
    "b",       "kb",    "mb",        "gb",      "tb", "pb", "m",  "h",  "d",
};

/* Units the linter knows; a word that is one of them with an SI prefix, or
 * a non-base one, is refused ("use base unit"). */
static const struct {
    const char *unit;
    int base;
} units[] = {
    {"amperes", 1}, {"bytes", 1},  {"celsius", 1}, {"grams", 1},      {"joules", 1},  {"kelvin", 1},
    {"meters", 1},  {"metres", 1}, {"seconds", 1}, {"volts", 1},      {"minutes", 0}, {"hours", 0},
    {"days", 0},    {"weeks", 0},  {"kelvins", 0}, {"fahrenheit", 0}, {"rankine", 0}, {"inches", 0},
    {"yards", 0},   {"miles", 0},  {"bits", 0},    {"calories", 0},   {"pounds", 0},  {"ounces", 0},
};

static const char *const unit_prefixes[] = {
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo",
    "kibi", "mega", "mibi",  "giga",  "gibi",  "tera", "tebi", "peta",  "pebi",
};

static int is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The format's syntax: [a-zA-Z_:][a-zA-Z0-9_:]* for metric names,
 * without the colons for label names. */
static int syntax_ok(const char *s, int colon)
{
    if (!s || !*s || strlen(s) > MAX_NAME)
        return 0;
    for (const char *p = s; *p; p++)
        if (!(is_alpha_(*p) || (colon && *p == ':') || (p > s && is_digit(*p))))
            return 0;
    return 1;
}

static int has_upper(const char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            return 1;
    return 0;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int word_is(const char *w, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(w, s, n) == 0;
}

/* A non-base or prefixed unit: "milliseconds", "kilobytes", "hours". */
static int bad_unit(const char *w, size_t n)
{
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ul = strlen(units[u].unit);
        if (n < ul || memcmp(w + n - ul, units[u].unit, ul) != 0)
            continue;
        if (n == ul) {
            if (!units[u].base)
                return 1;
            continue;
        }
        for (size_t p = 0; p < sizeof unit_prefixes / sizeof unit_prefixes[0]; p++)
            if (strlen(unit_prefixes[p]) == n - ul && memcmp(w, unit_prefixes[p], n - ul) == 0)
                return 1;
    }
    return 0;
}

int fp_metrics_check_name(const char *name, fp_metrics_type type, fp_err *err)
{
    if ((unsigned)type > FP_METRICS_HISTOGRAM)
        return fp_fail(err, FP_EINVAL, "metric type %d unknown", (int)type);
    if (!syntax_ok(name, 1))
        return fp_fail(err, FP_EINVAL, "metric name \"%s\" is not [a-zA-Z_:][a-zA-Z0-9_:]*",
                       name ? name : "(null)");
    if (strchr(name, ':'))
        return fp_fail(err, FP_EINVAL, "metric name %s: ':' is for recording rules", name);
    if (has_upper(name))
        return fp_fail(err, FP_EINVAL, "metric name %s: use snake_case", name);
    if (type == FP_METRICS_COUNTER && !ends_with(name, "_total"))
        return fp_fail(err, FP_EINVAL, "counter %s must end in _total", name);
    if (type != FP_METRICS_COUNTER && ends_with(name, "_total"))
        return fp_fail(err, FP_EINVAL, "%s: only counters end in _total", name);
    if (type != FP_METRICS_HISTOGRAM &&
        (ends_with(name, "_bucket") || ends_with(name, "_count") || ends_with(name, "_sum")))
        return fp_fail(err, FP_EINVAL, "%s: _bucket, _count and _sum are for histograms", name);
    for (const char *w = name; *w;) {
        size_t n = strcspn(w, "_");
        if (n > 0) {
            if (w > name)
                for (size_t i = 0; i < sizeof banned_words / sizeof banned_words[0]; i++)
                    if (word_is(w, n, banned_words[i]))
                        return fp_fail(err, FP_EINVAL,
                                       "metric name %s: no type names or abbreviated units (%s)",
                                       name, banned_words[i]);
            if (bad_unit(w, n))
                return fp_fail(err, FP_EINVAL, "metric name %s: use base units (%.*s)", name,
                               (int)n, w);
        }
        w += n;
        if (*w == '_')
            w++;
    }
    return 0;
}

static int check_label(const char *l, fp_err *err)
{
    if (!syntax_ok(l, 0))
        return fp_fail(err, FP_EINVAL, "label name \"%s\" is not [a-zA-Z_][a-zA-Z0-9_]*", l);
    if (strncmp(l, "__", 2) == 0)
        return fp_fail(err, FP_EINVAL, "label name %s: __ is reserved", l);
    if (has_upper(l))
        return fp_fail(err, FP_EINVAL, "label name %s: use snake_case", l);
    if (strcmp(l, "le") == 0 || strcmp(l, "quantile") == 0)
        return fp_fail(err, FP_EINVAL, "label name %s is reserved", l);
    return 0;
}

/* Whether `name` and an existing family's exposed names overlap. */
static int collides(const fp_metrics_family *e, const char *name, fp_metrics_type type)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    if (strcmp(e->name, name) == 0)
        return 1;
    size_t el = strlen(e->name), nl = strlen(name);
    for (size_t i = 0; i < 3; i++) {
        if (e->type == FP_METRICS_HISTOGRAM && nl == el + strlen(sfx[i]) &&
            strncmp(name, e->name, el) == 0 && strcmp(name + el, sfx[i]) == 0)
            return 1;
        if (type == FP_METRICS_HISTOGRAM && el == nl + strlen(sfx[i]) &&
            strncmp(e->name, name, nl) == 0 && strcmp(e->name + nl, sfx[i]) == 0)
            return 1;
    }
    return 0;
}

/* ---- formatting ---- */

static int scale_ok(int64_t s)
{
    for (int64_t p = 1;; p *= 10) {
        if (p == s)
            return 1;
        if (p > INT64_MAX / 10)
            return 0;
    }
}

int fp_metrics_fmt(char *buf, int64_t v, int64_t scale)
{
    if (scale <= 0)
        scale = 1;
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t s = (uint64_t)scale, ip = mag / s, fr = mag % s;
    int n = snprintf(buf, 32, "%s%" PRIu64, v < 0 ? "-" : "", ip);
    if (fr) {
        int digits = 0;
        for (uint64_t t = s; t > 1; t /= 10)
            digits++;
        char tmp[24];
        int k = snprintf(tmp, sizeof tmp, "%0*" PRIu64, digits, fr);
        while (k > 0 && tmp[k - 1] == '0')
            k--;
        n += snprintf(buf + n, (size_t)(32 - n), ".%.*s", k, tmp);
    }
    return n;
}

void fp_metrics_escape(fp_buf *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!rep)
            continue;
        fp_buf_append(out, run, (size_t)(s - run));
        fp_buf_puts(out, rep);
        run = s + 1;
    }
    fp_buf_append(out, run, (size_t)(s - run));
}

/* HELP text escapes only backslash and newline. */
static void put_header(fp_buf *out, const char *name, const char *help, fp_metrics_type type)
{
    fp_buf_puts(out, "# HELP ");
    fp_buf_puts(out, name);
    fp_buf_puts(out, " ");
    const char *run = help;
    for (; *help; help++) {
        if (*help != '\\' && *help != '\n')
            continue;
        fp_buf_append(out, run, (size_t)(help - run));
        fp_buf_puts(out, *help == '\\' ? "\\\\" : "\\n");
        run = help + 1;
    }
    fp_buf_append(out, run, (size_t)(help - run));
    fp_buf_puts(out, "\n# TYPE ");
    fp_buf_puts(out, name);
    fp_buf_puts(out, " ");
    fp_buf_puts(out, type_names[type]);
    fp_buf_puts(out, "\n");
}

/* name+suffix{lbl,le="le"} value */
static void put_sample(fp_buf *out, const char *name, const char *suffix, const char *lbl,
                       const char *le, int64_t v, int64_t scale)
{
    char num[32];
    fp_buf_puts(out, name);
    fp_buf_puts(out, suffix);
    if (*lbl || le) {
        fp_buf_puts(out, "{");
        fp_buf_puts(out, lbl);
        if (le) {
            fp_buf_puts(out, *lbl ? ",le=\"" : "le=\"");
            fp_buf_puts(out, le);
            fp_buf_puts(out, "\"");
        }
        fp_buf_puts(out, "}");
    }
    fp_buf_puts(out, " ");
    fp_buf_append(out, num, (size_t)fp_metrics_fmt(num, v, scale));
    fp_buf_puts(out, "\n");
}

void fp_metrics_emit(fp_buf *out, const char *name, const char *help, fp_metrics_type type,
                     int64_t value, int64_t scale)
{
    fp_metrics_scrape f;
    fp_metrics_opts o = {.name = name, .help = help, .type = type, .scale = scale};
    if (fp_metrics_family_begin(out, &f, &o) == 0)
        fp_metrics_family_sample(out, &f, NULL, value);
}

/* ---- series ---- */

static void child_free(fp_metric *c)
{
    if (!c)
        return;
    free(c->lbl);
    for (int i = 0; i < FP_METRICS_MAX_LABELS; i++)
        free(c->values[i]);
    free((void *)c->buckets);
    free(c);
}

static fp_metric *child_new(fp_metrics_family *f, const char *const *values)
{
    fp_metric *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fam = f;
    atomic_init(&c->v, 0);
    if (f->type == FP_METRICS_HISTOGRAM) {
        c->buckets = malloc(sizeof *c->buckets * (size_t)(f->nbounds + 1));
        if (!c->buckets)
            goto fail;
        for (int i = 0; i <= f->nbounds; i++)
            atomic_init(&c->buckets[i], 0);
    }
    fp_buf b;
    fp_buf_init(&b, 8 * MAX_VALUE);
    for (int i = 0; i < f->nlabels; i++) {
        if (!(c->values[i] = strdup(values[i])))
            break;
        fp_buf_printf(&b, "%s%s=\"", i ? "," : "", f->labels[i]);
        fp_metrics_escape(&b, values[i]);
        fp_buf_puts(&b, "\"");
    }
    c->lbl = fp_buf_take(&b, NULL);
    if (!c->lbl || (f->nlabels > 0 && !c->values[f->nlabels - 1]))
        goto fail;
    return c;
fail:
    child_free(c);
    return NULL;
}

static int same_values(const fp_metric *c, int n, const char *const *values)
{
    for (int i = 0; i < n; i++)
        if (strcmp(c->values[i], values[i]) != 0)
            return 0;
    return 1;
}

static fp_metric *find(fp_metrics_family *f, size_t from, size_t to, const char *const *values)
{
    for (size_t i = from; i < to; i++)
        if (same_values(f->children[i], f->nlabels, values))
            return f->children[i];
    return NULL;
}

fp_metric *fp_metrics_child(fp_metrics_family *f, const char *const *values)
{
    if (!f)
        return NULL;
    size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
    if (f->nlabels == 0)
        return n ? f->children[0] : NULL;
    if (!values)
        goto refuse;
    for (int i = 0; i < f->nlabels; i++) {
        if (!values[i])
            goto refuse;
        size_t len = strlen(values[i]);
        if (len > MAX_VALUE || !fp_utf8_valid(values[i], len))
            goto refuse;
    }
    fp_metric *c = find(f, 0, n, values);
    if (c)
        return c;
    pthread_mutex_lock(&f->lock);
    size_t n2 = atomic_load_explicit(&f->n, memory_order_relaxed);
    c = find(f, n, n2, values);
    if (!c && n2 < f->cap && (c = child_new(f, values)) != NULL) {
        f->children[n2] = c;
        atomic_store_explicit(&f->n, n2 + 1, memory_order_release);
    }
    pthread_mutex_unlock(&f->lock);
    if (c)
        return c;
refuse:
    atomic_fetch_add_explicit(&f->reg->dropped, 1, memory_order_relaxed);
    return NULL;
}

void fp_counter_add(fp_metric *c, int64_t n)
{
    if (c && n > 0)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void fp_counter_inc(fp_metric *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, 1, memory_order_relaxed);
}

void fp_gauge_set(fp_metric *g, int64_t v)
{
    if (g)
        atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

void fp_gauge_add(fp_metric *g, int64_t d)
{
    if (g)
        atomic_fetch_add_explicit(&g->v, d, memory_order_relaxed);
}

void fp_hist_observe(fp_metric *h, int64_t v)
{
    if (!h || !h->buckets)
        return;
    /* the first bound >= v: a value equal to a bound counts in its bucket */
    const int64_t *b = h->fam->bounds;
    int lo = 0, hi = h->fam->nbounds;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (b[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->v, v, memory_order_relaxed);
}

int64_t fp_metric_value(const fp_metric *x)
{
    return x ? atomic_load_explicit(&((fp_metric *)x)->v, memory_order_relaxed) : 0;
}

uint64_t fp_hist_count(const fp_metric *h)
{
    uint64_t n = 0;
    if (h && h->buckets)
        for (int i = 0; i <= h->fam->nbounds; i++)
            n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return n;
}

/* ---- registry ---- */

static void family_free(fp_metrics_family *f)
{
    if (!f)
        return;
    size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        child_free(f->children[i]);
    free(f->children);
    pthread_mutex_destroy(&f->lock);
    for (int i = 0; i < FP_METRICS_MAX_LABELS; i++)
        free(f->labels[i]);
    free(f->help);
    free(f->name);
    free(f);
}

fp_metrics *fp_metrics_new(void)
{
    fp_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    atomic_init(&m->dropped, 0);
    return m;
}

void fp_metrics_free(fp_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        family_free(m->e[i].fam);
    free(m->e);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Appends an entry; call with m->lock held. */
static int add_entry(fp_metrics *m, entry e)
{
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        entry *ne = realloc(m->e, nc * sizeof *ne);
        if (!ne)
            return FP_ENOMEM;
        m->e = ne;
        m->cap = nc;
    }
    m->e[m->n++] = e;
    return 0;
}

static int check_opts(const fp_metrics_opts *o, int *nlabels, fp_err *err)
{
    int rc = fp_metrics_check_name(o->name, o->type, err);
    if (rc < 0)
        return rc;
    if (!o->help || !*o->help)
        return fp_fail(err, FP_EINVAL, "%s: help text required", o->name);
    int n = 0;
    while (n < FP_METRICS_MAX_LABELS && o->labels[n])
        n++;
    for (int i = n; i < FP_METRICS_MAX_LABELS; i++)
        if (o->labels[i])
            return fp_fail(err, FP_EINVAL, "%s: label names after a NULL", o->name);
    for (int i = 0; i < n; i++) {
        if ((rc = check_label(o->labels[i], err)) < 0)
            return rc;
        for (int j = 0; j < i; j++)
            if (strcmp(o->labels[i], o->labels[j]) == 0)
                return fp_fail(err, FP_EINVAL, "%s: label %s twice", o->name, o->labels[i]);
    }
    if (o->scale != 0 && !scale_ok(o->scale))
        return fp_fail(err, FP_EINVAL, "%s: scale %" PRId64 " is not a power of ten", o->name,
                       o->scale);
    if (o->max_children < 0)
        return fp_fail(err, FP_EINVAL, "%s: max_children < 0", o->name);
    if (o->type == FP_METRICS_HISTOGRAM) {
        if (!o->bounds || o->nbounds < 1 || o->nbounds > FP_METRICS_MAX_BOUNDS)
            return fp_fail(err, FP_EINVAL, "%s: a histogram needs 1..%d bounds", o->name,
                           FP_METRICS_MAX_BOUNDS);
        for (int i = 1; i < o->nbounds; i++)
            if (o->bounds[i] <= o->bounds[i - 1])
                return fp_fail(err, FP_EINVAL, "%s: bounds must increase", o->name);
    } else if (o->bounds || o->nbounds) {
        return fp_fail(err, FP_EINVAL, "%s: bounds are for histograms", o->name);
    }
    *nlabels = n;
    return 0;
}

/* ---- families written by collectors ---- */

int fp_metrics_family_begin(fp_buf *out, fp_metrics_scrape *f, const fp_metrics_opts *o)
{
    fp_err err = {0};
    int n = 0;
    memset(f, 0, sizeof *f);
    if (!o || o->type == FP_METRICS_HISTOGRAM || check_opts(o, &n, &err) < 0)
        return FP_EINVAL;
    f->name = o->name;
    f->nlabels = n;
    for (int i = 0; i < n; i++)
        f->labels[i] = o->labels[i];
    f->scale = o->scale ? o->scale : 1;
    f->ok = 1;
    put_header(out, o->name, o->help, o->type);
    return 0;
}

void fp_metrics_family_sample(fp_buf *out, const fp_metrics_scrape *f, const char *const *values,
                              int64_t v)
{
    if (!f->ok)
        return;
    fp_buf lbl;
    fp_buf_init(&lbl, FP_METRICS_MAX_LABELS * (2 * MAX_VALUE + 64));
    for (int i = 0; i < f->nlabels; i++) {
        size_t len = values && values[i] ? strlen(values[i]) : 0;
        if (!values || !values[i] || len > MAX_VALUE || !fp_utf8_valid(values[i], len)) {
            fp_buf_free(&lbl);
            return;
        }
        fp_buf_printf(&lbl, "%s%s=\"", i ? "," : "", f->labels[i]);
        fp_metrics_escape(&lbl, values[i]);
        fp_buf_puts(&lbl, "\"");
    }
    fp_buf_append(&lbl, "", 1); /* NUL-terminated */
    if (!lbl.overflow)
        put_sample(out, f->name, "", lbl.p, NULL, v, f->scale);
    fp_buf_free(&lbl);
}

int fp_metrics_register(fp_metrics *m, const fp_metrics_opts *o, fp_metrics_family **out,
                        fp_err *err)
{
    int nlabels = 0, rc;
    if (!m || !o)
        return fp_fail(err, FP_EINVAL, "no registry or options");
    if ((rc = check_opts(o, &nlabels, err)) < 0)
        return rc;
    fp_metrics_family *f = calloc(1, sizeof *f);
    if (!f)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    pthread_mutex_init(&f->lock, NULL);
    atomic_init(&f->n, 0);
    f->reg = m;
    f->type = o->type;
    f->nlabels = nlabels;
    f->scale = o->scale ? o->scale : 1;
    f->collect = o->collect;
    f->arg = o->arg;
    f->cap = nlabels == 0 ? 1 : o->max_children ? (size_t)o->max_children : DEFAULT_CHILDREN;
    if (o->type == FP_METRICS_HISTOGRAM) {
        f->nbounds = o->nbounds;
        for (int i = 0; i < o->nbounds; i++) {
            f->bounds[i] = o->bounds[i];
            fp_metrics_fmt(f->le[i], o->bounds[i], f->scale);
        }
    }
    if (!(f->name = strdup(o->name)) || !(f->help = strdup(o->help)) ||
        !(f->children = calloc(f->cap, sizeof *f->children)))
        goto nomem;
    for (int i = 0; i < nlabels; i++)
        if (!(f->labels[i] = strdup(o->labels[i])))
            goto nomem;
    if (nlabels == 0) {
        if (!(f->children[0] = child_new(f, NULL)))
            goto nomem;
        atomic_store_explicit(&f->n, 1, memory_order_release);
    }

    pthread_mutex_lock(&m->lock);
    if (strcmp(o->name, DROPPED_NAME) == 0) {
        rc = fp_fail(err, FP_ECONFLICT, "%s is the registry's own", o->name);
        goto unlock;
    }
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].fam && collides(m->e[i].fam, o->name, o->type)) {
            rc = fp_fail(err, FP_ECONFLICT, "%s clashes with %s", o->name, m->e[i].fam->name);
            goto unlock;
        }
    if ((rc = add_entry(m, (entry){.fam = f})) < 0)
        fp_fail(err, rc, "out of memory");
unlock:
    pthread_mutex_unlock(&m->lock);
    if (rc < 0) {
        family_free(f);
        return rc;
    }
    if (out)
        *out = f;
    return 0;
nomem:
    family_free(f);
    return fp_fail(err, FP_ENOMEM, "out of memory");
}

int fp_metrics_add_collector(fp_metrics *m, void (*fn)(fp_buf *out, void *arg), void *arg)
{
    if (!m || !fn)
        return FP_EINVAL;
    pthread_mutex_lock(&m->lock);
    int rc = add_entry(m, (entry){.fn = fn, .arg = arg});
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static void write_family(fp_metrics_family *f, fp_buf *out)
{
    if (f->collect)
        f->collect(f, f->arg);
    size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
    if (n == 0)
        return; /* a labelled family nobody used yet: nothing to say */
    put_header(out, f->name, f->help, f->type);
    for (size_t i = 0; i < n; i++) {
        fp_metric *c = f->children[i];
        int64_t v = atomic_load_explicit(&c->v, memory_order_relaxed);
        if (f->type != FP_METRICS_HISTOGRAM) {
            put_sample(out, f->name, "", c->lbl, NULL, v, f->scale);
            continue;
        }
        uint64_t cum = 0;
        for (int k = 0; k <= f->nbounds; k++) {
            cum += atomic_load_explicit(&c->buckets[k], memory_order_relaxed);
            put_sample(out, f->name, "_bucket", c->lbl, k < f->nbounds ? f->le[k] : "+Inf",
                       (int64_t)cum, 1);
        }
        put_sample(out, f->name, "_sum", c->lbl, NULL, v, f->scale);
        put_sample(out, f->name, "_count", c->lbl, NULL, (int64_t)cum, 1);
    }
}

int fp_metrics_write(fp_metrics *m, fp_buf *out)
{
    if (!m || !out)
        return FP_EINVAL;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n; i++) {
        if (m->e[i].fam)
            write_family(m->e[i].fam, out);
        else
            m->e[i].fn(out, m->e[i].arg);
    }
    uint64_t dropped = atomic_load_explicit(&m->dropped, memory_order_relaxed);
    if (dropped)
        fp_metrics_emit(out, DROPPED_NAME,
                        "Label sets refused: a family's cap was reached or a value was invalid.",
                        FP_METRICS_COUNTER, (int64_t)dropped, 1);
    pthread_mutex_unlock(&m->lock);
    return out->overflow ? FP_ENOMEM : 0;
}
