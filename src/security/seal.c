/* seal.c — AES-256-GCM for secrets at rest (include/fapiao/seal.h). */
#include "fapiao/seal.h"
#include "fapiao/crypto.h"
#include "fapiao/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NONCE_LEN 12
#define TAG_LEN   16
#define PREFIX_N  (sizeof FP_SEAL_PREFIX - 1)

static int unhex(const char *h, size_t hn, unsigned char *out)
{
    for (size_t i = 0; i < hn / 2; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            int c = (unsigned char)h[2 * i + k], d = c >= '0' && c <= '9'   ? c - '0'
                                                     : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                     : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                                            : -1;
            if (d < 0)
                return -1;
            v = v << 4 | (unsigned)d;
        }
        out[i] = (unsigned char)v;
    }
    return hn % 2 ? -1 : 0;
}

static int create_key(const char *path, fp_err *err)
{
    unsigned char k[FP_SEAL_KEY_LEN];
    char text[2 * FP_SEAL_KEY_LEN + 2], tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return fp_fail(err, FP_ERANGE, "path too long: %s", path);
    if (fp_random(k, sizeof k) < 0)
        return fp_fail(err, FP_ECRYPTO, "no random bytes");
    fp_hex(k, sizeof k, text);
    explicit_bzero(k, sizeof k);
    text[2 * FP_SEAL_KEY_LEN] = '\n';
    text[2 * FP_SEAL_KEY_LEN + 1] = 0;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fp_fail(err, FP_EIO, "create %s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    int ok = fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    explicit_bzero(text, sizeof text);
    ok = close(fd) == 0 && ok;
    int rc = 0;
    if (!ok)
        rc = fp_fail(err, FP_EIO, "write %s: %s", tmp, strerror(errno));
    else if (link(tmp, path) != 0 && errno != EEXIST) /* EEXIST: another process won */
        rc = fp_fail(err, FP_EIO, "link %s: %s", path, strerror(errno));
    unlink(tmp);
    return rc;
}

int fp_seal_key_load(const char *path, int create, unsigned char key[FP_SEAL_KEY_LEN], fp_err *err)
{
    if (access(path, F_OK) != 0) {
        if (errno != ENOENT)
            return fp_fail(err, FP_EIO, "%s: %s", path, strerror(errno));
        if (!create)
            return fp_fail(err, FP_ENOTFOUND,
                           "webhook 密钥缺失 / the webhook secret key %s is missing: restore it "
                           "from your backup, or set the webhook secrets again",
                           path);
        int rc = create_key(path, err);
        if (rc < 0)
            return rc;
    }
    unsigned char *data = NULL;
    size_t n = 0;
    int rc = fp_keyfile_read(path, "webhook 密钥", "webhook secret key", 512, &data, &n, err);
    if (rc < 0)
        return rc;
    while (n && (data[n - 1] == '\n' || data[n - 1] == '\r' || data[n - 1] == ' '))
        n--;
    if (n != 2 * FP_SEAL_KEY_LEN || unhex((const char *)data, n, key) < 0)
        rc = fp_fail(err, FP_EINVAL, "%s: not a key (want 64 hex digits)", path);
    fp_keyfile_wipe(data, n);
    return rc;
}

int fp_is_sealed(const char *v)
{
    return v && !strncmp(v, FP_SEAL_PREFIX, PREFIX_N);
}

static int aead(const unsigned char key[FP_SEAL_KEY_LEN], gnutls_aead_cipher_hd_t *h)
{
    gnutls_datum_t k = {(unsigned char *)key, FP_SEAL_KEY_LEN};
    return gnutls_aead_cipher_init(h, GNUTLS_CIPHER_AES_256_GCM, &k);
}

int fp_seal(const unsigned char key[FP_SEAL_KEY_LEN], const char *aad, const char *plain, char *out,
            size_t cap, fp_err *err)
{
    size_t pn = strlen(plain), n = NONCE_LEN + pn + TAG_LEN;
    if (cap < FP_SEAL_LEN(pn))
        return fp_fail(err, FP_ERANGE, "secret too long");
    unsigned char *buf = malloc(n);
    if (!buf)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    gnutls_aead_cipher_hd_t h = NULL;
    size_t cn = pn + TAG_LEN;
    int ok = fp_random(buf, NONCE_LEN) == 0 && aead(key, &h) == 0 &&
             gnutls_aead_cipher_encrypt(h, buf, NONCE_LEN, aad, strlen(aad), TAG_LEN, plain, pn,
                                        buf + NONCE_LEN, &cn) == 0 &&
             cn == pn + TAG_LEN;
    if (h)
        gnutls_aead_cipher_deinit(h);
    if (ok) {
        memcpy(out, FP_SEAL_PREFIX, PREFIX_N);
        fp_hex(buf, n, out + PREFIX_N);
    }
    free(buf);
    return ok ? 0 : fp_fail(err, FP_ECRYPTO, "cannot encrypt the secret");
}

int fp_unseal(const unsigned char key[FP_SEAL_KEY_LEN], const char *aad, const char *sealed,
              char *out, size_t cap, fp_err *err)
{
    if (!fp_is_sealed(sealed))
        return fp_fail(err, FP_EINVAL, "not a sealed value");
    const char *hex = sealed + PREFIX_N;
    size_t hn = strlen(hex), n = hn / 2;
    if (hn % 2 || n < NONCE_LEN + TAG_LEN)
        return fp_fail(err, FP_ECRYPTO, "a sealed secret is damaged");
    size_t pn = n - NONCE_LEN - TAG_LEN;
    if (cap < pn + 1)
        return fp_fail(err, FP_ERANGE, "secret too long");
    unsigned char *buf = malloc(n);
    if (!buf)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    gnutls_aead_cipher_hd_t h = NULL;
    size_t got = pn;
    int ok = unhex(hex, hn, buf) == 0 && aead(key, &h) == 0 &&
             gnutls_aead_cipher_decrypt(h, buf, NONCE_LEN, aad, strlen(aad), TAG_LEN,
                                        buf + NONCE_LEN, n - NONCE_LEN, out, &got) == 0 &&
             got == pn;
    if (h)
        gnutls_aead_cipher_deinit(h);
    free(buf);
    if (!ok) {
        explicit_bzero(out, cap);
        return fp_fail(err, FP_ECRYPTO,
                       "cannot decrypt a webhook secret (webhook.key replaced, or the row "
                       "changed)");
    }
    out[pn] = 0;
    return 0;
}
