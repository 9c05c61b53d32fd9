/* match.c — series matchers over exposition keys (internal.h): the small
 * part of PromQL's selectors the alert table uses, k=v and k=~re. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

void fp_amatch_free(fp_amatch *m)
{
    for (int i = 0; i < m->n; i++)
        if (m->m[i].is_re)
            regfree(&m->m[i].re);
    m->n = 0;
}

/* One "k=v" or "k=~re" of length n. */
static int parse_one(fp_amatch *m, const char *s, size_t n, fp_err *err)
{
    const char *eq = memchr(s, '=', n);
    if (!eq || eq == s || m->n == FP_AMATCH_MAX || (size_t)(eq - s) >= sizeof m->m[0].label)
        return fp_fail(err, FP_EINVAL, "匹配条件无效 / bad matcher: %.*s", (int)n, s);
    int i = m->n;
    snprintf(m->m[i].label, sizeof m->m[i].label, "%.*s", (int)(eq - s), s);
    const char *v = eq + 1;
    m->m[i].is_re = *v == '~';
    v += m->m[i].is_re;
    size_t vn = (size_t)(s + n - v);
    if (vn + 3 >= sizeof m->m[i].value)
        return fp_fail(err, FP_EINVAL, "匹配条件过长 / matcher too long: %.*s", (int)n, s);
    if (m->m[i].is_re) {
        char re[sizeof m->m[i].value + 4];
        snprintf(re, sizeof re, "^(%.*s)$", (int)vn, v);
        if (regcomp(&m->m[i].re, re, REG_EXTENDED | REG_NOSUB) != 0)
            return fp_fail(err, FP_EINVAL, "正则表达式无效 / bad regex: %s", re);
    }
    snprintf(m->m[i].value, sizeof m->m[i].value, "%.*s", (int)vn, v);
    m->n++;
    return 0;
}

int fp_amatch_parse(fp_amatch *m, const char *metric, const char *match, fp_err *err)
{
    memset(m, 0, sizeof *m);
    if (!metric || strlen(metric) >= sizeof m->name)
        return fp_fail(err, FP_EINVAL, "指标名无效 / bad metric name");
    snprintf(m->name, sizeof m->name, "%s", metric);
    for (const char *p = match; p && *p;) {
        size_t n = strcspn(p, ",");
        int rc = parse_one(m, p, n, err);
        if (rc < 0) {
            fp_amatch_free(m);
            return rc;
        }
        p += n + (p[n] == ',');
    }
    return 0;
}

int fp_ahist_label(const char *key, const char *label, char *out, size_t cap)
{
    size_t ln = strlen(label);
    out[0] = 0;
    const char *p = strchr(key, '{');
    while (p && *p && *p != '}') {
        p++; /* past '{' or ',' */
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            return 0;
        int hit = (size_t)(eq - p) == ln && !strncmp(p, label, ln);
        size_t o = 0;
        for (p = eq + 2; *p && *p != '"'; p++) {
            char c = *p;
            if (c == '\\' && p[1]) {
                c = *++p == 'n' ? '\n' : *p;
            }
            if (hit && o + 1 < cap)
                out[o++] = c;
        }
        if (hit) {
            out[o] = 0;
            return 1;
        }
        if (*p == '"')
            p++;
    }
    return 0;
}

int fp_amatch_key(const fp_amatch *m, const char *key, size_t name_len)
{
    if (strlen(m->name) != name_len || strncmp(m->name, key, name_len) != 0)
        return 0;
    for (int i = 0; i < m->n; i++) {
        char v[1100];
        fp_ahist_label(key, m->m[i].label, v, sizeof v);
        if (m->m[i].is_re ? regexec(&m->m[i].re, v, 0, NULL, 0) != 0
                          : strcmp(v, m->m[i].value) != 0)
            return 0;
    }
    return 1;
}
