/* invoices.c — the PostgreSQL backend's reads (find by serial, get, list,
 * numbers left, ping) on the read pool, and the setup writes of `fapiao
 * init` (ranges; sellers: sellers.c) on the writer connection.  Reads go to
 * the primary the connection string names (read your writes: docs/ha.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "internal.h"

/* A stored document must still be JSON: a damaged one is refused. */
static int doc_parses(const PGresult *r, int row, int col)
{
    cJSON *j = cJSON_ParseWithLength(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
    int ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

static char *dup_col(const PGresult *r, int row, int col, size_t *len)
{
    size_t n = (size_t)PQgetlength(r, row, col);
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, PQgetvalue(r, row, col), n + 1);
        *len = n;
    }
    return p;
}

int pg_store_find_serial(void *be, int64_t seller_id, const char *serial, unsigned char hash[32],
                         char number[FP_NUMBER_LEN + 1], char **doc, size_t *len)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_text(&p, serial);
    int rc;
    PGresult *r = pg_q(c,
                       "SELECT request_hash, doc, number FROM invoices "
                       "WHERE seller_id=$1 AND serial=$2",
                       &p, &rc, NULL);
    if (r && PQntuples(r) == 0)
        rc = FP_ENOTFOUND;
    else if (r) {
        if (pg_bytea(r, 0, 0, hash, 32) < 0)
            memset(hash, 0, 32);
        pg_col(r, 0, 2, number, FP_NUMBER_LEN + 1);
        if (!doc_parses(r, 0, 1))
            rc = FP_ECORRUPT;
        else if (!(*doc = dup_col(r, 0, 1, len)))
            rc = FP_ENOMEM;
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_get_invoice(void *be, int64_t seller_id, const char *number, char **doc, size_t *len)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_text(&p, number);
    int rc;
    PGresult *r = pg_q(c,
                       "SELECT doc, status, coalesce(failure, '') FROM invoices "
                       "WHERE seller_id=$1 AND number=$2",
                       &p, &rc, NULL);
    if (r && PQntuples(r) == 0)
        rc = FP_ENOTFOUND;
    else if (r && !doc_parses(r, 0, 0))
        rc = FP_ECORRUPT;
    else if (r) {
        fp_buf b;
        fp_buf_init(&b, 0);
        fp_doc_append_status(&b, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0),
                             PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
        if (!(*doc = fp_buf_take(&b, len)))
            rc = FP_ENOMEM;
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_list_invoices_part(void *be, int64_t seller_id, const fp_list_query *q,
                                size_t soft_bytes, fp_buf *out, int *rows,
                                char last[FP_NUMBER_LEN + 1], int *more)
{
    fp_pg *s = be;
    /* absent filters are NULL and match everything; ordered by number */
    static const char sql[] =
        "SELECT number, doc, status, coalesce(failure, '') FROM invoices WHERE seller_id=$1 "
        "AND ($2::text IS NULL OR serial=$2) AND ($3::text IS NULL OR buyer_tax_id=$3) "
        "AND ($4::bigint IS NULL OR issued_at >= $4) AND ($5::bigint IS NULL OR issued_at < $5) "
        "AND ($6::text IS NULL OR number > $6) "
        "AND ($8::text IS NULL OR number IN (SELECT invoice_number FROM uploads WHERE state=$8)) "
        "ORDER BY number LIMIT $7";
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_text(&p, q->serial);
    pg_text(&p, q->buyer_tax_id);
    if (q->from_ts)
        pg_i64(&p, q->from_ts);
    else
        pg_i64_null(&p);
    if (q->to_ts)
        pg_i64(&p, q->to_ts);
    else
        pg_i64_null(&p);
    pg_text(&p, q->cursor);
    pg_i64(&p, q->limit + 1); /* one more tells whether a page follows */
    pg_text(&p, q->upload > 0 ? fp_upload_state_name(q->upload - 1) : NULL);
    *more = 0;
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c, sql, &p, &rc, NULL);
    for (int i = 0, n = 0; r && i < PQntuples(r); i++) {
        if (n == q->limit || (soft_bytes && n > 0 && out->len >= soft_bytes)) {
            *more = 1;
            break;
        }
        pg_col(r, i, 0, last, FP_NUMBER_LEN + 1);
        if (!doc_parses(r, i, 1)) {
            rc = FP_ECORRUPT;
            break;
        }
        if ((*rows)++ > 0)
            fp_buf_append(out, ",", 1);
        n++;
        fp_doc_append_status(out, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1),
                             PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
    }
    if (rc == 0 && out->overflow)
        rc = FP_ENOMEM;
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_numbers_remaining(void *be, int64_t seller_id, int64_t *remaining)
{
    fp_pg *s = be;
    char yy[3];
    pg_current_yy(yy, 0);
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_text(&p, yy);
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c,
                       "SELECT coalesce(sum(last - next + 1), 0) FROM number_ranges "
                       "WHERE ($1 = 0 OR seller_id = $1) AND next <= last "
                       "AND substr(prefix, 1, 2) = $2",
                       &p, &rc, NULL);
    if (r)
        *remaining = pg_int(r, 0, 0);
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_ping(void *be, fp_err *err)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    int rc = pg_exec(c, "SELECT 1", NULL, err);
    pg_rrelease(s, c);
    return rc;
}

/* ---- setup ---- */

int pg_store_add_range(void *be, int64_t seller_id, const char prefix[6], int64_t first,
                       int64_t last, const fp_audit_rec *audit, fp_err *err)
{
    fp_pg *s = be;
    for (int i = 0; i < 5; i++)
        if (prefix[i] < '0' || prefix[i] > '9')
            return fp_fail(err, FP_EINVAL,
                           "range prefix must be 5 digits (year, province, channel)");
    if (prefix[5] != 0 || first < 1 || first > last || last > 999999999999999LL)
        return fp_fail(err, FP_EINVAL, "range must satisfy 1 <= first <= last <= 999999999999999");
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc < 0)
        goto unlock;
    /* the overlap check and the insert under one lock on every node */
    if ((rc = pg_exec(s->w, "LOCK TABLE number_ranges IN SHARE ROW EXCLUSIVE MODE", NULL, err)) < 0)
        goto rollback;
    pg_params p = {0};
    pg_text(&p, prefix);
    pg_i64(&p, first);
    pg_i64(&p, last);
    PGresult *r = pg_q(s->w,
                       "SELECT count(*) FROM number_ranges WHERE prefix=$1 AND first<=$3 "
                       "AND last>=$2",
                       &p, &rc, err);
    if (!r)
        goto rollback;
    int overlap = pg_int(r, 0, 0) > 0;
    PQclear(r);
    if (overlap) {
        rc = fp_fail(err, FP_ECONFLICT, "range %s %lld..%lld overlaps an existing range", prefix,
                     (long long)first, (long long)last);
        goto rollback;
    }
    pg_params i = {0};
    pg_i64(&i, seller_id);
    pg_text(&i, prefix);
    pg_i64(&i, first);
    pg_i64(&i, last);
    pg_i64(&i, (int64_t)time(NULL));
    if ((rc = pg_exec(s->w,
                      "INSERT INTO number_ranges(seller_id, prefix, first, last, next, "
                      "created_at) VALUES($1, $2, $3, $4, $3, $5)",
                      &i, err)) < 0)
        goto rollback;
    char target[48];
    snprintf(target, sizeof target, "%.5s:%lld..%lld", prefix, (long long)first, (long long)last);
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

int pg_store_ranges(void *be, void (*fn)(const fp_range_rec *r, void *arg), void *arg)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c,
                       "SELECT id, seller_id, prefix, first, last, next, created_at "
                       "FROM number_ranges ORDER BY id",
                       NULL, &rc, NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fp_range_rec rec = {0};
        rec.id = pg_int(r, i, 0);
        rec.seller_id = pg_int(r, i, 1);
        pg_col(r, i, 2, rec.prefix, sizeof rec.prefix);
        rec.first = pg_int(r, i, 3);
        rec.last = pg_int(r, i, 4);
        rec.next = pg_int(r, i, 5);
        rec.created_at = pg_int(r, i, 6);
        fn(&rec, arg);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_advance_range(void *be, int64_t range_id, int64_t next, const fp_audit_rec *audit,
                           fp_range_rec *before, fp_err *err)
{
    fp_pg *s = be;
    memset(before, 0, sizeof *before);
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc < 0)
        goto unlock;
    /* the row lock waits for a node's issuing batch that holds the range
     * (its range_for reads it FOR UPDATE and re-reads it every batch) */
    pg_params p = {0};
    pg_i64(&p, range_id);
    PGresult *r = pg_q(s->w,
                       "SELECT seller_id, prefix, first, last, next FROM number_ranges "
                       "WHERE id=$1 FOR UPDATE",
                       &p, &rc, err);
    if (!r)
        goto rollback;
    if (PQntuples(r) == 0) {
        PQclear(r);
        rc = fp_fail(err, FP_ENOTFOUND, "no range %lld", (long long)range_id);
        goto rollback;
    }
    *before = (fp_range_rec){.id = range_id,
                             .seller_id = pg_int(r, 0, 0),
                             .first = pg_int(r, 0, 2),
                             .last = pg_int(r, 0, 3),
                             .next = pg_int(r, 0, 4)};
    pg_col(r, 0, 1, before->prefix, sizeof before->prefix);
    PQclear(r);
    if (next > before->last + 1) {
        rc = fp_fail(err, FP_EINVAL, "range %lld ends at %lld: next can be at most %lld",
                     (long long)range_id, (long long)before->last, (long long)before->last + 1);
        goto rollback;
    }
    if (next <= before->next) { /* forward only: nothing to do */
        pg_tx_rollback(s);
        goto unlock;
    }
    pg_params u = {0};
    pg_i64(&u, range_id);
    pg_i64(&u, next);
    if ((rc = pg_exec(s->w, "UPDATE number_ranges SET next=$2 WHERE id=$1", &u, err)) < 0)
        goto rollback;
    char target[96];
    snprintf(target, sizeof target, "%s:%lld:%lld->%lld", before->prefix, (long long)range_id,
             (long long)before->next, (long long)next);
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
