/* main.c — the fapiao command: a table of subcommands. */
#include "cli.h"
#include "fapiao/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAPIAO_VERSION "0.1.0"

/* The language of messages from the first of LC_ALL, LC_MESSAGES, LANG that
 * is set: 1 Chinese (zh*), 0 English (en*), -1 unknown (none set, C, POSIX,
 * any other language). */
static int cli_lang(void)
{
    const char *vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strncmp(v, "zh", 2) == 0 ? 1 : strncmp(v, "en", 2) == 0 ? 0 : -1;
    }
    return -1;
}

int cli_zh(void)
{
    return cli_lang() == 1;
}

void cli_error(const char *zh, const char *en)
{
    int lang = cli_lang();
    if (lang != 0)
        fprintf(stderr, "fapiao: %s\n", zh);
    if (lang != 1)
        fprintf(stderr, "fapiao: %s\n", en);
}

void cli_fail(const char *zh, const char *en, const char *detail)
{
    fprintf(stderr, "fapiao: %s: %s\n", cli_zh() ? zh : en, detail);
}

static const char *audit_key_flag;

const char *cli_audit_key(void)
{
    if (audit_key_flag && *audit_key_flag)
        return audit_key_flag;
    const char *e = getenv("FAPIAO_AUDIT_KEY");
    return e && *e ? e : NULL;
}

int cli_parse(int argc, char **argv, const cli_flag *flags, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("%s", usage);
            exit(0);
        }
        const cli_flag *f = NULL;
        const char *inline_val = NULL;
        for (const cli_flag *c = flags; c->name; c++) {
            size_t n = strlen(c->name);
            if (strncmp(a, c->name, n) == 0 && (a[n] == 0 || (a[n] == '=' && !c->is_bool))) {
                f = c;
                inline_val = a[n] == '=' ? a + n + 1 : NULL;
                break;
            }
        }
        if (!f && strncmp(a, "--audit-key", 11) == 0 && (a[11] == 0 || a[11] == '=')) {
            /* every command that opens the store may sign: see cli_audit_key */
            if (a[11] == '=')
                audit_key_flag = a + 12;
            else if (i + 1 < argc)
                audit_key_flag = argv[++i];
            else {
                cli_error("参数 --audit-key 需要一个值", "--audit-key needs a value");
                return -1;
            }
            continue;
        }
        if (!f) {
            char zh[256], en[256];
            snprintf(zh, sizeof zh, "未知参数 %s", a);
            snprintf(en, sizeof en, "unknown argument %s", a);
            cli_error(zh, en);
            fprintf(stderr, "%s", usage);
            return -1;
        }
        if (f->is_bool) {
            *f->set = 1;
        } else if (inline_val) {
            *f->value = inline_val;
        } else if (i + 1 < argc) {
            *f->value = argv[++i];
        } else {
            char zh[256], en[256];
            snprintf(zh, sizeof zh, "参数 %s 需要一个值", a);
            snprintf(en, sizeof en, "%s needs a value", a);
            cli_error(zh, en);
            return -1;
        }
    }
    return 0;
}

int cli_require(const char *value, const char *flag, const char *usage)
{
    if (value)
        return 0;
    char zh[128], en[128];
    snprintf(zh, sizeof zh, "缺少 %s", flag);
    snprintf(en, sizeof en, "%s is required", flag);
    cli_error(zh, en);
    fprintf(stderr, "%s", usage);
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
    snprintf(db, sizeof db, "%s/fapiao.db", dir);
    /* the directory first: without search permission on it every path
     * inside reads as missing to a careless check (EACCES, not ENOENT) */
    if (faccessat(AT_FDCWD, dir, X_OK, AT_EACCESS) != 0 && errno == EACCES) {
        deny(dir, "无法进入数据目录", "cannot enter the data directory");
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

int cli_database_lost(const char *dir)
{
    char db[PATH_MAX], marker[PATH_MAX + 16];
    snprintf(db, sizeof db, "%s/fapiao.db", dir);
    snprintf(marker, sizeof marker, "%s-failstop", db);
    if (access(db, F_OK) == 0 || access(marker, F_OK) != 0)
        return 0;
    char zh[2 * PATH_MAX + 256], en[2 * PATH_MAX + 256];
    snprintf(zh, sizeof zh,
             "%s 不存在，但 %s 表明服务运行中数据库被删除或改名（停写保护）：请从备份恢复 "
             "fapiao.db 或放回原文件，不要重新 fapiao init（会重复开出已用号码）；见 "
             "docs/storage.md",
             db, marker);
    snprintf(en, sizeof en,
             "%s is missing, and %s says it was deleted or renamed while serving (fail-stop): "
             "restore fapiao.db from a backup or put the file back; do not run fapiao init "
             "again (it would issue used numbers again); see docs/storage.md",
             db, marker);
    cli_error(zh, en);
    return 1;
}

fp_store *cli_open_store(const char *dir)
{
    char db[PATH_MAX];
    snprintf(db, sizeof db, "%s/fapiao.db", dir);
    if (cli_check_data_dir(dir, 1, NULL, NULL) < 0)
        return NULL;
    fp_store_opts o = {.path = db, .read_conns = 1, .audit_key_path = cli_audit_key()};
    fp_store *s = NULL;
    fp_err err = {0};
    if (fp_store_open(&o, &s, &err) < 0) {
        cli_fail("无法打开数据库", "cannot open the database", err.msg);
        return NULL;
    }
    return s;
}

fp_audit_rec cli_audit_rec(char actor[80], const char *action, const char *target,
                           const char *outcome)
{
    const char *user = getenv("SUDO_USER");
    if (!user || !*user)
        user = getenv("USER");
    if (user && *user)
        snprintf(actor, 80, "cli:%.60s", user);
    else
        snprintf(actor, 80, "cli:uid%u", (unsigned)getuid());
    fp_audit_rec rec = {0, actor, action, target, NULL, NULL, outcome};
    return rec;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("fapiao %s\n", FAPIAO_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *zh, *en;
} commands[] = {
    {"init", cmd_init, "创建数据目录：自签名证书、演示号码段和演示凭据",
     "create a data directory: self-signed certificate, demo number range, demo credential"},
    {"serve", cmd_serve, "启动 HTTPS 开票服务", "run the HTTPS invoicing service"},
    {"ranges", cmd_ranges, "导入或列出发票号码段（预赋码）",
     "import or list invoice number ranges"},
    {"keys", cmd_keys, "管理 API 凭据：创建、轮换、吊销、角色与白名单",
     "manage API credentials: create, rotate, revoke, roles and allowlists"},
    {"outbox", cmd_outbox, "查看或重新投递 PDF 与通知任务（含死信）",
     "list or re-drive the PDF and notification jobs (dead letters too)"},
    {"webhook", cmd_webhook, "设置客户端的回调地址与签名密钥",
     "set a client's webhook URL and signing secret"},
    {"audit", cmd_audit, "校验、导出、列出或清理防篡改审计日志",
     "verify, export, list or prune the tamper-evident audit log"},
    {"clock", cmd_clock, "查看开票时钟水位，或确认时钟跳前后恢复开票",
     "show the issue clock's mark, or confirm a forward clock jump"},
    {"check", cmd_check, "从磁盘检查存储（quick_check，--full 为 integrity_check），解除停写",
     "check the store from the disk (quick_check; --full: integrity_check), clear a fail-stop"},
    {"doctor", cmd_doctor, "诊断到开票服务器的连接",
     "diagnose the connection to an invoice server"},
    {"pdf", cmd_pdf, "把发票文档渲染为 PDF", "render an invoice document as a PDF"},
    {"kb", cmd_kb, "搜索或查看故障知识库", "search or show the troubleshooting knowledge base"},
    {"version", cmd_version, "显示版本", "print the version"},
    {"help", cmd_help, "显示帮助", "show this help"},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    int zh = cli_zh();
    printf("%s\n\n", zh ? "用法: fapiao <命令> [参数]" : "usage: fapiao <command> [options]");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-8s %s\n", commands[i].name, zh ? commands[i].zh : commands[i].en);
    printf("\n%s\n", zh ? "每个命令都支持 --help。" : "Every command takes --help.");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_help(argc, argv), 2;
    if (strcmp(argv[1], "render-worker") == 0) /* hidden: the PDF pool's worker */
        return cmd_render_worker(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(argc, argv);
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc, argv);
    char zh[256], en[256];
    snprintf(zh, sizeof zh, "未知命令 %s（fapiao help 查看全部命令）", argv[1]);
    snprintf(en, sizeof en, "unknown command %s (fapiao help lists them)", argv[1]);
    cli_error(zh, en);
    return 2;
}
