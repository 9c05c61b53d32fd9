/* webhook_secrets.c — webhook signing secrets in the PostgreSQL backend,
 * sealed at rest as in the SQLite backend (seal.h; docs/security.md
 * "Secrets at rest").  The key is webhook.key in the store's key_dir (the
 * node's data directory): every node on one database needs the same file
 * (docs/ha.md), or one node cannot open what another sealed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/jobs.h"
#include "fapiao/seal.h"
#include "internal.h"

static int load_key(fp_pg *s, int create, unsigned char key[FP_SEAL_KEY_LEN], fp_err *err)
{
    if (!s->o.key_dir)
        return fp_fail(err, FP_ECRYPTO,
                       "no key directory for webhook.key (the store was opened without "
                       "key_dir) / 未设置 webhook.key 所在目录");
    char path[4200];
    int n = snprintf(path, sizeof path, "%s/webhook.key", s->o.key_dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return fp_fail(err, FP_ERANGE, "path too long");
    return fp_seal_key_load(path, create, key, err);
}

static int seal(fp_pg *s, const char *client_id, const char *secret, char *out, size_t cap,
                fp_err *err)
{
    unsigned char key[FP_SEAL_KEY_LEN];
    int rc = load_key(s, 1, key, err);
    if (rc == 0)
        rc = fp_seal(key, client_id, secret, out, cap, err);
    explicit_bzero(key, sizeof key);
    return rc;
}

int pg_store_webhook_get(void *be, const char *client_id, char *url, size_t url_cap, char *secret,
                         size_t secret_cap)
{
    fp_pg *s = be;
    pg_params p = {0};
    pg_text(&p, client_id);
    PGconn *c = pg_racquire(s);
    int rc;
    PGresult *r = pg_q(c,
                       "SELECT coalesce(webhook_url, ''), coalesce(webhook_secret, '') "
                       "FROM clients WHERE client_id=$1",
                       &p, &rc, NULL);
    pg_rrelease(s, c);
    if (r && PQntuples(r) == 0)
        rc = FP_ENOTFOUND;
    else if (r) {
        pg_col(r, 0, 0, url, url_cap);
        const char *stored = PQgetvalue(r, 0, 1);
        if (!fp_is_sealed(stored)) {
            snprintf(secret, secret_cap, "%s", stored);
        } else {
            unsigned char key[FP_SEAL_KEY_LEN];
            rc = load_key(s, 0, key, NULL);
            if (rc == 0)
                rc = fp_unseal(key, client_id, stored, secret, secret_cap, NULL);
            explicit_bzero(key, sizeof key);
            if (rc < 0) {
                secret[0] = 0;
                rc = FP_ECRYPTO;
            }
        }
    }
    PQclear(r);
    return rc;
}

int pg_store_webhook_seal_all(void *be, int *sealed, fp_err *err)
{
    fp_pg *s = be;
    *sealed = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    PGresult *r = NULL;
    if (rc == 0)
        r = pg_q(s->w,
                 "SELECT client_id, webhook_secret FROM clients "
                 "WHERE coalesce(webhook_secret, '') <> '' "
                 "AND substr(webhook_secret, 1, 6) <> 'fpwk1:' FOR UPDATE",
                 NULL, &rc, err);
    for (int i = 0; r && rc == 0 && i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *plain = PQgetvalue(r, i, 1);
        size_t cap = FP_SEAL_LEN(strlen(plain));
        char *v = malloc(cap);
        rc = v ? seal(s, id, plain, v, cap, err) : fp_fail(err, FP_ENOMEM, "out of memory");
        if (rc == 0) {
            pg_params p = {0};
            pg_text(&p, id);
            pg_text(&p, v);
            rc = pg_exec(s->w, "UPDATE clients SET webhook_secret=$2 WHERE client_id=$1", &p, err);
        }
        free(v);
        *sealed += rc == 0;
    }
    PQclear(r);
    rc = rc == 0 ? pg_tx_commit(s, err) : (pg_tx_rollback(s), rc);
    if (rc < 0)
        *sealed = 0;
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int pg_store_webhook_set(void *be, const char *client_id, const char *url, const char *secret,
                         const fp_audit_rec *audit, fp_err *err)
{
    fp_pg *s = be;
    char *sealed = NULL;
    if (url && secret) {
        size_t cap = FP_SEAL_LEN(strlen(secret));
        int rc = (sealed = malloc(cap)) ? seal(s, client_id, secret, sealed, cap, err)
                                        : fp_fail(err, FP_ENOMEM, "out of memory");
        if (rc < 0) {
            free(sealed);
            return rc;
        }
    }
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        pg_params p = {0};
        pg_text(&p, client_id);
        pg_text(&p, url);
        pg_text(&p, url ? sealed : NULL);
        PGresult *r =
            pg_q(s->w, "UPDATE clients SET webhook_url=$2, webhook_secret=$3 WHERE client_id=$1",
                 &p, &rc, err);
        if (r && strcmp(PQcmdTuples(r), "1") != 0)
            rc = fp_fail(err, FP_ENOTFOUND, "no client %s", client_id);
        PQclear(r);
    }
    rc = pg_end_audited(s, audit, client_id, "ok", rc, err);
    pthread_mutex_unlock(&s->wlock);
    free(sealed);
    return rc;
}
