/* ship.c — the serve side of checkpoint shipping: a thread that copies new
 * signed checkpoints to the operator's append-only destination
 * (fp_audit_ship in verify.c; docs/audit.md "Shipping checkpoints").
 *
 * Why a poller and not a hook in the store's commit: the store signs
 * checkpoints inside its transactions, and a checkpoint must reach the
 * destination only once it is committed; reading committed checkpoints
 * from a separate read-only connection never ships one that rolled back,
 * and keeps the writer's path free of file or process I/O. */
#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fp_audit_shipper {
    char *db, *dest, *state;
    int interval_ms, stop, failing;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void ship_once(fp_audit_shipper *sh)
{
    fp_err err = {0};
    int64_t n = 0;
    if (fp_audit_ship(sh->db, sh->dest, sh->state, &n, &err) < 0) {
        if (!sh->failing) /* once per outage, not every interval */
            fprintf(stderr,
                    "fapiao: 警告 / warning: 审计检查点无法送出 / cannot ship audit "
                    "checkpoints to %s: %s\n",
                    sh->dest, err.msg);
        sh->failing = 1;
    } else {
        if (sh->failing)
            fprintf(stderr, "fapiao: 审计检查点恢复送出 / shipping audit checkpoints again\n");
        sh->failing = 0;
    }
}

static void *run(void *arg)
{
    fp_audit_shipper *sh = arg;
    pthread_mutex_lock(&sh->mu);
    while (!sh->stop) {
        pthread_mutex_unlock(&sh->mu);
        ship_once(sh);
        pthread_mutex_lock(&sh->mu);
        int64_t until = fp_mono_ns() + (int64_t)sh->interval_ms * 1000000;
        while (!sh->stop && fp_cond_wait_until(&sh->cv, &sh->mu, until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

int fp_audit_shipper_start(const char *db_path, const char *dest, int interval_ms,
                           fp_audit_shipper **out, fp_err *err)
{
    *out = NULL;
    fp_audit_shipper *sh = calloc(1, sizeof *sh);
    size_t sl = strlen(db_path) + sizeof ".cp-shipped";
    if (!sh || !(sh->db = strdup(db_path)) || !(sh->dest = strdup(dest)) ||
        !(sh->state = malloc(sl))) {
        if (sh) {
            free(sh->db);
            free(sh->dest);
        }
        free(sh);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    snprintf(sh->state, sl, "%s.cp-shipped", db_path);
    sh->interval_ms = interval_ms > 0 ? interval_ms : 2000;
    pthread_mutex_init(&sh->mu, NULL);
    fp_cond_init_mono(&sh->cv);
    if (pthread_create(&sh->thr, NULL, run, sh) != 0) {
        pthread_cond_destroy(&sh->cv);
        pthread_mutex_destroy(&sh->mu);
        free(sh->state);
        free(sh->db);
        free(sh->dest);
        free(sh);
        return fp_fail(err, FP_EIO, "cannot start the checkpoint shipper thread");
    }
    *out = sh;
    return 0;
}

void fp_audit_shipper_stop(fp_audit_shipper *sh)
{
    if (!sh)
        return;
    pthread_mutex_lock(&sh->mu);
    sh->stop = 1;
    pthread_cond_signal(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    pthread_join(sh->thr, NULL);
    ship_once(sh); /* the checkpoint a clean shutdown signed */
    pthread_cond_destroy(&sh->cv);
    pthread_mutex_destroy(&sh->mu);
    free(sh->state);
    free(sh->db);
    free(sh->dest);
    free(sh);
}
