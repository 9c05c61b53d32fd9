/* spool.c — the offline spool (include/fapiao-client/spool.h says why it
 * neither loses nor doubles): one SQLite table in DIR/spool.db, a sender
 * lock in DIR/sender.lock.  Every change is one short transaction; the
 * network call happens between two of them, never inside one. */
#include "internal.h"
#include "fapiao-client/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct fpc_spool {
    sqlite3 *db;
    char lock_path[4200];
};

static const char *const state_names[FPC_SPOOL_NSTATES] = {"queued", "sending", "issued", "failed",
                                                           "cancelled"};

const char *fpc_spool_state_name(fpc_spool_state s)
{
    return (unsigned)s < FPC_SPOOL_NSTATES ? state_names[s] : "?";
}

static const char schema[] = "PRAGMA journal_mode=WAL;"
                             "CREATE TABLE IF NOT EXISTS spool("
                             " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                             " serial TEXT NOT NULL UNIQUE,"
                             " body BLOB NOT NULL,"
                             " state INTEGER NOT NULL DEFAULT 0," /* fpc_spool_state */
                             " attempts INTEGER NOT NULL DEFAULT 0,"
                             " number TEXT, code TEXT, finding TEXT, message TEXT,"
                             " queued_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
                             "CREATE INDEX IF NOT EXISTS spool_state ON spool(state, seq);";

static int db_fail(fpc_spool *s, fpc_error *err, const char *what)
{
    char en[512];
    snprintf(en, sizeof en, "spool: %s: %s", what, s && s->db ? sqlite3_errmsg(s->db) : "?");
    fpc_error_set(err, FPC_EUNAVAILABLE, "SPOOL_IO", "离线队列无法读写", en);
    if (err)
        err->retryable = 0;
    return FPC_EUNAVAILABLE;
}

int fpc_spool_open(const char *dir, fpc_spool **out, fpc_error *err)
{
    *out = NULL;
    fpc_spool *s = calloc(1, sizeof *s);
    if (!s) {
        fpc_error_set(err, FPC_ENOMEM, "NO_MEMORY", "内存不足", "out of memory");
        return FPC_ENOMEM;
    }
    char path[4200];
    if ((mkdir(dir, 0700) < 0 && errno != EEXIST) ||
        snprintf(path, sizeof path, "%s/spool.db", dir) >= (int)sizeof path) {
        char en[512];
        snprintf(en, sizeof en, "spool: cannot create %s: %s", dir, strerror(errno));
        fpc_error_set(err, FPC_EINVAL, "SPOOL_IO", "无法创建离线队列目录", en);
        free(s);
        return FPC_EINVAL;
    }
    snprintf(s->lock_path, sizeof s->lock_path, "%s/sender.lock", dir);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(s->db, 10000) != SQLITE_OK ||
        sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = db_fail(s, err, "open");
        fpc_spool_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void fpc_spool_close(fpc_spool *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

int fpc_spool_submit(fpc_spool *s, const char *serial, const char *json, size_t len, fpc_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    int64_t now = (int64_t)time(NULL);
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO spool(serial, body, queued_at, updated_at)"
                           " VALUES(?1, ?2, ?3, ?3) ON CONFLICT(serial) DO NOTHING",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "submit");
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, json, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(s, err, "submit");
    int inserted = sqlite3_changes(s->db) == 1;
    sqlite3_finalize(st);
    if (rc < 0 || inserted)
        return rc;
    /* the serial is there: the same request again is fine, another is not */
    if (sqlite3_prepare_v2(s->db, "SELECT body FROM spool WHERE serial = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, err, "submit");
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && ((size_t)sqlite3_column_bytes(st, 0) != len ||
                                           memcmp(sqlite3_column_blob(st, 0), json, len) != 0)) {
        fpc_error_set(err, FPC_EREJECTED, "IDEMPOTENCY_KEY_REUSED", "该流水号已以不同的请求入队",
                      "the serial is queued with another request");
        rc = FPC_EREJECTED;
    }
    sqlite3_finalize(st);
    return rc;
}

static void read_item(sqlite3_stmt *st, fpc_spool_item *it)
{
    memset(it, 0, sizeof *it);
    it->seq = sqlite3_column_int64(st, 0);
    snprintf(it->serial, sizeof it->serial, "%s", (const char *)sqlite3_column_text(st, 1));
    it->state = (fpc_spool_state)sqlite3_column_int(st, 2);
    it->attempts = sqlite3_column_int(st, 3);
    const char *t;
    if ((t = (const char *)sqlite3_column_text(st, 4)))
        snprintf(it->number, sizeof it->number, "%s", t);
    if ((t = (const char *)sqlite3_column_text(st, 5)))
        snprintf(it->code, sizeof it->code, "%s", t);
    if ((t = (const char *)sqlite3_column_text(st, 6)))
        snprintf(it->finding, sizeof it->finding, "%s", t);
    if ((t = (const char *)sqlite3_column_text(st, 7)))
        snprintf(it->message, sizeof it->message, "%s", t);
    it->queued_at = sqlite3_column_int64(st, 8);
}

#define ITEM_COLS "seq, serial, state, attempts, number, code, finding, message, queued_at"

int fpc_spool_list(fpc_spool *s, int state, int limit,
                   int (*cb)(const fpc_spool_item *it, void *arg), void *arg, fpc_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " ITEM_COLS " FROM spool WHERE ?1 < 0 OR state = ?1"
                           " ORDER BY seq LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "list");
    sqlite3_bind_int(st, 1, state);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : -1);
    int rc;
    fpc_spool_item it;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_item(st, &it);
        if (cb(&it, arg))
            break;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(s, err, "list");
}

int fpc_spool_counts(fpc_spool *s, long long counts[FPC_SPOOL_NSTATES], fpc_error *err)
{
    sqlite3_stmt *st = NULL;
    memset(counts, 0, sizeof(long long) * FPC_SPOOL_NSTATES);
    if (sqlite3_prepare_v2(s->db, "SELECT state, count(*) FROM spool GROUP BY state", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, err, "status");
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        if (k >= 0 && k < FPC_SPOOL_NSTATES)
            counts[k] = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, err, "status");
}

/* state from → to for serial; FPC_EREJECTED SPOOL_STATE when it is in
 * neither of the two from states */
static int move(fpc_spool *s, const char *serial, int from1, int from2, int to, fpc_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE spool SET state = ?2, updated_at = ?3"
                           " WHERE serial = ?1 AND state IN (?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "update");
    sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, to);
    sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
    sqlite3_bind_int(st, 4, from1);
    sqlite3_bind_int(st, 5, from2);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, "update");
    int changed = sqlite3_changes(s->db);
    sqlite3_finalize(st);
    if (rc == 0 && changed != 1) {
        char en[200], zh[200];
        snprintf(en, sizeof en, "%s is not in the spool in state %s%s%s", serial,
                 state_names[from1], from2 != from1 ? " or " : "",
                 from2 != from1 ? state_names[from2] : "");
        snprintf(zh, sizeof zh, "队列中没有处于可操作状态的 %s", serial);
        fpc_error_set(err, FPC_EREJECTED, "SPOOL_STATE", zh, en);
        return FPC_EREJECTED;
    }
    return rc;
}

int fpc_spool_cancel(fpc_spool *s, const char *serial, fpc_error *err)
{
    return move(s, serial, FPC_SPOOL_QUEUED, FPC_SPOOL_QUEUED, FPC_SPOOL_CANCELLED, err);
}

int fpc_spool_retry(fpc_spool *s, const char *serial, fpc_error *err)
{
    return move(s, serial, FPC_SPOOL_FAILED, FPC_SPOOL_CANCELLED, FPC_SPOOL_QUEUED, err);
}

/* The first row to deliver, marked sending (committed) with its body. */
static int next_row(fpc_spool *s, fpc_spool_item *it, char **body, size_t *len, fpc_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(s, err, "drain");
    int rc = 0, found = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " ITEM_COLS ", body FROM spool WHERE state IN (0, 1)"
                           " ORDER BY seq LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        rc = db_fail(s, err, "drain");
    else if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_item(st, it);
        *len = (size_t)sqlite3_column_bytes(st, 9);
        *body = malloc(*len + 1);
        if (*body) {
            memcpy(*body, sqlite3_column_blob(st, 9), *len);
            (*body)[*len] = '\0';
            found = 1, rc = 0;
            it->attempts++; /* the UPDATE below */
        } else {
            fpc_error_set(err, FPC_ENOMEM, "NO_MEMORY", "内存不足", "out of memory");
            rc = FPC_ENOMEM;
        }
    } else
        rc = rc == SQLITE_DONE ? 0 : db_fail(s, err, "drain");
    sqlite3_finalize(st);
    char sql[160];
    snprintf(sql, sizeof sql,
             "UPDATE spool SET state = 1, attempts = attempts + 1, updated_at = %lld"
             " WHERE seq = %lld",
             (long long)time(NULL), it->seq);
    if (rc == 0 && found && sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(s, err, "drain");
    if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(s, err, "drain");
    if (rc < 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        if (found)
            free(*body), *body = NULL;
        return rc;
    }
    return found;
}

/* The answer: issued with its number, or failed with the error. */
static int record(fpc_spool *s, fpc_spool_item *it, const fpc_result *res, const fpc_error *e,
                  fpc_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE spool SET state = ?2, number = ?3, code = ?4, finding = ?5,"
                           " message = ?6, updated_at = ?7 WHERE seq = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, err, "record");
    it->state = res ? FPC_SPOOL_ISSUED : FPC_SPOOL_FAILED;
    if (res)
        snprintf(it->number, sizeof it->number, "%s", res->number);
    else {
        snprintf(it->code, sizeof it->code, "%s", e->code);
        snprintf(it->finding, sizeof it->finding, "%s", e->finding);
        snprintf(it->message, sizeof it->message, "%s", e->message);
    }
    sqlite3_bind_int64(st, 1, it->seq);
    sqlite3_bind_int(st, 2, it->state);
    if (res)
        sqlite3_bind_text(st, 3, it->number, -1, SQLITE_STATIC);
    else {
        sqlite3_bind_text(st, 4, it->code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, it->finding, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, it->message, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 7, (int64_t)time(NULL));
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(s, err, "record");
    sqlite3_finalize(st);
    return rc;
}

int fpc_spool_drain(fpc_spool *s, fpc_client *c, int max,
                    void (*progress)(const fpc_spool_item *it, void *arg), void *arg,
                    fpc_error *err)
{
    int fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (fd >= 0)
            close(fd);
        fpc_error_set(err, FPC_EUNAVAILABLE, "SENDER_BUSY", "另一个发送进程正在处理此队列",
                      "another sender is draining this spool");
        return FPC_EUNAVAILABLE;
    }
    int handled = 0, rc = 0;
    while (max <= 0 || handled < max) {
        fpc_spool_item it;
        char *body = NULL;
        size_t len = 0;
        if ((rc = next_row(s, &it, &body, &len, err)) <= 0)
            break; /* none left (0) or the spool failed */
        fpc_result res;
        fpc_error e;
        rc = fpc_issue(c, it.serial, body, len, &res, &e);
        free(body);
        /* unreachable, or refused for the credential (401, 403) or the
         * connection (a pin mismatch) rather than for this request: every
         * later row would fare the same */
        if (rc == FPC_EUNAVAILABLE || rc == FPC_ENOMEM || e.status == 401 || e.status == 403 ||
            (rc == FPC_EREJECTED && e.status == 0)) {
            if (err)
                *err = e; /* the row stays "sending": the next drain sends it again */
            fpc_result_free(&res);
            break;
        }
        rc = record(s, &it, rc == 0 ? &res : NULL, &e, err);
        fpc_result_free(&res);
        if (rc < 0)
            break;
        handled++;
        if (progress)
            progress(&it, arg);
    }
    close(fd); /* releases the lock */
    return rc < 0 ? rc : handled;
}
