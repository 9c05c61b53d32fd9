/* pool.c — what every part of the SQLite backend shares below its own
 * concern: the pool of read connections, the fail-stop refusal, and the
 * test-only fault hooks around a commit.  It calls nothing in the other
 * files of this folder, so they can all use it without a loop between
 * files (tests/unit/test_layers.c). */
#include "failstop.h"
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

reader *fp_sq_acquire(fp_sqlite *s)
{
    pthread_mutex_lock(&s->rlock);
    while (s->nfree == 0)
        pthread_cond_wait(&s->rcond, &s->rlock);
    reader *r = &s->readers[s->rfree[--s->nfree]];
    pthread_mutex_unlock(&s->rlock);
    return r;
}

void fp_sq_release(fp_sqlite *s, reader *r, sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    fp_failstop_note_db(r->db, "read"); /* corruption found by a read */
    pthread_mutex_lock(&s->rlock);
    s->rfree[s->nfree++] = (int)(r - s->readers);
    pthread_cond_signal(&s->rcond);
    pthread_mutex_unlock(&s->rlock);
}

sqlite3 *fp_sq_racquire(fp_sqlite *s, void **slot)
{
    reader *r = fp_sq_acquire(s);
    *slot = r;
    return r->db;
}

void fp_sq_rrelease(fp_sqlite *s, void *slot)
{
    fp_sq_release(s, slot, NULL);
}

int fp_sq_refuse_stopped(fp_sqlite *s, fp_err *err)
{
    char why[320];
    if (fp_failstop_get(s->fs, why, sizeof why) == FP_FAILSTOP_NONE)
        return 0;
    return fp_fail(err, FP_EIO,
                   "store fail-stopped (writes refused until an operator checks it): %.180s", why);
}

int fp_sq_fault_before_commit(fp_sqlite *s)
{
    int d = atomic_load(&s->fault_write_delay_ms);
    if (d > 0)
        sleep_ms(d);
    return atomic_load(&s->fault_write_fail) ? -1 : 0;
}

void fp_sq_fault_after_commit(fp_sqlite *s)
{
    int d = atomic_load(&s->fault_fsync_delay_ms);
    if (d > 0)
        sleep_ms(d);
}
