/* files.c — the file work of backups: gzip, SHA-256, fsync, directories,
 * and a full backup's directory with its manifest (docs/recovery.md). */
/* paths are bounded by PATH_MAX: a cut one fails to open, never aliases */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "fapiao/crypto.h"
#include "fapiao/store_backup.h"
#include "internal.h"

const char *const bk_public_files[] = {"audit.pub", "tls/server.crt", "taxcodes.csv", NULL};
const char *const bk_private_files[] = {"token.key", "audit.key", "webhook.key", "tls/server.key",
                                        NULL};

int bk_mkdirs(const char *path, int mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
                return -1;
            *s = '/';
        }
    return mkdir(p, (mode_t)mode) < 0 && errno != EEXIST ? -1 : 0;
}

int bk_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int bk_rm_rf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rc |= bk_rm_rf(sub);
    }
    closedir(d);
    return rmdir(path) | rc;
}

int bk_sha256_file(const char *path, char sha[65], fp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fp_fail(err, FP_ENOTFOUND, "%s: %s", path, strerror(errno));
    struct sha256_ctx c;
    sha256_init(&c);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&c, n, buf);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return fp_fail(err, FP_EIO, "%s: read error", path);
    unsigned char d[32];
    sha256_digest(&c, 32, d);
    fp_hex(d, 32, sha);
    return 0;
}

int bk_gzip(const char *src, const char *dst, char sha[65], int64_t *bytes, fp_err *err)
{
    FILE *in = fopen(src, "rb");
    if (!in)
        return fp_fail(err, FP_EIO, "%s: %s", src, strerror(errno));
    gzFile out = gzopen(dst, "wb1"); /* level 1: the copy's time matters more than its size */
    if (!out) {
        fclose(in);
        return fp_fail(err, FP_EIO, "%s: cannot create", dst);
    }
    unsigned char buf[1 << 16];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (gzwrite(out, buf, (unsigned)n) != (int)n)
            rc = fp_fail(err, FP_EIO, "%s: write error", dst);
    if (ferror(in) && rc == 0)
        rc = fp_fail(err, FP_EIO, "%s: read error", src);
    fclose(in);
    if (gzclose(out) != Z_OK && rc == 0)
        rc = fp_fail(err, FP_EIO, "%s: write error", dst);
    if (rc == 0 && bk_fsync_path(dst) < 0)
        rc = fp_fail(err, FP_EIO, "%s: fsync: %s", dst, strerror(errno));
    if (rc == 0 && sha)
        rc = bk_sha256_file(dst, sha, err);
    if (rc == 0 && bytes) {
        struct stat sb;
        *bytes = stat(dst, &sb) == 0 ? (int64_t)sb.st_size : 0;
    }
    return rc;
}

int bk_gunzip(const char *src, const char *dst, fp_err *err)
{
    gzFile in = gzopen(src, "rb");
    if (!in)
        return fp_fail(err, FP_EIO, "%s: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        gzclose(in);
        return fp_fail(err, FP_EIO, "%s: %s", dst, strerror(errno));
    }
    unsigned char buf[1 << 16];
    int n, rc = 0;
    while ((n = gzread(in, buf, sizeof buf)) > 0)
        if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
            rc = fp_fail(err, FP_EIO, "%s: write error", dst);
            break;
        }
    if (n < 0 && rc == 0)
        rc = fp_fail(err, FP_ECORRUPT, "%s: not a whole gzip file", src);
    gzclose(in);
    if ((fflush(out) != 0 || fsync(fileno(out)) != 0) && rc == 0)
        rc = fp_fail(err, FP_EIO, "%s: %s", dst, strerror(errno));
    fclose(out);
    return rc;
}

int bk_write_file(const char *path, const void *data, size_t n, int mode, fp_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return fp_fail(err, FP_EIO, "%s: %s", path, strerror(errno));
    int rc = write(fd, data, n) == (ssize_t)n && fsync(fd) == 0 ? 0 : -1;
    fchmod(fd, (mode_t)mode);
    close(fd);
    return rc < 0 ? fp_fail(err, FP_EIO, "%s: %s", path, strerror(errno)) : 0;
}

char *bk_read_file(const char *path, size_t max, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(max + 1);
    size_t got = buf ? fread(buf, 1, max, f) : 0;
    int more = buf && fgetc(f) != EOF;
    fclose(f);
    if (!buf || more) {
        free(buf);
        return NULL;
    }
    buf[got] = 0;
    if (n)
        *n = got;
    return buf;
}

void bk_full_name(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y%m%dT%H%M%S", &tm);
    snprintf(out, cap, "full-%s.%03dZ", ts, (int)(ms % 1000));
}

/* "tls/server.crt" -> "tls_server.crt.gz" */
static void gz_name(const char *rel, char *out, size_t cap)
{
    snprintf(out, cap, "%s.gz", rel);
    for (char *p = out; *p; p++)
        if (*p == '/')
            *p = '_';
}

int bk_make_full(const char *set, const char *data_dir, const char *db, int64_t ms,
                 int64_t wal_bytes, const char *source, fp_backup_result *res, char *full_path,
                 size_t cap, fp_err *err)
{
    char name[64], tmp[PATH_MAX], fin[PATH_MAX], p[PATH_MAX], sha[65];
    bk_full_name(ms, name, sizeof name);
    snprintf(fin, sizeof fin, "%s/%s", set, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", set, name);
    if (bk_mkdirs(set, 0700) < 0)
        return fp_fail(err, FP_EIO, "%s: %s", set, strerror(errno));
    bk_rm_rf(tmp);
    if (mkdir(tmp, 0700) < 0)
        return fp_fail(err, FP_EIO, "%s: %s", tmp, strerror(errno));
    fp_backup_stats bs;
    int rc = fp_store_backup_stats(db, &bs, err);
    if (rc < 0)
        goto fail;
    /* manifest: built as the files are written */
    size_t mcap = 8192, mn = 0;
    char *m = malloc(mcap);
    if (!m) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    mn += (size_t)snprintf(
        m + mn, mcap - mn,
        "{\n  \"format\": 1,\n  \"id\": \"%s\",\n  \"source\": \"%s\",\n  \"created_ms\": %lld,\n"
        "  \"schema\": %d,\n  \"counts\": {\"invoices\": %lld, \"audit\": %lld, \"ranges\": %lld, "
        "\"sellers\": %lld},\n  \"audit_head\": {\"id\": %lld, \"hash\": \"%s\"},\n"
        "  \"last_issued_at\": %lld,\n  \"wal_pinned_bytes\": %lld,\n  \"files\": [\n",
        name, source, (long long)ms, bs.schema, (long long)bs.invoices, (long long)bs.audit,
        (long long)bs.ranges, (long long)bs.sellers, (long long)bs.audit_head_id,
        bs.audit_head_hash, (long long)bs.last_issued_at, (long long)wal_bytes);
    int64_t gzb = 0;
    snprintf(p, sizeof p, "%s/%s.gz", tmp, BK_DB);
    struct stat sb;
    int64_t dbb = stat(db, &sb) == 0 ? (int64_t)sb.st_size : 0;
    if ((rc = bk_gzip(db, p, sha, &gzb, err)) < 0) {
        free(m);
        goto fail;
    }
    mn += (size_t)snprintf(m + mn, mcap - mn,
                           "    {\"name\": \"%s.gz\", \"path\": \"%s\", \"sha256\": \"%s\", "
                           "\"bytes\": %lld}",
                           BK_DB, BK_DB, sha, (long long)gzb);
    for (int i = 0; bk_public_files[i]; i++) {
        char src[PATH_MAX], gz[128];
        snprintf(src, sizeof src, "%s/%s", data_dir, bk_public_files[i]);
        if (access(src, R_OK) != 0)
            continue;
        gz_name(bk_public_files[i], gz, sizeof gz);
        snprintf(p, sizeof p, "%s/%s", tmp, gz);
        int64_t b = 0;
        if ((rc = bk_gzip(src, p, sha, &b, err)) < 0) {
            free(m);
            goto fail;
        }
        mn += (size_t)snprintf(m + mn, mcap - mn,
                               ",\n    {\"name\": \"%s\", \"path\": \"%s\", \"sha256\": \"%s\", "
                               "\"bytes\": %lld}",
                               gz, bk_public_files[i], sha, (long long)b);
    }
    mn += (size_t)snprintf(m + mn, mcap - mn, "\n  ]\n}\n");
    snprintf(p, sizeof p, "%s/manifest.json", tmp);
    rc = bk_write_file(p, m, mn, 0600, err);
    free(m);
    if (rc < 0)
        goto fail;
    char line[128];
    if ((rc = bk_sha256_file(p, sha, err)) < 0)
        goto fail;
    int ln = snprintf(line, sizeof line, "%s  manifest.json\n", sha);
    snprintf(p, sizeof p, "%s/manifest.sha256", tmp);
    if ((rc = bk_write_file(p, line, (size_t)ln, 0600, err)) < 0)
        goto fail;
    bk_fsync_path(tmp);
    if (rename(tmp, fin) < 0) {
        rc = fp_fail(err, FP_EIO, "rename %s: %s", fin, strerror(errno));
        goto fail;
    }
    bk_fsync_path(set);
    if (res) {
        snprintf(res->id, sizeof res->id, "%s", name);
        res->created_ms = ms;
        res->invoices = bs.invoices, res->audit = bs.audit;
        res->ranges = bs.ranges, res->sellers = bs.sellers;
        res->db_bytes = dbb, res->gz_bytes = gzb, res->wal_bytes = wal_bytes;
    }
    if (full_path)
        snprintf(full_path, cap, "%s", fin);
    unlink(db);
    return 0;
fail:
    bk_rm_rf(tmp);
    unlink(db);
    return rc;
}
