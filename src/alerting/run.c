/* run.c — the alerting thread of `fapiao serve` (docs/alerting.md
 * "Built-in evaluator"): every interval it writes the server's own
 * exposition in memory, keeps the watched series in the history, runs the
 * rules and hands transitions to the notifier, which groups and delivers.
 * One thread does all of it, so the evaluator and the notifier need no
 * lock; the history has its own for readers (the console). */
#include "fapiao/alerting.h"
#include "fapiao/clock.h"
#include "fapiao/json.h"
#include "fapiao/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct fp_alerting {
    fp_notify_conf c;
    fp_metrics *m;
    fp_ahist *h;
    fp_aeval *e;
    fp_notifier *n;
    fp_abridge *bridge;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, started;
};

static void round_once(fp_alerting *a)
{
    fp_buf b;
    fp_buf_init(&b, 8u << 20);
    int64_t now = fp_wall_ms();
    if (fp_metrics_write(a->m, &b) == 0)
        fp_ahist_add_text(a->h, b.p, b.len, now);
    fp_buf_free(&b);
    fp_aeval_run(a->e, now, fp_notifier_event, a->n);
    for (int i = 0; i < fp_alert_nrules; i++) { /* the rules' states, for the console */
        char key[256];
        snprintf(key, sizeof key, "ALERTS{alertname=\"%s\"}", fp_alert_rules[i].name);
        fp_ahist_add(a->h, key, now, (double)fp_aeval_state(a->e, fp_alert_rules[i].name));
    }
    fp_notifier_flush(a->n, now);
}

static void *loop(void *arg)
{
    fp_alerting *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        pthread_mutex_unlock(&a->mu);
        round_once(a);
        pthread_mutex_lock(&a->mu);
        int64_t deadline = fp_mono_ns() + (int64_t)a->c.interval_s * 1000000000LL;
        while (!a->stop && fp_mono_ns() < deadline)
            fp_cond_wait_until(&a->cv, &a->mu, deadline);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int fp_alerting_start(const fp_notify_conf *c, fp_metrics *m, fp_alerting **out, fp_err *err)
{
    *out = NULL;
    fp_alerting *a = calloc(1, sizeof *a);
    if (!a)
        return fp_fail(err, FP_ENOMEM, "内存不足 / out of memory");
    a->c = *c;
    a->m = m;
    pthread_mutex_init(&a->mu, NULL);
    fp_cond_init_mono(&a->cv);
    if (!(a->h = fp_ahist_new(c->interval_s)) || !(a->e = fp_aeval_new(a->h, err)) ||
        !(a->n = fp_notifier_new(c, m, err))) {
        fp_alerting_stop(a);
        return err && err->code ? err->code : fp_fail(err, FP_ENOMEM, "内存不足 / out of memory");
    }
    if (a->c.bridge_listen[0]) {
        int rc = fp_abridge_start(&a->c, &a->bridge, err);
        if (rc < 0) {
            fp_alerting_stop(a);
            return rc;
        }
        fprintf(stderr, "fapiao: Alertmanager 桥接 / Alertmanager bridge on http://%s\n",
                a->c.bridge_listen);
    }
    if (pthread_create(&a->thread, NULL, loop, a) != 0) {
        fp_alerting_stop(a);
        return fp_fail(err, FP_ENOMEM, "无法启动告警线程 / cannot start the alerting thread");
    }
    a->started = 1;
    *out = a;
    return 0;
}

void fp_alerting_stop(fp_alerting *a)
{
    if (!a)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->mu);
        a->stop = 1;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    fp_abridge_stop(a->bridge);
    fp_notifier_free(a->n);
    fp_aeval_free(a->e);
    fp_ahist_free(a->h);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

fp_ahist *fp_alerting_history(fp_alerting *a)
{
    return a ? a->h : NULL;
}
