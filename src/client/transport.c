/* transport.c — one HTTP attempt with libcurl: headers, a bounded body,
 * the per-phase timeouts (connect, TLS, first byte, total) and what a
 * failure says: the client's code and the doctor's finding a curl error
 * suggests (the diagnose hook refines it; client.c).  Also the table that
 * maps a server's problem code to a finding with a knowledge-base article
 * (kb/<FINDING>.md). */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t fpc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    fpc_attempt *at = arg;
    size_t n = size * nmemb;
    if (at->blen + n + 1 > FPC_MAX_BODY)
        return 0; /* CURLE_WRITE_ERROR: too large */
    if (at->blen + n + 1 > at->bcap) {
        size_t cap = at->bcap ? at->bcap : 512; /* most answers fit: malloc's fast path */
        while (cap < at->blen + n + 1)
            cap *= 2;
        char *nb = realloc(at->buf, cap);
        if (!nb)
            return 0;
        at->buf = nb;
        at->bcap = cap;
    }
    memcpy(at->buf + at->blen, p, n);
    at->blen += n;
    at->buf[at->blen] = '\0';
    return n;
}

/* "Name: value\r\n" → value copied to out when name matches */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t cap)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    const char *v = line + k + 1, *e = line + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
        e--;
    size_t len = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 1;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    fpc_attempt *at = arg;
    size_t n = size * nmemb;
    char v[128];
    /* the first letter names the one line a header can be (most are none
     * of the four): one compare per line, not one per name */
    switch (n ? p[0] | 0x20 : 0) {
    case 'h':
        if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new answer (after 100): start over */
            at->retry_after = -1;
            at->replayed = 0;
            at->ctype[0] = '\0';
        }
        break;
    case 'r':
        if (header_value(p, n, "Retry-After", v, sizeof v))
            at->retry_after = fpc_parse_retry_after(v, (int64_t)time(NULL));
        break;
    case 'i':
        if (header_value(p, n, "Idempotent-Replayed", v, sizeof v))
            at->replayed = strcasecmp(v, "true") == 0;
        break;
    case 'c':
        header_value(p, n, "Content-Type", at->ctype, sizeof at->ctype);
        break;
    default:
        break;
    }
    return n;
}

/* The phases curl does not time apart (it has one connect timeout for TCP
 * and TLS together, and nothing for the first byte): checked here, about
 * once a second and on every chunk. */
typedef struct phase_clock {
    fpc_client *c;
    fpc_attempt *at;
    const char *aborted;        /* the phase that ran out, or NULL */
    int64_t start_ms, quiet_ms; /* before start + quiet_ms no phase can have run out */
} phase_clock;

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)ut, (void)un;
    phase_clock *pc = arg;
    if (dn > 0) /* the body is arriving: every phase a check below times has ended */
        return 0;
    if (fpc_now_ms() - pc->start_ms < pc->quiet_ms)
        return 0; /* the common case, a fast call: no curl_easy_getinfo */
    CURL *h = pc->c->h;
    curl_off_t total = 0, conn = 0, app = 0, pre = 0, first = 0;
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total);
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &conn);
    curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &app);
    curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &first);
    const fpc_opts *o = &pc->c->o;
    int64_t ms = total / 1000;
    if (!pre && !conn && ms > o->connect_timeout_ms)
        pc->aborted = "connect";
    else if (!pre && conn && !app && ms - conn / 1000 > o->tls_timeout_ms)
        pc->aborted = "tls";
    else if (pre && !first && ms - pre / 1000 > o->first_byte_timeout_ms)
        pc->aborted = "first_byte";
    return pc->aborted != NULL;
}

static void set_conn_failure(fpc_attempt *at, CURLcode cc, long os_errno, const char *phase)
{
    const char *code = "CONNECT", *finding = "TCP_RESET";
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        finding = "DNS_NXDOMAIN";
        at->sent = 0;
        break;
    case CURLE_COULDNT_CONNECT:
        finding = os_errno == EHOSTUNREACH || os_errno == ENETUNREACH ? "TCP_UNREACHABLE"
                  : os_errno == ETIMEDOUT                             ? "TCP_TIMEOUT"
                                                                      : "TCP_REFUSED";
        at->sent = 0;
        break;
    case CURLE_SSL_CONNECT_ERROR:
        code = "TLS", finding = "TLS_HANDSHAKE_FAILED";
        at->sent = 0;
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        code = "TLS", finding = "TLS_UNTRUSTED_ISSUER"; /* the doctor tells expired, self-signed… */
        at->sent = 0, at->tls_verify = 1;
        break;
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: /* the doctor has no pin: this is the verdict */
        code = "PIN_MISMATCH", finding = "TLS_PIN_MISMATCH";
        at->sent = 0, at->tls_verify = 1;
        break;
    case CURLE_WRITE_ERROR:
        code = "TOO_LARGE", finding = "";
        break;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_ABORTED_BY_CALLBACK:
        code = "TIMEOUT";
        finding = !phase                          ? "HTTP_TIMEOUT"
                  : strcmp(phase, "connect") == 0 ? "TCP_TIMEOUT"
                  : strcmp(phase, "tls") == 0     ? "TLS_TIMEOUT"
                                                  : "HTTP_TIMEOUT";
        break;
    default: /* send/recv errors, an empty answer: the connection broke */
        break;
    }
    snprintf(at->code, sizeof at->code, "%s", code);
    snprintf(at->finding, sizeof at->finding, "%s", finding);
}

/* Each byte of a header line costs libcurl about a hundred instructions a
 * call (its printf goes a character at a time; docs/client.md), so a call
 * sends only what it needs: the user agent as a line of its own
 * (CURLOPT_USERAGENT is formatted twice), curl's own Accept line for any
 * type (the list sent before ended in the any-type range too, so it said
 * nothing more), "Expect:" only with a body (no 100-continue round trip). */
#define AUTH_PREFIX "Authorization: Bearer "

static struct curl_slist *request_headers(fpc_client *c, const fpc_attempt *at)
{
    char line[2200];
    struct curl_slist *hs = NULL, *t;
#define ADD(s)                                                                                     \
    do {                                                                                           \
        if (!(t = curl_slist_append(hs, (s))))                                                     \
            goto fail;                                                                             \
        hs = t;                                                                                    \
    } while (0)
    if (c->o.user_agent[0]) {
        snprintf(line, sizeof line, "User-Agent: %s", c->o.user_agent);
        ADD(line);
    }
    if (at->body) {
        ADD("Expect:");
        ADD("Content-Type: application/json");
    }
    if (at->auth) {
        snprintf(line, sizeof line, AUTH_PREFIX "%s", c->token);
        ADD(line);
    }
    if (at->key) {
        snprintf(line, sizeof line, "Idempotency-Key: %s", at->key);
        ADD(line);
    }
#undef ADD
    return hs;
fail:
    curl_slist_free_all(hs);
    return NULL;
}

/* The header list of an attempt: an authenticated GET's is kept in the
 * client while the token stays the same (*own = 0); any other is built for
 * the attempt (*own = 1: the caller frees it). */
static struct curl_slist *attempt_headers(fpc_client *c, const fpc_attempt *at, int *own)
{
    *own = 0;
    if (!at->auth || at->body || at->key) {
        *own = 1;
        return request_headers(c, at);
    }
    const struct curl_slist *auth = c->get_hs;
    if (auth && c->o.user_agent[0])
        auth = auth->next;
    if (!auth || strcmp(auth->data + sizeof AUTH_PREFIX - 1, c->token) != 0) {
        curl_slist_free_all(c->get_hs);
        c->get_hs = request_headers(c, at);
    }
    return c->get_hs;
}

void fpc_transport_free(fpc_client *c)
{
    curl_slist_free_all(c->get_hs);
    c->get_hs = NULL;
}

void fpc_attempt_reset(fpc_attempt *at)
{
    free(at->buf);
    at->buf = NULL;
    at->blen = at->bcap = 0;
    at->status = at->sent = at->replayed = at->tls_verify = 0;
    at->retry_after = -1;
    at->problem[0] = at->ctype[0] = at->code[0] = at->finding[0] = at->detail[0] = '\0';
}

/* the problem code of a problem+json answer (src/server/response.c) */
static void read_problem(fpc_attempt *at)
{
    if (!at->buf || strncmp(at->ctype, "application/problem+json", 24) != 0)
        return;
    cJSON *doc = cJSON_ParseWithLength(at->buf, at->blen);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
    if (cJSON_IsString(code))
        snprintf(at->problem, sizeof at->problem, "%s", code->valuestring);
    cJSON_Delete(doc);
}

/* The options every attempt shares, set once: setting them per attempt
 * (curl_easy_reset and again) cost about a tenth of a kept-alive call. */
int fpc_transport_init(fpc_client *c)
{
    CURL *h = c->h;
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                            (long)c->o.connect_timeout_ms + c->o.tls_timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->o.total_timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROXY, "") != CURLE_OK; /* the connector talks to the
                                                                  server itself */
    /* the given CA file only: Debian's libcurl-gnutls otherwise also reads
     * every file of /etc/ssl/certs per new connection, ~50 ms of CPU each
     * (docs/performance.md §5c) */
    if (c->o.cacert)
        bad |= curl_easy_setopt(h, CURLOPT_CAINFO, c->o.cacert) != CURLE_OK ||
               curl_easy_setopt(h, CURLOPT_CAPATH, NULL) != CURLE_OK;
    if (c->o.pinned_pubkey)
        bad |= curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, c->o.pinned_pubkey) != CURLE_OK;
    return bad ? -1 : 0;
}

/* c->h's URL, base + path (cut to the buffer, as snprintf did): set only
 * when it changed (curl copies it on every set) */
static int set_url(fpc_client *c, int ai, const char *path)
{
    size_t b = strlen(c->a[ai].base), p = strlen(path);
    if (b + p >= sizeof c->url)
        p = sizeof c->url - 1 - b; /* base is at most 255 bytes */
    if (strncmp(c->url, c->a[ai].base, b) == 0 && strncmp(c->url + b, path, p) == 0 &&
        c->url[b + p] == '\0')
        return 0;
    memcpy(c->url, c->a[ai].base, b);
    memcpy(c->url + b, path, p);
    c->url[b + p] = '\0';
    if (curl_easy_setopt(c->h, CURLOPT_URL, c->url) == CURLE_OK)
        return 0;
    c->url[0] = '\0'; /* not set: set it next time */
    return -1;
}

void fpc_attempt_run(fpc_client *c, int ai, fpc_attempt *at)
{
    fpc_attempt_reset(at);
    CURL *h = c->h;
    int own;
    struct curl_slist *hs = attempt_headers(c, at, &own);
    int quiet = c->o.connect_timeout_ms;
    quiet = c->o.tls_timeout_ms < quiet ? c->o.tls_timeout_ms : quiet;
    quiet = c->o.first_byte_timeout_ms < quiet ? c->o.first_byte_timeout_ms : quiet;
    phase_clock pc = {c, at, NULL, fpc_now_ms(), quiet};
    CURLcode cc = hs && set_url(c, ai, at->path) == 0 ? CURLE_OK : CURLE_OUT_OF_MEMORY;
    if (hs != c->hs_set) {
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
        c->hs_set = own ? NULL : hs; /* an own list is gone after the attempt */
    }
    curl_easy_setopt(h, CURLOPT_WRITEDATA, at);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, at);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &pc);
    if (strcmp(at->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, at->body ? at->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(at->body ? at->len : 0));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    at->retry_after = -1;
    c->errbuf[0] = '\0';
    if (cc == CURLE_OK)
        cc = curl_easy_perform(h);
    if (own)
        curl_slist_free_all(hs);
    if (cc == CURLE_OK) {
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        at->status = (int)st;
        at->sent = 1;
        read_problem(at);
        return;
    }
    curl_off_t pre = 0;
    long os_errno = 0;
    curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    at->sent = pre > 0;
    set_conn_failure(at, cc, os_errno, pc.aborted);
    snprintf(at->detail, sizeof at->detail, "%s%s%s",
             c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc),
             pc.aborted ? "; phase timed out: " : "", pc.aborted ? pc.aborted : "");
}

/* A server's problem code → the doctor's finding (kb/<FINDING>.md). */
static const struct {
    const char *problem, *finding;
} problem_findings[] = {
    {"IP_NOT_ALLOWED", "AUTH_IP_NOT_ALLOWED"},
    {"TOKEN_EXPIRED", "AUTH_TOKEN_EXPIRED"},
    {"UNAUTHENTICATED", "AUTH_BAD_CREDENTIALS"},
    {"FORBIDDEN", "AUTH_SCOPE_MISSING"},
    {"RATE_LIMITED", "HTTP_RATE_LIMITED"},
    {"AUTH_FAILURES_LIMITED", "HTTP_RATE_LIMITED"},
    {"DEGRADED", "HTTP_DEGRADED"},
    {"NUMBER_RANGE_EXHAUSTED", "NUMBER_RANGE_EXHAUSTED"},
};

void fpc_error_set(fpc_error *err, int rc, const char *code, const char *zh, const char *en)
{
    if (!err)
        return;
    err->rc = rc;
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->message_zh, sizeof err->message_zh, "%s", zh);
    snprintf(err->message, sizeof err->message, "%s", en);
    err->finding[0] = err->article[0] = '\0';
    err->retryable = rc == FPC_EUNAVAILABLE;
}

static void set_finding(fpc_error *err, const char *finding)
{
    snprintf(err->finding, sizeof err->finding, "%s", finding ? finding : "");
    if (finding && *finding)
        snprintf(err->article, sizeof err->article, "kb/%s.md", finding);
    else
        err->article[0] = '\0';
}

void fpc_error_from_attempt(fpc_error *err, int rc, const fpc_attempt *at, const char *server)
{
    if (!err)
        return;
    err->rc = rc;
    err->status = at->status;
    err->retryable = rc == FPC_EUNAVAILABLE;
    snprintf(err->server, sizeof err->server, "%s", server);
    if (at->status == 0) {
        snprintf(err->code, sizeof err->code, "%s", at->code);
        set_finding(err, at->finding);
        snprintf(err->message, sizeof err->message, "cannot reach %s: %s", server, at->detail);
        snprintf(err->message_zh, sizeof err->message_zh, "无法连接 %s：%s", server, at->detail);
        return;
    }
    snprintf(err->code, sizeof err->code, "%s", at->problem[0] ? at->problem : "HTTP_ERROR");
    const char *finding = at->status >= 500 && at->status != 503 ? "HTTP_SERVER_ERROR" : "";
    for (size_t i = 0; i < sizeof problem_findings / sizeof problem_findings[0]; i++)
        if (strcmp(at->problem, problem_findings[i].problem) == 0)
            finding = problem_findings[i].finding;
    set_finding(err, finding);
    /* the problem's own words, and the first field it names */
    cJSON *doc = at->buf ? cJSON_Parse(at->buf) : NULL;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(doc, "message_en");
    const cJSON *zh = cJSON_GetObjectItemCaseSensitive(doc, "message_zh");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "errors"), 0);
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(first, "field");
    const char *f = cJSON_IsString(field) ? field->valuestring : NULL;
    snprintf(err->message, sizeof err->message, "%s answered %d %s: %s%s%s%s", server, at->status,
             err->code, cJSON_IsString(en) ? en->valuestring : "(no problem document)",
             f ? " (" : "", f ? f : "", f ? ")" : "");
    snprintf(err->message_zh, sizeof err->message_zh, "%s 返回 %d %s：%s%s%s%s", server, at->status,
             err->code, cJSON_IsString(zh) ? zh->valuestring : "（无错误文档）", f ? "（" : "",
             f ? f : "", f ? "）" : "");
    cJSON_Delete(doc);
}
