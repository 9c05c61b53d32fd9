/* db.c — the one set of statement and column helpers the SQLite backend's
 * files share (internal.h): run, prepare, step, copy a column.  A failed
 * statement is shown to the fail-stop (failstop.c), which tells corruption
 * from an ordinary error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int fp_sq_exec(sqlite3 *db, const char *sql, fp_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fp_failstop_note_db(db, "statement");
        int rc = fp_fail(err, FP_EIO, "sqlite: %s (in: %.60s)", msg ? msg : "?", sql);
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

int fp_sq_open_conn(const char *path, int flags, const char *vfs, sqlite3 **db, fp_err *err)
{
    if (sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK) {
        int rc =
            fp_fail(err, FP_EIO, "open %s: %s", path, *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(*db, 5000);
    sqlite3_extended_result_codes(*db, 1);
    return 0;
}

sqlite3_stmt *fp_sq_prep(sqlite3 *db, const char *sql, fp_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

int fp_sq_run(sqlite3 *db, sqlite3_stmt *st, fp_err *err)
{
    if (!st)
        return FP_EIO;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    return 0;
}

int fp_sq_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : FP_EIO;
}

int fp_sq_step_row(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? FP_ENOTFOUND : FP_EIO;
}

void fp_sq_col(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

char *fp_sq_dup_text(sqlite3_stmt *st, int col, size_t *len)
{
    int n = sqlite3_column_bytes(st, col);
    const unsigned char *t = sqlite3_column_text(st, col);
    char *p = malloc((size_t)n + 1);
    if (p && t) {
        memcpy(p, t, (size_t)n + 1);
        if (len)
            *len = (size_t)n;
    }
    return p;
}

void fp_sq_bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int fp_sq_int_or_null(sqlite3 *db, const char *sql, int64_t arg, int64_t *v, int *null)
{
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, arg);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *null = sqlite3_column_type(st, 0) == SQLITE_NULL;
            *v = sqlite3_column_int64(st, 0);
            rc = 0;
        }
    }
    sqlite3_finalize(st);
    return rc;
}
