/* invoices.c — the SQLite backend's reads of invoices (find by serial, get,
 * list) and clients (sellers: sellers.c).  Reads
 * use a connection from the pool (open.c) and never wait for the writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "internal.h"

#define MAX_READERS 16

const char *const fp_sq_read_sql[RQ__N] = {
    [RQ_FIND_SERIAL] =
        "SELECT request_hash, doc, number FROM invoices WHERE seller_id=?1 AND serial=?2",
    [RQ_GET_INVOICE] = "SELECT doc, status, failure FROM invoices WHERE seller_id=?1 AND number=?2",
    [RQ_GET_CLIENT] = ("SELECT seller_id, secret_salt, secret_hash, scope, disabled FROM clients "
                       "WHERE client_id=?1"),
    [RQ_GET_SELLER] =
        ("SELECT id, name, tax_id, address, phone, bank, account, tax_bureau, drawer, "
         "remark, disabled FROM sellers WHERE id=?1"),
    [RQ_SELLER_GEN] = "SELECT gen FROM seller_generation WHERE id=1",
    [RQ_REMAINING] =
        ("SELECT COALESCE(SUM(last - next + 1), 0) FROM number_ranges "
         "WHERE (?1 = 0 OR seller_id = ?1) AND next <= last AND substr(prefix, 1, 2) = ?2"),
    [RQ_PING] = "SELECT count(*) FROM sqlite_master",
};

/* The document in column col with the current status (columns col+1,
 * col+2) patched in; malloc'ed. */
static char *with_status(sqlite3_stmt *st, int col, size_t *len)
{
    fp_buf b;
    fp_buf_init(&b, 0);
    fp_doc_append_status(&b, (const char *)sqlite3_column_text(st, col),
                         (size_t)sqlite3_column_bytes(st, col),
                         (const char *)sqlite3_column_text(st, col + 1),
                         (const char *)sqlite3_column_text(st, col + 2));
    return fp_buf_take(&b, len);
}

/* A stored document must still be JSON: a damaged cell (SQLite keeps no
 * checksums) is refused, never served, and stops writes.  1 when it
 * parses. */
static int doc_parses(fp_sqlite *s, sqlite3_stmt *st, int col, const char *what, const char *id)
{
    const char *p = (const char *)sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    cJSON *j = p ? cJSON_ParseWithLength(p, (size_t)n) : NULL;
    int ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!ok)
        fp_failstop_trip(s->fs, FP_FAILSTOP_CORRUPT, 0,
                         "the stored document of %s %.64s is not valid JSON (damaged row)", what,
                         id);
    return ok;
}

int sq_store_find_serial(void *be, int64_t seller_id, const char *serial, unsigned char hash[32],
                         char number[FP_NUMBER_LEN + 1], char **doc, size_t *len)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = r->st[RQ_FIND_SERIAL];
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
    int rc = fp_sq_step_row(st);
    if (rc == 0) {
        if (sqlite3_column_bytes(st, 0) == 32)
            memcpy(hash, sqlite3_column_blob(st, 0), 32);
        else
            memset(hash, 0, 32);
        fp_sq_col(st, 2, number, FP_NUMBER_LEN + 1);
        if (!doc_parses(s, st, 1, "invoice", number))
            rc = FP_ECORRUPT;
        else if (!(*doc = fp_sq_dup_text(st, 1, len)))
            rc = FP_ENOMEM;
    }
    fp_sq_release(s, r, st);
    return rc;
}

int sq_store_get_invoice(void *be, int64_t seller_id, const char *number, char **doc, size_t *len)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = r->st[RQ_GET_INVOICE];
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, number, -1, SQLITE_STATIC);
    int rc = fp_sq_step_row(st);
    if (rc == 0 && !doc_parses(s, st, 0, "invoice", number))
        rc = FP_ECORRUPT;
    else if (rc == 0 && !(*doc = with_status(st, 0, len)))
        rc = FP_ENOMEM;
    fp_sq_release(s, r, st);
    return rc;
}

int sq_store_get_client(void *be, const char *client_id, fp_client_rec *c)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = r->st[RQ_GET_CLIENT];
    sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    int rc = fp_sq_step_row(st);
    if (rc == 0) {
        memset(c, 0, sizeof *c);
        snprintf(c->client_id, sizeof c->client_id, "%s", client_id);
        c->seller_id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) == 16 && sqlite3_column_bytes(st, 2) == 32) {
            memcpy(c->salt, sqlite3_column_blob(st, 1), 16);
            memcpy(c->hash, sqlite3_column_blob(st, 2), 32);
        } else {
            rc = FP_EIO;
        }
        fp_sq_col(st, 3, c->scope, sizeof c->scope);
        c->disabled = sqlite3_column_int(st, 4);
    }
    fp_sq_release(s, r, st);
    return rc;
}

int sq_store_numbers_remaining(void *be, int64_t seller_id, int64_t *remaining)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = r->st[RQ_REMAINING];
    char yy[3];
    fp_sq_current_yy(yy, 0);
    sqlite3_bind_int64(st, 1, seller_id);
    sqlite3_bind_text(st, 2, yy, 2, SQLITE_TRANSIENT);
    int rc = fp_sq_step_row(st);
    if (rc == 0)
        *remaining = sqlite3_column_int64(st, 0);
    fp_sq_release(s, r, st);
    return rc;
}

int sq_store_ping(void *be, fp_err *err)
{
    fp_sqlite *s = be;
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = r->st[RQ_PING];
    int rc = fp_sq_step_row(st);
    if (rc < 0)
        fp_fail(err, FP_EIO, "database: %s", sqlite3_errmsg(r->db));
    fp_sq_release(s, r, st);
    return rc;
}

int sq_store_list_invoices_part(void *be, int64_t seller_id, const fp_list_query *q,
                                size_t soft_bytes, fp_buf *out, int *rows,
                                char last[FP_NUMBER_LEN + 1], int *more)
{
    fp_sqlite *s = be;
    /* One statement for every filter combination: absent filters are NULL
     * and match everything; ordered by number, which is the issue order
     * within a range. */
    static const char sql[] =
        "SELECT number, doc, status, failure FROM invoices WHERE seller_id=?1 "
        "AND (?2 IS NULL OR serial=?2) AND (?3 IS NULL OR buyer_tax_id=?3) "
        "AND (?4 IS NULL OR issued_at >= ?4) AND (?5 IS NULL OR issued_at < ?5) "
        "AND (?6 IS NULL OR number > ?6) "
        "AND (?8 IS NULL OR number IN (SELECT invoice_number FROM uploads WHERE state=?8)) "
        "ORDER BY number LIMIT ?7";
    reader *r = fp_sq_acquire(s);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    *more = 0;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, seller_id);
    if (q->serial)
        sqlite3_bind_text(st, 2, q->serial, -1, SQLITE_STATIC);
    if (q->buyer_tax_id)
        sqlite3_bind_text(st, 3, q->buyer_tax_id, -1, SQLITE_STATIC);
    if (q->from_ts)
        sqlite3_bind_int64(st, 4, q->from_ts);
    if (q->to_ts)
        sqlite3_bind_int64(st, 5, q->to_ts);
    if (q->cursor)
        sqlite3_bind_text(st, 6, q->cursor, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, q->limit + 1); /* one more tells whether a page follows */
    if (q->upload > 0)
        sqlite3_bind_text(st, 8, fp_upload_state_name(q->upload - 1), -1, SQLITE_STATIC);
    int n = 0, step, corrupt = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == q->limit || (soft_bytes && n > 0 && out->len >= soft_bytes)) {
            *more = 1;
            break;
        }
        fp_sq_col(st, 0, last, FP_NUMBER_LEN + 1);
        if (!doc_parses(s, st, 1, "invoice", last)) {
            corrupt = 1;
            break;
        }
        if ((*rows)++ > 0)
            fp_buf_append(out, ",", 1);
        n++;
        fp_doc_append_status(
            out, (const char *)sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1),
            (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3));
    }
    rc = corrupt                                     ? FP_ECORRUPT
         : step == SQLITE_ROW || step == SQLITE_DONE ? (out->overflow ? FP_ENOMEM : 0)
                                                     : FP_EIO;
out:
    sqlite3_finalize(st);
    fp_sq_release(s, r, NULL);
    return rc;
}
