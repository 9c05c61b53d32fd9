/* cli_util.c — what the subcommands share (cli.h): the message language,
 * bilingual errors, flag parsing, the data directory's checks and opening
 * the store, the audit record of an admin action. */
#include "cli.h"
#include "datadir.h"
#include "fapiao/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

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

static const char *database_flag;

const char *cli_database_flag(void)
{
    return database_flag && *database_flag ? database_flag : NULL;
}

void cli_database_set(const char *db)
{
    database_flag = db;
}

/* The flags every command takes besides its own (cli_audit_key,
 * cli_database): "--name VALUE" or "--name=VALUE".  1 taken, 0 not one of
 * them, -1 a value missing. */
static int common_flag(int argc, char **argv, int *i)
{
    static const struct {
        const char *name;
        const char **value;
    } common[] = {{"--audit-key", &audit_key_flag}, {"--database", &database_flag}};
    const char *a = argv[*i];
    for (size_t k = 0; k < sizeof common / sizeof common[0]; k++) {
        size_t n = strlen(common[k].name);
        if (strncmp(a, common[k].name, n) || (a[n] && a[n] != '='))
            continue;
        if (a[n] == '=')
            *common[k].value = a + n + 1;
        else if (*i + 1 < argc)
            *common[k].value = argv[++*i];
        else {
            char zh[96], en[96];
            snprintf(zh, sizeof zh, "参数 %s 需要一个值", common[k].name);
            snprintf(en, sizeof en, "%s needs a value", common[k].name);
            cli_error(zh, en);
            return -1;
        }
        return 1;
    }
    return 0;
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
        if (!f) { /* every command that opens the store may sign, or use a server database */
            int c = common_flag(argc, argv, &i);
            if (c < 0)
                return -1;
            if (c > 0)
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

int cli_subcommand(int argc, char **argv, const char *cmd, const void *table, size_t n,
                   size_t stride, const char *usage, int *rc)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;
    char list_zh[256] = "", list_en[256] = ""; /* the names, for the message */
    for (size_t i = 0, uz = 0, ue = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)table + i * stride);
        if (sub && strcmp(sub, name) == 0)
            return (int)i;
        int w = snprintf(list_zh + uz, sizeof list_zh - uz, "%s%s", i ? "、" : "", name);
        if (w > 0 && (size_t)w < sizeof list_zh - uz)
            uz += (size_t)w;
        w = snprintf(list_en + ue, sizeof list_en - ue, "%s%s", i ? ", " : "", name);
        if (w > 0 && (size_t)w < sizeof list_en - ue)
            ue += (size_t)w;
    }
    if (sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
        fputs(usage, stdout);
        *rc = 0;
        return -1;
    }
    char zh[400], en[400];
    if (sub) {
        snprintf(zh, sizeof zh, "未知的 %s 子命令 %.64s（可用：%s）", cmd, sub, list_zh);
        snprintf(en, sizeof en, "unknown %s subcommand %.64s (one of: %s)", cmd, sub, list_en);
    } else {
        snprintf(zh, sizeof zh, "%s 缺少子命令（可用：%s）", cmd, list_zh);
        snprintf(en, sizeof en, "%s needs a subcommand (one of: %s)", cmd, list_en);
    }
    cli_error(zh, en);
    fputs(usage, stderr);
    *rc = 2;
    return -1;
}

int cli_number(const char *s, const char *flag, long long min, long long max, long long *out,
               const char *usage)
{
    if (!s)
        return 0;
    /* digits only: strtoll alone would also take leading blanks and a sign */
    char *end = NULL;
    errno = 0;
    long long v = *s >= '0' && *s <= '9' ? strtoll(s, &end, 10) : 0;
    if (end && !*end && errno == 0 && v >= min && v <= max) {
        *out = v;
        return 0;
    }
    char zh[192], en[192];
    snprintf(zh, sizeof zh, "%s 须为 %lld 到 %lld 之间的整数：%.40s", flag, min, max, s);
    snprintf(en, sizeof en, "%s must be a whole number from %lld to %lld: %.40s", flag, min, max,
             s);
    cli_error(zh, en);
    if (usage)
        fprintf(stderr, "%s", usage);
    return -1;
}

int cli_count(const char *s, const char *flag, long long max, long long *out, const char *usage)
{
    *out = 0;
    return cli_number(s, flag, 0, max, out, usage);
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

int cli_database_lost(const char *dir)
{
    char db[PATH_MAX], marker[PATH_MAX + 16];
    cli_dd_path(db, sizeof db, dir, CLI_DD_DB);
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

/* The data directory's serve lock, held until exit: -1 (printed) when a
 * fapiao serve holds it. */
int cli_lock_serve(const char *dir)
{
    char p[PATH_MAX];
    cli_dd_path(p, sizeof p, dir, CLI_DD_LOCK);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        return fd;
    char zh[2 * PATH_MAX + 128], en[2 * PATH_MAX + 128];
    snprintf(zh, sizeof zh, "%s 正被 fapiao serve 使用（%s 已加锁）：请先停止服务", dir, p);
    snprintf(en, sizeof en, "%s is in use by fapiao serve (%s is locked): stop it first", dir, p);
    cli_error(zh, en);
    if (fd >= 0)
        close(fd);
    return -1;
}
