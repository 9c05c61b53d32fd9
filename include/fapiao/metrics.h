/* metrics.h — a small metrics registry for the Prometheus text exposition
 * format (version 0.0.4), served at /metrics.
 *
 * A registry (fp_metrics) holds metric families, registered once at
 * startup, and collector callbacks; fp_metrics_write appends the whole
 * exposition, families and collectors in registration order, HELP and TYPE
 * once per family.
 *
 * A family has a name, help text, a type (counter, gauge, histogram) and up
 * to FP_METRICS_MAX_LABELS label names.  Each distinct set of label values
 * is one series (fp_metric), created up front or on first use, up to the
 * family's cap; fp_metrics_child finds it without a lock (a mutex is taken
 * only to create one).  Hot-path updates are relaxed atomic adds on 64-bit
 * integers: a histogram observation is a binary search over the bucket
 * bounds and two atomic adds (its bucket and the sum; _count is the sum of
 * the buckets, so `le="+Inf"` and _count always agree).  No floating point
 * anywhere: values are integers in a unit of the caller's choice and a
 * family's `scale` (a power of ten) turns them into the exposed base unit —
 * latency observed in microseconds with scale 1000000 is exposed in
 * seconds, the bounds printed like Prometheus does ("0.0001", "2.5").
 *
 * Names are checked at registration against the format's syntax and the
 * rules `promtool check metrics` lints (snake_case, no ':', counters and
 * only counters end in _total, _bucket/_count/_sum reserved for
 * histograms, no type names, no abbreviated or non-base units), so a
 * registry that accepted its families produces a lint-clean exposition.
 *
 * Every update function accepts NULL as a no-op, so a series refused
 * (cap reached, invalid label value, out of memory) costs nothing on the
 * hot path; refusals are counted and exposed as
 * fapiao_metrics_series_dropped_total once there has been one. */
#ifndef FAPIAO_METRICS_H
#define FAPIAO_METRICS_H

#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/json.h"

#define FP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define FP_METRICS_MAX_LABELS   4
#define FP_METRICS_MAX_BOUNDS   64
#define FP_METRICS_MICRO        1000000 /* scale: integer microseconds, exposed as seconds */

typedef enum fp_metrics_type {
    FP_METRICS_COUNTER = 0,
    FP_METRICS_GAUGE = 1,
    FP_METRICS_HISTOGRAM = 2
} fp_metrics_type;

typedef struct fp_metrics fp_metrics;               /* the registry */
typedef struct fp_metrics_family fp_metrics_family; /* one name, all label sets */
typedef struct fp_metric fp_metric;                 /* one series (one label set) */

/* Request latency bounds in microseconds, 100 µs .. 10 s (use with
 * scale FP_METRICS_MICRO). */
#define FP_METRICS_LATENCY_US_N 16
extern const int64_t fp_metrics_latency_us[FP_METRICS_LATENCY_US_N];

typedef struct fp_metrics_opts {
    const char *name;
    const char *help; /* required, may not be empty */
    fp_metrics_type type;
    /* label names; fewer than FP_METRICS_MAX_LABELS end at the first NULL */
    const char *labels[FP_METRICS_MAX_LABELS];
    int64_t scale; /* exposed value = integer value / scale; power of ten; 0 means 1 */
    /* histogram only: strictly increasing upper bounds in the integer unit,
     * 1..FP_METRICS_MAX_BOUNDS of them (+Inf is implicit) */
    const int64_t *bounds;
    int nbounds;
    int max_children; /* distinct label sets; 0 means 64 */
    /* optional, called at scrape time before the family is printed (under
     * the registry's lock: it may set values, not register) */
    void (*collect)(fp_metrics_family *f, void *arg);
    void *arg;
} fp_metrics_opts;

/* NULL when out of memory.  fp_metrics_free(NULL) is a no-op; families and
 * series stay valid until fp_metrics_free. */
fp_metrics *fp_metrics_new(void);
void fp_metrics_free(fp_metrics *m);

/* Registers a family; *out (may be NULL) gets it.  FP_EINVAL for a bad
 * name, label name or option, FP_ECONFLICT when the name (or one of the
 * names a histogram exposes: _bucket, _sum, _count) is taken, FP_ENOMEM. */
int fp_metrics_register(fp_metrics *m, const fp_metrics_opts *o, fp_metrics_family **out,
                        fp_err *err);

/* Appends text at scrape time, after the families and collectors added
 * before it.  Runs under the registry's lock.  0 or FP_ENOMEM. */
int fp_metrics_add_collector(fp_metrics *m, void (*fn)(fp_buf *out, void *arg), void *arg);

/* The series of f with these label values (one per label name, in order;
 * NULL when f has no labels), created on first use.  NULL when f is NULL,
 * the cap is reached, a value is NULL, not UTF-8 or longer than 1024
 * bytes, or out of memory.  Thread-safe; lock-free once the series exists,
 * so keeping the pointer is only an optimisation. */
fp_metric *fp_metrics_child(fp_metrics_family *f, const char *const *values);

/* Hot path: relaxed atomics, NULL is a no-op.  Counters ignore n < 0. */
void fp_counter_add(fp_metric *c, int64_t n);
void fp_counter_inc(fp_metric *c);
void fp_gauge_set(fp_metric *g, int64_t v);
void fp_gauge_add(fp_metric *g, int64_t d); /* d < 0 to decrease */
void fp_hist_observe(fp_metric *h, int64_t v);

/* Current value of a counter or gauge, or a histogram's sum (0 for NULL);
 * fp_hist_count: a histogram's number of observations. */
int64_t fp_metric_value(const fp_metric *x);
uint64_t fp_hist_count(const fp_metric *h);

/* Appends the exposition.  0, or FP_ENOMEM when out overflowed. */
int fp_metrics_write(fp_metrics *m, fp_buf *out);

/* ---- for collectors: text they append must follow the same rules ---- */

/* 0 if name is acceptable for a family of this type (the checks of
 * fp_metrics_register, without the duplicate check), else FP_EINVAL. */
int fp_metrics_check_name(const char *name, fp_metrics_type type, fp_err *err);

/* Formats v / scale (scale a power of ten, 1..10^18) exactly, shortest
 * form: "0", "-3", "0.0001", "2.5".  buf needs 32 bytes; returns the
 * length. */
int fp_metrics_fmt(char *buf, int64_t v, int64_t scale);

/* Appends a label value escaped per the format (\\, \", \n). */
void fp_metrics_escape(fp_buf *out, const char *s);

/* A family a collector writes at scrape time, under the checks of
 * fp_metrics_register (name, type, help, label names, scale; no
 * histograms): begin appends HELP and TYPE, or nothing and FP_EINVAL when
 * o fails them (its samples are then dropped); each sample takes one value
 * per label name (NULL when none) and is dropped when a value is NULL, not
 * UTF-8 or longer than 1024 bytes.  All /metrics text goes through these
 * or through registered families: nothing is hand-written. */
typedef struct fp_metrics_scrape {
    const char *name;
    int nlabels;
    const char *labels[FP_METRICS_MAX_LABELS];
    int64_t scale;
    int ok;
} fp_metrics_scrape;
int fp_metrics_family_begin(fp_buf *out, fp_metrics_scrape *f, const fp_metrics_opts *o);
void fp_metrics_family_sample(fp_buf *out, const fp_metrics_scrape *f, const char *const *values,
                              int64_t v);

/* Appends a whole unlabelled family: HELP, TYPE and one sample (the same
 * checks; nothing when they fail). */
void fp_metrics_emit(fp_buf *out, const char *name, const char *help, fp_metrics_type type,
                     int64_t value, int64_t scale);

/* Process metrics (procstat.c) from /proc/self: process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds and
 * fapiao_process_threads.  A value that cannot be read is left out.
 * fp_metrics_process_collector has the collector signature (arg unused). */
void fp_metrics_process(fp_buf *out);
void fp_metrics_process_collector(fp_buf *out, void *arg);

#endif
