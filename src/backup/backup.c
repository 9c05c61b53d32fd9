/* backup.c — backup create, list, prune and the keys' export
 * (include/fapiao/backup.h, docs/recovery.md). */
/* paths are bounded by PATH_MAX: a cut one fails to open, never aliases */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fapiao/clock.h"
#include "fapiao/crypto.h"
#include "fapiao/store_backup.h"
#include "internal.h"

int fp_backup_create(const char *dir, const char *set, int keep_full, fp_backup_result *res,
                     fp_err *err)
{
    char db[PATH_MAX], snap[PATH_MAX];
    snprintf(db, sizeof db, "%s/%s", dir, BK_DB);
    if (access(db, R_OK) != 0)
        return fp_fail(err, FP_ENOTFOUND, "%s: %s", db, strerror(errno));
    if (bk_mkdirs(set, 0700) < 0)
        return fp_fail(err, FP_EIO, "%s: %s", set, strerror(errno));
    snprintf(snap, sizeof snap, "%s/.snapshot-%d.db", set, (int)getpid());
    int64_t wal = 0;
    int64_t ms = fp_wall_ms();
    int rc = fp_store_backup_copy(db, snap, &wal, err);
    if (rc < 0) {
        unlink(snap);
        return rc;
    }
    rc = bk_make_full(set, dir, snap, ms, wal, "create", res, NULL, 0, err);
    if (rc == 0 && keep_full > 0)
        rc = fp_backup_prune(set, keep_full, 0, NULL, err);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the fulls of set, sorted (names sort by time); free with free_names */
int bk_list_fulls(const char *set, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(set);
    if (!d)
        return -1;
    struct dirent *e;
    char **v = NULL;
    int cnt = 0, cap = 0;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "full-", 5)) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 16;
                char **nv = realloc(v, (size_t)cap * sizeof *v);
                if (!nv)
                    break;
                v = nv;
            }
            v[cnt++] = strdup(e->d_name);
        }
    closedir(d);
    if (cnt)
        qsort(v, (size_t)cnt, sizeof *v, cmp_str);
    *out = v;
    *n = cnt;
    return 0;
}

void bk_free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int fp_backup_list(const char *set, fp_backup_say say, void *arg, fp_err *err)
{
    char **v;
    int n;
    if (bk_list_fulls(set, &v, &n) < 0)
        return fp_fail(err, FP_ENOTFOUND, "%s: %s", set, strerror(errno));
    for (int i = 0; i < n; i++) {
        char p[PATH_MAX], line[512];
        snprintf(p, sizeof p, "%s/%s/manifest.json", set, v[i]);
        size_t len = 0;
        char *m = bk_read_file(p, 1 << 20, &len);
        const char *c = m ? strstr(m, "\"counts\"") : NULL;
        const char *src = m ? strstr(m, "\"source\": \"") : NULL;
        char counts[160] = "?", source[16] = "?";
        if (c) {
            const char *e = strchr(c, '}');
            snprintf(counts, sizeof counts, "%.*s", e ? (int)(e - c + 1) : 0, c);
        }
        if (src)
            sscanf(src + 11, "%15[a-z]", source);
        snprintf(p, sizeof p, "%s/%s/log/SHA256SUMS", set, v[i]);
        size_t sl = 0;
        char *sums = bk_read_file(p, 64 << 20, &sl);
        int segs = 0;
        for (char *q = sums; q && (q = strchr(q, '\n')); q++)
            segs++;
        snprintf(line, sizeof line, "%s  %s  %s  log segments: %d", v[i], source, counts, segs);
        say(line, line, arg);
        free(m);
        free(sums);
    }
    bk_free_names(v, n);
    return 0;
}

int fp_backup_prune(const char *set, int keep, int64_t older_than_ms, int *deleted, fp_err *err)
{
    char **v;
    int n, del = 0;
    if (bk_list_fulls(set, &v, &n) < 0)
        return fp_fail(err, FP_ENOTFOUND, "%s: %s", set, strerror(errno));
    int64_t now = fp_wall_ms();
    for (int i = 0; i < n - 1; i++) {     /* never the newest */
        int old = older_than_ms > 0 && 0; /* by name time below */
        int yy, mo, dd, hh, mi, ss, msec;
        if (older_than_ms > 0 && sscanf(v[i], "full-%4d%2d%2dT%2d%2d%2d.%3dZ", &yy, &mo, &dd, &hh,
                                        &mi, &ss, &msec) == 7) {
            struct tm tm = {.tm_year = yy - 1900,
                            .tm_mon = mo - 1,
                            .tm_mday = dd,
                            .tm_hour = hh,
                            .tm_min = mi,
                            .tm_sec = ss};
            int64_t t = (int64_t)timegm(&tm) * 1000 + msec;
            old = now - t > older_than_ms;
        }
        if ((keep > 0 && i < n - keep) || old) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", set, v[i]);
            if (bk_rm_rf(p) == 0)
                del++;
        }
    }
    bk_free_names(v, n);
    bk_fsync_path(set);
    if (deleted)
        *deleted = del;
    return 0;
}

int fp_backup_keys_export(const char *dir, const char *out, int *count, fp_err *err)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    n += (size_t)snprintf(buf, cap, "fapiao-keys 1\n");
    int c = 0;
    for (int i = 0; bk_private_files[i]; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, bk_private_files[i]);
        size_t len = 0;
        char *data = bk_read_file(p, 8192, &len);
        if (!data)
            continue;
        if (n + len * 2 + 300 > cap) {
            free(data);
            continue;
        }
        n += (size_t)snprintf(buf + n, cap - n, "%s %zu\n", bk_private_files[i], len);
        fp_hex((const unsigned char *)data, len, buf + n);
        n += len * 2;
        buf[n++] = '\n';
        memset(data, 0, len);
        free(data);
        c++;
    }
    if (access(out, F_OK) == 0) {
        free(buf);
        return fp_fail(err, FP_ECONFLICT, "%s exists: choose a new file", out);
    }
    int rc = bk_write_file(out, buf, n, 0600, err);
    memset(buf, 0, n);
    free(buf);
    if (count)
        *count = c;
    return rc;
}
