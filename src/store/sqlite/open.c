/* open.c — the SQLite backend's open and close, its pool of read-only
 * connections, the write probe, hooks, faults, counters and the fail-stop's
 * face (store.h).  The writer and its threads: writer.c. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "fapiao/clock.h"
#include "fapiao/jobs.h"
#include "internal.h"

/* ---- open / close ---- */

/* The writer connection of a store that writes: WAL, durable commits, the
 * schema brought up to date, its statements, the audit chain's head and
 * the issue clock. */
static int open_writer(fp_sqlite *s, const char *vfs, fp_err *err)
{
    int rc;
    if ((rc = fp_sq_open_conn(s->o.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs, &s->wdb,
                              err)) < 0)
        return rc;
    /* journal_mode=WAL is persistent; synchronous=FULL makes every COMMIT
     * fsync the WAL, which is what makes an acknowledgement durable.  No
     * journal_size_limit: with it, the first commit after the WAL restarts
     * truncates the file, and a WAL that grew for seconds under load took
     * that commit 0.7 s (a 574 MB file); the checkpointer truncates it
     * while the writer is idle instead (writer.c, docs/performance.md §5c). */
    if ((rc = fp_sq_exec(s->wdb,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                         "PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0; "
                         "PRAGMA journal_size_limit=-1",
                         err)) < 0 ||
        (rc = fp_sq_migrate(s->wdb, err)) < 0 || (rc = fp_failstop_watch_files(s->fs, err)) < 0)
        return rc;
    for (int i = 0; i < WQ__N; i++)
        if (sqlite3_prepare_v3(s->wdb, fp_sq_write_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->wst[i], NULL) != SQLITE_OK)
            return fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(s->wdb));
    if ((rc = fp_sq_audit_open(s, err)) < 0) {
        char why[320];
        if (fp_failstop_get(s->fs, why, sizeof why) == FP_FAILSTOP_NONE)
            return rc;
        /* read-only already: serve what can be read */
        fprintf(stderr, "{\"level\":\"error\",\"event\":\"audit_unreadable\",\"detail\":\"%s\"}\n",
                err ? err->msg : "");
    }
    return fp_sq_clock_open(s, err);
}

/* A URI for path with the query q ("immutable=1"): the path's bytes that
 * a URI gives a meaning to are %-escaped. */
static int file_uri(const char *path, const char *q, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && n + 4 < cap; p++)
        if (*p == '?' || *p == '#' || *p == '%' || *p <= ' ' || *p >= 0x7f)
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
        else
            out[n++] = (char)*p;
    int w = snprintf(out + n, cap - n, "?%s", q);
    return w < 0 || (size_t)w >= cap - n ? -1 : 0;
}

/* 1 when a process has the database open in WAL mode: it holds a lock on
 * the -shm's "dead man switch" byte (SQLite's unix VFS: offset 128).
 * F_GETLK only asks; no lock is taken and no file is made. */
static int shm_in_use(const char *shm)
{
    int fd = open(shm, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 128, .l_len = 1};
    int used = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return used;
}

/* The URI query of a read-only open of path.  Neither -wal nor -shm (a
 * cleanly stopped store): immutable, read from the file alone, since a
 * read-only connection would otherwise create both.  A -shm that nobody
 * holds (a store stopped uncleanly): readonly_shm, so SQLite reads the WAL
 * into a private index instead of writing its read marks or a recovery
 * into the -shm.  A store in use (a server running): the normal read
 * path, which sees its latest commits. */
static const char *ro_query(const char *path)
{
    char wal[PATH_MAX + 8], shm[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    if (access(wal, F_OK) != 0 && access(shm, F_OK) != 0)
        return "immutable=1";
    return shm_in_use(shm) ? "mode=ro" : "mode=ro&readonly_shm=1";
}

/* A store that only reads (fp_store_opts.read_only): no migration, no
 * writer or checkpointer thread, no audit key, no checkpoint signed or
 * WAL checkpointed on close, and every connection SQLITE_OPEN_READONLY.
 * How the files are opened so that a stopped store's keep every byte:
 * ro_query. */
static int open_read_only(fp_sqlite *s, fp_err *err)
{
    if (file_uri(s->o.path, ro_query(s->o.path), s->ro_uri, sizeof s->ro_uri) < 0)
        return fp_fail(err, FP_ERANGE, "database path too long");
    snprintf(s->q.draining, sizeof s->q.draining, "store opened read-only (只读打开，不能开票)");
    int rc = fp_sq_open_conn(s->ro_uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                             fp_failstop_vfs_name(s->fs), &s->wdb, err);
    if (rc < 0)
        return rc;
    int64_t have = 0;
    int null = 0;
    if (fp_sq_int_or_null(s->wdb, "PRAGMA user_version", 0, &have, &null) < 0)
        return fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(s->wdb));
    int want = fp_store_migration_count();
    if (have != want)
        return fp_fail(err, FP_EINVAL,
                       "the database schema is version %lld, this fapiao's is %d: %s "
                       "(数据库结构版本 %lld 与本程序的 %d 不符：%s)",
                       (long long)have, want,
                       have < want ? "it must be migrated first, which a read-only command does "
                                     "not do: run fapiao serve once"
                                   : "upgrade fapiao",
                       (long long)have, want,
                       have < want ? "只读命令不做升级，请先运行一次 fapiao serve"
                                   : "请升级 fapiao");
    return fp_sq_clock_open(s, err);
}

int fp_store_sqlite_open_ro(const char *path, struct sqlite3 **db)
{
    char uri[PATH_MAX * 3 + 32];
    *db = NULL;
    if (file_uri(path, ro_query(path), uri, sizeof uri) < 0)
        return SQLITE_CANTOPEN;
    return sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
}

/* The pool of read-only connections with their statements. */
static int open_readers(fp_sqlite *s, const char *path, const char *vfs, fp_err *err)
{
    int flags = SQLITE_OPEN_READONLY | (s->o.read_only ? SQLITE_OPEN_URI : 0);
    for (int i = 0; i < s->o.read_conns; i++) {
        reader *rd = &s->readers[i];
        int rc = fp_sq_open_conn(path, flags, vfs, &rd->db, err);
        if (rc < 0)
            return rc;
        s->nreaders++;
        for (int q = 0; q < RQ__N; q++)
            if (sqlite3_prepare_v3(rd->db, fp_sq_read_sql[q], -1, SQLITE_PREPARE_PERSISTENT,
                                   &rd->st[q], NULL) != SQLITE_OK)
                return fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(rd->db));
        s->rfree[s->nfree++] = i;
    }
    return 0;
}

int sq_open(const fp_store_opts *o, void **out, fp_err *err)
{
    int rc;
    fp_sqlite *s = calloc(1, sizeof *s);
    if (!s)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    s->o = *o;
    if (s->o.read_conns <= 0)
        s->o.read_conns = 4;
    if (s->o.read_conns > MAX_READERS)
        s->o.read_conns = MAX_READERS;
    if (s->o.max_batch <= 0)
        s->o.max_batch = 512;
    if (s->o.checkpoint_frames <= 0)
        s->o.checkpoint_frames = 4000;
    if (s->o.wal_keep_bytes <= 0)
        s->o.wal_keep_bytes = 64 << 20;
    if (s->o.slow_write_ms == 0)
        s->o.slow_write_ms = 2000;
    if (s->o.write_deadline_ms == 0)
        s->o.write_deadline_ms = 5000;
    fp_store_shm_guard();
    fp_sq_writer_sync_init(s);

    /* Before any connection: the check from the disk (docs/storage.md).
     * A failure leaves the store open read-only (fail-stop). */
    if ((rc = fp_failstop_new(o->path, &s->fs, err)) < 0)
        goto fail;
    const char *vfs = fp_failstop_vfs_name(s->fs);
    if (s->o.read_only)
        fp_failstop_read_only(s->fs); /* a finding is reported, never written down */
    int bg_check = 0;
    if (access(o->path, F_OK) == 0) {
        fp_store_check_report rep;
        int sync =
            s->o.start_check == FP_START_CHECK_SYNC ||
            (s->o.start_check == FP_START_CHECK_AUTO && fp_failstop_needs_sync_check(o->path));
        fp_failstop_startup(s->fs, sync, &rep);
        bg_check = !sync && s->o.start_check == FP_START_CHECK_AUTO;
    }
    if (s->o.read_only)
        rc = open_read_only(s, err);
    else
        rc = open_writer(s, vfs, err);
    if (rc < 0)
        goto fail;
    if ((rc = open_readers(s, s->o.read_only ? s->ro_uri : o->path, vfs, err)) < 0)
        goto fail;
    if (!s->o.read_only) {
        /* A connection checkpoints only once it has opened the WAL: read first. */
        if ((rc = fp_sq_open_conn(o->path, SQLITE_OPEN_READWRITE, vfs, &s->cdb, err)) < 0 ||
            (rc = fp_sq_exec(s->cdb, "SELECT count(*) FROM sqlite_master", err)) < 0)
            goto fail;
        int null = 0;
        if (fp_sq_int_or_null(s->cdb, "PRAGMA page_size", 0, &s->page_size, &null) < 0 || null)
            s->page_size = 4096;
        if ((rc = fp_sq_writer_start(s, err)) < 0)
            goto fail;
    }
    if (bg_check)
        fp_failstop_background_check(s->fs); /* its failure trips the fail-stop */
    *out = s;
    return 0;
fail:
    sq_close(s);
    return rc;
}

void sq_close(void *be)
{
    fp_sqlite *s = be;
    if (!s)
        return;
    fp_failstop_background_stop(s->fs); /* interrupts a start-up check still running */
    fp_sq_writer_stop(s);               /* drains the queue */
    /* after a fail-stop nothing is checkpointed, not even by the last
     * close: the WAL may hold the only good copy of the last commits */
    int stopped = s->o.read_only || fp_failstop_get(s->fs, NULL, 0) != FP_FAILSTOP_NONE;
    for (int i = 0; stopped && i < s->nreaders; i++)
        sqlite3_db_config(s->readers[i].db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    if (stopped && s->cdb)
        sqlite3_db_config(s->cdb, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    if (stopped && s->wdb)
        sqlite3_db_config(s->wdb, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    for (int i = 0; i < s->nreaders; i++) {
        for (int q = 0; q < RQ__N; q++)
            sqlite3_finalize(s->readers[i].st[q]);
        sqlite3_close(s->readers[i].db);
    }
    sqlite3_close(s->cdb);
    fp_sq_audit_close(s); /* signs the tail: needs the write statements */
    for (int i = 0; i < WQ__N; i++)
        sqlite3_finalize(s->wst[i]);
    for (int i = 0; i < FP_SQ_JOB_STMTS; i++)
        sqlite3_finalize(s->jst[i]);
    fp_sq_log_free(s); /* a session must go before its connection */
    if (s->wdb) {
        if (!stopped)
            sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(s->wdb);
    }
    fp_failstop_free(s->fs); /* after the last connection: it owns their VFS */
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->jdmu);
    pthread_cond_destroy(&s->jdcv);
    fp_writeq_fini(&s->q);
    pthread_mutex_destroy(&s->cklock);
    pthread_cond_destroy(&s->ckcond);
    pthread_mutex_destroy(&s->rlock);
    pthread_cond_destroy(&s->rcond);
    free(s);
}

/* ---- reads ---- */

void sq_store_get_stats(void *be, fp_store_stats *st)
{
    fp_sqlite *s = be;
    fp_writeq_stats(&s->q, st);
    st->fsync_us_total = atomic_load(&s->fsync_us);
    st->slow_writes = atomic_load(&s->slow_writes);
    st->last_commit_us = atomic_load(&s->last_commit_us);
    st->last_probe_us = atomic_load(&s->last_probe_us);
    st->slow_write_ms = s->o.slow_write_ms;
}

/* ---- for the other store files (internal.h) ---- */

sqlite3 *fp_sq_wlock(fp_sqlite *s)
{
    pthread_mutex_lock(&s->wlock);
    return s->wdb;
}

void fp_sq_wunlock(fp_sqlite *s)
{
    pthread_mutex_unlock(&s->wlock);
}

void sq_store_set_job_hook(void *be, void (*fn)(void *arg), void *arg)
{
    fp_sqlite *s = be;
    pthread_mutex_lock(&s->wlock);
    s->job_hook = fn;
    s->job_hook_arg = arg;
    pthread_mutex_unlock(&s->wlock);
}

int sq_store_probe_write(void *be, fp_err *err)
{
    fp_sqlite *s = be;
    int64_t t0 = fp_mono_us(); /* the wait for the writer counts: a stalled commit holds it */
    /* the files first: a deleted or replaced database is not written to */
    if (fp_sq_refuse_stopped(s, err) < 0 || fp_failstop_check_files(s->fs, err) < 0)
        return FP_EIO;
    pthread_mutex_lock(&s->wlock);
    int rc = fp_sq_exec(s->wdb, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO health_probe(id, at) VALUES(1, %lld)",
                 (long long)fp_wall_ms());
        rc = fp_sq_exec(s->wdb, sql, err);
        if (rc == 0 && fp_sq_fault_before_commit(s) < 0)
            rc = fp_fail(err, FP_EIO, "injected fault: store write");
        if (rc == 0 && (rc = fp_sq_exec(s->wdb, "COMMIT", err)) == 0)
            fp_sq_fault_after_commit(s);
        if (rc < 0 && !sqlite3_get_autocommit(s->wdb))
            fp_sq_exec(s->wdb, "ROLLBACK", NULL);
    }
    int64_t took = fp_mono_us() - t0;
    atomic_store(&s->last_probe_us, took);
    if (rc == 0 && s->o.slow_write_ms > 0 && took > (int64_t)s->o.slow_write_ms * 1000) {
        atomic_fetch_add(&s->slow_writes, 1);
        rc = fp_fail(err, FP_ETIMEDOUT,
                     "write probe took %lld ms, over the %d ms limit: the disk is stalled",
                     (long long)(took / 1000), s->o.slow_write_ms);
    }
    fp_writeq_outcome(&s->q, rc == 0);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

void sq_store_set_outcome_hook(void *be, void (*fn)(int ok, void *arg), void *arg)
{
    fp_sqlite *s = be;
    pthread_mutex_lock(&s->wlock);
    fp_writeq_set_outcome_hook(&s->q, fn, arg);
    pthread_mutex_unlock(&s->wlock);
}

void sq_store_set_faults(void *be, const fp_store_faults *f)
{
    fp_sqlite *s = be;
    atomic_store(&s->fault_write_fail, f->write_fail);
    atomic_store(&s->fault_write_delay_ms, f->write_delay_ms);
    atomic_store(&s->fault_fsync_delay_ms, f->fsync_delay_ms);
}

void sq_store_get_faults(void *be, fp_store_faults *f)
{
    fp_sqlite *s = be;
    f->write_fail = atomic_load(&s->fault_write_fail);
    f->write_delay_ms = atomic_load(&s->fault_write_delay_ms);
    f->fsync_delay_ms = atomic_load(&s->fault_fsync_delay_ms);
}

void sq_store_set_histograms(void *be, struct fp_metric *batch, struct fp_metric *commit_us)
{
    fp_sqlite *s = be;
    atomic_store(&s->h_batch, batch);
    atomic_store(&s->h_commit, commit_us);
}

int sq_store_failstop(void *be, char *why, size_t cap)
{
    fp_sqlite *s = be;
    return fp_failstop_get(s->fs, why, cap);
}

const char *fp_store_failstop_name(int cause)
{
    return fp_failstop_cause_name(cause);
}

int sq_store_check_files(void *be, fp_err *err)
{
    fp_sqlite *s = be;
    return fp_failstop_check_files(s->fs, err);
}

int fp_store_check_path(const char *db_path, int full, fp_store_check_report *rep)
{
    return fp_failstop_check_marked(db_path, full, rep);
}

int sq_store_check_now(void *be, int full, fp_store_check_report *rep)
{
    fp_sqlite *s = be;
    fp_failstop_expect ex;
    fp_failstop_expected(s->fs, &ex);
    return fp_failstop_check_live(s->fs, &ex, full, rep);
}

int fp_store_failstop_clear_marker(const char *db_path)
{
    return fp_failstop_marker_clear(db_path);
}

/* ---- the table of operations (../internal.h) ---- */
const fp_store_ops fp_store_sqlite_ops = {.name = "sqlite",
                                          .open = sq_open,
                                          .close = sq_close,
#define FP_SQ_MEMBER(ret, op, params, args) .op = sq_##op,
                                          FP_STORE_OPS(FP_SQ_MEMBER)
#undef FP_SQ_MEMBER
};
