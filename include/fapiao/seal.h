/* seal.h — secrets the server must read back (webhook signing secrets),
 * encrypted at rest with a key file beside token.key.
 *
 * AES-256-GCM through GnuTLS, a random 96-bit nonce per value, the owner's
 * id as associated data (a sealed value moved to another row does not
 * open).  A sealed value is text: "fpwk1:" followed by hex of nonce ||
 * ciphertext || tag.  The key file holds 64 hex digits, is made 0600 on
 * first use and is read under the key-file rule (keyfile.h).  See
 * docs/security.md "Secrets at rest". */
#ifndef FAPIAO_SEAL_H
#define FAPIAO_SEAL_H

#include <stddef.h>

#include "fapiao/err.h"

#define FP_SEAL_KEY_LEN 32
#define FP_SEAL_PREFIX  "fpwk1:"
/* the sealed form of n plaintext bytes takes this much room (with NUL) */
#define FP_SEAL_LEN(n) (sizeof FP_SEAL_PREFIX + 2 * (12 + (n) + 16))

/* Loads the key at path; when it does not exist and create is set, makes
 * it (0600, atomically: of two processes one wins and both use its key).
 * FP_ENOTFOUND when missing and !create; FP_EINVAL when the file breaks the
 * key-file rule or is not a key. */
int fp_seal_key_load(const char *path, int create, unsigned char key[FP_SEAL_KEY_LEN], fp_err *err);

/* 1 when v is a sealed value. */
int fp_is_sealed(const char *v);

int fp_seal(const unsigned char key[FP_SEAL_KEY_LEN], const char *aad, const char *plain, char *out,
            size_t cap, fp_err *err);
/* FP_ECRYPTO when the value was not sealed with this key and aad (or was
 * changed); FP_ERANGE when out is too small. */
int fp_unseal(const unsigned char key[FP_SEAL_KEY_LEN], const char *aad, const char *sealed,
              char *out, size_t cap, fp_err *err);

#endif
