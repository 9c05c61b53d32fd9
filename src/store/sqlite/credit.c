/* credit.c — the SQLite backend's credit rows (credit.h, migration 13)
 * outside the issuing transaction: the refresh's limit, and the rows for
 * `fapiao upstream credit show` and the metric.  The check and the move at
 * issuing are in credit_tx.c. */
#include "fapiao/clock.h"
#include "internal.h"

int sq_store_credit_set(void *be, int64_t seller_id, const char *month, int64_t limit_fen,
                        int64_t first_used, fp_err *err)
{
    fp_sqlite *s = be;
    sqlite3 *db = fp_sq_wlock(s);
    sqlite3_stmt *st =
        fp_sq_prep(db,
                   "INSERT INTO upstream_credit(seller_id, month, limit_fen, used_fen, updated_at) "
                   "VALUES(?1, ?2, ?3, ?5, ?4) ON CONFLICT(seller_id, month) DO UPDATE SET "
                   "limit_fen = excluded.limit_fen, updated_at = excluded.updated_at",
                   err);
    int rc = FP_EIO;
    if (st) {
        sqlite3_bind_int64(st, 1, seller_id);
        sqlite3_bind_text(st, 2, month, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, limit_fen);
        sqlite3_bind_int64(st, 4, fp_steady_ms());
        sqlite3_bind_int64(st, 5, first_used);
        rc = fp_sq_step_done(st) < 0 ? fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db)) : 0;
        sqlite3_finalize(st);
    }
    fp_sq_wunlock(s);
    return rc;
}

int sq_store_credit_list(void *be, void (*fn)(const fp_credit_row *c, void *arg), void *arg,
                         fp_err *err)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = fp_sq_prep(db,
                                  "SELECT seller_id, month, limit_fen, used_fen, updated_at "
                                  "FROM upstream_credit ORDER BY seller_id, month",
                                  err);
    int rc = FP_EIO;
    if (st) {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            fp_credit_row c = {0};
            c.seller_id = sqlite3_column_int64(st, 0);
            fp_sq_col(st, 1, c.month, sizeof c.month);
            c.limit_fen = sqlite3_column_int64(st, 2);
            c.used_fen = sqlite3_column_int64(st, 3);
            c.updated_at = sqlite3_column_int64(st, 4);
            fn(&c, arg);
        }
        rc = step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}
