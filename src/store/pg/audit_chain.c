/* audit_chain.c — the PostgreSQL backend's transactions on the writer
 * connection and the audit chain in them (audit.h, docs/ha.md §3).
 *
 * One chain for every node: the chain's head row (audit_head) is locked
 * FOR UPDATE at the first append of a transaction and written back at its
 * COMMIT; every audit_checkpoint_every records (and on pg_audit_sign) a
 * checkpoint is signed with this node's audit key inside the transaction
 * that holds the head.  Everything here runs with wlock held; nothing read
 * is kept after the transaction (internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/clock.h"
#include "internal.h"

static int write_cp(fp_pg *s, fp_err *err);

int pg_tx_begin(fp_pg *s, fp_err *err)
{
    pg_heal(s->w);
    s->tx.head_locked = s->tx.head_dirty = 0;
    return pg_exec(s->w, "BEGIN", NULL, err);
}

void pg_tx_rollback(fp_pg *s)
{
    s->tx.head_locked = s->tx.head_dirty = 0;
    if (PQtransactionStatus(s->w) != PQTRANS_IDLE)
        pg_exec(s->w, "ROLLBACK", NULL, NULL);
}

static int head_flush(fp_pg *s, fp_err *err)
{
    if (!s->tx.head_dirty)
        return 0;
    /* every audit_checkpoint_every records a signed checkpoint, in the
     * transaction that appended the one reaching it */
    int rc;
    if (s->audit_signs && s->o.audit_checkpoint_every > 0 &&
        s->tx.last_id - s->tx.cp_upto >= s->o.audit_checkpoint_every && (rc = write_cp(s, err)) < 0)
        return rc;
    pg_params p = {0};
    pg_i64(&p, s->tx.last_id);
    pg_bin(&p, s->tx.last_hash, FP_AUDIT_HASH_LEN);
    return pg_exec(s->w, "UPDATE audit_head SET last_id=$1, last_hash=$2 WHERE id=1", &p, err);
}

int pg_audit_sign(fp_pg *s, int force, fp_err *err)
{
    if (!s->audit_signs)
        return fp_fail(err, FP_ENOSYS,
                       "no audit key: the PostgreSQL store signs checkpoints only with the key "
                       "its audit_key_path names (未配置审计密钥)");
    if (!force && s->o.audit_checkpoint_secs > 0 &&
        fp_mono_ms() - s->audit_cp_mono_ms < s->o.audit_checkpoint_secs * 1000LL)
        return 0;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err), wrote = 0;
    if (rc == 0)
        rc = pg_head_lock(s, err);
    /* records since the last checkpoint, which may be another node's: a
     * recent one counts */
    int due = rc == 0 && s->tx.last_id > s->tx.cp_upto &&
              (force || s->o.audit_checkpoint_secs <= 0 ||
               fp_wall_s() - s->tx.cp_ts >= s->o.audit_checkpoint_secs);
    if (due) {
        rc = write_cp(s, err);
        wrote = rc == 0;
    }
    s->tx.head_dirty = 0; /* the head itself did not move */
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    pthread_mutex_unlock(&s->wlock);
    return rc < 0 ? rc : wrote;
}

int pg_tx_commit(fp_pg *s, fp_err *err)
{
    int rc = head_flush(s, err);
    if (rc == 0)
        rc = pg_exec(s->w, "COMMIT", NULL, err);
    if (rc < 0)
        pg_tx_rollback(s);
    s->tx.head_locked = s->tx.head_dirty = 0;
    return rc;
}

/* The chain's head, locked for the rest of the transaction (every node
 * appends and signs under it), then the last checkpoint.  Two statements:
 * a statement that waited for the lock sees the locked row as it is now,
 * but anything else it reads as it was when it started, so the checkpoint
 * is read only once the lock is held. */
int pg_head_lock(fp_pg *s, fp_err *err)
{
    if (s->tx.head_locked)
        return 0;
    int rc;
    PGresult *r = pg_q(s->w, "SELECT last_id, last_hash FROM audit_head WHERE id=1 FOR UPDATE",
                       NULL, &rc, err);
    if (!r)
        return rc;
    if (PQntuples(r) != 1 || pg_bytea(r, 0, 1, s->tx.last_hash, FP_AUDIT_HASH_LEN) < 0) {
        PQclear(r);
        return fp_fail(err, FP_EIO, "the audit chain's head row is missing or damaged");
    }
    s->tx.last_id = pg_int(r, 0, 0);
    PQclear(r);
    r = pg_q(s->w, "SELECT id, upto_id, ts FROM audit_checkpoints ORDER BY id DESC LIMIT 1", NULL,
             &rc, err);
    if (!r)
        return rc;
    s->tx.cp_id = PQntuples(r) ? pg_int(r, 0, 0) : 0;
    s->tx.cp_upto = PQntuples(r) ? pg_int(r, 0, 1) : 0;
    s->tx.cp_ts = PQntuples(r) ? pg_int(r, 0, 2) : 0;
    PQclear(r);
    s->tx.head_locked = 1;
    return 0;
}

/* Signs the head as the next checkpoint, inside the open transaction with
 * the head locked. */
static int write_cp(fp_pg *s, fp_err *err)
{
    fp_audit_cp cp = {.id = s->tx.cp_id + 1, .upto_id = s->tx.last_id, .ts = fp_wall_s()};
    memcpy(cp.upto_hash, s->tx.last_hash, FP_AUDIT_HASH_LEN);
    if (fp_audit_cp_sign(&cp, s->audit_sk, s->audit_pk) < 0)
        return fp_fail(err, FP_ECRYPTO, "cannot sign the audit checkpoint");
    pg_params p = {0};
    pg_i64(&p, cp.id);
    pg_i64(&p, cp.upto_id);
    pg_bin(&p, cp.upto_hash, FP_AUDIT_HASH_LEN);
    pg_i64(&p, cp.ts);
    pg_bin(&p, cp.sig, FP_AUDIT_SIG_LEN);
    int rc = pg_exec(s->w,
                     "INSERT INTO audit_checkpoints(id, upto_id, upto_hash, ts, signature) "
                     "VALUES($1, $2, $3, $4, $5)",
                     &p, err);
    if (rc == 0) {
        s->tx.cp_id = cp.id;
        s->tx.cp_upto = cp.upto_id;
        s->tx.cp_ts = cp.ts;
        s->audit_cp_mono_ms = fp_mono_ms();
    }
    return rc;
}

static const char ins_audit_sql[] =
    "INSERT INTO audit(id, ts, actor, action, target, request_id, client_ip, outcome, prev_hash, "
    "hash, seller_id, client_request_id) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/* The audit row's parameters: id, ts, the fields, prev, hash, seller, crid */
static void audit_params(pg_params *p, const fp_audit_rec *r, int64_t id, const unsigned char *prev,
                         const unsigned char *h)
{
    pg_i64(p, id);
    pg_i64(p, r->ts);
    pg_text(p, r->actor);
    pg_text(p, r->action);
    pg_text(p, r->target);
    pg_text(p, r->request_id);
    pg_text(p, r->client_ip);
    pg_text(p, r->outcome);
    pg_bin(p, prev, FP_AUDIT_HASH_LEN);
    pg_bin(p, h, FP_AUDIT_HASH_LEN);
    if (r->seller_id > 0)
        pg_i64(p, r->seller_id);
    else
        pg_i64_null(p); /* instance-wide */
    pg_text(p, r->client_request_id);
}

int pg_audit_append(fp_pg *s, const fp_audit_rec *rec, fp_err *err)
{
    if (!rec->actor || !rec->action || !rec->outcome)
        return fp_fail(err, FP_EINVAL, "an audit record needs actor, action and outcome");
    fp_audit_rec r = *rec;
    if (!r.ts)
        r.ts = (int64_t)time(NULL);
    int rc = pg_head_lock(s, err);
    if (rc < 0)
        return rc;
    fp_audit_row row;
    unsigned char h[FP_AUDIT_HASH_LEN];
    fp_audit_row_from_rec(&row, s->tx.last_id + 1, &r);
    fp_audit_hash(&row, s->tx.last_hash, h);
    pg_params p = {0};
    audit_params(&p, &r, row.id, s->tx.last_hash, h);
    if ((rc = pg_exec(s->w, ins_audit_sql, &p, err)) < 0)
        return rc;
    s->tx.last_id++;
    memcpy(s->tx.last_hash, h, FP_AUDIT_HASH_LEN);
    s->tx.head_dirty = 1;
    return 0;
}

int pg_audit_change(fp_pg *s, const fp_audit_rec *audit, const char *target, const char *outcome,
                    fp_err *err)
{
    if (!audit)
        return 0;
    fp_audit_rec r = *audit;
    if (!r.target)
        r.target = target;
    if (!r.outcome)
        r.outcome = outcome ? outcome : "ok";
    return pg_audit_append(s, &r, err);
}

int pg_end_audited(fp_pg *s, const fp_audit_rec *audit, const char *target, const char *outcome,
                   int rc, fp_err *err)
{
    if (rc == 0)
        rc = pg_audit_change(s, audit, target, outcome, err);
    if (rc == 0)
        return pg_tx_commit(s, err);
    pg_tx_rollback(s);
    return rc;
}

/* ---- a synchronous write of audit records ---- */

int pg_store_audit_batch(void *be, const fp_audit_rec *recs, int n, fp_err *err)
{
    fp_pg *s = be;
    if (atomic_load(&s->fault_write_fail))
        return fp_fail(err, FP_EIO, "injected fault: store write");
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    for (int i = 0; i < n && rc == 0; i++)
        rc = pg_audit_append(s, &recs[i], err);
    if (rc == 0)
        rc = pg_tx_commit(s, err);
    else
        pg_tx_rollback(s);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

/* ---- retention (store.h fp_store_audit_prune; as the SQLite backend's) ---- */

/* Under the chain's head lock, so no node appends or signs meanwhile: the
 * newest checkpoint that ends before the first record to keep becomes the
 * anchor; the records up to it and the checkpoints before it go, and an
 * audit.prune record follows the head. */
int pg_store_audit_prune(void *be, int64_t before_ts, const char *actor, int64_t *upto,
                         int64_t *anchor_cp, fp_err *err)
{
    fp_pg *s = be;
    *upto = *anchor_cp = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0)
        rc = pg_head_lock(s, err);
    PGresult *r = NULL;
    if (rc == 0) {
        pg_params p = {0};
        pg_i64(&p, before_ts);
        r = pg_q(s->w,
                 "WITH k AS (SELECT min(id) AS keep FROM audit WHERE ts >= $1), "
                 "c AS (SELECT id, upto_id FROM audit_checkpoints, k "
                 "  WHERE k.keep IS NULL OR upto_id < k.keep ORDER BY id DESC LIMIT 1) "
                 "SELECT c.id, c.upto_id, (SELECT min(id) FROM audit) FROM c",
                 &p, &rc, err);
    }
    int64_t cp_id = 0, cp_upto = 0;
    /* nothing old enough ends at a checkpoint (or the anchor is all that is left) */
    if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 2) && pg_int(r, 0, 1) >= pg_int(r, 0, 2)) {
        cp_id = pg_int(r, 0, 0);
        cp_upto = pg_int(r, 0, 1);
    }
    PQclear(r);
    if (rc == 0 && cp_id > 0) {
        char target[48];
        snprintf(target, sizeof target, "upto:%lld", (long long)cp_upto);
        fp_audit_rec rec = {.actor = actor ? actor : "cli",
                            .action = "audit.prune",
                            .target = target,
                            .outcome = "ok"};
        pg_params d = {0};
        pg_i64(&d, cp_upto);
        pg_params c = {0};
        pg_i64(&c, cp_id);
        if ((rc = pg_exec(s->w, "DELETE FROM audit WHERE id <= $1", &d, err)) == 0 &&
            (rc = pg_exec(s->w, "DELETE FROM audit_checkpoints WHERE id < $1", &c, err)) == 0)
            rc = pg_audit_append(s, &rec, err);
    }
    if (rc == 0 && (rc = pg_tx_commit(s, err)) == 0 && cp_id > 0) {
        *upto = cp_upto;
        *anchor_cp = cp_id;
    }
    if (rc < 0)
        pg_tx_rollback(s);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
