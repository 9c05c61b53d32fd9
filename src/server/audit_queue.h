/* audit_queue.h — authentication failures and refusals go to the audit log
 * in batches (audit_queue.c): a failed login changes nothing, so it need not
 * cost an fsync of its own, and a flood of bad tokens must not turn into a
 * flood of transactions or of rows.
 *
 * Two ways in (docs/security.md, "Authentication failures"):
 *  - fp_audit_queue_add: one record with every detail, for a failure the
 *    server's failure budget lets through (per address and in all);
 *  - fp_audit_queue_count: a failure beyond the budget only counts; each
 *    window (10 s in the server) writes one "<action>.repeated" record per
 *    address, action and outcome, whose target is "count=N window=Ws".
 * Nothing is dropped: a record the queue has no room for, or that the store
 * failed to take, is counted instead (and a failed write is tried again at
 * the next flush).  Memory is fixed: `cap` queued records and a table of
 * FP_AUDIT_AGG_KEYS counters; when the table is full, further addresses are
 * counted under "*". */
#ifndef FAPIAO_SERVER_AUDIT_QUEUE_H
#define FAPIAO_SERVER_AUDIT_QUEUE_H

#include "fapiao/err.h"
#include "fapiao/store.h"

#include <stdint.h>

#define FP_AUDIT_AGG_KEYS 256

typedef struct fp_audit_queue fp_audit_queue;

/* Flushes queued records at most every 200 ms and the counters every
 * window_ms (> 0). */
int fp_audit_queue_start(fp_store *s, int cap, int window_ms, fp_audit_queue **out, fp_err *err);
/* Flushes everything (counters too) and stops. */
void fp_audit_queue_stop(fp_audit_queue *q);
/* Copies the strings.  actor may be "" (no client id at all); seller_id
 * 0: instance-wide; client_request_id may be NULL or "" (none). */
void fp_audit_queue_add(fp_audit_queue *q, const char *actor, const char *action,
                        const char *target, const char *request_id, const char *client_ip,
                        const char *outcome, int64_t seller_id, const char *client_request_id);
/* One more failure from client_ip with this action and outcome, counted
 * into the window's "<action>.repeated" record. */
void fp_audit_queue_count(fp_audit_queue *q, const char *client_ip, const char *action,
                          const char *outcome);

typedef struct fp_audit_queue_stats {
    uint64_t recorded;     /* records written one by one */
    uint64_t counted;      /* failures counted into .repeated records */
    uint64_t aggregates;   /* .repeated records written */
    uint64_t write_errors; /* batches the store refused (tried again later) */
} fp_audit_queue_stats;
void fp_audit_queue_stats_get(fp_audit_queue *q, fp_audit_queue_stats *out);

#endif
