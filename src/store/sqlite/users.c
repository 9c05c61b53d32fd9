/* users.c — the console's users in the SQLite backend (store.h fp_user;
 * docs/console.md): each change with its audit record in one transaction
 * on the writer, reads from the pool, and the TOTP replay check as one
 * conditional UPDATE. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../users_sql.h"
#include "internal.h"

static void bind_user(sqlite3_stmt *st, const fp_user *u, int64_t now)
{
    sqlite3_bind_text(st, 1, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, u->roles);
    sqlite3_bind_int64(st, 3, u->seller_id);
    sqlite3_bind_text(st, 4, u->pw_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, u->totp_seed, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, u->enrol_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, u->recovery, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, u->enrolled);
    sqlite3_bind_int(st, 9, u->disabled);
    sqlite3_bind_int64(st, 10, u->totp_step);
    sqlite3_bind_int64(st, 11, now);
}

/* sql bound with u, then the audit record (audit NULL: none), in one
 * transaction; FP_ENOTFOUND when no row changed, FP_ECONFLICT on a taken
 * name. */
static int user_write(fp_sqlite *s, const char *sql, const fp_user *u, const fp_audit_rec *audit,
                      fp_err *err)
{
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = NULL;
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err), step;
    if (rc < 0)
        goto unlock;
    if (sqlite3_prepare_v2(s->wdb, sql, -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    bind_user(st, u, (int64_t)time(NULL));
    if (((step = sqlite3_step(st)) & 0xff) == SQLITE_CONSTRAINT) { /* extended codes: PRIMARYKEY */
        rc = fp_fail(err, FP_ECONFLICT, "用户已存在 / the user exists: %s", u->name);
        goto rollback;
    }
    if (step != SQLITE_DONE)
        goto dberr;
    if (!sqlite3_changes(s->wdb)) {
        rc = fp_fail(err, FP_ENOTFOUND, "没有此用户 / no such user: %s", u->name);
        goto rollback;
    }
    char target[FP_USER_NAME_MAX + 8];
    snprintf(target, sizeof target, "user:%s", u->name);
    if ((rc = fp_sq_audit_change(s, audit, target, "ok", err)) < 0 ||
        (rc = fp_sq_exec(s->wdb, "COMMIT", err)) < 0)
        goto rollback;
    goto unlock;
dberr:
    rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
rollback:
    if (!sqlite3_get_autocommit(s->wdb))
        fp_sq_exec(s->wdb, "ROLLBACK", NULL);
unlock:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int sq_store_user_create(void *be, const fp_user *u, const fp_audit_rec *audit, fp_err *err)
{
    return user_write(be,
                      "INSERT INTO console_users(" FP_USERS_COLS
                      ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                      u, audit, err);
}

int sq_store_user_update(void *be, const fp_user *u, const fp_audit_rec *audit, fp_err *err)
{
    return user_write(be,
                      "UPDATE console_users SET roles = ?2, seller_id = ?3, pw_hash = ?4, "
                      "totp_seed = ?5, enrol_hash = ?6, recovery = ?7, enrolled = ?8, "
                      "disabled = ?9, totp_step = ?10, updated_at = ?11 WHERE name = ?1",
                      u, audit, err);
}

static void read_user(sqlite3_stmt *st, fp_user *u)
{
    memset(u, 0, sizeof *u);
    fp_sq_col(st, 0, u->name, sizeof u->name);
    u->roles = (unsigned)sqlite3_column_int64(st, 1);
    u->seller_id = sqlite3_column_int64(st, 2);
    fp_sq_col(st, 3, u->pw_hash, sizeof u->pw_hash);
    fp_sq_col(st, 4, u->totp_seed, sizeof u->totp_seed);
    fp_sq_col(st, 5, u->enrol_hash, sizeof u->enrol_hash);
    fp_sq_col(st, 6, u->recovery, sizeof u->recovery);
    u->enrolled = sqlite3_column_int(st, 7);
    u->disabled = sqlite3_column_int(st, 8);
    u->totp_step = sqlite3_column_int64(st, 9);
    u->created_at = sqlite3_column_int64(st, 10);
    u->updated_at = sqlite3_column_int64(st, 11);
}

/* name NULL: every user (fn each); else the one (into *one). */
static int user_read(fp_sqlite *s, const char *name, fp_user *one,
                     void (*fn)(const fp_user *u, void *arg), void *arg)
{
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO, step = SQLITE_ERROR, n = 0;
    if (sqlite3_prepare_v2(r->db,
                           "SELECT " FP_USERS_COLS
                           " FROM console_users WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            fp_user u;
            read_user(st, one ? one : &u);
            if (!one)
                fn(&u, arg);
            n++;
        }
        rc = step != SQLITE_DONE ? FP_EIO : name && !n ? FP_ENOTFOUND : 0;
    }
    sqlite3_finalize(st);
    fp_sq_release(s, r, NULL);
    return rc;
}

int sq_store_user_get(void *be, const char *name, fp_user *out)
{
    return user_read(be, name, out, NULL, NULL);
}

int sq_store_users(void *be, void (*fn)(const fp_user *u, void *arg), void *arg)
{
    return user_read(be, NULL, NULL, fn, arg);
}

int sq_store_user_take_step(void *be, const char *name, int64_t step, fp_err *err)
{
    fp_sqlite *s = be;
    pthread_mutex_lock(&s->wlock);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(s->wdb,
                           "UPDATE console_users SET totp_step = ?2 WHERE name = ?1 AND "
                           "totp_step < ?2",
                           -1, &st, NULL) != SQLITE_OK ||
        (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC), sqlite3_bind_int64(st, 2, step),
         sqlite3_step(st)) != SQLITE_DONE)
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
    else if (!sqlite3_changes(s->wdb))
        rc = fp_fail(err, FP_ECONFLICT, "此动态口令已用过 / this TOTP code was used already");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
