/* test_kb.c — the knowledge base: every finding code has an article, every
 * article (finding codes, kb/cases/, kb/alerts/) is complete and bilingual,
 * no two articles are near-identical, no top-level article is an orphan,
 * the tokenizer splits as documented, and realistic questions find the
 * right article (top 3; tests/unit/test_kb_quality.c measures the full
 * query set). */
#include "check.h"
#include "fapiao/findings.h"
#include "fapiao/kb.h"

#include <dirent.h>
#include <stdint.h>
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

/* Every article, whatever its folder: "# CODE — zh / en", the four
 * sections in order, each with Chinese and English text, 25..80 lines. */
static void test_article(const fp_kb_article *a)
{
    check_ctx("article %s", a->code);
    char head[80];
    snprintf(head, sizeof head, "# %s \xe2\x80\x94 ", a->code);
    CHECK(strncmp(a->text, head, strlen(head)) == 0);
    CHECK(count_cjk(a->title_zh, strlen(a->title_zh)) > 0);
    CHECK(count_ascii_letters(a->title_en, strlen(a->title_en)) >= 3);
    CHECK(strcmp(a->title_zh, a->title_en) != 0);
    const char *prev = a->text;
    for (size_t s = 0; s < NCASES(sections); s++) {
        const char *body;
        size_t len;
        check_ctx("article %s section \"%s\"", a->code, sections[s]);
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
    int lines = 0;
    for (size_t k = 0; k < a->len; k++)
        lines += a->text[k] == '\n';
    check_ctx("article %s", a->code);
    CHECK_MSG(lines >= 25 && lines <= 80, "%d lines", lines);
}

static void test_articles(const fp_kb *kb)
{
    int n;
    const fp_finding *f = fp_findings(&n);
    for (int i = 0; i < n; i++) {
        check_ctx("article %s", f[i].code);
        CHECK_MSG(fp_kb_get(kb, f[i].code) != NULL, "kb/%s.md is missing", f[i].code);
    }
    int cases = 0;
    for (int i = 0; i < fp_kb_count(kb); i++) {
        const fp_kb_article *a = fp_kb_at(kb, i);
        test_article(a);
        cases += strncmp(a->code, "CASE_", 5) == 0;
    }
    check_ctx("%s", "");
    /* issue 23: `fapiao kb list` shows at least 200 articles */
    CHECK(cases > 0);
    CHECK_MSG(fp_kb_count(kb) >= 200, "%d articles", fp_kb_count(kb));
    printf("articles: %d in all, %d finding codes, %d cases\n", fp_kb_count(kb), n, cases);
}

/* --- near-duplicates ------------------------------------------------- */

/* Two articles that say the same thing are one.  An article's body (below
 * its title line) becomes the set of its 3-token shingles (the kb's own
 * tokens: stemmed words and CJK bigrams), hashed; two articles are
 * near-identical when the Jaccard index of their sets reaches
 * DUP_THRESHOLD.  The 129 articles of issue 23 peak near 0.1; an article
 * copied with a paragraph dropped and a word changed scores above 0.6. */
#define DUP_THRESHOLD 0.30
#define SHINGLE       3

typedef struct shingles {
    uint64_t win[SHINGLE];
    size_t ntok;
    uint64_t *h;
    size_t n, cap;
} shingles;

static void shingle_tok(const char *t, size_t n, void *arg)
{
    shingles *s = arg;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)t[i]) * 1099511628211ull;
    memmove(s->win, s->win + 1, (SHINGLE - 1) * sizeof *s->win);
    s->win[SHINGLE - 1] = h;
    if (++s->ntok < SHINGLE)
        return;
    uint64_t x = 0;
    for (int i = 0; i < SHINGLE; i++)
        x = (x ^ s->win[i]) * 1099511628211ull + (uint64_t)i;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 512;
        uint64_t *nh = realloc(s->h, cap * sizeof *nh);
        if (!nh)
            return;
        s->h = nh;
        s->cap = cap;
    }
    s->h[s->n++] = x;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* The sorted, distinct shingles of text below its first line. */
static void shingle_body(const char *text, size_t len, shingles *s)
{
    memset(s, 0, sizeof *s);
    const char *nl = memchr(text, '\n', len);
    size_t off = nl ? (size_t)(nl - text) + 1 : len;
    fp_kb_tokenize(text + off, len - off, shingle_tok, s);
    if (s->n)
        qsort(s->h, s->n, sizeof *s->h, cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++)
        if (w == 0 || s->h[w - 1] != s->h[i])
            s->h[w++] = s->h[i];
    s->n = w;
}

static double jaccard(const shingles *a, const shingles *b)
{
    size_t i = 0, j = 0, both = 0;
    while (i < a->n && j < b->n) {
        if (a->h[i] == b->h[j])
            both++, i++, j++;
        else if (a->h[i] < b->h[j])
            i++;
        else
            j++;
    }
    size_t any = a->n + b->n - both;
    return any ? (double)both / (double)any : 1.0;
}

static void test_no_near_duplicates(const fp_kb *kb)
{
    int n = fp_kb_count(kb);
    shingles *sh = calloc((size_t)n, sizeof *sh);
    if (!CHECK(sh != NULL))
        return;
    for (int i = 0; i < n; i++)
        shingle_body(fp_kb_at(kb, i)->text, fp_kb_at(kb, i)->len, &sh[i]);
    double worst = 0;
    const char *wa = "-", *wb = "-";
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double x = jaccard(&sh[i], &sh[j]);
            check_ctx("%s vs %s", fp_kb_at(kb, i)->code, fp_kb_at(kb, j)->code);
            CHECK_MSG(x < DUP_THRESHOLD, "near-identical text: Jaccard %.2f", x);
            if (x > worst)
                worst = x, wa = fp_kb_at(kb, i)->code, wb = fp_kb_at(kb, j)->code;
        }
    check_ctx("%s", "");
    printf("near-duplicates: highest 3-shingle Jaccard %.3f (%s, %s), threshold %.2f\n", worst, wa,
           wb, DUP_THRESHOLD);
    /* the measure does catch a copy: drop the last section, change a word */
    const fp_kb_article *a = fp_kb_get(kb, "TLS_CERT_EXPIRED");
    const char *fix = NULL;
    size_t fixlen = 0;
    if (CHECK(a != NULL) && CHECK(fp_kb_section(a, "## 解决", &fix, &fixlen) == 0)) {
        size_t keep = (size_t)(fix - a->text);
        char *copy = malloc(keep + 1);
        if (CHECK(copy != NULL)) {
            memcpy(copy, a->text, keep);
            copy[keep] = 0;
            char *w = strstr(copy, "expired");
            if (w)
                memcpy(w, "EXPIRES", 7);
            shingles c;
            shingle_body(copy, keep, &c);
            size_t ai = 0;
            while (fp_kb_at(kb, (int)ai) != a)
                ai++;
            check_ctx("copy of TLS_CERT_EXPIRED");
            CHECK(jaccard(&c, &sh[ai]) >= DUP_THRESHOLD);
            free(c.h);
            free(copy);
        }
    }
    check_ctx("%s", "");
    for (int i = 0; i < n; i++)
        free(sh[i].h);
    free(sh);
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

/* kb/cases/ holds only CASE_* articles (the loader skips anything else,
 * which would silently drop an article). */
static void test_case_folder(void)
{
    DIR *d = opendir(FP_SOURCE_DIR "/kb/cases");
    if (!CHECK(d != NULL))
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t n = strlen(e->d_name);
        check_ctx("kb/cases/%s", e->d_name);
        CHECK(n > 8 && strncmp(e->d_name, "CASE_", 5) == 0 &&
              strcmp(e->d_name + n - 3, ".md") == 0);
    }
    closedir(d);
    check_ctx("%s", "");
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
    test_no_near_duplicates(kb);
    test_no_orphans();
    test_case_folder();
    test_tokenizer();
    test_search_quality(kb);
    test_api();
    test_load_one(kb);
    fp_kb_free(kb);
    return check_summary();
}
