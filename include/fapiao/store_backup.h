/* store_backup.h — what backups need from the SQLite store (src/store/sqlite/
 * backup.c; docs/recovery.md): an online copy of a database file in one read
 * transaction, the figures a manifest records, the integrity check, and the
 * change log that continuous archiving ships.
 *
 * The change log: while a store is open with the log started, every
 * committed transaction's changes are kept as an SQLite changeset (the
 * session extension) stamped with the commit's wall time; the archiver
 * drains them every interval.  The log starts at an exact snapshot (the base
 * copy, taken while the writer is idle), so base + changesets in order is
 * the database.  A write the log cannot vouch for (a write by another
 * process) marks it broken: the archiver then starts a new base. */
#ifndef FAPIAO_STORE_BACKUP_H
#define FAPIAO_STORE_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/store.h"

typedef struct fp_backup_stats {
    int schema;                               /* PRAGMA user_version */
    int64_t invoices, audit, ranges, sellers; /* rows */
    int64_t audit_head_id;                    /* the last audit record (0: none) */
    char audit_head_hash[65];                 /* its hash, hex ("" when none) */
    int64_t last_issued_at;                   /* MAX(issued_at) of invoices */
} fp_backup_stats;

/* Copies the database at src (a server may be writing it) into the new file
 * dst: one sqlite3_backup step inside one read transaction, so a write
 * cannot restart it.  *wal_bytes (may be NULL): the -wal's size when the
 * copy ended (what the read transaction kept from being checkpointed). */
int fp_store_backup_copy(const char *src, const char *dst, int64_t *wal_bytes, fp_err *err);
/* The manifest's figures of the database at path (opened read-only). */
int fp_store_backup_stats(const char *path, fp_backup_stats *st, fp_err *err);
/* PRAGMA integrity_check: 0 when "ok"; FP_EINVAL with its first line in
 * detail otherwise; FP_EIO when the file cannot be read. */
int fp_store_backup_integrity(const char *path, char *detail, size_t cap, fp_err *err);

/* Applies changesets to a database being restored. */
typedef struct fp_store_replay fp_store_replay;
int fp_store_replay_open(const char *path, fp_store_replay **out, fp_err *err);
/* Applies one changeset; any conflict (the row is not as the log says) is
 * an error: the log and the base do not belong together. */
int fp_store_replay_apply(fp_store_replay *r, const void *cs, size_t n, fp_err *err);
/* Commits (commit 1) or drops what was applied, and closes. */
int fp_store_replay_close(fp_store_replay *r, int commit, fp_err *err);

/* The number ranges' high-water marks (range_mark.c): the highest `next`
 * each range reached anywhere the archive can tell, so that a restore moves
 * every restored range past the numbers given out after its point. */
typedef struct fp_range_mark {
    int64_t range_id, next;
} fp_range_mark;
typedef struct fp_store_marks fp_store_marks;
int fp_store_marks_new(fp_store_marks **out, fp_err *err);
void fp_store_marks_free(fp_store_marks *m);
/* keeps the larger of next and what range_id had */
int fp_store_marks_note(fp_store_marks *m, int64_t range_id, int64_t next);
int fp_store_marks_count(const fp_store_marks *m);
const fp_range_mark *fp_store_marks_at(const fp_store_marks *m, int i);
/* every number_ranges row a changeset inserts or updates */
int fp_store_marks_changeset(fp_store_marks *m, const void *cs, size_t n, fp_err *err);
/* every range of the database file at path */
int fp_store_marks_db(fp_store_marks *m, const char *path, fp_err *err);
/* what a restore moved: range_id's next from `from` to `to` */
typedef struct fp_range_moved {
    int64_t range_id, from, to;
    char prefix[8];
} fp_range_moved;
typedef void (*fp_range_moved_fn)(const fp_range_moved *mv, void *arg);
/* In the replay's transaction: moves each restored range's next forward to
 * its mark (never back, never past last + 1); fn gets each move. */
int fp_store_replay_advance(fp_store_replay *r, const fp_store_marks *m, fp_range_moved_fn fn,
                            void *arg, fp_err *err);

/* fn gets each logged transaction in commit order: its wall time (unix ms)
 * and changeset. */
typedef int (*fp_store_log_fn)(int64_t commit_ms, const void *cs, size_t n, void *arg);
/* Starts (or restarts) the change log of an open writing store and copies
 * the database as of the log's start into base_db. */
int fp_store_log_start(fp_store *st, const char *base_db, int64_t *wal_bytes, fp_err *err);
/* Hands the transactions logged so far to fn (outside the writer's lock).
 * 1 when the log is broken (start a new base), 0, or fn's error. */
int fp_store_log_drain(fp_store *st, fp_store_log_fn fn, void *arg);
void fp_store_log_stop(fp_store *st);

/* Number reservations (docs/recovery.md): with fn set, the writer calls it
 * (in the issuing transaction, under the writer's lock) before a range's
 * next reaches what fn last reserved for it; fn makes a reservation past
 * next durable in the archive and sets *upto (numbers below it may be
 * given out).  A failure fails the batch: no number goes out that a
 * restore could hand out again.  fn NULL: none (it is then no longer
 * called once this returns). */
typedef int (*fp_store_reserve_fn)(int64_t range_id, int64_t next, int64_t *upto, void *arg);
void fp_store_set_reserve(fp_store *st, fp_store_reserve_fn fn, void *arg);

#endif
