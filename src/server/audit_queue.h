/* audit_queue.h — authentication failures go to the audit log in batches
 * (audit_queue.c): a failed login changes nothing, so it need not cost an
 * fsync of its own, and a flood of bad tokens must not turn into a flood of
 * transactions. */
#ifndef FAPIAO_SERVER_AUDIT_QUEUE_H
#define FAPIAO_SERVER_AUDIT_QUEUE_H

#include "fapiao/err.h"
#include "fapiao/store.h"

typedef struct fp_audit_queue fp_audit_queue;

/* Flushes at most every 200 ms; holds at most `cap` records, beyond that
 * they are counted and one "audit.dropped" record says how many. */
int fp_audit_queue_start(fp_store *s, int cap, fp_audit_queue **out, fp_err *err);
/* Flushes what is queued and stops. */
void fp_audit_queue_stop(fp_audit_queue *q);
/* Copies the strings.  actor may be "" (no client id at all); seller_id
 * 0: instance-wide; client_request_id may be NULL or "" (none). */
void fp_audit_queue_add(fp_audit_queue *q, const char *actor, const char *action,
                        const char *target, const char *request_id, const char *client_ip,
                        const char *outcome, int64_t seller_id, const char *client_request_id);
uint64_t fp_audit_queue_dropped(fp_audit_queue *q);

#endif
