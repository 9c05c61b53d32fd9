/* failstop_check.c — the check of the store from the disk (store.h
 * "fail-stop", docs/storage.md): quick_check or integrity_check after the
 * cached pages were dropped, and what a marker of an earlier fail-stop
 * says was acknowledged; at start-up, on a thread of its own while the
 * store serves, or offline (fapiao check).  The state it reports into:
 * failstop.c. */
#include "failstop.h"

#include "fapiao/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* fsync, then drop the file's pages from the page cache, so the reads
 * that follow come from the disk.  0, 1 when the file does not exist, or
 * -1 with why.  live >= 0: an fd the store keeps open on it.  Inside a
 * process whose SQLite connections have the database open, never open and
 * close another fd on it: close() drops every POSIX lock the process holds
 * on the file, SQLite's among them (another process could then checkpoint
 * and delete the WAL under the server). */
static int drop_cache(const char *path, int live, char *why, size_t cap)
{
    int fd = live >= 0 ? live : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(why, cap, "open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    /* an fd open since before a writeback error reports it once: the
     * second fsync says whether the disk takes writes now */
    if (fsync(fd) != 0 && fsync(fd) != 0) {
        snprintf(why, cap, "fsync %s: %s (the disk is still failing)", path, strerror(errno));
        rc = -1;
    } else {
        int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        if (e != 0) {
            snprintf(why, cap, "posix_fadvise(DONTNEED) %s: %s", path, strerror(e));
            rc = -1;
        }
    }
    if (fd != live)
        close(fd);
    return rc;
}

static int count_of(sqlite3 *db, const char *sql, const char *arg, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *n = sqlite3_column_int64(st, 0);
            rc = 0;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static void add_problem(fp_store_check_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_problem(fp_store_check_report *rep, const char *fmt, ...)
{
    size_t used = strlen(rep->problems);
    if (used + 4 >= sizeof rep->problems)
        return;
    if (used)
        used += (size_t)snprintf(rep->problems + used, sizeof rep->problems - used, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->problems + used, sizeof rep->problems - used, fmt, ap);
    va_end(ap);
    rep->ok = 0;
}

static int check_disk(fp_failstop *live, fp_failstop *bg, const char *db_path,
                      const fp_failstop_expect *ex, int full, fp_store_check_report *rep);

int fp_failstop_check_disk(const char *db_path, const fp_failstop_expect *ex, int full,
                           fp_store_check_report *rep)
{
    return check_disk(NULL, NULL, db_path, ex, full, rep);
}

int fp_failstop_check_live(fp_failstop *fs, const fp_failstop_expect *ex, int full,
                           fp_store_check_report *rep)
{
    return check_disk(fs, NULL, fs->db_path, ex, full, rep);
}

/* live: the state of a store open in this process (its fds are used);
 * bg: the background check's state, so that a close can interrupt it */
static int check_disk(fp_failstop *live, fp_failstop *bg, const char *db_path,
                      const fp_failstop_expect *ex, int full, fp_store_check_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->ok = 1;
    rep->full = full;
    int64_t t0 = fp_mono_ms();
    char why[PATH_MAX + 96], wal[PATH_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    why[0] = 0;
    if ((!live || live->db_fd >= 0) &&
        drop_cache(db_path, live ? live->db_fd : -1, why, sizeof why) != 0) {
        add_problem(rep, "%s", why[0] ? why : "the database file is missing");
        goto out;
    }
    if ((!live || live->wal_fd >= 0) &&
        drop_cache(wal, live ? live->wal_fd : -1, why, sizeof why) < 0) {
        add_problem(rep, "%s", why);
        goto out;
    }
    rep->from_disk = 1;
    /* plain VFS, nothing written: query_only, and no checkpoint at close
     * (the WAL may hold the only good copy of the last commits) */
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, "unix") !=
        SQLITE_OK) {
        add_problem(rep, "open: %s", db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_exec(db, "PRAGMA query_only=1", NULL, NULL, NULL);
    if (bg) {
        pthread_mutex_lock(&bg->mu);
        int stop = bg->bg_stop;
        if (!stop)
            bg->bg_db = db;
        pthread_mutex_unlock(&bg->mu);
        if (stop) {
            sqlite3_close(db);
            rep->ok = 1;
            goto out;
        }
    }
    sqlite3_stmt *st = NULL;
    const char *pragma = full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)";
    if (sqlite3_prepare_v2(db, pragma, -1, &st, NULL) != SQLITE_OK) {
        add_problem(rep, "%s: %s", pragma + 7, sqlite3_errmsg(db));
    } else {
        int step, rows = 0, bad = 0;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            if (rows++ == 0 && t && !strcmp(t, "ok"))
                continue;
            if (!bad++)
                snprintf(rep->integrity, sizeof rep->integrity, "%s", t ? t : "?");
        }
        if (step != SQLITE_DONE && !bad) {
            snprintf(rep->integrity, sizeof rep->integrity, "%s", sqlite3_errmsg(db));
            bad = 1;
        }
        if (bad)
            add_problem(rep, "%s: %s", full ? "integrity_check" : "quick_check", rep->integrity);
        else
            snprintf(rep->integrity, sizeof rep->integrity, "ok");
    }
    sqlite3_finalize(st);
    /* what was acknowledged must be there, and its number must never be
     * handed out again */
    for (int i = 0; ex && i < ex->nacked; i++) {
        int64_t n = 0, r = 0;
        rep->acked_checked++;
        if (count_of(db, "SELECT count(*) FROM invoices WHERE number=?1", ex->acked[i], &n) < 0 ||
            n != 1) {
            rep->acked_missing++;
            add_problem(rep, "acknowledged invoice %s is missing", ex->acked[i]);
            continue;
        }
        if (count_of(db,
                     "SELECT count(*) FROM number_ranges WHERE prefix=substr(?1, 1, 5) AND "
                     "first <= CAST(substr(?1, 6) AS INTEGER) AND last >= CAST(substr(?1, 6) AS "
                     "INTEGER) AND next > CAST(substr(?1, 6) AS INTEGER)",
                     ex->acked[i], &r) < 0 ||
            r != 1) {
            rep->acked_missing++;
            add_problem(rep, "the number range of %s would issue it again", ex->acked[i]);
        }
    }
    if (ex && ex->audit_id > 0) {
        sqlite3_stmt *a = NULL;
        int found = 0;
        if (sqlite3_prepare_v2(db, "SELECT hash FROM audit WHERE id=?1", -1, &a, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_int64(a, 1, ex->audit_id);
            if (sqlite3_step(a) == SQLITE_ROW && sqlite3_column_bytes(a, 0) == FP_AUDIT_HASH_LEN)
                found = memcmp(sqlite3_column_blob(a, 0), ex->audit_hash, FP_AUDIT_HASH_LEN) == 0
                            ? 1
                            : -1;
        }
        sqlite3_finalize(a);
        rep->audit_checked = 1;
        if (found != 1)
            add_problem(rep, "audit record %lld (the acknowledged head) is %s",
                        (long long)ex->audit_id, found < 0 ? "altered" : "missing");
    }
    if (bg) {
        pthread_mutex_lock(&bg->mu);
        bg->bg_db = NULL;
        if (bg->bg_stop) /* interrupted by a close: not a finding */
            rep->ok = 1;
        pthread_mutex_unlock(&bg->mu);
    }
    sqlite3_close(db);
out:
    rep->elapsed_ms = fp_mono_ms() - t0;
    return rep->ok ? 0 : FP_EIO;
}

int fp_failstop_needs_sync_check(const char *db_path)
{
    char p[PATH_MAX + 16];
    struct stat st;
    snprintf(p, sizeof p, "%s-failstop", db_path);
    if (access(p, F_OK) == 0)
        return 1;
    snprintf(p, sizeof p, "%s-wal", db_path);
    return stat(p, &st) == 0 && st.st_size > 32; /* a clean stop truncates it */
}

static void *bg_main(void *arg)
{
    fp_failstop *fs = arg;
    fp_store_check_report rep;
    check_disk(fs, fs, fs->db_path, NULL, 0, &rep);
    if (!rep.ok)
        fp_failstop_trip(fs, FP_FAILSTOP_CORRUPT, 0,
                         "start-up quick_check from the disk failed: %.200s; the store is "
                         "read-only: restore it from a backup",
                         rep.problems);
    else
        fprintf(stderr,
                "{\"event\":\"store_check\",\"check\":\"quick_check\",\"result\":\"%s\","
                "\"elapsed_ms\":%lld}\n",
                rep.integrity[0] ? rep.integrity : "interrupted", (long long)rep.elapsed_ms);
    return NULL;
}

void fp_failstop_background_check(fp_failstop *fs)
{
    if (pthread_create(&fs->bg, NULL, bg_main, fs) == 0)
        fs->bg_started = 1;
}

void fp_failstop_background_stop(fp_failstop *fs)
{
    if (!fs || !fs->bg_started)
        return;
    pthread_mutex_lock(&fs->mu);
    fs->bg_stop = 1;
    if (fs->bg_db)
        sqlite3_interrupt(fs->bg_db);
    pthread_mutex_unlock(&fs->mu);
    pthread_join(fs->bg, NULL);
    fs->bg_started = 0;
}

int fp_failstop_check_marked(const char *db_path, int full, fp_store_check_report *rep)
{
    fp_failstop_expect ex;
    int marked = fp_failstop_marker_read(db_path, &ex, NULL, 0);
    int rc = fp_failstop_check_disk(db_path, marked > 0 ? &ex : NULL, full, rep);
    rep->after_failstop = marked != 0;
    if (marked < 0) {
        add_problem(rep,
                    "the fail-stop marker %s-failstop is unreadable: what was acknowledged "
                    "cannot be verified",
                    db_path);
        rc = FP_EIO;
    }
    return rc;
}

int fp_failstop_startup(fp_failstop *fs, int quick, fp_store_check_report *rep)
{
    fp_failstop_expect ex;
    char prior[320] = "";
    int marked = fp_failstop_marker_read(fs->db_path, &ex, prior, sizeof prior);
    memset(rep, 0, sizeof *rep);
    rep->ok = 1;
    if (!quick) {
        if (marked) /* a CLI command: the check is fapiao check's or the server start's */
            fp_failstop_trip(fs, FP_FAILSTOP_CHECK, 0,
                             "an earlier fail-stop is not cleared (%s): run fapiao check "
                             "--data-dir DIR, then restart the server",
                             prior[0] ? prior : "no reason recorded");
        return marked ? FP_EIO : 0;
    }
    fp_failstop_check_marked(fs->db_path, 0, rep);
    if (!rep->ok) {
        fp_failstop_trip(fs, marked ? FP_FAILSTOP_CHECK : FP_FAILSTOP_CORRUPT, 0,
                         "start-up check from the disk failed: %.200s; the store stays "
                         "read-only: restore it from a backup%s%.80s%s",
                         rep->problems, marked ? " (earlier fail-stop: " : "", marked ? prior : "",
                         marked ? ")" : "");
        return FP_EIO;
    }
    if (marked) {
        fp_failstop_marker_clear(fs->db_path);
        flockfile(stderr);
        fprintf(stderr, "{\"level\":\"warning\",\"event\":\"store_failstop_cleared\",\"earlier\":");
        fp_failstop_json_str(stderr, prior);
        fprintf(stderr,
                ",\"reason\":\"start-up check from the disk passed: quick_check %s, %d "
                "acknowledged invoices and the audit head present (%lld ms); writes resume\"}\n",
                rep->integrity, rep->acked_checked, (long long)rep->elapsed_ms);
        funlockfile(stderr);
    }
    return 0;
}
