/* doctor_tls.c — the doctor's TLS layer: GnuTLS on the connected socket,
 * verification after the handshake so that every problem gets a name
 * instead of a handshake abort; and the http:// port probe. */
#include "doctor_internal.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- 4 TLS ---- */

/* What clients of today negotiate: TLS 1.2 and 1.3 (OpenSSL 3, Java 11+,
 * browsers and curl refuse 1.0 and 1.1).  A server that only speaks those is
 * a protocol mismatch even though GnuTLS's NORMAL would still talk to it;
 * LEGACY_PRIORITY is used once, afterwards, to name what the server speaks. */
#define TLS_PRIORITY    "NORMAL:-VERS-TLS1.1:-VERS-TLS1.0"
#define LEGACY_PRIORITY "NORMAL:+VERS-TLS1.1:+VERS-TLS1.0"

/* An older client stack, simulated (--tls-max, --tls-priority): what it
 * offers, and its name for the report.  A client that stops below TLS 1.2
 * offers exactly the versions up to its maximum, as Windows 7 or Java 6. */
static const struct {
    int max;
    const char *prio, *name;
} old_clients[] = {
    {10, "NORMAL:-VERS-ALL:+VERS-TLS1.0", "TLS 1.0"},
    {11, "NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0", "TLS 1.0 and 1.1"},
    {12, "NORMAL:-VERS-ALL:+VERS-TLS1.2", "TLS 1.2"},
    {13, TLS_PRIORITY, "TLS 1.2 and 1.3"},
};

static const char *client_priority(const fp_doctor_opts *o, const char **name)
{
    *name = "TLS 1.2 and 1.3";
    if (o->tls_priority) {
        *name = o->tls_priority;
        return o->tls_priority;
    }
    for (size_t i = 0; i < sizeof old_clients / sizeof old_clients[0]; i++)
        if (old_clients[i].max == o->tls_max) {
            *name = old_clients[i].name;
            return old_clients[i].prio;
        }
    return TLS_PRIORITY;
}

int fp_doc_tls_opts_check(const fp_doctor_opts *o, const char **why)
{
    int known = o->tls_max == 0;
    for (size_t i = 0; i < sizeof old_clients / sizeof old_clients[0]; i++)
        known |= old_clients[i].max == o->tls_max;
    if (!known) {
        *why = "--tls-max wants 1.0, 1.1, 1.2 or 1.3";
        return -1;
    }
    gnutls_priority_t p;
    if (o->tls_priority && gnutls_priority_init(&p, o->tls_priority, NULL) < 0) {
        *why = "--tls-priority is not a GnuTLS priority string (gnutls-cli --priority)";
        return -1;
    }
    if (o->tls_priority)
        gnutls_priority_deinit(p);
    /* --pin: "sha256//" + 44 characters of base64, ';' between pins */
    for (const char *q = o->pin; q;) {
        size_t len = strcspn(q, ";");
        if (len != 8 + 44 || strncmp(q, "sha256//", 8) != 0 || q[8 + 43] != '=' ||
            strspn(q + 8, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") !=
                43) {
            *why = "--pin wants sha256//BASE64 (44 characters), several separated by ';'";
            return -1;
        }
        q = q[len] == ';' ? q + len + 1 : NULL; /* after a ';' another pin */
    }
    return 0;
}

typedef struct tls_io {
    int fd;
    int timeout_ms;
    unsigned char first[16];
    size_t nfirst;
    int timed_out;
    int err; /* errno of the first failed recv/send (ECONNRESET: reset) */
} tls_io;

static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t n)
{
    tls_io *io = p;
    struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
    int k = poll(&pfd, 1, io->timeout_ms);
    if (k == 0) {
        io->timed_out = 1;
        errno = ETIMEDOUT;
        return -1;
    }
    if (k < 0)
        return -1;
    ssize_t got = recv(io->fd, buf, n, 0);
    if (got < 0 && !io->err && errno != EAGAIN && errno != EINTR)
        io->err = errno;
    if (got > 0 && io->nfirst < sizeof io->first) {
        size_t take = (size_t)got < sizeof io->first - io->nfirst ? (size_t)got
                                                                  : sizeof io->first - io->nfirst;
        memcpy(io->first + io->nfirst, buf, take);
        io->nfirst += take;
    }
    return got;
}

static int tls_pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    tls_io *io = p;
    struct pollfd pfd = {.fd = io->fd, .events = POLLIN};
    return poll(&pfd, 1, (int)ms);
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const void *buf, size_t n)
{
    tls_io *io = p;
    ssize_t k = send(io->fd, buf, n, MSG_NOSIGNAL);
    if (k < 0 && !io->err && errno != EAGAIN && errno != EINTR)
        io->err = errno;
    return k;
}

static int self_issued(gnutls_x509_crt_t crt)
{
    return gnutls_x509_crt_check_issuer(crt, crt) != 0;
}

/* Does a handshake on fd, no verification; returns gnutls code.  Used for
 * the http:// → TLS port probe too. */
static int tls_session(dctx *c, int fd, gnutls_certificate_credentials_t cred, const char *prio,
                       tls_io *io, gnutls_session_t *out)
{
    gnutls_session_t s;
    *out = NULL;
    int rc = gnutls_init(&s, GNUTLS_CLIENT);
    if (rc < 0)
        return rc;
    gnutls_priority_set_direct(s, prio, NULL);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    if (!c->ip_literal)
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, c->r->host, strlen(c->r->host));
    gnutls_ocsp_status_request_enable_client(s, NULL, 0, NULL);
    io->fd = fd;
    io->timeout_ms = c->timeout_ms;
    gnutls_transport_set_ptr(s, io);
    gnutls_transport_set_pull_function(s, tls_pull);
    gnutls_transport_set_pull_timeout_function(s, tls_pull_timeout);
    gnutls_transport_set_push_function(s, tls_push);
    gnutls_handshake_set_timeout(s, (unsigned)c->timeout_ms);
    do
        rc = gnutls_handshake(s);
    while (rc < 0 && !gnutls_error_is_fatal(rc) && !io->timed_out);
    *out = s;
    return rc;
}

static void add_dn(cJSON *d, const char *key, gnutls_x509_crt_t crt, int issuer)
{
    gnutls_datum_t dn = {0};
    int rc = issuer ? gnutls_x509_crt_get_issuer_dn2(crt, &dn) : gnutls_x509_crt_get_dn2(crt, &dn);
    if (rc >= 0 && dn.data) {
        cJSON_AddStringToObject(d, key, (const char *)dn.data);
        gnutls_free(dn.data);
    }
}

/* After a version or cipher mismatch: does the server talk to a client
 * with priority prio (a legacy one, or a current one)?  Puts the protocol
 * it picks (e.g. "TLS1.0") in buf, or "". */
static void probe_protocol(dctx *c, const char *prio, char *buf, size_t n)
{
    buf[0] = 0;
    int e;
    int fd = fp_doc_tcp_connect((struct sockaddr *)&c->addr[c->conn_idx], c->addrlen[c->conn_idx],
                                c->timeout_ms, &e);
    if (fd < 0)
        return;
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        close(fd);
        return;
    }
    tls_io io = {0};
    gnutls_session_t s = NULL;
    if (tls_session(c, fd, cred, prio, &io, &s) >= 0) {
        const char *v = gnutls_protocol_get_name(gnutls_protocol_get_version(s));
        snprintf(buf, n, "%s", v ? v : "?");
    }
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    close(fd);
}

static void protocol_mismatch(dctx *c, const char *seen)
{
    const char *offered;
    if (strcmp(client_priority(c->o, &offered), TLS_PRIORITY) != 0) {
        /* an old client simulated: does a current one get through? */
        char now[32];
        probe_protocol(c, TLS_PRIORITY, now, sizeof now);
        cJSON_AddStringToObject(fp_doc_det(c, FP_DOC_TLS), "server_protocol",
                                now[0] ? now : "none");
        if (now[0]) {
            fp_doc_hit(c, FP_DOC_TLS, "TLS_CLIENT_TOO_OLD",
                       "%s: this client offers only %s, and the server wants more (a current "
                       "client gets %s): the client's TLS stack is too old",
                       seen, offered, now);
            return;
        }
    }
    char legacy[32];
    probe_protocol(c, LEGACY_PRIORITY, legacy, sizeof legacy);
    cJSON_AddStringToObject(fp_doc_det(c, FP_DOC_TLS), "legacy_protocol",
                            legacy[0] ? legacy : "none");
    if (legacy[0])
        fp_doc_hit(c, FP_DOC_TLS, "TLS_PROTOCOL_MISMATCH",
                   "%s (the server speaks only %s, which current clients refuse: TLS 1.2 or "
                   "1.3 is needed)",
                   seen, legacy);
    else
        fp_doc_hit(c, FP_DOC_TLS, "TLS_PROTOCOL_MISMATCH", "%s", seen);
}

/* The trust store the chain is verified against: --cacert or the system's. */
static void tls_trust(dctx *c, cJSON *d, gnutls_certificate_credentials_t cred)
{
    if (c->o->cacert) {
        int n = gnutls_certificate_set_x509_trust_file(cred, c->o->cacert, GNUTLS_X509_FMT_PEM);
        if (n <= 0)
            cJSON_AddStringToObject(d, "cacert_error", n < 0 ? gnutls_strerror(n) : "no cert");
        cJSON_AddStringToObject(d, "trust", c->o->cacert);
    } else {
        gnutls_certificate_set_x509_system_trust(cred);
        cJSON_AddStringToObject(d, "trust", "system");
    }
}

/* The handshake failed (rc): name why — plain HTTP, an alert (a client
 * certificate wanted, an old protocol), a reset, no common version or
 * cipher, silence. */
static void tls_refused(dctx *c, cJSON *d, int rc, tls_io *iop, gnutls_session_t s)
{
    tls_io io = *iop;
    /* the connection is of no more use; closing it before the probes
     * below also frees a server that serves one connection at a time */
    close(c->fd);
    c->fd = -1;
    char first[16] = "";
    memcpy(first, io.first, io.nfirst < 15 ? io.nfirst : 15);
    if (io.nfirst >= 5 && memcmp(io.first, "HTTP/", 5) == 0) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_PLAIN_HTTP",
                   "the server answered the TLS hello with plain HTTP (\"%.8s…\"); use http:// "
                   "or the HTTPS port",
                   first);
    } else if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        int al = gnutls_alert_get(s);
        const char *an = gnutls_alert_get_name((gnutls_alert_description_t)al);
        cJSON_AddStringToObject(d, "alert", an ? an : "?");
        char seen[128];
        snprintf(seen, sizeof seen, "the server refused the handshake: alert %s", an ? an : "?");
        c->cert_requested = gnutls_certificate_client_get_request_status(s) != 0;
        cJSON_AddBoolToObject(d, "client_cert_requested", c->cert_requested);
        if (c->cert_requested &&
            (al == GNUTLS_A_HANDSHAKE_FAILURE || al == GNUTLS_A_CERTIFICATE_REQUIRED ||
             al == GNUTLS_A_BAD_CERTIFICATE || al == GNUTLS_A_ACCESS_DENIED))
            fp_doc_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED",
                       "the server requires a client certificate (mutual TLS) and ended the "
                       "handshake without one: alert %s",
                       an ? an : "?");
        else if (al == GNUTLS_A_HANDSHAKE_FAILURE || al == GNUTLS_A_PROTOCOL_VERSION ||
                 al == GNUTLS_A_INSUFFICIENT_SECURITY)
            protocol_mismatch(c, seen);
        else
            fp_doc_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED", "the server sent alert %s",
                       an ? an : "?");
    } else if (fp_doc_is_reset(io.err)) {
        cJSON_AddStringToObject(d, "errno", strerror(io.err));
        fp_doc_add_reset(c, FP_DOC_TLS,
                         io.nfirst ? "in the middle of the TLS handshake"
                                   : "before answering the TLS ClientHello");
    } else if (rc == GNUTLS_E_UNSUPPORTED_VERSION_PACKET || rc == GNUTLS_E_NO_CIPHER_SUITES ||
               rc == GNUTLS_E_UNKNOWN_CIPHER_SUITE || rc == GNUTLS_E_INSUFFICIENT_SECURITY) {
        char seen[128];
        snprintf(seen, sizeof seen, "handshake: %s", gnutls_strerror(rc));
        protocol_mismatch(c, seen);
    } else {
        /* maybe plain HTTP that waited for a line end: ask in plain text */
        char buf[32];
        int silent = 0;
        size_t n = fp_doc_plain_probe(c, buf, sizeof buf, &silent);
        if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0)
            fp_doc_hit(c, FP_DOC_TLS, "TLS_PLAIN_HTTP",
                       "the port speaks plain HTTP (\"%.12s…\"), not TLS; use http:// or the "
                       "HTTPS port",
                       buf);
        else if (io.timed_out && !silent && fp_doc_mtu_blackhole(c))
            ; /* small packets pass, the server's large ones vanish */
        else if (io.timed_out && io.nfirst == 0)
            fp_doc_hit(c, FP_DOC_TLS, "TLS_TIMEOUT",
                       "connected, but no answer to the TLS ClientHello within %d ms%s",
                       c->timeout_ms, silent ? " (nor to a plain HTTP request)" : "");
        else
            fp_doc_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED", "handshake: %s",
                       io.timed_out ? "the server stopped answering within the timeout"
                       : io.nfirst == 0 && rc == GNUTLS_E_PREMATURE_TERMINATION
                           ? "the server closed the connection without answering the "
                             "ClientHello"
                           : gnutls_strerror(rc));
    }
    cJSON_AddStringToObject(d, "handshake_error", gnutls_strerror(rc));
}

/* The leaf's names, validity, key and signature into d. */
static void tls_describe_leaf(dctx *c, cJSON *d, gnutls_x509_crt_t leaf)
{
    add_dn(d, "subject", leaf, 0);
    add_dn(d, "issuer", leaf, 1);
    c->cert_nb = gnutls_x509_crt_get_activation_time(leaf);
    c->cert_na = gnutls_x509_crt_get_expiration_time(leaf);
    char ts[32];
    fp_doc_fmt_time(c->cert_nb, ts, sizeof ts);
    cJSON_AddStringToObject(d, "not_before", ts);
    fp_doc_fmt_time(c->cert_na, ts, sizeof ts);
    cJSON_AddStringToObject(d, "not_after", ts);
}

/* The leaf's public key as a pin, "sha256//BASE64" of its DER
 * SubjectPublicKeyInfo (curl's CURLOPT_PINNEDPUBLICKEY, which `fapiao issue
 * --pin` hands the pin to); "" when it cannot be computed. */
static void spki_pin(gnutls_x509_crt_t leaf, char *buf, size_t n)
{
    buf[0] = 0;
    gnutls_pubkey_t pk;
    if (gnutls_pubkey_init(&pk) < 0)
        return;
    gnutls_datum_t der = {0}, b64 = {0};
    unsigned char h[32];
    if (gnutls_pubkey_import_x509(pk, leaf, 0) >= 0 &&
        gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der) >= 0 &&
        gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, h) >= 0) {
        gnutls_datum_t hd = {h, sizeof h};
        if (gnutls_base64_encode2(&hd, &b64) >= 0) {
            snprintf(buf, n, "sha256//%.*s", (int)b64.size, (const char *)b64.data);
            gnutls_free(b64.data);
        }
    }
    gnutls_free(der.data);
    gnutls_pubkey_deinit(pk);
}

static int pin_listed(const char *pins, const char *pin)
{
    size_t n = strlen(pin);
    for (const char *q = pins; n && q;) {
        size_t len = strcspn(q, ";");
        if (len == n && memcmp(q, pin, n) == 0)
            return 1;
        q = q[len] == ';' ? q + len + 1 : NULL; /* after a ';' another pin */
    }
    return 0;
}

static int issuer_seen(gnutls_x509_crt_t *crt, unsigned ncrt, const char *want)
{
    int seen = 0;
    for (unsigned i = 0; i < ncrt && !seen; i++) {
        gnutls_datum_t dn = {0};
        if (gnutls_x509_crt_get_issuer_dn2(crt[i], &dn) >= 0 && dn.data) {
            seen = strcasestr((const char *)dn.data, want) != NULL;
            gnutls_free(dn.data);
        }
    }
    return seen;
}

/* Who signed the top of the chain, for the report: "O" (CN). */
static void issuer_name(gnutls_x509_crt_t top, char *buf, size_t n)
{
    char org[128] = "", cn[128] = "";
    size_t so = sizeof org, sc = sizeof cn;
    if (gnutls_x509_crt_get_issuer_dn_by_oid(top, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, 0, org,
                                             &so) < 0)
        org[0] = 0;
    if (gnutls_x509_crt_get_issuer_dn_by_oid(top, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &sc) < 0)
        cn[0] = 0;
    if (org[0] && cn[0])
        snprintf(buf, n, "\"%s\" (%s)", org, cn);
    else
        snprintf(buf, n, "\"%s\"", org[0] ? org : cn[0] ? cn : "?");
}

/* --expect-issuer and --pin: a chain that is not the server's own, with
 * the interceptor named from its issuer.  1 when so (a finding is added);
 * it comes before every other verdict on the chain, which would describe
 * the interceptor's certificate, not the server's. */
static int tls_intercepted(dctx *c, cJSON *d, gnutls_x509_crt_t *crt, unsigned ncrt)
{
    const fp_doctor_opts *o = c->o;
    char pin[80], who[300];
    spki_pin(crt[0], pin, sizeof pin);
    cJSON_AddStringToObject(d, "pin", pin);
    add_dn(d, "top_issuer", crt[ncrt - 1], 1);
    int pin_bad = o->pin && !pin_listed(o->pin, pin);
    int issuer_bad = o->expect_issuer && !issuer_seen(crt, ncrt, o->expect_issuer);
    if (!pin_bad && !issuer_bad)
        return 0;
    issuer_name(crt[ncrt - 1], who, sizeof who);
    cJSON_AddStringToObject(d, "interceptor", who);
    if (issuer_bad)
        fp_doc_hit(c, FP_DOC_TLS, "TLS_INTERCEPTED",
                   "the chain ends at %s, not at the expected issuer \"%s\": something on the "
                   "way (an SSL-inspection gateway, antivirus HTTPS scanning, a proxy) re-signs "
                   "the connection",
                   who, o->expect_issuer);
    else
        fp_doc_hit(c, FP_DOC_TLS, "TLS_INTERCEPTED",
                   "the server's key %s is not the pinned one (--pin); the chain ends at %s: "
                   "something on the way re-signs the connection, or the server's key was "
                   "replaced",
                   pin, who);
    return 1;
}

/* Verifies the chain (the host name, or the IP SAN for an IP literal):
 * the GnuTLS result, the status bits in *status. */
static int tls_verify(dctx *c, cJSON *d, gnutls_session_t s, gnutls_x509_crt_t leaf,
                      unsigned *status)
{
    fp_doctor_report *r = c->r;
    int vr = gnutls_certificate_verify_peers3(s, c->ip_literal ? NULL : r->host, status);
    if (c->ip_literal && vr >= 0) {
        /* IP literal: match the IP SAN ourselves */
        unsigned char ipb[16];
        size_t ipl = 0;
        if (inet_pton(AF_INET, r->host, ipb) == 1)
            ipl = 4;
        else if (inet_pton(AF_INET6, r->host, ipb) == 1)
            ipl = 16;
        if (ipl && !gnutls_x509_crt_check_ip(leaf, ipb, (unsigned)ipl, 0))
            *status |= GNUTLS_CERT_UNEXPECTED_OWNER | GNUTLS_CERT_INVALID;
    }
    gnutls_datum_t st = {0};
    if (vr >= 0 &&
        gnutls_certificate_verification_status_print(*status, GNUTLS_CRT_X509, &st, 0) >= 0) {
        cJSON_AddStringToObject(d, "verify", (const char *)st.data);
        gnutls_free(st.data);
    }
    gnutls_datum_t ocsp = {0};
    if (gnutls_ocsp_status_request_get(s, &ocsp) == 0)
        cJSON_AddStringToObject(d, "ocsp",
                                gnutls_ocsp_status_request_is_checked(s, 0)
                                    ? "stapled, good"
                                    : "stapled, not verified");
    else
        cJSON_AddStringToObject(d, "ocsp", "not stapled");
    return vr;
}

/* The chain is complete up to its top certificate, a CA the server sends
 * without the root above it, and that root is not in the trust store: an
 * old Java cacerts, an old CA bundle, a store without the company root. */
static void root_missing(dctx *c, gnutls_x509_crt_t top, unsigned ncrt)
{
    gnutls_datum_t dn = {0};
    int rc = gnutls_x509_crt_get_issuer_dn2(top, &dn);
    fp_doc_hit(c, FP_DOC_TLS, "TLS_ROOT_MISSING",
               "the chain (%u certificates) needs the root \"%s\", which the trust store (%s) "
               "does not have",
               ncrt, rc >= 0 && dn.data ? (const char *)dn.data : "?",
               c->o->cacert ? c->o->cacert : "the system's");
    if (rc >= 0)
        gnutls_free(dn.data);
}

/* The verdict on the certificate, first problem first. */
static void tls_judge(dctx *c, int vr, unsigned status, gnutls_x509_crt_t *crt, unsigned ncrt,
                      const char *keyd, int pk, unsigned bits, int sa)
{
    fp_doctor_report *r = c->r;
    gnutls_x509_crt_t leaf = crt[0];
    time_t nb = c->cert_nb, na = c->cert_na, now = time(NULL);
    long days = (long)((na - now) / 86400);
    char nas[32];
    fp_doc_fmt_time(na, nas, sizeof nas);
    char nbs[32];
    fp_doc_fmt_time(nb, nbs, sizeof nbs);
    if (vr < 0) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED", "cannot verify: %s", gnutls_strerror(vr));
    } else if (status & GNUTLS_CERT_REVOKED) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_CERT_REVOKED", "the certificate is revoked (stapled OCSP)");
    } else if ((status & GNUTLS_CERT_EXPIRED) || now > na) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_CERT_EXPIRED",
                   "the certificate expired on %s (%ld days ago)", nas, -days);
    } else if ((status & GNUTLS_CERT_NOT_ACTIVATED) || now < nb) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_CERT_NOT_YET_VALID", "the certificate is valid from %s only",
                   nbs);
    } else if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
        gnutls_x509_crt_t last = crt[ncrt - 1];
        int leaf_issuer_sent = 0;
        for (unsigned i = 1; i < ncrt; i++)
            if (gnutls_x509_crt_check_issuer(leaf, crt[i]))
                leaf_issuer_sent = 1;
        if (ncrt == 1 && self_issued(leaf))
            fp_doc_hit(c, FP_DOC_TLS, "TLS_SELF_SIGNED",
                       "the certificate is self-signed and not in the trust store%s",
                       c->o->cacert ? " (--cacert)" : "; pass it with --cacert");
        else if (!self_issued(last) && !leaf_issuer_sent)
            fp_doc_hit(c, FP_DOC_TLS, "TLS_CHAIN_INCOMPLETE",
                       "the server sent %u certificate(s) without the leaf's issuer; the "
                       "intermediate is missing",
                       ncrt);
        else if (!self_issued(last))
            root_missing(c, last, ncrt);
        else
            fp_doc_hit(
                c, FP_DOC_TLS, "TLS_UNTRUSTED_ISSUER",
                "the chain (%u certificates) ends at an issuer the trust store does not know",
                ncrt);
    } else if ((status & GNUTLS_CERT_INSECURE_ALGORITHM) || (pk == GNUTLS_PK_RSA && bits < 2048)) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_WEAK_KEY", "weak certificate: %s, %s", keyd,
                   gnutls_sign_get_name((gnutls_sign_algorithm_t)sa));
    } else if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_HOSTNAME_MISMATCH", "the certificate is not valid for %s",
                   r->host);
    } else if (status & GNUTLS_CERT_INVALID) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_UNTRUSTED_ISSUER", "the chain does not verify (status 0x%x)",
                   status);
    } else if (days < 30) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_CERT_EXPIRING_SOON",
                   "the certificate expires on %s (%ld days)", nas, days);
    }
}

void fp_doc_layer_tls(dctx *c)
{
    c->r->phase[FP_DOC_TLS].status = FP_PHASE_OK;
    c->r->phase[FP_DOC_TLS].note[0] = 0;
    double t0 = fp_doc_now_ms();
    cJSON *d = fp_doc_det(c, FP_DOC_TLS);
    fp_doctor_report *r = c->r;
    gnutls_certificate_credentials_t cred;
    gnutls_certificate_allocate_credentials(&cred);
    tls_trust(c, d, cred);
    const char *offered;
    const char *prio = client_priority(c->o, &offered);
    if (strcmp(prio, TLS_PRIORITY) != 0)
        cJSON_AddStringToObject(d, "client_priority", prio);
    tls_io io = {0};
    gnutls_session_t s = NULL;
    int rc = tls_session(c, c->fd, cred, prio, &io, &s);
    if (rc == GNUTLS_E_TIMEDOUT)
        io.timed_out = 1; /* the handshake's own timeout, via tls_pull_timeout */
    if (rc < 0) {
        tls_refused(c, d, rc, &io, s);
        goto out;
    }
    char *desc = gnutls_session_get_desc(s);
    if (desc) {
        cJSON_AddStringToObject(d, "session", desc);
        gnutls_free(desc);
    }
    cJSON_AddStringToObject(d, "protocol",
                            gnutls_protocol_get_name(gnutls_protocol_get_version(s)));
    /* TLS 1.3 finishes the client's handshake before the server looks at
     * the (empty) client certificate; its refusal comes with the first read */
    c->cert_requested = gnutls_certificate_client_get_request_status(s) != 0;
    if (c->cert_requested)
        cJSON_AddBoolToObject(d, "client_cert_requested", 1);
    cJSON_AddStringToObject(d, "cipher", gnutls_cipher_get_name(gnutls_cipher_get(s)));
    unsigned nraw = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(s, &nraw);
    gnutls_x509_crt_t crt[8];
    unsigned ncrt = 0;
    for (unsigned i = 0; raw && i < nraw && ncrt < 8; i++) {
        if (gnutls_x509_crt_init(&crt[ncrt]) < 0)
            break;
        if (gnutls_x509_crt_import(crt[ncrt], &raw[i], GNUTLS_X509_FMT_DER) < 0) {
            gnutls_x509_crt_deinit(crt[ncrt]);
            break;
        }
        ncrt++;
    }
    cJSON_AddNumberToObject(d, "chain_length", ncrt);
    if (ncrt == 0) {
        fp_doc_hit(c, FP_DOC_TLS, "TLS_HANDSHAKE_FAILED", "the server sent no certificate");
        goto out;
    }
    gnutls_x509_crt_t leaf = crt[0];
    tls_describe_leaf(c, d, leaf);
    time_t now = time(NULL);
    long days = (long)((c->cert_na - now) / 86400);
    cJSON_AddNumberToObject(d, "days_left", (double)days);
    unsigned bits = 0;
    int pk = gnutls_x509_crt_get_pk_algorithm(leaf, &bits);
    char keyd[64];
    snprintf(keyd, sizeof keyd, "%s %u bits", gnutls_pk_get_name((gnutls_pk_algorithm_t)pk), bits);
    cJSON_AddStringToObject(d, "key", keyd);
    int sa = gnutls_x509_crt_get_signature_algorithm(leaf);
    cJSON_AddStringToObject(d, "signature", gnutls_sign_get_name((gnutls_sign_algorithm_t)sa));

    unsigned status = 0;
    int vr = tls_verify(c, d, s, leaf, &status);
    if (!tls_intercepted(c, d, crt, ncrt))
        tls_judge(c, vr, status, crt, ncrt, keyd, pk, bits, sa);
    if (!fp_doc_failed(c, FP_DOC_TLS))
        fp_doc_note(c, FP_DOC_TLS, "%s, %s, expires in %ld days",
                    gnutls_protocol_get_name(gnutls_protocol_get_version(s)),
                    gnutls_cipher_get_name(gnutls_cipher_get(s)), days);
    for (unsigned i = 0; i < ncrt; i++)
        gnutls_x509_crt_deinit(crt[i]);
    gnutls_bye(s, GNUTLS_SHUT_WR);
out:
    if (s)
        gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    r->phase[FP_DOC_TLS].ms = fp_doc_now_ms() - t0;
}

/* http:// URL: does the port answer plain HTTP or want TLS?  0 = plain ok
 * (or cannot tell), 1 = TLS, 2 = it says nothing at all until the timeout. */
int fp_doc_http_wants_tls(dctx *c)
{
    char buf[32];
    int silent = 0;
    size_t n = fp_doc_plain_probe(c, buf, sizeof buf, &silent);
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0)
        return 0;
    if (n > 0 && (unsigned char)buf[0] == 0x15)
        return 1; /* a TLS alert record */
    if (silent)
        return 2; /* a TLS server would have sent an alert or closed */
    int e;
    int fd = fp_doc_tcp_connect((struct sockaddr *)&c->addr[c->conn_idx], c->addrlen[c->conn_idx],
                                c->timeout_ms, &e);
    if (fd < 0)
        return 0;
    gnutls_certificate_credentials_t cred;
    gnutls_certificate_allocate_credentials(&cred);
    tls_io io = {0};
    gnutls_session_t s = NULL;
    int rc = tls_session(c, fd, cred, LEGACY_PRIORITY, &io, &s);
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    close(fd);
    return rc >= 0 || (io.nfirst > 0 && io.first[0] == 0x16);
}
