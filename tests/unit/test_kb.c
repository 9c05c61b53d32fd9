/* test_kb.c — the knowledge base: every finding code has a complete
 * bilingual article, no article is an orphan, the tokenizer splits as
 * documented, and realistic questions find the right article (top 3). */
#include "check.h"
#include "fapiao/findings.h"
#include "fapiao/kb.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

static const char *const sections[] = {"## 现象 / Symptoms", "## 原因 / Cause",
                                       "## 排查 / How to check", "## 解决 / Fix"};

static int count_cjk(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i + 2 < n; i++) {
        unsigned char b = (unsigned char)s[i];
        /* U+4E00..U+9FFF is E4 B8 80 .. E9 BE BF */
        if (b >= 0xE4 && b <= 0xE9 && ((unsigned char)s[i + 1] & 0xC0) == 0x80)
            c++;
    }
    return c;
}

static int count_ascii_letters(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z');
    return c;
}

static void test_articles(const fp_kb *kb)
{
    int n;
    const fp_finding *f = fp_findings(&n);
    for (int i = 0; i < n; i++) {
        check_ctx("article %s", f[i].code);
        const fp_kb_article *a = fp_kb_get(kb, f[i].code);
        if (!CHECK_MSG(a != NULL, "kb/%s.md is missing", f[i].code))
            continue;
        /* first line: "# CODE — zh / en" */
        char head[80];
        snprintf(head, sizeof head, "# %s \xe2\x80\x94 ", f[i].code);
        CHECK(strncmp(a->text, head, strlen(head)) == 0);
        CHECK(count_cjk(a->title_zh, strlen(a->title_zh)) > 0);
        CHECK(count_ascii_letters(a->title_en, strlen(a->title_en)) >= 3);
        CHECK(strcmp(a->title_zh, a->title_en) != 0);
        const char *prev = a->text;
        for (size_t s = 0; s < NCASES(sections); s++) {
            const char *body;
            size_t len;
            check_ctx("article %s section \"%s\"", f[i].code, sections[s]);
            const char *at = strstr(a->text, sections[s]);
            if (!CHECK_MSG(at != NULL, "heading missing"))
                continue;
            CHECK_MSG(at > prev, "sections out of order");
            prev = at;
            if (!CHECK(fp_kb_section(a, sections[s], &body, &len) == 0))
                continue;
            CHECK_MSG(count_cjk(body, len) >= 10, "too little Chinese (%d)", count_cjk(body, len));
            CHECK_MSG(count_ascii_letters(body, len) >= 40, "too little English (%d)",
                      count_ascii_letters(body, len));
        }
        /* roughly 25..80 lines */
        int lines = 0;
        for (size_t k = 0; k < a->len; k++)
            lines += a->text[k] == '\n';
        check_ctx("article %s", f[i].code);
        CHECK_MSG(lines >= 25 && lines <= 80, "%d lines", lines);
    }
    check_ctx("%s", "");
}

static void test_no_orphans(void)
{
    DIR *d = opendir(FP_SOURCE_DIR "/kb");
    if (!CHECK(d != NULL))
        return;
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".md") != 0)
            continue;
        char code[256];
        snprintf(code, sizeof code, "%.*s", (int)(n - 3), e->d_name);
        check_ctx("kb/%s", e->d_name);
        CHECK_MSG(fp_finding_get(code) != NULL, "article for unknown finding code %s", code);
        seen++;
    }
    closedir(d);
    int nf;
    fp_findings(&nf);
    check_ctx("%s", "");
    CHECK_EQ_INT(seen, nf);
}

/* --- tokenizer ------------------------------------------------------- */

typedef struct toks {
    char buf[1024];
    size_t len;
} toks;

static void collect(const char *t, size_t n, void *arg)
{
    toks *c = arg;
    if (c->len + n + 2 < sizeof c->buf) {
        if (c->len)
            c->buf[c->len++] = '|';
        memcpy(c->buf + c->len, t, n);
        c->len += n;
        c->buf[c->len] = 0;
    }
}

static void test_tokenizer(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},
        {"Hello, World", "hello|world"},
        {"curl: (7) Failed to connect", "curl|7|fail|connect"},
        {"TLS_CERT_EXPIRED", "tls_cert_expired|tls|cert|expir"},
        {"certificate expires expiring expired", "certificat|expir|expir|expir"},
        {"_x_", "x|x"},
        {"证书过期", "证书|书过|过期"},
        {"证", "证"},
        {"证 书", "证|书"},
        {"号码段用完了！", "号码|码段|段用|用完|完了"},
        {"TLS证书", "tls|证书"},
        {"中x文", "中|x|文"},
        {"429 Too Many Requests", "429|too|many|request"},
        {"\xff\xfe\xe8\xaf", ""}, /* invalid UTF-8 is skipped */
        {"\xe8\xaf\x81\xff\xe4\xb9\xa6", "证|书"},
        {"x509: certificate signed by unknown authority", "x509|certificat|sign|unknown|authority"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        toks t = {{0}, 0};
        check_ctx("tokenize[%zu] \"%s\"", i, cases[i].in);
        fp_kb_tokenize(cases[i].in, strlen(cases[i].in), collect, &t);
        CHECK_EQ_STR(t.buf, cases[i].want);
    }
    /* a very long word is cut, not overflowed */
    char big[500];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    toks t = {{0}, 0};
    check_ctx("tokenize long word");
    CHECK_EQ_INT(fp_kb_tokenize(big, strlen(big), collect, &t), 1);
    CHECK_EQ_INT(strlen(t.buf), FP_KB_MAX_TOKEN);
    check_ctx("%s", "");
}

/* --- search quality -------------------------------------------------- */

static void test_search_quality(const fp_kb *kb)
{
    /* query, then up to three acceptable codes; one must be in the top 3 */
    static const struct {
        const char *q;
        const char *want[3];
    } cases[] = {
        {"证书过期了", {"TLS_CERT_EXPIRED"}},
        {"certificate expired", {"TLS_CERT_EXPIRED"}},
        {"连接被拒绝", {"TCP_REFUSED"}},
        {"curl: (7) Failed to connect to host port 8443: Connection refused", {"TCP_REFUSED"}},
        {"PKIX path building failed", {"TLS_UNTRUSTED_ISSUER", "TLS_CHAIN_INCOMPLETE"}},
        {"域名解析失败", {"DNS_NXDOMAIN", "DNS_SERVFAIL"}},
        {"代理", {"PROXY_ENV_SET", "PROXY_UNREACHABLE"}},
        {"429 too many requests", {"HTTP_RATE_LIMITED"}},
        {"号码段用完了", {"NUMBER_RANGE_EXHAUSTED"}},
        {"系统时间不对", {"CLOCK_SKEW"}},
        {"token expired", {"AUTH_TOKEN_EXPIRED"}},
        {"缺少中间证书", {"TLS_CHAIN_INCOMPLETE"}},
        {"x509: certificate signed by unknown authority",
         {"TLS_UNTRUSTED_ISSUER", "TLS_SELF_SIGNED", "TLS_CHAIN_INCOMPLETE"}},
        {"连接超时", {"TCP_TIMEOUT"}},
        {"curl: (28) Connection timed out", {"TCP_TIMEOUT"}},
        {"Could not resolve host", {"DNS_NXDOMAIN", "DNS_SERVFAIL"}},
        {"证书和域名不匹配", {"TLS_HOSTNAME_MISMATCH"}},
        {"no alternative certificate subject name matches target host name",
         {"TLS_HOSTNAME_MISMATCH"}},
        {"自签名证书", {"TLS_SELF_SIGNED"}},
        {"Connection reset by peer", {"TCP_RESET"}},
        {"连接被重置", {"TCP_RESET"}},
        {"wrong version number", {"TLS_PLAIN_HTTP"}},
        {"证书快到期了", {"TLS_CERT_EXPIRING_SOON"}},
        {"certificate expires within 30 days", {"TLS_CERT_EXPIRING_SOON"}},
        {"证书被吊销", {"TLS_CERT_REVOKED"}},
        {"访问令牌过期", {"AUTH_TOKEN_EXPIRED"}},
        {"IP 不在白名单", {"AUTH_IP_NOT_ALLOWED"}},
        {"client_secret 错误", {"AUTH_BAD_CREDENTIALS"}},
        {"没有权限 403", {"AUTH_SCOPE_MISSING", "AUTH_IP_NOT_ALLOWED"}},
        {"请求太频繁被限流", {"HTTP_RATE_LIMITED"}},
        {"服务降级 503", {"HTTP_DEGRADED", "HTTP_NOT_READY"}},
        {"readyz not ready", {"HTTP_NOT_READY"}},
        {"存储停写 fail-stop", {"STORE_FAILSTOP"}},
        {"503 STORE_FAILSTOP disk I/O error", {"STORE_FAILSTOP"}},
        {"号码快用完了", {"NUMBER_RANGE_LOW"}},
        {"invoice number range running out", {"NUMBER_RANGE_LOW"}},
        {"DNS 查询超时", {"DNS_TIMEOUT"}},
        {"No route to host", {"TCP_UNREACHABLE"}},
        {"protocol version handshake failure TLS 1.0", {"TLS_PROTOCOL_MISMATCH"}},
        {"SHA1 key too weak", {"TLS_WEAK_KEY"}},
        {"certificate is not yet valid", {"TLS_CERT_NOT_YET_VALID", "CLOCK_SKEW"}},
        {"clock is wrong NTP", {"CLOCK_SKEW"}},
        {"proxy 407 CONNECT tunnel failed", {"PROXY_UNREACHABLE"}},
        {"NO_PROXY", {"PROXY_ENV_SET"}},
        {"301 redirect Location", {"HTTP_REDIRECT"}},
        {"502 Bad Gateway", {"HTTP_SERVER_ERROR"}},
    };
    int hits_total = 0;
    for (size_t i = 0; i < NCASES(cases); i++) {
        fp_kb_hit h[3];
        fp_err err = {0};
        check_ctx("search[%zu] \"%s\"", i, cases[i].q);
        int n = fp_kb_search(kb, cases[i].q, h, 3, &err);
        if (!CHECK(n > 0))
            continue;
        int ok = 0;
        for (int k = 0; k < n; k++)
            for (int w = 0; w < 3 && cases[i].want[w]; w++)
                ok |= strcmp(h[k].code, cases[i].want[w]) == 0;
        CHECK_MSG(ok, "want %s in top 3, got %s %s %s", cases[i].want[0], h[0].code,
                  n > 1 ? h[1].code : "-", n > 2 ? h[2].code : "-");
        hits_total += ok;
        for (int k = 1; k < n; k++)
            CHECK(h[k - 1].score >= h[k].score);
    }
    check_ctx("%s", "");
    printf("search quality: %d/%zu queries found their article in the top 3\n", hits_total,
           NCASES(cases));
}

/* --- API edges ------------------------------------------------------- */

static void test_api(void)
{
    fp_kb *kb = NULL;
    fp_err err = {0};
    CHECK_EQ_INT(fp_kb_new(&kb, &err), 0);
    const char *doc = "# A_B — 甲乙 / Alpha beta\n\n## 现象 / Symptoms\n\nalpha 问题\n";
    CHECK_EQ_INT(fp_kb_add(kb, "A_B", doc, strlen(doc), &err), 0);
    CHECK_EQ_INT(fp_kb_add(kb, "A_B", doc, strlen(doc), &err), FP_ECONFLICT);
    CHECK_EQ_INT(fp_kb_add(kb, "bad code", doc, strlen(doc), &err), FP_EINVAL);
    CHECK_EQ_INT(fp_kb_add(kb, "NOTITLE", "no heading", 10, &err), FP_EINVAL);
    CHECK_EQ_INT(fp_kb_add(kb, "EMPTY", "", 0, &err), FP_EINVAL);
    CHECK_EQ_INT(fp_kb_count(kb), 1);
    const fp_kb_article *a = fp_kb_get(kb, "A_B");
    if (CHECK(a != NULL)) {
        CHECK_EQ_STR(a->title_zh, "甲乙");
        CHECK_EQ_STR(a->title_en, "Alpha beta");
    }
    CHECK(fp_kb_get(kb, "NOPE") == NULL);
    fp_kb_hit h[2];
    CHECK_EQ_INT(fp_kb_search(kb, "alpha", h, 2, &err), 1);
    CHECK_EQ_INT(fp_kb_search(kb, "问题", h, 2, &err), 1);
    CHECK_EQ_INT(fp_kb_search(kb, "zzz", h, 2, &err), 0);
    CHECK_EQ_INT(fp_kb_search(kb, "", h, 2, &err), 0);
    CHECK_EQ_INT(fp_kb_search(kb, "alpha", h, 0, &err), 0);
    CHECK_EQ_INT(fp_kb_search(NULL, "alpha", h, 2, &err), FP_EINVAL);
    char *big = malloc(FP_KB_MAX_FILE + 2);
    if (CHECK(big != NULL)) {
        memset(big, 'x', FP_KB_MAX_FILE + 1);
        big[0] = '#', big[1] = ' ';
        CHECK_EQ_INT(fp_kb_add(kb, "BIG", big, FP_KB_MAX_FILE + 1, &err), FP_ERANGE);
        CHECK_EQ_INT(fp_kb_add(kb, "BIG", big, FP_KB_MAX_FILE, &err), 0);
        free(big);
    }
    fp_kb_free(kb);
    fp_kb_free(NULL);
    fp_kb *none = NULL;
    CHECK_EQ_INT(fp_kb_load_dir(FP_SOURCE_DIR "/no-such-kb-dir", &none, &err), FP_ENOTFOUND);
    CHECK(none == NULL);
}

/* The doctor loads only its verdict's article: same text as the full load. */
static void test_load_one(const fp_kb *all)
{
    fp_err err = {0};
    fp_kb *one = NULL;
    CHECK_EQ_INT(fp_kb_load_one(FP_SOURCE_DIR "/kb", "TLS_CERT_EXPIRED", &one, &err), 0);
    if (CHECK(one != NULL)) {
        CHECK_EQ_INT(fp_kb_count(one), 1);
        const fp_kb_article *a = fp_kb_get(one, "TLS_CERT_EXPIRED");
        const fp_kb_article *b = fp_kb_get(all, "TLS_CERT_EXPIRED");
        const char *s1 = NULL, *s2 = NULL;
        size_t n1 = 0, n2 = 0;
        if (CHECK(a && b) && CHECK_EQ_INT(fp_kb_section(a, "## 解决", &s1, &n1), 0) &&
            CHECK_EQ_INT(fp_kb_section(b, "## 解决", &s2, &n2), 0))
            CHECK(n1 == n2 && n1 > 0 && memcmp(s1, s2, n1) == 0);
        CHECK(fp_kb_get(one, "TCP_REFUSED") == NULL);
        fp_kb_free(one);
    }
    one = NULL;
    CHECK_EQ_INT(fp_kb_load_one(FP_SOURCE_DIR "/kb", "NO_SUCH_CODE", &one, &err), 0);
    if (CHECK(one != NULL))
        CHECK_EQ_INT(fp_kb_count(one), 0);
    fp_kb_free(one);
    one = NULL;
    CHECK_EQ_INT(fp_kb_load_one(FP_SOURCE_DIR "/kb", "../etc/passwd", &one, &err), FP_EINVAL);
    CHECK(one == NULL);
}

int main(void)
{
    fp_kb *kb = NULL;
    fp_err err = {0};
    int rc = fp_kb_load_dir(FP_SOURCE_DIR "/kb", &kb, &err);
    if (!CHECK_MSG(rc == 0, "load kb: %s", err.msg))
        return check_summary();
    test_articles(kb);
    test_no_orphans();
    test_tokenizer();
    test_search_quality(kb);
    test_api();
    test_load_one(kb);
    fp_kb_free(kb);
    return check_summary();
}
