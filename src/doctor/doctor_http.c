/* doctor_http.c — the doctor's HTTP and API layers (libcurl pinned to the
 * address that connected) and the clock check against the server's Date. */
#include "doctor_internal.h"
#include "doctor_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
    double t0 = fp_doc_now_ms();
    h->cc = curl_easy_perform(cu);
    h->ms = fp_doc_now_ms() - t0;
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
    if (c->cert_requested && !fp_doc_is_reset((int)h->os_errno) &&
        (h->cc == CURLE_RECV_ERROR || h->cc == CURLE_SEND_ERROR ||
         h->cc == CURLE_SSL_CONNECT_ERROR)) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED",
                   "the server asked for a client certificate (mutual TLS) and refused the "
                   "connection without one: %s",
                   h->err);
        fp_doctor_phase *p = &c->r->phase[phase];
        p->status = FP_PHASE_FAIL;
        p->finding = "TLS_HANDSHAKE_FAILED";
        snprintf(p->note, sizeof p->note, "%s: refused, no client certificate", what);
        return 1;
    }
    if (fp_doc_is_reset((int)h->os_errno) &&
        (h->cc == CURLE_RECV_ERROR || h->cc == CURLE_SEND_ERROR || h->cc == CURLE_GOT_NOTHING ||
         h->cc == CURLE_COULDNT_CONNECT || h->cc == CURLE_SSL_CONNECT_ERROR)) {
        char when[160];
        snprintf(when, sizeof when, "before answering %s", what);
        fp_doc_add_reset(c, phase, when);
        return 1;
    }
    if (h->cc == CURLE_OPERATION_TIMEDOUT) {
        fp_doc_hit(c, phase, "HTTP_TIMEOUT", "%s: no HTTP answer within %d ms", what,
                   c->timeout_ms);
        return 1;
    }
    return 0;
}

/* Adds the classifier's lines as hits of phase; returns how many. */
static int add_lines(dctx *c, int phase, int step, const http_resp *h, char *token, size_t tn)
{
    fp_doctor_line lines[8];
    fp_doctor_answer a = answer_of(h);
    a.host = c->r->host;
    int n = fp_doctor_classify(step, &a, fp_doc_det(c, phase), lines, 8, token, tn);
    for (int i = 0; i < n; i++)
        fp_doc_hit(c, phase, lines[i].code, "%s", lines[i].msg);
    return n;
}

void fp_doc_layer_http(dctx *c)
{
    c->r->phase[FP_DOC_HTTP].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_HTTP].note[0] = 0;
    double t0 = fp_doc_now_ms();
    cJSON *d = fp_doc_det(c, FP_DOC_HTTP);
    int wants = strcmp(c->r->scheme, "http") == 0 ? fp_doc_http_wants_tls(c) : 0;
    if (wants == 1) {
        fp_doc_hit(c, FP_DOC_HTTP, "HTTP_TLS_REQUIRED",
                   "port %d answers with TLS; use https://%s:%d/", c->r->port, c->r->host,
                   c->r->port);
        goto done;
    }
    if (wants == 2) {
        fp_doc_hit(c, FP_DOC_HTTP, "HTTP_TIMEOUT", "connected, but no answer to GET within %d ms",
                   c->timeout_ms);
        goto done;
    }
    http_resp h;
    http_do(c, "GET", "/readyz", NULL, NULL, 1, &h);
    cJSON_AddNumberToObject(d, "readyz_ms", fp_doc_r3(h.ms));
    if (h.cc != CURLE_OK) {
        cJSON_AddStringToObject(d, "error", h.err);
        if (!transport_failure(c, FP_DOC_HTTP, "GET /readyz", &h))
            fp_doc_hit(c, FP_DOC_HTTP, "HTTP_WRONG_SERVICE", "GET /readyz: %s", h.err);
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
    if (!fp_doc_failed(c, FP_DOC_HTTP) && c->r->phase[FP_DOC_HTTP].finding == NULL) {
        http_do(c, "GET", "/healthz", NULL, NULL, 1, &h);
        cJSON_AddNumberToObject(d, "healthz_status", h.cc ? 0 : h.status);
        cJSON_AddNumberToObject(d, "healthz_ms", fp_doc_r3(h.ms));
        free(h.body);
        fp_doc_note(c, FP_DOC_HTTP, "/readyz ready, /healthz %ld", h.status);
    }
done:
    c->r->phase[FP_DOC_HTTP].ms = fp_doc_now_ms() - t0;
}

void fp_doc_layer_api(dctx *c)
{
    c->r->phase[FP_DOC_API].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_API].note[0] = 0;
    double t0 = fp_doc_now_ms();
    cJSON *d = fp_doc_det(c, FP_DOC_API);
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
        cJSON_AddNumberToObject(d, "token_ms", fp_doc_r3(h.ms));
        if (h.cc) {
            if (!transport_failure(c, FP_DOC_API, "POST /v1/token", &h))
                fp_doc_hit(c, FP_DOC_API, "HTTP_SERVER_ERROR", "POST /v1/token: %s", h.err);
        } else {
            add_lines(c, FP_DOC_API, FP_DOC_STEP_TOKEN, &h, token, sizeof token);
        }
        free(h.body);
        if (fp_doc_failed(c, FP_DOC_API) || !token[0])
            goto done;
    } else {
        snprintf(token, sizeof token, "%s", c->o->token);
    }
    http_do(c, "GET", "/v1/invoices?limit=1", token, NULL, 1, &h);
    cJSON_AddNumberToObject(d, "invoices_status", h.cc ? 0 : h.status);
    cJSON_AddNumberToObject(d, "invoices_ms", fp_doc_r3(h.ms));
    if (h.cc) {
        if (!transport_failure(c, FP_DOC_API, "GET /v1/invoices", &h))
            fp_doc_hit(c, FP_DOC_API, "HTTP_SERVER_ERROR", "GET /v1/invoices: %s", h.err);
    } else if (add_lines(c, FP_DOC_API, FP_DOC_STEP_INVOICES, &h, NULL, 0) == 0) {
        fp_doc_note(c, FP_DOC_API, "credential accepted, GET /v1/invoices 200");
    }
    free(h.body);
done:
    c->r->phase[FP_DOC_API].ms = fp_doc_now_ms() - t0;
}

/* The clock, against the server's Date (from any HTTP answer).  When TLS
 * failed on the validity dates, one unverified request fetches the Date so
 * that a wrong local clock is named instead of the certificate. */
void fp_doc_check_clock(dctx *c)
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
    cJSON *d = fp_doc_det(c, FP_DOC_LOCAL);
    char ts[32];
    fp_doc_fmt_time(c->server_date, ts, sizeof ts);
    cJSON_AddStringToObject(d, "server_date", ts);
    long skew = (long)(time(NULL) - c->server_date);
    cJSON_AddNumberToObject(d, "clock_skew_s", (double)skew);
    if (skew > 300 || skew < -300)
        fp_doc_hit(
            c, FP_DOC_LOCAL, "CLOCK_SKEW",
            "the local clock is %ld s %s the server's Date (%s); TLS validity checks use the "
            "local clock",
            skew < 0 ? -skew : skew, skew < 0 ? "behind" : "ahead of", ts);
}
