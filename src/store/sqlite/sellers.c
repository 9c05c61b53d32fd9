/* sellers.c — sellers (销售方) in the SQLite backend: the row read for
 * issuing, the listing, the setup insert of `fapiao init`, and the audited
 * changes of `fapiao sellers` (add, set, disable, enable), which a running
 * server sees through the sellers' generation (migration 10: triggers bump
 * it on any change of the table, so one integer read tells whether a
 * cached seller is still current; docs/sellers.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define SELLER_COLS                                                                                \
    "id, name, tax_id, address, phone, bank, account, tax_bureau, drawer, remark, disabled"

static void read_row(sqlite3_stmt *st, fp_seller *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    fp_sq_col(st, 1, out->name, sizeof out->name);
    fp_sq_col(st, 2, out->tax_id, sizeof out->tax_id);
    fp_sq_col(st, 3, out->address, sizeof out->address);
    fp_sq_col(st, 4, out->phone, sizeof out->phone);
    fp_sq_col(st, 5, out->bank, sizeof out->bank);
    fp_sq_col(st, 6, out->account, sizeof out->account);
    fp_sq_col(st, 7, out->tax_bureau, sizeof out->tax_bureau);
    fp_sq_col(st, 8, out->drawer, sizeof out->drawer);
    fp_sq_col(st, 9, out->remark, sizeof out->remark);
    out->disabled = sqlite3_column_int(st, 10) != 0;
}

int sq_store_get_seller(void *be, int64_t seller_id, fp_seller *out)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = r->st[RQ_GET_SELLER];
    sqlite3_bind_int64(st, 1, seller_id);
    int rc = fp_sq_step_row(st);
    if (rc == 0)
        read_row(st, out);
    fp_sq_release(s, r, st);
    return rc;
}

int sq_store_sellers_generation(void *be, int64_t *gen)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = r->st[RQ_SELLER_GEN];
    int rc = fp_sq_step_row(st);
    if (rc == 0)
        *gen = sqlite3_column_int64(st, 0);
    fp_sq_release(s, r, st);
    return rc;
}

int sq_store_sellers(void *be, void (*fn)(const fp_seller *x, void *arg), void *arg)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO, step = SQLITE_ERROR;
    fp_seller *x = malloc(sizeof *x);
    if (x && sqlite3_prepare_v2(r->db, "SELECT " SELLER_COLS " FROM sellers ORDER BY id", -1, &st,
                                NULL) == SQLITE_OK) {
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            read_row(st, x);
            fn(x, arg);
        }
        rc = step == SQLITE_DONE ? 0 : FP_EIO;
    }
    free(x);
    sqlite3_finalize(st);
    fp_sq_release(s, r, NULL);
    return rc;
}

/* Binds ?1..?10 of an insert or update: the seller's fields. */
static void bind_fields(sqlite3_stmt *st, const fp_seller *x)
{
    sqlite3_bind_text(st, 1, x->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, x->tax_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, x->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, x->phone, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, x->bank, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, x->account, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, x->tax_bureau, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, x->drawer, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, x->remark, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, x->disabled != 0);
}

static int exec_seller(sqlite3 *db, const char *sql, const fp_seller *x, int64_t id, fp_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(db));
    bind_fields(st, x);
    if (id)
        sqlite3_bind_int64(st, 11, id);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    return 0;
}

static const char insert_sql[] =
    "INSERT INTO sellers(name, tax_id, address, phone, bank, account, tax_bureau, drawer, remark, "
    "disabled, created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, strftime('%s', 'now'))";

/* Setup (`fapiao init --demo`, tests): no audit record and no check of
 * the tax id against the other sellers. */
int sq_store_add_seller(void *be, const fp_seller *seller, int64_t *id, fp_err *err)
{
    fp_sqlite *s = be;
    sqlite3 *db = fp_sq_wlock(s);
    int rc = exec_seller(db, insert_sql, seller, 0, err);
    if (rc == 0)
        *id = sqlite3_last_insert_rowid(db);
    fp_sq_wunlock(s);
    return rc;
}

/* FP_ECONFLICT when a seller other than `self` (0: none) has tax_id. */
static int tax_id_taken(sqlite3 *db, const char *tax_id, int64_t self, fp_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id FROM sellers WHERE tax_id=?1 AND id<>?2 LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK)
        return fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, tax_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, self);
    int step = sqlite3_step(st);
    int64_t other = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (step == SQLITE_ROW)
        return fp_fail(err, FP_ECONFLICT, "seller %lld already has the tax id %s", (long long)other,
                       tax_id);
    return step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
}

static int check_fields(const fp_seller *x, fp_err *err)
{
    if (!x->name[0] || !x->tax_id[0])
        return fp_fail(err, FP_EINVAL, "a seller needs a name and a tax id");
    return 0;
}

/* The change and its audit record (target "seller:ID"): one transaction. */
static int write_seller(fp_sqlite *s, const fp_seller *x, int64_t *id, const fp_audit_rec *audit,
                        fp_err *err)
{
    int rc = check_fields(x, err);
    if (rc < 0)
        return rc;
    sqlite3 *db = fp_sq_wlock(s);
    rc = fp_sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto unlock;
    if (x->id) {
        int64_t have = 0;
        int null = 0;
        rc = fp_sq_int_or_null(db, "SELECT count(*) FROM sellers WHERE id=?1", x->id, &have, &null);
        if (rc == 0 && !have)
            rc = fp_fail(err, FP_ENOTFOUND, "no seller %lld", (long long)x->id);
        else if (rc < 0)
            rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        if (rc < 0)
            goto rollback;
    }
    if ((rc = tax_id_taken(db, x->tax_id, x->id, err)) < 0)
        goto rollback;
    if (x->id) {
        rc = exec_seller(db,
                         "UPDATE sellers SET name=?1, tax_id=?2, address=?3, phone=?4, bank=?5, "
                         "account=?6, tax_bureau=?7, drawer=?8, remark=?9, disabled=?10 "
                         "WHERE id=?11",
                         x, x->id, err);
        if (rc == 0 && sqlite3_changes(db) == 0)
            rc = fp_fail(err, FP_ENOTFOUND, "no seller %lld", (long long)x->id);
        if (rc == 0)
            *id = x->id;
    } else {
        rc = exec_seller(db, insert_sql, x, 0, err);
        if (rc == 0)
            *id = sqlite3_last_insert_rowid(db);
    }
    if (rc < 0)
        goto rollback;
    char target[40];
    snprintf(target, sizeof target, "seller:%lld", (long long)*id);
    rc = fp_sq_end_audited(s, audit, target, "ok", 0, err);
    goto unlock;
rollback:
    fp_sq_end_audited(s, NULL, NULL, NULL, rc, NULL);
unlock:
    fp_sq_wunlock(s);
    return rc;
}

int sq_store_seller_create(void *be, const fp_seller *seller, int64_t *id,
                           const fp_audit_rec *audit, fp_err *err)
{
    fp_seller x = *seller;
    x.id = 0;
    return write_seller(be, &x, id, audit, err);
}

int sq_store_seller_update(void *be, const fp_seller *seller, const fp_audit_rec *audit,
                           fp_err *err)
{
    int64_t id;
    if (seller->id < 1)
        return fp_fail(err, FP_EINVAL, "a seller id is 1 or more");
    return write_seller(be, seller, &id, audit, err);
}
