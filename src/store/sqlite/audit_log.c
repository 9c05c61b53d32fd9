/* audit_log.c — the audit chain in the SQLite backend (audit.h): appends,
 * signed checkpoints, prune, and the reads for GET /v1/audit.
 *
 * The chain's head (last id and hash) and the last checkpoint live in
 * memory, owned by whoever holds wlock; an append inside a transaction
 * advances them.  Every rollback on the writer connection marks them stale
 * (a rollback hook sees them all: run_batch, jobs.c's finish(), the red-form
 * functions, and SQLite's own rollback after an I/O error), and the next
 * append re-reads them inside its transaction, so records of a rolled-back
 * transaction never become anyone's predecessor.  Another process writing
 * the same database (a CLI command while the server runs) makes the cached
 * id collide with the PRIMARY KEY: the append then re-reads the head and
 * tries once more.
 *
 * The other files append through fp_sq_audit_append with the store itself,
 * inside their own transaction on the locked writer connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/crypto.h"
#include "internal.h"

static void audit_rollback_hook(void *arg)
{
    ((fp_sqlite *)arg)->audit_stale = 1;
}

static int audit_load_head(fp_sqlite *s, fp_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    s->audit_last_id = s->audit_cp_id = s->audit_cp_upto = s->audit_cp_ts = 0;
    memset(s->audit_last_hash, 0, sizeof s->audit_last_hash);
    if (sqlite3_prepare_v2(s->wdb,
                           "SELECT id, upto_id, upto_hash, ts FROM audit_checkpoints "
                           "ORDER BY id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        goto dberr;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        s->audit_cp_id = sqlite3_column_int64(st, 0);
        s->audit_cp_upto = sqlite3_column_int64(st, 1);
        s->audit_cp_ts = sqlite3_column_int64(st, 3);
        /* its age, carried onto the monotonic clock the interval runs on */
        int64_t age_s = fp_wall_s() - s->audit_cp_ts;
        s->audit_cp_mono_ms = fp_mono_ms() - (age_s > 0 ? age_s * 1000 : 0);
        /* a pruned log may hold no record: the anchor is the head */
        s->audit_last_id = s->audit_cp_upto;
        if (sqlite3_column_bytes(st, 2) == FP_AUDIT_HASH_LEN)
            memcpy(s->audit_last_hash, sqlite3_column_blob(st, 2), FP_AUDIT_HASH_LEN);
    } else if (step != SQLITE_DONE) {
        goto dberr;
    }
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(s->wdb, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK)
        goto dberr;
    step = sqlite3_step(st);
    if (step == SQLITE_ROW && sqlite3_column_int64(st, 0) > s->audit_last_id) {
        s->audit_last_id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) != FP_AUDIT_HASH_LEN) {
            /* appending would chain onto a record that proves nothing */
            rc = fp_fail(err, FP_EIO,
                         "audit record %lld has no valid hash: the log was changed behind the "
                         "store's back (run fapiao audit verify)",
                         (long long)s->audit_last_id);
            goto out;
        }
        memcpy(s->audit_last_hash, sqlite3_column_blob(st, 1), FP_AUDIT_HASH_LEN);
    } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
        goto dberr;
    }
    s->audit_stale = 0;
    rc = 0;
    goto out;
dberr:
    rc = fp_fail(err, FP_EIO, "reading the audit chain: %s", sqlite3_errmsg(s->wdb));
out:
    sqlite3_finalize(st);
    return rc;
}

/* Signs the head as the next checkpoint, inside the open transaction. */
static int audit_write_cp(fp_sqlite *s, fp_err *err)
{
    for (int attempt = 0;; attempt++) {
        fp_audit_cp cp = {.id = s->audit_cp_id + 1, .upto_id = s->audit_last_id, .ts = fp_wall_s()};
        memcpy(cp.upto_hash, s->audit_last_hash, FP_AUDIT_HASH_LEN);
        if (fp_audit_cp_sign(&cp, s->audit_sk, s->audit_pk) < 0)
            return fp_fail(err, FP_ECRYPTO, "cannot sign the audit checkpoint");
        sqlite3_stmt *st = s->audit_cp_st;
        sqlite3_bind_int64(st, 1, cp.id);
        sqlite3_bind_int64(st, 2, cp.upto_id);
        sqlite3_bind_blob(st, 3, cp.upto_hash, FP_AUDIT_HASH_LEN, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, cp.ts);
        sqlite3_bind_blob(st, 5, cp.sig, FP_AUDIT_SIG_LEN, SQLITE_TRANSIENT);
        int step = sqlite3_step(st);
        int ext = sqlite3_extended_errcode(s->wdb);
        if (step != SQLITE_DONE)
            fp_fail(err, FP_EIO, "audit checkpoint: %s", sqlite3_errmsg(s->wdb));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (step == SQLITE_DONE) {
            s->audit_cp_id = cp.id;
            s->audit_cp_upto = cp.upto_id;
            s->audit_cp_ts = cp.ts;
            s->audit_cp_mono_ms = fp_mono_ms();
            return 0;
        }
        if (ext != SQLITE_CONSTRAINT_PRIMARYKEY || attempt > 0)
            return FP_EIO;
        int rc = audit_load_head(s, err); /* another process signed one */
        if (rc < 0)
            return rc;
        if (s->audit_last_id == s->audit_cp_upto)
            return 0;
    }
}

int fp_sq_audit_append(fp_sqlite *s, const fp_audit_rec *rec, fp_err *err)
{
    if (!rec->actor || !rec->action || !rec->outcome)
        return fp_fail(err, FP_EINVAL, "an audit record needs actor, action and outcome");
    fp_audit_rec r = *rec;
    if (!r.ts)
        r.ts = (int64_t)time(NULL);
    unsigned char h[FP_AUDIT_HASH_LEN];
    for (int attempt = 0;; attempt++) {
        int rc;
        if (s->audit_stale && (rc = audit_load_head(s, err)) < 0)
            return rc;
        fp_audit_row row;
        fp_audit_row_from_rec(&row, s->audit_last_id + 1, &r);
        fp_audit_hash(&row, s->audit_last_hash, h);
        sqlite3_stmt *a = s->wst[WQ_INS_AUDIT];
        sqlite3_bind_int64(a, 1, row.id);
        sqlite3_bind_int64(a, 2, r.ts);
        fp_sq_bind_text_or_null(a, 3, r.actor);
        fp_sq_bind_text_or_null(a, 4, r.action);
        fp_sq_bind_text_or_null(a, 5, r.target);
        fp_sq_bind_text_or_null(a, 6, r.request_id);
        fp_sq_bind_text_or_null(a, 7, r.client_ip);
        fp_sq_bind_text_or_null(a, 8, r.outcome);
        sqlite3_bind_blob(a, 9, s->audit_last_hash, FP_AUDIT_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(a, 10, h, FP_AUDIT_HASH_LEN, SQLITE_STATIC);
        if (r.seller_id > 0) /* hashed as its decimal text (audit.h) */
            sqlite3_bind_int64(a, 11, r.seller_id);
        else
            sqlite3_bind_null(a, 11);
        fp_sq_bind_text_or_null(a, 12, r.client_request_id);
        int step = sqlite3_step(a);
        int ext = sqlite3_extended_errcode(s->wdb);
        if (step != SQLITE_DONE)
            fp_fail(err, FP_EIO, "audit record: %s", sqlite3_errmsg(s->wdb));
        sqlite3_reset(a);
        sqlite3_clear_bindings(a);
        if (step == SQLITE_DONE)
            break;
        if (ext != SQLITE_CONSTRAINT_PRIMARYKEY || attempt > 0)
            return FP_EIO;
        s->audit_stale = 1; /* another process appended: re-read and retry */
    }
    s->audit_last_id++;
    memcpy(s->audit_last_hash, h, FP_AUDIT_HASH_LEN);
    if (s->o.audit_checkpoint_every > 0 &&
        s->audit_last_id - s->audit_cp_upto >= s->o.audit_checkpoint_every)
        return audit_write_cp(s, err);
    return 0;
}

/* The record of a change: the caller's, with the store's target and
 * outcome where the caller left them NULL. */
static fp_audit_rec change_record(const fp_audit_rec *audit, const char *target,
                                  const char *outcome)
{
    fp_audit_rec r = *audit;
    if (!r.target)
        r.target = target;
    if (!r.outcome)
        r.outcome = outcome ? outcome : "ok";
    return r;
}

int fp_sq_audit_change(fp_sqlite *s, const fp_audit_rec *audit, const char *target,
                       const char *outcome, fp_err *err)
{
    if (!audit)
        return 0;
    fp_audit_rec r = change_record(audit, target, outcome);
    return fp_sq_audit_append(s, &r, err);
}

int fp_sq_end_audited(fp_sqlite *s, const fp_audit_rec *audit, const char *target,
                      const char *outcome, int rc, fp_err *err)
{
    if (rc == 0)
        rc = fp_sq_audit_change(s, audit, target, outcome, err);
    if (rc == 0)
        rc = fp_sq_exec(s->wdb, "COMMIT", err);
    /* the rollback also drops the transaction's audit record from the
     * chain: the store's rollback hook makes it re-read its head */
    if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
        fp_sq_exec(s->wdb, "ROLLBACK", NULL);
    return rc;
}

/* Records of a database from before the chain (migration 6) get chained
 * once, in id order, and signed by a first checkpoint; only when no record
 * has a hash and no checkpoint exists yet, so a record slipped in later
 * without a hash is never laundered into the chain. */
static int audit_chain_legacy(fp_sqlite *s, fp_err *err)
{
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        return rc;
    int64_t chained = -1, cps = -1;
    if (sqlite3_prepare_v2(s->wdb,
                           "SELECT (SELECT count(*) FROM audit WHERE hash IS NOT NULL), "
                           "(SELECT count(*) FROM audit_checkpoints)",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_step(sel) != SQLITE_ROW)
        goto dberr;
    chained = sqlite3_column_int64(sel, 0);
    cps = sqlite3_column_int64(sel, 1);
    sqlite3_finalize(sel);
    sel = NULL;
    if (chained == 0 && cps == 0) {
        if (sqlite3_prepare_v2(s->wdb,
                               "SELECT id, ts, actor, action, target, request_id, client_ip, "
                               "outcome FROM audit WHERE id > ?1 ORDER BY id LIMIT 1000",
                               -1, &sel, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->wdb, "UPDATE audit SET prev_hash=?2, hash=?3 WHERE id=?1", -1,
                               &upd, NULL) != SQLITE_OK)
            goto dberr;
        unsigned char prev[FP_AUDIT_HASH_LEN] = {0}, h[FP_AUDIT_HASH_LEN];
        int64_t last = 0;
        for (;;) {
            /* a chunk at a time: no UPDATE while the SELECT walks the table */
            enum { CHUNK = 1000 };
            int64_t ids[CHUNK];
            unsigned char(*hashes)[FP_AUDIT_HASH_LEN] = malloc(2 * CHUNK * FP_AUDIT_HASH_LEN);
            if (!hashes) {
                rc = fp_fail(err, FP_ENOMEM, "out of memory");
                goto rollback;
            }
            int n = 0, step;
            sqlite3_bind_int64(sel, 1, last);
            while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
                fp_audit_row row;
                memset(&row, 0, sizeof row);
                row.id = sqlite3_column_int64(sel, 0);
                row.ts = sqlite3_column_int64(sel, 1);
                for (int i = 0; i < FP_AUDIT__V1_FIELDS; i++)
                    if (sqlite3_column_type(sel, 2 + i) != SQLITE_NULL) {
                        row.f[i].p = (const char *)sqlite3_column_text(sel, 2 + i);
                        row.f[i].n = (size_t)sqlite3_column_bytes(sel, 2 + i);
                    }
                fp_audit_hash(&row, prev, h);
                ids[n] = row.id;
                memcpy(hashes[2 * n], prev, FP_AUDIT_HASH_LEN);
                memcpy(hashes[2 * n + 1], h, FP_AUDIT_HASH_LEN);
                memcpy(prev, h, FP_AUDIT_HASH_LEN);
                n++;
            }
            sqlite3_reset(sel);
            for (int i = 0; i < n && step == SQLITE_DONE; i++) {
                sqlite3_bind_int64(upd, 1, ids[i]);
                sqlite3_bind_blob(upd, 2, hashes[2 * i], FP_AUDIT_HASH_LEN, SQLITE_STATIC);
                sqlite3_bind_blob(upd, 3, hashes[2 * i + 1], FP_AUDIT_HASH_LEN, SQLITE_STATIC);
                if (fp_sq_step_done(upd) < 0)
                    step = SQLITE_ERROR;
            }
            free(hashes);
            if (step != SQLITE_DONE)
                goto dberr;
            if (n == 0)
                break;
            last = ids[n - 1];
        }
        if (last) {
            s->audit_last_id = last;
            memcpy(s->audit_last_hash, prev, FP_AUDIT_HASH_LEN);
            s->audit_cp_id = s->audit_cp_upto = 0;
            if ((rc = audit_write_cp(s, err)) < 0)
                goto rollback;
        }
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return fp_sq_exec(s->wdb, "COMMIT", err) < 0 ? (fp_sq_exec(s->wdb, "ROLLBACK", NULL), FP_EIO)
                                                 : 0;
dberr:
    rc = fp_fail(err, FP_EIO, "chaining the audit log: %s", sqlite3_errmsg(s->wdb));
rollback:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    fp_sq_exec(s->wdb, "ROLLBACK", NULL);
    return rc < 0 ? rc : FP_EIO;
}

int fp_sq_audit_open(fp_sqlite *s, fp_err *err)
{
    char key[4096], pub[4096];
    if (s->o.audit_checkpoint_every == 0)
        s->o.audit_checkpoint_every = 1000;
    if (s->o.audit_checkpoint_secs == 0)
        s->o.audit_checkpoint_secs = 60;
    if (fp_audit_key_paths(s->o.path, s->o.audit_key_path, key, pub, sizeof key) < 0)
        return fp_fail(err, FP_ERANGE, "audit key path too long");
    /* once a checkpoint is signed, a missing key is restored, never made
     * anew (chain.c key_missing) */
    sqlite3_stmt *cst = NULL;
    int signed_before = 1;
    if (sqlite3_prepare_v2(s->wdb, "SELECT EXISTS(SELECT 1 FROM audit_checkpoints)", -1, &cst,
                           NULL) == SQLITE_OK &&
        sqlite3_step(cst) == SQLITE_ROW)
        signed_before = sqlite3_column_int(cst, 0);
    sqlite3_finalize(cst);
    int rc = fp_audit_key_open(key, pub, !signed_before, s->audit_sk, s->audit_pk, err);
    if (rc < 0)
        return rc;
    if (sqlite3_prepare_v3(s->wdb,
                           "INSERT INTO audit_checkpoints(id, upto_id, upto_hash, ts, signature) "
                           "VALUES(?1, ?2, ?3, ?4, ?5)",
                           -1, SQLITE_PREPARE_PERSISTENT, &s->audit_cp_st, NULL) != SQLITE_OK)
        return fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(s->wdb));
    /* a first record without a hash: a database from before the chain */
    sqlite3_stmt *st = NULL;
    int legacy = 0;
    if (sqlite3_prepare_v2(s->wdb, "SELECT hash IS NULL FROM audit ORDER BY id LIMIT 1", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        legacy = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (legacy && (rc = audit_chain_legacy(s, err)) < 0)
        return rc;
    if ((rc = audit_load_head(s, err)) < 0)
        return rc;
    sqlite3_rollback_hook(s->wdb, audit_rollback_hook, s);
    s->audit_ready = 1;
    return 0;
}

/* Signs the head when it moved since the last checkpoint (force: however
 * recent that one is).  1 signed, 0 nothing to do, or an error. */
static int audit_checkpoint(fp_sqlite *s, int force, fp_err *err)
{
    if (fp_sq_refuse_stopped(s, err) < 0)
        return FP_EIO;
    pthread_mutex_lock(&s->wlock);
    int due = s->audit_stale || s->audit_last_id > s->audit_cp_upto;
    if (due && !force && !s->audit_stale && s->o.audit_checkpoint_secs > 0 &&
        fp_mono_ms() - s->audit_cp_mono_ms < s->o.audit_checkpoint_secs * 1000LL)
        due = 0;
    int rc = 0, wrote = 0;
    if (due && (rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err)) == 0) {
        if (s->audit_stale)
            rc = audit_load_head(s, err);
        if (rc == 0 && s->audit_last_id > s->audit_cp_upto) {
            rc = audit_write_cp(s, err);
            wrote = rc == 0;
        }
        if (rc == 0)
            rc = fp_sq_exec(s->wdb, "COMMIT", err);
        if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
            fp_sq_exec(s->wdb, "ROLLBACK", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc < 0 ? rc : wrote;
}

int sq_store_audit_checkpoint(void *be, fp_err *err)
{
    fp_sqlite *s = be;
    return audit_checkpoint(s, 0, err);
}

void fp_sq_audit_close(fp_sqlite *s)
{
    if (s->audit_ready)
        audit_checkpoint(s, 1, NULL); /* a clean shutdown leaves no unsigned tail */
    sqlite3_finalize(s->audit_cp_st);
    s->audit_cp_st = NULL;
    s->audit_ready = 0;
    explicit_bzero(s->audit_sk, sizeof s->audit_sk);
}

int sq_store_audit_batch(void *be, const fp_audit_rec *recs, int n, fp_err *err)
{
    fp_sqlite *s = be;
    for (int i = 0; i < n; i++)
        if (!recs[i].actor || !recs[i].action || !recs[i].outcome)
            return fp_fail(err, FP_EINVAL, "an audit record needs actor, action and outcome");
    if (n <= 0)
        return 0;
    if (fp_sq_refuse_stopped(s, err) < 0)
        return FP_EIO;
    pthread_mutex_lock(&s->wlock);
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        for (int i = 0; i < n && rc == 0; i++)
            rc = fp_sq_audit_append(s, &recs[i], err);
        if (rc == 0 && fp_sq_fault_before_commit(s) < 0)
            rc = fp_fail(err, FP_EIO, "injected fault: store write");
        if (rc == 0 && (rc = fp_sq_exec(s->wdb, "COMMIT", err)) == 0)
            fp_sq_fault_after_commit(s);
        if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
            fp_sq_exec(s->wdb, "ROLLBACK", NULL);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int sq_store_audit_head(void *be, fp_audit_head *h, fp_err *err)
{
    fp_sqlite *s = be;
    pthread_mutex_lock(&s->wlock);
    int rc = s->audit_stale ? audit_load_head(s, err) : 0;
    if (rc == 0) {
        h->last_id = s->audit_last_id;
        memcpy(h->last_hash, s->audit_last_hash, FP_AUDIT_HASH_LEN);
        h->cp_id = s->audit_cp_id;
        h->cp_upto = s->audit_cp_upto;
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int sq_store_audit_prune(void *be, int64_t before_ts, const char *actor, int64_t *upto,
                         int64_t *anchor_cp, fp_err *err)
{
    fp_sqlite *s = be;
    *upto = *anchor_cp = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto unlock;
    s->audit_stale = 1;
    if ((rc = audit_load_head(s, err)) < 0)
        goto rollback;
    /* the newest checkpoint that ends before the first record to keep */
    int64_t keep = 0, first = 0, cp_id = 0, cp_upto = 0;
    int keep_null = 1, first_null = 1, cp_null = 1, upto_null = 1;
    if (fp_sq_int_or_null(s->wdb, "SELECT min(id) FROM audit WHERE ts >= ?1", before_ts, &keep,
                          &keep_null) < 0 ||
        fp_sq_int_or_null(s->wdb, "SELECT min(id) FROM audit WHERE id > ?1", 0, &first,
                          &first_null) < 0 ||
        fp_sq_int_or_null(s->wdb,
                          "SELECT max(id) FROM audit_checkpoints WHERE ?1 = 0 OR upto_id < ?1",
                          keep_null ? 0 : keep, &cp_id, &cp_null) < 0)
        goto dberr;
    if (!cp_null && fp_sq_int_or_null(s->wdb, "SELECT upto_id FROM audit_checkpoints WHERE id = ?1",
                                      cp_id, &cp_upto, &upto_null) < 0)
        goto dberr;
    if (cp_null || upto_null || first_null || cp_upto < first) {
        rc = fp_sq_exec(s->wdb, "COMMIT", err); /* nothing old enough ends at a checkpoint */
        goto unlock;
    }
    char sql[160], target[48];
    snprintf(sql, sizeof sql,
             "DELETE FROM audit WHERE id <= %lld; DELETE FROM audit_checkpoints WHERE id < %lld",
             (long long)cp_upto, (long long)cp_id);
    snprintf(target, sizeof target, "upto:%lld", (long long)cp_upto);
    fp_audit_rec rec = {
        .actor = actor ? actor : "cli", .action = "audit.prune", .target = target, .outcome = "ok"};
    rc = fp_sq_exec(s->wdb, sql, err);
    if ((rc = fp_sq_end_audited(s, &rec, NULL, NULL, rc, err)) == 0) {
        *upto = cp_upto;
        *anchor_cp = cp_id;
    }
    goto unlock;
dberr:
    rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
rollback:
    fp_sq_end_audited(s, NULL, NULL, NULL, rc, NULL);
unlock:
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

/* ---- fail-stop (failstop.c, docs/storage.md) ---- */

/* ---- reading the log for the API (GET /v1/audit) ---- */

static const char *text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

#define AUDIT_VIEW_COLS                                                                            \
    "id, ts, actor, action, target, request_id, client_ip, outcome, hash, "                        \
    "coalesce(seller_id, 0), client_request_id"

int sq_store_audit_rows(void *be, int64_t seller_id, int64_t before, int limit,
                        void (*fn)(const fp_audit_view *v, void *arg), void *arg)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    /* one seller's records walk the index audit_seller(seller_id, id) */
    const char *sql = seller_id != 0 ? "SELECT " AUDIT_VIEW_COLS " FROM audit WHERE seller_id = ?3 "
                                       "AND id < ?1 ORDER BY seller_id DESC, id DESC LIMIT ?2"
                                     : "SELECT " AUDIT_VIEW_COLS " FROM audit WHERE id < ?1 "
                                       "ORDER BY id DESC LIMIT ?2";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, before > 0 ? before : INT64_MAX);
        sqlite3_bind_int(st, 2, limit);
        if (seller_id != 0)
            sqlite3_bind_int64(st, 3, seller_id);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            char hex[65] = "";
            if (sqlite3_column_bytes(st, 8) == 32)
                fp_hex(sqlite3_column_blob(st, 8), 32, hex);
            fp_audit_view v = {sqlite3_column_int64(st, 0),
                               sqlite3_column_int64(st, 1),
                               text(st, 2),
                               text(st, 3),
                               text(st, 4),
                               text(st, 5),
                               text(st, 6),
                               text(st, 7),
                               hex,
                               sqlite3_column_int64(st, 9),
                               text(st, 10)};
            fn(&v, arg);
        }
        rc = step == SQLITE_DONE ? 0 : FP_EIO;
    }
    sqlite3_finalize(st);
    fp_sq_rrelease(s, slot);
    return rc;
}
