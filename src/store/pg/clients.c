/* clients.c — API credentials in the PostgreSQL backend (as
 * src/store/sqlite/clients.c): clients with roles, IP allowlists,
 * certificate bindings and revocation, and their secrets.  Shared by every
 * node through the database, so a credential made or rotated on one node
 * works on the others at once (nothing of it is cached here). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fapiao/auth.h"
#include "fapiao/crypto.h"
#include "fapiao/rbac.h"
#include "internal.h"

#define CLIENT_COLS                                                                                \
    "c.client_id, c.seller_id, c.roles, coalesce(c.allowed_ips, ''), "                             \
    "coalesce(c.cert_sha256, ''), c.created_at, coalesce(c.revoked_at, 0)"

static void read_client(const PGresult *r, int i, fp_client_info *c)
{
    memset(c, 0, sizeof *c);
    pg_col(r, i, 0, c->client_id, sizeof c->client_id);
    c->seller_id = pg_int(r, i, 1);
    char roles[64];
    pg_col(r, i, 2, roles, sizeof roles);
    if (fp_roles_parse(roles, &c->roles) < 0)
        c->roles = 0; /* a damaged row grants nothing */
    pg_col(r, i, 3, c->allowed_ips, sizeof c->allowed_ips);
    pg_col(r, i, 4, c->cert_sha256, sizeof c->cert_sha256);
    c->created_at = pg_int(r, i, 5);
    c->revoked_at = pg_int(r, i, 6);
}

static void read_secrets(PGconn *db, fp_client_info *c, int64_t now)
{
    pg_params p = {0};
    pg_text(&p, c->client_id);
    pg_i64(&p, now);
    int rc;
    PGresult *r = pg_q(db,
                       "SELECT prefix, created_at, coalesce(expires_at, 0) FROM client_secrets "
                       "WHERE client_id=$1 AND (expires_at IS NULL OR expires_at > $2) "
                       "ORDER BY id DESC",
                       &p, &rc, NULL);
    size_t len = 0;
    for (int i = 0; r && i < PQntuples(r); i++) {
        int64_t created = pg_int(r, i, 1), expires = pg_int(r, i, 2);
        if (c->active_secrets++ == 0)
            c->newest_secret_at = created;
        else if (expires && (!c->old_secrets_expire_at || expires > c->old_secrets_expire_at))
            c->old_secrets_expire_at = expires;
        int n = snprintf(c->secret_prefixes + len, sizeof c->secret_prefixes - len, "%s%s",
                         len ? "," : "", PQgetvalue(r, i, 0));
        if (n > 0 && (size_t)n < sizeof c->secret_prefixes - len)
            len += (size_t)n;
    }
    PQclear(r);
}

int pg_store_clients(void *be, int with_secrets, void (*fn)(const fp_client_info *c, void *arg),
                     void *arg)
{
    fp_pg *s = be;
    PGconn *db = pg_racquire(s);
    int rc;
    PGresult *r =
        pg_q(db, "SELECT " CLIENT_COLS " FROM clients c ORDER BY c.client_id", NULL, &rc, NULL);
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; r && i < PQntuples(r); i++) {
        fp_client_info c;
        read_client(r, i, &c);
        if (with_secrets)
            read_secrets(db, &c, now);
        fn(&c, arg);
    }
    PQclear(r);
    pg_rrelease(s, db);
    return rc;
}

static int get_client(PGconn *db, const char *id, fp_client_info *out, fp_err *err)
{
    pg_params p = {0};
    pg_text(&p, id);
    int rc;
    PGresult *r =
        pg_q(db, "SELECT " CLIENT_COLS " FROM clients c WHERE c.client_id=$1", &p, &rc, err);
    if (r && PQntuples(r) == 0)
        rc = fp_fail(err, FP_ENOTFOUND, "no client %s", id);
    else if (r)
        read_client(r, 0, out);
    PQclear(r);
    return rc;
}

int pg_store_get_client(void *be, const char *client_id, fp_client_rec *c)
{
    fp_pg *s = be;
    PGconn *db = pg_racquire(s);
    pg_params p = {0};
    pg_text(&p, client_id);
    int rc;
    PGresult *r = pg_q(db,
                       "SELECT seller_id, secret_salt, secret_hash, scope, disabled FROM clients "
                       "WHERE client_id=$1",
                       &p, &rc, NULL);
    if (r && PQntuples(r) == 0)
        rc = FP_ENOTFOUND;
    else if (r) {
        memset(c, 0, sizeof *c);
        snprintf(c->client_id, sizeof c->client_id, "%s", client_id);
        c->seller_id = pg_int(r, 0, 0);
        if (pg_bytea(r, 0, 1, c->salt, 16) < 0 || pg_bytea(r, 0, 2, c->hash, 32) < 0)
            rc = FP_EIO;
        pg_col(r, 0, 3, c->scope, sizeof c->scope);
        c->disabled = (int)pg_int(r, 0, 4);
    }
    PQclear(r);
    pg_rrelease(s, db);
    return rc;
}

/* The same work whatever the client id (as the SQLite backend's): the
 * same queries, then FP_SECRETS_LIVE_MAX hashes at least. */
int pg_store_client_check_secret(void *be, const char *client_id, const char *secret, int64_t now,
                                 fp_client_info *out)
{
    fp_pg *s = be;
    PGconn *db = pg_racquire(s);
    int rc = fp_client_id_valid(client_id) ? get_client(db, client_id, out, NULL) : FP_ENOTFOUND;
    int qrc;
    fp_secret_check chk = {.secret = secret};
    pg_params p = {0};
    pg_text(&p, client_id);
    pg_i64(&p, now);
    PGresult *r = pg_q(db,
                       "SELECT salt, hash, id FROM client_secrets WHERE client_id=$1 "
                       "AND (expires_at IS NULL OR expires_at > $2) ORDER BY id DESC",
                       &p, &qrc, NULL);
    if (!r && rc == 0)
        rc = FP_EIO;
    for (int i = 0; r && i < PQntuples(r); i++) {
        unsigned char salt[16], want[32];
        if (pg_bytea(r, i, 0, salt, 16) == 0 && pg_bytea(r, i, 1, want, 32) == 0)
            fp_secret_check_row(&chk, salt, want, pg_int(r, i, 2));
    }
    PQclear(r);
    rc = fp_secret_check_end(&chk, rc, out);
    pg_rrelease(s, db);
    return rc;
}

int pg_store_live_secrets(void *be, int64_t now,
                          void (*fn)(const char *client_id, int64_t secret_id, int64_t expires_at,
                                     void *arg),
                          void *arg)
{
    fp_pg *s = be;
    PGconn *db = pg_racquire(s);
    pg_params p = {0};
    pg_i64(&p, now);
    int rc;
    PGresult *r = pg_q(db,
                       "SELECT client_id, id, coalesce(expires_at, 0) FROM client_secrets "
                       "WHERE expires_at IS NULL OR expires_at > $1 ORDER BY client_id, id",
                       &p, &rc, NULL);
    for (int i = 0; r && i < PQntuples(r); i++)
        fn(PQgetvalue(r, i, 0), pg_int(r, i, 1), pg_int(r, i, 2), arg);
    PQclear(r);
    pg_rrelease(s, db);
    return rc;
}

static int insert_secret_hashed(fp_pg *s, const char *client_id, const unsigned char salt[16],
                                const unsigned char hash[32], const char *prefix, int64_t now,
                                fp_err *err)
{
    pg_params p = {0};
    pg_text(&p, client_id);
    pg_bin(&p, salt, 16);
    pg_bin(&p, hash, 32);
    pg_text(&p, prefix);
    pg_i64(&p, now);
    return pg_exec(s->w,
                   "INSERT INTO client_secrets(client_id, salt, hash, prefix, created_at) "
                   "VALUES($1, $2, $3, $4, $5)",
                   &p, err);
}

static int insert_secret(fp_pg *s, const char *client_id, const char *secret, int64_t now,
                         fp_err *err)
{
    unsigned char salt[16], hash[32];
    if (fp_random(salt, sizeof salt) < 0)
        return fp_fail(err, FP_ECRYPTO, "no randomness");
    fp_secret_hash(salt, secret, hash);
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.12s", secret);
    return insert_secret_hashed(s, client_id, salt, hash, prefix, now, err);
}

/* fn and the audit record of what it changed, in one transaction. */
static int in_txn(fp_pg *s, int (*fn)(fp_pg *s, void *arg, fp_err *err), void *arg,
                  const fp_audit_rec *audit, const char *target, fp_err *err)
{
    pthread_mutex_lock(&s->wlock);
    int rc = pg_tx_begin(s, err);
    if (rc == 0) {
        rc = pg_end_audited(s, audit, target, "ok", fn(s, arg, err), err);
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

typedef struct add_arg {
    const fp_client_info *info;
    const fp_client_rec *rec;
    const char *secret;
} add_arg;

static int add_fn(fp_pg *s, void *arg, fp_err *err)
{
    add_arg *a = arg;
    char roles[64];
    int64_t now = (int64_t)time(NULL);
    fp_roles_format(a->info->roles ? a->info->roles : FP_ROLE_SELLER, roles, sizeof roles);
    unsigned char salt[16] = {0}, hash[32] = {0};
    if (a->rec) {
        memcpy(salt, a->rec->salt, 16);
        memcpy(hash, a->rec->hash, 32);
    } else {
        fp_random(salt, sizeof salt);
        fp_secret_hash(salt, a->secret, hash);
    }
    pg_params p = {0};
    pg_text(&p, a->info->client_id);
    pg_i64(&p, a->info->seller_id);
    pg_bin(&p, salt, 16);
    pg_bin(&p, hash, 32);
    pg_text(&p, a->rec ? a->rec->scope : roles);
    pg_i64(&p, now);
    pg_text(&p, roles);
    pg_text(&p, a->info->allowed_ips);
    pg_text(&p, a->info->cert_sha256);
    int rc = pg_exec(s->w,
                     "INSERT INTO clients(client_id, seller_id, secret_salt, secret_hash, scope, "
                     "created_at, roles, allowed_ips, cert_sha256) "
                     "VALUES($1, $2, $3, $4, $5, $6, $7, nullif($8, ''), nullif($9, ''))",
                     &p, err);
    if (rc < 0)
        return rc;
    if (a->rec)
        return insert_secret_hashed(s, a->info->client_id, salt, hash,
                                    a->rec->secret_prefix[0] ? a->rec->secret_prefix : "fps_", now,
                                    err);
    return insert_secret(s, a->info->client_id, a->secret, now, err);
}

int pg_store_add_client(void *be, const fp_client_rec *c, fp_err *err)
{
    if (!fp_client_id_valid(c->client_id) || c->seller_id < 1)
        return fp_fail(err, FP_EINVAL, "bad client id or seller id");
    fp_client_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.client_id, sizeof info.client_id, "%s", c->client_id);
    info.seller_id = c->seller_id;
    info.roles = c->roles;
    add_arg a = {&info, c, NULL};
    return in_txn(be, add_fn, &a, NULL, NULL, err);
}

int pg_store_client_create(void *be, const fp_client_info *c, const char *secret,
                           const fp_audit_rec *audit, fp_err *err)
{
    if (!fp_client_id_valid(c->client_id))
        return fp_fail(err, FP_EINVAL, "a client id is 1-64 characters of A-Z a-z 0-9 . _ -");
    if (c->seller_id < 1)
        return fp_fail(err, FP_EINVAL, "a client's seller id is 1 or more");
    add_arg a = {c, NULL, secret};
    return in_txn(be, add_fn, &a, audit, c->client_id, err);
}

/* A change of one client, the client's row locked first (FOR UPDATE: two
 * nodes changing one client take turns). */
typedef struct chg_arg {
    const char *id, *secret;
    int64_t now, overlap;
    const unsigned *roles;
    const char *ips, *cert;
    int64_t revoke_at;
    int rotate;
} chg_arg;

static int change_fn(fp_pg *s, void *arg, fp_err *err)
{
    chg_arg *a = arg;
    pg_params k = {0};
    pg_text(&k, a->id);
    int rc;
    PGresult *r = pg_q(s->w,
                       "SELECT coalesce(revoked_at, 0) FROM clients WHERE client_id=$1 "
                       "FOR UPDATE",
                       &k, &rc, err);
    if (!r)
        return rc;
    int found = PQntuples(r) == 1;
    int64_t revoked = found ? pg_int(r, 0, 0) : 0;
    PQclear(r);
    if (!found)
        return fp_fail(err, FP_ENOTFOUND, "no client %s", a->id);
    if (a->rotate) {
        if (revoked)
            return fp_fail(err, FP_ECONFLICT, "client %s is revoked", a->id);
        pg_params p = {0};
        pg_text(&p, a->id);
        pg_i64(&p, a->now);
        /* at most FP_SECRETS_LIVE_MAX live: any but the newest ends now */
        if ((rc = pg_exec(s->w,
                          "UPDATE client_secrets SET expires_at=$2 WHERE client_id=$1 "
                          "AND (expires_at IS NULL OR expires_at > $2) AND id <> "
                          "(SELECT max(id) FROM client_secrets WHERE client_id=$1 "
                          "AND (expires_at IS NULL OR expires_at > $2))",
                          &p, err)) < 0)
            return rc;
        pg_params q = {0};
        pg_text(&q, a->id);
        pg_i64(&q, a->now + a->overlap);
        if ((rc = pg_exec(s->w,
                          "UPDATE client_secrets SET expires_at=$2 WHERE client_id=$1 "
                          "AND (expires_at IS NULL OR expires_at > $2)",
                          &q, err)) < 0)
            return rc;
        return insert_secret(s, a->id, a->secret, a->now, err);
    }
    if (a->revoke_at) {
        pg_params p = {0};
        pg_text(&p, a->id);
        pg_i64(&p, a->revoke_at);
        return pg_exec(s->w,
                       "UPDATE clients SET revoked_at=$2 WHERE client_id=$1 AND revoked_at IS NULL",
                       &p, err);
    }
    char roles[64];
    struct {
        const char *sql, *v;
    } up[] = {
        {"UPDATE clients SET roles=$2 WHERE client_id=$1", NULL},
        {"UPDATE clients SET allowed_ips=nullif($2, '') WHERE client_id=$1", a->ips},
        {"UPDATE clients SET cert_sha256=nullif($2, '') WHERE client_id=$1", a->cert},
    };
    if (a->roles) {
        fp_roles_format(*a->roles, roles, sizeof roles);
        up[0].v = roles;
    }
    for (size_t i = 0; i < sizeof up / sizeof up[0]; i++) {
        if (!up[i].v)
            continue;
        pg_params p = {0};
        pg_text(&p, a->id);
        pg_text(&p, up[i].v);
        if ((rc = pg_exec(s->w, up[i].sql, &p, err)) < 0)
            return rc;
    }
    return 0;
}

int pg_store_client_rotate(void *be, const char *client_id, const char *secret, int64_t now,
                           int64_t overlap_s, const fp_audit_rec *audit, fp_err *err)
{
    chg_arg a = {.id = client_id,
                 .secret = secret,
                 .now = now,
                 .overlap = overlap_s < 0 ? 0 : overlap_s,
                 .rotate = 1};
    return in_txn(be, change_fn, &a, audit, client_id, err);
}

int pg_store_client_revoke(void *be, const char *client_id, int64_t now, const fp_audit_rec *audit,
                           fp_err *err)
{
    chg_arg a = {.id = client_id, .revoke_at = now > 0 ? now : 1};
    return in_txn(be, change_fn, &a, audit, client_id, err);
}

int pg_store_client_update(void *be, const char *client_id, const unsigned *roles,
                           const char *allowed_ips, const char *cert_sha256,
                           const fp_audit_rec *audit, fp_err *err)
{
    chg_arg a = {.id = client_id, .roles = roles, .ips = allowed_ips, .cert = cert_sha256};
    return in_txn(be, change_fn, &a, audit, client_id, err);
}
