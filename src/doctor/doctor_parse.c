/* doctor_parse.c — the doctor's parsers and answer classifiers (see
 * doctor_parse.h).  No sockets, no clocks: everything here is a function
 * of its arguments, so the fuzz targets can call it millions of times. */
#include "doctor_parse.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- URL and options ---- */

/* Digits only, 1..65535; -1 otherwise.  (strtol would take " +80".) */
static int parse_port(const char *s, size_t n)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

/* A host name or address may not hold spaces or control bytes: they would
 * end up in the DNS query, the TLS SNI and curl's URL. */
static int host_ok(const char *h, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == 0x7f)
            return 0;
    return 1;
}

int fp_doctor_parse_url(const char *url, fp_doctor_report *r, fp_err *err)
{
    const char *p;
    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(r->scheme, sizeof r->scheme, "https");
        p = url + 8;
        r->port = 443;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        snprintf(r->scheme, sizeof r->scheme, "http");
        p = url + 7;
        r->port = 80;
    } else {
        return fp_fail(err, FP_EINVAL, "the URL must start with https:// or http://");
    }
    /* user[:password]@ before the host: skipped (the doctor sends none) */
    size_t auth_len = strcspn(p, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (p[i] == '@')
            at = p + i;
    if (at)
        p = at + 1;
    const char *hend;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend)
            return fp_fail(err, FP_EINVAL, "unterminated [ in the URL");
        size_t hl = (size_t)(hend - p - 1);
        if (hl >= sizeof r->host || !host_ok(p + 1, hl))
            return fp_fail(err, FP_EINVAL, "no host (or too long) in the URL");
        memcpy(r->host, p + 1, hl);
        r->host[hl] = 0;
        unsigned char a6[16];
        if (inet_pton(AF_INET6, r->host, a6) != 1) /* [ ] is for IPv6 addresses only */
            return fp_fail(err, FP_EINVAL, "[%s] in the URL is not an IPv6 address", r->host);
        hend++;
    } else {
        hend = p + strcspn(p, ":/?#");
        size_t hl = (size_t)(hend - p);
        if (hl >= sizeof r->host || !host_ok(p, hl))
            return fp_fail(err, FP_EINVAL, "no host (or too long) in the URL");
        memcpy(r->host, p, hl);
        r->host[hl] = 0;
    }
    if (*hend == ':') {
        size_t pl = strcspn(hend + 1, "/?#");
        int port = parse_port(hend + 1, pl);
        if (port < 0)
            return fp_fail(err, FP_EINVAL, "bad port in the URL");
        r->port = port;
    } else if (*hend && !strchr("/?#", *hend)) {
        return fp_fail(err, FP_EINVAL, "bad URL");
    }
    snprintf(r->url, sizeof r->url, "%s", url);
    return 0;
}

static int ip_literal(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int fp_doctor_parse_resolve(const char *spec, char *host, size_t hostsz, int *port, char *addr,
                            size_t addrsz)
{
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || !host_ok(spec, (size_t)(c1 - spec)) || (size_t)(c1 - spec) >= hostsz)
        return -1;
    int p = parse_port(c1 + 1, (size_t)(c2 - c1 - 1));
    if (p < 0)
        return -1;
    const char *a = c2 + 1;
    size_t al = strlen(a);
    if (al >= 2 && a[0] == '[' && a[al - 1] == ']') {
        a++;
        al -= 2;
    }
    if (al == 0 || al >= addrsz)
        return -1;
    memcpy(host, spec, (size_t)(c1 - spec));
    host[c1 - spec] = 0;
    memcpy(addr, a, al);
    addr[al] = 0;
    if (!ip_literal(addr))
        return -1;
    *port = p;
    return 0;
}

/* One --dns-server entry: "IPv4[:port]", "IPv6" or "[IPv6]:port". */
static int dns_server_ok(const char *t, size_t n)
{
    char buf[128];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, t, n);
    buf[n] = 0;
    unsigned char a[16];
    const char *port = NULL;
    if (buf[0] == '[') {
        char *e = strchr(buf, ']');
        if (!e)
            return 0;
        *e = 0;
        if (e[1] != ':')
            return 0; /* c-ares takes "[addr]" only with a port */
        port = e + 2;
        if (inet_pton(AF_INET6, buf + 1, a) != 1)
            return 0;
    } else if (inet_pton(AF_INET6, buf, a) != 1) {
        char *colon = strchr(buf, ':');
        if (colon) {
            *colon = 0;
            port = colon + 1;
        }
        if (inet_pton(AF_INET, buf, a) != 1)
            return 0;
    }
    return !port || parse_port(port, strlen(port)) > 0;
}

int fp_doctor_dns_servers_ok(const char *csv)
{
    /* every comma-separated entry must be an address: no empty ones, which
     * c-ares's ares_set_servers_ports_csv refuses */
    if (!csv || !*csv || strlen(csv) >= 512)
        return 0;
    for (const char *p = csv;;) {
        size_t n = strcspn(p, ",");
        if (!dns_server_ok(p, n))
            return 0;
        if (!p[n])
            return 1;
        p += n + 1;
    }
}

int fp_doctor_addr_list_ok(const char *list)
{
    char buf[512];
    if (!list || strlen(list) >= sizeof buf)
        return 0;
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    int n = 0;
    unsigned char a[16];
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save), n++)
        if (n >= 8 || (inet_pton(AF_INET, t, a) != 1 && inet_pton(AF_INET6, t, a) != 1))
            return 0;
    return n > 0;
}

int fp_doctor_no_proxy_covers(const char *np, const char *host)
{
    if (!np || !*np || !host)
        return 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", np);
    char *save = NULL;
    size_t hl = strlen(host);
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (strcmp(t, "*") == 0)
            return 1;
        if (*t == '.')
            t++;
        char *colon = strchr(t, ':');
        if (colon && !strchr(colon + 1, ':'))
            *colon = 0; /* host:port entries: compare the host */
        size_t tl = strlen(t);
        if (tl == 0 || tl > hl)
            continue;
        if (strcasecmp(host + hl - tl, t) == 0 && (tl == hl || host[hl - tl - 1] == '.'))
            return 1;
    }
    return 0;
}

int fp_doctor_parse_proxy(const char *proxy, char *host, size_t hostsz, char *port, size_t portsz)
{
    const char *p = strstr(proxy, "://");
    p = p ? p + 3 : proxy;
    size_t auth_len = strcspn(p, "/");
    for (size_t i = auth_len; i > 0; i--)
        if (p[i - 1] == '@') { /* the last @ ends user:password */
            auth_len -= i;
            p += i;
            break;
        }
    snprintf(port, portsz, "1080");
    size_t hl;
    if (*p == '[') {
        const char *e = memchr(p, ']', auth_len);
        if (!e)
            return -1;
        hl = (size_t)(e - p - 1);
        if (hl == 0 || hl >= hostsz)
            return -1;
        memcpy(host, p + 1, hl);
        host[hl] = 0;
        p = e + 1;
    } else {
        hl = strcspn(p, ":/");
        if (hl == 0 || hl >= hostsz)
            return -1;
        memcpy(host, p, hl);
        host[hl] = 0;
        p += hl;
    }
    if (*p == ':') {
        size_t pl = strcspn(p + 1, "/");
        if (parse_port(p + 1, pl) < 0)
            return -1;
        snprintf(port, portsz, "%.*s", (int)pl, p + 1);
    }
    return host_ok(host, strlen(host)) ? 0 : -1;
}

/* ---- answers ---- */

static int line(fp_doctor_line *out, int max, int n, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int line(fp_doctor_line *out, int max, int n, const char *code, const char *fmt, ...)
{
    if (n >= max)
        return n;
    out[n].code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out[n].msg, sizeof out[n].msg, fmt, ap);
    va_end(ap);
    return n + 1;
}

/* problem+json (and fapiao's other JSON errors): "code" and a message for
 * humans, message_en or RFC 7807's detail. */
static void problem(const cJSON *j, char *code, size_t cn, char *msg, size_t mn)
{
    code[0] = msg[0] = 0;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "code");
    if (cJSON_IsString(c))
        snprintf(code, cn, "%s", c->valuestring);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message_en");
    if (!cJSON_IsString(m))
        m = cJSON_GetObjectItemCaseSensitive(j, "detail");
    if (cJSON_IsString(m))
        snprintf(msg, mn, "%s", m->valuestring);
}

static const char *or_none(const char *s)
{
    return s && *s ? s : "(none)";
}

/* Words of login pages and their URLs (captive portals, web
 * authentication gateways), matched without regard to case. */
static const char *const login_words[] = {
    "login", "log in", "logon", "signin",  "sign in", "sign-in", "portal", "captive",
    "auth",  "wifi",   "wi-fi", "hotspot", "登录",    "登陆",    "认证",   "上网",
};

static int has_login_word(const char *s)
{
    for (size_t i = 0; s && i < sizeof login_words / sizeof login_words[0]; i++)
        if (strcasestr(s, login_words[i]))
            return 1;
    return 0;
}

/* The host of an absolute URL ("scheme://[user@]host[:port]/…") into h,
 * or "" for a relative one. */
static void url_host(const char *url, char *h, size_t n)
{
    h[0] = 0;
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return;
    p += 3;
    size_t len = strcspn(p, "/?#");
    const char *at = memchr(p, '@', len);
    if (at) {
        len -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (*p == '[') {
        const char *e = memchr(p, ']', len);
        len = e ? (size_t)(e - p - 1) : 0;
        p++;
    } else {
        len = strcspn(p, ":/?#");
    }
    snprintf(h, n, "%.*s", (int)len, p);
}

/* A login page or a captive portal answering instead of fapiao: 511
 * Network Authentication Required; a redirect to another host whose URL is
 * a login page's or carries ours along (portals send the client back to
 * it after the login); an HTML page with a password field or a form and a
 * login word.  The reason into why, 1; else 0. */
static int captive_portal(const fp_doctor_answer *a, char *why, size_t n)
{
    long st = a->status;
    const char *body = a->body ? a->body : "";
    if (st == 511) {
        snprintf(why, n, "511 Network Authentication Required");
        return 1;
    }
    if (st >= 300 && st < 400 && a->location && *a->location) {
        char lh[256];
        url_host(a->location, lh, sizeof lh);
        const char *q = strchr(a->location, '?');
        if (lh[0] && a->host && strcasecmp(lh, a->host) != 0 &&
            (has_login_word(a->location) || (q && strcasestr(q, a->host)))) {
            snprintf(why, n, "%ld to %s", st, a->location);
            return 1;
        }
        return 0;
    }
    int html = (a->ctype && strcasestr(a->ctype, "html")) || strcasestr(body, "<html");
    if (!html)
        return 0;
    if (strcasestr(body, "type=\"password\"") || strcasestr(body, "type='password'") ||
        strcasestr(body, "type=password")) {
        snprintf(why, n, "%ld, an HTML page with a password field", st);
        return 1;
    }
    if (strcasestr(body, "<form") && has_login_word(body)) {
        snprintf(why, n, "%ld, an HTML login form", st);
        return 1;
    }
    return 0;
}

static int classify_readyz(const fp_doctor_answer *a, const cJSON *j, const char *code,
                           const char *pm, cJSON *d, fp_doctor_line *out, int max)
{
    int n = 0;
    const char *sep = pm[0] ? "; " : "";
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(j, "checks");
    int fapiao = cJSON_IsArray(checks) ||
                 (code[0] && a->body && strstr(a->body, "urn:fapiao:error:") != NULL);
    if (d) {
        cJSON_AddBoolToObject(d, "fapiao", fapiao);
        if (cJSON_IsArray(checks))
            cJSON_AddItemToObject(d, "checks", cJSON_Duplicate(checks, 1));
    }
    long st = a->status;
    char portal[600];
    if (!fapiao && captive_portal(a, portal, sizeof portal)) {
        if (d)
            cJSON_AddStringToObject(d, "captive_portal", portal);
        n = line(out, max, n, "HTTP_CAPTIVE_PORTAL",
                 "GET /readyz → %s: a login page (captive portal or web authentication) answers "
                 "instead of fapiao",
                 portal);
    } else if (st >= 300 && st < 400) {
        if (d)
            cJSON_AddStringToObject(d, "location", a->location ? a->location : "");
        n = line(out, max, n, "HTTP_REDIRECT", "GET /readyz → %ld %s", st,
                 a->location && *a->location ? a->location : "(no Location)");
    } else if (st == 429) {
        n = line(out, max, n, "HTTP_RATE_LIMITED", "429 Too Many Requests, Retry-After: %s%s%s",
                 or_none(a->retry_after), sep, pm);
    } else if (st == 503 && cJSON_IsArray(checks)) {
        /* fapiao's /readyz: "status" is "not_ready", or "degraded" when the
         * store is unusable and writes get 503 DEGRADED (reads go on) */
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
        int degraded = cJSON_IsString(status) && strcmp(status->valuestring, "degraded") == 0;
        /* "failstop": the store saw an I/O error, corruption or a replaced
         * file and stopped every write until an operator checks it and
         * restarts (docs/storage.md); no retry or wait fixes it */
        int failstop = cJSON_IsString(status) && strcmp(status->valuestring, "failstop") == 0;
        const cJSON *cause = cJSON_GetObjectItemCaseSensitive(j, "failstop");
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(j, "failstop_reason");
        char failing[256] = "";
        const cJSON *it;
        cJSON_ArrayForEach(it, checks)
        {
            const cJSON *ok = cJSON_GetObjectItemCaseSensitive(it, "ok");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            if (cJSON_IsFalse(ok) && cJSON_IsString(nm)) {
                size_t l = strlen(failing);
                snprintf(failing + l, sizeof failing - l, "%s%s", l ? ", " : "", nm->valuestring);
            }
        }
        if (failstop)
            n = line(out, max, n, "STORE_FAILSTOP", "/readyz: fail-stop, cause %s: %s",
                     cJSON_IsString(cause) ? cause->valuestring : "(not named)",
                     cJSON_IsString(why) ? why->valuestring : "(no reason given)");
        else if (degraded)
            n = line(out, max, n, "HTTP_DEGRADED",
                     "/readyz: degraded (writes refused); failing checks: %s; Retry-After: %s",
                     failing[0] ? failing : "(none named)", or_none(a->retry_after));
        else
            n = line(out, max, n, "HTTP_NOT_READY", "/readyz: not ready; failing checks: %s",
                     failing[0] ? failing : "(none named)");
    } else if (st == 503 && strcmp(code, "DEGRADED") == 0) {
        n = line(out, max, n, "HTTP_DEGRADED", "503 DEGRADED, Retry-After: %s%s%s",
                 or_none(a->retry_after), sep, pm);
    } else if (st >= 500) {
        n = line(out, max, n, "HTTP_SERVER_ERROR", "GET /readyz → %ld%s%s%s%s", st,
                 code[0] ? " " : "", code, pm[0] ? ": " : "", pm);
    } else if (!fapiao) {
        n = line(out, max, n, "HTTP_WRONG_SERVICE",
                 "GET /readyz → %ld %s, not a fapiao answer (no \"checks\", no problem code)", st,
                 a->ctype ? a->ctype : "");
    } else if (st == 200 && cJSON_IsArray(checks)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, checks)
        {
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(it, "warning");
            const cJSON *rem = cJSON_GetObjectItemCaseSensitive(it, "remaining");
            if (cJSON_IsTrue(w))
                n = line(out, max, n, "NUMBER_RANGE_LOW", "%.0f invoice numbers left",
                         cJSON_IsNumber(rem) ? rem->valuedouble : 0.0);
        }
    }
    return n;
}

static int classify_token(const fp_doctor_answer *a, const cJSON *j, const char *code,
                          const char *pm, cJSON *d, fp_doctor_line *out, int max, char *token,
                          size_t tokensz)
{
    long st = a->status;
    if (st == 200) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(j, "scope");
        if (cJSON_IsString(sc) && d)
            cJSON_AddStringToObject(d, "scope", sc->valuestring);
        if (!cJSON_IsString(t) || !t->valuestring[0])
            return line(out, max, 0, "HTTP_WRONG_SERVICE",
                        "POST /v1/token → 200 without an access_token: not fapiao's token "
                        "endpoint");
        if (token && tokensz)
            snprintf(token, tokensz, "%s", t->valuestring);
        return 0;
    }
    if (st == 401)
        return line(out, max, 0, "AUTH_BAD_CREDENTIALS", "POST /v1/token → 401 %s: %s", code, pm);
    if (st == 403 && strcmp(code, "IP_NOT_ALLOWED") == 0)
        return line(out, max, 0, "AUTH_IP_NOT_ALLOWED", "POST /v1/token → 403: %s", pm);
    if (st == 429)
        return line(out, max, 0, "HTTP_RATE_LIMITED", "POST /v1/token → 429%s%s, Retry-After: %s",
                    code[0] ? " " : "", code, or_none(a->retry_after));
    if (st == 404 || st == 405)
        return line(out, max, 0, "HTTP_WRONG_SERVICE",
                    "POST /v1/token → %ld: no token endpoint at this address", st);
    return line(out, max, 0, st >= 500 ? "HTTP_SERVER_ERROR" : "AUTH_BAD_CREDENTIALS",
                "POST /v1/token → %ld %s: %s", st, code, pm);
}

static int classify_invoices(const fp_doctor_answer *a, const char *code, const char *pm,
                             fp_doctor_line *out, int max)
{
    long st = a->status;
    if (st == 200)
        return 0;
    if (st == 401 && strcmp(code, "TOKEN_EXPIRED") == 0)
        return line(out, max, 0, "AUTH_TOKEN_EXPIRED", "GET /v1/invoices → 401 TOKEN_EXPIRED");
    if (st == 401)
        return line(out, max, 0, "AUTH_BAD_CREDENTIALS", "GET /v1/invoices → 401 %s: %s", code, pm);
    if (st == 403 && strcmp(code, "IP_NOT_ALLOWED") == 0)
        return line(out, max, 0, "AUTH_IP_NOT_ALLOWED", "GET /v1/invoices → 403 IP_NOT_ALLOWED: %s",
                    pm);
    if (st == 403)
        return line(out, max, 0, "AUTH_SCOPE_MISSING", "GET /v1/invoices → 403 %s: %s", code, pm);
    if (st == 429)
        return line(out, max, 0, "HTTP_RATE_LIMITED", "GET /v1/invoices → 429, Retry-After: %s",
                    or_none(a->retry_after));
    if (st >= 500)
        return line(out, max, 0, "HTTP_SERVER_ERROR", "GET /v1/invoices → %ld %s", st, code);
    return line(out, max, 0, "AUTH_SCOPE_MISSING", "GET /v1/invoices → %ld %s", st, code);
}

int fp_doctor_classify(int step, const fp_doctor_answer *a, cJSON *details, fp_doctor_line *out,
                       int max, char *token, size_t tokensz)
{
    if (token && tokensz)
        token[0] = 0;
    if (!a || !out || max <= 0)
        return 0;
    cJSON *j = a->body ? cJSON_Parse(a->body) : NULL;
    char code[64], pm[256];
    problem(j, code, sizeof code, pm, sizeof pm);
    if (code[0] && details)
        cJSON_AddStringToObject(details, "problem_code", code);
    int n = 0;
    switch (step) {
    case FP_DOC_STEP_READYZ:
        n = classify_readyz(a, j, code, pm, details, out, max);
        break;
    case FP_DOC_STEP_TOKEN:
        n = classify_token(a, j, code, pm, details, out, max, token, tokensz);
        break;
    case FP_DOC_STEP_INVOICES:
        n = classify_invoices(a, code, pm, out, max);
        break;
    default:
        break;
    }
    cJSON_Delete(j);
    return n;
}
