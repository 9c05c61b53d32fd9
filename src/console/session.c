/* session.c — console sessions in memory (console.h): a fixed table of
 * FP_SESSIONS_MAX, each found by the SHA-256 of its cookie value, with an
 * idle timeout and an absolute lifetime.  When the table is full the
 * session seen longest ago gives way. */
#include "internal.h"

#include "fapiao/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void token(char out[48])
{
    unsigned char r[32];
    fp_random(r, sizeof r);
    fp_b64url_encode(r, sizeof r, out);
}

int fp_session_create(fp_console *c, const fp_user *u, int64_t now, char sid[48],
                      fp_console_who *who)
{
    memset(who, 0, sizeof *who);
    snprintf(who->user, sizeof who->user, "%s", u->name);
    who->roles = u->roles;
    who->seller_id = u->seller_id;
    who->expires = now + c->max_s;
    token(sid);
    token(who->csrf);
    pthread_mutex_lock(&c->lock);
    fp_session *slot = &c->sessions[0];
    for (int i = 0; i < FP_SESSIONS_MAX; i++) {
        fp_session *x = &c->sessions[i];
        if (x->last_seen && (now - x->last_seen > c->idle_s || now >= x->who.expires))
            x->last_seen = 0; /* expired: free */
        if (x->last_seen < slot->last_seen)
            slot = x;
    }
    fp_sha256(sid, strlen(sid), slot->sid_hash);
    slot->who = *who;
    slot->last_seen = now;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static fp_session *find(fp_console *c, const char *sid)
{
    unsigned char h[32];
    fp_sha256(sid, strlen(sid), h);
    for (int i = 0; i < FP_SESSIONS_MAX; i++)
        if (c->sessions[i].last_seen && fp_ct_equal(c->sessions[i].sid_hash, h, 32))
            return &c->sessions[i];
    return NULL;
}

int fp_console_session(fp_console *c, const char *sid, int64_t now, fp_console_who *who)
{
    if (!sid || strlen(sid) != 43)
        return FP_ENOTFOUND;
    int rc = FP_ENOTFOUND;
    pthread_mutex_lock(&c->lock);
    fp_session *x = find(c, sid);
    if (x && (now - x->last_seen > c->idle_s || now >= x->who.expires))
        x->last_seen = 0;
    else if (x) {
        x->last_seen = now;
        *who = x->who;
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void fp_console_logout(fp_console *c, const char *sid)
{
    if (!sid || strlen(sid) != 43)
        return;
    pthread_mutex_lock(&c->lock);
    fp_session *x = find(c, sid);
    if (x)
        memset(x, 0, sizeof *x);
    pthread_mutex_unlock(&c->lock);
}

int fp_console_max_age(const fp_console *c)
{
    return c->max_s;
}
