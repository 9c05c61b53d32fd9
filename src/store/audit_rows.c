/* audit_rows.c — reading the audit log for the API (GET /v1/audit); the
 * chain itself is written and verified by src/audit/ and sqlite.c. */
#include "fapiao/crypto.h"
#include "fapiao/store.h"
#include "internal.h"

#include <stdint.h>
#include <string.h>

static const char *text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

#define AUDIT_VIEW_COLS                                                                            \
    "id, ts, actor, action, target, request_id, client_ip, outcome, hash, "                        \
    "coalesce(seller_id, 0), client_request_id"

int fp_store_audit_rows(fp_store *s, int64_t seller_id, int64_t before, int limit,
                        void (*fn)(const fp_audit_view *v, void *arg), void *arg)
{
    void *slot;
    sqlite3 *db = fp_store_racquire(s, &slot);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    /* one seller's records walk the index audit_seller(seller_id, id) */
    const char *sql = seller_id != 0 ? "SELECT " AUDIT_VIEW_COLS " FROM audit WHERE seller_id = ?3 "
                                       "AND id < ?1 ORDER BY seller_id DESC, id DESC LIMIT ?2"
                                     : "SELECT " AUDIT_VIEW_COLS " FROM audit WHERE id < ?1 "
                                       "ORDER BY id DESC LIMIT ?2";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, before > 0 ? before : INT64_MAX);
        sqlite3_bind_int(st, 2, limit);
        if (seller_id != 0)
            sqlite3_bind_int64(st, 3, seller_id);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            char hex[65] = "";
            if (sqlite3_column_bytes(st, 8) == 32)
                fp_hex(sqlite3_column_blob(st, 8), 32, hex);
            fp_audit_view v = {sqlite3_column_int64(st, 0),
                               sqlite3_column_int64(st, 1),
                               text(st, 2),
                               text(st, 3),
                               text(st, 4),
                               text(st, 5),
                               text(st, 6),
                               text(st, 7),
                               hex,
                               sqlite3_column_int64(st, 9),
                               text(st, 10)};
            fn(&v, arg);
        }
        rc = step == SQLITE_DONE ? 0 : FP_EIO;
    }
    sqlite3_finalize(st);
    fp_store_rrelease(s, slot);
    return rc;
}
