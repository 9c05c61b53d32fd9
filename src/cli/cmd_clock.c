/* cmd_clock.c — `fapiao clock status|confirm`: the issue clock's
 * high-water mark (docs/operations.md, "Clock").  status shows the last
 * issue time beside the clock; confirm tells a running server (and any
 * later one) that a forward jump of the clock is real, so issuing resumes.
 * Both work while a server runs: its writer reads the confirmation when it
 * refuses a request for a jump. */
#include "cli.h"
#include "fapiao/clock.h"
#include "fapiao/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: fapiao clock status --data-dir DIR\n"
    "       fapiao clock confirm --data-dir DIR\n"
    "  status: the last issue time (the high-water mark issue times never go below)\n"
    "  and the clock now.  confirm: after the clock jumped ahead by more than a day\n"
    "  (issuing answers 503 CLOCK_JUMPED), confirms that the clock is right; issuing\n"
    "  resumes at the current time.  Audited (clock.confirm).\n"
    "  status 显示最近开票时间与当前时钟；confirm 在时钟跳前超过一天（开票返回\n"
    "  503 CLOCK_JUMPED）且确认时钟无误后恢复开票（记入审计日志）。\n";

static void cst(int64_t t, char out[40])
{
    if (!t) {
        snprintf(out, 40, "-");
        return;
    }
    time_t c = (time_t)t + FP_CST_OFFSET_S;
    struct tm tm;
    gmtime_r(&c, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S+08:00", &tm);
}

int cmd_clock(int argc, char **argv)
{
    static const char *const subs[] = {"status", "confirm"};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "clock", subs, usage, &rc);
    if (sub < 0)
        return rc;
    int confirm = sub == 1;
    const char *dir = NULL;
    const cli_flag flags[] = {{"--data-dir", 0, &dir, NULL}, {NULL, 0, NULL, NULL}};
    if (cli_parse(argc - 1, argv + 1, flags, usage) < 0 ||
        cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    fp_store *s = cli_open_store(dir);
    if (!s)
        return 1;
    fp_err err = {0};
    rc = 0;
    if (confirm) {
        char actor[80];
        const char *user = getenv("SUDO_USER");
        if (!user || !*user)
            user = getenv("USER");
        if (user && *user)
            snprintf(actor, sizeof actor, "cli:%.60s", user);
        else
            snprintf(actor, sizeof actor, "cli:uid%u", (unsigned)getuid());
        rc = fp_store_clock_confirm(s, actor, &err);
        if (rc < 0)
            cli_fail("无法确认时钟", "cannot confirm the clock", err.msg);
    }
    int64_t mark = 0, confirmed = 0;
    if (rc == 0 && (rc = fp_store_clock_get(s, &mark, &confirmed, &err)) < 0)
        cli_fail("无法读取开票时钟", "cannot read the issue clock", err.msg);
    if (rc == 0) {
        char m[40], n[40], c[40];
        int64_t now = (int64_t)time(NULL);
        cst(mark, m);
        cst(now, n);
        cst(confirmed, c);
        int zh = cli_zh();
        printf(zh ? "最近开票时间（水位）: %s\n当前时钟:             %s\n最近确认:             %s\n"
                  : "last issue time (mark): %s\nclock now:              %s\nlast confirmed:       "
                    "  %s\n",
               m, n, c);
        if (mark && now < mark)
            printf(zh ? "时钟落后水位 %lld 秒：超过 60 秒时开票返回 503 CLOCK_BEHIND\n"
                      : "the clock is %lld s behind the mark: beyond 60 s issuing answers 503 "
                        "CLOCK_BEHIND\n",
                   (long long)(mark - now));
        if (confirm)
            printf(zh ? "已确认当前时钟，开票恢复\n" : "the clock is confirmed; issuing resumes\n");
    }
    fp_store_close(s);
    return rc < 0 ? 1 : 0;
}
