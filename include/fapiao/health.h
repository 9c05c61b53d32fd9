/* health.h — background health checks, the store's circuit breaker and
 * degraded mode.
 *
 * A thread checks, every second: free disk space of the data directory,
 * the outbox backlog, the numbers left; every interval_ms (15 s) — and
 * every second while anything is wrong — a durable write probe through the
 * store's writer (fp_store_probe_write); every minute the server
 * certificate's expiry.
 *
 * The store's breaker (breaker.h, named "store") hears the outcome of every
 * group commit and probe.  The service is DEGRADED while the breaker is not
 * closed, the write probe fails, or the disk is (nearly) full: writes are
 * answered 503 DEGRADED with Retry-After and the reason, reads go on.  It
 * leaves degraded mode by itself: while degraded the probe runs every
 * second, and once the breaker lets a probe through (half-open) and it
 * succeeds, the breaker closes.  Client requests are never used as probes.
 *
 * The store's fail-stop (store.h, docs/storage.md) is the exception: after
 * an I/O error, corruption or a replaced database file the check
 * "store_failstop" fails until a restart, whatever the breaker does; every
 * round compares the open database file and WAL with their paths.
 *
 * Readiness (/readyz) also needs: a valid certificate, numbers left, not
 * shutting down.  A backlog in the outbox, a certificate expiring within 30
 * days and few numbers left are warnings only. */
#ifndef FAPIAO_HEALTH_H
#define FAPIAO_HEALTH_H

#include <stdint.h>

#include "fapiao/breaker.h"
#include "fapiao/clock.h"
#include "fapiao/err.h"
#include "fapiao/jobs.h"
#include "fapiao/json.h"
#include "fapiao/store.h"

typedef struct fp_health fp_health;
struct fp_outbox;

/* Free space of the data directory: one ordered set of thresholds
 * (docs/storage-space.md), outbox_min_free > min_free > reserve:
 *   below outbox_min_free_bytes  the outbox pauses all work that writes
 *                                (PDF files, job rows, delivery states)
 *   below min_free_bytes         writes are degraded (503 DEGRADED)
 *   reserve_bytes                kept allocated in DATA_DIR/fapiao.reserve
 *                                while space allows; released (deleted)
 *                                for audit records and the store's own
 *                                bookkeeping (-shm, WAL, probes) when less
 *                                than that is free, and at start on a full
 *                                disk (fp_health_release_reserve). */
typedef struct fp_health_opts {
    fp_store *store;
    const char *data_dir;          /* for free space */
    const char *cert_path;         /* server certificate (PEM), may be NULL */
    int interval_ms;               /* write probe, default 15000 */
    int64_t min_free_bytes;        /* default 64 MiB */
    int64_t outbox_min_free_bytes; /* default 4 x min_free_bytes (256 MiB) */
    int64_t reserve_bytes;         /* default min_free_bytes / 4; <0: no reserve file */
    struct fp_outbox *outbox;      /* its PDF storage state for /readyz; may be NULL */
    int64_t outbox_backlog_warn;   /* pending jobs, default 10000 */
    int outbox_age_warn_s;         /* oldest pending job, default 600 */
    int64_t range_warn;            /* default 1000 */
    struct fp_archiver *archiver;  /* serve --archive (backup.h): metrics, /readyz warning */
    int archive_lag_warn_s;        /* /readyz warns past this lag; default 60 */
    fp_breaker_opts store_breaker; /* zero: 5 % over 10 s (min 20) or 5 in a row; 2 s open */
    const fp_clock *clock;         /* NULL: the real clocks (clock.h); tests pass a fake */
    /* called by the health thread after each round of checks (about once a
     * second), e.g. systemd's watchdog ping (cmd_serve.c); may be NULL */
    void (*on_round)(void *arg);
    void *round_arg;
} fp_health_opts;

int fp_health_start(const fp_health_opts *o, fp_health **out, fp_err *err);
void fp_health_stop(fp_health *h);

/* 1: writes may go ahead.  0: degraded; reason (zh and en) and the
 * Retry-After in seconds are filled in. */
int fp_health_write_allowed(fp_health *h, char *zh, size_t zh_cap, char *en, size_t en_cap,
                            int *retry_after_s);

/* The outbox's job counts as the health thread last took them (every
 * second, less often when counting is slow: at most 20x the time the last
 * count took apart): 0, or -1 before the first count.  /metrics shows this
 * copy, so a scrape never scans the jobs table on an HTTP thread. */
int fp_health_jobs(fp_health *h, fp_jobs_counts *out);

/* 1 while the outbox must not write (free space below
 * outbox_min_free_bytes, or the store reports a full disk); why gets the
 * reason.  Cheap: the health thread's last round. */
int fp_health_outbox_paused(fp_health *h, char *why, size_t cap);

/* The reserve file of a data directory (see above): deleted.  1 when one
 * was there. */
int fp_health_release_reserve(const char *data_dir);

/* Writes the checks as JSON array members into w (an array is open) and
 * returns 1 when ready.  degraded gets 1 in degraded mode. */
int fp_health_report(fp_health *h, fp_jw *w, int *degraded);

/* Prometheus families: fapiao_health_check_ok{check}, fapiao_degraded,
 * fapiao_degraded_total, fapiao_disk_free_bytes,
 * fapiao_certificate_expiry_timestamp_seconds, fapiao_store_probe_seconds, fapiao_store_failstop,
 * fapiao_breaker_state{breaker="store"}. */
void fp_health_metrics(fp_health *h, fp_buf *b);

#endif
