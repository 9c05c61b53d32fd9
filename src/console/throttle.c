/* throttle.c — growing delays after failed logins (docs/console.md,
 * "Guessing"), per address and per user, checked before any hashing.
 * Never a hard lockout: a delay doubles with each failure past the free
 * ones up to a cap, and the per-user cap is low (a minute), so someone
 * guessing at the admin's account from many addresses slows the admin's
 * login at most to one try a minute and never stops it.  A success clears
 * the key.  The table is fixed (FP_THROTTLE_KEYS); when full, the key
 * idle longest gives way. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static fp_throttle *slot(fp_console *c, const char *key, int make)
{
    fp_throttle *old = &c->throttle[0];
    for (int i = 0; i < FP_THROTTLE_KEYS; i++) {
        fp_throttle *t = &c->throttle[i];
        if (t->key[0] && strcmp(t->key, key) == 0)
            return t;
        if (t->last < old->last)
            old = t;
    }
    if (!make)
        return NULL;
    memset(old, 0, sizeof *old);
    snprintf(old->key, sizeof old->key, "%s", key);
    return old;
}

int fp_throttle_wait(fp_console *c, const char *key, int64_t now)
{
    pthread_mutex_lock(&c->lock);
    fp_throttle *t = slot(c, key, 0);
    int wait = t && t->next_ok > now ? (int)(t->next_ok - now) : 0;
    pthread_mutex_unlock(&c->lock);
    return wait;
}

void fp_throttle_fail(fp_console *c, const char *key, int64_t now, int free_fails, int cap_s)
{
    pthread_mutex_lock(&c->lock);
    fp_throttle *t = slot(c, key, 1);
    t->fails++;
    t->last = now;
    int over = t->fails - free_fails;
    if (over > 0) {
        int64_t d = over > 20 ? cap_s : (int64_t)1 << (over - 1);
        t->next_ok = now + (d < cap_s ? d : cap_s);
    }
    pthread_mutex_unlock(&c->lock);
}

void fp_throttle_ok(fp_console *c, const char *key)
{
    pthread_mutex_lock(&c->lock);
    fp_throttle *t = slot(c, key, 0);
    if (t)
        memset(t, 0, sizeof *t);
    pthread_mutex_unlock(&c->lock);
}
