/* metrics_endpoint.c — where /metrics is served: GET /metrics on the API
 * listener, or the separate plain-HTTP listener on loopback
 * (--metrics-listen), and who may scrape (docs/security.md "Metrics
 * exposure").  The families themselves are server_metrics.c's. */
#include "internal.h"
#include "fapiao/crypto.h"
#include "fapiao/metrics.h"
#include "fapiao/topn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    fp_topn_metrics(s->by_seller, &b, "fapiao_issued_by_seller_total",
                    "Invoices issued per seller id: the top --metrics-top-n by volume, the rest "
                    "as \"other\".",
                    "seller");
    fp_topn_metrics(s->by_client, &b, "fapiao_issued_by_client_total",
                    "Invoices issued per client id: the top --metrics-top-n by volume, the rest "
                    "as \"other\".",
                    "client");
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

void fp_server_metrics_unlisten(fp_server *s)
{
    if (s->metrics_d) {
        MHD_stop_daemon(s->metrics_d);
        s->metrics_d = NULL;
    }
}

int fp_server_metrics_port(const fp_server *s)
{
    return s->metrics_d ? s->metrics_port : 0;
}

struct fp_metrics *fp_server_metrics(fp_server *s)
{
    return s->metrics;
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
