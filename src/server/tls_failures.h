/* tls_failures.h — the server's record of TLS handshakes that failed, per
 * client address and reason (tls_failures.c, docs/security.md "Failed
 * handshakes"): a fixed-size table (the least recently seen entry makes
 * room, counted), per-reason totals for
 * fapiao_tls_handshake_failures_total{reason}, and a JSON snapshot for
 * GET /v1/admin/tls-failures. */
#ifndef FAPIAO_SERVER_TLS_FAILURES_H
#define FAPIAO_SERVER_TLS_FAILURES_H

#include <stdint.h>
#include <sys/socket.h>

#include "fapiao/err.h"
#include "fapiao/json.h"

/* Why a handshake failed: a bounded set (metric labels). */
enum {
    FP_TLSF_UNKNOWN_CA = 0,        /* the client's alert: it does not trust our chain */
    FP_TLSF_BAD_CERTIFICATE,       /* the client's alert bad_certificate */
    FP_TLSF_CERTIFICATE_UNKNOWN,   /* the client's alert certificate_unknown */
    FP_TLSF_CERTIFICATE_EXPIRED,   /* the client's alert certificate_expired */
    FP_TLSF_HANDSHAKE_FAILURE,     /* the client's alert handshake_failure */
    FP_TLSF_PROTOCOL_VERSION,      /* the client's alert protocol_version */
    FP_TLSF_OTHER_ALERT,           /* any other alert from the client */
    FP_TLSF_VERSION_TOO_OLD,       /* the client offered only TLS 1.1 or older */
    FP_TLSF_CLOSED,                /* the connection ended mid-handshake, no alert */
    FP_TLSF_SERVER_REFUSED,        /* the server ended it (no common cipher, bad record) */
    FP_TLSF_CLIENT_CERT_UNTRUSTED, /* a client certificate not from --client-ca */
    FP_TLSF__N
};

/* entries kept (distinct address and reason pairs) */
#define FP_TLS_FAILURES_CAP 256

typedef struct fp_tls_failures fp_tls_failures;

/* A table of cap entries (>= 1); NULL when out of memory. */
fp_tls_failures *fp_tls_failures_new(int cap);
void fp_tls_failures_free(fp_tls_failures *f);
/* One failure of the client at sa (any thread). */
void fp_tls_failures_add(fp_tls_failures *f, const struct sockaddr *sa, socklen_t len, int reason);
/* The reason for a TLS alert description the client sent. */
int fp_tls_failures_reason_of_alert(int alert);
const char *fp_tls_failures_reason_name(int reason);
uint64_t fp_tls_failures_total(fp_tls_failures *f, int reason);
/* Entries that made room for newer ones. */
uint64_t fp_tls_failures_evicted(fp_tls_failures *f);
/* {"capacity":..,"evicted":..,"totals":{reason:n},"failures":[{"address",
 * "reason","count","first_seen","last_seen"}]} (times in Unix ms), the most
 * recently seen first. */
void fp_tls_failures_json(fp_tls_failures *f, fp_jw *w);

#endif
