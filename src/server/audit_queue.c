/* audit_queue.c — batched audit records for authentication failures and
 * refusals, with counters for those beyond the failure budget
 * (audit_queue.h, docs/security.md "Authentication failures"). */
#include "audit_queue.h"
#include "fapiao/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    int64_t ts;
    char actor[72], action[40], target[80], request_id[72], client_ip[48], outcome[64];
    int64_t seller_id;
    char client_request_id[72];
} entry;

/* One counter: failures from one address with one action and outcome in
 * the current window. */
typedef struct agg {
    int used;
    uint64_t count;
    int64_t first_ts;
    char client_ip[48], action[40], outcome[64];
} agg;

#define AGG_SLOTS (FP_AUDIT_AGG_KEYS * 2) /* open addressing, at most half full */

struct fp_audit_queue {
    fp_store *store;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry *v;
    int n, cap;
    agg slots[AGG_SLOTS];
    int nagg;
    int64_t window_ms, window_start_ms;
    fp_audit_queue_stats st;
    int64_t last_error_ms; /* a refused write is reported at most every 10 s */
    int stopping;
    pthread_t th;
};

static uint64_t agg_hash(const char *ip, const char *action, const char *outcome)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the three, 0-separated */
    const char *parts[3] = {ip, action, outcome};
    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

/* The counter of (ip, action, outcome), made if need be; NULL only when
 * even the table's reserve is full (then the caller uses "*"). */
static agg *agg_slot(fp_audit_queue *q, const char *ip, const char *action, const char *outcome,
                     int may_make)
{
    uint64_t h = agg_hash(ip, action, outcome);
    for (int i = 0; i < AGG_SLOTS; i++) {
        agg *a = &q->slots[(h + (uint64_t)i) % AGG_SLOTS];
        if (!a->used) {
            if (!may_make)
                return NULL;
            a->used = 1;
            a->count = 0;
            a->first_ts = (int64_t)time(NULL);
            snprintf(a->client_ip, sizeof a->client_ip, "%s", ip);
            snprintf(a->action, sizeof a->action, "%s", action);
            snprintf(a->outcome, sizeof a->outcome, "%s", outcome);
            q->nagg++;
            return a;
        }
        if (!strcmp(a->client_ip, ip) && !strcmp(a->action, action) && !strcmp(a->outcome, outcome))
            return a;
    }
    return NULL;
}

/* Adds n to a counter; called with q->mu held.  Addresses beyond
 * FP_AUDIT_AGG_KEYS share "*" (the table keeps the other half free for
 * those and for probing), so nothing is ever lost. */
static void agg_add(fp_audit_queue *q, const char *ip, const char *action, const char *outcome,
                    uint64_t n)
{
    agg *a = agg_slot(q, ip, action, outcome, q->nagg < FP_AUDIT_AGG_KEYS);
    if (!a)
        a = agg_slot(q, "*", action, outcome, q->nagg < AGG_SLOTS - 1);
    if (!a) /* every slot taken: the very last one is for whatever remains */
        a = agg_slot(q, "*", "auth.other", "*", 1);
    if (a)
        a->count += n;
}

static void flush(fp_audit_queue *q, int all)
{
    pthread_mutex_lock(&q->mu);
    int n = q->n;
    entry *batch = n ? malloc((size_t)n * sizeof *batch) : NULL;
    if (n && !batch) { /* no memory to copy them: count them instead */
        for (int i = 0; i < n; i++)
            agg_add(q, q->v[i].client_ip, q->v[i].action, q->v[i].outcome, 1);
        n = 0;
    } else if (n) {
        memcpy(batch, q->v, (size_t)n * sizeof *batch);
    }
    q->n = 0;
    agg *aggs = NULL;
    int m = 0;
    int64_t now = fp_mono_ms();
    if ((all || now - q->window_start_ms >= q->window_ms) && q->nagg) {
        aggs = malloc((size_t)q->nagg * sizeof *aggs);
        if (aggs) {
            for (int i = 0; i < AGG_SLOTS; i++)
                if (q->slots[i].used && q->slots[i].count)
                    aggs[m++] = q->slots[i];
            memset(q->slots, 0, sizeof q->slots);
            q->nagg = 0;
        }
    }
    if (all || now - q->window_start_ms >= q->window_ms)
        q->window_start_ms = now;
    pthread_mutex_unlock(&q->mu);

    if (n + m == 0) {
        free(batch);
        free(aggs);
        return;
    }
    fp_audit_rec *recs = calloc((size_t)(n + m), sizeof *recs);
    char(*acts)[56] = m ? calloc((size_t)m, sizeof *acts) : NULL;
    char(*targets)[64] = m ? calloc((size_t)m, sizeof *targets) : NULL;
    int ok = recs && (!m || (acts && targets));
    if (ok) {
        for (int i = 0; i < n; i++)
            recs[i] =
                (fp_audit_rec){batch[i].ts,
                               batch[i].actor,
                               batch[i].action,
                               batch[i].target[0] ? batch[i].target : NULL,
                               batch[i].request_id,
                               batch[i].client_ip,
                               batch[i].outcome,
                               batch[i].seller_id,
                               batch[i].client_request_id[0] ? batch[i].client_request_id : NULL};
        for (int i = 0; i < m; i++) {
            snprintf(acts[i], sizeof acts[i], "%.39s.repeated", aggs[i].action);
            snprintf(targets[i], sizeof targets[i], "count=%llu window=%llds",
                     (unsigned long long)aggs[i].count, (long long)(q->window_ms / 1000));
            recs[n + i] =
                (fp_audit_rec){aggs[i].first_ts, "", acts[i], targets[i], NULL, aggs[i].client_ip,
                               aggs[i].outcome,  0,  NULL};
        }
    }
    fp_err err = {0};
    int written = ok && fp_store_audit_batch(q->store, recs, n + m, &err) == 0;
    pthread_mutex_lock(&q->mu);
    if (written) {
        q->st.recorded += (uint64_t)n;
        q->st.aggregates += (uint64_t)m;
    } else { /* kept as counts, written with the next window */
        for (int i = 0; i < n; i++)
            agg_add(q, batch[i].client_ip, batch[i].action, batch[i].outcome, 1);
        for (int i = 0; i < m; i++)
            agg_add(q, aggs[i].client_ip, aggs[i].action, aggs[i].outcome, aggs[i].count);
        q->st.counted += (uint64_t)n;
        q->st.write_errors++;
    }
    int say = !written && fp_mono_ms() - q->last_error_ms >= 10000;
    if (say)
        q->last_error_ms = fp_mono_ms();
    pthread_mutex_unlock(&q->mu);
    if (say)
        fprintf(stderr,
                "{\"event\":\"audit\",\"error\":\"cannot store %d records; kept as counts, "
                "tried again\",\"detail\":\"%s\"}\n",
                n + m, ok ? err.msg : "out of memory");
    free(recs);
    free(acts);
    free(targets);
    free(batch);
    free(aggs);
}

static void *flusher(void *arg)
{
    fp_audit_queue *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        int64_t until = fp_mono_ns() + 200 * 1000000LL;
        while (!q->stopping && fp_cond_wait_until(&q->cv, &q->mu, until) != ETIMEDOUT)
            ;
        int stop = q->stopping;
        pthread_mutex_unlock(&q->mu);
        flush(q, stop);
        if (stop)
            return NULL;
    }
}

int fp_audit_queue_start(fp_store *s, int cap, int window_ms, fp_audit_queue **out, fp_err *err)
{
    fp_audit_queue *q = calloc(1, sizeof *q);
    if (!q || !(q->v = calloc((size_t)(cap > 0 ? cap : 1), sizeof *q->v))) {
        free(q);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    q->store = s;
    q->cap = cap > 0 ? cap : 1;
    q->window_ms = window_ms > 0 ? window_ms : 10000;
    q->window_start_ms = fp_mono_ms();
    q->last_error_ms = q->window_start_ms - 10000;
    pthread_mutex_init(&q->mu, NULL);
    fp_cond_init_mono(&q->cv);
    if (pthread_create(&q->th, NULL, flusher, q) != 0) {
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        free(q->v);
        free(q);
        return fp_fail(err, FP_EIO, "cannot start the audit thread");
    }
    *out = q;
    return 0;
}

void fp_audit_queue_stop(fp_audit_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->th, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->v);
    free(q);
}

void fp_audit_queue_add(fp_audit_queue *q, const char *actor, const char *action,
                        const char *target, const char *request_id, const char *client_ip,
                        const char *outcome, int64_t seller_id, const char *client_request_id)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    if (q->n == q->cap) { /* no room: counted, never dropped */
        agg_add(q, client_ip ? client_ip : "", action, outcome, 1);
        q->st.counted++;
    } else {
        entry *e = &q->v[q->n++];
        e->ts = (int64_t)time(NULL);
        snprintf(e->actor, sizeof e->actor, "%s", actor ? actor : "");
        snprintf(e->action, sizeof e->action, "%s", action);
        snprintf(e->target, sizeof e->target, "%s", target ? target : "");
        snprintf(e->request_id, sizeof e->request_id, "%s", request_id ? request_id : "");
        snprintf(e->client_ip, sizeof e->client_ip, "%s", client_ip ? client_ip : "");
        snprintf(e->outcome, sizeof e->outcome, "%s", outcome);
        e->seller_id = seller_id > 0 ? seller_id : 0;
        snprintf(e->client_request_id, sizeof e->client_request_id, "%s",
                 client_request_id ? client_request_id : "");
    }
    pthread_mutex_unlock(&q->mu);
}

void fp_audit_queue_count(fp_audit_queue *q, const char *client_ip, const char *action,
                          const char *outcome)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    agg_add(q, client_ip ? client_ip : "", action, outcome, 1);
    q->st.counted++;
    pthread_mutex_unlock(&q->mu);
}

void fp_audit_queue_stats_get(fp_audit_queue *q, fp_audit_queue_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    *out = q->st;
    pthread_mutex_unlock(&q->mu);
}
