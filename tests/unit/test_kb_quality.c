/* test_kb_quality.c — search quality, measured: every query of
 * tests/data/kb_queries.tsv (realistic questions and pasted error messages,
 * written apart from the articles) names the article it should find; the
 * test ranks the whole knowledge base for each and asserts top-1 >= 80 % and
 * top-3 >= 95 % (docs/doctor.md, "Search quality").  It prints the figures
 * and every miss, so a change to the ranking or the articles shows what it
 * won and lost. */
#include "check.h"
#include "fapiao/kb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define MAX_LINE  2048
#define MAX_WANTS 2

/* 1 when code is one of the comma-separated codes of want */
static int wanted(const char *want, const char *code)
{
    size_t n = strlen(code);
    for (const char *p = want; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && memcmp(p, code, n) == 0)
            return 1;
        p += len + (c != NULL);
    }
    return 0;
}

int main(void)
{
    fp_kb *kb = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_kb_load_dir(FP_SOURCE_DIR "/kb", &kb, &err) == 0, "load kb: %s", err.msg))
        return check_summary();
    FILE *f = fopen(FP_SOURCE_DIR "/tests/data/kb_queries.tsv", "r");
    if (!CHECK(f != NULL)) {
        fp_kb_free(kb);
        return check_summary();
    }
    char line[MAX_LINE];
    int total = 0, top1 = 0, top3 = 0, lineno = 0;
    while (fgets(line, sizeof line, f) && lineno < 100000) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0 || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        check_ctx("kb_queries.tsv:%d", lineno);
        if (!CHECK_MSG(tab && tab[1] && !strchr(tab + 1, '\t'), "want query<TAB>CODE"))
            continue;
        *tab = 0;
        const char *q = line, *want = tab + 1;
        /* every expected article exists */
        char codes[256];
        snprintf(codes, sizeof codes, "%s", want);
        int nw = 0;
        for (char *save = NULL, *c = strtok_r(codes, ",", &save); c;
             c = strtok_r(NULL, ",", &save), nw++)
            CHECK_MSG(fp_kb_get(kb, c) != NULL, "no article %s", c);
        CHECK(nw >= 1 && nw <= MAX_WANTS);
        fp_kb_hit h[3];
        int k = fp_kb_search(kb, q, h, 3, &err);
        total++;
        int rank = 0;
        for (int i = 0; i < k && !rank; i++)
            if (wanted(want, h[i].code))
                rank = i + 1;
        top1 += rank == 1;
        top3 += rank >= 1;
        if (rank != 1)
            printf("%s: \"%.60s\" want %s, got %s %s %s\n", rank ? "top3" : "MISS", q, want,
                   k > 0 ? h[0].code : "-", k > 1 ? h[1].code : "-", k > 2 ? h[2].code : "-");
    }
    fclose(f);
    check_ctx("%s", "");
    CHECK_MSG(total >= 150, "only %d queries", total);
    printf("search quality: %d queries, top-1 %d (%.1f %%), top-3 %d (%.1f %%), %d articles\n",
           total, top1, total ? 100.0 * top1 / total : 0.0, top3,
           total ? 100.0 * top3 / total : 0.0, fp_kb_count(kb));
    /* integer comparisons: top1/total >= 80 %, top3/total >= 95 % */
    CHECK_MSG(top1 * 100 >= total * 80, "top-1 %d/%d below 80 %%", top1, total);
    CHECK_MSG(top3 * 100 >= total * 95, "top-3 %d/%d below 95 %%", top3, total);
    fp_kb_free(kb);
    return check_summary();
}
