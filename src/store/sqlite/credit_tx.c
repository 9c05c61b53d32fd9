/* credit_tx.c — the SQLite backend's credit line in the issuing
 * transaction (credit.h, migration 13), on the writer's connection under
 * wlock (writer.c's issue_one): the invoice's effect on its month's credit
 * by src/upstream/credit.c's rule, checked against limit_fen - used_fen
 * before the INSERT and added to used_fen after it.  One writer and one
 * transaction per batch make the check and the move atomic: a later
 * request of the same batch sees the earlier ones' moves, a rollback
 * undoes them with the invoices.  (credit.c has the rows outside it.) */
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

void sq_store_set_credit(void *be, int on)
{
    fp_sqlite *s = be;
    atomic_store(&s->credit_on, on != 0);
}

int fp_sq_credit_check(fp_sqlite *s, fp_issue_req *r, int64_t *delta, char month[7])
{
    if (!fp_store_credit_delta(atomic_load(&s->credit_on), r, delta, month))
        return 0;
    sqlite3_stmt *st = s->wst[WQ_CREDIT_LEFT];
    sqlite3_bind_int64(st, 1, r->seller_id);
    sqlite3_bind_text(st, 2, month, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    int64_t left = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? 0 : FP_EIO; /* no row: the month's credit is not known */
    if (left >= *delta)
        return 0;
    r->credit_left = left > 0 ? left : 0;
    return 1;
}

int fp_sq_credit_apply(fp_sqlite *s, const fp_issue_req *r, int64_t delta, const char *month)
{
    if (!delta || !month[0])
        return 0;
    sqlite3_stmt *st = s->wst[WQ_CREDIT_ADD];
    sqlite3_bind_int64(st, 1, r->seller_id);
    sqlite3_bind_text(st, 2, month, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, delta);
    return fp_sq_step_done(st) < 0 ? FP_EIO : 0;
}
