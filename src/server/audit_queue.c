/* audit_queue.c — batched audit records for authentication failures
 * (audit_queue.h). */
#include "audit_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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

struct fp_audit_queue {
    fp_store *store;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry *v;
    int n, cap;
    uint64_t dropped_pending;
    atomic_uint_fast64_t dropped_total;
    int stopping;
    pthread_t th;
};

static void flush(fp_audit_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int n = q->n;
    uint64_t dropped = q->dropped_pending;
    entry *batch = NULL;
    if (n) {
        batch = malloc((size_t)n * sizeof *batch);
        if (batch)
            memcpy(batch, q->v, (size_t)n * sizeof *batch);
        else
            dropped += (uint64_t)n;
    }
    q->n = 0;
    q->dropped_pending = 0;
    pthread_mutex_unlock(&q->mu);
    int m = batch ? n : 0;
    fp_audit_rec *recs = calloc((size_t)m + 1, sizeof *recs);
    if (!recs) {
        free(batch);
        return;
    }
    for (int i = 0; i < m; i++)
        recs[i] = (fp_audit_rec){batch[i].ts,
                                 batch[i].actor,
                                 batch[i].action,
                                 batch[i].target[0] ? batch[i].target : NULL,
                                 batch[i].request_id,
                                 batch[i].client_ip,
                                 batch[i].outcome,
                                 batch[i].seller_id,
                                 batch[i].client_request_id[0] ? batch[i].client_request_id : NULL};
    char count[32];
    if (dropped) {
        snprintf(count, sizeof count, "%llu", (unsigned long long)dropped);
        recs[m++] = (fp_audit_rec){0, "server", "audit.dropped", count, NULL, NULL, "dropped"};
    }
    fp_err err = {0};
    if (m && fp_store_audit_batch(q->store, recs, m, &err) < 0)
        fprintf(stderr,
                "{\"event\":\"audit\",\"error\":\"cannot store %d records\",\"detail\":\"%s\"}\n",
                m, err.msg);
    free(recs);
    free(batch);
}

static void *flusher(void *arg)
{
    fp_audit_queue *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000 * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!q->stopping && pthread_cond_timedwait(&q->cv, &q->mu, &until) != ETIMEDOUT)
            ;
        int stop = q->stopping;
        pthread_mutex_unlock(&q->mu);
        flush(q);
        if (stop)
            return NULL;
    }
}

int fp_audit_queue_start(fp_store *s, int cap, fp_audit_queue **out, fp_err *err)
{
    fp_audit_queue *q = calloc(1, sizeof *q);
    if (!q || !(q->v = calloc((size_t)(cap > 0 ? cap : 1), sizeof *q->v))) {
        free(q);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    q->store = s;
    q->cap = cap > 0 ? cap : 1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (pthread_create(&q->th, NULL, flusher, q) != 0) {
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
    if (q->n == q->cap) {
        q->dropped_pending++;
        atomic_fetch_add(&q->dropped_total, 1);
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

uint64_t fp_audit_queue_dropped(fp_audit_queue *q)
{
    return q ? atomic_load(&q->dropped_total) : 0;
}
