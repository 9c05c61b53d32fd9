/* auth.h — client secrets and access tokens.
 *
 * A client secret is "fps_" + 32 base64url characters (24 random bytes) + a
 * 6-character checksum, so a leaked secret is recognisable by scanners and
 * typos are caught before a database read.  Only SHA-256(salt || secret) is
 * stored; secrets are high-entropy, so a fast hash is the right one.
 *
 * An access token is "fpt1." + base64url(payload) + "." + base64url(HMAC-
 * SHA256(server key, payload)) where payload is
 * "client_id|seller_id|expires_unix|nonce".  The server checks it without a
 * database read. */
#ifndef FAPIAO_AUTH_H
#define FAPIAO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"

#define FP_SECRET_LEN    42 /* fps_ + 32 + 6 */
#define FP_TOKEN_MAX     256
#define FP_TOKEN_KEY_LEN 32

int fp_secret_generate(char out[FP_SECRET_LEN + 1]);
/* 1 if the secret has the right shape and checksum. */
int fp_secret_wellformed(const char *s);
void fp_secret_hash(const unsigned char salt[16], const char *secret, unsigned char out[32]);

typedef struct fp_token_claims {
    char client_id[65];
    int64_t seller_id;
    int64_t expires;
} fp_token_claims;

int fp_token_issue(const unsigned char key[FP_TOKEN_KEY_LEN], const fp_token_claims *c,
                   char out[FP_TOKEN_MAX]);

typedef enum { FP_TOKEN_OK = 0, FP_TOKEN_INVALID = -1, FP_TOKEN_EXPIRED = -2 } fp_token_status;
fp_token_status fp_token_verify(const unsigned char key[FP_TOKEN_KEY_LEN], const char *token,
                                int64_t now, fp_token_claims *c);

#endif
