/* keyfile.c — PostgreSQL's permission rule for secret files, checked on
 * the open file.  See include/fapiao/keyfile.h and docs/tls.md. */
#include "fapiao/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fp_keyfile_check_stat(const struct stat *st, uid_t euid, const char *path, const char *what_zh,
                          const char *what_en, fp_err *err)
{
    unsigned mode = (unsigned)st->st_mode & 07777;
    if (!S_ISREG(st->st_mode))
        return fp_fail(err, FP_EINVAL, "%s不是普通文件 / the %s %s is not a regular file", what_zh,
                       what_en, path);
    if (st->st_uid != euid && st->st_uid != 0)
        return fp_fail(err, FP_EINVAL,
                       "%s属主不对 / the %s %s is owned by uid %u, neither the service user "
                       "(uid %u) nor root; fix: chown %u %s",
                       what_zh, what_en, path, (unsigned)st->st_uid, (unsigned)euid, (unsigned)euid,
                       path);
    /* root's files may be read by their group (root:ssl-cert 0640) */
    int root_owned = st->st_uid == 0;
    if ((mode & (root_owned ? 0037u : 0077u)) == 0)
        return 0;
    return fp_fail(err, FP_EINVAL, "%s权限过宽 / the %s has mode %04o, %s; fix: chmod %s %s",
                   what_zh, what_en, mode,
                   root_owned ? "readable by others or writable by its group"
                              : "readable by group or others",
                   root_owned ? "640" : "600", path);
}

int fp_keyfile_read(const char *path, const char *what_zh, const char *what_en, size_t max,
                    unsigned char **data, size_t *len, fp_err *err)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fp_fail(err, FP_EIO, "无法读取%s / cannot read the %s %s: %s", what_zh, what_en,
                       path, strerror(errno));
    struct stat st;
    int rc;
    if (fstat(fd, &st) < 0) {
        rc = fp_fail(err, FP_EIO, "无法读取%s / cannot read the %s %s: %s", what_zh, what_en, path,
                     strerror(errno));
        goto out;
    }
    if ((rc = fp_keyfile_check_stat(&st, geteuid(), path, what_zh, what_en, err)) < 0)
        goto out;
    if (st.st_size <= 0 || (size_t)st.st_size > max) {
        rc = fp_fail(err, FP_EINVAL, "%s为空或过大 / the %s %s is empty or larger than %zu bytes",
                     what_zh, what_en, path, max);
        goto out;
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got != n) {
        fp_keyfile_wipe(buf, n);
        rc = fp_fail(err, FP_EIO, "无法读取%s / cannot read the %s %s: short read", what_zh,
                     what_en, path);
        goto out;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    rc = 0;
out:
    close(fd);
    return rc;
}

int fp_keyfile_check_path(const char *path, const char *what_zh, const char *what_en, fp_err *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return FP_ENOTFOUND;
        return fp_fail(err, FP_EIO, "无法读取%s / cannot read the %s %s: %s", what_zh, what_en,
                       path, strerror(errno));
    }
    return fp_keyfile_check_stat(&st, geteuid(), path, what_zh, what_en, err);
}

void fp_keyfile_wipe(unsigned char *data, size_t len)
{
    if (!data)
        return;
    explicit_bzero(data, len);
    free(data);
}
