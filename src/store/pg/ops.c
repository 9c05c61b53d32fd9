/* ops.c — the PostgreSQL backend's table of operations, the audit reads,
 * the fail-stop answers (none: PostgreSQL keeps its own files), the
 * injected faults, hooks and counters. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int pg_store_audit_rows(void *be, int64_t seller_id, int64_t before, int limit,
                        void (*fn)(const fp_audit_view *v, void *arg), void *arg)
{
    fp_pg *s = be;
    if (seller_id < 0)
        return 0;
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_i64(&p, before);
    pg_i64(&p, limit);
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c,
                       "SELECT id, ts, actor, action, target, request_id, client_ip, outcome, "
                       "encode(hash, 'hex'), coalesce(seller_id, 0), client_request_id "
                       "FROM audit WHERE ($1 = 0 OR seller_id = $1) AND ($2 = 0 OR id < $2) "
                       "ORDER BY id DESC LIMIT $3",
                       &p, &rc, NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
#define TXT(col) (PQgetisnull(r, i, col) ? NULL : PQgetvalue(r, i, col))
        fp_audit_view v = {.id = pg_int(r, i, 0),
                           .ts = pg_int(r, i, 1),
                           .actor = TXT(2),
                           .action = TXT(3),
                           .target = TXT(4),
                           .request_id = TXT(5),
                           .client_ip = TXT(6),
                           .outcome = TXT(7),
                           .hash_hex = TXT(8),
                           .seller_id = pg_int(r, i, 9),
                           .client_request_id = TXT(10)};
#undef TXT
        fn(&v, arg);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_audit_head(void *be, fp_audit_head *h, fp_err *err)
{
    fp_pg *s = be;
    memset(h, 0, sizeof *h);
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c,
                       "SELECT last_id, last_hash, "
                       "coalesce((SELECT max(id) FROM audit_checkpoints), 0), "
                       "coalesce((SELECT upto_id FROM audit_checkpoints ORDER BY id DESC LIMIT 1), "
                       "0) FROM audit_head WHERE id=1",
                       NULL, &rc, err);
    if (r && PQntuples(r) == 1) {
        h->last_id = pg_int(r, 0, 0);
        if (pg_bytea(r, 0, 1, h->last_hash, FP_AUDIT_HASH_LEN) < 0)
            rc = fp_fail(err, FP_EIO, "the audit chain's head row is damaged");
        h->cp_id = pg_int(r, 0, 2);
        h->cp_upto = pg_int(r, 0, 3);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

/* PostgreSQL keeps its own files; fapiao's fail-stop watches SQLite's
 * (docs/storage.md), so there is nothing of it here: writes may go on,
 * and a database error fails the transaction it happens in. */
int pg_store_failstop(void *be, char *why, size_t cap)
{
    (void)be;
    if (why && cap)
        why[0] = 0;
    return FP_FAILSTOP_NONE;
}

int pg_store_check_files(void *be, fp_err *err)
{
    (void)be;
    (void)err;
    return 0; /* no database file of ours to compare with its path */
}

int pg_store_audit_checkpoint(void *be, fp_err *err)
{
    return pg_audit_sign(be, 0, err);
}

const fp_store_ops fp_store_pg_ops = {.name = "postgresql",
                                      .open = pg_open,
                                      .close = pg_close,
#define FP_PG_MEMBER(ret, op, params, args) .op = pg_##op,
                                      FP_STORE_OPS(FP_PG_MEMBER)
#undef FP_PG_MEMBER
};

/* ---- faults, hooks, counters ---- */

void pg_store_set_faults(void *be, const fp_store_faults *f)
{
    fp_pg *s = be;
    atomic_store(&s->fault_write_fail, f->write_fail);
    atomic_store(&s->fault_write_delay_ms, f->write_delay_ms);
    atomic_store(&s->fault_fsync_delay_ms, f->fsync_delay_ms);
}

void pg_store_get_faults(void *be, fp_store_faults *f)
{
    fp_pg *s = be;
    f->write_fail = atomic_load(&s->fault_write_fail);
    f->write_delay_ms = atomic_load(&s->fault_write_delay_ms);
    f->fsync_delay_ms = atomic_load(&s->fault_fsync_delay_ms);
}

void pg_store_set_outcome_hook(void *be, void (*fn)(int ok, void *arg), void *arg)
{
    fp_pg *s = be;
    fp_writeq_set_outcome_hook(&s->q, fn, arg);
}

void pg_store_set_job_hook(void *be, void (*fn)(void *arg), void *arg)
{
    fp_pg *s = be;
    pthread_mutex_lock(&s->wlock);
    s->job_hook = fn;
    s->job_hook_arg = arg;
    pthread_mutex_unlock(&s->wlock);
}

void pg_store_set_histograms(void *be, struct fp_metric *batch, struct fp_metric *commit_us)
{
    fp_pg *s = be;
    atomic_store(&s->h_batch, batch);
    atomic_store(&s->h_commit, commit_us);
}

void pg_store_get_stats(void *be, fp_store_stats *st)
{
    fp_pg *s = be;
    memset(st, 0, sizeof *st);
    fp_writeq_stats(&s->q, st);
    st->fsync_us_total = atomic_load(&s->commit_us_total);
    st->last_commit_us = atomic_load(&s->last_commit_us);
    st->last_probe_us = atomic_load(&s->last_probe_us);
    st->slow_write_ms = s->o.slow_write_ms;
}
