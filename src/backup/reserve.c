/* reserve.c — number reservations in the backup set (docs/recovery.md).
 * The log reaches the archive once per interval, so after a kill -9 the
 * numbers given out in the last seconds are unknown to it; a restore that
 * let a range stand where the log ends would give them out again.  So,
 * like the issue clock's high-water mark (docs/operations.md), the writer
 * never gives out a number the archive has not reserved: before a range's
 * next reaches its reservation, a new one (next + R) is written to
 * SET/.reserved and fsynced, in the issuing transaction.  A restore moves
 * each range past its reservation: the unused reserved numbers are skipped
 * (and reported), none is reused.  R follows the issue rate: about two
 * intervals' worth of numbers, at least RES_MIN and at most RES_MAX, so a
 * reservation costs one fsync per range per interval or so. */
/* paths are bounded by PATH_MAX: a cut one fails to open, never aliases */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/clock.h"
#include "fapiao/store_backup.h"
#include "internal.h"

#define RES_FILE       ".reserved"
#define RES_MAX_RANGES 4096
#define RES_MIN        64
#define RES_MAX        65536

typedef struct res_entry {
    int64_t range_id, upto, from, at_ms; /* from/at_ms: the last reservation's start */
} res_entry;

struct bk_reserve {
    char path[PATH_MAX];
    int interval_s;
    res_entry v[RES_MAX_RANGES];
    int n;
};

/* "fapiao-reserved 1" then "R <range id> <upto>" per range */
static int load(const char *path, res_entry *v, int *n, int *bad)
{
    *n = 0;
    *bad = 0;
    size_t len = 0;
    char *s = bk_read_file(path, 1 << 20, &len);
    if (!s)
        return 0;
    char *save = NULL;
    char *line = strtok_r(s, "\n", &save);
    if (!line || strcmp(line, "fapiao-reserved 1") != 0)
        *bad = 1;
    for (line = strtok_r(NULL, "\n", &save); line && !*bad; line = strtok_r(NULL, "\n", &save)) {
        long long id = 0, upto = 0;
        if (sscanf(line, "R %lld %lld", &id, &upto) != 2 || *n >= RES_MAX_RANGES)
            *bad = 1;
        else
            v[(*n)++] = (res_entry){.range_id = id, .upto = upto};
    }
    free(s);
    return 0;
}

int bk_reserve_open(const char *set, int interval_s, bk_reserve **out, fp_err *err)
{
    bk_reserve *r = calloc(1, sizeof *r);
    if (!r)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    snprintf(r->path, sizeof r->path, "%s/%s", set, RES_FILE);
    r->interval_s = interval_s > 0 ? interval_s : 10;
    int bad = 0;
    load(r->path, r->v, &r->n, &bad); /* kept: an older server's marks still count */
    if (bad)
        r->n = 0;
    *out = r;
    return 0;
}

void bk_reserve_free(bk_reserve *r)
{
    free(r);
}

static int save(bk_reserve *r)
{
    size_t cap = 32 + (size_t)r->n * 48, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return FP_ENOMEM;
    len += (size_t)snprintf(buf, cap, "fapiao-reserved 1\n");
    for (int i = 0; i < r->n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "R %lld %lld\n", (long long)r->v[i].range_id,
                                (long long)r->v[i].upto);
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", r->path);
    int rc = bk_write_file(tmp, buf, len, 0600, NULL); /* written and fsynced */
    free(buf);
    if (rc == 0 && rename(tmp, r->path) < 0)
        rc = FP_EIO;
    if (rc == 0) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", r->path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = 0;
        rc = bk_fsync_path(slash ? dir : ".");
    }
    return rc < 0 ? FP_EIO : 0;
}

int bk_reserve_fn(int64_t range_id, int64_t next, int64_t *upto, void *arg)
{
    bk_reserve *r = arg;
    res_entry *e = NULL;
    for (int i = 0; i < r->n && !e; i++)
        if (r->v[i].range_id == range_id)
            e = &r->v[i];
    if (!e) {
        if (r->n == RES_MAX_RANGES)
            return FP_EIO;
        e = &r->v[r->n++];
        *e = (res_entry){.range_id = range_id};
    }
    int64_t now = fp_wall_ms(), want = RES_MIN;
    if (e->at_ms > 0 && now > e->at_ms) /* two intervals at the rate seen */
        want = (next - e->from) * 2000 * r->interval_s / (now - e->at_ms);
    want = want < RES_MIN ? RES_MIN : want > RES_MAX ? RES_MAX : want;
    int64_t old = e->upto;
    if (next + want > e->upto)
        e->upto = next + want;
    if (save(r) < 0) {
        e->upto = old;
        return FP_EIO;
    }
    e->from = next, e->at_ms = now;
    *upto = e->upto;
    return 0;
}

int bk_reserve_marks(const char *set, fp_store_marks *m, fp_backup_result *res, fp_err *err)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", set, RES_FILE);
    res_entry *v = malloc(RES_MAX_RANGES * sizeof *v);
    if (!v)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    int n = 0, bad = 0, rc = 0;
    load(p, v, &n, &bad);
    if (bad) {
        snprintf(res->bad_file, sizeof res->bad_file, "%s", RES_FILE);
        rc = fp_fail(err, FP_ECORRUPT, "corrupt: %s", RES_FILE);
    }
    for (int i = 0; i < n && rc == 0; i++)
        if (fp_store_marks_note(m, v[i].range_id, v[i].upto) < 0)
            rc = fp_fail(err, FP_ENOMEM, "out of memory");
    free(v);
    return rc;
}
