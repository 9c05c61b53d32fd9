/* writeq.c — the issue requests' queue that both backends' writers share
 * (internal.h, fp_writeq): submit, cancel, the writer thread taking up to
 * max_batch requests at a time, the deadline thread, answering a batch once
 * it is committed or rolled back, and the outcome hook the store breaker
 * hears.  What a batch writes is the backend's (run_batch in
 * sqlite/writer.c and pg/writer.c).
 *
 * Who owns what:
 *   the backend's writer lock (wlock)  taken by the writer thread before
 *           it takes a batch, handed to run(), which releases it.
 *   lock    head, tail, stopping, draining, reaper_stop, and batch: the
 *           requests being written, which the deadline thread may answer
 *           early (FP_ISSUE_UNKNOWN) but never frees.  Taken after wlock,
 *           never before it.
 *   hooklock the outcome hook, called from the writer and the deadline
 *           thread.
 *   atomics the counters.
 * The deadline thread's timed wait runs on CLOCK_MONOTONIC (clock.h), so a
 * wall-clock step neither stalls nor hurries it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/clock.h"
#include "internal.h"

void fp_writeq_init(fp_writeq *q, int max_batch, int write_deadline_ms)
{
    q->max_batch = max_batch > 0 ? max_batch : 1;
    q->deadline_ms = write_deadline_ms;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    fp_cond_init_mono(&q->rpcond); /* the deadline thread's timed wait */
    pthread_mutex_init(&q->hooklock, NULL);
}

void fp_writeq_fini(fp_writeq *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
    pthread_cond_destroy(&q->rpcond);
    pthread_mutex_destroy(&q->hooklock);
}

void fp_issue_req_fail(fp_issue_req *r, const char *why)
{
    if (r->result == FP_ISSUE_CREATED && r->doc.json == NULL) {
        r->doc.json = r->response; /* give the document back for free() */
        r->response = NULL;
    }
    free(r->response);
    r->response = NULL;
    r->result = FP_ISSUE_FAILED;
    r->number[0] = 0; /* a number of a rolled-back batch was never stored */
    snprintf(r->error, sizeof r->error, "%s", why);
}

void fp_writeq_outcome(fp_writeq *q, int ok)
{
    pthread_mutex_lock(&q->hooklock);
    if (q->outcome_hook)
        q->outcome_hook(ok, q->outcome_hook_arg);
    pthread_mutex_unlock(&q->hooklock);
}

void fp_writeq_set_outcome_hook(fp_writeq *q, void (*fn)(int ok, void *arg), void *arg)
{
    pthread_mutex_lock(&q->hooklock);
    q->outcome_hook = fn;
    q->outcome_hook_arg = arg;
    pthread_mutex_unlock(&q->hooklock);
}

void fp_writeq_submit(fp_writeq *q, fp_issue_req *r)
{
    r->next = NULL;
    r->result = FP_ISSUE_PENDING;
    atomic_store(&r->early, 0);
    atomic_store(&r->refs, 0);
    r->deadline_ms = q->deadline_ms > 0 ? fp_mono_ms() + q->deadline_ms : 0;
    pthread_mutex_lock(&q->lock);
    if (q->stopping || q->draining[0] || !q->writer_started) {
        char why[sizeof q->draining];
        snprintf(why, sizeof why, "%s",
                 q->draining[0] ? q->draining
                 : q->stopping  ? "store is shutting down"
                                : "store is read-only");
        pthread_mutex_unlock(&q->lock);
        fp_issue_req_fail(r, why);
        r->done(r, r->arg);
        return;
    }
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

int fp_writeq_cancel(fp_writeq *q, const char *why)
{
    pthread_mutex_lock(&q->lock);
    snprintf(q->draining, sizeof q->draining, "%s", why && *why ? why : "cancelled");
    fp_issue_req *head = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    int n = 0;
    for (fp_issue_req *r = head, *next; r; r = next, n++) {
        next = r->next;
        r->next = NULL;
        fp_issue_req_fail(r, why && *why ? why : "cancelled");
        r->done(r, r->arg);
    }
    return n;
}

void fp_writeq_answer(fp_writeq *q, fp_issue_req *head, int n)
{
    atomic_fetch_add(&q->commits, 1);
    atomic_fetch_add(&q->requests, (uint64_t)n);
    uint64_t mb = atomic_load(&q->max_seen);
    while ((uint64_t)n > mb && !atomic_compare_exchange_weak(&q->max_seen, &mb, (uint64_t)n))
        ;
    /* from here no request of the batch is answered early any more */
    pthread_mutex_lock(&q->lock);
    q->batch = NULL;
    pthread_mutex_unlock(&q->lock);
    /* answer only now: everything before is committed or rolled back */
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
    fp_writeq *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->cond, &q->lock);
        if (!q->head && q->stopping) {
            pthread_mutex_unlock(&q->lock);
            break;
        }
        pthread_mutex_unlock(&q->lock);
        /* The writer connection first, then the batch: while another
         * write holds it (a job, a probe, an audit record; on a stalled
         * disk for seconds) requests wait in the queue, where their
         * deadline answers them "nothing stored". */
        pthread_mutex_lock(q->wlock);
        pthread_mutex_lock(&q->lock);
        if (!q->head) { /* all timed out meanwhile */
            pthread_mutex_unlock(&q->lock);
            pthread_mutex_unlock(q->wlock);
            continue;
        }
        fp_issue_req *head = q->head, *tail = head;
        int n = 1;
        while (tail->next && n < q->max_batch) {
            tail = tail->next;
            n++;
        }
        q->head = tail->next;
        if (!q->head)
            q->tail = NULL;
        tail->next = NULL;
        q->batch = head;
        pthread_mutex_unlock(&q->lock);
        q->run(q->be, head, n); /* releases wlock, then fp_writeq_answer */
    }
    return NULL;
}

/* Every 50 ms (docs/storage-space.md, "stalled disk"): queued requests past
 * their deadline leave the queue with FP_ISSUE_TIMEOUT (nothing of them was
 * written); requests of the batch being written (in practice: whose COMMIT
 * is still running, or a database that stopped answering) at their
 * deadline are answered FP_ISSUE_UNKNOWN and stay with the writer, which
 * releases them when the batch ends.  Both count as failed writes for the
 * store breaker. */
static void *reaper_main(void *arg)
{
    fp_writeq *q = arg;
    pthread_mutex_lock(&q->lock);
    while (!q->reaper_stop) {
        fp_cond_wait_ms(&q->rpcond, &q->lock, 50);
        if (q->reaper_stop)
            break;
        int64_t now = fp_mono_ms();
        int failures = 0;
        fp_issue_req *expired = NULL, **pp = &q->head, *prev = NULL;
        while (*pp) {
            fp_issue_req *r = *pp;
            if (r->deadline_ms && now >= r->deadline_ms) {
                *pp = r->next;
                if (q->tail == r)
                    q->tail = prev;
                r->next = expired;
                expired = r;
                continue;
            }
            prev = r;
            pp = &r->next;
        }
        for (fp_issue_req *r = q->batch; r; r = r->next)
            if (r->deadline_ms && now >= r->deadline_ms && !atomic_load(&r->early)) {
                atomic_store(&r->refs, 2); /* the writer's and the caller's */
                atomic_store(&r->early, FP_ISSUE_UNKNOWN);
                atomic_fetch_add(&q->unknown, 1);
                failures++;
                r->done(r, r->arg); /* under lock: the writer cannot release it meanwhile */
            }
        pthread_mutex_unlock(&q->lock);
        for (fp_issue_req *r = expired, *next; r; r = next) {
            next = r->next;
            r->next = NULL;
            r->result = FP_ISSUE_TIMEOUT;
            r->number[0] = 0;
            snprintf(r->error, sizeof r->error, "still queued for the writer at its deadline");
            atomic_fetch_add(&q->timed_out, 1);
            failures++;
            r->done(r, r->arg);
        }
        for (int i = 0; i < failures; i++)
            fp_writeq_outcome(q, 0);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int fp_writeq_start(fp_writeq *q, pthread_mutex_t *wlock,
                    void (*run)(void *be, fp_issue_req *head, int n), void *be, fp_err *err)
{
    q->wlock = wlock;
    q->run = run;
    q->be = be;
    if (pthread_create(&q->writer, NULL, writer_main, q) != 0)
        return fp_fail(err, FP_EIO, "cannot start the writer thread");
    q->writer_started = 1;
    if (pthread_create(&q->reaper, NULL, reaper_main, q) != 0)
        return fp_fail(err, FP_EIO, "cannot start the deadline thread");
    q->reaper_started = 1;
    return 0;
}

/* The writer drains the queue first (every queued request gets its
 * answer), then the deadline thread stops. */
void fp_writeq_stop(fp_writeq *q)
{
    if (q->writer_started) {
        pthread_mutex_lock(&q->lock);
        q->stopping = 1;
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->writer, NULL);
        q->writer_started = 0;
    }
    if (q->reaper_started) {
        pthread_mutex_lock(&q->lock);
        q->reaper_stop = 1;
        pthread_cond_signal(&q->rpcond);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->reaper, NULL);
        q->reaper_started = 0;
    }
}

/* The queue's part of store.h's fp_store_stats. */
void fp_writeq_stats(fp_writeq *q, fp_store_stats *st)
{
    st->commits = atomic_load(&q->commits);
    st->requests = atomic_load(&q->requests);
    st->max_batch = atomic_load(&q->max_seen);
    st->timed_out = atomic_load(&q->timed_out);
    st->unknown = atomic_load(&q->unknown);
}
