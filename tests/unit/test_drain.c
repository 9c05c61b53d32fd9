/* test_drain.c — fp_store_cancel_queued (docs/operations.md, "Shutdown"):
 * with the writer stuck in a commit (a side connection holds the write
 * lock, so the writer waits in BEGIN IMMEDIATE with the first request), the
 * requests still queued fail at once with the given reason and nothing of
 * them is stored; later submissions fail the same way; the request inside
 * the writer's batch is not touched and commits once the lock is free. */
#include "check.h"

#include "fapiao/invoice.h"
#include "fapiao/store.h"

#include <ftw.h>
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

static char tmpdir[] = "/tmp/fapiao-test-drain-XXXXXX";
static fp_invoice inv;
static const fp_seller seller = {.name = "演示销售方有限公司", .tax_id = "91310000MA1FL00001"};

static void fatal(const char *what)
{
    fprintf(stderr, "test_drain: fatal: %s (files left in %s)\n", what, tmpdir);
    check_record(0, __FILE__, __LINE__, "fatal: %s", what);
    check_summary();
    fflush(NULL);
    _exit(1);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int answered;

static void on_done(fp_issue_req *r, void *arg)
{
    (void)r;
    (void)arg;
    pthread_mutex_lock(&mu);
    answered++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int wait_answered(int n, int secs)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += secs;
    pthread_mutex_lock(&mu);
    while (answered < n && pthread_cond_timedwait(&cv, &mu, &dl) == 0)
        ;
    int got = answered;
    pthread_mutex_unlock(&mu);
    return got;
}

static fp_issue_req *mkreq(int64_t sid, const char *serial)
{
    fp_issue_req *r = calloc(1, sizeof *r);
    if (!r || fp_invoice_render(&inv, &seller, serial, "2026-01-05T10:00:00+08:00", &r->doc) < 0)
        fatal("cannot render a request document");
    r->seller_id = sid;
    snprintf(r->serial, sizeof r->serial, "%s", serial);
    memset(r->request_hash, serial[strlen(serial) - 1], sizeof r->request_hash);
    memcpy(r->invoice_type, inv.invoice_type, sizeof r->invoice_type);
    r->total_with_tax = inv.total_with_tax;
    r->issued_at = 1767578400;
    snprintf(r->actor, sizeof r->actor, "test-client");
    r->done = on_done;
    return r;
}

static void req_free(fp_issue_req *r)
{
    free(r->response);
    free(r->doc.json);
    free(r);
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
    char path[512];
    snprintf(path, sizeof path, "%s/drain.db", tmpdir);
    fp_store_opts o = {.path = path};
    fp_store *s = NULL;
    fp_err err = {0};
    int64_t sid = 0;
    if (fp_store_open(&o, &s, &err) < 0 || fp_store_add_seller(s, &seller, &sid, &err) < 0 ||
        fp_store_add_range(s, sid, "26440", 1, 100, NULL, &err) < 0)
        fatal(err.msg);

    sqlite3 *lk = NULL;
    if (sqlite3_open_v2(path, &lk, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(lk, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        fatal("cannot take the write lock");
    fp_issue_req *first = mkreq(sid, "drain-1");
    fp_store_submit(s, first);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL); /* the writer took it and waits for the lock */
    fp_issue_req *queued[3];
    for (int i = 0; i < 3; i++) {
        char serial[32];
        snprintf(serial, sizeof serial, "drain-q%d", i);
        queued[i] = mkreq(sid, serial);
        fp_store_submit(s, queued[i]);
    }
    check_ctx("cancel the queue while a commit is stuck");
    CHECK_EQ_INT(fp_store_cancel_queued(s, "server stopping: not stored"), 3);
    CHECK_EQ_INT(wait_answered(3, 5), 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(queued[i]->result, FP_ISSUE_FAILED);
        CHECK_EQ_STR(queued[i]->error, "server stopping: not stored");
        CHECK_EQ_STR(queued[i]->number, "");
    }
    CHECK_EQ_INT(first->result, FP_ISSUE_PENDING);

    check_ctx("a later submission fails at once");
    fp_issue_req *late = mkreq(sid, "drain-late");
    fp_store_submit(s, late);
    CHECK_EQ_INT(wait_answered(4, 5), 4);
    CHECK_EQ_INT(late->result, FP_ISSUE_FAILED);
    CHECK_EQ_STR(late->error, "server stopping: not stored");

    check_ctx("the request in the writer commits once the disk is back");
    sqlite3_exec(lk, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(lk);
    CHECK_EQ_INT(wait_answered(5, 10), 5);
    CHECK_EQ_INT(first->result, FP_ISSUE_CREATED);
    fp_store_close(s);

    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM invoices", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    CHECK_EQ_INT(n, 1);
    check_ctx("%s", "");

    req_free(first);
    req_free(late);
    for (int i = 0; i < 3; i++)
        req_free(queued[i]);
    CHECK_MSG(nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", tmpdir);
    fp_invoice_clear(&inv);
    free(example);
    return check_summary();
}
