/* crypto.c — thin wrappers over nettle and GnuTLS's RNG. */
#include "fapiao/crypto.h"
#include "fapiao/err.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/hmac.h>
#include <nettle/sha2.h>
#include <string.h>

int fp_random(void *buf, size_t n)
{
    return gnutls_rnd(GNUTLS_RND_KEY, buf, n) == 0 ? 0 : FP_ECRYPTO;
}

void fp_sha256(const void *data, size_t n, unsigned char out[32])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, n, data);
    sha256_digest(&c, 32, out);
}

void fp_hmac_sha256(const void *key, size_t klen, const void *data, size_t n, unsigned char out[32])
{
    struct hmac_sha256_ctx c;
    hmac_sha256_set_key(&c, klen, key);
    hmac_sha256_update(&c, n, data);
    hmac_sha256_digest(&c, 32, out);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void fp_b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i + 2 < n) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
        i += 3;
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64[v >> 18];
        out[o++] = b64[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64[v >> 18];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
    }
    out[o] = 0;
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

int fp_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outcap)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) /* non-canonical trailing bits */
        return -1;
    return (int)o;
}

void fp_hex(const unsigned char *in, size_t n, char *out)
{
    static const char h[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = h[in[i] >> 4];
        out[2 * i + 1] = h[in[i] & 15];
    }
    out[2 * n] = 0;
}

int fp_ct_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}
