/* test_nofloat.c — a lint run as a ctest: no binary floating point in the
 * invoice core.  Money is integer fen (docs/domain.md §1: a float 19.99 yields the
 * wrong 分 digit), so no .c or .h under src/core (the domain layer; the
 * generic machinery is in src/lib) nor any public header of that layer
 * (the core rows of tests/unit/layers.h) may contain the tokens
 * float, double (so also long double), strtod, strtof, strtold, atof, the
 * GNU/C23 float types, or a floating literal (1.0, .5, 2., 1e3, 0x1p4),
 * outside comments and string or character literals.
 *
 * A small tokenizer skips comments (with backslash-newline continuations),
 * strings and character literals, reads identifiers and preprocessing
 * numbers, and reports file:line for each offending token.
 *
 *   test_nofloat            lint src/core and the domain's headers (must be
 *                           clean), then prove the
 *                           checker bites: tests/data/lint/bad/ must give
 *                           exactly the findings its BAD comments list,
 *                           and this program run on that directory must
 *                           exit non-zero
 *   test_nofloat DIR        lint DIR only; exit 1 if anything is found */
#include "check.h"
#include "layers.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define MAX_FINDINGS 256

typedef struct finding {
    char file[512];
    int line;
    char tok[48];
} finding;

typedef struct lint {
    finding f[MAX_FINDINGS];
    int n;     /* findings (may exceed MAX_FINDINGS; only the first are kept) */
    int files; /* .c/.h files read */
    int quiet; /* do not print findings */
} lint;

static const char *const banned[] = {
    "float",     "double",    "strtod",     "strtof",     "strtold",    "atof",        "wcstod",
    "wcstof",    "wcstold",   "__float128", "__float80",  "_Float16",   "_Float32",    "_Float64",
    "_Float128", "_Float32x", "_Float64x",  "_Decimal32", "_Decimal64", "_Decimal128",
};

static void add_finding(lint *l, const char *file, int line, const char *tok, size_t len)
{
    if (!l->quiet)
        fprintf(stderr, "%s:%d: floating point in the invoice core: %.*s\n", file, line, (int)len,
                tok);
    if (l->n < MAX_FINDINGS) {
        finding *f = &l->f[l->n];
        snprintf(f->file, sizeof f->file, "%s", file);
        f->line = line;
        snprintf(f->tok, sizeof f->tok, "%.*s", (int)(len < 47 ? len : 47), tok);
    }
    l->n++;
}

static int is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Lints the text s[0..n) of file. */
static void lint_text(lint *l, const char *file, const char *s, size_t n)
{
    int line = 1;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '\n') {
            line++;
            i++;
        } else if (c == '/' && i + 1 < n && s[i + 1] == '/') {
            /* line comment; a backslash before the newline continues it */
            i += 2;
            while (i < n && s[i] != '\n') {
                if (s[i] == '\\' && i + 1 < n && s[i + 1] == '\n') {
                    line++;
                    i++;
                }
                i++;
            }
        } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            i += 2;
            while (i < n && !(s[i] == '*' && i + 1 < n && s[i + 1] == '/')) {
                if (s[i] == '\n')
                    line++;
                i++;
            }
            i += 2;
        } else if (c == '"' || c == '\'') {
            /* string or character literal (prefixes u8, L, u, U were read
             * as identifiers); ends at the unescaped quote or a newline */
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
        } else if (is_ident_start(c)) {
            size_t b = i;
            while (i < n && is_ident(s[i]))
                i++;
            for (size_t k = 0; k < NCASES(banned); k++)
                if (strlen(banned[k]) == i - b && memcmp(banned[k], s + b, i - b) == 0)
                    add_finding(l, file, line, s + b, i - b);
        } else if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(s[i + 1]))) {
            /* a preprocessing number: digits, letters, '_', '.', and a sign
             * right after e/E/p/P */
            size_t b = i;
            i++;
            while (i < n) {
                if ((s[i] == '+' || s[i] == '-') && strchr("eEpP", s[i - 1]))
                    i++;
                else if (is_ident(s[i]) || s[i] == '.')
                    i++;
                else
                    break;
            }
            int hex = i - b > 1 && s[b] == '0' && (s[b + 1] == 'x' || s[b + 1] == 'X');
            int fl = 0;
            for (size_t k = b; k < i; k++) {
                char d = s[k];
                if (hex ? (d == 'p' || d == 'P') : (d == '.' || d == 'e' || d == 'E'))
                    fl = 1;
            }
            if (fl)
                add_finding(l, file, line, s + b, i - b);
        } else {
            i++;
        }
    }
}

static int has_suffix(const char *name, const char *suf)
{
    size_t a = strlen(name), b = strlen(suf);
    return a > b && strcmp(name + a - b, suf) == 0;
}

static int lint_file(lint *l, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2);
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
    if (!buf)
        return -1;
    lint_text(l, path, buf, len);
    free(buf);
    l->files++;
    return 0;
}

/* Walks dir (recursively) and lints every .c and .h file.  Returns the
 * number of findings, or -1 if the directory cannot be read. */
static int lint_dir(lint *l, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (lint_dir(l, path) < 0)
                rc = -1;
        } else if (S_ISREG(st.st_mode) &&
                   (has_suffix(e->d_name, ".c") || has_suffix(e->d_name, ".h"))) {
            if (lint_file(l, path) < 0)
                rc = -1;
        }
    }
    closedir(d);
    return rc < 0 ? -1 : l->n;
}

/* The findings a fixture file announces: for each line with a comment
 * opening with BAD and a colon, the
 * tokens listed after it up to the end of the comment. */
static int expected_of(const char *path, finding *out, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    int ln = 0, n = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *m = strstr(line, "/* BAD:");
        if (!m)
            continue;
        m += 3;
        char *end = strstr(m, "*/");
        if (end)
            *end = 0;
        char *save = NULL;
        for (char *t = strtok_r(m + 4, " \t\r\n", &save); t && n < max;
             t = strtok_r(NULL, " \t\r\n", &save)) {
            snprintf(out[n].file, sizeof out[n].file, "%s", path);
            out[n].line = ln;
            snprintf(out[n].tok, sizeof out[n].tok, "%s", t);
            n++;
        }
    }
    fclose(f);
    return n;
}

/* The findings of l for file, in order, equal what the file announces. */
static void check_fixture_file(const lint *l, const char *path)
{
    finding want[64];
    int nw = expected_of(path, want, 64);
    check_ctx("fixture %s", path);
    if (!CHECK_MSG(nw > 0, "fixture announces no findings"))
        return;
    int k = 0;
    for (int i = 0; i < l->n && i < MAX_FINDINGS; i++) {
        const finding *f = &l->f[i];
        if (strcmp(f->file, path) != 0)
            continue;
        if (k < nw)
            CHECK_MSG(f->line == want[k].line && strcmp(f->tok, want[k].tok) == 0,
                      "finding %d: %d:%s, want %d:%s", k, f->line, f->tok, want[k].line,
                      want[k].tok);
        else
            CHECK_MSG(0, "unexpected finding %d:%s", f->line, f->tok);
        k++;
    }
    CHECK_MSG(k == nw, "%d findings, the fixture announces %d", k, nw);
    check_ctx("%s", "");
}

static void test_tokenizer(void)
{
    static const struct {
        const char *text;
        int n;
    } cases[] = {
        {"int x = 1;", 0},
        {"double x;", 1},
        {"/* double */ int x;", 0},
        {"// double\nint x;", 0},
        {"// a \\\n double\nint x;", 0},
        {"// a \\\n x\ndouble y;", 1},
        {"const char *s = \"1.5 double\";", 0},
        {"const char *s = \"a\\\"b double\";", 0},
        {"char c = '\\'' ; double d;", 1},
        {"x = 1.5;", 1},
        {"x = .5;", 1},
        {"x = 5.;", 1},
        {"x = 1e9;", 1},
        {"x = 1E-9;", 1},
        {"x = 0x1p-3;", 1},
        {"x = 0x1E3;", 0},
        {"x = 0xE+1;", 0}, /* one pp-number, an invalid one, but no float */
        {"x = 10ULL;", 0},
        {"s.a = 1; f(...);", 0},
        {"int doubled, floaty, strtod_like;", 0},
        {"long double x;", 1},
        {"x = strtod(p, 0) + atof(p);", 2},
        {"#include <float.h>", 1},
        {"/* unterminated comment double", 0},
        {"\"unterminated string double\ndouble x;", 1},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("tokenizer[%zu] %s", i, cases[i].text);
        static lint l;
        memset(&l, 0, sizeof l);
        l.quiet = 1;
        lint_text(&l, "t.c", cases[i].text, strlen(cases[i].text));
        CHECK_EQ_INT(l.n, cases[i].n);
    }
    check_ctx("%s", "");
}

int main(int argc, char **argv)
{
    static lint l;
    if (argc > 1) {
        int n = lint_dir(&l, argv[1]);
        printf("%s: %d files, %d findings\n", argv[1], l.files, n);
        return n == 0 ? 0 : 1;
    }

    test_tokenizer();

    /* the invoice core is clean */
    check_ctx("src/core");
    memset(&l, 0, sizeof l);
    int n = lint_dir(&l, FP_SOURCE_DIR "/src/core");
    CHECK_EQ_INT(n, 0);
    CHECK_MSG(l.files >= 5, "only %d files read under src/core", l.files);
    printf("src/core: %d files, %d findings\n", l.files, n);

    /* and the domain's public headers */
    check_ctx("core headers");
    memset(&l, 0, sizeof l);
    int nh = 0;
    for (size_t i = 0; i < NCASES(header_layers); i++)
        if (strcmp(header_layers[i].layer, "core") == 0) {
            char path[1024];
            snprintf(path, sizeof path, "%s/include/fapiao/%s", FP_SOURCE_DIR,
                     header_layers[i].header);
            CHECK_MSG(lint_file(&l, path) == 0, "cannot read %s", path);
            nh++;
        }
    CHECK_EQ_INT(l.n, 0);
    CHECK_MSG(nh >= 5, "only %d core headers in layers.h", nh);
    printf("include/fapiao (core): %d files, %d findings\n", l.files, l.n);

    /* the planted fixture is flagged, exactly as announced */
    check_ctx("fixture");
    static const char bad[] = FP_SOURCE_DIR "/tests/data/lint/bad";
    memset(&l, 0, sizeof l);
    l.quiet = 1;
    n = lint_dir(&l, bad);
    CHECK_MSG(n > 0, "the planted fixture is not flagged (%d)", n);
    CHECK_EQ_INT(l.files, 2); /* planted.c, planted.h; notes.txt is not read */
    check_fixture_file(&l, FP_SOURCE_DIR "/tests/data/lint/bad/planted.c");
    check_fixture_file(&l, FP_SOURCE_DIR "/tests/data/lint/bad/planted.h");
    printf("%s: %d files, %d findings (expected)\n", bad, l.files, n);

    /* and the command-line form fails on it, passes on src/core */
    check_ctx("argv[1] mode");
    const char *dirs[2] = {bad, FP_SOURCE_DIR "/src/core"};
    for (int k = 0; k < 2; k++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execl("/proc/self/exe", argv[0], dirs[k], (char *)NULL);
            _exit(127);
        }
        int st = 0;
        CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == (k == 0 ? 1 : 0), "%s: exit status %d",
                  dirs[k], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    check_ctx("%s", "");
    return check_summary();
}
