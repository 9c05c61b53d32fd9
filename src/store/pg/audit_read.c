/* audit_read.c — the raw audit chain for the auditor in the PostgreSQL
 * backend (store.h fp_store_audit_snapshot; as src/store/sqlite/
 * audit_read.c): one REPEATABLE READ, READ ONLY transaction on a pool
 * connection, so that every query of a verify or an export sees one
 * snapshot of the database while the nodes go on writing.  A scan reads
 * through server-side cursors, a batch of rows at a time, so a long chain
 * is never held in memory whole. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct snap {
    fp_audit_snap a; /* first: the auditor's handle is this */
    PGconn *c;
} snap;

#define REC_COLS                                                                                   \
    "id, ts, actor, action, target, request_id, client_ip, outcome, seller_id, "                   \
    "client_request_id, prev_hash, hash"
#define CP_COLS    "id, upto_id, upto_hash, ts, signature"
#define COL_PREV   (2 + FP_AUDIT__FIELDS)
#define COL_HASH   (3 + FP_AUDIT__FIELDS)
#define FETCH_ROWS 1000

static PGconn *conn_of(fp_audit_snap *a)
{
    return ((snap *)a)->c;
}

/* A row of REC_COLS (r, i).  Its texts live while r does; the hashes are
 * decoded into *prev and *hash, which the caller frees (PQfreemem). */
static void row_from_result(const PGresult *r, int i, fp_audit_row *row, unsigned char **prev,
                            unsigned char **hash)
{
    static const unsigned char none[1];
    memset(row, 0, sizeof *row);
    row->id = pg_int(r, i, 0);
    row->ts = pg_int(r, i, 1);
    for (int k = 0; k < FP_AUDIT__FIELDS; k++) {
        if (PQgetisnull(r, i, 2 + k))
            continue;
        row->f[k].p = PQgetvalue(r, i, 2 + k);
        row->f[k].n = (size_t)PQgetlength(r, i, 2 + k);
    }
    *prev = *hash = NULL;
    if (!PQgetisnull(r, i, COL_PREV)) {
        *prev = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, COL_PREV), &row->prev_len);
        row->prev_hash = *prev ? *prev : none;
    }
    if (!PQgetisnull(r, i, COL_HASH)) {
        *hash = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, COL_HASH), &row->hash_len);
        row->hash = *hash ? *hash : none;
    }
}

/* A row of CP_COLS; a bytea of the wrong length makes it malformed. */
static void cp_from_result(const PGresult *r, int i, fp_audit_cp *cp)
{
    memset(cp, 0, sizeof *cp);
    cp->id = pg_int(r, i, 0);
    cp->upto_id = pg_int(r, i, 1);
    cp->ts = pg_int(r, i, 3);
    if (pg_bytea(r, i, 2, cp->upto_hash, FP_AUDIT_HASH_LEN) < 0)
        cp->malformed = 1;
    if (pg_bytea(r, i, 4, cp->sig, FP_AUDIT_SIG_LEN) < 0)
        cp->malformed = 1;
}

static int snap_bounds(fp_audit_snap *a, int64_t *min_id, int64_t *max_id, fp_err *err)
{
    int rc;
    PGresult *r = pg_q(conn_of(a), "SELECT min(id), max(id) FROM audit", NULL, &rc, err);
    if (!r)
        return rc;
    int empty = PQgetisnull(r, 0, 0);
    *min_id = pg_int(r, 0, 0);
    *max_id = pg_int(r, 0, 1);
    PQclear(r);
    return empty ? FP_ENOTFOUND : 0;
}

static int snap_cp(fp_audit_snap *a, fp_audit_cp_at at, int64_t arg, fp_audit_cp *out, fp_err *err)
{
    static const char *const where[] = {
        [FP_CP_ID] = "WHERE id=$1",
        [FP_CP_AFTER_ID] = "WHERE id > $1 ORDER BY id LIMIT 1",
        [FP_CP_BEFORE_UPTO] = "WHERE upto_id < $1 ORDER BY upto_id DESC LIMIT 1",
        [FP_CP_FROM_UPTO] = "WHERE upto_id >= $1 ORDER BY upto_id LIMIT 1",
    };
    if ((unsigned)at >= sizeof where / sizeof where[0])
        return fp_fail(err, FP_EINVAL, "no such checkpoint query");
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT " CP_COLS " FROM audit_checkpoints %s", where[at]);
    pg_params p = {0};
    pg_i64(&p, arg);
    int rc;
    PGresult *r = pg_q(conn_of(a), sql, &p, &rc, err);
    if (!r)
        return rc;
    int found = PQntuples(r) > 0;
    if (found)
        cp_from_result(r, 0, out);
    PQclear(r);
    return found;
}

static int snap_hash_at(fp_audit_snap *a, int64_t id, unsigned char h[FP_AUDIT_HASH_LEN])
{
    pg_params p = {0};
    pg_i64(&p, id);
    int rc;
    PGresult *r = pg_q(conn_of(a), "SELECT hash FROM audit WHERE id=$1", &p, &rc, NULL);
    int ok = r && PQntuples(r) == 1 && pg_bytea(r, 0, 0, h, FP_AUDIT_HASH_LEN) == 0;
    PQclear(r);
    return ok;
}

static int snap_find_hash(fp_audit_snap *a, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id)
{
    pg_params p = {0};
    pg_bin(&p, h, FP_AUDIT_HASH_LEN);
    int rc;
    PGresult *r =
        pg_q(conn_of(a), "SELECT id FROM audit WHERE hash=$1 ORDER BY id LIMIT 1", &p, &rc, NULL);
    int found = r && PQntuples(r) == 1;
    if (found)
        *id = pg_int(r, 0, 0);
    PQclear(r);
    return found;
}

/* A server-side cursor read FETCH_ROWS rows at a time. */
typedef struct cursor {
    PGconn *c;
    const char *name;
    PGresult *r;
    int i, n, done, open;
} cursor;

static int cur_open(cursor *k, PGconn *c, const char *name, const char *query, fp_err *err)
{
    memset(k, 0, sizeof *k);
    k->c = c;
    k->name = name;
    size_t cap = strlen(name) + strlen(query) + 64;
    char *sql = malloc(cap);
    if (!sql)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    snprintf(sql, cap, "DECLARE %s NO SCROLL CURSOR FOR %s", name, query);
    int rc = pg_exec(c, sql, NULL, err);
    free(sql);
    k->open = rc == 0;
    k->i = -1;
    return rc;
}

/* 1: row k->i of k->r is the next; 0: no more; or an error. */
static int cur_next(cursor *k, fp_err *err)
{
    if (k->r && k->i + 1 < k->n) {
        k->i++;
        return 1;
    }
    PQclear(k->r);
    k->r = NULL;
    if (k->done)
        return 0;
    char sql[64];
    snprintf(sql, sizeof sql, "FETCH %d FROM %s", FETCH_ROWS, k->name);
    int rc;
    if (!(k->r = pg_q(k->c, sql, NULL, &rc, err)))
        return rc;
    k->n = PQntuples(k->r);
    k->i = 0;
    k->done = k->n < FETCH_ROWS;
    return k->n > 0;
}

static void cur_close(cursor *k)
{
    PQclear(k->r);
    k->r = NULL;
    if (k->open) {
        char sql[64];
        snprintf(sql, sizeof sql, "CLOSE %s", k->name);
        pg_exec(k->c, sql, NULL, NULL);
        k->open = 0;
    }
}

/* Two cursors, records and checkpoints, merged in chain order. */
static int snap_scan(fp_audit_snap *a, const fp_audit_scan *q, fp_err *err)
{
    PGconn *c = conn_of(a);
    char rsql[512], csql[512];
    snprintf(rsql, sizeof rsql,
             "SELECT " REC_COLS " FROM audit WHERE id >= %" PRId64 " AND (%" PRId64
             " = 0 OR id <= %" PRId64 ") AND NOT %s ORDER BY id",
             q->from, q->to, q->to, q->no_rows ? "true" : "false");
    char limit[32] = "";
    if (q->cp_limit > 0)
        snprintf(limit, sizeof limit, " LIMIT %d", q->cp_limit);
    snprintf(csql, sizeof csql,
             "SELECT " CP_COLS " FROM audit_checkpoints WHERE id > %" PRId64
             " AND upto_id >= %" PRId64 " AND (%" PRId64 " = 0 OR upto_id <= %" PRId64
             ") ORDER BY id%s",
             q->cp_after, q->cp_upto_min, q->cp_upto_max, q->cp_upto_max, limit);
    cursor rs, cs;
    int rc = cur_open(&rs, c, "fp_audit_rows", rsql, err);
    if (rc == 0)
        rc = cur_open(&cs, c, "fp_audit_cps", csql, err);
    else
        memset(&cs, 0, sizeof cs);
    fp_audit_cp cp;
    fp_audit_row row;
    int stop = 0, cnext = rc == 0 ? cur_next(&cs, err) : 0, rnext = 0;
    if (cnext < 0)
        rc = cnext;
    if (cnext == 1)
        cp_from_result(cs.r, cs.i, &cp);
    while (rc == 0 && !stop && (rnext = cur_next(&rs, err)) == 1) {
        unsigned char *prev, *hash;
        row_from_result(rs.r, rs.i, &row, &prev, &hash);
        while (!stop && cnext == 1 && cp.upto_id < row.id) {
            stop = q->on_cp(&cp, q->arg);
            if ((cnext = cur_next(&cs, err)) == 1)
                cp_from_result(cs.r, cs.i, &cp);
        }
        if (!stop && cnext >= 0)
            stop = q->on_row(&row, q->arg);
        PQfreemem(prev);
        PQfreemem(hash);
        if (cnext < 0)
            rc = cnext;
    }
    if (rc == 0 && rnext < 0)
        rc = rnext;
    while (rc == 0 && !stop && cnext == 1) {
        stop = q->on_cp(&cp, q->arg);
        if ((cnext = cur_next(&cs, err)) == 1)
            cp_from_result(cs.r, cs.i, &cp);
        if (cnext < 0)
            rc = cnext;
    }
    cur_close(&rs);
    cur_close(&cs);
    return rc;
}

static int snap_latest(fp_audit_snap *a, int limit, void (*fn)(const fp_audit_row *r, void *arg),
                       void *arg, fp_err *err)
{
    pg_params p = {0};
    pg_i64(&p, limit);
    int rc;
    PGresult *r =
        pg_q(conn_of(a), "SELECT " REC_COLS " FROM audit ORDER BY id DESC LIMIT $1", &p, &rc, err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fp_audit_row row;
        unsigned char *prev, *hash;
        row_from_result(r, i, &row, &prev, &hash);
        fn(&row, arg);
        PQfreemem(prev);
        PQfreemem(hash);
    }
    PQclear(r);
    return rc;
}

/* Storage order is seq (migration 2 in open.c: commit order). */
static void snap_invoices_back(fp_audit_snap *a, int64_t tolerance, int64_t *count,
                               int64_t *max_back, char *first, size_t cap)
{
    static const char sql[] =
        "WITH w AS (SELECT number, seq, issued_at, max(issued_at) OVER (ORDER BY seq "
        "  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev FROM invoices), "
        "b AS (SELECT * FROM w WHERE issued_at < prev - $1) "
        "SELECT count(*), coalesce(max(prev - issued_at), 0), "
        "  (SELECT number FROM b ORDER BY seq LIMIT 1) FROM b";
    *count = *max_back = 0;
    first[0] = 0;
    pg_params p = {0};
    pg_i64(&p, tolerance);
    int rc;
    PGresult *r = pg_q(conn_of(a), sql, &p, &rc, NULL);
    if (r && PQntuples(r) == 1) {
        *count = pg_int(r, 0, 0);
        *max_back = pg_int(r, 0, 1);
        pg_col(r, 0, 2, first, cap);
    }
    PQclear(r);
}

int pg_store_audit_snapshot(void *be, int (*fn)(fp_audit_snap *a, void *arg), void *arg,
                            fp_err *err)
{
    fp_pg *s = be;
    snap sn = {.a = {.bounds = snap_bounds,
                     .cp = snap_cp,
                     .hash_at = snap_hash_at,
                     .find_hash = snap_find_hash,
                     .scan = snap_scan,
                     .latest = snap_latest,
                     .invoices_back = snap_invoices_back}};
    sn.c = pg_racquire(s);
    sn.a.be = &sn;
    int rc = pg_exec(sn.c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, err);
    if (rc == 0) {
        rc = fn(&sn.a, arg);
        /* read only: nothing to keep; ROLLBACK also ends a failed one */
        pg_exec(sn.c, "ROLLBACK", NULL, NULL);
    }
    pg_rrelease(s, sn.c);
    return rc;
}
