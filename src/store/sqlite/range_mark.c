/* range_mark.c — the number ranges' high-water marks a restore carries
 * forward (include/fapiao/store_backup.h, docs/recovery.md).  A restore to
 * a point in time, or to the end of an archive that missed the last
 * seconds, leaves each range's `next` where that point left it, yet the
 * numbers given out after it are in buyers' hands: reusing one would issue
 * a second invoice under a number that already identifies one.  So the
 * restore gathers the highest `next` per range from everything the archive
 * holds (the log past the point, later fulls, the reservations the
 * archiver wrote ahead of use) and moves each restored range past it, in
 * the replay's transaction: the target has the moved ranges or nothing. */
#define SQLITE_ENABLE_SESSION        1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <stdlib.h>
#include <string.h>

#include "fapiao/store_backup.h"
#include "internal.h"

/* number_ranges' columns as migrations.c creates them (a later migration
 * can only append columns): id, seller_id, prefix, first, last, next */
#define COL_ID   0
#define COL_NEXT 5

struct fp_store_marks {
    fp_range_mark *v;
    int n, cap;
};

int fp_store_marks_new(fp_store_marks **out, fp_err *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : fp_fail(err, FP_ENOMEM, "out of memory");
}

void fp_store_marks_free(fp_store_marks *m)
{
    if (!m)
        return;
    free(m->v);
    free(m);
}

int fp_store_marks_note(fp_store_marks *m, int64_t range_id, int64_t next)
{
    for (int i = 0; i < m->n; i++)
        if (m->v[i].range_id == range_id) {
            if (next > m->v[i].next)
                m->v[i].next = next;
            return 0;
        }
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 16;
        fp_range_mark *nv = realloc(m->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return FP_ENOMEM;
        m->v = nv, m->cap = cap;
    }
    m->v[m->n++] = (fp_range_mark){.range_id = range_id, .next = next};
    return 0;
}

int fp_store_marks_count(const fp_store_marks *m)
{
    return m ? m->n : 0;
}

const fp_range_mark *fp_store_marks_at(const fp_store_marks *m, int i)
{
    return m && i >= 0 && i < m->n ? &m->v[i] : NULL;
}

static int value_i64(sqlite3_value *v, int64_t *out)
{
    if (!v || sqlite3_value_type(v) != SQLITE_INTEGER)
        return 0;
    *out = sqlite3_value_int64(v);
    return 1;
}

int fp_store_marks_changeset(fp_store_marks *m, const void *cs, size_t n, fp_err *err)
{
    sqlite3_changeset_iter *it = NULL;
    if (sqlite3changeset_start(&it, (int)n, (void *)cs) != SQLITE_OK)
        return fp_fail(err, FP_EINVAL, "a changeset of the log does not parse");
    int rc = 0;
    while (rc == 0 && sqlite3changeset_next(it) == SQLITE_ROW) {
        const char *tab = NULL;
        int ncol = 0, op = 0, indirect = 0;
        if (sqlite3changeset_op(it, &tab, &ncol, &op, &indirect) != SQLITE_OK ||
            strcmp(tab, "number_ranges") != 0 || ncol <= COL_NEXT || op == SQLITE_DELETE)
            continue;
        sqlite3_value *id = NULL, *next = NULL;
        /* an UPDATE carries the key in its old values, and new values only
         * for the columns it changed */
        if (op == SQLITE_UPDATE)
            sqlite3changeset_old(it, COL_ID, &id);
        else
            sqlite3changeset_new(it, COL_ID, &id);
        sqlite3changeset_new(it, COL_NEXT, &next);
        int64_t rid = 0, nx = 0;
        if (value_i64(id, &rid) && value_i64(next, &nx) && fp_store_marks_note(m, rid, nx) < 0)
            rc = fp_fail(err, FP_ENOMEM, "out of memory");
    }
    if (sqlite3changeset_finalize(it) != SQLITE_OK && rc == 0)
        rc = fp_fail(err, FP_EINVAL, "a changeset of the log does not parse");
    return rc;
}

int fp_store_marks_db(fp_store_marks *m, const char *path, fp_err *err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return fp_fail(err, FP_EIO, "cannot open %s", path);
    }
    sqlite3_stmt *q = fp_sq_prep(db, "SELECT id, next FROM number_ranges", err);
    int rc = q ? 0 : FP_EIO;
    while (q && rc == 0 && sqlite3_step(q) == SQLITE_ROW)
        if (fp_store_marks_note(m, sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1)) < 0)
            rc = fp_fail(err, FP_ENOMEM, "out of memory");
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}

int fp_store_replay_advance(fp_store_replay *r, const fp_store_marks *m, fp_range_moved_fn fn,
                            void *arg, fp_err *err)
{
    sqlite3 *db = fp_sq_replay_db(r, err);
    if (!db)
        return FP_EINVAL;
    /* forward only, and never past the range's end + 1 (the CHECK): a mark
     * from another range that happens to share the id cannot move it */
    sqlite3_stmt *sel =
        fp_sq_prep(db, "SELECT prefix, next, last FROM number_ranges WHERE id=?1", err);
    sqlite3_stmt *up = fp_sq_prep(db, "UPDATE number_ranges SET next=?2 WHERE id=?1", err);
    int rc = sel && up ? 0 : FP_EIO;
    for (int i = 0; rc == 0 && i < fp_store_marks_count(m); i++) {
        const fp_range_mark *k = fp_store_marks_at(m, i);
        sqlite3_reset(sel);
        sqlite3_bind_int64(sel, 1, k->range_id);
        if (sqlite3_step(sel) != SQLITE_ROW)
            continue; /* a range made after the point: not restored */
        fp_range_moved mv = {.range_id = k->range_id, .from = sqlite3_column_int64(sel, 1)};
        fp_sq_col(sel, 0, mv.prefix, sizeof mv.prefix);
        int64_t last = sqlite3_column_int64(sel, 2);
        mv.to = k->next <= last + 1 ? k->next : last + 1;
        if (mv.to <= mv.from)
            continue;
        sqlite3_reset(up);
        sqlite3_bind_int64(up, 1, k->range_id);
        sqlite3_bind_int64(up, 2, mv.to);
        if (sqlite3_step(up) != SQLITE_DONE)
            rc = fp_fail(err, FP_EIO, "advance range %lld: %s", (long long)k->range_id,
                         sqlite3_errmsg(db));
        else if (fn)
            fn(&mv, arg);
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(up);
    return rc;
}
