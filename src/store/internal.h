/* internal.h — what the store's files share (not a public header): the
 * writer connection under its lock, a reader from the pool, and exec. */
#ifndef FAPIAO_STORE_INTERNAL_H
#define FAPIAO_STORE_INTERNAL_H

#include <sqlite3.h>

#include "fapiao/store.h"

/* Locks the writer connection (shared with the group-commit writer thread,
 * so keep the hold short) and returns it. */
sqlite3 *fp_store_wlock(fp_store *s);
void fp_store_wunlock(fp_store *s);
/* A read-only connection from the pool; give it back with rrelease. */
sqlite3 *fp_store_racquire(fp_store *s, void **slot);
void fp_store_rrelease(fp_store *s, void *slot);
int fp_store_exec(sqlite3 *db, const char *sql, fp_err *err);
/* The audit record of a change, appended in the open transaction on the
 * locked writer connection db (docs/audit.md): *audit with its target and
 * outcome defaulting to these when NULL.  Nothing when audit is NULL. */
int fp_store_audit_change(sqlite3 *db, const fp_audit_rec *audit, const char *target,
                          const char *outcome, fp_err *err);

/* webhook_secrets.c: a webhook secret sealed for the row of client_id
 * (webhook.key beside the database, made on first use), and opened into
 * secret (a plaintext value from before sealing is left as it is). */
int fp_store_webhook_seal(sqlite3 *db, const char *client_id, const char *secret, char *out,
                          size_t cap, fp_err *err);
int fp_store_webhook_unseal(sqlite3 *db, const char *client_id, const char *stored, char *secret,
                            size_t cap, fp_err *err);

/* The fair_tag (migration 9) of a job that seller S queues now at cost C
 * (SQL parameters, e.g. "?2"): the larger of its seller's last waiting tag
 * and the smallest waiting tag of anyone (a seller that was idle starts at
 * the current "virtual time", with no credit for having been idle), plus
 * its cost.  Two lookups in the partial indexes jobs_fair and
 * jobs_fair_seller.  The rule and why: docs/webhooks.md, "Order of
 * service". */
#define FP_JOBS_FAIR_TAG(S, C)                                                                     \
    "(max(coalesce((SELECT min(fair_tag) FROM jobs WHERE fair_tag IS NOT NULL), 0), "              \
    "coalesce((SELECT max(fair_tag) FROM jobs WHERE seller_id = " S " AND fair_tag IS NOT NULL), " \
    "0)) + " C ")"

#endif
