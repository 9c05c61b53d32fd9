/* test_monowait.c — a lint run as a ctest: no timed wait runs on the wall
 * clock (clock.h, docs/architecture.md "Clocks").
 *
 * A deadline on CLOCK_REALTIME moves when the wall clock is stepped (NTP,
 * `date -s`): an hour back and a thread waiting "one second" sleeps an hour
 * and a second; an hour forward and deadlines fire at once.  So in src/ and
 * include/ (outside comments and strings):
 *   - no pthread_cond_timedwait (nor another timed wait or lock) outside
 *     src/lib/clock.c: waits go through fp_cond_wait_until / fp_cond_wait_ms
 *     or an fp_clock's wait (clock.h);
 *   - the condition variable of each such wait is made by
 *     fp_cond_init_mono in the same file (matched by the last name of the
 *     argument: `&s->ckcond` needs `fp_cond_init_mono(&s->ckcond)`);
 *   - no CLOCK_REALTIME, gettimeofday or the like outside the places in
 *     wall_ok[] below, each of which needs wall time for a reason it names
 *     (fp_wall_ms / fp_wall_s of clock.h are the way to read it elsewhere).
 *   - in the files that keep the outbox's deadlines (job_paths[]: next_at,
 *     lease_until, backoffs, kept as Unix times in shared rows), no wall
 *     clock read at all (fp_wall_ms, fp_wall_s, fp_clock_wall_ms, time):
 *     those deadlines run on the steady wall clock (fp_steady_ms,
 *     fp_clock_steady_ms), which a wall-clock step does not move; a
 *     timestamp there is a wall_ok[] row with its reason.
 * A row of wall_ok[] nothing matches any more fails too, so the list
 * shrinks with the code.  (Elsewhere time(NULL) is not linted: it reads
 * whole seconds for timestamps, tokens and certificates' validity.)
 *
 *   test_monowait        lint FP_SOURCE_DIR (must be clean), then the planted
 *                        tree tests/data/lint/monowait (exactly the findings
 *                        its want.txt announces)
 *   test_monowait ROOT   lint the checkout at ROOT only; exit 1 on findings */
#include "check.h"
#include "lint.h"

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define MAX_FINDING 256
#define MAX_INITS   64

/* Timed waits and locks with an absolute CLOCK_REALTIME deadline. */
static const char *const timed_waits[] = {
    "pthread_cond_timedwait",
    "pthread_cond_clockwait",
    "sem_timedwait",
    "sem_clockwait",
    "pthread_mutex_timedlock",
    "pthread_mutex_clocklock",
    "pthread_rwlock_timedrdlock",
    "pthread_rwlock_timedwrlock",
    "mq_timedreceive",
    "mq_timedsend",
};

/* Wall-clock reads. */
static const char *const wall_reads[] = {"CLOCK_REALTIME",       "CLOCK_REALTIME_COARSE",
                                         "CLOCK_REALTIME_ALARM", "CLOCK_TAI",
                                         "gettimeofday",         "ftime"};

/* The files that keep job deadlines, and the wall-clock reads refused there. */
static const char *const job_paths[] = {"src/outbox/", "src/store/sqlite/jobs.c",
                                        "src/store/sqlite/writer.c", "src/server/delivery.c"};
static const char *const job_wall_reads[] = {"fp_wall_ms", "fp_wall_s", "fp_clock_wall_ms", "time"};

/* Where wall time is read on purpose: a path prefix, the function (NULL:
 * any), and why. */
static const struct {
    const char *path, *func, *why;
} wall_ok[] = {
    {"src/lib/clock.c", NULL, "the clocks themselves: fp_wall_ms and fp_wall_s"},
    {"src/server/", "on_completed", "the access-log line's timestamp, read by people"},
    {"src/outbox/outbox.c", "run_notify",
     "a webhook's X-Fapiao-Timestamp: the receiver checks it against its own wall clock"},
    {"src/outbox/redkeeper.c", "form_docs",
     "the red draft's issue time filed with the form: a calendar time for the tax platform"},
    {"src/outbox/redkeeper.c", "adopt_form",
     "a buyer's form's lapse deadline: a calendar time the tax platform keeps"},
    {"src/store/sqlite/jobs.c", "audit", "an audit record's timestamp, read by people"},
};

static int in_job_path(const char *rel)
{
    for (size_t i = 0; i < sizeof job_paths / sizeof job_paths[0]; i++)
        if (strncmp(rel, job_paths[i], strlen(job_paths[i])) == 0)
            return 1;
    return 0;
}

/* The waits of clock.h and the argument that is the condition variable. */
static const struct {
    const char *name;
    int cv_arg; /* 0-based */
} mono_waits[] = {
    {"fp_cond_wait_until", 0},
    {"fp_cond_wait_ms", 0},
    {"fp_clock_wait_until", 1},
    {"fp_clock_wait_ms", 1},
};

typedef struct lint {
    char findings[MAX_FINDING][300];
    int n, files, quiet;
    int ok_used[sizeof wall_ok / sizeof wall_ok[0]];
    /* the current file */
    const char *rel;
    char inits[MAX_INITS][64]; /* cv names made by fp_cond_init_mono */
    int ninits;
    struct {
        char name[64];
        int line;
    } waits[MAX_INITS];
    int nwaits;
    /* an argument being read: which call, which argument, the last name */
    int in_call, call_arg, call_paren, want_arg, is_init;
    char last[64];
    int call_line;
} lint;

__attribute__((format(printf, 2, 3))) static void finding(lint *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lint_vfinding(l->findings[0], sizeof l->findings[0], MAX_FINDING, &l->n, l->quiet, "monowait",
                  fmt, ap);
    va_end(ap);
}

static int tok_in(const lint_tok *t, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lint_tok_is(t, names[i]))
            return 1;
    return 0;
}

/* The end of an argument we wanted: keep its last name. */
static void arg_done(lint *l)
{
    if (!l->last[0])
        return;
    if (l->is_init) {
        if (l->ninits < MAX_INITS)
            snprintf(l->inits[l->ninits++], sizeof l->inits[0], "%s", l->last);
    } else if (l->nwaits < MAX_INITS) {
        snprintf(l->waits[l->nwaits].name, sizeof l->waits[0].name, "%s", l->last);
        l->waits[l->nwaits++].line = l->call_line;
    }
}

static void on_tok(void *arg, const lint_tok *t)
{
    lint *l = arg;
    if (t->def)
        return;
    if (t->kind == TK_IDENT) {
        if (tok_in(t, timed_waits, NCASES(timed_waits)) && strcmp(l->rel, "src/lib/clock.c") != 0)
            finding(l,
                    "%s:%d: %.*s outside src/lib/clock.c: wait with fp_cond_wait_until / "
                    "fp_cond_wait_ms on a condition variable from fp_cond_init_mono (clock.h)",
                    l->rel, t->line, (int)t->n, t->p);
        if (tok_in(t, wall_reads, NCASES(wall_reads)) ||
            (in_job_path(l->rel) && tok_in(t, job_wall_reads, NCASES(job_wall_reads)))) {
            int ok = -1;
            for (size_t i = 0; i < NCASES(wall_ok) && ok < 0; i++)
                if (strncmp(l->rel, wall_ok[i].path, strlen(wall_ok[i].path)) == 0 &&
                    (!wall_ok[i].func || strcmp(t->func, wall_ok[i].func) == 0))
                    ok = (int)i;
            if (ok >= 0)
                l->ok_used[ok] = 1;
            else
                finding(
                    l,
                    "%s:%d: %.*s in %s: deadlines and intervals are measured on "
                    "CLOCK_MONOTONIC (fp_mono_ns, fp_cond_wait_ms); a timestamp reads "
                    "fp_wall_ms (job times: fp_steady_ms), or the place goes into wall_ok[] with "
                    "its reason",
                    l->rel, t->line, (int)t->n, t->p, t->func[0] ? t->func : "file scope");
        }
        if (!l->in_call) {
            for (size_t i = 0; i < NCASES(mono_waits); i++)
                if (lint_tok_is(t, mono_waits[i].name)) {
                    l->in_call = 1;
                    l->want_arg = mono_waits[i].cv_arg;
                    l->is_init = 0;
                }
            if (lint_tok_is(t, "fp_cond_init_mono")) {
                l->in_call = 1;
                l->want_arg = 0;
                l->is_init = 1;
            }
            if (l->in_call) {
                l->call_arg = 0;
                l->call_paren = 0;
                l->last[0] = 0;
                l->call_line = t->line;
            }
        } else if (l->call_paren > 0 && l->call_arg == l->want_arg && t->n < sizeof l->last) {
            memcpy(l->last, t->p, t->n);
            l->last[t->n] = 0;
        }
        return;
    }
    if (!l->in_call || t->kind != TK_PUNCT)
        return;
    char c = t->p[0];
    if (c == '(') {
        l->call_paren++;
    } else if (c == ')') {
        if (--l->call_paren == 0) {
            if (l->call_arg == l->want_arg)
                arg_done(l);
            l->in_call = 0;
        }
    } else if (c == ',' && l->call_paren == 1) {
        if (l->call_arg == l->want_arg)
            arg_done(l);
        l->call_arg++;
    } else if (l->call_paren == 0) {
        l->in_call = 0; /* the name was not called (a declaration or an address) */
    }
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
    l->ninits = l->nwaits = 0;
    l->in_call = 0;
    lint_tokens(text, len, on_tok, l);
    for (int i = 0; i < l->nwaits; i++) {
        int found = 0;
        for (int k = 0; k < l->ninits && !found; k++)
            found = strcmp(l->inits[k], l->waits[i].name) == 0;
        if (!found && strcmp(rel, "src/lib/clock.c") != 0 &&
            strcmp(rel, "include/fapiao/clock.h") != 0)
            finding(l,
                    "%s:%d: a timed wait on %s, which no fp_cond_init_mono in this file makes: "
                    "its deadline is on CLOCK_MONOTONIC, so must its condition variable be",
                    rel, l->waits[i].line, l->waits[i].name);
    }
    free(text);
}

static int lint_tree(lint *l, const char *root, int strict)
{
    int quiet = l->quiet;
    memset(l, 0, sizeof *l);
    l->quiet = quiet;
    if (lint_walk(root, "src", lint_one, l) < 0 || lint_walk(root, "include", lint_one, l) < 0)
        finding(l, "%s: cannot read src/ or include/", root);
    if (strict)
        for (size_t i = 0; i < NCASES(wall_ok); i++)
            if (!l->ok_used[i])
                finding(l,
                        "wall_ok row %s %s is not needed any more: delete it "
                        "(tests/unit/test_monowait.c)",
                        wall_ok[i].path, wall_ok[i].func ? wall_ok[i].func : "");
    return l->n;
}

static void check_fixture(lint *l)
{
    static const char dir[] = FP_SOURCE_DIR "/tests/data/lint/monowait";
    l->quiet = 1;
    int n = lint_tree(l, dir, 0);
    l->quiet = 0;
    lint_check_want(FP_SOURCE_DIR "/tests/data/lint/monowait/want.txt", l->findings[0],
                    sizeof l->findings[0], n, MAX_FINDING);
    printf("%s: %d files, %d findings (expected)\n", dir, l->files, n);
}

int main(int argc, char **argv)
{
    static lint l;
    if (argc > 1) {
        int n = lint_tree(&l, argv[1], 1);
        printf("%s: %d files, %d findings\n", argv[1], l.files, n);
        return n == 0 ? 0 : 1;
    }
    check_ctx("the tree");
    int n = lint_tree(&l, FP_SOURCE_DIR, 1);
    CHECK_EQ_INT(n, 0);
    CHECK_MSG(l.files > 100, "only %d files read", l.files);
    printf("%s: %d files, %d findings\n", FP_SOURCE_DIR, l.files, n);
    check_ctx("the planted tree");
    check_fixture(&l);
    check_ctx("%s", "");
    return check_summary();
}
