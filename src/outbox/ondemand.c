/* ondemand.c — on-demand renders and the backlog keeper (docs/outbox.md).
 *
 * fp_outbox_render_now queues a render for the job threads (outbox.c),
 * which take it ahead of the background's jobs (fp_ob_od_pick), run it and
 * hand back the result (fp_ob_od_finish).  The keeper thread answers renders whose deadline passed,
 * counts the render backlog and its oldest age, switches the mode (with
 * hysteresis), and prunes done jobs.  The state and its locks: internal.h. */
#include "internal.h"
#include "fapiao/clock.h"
#include "fapiao/jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp_ob_od_init(fp_outbox *ob)
{
    fp_cond_init_mono(&ob->kcv);
}

void fp_ob_od_drain(fp_outbox *ob)
{
    for (od_item *it = ob->od, *next; it; it = next) {
        next = it->next;
        if (!it->answered)
            it->done(FP_OD_STOPPING, it->arg);
        free(it);
    }
    ob->od = NULL;
}

/* The next queued on-demand render, under mu: the seller with the fewest
 * renders running first, then the oldest.  NULL: none. */
od_item *fp_ob_od_pick(fp_outbox *ob)
{
    od_item *best = NULL;
    int best_running = 0;
    for (od_item *it = ob->od; it; it = it->next) {
        if (it->running)
            continue;
        int running = 0;
        for (od_item *o = ob->od; o; o = o->next)
            running += o->running && o->seller_id == it->seller_id;
        if (!best || running < best_running || (running == best_running && it->seq < best->seq)) {
            best = it;
            best_running = running;
        }
    }
    if (best)
        best->running = 1;
    return best;
}

static void od_unlink(fp_outbox *ob, od_item *it)
{
    for (od_item **pp = &ob->od; *pp; pp = &(*pp)->next)
        if (*pp == it) {
            *pp = it->next;
            ob->nod--;
            return;
        }
}

void fp_ob_od_finish(fp_outbox *ob, od_item *it, int result)
{
    pthread_mutex_lock(&ob->mu);
    od_unlink(ob, it);
    int answer = !it->answered;
    it->answered = 1;
    pthread_mutex_unlock(&ob->mu);
    if (answer)
        it->done(result, it->arg);
    free(it);
}

int fp_outbox_render_due(fp_outbox *ob, int64_t first_at, int tried_and_failed)
{
    if (!ob)
        return 0;
    if (atomic_load(&ob->on_demand))
        return 1;
    int64_t after = ob->o.on_demand_after_ms;
    return after > 0 && !tried_and_failed && first_at > 0 &&
           fp_clock_steady_ms(ob->o.clock) - first_at >= after;
}

int fp_outbox_render_now(fp_outbox *ob, int64_t seller_id, const char *number,
                         void (*done)(int result, void *arg), void *arg)
{
    od_item *it = calloc(1, sizeof *it);
    if (!it)
        return FP_ENOMEM;
    it->seller_id = seller_id;
    snprintf(it->number, sizeof it->number, "%s", number);
    it->deadline_ns = fp_clock_mono_ns(ob->o.clock) + (int64_t)ob->o.on_demand_wait_ms * 1000000;
    it->done = done;
    it->arg = arg;
    pthread_mutex_lock(&ob->mu);
    int mine = 0;
    for (od_item *o = ob->od; o; o = o->next)
        mine += o->seller_id == seller_id;
    if (ob->stopping || ob->nod >= OD_MAX || mine >= OD_MAX / 4) {
        pthread_mutex_unlock(&ob->mu);
        free(it);
        atomic_fetch_add(&ob->od_refused, 1);
        return FP_EBUSY;
    }
    it->seq = ++ob->od_seq;
    it->next = ob->od;
    ob->od = it;
    ob->nod++;
    ob->kicks++;
    pthread_cond_broadcast(&ob->cv); /* a job thread takes it */
    pthread_cond_signal(&ob->kcv);   /* the keeper watches its deadline */
    pthread_mutex_unlock(&ob->mu);
    return 0;
}

void fp_outbox_backlog_get(fp_outbox *ob, fp_outbox_backlog *out)
{
    out->on_demand = atomic_load(&ob->on_demand);
    out->pending = atomic_load(&ob->backlog);
    out->oldest_ms = atomic_load(&ob->backlog_oldest_ms);
    out->rendered_bg = atomic_load(&ob->rendered_bg);
    out->rendered_od = atomic_load(&ob->rendered_od);
    out->od_timeouts = atomic_load(&ob->od_timeouts);
    out->od_refused = atomic_load(&ob->od_refused);
    out->switches = atomic_load(&ob->switches);
    out->pruned = atomic_load(&ob->pruned);
}

/* The mode from the last count, with hysteresis: on at either threshold,
 * off again below half of both. */
static void decide_mode(fp_outbox *ob, int64_t pending, int64_t oldest_ms)
{
    int64_t nmax = ob->o.render_backlog_max, amax = ob->o.render_age_max_ms;
    int over = (nmax > 0 && pending >= nmax) || (amax > 0 && oldest_ms >= amax);
    int under = (nmax <= 0 || pending <= nmax / 2) && (amax <= 0 || oldest_ms <= amax / 2);
    int was = atomic_load(&ob->on_demand), now = was ? !under : over;
    if (now == was)
        return;
    /* the writer first: once the mode shows, new invoices' events follow it */
    fp_store_set_notify_early(ob->o.store, now);
    atomic_store(&ob->on_demand, now);
    atomic_fetch_add(&ob->switches, 1);
    fprintf(stderr,
            "{\"event\":\"render_mode\",\"mode\":\"%s\",\"pending\":%lld,"
            "\"oldest_ms\":%lld}\n",
            now ? "on_demand" : "background", (long long)pending, (long long)oldest_ms);
}

typedef struct od_answer {
    void (*done)(int result, void *arg);
    void *arg;
    od_item *free_me;
} od_answer;

/* The keeper: deadlines of on-demand renders, the backlog count and the
 * mode, pruning.  Its waits run on the monotonic clock. */
void *fp_ob_keeper_main(void *arg)
{
    fp_outbox *ob = arg;
    int64_t next_count = 0, next_prune = 0;
    od_answer ans[OD_MAX];
    pthread_mutex_lock(&ob->mu);
    while (!ob->stopping) {
        int64_t now = fp_clock_mono_ns(ob->o.clock), wake = now + 1000000000LL;
        int nans = 0;
        for (od_item **pp = &ob->od; *pp;) {
            od_item *it = *pp;
            if (!it->answered && it->deadline_ns <= now && nans < OD_MAX) {
                it->answered = 1;
                ans[nans++] = (od_answer){it->done, it->arg, it->running ? NULL : it};
                if (!it->running) { /* no thread has it: it goes now */
                    *pp = it->next;
                    ob->nod--;
                    continue;
                }
            } else if (!it->answered && it->deadline_ns < wake) {
                wake = it->deadline_ns;
            }
            pp = &it->next;
        }
        pthread_mutex_unlock(&ob->mu);
        for (int i = 0; i < nans; i++) {
            atomic_fetch_add(&ob->od_timeouts, 1);
            ans[i].done(FP_OD_TIMEOUT, ans[i].arg);
            free(ans[i].free_me);
        }
        int64_t ms = now / 1000000;
        if (ms >= next_count) {
            fp_jobs_counts c;
            fp_err err = {0};
            int64_t t0 = fp_clock_mono_ms(ob->o.clock);
            if (fp_jobs_count(ob->o.store, &c, &err) == 0) {
                int64_t oldest =
                    c.oldest_render_at ? fp_clock_steady_ms(ob->o.clock) - c.oldest_render_at : 0;
                if (oldest < 0)
                    oldest = 0;
                atomic_store(&ob->backlog, c.n[FP_JOB_RENDER][FP_JS_PENDING]);
                atomic_store(&ob->backlog_oldest_ms, oldest);
                decide_mode(ob, c.n[FP_JOB_RENDER][FP_JS_PENDING], oldest);
            }
            /* a count scans the unfinished jobs: at most 5 % of the time */
            int64_t took = fp_clock_mono_ms(ob->o.clock) - t0;
            next_count = ms + (took * 20 > 1000 ? took * 20 : 1000);
        }
        if (ob->o.job_retention_ms > 0 && ms >= next_prune) {
            int64_t n = 0;
            fp_err err = {0};
            /* the job threads' last look at the disk: paused, no writes */
            if (!atomic_load(&ob->pause_seen) &&
                fp_store_failstop(ob->o.store, NULL, 0) == FP_FAILSTOP_NONE &&
                fp_jobs_prune(ob->o.store, fp_clock_steady_ms(ob->o.clock) - ob->o.job_retention_ms,
                              PRUNE_BATCH, &n, &err) == 0)
                atomic_fetch_add(&ob->pruned, (uint64_t)n);
            /* a full batch: more are due, go on soon (the writer gets its
             * turns in between); else look again in a second */
            next_prune = fp_clock_mono_ms(ob->o.clock) + (n >= PRUNE_BATCH ? 20 : 1000);
        }
        int64_t until_ms =
            next_count < next_prune || ob->o.job_retention_ms <= 0 ? next_count : next_prune;
        if (until_ms * 1000000 < wake)
            wake = until_ms * 1000000;
        pthread_mutex_lock(&ob->mu);
        if (!ob->stopping && wake > fp_clock_mono_ns(ob->o.clock))
            fp_clock_wait_until(ob->o.clock, &ob->kcv, &ob->mu, wake);
    }
    pthread_mutex_unlock(&ob->mu);
    return NULL;
}
