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

#endif
