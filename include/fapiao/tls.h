/* tls.h — the server's TLS credentials: a certificate chain and key read
 * from files and checked before they are used, an optional stapled OCSP
 * response, an optional client CA for mutual TLS, and reload without
 * dropping connections.
 *
 * libmicrohttpd asks for the certificate once per handshake through a
 * GnuTLS retrieve callback (MHD_OPTION_HTTPS_CERT_CALLBACK2) instead of
 * taking it once at start.  The callback hands each handshake its own copy
 * of the current credentials (GNUTLS_CERT_RETR_DEINIT_ALL: GnuTLS frees the
 * copy with the session), so a reload is a pointer swap under a lock and the
 * replaced credentials are freed at once: no session can still point at
 * them.  Established connections keep the certificate they shook hands with.
 *
 * What is refused (at start: the server does not start; at reload: the
 * previous credentials stay and the reason is logged): an unreadable, empty,
 * oversized or garbled file; a certificate (leaf or chain member) that is
 * expired or not yet valid; a chain out of order or not signed link by link;
 * a key file (or passphrase file) looser than the key-file rule of
 * keyfile.h; a key that does not belong to the leaf; an encrypted key
 * without its passphrase file, or with a wrong passphrase; an RSA key under
 * 2048 bits or an EC key under 256; an OCSP response that is not for the
 * leaf, not signed by its issuer, not "successful", or says the certificate
 * is revoked or unknown; and credentials that fail a test handshake: before
 * a generation is used, a GnuTLS client completes a TLS 1.3 and a TLS 1.2
 * handshake against it over a socketpair, the server side loading the key
 * exactly as live handshakes do.  Keys: RSA (PKCS#1 or PKCS#8), ECDSA
 * P-256/P-384/P-521 (SEC1 or PKCS#8), PKCS#8 encrypted with a passphrase
 * (and OpenSSL's legacy encrypted PEM).  A certificate within warn_days of
 * its end, and an OCSP response past its nextUpdate (it is then not
 * stapled), start with a warning on stderr.
 *
 * The GnuTLS callback has no closure argument, so one fp_tls per process
 * can be attached to a daemon (fp_tls_mhd_options); fapiao runs one server.
 * The client CA is given to libmicrohttpd at start and is not reloaded. */
#ifndef FAPIAO_TLS_H
#define FAPIAO_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fapiao/err.h"

struct MHD_Connection;
struct MHD_OptionItem;

typedef struct fp_tls_opts {
    const char *cert_path;           /* PEM: the leaf first, then intermediates */
    const char *key_path;            /* PEM private key of the leaf */
    const char *key_passphrase_path; /* optional: the passphrase of an encrypted key */
    const char *ocsp_path;           /* optional: DER (or PEM) OCSP response for the leaf */
    const char *client_ca_path;      /* optional: PEM CA(s); clients are asked for a certificate */
    int warn_days;                   /* warn when the chain ends within this; default 30 */
} fp_tls_opts;

typedef struct fp_tls fp_tls;

/* The daemon's priorities (TLS 1.2 and 1.3 only, AEAD ciphers, forward
 * secrecy); the test handshake uses the same. */
#define FP_TLS_PRIORITIES                                                                          \
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"         \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

/* Reads and checks the files.  FP_EINVAL (bad content), FP_EIO (unreadable),
 * FP_ENOMEM; err->msg is "<中文> / <English>: details". */
int fp_tls_new(const fp_tls_opts *o, fp_tls **out, fp_err *err);
/* Re-reads cert, key, passphrase and OCSP response from the same paths.  On any
 * failure the current credentials stay in use and the error is returned;
 * on success new handshakes use the new ones.  Thread-safe. */
int fp_tls_reload(fp_tls *t, fp_err *err);
/* Reference counting: the server holds a reference while it runs.
 * fp_tls_free drops one and frees at zero; fp_tls_free(NULL) is a no-op. */
fp_tls *fp_tls_ref(fp_tls *t);
void fp_tls_free(fp_tls *t);

/* Facts about the credentials in use (for logs and metrics). */
int64_t fp_tls_not_after(const fp_tls *t);   /* earliest notAfter in the chain, Unix s */
uint64_t fp_tls_generation(const fp_tls *t); /* 1 after fp_tls_new, +1 per reload */
int fp_tls_stapling(const fp_tls *t);        /* 1 if an OCSP response is stapled */
int fp_tls_has_client_ca(const fp_tls *t);
/* The serial of the leaf in use, hex (out: at least 2*20+1 bytes). */
void fp_tls_serial_hex(const fp_tls *t, char *out, size_t cap);

/* Fills items (cap >= 4) with the libmicrohttpd options that make a daemon
 * take its certificate from t, ending with MHD_OPTION_END; pass them with
 * MHD_OPTION_ARRAY.  Attaches t to the process-wide callback: FP_EBUSY if
 * another fp_tls is attached.  Detach after MHD_stop_daemon. */
int fp_tls_mhd_options(fp_tls *t, struct MHD_OptionItem *items, size_t cap, fp_err *err);
void fp_tls_detach(fp_tls *t);

/* The hex SHA-256 of the DER of the client certificate on connection c if
 * the client sent one and it verifies against the client CA (chain, time,
 * TLS-client key purpose): 0; FP_ENOTFOUND when the client sent none, it
 * does not verify, or the connection is not TLS. */
int fp_tls_peer_sha256(struct MHD_Connection *c, char out[65]);

/* Watching handshakes for the record of failures (docs/security.md
 * "Failed handshakes"; src/server/tls_failures.h).  libmicrohttpd's
 * connection notifications call started/closed (same thread, in pairs);
 * its log line for a failed handshake calls handshake_failed on the
 * thread that ran that handshake. */
void fp_tls_conn_started(fp_tls *t, struct MHD_Connection *c);
void fp_tls_conn_closed(fp_tls *t, struct MHD_Connection *c, const struct sockaddr *sa,
                        socklen_t len);
void fp_tls_handshake_failed(fp_tls *t);
struct fp_tls_failures *fp_tls_failures_of(fp_tls *t);

#endif
