/* test_totp.c — TOTP (totp.h) against RFC 6238 Appendix B: SHA-1, SHA-256
 * and SHA-512 with their 20-, 32- and 64-byte seeds (the RFC's erratum
 * 2866: the published table was computed with seeds of the hash's length),
 * 8 digits; the verify window and its returned step (the caller's replay
 * check keys on it); base32 both ways. */
#include "check.h"
#include "fapiao/err.h"
#include "fapiao/totp.h"

#include <stdint.h>
#include <string.h>

static const char *const seeds[3] = {
    "12345678901234567890",
    "12345678901234567890123456789012",
    "1234567890123456789012345678901234567890123456789012345678901234",
};

static const struct {
    int64_t t;
    const char *code[3]; /* SHA-1, SHA-256, SHA-512 */
} vectors[] = {
    {59, {"94287082", "46119246", "90693936"}},
    {1111111109, {"07081804", "68084774", "25091201"}},
    {1111111111, {"14050471", "67062674", "99943326"}},
    {1234567890, {"89005924", "91819424", "93441116"}},
    {2000000000, {"69279037", "90698825", "38618901"}},
    {20000000000, {"65353130", "77737706", "47863826"}},
};

static void test_rfc6238(void)
{
    for (size_t i = 0; i < NCASES(vectors); i++)
        for (int a = 0; a < 3; a++) {
            check_ctx("t=%lld alg=%d", (long long)vectors[i].t, a);
            char out[9];
            CHECK_EQ_INT(fp_totp_code((fp_totp_alg)a, (const unsigned char *)seeds[a],
                                      strlen(seeds[a]), (uint64_t)(vectors[i].t / 30), 8, out),
                         0);
            CHECK_EQ_STR(out, vectors[i].code[a]);
        }
    check_ctx("%s", "");
    char out[9];
    CHECK_EQ_INT(fp_totp_code(FP_TOTP_SHA1, (const unsigned char *)"k", 1, 1, 5, out), FP_EINVAL);
    CHECK_EQ_INT(fp_totp_code(FP_TOTP_SHA1, (const unsigned char *)"k", 0, 1, 6, out), FP_EINVAL);
}

static void test_verify(void)
{
    const unsigned char *seed = (const unsigned char *)seeds[0];
    char c6[9];
    int64_t t = 1234567890, step = t / 30;
    fp_totp_code(FP_TOTP_SHA1, seed, 20, (uint64_t)step, 6, c6);
    CHECK_EQ_STR(c6, "005924"); /* the 8-digit vector's last six */
    CHECK(fp_totp_verify(seed, 20, t, 1, c6) == step);
    CHECK(fp_totp_verify(seed, 20, t + 30, 1, c6) == step); /* one step late */
    CHECK(fp_totp_verify(seed, 20, t - 30, 1, c6) == step); /* one step early */
    CHECK(fp_totp_verify(seed, 20, t + 60, 1, c6) == -1);   /* two steps: refused */
    CHECK(fp_totp_verify(seed, 20, t, 0, "000000") == -1);
    CHECK(fp_totp_verify(seed, 20, t, 1, "00592") == -1);
    CHECK(fp_totp_verify(seed, 20, t, 1, NULL) == -1);
}

static void test_base32(void)
{
    char b[64];
    fp_base32_encode((const unsigned char *)"foobar", 6, b);
    CHECK_EQ_STR(b, "MZXW6YTBOI"); /* RFC 4648 §10 without padding */
    fp_base32_encode((const unsigned char *)seeds[0], 20, b);
    CHECK_EQ_STR(b, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    unsigned char d[32];
    CHECK_EQ_INT(fp_base32_decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", d, sizeof d), 20);
    CHECK(memcmp(d, seeds[0], 20) == 0);
    CHECK_EQ_INT(fp_base32_decode("MZXW6YTBOI======", d, sizeof d), 6);
    CHECK_EQ_INT(fp_base32_decode("MZ1W", d, sizeof d), -1);
    CHECK_EQ_INT(fp_base32_decode("GEZDGNBVGY3TQOJQ", d, 4), -1);
}

int main(void)
{
    test_rfc6238();
    test_verify();
    test_base32();
    return check_summary();
}
