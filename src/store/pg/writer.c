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

static int batch_confirmed(void *arg, int64_t *at)
{
    *at = ((const pg_batch *)arg)->confirmed;
    return 0;
}

/* The issue clock (docs/operations.md, "Clock") against the mark locked in
 * this transaction: 0 with r->issued_at set, 1 when r is refused. */
static int clock_take(fp_pg *s, pg_batch *b, fp_issue_req *r)
{
    int64_t wall, boot;
    fp_issue_clock_read(&s->o, &wall, &boot);
    s->clock.mark = b->mark;
    fp_clock_verdict v =
        fp_issue_clock_take(&s->clock, &s->clock_confirmed, batch_confirmed, b, r, boot);
    b->mark = s->clock.mark;
    return v != FP_CLOCK_OK;
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
 * not see each other's rows).  With the upstream configured ($24 = 1)
 * the upload row too (upload.h).  Nothing but the invoice is inserted when the serial exists:
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
    "  WHERE clients.client_id = $13 AND coalesce(clients.webhook_url, '') <> ''), "
    "upl AS ("
    "  INSERT INTO uploads(invoice_number, seller_id, state, next_at, first_at, updated_at) "
    "  SELECT $1, $2, 'pending', $20, $20, $20 FROM inv WHERE $24 = 1) "
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
    pg_i64(p, atomic_load(&s->upload_on) != 0);                  /* 24: upload.h */
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
    uint64_t resets = pg_reconnects();
    if (s->w_prepared == PQbackendPID(s->w) && s->w_prepared_resets == resets)
        return 0;
    /* a connection was reset since: the writer's may be the same one (a
     * reader's reset) or a new one whose server reuses the pid; the server
     * knows (a second PREPARE would fail the open transaction) */
    PGresult *r = PQexec(s->w, "SELECT 1 FROM pg_prepared_statements WHERE name = 'fp_issue'");
    int have = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    if (!have) {
        r = PQprepare(s->w, "fp_issue", issue_sql, 23, issue_types);
        have = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!have)
        return FP_EIO;
    s->w_prepared = PQbackendPID(s->w);
    s->w_prepared_resets = resets;
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
    int64_t credit;
    char month[7];
    int over = pg_credit_check(s, r, &credit, month), inserted = 0;
    if (over < 0)
        return FP_EIO;
    PGresult *res = over ? NULL : issue_exec(s, &p);
    if (!over && PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        r->number[0] = 0;
        return FP_EIO;
    }
    if (!over)
        inserted = pg_int(res, 0, 0) == 1;
    PQclear(res);
    if (!inserted) { /* nothing inserted: the number and the link are not used */
        r->number[0] = 0;
        s->tx.last_id = last_id;
        memcpy(s->tx.last_hash, last_hash, sizeof last_hash);
        s->tx.head_dirty = dirty;
        rs->next--;
        /* over the credit line, unless the key was used before: that replays */
        int found = answer_existing(s, r);
        if (over && found == FP_ENOTFOUND)
            r->result = FP_ISSUE_CREDIT_EXCEEDED;
        return found == 0 || (over && found == FP_ENOTFOUND) ? 0 : FP_EIO;
    }
    if (pg_credit_apply(s, r, credit, month) < 0)
        return FP_EIO;
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
    if ((rc = pg_head_lock(s, err)) < 0)
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
    *again = atomic_load(&s->credit_on) != 0; /* the credit's check: one by one (credit.c) */
    for (fp_issue_req *q = head; q; q = q->next)
        if (q->red_form_id || *again) {
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

/* Called with wlock held (../writeq.c's writer thread); releases it. */
static void run_batch(void *be, fp_issue_req *head, int n)
{
    fp_pg *s = be;
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
    fp_writeq_outcome(&s->q, rc == 0);
    if (rc < 0)
        for (fp_issue_req *r = head; r; r = r->next)
            fp_issue_req_fail(r, err.msg[0] ? err.msg : "store write failed");
    else if (created && s->job_hook)
        s->job_hook(s->job_hook_arg);
    fp_writeq_answer(&s->q, head, n); /* everything above is committed or rolled back */
}

void pg_store_submit(void *be, fp_issue_req *r)
{
    fp_pg *s = be;
    fp_writeq_submit(&s->q, r);
}

int pg_store_cancel_queued(void *be, const char *why)
{
    fp_pg *s = be;
    return fp_writeq_cancel(&s->q, why);
}

int pg_writer_start(fp_pg *s, fp_err *err)
{
    return fp_writeq_start(&s->q, &s->wlock, run_batch, s, err);
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
    fp_writeq_outcome(&s->q, rc == 0);
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
    fp_issue_clock_read(&s->o, &wall, &boot);
    char txt[32], target[64];
    fp_issue_clock_text(wall, txt);
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
