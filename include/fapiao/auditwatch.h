/* auditwatch.h — the server verifies its own audit chain (docs/alerting.md
 * "Audit verification"): a thread that every interval runs the auditor's
 * verifier (auditor.h) on a read-only connection of its own, from the
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

/* db: the database path or URL (a read-only store is opened each run);
 * pub_path: the audit public key; m: the registry its families join (it
 * must outlive fp_auditwatch_stop's caller's last scrape: stop the server
 * first).  Runs once right away, then every interval_s.  0 or an error. */
int fp_auditwatch_start(fp_store *store, const char *db, const char *pub_path, int interval_s,
                        fp_metrics *m, fp_auditwatch **out, fp_err *err);
void fp_auditwatch_stop(fp_auditwatch *w);

#endif
