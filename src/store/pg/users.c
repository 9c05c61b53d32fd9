/* users.c — the console's users in the PostgreSQL backend: SQLite's
 * sqlite/users.c in PostgreSQL's terms, each change with its audit record
 * in one transaction on the writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../users_sql.h"
#include "internal.h"

static void user_params(pg_params *p, const fp_user *u)
{
    pg_text(p, u->name);
    pg_i64(p, u->roles);
    pg_i64(p, u->seller_id);
    pg_text(p, u->pw_hash);
    pg_text(p, u->totp_seed);
    pg_text(p, u->enrol_hash);
    pg_text(p, u->recovery);
    pg_i64(p, u->enrolled);
    pg_i64(p, u->disabled);
    pg_i64(p, u->totp_step);
    pg_i64(p, (int64_t)time(NULL));
}

static int user_write(fp_pg *s, const char *sql, const fp_user *u, const fp_audit_rec *audit,
                      fp_err *err)
{
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        pg_params p = {0};
        user_params(&p, u);
        PGresult *r = pg_q(s->w, sql, &p, &rc, err);
        int changed = r && strtol(PQcmdTuples(r), NULL, 10) > 0;
        PQclear(r);
        if (rc == FP_ECONFLICT)
            rc = fp_fail(err, FP_ECONFLICT, "用户已存在 / the user exists: %s", u->name);
        else if (r && !changed)
            rc = fp_fail(err, FP_ENOTFOUND, "没有此用户 / no such user: %s", u->name);
        char target[FP_USER_NAME_MAX + 8];
        snprintf(target, sizeof target, "user:%s", u->name);
        rc = pg_end_audited(s, audit, target, "ok", rc, err);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_store_user_create(void *be, const fp_user *u, const fp_audit_rec *audit, fp_err *err)
{
    return user_write(be,
                      "INSERT INTO console_users(" FP_USERS_COLS
                      ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                      u, audit, err);
}

int pg_store_user_update(void *be, const fp_user *u, const fp_audit_rec *audit, fp_err *err)
{
    return user_write(be,
                      "UPDATE console_users SET roles = $2, seller_id = $3, pw_hash = $4, "
                      "totp_seed = $5, enrol_hash = $6, recovery = $7, enrolled = $8, "
                      "disabled = $9, totp_step = $10, updated_at = $11 WHERE name = $1",
                      u, audit, err);
}

/* name NULL: every user (fn each); else the one (into *one). */
static int user_read(fp_pg *s, const char *name, fp_user *one,
                     void (*fn)(const fp_user *u, void *arg), void *arg)
{
    PGconn *c = pg_racquire(s);
    int rc = 0;
    pg_params p = {0};
    pg_text(&p, name);
    PGresult *r = pg_q(c,
                       "SELECT " FP_USERS_COLS
                       " FROM console_users WHERE $1::text IS NULL OR name = $1 ORDER BY name",
                       &p, &rc, NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fp_user u = {0}, *x = one ? one : &u;
        memset(x, 0, sizeof *x);
        pg_col(r, i, 0, x->name, sizeof x->name);
        x->roles = (unsigned)pg_int(r, i, 1);
        x->seller_id = pg_int(r, i, 2);
        pg_col(r, i, 3, x->pw_hash, sizeof x->pw_hash);
        pg_col(r, i, 4, x->totp_seed, sizeof x->totp_seed);
        pg_col(r, i, 5, x->enrol_hash, sizeof x->enrol_hash);
        pg_col(r, i, 6, x->recovery, sizeof x->recovery);
        x->enrolled = (int)pg_int(r, i, 7);
        x->disabled = (int)pg_int(r, i, 8);
        x->totp_step = pg_int(r, i, 9);
        x->created_at = pg_int(r, i, 10);
        x->updated_at = pg_int(r, i, 11);
        if (!one)
            fn(x, arg);
    }
    if (r && name && !PQntuples(r))
        rc = FP_ENOTFOUND;
    PQclear(r);
    pg_rrelease(s, c);
    return r ? rc : FP_EIO;
}

int pg_store_user_get(void *be, const char *name, fp_user *out)
{
    return user_read(be, name, out, NULL, NULL);
}

int pg_store_users(void *be, void (*fn)(const fp_user *u, void *arg), void *arg)
{
    return user_read(be, NULL, NULL, fn, arg);
}

int pg_store_user_take_step(void *be, const char *name, int64_t step, fp_err *err)
{
    fp_pg *s = be;
    pthread_mutex_lock(&s->wlock);
    int rc = 0;
    pg_params p = {0};
    pg_text(&p, name);
    pg_i64(&p, step);
    PGresult *r =
        pg_q(s->w, "UPDATE console_users SET totp_step = $2 WHERE name = $1 AND totp_step < $2", &p,
             &rc, err);
    if (r && strtol(PQcmdTuples(r), NULL, 10) <= 0)
        rc = fp_fail(err, FP_ECONFLICT, "此动态口令已用过 / this TOTP code was used already");
    PQclear(r);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
