/* test_sizes.c — a lint run as a ctest: no file of src/ or include/ is over
 * MAX_FILE_LINES lines and no C function over MAX_FUNC_LINES lines (issue 14:
 * a file a reader can hold, a function a reviewer can follow; split by
 * concern before a limit is reached, never raise it to let one file pass).
 *
 * A function's length is counted the way clang-format lays the tree out
 * (.clang-format, BreakBeforeBraces: Linux): a definition's `{` and its
 * closing `}` each stand alone at column 0, so the body runs from a line
 * that starts with `{` to the next line that starts with `}`, both counted.
 * The tokenizer of lint.h (brace depth, comments and literals skipped)
 * checks that layout: a definition whose body does not open and close at
 * column 0 is a finding of its own, so no function escapes the count by
 * being written another way.
 *
 *   test_sizes           lint FP_SOURCE_DIR (must be clean; prints the
 *                        longest functions), then the planted tree
 *                        tests/data/lint/sizes (exactly the findings its
 *                        want.txt announces)
 *   test_sizes ROOT      lint the checkout at ROOT only; exit 1 on findings */
#include "check.h"
#include "lint.h"

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define MAX_FILE_LINES 900
#define MAX_FUNC_LINES 150
#define MAX_FINDING    64
#define MAX_BODIES     1024
#define TOP            3

typedef struct body {
    int open, close; /* lines of the `{` and `}` at column 0 */
} body;

typedef struct func_len {
    char name[128], rel[256];
    int line, lines;
} func_len;

typedef struct lint {
    char findings[MAX_FINDING][300];
    int n, files, funcs, quiet;
    func_len top[TOP]; /* the longest functions, longest first */
    /* the current file */
    const char *rel;
    body bodies[MAX_BODIES]; /* found at column 0 */
    int nbodies;
    char def[128]; /* the tokenizer's definition being read */
    int def_line;
} lint;

__attribute__((format(printf, 2, 3))) static void finding(lint *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lint_vfinding(l->findings[0], sizeof l->findings[0], MAX_FINDING, &l->n, l->quiet, "sizes", fmt,
                  ap);
    va_end(ap);
}

static void keep_top(lint *l, const char *name, int line, int lines)
{
    int at = TOP;
    while (at > 0 && lines > l->top[at - 1].lines)
        at--;
    if (at == TOP)
        return;
    memmove(&l->top[at + 1], &l->top[at], sizeof l->top[0] * (size_t)(TOP - 1 - at));
    func_len *f = &l->top[at];
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->rel, sizeof f->rel, "%s", l->rel);
    f->line = line;
    f->lines = lines;
}

/* One definition seen by the tokenizer, its `{` at open and its `}` at
 * close: it must be a body found at column 0; then its length counts. */
static void one_func(lint *l, const char *name, int open, int close)
{
    int found = 0;
    for (int i = 0; i < l->nbodies && !found; i++)
        found = l->bodies[i].open == open && l->bodies[i].close == close;
    l->funcs++;
    if (!found) {
        finding(l,
                "%s:%d: function %s: its body's { and } are not each alone at column 0 (the "
                "layout of .clang-format), so its length cannot be counted: run clang-format",
                l->rel, open, name);
        return;
    }
    int lines = close - open + 1;
    keep_top(l, name, open, lines);
    if (lines > MAX_FUNC_LINES)
        finding(l, "%s:%d: function %s is %d lines (at most %d): split it", l->rel, open, name,
                lines, MAX_FUNC_LINES);
}

static void on_tok(void *arg, const lint_tok *t)
{
    lint *l = arg;
    if (t->def == 1 && t->n < sizeof l->def) {
        memcpy(l->def, t->p, t->n);
        l->def[t->n] = 0;
        l->def_line = t->line;
        return;
    }
    if (t->def || t->kind != TK_PUNCT || t->p[0] != '}' || t->depth != 1)
        return;
    /* a closing brace back to file level: the end of a body, or of a struct,
     * union, enum or initialiser (no definition pending) */
    if (l->def[0])
        one_func(l, l->def, l->def_line, t->line);
    l->def[0] = 0;
}

static void lint_one(void *arg, const char *path, const char *rel)
{
    lint *l = arg;
    size_t len = 0;
    char *text = lint_read(path, &len);
    if (!text) {
        finding(l, "%s: cannot read", rel);
        return;
    }
    l->files++;
    l->rel = rel;
    int lines = 0, open = 0;
    l->nbodies = 0;
    for (size_t i = 0; i < len; i++) {
        if (i == 0 || text[i - 1] == '\n') {
            lines++;
            if (text[i] == '{') {
                open = lines;
            } else if (text[i] == '}' && open) {
                if (l->nbodies < MAX_BODIES)
                    l->bodies[l->nbodies++] = (body){open, lines};
                open = 0;
            }
        }
    }
    if (lines > MAX_FILE_LINES)
        finding(l, "%s is %d lines (at most %d): split it by concern", rel, lines, MAX_FILE_LINES);
    l->def[0] = 0;
    lint_tokens(text, len, on_tok, l);
    free(text);
}

static int lint_tree(lint *l, const char *root)
{
    int quiet = l->quiet;
    memset(l, 0, sizeof *l);
    l->quiet = quiet;
    if (lint_walk(root, "src", lint_one, l) < 0 || lint_walk(root, "include", lint_one, l) < 0)
        finding(l, "%s: cannot read src/ or include/", root);
    return l->n;
}

static void check_fixture(lint *l)
{
    static const char dir[] = FP_SOURCE_DIR "/tests/data/lint/sizes";
    l->quiet = 1;
    int n = lint_tree(l, dir);
    l->quiet = 0;
    lint_check_want(FP_SOURCE_DIR "/tests/data/lint/sizes/want.txt", l->findings[0],
                    sizeof l->findings[0], n, MAX_FINDING);
    printf("%s: %d files, %d functions, %d findings (expected)\n", dir, l->files, l->funcs, n);
}

int main(int argc, char **argv)
{
    static lint l;
    if (argc > 1) {
        int n = lint_tree(&l, argv[1]);
        printf("%s: %d files, %d functions, %d findings\n", argv[1], l.files, l.funcs, n);
        return n == 0 ? 0 : 1;
    }
    check_ctx("the tree");
    int n = lint_tree(&l, FP_SOURCE_DIR);
    CHECK_EQ_INT(n, 0);
    CHECK_MSG(l.files > 100, "only %d files read", l.files);
    CHECK_MSG(l.funcs > 1000, "only %d functions read", l.funcs);
    printf("%s: %d files, %d functions, %d findings; the longest functions:\n", FP_SOURCE_DIR,
           l.files, l.funcs, n);
    for (int i = 0; i < TOP && l.top[i].lines; i++)
        printf("  %4d lines  %s (%s:%d)\n", l.top[i].lines, l.top[i].name, l.top[i].rel,
               l.top[i].line);
    check_ctx("the planted tree");
    check_fixture(&l);
    check_ctx("%s", "");
    return check_summary();
}
