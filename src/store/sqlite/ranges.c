/* ranges.c — number ranges (预赋码) in the SQLite backend: adding one (an
 * overlap is refused) and listing them, the numbers left, and the year a
 * range must start with.  The writer's cache of the current range:
 * writer.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/clock.h"
#include "internal.h"

/* A number is valid only in its prefix year (docs/domain.md §10): the two-digit
 * year, China Standard Time, that a range must start with to be used now.
 * FP_TEST_YEAR overrides it so tests can cross a new year. */
void fp_sq_current_yy(char yy[3], int64_t issue_t)
{
    const char *t = getenv("FP_TEST_YEAR");
    if (t && strlen(t) == 2 && t[0] >= '0' && t[0] <= '9' && t[1] >= '0' && t[1] <= '9') {
        memcpy(yy, t, 3);
        return;
    }
    /* the issue time, not the clock: issued_at and the number's year agree */
    struct tm tm;
    fp_cst_tm(issue_t ? issue_t : fp_wall_s(), &tm);
    snprintf(yy, 3, "%02u", (unsigned)(tm.tm_year + 1900) % 100u);
}

typedef struct range_arg {
    int64_t seller_id, first, last;
    const char *prefix;
} range_arg;

static void bind_range(sqlite3_stmt *st, const void *arg)
{
    const range_arg *r = arg;
    sqlite3_bind_int64(st, 1, r->seller_id);
    sqlite3_bind_text(st, 2, r->prefix, 5, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->first);
    sqlite3_bind_int64(st, 4, r->last);
    sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
}

int sq_store_add_range(void *be, int64_t seller_id, const char prefix[6], int64_t first,
                       int64_t last, const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    /* Numbers are unique across sellers: a range may not overlap any other
     * range of the same prefix, or issuing would hit used numbers. */
    for (int i = 0; i < 5; i++)
        if (prefix[i] < '0' || prefix[i] > '9')
            return fp_fail(err, FP_EINVAL,
                           "range prefix must be 5 digits (year, province, channel)");
    if (prefix[5] != 0 || first < 1 || first > last || last > 999999999999999LL)
        return fp_fail(err, FP_EINVAL, "range must satisfy 1 <= first <= last <= 999999999999999");
    /* the check, the insert and its audit record: one transaction */
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = NULL;
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto unlock;
    int overlap = -1;
    if (sqlite3_prepare_v2(s->wdb,
                           "SELECT count(*) FROM number_ranges WHERE prefix=?1 AND first<=?3 "
                           "AND last>=?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, prefix, 5, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, first);
        sqlite3_bind_int64(st, 3, last);
        if (sqlite3_step(st) == SQLITE_ROW)
            overlap = sqlite3_column_int(st, 0) > 0;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (overlap != 0) {
        rc = overlap > 0
                 ? fp_fail(err, FP_ECONFLICT, "range %s %lld..%lld overlaps an existing range",
                           prefix, (long long)first, (long long)last)
                 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
        goto rollback;
    }
    if (sqlite3_prepare_v2(s->wdb,
                           "INSERT INTO number_ranges(seller_id, prefix, first, last, next, "
                           "created_at) VALUES(?1, ?2, ?3, ?4, ?3, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    range_arg a = {seller_id, first, last, prefix};
    bind_range(st, &a);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto dberr;
    sqlite3_finalize(st);
    st = NULL;
    char target[48];
    snprintf(target, sizeof target, "%.5s:%lld..%lld", prefix, (long long)first, (long long)last);
    rc = fp_sq_end_audited(s, audit, target, "ok", 0, err);
    goto unlock;
dberr:
    rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
rollback:
    sqlite3_finalize(st);
    fp_sq_end_audited(s, NULL, NULL, NULL, rc, NULL);
unlock:
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int sq_store_ranges(void *be, void (*fn)(const fp_range_rec *r, void *arg), void *arg)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO, step = SQLITE_ERROR;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT id, seller_id, prefix, first, last, next, created_at "
                           "FROM number_ranges ORDER BY id",
                           -1, &st, NULL) == SQLITE_OK) {
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            fp_range_rec rec = {0};
            rec.id = sqlite3_column_int64(st, 0);
            rec.seller_id = sqlite3_column_int64(st, 1);
            fp_sq_col(st, 2, rec.prefix, sizeof rec.prefix);
            rec.first = sqlite3_column_int64(st, 3);
            rec.last = sqlite3_column_int64(st, 4);
            rec.next = sqlite3_column_int64(st, 5);
            rec.created_at = sqlite3_column_int64(st, 6);
            fn(&rec, arg);
        }
        rc = step == SQLITE_DONE ? 0 : FP_EIO;
    }
    sqlite3_finalize(st);
    fp_sq_release(s, r, NULL);
    return rc;
}

int sq_store_advance_range(void *be, int64_t range_id, int64_t next, const fp_audit_rec *audit,
                           fp_range_rec *before, fp_err *err)
{
    fp_sqlite *s = be;
    memset(before, 0, sizeof *before);
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = NULL;
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto unlock;
    if (sqlite3_prepare_v2(s->wdb,
                           "SELECT seller_id, prefix, first, last, next FROM number_ranges "
                           "WHERE id=?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_int64(st, 1, range_id);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? fp_fail(err, FP_ENOTFOUND, "no range %lld", (long long)range_id)
                                 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
        goto rollback;
    }
    *before = (fp_range_rec){.id = range_id,
                             .seller_id = sqlite3_column_int64(st, 0),
                             .first = sqlite3_column_int64(st, 2),
                             .last = sqlite3_column_int64(st, 3),
                             .next = sqlite3_column_int64(st, 4)};
    snprintf(before->prefix, sizeof before->prefix, "%.5s",
             (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    st = NULL;
    if (next > before->last + 1) {
        rc = fp_fail(err, FP_EINVAL, "range %lld ends at %lld: next can be at most %lld",
                     (long long)range_id, (long long)before->last, (long long)before->last + 1);
        goto rollback;
    }
    if (next <= before->next) { /* forward only: nothing to do */
        rc = fp_sq_exec(s->wdb, "ROLLBACK", err);
        goto unlock;
    }
    if (sqlite3_prepare_v2(s->wdb, "UPDATE number_ranges SET next=?2 WHERE id=?1", -1, &st, NULL) !=
        SQLITE_OK)
        goto dberr;
    sqlite3_bind_int64(st, 1, range_id);
    sqlite3_bind_int64(st, 2, next);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto dberr;
    sqlite3_finalize(st);
    st = NULL;
    char target[96];
    snprintf(target, sizeof target, "%s:%lld:%lld->%lld", before->prefix, (long long)range_id,
             (long long)before->next, (long long)next);
    rc = fp_sq_end_audited(s, audit, target, "ok", 0, err);
    goto unlock;
dberr:
    rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
rollback:
    sqlite3_finalize(st);
    fp_sq_end_audited(s, NULL, NULL, NULL, rc, NULL);
unlock:
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
