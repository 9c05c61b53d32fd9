/* auth.h — client secrets and access tokens.
 *
 * A client secret is "fps_" + 32 base64url characters (24 random bytes) + a
 * 6-character checksum, so a leaked secret is recognisable by scanners and
 * typos are caught before a database read.  Only SHA-256(salt || secret) is
 * stored; secrets are high-entropy, so a fast hash is the right one.
 *
 * An access token is "fpt2." + base64url(payload) + "." + base64url(HMAC-
 * SHA256(server key, "fpt2" || payload)) where payload is a fixed binary
 * layout (auth.c): the client id length-prefixed, then seller id, expiry,
 * the id of the secret the token was minted from, and a nonce.  The server
 * checks the signature without a database read; the client and its secret
 * are checked against the server's client cache (a token dies with the
 * secret it was minted from: docs/security.md).
 *
 * Client ids are [A-Za-z0-9._-]{1,64}, checked wherever one enters (API,
 * CLI, store) and again when a token is issued or read. */
#ifndef FAPIAO_AUTH_H
#define FAPIAO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"

#define FP_SECRET_LEN    42 /* fps_ + 32 + 6 */
#define FP_TOKEN_MAX     256
#define FP_TOKEN_KEY_LEN 32
#define FP_CLIENT_ID_MAX 64

/* 1 if id is 1-64 characters of [A-Za-z0-9._-]. */
int fp_client_id_valid(const char *id);
/* A client-supplied id made safe to record: at most 64 characters, every
 * character outside [A-Za-z0-9._-] replaced by '?'. */
void fp_client_id_sanitize(const char *in, char out[FP_CLIENT_ID_MAX + 1]);

int fp_secret_generate(char out[FP_SECRET_LEN + 1]);
/* 1 if the secret has the right shape and checksum. */
int fp_secret_wellformed(const char *s);
void fp_secret_hash(const unsigned char salt[16], const char *secret, unsigned char out[32]);
/* How many secret hashes this process computed (tests: the token exchange
 * does the same work for an unknown client as for a known one). */
uint64_t fp_secret_hash_count(void);

typedef struct fp_token_claims {
    char client_id[65];
    int64_t seller_id;
    int64_t expires;
    int64_t secret_id; /* client_secrets.id the token was minted from */
} fp_token_claims;

/* FP_EINVAL for claims that could not be read back (a bad client id,
 * seller_id, expires or secret_id < 1). */
int fp_token_issue(const unsigned char key[FP_TOKEN_KEY_LEN], const fp_token_claims *c,
                   char out[FP_TOKEN_MAX]);

typedef enum { FP_TOKEN_OK = 0, FP_TOKEN_INVALID = -1, FP_TOKEN_EXPIRED = -2 } fp_token_status;
fp_token_status fp_token_verify(const unsigned char key[FP_TOKEN_KEY_LEN], const char *token,
                                int64_t now, fp_token_claims *c);

#endif
