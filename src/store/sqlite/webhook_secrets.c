/* webhook_secrets.c — webhook signing secrets sealed at rest (seal.h):
 * the store keeps "fpwk1:…" in clients.webhook_secret and the key in
 * webhook.key beside the database (and token.key).  Rows written before
 * (plaintext) are sealed when serve starts (fp_store_webhook_seal_all), with
 * SQLite's secure_delete on so the plaintext does not linger in freed
 * space.  docs/security.md "Secrets at rest". */
#include "fapiao/jobs.h"
#include "fapiao/seal.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DIR/webhook.key for the database db has open. */
static int key_path(sqlite3 *db, char *out, size_t cap, fp_err *err)
{
    const char *f = sqlite3_db_filename(db, "main");
    const char *slash = f ? strrchr(f, '/') : NULL;
    int n = slash ? snprintf(out, cap, "%.*s/webhook.key", (int)(slash - f), f)
                  : snprintf(out, cap, "webhook.key");
    return n < 0 || (size_t)n >= cap ? fp_fail(err, FP_ERANGE, "path too long") : 0;
}

int fp_sq_webhook_seal(sqlite3 *db, const char *client_id, const char *secret, char *out,
                       size_t cap, fp_err *err)
{
    char path[4200];
    unsigned char key[FP_SEAL_KEY_LEN];
    int rc = key_path(db, path, sizeof path, err);
    if (rc == 0 && (rc = fp_seal_key_load(path, 1, key, err)) == 0)
        rc = fp_seal(key, client_id, secret, out, cap, err);
    explicit_bzero(key, sizeof key);
    return rc;
}

int fp_sq_webhook_unseal(sqlite3 *db, const char *client_id, const char *stored, char *secret,
                         size_t cap, fp_err *err)
{
    if (!fp_is_sealed(stored)) { /* a row from before sealing, not migrated yet */
        snprintf(secret, cap, "%s", stored);
        return 0;
    }
    char path[4200];
    unsigned char key[FP_SEAL_KEY_LEN];
    int rc = key_path(db, path, sizeof path, err);
    if (rc == 0 && (rc = fp_seal_key_load(path, 0, key, err)) == 0)
        rc = fp_unseal(key, client_id, stored, secret, cap, err);
    explicit_bzero(key, sizeof key);
    if (rc < 0)
        secret[0] = 0;
    return rc;
}

int sq_store_webhook_seal_all(void *be, int *sealed, fp_err *err)
{
    fp_sqlite *s = be;
    *sealed = 0;
    sqlite3 *db = fp_sq_wlock(s);
    sqlite3_stmt *sel = NULL, *upd = NULL;
    int rc = fp_sq_exec(db, "PRAGMA secure_delete=ON; BEGIN IMMEDIATE", err);
    if (rc < 0)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT client_id, webhook_secret FROM clients "
                           "WHERE coalesce(webhook_secret, '') <> '' "
                           "AND substr(webhook_secret, 1, 6) <> 'fpwk1:'",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE clients SET webhook_secret=?2 WHERE client_id=?1", -1, &upd,
                           NULL) != SQLITE_OK) {
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        goto rollback;
    }
    int step;
    while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(sel, 0);
        const char *plain = (const char *)sqlite3_column_text(sel, 1);
        size_t cap = FP_SEAL_LEN(strlen(plain));
        char *v = malloc(cap);
        if (!v) {
            rc = fp_fail(err, FP_ENOMEM, "out of memory");
            goto rollback;
        }
        rc = fp_sq_webhook_seal(db, id, plain, v, cap, err);
        if (rc == 0) {
            sqlite3_bind_text(upd, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(upd, 2, v, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(upd) != SQLITE_DONE)
                rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
            sqlite3_reset(upd);
        }
        free(v);
        if (rc < 0)
            goto rollback;
        (*sealed)++;
    }
    if (step != SQLITE_DONE) {
        rc = fp_fail(err, FP_EIO, "sqlite: %s", sqlite3_errmsg(db));
        goto rollback;
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    sel = upd = NULL;
    rc = fp_sq_exec(db, "COMMIT", err);
    /* the old pages: out of the WAL and overwritten in the file */
    if (rc == 0 && *sealed)
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (rc == 0)
        goto out;
rollback:
    fp_sq_exec(db, "ROLLBACK", NULL);
out:
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    fp_sq_exec(db, "PRAGMA secure_delete=OFF", NULL);
    fp_sq_wunlock(s);
    return rc;
}
