/* audit_read.c — the raw audit chain for the auditor (store.h
 * fp_store_audit_snapshot): one read transaction on a pooled read
 * connection, so that every query of a verify or an export sees the same
 * state while the server writes.  The auditor (src/auditor/) never sees
 * SQL; it reads rows and checkpoints through fp_audit_snap. */
#include "internal.h"

#include <string.h>

typedef struct snap {
    fp_audit_snap a; /* first: the auditor's handle is this */
    sqlite3 *db;
} snap;

#define REC_COLS                                                                                   \
    "id, ts, actor, action, target, request_id, client_ip, outcome, seller_id, "                   \
    "client_request_id, prev_hash, hash"
#define CP_COLS  "id, upto_id, upto_hash, ts, signature"
#define COL_PREV (2 + FP_AUDIT__FIELDS)
#define COL_HASH (3 + FP_AUDIT__FIELDS)

static sqlite3 *db_of(fp_audit_snap *a)
{
    return ((snap *)a)->db;
}

static int db_error(sqlite3 *db, fp_err *err)
{
    return fp_fail(err, FP_EIO, "reading the audit log: %s", sqlite3_errmsg(db));
}

/* A row of REC_COLS; its texts and blobs live until the next step. */
static void row_from_stmt(sqlite3_stmt *st, fp_audit_row *r)
{
    static const unsigned char none[1];
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->ts = sqlite3_column_int64(st, 1);
    for (int i = 0; i < FP_AUDIT__FIELDS; i++) {
        if (sqlite3_column_type(st, 2 + i) == SQLITE_NULL)
            continue;
        r->f[i].p = (const char *)sqlite3_column_text(st, 2 + i);
        r->f[i].n = (size_t)sqlite3_column_bytes(st, 2 + i);
        if (!r->f[i].p)
            r->f[i].p = "";
    }
    if (sqlite3_column_type(st, COL_PREV) != SQLITE_NULL) {
        r->prev_hash = sqlite3_column_blob(st, COL_PREV);
        r->prev_len = (size_t)sqlite3_column_bytes(st, COL_PREV);
        if (!r->prev_hash)
            r->prev_hash = none;
    }
    if (sqlite3_column_type(st, COL_HASH) != SQLITE_NULL) {
        r->hash = sqlite3_column_blob(st, COL_HASH);
        r->hash_len = (size_t)sqlite3_column_bytes(st, COL_HASH);
        if (!r->hash)
            r->hash = none;
    }
}

/* A row of CP_COLS; a blob of the wrong length makes it malformed. */
static void cp_from_stmt(sqlite3_stmt *st, fp_audit_cp *cp)
{
    memset(cp, 0, sizeof *cp);
    cp->id = sqlite3_column_int64(st, 0);
    cp->upto_id = sqlite3_column_int64(st, 1);
    cp->ts = sqlite3_column_int64(st, 3);
    const void *h = sqlite3_column_blob(st, 2), *s = sqlite3_column_blob(st, 4);
    if (h && sqlite3_column_bytes(st, 2) == FP_AUDIT_HASH_LEN)
        memcpy(cp->upto_hash, h, FP_AUDIT_HASH_LEN);
    else
        cp->malformed = 1;
    if (s && sqlite3_column_bytes(st, 4) == FP_AUDIT_SIG_LEN)
        memcpy(cp->sig, s, FP_AUDIT_SIG_LEN);
    else
        cp->malformed = 1;
}

static int snap_bounds(fp_audit_snap *a, int64_t *min_id, int64_t *max_id, fp_err *err)
{
    sqlite3 *db = db_of(a);
    sqlite3_stmt *st = fp_sq_prep(db, "SELECT min(id), max(id) FROM audit", err);
    if (!st)
        return FP_EIO;
    int step = sqlite3_step(st),
        empty = step == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL;
    if (step == SQLITE_ROW) {
        *min_id = sqlite3_column_int64(st, 0);
        *max_id = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (step != SQLITE_ROW)
        return db_error(db, err);
    return empty ? FP_ENOTFOUND : 0;
}

static int snap_cp(fp_audit_snap *a, fp_audit_cp_at at, int64_t arg, fp_audit_cp *out, fp_err *err)
{
    static const char *const where[] = {
        [FP_CP_ID] = "WHERE id=?1",
        [FP_CP_AFTER_ID] = "WHERE id > ?1 ORDER BY id LIMIT 1",
        [FP_CP_BEFORE_UPTO] = "WHERE upto_id < ?1 ORDER BY upto_id DESC LIMIT 1",
        [FP_CP_FROM_UPTO] = "WHERE upto_id >= ?1 ORDER BY upto_id LIMIT 1",
    };
    if ((unsigned)at >= sizeof where / sizeof where[0])
        return fp_fail(err, FP_EINVAL, "no such checkpoint query");
    sqlite3 *db = db_of(a);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT " CP_COLS " FROM audit_checkpoints %s", where[at]);
    sqlite3_stmt *st = fp_sq_prep(db, sql, err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_int64(st, 1, arg);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        cp_from_stmt(st, out);
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : db_error(db, err);
}

static int snap_hash_at(fp_audit_snap *a, int64_t id, unsigned char h[FP_AUDIT_HASH_LEN])
{
    sqlite3_stmt *st = fp_sq_prep(db_of(a), "SELECT hash FROM audit WHERE id=?1", NULL);
    if (!st)
        return 0;
    sqlite3_bind_int64(st, 1, id);
    int ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == FP_AUDIT_HASH_LEN;
    if (ok)
        memcpy(h, sqlite3_column_blob(st, 0), FP_AUDIT_HASH_LEN);
    sqlite3_finalize(st);
    return ok;
}

static int snap_find_hash(fp_audit_snap *a, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id)
{
    sqlite3_stmt *st =
        fp_sq_prep(db_of(a), "SELECT id FROM audit WHERE hash=?1 ORDER BY id LIMIT 1", NULL);
    if (!st)
        return 0;
    sqlite3_bind_blob(st, 1, h, FP_AUDIT_HASH_LEN, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return found;
}

/* Two cursors, records and checkpoints, merged in chain order. */
static int snap_scan(fp_audit_snap *a, const fp_audit_scan *q, fp_err *err)
{
    sqlite3 *db = db_of(a);
    sqlite3_stmt *rs = fp_sq_prep(db,
                                  "SELECT " REC_COLS " FROM audit WHERE id >= ?1 AND "
                                  "(?2 = 0 OR id <= ?2) AND NOT ?3 ORDER BY id",
                                  err);
    sqlite3_stmt *cs = rs ? fp_sq_prep(db,
                                       "SELECT " CP_COLS " FROM audit_checkpoints WHERE id > ?1 "
                                       "AND upto_id >= ?2 AND (?3 = 0 OR upto_id <= ?3) "
                                       "ORDER BY id LIMIT ?4",
                                       err)
                          : NULL;
    if (!cs) {
        sqlite3_finalize(rs);
        return FP_EIO;
    }
    sqlite3_bind_int64(rs, 1, q->from);
    sqlite3_bind_int64(rs, 2, q->to);
    sqlite3_bind_int(rs, 3, q->no_rows);
    sqlite3_bind_int64(cs, 1, q->cp_after);
    sqlite3_bind_int64(cs, 2, q->cp_upto_min);
    sqlite3_bind_int64(cs, 3, q->cp_upto_max);
    sqlite3_bind_int64(cs, 4, q->cp_limit > 0 ? q->cp_limit : -1);
    fp_audit_cp cp;
    fp_audit_row row;
    int stop = 0, cstep = sqlite3_step(cs), rstep = SQLITE_DONE;
    if (cstep == SQLITE_ROW)
        cp_from_stmt(cs, &cp);
    while (!stop && (rstep = sqlite3_step(rs)) == SQLITE_ROW) {
        row_from_stmt(rs, &row);
        while (!stop && cstep == SQLITE_ROW && cp.upto_id < row.id) {
            stop = q->on_cp(&cp, q->arg);
            if ((cstep = sqlite3_step(cs)) == SQLITE_ROW)
                cp_from_stmt(cs, &cp);
        }
        if (!stop)
            stop = q->on_row(&row, q->arg);
    }
    while (!stop && cstep == SQLITE_ROW) {
        stop = q->on_cp(&cp, q->arg);
        if ((cstep = sqlite3_step(cs)) == SQLITE_ROW)
            cp_from_stmt(cs, &cp);
    }
    int ok = stop || (rstep == SQLITE_DONE && cstep == SQLITE_DONE);
    int rc = ok ? 0 : db_error(db, err);
    sqlite3_finalize(rs);
    sqlite3_finalize(cs);
    return rc;
}

static int snap_latest(fp_audit_snap *a, int limit, void (*fn)(const fp_audit_row *r, void *arg),
                       void *arg, fp_err *err)
{
    sqlite3 *db = db_of(a);
    sqlite3_stmt *st =
        fp_sq_prep(db, "SELECT " REC_COLS " FROM audit ORDER BY id DESC LIMIT ?1", err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_int(st, 1, limit);
    int step;
    fp_audit_row r;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        row_from_stmt(st, &r);
        fn(&r, arg);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : db_error(db, err);
}

/* Storage order is the rowid. */
static void snap_invoices_back(fp_audit_snap *a, int64_t tolerance, int64_t *count,
                               int64_t *max_back, char *first, size_t cap)
{
    static const char sql[] =
        "SELECT count(*), max(prev - issued_at), "
        "  (SELECT number FROM (SELECT number, issued_at, max(issued_at) OVER (ORDER BY rowid "
        "     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev FROM invoices) "
        "   WHERE issued_at < prev - ?1 LIMIT 1) "
        "FROM (SELECT issued_at, max(issued_at) OVER (ORDER BY rowid "
        "  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev FROM invoices) "
        "WHERE issued_at < prev - ?1";
    *count = *max_back = 0;
    first[0] = 0;
    sqlite3_stmt *st = fp_sq_prep(db_of(a), sql, NULL);
    if (!st)
        return;
    sqlite3_bind_int64(st, 1, tolerance);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *count = sqlite3_column_int64(st, 0);
        *max_back = sqlite3_column_int64(st, 1);
        const unsigned char *n = sqlite3_column_text(st, 2);
        snprintf(first, cap, "%s", n ? (const char *)n : "");
    }
    sqlite3_finalize(st);
}

int sq_store_audit_snapshot(void *be, int (*fn)(fp_audit_snap *a, void *arg), void *arg,
                            fp_err *err)
{
    fp_sqlite *s = be;
    void *slot;
    snap sn = {.a = {.bounds = snap_bounds,
                     .cp = snap_cp,
                     .hash_at = snap_hash_at,
                     .find_hash = snap_find_hash,
                     .scan = snap_scan,
                     .latest = snap_latest,
                     .invoices_back = snap_invoices_back}};
    sn.db = fp_sq_racquire(s, &slot);
    sn.a.be = &sn;
    int rc = fp_sq_exec(sn.db, "BEGIN", err);
    if (rc == 0) {
        rc = fn(&sn.a, arg);
        sqlite3_exec(sn.db, "COMMIT", NULL, NULL, NULL);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}
