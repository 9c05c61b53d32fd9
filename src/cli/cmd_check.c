/* cmd_check.c — `fapiao check --data-dir DIR [--full] [--json]`: the check
 * of the store from the disk that clears a fail-stop (docs/storage.md).
 *
 * It fsyncs the database and its WAL and drops their cached pages
 * (posix_fadvise DONTNEED), so that what it reads comes from the disk and
 * not from a page cache that may hold pages that never reached it; then
 * PRAGMA quick_check (integrity_check with --full) on a fresh connection
 * that writes nothing, and, after a fail-stop, the last acknowledged
 * invoices and the audit head its marker names.  Offline, a pass removes
 * the marker, so the next `fapiao serve` writes again (it checks again at
 * start).  Beside a running server it only reports: a running server
 * resumes writes only after a restart. */
#include "cli.h"
#include "datadir.h"
#include "fapiao/store.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const char usage[] =
    "usage: fapiao check --data-dir DIR [--full] [--json]\n"
    "  Checks the store from the disk (fsync, then the cached pages dropped): PRAGMA\n"
    "  quick_check (--full: integrity_check, slower), and after a fail-stop the last\n"
    "  acknowledged invoices and the audit head.  Exit 0 passed, 1 failed (restore\n"
    "  from a backup), 2 usage.  Without a running server a pass clears the fail-stop\n"
    "  for the next start; a running server resumes writes only after a restart.\n"
    "  从磁盘检查存储（先 fsync 再丢弃页缓存）：quick_check（--full 为 integrity_check），\n"
    "  以及停写前最后确认的发票与审计链头。退出码 0 通过，1 未通过（从备份恢复），2 用法错误。\n";

/* 1 when a fapiao serve holds the data directory's lock. */
static int server_running(const char *dir)
{
    char p[PATH_MAX];
    cli_dd_path(p, sizeof p, dir, CLI_DD_LOCK);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int busy = flock(fd, LOCK_SH | LOCK_NB) != 0;
    close(fd);
    return busy;
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int cmd_check(int argc, char **argv)
{
    const char *dir = NULL;
    int full = 0, json = 0;
    cli_flag flags[] = {{"--data-dir", 0, &dir, NULL},
                        {"--full", 1, NULL, &full},
                        {"--json", 1, NULL, &json},
                        {NULL, 0, NULL, NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    char db[PATH_MAX];
    cli_dd_path(db, sizeof db, dir, CLI_DD_DB);
    int server_db = cli_on_server_db();
    if (!server_db && access(db, F_OK) != 0) {
        char zh[PATH_MAX + 64], en[PATH_MAX + 64];
        snprintf(zh, sizeof zh, "%s 不是数据目录（没有 fapiao.db）", dir);
        snprintf(en, sizeof en, "%s is not a data directory (no fapiao.db)", dir);
        cli_error(zh, en);
        return 1;
    }
    int running = !server_db && server_running(dir);
    fp_store_check_report rep;
    int rc;
    if (server_db) { /* the check of docs/ha.md, on the database's own snapshot */
        fp_store *s = cli_open_store_ro(dir);
        if (!s)
            return 1;
        rc = fp_store_check_now(s, full, &rep);
        fp_store_close(s);
    } else {
        rc = fp_store_check_path(db, full, &rep);
    }
    int cleared = 0;
    const char *label = server_db ? (full ? "postgresql_full" : "postgresql")
                        : full    ? "integrity_check"
                                  : "quick_check";
    if (rc == 0 && rep.after_failstop && !running)
        cleared = fp_store_failstop_clear_marker(db) == 0;
    if (json) {
        printf("{\"ok\":%s,\"check\":\"%s\",\"from_disk\":%s,\"integrity\":",
               rep.ok ? "true" : "false", label, rep.from_disk ? "true" : "false");
        json_str(rep.integrity);
        printf(",\"after_failstop\":%s,\"acknowledged_checked\":%d,\"acknowledged_missing\":%d,"
               "\"audit_head_checked\":%s,\"server_running\":%s,\"failstop_cleared\":%s,"
               "\"elapsed_ms\":%lld,\"problems\":",
               rep.after_failstop ? "true" : "false", rep.acked_checked, rep.acked_missing,
               rep.audit_checked ? "true" : "false", running ? "true" : "false",
               cleared ? "true" : "false", (long long)rep.elapsed_ms);
        json_str(rep.problems);
        printf("}\n");
        return rc == 0 ? 0 : 1;
    }
    int zh = cli_zh();
    printf("%s: %s (%s, %lld ms)\n", label, rep.integrity,
           server_db ? (zh ? "数据库快照，见 docs/ha.md" : "the database's snapshot: docs/ha.md")
           : rep.from_disk ? (zh ? "从磁盘读取" : "read from the disk")
                           : (zh ? "未能从磁盘读取" : "not read from the disk"),
           (long long)rep.elapsed_ms);
    if (rep.after_failstop)
        printf(zh ? "停写前确认的发票：检查 %d 张，缺失 %d 张；审计链头：%s\n"
                  : "acknowledged before the fail-stop: %d invoices checked, %d missing; audit "
                    "head: %s\n",
               rep.acked_checked, rep.acked_missing,
               rep.audit_checked ? (zh ? "已检查" : "checked") : (zh ? "无记录" : "not recorded"));
    if (rc != 0) {
        fprintf(stderr, "fapiao: %s: %s\n",
                zh ? "检查未通过，存储保持只读；请停止服务并从备份恢复"
                   : "check failed, the store stays read-only; stop the service and restore "
                     "from a backup",
                rep.problems);
        return 1;
    }
    if (running)
        printf("%s\n", zh ? "检查通过。服务器正在运行：如已停写，排除磁盘故障后重启服务才会恢复写入"
                          : "check passed.  A server is running: if it stopped writing, fix the "
                            "disk and restart it to resume writes");
    else if (cleared)
        printf("%s\n", zh ? "检查通过，已清除停写标记；下次启动 fapiao serve 将恢复写入"
                          : "check passed; the fail-stop is cleared: the next fapiao serve "
                            "writes again");
    else
        printf("%s\n", zh ? "检查通过" : "check passed");
    return 0;
}
