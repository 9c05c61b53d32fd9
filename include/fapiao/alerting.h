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
    FP_AK_EXPIRY,    /* value - now op value (and >= at_least unless -1e308: none) */
    FP_AK_RATIO,     /* any window pair: inc(num)/inc(den) > ratio over both */
    FP_AK_SHARE      /* latest(metric) / latest(den) of the same labels op value */
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
    const char *num, *den; /* ratio: "family{k=v,...}" selectors; share: den */
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
/* Prometheus's histogram_quantile: q of n buckets, le[] their upper bounds
 * (+Inf last once sorted) and c[] their cumulative counts; both sorted by
 * le in place.  NaN without a +Inf bucket or observations (eval.c). */
double fp_hist_quantile(double q, double *le, double *c, int n);

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

/* ---- notifications (notify*.c; docs/alerting.md "Receivers") ---- */

typedef enum fp_rcv_kind {
    FP_RCV_DINGTALK = 0, /* robot; signed when a secret is set */
    FP_RCV_FEISHU,       /* robot; signed when a secret is set */
    FP_RCV_WECOM,        /* robot (企业微信); no signature */
    FP_RCV_WEBHOOK,      /* plain JSON POST */
    FP_RCV_EMAIL         /* SMTP through libcurl */
} fp_rcv_kind;

#define FP_NOTIFY_MAX_RECEIVERS 16

typedef struct fp_receiver {
    char name[64];
    fp_rcv_kind kind;
    char url[1024];   /* robot/webhook URL; email: smtp://HOST:PORT or smtps:// */
    char secret[256]; /* secret-file's first line: a signing secret or SMTP password */
    char user[128], from[256], to[512]; /* email; to: addresses separated by ',' */
    char severities[32];                /* "P1,P2": only these (empty: all) */
} fp_receiver;

typedef struct fp_notify_conf {
    fp_receiver rcv[FP_NOTIFY_MAX_RECEIVERS];
    int nrcv;
    int interval_s;     /* sampling and evaluation (default 5) */
    int repeat_s[3];    /* P1, P2, P3 while firing (default 15 min, 4 h, 24 h) */
    int timeout_s;      /* one delivery attempt (default 5) */
    int attempts;       /* before a message is dropped (default 8; backoff 1 s doubling to 5 min) */
    char instance[128]; /* names this server in messages (default: the host name) */
    char runbook_base[256]; /* prefix of kb/... links (default: none, the path) */
    char bridge_listen[80]; /* 127.x.x.x:PORT: the Alertmanager bridge (bridge.c); "": none */
    /* the silences active at now_s (unix s): their matchers into out, at
     * most cap; the count, or < 0 when they cannot be read (then the last
     * ones read stay).  NULL: no silences.  `fapiao serve` reads its store. */
    int (*silences)(void *arg, int64_t now_s, char (*out)[512], int cap);
    void *silences_arg;
} fp_notify_conf;

/* Reads the alerting file (docs/alerting.md "Configuration"): a
 * [notify] section and [receiver NAME] sections.  secret-file values are
 * read with the secret-file rule (fapiao/keyfile.h) and never printed.
 * 0, or FP_EINVAL/FP_EIO with FILE:LINE in err. */
int fp_notify_conf_read(const char *path, fp_notify_conf *c, fp_err *err);

/* DingTalk's signature: "&timestamp=TS&sign=S" to append to the robot URL,
 * S = urlencode(base64(HMAC-SHA256(key secret, "TS\nsecret"))), TS in ms. */
void fp_dingtalk_sign(const char *secret, int64_t ts_ms, char *out, size_t cap);
/* Feishu's: base64(HMAC-SHA256(key "TS\nsecret", empty message)), TS in s;
 * it goes into the body with the timestamp. */
void fp_feishu_sign(const char *secret, int64_t ts_s, char *out, size_t cap);

struct fp_metrics;
typedef struct fp_notifier fp_notifier;

/* m (may be NULL) gets fapiao_alert_notifications_total{receiver,result}
 * and fapiao_alert_receiver_up{receiver}.  NULL when out of memory. */
fp_notifier *fp_notifier_new(const fp_notify_conf *c, struct fp_metrics *m, fp_err *err);
void fp_notifier_free(fp_notifier *n);
/* An fp_aeval_fn: arg is the notifier. */
void fp_notifier_event(const fp_alert_event *e, void *arg);
/* Groups changed since the last call (and firing ones due a repeat) into
 * messages, and delivers what is due (retries with backoff).  Returns the
 * messages still queued. */
int fp_notifier_flush(fp_notifier *n, int64_t now_ms);
/* A test message to every receiver, now, one attempt each: the number
 * that failed (each named on stderr). */
int fp_notifier_test(fp_notifier *n);

/* The Alertmanager bridge (bridge.c): a loopback listener taking
 * Alertmanager's webhook and forwarding it, signed, to the robots.  c must
 * outlive it. */
typedef struct fp_abridge fp_abridge;
int fp_abridge_start(const fp_notify_conf *c, fp_abridge **out, fp_err *err);
int fp_abridge_port(const fp_abridge *b);
void fp_abridge_stop(fp_abridge *b); /* NULL: no-op */

/* ---- the thread in `fapiao serve` ---- */

typedef struct fp_alerting fp_alerting;
/* Samples m's exposition every interval, evaluates, notifies; with
 * bridge_listen set, runs the Alertmanager bridge too. */
int fp_alerting_start(const fp_notify_conf *c, struct fp_metrics *m, fp_alerting **out,
                      fp_err *err);
void fp_alerting_stop(fp_alerting *a); /* NULL: no-op */
/* The history, for readers (the console's charts). */
fp_ahist *fp_alerting_history(fp_alerting *a);

#endif
