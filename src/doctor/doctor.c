/* doctor.c — the layered connection diagnosis (see doctor.h).  Each layer
 * is a function that fills its phase and adds findings; the run stops at
 * the first layer with an error.  Network code: c-ares for DNS (so the
 * answer's TTL and the exact failure are visible), plain nonblocking
 * sockets for TCP, GnuTLS on that very socket for TLS (verification is done
 * after the handshake so that every problem gets a name instead of a
 * handshake abort), libcurl pinned to the same address for HTTP/API. */
#include "fapiao/doctor.h"

#include "doctor_parse.h"

#include <arpa/inet.h>
#include <ares.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ADDRS 4
#define MAX_BODY  (64 * 1024)

static const char *const phase_names[FP_DOC_NPHASES] = {"local", "dns",  "tcp",
                                                        "tls",   "http", "api"};

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

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double r3(double ms)
{
    return (double)(long long)(ms * 1000) / 1000.0;
}

static void add_hit(dctx *c, int phase, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_hit(dctx *c, int phase, const char *code, const char *fmt, ...)
{
    fp_doctor_report *r = c->r;
    const fp_finding *f = fp_finding_get(code);
    if (!f || r->nhits >= FP_DOCTOR_MAX_HITS)
        return;
    fp_doctor_hit *h = &r->hits[r->nhits++];
    h->f = f;
    h->phase = phase;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->msg, sizeof h->msg, fmt, ap);
    va_end(ap);
    fp_doctor_phase *p = &r->phase[phase];
    if (f->severity == FP_SEV_ERROR) {
        if (p->status != FP_PHASE_FAIL) {
            p->finding = f->code;
            size_t l = strnlen(h->msg, sizeof p->note - 1);
            memcpy(p->note, h->msg, l);
            p->note[l] = 0;
        }
        p->status = FP_PHASE_FAIL;
    } else if (f->severity == FP_SEV_WARN && p->status == FP_PHASE_OK) {
        p->status = FP_PHASE_WARN;
        p->finding = f->code;
    } else if (!p->finding) {
        p->finding = f->code;
    }
}

static cJSON *det(dctx *c, int phase)
{
    return c->r->phase[phase].details;
}

static void note(dctx *c, int phase, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(dctx *c, int phase, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->r->phase[phase].note, sizeof c->r->phase[phase].note, fmt, ap);
    va_end(ap);
}

static int failed(dctx *c, int phase)
{
    return c->r->phase[phase].status == FP_PHASE_FAIL;
}

static void addr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
    if (getnameinfo(sa, len, buf, (socklen_t)n, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(buf, n, "?");
}

static void fmt_time(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int fill_literal(const char *s, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 0;
    }
    return -1;
}

/* ---- TCP helper ---- */

/* Returns a connected fd or -1 with *e = errno (ETIMEDOUT on timeout). */
static int tcp_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms, int *e)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *e = errno;
        return -1;
    }
    if (connect(fd, sa, len) < 0) {
        if (errno != EINPROGRESS) {
            *e = errno;
            close(fd);
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n;
        do
            n = poll(&pfd, 1, timeout_ms);
        while (n < 0 && errno == EINTR);
        if (n == 0) {
            *e = ETIMEDOUT;
            close(fd);
            return -1;
        }
        int so = 0;
        socklen_t sl = sizeof so;
        if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0 || so) {
            *e = n < 0 ? errno : so ? so : EIO;
            close(fd);
            return -1;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    *e = 0;
    return fd;
}

/* Reads up to n-1 bytes (until EOF, timeout or n-1), NUL-terminates;
 * *silent = 1 when the timeout ended it with nothing read. */
static size_t read_some(int fd, char *buf, size_t n, int timeout_ms, int *silent)
{
    size_t got = 0;
    double end = now_ms() + timeout_ms;
    *silent = 0;
    while (got + 1 < n) {
        int left = (int)(end - now_ms());
        if (left <= 0) {
            *silent = got == 0;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int k0 = poll(&pfd, 1, left);
        if (k0 == 0)
            *silent = got == 0;
        if (k0 <= 0)
            break;
        ssize_t k = recv(fd, buf + got, n - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        if (got >= 16)
            break; /* enough to classify */
    }
    buf[got] = 0;
    return got;
}

/* Sends a plain HTTP request on a new connection to the connected address;
 * returns the number of bytes of the answer's start in buf.  *silent = 1
 * when the peer kept the connection open and said nothing until the
 * timeout (neither an HTTP nor a TLS server would). */
static size_t plain_probe(dctx *c, char *buf, size_t n, int *silent)
{
    int e;
    *silent = 0;
    int fd = tcp_connect((struct sockaddr *)&c->addr[c->conn_idx], c->addrlen[c->conn_idx],
                         c->timeout_ms, &e);
    buf[0] = 0;
    if (fd < 0)
        return 0;
    char req[512];
    int len =
        snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                 c->r->host);
    size_t got = 0;
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) == len)
        got = read_some(fd, buf, n, c->timeout_ms, silent);
    close(fd);
    return got;
}

/* ---- 1 local ---- */

static void layer_local(dctx *c)
{
    c->r->phase[FP_DOC_LOCAL].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_LOCAL].note[0] = 0;
    double t0 = now_ms();
    cJSON *d = det(c, FP_DOC_LOCAL);
    int https = strcmp(c->r->scheme, "https") == 0;
    const char *vars_s[] = {"https_proxy", "HTTPS_PROXY", NULL};
    const char *vars_p[] = {"http_proxy", NULL};
    const char **vars = https ? vars_s : vars_p;
    const char *var = NULL, *proxy = NULL;
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            var = vars[i];
            proxy = v;
            break;
        }
    }
    const char *np = getenv("NO_PROXY");
    if (!np || !*np)
        np = getenv("no_proxy");
    char lt[32];
    fmt_time(time(NULL), lt, sizeof lt);
    cJSON_AddStringToObject(d, "local_time", lt);
    if (np && *np)
        cJSON_AddStringToObject(d, "no_proxy", np);
    if (time(NULL) < 1704067200) /* 2024-01-01: a clock that never got set */
        add_hit(c, FP_DOC_LOCAL, "CLOCK_SKEW", "the local clock says %s, before 2024", lt);
    if (!proxy) {
        cJSON_AddNullToObject(d, "proxy");
        note(c, FP_DOC_LOCAL, "no proxy variable set");
        c->r->phase[FP_DOC_LOCAL].ms = now_ms() - t0;
        return;
    }
    cJSON_AddStringToObject(d, "proxy", proxy);
    cJSON_AddStringToObject(d, "proxy_var", var);
    if (fp_doctor_no_proxy_covers(np, c->r->host)) {
        cJSON_AddBoolToObject(d, "proxy_bypassed", 1);
        note(c, FP_DOC_LOCAL, "%s is set but NO_PROXY covers %s", var, c->r->host);
        c->r->phase[FP_DOC_LOCAL].ms = now_ms() - t0;
        return;
    }
    char host[256], port[16];
    if (fp_doctor_parse_proxy(proxy, host, sizeof host, port, sizeof port) < 0) {
        add_hit(c, FP_DOC_LOCAL, "PROXY_UNREACHABLE", "%s=%s: no proxy host:port in it", var,
                proxy);
        c->r->phase[FP_DOC_LOCAL].ms = now_ms() - t0;
        return;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        add_hit(c, FP_DOC_LOCAL, "PROXY_UNREACHABLE", "%s=%s: cannot resolve %s: %s", var, proxy,
                host, gai_strerror(gai));
    } else {
        int e;
        int fd = tcp_connect(ai->ai_addr, ai->ai_addrlen, c->timeout_ms, &e);
        if (fd < 0) {
            add_hit(c, FP_DOC_LOCAL, "PROXY_UNREACHABLE", "%s=%s: connect to %s:%s: %s", var, proxy,
                    host, port, strerror(e));
        } else {
            close(fd);
            cJSON_AddBoolToObject(d, "proxy_answers", 1);
            add_hit(c, FP_DOC_LOCAL, "PROXY_ENV_SET",
                    "%s=%s is set and answers; doctor connects directly, your clients may "
                    "go through the proxy",
                    var, proxy);
        }
        freeaddrinfo(ai);
    }
    c->r->phase[FP_DOC_LOCAL].ms = now_ms() - t0;
}

/* ---- 2 DNS ---- */

typedef struct dns_q {
    int done, status;
    int fam;
    struct sockaddr_storage addr[MAX_ADDRS];
    socklen_t len[MAX_ADDRS];
    int ttl[MAX_ADDRS];
    int n;
    double ms;
    double t0;
} dns_q;

static void dns_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    dns_q *q = arg;
    q->done = 1;
    q->status = status;
    q->ms = now_ms() - q->t0;
    if (status != ARES_SUCCESS)
        return;
    if (q->fam == AF_INET) {
        struct ares_addrttl a[MAX_ADDRS];
        int n = MAX_ADDRS;
        if (ares_parse_a_reply(abuf, alen, NULL, a, &n) != ARES_SUCCESS)
            n = 0;
        for (int i = 0; i < n && q->n < MAX_ADDRS; i++) {
            struct sockaddr_in *s = (struct sockaddr_in *)&q->addr[q->n];
            memset(s, 0, sizeof q->addr[0]);
            s->sin_family = AF_INET;
            s->sin_addr = a[i].ipaddr;
            q->len[q->n] = sizeof *s;
            q->ttl[q->n++] = a[i].ttl;
        }
        if (n == 0)
            q->status = ARES_ENODATA;
    } else {
        struct ares_addr6ttl a[MAX_ADDRS];
        int n = MAX_ADDRS;
        if (ares_parse_aaaa_reply(abuf, alen, NULL, a, &n) != ARES_SUCCESS)
            n = 0;
        for (int i = 0; i < n && q->n < MAX_ADDRS; i++) {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&q->addr[q->n];
            memset(s, 0, sizeof q->addr[0]);
            s->sin6_family = AF_INET6;
            memcpy(&s->sin6_addr, &a[i].ip6addr, 16);
            q->len[q->n] = sizeof *s;
            q->ttl[q->n++] = a[i].ttl;
        }
        if (n == 0)
            q->status = ARES_ENODATA;
    }
}

static const char *ares_status_name(int st)
{
    switch (st) {
    case ARES_SUCCESS:
        return "NOERROR";
    case ARES_ENODATA:
        return "NODATA";
    case ARES_ENOTFOUND:
        return "NXDOMAIN";
    case ARES_ESERVFAIL:
        return "SERVFAIL";
    case ARES_EREFUSED:
        return "REFUSED";
    case ARES_ETIMEOUT:
        return "TIMEOUT";
    case ARES_ECANCELLED:
        return "TIMEOUT";
    case ARES_ECONNREFUSED:
        return "CONNREFUSED";
    default:
        return ares_strerror(st);
    }
}

static void add_addr(dctx *c, const struct sockaddr_storage *ss, socklen_t len)
{
    if (c->naddr >= MAX_ADDRS)
        return;
    c->addr[c->naddr] = *ss;
    ((struct sockaddr_in *)&c->addr[c->naddr])->sin_port = htons((uint16_t)c->r->port);
    c->addrlen[c->naddr++] = len;
}

static void layer_dns(dctx *c)
{
    c->r->phase[FP_DOC_DNS].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_DNS].note[0] = 0;
    double t0 = now_ms();
    cJSON *d = det(c, FP_DOC_DNS);
    fp_doctor_report *r = c->r;
    struct sockaddr_storage ss;
    socklen_t len;
    if (fill_literal(r->host, r->port, &ss, &len) == 0) {
        c->ip_literal = 1;
        add_addr(c, &ss, len);
        r->phase[FP_DOC_DNS].status = FP_PHASE_SKIPPED;
        note(c, FP_DOC_DNS, "skipped (IP literal)");
        return;
    }
    if (c->o->resolve) {
        /* host:port:addr, checked by fp_doctor_run; used only for that host and port */
        char rh[256], ra[INET6_ADDRSTRLEN + 2];
        int rp = 0;
        if (fp_doctor_parse_resolve(c->o->resolve, rh, sizeof rh, &rp, ra, sizeof ra) == 0 &&
            strcasecmp(rh, r->host) == 0 && rp == r->port &&
            fill_literal(ra, r->port, &ss, &len) == 0) {
            add_addr(c, &ss, len);
            cJSON_AddStringToObject(d, "resolve", c->o->resolve);
            r->phase[FP_DOC_DNS].status = FP_PHASE_SKIPPED;
            note(c, FP_DOC_DNS, "skipped (--resolve)");
            return;
        }
        cJSON_AddStringToObject(d, "resolve_ignored", c->o->resolve);
    }
    ares_channel ch;
    struct ares_options ao = {0};
    ao.timeout = c->timeout_ms < 2000 ? c->timeout_ms : 2000;
    ao.tries = 2;
    /* NOCHECKRESP: hand SERVFAIL/REFUSED answers to us instead of turning
     * them into "could not contact server" (ECONNREFUSED) */
    ao.flags = ARES_FLAG_NOCHECKRESP;
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    if (ares_init_options(&ch, &ao, mask) != ARES_SUCCESS) {
        add_hit(c, FP_DOC_DNS, "DNS_SERVFAIL", "cannot initialise the resolver");
        r->phase[FP_DOC_DNS].ms = now_ms() - t0;
        return;
    }
    if (c->o->dns_server) {
        int st = ares_set_servers_ports_csv(ch, c->o->dns_server);
        if (st != ARES_SUCCESS) {
            add_hit(c, FP_DOC_DNS, "DNS_SERVFAIL", "bad --dns-server %s: %s", c->o->dns_server,
                    ares_strerror(st));
            ares_destroy(ch);
            r->phase[FP_DOC_DNS].ms = now_ms() - t0;
            return;
        }
        cJSON_AddStringToObject(d, "server", c->o->dns_server);
    } else {
        struct ares_addr_port_node *sv = NULL;
        if (ares_get_servers_ports(ch, &sv) == ARES_SUCCESS) {
            char list[256] = "";
            for (struct ares_addr_port_node *n = sv; n; n = n->next) {
                char ip[INET6_ADDRSTRLEN] = "";
                inet_ntop(n->family, &n->addr, ip, sizeof ip);
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s%s", l ? "," : "", ip);
            }
            cJSON_AddStringToObject(d, "server", list);
            ares_free_data(sv);
        }
        /* /etc/hosts first, as the system resolver would */
        int fams[2] = {AF_INET, AF_INET6};
        for (int i = 0; i < 2; i++) {
            if ((c->o->family == 4 && fams[i] != AF_INET) ||
                (c->o->family == 6 && fams[i] != AF_INET6))
                continue;
            struct hostent *he = NULL;
            if (ares_gethostbyname_file(ch, r->host, fams[i], &he) == ARES_SUCCESS && he) {
                for (char **a = he->h_addr_list; *a; a++) {
                    memset(&ss, 0, sizeof ss);
                    if (fams[i] == AF_INET) {
                        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                        s4->sin_family = AF_INET;
                        memcpy(&s4->sin_addr, *a, 4);
                        add_addr(c, &ss, sizeof *s4);
                    } else {
                        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                        s6->sin6_family = AF_INET6;
                        memcpy(&s6->sin6_addr, *a, 16);
                        add_addr(c, &ss, sizeof *s6);
                    }
                }
                ares_free_hostent(he);
            }
        }
        if (c->naddr > 0) {
            cJSON_AddStringToObject(d, "source", "hosts file");
            cJSON *arr = cJSON_AddArrayToObject(d, "addresses");
            for (int i = 0; i < c->naddr; i++) {
                char ip[INET6_ADDRSTRLEN];
                addr_str((struct sockaddr *)&c->addr[i], c->addrlen[i], ip, sizeof ip);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "address", ip);
                cJSON_AddNullToObject(o, "ttl");
                cJSON_AddItemToArray(arr, o);
            }
            note(c, FP_DOC_DNS, "%d address(es) from the hosts file", c->naddr);
            ares_destroy(ch);
            r->phase[FP_DOC_DNS].ms = now_ms() - t0;
            return;
        }
    }
    cJSON_AddStringToObject(d, "source", "dns");
    dns_q q4 = {.fam = AF_INET, .t0 = now_ms()}, q6 = {.fam = AF_INET6, .t0 = now_ms()};
    int want4 = c->o->family != 6, want6 = c->o->family != 4;
    if (want4)
        ares_query(ch, r->host, 1 /* IN */, 1 /* A */, dns_cb, &q4);
    else
        q4.done = 1, q4.status = -1;
    if (want6)
        ares_query(ch, r->host, 1, 28 /* AAAA */, dns_cb, &q6);
    else
        q6.done = 1, q6.status = -1;
    double deadline = now_ms() + c->timeout_ms;
    while (!(q4.done && q6.done)) {
        fd_set rf, wf;
        FD_ZERO(&rf);
        FD_ZERO(&wf);
        int nfds = ares_fds(ch, &rf, &wf);
        double left = deadline - now_ms();
        if (nfds == 0 || left <= 0)
            break;
        struct timeval maxtv = {.tv_sec = (long)left / 1000, .tv_usec = ((long)left % 1000) * 1000};
        struct timeval tv, *tvp = ares_timeout(ch, &maxtv, &tv);
        select(nfds, &rf, &wf, NULL, tvp);
        ares_process(ch, &rf, &wf);
    }
    ares_cancel(ch); /* pending queries end with ARES_ECANCELLED = timeout */
    ares_destroy(ch);
    cJSON_AddStringToObject(d, "a", want4 ? ares_status_name(q4.status) : "not asked");
    cJSON_AddStringToObject(d, "aaaa", want6 ? ares_status_name(q6.status) : "not asked");
    cJSON *arr = cJSON_AddArrayToObject(d, "addresses");
    dns_q *qs[2] = {&q4, &q6};
    int minttl = -1;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < qs[k]->n; i++) {
            char ip[INET6_ADDRSTRLEN];
            addr_str((struct sockaddr *)&qs[k]->addr[i], qs[k]->len[i], ip, sizeof ip);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "address", ip);
            cJSON_AddStringToObject(o, "family", k == 0 ? "ipv4" : "ipv6");
            cJSON_AddNumberToObject(o, "ttl", qs[k]->ttl[i]);
            cJSON_AddItemToArray(arr, o);
            add_addr(c, &qs[k]->addr[i], qs[k]->len[i]);
            if (minttl < 0 || qs[k]->ttl[i] < minttl)
                minttl = qs[k]->ttl[i];
        }
    if (q4.done && want4)
        cJSON_AddNumberToObject(d, "a_ms", r3(q4.ms));
    if (q6.done && want6)
        cJSON_AddNumberToObject(d, "aaaa_ms", r3(q6.ms));
    r->phase[FP_DOC_DNS].ms = now_ms() - t0;
    if (c->naddr > 0) {
        note(c, FP_DOC_DNS, "%d address(es), TTL %d s", c->naddr, minttl);
        return;
    }
    int st[2] = {want4 ? q4.status : -1, want6 ? q6.status : -1};
    const char *fam = c->o->family == 4   ? "IPv4 (A)"
                      : c->o->family == 6 ? "IPv6 (AAAA)"
                                          : "IPv4 or IPv6";
    for (int k = 0; k < 2; k++)
        if (st[k] == ARES_ENOTFOUND) {
            add_hit(c, FP_DOC_DNS, "DNS_NXDOMAIN", "%s does not exist (NXDOMAIN)", r->host);
            return;
        }
    for (int k = 0; k < 2; k++)
        if (st[k] == ARES_ESERVFAIL) {
            add_hit(c, FP_DOC_DNS, "DNS_SERVFAIL", "the DNS server answered SERVFAIL for %s",
                    r->host);
            return;
        }
    for (int k = 0; k < 2; k++)
        if (st[k] == ARES_EREFUSED) {
            add_hit(c, FP_DOC_DNS, "DNS_REFUSED", "the DNS server refused the query for %s",
                    r->host);
            return;
        }
    for (int k = 0; k < 2; k++)
        if (st[k] == ARES_ETIMEOUT || st[k] == ARES_ECANCELLED || st[k] == ARES_ECONNREFUSED ||
            st[k] == 0) {
            add_hit(c, FP_DOC_DNS, "DNS_TIMEOUT", "no answer for %s within %d ms (%s)", r->host,
                    c->timeout_ms,
                    st[k] == ARES_ECONNREFUSED ? "the server port is closed" : "timeout");
            return;
        }
    add_hit(c, FP_DOC_DNS, "DNS_NO_ADDRESS", "%s exists but has no %s address (A %s, AAAA %s)",
            r->host, fam, want4 ? ares_status_name(q4.status) : "not asked",
            want6 ? ares_status_name(q6.status) : "not asked");
}

/* ---- 3 TCP ---- */

static const char *tcp_result(int e)
{
    switch (e) {
    case 0:
        return "connected";
    case ECONNREFUSED:
        return "refused";
    case ETIMEDOUT:
        return "timeout";
    case ENETUNREACH:
        return "network unreachable";
    case EHOSTUNREACH:
        return "host unreachable";
    case ECONNRESET:
        return "reset";
    default:
        return strerror(e);
    }
}

static void layer_tcp(dctx *c)
{
    c->r->phase[FP_DOC_TCP].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_TCP].note[0] = 0;
    double t0 = now_ms();
    cJSON *arr = cJSON_AddArrayToObject(det(c, FP_DOC_TCP), "attempts");
    int first_err = 0;
    char first_ip[INET6_ADDRSTRLEN] = "";
    for (int i = 0; i < c->naddr; i++) {
        char ip[INET6_ADDRSTRLEN];
        addr_str((struct sockaddr *)&c->addr[i], c->addrlen[i], ip, sizeof ip);
        double t1 = now_ms();
        int e;
        int fd = tcp_connect((struct sockaddr *)&c->addr[i], c->addrlen[i], c->timeout_ms, &e);
        double ms = now_ms() - t1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "address", ip);
        cJSON_AddStringToObject(o, "result", tcp_result(e));
        if (e)
            cJSON_AddStringToObject(o, "errno", strerror(e));
        cJSON_AddNumberToObject(o, "connect_ms", r3(ms));
        cJSON_AddItemToArray(arr, o);
        if (fd >= 0) {
            if (c->fd < 0) {
                c->fd = fd;
                c->conn_idx = i;
                snprintf(c->conn_ip, sizeof c->conn_ip, "%s", ip);
            } else {
                close(fd);
            }
        } else if (!first_err) {
            first_err = e;
            snprintf(first_ip, sizeof first_ip, "%s", ip);
        }
    }
    c->r->phase[FP_DOC_TCP].ms = now_ms() - t0;
    if (c->fd >= 0) {
        cJSON_AddStringToObject(det(c, FP_DOC_TCP), "connected", c->conn_ip);
        note(c, FP_DOC_TCP, "connected to %s port %d", c->conn_ip, c->r->port);
        return;
    }
    const char *code = first_err == ECONNREFUSED                               ? "TCP_REFUSED"
                       : first_err == ETIMEDOUT                                ? "TCP_TIMEOUT"
                       : first_err == ENETUNREACH || first_err == EHOSTUNREACH ? "TCP_UNREACHABLE"
                       : first_err == ECONNRESET                               ? "TCP_RESET"
                                                                               : "TCP_UNREACHABLE";
    add_hit(c, FP_DOC_TCP, code, "connect to %s port %d: %s", first_ip, c->r->port,
            first_err == ETIMEDOUT ? "no answer within the timeout" : strerror(first_err));
}

/* ---- 4 TLS ---- */

/* What clients of today negotiate: TLS 1.2 and 1.3 (OpenSSL 3, Java 11+,
 * browsers and curl refuse 1.0 and 1.1).  A server that only speaks those is
 * a protocol mismatch even though GnuTLS's NORMAL would still talk to it;
 * LEGACY_PRIORITY is used once, afterwards, to name what the server speaks. */
#define TLS_PRIORITY    "NORMAL:-VERS-TLS1.1:-VERS-TLS1.0"
#define LEGACY_PRIORITY "NORMAL:+VERS-TLS1.1:+VERS-TLS1.0"

typedef struct tls_io {
    int fd;
    int timeout_ms;
    unsigned char first[16];
    size_t nfirst;
    int timed_out;
    int err; /* errno of the first failed recv/send (ECONNRESET: reset) */
} tls_io;

static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
    tls_io *io = p;
    struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
    int k = poll(&pfd, 1, io->timeout_ms);
    if (k == 0) {
        io->timed_out = 1;
        errno = ETIMEDOUT;
        return -1;
    }
    if (k < 0)
        return -1;
    ssize_t got = recv(io->fd, buf, n, 0);
    if (got < 0 && !io->err && errno != EAGAIN && errno != EINTR)
        io->err = errno;
    if (got > 0 && io->nfirst < sizeof io->first) {
        size_t take = (size_t)got < sizeof io->first - io->nfirst ? (size_t)got
                                                                  : sizeof io->first - io->nfirst;
        memcpy(io->first + io->nfirst, buf, take);
        io->nfirst += take;
    }
    return got;
}

static int tls_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    tls_io *io = p;
    struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
    return poll(&pfd, 1, (int)ms);
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const void *buf, size_t n)
{
    tls_io *io = p;
    ssize_t k = send(io->fd, buf, n, MSG_NOSIGNAL);
    if (k < 0 && !io->err && errno != EAGAIN && errno != EINTR)
        io->err = errno;
    return k;
}

static int is_reset(int e)
{
    return e == ECONNRESET || e == EPIPE;
}

/* A reset after connect() succeeded is still a TCP finding: the verdict is
 * TCP_RESET on the tcp phase (exit 30), and the phase in which it struck
 * (tls or http) fails too, naming the same code. */
static void add_reset(dctx *c, int phase, const char *when)
{
    add_hit(c, FP_DOC_TCP, "TCP_RESET", "connected to %s port %d, then reset by the peer %s",
            c->conn_ip, c->r->port, when);
    fp_doctor_phase *p = &c->r->phase[phase];
    p->status = FP_PHASE_FAIL;
    p->finding = "TCP_RESET";
    snprintf(p->note, sizeof p->note, "connection reset by the peer %s", when);
}

static int self_issued(gnutls_x509_crt_t crt)
{
    return gnutls_x509_crt_check_issuer(crt, crt) != 0;
}

/* Does a handshake on fd, no verification; returns gnutls code.  Used for
 * the http:// → TLS port probe too. */
static int tls_session(dctx *c, int fd, gnutls_certificate_credentials_t cred, const char *prio,
                       tls_io *io, gnutls_session_t *out)
{
    gnutls_session_t s;
    *out = NULL;
    int rc = gnutls_init(&s, GNUTLS_CLIENT);
    if (rc < 0)
        return rc;
    gnutls_priority_set_direct(s, prio, NULL);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    if (!c->ip_literal)
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, c->r->host, strlen(c->r->host));
    gnutls_ocsp_status_request_enable_client(s, NULL, 0, NULL);
    io->fd = fd;
    io->timeout_ms = c->timeout_ms;
    gnutls_transport_set_ptr(s, io);
    gnutls_transport_set_pull_function(s, tls_pull);
    gnutls_transport_set_pull_timeout_function(s, tls_pull_timeout);
    gnutls_transport_set_push_function(s, tls_push);
    gnutls_handshake_set_timeout(s, (unsigned)c->timeout_ms);
    do
        rc = gnutls_handshake(s);
    while (rc < 0 && !gnutls_error_is_fatal(rc) && !io->timed_out);
    *out = s;
    return rc;
}

static void add_dn(cJSON *d, const char *key, gnutls_x509_crt_t crt, int issuer)
{
    gnutls_datum_t dn = {0};
    int rc = issuer ? gnutls_x509_crt_get_issuer_dn2(crt, &dn) : gnutls_x509_crt_get_dn2(crt, &dn);
    if (rc >= 0 && dn.data) {
        cJSON_AddStringToObject(d, key, (const char *)dn.data);
        gnutls_free(dn.data);
    }
}

/* After a version or cipher mismatch: does the server talk to a legacy
 * client?  Puts the protocol it picks (e.g. "TLS1.0") in buf, or "". */
static void legacy_protocol(dctx *c, char *buf, size_t n)
{
    buf[0] = 0;
    int e;
    int fd = tcp_connect((struct sockaddr *)&c->addr[c->conn_idx], c->addrlen[c->conn_idx],
                         c->timeout_ms, &e);
    if (fd < 0)
        return;
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        close(fd);
        return;
    }
    tls_io io = {0};
    gnutls_session_t s = NULL;
    if (tls_session(c, fd, cred, LEGACY_PRIORITY, &io, &s) >= 0) {
        const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
        snprintf(buf, n, "%s", v ? v : "?");
    }
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    close(fd);
}

static void protocol_mismatch(dctx *c, const char *seen)
{
    char legacy[32];
    legacy_protocol(c, legacy, sizeof legacy);
    cJSON_AddStringToObject(det(c, FP_DOC_TLS), "legacy_protocol", legacy[0] ? legacy : "none");
    if (legacy[0])
        add_hit(c, FP_DOC_TLS, "TLS_PROTOCOL_MISMATCH",
                "%s (the server speaks only %s, which current clients refuse: TLS 1.2 or "
                "1.3 is needed)",
                seen, legacy);
    else
        add_hit(c, FP_DOC_TLS, "TLS_PROTOCOL_MISMATCH", "%s", seen);
}

static void layer_tls(dctx *c)
{
    c->r->phase[FP_DOC_TLS].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_TLS].note[0] = 0;
    double t0 = now_ms();
    cJSON *d = det(c, FP_DOC_TLS);
    fp_doctor_report *r = c->r;
    gnutls_certificate_credentials_t cred;
    gnutls_certificate_allocate_credentials(&cred);
    if (c->o->cacert) {
        int n = gnutls_certificate_set_x509_trust_file(cred, c->o->cacert, GNUTLS_X509_FMT_PEM);
        if (n <= 0)
            cJSON_AddStringToObject(d, "cacert_error", n < 0 ? gnutls_strerror(n) : "no cert");
        cJSON_AddStringToObject(d, "trust", c->o->cacert);
    } else {
        gnutls_certificate_set_x509_system_trust(cred);
        cJSON_AddStringToObject(d, "trust", "system");
    }
    tls_io io = {0};
    gnutls_session_t s = NULL;
    int rc = tls_session(c, c->fd, cred, TLS_PRIORITY, &io, &s);
    if (rc == GNUTLS_E_TIMEDOUT)
        io.timed_out = 1; /* the handshake's own timeout, via tls_pull_timeout */
    if (rc < 0) {
        /* the connection is of no more use; closing it before the probes
         * below also frees a server that serves one connection at a time */
        close(c->fd);
        c->fd = -1;
        char first[16] = "";
        memcpy(first, io.first, io.nfirst < 15 ? io.nfirst : 15);
        if (io.nfirst >= 5 && memcmp(io.first, "HTTP/", 5) == 0) {
            add_hit(c, FP_DOC_TLS, "TLS_PLAIN_HTTP",
                    "the server answered the TLS hello with plain HTTP (\"%.8s…\"); use http:// "
                    "or the HTTPS port",
                    first);
        } else if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
            int al = gnutls_alert_get(s);
            const char *an = gnutls_alert_get_name((gnutls_alert_description_t)al);
            cJSON_AddStringToObject(d, "alert", an ? an : "?");
            char seen[128];
            snprintf(seen, sizeof seen, "the server refused the handshake: alert %s",
                     an ? an : "?");
            c->cert_requested = gnutls_certificate_client_get_request_status(s) != 0;
            cJSON_AddBoolToObject(d, "client_cert_requested", c->cert_requested);
            if (c->cert_requested &&
                (al == GNUTLS_A_HANDSHAKE_FAILURE || al == GNUTLS_A_CERTIFICATE_REQUIRED ||
                 al == GNUTLS_A_BAD_CERTIFICATE || al == GNUTLS_A_ACCESS_DENIED))
                add_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED",
                        "the server requires a client certificate (mutual TLS) and ended the "
                        "handshake without one: alert %s",
                        an ? an : "?");
            else if (al == GNUTLS_A_HANDSHAKE_FAILURE || al == GNUTLS_A_PROTOCOL_VERSION ||
                     al == GNUTLS_A_INSUFFICIENT_SECURITY)
                protocol_mismatch(c, seen);
            else
                add_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED", "the server sent alert %s",
                        an ? an : "?");
        } else if (is_reset(io.err)) {
            cJSON_AddStringToObject(d, "errno", strerror(io.err));
            add_reset(c, FP_DOC_TLS,
                      io.nfirst ? "in the middle of the TLS handshake"
                                : "before answering the TLS ClientHello");
        } else if (rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET || rc == GNUTLS_E_NO_CIPHER_SUITES ||
                   rc == GNUTLS_E_UNKNOWN_CIPHER_SUITE || rc == GNUTLS_E_INSUFFICIENT_SECURITY) {
            char seen[128];
            snprintf(seen, sizeof seen, "handshake: %s", gnutls_strerror(rc));
            protocol_mismatch(c, seen);
        } else {
            /* maybe plain HTTP that waited for a line end: ask in plain text */
            char buf[32];
            int silent = 0;
            size_t n = plain_probe(c, buf, sizeof buf, &silent);
            if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0)
                add_hit(c, FP_DOC_TLS, "TLS_PLAIN_HTTP",
                        "the port speaks plain HTTP (\"%.12s…\"), not TLS; use http:// or the "
                        "HTTPS port",
                        buf);
            else if (io.timed_out && io.nfirst == 0)
                add_hit(c, FP_DOC_TLS, "TLS_TIMEOUT",
                        "connected, but no answer to the TLS ClientHello within %d ms%s",
                        c->timeout_ms, silent ? " (nor to a plain HTTP request)" : "");
            else
                add_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED", "handshake: %s",
                        io.timed_out ? "the server stopped answering within the timeout"
                        : io.nfirst == 0 && rc == GNUTLS_E_PREMATURE_TERMINATION
                            ? "the server closed the connection without answering the "
                              "ClientHello"
                            : gnutls_strerror(rc));
        }
        cJSON_AddStringToObject(d, "handshake_error", gnutls_strerror(rc));
        goto out;
    }
    char *desc = gnutls_session_get_desc(s);
    if (desc) {
        cJSON_AddStringToObject(d, "session", desc);
        gnutls_free(desc);
    }
    cJSON_AddStringToObject(d, "protocol",
                            gnutls_protocol_get_name(gnutls_protocol_get_version(s)));
    /* TLS 1.3 finishes the client's handshake before the server looks at
     * the (empty) client certificate; its refusal comes with the first read */
    c->cert_requested = gnutls_certificate_client_get_request_status(s) != 0;
    if (c->cert_requested)
        cJSON_AddBoolToObject(d, "client_cert_requested", 1);
    cJSON_AddStringToObject(d, "cipher", gnutls_cipher_get_name(gnutls_cipher_get(s)));
    unsigned nraw = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(s, &nraw);
    gnutls_x509_crt_t crt[8];
    unsigned ncrt = 0;
    for (unsigned i = 0; raw && i < nraw && ncrt < 8; i++) {
        if (gnutls_x509_crt_init(&crt[ncrt]) < 0)
            break;
        if (gnutls_x509_crt_import(crt[ncrt], &raw[i], GNUTLS_X509_FMT_DER) < 0) {
            gnutls_x509_crt_deinit(crt[ncrt]);
            break;
        }
        ncrt++;
    }
    cJSON_AddNumberToObject(d, "chain_length", ncrt);
    if (ncrt == 0) {
        add_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED", "the server sent no certificate");
        goto out;
    }
    gnutls_x509_crt_t leaf = crt[0];
    add_dn(d, "subject", leaf, 0);
    add_dn(d, "issuer", leaf, 1);
    time_t nb = gnutls_x509_crt_get_activation_time(leaf);
    time_t na = gnutls_x509_crt_get_expiration_time(leaf);
    c->cert_nb = nb;
    c->cert_na = na;
    char ts[32];
    fmt_time(nb, ts, sizeof ts);
    cJSON_AddStringToObject(d, "not_before", ts);
    fmt_time(na, ts, sizeof ts);
    cJSON_AddStringToObject(d, "not_after", ts);
    time_t now = time(NULL);
    long days = (long)((na - now) / 86400);
    cJSON_AddNumberToObject(d, "days_left", (double)days);
    unsigned bits = 0;
    int pk = gnutls_x509_crt_get_pk_algorithm(leaf, &bits);
    char keyd[64];
    snprintf(keyd, sizeof keyd, "%s %u bits", gnutls_pk_get_name((gnutls_pk_algorithm_t)pk), bits);
    cJSON_AddStringToObject(d, "key", keyd);
    int sa = gnutls_x509_crt_get_signature_algorithm(leaf);
    cJSON_AddStringToObject(d, "signature", gnutls_sign_get_name((gnutls_sign_algorithm_t)sa));

    unsigned status = 0;
    int vr = gnutls_certificate_verify_peers3(s, c->ip_literal ? NULL : r->host, &status);
    if (c->ip_literal && vr >= 0) {
        /* IP literal: match the IP SAN ourselves */
        unsigned char ipb[16];
        size_t ipl = 0;
        if (inet_pton(AF_INET, r->host, ipb) == 1)
            ipl = 4;
        else if (inet_pton(AF_INET6, r->host, ipb) == 1)
            ipl = 16;
        if (ipl && !gnutls_x509_crt_check_ip(leaf, ipb, (unsigned)ipl, 0))
            status |= GNUTLS_CERT_UNEXPECTED_OWNER | GNUTLS_CERT_INVALID;
    }
    gnutls_datum_t st = {0};
    if (vr >= 0 &&
        gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &st, 0) >= 0) {
        cJSON_AddStringToObject(d, "verify", (const char *)st.data);
        gnutls_free(st.data);
    }
    gnutls_datum_t ocsp = {0};
    if (gnutls_ocsp_status_request_get(s, &ocsp) == 0)
        cJSON_AddStringToObject(d, "ocsp",
                                gnutls_ocsp_status_request_is_checked(s, 0)
                                    ? "stapled, good"
                                    : "stapled, not verified");
    else
        cJSON_AddStringToObject(d, "ocsp", "not stapled");
    char nas[32];
    fmt_time(na, nas, sizeof nas);
    char nbs[32];
    fmt_time(nb, nbs, sizeof nbs);
    if (vr < 0) {
        add_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED", "cannot verify: %s", gnutls_strerror(vr));
    } else if (status & GNUTLS_CERT_REVOKED) {
        add_hit(c, FP_DOC_TLS, "TLS_CERT_REVOKED", "the certificate is revoked (stapled OCSP)");
    } else if ((status & GNUTLS_CERT_EXPIRED) || now > na) {
        add_hit(c, FP_DOC_TLS, "TLS_CERT_EXPIRED", "the certificate expired on %s (%ld days ago)",
                nas, -days);
    } else if ((status & GNUTLS_CERT_NOT_ACTIVATED) || now < nb) {
        add_hit(c, FP_DOC_TLS, "TLS_CERT_NOT_YET_VALID", "the certificate is valid from %s only",
                nbs);
    } else if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
        gnutls_x509_crt_t last = crt[ncrt - 1];
        int leaf_issuer_sent = 0;
        for (unsigned i = 1; i < ncrt; i++)
            if (gnutls_x509_crt_check_issuer(leaf, crt[i]))
                leaf_issuer_sent = 1;
        if (ncrt == 1 && self_issued(leaf))
            add_hit(c, FP_DOC_TLS, "TLS_SELF_SIGNED",
                    "the certificate is self-signed and not in the trust store%s",
                    c->o->cacert ? " (--cacert)" : "; pass it with --cacert");
        else if (!self_issued(last) && !leaf_issuer_sent)
            add_hit(c, FP_DOC_TLS, "TLS_CHAIN_INCOMPLETE",
                    "the server sent %u certificate(s) without the leaf's issuer; the "
                    "intermediate is missing",
                    ncrt);
        else
            add_hit(c, FP_DOC_TLS, "TLS_UNTRUSTED_ISSUER",
                    "the chain (%u certificates) ends at an issuer the trust store does not know",
                    ncrt);
    } else if ((status & GNUTLS_CERT_INSECURE_ALGORITHM) || (pk == GNUTLS_PK_RSA && bits < 2048)) {
        add_hit(c, FP_DOC_TLS, "TLS_WEAK_KEY", "weak certificate: %s, %s", keyd,
                gnutls_sign_get_name((gnutls_sign_algorithm_t)sa));
    } else if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
        add_hit(c, FP_DOC_TLS, "TLS_HOSTNAME_MISMATCH", "the certificate is not valid for %s",
                r->host);
    } else if (status & GNUTLS_CERT_INVALID) {
        add_hit(c, FP_DOC_TLS, "TLS_UNTRUSTED_ISSUER", "the chain does not verify (status 0x%x)",
                status);
    } else if (days < 30) {
        add_hit(c, FP_DOC_TLS, "TLS_CERT_EXPIRING_SOON", "the certificate expires on %s (%ld days)",
                nas, days);
    }
    if (!failed(c, FP_DOC_TLS))
        note(c, FP_DOC_TLS, "%s, %s, expires in %ld days",
             gnutls_protocol_get_name(gnutls_protocol_get_version(s)),
             gnutls_cipher_get_name(gnutls_cipher_get(s)), days);
    for (unsigned i = 0; i < ncrt; i++)
        gnutls_x509_crt_deinit(crt[i]);
    gnutls_bye(s, GNUTLS_SHUT_WR);
out:
    if (s)
        gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    r->phase[FP_DOC_TLS].ms = now_ms() - t0;
}

/* http:// URL: does the port answer plain HTTP or want TLS?  0 = plain ok
 * (or cannot tell), 1 = TLS, 2 = it says nothing at all until the timeout. */
static int http_wants_tls(dctx *c)
{
    char buf[32];
    int silent = 0;
    size_t n = plain_probe(c, buf, sizeof buf, &silent);
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0)
        return 0;
    if (n > 0 && (unsigned char)buf[0] == 0x15)
        return 1; /* a TLS alert record */
    if (silent)
        return 2; /* a TLS server would have sent an alert or closed */
    int e;
    int fd = tcp_connect((struct sockaddr *)&c->addr[c->conn_idx], c->addrlen[c->conn_idx],
                         c->timeout_ms, &e);
    if (fd < 0)
        return 0;
    gnutls_certificate_credentials_t cred;
    gnutls_certificate_allocate_credentials(&cred);
    tls_io io = {0};
    gnutls_session_t s = NULL;
    int rc = tls_session(c, fd, cred, LEGACY_PRIORITY, &io, &s);
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    close(fd);
    return rc >= 0 || (io.nfirst > 0 && io.first[0] == 0x16);
}

/* ---- 5/6 HTTP via libcurl ---- */

typedef struct http_resp {
    long status;
    CURLcode cc;
    long os_errno; /* of a failed transfer: ECONNRESET tells a reset */
    char err[CURL_ERROR_SIZE];
    char ctype[128], retry_after[64], rid[128], date[64], location[512];
    char *body;
    size_t len;
    double ms;
} http_resp;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    http_resp *h = arg;
    size_t k = sz * n;
    size_t take = h->len + k > MAX_BODY ? MAX_BODY - h->len : k;
    if (take) {
        char *nb = realloc(h->body, h->len + take + 1);
        if (!nb)
            return 0;
        h->body = nb;
        memcpy(h->body + h->len, p, take);
        h->len += take;
        h->body[h->len] = 0;
    }
    return k;
}

static void hdr_copy(char *dst, size_t n, const char *v, size_t vl)
{
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    snprintf(dst, n, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    http_resp *h = arg;
    size_t k = sz * n;
    static const struct {
        const char *name;
        size_t off, size;
    } want[] = {
        {"content-type:", offsetof(http_resp, ctype), sizeof((http_resp *)0)->ctype},
        {"retry-after:", offsetof(http_resp, retry_after), sizeof((http_resp *)0)->retry_after},
        {"x-request-id:", offsetof(http_resp, rid), sizeof((http_resp *)0)->rid},
        {"date:", offsetof(http_resp, date), sizeof((http_resp *)0)->date},
        {"location:", offsetof(http_resp, location), sizeof((http_resp *)0)->location},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t nl = strlen(want[i].name);
        if (k > nl && strncasecmp(p, want[i].name, nl) == 0)
            hdr_copy((char *)h + want[i].off, want[i].size, p + nl, k - nl);
    }
    return k;
}

static void http_do(dctx *c, const char *method, const char *path, const char *bearer,
                    const char *json, int verify, http_resp *h)
{
    memset(h, 0, sizeof *h);
    if (!c->curl)
        c->curl = curl_easy_init();
    CURL *cu = c->curl;
    if (!cu) {
        h->cc = CURLE_OUT_OF_MEMORY;
        return;
    }
    curl_easy_reset(cu);
    char url[1400];
    int v6 = strchr(c->r->host, ':') != NULL;
    snprintf(url, sizeof url, "%s://%s%s%s:%d%s", c->r->scheme, v6 ? "[" : "", c->r->host,
             v6 ? "]" : "", c->r->port, path);
    struct curl_slist *res = NULL, *hdrs = NULL;
    if (!c->ip_literal) {
        char rs[600];
        int ip6 = strchr(c->conn_ip, ':') != NULL;
        snprintf(rs, sizeof rs, "%s:%d:%s%s%s", c->r->host, c->r->port, ip6 ? "[" : "", c->conn_ip,
                 ip6 ? "]" : "");
        res = curl_slist_append(res, rs);
        curl_easy_setopt(cu, CURLOPT_RESOLVE, res);
    }
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_PROXY, "");
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, h->err);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(cu, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(cu, CURLOPT_USERAGENT, "fapiao-doctor");
    if (c->o->cacert) {
        /* trust that file only, as the tls phase did; without this libcurl
         * also reads every file of its CA directory (/etc/ssl/certs: some 300
         * files, most of the doctor's run time on a healthy server) */
        curl_easy_setopt(cu, CURLOPT_CAINFO, c->o->cacert);
        curl_easy_setopt(cu, CURLOPT_CAPATH, NULL);
    }
    if (!verify) {
        curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    char auth[4200];
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (json) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(cu, CURLOPT_POSTFIELDS, json);
    }
    (void)method;
    if (hdrs)
        curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hdrs);
    double t0 = now_ms();
    h->cc = curl_easy_perform(cu);
    h->ms = now_ms() - t0;
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &h->status);
    if (h->cc)
        curl_easy_getinfo(cu, CURLINFO_OS_ERRNO, &h->os_errno);
    if (!h->err[0] && h->cc)
        snprintf(h->err, sizeof h->err, "%s", curl_easy_strerror(h->cc));
    if (h->date[0]) {
        time_t t = curl_getdate(h->date, NULL);
        if (t > 0)
            c->server_date = t;
    }
    curl_slist_free_all(res);
    curl_slist_free_all(hdrs);
}

static fp_doctor_answer answer_of(const http_resp *h)
{
    fp_doctor_answer a = {.status = h->status,
                          .body = h->body,
                          .ctype = h->ctype,
                          .retry_after = h->retry_after,
                          .location = h->location};
    return a;
}

/* A transfer that failed without an HTTP answer: a reset or a timeout gets
 * its own finding; 1 when one was added. */
static int transport_failure(dctx *c, int phase, const char *what, const http_resp *h)
{
    if (c->cert_requested && !is_reset((int)h->os_errno) &&
        (h->cc == CURLE_RECV_ERROR || h->cc == CURLE_SEND_ERROR ||
         h->cc == CURLE_SSL_CONNECT_ERROR)) {
        add_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED",
                "the server asked for a client certificate (mutual TLS) and refused the "
                "connection without one: %s",
                h->err);
        fp_doctor_phase *p = &c->r->phase[phase];
        p->status = FP_PHASE_FAIL;
        p->finding = "TLS_HANDSHAKE_FAILED";
        snprintf(p->note, sizeof p->note, "%s: refused, no client certificate", what);
        return 1;
    }
    if (is_reset((int)h->os_errno) &&
        (h->cc == CURLE_RECV_ERROR || h->cc == CURLE_SEND_ERROR || h->cc == CURLE_GOT_NOTHING ||
         h->cc == CURLE_COULDNT_CONNECT || h->cc == CURLE_SSL_CONNECT_ERROR)) {
        char when[160];
        snprintf(when, sizeof when, "before answering %s", what);
        add_reset(c, phase, when);
        return 1;
    }
    if (h->cc == CURLE_OPERATION_TIMEDOUT) {
        add_hit(c, phase, "HTTP_TIMEOUT", "%s: no HTTP answer within %d ms", what, c->timeout_ms);
        return 1;
    }
    return 0;
}

/* Adds the classifier's lines as hits of phase; returns how many. */
static int add_lines(dctx *c, int phase, int step, const http_resp *h, char *token, size_t tn)
{
    fp_doctor_line lines[8];
    fp_doctor_answer a = answer_of(h);
    int n = fp_doctor_classify(step, &a, det(c, phase), lines, 8, token, tn);
    for (int i = 0; i < n; i++)
        add_hit(c, phase, lines[i].code, "%s", lines[i].msg);
    return n;
}

static void layer_http(dctx *c)
{
    c->r->phase[FP_DOC_HTTP].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_HTTP].note[0] = 0;
    double t0 = now_ms();
    cJSON *d = det(c, FP_DOC_HTTP);
    int wants = strcmp(c->r->scheme, "http") == 0 ? http_wants_tls(c) : 0;
    if (wants == 1) {
        add_hit(c, FP_DOC_HTTP, "HTTP_TLS_REQUIRED", "port %d answers with TLS; use https://%s:%d/",
                c->r->port, c->r->host, c->r->port);
        goto done;
    }
    if (wants == 2) {
        add_hit(c, FP_DOC_HTTP, "HTTP_TIMEOUT", "connected, but no answer to GET within %d ms",
                c->timeout_ms);
        goto done;
    }
    http_resp h;
    http_do(c, "GET", "/readyz", NULL, NULL, 1, &h);
    cJSON_AddNumberToObject(d, "readyz_ms", r3(h.ms));
    if (h.cc != CURLE_OK) {
        cJSON_AddStringToObject(d, "error", h.err);
        if (!transport_failure(c, FP_DOC_HTTP, "GET /readyz", &h))
            add_hit(c, FP_DOC_HTTP, "HTTP_WRONG_SERVICE", "GET /readyz: %s", h.err);
        free(h.body);
        goto done;
    }
    cJSON_AddNumberToObject(d, "readyz_status", h.status);
    if (h.ctype[0])
        cJSON_AddStringToObject(d, "content_type", h.ctype);
    if (h.rid[0])
        cJSON_AddStringToObject(d, "request_id", h.rid);
    if (h.retry_after[0])
        cJSON_AddStringToObject(d, "retry_after", h.retry_after);
    add_lines(c, FP_DOC_HTTP, FP_DOC_STEP_READYZ, &h, NULL, 0);
    free(h.body);
    if (!failed(c, FP_DOC_HTTP) && c->r->phase[FP_DOC_HTTP].finding == NULL) {
        http_do(c, "GET", "/healthz", NULL, NULL, 1, &h);
        cJSON_AddNumberToObject(d, "healthz_status", h.cc ? 0 : h.status);
        cJSON_AddNumberToObject(d, "healthz_ms", r3(h.ms));
        free(h.body);
        note(c, FP_DOC_HTTP, "/readyz ready, /healthz %ld", h.status);
    }
done:
    c->r->phase[FP_DOC_HTTP].ms = now_ms() - t0;
}

static void layer_api(dctx *c)
{
    c->r->phase[FP_DOC_API].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_API].note[0] = 0;
    double t0 = now_ms();
    cJSON *d = det(c, FP_DOC_API);
    char token[4096] = "";
    http_resp h;
    if (c->o->client_id) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "client_id", c->o->client_id);
        cJSON_AddStringToObject(b, "client_secret", c->o->client_secret ? c->o->client_secret : "");
        char *body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
        http_do(c, "POST", "/v1/token", NULL, body, 1, &h);
        free(body);
        cJSON_AddNumberToObject(d, "token_status", h.cc ? 0 : h.status);
        cJSON_AddNumberToObject(d, "token_ms", r3(h.ms));
        if (h.cc) {
            if (!transport_failure(c, FP_DOC_API, "POST /v1/token", &h))
                add_hit(c, FP_DOC_API, "HTTP_SERVER_ERROR", "POST /v1/token: %s", h.err);
        } else {
            add_lines(c, FP_DOC_API, FP_DOC_STEP_TOKEN, &h, token, sizeof token);
        }
        free(h.body);
        if (failed(c, FP_DOC_API) || !token[0])
            goto done;
    } else {
        snprintf(token, sizeof token, "%s", c->o->token);
    }
    http_do(c, "GET", "/v1/invoices?limit=1", token, NULL, 1, &h);
    cJSON_AddNumberToObject(d, "invoices_status", h.cc ? 0 : h.status);
    cJSON_AddNumberToObject(d, "invoices_ms", r3(h.ms));
    if (h.cc) {
        if (!transport_failure(c, FP_DOC_API, "GET /v1/invoices", &h))
            add_hit(c, FP_DOC_API, "HTTP_SERVER_ERROR", "GET /v1/invoices: %s", h.err);
    } else if (add_lines(c, FP_DOC_API, FP_DOC_STEP_INVOICES, &h, NULL, 0) == 0) {
        note(c, FP_DOC_API, "credential accepted, GET /v1/invoices 200");
    }
    free(h.body);
done:
    c->r->phase[FP_DOC_API].ms = now_ms() - t0;
}

/* The clock, against the server's Date (from any HTTP answer).  When TLS
 * failed on the validity dates, one unverified request fetches the Date so
 * that a wrong local clock is named instead of the certificate. */
static void check_clock(dctx *c)
{
    const char *tf = c->r->phase[FP_DOC_TLS].finding;
    if (!c->server_date && c->fd >= 0 && tf &&
        (strcmp(tf, "TLS_CERT_EXPIRED") == 0 || strcmp(tf, "TLS_CERT_NOT_YET_VALID") == 0)) {
        http_resp h;
        http_do(c, "GET", "/healthz", NULL, NULL, 0, &h);
        free(h.body);
    }
    if (!c->server_date)
        return;
    cJSON *d = det(c, FP_DOC_LOCAL);
    char ts[32];
    fmt_time(c->server_date, ts, sizeof ts);
    cJSON_AddStringToObject(d, "server_date", ts);
    long skew = (long)(time(NULL) - c->server_date);
    cJSON_AddNumberToObject(d, "clock_skew_s", (double)skew);
    if (skew > 300 || skew < -300)
        add_hit(c, FP_DOC_LOCAL, "CLOCK_SKEW",
                "the local clock is %ld s %s the server's Date (%s); TLS validity checks use the "
                "local clock",
                skew < 0 ? -skew : skew, skew < 0 ? "behind" : "ahead of", ts);
}

int fp_doctor_run(const fp_doctor_opts *o, fp_doctor_report **out, fp_err *err)
{
    *out = NULL;
    if (!o || !o->url)
        return fp_fail(err, FP_EINVAL, "no URL");
    fp_doctor_report *r = calloc(1, sizeof *r);
    if (!r)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    int rc = fp_doctor_parse_url(o->url, r, err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    if (o->dns_server && !fp_doctor_dns_servers_ok(o->dns_server)) {
        free(r);
        return fp_fail(err, FP_EINVAL, "--dns-server wants IP[:port] (IPv6 as [addr]:port)");
    }
    if (o->resolve) {
        char rh[256], ra[INET6_ADDRSTRLEN + 2];
        int rp;
        if (fp_doctor_parse_resolve(o->resolve, rh, sizeof rh, &rp, ra, sizeof ra) < 0) {
            free(r);
            return fp_fail(err, FP_EINVAL,
                           "--resolve wants host:port:addr (addr an IPv4 or IPv6 address)");
        }
    }
    if (o->client_id && !o->client_secret) {
        free(r);
        return fp_fail(err, FP_EINVAL, "--client-id needs --client-secret");
    }
    for (int i = 0; i < FP_DOC_NPHASES; i++) {
        r->phase[i].name = phase_names[i];
        r->phase[i].details = cJSON_CreateObject();
        r->phase[i].status = FP_PHASE_SKIPPED;
        snprintf(r->phase[i].note, sizeof r->phase[i].note, "skipped (an earlier layer failed)");
    }
    static int inited;
    if (!inited) {
        ares_library_init(ARES_LIB_INIT_ALL);
        gnutls_global_init();
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = 1;
    }
    dctx c = {.o = o, .r = r, .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000, .fd = -1};
    double t0 = now_ms();
    int https = strcmp(r->scheme, "https") == 0;
    int stop = 0;
    layer_local(&c);
    stop = failed(&c, FP_DOC_LOCAL);
    if (!stop) {
        layer_dns(&c);
        stop = failed(&c, FP_DOC_DNS);
    }
    if (!stop) {
        layer_tcp(&c);
        stop = failed(&c, FP_DOC_TCP);
    }
    if (!stop && https) {
        layer_tls(&c);
        stop = failed(&c, FP_DOC_TLS);
    } else if (!stop) {
        r->phase[FP_DOC_TLS].status = FP_PHASE_SKIPPED;
        note(&c, FP_DOC_TLS, "skipped (http://)");
    }
    if (!stop) {
        layer_http(&c);
        stop = failed(&c, FP_DOC_HTTP) || r->phase[FP_DOC_HTTP].finding != NULL;
        if (!failed(&c, FP_DOC_HTTP) && stop && r->phase[FP_DOC_HTTP].finding &&
            strcmp(r->phase[FP_DOC_HTTP].finding, "HTTP_REDIRECT") != 0)
            stop = 0; /* warnings such as NUMBER_RANGE_LOW do not stop */
    }
    if (!stop && (o->client_id || o->token)) {
        layer_api(&c);
    } else if (!stop) {
        r->phase[FP_DOC_API].status = FP_PHASE_SKIPPED;
        note(&c, FP_DOC_API, "skipped (no --token or --client-id)");
    }
    if (c.fd >= 0)
        check_clock(&c);
    if (c.fd >= 0)
        close(c.fd);
    if (c.curl)
        curl_easy_cleanup(c.curl);
    r->total_ms = now_ms() - t0;
    /* verdict: the first error by layer order */
    for (int i = 0; i < r->nhits; i++) {
        const fp_doctor_hit *h = &r->hits[i];
        if (h->f->severity != FP_SEV_ERROR)
            continue;
        if (!r->verdict || h->phase < r->verdict->phase)
            r->verdict = h;
    }
    *out = r;
    return 0;
}

void fp_doctor_report_free(fp_doctor_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < FP_DOC_NPHASES; i++)
        cJSON_Delete(r->phase[i].details);
    free(r);
}

int fp_doctor_exit_code(const fp_doctor_report *r)
{
    return r && r->verdict ? r->verdict->f->exit_code : 0;
}

const char *fp_doctor_verdict_code(const fp_doctor_report *r)
{
    return r && r->verdict ? r->verdict->f->code : "OK";
}
