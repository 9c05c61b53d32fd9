/* clients.c — API credentials (migration 5): clients with roles, IP
 * allowlists, client-certificate bindings and revocation; their secrets,
 * several valid at once while a rotation overlaps. */
#include "fapiao/auth.h"
#include "fapiao/crypto.h"
#include "fapiao/rbac.h"
#include "fapiao/store.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define CLIENT_COLS                                                                                \
    "c.client_id, c.seller_id, c.roles, coalesce(c.allowed_ips, ''), "                             \
    "coalesce(c.cert_sha256, ''), c.created_at, coalesce(c.revoked_at, 0)"

static void read_client(sqlite3_stmt *st, fp_client_info *c)
{
    memset(c, 0, sizeof *c);
    fp_sq_col(st, 0, c->client_id, sizeof c->client_id);
    c->seller_id = sqlite3_column_int64(st, 1);
    char roles[64];
    fp_sq_col(st, 2, roles, sizeof roles);
    if (fp_roles_parse(roles, &c->roles) < 0)
        c->roles = 0; /* a damaged row grants nothing */
    fp_sq_col(st, 3, c->allowed_ips, sizeof c->allowed_ips);
    fp_sq_col(st, 4, c->cert_sha256, sizeof c->cert_sha256);
    c->created_at = sqlite3_column_int64(st, 5);
    c->revoked_at = sqlite3_column_int64(st, 6);
}

/* The secrets part of c: how many are valid at now, the newest, when the
 * older ones end. */
static void read_secrets(sqlite3 *db, fp_client_info *c, int64_t now)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT prefix, created_at, coalesce(expires_at, 0) FROM client_secrets "
                           "WHERE client_id=?1 AND (expires_at IS NULL OR expires_at > ?2) "
                           "ORDER BY id DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_bind_text(st, 1, c->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    size_t len = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *prefix = (const char *)sqlite3_column_text(st, 0);
        int64_t created = sqlite3_column_int64(st, 1), expires = sqlite3_column_int64(st, 2);
        if (c->active_secrets++ == 0)
            c->newest_secret_at = created;
        else if (expires && (!c->old_secrets_expire_at || expires > c->old_secrets_expire_at))
            c->old_secrets_expire_at = expires;
        int n = snprintf(c->secret_prefixes + len, sizeof c->secret_prefixes - len, "%s%s",
                         len ? "," : "", prefix ? prefix : "");
        if (n > 0 && (size_t)n < sizeof c->secret_prefixes - len)
            len += (size_t)n;
    }
    sqlite3_finalize(st);
}

int sq_store_clients(void *be, int with_secrets, void (*fn)(const fp_client_info *c, void *arg),
                     void *arg)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    if (sqlite3_prepare_v2(db, "SELECT " CLIENT_COLS " FROM clients c ORDER BY c.client_id", -1,
                           &st, NULL) == SQLITE_OK) {
        int step;
        fp_client_info c;
        int64_t now = (int64_t)time(NULL);
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            read_client(st, &c);
            if (with_secrets)
                read_secrets(db, &c, now);
            fn(&c, arg);
        }
        rc = step == SQLITE_DONE ? 0 : FP_EIO;
    }
    sqlite3_finalize(st);
    fp_sq_rrelease(s, slot);
    return rc;
}

static int get_client(sqlite3 *db, const char *id, fp_client_info *out)
{
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    if (sqlite3_prepare_v2(db, "SELECT " CLIENT_COLS " FROM clients c WHERE c.client_id=?1", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            read_client(st, out);
        rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? FP_ENOTFOUND : FP_EIO;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The exchange does the same work whatever the client id: the same two
 * queries (an unknown id finds no rows), then FP_SECRETS_LIVE_MAX hashes
 * at least, real candidates first, the rest against a dummy salt, so the
 * time of an answer does not tell whether the id exists (issue 13). */
int sq_store_client_check_secret(void *be, const char *client_id, const char *secret, int64_t now,
                                 fp_client_info *out)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    int rc = fp_client_id_valid(client_id) ? get_client(db, client_id, out) : FP_ENOTFOUND;
    fp_secret_check chk = {.secret = secret};
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT salt, hash, id FROM client_secrets WHERE client_id=?1 "
                           "AND (expires_at IS NULL OR expires_at > ?2) ORDER BY id DESC",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        while (sqlite3_step(st) == SQLITE_ROW)
            if (sqlite3_column_bytes(st, 0) == 16 && sqlite3_column_bytes(st, 1) == 32)
                fp_secret_check_row(&chk, sqlite3_column_blob(st, 0), sqlite3_column_blob(st, 1),
                                    sqlite3_column_int64(st, 2));
    } else if (rc == 0) {
        rc = FP_EIO;
    }
    sqlite3_finalize(st);
    rc = fp_secret_check_end(&chk, rc, out);
    fp_sq_rrelease(s, slot);
    return rc;
}

int sq_store_live_secrets(void *be, int64_t now,
                          void (*fn)(const char *client_id, int64_t secret_id, int64_t expires_at,
                                     void *arg),
                          void *arg)
{
    fp_sqlite *s = be;
    void *slot;
    sqlite3 *db = fp_sq_racquire(s, &slot);
    sqlite3_stmt *st = NULL;
    int rc = FP_EIO;
    if (sqlite3_prepare_v2(db,
                           "SELECT client_id, id, coalesce(expires_at, 0) FROM client_secrets "
                           "WHERE expires_at IS NULL OR expires_at > ?1 ORDER BY client_id, id",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            fn(id ? id : "", sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), arg);
        }
        rc = step == SQLITE_DONE ? 0 : FP_EIO;
    }
    sqlite3_finalize(st);
    fp_sq_rrelease(s, slot);
    return rc;
}

/* Runs one statement with text binds (NULL binds NULL) on the locked
 * writer connection; 0, or FP_EIO. */
static int run(sqlite3 *db, const char *sql, const char *const *texts, int nt, const int64_t *ints,
               int ni, fp_err *err)
{
    sqlite3_stmt *st = fp_sq_prep(db, sql, err);
    if (!st)
        return FP_EIO;
    for (int i = 0; i < nt; i++)
        if (texts[i])
            sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
    for (int i = 0; i < ni; i++)
        sqlite3_bind_int64(st, nt + i + 1, ints[i]);
    return fp_sq_run(db, st, err);
}

/* A secret already hashed (fapiao init hands one over), with its prefix. */
static int insert_secret_hashed(sqlite3 *db, const char *client_id, const unsigned char salt[16],
                                const unsigned char hash[32], const char *prefix, int64_t now,
                                fp_err *err)
{
    sqlite3_stmt *st = fp_sq_prep(db,
                                  "INSERT INTO client_secrets(client_id, salt, hash, prefix, "
                                  "created_at) VALUES(?1, ?2, ?3, ?4, ?5)",
                                  err);
    if (!st)
        return FP_EIO;
    sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, salt, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
}

static int insert_secret(sqlite3 *db, const char *client_id, const char *secret, int64_t now,
                         fp_err *err)
{
    unsigned char salt[16], hash[32];
    if (fp_random(salt, sizeof salt) < 0)
        return fp_fail(err, FP_ECRYPTO, "no randomness");
    fp_secret_hash(salt, secret, hash);
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.12s", secret);
    return insert_secret_hashed(db, client_id, salt, hash, prefix, now, err);
}

/* fn, and the audit record of what it changed (target: the client id),
 * in one transaction: no change without its record (docs/audit.md). */
static int in_txn(fp_sqlite *s, int (*fn)(sqlite3 *db, void *arg, fp_err *err), void *arg,
                  const fp_audit_rec *audit, const char *target, fp_err *err)
{
    sqlite3 *db = fp_sq_wlock(s);
    int rc = fp_sq_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == 0) {
        rc = fn(db, arg, err);
        rc = fp_sq_end_audited(s, audit, target, "ok", rc, err);
    }
    fp_sq_wunlock(s);
    return rc;
}

typedef struct add_arg {
    const fp_client_info *info;
    const fp_client_rec *rec;
    const char *secret;
} add_arg;

static int add_fn(sqlite3 *db, void *arg, fp_err *err)
{
    add_arg *a = arg;
    char roles[64];
    int64_t now = (int64_t)time(NULL);
    fp_roles_format(a->info->roles ? a->info->roles : FP_ROLE_SELLER, roles, sizeof roles);
    /* the legacy secret columns (migration 1) hold the first secret */
    sqlite3_stmt *st =
        fp_sq_prep(db,
                   "INSERT INTO clients(client_id, seller_id, secret_salt, secret_hash, "
                   "scope, created_at, roles, allowed_ips, cert_sha256) "
                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, nullif(?8, ''), nullif(?9, ''))",
                   err);
    if (!st)
        return FP_EIO;
    unsigned char salt[16] = {0}, hash[32] = {0};
    if (a->rec) {
        memcpy(salt, a->rec->salt, 16);
        memcpy(hash, a->rec->hash, 32);
    } else {
        fp_random(salt, sizeof salt);
        fp_secret_hash(salt, a->secret, hash);
    }
    sqlite3_bind_text(st, 1, a->info->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->info->seller_id);
    sqlite3_bind_blob(st, 3, salt, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->rec ? a->rec->scope : roles, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_text(st, 7, roles, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, a->info->allowed_ips, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, a->info->cert_sha256, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    if (step != SQLITE_DONE)
        return fp_fail(err, (step & 0xff) == SQLITE_CONSTRAINT ? FP_ECONFLICT : FP_EIO,
                       "sqlite: %s", sqlite3_errmsg(db));
    if (a->rec) /* an already hashed secret (fapiao init) */
        return insert_secret_hashed(db, a->info->client_id, salt, hash,
                                    a->rec->secret_prefix[0] ? a->rec->secret_prefix : "fps_", now,
                                    err);
    return insert_secret(db, a->info->client_id, a->secret, now, err);
}

int sq_store_add_client(void *be, const fp_client_rec *c, fp_err *err)
{
    fp_sqlite *s = be;
    if (!fp_client_id_valid(c->client_id) || c->seller_id < 1)
        return fp_fail(err, FP_EINVAL, "bad client id or seller id");
    fp_client_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.client_id, sizeof info.client_id, "%s", c->client_id);
    info.seller_id = c->seller_id;
    info.roles = c->roles;
    add_arg a = {&info, c, NULL};
    return in_txn(s, add_fn, &a, NULL, NULL, err);
}

int sq_store_client_create(void *be, const fp_client_info *c, const char *secret,
                           const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    if (!fp_client_id_valid(c->client_id))
        return fp_fail(err, FP_EINVAL, "a client id is 1-64 characters of A-Z a-z 0-9 . _ -");
    if (c->seller_id < 1)
        return fp_fail(err, FP_EINVAL, "a client's seller id is 1 or more");
    add_arg a = {c, NULL, secret};
    return in_txn(s, add_fn, &a, audit, c->client_id, err);
}

/* get_client with the failure said in err: FP_ENOTFOUND or FP_EIO. */
static int load_client(sqlite3 *db, const char *id, fp_client_info *c, fp_err *err)
{
    int rc = get_client(db, id, c);
    if (rc == FP_ENOTFOUND)
        return fp_fail(err, rc, "no client %s", id);
    if (rc < 0)
        return fp_fail(err, rc, "sqlite: %s", sqlite3_errmsg(db));
    return 0;
}

/* fn in a transaction of in_txn, given the client it changes as the
 * transaction sees it (FP_ENOTFOUND, nothing done, when there is none). */
typedef int (*client_fn)(sqlite3 *db, void *arg, const fp_client_info *c, fp_err *err);
typedef struct on_client {
    const char *id;
    client_fn fn;
    void *arg;
} on_client;

static int on_client_fn(sqlite3 *db, void *arg, fp_err *err)
{
    on_client *o = arg;
    fp_client_info c;
    int rc = load_client(db, o->id, &c, err);
    return rc < 0 ? rc : o->fn(db, o->arg, &c, err);
}

static int in_client_txn(fp_sqlite *s, const char *id, client_fn fn, void *arg,
                         const fp_audit_rec *audit, fp_err *err)
{
    on_client o = {id, fn, arg};
    return in_txn(s, on_client_fn, &o, audit, id, err);
}

typedef struct rot_arg {
    const char *id, *secret;
    int64_t now, overlap;
} rot_arg;

static int rotate_fn(sqlite3 *db, void *arg, const fp_client_info *c, fp_err *err)
{
    rot_arg *a = arg;
    int rc;
    if (c->revoked_at)
        return fp_fail(err, FP_ECONFLICT, "client %s is revoked", a->id);
    const char *t[] = {a->id};
    /* At most FP_SECRETS_LIVE_MAX live secrets: the new one and the newest
     * previous one, which ends with the overlap; any older one ends now
     * (and the tokens minted from it with it). */
    int64_t now_end[] = {a->now};
    if ((rc = run(db,
                  "UPDATE client_secrets SET expires_at=?2 WHERE client_id=?1 "
                  "AND (expires_at IS NULL OR expires_at > ?2) AND id <> "
                  "(SELECT max(id) FROM client_secrets WHERE client_id=?1 "
                  "AND (expires_at IS NULL OR expires_at > ?2))",
                  t, 1, now_end, 1, err)) < 0)
        return rc;
    int64_t ends[] = {a->now + a->overlap};
    if ((rc = run(db,
                  "UPDATE client_secrets SET expires_at=?2 WHERE client_id=?1 "
                  "AND (expires_at IS NULL OR expires_at > ?2)",
                  t, 1, ends, 1, err)) < 0)
        return rc;
    return insert_secret(db, a->id, a->secret, a->now, err);
}

int sq_store_client_rotate(void *be, const char *client_id, const char *secret, int64_t now,
                           int64_t overlap_s, const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    rot_arg a = {client_id, secret, now, overlap_s < 0 ? 0 : overlap_s};
    return in_client_txn(s, client_id, rotate_fn, &a, audit, err);
}

typedef struct upd_arg {
    const char *id;
    const unsigned *roles;
    const char *ips, *cert;
    int64_t revoke_at;
} upd_arg;

static int update_fn(sqlite3 *db, void *arg, const fp_client_info *c, fp_err *err)
{
    upd_arg *a = arg;
    int rc;
    (void)c; /* it exists */
    const char *t[] = {a->id, NULL};
    if (a->revoke_at) {
        int64_t at[] = {a->revoke_at};
        return run(db, "UPDATE clients SET revoked_at=?2 WHERE client_id=?1 AND revoked_at IS NULL",
                   t, 1, at, 1, err);
    }
    char roles[64];
    if (a->roles) {
        fp_roles_format(*a->roles, roles, sizeof roles);
        t[1] = roles;
        if ((rc = run(db, "UPDATE clients SET roles=?2 WHERE client_id=?1", t, 2, NULL, 0, err)) <
            0)
            return rc;
    }
    if (a->ips) {
        t[1] = a->ips;
        if ((rc = run(db, "UPDATE clients SET allowed_ips=nullif(?2, '') WHERE client_id=?1", t, 2,
                      NULL, 0, err)) < 0)
            return rc;
    }
    if (a->cert) {
        t[1] = a->cert;
        if ((rc = run(db, "UPDATE clients SET cert_sha256=nullif(?2, '') WHERE client_id=?1", t, 2,
                      NULL, 0, err)) < 0)
            return rc;
    }
    return 0;
}

int sq_store_client_revoke(void *be, const char *client_id, int64_t now, const fp_audit_rec *audit,
                           fp_err *err)
{
    fp_sqlite *s = be;
    upd_arg a = {client_id, NULL, NULL, NULL, now > 0 ? now : 1};
    return in_client_txn(s, client_id, update_fn, &a, audit, err);
}

int sq_store_client_update(void *be, const char *client_id, const unsigned *roles,
                           const char *allowed_ips, const char *cert_sha256,
                           const fp_audit_rec *audit, fp_err *err)
{
    fp_sqlite *s = be;
    upd_arg a = {client_id, roles, allowed_ips, cert_sha256, 0};
    return in_client_txn(s, client_id, update_fn, &a, audit, err);
}
