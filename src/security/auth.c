/* auth.c — client secrets (generate, check shape, hash) and signed access
 * tokens (issue, verify). */
#include "fapiao/auth.h"
#include "fapiao/crypto.h"

#include <inttypes.h>
#include <stdatomic.h>
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

static atomic_uint_fast64_t hash_count;

uint64_t fp_secret_hash_count(void)
{
    return atomic_load(&hash_count);
}

void fp_secret_hash(const unsigned char salt[16], const char *secret, unsigned char out[32])
{
    atomic_fetch_add(&hash_count, 1);
    unsigned char buf[16 + 64];
    size_t n = strlen(secret);
    if (n > 64)
        n = 64; /* well-formed secrets are 42 bytes */
    memcpy(buf, salt, 16);
    memcpy(buf + 16, secret, n);
    fp_sha256(buf, 16 + n, out);
}

int fp_client_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > FP_CLIENT_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void fp_client_id_sanitize(const char *in, char out[FP_CLIENT_ID_MAX + 1])
{
    size_t n = 0;
    for (; in && in[n] && n < FP_CLIENT_ID_MAX; n++) {
        char c = in[n];
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '.' || c == '_' || c == '-';
        out[n] = ok ? c : '?';
    }
    out[n] = 0;
}

/* The signed payload, binary (fixed layout, nothing to escape):
 *   1 byte   client id length n (1..64)
 *   n bytes  client id
 *   8 bytes  seller id, big-endian (>= 1)
 *   8 bytes  expiry, unix seconds, big-endian (>= 1)
 *   8 bytes  the id of the secret the token was minted from (>= 1)
 *   9 bytes  random nonce
 * The MAC covers "fpt2" and the payload, so no other token version's
 * bytes can ever verify as this one.  Version 1 ("client|seller|expires|
 * nonce" as text) let a client id containing '|' inject the other fields;
 * its tokens are no longer accepted (clients re-exchange on the 401). */
#define TOKEN_FIXED (8 + 8 + 8 + 9)
#define TOKEN_TAG   "fpt2"

static void put_be64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--, u >>= 8)
        p[i] = (unsigned char)u;
}

static int64_t get_be64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    return (int64_t)u;
}

static void token_mac(const unsigned char key[FP_TOKEN_KEY_LEN], const unsigned char *payload,
                      size_t n, unsigned char mac[32])
{
    unsigned char buf[4 + 1 + FP_CLIENT_ID_MAX + TOKEN_FIXED];
    if (n > sizeof buf - 4) /* callers check; never write past buf */
        n = sizeof buf - 4;
    memcpy(buf, TOKEN_TAG, 4);
    memcpy(buf + 4, payload, n);
    fp_hmac_sha256(key, FP_TOKEN_KEY_LEN, buf, 4 + n, mac);
}

int fp_token_issue(const unsigned char key[FP_TOKEN_KEY_LEN], const fp_token_claims *c,
                   char out[FP_TOKEN_MAX])
{
    unsigned char payload[1 + FP_CLIENT_ID_MAX + TOKEN_FIXED], mac[32];
    char p64[200], m64[48];
    if (!fp_client_id_valid(c->client_id) || c->seller_id < 1 || c->expires < 1 || c->secret_id < 1)
        return FP_EINVAL;
    size_t idn = strlen(c->client_id), n = 0;
    payload[n++] = (unsigned char)idn;
    memcpy(payload + n, c->client_id, idn);
    n += idn;
    put_be64(payload + n, c->seller_id);
    put_be64(payload + n + 8, c->expires);
    put_be64(payload + n + 16, c->secret_id);
    if (fp_random(payload + n + 24, 9) < 0)
        return FP_ECRYPTO;
    n += TOKEN_FIXED;
    token_mac(key, payload, n, mac);
    fp_b64url_encode(payload, n, p64);
    fp_b64url_encode(mac, 32, m64);
    int len = snprintf(out, FP_TOKEN_MAX, "fpt2.%s.%s", p64, m64);
    return len > 0 && len < FP_TOKEN_MAX ? 0 : FP_EINVAL;
}

fp_token_status fp_token_verify(const unsigned char key[FP_TOKEN_KEY_LEN], const char *token,
                                int64_t now, fp_token_claims *c)
{
    if (!token || strncmp(token, "fpt2.", 5) != 0 || strlen(token) >= FP_TOKEN_MAX)
        return FP_TOKEN_INVALID;
    const char *p = token + 5, *dot = strchr(p, '.');
    if (!dot)
        return FP_TOKEN_INVALID;
    unsigned char payload[1 + FP_CLIENT_ID_MAX + TOKEN_FIXED + 1], mac[40], want[32];
    int pl = fp_b64url_decode(p, (size_t)(dot - p), payload, sizeof payload);
    int ml = fp_b64url_decode(dot + 1, strlen(dot + 1), mac, sizeof mac);
    /* payload has a byte to spare so that an over-long one is seen, and
     * refused before the MAC (whose buffer holds the longest valid one) */
    if (pl <= 0 || (size_t)pl > 1 + FP_CLIENT_ID_MAX + TOKEN_FIXED || ml != 32)
        return FP_TOKEN_INVALID;
    token_mac(key, payload, (size_t)pl, want);
    if (!fp_ct_equal(want, mac, 32))
        return FP_TOKEN_INVALID;
    /* signed by us, but checked as strictly as if it were not */
    size_t idn = payload[0];
    if (idn < 1 || idn > FP_CLIENT_ID_MAX || (size_t)pl != 1 + idn + TOKEN_FIXED)
        return FP_TOKEN_INVALID;
    memset(c, 0, sizeof *c);
    memcpy(c->client_id, payload + 1, idn);
    c->client_id[idn] = 0;
    const unsigned char *f = payload + 1 + idn;
    c->seller_id = get_be64(f);
    c->expires = get_be64(f + 8);
    c->secret_id = get_be64(f + 16);
    if (!fp_client_id_valid(c->client_id) || c->seller_id < 1 || c->expires < 1 ||
        c->secret_id < 1) {
        memset(c, 0, sizeof *c);
        return FP_TOKEN_INVALID;
    }
    /* valid through the whole second `expires`: a token lives at least its ttl */
    return now > c->expires ? FP_TOKEN_EXPIRED : FP_TOKEN_OK;
}
