/* doctor_ctx.c — the helpers every layer of the doctor uses: findings and
 * notes into the report, times, addresses, a TCP connect with a deadline
 * and a plain-HTTP probe (doctor_internal.h). */
#include "doctor_internal.h"
#include "fapiao/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

double fp_doc_now_ms(void)
{
    return (double)fp_mono_ns() / 1e6;
}

double fp_doc_r3(double ms)
{
    return (double)(long long)(ms * 1000) / 1000.0;
}

void fp_doc_hit(dctx *c, int phase, const char *code, const char *fmt, ...)
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

cJSON *fp_doc_det(dctx *c, int phase)
{
    return c->r->phase[phase].details;
}

void fp_doc_note(dctx *c, int phase, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->r->phase[phase].note, sizeof c->r->phase[phase].note, fmt, ap);
    va_end(ap);
}

int fp_doc_failed(dctx *c, int phase)
{
    return c->r->phase[phase].status == FP_PHASE_FAIL;
}

void fp_doc_addr_str(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
    if (getnameinfo(sa, len, buf, (socklen_t)n, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(buf, n, "?");
}

void fp_doc_fmt_time(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int fp_doc_fill_literal(const char *s, int port, struct sockaddr_storage *ss, socklen_t *len)
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

/* Returns a connected fd or -1 with *e = errno (ETIMEDOUT on timeout). */
int fp_doc_tcp_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms, int *e)
{
    return fp_doc_tcp_connect_mss(sa, len, timeout_ms, 0, e);
}

int fp_doc_tcp_connect_mss(const struct sockaddr *sa, socklen_t len, int timeout_ms, int mss,
                           int *e)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *e = errno;
        return -1;
    }
    if (mss > 0 && setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss) < 0) {
        *e = errno;
        close(fd);
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
    double end = fp_doc_now_ms() + timeout_ms;
    *silent = 0;
    while (got + 1 < n) {
        int left = (int)(end - fp_doc_now_ms());
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
size_t fp_doc_plain_probe(dctx *c, char *buf, size_t n, int *silent)
{
    int e;
    *silent = 0;
    int fd = fp_doc_tcp_connect((struct sockaddr *)&c->addr[c->conn_idx], c->addrlen[c->conn_idx],
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

int fp_doc_is_reset(int e)
{
    return e == ECONNRESET || e == EPIPE;
}

/* A reset after connect() succeeded is still a TCP finding: the verdict is
 * TCP_RESET on the tcp phase (exit 30), and the phase in which it struck
 * (tls or http) fails too, naming the same code. */
void fp_doc_add_reset(dctx *c, int phase, const char *when)
{
    fp_doc_hit(c, FP_DOC_TCP, "TCP_RESET", "connected to %s port %d, then reset by the peer %s",
               c->conn_ip, c->r->port, when);
    fp_doctor_phase *p = &c->r->phase[phase];
    p->status = FP_PHASE_FAIL;
    p->finding = "TCP_RESET";
    snprintf(p->note, sizeof p->note, "connection reset by the peer %s", when);
}
