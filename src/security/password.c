/* password.c — Argon2id through libargon2 (password.h). */
#include "fapiao/password.h"
#include "fapiao/crypto.h"

#include <argon2.h>
#include <string.h>

int fp_password_hash(const char *pw, char *out, size_t cap, fp_err *err)
{
    size_t n = strlen(pw);
    if (n < FP_PW_MIN_LEN || n > FP_PW_MAX_LEN)
        return fp_fail(err, FP_EINVAL, "密码须为 %d..%d 字节 / a password must be %d..%d bytes",
                       FP_PW_MIN_LEN, FP_PW_MAX_LEN, FP_PW_MIN_LEN, FP_PW_MAX_LEN);
    unsigned char salt[16];
    if (fp_random(salt, sizeof salt) < 0)
        return fp_fail(err, FP_ECRYPTO, "random: no entropy");
    int rc = argon2id_hash_encoded(FP_PW_T_COST, FP_PW_M_KIB, FP_PW_PARALLEL, pw, n, salt,
                                   sizeof salt, 32, out, cap);
    if (rc != ARGON2_OK)
        return fp_fail(err, FP_ECRYPTO, "argon2id: %s", argon2_error_message(rc));
    return 0;
}

int fp_password_verify(const char *encoded, const char *pw)
{
    size_t n = strlen(pw);
    if (n > FP_PW_MAX_LEN || strncmp(encoded, "$argon2id$", 10) != 0)
        return 0;
    return argon2id_verify(encoded, pw, n) == ARGON2_OK;
}
