/* access_log.c — the access log's file: size cap, rotation, reopen, and the
 * count of lines left out (access_log.h). */
#include "access_log.h"
#include "fapiao/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fp_access_log {
    char *path; /* NULL: stderr */
    int fd;
    int64_t max_bytes;
    int64_t summary_ms;
    atomic_int_fast64_t size;     /* bytes in the current file (approximate under races) */
    pthread_mutex_t mu;           /* rotation, reopen, the summary */
    atomic_uint_fast64_t pending; /* left out since the last summary line */
    int64_t last_summary_ms;
    atomic_uint_fast64_t lines, suppressed, rotations;
};

static int open_path(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int fp_access_log_open(const char *path, int64_t max_bytes, int summary_ms, fp_access_log **out,
                       fp_err *err)
{
    fp_access_log *l = calloc(1, sizeof *l);
    if (!l)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    l->fd = 2;
    if (strcmp(path, "-") != 0) {
        if (!(l->path = strdup(path))) {
            free(l);
            return fp_fail(err, FP_ENOMEM, "out of memory");
        }
        l->fd = open_path(path);
        if (l->fd < 0) {
            int e = errno;
            free(l->path);
            free(l);
            return fp_fail(err, FP_EIO, "access log %s: %s", path, strerror(e));
        }
        struct stat st;
        if (fstat(l->fd, &st) == 0)
            atomic_store(&l->size, (int64_t)st.st_size);
        l->max_bytes = max_bytes > 0 ? max_bytes : 0;
    }
    l->summary_ms = summary_ms > 0 ? summary_ms : 10000;
    l->last_summary_ms = fp_mono_ms();
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return 0;
}

/* Puts a new file at PATH under the same descriptor number (dup2 is
 * atomic: a concurrent write goes to the old file or the new one). */
static int swap_in_new_file(fp_access_log *l, int rename_first, fp_err *err)
{
    if (rename_first) {
        char old[4096];
        snprintf(old, sizeof old, "%s.1", l->path);
        if (rename(l->path, old) != 0 && errno != ENOENT)
            return fp_fail(err, FP_EIO, "access log: rename to %s: %s", old, strerror(errno));
    }
    int fd = open_path(l->path);
    if (fd < 0)
        return fp_fail(err, FP_EIO, "access log %s: %s", l->path, strerror(errno));
    struct stat st;
    int64_t size = fstat(fd, &st) == 0 ? (int64_t)st.st_size : 0;
    if (dup2(fd, l->fd) < 0) {
        int e = errno;
        close(fd);
        return fp_fail(err, FP_EIO, "access log: dup2: %s", strerror(e));
    }
    close(fd);
    atomic_store(&l->size, size);
    return 0;
}

static void put(fp_access_log *l, const char *line, size_t len)
{
    if (l->max_bytes && atomic_load(&l->size) + (int64_t)len > l->max_bytes) {
        pthread_mutex_lock(&l->mu);
        if (atomic_load(&l->size) + (int64_t)len > l->max_bytes) {
            fp_err err = {0};
            if (swap_in_new_file(l, 1, &err) == 0)
                atomic_fetch_add(&l->rotations, 1);
            else /* keep writing where we are; say it once per failure */
                fprintf(stderr, "{\"event\":\"access_log\",\"error\":\"%s\"}\n", err.msg);
        }
        pthread_mutex_unlock(&l->mu);
    }
    ssize_t wr = write(l->fd, line, len); /* O_APPEND: one line, one write */
    if (wr > 0)
        atomic_fetch_add(&l->size, (int64_t)wr);
}

/* The summary of lines left out, when one is due (or `force`). */
static void summary(fp_access_log *l, int force)
{
    if (!atomic_load(&l->pending))
        return;
    int64_t now = fp_mono_ms();
    pthread_mutex_lock(&l->mu);
    uint64_t n = 0;
    if (force || now - l->last_summary_ms >= l->summary_ms) {
        n = atomic_exchange(&l->pending, 0);
        l->last_summary_ms = now;
    }
    pthread_mutex_unlock(&l->mu);
    if (!n)
        return;
    struct tm tm;
    char when[40], line[256];
    int64_t wall_ms = fp_wall_ms(); /* a timestamp for people: wall time */
    time_t sec = (time_t)(wall_ms / 1000);
    gmtime_r(&sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    int len = snprintf(line, sizeof line,
                       "{\"ts\":\"%s.%03ldZ\",\"event\":\"access_log_suppressed\",\"count\":%llu,"
                       "\"reason\":\"auth_failure_budget\"}\n",
                       when, (long)(wall_ms % 1000), (unsigned long long)n);
    put(l, line, (size_t)len);
}

void fp_access_log_line(fp_access_log *l, const char *line, size_t len)
{
    summary(l, 0);
    put(l, line, len);
    atomic_fetch_add(&l->lines, 1);
}

void fp_access_log_suppress(fp_access_log *l)
{
    atomic_fetch_add(&l->pending, 1);
    atomic_fetch_add(&l->suppressed, 1);
    summary(l, 0);
}

int fp_access_log_reopen(fp_access_log *l, fp_err *err)
{
    if (!l || !l->path)
        return 0;
    pthread_mutex_lock(&l->mu);
    int rc = swap_in_new_file(l, 0, err);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void fp_access_log_close(fp_access_log *l)
{
    if (!l)
        return;
    summary(l, 1);
    if (l->path)
        close(l->fd);
    pthread_mutex_destroy(&l->mu);
    free(l->path);
    free(l);
}

void fp_access_log_stats_get(fp_access_log *l, fp_access_log_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!l)
        return;
    out->lines = atomic_load(&l->lines);
    out->suppressed = atomic_load(&l->suppressed);
    out->rotations = atomic_load(&l->rotations);
}
