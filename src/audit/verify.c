/* verify.c — the offline side of the audit log: verification of a
 * database or a bundle, export, listing.
 *
 * One verifier walks records in id order and checkpoints as they fall due
 * (a checkpoint right after the record it ends at), so the first finding is
 * the first in the log: a record that does not hash to its stored hash, a
 * gap in the ids, a record that does not link to its predecessor, a
 * checkpoint whose signature fails or whose signed hash differs from the
 * chain, or a checkpoint beyond the end of the log.  It keeps only the
 * running hash, so memory does not grow with the log; the database and the
 * bundle each feed it from a stream.
 *
 * Why "reordered" needs a second look: a record's hash covers its id, so a
 * record moved into another place simply fails to hash.  Only when one
 * fails, the verifier asks the source for the record whose hash the
 * failing one's prev_hash names; if the failing record hashes correctly
 * under that record's successor id, it was moved, not edited. */
#include "fapiao/audit.h"
#include "fapiao/crypto.h"
#include "fapiao/json.h"
#include "fapiao/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const kind_names[FP_AUDIT__KINDS] = {
    [FP_AUDIT_INTACT] = "intact",
    [FP_AUDIT_ALTERED] = "altered",
    [FP_AUDIT_RELINKED] = "relinked",
    [FP_AUDIT_MISSING] = "missing",
    [FP_AUDIT_REORDERED] = "reordered",
    [FP_AUDIT_UNCHAINED] = "unchained",
    [FP_AUDIT_TRUNCATED] = "truncated",
    [FP_AUDIT_CP_FORGED] = "checkpoint_forged",
    [FP_AUDIT_CP_MISMATCH] = "checkpoint_mismatch",
    [FP_AUDIT_CP_MISSING] = "checkpoint_missing",
    [FP_AUDIT_BAD_BUNDLE] = "bad_bundle",
};

const char *fp_audit_kind_name(fp_audit_kind k)
{
    return (unsigned)k < FP_AUDIT__KINDS ? kind_names[k] : "?";
}

/* ---- the verifier ---- */

typedef struct verifier {
    const unsigned char *pk;
    fp_audit_report *rep;
    int64_t start;                         /* the first record id expected */
    int64_t next_id;                       /* the id the next record must have */
    unsigned char head[FP_AUDIT_HASH_LEN]; /* hash of record next_id - 1 (or the anchor) */
    int64_t last_cp_id;                    /* the last checkpoint seen (sequence) */
    int64_t last_cp_upto;                  /* where the last verified checkpoint ends */
    int64_t prune_upto, prune_cp;          /* the log starts after a prune at prune_upto */
    int prune_seen;
    int have_trunc; /* a checkpoint beyond the records seen so far */
    fp_audit_cp trunc;
    /* the record whose stored hash is h (for the reorder diagnosis); 1 found */
    int (*find)(void *arg, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id);
    void *find_arg;
    int done;
    int64_t max_ts; /* the latest record time seen */
} verifier;

/* Records the first finding; the two messages are printf pairs. */
__attribute__((format(printf, 5, 7))) static int
found(verifier *v, fp_audit_kind k, int64_t record, int64_t cp, const char *en, const char *zh, ...)
{
    if (v->done)
        return 1;
    v->done = 1;
    fp_audit_report *r = v->rep;
    r->kind = k;
    r->record = record;
    r->checkpoint = cp;
    va_list ap;
    va_start(ap, zh);
    va_list ap2;
    va_copy(ap2, ap);
    vsnprintf(r->en, sizeof r->en, en, ap);
    /* the Chinese text takes the same arguments in the same order */
    vsnprintf(r->zh, sizeof r->zh, zh, ap2);
    va_end(ap2);
    va_end(ap);
    return 1;
}

static const unsigned char zero_hash[FP_AUDIT_HASH_LEN];

static void v_genesis(verifier *v, fp_audit_report *rep, const unsigned char *pk)
{
    memset(v, 0, sizeof *v);
    memset(rep, 0, sizeof *rep);
    v->rep = rep;
    v->pk = pk;
    v->start = v->next_id = 1;
}

/* Starts after a checkpoint (a pruned log, --from-checkpoint, or a bundle
 * of a later segment): its signature vouches for the hash the rest links
 * to. */
static int v_anchor(verifier *v, const fp_audit_cp *cp, int pruned)
{
    v->last_cp_id = cp->id;
    if (!fp_audit_cp_valid(cp, v->pk))
        return found(v, FP_AUDIT_CP_FORGED, 0, cp->id,
                     "checkpoint %lld: signature invalid (forged or altered)",
                     "第 %lld 号检查点签名无效（伪造或被改动）", (long long)cp->id);
    memcpy(v->head, cp->upto_hash, FP_AUDIT_HASH_LEN);
    v->start = v->next_id = cp->upto_id + 1;
    v->last_cp_upto = cp->upto_id;
    fp_audit_report *r = v->rep;
    r->checkpoints = 1;
    r->cp_id = r->anchor_cp = cp->id;
    r->cp_upto = cp->upto_id;
    memcpy(r->cp_hash, cp->upto_hash, FP_AUDIT_HASH_LEN);
    if (pruned) {
        v->prune_upto = cp->upto_id;
        v->prune_cp = cp->id;
    }
    return 0;
}

/* The id whose place r was moved from, or 0.  Its predecessor is the
 * record whose hash r's prev_hash names, stored at position q; r's own id
 * is that record's id + 1, which is q + 1 unless the predecessor moved too
 * (neighbours swapped: then it is q).  A candidate counts only when r's
 * content really hashes to its stored hash under it. */
static int64_t v_moved_from(verifier *v, const fp_audit_row *r)
{
    int64_t cand[5], q = 0;
    int n = 0;
    if (!memcmp(r->prev_hash, zero_hash, FP_AUDIT_HASH_LEN))
        cand[n++] = 1;
    if (v->find && v->find(v->find_arg, r->prev_hash, &q) == 1) {
        cand[n++] = q + 1;
        cand[n++] = q;
        cand[n++] = q + 2;
        cand[n++] = q - 1;
    }
    for (int i = 0; i < n; i++) {
        if (cand[i] <= 0 || cand[i] == r->id)
            continue;
        fp_audit_row moved = *r;
        moved.id = cand[i];
        unsigned char h[FP_AUDIT_HASH_LEN];
        fp_audit_hash(&moved, r->prev_hash, h);
        if (!memcmp(h, r->hash, FP_AUDIT_HASH_LEN))
            return cand[i];
    }
    return 0;
}

static int v_record(verifier *v, const fp_audit_row *r)
{
    if (v->done)
        return 1;
    long long id = (long long)r->id, want = (long long)v->next_id;
    if (r->id > v->next_id) {
        if (r->id == v->next_id + 1)
            return found(v, FP_AUDIT_MISSING, v->next_id, 0, "record %lld missing (gap %lld→%lld)",
                         "第 %lld 条记录缺失（%lld→%lld 之间断档）", want, want - 1, id);
        return found(v, FP_AUDIT_MISSING, v->next_id, 0,
                     "records %lld–%lld missing (gap %lld→%lld)",
                     "第 %lld–%lld 条记录缺失（%lld→%lld 之间断档）", want, id - 1, want - 1, id);
    }
    if (r->id < v->next_id) /* only a bundle can repeat or go back */
        return found(v, FP_AUDIT_REORDERED, r->id, 0,
                     "record %lld appears after record %lld (reordered)",
                     "第 %lld 条记录出现在第 %lld 条之后（顺序被改动）", id, want - 1);
    if (!r->hash && !r->prev_hash)
        return found(v, FP_AUDIT_UNCHAINED, r->id, 0,
                     "record %lld has no hash (inserted outside the chain)",
                     "第 %lld 条记录没有哈希（绕过哈希链插入）", id);
    if (!r->hash || !r->prev_hash || r->hash_len != FP_AUDIT_HASH_LEN ||
        r->prev_len != FP_AUDIT_HASH_LEN)
        return found(v, FP_AUDIT_ALTERED, r->id, 0,
                     "hash mismatch at record %lld (altered: a stored hash is not 32 bytes)",
                     "第 %lld 条记录哈希不符（被篡改：所存哈希不是 32 字节）", id);
    unsigned char h[FP_AUDIT_HASH_LEN];
    fp_audit_hash(r, r->prev_hash, h);
    int hash_ok = !memcmp(h, r->hash, FP_AUDIT_HASH_LEN);
    int prev_ok = !memcmp(r->prev_hash, v->head, FP_AUDIT_HASH_LEN);
    if (!hash_ok) {
        int64_t from = prev_ok ? 0 : v_moved_from(v, r);
        if (from)
            return found(v, FP_AUDIT_REORDERED, r->id, 0,
                         "record %lld is out of place: it holds record %lld (reordered)",
                         "第 %lld 条记录位置不对：其内容是第 %lld 条（顺序被改动）", id,
                         (long long)from);
        return found(v, FP_AUDIT_ALTERED, r->id, 0, "hash mismatch at record %lld (altered)",
                     "第 %lld 条记录哈希不符（被篡改）", id);
    }
    if (!prev_ok)
        return found(v, FP_AUDIT_RELINKED, r->id, 0,
                     "record %lld does not link to record %lld (record %lld was altered and "
                     "re-hashed, or record %lld replaced)",
                     "第 %lld 条记录与第 %lld 条不相连（第 %lld 条被改动后重算了哈希，或第 %lld "
                     "条被替换）",
                     id, id - 1, id - 1, id);
    memcpy(v->head, r->hash, FP_AUDIT_HASH_LEN);
    v->next_id++;
    fp_audit_report *rep = v->rep;
    if (!rep->records++)
        rep->first_id = r->id;
    rep->last_id = r->id;
    if (r->ts < v->max_ts - FP_AUDIT_TS_TOLERANCE) {
        if (!rep->ts_back++)
            rep->ts_back_first = r->id;
        if (v->max_ts - r->ts > rep->ts_back_max)
            rep->ts_back_max = v->max_ts - r->ts;
    }
    if (r->ts > v->max_ts)
        v->max_ts = r->ts;
    if (v->prune_upto && !v->prune_seen && r->f[FP_AUDIT_ACTION].p && r->f[FP_AUDIT_TARGET].p &&
        r->f[FP_AUDIT_ACTION].n == 11 && !memcmp(r->f[FP_AUDIT_ACTION].p, "audit.prune", 11)) {
        char t[32];
        int n = snprintf(t, sizeof t, "upto:%lld", (long long)v->prune_upto);
        v->prune_seen =
            (size_t)n == r->f[FP_AUDIT_TARGET].n && !memcmp(t, r->f[FP_AUDIT_TARGET].p, (size_t)n);
    }
    return 0;
}

static int v_checkpoint(verifier *v, const fp_audit_cp *cp)
{
    if (v->done)
        return 1;
    long long id = (long long)cp->id, upto = (long long)cp->upto_id;
    if (cp->id > v->last_cp_id + 1)
        return found(v, FP_AUDIT_CP_MISSING, 0, v->last_cp_id + 1,
                     "checkpoint %lld missing (gap %lld→%lld)",
                     "第 %lld 号检查点缺失（%lld→%lld 之间断档）", (long long)v->last_cp_id + 1,
                     (long long)v->last_cp_id, id);
    if (cp->id <= v->last_cp_id)
        return found(v, FP_AUDIT_CP_MISMATCH, 0, cp->id,
                     "checkpoint %lld appears after checkpoint %lld (reordered)",
                     "第 %lld 号检查点出现在第 %lld 号之后（顺序被改动）", id,
                     (long long)v->last_cp_id);
    v->last_cp_id = cp->id;
    if (!fp_audit_cp_valid(cp, v->pk))
        return found(v, FP_AUDIT_CP_FORGED, 0, cp->id,
                     "checkpoint %lld: signature invalid (forged or altered)",
                     "第 %lld 号检查点签名无效（伪造或被改动）", id);
    if (cp->upto_id <= v->last_cp_upto)
        return found(v, FP_AUDIT_CP_MISMATCH, 0, cp->id,
                     "checkpoint %lld covers records up to %lld, not beyond the %lld of the "
                     "checkpoint before it",
                     "第 %lld 号检查点只覆盖到第 %lld 条记录，没有超过前一检查点的第 %lld 条", id,
                     upto, (long long)v->last_cp_upto);
    if (v->have_trunc || cp->upto_id > v->next_id - 1) {
        /* records it covers are not here (yet): a gap that the next
         * record shows, or the end of the log */
        if (!v->have_trunc) {
            v->have_trunc = 1;
            v->trunc = *cp;
        }
        return 0;
    }
    if (cp->upto_id < v->next_id - 1)
        return found(v, FP_AUDIT_BAD_BUNDLE, 0, cp->id,
                     "checkpoint %lld (records up to %lld) is out of place after record %lld",
                     "第 %lld 号检查点（覆盖到第 %lld 条）位置不对，出现在第 %lld 条之后", id, upto,
                     (long long)v->next_id - 1);
    if (memcmp(cp->upto_hash, v->head, FP_AUDIT_HASH_LEN))
        return found(v, FP_AUDIT_CP_MISMATCH, v->last_cp_upto + 1, cp->id,
                     "checkpoint %lld (validly signed, records up to %lld) does not match the "
                     "chain: a record in %lld–%lld was altered and the chain re-hashed",
                     "第 %lld 号检查点（签名有效，覆盖到第 %lld 条）与哈希链不符：第 %lld–%lld "
                     "条中有记录被改动并重算了哈希链",
                     id, upto, (long long)v->last_cp_upto + 1, upto);
    v->last_cp_upto = cp->upto_id;
    fp_audit_report *r = v->rep;
    r->checkpoints++;
    r->cp_id = cp->id;
    r->cp_upto = cp->upto_id;
    memcpy(r->cp_hash, cp->upto_hash, FP_AUDIT_HASH_LEN);
    return 0;
}

static void v_end(verifier *v)
{
    fp_audit_report *r = v->rep;
    int64_t end = v->next_id - 1;
    r->unsigned_tail = end - (r->cp_id ? r->cp_upto : v->start - 1);
    if (r->unsigned_tail < 0)
        r->unsigned_tail = 0;
    if (v->done)
        return;
    if (v->have_trunc) {
        found(v, FP_AUDIT_TRUNCATED, end + 1, v->trunc.id,
              "checkpoint %lld covers records up to %lld but the log ends at %lld (truncated)",
              "第 %lld 号检查点覆盖到第 %lld 条记录，但日志止于第 %lld 条（尾部被截断）",
              (long long)v->trunc.id, (long long)v->trunc.upto_id, (long long)end);
        return;
    }
    if (v->prune_upto && !v->prune_seen)
        found(v, FP_AUDIT_MISSING, 1, v->prune_cp,
              "records 1–%lld missing: the log starts after checkpoint %lld but no audit.prune "
              "record accounts for it",
              "第 1–%lld 条记录缺失：日志从第 %lld 号检查点之后开始，但没有 audit.prune 记录说明",
              (long long)v->prune_upto, (long long)v->prune_cp);
}

/* ---- the database ---- */

static const char rec_cols[] = "id, ts, actor, action, target, request_id, client_ip, outcome, "
                               "seller_id, client_request_id, prev_hash, hash";
#define COL_PREV (2 + FP_AUDIT__FIELDS)
#define COL_HASH (3 + FP_AUDIT__FIELDS)
static const char cp_cols[] = "id, upto_id, upto_hash, ts, signature";

static void row_from_stmt(sqlite3_stmt *st, fp_audit_row *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->ts = sqlite3_column_int64(st, 1);
    for (int i = 0; i < FP_AUDIT__FIELDS; i++) {
        if (sqlite3_column_type(st, 2 + i) == SQLITE_NULL)
            continue;
        r->f[i].p = (const char *)sqlite3_column_text(st, 2 + i);
        r->f[i].n = (size_t)sqlite3_column_bytes(st, 2 + i);
        if (!r->f[i].p)
            r->f[i].p = "";
    }
    static const unsigned char none[1];
    if (sqlite3_column_type(st, COL_PREV) != SQLITE_NULL) {
        r->prev_hash = sqlite3_column_blob(st, COL_PREV);
        r->prev_len = (size_t)sqlite3_column_bytes(st, COL_PREV);
        if (!r->prev_hash)
            r->prev_hash = none;
    }
    if (sqlite3_column_type(st, COL_HASH) != SQLITE_NULL) {
        r->hash = sqlite3_column_blob(st, COL_HASH);
        r->hash_len = (size_t)sqlite3_column_bytes(st, COL_HASH);
        if (!r->hash)
            r->hash = none;
    }
}

static void cp_from_stmt(sqlite3_stmt *st, fp_audit_cp *cp)
{
    memset(cp, 0, sizeof *cp);
    cp->id = sqlite3_column_int64(st, 0);
    cp->upto_id = sqlite3_column_int64(st, 1);
    cp->ts = sqlite3_column_int64(st, 3);
    const void *h = sqlite3_column_blob(st, 2);
    int hn = sqlite3_column_bytes(st, 2);
    const void *s = sqlite3_column_blob(st, 4);
    int sn = sqlite3_column_bytes(st, 4);
    if (h && hn == FP_AUDIT_HASH_LEN)
        memcpy(cp->upto_hash, h, FP_AUDIT_HASH_LEN);
    else
        cp->malformed = 1;
    if (s && sn == FP_AUDIT_SIG_LEN)
        memcpy(cp->sig, s, FP_AUDIT_SIG_LEN);
    else
        cp->malformed = 1;
}

/* Opens db_path read-only and checks that it has the chained audit log. */
static int open_ro(const char *db_path, sqlite3 **db, fp_err *err)
{
    if (access(db_path, F_OK) != 0)
        return fp_fail(err, FP_ENOTFOUND, "%s: %s", db_path, strerror(errno));
    fp_store_shm_guard(); /* no SIGBUS on a full disk */
    if (fp_store_sqlite_open_ro(db_path, db) != SQLITE_OK) {
        int rc = fp_fail(err, FP_EIO, "open %s: %s", db_path,
                         *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(*db, 5000);
    sqlite3_stmt *st = NULL;
    int ok = sqlite3_prepare_v2(*db, "SELECT 1 FROM audit_checkpoints LIMIT 1", -1, &st, NULL) ==
             SQLITE_OK;
    sqlite3_finalize(st);
    st = NULL; /* and the audit columns of migration 7 */
    ok = ok && sqlite3_prepare_v2(*db, "SELECT seller_id, client_request_id FROM audit LIMIT 0", -1,
                                  &st, NULL) == SQLITE_OK;
    sqlite3_finalize(st);
    if (!ok) {
        int rc = fp_fail(err, FP_EINVAL,
                         "%s has no chained audit log (%s): open it once with this fapiao "
                         "(e.g. fapiao serve) to upgrade it",
                         db_path, sqlite3_errmsg(*db));
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    return 0;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql, fp_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* A checkpoint chosen by sql (binding one integer): 1 found, 0 none, <0. */
static int cp_query(sqlite3 *db, const char *where, int64_t arg, fp_audit_cp *cp, fp_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM audit_checkpoints %s", cp_cols, where);
    sqlite3_stmt *st = prep(db, sql, err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_int64(st, 1, arg);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        cp_from_stmt(st, cp);
    sqlite3_finalize(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    return step == SQLITE_ROW;
}

static int int_query(sqlite3 *db, const char *sql, int64_t *v, int *is_null, fp_err *err)
{
    sqlite3_stmt *st = prep(db, sql, err);
    if (!st)
        return FP_EIO;
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *is_null = sqlite3_column_type(st, 0) == SQLITE_NULL;
        *v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return step == SQLITE_ROW ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
}

static int db_find(void *arg, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(arg, "SELECT id FROM audit WHERE hash=?1 ORDER BY id LIMIT 1", -1, &st,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_bind_blob(st, 1, h, FP_AUDIT_HASH_LEN, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    if (found)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return found;
}

/* Feeds the records with id > after and the checkpoints with id > cp_after
 * to v, each checkpoint right after the record it ends at. */
static int db_stream(sqlite3 *db, verifier *v, int64_t after, int64_t cp_after, fp_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM audit WHERE id > ?1 ORDER BY id", rec_cols);
    sqlite3_stmt *rs = prep(db, sql, err), *cs = NULL;
    snprintf(sql, sizeof sql, "SELECT %s FROM audit_checkpoints WHERE id > ?1 ORDER BY id",
             cp_cols);
    if (rs)
        cs = prep(db, sql, err);
    if (!cs) {
        sqlite3_finalize(rs);
        return FP_EIO;
    }
    sqlite3_bind_int64(rs, 1, after);
    sqlite3_bind_int64(cs, 1, cp_after);
    fp_audit_cp cp;
    int cstep = sqlite3_step(cs), rstep = SQLITE_DONE;
    if (cstep == SQLITE_ROW)
        cp_from_stmt(cs, &cp);
    fp_audit_row row;
    while (!v->done && (rstep = sqlite3_step(rs)) == SQLITE_ROW) {
        row_from_stmt(rs, &row);
        while (!v->done && cstep == SQLITE_ROW && cp.upto_id < row.id) {
            v_checkpoint(v, &cp);
            if ((cstep = sqlite3_step(cs)) == SQLITE_ROW)
                cp_from_stmt(cs, &cp);
        }
        v_record(v, &row);
    }
    if (v->done)
        rstep = SQLITE_DONE;
    while (!v->done && cstep == SQLITE_ROW) {
        v_checkpoint(v, &cp);
        if ((cstep = sqlite3_step(cs)) == SQLITE_ROW)
            cp_from_stmt(cs, &cp);
    }
    if (v->done)
        cstep = SQLITE_DONE;
    int rc = rstep == SQLITE_DONE && cstep == SQLITE_DONE
                 ? 0
                 : fp_fail(err, FP_EIO, "reading the audit log: %s", sqlite3_errmsg(db));
    sqlite3_finalize(rs);
    sqlite3_finalize(cs);
    return rc;
}

/* Invoices whose issued_at is more than the tolerance below an earlier
 * stored one's (storage order: the rowid).  Best effort: a database
 * without invoices has nothing to report. */
static void invoices_backwards(sqlite3 *db, fp_audit_report *rep)
{
    static const char sql[] =
        "SELECT count(*), max(prev - issued_at), "
        "  (SELECT number FROM (SELECT number, issued_at, max(issued_at) OVER (ORDER BY rowid "
        "     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev FROM invoices) "
        "   WHERE issued_at < prev - ?1 LIMIT 1) "
        "FROM (SELECT issued_at, max(issued_at) OVER (ORDER BY rowid "
        "  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev FROM invoices) "
        "WHERE issued_at < prev - ?1";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_bind_int64(st, 1, FP_AUDIT_TS_TOLERANCE);
    if (sqlite3_step(st) == SQLITE_ROW) {
        rep->inv_back = sqlite3_column_int64(st, 0);
        rep->inv_back_max = sqlite3_column_int64(st, 1);
        const unsigned char *n = sqlite3_column_text(st, 2);
        snprintf(rep->inv_back_first, sizeof rep->inv_back_first, "%s", n ? (const char *)n : "");
    }
    sqlite3_finalize(st);
}

int fp_audit_verify_db(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN],
                       int64_t from_cp, fp_audit_report *rep, fp_err *err)
{
    verifier v;
    v_genesis(&v, rep, pk);
    sqlite3 *db = NULL;
    int rc = open_ro(db_path, &db, err);
    if (rc < 0)
        return rc;
    v.find = db_find;
    v.find_arg = db;
    /* one read transaction: a consistent snapshot while a server writes */
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        goto out;
    }
    int64_t after = 0, cp_after = 0;
    fp_audit_cp cp;
    if (from_cp > 0) {
        if ((rc = cp_query(db, "WHERE id=?1", from_cp, &cp, err)) <= 0) {
            if (rc == 0)
                rc = fp_fail(err, FP_ENOTFOUND, "there is no checkpoint %lld", (long long)from_cp);
            goto out;
        }
        v_anchor(&v, &cp, 0);
        after = cp.upto_id;
        cp_after = cp.id;
    } else {
        int64_t first = 0;
        int none = 1;
        if ((rc = int_query(db, "SELECT min(id) FROM audit", &first, &none, err)) < 0 ||
            (rc = cp_query(db, "WHERE id > ?1 ORDER BY id LIMIT 1", 0, &cp, err)) < 0)
            goto out;
        int have_cp = rc;
        if (!none && first > 1) {
            /* the beginning was pruned: the oldest checkpoint must end
             * right before the first record (and an audit.prune record
             * must say so) */
            if (have_cp && cp.upto_id == first - 1) {
                v_anchor(&v, &cp, 1);
                after = cp.upto_id;
                cp_after = cp.id;
            } else {
                long long miss = have_cp && cp.upto_id < first - 1 ? cp.upto_id + 1 : 1;
                if (miss == first - 1)
                    found(&v, FP_AUDIT_MISSING, miss, 0,
                          "record %lld missing (the log starts at record %lld)",
                          "第 %lld 条记录缺失（日志从第 %lld 条开始）", miss, (long long)first);
                else
                    found(&v, FP_AUDIT_MISSING, miss, 0,
                          "records %lld–%lld missing (the log starts at record %lld)",
                          "第 %lld–%lld 条记录缺失（日志从第 %lld 条开始）", miss,
                          (long long)first - 1, (long long)first);
            }
        }
    }
    rc = v.done ? 0 : db_stream(db, &v, after, cp_after, err);
    if (rc == 0)
        v_end(&v);
    if (rc == 0)
        invoices_backwards(db, rep);
out:
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return rc < 0 ? rc : 0;
}

/* ---- bundles: JSON lines (docs/audit.md) ---- */

#define BUNDLE_LINE_MAX (1 << 20)
#define BUNDLE_FORMAT   "fapiao-audit-bundle"
#define BUNDLE_VERSION  1

/* Reads one line into buf (without the newline): its length, -1 at EOF,
 * -2 when longer than the buffer. */
static long read_line(FILE *f, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, f))
        return -1;
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    else if (!feof(f))
        return -2;
    return (long)n;
}

static int json_i64(const cJSON *o, const char *k, int64_t *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x))
        return -1;
    double d = x->valuedouble;
    if (d != d || d < -9007199254740992.0 || d > 9007199254740992.0 || d != (double)(int64_t)d)
        return -1;
    *v = (int64_t)d;
    return 0;
}

static int json_text(const cJSON *o, const char *k, fp_audit_text *t)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNull(x)) {
        t->p = NULL;
        t->n = 0;
        return 0;
    }
    if (!cJSON_IsString(x))
        return -1;
    t->p = x->valuestring;
    t->n = strlen(x->valuestring);
    return 0;
}

/* A hex field of n bytes: 1 decoded, 0 present but not n bytes of hex, -1
 * absent. */
static int json_hex(const cJSON *o, const char *k, unsigned char *out, size_t n)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNull(x))
        return 0;
    if (!cJSON_IsString(x))
        return -1;
    return strlen(x->valuestring) == 2 * n && fp_audit_unhex(x->valuestring, out, n) == 0;
}

static const char *json_type(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

typedef struct bundle_rec {
    fp_audit_row row;
    unsigned char prev[FP_AUDIT_HASH_LEN], hash[FP_AUDIT_HASH_LEN];
} bundle_rec;

static int parse_record(const cJSON *o, bundle_rec *b)
{
    fp_audit_row *r = &b->row;
    memset(r, 0, sizeof *r);
    if (json_i64(o, "id", &r->id) < 0 || json_i64(o, "ts", &r->ts) < 0)
        return -1;
    for (int i = 0; i < FP_AUDIT__FIELDS; i++)
        if (json_text(o, fp_audit_field_names[i], &r->f[i]) < 0 &&
            (i < FP_AUDIT__V1_FIELDS ||
             cJSON_GetObjectItemCaseSensitive(o, fp_audit_field_names[i])))
            return -1; /* the fields of migration 7 may be absent (older bundles): NULL */
    int p = json_hex(o, "prev_hash", b->prev, FP_AUDIT_HASH_LEN);
    int h = json_hex(o, "hash", b->hash, FP_AUDIT_HASH_LEN);
    if (p < 0 || h < 0)
        return -1;
    /* a hash that is not 32 bytes of hex reads as a wrong-length hash */
    r->prev_hash = b->prev;
    r->prev_len = p ? FP_AUDIT_HASH_LEN : 0;
    r->hash = b->hash;
    r->hash_len = h ? FP_AUDIT_HASH_LEN : 0;
    if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "prev_hash")) &&
        cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "hash")))
        r->prev_hash = r->hash = NULL;
    return 0;
}

static int parse_cp(const cJSON *o, fp_audit_cp *cp)
{
    memset(cp, 0, sizeof *cp);
    if (json_i64(o, "id", &cp->id) < 0 || json_i64(o, "upto_id", &cp->upto_id) < 0 ||
        json_i64(o, "ts", &cp->ts) < 0)
        return -1;
    int h = json_hex(o, "upto_hash", cp->upto_hash, FP_AUDIT_HASH_LEN);
    int s = json_hex(o, "signature", cp->sig, FP_AUDIT_SIG_LEN);
    if (h < 0 || s < 0)
        return -1;
    cp->malformed = !h || !s;
    return 0;
}

/* The reorder diagnosis for a bundle: a second pass over the file. */
static int bundle_find(void *arg, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id)
{
    FILE *f = fopen(arg, "r");
    char *line = f ? malloc(BUNDLE_LINE_MAX) : NULL;
    int found = 0;
    long n;
    while (line && !found && (n = read_line(f, line, BUNDLE_LINE_MAX)) >= 0) {
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        bundle_rec b;
        if (o && !strcmp(json_type(o), "record") && parse_record(o, &b) == 0 &&
            b.row.hash_len == FP_AUDIT_HASH_LEN && !memcmp(b.hash, h, FP_AUDIT_HASH_LEN)) {
            *id = b.row.id;
            found = 1;
        }
        cJSON_Delete(o);
    }
    free(line);
    if (f)
        fclose(f);
    return found;
}

int fp_audit_verify_bundle(const char *path, const unsigned char *pk,
                           unsigned char bundle_pk[FP_AUDIT_KEY_LEN], fp_audit_report *rep,
                           fp_err *err)
{
    verifier v;
    v_genesis(&v, rep, pk);
    memset(bundle_pk, 0, FP_AUDIT_KEY_LEN);
    FILE *f = fopen(path, "r");
    if (!f)
        return fp_fail(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO, "open %s: %s", path,
                       strerror(errno));
    char *line = malloc(BUNDLE_LINE_MAX);
    if (!line) {
        fclose(f);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    v.find = bundle_find;
    v.find_arg = (void *)path;
    long n, lineno = 0;
    int64_t start = 0, end = 0, nrec = 0, ncp = 0;
    int state = 0; /* 0: header next, 1: anchor next, 2: body, 3: after the end line */
    while (!v.done && (n = read_line(f, line, BUNDLE_LINE_MAX)) != -1) {
        lineno++;
        cJSON *o = n >= 0 ? cJSON_ParseWithLength(line, (size_t)n) : NULL;
        const char *type = o ? json_type(o) : "";
        if (!o) {
            found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "line %ld of the bundle is not JSON",
                  "包第 %ld 行不是 JSON", lineno);
        } else if (state == 0) {
            int64_t ver = 0;
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "pubkey");
            if (strcmp(type, BUNDLE_FORMAT) || json_i64(o, "version", &ver) < 0 ||
                ver != BUNDLE_VERSION || json_i64(o, "start", &start) < 0 ||
                json_i64(o, "end", &end) < 0 || !cJSON_IsString(k) ||
                fp_audit_unhex(k->valuestring, bundle_pk, FP_AUDIT_KEY_LEN) < 0 || start < 1) {
                found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0,
                      "not a fapiao audit bundle (version %d): bad header line",
                      "不是 fapiao 审计日志包（第 %d 版）：首行无效", BUNDLE_VERSION);
            } else if (pk && memcmp(pk, bundle_pk, FP_AUDIT_KEY_LEN)) {
                found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0,
                      "the bundle is signed with another key than the expected public key",
                      "该包的签名公钥与预期的公钥不同");
            } else {
                if (!pk)
                    v.pk = bundle_pk;
                v.start = v.next_id = start;
                state = start > 1 ? 1 : 2;
            }
        } else if (state == 1) {
            fp_audit_cp cp;
            if (strcmp(type, "checkpoint") || parse_cp(o, &cp) < 0 || cp.upto_id != start - 1)
                found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0,
                      "the bundle starts at record %lld but does not carry the checkpoint "
                      "before it",
                      "该包从第 %lld 条记录开始，却没有其前一个检查点", (long long)start);
            else
                v_anchor(&v, &cp, 0);
            state = 2;
        } else if (state == 2 && !strcmp(type, "record")) {
            bundle_rec b;
            if (parse_record(o, &b) < 0)
                found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "line %ld: malformed record",
                      "第 %ld 行：记录格式无效", lineno);
            else
                v_record(&v, &b.row);
            nrec++;
        } else if (state == 2 && !strcmp(type, "checkpoint")) {
            fp_audit_cp cp;
            if (parse_cp(o, &cp) < 0)
                found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "line %ld: malformed checkpoint",
                      "第 %ld 行：检查点格式无效", lineno);
            else
                v_checkpoint(&v, &cp);
            ncp++;
        } else if (state == 2 && !strcmp(type, "end")) {
            int64_t want_rec = -1, want_cp = -1;
            json_i64(o, "records", &want_rec);
            json_i64(o, "checkpoints", &want_cp);
            if (want_rec != nrec || want_cp != ncp || (nrec && v.next_id - 1 != end))
                found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0,
                      "the bundle's end line says %lld records and %lld checkpoints ending at "
                      "record %lld; it holds %lld and %lld",
                      "包末行称有 %lld 条记录、%lld 个检查点，止于第 %lld 条；实际为 %lld 条、%lld "
                      "个",
                      (long long)want_rec, (long long)want_cp, (long long)end, (long long)nrec,
                      (long long)ncp);
            state = 3;
        } else {
            found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "line %ld of the bundle is unexpected (%s)",
                  "包第 %ld 行不应出现（%s）", lineno, state == 3 ? "after the end" : type);
        }
        cJSON_Delete(o);
    }
    int rc = 0;
    if (ferror(f))
        rc = fp_fail(err, FP_EIO, "read %s: %s", path, strerror(errno));
    else if (state != 3)
        found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "the bundle is cut short (no end line)",
              "包不完整（缺少末行）");
    if (rc == 0)
        v_end(&v);
    free(line);
    fclose(f);
    return rc;
}

/* ---- export ---- */

static void jw_hex(fp_jw *w, const char *k, const void *p, size_t n)
{
    if (!p) {
        fp_jw_key(w, k);
        fp_jw_null(w);
        return;
    }
    char hex[2 * 64 + 1];
    if (n > 64) /* never a valid hash: export a recognisably wrong value */
        n = 64;
    fp_hex(p, n, hex);
    fp_jw_kstr(w, k, hex);
}

static void write_cp_line(fp_buf *b, const fp_audit_cp *cp)
{
    fp_jw w;
    fp_jw_init(&w, b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "type", "checkpoint");
    fp_jw_kint(&w, "id", cp->id);
    fp_jw_kint(&w, "upto_id", cp->upto_id);
    jw_hex(&w, "upto_hash", cp->upto_hash, FP_AUDIT_HASH_LEN);
    fp_jw_kint(&w, "ts", cp->ts);
    jw_hex(&w, "signature", cp->sig, FP_AUDIT_SIG_LEN);
    fp_jw_obj_close(&w);
    fp_buf_puts(b, "\n");
}

static void write_text(fp_jw *w, const char *k, const fp_audit_text *t)
{
    fp_jw_key(w, k);
    if (!t->p) {
        fp_jw_null(w);
        return;
    }
    /* the column holds n bytes; the writer takes a C string */
    char small[256], *s = t->n < sizeof small ? small : malloc(t->n + 1);
    if (!s) {
        fp_jw_null(w);
        return;
    }
    memcpy(s, t->p, t->n);
    s[t->n] = 0;
    fp_jw_str(w, s);
    if (s != small)
        free(s);
}

static void write_rec_line(fp_buf *b, const fp_audit_row *r)
{
    fp_jw w;
    fp_jw_init(&w, b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "type", "record");
    fp_jw_kint(&w, "id", r->id);
    fp_jw_kint(&w, "ts", r->ts);
    for (int i = 0; i < FP_AUDIT__FIELDS; i++)
        write_text(&w, fp_audit_field_names[i], &r->f[i]);
    jw_hex(&w, "prev_hash", r->prev_hash, r->prev_len);
    jw_hex(&w, "hash", r->hash, r->hash_len);
    fp_jw_obj_close(&w);
    fp_buf_puts(b, "\n");
}

/* Writes and empties b (bounded: flushed after every line). */
static int flush_buf(FILE *f, fp_buf *b)
{
    int ok = !b->overflow && fwrite(b->p ? b->p : "", 1, b->len, f) == b->len;
    b->len = 0;
    b->overflow = 0;
    return ok ? 0 : -1;
}

int fp_audit_export(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN], int64_t from,
                    int64_t to, const char *out_path, int64_t *first, int64_t *last, fp_err *err)
{
    *first = *last = 0;
    sqlite3 *db = NULL;
    int rc = open_ro(db_path, &db, err);
    if (rc < 0)
        return rc;
    char tmp[4200];
    FILE *f = NULL;
    sqlite3_stmt *rs = NULL, *cs = NULL;
    fp_buf b;
    fp_buf_init(&b, 0);
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        goto out;
    }
    int64_t min_id = 0, max_id = 0;
    int none = 1;
    if ((rc = int_query(db, "SELECT min(id) FROM audit", &min_id, &none, err)) < 0 ||
        (!none && (rc = int_query(db, "SELECT max(id) FROM audit", &max_id, &none, err)) < 0))
        goto out;
    if (none) {
        rc = fp_fail(err, FP_ENOTFOUND, "the audit log is empty: nothing to export");
        goto out;
    }
    int to_given = to > 0;
    if (from <= 0 || from < min_id)
        from = min_id;
    if (!to_given || to > max_id)
        to = max_id;
    if (from > to) {
        rc = fp_fail(err, FP_EINVAL, "no records in %lld..%lld (the log holds %lld..%lld)",
                     (long long)from, (long long)to, (long long)min_id, (long long)max_id);
        goto out;
    }
    /* widen to checkpoints: start after the last one before `from`, end at
     * the first one at or after `to` */
    fp_audit_cp anchor, cp;
    int have_anchor = 0;
    int64_t start = min_id, end = to;
    if ((rc = cp_query(db, "WHERE upto_id < ?1 ORDER BY upto_id DESC LIMIT 1", from, &anchor,
                       err)) < 0)
        goto out;
    if (rc == 1 && anchor.upto_id >= min_id - 1) {
        have_anchor = 1;
        start = anchor.upto_id + 1;
    }
    if (to_given) {
        if ((rc = cp_query(db, "WHERE upto_id >= ?1 ORDER BY upto_id LIMIT 1", to, &cp, err)) < 0)
            goto out;
        if (rc == 1 && cp.upto_id <= max_id)
            end = cp.upto_id;
    }
    rs = prep(db,
              "SELECT id, ts, actor, action, target, request_id, client_ip, outcome, seller_id, "
              "client_request_id, prev_hash, hash FROM audit WHERE id >= ?1 AND id <= ?2 "
              "ORDER BY id",
              err);
    /* every later checkpoint when the bundle runs to the end of the log, so
     * that a checkpoint beyond it (a truncated log) shows */
    cs = rs ? prep(db,
                   "SELECT id, upto_id, upto_hash, ts, signature FROM audit_checkpoints "
                   "WHERE id > ?1 AND upto_id >= ?2 AND (?3 = 0 OR upto_id <= ?4) ORDER BY id",
                   err)
            : NULL;
    if (!cs) {
        rc = FP_EIO;
        goto out;
    }
    sqlite3_bind_int64(rs, 1, start);
    sqlite3_bind_int64(rs, 2, end);
    sqlite3_bind_int64(cs, 1, have_anchor ? anchor.id : 0);
    sqlite3_bind_int64(cs, 2, start);
    sqlite3_bind_int(cs, 3, to_given);
    sqlite3_bind_int64(cs, 4, end);

    snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
    if (!(f = fopen(tmp, "w"))) {
        rc = fp_fail(err, FP_EIO, "create %s: %s", tmp, strerror(errno));
        goto out;
    }
    fp_jw w;
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "type", BUNDLE_FORMAT);
    fp_jw_kint(&w, "version", BUNDLE_VERSION);
    fp_jw_kstr(&w, "hash", "sha256");
    fp_jw_kstr(&w, "signature", "ed25519");
    jw_hex(&w, "pubkey", pk, FP_AUDIT_KEY_LEN);
    fp_jw_kint(&w, "start", start);
    fp_jw_kint(&w, "end", end);
    fp_jw_kint(&w, "exported_at", (long long)time(NULL));
    fp_jw_obj_close(&w);
    fp_buf_puts(&b, "\n");
    if (have_anchor)
        write_cp_line(&b, &anchor);
    int ok = flush_buf(f, &b) == 0;
    int64_t nrec = 0, ncp = 0;
    int cstep = sqlite3_step(cs), rstep = SQLITE_DONE;
    if (cstep == SQLITE_ROW)
        cp_from_stmt(cs, &cp);
    fp_audit_row row;
    while (ok && (rstep = sqlite3_step(rs)) == SQLITE_ROW) {
        row_from_stmt(rs, &row);
        while (cstep == SQLITE_ROW && cp.upto_id < row.id) {
            write_cp_line(&b, &cp);
            ncp++;
            if ((cstep = sqlite3_step(cs)) == SQLITE_ROW)
                cp_from_stmt(cs, &cp);
        }
        write_rec_line(&b, &row);
        if (!nrec++)
            *first = row.id;
        *last = row.id;
        ok = flush_buf(f, &b) == 0;
    }
    while (ok && cstep == SQLITE_ROW) {
        write_cp_line(&b, &cp);
        ncp++;
        if ((cstep = sqlite3_step(cs)) == SQLITE_ROW)
            cp_from_stmt(cs, &cp);
    }
    if (ok && (rstep != SQLITE_DONE || cstep != SQLITE_DONE)) {
        rc = fp_fail(err, FP_EIO, "reading the audit log: %s", sqlite3_errmsg(db));
        goto out;
    }
    fp_buf_printf(&b, "{\"type\":\"end\",\"records\":%lld,\"checkpoints\":%lld}\n", (long long)nrec,
                  (long long)ncp);
    ok = ok && flush_buf(f, &b) == 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    f = NULL;
    if (!ok || rename(tmp, out_path) != 0) {
        rc = fp_fail(err, FP_EIO, "write %s: %s", out_path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (f) {
        fclose(f);
        unlink(tmp);
    }
    fp_buf_free(&b);
    sqlite3_finalize(rs);
    sqlite3_finalize(cs);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

/* ---- listing ---- */

int fp_audit_list(const char *db_path, int limit, void (*fn)(const fp_audit_row *r, void *arg),
                  void *arg, fp_err *err)
{
    sqlite3 *db = NULL;
    int rc = open_ro(db_path, &db, err);
    if (rc < 0)
        return rc;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM audit ORDER BY id DESC LIMIT ?1", rec_cols);
    sqlite3_stmt *st = prep(db, sql, err);
    if (st) {
        sqlite3_bind_int(st, 1, limit);
        int step;
        fp_audit_row r;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            row_from_stmt(st, &r);
            fn(&r, arg);
        }
        rc = step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
    } else {
        rc = FP_EIO;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* ---- shipping checkpoints to an append-only place (docs/audit.md) ----
 *
 * Why: whoever holds audit.key can rewrite the log and re-sign every
 * checkpoint.  A checkpoint copied, as it is made, to a place that
 * process cannot change afterwards (a file the operator made append-only,
 * a write-once mount, another host through a command) pins the chain up to
 * it: a rewrite re-signed later disagrees with the shipped copy. */

#define SHIP_FILE "checkpoints.jsonl"

/* The id on the last complete line of path (0: no file or no line). */
static int64_t last_shipped_id(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[4096];
    long end = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long from = end > (long)sizeof buf - 1 ? end - (long)sizeof buf + 1 : 0;
    size_t n = end > 0 && fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, sizeof buf - 1, f) : 0;
    fclose(f);
    buf[n] = 0;
    while (n && buf[n - 1] != '\n') /* a torn last line does not count */
        buf[--n] = 0;
    if (n)
        buf[--n] = 0;
    char *line = strrchr(buf, '\n');
    line = line ? line + 1 : buf;
    cJSON *o = cJSON_Parse(line);
    int64_t id = 0;
    if (o && !strcmp(json_type(o), "checkpoint") && json_i64(o, "id", &id) < 0)
        id = 0;
    cJSON_Delete(o);
    return id;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Runs /bin/sh -c cmd with data on its stdin; 0 when it exits 0 within
 * HOOK_TIMEOUT_MS (else it is killed): a hook that hangs must not hold up
 * the shipper, nor serve's stop. */
#define HOOK_TIMEOUT_MS 30000
static int run_hook(const char *cmd, const char *data, size_t len, fp_err *err)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return fp_fail(err, FP_EIO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return fp_fail(err, FP_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        if (dup2(fds[0], STDIN_FILENO) < 0)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    /* the hook may exit without reading (EPIPE, not a signal) or stop
     * reading: the writes wait at most until the deadline too */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    int ms = 0;
    while (len && ms < HOOK_TIMEOUT_MS) {
        ssize_t w = write(fds[1], data, len);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {fds[1], POLLOUT, 0};
            poll(&pfd, 1, 10);
            ms += 10;
        } else {
            break;
        }
    }
    int wrote = len == 0;
    close(fds[1]);
    signal(SIGPIPE, old);
    int status = 0, waited = 0;
    for (; ms < HOOK_TIMEOUT_MS; ms += 10) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            waited = 1;
            break;
        }
        if (w < 0 && errno != EINTR)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!waited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return fp_fail(err, FP_EIO, "checkpoint hook %s did not finish within %d s", cmd,
                       HOOK_TIMEOUT_MS / 1000);
    }
    if (!wrote || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fp_fail(err, FP_EIO, "checkpoint hook %s failed (exit status %d)", cmd,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

int fp_audit_ship(const char *db_path, const char *dest, const char *state_path, int64_t *shipped,
                  fp_err *err)
{
    *shipped = 0;
    int is_cmd = !strncmp(dest, "cmd:", 4);
    char path[4200];
    char state_buf[4200];
    if (is_cmd && !state_path) {
        snprintf(state_buf, sizeof state_buf, "%s.cp-shipped", db_path);
        state_path = state_buf;
    }
    if (snprintf(path, sizeof path, "%s/%s", dest, SHIP_FILE) >= (int)sizeof path)
        return fp_fail(err, FP_ERANGE, "path too long: %s", dest);
    int64_t after = last_shipped_id(is_cmd ? state_path : path);
    sqlite3 *db = NULL;
    int rc = open_ro(db_path, &db, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *cs = prep(db,
                            "SELECT id, upto_id, upto_hash, ts, signature FROM audit_checkpoints "
                            "WHERE id > ?1 ORDER BY id LIMIT 10000",
                            err);
    fp_buf b;
    fp_buf_init(&b, 0);
    int64_t last = 0;
    int step = SQLITE_DONE;
    if (!cs) {
        rc = FP_EIO;
        goto out;
    }
    sqlite3_bind_int64(cs, 1, after);
    while ((step = sqlite3_step(cs)) == SQLITE_ROW) {
        fp_audit_cp cp;
        cp_from_stmt(cs, &cp);
        write_cp_line(&b, &cp);
        last = cp.id;
        (*shipped)++;
    }
    if (step != SQLITE_DONE) {
        rc = fp_fail(err, FP_EIO, "reading checkpoints: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (b.overflow) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    if (!*shipped && is_cmd)
        goto out;
    if (is_cmd) {
        /* the command gets the new checkpoints on stdin; the state file
         * (beside the database) remembers how far it acknowledged (exit 0) */
        if ((rc = run_hook(dest + 4, b.p, b.len, err)) < 0)
            goto out;
        b.len = 0;
        fp_audit_cp cp = {.id = last};
        write_cp_line(&b, &cp); /* only "id" is read back */
        if (snprintf(path, sizeof path, "%s.tmp", state_path) >= (int)sizeof path) {
            rc = fp_fail(err, FP_ERANGE, "path too long: %s", state_path);
            goto out;
        }
        FILE *s = fopen(path, "w");
        if (!s || fwrite(b.p, 1, b.len, s) != b.len || fclose(s) != 0 ||
            rename(path, state_path) != 0) {
            rc = fp_fail(err, FP_EIO, "cannot write %s: %s", state_path, strerror(errno));
            goto out;
        }
        goto out;
    }
    /* O_APPEND: what chattr +a (or a write-once store) still allows */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = fp_fail(err, FP_EIO, "open %s: %s", path, strerror(errno));
        goto out;
    }
    /* nothing new still opens the file: a sink that cannot take lines
     * shows at once (serve refuses to start) */
    int ok = !*shipped || (write_all(fd, b.p, b.len) == 0 && fsync(fd) == 0);
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok)
        rc = fp_fail(err, FP_EIO, "append to %s: %s", path, strerror(e));
out:
    fp_buf_free(&b);
    sqlite3_finalize(cs);
    sqlite3_close(db);
    if (rc < 0)
        *shipped = 0;
    return rc;
}

/* The shipped file is either DEST/checkpoints.jsonl or that file itself. */
int fp_audit_check_shipped(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN],
                           const char *shipped_path, fp_audit_report *rep, fp_err *err)
{
    verifier v;
    v_genesis(&v, rep, pk);
    char path[4200];
    struct stat st;
    if (stat(shipped_path, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(path, sizeof path, "%s/%s", shipped_path, SHIP_FILE);
    else
        snprintf(path, sizeof path, "%s", shipped_path);
    FILE *f = fopen(path, "r");
    if (!f)
        return fp_fail(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO, "open %s: %s", path,
                       strerror(errno));
    sqlite3 *db = NULL;
    int rc = open_ro(db_path, &db, err);
    char *line = rc < 0 ? NULL : malloc(BUNDLE_LINE_MAX);
    sqlite3_stmt *hs = NULL, *cs = NULL;
    if (rc < 0)
        goto out;
    if (!line) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    hs = prep(db, "SELECT hash FROM audit WHERE id=?1", err);
    cs = hs ? prep(db, "SELECT min(id), max(id) FROM audit", err) : NULL;
    if (!cs || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        goto out;
    }
    int64_t min_id = 0, max_id = 0;
    if (sqlite3_step(cs) == SQLITE_ROW) {
        min_id = sqlite3_column_int64(cs, 0);
        max_id = sqlite3_column_int64(cs, 1);
    }
    long n;
    int64_t lineno = 0;
    while (!v.done && (n = read_line(f, line, BUNDLE_LINE_MAX)) != -1) {
        lineno++;
        cJSON *o = n >= 0 ? cJSON_ParseWithLength(line, (size_t)n) : NULL;
        fp_audit_cp cp;
        if (!o || strcmp(json_type(o), "checkpoint") || parse_cp(o, &cp) < 0) {
            cJSON_Delete(o);
            if (n == 0)
                continue;
            found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "%s line %lld is not a checkpoint",
                  "%s 第 %lld 行不是检查点", path, (long long)lineno);
            break;
        }
        cJSON_Delete(o);
        rep->checkpoints++;
        if (!fp_audit_cp_valid(&cp, pk)) {
            found(&v, FP_AUDIT_CP_FORGED, 0, cp.id,
                  "shipped checkpoint %lld: signature invalid for this public key",
                  "已送出的第 %lld 号检查点签名与该公钥不符", (long long)cp.id);
            break;
        }
        rep->cp_id = cp.id;
        rep->cp_upto = cp.upto_id;
        memcpy(rep->cp_hash, cp.upto_hash, FP_AUDIT_HASH_LEN);
        /* the database's checkpoint of the same id, when it still has it,
         * must be the one shipped (a re-signed log renumbers or rewrites
         * them; a pruned log keeps its anchor) */
        fp_audit_cp mine;
        int have = cp_query(db, "WHERE id=?1", cp.id, &mine, err);
        if (have < 0) {
            rc = have;
            goto out;
        }
        if (have && (mine.upto_id != cp.upto_id ||
                     memcmp(mine.upto_hash, cp.upto_hash, FP_AUDIT_HASH_LEN) != 0)) {
            found(&v, FP_AUDIT_CP_MISMATCH, cp.upto_id, cp.id,
                  "checkpoint %lld in the database differs from its shipped copy: the log was "
                  "rewritten after it was shipped",
                  "数据库中的第 %lld 号检查点与已送出的副本不同：日志在送出后被改写",
                  (long long)cp.id);
            break;
        }
        if (cp.upto_id < min_id || cp.upto_id == 0)
            continue; /* pruned since (the database's own verify covers the anchor) */
        if (cp.upto_id > max_id) {
            found(&v, FP_AUDIT_TRUNCATED, cp.upto_id, cp.id,
                  "shipped checkpoint %lld covers record %lld, but the log ends at %lld "
                  "(truncated)",
                  "已送出的第 %lld 号检查点覆盖到第 %lld 条，而日志止于第 %lld 条（被截断）",
                  (long long)cp.id, (long long)cp.upto_id, (long long)max_id);
            break;
        }
        sqlite3_bind_int64(hs, 1, cp.upto_id);
        int step = sqlite3_step(hs);
        int same = step == SQLITE_ROW && sqlite3_column_bytes(hs, 0) == FP_AUDIT_HASH_LEN &&
                   !memcmp(sqlite3_column_blob(hs, 0), cp.upto_hash, FP_AUDIT_HASH_LEN);
        sqlite3_reset(hs);
        if (!same)
            found(&v, FP_AUDIT_CP_MISMATCH, cp.upto_id, cp.id,
                  "shipped checkpoint %lld disagrees with the log at record %lld: the log was "
                  "rewritten after it was shipped",
                  "已送出的第 %lld 号检查点与日志第 %lld 条不符：日志在送出后被改写",
                  (long long)cp.id, (long long)cp.upto_id);
    }
    rc = 0;
out:
    if (db)
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(hs);
    sqlite3_finalize(cs);
    sqlite3_close(db);
    free(line);
    fclose(f);
    return rc;
}
