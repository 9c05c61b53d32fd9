/* tls_load.c — reading the certificate chain, key, passphrase, OCSP
 * response and client CA files within size limits, and the checks of
 * include/fapiao/tls.h (chain order and signatures, validity, key type and
 * size, key matches certificate, OCSP response for this certificate). */
#include "tls_internal.h"
#include "fapiao/crypto.h"
#include "fapiao/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/ocsp.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The SHA-256 key id of a key as the handshake holds it. */
static int handshake_key_id(const gnutls_datum_t *der, unsigned char *id, size_t *n)
{
    gnutls_privkey_t key = NULL;
    gnutls_pubkey_t pub = NULL;
    int rc = fp_tls_import_handshake_key(der, &key);
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
        fp_tls_take_datum(&der, &g->key) < 0) {
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
        fp_tls_fmt_time(exp, when, sizeof when);
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
            fp_tls_take_datum(&der, &g->ocsp) < 0) {
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
            fp_tls_fmt_time(nb, when, sizeof when);
            return fp_fail(err, FP_EINVAL,
                           "%s尚未生效 / certificate %u (%s) in %s is not yet valid: notBefore "
                           "%s",
                           which_zh, i, dn, path, when);
        }
        if (now > na) {
            fp_tls_fmt_time(na, when, sizeof when);
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
        fp_tls_fmt_time((time_t)g->not_after, when, sizeof when);
        snprintf(warn + strlen(warn), wcap - strlen(warn),
                 "%s证书将在 %lld 天后过期 / the certificate chain in %s expires in %lld days "
                 "(%s)",
                 warn[0] ? "; " : "", (long long)(left / 86400), path, (long long)(left / 86400),
                 when);
    }
    return 0;
}

/* Loads one generation from the paths of t and completes a test handshake
 * with it.  warn receives warnings. */
int fp_tls_load_gen(const fp_tls *t, tls_gen **out, char *warn, size_t wcap, fp_err *err)
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
            fp_tls_take_datum(&der, &g->chain[i]) < 0) {
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
    if ((rc = fp_tls_self_handshake(t, g, err)) < 0)
        goto fail;
    rc = 0;
    *out = g;
    g = NULL;
fail:
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    free(data.data);
    fp_tls_gen_free(g);
    return rc;
}

int fp_tls_load_client_ca(const char *path, char **pem, fp_err *err)
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
            fp_tls_log("警告 / warning: client CA certificate %u in %s has expired", i, path);
        gnutls_x509_crt_deinit(crts[i]);
    }
    gnutls_free(crts);
    *pem = (char *)data.data; /* NUL-terminated by read_file */
    return 0;
}
