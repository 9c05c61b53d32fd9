/* internal.h — what src/backup/'s files share (not a public header). */
#ifndef FAPIAO_BACKUP_INTERNAL_H
#define FAPIAO_BACKUP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fapiao/backup.h"

#define BK_DB "fapiao.db"
/* the public files a full carries besides the database: their path in the
 * data directory (the backup's file is the same path, / as _, + .gz) */
extern const char *const bk_public_files[];
/* the private keys: never in a full */
extern const char *const bk_private_files[];

int bk_mkdirs(const char *path, int mode);
int bk_fsync_path(const char *path);
int bk_rm_rf(const char *path);
/* gzip src into dst (fsynced); sha256 (hex) of dst; bytes of dst */
int bk_gzip(const char *src, const char *dst, char sha[65], int64_t *bytes, fp_err *err);
int bk_gunzip(const char *src, const char *dst, fp_err *err);
/* sha256 of a file, hex */
int bk_sha256_file(const char *path, char sha[65], fp_err *err);
int bk_write_file(const char *path, const void *data, size_t n, int mode, fp_err *err);
char *bk_read_file(const char *path, size_t max, size_t *n);
/* a full's name from a time */
void bk_full_name(int64_t ms, char *out, size_t cap);
/* builds a full in set from the snapshot file db (moved into the full);
 * data_dir for the public files */
int bk_make_full(const char *set, const char *data_dir, const char *db, int64_t ms,
                 int64_t wal_bytes, const char *source, fp_backup_result *res, char *full_path,
                 size_t cap, fp_err *err);

/* number reservations (reserve.c): bk_reserve_fn is the store's
 * fp_store_reserve_fn; bk_reserve_marks notes SET/.reserved in m */
typedef struct bk_reserve bk_reserve;
struct fp_store_marks;
int bk_reserve_open(const char *set, int interval_s, bk_reserve **out, fp_err *err);
void bk_reserve_free(bk_reserve *r);
int bk_reserve_fn(int64_t range_id, int64_t next, int64_t *upto, void *arg);
int bk_reserve_marks(const char *set, struct fp_store_marks *m, fp_backup_result *res, fp_err *err);

int bk_list_fulls(const char *set, char ***out, int *n);
void bk_free_names(char **v, int n);

#endif
