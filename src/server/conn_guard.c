/* conn_guard.c — deadlines for reading a request (slow-request attacks).
 *
 * libmicrohttpd closes a connection that is silent for the idle timeout,
 * but a client trickling one byte a second is never silent.  The guard
 * gives every connection a deadline for what it is reading now:
 *
 *   accepted            TLS handshake + request line + headers within header_ms
 *   headers read        the body within body_ms
 *   request read        no deadline (the server is working on the answer)
 *   answer queued       the whole answer sent within send_ms (a client that
 *                       does not read would pin its response in memory)
 *   answer sent         the next request's headers within idle_ms + header_ms
 *                       (libmicrohttpd closes a silent keep-alive at idle_ms)
 *
 * A thread looks every 100 ms (on the monotonic clock: clock.h) and shuts down (shutdown(2), both
 * ways) the socket of a connection past its deadline (and fp_conn_guard_evict, under connection
 * pressure, the oldest one that has not sent a request); libmicrohttpd then sees the error, cleans
 * up and reports the close, which removes the entry — under the same mutex, so the reaper never
 * touches a socket that was closed. */
#include "conn_guard.h"
#include "fapiao/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct fp_guarded {
    int fd;
    int64_t deadline_ms; /* 0: none */
    int reason;          /* what the deadline is for */
    int phase;           /* P_… */
    fp_guarded *prev, *next;
};

/* Where a connection is: no request yet (handshake or first headers
 * pending), in a request, or idle between two (keep-alive); or shut. */
enum { P_FRESH = 0, P_REQUEST, P_IDLE, P_SHUT };

struct fp_conn_guard {
    int header_ms, body_ms, idle_ms;
    const fp_clock *clock; /* NULL: the real clocks (clock.h) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fp_guarded head; /* sentinel of a circular list */
    int stopping;
    pthread_t th;
    atomic_uint_fast64_t cut[FP_CUT__N];
};

static void *reaper(void *arg)
{
    fp_conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        int64_t now = fp_clock_mono_ms(g->clock);
        for (fp_guarded *c = g->head.next; c != &g->head; c = c->next)
            if (c->deadline_ms && now >= c->deadline_ms) {
                shutdown(c->fd, SHUT_RDWR);
                atomic_fetch_add(&g->cut[c->reason], 1);
                c->deadline_ms = 0; /* once */
                c->phase = P_SHUT;
            }
        fp_clock_wait_ms(g->clock, &g->cv, &g->mu, 100);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int fp_conn_guard_start(fp_conn_guard **out, int header_ms, int body_ms, int idle_ms, fp_err *err)
{
    return fp_conn_guard_start_clock(out, header_ms, body_ms, idle_ms, NULL, err);
}

int fp_conn_guard_start_clock(fp_conn_guard **out, int header_ms, int body_ms, int idle_ms,
                              const fp_clock *clock, fp_err *err)
{
    fp_conn_guard *g = calloc(1, sizeof *g);
    if (!g)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    g->header_ms = header_ms;
    g->body_ms = body_ms;
    g->idle_ms = idle_ms;
    g->clock = clock;
    g->head.next = g->head.prev = &g->head;
    pthread_mutex_init(&g->mu, NULL);
    fp_cond_init_mono(&g->cv);
    if (pthread_create(&g->th, NULL, reaper, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g);
        return fp_fail(err, FP_EIO, "cannot start the connection guard thread");
    }
    *out = g;
    return 0;
}

void fp_conn_guard_stop(fp_conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->th, NULL);
    /* entries left belong to connections libmicrohttpd already closed */
    for (fp_guarded *c = g->head.next, *n; c != &g->head; c = n) {
        n = c->next;
        free(c);
    }
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

fp_guarded *fp_conn_guard_open(fp_conn_guard *g, int fd)
{
    fp_guarded *c = calloc(1, sizeof *c);
    if (!c)
        return NULL; /* unguarded: the idle timeout still applies */
    c->fd = fd;
    c->deadline_ms = fp_clock_mono_ms(g->clock) + g->header_ms;
    c->reason = FP_CUT_HEADER;
    pthread_mutex_lock(&g->mu);
    c->next = g->head.next;
    c->prev = &g->head;
    g->head.next->prev = c;
    g->head.next = c;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void fp_conn_guard_close(fp_conn_guard *g, fp_guarded *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

static void set(fp_conn_guard *g, fp_guarded *c, int64_t deadline, int reason, int phase)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->phase != P_SHUT) {
        c->deadline_ms = deadline;
        c->reason = reason;
        c->phase = phase;
    }
    pthread_mutex_unlock(&g->mu);
}

void fp_conn_guard_headers_read(fp_conn_guard *g, fp_guarded *c)
{
    set(g, c, fp_clock_mono_ms(g->clock) + g->body_ms, FP_CUT_BODY, P_REQUEST);
}

void fp_conn_guard_request_read(fp_conn_guard *g, fp_guarded *c)
{
    set(g, c, 0, FP_CUT_HEADER, P_REQUEST);
}

void fp_conn_guard_answered(fp_conn_guard *g, fp_guarded *c)
{
    set(g, c, fp_clock_mono_ms(g->clock) + g->idle_ms + g->header_ms, FP_CUT_HEADER, P_IDLE);
}

int fp_conn_guard_busy(fp_conn_guard *g)
{
    int n = 0;
    pthread_mutex_lock(&g->mu);
    for (fp_guarded *c = g->head.next; c != &g->head; c = c->next)
        n += c->phase == P_REQUEST;
    pthread_mutex_unlock(&g->mu);
    return n;
}

int fp_conn_guard_shutdown_idle(fp_conn_guard *g)
{
    int n = 0;
    pthread_mutex_lock(&g->mu);
    for (fp_guarded *c = g->head.next; c != &g->head; c = c->next)
        if (c->phase != P_REQUEST && c->phase != P_SHUT) {
            shutdown(c->fd, SHUT_RDWR);
            c->deadline_ms = 0;
            c->phase = P_SHUT;
            n++;
        }
    pthread_mutex_unlock(&g->mu);
    return n;
}

void fp_conn_guard_sending(fp_conn_guard *g, fp_guarded *c, int send_ms)
{
    /* still a request: the answer is not sent yet */
    set(g, c, fp_clock_mono_ms(g->clock) + send_ms, FP_CUT_SEND, P_REQUEST);
}

int fp_conn_guard_evict(fp_conn_guard *g)
{
    static const int order[] = {P_FRESH, P_IDLE};
    int done = 0;
    pthread_mutex_lock(&g->mu);
    /* the list has the newest first: walk it from the oldest */
    for (size_t i = 0; !done && i < sizeof order / sizeof order[0]; i++)
        for (fp_guarded *c = g->head.prev; c != &g->head; c = c->prev)
            if (c->phase == order[i]) {
                shutdown(c->fd, SHUT_RDWR);
                atomic_fetch_add(&g->cut[FP_CUT_EVICTED], 1);
                c->deadline_ms = 0;
                c->phase = P_SHUT;
                done = 1;
                break;
            }
    pthread_mutex_unlock(&g->mu);
    return done;
}

uint64_t fp_conn_guard_cut(fp_conn_guard *g, int reason)
{
    return atomic_load(&g->cut[reason]);
}
