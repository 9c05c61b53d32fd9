/* clock.h — the clocks, in one place (src/lib/clock.c; docs/architecture.md,
 * "Clocks").
 *
 * Deadlines, timeouts and intervals are measured on CLOCK_MONOTONIC, which a
 * wall-clock step (NTP, an operator's `date -s`) does not move; timestamps
 * people and documents read are wall-clock time (CLOCK_REALTIME).  Every
 * timed wait on a condition variable goes through fp_cond_wait_until /
 * fp_cond_wait_ms on a condition variable made by fp_cond_init_mono, so a
 * wall-clock step can neither stall a background thread nor wake it early
 * (a lint in `make test` holds this). */
#ifndef FAPIAO_CLOCK_H
#define FAPIAO_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* China Standard Time: UTC+8 all year (no daylight saving time since
 * 1991); the dates on an invoice are CST dates (docs/domain.md). */
#define FP_CST_OFFSET_S (8 * 3600)

int64_t fp_mono_ns(void); /* CLOCK_MONOTONIC */
int64_t fp_mono_us(void);
int64_t fp_mono_ms(void);
int64_t fp_boot_ns(void); /* CLOCK_BOOTTIME: monotonic, and counts suspend */
int64_t fp_wall_ms(void); /* CLOCK_REALTIME, Unix milliseconds */
int64_t fp_wall_s(void);  /* CLOCK_REALTIME, Unix seconds */
/* The process's steady wall clock, Unix milliseconds: the wall clock when
 * first asked plus CLOCK_MONOTONIC's time since.  A wall-clock step does
 * not move it, so the deadlines kept in the outbox's job rows (next_at,
 * lease_until: shared with other processes, so Unix times) are neither
 * hurried nor stalled by an NTP step or `date -s` while the process runs;
 * a restart takes up the wall clock again (docs/architecture.md, "Clocks"). */
int64_t fp_steady_ms(void);

/* The civil CST time of a Unix second (gmtime of unix_s + 8 h). */
void fp_cst_tm(int64_t unix_s, struct tm *out);
/* "yyyy-MM-dd", a real CST calendar day, to the Unix second of its
 * midnight in CST: 0, or -1 for anything else ("2026-02-30", " 2026-1-5"). */
int fp_cst_day_parse(const char *s, int64_t *midnight_s);

/* A condition variable whose timed waits run on CLOCK_MONOTONIC: 0 or an
 * errno value. */
int fp_cond_init_mono(pthread_cond_t *cv);
/* Waits until cv is signalled or CLOCK_MONOTONIC reaches deadline_ns:
 * 0 (signalled, or a spurious wake-up: re-check the condition) or
 * ETIMEDOUT.  cv must come from fp_cond_init_mono. */
int fp_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns);
/* The same with a deadline of now + ms. */
int fp_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

/* An injectable clock, for the code whose deadlines a test must drive: the
 * health checks (health.h), the outbox (outbox.h) and the slow-client
 * reaper (src/server/conn_guard.c) read time and wait through one.  NULL
 * everywhere means the real clocks above (fp_mono_ns, fp_wall_ms,
 * fp_cond_wait_until), which is what production uses; a unit test passes a
 * fake whose monotonic and wall clocks it moves itself, e.g. steps the wall
 * clock an hour while the monotonic one goes on (tests/unit/test_deadlines.c).
 * libfaketime cannot show this: it fakes CLOCK_MONOTONIC too. */
typedef struct fp_clock fp_clock;
struct fp_clock {
    int64_t (*mono_ns)(const fp_clock *c);
    int64_t (*wall_ms)(const fp_clock *c);
    /* As fp_cond_wait_until, with deadline_ns on this clock's mono_ns:
     * 0 (signalled or spurious: re-check) or ETIMEDOUT.  cv comes from
     * fp_cond_init_mono. */
    int (*wait_until)(const fp_clock *c, pthread_cond_t *cv, pthread_mutex_t *mu,
                      int64_t deadline_ns);
    void *ctx; /* the fake's state */
    /* the fake's steady wall clock is steady_base_ms + mono_ns / 1e6
     * (fp_clock_steady_ms); a fake that leaves it 0 gets its wall_ms */
    int64_t steady_base_ms;
};

int64_t fp_clock_mono_ns(const fp_clock *c); /* c NULL: the real clocks */
int64_t fp_clock_mono_ms(const fp_clock *c);
int64_t fp_clock_wall_ms(const fp_clock *c);
int64_t fp_clock_steady_ms(const fp_clock *c); /* c NULL: fp_steady_ms */
int fp_clock_wait_until(const fp_clock *c, pthread_cond_t *cv, pthread_mutex_t *mu,
                        int64_t deadline_ns);
int fp_clock_wait_ms(const fp_clock *c, pthread_cond_t *cv, pthread_mutex_t *mu, int64_t ms);

#endif
