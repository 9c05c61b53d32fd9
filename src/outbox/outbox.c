/* outbox.c — job threads for the outbox (outbox.h): claiming and running
 * jobs (renders into atomic PDF files, webhook deliveries with their
 * breakers), retries, start/stop and the metrics.  On-demand renders and
 * the backlog keeper: ondemand.c; the shared state: internal.h. */
#include "internal.h"
#include "fapiao/clock.h"
#include "fapiao/metrics.h"
#include "fapiao/crypto.h"
#include "fapiao/jobs.h"
#include "fapiao/pdf.h"
#include "fapiao/webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const result_names[RES__N] = {"ok", "retry", "dead", "deferred", "lease_lost"};

void fp_outbox_set_pause(fp_outbox *ob, int (*fn)(void *arg, char *why, size_t cap), void *arg)
{
    pthread_mutex_lock(&ob->mu);
    ob->paused = fn;
    ob->paused_arg = arg;
    pthread_mutex_unlock(&ob->mu);
}

int fp_outbox_pdf_space_short(fp_outbox *ob, char *why, size_t cap)
{
    pthread_mutex_lock(&ob->smu);
    int short_ = ob->space_short;
    if (short_ && why)
        snprintf(why, cap, "PDF renders wait for disk space (retrying): %s", ob->space_why);
    pthread_mutex_unlock(&ob->smu);
    return short_;
}

static void space_state(fp_outbox *ob, int short_, const char *why)
{
    pthread_mutex_lock(&ob->smu);
    if (short_ != ob->space_short)
        fprintf(stderr, "{\"event\":\"pdf_storage\",\"state\":\"%s\",\"detail\":\"%s\"}\n",
                short_ ? "full" : "ok", short_ ? why : "");
    ob->space_short = short_;
    if (short_)
        snprintf(ob->space_why, sizeof ob->space_why, "%s", why);
    pthread_mutex_unlock(&ob->smu);
}

void fp_outbox_set_render_fault(fp_outbox *ob, int fault)
{
    atomic_store(&ob->render_fault, fault);
    fp_outbox_kick(ob); /* a lifted hold is seen at once */
}

int fp_outbox_render_fault(fp_outbox *ob)
{
    return atomic_load(&ob->render_fault);
}

/* ---- helpers ---- */

void fp_outbox_pdf_path(const char *pdf_dir, const char *number, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%.5s/%.3s/%s.pdf", pdf_dir, number,
             strlen(number) >= 17 ? number + 14 : "000", number);
}

static int mkdirs(char *path) /* every parent of path; path is restored */
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

static int fsync_dir(const char *file)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 0;
    *slash = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int no_space(int e)
{
    return e == ENOSPC || e == EDQUOT;
}

/* Writes data to path atomically and durably.  *enospc gets 1 when it
 * failed for want of space. */
static int write_file(const char *path, const void *data, size_t len, fp_err *err, int *enospc)
{
    *enospc = 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (mkdirs(tmp) < 0) {
        *enospc = no_space(errno);
        return fp_fail(err, FP_EIO, "mkdir for %s: %s", path, strerror(errno));
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        *enospc = no_space(errno);
        return fp_fail(err, FP_EIO, "open %s: %s", tmp, strerror(errno));
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n == 0 ? ENOSPC : errno;
            close(fd);
            unlink(tmp);
            *enospc = no_space(e);
            return fp_fail(err, FP_EIO, "write %s: %s", tmp, strerror(e));
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        int e = errno;
        unlink(tmp);
        *enospc = no_space(e);
        return fp_fail(err, FP_EIO, "fsync %s: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) < 0 || fsync_dir(path) < 0) {
        int e = errno;
        unlink(tmp);
        return fp_fail(err, FP_EIO, "rename to %s: %s", path, strerror(e));
    }
    return 0;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: jitter only, not security */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

/* Delay before the next attempt after `attempts` failed ones: equal jitter
 * on an exponential, so it never shrinks from one attempt to the next. */
static int64_t backoff(const fp_outbox *ob, int attempts, uint64_t *rng)
{
    int64_t d = ob->o.backoff_ms;
    for (int i = 1; i < attempts && d < ob->o.backoff_max_ms; i++)
        d *= 2;
    if (d > ob->o.backoff_max_ms)
        d = ob->o.backoff_max_ms;
    return d / 2 + (int64_t)(rng_next(rng) % (uint64_t)(d / 2 + 1));
}

static target *target_for(fp_outbox *ob, const char *url)
{
    char origin[128];
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t n = strcspn(host, "/?#");
    snprintf(origin, sizeof origin, "%.*s%.*s", (int)(host - url), url, (int)n, host);
    pthread_mutex_lock(&ob->tmu);
    target *t = NULL;
    for (int i = 0; i < ob->ntargets && !t; i++)
        if (!strcmp(ob->targets[i]->origin, origin))
            t = ob->targets[i];
    if (!t && ob->ntargets < MAX_TARGETS && (t = calloc(1, sizeof *t))) {
        snprintf(t->origin, sizeof t->origin, "%s", origin);
        char name[160];
        snprintf(name, sizeof name, "webhook:%s", origin);
        fp_breaker_init(&t->br, name, &ob->o.webhook_breaker);
        ob->targets[ob->ntargets++] = t;
    }
    pthread_mutex_unlock(&ob->tmu);
    return t; /* NULL beyond MAX_TARGETS origins: no breaker */
}

/* ---- running one job ---- */

typedef struct worker {
    fp_outbox *ob;
    CURL *curl; /* NULL in a foreground thread (renders only) */
    uint64_t rng;
} worker;

static int run_render(worker *w, const fp_job *j, int on_demand, char *why, size_t cap,
                      int *permanent, int *transient)
{
    fp_outbox *ob = w->ob;
    /* a render someone waits for runs in the foreground pool, which the
     * background's SCHED_IDLE workers cannot hold up (docs/outbox.md) */
    int fg = on_demand && ob->fg_pool;
    char *doc = NULL;
    size_t len = 0;
    int rc = fp_store_get_invoice(ob->o.store, j->seller_id, j->invoice_number, &doc, &len);
    if (rc < 0) {
        snprintf(why, cap, "cannot read the invoice (%d)", rc);
        *permanent = rc == FP_ENOTFOUND;
        return -1;
    }
    fp_buf pdf;
    fp_buf_init(&pdf, PDF_MAX);
    int pages = 0;
    fp_err err = {0};
    int64_t t0 = fp_mono_us(); /* a duration, measured on the real clock */
    if (atomic_load(&ob->render_fault) == FP_RENDER_FAULT_FAIL)
        rc = fp_fail(&err, FP_EIO, "injected fault: render");
    else
        rc = fp_pdf_pool_render(fg ? ob->fg_pool : ob->pool, doc, len, &pdf, &pages, &err);
    int64_t took_us = fp_mono_us() - t0;
    free(doc);
    if (rc == 0) {
        atomic_fetch_add(&ob->render_us, (uint64_t)took_us);
        atomic_fetch_add(&ob->render_pages, (uint64_t)pages);
        atomic_fetch_add(&ob->pool_renders[fg], 1);
        char path[4096];
        fp_outbox_pdf_path(ob->pdf_dir, j->invoice_number, path, sizeof path);
        int enospc = 0;
        rc = write_file(path, pdf.p, pdf.len, &err, &enospc);
        /* a full disk is transient: retried while it lasts, attempts kept */
        *transient = enospc;
        space_state(ob, enospc, err.msg);
    } else {
        *permanent = rc == FP_EINVAL;
    }
    fp_buf_free(&pdf);
    if (rc < 0) {
        snprintf(why, cap, "%s", err.msg[0] ? err.msg : "render failed");
        return -1;
    }
    return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* Webhook target policy, judged on the address libcurl is about to connect
 * to (after DNS, so a name that resolves to 127.0.0.1 is caught too, and
 * before any byte is sent); docs/security.md "Webhook targets". */
typedef struct target_check {
    int allow_private;
    char refused[160]; /* "127.0.0.1 (loopback)" when a connection was refused */
} target_check;

static curl_socket_t open_checked(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    target_check *tc = arg;
    const char *cls = tc->allow_private ? NULL : fp_webhook_addr_class(&a->addr);
    if (cls) {
        char ip[INET6_ADDRSTRLEN] = "?";
        if (a->family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, ip, sizeof ip);
        else if (a->family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, ip, sizeof ip);
        snprintf(tc->refused, sizeof tc->refused, "%s (%s)", ip, cls);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* 0 delivered, -1 failed (why), 1 breaker open (*retry_at). */
static int run_notify(worker *w, const fp_job *j, char *why, size_t cap, int64_t *retry_at,
                      int *permanent)
{
    fp_outbox *ob = w->ob;
    char url[2048], secret[128];
    fp_invoice_state st;
    int wrc =
        fp_store_webhook_get(ob->o.store, j->client_id, url, sizeof url, secret, sizeof secret);
    if (wrc < 0 || !url[0]) {
        snprintf(why, cap,
                 wrc == FP_ECRYPTO ? "client %s: cannot decrypt the webhook secret (webhook.key "
                                     "missing or replaced; docs/security.md)"
                                   : "client %s has no webhook URL",
                 j->client_id);
        *permanent = 1;
        return -1;
    }
    if (fp_store_invoice_state(ob->o.store, j->seller_id, j->invoice_number, &st) < 0) {
        snprintf(why, cap, "cannot read the invoice");
        return -1;
    }
    target *t = target_for(ob, url);
    /* the breakers run on the monotonic clock; *retry_at goes into the
     * job row, on the steady wall clock like every time there (jobs.h) */
    int64_t mono = fp_clock_mono_ms(ob->o.clock);
    if (t && !fp_breaker_allow(&t->br, mono, retry_at)) {
        snprintf(why, cap, "circuit open for %s", t->origin);
        *retry_at = fp_clock_steady_ms(ob->o.clock) + (*retry_at - mono);
        return 1;
    }
    fp_buf body;
    fp_buf_init(&body, 0);
    fp_webhook_body(j, st.serial, st.failure, &body);
    char ts[24], nonce[33], sig[68];
    unsigned char raw[16];
    fp_random(raw, sizeof raw);
    fp_hex(raw, sizeof raw, nonce);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    fp_webhook_sign(secret, ts, nonce, body.p, body.len, sig);

    char h[5][160];
    snprintf(h[0], sizeof h[0], "X-Fapiao-Event-Id: %s", j->event_id);
    snprintf(h[1], sizeof h[1], "X-Fapiao-Timestamp: %s", ts);
    snprintf(h[2], sizeof h[2], "X-Fapiao-Nonce: %s", nonce);
    snprintf(h[3], sizeof h[3], "X-Fapiao-Signature: %s", sig);
    snprintf(h[4], sizeof h[4], "X-Fapiao-Event: %s", j->event);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; i < 5; i++)
        hs = curl_slist_append(hs, h[i]);
    hs = curl_slist_append(hs, "Expect:");
    CURL *c = w->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.p);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body.len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ob->o.webhook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ob->o.webhook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "fapiao-webhook/1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    target_check tc = {.allow_private = ob->o.allow_private_webhooks};
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &tc);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    fp_buf_free(&body);
    if (cc != CURLE_OK && tc.refused[0]) {
        /* the operator's policy, not the receiver's fault: no breaker, and
         * no retries (a dead letter; re-drive after allowing it) */
        snprintf(why, cap,
                 "POST %s refused: webhook target %s is not allowed "
                 "(fapiao serve --allow-private-webhooks)",
                 t ? t->origin : "webhook", tc.refused);
        *permanent = 1;
        return -1;
    }
    int ok = cc == CURLE_OK && status >= 200 && status < 300;
    if (t)
        fp_breaker_record(&t->br, fp_clock_mono_ms(ob->o.clock), ok);
    if (ok)
        return 0;
    if (cc != CURLE_OK)
        snprintf(why, cap, "POST %s: %s", t ? t->origin : "webhook", curl_easy_strerror(cc));
    else
        snprintf(why, cap, "POST %s: HTTP %ld", t ? t->origin : "webhook", status);
    return -1;
}

static int run_job(worker *w, const fp_job *j, int on_demand)
{
    fp_outbox *ob = w->ob;
    char why[256] = "";
    int permanent = 0, transient = 0, res;
    int64_t retry_at = 0;
    int rc = j->kind == FP_JOB_RENDER
                 ? run_render(w, j, on_demand, why, sizeof why, &permanent, &transient)
                 : run_notify(w, j, why, sizeof why, &retry_at, &permanent);
    int64_t now = fp_clock_steady_ms(ob->o.clock); /* job times (jobs.h) */
    fp_err err = {0};
    int db;
    if (rc == 0) {
        db = fp_jobs_complete(ob->o.store, j, now, &err);
        res = RES_OK;
    } else if (rc > 0 && now < j->first_at + ob->o.retry_for_ms) {
        /* the target's breaker is open: wait for it, but no longer than
         * the retry period (one last look then) */
        int64_t deadline = j->first_at + ob->o.retry_for_ms;
        db = fp_jobs_defer(ob->o.store, j, retry_at < deadline ? retry_at : deadline, why, &err);
        res = RES_DEFERRED;
    } else if (rc > 0) { /* still open at the end of the retry period */
        db = fp_jobs_fail(ob->o.store, j, now, now, 1, why, &err);
        res = RES_DEAD;
    } else if (transient) {
        /* no space for the PDF: back off (growing with the time the job has
         * waited, at most a minute) but never die; the attempt is not
         * counted, so space coming back finds the job with the attempts it
         * had */
        int64_t waited = now - j->first_at, d = waited / 4, cap = ob->o.backoff_max_ms;
        if (cap > 60000)
            cap = 60000; /* space may come back any time: look at least once a minute */
        if (d < ob->o.backoff_ms)
            d = ob->o.backoff_ms;
        if (d > cap)
            d = cap;
        int64_t next = now + d / 2 + (int64_t)(rng_next(&w->rng) % (uint64_t)(d / 2 + 1));
        db = fp_jobs_defer(ob->o.store, j, next, why, &err);
        res = RES_RETRY;
    } else {
        int64_t next = now + backoff(ob, j->attempts, &w->rng);
        int dead = permanent ||
                   (j->kind == FP_JOB_RENDER && j->attempts >= ob->o.render_attempts) ||
                   (j->kind == FP_JOB_NOTIFY && next - j->first_at > ob->o.retry_for_ms);
        db = fp_jobs_fail(ob->o.store, j, now, next, dead, why, &err);
        res = dead ? RES_DEAD : RES_RETRY;
    }
    if (db == FP_ECONFLICT)
        res = RES_LOST;
    else if (db < 0) /* the lease runs out and the job is claimed again */
        fprintf(stderr,
                "{\"event\":\"outbox\",\"job\":%lld,\"error\":\"cannot record the outcome\","
                "\"detail\":\"%s\"}\n",
                (long long)j->id, err.msg);
    atomic_fetch_add(&ob->runs[j->kind][res], 1);
    if (res == RES_OK && j->kind == FP_JOB_RENDER)
        atomic_fetch_add(on_demand ? &ob->rendered_od : &ob->rendered_bg, 1);
    return res;
}

static int64_t job_lease(const fp_outbox *ob)
{
    return (ob->o.render_timeout_ms > ob->o.webhook_timeout_ms ? ob->o.render_timeout_ms
                                                               : ob->o.webhook_timeout_ms) +
           LEASE_MARGIN;
}

/* Runs it on this job thread: its render job claimed whether due or not,
 * run like any job (so it completes, or fails with the usual retry), then
 * answered unless its deadline answered it already (ondemand.c). */
static void run_od(worker *w, od_item *it)
{
    fp_outbox *ob = w->ob;
    fp_job j;
    fp_err err = {0};
    int64_t owner = atomic_fetch_add(&ob->lease_seq, 1) + 1;
    int rc = fp_jobs_claim_render(ob->o.store, it->seller_id, it->number,
                                  fp_clock_steady_ms(ob->o.clock), owner, job_lease(ob), &j, &err);
    int result = rc == FP_ENOTFOUND            ? FP_OD_NOT_PENDING
                 : rc < 0                      ? FP_OD_FAILED
                 : run_job(w, &j, 1) == RES_OK ? FP_OD_DONE
                                               : FP_OD_FAILED;
    fp_ob_od_finish(ob, it, result);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    fp_outbox *ob = w->ob;
    int64_t lease = job_lease(ob);
    for (;;) {
        pthread_mutex_lock(&ob->mu);
        int stop = ob->stopping;
        uint64_t seen = ob->kicks;
        pthread_mutex_unlock(&ob->mu);
        if (stop)
            break;
        char why[200];
        pthread_mutex_lock(&ob->mu); /* fp_outbox_set_pause(NULL) waits for the call */
        int paused = ob->paused && ob->paused(ob->paused_arg, why, sizeof why);
        pthread_mutex_unlock(&ob->mu);
        atomic_store(&ob->pause_seen, paused);
        int held = atomic_load(&ob->render_fault) == FP_RENDER_FAULT_HOLD;
        if (held && !paused) {
            /* test-only hold: claim nothing until the fault is lifted (a
             * kick wakes us to look again); foreground threads go on */
            int64_t until = fp_clock_mono_ns(ob->o.clock) + 100000000LL;
            pthread_mutex_lock(&ob->mu);
            while (!ob->stopping && ob->kicks == seen &&
                   fp_clock_wait_until(ob->o.clock, &ob->cv, &ob->mu, until) != ETIMEDOUT)
                ;
            pthread_mutex_unlock(&ob->mu);
            continue;
        }
        if (paused) {
            /* the disk is short: claim nothing (a claim writes too); look
             * again in a second */
            atomic_fetch_add(&ob->pause_waits, 1);
            int64_t until = fp_clock_mono_ns(ob->o.clock) + 1000000000LL;
            pthread_mutex_lock(&ob->mu);
            while (!ob->stopping &&
                   fp_clock_wait_until(ob->o.clock, &ob->cv, &ob->mu, until) != ETIMEDOUT)
                ;
            pthread_mutex_unlock(&ob->mu);
            continue;
        }
        /* an on-demand render first: a client waits for it (unless the
         * foreground threads take them all) */
        pthread_mutex_lock(&ob->mu);
        od_item *it = !ob->fg_pool && fp_store_failstop(ob->o.store, NULL, 0) == FP_FAILSTOP_NONE
                          ? fp_ob_od_pick(ob)
                          : NULL;
        pthread_mutex_unlock(&ob->mu);
        if (it) {
            run_od(w, it);
            continue;
        }
        fp_job j;
        int64_t due = 0, owner = atomic_fetch_add(&ob->lease_seq, 1) + 1;
        fp_err err = {0};
        /* after a fail-stop nothing is written: no claim, no PDF, no call */
        int rc = fp_store_failstop(ob->o.store, NULL, 0) != FP_FAILSTOP_NONE
                     ? FP_EBUSY
                     : fp_jobs_claim(ob->o.store, fp_clock_steady_ms(ob->o.clock), owner, lease, &j,
                                     &due, &err);
        if (rc == 0) {
            run_job(w, &j, 0);
            continue;
        }
        /* nothing due (or the store failed): sleep until the next job is
         * due, a kick, or at most a second */
        int64_t now = fp_clock_steady_ms(ob->o.clock), wait = 1000;
        if (rc == FP_ENOTFOUND && due > now && due - now < wait)
            wait = due - now;
        /* the sleep itself on the monotonic clock: a wall-clock step cannot
         * stretch it (the next round looks at the job rows again) */
        int64_t until = fp_clock_mono_ns(ob->o.clock) + wait * 1000000;
        pthread_mutex_lock(&ob->mu);
        while (!ob->stopping && ob->kicks == seen &&
               fp_clock_wait_until(ob->o.clock, &ob->cv, &ob->mu, until) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&ob->mu);
    }
    curl_easy_cleanup(w->curl);
    free(w);
    return NULL;
}

/* A foreground thread: on-demand renders only, in the foreground pool, so
 * neither the background's claims (nor the test-only hold) nor its
 * SCHED_IDLE renderers stand between a waiting client and its PDF. */
static void *fg_main(void *arg)
{
    worker *w = arg;
    fp_outbox *ob = w->ob;
    pthread_mutex_lock(&ob->mu);
    while (!ob->stopping) {
        /* a render writes a file and a job row: not while the disk is
         * short (the background threads' last look, as the keeper's
         * pruning), nor after a fail-stop */
        od_item *it = !atomic_load(&ob->pause_seen) &&
                              fp_store_failstop(ob->o.store, NULL, 0) == FP_FAILSTOP_NONE
                          ? fp_ob_od_pick(ob)
                          : NULL;
        if (!it) { /* mu held since the look: a queued render's broadcast is not missed */
            fp_clock_wait_until(ob->o.clock, &ob->cv, &ob->mu,
                                fp_clock_mono_ns(ob->o.clock) + 1000000000LL);
            continue;
        }
        pthread_mutex_unlock(&ob->mu);
        run_od(w, it);
        pthread_mutex_lock(&ob->mu);
    }
    pthread_mutex_unlock(&ob->mu);
    free(w);
    return NULL;
}

static void hook(void *arg)
{
    fp_outbox_kick(arg);
}

void fp_outbox_kick(fp_outbox *ob)
{
    pthread_mutex_lock(&ob->mu);
    ob->kicks++;
    pthread_cond_broadcast(&ob->cv);
    pthread_mutex_unlock(&ob->mu);
}

/* A job thread (fg: a foreground one, on-demand renders only). */
static int start_thread(fp_outbox *ob, int fg, int i, fp_err *err)
{
    worker *w = calloc(1, sizeof *w);
    if (!w || (!fg && !(w->curl = curl_easy_init()))) {
        free(w);
        return fp_fail(err, FP_ENOMEM, "cannot create a job thread");
    }
    w->ob = ob;
    if (fp_random(&w->rng, sizeof w->rng) < 0 || !w->rng)
        w->rng = 0x9e3779b97f4a7c15ULL + (uint64_t)i;
    if (pthread_create(&ob->th[ob->nth], NULL, fg ? fg_main : worker_main, w) != 0) {
        curl_easy_cleanup(w->curl);
        free(w);
        return fp_fail(err, FP_EIO, "cannot start a job thread");
    }
    ob->nth++;
    return 0;
}

int fp_outbox_start(const fp_outbox_opts *o, fp_outbox **out, fp_err *err)
{
    fp_outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    ob->o = *o;
    fp_outbox_opts *d = &ob->o;
    if (d->workers <= 0)
        d->workers = 2;
    if (d->workers > MAX_WORKERS)
        d->workers = MAX_WORKERS;
    if (d->render_workers <= 0)
        d->render_workers = d->workers;
    if (d->render_fg_workers == 0)
        d->render_fg_workers = 1;
    if (d->render_fg_workers > MAX_FG)
        d->render_fg_workers = MAX_FG;
    if (d->render_timeout_ms <= 0)
        d->render_timeout_ms = 30000;
    if (d->render_attempts <= 0)
        d->render_attempts = 3;
    if (d->backoff_ms <= 0)
        d->backoff_ms = 10000;
    if (d->backoff_max_ms < d->backoff_ms)
        d->backoff_max_ms = d->backoff_ms > 3600000 ? d->backoff_ms : 3600000;
    if (d->retry_for_ms <= 0)
        d->retry_for_ms = 24LL * 3600 * 1000;
    if (d->webhook_timeout_ms <= 0)
        d->webhook_timeout_ms = 10000;
    if (d->render_backlog_max == 0)
        d->render_backlog_max = 20000;
    if (d->render_age_max_ms == 0)
        d->render_age_max_ms = 10000;
    if (d->on_demand_wait_ms <= 0)
        d->on_demand_wait_ms = 3000;
    if (d->on_demand_after_ms == 0)
        d->on_demand_after_ms = 500;
    if (d->job_retention_ms == 0)
        d->job_retention_ms = 7LL * 86400 * 1000;
    atomic_store(&ob->backlog, -1);
    ob->pdf_dir = strdup(o->pdf_dir);
    ob->render_exe = strdup(o->render_exe ? o->render_exe : "/proc/self/exe");
    ob->font_path = o->font_path ? strdup(o->font_path) : NULL;
    pthread_mutex_init(&ob->mu, NULL);
    fp_cond_init_mono(&ob->cv);
    fp_ob_od_init(ob);
    pthread_mutex_init(&ob->tmu, NULL);
    pthread_mutex_init(&ob->smu, NULL);
    int rc;
    if (!ob->pdf_dir || !ob->render_exe || (o->font_path && !ob->font_path)) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    if (mkdir(ob->pdf_dir, 0700) < 0 && errno != EEXIST) {
        rc = fp_fail(err, FP_EIO, "mkdir %s: %s", ob->pdf_dir, strerror(errno));
        goto fail;
    }
    int64_t recovered = 0;
    fp_err rerr = {0};
    /* A fail-stopped store (read-only) keeps its leases until a restart that
     * writes again recovers them.  On a full disk this write fails: the
     * server still starts (reads go on); a running job's lease runs out and
     * it is claimed again. */
    if (fp_store_failstop(d->store, NULL, 0) == FP_FAILSTOP_NONE &&
        fp_jobs_recover(d->store, &recovered, &rerr) < 0)
        fprintf(stderr,
                "{\"event\":\"outbox\",\"warning\":\"cannot recover running jobs now\","
                "\"detail\":\"%s\"}\n",
                rerr.msg);
    if (recovered)
        fprintf(stderr, "{\"event\":\"outbox\",\"recovered_jobs\":%lld}\n", (long long)recovered);
    fp_pdf_pool_opts po = {.exe = ob->render_exe,
                           .font_path = ob->font_path,
                           .workers = d->render_workers,
                           .timeout_ms = d->render_timeout_ms,
                           .mem_limit = d->render_mem};
    if ((rc = fp_pdf_pool_new(&po, &ob->pool, err)) < 0)
        goto fail;
    if (d->render_fg_workers > 0) {
        po.workers = d->render_fg_workers;
        po.foreground = 1;
        if ((rc = fp_pdf_pool_new(&po, &ob->fg_pool, err)) < 0)
            goto fail;
    }
    for (int i = 0; i < d->workers; i++)
        if ((rc = start_thread(ob, 0, i, err)) < 0)
            goto fail;
    for (int i = 0; ob->fg_pool && i < d->render_fg_workers; i++)
        if ((rc = start_thread(ob, 1, i, err)) < 0)
            goto fail;
    if (pthread_create(&ob->keeper, NULL, fp_ob_keeper_main, ob) != 0) {
        rc = fp_fail(err, FP_EIO, "cannot start the outbox keeper thread");
        goto fail;
    }
    ob->keeper_started = 1;
    fp_store_set_job_hook(d->store, hook, ob);
    *out = ob;
    return 0;
fail:
    fp_outbox_stop(ob);
    return rc;
}

void fp_outbox_stop(fp_outbox *ob)
{
    if (!ob)
        return;
    fp_store_set_job_hook(ob->o.store, NULL, NULL);
    pthread_mutex_lock(&ob->mu);
    ob->stopping = 1;
    pthread_cond_broadcast(&ob->cv);
    pthread_cond_signal(&ob->kcv);
    pthread_mutex_unlock(&ob->mu);
    for (int i = 0; i < ob->nth; i++)
        pthread_join(ob->th[i], NULL);
    if (ob->keeper_started)
        pthread_join(ob->keeper, NULL);
    /* no thread left: what is still queued is answered now */
    fp_ob_od_drain(ob);
    if (ob->o.store)
        fp_store_set_notify_early(ob->o.store, 0);
    fp_pdf_pool_free(ob->pool);
    fp_pdf_pool_free(ob->fg_pool);
    for (int i = 0; i < ob->ntargets; i++) {
        fp_breaker_destroy(&ob->targets[i]->br);
        free(ob->targets[i]);
    }
    pthread_mutex_destroy(&ob->mu);
    pthread_cond_destroy(&ob->cv);
    pthread_cond_destroy(&ob->kcv);
    pthread_mutex_destroy(&ob->tmu);
    pthread_mutex_destroy(&ob->smu);
    free(ob->pdf_dir);
    free(ob->render_exe);
    free(ob->font_path);
    free(ob);
}

/* Through the registry's checks and formatting (metrics.h). */
void fp_outbox_metrics(fp_outbox *ob, const fp_jobs_counts *jobs, fp_buf *b)
{
    fp_metrics_scrape f;
    if (jobs) {
        const fp_jobs_counts c = *jobs;
        if (fp_metrics_family_begin(
                b, &f,
                &(fp_metrics_opts){.name = "fapiao_outbox_jobs",
                                   .help = "Outbox jobs by kind and state (done is not counted).",
                                   .type = FP_METRICS_GAUGE,
                                   .labels = {"kind", "state"}}) == 0)
            for (int k = 0; k < FP_JOB__KINDS; k++)
                for (int s = 0; s < FP_JS__STATES; s++)
                    if (s != FP_JS_DONE)
                        fp_metrics_family_sample(
                            b, &f,
                            (const char *[]){fp_job_kind_name((fp_job_kind)k),
                                             fp_job_state_name((fp_job_state)s)},
                            c.n[k][s]);
        int64_t age =
            c.oldest_pending_at ? fp_clock_steady_ms(ob->o.clock) - c.oldest_pending_at : 0;
        fp_metrics_emit(b, "fapiao_outbox_oldest_pending_seconds", "Age of the oldest pending job.",
                        FP_METRICS_GAUGE, age > 0 ? age : 0, 1000);
    }
    if (fp_metrics_family_begin(b, &f,
                                &(fp_metrics_opts){.name = "fapiao_outbox_runs_total",
                                                   .help = "Job attempts by kind and result.",
                                                   .type = FP_METRICS_COUNTER,
                                                   .labels = {"kind", "result"}}) == 0)
        for (int k = 0; k < FP_JOB__KINDS; k++)
            for (int r = 0; r < RES__N; r++)
                fp_metrics_family_sample(
                    b, &f, (const char *[]){fp_job_kind_name((fp_job_kind)k), result_names[r]},
                    (int64_t)atomic_load(&ob->runs[k][r]));
    fp_outbox_backlog bl;
    fp_outbox_backlog_get(ob, &bl);
    if (bl.pending >= 0) { /* counted once at least */
        fp_metrics_emit(b, "fapiao_render_backlog",
                        "Pending render jobs at the outbox's last count (docs/outbox.md).",
                        FP_METRICS_GAUGE, bl.pending, 1);
        fp_metrics_emit(b, "fapiao_render_backlog_oldest_seconds",
                        "Age of the oldest pending render at the last count.", FP_METRICS_GAUGE,
                        bl.oldest_ms, 1000);
    }
    fp_metrics_emit(b, "fapiao_render_on_demand",
                    "1 while PDFs are rendered on first request (on-demand mode), 0 background.",
                    FP_METRICS_GAUGE, bl.on_demand, 1);
    fp_metrics_emit(b, "fapiao_render_mode_switches_total", "Times the render mode changed.",
                    FP_METRICS_COUNTER, (int64_t)bl.switches, 1);
    fp_metrics_scrape rf;
    if (fp_metrics_family_begin(b, &rf,
                                &(fp_metrics_opts){.name = "fapiao_pdfs_rendered_total",
                                                   .help = "PDFs rendered, by how.",
                                                   .type = FP_METRICS_COUNTER,
                                                   .labels = {"how"}}) == 0) {
        fp_metrics_family_sample(b, &rf, (const char *[]){"background"}, (int64_t)bl.rendered_bg);
        fp_metrics_family_sample(b, &rf, (const char *[]){"on_demand"}, (int64_t)bl.rendered_od);
    }
    uint64_t all = bl.rendered_bg + bl.rendered_od;
    fp_metrics_emit(b, "fapiao_pdfs_on_demand_ratio",
                    "Share of the PDFs rendered since start that were rendered on first request.",
                    FP_METRICS_GAUGE, all ? (int64_t)(bl.rendered_od * 10000 / all) : 0, 10000);
    fp_metrics_emit(b, "fapiao_render_on_demand_timeouts_total",
                    "On-demand renders answered 202 at their deadline.", FP_METRICS_COUNTER,
                    (int64_t)bl.od_timeouts, 1);
    fp_metrics_emit(b, "fapiao_render_on_demand_refused_total",
                    "On-demand renders refused (queue or the seller's share full).",
                    FP_METRICS_COUNTER, (int64_t)bl.od_refused, 1);
    fp_metrics_emit(b, "fapiao_outbox_jobs_pruned_total",
                    "Done jobs deleted after the retention period.", FP_METRICS_COUNTER,
                    (int64_t)bl.pruned, 1);
    fp_metrics_emit(b, "fapiao_render_seconds_total", "Time spent rendering PDFs.",
                    FP_METRICS_COUNTER, (int64_t)atomic_load(&ob->render_us), 1000000);
    fp_metrics_emit(b, "fapiao_render_pages_total", "PDF pages rendered.", FP_METRICS_COUNTER,
                    (int64_t)atomic_load(&ob->render_pages), 1);
    fp_metrics_scrape pf;
    if (fp_metrics_family_begin(
            b, &pf,
            &(fp_metrics_opts){.name = "fapiao_render_pool_renders_total",
                               .help = "PDFs rendered, by renderer pool (background: SCHED_IDLE "
                                       "workers; foreground: on-demand renders, docs/outbox.md).",
                               .type = FP_METRICS_COUNTER,
                               .labels = {"pool"}}) == 0) {
        fp_metrics_family_sample(b, &pf, (const char *[]){"background"},
                                 (int64_t)atomic_load(&ob->pool_renders[0]));
        fp_metrics_family_sample(b, &pf, (const char *[]){"foreground"},
                                 (int64_t)atomic_load(&ob->pool_renders[1]));
    }
    fp_metrics_emit(b, "fapiao_outbox_pause_waits_total",
                    "Seconds a job thread waited for disk space.", FP_METRICS_COUNTER,
                    (int64_t)atomic_load(&ob->pause_waits), 1);
    fp_metrics_emit(b, "fapiao_pdf_storage_full",
                    "1 while PDF files cannot be written for want of space.", FP_METRICS_GAUGE,
                    fp_outbox_pdf_space_short(ob, NULL, 0), 1);
    fp_metrics_scrape st, op;
    int have_st =
        fp_metrics_family_begin(
            b, &st,
            &(fp_metrics_opts){.name = "fapiao_breaker_state",
                               .help = "Circuit breaker state (0 closed, 1 open, 2 half-open).",
                               .type = FP_METRICS_GAUGE,
                               .labels = {"breaker"}}) == 0;
    pthread_mutex_lock(&ob->tmu);
    int64_t now = fp_clock_mono_ms(ob->o.clock); /* the breakers run on it */
    for (int i = 0; have_st && i < ob->ntargets; i++)
        fp_metrics_family_sample(b, &st, (const char *[]){ob->targets[i]->br.name},
                                 (int)fp_breaker_get(&ob->targets[i]->br, now));
    if (fp_metrics_family_begin(b, &op,
                                &(fp_metrics_opts){.name = "fapiao_breaker_opened_total",
                                                   .help = "Times a circuit breaker opened.",
                                                   .type = FP_METRICS_COUNTER,
                                                   .labels = {"breaker"}}) == 0)
        for (int i = 0; i < ob->ntargets; i++) {
            uint64_t opened;
            fp_breaker_snapshot(&ob->targets[i]->br, now, NULL, NULL, &opened);
            fp_metrics_family_sample(b, &op, (const char *[]){ob->targets[i]->br.name},
                                     (int64_t)opened);
        }
    pthread_mutex_unlock(&ob->tmu);
}
