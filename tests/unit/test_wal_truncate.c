/* test_wal_truncate.c — the WAL is truncated off the writer's path
 * (src/store/sqlite/writer.c truncate_idle_wal, open.c;
 * docs/performance.md §5c):
 *
 *   the writer connection has no journal_size_limit, so the first commit
 *   after a WAL restart never truncates the file (a WAL that grew for
 *   seconds under load took that commit 0.7 s);
 *   a WAL larger than wal_keep_bytes is truncated by the checkpointer once
 *   the writer is idle, and every invoice is still there after a reopen.
 *
 * States and counts only: the wait for the idle truncation is a bounded
 * poll. */
#include "check.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../src/store/sqlite/internal.h"
#include "store_contract.h"

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif

#define NINV    24
#define KEEP    (64 * 1024)
#define WAIT_MS 15000
#define POLL_MS 50

static int64_t wal_size(const char *db)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s-wal", db);
    return stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
}

static int64_t writer_pragma(fp_store *s, const char *sql)
{
    fp_sqlite *sq = (fp_sqlite *)((struct fp_store *)s)->be;
    sqlite3 *db = fp_sq_wlock(sq);
    sqlite3_stmt *st = NULL;
    int64_t v = -2;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    fp_sq_wunlock(sq);
    return v;
}

static int reopen(sc_env *e)
{
    sc_close(e);
    fp_store_opts o = {.path = e->path, .wal_keep_bytes = KEEP};
    fp_err err = {0};
    return CHECK_MSG(fp_store_open_ops(e->ops, &o, &e->s, &err) == 0, "open %s: %s", e->path,
                     err.msg);
}

static void test_wal_truncate(const fp_invoice *inv, const char *dir)
{
    check_ctx("wal truncate");
    sc_env e;
    if (!sc_begin(&e, &fp_store_sqlite_ops, inv, dir, "wal", "truncate", 1, 1000) || !reopen(&e)) {
        sc_end(&e);
        return;
    }
    /* the writer's commits never truncate the WAL themselves */
    CHECK_EQ_INT(writer_pragma(e.s, "PRAGMA journal_size_limit"), -1);
    for (int i = 0; i < NINV; i++) {
        char serial[32];
        snprintf(serial, sizeof serial, "wal-%d", i);
        int k = sc_issue(&e, serial, (unsigned char)(0x20 + i));
        if (k < 0 || !CHECK_EQ_INT(e.result[k], FP_ISSUE_CREATED))
            goto out;
    }
    int64_t grown = wal_size(e.path);
    /* idle now: the checkpointer takes the WAL back (bounded wait) */
    int64_t sz = grown;
    for (int i = 0; i < WAIT_MS / POLL_MS && sz > KEEP; i++) {
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
        sz = wal_size(e.path);
    }
    CHECK_MSG(sz <= KEEP,
              "the WAL is %lld bytes after the writer went idle (%lld after the issues)",
              (long long)sz, (long long)grown);
    /* nothing lost: every invoice is there after a reopen */
    if (reopen(&e)) {
        int64_t n = -1;
        CHECK_EQ_INT(fp_store_numbers_remaining(e.s, e.seller, &n), 0);
        CHECK_EQ_INT(n, 1000 - NINV);
    }
out:
    sc_end(&e);
    check_ctx("%s", "");
}

int main(void)
{
    static char tmpdir[] = "/tmp/fapiao-test-wal-XXXXXX";
    static fp_invoice inv;
    char *example = NULL;
    (void)sc_run; /* the contract suite runs in test_store.c */
    if (sc_fixture(tmpdir, &example, &inv)) {
        test_wal_truncate(&inv, tmpdir);
    }
    sc_fixture_end(tmpdir, example, &inv);
    return check_summary();
}
