/* log.c — the change log's per-commit half (store_backup.h, backup.c):
 * what the writer calls after a commit, with wlock held.  Kept apart from
 * backup.c so that the writer and open.c call into a file that calls
 * nothing back (tests/unit/layers.h: no loops between files). */
#define SQLITE_ENABLE_SESSION        1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <stdlib.h>

#include "fapiao/clock.h"
#include "internal.h"

#define LOG_MAX_BYTES (256 << 20) /* queued beyond this: broken, a new base */

/* With wlock held and no transaction open: moves the session's changes to
 * the queue, stamped now. */
void fp_sq_log_commit(fp_sqlite *s)
{
    sqlite3_session *ses = s->log;
    if (!ses || sqlite3session_isempty(ses))
        return;
    /* A rollback needs nothing here: a session records each row's value
     * at its first change and builds the changeset from that and the row
     * as it is now (no transaction open), so undone changes drop out. */
    int n = 0;
    void *cs = NULL;
    if (sqlite3session_changeset(ses, &n, &cs) != SQLITE_OK)
        s->log_broken = 1;
    /* a fresh session: the next take has this transaction's changes only */
    sqlite3session_delete(ses);
    s->log = NULL;
    if (sqlite3session_create(s->wdb, "main", &ses) == SQLITE_OK &&
        sqlite3session_attach(ses, NULL) == SQLITE_OK)
        s->log = ses;
    else {
        sqlite3session_delete(ses);
        s->log_broken = 1;
    }
    if (n <= 0 || !cs || s->log_broken || s->log_bytes + (size_t)n > LOG_MAX_BYTES) {
        if (n > 0 && s->log_bytes + (size_t)n > LOG_MAX_BYTES)
            s->log_broken = 1;
        sqlite3_free(cs);
        return;
    }
    log_txn *t = malloc(sizeof *t);
    if (!t) {
        s->log_broken = 1;
        sqlite3_free(cs);
        return;
    }
    *t = (log_txn){.ms = fp_wall_ms(), .n = n, .cs = cs};
    if (s->log_tail)
        ((log_txn *)s->log_tail)->next = t;
    else
        s->log_head = t;
    s->log_tail = t;
    s->log_bytes += (size_t)n;
}

void fp_sq_log_queue_free(void *head)
{
    log_txn *t = head;
    while (t) {
        log_txn *next = t->next;
        sqlite3_free(t->cs);
        free(t);
        t = next;
    }
}

void fp_sq_log_free(fp_sqlite *s)
{
    if (s->log)
        sqlite3session_delete(s->log);
    s->log = NULL;
    fp_sq_log_queue_free(s->log_head);
    s->log_head = s->log_tail = NULL;
    s->log_bytes = 0;
}
