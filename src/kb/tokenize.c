/* tokenize.c — the knowledge base's tokenizer (include/fapiao/kb.h): ASCII
 * words lowercased and lightly stemmed, words with '_' also whole, and CJK
 * character bigrams so Chinese needs no dictionary.  Split from kb.c, which
 * indexes and ranks what this yields. */
#include "fapiao/kb.h"

#include <stdint.h>
#include <string.h>

/* --- tokenizer --------------------------------------------------------- */

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Decodes one UTF-8 sequence at s[0..n); returns its length (>= 1) and the
 * code point in *cp, or U+FFFD for malformed input (length 1). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (len > n)
        goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            goto bad;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        goto bad;
    *cp = v;
    return len;
bad:
    *cp = 0xFFFD;
    return 1;
}

static int is_cjk(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FFFF);
}

static int is_stopword(const char *w)
{
    static const char *const stop[] = {"a",    "an",  "and",  "are", "as",   "at", "be",
                                       "by",   "for", "from", "in",  "is",   "it", "of",
                                       "on",   "or",  "that", "the", "this", "to", "was",
                                       "with", "my",  "i",    "we",  "our",  "its"};
    for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
        if (strcmp(w, stop[i]) == 0)
            return 1;
    return 0;
}

/* A deliberately small stemmer: plurals and -ed/-ing/-e endings, so that
 * "expired", "expires", "expiring" and "expire" meet as "expir". */
static size_t stem(char *w, size_t n)
{
    if (n > 4 && strcmp(w + n - 3, "ies") == 0) {
        n -= 2;
        w[n - 1] = 'y';
    } else if (n > 3 && w[n - 1] == 's' && w[n - 2] != 's' && w[n - 2] != 'u' && w[n - 2] != 'i') {
        n -= 1;
    }
    w[n] = 0;
    if (n > 5 && strcmp(w + n - 3, "ing") == 0)
        n -= 3;
    else if (n > 4 && strcmp(w + n - 2, "ed") == 0)
        n -= 2;
    w[n] = 0;
    if (n > 4 && w[n - 1] == 'e')
        n -= 1;
    w[n] = 0;
    return n;
}

static int emit_word(char *w, size_t n, fp_kb_tok_fn fn, void *arg)
{
    w[n] = 0;
    if (n == 0 || is_stopword(w))
        return 0;
    n = stem(w, n);
    fn(w, n, arg);
    return 1;
}

/* One ASCII word: lowercase, cut at FP_KB_MAX_TOKEN; with '_' inside it
 * yields the whole (unstemmed) and each part. */
static int emit_ascii(const char *s, size_t n, fp_kb_tok_fn fn, void *arg)
{
    char w[FP_KB_MAX_TOKEN + 1];
    int count = 0, has_us = 0;
    size_t m = n < FP_KB_MAX_TOKEN ? n : FP_KB_MAX_TOKEN;
    for (size_t i = 0; i < m; i++) {
        char c = s[i];
        w[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        has_us |= c == '_';
    }
    if (!has_us)
        return emit_word(w, m, fn, arg);
    size_t a = 0, b = m;
    while (a < b && w[a] == '_')
        a++;
    while (b > a && w[b - 1] == '_')
        b--;
    if (b > a) {
        char whole[FP_KB_MAX_TOKEN + 1];
        memcpy(whole, w + a, b - a);
        whole[b - a] = 0;
        fn(whole, b - a, arg);
        count++;
    }
    size_t start = a;
    for (size_t i = a; i <= b; i++) {
        if (i == b || w[i] == '_') {
            if (i > start) {
                char part[FP_KB_MAX_TOKEN + 1];
                memcpy(part, w + start, i - start);
                count += emit_word(part, i - start, fn, arg);
            }
            start = i + 1;
        }
    }
    return count;
}

/* At the end of a CJK run: a run of one character yields it as a unigram
 * (longer runs have yielded bigrams).  Returns the tokens yielded. */
static int lone_cjk(const char *prev, size_t prevn, int run, fp_kb_tok_fn fn, void *arg)
{
    if (run != 1)
        return 0;
    char u[5];
    memcpy(u, prev, prevn);
    u[prevn] = 0;
    fn(u, prevn, arg);
    return 1;
}

int fp_kb_tokenize(const char *s, size_t len, fp_kb_tok_fn fn, void *arg)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int count = 0;
    /* the previous CJK character of the current run, and whether the run
     * has produced a bigram yet */
    char prev[4];
    size_t prevn = 0;
    int run = 0;
    while (i < len) {
        if (p[i] < 0x80 && is_word_byte(p[i])) {
            size_t j = i;
            while (j < len && p[j] < 0x80 && is_word_byte(p[j]))
                j++;
            count += lone_cjk(prev, prevn, run, fn, arg);
            run = 0;
            count += emit_ascii(s + i, j - i, fn, arg);
            i = j;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (is_cjk(cp)) {
            if (run >= 1) {
                char bg[9];
                memcpy(bg, prev, prevn);
                memcpy(bg + prevn, s + i, n);
                bg[prevn + n] = 0;
                fn(bg, prevn + n, arg), count++;
            }
            memcpy(prev, s + i, n);
            prevn = n;
            run++;
        } else {
            count += lone_cjk(prev, prevn, run, fn, arg);
            run = 0;
        }
        i += n;
    }
    return count + lone_cjk(prev, prevn, run, fn, arg);
}
