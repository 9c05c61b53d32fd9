/* test_adaptive.c — adaptive.h against a simulated store on a fake clock.
 *
 * The store has C workers and a FIFO queue; each request takes `service`
 * ns (deterministic jitter: +-5 %, or +-50 % in the noisy cases) once a
 * worker is free.  So latency is flat
 * (= service) up to C in flight and grows linearly with the queue beyond,
 * and throughput is capped at C / service.  Clients are unlimited unless a
 * test says otherwise: whenever the limiter admits, a request starts.
 *
 * Checked: the limit settles within [0.9 C, 1.6 C] from far below and far
 * above, with goodput >= 90 % of capacity, also when stalls delay a quarter
 * of every round; a 10x slower store halves the limit within 300
 * completions, and the limit climbs back when it recovers; a store slower
 * for good becomes the new normal after a probe; failures cut the limit by
 * a quarter and repeated failures take it to the minimum; the bounds always
 * hold; no growth and no cut without refusals, nor a probe; rounds last min_round_ns;
 * cancelled requests give no sample; determinism; threads. */
#include "check.h"

#include "fapiao/adaptive.h"
#include "fapiao/err.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define MS 1000000LL
#define S  1000000000LL

enum { MAX_WORKERS = 1024, MAX_PENDING = 8192 };

typedef struct req {
    int64_t done, start;
} req;

typedef struct sim {
    fp_adaptive *a;
    int64_t now;
    int workers;
    int64_t service;
    int64_t free_at[MAX_WORKERS];
    req heap[MAX_PENDING]; /* pending completions, earliest first */
    int n;
    int demand;    /* clients: at most this many in flight */
    int fail_next; /* the next completions fail */
    int jitter;    /* service time varies by +- this permille (default 50) */
    /* stalls: of every stall_every requests started, the first stall_len
     * answer stall_ns late (their answer waits for a thread that lost its
     * CPU: the worker is free, the request still holds its slot) */
    int stall_every, stall_len;
    int64_t stall_ns, started;
    uint64_t rng;
    /* observed */
    int64_t completed;
    int lo, hi;       /* limit bounds seen */
    int max_inflight; /* limiter's in-flight count, highest seen */
} sim;

static fp_adaptive *ad_new(const fp_adaptive_opts *o)
{
    fp_adaptive *a = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_adaptive_new(o, &a, &err) == 0 && a, "fp_adaptive_new: %s", err.msg))
        exit(1);
    return a;
}

static void sim_init(sim *s, fp_adaptive *a, int workers, int64_t service)
{
    *s = (sim){.a = a,
               .now = 1000 * S,
               .workers = workers,
               .service = service,
               .demand = INT_MAX,
               .jitter = 50,
               .rng = 42,
               .lo = INT_MAX};
}

static void heap_push(sim *s, req r)
{
    int i = s->n++;
    while (i > 0 && s->heap[(i - 1) / 2].done > r.done) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = r;
}

static req heap_pop(sim *s)
{
    req top = s->heap[0], last = s->heap[--s->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= s->n)
            break;
        if (c + 1 < s->n && s->heap[c + 1].done < s->heap[c].done)
            c++;
        if (s->heap[c].done >= last.done)
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    s->heap[i] = last;
    return top;
}

/* A request arrives now: FIFO onto the worker that is free first. */
static void sim_start(sim *s)
{
    int w = 0;
    for (int i = 1; i < s->workers; i++)
        if (s->free_at[i] < s->free_at[w])
            w = i;
    s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t jitter = (int64_t)(s->rng >> 33) % (2 * s->jitter + 1) - s->jitter;
    int64_t begin = s->free_at[w] > s->now ? s->free_at[w] : s->now;
    int64_t done = begin + s->service + s->service * jitter / 1000;
    s->free_at[w] = done;
    if (s->stall_every && s->started % s->stall_every < s->stall_len)
        done += s->stall_ns;
    s->started++;
    heap_push(s, (req){.done = done, .start = s->now});
}

/* Admits while the limiter and the clients allow, then completes the
 * earliest request.  Returns its latency. */
static int64_t sim_step(sim *s)
{
    while (s->n < s->demand && s->n < MAX_PENDING && fp_adaptive_acquire(s->a, s->now))
        sim_start(s);
    int inflight = fp_adaptive_inflight(s->a);
    if (inflight > s->max_inflight)
        s->max_inflight = inflight;
    req r = heap_pop(s);
    s->now = r.done;
    int ok = 1;
    if (s->fail_next > 0) {
        s->fail_next--;
        ok = 0;
    }
    fp_adaptive_release(s->a, s->now, r.done - r.start, ok);
    s->completed++;
    int l = fp_adaptive_limit(s->a);
    if (l < s->lo)
        s->lo = l;
    if (l > s->hi)
        s->hi = l;
    return r.done - r.start;
}

static void sim_run(sim *s, int steps)
{
    for (int i = 0; i < steps; i++)
        sim_step(s);
}

/* Runs `steps` more and reports the limit's range, goodput (permille of
 * capacity) and mean latency over them. */
typedef struct window {
    int lo, hi;
    int64_t goodput_permille, mean_latency;
} window;

static window sim_window(sim *s, int steps)
{
    window w = {.lo = INT_MAX};
    int64_t t0 = s->now, sum = 0;
    for (int i = 0; i < steps; i++) {
        sum += sim_step(s);
        int l = fp_adaptive_limit(s->a);
        if (l < w.lo)
            w.lo = l;
        if (l > w.hi)
            w.hi = l;
    }
    /* capacity: workers / service requests per ns */
    w.goodput_permille = (int64_t)steps * s->service * 1000 / ((s->now - t0) * s->workers);
    w.mean_latency = sum / steps;
    return w;
}

/* ---- convergence ---- */

static void test_converges(void)
{
    static const struct {
        int workers, initial;
        int64_t service;
        int jitter; /* permille */
    } cases[] = {
        {50, 2, 1 * MS, 50},     {50, 20, 1 * MS, 50},   {50, 400, 1 * MS, 50},
        {50, 1000, 1 * MS, 50},  {10, 2, 5 * MS, 50},    {10, 200, 5 * MS, 50},
        {200, 5, 2 * MS, 50},    {200, 900, 2 * MS, 50}, {50, 2, 1 * MS, 500},
        {50, 1000, 1 * MS, 500}, {10, 200, 5 * MS, 500}, {200, 5, 2 * MS, 500},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        int c = cases[i].workers;
        check_ctx("converge[%zu] C=%d from %d, jitter %d permille", i, c, cases[i].initial,
                  cases[i].jitter);
        fp_adaptive_opts o = {.initial_limit = cases[i].initial,
                              .max_limit = 1000,
                              .probe_interval_ns = 200 * cases[i].service};
        fp_adaptive *a = ad_new(&o);
        static sim s;
        sim_init(&s, a, c, cases[i].service);
        s.jitter = cases[i].jitter;
        sim_run(&s, 400 * c + 20000);
        window w = sim_window(&s, 200 * c);
        CHECK_MSG(w.lo * 10 >= c * 9 && w.hi * 10 <= c * 16,
                  "limit in [%d, %d], want within [0.9 C, 1.6 C] = [%d, %d]", w.lo, w.hi,
                  c * 9 / 10, c * 16 / 10);
        CHECK_MSG(w.goodput_permille >= 900, "goodput %" PRId64 " permille of capacity",
                  w.goodput_permille);
        CHECK_MSG(w.mean_latency * 10 <= cases[i].service * 17,
                  "mean latency %" PRId64 " ns for service %" PRId64, w.mean_latency,
                  cases[i].service);
        fp_adaptive_stats st;
        fp_adaptive_stats_get(a, &st);
        CHECK(st.probes >= 1);
        CHECK(st.long_ns * 10 >= cases[i].service * 9 && st.long_ns * 10 <= cases[i].service * 12);
        fp_adaptive_free(a);
    }
    check_ctx("%s", "");
}

/* ---- the store slows down and recovers ---- */

static void test_slowdown(void)
{
    check_ctx("slowdown");
    enum { C = 50 };
    /* probes far apart: this is about the reaction between two of them */
    fp_adaptive_opts o = {.initial_limit = 10, .probe_interval_ns = 3600 * S};
    fp_adaptive *a = ad_new(&o);
    static sim s;
    sim_init(&s, a, C, MS);
    sim_run(&s, 30000);
    int before = fp_adaptive_limit(a);
    CHECK(before >= C * 9 / 10 && before <= C * 16 / 10);

    s.service = 10 * MS;
    int n = 0;
    while (n < 10000 && fp_adaptive_limit(a) * 2 > before) {
        sim_step(&s);
        n++;
    }
    CHECK_MSG(n <= 300, "limit halved after %d completions (from %d to %d)", n, before,
              fp_adaptive_limit(a));
    sim_run(&s, 2000);
    int slow = fp_adaptive_limit(a);
    CHECK_MSG(slow <= before / 4, "limit %d while slow (before %d)", slow, before);

    s.service = MS;
    n = 0;
    while (n < 100000 && fp_adaptive_limit(a) * 10 < C * 9) {
        sim_step(&s);
        n++;
    }
    CHECK_MSG(n <= 5000, "back to 0.9 C after %d completions (limit %d)", n, fp_adaptive_limit(a));
    window w = sim_window(&s, 20000);
    CHECK_MSG(w.lo * 10 >= C * 9 && w.hi * 10 <= C * 16, "limit in [%d, %d] after recovery", w.lo,
              w.hi);
    fp_adaptive_free(a);

    check_ctx("slower for good");
    fp_adaptive_opts o2 = {.initial_limit = 10, .probe_interval_ns = 500 * MS};
    a = ad_new(&o2);
    sim_init(&s, a, C, MS);
    sim_run(&s, 30000);
    s.service = 10 * MS;
    sim_run(&s, 500);
    CHECK(fp_adaptive_limit(a) <= C / 2);
    /* the next probe measures the new no-load latency: the limit climbs
     * back to what the store sustains (it still serves C at once) */
    sim_run(&s, 20000);
    window w2 = sim_window(&s, 10000);
    CHECK_MSG(w2.lo * 10 >= C * 9 && w2.hi * 10 <= C * 16, "limit in [%d, %d] at the new normal",
              w2.lo, w2.hi);
    fp_adaptive_stats st;
    fp_adaptive_stats_get(a, &st);
    CHECK(st.long_ns >= 9 * MS && st.long_ns <= 12 * MS);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

/* ---- failures ---- */

static void test_failures(void)
{
    check_ctx("failures");
    enum { C = 40 };
    fp_adaptive_opts o = {.initial_limit = 10, .min_limit = 3, .probe_interval_ns = 3600 * S};
    fp_adaptive *a = ad_new(&o);
    static sim s;
    sim_init(&s, a, C, MS);
    sim_run(&s, 30000);
    int before = fp_adaptive_limit(a);
    s.fail_next = 1;
    sim_step(&s);
    CHECK_EQ_INT(fp_adaptive_limit(a), before * 3 / 4);
    /* a burst as long as the window is one signal */
    int after = fp_adaptive_limit(a);
    s.fail_next = fp_adaptive_inflight(a);
    while (s.fail_next > 0)
        sim_step(&s);
    CHECK_EQ_INT(fp_adaptive_limit(a), after);
    /* everything fails for a while: down to the minimum, not below */
    s.fail_next = 5000;
    while (s.fail_next > 0)
        sim_step(&s);
    CHECK_EQ_INT(fp_adaptive_limit(a), 3);
    CHECK(s.lo >= 3);
    /* failures stop: the limit comes back */
    sim_run(&s, 5000);
    CHECK(fp_adaptive_limit(a) * 10 >= C * 9);
    fp_adaptive_stats st;
    fp_adaptive_stats_get(a, &st);
    CHECK(st.failures >= 5001);
    CHECK(st.decreases >= 3);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

/* ---- bounds and load ---- */

static void test_bounds(void)
{
    check_ctx("bounds: max");
    fp_adaptive_opts o = {
        .initial_limit = 1, .min_limit = 5, .max_limit = 60, .probe_interval_ns = 50 * MS};
    fp_adaptive *a = ad_new(&o);
    CHECK_EQ_INT(fp_adaptive_limit(a), 5); /* initial clamped into the bounds */
    static sim s;
    sim_init(&s, a, 200, MS); /* capacity far above max_limit */
    sim_run(&s, 50000);
    CHECK_EQ_INT(fp_adaptive_limit(a), 60);
    CHECK(s.hi <= 60 && s.lo >= 5);
    CHECK(s.max_inflight <= 60);
    /* a store 100x slower with failures: never below the minimum */
    s.service = 100 * MS;
    s.fail_next = 300;
    sim_run(&s, 3000);
    CHECK(s.lo >= 5);
    CHECK_EQ_INT(fp_adaptive_limit(a), 5);
    fp_adaptive_free(a);

    check_ctx("bounds: no growth without load");
    fp_adaptive_opts o2 = {.initial_limit = 20, .probe_interval_ns = 50 * MS};
    a = ad_new(&o2);
    sim_init(&s, a, 200, MS);
    s.demand = 10; /* only 10 clients: the store is never the bottleneck */
    sim_run(&s, 50000);
    CHECK_MSG(s.hi <= 2 * 10 + 2, "limit grew to %d with 10 clients", s.hi);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

/* ---- noise: stalls that delay part of a round ---- */

static void test_stalls(void)
{
    enum { C = 50 };
    /* A quarter of each round (a round is at least 64 completions here)
     * answers 8 service times late: a round's mean triples, its median
     * does not move.  The stalled answers hold slots without holding a
     * worker: keeping the C workers busy takes C + (stalled in flight) =
     * C + (C / service) * 1/4 * 8 service = 3 C slots, and that is where
     * the limit should go, not down. */
    check_ctx("stalls");
    fp_adaptive_opts o = {.initial_limit = 10, .probe_interval_ns = 200 * MS};
    fp_adaptive *a = ad_new(&o);
    static sim s;
    sim_init(&s, a, C, MS);
    s.stall_every = 64;
    s.stall_len = 16;
    s.stall_ns = 8 * MS;
    sim_run(&s, 60000);
    window w = sim_window(&s, 30000);
    CHECK_MSG(w.lo * 10 >= 3 * C * 9 && w.hi * 10 <= 3 * C * 16,
              "limit in [%d, %d] with stalls, want within [0.9, 1.6] x 3 C = [%d, %d]", w.lo, w.hi,
              3 * C * 9 / 10, 3 * C * 16 / 10);
    CHECK_MSG(w.goodput_permille >= 900, "goodput %" PRId64 " permille with stalls",
              w.goodput_permille);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

/* ---- the limit only moves when it refuses someone ---- */

static void test_refusals(void)
{
    check_ctx("no cut without refusals");
    fp_adaptive_opts o = {.initial_limit = 20, .probe_interval_ns = 3600 * S};
    fp_adaptive *a = ad_new(&o);
    static sim s;
    sim_init(&s, a, 200, MS);
    s.demand = 10; /* 10 clients: the limit of 20 never refuses */
    sim_run(&s, 5000);
    /* the store gets 10x slower: latency is up, but only because each
     * request takes longer; refusing requests would not speed anyone up */
    s.service = 10 * MS;
    sim_run(&s, 5000);
    fp_adaptive_stats st;
    fp_adaptive_stats_get(a, &st);
    CHECK_EQ_INT(st.limit, 20);
    CHECK_EQ_INT(st.decreases, 0);
    CHECK_EQ_INT(st.refused, 0);
    /* clients arrive in numbers and queue in the slow store: now it cuts */
    s.demand = INT_MAX;
    s.workers = 5;
    sim_run(&s, 3000);
    fp_adaptive_stats_get(a, &st);
    CHECK(st.decreases >= 1);
    CHECK(st.limit < 20);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

/* A probe refuses no one the limit never bounded: 40 clients under a limit
 * of 64 are never turned away, however many probe intervals pass (a probe
 * would hold admission at 32 and refuse 8 of them each time: the server's
 * periodic bursts of 429s, docs/performance.md §5c).  Once the limit does
 * refuse, the probes come back. */
static void test_probe_unbound(void)
{
    check_ctx("no probe while the limit binds no one");
    fp_adaptive_opts o = {.initial_limit = 64, .probe_interval_ns = 100 * MS};
    fp_adaptive *a = ad_new(&o);
    static sim s;
    sim_init(&s, a, 200, MS);
    s.demand = 40;
    sim_run(&s, 20000); /* 500 ms of requests: 5 probe intervals */
    fp_adaptive_stats st;
    fp_adaptive_stats_get(a, &st);
    CHECK_EQ_INT(st.refused, 0);
    CHECK_EQ_INT(st.probes, 0);
    CHECK_EQ_INT(st.limit, 64);
    /* more clients than the limit: refusals, and a probe follows */
    s.demand = INT_MAX;
    sim_run(&s, 20000);
    fp_adaptive_stats_get(a, &st);
    CHECK(st.refused > 0);
    CHECK(st.probes >= 1);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

/* ---- rounds last at least min_round_ns ---- */

static void test_min_round(void)
{
    check_ctx("min_round_ns");
    enum { C = 50 };
    fp_adaptive_opts o = {.initial_limit = 5, .probe_interval_ns = 3600 * S, .min_round_ns = S};
    fp_adaptive *a = ad_new(&o);
    static sim s;
    sim_init(&s, a, C, MS);
    int64_t t0 = s.now;
    /* 5 in flight at 1 ms: 5,000 completions a second; no round may end
     * within the first second, so the limit cannot have moved */
    while (s.now - t0 < S * 9 / 10)
        sim_step(&s);
    CHECK_EQ_INT(fp_adaptive_limit(a), 5);
    /* then it grows by one round a second (at most: the first round sets a
     * provisional baseline) */
    while (s.now - t0 < 6 * S)
        sim_step(&s);
    int l = fp_adaptive_limit(a);
    CHECK_MSG(l > 5 && l <= 5 + 5, "limit %d after 6 s of 1 s rounds", l);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

/* ---- cancel: an admitted request that never reached the store ---- */

static void test_cancel(void)
{
    check_ctx("cancel");
    fp_adaptive_opts o = {.initial_limit = 4, .min_limit = 1, .probe_interval_ns = 3600 * S};
    fp_adaptive *a = ad_new(&o);
    int refused = 0;
    for (int i = 0; i < 1000; i++) {
        refused += !fp_adaptive_acquire(a, i);
        fp_adaptive_cancel(a);
    }
    CHECK_EQ_INT(refused, 0);
    fp_adaptive_stats st;
    fp_adaptive_stats_get(a, &st);
    CHECK_EQ_INT(st.inflight, 0);
    CHECK_EQ_INT(st.cancelled, 1000);
    CHECK_EQ_INT(st.admitted, 1000);
    CHECK_EQ_INT(st.short_ns, 0); /* no latency sample taken */
    CHECK_EQ_INT(st.long_ns, 0);
    CHECK_EQ_INT(st.limit, 4);
    /* a slot given back by cancel is free again */
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(fp_adaptive_acquire(a, 0), 1);
    CHECK_EQ_INT(fp_adaptive_acquire(a, 0), 0);
    fp_adaptive_cancel(a);
    CHECK_EQ_INT(fp_adaptive_acquire(a, 0), 1);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

static void test_options(void)
{
    static const fp_adaptive_opts bad[] = {
        {.min_limit = 10, .max_limit = 5},
        {.max_limit = 2000000},
        {.grow_permille = 1500, .tolerance_permille = 1500},
        {.grow_permille = 900},
        {.tolerance_permille = 1000}, /* below the default grow threshold */
    };
    for (size_t i = 0; i < NCASES(bad); i++) {
        check_ctx("options bad[%zu]", i);
        fp_adaptive *a = (fp_adaptive *)1;
        fp_err err = {0};
        CHECK_EQ_INT(fp_adaptive_new(&bad[i], &a, &err), FP_EINVAL);
        CHECK(a == NULL);
        CHECK(err.msg[0] != 0);
    }
    check_ctx("options defaults");
    fp_adaptive_free(NULL);
    fp_adaptive *a = ad_new(NULL);
    CHECK_EQ_INT(fp_adaptive_limit(a), 20);
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(fp_adaptive_acquire(a, 0), 1);
    CHECK_EQ_INT(fp_adaptive_acquire(a, 0), 0);
    CHECK_EQ_INT(fp_adaptive_inflight(a), 20);
    fp_adaptive_release(a, 0, -5, 1); /* a nonsense latency is clamped */
    CHECK_EQ_INT(fp_adaptive_inflight(a), 19);
    CHECK_EQ_INT(fp_adaptive_acquire(a, 0), 1);
    fp_adaptive_stats st;
    fp_adaptive_stats_get(a, &st);
    CHECK_EQ_INT(st.admitted, 21);
    CHECK_EQ_INT(st.refused, 1);
    CHECK_EQ_INT(st.inflight, 20);
    CHECK_EQ_INT(st.long_ns, 0);
    fp_adaptive_free(a);

    check_ctx("options initial above max");
    fp_adaptive_opts o = {.initial_limit = 500, .max_limit = 100};
    a = ad_new(&o);
    CHECK_EQ_INT(fp_adaptive_limit(a), 100);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

static void test_deterministic(void)
{
    check_ctx("deterministic");
    fp_adaptive_stats st[2];
    int64_t now[2];
    for (int r = 0; r < 2; r++) {
        fp_adaptive_opts o = {.initial_limit = 300, .probe_interval_ns = 100 * MS};
        fp_adaptive *a = ad_new(&o);
        static sim s;
        sim_init(&s, a, 50, MS);
        sim_run(&s, 20000);
        s.service = 7 * MS;
        sim_run(&s, 3000);
        s.fail_next = 10;
        sim_run(&s, 3000);
        fp_adaptive_stats_get(a, &st[r]);
        now[r] = s.now;
        fp_adaptive_free(a);
    }
    CHECK_EQ_INT(st[0].limit, st[1].limit);
    CHECK_EQ_INT(st[0].long_ns, st[1].long_ns);
    CHECK_EQ_INT(st[0].short_ns, st[1].short_ns);
    CHECK_EQ_INT(st[0].decreases, st[1].decreases);
    CHECK_EQ_INT(st[0].probes, st[1].probes);
    CHECK_EQ_INT(now[0], now[1]);
    check_ctx("%s", "");
}

/* ---- threads ---- */

enum { THREADS = 4, ROUNDS = 50000 };

typedef struct worker {
    fp_adaptive *a;
    int id, admitted;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    int64_t t = 0;
    for (int i = 0; i < ROUNDS; i++) {
        t += 1000;
        int held = 0;
        while (held < 3 && fp_adaptive_acquire(w->a, t))
            held++;
        w->admitted += held;
        for (int j = 0; j < held; j++)
            fp_adaptive_release(w->a, t, 100000 + (i % 7) * 20000 * w->id, (i + j) % 97 != 0);
    }
    return NULL;
}

static void test_threads(void)
{
    check_ctx("threads");
    fp_adaptive_opts o = {
        .initial_limit = 8, .min_limit = 2, .max_limit = 64, .probe_interval_ns = 5 * MS};
    fp_adaptive *a = ad_new(&o);
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.a = a, .id = i};
        if (pthread_create(&t[i], NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += w[i].admitted;
    }
    fp_adaptive_stats st;
    fp_adaptive_stats_get(a, &st);
    CHECK_EQ_INT(st.inflight, 0);
    CHECK_EQ_INT(st.admitted, total);
    CHECK(st.limit >= 2 && st.limit <= 64);
    CHECK(total > 0);
    fp_adaptive_free(a);
    check_ctx("%s", "");
}

int main(void)
{
    test_options();
    test_converges();
    test_slowdown();
    test_failures();
    test_stalls();
    test_refusals();
    test_probe_unbound();
    test_min_round();
    test_cancel();
    test_bounds();
    test_deterministic();
    test_threads();
    return check_summary();
}
