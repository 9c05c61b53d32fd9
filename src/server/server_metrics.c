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
#include "fapiao/store.h"
#include "acceptor.h"
#include "conn_guard.h"
#include "http_limits.h"
#include "internal.h"

#include "fapiao/crypto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
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
    fp_buf_printf(b,
                  "# HELP fapiao_http_connections_cut_total Connections shut for reading a "
                  "request too slowly (slow-request protection).\n"
                  "# TYPE fapiao_http_connections_cut_total counter\n"
                  "fapiao_http_connections_cut_total{reason=\"header_timeout\"} %llu\n"
                  "fapiao_http_connections_cut_total{reason=\"body_timeout\"} %llu\n"
                  "fapiao_http_connections_cut_total{reason=\"evicted\"} %llu\n",
                  (unsigned long long)fp_conn_guard_cut(s->guard, FP_CUT_HEADER),
                  (unsigned long long)fp_conn_guard_cut(s->guard, FP_CUT_BODY),
                  (unsigned long long)fp_conn_guard_cut(s->guard, FP_CUT_EVICTED));
    /* the accept layer (acceptor.h): closed before libmicrohttpd saw them */
    static const char *const why[FP_ACC__N] = {[FP_ACC_HANDSHAKE_TIMEOUT] = "handshake_timeout",
                                               [FP_ACC_EVICTED] = "evicted",
                                               [FP_ACC_PER_IP] = "per_ip_cap",
                                               [FP_ACC_GLOBAL] = "global_cap",
                                               [FP_ACC_PROXY_UNTRUSTED] = "proxy_untrusted",
                                               [FP_ACC_PROXY_INVALID] = "proxy_invalid",
                                               [FP_ACC_NOT_TLS] = "not_tls"};
    fp_buf_printf(b, "# HELP fapiao_http_connections_refused_total Connections closed before "
                     "their TLS handshake (caps, pre-handshake deadline, PROXY header checks).\n"
                     "# TYPE fapiao_http_connections_refused_total counter\n");
    for (int i = 0; i < FP_ACC__N; i++)
        fp_buf_printf(b, "fapiao_http_connections_refused_total{reason=\"%s\"} %llu\n", why[i],
                      (unsigned long long)fp_acceptor_count(s->acc, i));
    fp_metrics_emit(b, "fapiao_http_connections_waiting",
                    "Connections accepted and waiting for their first TLS record.",
                    FP_METRICS_GAUGE, fp_acceptor_waiting(s->acc), 1);
    fp_http_limits_metrics(s, b);
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
    if (s->o.health)
        fp_health_metrics(s->o.health, b);
}

int fp_server_metrics_init(fp_server *s, const fp_route *routes, size_t nroutes, fp_err *err)
{
    fp_metrics *m = s->metrics = fp_metrics_new();
    if (!m)
        return fp_fail(err, FP_ENOMEM, "out of memory");
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
    fp_metrics_add_collector(m, collect_store, s);
    fp_metrics_add_collector(m, fp_metrics_process_collector, NULL);
    return 0;
}

void fp_server_metrics_request(fp_server *s, size_t route_ix, int status, int64_t dur_us)
{
    int c = status >= 100 && status < 600 ? status / 100 : 5;
    fp_counter_inc(s->m_requests[route_ix][c]);
    fp_hist_observe(s->m_duration[route_ix], dur_us);
}

void fp_server_metrics_unlisten(fp_server *s)
{
    if (s->metrics_d) {
        MHD_stop_daemon(s->metrics_d);
        s->metrics_d = NULL;
    }
}

void fp_server_metrics_free(fp_server *s)
{
    fp_server_metrics_unlisten(s);
    if (s->o.store && s->metrics)
        fp_store_set_histograms(s->o.store, NULL, NULL);
    fp_metrics_free(s->metrics);
    s->metrics = NULL;
}

/* ---- who may scrape (docs/security.md "Metrics exposure") ----
 *
 * Why a gate at all: the families carry per-seller volumes (numbers left
 * per range, issue counts), which an anonymous client should not read once
 * the operator says so.  The default stays open for compatibility with
 * existing scrapers; docs/security.md says so plainly. */

/* 1 when auth is "Bearer <token>" (constant time in the token's length). */
static int bearer_ok(const char *auth, const char *token)
{
    size_t tn = strlen(token);
    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return 0;
    auth += 7;
    return strlen(auth) == tn && fp_ct_equal(auth, token, tn);
}

static int metrics_body(fp_server *s, char **body, size_t *len)
{
    fp_buf b;
    fp_buf_init(&b, 4u << 20);
    if (fp_metrics_write(s->metrics, &b) < 0) {
        fp_buf_free(&b);
        return -1;
    }
    *body = fp_buf_take(&b, len);
    return *body ? 0 : -1;
}

/* The separate listener: GET /metrics and nothing else, plain HTTP. */
static enum MHD_Result metrics_only(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *upload,
                                    size_t *upload_size, void **ctx)
{
    (void)version;
    (void)upload;
    fp_server *s = cls;
    static int seen;
    if (!*ctx) { /* headers only so far */
        *ctx = &seen;
        return MHD_YES;
    }
    if (*upload_size) { /* a body is never wanted: drop it */
        *upload_size = 0;
        return MHD_YES;
    }
    int status = 200;
    char *body = NULL;
    size_t len = 0;
    const char *msg = NULL, *ctype = FP_METRICS_CONTENT_TYPE;
    if (strcmp(url, "/metrics") != 0)
        status = 404, msg = "not found: this listener serves only /metrics\n";
    else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        status = 405, msg = "method not allowed\n";
    else if (s->o.metrics_token &&
             !bearer_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
                        s->o.metrics_token))
        status = 401, msg = "unauthenticated: a bearer token is required\n";
    else if (metrics_body(s, &body, &len) < 0)
        status = 500, msg = "internal error\n";
    if (msg) {
        ctype = "text/plain; charset=utf-8";
        body = strdup(msg);
        len = body ? strlen(body) : 0;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (status == 405)
        MHD_add_response_header(resp, "Allow", "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

int fp_server_metrics_listen(fp_server *s, fp_err *err)
{
    if (!s->o.metrics_host[0])
        return 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    /* plain HTTP: only where nobody but this host can listen in */
    if (inet_pton(AF_INET, s->o.metrics_host, &sin->sin_addr) == 1 &&
        (ntohl(sin->sin_addr.s_addr) >> 24) == 127) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)s->o.metrics_port);
    } else if (inet_pton(AF_INET6, s->o.metrics_host, &sin6->sin6_addr) == 1 &&
               IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)s->o.metrics_port);
        flags |= MHD_USE_IPv6;
    } else {
        return fp_fail(err, FP_EINVAL,
                       "the metrics listener must be on a loopback address (127.0.0.0/8 or "
                       "::1), not '%s'",
                       s->o.metrics_host);
    }
    s->metrics_d = MHD_start_daemon(
        flags, (uint16_t)s->o.metrics_port, NULL, NULL, metrics_only, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_CONNECTION_TIMEOUT,
        10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024), MHD_OPTION_END);
    if (!s->metrics_d)
        return fp_fail(err, FP_EIO, "cannot listen for metrics on %s:%d", s->o.metrics_host,
                       s->o.metrics_port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->metrics_d, MHD_DAEMON_INFO_BIND_PORT);
    s->metrics_port = di ? di->port : s->o.metrics_port;
    return 0;
}

int fp_server_metrics_port(const fp_server *s)
{
    return s->metrics_d ? s->metrics_port : 0;
}

enum MHD_Result fp_h_metrics(fp_req *r)
{
    fp_server *s = r->srv;
    if (s->o.metrics_token) {
        if (!bearer_ok(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization"),
                       s->o.metrics_token))
            return fp_problem(r, FPC_UNAUTHENTICATED, "/metrics 需要监控令牌（Bearer）",
                              "/metrics needs the metrics bearer token", NULL);
    } else if (s->o.metrics_host[0]) {
        return fp_problem(r, FPC_NOT_FOUND, "/metrics 仅在单独的监控地址上提供",
                          "/metrics is served only on the separate metrics listener", NULL);
    }
    fp_buf b;
    fp_buf_init(&b, 4u << 20);
    if (fp_metrics_write(r->srv->metrics, &b) < 0) {
        fp_buf_free(&b);
        return fp_problem(r, FPC_INTERNAL, NULL, NULL, NULL);
    }
    size_t len;
    char *body = fp_buf_take(&b, &len);
    return body ? fp_respond(r, 200, FP_METRICS_CONTENT_TYPE, body, len, NULL) : MHD_NO;
}
