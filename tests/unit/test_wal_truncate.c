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
 *   under a steady load (the writer never idle), the checkpointer makes
 *   the WAL restart once it holds more than wal_keep_bytes, so commits
 *   write over the file instead of appending to it for ever (§5e).
 *
 * States and counts only: the wait for the idle truncation is a bounded
 * poll, and so is the load that waits for a restart. */
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

#define NLOAD 3000 /* commits at most, until the first restart */

/* Commits one 3 KB row on the writer connection (its own transaction: the
 * WAL hook and the checkpointer see it like a batch's). */
static int load_commit(fp_sqlite *sq, int i)
{
    sqlite3 *db = fp_sq_wlock(sq);
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(db, "INSERT INTO walload(i, b) VALUES(?1, zeroblob(3000))", -1, &st,
                                NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int(st, 1, i);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    fp_sq_wunlock(sq);
    return ok;
}

static void test_wal_restart_under_load(const fp_invoice *inv, const char *dir)
{
    check_ctx("wal restart");
    sc_env e;
    if (!sc_begin(&e, &fp_store_sqlite_ops, inv, dir, "wal", "restart", 1, 1000)) {
        sc_end(&e);
        return;
    }
    sc_close(&e);
    fp_err err = {0};
    fp_store_opts o = {.path = e.path, .wal_keep_bytes = KEEP, .checkpoint_frames = 16};
    if (!CHECK_MSG(fp_store_open_ops(e.ops, &o, &e.s, &err) == 0, "open: %s", err.msg)) {
        sc_end(&e);
        return;
    }
    fp_sqlite *sq = (fp_sqlite *)((struct fp_store *)e.s)->be;
    sqlite3 *db = fp_sq_wlock(sq);
    int made = sqlite3_exec(db, "CREATE TABLE walload(i INTEGER PRIMARY KEY, b BLOB)", NULL, NULL,
                            NULL) == SQLITE_OK;
    fp_sq_wunlock(sq);
    CHECK(made);
    int n = 0;
    while (made && n < NLOAD && atomic_load(&sq->wal_restarts) == 0)
        if (!CHECK(load_commit(sq, n++)))
            break;
    /* ~4 pages a commit: without restarts the WAL would hold them all */
    CHECK_MSG(atomic_load(&sq->wal_restarts) >= 1, "no WAL restart in %d commits (WAL %lld bytes)",
              n, (long long)wal_size(e.path));
    /* the next commit wrote the WAL from its start: it holds a few frames,
     * not the ~4 per commit of all n before */
    if (made && CHECK(load_commit(sq, n++))) {
        int frames = -1;
        db = fp_sq_wlock(sq);
        CHECK_EQ_INT(sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, NULL),
                     SQLITE_OK);
        fp_sq_wunlock(sq);
        CHECK_MSG(frames >= 0 && frames < 64, "%d frames in the WAL after %d commits", frames, n);
    }
    /* nothing lost: every row is there after a reopen */
    sc_close(&e);
    if (CHECK_MSG(fp_store_open_ops(e.ops, &o, &e.s, &err) == 0, "reopen: %s", err.msg)) {
        sq = (fp_sqlite *)((struct fp_store *)e.s)->be;
        int64_t rows = -1;
        int null = 0;
        db = fp_sq_wlock(sq);
        CHECK_EQ_INT(fp_sq_int_or_null(db, "SELECT count(*) FROM walload", 0, &rows, &null), 0);
        fp_sq_wunlock(sq);
        CHECK_EQ_INT(rows, n);
    }
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
        test_wal_restart_under_load(&inv, tmpdir);
    }
    sc_fixture_end(tmpdir, example, &inv);
    return check_summary();
}
