/* credit.c — the PostgreSQL backend's credit line (credit.h; migration 5
 * in open.c): the same rule and SQL as the SQLite backend's
 * (src/store/sqlite/credit.c).  In the issuing transaction the month's row
 * is locked FOR UPDATE before the check, so requests on other nodes wait
 * for it and cannot overspend; used_fen moves after the invoice's insert,
 * in the same transaction.  While the credit is on, batches take the
 * one-by-one path (writer.c), as red invoices do. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/clock.h"
#include "internal.h"

void pg_store_set_credit(void *be, int on)
{
    fp_pg *s = be;
    atomic_store(&s->credit_on, on != 0);
}

int pg_credit_check(fp_pg *s, fp_issue_req *r, int64_t *delta, char month[7])
{
    if (!fp_store_credit_delta(atomic_load(&s->credit_on), r, delta, month))
        return 0;
    pg_params p = {0};
    pg_i64(&p, r->seller_id);
    pg_text(&p, month);
    int rc = 0;
    PGresult *res = pg_q(s->w,
                         "SELECT limit_fen - used_fen FROM upstream_credit "
                         "WHERE seller_id=$1 AND month=$2 FOR UPDATE",
                         &p, &rc, NULL);
    if (!res)
        return FP_EIO;
    int known = PQntuples(res) == 1;
    int64_t left = known ? pg_int(res, 0, 0) : 0;
    PQclear(res);
    if (!known || left >= *delta)
        return 0; /* no row: the month's credit is not known */
    r->credit_left = left > 0 ? left : 0;
    return 1;
}

int pg_credit_apply(fp_pg *s, const fp_issue_req *r, int64_t delta, const char *month)
{
    if (!delta || !month[0])
        return 0;
    pg_params p = {0};
    pg_i64(&p, r->seller_id);
    pg_text(&p, month);
    pg_i64(&p, delta);
    return pg_exec(s->w,
                   "UPDATE upstream_credit SET used_fen = used_fen + $3 "
                   "WHERE seller_id=$1 AND month=$2",
                   &p, NULL) < 0
               ? FP_EIO
               : 0;
}

int pg_store_credit_set(void *be, int64_t seller_id, const char *month, int64_t limit_fen,
                        int64_t first_used, fp_err *err)
{
    fp_pg *s = be;
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_text(&p, month);
    pg_i64(&p, limit_fen);
    pg_i64(&p, fp_steady_ms());
    pg_i64(&p, first_used);
    pthread_mutex_lock(&s->wlock);
    int rc = pg_exec(s->w,
                     "INSERT INTO upstream_credit(seller_id, month, limit_fen, used_fen, "
                     "updated_at) VALUES($1, $2, $3, $5, $4) ON CONFLICT(seller_id, month) DO "
                     "UPDATE SET limit_fen = excluded.limit_fen, updated_at = excluded.updated_at",
                     &p, err);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_store_credit_list(void *be, void (*fn)(const fp_credit_row *c, void *arg), void *arg,
                         fp_err *err)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    int rc = 0;
    PGresult *r = pg_q(c,
                       "SELECT seller_id, month, limit_fen, used_fen, updated_at "
                       "FROM upstream_credit ORDER BY seller_id, month",
                       NULL, &rc, err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fp_credit_row row = {0};
        row.seller_id = pg_int(r, i, 0);
        pg_col(r, i, 1, row.month, sizeof row.month);
        row.limit_fen = pg_int(r, i, 2);
        row.used_fen = pg_int(r, i, 3);
        row.updated_at = pg_int(r, i, 4);
        fn(&row, arg);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return r ? 0 : rc;
}
