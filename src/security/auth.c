/* auth.c — client secrets (generate, check shape, hash) and signed access
 * tokens (issue, verify). */
#include "fapiao/auth.h"
#include "fapiao/crypto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void checksum6(const char *body, size_t n, char out[7])
{
    unsigned char h[32];
    char enc[48];
    fp_sha256(body, n, h);
    fp_b64url_encode(h, 6, enc);
    memcpy(out, enc, 6);
    out[6] = 0;
}

int fp_secret_generate(char out[FP_SECRET_LEN + 1])
{
    unsigned char r[24];
    char enc[40], sum[7];
    if (fp_random(r, sizeof r) < 0)
        return FP_ECRYPTO;
    fp_b64url_encode(r, sizeof r, enc); /* 32 characters */
    checksum6(enc, 32, sum);
    memcpy(out, "fps_", 4);
    memcpy(out + 4, enc, 32);
    memcpy(out + 36, sum, 6);
    out[FP_SECRET_LEN] = 0;
    return 0;
}

int fp_secret_wellformed(const char *s)
{
    if (!s || strlen(s) != FP_SECRET_LEN || strncmp(s, "fps_", 4) != 0)
        return 0;
    unsigned char tmp[32];
    if (fp_b64url_decode(s + 4, 32, tmp, sizeof tmp) != 24)
        return 0;
    char sum[7];
    checksum6(s + 4, 32, sum);
    return fp_ct_equal(sum, s + 36, 6);
}

void fp_secret_hash(const unsigned char salt[16], const char *secret, unsigned char out[32])
{
    unsigned char buf[16 + 64];
    size_t n = strlen(secret);
    if (n > 64)
        n = 64; /* well-formed secrets are 42 bytes */
    memcpy(buf, salt, 16);
    memcpy(buf + 16, secret, n);
    fp_sha256(buf, 16 + n, out);
}

int fp_token_issue(const unsigned char key[FP_TOKEN_KEY_LEN], const fp_token_claims *c,
                   char out[FP_TOKEN_MAX])
{
    unsigned char nonce[9], mac[32];
    char payload[160], nonce_s[16], p64[220], m64[48];
    if (fp_random(nonce, sizeof nonce) < 0)
        return FP_ECRYPTO;
    fp_b64url_encode(nonce, sizeof nonce, nonce_s);
    int n = snprintf(payload, sizeof payload, "%s|%" PRId64 "|%" PRId64 "|%s", c->client_id,
                     c->seller_id, c->expires, nonce_s);
    if (n < 0 || (size_t)n >= sizeof payload)
        return FP_EINVAL;
    fp_hmac_sha256(key, FP_TOKEN_KEY_LEN, payload, (size_t)n, mac);
    fp_b64url_encode((const unsigned char *)payload, (size_t)n, p64);
    fp_b64url_encode(mac, 32, m64);
    n = snprintf(out, FP_TOKEN_MAX, "fpt1.%s.%s", p64, m64);
    return n > 0 && n < FP_TOKEN_MAX ? 0 : FP_EINVAL;
}

fp_token_status fp_token_verify(const unsigned char key[FP_TOKEN_KEY_LEN], const char *token,
                                int64_t now, fp_token_claims *c)
{
    if (!token || strncmp(token, "fpt1.", 5) != 0 || strlen(token) >= FP_TOKEN_MAX)
        return FP_TOKEN_INVALID;
    const char *p = token + 5, *dot = strchr(p, '.');
    if (!dot)
        return FP_TOKEN_INVALID;
    unsigned char payload[200], mac[40], want[32];
    int pl = fp_b64url_decode(p, (size_t)(dot - p), payload, sizeof payload - 1);
    int ml = fp_b64url_decode(dot + 1, strlen(dot + 1), mac, sizeof mac);
    if (pl <= 0 || ml != 32)
        return FP_TOKEN_INVALID;
    fp_hmac_sha256(key, FP_TOKEN_KEY_LEN, payload, (size_t)pl, want);
    if (!fp_ct_equal(want, mac, 32))
        return FP_TOKEN_INVALID;
    payload[pl] = 0;
    /* client_id|seller_id|expires|nonce — signed by us, so well-formed */
    char *s = (char *)payload, *f[4];
    for (int i = 0; i < 4; i++) {
        f[i] = s;
        s = strchr(s, '|');
        if (i < 3) {
            if (!s)
                return FP_TOKEN_INVALID;
            *s++ = 0;
        }
    }
    if (strlen(f[0]) >= sizeof c->client_id)
        return FP_TOKEN_INVALID;
    memcpy(c->client_id, f[0], strlen(f[0]) + 1);
    c->seller_id = strtoll(f[1], NULL, 10);
    c->expires = strtoll(f[2], NULL, 10);
    /* valid through the whole second `expires`: a token lives at least its ttl */
    return now > c->expires ? FP_TOKEN_EXPIRED : FP_TOKEN_OK;
}
