/* acceptor.h — our own accept layer in front of libmicrohttpd
 * (acceptor.c, docs/security.md "Connections"): per-address and global
 * connection caps, a pre-handshake deadline, eviction of the oldest
 * connections that have not started their TLS handshake, and the PROXY
 * protocol v2 from trusted proxies.  Sockets are handed to libmicrohttpd
 * with the client's real address once their first TLS record is in. */
#ifndef FAPIAO_SERVER_ACCEPTOR_H
#define FAPIAO_SERVER_ACCEPTOR_H

#include <stdint.h>
#include <sys/socket.h>

#include "fapiao/err.h"
#include "fapiao/rbac.h"

typedef struct fp_acceptor fp_acceptor;

typedef struct fp_acceptor_opts {
    const struct sockaddr *addr; /* where to listen */
    socklen_t addrlen;
    int max_conns;    /* waiting + handed over, all addresses */
    int max_per_ip;   /* the same per client address; <= 0: no limit */
    int handshake_ms; /* accept → PROXY header (trusted proxies) and first TLS record */
    const fp_allowlist *trusted; /* proxies that must send a PROXY v2 header (may be NULL) */
    /* Takes over fd (closes it on failure) with the client's address.  Runs
     * on the acceptor's thread. */
    void (*hand_over)(void *cls, int fd, const struct sockaddr *sa, socklen_t len);
    /* Under pressure with nothing waiting here: closes the oldest handed-over
     * connection that has not sent its first request (1) or finds none (0). */
    int (*evict)(void *cls);
    void *cls;
} fp_acceptor_opts;

/* Why a connection was closed here (fapiao_http_connections_refused_total). */
enum {
    FP_ACC_HANDSHAKE_TIMEOUT = 0, /* no first TLS record (or PROXY header) in time */
    FP_ACC_EVICTED,               /* oldest waiting one, closed for a newer one at the cap */
    FP_ACC_PER_IP,                /* over the per-address cap */
    FP_ACC_GLOBAL,                /* at the cap with nothing to evict */
    FP_ACC_PROXY_UNTRUSTED,       /* a PROXY header from an address not trusted */
    FP_ACC_PROXY_INVALID,         /* a trusted proxy without a valid PROXY v2 header */
    FP_ACC_NOT_TLS,               /* first bytes not a TLS handshake record */
    FP_ACC__N
};

/* Binds and listens (0, or FP_EIO with a message), starts the thread. */
int fp_acceptor_start(const fp_acceptor_opts *o, fp_acceptor **out, fp_err *err);
int fp_acceptor_port(const fp_acceptor *a);
/* Stops accepting: the thread ends, the listening socket and connections
 * still waiting are closed.  Idempotent; fp_acceptor_closed stays usable. */
void fp_acceptor_stop(fp_acceptor *a);
/* libmicrohttpd started / ended a connection with client address sa (its
 * notifications: they pair exactly). */
void fp_acceptor_opened(fp_acceptor *a, const struct sockaddr *sa, socklen_t len);
void fp_acceptor_closed(fp_acceptor *a, const struct sockaddr *sa, socklen_t len);
void fp_acceptor_free(fp_acceptor *a);
uint64_t fp_acceptor_count(fp_acceptor *a, int why);
/* Connections waiting for their first bytes now. */
int fp_acceptor_waiting(fp_acceptor *a);

#endif
