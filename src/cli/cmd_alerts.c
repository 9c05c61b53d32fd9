/* cmd_alerts.c — `fapiao alerts silence|list|expire|test` (docs/alerting.md
 * "Silences"): silences of the built-in notifier, stored in the data
 * directory's store with an audit record each (the running server reads
 * them every evaluation round), and a test message to every receiver of
 * the alerting file.  Works while a server runs on the same directory. */
#include "cli.h"
#include "fapiao/alerting.h"
#include "fapiao/clock.h"
#include "fapiao/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: fapiao alerts silence --data-dir DIR --match K=V [--match K=V ...] --for DURATION\n"
    "                             --comment TEXT\n"
    "       fapiao alerts list --data-dir DIR [--all] [--json]\n"
    "       fapiao alerts expire --data-dir DIR ID\n"
    "       fapiao alerts test --alerting FILE\n"
    "  K=V matches an alert label exactly, K=~RE by a regular expression (alertname, severity,\n"
    "  instance and the series' labels); DURATION: 90m, 2h, 1d.  list shows the active silences\n"
    "  (--all: every one).  test sends a test message to every receiver of FILE.\n"
    "  静默内置告警（按标签匹配，时长如 2h）、列出或提前结束静默；test 向告警文件中的每个接收方\n"
    "  发送测试消息。静默保存在数据目录并记入审计日志，运行中的服务每轮评估读取。\n";

/* "90m", "2h", "1d", "45s" -> seconds, or -1. */
static int64_t parse_duration(const char *s)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || n <= 0 || n > 366LL * 86400)
        return -1;
    int64_t unit = !strcmp(end, "s")   ? 1
                   : !strcmp(end, "m") ? 60
                   : !strcmp(end, "h") ? 3600
                   : !strcmp(end, "d") ? 86400
                                       : 0;
    return unit && n * unit <= 366LL * 86400 ? n * unit : -1;
}

static int cmd_silence(int argc, char **argv)
{
    const char *dir = NULL, *dur = NULL, *comment = NULL;
    fp_silence x = {0};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = !strcmp(argv[i], "--data-dir")  ? &dir
                            : !strcmp(argv[i], "--for")     ? &dur
                            : !strcmp(argv[i], "--comment") ? &comment
                                                            : NULL;
        int is_match = !strcmp(argv[i], "--match");
        if ((!slot && !is_match) || !v) {
            cli_error("参数有误", "bad arguments");
            fprintf(stderr, "%s", usage);
            return 2;
        }
        if (slot)
            *slot = v;
        else if (!strchr(v, '=') || strlen(x.matchers) + strlen(v) + 2 > sizeof x.matchers) {
            cli_error("--match 须为 K=V 或 K=~RE", "--match must be K=V or K=~RE");
            return 2;
        } else
            snprintf(x.matchers + strlen(x.matchers), sizeof x.matchers - strlen(x.matchers),
                     "%s%s", x.matchers[0] ? "," : "", v);
        i++;
    }
    int64_t secs = dur ? parse_duration(dur) : -1;
    if (dur && secs < 0) { /* a number with its unit: not cli_number's */
        char zh[160], en[160];
        snprintf(zh, sizeof zh, "--for 须为 1 秒到 366 天的时长（如 90m、2h、1d）：%.40s", dur);
        snprintf(en, sizeof en, "--for must be a duration of 1s to 366d (e.g. 90m, 2h, 1d): %.40s",
                 dur);
        cli_error(zh, en);
        return 2;
    }
    if (cli_require(dir, "--data-dir", usage) < 0 || !x.matchers[0] || secs < 0 || !comment) {
        cli_error("需要 --match、--for（如 2h）与 --comment",
                  "need --match, --for (e.g. 2h) and --comment");
        return 2;
    }
    fp_store *s = cli_open_store(dir);
    if (!s)
        return 1;
    char actor[80];
    fp_audit_rec a = cli_audit_rec(actor, "alerts.silence", NULL, "ok");
    snprintf(x.comment, sizeof x.comment, "%s", comment);
    snprintf(x.created_by, sizeof x.created_by, "%s", actor);
    x.starts_at = fp_wall_s();
    x.ends_at = x.starts_at + secs;
    int64_t id = 0;
    fp_err err = {0};
    int rc = fp_store_silence_create(s, &x, &id, &a, &err);
    fp_store_close(s);
    if (rc < 0) {
        cli_fail("无法创建静默", "cannot create the silence", err.msg);
        return 1;
    }
    printf("%lld\n", (long long)id);
    fprintf(stderr, "fapiao: 已创建静默 %lld（%s，%s）/ silence %lld created (%s, for %s)\n",
            (long long)id, x.matchers, dur, (long long)id, x.matchers, dur);
    return 0;
}

static void print_silence(const fp_silence *x, void *arg)
{
    int json = *(int *)arg;
    char ends[32];
    struct tm tm;
    fp_cst_tm(x->ends_at, &tm);
    strftime(ends, sizeof ends, "%Y-%m-%d %H:%M", &tm);
    if (json) {
        printf("{\"id\":%lld,\"matchers\":\"", (long long)x->id);
        for (const char *p = x->matchers; *p; p++)
            printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        printf("\",\"starts_at\":%lld,\"ends_at\":%lld,\"expired\":%s}\n", (long long)x->starts_at,
               (long long)x->ends_at, x->expired_at ? "true" : "false");
    } else {
        printf("%-4lld %-40s until %s CST%s  %s (%s)\n", (long long)x->id, x->matchers, ends,
               x->expired_at ? " [expired]" : "", x->comment, x->created_by);
    }
}

static int cmd_list_expire(int argc, char **argv, int expire)
{
    const char *dir = NULL, *id = NULL;
    int all = 0, json = 0;
    const cli_flag flags[] = {{"--data-dir", 0, &dir, NULL},
                              {"--all", 1, NULL, &all},
                              {"--json", 1, NULL, &json},
                              {NULL, 0, NULL, NULL}};
    if (expire && argc >= 2 && strncmp(argv[argc - 1], "--", 2) != 0) /* -1: a bad ID */
        id = argv[--argc];
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    long long sid = 0;
    if (expire && !id) {
        cli_error("需要静默的 ID", "need the silence's ID");
        return 2;
    }
    if (expire && cli_number(id, "ID", 1, INT64_MAX, &sid, usage) < 0)
        return 2;
    fp_store *s = expire ? cli_open_store(dir) : cli_open_store_ro(dir);
    if (!s)
        return 1;
    int rc;
    fp_err err = {0};
    if (expire) {
        char actor[80];
        fp_audit_rec a = cli_audit_rec(actor, "alerts.expire", NULL, "ok");
        rc = fp_store_silence_expire(s, sid, fp_wall_s(), &a, &err);
        if (rc == 0)
            fprintf(stderr, "fapiao: 静默 %s 已结束 / silence %s expired\n", id, id);
        else
            cli_fail("无法结束静默", "cannot expire the silence", err.msg);
    } else {
        rc = fp_store_silences(s, all ? 0 : fp_wall_s(), print_silence, &json);
    }
    fp_store_close(s);
    return rc < 0 ? 1 : 0;
}

static int cmd_test(int argc, char **argv)
{
    const char *file = NULL;
    const cli_flag flags[] = {{"--alerting", 0, &file, NULL}, {NULL, 0, NULL, NULL}};
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(file, "--alerting", usage) < 0)
        return 2;
    fp_notify_conf c;
    fp_err err = {0};
    if (fp_notify_conf_read(file, &c, &err) < 0) {
        cli_fail("告警配置不可用", "the alerting file cannot be used", err.msg);
        return 1;
    }
    if (!c.nrcv) {
        cli_error("告警文件中没有接收方", "the alerting file has no receiver");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fp_notifier *n = fp_notifier_new(&c, NULL, &err);
    int failed = n ? fp_notifier_test(n) : c.nrcv;
    fp_notifier_free(n);
    curl_global_cleanup();
    return failed ? 1 : 0;
}

int cmd_alerts(int argc, char **argv)
{
    static const char *const subs[] = {"silence", "list", "expire", "test"};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "alerts", subs, usage, &rc);
    if (sub < 0)
        return rc;
    if (sub == 0)
        return cmd_silence(argc - 1, argv + 1);
    if (sub == 3)
        return cmd_test(argc - 1, argv + 1);
    return cmd_list_expire(argc - 1, argv + 1, sub == 2);
}
