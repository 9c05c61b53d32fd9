/* test_deadlines.c — the background deadlines fire on time across a
 * wall-clock step (clock.h, "An injectable clock").
 *
 * The health checks, the outbox's job threads and the slow-client reaper
 * read time and wait through an fp_clock.  Here they get a fake one: its
 * monotonic clock moves only when the test moves it, and its wall clock
 * moves with it but also jumps an hour forward or back, as an NTP step or
 * `date -s` would.  After each move the test lets the threads go round
 * their loops (settle(): each thread on the fake has entered its wait twice
 * since the move, so it has looked at the new time at least once) and then
 * checks what happened: a deadline must not fire a millisecond early, and
 * must fire at the millisecond it is due, whatever the wall clock did
 * meanwhile.
 *
 * libfaketime cannot show this: it fakes CLOCK_MONOTONIC as well and
 * rewrites the deadlines of timed waits.  No assertion here is about real
 * time; a real millisecond per loop is only how the fake lets the thread's
 * own signals (stop) through. */
#include "check.h"
#include "fake_clock.h"

#include "../../src/server/conn_guard.h"
#include "fapiao/clock.h"
#include "fapiao/health.h"
#include "fapiao/outbox.h"
#include "fapiao/store.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef FP_BIN
#error "FP_BIN must be defined by the build"
#endif

#define HOUR_MS (3600LL * 1000)

/* the fake clock: fake_clock.h */

/* ---- the slow-client reaper (src/server/conn_guard.c) ---- */

/* 1 when the peer of fd has been shut down (a read sees EOF at once). */
static int is_shut(int peer)
{
    char b;
    ssize_t n = recv(peer, &b, 1, MSG_DONTWAIT);
    return n == 0;
}

static void test_conn_guard(void)
{
    static const struct {
        int64_t step_ms; /* the wall-clock step while the deadline runs */
        const char *name;
    } cases[] = {{0, "no step"}, {HOUR_MS, "wall clock +1 h"}, {-HOUR_MS, "wall clock -1 h"}};
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("conn_guard, %s", cases[i].name);
        fake f;
        fake_init(&f);
        fp_conn_guard *g = NULL;
        fp_err err = {0};
        /* headers within 1000 ms, the body within 3000 ms */
        if (!CHECK(fp_conn_guard_start_clock(&g, 1000, 3000, 5000, &f.c, &err) == 0))
            return;
        int sv[2];
        if (!CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0))
            return;
        fp_guarded *c = fp_conn_guard_open(g, sv[0]);
        CHECK(c != NULL);
        move_settle(&f, 0, 0);
        /* the header deadline: not at 999 ms, whatever the wall clock did */
        move_settle(&f, 400, cases[i].step_ms);
        move_settle(&f, 599, 0);
        CHECK_EQ_INT(fp_conn_guard_cut(g, FP_CUT_HEADER), 0);
        CHECK(!is_shut(sv[1]));
        /* headers arrive: now the body has 3000 ms */
        fp_conn_guard_headers_read(g, c);
        move_settle(&f, 2999, -cases[i].step_ms);
        CHECK_EQ_INT(fp_conn_guard_cut(g, FP_CUT_BODY), 0);
        CHECK(!is_shut(sv[1]));
        /* and at 3000 ms the connection is cut */
        move_settle(&f, 1, 0);
        CHECK_EQ_INT(fp_conn_guard_cut(g, FP_CUT_BODY), 1);
        CHECK(is_shut(sv[1]));
        CHECK_EQ_INT(fp_conn_guard_cut(g, FP_CUT_HEADER), 0);

        /* a second connection, to its header deadline exactly */
        int sv2[2];
        if (!CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0))
            return;
        fp_guarded *c2 = fp_conn_guard_open(g, sv2[0]);
        move_settle(&f, 999, cases[i].step_ms);
        CHECK(!is_shut(sv2[1]));
        move_settle(&f, 1, 0);
        CHECK(is_shut(sv2[1]));
        CHECK_EQ_INT(fp_conn_guard_cut(g, FP_CUT_HEADER), 1);

        fp_conn_guard_close(g, c);
        fp_conn_guard_close(g, c2);
        fp_conn_guard_stop(g);
        close(sv[0]);
        close(sv[1]);
        close(sv2[0]);
        close(sv2[1]);
        pthread_mutex_destroy(&f.m);
    }
    check_ctx("%s", "");
}

/* ---- the health checks (src/monitor/health.c) ---- */

static char tmpdir[] = "/tmp/fp_deadlines_XXXXXX";

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static fp_store *open_store(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    fp_store_opts o = {.path = path};
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_open(&o, &s, &err) == 0, "fp_store_open: %s", err.msg))
        return NULL;
    return s;
}

static int allowed(fp_health *h, char *en, size_t cap)
{
    char zh[512];
    int retry = 0;
    en[0] = 0;
    return fp_health_write_allowed(h, zh, sizeof zh, en, cap, &retry);
}

static void set_fail(fp_store *s, int fail)
{
    fp_store_faults fl = {.write_fail = fail};
    fp_store_set_faults(s, &fl);
}

static void test_health(void)
{
    check_ctx("health");
    fp_store *s = open_store("health.db");
    if (!s)
        return;
    fake f;
    fake_init(&f);
    fp_health_opts o = {.store = s,
                        .data_dir = tmpdir,
                        .interval_ms = 15000,
                        .min_free_bytes = 1,
                        .outbox_min_free_bytes = 1,
                        .reserve_bytes = -1,
                        .clock = &f.c};
    fp_health *h = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_health_start(&o, &h, &err) == 0, "fp_health_start: %s", err.msg)) {
        fp_store_close(s);
        return;
    }
    char en[512];
    move_settle(&f, 0, 0); /* the thread's first round: the probe ran in start */
    CHECK(allowed(h, en, sizeof en));

    /* The write probe runs every 15 s.  The disk fails now; the probe must
     * notice at 15 s, not before, across a wall clock an hour ahead. */
    check_ctx("health: probe interval, wall clock +1 h");
    set_fail(s, 1);
    for (int k = 1; k <= 14; k++) {
        move_settle(&f, 1000, k == 5 ? HOUR_MS : 0);
        CHECK_MSG(allowed(h, en, sizeof en), "degraded at %d s, before the probe was due: %s", k,
                  en);
    }
    move_settle(&f, 1000, 0);
    CHECK_MSG(!allowed(h, en, sizeof en), "not degraded at 15 s: the probe did not run");

    /* Degraded, the probe runs every second: the disk is back, the wall
     * clock goes an hour back; recovery one second later, not an hour. */
    check_ctx("health: recovery, wall clock -1 h");
    set_fail(s, 0);
    move_settle(&f, 999, -HOUR_MS);
    CHECK_MSG(!allowed(h, en, sizeof en), "recovered before the next round");
    move_settle(&f, 1, 0);
    CHECK_MSG(allowed(h, en, sizeof en), "not recovered one second after the disk came back: %s",
              en);

    /* Five failed probes in a row open the store breaker for 2 s; its
     * half-open probe comes 2 s later on the monotonic clock, however the
     * wall clock jumps meanwhile. */
    check_ctx("health: breaker open -> half-open, wall clock +1 h then -1 h");
    set_fail(s, 1);
    move_settle(&f, 15000, 0); /* the next probe: fails, degraded */
    CHECK(!allowed(h, en, sizeof en));
    for (int k = 2; k <= 5; k++) /* failures 2..5, one a second */
        move_settle(&f, 1000, 0);
    CHECK_MSG(!allowed(h, en, sizeof en) && strstr(en, "breaker open"),
              "the breaker did not open after 5 failures: %s", en);
    set_fail(s, 0);
    move_settle(&f, 1000, HOUR_MS);
    CHECK_MSG(!allowed(h, en, sizeof en) && strstr(en, "breaker open"),
              "the breaker let a probe through after 1 s of its 2: %s", en);
    move_settle(&f, 999, -2 * HOUR_MS);
    CHECK_MSG(!allowed(h, en, sizeof en), "recovered before the breaker's 2 s: %s", en);
    move_settle(&f, 1, 0);
    CHECK_MSG(allowed(h, en, sizeof en), "not recovered when the breaker's 2 s were up: %s", en);

    fp_health_stop(h);
    fp_store_close(s);
    pthread_mutex_destroy(&f.m);
    check_ctx("%s", "");
}

/* ---- the outbox's pause (src/outbox/outbox.c) ---- */

static atomic_int pause_calls;

static int paused(void *arg, char *why, size_t cap)
{
    (void)arg;
    snprintf(why, cap, "test");
    atomic_fetch_add(&pause_calls, 1);
    return 1;
}

static void test_outbox(void)
{
    check_ctx("outbox");
    fp_store *s = open_store("outbox.db");
    if (!s)
        return;
    char pdf_dir[300];
    snprintf(pdf_dir, sizeof pdf_dir, "%s/pdf", tmpdir);
    fake f;
    fake_init(&f);
    fp_outbox_opts o = {.store = s,
                        .pdf_dir = pdf_dir,
                        .render_exe = FP_BIN,
                        .workers = 1,
                        .render_workers = 1,
                        .clock = &f.c};
    /* the job thread, the foreground thread (render_fg_workers 0: one)
     * and the keeper: settle() waits for each of them */
    f.threads = 3;
    fp_outbox *ob = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_outbox_start(&o, &ob, &err) == 0, "fp_outbox_start: %s", err.msg)) {
        fp_store_close(s);
        return;
    }
    fp_outbox_set_pause(ob, paused, NULL);
    /* Paused for want of disk space, a job thread looks again every
     * second: not sooner when the wall clock jumps ahead, not an hour
     * later when it jumps back. */
    move_settle(&f, 1000, 0); /* the thread is in its pause loop */
    move_settle(&f, 1000, 0);
    int base = atomic_load(&pause_calls);
    CHECK(base >= 1);
    static const int64_t steps[] = {HOUR_MS, -HOUR_MS, -HOUR_MS, HOUR_MS};
    for (size_t i = 0; i < NCASES(steps); i++) {
        check_ctx("outbox pause, wall step %lld ms", (long long)steps[i]);
        move_settle(&f, 999, steps[i]);
        CHECK_EQ_INT(atomic_load(&pause_calls), base + (int)i);
        move_settle(&f, 1, 0);
        CHECK_EQ_INT(atomic_load(&pause_calls), base + (int)i + 1);
    }
    fp_outbox_set_pause(ob, NULL, NULL);
    fp_outbox_stop(ob);
    fp_store_close(s);
    pthread_mutex_destroy(&f.m);
    check_ctx("%s", "");
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_conn_guard();
    test_health();
    test_outbox();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary();
}
