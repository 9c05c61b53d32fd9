/* server_metrics.c — the server's Prometheus families (metrics.h): request
 * counts and latency histograms per route, in-flight requests, connections,
 * admission refusals, the store's commit batch size and fsync latency, and
 * at scrape time the store counters, numbers left, outbox, health and
 * process figures. */
#include "fapiao/adaptive.h"
#include "fapiao/health.h"
#include "fapiao/jobs.h"
#include "fapiao/metrics.h"
#include "fapiao/outbox.h"
#include "fapiao/uploader.h"
#include "fapiao/topn.h"
#include "fapiao/store.h"
#include "acceptor.h"
#include "conn_guard.h"
#include "http_limits.h"
#include "internal.h"
#include "fapiao/tls.h"
#include "tls_failures.h"

#include "fapiao/crypto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

static void collect_store(fp_buf *b, void *arg)
{
    fp_server *s = arg;
    fp_store_stats st;
    fp_store_get_stats(s->o.store, &st);
    fp_metrics_emit(b, "fapiao_store_commits_total", "Group commits (transactions) of the writer.",
                    FP_METRICS_COUNTER, (int64_t)st.commits, 1);
    fp_metrics_emit(b, "fapiao_store_requests_total", "Issue requests processed by the writer.",
                    FP_METRICS_COUNTER, (int64_t)st.requests, 1);
    fp_metrics_emit(b, "fapiao_store_queue_depth",
                    "Issue requests handed to the writer and waiting for their group commit.",
                    FP_METRICS_GAUGE, atomic_load(&s->inflight), 1);
    int64_t remaining = 0;
    if (fp_store_numbers_remaining(s->o.store, 0, &remaining) == 0) {
        fp_metrics_emit(b, "fapiao_numbers_remaining", "Invoice numbers left in all ranges.",
                        FP_METRICS_GAUGE, remaining, 1);
        fp_metrics_emit(b, "fapiao_numbers_warning_threshold",
                        "Below this many numbers /readyz warns.", FP_METRICS_GAUGE, s->o.range_warn,
                        1);
    }
    fp_metrics_emit(b, "fapiao_http_connections_waiting",
                    "Connections accepted and waiting for their first TLS record.",
                    FP_METRICS_GAUGE, fp_acceptor_waiting(s->acc), 1);
    fp_http_limits_metrics(s, b);
    fp_credit_metrics(s, b); /* metrics_credit.c */
    if (s->adaptive) {
        fp_metrics_emit(b, "fapiao_concurrency_limit",
                        "Adaptive limit on issue requests in flight to the store.",
                        FP_METRICS_GAUGE, fp_adaptive_limit(s->adaptive), 1);
        fp_metrics_emit(b, "fapiao_concurrency_inflight",
                        "Issue requests holding an adaptive-limit slot.", FP_METRICS_GAUGE,
                        fp_adaptive_inflight(s->adaptive), 1);
    }
    if (s->o.outbox) {
        fp_jobs_counts jobs;
        int have = s->o.health && fp_health_jobs(s->o.health, &jobs) == 0;
        fp_outbox_metrics(s->o.outbox, have ? &jobs : NULL, b);
    }
    if (s->o.uploader)
        fp_uploader_metrics(s->o.uploader, b);
    if (s->o.health)
        fp_health_metrics(s->o.health, b);
}

/* Slow-request cuts (conn_guard.h), counted there, copied at scrape time. */
static void collect_cut(fp_metrics_family *f, void *arg)
{
    fp_server *s = arg;
    static const char *const why[] = {"header_timeout", "body_timeout", "evicted"};
    static const int cut[] = {FP_CUT_HEADER, FP_CUT_BODY, FP_CUT_EVICTED};
    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++)
        fp_gauge_set(fp_metrics_child(f, (const char *[]){why[i]}),
                     (int64_t)fp_conn_guard_cut(s->guard, cut[i]));
}

/* The accept layer (acceptor.h): connections closed before libmicrohttpd
 * saw them, counted there, copied at scrape time. */
static void collect_refused(fp_metrics_family *f, void *arg)
{
    fp_server *s = arg;
    static const char *const why[FP_ACC__N] = {[FP_ACC_HANDSHAKE_TIMEOUT] = "handshake_timeout",
                                               [FP_ACC_EVICTED] = "evicted",
                                               [FP_ACC_PER_IP] = "per_ip_cap",
                                               [FP_ACC_GLOBAL] = "global_cap",
                                               [FP_ACC_PROXY_UNTRUSTED] = "proxy_untrusted",
                                               [FP_ACC_PROXY_INVALID] = "proxy_invalid",
                                               [FP_ACC_NOT_TLS] = "not_tls"};
    for (int i = 0; i < FP_ACC__N; i++)
        fp_gauge_set(fp_metrics_child(f, (const char *[]){why[i]}),
                     (int64_t)fp_acceptor_count(s->acc, i));
}

/* Failed TLS handshakes by reason (tls_failures.h). */
static void collect_tls_failures(fp_metrics_family *f, void *arg)
{
    fp_server *s = arg;
    fp_tls_failures *tf = fp_tls_failures_of(s->o.tls);
    for (int i = 0; i < FP_TLSF__N; i++)
        fp_gauge_set(fp_metrics_child(f, (const char *[]){fp_tls_failures_reason_name(i)}),
                     (int64_t)fp_tls_failures_total(tf, i));
}

/* The families whose counts live in the connection layers. */
static int register_connection_families(fp_server *s, fp_err *err)
{
    int rc = fp_metrics_register(
        s->metrics,
        &(fp_metrics_opts){.name = "fapiao_http_connections_cut_total",
                           .help = "Connections shut for reading a request too slowly "
                                   "(slow-request protection).",
                           .type = FP_METRICS_COUNTER,
                           .labels = {"reason"},
                           .collect = collect_cut,
                           .arg = s},
        NULL, err);
    if (rc == 0)
        rc = fp_metrics_register(
            s->metrics,
            &(fp_metrics_opts){.name = "fapiao_http_connections_refused_total",
                               .help = "Connections closed before their TLS handshake (caps, "
                                       "pre-handshake deadline, PROXY header checks).",
                               .type = FP_METRICS_COUNTER,
                               .labels = {"reason"},
                               .collect = collect_refused,
                               .arg = s},
            NULL, err);
    if (rc == 0)
        rc = fp_metrics_register(
            s->metrics,
            &(fp_metrics_opts){.name = "fapiao_tls_handshake_failures_total",
                               .help = "TLS handshakes that failed, by reason (the client's "
                                       "alert, an old ClientHello, a close); per client "
                                       "address: GET /v1/admin/tls-failures.",
                               .type = FP_METRICS_COUNTER,
                               .labels = {"reason"},
                               .collect = collect_tls_failures,
                               .arg = s},
            NULL, err);
    return rc;
}

/* An invoice stored (201, not a replay): the per-seller and per-client
 * counters of the metrics listener (docs/alerting.md "Per seller and per
 * client"). */
void fp_server_metrics_issued(fp_server *s, int64_t seller_id, const char *client_id)
{
    if (!s->by_seller)
        return;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, seller_id);
    fp_topn_inc(s->by_seller, id);
    fp_topn_inc(s->by_client, client_id);
}

int fp_server_metrics_init(fp_server *s, const fp_route *routes, size_t nroutes, fp_err *err)
{
    fp_metrics *m = s->metrics = fp_metrics_new();
    if (!m)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    if (s->o.metrics_host[0]) {
        int n = s->o.metrics_top_n > 0 ? s->o.metrics_top_n : 20;
        if (!(s->by_seller = fp_topn_new(n)) || !(s->by_client = fp_topn_new(n)))
            return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    fp_metrics_family *req, *dur, *infl, *conns, *conns_total, *limited, *batch, *fsync, *authfail;
    int rc;
    if ((rc = fp_metrics_register(
             m,
             &(fp_metrics_opts){.name = "fapiao_http_requests_total",
                                .help = "HTTP requests by route and status class.",
                                .type = FP_METRICS_COUNTER,
                                .labels = {"method", "route", "code"},
                                .max_children = 256},
             &req, err)) < 0 ||
        (rc = fp_metrics_register(
             m,
             &(fp_metrics_opts){.name = "fapiao_http_request_duration_seconds",
                                .help = "Time from the request line to the last byte queued.",
                                .type = FP_METRICS_HISTOGRAM,
                                .labels = {"method", "route"},
                                .scale = FP_METRICS_MICRO,
                                .bounds = fp_metrics_latency_us,
                                .nbounds = FP_METRICS_LATENCY_US_N},
             &dur, err)) < 0 ||
        (rc = fp_metrics_register(m,
                                  &(fp_metrics_opts){.name = "fapiao_http_inflight_requests",
                                                     .help = "Requests being answered now.",
                                                     .type = FP_METRICS_GAUGE},
                                  &infl, err)) < 0 ||
        (rc = fp_metrics_register(m,
                                  &(fp_metrics_opts){.name = "fapiao_http_connections",
                                                     .help = "Open client connections.",
                                                     .type = FP_METRICS_GAUGE},
                                  &conns, err)) < 0 ||
        (rc = fp_metrics_register(m,
                                  &(fp_metrics_opts){.name = "fapiao_http_connections_total",
                                                     .help = "Client connections accepted.",
                                                     .type = FP_METRICS_COUNTER},
                                  &conns_total, err)) < 0 ||
        (rc = fp_metrics_register(
             m,
             &(fp_metrics_opts){.name = "fapiao_admission_refused_total",
                                .help = "Requests refused before any work: rate limits (global, "
                                        "client), the adaptive concurrency limit, degraded mode.",
                                .type = FP_METRICS_COUNTER,
                                .labels = {"reason"}},
             &limited, err)) < 0 ||
        (rc = fp_metrics_register(
             m,
             &(fp_metrics_opts){.name = "fapiao_auth_failures_total",
                                .help = "Authentication failures and refusals (401, 403) by what "
                                        "the failure budget made of them: recorded (own audit "
                                        "record and log line), counted (only in a .repeated "
                                        "record), limited (answered 429).",
                                .type = FP_METRICS_COUNTER,
                                .labels = {"decision"}},
             &authfail, err)) < 0 ||
        (rc = fp_metrics_register(
             m,
             &(fp_metrics_opts){.name = "fapiao_store_commit_batch_size",
                                .help = "Issue requests per group commit.",
                                .type = FP_METRICS_HISTOGRAM,
                                .bounds = batch_bounds,
                                .nbounds = (int)(sizeof batch_bounds / sizeof batch_bounds[0])},
             &batch, err)) < 0 ||
        (rc = fp_metrics_register(
             m,
             &(fp_metrics_opts){.name = "fapiao_store_commit_duration_seconds",
                                .help = "COMMIT of a group (the WAL fsync) and probes.",
                                .type = FP_METRICS_HISTOGRAM,
                                .scale = FP_METRICS_MICRO,
                                .bounds = fp_metrics_latency_us,
                                .nbounds = FP_METRICS_LATENCY_US_N},
             &fsync, err)) < 0)
        return rc;
    s->routes = routes;
    s->nroutes = nroutes;
    static const char *const classes[6] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (size_t i = 0; i <= nroutes; i++) {
        const char *method = i < nroutes ? routes[i].method : "any";
        const char *route = i < nroutes ? routes[i].pattern : "unmatched";
        for (int c = 1; c < 6; c++)
            s->m_requests[i][c] =
                fp_metrics_child(req, (const char *[]){method, route, classes[c]});
        s->m_duration[i] = fp_metrics_child(dur, (const char *[]){method, route});
    }
    s->m_inflight = fp_metrics_child(infl, NULL);
    s->m_conns = fp_metrics_child(conns, NULL);
    s->m_conns_total = fp_metrics_child(conns_total, NULL);
    static const char *const reasons[4] = {"global_rate", "client_rate", "concurrency", "degraded"};
    for (int i = 0; i < 4; i++)
        s->m_limited[i] = fp_metrics_child(limited, (const char *[]){reasons[i]});
    static const char *const decisions[3] = {"recorded", "counted", "limited"};
    for (int i = 0; i < 3; i++) /* indexed by fp_auth_gate */
        s->m_authfail[i] = fp_metrics_child(authfail, (const char *[]){decisions[i]});
    s->m_batch = fp_metrics_child(batch, NULL);
    s->m_fsync = fp_metrics_child(fsync, NULL);
    fp_store_set_histograms(s->o.store, s->m_batch, s->m_fsync);
    if ((rc = register_connection_families(s, err)) < 0)
        return rc;
    fp_metrics_add_collector(m, collect_store, s);
    fp_metrics_add_collector(m, fp_metrics_process_collector, NULL);
    return 0;
}

void fp_server_metrics_request(fp_server *s, const fp_route *route, int status, int64_t dur_us)
{
    size_t route_ix = route ? (size_t)(route - s->routes) : s->nroutes;
    int c = status >= 100 && status < 600 ? status / 100 : 5;
    fp_counter_inc(s->m_requests[route_ix][c]);
    fp_hist_observe(s->m_duration[route_ix], dur_us);
}

void fp_server_metrics_free(fp_server *s)
{
    if (s->o.store && s->metrics)
        fp_store_set_histograms(s->o.store, NULL, NULL);
    fp_metrics_free(s->metrics);
    s->metrics = NULL;
    fp_topn_free(s->by_seller);
    fp_topn_free(s->by_client);
    s->by_seller = s->by_client = NULL;
}
