/* open.c — the SQLite backend's open and close, its pool of read-only
 * connections, the write probe, hooks, faults, counters and the fail-stop's
 * face (store.h).  The writer and its threads: writer.c. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fapiao/clock.h"
#include "fapiao/jobs.h"
#include "internal.h"

/* ---- open / close ---- */

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
    if (s->o.slow_write_ms == 0)
        s->o.slow_write_ms = 2000;
    if (s->o.write_deadline_ms == 0)
        s->o.write_deadline_ms = 5000;
    fp_store_shm_guard();
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->hooklock, NULL);
    fp_cond_init_mono(&s->rpcond);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_mutex_init(&s->cklock, NULL);
    fp_cond_init_mono(&s->ckcond);
    pthread_mutex_init(&s->rlock, NULL);
    pthread_cond_init(&s->rcond, NULL);

    /* Before any connection: the check from the disk (docs/storage.md).
     * A failure leaves the store open read-only (fail-stop). */
    if ((rc = fp_failstop_new(o->path, &s->fs, err)) < 0)
        goto fail;
    const char *vfs = fp_failstop_vfs_name(s->fs);
    int bg_check = 0;
    if (access(o->path, F_OK) == 0) {
        fp_store_check_report rep;
        int sync =
            s->o.start_check == FP_START_CHECK_SYNC ||
            (s->o.start_check == FP_START_CHECK_AUTO && fp_failstop_needs_sync_check(o->path));
        fp_failstop_startup(s->fs, sync, &rep);
        bg_check = !sync && s->o.start_check == FP_START_CHECK_AUTO;
    }
    if ((rc = fp_sq_open_conn(o->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs, &s->wdb,
                              err)) < 0)
        goto fail;
    /* journal_mode=WAL is persistent; synchronous=FULL makes every COMMIT
     * fsync the WAL, which is what makes an acknowledgement durable. */
    if ((rc = fp_sq_exec(s->wdb,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                         "PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0; "
                         "PRAGMA journal_size_limit=67108864",
                         err)) < 0)
        goto fail;
    if ((rc = fp_sq_migrate(s->wdb, err)) < 0)
        goto fail;
    if ((rc = fp_failstop_watch_files(s->fs, err)) < 0)
        goto fail;
    for (int i = 0; i < WQ__N; i++)
        if (sqlite3_prepare_v3(s->wdb, fp_sq_write_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->wst[i], NULL) != SQLITE_OK) {
            rc = fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(s->wdb));
            goto fail;
        }
    if ((rc = fp_sq_audit_open(s, err)) < 0) {
        char why[320];
        if (fp_failstop_get(s->fs, why, sizeof why) == FP_FAILSTOP_NONE)
            goto fail;
        /* read-only already: serve what can be read */
        fprintf(stderr, "{\"level\":\"error\",\"event\":\"audit_unreadable\",\"detail\":\"%s\"}\n",
                err ? err->msg : "");
    }
    if ((rc = fp_sq_clock_open(s, err)) < 0)
        goto fail;
    for (int i = 0; i < s->o.read_conns; i++) {
        reader *rd = &s->readers[i];
        if ((rc = fp_sq_open_conn(o->path, SQLITE_OPEN_READONLY, vfs, &rd->db, err)) < 0)
            goto fail;
        s->nreaders++;
        for (int q = 0; q < RQ__N; q++)
            if (sqlite3_prepare_v3(rd->db, fp_sq_read_sql[q], -1, SQLITE_PREPARE_PERSISTENT,
                                   &rd->st[q], NULL) != SQLITE_OK) {
                rc = fp_fail(err, FP_EIO, "prepare: %s", sqlite3_errmsg(rd->db));
                goto fail;
            }
        s->rfree[s->nfree++] = i;
    }
    /* A connection checkpoints only once it has opened the WAL: read first. */
    if ((rc = fp_sq_open_conn(o->path, SQLITE_OPEN_READWRITE, vfs, &s->cdb, err)) < 0 ||
        (rc = fp_sq_exec(s->cdb, "SELECT count(*) FROM sqlite_master", err)) < 0)
        goto fail;
    if ((rc = fp_sq_writer_start(s, err)) < 0)
        goto fail;
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
    int stopped = fp_failstop_get(s->fs, NULL, 0) != FP_FAILSTOP_NONE;
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
    if (s->wdb) {
        if (!stopped)
            sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_close(s->wdb);
    }
    fp_failstop_free(s->fs); /* after the last connection: it owns their VFS */
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->cklock);
    pthread_cond_destroy(&s->ckcond);
    pthread_mutex_destroy(&s->rlock);
    pthread_cond_destroy(&s->rcond);
    pthread_mutex_destroy(&s->hooklock);
    pthread_cond_destroy(&s->rpcond);
    free(s);
}

/* ---- reads ---- */

reader *fp_sq_acquire(fp_sqlite *s)
{
    pthread_mutex_lock(&s->rlock);
    while (s->nfree == 0)
        pthread_cond_wait(&s->rcond, &s->rlock);
    reader *r = &s->readers[s->rfree[--s->nfree]];
    pthread_mutex_unlock(&s->rlock);
    return r;
}

void fp_sq_release(fp_sqlite *s, reader *r, sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    fp_failstop_note_db(r->db, "read"); /* corruption found by a read */
    pthread_mutex_lock(&s->rlock);
    s->rfree[s->nfree++] = (int)(r - s->readers);
    pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rlock);
}
void sq_store_get_stats(void *be, fp_store_stats *st)
{
    fp_sqlite *s = be;
    st->commits = atomic_load(&s->commits);
    st->requests = atomic_load(&s->requests);
    st->max_batch = atomic_load(&s->max_batch);
    st->fsync_us_total = atomic_load(&s->fsync_us);
    st->slow_writes = atomic_load(&s->slow_writes);
    st->timed_out = atomic_load(&s->timed_out);
    st->unknown = atomic_load(&s->unknown);
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

sqlite3 *fp_sq_racquire(fp_sqlite *s, void **slot)
{
    reader *r = fp_sq_acquire(s);
    *slot = r;
    return r->db;
}

void fp_sq_rrelease(fp_sqlite *s, void *slot)
{
    fp_sq_release(s, slot, NULL);
}

void sq_store_set_job_hook(void *be, void (*fn)(void *arg), void *arg)
{
    fp_sqlite *s = be;
    pthread_mutex_lock(&s->wlock);
    s->job_hook = fn;
    s->job_hook_arg = arg;
    pthread_mutex_unlock(&s->wlock);
}

int fp_sq_refuse_stopped(fp_sqlite *s, fp_err *err)
{
    char why[320];
    if (fp_failstop_get(s->fs, why, sizeof why) == FP_FAILSTOP_NONE)
        return 0;
    return fp_fail(err, FP_EIO,
                   "store fail-stopped (writes refused until an operator checks it): %.180s", why);
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
    fp_sq_outcome(s, rc == 0);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

void sq_store_set_outcome_hook(void *be, void (*fn)(int ok, void *arg), void *arg)
{
    fp_sqlite *s = be;
    pthread_mutex_lock(&s->wlock);
    pthread_mutex_lock(&s->hooklock);
    s->outcome_hook = fn;
    s->outcome_hook_arg = arg;
    pthread_mutex_unlock(&s->hooklock);
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
