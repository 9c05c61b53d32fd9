/* restore.c — restore and verify (include/fapiao/backup.h,
 * docs/recovery.md).  A restore checks every file of the full it uses
 * against the manifest (itself checked against manifest.sha256) and every
 * log segment against log/SHA256SUMS and the chain of segment headers
 * before it writes anything, builds the data directory in TO.tmp, checks
 * it (integrity_check, the counts), fsyncs and renames it: a target is
 * whole or absent. */
/* paths are bounded by PATH_MAX: a cut one fails to open, never aliases */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/clock.h"
#include "fapiao/store_backup.h"
#include "internal.h"

#define BAD(res, file, code, ...)                                                                  \
    (snprintf((res)->bad_file, sizeof(res)->bad_file, "%s", (file)),                               \
     fp_fail(err, code, __VA_ARGS__))

typedef struct seg {
    char name[32], sha[65];
    int64_t last_ms;
} seg;

/* log/SHA256SUMS of full: "<sha>  <name>  <last ms>" per segment, in order */
static int read_sums(const char *full, seg **out, int *n)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/log/SHA256SUMS", full);
    *out = NULL;
    *n = 0;
    size_t len = 0;
    char *s = bk_read_file(p, 64 << 20, &len);
    if (!s)
        return 0;
    int cap = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        seg g = {0};
        long long ms = 0;
        if (sscanf(line, "%64s %31s %lld", g.sha, g.name, &ms) < 2)
            continue;
        g.last_ms = ms;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            seg *nv = realloc(*out, (size_t)cap * sizeof *nv);
            if (!nv)
                break;
            *out = nv;
        }
        (*out)[(*n)++] = g;
    }
    free(s);
    return 0;
}

static int64_t json_int(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

/* checks manifest.sha256, every file of the manifest and of the log */
static int check_full(const char *full, const char *id, cJSON **manifest, seg **segs, int *nseg,
                      fp_backup_result *res, fp_err *err)
{
    char p[PATH_MAX], sha[65], want[65] = "", rel[PATH_MAX];
    snprintf(p, sizeof p, "%s/manifest.sha256", full);
    size_t len = 0;
    char *s = bk_read_file(p, 4096, &len);
    snprintf(rel, sizeof rel, "%s/manifest.sha256", id);
    if (!s)
        return BAD(res, rel, FP_ECORRUPT, "missing: %s", rel);
    sscanf(s, "%64s", want);
    free(s);
    snprintf(p, sizeof p, "%s/manifest.json", full);
    snprintf(rel, sizeof rel, "%s/manifest.json", id);
    if (bk_sha256_file(p, sha, NULL) < 0)
        return BAD(res, rel, FP_ECORRUPT, "missing: %s", rel);
    if (strcmp(sha, want) != 0) /* either may be the one at fault: both named */
        return BAD(res, rel, FP_ECORRUPT, "corrupt: %s does not match %s/manifest.sha256", rel, id);
    s = bk_read_file(p, 1 << 20, &len);
    cJSON *m = s ? cJSON_Parse(s) : NULL;
    free(s);
    if (!m)
        return BAD(res, rel, FP_ECORRUPT, "corrupt: %s", rel);
    cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files"), *f;
    cJSON_ArrayForEach(f, files)
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "name"));
        const char *fsha = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "sha256"));
        if (!name || !fsha || strchr(name, '/')) {
            cJSON_Delete(m);
            return BAD(res, rel, FP_ECORRUPT, "corrupt: %s", rel);
        }
        snprintf(p, sizeof p, "%s/%s", full, name);
        snprintf(rel, sizeof rel, "%s/%s", id, name);
        if (bk_sha256_file(p, sha, NULL) < 0) {
            cJSON_Delete(m);
            return BAD(res, rel, FP_ECORRUPT, "missing: %s", rel);
        }
        if (strcmp(sha, fsha) != 0) {
            cJSON_Delete(m);
            return BAD(res, rel, FP_ECORRUPT, "corrupt (checksum differs): %s", rel);
        }
    }
    read_sums(full, segs, nseg);
    for (int i = 0; i < *nseg; i++) {
        seg *g = &(*segs)[i];
        char expect[32];
        snprintf(expect, sizeof expect, "%06d.seg", i + 1);
        snprintf(rel, sizeof rel, "%s/log/%s", id, expect);
        if (strcmp(g->name, expect) != 0) {
            cJSON_Delete(m);
            return BAD(res, rel, FP_ECORRUPT, "log out of order at %s (log/SHA256SUMS lists %s)",
                       rel, g->name);
        }
        snprintf(p, sizeof p, "%s/log/%s", full, g->name);
        if (bk_sha256_file(p, sha, NULL) < 0) {
            cJSON_Delete(m);
            return BAD(res, rel, FP_ECORRUPT, "missing: %s", rel);
        }
        if (strcmp(sha, g->sha) != 0) {
            cJSON_Delete(m);
            return BAD(res, rel, FP_ECORRUPT,
                       "corrupt or reordered (checksum differs from log/SHA256SUMS): %s", rel);
        }
    }
    *manifest = m;
    return 0;
}

/* reads segment i of full: applies to r the records up to to_ms (0: all;
 * r NULL: none) and notes the number ranges of the others in marks, so a
 * restore knows the numbers given out after its point; *last_ms: the
 * segment's last record's time */
static int replay_seg(const char *full, const char *id, int i, const char *prev_sha,
                      fp_store_replay *r, int64_t to_ms, fp_store_marks *marks, int64_t *last_ms,
                      fp_backup_result *res, fp_err *err)
{
    char p[PATH_MAX], rel[PATH_MAX];
    snprintf(p, sizeof p, "%s/log/%06d.seg", full, i + 1);
    snprintf(rel, sizeof rel, "%s/log/%06d.seg", id, i + 1);
    gzFile g = gzopen(p, "rb");
    if (!g)
        return BAD(res, rel, FP_ECORRUPT, "missing: %s", rel);
    char line[256], hid[64] = "", hprev[80] = "";
    int seq = 0, rc = 0;
    if (!gzgets(g, line, sizeof line) ||
        sscanf(line, "FPLOG 1 %63s %d %79s", hid, &seq, hprev) != 3 || strcmp(hid, id) != 0 ||
        seq != i + 1 || strcmp(hprev, prev_sha) != 0) {
        gzclose(g);
        return BAD(res, rel, FP_ECORRUPT, "log segment out of place (header): %s", rel);
    }
    size_t cap = 0;
    unsigned char *buf = NULL;
    int ended = 0;
    while (rc == 0 && gzgets(g, line, sizeof line)) {
        long long ms = 0, n = 0;
        if (line[0] == 'E') {
            ended = 1;
            break;
        }
        if (sscanf(line, "R %lld %lld", &ms, &n) != 2 || n <= 0 || n > (1LL << 30)) {
            rc = BAD(res, rel, FP_ECORRUPT, "corrupt: %s", rel);
            break;
        }
        if ((size_t)n > cap) {
            unsigned char *nb = realloc(buf, (size_t)n);
            if (!nb) {
                rc = fp_fail(err, FP_ENOMEM, "out of memory");
                break;
            }
            buf = nb, cap = (size_t)n;
        }
        if (gzread(g, buf, (unsigned)n) != (int)n) {
            rc = BAD(res, rel, FP_ECORRUPT, "corrupt (cut short): %s", rel);
            break;
        }
        *last_ms = ms;
        if (!r || (to_ms > 0 && ms > to_ms)) {
            if ((rc = fp_store_marks_changeset(marks, buf, (size_t)n, err)) < 0)
                snprintf(res->bad_file, sizeof res->bad_file, "%s", rel);
            continue;
        }
        if ((rc = fp_store_replay_apply(r, buf, (size_t)n, err)) < 0) {
            snprintf(res->bad_file, sizeof res->bad_file, "%s", rel);
            break;
        }
        res->log_records++;
        res->log_end_ms = ms;
    }
    free(buf);
    int zerr = 0;
    gzerror(g, &zerr);
    gzclose(g);
    if (rc == 0 && (!ended || (zerr != Z_OK && zerr != Z_STREAM_END)))
        rc = BAD(res, rel, FP_ECORRUPT, "corrupt (cut short): %s", rel);
    if (r)
        res->log_segments++;
    return rc;
}

/* reads every segment of a checked full (r NULL: into marks only) */
static int replay_log(const char *full, const char *id, const seg *segs, int nseg,
                      fp_store_replay *r, int64_t to_ms, fp_store_marks *marks,
                      fp_backup_result *res, fp_err *err)
{
    char prev[80] = "-";
    int rc = 0;
    for (int i = 0; i < nseg && rc == 0; i++) {
        int64_t last = 0;
        rc = replay_seg(full, id, i, prev, r, to_ms, marks, &last, res, err);
        if (rc == 0 && last != segs[i].last_ms) {
            char sums[PATH_MAX];
            snprintf(sums, sizeof sums, "%s/log/SHA256SUMS", id);
            rc = BAD(res, sums, FP_ECORRUPT, "corrupt: %s (segment %s ends elsewhere)", sums,
                     segs[i].name);
        }
        snprintf(prev, sizeof prev, "%s", segs[i].sha);
    }
    return rc;
}

static int write_keys(const char *keys, const char *tmp, fp_backup_say say, void *arg, fp_err *err)
{
    size_t len = 0;
    char *s = keys ? bk_read_file(keys, 1 << 20, &len) : NULL;
    if (keys && (!s || strncmp(s, "fapiao-keys 1\n", 14) != 0)) {
        free(s);
        return fp_fail(err, FP_EINVAL, "%s: not a fapiao keys file", keys);
    }
    char *q = s ? s + 14 : NULL;
    int have[8] = {0};
    while (q && *q) {
        char name[64];
        size_t n = 0;
        int used = 0;
        if (sscanf(q, "%63s %zu\n%n", name, &n, &used) != 2 || n > 8192)
            break;
        q += used;
        unsigned char *data = malloc(n + 1);
        if (!data || strlen(q) < n * 2) {
            free(data);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            unsigned v = 0;
            sscanf(q + 2 * k, "%2x", &v);
            data[k] = (unsigned char)v;
        }
        q += n * 2;
        if (*q == '\n')
            q++;
        for (int i = 0; bk_private_files[i]; i++)
            if (strcmp(name, bk_private_files[i]) == 0) {
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/%s", tmp, name);
                int rc = bk_write_file(p, data, n, 0600, err);
                if (rc < 0) {
                    free(data);
                    free(s);
                    return rc;
                }
                have[i] = 1;
            }
        memset(data, 0, n);
        free(data);
    }
    if (s) {
        memset(s, 0, len);
        free(s);
    }
    char missing[256] = "";
    for (int i = 0; bk_private_files[i]; i++)
        if (!have[i])
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s",
                     missing[0] ? ", " : "", bk_private_files[i]);
    if (missing[0] && say) {
        char zh[512], en[512];
        snprintf(zh, sizeof zh,
                 "缺少私钥：%s（用 --keys 提供 fapiao backup keys 导出的文件；缺少 audit.key "
                 "时审计日志仍可用公钥校验，但不能签新检查点）",
                 missing);
        snprintf(en, sizeof en,
                 "missing private keys: %s (give the file of `fapiao backup keys` with --keys; "
                 "without audit.key the log still verifies against audit.pub but no new "
                 "checkpoint can be signed)",
                 missing);
        say(zh, en, arg);
    }
    return 0;
}

typedef struct say_ctx {
    fp_backup_say say;
    void *arg;
} say_ctx;

static void say_moved(const fp_range_moved *mv, void *arg)
{
    say_ctx *c = arg;
    char zh[256], en[256];
    snprintf(zh, sizeof zh,
             "号码段 %lld（%s）：next %lld → %lld，恢复点之后已开出或预留的 %lld 个号码不再使用",
             (long long)mv->range_id, mv->prefix, (long long)mv->from, (long long)mv->to,
             (long long)(mv->to - mv->from));
    snprintf(en, sizeof en,
             "range %lld (%s): next %lld -> %lld, %lld numbers given out or reserved after the "
             "restored point are not used again",
             (long long)mv->range_id, mv->prefix, (long long)mv->from, (long long)mv->to,
             (long long)(mv->to - mv->from));
    if (c->say)
        c->say(zh, en, c->arg);
}

/* the time a full's state reaches: its last log record, or its snapshot */
static int64_t full_end(const char *set, const char *name, int64_t *created)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s/manifest.json", set, name);
    size_t len;
    char *s = bk_read_file(p, 1 << 20, &len);
    cJSON *m = s ? cJSON_Parse(s) : NULL;
    free(s);
    int64_t t = m ? json_int(m, "created_ms") : -1;
    cJSON_Delete(m);
    if (created)
        *created = t;
    if (t < 0)
        return t;
    seg *g;
    int ng;
    snprintf(p, sizeof p, "%s/%s", set, name);
    read_sums(p, &g, &ng);
    if (ng > 0 && g[ng - 1].last_ms > t)
        t = g[ng - 1].last_ms;
    free(g);
    return t;
}

/* notes in marks the ranges of every other full whose state goes past the
 * restored point (to_ms, or the end of full id): its base and its log,
 * checked as the restored full is */
static int later_fulls(const char *set, const char *id, const char *tmp, int64_t to_ms,
                       fp_store_marks *marks, fp_backup_result *res, fp_err *err)
{
    char **v;
    int n, rc = 0;
    if (bk_list_fulls(set, &v, &n) < 0)
        return 0;
    int64_t point = to_ms > 0 ? to_ms : full_end(set, id, NULL);
    for (int i = 0; i < n && rc == 0; i++) {
        if (strcmp(v[i], id) == 0 || full_end(set, v[i], NULL) <= point)
            continue;
        char full[PATH_MAX], gz[PATH_MAX], db[PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", set, v[i]);
        cJSON *m = NULL;
        seg *segs = NULL;
        int nseg = 0;
        rc = check_full(full, v[i], &m, &segs, &nseg, res, err);
        cJSON_Delete(m);
        snprintf(gz, sizeof gz, "%s/%s.gz", full, BK_DB);
        snprintf(db, sizeof db, "%s/.marks.db", tmp);
        if (rc == 0 && (rc = bk_gunzip(gz, db, err)) < 0)
            snprintf(res->bad_file, sizeof res->bad_file, "%s/%s.gz", v[i], BK_DB);
        if (rc == 0)
            rc = fp_store_marks_db(marks, db, err);
        unlink(db);
        if (rc == 0)
            rc = replay_log(full, v[i], segs, nseg, NULL, 0, marks, res, err);
        free(segs);
    }
    bk_free_names(v, n);
    return rc;
}

/* builds a data directory at tmp from full id of set */
static int build(const char *set, const char *id, const char *tmp, int64_t to_ms, const char *keys,
                 fp_backup_result *res, fp_backup_say say, void *arg, fp_err *err)
{
    char full[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
    snprintf(full, sizeof full, "%s/%s", set, id);
    cJSON *m = NULL;
    seg *segs = NULL;
    int nseg = 0;
    fp_store_marks *marks = NULL;
    say_ctx sm = {say, arg};
    int rc = check_full(full, id, &m, &segs, &nseg, res, err);
    if (rc < 0 || (rc = fp_store_marks_new(&marks, err)) < 0) {
        cJSON_Delete(m);
        free(segs);
        return rc;
    }
    snprintf(res->id, sizeof res->id, "%s", id);
    res->created_ms = json_int(m, "created_ms");
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
        rc = fp_fail(err, FP_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files"), *f;
    cJSON_ArrayForEach(f, files)
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "name"));
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "path"));
        if (!path || strstr(path, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", full, name);
        snprintf(q, sizeof q, "%s/%s", tmp, path);
        char *slash = strrchr(q, '/');
        *slash = 0;
        bk_mkdirs(q, 0700);
        *slash = '/';
        if ((rc = bk_gunzip(p, q, err)) < 0) {
            snprintf(res->bad_file, sizeof res->bad_file, "%s/%s", id, name);
            goto out;
        }
        chmod(q, strcmp(path, BK_DB) == 0 ? 0600 : 0644);
    }
    snprintf(q, sizeof q, "%s/%s", tmp, BK_DB);
    /* the base as the manifest says */
    fp_backup_stats bs;
    if ((rc = fp_store_backup_stats(q, &bs, err)) < 0)
        goto out;
    cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "counts");
    char mrel[PATH_MAX];
    snprintf(mrel, sizeof mrel, "%s/manifest.json", id);
    if (json_int(c, "invoices") != bs.invoices || json_int(c, "audit") != bs.audit ||
        json_int(c, "ranges") != bs.ranges || json_int(c, "sellers") != bs.sellers) {
        rc = BAD(res, mrel, FP_ECORRUPT, "the database's counts differ from %s", mrel);
        goto out;
    }
    fp_store_replay *r = NULL;
    if ((rc = fp_store_replay_open(q, &r, err)) < 0)
        goto out;
    rc = replay_log(full, id, segs, nseg, r, to_ms, marks, res, err);
    if (rc == 0 && (rc = later_fulls(set, id, tmp, to_ms, marks, res, err)) == 0 &&
        (rc = bk_reserve_marks(set, marks, res, err)) == 0)
        rc = fp_store_replay_advance(r, marks, say_moved, &sm, err);
    int crc = fp_store_replay_close(r, rc == 0, rc == 0 ? err : NULL);
    if (rc == 0 && (rc = crc) < 0 && !res->bad_file[0])
        snprintf(res->bad_file, sizeof res->bad_file, "%s/log", id);
    if (rc < 0)
        goto out;
    char detail[256];
    if ((rc = fp_store_backup_integrity(q, detail, sizeof detail, err)) < 0) {
        if (rc == FP_EINVAL)
            rc = fp_fail(err, FP_ECORRUPT, "integrity_check: %s", detail);
        goto out;
    }
    if ((rc = fp_store_backup_stats(q, &bs, err)) < 0)
        goto out;
    res->invoices = bs.invoices, res->audit = bs.audit;
    res->ranges = bs.ranges, res->sellers = bs.sellers;
    snprintf(p, sizeof p, "%s/pdf", tmp);
    mkdir(p, 0700);
    if ((rc = write_keys(keys, tmp, say, arg, err)) < 0)
        goto out;
    bk_fsync_path(q);
    bk_fsync_path(tmp);
out:
    fp_store_marks_free(marks);
    cJSON_Delete(m);
    free(segs);
    return rc;
}

/* the full to restore from: to_ms 0 the one whose state is newest, else
 * the newest made at or before to_ms */
static int choose(const char *set, int64_t to_ms, char *id, size_t cap, fp_err *err)
{
    char **v;
    int n;
    if (bk_list_fulls(set, &v, &n) < 0 || n == 0) {
        if (n == 0)
            bk_free_names(v, n);
        return fp_fail(err, FP_ENOTFOUND, "no full backup in %s", set);
    }
    int best = -1;
    int64_t best_t = -1;
    for (int i = 0; i < n; i++) {
        int64_t created = -1, t = full_end(set, v[i], &created);
        if (created < 0 || (to_ms > 0 && created > to_ms))
            continue;
        if (to_ms > 0)
            t = created;
        if (t >= best_t)
            best = i, best_t = t;
    }
    int rc = 0;
    if (best < 0)
        rc = fp_fail(err, FP_ENOTFOUND,
                     to_ms ? "no full backup in %s was made before that time"
                           : "no readable full backup in %s",
                     set);
    else
        snprintf(id, cap, "%s", v[best]);
    bk_free_names(v, n);
    return rc;
}

int fp_backup_restore(const char *set, const char *to, int64_t to_ms, const char *keys,
                      fp_backup_result *res, fp_backup_say say, void *arg, fp_err *err)
{
    fp_backup_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    struct stat sb;
    if (stat(to, &sb) == 0)
        return fp_fail(err, FP_ECONFLICT, "%s exists: restore builds a new data directory", to);
    char id[64], tmp[PATH_MAX];
    int rc = choose(set, to_ms, id, sizeof id, err);
    if (rc < 0)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    if (stat(tmp, &sb) == 0)
        return fp_fail(err, FP_ECONFLICT, "%s exists (a restore that did not finish?): remove it",
                       tmp);
    if ((rc = build(set, id, tmp, to_ms, keys, res, say, arg, err)) < 0) {
        bk_rm_rf(tmp);
        return rc;
    }
    if (rename(tmp, to) < 0) {
        rc = fp_fail(err, FP_EIO, "rename %s: %s", to, strerror(errno));
        bk_rm_rf(tmp);
        return rc;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", to);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = 0;
    else
        snprintf(parent, sizeof parent, "%s", slash ? "/" : ".");
    bk_fsync_path(parent);
    return 0;
}

static void record_verify(const char *set, int ok, const char *file)
{
    char p[PATH_MAX], line[400];
    snprintf(p, sizeof p, "%s/.last-verify", set);
    int n = snprintf(line, sizeof line, "%s %lld %s\n", ok ? "ok" : "failed",
                     (long long)fp_wall_ms(), file && file[0] ? file : "-");
    bk_write_file(p, line, (size_t)n, 0600, NULL);
}

int fp_backup_verify(const char *set, const char *id, fp_backup_result *res, fp_backup_say say,
                     void *arg, fp_err *err)
{
    char **v = NULL;
    int n = 0, rc = 0;
    if (id) {
        v = malloc(sizeof *v);
        v[0] = strdup(id);
        n = 1;
    } else if (bk_list_fulls(set, &v, &n) < 0 || n == 0) {
        bk_free_names(v, n);
        return fp_fail(err, FP_ENOTFOUND, "no full backup in %s", set);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        memset(res, 0, sizeof *res);
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s/.verify-%d-XXXXXX", set, (int)getpid());
        if (!mkdtemp(tmp)) {
            rc = fp_fail(err, FP_EIO, "mkdtemp: %s", strerror(errno));
            break;
        }
        char dd[PATH_MAX];
        snprintf(dd, sizeof dd, "%s/data", tmp);
        rc = build(set, v[i], dd, 0, NULL, res, NULL, NULL, err);
        if (rc == 0) {
            char db[PATH_MAX], pub[PATH_MAX];
            snprintf(db, sizeof db, "%s/%s", dd, BK_DB);
            snprintf(pub, sizeof pub, "%s/audit.pub", dd);
            unsigned char pk[FP_AUDIT_KEY_LEN];
            fp_audit_report rep;
            if (access(pub, R_OK) == 0) {
                if ((rc = fp_audit_pub_load(pub, pk, err)) == 0 &&
                    (rc = fp_audit_verify_db(db, pk, 0, &rep, err)) == 0 &&
                    rep.kind != FP_AUDIT_INTACT)
                    rc = fp_fail(err, FP_ECORRUPT, "audit verify: %s", rep.en);
            }
        }
        bk_rm_rf(tmp);
        char line[512];
        if (rc == 0) {
            snprintf(line, sizeof line,
                     "%s ok: invoices %lld, audit %lld, ranges %lld, sellers %lld, log %lld "
                     "records in %lld segments",
                     v[i], (long long)res->invoices, (long long)res->audit, (long long)res->ranges,
                     (long long)res->sellers, (long long)res->log_records,
                     (long long)res->log_segments);
            if (say)
                say(line, line, arg);
        }
    }
    record_verify(set, rc == 0, res->bad_file);
    bk_free_names(v, n);
    return rc;
}
