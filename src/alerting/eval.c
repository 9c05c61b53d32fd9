/* eval.c — the built-in evaluator (include/fapiao/alerting.h,
 * docs/alerting.md "Built-in evaluator"): each rule of the generated table
 * computed from the history, the way the PromQL of the same row computes
 * it, and each alert instance taken through pending → firing → resolved
 * with the rule's `for:` like Prometheus does (active at an evaluation:
 * pending from then; still active `for` later: firing; not active: gone,
 * resolved if it was firing).
 *
 * Windows are closed on both ends, [now - w, now], and an increase is the
 * sum of the rises between consecutive samples (a fall is a counter reset:
 * the new value counts whole), without Prometheus's extrapolation to the
 * window's edges: every rule compares an increase with another over the
 * same window (a ratio, a quantile) or divides it by the window, where the
 * two agree within a sample.  A gauge's value is its latest sample no
 * older than five minutes (Prometheus's lookback). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INST     16 /* alert instances per rule */
#define MAX_SERIES_R 64 /* series a rule reads at once */
#define LOOKBACK_MS  300000
#define MAX_BUCKETS  64

typedef struct inst {
    char labels[512];
    fp_alert_state state;
    int64_t since_ms;
    double value;
    int seen;
} inst;

/* A selector "family{k=v,...}" split: name and the matchers (or NULL). */
typedef struct sel {
    char name[128], match[384];
} sel;

typedef struct rule_state {
    const fp_alert_rule *r;
    sel num, den;
    inst in[MAX_INST];
} rule_state;

struct fp_aeval {
    fp_ahist *h;
    rule_state *rs;
    int n;
};

/* One candidate instance a rule's computation yields. */
typedef struct cand {
    char labels[512];
    double v;
} cand;

typedef struct collect {
    const fp_alert_rule *r;
    int64_t now_ms;
    int64_t from_ms; /* the window's start */
    cand c[MAX_SERIES_R];
    int n;
    /* quantile: buckets summed over the series */
    double le[MAX_BUCKETS], inc[MAX_BUCKETS];
    int nb;
    double sum; /* ratio: the summed increase */
} collect;

static int cmp(fp_alert_op op, double a, double b)
{
    switch (op) {
    case FP_AOP_GT:
        return a > b;
    case FP_AOP_GE:
        return a >= b;
    case FP_AOP_LT:
        return a < b;
    case FP_AOP_LE:
        return a <= b;
    case FP_AOP_EQ:
        return a == b;
    }
    return 0;
}

/* The latest sample at or before now, within the lookback; NaN if none. */
static double latest(const fp_ahist_point *p, int n, int64_t now_ms)
{
    for (int i = n - 1; i >= 0; i--)
        if (p[i].t_ms <= now_ms)
            return now_ms - p[i].t_ms <= LOOKBACK_MS ? p[i].v : NAN;
    return NAN;
}

/* The increase over [from, to]; NaN with fewer than two samples. */
static double increase(const fp_ahist_point *p, int n, int64_t from_ms, int64_t to_ms)
{
    double inc = 0, prev = NAN;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (p[i].t_ms < from_ms || p[i].t_ms > to_ms)
            continue;
        if (k++)
            inc += p[i].v >= prev ? p[i].v - prev : p[i].v;
        prev = p[i].v;
    }
    return k >= 2 ? inc : NAN;
}

/* predict_linear: least squares over [from, now], at now + horizon. */
static double predict(const fp_ahist_point *p, int n, int64_t from_ms, int64_t now_ms,
                      double horizon_s)
{
    double sx = 0, sy = 0, sxy = 0, sxx = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (p[i].t_ms < from_ms || p[i].t_ms > now_ms)
            continue;
        double x = (double)(p[i].t_ms - now_ms) / 1000.0;
        sx += x;
        sy += p[i].v;
        sxy += x * p[i].v;
        sxx += x * x;
        k++;
    }
    if (k < 2)
        return NAN;
    double cov = sxy - sx * sy / k, var = sxx - sx * sx / k;
    double slope = var != 0 ? cov / var : 0;
    double icpt = sy / k - slope * sx / k;
    return icpt + slope * horizon_s;
}

static void add_cand(collect *c, const char *key, double v)
{
    if (isnan(v) || c->n == MAX_SERIES_R)
        return;
    size_t cap = sizeof c->c[0].labels;
    strncpy(c->c[c->n].labels, key, cap - 1);
    c->c[c->n].labels[cap - 1] = 0;
    c->c[c->n++].v = v;
}

static void on_series(const char *key, const fp_ahist_point *p, int n, void *arg)
{
    collect *c = arg;
    const fp_alert_rule *r = c->r;
    switch (r->kind) {
    case FP_AK_GAUGE:
    case FP_AK_SHARE:
        add_cand(c, key, latest(p, n, c->now_ms));
        break;
    case FP_AK_EXPIRY:
        add_cand(c, key, latest(p, n, c->now_ms) - (double)c->now_ms / 1000.0);
        break;
    case FP_AK_PREDICT:
        add_cand(c, key, predict(p, n, c->from_ms, c->now_ms, r->horizon_s));
        break;
    case FP_AK_RATIO: {
        double inc = increase(p, n, c->from_ms, c->now_ms);
        if (!isnan(inc)) {
            c->sum = isnan(c->sum) ? inc : c->sum + inc;
        }
        break;
    }
    case FP_AK_QUANTILE: {
        char le[64];
        double inc = increase(p, n, c->from_ms, c->now_ms);
        if (isnan(inc) || !fp_ahist_label(key, "le", le, sizeof le))
            break;
        double b = !strcmp(le, "+Inf") ? INFINITY : strtod(le, NULL);
        int i = 0;
        while (i < c->nb && c->le[i] != b)
            i++;
        if (i == c->nb) {
            if (c->nb == MAX_BUCKETS)
                break;
            c->le[c->nb] = b;
            c->inc[c->nb++] = 0;
        }
        c->inc[i] += inc;
        break;
    }
    }
}

double fp_hist_quantile(double q, double *le, double *c, int n)
{
    for (int i = 1; i < n; i++) /* sort by le (a few buckets) */
        for (int j = i; j > 0 && le[j - 1] > le[j]; j--) {
            double t = le[j], u = c[j];
            le[j] = le[j - 1];
            c[j] = c[j - 1];
            le[j - 1] = t;
            c[j - 1] = u;
        }
    if (n < 2 || !isinf(le[n - 1]) || c[n - 1] <= 0)
        return NAN;
    double rank = q * c[n - 1];
    int b = 0;
    while (b < n - 1 && c[b] < rank)
        b++;
    if (b == n - 1)
        return le[n - 2];
    double lo = b ? le[b - 1] : 0, below = b ? c[b - 1] : 0;
    if (c[b] == below)
        return le[b];
    return lo + (le[b] - lo) * (rank - below) / (c[b] - below);
}

/* histogram_quantile over the collected buckets; NaN when there are no
 * observations. */
static double quantile(collect *c, double q)
{
    return fp_hist_quantile(q, c->le, c->inc, c->nb);
}

/* The summed increase of a selector's series over [now - w, now]. */
static double sel_increase(fp_aeval *e, const fp_alert_rule *r, const sel *m, int64_t now_ms,
                           int w_s)
{
    collect *c = calloc(1, sizeof *c);
    if (!c)
        return NAN;
    *c = (collect){.r = r, .now_ms = now_ms, .from_ms = now_ms - (int64_t)w_s * 1000, .sum = NAN};
    fp_ahist_each(e->h, m->name, m->match[0] ? m->match : NULL, on_series, c);
    double v = c->sum;
    free(c);
    return v;
}

static int sel_split(sel *s, const char *selector, fp_err *err)
{
    size_t n = strcspn(selector, "{");
    if (n >= sizeof s->name)
        return fp_fail(err, FP_EINVAL, "选择器无效 / bad selector: %s", selector);
    snprintf(s->name, sizeof s->name, "%.*s", (int)n, selector);
    s->match[0] = 0;
    if (selector[n] == '{')
        snprintf(s->match, sizeof s->match, "%.*s", (int)strcspn(selector + n + 1, "}"),
                 selector + n + 1);
    return 0;
}

/* A ratio rule: 1 (value: the first pair's long ratio) when a window pair
 * fires, else 0. */
static int ratio_fires(fp_aeval *e, rule_state *s, int64_t now_ms, double *value)
{
    const fp_alert_rule *r = s->r;
    int fires = 0;
    *value = NAN;
    for (int i = 0; i < r->nwindows; i++) {
        const fp_alert_window *w = &r->windows[i];
        double rl = sel_increase(e, r, &s->num, now_ms, w->long_s) /
                    sel_increase(e, r, &s->den, now_ms, w->long_s);
        double rs = sel_increase(e, r, &s->num, now_ms, w->short_s) /
                    sel_increase(e, r, &s->den, now_ms, w->short_s);
        if (i == 0)
            *value = rl;
        if (rl > w->ratio && rs > w->ratio) {
            double rate = sel_increase(e, r, &s->num, now_ms, w->short_s) / w->short_s;
            if (rate > r->min_rate)
                fires = 1;
        }
    }
    return fires;
}

/* A share rule: each series of the metric divided by the denominator's
 * series with the same labels (PromQL's one-to-one match); a series without
 * its denominator, or over 0, drops out as PromQL's division gives none
 * or Inf. */
static void share(fp_aeval *e, rule_state *s, collect *c)
{
    collect *d = calloc(1, sizeof *d);
    if (!d) {
        c->n = 0;
        return;
    }
    *d = (collect){.r = s->r, .now_ms = c->now_ms};
    fp_ahist_each(e->h, s->den.name, s->den.match[0] ? s->den.match : NULL, on_series, d);
    int k = 0;
    for (int i = 0; i < c->n; i++) {
        const char *l = strchr(c->c[i].labels, '{');
        for (int j = 0; j < d->n; j++) {
            const char *m = strchr(d->c[j].labels, '{');
            if (d->c[j].v > 0 && (l && m ? !strcmp(l, m) : !l && !m)) {
                c->c[k] = c->c[i];
                c->c[k++].v /= d->c[j].v;
                break;
            }
        }
    }
    c->n = k;
    free(d);
}

/* The instances active at now_ms into c (c->n of them). */
static void compute(fp_aeval *e, rule_state *s, int64_t now_ms, collect *c)
{
    const fp_alert_rule *r = s->r;
    memset(c, 0, sizeof *c);
    c->r = r;
    c->now_ms = now_ms;
    c->from_ms = now_ms - (int64_t)r->window_s * 1000;
    c->sum = NAN;
    if (r->kind == FP_AK_RATIO) {
        double v;
        if (ratio_fires(e, s, now_ms, &v))
            add_cand(c, "", v);
        return;
    }
    char bucket[160];
    const char *metric = r->metric;
    if (r->kind == FP_AK_QUANTILE) {
        snprintf(bucket, sizeof bucket, "%s_bucket", r->metric);
        metric = bucket;
    }
    fp_ahist_each(e->h, metric, r->match, on_series, c);
    if (r->kind == FP_AK_SHARE)
        share(e, s, c);
    if (r->kind == FP_AK_QUANTILE) {
        c->n = 0;
        add_cand(c, "", quantile(c, r->q));
    } else if (r->agg != FP_AGG_NONE && c->n) {
        double v = c->c[0].v;
        for (int i = 1; i < c->n; i++)
            v = r->agg == FP_AGG_SUM                        ? v + c->c[i].v
                : (r->agg == FP_AGG_MIN) == (c->c[i].v < v) ? c->c[i].v
                                                            : v;
        c->n = 0;
        add_cand(c, "", v);
    }
    /* keep the candidates that meet the condition */
    int k = 0;
    for (int i = 0; i < c->n; i++) {
        int ok = cmp(r->op, c->c[i].v, r->value);
        if (r->kind == FP_AK_EXPIRY && r->at_least > -1e300)
            ok = ok && c->c[i].v >= r->at_least;
        if (ok || r->kind == FP_AK_RATIO)
            c->c[k++] = c->c[i];
    }
    c->n = k;
}

static inst *inst_find(rule_state *s, const char *labels, int create)
{
    inst *free_slot = NULL;
    for (int i = 0; i < MAX_INST; i++) {
        if (s->in[i].state != FP_ALERT_INACTIVE && !strcmp(s->in[i].labels, labels))
            return &s->in[i];
        if (!free_slot && s->in[i].state == FP_ALERT_INACTIVE)
            free_slot = &s->in[i];
    }
    if (!create || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof *free_slot);
    snprintf(free_slot->labels, sizeof free_slot->labels, "%s", labels);
    return free_slot;
}

static int step_rule(fp_aeval *e, rule_state *s, int64_t now_ms, fp_aeval_fn fn, void *arg)
{
    collect *c = malloc(sizeof *c);
    if (!c)
        return 0;
    compute(e, s, now_ms, c);
    for (int i = 0; i < MAX_INST; i++)
        s->in[i].seen = 0;
    for (int i = 0; i < c->n; i++) {
        inst *in = inst_find(s, c->c[i].labels, 1);
        if (!in)
            continue;
        in->seen = 1;
        in->value = c->c[i].v;
        if (in->state == FP_ALERT_INACTIVE) {
            in->state = FP_ALERT_PENDING;
            in->since_ms = now_ms;
        }
        if (in->state == FP_ALERT_PENDING && now_ms - in->since_ms >= (int64_t)s->r->for_s * 1000) {
            in->state = FP_ALERT_FIRING;
            fp_alert_event ev = {s->r, in->labels, 0, in->value, in->since_ms, now_ms};
            if (fn)
                fn(&ev, arg);
        }
    }
    int firing = 0;
    for (int i = 0; i < MAX_INST; i++) {
        inst *in = &s->in[i];
        if (in->state == FP_ALERT_INACTIVE || in->seen) {
            firing += in->state == FP_ALERT_FIRING;
            continue;
        }
        if (in->state == FP_ALERT_FIRING && fn) {
            fp_alert_event ev = {s->r, in->labels, 1, in->value, in->since_ms, now_ms};
            fn(&ev, arg);
        }
        in->state = FP_ALERT_INACTIVE;
    }
    free(c);
    return firing;
}

int fp_aeval_run(fp_aeval *e, int64_t now_ms, fp_aeval_fn fn, void *arg)
{
    int firing = 0;
    for (int i = 0; i < e->n; i++)
        firing += step_rule(e, &e->rs[i], now_ms, fn, arg);
    return firing;
}

fp_alert_state fp_aeval_state(const fp_aeval *e, const char *rule)
{
    fp_alert_state st = FP_ALERT_INACTIVE;
    for (int i = 0; i < e->n; i++)
        if (!strcmp(e->rs[i].r->name, rule))
            for (int k = 0; k < MAX_INST; k++)
                if (e->rs[i].in[k].state > st)
                    st = e->rs[i].in[k].state;
    return st;
}

const fp_alert_rule *fp_alert_rule_find(const char *name)
{
    for (int i = 0; i < fp_alert_nrules; i++)
        if (!strcmp(fp_alert_rules[i].name, name))
            return &fp_alert_rules[i];
    return NULL;
}

/* The history keeps what a rule reads for its longest window plus its
 * `for:` (and a margin of two steps). */
static int watch_rule(fp_aeval *e, rule_state *s, fp_err *err)
{
    const fp_alert_rule *r = s->r;
    int keep = r->window_s + r->for_s + LOOKBACK_MS / 1000;
    for (int i = 0; i < r->nwindows; i++)
        if (r->windows[i].long_s + r->for_s + 60 > keep)
            keep = r->windows[i].long_s + r->for_s + 60;
    if (r->kind == FP_AK_RATIO) {
        int rc = sel_split(&s->num, r->num, err);
        if (rc == 0)
            rc = sel_split(&s->den, r->den, err);
        if (rc == 0)
            rc =
                fp_ahist_watch(e->h, s->num.name, s->num.match[0] ? s->num.match : NULL, keep, err);
        if (rc == 0)
            rc =
                fp_ahist_watch(e->h, s->den.name, s->den.match[0] ? s->den.match : NULL, keep, err);
        return rc;
    }
    if (r->kind == FP_AK_SHARE) {
        int rc = sel_split(&s->den, r->den, err);
        if (rc == 0)
            rc =
                fp_ahist_watch(e->h, s->den.name, s->den.match[0] ? s->den.match : NULL, keep, err);
        if (rc < 0)
            return rc;
    }
    char bucket[160];
    snprintf(bucket, sizeof bucket, "%s%s", r->metric, r->kind == FP_AK_QUANTILE ? "_bucket" : "");
    return fp_ahist_watch(e->h, bucket, r->match, keep, err);
}

fp_aeval *fp_aeval_new(fp_ahist *h, fp_err *err)
{
    fp_aeval *e = calloc(1, sizeof *e);
    if (!e || !(e->rs = calloc((size_t)fp_alert_nrules, sizeof *e->rs))) {
        free(e);
        fp_fail(err, FP_ENOMEM, "内存不足 / out of memory");
        return NULL;
    }
    e->h = h;
    for (int i = 0; i < fp_alert_nrules; i++) {
        e->rs[i].r = &fp_alert_rules[i];
        e->n = i + 1;
        if (watch_rule(e, &e->rs[i], err) < 0) {
            fp_aeval_free(e);
            return NULL;
        }
    }
    return e;
}

void fp_aeval_free(fp_aeval *e)
{
    if (!e)
        return;
    free(e->rs);
    free(e);
}
