/* check.h — the unit-test harness: a handful of macros, no framework.
 *
 * A failed check prints "file:line: [context] expression (values)" to stderr
 * and the test goes on, so one run shows every broken case of a table, not
 * just the first.  main() ends with `return check_summary();`, which prints
 * exactly one line, "N passed, N failed", and returns non-zero when
 * anything failed (ctest reads the exit status).
 *
 * Tests are tables of cases walked by a loop; check_ctx() names the case
 * being checked so a failure message says which row broke:
 *
 *     for (size_t i = 0; i < NCASES(cases); i++) {
 *         check_ctx("money_parse[%zu] \"%s\"", i, cases[i].in);
 *         CHECK_EQ_INT(fp_money_parse(cases[i].in, &fen), cases[i].rc);
 *     }
 */
#ifndef FP_TEST_CHECK_H
#define FP_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

static struct {
    int passed, failed;
    char ctx[256];
} check_state;

/* Names the case that following checks belong to ("" clears it). */
__attribute__((format(printf, 1, 2), unused)) static void check_ctx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(check_state.ctx, sizeof check_state.ctx, fmt, ap);
    va_end(ap);
}

/* Records one outcome; on failure prints where and why.  Returns ok so a
 * caller can skip dependent checks: if (!CHECK(p != NULL)) continue; */
__attribute__((format(printf, 4, 5), unused)) static int
check_record(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        check_state.passed++;
        return 1;
    }
    check_state.failed++;
    fprintf(stderr, "%s:%d: FAILED", file, line);
    if (check_state.ctx[0])
        fprintf(stderr, " [%s]", check_state.ctx);
    fputs(": ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 0;
}

__attribute__((unused)) static int check_summary(void)
{
    printf("%d passed, %d failed\n", check_state.passed, check_state.failed);
    fflush(stdout);
    return check_state.failed ? 1 : 0;
}

#define CHECK(cond) check_record(!!(cond), __FILE__, __LINE__, "%s", #cond)

/* CHECK with a formatted explanation instead of the expression text. */
#define CHECK_MSG(cond, ...) check_record(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define CHECK_EQ_INT(actual, expected)                                                             \
    ({                                                                                             \
        long long check_a_ = (long long)(actual), check_e_ = (long long)(expected);                \
        check_record(check_a_ == check_e_, __FILE__, __LINE__, "%s == %s: got %lld, want %lld",    \
                     #actual, #expected, check_a_, check_e_);                                      \
    })

/* NULL-safe: two NULLs are equal, NULL and a string are not. */
#define CHECK_EQ_STR(actual, expected)                                                             \
    ({                                                                                             \
        const char *check_a_ = (actual), *check_e_ = (expected);                                   \
        int check_ok_ = (check_a_ == NULL || check_e_ == NULL) ? check_a_ == check_e_              \
                                                               : strcmp(check_a_, check_e_) == 0;  \
        check_record(check_ok_, __FILE__, __LINE__, "%s == %s: got \"%s\", want \"%s\"", #actual,  \
                     #expected, check_a_ ? check_a_ : "(null)", check_e_ ? check_e_ : "(null)");   \
    })

/* haystack contains needle (both non-NULL). */
#define CHECK_CONTAINS(haystack, needle)                                                           \
    ({                                                                                             \
        const char *check_h_ = (haystack), *check_n_ = (needle);                                   \
        check_record(check_h_ &&check_n_ &&strstr(check_h_, check_n_) != NULL, __FILE__, __LINE__, \
                     "%s contains %s: \"%s\" lacks \"%s\"", #haystack, #needle,                    \
                     check_h_ ? check_h_ : "(null)", check_n_ ? check_n_ : "(null)");              \
    })

/* A whole test data file, NUL-terminated (caller frees), or NULL.  *len
 * (may be NULL) gets its size. */
__attribute__((unused)) static char *check_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) &&
        fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return p;
}

#endif
