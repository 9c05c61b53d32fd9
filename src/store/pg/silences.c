/* silences.c — alert silences in the PostgreSQL backend (docs/alerting.md
 * "Silences"): SQLite's sqlite/silences.c in PostgreSQL's terms, each
 * write with its audit record in one transaction on the writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* One write and its audit record (target "silence:ID") in a transaction
 * on the writer: body runs the statement and sets *id. */
static int audited(fp_pg *s, int (*body)(fp_pg *s, const void *arg, int64_t *id, fp_err *err),
                   const void *arg, int64_t *id, const fp_audit_rec *audit, fp_err *err)
{
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        char target[48] = "";
        if ((rc = body(s, arg, id, err)) == 0)
            snprintf(target, sizeof target, "silence:%lld", (long long)*id);
        rc = pg_end_audited(s, audit, target, "ok", rc, err);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

static int insert(fp_pg *s, const void *arg, int64_t *id, fp_err *err)
{
    const fp_silence *x = arg;
    int rc = 0;
    pg_params p = {0};
    pg_text(&p, x->matchers);
    pg_text(&p, x->comment);
    pg_text(&p, x->created_by);
    pg_i64(&p, x->starts_at);
    pg_i64(&p, x->ends_at);
    pg_i64(&p, (int64_t)time(NULL));
    PGresult *r = pg_q(s->w,
                       "INSERT INTO alert_silences(matchers, comment, created_by, starts_at, "
                       "ends_at, created_at) VALUES($1, $2, $3, $4, $5, $6) RETURNING id",
                       &p, &rc, err);
    if (!r)
        return rc;
    *id = pg_int(r, 0, 0);
    PQclear(r);
    return 0;
}

int pg_store_silence_create(void *be, const fp_silence *x, int64_t *id, const fp_audit_rec *audit,
                            fp_err *err)
{
    if (!x->matchers[0] || x->ends_at <= x->starts_at)
        return fp_fail(err, FP_EINVAL,
                       "静默需要匹配条件与正的时长 / a silence needs matchers "
                       "and a positive duration");
    return audited(be, insert, x, id, audit, err);
}

static int expire(fp_pg *s, const void *arg, int64_t *id, fp_err *err)
{
    const int64_t *now = arg;
    int rc = 0;
    pg_params p = {0};
    pg_i64(&p, *id);
    pg_i64(&p, *now);
    PGresult *r = pg_q(s->w,
                       "UPDATE alert_silences SET ends_at = $2, expired_at = $2 WHERE id = $1 AND "
                       "expired_at IS NULL AND ends_at > $2",
                       &p, &rc, err);
    if (!r)
        return rc;
    int changed = strtol(PQcmdTuples(r), NULL, 10) > 0; /* "" for no rows */
    PQclear(r);
    return changed ? 0
                   : fp_fail(err, FP_ENOTFOUND, "没有此生效中的静默 / no such active silence: %lld",
                             (long long)*id);
}

int pg_store_silence_expire(void *be, int64_t id, int64_t now, const fp_audit_rec *audit,
                            fp_err *err)
{
    return audited(be, expire, &now, &id, audit, err);
}

int pg_store_silences(void *be, int64_t now, void (*fn)(const fp_silence *x, void *arg), void *arg)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    int rc = 0;
    pg_params p = {0};
    pg_i64(&p, now);
    PGresult *r = pg_q(c,
                       "SELECT id, matchers, comment, created_by, starts_at, ends_at, created_at, "
                       "coalesce(expired_at, 0) FROM alert_silences WHERE $1 = 0 OR "
                       "(starts_at <= $1 AND ends_at > $1) ORDER BY id DESC",
                       &p, &rc, NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fp_silence x = {0};
        x.id = pg_int(r, i, 0);
        pg_col(r, i, 1, x.matchers, sizeof x.matchers);
        pg_col(r, i, 2, x.comment, sizeof x.comment);
        pg_col(r, i, 3, x.created_by, sizeof x.created_by);
        x.starts_at = pg_int(r, i, 4);
        x.ends_at = pg_int(r, i, 5);
        x.created_at = pg_int(r, i, 6);
        x.expired_at = pg_int(r, i, 7);
        fn(&x, arg);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return r ? 0 : rc;
}
