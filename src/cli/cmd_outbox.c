/* cmd_outbox.c — `fapiao outbox list|redrive` (the jobs that render PDFs
 * and deliver webhooks, dead letters among them) and `fapiao webhook
 * set|show|remove` (a client's callback URL and signing secret).  Both work
 * on the data directory while a server runs: its job threads look for due
 * jobs at least once a second and read a client's webhook before every
 * delivery. */
#include "cli.h"
#include "fapiao/clock.h"
#include "fapiao/jobs.h"
#include "fapiao/json.h"
#include "fapiao/store.h"
#include "fapiao/webhook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char outbox_usage[] =
    "usage: fapiao outbox list --data-dir DIR [--state blocked|pending|running|done|dead]\n"
    "                          [--limit N] [--json]\n"
    "       fapiao outbox redrive --data-dir DIR (--job ID | --all-dead)\n"
    "  Lists the jobs that render PDFs and deliver webhooks (newest first), or runs dead\n"
    "  jobs again (attempts and retry period start over).\n"
    "  列出生成 PDF 与推送通知的任务（死信任务用 --state dead），或重新投递死信任务。\n";

static const char webhook_usage[] =
    "usage: fapiao webhook set --data-dir DIR --client-id ID --url URL [--secret S]\n"
    "                          [--allow-private]\n"
    "       fapiao webhook show --data-dir DIR --client-id ID\n"
    "       fapiao webhook remove --data-dir DIR --client-id ID\n"
    "  set prints the signing secret once (a new one unless --secret is given); events are\n"
    "  POSTed to URL signed with it (docs/webhooks.md).  A URL whose host is a\n"
    "  loopback, private, link-local or metadata IP address is refused unless\n"
    "  --allow-private is given (the server must then run with\n"
    "  --allow-private-webhooks too; docs/security.md).\n"
    "  设置、查看或删除客户端的回调地址；set 仅显示一次签名密钥。回环、内网、链路本地或\n"
    "  云元数据地址须加 --allow-private（服务端也须 --allow-private-webhooks）。\n";

static void time_text(int64_t ms, char *out, size_t cap)
{
    if (!ms) {
        snprintf(out, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000) + FP_CST_OFFSET_S;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

typedef struct list_out {
    int json, n;
    fp_jw *w;
} list_out;

static void print_job(const fp_job *j, void *arg)
{
    list_out *o = arg;
    o->n++;
    if (o->json) {
        fp_jw *w = o->w;
        fp_jw_obj_open(w);
        fp_jw_kint(w, "id", j->id);
        fp_jw_kstr(w, "invoice_number", j->invoice_number);
        fp_jw_kstr(w, "kind", fp_job_kind_name(j->kind));
        fp_jw_kstr(w, "state", fp_job_state_name(j->state));
        fp_jw_kstr(w, "event", j->event[0] ? j->event : NULL);
        fp_jw_kint(w, "attempts", j->attempts);
        fp_jw_kint(w, "next_at_ms", j->next_at);
        fp_jw_kstr(w, "last_error", j->last_error[0] ? j->last_error : NULL);
        fp_jw_obj_close(w);
        return;
    }
    char next[32];
    time_text(j->next_at, next, sizeof next);
    printf("%-8lld %-20s %-6s %-8s %3d  %-19s  %s\n", (long long)j->id, j->invoice_number,
           fp_job_kind_name(j->kind), fp_job_state_name(j->state), j->attempts, next,
           j->last_error);
}

static int outbox_list(fp_store *s, const char *state_s, long long limit, int json)
{
    int state = -1;
    if (state_s && (state = fp_job_state_from_name(state_s)) < 0) {
        cli_error("--state 须为 blocked、pending、running、done 或 dead",
                  "--state must be blocked, pending, running, done or dead");
        return 2;
    }
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 0);
    fp_jw_init(&w, &b);
    list_out o = {json, 0, &w};
    if (json)
        fp_jw_arr_open(&w);
    else
        printf("%-8s %-20s %-6s %-8s %3s  %-19s  %s\n", "ID", cli_zh() ? "发票号码" : "INVOICE",
               "KIND", "STATE", "TRY", cli_zh() ? "下次（北京时间）" : "NEXT (CST)",
               cli_zh() ? "最近错误" : "LAST ERROR");
    fp_err err = {0};
    if (fp_jobs_list(s, 0, state, 0, (int)limit, print_job, &o, &err) < 0) {
        fp_buf_free(&b);
        cli_fail("无法读取任务", "cannot read the jobs", err.msg);
        return 1;
    }
    if (json) {
        fp_jw_arr_close(&w);
        printf("%s\n", b.p);
    }
    fp_buf_free(&b);
    return 0;
}

typedef struct dead_ids {
    int64_t *ids;
    int n, cap;
} dead_ids;

static void collect(const fp_job *j, void *arg)
{
    dead_ids *d = arg;
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 64;
        int64_t *p = realloc(d->ids, (size_t)cap * sizeof *p);
        if (!p)
            return;
        d->ids = p;
        d->cap = cap;
    }
    d->ids[d->n++] = j->id;
}

static int redrive_one(fp_store *s, int64_t id)
{
    fp_err err = {0};
    if (fp_jobs_redrive(s, 0, id, "cli", "", NULL, "", &err) < 0) {
        fprintf(stderr, "fapiao: %s %lld: %s\n",
                cli_zh() ? "无法重新投递任务" : "cannot re-drive job", (long long)id, err.msg);
        return -1;
    }
    printf("%s %lld\n", cli_zh() ? "已重新投递任务" : "re-driven job", (long long)id);
    return 0;
}

int cmd_outbox(int argc, char **argv)
{
    static const char *const subs[] = {"list", "redrive"};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "outbox", subs, outbox_usage, &rc);
    if (sub < 0)
        return rc;
    const char *dir = NULL, *state = NULL, *limit = NULL, *job = NULL;
    int json = 0, all_dead = 0;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL}, {"--state", 0, &state, NULL},
        {"--limit", 0, &limit, NULL},  {"--json", 1, NULL, &json},
        {"--job", 0, &job, NULL},      {"--all-dead", 1, NULL, &all_dead},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc - 1, argv + 1, flags, outbox_usage) < 0 ||
        cli_require(dir, "--data-dir", outbox_usage) < 0)
        return 2;
    long long id = 0, nlimit = 100;
    if (sub == 1 && (!job) == (!all_dead)) {
        cli_error("redrive 需要 --job ID（正整数）或 --all-dead 之一",
                  "redrive needs one of --job ID (a positive integer) or --all-dead");
        return 2;
    }
    if (cli_number(job, "--job", 1, INT64_MAX, &id, outbox_usage) < 0 ||
        cli_number(limit, "--limit", 1, 100000, &nlimit, outbox_usage) < 0)
        return 2;
    fp_store *s = sub == 0 ? cli_open_store_ro(dir) : cli_open_store(dir);
    if (!s)
        return 1;
    rc = 0;
    if (sub == 0) {
        rc = outbox_list(s, state, nlimit, json);
    } else if (job) {
        rc = redrive_one(s, id) < 0;
    } else {
        dead_ids d = {0};
        fp_err err = {0};
        if (fp_jobs_list(s, 0, FP_JS_DEAD, 0, 1000000, collect, &d, &err) < 0) {
            cli_fail("无法读取任务", "cannot read the jobs", err.msg);
            rc = 1;
        }
        for (int i = 0; i < d.n; i++)
            rc |= redrive_one(s, d.ids[i]) < 0;
        if (!rc && d.n == 0)
            printf("%s\n", cli_zh() ? "没有死信任务" : "no dead jobs");
        free(d.ids);
    }
    fp_store_close(s);
    return rc;
}

int cmd_webhook(int argc, char **argv)
{
    static const char *const subs[] = {"set", "show", "remove"};
    int rc, sub = CLI_SUBCOMMAND(argc, argv, "webhook", subs, webhook_usage, &rc);
    if (sub < 0)
        return rc;
    const char *dir = NULL, *client = NULL, *url = NULL, *secret = NULL;
    int allow_private = 0;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--client-id", 0, &client, NULL},
        {"--url", 0, &url, NULL},
        {"--secret", 0, &secret, NULL},
        {"--allow-private", 1, NULL, &allow_private},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc - 1, argv + 1, flags, webhook_usage) < 0 ||
        cli_require(dir, "--data-dir", webhook_usage) < 0 ||
        cli_require(client, "--client-id", webhook_usage) < 0)
        return 2;
    int set = sub == 0;
    if (set && cli_require(url, "--url", webhook_usage) < 0)
        return 2;
    if (set && !fp_webhook_url_ok(url)) {
        cli_error("--url 须为 http:// 或 https:// 地址",
                  "--url must be an http:// or https:// URL");
        return 2;
    }
    const char *cls = set && !allow_private ? fp_webhook_url_class(url) : NULL;
    if (cls) {
        char zh[160], en[200];
        snprintf(zh, sizeof zh,
                 "--url 的地址属于%s地址，默认不允许（确需如此请加 --allow-private）",
                 fp_webhook_class_zh(cls));
        snprintf(en, sizeof en,
                 "--url points to a %s address, refused by default (add --allow-private if "
                 "intended)",
                 cls);
        cli_error(zh, en);
        return 2;
    }
    if (set && secret && strlen(secret) < 16) {
        cli_error("--secret 至少 16 个字符", "--secret must be at least 16 characters");
        return 2;
    }
    fp_store *s = cli_open_store(dir);
    if (!s)
        return 1;
    fp_err err = {0};
    rc = 0;
    if (sub == 1) {
        char u[2048], sec[128];
        if (fp_store_webhook_get(s, client, u, sizeof u, sec, sizeof sec) < 0) {
            cli_fail("无法读取客户端", "cannot read the client", client);
            rc = 1;
        } else if (!u[0]) {
            printf("%s\n", cli_zh() ? "未设置回调地址" : "no webhook");
        } else {
            /* the secret's prefix only: enough to tell which one it is */
            printf("url: %s\nsecret: %.10s…\n", u, sec);
        }
    } else {
        char gen[64];
        if (set && !secret) {
            if (fp_webhook_secret_generate(gen) < 0) {
                cli_error("无法生成随机密钥", "cannot generate a random secret");
                fp_store_close(s);
                return 1;
            }
            secret = gen;
        }
        char actor[80];
        fp_audit_rec a = set ? cli_audit_rec(actor, "webhook.set", NULL, url)
                             : cli_audit_rec(actor, "webhook.remove", NULL, "ok");
        if (fp_store_webhook_set(s, client, set ? url : NULL, set ? secret : NULL, &a, &err) < 0) {
            cli_fail("无法保存回调地址", "cannot store the webhook", err.msg);
            rc = 1;
        } else if (set) {
            printf("url: %s\nsecret: %s\n%s\n", url, secret,
                   cli_zh() ? "（密钥只显示这一次；请保存在接收方用于验签）"
                            : "(shown only now: keep it at the receiver to verify signatures)");
        } else {
            printf("%s\n", cli_zh() ? "已删除回调地址" : "webhook removed");
        }
    }
    fp_store_close(s);
    return rc;
}
