/* tlsgen.c — self-signed certificate generation with GnuTLS's X.509 API. */
#include "fapiao/tlsgen.h"
#include "fapiao/crypto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int write_file(const char *path, const void *data, size_t n, int mode, fp_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return fp_fail(err, FP_EIO, "create %s: %s", path, strerror(errno));
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return fp_fail(err, FP_EIO, "write %s: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0)
        return fp_fail(err, FP_EIO, "fsync %s: %s", path, strerror(errno));
    return 0;
}

#define GT(call)                                                                                   \
    do {                                                                                           \
        int gr_ = (call);                                                                          \
        if (gr_ < 0) {                                                                             \
            rc = fp_fail(err, FP_ECRYPTO, "%s: %s", #call, gnutls_strerror(gr_));                  \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

int fp_tls_selfsigned(const char *cert_path, const char *key_path, int days, fp_err *err)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t kpem = {0}, cpem = {0};
    int rc = 0;
    unsigned char serial[16];
    unsigned char ip4[4], ip6[16];

    GT(gnutls_x509_privkey_init(&key));
    GT(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
    GT(gnutls_x509_crt_init(&crt));
    GT(gnutls_x509_crt_set_version(crt, 3));
    if (fp_random(serial, sizeof serial) < 0) {
        rc = fp_fail(err, FP_ECRYPTO, "no randomness");
        goto fail;
    }
    serial[0] &= 0x7f; /* positive */
    GT(gnutls_x509_crt_set_serial(crt, serial, sizeof serial));
    time_t now = time(NULL);
    GT(gnutls_x509_crt_set_activation_time(crt, now - 3600));
    GT(gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400));
    GT(gnutls_x509_crt_set_dn(crt, "CN=localhost,O=fapiao demo (self-signed)", NULL));
    GT(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                            GNUTLS_FSAN_SET));
    inet_pton(AF_INET, "127.0.0.1", ip4);
    inet_pton(AF_INET6, "::1", ip6);
    GT(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip4, 4, GNUTLS_FSAN_APPEND));
    GT(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip6, 16,
                                            GNUTLS_FSAN_APPEND));
    GT(gnutls_x509_crt_set_basic_constraints(crt, 0, -1));
    GT(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
    GT(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
    GT(gnutls_x509_crt_set_key(crt, key));
    GT(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0));
    GT(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kpem));
    GT(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cpem));
    if ((rc = write_file(key_path, kpem.data, kpem.size, 0600, err)) < 0)
        goto fail;
    rc = write_file(cert_path, cpem.data, cpem.size, 0644, err);
fail:
    gnutls_free(kpem.data);
    gnutls_free(cpem.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}
