/* backup.c — the SQLite side of backups (include/fapiao/store_backup.h,
 * docs/recovery.md): the online copy, the manifest's figures, the integrity
 * check, the change log (session extension) and its replay.
 *
 * The copy is ONE sqlite3_backup_step(-1) inside a read transaction opened
 * first: a stepwise backup restarts whenever another connection writes, so
 * under load it might never finish, while a single step in a read
 * transaction copies exactly one snapshot and never blocks the writer (WAL:
 * readers and the writer do not wait for each other).  The price is the WAL
 * it pins: no checkpoint can pass the snapshot until the copy ends
 * (reported as wal_bytes).  VACUUM INTO would rebuild every index, slower
 * for the same result. */
#define SQLITE_ENABLE_SESSION        1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
/* paths are bounded by PATH_MAX: a cut one fails to open, never aliases */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fapiao/clock.h"
#include "fapiao/store_backup.h"
#include "../internal.h"
#include "internal.h"

static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static int copy_snapshot(sqlite3 *src, const char *dst, fp_err *err)
{
    sqlite3 *d = NULL;
    unlink(dst);
    if (sqlite3_open_v2(dst, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        int rc = fp_fail(err, FP_EIO, "cannot create %s: %s", dst, d ? sqlite3_errmsg(d) : "");
        sqlite3_close(d);
        return rc;
    }
    sqlite3_backup *b = sqlite3_backup_init(d, "main", src, "main");
    int rc = 0;
    if (!b)
        rc = fp_fail(err, FP_EIO, "backup: %s", sqlite3_errmsg(d));
    else {
        int step = sqlite3_backup_step(b, -1); /* one step: all pages of one snapshot */
        if (sqlite3_backup_finish(b) != SQLITE_OK || step != SQLITE_DONE)
            rc = fp_fail(err, FP_EIO, "backup: %s", sqlite3_errmsg(d));
    }
    /* the copy is a plain file: no -wal beside it */
    if (rc == 0)
        rc = fp_sq_exec(d, "PRAGMA journal_mode=DELETE", err);
    if (sqlite3_close(d) != SQLITE_OK && rc == 0)
        rc = fp_fail(err, FP_EIO, "close %s", dst);
    return rc;
}

/* A read transaction on db: its snapshot is fixed by the first read. */
static int begin_snapshot(sqlite3 *db, fp_err *err)
{
    int rc = fp_sq_exec(db, "BEGIN", err);
    if (rc == 0)
        rc = fp_sq_exec(db, "SELECT count(*) FROM sqlite_schema", err);
    return rc;
}

int fp_store_backup_copy(const char *src, const char *dst, int64_t *wal_bytes, fp_err *err)
{
    sqlite3 *db = NULL;
    if (fp_store_sqlite_open_ro(src, &db) != SQLITE_OK) {
        int rc = fp_fail(err, FP_EIO, "cannot open %s: %s", src, db ? sqlite3_errmsg(db) : "");
        sqlite3_close(db);
        return rc;
    }
    int rc = begin_snapshot(db, err);
    if (rc == 0)
        rc = copy_snapshot(db, dst, err);
    if (wal_bytes) {
        char wal[PATH_MAX + 8];
        snprintf(wal, sizeof wal, "%s-wal", src);
        *wal_bytes = file_size(wal);
    }
    fp_sq_exec(db, "COMMIT", NULL);
    sqlite3_close(db);
    return rc;
}

static int one_int(sqlite3 *db, const char *sql, int64_t *v)
{
    int null = 0;
    *v = 0;
    int rc = fp_sq_int_or_null(db, sql, 0, v, &null);
    if (null)
        *v = 0;
    return rc;
}

int fp_store_backup_stats(const char *path, fp_backup_stats *st, fp_err *err)
{
    memset(st, 0, sizeof *st);
    sqlite3 *db = NULL;
    if (fp_store_sqlite_open_ro(path, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return fp_fail(err, FP_EIO, "cannot open %s", path);
    }
    int64_t v = 0;
    int rc = begin_snapshot(db, err);
    if (rc == 0 && (rc = one_int(db, "PRAGMA user_version", &v)) == 0)
        st->schema = (int)v;
    if (rc == 0)
        rc = one_int(db, "SELECT count(*) FROM invoices", &st->invoices);
    if (rc == 0)
        rc = one_int(db, "SELECT count(*) FROM audit", &st->audit);
    if (rc == 0)
        rc = one_int(db, "SELECT count(*) FROM number_ranges", &st->ranges);
    if (rc == 0)
        rc = one_int(db, "SELECT count(*) FROM sellers", &st->sellers);
    if (rc == 0)
        rc = one_int(db, "SELECT max(issued_at) FROM invoices", &st->last_issued_at);
    if (rc == 0) {
        sqlite3_stmt *q =
            fp_sq_prep(db, "SELECT id, hex(hash) FROM audit ORDER BY id DESC LIMIT 1", err);
        if (!q)
            rc = FP_EIO;
        else {
            if (sqlite3_step(q) == SQLITE_ROW) {
                st->audit_head_id = sqlite3_column_int64(q, 0);
                fp_sq_col(q, 1, st->audit_head_hash, sizeof st->audit_head_hash);
            }
            sqlite3_finalize(q);
        }
    }
    if (rc < 0 && err && !err->msg[0])
        fp_fail(err, FP_EIO, "%s: %s", path, sqlite3_errmsg(db));
    fp_sq_exec(db, "COMMIT", NULL);
    sqlite3_close(db);
    return rc < 0 ? FP_EIO : 0;
}

int fp_store_backup_integrity(const char *path, char *detail, size_t cap, fp_err *err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return fp_fail(err, FP_EIO, "cannot open %s", path);
    }
    sqlite3_stmt *q = fp_sq_prep(db, "PRAGMA integrity_check", err);
    int rc = FP_EIO;
    if (q && sqlite3_step(q) == SQLITE_ROW) {
        fp_sq_col(q, 0, detail, cap);
        rc = strcmp(detail, "ok") == 0 ? 0 : FP_EINVAL;
    } else if (q)
        snprintf(detail, cap, "%s", sqlite3_errmsg(db)), rc = FP_EINVAL;
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc;
}

/* ---- replay ---- */

/* Changesets are gathered into one changegroup (up to REPLAY_BATCH bytes)
 * and applied at once: sqlite3changeset_apply prepares its statements per
 * call, which for one small changeset per commit cost more than the rows. */
#define REPLAY_BATCH (64 << 20)

struct fp_store_replay {
    sqlite3 *db;
    sqlite3_changegroup *g;
    size_t pending;
};

int fp_store_replay_open(const char *path, fp_store_replay **out, fp_err *err)
{
    fp_store_replay *r = calloc(1, sizeof *r);
    if (!r)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    /* triggers off: what they did at the source is in the log already (the
     * seller_generation counter would count twice and conflict) */
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_db_config(r->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL) != SQLITE_OK ||
        fp_sq_exec(r->db, "PRAGMA foreign_keys=OFF; PRAGMA synchronous=OFF; BEGIN", err) < 0) {
        int rc = fp_fail(err, FP_EIO, "cannot open %s: %s", path, sqlite3_errmsg(r->db));
        sqlite3_close(r->db);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

static int on_conflict(void *arg, int why, sqlite3_changeset_iter *it)
{
    (void)it;
    *(int *)arg = why;
    return SQLITE_CHANGESET_ABORT;
}

static int replay_flush(fp_store_replay *r, fp_err *err)
{
    if (!r->g || !r->pending)
        return 0;
    int n = 0, why = 0;
    void *cs = NULL;
    int rc = sqlite3changegroup_output(r->g, &n, &cs);
    sqlite3changegroup_delete(r->g);
    r->g = NULL;
    r->pending = 0;
    if (rc == SQLITE_OK)
        rc = sqlite3changeset_apply(r->db, n, cs, NULL, on_conflict, &why);
    sqlite3_free(cs);
    if (rc != SQLITE_OK)
        return fp_fail(err, FP_EINVAL, "the change log does not fit the base (conflict %d: %s)",
                       why, sqlite3_errmsg(r->db));
    return 0;
}

sqlite3 *fp_sq_replay_db(fp_store_replay *r, fp_err *err)
{
    return replay_flush(r, err) < 0 ? NULL : r->db;
}

int fp_store_replay_apply(fp_store_replay *r, const void *cs, size_t n, fp_err *err)
{
    if (!r->g && sqlite3changegroup_new(&r->g) != SQLITE_OK)
        return fp_fail(err, FP_ENOMEM, "changegroup");
    if (sqlite3changegroup_add(r->g, (int)n, (void *)cs) != SQLITE_OK)
        return fp_fail(err, FP_EINVAL, "a changeset of the log does not parse");
    r->pending += n;
    return r->pending >= REPLAY_BATCH ? replay_flush(r, err) : 0;
}

int fp_store_replay_close(fp_store_replay *r, int commit, fp_err *err)
{
    if (!r)
        return 0;
    int rc = commit ? replay_flush(r, err) : 0;
    if (r->g)
        sqlite3changegroup_delete(r->g);
    if (rc < 0)
        commit = 0;
    int xrc = fp_sq_exec(r->db, commit ? "COMMIT" : "ROLLBACK", rc < 0 ? NULL : err);
    if (rc == 0)
        rc = xrc;
    if (sqlite3_close(r->db) != SQLITE_OK && rc == 0)
        rc = fp_fail(err, FP_EIO, "close");
    free(r);
    return rc;
}

/* ---- the change log of a running store ---- */

static fp_sqlite *sq(fp_store *st)
{
    return st && st->ops == &fp_store_sqlite_ops ? st->be : NULL;
}

int fp_store_log_start(fp_store *st, const char *base_db, int64_t *wal_bytes, fp_err *err)
{
    fp_sqlite *s = sq(st);
    if (!s || s->o.read_only)
        return fp_fail(err, FP_EINVAL, "the change log needs a writing SQLite store");
    /* a reader as the pool's (same VFS, same -shm): from inside the serving
     * process fp_store_sqlite_open_ro cannot see the server's own locks and
     * would open the -shm read-only beside the writer's mapping */
    sqlite3 *ro = NULL;
    int orc =
        fp_sq_open_conn(s->o.path, SQLITE_OPEN_READONLY, fp_failstop_vfs_name(s->fs), &ro, err);
    if (orc < 0) {
        sqlite3_close(ro);
        return orc;
    }
    /* under the writer's lock no transaction is open: the snapshot the
     * reader takes now is exactly where the new session starts */
    pthread_mutex_lock(&s->wlock);
    if (s->log)
        sqlite3session_delete(s->log);
    s->log = NULL;
    fp_sq_log_queue_free(s->log_head);
    s->log_head = s->log_tail = NULL;
    s->log_bytes = 0;
    s->log_broken = 0;
    int rc = begin_snapshot(ro, err);
    sqlite3_session *ses = NULL;
    if (rc == 0 && (sqlite3session_create(s->wdb, "main", &ses) != SQLITE_OK ||
                    sqlite3session_attach(ses, NULL) != SQLITE_OK)) {
        sqlite3session_delete(ses);
        rc = fp_fail(err, FP_EIO, "session: %s", sqlite3_errmsg(s->wdb));
    } else if (rc == 0)
        s->log = ses;
    pthread_mutex_unlock(&s->wlock);
    if (rc == 0)
        rc = copy_snapshot(ro, base_db, err);
    if (wal_bytes) {
        char wal[PATH_MAX + 8];
        snprintf(wal, sizeof wal, "%s-wal", s->o.path);
        *wal_bytes = file_size(wal);
    }
    fp_sq_exec(ro, "COMMIT", NULL);
    sqlite3_close(ro);
    return rc;
}

int fp_store_log_drain(fp_store *st, fp_store_log_fn fn, void *arg)
{
    fp_sqlite *s = sq(st);
    if (!s)
        return 1;
    pthread_mutex_lock(&s->wlock);
    fp_sq_log_commit(s); /* what other writers than the issuing batches left */
    /* a write by another process (a CLI command appends to the audit log):
     * its changes are not in this session */
    int64_t amax = 0;
    if (!s->audit_stale && one_int(s->wdb, "SELECT max(id) FROM audit", &amax) == 0 &&
        amax != s->audit_last_id)
        s->log_broken = 1;
    log_txn *q = s->log_head;
    s->log_head = s->log_tail = NULL;
    s->log_bytes = 0;
    int broken = s->log_broken || !s->log;
    pthread_mutex_unlock(&s->wlock);
    int rc = 0;
    /* broken: what is queued may not apply to the old base (a foreign write
     * came between); the new base the archiver takes next holds it all */
    for (log_txn *t = broken ? NULL : q; t && rc == 0; t = t->next)
        rc = fn(t->ms, t->cs, (size_t)t->n, arg);
    fp_sq_log_queue_free(q);
    return rc < 0 ? rc : broken;
}

void fp_store_log_stop(fp_store *st)
{
    fp_sqlite *s = sq(st);
    if (!s)
        return;
    pthread_mutex_lock(&s->wlock);
    fp_sq_log_free(s);
    pthread_mutex_unlock(&s->wlock);
}

void fp_store_set_reserve(fp_store *st, fp_store_reserve_fn fn, void *arg)
{
    fp_sqlite *s = sq(st);
    if (!s)
        return;
    pthread_mutex_lock(&s->wlock);
    s->reserve_fn = fn;
    s->reserve_arg = arg;
    for (int i = 0; i < s->nranges; i++)
        s->ranges[i].reserved = 0; /* a new archiver: reserve anew */
    pthread_mutex_unlock(&s->wlock);
}
