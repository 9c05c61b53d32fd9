/* export.c — the SQLite store's rows for a move to another backend
 * (../migrate.c): every table of ../migrate.c's list, in one read
 * transaction, each value as SQLite holds it. */
#include <stdio.h>

#include "internal.h"

static int export_table(sqlite3 *db, int t, const fp_mig_sink *sink, fp_err *err)
{
    const fp_mig_table *mt = &fp_mig_tables[t];
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT *%s FROM %s ORDER BY %s", mt->extra, mt->name, mt->order);
    sqlite3_stmt *st = fp_sq_prep(db, sql, err);
    if (!st)
        return FP_EIO;
    int n = sqlite3_column_count(st), rc;
    const char *cols[64];
    fp_mig_val v[64];
    if (n > 64) {
        sqlite3_finalize(st);
        return fp_fail(err, FP_ERANGE, "%s: too many columns", mt->name);
    }
    for (int i = 0; i < n; i++)
        cols[i] = sqlite3_column_name(st, i);
    if ((rc = sink->table(sink->arg, t, cols, n, err)) < 0) {
        sqlite3_finalize(st);
        return rc;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < n; i++) {
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_NULL:
                v[i] = (fp_mig_val){.kind = FP_MIG_NULL};
                break;
            case SQLITE_INTEGER:
                v[i] = (fp_mig_val){.kind = FP_MIG_INT, .i = sqlite3_column_int64(st, i)};
                break;
            case SQLITE_BLOB:
                v[i] = (fp_mig_val){.kind = FP_MIG_BLOB, .p = sqlite3_column_blob(st, i)};
                v[i].n = (size_t)sqlite3_column_bytes(st, i);
                break;
            default: /* text (no column of the schema holds a float) */
                v[i] = (fp_mig_val){.kind = FP_MIG_TEXT, .p = sqlite3_column_text(st, i)};
                v[i].n = (size_t)sqlite3_column_bytes(st, i);
            }
        }
        if ((rc = sink->row(sink->arg, v, n, err)) < 0) {
            sqlite3_finalize(st);
            return rc;
        }
    }
    rc = step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc < 0 ? rc : sink->end(sink->arg, t, err);
}

/* Every table of the source is one ../migrate.c names, or nothing is
 * copied: a table added later cannot be left behind silently. */
static int known_tables(sqlite3 *db, fp_err *err)
{
    sqlite3_stmt *st = fp_sq_prep(db,
                                  "SELECT name FROM sqlite_master WHERE type = 'table' "
                                  "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                                  err);
    if (!st)
        return FP_EIO;
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!fp_mig_known(name))
            rc = fp_fail(err, FP_EINVAL,
                         "the source has a table this fapiao does not know how to move: %s "
                         "(源数据库含有本版本不知如何迁移的表)",
                         name);
    }
    sqlite3_finalize(st);
    return rc;
}

int fp_sq_export(const char *path, const fp_mig_sink *sink, int64_t *mark, int64_t *confirmed,
                 fp_err *err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        int rc = fp_fail(err, FP_EIO, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, 5000);
    int rc = fp_sq_exec(db, "BEGIN", err); /* one snapshot for every table */
    if (rc == 0)
        rc = known_tables(db, err);
    for (int t = 0; rc == 0 && t < fp_mig_ntables; t++)
        rc = export_table(db, t, sink, err);
    *mark = *confirmed = 0;
    sqlite3_stmt *st = rc == 0 ? fp_sq_prep(db,
                                            "SELECT mark, coalesce(confirmed_at, 0) "
                                            "FROM issue_clock WHERE id=1",
                                            err)
                               : NULL;
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        *mark = sqlite3_column_int64(st, 0);
        *confirmed = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db); /* the read transaction ends with it */
    return rc;
}
