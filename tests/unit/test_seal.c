/* test_seal.c — secrets sealed at rest (seal.h): a round trip, a fresh
 * nonce per value, and refusals of another key, another owner (aad), a
 * changed byte and a short buffer; the key file made 0600 and read under
 * the key-file rule. */
#include "check.h"
#include "fapiao/seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_round_trip(void)
{
    unsigned char k1[FP_SEAL_KEY_LEN], k2[FP_SEAL_KEY_LEN];
    memset(k1, 1, sizeof k1);
    memset(k2, 2, sizeof k2);
    const char *secret = "whsec_0123456789abcdef0123456789abcdef";
    char a[FP_SEAL_LEN(40)], b[FP_SEAL_LEN(40)], out[128];
    fp_err err = {0};
    CHECK_EQ_INT(fp_seal(k1, "client-a", secret, a, sizeof a, &err), 0);
    CHECK_EQ_INT(fp_seal(k1, "client-a", secret, b, sizeof b, &err), 0);
    CHECK(fp_is_sealed(a) && !fp_is_sealed(secret));
    CHECK_MSG(strcmp(a, b) != 0, "two seals of one secret are alike (nonce reused)");
    CHECK(strstr(a, "0123456789abcdef") == NULL);
    CHECK_EQ_INT(fp_unseal(k1, "client-a", a, out, sizeof out, &err), 0);
    CHECK_EQ_STR(out, secret);
    CHECK_EQ_INT(fp_unseal(k2, "client-a", a, out, sizeof out, &err), FP_ECRYPTO);
    CHECK_EQ_INT(fp_unseal(k1, "client-b", a, out, sizeof out, &err), FP_ECRYPTO);
    size_t n = strlen(a);
    a[n - 1] = a[n - 1] == '0' ? '1' : '0';
    CHECK_EQ_INT(fp_unseal(k1, "client-a", a, out, sizeof out, &err), FP_ECRYPTO);
    CHECK_EQ_INT(fp_unseal(k1, "client-a", b, out, 10, &err), FP_ERANGE);
    CHECK_EQ_INT(fp_seal(k1, "client-a", secret, b, 20, &err), FP_ERANGE);
    CHECK_EQ_INT(fp_unseal(k1, "client-a", "fpwk1:zz", out, sizeof out, &err), FP_ECRYPTO);
}

static void test_key_file(void)
{
    char dir[] = "/tmp/fp_seal_XXXXXX", path[64];
    if (!CHECK(mkdtemp(dir) != NULL))
        return;
    snprintf(path, sizeof path, "%s/webhook.key", dir);
    unsigned char k1[FP_SEAL_KEY_LEN], k2[FP_SEAL_KEY_LEN];
    fp_err err = {0};
    CHECK_EQ_INT(fp_seal_key_load(path, 0, k1, &err), FP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "is missing");
    CHECK_EQ_INT(fp_seal_key_load(path, 1, k1, &err), 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_EQ_INT(fp_seal_key_load(path, 1, k2, &err), 0);
    CHECK(!memcmp(k1, k2, sizeof k1));
    chmod(path, 0644);
    CHECK_EQ_INT(fp_seal_key_load(path, 0, k2, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "webhook secret key");
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_round_trip();
    test_key_file();
    return check_summary();
}
