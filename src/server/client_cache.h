/* client_cache.h — the server's view of the clients table and of the
 * live secrets, refreshed at most once a second, so that revocations,
 * secret rotations (a token dies with the secret it was minted from),
 * role changes, allowlists and certificate bindings take effect within
 * about a second without a database read per request (client_cache.c). */
#ifndef FAPIAO_SERVER_CLIENT_CACHE_H
#define FAPIAO_SERVER_CLIENT_CACHE_H

#include <stdint.h>

#include "fapiao/rbac.h"
#include "fapiao/store.h"

#define FP_CACHED_SECRETS 4

typedef struct fp_cached_client {
    char client_id[65];
    int64_t seller_id;
    unsigned roles;
    int revoked;
    int has_allowlist;
    fp_allowlist allow;
    char cert_sha256[65];
    /* live secrets (ids and ends, 0: no end); more than FP_CACHED_SECRETS
     * (only in a database from before the cap) keeps the newest */
    int nsecrets;
    int64_t secret_id[FP_CACHED_SECRETS], secret_expires[FP_CACHED_SECRETS];
} fp_cached_client;

typedef struct fp_client_cache fp_client_cache;

int fp_client_cache_new(fp_store *s, int refresh_ms, fp_client_cache **out, fp_err *err);
void fp_client_cache_free(fp_client_cache *c);
/* 0 with a copy in out, FP_ENOTFOUND (no such client, e.g. deleted), or
 * FP_EIO when the table could never be read. */
int fp_client_cache_get(fp_client_cache *c, const char *client_id, fp_cached_client *out);
/* As fp_client_cache_get, for a token minted from secret_id: a secret not
 * live in the snapshot is looked up again in a fresh one (a token from a
 * secret made since the last refresh).  *live: the secret is live at now. */
int fp_client_cache_get_for_token(fp_client_cache *c, const char *client_id, int64_t secret_id,
                                  int64_t now, fp_cached_client *out, int *live);
/* 1 when secret_id is one of c's live secrets at now. */
int fp_cached_secret_live(const fp_cached_client *c, int64_t secret_id, int64_t now);

#endif
