/* tls_selftest.c — the test handshakes a generation passes before it is
 * used (at start and on SIGHUP). */
#include "tls_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the test handshake ----
 *
 * Before a generation is used (at start and on SIGHUP) a GnuTLS client
 * completes a handshake, TLS 1.3 and TLS 1.2, against a server session
 * that takes its certificate from the generation exactly as `retrieve`
 * does (fp_tls_gen_copy), with the daemon's priorities, over a socketpair.  The
 * client does not judge trust (that is the clients' business and the
 * chain checks'), but the handshake does verify the server's signature
 * with the certificate's public key: a key that parses yet cannot sign
 * for its certificate is refused here instead of failing every real
 * handshake. */
static int selftest_retrieve(gnutls_session_t session, const struct gnutls_cert_retr_st *info,
                             gnutls_pcert_st **certs, unsigned *ncerts, gnutls_ocsp_data_st **ocsp,
                             unsigned *nocsp, gnutls_privkey_t *pkey, unsigned *flags)
{
    (void)info;
    const tls_gen *g = gnutls_session_get_ptr(session);
    int rc = fp_tls_gen_copy(g, certs, ncerts, ocsp, nocsp, pkey);
    if (rc == 0)
        *flags = GNUTLS_CERT_RETR_DEINIT_ALL;
    return rc;
}

#define SELFTEST_ROUNDS 64 /* a handshake takes 2-4 of them */

static int one_test_handshake(const tls_gen *g, const char *versions,
                              gnutls_certificate_credentials_t scred,
                              gnutls_certificate_credentials_t ccred, char *why, size_t cap)
{
    int sv[2] = {-1, -1};
    gnutls_session_t ss = NULL, cs = NULL;
    char prio[512];
    snprintf(prio, sizeof prio, "%s:%s", FP_TLS_PRIORITIES, versions);
    int rc = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(why, cap, "socketpair: %s", strerror(errno));
        return -1;
    }
    int gr;
    if ((gr = gnutls_init(&ss, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS)) < 0 ||
        (gr = gnutls_init(&cs, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS)) < 0 ||
        (gr = gnutls_priority_set_direct(ss, prio, NULL)) < 0 ||
        (gr = gnutls_priority_set_direct(cs, prio, NULL)) < 0 ||
        (gr = gnutls_credentials_set(ss, GNUTLS_CRD_CERTIFICATE, scred)) < 0 ||
        (gr = gnutls_credentials_set(cs, GNUTLS_CRD_CERTIFICATE, ccred)) < 0) {
        snprintf(why, cap, "set-up: %s", gnutls_strerror(gr));
        goto out;
    }
    gnutls_session_set_ptr(ss, (void *)g);
    gnutls_transport_set_int(ss, sv[0]);
    gnutls_transport_set_int(cs, sv[1]);
    int sr = GNUTLS_E_AGAIN, cr = GNUTLS_E_AGAIN;
    for (int round = 0; round < SELFTEST_ROUNDS && (sr != 0 || cr != 0); round++) {
        if (cr != 0 && (cr = gnutls_handshake(cs)) < 0 && gnutls_error_is_fatal(cr))
            break;
        if (sr != 0 && (sr = gnutls_handshake(ss)) < 0 && gnutls_error_is_fatal(sr))
            break;
    }
    if (sr != 0 || cr != 0) {
        snprintf(why, cap, "client: %s; server: %s",
                 cr == 0                ? "done"
                 : cr == GNUTLS_E_AGAIN ? "waiting"
                                        : gnutls_strerror(cr),
                 sr == 0                ? "done"
                 : sr == GNUTLS_E_AGAIN ? "waiting"
                                        : gnutls_strerror(sr));
        goto out;
    }
    /* the client saw this generation's certificate */
    unsigned np = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(cs, &np);
    if (!peers || np == 0 || peers[0].size != g->chain[0].size ||
        memcmp(peers[0].data, g->chain[0].data, peers[0].size) != 0) {
        snprintf(why, cap, "the client received another certificate");
        goto out;
    }
    rc = 0;
out:
    if (cs)
        gnutls_deinit(cs);
    if (ss)
        gnutls_deinit(ss);
    close(sv[0]);
    close(sv[1]);
    return rc;
}

int fp_tls_self_handshake(const fp_tls *t, tls_gen *g, fp_err *err)
{
    static const struct {
        const char *name, *versions;
    } vers[] = {{"TLS 1.3", "-VERS-ALL:+VERS-TLS1.3"}, {"TLS 1.2", "-VERS-ALL:+VERS-TLS1.2"}};
    gnutls_certificate_credentials_t scred = NULL, ccred = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (gnutls_certificate_allocate_credentials(&scred) < 0 ||
        gnutls_certificate_allocate_credentials(&ccred) < 0) {
        gnutls_certificate_free_credentials(scred);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    gnutls_certificate_set_retrieve_function3(scred, selftest_retrieve);
    int rc = 0;
    for (size_t i = 0; i < sizeof vers / sizeof vers[0] && rc == 0; i++) {
        char why[160];
        if (one_test_handshake(g, vers[i].versions, scred, ccred, why, sizeof why) < 0)
            rc = fp_fail(err, FP_EINVAL,
                         "证书与私钥无法完成测试握手 / the key %s and its certificate fail a %s "
                         "test handshake (%s)",
                         t->key_path, vers[i].name, why);
    }
    gnutls_certificate_free_credentials(scred);
    gnutls_certificate_free_credentials(ccred);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    g->selftest_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    return rc;
}
