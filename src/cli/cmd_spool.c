/* cmd_spool.c — the offline spool from the command line
 * (include/fapiao-client/spool.h, docs/client.md):
 *   fapiao issue … --spool DIR        store first ("queued"), then deliver
 *   fapiao spool status|list|drain|cancel SERIAL|retry SERIAL --spool DIR
 * `spool drain` is the sender: it delivers in order until the spool is
 * empty or the server cannot be reached, drawing a progress bar. */
#include "cli.h"
#include "client_cli.h"
#include "fapiao-client/spool.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char spool_usage[] =
    "usage: fapiao spool status|list|drain|cancel SERIAL|retry SERIAL --spool DIR [--json]\n"
    "  status   counts by state (queued, sending, issued, failed, cancelled)\n"
    "  list     the rows in order [--state S]\n"
    "  drain    deliver queued rows in order (--server, --credential as for issue)\n"
    "  cancel   a queued row that was never sent\n"
    "  retry    a failed (or cancelled) row, once the cause is fixed\n"
    "  离线队列：status 各状态数量，list 列出，drain 按顺序发送，cancel 取消未发送的，\n"
    "  retry 在原因排除后重新发送失败的。\n";

static fpc_spool *open_spool(const char *dir)
{
    fpc_spool *s = NULL;
    fpc_error e;
    if (fpc_spool_open(dir, &s, &e) < 0) {
        cli_error(e.message_zh, e.message);
        return NULL;
    }
    return s;
}

static cJSON *item_json(const fpc_spool_item *it)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seq", (double)it->seq);
    cJSON_AddStringToObject(o, "serial", it->serial);
    cJSON_AddStringToObject(o, "state", fpc_spool_state_name(it->state));
    cJSON_AddNumberToObject(o, "attempts", it->attempts);
    if (it->number[0])
        cJSON_AddStringToObject(o, "number", it->number);
    if (it->code[0]) {
        cJSON_AddStringToObject(o, "code", it->code);
        cJSON_AddStringToObject(o, "finding", it->finding);
        cJSON_AddStringToObject(o, "message", it->message);
    }
    return o;
}

static int list_one(const fpc_spool_item *it, void *arg)
{
    if (*(int *)arg)
        cli_client_print_json(item_json(it));
    else
        printf("%-8lld %-32s %-9s %s%s\n", it->seq, it->serial, fpc_spool_state_name(it->state),
               it->number[0] ? it->number : it->code, it->finding[0] ? " " : "");
    return 0;
}

typedef struct drain_view {
    long total, done, ok, failed;
    int json;
} drain_view;

static void drained_one(const fpc_spool_item *it, void *arg)
{
    drain_view *v = arg;
    v->done++;
    *(it->state == FPC_SPOOL_ISSUED ? &v->ok : &v->failed) += 1;
    if (v->json)
        cli_client_print_json(item_json(it));
    cli_client_progress(v->done, v->total, v->ok, v->failed);
}

/* The sender: every queued row through a client for a's flags. */
static int drain(fpc_spool *s, const client_args *a)
{
    cJSON *cred = NULL;
    fpc_client *c = cli_client_open(a, &cred);
    if (!c)
        return 2;
    long long n[FPC_SPOOL_NSTATES];
    fpc_error e = {0};
    drain_view v = {.json = a->json};
    if (fpc_spool_counts(s, n, &e) == 0)
        v.total = (long)(n[FPC_SPOOL_QUEUED] + n[FPC_SPOOL_SENDING]);
    int rc = fpc_spool_drain(s, c, 0, drained_one, &v, &e);
    if (v.total > 0 && !a->json)
        fputc('\n', stderr);
    fpc_client_free(c);
    cJSON_Delete(cred);
    if (rc < 0 && !a->json)
        cli_client_print_error(&e);
    long left = v.total - v.done;
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *sum = cJSON_AddObjectToObject(o, "summary");
        cJSON_AddNumberToObject(sum, "issued", (double)v.ok);
        cJSON_AddNumberToObject(sum, "failed", (double)v.failed);
        cJSON_AddNumberToObject(sum, "waiting", (double)left);
        if (rc < 0)
            cJSON_AddStringToObject(sum, "stopped", e.code);
        cli_client_print_json(o);
    } else if (cli_zh()) {
        printf("已发送 %ld：开具 %ld，失败 %ld；仍在队列 %ld\n", v.done, v.ok, v.failed, left);
    } else {
        printf("delivered %ld: issued %ld, failed %ld; still queued %ld\n", v.done, v.ok, v.failed,
               left);
    }
    return rc < 0 ? cli_client_exit(rc) : v.failed ? 3 : 0;
}

static int status(fpc_spool *s, int json)
{
    long long n[FPC_SPOOL_NSTATES];
    fpc_error e;
    if (fpc_spool_counts(s, n, &e) < 0) {
        cli_client_print_error(&e);
        return 1;
    }
    cJSON *o = json ? cJSON_CreateObject() : NULL;
    for (int k = 0; k < FPC_SPOOL_NSTATES; k++)
        if (json)
            cJSON_AddNumberToObject(o, fpc_spool_state_name((fpc_spool_state)k), (double)n[k]);
        else
            printf("%-10s %lld\n", fpc_spool_state_name((fpc_spool_state)k), n[k]);
    if (json)
        cli_client_print_json(o);
    return 0;
}

static int state_arg(const char *name)
{
    for (int k = 0; name && k < FPC_SPOOL_NSTATES; k++)
        if (strcmp(name, fpc_spool_state_name((fpc_spool_state)k)) == 0)
            return k;
    return name ? -2 : -1;
}

int cmd_spool(int argc, char **argv)
{
    client_args a;
    char usage[4096];
    snprintf(usage, sizeof usage, "%s%s", spool_usage, cli_client_usage);
    if (cli_client_args(argc, argv, &a, usage, 0) < 0 || cli_require(a.spool, "--spool", usage))
        return 2;
    const char *cmd = a.npos ? a.pos[0] : "";
    int needs_serial = strcmp(cmd, "cancel") == 0 || strcmp(cmd, "retry") == 0;
    int state = state_arg(a.state);
    if (a.npos != 1 + needs_serial || state == -2 ||
        (strcmp(cmd, "drain") == 0 && (cli_require(a.server, "--server", usage) < 0 ||
                                       cli_require(a.credential, "--credential", usage) < 0))) {
        cli_error("参数错误", "bad arguments");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    fpc_spool *s = open_spool(a.spool);
    if (!s)
        return 1;
    int code = 2;
    fpc_error e;
    if (strcmp(cmd, "status") == 0)
        code = status(s, a.json);
    else if (strcmp(cmd, "list") == 0)
        code = fpc_spool_list(s, state, 0, list_one, &a.json, &e) < 0 ? 1 : 0;
    else if (strcmp(cmd, "drain") == 0)
        code = drain(s, &a);
    else if (needs_serial) {
        int rc =
            cmd[0] == 'c' ? fpc_spool_cancel(s, a.pos[1], &e) : fpc_spool_retry(s, a.pos[1], &e);
        if (rc < 0)
            cli_client_print_error(&e);
        code = rc < 0 ? cli_client_exit(rc) : 0;
    } else {
        cli_error("未知的 spool 子命令", "unknown spool subcommand");
        fprintf(stderr, "%s", usage);
    }
    fpc_spool_close(s);
    return code;
}

/* `fapiao issue … --spool DIR`: the request (or every batch line) stored
 * first, "queued" answered, then a drain through the server given. */
int cli_spool_issue(const client_args *a)
{
    fpc_spool *s = open_spool(a->spool);
    if (!s)
        return 1;
    fpc_error e;
    int rc = 0;
    long queued = 0;
    if (a->batch) {
        FILE *f = fopen(a->batch, "r");
        char *line = NULL;
        size_t cap = 0;
        while (f && rc == 0 && getline(&line, &cap, f) > 0) {
            cJSON *doc = cJSON_Parse(line);
            const cJSON *serial = cJSON_GetObjectItemCaseSensitive(doc, "serial");
            char *body = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "invoice"));
            if (cJSON_IsString(serial) && body)
                rc = fpc_spool_submit(s, serial->valuestring, body, strlen(body), &e);
            queued += cJSON_IsString(serial) && body && rc == 0;
            free(body);
            cJSON_Delete(doc);
        }
        free(line);
        if (!f)
            cli_error("无法读取批量文件", "cannot read the batch file");
        else
            fclose(f);
    } else {
        size_t len = 0;
        char *doc = cli_client_read(a->pos[0], &len);
        rc = doc ? fpc_spool_submit(s, a->serial, doc, len, &e) : FPC_EINVAL;
        queued += rc == 0;
        free(doc);
    }
    if (rc < 0 && rc != FPC_EINVAL)
        cli_client_print_error(&e);
    if (!a->json)
        printf("%s %ld\n", cli_zh() ? "已入队" : "queued", queued);
    int code = rc < 0 ? cli_client_exit(rc) : 0;
    /* without --server only stored: `fapiao spool drain` delivers; an
     * unreachable server leaves it queued, which is what was asked */
    if (code == 0 && a->server && a->credential && drain(s, a) == 3)
        code = 3;
    fpc_spool_close(s);
    return code;
}
