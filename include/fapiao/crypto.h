/* crypto.h — the small set of primitives fapiao needs, on GnuTLS/nettle:
 * random bytes, SHA-256, HMAC-SHA256, base64url, hex and a constant-time
 * comparison. */
#ifndef FAPIAO_CRYPTO_H
#define FAPIAO_CRYPTO_H

#include <stddef.h>

int fp_random(void *buf, size_t n); /* 0 or FP_ECRYPTO */
void fp_sha256(const void *data, size_t n, unsigned char out[32]);
void fp_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
                    unsigned char out[32]);
/* Writes base64url without padding; out needs 4*ceil(n/3)+1 bytes. */
void fp_b64url_encode(const unsigned char *in, size_t n, char *out);
/* Returns decoded length or -1; out needs 3*len/4 bytes. */
int fp_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap);
void fp_hex(const unsigned char *in, size_t n, char *out); /* out: 2n+1 */
int fp_ct_equal(const void *a, const void *b, size_t n);   /* 1 if equal */

#endif
