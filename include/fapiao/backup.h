/* backup.h — backups of a data directory and continuous archiving
 * (src/backup/; docs/recovery.md).
 *
 * A backup set is a directory of full backups, full-<UTC time>/, each with
 * its manifest.json (time, schema, counts, the audit chain's head, every
 * file's SHA-256), manifest.sha256, the gzip-compressed database and the
 * public files (audit.pub, tls/server.crt, taxcodes.csv).  A full made by
 * `serve --archive` also has log/: segments of the change log
 * (store_backup.h), numbered, each naming the one before it by hash, and
 * log/SHA256SUMS.  The private keys are never in a backup set: they go to a
 * separate file (fp_backup_keys_export) that restore takes with --keys. */
#ifndef FAPIAO_BACKUP_H
#define FAPIAO_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/store.h"

/* one line of output from a long operation (list, verify, restore) */
typedef void (*fp_backup_say)(const char *zh, const char *en, void *arg);

typedef struct fp_backup_result {
    char id[64];        /* full-... */
    int64_t created_ms; /* the snapshot's time */
    int64_t invoices, audit, ranges, sellers;
    int64_t db_bytes, gz_bytes, wal_bytes; /* wal_bytes: the -wal when the copy ended */
    int64_t log_records, log_segments, log_end_ms;
    char bad_file[256]; /* the file a failure is about ("" none) */
} fp_backup_result;

/* A full backup of data directory dir into set/full-<time>/ (made in a
 * .tmp directory, fsynced, renamed).  keep_full > 0: then deletes all but
 * the newest keep_full fulls. */
int fp_backup_create(const char *dir, const char *set, int keep_full, fp_backup_result *res,
                     fp_err *err);
/* The fulls of set, oldest first. */
int fp_backup_list(const char *set, fp_backup_say say, void *arg, fp_err *err);
/* Checks one full (id NULL: every full) by restoring it into a temporary
 * directory: checksums, the log's order, integrity_check, the audit
 * verification, the manifest's counts.  0 ok; FP_ECORRUPT naming the file
 * in res->bad_file and err.  Records the outcome in set/.last-verify. */
int fp_backup_verify(const char *set, const char *id, fp_backup_result *res, fp_backup_say say,
                     void *arg, fp_err *err);
/* Builds the new data directory to from set: the newest state (to_ms 0)
 * or the state as of to_ms (unix ms: every transaction committed at or
 * before it).  keys: a file from fp_backup_keys_export, or NULL; missing
 * keys are named through say.  Built in to.tmp, fsynced, renamed. */
int fp_backup_restore(const char *set, const char *to, int64_t to_ms, const char *keys,
                      fp_backup_result *res, fp_backup_say say, void *arg, fp_err *err);
/* Deletes all but the newest keep fulls (and fulls older than
 * older_than_ms when > 0, never the newest). */
int fp_backup_prune(const char *set, int keep, int64_t older_than_ms, int *deleted, fp_err *err);

/* Writes dir's private keys (token.key, audit.key, webhook.key,
 * tls/server.key) into the new file out, mode 0600. */
int fp_backup_keys_export(const char *dir, const char *out, int *count, fp_err *err);

/* Continuous archiving while serving. */
typedef struct fp_archiver fp_archiver;
typedef struct fp_archive_opts {
    const char *dir;      /* the backup set */
    const char *data_dir; /* the public files' source */
    int interval_s;       /* at least every interval_s (default 10) */
    const char *command;  /* run per new file with %p (path) and %f (name), or NULL */
    int command_retries;  /* attempts per file per round (default 3) */
} fp_archive_opts;
typedef struct fp_archive_stats {
    int64_t last_ok_ms;       /* when everything committed until then was fsynced */
    int64_t lag_s;            /* now - last_ok_ms */
    int64_t last_full_ms;     /* the newest full in the set */
    int64_t command_failures; /* archive-command attempts that failed */
    int64_t command_pending;  /* files the command has yet to take */
    int64_t records, segments, bases;
    int last_verify; /* 1 ok, 0 failed, -1 never */
    int64_t last_verify_ms;
} fp_archive_stats;
int fp_archiver_start(fp_store *st, const fp_archive_opts *o, fp_archiver **out, fp_err *err);
void fp_archiver_stats(fp_archiver *a, fp_archive_stats *out);
/* The last round's figures, then a final round, then stops. */
void fp_archiver_stop(fp_archiver *a);

#endif
