/* cmd_tls.c — `fapiao tls failures`: the server's record of failed TLS
 * handshakes (GET /v1/admin/tls-failures, an operator's credential),
 * printed as a table of client address, reason, count and first/last seen
 * (docs/security.md "Failed handshakes"). */
#include "cli.h"
#include "client_cli.h"
#include "fapiao-client/client.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char usage_head[] =
    "usage: fapiao tls failures --server URL --credential FILE [--json]\n"
    "  The clients whose TLS handshake with the server failed, and why (the client's\n"
    "  alert such as unknown_ca, a TLS 1.0/1.1-only client, a client certificate from\n"
    "  another CA, a close mid-handshake).  Needs an operator's credential.\n"
    "  握手失败的客户端地址及原因（客户端告警如 unknown_ca、仅支持 TLS 1.0/1.1、\n"
    "  其他 CA 签发的客户端证书、握手中途断开）。需要 operator 角色的凭据。\n";

static void fmt_ms(double ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void print_table(const cJSON *doc)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "failures");
    int zh = cli_zh(), n = cJSON_GetArraySize(list);
    if (n == 0) {
        printf("%s\n", zh ? "没有握手失败的记录。" : "No failed handshakes recorded.");
        return;
    }
    printf("%-40s %-22s %8s  %-23s  %s\n", zh ? "地址" : "address", zh ? "原因" : "reason",
           zh ? "次数" : "count", zh ? "首次" : "first seen", zh ? "最近" : "last seen");
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "address"),
                    *r = cJSON_GetObjectItemCaseSensitive(e, "reason"),
                    *c = cJSON_GetObjectItemCaseSensitive(e, "count"),
                    *f = cJSON_GetObjectItemCaseSensitive(e, "first_seen_ms"),
                    *l = cJSON_GetObjectItemCaseSensitive(e, "last_seen_ms");
        char first[40] = "", last[40] = "";
        fmt_ms(cJSON_IsNumber(f) ? f->valuedouble : 0, first, sizeof first);
        fmt_ms(cJSON_IsNumber(l) ? l->valuedouble : 0, last, sizeof last);
        printf("%-40s %-22s %8.0f  %-23s  %s\n", cJSON_IsString(a) ? a->valuestring : "?",
               cJSON_IsString(r) ? r->valuestring : "?", cJSON_IsNumber(c) ? c->valuedouble : 0,
               first, last);
    }
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(doc, "evicted");
    if (cJSON_IsNumber(ev) && ev->valuedouble > 0)
        printf(zh ? "（另有 %.0f 条较早的记录已被新记录替换）\n"
                  : "(%.0f older entries made room for newer ones)\n",
               ev->valuedouble);
}

int cmd_tls(int argc, char **argv)
{
    char usage[4096];
    snprintf(usage, sizeof usage, "%s%s", usage_head, cli_client_usage);
    client_args a;
    if (cli_client_args(argc, argv, &a, usage, 1) < 0)
        return 2;
    if (a.npos != 1 || strcmp(a.pos[0], "failures") != 0) {
        cli_error("须给出子命令 failures", "the subcommand failures is required");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    fpc_result res;
    int code = cli_client_get(&a, "/v1/admin/tls-failures", &res);
    if (code != 0)
        return code;
    if (a.json) {
        fwrite(res.body, 1, res.len, stdout);
        putchar('\n');
    } else {
        cJSON *doc = cJSON_ParseWithLength(res.body, res.len);
        if (doc)
            print_table(doc);
        else
            cli_error("服务器的回答不是 JSON", "the server's answer is not JSON");
        code = doc ? 0 : 1;
        cJSON_Delete(doc);
    }
    fpc_result_free(&res);
    return code;
}
