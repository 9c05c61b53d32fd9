/* conn_guard.h — per-connection reading deadlines against slow requests
 * (conn_guard.c). */
#ifndef FAPIAO_SERVER_CONN_GUARD_H
#define FAPIAO_SERVER_CONN_GUARD_H

#include <stdint.h>

#include "fapiao/clock.h"
#include "fapiao/err.h"

typedef struct fp_conn_guard fp_conn_guard;
typedef struct fp_guarded fp_guarded;

enum { FP_CUT_HEADER = 0, FP_CUT_BODY = 1, FP_CUT_SEND = 2, FP_CUT_EVICTED = 3, FP_CUT__N };

int fp_conn_guard_start(fp_conn_guard **out, int header_ms, int body_ms, int idle_ms, fp_err *err);
/* The same on clock (NULL: the real clocks), for tests of the deadlines. */
int fp_conn_guard_start_clock(fp_conn_guard **out, int header_ms, int body_ms, int idle_ms,
                              const fp_clock *clock, fp_err *err);
void fp_conn_guard_stop(fp_conn_guard *g);
/* A new connection on socket fd: headers due within header_ms.  NULL when
 * out of memory (the connection is then only subject to the idle timeout). */
fp_guarded *fp_conn_guard_open(fp_conn_guard *g, int fd);
void fp_conn_guard_close(fp_conn_guard *g, fp_guarded *c);
void fp_conn_guard_headers_read(fp_conn_guard *g, fp_guarded *c);
void fp_conn_guard_request_read(fp_conn_guard *g, fp_guarded *c);
void fp_conn_guard_answered(fp_conn_guard *g, fp_guarded *c);
/* Shutdown: connections between headers read and answer sent. */
int fp_conn_guard_busy(fp_conn_guard *g);
/* Shutdown: shuts down (both ways) every connection that is not busy, i.e.
 * has no request read and unanswered; returns how many. */
int fp_conn_guard_shutdown_idle(fp_conn_guard *g);
/* A response was queued: it must be sent within send_ms (slow readers). */
void fp_conn_guard_sending(fp_conn_guard *g, fp_guarded *c, int send_ms);
/* Under connection pressure (acceptor.h): shuts the oldest connection that
 * has not sent its first request yet (TLS handshake or headers pending),
 * else the oldest idle keep-alive one.  1 if one was shut, 0 if none. */
int fp_conn_guard_evict(fp_conn_guard *g);
/* Connections cut for reason (FP_CUT_…). */
uint64_t fp_conn_guard_cut(fp_conn_guard *g, int reason);

#endif
