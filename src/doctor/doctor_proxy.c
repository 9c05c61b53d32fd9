/* doctor_proxy.c — the local layer's proxy check: when a proxy is in
 * effect (--proxy, or https_proxy/http_proxy not covered by NO_PROXY), the
 * doctor asks it for the tunnel a client would ask for (CONNECT host:port,
 * with Basic credentials from the proxy URL's user:password) and names
 * what the proxy answers: 2xx the tunnel works (PROXY_ENV_SET, info), 407
 * PROXY_AUTH_REQUIRED, any other answer or a closed connection
 * PROXY_BLOCKED, silence or no HTTP PROXY_UNREACHABLE.  The later layers
 * still connect directly (docs/doctor.md, Limits). */
#include "doctor_internal.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PROXY_HEAD_MAX 4096

/* "%41" → 'A' in place (user and password in a proxy URL are URL-encoded). */
static void pct_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
            char hex[3] = {r[1], r[2], 0};
            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static void b64(const unsigned char *in, size_t n, char *out, size_t outsz)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outsz; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = 0;
}

/* "user:password" of "scheme://user:password@host…", decoded, or "". */
static void proxy_userinfo(const char *proxy, char *buf, size_t n)
{
    const char *p = strstr(proxy, "://");
    p = p ? p + 3 : proxy;
    size_t auth_len = strcspn(p, "/");
    buf[0] = 0;
    for (size_t i = auth_len; i > 0; i--)
        if (p[i - 1] == '@') {
            snprintf(buf, n, "%.*s", (int)(i - 1), p);
            pct_decode(buf);
            return;
        }
}

/* Reads the answer's head (until an empty line, EOF, the timeout or
 * PROXY_HEAD_MAX - 1 bytes); its length, *e = errno of a failed read or
 * ETIMEDOUT when nothing came. */
static size_t read_head(int fd, char *buf, int timeout_ms, int *e)
{
    size_t got = 0;
    double end = fp_doc_now_ms() + timeout_ms;
    *e = 0;
    while (got + 1 < PROXY_HEAD_MAX) {
        int left = (int)(end - fp_doc_now_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            *e = got ? 0 : ETIMEDOUT;
            break;
        }
        ssize_t k = recv(fd, buf + got, PROXY_HEAD_MAX - 1 - got, 0);
        if (k <= 0) {
            *e = k < 0 ? errno : 0;
            break;
        }
        got += (size_t)k;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            break;
    }
    buf[got] = 0;
    return got;
}

/* The value of header name (with its colon) in head, trimmed, into v. */
static void head_value(const char *head, const char *name, char *v, size_t n)
{
    size_t nl = strlen(name);
    v[0] = 0;
    for (const char *l = strchr(head, '\n'); l; l = strchr(l, '\n')) {
        l++;
        if (strncasecmp(l, name, nl) == 0) {
            const char *s = l + nl;
            s += strspn(s, " \t");
            size_t len = strcspn(s, "\r\n");
            snprintf(v, n, "%.*s", (int)len, s);
            return;
        }
    }
}

/* The CONNECT request for the server, with credentials when the proxy URL
 * has them; its length. */
static int connect_request(dctx *c, const char *proxy, char *req, size_t n, int *with_auth)
{
    int v6 = strchr(c->r->host, ':') != NULL;
    char target[300];
    snprintf(target, sizeof target, "%s%s%s:%d", v6 ? "[" : "", c->r->host, v6 ? "]" : "",
             c->r->port);
    char ui[512], auth[800] = "";
    proxy_userinfo(proxy, ui, sizeof ui);
    *with_auth = ui[0] != 0;
    if (ui[0]) {
        char enc[700];
        b64((const unsigned char *)ui, strlen(ui), enc, sizeof enc);
        snprintf(auth, sizeof auth, "Proxy-Authorization: Basic %s\r\n", enc);
    }
    return snprintf(req, n,
                    "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fapiao-doctor\r\n"
                    "%s\r\n",
                    target, target, auth);
}

void fp_doc_proxy_tunnel(dctx *c, int fd, const char *var, const char *proxy)
{
    cJSON *d = fp_doc_det(c, FP_DOC_LOCAL);
    char req[1400], head[PROXY_HEAD_MAX];
    int with_auth = 0;
    int len = connect_request(c, proxy, req, sizeof req, &with_auth);
    int e = 0;
    size_t got = 0;
    if (len <= 0 || (size_t)len >= sizeof req ||
        send(fd, req, (size_t)len, MSG_NOSIGNAL) != (ssize_t)len)
        e = errno ? errno : EIO;
    else
        got = read_head(fd, head, c->timeout_ms, &e);
    if (got == 0) {
        head[0] = 0;
        if (e == ETIMEDOUT)
            fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_UNREACHABLE",
                       "%s=%s accepts connections but does not answer CONNECT %s:%d within %d ms",
                       var, proxy, c->r->host, c->r->port, c->timeout_ms);
        else
            fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_BLOCKED",
                       "%s=%s closed the connection instead of answering CONNECT %s:%d (%s)", var,
                       proxy, c->r->host, c->r->port, e ? strerror(e) : "no answer");
        return;
    }
    int status = 0;
    if (strncmp(head, "HTTP/1.", 7) != 0 || sscanf(head + 8, " %3d", &status) != 1) {
        fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_UNREACHABLE",
                   "%s=%s does not speak HTTP: it answered CONNECT with %.40s", var, proxy, head);
        return;
    }
    char reason[128], pa[256];
    size_t line_len = strcspn(head, "\r\n");
    const char *sp = memchr(head + 9, ' ', line_len > 9 ? line_len - 9 : 0);
    snprintf(reason, sizeof reason, "%.*s", sp ? (int)(head + line_len - sp - 1) : 0,
             sp ? sp + 1 : "");
    head_value(head, "Proxy-Authenticate:", pa, sizeof pa);
    cJSON_AddNumberToObject(d, "proxy_status", status);
    if (pa[0])
        cJSON_AddStringToObject(d, "proxy_authenticate", pa);
    if (status >= 200 && status < 300) {
        cJSON_AddBoolToObject(d, "proxy_answers", 1);
        fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_ENV_SET",
                   "%s=%s is set and tunnels CONNECT %s:%d (%d); the doctor connects directly, "
                   "your clients go through the proxy",
                   var, proxy, c->r->host, c->r->port, status);
    } else if (status == 407) {
        fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_AUTH_REQUIRED",
                   "%s=%s answers CONNECT %s:%d with 407 %s%s%s; %s", var, proxy, c->r->host,
                   c->r->port, reason, pa[0] ? ", Proxy-Authenticate: " : "", pa,
                   with_auth ? "it refused the user name and password in the proxy URL"
                             : "no credentials were given");
    } else {
        fp_doc_hit(c, FP_DOC_LOCAL, "PROXY_BLOCKED", "%s=%s refuses CONNECT %s:%d: %d %s", var,
                   proxy, c->r->host, c->r->port, status, reason);
    }
}
