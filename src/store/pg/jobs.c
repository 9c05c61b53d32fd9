/* jobs.c — the outbox's rows in the PostgreSQL backend (jobs.h; as
 * src/store/sqlite/jobs.c), shared by every node on the database.
 *
 * A claim picks its job with FOR UPDATE SKIP LOCKED, so workers of several
 * nodes never wait on, or take, the same row; the lease (lease_owner,
 * lease_until) is what lets another node take over a job whose node died.
 * Lease owners are made unique across nodes: the outbox numbers its claims
 * from 1 in every process, so the backend puts a random node tag in the
 * high bits (the job handed back carries the owner as stored, and complete
 * and fail compare that).  Job times are each node's steady wall clock
 * (jobs.h): nodes must keep their clocks in step (NTP), as a lease is
 * judged by whichever node looks at it (docs/ha.md).
 *
 * fp_jobs_recover, run at start by the SQLite backend's only process, puts
 * every running job back to pending; on a shared database that would take
 * the jobs other nodes are running, so here it does nothing: a dead
 * node's jobs come back when their leases run out. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/jobs.h"
#include "internal.h"

#define JOB_COLS                                                                                   \
    "id, seller_id, invoice_number, client_id, kind, state, coalesce(event, ''), "                 \
    "coalesce(event_id, ''), attempts, next_at, first_at, updated_at, coalesce(lease_owner, 0), "  \
    "coalesce(lease_until, 0), coalesce(last_error, '')"

/* the fair tag (migration 9 of SQLite; jobs.h) of seller $S at cost $C */
#define FAIR_TAG(S, C)                                                                             \
    "(greatest(coalesce((SELECT min(fair_tag) FROM jobs WHERE fair_tag IS NOT NULL), 0), "         \
    "coalesce((SELECT max(fair_tag) FROM jobs WHERE seller_id = " S " AND fair_tag IS NOT NULL), " \
    "0)) + " C ")"

static void read_job(const PGresult *r, int i, fp_job *j)
{
    memset(j, 0, sizeof *j);
    j->id = pg_int(r, i, 0);
    j->seller_id = pg_int(r, i, 1);
    pg_col(r, i, 2, j->invoice_number, sizeof j->invoice_number);
    pg_col(r, i, 3, j->client_id, sizeof j->client_id);
    j->kind = !strcmp(PQgetvalue(r, i, 4), "notify") ? FP_JOB_NOTIFY : FP_JOB_RENDER;
    int state = fp_job_state_from_name(PQgetvalue(r, i, 5));
    j->state = state < 0 ? FP_JS_DEAD : (fp_job_state)state;
    pg_col(r, i, 6, j->event, sizeof j->event);
    pg_col(r, i, 7, j->event_id, sizeof j->event_id);
    j->attempts = (int)pg_int(r, i, 8);
    j->next_at = pg_int(r, i, 9);
    j->first_at = pg_int(r, i, 10);
    j->updated_at = pg_int(r, i, 11);
    j->lease_owner = pg_int(r, i, 12);
    j->lease_until = pg_int(r, i, 13);
    pg_col(r, i, 14, j->last_error, sizeof j->last_error);
}

int pg_jobs_recover(void *be, int64_t *n, fp_err *err)
{
    (void)be;
    (void)err;
    *n = 0; /* see the top of this file */
    return 0;
}

int pg_jobs_claim(void *be, int64_t now, int64_t owner, int64_t lease_ms, fp_job *out,
                  int64_t *next_due, fp_err *err)
{
    fp_pg *s = be;
    *next_due = 0;
    /* the order of jobs.h: an expired lease, a due retry, the fairest
     * first run; each pick skips rows another node has locked */
    static const char *const pick[] = {
        "state='running' AND lease_until < $1 ORDER BY lease_until",
        "state='pending' AND fair_tag IS NULL AND next_at <= $1 ORDER BY next_at",
        "fair_tag IS NOT NULL AND state='pending' ORDER BY fair_tag, id",
    };
    int64_t owner_db = (int64_t)((uint64_t)s->node_tag << 32 | ((uint64_t)owner & 0xffffffffu));
    int rc = FP_ENOTFOUND;
    pthread_mutex_lock(&s->wlock);
    pg_heal(s->w);
    for (int i = 0; i < 3 && rc == FP_ENOTFOUND; i++) {
        char sql[768];
        snprintf(
            sql, sizeof sql,
            "UPDATE jobs SET state='running', lease_owner=$2, lease_until=$3, "
            "attempts=attempts+1, updated_at=$1, fair_tag=NULL WHERE id = "
            "(SELECT id FROM jobs WHERE %s LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING " JOB_COLS,
            pick[i]);
        pg_params p = {0};
        pg_i64(&p, now);
        pg_i64(&p, owner_db);
        pg_i64(&p, now + lease_ms);
        int qrc;
        PGresult *r = pg_q(s->w, sql, &p, &qrc, err);
        if (!r)
            rc = qrc;
        else if (PQntuples(r) == 1) {
            read_job(r, 0, out);
            rc = 0;
        }
        PQclear(r);
    }
    if (rc == FP_ENOTFOUND) {
        int qrc;
        PGresult *r = pg_q(s->w, "SELECT coalesce(min(next_at), 0) FROM jobs WHERE state='pending'",
                           NULL, &qrc, NULL);
        if (r)
            *next_due = pg_int(r, 0, 0);
        PQclear(r);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

/* The on-demand render (jobs.h): the invoice's render job claimed as
 * pg_jobs_claim does, due or not, unless another worker (of any node)
 * holds its row or it is not pending. */
int pg_jobs_claim_render(void *be, int64_t seller_id, const char *number, int64_t now,
                         int64_t owner, int64_t lease_ms, fp_job *out, fp_err *err)
{
    fp_pg *s = be;
    int64_t owner_db = (int64_t)((uint64_t)s->node_tag << 32 | ((uint64_t)owner & 0xffffffffu));
    pg_params p = {0};
    pg_text(&p, number);
    pg_i64(&p, seller_id);
    pg_i64(&p, owner_db);
    pg_i64(&p, now + lease_ms);
    pg_i64(&p, now);
    pthread_mutex_lock(&s->wlock);
    pg_heal(s->w);
    int rc;
    PGresult *r = pg_q(s->w,
                       "UPDATE jobs SET state='running', lease_owner=$3, lease_until=$4, "
                       "attempts=attempts+1, updated_at=$5, fair_tag=NULL WHERE id=(SELECT id "
                       "FROM jobs WHERE id=(SELECT max(id) FROM jobs WHERE invoice_number=$1 "
                       "AND kind='render') AND seller_id=$2 AND state='pending' "
                       "FOR UPDATE SKIP LOCKED) RETURNING " JOB_COLS,
                       &p, &rc, err);
    if (r && PQntuples(r) == 1)
        read_job(r, 0, out);
    else if (r)
        rc = FP_ENOTFOUND;
    PQclear(r);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

void pg_store_set_notify_early(void *be, int on)
{
    fp_pg *s = be;
    atomic_store(&s->notify_early, on != 0);
}

/* Done jobs finished (next_at) before `before`, at most limit, in one
 * transaction: notify jobs first, so that a render whose notify goes now
 * can go in the next batch (after_job refers to it). */
int pg_jobs_prune(void *be, int64_t before, int limit, int64_t *n, fp_err *err)
{
    fp_pg *s = be;
    static const char *const del[] = {
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state='done' AND next_at < $1 "
        "AND kind='notify' LIMIT $2)",
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs j WHERE state='done' AND next_at < $1 "
        "AND kind='render' AND NOT EXISTS(SELECT 1 FROM jobs a WHERE a.after_job=j.id) LIMIT $2)",
    };
    *n = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    for (int i = 0; i < 2 && rc == 0 && *n < limit; i++) {
        pg_params p = {0};
        pg_i64(&p, before);
        pg_i64(&p, limit - *n);
        PGresult *r = pg_q(s->w, del[i], &p, &rc, err);
        if (r)
            *n += strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    if (rc < 0)
        *n = 0;
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

/* j's row if j->lease_owner still holds it, inside the open transaction. */
static int set_job(fp_pg *s, const fp_job *j, const char *state, int64_t next_at, int count_attempt,
                   const char *error, int64_t now, fp_err *err)
{
    pg_params p = {0};
    pg_i64(&p, j->id);
    pg_i64(&p, j->lease_owner);
    pg_text(&p, state);
    pg_i64(&p, next_at);
    pg_text(&p, error);
    pg_i64(&p, now);
    pg_i64(&p, count_attempt ? 0 : 1);
    int rc;
    PGresult *r = pg_q(s->w,
                       "UPDATE jobs SET state=$3, next_at=$4, last_error=$5, updated_at=$6, "
                       "attempts=attempts-$7, lease_owner=NULL, lease_until=NULL "
                       "WHERE id=$1 AND state='running' AND lease_owner=$2",
                       &p, &rc, err);
    if (r && strcmp(PQcmdTuples(r), "1") != 0)
        rc = fp_fail(err, FP_ECONFLICT, "job %lld is no longer leased to this worker",
                     (long long)j->id);
    PQclear(r);
    return rc;
}

static int exec2(fp_pg *s, const char *sql, const char *t1, const char *t2, fp_err *err)
{
    pg_params p = {0};
    pg_text(&p, t1);
    pg_text(&p, t2);
    return pg_exec(s->w, sql, &p, err);
}

/* After a render finished (ok) or died: the invoice's state, and its
 * notify job unblocked (or queued, once: the event id is unique). */
static int render_outcome(fp_pg *s, const fp_job *j, int ok, const char *error, int64_t now,
                          fp_err *err)
{
    const char *n = j->invoice_number;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)j->id);
    /* rendered, or delivered when its invoice.issued event (on-demand
     * mode, jobs.h) reached the client already */
    int rc = ok ? exec2(s,
                        "UPDATE invoices SET status=CASE WHEN EXISTS(SELECT 1 FROM jobs "
                        "WHERE after_job=$2::bigint AND event='invoice.issued' AND state='done') "
                        "THEN 'delivered' ELSE 'rendered' END, failure=NULL "
                        "WHERE number=$1 AND status IN ('accepted', 'failed')",
                        n, id, err)
                : exec2(s,
                        "UPDATE invoices SET status='failed', failure=$2 "
                        "WHERE number=$1 AND status='accepted'",
                        n, error, err);
    if (rc < 0)
        return rc;
    pg_params p = {0};
    pg_text(&p, n);
    pg_text(&p, ok ? "rendered" : "failed");
    pg_i64(&p, now);
    pg_i64(&p, j->id);
    pg_i64(&p, j->seller_id);
    pg_i64(&p, FP_JOB_BASE_COST);
    pg_text(&p, j->client_id);
    PGresult *r = pg_q(s->w,
                       "UPDATE jobs SET state='pending', next_at=$3, updated_at=$3, "
                       "event='invoice.' || $2, event_id='evt_' || $1 || '_' || $2, "
                       "cost=$6, fair_tag=" FAIR_TAG("$5", "$6") " WHERE after_job=$4 "
                                                                 "AND state='blocked'",
                       &p, &rc, err);
    int unblocked = r && strcmp(PQcmdTuples(r), "0") != 0;
    PQclear(r);
    if (rc < 0 || unblocked)
        return rc;
    return pg_exec(s->w,
                   "INSERT INTO jobs(invoice_number, seller_id, client_id, kind, event, event_id, "
                   "state, next_at, first_at, updated_at, cost, fair_tag) "
                   "SELECT $1, $5, $7, 'notify', 'invoice.' || $2, 'evt_' || $1 || '_' || $2, "
                   "'pending', $3, $3, $3, $6, " FAIR_TAG(
                       "$5", "$6") " FROM clients "
                                   "WHERE client_id=$7 AND coalesce(webhook_url, '') <> '' "
                                   /* the client has the PDF's link already */
                                   "AND NOT ($2 = 'rendered' AND EXISTS(SELECT 1 FROM jobs "
                                   "WHERE after_job=$4 AND event='invoice.issued')) "
                                   "ON CONFLICT (event_id) DO NOTHING",
                   &p, err);
}

int pg_jobs_complete(void *be, const fp_job *j, int64_t now, fp_err *err)
{
    fp_pg *s = be;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0)
        rc = set_job(s, j, "done", now, 1, NULL, now, err);
    if (rc == 0 && j->kind == FP_JOB_RENDER)
        rc = render_outcome(s, j, 1, NULL, now, err);
    else if (rc == 0 &&
             (!strcmp(j->event, "invoice.rendered") || !strcmp(j->event, "invoice.issued")))
        rc =
            exec2(s, "UPDATE invoices SET status='delivered' WHERE number=$1 AND status='rendered'",
                  j->invoice_number, NULL, err);
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_jobs_fail(void *be, const fp_job *j, int64_t now, int64_t next_at, int dead,
                 const char *error, fp_err *err)
{
    fp_pg *s = be;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0)
        rc = set_job(s, j, dead ? "dead" : "pending", next_at, 1, error, now, err);
    if (rc == 0 && dead && j->kind == FP_JOB_RENDER)
        rc = render_outcome(s, j, 0, error, now, err);
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_jobs_defer(void *be, const fp_job *j, int64_t next_at, const char *why, fp_err *err)
{
    fp_pg *s = be;
    pthread_mutex_lock(&s->wlock);
    pg_heal(s->w);
    int rc = set_job(s, j, "pending", next_at, 0, why, fp_steady_ms(), err);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

static int audit(fp_pg *s, int64_t seller_id, const char *actor, const char *action,
                 const char *target, const char *request_id, const char *client_request_id,
                 const char *client_ip, fp_err *err)
{
    fp_audit_rec r = {.ts = fp_wall_ms() / 1000,
                      .actor = actor ? actor : "",
                      .action = action,
                      .target = target,
                      .request_id = request_id ? request_id : "",
                      .client_ip = client_ip ? client_ip : "",
                      .outcome = "ok",
                      .seller_id = seller_id,
                      .client_request_id =
                          client_request_id && *client_request_id ? client_request_id : NULL};
    return pg_audit_append(s, &r, err);
}

int pg_jobs_get(void *be, int64_t seller_id, int64_t id, fp_job *out)
{
    fp_pg *s = be;
    pg_params p = {0};
    pg_i64(&p, id);
    pg_i64(&p, seller_id);
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c, "SELECT " JOB_COLS " FROM jobs WHERE id=$1 AND ($2 = 0 OR seller_id=$2)",
                       &p, &rc, NULL);
    if (r && PQntuples(r) == 0)
        rc = FP_ENOTFOUND;
    else if (r)
        read_job(r, 0, out);
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_jobs_redrive(void *be, int64_t seller_id, int64_t id, const char *actor,
                    const char *request_id, const char *client_request_id, const char *client_ip,
                    fp_err *err)
{
    fp_pg *s = be;
    fp_job j;
    int rc = pg_jobs_get(s, seller_id, id, &j);
    if (rc < 0)
        return rc == FP_ENOTFOUND ? fp_fail(err, rc, "no job %lld", (long long)id)
                                  : fp_fail(err, rc, "cannot read job %lld", (long long)id);
    pthread_mutex_lock(&s->wlock);
    rc = pg_tx_begin(s, err);
    if (rc == 0) {
        pg_params p = {0};
        pg_i64(&p, id);
        pg_i64(&p, fp_steady_ms());
        PGresult *r = pg_q(s->w,
                           "UPDATE jobs SET state='pending', attempts=0, next_at=0, first_at=$2, "
                           "updated_at=$2 WHERE id=$1 AND state='dead'",
                           &p, &rc, err);
        if (r && strcmp(PQcmdTuples(r), "1") != 0)
            rc = fp_fail(err, FP_ECONFLICT, "job %lld is %s, not dead", (long long)id,
                         fp_job_state_name(j.state));
        PQclear(r);
    }
    char target[32];
    snprintf(target, sizeof target, "job:%lld", (long long)id);
    if (rc == 0)
        rc = audit(s, j.seller_id, actor, "job.redrive", target, request_id, client_request_id,
                   client_ip, err);
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_jobs_list(void *be, int64_t seller_id, int state, int64_t before, int limit,
                 void (*fn)(const fp_job *j, void *arg), void *arg, fp_err *err)
{
    fp_pg *s = be;
    pg_params p = {0};
    pg_i64(&p, seller_id);
    pg_text(&p, state >= 0 ? fp_job_state_name((fp_job_state)state) : NULL);
    pg_i64(&p, before);
    pg_i64(&p, limit);
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c,
                       "SELECT " JOB_COLS " FROM jobs WHERE ($1 = 0 OR seller_id=$1) "
                       "AND ($2::text IS NULL OR state=$2) AND ($3 = 0 OR id < $3) "
                       "ORDER BY id DESC LIMIT $4",
                       &p, &rc, err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fp_job j;
        read_job(r, i, &j);
        fn(&j, arg);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_jobs_count(void *be, fp_jobs_counts *c, fp_err *err)
{
    fp_pg *s = be;
    memset(c, 0, sizeof *c);
    PGconn *db = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(db,
                       "SELECT kind, state, count(*), min(first_at) FROM jobs "
                       "WHERE state IN ('blocked', 'pending', 'running', 'dead') "
                       "GROUP BY kind, state",
                       NULL, &rc, err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        int k = !strcmp(PQgetvalue(r, i, 0), "notify") ? FP_JOB_NOTIFY : FP_JOB_RENDER;
        int state = fp_job_state_from_name(PQgetvalue(r, i, 1));
        if (state < 0)
            continue;
        c->n[k][state] = pg_int(r, i, 2);
        int64_t first = pg_int(r, i, 3);
        if (state == FP_JS_PENDING && (!c->oldest_pending_at || first < c->oldest_pending_at))
            c->oldest_pending_at = first;
        if (state == FP_JS_PENDING && k == FP_JOB_RENDER)
            c->oldest_render_at = first;
    }
    PQclear(r);
    pg_rrelease(s, db);
    return rc;
}

int pg_store_invoice_state(void *be, int64_t seller_id, const char *number, fp_invoice_state *out)
{
    fp_pg *s = be;
    memset(out, 0, sizeof *out);
    out->render_state = -1;
    pg_params p = {0};
    pg_text(&p, number);
    pg_i64(&p, seller_id);
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r =
        pg_q(c,
             "SELECT i.status, i.failure, i.serial, j.state, j.last_error, j.next_at, j.first_at "
             "FROM invoices i LEFT JOIN jobs j ON j.id = (SELECT max(id) FROM "
             "jobs WHERE invoice_number=i.number AND kind='render') "
             "WHERE i.number=$1 AND i.seller_id=$2",
             &p, &rc, NULL);
    if (r && PQntuples(r) == 0)
        rc = FP_ENOTFOUND;
    else if (r) {
        pg_col(r, 0, 0, out->status, sizeof out->status);
        pg_col(r, 0, 1, out->failure, sizeof out->failure);
        pg_col(r, 0, 2, out->serial, sizeof out->serial);
        if (!PQgetisnull(r, 0, 3))
            out->render_state = fp_job_state_from_name(PQgetvalue(r, 0, 3));
        pg_col(r, 0, 4, out->render_error, sizeof out->render_error);
        out->render_next_at = pg_int(r, 0, 5);
        out->render_first_at = pg_int(r, 0, 6);
    }
    PQclear(r);
    pg_rrelease(s, c);
    return rc;
}

int pg_store_invoice_ack(void *be, int64_t seller_id, const char *number, const char *actor,
                         const char *request_id, const char *client_request_id,
                         const char *client_ip, fp_err *err)
{
    fp_pg *s = be;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        pg_params p = {0};
        pg_text(&p, number);
        pg_i64(&p, seller_id);
        PGresult *r =
            pg_q(s->w, "UPDATE invoices SET status='confirmed' WHERE number=$1 AND seller_id=$2",
                 &p, &rc, err);
        if (r && strcmp(PQcmdTuples(r), "1") != 0)
            rc = fp_fail(err, FP_ENOTFOUND, "no invoice %s", number);
        PQclear(r);
    }
    if (rc == 0)
        rc = audit(s, seller_id, actor, "invoice.ack", number, request_id, client_request_id,
                   client_ip, err);
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}
