/* json.c — strict JSON checks around cJSON, and a deterministic writer. */
#include "fapiao/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer ---- */

void fp_buf_init(fp_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max ? max : 16u << 20;
}

void fp_buf_free(fp_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void fp_buf_append(fp_buf *b, const void *s, size_t n)
{
    if (b->overflow)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        if (nc > b->max + 1) {
            if (b->len + n + 1 > b->max + 1) {
                b->overflow = 1;
                return;
            }
            nc = b->max + 1;
        }
        char *np = realloc(b->p, nc);
        if (!np) {
            b->overflow = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void fp_buf_puts(fp_buf *b, const char *s)
{
    fp_buf_append(b, s, strlen(s));
}

void fp_buf_printf(fp_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        fp_buf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->overflow = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    fp_buf_append(b, big, (size_t)n);
    free(big);
}

char *fp_buf_take(fp_buf *b, size_t *len)
{
    if (b->overflow) {
        fp_buf_free(b);
        return NULL;
    }
    if (!b->p)
        fp_buf_append(b, "", 0);
    char *p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- UTF-8 ---- */

int fp_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + (size_t)len > n)
            return 0;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += (size_t)len;
    }
    return 1;
}

size_t fp_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* ---- strict parse ---- */

/* Length of a JSON number at s (RFC 8259 grammar), 0 if malformed:
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?  cJSON also takes 01 and 1. */
static size_t number_len(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || s[i] < '0' || s[i] > '9')
        return 0;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e)
            return 0;
    }
    /* a number ends at a delimiter; "01" ends at the 1 */
    if (i < n && !strchr(" \t\r\n,]}", s[i]))
        return 0;
    return i;
}

/* One pass over the raw text for what cJSON lets through: depth, NUL bytes,
 * escaped NULs, raw control characters in strings, malformed numbers. */
static int prescan(const char *s, size_t n, int max_depth, fp_code *code, char *d, size_t dl)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0) {
            *code = FPC_MALFORMED_JSON;
            snprintf(d, dl, "NUL byte at offset %zu", i);
            return -1;
        }
        if (in_str) {
            if (c < 0x20) {
                *code = FPC_MALFORMED_JSON;
                snprintf(d, dl, "unescaped control character in a string at offset %zu", i);
                return -1;
            }
            if (c == '\\') {
                /* the escaped character is checked here too: a NUL or a
                 * control character must not hide behind a backslash */
                char e = i + 1 < n ? s[i + 1] : 0;
                if (!e || !strchr("\"\\/bfnrtu", e)) {
                    *code = FPC_MALFORMED_JSON;
                    snprintf(d, dl, "invalid escape in a string at offset %zu", i);
                    return -1;
                }
                if (e == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) {
                    *code = FPC_MALFORMED_JSON;
                    snprintf(d, dl, "escaped NUL (\\u0000) at offset %zu", i);
                    return -1;
                }
                i++;
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                *code = FPC_TOO_DEEP;
                snprintf(d, dl, "nesting deeper than %d at offset %zu", max_depth, i);
                return -1;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t len = number_len(s + i, n - i);
            if (len == 0) {
                *code = FPC_MALFORMED_JSON;
                snprintf(d, dl, "malformed number at offset %zu", i);
                return -1;
            }
            i += len - 1;
        }
    }
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns the duplicated key, or NULL. */
static const char *find_dup(const cJSON *node)
{
    for (const cJSON *c = node ? node->child : NULL; c; c = c->next) {
        const char *d = find_dup(c);
        if (d)
            return d;
    }
    if (!cJSON_IsObject(node))
        return NULL;
    int n = 0;
    for (const cJSON *c = node->child; c; c = c->next)
        n++;
    if (n < 2)
        return NULL;
    const char **keys = malloc(sizeof *keys * (size_t)n);
    if (!keys)
        return NULL;
    int i = 0;
    for (const cJSON *c = node->child; c; c = c->next)
        keys[i++] = c->string;
    qsort(keys, (size_t)n, sizeof *keys, cmp_str_ptr);
    const char *dup = NULL;
    for (i = 1; i < n && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            dup = keys[i];
    free(keys);
    return dup;
}

cJSON *fp_json_parse(const char *body, size_t len, int max_depth, fp_code *code, char *detail,
                     size_t dl)
{
    if (!fp_utf8_valid(body, len)) {
        *code = FPC_INVALID_UTF8;
        snprintf(detail, dl, "invalid UTF-8 sequence");
        return NULL;
    }
    if (prescan(body, len, max_depth, code, detail, dl) < 0)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        *code = FPC_MALFORMED_JSON;
        snprintf(detail, dl, "syntax error near byte %zu", end ? (size_t)(end - body) : (size_t)0);
        return NULL;
    }
    /* trailing garbage after the value */
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            *code = FPC_MALFORMED_JSON;
            snprintf(detail, dl, "unexpected data after the JSON value at byte %zu",
                     (size_t)(p - body));
            return NULL;
        }
    }
    const char *dup = find_dup(root);
    if (dup) {
        *code = FPC_DUPLICATE_FIELD;
        snprintf(detail, dl, "\"%.100s\"", dup);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ---- writer ---- */

void fp_json_escape(fp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        fp_buf_append(b, run, (size_t)(s - run));
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        fp_buf_puts(b, esc);
        run = s + 1;
    }
    fp_buf_append(b, run, (size_t)(s - run));
}

void fp_jw_start(fp_jw *w, fp_buf *b, size_t cap)
{
    fp_buf_init(b, cap);
    fp_jw_init(w, b);
}

void fp_jw_init(fp_jw *w, fp_buf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
}

static void sep(fp_jw *w)
{
    if (w->need_comma[w->depth])
        fp_buf_append(w->b, ",", 1);
    w->need_comma[w->depth] = 1;
}

static void open_(fp_jw *w, char c, int in_key)
{
    if (!in_key)
        sep(w);
    fp_buf_append(w->b, &c, 1);
    if (w->depth < 31)
        w->depth++;
    w->need_comma[w->depth] = 0;
}

/* A value directly after a key must not write a comma: keys set this flag. */
static int after_key(fp_jw *w)
{
    int r = w->need_comma[w->depth] == 2;
    if (r)
        w->need_comma[w->depth] = 1;
    return r;
}

void fp_jw_obj_open(fp_jw *w)
{
    open_(w, '{', after_key(w));
}
void fp_jw_arr_open(fp_jw *w)
{
    open_(w, '[', after_key(w));
}

void fp_jw_obj_close(fp_jw *w)
{
    if (w->depth > 0)
        w->depth--;
    fp_buf_append(w->b, "}", 1);
}

void fp_jw_arr_close(fp_jw *w)
{
    if (w->depth > 0)
        w->depth--;
    fp_buf_append(w->b, "]", 1);
}

void fp_jw_key(fp_jw *w, const char *k)
{
    sep(w);
    fp_buf_append(w->b, "\"", 1);
    fp_json_escape(w->b, k);
    fp_buf_append(w->b, "\":", 2);
    w->need_comma[w->depth] = 2;
}

static void scalar_prefix(fp_jw *w)
{
    /* directly after a key the separator is already written */
    if (!after_key(w))
        sep(w);
}

void fp_jw_str(fp_jw *w, const char *s)
{
    if (!s) {
        fp_jw_null(w);
        return;
    }
    scalar_prefix(w);
    fp_buf_append(w->b, "\"", 1);
    fp_json_escape(w->b, s);
    fp_buf_append(w->b, "\"", 1);
}

void fp_jw_int(fp_jw *w, long long v)
{
    scalar_prefix(w);
    fp_buf_printf(w->b, "%lld", v);
}

void fp_jw_bool(fp_jw *w, int v)
{
    scalar_prefix(w);
    fp_buf_puts(w->b, v ? "true" : "false");
}

void fp_jw_null(fp_jw *w)
{
    scalar_prefix(w);
    fp_buf_puts(w->b, "null");
}

void fp_jw_raw(fp_jw *w, const char *json)
{
    scalar_prefix(w);
    fp_buf_puts(w->b, json);
}

void fp_jw_kstr(fp_jw *w, const char *k, const char *s)
{
    fp_jw_key(w, k);
    fp_jw_str(w, s);
}

void fp_jw_kint(fp_jw *w, const char *k, long long v)
{
    fp_jw_key(w, k);
    fp_jw_int(w, v);
}

void fp_jw_kbool(fp_jw *w, const char *k, int v)
{
    fp_jw_key(w, k);
    fp_jw_bool(w, v);
}
