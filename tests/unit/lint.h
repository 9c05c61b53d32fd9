/* lint.h — what the source lints share (test_layers.c, test_monowait.c):
 * reading a file, walking a tree, and a tokenizer for C that skips comments,
 * string and character literals, so a word in a comment or a message is
 * never a finding.
 *
 * lint_tokens() cuts a file into identifiers, numbers (one token per
 * preprocessing number), preprocessor directives (one token per logical
 * line, text after the '#') and single punctuation characters, each with its
 * line, the brace depth it stands at and, for tokens inside a function body,
 * the name of that function (the identifier before the last '(' at file
 * level before the body's '{'; good enough for this code base, which has no
 * K&R definitions and no functions returning function pointers). */
#ifndef FP_TEST_LINT_H
#define FP_TEST_LINT_H

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { TK_IDENT, TK_NUMBER, TK_DIRECTIVE, TK_PUNCT };

typedef struct lint_tok {
    int kind;
    const char *p; /* into the file's text */
    size_t n;
    int line;
    int depth;        /* braces open before the token */
    const char *func; /* enclosing function ("" at file level) */
    int def;          /* TK_IDENT only: 1 this name is defined here (a
                         function body follows), 2 declared (a prototype);
                         such tokens are extra: the name was seen before */
    int def_static;   /* ... and the definition is static */
} lint_tok;

typedef void lint_tok_fn(void *arg, const lint_tok *t);

static int lint_is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int lint_is_ident(char c)
{
    return lint_is_ident_start(c) || (c >= '0' && c <= '9');
}

static int lint_tok_is(const lint_tok *t, const char *s)
{
    return strlen(s) == t->n && memcmp(t->p, s, t->n) == 0;
}

/* Reads a whole file (NUL-terminated); NULL if it cannot. */
static char *lint_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap + 1);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

/* Tokens of s[0..n), in order, to fn. */
static void lint_tokens(const char *s, size_t n, lint_tok_fn *fn, void *arg)
{
    static const char *const not_funcs[] = {"if",      "while",  "for",           "switch",
                                            "return",  "sizeof", "__attribute__", "_Alignof",
                                            "alignof", "defined"};
    int line = 1, depth = 0, paren = 0, at_line_start = 1;
    char func[128] = "", cand[128] = "";
    int cand_static = 0, stmt_static = 0;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '\n') {
            line++;
            i++;
            at_line_start = 1;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            i++;
            continue;
        }
        if (c == '\\' && i + 1 < n && s[i + 1] == '\n') {
            line++;
            i += 2;
            continue;
        }
        if (c == '/' && i + 1 < n && s[i + 1] == '/') {
            while (i < n && s[i] != '\n') {
                if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\n') {
                    line++;
                    i++;
                }
                i++;
            }
            continue;
        }
        if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            i += 2;
            while (i < n && !(s[i] == '*' && i + 1 < n && s[i + 1] == '/')) {
                if (s[i] == '\n')
                    line++;
                i++;
            }
            i += 2;
            continue;
        }
        lint_tok t = {.line = line, .depth = depth, .func = depth ? func : ""};
        if (c == '#' && at_line_start) {
            /* a directive: to the end of the logical line; comments in it
             * are kept (an include line has none worth reading) */
            size_t b = ++i;
            while (i < n && s[i] != '\n') {
                if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\n') {
                    line++;
                    i++;
                }
                i++;
            }
            while (b < i && (s[b] == ' ' || s[b] == '\t'))
                b++;
            t.kind = TK_DIRECTIVE;
            t.p = s + b;
            t.n = i - b;
            fn(arg, &t);
            continue;
        }
        at_line_start = 0;
        if (c == '"' || c == '\'') {
            i++;
            while (i < n && s[i] != c && s[i] != '\n') {
                if (s[i] == '\\' && i + 1 < n) {
                    if (s[i + 1] == '\n')
                        line++;
                    i++;
                }
                i++;
            }
            if (i < n && s[i] == c)
                i++;
            continue; /* literals are not tokens for the lints */
        }
        if (lint_is_ident_start(c)) {
            size_t b = i;
            while (i < n && lint_is_ident(s[i]))
                i++;
            t.kind = TK_IDENT;
            t.p = s + b;
            t.n = i - b;
            if (depth == 0 && paren == 0 && lint_tok_is(&t, "static"))
                stmt_static = 1;
            /* a name followed by '(' at file level may be a definition */
            size_t k = i;
            while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n'))
                k++;
            if (depth == 0 && paren == 0 && k < n && s[k] == '(') {
                int keyword = 0;
                for (size_t q = 0; q < sizeof not_funcs / sizeof not_funcs[0]; q++)
                    keyword |= lint_tok_is(&t, not_funcs[q]);
                if (!keyword && t.n < sizeof cand) {
                    memcpy(cand, t.p, t.n);
                    cand[t.n] = 0;
                    cand_static = stmt_static;
                }
            }
            fn(arg, &t);
            continue;
        }
        if (c >= '0' && c <= '9') {
            size_t b = i;
            while (i < n && (lint_is_ident(s[i]) || s[i] == '.'))
                i++;
            t.kind = TK_NUMBER;
            t.p = s + b;
            t.n = i - b;
            fn(arg, &t);
            continue;
        }
        /* punctuation */
        t.kind = TK_PUNCT;
        t.p = s + i;
        t.n = 1;
        i++;
        if (c == '(') {
            paren++;
        } else if (c == ')') {
            if (paren > 0)
                paren--;
        } else if (c == '{') {
            if (depth == 0 && paren == 0 && cand[0]) {
                /* a function body opens: report the definition */
                snprintf(func, sizeof func, "%s", cand);
                lint_tok d = {.kind = TK_IDENT,
                              .p = func,
                              .n = strlen(func),
                              .line = line,
                              .depth = 0,
                              .func = "",
                              .def = 1,
                              .def_static = cand_static};
                fn(arg, &d);
            }
            depth++;
            t.depth = depth;
        } else if (c == '}') {
            if (depth > 0)
                depth--;
            if (depth == 0) {
                func[0] = cand[0] = 0;
                stmt_static = 0;
            }
        } else if (c == ';' && depth == 0) {
            if (cand[0] && paren == 0) {
                /* a prototype (or a declaration with a parenthesis) */
                lint_tok d = {.kind = TK_IDENT,
                              .p = cand,
                              .n = strlen(cand),
                              .line = line,
                              .func = "",
                              .def = 2,
                              .def_static = stmt_static};
                fn(arg, &d);
            }
            cand[0] = 0;
            stmt_static = 0;
        } else if (c == '=' && depth == 0 && paren == 0) {
            cand[0] = 0; /* an initialiser follows, not a body */
        }
        fn(arg, &t);
    }
}

/* A lint's finding: printed as "tag: message" on stderr unless quiet, and
 * kept (the first max of them, each a char[stride] of findings) for the
 * planted tree's check; *n counts them all. */
static void lint_vfinding(char *findings, size_t stride, int max, int *n, int quiet,
                          const char *tag, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!quiet)
        fprintf(stderr, "%s: %s\n", tag, msg);
    if (*n < max) {
        size_t k = strnlen(msg, stride - 1);
        memcpy(findings + (size_t)*n * stride, msg, k);
        findings[(size_t)*n * stride + k] = 0;
    }
    (*n)++;
}

static int lint_has_suffix(const char *name, const char *suf)
{
    size_t a = strlen(name), b = strlen(suf);
    return a > b && strcmp(name + a - b, suf) == 0;
}

typedef void lint_file_fn(void *arg, const char *path, const char *rel);

/* Every .c and .h file under root/sub (recursively, sorted by name within a
 * directory so the output is stable) to fn with its path and its path
 * relative to root.  Returns the number of files, or -1 if root/sub cannot
 * be read. */
static int lint_walk(const char *root, const char *sub, lint_file_fn *fn, void *arg)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, sub);
    struct dirent **names;
    int k = scandir(dir, &names, NULL, alphasort);
    if (k < 0)
        return -1;
    int files = 0;
    for (int i = 0; i < k; i++) {
        const char *nm = names[i]->d_name;
        if (nm[0] != '.') {
            char rel[1024], path[2100];
            snprintf(rel, sizeof rel, "%s/%s", sub, nm);
            snprintf(path, sizeof path, "%s/%s", root, rel);
            struct stat st;
            if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                int r = lint_walk(root, rel, fn, arg);
                files += r > 0 ? r : 0;
            } else if (lint_has_suffix(nm, ".c") || lint_has_suffix(nm, ".h")) {
                fn(arg, path, rel);
                files++;
            }
        }
        free(names[i]);
    }
    free(names);
    return files;
}

#ifdef FP_TEST_CHECK_H
/* A planted tree's findings against its want.txt, which announces them one
 * a line (a part of the message; blank and '#' lines skipped): each line
 * must match a finding of its own and no finding may be left over.  The n
 * findings are messages `stride` bytes apart from `findings` (the first max
 * of them kept).  The checks are check.h's; returns the announced count. */
static int lint_check_want(const char *want_path, const char *findings, size_t stride, int n,
                           int max)
{
    size_t len = 0;
    char *want = lint_read(want_path, &len);
    int nw = 0, kept = n < max ? n : max;
    char *used = calloc((size_t)kept + 1, 1);
    if (!CHECK_MSG(want && used, "cannot read %s", want_path)) {
        free(want);
        free(used);
        return -1;
    }
    char *save = NULL;
    for (char *w = strtok_r(want, "\n", &save); w; w = strtok_r(NULL, "\n", &save)) {
        if (!w[0] || w[0] == '#')
            continue;
        nw++;
        int hit = -1;
        for (int i = 0; i < kept && hit < 0; i++)
            if (!used[i] && strstr(findings + (size_t)i * stride, w))
                hit = i;
        if (CHECK_MSG(hit >= 0, "the planted tree should give a finding with \"%s\"", w))
            used[hit] = 1;
    }
    for (int i = 0; i < kept; i++)
        CHECK_MSG(used[i], "unannounced finding on the planted tree: %s",
                  findings + (size_t)i * stride);
    CHECK_EQ_INT(n, nw);
    free(used);
    free(want);
    return nw;
}
#endif

#endif
