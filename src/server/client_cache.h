/* client_cache.h — the server's view of the clients table, refreshed at
 * most once a second, so that revocations, role changes, allowlists and
 * certificate bindings take effect within about a second without a
 * database read per request (client_cache.c). */
#ifndef FAPIAO_SERVER_CLIENT_CACHE_H
#define FAPIAO_SERVER_CLIENT_CACHE_H

#include <stdint.h>

#include "fapiao/rbac.h"
#include "fapiao/store.h"

typedef struct fp_cached_client {
    char client_id[65];
    int64_t seller_id;
    unsigned roles;
    int revoked;
    int has_allowlist;
    fp_allowlist allow;
    char cert_sha256[65];
} fp_cached_client;

typedef struct fp_client_cache fp_client_cache;

int fp_client_cache_new(fp_store *s, int refresh_ms, fp_client_cache **out, fp_err *err);
void fp_client_cache_free(fp_client_cache *c);
/* 0 with a copy in out, FP_ENOTFOUND (no such client, e.g. deleted), or
 * FP_EIO when the table could never be read. */
int fp_client_cache_get(fp_client_cache *c, const char *client_id, fp_cached_client *out);

#endif
