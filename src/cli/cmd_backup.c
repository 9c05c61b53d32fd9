/* cmd_backup.c — `fapiao backup create|list|verify|restore|prune|keys`
 * (docs/recovery.md): a table of subcommands over include/fapiao/backup.h. */
/* paths are bounded by PATH_MAX: a cut one fails to open, never aliases */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fapiao/backup.h"

static const char usage[] =
    "usage: fapiao backup <subcommand> [options]\n"
    "  create  --data-dir DIR --to SET [--keep-full N]   an online full backup (one snapshot,\n"
    "          gzip, SHA-256, manifest.json); issuing goes on meanwhile\n"
    "  list    --from SET                                 the fulls and their log segments\n"
    "  verify  --from SET [--backup ID]                   restore into a temporary directory and\n"
    "          check: checksums, log order, integrity_check, audit verify, the counts\n"
    "  restore --from SET --to NEWDIR (--to-latest | --to-time T) [--keys FILE]\n"
    "          build a new data directory (T: unix seconds, or YYYY-MM-DDTHH:MM:SS[.mmm]Z)\n"
    "  prune   --from SET [--keep-full N] [--older-than-days D]\n"
    "  keys    --data-dir DIR --to FILE                   export the private keys (mode 0600);\n"
    "          they are never in a backup set: keep this file apart from it\n"
    "  Exit 0 ok, 1 failed (the file at fault is named), 2 usage.\n"
    "  用法：create 在线全量备份（压缩、校验和、清单）；list 列出；verify 还原到临时目录并校验\n"
    "  （校验和、日志顺序、integrity_check、审计校验、计数）；restore 构建新的数据目录\n"
    "  （--to-latest 最新，--to-time T 指定时间点）；prune 保留策略；keys 单独导出私钥\n"
    "  （备份集中从不包含私钥，请分开保存）。\n";

static void say(const char *zh, const char *en, void *arg)
{
    (void)arg;
    printf("%s\n", cli_zh() ? zh : en);
}

static int fail(const char *zh, const char *en, const fp_err *err, const fp_backup_result *r)
{
    char detail[600];
    snprintf(detail, sizeof detail, "%s%s%s", err->msg, r && r->bad_file[0] ? " — file: " : "",
             r && r->bad_file[0] ? r->bad_file : "");
    cli_fail(zh, en, detail);
    return 1;
}

/* unix seconds (with a fraction), or an ISO time in UTC */
static int parse_time(const char *s, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (*s && !*end) {
        *ms = (int64_t)(v * 1000.0 + 0.5);
        return 0;
    }
    struct tm tm = {0};
    int frac = 0;
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (*p != 'Z' && *p)
        return -1;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

static int sub_create(int argc, char **argv)
{
    const char *dir = NULL, *to = NULL, *keep = NULL;
    cli_flag flags[] = {{"--data-dir", 0, &dir, NULL},
                        {"--to", 0, &to, NULL},
                        {"--keep-full", 0, &keep, NULL},
                        {NULL, 0, NULL, NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) < 0 ||
        cli_require(to, "--to", usage) < 0)
        return 2;
    if (cli_refuse_server_db("fapiao backup create", "pgBackRest 与时间点恢复（docs/recovery.md）",
                             "pgBackRest and point-in-time recovery (docs/recovery.md)") < 0)
        return 2;
    long long nkeep;
    if (cli_count(keep, "--keep-full", 100000, &nkeep, usage) < 0)
        return 2;
    fp_err err = {0};
    fp_backup_result r = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (fp_backup_create(dir, to, (int)nkeep, &r, &err) < 0)
        return fail("备份失败", "backup failed", &err, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%s %s: invoices %lld, audit %lld, ranges %lld, sellers %lld; database %lld bytes, "
           "compressed %lld; WAL pinned %lld bytes; %.2f s\n",
           cli_zh() ? "已备份" : "backed up", r.id, (long long)r.invoices, (long long)r.audit,
           (long long)r.ranges, (long long)r.sellers, (long long)r.db_bytes, (long long)r.gz_bytes,
           (long long)r.wal_bytes, s);
    return 0;
}

static int sub_list(int argc, char **argv)
{
    const char *from = NULL;
    cli_flag flags[] = {{"--from", 0, &from, NULL}, {NULL, 0, NULL, NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(from, "--from", usage) < 0)
        return 2;
    fp_err err = {0};
    if (fp_backup_list(from, say, NULL, &err) < 0)
        return fail("无法列出备份", "cannot list the backups", &err, NULL);
    return 0;
}

static int sub_verify(int argc, char **argv)
{
    const char *from = NULL, *id = NULL;
    cli_flag flags[] = {
        {"--from", 0, &from, NULL}, {"--backup", 0, &id, NULL}, {NULL, 0, NULL, NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(from, "--from", usage) < 0)
        return 2;
    fp_err err = {0};
    fp_backup_result r = {0};
    if (fp_backup_verify(from, id, &r, say, NULL, &err) < 0)
        return fail("备份校验未通过", "backup verify failed", &err, &r);
    return 0;
}

static int sub_restore(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *t = NULL, *keys = NULL;
    int latest = 0;
    cli_flag flags[] = {{"--from", 0, &from, NULL}, {"--to", 0, &to, NULL},
                        {"--to-time", 0, &t, NULL}, {"--to-latest", 1, NULL, &latest},
                        {"--keys", 0, &keys, NULL}, {NULL, 0, NULL, NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(from, "--from", usage) < 0 ||
        cli_require(to, "--to", usage) < 0)
        return 2;
    if (cli_refuse_server_db("fapiao backup restore", "pgBackRest 与时间点恢复（docs/recovery.md）",
                             "pgBackRest and point-in-time recovery (docs/recovery.md)") < 0)
        return 2;
    int64_t ms = 0;
    if ((!!t) == latest || (t && parse_time(t, &ms) < 0)) {
        cli_error("需要 --to-latest 或 --to-time T（二选一）",
                  "give --to-latest or --to-time T (one of them)");
        return 2;
    }
    fp_err err = {0};
    fp_backup_result r = {0};
    if (fp_backup_restore(from, to, ms, keys, &r, say, NULL, &err) < 0)
        return fail("恢复失败（目标目录未写入）", "restore failed (the target was not written)",
                    &err, &r);
    printf("%s %s <- %s + %lld log records (%lld segments): invoices %lld, audit %lld\n",
           cli_zh() ? "已恢复" : "restored", to, r.id, (long long)r.log_records,
           (long long)r.log_segments, (long long)r.invoices, (long long)r.audit);
    return 0;
}

static int sub_prune(int argc, char **argv)
{
    const char *from = NULL, *keep = NULL, *days = NULL;
    cli_flag flags[] = {{"--from", 0, &from, NULL},
                        {"--keep-full", 0, &keep, NULL},
                        {"--older-than-days", 0, &days, NULL},
                        {NULL, 0, NULL, NULL}};
    long long nkeep, ndays;
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(from, "--from", usage) < 0 ||
        cli_count(keep, "--keep-full", 100000, &nkeep, usage) < 0 ||
        cli_count(days, "--older-than-days", 365000, &ndays, usage) < 0)
        return 2;
    fp_err err = {0};
    int n = 0;
    if (fp_backup_prune(from, (int)nkeep, ndays * 86400000LL, &n, &err) < 0)
        return fail("清理失败", "prune failed", &err, NULL);
    printf("%s %d\n", cli_zh() ? "已删除全量备份：" : "fulls deleted:", n);
    return 0;
}

static int sub_keys(int argc, char **argv)
{
    const char *dir = NULL, *to = NULL;
    cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL}, {"--to", 0, &to, NULL}, {NULL, 0, NULL, NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) < 0 ||
        cli_require(to, "--to", usage) < 0)
        return 2;
    fp_err err = {0};
    int n = 0;
    if (fp_backup_keys_export(dir, to, &n, &err) < 0)
        return fail("无法导出私钥", "cannot export the keys", &err, NULL);
    printf(cli_zh() ? "已导出 %d 个私钥到 %s（权限 0600，请与备份集分开保存）\n"
                    : "%d private keys written to %s (mode 0600; keep it apart from the backups)\n",
           n, to);
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
} subs[] = {{"create", sub_create},   {"list", sub_list},   {"verify", sub_verify},
            {"restore", sub_restore}, {"prune", sub_prune}, {"keys", sub_keys}};

int cmd_backup(int argc, char **argv)
{
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "backup", subs, usage, &rc);
    return sub < 0 ? rc : subs[sub].fn(argc - 1, argv + 1);
}
