/* archive.c — continuous archiving while serving (`serve --archive DIR`;
 * docs/recovery.md).  At start the archiver begins the store's change log
 * and makes a full from the log's exact starting snapshot; then, every
 * interval, it drains the committed transactions into the next log segment
 * (gzip, fsync, rename, fsync of the directory, then a line in
 * log/SHA256SUMS, fsynced): only then do they count as archived, so the
 * RPO on one node is at most one interval (plus the round's own time).  A
 * broken log (a write by another process) starts a new full.
 * --archive-command runs per new file, with retries; files it has not taken
 * are retried next round and counted in the lag metric. */
/* paths are bounded by PATH_MAX: a cut one fails to open, never aliases */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "fapiao/clock.h"
#include "fapiao/store_backup.h"
#include "internal.h"

#define MAX_PENDING 4096

struct fp_archiver {
    fp_store *st;
    fp_archive_opts o;
    char dir[PATH_MAX], data_dir[PATH_MAX], command[1024];
    char full[PATH_MAX], full_id[64];
    char prev_sha[65];
    int seq;
    pthread_t th;
    int started, stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    fp_archive_stats stats;     /* under lock */
    char *pending[MAX_PENDING]; /* files for the command */
    int npending;
    /* the round's segment */
    gzFile g;
    int64_t nrec, last_ms;
    bk_reserve *res; /* the number reservations (reserve.c) */
};

static void log_json(const char *event, const char *detail)
{
    fprintf(stderr, "{\"level\":\"%s\",\"event\":\"%s\",\"detail\":\"%s\"}\n",
            strncmp(event, "archive_fail", 12) == 0 ? "error" : "info", event, detail);
}

static void add_pending(fp_archiver *a, const char *path)
{
    if (!a->command[0] || a->npending >= MAX_PENDING)
        return;
    a->pending[a->npending++] = strdup(path);
}

static int new_base(fp_archiver *a, fp_err *err)
{
    char snap[PATH_MAX];
    snprintf(snap, sizeof snap, "%s/.archive-base-%d.db", a->dir, (int)getpid());
    if (bk_mkdirs(a->dir, 0700) < 0)
        return fp_fail(err, FP_EIO, "%s: %s", a->dir, strerror(errno));
    int64_t wal = 0, ms = fp_wall_ms();
    int rc = fp_store_log_start(a->st, snap, &wal, err);
    if (rc < 0) {
        unlink(snap);
        return rc;
    }
    fp_backup_result res;
    memset(&res, 0, sizeof res);
    if ((rc = bk_make_full(a->dir, a->data_dir, snap, ms, wal, "archive", &res, a->full,
                           sizeof a->full, err)) < 0)
        return rc;
    snprintf(a->full_id, sizeof a->full_id, "%s", res.id);
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/log", a->full);
    if (mkdir(p, 0700) < 0)
        return fp_fail(err, FP_EIO, "%s: %s", p, strerror(errno));
    bk_fsync_path(a->full);
    snprintf(a->prev_sha, sizeof a->prev_sha, "-");
    a->seq = 0;
    add_pending(a, a->full);
    pthread_mutex_lock(&a->lock);
    a->stats.bases++;
    a->stats.last_full_ms = ms;
    a->stats.last_ok_ms = ms;
    pthread_mutex_unlock(&a->lock);
    log_json("archive_base", res.id);
    return 0;
}

static int on_txn(int64_t ms, const void *cs, size_t n, void *arg)
{
    fp_archiver *a = arg;
    if (!a->g) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/log/.%06d.seg.tmp", a->full, a->seq + 1);
        a->g = gzopen(p, "wb1");
        if (!a->g)
            return FP_EIO;
        gzprintf(a->g, "FPLOG 1 %s %d %s\n", a->full_id, a->seq + 1, a->prev_sha);
        a->nrec = 0;
    }
    if (gzprintf(a->g, "R %lld %zu\n", (long long)ms, n) <= 0 ||
        gzwrite(a->g, cs, (unsigned)n) != (int)n)
        return FP_EIO;
    a->nrec++;
    a->last_ms = ms;
    return 0;
}

/* closes the round's segment: fsync, rename, SHA256SUMS */
static int seal_segment(fp_archiver *a, fp_err *err)
{
    if (!a->g)
        return 0;
    gzprintf(a->g, "E %lld\n", (long long)a->nrec);
    int zrc = gzclose(a->g);
    a->g = NULL;
    char tmp[PATH_MAX], fin[PATH_MAX], sums[PATH_MAX], sha[65], name[32];
    snprintf(name, sizeof name, "%06d.seg", a->seq + 1);
    snprintf(tmp, sizeof tmp, "%s/log/.%s.tmp", a->full, name);
    snprintf(fin, sizeof fin, "%s/log/%s", a->full, name);
    snprintf(sums, sizeof sums, "%s/log/SHA256SUMS", a->full);
    if (zrc != Z_OK || bk_fsync_path(tmp) < 0 || bk_sha256_file(tmp, sha, err) < 0 ||
        rename(tmp, fin) < 0) {
        unlink(tmp);
        return fp_fail(err, FP_EIO, "%s: cannot write", fin);
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/log", a->full);
    bk_fsync_path(dir);
    FILE *f = fopen(sums, "a");
    int ok = f && fprintf(f, "%s  %s  %lld\n", sha, name, (long long)a->last_ms) > 0 &&
             fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f)
        fclose(f);
    if (!ok)
        return fp_fail(err, FP_EIO, "%s: %s", sums, strerror(errno));
    a->seq++;
    snprintf(a->prev_sha, sizeof a->prev_sha, "%s", sha);
    add_pending(a, fin);
    pthread_mutex_lock(&a->lock);
    a->stats.segments++;
    a->stats.records += a->nrec;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

/* appends s to cmd[*n], single-quoted for sh ('\'' for a quote);
 * -1 when it does not fit */
static int put_quoted(char *cmd, size_t cap, size_t *n, const char *s)
{
    size_t k = *n;
    if (k + 2 >= cap)
        return -1;
    cmd[k++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t len = piece ? 4 : 1;
        if (k + len + 1 >= cap)
            return -1;
        memcpy(cmd + k, piece ? piece : s, len);
        k += len;
    }
    if (k + 2 > cap)
        return -1;
    cmd[k++] = '\'';
    cmd[k] = 0;
    *n = k;
    return 0;
}

/* The command line for one file, as PostgreSQL's archive_command: %p the
 * path, %f the file name (each quoted), %% a percent sign.  -1 when it
 * does not fit in cap.  (It used to stop before its first character, so
 * every file ran as `sh -c ""` and counted as taken.) */
static int expand_command(const char *tmpl, const char *path, char *cmd, size_t cap)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t n = 0;
    for (const char *c = tmpl; *c; c++) {
        if (c[0] == '%' && (c[1] == 'p' || c[1] == 'f')) {
            if (put_quoted(cmd, cap, &n, c[1] == 'p' ? path : base) < 0)
                return -1;
            c++;
            continue;
        }
        if (n + 2 > cap)
            return -1;
        cmd[n++] = *c;
        if (c[0] == '%' && c[1] == '%')
            c++;
    }
    cmd[n] = 0;
    return 0;
}

/* runs the command on each pending file, with retries; keeps the rest */
static void run_command(fp_archiver *a)
{
    int done = 0;
    for (int i = 0; i < a->npending; i++) {
        const char *path = a->pending[i];
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        char cmd[sizeof a->command + 8 * PATH_MAX];
        int ok = 0;
        if (expand_command(a->command, path, cmd, sizeof cmd) < 0) {
            log_json("archive_command_failed", "the command line is too long");
            pthread_mutex_lock(&a->lock);
            a->stats.command_failures++;
            pthread_mutex_unlock(&a->lock);
            break;
        }
        for (int t = 0; t < a->o.command_retries && !ok; t++) {
            int st = system(cmd);
            ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
            if (!ok) {
                pthread_mutex_lock(&a->lock);
                a->stats.command_failures++;
                pthread_mutex_unlock(&a->lock);
                log_json("archive_command_failed", base);
                usleep((useconds_t)(200000u << t));
            }
        }
        if (!ok)
            break; /* in order: the next files wait for this one */
        free(a->pending[i]);
        done++;
    }
    memmove(a->pending, a->pending + done, (size_t)(a->npending - done) * sizeof *a->pending);
    a->npending -= done;
}

static void round_once(fp_archiver *a)
{
    fp_err err = {0};
    int64_t t0 = fp_wall_ms();
    int rc = 0;
    if (!a->full[0])
        rc = new_base(a, &err);
    int broken = 0;
    if (rc == 0) {
        broken = fp_store_log_drain(a->st, on_txn, a);
        if (broken < 0)
            rc = fp_fail(&err, FP_EIO, "log segment %06d: write failed", a->seq + 1);
    }
    if (rc == 0)
        rc = seal_segment(a, &err);
    if (a->g) {
        gzclose(a->g);
        a->g = NULL;
    }
    if (rc == 0) {
        pthread_mutex_lock(&a->lock);
        a->stats.last_ok_ms = t0; /* everything committed before t0 is at the target */
        pthread_mutex_unlock(&a->lock);
    } else {
        log_json("archive_failed", err.msg);
        a->full[0] = 0; /* what was drained is lost from this log: a new base */
    }
    if (broken > 0 && rc == 0) {
        log_json("archive_rebase", "the change log cannot vouch for a write: a new full");
        a->full[0] = 0;
        fp_err e2 = {0};
        if (new_base(a, &e2) < 0)
            log_json("archive_failed", e2.msg);
    }
    if (a->command[0] && a->npending)
        run_command(a);
    pthread_mutex_lock(&a->lock);
    a->stats.command_pending = a->npending;
    pthread_mutex_unlock(&a->lock);
}

static void *main_fn(void *arg)
{
    fp_archiver *a = arg;
    pthread_mutex_lock(&a->lock);
    while (!a->stop) {
        pthread_mutex_unlock(&a->lock);
        round_once(a);
        pthread_mutex_lock(&a->lock);
        int64_t deadline = fp_mono_ns() + a->o.interval_s * 1000000000LL;
        while (!a->stop && fp_cond_wait_until(&a->cond, &a->lock, deadline) == 0)
            ; /* signalled: stop, or a spurious wake-up */
    }
    pthread_mutex_unlock(&a->lock);
    round_once(a); /* the last commits */
    return NULL;
}

int fp_archiver_start(fp_store *st, const fp_archive_opts *o, fp_archiver **out, fp_err *err)
{
    fp_archiver *a = calloc(1, sizeof *a);
    if (!a)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    a->st = st;
    a->o = *o;
    if (a->o.interval_s <= 0)
        a->o.interval_s = 10;
    if (a->o.command_retries <= 0)
        a->o.command_retries = 3;
    snprintf(a->dir, sizeof a->dir, "%s", o->dir);
    snprintf(a->data_dir, sizeof a->data_dir, "%s", o->data_dir);
    snprintf(a->command, sizeof a->command, "%s", o->command ? o->command : "");
    a->stats.last_verify = -1;
    a->stats.last_ok_ms = fp_wall_ms(); /* the lag counts from the start until the first full */
    pthread_mutex_init(&a->lock, NULL);
    fp_cond_init_mono(&a->cond);
    /* the set must be writable now (a failure here is the operator's to
     * see at start); the first full is the thread's, so that a large
     * database does not hold up the start */
    int rc = 0;
    if (bk_mkdirs(a->dir, 0700) < 0 || access(a->dir, W_OK) != 0)
        rc = fp_fail(err, FP_EIO, "%s: %s", a->dir, strerror(errno));
    /* before the first request: no number goes out unreserved */
    if (rc == 0 && (rc = bk_reserve_open(a->dir, a->o.interval_s, &a->res, err)) == 0)
        fp_store_set_reserve(st, bk_reserve_fn, a->res);
    if (rc == 0 && pthread_create(&a->th, NULL, main_fn, a) != 0)
        rc = fp_fail(err, FP_EIO, "cannot start the archiver");
    if (rc < 0) {
        fp_store_set_reserve(st, NULL, NULL);
        bk_reserve_free(a->res);
        fp_store_log_stop(st);
        pthread_mutex_destroy(&a->lock);
        pthread_cond_destroy(&a->cond);
        free(a);
        return rc;
    }
    a->started = 1;
    *out = a;
    return 0;
}

void fp_archiver_stats(fp_archiver *a, fp_archive_stats *out)
{
    memset(out, 0, sizeof *out);
    out->last_verify = -1;
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    *out = a->stats;
    pthread_mutex_unlock(&a->lock);
    out->lag_s = out->last_ok_ms ? (fp_wall_ms() - out->last_ok_ms) / 1000 : 0;
    /* the newest full of the set, the archiver's or `backup create`'s */
    char **v;
    int nf;
    if (bk_list_fulls(a->dir, &v, &nf) == 0) {
        int yy, mo, dd, hh, mi, ss, msec;
        if (nf > 0 && sscanf(v[nf - 1], "full-%4d%2d%2dT%2d%2d%2d.%3dZ", &yy, &mo, &dd, &hh, &mi,
                             &ss, &msec) == 7) {
            struct tm tm = {.tm_year = yy - 1900,
                            .tm_mon = mo - 1,
                            .tm_mday = dd,
                            .tm_hour = hh,
                            .tm_min = mi,
                            .tm_sec = ss};
            int64_t t = (int64_t)timegm(&tm) * 1000 + msec;
            if (t > out->last_full_ms)
                out->last_full_ms = t;
        }
        bk_free_names(v, nf);
    }
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/.last-verify", a->dir);
    size_t n = 0;
    char *s = bk_read_file(p, 1024, &n);
    if (s) {
        long long ms = 0;
        char word[16] = "";
        if (sscanf(s, "%15s %lld", word, &ms) == 2) {
            out->last_verify = strcmp(word, "ok") == 0;
            out->last_verify_ms = ms;
        }
        free(s);
    }
}

void fp_archiver_stop(fp_archiver *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    if (a->started)
        pthread_join(a->th, NULL);
    fp_store_set_reserve(a->st, NULL, NULL); /* the writer calls it no more */
    bk_reserve_free(a->res);
    fp_store_log_stop(a->st);
    for (int i = 0; i < a->npending; i++)
        free(a->pending[i]);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}
