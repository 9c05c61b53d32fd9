/* upload.c — the PostgreSQL backend's upload rows (upload.h; migration 3 in
 * open.c): the same operations and SQL as the SQLite backend's
 * (src/store/sqlite/upload.c).  The issuing statement writes the rows
 * (writer.c). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/clock.h"
#include "internal.h"

void pg_store_set_upload(void *be, int on)
{
    fp_pg *s = be;
    atomic_store(&s->upload_on, on != 0);
}

#define UP_COLS "seller_id, invoice_number, state, sllsh, reason, attempts, next_at, first_at"

static void read_row(const PGresult *r, int i, fp_upload_row *u)
{
    memset(u, 0, sizeof *u);
    u->seller_id = pg_int(r, i, 0);
    pg_col(r, i, 1, u->number, sizeof u->number);
    u->state = fp_upload_state_from_name(PQgetvalue(r, i, 2));
    pg_col(r, i, 3, u->sllsh, sizeof u->sllsh);
    pg_col(r, i, 4, u->reason, sizeof u->reason);
    u->attempts = (int)pg_int(r, i, 5);
    u->next_at = pg_int(r, i, 6);
    u->first_at = pg_int(r, i, 7);
}

int pg_store_upload_due(void *be, int64_t now, int with_sllsh, int limit, fp_upload_row *out,
                        int *n, fp_err *err)
{
    fp_pg *s = be;
    *n = 0;
    pg_params p = {0};
    pg_i64(&p, now);
    pg_i64(&p, limit);
    PGconn *c = pg_racquire(s);
    int rc = 0;
    PGresult *r = pg_q(
        c,
        with_sllsh ? "SELECT " UP_COLS " FROM uploads WHERE state IN ('pending', 'submitted') "
                     "AND sllsh IS NOT NULL AND next_at <= $1 ORDER BY next_at LIMIT $2"
                   : "SELECT " UP_COLS " FROM uploads WHERE state = 'pending' AND sllsh IS NULL "
                     "AND next_at <= $1 ORDER BY next_at LIMIT $2",
        &p, &rc, err);
    for (int i = 0; r && i < PQntuples(r) && *n < limit; i++)
        read_row(r, i, &out[(*n)++]);
    PQclear(r);
    pg_rrelease(s, c);
    return r ? 0 : rc;
}

/* One UPDATE of upload rows on the writer connection; *changed rows. */
static int upload_write(fp_pg *s, const char *sql, pg_params *p, int64_t *changed, fp_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&s->wlock);
    PGresult *r = pg_q(s->w, sql, p, &rc, err);
    *changed = r ? strtoll(PQcmdTuples(r), NULL, 10) : 0;
    PQclear(r);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_store_upload_set(void *be, const char *number, int state, const char *sllsh,
                        const char *reason, int64_t next_at, int count, fp_err *err)
{
    fp_pg *s = be;
    pg_params p = {0};
    pg_text(&p, number);
    pg_text(&p, fp_upload_state_name(state));
    pg_text(&p, sllsh);
    pg_text(&p, reason);
    pg_i64(&p, next_at);
    pg_i64(&p, count ? 1 : 0);
    pg_i64(&p, fp_steady_ms());
    int64_t n = 0;
    int rc = upload_write(s,
                          "UPDATE uploads SET state=$2, sllsh=CASE WHEN $3 = '' THEN sllsh ELSE "
                          "$3 END, reason=$4, next_at=$5, attempts=attempts+$6, updated_at=$7 "
                          "WHERE invoice_number=$1",
                          &p, &n, err);
    return rc == 0 && n == 0 ? FP_ENOTFOUND : rc;
}

int pg_store_upload_get(void *be, int64_t seller_id, const char *number, fp_upload_row *out)
{
    fp_pg *s = be;
    pg_params p = {0};
    pg_text(&p, number);
    pg_i64(&p, seller_id);
    PGconn *c = pg_racquire(s);
    int rc = 0;
    PGresult *r =
        pg_q(c, "SELECT " UP_COLS " FROM uploads WHERE invoice_number=$1 AND seller_id=$2", &p, &rc,
             NULL);
    if (r && PQntuples(r) == 1)
        read_row(r, 0, out);
    else if (r)
        rc = FP_ENOTFOUND;
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_upload_counts(void *be, fp_upload_counts *cnt, fp_err *err)
{
    fp_pg *s = be;
    memset(cnt, 0, sizeof *cnt);
    PGconn *c = pg_racquire(s);
    int rc = 0;
    PGresult *r = pg_q(c, "SELECT state, count(*), min(first_at) FROM uploads GROUP BY state", NULL,
                       &rc, err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        int k = fp_upload_state_from_name(PQgetvalue(r, i, 0));
        if (k < 0)
            continue;
        cnt->n[k] = pg_int(r, i, 1);
        int64_t first = pg_int(r, i, 2);
        if ((k == FP_UPLOAD_PENDING || k == FP_UPLOAD_SUBMITTED) &&
            (!cnt->oldest_waiting_at || first < cnt->oldest_waiting_at))
            cnt->oldest_waiting_at = first;
    }
    PQclear(r);
    pg_rrelease(s, c);
    return r ? 0 : rc;
}

int pg_store_upload_redrive(void *be, const char *number, int64_t now, const fp_audit_rec *audit,
                            int64_t *n, fp_err *err)
{
    fp_pg *s = be;
    pg_params p = {0};
    pg_text(&p, number);
    pg_i64(&p, now);
    pg_i64(&p, fp_steady_ms());
    *n = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    /* o: the row as it was, so each audit record names the state it left */
    PGresult *r = rc < 0 ? NULL
                         : pg_q(s->w,
                                "UPDATE uploads u SET state='pending', sllsh=NULL, reason=NULL, "
                                "attempts=0, next_at=$2, updated_at=$3 FROM uploads o "
                                "WHERE o.invoice_number = u.invoice_number AND o.state='rejected' "
                                "AND ($1::text IS NULL OR o.invoice_number=$1) "
                                "RETURNING u.invoice_number, u.seller_id, o.state",
                                &p, &rc, err);
    for (int i = 0; r && rc == 0 && i < PQntuples(r); i++) {
        char target[96];
        snprintf(target, sizeof target, "upload:%s from %s", PQgetvalue(r, i, 0),
                 PQgetvalue(r, i, 2));
        fp_audit_rec a = audit ? *audit : (fp_audit_rec){0};
        a.action = "upload.redrive";
        a.target = target;
        a.outcome = "ok";
        a.seller_id = pg_int(r, i, 1);
        if (audit)
            rc = pg_audit_append(s, &a, err);
    }
    *n = r && rc == 0 ? PQntuples(r) : 0;
    PQclear(r);
    if (rc == 0 && number && *n == 0)
        rc = FP_ENOTFOUND;
    rc = pg_end_audited(s, NULL, NULL, NULL, rc, err); /* COMMIT, or ROLLBACK on rc < 0 */
    if (rc < 0)
        *n = 0;
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
