/* sm4.c — SM4 (GB/T 32907-2016) in ECB mode with PKCS#7 padding, the cipher
 * of the tax platform's envelope (docs/upstream.md §1).
 *
 * Why libgcrypt: Debian 12's GnuTLS and nettle 3.8 have no SM4; libgcrypt
 * 1.10 has it as GCRY_CIPHER_SM4.  libgcrypt is only the block cipher here:
 * the padding is ours, so that a wrong key is told apart from a short or
 * garbled message (both end as "the padding does not check"), and so that
 * the padding is tested on its own. */
#include "fapiao/upstream.h"

#include <gcrypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t gcry_once = PTHREAD_ONCE_INIT;
static int gcry_ok;

static void gcry_init(void)
{
    /* Only ciphers are used: no secure memory, no entropy gathering. */
    if (gcry_check_version("1.10.0")) {
        gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
        gcry_ok = 1;
    }
}

size_t fp_pkcs7_padded_len(size_t len)
{
    return (len / FP_SM4_BLOCK + 1) * FP_SM4_BLOCK;
}

void fp_pkcs7_pad(uint8_t *buf, size_t len)
{
    size_t total = fp_pkcs7_padded_len(len);
    memset(buf + len, (int)(total - len), total - len);
}

int fp_pkcs7_unpad(const uint8_t *buf, size_t len, size_t *out_len)
{
    if (len == 0 || len % FP_SM4_BLOCK)
        return FP_ECRYPTO;
    uint8_t n = buf[len - 1];
    if (n == 0 || n > FP_SM4_BLOCK)
        return FP_ECRYPTO;
    for (size_t i = len - n; i < len; i++)
        if (buf[i] != n)
            return FP_ECRYPTO;
    *out_len = len - n;
    return 0;
}

int fp_sm4_key_parse(const char *hex, uint8_t key[FP_SM4_KEY_LEN])
{
    static const char digits[] = "0123456789abcdef";
    if (!hex || strlen(hex) != 2 * FP_SM4_KEY_LEN)
        return FP_EINVAL;
    for (size_t i = 0; i < 2 * FP_SM4_KEY_LEN; i++) {
        char c = hex[i] >= 'A' && hex[i] <= 'F' ? (char)(hex[i] - 'A' + 'a') : hex[i];
        const char *p = c ? strchr(digits, c) : NULL;
        if (!p)
            return FP_EINVAL;
        int v = (int)(p - digits);
        key[i / 2] = (uint8_t)(i % 2 ? (key[i / 2] | v) : v << 4);
    }
    return 0;
}

/* ECB over len bytes (a multiple of the block) in place. */
static int ecb(const uint8_t key[FP_SM4_KEY_LEN], uint8_t *buf, size_t len, int enc, fp_err *err)
{
    pthread_once(&gcry_once, gcry_init);
    if (!gcry_ok)
        return fp_fail(err, FP_ECRYPTO, "libgcrypt is older than 1.10 (no SM4)");
    gcry_cipher_hd_t h;
    gcry_error_t ge = gcry_cipher_open(&h, GCRY_CIPHER_SM4, GCRY_CIPHER_MODE_ECB, 0);
    if (ge)
        return fp_fail(err, FP_ECRYPTO, "SM4: %s", gcry_strerror(ge));
    ge = gcry_cipher_setkey(h, key, FP_SM4_KEY_LEN);
    if (!ge)
        ge = enc ? gcry_cipher_encrypt(h, buf, len, NULL, 0)
                 : gcry_cipher_decrypt(h, buf, len, NULL, 0);
    gcry_cipher_close(h);
    if (ge)
        return fp_fail(err, FP_ECRYPTO, "SM4: %s", gcry_strerror(ge));
    return 0;
}

int fp_sm4_block(const uint8_t key[FP_SM4_KEY_LEN], const uint8_t in[FP_SM4_BLOCK],
                 uint8_t out[FP_SM4_BLOCK])
{
    memcpy(out, in, FP_SM4_BLOCK);
    return ecb(key, out, FP_SM4_BLOCK, 1, NULL);
}

int fp_sm4_encrypt(const uint8_t key[FP_SM4_KEY_LEN], const void *in, size_t len, uint8_t **out,
                   size_t *out_len, fp_err *err)
{
    *out = NULL;
    if (len > FP_UP_MAX_BODY)
        return fp_fail(err, FP_ERANGE, "SM4: message of %zu bytes is too large", len);
    size_t total = fp_pkcs7_padded_len(len);
    uint8_t *buf = malloc(total);
    if (!buf)
        return fp_fail(err, FP_ENOMEM, "SM4: out of memory");
    if (len)
        memcpy(buf, in, len);
    fp_pkcs7_pad(buf, len);
    int rc = ecb(key, buf, total, 1, err);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = total;
    return 0;
}

int fp_sm4_decrypt(const uint8_t key[FP_SM4_KEY_LEN], const void *in, size_t len, uint8_t **out,
                   size_t *out_len, fp_err *err)
{
    *out = NULL;
    if (len == 0 || len % FP_SM4_BLOCK)
        return fp_fail(err, FP_ECRYPTO, "SM4: ciphertext of %zu bytes is not whole 16-byte blocks",
                       len);
    if (len > FP_UP_MAX_BODY + FP_SM4_BLOCK)
        return fp_fail(err, FP_ERANGE, "SM4: ciphertext of %zu bytes is too large", len);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        return fp_fail(err, FP_ENOMEM, "SM4: out of memory");
    memcpy(buf, in, len);
    int rc = ecb(key, buf, len, 0, err);
    size_t n = 0;
    if (!rc && fp_pkcs7_unpad(buf, len, &n))
        rc = fp_fail(err, FP_ECRYPTO, "SM4: the padding does not check (wrong key?)");
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = 0; /* a text message reads as a C string */
    *out = buf;
    *out_len = n;
    return 0;
}
