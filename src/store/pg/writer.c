/* writer.c — the PostgreSQL backend's writer: the queue, group commit, the
 * audit chain's append and the issue clock.
 *
 * One writer connection per node, one writer thread: everything queued
 * while the previous COMMIT ran goes into the next transaction, so one
 * WAL flush (and, with a synchronous standby, one round trip to it)
 * acknowledges many invoices.  Per batch the transaction locks, FOR UPDATE:
 *   - the audit chain's head row (audit_head) and the issue clock's row,
 *     so that every node appends to one chain and moves one mark;
 *   - each seller's current range row at its first request in the batch,
 *     so numbers are never reused or skipped across nodes.
 * Per request one prepared statement inserts the invoice (ON CONFLICT on
 * (seller_id, serial) DO NOTHING: the idempotency record; a conflict with
 * another node's transaction waits for it), its audit record and its
 * outbox jobs.  The statements of a batch go in libpq's pipeline mode, 64
 * per round trip, numbered as if every key were new; when one was not (or
 * a range runs out, or a red invoice is in the batch) the batch is rolled
 * back and written again one request at a time, so a number is never
 * skipped.  Nothing is answered before COMMIT returns; any error rolls
 * the whole batch back and fails every request of it (their clients retry
 * with the same keys, which is always safe).  Nothing read is kept after
 * the transaction, so after a lost connection there is no cache to drop:
 * the connection is reset before the next batch. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fapiao/clock.h"
#include "fapiao/jobs.h"
#include "fapiao/metrics.h"
#include "internal.h"

/* ---- transactions on the writer connection (wlock held) ---- */

static int head_lock(fp_pg *s, fp_err *err);
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
        rc = head_lock(s, err);
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
static int head_lock(fp_pg *s, fp_err *err)
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
    int rc = head_lock(s, err);
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

/* ---- the batch ---- */

typedef struct range_slot {
    int64_t seller_id, id, next, last;
    char prefix[6];
    int dirty;
} range_slot;

typedef struct pg_batch {
    range_slot ranges[64];
    int nranges;
    int64_t mark, confirmed; /* the issue clock as locked */
    int64_t mark0;           /* the mark at the batch's start */
} pg_batch;

static void set_failed(fp_issue_req *r, const char *why)
{
    if (r->result == FP_ISSUE_CREATED && r->doc.json == NULL) {
        r->doc.json = r->response; /* give the document back for free() */
        r->response = NULL;
    }
    free(r->response);
    r->response = NULL;
    r->result = FP_ISSUE_FAILED;
    r->number[0] = 0;
    snprintf(r->error, sizeof r->error, "%.120s", why);
}

static int flush_range(fp_pg *s, range_slot *rs)
{
    if (!rs->dirty)
        return 0;
    pg_params p = {0};
    pg_i64(&p, rs->id);
    pg_i64(&p, rs->next);
    rs->dirty = 0;
    return pg_exec(s->w, "UPDATE number_ranges SET next=$2 WHERE id=$1", &p, NULL);
}

/* The seller's range for issue time t, its row locked: NULL when exhausted
 * (*err 0) or on an error (*err < 0). */
static range_slot *range_for(fp_pg *s, pg_batch *b, int64_t seller_id, int64_t t, int *err)
{
    char yy[3];
    pg_current_yy(yy, t);
    *err = 0;
    range_slot *rs = NULL;
    for (int i = 0; i < b->nranges && !rs; i++)
        if (b->ranges[i].seller_id == seller_id)
            rs = &b->ranges[i];
    if (rs && rs->next <= rs->last && !memcmp(rs->prefix, yy, 2))
        return rs;
    if (rs && flush_range(s, rs) < 0) { /* the used-up range must read as used up */
        *err = FP_EIO;
        return NULL;
    }
    if (!rs && b->nranges == (int)(sizeof b->ranges / sizeof b->ranges[0])) {
        for (int i = 0; i < b->nranges; i++)
            if (flush_range(s, &b->ranges[i]) < 0) {
                *err = FP_EIO;
                return NULL;
            }
        b->nranges = 0;
    }
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_text(&p, yy);
    int rc;
    PGresult *r = pg_q(s->w,
                       "SELECT id, prefix, next, last FROM number_ranges "
                       "WHERE seller_id=$1 AND next <= last AND substr(prefix, 1, 2) = $2 "
                       "ORDER BY id LIMIT 1 FOR UPDATE",
                       &p, &rc, NULL);
    if (!r) {
        *err = FP_EIO;
        return NULL;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        return NULL;
    }
    if (!rs)
        rs = &b->ranges[b->nranges++];
    rs->seller_id = seller_id;
    rs->id = pg_int(r, 0, 0);
    pg_col(r, 0, 1, rs->prefix, sizeof rs->prefix);
    rs->next = pg_int(r, 0, 2);
    rs->last = pg_int(r, 0, 3);
    rs->dirty = 0;
    PQclear(r);
    return rs;
}

/* A request whose serial exists: the stored response for the same body,
 * else KEY_REUSED.  FP_ENOTFOUND when the serial is new. */
static int answer_existing(fp_pg *s, fp_issue_req *r)
{
    pg_params p = {0};
    pg_i64(&p, r->seller_id);
    pg_text(&p, r->serial);
    int rc;
    PGresult *res = pg_q(s->w,
                         "SELECT request_hash, doc, number FROM invoices "
                         "WHERE seller_id=$1 AND serial=$2",
                         &p, &rc, NULL);
    if (!res)
        return FP_EIO;
    unsigned char h[32];
    if (PQntuples(res) == 0) {
        rc = FP_ENOTFOUND;
    } else if (pg_bytea(res, 0, 0, h, 32) == 0 && !memcmp(h, r->request_hash, 32)) {
        size_t n = (size_t)PQgetlength(res, 0, 1);
        free(r->response);
        r->response = malloc(n + 1);
        if (r->response) {
            memcpy(r->response, PQgetvalue(res, 0, 1), n + 1);
            r->response_len = n;
            r->result = FP_ISSUE_REPLAY;
            pg_col(res, 0, 2, r->number, sizeof r->number);
        } else {
            rc = FP_ENOMEM;
        }
    } else {
        r->result = FP_ISSUE_KEY_REUSED;
    }
    PQclear(res);
    return rc;
}

static void cst_text(int64_t t, char out[32])
{
    struct tm tm;
    fp_cst_tm(t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

static void clock_read(fp_pg *s, int64_t *wall, int64_t *boot)
{
    if (s->o.clock_now) {
        s->o.clock_now(wall, boot);
        return;
    }
    *boot = fp_boot_ns() / 1000000000;
    *wall = fp_wall_s();
}

/* The issue clock (docs/operations.md, "Clock") against the mark locked in
 * this transaction: 0 with r->issued_at set, 1 when r is refused. */
static int clock_take(fp_pg *s, pg_batch *b, fp_issue_req *r)
{
    int64_t wall, boot, t = 0;
    clock_read(s, &wall, &boot);
    s->clock.mark = b->mark;
    fp_clock_verdict v = fp_issue_clock_decide(&s->clock, r->issued_at, boot, &t);
    if (v == FP_CLOCK_JUMPED && b->confirmed > s->clock_confirmed) {
        s->clock_confirmed = b->confirmed;
        if (llabs(r->issued_at - b->confirmed) <= s->clock.jump_s) {
            s->clock.base_wall = r->issued_at;
            s->clock.base_boot = boot;
            v = fp_issue_clock_decide(&s->clock, r->issued_at, boot, &t);
        }
    }
    if (v != FP_CLOCK_OK) {
        r->result = v == FP_CLOCK_BEHIND ? FP_ISSUE_CLOCK_BEHIND : FP_ISSUE_CLOCK_JUMPED;
        r->clock_mark = b->mark;
        int64_t wait = v == FP_CLOCK_BEHIND ? b->mark - s->clock.step_s - r->issued_at : 60;
        r->clock_retry_s = wait < 1 ? 1 : wait > 3600 ? 3600 : (int)wait;
        return 1;
    }
    if (t != r->issued_at && r->doc.json) {
        static const char key[] = "\"issued_at\":\"";
        char *at = memmem(r->doc.json, r->doc.len, key, sizeof key - 1);
        char txt[32];
        cst_text(t, txt);
        size_t n = strlen(txt);
        if (at && (size_t)(at - r->doc.json) + sizeof key - 1 + n < r->doc.len &&
            at[sizeof key - 1 + n] == '"')
            memcpy(at + sizeof key - 1, txt, n);
    }
    r->issued_at = t;
    if (t > b->mark)
        b->mark = t;
    s->clock.base_wall = t;
    s->clock.base_boot = boot;
    return 0;
}

/* A red invoice consumes its form, locked: a replay first, else the form
 * must be ready.  0 to go on, 1 when r is answered, FP_EIO. */
static int red_precheck(fp_pg *s, fp_issue_req *r)
{
    int found = answer_existing(s, r);
    if (found != FP_ENOTFOUND)
        return found == 0 ? 1 : FP_EIO;
    pg_params p = {0};
    pg_i64(&p, r->red_form_id);
    int rc;
    PGresult *res = pg_q(s->w, "SELECT state FROM red_forms WHERE id=$1 FOR UPDATE", &p, &rc, NULL);
    if (!res)
        return FP_EIO;
    fp_red_state rs;
    int ok = PQntuples(res) == 1 && fp_red_state_parse(PQgetvalue(res, 0, 0), &rs) == 0 &&
             fp_red_issuable(rs);
    PQclear(res);
    if (!ok) {
        r->result = FP_ISSUE_FORM_STATE;
        return 1;
    }
    return 0;
}

/* The invoice, its audit record and its outbox jobs (a render, and a
 * notify blocked behind it when the issuing client has a webhook; the fair
 * tag as in src/store/sqlite/internal.h FP_JOBS_FAIR_TAG), in one
 * statement.  With notify_early ($22 = 1; jobs.h) the notify is pending at
 * once with event invoice.issued, its fair tag right after its render's
 * (what FP_JOBS_FAIR_TAG gives once the render's tag is in: the CTEs do
 * not see each other's rows).  Nothing but the invoice is inserted when the serial exists:
 * the statement then returns 0. */
static const char issue_sql[] =
    "WITH inv AS ("
    "  INSERT INTO invoices(number, seller_id, serial, request_hash, status, invoice_type, "
    "    buyer_tax_id, total_with_tax, issued_at, doc, color, original_number) "
    "  VALUES($1, $2, $3, $4, 'accepted', $5, $6, $7, $8, $9, $10, $11) "
    "  ON CONFLICT (seller_id, serial) DO NOTHING RETURNING number), "
    "aud AS ("
    "  INSERT INTO audit(id, ts, actor, action, target, request_id, client_ip, outcome, "
    "    prev_hash, hash, seller_id, client_request_id) "
    "  SELECT $12, $8, $13, $14, $1, $15, $16, 'created', $17, $18, $2, $19 FROM inv), "
    "rnd AS ("
    "  INSERT INTO jobs(invoice_number, seller_id, client_id, kind, state, next_at, first_at, "
    "    updated_at, cost, fair_tag) "
    "  SELECT $1, $2, $13, 'render', 'pending', $20, $20, $20, $21, "
    "    greatest(coalesce((SELECT min(fair_tag) FROM jobs WHERE fair_tag IS NOT NULL), 0), "
    "      coalesce((SELECT max(fair_tag) FROM jobs WHERE seller_id = $2 "
    "        AND fair_tag IS NOT NULL), 0)) + $21 FROM inv RETURNING id, fair_tag), "
    "ntf AS ("
    "  INSERT INTO jobs(invoice_number, seller_id, client_id, kind, event, event_id, after_job, "
    "    state, next_at, first_at, updated_at, cost, fair_tag) "
    "  SELECT $1, $2, $13, 'notify', 'invoice.' || ev, 'evt_' || $1 || '_' || ev, rnd.id, "
    "    CASE WHEN $22 = 1 THEN 'pending' ELSE 'blocked' END, $20, $20, $20, "
    "    CASE WHEN $22 = 1 THEN $23 ELSE 1 END, "
    "    CASE WHEN $22 = 1 THEN rnd.fair_tag + $23 END "
    "  FROM rnd, clients, (SELECT CASE WHEN $22 = 1 THEN 'issued' ELSE 'rendered' END) e(ev) "
    "  WHERE clients.client_id = $13 AND coalesce(clients.webhook_url, '') <> '') "
    "SELECT count(*) FROM inv";

/* A request's number, audit hash and statement parameters: 1 ready to
 * send (the range and the chain's head moved on as if it will be
 * inserted), 0 answered already (the clock refused it), 2 it needs the
 * one-by-one path (red, exhausted), or FP_EIO. */
static int issue_prepare(fp_pg *s, pg_batch *b, fp_issue_req *r, int take_clock, pg_params *p,
                         unsigned char prev[FP_AUDIT_HASH_LEN], unsigned char h[FP_AUDIT_HASH_LEN],
                         range_slot **rsp)
{
    if (take_clock && clock_take(s, b, r))
        return 0;
    if (take_clock && r->red_form_id)
        return 2;
    int err;
    range_slot *rs = range_for(s, b, r->seller_id, r->issued_at, &err);
    if (!rs)
        return err < 0 ? FP_EIO : 2;
    snprintf(r->number, sizeof r->number, "%s%015" PRId64, rs->prefix, rs->next);
    fp_doc_patch_number(&r->doc, r->number);
    fp_audit_rec a = {.ts = r->issued_at,
                      .actor = r->actor,
                      .action = r->red_form_id ? "invoice.issue_red" : "invoice.issue",
                      .target = r->number,
                      .request_id = r->request_id,
                      .client_ip = r->client_ip,
                      .outcome = "created",
                      .seller_id = r->seller_id,
                      .client_request_id = r->client_request_id[0] ? r->client_request_id : NULL};
    fp_audit_row row;
    memcpy(prev, s->tx.last_hash, FP_AUDIT_HASH_LEN); /* kept: p points at it */
    fp_audit_row_from_rec(&row, s->tx.last_id + 1, &a);
    fp_audit_hash(&row, prev, h);
    int64_t now = fp_steady_ms(); /* job times: the steady wall clock (jobs.h) */
    memset(p, 0, sizeof *p);
    pg_text(p, r->number);                                       /* 1 */
    pg_i64(p, r->seller_id);                                     /* 2 */
    pg_text(p, r->serial);                                       /* 3 */
    pg_bin(p, r->request_hash, 32);                              /* 4 */
    pg_text(p, r->invoice_type);                                 /* 5 */
    pg_text(p, r->buyer_tax_id[0] ? r->buyer_tax_id : NULL);     /* 6 */
    pg_i64(p, r->total_with_tax);                                /* 7 */
    pg_i64(p, r->issued_at);                                     /* 8 */
    pg_text(p, r->doc.json);                                     /* 9 */
    pg_text(p, r->red_form_id ? "red" : "blue");                 /* 10 */
    pg_text(p, r->red_form_id ? r->original_number : NULL);      /* 11 */
    pg_i64(p, row.id);                                           /* 12 */
    pg_text(p, r->actor);                                        /* 13 */
    pg_text(p, a.action);                                        /* 14 */
    pg_text(p, r->request_id);                                   /* 15 */
    pg_text(p, r->client_ip);                                    /* 16 */
    pg_bin(p, prev, FP_AUDIT_HASH_LEN);                          /* 17 */
    pg_bin(p, h, FP_AUDIT_HASH_LEN);                             /* 18 */
    pg_text(p, a.client_request_id);                             /* 19 */
    pg_i64(p, now);                                              /* 20 */
    pg_i64(p, FP_JOB_BASE_COST + (r->lines > 0 ? r->lines : 1)); /* 21 */
    pg_i64(p, atomic_load(&s->notify_early) != 0);               /* 22 */
    pg_i64(p, FP_JOB_BASE_COST);                                 /* 23 */
    /* as if inserted: the next request links to this one; the caller
     * rolls back when it was not */
    s->tx.last_id = row.id;
    memcpy(s->tx.last_hash, h, FP_AUDIT_HASH_LEN);
    s->tx.head_dirty = 1;
    rs->next++;
    rs->dirty = 1;
    *rsp = rs;
    return 1;
}

static void set_created(fp_issue_req *r)
{
    r->result = FP_ISSUE_CREATED;
    r->response = r->doc.json;
    r->response_len = r->doc.len;
    r->doc.json = NULL;
}

/* One request, one round trip at a time: the path for red invoices, an
 * exhausted range and a key used before (its conflict is answered). */
/* issue_sql's parameter types, in the order issue_prepare fills them */
static const Oid issue_types[23] = {25, 20, 25, 17, 25, 25, 20, 20, 25, 25, 25, 20,
                                    25, 25, 25, 25, 17, 17, 25, 20, 20, 20, 20};

/* issue_sql prepared once per connection (planning it costs about as much
 * as running it); again after a reset, which drops it. */
static int issue_prepared(fp_pg *s)
{
    if (s->w_prepared == PQbackendPID(s->w))
        return 0;
    PGresult *r = PQprepare(s->w, "fp_issue", issue_sql, 23, issue_types);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return FP_EIO;
    s->w_prepared = PQbackendPID(s->w);
    return 0;
}

static PGresult *issue_exec(fp_pg *s, const pg_params *p)
{
    if (issue_prepared(s) < 0)
        return NULL;
    return PQexecPrepared(s->w, "fp_issue", p->n, p->v, p->len, p->fmt, 0);
}

static int issue_one(fp_pg *s, pg_batch *b, fp_issue_req *r)
{
    if (r->red_form_id) {
        if (clock_take(s, b, r))
            return 0;
        int pre = red_precheck(s, r);
        if (pre != 0)
            return pre < 0 ? FP_EIO : 0;
    }
    /* the chain's head and the range as they are before this request */
    int64_t last_id = s->tx.last_id;
    unsigned char last_hash[FP_AUDIT_HASH_LEN], prev[FP_AUDIT_HASH_LEN], h[FP_AUDIT_HASH_LEN];
    memcpy(last_hash, s->tx.last_hash, sizeof last_hash);
    int dirty = s->tx.head_dirty;
    pg_params p;
    range_slot *rs = NULL;
    int prep = issue_prepare(s, b, r, !r->red_form_id, &p, prev, h, &rs);
    if (prep <= 0)
        return prep;
    if (prep == 2) { /* exhausted, unless the key was used before: that still replays */
        int found = answer_existing(s, r);
        if (found == FP_ENOTFOUND)
            r->result = FP_ISSUE_EXHAUSTED;
        return found == 0 || found == FP_ENOTFOUND ? 0 : FP_EIO;
    }
    PGresult *res = issue_exec(s, &p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        r->number[0] = 0;
        return FP_EIO;
    }
    int inserted = pg_int(res, 0, 0) == 1;
    PQclear(res);
    if (!inserted) { /* nothing inserted: the number and the link are not used */
        r->number[0] = 0;
        s->tx.last_id = last_id;
        memcpy(s->tx.last_hash, last_hash, sizeof last_hash);
        s->tx.head_dirty = dirty;
        rs->next--;
        return answer_existing(s, r) == 0 ? 0 : FP_EIO;
    }
    if (r->red_form_id) {
        pg_params u = {0};
        pg_i64(&u, r->red_form_id);
        pg_text(&u, r->number);
        if (pg_exec(s->w, "UPDATE red_forms SET state='issued', red_number=$2 WHERE id=$1", &u,
                    NULL) < 0)
            return FP_EIO;
    }
    set_created(r);
    return 0;
}

static void outcome(fp_pg *s, int ok)
{
    pthread_mutex_lock(&s->hooklock);
    if (s->outcome_hook)
        s->outcome_hook(ok, s->outcome_hook_arg);
    pthread_mutex_unlock(&s->hooklock);
}

static void sleep_ms(int ms)
{
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The batch's transaction: BEGIN, the locks, every request, the ranges and
 * the clock written back, COMMIT.  0 when committed. */
/* BEGIN, then the chain's head and the issue clock locked (one lock order
 * on every node). */
static int batch_begin(fp_pg *s, pg_batch *b, fp_err *err)
{
    memset(b, 0, sizeof *b);
    int rc = pg_tx_begin(s, err);
    if (rc < 0)
        return rc;
    if ((rc = head_lock(s, err)) < 0)
        goto fail;
    PGresult *r = pg_q(s->w,
                       "SELECT mark, coalesce(confirmed_at, 0) FROM issue_clock WHERE id=1 "
                       "FOR UPDATE",
                       NULL, &rc, err);
    if (!r)
        goto fail;
    if (PQntuples(r) == 1) {
        b->mark = pg_int(r, 0, 0);
        b->confirmed = pg_int(r, 0, 1);
    }
    PQclear(r);
    b->mark0 = b->mark;
    return 0;
fail:
    pg_tx_rollback(s);
    return rc;
}

/* The ranges and the clock written back, the injected faults, COMMIT
 * (rolled back on any failure). */
static int batch_commit(fp_pg *s, pg_batch *b, fp_err *err)
{
    int rc = 0;
    for (int i = 0; i < b->nranges && rc == 0; i++)
        if ((rc = flush_range(s, &b->ranges[i])) < 0)
            fp_fail(err, rc, "postgresql: %s", PQerrorMessage(s->w));
    if (rc == 0 && b->mark > b->mark0) {
        pg_params p = {0};
        pg_i64(&p, b->mark);
        rc = pg_exec(s->w, "UPDATE issue_clock SET mark=$1 WHERE id=1 AND mark < $1", &p, err);
    }
    if (rc == 0) {
        sleep_ms(atomic_load(&s->fault_write_delay_ms));
        if (atomic_load(&s->fault_write_fail))
            rc = fp_fail(err, FP_EIO, "injected fault: store write");
    }
    if (rc < 0) {
        pg_tx_rollback(s);
        return rc;
    }
    if ((rc = pg_tx_commit(s, err)) < 0)
        return rc;
    sleep_ms(atomic_load(&s->fault_fsync_delay_ms));
    return 0;
}

/* One request after the other, each answered before the next is sent. */
static int write_batch(fp_pg *s, fp_issue_req *head, int *created, fp_err *err)
{
    pg_batch b;
    int rc = batch_begin(s, &b, err);
    if (rc < 0)
        return rc;
    for (fp_issue_req *q = head; q; q = q->next) {
        if ((rc = issue_one(s, &b, q)) < 0) {
            fp_fail(err, rc, "postgresql: %s", PQerrorMessage(s->w));
            pg_tx_rollback(s);
            return rc;
        }
        *created |= q->result == FP_ISSUE_CREATED;
    }
    return batch_commit(s, &b, err);
}

#define PIPE_CHUNK 64

/* The usual batch in a few round trips (libpq's pipeline mode, PIPE_CHUNK
 * statements each), assuming every key is new.  A key used before (its
 * statement inserted nothing), a red invoice or a range running out sends
 * the whole batch back (*again = 1, rolled back, nothing answered) to
 * write_batch, which answers those one by one. */
static int write_batch_piped(fp_pg *s, fp_issue_req *head, int n, int *created, int *again,
                             fp_err *err)
{
    *again = 0;
    for (fp_issue_req *q = head; q; q = q->next)
        if (q->red_form_id) {
            *again = 1;
            return 0;
        }
    pg_batch b;
    int rc = batch_begin(s, &b, err);
    if (rc < 0)
        return rc;
    struct piped {
        fp_issue_req *r;
        pg_params p;
        unsigned char prev[FP_AUDIT_HASH_LEN], h[FP_AUDIT_HASH_LEN];
    } *ps = malloc(sizeof *ps * (size_t)n);
    int m = 0, bad = 0;
    if (!ps) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    for (fp_issue_req *q = head; q; q = q->next) {
        range_slot *rs;
        int prep = issue_prepare(s, &b, q, 1, &ps[m].p, ps[m].prev, ps[m].h, &rs);
        if (prep < 0) {
            rc = fp_fail(err, FP_EIO, "postgresql: %s", PQerrorMessage(s->w));
            goto fail;
        }
        if (prep == 2) {
            *again = 1;
            goto fail;
        }
        if (prep == 1)
            ps[m++].r = q;
    }
    if (m && (issue_prepared(s) < 0 || !PQenterPipelineMode(s->w))) {
        rc = fp_fail(err, FP_EIO, "postgresql: cannot enter pipeline mode");
        goto fail;
    }
    for (int i = 0; i < m && !bad; i += PIPE_CHUNK) {
        int k = m - i < PIPE_CHUNK ? m - i : PIPE_CHUNK, sent = 0;
        for (int j = 0; j < k; j++) {
            pg_params *p = &ps[i + j].p;
            sent += PQsendQueryPrepared(s->w, "fp_issue", p->n, p->v, p->len, p->fmt, 0);
        }
        if (sent < k || !PQpipelineSync(s->w)) {
            bad = 2;
            break;
        }
        for (int j = 0; j < k; j++) {
            PGresult *res = PQgetResult(s->w);
            ExecStatusType st = PQresultStatus(res);
            if (st != PGRES_TUPLES_OK)
                bad = bad ? bad : 2; /* an error; the rest of the chunk is aborted */
            else if (pg_int(res, 0, 0) != 1)
                bad = bad ? bad : 1; /* a key used before */
            if (st == PGRES_FATAL_ERROR)
                fp_fail(err, FP_EIO, "postgresql: %s", PQresultErrorMessage(res));
            PQclear(res);
            while ((res = PQgetResult(s->w))) /* to the end of this statement */
                PQclear(res);
        }
        PGresult *sync = PQgetResult(s->w);
        if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
            bad = 2;
        PQclear(sync);
    }
    if (m && !PQexitPipelineMode(s->w))
        bad = 2;
    if (bad == 1) {
        *again = 1;
        goto fail;
    }
    if (bad) {
        rc = err && err->msg[0] ? FP_EIO : fp_fail(err, FP_EIO, "postgresql: pipeline failed");
        goto fail;
    }
    for (int i = 0; i < m; i++) {
        set_created(ps[i].r);
        *created = 1;
    }
    free(ps);
    return batch_commit(s, &b, err);
fail:
    free(ps);
    if (PQpipelineStatus(s->w) != PQ_PIPELINE_OFF) {
        PGresult *res;
        while ((res = PQgetResult(s->w)))
            PQclear(res);
        PQexitPipelineMode(s->w);
    }
    pg_tx_rollback(s);
    if (*again) /* nothing of it stays: the one-by-one path starts afresh */
        for (fp_issue_req *q = head; q; q = q->next) {
            q->result = FP_ISSUE_PENDING;
            q->number[0] = 0;
        }
    return *again ? 0 : rc;
}

static void run_batch(fp_pg *s, fp_issue_req *head, int n)
{
    fp_err err = {0};
    int created = 0;
    int64_t t0 = fp_mono_us();
    int again = 0;
    int rc = write_batch_piped(s, head, n, &created, &again, &err);
    if (rc == 0 && again)
        rc = write_batch(s, head, &created, &err);
    int64_t us = fp_mono_us() - t0;
    pthread_mutex_unlock(&s->wlock);
    atomic_fetch_add(&s->commit_us_total, (uint64_t)us);
    atomic_store(&s->last_commit_us, us);
    fp_hist_observe(atomic_load(&s->h_commit), us);
    fp_hist_observe(atomic_load(&s->h_batch), n);
    atomic_fetch_add(&s->commits, 1);
    atomic_fetch_add(&s->requests, (uint64_t)n);
    uint64_t mb = atomic_load(&s->max_batch);
    while ((uint64_t)n > mb && !atomic_compare_exchange_weak(&s->max_batch, &mb, (uint64_t)n))
        ;
    outcome(s, rc == 0);
    if (rc < 0)
        for (fp_issue_req *r = head; r; r = r->next)
            set_failed(r, err.msg[0] ? err.msg : "store write failed");
    else if (created && s->job_hook)
        s->job_hook(s->job_hook_arg);
    /* from here no request of the batch is answered early any more */
    pthread_mutex_lock(&s->qlock);
    s->batch = NULL;
    pthread_mutex_unlock(&s->qlock);
    /* answer only now: everything above is committed or rolled back */
    for (fp_issue_req *r = head, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        if (atomic_load(&r->early))
            fp_issue_req_release(r); /* answered at its deadline already */
        else
            r->done(r, r->arg);
    }
}

static void *writer_main(void *arg)
{
    fp_pg *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->qlock);
        while (!s->qhead && !s->stopping)
            pthread_cond_wait(&s->qcond, &s->qlock);
        if (!s->qhead) {
            pthread_mutex_unlock(&s->qlock);
            break;
        }
        pthread_mutex_unlock(&s->qlock);
        pthread_mutex_lock(&s->wlock);
        pthread_mutex_lock(&s->qlock);
        fp_issue_req *head = s->qhead, *tail = head;
        int n = 1;
        while (tail->next && n < s->o.max_batch) {
            tail = tail->next;
            n++;
        }
        s->qhead = tail->next;
        if (!s->qhead)
            s->qtail = NULL;
        tail->next = NULL;
        s->batch = head;
        pthread_mutex_unlock(&s->qlock);
        run_batch(s, head, n); /* releases wlock */
    }
    return NULL;
}

void pg_store_submit(void *be, fp_issue_req *r)
{
    fp_pg *s = be;
    r->next = NULL;
    r->result = FP_ISSUE_PENDING;
    atomic_store(&r->early, 0);
    atomic_store(&r->refs, 0);
    r->deadline_ms = s->o.write_deadline_ms > 0 ? fp_mono_ms() + s->o.write_deadline_ms : 0;
    pthread_mutex_lock(&s->qlock);
    if (s->stopping || s->draining[0] || !s->writer_started) {
        char why[sizeof s->draining];
        snprintf(why, sizeof why, "%s",
                 s->draining[0]      ? s->draining
                 : s->writer_started ? "store is shutting down"
                                     : "store is read-only");
        pthread_mutex_unlock(&s->qlock);
        set_failed(r, why);
        r->done(r, r->arg);
        return;
    }
    if (s->qtail)
        s->qtail->next = r;
    else
        s->qhead = r;
    s->qtail = r;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
}

int pg_store_cancel_queued(void *be, const char *why)
{
    fp_pg *s = be;
    pthread_mutex_lock(&s->qlock);
    snprintf(s->draining, sizeof s->draining, "%s", why && *why ? why : "cancelled");
    fp_issue_req *head = s->qhead;
    s->qhead = s->qtail = NULL;
    pthread_mutex_unlock(&s->qlock);
    int n = 0;
    for (fp_issue_req *r = head, *next; r; r = next, n++) {
        next = r->next;
        r->next = NULL;
        set_failed(r, why);
        r->done(r, r->arg);
    }
    return n;
}

/* Every 50 ms (as the SQLite backend's, store.h write_deadline_ms): queued
 * requests past their deadline leave the queue answered FP_ISSUE_TIMEOUT
 * (nothing of them was written); requests of the batch being written at
 * their deadline (a database that stopped answering, a failover) are
 * answered FP_ISSUE_UNKNOWN and stay with the writer, which releases them
 * when the batch ends.  Both count as failed writes for the breaker. */
static void *reaper_main(void *arg)
{
    fp_pg *s = arg;
    pthread_mutex_lock(&s->qlock);
    while (!s->reaper_stop) {
        fp_cond_wait_ms(&s->rpcond, &s->qlock, 50);
        if (s->reaper_stop)
            break;
        int64_t now = fp_mono_ms();
        int failures = 0;
        fp_issue_req *expired = NULL, **pp = &s->qhead, *prev = NULL;
        while (*pp) {
            fp_issue_req *r = *pp;
            if (r->deadline_ms && now >= r->deadline_ms) {
                *pp = r->next;
                if (s->qtail == r)
                    s->qtail = prev;
                r->next = expired;
                expired = r;
                continue;
            }
            prev = r;
            pp = &r->next;
        }
        for (fp_issue_req *r = s->batch; r; r = r->next)
            if (r->deadline_ms && now >= r->deadline_ms && !atomic_load(&r->early)) {
                atomic_store(&r->refs, 2); /* the writer's and the caller's */
                atomic_store(&r->early, FP_ISSUE_UNKNOWN);
                atomic_fetch_add(&s->unknown, 1);
                failures++;
                r->done(r, r->arg); /* under qlock: the writer cannot release it meanwhile */
            }
        pthread_mutex_unlock(&s->qlock);
        for (fp_issue_req *r = expired, *next; r; r = next) {
            next = r->next;
            r->next = NULL;
            r->result = FP_ISSUE_TIMEOUT;
            r->number[0] = 0;
            snprintf(r->error, sizeof r->error, "still queued for the writer at its deadline");
            atomic_fetch_add(&s->timed_out, 1);
            failures++;
            r->done(r, r->arg);
        }
        for (int i = 0; i < failures; i++)
            outcome(s, 0);
        pthread_mutex_lock(&s->qlock);
    }
    pthread_mutex_unlock(&s->qlock);
    return NULL;
}

/* The deadline thread's condition variable: its timed wait runs on the
 * monotonic clock (clock.h), so it is made here, beside that wait. */
void pg_writer_init(fp_pg *s)
{
    fp_cond_init_mono(&s->rpcond);
}

void pg_writer_fini(fp_pg *s)
{
    pthread_cond_destroy(&s->rpcond);
}

int pg_writer_start(fp_pg *s, fp_err *err)
{
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        return fp_fail(err, FP_EIO, "cannot start the writer thread");
    s->writer_started = 1;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        return fp_fail(err, FP_EIO, "cannot start the deadline thread");
    s->reaper_started = 1;
    return 0;
}

void pg_writer_stop(fp_pg *s)
{
    if (!s->writer_started)
        return;
    pthread_mutex_lock(&s->qlock);
    s->stopping = 1;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    pthread_join(s->writer, NULL);
    s->writer_started = 0;
    if (s->reaper_started) {
        pthread_mutex_lock(&s->qlock);
        s->reaper_stop = 1;
        pthread_cond_signal(&s->rpcond);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->reaper, NULL);
        s->reaper_started = 0;
    }
}

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
    pthread_mutex_lock(&s->hooklock);
    s->outcome_hook = fn;
    s->outcome_hook_arg = arg;
    pthread_mutex_unlock(&s->hooklock);
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
    st->commits = atomic_load(&s->commits);
    st->requests = atomic_load(&s->requests);
    st->max_batch = atomic_load(&s->max_batch);
    st->fsync_us_total = atomic_load(&s->commit_us_total);
    st->last_commit_us = atomic_load(&s->last_commit_us);
    st->last_probe_us = atomic_load(&s->last_probe_us);
    st->timed_out = atomic_load(&s->timed_out);
    st->unknown = atomic_load(&s->unknown);
    st->slow_write_ms = s->o.slow_write_ms;
}

/* ---- synchronous writes on the writer connection ---- */

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

int pg_store_probe_write(void *be, fp_err *err)
{
    fp_pg *s = be;
    int64_t t0 = fp_mono_us();
    int rc;
    if (atomic_load(&s->fault_write_fail)) {
        rc = fp_fail(err, FP_EIO, "injected fault: store write");
    } else {
        pthread_mutex_lock(&s->wlock);
        pg_heal(s->w);
        pg_params p = {0};
        pg_i64(&p, fp_wall_s());
        rc = pg_exec(s->w,
                     "INSERT INTO health_probe VALUES(1, $1) "
                     "ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                     &p, err);
        pthread_mutex_unlock(&s->wlock);
    }
    atomic_store(&s->last_probe_us, fp_mono_us() - t0);
    outcome(s, rc == 0);
    return rc;
}

int pg_store_clock_get(void *be, int64_t *mark, int64_t *confirmed_at, fp_err *err)
{
    fp_pg *s = be;
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c, "SELECT mark, coalesce(confirmed_at, 0) FROM issue_clock WHERE id=1",
                       NULL, &rc, err);
    *mark = *confirmed_at = 0;
    if (r && PQntuples(r) == 1) {
        *mark = pg_int(r, 0, 0);
        *confirmed_at = pg_int(r, 0, 1);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_clock_confirm(void *be, const char *actor, fp_err *err)
{
    fp_pg *s = be;
    int64_t wall, boot;
    clock_read(s, &wall, &boot);
    char txt[32], target[64];
    cst_text(wall, txt);
    snprintf(target, sizeof target, "clock %s", txt);
    fp_audit_rec a = {
        .ts = wall, .actor = actor, .action = "clock.confirm", .target = target, .outcome = "ok"};
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        pg_params p = {0};
        pg_i64(&p, wall);
        rc = pg_exec(s->w, "UPDATE issue_clock SET confirmed_at=$1 WHERE id=1", &p, err);
    }
    if (rc == 0)
        rc = pg_audit_append(s, &a, err);
    if (rc == 0)
        rc = pg_tx_commit(s, err);
    else
        pg_tx_rollback(s);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
