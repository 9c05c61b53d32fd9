/* cmd_serve.c — `fapiao serve --data-dir DIR [--listen HOST:PORT]`: opens
 * the store, starts the HTTPS server, and stops both cleanly on SIGINT or
 * SIGTERM (queued invoices are committed and answered first). */
#include "cli.h"
#include "fapiao/auth.h"
#include "fapiao/server.h"
#include "fapiao/store.h"
#include "fapiao/taxcode.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const char usage[] =
    "usage: fapiao serve --data-dir DIR [--listen HOST:PORT] [--threads N]\n"
    "                    [--token-ttl SECONDS] [--max-body BYTES]\n"
    "                    [--access-log FILE|-|off] [--tax-codes FILE] [--range-warn N]\n"
    "  Defaults: --listen 127.0.0.1:8443, --threads = CPUs, --token-ttl 3600,\n"
    "  --max-body 1048576, --access-log DIR/access.log, --tax-codes DIR/taxcodes.csv,\n"
    "  --range-warn 1000 (numbers left below which /readyz warns)\n"
    "  启动 HTTPS 开票服务；SIGINT/SIGTERM 时先提交并答复已排队的请求再退出。\n";

static int parse_listen(const char *s, char *host, size_t hcap, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        snprintf(host, hcap, "%.*s", (int)(end - s - 1), s + 1);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        snprintf(host, hcap, "%.*s", (int)(colon - s), s);
    }
    char *e;
    long p = strtol(colon + 1, &e, 10);
    if (*e || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    const char *dir = NULL, *listen = "127.0.0.1:8443", *threads = NULL, *ttl = NULL;
    const char *max_body = NULL, *access_log = NULL, *codes_path = NULL, *range_warn = NULL;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--listen", 0, &listen, NULL},
        {"--threads", 0, &threads, NULL},
        {"--token-ttl", 0, &ttl, NULL},
        {"--max-body", 0, &max_body, NULL},
        {"--access-log", 0, &access_log, NULL},
        {"--tax-codes", 0, &codes_path, NULL},
        {"--range-warn", 0, &range_warn, NULL},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    fp_server_opts so = {0};
    if (parse_listen(listen, so.host, sizeof so.host, &so.port) < 0) {
        cli_error("--listen 格式应为 HOST:PORT，例如 127.0.0.1:8443",
                  "--listen must be HOST:PORT, e.g. 127.0.0.1:8443");
        return 2;
    }
    long v;
    if (threads) {
        if (parse_int(threads, 1, 256, &v) < 0) {
            cli_error("--threads 须为 1–256", "--threads must be 1-256");
            return 2;
        }
        so.threads = (int)v;
    }
    if (ttl) {
        if (parse_int(ttl, 1, 86400, &v) < 0) {
            cli_error("--token-ttl 须为 1–86400 秒", "--token-ttl must be 1-86400 seconds");
            return 2;
        }
        so.token_ttl = (int)v;
    }
    if (max_body) {
        if (parse_int(max_body, 1024, 64L << 20, &v) < 0) {
            cli_error("--max-body 须为 1024 到 64 MiB", "--max-body must be 1024 bytes to 64 MiB");
            return 2;
        }
        so.max_body = (size_t)v;
    }
    if (range_warn) {
        if (parse_int(range_warn, 1, 2000000000L, &v) < 0) {
            cli_error("--range-warn 须为正整数", "--range-warn must be a positive integer");
            return 2;
        }
        so.range_warn = v;
    }
    char db[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], tkey[PATH_MAX], tc[PATH_MAX], alog[PATH_MAX];
    snprintf(db, sizeof db, "%s/fapiao.db", dir);
    snprintf(crt, sizeof crt, "%s/tls/server.crt", dir);
    snprintf(key, sizeof key, "%s/tls/server.key", dir);
    snprintf(tkey, sizeof tkey, "%s/token.key", dir);
    snprintf(tc, sizeof tc, "%s/taxcodes.csv", dir);
    snprintf(alog, sizeof alog, "%s/access.log", dir);
    if (access(db, F_OK) != 0) {
        char zh[PATH_MAX + 128], en[PATH_MAX + 128];
        snprintf(zh, sizeof zh,
                 "%s 不是数据目录（没有 fapiao.db）；先运行 fapiao init --data-dir %s", dir, dir);
        snprintf(en, sizeof en,
                 "%s is not a data directory (no fapiao.db); run fapiao init --data-dir %s first",
                 dir, dir);
        cli_error(zh, en);
        return 1;
    }
    /* One server per data directory: the store's single writer assigns
     * numbers from memory, so a second process must not write beside it.
     * The lock lives as long as the process (released by the kernel even on
     * kill -9). */
    char lockp[PATH_MAX];
    snprintf(lockp, sizeof lockp, "%s/fapiao.lock", dir);
    int lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
        char zh[PATH_MAX + 128], en[PATH_MAX + 128];
        snprintf(zh, sizeof zh, "另一个 fapiao serve 正在使用数据目录 %s", dir);
        snprintf(en, sizeof en, "another fapiao serve is using the data directory %s", dir);
        cli_error(zh, en);
        if (lockfd >= 0)
            close(lockfd);
        return 1;
    }
    unsigned char token_key[FP_TOKEN_KEY_LEN];
    int fd = open(tkey, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, token_key, sizeof token_key) != (ssize_t)sizeof token_key) {
        if (fd >= 0)
            close(fd);
        cli_error("无法读取令牌签名密钥 token.key", "cannot read the token signing key token.key");
        return 1;
    }
    close(fd);

    fp_err err = {0};
    fp_taxcode_table *codes = NULL;
    if (fp_taxcode_load(codes_path ? codes_path : tc, &codes, &err) < 0) {
        cli_fail("无法加载税收分类编码表", "cannot load the tax code table", err.msg);
        return 1;
    }

    /* Signals are taken by sigwait below; block them before any thread
     * starts so that no worker thread receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    fp_store *store = NULL;
    fp_store_opts sto = {.path = db};
    if (fp_store_open(&sto, &store, &err) < 0) {
        cli_fail("无法打开数据库", "cannot open the database", err.msg);
        fp_taxcode_free(codes);
        return 1;
    }
    so.cert_path = crt;
    so.key_path = key;
    so.token_key = token_key;
    so.access_log = access_log ? access_log : alog;
    so.store = store;
    so.codes = codes;
    fp_server *srv = NULL;
    if (fp_server_start(&so, &srv, &err) < 0) {
        cli_fail("无法启动 HTTPS 服务", "cannot start the HTTPS server", err.msg);
        fp_store_close(store);
        fp_taxcode_free(codes);
        return 1;
    }
    int port = fp_server_port(srv);
    fprintf(stderr, "fapiao: 正在监听 / listening on https://%s%s%s:%d (data %s, %d tax codes)\n",
            strchr(so.host, ':') ? "[" : "", so.host, strchr(so.host, ':') ? "]" : "", port, dir,
            fp_taxcode_count(codes));

    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "fapiao: 收到信号 %d，正在停止 / signal %d, stopping\n", sig, sig);
    fp_server_stop(srv);
    fp_store_close(store);
    fp_taxcode_free(codes);
    fprintf(stderr, "fapiao: 已停止 / stopped\n");
    return 0;
}
