/* shmguard.c — no SIGBUS from SQLite's -shm file on a full disk
 * (docs/storage-space.md).
 *
 * In WAL mode SQLite memory-maps DB-shm (the wal-index), whatever
 * mmap_size says.  To grow it, the unix VFS writes one byte at the end of
 * every 4 KiB page of the new region; on a filesystem with 1 KiB blocks
 * (mkfs.ext4 chooses them for small filesystems) that allocates one block in
 * four, and the first store into one of the other three on a full disk is a
 * page fault the filesystem cannot back: SIGBUS, the process dies without a
 * message.  The first connection also truncates DB-shm to 3 bytes when it
 * opens it, so preallocating the file beforehand is undone.
 *
 * The cure is a VFS that is the default "unix" VFS except for xShmMap: it
 * first lets SQLite open DB-shm without extending it (bExtend 0, which
 * also does the truncation), then allocates the region's whole range with
 * fallocate(2) (fills holes, keeps data), and only then lets SQLite extend
 * and map it.  When fallocate fails for want of space, the call fails with
 * SQLITE_FULL before anything is mapped: the caller gets an error instead
 * of a SIGBUS.  fallocate runs on SQLite's own descriptor of the file (found
 * in /proc/self/fd): opening and closing another one would drop SQLite's
 * POSIX locks on it.  Other processes (the sqlite3 shell, backups) are not
 * affected: the file format and locking are SQLite's own. */
#include "fapiao/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct guard_file {
    /* the unix VFS's file object, szOsFile bytes, comes first */
    const char *path; /* the database file name (valid until xClose) */
    int prepared;     /* regions already allocated by us */
} guard_file;

static sqlite3_vfs guard_vfs, *base_vfs;
static sqlite3_io_methods guard_methods;
static const sqlite3_io_methods *base_methods;
static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;

static guard_file *extra(sqlite3_file *f)
{
    return (guard_file *)((char *)f + base_vfs->szOsFile);
}

/* SQLite's own descriptor of path-shm, or -1.  We must not open and close
 * one of our own: closing any descriptor of a file drops every POSIX lock
 * the process holds on it, SQLite's lock on -shm among them, and another
 * process would then reset (truncate) the file under our mapping. */
static int shm_fd(const char *shm)
{
    struct stat want;
    if (stat(shm, &want) < 0)
        return -1;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int found = -1, dfd = dirfd(d);
    struct dirent *e;
    while (found < 0 && (e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == dfd)
            continue;
        struct stat sb;
        int fl = fcntl((int)fd, F_GETFL);
        if (fstat((int)fd, &sb) == 0 && sb.st_dev == want.st_dev && sb.st_ino == want.st_ino &&
            fl >= 0 && (fl & O_ACCMODE) == O_RDWR)
            found = (int)fd;
    }
    closedir(d);
    return found;
}

/* Allocates the first `bytes` of path-shm: 0, or an SQLite error code. */
static int allocate_shm(const char *path, off_t bytes)
{
    char shm[4200];
    snprintf(shm, sizeof shm, "%s-shm", path);
    int fd = shm_fd(shm);
    if (fd < 0)
        return SQLITE_OK; /* opened read-only: SQLite will not extend it */
    if (fallocate(fd, 0, 0, bytes) == 0)
        return SQLITE_OK;
    int e = errno;
    if (e == ENOSPC || e == EDQUOT)
        return SQLITE_FULL;
    /* a filesystem without fallocate: SQLite's own extension stands */
    return e == EOPNOTSUPP || e == ENOSYS ? SQLITE_OK : SQLITE_IOERR_SHMSIZE;
}

static int guard_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
    guard_file *g = extra(f);
    if (!g->path || region < g->prepared)
        return base_methods->xShmMap(f, region, size, extend, pp);
    /* open (and, for the first connection, reset) DB-shm; map the region
     * only if it exists already */
    int rc = base_methods->xShmMap(f, region, size, 0, pp);
    if (rc != SQLITE_OK && rc != SQLITE_READONLY)
        return rc;
    int arc = allocate_shm(g->path, (off_t)(region + 1) * size);
    if (arc != SQLITE_OK) {
        sqlite3_log(arc, "cannot allocate %s-shm for region %d: %s", g->path, region,
                    arc == SQLITE_FULL ? "no space left on the device" : "fallocate failed");
        return arc;
    }
    g->prepared = region + 1;
    if (*pp || !extend)
        return rc;
    return base_methods->xShmMap(f, region, size, extend, pp);
}

static int guard_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                      int *out_flags)
{
    (void)vfs;
    guard_file *g = extra(f);
    g->path = NULL;
    g->prepared = 0;
    int rc = base_vfs->xOpen(base_vfs, name, f, flags, out_flags);
    if (rc != SQLITE_OK || !f->pMethods)
        return rc;
    pthread_mutex_lock(&guard_mu);
    if (!base_methods && f->pMethods->iVersion >= 2 && f->pMethods->xShmMap) {
        base_methods = f->pMethods;
        guard_methods = *base_methods;
        guard_methods.xShmMap = guard_shm_map;
    }
    int ours = f->pMethods == base_methods;
    pthread_mutex_unlock(&guard_mu);
    if (ours && (flags & SQLITE_OPEN_MAIN_DB) && name) {
        g->path = name;
        f->pMethods = &guard_methods;
    }
    return rc;
}

static void guard_register(void)
{
    base_vfs = sqlite3_vfs_find(NULL);
    if (!base_vfs || base_vfs->iVersion < 1)
        return;
    guard_vfs = *base_vfs;
    guard_vfs.zName = "fapiao-shmguard";
    guard_vfs.szOsFile = base_vfs->szOsFile + (int)sizeof(guard_file);
    guard_vfs.xOpen = guard_open;
    guard_vfs.pAppData = NULL;
    sqlite3_vfs_register(&guard_vfs, 1);
}

void fp_store_shm_guard(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, guard_register);
}
