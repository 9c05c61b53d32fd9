/* tls.c — certificate chain, key and OCSP response: read and checked
 * (tls_load.c, tested by tls_selftest.c), handed to every handshake
 * through libmicrohttpd's certificate callback, and swapped on reload.
 * See include/fapiao/tls.h for what is checked.
 *
 * Ownership: one `tls_gen` holds one loaded generation as DER bytes.  The
 * GnuTLS callback parses a private copy for each handshake and tells GnuTLS
 * to free it with the session (GNUTLS_CERT_RETR_DEINIT_ALL), so nothing a
 * session holds points into a generation; a reload replaces the pointer
 * under the write lock and frees the old generation right away.  The cost
 * is parsing the chain and key once per full handshake: about 50 us
 * (measured with a P-256 or RSA-2048 leaf), paid for never having to know
 * when a session lets go of its certificate.
 *
 * Client-initiated renegotiation (TLS 1.2; CVE-2011-1473, a cheap way to
 * make the server do handshakes) is refused by dropping the connection
 * without close_notify: GnuTLS reports such a ClientHello to
 * libmicrohttpd, which closes politely, and a polite close does not tell a
 * client (or testssl.sh) that the renegotiation was refused.  See
 * guard_pull below. */
#include "tls_internal.h"
#include "fapiao/crypto.h"
#include "tls_failures.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The daemon's callback has no closure: the fp_tls it serves. */
static _Atomic(fp_tls *) attached;

static void log_loaded(const char *verb, const fp_tls *t, const tls_gen *g, const char *warn)
{
    char when[40];
    fp_tls_fmt_time((time_t)g->not_after, when, sizeof when);
    fp_tls_log("%s / %s: %s (serial %s, chain %u, valid until %s%s; test handshakes TLS 1.3 and "
               "1.2 passed in %ld.%03ld ms)",
               strcmp(verb, "loaded") == 0 ? "已加载证书" : "已重新加载证书", verb, t->cert_path,
               g->serial, g->nchain, when, g->ocsp.size ? ", OCSP stapled" : "",
               g->selftest_us / 1000, g->selftest_us % 1000);
    if (warn[0])
        fp_tls_log("警告 / warning: %s", warn);
}

int fp_tls_new(const fp_tls_opts *o, fp_tls **out, fp_err *err)
{
    *out = NULL;
    if (!o || !o->cert_path || !o->key_path)
        return fp_fail(err, FP_EINVAL,
                       "证书与私钥路径必填 / certificate and key paths are required");
    fp_tls *t = calloc(1, sizeof *t);
    if (!t)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    atomic_init(&t->refs, 1);
    pthread_rwlock_init(&t->lock, NULL);
    t->warn_days = o->warn_days > 0 ? o->warn_days : 30;
    t->cert_path = strdup(o->cert_path);
    t->key_path = strdup(o->key_path);
    t->ocsp_path = o->ocsp_path ? strdup(o->ocsp_path) : NULL;
    t->pass_path = o->key_passphrase_path ? strdup(o->key_passphrase_path) : NULL;
    int rc;
    if (!t->cert_path || !t->key_path || (o->ocsp_path && !t->ocsp_path) ||
        (o->key_passphrase_path && !t->pass_path)) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    if (o->client_ca_path &&
        (rc = fp_tls_load_client_ca(o->client_ca_path, &t->client_ca_pem, err)) < 0)
        goto fail;
    char warn[1024];
    if ((rc = fp_tls_load_gen(t, &t->cur, warn, sizeof warn, err)) < 0)
        goto fail;
    if (!(t->fails = fp_tls_failures_new(FP_TLS_FAILURES_CAP))) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto fail;
    }
    atomic_init(&t->generation, 1);
    log_loaded("loaded", t, t->cur, warn);
    *out = t;
    return 0;
fail:
    fp_tls_free(t);
    return rc;
}

int fp_tls_reload(fp_tls *t, fp_err *err)
{
    tls_gen *g = NULL;
    char warn[1024];
    int rc = fp_tls_load_gen(t, &g, warn, sizeof warn, err);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&t->lock);
    tls_gen *old = t->cur;
    t->cur = g;
    atomic_fetch_add(&t->generation, 1);
    pthread_rwlock_unlock(&t->lock);
    fp_tls_gen_free(old); /* no handshake holds it: each took its own copy */
    log_loaded("reloaded", t, g, warn);
    return 0;
}

fp_tls *fp_tls_ref(fp_tls *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

void fp_tls_free(fp_tls *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    fp_tls *self = t;
    atomic_compare_exchange_strong(&attached, &self, NULL);
    fp_tls_gen_free(t->cur);
    pthread_rwlock_destroy(&t->lock);
    free(t->conns);
    fp_tls_failures_free(t->fails);
    free(t->client_ca_pem);
    free(t->cert_path);
    free(t->key_path);
    free(t->ocsp_path);
    free(t->pass_path);
    free(t);
}

int64_t fp_tls_not_after(const fp_tls *t)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&t->lock);
    int64_t v = t->cur->not_after;
    pthread_rwlock_unlock((pthread_rwlock_t *)&t->lock);
    return v;
}

uint64_t fp_tls_generation(const fp_tls *t)
{
    return atomic_load(&((fp_tls *)t)->generation);
}

int fp_tls_stapling(const fp_tls *t)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&t->lock);
    int v = t->cur->ocsp.size > 0;
    pthread_rwlock_unlock((pthread_rwlock_t *)&t->lock);
    return v;
}

int fp_tls_has_client_ca(const fp_tls *t)
{
    return t && t->client_ca_pem != NULL;
}

void fp_tls_serial_hex(const fp_tls *t, char *out, size_t cap)
{
    pthread_rwlock_rdlock((pthread_rwlock_t *)&t->lock);
    snprintf(out, cap, "%s", t->cur->serial);
    pthread_rwlock_unlock((pthread_rwlock_t *)&t->lock);
}

/* ---- refusing client-initiated renegotiation ----
 *
 * The client's records are followed through the socket reads of its
 * session (GnuTLS reads a 5-byte record header, then the body): in TLS 1.2
 * the handshake ends with the client's ChangeCipherSpec and one handshake
 * record (Finished); a handshake record after that is a renegotiation
 * ClientHello: the socket is shut down and the read fails with
 * ECONNRESET, so the connection ends without close_notify.  TLS 1.3
 * hides record types after the handshake (all are application_data) and
 * has no renegotiation.  The state lives in a table indexed by the socket
 * (one connection per socket at a time, reset by `retrieve` when the
 * connection's handshake starts); each connection is served by one thread.
 * Bits: 0-2 header byte position (5: in the body), 3 handshake record,
 * 4 ChangeCipherSpec record, 5-6 phase (0 handshake, 1 after CCS, 2 done),
 * 8-23 body bytes left. */
#define G_POS(s)   ((s)&7u)
#define G_HS       (1u << 3)
#define G_CCS      (1u << 4)
#define G_PHASE(s) (((s) >> 5) & 3u)
#define G_REM(s)   (((s) >> 8) & 0xffffu)

static uint32_t g_set_phase(uint32_t s, uint32_t ph)
{
    return (s & ~(3u << 5)) | (ph << 5);
}

static uint32_t g_set_rem(uint32_t s, uint32_t rem)
{
    return (s & ~(0xffffu << 8)) | (rem << 8);
}

/* Feeds bytes read from the client; -1 on a renegotiation attempt. */
static int guard_feed(uint32_t *state, const unsigned char *p, size_t n)
{
    uint32_t s = *state;
    size_t i = 0;
    while (i < n) {
        uint32_t pos = G_POS(s);
        if (pos == 5) {
            uint32_t rem = G_REM(s), k = n - i < rem ? (uint32_t)(n - i) : rem;
            i += k;
            s = g_set_rem(s, rem - k);
            if (rem == k)
                s &= ~7u;
            continue;
        }
        unsigned char b = p[i++];
        if (pos == 0) {
            s &= ~(G_HS | G_CCS);
            if (b == 22 && G_PHASE(s) == 2) {
                *state = s;
                return -1;
            }
            s |= b == 22 ? G_HS : b == 20 ? G_CCS : 0;
        } else if (pos == 3) {
            s = g_set_rem(s, (uint32_t)b << 8);
        } else if (pos == 4) {
            s = g_set_rem(s, G_REM(s) | b);
        }
        s = (s & ~7u) | (pos + 1);
        if (pos + 1 == 5) {
            if ((s & G_CCS) && G_PHASE(s) == 0)
                s = g_set_phase(s, 1);
            else if ((s & G_HS) && G_PHASE(s) == 1)
                s = g_set_phase(s, 2);
            if (G_REM(s) == 0)
                s &= ~7u;
        }
    }
    *state = s;
    return 0;
}

/* The connection this thread read from last (fp_tls_handshake_failed). */
static _Thread_local int last_fd = -1;

enum { C_OPEN = 1, C_GUARD = 2, C_DONE = 4, C_EOF = 8, C_FAILED = 16, C_BADCERT = 32 };

/* Follows the client's records: the client_version of the first one (a
 * ClientHello; stream offsets 9 and 10: 5 record header, 1 type, 3
 * length) and the description of a plaintext alert.  A client that rejects
 * our certificate in TLS 1.3 before it has switched to its handshake keys
 * (OpenSSL does) sends its alert in plaintext, which GnuTLS, expecting an
 * encrypted record, refuses without noting the alert. */
static void note_records(tls_conn *c, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n && c->seen < 11; i++)
        if (c->seen++ >= 9)
            c->hello_version = (uint16_t)(c->hello_version << 8 | p[i]);
    for (size_t i = 0; i < n; i++) {
        if (c->rpos < 5) { /* the record header */
            if (c->rpos == 0)
                c->rtype = p[i];
            else if (c->rpos >= 3)
                c->rlen = (uint16_t)(c->rpos == 3 ? p[i] << 8 : c->rlen | p[i]);
            c->rpos = c->rpos == 4 && c->rlen == 0 ? 0 : c->rpos + 1;
            c->rrem = c->rlen;
            continue;
        }
        size_t skip = n - i < c->rrem ? n - i : c->rrem; /* the body, at once */
        if (c->rtype == 21 && c->rlen == 2) {            /* a plaintext alert: level, description */
            if (c->rrem == 1 && !c->alert)
                c->alert = (uint8_t)(p[i] + 1);
            skip = 1;
        }
        c->rrem = (uint16_t)(c->rrem - skip);
        i += skip - 1;
        if (c->rrem == 0)
            c->rpos = 0;
    }
}

static ssize_t guard_pull(gnutls_transport_ptr_t ptr, void *buf, size_t size)
{
    int fd = (int)(intptr_t)ptr;
    ssize_t n = recv(fd, buf, size, 0);
    fp_tls *t = atomic_load(&attached);
    if (!t || fd < 0 || fd >= t->conns_cap)
        return n;
    tls_conn *c = &t->conns[fd];
    last_fd = fd;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        c->flags |= C_EOF;
    if (n > 0 && !(c->flags & C_DONE)) /* the handshake's records only */
        note_records(c, buf, (size_t)n);
    if (n > 0 && (c->flags & C_GUARD) && guard_feed(&c->guard, buf, (size_t)n) < 0) {
        /* GnuTLS sends alerts even on a failed session: shut the socket
         * first so that no close_notify makes the refusal look polite */
        shutdown(fd, SHUT_RDWR);
        errno = ECONNRESET;
        return -1;
    }
    return n;
}

/* Replacing the pull function requires replacing its timeout twin. */
static int guard_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
    struct pollfd pfd = {.fd = (int)(intptr_t)ptr, .events = POLLIN};
    int timeout = ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms;
    int r;
    do
        r = poll(&pfd, 1, timeout);
    while (r < 0 && errno == EINTR);
    return r;
}

static void guard_start(fp_tls *t, gnutls_session_t session)
{
    int fd = gnutls_transport_get_int(session);
    if (!t->conns || fd < 0 || fd >= t->conns_cap)
        return; /* beyond the table: renegotiation still ends the connection, politely */
    t->conns[fd].guard = 0;
    t->conns[fd].flags |= C_GUARD;
    gnutls_transport_set_pull_function(session, guard_pull);
    gnutls_transport_set_pull_timeout_function(session, guard_pull_timeout);
}

/* gnutls_certificate_retrieve_function3: a private copy of the current
 * generation for this session; GnuTLS frees it with the session. */
static int retrieve(gnutls_session_t session, const struct gnutls_cert_retr_st *info,
                    gnutls_pcert_st **certs, unsigned *ncerts, gnutls_ocsp_data_st **ocsp,
                    unsigned *nocsp, gnutls_privkey_t *pkey, unsigned *flags)
{
    (void)info;
    fp_tls *t = atomic_load(&attached);
    if (!t)
        return GNUTLS_E_INSUFFICIENT_CREDENTIALS;
    if (t->client_ca_pem) /* ask for (do not require) a client certificate */
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
    guard_start(t, session);
    pthread_rwlock_rdlock(&t->lock);
    int rc = fp_tls_gen_copy(t->cur, certs, ncerts, ocsp, nocsp, pkey);
    pthread_rwlock_unlock(&t->lock);
    if (rc == 0)
        *flags = GNUTLS_CERT_RETR_DEINIT_ALL;
    return rc;
}

int fp_tls_mhd_options(fp_tls *t, struct MHD_OptionItem *items, size_t cap, fp_err *err)
{
    if (cap < 4)
        return fp_fail(err, FP_EINVAL, "option array too small");
    if (!t->conns) {
        struct rlimit rl;
        rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        if (n == RLIM_INFINITY || n > (1u << 20))
            n = 1u << 20; /* calloc'd pages stay untouched until used */
        if (n < 1024)
            n = 1024;
        if (!(t->conns = calloc((size_t)n, sizeof *t->conns)))
            return fp_fail(err, FP_ENOMEM, "out of memory");
        t->conns_cap = (int)n;
    }
    fp_tls *none = NULL;
    if (!atomic_compare_exchange_strong(&attached, &none, t) && none != t)
        return fp_fail(err, FP_EBUSY, "another TLS configuration is already in use");
    size_t i = 0;
    items[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK2, 0, (void *)&retrieve};
    if (t->client_ca_pem)
        items[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, t->client_ca_pem};
    items[i] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return 0;
}

void fp_tls_detach(fp_tls *t)
{
    fp_tls *self = t;
    atomic_compare_exchange_strong(&attached, &self, NULL);
}

int fp_tls_peer_sha256(struct MHD_Connection *c, char out[65])
{
    out[0] = 0;
    const union MHD_ConnectionInfo *ci =
        c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION) : NULL;
    if (!ci || !ci->tls_session)
        return FP_ENOTFOUND;
    gnutls_session_t s = ci->tls_session;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    if (!peers || n == 0)
        return FP_ENOTFOUND;
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
    unsigned status = 0;
    if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) < 0 || status != 0)
        return FP_ENOTFOUND;
    unsigned char md[32];
    fp_sha256(peers[0].data, peers[0].size, md);
    fp_hex(md, sizeof md, out);
    return 0;
}

/* ---- watching handshakes (docs/security.md "Failed handshakes") ----
 *
 * libmicrohttpd runs the handshakes and tells nobody why one failed: its
 * log says "received handshake message out of context" for every failure,
 * and the session is gone by the time the connection's close is notified.
 * So each connection's session gets our pull function from the start
 * (started), which notes the ClientHello's version, an end of the stream,
 * and the connection this thread read last; a hook on the client's Finished
 * marks the handshake done (and checks a client certificate against the
 * client CA); the log line of a failure (fp_tls_handshake_failed) reads the
 * client's alert from the session while it is still alive, on the thread
 * that read that alert last.  At the close, a connection without a done
 * handshake is a failure, recorded with the client's address and the most
 * specific reason known: the client's alert, a ClientHello older than TLS
 * 1.2 (the server offers 1.2 and 1.3), the stream ending, or the server
 * ending it. */

fp_tls_failures *fp_tls_failures_of(fp_tls *t)
{
    return t ? t->fails : NULL;
}

static tls_conn *conn_of(fp_tls *t, int fd)
{
    return t && t->conns && fd >= 0 && fd < t->conns_cap ? &t->conns[fd] : NULL;
}

static int on_handshake_msg(gnutls_session_t session, unsigned htype, unsigned when,
                            unsigned incoming, const gnutls_datum_t *msg)
{
    (void)msg;
    fp_tls *t = atomic_load(&attached);
    tls_conn *c = conn_of(t, gnutls_transport_get_int(session));
    if (!c || htype != GNUTLS_HANDSHAKE_FINISHED || when != GNUTLS_HOOK_POST || !incoming)
        return 0;
    c->flags |= C_DONE;
    unsigned n = 0, status = 0;
    if (t->client_ca_pem && gnutls_certificate_get_peers(session, &n) && n > 0 &&
        (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0))
        c->flags |= C_BADCERT; /* requested, not required: the handshake goes on */
    return 0;
}

void fp_tls_conn_started(fp_tls *t, struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *si =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t session = si ? (gnutls_session_t)si->tls_session : NULL;
    tls_conn *c = session ? conn_of(t, gnutls_transport_get_int(session)) : NULL;
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    c->session = session;
    c->flags = C_OPEN;
    gnutls_transport_set_pull_function(session, guard_pull);
    gnutls_transport_set_pull_timeout_function(session, guard_pull_timeout);
    gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_POST,
                                       on_handshake_msg);
}

void fp_tls_handshake_failed(fp_tls *t)
{
    tls_conn *c = conn_of(t, last_fd);
    last_fd = -1;
    if (!c || !(c->flags & C_OPEN) || (c->flags & C_DONE) || !c->session)
        return;
    c->flags |= C_FAILED;
    int alert = (int)gnutls_alert_get(c->session);
    if (alert > 0 && alert < 255 && !c->alert) /* 0 is close_notify: also "none received" */
        c->alert = (uint8_t)(alert + 1);
}

static int failure_reason(const tls_conn *c)
{
    if (c->flags & C_DONE)
        return (c->flags & C_BADCERT) ? FP_TLSF_CLIENT_CERT_UNTRUSTED : -1;
    if (c->alert)
        return fp_tls_failures_reason_of_alert(c->alert - 1);
    if (c->seen >= 11 && c->hello_version < 0x0303)
        return FP_TLSF_VERSION_TOO_OLD;
    if ((c->flags & C_FAILED) && !(c->flags & C_EOF))
        return FP_TLSF_SERVER_REFUSED;
    return FP_TLSF_CLOSED;
}

void fp_tls_conn_closed(fp_tls *t, struct MHD_Connection *mc, const struct sockaddr *sa,
                        socklen_t len)
{
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    tls_conn *c = fi ? conn_of(t, fi->connect_fd) : NULL;
    if (!c || !(c->flags & C_OPEN))
        return;
    int reason = failure_reason(c);
    if (reason >= 0)
        fp_tls_failures_add(t->fails, sa, len, reason);
    if (last_fd == fi->connect_fd)
        last_fd = -1;
    memset(c, 0, sizeof *c);
}
