/* kb.h — the knowledge base: one Markdown article per finding code
 * (kb/CODE.md), per client error or cause users meet (kb/cases/CASE_*.md)
 * and per alert (kb/alerts/ALERT_*.md), each with 现象/Symptoms, 原因/Cause,
 * 排查/How to check and 解决/Fix sections in zh-CN and English, searchable
 * by free text.
 *
 * Articles are loaded from a directory (bounded: FP_KB_MAX_FILES files of at
 * most FP_KB_MAX_FILE bytes) or added from memory, and indexed at once.  The
 * tokenizer yields lowercase ASCII words (split on anything but letters,
 * digits and '_'; a word with '_' also yields its parts, so TLS_CERT_EXPIRED
 * is found by "cert expired"), lightly stemmed, plus CJK character bigrams
 * (a lone CJK character is a unigram), so Chinese needs no dictionary.
 * Ranking is BM25 (k1 1.2, b 0.75); the title line counts three times, and
 * a case scores 0.9 of a finding article that matches as well (kb.c). */
#ifndef FAPIAO_KB_H
#define FAPIAO_KB_H

#include "fapiao/err.h"

#include <stddef.h>

#define FP_KB_MAX_FILES 1000
#define FP_KB_MAX_FILE  (256 * 1024)
#define FP_KB_MAX_TOKEN 64 /* longer ASCII words are cut */

typedef struct fp_kb fp_kb;

typedef struct fp_kb_article {
    const char *code;     /* "TLS_CERT_EXPIRED" */
    const char *title_zh; /* from "# CODE — <zh> / <en>" */
    const char *title_en;
    const char *text; /* the whole Markdown, NUL-terminated */
    size_t len;
} fp_kb_article;

typedef struct fp_kb_hit {
    const char *code; /* owned by the kb */
    double score;
} fp_kb_hit;

int fp_kb_new(fp_kb **out, fp_err *err);
void fp_kb_free(fp_kb *kb);

/* Parses and indexes one article (text need not be NUL-terminated; it is
 * copied).  code: 1..63 of [A-Z0-9_].  FP_EINVAL when the code is malformed
 * or the first line is not "# …", FP_ECONFLICT for a duplicate code,
 * FP_ERANGE beyond the bounds. */
int fp_kb_add(fp_kb *kb, const char *code, const char *text, size_t len, fp_err *err);

/* Loads every CODE.md of dir and of its subfolders cases/ (CASE_* codes)
 * and alerts/ (ALERT_* codes); other file names, and codes in the wrong
 * folder, are skipped.  FP_KB_MAX_FILES bounds the total. */
int fp_kb_load_dir(const char *dir, fp_kb **out, fp_err *err);
/* Loads only dir/<code>.md, or dir/cases/ or dir/alerts/ by its prefix (for a caller that needs one
 * article, such as the doctor printing its verdict): far cheaper than indexing the whole directory.
 * A missing article is not an error: *out is then empty. */
int fp_kb_load_one(const char *dir, const char *code, fp_kb **out, fp_err *err);

int fp_kb_count(const fp_kb *kb);
/* Articles in code order (sorted after load; insertion order after add). */
const fp_kb_article *fp_kb_at(const fp_kb *kb, int i);
const fp_kb_article *fp_kb_get(const fp_kb *kb, const char *code);

/* Finds the section whose heading line ("## …") starts with prefix, e.g.
 * "## 解决"; sets *body and *n to the text after the heading up to the next
 * "## ".  0 or FP_ENOTFOUND. */
int fp_kb_section(const fp_kb_article *a, const char *prefix, const char **body, size_t *n);

/* Ranks articles for query; fills up to max hits, best first (ties by
 * code), only those with a positive score.  Returns the number of hits or
 * a negative FP_E…. */
int fp_kb_search(const fp_kb *kb, const char *query, fp_kb_hit *hits, int max, fp_err *err);

/* Calls fn for each token of s[0..len) (NUL-terminated, at most
 * FP_KB_MAX_TOKEN bytes).  Returns the number of tokens. */
typedef void (*fp_kb_tok_fn)(const char *tok, size_t n, void *arg);
int fp_kb_tokenize(const char *s, size_t len, fp_kb_tok_fn fn, void *arg);

#endif
