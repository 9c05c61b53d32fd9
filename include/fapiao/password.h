/* password.h — console passwords, hashed with Argon2id (Debian's
 * libargon2; docs/console.md has the parameters and the measured time).
 *
 * The encoded form ($argon2id$v=19$m=65536,t=3,p=1$salt$hash) carries its
 * parameters, so raising them later still verifies old hashes.  Hashing
 * takes about a fifth of a second and 64 MiB on purpose: the server checks
 * its rate limits before calling it and caps concurrent calls. */
#ifndef FAPIAO_PASSWORD_H
#define FAPIAO_PASSWORD_H

#include <stddef.h>

#include "fapiao/err.h"

#define FP_PW_T_COST   3
#define FP_PW_M_KIB    65536 /* 64 MiB */
#define FP_PW_PARALLEL 1
#define FP_PW_MIN_LEN  12
#define FP_PW_MAX_LEN  256
#define FP_PW_HASH_MAX 160 /* the encoded hash, with NUL */

/* Hashes pw (FP_PW_MIN_LEN..FP_PW_MAX_LEN bytes) with a fresh random salt
 * into out (cap >= FP_PW_HASH_MAX).  0, FP_EINVAL (length) or FP_ECRYPTO. */
int fp_password_hash(const char *pw, char *out, size_t cap, fp_err *err);
/* 1 when pw matches the encoded hash, 0 otherwise (a malformed hash too). */
int fp_password_verify(const char *encoded, const char *pw);

#endif
