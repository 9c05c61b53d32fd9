/* alerting.h — the built-in alert evaluator and its metrics history
 * (docs/alerting.md "Built-in evaluator"), for single-node installs without
 * Prometheus.
 *
 * The rules are the same table as Prometheus's (deploy/alerts.yaml): the
 * generator writes them into src/alerting/rules_gen.c as fp_alert_rules,
 * each in one of a few shapes the evaluator knows (a gauge against a
 * threshold, a histogram quantile, a linear prediction, an expiry, a ratio
 * of two counters' increases over window pairs).  Alerts that need what a
 * process cannot have (weeks of history; seeing itself down) are listed in
 * fp_alert_prom_only_rules with the reason.
 *
 * The history (fp_ahist) keeps, per series the rules read (and any a
 * caller adds with fp_ahist_watch: the console charts), a ring of
 * (wall-clock ms, value) samples, as long as the longest window that reads
 * it.  Samples come from the Prometheus text exposition (the server's own
 * /metrics, written in memory) or one at a time (the unit tests feed
 * promtool's series).  The evaluator (fp_aeval) runs every rule at a given
 * time, tracks each alert instance through pending → firing → resolved
 * with the rule's `for:`, and reports transitions to a callback. */
#ifndef FAPIAO_ALERTING_H
#define FAPIAO_ALERTING_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"

typedef enum fp_alert_kind {
    FP_AK_GAUGE = 0, /* agg(latest of matching series) op value */
    FP_AK_QUANTILE,  /* histogram_quantile(q, increase over window) op value */
    FP_AK_PREDICT,   /* predict_linear(window, horizon) op value */
    FP_AK_EXPIRY,    /* value - now op value (and >= at_least when >= 0) */
    FP_AK_RATIO      /* any window pair: inc(num)/inc(den) > ratio over both */
} fp_alert_kind;

typedef enum fp_alert_op { FP_AOP_GT = 0, FP_AOP_GE, FP_AOP_LT, FP_AOP_LE, FP_AOP_EQ } fp_alert_op;
typedef enum fp_alert_agg { FP_AGG_NONE = 0, FP_AGG_MIN, FP_AGG_MAX, FP_AGG_SUM } fp_alert_agg;

typedef struct fp_alert_window {
    int long_s, short_s; /* both windows must exceed the ratio */
    double ratio;
} fp_alert_window;

typedef struct fp_alert_rule {
    const char *name, *severity, *runbook;
    int for_s;
    const char *summary_zh, *summary_en; /* may hold {{ $labels.NAME }} */
    fp_alert_kind kind;
    const char *metric; /* a family (a histogram's without _bucket) */
    const char *match;  /* "k=v,k=~regex" or NULL */
    fp_alert_agg agg;
    fp_alert_op op;
    double value, at_least, q;
    int window_s, horizon_s;
    const char *num, *den; /* ratio: "family{k=v,...}" selectors */
    fp_alert_window windows[2];
    int nwindows;
    double min_rate; /* ratio: the numerator's rate (per s) must exceed it too */
} fp_alert_rule;

typedef struct fp_alert_prom_only {
    const char *name, *reason_zh, *reason_en;
} fp_alert_prom_only;

extern const fp_alert_rule fp_alert_rules[];
extern const int fp_alert_nrules;
extern const fp_alert_prom_only fp_alert_prom_only_rules[];
extern const int fp_alert_nprom_only;

/* ---- the history ---- */

typedef struct fp_ahist fp_ahist;
typedef struct fp_ahist_point {
    int64_t t_ms;
    double v;
} fp_ahist_point;

/* step_s: the sampling interval the rings are sized for (>= 1); the rules'
 * series are watched from the start.  NULL when out of memory. */
fp_ahist *fp_ahist_new(int step_s);
void fp_ahist_free(fp_ahist *h);

/* Keep series of family `metric` matching `match` (NULL: all) for keep_s
 * seconds.  0, FP_EINVAL (bad matcher) or FP_ENOMEM. */
int fp_ahist_watch(fp_ahist *h, const char *metric, const char *match, int keep_s, fp_err *err);

/* One sample of the series `key` ("name{k=\"v\",...}" as exposed); kept
 * when a watch takes it.  v NaN: a missing sample (skipped). */
void fp_ahist_add(fp_ahist *h, const char *key, int64_t t_ms, double v);

/* Every sample of a text exposition, at t_ms.  Returns the samples kept. */
int fp_ahist_add_text(fp_ahist *h, const char *text, size_t len, int64_t t_ms);

/* Calls fn for each kept series of family `metric` (a histogram's buckets:
 * metric "X_bucket") matching `match`, with its samples oldest first, under
 * the history's lock (fn must not call back into h).  Returns how many. */
typedef void (*fp_ahist_fn)(const char *key, const fp_ahist_point *p, int n, void *arg);
int fp_ahist_each(fp_ahist *h, const char *metric, const char *match, fp_ahist_fn fn, void *arg);

/* A label's value in a series key into out (""/0 when absent): 1 if found. */
int fp_ahist_label(const char *key, const char *label, char *out, size_t cap);

/* ---- the evaluator ---- */

typedef enum fp_alert_state {
    FP_ALERT_INACTIVE = 0,
    FP_ALERT_PENDING,
    FP_ALERT_FIRING
} fp_alert_state;

/* A transition the evaluator reports: firing (resolved 0) or resolved. */
typedef struct fp_alert_event {
    const fp_alert_rule *rule;
    const char *labels; /* the instance's series key, or "" for an aggregate */
    int resolved;
    double value;
    int64_t since_ms; /* when it became active */
    int64_t at_ms;
} fp_alert_event;

typedef struct fp_aeval fp_aeval;
typedef void (*fp_aeval_fn)(const fp_alert_event *e, void *arg);

/* Over the built-in rules (fp_alert_rules); watches their series in h.
 * NULL when out of memory. */
fp_aeval *fp_aeval_new(fp_ahist *h, fp_err *err);
void fp_aeval_free(fp_aeval *e);

/* Evaluates every rule at now_ms; fn (may be NULL) gets each transition to
 * firing or resolved.  Returns the number of firing instances. */
int fp_aeval_run(fp_aeval *e, int64_t now_ms, fp_aeval_fn fn, void *arg);

/* The state of a rule (its most advanced instance). */
fp_alert_state fp_aeval_state(const fp_aeval *e, const char *rule);

/* The built-in rule of that name, or NULL. */
const fp_alert_rule *fp_alert_rule_find(const char *name);

#endif
