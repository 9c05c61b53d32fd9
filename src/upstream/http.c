/* http.c — one call to the tax platform over libcurl: seal the request,
 * POST it with the headers of docs/upstream.md §1, open the answer.
 *
 * What a transport failure means for an upload is the point here: when
 * nothing was sent (DNS, refused, TLS, a reset before the request went
 * out) a retry is safe (FP_UP_CONNECT); once the request was sent, a
 * timeout or a dropped connection leaves its outcome unknown
 * (FP_UP_TIMEOUT_UNKNOWN), and an upload must then be looked up by its
 * sllsh before it is sent again (docs/upstream.md §4).  curl's
 * CURLINFO_REQUEST_SIZE tells the two apart. */
#include "fapiao/upstream.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sink {
    char *p;
    size_t len, cap;
    int over;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;
    if (s->len + n + 1 > 2 * (size_t)FP_UP_MAX_BODY) {
        s->over = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *p = realloc(s->p, cap);
        if (!p)
            return 0;
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, ptr, n);
    s->len += n;
    s->p[s->len] = 0;
    return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct curl_slist *headers(const fp_upstream_conf *c, const char *fwbm)
{
    const struct {
        const char *name, *value;
    } h[] = {
        {"Content-Type", "text/plain; charset=utf-8"},
        {"fwbm", fwbm},
        {"nlbm", c->nlbm ? c->nlbm : "202007"},
        {"jrdwptbh", c->jrdwptbh},
        {"sydwptbh", c->sydwptbh ? c->sydwptbh : c->jrdwptbh},
        {"sxcsbz", c->sandbox ? "1" : "0"},
        {"ylbm", c->sandbox ? c->ylbm : NULL},
        {"access_signature", ""}, /* sent empty by both public SDKs */
    };
    struct curl_slist *l = NULL;
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        if (!h[i].value)
            continue;
        char line[512];
        /* "name;" is curl's way of sending a header with an empty value */
        snprintf(line, sizeof line, *h[i].value ? "%s: %s" : "%s;", h[i].name, h[i].value);
        struct curl_slist *n = curl_slist_append(l, line);
        if (!n) {
            curl_slist_free_all(l);
            return NULL;
        }
        l = n;
    }
    return l;
}

/* A failed transfer → kind: was anything sent? */
static fp_up_kind transport(CURL *h, CURLcode cc, const sink *s, fp_up_result *res)
{
    long sent = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
    snprintf(res->message, sizeof res->message, "%s", curl_easy_strerror(cc));
    if (s->over)
        return res->kind = FP_UP_PROTOCOL;
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return res->kind = FP_UP_CONNECT;
    default:
        return res->kind = sent > 0 ? FP_UP_TIMEOUT_UNKNOWN : FP_UP_CONNECT;
    }
}

fp_up_kind fp_up_call(const fp_upstream_conf *c, const char *fwbm, const cJSON *request,
                      cJSON **data, fp_up_result *res)
{
    *data = NULL;
    memset(res, 0, sizeof *res);
    char url[1024];
    if (!c->url || !c->jrdwptbh || fp_up_url(c, fwbm, url, sizeof url)) {
        snprintf(res->message, sizeof res->message, "upstream URL or unit number not configured");
        return res->kind = FP_UP_LOCAL;
    }
    char *json = cJSON_PrintUnformatted(request);
    char *b64 = NULL;
    fp_err err = {0};
    if (!json || fp_up_seal(c->key, json, strlen(json), &b64, &err)) {
        free(json);
        snprintf(res->message, sizeof res->message, "%s", err.msg[0] ? err.msg : "out of memory");
        return res->kind = FP_UP_LOCAL;
    }
    free(json);
    pthread_once(&curl_once, curl_init);
    CURL *h = curl_easy_init();
    struct curl_slist *hl = headers(c, fwbm);
    sink s = {0};
    fp_up_kind k;
    if (!h || !hl) {
        snprintf(res->message, sizeof res->message, "out of memory");
        k = res->kind = FP_UP_LOCAL;
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, b64);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* answers may be gzip'd */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 5000));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->timeout_ms > 0 ? c->timeout_ms : 30000));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    if (c->ca_file) { /* that file only, not also /etc/ssl/certs per connection */
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        k = transport(h, cc, &s, res);
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    k = fp_up_open(c->key, (int)status, s.p ? s.p : "", s.len, data, res);
out:
    curl_slist_free_all(hl);
    if (h)
        curl_easy_cleanup(h);
    free(s.p);
    free(b64);
    return k;
}
