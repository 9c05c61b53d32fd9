/* cmd_migrate.c — fapiao migrate-store: one node's SQLite store moved to
 * PostgreSQL (docs/ha.md "Moving from one node on SQLite").  The source's
 * data directory is locked the way serve locks it, so no server runs on it
 * during the copy (and none starts); the copy is one transaction on the
 * target (store.h fp_store_migrate); then every table's rows are counted
 * on the target and its audit chain verified with the source's public key,
 * hashes and checkpoints unchanged. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "datadir.h"
#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/store.h"

static const char usage[] =
    "usage: fapiao migrate-store --from DATA_DIR|FILE.db --to postgresql://... [--audit-key K]\n"
    "  Copies every table of a SQLite store (sellers, credentials, ranges, invoices,\n"
    "  red forms, jobs, uploads, the credit line, silences, console users, the audit\n"
    "  log with its checkpoints) into an empty PostgreSQL\n"
    "  database in one transaction, then counts the rows there and verifies the audit\n"
    "  chain with DIR/audit.pub.  Stop fapiao serve first (its lock is taken).  The\n"
    "  source is left as it was.  Exit 0 done, 1 failed (nothing kept), 2 usage.\n"
    "  把 SQLite 存储的全部表复制到空的 PostgreSQL 数据库（一个事务），然后核对行数并用\n"
    "  审计公钥校验审计链。须先停止 fapiao serve；源数据保持不变。docs/ha.md\n";

/* The source: a data directory (DIR/fapiao.db, DIR's lock) or a file (the
 * lock beside it).  0, or -1 with the problem printed. */
static int source(const char *from, char db[PATH_MAX], char dir[PATH_MAX])
{
    struct stat st;
    if (stat(from, &st) != 0) {
        cli_fail("找不到源数据", "no such source", from);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(dir, PATH_MAX, "%s", from);
    } else {
        const char *slash = strrchr(from, '/');
        snprintf(dir, PATH_MAX, "%.*s", slash ? (int)(slash - from) : 1, slash ? from : ".");
    }
    if (cli_dd_path(db, PATH_MAX, dir, CLI_DD_DB) < 0) {
        cli_error("路径过长", "path too long");
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        snprintf(db, PATH_MAX, "%s", from);
    if (access(db, R_OK) != 0) {
        cli_fail("无法读取源数据库", "cannot read the source database", db);
        return -1;
    }
    return 0;
}

/* The target's audit chain, verified with the source's public key. */
static int verify_target(const char *dir, const char *db, const char *url, fp_audit_report *rep)
{
    char key[PATH_MAX], pub[PATH_MAX];
    unsigned char pk[FP_AUDIT_KEY_LEN];
    fp_err err = {0};
    if (fp_audit_key_paths(db, cli_audit_key(), key, pub, sizeof key) < 0 ||
        fp_audit_pub_load(pub, pk, &err) < 0) {
        cli_fail("无法读取审计公钥", "cannot read the audit public key",
                 err.msg[0] ? err.msg : dir);
        return -1;
    }
    if (fp_audit_verify_db(url, pk, 0, rep, &err) < 0) {
        cli_fail("无法校验目标的审计链", "cannot verify the target's audit chain", err.msg);
        return -1;
    }
    return 0;
}

int cmd_migrate(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    cli_flag flags[] = {{"--from", 0, &from, NULL}, {"--to", 0, &to, NULL}, {NULL, 0, NULL, NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(from, "--from", usage) < 0 ||
        cli_require(to, "--to", usage) < 0)
        return 2;
    if (!fp_store_is_url(to)) {
        cli_error("--to 须为 postgresql:// 连接串", "--to must be a postgresql:// URL");
        return 2;
    }
    char db[PATH_MAX], dir[PATH_MAX];
    if (source(from, db, dir) < 0)
        return 1;
    int lock = cli_lock_serve(dir);
    if (lock < 0)
        return 1;
    fp_store_migrate_report rep;
    fp_err err = {0};
    int rc = fp_store_migrate(db, to, &rep, &err);
    if (rc < 0) {
        cli_fail("迁移失败（目标数据库未写入）",
                 "migration failed (nothing was kept on the target)", err.msg);
        close(lock);
        return 1;
    }
    int zh = cli_zh(), bad = 0;
    printf("%s\n", zh ? "表                  源行数      目标行数"
                      : "table               source      target");
    for (int i = 0; i < rep.ntables; i++) {
        int same = rep.t[i].copied == rep.t[i].target;
        bad |= !same;
        printf("%-18s %10lld %10lld%s\n", rep.t[i].name, (long long)rep.t[i].copied,
               (long long)rep.t[i].target,
               same ? ""
               : zh ? "  不一致"
                    : "  MISMATCH");
    }
    fp_audit_report ar;
    if (verify_target(dir, db, to, &ar) < 0) {
        close(lock);
        return 1;
    }
    int intact = ar.kind == FP_AUDIT_INTACT;
    printf(zh ? "目标审计链：%s，%lld 条记录，%lld 个签名检查点\n"
              : "audit chain on the target: %s, %lld records, %lld signed checkpoints\n",
           intact ? (zh ? "完好" : "intact") : (zh ? ar.zh : ar.en), (long long)ar.records,
           (long long)ar.checkpoints);
    close(lock);
    if (bad || !intact) {
        cli_error("迁移后的核对未通过：不要切换到目标数据库",
                  "the check after the copy failed: do not switch to the target");
        return 1;
    }
    printf("%s\n", zh ? "迁移完成。下一步：fapiao serve --database <URL>（docs/ha.md）"
                      : "moved.  Next: fapiao serve --database <URL> (docs/ha.md)");
    return 0;
}
