/* sellers.c — sellers (销售方) in the PostgreSQL backend (as
 * src/store/sqlite/sellers.c): the row read for issuing, the listing, the
 * setup insert of `fapiao init`, and the audited changes of `fapiao
 * sellers`, which every node sees through the sellers' generation
 * (migration 2 in open.c: a trigger bumps the one counter row in the
 * statement that changes a seller, so one integer read tells a node
 * whether its cached sellers are current; docs/sellers.md).
 *
 * An audited change first locks that counter row FOR UPDATE: changes of
 * sellers from several nodes then run one at a time, so the check that no
 * other seller has the tax id sees every committed seller (READ
 * COMMITTED: each statement reads what is committed when it starts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SELLER_COLS                                                                                \
    "id, name, tax_id, address, phone, bank, account, tax_bureau, drawer, remark, disabled"

static void read_row(const PGresult *r, int i, fp_seller *out)
{
    memset(out, 0, sizeof *out);
    out->id = pg_int(r, i, 0);
    pg_col(r, i, 1, out->name, sizeof out->name);
    pg_col(r, i, 2, out->tax_id, sizeof out->tax_id);
    pg_col(r, i, 3, out->address, sizeof out->address);
    pg_col(r, i, 4, out->phone, sizeof out->phone);
    pg_col(r, i, 5, out->bank, sizeof out->bank);
    pg_col(r, i, 6, out->account, sizeof out->account);
    pg_col(r, i, 7, out->tax_bureau, sizeof out->tax_bureau);
    pg_col(r, i, 8, out->drawer, sizeof out->drawer);
    pg_col(r, i, 9, out->remark, sizeof out->remark);
    out->disabled = pg_int(r, i, 10) != 0;
}

int pg_store_get_seller(void *be, int64_t seller_id, fp_seller *out)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    pg_params p = {0};
    pg_i64(&p, seller_id);
    int rc;
    PGresult *r = pg_q(c, "SELECT " SELLER_COLS " FROM sellers WHERE id=$1", &p, &rc, NULL);
    if (r && PQntuples(r) == 0)
        rc = FP_ENOTFOUND;
    else if (r)
        read_row(r, 0, out);
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_sellers_generation(void *be, int64_t *gen)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c, "SELECT gen FROM seller_generation WHERE id=1", NULL, &rc, NULL);
    if (r && PQntuples(r) != 1)
        rc = FP_EIO; /* the row is made by the migration and never deleted */
    else if (r)      /* after a reconnect, another value: the sellers cached
                      * from the server before it are dropped (docs/ha.md §5) */
        *gen = pg_int(r, 0, 0) ^ (int64_t)(pg_reconnects() << 40);
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_sellers(void *be, void (*fn)(const fp_seller *x, void *arg), void *arg)
{
    fp_pg *s = be;
    fp_seller *x = malloc(sizeof *x);
    if (!x)
        return FP_ENOMEM;
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c, "SELECT " SELLER_COLS " FROM sellers ORDER BY id", NULL, &rc, NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
        read_row(r, i, x);
        fn(x, arg);
    }
    PQclear(r);
    pg_rrelease(s, c);
    free(x);
    return rc;
}

/* $1..$10: the seller's fields. */
static void seller_params(pg_params *p, const fp_seller *x)
{
    pg_text(p, x->name);
    pg_text(p, x->tax_id);
    pg_text(p, x->address);
    pg_text(p, x->phone);
    pg_text(p, x->bank);
    pg_text(p, x->account);
    pg_text(p, x->tax_bureau);
    pg_text(p, x->drawer);
    pg_text(p, x->remark);
    pg_i64(p, x->disabled != 0);
}

static const char insert_sql[] =
    "INSERT INTO sellers(name, tax_id, address, phone, bank, account, tax_bureau, drawer, remark, "
    "disabled, created_at) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
    "extract(epoch FROM now())::bigint) RETURNING id";

/* Setup (`fapiao init --demo`, tests): no audit record and no check of
 * the tax id against the other sellers. */
int pg_store_add_seller(void *be, const fp_seller *x, int64_t *id, fp_err *err)
{
    fp_pg *s = be;
    pg_params p = {0};
    seller_params(&p, x);
    pthread_mutex_lock(&s->wlock);
    pg_heal(s->w);
    int rc;
    PGresult *r = pg_q(s->w, insert_sql, &p, &rc, err);
    if (r)
        *id = pg_int(r, 0, 0);
    PQclear(r);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

/* The change and its audit record (target "seller:ID"): one transaction. */
static int write_seller(fp_pg *s, const fp_seller *x, int64_t *id, const fp_audit_rec *audit,
                        fp_err *err)
{
    if (!x->name[0] || !x->tax_id[0])
        return fp_fail(err, FP_EINVAL, "a seller needs a name and a tax id");
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc < 0)
        goto unlock;
    /* one change of sellers at a time across nodes (the top of this file) */
    if ((rc = pg_exec(s->w, "SELECT gen FROM seller_generation WHERE id=1 FOR UPDATE", NULL, err)) <
        0)
        goto rollback;
    pg_params p = {0};
    pg_text(&p, x->tax_id);
    pg_i64(&p, x->id);
    PGresult *r = pg_q(s->w,
                       "SELECT (SELECT id FROM sellers WHERE tax_id=$1 AND id<>$2 LIMIT 1), "
                       "EXISTS(SELECT 1 FROM sellers WHERE id=$2)",
                       &p, &rc, err);
    if (!r)
        goto rollback;
    int64_t other = pg_int(r, 0, 0);
    int exists = !strcmp(PQgetvalue(r, 0, 1), "t");
    PQclear(r);
    if (x->id && !exists) {
        rc = fp_fail(err, FP_ENOTFOUND, "no seller %lld", (long long)x->id);
        goto rollback;
    }
    if (other) {
        rc = fp_fail(err, FP_ECONFLICT, "seller %lld already has the tax id %s", (long long)other,
                     x->tax_id);
        goto rollback;
    }
    p = (pg_params){0};
    seller_params(&p, x);
    if (x->id) {
        pg_i64(&p, x->id);
        r = pg_q(s->w,
                 "UPDATE sellers SET name=$1, tax_id=$2, address=$3, phone=$4, bank=$5, "
                 "account=$6, tax_bureau=$7, drawer=$8, remark=$9, disabled=$10 WHERE id=$11",
                 &p, &rc, err);
        if (r && strcmp(PQcmdTuples(r), "1") != 0)
            rc = fp_fail(err, FP_ENOTFOUND, "no seller %lld", (long long)x->id);
        *id = x->id;
    } else {
        r = pg_q(s->w, insert_sql, &p, &rc, err);
        if (r)
            *id = pg_int(r, 0, 0);
    }
    PQclear(r);
    if (rc < 0)
        goto rollback;
    char target[40];
    snprintf(target, sizeof target, "seller:%lld", (long long)*id);
    if ((rc = pg_audit_change(s, audit, target, "ok", err)) < 0)
        goto rollback;
    rc = pg_tx_commit(s, err);
    goto unlock;
rollback:
    pg_tx_rollback(s);
unlock:
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_store_seller_create(void *be, const fp_seller *seller, int64_t *id,
                           const fp_audit_rec *audit, fp_err *err)
{
    fp_seller *x = malloc(sizeof *x);
    if (!x)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    *x = *seller;
    x->id = 0;
    int rc = write_seller(be, x, id, audit, err);
    free(x);
    return rc;
}

int pg_store_seller_update(void *be, const fp_seller *seller, const fp_audit_rec *audit,
                           fp_err *err)
{
    int64_t id;
    if (seller->id < 1)
        return fp_fail(err, FP_EINVAL, "a seller id is 1 or more");
    return write_seller(be, seller, &id, audit, err);
}
