/* import.c — rows moved into an empty PostgreSQL store (../migrate.c;
 * docs/ha.md "Moving from one node on SQLite"): one transaction on one
 * connection, every table with COPY (text format), then what the copied
 * rows imply set once: the audit chain's head (the last record, or the
 * anchor checkpoint of a pruned log), the issue clock, the sequences past
 * the largest ids, the sellers' generation.  Hashes, secrets and documents
 * are copied as stored, byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct fp_pg_import {
    PGconn *c;
    int done;
    char *line;
    size_t len, cap;
};

/* Every table the store writes: any row in one means "not empty". */
static const char empty_sql[] =
    "SELECT (SELECT count(*) FROM sellers) + (SELECT count(*) FROM clients) + "
    "(SELECT count(*) FROM client_secrets) + (SELECT count(*) FROM number_ranges) + "
    "(SELECT count(*) FROM invoices) + (SELECT count(*) FROM red_forms) + "
    "(SELECT count(*) FROM jobs) + (SELECT count(*) FROM audit) + "
    "(SELECT count(*) FROM audit_checkpoints) + (SELECT count(*) FROM alert_silences) + "
    "(SELECT count(*) FROM uploads) + (SELECT count(*) FROM upstream_credit) + "
    "(SELECT count(*) FROM console_users)";

static int put(fp_pg_import *im, const void *p, size_t n)
{
    if (im->len + n + 1 > im->cap) {
        size_t cap = (im->len + n + 1) * 2;
        char *l = realloc(im->line, cap);
        if (!l)
            return FP_ENOMEM;
        im->line = l;
        im->cap = cap;
    }
    memcpy(im->line + im->len, p, n);
    im->len += n;
    return 0;
}

/* A value in COPY's text format: \N, a number, text with \\ \n \r \t
 * escaped, or bytea as \\x and hex. */
static int put_val(fp_pg_import *im, const fp_mig_val *v)
{
    char num[24];
    static const char hex[] = "0123456789abcdef";
    int rc = 0;
    switch (v->kind) {
    case FP_MIG_NULL:
        return put(im, "\\N", 2);
    case FP_MIG_INT:
        return put(im, num, (size_t)snprintf(num, sizeof num, "%lld", (long long)v->i));
    case FP_MIG_BLOB:
        rc = put(im, "\\\\x", 3);
        for (size_t i = 0; rc == 0 && i < v->n; i++) {
            unsigned char b = ((const unsigned char *)v->p)[i];
            char h[2] = {hex[b >> 4], hex[b & 15]};
            rc = put(im, h, 2);
        }
        return rc;
    default:
        for (size_t i = 0; rc == 0 && i < v->n; i++) {
            char ch = ((const char *)v->p)[i];
            const char *esc = ch == '\\'   ? "\\\\"
                              : ch == '\n' ? "\\n"
                              : ch == '\r' ? "\\r"
                              : ch == '\t' ? "\\t"
                                           : NULL;
            rc = esc ? put(im, esc, 2) : put(im, &ch, 1);
        }
        return rc;
    }
}

static int fail_pg(fp_pg_import *im, fp_err *err, const char *what)
{
    return fp_fail(err, FP_EIO, "postgresql: %s: %s", what, PQerrorMessage(im->c));
}

static int i_table(void *arg, int t, const char *const *cols, int ncols, fp_err *err)
{
    fp_pg_import *im = arg;
    char sql[1024];
    int n = snprintf(sql, sizeof sql, "COPY %s(", fp_mig_tables[t].name);
    for (int i = 0; i < ncols && n < (int)sizeof sql; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "%s%s", i ? ", " : "", cols[i]);
    if (n < (int)sizeof sql)
        n += snprintf(sql + n, sizeof sql - (size_t)n, ") FROM STDIN");
    if (n >= (int)sizeof sql)
        return fp_fail(err, FP_ERANGE, "%s: too many columns", fp_mig_tables[t].name);
    PGresult *r = PQexec(im->c, sql);
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    return ok ? 0 : fail_pg(im, err, fp_mig_tables[t].name);
}

static int i_row(void *arg, const fp_mig_val *v, int n, fp_err *err)
{
    fp_pg_import *im = arg;
    im->len = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        if ((rc = i ? put(im, "\t", 1) : 0) == 0)
            rc = put_val(im, &v[i]);
    if (rc == 0)
        rc = put(im, "\n", 1);
    if (rc < 0)
        return fp_fail(err, rc, "out of memory");
    return PQputCopyData(im->c, im->line, (int)im->len) == 1 ? 0 : fail_pg(im, err, "COPY");
}

static int i_end(void *arg, int t, fp_err *err)
{
    fp_pg_import *im = arg;
    if (PQputCopyEnd(im->c, NULL) != 1)
        return fail_pg(im, err, fp_mig_tables[t].name);
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(im->c))) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
            rc = fp_fail(err, FP_EIO, "postgresql: %s: %s", fp_mig_tables[t].name,
                         PQresultErrorMessage(r));
        PQclear(r);
    }
    return rc;
}

int fp_pg_import_begin(const char *url, fp_pg_import **out, fp_mig_sink *sink, fp_err *err)
{
    *out = NULL;
    fp_pg_import *im = calloc(1, sizeof *im);
    if (!im)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    im->c = PQconnectdb(url);
    int rc;
    if (PQstatus(im->c) != CONNECTION_OK) {
        rc = fail_pg(im, err, "cannot connect (无法连接)");
        fp_pg_import_free(im);
        return rc;
    }
    PGresult *r = NULL;
    /* the head row locked first: a node started on the target meanwhile
     * waits for the copy, then finds the chain it left */
    if ((rc = pg_exec(im->c, "BEGIN", NULL, err)) == 0 &&
        (rc = pg_exec(im->c, "SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE", NULL, err)) == 0)
        r = pg_q(im->c, empty_sql, NULL, &rc, err);
    if (r && pg_int(r, 0, 0) != 0)
        rc = fp_fail(err, FP_ECONFLICT,
                     "the target database is not empty (目标数据库不是空的): it holds %lld rows "
                     "of a store; migrate into a new database",
                     (long long)pg_int(r, 0, 0));
    PQclear(r);
    if (rc < 0) {
        fp_pg_import_free(im);
        return rc;
    }
    *sink = (fp_mig_sink){.table = i_table, .row = i_row, .end = i_end, .arg = im};
    *out = im;
    return 0;
}

/* What the copied rows imply, set once in the same transaction. */
static const char *const finish_sql[] = {
    "UPDATE audit_head SET (last_id, last_hash) = "
    "(SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1) "
    "WHERE id = 1 AND EXISTS (SELECT 1 FROM audit)",
    "UPDATE audit_head SET (last_id, last_hash) = "
    "(SELECT upto_id, upto_hash FROM audit_checkpoints ORDER BY id DESC LIMIT 1) "
    "WHERE id = 1 AND NOT EXISTS (SELECT 1 FROM audit) "
    "AND EXISTS (SELECT 1 FROM audit_checkpoints)",
    "UPDATE seller_generation SET gen = gen + 1 WHERE id = 1",
    "SELECT setval(pg_get_serial_sequence('sellers', 'id'), "
    "  coalesce((SELECT max(id) FROM sellers), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('client_secrets', 'id'), "
    "  coalesce((SELECT max(id) FROM client_secrets), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('number_ranges', 'id'), "
    "  coalesce((SELECT max(id) FROM number_ranges), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('red_forms', 'id'), "
    "  coalesce((SELECT max(id) FROM red_forms), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('jobs', 'id'), "
    "  coalesce((SELECT max(id) FROM jobs), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('invoices', 'seq'), "
    "  coalesce((SELECT max(seq) FROM invoices), 0) + 1, false)",
    "SELECT setval(pg_get_serial_sequence('alert_silences', 'id'), "
    "  coalesce((SELECT max(id) FROM alert_silences), 0) + 1, false)",
};

int fp_pg_import_finish(fp_pg_import *im, int64_t mark, int64_t confirmed, fp_err *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof finish_sql / sizeof finish_sql[0]; i++)
        rc = pg_exec(im->c, finish_sql[i], NULL, err);
    if (rc == 0) {
        pg_params p = {0};
        pg_i64(&p, mark);
        if (confirmed > 0)
            pg_i64(&p, confirmed);
        else
            pg_i64_null(&p);
        rc = pg_exec(im->c, "UPDATE issue_clock SET mark = $1, confirmed_at = $2 WHERE id = 1", &p,
                     err);
    }
    if (rc == 0 && (rc = pg_exec(im->c, "COMMIT", NULL, err)) == 0)
        im->done = 1;
    return rc;
}

int64_t fp_pg_import_count(fp_pg_import *im, int t)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", fp_mig_tables[t].name);
    int rc;
    PGresult *r = pg_q(im->c, sql, NULL, &rc, NULL);
    int64_t n = r && PQntuples(r) == 1 ? pg_int(r, 0, 0) : -1;
    PQclear(r);
    return n;
}

void fp_pg_import_free(fp_pg_import *im)
{
    if (!im)
        return;
    if (im->c && !im->done && PQtransactionStatus(im->c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(im->c, "ROLLBACK");
        PQclear(r);
    }
    PQfinish(im->c);
    free(im->line);
    free(im);
}
