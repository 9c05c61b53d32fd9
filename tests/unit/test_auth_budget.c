/* test_auth_budget.c — what keeps a flood of failed authentications off the
 * disk (docs/security.md, "Authentication failures"): the access log's size
 * cap, rotation, reopen and count of lines left out (access_log.h), and the
 * audit queue's counts, which never drop a failure (audit_queue.h), against
 * a real store in a temporary directory. */
#include "check.h"

#include "../../src/server/access_log.h"
#include "../../src/server/audit_queue.h"
#include "fapiao/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/fapiao-test-authbudget-XXXXXX";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static int count_lines(const char *p, const char *needle)
{
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (!needle || strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

/* The sum of "count":N over the suppressed-lines summaries in p. */
static long suppressed_sum(const char *p)
{
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    char line[512];
    long sum = 0;
    while (fgets(line, sizeof line, f)) {
        const char *c = strstr(line, "\"event\":\"access_log_suppressed\",\"count\":");
        if (c)
            sum += strtol(c + strlen("\"event\":\"access_log_suppressed\",\"count\":"), NULL, 10);
    }
    fclose(f);
    return sum;
}

static void test_rotation(void)
{
    check_ctx("%s", "rotation");
    char path[256], old[300];
    snprintf(path, sizeof path, "%s/access.log", tmpdir);
    snprintf(old, sizeof old, "%s.1", path);
    fp_access_log *l = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_access_log_open(path, 1000, 3600 * 1000, &l, &err) == 0, "%s", err.msg))
        return;
    char line[101];
    for (int i = 0; i < 30; i++) { /* 100-byte lines: ten fill the file exactly */
        memset(line, 'a' + i % 26, 99);
        line[99] = '\n';
        fp_access_log_line(l, line, 100);
    }
    fp_access_log_stats st;
    fp_access_log_stats_get(l, &st);
    CHECK(st.lines == 30 && st.rotations == 2);
    CHECK(file_size(path) == 1000 && file_size(old) == 1000);
    CHECK(count_lines(path, "uuuu") == 1 && count_lines(old, "kkkk") == 1); /* 21st and 11th */
    /* reopen (logrotate moved the file away) */
    char moved[300];
    snprintf(moved, sizeof moved, "%s.moved", path);
    CHECK(rename(path, moved) == 0);
    CHECK(fp_access_log_reopen(l, &err) == 0);
    fp_access_log_line(l, "after-reopen\n", 13);
    CHECK(count_lines(path, "after-reopen") == 1 && count_lines(moved, "after-reopen") == 0);
    fp_access_log_close(l);
    remove(path);
    remove(old);
    remove(moved);
    check_ctx("%s", "");
}

static void test_suppressed(void)
{
    check_ctx("%s", "suppressed");
    char path[256];
    snprintf(path, sizeof path, "%s/quiet.log", tmpdir);
    fp_access_log *l = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_access_log_open(path, 0, 3600 * 1000, &l, &err) == 0, "%s", err.msg))
        return;
    for (int i = 0; i < 7; i++)
        fp_access_log_suppress(l);
    fp_access_log_line(l, "{\"status\":200}\n", 15);
    /* within the summary interval: the one line, no summary yet */
    CHECK(count_lines(path, NULL) == 1);
    fp_access_log_stats st;
    fp_access_log_stats_get(l, &st);
    CHECK(st.suppressed == 7 && st.lines == 1);
    fp_access_log_close(l); /* the pending count is written at close */
    CHECK(count_lines(path, NULL) == 2 && suppressed_sum(path) == 7);
    remove(path);

    /* a summary interval of 1 ms: summaries come as suppressions go on, and
     * their counts add up to every line left out */
    if (!CHECK(fp_access_log_open(path, 0, 1, &l, &err) == 0))
        return;
    for (int i = 0; i < 2000; i++) {
        fp_access_log_suppress(l);
        if (i % 500 == 0)
            usleep(2000);
    }
    fp_access_log_close(l);
    CHECK(suppressed_sum(path) == 2000);
    CHECK(count_lines(path, NULL) >= 2); /* more than the one at close */
    remove(path);
    check_ctx("%s", "");
}

typedef struct tally {
    int single, repeated, star;
    long counted;
} tally;

static void on_row(const fp_audit_view *v, void *arg)
{
    tally *t = arg;
    if (!strcmp(v->action, "auth.failure")) {
        t->single++;
    } else if (!strcmp(v->action, "auth.failure.repeated")) {
        long n = 0;
        if (sscanf(v->target, "count=%ld window=", &n) == 1)
            t->counted += n;
        t->repeated++;
        if (!strcmp(v->client_ip, "*"))
            t->star++;
    }
}

static void test_audit_counts(void)
{
    check_ctx("%s", "audit counts");
    char db[256];
    snprintf(db, sizeof db, "%s/fapiao.db", tmpdir);
    fp_store_opts o = {.path = db, .audit_checkpoint_every = -1, .audit_checkpoint_secs = -1};
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_open(&o, &s, &err) == 0, "fp_store_open: %s", err.msg))
        return;
    fp_audit_queue *q = NULL;
    /* room for 3 records; a window of an hour: counts are written at stop */
    if (!CHECK(fp_audit_queue_start(s, 3, 3600 * 1000, &q, &err) == 0)) {
        fp_store_close(s);
        return;
    }
    /* the flusher runs every 200 ms: add faster than that, in one go */
    for (int i = 0; i < 5; i++) /* 3 queued, 2 without room: counted, not dropped */
        fp_audit_queue_add(q, "cli-x", "auth.failure", "POST /v1/token", "r1", "10.0.0.1",
                           "UNAUTHENTICATED", 0, NULL);
    for (int i = 0; i < 4; i++)
        fp_audit_queue_count(q, "10.0.0.2", "auth.failure", "UNAUTHENTICATED");
    char ip[48];
    for (int i = 0; i < 400; i++) { /* more addresses than the table keeps: "*" */
        snprintf(ip, sizeof ip, "10.1.%d.%d", i / 250, i % 250);
        fp_audit_queue_count(q, ip, "auth.failure", "AUTH_FAILURES_LIMITED");
    }
    fp_audit_queue_stats st;
    fp_audit_queue_stats_get(q, &st);
    fp_audit_queue_stop(q);
    tally t = {0};
    CHECK(fp_store_audit_rows(s, 0, 0, 10000, on_row, &t) == 0);
    /* 5 + 4 + 400 failures: every one there, one by one or counted */
    CHECK_MSG(t.single + t.counted == 409, "single %d counted %ld", t.single, t.counted);
    CHECK(t.single >= 3 && t.single <= 5);
    CHECK(t.star == 1);
    CHECK_MSG(t.repeated <= FP_AUDIT_AGG_KEYS + 2, "%d .repeated rows", t.repeated);
    CHECK(st.counted >= 404);
    fp_store_close(s);
    check_ctx("%s", "");
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_rotation();
    test_suppressed();
    test_audit_counts();
    nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return check_summary();
}
