/* upload.c — the SQLite backend's upload rows (upload.h, migration 11): the
 * worker's due rows and state changes, a row for the API, the counts for
 * the metrics.  The issuing transaction writes the rows (writer.c). */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "fapiao/clock.h"
#include "internal.h"

static const char *const state_names[FP_UPLOAD__STATES] = {"pending", "submitted", "accepted",
                                                           "rejected"};

const char *fp_upload_state_name(int state)
{
    return (unsigned)state < FP_UPLOAD__STATES ? state_names[state] : "?";
}

int fp_upload_state_from_name(const char *s)
{
    for (int i = 0; i < FP_UPLOAD__STATES; i++)
        if (s && !strcmp(s, state_names[i]))
            return i;
    return -1;
}

void sq_store_set_upload(void *be, int on)
{
    fp_sqlite *s = be;
    atomic_store(&s->upload_on, on != 0);
}

#define UP_COLS "seller_id, invoice_number, state, sllsh, reason, attempts, next_at, first_at"

static void read_row(sqlite3_stmt *st, fp_upload_row *u)
{
    memset(u, 0, sizeof *u);
    u->seller_id = sqlite3_column_int64(st, 0);
    fp_sq_col(st, 1, u->number, sizeof u->number);
    u->state = fp_upload_state_from_name((const char *)sqlite3_column_text(st, 2));
    fp_sq_col(st, 3, u->sllsh, sizeof u->sllsh);
    fp_sq_col(st, 4, u->reason, sizeof u->reason);
    u->attempts = sqlite3_column_int(st, 5);
    u->next_at = sqlite3_column_int64(st, 6);
    u->first_at = sqlite3_column_int64(st, 7);
}

int sq_store_upload_due(void *be, int64_t now, int with_sllsh, int limit, fp_upload_row *out,
                        int *n, fp_err *err)
{
    fp_sqlite *s = be;
    *n = 0;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = fp_sq_prep(
        db,
        with_sllsh ? "SELECT " UP_COLS " FROM uploads WHERE state IN ('pending', 'submitted') "
                     "AND sllsh IS NOT NULL AND next_at <= ?1 ORDER BY next_at LIMIT ?2"
                   : "SELECT " UP_COLS " FROM uploads WHERE state = 'pending' AND sllsh IS NULL "
                     "AND next_at <= ?1 ORDER BY next_at LIMIT ?2",
        err);
    int rc = FP_EIO, step = SQLITE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int(st, 2, limit);
        while (*n < limit && (step = sqlite3_step(st)) == SQLITE_ROW)
            read_row(st, &out[(*n)++]);
        rc = step == SQLITE_DONE || step == SQLITE_ROW
                 ? 0
                 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}

int sq_store_upload_set(void *be, const char *number, int state, const char *sllsh,
                        const char *reason, int64_t next_at, int count, fp_err *err)
{
    fp_sqlite *s = be;
    sqlite3 *db = fp_sq_wlock(s);
    sqlite3_stmt *st =
        fp_sq_prep(db,
                   "UPDATE uploads SET state=?2, sllsh=CASE WHEN ?3 = '' THEN sllsh ELSE ?3 END, "
                   "reason=?4, next_at=?5, attempts=attempts+?6, updated_at=?7 "
                   "WHERE invoice_number=?1",
                   err);
    int rc = FP_EIO;
    if (st) {
        sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, fp_upload_state_name(state), -1, SQLITE_STATIC);
        fp_sq_bind_text_or_null(st, 3, sllsh);
        fp_sq_bind_text_or_null(st, 4, reason);
        sqlite3_bind_int64(st, 5, next_at);
        sqlite3_bind_int(st, 6, count ? 1 : 0);
        sqlite3_bind_int64(st, 7, fp_steady_ms());
        rc = fp_sq_step_done(st) < 0    ? fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db))
             : sqlite3_changes(db) == 0 ? FP_ENOTFOUND
                                        : 0;
        sqlite3_finalize(st);
    }
    fp_sq_wunlock(s);
    return rc;
}

int sq_store_upload_get(void *be, int64_t seller_id, const char *number, fp_upload_row *out)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = fp_sq_prep(
        db, "SELECT " UP_COLS " FROM uploads WHERE invoice_number=?1 AND seller_id=?2", NULL);
    int rc = FP_EIO;
    if (st) {
        sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, seller_id);
        rc = fp_sq_step_row(st);
        if (rc == 0)
            read_row(st, out);
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}

int sq_store_upload_counts(void *be, fp_upload_counts *c, fp_err *err)
{
    fp_sqlite *s = be;
    memset(c, 0, sizeof *c);
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st =
        fp_sq_prep(db, "SELECT state, count(*), min(first_at) FROM uploads GROUP BY state", err);
    int rc = FP_EIO;
    if (st) {
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            int k = fp_upload_state_from_name((const char *)sqlite3_column_text(st, 0));
            if (k < 0)
                continue;
            c->n[k] = sqlite3_column_int64(st, 1);
            int64_t first = sqlite3_column_int64(st, 2);
            if ((k == FP_UPLOAD_PENDING || k == FP_UPLOAD_SUBMITTED) &&
                (!c->oldest_waiting_at || first < c->oldest_waiting_at))
                c->oldest_waiting_at = first;
        }
        rc = step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    fp_sq_rrelease(s, slot);
    return rc;
}

/* The audit records of the rows about to be re-driven, one per row, with
 * the state each leaves (inside the caller's transaction); *n: how many. */
static int redrive_audit(fp_sqlite *s, sqlite3 *db, const char *number, const fp_audit_rec *audit,
                         int64_t *n, fp_err *err)
{
    sqlite3_stmt *st = fp_sq_prep(db,
                                  "SELECT invoice_number, seller_id, state FROM uploads "
                                  "WHERE state='rejected' AND (?1 IS NULL OR invoice_number=?1) "
                                  "ORDER BY invoice_number",
                                  err);
    if (!st)
        return FP_EIO;
    fp_sq_bind_text_or_null(st, 1, number);
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        (*n)++;
        if (!audit)
            continue;
        char target[96];
        snprintf(target, sizeof target, "upload:%s from %s", sqlite3_column_text(st, 0),
                 sqlite3_column_text(st, 2));
        fp_audit_rec r = *audit;
        r.action = "upload.redrive";
        r.target = target;
        r.outcome = "ok";
        r.seller_id = sqlite3_column_int64(st, 1);
        rc = fp_sq_audit_append(s, &r, err);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

int sq_store_upload_redrive(void *be, const char *number, int64_t now, const fp_audit_rec *audit,
                            int64_t *n, fp_err *err)
{
    fp_sqlite *s = be;
    *n = 0;
    sqlite3 *db = fp_sq_wlock(s);
    int rc = fp_sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc < 0) {
        fp_sq_wunlock(s);
        return rc;
    }
    int64_t audited = 0;
    rc = redrive_audit(s, db, number, audit, &audited, err);
    sqlite3_stmt *st = rc < 0 ? NULL
                              : fp_sq_prep(db,
                                           "UPDATE uploads SET state='pending', sllsh=NULL, "
                                           "reason=NULL, attempts=0, next_at=?2, updated_at=?3 "
                                           "WHERE state='rejected' "
                                           "AND (?1 IS NULL OR invoice_number=?1)",
                                           err);
    if (st) {
        fp_sq_bind_text_or_null(st, 1, number);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, fp_steady_ms());
        rc = fp_sq_step_done(st) < 0 ? fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db)) : 0;
        *n = rc == 0 ? sqlite3_changes(db) : 0;
        if (rc == 0 && *n != audited) /* the transaction holds the write lock: never */
            rc = fp_fail(err, FP_ECONFLICT, "uploads changed during the re-drive");
        if (rc == 0 && number && *n == 0)
            rc = FP_ENOTFOUND;
        sqlite3_finalize(st);
    } else if (rc == 0) {
        rc = FP_EIO;
    }
    rc = fp_sq_end_audited(s, NULL, NULL, NULL, rc, err); /* COMMIT, or ROLLBACK on rc < 0 */
    if (rc < 0)
        *n = 0;
    fp_sq_wunlock(s);
    return rc;
}
