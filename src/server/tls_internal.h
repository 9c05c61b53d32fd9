/* tls_internal.h — what the TLS files share (not a public header): one
 * loaded generation (tls_gen) and the fp_tls that holds it.  The files:
 * tls_gen.c a generation's bytes and the private copy each handshake gets;
 * tls_selftest.c the test handshakes a generation passes before use;
 * tls_load.c reading and checking the files; tls.c the life cycle, reload,
 * the handshake callback and renegotiation guard. */
#ifndef FAPIAO_SERVER_TLS_INTERNAL_H
#define FAPIAO_SERVER_TLS_INTERNAL_H

#include "fapiao/tls.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#define MAX_CHAIN      8
#define MAX_CERT_FILE  (1u << 20) /* a chain, or a CA bundle */
#define MAX_KEY_FILE   (64u << 10)
#define MAX_OCSP_FILE  (64u << 10)
#define MAX_PASS_FILE  1024
#define MIN_RSA_BITS   2048
#define MIN_EC_BITS    256
#define OCSP_NO_NEXT_S (7 * 86400) /* staple a response without nextUpdate this long */

typedef struct tls_gen {
    gnutls_datum_t chain[MAX_CHAIN]; /* DER, leaf first (malloc) */
    unsigned nchain;
    gnutls_datum_t key;  /* DER (malloc; wiped before free) */
    gnutls_datum_t ocsp; /* DER response, size 0 if none stapled (malloc) */
    time_t ocsp_exptime; /* GnuTLS stops stapling after this */
    int64_t not_after;   /* earliest in the chain */
    char serial[2 * 20 + 1];
    long selftest_us; /* how long the test handshakes took */
} tls_gen;

/* One connection's handshake as tls.c watches it (indexed by its socket;
 * only the thread serving the connection touches it). */
typedef struct tls_conn {
    uint32_t guard;           /* renegotiation guard: record parser state */
    uint16_t hello_version;   /* the ClientHello's client_version */
    uint8_t flags;            /* C_… in tls.c */
    uint8_t alert;            /* the client's alert + 1; 0: none */
    uint8_t seen;             /* stream bytes seen, up to the hello's version */
    uint8_t rpos, rtype;      /* the client's current record: header byte, type */
    uint16_t rlen, rrem;      /* its length, body bytes still to come */
    gnutls_session_t session; /* between started and closed */
} tls_conn;

struct fp_tls {
    atomic_int refs;
    char *cert_path, *key_path, *ocsp_path, *pass_path;
    int warn_days;
    char *client_ca_pem; /* NUL-terminated, for MHD_OPTION_HTTPS_MEM_TRUST */
    pthread_rwlock_t lock;
    tls_gen *cur; /* under lock */
    atomic_uint_fast64_t generation;
    tls_conn *conns; /* per file descriptor (guard_pull, watching handshakes) */
    int conns_cap;
    struct fp_tls_failures *fails; /* the record of failed handshakes */
};

/* stderr, "fapiao: tls: ..." */
void fp_tls_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "YYYY-MM-DD HH:MM:SS UTC" */
void fp_tls_fmt_time(time_t t, char *out, size_t cap);

/* tls_gen.c */
void fp_tls_wipe_free(gnutls_datum_t *d);
void fp_tls_gen_free(tls_gen *g);
/* Moves a GnuTLS-allocated datum into malloc'd memory (src is freed). */
int fp_tls_take_datum(gnutls_datum_t *src, gnutls_datum_t *dst);
/* The key as every handshake imports it (the checks at load do the same). */
int fp_tls_import_handshake_key(const gnutls_datum_t *der, gnutls_privkey_t *out);
/* A private copy of generation g for one session (GnuTLS frees it with
 * the session: GNUTLS_CERT_RETR_DEINIT_ALL); a GnuTLS error code. */
int fp_tls_gen_copy(const tls_gen *g, gnutls_pcert_st **certs, unsigned *ncerts,
                    gnutls_ocsp_data_st **ocsp, unsigned *nocsp, gnutls_privkey_t *pkey);

/* tls_selftest.c: TLS 1.3 and 1.2 test handshakes with g (0 or FP_E…). */
int fp_tls_self_handshake(const fp_tls *t, tls_gen *g, fp_err *err);

/* tls_load.c: one generation from t's paths, checked and tested (warn
 * receives warnings); the client CA bundle as PEM. */
int fp_tls_load_gen(const fp_tls *t, tls_gen **out, char *warn, size_t wcap, fp_err *err);
int fp_tls_load_client_ca(const char *path, char **pem, fp_err *err);

#endif
