/* failstop.c — the store's fail-stop state (store.h "fail-stop", docs/storage.md).
 *
 * Why a VFS shim: after a failed write or fsync the kernel may mark pages
 * that never reached the disk as clean, so the next write "works" and a
 * check through the page cache passes over a broken file (PostgreSQL's
 * 2018 fsync lesson).  The only safe reaction is to stop writing at the
 * first error.  Errors surface in many places (a group commit, the
 * checkpointer, the outbox's job rows, a CLI command's connection), so
 * every connection of a store opens its files through a thin wrapper of
 * the default VFS that sees every write, truncate, sync and delete: the
 * first SQLITE_IOERR* trips the fail-stop, and from then on the wrapper
 * refuses every write to the database and its WAL, whoever asks.
 * SQLITE_FULL (ENOSPC) is not an I/O error here: it stays retryable.
 * Corruption (SQLITE_CORRUPT, SQLITE_NOTADB) is not visible to a VFS; the
 * store reports it through fp_failstop_note_db where statements fail.
 *
 * The state is sticky for the life of the process: SQLite's page caches and
 * its WAL index in shared memory outlive any check made inside the
 * process, and only a fresh open re-reads the WAL (checksums and all) from
 * the disk.  Writes resume after a restart whose start-up check passes
 * (fp_failstop_startup). */
#include "failstop.h"

#include "fapiao/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const cause_names[] = {
    [FP_FAILSTOP_NONE] = "none",          [FP_FAILSTOP_IO] = "io_error",
    [FP_FAILSTOP_CORRUPT] = "corruption", [FP_FAILSTOP_FILE_GONE] = "file_replaced",
    [FP_FAILSTOP_CHECK] = "check_failed",
};

const char *fp_failstop_cause_name(int cause)
{
    return cause >= 0 && cause <= FP_FAILSTOP_CHECK ? cause_names[cause] : "?";
}

int fp_failstop_classify(int ext_rc)
{
    switch (ext_rc & 0xff) {
    case SQLITE_IOERR:
        if (ext_rc == SQLITE_IOERR_NOMEM || ext_rc == SQLITE_IOERR_SHORT_READ)
            return FP_FAILSTOP_NONE;
        return FP_FAILSTOP_IO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return FP_FAILSTOP_CORRUPT;
    case SQLITE_READONLY:
        return ext_rc == SQLITE_READONLY_DBMOVED ? FP_FAILSTOP_FILE_GONE : FP_FAILSTOP_NONE;
    default: /* SQLITE_FULL among them: disk full is retryable */
        return FP_FAILSTOP_NONE;
    }
}

/* ---- the marker file: the fail-stop survives a restart ---- */

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if (c >= 'a' && c <= 'f')
                v |= (unsigned)(c - 'a' + 10);
            else
                return -1;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* Under fs->mu.  Best effort: the disk that failed may refuse this too,
 * and the log line carries the same facts. */

static void marker_write_locked(fp_failstop *fs)
{
    if (fs->read_only)
        return;
    /* until one write succeeds, every second; then every 30 s all the same:
     * a disk that failed may report a lost write only at the next fsync */
    fs->marker_ok = 0;
    fs->marker_retry_ms = fp_mono_ms() + 1000;
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", fs->marker_path);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return;
    fprintf(f, "fapiao-failstop 1\ncause %s\nat %lld\nreason %s\n",
            fp_failstop_cause_name(atomic_load(&fs->cause)), (long long)time(NULL), fs->reason);
    for (int i = 0; i < fs->nacked; i++)
        fprintf(f, "acked %s\n", fs->acked[i]);
    if (fs->audit_id > 0) {
        char h[2 * FP_AUDIT_HASH_LEN + 1];
        hex(fs->audit_hash, FP_AUDIT_HASH_LEN, h);
        fprintf(f, "audit %lld %s\n", (long long)fs->audit_id, h);
    }
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (ok && rename(tmp, fs->marker_path) == 0) {
        char dir[sizeof fs->marker_path];
        snprintf(dir, sizeof dir, "%s", fs->marker_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fs->marker_ok = fsync(dfd) == 0;
            close(dfd);
        }
        if (fs->marker_ok)
            fs->marker_retry_ms = fp_mono_ms() + 30000;
    } else {
        unlink(tmp);
    }
}

int fp_failstop_marker_read(const char *db_path, fp_failstop_expect *ex, char *reason, size_t cap)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s-failstop", db_path);
    memset(ex, 0, sizeof *ex);
    if (reason && cap)
        reason[0] = 0;
    FILE *f = fopen(p, "re");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char line[512];
    if (!fgets(line, sizeof line, f) || strcmp(line, "fapiao-failstop 1\n") != 0) {
        fclose(f); /* damaged (a disk that lost it): what was acknowledged is unknown */
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "acked ", 6) && ex->nacked < FP_FAILSTOP_ACKED_MAX &&
            strlen(line + 6) == FP_NUMBER_LEN)
            snprintf(ex->acked[ex->nacked++], FP_NUMBER_LEN + 1, "%s", line + 6);
        else if (!strncmp(line, "audit ", 6)) {
            char *sp = strchr(line + 6, ' ');
            if (sp && strlen(sp + 1) == 2 * FP_AUDIT_HASH_LEN &&
                unhex(sp + 1, ex->audit_hash, FP_AUDIT_HASH_LEN) == 0)
                ex->audit_id = strtoll(line + 6, NULL, 10);
        } else if (!strncmp(line, "reason ", 7) && reason && cap)
            snprintf(reason, cap, "%s", line + 7);
    }
    fclose(f);
    return 1;
}

int fp_failstop_marker_clear(const char *db_path)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s-failstop", db_path);
    return unlink(p) == 0 || errno == ENOENT ? 0 : -1;
}

/* ---- tripping ---- */

void fp_failstop_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void fp_failstop_trip(fp_failstop *fs, int cause, int sqlite_code, const char *fmt, ...)
{
    if (!fs || cause == FP_FAILSTOP_NONE)
        return;
    int none = FP_FAILSTOP_NONE;
    pthread_mutex_lock(&fs->mu);
    if (!atomic_compare_exchange_strong(&fs->cause, &none, cause)) {
        pthread_mutex_unlock(&fs->mu);
        return; /* the first cause is the one that counts */
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fs->reason, sizeof fs->reason, fmt, ap);
    va_end(ap);
    fs->sqlite_code = sqlite_code;
    /* the highest severity the service logs: nothing else stops writes
     * until an operator acts */
    flockfile(stderr);
    fprintf(stderr, "{\"level\":\"emerg\",\"event\":\"store_failstop\",\"cause\":\"%s\",",
            fp_failstop_cause_name(cause));
    if (sqlite_code)
        fprintf(stderr, "\"sqlite_code\":%d,\"sqlite_error\":\"%s\",", sqlite_code,
                sqlite3_errstr(sqlite_code));
    fprintf(stderr, "\"database\":");
    fp_failstop_json_str(stderr, fs->db_path);
    fprintf(stderr, ",\"reason\":");
    fp_failstop_json_str(stderr, fs->reason);
    if (fs->nacked)
        fprintf(stderr, ",\"last_acknowledged\":\"%s\"",
                fs->acked[(fs->acked_pos + FP_FAILSTOP_ACKED_MAX - 1) % FP_FAILSTOP_ACKED_MAX]);
    if (fs->audit_id)
        fprintf(stderr, ",\"audit_head\":%lld", (long long)fs->audit_id);
    fprintf(stderr, ",\"action\":\"writes stopped (503 STORE_FAILSTOP); reads go on; an operator "
                    "must check the disk and the store: fapiao check --data-dir DIR, then "
                    "restart; restore from backup if the check fails (docs/storage.md)\"}\n");
    funlockfile(stderr);
    fflush(stderr);
    if (cause != FP_FAILSTOP_CHECK)
        marker_write_locked(fs);
    pthread_mutex_unlock(&fs->mu);
}

int fp_failstop_get(fp_failstop *fs, char *why, size_t cap)
{
    if (!fs)
        return FP_FAILSTOP_NONE;
    int c = atomic_load(&fs->cause);
    if (c != FP_FAILSTOP_NONE && why && cap) {
        pthread_mutex_lock(&fs->mu);
        snprintf(why, cap, "%s", fs->reason);
        pthread_mutex_unlock(&fs->mu);
    }
    return c;
}

static fp_failstop *from_vfs(sqlite3_vfs *v);

void fp_failstop_note_db(sqlite3 *db, const char *op)
{
    if (!db)
        return;
    int rc = sqlite3_extended_errcode(db);
    int cause = fp_failstop_classify(rc);
    if (cause == FP_FAILSTOP_NONE)
        return;
    sqlite3_vfs *v = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &v) != SQLITE_OK)
        return;
    fp_failstop *fs = from_vfs(v);
    if (fs && atomic_load(&fs->cause) == FP_FAILSTOP_NONE)
        fp_failstop_trip(fs, cause, rc, "%s: %s (%s)", op, sqlite3_errmsg(db), sqlite3_errstr(rc));
}

void fp_failstop_acked(fp_failstop *fs, const char *const *numbers, int n, int64_t audit_id,
                       const unsigned char *audit_hash)
{
    if (!fs || (n == 0 && !audit_id))
        return;
    pthread_mutex_lock(&fs->mu);
    for (int i = 0; i < n; i++) {
        snprintf(fs->acked[fs->acked_pos], FP_NUMBER_LEN + 1, "%s", numbers[i]);
        fs->acked_pos = (fs->acked_pos + 1) % FP_FAILSTOP_ACKED_MAX;
        if (fs->nacked < FP_FAILSTOP_ACKED_MAX)
            fs->nacked++;
    }
    if (audit_id && audit_hash) {
        fs->audit_id = audit_id;
        memcpy(fs->audit_hash, audit_hash, FP_AUDIT_HASH_LEN);
    }
    pthread_mutex_unlock(&fs->mu);
}

void fp_failstop_expected(fp_failstop *fs, fp_failstop_expect *ex)
{
    memset(ex, 0, sizeof *ex);
    pthread_mutex_lock(&fs->mu);
    for (int i = 0; i < fs->nacked && i < FP_FAILSTOP_ACKED_MAX; i++)
        snprintf(ex->acked[ex->nacked++], FP_NUMBER_LEN + 1, "%s", fs->acked[i]);
    ex->audit_id = fs->audit_id;
    memcpy(ex->audit_hash, fs->audit_hash, FP_AUDIT_HASH_LEN);
    pthread_mutex_unlock(&fs->mu);
}

/* ---- the files are still the ones at their paths ---- */

static int same_file(int fd, const struct stat *at_open, const char *path, const char *what,
                     char *why, size_t cap)
{
    struct stat f, p;
    if (fd < 0)
        return 1;
    if (fstat(fd, &f) != 0) {
        snprintf(why, cap, "fstat of the open %s failed: %s", what, strerror(errno));
        return 0;
    }
    if (f.st_nlink == 0) {
        snprintf(why, cap, "the %s %s was deleted while open (link count 0)", what, path);
        return 0;
    }
    if (stat(path, &p) != 0) {
        snprintf(why, cap, "the %s %s is gone from its path (renamed or deleted): %s", what, path,
                 strerror(errno));
        return 0;
    }
    if (p.st_dev != f.st_dev || p.st_ino != f.st_ino || f.st_ino != at_open->st_ino ||
        f.st_dev != at_open->st_dev) {
        snprintf(why, cap,
                 "the %s at %s is another file than the one open (device/inode %llu/%llu, open "
                 "%llu/%llu): replaced or renamed",
                 what, path, (unsigned long long)p.st_dev, (unsigned long long)p.st_ino,
                 (unsigned long long)f.st_dev, (unsigned long long)f.st_ino);
        return 0;
    }
    return 1;
}

int fp_failstop_check_files(fp_failstop *fs, fp_err *err)
{
    if (!fs)
        return 0;
    if (atomic_load(&fs->cause) != FP_FAILSTOP_NONE) {
        /* the marker makes the fail-stop outlive a restart; the disk that
         * failed may take it only once it works again */
        pthread_mutex_lock(&fs->mu);
        if (atomic_load(&fs->cause) != FP_FAILSTOP_CHECK && fp_mono_ms() >= fs->marker_retry_ms)
            marker_write_locked(fs);
        pthread_mutex_unlock(&fs->mu);
        return fp_fail(err, FP_EIO, "store fail-stopped");
    }
    char why[PATH_MAX + 160];
    if (!same_file(fs->db_fd, &fs->db_st, fs->db_path, "database file", why, sizeof why) ||
        !same_file(fs->wal_fd, &fs->wal_st, fs->wal_path, "WAL file", why, sizeof why)) {
        fp_failstop_trip(fs, FP_FAILSTOP_FILE_GONE, 0, "%s", why);
        return fp_fail(err, FP_EIO, "%.240s", why);
    }
    return 0;
}

int fp_failstop_watch_files(fp_failstop *fs, fp_err *err)
{
    int fd = open(fs->db_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &fs->db_st) != 0) {
        if (fd >= 0)
            close(fd);
        return fp_fail(err, FP_EIO, "open %s: %s", fs->db_path, strerror(errno));
    }
    fs->db_fd = fd;
    fd = open(fs->wal_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &fs->wal_st) == 0)
        fs->wal_fd = fd;
    else if (fd >= 0)
        close(fd);
    return 0;
}

/* ---- the VFS shim ---- */

typedef struct fs_file {
    sqlite3_file base;
    fp_failstop *fs;
    int main_or_wal; /* writes to it are refused once stopped */
    char what[12];
    sqlite3_file *real; /* the default VFS's file, right after this struct */
} fs_file;

static int stopped(fs_file *f)
{
    return f->main_or_wal && atomic_load(&f->fs->cause) != FP_FAILSTOP_NONE;
}

static int seen(fs_file *f, int rc, const char *op)
{
    if (rc != SQLITE_OK && fp_failstop_classify(rc) == FP_FAILSTOP_IO &&
        atomic_load(&f->fs->cause) == FP_FAILSTOP_NONE)
        fp_failstop_trip(f->fs, FP_FAILSTOP_IO, rc, "%s of the %s failed: %s (errno %d: %s)", op,
                         f->what, sqlite3_errstr(rc), errno, strerror(errno));
    return rc;
}

static int x_close(sqlite3_file *p)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xClose(f->real);
}

static int x_read(sqlite3_file *p, void *buf, int n, sqlite3_int64 off)
{
    fs_file *f = (fs_file *)p;
    return seen(f, f->real->pMethods->xRead(f->real, buf, n, off), "read");
}

static int x_write(sqlite3_file *p, const void *buf, int n, sqlite3_int64 off)
{
    fs_file *f = (fs_file *)p;
    if (stopped(f))
        return SQLITE_IOERR_WRITE;
    return seen(f, f->real->pMethods->xWrite(f->real, buf, n, off), "write");
}

static int x_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    fs_file *f = (fs_file *)p;
    if (stopped(f))
        return SQLITE_IOERR_TRUNCATE;
    return seen(f, f->real->pMethods->xTruncate(f->real, size), "truncate");
}

static int x_sync(sqlite3_file *p, int flags)
{
    fs_file *f = (fs_file *)p;
    if (stopped(f))
        return SQLITE_IOERR_FSYNC;
    return seen(f, f->real->pMethods->xSync(f->real, flags), "fsync");
}

static int x_size(sqlite3_file *p, sqlite3_int64 *size)
{
    fs_file *f = (fs_file *)p;
    return seen(f, f->real->pMethods->xFileSize(f->real, size), "fstat");
}

static int x_lock(sqlite3_file *p, int l)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xLock(f->real, l);
}

static int x_unlock(sqlite3_file *p, int l)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xUnlock(f->real, l);
}

static int x_reserved(sqlite3_file *p, int *out)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int x_fcntl(sqlite3_file *p, int op, void *arg)
{
    fs_file *f = (fs_file *)p;
    if (op == SQLITE_FCNTL_VFS_POINTER) {
        *(sqlite3_vfs **)arg = &f->fs->vfs;
        return SQLITE_OK;
    }
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int x_sector(sqlite3_file *p)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xSectorSize(f->real);
}

static int x_devchar(sqlite3_file *p)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int x_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **pp)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, pp);
}

static int x_shm_lock(sqlite3_file *p, int off, int n, int flags)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xShmLock(f->real, off, n, flags);
}

static void x_shm_barrier(sqlite3_file *p)
{
    fs_file *f = (fs_file *)p;
    f->real->pMethods->xShmBarrier(f->real);
}

static int x_shm_unmap(sqlite3_file *p, int del)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xShmUnmap(f->real, del);
}

static int x_fetch(sqlite3_file *p, sqlite3_int64 off, int n, void **pp)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xFetch(f->real, off, n, pp);
}

static int x_unfetch(sqlite3_file *p, sqlite3_int64 off, void *pg)
{
    fs_file *f = (fs_file *)p;
    return f->real->pMethods->xUnfetch(f->real, off, pg);
}

static const sqlite3_io_methods io_v3 = {
    3,          x_close,       x_read,      x_write, x_truncate, x_sync,    x_size,
    x_lock,     x_unlock,      x_reserved,  x_fcntl, x_sector,   x_devchar, x_shm_map,
    x_shm_lock, x_shm_barrier, x_shm_unmap, x_fetch, x_unfetch,
};

static int v_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *p, int flags, int *out)
{
    fp_failstop *fs = (fp_failstop *)v;
    fs_file *f = (fs_file *)p;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    f->fs = fs;
    int rc = fs->base->xOpen(fs->base, name, f->real, flags, out);
    if (rc != SQLITE_OK || !f->real->pMethods) {
        p->pMethods = NULL;
        return rc;
    }
    f->main_or_wal =
        (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)) != 0;
    snprintf(f->what, sizeof f->what, "%s",
             flags & SQLITE_OPEN_MAIN_DB ? "database"
             : flags & SQLITE_OPEN_WAL   ? "WAL"
                                         : "file");
    p->pMethods = &io_v3;
    return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync)
{
    fp_failstop *fs = (fp_failstop *)v;
    if (atomic_load(&fs->cause) != FP_FAILSTOP_NONE)
        return SQLITE_IOERR_DELETE; /* a WAL that may hold the only good copy stays */
    return fs->base->xDelete(fs->base, name, sync);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xAccess(fs->base, name, flags, out);
}

static int v_full(sqlite3_vfs *v, const char *name, int n, char *out)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xFullPathname(fs->base, name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *name)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xDlOpen(fs->base, name);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
    fp_failstop *fs = (fp_failstop *)v;
    fs->base->xDlError(fs->base, n, msg);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xDlSym(fs->base, h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h)
{
    fp_failstop *fs = (fp_failstop *)v;
    fs->base->xDlClose(fs->base, h);
}

static int v_random(sqlite3_vfs *v, int n, char *out)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xRandomness(fs->base, n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xSleep(fs->base, us);
}

static int v_time(sqlite3_vfs *v, double *out)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xCurrentTime(fs->base, out);
}

static int v_lasterr(sqlite3_vfs *v, int n, char *out)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xGetLastError(fs->base, n, out);
}

static int v_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    fp_failstop *fs = (fp_failstop *)v;
    return fs->base->xCurrentTimeInt64(fs->base, out);
}

static fp_failstop *from_vfs(sqlite3_vfs *v)
{
    return v && v->xOpen == v_open ? (fp_failstop *)v : NULL;
}

int fp_failstop_new(const char *db_path, fp_failstop **out, fp_err *err)
{
    sqlite3_initialize();
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    if (!base || base->iVersion < 2)
        return fp_fail(err, FP_EIO, "no default SQLite VFS");
    fp_failstop *fs = calloc(1, sizeof *fs);
    if (!fs)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    static _Atomic unsigned seq;
    fs->base = base;
    fs->db_fd = fs->wal_fd = -1;
    pthread_mutex_init(&fs->mu, NULL);
    snprintf(fs->name, sizeof fs->name, "fapiao-failstop-%u-%u", (unsigned)getpid(),
             atomic_fetch_add(&seq, 1));
    snprintf(fs->db_path, sizeof fs->db_path, "%s", db_path);
    snprintf(fs->wal_path, sizeof fs->wal_path, "%s-wal", db_path);
    snprintf(fs->marker_path, sizeof fs->marker_path, "%s-failstop", db_path);
    sqlite3_vfs *v = &fs->vfs;
    v->iVersion = 2;
    v->szOsFile = (int)sizeof(fs_file) + base->szOsFile;
    v->mxPathname = base->mxPathname;
    v->zName = fs->name;
    v->xOpen = v_open;
    v->xDelete = v_delete;
    v->xAccess = v_access;
    v->xFullPathname = v_full;
    v->xDlOpen = v_dlopen;
    v->xDlError = v_dlerror;
    v->xDlSym = v_dlsym;
    v->xDlClose = v_dlclose;
    v->xRandomness = v_random;
    v->xSleep = v_sleep;
    v->xCurrentTime = v_time;
    v->xGetLastError = v_lasterr;
    v->xCurrentTimeInt64 = v_time64;
    if (sqlite3_vfs_register(v, 0) != SQLITE_OK) {
        fp_failstop_free(fs);
        return fp_fail(err, FP_EIO, "cannot register the SQLite VFS");
    }
    fs->registered = 1;
    *out = fs;
    return 0;
}

void fp_failstop_read_only(fp_failstop *fs)
{
    fs->read_only = 1;
}

const char *fp_failstop_vfs_name(fp_failstop *fs)
{
    return fs->name;
}

void fp_failstop_free(fp_failstop *fs)
{
    if (!fs)
        return;
    /* at a clean stop the disk may work again: the marker once more */
    int c = atomic_load(&fs->cause);
    if (c != FP_FAILSTOP_NONE && c != FP_FAILSTOP_CHECK) {
        pthread_mutex_lock(&fs->mu);
        marker_write_locked(fs);
        if (!fs->marker_ok)
            fprintf(stderr,
                    "{\"level\":\"emerg\",\"event\":\"store_failstop_marker\",\"error\":\"cannot "
                    "write %s: the next start cannot verify what was acknowledged\"}\n",
                    fs->marker_path);
        pthread_mutex_unlock(&fs->mu);
    }
    if (fs->registered)
        sqlite3_vfs_unregister(&fs->vfs);
    if (fs->db_fd >= 0)
        close(fs->db_fd);
    if (fs->wal_fd >= 0)
        close(fs->wal_fd);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}
