/* test_clock.c — the issue clock (docs/operations.md, "Clock"): the pure
 * verdict as a table, then the store with an injected clock across a New
 * Year: a small backward step issues at the mark (date and number year stay
 * 2027), a large one is refused (CLOCK_BEHIND) and stores nothing, a
 * forward jump is refused (CLOCK_JUMPED) until confirmed, the mark survives
 * a reopen, and issue times never go backwards in number order. */
#include "check.h"

#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/invoice.h"
#include "fapiao/store.h"

#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

static char tmpdir[] = "/tmp/fapiao-test-clock-XXXXXX";
static fp_invoice inv;
static const fp_seller seller = {.name = "演示销售方有限公司", .tax_id = "91310000MA1FL00001"};

/* 2027-01-01T00:00:10+08:00 */
#define NEW_YEAR_10S ((int64_t)1798732810)

static void fatal(const char *what)
{
    fprintf(stderr, "test_clock: fatal: %s (files left in %s)\n", what, tmpdir);
    check_record(0, __FILE__, __LINE__, "fatal: %s", what);
    check_summary();
    fflush(NULL);
    _exit(1);
}

/* ---- the verdict ---- */

static void test_decide(void)
{
    static const struct {
        const char *name;
        int64_t mark, base_wall, base_boot, now, boot;
        fp_clock_verdict want;
        int64_t use;
    } cases[] = {
        {"nothing issued yet", 0, 1000, 50, 1000, 50, FP_CLOCK_OK, 1000},
        {"clock moves on", 1000, 1000, 50, 1010, 60, FP_CLOCK_OK, 1010},
        {"same second", 1000, 1000, 50, 1000, 50, FP_CLOCK_OK, 1000},
        {"backward 1 s: the mark", 1000, 1000, 50, 999, 51, FP_CLOCK_OK, 1000},
        {"backward 60 s: the mark", 1000, 1000, 50, 940, 51, FP_CLOCK_OK, 1000},
        {"backward 61 s: refused", 1000, 1000, 50, 939, 51, FP_CLOCK_BEHIND, 0},
        {"backward an hour: refused", 10000, 10000, 50, 6400, 51, FP_CLOCK_BEHIND, 0},
        {"idle for a week (real time passed)", 1000, 1000, 50, 1000 + 7 * 86400, 50 + 7 * 86400,
         FP_CLOCK_OK, 1000 + 7 * 86400},
        {"jump of a day exactly", 1000, 1000, 50, 1000 + 86400, 50, FP_CLOCK_OK, 1000 + 86400},
        {"jump of a day and a second", 1000, 1000, 50, 1000 + 86401, 50, FP_CLOCK_JUMPED, 0},
        {"jump of two days after an hour's wait", 1000, 1000, 50, 1000 + 3600 + 2 * 86400,
         50 + 3600, FP_CLOCK_JUMPED, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("decide: %s", cases[i].name);
        fp_issue_clock c = {.mark = cases[i].mark,
                            .base_wall = cases[i].base_wall,
                            .base_boot = cases[i].base_boot,
                            .step_s = 60,
                            .jump_s = 86400};
        int64_t use = 0;
        CHECK_EQ_INT(fp_issue_clock_decide(&c, cases[i].now, cases[i].boot, &use), cases[i].want);
        if (cases[i].want == FP_CLOCK_OK)
            CHECK_EQ_INT(use, cases[i].use);
    }
    check_ctx("%s", "");
}

/* ---- the store with an injected clock ---- */

static int64_t fake_wall, fake_boot;

static void fake_clock(int64_t *wall, int64_t *boot)
{
    *wall = fake_wall;
    *boot = fake_boot;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int answered;
} waiter;

static void on_done(fp_issue_req *r, void *arg)
{
    (void)r;
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->answered = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void cst(int64_t t, char out[32])
{
    time_t c = (time_t)t + 8 * 3600;
    struct tm tm;
    gmtime_r(&c, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

/* One request read at the fake clock, as the HTTP handler makes it: the
 * document carries the clock's reading. */
static fp_issue_req *issue(fp_store *s, int64_t seller_id, const char *serial)
{
    char at[32];
    cst(fake_wall, at);
    fp_issue_req *r = calloc(1, sizeof *r);
    if (!r || fp_invoice_render(&inv, &seller, serial, at, &r->doc) < 0)
        fatal("cannot render a request document");
    r->seller_id = seller_id;
    snprintf(r->serial, sizeof r->serial, "%s", serial);
    memset(r->request_hash, serial[strlen(serial) - 1], sizeof r->request_hash);
    memcpy(r->invoice_type, inv.invoice_type, sizeof r->invoice_type);
    r->total_with_tax = inv.total_with_tax;
    r->issued_at = fake_wall;
    snprintf(r->actor, sizeof r->actor, "test-client");
    snprintf(r->request_id, sizeof r->request_id, "rid-%s", serial);
    waiter w = {.answered = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    r->done = on_done;
    r->arg = &w;
    fp_store_submit(s, r);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&w.mu);
    while (!w.answered)
        if (pthread_cond_timedwait(&w.cv, &w.mu, &dl) != 0 && !w.answered)
            fatal("no answer within 10 s");
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return r;
}

static void req_free(fp_issue_req *r)
{
    free(r->response);
    free(r->doc.json);
    free(r);
}

static fp_store *open_at(const char *path)
{
    fp_store_opts o = {.path = path, .clock_now = fake_clock};
    fp_store *s = NULL;
    fp_err err = {0};
    if (fp_store_open(&o, &s, &err) < 0) {
        fprintf(stderr, "fp_store_open: %s\n", err.msg);
        fatal("cannot open the store");
    }
    return s;
}

static int64_t db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* CREATED, numbered in year yy, issued at t (row, response and r). */
static void check_created_at(const fp_issue_req *r, const char *yy, int64_t t)
{
    if (!CHECK_EQ_INT(r->result, FP_ISSUE_CREATED))
        return;
    CHECK_MSG(!strncmp(r->number, yy, 2), "number %s is not of year %s", r->number, yy);
    CHECK_EQ_INT(r->issued_at, t);
    char want[64];
    char at[32];
    cst(t, at);
    snprintf(want, sizeof want, "\"issued_at\":\"%s\"", at);
    CHECK_CONTAINS(r->response, want);
}

static void test_store_new_year(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/clock.db", tmpdir);
    fake_wall = NEW_YEAR_10S;
    fake_boot = 5000;
    fp_store *s = open_at(path);
    fp_err err = {0};
    int64_t sid = 0;
    if (fp_store_add_seller(s, &seller, &sid, &err) < 0 ||
        fp_store_add_range(s, sid, "26440", 1, 100, NULL, &err) < 0 ||
        fp_store_add_range(s, sid, "27440", 1, 100, NULL, &err) < 0)
        fatal(err.msg);

    check_ctx("first invoice of 2027");
    fp_issue_req *a = issue(s, sid, "ny-1");
    check_created_at(a, "27", NEW_YEAR_10S);

    check_ctx("30 s back, across New Year: issued at the mark, still 2027");
    fake_wall = NEW_YEAR_10S - 30; /* 2026-12-31T23:59:40+08:00 */
    fake_boot += 1;
    fp_issue_req *b = issue(s, sid, "ny-2");
    check_created_at(b, "27", NEW_YEAR_10S);
    CHECK(strstr(b->response, "2026-12-31") == NULL);

    check_ctx("an hour back: CLOCK_BEHIND, nothing stored");
    fake_wall = NEW_YEAR_10S - 3600;
    fake_boot += 1;
    fp_issue_req *c = issue(s, sid, "ny-3");
    CHECK_EQ_INT(c->result, FP_ISSUE_CLOCK_BEHIND);
    CHECK_EQ_INT(c->clock_mark, NEW_YEAR_10S);
    CHECK_EQ_INT(c->clock_retry_s, 3600 - 60);
    CHECK(c->response == NULL);
    CHECK_EQ_STR(c->number, "");

    check_ctx("the clock passes the mark again");
    fake_wall = NEW_YEAR_10S + 5;
    fake_boot += 3600;
    fp_issue_req *d = issue(s, sid, "ny-4");
    check_created_at(d, "27", NEW_YEAR_10S + 5);

    check_ctx("a jump of two days within a second: CLOCK_JUMPED");
    int64_t jumped = NEW_YEAR_10S + 5 + 2 * 86400;
    fake_wall = jumped;
    fake_boot += 1;
    fp_issue_req *e = issue(s, sid, "ny-5");
    CHECK_EQ_INT(e->result, FP_ISSUE_CLOCK_JUMPED);
    CHECK_EQ_INT(e->clock_mark, NEW_YEAR_10S + 5);
    int64_t mark = 0, confirmed = 0;
    CHECK_EQ_INT(fp_store_clock_get(s, &mark, &confirmed, &err), 0);
    CHECK_EQ_INT(mark, NEW_YEAR_10S + 5); /* not poisoned */
    CHECK_EQ_INT(confirmed, 0);

    check_ctx("confirmed: issued at the new time");
    CHECK_EQ_INT(fp_store_clock_confirm(s, "cli:test", &err), 0);
    fp_issue_req *f = issue(s, sid, "ny-5");
    check_created_at(f, "27", jumped);
    fp_store_close(s);

    check_ctx("after a reopen: the mark is kept");
    CHECK_EQ_INT(db_int(path, "SELECT mark FROM issue_clock"), jumped);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit WHERE action='clock.confirm'"), 1);
    fake_wall = jumped - 7200;
    fake_boot = 10; /* a reboot */
    s = open_at(path);
    fp_issue_req *g = issue(s, sid, "ny-6");
    CHECK_EQ_INT(g->result, FP_ISSUE_CLOCK_BEHIND);
    fake_wall = jumped + 1;
    fp_issue_req *h = issue(s, sid, "ny-7");
    check_created_at(h, "27", jumped + 1);
    fp_store_close(s);

    check_ctx("issue times and audit times never go backwards in order");
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices"), 5);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices a JOIN invoices b "
                              "ON b.number > a.number WHERE b.issued_at < a.issued_at"),
                 0);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM invoices WHERE number LIKE '26%'"), 0);
    CHECK_EQ_INT(db_int(path, "SELECT count(*) FROM audit a JOIN audit b ON b.id > a.id "
                              "WHERE a.action LIKE 'invoice.issue%' AND b.action LIKE "
                              "'invoice.issue%' AND b.ts < a.ts"),
                 0);
    fp_issue_req *all[] = {a, b, c, d, e, f, g, h};
    for (size_t i = 0; i < NCASES(all); i++)
        req_free(all[i]);
    check_ctx("%s", "");
}

/* audit verify reports time going backwards (more than 60 s), in the
 * audit records and in the invoices' issue times; the chain stays intact. */
static void test_verify_backwards(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/clock.db", tmpdir); /* from test_store_new_year */
    char key[PATH_MAX], pub[PATH_MAX];
    unsigned char pk[FP_AUDIT_KEY_LEN];
    fp_err err = {0};
    if (fp_audit_key_paths(path, NULL, key, pub, PATH_MAX) < 0 ||
        fp_audit_pub_load(pub, pk, &err) < 0)
        fatal("cannot load the audit public key");
    fp_audit_report rep;
    check_ctx("verify: the store's own log goes forward");
    CHECK_EQ_INT(fp_audit_verify_db(path, pk, 0, &rep, &err), 0);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_INTACT);
    CHECK_EQ_INT(rep.ts_back, 0);
    CHECK_EQ_INT(rep.inv_back, 0);

    check_ctx("verify: a record written by a clock an hour back");
    int64_t mark = db_int(path, "SELECT mark FROM issue_clock");
    fake_wall = mark + 10;
    fake_boot = 20;
    fp_store *s = open_at(path);
    fp_audit_rec back = {.ts = mark - 3600,
                         .actor = "cli:test",
                         .action = "keys.create",
                         .target = "x",
                         .outcome = "ok"};
    fp_audit_rec fwd = {.ts = mark + 20,
                        .actor = "cli:test",
                        .action = "keys.create",
                        .target = "y",
                        .outcome = "ok"};
    CHECK_EQ_INT(fp_store_audit(s, &back, &err), 0);
    CHECK_EQ_INT(fp_store_audit(s, &fwd, &err), 0);
    int64_t back_id = db_int(path, "SELECT id FROM audit WHERE target='x'");
    fp_store_close(s);
    CHECK_EQ_INT(fp_audit_verify_db(path, pk, 0, &rep, &err), 0);
    CHECK_EQ_INT(rep.kind, FP_AUDIT_INTACT);
    CHECK_EQ_INT(rep.ts_back, 1);
    CHECK_EQ_INT(rep.ts_back_first, back_id);
    CHECK(rep.ts_back_max >= 3600);

    check_ctx("verify: an invoice stored with an earlier issue time (old data)");
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(db,
                     "UPDATE invoices SET issued_at = issued_at - 86400 "
                     "WHERE rowid = (SELECT max(rowid) FROM invoices)",
                     NULL, NULL, NULL) != SQLITE_OK)
        fatal("cannot edit the invoices");
    sqlite3_close(db);
    CHECK_EQ_INT(fp_audit_verify_db(path, pk, 0, &rep, &err), 0);
    CHECK_EQ_INT(rep.inv_back, 1);
    CHECK(rep.inv_back_max > 86000);
    CHECK_MSG(!strncmp(rep.inv_back_first, "27440", 5), "first: %s", rep.inv_back_first);
    check_ctx("%s", "");
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(void)
{
    char *example = check_read_file(FP_SOURCE_DIR "/examples/invoice.json", NULL);
    static fp_errors es;
    if (!example || fp_invoice_parse(example, strlen(example), NULL, &inv, &es) != 0)
        fatal("examples/invoice.json does not parse");
    if (!mkdtemp(tmpdir))
        fatal("mkdtemp");
    test_decide();
    test_store_new_year();
    test_verify_backwards();
    CHECK_MSG(nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", tmpdir);
    fp_invoice_clear(&inv);
    free(example);
    return check_summary();
}
