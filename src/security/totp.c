/* totp.c — RFC 6238 TOTP over nettle's HMAC (totp.h).  Our own few lines
 * rather than liboath: Debian 12's liboath 2.6 does TOTP with HMAC-SHA-1
 * only through its stable API, and the RFC's SHA-256/512 vectors are part
 * of what is tested (tests/unit/test_totp.c). */
#include "fapiao/totp.h"
#include "fapiao/crypto.h"
#include "fapiao/err.h"

#include <nettle/hmac.h>
#include <stdio.h>
#include <string.h>

static void hmac(fp_totp_alg alg, const unsigned char *k, size_t kn, const unsigned char msg[8],
                 unsigned char *out, size_t *outn)
{
    if (alg == FP_TOTP_SHA256) {
        struct hmac_sha256_ctx c;
        hmac_sha256_set_key(&c, kn, k);
        hmac_sha256_update(&c, 8, msg);
        hmac_sha256_digest(&c, *outn = SHA256_DIGEST_SIZE, out);
    } else if (alg == FP_TOTP_SHA512) {
        struct hmac_sha512_ctx c;
        hmac_sha512_set_key(&c, kn, k);
        hmac_sha512_update(&c, 8, msg);
        hmac_sha512_digest(&c, *outn = SHA512_DIGEST_SIZE, out);
    } else {
        struct hmac_sha1_ctx c;
        hmac_sha1_set_key(&c, kn, k);
        hmac_sha1_update(&c, 8, msg);
        hmac_sha1_digest(&c, *outn = SHA1_DIGEST_SIZE, out);
    }
}

int fp_totp_code(fp_totp_alg alg, const unsigned char *seed, size_t seed_len, uint64_t step,
                 int digits, char *out)
{
    if (digits < 6 || digits > 8 || !seed_len || seed_len > FP_TOTP_SEED_MAX)
        return FP_EINVAL;
    unsigned char msg[8], mac[SHA512_DIGEST_SIZE];
    for (int i = 7; i >= 0; i--, step >>= 8)
        msg[i] = (unsigned char)(step & 0xff);
    size_t n = 0;
    hmac(alg, seed, seed_len, msg, mac, &n);
    unsigned off = mac[n - 1] & 0x0f; /* RFC 4226 §5.3 dynamic truncation */
    uint32_t bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
                   (uint32_t)mac[off + 2] << 8 | mac[off + 3];
    uint32_t mod = 1;
    for (int i = 0; i < digits; i++)
        mod *= 10;
    char text[16];
    snprintf(text, sizeof text, "%0*u", digits, (unsigned)(bin % mod));
    memcpy(out, text, (size_t)digits + 1);
    return 0;
}

int64_t fp_totp_verify(const unsigned char *seed, size_t seed_len, int64_t unix_now, int window,
                       const char *code)
{
    if (!code || strlen(code) != 6 || unix_now < 0)
        return -1;
    int64_t now = unix_now / FP_TOTP_STEP_S, hit = -1;
    for (int64_t s = now - window; s <= now + window; s++) {
        char want[9];
        if (s > 0 && fp_totp_code(FP_TOTP_SHA1, seed, seed_len, (uint64_t)s, 6, want) == 0 &&
            fp_ct_equal(want, code, 6))
            hit = s; /* the latest step that matches (no early exit) */
    }
    return hit;
}

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

void fp_base32_encode(const unsigned char *in, size_t n, char *out)
{
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        buf = buf << 8 | in[i];
        for (bits += 8; bits >= 5; bits -= 5)
            out[o++] = b32[buf >> (bits - 5) & 31];
    }
    if (bits > 0)
        out[o++] = b32[buf << (5 - bits) & 31];
    out[o] = 0;
}

int fp_base32_decode(const char *in, unsigned char *out, size_t cap)
{
    unsigned buf = 0;
    int bits = 0;
    size_t o = 0;
    for (; *in; in++) {
        char ch = *in >= 'a' && *in <= 'z' ? (char)(*in - 32) : *in;
        if (ch == ' ' || ch == '=')
            continue;
        const char *p = strchr(b32, ch);
        if (!p || !ch)
            return -1;
        buf = buf << 5 | (unsigned)(p - b32);
        if ((bits += 5) >= 8) {
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(buf >> (bits - 8) & 0xff);
            bits -= 8;
        }
    }
    return (int)o;
}
