/* test_metrics.c — the metrics registry (metrics.h): exact exposition text
 * for known observations, label escaping, name checks, series caps,
 * concurrent updates, process metrics, and `promtool check metrics` on a
 * full exposition (promtool is installed by the project's setup; its
 * absence is a failure, not a skip). */
#include "check.h"
#include "fapiao/metrics.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PROMTOOL
#define PROMTOOL "/usr/bin/promtool"
#endif

static const int64_t small_us[] = {100, 250, 500, 1000};
static const int64_t sizes[] = {1, 2, 4, 8};

/* The exposition of m as a string (caller frees); NULL on failure. */
static char *scrape(fp_metrics *m)
{
    fp_buf b;
    fp_buf_init(&b, 0);
    int rc = fp_metrics_write(m, &b);
    CHECK_EQ_INT(rc, 0);
    return fp_buf_take(&b, NULL);
}

static void test_fmt(void)
{
    static const struct {
        int64_t v, scale;
        const char *want;
    } cases[] = {
        {0, 1, "0"},
        {42, 1, "42"},
        {-3, 1, "-3"},
        {0, 1000000, "0"},
        {1, 1000000, "0.000001"},
        {100, 1000000, "0.0001"},
        {250000, 1000000, "0.25"},
        {1000000, 1000000, "1"},
        {2500000, 1000000, "2.5"},
        {10000000, 1000000, "10"},
        {-250, 100, "-2.5"},
        {-1, 1000, "-0.001"},
        {INT64_MAX, 1, "9223372036854775807"},
        {INT64_MIN, 1, "-9223372036854775808"},
        {INT64_MIN, 1000000000000000000, "-9.223372036854775808"},
        {INT64_MAX, 1000000, "9223372036854.775807"},
        {5, 0, "5"}, /* 0 means 1 */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("fmt[%zu] %s", i, cases[i].want);
        char buf[32];
        int n = fp_metrics_fmt(buf, cases[i].v, cases[i].scale);
        CHECK_EQ_STR(buf, cases[i].want);
        CHECK_EQ_INT(n, (int)strlen(cases[i].want));
    }
    check_ctx("%s", "");
}

static void outbox_collector(fp_buf *out, void *arg)
{
    fp_metrics_emit(out, "t_outbox_backlog", "Outbox rows waiting.", FP_METRICS_GAUGE,
                    *(int64_t *)arg, 1);
}

static void test_exact(void)
{
    check_ctx("exact");
    fp_metrics *m = fp_metrics_new();
    if (!CHECK(m != NULL))
        return;
    fp_metrics_family *req, *inflight, *lat, *unused, *batch, *uptime, *bal;
    int64_t backlog = 7;
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "t_requests_total",
                                                        .help = "Requests handled.",
                                                        .type = FP_METRICS_COUNTER},
                                     &req, NULL),
                 0);
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "t_in_flight_requests",
                                                        .help = "In flight.",
                                                        .type = FP_METRICS_GAUGE},
                                     &inflight, NULL),
                 0);
    CHECK_EQ_INT(fp_metrics_add_collector(m, outbox_collector, &backlog), 0);
    CHECK_EQ_INT(fp_metrics_register(
                     m,
                     &(fp_metrics_opts){.name = "t_latency_seconds",
                                        .help = "Latency.\nSecond line \\ backslash \"quoted\"",
                                        .type = FP_METRICS_HISTOGRAM,
                                        .labels = {"route"},
                                        .scale = FP_METRICS_MICRO,
                                        .bounds = small_us,
                                        .nbounds = 4},
                     &lat, NULL),
                 0);
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "t_unused_total",
                                                        .help = "Never used.",
                                                        .type = FP_METRICS_COUNTER,
                                                        .labels = {"code"}},
                                     &unused, NULL),
                 0);
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "t_batch_size",
                                                        .help = "Commit batch size.",
                                                        .type = FP_METRICS_HISTOGRAM,
                                                        .bounds = sizes,
                                                        .nbounds = 4},
                                     &batch, NULL),
                 0);
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "t_uptime_seconds",
                                                        .help = "Up.",
                                                        .type = FP_METRICS_GAUGE,
                                                        .scale = FP_METRICS_MICRO},
                                     &uptime, NULL),
                 0);
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "t_balance",
                                                        .help = "Balance in yuan.",
                                                        .type = FP_METRICS_GAUGE,
                                                        .scale = 100},
                                     &bal, NULL),
                 0);

    fp_metric *r = fp_metrics_child(req, NULL);
    fp_counter_add(r, 3);
    fp_counter_add(r, -1); /* ignored: counters only go up */
    fp_counter_add(r, 0);
    fp_counter_inc(r);
    CHECK_EQ_INT(fp_metric_value(r), 4);
    fp_gauge_add(fp_metrics_child(inflight, NULL), 5);
    fp_gauge_add(fp_metrics_child(inflight, NULL), -7);

    fp_metric *issue = fp_metrics_child(lat, (const char *[]){"issue"});
    /* equal to a bound counts in that bucket; above the last goes to +Inf */
    static const int64_t obs[] = {50, 100, 101, 250, 1000, 1001, 5000};
    for (size_t i = 0; i < NCASES(obs); i++)
        fp_hist_observe(issue, obs[i]);
    CHECK(fp_metrics_child(lat, (const char *[]){"issue"}) == issue);
    fp_hist_observe(fp_metrics_child(lat, (const char *[]){"red"}), 2500000);
    CHECK_EQ_INT(fp_hist_count(issue), 7);
    CHECK_EQ_INT(fp_metric_value(issue), 7502);

    fp_metric *bs = fp_metrics_child(batch, NULL);
    static const int64_t bobs[] = {0, 1, 3, 8, 9};
    for (size_t i = 0; i < NCASES(bobs); i++)
        fp_hist_observe(bs, bobs[i]);
    fp_gauge_set(fp_metrics_child(uptime, NULL), 1500000);
    fp_gauge_set(fp_metrics_child(bal, NULL), -250);

    static const char want[] =
        "# HELP t_requests_total Requests handled.\n"
        "# TYPE t_requests_total counter\n"
        "t_requests_total 4\n"
        "# HELP t_in_flight_requests In flight.\n"
        "# TYPE t_in_flight_requests gauge\n"
        "t_in_flight_requests -2\n"
        "# HELP t_outbox_backlog Outbox rows waiting.\n"
        "# TYPE t_outbox_backlog gauge\n"
        "t_outbox_backlog 7\n"
        "# HELP t_latency_seconds Latency.\\nSecond line \\\\ backslash \"quoted\"\n"
        "# TYPE t_latency_seconds histogram\n"
        "t_latency_seconds_bucket{route=\"issue\",le=\"0.0001\"} 2\n"
        "t_latency_seconds_bucket{route=\"issue\",le=\"0.00025\"} 4\n"
        "t_latency_seconds_bucket{route=\"issue\",le=\"0.0005\"} 4\n"
        "t_latency_seconds_bucket{route=\"issue\",le=\"0.001\"} 5\n"
        "t_latency_seconds_bucket{route=\"issue\",le=\"+Inf\"} 7\n"
        "t_latency_seconds_sum{route=\"issue\"} 0.007502\n"
        "t_latency_seconds_count{route=\"issue\"} 7\n"
        "t_latency_seconds_bucket{route=\"red\",le=\"0.0001\"} 0\n"
        "t_latency_seconds_bucket{route=\"red\",le=\"0.00025\"} 0\n"
        "t_latency_seconds_bucket{route=\"red\",le=\"0.0005\"} 0\n"
        "t_latency_seconds_bucket{route=\"red\",le=\"0.001\"} 0\n"
        "t_latency_seconds_bucket{route=\"red\",le=\"+Inf\"} 1\n"
        "t_latency_seconds_sum{route=\"red\"} 2.5\n"
        "t_latency_seconds_count{route=\"red\"} 1\n"
        "# HELP t_batch_size Commit batch size.\n"
        "# TYPE t_batch_size histogram\n"
        "t_batch_size_bucket{le=\"1\"} 2\n"
        "t_batch_size_bucket{le=\"2\"} 2\n"
        "t_batch_size_bucket{le=\"4\"} 3\n"
        "t_batch_size_bucket{le=\"8\"} 4\n"
        "t_batch_size_bucket{le=\"+Inf\"} 5\n"
        "t_batch_size_sum 21\n"
        "t_batch_size_count 5\n"
        "# HELP t_uptime_seconds Up.\n"
        "# TYPE t_uptime_seconds gauge\n"
        "t_uptime_seconds 1.5\n"
        "# HELP t_balance Balance in yuan.\n"
        "# TYPE t_balance gauge\n"
        "t_balance -2.5\n";
    char *got = scrape(m);
    CHECK_EQ_STR(got, want);
    free(got);

    /* a collector's values are read at scrape time */
    backlog = 9;
    got = scrape(m);
    CHECK_CONTAINS(got, "\nt_outbox_backlog 9\n");
    free(got);
    fp_metrics_free(m);
    fp_metrics_free(NULL);
    check_ctx("%s", "");
}

static void test_escape(void)
{
    check_ctx("escape");
    fp_metrics *m = fp_metrics_new();
    fp_metrics_family *f;
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "t_hits_total",
                                                        .help = "Hits.",
                                                        .type = FP_METRICS_COUNTER,
                                                        .labels = {"path", "code"}},
                                     &f, NULL),
                 0);
    static const struct {
        const char *value, *want;
    } cases[] = {
        {"a\\b", "t_hits_total{path=\"a\\\\b\",code=\"2xx\"} 1\n"},
        {"say \"hi\"", "t_hits_total{path=\"say \\\"hi\\\"\",code=\"2xx\"} 1\n"},
        {"x\ny", "t_hits_total{path=\"x\\ny\",code=\"2xx\"} 1\n"},
        {"\\\"\n", "t_hits_total{path=\"\\\\\\\"\\n\",code=\"2xx\"} 1\n"},
        {"发票/开具", "t_hits_total{path=\"发票/开具\",code=\"2xx\"} 1\n"},
        {"", "t_hits_total{path=\"\",code=\"2xx\"} 1\n"},
        {"tab\there", "t_hits_total{path=\"tab\there\",code=\"2xx\"} 1\n"},
    };
    for (size_t i = 0; i < NCASES(cases); i++)
        fp_counter_inc(fp_metrics_child(f, (const char *[]){cases[i].value, "2xx"}));
    char *got = scrape(m);
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("escape[%zu]", i);
        CHECK_CONTAINS(got, cases[i].want);
    }
    free(got);
    fp_metrics_free(m);
    check_ctx("%s", "");
}

static void test_names(void)
{
    static const struct {
        const char *name;
        fp_metrics_type type;
        const char *labels[FP_METRICS_MAX_LABELS];
        int rc;
    } cases[] = {
        {"fapiao_http_requests_total", FP_METRICS_COUNTER, {"route", "code"}, 0},
        {"_leading_underscore_total", FP_METRICS_COUNTER, {0}, 0},
        {"fapiao_queue_depth", FP_METRICS_GAUGE, {"queue"}, 0},
        {"fapiao_fsync_duration_seconds", FP_METRICS_HISTOGRAM, {0}, 0},
        {"fapiao_cert_expiry_timestamp_seconds", FP_METRICS_GAUGE, {0}, 0},
        {"fapiao_l2_cache_bytes", FP_METRICS_GAUGE, {"_x9"}, 0},
        {"", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {NULL, FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"1abc", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"a-b", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"a b", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"a\xc3\xa9", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"job:rate:sum", FP_METRICS_GAUGE, {0}, FP_EINVAL},  /* ':' is for rules */
        {"requestsTotal", FP_METRICS_GAUGE, {0}, FP_EINVAL}, /* camelCase */
        {"t_requests", FP_METRICS_COUNTER, {0}, FP_EINVAL},  /* counter without _total */
        {"t_requests_total", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"t_latency_seconds_total", FP_METRICS_HISTOGRAM, {0}, FP_EINVAL},
        {"t_rows_count", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"t_rows_sum", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"t_rows_bucket", FP_METRICS_COUNTER, {0}, FP_EINVAL},
        {"t_rows_counter", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"t_gauge_rows", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"t_latency_ms", FP_METRICS_HISTOGRAM, {0}, FP_EINVAL},
        {"t_latency_milliseconds", FP_METRICS_HISTOGRAM, {0}, FP_EINVAL},
        {"t_size_kilobytes", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"t_age_hours", FP_METRICS_GAUGE, {0}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {"1x"}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {"a:b"}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {"__name"}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {"myLabel"}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {"le"}, FP_EINVAL},
        {"t_rows", FP_METRICS_HISTOGRAM, {"le"}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {"quantile"}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {"a", "a"}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {"a", NULL, "b"}, FP_EINVAL},
        {"t_rows", FP_METRICS_GAUGE, {""}, FP_EINVAL},
        {"t_rows", (fp_metrics_type)7, {0}, FP_EINVAL},
    };
    fp_metrics *m = fp_metrics_new();
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("names[%zu] %s", i, cases[i].name ? cases[i].name : "(null)");
        fp_metrics_opts o = {.name = cases[i].name, .help = "h", .type = cases[i].type};
        memcpy(o.labels, cases[i].labels, sizeof o.labels);
        if (cases[i].type == FP_METRICS_HISTOGRAM) {
            o.bounds = sizes;
            o.nbounds = 4;
        }
        fp_err err = {0};
        fp_metrics_family *f = NULL;
        CHECK_EQ_INT(fp_metrics_register(m, &o, &f, &err), cases[i].rc);
        CHECK_EQ_INT(f != NULL, cases[i].rc == 0);
        if (cases[i].rc)
            CHECK_MSG(err.code == cases[i].rc && err.msg[0], "no message: %d \"%s\"", err.code,
                      err.msg);
    }

    /* options */
    static const int64_t down[] = {1, 3, 2}, same[] = {1, 1};
    static const struct {
        const char *what;
        fp_metrics_opts o;
    } bad[] = {
        {"no help", {.name = "o_a", .type = FP_METRICS_GAUGE}},
        {"empty help", {.name = "o_a", .help = "", .type = FP_METRICS_GAUGE}},
        {"scale 3", {.name = "o_a", .help = "h", .type = FP_METRICS_GAUGE, .scale = 3}},
        {"scale -10", {.name = "o_a", .help = "h", .type = FP_METRICS_GAUGE, .scale = -10}},
        {"scale 20", {.name = "o_a", .help = "h", .type = FP_METRICS_GAUGE, .scale = 20}},
        {"negative cap",
         {.name = "o_a", .help = "h", .type = FP_METRICS_GAUGE, .max_children = -1}},
        {"gauge bounds",
         {.name = "o_a", .help = "h", .type = FP_METRICS_GAUGE, .bounds = sizes, .nbounds = 4}},
        {"no bounds", {.name = "o_a", .help = "h", .type = FP_METRICS_HISTOGRAM}},
        {"0 bounds", {.name = "o_a", .help = "h", .type = FP_METRICS_HISTOGRAM, .bounds = sizes}},
        {"too many bounds",
         {.name = "o_a",
          .help = "h",
          .type = FP_METRICS_HISTOGRAM,
          .bounds = sizes,
          .nbounds = 65}},
        {"decreasing",
         {.name = "o_a", .help = "h", .type = FP_METRICS_HISTOGRAM, .bounds = down, .nbounds = 3}},
        {"repeated",
         {.name = "o_a", .help = "h", .type = FP_METRICS_HISTOGRAM, .bounds = same, .nbounds = 2}},
    };
    for (size_t i = 0; i < NCASES(bad); i++) {
        check_ctx("opts[%zu] %s", i, bad[i].what);
        CHECK_EQ_INT(fp_metrics_register(m, &bad[i].o, NULL, NULL), FP_EINVAL);
    }
    check_ctx("opts: scale 10^18");
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "o_big",
                                                        .help = "h",
                                                        .type = FP_METRICS_GAUGE,
                                                        .scale = 1000000000000000000},
                                     NULL, NULL),
                 0);
    check_ctx("opts: NULL");
    CHECK_EQ_INT(fp_metrics_register(m, NULL, NULL, NULL), FP_EINVAL);
    CHECK_EQ_INT(fp_metrics_register(NULL, &bad[0].o, NULL, NULL), FP_EINVAL);

    /* duplicates, including the names a histogram exposes */
    static const struct {
        const char *name;
        fp_metrics_type type;
        int rc;
    } dups[] = {
        {"fapiao_http_requests_total", FP_METRICS_COUNTER, FP_ECONFLICT},
        {"fapiao_queue_depth", FP_METRICS_GAUGE, FP_ECONFLICT},
        {"fapiao_queue_depth", FP_METRICS_HISTOGRAM, FP_ECONFLICT}, /* type does not matter */
        {"fapiao_fsync_duration_seconds_count", FP_METRICS_HISTOGRAM, FP_ECONFLICT},
        {"fapiao_fsync_duration_seconds_bucket", FP_METRICS_HISTOGRAM, FP_ECONFLICT},
        {"d_lat_seconds", FP_METRICS_HISTOGRAM, 0},
        {"d_lat", FP_METRICS_HISTOGRAM, 0}, /* d_lat_sum etc. do not clash with d_lat_seconds */
        {"d_lat_seconds", FP_METRICS_GAUGE, FP_ECONFLICT},
        {"d", FP_METRICS_HISTOGRAM, 0},
        {"d_sum", FP_METRICS_HISTOGRAM, FP_ECONFLICT}, /* d exposes d_sum */
        {"fapiao_metrics_series_dropped_total", FP_METRICS_COUNTER, FP_ECONFLICT},
    };
    for (size_t i = 0; i < NCASES(dups); i++) {
        check_ctx("dups[%zu] %s", i, dups[i].name);
        fp_metrics_opts o = {.name = dups[i].name, .help = "h", .type = dups[i].type};
        if (dups[i].type == FP_METRICS_HISTOGRAM) {
            o.bounds = sizes;
            o.nbounds = 4;
        }
        fp_err err = {0};
        CHECK_EQ_INT(fp_metrics_register(m, &o, NULL, &err), dups[i].rc);
        if (dups[i].rc)
            CHECK_CONTAINS(err.msg, dups[i].name);
    }
    check_ctx("check_name");
    CHECK_EQ_INT(fp_metrics_check_name("process_cpu_seconds_total", FP_METRICS_COUNTER, NULL), 0);
    CHECK_EQ_INT(fp_metrics_check_name("process_cpu_seconds", FP_METRICS_COUNTER, NULL), FP_EINVAL);
    fp_metrics_free(m);
    check_ctx("%s", "");
}

static void test_children(void)
{
    check_ctx("children");
    fp_metrics *m = fp_metrics_new();
    fp_metrics_family *f, *g;
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "c_hits_total",
                                                        .help = "Hits.",
                                                        .type = FP_METRICS_COUNTER,
                                                        .labels = {"route"},
                                                        .max_children = 2},
                                     &f, NULL),
                 0);
    fp_metric *a = fp_metrics_child(f, (const char *[]){"a"});
    fp_metric *b = fp_metrics_child(f, (const char *[]){"b"});
    CHECK(a && b && a != b);
    CHECK(fp_metrics_child(f, (const char *[]){"a"}) == a);
    CHECK(fp_metrics_child(f, (const char *[]){"c"}) == NULL); /* cap */
    CHECK(fp_metrics_child(f, (const char *[]){"\xff"}) == NULL);
    CHECK(fp_metrics_child(f, (const char *[]){NULL}) == NULL);
    CHECK(fp_metrics_child(f, NULL) == NULL);
    CHECK(fp_metrics_child(NULL, NULL) == NULL); /* not counted: no family */
    char *longv = malloc(1100);
    memset(longv, 'x', 1099);
    longv[1099] = 0;
    CHECK(fp_metrics_child(f, (const char *[]){longv}) == NULL);
    free(longv);
    /* NULL series are no-ops everywhere */
    fp_counter_inc(NULL);
    fp_counter_add(NULL, 5);
    fp_gauge_set(NULL, 1);
    fp_gauge_add(NULL, 1);
    fp_hist_observe(NULL, 1);
    CHECK_EQ_INT(fp_metric_value(NULL), 0);
    CHECK_EQ_INT(fp_hist_count(NULL), 0);
    fp_hist_observe(a, 5); /* not a histogram: ignored */
    CHECK_EQ_INT(fp_metric_value(a), 0);
    fp_counter_inc(a);

    /* families print in registration order, series in creation order */
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "c_breaker_state",
                                                        .help = "0 closed, 1 open, 2 half-open.",
                                                        .type = FP_METRICS_GAUGE,
                                                        .labels = {"breaker"}},
                                     &g, NULL),
                 0);
    fp_gauge_set(fp_metrics_child(g, (const char *[]){"store"}), 1);
    char *got = scrape(m);
    CHECK_EQ_STR(got, "# HELP c_hits_total Hits.\n"
                      "# TYPE c_hits_total counter\n"
                      "c_hits_total{route=\"a\"} 1\n"
                      "c_hits_total{route=\"b\"} 0\n"
                      "# HELP c_breaker_state 0 closed, 1 open, 2 half-open.\n"
                      "# TYPE c_breaker_state gauge\n"
                      "c_breaker_state{breaker=\"store\"} 1\n"
                      "# HELP fapiao_metrics_series_dropped_total Label sets refused: a family's "
                      "cap was reached or a value was invalid.\n"
                      "# TYPE fapiao_metrics_series_dropped_total counter\n"
                      "fapiao_metrics_series_dropped_total 5\n");
    free(got);

    /* a full buffer is reported */
    fp_buf small;
    fp_buf_init(&small, 64);
    CHECK_EQ_INT(fp_metrics_write(m, &small), FP_ENOMEM);
    fp_buf_free(&small);
    CHECK_EQ_INT(fp_metrics_write(NULL, &small), FP_EINVAL);
    CHECK_EQ_INT(fp_metrics_add_collector(m, NULL, NULL), FP_EINVAL);
    fp_metrics_free(m);
    check_ctx("%s", "");
}

/* A scrape-time callback: sets one series per breaker from "live" state. */
static int breaker_states[3] = {0, 1, 2};
static void collect_breakers(fp_metrics_family *f, void *arg)
{
    int *calls = arg;
    (*calls)++;
    static const char *const names[] = {"store", "webhook", "upstream"};
    for (int i = 0; i < 3; i++)
        fp_gauge_set(fp_metrics_child(f, (const char *[]){names[i]}), breaker_states[i]);
}

static void test_collect(void)
{
    check_ctx("collect");
    fp_metrics *m = fp_metrics_new();
    int calls = 0;
    CHECK_EQ_INT(fp_metrics_register(m,
                                     &(fp_metrics_opts){.name = "k_breaker_state",
                                                        .help = "Breaker state.",
                                                        .type = FP_METRICS_GAUGE,
                                                        .labels = {"breaker"},
                                                        .collect = collect_breakers,
                                                        .arg = &calls},
                                     NULL, NULL),
                 0);
    char *got = scrape(m);
    CHECK_CONTAINS(got, "k_breaker_state{breaker=\"webhook\"} 1\n");
    free(got);
    breaker_states[1] = 0;
    got = scrape(m);
    CHECK_CONTAINS(got, "k_breaker_state{breaker=\"webhook\"} 0\n");
    CHECK_CONTAINS(got, "k_breaker_state{breaker=\"upstream\"} 2\n");
    free(got);
    CHECK_EQ_INT(calls, 2);
    fp_metrics_free(m);
    check_ctx("%s", "");
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define NOBS     40000
#define NROUTES  5

static struct {
    fp_metrics *m;
    fp_metrics_family *lat, *hits, *inflight;
    atomic_int done;
} conc;

static int64_t obs_value(int i)
{
    return (int64_t)(i % 1300); /* spans every bucket of small_us and +Inf */
}

static void *worker(void *arg)
{
    (void)arg;
    fp_metric *h = fp_metrics_child(conc.lat, NULL);
    fp_metric *g = fp_metrics_child(conc.inflight, NULL);
    char route[16];
    for (int i = 0; i < NOBS; i++) {
        fp_gauge_add(g, 1);
        snprintf(route, sizeof route, "r%d", i % NROUTES);
        /* lookups race with creation of the same series in other threads */
        fp_counter_inc(fp_metrics_child(conc.hits, (const char *[]){route}));
        fp_hist_observe(h, obs_value(i));
        fp_gauge_add(g, -1);
    }
    return NULL;
}

static void *scraper(void *arg)
{
    int *n = arg;
    while (!atomic_load(&conc.done)) {
        fp_buf b;
        fp_buf_init(&b, 0);
        fp_metrics_write(conc.m, &b);
        fp_buf_free(&b);
        (*n)++;
    }
    return NULL;
}

static void test_concurrency(void)
{
    check_ctx("concurrency");
    conc.m = fp_metrics_new();
    atomic_init(&conc.done, 0);
    CHECK_EQ_INT(fp_metrics_register(conc.m,
                                     &(fp_metrics_opts){.name = "x_latency_seconds",
                                                        .help = "h",
                                                        .type = FP_METRICS_HISTOGRAM,
                                                        .scale = FP_METRICS_MICRO,
                                                        .bounds = small_us,
                                                        .nbounds = 4},
                                     &conc.lat, NULL),
                 0);
    CHECK_EQ_INT(fp_metrics_register(conc.m,
                                     &(fp_metrics_opts){.name = "x_hits_total",
                                                        .help = "h",
                                                        .type = FP_METRICS_COUNTER,
                                                        .labels = {"route"}},
                                     &conc.hits, NULL),
                 0);
    CHECK_EQ_INT(fp_metrics_register(conc.m,
                                     &(fp_metrics_opts){.name = "x_in_flight_requests",
                                                        .help = "h",
                                                        .type = FP_METRICS_GAUGE},
                                     &conc.inflight, NULL),
                 0);
    pthread_t t[NTHREADS], s;
    int scrapes = 0;
    CHECK(pthread_create(&s, NULL, scraper, &scrapes) == 0);
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&conc.done, 1);
    pthread_join(s, NULL);
    CHECK(scrapes > 0);

    /* expected totals, computed the slow way */
    int64_t sum = 0;
    uint64_t cum[5] = {0};
    for (int i = 0; i < NOBS; i++) {
        int64_t v = obs_value(i);
        sum += v;
        for (int k = 0; k < 4; k++)
            if (v <= small_us[k])
                cum[k]++;
        cum[4]++;
    }
    fp_metric *h = fp_metrics_child(conc.lat, NULL);
    CHECK_EQ_INT(fp_hist_count(h), (int64_t)NTHREADS * NOBS);
    CHECK_EQ_INT(fp_metric_value(h), NTHREADS * sum);
    CHECK_EQ_INT(fp_metric_value(fp_metrics_child(conc.inflight, NULL)), 0);
    for (int r = 0; r < NROUTES; r++) {
        char route[16];
        snprintf(route, sizeof route, "r%d", r);
        check_ctx("concurrency %s", route);
        CHECK_EQ_INT(fp_metric_value(fp_metrics_child(conc.hits, (const char *[]){route})),
                     NTHREADS * NOBS / NROUTES);
    }
    check_ctx("concurrency text");
    char *got = scrape(conc.m);
    static const char *const le[] = {"0.0001", "0.00025", "0.0005", "0.001", "+Inf"};
    for (int k = 0; k < 5; k++) {
        char line[128];
        snprintf(line, sizeof line, "x_latency_seconds_bucket{le=\"%s\"} %llu\n", le[k],
                 (unsigned long long)(cum[k] * NTHREADS));
        CHECK_CONTAINS(got, line);
    }
    /* exactly NROUTES series: no duplicates from racing creation */
    int n = 0;
    for (const char *p = got; (p = strstr(p, "\nx_hits_total{")) != NULL; p++)
        n++;
    CHECK_EQ_INT(n, NROUTES);
    CHECK(strstr(got, "dropped") == NULL);
    free(got);
    fp_metrics_free(conc.m);
    check_ctx("%s", "");
}

/* ---- process metrics ---- */

/* The value of an unlabelled sample `name v` in text, or -1. */
static long long sample(const char *text, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = text ? strstr(text, pat) : NULL;
    return p ? atoll(p + strlen(pat)) : -1;
}

/* The value of an unlabelled sample whose value is in seconds, in
 * integer microseconds ("1.25" -> 1250000), or -1. */
static long long sample_us(char *text, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = text ? strstr(text, pat) : NULL;
    long long us = -1;
    if (p) {
        p += strlen(pat);
        char *end;
        us = strtoll(p, &end, 10) * 1000000;
        if (*end == '.') {
            long long scale = 100000;
            for (end++; *end >= '0' && *end <= '9' && scale > 0; end++, scale /= 10)
                us += (*end - '0') * scale;
        }
    }
    free(text);
    return us;
}

/* A fresh process exposition (caller frees). */
static char *process_text(void)
{
    fp_buf b;
    fp_buf_init(&b, 0);
    fp_metrics_process(&b);
    return fp_buf_take(&b, NULL);
}

static void test_process(void)
{
    check_ctx("process");
    fp_buf b;
    fp_buf_init(&b, 0);
    fp_metrics_process(&b);
    char *got = fp_buf_take(&b, NULL);
    static const struct {
        const char *name;
        fp_metrics_type type;
    } names[] = {
        {"process_cpu_seconds_total", FP_METRICS_COUNTER},
        {"process_resident_memory_bytes", FP_METRICS_GAUGE},
        {"process_virtual_memory_bytes", FP_METRICS_GAUGE},
        {"process_open_fds", FP_METRICS_GAUGE},
        {"process_max_fds", FP_METRICS_GAUGE},
        {"process_start_time_seconds", FP_METRICS_GAUGE},
        {"fapiao_process_threads", FP_METRICS_GAUGE},
    };
    for (size_t i = 0; i < NCASES(names); i++) {
        check_ctx("process %s", names[i].name);
        char line[128];
        snprintf(line, sizeof line, "# TYPE %s %s\n", names[i].name,
                 names[i].type == FP_METRICS_COUNTER ? "counter" : "gauge");
        CHECK_CONTAINS(got, line);
        CHECK_EQ_INT(fp_metrics_check_name(names[i].name, names[i].type, NULL), 0);
    }
    check_ctx("process values");
    CHECK(sample(got, "process_resident_memory_bytes") > 256 << 10);
    CHECK(sample(got, "process_virtual_memory_bytes") >=
          sample(got, "process_resident_memory_bytes"));
    CHECK(sample(got, "process_max_fds") >= 64);
    CHECK(sample(got, "fapiao_process_threads") >= 1);
    long long start = sample(got, "process_start_time_seconds");
    long long now = (long long)time(NULL);
    CHECK_MSG(start > now - 600 && start <= now + 1, "start %lld, now %lld", start, now);
    long long fds = sample(got, "process_open_fds");
    CHECK(fds >= 3);
    free(got);

    /* three more descriptors are seen */
    int d[3];
    for (int i = 0; i < 3; i++)
        d[i] = dup(2);
    fp_buf_init(&b, 0);
    fp_metrics_process_collector(&b, NULL);
    got = fp_buf_take(&b, NULL);
    CHECK_EQ_INT(sample(got, "process_open_fds"), fds + 3);
    free(got);
    for (int i = 0; i < 3; i++)
        close(d[i]);

    /* CPU time is printed in seconds, with microsecond digits: burn 30 ms
     * and it must have grown by about that much */
    long long before = sample_us(process_text(), "process_cpu_seconds_total");
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    volatile uint64_t x = 0;
    do {
        for (int i = 0; i < 100000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    } while ((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec) < 30000000LL);
    long long after = sample_us(process_text(), "process_cpu_seconds_total");
    /* ticks are 10 ms: allow one tick of slack each way */
    CHECK_MSG(before >= 0 && after - before >= 20000, "cpu %lld us -> %lld us", before, after);
    check_ctx("%s", "");
}

/* ---- promtool ---- */

static void extra_collector(fp_buf *out, void *arg)
{
    (void)arg;
    fp_metrics_emit(out, "fapiao_outbox_backlog", "Outbox rows not yet delivered.",
                    FP_METRICS_GAUGE, 12, 1);
    fp_metrics_emit(out, "fapiao_webhook_deliveries_total", "Webhook deliveries attempted.",
                    FP_METRICS_COUNTER, 3, 1);
}

/* Runs promtool check metrics on text; returns its exit status (or -1)
 * and puts its combined output in out. */
static int promtool_check(const char *text, char *out, size_t outlen)
{
    char path[] = "/tmp/fp_metrics_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    int status = -1;
    out[0] = 0;
    if (ok) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, PROMTOOL " check metrics < %s 2>&1", path);
        FILE *p = popen(cmd, "r");
        if (p) {
            size_t n = fread(out, 1, outlen - 1, p);
            out[n] = 0;
            int st = pclose(p);
            status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
    }
    unlink(path);
    return status;
}

static void test_promtool(void)
{
    check_ctx("promtool");
    if (!CHECK_MSG(access(PROMTOOL, X_OK) == 0,
                   PROMTOOL " is missing: install Debian's prometheus package "
                            "(scripts/install-deps.sh --test) — this test does not skip"))
        return;

    fp_metrics *m = fp_metrics_new();
    fp_metrics_family *req, *lat, *inflight, *conns, *rl, *brk, *q, *batch, *fsync, *exp, *nums;
    int rc = 0;
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_http_requests_total",
                                                 .help = "HTTP requests by route and status class.",
                                                 .type = FP_METRICS_COUNTER,
                                                 .labels = {"route", "code"}},
                              &req, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_http_request_duration_seconds",
                                                 .help = "HTTP request latency by route.",
                                                 .type = FP_METRICS_HISTOGRAM,
                                                 .labels = {"route"},
                                                 .scale = FP_METRICS_MICRO,
                                                 .bounds = fp_metrics_latency_us,
                                                 .nbounds = FP_METRICS_LATENCY_US_N},
                              &lat, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_http_in_flight_requests",
                                                 .help = "Requests being handled.",
                                                 .type = FP_METRICS_GAUGE},
                              &inflight, NULL);
    rc |= fp_metrics_add_collector(m, fp_metrics_process_collector, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_connections",
                                                 .help = "Open client connections.",
                                                 .type = FP_METRICS_GAUGE},
                              &conns, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_rate_limited_total",
                                                 .help = "Requests refused by a rate limit.",
                                                 .type = FP_METRICS_COUNTER,
                                                 .labels = {"limit"}},
                              &rl, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_breaker_state",
                                                 .help = "Circuit breaker state: 0 closed, 1 "
                                                         "open, 2 half-open.",
                                                 .type = FP_METRICS_GAUGE,
                                                 .labels = {"breaker"}},
                              &brk, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_queue_depth",
                                                 .help = "Jobs waiting per queue.",
                                                 .type = FP_METRICS_GAUGE,
                                                 .labels = {"queue"}},
                              &q, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_store_commit_batch_size",
                                                 .help = "Writes per group commit.",
                                                 .type = FP_METRICS_HISTOGRAM,
                                                 .bounds = sizes,
                                                 .nbounds = 4},
                              &batch, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_store_fsync_duration_seconds",
                                                 .help = "fsync latency.",
                                                 .type = FP_METRICS_HISTOGRAM,
                                                 .scale = FP_METRICS_MICRO,
                                                 .bounds = fp_metrics_latency_us,
                                                 .nbounds = FP_METRICS_LATENCY_US_N},
                              &fsync, NULL);
    rc |= fp_metrics_add_collector(m, extra_collector, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_tls_cert_expiry_timestamp_seconds",
                                                 .help = "When the TLS certificate expires.",
                                                 .type = FP_METRICS_GAUGE},
                              &exp, NULL);
    rc |= fp_metrics_register(m,
                              &(fp_metrics_opts){.name = "fapiao_numbers_remaining",
                                                 .help = "Invoice numbers left in the range.",
                                                 .type = FP_METRICS_GAUGE,
                                                 .labels = {"range"}},
                              &nums, NULL);
    CHECK_EQ_INT(rc, 0);

    static const char *const routes[] = {"issue", "red", "get \"x\"\\y\nz"};
    for (int i = 0; i < 3; i++) {
        fp_counter_add(fp_metrics_child(req, (const char *[]){routes[i], "2xx"}), 10 + i);
        fp_counter_add(fp_metrics_child(req, (const char *[]){routes[i], "5xx"}), i);
        fp_metric *h = fp_metrics_child(lat, (const char *[]){routes[i]});
        for (int k = 0; k < 100; k++)
            fp_hist_observe(h, (int64_t)k * 997 * (i + 1));
    }
    fp_gauge_set(fp_metrics_child(inflight, NULL), 3);
    fp_gauge_set(fp_metrics_child(conns, NULL), 17);
    fp_counter_add(fp_metrics_child(rl, (const char *[]){"global"}), 5);
    fp_counter_add(fp_metrics_child(rl, (const char *[]){"credential"}), 2);
    fp_gauge_set(fp_metrics_child(brk, (const char *[]){"store"}), 0);
    fp_gauge_set(fp_metrics_child(brk, (const char *[]){"webhook"}), 1);
    fp_gauge_set(fp_metrics_child(q, (const char *[]){"render"}), 4);
    fp_hist_observe(fp_metrics_child(batch, NULL), 3);
    fp_hist_observe(fp_metrics_child(fsync, NULL), 2345);
    fp_gauge_set(fp_metrics_child(exp, NULL), 1893456000);
    fp_gauge_set(fp_metrics_child(nums, (const char *[]){"2025-A"}), 99000);
    /* a refused series makes the dropped counter appear */
    CHECK(fp_metrics_child(nums, (const char *[]){"\xc3"}) == NULL);

    char *text = scrape(m);
    char out[4096];
    int st = promtool_check(text ? text : "", out, sizeof out);
    CHECK_MSG(st == 0, "promtool check metrics exit status %d", st);
    CHECK_MSG(out[0] == 0, "promtool check metrics says: %s", out);
    CHECK_CONTAINS(text, "\nprocess_open_fds ");
    CHECK_CONTAINS(text, "\nfapiao_outbox_backlog 12\n");
    CHECK_CONTAINS(text, "\nfapiao_metrics_series_dropped_total 1\n");
    if (st != 0 || out[0])
        fprintf(stderr, "---- exposition ----\n%s----\n", text ? text : "(null)");
    free(text);
    fp_metrics_free(m);

    /* and the check bites: a lint problem and a syntax error are reported */
    check_ctx("promtool control");
    st = promtool_check("# HELP bad_ms x\n# TYPE bad_ms counter\nbad_ms 1\n", out, sizeof out);
    CHECK_MSG(st != 0 && strstr(out, "_total"), "lint not reported: %d %s", st, out);
    st = promtool_check("broken{ 1\n", out, sizeof out);
    CHECK_MSG(st != 0 && out[0], "syntax error not reported: %d %s", st, out);
    check_ctx("%s", "");
}

/* A family a collector writes at scrape time passes the registration
 * checks: a bad name or label writes nothing, label values are escaped, a
 * sample with an invalid value is dropped. */
static void test_scrape_family(void)
{
    fp_buf b;
    fp_buf_init(&b, 0);
    fp_metrics_scrape f;
    CHECK_EQ_INT(
        fp_metrics_family_begin(
            &b, &f,
            &(fp_metrics_opts){.name = "t_jobs", .help = "Jobs.", .type = FP_METRICS_COUNTER}),
        FP_EINVAL); /* a counter ends in _total */
    fp_metrics_family_sample(&b, &f, NULL, 1);
    CHECK_EQ_INT((int)b.len, 0);
    CHECK_EQ_INT(fp_metrics_family_begin(&b, &f,
                                         &(fp_metrics_opts){.name = "t_jobs",
                                                            .help = "Jobs.",
                                                            .type = FP_METRICS_GAUGE,
                                                            .labels = {"le"}}),
                 FP_EINVAL);                                           /* a reserved label */
    fp_metrics_emit(&b, "t_free_mb", "Free.", FP_METRICS_GAUGE, 1, 1); /* not a base unit */
    CHECK_EQ_INT((int)b.len, 0);
    CHECK_EQ_INT(fp_metrics_family_begin(&b, &f,
                                         &(fp_metrics_opts){.name = "t_runs_total",
                                                            .help = "Runs.",
                                                            .type = FP_METRICS_COUNTER,
                                                            .labels = {"kind", "result"},
                                                            .scale = 1000}),
                 0);
    fp_metrics_family_sample(&b, &f, (const char *[]){"pdf", "a\"b\\c"}, 1500);
    fp_metrics_family_sample(&b, &f, (const char *[]){"pdf", "\xff"}, 1);
    fp_metrics_family_sample(&b, &f, (const char *[]){"pdf", NULL}, 1);
    fp_metrics_family_sample(&b, &f, NULL, 1);
    fp_buf_append(&b, "", 1);
    CHECK_EQ_STR(b.p, "# HELP t_runs_total Runs.\n# TYPE t_runs_total counter\n"
                      "t_runs_total{kind=\"pdf\",result=\"a\\\"b\\\\c\"} 1.5\n");
    fp_buf_free(&b);
}

/* All /metrics text goes through the registry: no source file but the
 * registry's own writes HELP or TYPE lines by hand (where it lives is found
 * by what it defines, so the check survives a move). */
static int holds(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void scan_for_exposition(const char *dir, int *registries, int *others)
{
    DIR *d = opendir(dir);
    if (!CHECK(d != NULL))
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            scan_for_exposition(p, registries, others);
            continue;
        }
        size_t n = strlen(e->d_name);
        if (n < 2 || strcmp(e->d_name + n - 2, ".c") != 0)
            continue;
        /* a HELP or TYPE line starting a string, or after a \n in one */
        if (!holds(p, "\"# HELP ") && !holds(p, "\"# TYPE ") && !holds(p, "\\n# HELP ") &&
            !holds(p, "\\n# TYPE "))
            continue;
        if (holds(p, "int fp_metrics_register(fp_metrics"))
            (*registries)++;
        else {
            fprintf(stderr, "%s writes exposition text by hand\n", p);
            (*others)++;
        }
    }
    closedir(d);
}

static void test_no_hand_written_exposition(void)
{
    int registries = 0, others = 0;
    scan_for_exposition(FP_SOURCE_DIR "/src", &registries, &others);
    CHECK_EQ_INT(others, 0);
    CHECK_EQ_INT(registries, 1);
}

int main(void)
{
    test_fmt();
    test_exact();
    test_escape();
    test_names();
    test_children();
    test_collect();
    test_concurrency();
    test_process();
    test_promtool();
    test_scrape_family();
    test_no_hand_written_exposition();
    return check_summary();
}
