/* verify.c — the offline side of the audit log: the verifier, fed by the
 * database here and by a bundle in bundle.c (export and listing in
 * export.c, shipping checkpoints in sink.c).
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
#include "internal.h"

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

/* Records the first finding; the two messages are printf pairs. */
int fp_av_found(verifier *v, fp_audit_kind k, int64_t record, int64_t cp, const char *en,
                const char *zh, ...)
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

void fp_av_genesis(verifier *v, fp_audit_report *rep, const unsigned char *pk)
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
int fp_av_anchor(verifier *v, const fp_audit_cp *cp, int pruned)
{
    v->last_cp_id = cp->id;
    if (!fp_audit_cp_valid(cp, v->pk))
        return fp_av_found(v, FP_AUDIT_CP_FORGED, 0, cp->id,
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

int fp_av_record(verifier *v, const fp_audit_row *r)
{
    if (v->done)
        return 1;
    long long id = (long long)r->id, want = (long long)v->next_id;
    if (r->id > v->next_id) {
        if (r->id == v->next_id + 1)
            return fp_av_found(v, FP_AUDIT_MISSING, v->next_id, 0,
                               "record %lld missing (gap %lld→%lld)",
                               "第 %lld 条记录缺失（%lld→%lld 之间断档）", want, want - 1, id);
        return fp_av_found(
            v, FP_AUDIT_MISSING, v->next_id, 0, "records %lld–%lld missing (gap %lld→%lld)",
            "第 %lld–%lld 条记录缺失（%lld→%lld 之间断档）", want, id - 1, want - 1, id);
    }
    if (r->id < v->next_id) /* only a bundle can repeat or go back */
        return fp_av_found(v, FP_AUDIT_REORDERED, r->id, 0,
                           "record %lld appears after record %lld (reordered)",
                           "第 %lld 条记录出现在第 %lld 条之后（顺序被改动）", id, want - 1);
    if (!r->hash && !r->prev_hash)
        return fp_av_found(v, FP_AUDIT_UNCHAINED, r->id, 0,
                           "record %lld has no hash (inserted outside the chain)",
                           "第 %lld 条记录没有哈希（绕过哈希链插入）", id);
    if (!r->hash || !r->prev_hash || r->hash_len != FP_AUDIT_HASH_LEN ||
        r->prev_len != FP_AUDIT_HASH_LEN)
        return fp_av_found(v, FP_AUDIT_ALTERED, r->id, 0,
                           "hash mismatch at record %lld (altered: a stored hash is not 32 bytes)",
                           "第 %lld 条记录哈希不符（被篡改：所存哈希不是 32 字节）", id);
    unsigned char h[FP_AUDIT_HASH_LEN];
    fp_audit_hash(r, r->prev_hash, h);
    int hash_ok = !memcmp(h, r->hash, FP_AUDIT_HASH_LEN);
    int prev_ok = !memcmp(r->prev_hash, v->head, FP_AUDIT_HASH_LEN);
    if (!hash_ok) {
        int64_t from = prev_ok ? 0 : v_moved_from(v, r);
        if (from)
            return fp_av_found(v, FP_AUDIT_REORDERED, r->id, 0,
                               "record %lld is out of place: it holds record %lld (reordered)",
                               "第 %lld 条记录位置不对：其内容是第 %lld 条（顺序被改动）", id,
                               (long long)from);
        return fp_av_found(v, FP_AUDIT_ALTERED, r->id, 0, "hash mismatch at record %lld (altered)",
                           "第 %lld 条记录哈希不符（被篡改）", id);
    }
    if (!prev_ok)
        return fp_av_found(
            v, FP_AUDIT_RELINKED, r->id, 0,
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

int fp_av_checkpoint(verifier *v, const fp_audit_cp *cp)
{
    if (v->done)
        return 1;
    long long id = (long long)cp->id, upto = (long long)cp->upto_id;
    if (cp->id > v->last_cp_id + 1)
        return fp_av_found(v, FP_AUDIT_CP_MISSING, 0, v->last_cp_id + 1,
                           "checkpoint %lld missing (gap %lld→%lld)",
                           "第 %lld 号检查点缺失（%lld→%lld 之间断档）",
                           (long long)v->last_cp_id + 1, (long long)v->last_cp_id, id);
    if (cp->id <= v->last_cp_id)
        return fp_av_found(v, FP_AUDIT_CP_MISMATCH, 0, cp->id,
                           "checkpoint %lld appears after checkpoint %lld (reordered)",
                           "第 %lld 号检查点出现在第 %lld 号之后（顺序被改动）", id,
                           (long long)v->last_cp_id);
    v->last_cp_id = cp->id;
    if (!fp_audit_cp_valid(cp, v->pk))
        return fp_av_found(v, FP_AUDIT_CP_FORGED, 0, cp->id,
                           "checkpoint %lld: signature invalid (forged or altered)",
                           "第 %lld 号检查点签名无效（伪造或被改动）", id);
    if (cp->upto_id <= v->last_cp_upto)
        return fp_av_found(v, FP_AUDIT_CP_MISMATCH, 0, cp->id,
                           "checkpoint %lld covers records up to %lld, not beyond the %lld of the "
                           "checkpoint before it",
                           "第 %lld 号检查点只覆盖到第 %lld 条记录，没有超过前一检查点的第 %lld 条",
                           id, upto, (long long)v->last_cp_upto);
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
        return fp_av_found(v, FP_AUDIT_BAD_BUNDLE, 0, cp->id,
                           "checkpoint %lld (records up to %lld) is out of place after record %lld",
                           "第 %lld 号检查点（覆盖到第 %lld 条）位置不对，出现在第 %lld 条之后", id,
                           upto, (long long)v->next_id - 1);
    if (memcmp(cp->upto_hash, v->head, FP_AUDIT_HASH_LEN))
        return fp_av_found(
            v, FP_AUDIT_CP_MISMATCH, v->last_cp_upto + 1, cp->id,
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

void fp_av_end(verifier *v)
{
    fp_audit_report *r = v->rep;
    int64_t end = v->next_id - 1;
    r->unsigned_tail = end - (r->cp_id ? r->cp_upto : v->start - 1);
    if (r->unsigned_tail < 0)
        r->unsigned_tail = 0;
    if (v->done)
        return;
    if (v->have_trunc) {
        fp_av_found(
            v, FP_AUDIT_TRUNCATED, end + 1, v->trunc.id,
            "checkpoint %lld covers records up to %lld but the log ends at %lld (truncated)",
            "第 %lld 号检查点覆盖到第 %lld 条记录，但日志止于第 %lld 条（尾部被截断）",
            (long long)v->trunc.id, (long long)v->trunc.upto_id, (long long)end);
        return;
    }
    if (v->prune_upto && !v->prune_seen)
        fp_av_found(
            v, FP_AUDIT_MISSING, 1, v->prune_cp,
            "records 1–%lld missing: the log starts after checkpoint %lld but no audit.prune "
            "record accounts for it",
            "第 1–%lld 条记录缺失：日志从第 %lld 号检查点之后开始，但没有 audit.prune 记录说明",
            (long long)v->prune_upto, (long long)v->prune_cp);
}

/* ---- the database, through the store (store.h fp_store_audit_snapshot) ---- */

int fp_av_snapshot(const char *db_path, int (*fn)(fp_audit_snap *a, void *arg), void *arg,
                   fp_err *err)
{
    if (!fp_store_is_url(db_path) && access(db_path, F_OK) != 0)
        return fp_fail(err, FP_ENOTFOUND, "%s: %s", db_path, strerror(errno));
    /* read-only: no migration, no writer, not a byte of the files changed */
    fp_store_opts o = {.path = db_path, .read_conns = 1, .read_only = 1};
    fp_store *s = NULL;
    int rc = fp_store_open(&o, &s, err);
    if (rc < 0)
        return rc;
    rc = fp_store_audit_snapshot(s, fn, arg, err);
    fp_store_close(s);
    return rc;
}

static int find_in_snap(void *arg, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id)
{
    fp_audit_snap *a = arg;
    return a->find_hash(a, h, id);
}

static int feed_row(const fp_audit_row *r, void *arg)
{
    verifier *v = arg;
    fp_av_record(v, r);
    return v->done;
}

static int feed_cp(const fp_audit_cp *cp, void *arg)
{
    verifier *v = arg;
    fp_av_checkpoint(v, cp);
    return v->done;
}

typedef struct verify_job {
    verifier v;
    int64_t from_cp;
    int chain_only; /* without the invoices' clock check */
    fp_err *err;
} verify_job;

/* Where the walk starts: after checkpoint from_cp, after the anchor of a
 * pruned log, or at the first record.  0, or an error; a finding (the
 * pruned beginning unaccounted for) ends the walk through v.done. */
static int verify_start(fp_audit_snap *a, verify_job *j, fp_audit_scan *q)
{
    verifier *v = &j->v;
    fp_audit_cp cp;
    int rc;
    if (j->from_cp > 0) {
        if ((rc = a->cp(a, FP_CP_ID, j->from_cp, &cp, j->err)) <= 0)
            return rc < 0 ? rc
                          : fp_fail(j->err, FP_ENOTFOUND, "there is no checkpoint %lld",
                                    (long long)j->from_cp);
        fp_av_anchor(v, &cp, 0);
        q->from = cp.upto_id + 1;
        q->cp_after = cp.id;
        return 0;
    }
    int64_t first = 0, last = 0;
    if ((rc = a->bounds(a, &first, &last, j->err)) == FP_ENOTFOUND)
        return 0; /* an empty log: only checkpoints to look at */
    if (rc < 0 || (rc = a->cp(a, FP_CP_AFTER_ID, 0, &cp, j->err)) < 0)
        return rc;
    int have_cp = rc;
    if (first <= 1)
        return 0;
    /* the beginning was pruned: the oldest checkpoint must end right
     * before the first record (and an audit.prune record must say so) */
    if (have_cp && cp.upto_id == first - 1) {
        fp_av_anchor(v, &cp, 1);
        q->from = cp.upto_id + 1;
        q->cp_after = cp.id;
        return 0;
    }
    long long miss = have_cp && cp.upto_id < first - 1 ? cp.upto_id + 1 : 1;
    if (miss == first - 1)
        fp_av_found(v, FP_AUDIT_MISSING, miss, 0,
                    "record %lld missing (the log starts at record %lld)",
                    "第 %lld 条记录缺失（日志从第 %lld 条开始）", miss, (long long)first);
    else
        fp_av_found(v, FP_AUDIT_MISSING, miss, 0,
                    "records %lld–%lld missing (the log starts at record %lld)",
                    "第 %lld–%lld 条记录缺失（日志从第 %lld 条开始）", miss, (long long)first - 1,
                    (long long)first);
    return 0;
}

static int verify_snap(fp_audit_snap *a, void *arg)
{
    verify_job *j = arg;
    verifier *v = &j->v;
    v->find = find_in_snap;
    v->find_arg = a;
    fp_audit_scan q = {.from = 1, .on_row = feed_row, .on_cp = feed_cp, .arg = v};
    int rc = verify_start(a, j, &q);
    if (rc == 0 && !v->done)
        rc = a->scan(a, &q, j->err);
    if (rc < 0)
        return rc;
    fp_av_end(v);
    if (!j->chain_only)
        a->invoices_back(a, FP_AUDIT_TS_TOLERANCE, &v->rep->inv_back, &v->rep->inv_back_max,
                         v->rep->inv_back_first, sizeof v->rep->inv_back_first);
    return 0;
}

int fp_audit_verify_db(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN],
                       int64_t from_cp, fp_audit_report *rep, fp_err *err)
{
    verify_job j = {.from_cp = from_cp, .err = err};
    fp_av_genesis(&j.v, rep, pk);
    int rc = fp_av_snapshot(db_path, verify_snap, &j, err);
    return rc < 0 ? rc : 0;
}

int fp_audit_verify_store(fp_store *s, const unsigned char pk[FP_AUDIT_KEY_LEN], int64_t from_cp,
                          fp_audit_report *rep, fp_err *err)
{
    verify_job j = {.from_cp = from_cp, .chain_only = 1, .err = err};
    fp_av_genesis(&j.v, rep, pk);
    int rc = fp_store_audit_snapshot(s, verify_snap, &j, err);
    return rc < 0 ? rc : 0;
}
