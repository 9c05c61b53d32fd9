/* client_cli.c — what the client commands share (client_cli.h): their
 * flags, the credential file, the libfapiao-client handle with the doctor
 * as its diagnose hook, and how an outcome is printed (docs/client.md). */
#include "cli.h"
#include "client_cli.h"
#include "fapiao-client/client.h"
#include "fapiao-client/doctor.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cli_client_usage[] =
    "  --server URL[,URL…]   the server's base URLs, tried in order with failover\n"
    "                        (default $FAPIAO_SERVER)\n"
    "  --credential FILE     JSON {client_id, client_secret[, ca_cert]}: `fapiao init --json`\n"
    "                        or `fapiao keys create --json` output (default $FAPIAO_CREDENTIAL)\n"
    "  --cacert FILE         the CA to trust (default: the credential's ca_cert, else the system)\n"
    "  --pin sha256//B64     pin the server's public key\n"
    "  --deadline S          give up after S seconds, retries included (default 120)\n"
    "  --timeouts C,T,F,A    per-phase timeouts in ms: connect, TLS, first byte, attempt\n"
    "                        (default 3000,5000,15000,30000)\n"
    "  --json                machine-readable output\n"
    "  exit: 0 done, 2 usage, 3 refused (fix the request), 4 unavailable (outcome unknown:\n"
    "  run it again with the same serial).  退出码：0 成功，2 用法错误，3 被拒绝（请修正请求），\n"
    "  4 不可用（结果未知：用同一流水号重试）。\n";

/* Flags first (cli_parse), positionals set aside as in cmd_doctor.c. */
int cli_client_args(int argc, char **argv, client_args *a, const char *usage, int need_server)
{
    memset(a, 0, sizeof *a);
    const cli_flag flags[] = {
        {"--server", 0, &a->server, NULL},
        {"--credential", 0, &a->credential, NULL},
        {"--cacert", 0, &a->cacert, NULL},
        {"--pin", 0, &a->pin, NULL},
        {"--deadline", 0, &a->deadline, NULL},
        {"--serial", 0, &a->serial, NULL},
        {"--batch", 0, &a->batch, NULL},
        {"-o", 0, &a->out, NULL},
        {"--spool", 0, &a->spool, NULL},
        {"--state", 0, &a->state, NULL},
        {"--timeouts", 0, &a->timeouts, NULL},
        {"--json", 1, NULL, &a->json},
        {NULL, 0, NULL, NULL},
    };
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return -1;
    int n = 0;
    rest[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
            if (a->npos == 2) {
                cli_error("多余的参数", "too many arguments");
                free(rest);
                return -1;
            }
            a->pos[a->npos++] = argv[i];
            continue;
        }
        rest[n++] = argv[i];
        for (const cli_flag *f = flags; f->name; f++)
            if (!f->is_bool && strcmp(argv[i], f->name) == 0 && i + 1 < argc)
                rest[n++] = argv[++i]; /* its value, whatever it looks like */
    }
    int rc = cli_parse(n, rest, flags, usage);
    free(rest);
    if (rc < 0)
        return -1;
    if (!a->server)
        a->server = getenv("FAPIAO_SERVER");
    if (!a->credential)
        a->credential = getenv("FAPIAO_CREDENTIAL");
    if (need_server && (cli_require(a->server, "--server", usage) < 0 ||
                        cli_require(a->credential, "--credential", usage) < 0))
        return -1;
    return 0;
}

/* a whole file, bounded; NULL with errno */
char *cli_client_read(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 == cap) {
            char *nb = cap < MAX_DOC ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                errno = cap < MAX_DOC ? ENOMEM : EFBIG;
                break;
            }
            buf = nb, cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (f != stdin)
        fclose(f);
    if (buf)
        buf[n] = '\0', *len = n;
    return buf;
}

/* The client for the parsed flags; prints why not and returns NULL. */
/* --timeouts C,T,F,A: four numbers of milliseconds, each as cli_number
 * takes it; -1 after a usage error. */
static int parse_timeouts(const char *s, int ms[4])
{
    const char *p = s;
    for (int n = 0; s && n < 4; n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char part[32];
        long long v = 0;
        if ((n < 3) != (comma != NULL) || len >= sizeof part) {
            cli_error("--timeouts 须为四个毫秒数：连接,TLS,首字节,单次",
                      "--timeouts takes four milliseconds: connect,TLS,first byte,attempt");
            return -1;
        }
        memcpy(part, p, len);
        part[len] = 0;
        if (cli_number(part, "--timeouts", 0, 86400000, &v, NULL) < 0)
            return -1;
        ms[n] = (int)v;
        p = comma + 1;
    }
    return 0;
}

fpc_client *cli_client_open(const client_args *a, cJSON **cred_out)
{
    int ms[4] = {0};
    if (parse_timeouts(a->timeouts, ms) < 0)
        return NULL;
    size_t len;
    char *text = cli_client_read(a->credential, &len);
    cJSON *cred = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cred, "client_id");
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(cred, "client_secret");
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(cred, "ca_cert");
    if (!cJSON_IsString(id) || !cJSON_IsString(secret)) {
        char zh[600], en[600];
        snprintf(zh, sizeof zh, "凭据文件 %s 须为含 client_id 与 client_secret 的 JSON",
                 a->credential);
        snprintf(en, sizeof en,
                 "the credential file %s must be JSON with client_id and client_secret",
                 a->credential);
        cli_error(zh, en);
        cJSON_Delete(cred);
        return NULL;
    }
    double deadline = 120;
    if (a->deadline) {
        char *end;
        deadline = strtod(a->deadline, &end);
        if (*end || end == a->deadline || !(deadline > 0) || deadline > 86400) {
            cli_error("--deadline 须为 0 到 86400 之间的秒数",
                      "--deadline must be seconds in (0, 86400]");
            cJSON_Delete(cred);
            return NULL;
        }
    }
    fpc_opts o = {.servers = a->server,
                  .client_id = id->valuestring,
                  .client_secret = secret->valuestring,
                  .cacert = a->cacert            ? a->cacert
                            : cJSON_IsString(ca) ? ca->valuestring
                                                 : NULL,
                  .pinned_pubkey = a->pin,
                  .deadline_ms = (int)(deadline * 1000),
                  .diagnose = fpc_doctor_diagnose,
                  .user_agent = "fapiao-cli/1"};
    o.connect_timeout_ms = ms[0];
    o.tls_timeout_ms = ms[1];
    o.first_byte_timeout_ms = ms[2];
    o.total_timeout_ms = ms[3];
    fpc_client *c = NULL;
    fpc_error err;
    if (fpc_client_new(&o, &c, &err) < 0) {
        cli_error(err.message_zh, err.message);
        cJSON_Delete(cred);
        return NULL;
    }
    *cred_out = cred; /* o's strings point into it: freed after the client */
    return c;
}

int cli_client_exit(int rc)
{
    return rc == FPC_EREJECTED ? CMD_EXIT_REJECTED : rc == FPC_EINVAL ? 2 : CMD_EXIT_UNAVAILABLE;
}

cJSON *cli_client_error_json(const fpc_error *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", e->code);
    cJSON_AddNumberToObject(o, "status", e->status);
    if (e->finding[0]) {
        cJSON_AddStringToObject(o, "finding", e->finding);
        cJSON_AddStringToObject(o, "article", e->article);
    }
    cJSON_AddBoolToObject(o, "retryable", e->retryable);
    cJSON_AddNumberToObject(o, "attempts", e->attempts);
    cJSON_AddStringToObject(o, "server", e->server);
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "message_zh", e->message_zh);
    return o;
}

void cli_client_print_error(const fpc_error *e)
{
    cli_error(e->message_zh, e->message);
    if (e->finding[0]) {
        char zh[256], en[256];
        snprintf(zh, sizeof zh, "诊断：%s，见 %s（fapiao kb %s）", e->finding, e->article,
                 e->finding);
        snprintf(en, sizeof en, "diagnosis: %s, see %s (fapiao kb %s)", e->finding, e->article,
                 e->finding);
        cli_error(zh, en);
    }
    if (e->retryable)
        cli_error(
            "结果未知：请稍后用同一流水号重试（不会重复开票）",
            "outcome unknown: run it again later with the same serial (it cannot issue twice)");
}
void cli_client_print_json(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

/* "\r[#####.....]  50/100  issued 48  failed 2" on stderr when it is a
 * terminal; nothing otherwise (the summary still comes). */
void cli_client_progress(long done, long total, long ok, long failed)
{
    if (!isatty(STDERR_FILENO) || total <= 0)
        return;
    int width = 30, full = (int)(done * width / total);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < full ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %ld/%ld  %s %ld  %s %ld", bar, done, total,
            cli_zh() ? "成功" : "issued", ok, cli_zh() ? "失败" : "failed", failed);
    fflush(stderr);
}

int cli_client_get(const client_args *a, const char *path, fpc_result *res)
{
    cJSON *cred = NULL;
    fpc_client *c = cli_client_open(a, &cred);
    if (!c)
        return 2;
    fpc_error e;
    int rc = fpc_get(c, path, res, &e), code = 0;
    if (rc < 0) {
        if (a->json)
            cli_client_print_json(cli_client_error_json(&e));
        else
            cli_client_print_error(&e);
        code = cli_client_exit(rc);
        fpc_result_free(res);
    }
    fpc_client_free(c);
    cJSON_Delete(cred);
    return code;
}
