/* taxcode.c — the tax classification code table.  Loaded once at start into
 * a sorted array; lookups are binary searches.  Bounded: at most 100,000
 * rows and 1 KiB per line. */
#include "fapiao/taxcode.h"
#include "fapiao/json.h"
#include "fapiao/money.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 100000

struct fp_taxcode_table {
    fp_taxcode *rows;
    int n;
};

int fp_taxcode_valid_shape(const char *code)
{
    if (!code || strlen(code) != 19)
        return 0;
    for (int i = 0; i < 19; i++)
        if (code[i] < '0' || code[i] > '9')
            return 0;
    if (code[0] < '1' || code[0] > '6')
        return 0;
    int ended = 0;
    for (int lv = 0; lv < 9; lv++) {
        const char *p = code + 1 + 2 * lv;
        int zero = p[0] == '0' && p[1] == '0';
        if (ended && !zero)
            return 0;
        if (zero)
            ended = 1;
    }
    return 1;
}

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const fp_taxcode *)a)->code, ((const fp_taxcode *)b)->code);
}

static char *next_field(char **s)
{
    char *f = *s, *c = f ? strchr(f, ',') : NULL;
    if (c) {
        *c = 0;
        *s = c + 1;
    } else {
        *s = NULL;
    }
    return f;
}

int fp_taxcode_load(const char *path, fp_taxcode_table **out, fp_err *err)
{
    return fp_taxcode_load_at(path, out, NULL, err);
}

int fp_taxcode_load_at(const char *path, fp_taxcode_table **out, int *bad_line, fp_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fp_fail(err, FP_EIO, "tax code table %s: %s", path, strerror(errno));
    fp_taxcode_table *t = calloc(1, sizeof *t);
    int cap = 256, lineno = 0, rc = 0;
    char line[1024];
    if (!t || !(t->rows = malloc(sizeof *t->rows * (size_t)cap))) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    if (bad_line)
        *bad_line = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (bad_line)
            *bad_line = lineno; /* the line being read: where a failure below is */
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = fp_fail(err, FP_EINVAL, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (lineno == 1 && len >= 3 && !strncmp(line, "\xEF\xBB\xBF", 3)) {
            len -= 3; /* a spreadsheet's UTF-8 byte order mark */
            memmove(line, line + 3, len + 1);
        }
        if (len == 0 || line[0] == '#' || strncmp(line, "code,", 5) == 0)
            continue;
        if (t->n == MAX_ROWS) {
            rc = fp_fail(err, FP_ERANGE, "%s: more than %d rows", path, MAX_ROWS);
            goto fail;
        }
        if (t->n == cap) {
            cap *= 2;
            fp_taxcode *nr = realloc(t->rows, sizeof *t->rows * (size_t)cap);
            if (!nr) {
                rc = fp_fail(err, FP_ENOMEM, "out of memory");
                goto fail;
            }
            t->rows = nr;
        }
        fp_taxcode *r = &t->rows[t->n];
        memset(r, 0, sizeof *r);
        char *s = line;
        char *code = next_field(&s), *name = next_field(&s);
        char *rates = next_field(&s), *summary = next_field(&s);
        if (!code || !name || !rates || !summary || s) {
            rc = fp_fail(err, FP_EINVAL, "%s:%d: want 4 fields: code,short_name,rates,summary",
                         path, lineno);
            goto fail;
        }
        if (!fp_taxcode_valid_shape(code) || strlen(name) == 0 ||
            strlen(name) >= sizeof r->short_name || !fp_utf8_valid(name, strlen(name))) {
            rc = fp_fail(err, FP_EINVAL, "%s:%d: bad code or short name", path, lineno);
            goto fail;
        }
        memcpy(r->code, code, 20);
        memcpy(r->short_name, name, strlen(name) + 1);
        r->summary = strcmp(summary, "1") == 0;
        for (char *rt = strtok(rates, ";"); rt; rt = strtok(NULL, ";")) {
            if (r->nrates == 8 || fp_rate_parse(rt, &r->rates_bp[r->nrates]) < 0) {
                rc = fp_fail(err, FP_EINVAL, "%s:%d: bad rate '%s'", path, lineno, rt);
                goto fail;
            }
            r->nrates++;
        }
        t->n++;
    }
    if (bad_line)
        *bad_line = 0;
    if (ferror(f)) {
        rc = fp_fail(err, FP_EIO, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    f = NULL;
    qsort(t->rows, (size_t)t->n, sizeof *t->rows, cmp_row);
    for (int i = 1; i < t->n; i++)
        if (strcmp(t->rows[i - 1].code, t->rows[i].code) == 0) {
            rc = fp_fail(err, FP_EINVAL, "%s: code %s listed twice", path, t->rows[i].code);
            goto fail;
        }
    *out = t;
    return 0;
fail:
    if (f)
        fclose(f);
    fp_taxcode_free(t);
    return rc;
}

void fp_taxcode_free(fp_taxcode_table *t)
{
    if (!t)
        return;
    free(t->rows);
    free(t);
}

const fp_taxcode *fp_taxcode_at(const fp_taxcode_table *t, int i)
{
    return t && i >= 0 && i < t->n ? &t->rows[i] : NULL;
}

const fp_taxcode *fp_taxcode_find(const fp_taxcode_table *t, const char *code)
{
    if (!t || !code || strlen(code) != 19)
        return NULL;
    fp_taxcode key;
    snprintf(key.code, sizeof key.code, "%s", code);
    return bsearch(&key, t->rows, (size_t)t->n, sizeof *t->rows, cmp_row);
}

int fp_taxcode_count(const fp_taxcode_table *t)
{
    return t ? t->n : 0;
}

int fp_taxcode_same(const fp_taxcode_table *a, const fp_taxcode_table *b)
{
    if (!a || !b || a->n != b->n)
        return a == b;
    for (int i = 0; i < a->n; i++) {
        const fp_taxcode *x = &a->rows[i], *y = &b->rows[i];
        if (strcmp(x->code, y->code) || strcmp(x->short_name, y->short_name) ||
            x->nrates != y->nrates || x->summary != y->summary ||
            memcmp(x->rates_bp, y->rates_bp, sizeof x->rates_bp[0] * (size_t)x->nrates))
            return 0;
    }
    return 1;
}
