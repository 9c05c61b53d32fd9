/* doctor_internal.h — what the doctor's files share (not a public header):
 * the context of one run and the helpers every layer uses (doctor_ctx.c).
 * The layers: doctor_net.c local, DNS and TCP; doctor_tls.c TLS;
 * doctor_http.c HTTP, API and the clock check; doctor.c runs them in order. */
#ifndef FAPIAO_DOCTOR_INTERNAL_H
#define FAPIAO_DOCTOR_INTERNAL_H

#include "fapiao/doctor.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_ADDRS 4
#define MAX_BODY  (64 * 1024)

typedef struct dctx {
    const fp_doctor_opts *o;
    fp_doctor_report *r;
    int timeout_ms;
    struct sockaddr_storage addr[MAX_ADDRS];
    socklen_t addrlen[MAX_ADDRS];
    int naddr;
    int fd;       /* connected socket for TLS, -1 */
    int conn_idx; /* which addr connected */
    char conn_ip[INET6_ADDRSTRLEN];
    int ip_literal;
    time_t cert_nb, cert_na; /* leaf validity, 0 unknown */
    time_t server_date;      /* from an HTTP Date header, 0 unknown */
    int cert_requested;      /* the server asked for a client certificate */
    CURL *curl;
} dctx;

/* doctor_ctx.c */
double fp_doc_now_ms(void);  /* CLOCK_MONOTONIC */
double fp_doc_r3(double ms); /* rounded to 3 decimals, for JSON */
/* A finding in phase: the phase fails on an error, warns on a warning. */
void fp_doc_hit(dctx *c, int phase, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
cJSON *fp_doc_det(dctx *c, int phase); /* the phase's details object */
void fp_doc_note(dctx *c, int phase, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fp_doc_failed(dctx *c, int phase);
void fp_doc_addr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t n);
void fp_doc_fmt_time(time_t t, char *buf, size_t n); /* ISO 8601 UTC */
/* An IPv4 or IPv6 literal with port: 0, else -1. */
int fp_doc_fill_literal(const char *s, int port, struct sockaddr_storage *ss, socklen_t *len);
/* A connected fd or -1 with *e = errno (ETIMEDOUT on timeout). */
int fp_doc_tcp_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms, int *e);
/* The same, advertising this MSS (TCP_MAXSEG before connect; 0 = the
 * interface's). */
int fp_doc_tcp_connect_mss(const struct sockaddr *sa, socklen_t len, int timeout_ms, int mss,
                           int *e);
/* A plain HTTP request on a new connection to the connected address: the
 * answer's first bytes in buf; *silent = 1 when the peer said nothing
 * until the timeout. */
size_t fp_doc_plain_probe(dctx *c, char *buf, size_t n, int *silent);
int fp_doc_is_reset(int e); /* ECONNRESET or EPIPE */
/* A reset after connect(): TCP_RESET on the tcp phase, and phase fails. */
void fp_doc_add_reset(dctx *c, int phase, const char *when);

/* The layers. */
void fp_doc_layer_local(dctx *c); /* doctor_net.c */
/* doctor_proxy.c: CONNECT host:port on fd, connected to the proxy; names
 * what the proxy answers (PROXY_ENV_SET, _AUTH_REQUIRED, _BLOCKED, …). */
void fp_doc_proxy_tunnel(dctx *c, int fd, const char *var, const char *proxy);
/* doctor_pac.c: what --pac's FindProxyForURL says for the URL; the proxy
 * it picks as "http://host:port" in buf, or NULL (DIRECT, or a proxy the
 * doctor does not check, or the file failed: PROXY_PAC says which). */
const char *fp_doc_pac_proxy(dctx *c, char *buf, size_t n);
void fp_doc_layer_dns(dctx *c);
void fp_doc_layer_tcp(dctx *c);
void fp_doc_layer_tls(dctx *c); /* doctor_tls.c */
/* --tls-max, --tls-priority and --pin well formed: 0, else -1 with *why. */
int fp_doc_tls_opts_check(const fp_doctor_opts *o, const char **why);
/* doctor_mtu.c: after a TLS handshake that stalled on the server's flight
 * while a small exchange worked: 1 when a handshake advertising a small MSS
 * completes (TCP_MTU_BLACKHOLE added, the tls phase failed), else 0. */
int fp_doc_mtu_blackhole(dctx *c);
/* http:// URL: 0 plain HTTP (or cannot tell), 1 TLS, 2 silent. */
int fp_doc_http_wants_tls(dctx *c);
void fp_doc_layer_http(dctx *c); /* doctor_http.c */
void fp_doc_layer_api(dctx *c);
void fp_doc_check_clock(dctx *c);
void fp_doc_layer_upstream(dctx *c); /* doctor_upstream.c: --upstream */

#endif
