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

#endif
