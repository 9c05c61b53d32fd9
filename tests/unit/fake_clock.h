/* fake_clock.h — a fake fp_clock for the unit tests (clock.h, "An
 * injectable clock"): its monotonic clock moves only when the test moves
 * it, its wall clock moves with it and may also step, as an NTP step or
 * `date -s` would, and its steady wall clock (fp_clock_steady_ms) follows
 * the monotonic one.  Used by test_deadlines.c and test_store.c. */
#ifndef FP_TEST_FAKE_CLOCK_H
#define FP_TEST_FAKE_CLOCK_H

#include "check.h"
#include "fapiao/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* A thread that has waited on the fake: settle() waits for each of them
 * (entries: its waits entered since the gen it counts for). */
#define FAKE_MAX_WAITERS 16
typedef struct fake_waiter {
    pthread_t th;
    uint64_t gen;
    int entries;
} fake_waiter;

typedef struct fake {
    fp_clock c;
    pthread_mutex_t m;
    int64_t mono_ns, wall_ms;
    uint64_t gen; /* bumped by every move */
    fake_waiter w[FAKE_MAX_WAITERS];
    int threads;  /* how many threads the test starts on the fake (1 unless set) */
    int nw;       /* threads that have waited on the fake so far */
    int overflow; /* a thread beyond FAKE_MAX_WAITERS waited: settle fails */
} fake;

static inline int64_t fake_mono(const fp_clock *c)
{
    fake *f = c->ctx;
    pthread_mutex_lock(&f->m);
    int64_t v = f->mono_ns;
    pthread_mutex_unlock(&f->m);
    return v;
}

static inline int64_t fake_wall(const fp_clock *c)
{
    fake *f = c->ctx;
    pthread_mutex_lock(&f->m);
    int64_t v = f->wall_ms;
    pthread_mutex_unlock(&f->m);
    return v;
}

/* Counts a wait entered by the calling thread (f->m held): its first
 * wait registers it. */
static inline void fake_count_entry(fake *f)
{
    pthread_t self = pthread_self();
    fake_waiter *w = NULL;
    for (int i = 0; i < f->nw && !w; i++)
        if (pthread_equal(f->w[i].th, self))
            w = &f->w[i];
    if (!w) {
        if (f->nw == FAKE_MAX_WAITERS) {
            f->overflow = 1;
            return;
        }
        w = &f->w[f->nw++];
        w->th = self;
        w->gen = f->gen;
        w->entries = 0;
    }
    if (w->gen != f->gen) {
        w->gen = f->gen;
        w->entries = 0;
    }
    w->entries++;
}

/* Due at once if the fake's monotonic time has reached the deadline;
 * otherwise a real millisecond on the caller's condition variable (which
 * releases the caller's mutex and lets its signals in), then a spurious
 * wake-up unless the test moved the time past the deadline meanwhile. */
static inline int fake_wait(const fp_clock *c, pthread_cond_t *cv, pthread_mutex_t *mu,
                            int64_t deadline_ns)
{
    fake *f = c->ctx;
    pthread_mutex_lock(&f->m);
    fake_count_entry(f);
    int due = f->mono_ns >= deadline_ns;
    pthread_mutex_unlock(&f->m);
    if (due)
        return ETIMEDOUT;
    fp_cond_wait_ms(cv, mu, 1);
    pthread_mutex_lock(&f->m);
    due = f->mono_ns >= deadline_ns;
    pthread_mutex_unlock(&f->m);
    return due ? ETIMEDOUT : 0;
}

static inline void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->m, NULL);
    f->c = (fp_clock){fake_mono, fake_wall, fake_wait, f};
    f->threads = 1;
    f->mono_ns = 5000LL * 1000000000; /* anything: the monotonic clock has no epoch */
    f->wall_ms = 1767225600000LL;     /* 2026-01-01T00:00:00Z */
    f->c.steady_base_ms = f->wall_ms - f->mono_ns / 1000000;
}

/* Monotonic time on by mono_ms; the wall clock by as much plus step_ms. */
static inline void fake_move(fake *f, int64_t mono_ms, int64_t step_ms)
{
    pthread_mutex_lock(&f->m);
    f->mono_ns += mono_ms * 1000000;
    f->wall_ms += mono_ms + step_ms;
    f->gen++;
    pthread_mutex_unlock(&f->m);
}

/* 1 when all f->threads threads have waited on the fake and each of them
 * has entered its wait twice since the last move (f->m held).  Twice: the first entry may end a
 * wait begun before the move (it sees the new time and returns), the
 * second is the next round of the thread's loop, so whatever the new time
 * made due has run.  Each thread counts its own waits: one that re-enters
 * every real millisecond (the outbox's keeper) cannot stand in for one
 * still on its way round (the job thread). */
static inline int fake_settled(const fake *f)
{
    if (f->overflow || f->nw < f->threads)
        return 0;
    for (int i = 0; i < f->nw; i++)
        if (f->w[i].gen != f->gen || f->w[i].entries < 2)
            return 0;
    return 1;
}

/* Until fake_settled: 1, or 0 after 30 s of real time (a thread that never
 * waits again: the check that follows fails).  Every thread that has
 * waited on the fake must still be looping: settle() is for use between a
 * start and a stop. */
static inline int settle(fake *f)
{
    for (int i = 0; i < 30000; i++) {
        pthread_mutex_lock(&f->m);
        int ok = fake_settled(f);
        pthread_mutex_unlock(&f->m);
        if (ok)
            return 1;
        usleep(1000);
    }
    return 0;
}

static inline void move_settle(fake *f, int64_t mono_ms, int64_t step_ms)
{
    fake_move(f, mono_ms, step_ms);
    CHECK_MSG(settle(f), "the thread did not go round its loop after a move of %lld ms",
              (long long)mono_ms);
}

#endif
