/* http_limits.c — what libmicrohttpd 0.9.75 (Debian 12) lets through and we
 * refuse, and the response-memory budget (docs/security.md).
 *
 * libmicrohttpd frames a request by Transfer-Encoding: chunked when that is
 * present and by the first Content-Length otherwise; it accepts both
 * headers together, several differing Content-Lengths, and other transfer
 * codings.  A proxy in front that frames the same bytes differently
 * forwards a second, hidden request on the same connection (request
 * smuggling).  It also unescapes %00 in the path and the arguments, which
 * cuts the C string the handlers see ("/v1/invoices/N%00/xml" routed as
 * "/v1/invoices/N").  Both are refused with 400 (server.c on_request), the
 * first with the connection closed. */
#include "http_limits.h"
#include "conn_guard.h"
#include "fapiao/metrics.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static char nul_mark;

void *fp_http_nul_mark(void)
{
    return &nul_mark;
}

void *fp_http_uri_seen(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    for (const char *p = uri; p && (p = strchr(p, '%')) != NULL; p++)
        if (p[1] == '0' && p[2] == '0')
            return &nul_mark;
    return NULL;
}

typedef struct framing {
    int n_cl, n_te, cl_differ, te_other;
    const char *cl;
} framing;

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    framing *f = cls;
    if (!key)
        return MHD_YES;
    if (!strcasecmp(key, "Content-Length")) {
        if (f->n_cl++ && strcmp(f->cl, value ? value : "") != 0)
            f->cl_differ = 1;
        if (f->n_cl == 1)
            f->cl = value ? value : "";
    } else if (!strcasecmp(key, "Transfer-Encoding")) {
        f->n_te++;
        if (!value || strcasecmp(value, "chunked") != 0)
            f->te_other = 1;
    }
    return MHD_YES;
}

int fp_http_framing_ambiguous(struct MHD_Connection *c)
{
    framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, on_header, &f);
    return (f.n_cl && f.n_te) || f.cl_differ || f.n_te > 1 || f.te_other;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (len == 0 || len > n)
        return 0;
    return fp_utf8_valid((const char *)s, len) ? len : 0;
}

void fp_http_log_path(fp_jw *w, const char *key, const char *path, size_t max)
{
    char out[1024];
    size_t o = 0, n = strlen(path);
    if (max > sizeof out / 3 - 1)
        max = sizeof out / 3 - 1; /* every byte may become %XX */
    const unsigned char *s = (const unsigned char *)path;
    for (size_t i = 0; i < n && i < max;) {
        size_t k = utf8_seq(s + i, n - i);
        if (k && i + k <= max) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else if (k) {
            break; /* a character that does not fit whole is left out */
        } else {
            snprintf(out + o, 4, "%%%02X", s[i]);
            o += 3;
            i++;
        }
    }
    out[o] = 0;
    fp_jw_kstr(w, key, out);
}

int fp_resp_budget_take(fp_server *s, size_t n)
{
    size_t cur = atomic_load(&s->resp_held);
    for (;;) {
        if (n >= FP_LARGE_RESPONSE && cur + n > s->o.response_memory)
            return FP_EBUSY;
        if (atomic_compare_exchange_weak(&s->resp_held, &cur, cur + n))
            return 0;
    }
}

void fp_resp_budget_add(fp_server *s, size_t n)
{
    atomic_fetch_add(&s->resp_held, n);
}

void fp_resp_budget_release(fp_server *s, size_t n)
{
    if (n)
        atomic_fetch_sub(&s->resp_held, n);
}

void fp_http_limits_metrics(fp_server *s, fp_buf *b)
{
    fp_metrics_emit(b, "fapiao_response_memory_bytes",
                    "Response bodies held in memory until their clients read them.",
                    FP_METRICS_GAUGE, (int64_t)atomic_load(&s->resp_held), 1);
    fp_metrics_emit(b, "fapiao_response_memory_limit_bytes",
                    "The response-memory budget (serve --response-memory-mb).", FP_METRICS_GAUGE,
                    (int64_t)s->o.response_memory, 1);
    fp_metrics_emit(b, "fapiao_response_memory_refused_total",
                    "Large answers refused with 503 RESPONSE_MEMORY_EXHAUSTED.", FP_METRICS_COUNTER,
                    (int64_t)atomic_load(&s->resp_refused), 1);
    fp_metrics_emit(b, "fapiao_http_send_timeouts_total",
                    "Connections cut for not reading an answer within serve --send-timeout-ms.",
                    FP_METRICS_COUNTER, (int64_t)fp_conn_guard_cut(s->guard, FP_CUT_SEND), 1);
}
