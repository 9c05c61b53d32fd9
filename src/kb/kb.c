/* kb.c — loading and BM25-ranking the knowledge base (the tokenizer is
 * tokenize.c).
 *
 * The index is built as articles are added: a global term table (open
 * addressing, term -> id, document frequency) and, per article, a postings
 * array of (term id, weighted term frequency) sorted by id, so scoring a
 * query is one binary search per (article, query term).  Floating point is
 * only used here for scores (never in src/core).  ln() is computed locally
 * so the library needs no libm. */
#include "fapiao/kb.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TITLE_WEIGHT    3
#define BM25_K1         1.2
#define BM25_B          0.75
#define MAX_QUERY_TERMS 256
#define MAX_TERMS       (1u << 22) /* bound on distinct terms */

typedef struct posting {
    uint32_t term;
    uint32_t tf;
} posting;

typedef struct article {
    fp_kb_article pub;
    char code[64];
    posting *post;
    size_t npost;
    size_t dl;    /* weighted document length */
    double prior; /* score factor of its folder (kb_folders) */
} article;

typedef struct term {
    char *s;
    uint32_t df;
    uint32_t seen; /* article index + 1 that last saw it (while indexing) */
    uint32_t slot; /* its posting index in that article */
} term;

struct fp_kb {
    article *arts;
    int narts, cap;
    term *terms;
    uint32_t nterms, tcap;
    uint32_t *hash; /* term id + 1, 0 empty */
    uint32_t hcap;
    size_t total_dl;
};

/* Subfolders read besides the top level (finding codes): an article's code
 * names its folder by its prefix, so one code is one file and `kb show`
 * needs no search.  A folder that does not exist is skipped.
 *
 * prior scales an article's score.  A case is specific to one client
 * ("SEC_E_CERT_EXPIRED (0x80090328)…"); when a generic question ("证书过期了",
 * "connection refused") matches it and the finding's own article about
 * equally, the finding's article comes first, while a question naming the
 * client (java, 0x80090328) still lifts the case far above it.  Measured on
 * tests/data/kb_queries.tsv (docs/doctor.md): 0.9 keeps top-1 and raises
 * top-3; 0.8 and below cost top-1. */
static const struct {
    const char *dir, *prefix;
    double prior;
} kb_folders[] = {
    {"cases", "CASE_", 0.9},   /* client error messages and causes (kb/cases/) */
    {"alerts", "ALERT_", 1.0}, /* alert runbooks (kb/alerts/, generated) */
};

#define NFOLDERS (sizeof kb_folders / sizeof kb_folders[0])

/* The kb_folders row of code's prefix, or -1 for the top level. */
static int folder_index(const char *code)
{
    for (size_t i = 0; i < NFOLDERS; i++)
        if (strncmp(code, kb_folders[i].prefix, strlen(kb_folders[i].prefix)) == 0)
            return (int)i;
    return -1;
}

/* The subfolder code's article lives in, or NULL for the top level. */
static const char *folder_of(const char *code)
{
    int i = folder_index(code);
    return i < 0 ? NULL : kb_folders[i].dir;
}

/* --- term table -------------------------------------------------------- */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static long term_find(const fp_kb *kb, const char *s)
{
    if (!kb->hcap)
        return -1;
    for (uint32_t i = hash_str(s) & (kb->hcap - 1);; i = (i + 1) & (kb->hcap - 1)) {
        uint32_t v = kb->hash[i];
        if (!v)
            return -1;
        if (strcmp(kb->terms[v - 1].s, s) == 0)
            return (long)(v - 1);
    }
}

static int rehash(fp_kb *kb, uint32_t cap)
{
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h)
        return FP_ENOMEM;
    for (uint32_t t = 0; t < kb->nterms; t++) {
        uint32_t i = hash_str(kb->terms[t].s) & (cap - 1);
        while (h[i])
            i = (i + 1) & (cap - 1);
        h[i] = t + 1;
    }
    free(kb->hash);
    kb->hash = h;
    kb->hcap = cap;
    return 0;
}

/* Returns the term id of s, adding it if new; negative on failure. */
static long term_intern(fp_kb *kb, const char *s, size_t n)
{
    long t = term_find(kb, s);
    if (t >= 0)
        return t;
    if (kb->nterms >= MAX_TERMS)
        return FP_ERANGE;
    if ((kb->nterms + 1) * 2 > kb->hcap && rehash(kb, kb->hcap ? kb->hcap * 2 : 1024) < 0)
        return FP_ENOMEM;
    if (kb->nterms == kb->tcap) {
        uint32_t cap = kb->tcap ? kb->tcap * 2 : 1024;
        term *nt = realloc(kb->terms, cap * sizeof *nt);
        if (!nt)
            return FP_ENOMEM;
        kb->terms = nt;
        kb->tcap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return FP_ENOMEM;
    memcpy(copy, s, n + 1);
    kb->terms[kb->nterms] = (term){.s = copy};
    uint32_t i = hash_str(copy) & (kb->hcap - 1);
    while (kb->hash[i])
        i = (i + 1) & (kb->hcap - 1);
    kb->hash[i] = kb->nterms + 1;
    return (long)kb->nterms++;
}

/* --- indexing ---------------------------------------------------------- */

typedef struct index_ctx {
    fp_kb *kb;
    article *a;
    uint32_t self; /* article index + 1 */
    size_t cap;
    uint32_t weight;
    int rc;
} index_ctx;

static void index_tok(const char *tok, size_t n, void *arg)
{
    index_ctx *c = arg;
    if (c->rc < 0)
        return;
    long t = term_intern(c->kb, tok, n);
    if (t < 0) {
        c->rc = (int)t;
        return;
    }
    term *tm = &c->kb->terms[t];
    article *a = c->a;
    if (tm->seen == c->self) {
        a->post[tm->slot].tf += c->weight;
    } else {
        if (a->npost == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 256;
            posting *np = realloc(a->post, cap * sizeof *np);
            if (!np) {
                c->rc = FP_ENOMEM;
                return;
            }
            a->post = np;
            c->cap = cap;
        }
        tm->seen = c->self;
        tm->slot = (uint32_t)a->npost;
        tm->df++;
        a->post[a->npost++] = (posting){(uint32_t)t, c->weight};
    }
    a->dl += c->weight;
}

static int cmp_posting(const void *x, const void *y)
{
    uint32_t a = ((const posting *)x)->term, b = ((const posting *)y)->term;
    return a < b ? -1 : a > b;
}

static int valid_code(const char *code)
{
    size_t n = strlen(code);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= '0' && code[i] <= '9') ||
              code[i] == '_'))
            return 0;
    return 1;
}

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static void trim(const char **s, size_t *n)
{
    while (*n && ((*s)[0] == ' ' || (*s)[0] == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' || (*s)[*n - 1] == '\r'))
        (*n)--;
}

/* "# CODE — zh / en": the part after the code and its dash, split at the
 * first " / ".  Without " / " both titles are the whole rest. */
static int parse_title(article *a, const char *line, size_t n)
{
    const char *s = line + 2;
    size_t m = n - 2;
    trim(&s, &m);
    size_t cl = strlen(a->code);
    if (m >= cl && memcmp(s, a->code, cl) == 0) {
        s += cl, m -= cl;
        trim(&s, &m);
        static const char *const dashes[] = {"\xe2\x80\x94", "\xe2\x80\x93", "-", ":"};
        for (size_t i = 0; i < 4; i++) {
            size_t dl = strlen(dashes[i]);
            if (m >= dl && memcmp(s, dashes[i], dl) == 0) {
                s += dl, m -= dl;
                break;
            }
        }
        trim(&s, &m);
    }
    const char *zh = s, *en = s;
    size_t zn = m, en_n = m;
    for (size_t i = 0; i + 3 <= m; i++)
        if (memcmp(s + i, " / ", 3) == 0) {
            zn = i;
            en = s + i + 3;
            en_n = m - i - 3;
            break;
        }
    trim(&zh, &zn);
    trim(&en, &en_n);
    char *z = dup_range(zh, zn), *e = dup_range(en, en_n);
    if (!z || !e) {
        free(z);
        free(e);
        return FP_ENOMEM;
    }
    a->pub.title_zh = z;
    a->pub.title_en = e;
    return 0;
}

static void article_clear(article *a)
{
    free((char *)a->pub.title_zh);
    free((char *)a->pub.title_en);
    free((char *)a->pub.text);
    free(a->post);
    memset(a, 0, sizeof *a);
}

int fp_kb_new(fp_kb **out, fp_err *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : fp_fail(err, FP_ENOMEM, "out of memory");
}

void fp_kb_free(fp_kb *kb)
{
    if (!kb)
        return;
    for (int i = 0; i < kb->narts; i++)
        article_clear(&kb->arts[i]);
    free(kb->arts);
    for (uint32_t t = 0; t < kb->nterms; t++)
        free(kb->terms[t].s);
    free(kb->terms);
    free(kb->hash);
    free(kb);
}

int fp_kb_add(fp_kb *kb, const char *code, const char *text, size_t len, fp_err *err)
{
    if (!kb || !code || (!text && len))
        return fp_fail(err, FP_EINVAL, "kb: missing argument");
    if (!valid_code(code))
        return fp_fail(err, FP_EINVAL, "kb: bad article code \"%.64s\"", code);
    if (len > FP_KB_MAX_FILE)
        return fp_fail(err, FP_ERANGE, "kb: %s: article larger than %d bytes", code,
                       FP_KB_MAX_FILE);
    if (kb->narts >= FP_KB_MAX_FILES)
        return fp_fail(err, FP_ERANGE, "kb: more than %d articles", FP_KB_MAX_FILES);
    if (fp_kb_get(kb, code))
        return fp_fail(err, FP_ECONFLICT, "kb: duplicate article %s", code);
    if (len < 2 || text[0] != '#' || text[1] != ' ')
        return fp_fail(err, FP_EINVAL, "kb: %s: the first line must be \"# %s — title\"", code,
                       code);
    if (kb->narts == kb->cap) {
        int cap = kb->cap ? kb->cap * 2 : 64;
        article *na = realloc(kb->arts, (size_t)cap * sizeof *na);
        if (!na)
            return fp_fail(err, FP_ENOMEM, "out of memory");
        kb->arts = na;
        kb->cap = cap;
    }
    article *a = &kb->arts[kb->narts];
    memset(a, 0, sizeof *a);
    snprintf(a->code, sizeof a->code, "%s", code);
    a->pub.code = a->code;
    int fi = folder_index(code);
    a->prior = fi < 0 ? 1.0 : kb_folders[fi].prior;
    char *copy = dup_range(text, len);
    if (!copy)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    a->pub.text = copy;
    a->pub.len = len;
    const char *nl = memchr(text, '\n', len);
    size_t tl = nl ? (size_t)(nl - text) : len;
    int rc = parse_title(a, text, tl);
    index_ctx c = {.kb = kb, .a = a, .self = (uint32_t)kb->narts + 1, .weight = TITLE_WEIGHT};
    if (rc == 0) {
        fp_kb_tokenize(text, tl, index_tok, &c);
        c.weight = 1;
        fp_kb_tokenize(text + tl, len - tl, index_tok, &c);
        rc = c.rc;
    }
    if (rc < 0) {
        /* undo the document frequencies this article added */
        for (size_t i = 0; i < a->npost; i++) {
            kb->terms[a->post[i].term].df--;
            kb->terms[a->post[i].term].seen = 0;
        }
        article_clear(a);
        return fp_fail(err, rc, "kb: %s: %s", code,
                       rc == FP_ENOMEM ? "out of memory" : "too many distinct terms");
    }
    if (a->npost)
        qsort(a->post, a->npost, sizeof *a->post, cmp_posting);
    kb->total_dl += a->dl;
    kb->narts++;
    return 0;
}

static int cmp_article(const void *x, const void *y)
{
    return strcmp(((const article *)x)->code, ((const article *)y)->code);
}

static int read_file(const char *path, char **buf, size_t *len, fp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fp_fail(err, FP_EIO, "kb: open %s: %s", path, strerror(errno));
    char *b = malloc(FP_KB_MAX_FILE + 1);
    if (!b) {
        fclose(f);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    size_t n = fread(b, 1, FP_KB_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return fp_fail(err, FP_EIO, "kb: read %s failed", path);
    }
    if (n > FP_KB_MAX_FILE) {
        free(b);
        return fp_fail(err, FP_ERANGE, "kb: %s is larger than %d bytes", path, FP_KB_MAX_FILE);
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Reads path and adds it as article code. */
static int add_file(fp_kb *kb, const char *code, const char *path, fp_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err);
    if (rc == 0) {
        rc = fp_kb_add(kb, code, buf, len, err);
        free(buf);
    }
    return rc;
}

/* Adds every CODE.md of dir whose code belongs there (folder_of(code) is
 * sub).  *files counts across folders against FP_KB_MAX_FILES. */
static int load_folder(fp_kb *kb, const char *dir, const char *sub, int *files, fp_err *err)
{
    char base[4096];
    if (snprintf(base, sizeof base, sub ? "%s/%s" : "%s", dir, sub) >= (int)sizeof base)
        return fp_fail(err, FP_ERANGE, "kb: path too long");
    DIR *d = opendir(base);
    if (!d) {
        if (sub && errno == ENOENT)
            return 0;
        return fp_fail(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO, "kb: open %s: %s", base,
                       strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 3 || strcmp(e->d_name + n - 3, ".md") != 0 || n - 3 > 63)
            continue;
        char code[64];
        memcpy(code, e->d_name, n - 3);
        code[n - 3] = 0;
        const char *want = folder_of(code);
        if (!valid_code(code) || want != sub) /* same table entry, or both top level */
            continue; /* README.md, or a code that belongs in another folder */
        if (++*files > FP_KB_MAX_FILES) {
            rc =
                fp_fail(err, FP_ERANGE, "kb: %s holds more than %d articles", dir, FP_KB_MAX_FILES);
            break;
        }
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", base, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = add_file(kb, code, path, err);
    }
    closedir(d);
    return rc;
}

int fp_kb_load_dir(const char *dir, fp_kb **out, fp_err *err)
{
    *out = NULL;
    fp_kb *kb = NULL;
    int files = 0;
    int rc = fp_kb_new(&kb, err);
    if (rc == 0)
        rc = load_folder(kb, dir, NULL, &files, err);
    for (size_t i = 0; rc == 0 && i < NFOLDERS; i++)
        rc = load_folder(kb, dir, kb_folders[i].dir, &files, err);
    if (rc < 0) {
        fp_kb_free(kb);
        return rc;
    }
    /* postings refer to terms, not articles, so articles may move */
    if (kb->narts)
        qsort(kb->arts, (size_t)kb->narts, sizeof *kb->arts, cmp_article);
    for (int i = 0; i < kb->narts; i++)
        kb->arts[i].pub.code = kb->arts[i].code;
    *out = kb;
    return 0;
}

int fp_kb_load_one(const char *dir, const char *code, fp_kb **out, fp_err *err)
{
    *out = NULL;
    if (!valid_code(code))
        return fp_fail(err, FP_EINVAL, "kb: invalid code");
    fp_kb *kb = NULL;
    if (fp_kb_new(&kb, err) < 0)
        return -1;
    char path[4096];
    const char *sub = folder_of(code);
    if (snprintf(path, sizeof path, "%s/%s%s%s.md", dir, sub ? sub : "", sub ? "/" : "", code) >=
        (int)sizeof path) {
        fp_kb_free(kb);
        return fp_fail(err, FP_ERANGE, "kb: path too long");
    }
    int rc = access(path, F_OK) == 0 ? add_file(kb, code, path, err) : 0;
    if (rc < 0) {
        fp_kb_free(kb);
        return rc;
    }
    *out = kb;
    return 0;
}

int fp_kb_count(const fp_kb *kb)
{
    return kb ? kb->narts : 0;
}

const fp_kb_article *fp_kb_at(const fp_kb *kb, int i)
{
    return kb && i >= 0 && i < kb->narts ? &kb->arts[i].pub : NULL;
}

const fp_kb_article *fp_kb_get(const fp_kb *kb, const char *code)
{
    for (int i = 0; kb && code && i < kb->narts; i++)
        if (strcmp(kb->arts[i].code, code) == 0)
            return &kb->arts[i].pub;
    return NULL;
}

int fp_kb_section(const fp_kb_article *a, const char *prefix, const char **body, size_t *n)
{
    size_t pl = strlen(prefix);
    const char *s = a->text, *end = a->text + a->len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *eol = nl ? nl : end;
        if ((size_t)(eol - s) >= pl && memcmp(s, prefix, pl) == 0) {
            const char *b = nl ? nl + 1 : end, *p = b;
            while (p < end) {
                if (end - p >= 3 && memcmp(p, "## ", 3) == 0)
                    break;
                const char *q = memchr(p, '\n', (size_t)(end - p));
                p = q ? q + 1 : end;
            }
            *body = b;
            *n = (size_t)(p - b);
            return 0;
        }
        s = nl ? nl + 1 : end;
    }
    return FP_ENOTFOUND;
}

/* --- ranking ----------------------------------------------------------- */

/* Natural logarithm for x > 0: scale into [1, 2) by powers of two, then
 * ln(m) = 2 atanh((m-1)/(m+1)) as a series (|t| <= 1/3 converges fast). */
static double kb_ln(double x)
{
    int k = 0;
    while (x >= 2.0)
        x /= 2.0, k++;
    while (x < 1.0)
        x *= 2.0, k--;
    double t = (x - 1.0) / (x + 1.0), t2 = t * t, pw = t, sum = 0.0;
    for (int i = 1; i < 60; i += 2) {
        sum += pw / i;
        pw *= t2;
    }
    return 2.0 * sum + k * 0.69314718055994530942;
}

typedef struct query_ctx {
    const fp_kb *kb;
    uint32_t terms[MAX_QUERY_TERMS];
    int n;
} query_ctx;

static void query_tok(const char *tok, size_t n, void *arg)
{
    (void)n;
    query_ctx *q = arg;
    long t = term_find(q->kb, tok);
    if (t < 0 || q->n >= MAX_QUERY_TERMS)
        return;
    for (int i = 0; i < q->n; i++)
        if (q->terms[i] == (uint32_t)t)
            return; /* each distinct query term counts once */
    q->terms[q->n++] = (uint32_t)t;
}

static uint32_t tf_of(const article *a, uint32_t t)
{
    size_t lo = 0, hi = a->npost;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->post[mid].term < t)
            lo = mid + 1;
        else if (a->post[mid].term > t)
            hi = mid;
        else
            return a->post[mid].tf;
    }
    return 0;
}

static int cmp_hit(const void *x, const void *y)
{
    const fp_kb_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return strcmp(a->code, b->code);
}

int fp_kb_search(const fp_kb *kb, const char *query, fp_kb_hit *hits, int max, fp_err *err)
{
    if (!kb || !query || max < 0 || (max > 0 && !hits))
        return fp_fail(err, FP_EINVAL, "kb: missing argument");
    if (kb->narts == 0 || max == 0)
        return 0;
    query_ctx *q = malloc(sizeof *q);
    fp_kb_hit *all = malloc((size_t)kb->narts * sizeof *all);
    if (!q || !all) {
        free(q);
        free(all);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    q->kb = kb;
    q->n = 0;
    size_t ql = strlen(query);
    fp_kb_tokenize(query, ql > 4096 ? 4096 : ql, query_tok, q);
    double N = kb->narts, avgdl = (double)kb->total_dl / N;
    if (avgdl <= 0)
        avgdl = 1;
    int nh = 0;
    for (int i = 0; i < kb->narts; i++) {
        const article *a = &kb->arts[i];
        double score = 0;
        int matched = 0;
        for (int j = 0; j < q->n; j++) {
            uint32_t tf = tf_of(a, q->terms[j]);
            if (!tf)
                continue;
            matched++;
            double df = kb->terms[q->terms[j]].df;
            double idf = kb_ln(1.0 + (N - df + 0.5) / (df + 0.5));
            double norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)a->dl / avgdl);
            score += idf * (tf * (BM25_K1 + 1.0)) / (tf + norm);
        }
        /* Coordination: an article that covers more of the question's terms
         * ranks above one that matches a few of them very well ("证书过期
         * 握手失败" is about an expired certificate, not any handshake). */
        score *= (double)matched / (double)q->n * a->prior;
        if (score > 0)
            all[nh++] = (fp_kb_hit){a->code, score};
    }
    qsort(all, (size_t)nh, sizeof *all, cmp_hit);
    if (nh > max)
        nh = max;
    memcpy(hits, all, (size_t)nh * sizeof *all);
    free(q);
    free(all);
    return nh;
}
