/* server.c — libmicrohttpd glue: daemon options, the per-request life cycle
 * (create → read body within limits → route → authenticate (authz.c) →
 * handle → maybe suspend for the writer (park.c) → respond (response.c) →
 * log) and the routing table.  Nothing in src/server calls back into this
 * file: it is the top of the folder. */
#include "internal.h"
#include "access_log.h"
#include "audit_queue.h"
#include "client_cache.h"
#include "acceptor.h"
#include "conn_guard.h"
#include "delivery.h"
#include "http_limits.h"
#include "fapiao/adaptive.h"
#include "fapiao/health.h"
#include "fapiao/ratelimit.h"
#include "fapiao/metrics.h"
#include "xml_handler.h"
#include "fapiao/crypto.h"
#include "fapiao/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* TLS 1.2 and 1.3 only, AEAD ciphers, forward secrecy (tls.h). */
static const char tls_priorities[] = FP_TLS_PRIORITIES;

static const fp_route routes[] = {
    {"POST", "/v1/token", fp_h_token, AUTH_NONE, 0, FP_PERM_NONE},
    {"POST", "/v1/credentials/rotate", fp_h_rotate_secret, AUTH_BEARER, 1, FP_PERM_NONE},
    {"POST", "/v1/invoices", fp_h_issue, AUTH_BEARER, 1, FP_PERM_INVOICES_ISSUE},
    {"GET", "/v1/invoices", fp_h_list_invoices, AUTH_BEARER, 0, FP_PERM_INVOICES_READ},
    {"GET", "/v1/invoices/{}", fp_h_get_invoice, AUTH_BEARER, 0, FP_PERM_INVOICES_READ},
    {"GET", "/v1/invoices/{}/xml", fp_h_get_invoice_xml, AUTH_BEARER, 0, FP_PERM_INVOICES_READ},
    {"GET", "/v1/invoices/{}/pdf", fp_h_get_invoice_pdf, AUTH_BEARER, 0, FP_PERM_INVOICES_READ},
    {"POST", "/v1/invoices/{}/ack", fp_h_ack, AUTH_BEARER, 1, FP_PERM_INVOICES_ACK},
    {"GET", "/v1/jobs", fp_h_list_jobs, AUTH_BEARER, 0, FP_PERM_JOBS_READ},
    {"GET", "/v1/jobs/{}", fp_h_get_job, AUTH_BEARER, 0, FP_PERM_JOBS_READ},
    {"POST", "/v1/jobs/{}/redrive", fp_h_redrive_job, AUTH_BEARER, 1, FP_PERM_JOBS_REDRIVE},
    {"POST", "/v1/invoices/{}/red-forms", fp_h_red_form_create, AUTH_BEARER, 1,
     FP_PERM_RED_FORMS_WRITE},
    {"GET", "/v1/red-forms/{}", fp_h_red_form_get, AUTH_BEARER, 0, FP_PERM_RED_FORMS_READ},
    {"POST", "/v1/red-forms/{}/confirm", fp_h_red_form_act, AUTH_BEARER, 1,
     FP_PERM_RED_FORMS_WRITE},
    {"POST", "/v1/red-forms/{}/reject", fp_h_red_form_act, AUTH_BEARER, 1, FP_PERM_RED_FORMS_WRITE},
    {"POST", "/v1/red-forms/{}/withdraw", fp_h_red_form_act, AUTH_BEARER, 1,
     FP_PERM_RED_FORMS_WRITE},
    {"POST", "/v1/red-forms/{}/invoice", fp_h_red_invoice, AUTH_BEARER, 1, FP_PERM_INVOICES_ISSUE},
    {"GET", "/v1/audit", fp_h_list_audit, AUTH_BEARER, 0, FP_PERM_AUDIT_READ},
    {"POST", "/v1/admin/store/check", fp_h_store_check, AUTH_BEARER, 0, FP_PERM_STORE_CHECK},
    {"GET", "/v1/admin/tls-failures", fp_h_tls_failures, AUTH_BEARER, 0, FP_PERM_TLS_FAILURES},
    {"GET", "/v1/admin/credentials", fp_h_credentials_list, AUTH_BEARER, 0, FP_PERM_CREDENTIALS},
    {"POST", "/v1/admin/credentials", fp_h_credentials_create, AUTH_BEARER, 1, FP_PERM_CREDENTIALS},
    {"POST", "/v1/admin/credentials/{}/rotate", fp_h_credentials_rotate, AUTH_BEARER, 1,
     FP_PERM_CREDENTIALS},
    {"POST", "/v1/admin/credentials/{}/revoke", fp_h_credentials_revoke, AUTH_BEARER, 1,
     FP_PERM_CREDENTIALS},
    {"GET", "/v1/_faults", fp_h_faults, AUTH_BEARER, 0, FP_PERM_FAULTS},
    {"POST", "/v1/_faults", fp_h_faults, AUTH_BEARER, 0, FP_PERM_FAULTS},
    {"GET", "/healthz", fp_h_healthz, AUTH_NONE, 0, FP_PERM_NONE},
    {"GET", "/readyz", fp_h_readyz, AUTH_NONE, 0, FP_PERM_NONE},
    {"GET", "/openapi.json", fp_h_openapi, AUTH_NONE, 0, FP_PERM_NONE},
    {"GET", "/metrics", fp_h_metrics, AUTH_NONE, 0, FP_PERM_NONE},
    {"POST", "/console/api/login", fp_h_console_login, AUTH_NONE, 0, FP_PERM_NONE},
    {"POST", "/console/api/logout", fp_h_console_logout, AUTH_NONE, 0, FP_PERM_NONE},
    {"GET", "/console/api/session", fp_h_console_session, AUTH_NONE, 0, FP_PERM_NONE},
    {"GET", "/console/api/overview", fp_h_console_overview, AUTH_NONE, 0, FP_PERM_NONE},
};
#define NROUTES (sizeof routes / sizeof routes[0])
_Static_assert(NROUTES < 48, "grow fp_server.m_requests");

static int seg_char_ok(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '_' || c == '.';
}

/* 1 if path matches pattern; the {} segment is copied to param. */
static int match(const char *pattern, const char *path, char *param, size_t cap)
{
    while (*pattern && *path) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = 0;
            while (path[n] && path[n] != '/') {
                if (!seg_char_ok(path[n]) || n + 1 >= cap)
                    return 0;
                param[n] = path[n];
                n++;
            }
            if (n == 0)
                return 0;
            param[n] = 0;
            path += n;
            pattern += 2;
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    return *pattern == 0 && *path == 0;
}

/* ---- request life cycle ---- */

static int valid_rid(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!seg_char_ok(v[i]) && v[i] != ':')
            return 0;
    return 1;
}

static fp_req *req_new(fp_server *s, struct MHD_Connection *c, const char *method, const char *url)
{
    fp_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = s;
    r->conn = c;
    r->method = method;
    r->url = url;
    r->t0_us = fp_now_us();
    fp_gauge_add(s->m_inflight, 1);
    fp_buf_init(&r->body, s->o.max_body);
    r->scope_seller = -1; /* no seller at all until authorize() sets it (fail closed) */
    /* the server's own id always (the audit log and the access log must
     * not take a client's word for it); the client's kept beside it */
    const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (valid_rid(rid))
        snprintf(r->client_rid, sizeof r->client_rid, "%s", rid);
    snprintf(r->rid, sizeof r->rid, "%s%012llx", s->rid_prefix,
             (unsigned long long)atomic_fetch_add(&s->req_counter, 1));
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client_ip,
                      sizeof r->client_ip);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client_ip,
                      sizeof r->client_ip);
    }
    return r;
}

static enum MHD_Result route_and_handle(fp_req *r)
{
    const fp_route *path_match = NULL;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!match(routes[i].pattern, r->url, r->param, sizeof r->param))
            continue;
        path_match = &routes[i];
        if (strcmp(routes[i].method, r->method) == 0) {
            r->route = &routes[i];
            break;
        }
    }
    if (!r->route && !path_match && strncmp(r->url, "/console/", 9) == 0 &&
        strncmp(r->url, "/console/api/", 13) != 0)
        return fp_console_static(r);
    if (!r->route) {
        if (path_match)
            return fp_problem(r, FPC_METHOD_NOT_ALLOWED, NULL, NULL, NULL);
        return fp_problem(r, FPC_NOT_FOUND, "路径不存在", "No such path", NULL);
    }
    int console = 0;
    enum MHD_Result cres;
    if (r->route->auth == AUTH_BEARER && (console = fp_console_gate(r, &cres)) == 1)
        return cres;
    if (r->route->auth == AUTH_BEARER && !console) {
        const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
        if (!h || strncmp(h, "Bearer ", 7) != 0)
            return fp_problem(r, FPC_UNAUTHENTICATED, "缺少 Authorization: Bearer 访问令牌",
                              "Missing Authorization: Bearer access token", NULL);
        fp_token_status ts =
            fp_token_verify(r->srv->o.token_key, h + 7, (int64_t)time(NULL), &r->claims);
        if (ts == FP_TOKEN_EXPIRED)
            return fp_problem(r, FPC_TOKEN_EXPIRED, NULL, NULL, NULL);
        if (ts != FP_TOKEN_OK)
            return fp_problem(r, FPC_UNAUTHENTICATED, "访问令牌无效", "The access token is invalid",
                              NULL);
        enum MHD_Result res;
        if (fp_authorize(r, &res))
            return res;
    }
    if (strncmp(r->route->pattern, "/v1/", 4) == 0) {
        /* per credential; per address for the token exchange */
        char key[80];
        if (r->claims.client_id[0])
            snprintf(key, sizeof key, "c:%s", r->claims.client_id);
        else
            snprintf(key, sizeof key, "ip:%s", r->client_ip);
        int64_t wait_ns = 0;
        fp_ratelimit_scope which = FP_RATELIMIT_ADMITTED;
        fp_limits *lim = fp_limits_hold(r->srv); /* limits.c */
        int admitted = !lim->rl || fp_ratelimit_check(lim->rl, key, fp_now_ns(), &wait_ns, &which);
        fp_limits_release(r->srv);
        if (!admitted) {
            r->retry_after = (int)fp_ratelimit_retry_after_s(wait_ns);
            int global = which == FP_RATELIMIT_GLOBAL;
            fp_counter_inc(r->srv->m_limited[global ? FP_REFUSED_GLOBAL : FP_REFUSED_CLIENT]);
            char zh[160], en[160];
            snprintf(zh, sizeof zh, "请求过于频繁（%s限流），请在 %d 秒后重试",
                     global ? "全局" : "客户端", r->retry_after);
            snprintf(en, sizeof en, "Too many requests (%s rate limit); retry in %d s",
                     global ? "global" : "per-client", r->retry_after);
            return fp_problem(r, FPC_RATE_LIMITED, zh, en, NULL);
        }
    }
    if (r->route->writes) { /* before degraded mode: no timer clears a fail-stop */
        enum MHD_Result res;
        if (fp_failstop_refuse(r, 0, &res))
            return res;
    }
    if (r->route->writes && r->srv->o.health) {
        char zh[400], en[400];
        if (!fp_health_write_allowed(r->srv->o.health, zh, sizeof zh, en, sizeof en,
                                     &r->retry_after)) {
            fp_counter_inc(r->srv->m_limited[FP_REFUSED_DEGRADED]);
            return fp_problem(r, FPC_DEGRADED, zh, en, NULL);
        }
    }
    if (r->too_large) {
        char zh[96], en[96];
        snprintf(zh, sizeof zh, "请求体超过 %zu 字节", r->srv->o.max_body);
        snprintf(en, sizeof en, "The request body exceeds %zu bytes", r->srv->o.max_body);
        return fp_problem(r, FPC_BODY_TOO_LARGE, zh, en, NULL);
    }
    return r->route->handler(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **ctx)
{
    (void)version;
    fp_server *s = cls;
    fp_req *r = *ctx;
    if (!r || r == fp_http_nul_mark()) {
        int nul_in_target = r != NULL;
        r = req_new(s, c, method, url);
        if (!r)
            return MHD_NO;
        *ctx = r;
        fp_conn_guard_headers_read(s->guard, fp_req_guarded(c));
        /* what libmicrohttpd lets through (http_limits.c) */
        if (fp_http_framing_ambiguous(c)) {
            r->close_conn = 1;
            return fp_problem(r, FPC_AMBIGUOUS_FRAMING, NULL, NULL, NULL);
        }
        if (nul_in_target)
            return fp_problem(r, FPC_INVALID_PATH, NULL, NULL, NULL);
        /* A declared body over the limit is refused before it is read. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > s->o.max_body) {
                r->too_large = 1;
                char zh[96], en[96];
                snprintf(zh, sizeof zh, "请求体超过 %zu 字节", s->o.max_body);
                snprintf(en, sizeof en, "The request body exceeds %zu bytes", s->o.max_body);
                return fp_problem(r, FPC_BODY_TOO_LARGE, zh, en, NULL);
            }
        }
        return MHD_YES;
    }
    if (r->responded) {
        *upload_size = 0; /* discard whatever still arrives */
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->too_large) {
            fp_buf_append(&r->body, upload_data, *upload_size);
            if (r->body.overflow) {
                r->too_large = 1;
                fp_buf_free(&r->body);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->parked) { /* resumed: by the writer, or answered at shutdown */
        pthread_mutex_lock(&s->park_lock);
        fp_server_unpark(s, r);
        pthread_mutex_unlock(&s->park_lock);
    }
    if (r->abandoned)
        return fp_h_issue_abandoned(r);
    if (r->issue) /* resumed after the group commit */
        return fp_h_issue_resumed(r);
    if (r->pdf_od) /* resumed after an on-demand render */
        return fp_h_pdf_resumed(r);
    fp_conn_guard_request_read(s->guard, fp_req_guarded(c));
    r->body_read = 1;
    return route_and_handle(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    fp_server *s = cls;
    fp_req *r = *ctx;
    if (!r || r == fp_http_nul_mark())
        return;
    fp_resp_budget_release(s, r->resp_held);
    fp_req_count(r); /* one never answered (aborted, or MHD_NO): counted now */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        fp_conn_guard_answered(s->guard, fp_req_guarded(c));
    fp_gauge_add(s->m_inflight, -1);
    if (s->alog && r->log_suppressed) {
        fp_access_log_suppress(s->alog);
    } else if (s->alog) {
        char ts[40];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        fp_buf b;
        fp_jw w;
        fp_buf_init(&b, 8192);
        fp_jw_init(&w, &b);
        char tsz[64];
        snprintf(tsz, sizeof tsz, "%s.%03ldZ", ts, now.tv_nsec / 1000000);
        fp_jw_obj_open(&w);
        fp_jw_kstr(&w, "ts", tsz);
        fp_jw_kstr(&w, "request_id", r->rid);
        if (r->client_rid[0])
            fp_jw_kstr(&w, "client_request_id", r->client_rid);
        fp_jw_kstr(&w, "client_ip", r->client_ip);
        fp_jw_kstr(&w, "method", r->method);
        fp_http_log_path(&w, "path", r->url, 255);
        fp_jw_kint(&w, "status", r->status);
        if (r->code)
            fp_jw_kstr(&w, "code", r->code);
        fp_jw_kint(&w, "bytes", (long long)r->resp_len);
        fp_jw_kint(&w, "duration_us", (long long)(fp_now_us() - r->t0_us));
        if (r->claims.client_id[0])
            fp_jw_kstr(&w, "client_id", r->claims.client_id);
        char peer[65]; /* a verified client certificate (mutual TLS) */
        if (fp_tls_has_client_ca(s->o.tls) && fp_tls_peer_sha256(c, peer) == 0)
            fp_jw_kstr(&w, "client_cert_sha256", peer);
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            fp_jw_kstr(&w, "termination",
                       toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
                       : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT  ? "client_abort"
                                                                     : "error");
        fp_jw_obj_close(&w);
        fp_buf_append(&b, "\n", 1);
        if (!b.overflow)
            fp_access_log_line(s->alog, b.p, b.len);
        fp_buf_free(&b);
    }
    fp_issue_gone(s, r);            /* suspended or resumed, and its client gone */
    fp_issue_req_release(r->issue); /* the writer may still hold one answered early */
    if (r->pdf_od) /* resumed after an on-demand render, never handled (client gone) */
        atomic_fetch_sub(&s->inflight, 1);
    fp_buf_free(&r->body);
    free(r);
    *ctx = NULL;
}

/* ---- the accept layer (acceptor.h): it listens, libmicrohttpd serves ---- */

/* Per-address and global counts follow libmicrohttpd's notifications. */
static void connection_counted(fp_server *s, struct MHD_Connection *c, int started)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    socklen_t len =
        sa && sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (started) {
        fp_acceptor_opened(s->acc, sa, len);
        fp_tls_conn_started(s->o.tls, c);
    } else {
        fp_acceptor_closed(s->acc, sa, len);
        fp_tls_conn_closed(s->o.tls, c, sa, len); /* a failed handshake is recorded */
    }
}

static void hand_over(void *cls, int fd, const struct sockaddr *sa, socklen_t len)
{
    fp_server *s = cls;
    if (atomic_load(&s->stopping)) { /* stopping: no new connection (docs/operations.md) */
        close(fd);
        return;
    }
    (void)MHD_add_connection(s->d, fd, sa, len); /* closes fd on failure */
}

static int evict(void *cls)
{
    fp_server *s = cls;
    return fp_conn_guard_evict(s->guard);
}

/* Listens on sa through the accept layer.  libmicrohttpd's own limit is
 * only a backstop above the acceptor's (which may overshoot its cap while
 * an evicted connection closes). */
static int start_acceptor(fp_server *s, const struct sockaddr *sa, socklen_t sl, fp_err *err)
{
    fp_allowlist trusted = {0};
    char bad[64] = "";
    if (s->o.trusted_proxies &&
        fp_allowlist_parse(s->o.trusted_proxies, &trusted, bad, sizeof bad) < 0)
        return fp_fail(err, FP_EINVAL, "--trusted-proxy: '%s' is not an address or CIDR", bad);
    fp_acceptor_opts ao = {.addr = sa,
                           .addrlen = sl,
                           .max_conns = s->o.max_connections,
                           .max_per_ip = s->o.max_connections_per_ip,
                           .handshake_ms = s->o.handshake_timeout_ms,
                           .trusted = &trusted,
                           .hand_over = hand_over,
                           .evict = evict,
                           .cls = s};
    fp_err e2 = {0};
    if (fp_acceptor_start(&ao, &s->acc, &e2) < 0)
        return fp_fail(err, FP_EIO, "cannot listen on %s:%d (%s: address in use or not permitted)",
                       s->o.host, s->o.port, e2.msg);
    s->port = fp_acceptor_port(s->acc);
    return 0;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    fp_server *s = cls;
    connection_counted(s, c, toe == MHD_CONNECTION_NOTIFY_STARTED);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        fp_gauge_add(s->m_conns, 1);
        fp_counter_inc(s->m_conns_total);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_ctx = ci ? fp_conn_guard_open(s->guard, ci->connect_fd) : NULL;
    } else {
        fp_gauge_add(s->m_conns, -1);
        fp_conn_guard_close(s->guard, *socket_ctx);
        *socket_ctx = NULL;
    }
}

/* While stopping, a new connection is closed at once: nothing of it was
 * read (docs/operations.md, "Shutdown"). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    fp_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = 0;
    if (strstr(msg, "handshake message out of context")) {
        /* libmicrohttpd's words for every failed handshake: the reason and
         * the client are in the record (docs/security.md) */
        fp_tls_handshake_failed(s->o.tls);
        fprintf(stderr,
                "fapiao: http: %s (TLS 握手失败，原因见 / handshake failed, see GET "
                "/v1/admin/tls-failures)\n",
                msg);
        return;
    }
    fprintf(stderr, "fapiao: http: %s\n", msg);
}

int fp_server_start(const fp_server_opts *o, fp_server **out, fp_err *err)
{
    int rc = 0;
    fp_server *s = calloc(1, sizeof *s);
    if (!s)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    s->o = *o;
    atomic_store(&s->codes, o->codes);
    s->o.tls = NULL; /* set below with its own reference */
    pthread_mutex_init(&s->seller_lock, NULL);
    pthread_mutex_init(&s->park_lock, NULL);
    pthread_mutex_init(&s->limits_lock, NULL);
    if (s->o.shutdown_grace_ms <= 0)
        s->o.shutdown_grace_ms = 10000;
    if (s->o.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->o.threads = n > 0 ? (int)n : 2;
    }
    if (s->o.token_ttl <= 0)
        s->o.token_ttl = 3600;
    if (s->o.max_body == 0)
        s->o.max_body = 1u << 20;
    if (s->o.max_connections <= 0)
        s->o.max_connections = 1024;
    if (s->o.idle_timeout <= 0)
        s->o.idle_timeout = 30;
    if (s->o.max_connections_per_ip == 0)
        s->o.max_connections_per_ip = 64;
    if (s->o.handshake_timeout_ms <= 0)
        s->o.handshake_timeout_ms = 2000;
    if (s->o.header_timeout_ms <= 0)
        s->o.header_timeout_ms = 10000;
    if (s->o.body_timeout_ms <= 0)
        s->o.body_timeout_ms = 30000;
    if (s->o.response_memory == 0)
        s->o.response_memory = 64u << 20;
    if (s->o.send_timeout_ms <= 0)
        s->o.send_timeout_ms = 60000;
    if ((rc = fp_limits_init(s, err)) < 0) /* limits.c */
        goto fail;
    if (s->o.concurrency_max == 0)
        s->o.concurrency_max = 1024;
    if (s->o.concurrency_max > 0) {
        /* Group commit: the store's latency grows with its load well below
         * saturation (bigger batches, a CPU shared with TLS and renderers),
         * so the limiter tolerates 2x its baseline (grows below 1.5x), and
         * judges 50 ms rounds (bench/overload.sh; adaptive.h).  It starts
         * at 128, above an ordinary client pool's connections (64): it only
         * grows in rounds with refusals and short latency, so a start equal
         * to the pool made every stall that filled the pool a 429, and each
         * armed a probe at half the limit (docs/performance.md §5e). */
        fp_adaptive_opts ao = {.initial_limit = 128,
                               .min_limit = 8,
                               .max_limit = s->o.concurrency_max,
                               .tolerance_permille = 2000,
                               .grow_permille = 1500,
                               .min_round_ns = 50 * 1000000LL};
        if (ao.min_limit > ao.max_limit)
            ao.min_limit = ao.max_limit;
        if ((rc = fp_adaptive_new(&ao, &s->adaptive, err)) < 0)
            goto fail;
    }
    if ((rc = fp_client_cache_new(s->o.store, 1000, &s->clients, err)) < 0 ||
        (rc = fp_audit_queue_start(s->o.store, 10000, FP_AUTH_WINDOW_MS, &s->audit_q, err)) < 0)
        goto fail;
    if ((rc = fp_conn_guard_start(&s->guard, s->o.header_timeout_ms, s->o.body_timeout_ms,
                                  s->o.idle_timeout * 1000, err)) < 0)
        goto fail;
    if (s->o.range_warn <= 0)
        s->o.range_warn = 1000;
    if ((rc = fp_server_metrics_init(s, routes, NROUTES, err)) < 0)
        goto fail;
    unsigned char rnd[4];
    fp_random(rnd, sizeof rnd);
    fp_hex(rnd, sizeof rnd, s->rid_prefix);

    if (o->access_log && strcmp(o->access_log, "off") != 0) {
        if ((rc = fp_access_log_open(o->access_log, s->o.access_log_max_bytes, FP_AUTH_WINDOW_MS,
                                     &s->alog, err)) < 0)
            goto fail;
    }
    /* certificates come from tls.c, per handshake (reloadable) */
    fp_tls_opts tlo = {.cert_path = o->cert_path, .key_path = o->key_path};
    if (o->tls)
        s->o.tls = fp_tls_ref(o->tls);
    else if ((rc = fp_tls_new(&tlo, &s->o.tls, err)) < 0)
        goto fail;
    struct MHD_OptionItem tls_opts[4];
    if ((rc = fp_tls_mhd_options(s->o.tls, tls_opts, 4, err)) < 0)
        goto fail;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    unsigned flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET |
                     MHD_USE_ITC;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, o->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)o->port);
        sl = sizeof *sin;
    } else if (inet_pton(AF_INET6, o->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)o->port);
        sl = sizeof *sin6;
    } else {
        rc = fp_fail(err, FP_EINVAL, "listen address '%s' is not an IPv4 or IPv6 address", o->host);
        goto fail;
    }
    /* no listening socket of its own: the acceptor hands connections over */
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_HTTPS_PRIORITIES, tls_priorities,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(s->o.max_connections * 2 + 8), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->o.idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(32 * 1024), /* request line + headers */
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_URI_LOG_CALLBACK, fp_http_uri_seen, s, MHD_OPTION_END);
    if (!s->d) {
        rc = fp_fail(err, FP_EIO, "cannot start the HTTPS daemon (a bad TLS certificate/key?)");
        goto fail;
    }
    if ((rc = start_acceptor(s, (struct sockaddr *)&ss, sl, err)) < 0)
        goto fail;
    if ((rc = fp_server_metrics_listen(s, err)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    fp_server_stop(s);
    return rc;
}

static void nap_10ms(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* 1 once no issue request is suspended; 0 after ms (polling: shutdown is
 * rare). */
static int inflight_within(fp_server *s, int ms)
{
    for (int waited = 0; atomic_load(&s->inflight) > 0; waited += 10) {
        if (waited >= ms)
            return 0;
        nap_10ms();
    }
    return 1;
}

/* Shuts down idle connections (no request read) until no connection has a
 * request read and unanswered, or ms passed.  Answers sent while stopping
 * say Connection: close, so every connection ends up idle and shut. */
static int close_idle_within(fp_server *s, int ms, int *closed)
{
    for (int waited = 0;; waited += 10) {
        *closed += fp_conn_guard_shutdown_idle(s->guard);
        if (fp_conn_guard_busy(s->guard) == 0)
            return 1;
        if (waited >= ms)
            return 0;
        nap_10ms();
    }
}

void fp_server_stop(fp_server *s)
{
    if (!s)
        return;
    fp_server_metrics_unlisten(s); /* no scrape while the rest is torn down */
    if (s->d) {
        atomic_store(&s->stopping, 1);
        /* No MHD_quiesce_daemon: with epoll and a thread pool it races the
         * workers' own removal of the listen socket from their epoll sets
         * and libmicrohttpd 0.9.75 then aborts ("Failed to remove listen FD
         * from epoll set", seen here once in ~200 stops).  Instead new
         * connections are closed as soon as they are accepted (hand_over),
         * every answer says Connection: close, and new issue requests get
         * 503 SHUTTING_DOWN.
         *
         * MHD aborts if it is stopped with suspended connections, and it
         * resets connections whose request it read but did not answer yet.
         * So (docs/operations.md, "Shutdown"):
         *   1. the grace period: issues in flight commit and are answered;
         *   2. then whatever still waits in the writer's queue fails
         *      (503 SHUTTING_DOWN: nothing stored), and what is inside the
         *      batch being committed (a stalled disk) is answered 503
         *      OUTCOME_UNKNOWN; the writer finishes it on its own;
         *   3. requests being handled finish and their answers are sent;
         *      idle keep-alive connections (no request read) are shut down;
         *      then the daemon stops.
         * An issue request counts itself in `inflight` before it looks at
         * `stopping` (fp_h_issue), so once stopping is set and inflight
         * reaches zero no connection is or will be suspended. */
        int clean = inflight_within(s, s->o.shutdown_grace_ms);
        int cancelled = 0, abandoned = 0, closed = 0;
        if (!clean) {
            cancelled = fp_store_cancel_queued(s->o.store, FP_SHUTDOWN_WHY);
            inflight_within(s, 200);
            abandoned = fp_server_abandon_parked(s);
        }
        int settled = inflight_within(s, 5000);
        int drained = close_idle_within(s, 5000, &closed);
        fprintf(stderr,
                "fapiao: HTTP stop: %s; %d queued issue(s) answered SHUTTING_DOWN, %d in a "
                "committing batch answered OUTCOME_UNKNOWN; %d idle connection(s) closed%s / "
                "停止：排队中 %d 个答复未保存，提交中 %d 个答复结果未知\n",
                clean ? "issues done within the grace period" : "grace period over", cancelled,
                abandoned, closed, drained ? "" : "; requests still being handled are cut",
                cancelled, abandoned);
        if (!settled) {
            /* Still suspended connections: stopping would abort the
             * process.  Leave the daemon to the process exit. */
            fprintf(stderr,
                    "fapiao: %d suspended request(s) never resumed; the HTTP daemon is "
                    "left to the process exit / 有请求未能恢复，HTTP 服务随进程退出\n",
                    atomic_load(&s->inflight));
            return;
        }
        fp_acceptor_stop(s->acc); /* no hand-over while libmicrohttpd stops */
        MHD_stop_daemon(s->d);
    }
    fp_acceptor_free(s->acc); /* after MHD_stop_daemon: its closes are counted */
    fp_access_log_close(s->alog);
    fp_tls_detach(s->o.tls); /* after MHD_stop_daemon: no handshake runs */
    fp_tls_free(s->o.tls);
    fp_conn_guard_stop(s->guard);
    fp_limits_stop(s);
    fp_client_cache_free(s->clients);
    fp_audit_queue_stop(s->audit_q); /* after MHD_stop_daemon: nothing adds any more */
    fp_adaptive_free(s->adaptive);
    fp_server_metrics_free(s);
    pthread_mutex_destroy(&s->seller_lock);
    pthread_mutex_destroy(&s->park_lock);
    pthread_mutex_destroy(&s->limits_lock);
    free(s);
}

int fp_server_reopen_log(fp_server *s, fp_err *err)
{
    return s->alog ? fp_access_log_reopen(s->alog, err) : 0;
}

int fp_server_port(const fp_server *s)
{
    return s->port;
}
