/* failstop.h — the store's fail-stop state and its VFS shim (internal to
 * src/store; the public side is in include/fapiao/store.h). */
#ifndef FAPIAO_STORE_FAILSTOP_H
#define FAPIAO_STORE_FAILSTOP_H

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <stdint.h>

#include "fapiao/store.h"

typedef struct fp_failstop fp_failstop;

#define FP_FAILSTOP_ACKED_MAX 32
/* What must be on the disk: the last acknowledged invoice numbers and the
 * audit chain's head as of the last successful group commit. */
typedef struct fp_failstop_expect {
    char acked[FP_FAILSTOP_ACKED_MAX][FP_NUMBER_LEN + 1];
    int nacked;
    int64_t audit_id;
    unsigned char audit_hash[FP_AUDIT_HASH_LEN];
} fp_failstop_expect;

/* Registers a VFS (named fp_failstop_vfs_name) that every connection of the
 * store opens its files with. */
int fp_failstop_new(const char *db_path, fp_failstop **out, fp_err *err);
void fp_failstop_free(fp_failstop *fs);
const char *fp_failstop_vfs_name(fp_failstop *fs);
/* A store opened read-only: a fail-stop it finds is reported, but no
 * marker is written (the command changes no file of the data directory). */
void fp_failstop_read_only(fp_failstop *fs);

/* FP_FAILSTOP_* of an extended SQLite result code (NONE for SQLITE_FULL). */
int fp_failstop_classify(int ext_rc);
/* Stops writes (the first cause wins), logs at the highest severity and
 * writes the marker file <db>-failstop. */
void fp_failstop_trip(fp_failstop *fs, int cause, int sqlite_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The cause (FP_FAILSTOP_NONE: writes may go on) and the reason. */
int fp_failstop_get(fp_failstop *fs, char *why, size_t cap);
/* After a failed call on db: trips when its error code is an I/O error or
 * corruption and db is a store's connection. */
void fp_failstop_note_db(sqlite3 *db, const char *op);
/* After a successful group commit: what was acknowledged. */
void fp_failstop_acked(fp_failstop *fs, const char *const *numbers, int n, int64_t audit_id,
                       const unsigned char *audit_hash);
void fp_failstop_expected(fp_failstop *fs, fp_failstop_expect *ex);

/* Opens the database file and its WAL once more to compare them later
 * with their paths; fp_failstop_check_files trips FILE_GONE when either was
 * deleted, renamed or replaced. */
int fp_failstop_watch_files(fp_failstop *fs, fp_err *err);
int fp_failstop_check_files(fp_failstop *fs, fp_err *err);

/* The check from the disk: fsync and drop the cached pages of the
 * database and its WAL, then quick_check (integrity_check when full) on a
 * fresh connection, and the expected numbers and audit head (ex may be
 * NULL).  0 or FP_EIO; rep says what was found. */
int fp_failstop_check_disk(const char *db_path, const fp_failstop_expect *ex, int full,
                           fp_store_check_report *rep);
/* The same for the store of fs, open in this process (its own fds). */
int fp_failstop_check_live(fp_failstop *fs, const fp_failstop_expect *ex, int full,
                           fp_store_check_report *rep);
/* At open.  quick (the server): quick_check from the disk, with the
 * marker's numbers and audit head when a marker exists; a failure trips
 * the fail-stop (read-only store), a pass clears the marker.  Otherwise a
 * marker alone trips it (a CLI command does not clear it). */
int fp_failstop_startup(fp_failstop *fs, int quick, fp_store_check_report *rep);
/* 1 when the open must check before writing: a marker exists, or the WAL
 * holds frames (the last stop was not clean). */
int fp_failstop_needs_sync_check(const char *db_path);
/* The quick_check on a thread of its own (a failure trips CORRUPT);
 * background_stop interrupts and joins it (no-op when none runs). */
void fp_failstop_background_check(fp_failstop *fs);
void fp_failstop_background_stop(fp_failstop *fs);
/* check_disk with the marker's expectations (an unreadable marker fails). */
int fp_failstop_check_marked(const char *db_path, int full, fp_store_check_report *rep);

/* The marker: 1 read, 0 none, -1 unreadable. */
int fp_failstop_marker_read(const char *db_path, fp_failstop_expect *ex, char *reason, size_t cap);
int fp_failstop_marker_clear(const char *db_path);
const char *fp_failstop_cause_name(int cause);

/* ---- shared by failstop.c and failstop_check.c ---- */
#include <stdio.h>
/* s as a JSON string (quotes and escapes) to f. */
void fp_failstop_json_str(FILE *f, const char *s);
struct fp_failstop {
    sqlite3_vfs vfs; /* first: the connection's vfs pointer is the state */
    sqlite3_vfs *base;
    char name[48];
    int registered;
    _Atomic int cause;
    pthread_mutex_t mu;
    char reason[320];
    int sqlite_code;
    char db_path[PATH_MAX], wal_path[PATH_MAX + 8], marker_path[PATH_MAX + 16];
    int db_fd, wal_fd;
    struct stat db_st, wal_st;
    int marker_ok; /* the marker is on the disk (under mu) */
    int read_only; /* never write the marker */
    /* the start-up quick_check on its own thread (AUTO after a clean stop) */
    pthread_t bg;
    int bg_started, bg_stop; /* bg_stop and bg_db under mu */
    sqlite3 *bg_db;
    int64_t marker_retry_ms; /* the failing disk refused it: try again later */
    /* what was acknowledged last (written into the marker, checked later) */
    char acked[FP_FAILSTOP_ACKED_MAX][FP_NUMBER_LEN + 1];
    int nacked, acked_pos;
    int64_t audit_id;
    unsigned char audit_hash[FP_AUDIT_HASH_LEN];
};

#endif
