/* fuzz_kb.c — the knowledge base on arbitrary bytes.
 *
 * The input is used three ways: tokenized on its own, parsed as an article
 * (fp_kb_add from memory, so title and section parsing see it), and — cut
 * at the first NUL — as a search query against a two-article kb that
 * includes it.  Invariants, each an abort() when broken:
 *  - every token is non-empty, NUL-terminated at its length and at most
 *    FP_KB_MAX_TOKEN bytes (a CJK bigram is at most 8);
 *  - fp_kb_add accepts exactly the inputs that start with "# ";
 *  - search returns 0..max hits with known codes, positive scores, best
 *    first, and the same answer twice. */
#include "fapiao/kb.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static void check_tok(const char *tok, size_t n, void *arg)
{
    (void)arg;
    if (n == 0 || n > FP_KB_MAX_TOKEN || strlen(tok) != n)
        fail("bad token");
}

static const char fixed[] = "# FIXED — 证书过期 / Certificate expired\n\n"
                            "## 现象 / Symptoms\n\ncurl: (60) certificate has expired 证书已过期\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FP_KB_MAX_FILE)
        return 0;
    const char *s = (const char *)data;
    fp_kb_tokenize(s, size, check_tok, NULL);

    fp_kb *kb = NULL;
    fp_err err = {0};
    if (fp_kb_new(&kb, &err) < 0)
        return 0;
    if (fp_kb_add(kb, "FIXED", fixed, sizeof fixed - 1, &err) != 0)
        fail("fixed article refused");
    int rc = fp_kb_add(kb, "FUZZ", s, size, &err);
    int titled = size >= 2 && s[0] == '#' && s[1] == ' ';
    if ((rc == 0) != titled)
        fail("fp_kb_add accepted or refused the wrong input");
    if (rc == 0) {
        const fp_kb_article *a = fp_kb_get(kb, "FUZZ");
        if (!a || !a->title_zh || !a->title_en || a->len != size)
            fail("article lost");
        const char *body;
        size_t n;
        if (fp_kb_section(a, "## ", &body, &n) == 0 &&
            (body < a->text || body + n > a->text + a->len))
            fail("section outside the article");
    }

    char *q = malloc(size + 1);
    if (!q)
        goto out;
    memcpy(q, data, size);
    q[size] = 0;
    fp_kb_hit h1[4], h2[4];
    int n1 = fp_kb_search(kb, q, h1, 4, &err);
    int n2 = fp_kb_search(kb, q, h2, 4, &err);
    if (n1 < 0 || n1 > fp_kb_count(kb) || n1 != n2)
        fail("search count");
    for (int i = 0; i < n1; i++) {
        if (!fp_kb_get(kb, h1[i].code) || !(h1[i].score > 0))
            fail("search hit");
        if (i && h1[i - 1].score < h1[i].score)
            fail("search order");
        if (strcmp(h1[i].code, h2[i].code) != 0 || h1[i].score != h2[i].score)
            fail("search not deterministic");
    }
    free(q);
out:
    fp_kb_free(kb);
    return 0;
}
