/* cmd_serve.c — `fapiao serve --data-dir DIR [--listen HOST:PORT]`: opens
 * the store, starts the HTTPS server, and stops both cleanly on SIGINT or
 * SIGTERM (queued invoices are committed and answered first). */
#include "cli.h"
#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/auth.h"
#include "fapiao/health.h"
#include "fapiao/jobs.h"
#include "fapiao/keyfile.h"
#include "fapiao/outbox.h"
#include "fapiao/rbac.h"
#include "fapiao/server.h"
#include "fapiao/store.h"
#include "fapiao/taxcode.h"
#include "fapiao/tls.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: fapiao serve --data-dir DIR [--listen HOST:PORT] [--threads N]\n"
    "                    [--token-ttl SECONDS] [--max-body BYTES]\n"
    "                    [--access-log FILE|-|off] [--access-log-max-mb MB]\n"
    "                    [--tax-codes FILE] [--range-warn N]\n"
    "                    [--auth-fail-rate N[/min]] [--auth-fail-burst N]\n"
    "                    [--auth-record-rate N] [--auth-record-burst N]\n"
    "                    [--outbox-workers N] [--render-timeout SECONDS]\n"
    "                    [--retry-backoff-ms MS] [--webhook-retry-for SECONDS]\n"
    "                    [--webhook-timeout SECONDS] [--probe-interval-ms MS]\n"
    "                    [--min-free-mb MB] [--outbox-min-free-mb MB] [--reserve-mb MB]\n"
    "                    [--slow-write-ms MS] [--write-deadline-ms MS] [--fault-injection]\n"
    "                    [--max-connections N] [--max-connections-per-ip N]\n"
    "                    [--idle-timeout S] [--header-timeout-ms MS] [--body-timeout-ms MS]\n"
    "                    [--handshake-timeout-ms MS] [--trusted-proxy CIDR[,CIDR...]]\n"
    "                    [--client-rate N] [--client-burst N] [--global-rate N]\n"
    "                    [--global-burst N] [--concurrency-max N|off]\n"
    "                    [--cert FILE] [--key FILE] [--key-passphrase-file FILE]\n"
    "                    [--ocsp-response FILE] [--client-ca FILE]\n"
    "                    [--shutdown-grace SECONDS]\n"
    "                    [--response-memory-mb MB] [--send-timeout-ms MS]\n"
    "                    [--allow-private-webhooks]\n"
    "                    [--audit-key FILE] [--checkpoint-sink DIR|cmd:COMMAND]\n"
    "                    [--metrics-listen HOST:PORT] [--metrics-token-file FILE]\n"
    "  Defaults: --listen 127.0.0.1:8443, --threads = CPUs, --token-ttl 3600,\n"
    "  --max-body 1048576, --access-log DIR/access.log, --tax-codes DIR/taxcodes.csv,\n"
    "  --range-warn 1000 (numbers left below which /readyz warns),\n"
    "  --access-log-max-mb 100 (then the log moves to FILE.1 and a new one starts;\n"
    "  0: no cap; SIGHUP reopens FILE for logrotate),\n"
    "  --auth-fail-rate 5 --auth-fail-burst 30 (authentication failures (401, 403)\n"
    "  per second (or N/min: per minute) per client address, an IPv6 one by its\n"
    "  /64; beyond: 429\n"
    "  AUTH_FAILURES_LIMITED, and POST /v1/token is refused before hashing;\n"
    "  0: no limit), --auth-record-rate 10 --auth-record-burst 50 (failures given\n"
    "  their own audit record and log line per second over all addresses; the\n"
    "  rest are counted into one auth.failure.repeated record per address and\n"
    "  10 s; 0: all; docs/security.md),\n"
    "  --outbox-workers 2 (PDF and webhook job threads; as many renderer processes),\n"
    "  --render-timeout 30, --retry-backoff-ms 10000 (first retry; doubles, up to 1 h),\n"
    "  --webhook-retry-for 86400 (then the event is a dead letter), --webhook-timeout 10,\n"
    "  --probe-interval-ms 15000 (database write probe; every second while degraded),\n"
    "  Free disk space of DIR, one ordered set (docs/storage-space.md):\n"
    "  --outbox-min-free-mb 4 x min-free (below: the outbox pauses, no PDF or job\n"
    "  writes) > --min-free-mb 64 (below: writes degraded, 503) > --reserve-mb\n"
    "  min-free/4 (kept allocated in DIR/fapiao.reserve; released for audit and\n"
    "  the store's bookkeeping when less is free, and at start on a full disk;\n"
    "  0: none).\n"
    "  --slow-write-ms 2000 (a commit or write probe slower than this counts as a\n"
    "  failure: stalled disk), --write-deadline-ms 5000 (an issue still queued then\n"
    "  gets 503 WRITE_TIMEOUT; one still committing gets 503 WRITE_OUTCOME_UNKNOWN),\n"
    "  --max-connections 1024,\n"
    "  --max-connections-per-ip 64 (both count connections still before their TLS\n"
    "  handshake; at the cap the oldest of those is closed for a new one),\n"
    "  --handshake-timeout-ms 2000 (a connection's first TLS record is due within),\n"
    "  --trusted-proxy CIDR,... (none by default: proxies such as HAProxy with\n"
    "  send-proxy-v2 whose connections must start with a PROXY protocol v2 header;\n"
    "  its client address is then the one per-IP caps, allowlists, audit and logs\n"
    "  use; a PROXY header from anyone else is refused; docs/security.md),\n"
    "  --idle-timeout 30 (silent keep-alive closed),\n"
    "  --header-timeout-ms 10000 (TLS handshake + headers), --body-timeout-ms 30000\n"
    "  (slow clients are cut at these deadlines), --client-rate 1000 --client-burst 1200\n"
    "  (requests/s per credential), --global-rate 0 (0: no limit; burst = rate unless\n"
    "  given), --concurrency-max 1024 (ceiling of the adaptive limit on issues in\n"
    "  flight to the store; off disables it), --shutdown-grace 10 (on SIGTERM, how long\n"
    "  requests in flight may finish before the rest are answered 503; see\n"
    "  docs/operations.md).  --response-memory-mb 64 (response bodies held for\n"
    "  clients that have not read them yet; beyond it a new large answer gets 503\n"
    "  RESPONSE_MEMORY_EXHAUSTED), --send-timeout-ms 60000 (an answer not sent by then\n"
    "  has its connection cut).  --allow-private-webhooks lets webhooks reach loopback,\n"
    "  private, link-local and metadata addresses (refused by default, checked when\n"
    "  connecting; docs/security.md).  --fault-injection (tests only)\n"
    "  enables GET/POST /v1/_faults to make writes, fsync or renders fail or slow.\n"
    "  TLS: --cert DIR/tls/server.crt (PEM, server certificate first, then its\n"
    "  intermediates) and --key DIR/tls/server.key (RSA or ECDSA, PKCS#1, SEC1 or\n"
    "  PKCS#8; an encrypted PKCS#8 key needs --key-passphrase-file FILE, the\n"
    "  passphrase on its first line); an expired, not yet valid or mismatched pair,\n"
    "  or one that fails a test handshake, is refused at start; one that ends\n"
    "  within 30 days warns.  Key files (TLS key, passphrase file, token.key,\n"
    "  audit.key, webhook.key) must be 0600 if the service user owns them, 0640\n"
    "  at most if root does (docs/tls.md); looser ones are refused.\n"
    "  --ocsp-response FILE (DER) is stapled to handshakes.  --client-ca FILE (PEM)\n"
    "  asks clients for a certificate (not required) verified against that CA.\n"
    "  TLS 1.2 and 1.3 only.  SIGHUP re-reads cert, key and OCSP response for new\n"
    "  connections without dropping open ones, after a test handshake with them;\n"
    "  bad files keep the old certificate.\n"
    "  --audit-key FILE: the audit signing key kept outside the data directory (also\n"
    "  $FAPIAO_AUDIT_KEY; its public key is FILE with .pub); a missing key is never\n"
    "  made anew once the log holds a signed checkpoint.  --checkpoint-sink ships\n"
    "  each signed checkpoint to DIR/checkpoints.jsonl (appended; make it chattr +a\n"
    "  or write-once) or to COMMAND's stdin (docs/audit.md).  /metrics is public on\n"
    "  the main port unless --metrics-token-file FILE (a bearer token) or\n"
    "  --metrics-listen HOST:PORT (a plain-HTTP listener serving only /metrics; the\n"
    "  main port's /metrics then needs the token or is absent) is given\n"
    "  (docs/security.md).\n"
    "  启动 HTTPS 开票服务；SIGINT/SIGTERM 时先提交并答复已排队的请求再退出。\n"
    "  --cert/--key 为证书链与私钥（启动时检查：过期、未生效或不匹配则拒绝启动，\n"
    "  30 天内到期则警告）；--ocsp-response 装订 OCSP 响应；--client-ca 请求客户端\n"
    "  证书（双向 TLS，可选）；SIGHUP 重新加载证书（先完成一次测试握手），已建立的连接\n"
    "  不受影响。--max-connections/--max-connections-per-ip 为全局与每地址连接上限\n"
    "  （默认 1024/64，含尚未握手的连接，满额时先关闭最早的未握手连接）；\n"
    "  --handshake-timeout-ms 为握手前时限（默认 2000 毫秒）；--trusted-proxy 列出可信\n"
    "  代理（须发送 PROXY v2 头，其中的客户端地址用于限额、白名单、审计和日志）。\n"
    "  --key-passphrase-file 为加密私钥的口令文件。密钥文件权限须为 0600\n"
    "  （服务用户所有）或至多 0640（root 所有），否则拒绝启动。\n"
    "  磁盘阈值（docs/storage-space.md）：空闲空间低于 --outbox-min-free-mb 时发件箱暂停，\n"
    "  低于 --min-free-mb 时写入降级（503），--reserve-mb 为审计与存储记账保留的空间；\n"
    "  提交慢于 --slow-write-ms 视为失败，开票请求超过 --write-deadline-ms 即返回 503。\n"
    "  --audit-key 指定数据目录之外的审计签名密钥；已有签名检查点时缺失的密钥不会重新生成。\n"
    "  --checkpoint-sink 把每个签名检查点追加到 DIR/checkpoints.jsonl 或交给命令。\n"
    "  /metrics 默认在主端口公开；--metrics-token-file 要求持有令牌，--metrics-listen\n"
    "  另开只提供 /metrics 的监听地址（见 docs/security.md）。\n"
    "  认证失败预算（docs/security.md）：每个客户端地址每秒 --auth-fail-rate 次\n"
    "  （突发 --auth-fail-burst），超出则返回 429 AUTH_FAILURES_LIMITED，POST /v1/token\n"
    "  在校验密钥之前即拒绝；全局每秒 --auth-record-rate 次失败单独写审计和访问日志，\n"
    "  其余按地址每 10 秒汇总为一条 auth.failure.repeated 审计记录（含次数）。\n"
    "  访问日志超过 --access-log-max-mb（默认 100）时改名为 FILE.1 并新建；SIGHUP\n"
    "  重新打开访问日志（配合 logrotate）。\n";

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

/* Secrets stay in this process: files it creates are the service user's
 * only (the database and its WAL, access log, PDFs: 0600), and neither a
 * core dump nor another process of the same user (ptrace, /proc/PID/mem)
 * can read its memory.  See docs/tls.md "Key file permissions". */
static void harden_process(void)
{
    umask(077);
    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) < 0)
        fprintf(stderr, "fapiao: 警告 / warning: setrlimit(RLIMIT_CORE): %s\n", strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        fprintf(stderr, "fapiao: 警告 / warning: prctl(PR_SET_DUMPABLE): %s\n", strerror(errno));
}

/* token.key under the key-file rule (keyfile.h). */
static int read_token_key(const char *path, unsigned char *out, fp_err *err)
{
    unsigned char *data = NULL;
    size_t n = 0;
    int rc = fp_keyfile_read(path, "令牌签名密钥", "token signing key", 4096, &data, &n, err);
    if (rc < 0)
        return rc;
    if (n < FP_TOKEN_KEY_LEN)
        rc = fp_fail(err, FP_EINVAL,
                     "令牌签名密钥过短 / the token signing key %s is shorter than %d bytes", path,
                     FP_TOKEN_KEY_LEN);
    else
        memcpy(out, data, FP_TOKEN_KEY_LEN);
    fp_keyfile_wipe(data, n);
    return rc;
}

/* The audit signing key (DIR/audit.key or --audit-key), when it exists
 * already (the store creates it 0600 on first use), under the key-file
 * rule. */
static int check_audit_key(const char *db, const char *path, fp_err *err)
{
    char akey[PATH_MAX], apub[PATH_MAX];
    if (fp_audit_key_paths(db, path, akey, apub, sizeof akey) < 0)
        return fp_fail(err, FP_ERANGE, "audit key path too long");
    int rc = fp_keyfile_check_path(akey, "审计签名密钥", "audit signing key", err);
    return rc == FP_ENOTFOUND ? 0 : rc;
}

/* The bearer token for /metrics: the first line of a secret file (key-file
 * rule), 16-256 characters without white space, into tok[257]. */
static int read_metrics_token(const char *path, char *tok, fp_err *err)
{
    unsigned char *data = NULL;
    size_t n = 0;
    int rc = fp_keyfile_read(path, "监控令牌文件", "metrics token file", 4096, &data, &n, err);
    if (rc < 0)
        return rc;
    size_t len = strcspn((const char *)data, "\r\n");
    if (len < 16 || len > 256 || strcspn((const char *)data, " \t") < len)
        rc = fp_fail(err, FP_EINVAL,
                     "监控令牌须为 16–256 个非空白字符 / the metrics token in %s must be 16-256 "
                     "characters without spaces, on the first line",
                     path);
    else
        snprintf(tok, 257, "%.*s", (int)len, (const char *)data);
    fp_keyfile_wipe(data, n);
    return rc;
}

/* DIR/webhook.key (seal.h), when it exists, under the key-file rule. */
static int check_webhook_key(const char *dir, fp_err *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/webhook.key", dir);
    int rc = fp_keyfile_check_path(path, "webhook 密钥", "webhook secret key", err);
    return rc == FP_ENOTFOUND ? 0 : rc;
}

/* A data directory others can enter is worth a warning, not a refusal:
 * installations made before `fapiao init` created it 0700 still start. */
static void warn_loose_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr,
                "fapiao: 警告 / warning: 数据目录 %s 的权限为 %04o，建议 chmod 700 / the data "
                "directory %s has mode %04o; fix: chmod 700 %s\n",
                dir, (unsigned)st.st_mode & 07777, dir, (unsigned)st.st_mode & 07777, dir);
}

static int pause_outbox(void *arg, char *why, size_t cap)
{
    return fp_health_outbox_paused(arg, why, cap);
}

int cmd_serve(int argc, char **argv)
{
    const char *dir = NULL, *listen = "127.0.0.1:8443", *threads = NULL, *ttl = NULL;
    const char *max_body = NULL, *access_log = NULL, *codes_path = NULL, *range_warn = NULL;
    const char *ob_workers = NULL, *render_timeout = NULL, *backoff = NULL, *retry_for = NULL;
    const char *wh_timeout = NULL, *probe_ms = NULL, *min_free = NULL, *max_conns = NULL;
    const char *max_per_ip = NULL, *idle = NULL, *hdr_ms = NULL, *body_ms = NULL;
    const char *c_rate = NULL, *c_burst = NULL, *g_rate = NULL, *g_burst = NULL, *conc = NULL;
    const char *cert_file = NULL, *key_file = NULL, *ocsp_file = NULL, *client_ca = NULL;
    const char *key_pass = NULL, *grace = NULL, *resp_mem = NULL, *send_ms = NULL;
    const char *ob_free = NULL, *reserve = NULL, *slow_ms = NULL, *deadline_ms = NULL;
    const char *audit_key = NULL, *cp_sink = NULL, *metrics_listen = NULL;
    const char *metrics_token = NULL, *hs_ms = NULL, *trusted_proxy = NULL;
    const char *af_rate = NULL, *af_burst = NULL, *ar_rate = NULL, *ar_burst = NULL;
    const char *log_max = NULL;
    int fault_injection = 0, grace_s = 0, allow_private_webhooks = 0;
    const cli_flag flags[] = {
        {"--data-dir", 0, &dir, NULL},
        {"--listen", 0, &listen, NULL},
        {"--threads", 0, &threads, NULL},
        {"--token-ttl", 0, &ttl, NULL},
        {"--max-body", 0, &max_body, NULL},
        {"--access-log", 0, &access_log, NULL},
        {"--access-log-max-mb", 0, &log_max, NULL},
        {"--auth-fail-rate", 0, &af_rate, NULL},
        {"--auth-fail-burst", 0, &af_burst, NULL},
        {"--auth-record-rate", 0, &ar_rate, NULL},
        {"--auth-record-burst", 0, &ar_burst, NULL},
        {"--tax-codes", 0, &codes_path, NULL},
        {"--range-warn", 0, &range_warn, NULL},
        {"--outbox-workers", 0, &ob_workers, NULL},
        {"--render-timeout", 0, &render_timeout, NULL},
        {"--retry-backoff-ms", 0, &backoff, NULL},
        {"--webhook-retry-for", 0, &retry_for, NULL},
        {"--webhook-timeout", 0, &wh_timeout, NULL},
        {"--probe-interval-ms", 0, &probe_ms, NULL},
        {"--min-free-mb", 0, &min_free, NULL},
        {"--outbox-min-free-mb", 0, &ob_free, NULL},
        {"--reserve-mb", 0, &reserve, NULL},
        {"--slow-write-ms", 0, &slow_ms, NULL},
        {"--write-deadline-ms", 0, &deadline_ms, NULL},
        {"--fault-injection", 1, NULL, &fault_injection},
        {"--max-connections", 0, &max_conns, NULL},
        {"--max-connections-per-ip", 0, &max_per_ip, NULL},
        {"--idle-timeout", 0, &idle, NULL},
        {"--header-timeout-ms", 0, &hdr_ms, NULL},
        {"--body-timeout-ms", 0, &body_ms, NULL},
        {"--handshake-timeout-ms", 0, &hs_ms, NULL},
        {"--trusted-proxy", 0, &trusted_proxy, NULL},
        {"--client-rate", 0, &c_rate, NULL},
        {"--client-burst", 0, &c_burst, NULL},
        {"--global-rate", 0, &g_rate, NULL},
        {"--global-burst", 0, &g_burst, NULL},
        {"--concurrency-max", 0, &conc, NULL},
        {"--cert", 0, &cert_file, NULL},
        {"--key", 0, &key_file, NULL},
        {"--key-passphrase-file", 0, &key_pass, NULL},
        {"--ocsp-response", 0, &ocsp_file, NULL},
        {"--client-ca", 0, &client_ca, NULL},
        {"--shutdown-grace", 0, &grace, NULL},
        {"--response-memory-mb", 0, &resp_mem, NULL},
        {"--send-timeout-ms", 0, &send_ms, NULL},
        {"--allow-private-webhooks", 1, NULL, &allow_private_webhooks},
        {"--audit-key", 0, &audit_key, NULL},
        {"--checkpoint-sink", 0, &cp_sink, NULL},
        {"--metrics-listen", 0, &metrics_listen, NULL},
        {"--metrics-token-file", 0, &metrics_token, NULL},
        {NULL, 0, NULL, NULL},
    };
    if (cli_parse(argc, argv, flags, usage) < 0 || cli_require(dir, "--data-dir", usage) < 0)
        return 2;
    harden_process();
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
    fp_outbox_opts oo = {0};
    fp_health_opts ho = {0};
    int min_free_mb = 0, resp_mem_mb = 0, ob_free_mb = 0, reserve_mb = -1, slow_write = 0,
        write_deadline = 0;
    const struct {
        const char *flag, *value;
        long min, max;
        int *out;
        const char *zh, *en;
    } ints[] = {
        {"--outbox-workers", ob_workers, 1, 64, &oo.workers, "--outbox-workers 须为 1–64",
         "--outbox-workers must be 1-64"},
        {"--render-timeout", render_timeout, 1, 3600, &oo.render_timeout_ms,
         "--render-timeout 须为 1–3600 秒", "--render-timeout must be 1-3600 seconds"},
        {"--retry-backoff-ms", backoff, 10, 3600000, &oo.backoff_ms,
         "--retry-backoff-ms 须为 10–3600000", "--retry-backoff-ms must be 10-3600000"},
        {"--webhook-timeout", wh_timeout, 1, 300, &oo.webhook_timeout_ms,
         "--webhook-timeout 须为 1–300 秒", "--webhook-timeout must be 1-300 seconds"},
        {"--probe-interval-ms", probe_ms, 100, 3600000, &ho.interval_ms,
         "--probe-interval-ms 须为 100–3600000", "--probe-interval-ms must be 100-3600000"},
        {"--min-free-mb", min_free, 1, 1000000, &min_free_mb, "--min-free-mb 须为 1–1000000",
         "--min-free-mb must be 1-1000000"},
        {"--outbox-min-free-mb", ob_free, 1, 4000000, &ob_free_mb,
         "--outbox-min-free-mb 须为 1–4000000", "--outbox-min-free-mb must be 1-4000000"},
        {"--reserve-mb", reserve, 0, 1000000, &reserve_mb, "--reserve-mb 须为 0–1000000",
         "--reserve-mb must be 0-1000000"},
        {"--slow-write-ms", slow_ms, 10, 600000, &slow_write, "--slow-write-ms 须为 10–600000",
         "--slow-write-ms must be 10-600000"},
        {"--write-deadline-ms", deadline_ms, 100, 600000, &write_deadline,
         "--write-deadline-ms 须为 100–600000", "--write-deadline-ms must be 100-600000"},
        {"--max-connections", max_conns, 1, 100000, &so.max_connections,
         "--max-connections 须为 1–100000", "--max-connections must be 1-100000"},
        {"--max-connections-per-ip", max_per_ip, 1, 100000, &so.max_connections_per_ip,
         "--max-connections-per-ip 须为 1–100000", "--max-connections-per-ip must be 1-100000"},
        {"--idle-timeout", idle, 1, 3600, &so.idle_timeout, "--idle-timeout 须为 1–3600 秒",
         "--idle-timeout must be 1-3600 seconds"},
        {"--header-timeout-ms", hdr_ms, 100, 600000, &so.header_timeout_ms,
         "--header-timeout-ms 须为 100–600000", "--header-timeout-ms must be 100-600000"},
        {"--body-timeout-ms", body_ms, 100, 3600000, &so.body_timeout_ms,
         "--body-timeout-ms 须为 100–3600000", "--body-timeout-ms must be 100-3600000"},
        {"--response-memory-mb", resp_mem, 1, 1000000, &resp_mem_mb,
         "--response-memory-mb 须为 1–1000000", "--response-memory-mb must be 1-1000000"},
        {"--send-timeout-ms", send_ms, 100, 3600000, &so.send_timeout_ms,
         "--send-timeout-ms 须为 100–3600000", "--send-timeout-ms must be 100-3600000"},
        {"--handshake-timeout-ms", hs_ms, 100, 600000, &so.handshake_timeout_ms,
         "--handshake-timeout-ms 须为 100–600000", "--handshake-timeout-ms must be 100-600000"},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (!ints[i].value)
            continue;
        if (parse_int(ints[i].value, ints[i].min, ints[i].max, &v) < 0) {
            cli_error(ints[i].zh, ints[i].en);
            return 2;
        }
        *ints[i].out = (int)v;
    }
    char af_num[32]; /* --auth-fail-rate N, N/s or N/min */
    if (af_rate) {
        size_t n = strlen(af_rate);
        so.auth_fail_period_s = 1;
        if (n > 4 && !strcmp(af_rate + n - 4, "/min")) {
            so.auth_fail_period_s = 60;
            n -= 4;
        } else if (n > 2 && !strcmp(af_rate + n - 2, "/s")) {
            n -= 2;
        }
        snprintf(af_num, sizeof af_num, "%.*s", (int)(n < 31 ? n : 31), af_rate);
        af_rate = af_num;
    }
    const struct {
        const char *value;
        int64_t *out;
        const char *flag;
    } rates[] = {{c_rate, &so.client_rate, "--client-rate"},
                 {c_burst, &so.client_burst, "--client-burst"},
                 {g_rate, &so.global_rate, "--global-rate"},
                 {g_burst, &so.global_burst, "--global-burst"},
                 {af_rate, &so.auth_fail_rate, "--auth-fail-rate"},
                 {af_burst, &so.auth_fail_burst, "--auth-fail-burst"},
                 {ar_rate, &so.auth_record_rate, "--auth-record-rate"},
                 {ar_burst, &so.auth_record_burst, "--auth-record-burst"}};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        if (!rates[i].value)
            continue;
        if (parse_int(rates[i].value, 0, 100000000, &v) < 0) {
            char zh[96], en[96];
            snprintf(zh, sizeof zh, "%s 须为 0–100000000（0 表示不限）", rates[i].flag);
            snprintf(en, sizeof en, "%s must be 0-100000000 (0: no limit)", rates[i].flag);
            cli_error(zh, en);
            return 2;
        }
        *rates[i].out = v;
    }
    if (trusted_proxy) {
        fp_allowlist tp;
        char bad[64] = "";
        if (fp_allowlist_parse(trusted_proxy, &tp, bad, sizeof bad) < 0) {
            char zh[160], en[160];
            snprintf(zh, sizeof zh, "--trusted-proxy 中的 %s 不是 IPv4/IPv6 地址或 CIDR", bad);
            snprintf(en, sizeof en, "--trusted-proxy: %s is not an IPv4/IPv6 address or CIDR", bad);
            cli_error(zh, en);
            return 2;
        }
        so.trusted_proxies = trusted_proxy;
    }
    /* a client rate of 0 means unlimited, not "use the default" */
    if (c_rate && so.client_rate == 0)
        so.client_rate = -1;
    if (af_rate && so.auth_fail_rate == 0)
        so.auth_fail_rate = -1;
    if (ar_rate && so.auth_record_rate == 0)
        so.auth_record_rate = -1;
    so.access_log_max_bytes = 100LL << 20;
    if (log_max) {
        if (parse_int(log_max, 0, 1000000, &v) < 0) {
            cli_error("--access-log-max-mb 须为 0–1000000（0 表示不限大小）",
                      "--access-log-max-mb must be 0-1000000 (0: no size cap)");
            return 2;
        }
        so.access_log_max_bytes = (int64_t)v << 20;
    }
    if (conc) {
        if (!strcmp(conc, "off")) {
            so.concurrency_max = -1;
        } else if (parse_int(conc, 1, 1000000, &v) < 0) {
            cli_error("--concurrency-max 须为 1–1000000 或 off",
                      "--concurrency-max must be 1-1000000 or off");
            return 2;
        } else {
            so.concurrency_max = (int)v;
        }
    }
    so.shutdown_grace_ms = grace_s * 1000;
    so.response_memory = (size_t)resp_mem_mb << 20;
    oo.allow_private_webhooks = allow_private_webhooks;
    /* the disk thresholds are one ordered set: outbox > degrade > reserve */
    if (!min_free_mb)
        min_free_mb = 64;
    if (!ob_free_mb)
        ob_free_mb = 4 * min_free_mb;
    if (reserve_mb < 0)
        reserve_mb = min_free_mb / 4;
    if (!(ob_free_mb > min_free_mb && min_free_mb > reserve_mb)) {
        cli_error("磁盘阈值须满足 --outbox-min-free-mb > --min-free-mb > --reserve-mb",
                  "the disk thresholds must be --outbox-min-free-mb > --min-free-mb > "
                  "--reserve-mb");
        return 2;
    }
    oo.render_timeout_ms *= 1000;
    oo.webhook_timeout_ms *= 1000;
    if (retry_for) {
        if (parse_int(retry_for, 1, 365L * 86400, &v) < 0) {
            cli_error("--webhook-retry-for 须为 1 秒到 365 天",
                      "--webhook-retry-for must be 1 second to 365 days");
            return 2;
        }
        oo.retry_for_ms = (int64_t)v * 1000;
    }
    char db[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], tkey[PATH_MAX], tc[PATH_MAX], alog[PATH_MAX];
    char pdf_dir[PATH_MAX], self[PATH_MAX];
    snprintf(db, sizeof db, "%s/fapiao.db", dir);
    snprintf(crt, sizeof crt, "%s/tls/server.crt", dir);
    snprintf(key, sizeof key, "%s/tls/server.key", dir);
    if (cert_file)
        snprintf(crt, sizeof crt, "%s", cert_file);
    if (key_file)
        snprintf(key, sizeof key, "%s", key_file);
    snprintf(tkey, sizeof tkey, "%s/token.key", dir);
    snprintf(tc, sizeof tc, "%s/taxcodes.csv", dir);
    snprintf(alog, sizeof alog, "%s/access.log", dir);
    snprintf(pdf_dir, sizeof pdf_dir, "%s/pdf", dir);
    if (cli_database_lost(dir)) /* docs/storage.md */
        return 1;
    char hint_zh[PATH_MAX + 64], hint_en[PATH_MAX + 64];
    snprintf(hint_zh, sizeof hint_zh, "；先运行 fapiao init --data-dir %s", dir);
    snprintf(hint_en, sizeof hint_en, "; run fapiao init --data-dir %s first", dir);
    if (cli_check_data_dir(dir, 1, hint_zh, hint_en) < 0)
        return 1;
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
    fp_err err = {0};
    unsigned char token_key[FP_TOKEN_KEY_LEN];
    if (!audit_key)
        audit_key = cli_audit_key();
    if (metrics_listen && parse_listen(metrics_listen, so.metrics_host, sizeof so.metrics_host,
                                       &so.metrics_port) < 0) {
        cli_error("--metrics-listen 格式应为 HOST:PORT，例如 127.0.0.1:9464",
                  "--metrics-listen must be HOST:PORT, e.g. 127.0.0.1:9464");
        return 2;
    }
    static char mtoken[257];
    if (metrics_token && read_metrics_token(metrics_token, mtoken, &err) < 0) {
        cli_fail("监控令牌不可用，拒绝启动", "the metrics token cannot be used; not starting",
                 err.msg);
        return 1;
    }
    so.metrics_token = metrics_token ? mtoken : NULL;
    if (read_token_key(tkey, token_key, &err) < 0 || check_audit_key(db, audit_key, &err) < 0 ||
        check_webhook_key(dir, &err) < 0) {
        cli_fail("密钥文件不可用，拒绝启动", "a key file cannot be used; not starting", err.msg);
        return 1;
    }
    warn_loose_dir(dir);

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
    sigaddset(&set, SIGHUP); /* reloads the TLS certificate */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread uses libcurl */

    fp_store *store = NULL;
    fp_store_opts sto = {.path = db,
                         .slow_write_ms = slow_write,
                         .write_deadline_ms = write_deadline,
                         .start_check = FP_START_CHECK_AUTO,
                         .audit_key_path = audit_key}; /* docs/storage.md */
    int src = fp_store_open(&sto, &store, &err);
    /* A full disk can leave no room for the -shm file SQLite needs even to
     * read (docs/storage-space.md): the reserve is for this. */
    if (src < 0 && fp_health_release_reserve(dir)) {
        fprintf(stderr,
                "{\"event\":\"reserve_released\",\"reason\":\"opening the store failed: %s\"}\n",
                err.msg);
        src = fp_store_open(&sto, &store, &err);
    }
    if (src < 0) {
        cli_fail("无法打开数据库", "cannot open the database", err.msg);
        fp_taxcode_free(codes);
        return 1;
    }
    /* webhook secrets stored in plaintext by earlier versions are sealed
     * (docs/security.md "Secrets at rest") */
    int sealed = 0;
    if (fp_store_webhook_seal_all(store, &sealed, &err) < 0) {
        cli_fail("无法加密 webhook 密钥", "cannot encrypt the webhook secrets", err.msg);
        fp_store_close(store);
        fp_taxcode_free(codes);
        return 1;
    }
    if (sealed)
        fprintf(stderr, "fapiao: 已加密 %d 个 webhook 密钥 / sealed %d webhook secrets at rest\n",
                sealed, sealed);
    /* a sink that cannot take the checkpoints so far refuses the start */
    int64_t shipped = 0;
    fp_audit_shipper *shipper = NULL;
    if (cp_sink && (fp_audit_ship(db, cp_sink, NULL, &shipped, &err) < 0 ||
                    fp_audit_shipper_start(db, cp_sink, 2000, &shipper, &err) < 0)) {
        cli_fail("审计检查点无法送出", "cannot ship audit checkpoints", err.msg);
        fp_store_close(store);
        fp_taxcode_free(codes);
        return 1;
    }
    /* the renderer processes run this same binary */
    ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sn > 0 ? sn : 0] = 0;
    oo.store = store;
    oo.pdf_dir = pdf_dir;
    oo.render_exe = sn > 0 ? self : "/proc/self/exe";
    fp_outbox *outbox = NULL;
    if (fp_outbox_start(&oo, &outbox, &err) < 0) {
        cli_fail("无法启动发票 PDF 与通知任务", "cannot start the PDF and notification jobs",
                 err.msg);
        fp_store_close(store);
        fp_audit_shipper_stop(shipper);
        fp_taxcode_free(codes);
        return 1;
    }
    so.outbox = outbox;
    so.pdf_dir = pdf_dir;
    ho.store = store;
    ho.data_dir = dir;
    ho.cert_path = crt;
    ho.min_free_bytes = (int64_t)min_free_mb << 20;
    ho.outbox_min_free_bytes = (int64_t)ob_free_mb << 20;
    ho.reserve_bytes = reserve_mb ? (int64_t)reserve_mb << 20 : -1;
    ho.outbox = outbox;
    ho.range_warn = so.range_warn;
    fp_health *health = NULL;
    if (fp_health_start(&ho, &health, &err) < 0) {
        cli_fail("无法启动健康检查", "cannot start the health checks", err.msg);
        fp_outbox_stop(outbox);
        fp_store_close(store);
        fp_audit_shipper_stop(shipper);
        fp_taxcode_free(codes);
        return 1;
    }
    so.health = health;
    fp_outbox_set_pause(outbox, pause_outbox, health);
    so.fault_injection = fault_injection;
    if (fault_injection)
        fprintf(stderr,
                "fapiao: 已启用故障注入（仅供测试）/ fault injection enabled (tests only)\n");
    so.cert_path = crt;
    so.key_path = key;
    so.token_key = token_key;
    so.access_log = access_log ? access_log : alog;
    so.store = store;
    so.codes = codes;
    /* the chain and key are checked before anything listens */
    fp_tls_opts to = {.cert_path = crt,
                      .key_path = key,
                      .key_passphrase_path = key_pass,
                      .ocsp_path = ocsp_file,
                      .client_ca_path = client_ca};
    fp_tls *tls = NULL;
    fp_server *srv = NULL;
    int tls_rc = fp_tls_new(&to, &tls, &err);
    so.tls = tls;
    if (tls_rc < 0)
        cli_fail("TLS 证书不可用，拒绝启动", "the TLS certificate cannot be used", err.msg);
    else if (fp_server_start(&so, &srv, &err) < 0)
        cli_fail("无法启动 HTTPS 服务", "cannot start the HTTPS server", err.msg);
    if (!srv) {
        fp_tls_free(tls);
        fp_outbox_set_pause(outbox, NULL, NULL);
        fp_health_stop(health);
        fp_outbox_stop(outbox);
        fp_store_close(store);
        fp_audit_shipper_stop(shipper);
        fp_taxcode_free(codes);
        return 1;
    }
    int port = fp_server_port(srv);
    fprintf(stderr, "fapiao: 正在监听 / listening on https://%s%s%s:%d (data %s, %d tax codes)\n",
            strchr(so.host, ':') ? "[" : "", so.host, strchr(so.host, ':') ? "]" : "", port, dir,
            fp_taxcode_count(codes));
    if (fp_server_metrics_port(srv))
        fprintf(stderr, "fapiao: 监控指标 / metrics on http://%s%s%s:%d/metrics\n",
                strchr(so.metrics_host, ':') ? "[" : "", so.metrics_host,
                strchr(so.metrics_host, ':') ? "]" : "", fp_server_metrics_port(srv));

    int sig = 0;
    while (sigwait(&set, &sig) != 0 || sig == SIGHUP) {
        /* new handshakes take the re-read files; open connections keep
         * theirs; bad files keep the old certificate */
        if (sig == SIGHUP && fp_tls_reload(tls, &err) < 0)
            fprintf(stderr,
                    "fapiao: TLS 证书重新加载失败，继续使用原证书 / TLS reload failed, keeping "
                    "the previous certificate: %s\n",
                    err.msg);
        /* and the access log is opened again (after logrotate moved it) */
        if (sig == SIGHUP && fp_server_reopen_log(srv, &err) < 0)
            fprintf(stderr, "fapiao: 访问日志无法重新打开 / cannot reopen the access log: %s\n",
                    err.msg);
        sig = 0;
    }
    fprintf(stderr, "fapiao: 收到信号 %d，正在停止 / signal %d, stopping\n", sig, sig);
    fp_server_stop(srv);
    fp_tls_free(tls);
    fp_outbox_set_pause(outbox, NULL, NULL); /* it asks the health checks */
    fp_health_stop(health);
    fp_outbox_stop(outbox);
    fp_store_close(store);
    fp_audit_shipper_stop(shipper); /* after the store's closing checkpoint */
    fp_taxcode_free(codes);
    fprintf(stderr, "fapiao: 已停止 / stopped\n");
    return 0;
}
