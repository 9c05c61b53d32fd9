/* procstat.c — the standard process metrics (the names every Prometheus
 * client library exports), read from /proc/self at scrape time.
 *
 * /proc/self/stat is one line; the command name in parentheses may
 * contain spaces and ')' itself, so fields are counted from the last ')'.
 * Times there are in clock ticks; they are turned into integer
 * microseconds and printed as seconds without floating point. */
#include "fapiao/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define STAT_MAX 4096

typedef struct pstat {
    uint64_t utime, stime, threads, starttime, vsize, rss; /* ticks, bytes, pages */
} pstat;

/* Reads up to cap-1 bytes of a small /proc file.  -1 on failure. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return -1;
    buf[n] = 0;
    return (ssize_t)n;
}

static int read_stat(pstat *ps)
{
    char buf[STAT_MAX];
    if (read_small("/proc/self/stat", buf, sizeof buf) < 0)
        return -1;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    memset(ps, 0, sizeof *ps);
    /* fields are numbered from 1 (pid); 3 (state) is the first after ')' */
    int got = 0;
    for (int field = 3; field <= 24; field++) {
        while (*p == ' ')
            p++;
        if (!*p)
            return -1;
        char *end = p;
        uint64_t v = field == 3 ? 0 : strtoull(p, &end, 10);
        if (field == 3)
            end = p + strcspn(p, " ");
        switch (field) {
        case 14:
            ps->utime = v, got++;
            break;
        case 15:
            ps->stime = v, got++;
            break;
        case 20:
            ps->threads = v, got++;
            break;
        case 22:
            ps->starttime = v, got++;
            break;
        case 23:
            ps->vsize = v, got++;
            break;
        case 24:
            ps->rss = v, got++;
            break;
        }
        p = end;
    }
    return got == 6 ? 0 : -1;
}

/* The boot time (seconds since the epoch), from the btime line of
 * /proc/stat.  -1 if not found. */
static int64_t boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    char line[512];
    int64_t bt = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtoll(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return bt;
}

static int64_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int self = dirfd(d);
    int64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strtol(e->d_name, NULL, 10) == self) /* the descriptor reading the list */
            continue;
        n++;
    }
    closedir(d);
    return n;
}

/* ticks * 10^6 / hz without overflowing for any realistic tick count */
static int64_t ticks_us(uint64_t ticks, uint64_t hz)
{
    return (int64_t)(ticks / hz * 1000000 + ticks % hz * 1000000 / hz);
}

void fp_metrics_process(fp_buf *out)
{
    long hz = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    pstat ps;
    int have = hz > 0 && page > 0 && read_stat(&ps) == 0;
    if (have) {
        fp_metrics_emit(out, "process_cpu_seconds_total",
                        "Total user and system CPU time spent in seconds.", FP_METRICS_COUNTER,
                        ticks_us(ps.utime + ps.stime, (uint64_t)hz), FP_METRICS_MICRO);
        fp_metrics_emit(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
                        FP_METRICS_GAUGE, (int64_t)(ps.rss * (uint64_t)page), 1);
        fp_metrics_emit(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                        FP_METRICS_GAUGE, (int64_t)ps.vsize, 1);
    }
    int64_t fds = open_fds();
    if (fds >= 0)
        fp_metrics_emit(out, "process_open_fds", "Number of open file descriptors.",
                        FP_METRICS_GAUGE, fds, 1);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur <= INT64_MAX)
        fp_metrics_emit(out, "process_max_fds", "Maximum number of open file descriptors.",
                        FP_METRICS_GAUGE, (int64_t)rl.rlim_cur, 1);
    int64_t bt = have ? boot_time() : -1;
    if (bt >= 0)
        fp_metrics_emit(out, "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.", FP_METRICS_GAUGE,
                        bt * 1000000 + ticks_us(ps.starttime, (uint64_t)hz), FP_METRICS_MICRO);
    if (have)
        fp_metrics_emit(out, "fapiao_process_threads", "Number of OS threads in the process.",
                        FP_METRICS_GAUGE, (int64_t)ps.threads, 1);
}

void fp_metrics_process_collector(fp_buf *out, void *arg)
{
    (void)arg;
    fp_metrics_process(out);
}
