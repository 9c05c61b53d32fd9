/* doctor_mtu.c — TCP_MTU_BLACKHOLE: the TLS handshake stalled on the
 * server's flight (ServerHello and certificate chain, more than one
 * packet) although the server answers a small request.  A path whose MTU
 * is lower than both ends think, where the ICMP "fragmentation needed"
 * that would tell the server is filtered, loses every full-sized packet
 * and passes small ones.  The doctor tells it by one more handshake on a
 * connection that advertises a small MSS (TCP_MAXSEG): the server then
 * sends small segments, and if that handshake completes, size was the
 * problem.  The verdict sits on the tcp phase (exit 30); the tls phase,
 * where it struck, fails with the same code (as a reset does). */
#include "doctor_internal.h"

#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PROBE_MSS 536 /* the minimum every IPv4 path carries (RFC 879) */

/* A handshake without verification on fd: 1 when the server's flight
 * arrived (completed, or the server went on to refuse with an alert). */
static int small_handshake(dctx *c, int fd)
{
    gnutls_certificate_credentials_t cred;
    gnutls_session_t s;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return 0;
    if (gnutls_init(&s, GNUTLS_CLIENT) < 0) {
        gnutls_certificate_free_credentials(cred);
        return 0;
    }
    gnutls_priority_set_direct(s, "NORMAL:-VERS-TLS1.1:-VERS-TLS1.0", NULL);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
    if (!c->ip_literal)
        gnutls_server_name_set(s, GNUTLS_NAME_DNS, c->r->host, strlen(c->r->host));
    gnutls_transport_set_int(s, fd);
    gnutls_handshake_set_timeout(s, (unsigned)c->timeout_ms);
    int rc, tries = 0;
    do
        rc = gnutls_handshake(s);
    while (rc < 0 && !gnutls_error_is_fatal(rc) && rc != GNUTLS_E_TIMEDOUT && ++tries < 1000);
    gnutls_deinit(s);
    gnutls_certificate_free_credentials(cred);
    return rc == 0 || rc == GNUTLS_E_FATAL_ALERT_RECEIVED;
}

int fp_doc_mtu_blackhole(dctx *c)
{
    int e = 0;
    const struct sockaddr *sa = (const struct sockaddr *)&c->addr[c->conn_idx];
    int fd = fp_doc_tcp_connect_mss(sa, c->addrlen[c->conn_idx], c->timeout_ms, PROBE_MSS, &e);
    if (fd < 0)
        return 0;
    double t0 = fp_doc_now_ms();
    int ok = small_handshake(c, fd);
    close(fd);
    cJSON *d = fp_doc_det(c, FP_DOC_TLS);
    cJSON *p = cJSON_AddObjectToObject(d, "small_mss_probe");
    cJSON_AddNumberToObject(p, "mss", PROBE_MSS);
    cJSON_AddBoolToObject(p, "handshake", ok);
    cJSON_AddNumberToObject(p, "ms", fp_doc_r3(fp_doc_now_ms() - t0));
    if (!ok)
        return 0;
    fp_doc_hit(c, FP_DOC_TCP, "TCP_MTU_BLACKHOLE",
               "connected to %s port %d and a small request is answered, but the TLS handshake "
               "stalls on the server's certificate flight; with an MSS of %d bytes it completes: "
               "full-sized packets are lost on the path (an MTU black hole)",
               c->conn_ip, c->r->port, PROBE_MSS);
    fp_doctor_phase *ph = &c->r->phase[FP_DOC_TLS];
    ph->status = FP_PHASE_FAIL;
    ph->finding = "TCP_MTU_BLACKHOLE";
    snprintf(ph->note, sizeof ph->note,
             "the handshake stalls on large packets; with MSS %d it completes", PROBE_MSS);
    return 1;
}
