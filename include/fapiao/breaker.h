/* breaker.h — a circuit breaker, one per dependency (the store, each webhook
 * target, the upstream).
 *
 *   closed    calls go through; outcomes are counted in a sliding window
 *             (10 buckets over window_ms).  It opens when the window holds
 *             at least min_volume calls and more than fail_permille of them
 *             failed, or after `consecutive` failures in a row.
 *   open      calls are refused (fp_breaker_allow says when to come back)
 *             for open_ms; each reopening after a failed probe doubles the
 *             wait, up to max_open_ms.
 *   half-open one probe at a time; a success closes the breaker (window
 *             cleared), a failure opens it again.
 *
 * Thread-safe.  Every state change is reported to on_change (default: one
 * JSON line on stderr) and counted, for metrics. */
#ifndef FAPIAO_BREAKER_H
#define FAPIAO_BREAKER_H

#include <pthread.h>
#include <stdint.h>

typedef enum {
    FP_BREAKER_CLOSED = 0,
    FP_BREAKER_OPEN = 1,
    FP_BREAKER_HALF_OPEN = 2
} fp_breaker_state;

const char *fp_breaker_state_name(fp_breaker_state s);

typedef struct fp_breaker fp_breaker;

typedef struct fp_breaker_opts {
    int window_ms;     /* default 10000 */
    int min_volume;    /* default 20 */
    int fail_permille; /* default 50 (5 %) */
    int consecutive;   /* default 5; -1 disables */
    int open_ms;       /* default 5000 */
    int max_open_ms;   /* default 300000 */
    void (*on_change)(const fp_breaker *b, fp_breaker_state from, fp_breaker_state to, void *arg);
    void *arg;
} fp_breaker_opts;

#define FP_BREAKER_BUCKETS 10

struct fp_breaker {
    fp_breaker_opts o;
    char name[128];
    pthread_mutex_t mu;
    fp_breaker_state state;
    int run_of_failures;
    int probing;      /* a half-open probe is out */
    int64_t retry_at; /* open: when a probe may go */
    int cur_open_ms;
    struct {
        int64_t start;
        uint32_t ok, fail;
    } b[FP_BREAKER_BUCKETS];
    uint64_t opened_total, rejected_total;
};

void fp_breaker_init(fp_breaker *b, const char *name, const fp_breaker_opts *o);
void fp_breaker_destroy(fp_breaker *b);

/* 1: go ahead (closed, or the half-open probe); 0: refused, *retry_at (ms,
 * may be NULL) says when to try again.  Every allowed call must be followed
 * by fp_breaker_record. */
int fp_breaker_allow(fp_breaker *b, int64_t now_ms, int64_t *retry_at);
void fp_breaker_record(fp_breaker *b, int64_t now_ms, int ok);

fp_breaker_state fp_breaker_get(fp_breaker *b, int64_t now_ms);

/* A consistent snapshot for metrics and Retry-After: the state, when an
 * open breaker allows its next probe (0 unless open), and how often it has
 * opened.  Any pointer may be NULL. */
void fp_breaker_snapshot(fp_breaker *b, int64_t now_ms, fp_breaker_state *state, int64_t *retry_at,
                         uint64_t *opened_total);

#endif
