/* tls.c — certificate chain, key and OCSP response: read, checked, handed to
 * every handshake through libmicrohttpd's certificate callback, and
 * swapped on reload.  See include/fapiao/tls.h for what is checked.
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
#include "fapiao/tls.h"
#include "fapiao/crypto.h"
#include "fapiao/keyfile.h"

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

struct fp_tls {
    atomic_int refs;
    char *cert_path, *key_path, *ocsp_path, *pass_path;
    int warn_days;
    char *client_ca_pem; /* NUL-terminated, for MHD_OPTION_HTTPS_MEM_TRUST */
    pthread_rwlock_t lock;
    tls_gen *cur; /* under lock */
    atomic_uint_fast64_t generation;
    uint32_t *guard; /* per file descriptor: record parser state (guard_pull) */
    int guard_cap;
};

/* The daemon's callback has no closure: the fp_tls it serves. */
static _Atomic(fp_tls *) attached;

static void tls_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tls_log(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fapiao: tls: %s\n", msg);
}

static void fmt_time(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Reads a whole file of at most max bytes, NUL-terminated (the NUL is not
 * counted in size). */
static int read_file(const char *what_zh, const char *what, const char *path, size_t max,
                     gnutls_datum_t *out, fp_err *err)
{
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fp_fail(err, FP_EIO, "无法读取%s / cannot read the %s %s: %s", what_zh, what, path,
                       strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fp_fail(err, FP_EIO, "%s不是普通文件 / the %s %s is not a regular file", what_zh,
                       what, path);
    }
    if (st.st_size <= 0 || (size_t)st.st_size > max) {
        close(fd);
        return fp_fail(err, FP_EINVAL, "%s为空或过大 / the %s %s is empty or larger than %zu bytes",
                       what_zh, what, path, max);
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return fp_fail(err, FP_EIO, "无法读取%s / cannot read the %s %s: short read", what_zh, what,
                       path);
    }
    buf[n] = 0;
    out->data = buf;
    out->size = (unsigned)n;
    return 0;
}

static void wipe_free(gnutls_datum_t *d)
{
    if (d->data) {
        gnutls_memset(d->data, 0, d->size);
        free(d->data);
    }
    d->data = NULL;
    d->size = 0;
}

static void gen_free(tls_gen *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < g->nchain; i++)
        free(g->chain[i].data);
    wipe_free(&g->key);
    free(g->ocsp.data);
    free(g);
}

/* Copies a GnuTLS-allocated datum into malloc'd memory and frees it. */
static int take_datum(gnutls_datum_t *src, gnutls_datum_t *dst)
{
    dst->data = malloc(src->size ? src->size : 1);
    if (!dst->data) {
        gnutls_memset(src->data, 0, src->size);
        gnutls_free(src->data);
        return -1;
    }
    memcpy(dst->data, src->data, src->size);
    dst->size = src->size;
    gnutls_memset(src->data, 0, src->size);
    gnutls_free(src->data);
    src->data = NULL;
    return 0;
}

static const char *pk_name(int algo)
{
    const char *n = gnutls_pk_get_name((gnutls_pk_algorithm_t)algo);
    return n ? n : "unknown";
}

/* The passphrase of an encrypted key: the first line of its file (a
 * trailing newline is not part of it), under the key-file permission rule. */
static int read_passphrase(const char *path, char **out, fp_err *err)
{
    unsigned char *data = NULL;
    size_t n = 0;
    *out = NULL;
    int rc =
        fp_keyfile_read(path, "私钥口令文件", "key passphrase file", MAX_PASS_FILE, &data, &n, err);
    if (rc < 0)
        return rc;
    if (n > 0 && data[n - 1] == '\n')
        data[--n] = 0;
    if (n > 0 && data[n - 1] == '\r')
        data[--n] = 0;
    if (n == 0 || strlen((const char *)data) != n || memchr(data, '\n', n)) {
        fp_keyfile_wipe(data, n + 1);
        return fp_fail(err, FP_EINVAL,
                       "私钥口令文件格式不对 / the key passphrase file %s must hold one non-empty "
                       "line",
                       path);
    }
    *out = (char *)data;
    return 0;
}

/* The one way a key is turned into what a handshake signs with: the
 * certificate callback (retrieve), the check at load and the test
 * handshake all go through here.  The stored form is unencrypted PKCS#8
 * DER: it names the algorithm and the curve itself.  (GnuTLS's
 * gnutls_x509_privkey_export2 of an EC key read from PKCS#8 writes a SEC1
 * structure without its curve, which imports as a key on no curve:
 * handshakes then fail or crash — issue 13, item 3.) */
static int import_handshake_key(const gnutls_datum_t *der, gnutls_privkey_t *out)
{
    gnutls_privkey_t key = NULL;
    int rc = gnutls_privkey_init(&key);
    if (rc < 0)
        return rc;
    if ((rc = gnutls_privkey_import_x509_raw(key, der, GNUTLS_X509_FMT_DER, NULL,
                                             GNUTLS_PKCS_PLAIN)) < 0) {
        gnutls_privkey_deinit(key);
        return rc;
    }
    *out = key;
    return 0;
}

/* The SHA-256 key id of a key as the handshake holds it. */
static int handshake_key_id(const gnutls_datum_t *der, unsigned char *id, size_t *n)
{
    gnutls_privkey_t key = NULL;
    gnutls_pubkey_t pub = NULL;
    int rc = import_handshake_key(der, &key);
    if (rc < 0)
        return rc;
    if ((rc = gnutls_pubkey_init(&pub)) >= 0 &&
        (rc = gnutls_pubkey_import_privkey(pub, key, 0, 0)) >= 0)
        rc = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, id, n);
    gnutls_pubkey_deinit(pub);
    gnutls_privkey_deinit(key);
    return rc;
}

/* The key: read under the permission rule, decrypted with the passphrase
 * file if it is encrypted, strong enough, and — as the handshake will load
 * it — the leaf's. */
static int check_key(const char *path, const char *pass_path, gnutls_x509_crt_t leaf, tls_gen *g,
                     char *warn, size_t wcap, fp_err *err)
{
    unsigned char *text = NULL;
    size_t tlen = 0;
    char *pass = NULL;
    gnutls_x509_privkey_t xk = NULL;
    int rc = fp_keyfile_read(path, "私钥", "private key", MAX_KEY_FILE, &text, &tlen, err);
    if (rc < 0)
        return rc;
    /* PKCS#8 "ENCRYPTED PRIVATE KEY", or OpenSSL's legacy "Proc-Type:
     * 4,ENCRYPTED" header */
    int encrypted = strstr((const char *)text, "ENCRYPTED") != NULL;
    if (encrypted && !pass_path) {
        rc = fp_fail(err, FP_EINVAL,
                     "私钥已加密，需要口令文件 / the private key %s is encrypted; give its "
                     "passphrase with --key-passphrase-file FILE",
                     path);
        goto out;
    }
    if (pass_path && (rc = read_passphrase(pass_path, &pass, err)) < 0)
        goto out;
    if (pass && !encrypted)
        snprintf(warn + strlen(warn), wcap - strlen(warn),
                 "%s私钥未加密，口令文件未使用 / the private key %s is not encrypted; the "
                 "passphrase file %s is not used",
                 warn[0] ? "; " : "", path, pass_path);
    if (gnutls_x509_privkey_init(&xk) < 0) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    gnutls_datum_t data = {text, (unsigned)tlen};
    int gr =
        gnutls_x509_privkey_import2(xk, &data, GNUTLS_X509_FMT_PEM, encrypted ? pass : NULL, 0);
    if (gr < 0 && encrypted) {
        rc = fp_fail(err, FP_EINVAL,
                     "私钥无法用口令解密 / the private key %s cannot be decrypted with the "
                     "passphrase in %s: wrong passphrase? (%s)",
                     path, pass_path, gnutls_strerror(gr));
        goto out;
    }
    if (gr < 0) {
        rc = fp_fail(err, FP_EINVAL,
                     "私钥文件无法解析 / the private key %s is not a PEM private key (%s)", path,
                     gnutls_strerror(gr));
        goto out;
    }
    unsigned bits = 0;
    int algo = gnutls_x509_privkey_get_pk_algorithm2(xk, &bits);
    if (((algo == GNUTLS_PK_RSA || algo == GNUTLS_PK_RSA_PSS) && bits < MIN_RSA_BITS) ||
        (algo == GNUTLS_PK_ECDSA && bits < MIN_EC_BITS) || algo == GNUTLS_PK_DSA) {
        rc = fp_fail(err, FP_EINVAL,
                     "私钥强度不足 / the private key %s is too weak (%s, %u bits; need RSA >= "
                     "%d or EC >= %d)",
                     path, pk_name(algo), bits, MIN_RSA_BITS, MIN_EC_BITS);
        goto out;
    }
    gnutls_datum_t der = {0};
    if ((gr = gnutls_x509_privkey_export2_pkcs8(xk, GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN,
                                                &der)) < 0 ||
        take_datum(&der, &g->key) < 0) {
        rc = fp_fail(err, FP_ECRYPTO, "export key: %s", gnutls_strerror(gr));
        goto out;
    }
    /* compared as the handshake loads it, not as parsed above */
    unsigned char kid[64], cid[64];
    size_t kn = sizeof kid, cn = sizeof cid;
    if ((gr = handshake_key_id(&g->key, kid, &kn)) < 0) {
        rc = fp_fail(err, FP_EINVAL,
                     "私钥无法用于握手 / the private key %s cannot be loaded for handshakes (%s)",
                     path, gnutls_strerror(gr));
        goto out;
    }
    if (gnutls_x509_crt_get_key_id(leaf, GNUTLS_KEYID_USE_SHA256, cid, &cn) < 0 || kn != cn ||
        memcmp(kid, cid, kn) != 0) {
        rc = fp_fail(err, FP_EINVAL,
                     "私钥与证书不匹配 / the private key %s does not belong to the certificate "
                     "(its public key differs)",
                     path);
        goto out;
    }
    rc = 0;
out:
    gnutls_x509_privkey_deinit(xk);
    if (pass)
        fp_keyfile_wipe((unsigned char *)pass, strlen(pass) + 1);
    fp_keyfile_wipe(text, tlen + 1);
    return rc;
}

/* The OCSP response: for the leaf, from its issuer (when the chain holds
 * it), successful and "good".  A response past nextUpdate is kept out of
 * the handshake with a warning, not refused: it goes stale while the
 * server runs too, and then GnuTLS simply stops stapling it. */
static int check_ocsp(const char *path, gnutls_x509_crt_t *crts, unsigned n, tls_gen *g, char *warn,
                      size_t wcap, fp_err *err)
{
    gnutls_datum_t data;
    gnutls_ocsp_resp_t resp = NULL;
    int rc = read_file("OCSP 响应", "OCSP response", path, MAX_OCSP_FILE, &data, err);
    if (rc < 0)
        return rc;
    if (gnutls_ocsp_resp_init(&resp) < 0) {
        rc = fp_fail(err, FP_ENOMEM, "out of memory");
        goto out;
    }
    int pem = strstr((const char *)data.data, "-----BEGIN") != NULL;
    int gr = gnutls_ocsp_resp_import2(resp, &data, pem ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER);
    if (gr < 0) {
        rc = fp_fail(err, FP_EINVAL, "OCSP 响应无法解析 / the OCSP response %s is garbled (%s)",
                     path, gnutls_strerror(gr));
        goto out;
    }
    if (gnutls_ocsp_resp_get_status(resp) != GNUTLS_OCSP_RESP_SUCCESSFUL) {
        rc = fp_fail(err, FP_EINVAL,
                     "OCSP 响应状态不是 successful / the OCSP response %s is not \"successful\" "
                     "(status %d)",
                     path, gnutls_ocsp_resp_get_status(resp));
        goto out;
    }
    if (gnutls_ocsp_resp_check_crt(resp, 0, crts[0]) < 0) {
        rc = fp_fail(err, FP_EINVAL,
                     "OCSP 响应不属于该证书 / the OCSP response %s is not for this certificate",
                     path);
        goto out;
    }
    if (n > 1) {
        unsigned v = 0;
        gr = gnutls_ocsp_resp_verify_direct(resp, crts[1], &v, 0);
        if (gr < 0 || v != 0) {
            rc = fp_fail(err, FP_EINVAL,
                         "OCSP 响应签名无效 / the OCSP response %s is not signed by the "
                         "certificate's issuer (%s, flags 0x%x)",
                         path, gr < 0 ? gnutls_strerror(gr) : "verification failed", v);
            goto out;
        }
    }
    unsigned status = 0, reason = 0;
    time_t this_update = 0, next_update = 0, revoked_at = 0;
    gr = gnutls_ocsp_resp_get_single(resp, 0, NULL, NULL, NULL, NULL, &status, &this_update,
                                     &next_update, &revoked_at, &reason);
    if (gr < 0) {
        rc = fp_fail(err, FP_EINVAL, "OCSP 响应无法解析 / the OCSP response %s is garbled (%s)",
                     path, gnutls_strerror(gr));
        goto out;
    }
    if (status != GNUTLS_OCSP_CERT_GOOD) {
        rc = fp_fail(err, FP_EINVAL,
                     "OCSP 响应显示证书%s / the OCSP response %s says the certificate is %s",
                     status == GNUTLS_OCSP_CERT_REVOKED ? "已吊销" : "状态未知", path,
                     status == GNUTLS_OCSP_CERT_REVOKED ? "revoked" : "unknown");
        goto out;
    }
    time_t now = time(NULL);
    time_t exp = next_update != (time_t)-1 ? next_update : this_update + OCSP_NO_NEXT_S;
    if (exp <= now) {
        char when[40];
        fmt_time(exp, when, sizeof when);
        snprintf(warn + strlen(warn), wcap - strlen(warn),
                 "%sOCSP 响应已过期，不再装订 / the OCSP response %s went stale at %s; it is "
                 "not stapled",
                 warn[0] ? "; " : "", path, when);
        rc = 0;
        goto out;
    }
    if (!pem) { /* staple the bytes as the responder signed them */
        g->ocsp = data;
        data.data = NULL;
    } else {
        gnutls_datum_t der = {0};
        if ((gr = gnutls_ocsp_resp_export2(resp, &der, GNUTLS_X509_FMT_DER)) < 0 ||
            take_datum(&der, &g->ocsp) < 0) {
            rc = fp_fail(err, FP_ECRYPTO, "export OCSP response: %s", gnutls_strerror(gr));
            goto out;
        }
    }
    g->ocsp_exptime = exp;
    rc = 0;
out:
    gnutls_ocsp_resp_deinit(resp);
    free(data.data);
    return rc;
}

/* Every certificate of the chain valid now; the earliest end; a warning
 * when it is near. */
static int check_times(const char *path, gnutls_x509_crt_t *crts, unsigned n, int warn_days,
                       tls_gen *g, char *warn, size_t wcap, fp_err *err)
{
    time_t now = time(NULL);
    g->not_after = INT64_MAX;
    for (unsigned i = 0; i < n; i++) {
        time_t nb = gnutls_x509_crt_get_activation_time(crts[i]);
        time_t na = gnutls_x509_crt_get_expiration_time(crts[i]);
        char when[40], dn[256];
        size_t dnl = sizeof dn;
        if (gnutls_x509_crt_get_dn(crts[i], dn, &dnl) < 0)
            snprintf(dn, sizeof dn, "?");
        const char *which_zh = i == 0 ? "证书" : "证书链中的证书";
        if (nb == (time_t)-1 || na == (time_t)-1)
            return fp_fail(err, FP_EINVAL,
                           "%s的有效期无法读取 / certificate %u (%s) in %s has no "
                           "readable validity",
                           which_zh, i, dn, path);
        if (now < nb) {
            fmt_time(nb, when, sizeof when);
            return fp_fail(err, FP_EINVAL,
                           "%s尚未生效 / certificate %u (%s) in %s is not yet valid: notBefore "
                           "%s",
                           which_zh, i, dn, path, when);
        }
        if (now > na) {
            fmt_time(na, when, sizeof when);
            return fp_fail(err, FP_EINVAL,
                           "%s已过期 / certificate %u (%s) in %s has expired: notAfter %s",
                           which_zh, i, dn, path, when);
        }
        if ((int64_t)na < g->not_after)
            g->not_after = na;
    }
    int64_t left = g->not_after - (int64_t)now;
    if (left < (int64_t)warn_days * 86400) {
        char when[40];
        fmt_time((time_t)g->not_after, when, sizeof when);
        snprintf(warn + strlen(warn), wcap - strlen(warn),
                 "%s证书将在 %lld 天后过期 / the certificate chain in %s expires in %lld days "
                 "(%s)",
                 warn[0] ? "; " : "", (long long)(left / 86400), path, (long long)(left / 86400),
                 when);
    }
    return 0;
}

static int self_handshake(const fp_tls *t, tls_gen *g, fp_err *err);

/* Loads one generation from the paths of t and completes a test handshake
 * with it.  warn receives warnings. */
static int load_gen(const fp_tls *t, tls_gen **out, char *warn, size_t wcap, fp_err *err)
{
    gnutls_datum_t data = {0};
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    int rc;
    warn[0] = 0;
    tls_gen *g = calloc(1, sizeof *g);
    if (!g)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    if ((rc = read_file("证书", "certificate", t->cert_path, MAX_CERT_FILE, &data, err)) < 0)
        goto fail;
    if (!strstr((const char *)data.data, "-----BEGIN CERTIFICATE-----")) {
        rc = fp_fail(err, FP_EINVAL,
                     "证书文件不是 PEM 证书 / %s holds no PEM certificate (-----BEGIN "
                     "CERTIFICATE-----)",
                     t->cert_path);
        goto fail;
    }
    int gr = gnutls_x509_crt_list_import2(&crts, &n, &data, GNUTLS_X509_FMT_PEM,
                                          GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (gr == GNUTLS_E_CERTIFICATE_LIST_UNSORTED) {
        rc = fp_fail(err, FP_EINVAL,
                     "证书链顺序错误 / the chain in %s is out of order: the server certificate "
                     "comes first, then each issuer",
                     t->cert_path);
        goto fail;
    }
    if (gr < 0 || n == 0) {
        rc = fp_fail(err, FP_EINVAL, "证书无法解析 / the certificate %s is garbled (%s)",
                     t->cert_path, gr < 0 ? gnutls_strerror(gr) : "empty");
        goto fail;
    }
    if (n > MAX_CHAIN) {
        rc = fp_fail(err, FP_EINVAL, "证书链过长 / the chain in %s has %u certificates (max %d)",
                     t->cert_path, n, MAX_CHAIN);
        goto fail;
    }
    if ((rc = check_times(t->cert_path, crts, n, t->warn_days, g, warn, wcap, err)) < 0)
        goto fail;
    /* each link signed by the next (time is checked above, trust is the
     * client's business: the top of the chain need not be a root) */
    for (unsigned i = 0; i + 1 < n; i++) {
        unsigned v = 0;
        gr = gnutls_x509_crt_verify(
            crts[i], &crts[i + 1], 1,
            GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS, &v);
        if (gr < 0 || v != 0) {
            rc = fp_fail(err, FP_EINVAL,
                         "证书链无效 / certificate %u in %s is not validly signed by certificate "
                         "%u (status 0x%x)",
                         i, t->cert_path, i + 1, v);
            goto fail;
        }
    }
    if ((rc = check_key(t->key_path, t->pass_path, crts[0], g, warn, wcap, err)) < 0)
        goto fail;
    for (unsigned i = 0; i < n; i++) {
        gnutls_datum_t der = {0};
        if ((gr = gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER, &der)) < 0 ||
            take_datum(&der, &g->chain[i]) < 0) {
            rc = fp_fail(err, FP_ECRYPTO, "export certificate: %s", gnutls_strerror(gr));
            goto fail;
        }
        g->nchain = i + 1;
    }
    unsigned char serial[20];
    size_t sn = sizeof serial;
    if (gnutls_x509_crt_get_serial(crts[0], serial, &sn) == 0)
        fp_hex(serial, sn, g->serial);
    if (t->ocsp_path && (rc = check_ocsp(t->ocsp_path, crts, n, g, warn, wcap, err)) < 0)
        goto fail;
    if ((rc = self_handshake(t, g, err)) < 0)
        goto fail;
    rc = 0;
    *out = g;
    g = NULL;
fail:
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    free(data.data);
    gen_free(g);
    return rc;
}

static int load_client_ca(const char *path, char **pem, fp_err *err)
{
    gnutls_datum_t data;
    int rc = read_file("客户端 CA", "client CA file", path, MAX_CERT_FILE, &data, err);
    if (rc < 0)
        return rc;
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    int gr = gnutls_x509_crt_list_import2(&crts, &n, &data, GNUTLS_X509_FMT_PEM, 0);
    if (gr < 0 || n == 0) {
        free(data.data);
        return fp_fail(err, FP_EINVAL,
                       "客户端 CA 文件无法解析 / the client CA file %s is garbled (%s)", path,
                       gr < 0 ? gnutls_strerror(gr) : "no certificate");
    }
    time_t now = time(NULL);
    for (unsigned i = 0; i < n; i++) {
        if (gnutls_x509_crt_get_expiration_time(crts[i]) < now)
            tls_log("警告 / warning: client CA certificate %u in %s has expired", i, path);
        gnutls_x509_crt_deinit(crts[i]);
    }
    gnutls_free(crts);
    *pem = (char *)data.data; /* NUL-terminated by read_file */
    return 0;
}

static void log_loaded(const char *verb, const fp_tls *t, const tls_gen *g, const char *warn)
{
    char when[40];
    fmt_time((time_t)g->not_after, when, sizeof when);
    tls_log("%s / %s: %s (serial %s, chain %u, valid until %s%s; test handshakes TLS 1.3 and "
            "1.2 passed in %ld.%03ld ms)",
            strcmp(verb, "loaded") == 0 ? "已加载证书" : "已重新加载证书", verb, t->cert_path,
            g->serial, g->nchain, when, g->ocsp.size ? ", OCSP stapled" : "", g->selftest_us / 1000,
            g->selftest_us % 1000);
    if (warn[0])
        tls_log("警告 / warning: %s", warn);
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
    if (o->client_ca_path && (rc = load_client_ca(o->client_ca_path, &t->client_ca_pem, err)) < 0)
        goto fail;
    char warn[1024];
    if ((rc = load_gen(t, &t->cur, warn, sizeof warn, err)) < 0)
        goto fail;
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
    int rc = load_gen(t, &g, warn, sizeof warn, err);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&t->lock);
    tls_gen *old = t->cur;
    t->cur = g;
    atomic_fetch_add(&t->generation, 1);
    pthread_rwlock_unlock(&t->lock);
    gen_free(old); /* no handshake holds it: each took its own copy */
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
    gen_free(t->cur);
    pthread_rwlock_destroy(&t->lock);
    free(t->guard);
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

/* ---- the handshake side ---- */

static void free_copies(gnutls_pcert_st *pc, unsigned npc, gnutls_privkey_t key,
                        gnutls_ocsp_data_st *ocsp)
{
    for (unsigned i = 0; i < npc; i++)
        gnutls_pcert_deinit(&pc[i]);
    gnutls_free(pc);
    gnutls_privkey_deinit(key);
    if (ocsp)
        gnutls_free(ocsp->response.data);
    gnutls_free(ocsp);
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

static ssize_t guard_pull(gnutls_transport_ptr_t ptr, void *buf, size_t size)
{
    int fd = (int)(intptr_t)ptr;
    ssize_t n = recv(fd, buf, size, 0);
    fp_tls *t = atomic_load(&attached);
    if (n > 0 && t && fd >= 0 && fd < t->guard_cap &&
        guard_feed(&t->guard[fd], buf, (size_t)n) < 0) {
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
    if (!t->guard || fd < 0 || fd >= t->guard_cap)
        return; /* beyond the table: renegotiation still ends the connection, politely */
    t->guard[fd] = 0;
    gnutls_transport_set_pull_function(session, guard_pull);
    gnutls_transport_set_pull_timeout_function(session, guard_pull_timeout);
}

/* A private copy of generation g for one session: GnuTLS frees it with
 * the session (GNUTLS_CERT_RETR_DEINIT_ALL).  The key goes through
 * import_handshake_key, like the checks at load. */
static int gen_copy(const tls_gen *g, gnutls_pcert_st **certs, unsigned *ncerts,
                    gnutls_ocsp_data_st **ocsp, unsigned *nocsp, gnutls_privkey_t *pkey)
{
    gnutls_pcert_st *pc = NULL;
    gnutls_privkey_t key = NULL;
    gnutls_ocsp_data_st *od = NULL;
    unsigned npc = 0;
    int rc = GNUTLS_E_MEMORY_ERROR;
    pc = gnutls_calloc(g->nchain, sizeof *pc);
    if (!pc)
        goto fail;
    for (; npc < g->nchain; npc++)
        if ((rc = gnutls_pcert_import_x509_raw(&pc[npc], &g->chain[npc], GNUTLS_X509_FMT_DER, 0)) <
            0)
            goto fail;
    if ((rc = import_handshake_key(&g->key, &key)) < 0)
        goto fail;
    if (g->ocsp.size) {
        rc = GNUTLS_E_MEMORY_ERROR;
        if (!(od = gnutls_calloc(1, sizeof *od)) ||
            !(od->response.data = gnutls_malloc(g->ocsp.size)))
            goto fail;
        memcpy(od->response.data, g->ocsp.data, g->ocsp.size);
        od->response.size = g->ocsp.size;
        od->exptime = g->ocsp_exptime;
    }
    *certs = pc;
    *ncerts = npc;
    *pkey = key;
    *ocsp = od;
    *nocsp = od ? 1 : 0;
    return 0;
fail:
    free_copies(pc, npc, key, od);
    return rc < 0 ? rc : GNUTLS_E_INTERNAL_ERROR;
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
    int rc = gen_copy(t->cur, certs, ncerts, ocsp, nocsp, pkey);
    pthread_rwlock_unlock(&t->lock);
    if (rc == 0)
        *flags = GNUTLS_CERT_RETR_DEINIT_ALL;
    return rc;
}

/* ---- the test handshake ----
 *
 * Before a generation is used (at start and on SIGHUP) a GnuTLS client
 * completes a handshake, TLS 1.3 and TLS 1.2, against a server session
 * that takes its certificate from the generation exactly as `retrieve`
 * does (gen_copy), with the daemon's priorities, over a socketpair.  The
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
    int rc = gen_copy(g, certs, ncerts, ocsp, nocsp, pkey);
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

static int self_handshake(const fp_tls *t, tls_gen *g, fp_err *err)
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

int fp_tls_mhd_options(fp_tls *t, struct MHD_OptionItem *items, size_t cap, fp_err *err)
{
    if (cap < 4)
        return fp_fail(err, FP_EINVAL, "option array too small");
    if (!t->guard) {
        struct rlimit rl;
        rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        if (n == RLIM_INFINITY || n > (1u << 20))
            n = 1u << 20; /* calloc'd pages stay untouched until used */
        if (n < 1024)
            n = 1024;
        if (!(t->guard = calloc((size_t)n, sizeof *t->guard)))
            return fp_fail(err, FP_ENOMEM, "out of memory");
        t->guard_cap = (int)n;
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
