/* auditwatch.h — the server verifies its own audit chain (docs/alerting.md
 * "Audit verification"): a thread that every interval runs the auditor's
 * verifier (auditor.h) on one of the store's read connections, from the
 * checkpoint before the newest one it verified to the end of the log, and
 * exposes the result for FapiaoAuditVerifyFailed:
 *
 *   fapiao_audit_verify_last_ok        1 after an intact run, 0 after a finding
 *   fapiao_audit_verify_runs_total     runs that completed
 *   fapiao_audit_verify_failures_total runs that found tampering
 *   fapiao_audit_verify_errors_total   runs that could not read the log
 *
 * A run reads the newest signed segment again and the unsigned tail after
 * it; the first starts at the newest checkpoint when the server starts.
 * What older checkpoints cover is `fapiao audit verify`'s (offline, whole
 * log): a record changed there is not seen by the server. */
#ifndef FAPIAO_AUDITWATCH_H
#define FAPIAO_AUDITWATCH_H

#include "fapiao/err.h"
#include "fapiao/metrics.h"
#include "fapiao/store.h"

typedef struct fp_auditwatch fp_auditwatch;

/* store: the server's (read snapshots only, fp_audit_verify_store);
 * pub_path: the audit public key; m: the registry its families join (stop
 * the server, whose scrapes call them, before fp_auditwatch_stop).  Runs
 * once right away, then every interval_s.  0 or an error. */
int fp_auditwatch_start(fp_store *store, const char *pub_path, int interval_s, fp_metrics *m,
                        fp_auditwatch **out, fp_err *err);
void fp_auditwatch_stop(fp_auditwatch *w);

#endif
