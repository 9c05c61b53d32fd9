/* keeper.c — a keeper thread (keeper.h): one pass at once, then one every
 * interval on the monotonic clock, a doubling wait after a failure. */
#include "fapiao/keeper.h"
#include "fapiao/clock.h"

#include <pthread.h>
#include <stdlib.h>

#define MAX_BACKOFF_MS 60000

struct fp_keeper {
    int (*pass)(void *arg);
    void *arg;
    long every_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop;
};

static void *keeper_main(void *p)
{
    fp_keeper *k = p;
    long wait = k->every_ms;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        pthread_mutex_unlock(&k->mu);
        int failed = k->pass(k->arg);
        /* after a failure: wait longer each time (to 60 s), then as usual */
        wait = failed ? (wait * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : wait * 2) : k->every_ms;
        pthread_mutex_lock(&k->mu);
        if (!k->stop)
            fp_cond_wait_ms(&k->cond, &k->mu, (int)wait);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int fp_keeper_start(const char *name, int (*pass)(void *arg), void *arg, long every_ms,
                    fp_keeper **out, fp_err *err)
{
    *out = NULL;
    if (every_ms < 1)
        return fp_fail(err, FP_EINVAL, "%s: a check interval is needed", name);
    fp_keeper *k = calloc(1, sizeof *k);
    if (!k)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    k->pass = pass;
    k->arg = arg;
    k->every_ms = every_ms;
    pthread_mutex_init(&k->mu, NULL);
    fp_cond_init_mono(&k->cond);
    if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
        pthread_cond_destroy(&k->cond);
        pthread_mutex_destroy(&k->mu);
        free(k);
        return fp_fail(err, FP_EIO, "cannot start the %s thread", name);
    }
    *out = k;
    return 0;
}

void fp_keeper_stop(fp_keeper *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

void fp_keeper_clean(const char *msg, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; msg && msg[i] && j + 1 < cap; i++)
        if (msg[i] != '"' && msg[i] != '\\' && (unsigned char)msg[i] >= 0x20)
            out[j++] = msg[i];
    if (cap)
        out[j] = 0;
}
