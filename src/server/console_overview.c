/* console_overview.c — GET /console/api/overview (docs/console.md
 * "Overview"): the metrics history the built-in alerting keeps in memory
 * (src/alerting/history.c), binned for the console's charts, and the
 * alerts active now.
 *
 * Why binned on the server: the history holds a sample every 5 s per
 * series (up to 8192 of them), the page wants at most OV_BINS points per
 * line; a counter's increase and a histogram's quantile are computed here
 * once per bin (the same arithmetic as the evaluator: a counter reset
 * counts the new value), so the answer stays a few KB.
 *
 * The series are watched by fp_server_set_history for a day; the history
 * caps a series at 8192 samples (about 11 h at the default 5 s interval),
 * so the day view starts where the history does. */
#include "internal.h"

#include "fapiao/alerting.h"
#include "fapiao/console.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OV_BINS    120
#define OV_BUCKETS 40
#define OV_DAY_S   86400

/* What the overview reads: (family, matcher). */
#define OV_ISSUED   "fapiao_http_requests_total", "method=POST,route=/v1/invoices,code=2xx"
#define OV_ERRORS   "fapiao_http_requests_total", "code=5xx"
#define OV_LATENCY  "fapiao_http_request_duration_seconds_bucket", "method=POST,route=/v1/invoices"
#define OV_REFUSED  "fapiao_admission_refused_total", "reason=~global_rate|client_rate|concurrency"
#define OV_DEGRADED "fapiao_degraded", NULL
#define OV_CHECKS   "fapiao_health_check_ok", NULL
/* the rules' states, one series per rule (src/alerting/run.c) */
#define OV_ALERTS "ALERTS", NULL

void fp_server_set_history(fp_server *s, struct fp_ahist *h)
{
    static const struct {
        const char *metric, *match;
        int keep_s;
    } watches[] = {{OV_ISSUED, OV_DAY_S},  {OV_ERRORS, OV_DAY_S},   {OV_LATENCY, OV_DAY_S},
                   {OV_REFUSED, OV_DAY_S}, {OV_DEGRADED, OV_DAY_S}, {OV_CHECKS, OV_DAY_S},
                   {OV_ALERTS, 600}};
    for (size_t i = 0; h && i < sizeof watches / sizeof watches[0]; i++) {
        fp_err err = {0};
        if (fp_ahist_watch(h, watches[i].metric, watches[i].match, watches[i].keep_s, &err) < 0)
            fprintf(stderr, "fapiao: console overview: %s\n", err.msg);
    }
    atomic_store(&s->history, h);
    /* a reader counts itself before it loads the pointer: none left, none
     * holds the old one (bounded: an answer takes milliseconds) */
    for (int i = 0; !h && i < 10000 && atomic_load(&s->history_users) > 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

/* One line of the chart: per bin a sum over series (NaN: no sample). */
typedef struct bins {
    int64_t from_ms, bin_ms;
    double v[OV_BINS];
    /* the histogram's buckets: per le, per bin, the increase */
    int nb;
    double le[OV_BUCKETS];
    double inc[OV_BUCKETS][OV_BINS];
    double *line; /* where a series goes: v or inc[k] */
} bins;

static int bin_of(const bins *b, int64_t t_ms)
{
    if (t_ms < b->from_ms)
        return -1;
    int64_t i = (t_ms - b->from_ms) / b->bin_ms;
    return i < OV_BINS ? (int)i : -1;
}

static void add_to(double *line, int i, double v)
{
    line[i] = isnan(line[i]) ? v : line[i] + v;
}

/* A counter: its increase in each bin (a reset counts the new value). */
static void on_counter(const char *key, const fp_ahist_point *p, int n, void *arg)
{
    bins *b = arg;
    (void)key;
    for (int k = 1; k < n; k++) {
        int i = bin_of(b, p[k].t_ms);
        if (i >= 0)
            add_to(b->line, i, p[k].v >= p[k - 1].v ? p[k].v - p[k - 1].v : p[k].v);
    }
}

/* A gauge: the bin's largest value (degraded: 1 if it was at any sample). */
static void on_gauge_max(const char *key, const fp_ahist_point *p, int n, void *arg)
{
    bins *b = arg;
    (void)key;
    for (int k = 0; k < n; k++) {
        int i = bin_of(b, p[k].t_ms);
        if (i >= 0 && (isnan(b->line[i]) || p[k].v > b->line[i]))
            b->line[i] = p[k].v;
    }
}

/* A health check (1 ok, 0 failing): counts 1 in each bin it failed in. */
static void on_check(const char *key, const fp_ahist_point *p, int n, void *arg)
{
    bins *b = arg;
    (void)key;
    int last = -1;
    for (int k = 0; k < n; k++) {
        int i = bin_of(b, p[k].t_ms);
        if (i < 0)
            continue;
        if (isnan(b->line[i]))
            b->line[i] = 0;
        if (p[k].v == 0 && i != last) {
            b->line[i] += 1;
            last = i;
        }
    }
}

static void on_bucket(const char *key, const fp_ahist_point *p, int n, void *arg)
{
    bins *b = arg;
    char le[64];
    if (!fp_ahist_label(key, "le", le, sizeof le))
        return;
    double v = !strcmp(le, "+Inf") ? INFINITY : strtod(le, NULL);
    int k = 0;
    while (k < b->nb && b->le[k] != v)
        k++;
    if (k == b->nb) {
        if (b->nb == OV_BUCKETS)
            return;
        b->le[b->nb++] = v;
        for (int i = 0; i < OV_BINS; i++)
            b->inc[k][i] = NAN;
    }
    b->line = b->inc[k];
    on_counter(key, p, n, arg);
}

/* histogram_quantile (fp_hist_quantile) of bin i; NaN when the bin saw no
 * request. */
static double bin_quantile(bins *b, int i, double q)
{
    double le[OV_BUCKETS], c[OV_BUCKETS];
    int nb = 0;
    for (int k = 0; k < b->nb; k++)
        if (!isnan(b->inc[k][i])) {
            le[nb] = b->le[k];
            c[nb++] = b->inc[k][i];
        }
    return fp_hist_quantile(q, le, c, nb);
}

static void reset_line(double *line)
{
    for (int i = 0; i < OV_BINS; i++)
        line[i] = NAN;
}

/* "key": [v per bin, null where NaN], each value times scale. */
static void write_line(fp_jw *w, const char *key, const double *line, double scale)
{
    fp_jw_key(w, key);
    fp_jw_arr_open(w);
    for (int i = 0; i < OV_BINS; i++) {
        char num[32];
        if (isnan(line[i]) || isinf(line[i])) {
            fp_jw_null(w);
            continue;
        }
        snprintf(num, sizeof num, "%.6g", line[i] * scale);
        fp_jw_raw(w, num);
    }
    fp_jw_arr_close(w);
}

/* A counter family as a rate per second in each bin. */
static void write_rate(fp_jw *w, fp_ahist *h, bins *b, const char *key, const char *metric,
                       const char *match)
{
    reset_line(b->v);
    b->line = b->v;
    fp_ahist_each(h, metric, match, on_counter, b);
    write_line(w, key, b->v, 1000.0 / (double)b->bin_ms);
}

static void write_gauge(fp_jw *w, fp_ahist *h, bins *b, const char *key, const char *metric,
                        const char *match, fp_ahist_fn fn)
{
    reset_line(b->v);
    b->line = b->v;
    fp_ahist_each(h, metric, match, fn, b);
    write_line(w, key, b->v, 1);
}

static void write_p99(fp_jw *w, fp_ahist *h, bins *b)
{
    b->nb = 0;
    fp_ahist_each(h, OV_LATENCY, on_bucket, b);
    for (int i = 0; i < OV_BINS; i++)
        b->v[i] = bin_quantile(b, i, 0.99);
    write_line(w, "p99_ms", b->v, 1000.0);
}

/* The alerts active now: the rule states the alerting thread wrote last
 * (src/alerting/run.c), if that sample is recent. */
typedef struct active {
    fp_jw *w;
    int64_t since_ms;
    int n;
} active;

static void on_alert(const char *key, const fp_ahist_point *p, int n, void *arg)
{
    active *a = arg;
    char name[128];
    if (!n || p[n - 1].t_ms < a->since_ms || p[n - 1].v < FP_ALERT_PENDING ||
        !fp_ahist_label(key, "alertname", name, sizeof name))
        return;
    const fp_alert_rule *r = fp_alert_rule_find(name);
    if (!r)
        return;
    fp_jw_obj_open(a->w);
    fp_jw_kstr(a->w, "name", r->name);
    fp_jw_kstr(a->w, "severity", r->severity);
    fp_jw_kstr(a->w, "state", p[n - 1].v >= FP_ALERT_FIRING ? "firing" : "pending");
    fp_jw_kstr(a->w, "summary_zh", r->summary_zh);
    fp_jw_kstr(a->w, "summary_en", r->summary_en);
    fp_jw_kstr(a->w, "runbook", r->runbook);
    fp_jw_obj_close(a->w);
    a->n++;
}

static void write_alerts(fp_jw *w, fp_ahist *h, int64_t now_ms)
{
    active a = {.w = w, .since_ms = now_ms - 60000};
    fp_jw_key(w, "alerts");
    fp_jw_arr_open(w);
    fp_ahist_each(h, OV_ALERTS, on_alert, &a);
    fp_jw_arr_close(w);
}

/* The bins' start times (ms), then every line. */
static void write_overview(fp_jw *w, fp_ahist *h, bins *b, int64_t now_ms)
{
    fp_jw_key(w, "t");
    fp_jw_arr_open(w);
    for (int i = 0; i < OV_BINS; i++)
        fp_jw_int(w, b->from_ms + (int64_t)i * b->bin_ms);
    fp_jw_arr_close(w);
    write_rate(w, h, b, "issued_per_s", OV_ISSUED);
    write_p99(w, h, b);
    write_rate(w, h, b, "errors_per_s", OV_ERRORS);
    write_rate(w, h, b, "refused_per_s", OV_REFUSED);
    write_gauge(w, h, b, "degraded", OV_DEGRADED, on_gauge_max);
    write_gauge(w, h, b, "failing_checks", OV_CHECKS, on_check);
    write_alerts(w, h, now_ms);
}

enum MHD_Result fp_h_console_overview(fp_req *r)
{
    fp_console_who who;
    enum MHD_Result res;
    if (fp_console_need_session(r, &who, &res))
        return res;
    const char *range = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "range");
    int day = range && !strcmp(range, "day");
    if (range && !day && strcmp(range, "hour") != 0)
        return fp_problem(r, FPC_INVALID_FIELD, "range 只能是 hour 或 day",
                          "range must be hour or day", NULL);
    atomic_fetch_add(&r->srv->history_users, 1);
    fp_ahist *h = atomic_load(&r->srv->history);
    int64_t now_ms = (int64_t)time(NULL) * 1000, span_ms = day ? OV_DAY_S * 1000LL : 3600000LL;
    bins *b = h ? malloc(sizeof *b) : NULL;
    fp_buf out;
    fp_jw w;
    fp_buf_init(&out, 64u << 10);
    fp_jw_init(&w, &out);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "range", day ? "day" : "hour");
    fp_jw_kbool(&w, "history", b != NULL);
    fp_jw_kint(&w, "now_ms", now_ms);
    if (b) {
        b->bin_ms = span_ms / OV_BINS;
        b->from_ms = now_ms - span_ms + b->bin_ms; /* the last bin holds now */
        b->from_ms -= b->from_ms % b->bin_ms;
        fp_jw_kint(&w, "bin_s", b->bin_ms / 1000);
        write_overview(&w, h, b, now_ms);
    }
    fp_jw_obj_close(&w);
    atomic_fetch_sub(&r->srv->history_users, 1);
    free(b);
    return fp_console_answer(r, 200, &out);
}
