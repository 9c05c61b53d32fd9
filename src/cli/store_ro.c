/* store_ro.c — the store as the commands open it (cli.h): the database
 * setting as serve resolves it (--database, FAPIAO_DATABASE, the config
 * file's key; docs/ha.md), the data directory's checks, and the store
 * opened through its seam, read-write or read-only.  Read-only (ranges
 * list, keys list, outbox list): no migration, no writer, no checkpoint
 * signed on close, and a cleanly stopped SQLite database's files keep every
 * byte (store.h fp_store_opts.read_only); on a server database
 * (--database postgresql://…) a read-only store starts no writer either. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "datadir.h"
#include "fapiao/audit.h"
#include "fapiao/store.h"
#include "serve_opts.h"

const char *cli_database(void)
{
    const char *flag = cli_database_flag();
    return flag ? flag : serve_opts_database();
}

int cli_on_server_db(void)
{
    return fp_store_is_url(cli_database());
}

int cli_db_path(char *out, size_t cap, const char *dir)
{
    const char *db = cli_database();
    if (db && *db) {
        int n = snprintf(out, cap, "%s", db);
        return n < 0 || (size_t)n >= cap ? -1 : 0;
    }
    return cli_dd_path(out, cap, dir, CLI_DD_DB);
}

int cli_refuse_server_db(const char *what, const char *instead_zh, const char *instead_en)
{
    if (!cli_on_server_db())
        return 0;
    char zh[512], en[512];
    snprintf(zh, sizeof zh, "%s 只适用于 SQLite 数据库；PostgreSQL 上请使用%s", what, instead_zh);
    snprintf(en, sizeof en, "%s works on a SQLite database only; on PostgreSQL use %s", what,
             instead_en);
    cli_error(zh, en);
    return -1;
}

/* "permission denied" naming path, with who we are (root ignores modes,
 * so this is what a service user sees). */
static void deny(const char *path, const char *zh_what, const char *en_what)
{
    char zh[PATH_MAX + 256], en[PATH_MAX + 256];
    snprintf(zh, sizeof zh, "权限不足（permission denied）：%s（%s；当前用户 uid %u）", path,
             zh_what, (unsigned)geteuid());
    snprintf(en, sizeof en, "permission denied: %s (%s; running as uid %u)", path, en_what,
             (unsigned)geteuid());
    cli_error(zh, en);
}

int cli_check_data_dir(const char *dir, int write, const char *hint_zh, const char *hint_en)
{
    char db[PATH_MAX];
    if (cli_db_path(db, sizeof db, dir) < 0) {
        cli_error("路径过长", "path too long");
        return -1;
    }
    /* the directory first: without search permission on it every path
     * inside reads as missing to a careless check (EACCES, not ENOENT) */
    if (faccessat(AT_FDCWD, dir, X_OK, AT_EACCESS) != 0 && errno == EACCES) {
        deny(dir, "无法进入数据目录", "cannot enter the data directory");
        return -1;
    }
    if (fp_store_is_url(db)) { /* the keys are still the data directory's (docs/ha.md) */
        if (faccessat(AT_FDCWD, dir, F_OK, AT_EACCESS) == 0)
            return 0;
        char zh[PATH_MAX + 64], en[PATH_MAX + 64];
        snprintf(zh, sizeof zh, "数据目录不存在：%s", dir);
        snprintf(en, sizeof en, "no such data directory: %s", dir);
        cli_error(zh, en);
        return -1;
    }
    if (faccessat(AT_FDCWD, db, F_OK, AT_EACCESS) != 0) {
        if (errno == EACCES) {
            deny(db, "无法访问数据库文件", "cannot reach the database file");
            return -1;
        }
        char zh[2 * PATH_MAX + 128], en[2 * PATH_MAX + 128];
        snprintf(zh, sizeof zh, "%s 不是数据目录（没有 fapiao.db）%s", dir, hint_zh ? hint_zh : "");
        snprintf(en, sizeof en, "%s is not a data directory (no fapiao.db)%s", dir,
                 hint_en ? hint_en : "");
        cli_error(zh, en);
        return -1;
    }
    int mode = write ? R_OK | W_OK : R_OK;
    if (faccessat(AT_FDCWD, db, mode, AT_EACCESS) != 0 && errno == EACCES) {
        deny(db, write ? "数据库文件须可读写" : "数据库文件须可读",
             write ? "the database file must be readable and writable"
                   : "the database file must be readable");
        return -1;
    }
    /* SQLite writes the -wal, -shm and lock files beside the database */
    if (write && faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) != 0 && errno == EACCES) {
        deny(dir, "数据目录须可写（-wal/-shm 文件）",
             "the data directory must be writable (-wal/-shm files)");
        return -1;
    }
    return 0;
}

fp_store *cli_open_store_opts(const char *dir, int read_only)
{
    char db[PATH_MAX], base[PATH_MAX], key[PATH_MAX], pub[PATH_MAX];
    if (cli_check_data_dir(dir, !read_only, NULL, NULL) < 0 || cli_db_path(db, sizeof db, dir) < 0)
        return NULL;
    fp_store_opts o = {.path = db,
                       .read_conns = 1,
                       .read_only = read_only,
                       .audit_key_path = read_only ? NULL : cli_audit_key()};
    /* a server database has no directory beside it: the audit key (when
     * there is one) and webhook.key are the data directory's, as for serve */
    cli_dd_path(base, sizeof base, dir, CLI_DD_DB);
    if (fp_store_is_url(db) && !read_only) {
        o.key_dir = dir;
        if (!o.audit_key_path && fp_audit_key_paths(base, NULL, key, pub, sizeof key) == 0 &&
            access(key, F_OK) == 0)
            o.audit_key_path = key;
    }
    fp_store *s = NULL;
    fp_err err = {0};
    if (fp_store_open(&o, &s, &err) < 0) {
        cli_fail("无法打开数据库", "cannot open the database", err.msg);
        return NULL;
    }
    return s;
}

fp_store *cli_open_store(const char *dir)
{
    return cli_open_store_opts(dir, 0);
}

fp_store *cli_open_store_ro(const char *dir)
{
    return cli_open_store_opts(dir, 1);
}
