/* silences.c — alert silences in the SQLite backend (docs/alerting.md
 * "Silences"): create and expire, each with its audit record in the same
 * transaction, and the list the server's notifier polls. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* The write: sql bound by bind(st, arg), then the audit record, one
 * transaction.  *changes: rows the statement changed. */
static int write_tx(fp_sqlite *s, const char *sql, void (*bind)(sqlite3_stmt *, const void *),
                    const void *arg, const fp_audit_rec *audit, const char *target_fmt,
                    int64_t target_id, int64_t *rowid, int *changes, fp_err *err)
{
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = NULL;
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto unlock;
    if (sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    bind(st, arg);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto dberr;
    sqlite3_finalize(st);
    st = NULL;
    *changes = sqlite3_changes(s->wdb);
    int64_t id = target_id ? target_id : sqlite3_last_insert_rowid(s->wdb);
    if (rowid)
        *rowid = id;
    if (!*changes) {
        rc = fp_fail(err, FP_ENOTFOUND, "没有此生效中的静默 / no such active silence: %lld",
                     (long long)id);
        goto rollback;
    }
    char target[48];
    snprintf(target, sizeof target, target_fmt, (long long)id);
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

static void bind_create(sqlite3_stmt *st, const void *arg)
{
    const fp_silence *x = arg;
    sqlite3_bind_text(st, 1, x->matchers, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, x->comment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, x->created_by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, x->starts_at);
    sqlite3_bind_int64(st, 5, x->ends_at);
    sqlite3_bind_int64(st, 6, (int64_t)time(NULL));
}

int sq_store_silence_create(void *be, const fp_silence *x, int64_t *id, const fp_audit_rec *audit,
                            fp_err *err)
{
    if (!x->matchers[0] || x->ends_at <= x->starts_at)
        return fp_fail(err, FP_EINVAL,
                       "静默需要匹配条件与正的时长 / a silence needs matchers "
                       "and a positive duration");
    int changes = 0;
    return write_tx(be,
                    "INSERT INTO alert_silences(matchers, comment, created_by, starts_at, "
                    "ends_at, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                    bind_create, x, audit, "silence:%lld", 0, id, &changes, err);
}

typedef struct expire_arg {
    int64_t id, now;
} expire_arg;

static void bind_expire(sqlite3_stmt *st, const void *arg)
{
    const expire_arg *a = arg;
    sqlite3_bind_int64(st, 1, a->id);
    sqlite3_bind_int64(st, 2, a->now);
}

int sq_store_silence_expire(void *be, int64_t id, int64_t now, const fp_audit_rec *audit,
                            fp_err *err)
{
    expire_arg a = {id, now};
    int changes = 0;
    return write_tx(be,
                    "UPDATE alert_silences SET ends_at = ?2, expired_at = ?2 WHERE id = ?1 AND "
                    "expired_at IS NULL AND ends_at > ?2",
                    bind_expire, &a, audit, "silence:%lld", id, NULL, &changes, err);
}

int sq_store_silences(void *be, int64_t now, void (*fn)(const fp_silence *x, void *arg), void *arg)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO, step = SQLITE_ERROR;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT id, matchers, comment, created_by, starts_at, ends_at, "
                           "created_at, coalesce(expired_at, 0) FROM alert_silences WHERE ?1 = 0 "
                           "OR (starts_at <= ?1 AND ends_at > ?1) ORDER BY id DESC",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            fp_silence x = {0};
            x.id = sqlite3_column_int64(st, 0);
            fp_sq_col(st, 1, x.matchers, sizeof x.matchers);
            fp_sq_col(st, 2, x.comment, sizeof x.comment);
            fp_sq_col(st, 3, x.created_by, sizeof x.created_by);
            x.starts_at = sqlite3_column_int64(st, 4);
            x.ends_at = sqlite3_column_int64(st, 5);
            x.created_at = sqlite3_column_int64(st, 6);
            x.expired_at = sqlite3_column_int64(st, 7);
            fn(&x, arg);
        }
        rc = step == SQLITE_DONE ? 0 : FP_EIO;
    }
    sqlite3_finalize(st);
    fp_sq_release(s, r, NULL);
    return rc;
}
