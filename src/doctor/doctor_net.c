/* doctor_net.c — the doctor's first layers: local (proxy variables or
 * --proxy, whose CONNECT answer doctor_proxy.c names; the clock), DNS
 * (c-ares, so the answer's TTL and the exact failure are visible;
 * /etc/hosts first), TCP (every address, nonblocking connect). */
#include "doctor_internal.h"
#include "doctor_parse.h"

#include <ares.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <unistd.h>

/* ---- 1 local ---- */

void fp_doc_layer_local(dctx *c)
{
    c->r->phase[FP_DOC_LOCAL].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_LOCAL].note[0] = 0;
    double t0 = fp_doc_now_ms();
    cJSON *d = fp_doc_det(c, FP_DOC_LOCAL);
    int https = strcmp(c->r->scheme, "https") == 0;
    const char *vars_s[] = {"https_proxy", "HTTPS_PROXY", NULL};
    const char *vars_p[] = {"http_proxy", NULL};
    const char **vars = https ? vars_s : vars_p;
    const char *var = NULL, *proxy = NULL;
    char pac_proxy[320];
    if (c->o->proxy && *c->o->proxy) {
        var = "--proxy";
        proxy = c->o->proxy;
    } else if (c->o->pac) { /* as a browser: the PAC file, not the variables */
        var = "PAC";
        proxy = fp_doc_pac_proxy(c, pac_proxy, sizeof pac_proxy);
    }
    for (int i = 0; vars[i] && !proxy && !c->o->pac; i++) {
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
    fp_doc_fmt_time(time(NULL), lt, sizeof lt);
    cJSON_AddStringToObject(d, "local_time", lt);
    if (np && *np)
        cJSON_AddStringToObject(d, "no_proxy", np);
    if (time(NULL) < 1704067200) /* 2024-01-01: a clock that never got set */
        fp_doc_hit(c, FP_DOC_LOCAL, "CLOCK_SKEW", "the local clock says %s, before 2024", lt);
    if (!proxy) {
        cJSON_AddNullToObject(d, "proxy");
        if (!c->o->pac)
            fp_doc_note(c, FP_DOC_LOCAL, "no proxy variable set");
        c->r->phase[FP_DOC_LOCAL].ms = fp_doc_now_ms() - t0;
        return;
    }
    cJSON_AddStringToObject(d, "proxy", proxy);
    cJSON_AddStringToObject(d, "proxy_var", var);
    if (!c->o->proxy && !c->o->pac && fp_doctor_no_proxy_covers(np, c->r->host)) {
        cJSON_AddBoolToObject(d, "proxy_bypassed", 1);
        fp_doc_note(c, FP_DOC_LOCAL, "%s is set but NO_PROXY covers %s", var, c->r->host);
        c->r->phase[FP_DOC_LOCAL].ms = fp_doc_now_ms() - t0;
        return;
    }
    char host[256], port[16];
    if (fp_doctor_parse_proxy(proxy, host, sizeof host, port, sizeof port) < 0) {
        fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_UNREACHABLE", "%s=%s: no proxy host:port in it", var,
                   proxy);
        c->r->phase[FP_DOC_LOCAL].ms = fp_doc_now_ms() - t0;
        return;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_UNREACHABLE", "%s=%s: cannot resolve %s: %s", var, proxy,
                   host, gai_strerror(gai));
    } else {
        int e;
        int fd = fp_doc_tcp_connect(ai->ai_addr, ai->ai_addrlen, c->timeout_ms, &e);
        if (fd < 0) {
            fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_UNREACHABLE", "%s=%s: connect to %s:%s: %s", var,
                       proxy, host, port, strerror(e));
        } else {
            fp_doc_proxy_tunnel(c, fd, var, proxy);
            close(fd);
        }
        freeaddrinfo(ai);
    }
    c->r->phase[FP_DOC_LOCAL].ms = fp_doc_now_ms() - t0;
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
    q->ms = fp_doc_now_ms() - q->t0;
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

/* An IP literal or a matching --resolve: no lookup (1, the phase done). */
static int dns_skip(dctx *c, cJSON *d)
{
    fp_doctor_report *r = c->r;
    struct sockaddr_storage ss;
    socklen_t len;
    if (fp_doc_fill_literal(r->host, r->port, &ss, &len) == 0) {
        c->ip_literal = 1;
        add_addr(c, &ss, len);
        r->phase[FP_DOC_DNS].status = FP_PHASE_SKIPPED;
        fp_doc_note(c, FP_DOC_DNS, "skipped (IP literal)");
        return 1;
    }
    if (c->o->resolve) {
        /* host:port:addr, checked by fp_doctor_run; used only for that host and port */
        char rh[256], ra[INET6_ADDRSTRLEN + 2];
        int rp = 0;
        if (fp_doctor_parse_resolve(c->o->resolve, rh, sizeof rh, &rp, ra, sizeof ra) == 0 &&
            strcasecmp(rh, r->host) == 0 && rp == r->port &&
            fp_doc_fill_literal(ra, r->port, &ss, &len) == 0) {
            add_addr(c, &ss, len);
            cJSON_AddStringToObject(d, "resolve", c->o->resolve);
            r->phase[FP_DOC_DNS].status = FP_PHASE_SKIPPED;
            fp_doc_note(c, FP_DOC_DNS, "skipped (--resolve)");
            return 1;
        }
        cJSON_AddStringToObject(d, "resolve_ignored", c->o->resolve);
    }
    return 0;
}

/* The resolver, on --dns-server or the system's servers (named in d):
 * 0, or -1 with the finding added (*ch is then not to be destroyed when
 * its initialisation failed: *made says). */
static int dns_channel(dctx *c, cJSON *d, ares_channel *ch, int *made, const char *server)
{
    struct ares_options ao = {0};
    *made = 0;
    ao.timeout = c->timeout_ms < 2000 ? c->timeout_ms : 2000;
    ao.tries = 2;
    /* NOCHECKRESP: hand SERVFAIL/REFUSED answers to us instead of turning
     * them into "could not contact server" (ECONNREFUSED) */
    ao.flags = ARES_FLAG_NOCHECKRESP;
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    if (ares_init_options(ch, &ao, mask) != ARES_SUCCESS) {
        fp_doc_hit(c, FP_DOC_DNS, "DNS_SERVFAIL", "cannot initialise the resolver");
        return -1;
    }
    *made = 1;
    if (server) {
        int st = ares_set_servers_ports_csv(*ch, server);
        if (st != ARES_SUCCESS) {
            fp_doc_hit(c, FP_DOC_DNS, "DNS_SERVFAIL", "bad DNS server %s: %s", server,
                       ares_strerror(st));
            return -1;
        }
        if (d)
            cJSON_AddStringToObject(d, "server", server);
        return 0;
    }
    struct ares_addr_port_node *sv = NULL;
    if (ares_get_servers_ports(*ch, &sv) == ARES_SUCCESS) {
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
    return 0;
}

/* /etc/hosts first, as the system resolver would: 1 when it has the host
 * (addresses taken, the phase done). */
static int dns_hosts_file(dctx *c, ares_channel ch, cJSON *d)
{
    fp_doctor_report *r = c->r;
    struct sockaddr_storage ss;
    int fams[2] = {AF_INET, AF_INET6};
    for (int i = 0; i < 2; i++) {
        if ((c->o->family == 4 && fams[i] != AF_INET) || (c->o->family == 6 && fams[i] != AF_INET6))
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
    if (c->naddr == 0)
        return 0;
    cJSON_AddStringToObject(d, "source", "hosts file");
    cJSON *arr = cJSON_AddArrayToObject(d, "addresses");
    for (int i = 0; i < c->naddr; i++) {
        char ip[INET6_ADDRSTRLEN];
        fp_doc_addr_str((struct sockaddr *)&c->addr[i], c->addrlen[i], ip, sizeof ip);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "address", ip);
        cJSON_AddNullToObject(o, "ttl");
        cJSON_AddItemToArray(arr, o);
    }
    fp_doc_note(c, FP_DOC_DNS, "%d address(es) from the hosts file", c->naddr);
    return 1;
}

/* Asks A and/or AAAA and waits for both answers, at most the timeout. */
static void dns_ask(dctx *c, ares_channel ch, dns_q *q4, dns_q *q6, int want4, int want6)
{
    if (want4)
        ares_query(ch, c->r->host, 1 /* IN */, 1 /* A */, dns_cb, q4);
    else
        q4->done = 1, q4->status = -1;
    if (want6)
        ares_query(ch, c->r->host, 1, 28 /* AAAA */, dns_cb, q6);
    else
        q6->done = 1, q6->status = -1;
    double deadline = fp_doc_now_ms() + c->timeout_ms;
    while (!(q4->done && q6->done)) {
        fd_set rf, wf;
        FD_ZERO(&rf);
        FD_ZERO(&wf);
        int nfds = ares_fds(ch, &rf, &wf);
        double left = deadline - fp_doc_now_ms();
        if (nfds == 0 || left <= 0)
            break;
        struct timeval maxtv = {.tv_sec = (long)left / 1000, .tv_usec = ((long)left % 1000) * 1000};
        struct timeval tv, *tvp = ares_timeout(ch, &maxtv, &tv);
        select(nfds, &rf, &wf, NULL, tvp);
        ares_process(ch, &rf, &wf);
    }
    ares_cancel(ch); /* pending queries end with ARES_ECANCELLED = timeout */
}

/* The answers into d and the context's addresses; the smallest TTL. */
static int dns_take(dctx *c, cJSON *d, dns_q *q4, dns_q *q6, int want4, int want6)
{
    cJSON_AddStringToObject(d, "a", want4 ? ares_status_name(q4->status) : "not asked");
    cJSON_AddStringToObject(d, "aaaa", want6 ? ares_status_name(q6->status) : "not asked");
    cJSON *arr = cJSON_AddArrayToObject(d, "addresses");
    dns_q *qs[2] = {q4, q6};
    int minttl = -1;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < qs[k]->n; i++) {
            char ip[INET6_ADDRSTRLEN];
            fp_doc_addr_str((struct sockaddr *)&qs[k]->addr[i], qs[k]->len[i], ip, sizeof ip);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "address", ip);
            cJSON_AddStringToObject(o, "family", k == 0 ? "ipv4" : "ipv6");
            cJSON_AddNumberToObject(o, "ttl", qs[k]->ttl[i]);
            cJSON_AddItemToArray(arr, o);
            add_addr(c, &qs[k]->addr[i], qs[k]->len[i]);
            if (minttl < 0 || qs[k]->ttl[i] < minttl)
                minttl = qs[k]->ttl[i];
        }
    if (q4->done && want4)
        cJSON_AddNumberToObject(d, "a_ms", fp_doc_r3(q4->ms));
    if (q6->done && want6)
        cJSON_AddNumberToObject(d, "aaaa_ms", fp_doc_r3(q6->ms));
    return minttl;
}

/* No address: the finding, by what the answers say (NXDOMAIN first). */
static void dns_no_address(dctx *c, const dns_q *q4, const dns_q *q6, int want4, int want6)
{
    fp_doctor_report *r = c->r;
    int st[2] = {want4 ? q4->status : -1, want6 ? q6->status : -1};
    const char *fam = c->o->family == 4   ? "IPv4 (A)"
                      : c->o->family == 6 ? "IPv6 (AAAA)"
                                          : "IPv4 or IPv6";
    for (int k = 0; k < 2; k++)
        if (st[k] == ARES_ENOTFOUND) {
            fp_doc_hit(c, FP_DOC_DNS, "DNS_NXDOMAIN", "%s does not exist (NXDOMAIN)", r->host);
            return;
        }
    for (int k = 0; k < 2; k++)
        if (st[k] == ARES_ESERVFAIL) {
            fp_doc_hit(c, FP_DOC_DNS, "DNS_SERVFAIL", "the DNS server answered SERVFAIL for %s",
                       r->host);
            return;
        }
    for (int k = 0; k < 2; k++)
        if (st[k] == ARES_EREFUSED) {
            fp_doc_hit(c, FP_DOC_DNS, "DNS_REFUSED", "the DNS server refused the query for %s",
                       r->host);
            return;
        }
    for (int k = 0; k < 2; k++)
        if (st[k] == ARES_ETIMEOUT || st[k] == ARES_ECANCELLED || st[k] == ARES_ECONNREFUSED ||
            st[k] == 0) {
            fp_doc_hit(c, FP_DOC_DNS, "DNS_TIMEOUT", "no answer for %s within %d ms (%s)", r->host,
                       c->timeout_ms,
                       st[k] == ARES_ECONNREFUSED ? "the server port is closed" : "timeout");
            return;
        }
    fp_doc_hit(c, FP_DOC_DNS, "DNS_NO_ADDRESS", "%s exists but has no %s address (A %s, AAAA %s)",
               r->host, fam, want4 ? ares_status_name(q4->status) : "not asked",
               want6 ? ares_status_name(q6->status) : "not asked");
}

/* Is ss (port ignored) among the n addresses of set? */
static int addr_in(const struct sockaddr_storage *ss, const struct sockaddr_storage *set, int n)
{
    for (int i = 0; i < n; i++) {
        if (ss->ss_family != set[i].ss_family)
            continue;
        if (ss->ss_family == AF_INET && ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
                                            ((const struct sockaddr_in *)&set[i])->sin_addr.s_addr)
            return 1;
        if (ss->ss_family == AF_INET6 &&
            memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr,
                   &((const struct sockaddr_in6 *)&set[i])->sin6_addr, 16) == 0)
            return 1;
    }
    return 0;
}

/* The addresses the operator trusts: --expect-address's, then what
 * --trusted-dns answers; how many (0 when it has none to give). */
static int expected_addrs(dctx *c, cJSON *d, struct sockaddr_storage *set, int max)
{
    int n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", c->o->expect_address ? c->o->expect_address : "");
    char *save = NULL;
    socklen_t len;
    for (char *t = strtok_r(buf, ", ", &save); t && n < max; t = strtok_r(NULL, ", ", &save))
        if (fp_doc_fill_literal(t, 0, &set[n], &len) == 0)
            n++;
    if (!c->o->trusted_dns)
        return n;
    ares_channel ch;
    int made = 0;
    if (dns_channel(c, NULL, &ch, &made, c->o->trusted_dns) < 0) {
        if (made)
            ares_destroy(ch);
        return n;
    }
    dns_q q4 = {.fam = AF_INET, .t0 = fp_doc_now_ms()}, q6 = {.fam = AF_INET6, .t0 = q4.t0};
    dns_ask(c, ch, &q4, &q6, c->o->family != 6, c->o->family != 4);
    ares_destroy(ch);
    cJSON *arr = cJSON_AddArrayToObject(d, "trusted_addresses");
    dns_q *qs[2] = {&q4, &q6};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < qs[k]->n && n < max; i++) {
            char ip[INET6_ADDRSTRLEN];
            fp_doc_addr_str((struct sockaddr *)&qs[k]->addr[i], qs[k]->len[i], ip, sizeof ip);
            cJSON_AddItemToArray(arr, cJSON_CreateString(ip));
            set[n++] = qs[k]->addr[i];
        }
    return n;
}

/* DNS_WRONG_ADDRESS: an address the name resolved to that neither
 * --expect-address nor the --trusted-dns server gives (for the families
 * they give: an IPv4-only expectation says nothing of AAAA). */
static void dns_check_expected(dctx *c, cJSON *d)
{
    if (!c->o->expect_address && !c->o->trusted_dns)
        return;
    struct sockaddr_storage set[2 * MAX_ADDRS];
    int n = expected_addrs(c, d, set, 2 * MAX_ADDRS);
    if (n == 0) {
        cJSON_AddStringToObject(d, "expected", "none: the trusted DNS server gave no address");
        return;
    }
    char wrong[256] = "", want[256] = "";
    for (int i = 0; i < n; i++) {
        char ip[INET6_ADDRSTRLEN];
        fp_doc_addr_str((struct sockaddr *)&set[i],
                        set[i].ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                    : sizeof(struct sockaddr_in6),
                        ip, sizeof ip);
        size_t l = strlen(want);
        snprintf(want + l, sizeof want - l, "%s%s", l ? ", " : "", ip);
    }
    for (int i = 0; i < c->naddr; i++) {
        int fam_known = 0;
        for (int k = 0; k < n; k++)
            fam_known |= set[k].ss_family == c->addr[i].ss_family;
        if (!fam_known || addr_in(&c->addr[i], set, n))
            continue;
        char ip[INET6_ADDRSTRLEN];
        fp_doc_addr_str((struct sockaddr *)&c->addr[i], c->addrlen[i], ip, sizeof ip);
        size_t l = strlen(wrong);
        snprintf(wrong + l, sizeof wrong - l, "%s%s", l ? ", " : "", ip);
    }
    cJSON_AddStringToObject(d, "expected", want);
    if (wrong[0])
        fp_doc_hit(c, FP_DOC_DNS, "DNS_WRONG_ADDRESS", "%s resolves to %s, but %s says %s",
                   c->r->host, wrong,
                   c->o->trusted_dns ? "the trusted DNS server" : "--expect-address", want);
}

void fp_doc_layer_dns(dctx *c)
{
    c->r->phase[FP_DOC_DNS].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_DNS].note[0] = 0;
    double t0 = fp_doc_now_ms();
    cJSON *d = fp_doc_det(c, FP_DOC_DNS);
    fp_doctor_report *r = c->r;
    if (dns_skip(c, d))
        return;
    ares_channel ch;
    int made = 0;
    if (dns_channel(c, d, &ch, &made, c->o->dns_server) < 0) {
        if (made)
            ares_destroy(ch);
        r->phase[FP_DOC_DNS].ms = fp_doc_now_ms() - t0;
        return;
    }
    if (!c->o->dns_server && dns_hosts_file(c, ch, d)) {
        ares_destroy(ch);
        dns_check_expected(c, d);
        r->phase[FP_DOC_DNS].ms = fp_doc_now_ms() - t0;
        return;
    }
    cJSON_AddStringToObject(d, "source", "dns");
    dns_q q4 = {.fam = AF_INET, .t0 = fp_doc_now_ms()},
          q6 = {.fam = AF_INET6, .t0 = fp_doc_now_ms()};
    int want4 = c->o->family != 6, want6 = c->o->family != 4;
    dns_ask(c, ch, &q4, &q6, want4, want6);
    ares_destroy(ch);
    int minttl = dns_take(c, d, &q4, &q6, want4, want6);
    if (c->naddr > 0) {
        fp_doc_note(c, FP_DOC_DNS, "%d address(es), TTL %d s", c->naddr, minttl);
        dns_check_expected(c, d);
    } else {
        dns_no_address(c, &q4, &q6, want4, want6);
    }
    r->phase[FP_DOC_DNS].ms = fp_doc_now_ms() - t0;
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

void fp_doc_layer_tcp(dctx *c)
{
    c->r->phase[FP_DOC_TCP].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_TCP].note[0] = 0;
    double t0 = fp_doc_now_ms();
    cJSON *arr = cJSON_AddArrayToObject(fp_doc_det(c, FP_DOC_TCP), "attempts");
    int first_err = 0, v4_ok = 0, v6_err = 0;
    char first_ip[INET6_ADDRSTRLEN] = "", v6_ip[INET6_ADDRSTRLEN] = "";
    for (int i = 0; i < c->naddr; i++) {
        char ip[INET6_ADDRSTRLEN];
        fp_doc_addr_str((struct sockaddr *)&c->addr[i], c->addrlen[i], ip, sizeof ip);
        double t1 = fp_doc_now_ms();
        int e;
        int fd =
            fp_doc_tcp_connect((struct sockaddr *)&c->addr[i], c->addrlen[i], c->timeout_ms, &e);
        double ms = fp_doc_now_ms() - t1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "address", ip);
        cJSON_AddStringToObject(o, "result", tcp_result(e));
        if (e)
            cJSON_AddStringToObject(o, "errno", strerror(e));
        cJSON_AddNumberToObject(o, "connect_ms", fp_doc_r3(ms));
        cJSON_AddItemToArray(arr, o);
        v4_ok |= fd >= 0 && c->addr[i].ss_family == AF_INET;
        if (fd < 0 && c->addr[i].ss_family == AF_INET6 && !v6_err &&
            (e == ETIMEDOUT || e == EHOSTUNREACH)) {
            v6_err = e;
            snprintf(v6_ip, sizeof v6_ip, "%s", ip);
        }
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
    c->r->phase[FP_DOC_TCP].ms = fp_doc_now_ms() - t0;
    if (c->fd >= 0) {
        cJSON_AddStringToObject(fp_doc_det(c, FP_DOC_TCP), "connected", c->conn_ip);
        fp_doc_note(c, FP_DOC_TCP, "connected to %s port %d", c->conn_ip, c->r->port);
        /* a client that tries IPv6 first (most do, RFC 6724) waits out its
         * connect timeout there; a refusal or "no route" fails over at once */
        if (v4_ok && v6_err)
            fp_doc_hit(c, FP_DOC_TCP, "IPV6_BROKEN",
                       "IPv4 connects, but IPv6 %s port %d: %s; clients that try IPv6 first "
                       "hang until their timeout",
                       v6_ip, c->r->port,
                       v6_err == ETIMEDOUT ? "no answer within the timeout" : strerror(v6_err));
        return;
    }
    const char *code = first_err == ECONNREFUSED                               ? "TCP_REFUSED"
                       : first_err == ETIMEDOUT                                ? "TCP_TIMEOUT"
                       : first_err == ENETUNREACH || first_err == EHOSTUNREACH ? "TCP_UNREACHABLE"
                       : first_err == ECONNRESET                               ? "TCP_RESET"
                                                                               : "TCP_UNREACHABLE";
    fp_doc_hit(c, FP_DOC_TCP, code, "connect to %s port %d: %s", first_ip, c->r->port,
               first_err == ETIMEDOUT ? "no answer within the timeout" : strerror(first_err));
}
