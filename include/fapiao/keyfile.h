/* keyfile.h — the permission rule for files that hold secrets (the TLS
 * private key, its passphrase file, token.key, audit.key), PostgreSQL's
 * rule for its server key:
 *
 *   - owned by the user the server runs as: no group or other bits
 *     (0600 or 0400);
 *   - owned by root: no group write, nothing for others (0640, 0600, ...),
 *     so that Debian's /etc/ssl/private layout (root:ssl-cert 0640, the
 *     service user in group ssl-cert) works;
 *   - owned by anybody else: refused.
 *
 * A server running as root is in the second case for its own files.  The
 * check is on the open file (fstat), so what is checked is what is read.
 * Messages name the file, its mode and the fix (chmod/chown); see
 * docs/tls.md "Key file permissions". */
#ifndef FAPIAO_KEYFILE_H
#define FAPIAO_KEYFILE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fapiao/err.h"

/* 0 when a file with st may hold a secret read by a process of effective
 * uid euid; FP_EINVAL with the reason and the fix otherwise.  what_zh /
 * what_en name the file ("私钥" / "private key"). */
int fp_keyfile_check_stat(const struct stat *st, uid_t euid, const char *path, const char *what_zh,
                          const char *what_en, fp_err *err);

/* Reads a whole secret file of 1..max bytes after checking it with
 * fp_keyfile_check_stat for geteuid(); *data is malloc'd and
 * NUL-terminated (the NUL is not counted in *len); free it with
 * fp_keyfile_wipe.  FP_EIO (cannot open/read), FP_EINVAL (permissions,
 * empty, too large, not a regular file), FP_ENOMEM. */
int fp_keyfile_read(const char *path, const char *what_zh, const char *what_en, size_t max,
                    unsigned char **data, size_t *len, fp_err *err);

/* Checks an existing file by path (stat) without reading it: 0, or
 * FP_ENOTFOUND when it does not exist, or as fp_keyfile_check_stat. */
int fp_keyfile_check_path(const char *path, const char *what_zh, const char *what_en, fp_err *err);

/* Overwrites and frees what fp_keyfile_read returned (NULL: no-op). */
void fp_keyfile_wipe(unsigned char *data, size_t len);

#endif
