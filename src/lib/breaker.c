/* breaker.c — the circuit breaker of breaker.h. */
#include "fapiao/breaker.h"

#include <stdio.h>
#include <string.h>

static const char *const names[] = {"closed", "open", "half_open"};

const char *fp_breaker_state_name(fp_breaker_state s)
{
    return (unsigned)s < 3 ? names[s] : "?";
}

static void log_change(const fp_breaker *b, fp_breaker_state from, fp_breaker_state to, void *arg)
{
    (void)arg;
    fprintf(stderr, "{\"event\":\"breaker\",\"breaker\":\"%s\",\"from\":\"%s\",\"to\":\"%s\"}\n",
            b->name, names[from], names[to]);
}

void fp_breaker_init(fp_breaker *b, const char *name, const fp_breaker_opts *o)
{
    memset(b, 0, sizeof *b);
    if (o)
        b->o = *o;
    if (b->o.window_ms <= 0)
        b->o.window_ms = 10000;
    if (b->o.min_volume <= 0)
        b->o.min_volume = 20;
    if (b->o.fail_permille <= 0)
        b->o.fail_permille = 50;
    if (b->o.consecutive == 0)
        b->o.consecutive = 5;
    if (b->o.open_ms <= 0)
        b->o.open_ms = 5000;
    if (b->o.max_open_ms < b->o.open_ms)
        b->o.max_open_ms = b->o.open_ms > 300000 ? b->o.open_ms : 300000;
    if (!b->o.on_change)
        b->o.on_change = log_change;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->cur_open_ms = b->o.open_ms;
    pthread_mutex_init(&b->mu, NULL);
}

void fp_breaker_destroy(fp_breaker *b)
{
    pthread_mutex_destroy(&b->mu);
}

/* Locked.  Changes state and reports it (the callback runs under the lock:
 * it must not call back into this breaker). */
static void move(fp_breaker *b, fp_breaker_state to, int64_t now)
{
    fp_breaker_state from = b->state;
    if (from == to)
        return;
    b->state = to;
    if (to == FP_BREAKER_OPEN) {
        b->retry_at = now + b->cur_open_ms;
        b->opened_total++;
    }
    if (to == FP_BREAKER_CLOSED) {
        memset(b->b, 0, sizeof b->b);
        b->run_of_failures = 0;
        b->cur_open_ms = b->o.open_ms;
    }
    b->probing = 0;
    b->o.on_change(b, from, to, b->o.arg);
}

static void expire(fp_breaker *b, int64_t now)
{
    if (b->state == FP_BREAKER_OPEN && now >= b->retry_at)
        move(b, FP_BREAKER_HALF_OPEN, now);
}

int fp_breaker_allow(fp_breaker *b, int64_t now_ms, int64_t *retry_at)
{
    pthread_mutex_lock(&b->mu);
    expire(b, now_ms);
    int ok = 1;
    if (b->state == FP_BREAKER_OPEN) {
        ok = 0;
        if (retry_at)
            *retry_at = b->retry_at;
    } else if (b->state == FP_BREAKER_HALF_OPEN) {
        if (b->probing) {
            ok = 0;
            if (retry_at) /* the probe's answer decides; look again soon */
                *retry_at = now_ms + (b->o.open_ms < 1000 ? b->o.open_ms : 1000);
        } else {
            b->probing = 1;
        }
    }
    if (!ok)
        b->rejected_total++;
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void fp_breaker_record(fp_breaker *b, int64_t now_ms, int ok)
{
    pthread_mutex_lock(&b->mu);
    if (b->state == FP_BREAKER_HALF_OPEN) {
        if (ok) {
            move(b, FP_BREAKER_CLOSED, now_ms);
        } else {
            b->cur_open_ms =
                b->cur_open_ms * 2 > b->o.max_open_ms ? b->o.max_open_ms : b->cur_open_ms * 2;
            move(b, FP_BREAKER_OPEN, now_ms);
        }
        pthread_mutex_unlock(&b->mu);
        return;
    }
    if (b->state == FP_BREAKER_OPEN) { /* a call allowed before it opened */
        pthread_mutex_unlock(&b->mu);
        return;
    }
    int64_t width = b->o.window_ms / FP_BREAKER_BUCKETS;
    if (width < 1)
        width = 1;
    int64_t start = now_ms - now_ms % width;
    int i = (int)((now_ms / width) % FP_BREAKER_BUCKETS);
    if (b->b[i].start != start) {
        b->b[i].start = start;
        b->b[i].ok = b->b[i].fail = 0;
    }
    if (ok) {
        b->b[i].ok++;
        b->run_of_failures = 0;
    } else {
        b->b[i].fail++;
        b->run_of_failures++;
    }
    uint64_t total = 0, fails = 0;
    for (int k = 0; k < FP_BREAKER_BUCKETS; k++)
        if (b->b[k].start > now_ms - b->o.window_ms) {
            total += b->b[k].ok + b->b[k].fail;
            fails += b->b[k].fail;
        }
    int trip = (total >= (uint64_t)b->o.min_volume &&
                fails * 1000 > (uint64_t)b->o.fail_permille * total) ||
               (b->o.consecutive > 0 && b->run_of_failures >= b->o.consecutive);
    if (trip)
        move(b, FP_BREAKER_OPEN, now_ms);
    pthread_mutex_unlock(&b->mu);
}

fp_breaker_state fp_breaker_get(fp_breaker *b, int64_t now_ms)
{
    pthread_mutex_lock(&b->mu);
    expire(b, now_ms);
    fp_breaker_state s = b->state;
    pthread_mutex_unlock(&b->mu);
    return s;
}

void fp_breaker_snapshot(fp_breaker *b, int64_t now_ms, fp_breaker_state *state, int64_t *retry_at,
                         uint64_t *opened_total)
{
    pthread_mutex_lock(&b->mu);
    expire(b, now_ms);
    if (state)
        *state = b->state;
    if (retry_at)
        *retry_at = b->state == FP_BREAKER_OPEN ? b->retry_at : 0;
    if (opened_total)
        *opened_total = b->opened_total;
    pthread_mutex_unlock(&b->mu);
}
