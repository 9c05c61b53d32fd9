/* cmd_doctor.c — `fapiao doctor <url>`: the layered connection diagnosis
 * (src/doctor/), printed as a readable report or --json, exiting with the
 * verdict's stable code (0 healthy, 10 local … 60 api; 2 usage). */
#include "cli.h"
#include "fapiao/doctor.h"
#include "fapiao/kb.h"
#include "upstream_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: fapiao doctor <url> [--json] [--timeout S] [--dns-server IP[:port]] [--cacert FILE]\n"
    "                     [--token T | --client-id ID --client-secret S]\n"
    "                     [--resolve host:port:addr] [--ipv4 | --ipv6] [--proxy URL]\n"
    "                     [--expect-address IP[,IP…]] [--trusted-dns IP[:port]] [--pac FILE]\n"
    "                     [--expect-issuer TEXT] [--pin sha256//B64]\n"
    "                     [--tls-max 1.0|1.1|1.2|1.3 | --tls-priority GNUTLS-PRIORITY]\n"
    "       fapiao doctor --upstream [--config FILE] [--json] [--timeout S]\n"
    "  Checks local setup, DNS, TCP, TLS, HTTP and the API in order and names the first\n"
    "  failing layer with its cause, fix and knowledge-base article.\n"
    "  --upstream: the tax platform of the config file's [upstream] section, its last\n"
    "  step one harmless query (CXKYSL) through the SM4 envelope (docs/upstream.md).\n"
    "  exit: 0 healthy, 10 local, 20 dns, 30 tcp, 40 tls, 50 http, 60 api, 2 usage.\n"
    "  逐层诊断到开票服务器的连接（代理、DNS、TCP、TLS、HTTP、API），给出第一个失败层的\n"
    "  原因、解决办法和知识库文章。\n";

/* Takes the URL (the first argument not starting with '-' and not a flag's
 * value) out of argv: the rest, argv[0] first, into rest; returns their
 * count. */
static int split_url(int argc, char **argv, const char **url, char **rest)
{
    static const char *const valued[] = {"--timeout",
                                         "--dns-server",
                                         "--cacert",
                                         "--token",
                                         "--client-id",
                                         "--client-secret",
                                         "--resolve",
                                         "--config",
                                         "--expect-issuer",
                                         "--pin",
                                         "--tls-max",
                                         "--tls-priority",
                                         "--proxy",
                                         "--expect-address",
                                         "--trusted-dns",
                                         "--pac",
                                         NULL};
    int n = 0;
    rest[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' && !*url) {
            *url = argv[i];
            continue;
        }
        rest[n++] = argv[i];
        for (int k = 0; valued[k]; k++)
            if (strcmp(argv[i], valued[k]) == 0 && i + 1 < argc) {
                rest[n++] = argv[++i]; /* its value, even if it looks like a URL */
                break;
            }
    }
    return n;
}

int cmd_doctor(int argc, char **argv)
{
    const char *url = NULL, *timeout = NULL, *dns = NULL, *cacert = NULL, *token = NULL,
               *cid = NULL, *csec = NULL, *resolve = NULL, *config = NULL, *issuer = NULL,
               *pin = NULL, *tls_max = NULL, *tls_prio = NULL, *proxy = NULL, *expect = NULL,
               *trusted = NULL, *pac = NULL;
    int json = 0, v4 = 0, v6 = 0, upstream = 0;
    /* the URL is the one positional argument; the rest are flags */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return 2;
    int n = split_url(argc, argv, &url, rest);
    const cli_flag flags[] = {
        {"--json", 1, NULL, &json},
        {"--timeout", 0, &timeout, NULL},
        {"--dns-server", 0, &dns, NULL},
        {"--cacert", 0, &cacert, NULL},
        {"--token", 0, &token, NULL},
        {"--client-id", 0, &cid, NULL},
        {"--client-secret", 0, &csec, NULL},
        {"--resolve", 0, &resolve, NULL},
        {"--ipv4", 1, NULL, &v4},
        {"--ipv6", 1, NULL, &v6},
        {"--upstream", 1, NULL, &upstream},
        {"--config", 0, &config, NULL},
        {"--expect-issuer", 0, &issuer, NULL},
        {"--pin", 0, &pin, NULL},
        {"--tls-max", 0, &tls_max, NULL},
        {"--tls-priority", 0, &tls_prio, NULL},
        {"--proxy", 0, &proxy, NULL},
        {"--expect-address", 0, &expect, NULL},
        {"--trusted-dns", 0, &trusted, NULL},
        {"--pac", 0, &pac, NULL},
        {NULL, 0, NULL, NULL},
    };
    int rc = cli_parse(n, rest, flags, usage);
    free(rest);
    if (rc < 0)
        return 2;
    if (!url && !upstream) {
        cli_error("缺少 URL", "a URL is required");
        fprintf(stderr, "%s", usage);
        return 2;
    }
    double t = 5;
    if (timeout) {
        char *end;
        t = strtod(timeout, &end);
        if (*end || end == timeout || !(t > 0) || t > 600) {
            cli_error("--timeout 须为 0 到 600 之间的秒数",
                      "--timeout must be seconds in (0, 600]");
            return 2;
        }
    }
    if ((cid != NULL) != (csec != NULL)) {
        cli_error("--client-id 与 --client-secret 须同时给出",
                  "--client-id and --client-secret go together");
        return 2;
    }
    if (token && cid) {
        cli_error("--token 与 --client-id 只能二选一", "give either --token or --client-id");
        return 2;
    }
    if (v4 && v6) {
        cli_error("--ipv4 与 --ipv6 只能二选一", "give either --ipv4 or --ipv6");
        return 2;
    }
    int tmax = 0; /* "1.2" -> 12; the doctor refuses other numbers */
    if (tls_max && (strlen(tls_max) != 3 || strncmp(tls_max, "1.", 2) != 0 ||
                    (tmax = 10 + tls_max[2] - '0') < 10 || tmax > 13)) {
        cli_error("--tls-max 须为 1.0、1.1、1.2 或 1.3", "--tls-max wants 1.0, 1.1, 1.2 or 1.3");
        return 2;
    }
    upstream_conf u = {0};
    if (upstream && (upstream_conf_read(config, &u) || !u.configured)) {
        if (!u.configured)
            cli_error("配置文件中没有 [upstream] 节的 url",
                      "the config file has no [upstream] url");
        upstream_conf_free(&u);
        return 2;
    }
    if (upstream && !url)
        url = u.c.url;
    if (upstream && !cacert)
        cacert = u.c.ca_file;
    fp_doctor_opts o = {.url = url,
                        .timeout_ms = (int)(t * 1000),
                        .dns_server = dns,
                        .cacert = cacert,
                        .token = token,
                        .client_id = cid,
                        .client_secret = csec,
                        .resolve = resolve,
                        .family = v4   ? 4
                                  : v6 ? 6
                                       : 0,
                        .upstream = upstream ? &u.c : NULL,
                        .expect_issuer = issuer,
                        .pin = pin,
                        .tls_max = tmax,
                        .tls_priority = tls_prio,
                        .proxy = proxy,
                        .expect_address = expect,
                        .trusted_dns = trusted,
                        .pac = pac};
    if (o.timeout_ms < 1)
        o.timeout_ms = 1;
    fp_doctor_report *r = NULL;
    fp_err err = {0};
    rc = fp_doctor_run(&o, &r, &err);
    upstream_conf_free(&u);
    if (rc < 0) {
        cli_fail("无法诊断", "cannot diagnose", err.msg);
        return 2;
    }
    const char *dir = cli_kb_dir();
    /* only the verdict's article is printed: index just that one */
    fp_kb *kb = NULL;
    if (fp_kb_load_one(dir, fp_doctor_verdict_code(r), &kb, NULL) < 0)
        kb = NULL;
    int zh = cli_zh();
    if (json) {
        char *s = fp_doctor_json(r, kb, zh);
        if (s) {
            printf("%s\n", s);
            free(s);
        }
    } else {
        int color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
        fp_doctor_print(r, kb, stdout, color, zh);
    }
    int code = fp_doctor_exit_code(r);
    fp_kb_free(kb);
    fp_doctor_report_free(r);
    return code;
}
