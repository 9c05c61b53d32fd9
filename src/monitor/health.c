/* health.c — health checks, the store breaker and degraded mode (health.h). */
#include "fapiao/health.h"
#include "fapiao/backup.h"
#include "fapiao/clock.h"
#include "fapiao/metrics.h"
#include "fapiao/jobs.h"
#include "fapiao/outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

enum { CK_DB_WRITE, CK_DISK, CK_BREAKER, CK_CERT, CK_OUTBOX, CK_RANGE, CK_PDF, CK_FAILSTOP, CK__N };
static const char *const ck_names[CK__N] = {"database_write", "disk_free",     "store_breaker",
                                            "certificate",    "outbox",        "number_range",
                                            "pdf_storage",    "store_failstop"};

typedef struct check {
    int ok, warning, has_value;
    int64_t value;
    char reason[200];
} check;

struct fp_health {
    fp_health_opts o;
    char *data_dir, *cert_path;
    fp_breaker br;
    pthread_mutex_t mu; /* checks[], times */
    pthread_cond_t cv;
    check ck[CK__N];
    int degraded;
    int64_t last_probe_ms, last_cert_ms, probe_us, cert_expiry, disk_free;
    /* the outbox's job counts: a scan of the unfinished jobs, so it is
     * taken here, off the HTTP threads, and /metrics shows this copy */
    fp_jobs_counts jobs;
    int have_jobs;
    int64_t jobs_next_ms;
    /* the outbox pause (docs/storage-space.md): the last round's verdict */
    int outbox_paused;
    char pause_why[200];
    /* a write probe in flight since (mono ms, 0: none): a stalled disk
     * holds it, and the checks above are then as old as it is */
    int64_t probe_since;
    int slow_ms;
    uint64_t seen_slow; /* the store's slow-write count at the last round */
    char reserve_path[4200];
    int stopping;
    pthread_t th;
    int started;
    atomic_uint_fast64_t degraded_total;
};

static int64_t reserve_keep(fp_health *h, int64_t free_bytes);

static void on_outcome(int ok, void *arg)
{
    fp_health *h = arg;
    fp_breaker_record(&h->br, fp_clock_mono_ms(h->o.clock), ok);
}

static int64_t cert_not_after(const char *path, char *why, size_t cap)
{
    gnutls_datum_t d = {NULL, 0};
    if (gnutls_load_file(path, &d) < 0) {
        snprintf(why, cap, "cannot read %s", path);
        return -1;
    }
    gnutls_x509_crt_t crt;
    int64_t t = -1;
    if (gnutls_x509_crt_init(&crt) == 0) {
        if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) == 0)
            t = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
        else
            snprintf(why, cap, "%s is not a PEM certificate", path);
        gnutls_x509_crt_deinit(crt);
    }
    gnutls_free(d.data);
    return t;
}

/* The numbers left, read now (a cheap sum): /readyz must see an import or
 * the last number used at once, not a second later. */
static void range_check(fp_health *h, check *c)
{
    int64_t remaining = 0;
    memset(c, 0, sizeof *c);
    c->ok = fp_store_numbers_remaining(h->o.store, 0, &remaining) == 0 && remaining > 0;
    c->has_value = 1;
    c->value = remaining;
    c->warning = c->ok && remaining < h->o.range_warn;
    if (!c->ok)
        snprintf(c->reason, sizeof c->reason, "no invoice numbers left (fapiao ranges import)");
}

/* The store's fail-stop (docs/storage.md): sticky, unlike everything
 * else here; the open database file and WAL are compared with their paths
 * every round (a deleted or replaced file trips it). */
static void failstop_check(fp_health *h, check *c)
{
    char why[320];
    memset(c, 0, sizeof *c);
    fp_store_check_files(h->o.store, NULL);
    int cause = fp_store_failstop(h->o.store, why, sizeof why);
    c->ok = cause == FP_FAILSTOP_NONE;
    if (!c->ok)
        snprintf(c->reason, sizeof c->reason,
                 "%s: %.100s; writes stopped until an operator checks "
                 "the store and restarts (fapiao check)",
                 fp_store_failstop_name(cause), why);
}

/* The write probe, through the breaker (an open breaker is only probed
 * when it allows: half-open): its latency in µs, or -1 when not probed. */
static int64_t probe_check(fp_health *h, int64_t now, check *c)
{
    int64_t probe_us = -1;
    fp_breaker_state bs = fp_breaker_get(&h->br, now);
    if (bs == FP_BREAKER_OPEN) {
        c->ok = 0;
        snprintf(c->reason, sizeof c->reason, "not probed: the store breaker is open");
    } else if (fp_breaker_allow(&h->br, now, NULL) || bs == FP_BREAKER_CLOSED) {
        /* closed: allow() always says yes; half-open: we are the probe */
        fp_err err = {0};
        int64_t t0 = fp_mono_us(); /* a latency, measured on the real clock */
        pthread_mutex_lock(&h->mu);
        h->probe_since = now;
        pthread_mutex_unlock(&h->mu);
        int rc = fp_store_probe_write(h->o.store, &err); /* records the outcome */
        pthread_mutex_lock(&h->mu);
        h->probe_since = 0;
        pthread_mutex_unlock(&h->mu);
        probe_us = fp_mono_us() - t0;
        c->ok = rc == 0;
        c->has_value = 1;
        c->value = probe_us / 1000;
        if (rc < 0)
            snprintf(c->reason, sizeof c->reason, "%.190s", err.msg);
    }
    return probe_us;
}

/* The server certificate's days left (notAfter re-read once a minute). */
static void cert_check(fp_health *h, int cert_due, int64_t *expiry, check *c)
{
    if (cert_due && h->cert_path) {
        char why[160] = "";
        *expiry = cert_not_after(h->cert_path, why, sizeof why);
        c->reason[0] = 0;
        if (*expiry < 0)
            snprintf(c->reason, sizeof c->reason, "%s", why);
    }
    if (h->cert_path && *expiry >= 0) {
        int64_t left = *expiry - fp_clock_wall_ms(h->o.clock) / 1000; /* notAfter: wall time */
        c->ok = left > 0;
        c->warning = left > 0 && left < 30 * 86400;
        c->has_value = 1;
        c->value = left / 86400;
        if (left <= 0)
            snprintf(c->reason, sizeof c->reason, "the server certificate expired %lld days ago",
                     (long long)(-left / 86400));
        else if (c->warning)
            snprintf(c->reason, sizeof c->reason, "the server certificate expires in %lld days",
                     (long long)(left / 86400));
        else
            c->reason[0] = 0;
    } else if (!h->cert_path) {
        c->ok = 1;
    }
}

/* The outbox's backlog: pending jobs and the oldest one's age. */
static void outbox_check(fp_health *h, int64_t now, check *c)
{
    /* Counting scans every unfinished job: with a backlog of 100,000 that
     * is ~100 ms.  Counted at most every 20 times as long as the last count
     * took (and every second at most), so it never costs more than ~5 % of
     * a core; between counts the last one stands. */
    fp_jobs_counts jc;
    pthread_mutex_lock(&h->mu);
    int count_due = now >= h->jobs_next_ms;
    int have_jc = h->have_jobs;
    jc = h->jobs;
    pthread_mutex_unlock(&h->mu);
    if (count_due) {
        fp_err err = {0};
        int64_t t0 = fp_clock_mono_ms(h->o.clock);
        int ok = fp_jobs_count(h->o.store, &jc, &err) == 0;
        int64_t took = fp_clock_mono_ms(h->o.clock) - t0;
        pthread_mutex_lock(&h->mu); /* fp_health_report reads them meanwhile */
        if (ok) {
            h->jobs = jc;
            h->have_jobs = have_jc = 1;
        }
        h->jobs_next_ms = now + (took * 20 > 1000 ? took * 20 : 1000);
        pthread_mutex_unlock(&h->mu);
    }
    c->ok = 1;
    if (have_jc) {
        int64_t pending = jc.n[FP_JOB_RENDER][FP_JS_PENDING] + jc.n[FP_JOB_NOTIFY][FP_JS_PENDING];
        int64_t age = jc.oldest_pending_at
                          ? (fp_clock_steady_ms(h->o.clock) - jc.oldest_pending_at) / 1000
                          : 0;
        c->has_value = 1;
        c->value = pending;
        c->warning = pending > h->o.outbox_backlog_warn || age > h->o.outbox_age_warn_s;
        if (c->warning)
            snprintf(c->reason, sizeof c->reason, "%lld jobs pending, the oldest for %lld s",
                     (long long)pending, (long long)age);
    }
}

/* One round of checks; the probe only when due (or while anything is
 * wrong).  Runs on the health thread, and once in fp_health_start. */
static void run_checks(fp_health *h, int force_probe)
{
    int64_t now = fp_clock_mono_ms(h->o.clock);
    check ck[CK__N];
    memset(ck, 0, sizeof ck);
    pthread_mutex_lock(&h->mu);
    int degraded = h->degraded;
    /* a slow group commit since the last round: probe now, so readiness
     * says at once whether the disk is still stalled */
    fp_store_stats sst;
    fp_store_get_stats(h->o.store, &sst);
    int slow_commit = sst.slow_writes != h->seen_slow;
    h->seen_slow = sst.slow_writes;
    int probe_due = force_probe || degraded || slow_commit ||
                    now - h->last_probe_ms >= h->o.interval_ms || !h->last_probe_ms;
    int cert_due = now - h->last_cert_ms >= 60000 || !h->last_cert_ms;
    ck[CK_DB_WRITE] = h->ck[CK_DB_WRITE];
    ck[CK_CERT] = h->ck[CK_CERT];
    int64_t expiry = h->cert_expiry;
    pthread_mutex_unlock(&h->mu);

    int64_t probe_us = probe_due ? probe_check(h, now, &ck[CK_DB_WRITE]) : -1;

    struct statvfs vfs;
    int64_t free_bytes = -1;
    if (statvfs(h->data_dir, &vfs) == 0)
        free_bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
    free_bytes = reserve_keep(h, free_bytes);
    ck[CK_DISK].ok = free_bytes >= h->o.min_free_bytes;
    ck[CK_DISK].has_value = 1;
    ck[CK_DISK].value = free_bytes;
    /* the write probe failing for a full disk is the disk's fault too */
    int store_full = !ck[CK_DB_WRITE].ok && strstr(ck[CK_DB_WRITE].reason, "disk is full");
    pthread_mutex_lock(&h->mu);
    int was_paused = h->outbox_paused;
    pthread_mutex_unlock(&h->mu);
    /* paused below the threshold; resumed 1/8 above it (no flapping) */
    int64_t resume_at = h->o.outbox_min_free_bytes + h->o.outbox_min_free_bytes / 8;
    int paused = free_bytes >= 0 && (free_bytes < h->o.outbox_min_free_bytes ||
                                     (was_paused && free_bytes < resume_at));
    paused |= store_full;
    char pause_why[200] = "";
    if (store_full)
        snprintf(pause_why, sizeof pause_why, "the store reports a full disk");
    else if (paused)
        snprintf(pause_why, sizeof pause_why,
                 "%lld bytes free, below the outbox threshold of %lld (resumes at %lld)",
                 (long long)free_bytes, (long long)h->o.outbox_min_free_bytes,
                 (long long)resume_at);
    ck[CK_DISK].warning = ck[CK_DISK].ok && paused;
    if (free_bytes < 0)
        snprintf(ck[CK_DISK].reason, sizeof ck[CK_DISK].reason, "statvfs %s: %s", h->data_dir,
                 strerror(errno));
    else if (!ck[CK_DISK].ok)
        snprintf(ck[CK_DISK].reason, sizeof ck[CK_DISK].reason,
                 "%lld bytes free, below the minimum of %lld: writes and the outbox are paused",
                 (long long)free_bytes, (long long)h->o.min_free_bytes);
    else if (paused)
        snprintf(ck[CK_DISK].reason, sizeof ck[CK_DISK].reason, "outbox paused: %.180s", pause_why);

    /* PDF storage: renders waiting for space on the PDF directory's disk */
    ck[CK_PDF].ok = 1;
    if (h->o.outbox &&
        fp_outbox_pdf_space_short(h->o.outbox, ck[CK_PDF].reason, sizeof ck[CK_PDF].reason))
        ck[CK_PDF].ok = 0;

    fp_breaker_state bs = fp_breaker_get(&h->br, now);
    ck[CK_BREAKER].ok = bs == FP_BREAKER_CLOSED;
    ck[CK_BREAKER].has_value = 1;
    ck[CK_BREAKER].value = bs;
    if (!ck[CK_BREAKER].ok)
        snprintf(ck[CK_BREAKER].reason, sizeof ck[CK_BREAKER].reason,
                 "store circuit breaker %s after failed writes", fp_breaker_state_name(bs));

    cert_check(h, cert_due, &expiry, &ck[CK_CERT]);

    outbox_check(h, now, &ck[CK_OUTBOX]);

    range_check(h, &ck[CK_RANGE]);
    failstop_check(h, &ck[CK_FAILSTOP]);

    int now_degraded =
        !ck[CK_DB_WRITE].ok || !ck[CK_DISK].ok || !ck[CK_BREAKER].ok || !ck[CK_FAILSTOP].ok;
    pthread_mutex_lock(&h->mu);
    memcpy(h->ck, ck, sizeof ck);
    if (probe_due)
        h->last_probe_ms = now;
    if (probe_us >= 0)
        h->probe_us = probe_us;
    if (cert_due)
        h->last_cert_ms = now;
    h->cert_expiry = expiry;
    h->disk_free = free_bytes;
    if (paused != h->outbox_paused)
        fprintf(stderr, "{\"event\":\"outbox_%s\",\"reason\":\"%s\"}\n",
                paused ? "paused" : "resumed", paused ? pause_why : "free space is back");
    h->outbox_paused = paused;
    snprintf(h->pause_why, sizeof h->pause_why, "%s", pause_why);
    int was = h->degraded;
    h->degraded = now_degraded;
    pthread_mutex_unlock(&h->mu);
    if (now_degraded != was) {
        const char *why = !ck[CK_FAILSTOP].ok   ? ck[CK_FAILSTOP].reason
                          : !ck[CK_BREAKER].ok  ? ck[CK_BREAKER].reason
                          : !ck[CK_DB_WRITE].ok ? ck[CK_DB_WRITE].reason
                                                : ck[CK_DISK].reason;
        if (now_degraded) {
            atomic_fetch_add(&h->degraded_total, 1);
            fprintf(stderr, "{\"event\":\"degraded\",\"reason\":\"%s\"}\n", why);
        } else {
            fprintf(stderr, "{\"event\":\"recovered\"}\n");
        }
    }
}

/* The reserve file (health.h): created (allocated, not sparse) once
 * min_free + reserve is free, deleted when less than the reserve is left.
 * Returns the free space after what it did. */
static int64_t reserve_keep(fp_health *h, int64_t free_bytes)
{
    if (h->o.reserve_bytes <= 0 || free_bytes < 0)
        return free_bytes;
    struct stat sb;
    int have = stat(h->reserve_path, &sb) == 0;
    if (have && free_bytes < h->o.reserve_bytes) {
        if (unlink(h->reserve_path) == 0) {
            fprintf(stderr,
                    "{\"event\":\"reserve_released\",\"bytes\":%lld,\"free_bytes\":%lld,"
                    "\"path\":\"%s\"}\n",
                    (long long)sb.st_size, (long long)free_bytes, h->reserve_path);
            return free_bytes + (int64_t)sb.st_blocks * 512;
        }
    } else if (!have && free_bytes >= h->o.min_free_bytes + h->o.reserve_bytes) {
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.tmp", h->reserve_path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            int rc = posix_fallocate(fd, 0, (off_t)h->o.reserve_bytes);
            int ok = rc == 0 && fsync(fd) == 0;
            close(fd);
            if (ok && rename(tmp, h->reserve_path) == 0)
                return free_bytes - h->o.reserve_bytes;
            unlink(tmp);
        }
    }
    return free_bytes;
}

/* What the stored checks cannot know while the health thread waits for a
 * stalled probe: the probe's age, and the breaker as of now.  Under h->mu. */
static int overlay_live(fp_health *h, check *ck, int64_t now)
{
    int live_bad = 0;
    if (h->probe_since && h->slow_ms > 0 && now - h->probe_since > h->slow_ms) {
        ck[CK_DB_WRITE].ok = 0;
        ck[CK_DB_WRITE].has_value = 1;
        ck[CK_DB_WRITE].value = now - h->probe_since;
        snprintf(ck[CK_DB_WRITE].reason, sizeof ck[CK_DB_WRITE].reason,
                 "write probe running for %lld ms, over the %d ms limit: the disk is stalled",
                 (long long)(now - h->probe_since), h->slow_ms);
        live_bad = 1;
    }
    fp_breaker_state bs = fp_breaker_get(&h->br, now);
    ck[CK_BREAKER].ok = bs == FP_BREAKER_CLOSED;
    ck[CK_BREAKER].has_value = 1;
    ck[CK_BREAKER].value = bs;
    if (!ck[CK_BREAKER].ok) {
        snprintf(ck[CK_BREAKER].reason, sizeof ck[CK_BREAKER].reason,
                 "store circuit breaker %s after failed or slow writes", fp_breaker_state_name(bs));
        live_bad = 1;
    } else {
        ck[CK_BREAKER].reason[0] = 0;
    }
    return live_bad;
}

int fp_health_release_reserve(const char *data_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fapiao.reserve", data_dir);
    return unlink(path) == 0;
}

int fp_health_outbox_paused(fp_health *h, char *why, size_t cap)
{
    pthread_mutex_lock(&h->mu);
    int paused = h->outbox_paused;
    if (paused && why)
        snprintf(why, cap, "%s", h->pause_why);
    pthread_mutex_unlock(&h->mu);
    return paused;
}

static void *health_main(void *arg)
{
    fp_health *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        pthread_mutex_unlock(&h->mu);
        run_checks(h, 0);
        /* a quiet audit log gets its tail signed too (at most once a
         * minute; nothing happens when nothing is new) */
        fp_store_audit_checkpoint(h->o.store, NULL);
        if (h->o.on_round) /* the checks ran: this thread is not stuck */
            h->o.on_round(h->o.round_arg);
        pthread_mutex_lock(&h->mu);
        /* a second on the monotonic clock: a wall-clock step neither
         * stalls the checks nor runs them early */
        int64_t until = fp_clock_mono_ns(h->o.clock) + 1000000000LL;
        while (!h->stopping && fp_clock_wait_until(h->o.clock, &h->cv, &h->mu, until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int fp_health_start(const fp_health_opts *o, fp_health **out, fp_err *err)
{
    fp_health *h = calloc(1, sizeof *h);
    if (!h)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    h->o = *o;
    if (h->o.interval_ms <= 0)
        h->o.interval_ms = 15000;
    if (h->o.min_free_bytes <= 0)
        h->o.min_free_bytes = 64LL << 20;
    if (h->o.outbox_min_free_bytes <= 0)
        h->o.outbox_min_free_bytes = 4 * h->o.min_free_bytes;
    if (h->o.reserve_bytes == 0)
        h->o.reserve_bytes = h->o.min_free_bytes / 4;
    snprintf(h->reserve_path, sizeof h->reserve_path, "%s/fapiao.reserve",
             o->data_dir ? o->data_dir : ".");
    if (h->o.outbox_backlog_warn <= 0)
        h->o.outbox_backlog_warn = 10000;
    if (h->o.outbox_age_warn_s <= 0)
        h->o.outbox_age_warn_s = 600;
    if (h->o.range_warn <= 0)
        h->o.range_warn = 1000;
    fp_breaker_opts bo = o->store_breaker;
    if (!bo.open_ms)
        bo.open_ms = 2000;
    if (!bo.max_open_ms)
        bo.max_open_ms = 30000;
    h->data_dir = strdup(o->data_dir ? o->data_dir : ".");
    h->cert_path = o->cert_path ? strdup(o->cert_path) : NULL;
    fp_breaker_init(&h->br, "store", &bo);
    pthread_mutex_init(&h->mu, NULL);
    fp_cond_init_mono(&h->cv);
    for (int i = 0; i < CK__N; i++)
        h->ck[i].ok = 1;
    if (!h->data_dir || (o->cert_path && !h->cert_path)) {
        fp_health_stop(h);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    fp_store_stats sst;
    fp_store_get_stats(o->store, &sst);
    h->slow_ms = sst.slow_write_ms;
    fp_store_set_outcome_hook(o->store, on_outcome, h);
    run_checks(h, 1);
    if (pthread_create(&h->th, NULL, health_main, h) != 0) {
        fp_health_stop(h);
        return fp_fail(err, FP_EIO, "cannot start the health thread");
    }
    h->started = 1;
    *out = h;
    return 0;
}

void fp_health_stop(fp_health *h)
{
    if (!h)
        return;
    fp_store_set_outcome_hook(h->o.store, NULL, NULL);
    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->stopping = 1;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->th, NULL);
    }
    fp_breaker_destroy(&h->br);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h->data_dir);
    free(h->cert_path);
    free(h);
}

int fp_health_jobs(fp_health *h, fp_jobs_counts *out)
{
    pthread_mutex_lock(&h->mu);
    int have = h->have_jobs;
    if (have)
        *out = h->jobs;
    pthread_mutex_unlock(&h->mu);
    return have ? 0 : -1;
}

int fp_health_write_allowed(fp_health *h, char *zh, size_t zh_cap, char *en, size_t en_cap,
                            int *retry_after_s)
{
    int64_t now = fp_clock_mono_ms(h->o.clock), retry_at = 0;
    fp_breaker_state bs;
    fp_breaker_snapshot(&h->br, now, &bs, &retry_at, NULL);
    pthread_mutex_lock(&h->mu);
    check live[CK__N];
    memcpy(live, h->ck, sizeof live);
    overlay_live(h, live, now);
    int degraded = h->degraded || bs != FP_BREAKER_CLOSED || !live[CK_DB_WRITE].ok;
    char rzh[256] = "", ren[256] = "";
    if (bs != FP_BREAKER_CLOSED) {
        snprintf(rzh, sizeof rzh, "存储熔断器%s：写入连续失败",
                 bs == FP_BREAKER_OPEN ? "已打开" : "半开探测中");
        snprintf(ren, sizeof ren, "store circuit breaker %s after failed writes",
                 fp_breaker_state_name(bs));
    } else if (!live[CK_DB_WRITE].ok) {
        snprintf(rzh, sizeof rzh, "数据库写入检查失败：%.200s", live[CK_DB_WRITE].reason);
        snprintf(ren, sizeof ren, "database write check failing: %.200s", live[CK_DB_WRITE].reason);
    } else if (!h->ck[CK_DISK].ok) {
        snprintf(rzh, sizeof rzh, "磁盘空间不足：%.200s", h->ck[CK_DISK].reason);
        snprintf(ren, sizeof ren, "disk: %.200s", h->ck[CK_DISK].reason);
    }
    pthread_mutex_unlock(&h->mu);
    if (!degraded)
        return 1;
    /* until the breaker allows its next probe, rounded up, plus a second
     * for the probe itself */
    int64_t wait = retry_at > now ? retry_at - now : 1000;
    *retry_after_s = (int)((wait + 999) / 1000) + 1;
    snprintf(zh, zh_cap, "服务降级，暂停开票（%s），请在 %d 秒后重试", rzh, *retry_after_s);
    snprintf(en, en_cap, "Degraded: writes are paused (%s); retry in %d s", ren, *retry_after_s);
    return 0;
}

int fp_health_report(fp_health *h, fp_jw *w, int *degraded)
{
    pthread_mutex_lock(&h->mu);
    check ck[CK__N];
    memcpy(ck, h->ck, sizeof ck);
    *degraded = h->degraded | overlay_live(h, ck, fp_clock_mono_ms(h->o.clock));
    pthread_mutex_unlock(&h->mu);
    range_check(h, &ck[CK_RANGE]);
    failstop_check(h, &ck[CK_FAILSTOP]); /* now, not a second ago */
    int ready = 1;
    for (int i = 0; i < CK__N; i++) {
        fp_jw_obj_open(w);
        fp_jw_kstr(w, "name", ck_names[i]);
        fp_jw_kbool(w, "ok", ck[i].ok);
        if (ck[i].warning || i == CK_RANGE)
            fp_jw_kbool(w, "warning", ck[i].warning);
        if (i == CK_RANGE)
            fp_jw_kint(w, "warn_below", h->o.range_warn);
        if (i == CK_DISK) { /* the thresholds, highest first */
            fp_jw_kint(w, "outbox_pause_below", h->o.outbox_min_free_bytes);
            fp_jw_kint(w, "degrade_below", h->o.min_free_bytes);
            fp_jw_kint(w, "reserve", h->o.reserve_bytes > 0 ? h->o.reserve_bytes : 0);
            fp_jw_kbool(w, "outbox_paused", fp_health_outbox_paused(h, NULL, 0));
        }
        if (i == CK_OUTBOX && h->o.outbox) { /* the render backlog (docs/outbox.md) */
            fp_outbox_backlog bl;
            fp_outbox_backlog_get(h->o.outbox, &bl);
            uint64_t all = bl.rendered_bg + bl.rendered_od;
            fp_jw_kstr(w, "render_mode", bl.on_demand ? "on_demand" : "background");
            fp_jw_kint(w, "render_backlog", bl.pending);
            fp_jw_kint(w, "render_oldest_s", bl.oldest_ms / 1000);
            fp_jw_kint(w, "pdfs_rendered_on_demand", (int64_t)bl.rendered_od);
            fp_jw_kint(w, "pdfs_on_demand_percent",
                       all ? (int64_t)(bl.rendered_od * 100 / all) : 0);
        }
        if (ck[i].has_value)
            fp_jw_kint(w,
                       i == CK_DB_WRITE  ? "latency_ms"
                       : i == CK_DISK    ? "free_bytes"
                       : i == CK_BREAKER ? "state"
                       : i == CK_CERT    ? "days_left"
                       : i == CK_OUTBOX  ? "pending"
                                         : "remaining",
                       ck[i].value);
        if (ck[i].reason[0])
            fp_jw_kstr(w, "reason", ck[i].reason);
        fp_jw_obj_close(w);
        ready &= ck[i].ok || i == CK_OUTBOX;
    }
    if (h->o.archiver) { /* a warning only: issuing goes on (docs/recovery.md) */
        fp_archive_stats as;
        fp_archiver_stats(h->o.archiver, &as);
        int warn = h->o.archive_lag_warn_s > 0 ? h->o.archive_lag_warn_s : 60;
        fp_jw_obj_open(w);
        fp_jw_kstr(w, "name", "archive");
        fp_jw_kbool(w, "ok", 1);
        fp_jw_kbool(w, "warning", as.lag_s > warn || as.command_pending > 0);
        fp_jw_kint(w, "lag_seconds", as.lag_s);
        fp_jw_kint(w, "warn_above", warn);
        fp_jw_kint(w, "command_pending", as.command_pending);
        if (as.lag_s > warn)
            fp_jw_kstr(w, "reason", "the archive is behind (归档落后)");
        fp_jw_obj_close(w);
    }
    return ready;
}

void fp_health_metrics(fp_health *h, fp_buf *b)
{
    pthread_mutex_lock(&h->mu);
    check ck[CK__N];
    memcpy(ck, h->ck, sizeof ck);
    int degraded = h->degraded;
    int64_t probe_us = h->probe_us, expiry = h->cert_expiry, disk = h->disk_free;
    int paused = h->outbox_paused;
    pthread_mutex_unlock(&h->mu);
    /* through the registry's checks and formatting (metrics.h) */
    fp_metrics_emit(b, "fapiao_outbox_paused", "1 while the outbox waits for free disk space.",
                    FP_METRICS_GAUGE, paused, 1);
    fp_metrics_scrape f;
    if (fp_metrics_family_begin(
            b, &f,
            &(fp_metrics_opts){.name = "fapiao_health_check_ok",
                               .help = "Health check passing (1) or failing (0).",
                               .type = FP_METRICS_GAUGE,
                               .labels = {"check"}}) == 0)
        for (int i = 0; i < CK__N; i++)
            fp_metrics_family_sample(b, &f, (const char *[]){ck_names[i]}, ck[i].ok);
    fp_metrics_emit(b, "fapiao_degraded", "1 while writes are refused with 503 DEGRADED.",
                    FP_METRICS_GAUGE, degraded, 1);
    fp_metrics_emit(b, "fapiao_degraded_total", "Times the service entered degraded mode.",
                    FP_METRICS_COUNTER, (int64_t)atomic_load(&h->degraded_total), 1);
    fp_metrics_emit(b, "fapiao_store_probe_seconds", "Duration of the last write probe.",
                    FP_METRICS_GAUGE, probe_us, 1000000);
    if (disk >= 0)
        fp_metrics_emit(b, "fapiao_disk_free_bytes", "Free space for the data directory.",
                        FP_METRICS_GAUGE, disk, 1);
    if (h->cert_path && expiry > 0)
        fp_metrics_emit(b, "fapiao_certificate_expiry_timestamp_seconds",
                        "When the server certificate expires.", FP_METRICS_GAUGE, expiry, 1);
    fp_metrics_emit(b, "fapiao_store_failstop",
                    "1 while writes are stopped after an I/O error, corruption or a replaced "
                    "database file (docs/storage.md).",
                    FP_METRICS_GAUGE, fp_store_failstop(h->o.store, NULL, 0) != FP_FAILSTOP_NONE,
                    1);
    if (h->o.archiver) {
        fp_archive_stats as;
        fp_archiver_stats(h->o.archiver, &as);
        fp_metrics_emit(b, "fapiao_archive_last_success_timestamp_seconds",
                        "When everything committed until then was last fsynced in the archive.",
                        FP_METRICS_GAUGE, as.last_ok_ms, 1000);
        fp_metrics_emit(b, "fapiao_archive_lag_seconds",
                        "Seconds since the archive last held every commit (RPO on one node).",
                        FP_METRICS_GAUGE, as.lag_s, 1);
        fp_metrics_emit(b, "fapiao_backup_last_full_timestamp_seconds",
                        "When the newest full backup of the archive was taken.", FP_METRICS_GAUGE,
                        as.last_full_ms, 1000);
        fp_metrics_emit(b, "fapiao_archive_records_total", "Transactions archived.",
                        FP_METRICS_COUNTER, as.records, 1);
        fp_metrics_emit(b, "fapiao_archive_command_failures_total",
                        "archive-command runs that failed (each is retried).", FP_METRICS_COUNTER,
                        as.command_failures, 1);
        fp_metrics_emit(b, "fapiao_archive_command_pending",
                        "Archived files the archive-command has not taken yet.", FP_METRICS_GAUGE,
                        as.command_pending, 1);
        fp_metrics_emit(b, "fapiao_backup_last_verify_ok",
                        "The last `fapiao backup verify` of the archive: 1 passed, 0 failed, -1 "
                        "never run.",
                        FP_METRICS_GAUGE, as.last_verify, 1);
        /* a verify nobody ran for weeks is the "stale backup" of issue 18 */
        fp_metrics_emit(b, "fapiao_backup_last_verify_timestamp_seconds",
                        "When the last `fapiao backup verify` of the archive ended (0 never).",
                        FP_METRICS_GAUGE, as.last_verify_ms, 1000);
    }
    fp_breaker_state bs;
    uint64_t opened;
    fp_breaker_snapshot(&h->br, fp_clock_mono_ms(h->o.clock), &bs, NULL, &opened);
    fp_metrics_emit(b, "fapiao_store_breaker_state",
                    "The store circuit breaker (0 closed, 1 open, 2 half-open).", FP_METRICS_GAUGE,
                    (int)bs, 1);
    fp_metrics_emit(b, "fapiao_store_breaker_opened_total", "Times the store breaker opened.",
                    FP_METRICS_COUNTER, (int64_t)opened, 1);
}
