/* render_bench.c — PDF render throughput, in process or through the worker
 * pool, for bench/render.sh.
 *
 *   bench_render_bench --doc FILE [--lines N] [--seconds S] [--min-renders N]
 *                      [--font PATH] [--pool EXE] [--out FILE.pdf]
 *
 * Renders the invoice document FILE (with --lines, its items repeated to N
 * lines) over and over on one thread for S seconds of CPU time (default 5),
 * at least --min-renders times (default 1), after 3 warm-up renders.
 * Prints one line:
 *
 *   render_bench mode=inproc lines=10 pages=1 renders=812 cpu_s=5.001
 *       wall_s=5.010 pages_per_cpu_s=162.4 ms_per_pdf_cpu=6.158
 *       ms_per_pdf_wall=6.170 pdf_bytes=41987
 *
 * pages_per_cpu_s is pages / CPU seconds of this process (getrusage-style
 * CLOCK_PROCESS_CPUTIME_ID): pages per second per core.  With --pool EXE
 * the renders go through fp_pdf_pool (one `EXE render-worker` process, as
 * the server uses it, at SCHED_IDLE): then the CPU seconds are this
 * process's (the caller's side of the hand-off) plus the worker's (from
 * /proc/PID/schedstat), so pages_per_cpu_s is again pages per second per
 * core, the process hand-off included; the wall-clock figures are one
 * render at a time (the latency a caller sees on an idle machine, and
 * meaningless on a loaded one: the worker runs only on idle CPU).  CPU
 * time is what these figures rest on because it does not depend on what
 * else the machine runs. */
#include "fapiao/pdf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process's children (the render workers), summed from
 * /proc/PID/schedstat (nanoseconds on a CPU). */
static double children_cpu(void)
{
    double sum = 0;
    pid_t self = getpid();
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2 || ppid != self)
            continue;
        snprintf(path, sizeof path, "/proc/%s/schedstat", e->d_name);
        unsigned long long ns = 0;
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%llu", &ns) == 1)
                sum += (double)ns / 1e9;
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    return sum;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *p = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) &&
        fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = 0;
        *len = (size_t)n;
    }
    return p;
}

/* The document with its items repeated to n lines; caller frees. */
static char *with_lines(const char *text, int n)
{
    cJSON *doc = cJSON_Parse(text);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    int have = cJSON_GetArraySize(items);
    if (!doc || have < 1) {
        cJSON_Delete(doc);
        return NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *it = cJSON_Duplicate(cJSON_GetArrayItem(items, i % have), 1);
        cJSON_ReplaceItemInObjectCaseSensitive(it, "line", cJSON_CreateNumber(i + 1));
        cJSON_AddItemToArray(arr, it);
    }
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "items", arr);
    char *out = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    return out;
}

int main(int argc, char **argv)
{
    const char *doc_path = NULL, *font = NULL, *pool_exe = NULL, *out_path = NULL;
    int lines = 0, min_renders = 1;
    double seconds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--doc") == 0)
            doc_path = v;
        else if (strcmp(k, "--lines") == 0)
            lines = atoi(v);
        else if (strcmp(k, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(k, "--min-renders") == 0)
            min_renders = atoi(v);
        else if (strcmp(k, "--font") == 0)
            font = v;
        else if (strcmp(k, "--pool") == 0)
            pool_exe = v;
        else if (strcmp(k, "--out") == 0)
            out_path = v;
        else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    if (!doc_path || seconds <= 0) {
        fprintf(stderr, "usage: bench_render_bench --doc FILE [--lines N] [--seconds S] "
                        "[--min-renders N] [--font PATH] [--pool EXE] [--out FILE.pdf]\n");
        return 2;
    }
    size_t len = 0;
    char *doc = read_file(doc_path, &len);
    if (!doc) {
        fprintf(stderr, "cannot read %s\n", doc_path);
        return 1;
    }
    if (lines > 0) {
        char *d = with_lines(doc, lines);
        free(doc);
        if (!(doc = d)) {
            fprintf(stderr, "%s: no items to repeat\n", doc_path);
            return 1;
        }
        len = strlen(doc);
    }
    cJSON *parsed = cJSON_Parse(doc);
    int nlines = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(parsed, "items"));
    cJSON_Delete(parsed);

    fp_err err = {0};
    fp_pdf_renderer *r = NULL;
    fp_pdf_pool *pool = NULL;
    if (pool_exe) {
        fp_pdf_pool_opts o = {.exe = pool_exe, .font_path = font, .workers = 1};
        if (fp_pdf_pool_new(&o, &pool, &err) < 0) {
            fprintf(stderr, "pool: %s\n", err.msg);
            return 1;
        }
    } else if (fp_pdf_renderer_new(font, &r, &err) < 0) {
        fprintf(stderr, "renderer: %s\n", err.msg);
        return 1;
    }

    fp_buf b;
    fp_buf_init(&b, FP_PDF_MAX_PDF);
    int pages = 0, renders = 0;
    size_t bytes = 0;
    double cpu0 = 0, wall0 = 0, kids0 = 0;
    for (int i = -3;; i++) {
        if (i == 0) {
            cpu0 = now(CLOCK_PROCESS_CPUTIME_ID);
            wall0 = now(CLOCK_MONOTONIC);
            kids0 = pool ? children_cpu() : 0;
        }
        b.len = 0;
        int rc = pool ? fp_pdf_pool_render(pool, doc, len, &b, &pages, &err)
                      : fp_pdf_render(r, doc, len, &b, &pages, &err);
        if (rc < 0) {
            fprintf(stderr, "render: %s\n", err.msg);
            return 1;
        }
        bytes = b.len;
        if (i < 0)
            continue;
        renders++;
        /* the pool's CPU time is summed every 50 renders (a /proc scan) */
        double spent = now(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
        if (pool && renders % 50 == 0)
            spent += children_cpu() - kids0;
        else if (pool)
            continue;
        if (spent >= seconds && renders >= min_renders)
            break;
    }
    double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - cpu0, wall = now(CLOCK_MONOTONIC) - wall0;
    double worker_cpu = pool ? children_cpu() - kids0 : 0;
    if (out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(b.p, 1, b.len, f) != b.len) {
            fprintf(stderr, "cannot write %s\n", out_path);
            return 1;
        }
        fclose(f);
    }
    if (pool)
        printf("render_bench mode=pool lines=%d pages=%d renders=%d caller_cpu_s=%.3f "
               "worker_cpu_s=%.3f wall_s=%.3f pages_per_cpu_s=%.1f ms_per_pdf_cpu=%.3f "
               "caller_ms_per_pdf_cpu=%.3f ms_per_pdf_wall=%.3f pdf_bytes=%zu\n",
               nlines, pages, renders, cpu, worker_cpu, wall, pages * renders / (cpu + worker_cpu),
               1000 * (cpu + worker_cpu) / renders, 1000 * cpu / renders, 1000 * wall / renders,
               bytes);
    else
        printf("render_bench mode=inproc lines=%d pages=%d renders=%d cpu_s=%.3f wall_s=%.3f "
               "pages_per_cpu_s=%.1f ms_per_pdf_cpu=%.3f ms_per_pdf_wall=%.3f pdf_bytes=%zu\n",
               nlines, pages, renders, cpu, wall, pages * renders / cpu, 1000 * cpu / renders,
               1000 * wall / renders, bytes);
    fp_buf_free(&b);
    fp_pdf_renderer_free(r);
    fp_pdf_pool_free(pool);
    free(doc);
    return 0;
}
