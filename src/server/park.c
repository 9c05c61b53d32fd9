/* park.c — the issue requests suspended while the writer commits them, in
 * a list kept for shutdown (fp_server_stop): whatever is still parked when
 * the grace period ends is answered there. */
#include "internal.h"

void fp_server_unpark(fp_server *s, fp_req *r)
{
    if (!r->parked)
        return;
    if (r->park_prev)
        r->park_prev->park_next = r->park_next;
    else
        s->parked = r->park_next;
    if (r->park_next)
        r->park_next->park_prev = r->park_prev;
    r->park_prev = r->park_next = NULL;
    r->parked = 0;
}

void fp_server_park(fp_server *s, fp_req *r)
{
    pthread_mutex_lock(&s->park_lock);
    r->park_prev = NULL;
    r->park_next = s->parked;
    if (s->parked)
        s->parked->park_prev = r;
    s->parked = r;
    r->parked = 1;
    pthread_mutex_unlock(&s->park_lock);
}

/* Answers every request still suspended: its claim goes to shutdown, the
 * writer keeps (and frees) the request, and the connection resumes into
 * fp_h_issue_abandoned.  Requests the writer already claimed are on their
 * way out and are left alone.  Returns how many were abandoned. */
int fp_server_abandon_parked(fp_server *s)
{
    int n = 0;
    pthread_mutex_lock(&s->park_lock);
    for (fp_req *r = s->parked, *next; r; r = next) {
        next = r->park_next;
        fp_parked_issue *p = (fp_parked_issue *)r->issue;
        int unclaimed = 0;
        if (!p || !atomic_compare_exchange_strong(&p->claim, &unclaimed, 2))
            continue;
        r->issue = NULL;
        r->abandoned = 1;
        fp_server_unpark(s, r);
        MHD_resume_connection(r->conn);
        n++;
    }
    pthread_mutex_unlock(&s->park_lock);
    return n;
}
