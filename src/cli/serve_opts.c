/* serve_opts.c — the table of `fapiao serve` options: each row is a flag,
 * the field it fills (serve_opts.h), its range and unit, the default the
 * server applies when it is not given, whether SIGHUP applies it, and what
 * it means in English and Chinese.  The parser, `--help` and
 * `--print-config` all read it, and so do the layers under the flags
 * (config.h: FAPIAO_<NAME> and the config file's keys), so an option cannot
 * be accepted yet undocumented, documented with another range, or missing
 * from the file. */
#include "serve_opts.h"
#include "cli.h"
#include "config.h"
#include "fapiao/json.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    OPT_SECTION,   /* a heading of --help: en and zh are its title */
    OPT_STR,       /* a text value (checked where it is used) */
    OPT_BOOL,      /* a switch */
    OPT_INT,       /* a number in [min, max] */
    OPT_LIMIT,     /* the same, where 0 means no limit */
    OPT_LIMIT_MIN, /* OPT_LIMIT, also as N/s or N/min (the period, 1 or 60, into `period`) */
    OPT_INT_OFF,   /* OPT_INT, or "off" (-1) */
} opt_kind;

typedef enum { U_NONE, U_S, U_MS, U_MB, U_BYTES } opt_unit;

static const struct {
    const char *en, *zh;
} units[] = {[U_NONE] = {"", ""},
             [U_S] = {" seconds", " 秒"},
             [U_MS] = {" ms", " 毫秒"},
             [U_MB] = {" MB", " MB"},
             [U_BYTES] = {" bytes", " 字节"}};

typedef struct opt {
    const char *name;
    opt_kind kind;
    size_t field; /* offsetof(serve_conf, ...) */
    long min, max;
    opt_unit unit;
    const char *metavar; /* what --help shows after the name */
    const char *def;     /* the default, as --help shows it (NULL: none) */
    const char *en, *zh;
    int live;      /* SIGHUP applies a changed value (else it needs a restart) */
    size_t period; /* OPT_LIMIT_MIN: offsetof(serve_conf, ...) of its period in seconds */
} opt;

#define LIVE 1

#define F(x) offsetof(serve_conf, x)

static const opt opts[] = {
    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "Service", "服务"},
    {"--data-dir", OPT_STR, F(dir), 0, 0, U_NONE, "DIR", NULL,
     "required: the data directory (made by fapiao init)", "必填：数据目录（由 fapiao init 创建）"},
    {"--database", OPT_STR, F(database), 0, 0, U_NONE, "URL|FILE", "DIR/fapiao.db",
     "the database: a SQLite file, or postgresql://... (or host=... dbname=...) for PostgreSQL "
     "(docs/ha.md)",
     "数据库：SQLite 文件，或 postgresql://...（或 host=... dbname=...）使用 PostgreSQL（见 "
     "docs/ha.md）"},
    {"--listen", OPT_STR, F(listen), 0, 0, U_NONE, "HOST:PORT", "127.0.0.1:8443",
     "address and port of the HTTPS API", "HTTPS API 的监听地址与端口"},
    {"--threads", OPT_INT, F(threads), 1, 256, U_NONE, "N", "the number of CPUs",
     "HTTP worker threads", "HTTP 工作线程数"},
    {"--token-ttl", OPT_INT, F(token_ttl), 1, 86400, U_S, "SECONDS", "3600",
     "lifetime of an access token", "访问令牌的有效期"},
    {"--max-body", OPT_INT, F(max_body), 1024, 64L << 20, U_BYTES, "BYTES", "1048576",
     "the largest request body", "请求体的大小上限"},
    {"--tax-codes", OPT_STR, F(codes_path), 0, 0, U_NONE, "FILE", "DIR/taxcodes.csv",
     "the tax classification code table (CSV)", "税收分类编码表（CSV）"},
    {"--range-warn", OPT_INT, F(range_warn), 1, 2000000000L, U_NONE, "N", "1000",
     "numbers left below which /readyz warns (time to import the next range)",
     "剩余发票号码少于此数时 /readyz 警告（该导入下一个号码段了）"},
    {"--shutdown-grace", OPT_INT, F(grace_s), 1, 3600, U_S, "SECONDS", "10",
     "on SIGTERM, how long requests in flight may finish before the rest are answered 503 "
     "(docs/operations.md)",
     "收到 SIGTERM 后等待处理中的请求完成的时间，之后其余请求答复 503（docs/operations.md）"},
    {"--fault-injection", OPT_BOOL, F(fault_injection), 0, 0, U_NONE, NULL, NULL,
     "tests only: GET/POST /v1/_faults make writes, fsync or renders fail or slow",
     "仅供测试：启用 GET/POST /v1/_faults，使写入、fsync 或渲染失败或变慢"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "Access log", "访问日志"},
    {"--access-log", OPT_STR, F(access_log), 0, 0, U_NONE, "FILE|-|off", "DIR/access.log",
     "one JSON line per request; - is stderr, off none",
     "每个请求一行 JSON；- 为标准错误，off 为不记录"},
    {"--access-log-max-mb", OPT_INT, F(log_max_mb), 0, 1000000, U_MB, "MB", "100",
     "beyond it the log moves to FILE.1 and a new one starts (0: no cap); SIGHUP reopens FILE "
     "for logrotate",
     "超过后改名为 FILE.1 并新建（0 为不限大小）；SIGHUP 重新打开访问日志（配合 logrotate）"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "Authentication failures (docs/security.md)",
     "认证失败预算（docs/security.md）"},
    {"--auth-fail-rate", OPT_LIMIT_MIN, F(af_rate), 0, 100000000, U_NONE, "N[/min]", "5/s",
     "authentication failures (401, 403) per second, or per minute, per client address (an "
     "IPv6 one by its /64); beyond: 429 AUTH_FAILURES_LIMITED, and POST /v1/token is refused "
     "before hashing",
     "每个客户端地址每秒（或每分钟）允许的认证失败（401、403）次数，IPv6 地址按 /64 计；超出则返回 "
     "429 AUTH_FAILURES_LIMITED，POST /v1/token 在校验密钥之前即拒绝",
     LIVE, F(af_period_s)},
    {"--auth-fail-burst", OPT_LIMIT, F(af_burst), 0, 100000000, U_NONE, "N", "6 x the rate (30)",
     "the burst of --auth-fail-rate", "--auth-fail-rate 的突发量", LIVE},
    {"--auth-record-rate", OPT_LIMIT, F(ar_rate), 0, 100000000, U_NONE, "N", "10",
     "failures given their own audit record and log line per second over all addresses; the "
     "rest are counted into one auth.failure.repeated record per address and 10 s (0: all)",
     "全局每秒单独写审计记录和访问日志的失败次数；其余按地址每 10 秒汇总为一条 "
     "auth.failure.repeated 审计记录（含次数；0 为全部单独记录）",
     LIVE},
    {"--auth-record-burst", OPT_LIMIT, F(ar_burst), 0, 100000000, U_NONE, "N", "5 x the rate (50)",
     "the burst of --auth-record-rate", "--auth-record-rate 的突发量", LIVE},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "Admission", "准入与限流"},
    {"--client-rate", OPT_LIMIT_MIN, F(c_rate), 0, 100000000, U_NONE, "N[/min]", "1000/s",
     "requests per second, or per minute (N/min), per credential",
     "每个凭据每秒（或每分钟，N/min）的请求数", LIVE, F(c_period_s)},
    {"--client-burst", OPT_LIMIT, F(c_burst), 0, 100000000, U_NONE, "N", "1.2 x the rate (1200)",
     "the burst of --client-rate", "--client-rate 的突发量", LIVE},
    {"--global-rate", OPT_LIMIT_MIN, F(g_rate), 0, 100000000, U_NONE, "N[/min]", "0",
     "requests per second, or per minute (N/min), over all credentials",
     "所有凭据合计每秒（或每分钟，N/min）的请求数", LIVE, F(g_period_s)},
    {"--global-burst", OPT_LIMIT, F(g_burst), 0, 100000000, U_NONE, "N", "the rate",
     "the burst of --global-rate", "--global-rate 的突发量", LIVE},
    {"--concurrency-max", OPT_INT_OFF, F(concurrency), 1, 1000000, U_NONE, "N|off", "1024",
     "ceiling of the adaptive limit on issue requests in flight to the store; off disables it",
     "开票请求在途数量自适应上限的最大值；off 为关闭"},
    {"--response-memory-mb", OPT_INT, F(resp_mem_mb), 1, 1000000, U_MB, "MB", "64",
     "response bodies held for clients that have not read them yet; beyond it a new large "
     "answer gets 503 RESPONSE_MEMORY_EXHAUSTED",
     "为尚未读取的客户端保留的响应体内存；超出时新的大响应返回 503 RESPONSE_MEMORY_EXHAUSTED"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "Connections (docs/security.md)",
     "连接（docs/security.md）"},
    {"--max-connections", OPT_INT, F(max_conns), 1, 100000, U_NONE, "N", "1024",
     "open connections, counting those still before their TLS handshake; at the cap the oldest "
     "of those is closed for a new one",
     "全局连接上限，含尚未握手的连接；满额时先关闭最早的未握手连接"},
    {"--max-connections-per-ip", OPT_INT, F(max_per_ip), 1, 100000, U_NONE, "N", "64",
     "the same, per client address", "每个客户端地址的连接上限（同上）"},
    {"--handshake-timeout-ms", OPT_INT, F(hs_ms), 100, 600000, U_MS, "MS", "2000",
     "a connection's first TLS record is due within", "连接的首个 TLS 记录须在此时间内到达"},
    {"--header-timeout-ms", OPT_INT, F(hdr_ms), 100, 600000, U_MS, "MS", "10000",
     "the TLS handshake and the request headers; slower clients are cut",
     "TLS 握手与请求头的时限，慢速客户端在此断开"},
    {"--body-timeout-ms", OPT_INT, F(body_ms), 100, 3600000, U_MS, "MS", "30000",
     "the request body; slower clients are cut", "请求体的时限，慢速客户端在此断开"},
    {"--send-timeout-ms", OPT_INT, F(send_ms), 100, 3600000, U_MS, "MS", "60000",
     "an answer not sent by then has its connection cut", "答复未在此时间内发完则断开连接"},
    {"--idle-timeout", OPT_INT, F(idle_s), 1, 3600, U_S, "SECONDS", "30",
     "silent keep-alive connections are closed", "空闲的长连接在此后关闭"},
    {"--trusted-proxy", OPT_STR, F(trusted_proxy), 0, 0, U_NONE, "CIDR[,CIDR...]", "none",
     "proxies (such as HAProxy with send-proxy-v2) whose connections must start with a PROXY "
     "protocol v2 header; its client address is then the one per-IP caps, allowlists, audit and "
     "logs use; a PROXY header from anyone else is refused",
     "可信代理（如 HAProxy send-proxy-v2），其连接须以 PROXY v2 头开始，头中的客户端地址用于限额、"
     "白名单、审计和日志；其他来源的 PROXY 头被拒绝"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "TLS (docs/tls.md)", "TLS（docs/tls.md）"},
    {"--cert", OPT_STR, F(cert), 0, 0, U_NONE, "FILE", "DIR/tls/server.crt",
     "PEM, the server certificate first, then its intermediates",
     "PEM 证书链：服务器证书在前，其后为中间证书"},
    {"--key", OPT_STR, F(key), 0, 0, U_NONE, "FILE", "DIR/tls/server.key",
     "RSA or ECDSA; PKCS#1, SEC1 or PKCS#8", "RSA 或 ECDSA 私钥（PKCS#1、SEC1 或 PKCS#8）"},
    {"--key-passphrase-file", OPT_STR, F(key_pass), 0, 0, U_NONE, "FILE", NULL,
     "the passphrase of an encrypted PKCS#8 key, on its first line",
     "加密 PKCS#8 私钥的口令文件（口令在第一行）"},
    {"--ocsp-response", OPT_STR, F(ocsp), 0, 0, U_NONE, "FILE", NULL,
     "an OCSP response (DER) stapled to handshakes", "装订到握手中的 OCSP 响应（DER）"},
    {"--client-ca", OPT_STR, F(client_ca), 0, 0, U_NONE, "FILE", NULL,
     "asks clients for a certificate (not required), verified against this CA (PEM)",
     "请求客户端证书（双向 TLS，可选），以此 CA（PEM）验证"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "PDFs and webhooks (the outbox)",
     "PDF 与通知任务（发件箱）"},
    {"--outbox-workers", OPT_INT, F(ob_workers), 1, 64, U_NONE, "N", "2",
     "PDF and webhook job threads; as many renderer processes",
     "PDF 与通知任务线程数（同样数量的渲染进程）"},
    {"--render-timeout", OPT_INT, F(render_timeout_s), 1, 3600, U_S, "SECONDS", "30",
     "one PDF render", "单个 PDF 的渲染时限"},
    {"--retry-backoff-ms", OPT_INT, F(backoff_ms), 10, 3600000, U_MS, "MS", "10000",
     "the first retry; it doubles, up to 1 h", "首次重试的间隔；之后加倍，最长 1 小时"},
    {"--webhook-retry-for", OPT_INT, F(retry_for_s), 1, 365L * 86400, U_S, "SECONDS", "86400",
     "then the event is a dead letter", "超过此时间后事件成为死信"},
    {"--webhook-timeout", OPT_INT, F(wh_timeout_s), 1, 300, U_S, "SECONDS", "10",
     "one webhook call", "单次回调的时限"},
    {"--render-backlog-max", OPT_LIMIT, F(render_backlog_max), 0, 100000000L, U_NONE, "N", "20000",
     "pending renders from which PDFs are rendered on first request (on-demand mode; back below "
     "half; 0: never; docs/outbox.md)",
     "待渲染任务达到此数时改为首次请求时渲染 PDF（按需模式，降到一半以下恢复；0：从不；"
     "docs/outbox.md）"},
    {"--render-age-max", OPT_LIMIT, F(render_age_max_s), 0, 86400, U_S, "SECONDS", "10",
     "the same, when the oldest pending render waits this long",
     "最早的待渲染任务等待此时长时同上"},
    {"--render-on-demand-wait", OPT_INT, F(od_wait_ms), 100, 60000, U_MS, "MS", "3000",
     "how long GET .../pdf waits for an on-demand render before answering 202",
     "按需渲染时 GET .../pdf 的最长等待，超时答复 202"},
    {"--render-on-demand-after", OPT_INT, F(od_after_ms), 0, 3600000, U_MS, "MS", "500",
     "in background mode too, GET .../pdf renders a PDF whose render was queued this long ago "
     "(0: only in on-demand mode)",
     "后台模式下，渲染任务排队超过此时长的 PDF 也由 GET .../pdf 立即渲染（0：仅按需模式）"},
    {"--render-foreground-workers", OPT_INT, F(render_fg_workers), 0, 8, U_NONE, "N", "1",
     "renderer processes for on-demand renders, at the normal scheduling policy (the background's "
     "run at SCHED_IDLE; 0: none, on-demand renders use the background's; docs/outbox.md)",
     "按需渲染专用的渲染进程数，按普通调度策略运行（后台渲染进程为 "
     "SCHED_IDLE；0：不设，按需渲染使用后台"
     "进程；docs/outbox.md）"},
    {"--job-retention", OPT_LIMIT, F(job_retention_s), 0, 10L * 365 * 86400, U_S, "SECONDS",
     "604800", "done render and webhook jobs are deleted after it (0: kept)",
     "已完成的渲染与通知任务保留此时长后删除（0：一直保留）"},
    {"--allow-private-webhooks", OPT_BOOL, F(allow_private_webhooks), 0, 0, U_NONE, NULL, NULL,
     "lets webhooks reach loopback, private, link-local and metadata addresses (refused by "
     "default, checked when connecting; docs/security.md)",
     "允许回调访问回环、私有、链路本地和元数据地址（默认拒绝，连接时检查；docs/security.md）"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL,
     "Disk and store: free space of DIR, --outbox-min-free-mb > --min-free-mb > --reserve-mb "
     "(docs/storage-space.md)",
     "磁盘与存储：数据目录的空闲空间，须 --outbox-min-free-mb > --min-free-mb > --reserve-mb"
     "（docs/storage-space.md）"},
    {"--outbox-min-free-mb", OPT_INT, F(ob_free_mb), 1, 4000000, U_MB, "MB", "4 x min-free",
     "below: the outbox pauses (no PDF or job writes)", "低于此值时发件箱暂停（不写 PDF 与任务）"},
    {"--min-free-mb", OPT_INT, F(min_free_mb), 1, 1000000, U_MB, "MB", "64",
     "below: writes are degraded (503)", "低于此值时写入降级（503）"},
    {"--reserve-mb", OPT_INT, F(reserve_mb), 0, 1000000, U_MB, "MB", "min-free / 4",
     "kept allocated in DIR/fapiao.reserve; released for audit and the store's bookkeeping when "
     "less is free, and at start on a full disk (0: none)",
     "在 DIR/fapiao.reserve 中预留的空间，空间不足时及磁盘已满时启动释放给审计与存储记账（0 "
     "为不预留）"},
    {"--probe-interval-ms", OPT_INT, F(probe_ms), 100, 3600000, U_MS, "MS", "15000",
     "the database write probe; every second while degraded", "数据库写探测的间隔；降级时每秒一次"},
    {"--slow-write-ms", OPT_INT, F(slow_ms), 10, 600000, U_MS, "MS", "2000",
     "a commit or write probe slower than this counts as a failure (a stalled disk)",
     "提交或写探测慢于此值视为失败（磁盘停滞）"},
    {"--write-deadline-ms", OPT_INT, F(deadline_ms), 100, 600000, U_MS, "MS", "5000",
     "an issue still queued then gets 503 WRITE_TIMEOUT; one still committing gets 503 "
     "WRITE_OUTCOME_UNKNOWN",
     "开票请求排队超过此时间返回 503 WRITE_TIMEOUT，正在提交的返回 503 WRITE_OUTCOME_UNKNOWN"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "Audit (docs/audit.md)",
     "审计（docs/audit.md）"},
    {"--audit-key", OPT_STR, F(audit_key), 0, 0, U_NONE, "FILE",
     "$FAPIAO_AUDIT_KEY, else DIR/audit.key",
     "the audit signing key kept outside the data directory (its public key is FILE with .pub); a "
     "missing key is never made anew once the log holds a signed checkpoint",
     "数据目录之外的审计签名密钥（公钥为 "
     "FILE.pub）；日志中已有签名检查点时，缺失的密钥不会重新生成"},
    {"--checkpoint-sink", OPT_STR, F(cp_sink), 0, 0, U_NONE, "DIR|cmd:COMMAND", NULL,
     "ships each signed checkpoint to DIR/checkpoints.jsonl (appended; make it chattr +a or "
     "write-once) or to COMMAND's stdin",
     "把每个签名检查点追加到 DIR/checkpoints.jsonl（建议 chattr +a "
     "或一次写入介质）或交给命令的标准输入"},
    {"--audit-verify-interval", OPT_INT, F(audit_verify_s), 0, 86400, U_S, "SECONDS", "300",
     "how often the server verifies its own audit chain from the last checkpoint it verified "
     "(fapiao_audit_verify_last_ok; 0: never; docs/alerting.md)",
     "服务器校验自身审计哈希链的间隔，自上次校验到的检查点起（指标 "
     "fapiao_audit_verify_last_ok；0 为不校验；docs/alerting.md）"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL, "Continuous archiving (docs/recovery.md)",
     "持续归档（docs/recovery.md）"},
    {"--archive", OPT_STR, F(archive), 0, 0, U_NONE, "DIR", NULL,
     "a backup set: a full at start, then every committed transaction, fsynced there at least "
     "every --archive-interval (the RPO on one node); restore with fapiao backup restore",
     "备份集目录：启动时做一次全量，此后每个已提交事务至少每 --archive-interval 秒 fsync "
     "到该处（单节点 RPO）；用 fapiao backup restore 恢复"},
    {"--archive-interval", OPT_INT, F(archive_interval_s), 1, 3600, U_S, "SECONDS", "10",
     "how often the committed transactions go to the archive", "已提交事务写入归档的间隔"},
    {"--archive-command", OPT_STR, F(archive_command), 0, 0, U_NONE, "COMMAND", NULL,
     "run for each new archived file (%p its path, %f its name), like PostgreSQL's "
     "archive_command; exit 0 = taken; retried, in order",
     "每个新归档文件执行一次（%p 路径，%f 文件名），同 PostgreSQL 的 archive_command；"
     "退出码 0 表示已接收，失败按序重试"},
    {"--archive-lag-warn", OPT_INT, F(archive_lag_warn_s), 1, 86400, U_S, "SECONDS", "60",
     "/readyz warns when the archive is behind by more than this",
     "归档落后超过此时间时 /readyz 给出警告"},

    {NULL, OPT_SECTION, 0, 0, 0, U_NONE, NULL, NULL,
     "Metrics: /metrics is public on the main port unless one of these is given "
     "(docs/security.md)",
     "监控指标：/metrics 默认在主端口公开，除非给出以下任一项（docs/security.md）"},
    {"--metrics-token-file", OPT_STR, F(metrics_token), 0, 0, U_NONE, "FILE", NULL,
     "/metrics needs this bearer token (the file's first line; a key file, 0600)",
     "/metrics 需要此令牌（文件第一行；按密钥文件要求 0600）"},
    {"--metrics-listen", OPT_STR, F(metrics_listen), 0, 0, U_NONE, "HOST:PORT", NULL,
     "a plain-HTTP listener on loopback serving only /metrics; the main port's /metrics then "
     "needs the token or is absent",
     "另开只提供 /metrics 的回环地址明文监听；主端口的 /metrics 随之需要令牌或不再提供"},
    {"--metrics-top-n", OPT_INT, F(metrics_top_n), 1, 1000, U_NONE, "N", "20",
     "the metrics listener's invoices issued per seller and per client: the top N by volume, "
     "the rest as \"other\" (docs/alerting.md)",
     "监控监听地址上按销售方、按客户端的开票计数：开票量最大的前 N 个，其余计入 "
     "\"other\"（docs/alerting.md）"},
    {"--alerting", OPT_STR, F(alerting), 0, 0, U_NONE, "FILE", NULL,
     "the built-in alert evaluator and notifier, with the receivers of FILE "
     "(docs/alerting.md \"Built-in evaluator\")",
     "启用内置告警评估与通知，接收方见 FILE（docs/alerting.md \"Built-in evaluator\"）"},
    {"--console-dir", OPT_STR, F(console_dir), 0, 0, U_NONE, "DIR", FP_CONSOLE_DIR_DEFAULT,
     "the operations console's pages, served at /console/ (docs/console.md)",
     "运维控制台的页面目录，在 /console/ 提供（docs/console.md）"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

static const char intro[] =
    "usage: fapiao serve --data-dir DIR [options]\n"
    "       fapiao serve [--config FILE] --print-config [options]\n"
    "  Runs the HTTPS invoicing service; on SIGINT or SIGTERM it commits and answers the\n"
    "  queued requests first.  SIGHUP re-reads the config file and applies the settings\n"
    "  marked [SIGHUP] (the others it names as needing a restart), re-reads the\n"
    "  certificate, key and OCSP response for new connections (after a test handshake;\n"
    "  bad files keep the old certificate) and reopens the access log.\n"
    "  启动 HTTPS 开票服务；SIGINT/SIGTERM 时先提交并答复已排队的请求再退出。SIGHUP 重新读取\n"
    "  配置文件并应用标有 [SIGHUP] 的设置（其余更改会列出，需重启生效），重新加载证书、私钥与\n"
    "  OCSP 响应（先完成一次测试握手，文件有误则继续使用原证书，已建立的连接不受影响），并重新\n"
    "  打开访问日志。\n"
    "\n"
    "  Every option below is also a key of the [serve] section of the config file (the name\n"
    "  without dashes: data-dir = /var/lib/fapiao; switches take true or false) and an\n"
    "  environment variable FAPIAO_<NAME> (FAPIAO_DATA_DIR).  Flags win over variables,\n"
    "  variables over the file, the file over the defaults (docs/configuration.md).\n"
    "  以下每个选项也是配置文件 [serve] 节中的键（去掉前导横线，如 data-dir = /var/lib/fapiao；\n"
    "  开关取 true 或 false）和环境变量 FAPIAO_<NAME>（如 FAPIAO_DATA_DIR）。优先级：命令行参数 >\n"
    "  环境变量 > 配置文件 > 默认值（docs/configuration.md）。\n"
    "  --config FILE\n"
    "      the config file [default: $FAPIAO_CONFIG, else " CFG_DEFAULT_PATH " if it exists]\n"
    "      配置文件（默认为 $FAPIAO_CONFIG，否则为 " CFG_DEFAULT_PATH "，如存在）\n"
    "  --print-config\n"
    "      prints each setting's value and where it comes from, then exits\n"
    "      列出每项设置的生效值及其来源，然后退出\n";

static const char outro[] =
    "\n"
    "  At start the TLS chain and key are checked: an expired, not yet valid or mismatched\n"
    "  pair, or one that fails a test handshake, is refused; one that ends within 30 days\n"
    "  warns.  TLS 1.2 and 1.3 only.  Key files (TLS key, passphrase file, token.key,\n"
    "  audit.key, webhook.key, the metrics token) must be 0600 if the service user owns\n"
    "  them, 0640 at most if root does (docs/tls.md); looser ones are refused.\n"
    "  启动时检查证书链与私钥：过期、未生效、不匹配或测试握手失败则拒绝启动，30 天内到期则警告；\n"
    "  仅支持 TLS 1.2 与 1.3。密钥文件（TLS 私钥、口令文件、token.key、audit.key、webhook.key、\n"
    "  监控令牌）的权限须为 0600（服务用户所有）或至多 0640（root 所有），否则拒绝启动。\n";

/* Appends s wrapped at 78 columns, each line indented by 6 (ASCII words). */
static void wrap(fp_buf *b, const char *s)
{
    size_t col = 0;
    while (*s) {
        size_t w = strcspn(s, " ");
        if (col && col + 1 + w > 72) {
            fp_buf_puts(b, "\n");
            col = 0;
        }
        fp_buf_printf(b, "%s%.*s", col ? " " : "      ", (int)w, s);
        col += w + (col ? 1 : 0);
        s += w;
        while (*s == ' ')
            s++;
    }
    fp_buf_puts(b, "\n");
}

/* The help: every row of the table, with its range, unit and default. */
static const char *usage(void)
{
    static char *text;
    if (text)
        return text;
    fp_buf b;
    fp_buf_init(&b, 1u << 20);
    fp_buf_puts(&b, intro);
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (o->kind == OPT_SECTION) {
            fp_buf_printf(&b, "\n  %s\n  %s\n", o->en, o->zh);
            continue;
        }
        fp_buf_printf(&b, "  %s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        if (o->kind != OPT_STR && o->kind != OPT_BOOL)
            fp_buf_printf(&b, "  (%ld-%ld%s%s)", o->min, o->max, units[o->unit].en,
                          o->kind == OPT_LIMIT || o->kind == OPT_LIMIT_MIN ? ", 0: no limit"
                          : o->kind == OPT_INT_OFF                         ? ", or off"
                                                                           : "");
        if (o->def)
            fp_buf_printf(&b, "  [default: %s]", o->def);
        if (o->live)
            fp_buf_puts(&b, "  [SIGHUP]");
        fp_buf_puts(&b, "\n");
        wrap(&b, o->en);
        fp_buf_printf(&b, "      %s\n", o->zh);
    }
    fp_buf_puts(&b, outro);
    size_t len;
    text = fp_buf_take(&b, &len);
    return text ? text : intro;
}

/* "NAME 须为 MIN–MAX" / "NAME must be MIN-MAX", with the unit. */
static void range_text(const opt *o, const char *name, char *zh, char *en, size_t cap)
{
    int limit = o->kind == OPT_LIMIT || o->kind == OPT_LIMIT_MIN;
    snprintf(zh, cap, "%s 须为 %ld–%ld%s%s%s", name, o->min, o->max, units[o->unit].zh,
             limit                    ? "（0 表示不限）"
             : o->kind == OPT_INT_OFF ? " 或 off"
                                      : "",
             o->kind == OPT_LIMIT_MIN ? "，写作 N、N/s（每秒）或 N/min（每分钟）" : "");
    snprintf(en, cap, "%s must be %ld-%ld%s%s%s", name, o->min, o->max, units[o->unit].en,
             limit                    ? " (0: no limit)"
             : o->kind == OPT_INT_OFF ? " or off"
                                      : "",
             o->kind == OPT_LIMIT_MIN ? ", as N or N/s (per second) or N/min (per minute)" : "");
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* One given value into its field: 0, or -1 (the value is out of range or
 * not a number: the caller says where it came from). */
static int take(const opt *o, const char *v, serve_conf *c)
{
    char *field = (char *)c + o->field;
    char num[32];
    switch (o->kind) {
    case OPT_STR:
        *(const char **)field = v;
        return 0;
    case OPT_BOOL: {
        int b = cfg_bool(v);
        if (b < 0)
            return -1;
        *(int *)field = b;
        return 0;
    }
    case OPT_LIMIT_MIN: { /* N, N/s or N/min */
        size_t n = strlen(v);
        long *period = (long *)((char *)c + o->period);
        *period = 1;
        if (n > 4 && !strcmp(v + n - 4, "/min")) {
            *period = 60;
            n -= 4;
        } else if (n > 2 && !strcmp(v + n - 2, "/s")) {
            n -= 2;
        }
        snprintf(num, sizeof num, "%.*s", (int)(n < 31 ? n : 31), v);
        v = num;
        break;
    }
    case OPT_INT_OFF:
        if (!strcmp(v, "off")) {
            *(long *)field = -1;
            return 0;
        }
        break;
    default:
        break;
    }
    return parse_long(v, o->min, o->max, (long *)field);
}

/* Where each setting came from, for --print-config. */
typedef struct layered {
    const char *raw[NOPTS]; /* the value that won (NULL: the default) */
    cfg_src src[NOPTS];
    int line[NOPTS];
    const char *path; /* the config file (NULL: none) */
    int exists;       /* it was there */
} layered;

/* The value of row i from the strongest layer that has one. */
static void pick(layered *L, size_t i, const char *flag, const cfg_val *fv)
{
    char env[96];
    cfg_env_name(opts[i].name + 2, env, sizeof env);
    const char *ev = getenv(env);
    if (flag) {
        L->raw[i] = flag;
        L->src[i] = CFG_FLAG;
    } else if (ev && *ev) {
        L->raw[i] = ev;
        L->src[i] = CFG_ENV;
    } else if (fv->raw) {
        L->raw[i] = fv->raw;
        L->src[i] = CFG_FILE;
        L->line[i] = fv->line;
    }
}

/* Row i's chosen value into c: 0, or -1 with the problem printed where it
 * came from (the flag as before; FAPIAO_X=VALUE; FILE:LINE). */
static int apply(const layered *L, size_t i, serve_conf *c)
{
    const opt *o = &opts[i];
    if (!L->raw[i] || take(o, L->raw[i], c) == 0)
        return 0;
    char zh[256], en[256], where[4200], env[96];
    const char *key = o->name + 2;
    if (o->kind == OPT_BOOL) {
        snprintf(zh, sizeof zh, "%s 须为 true 或 false", key);
        snprintf(en, sizeof en, "%s must be true or false", key);
    } else {
        range_text(o, L->src[i] == CFG_FLAG ? o->name : key, zh, en, sizeof zh);
    }
    switch (L->src[i]) {
    case CFG_ENV:
        cfg_env_name(key, env, sizeof env);
        snprintf(where, sizeof where, "%s=%s", env, L->raw[i]);
        cfg_error(where, zh, en);
        break;
    case CFG_FILE:
        snprintf(where, sizeof where, "%s:%d", L->path, L->line[i]);
        cfg_error(where, zh, en);
        break;
    default:
        cli_error(zh, en);
    }
    return -1;
}

/* A database URL's password (scheme://user:PASSWORD@host...) as "***":
 * --print-config output is shared in tickets (docs/ha.md: keep it in
 * ~/.pgpass instead). */
static void mask_url_password(char *v, size_t cap)
{
    char *kw = strstr(v, "password="); /* libpq's keyword form */
    if (kw && (kw == v || kw[-1] == ' ')) {
        char *val = kw + 9, *end = val + strcspn(val, " ");
        if (end > val && strlen(v) + 3 < cap)
            memmove(val + 3, end, strlen(end) + 1), memcpy(val, "***", 3);
    }
    char *at, *p = strstr(v, "://");
    if (!p || !(at = strchr(p + 3, '@')))
        return;
    char *colon = memchr(p + 3, ':', (size_t)(at - (p + 3)));
    if (colon && (size_t)(at - colon) > 1 && strlen(v) + 3 < cap)
        memmove(colon + 4, at, strlen(at) + 1), memcpy(colon + 1, "***", 3);
}

/* --print-config: the effective settings as a config file would hold them
 * (defaults commented out), each with its source after ';'. */
static void print_config(const layered *L, const serve_conf *c)
{
    printf("; fapiao serve --print-config\n"
           "; 生效的设置及其来源 / effective settings and where each comes from\n"
           "; 优先级 / precedence: flag > env FAPIAO_* > file > default\n");
    if (L->path)
        printf("; 配置文件 / config file: %s%s\n", L->path,
               L->exists ? "" : " (不存在，未读取 / not found, not read)");
    else
        printf("; 配置文件 / config file: 无 / none\n");
    printf("[serve]\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (o->kind == OPT_SECTION) {
            printf("\n; %s / %s\n", o->zh, o->en);
            continue;
        }
        char val[4200], src[4200], env[96];
        const char *key = o->name + 2;
        long rate = o->kind == OPT_LIMIT_MIN ? *(const long *)((const char *)c + o->field) : 0;
        if (o->kind == OPT_BOOL)
            snprintf(val, sizeof val, "%s",
                     *(const int *)((const char *)c + o->field) ? "true" : "false");
        else if (L->raw[i] && rate > 0) /* N/s or N/min, however it was written */
            snprintf(val, sizeof val, "%ld/%s", rate,
                     *(const long *)((const char *)c + o->period) == 60 ? "min" : "s");
        else
            snprintf(val, sizeof val, "%s", L->raw[i] ? L->raw[i] : o->def ? o->def : "");
        if (o->field == F(database))
            mask_url_password(val, sizeof val);
        switch (L->src[i]) {
        case CFG_FLAG:
            snprintf(src, sizeof src, "flag %s", o->name);
            break;
        case CFG_ENV:
            cfg_env_name(key, env, sizeof env);
            snprintf(src, sizeof src, "env %s", env);
            break;
        case CFG_FILE:
            snprintf(src, sizeof src, "%s:%d", L->path, L->line[i]);
            break;
        default:
            snprintf(src, sizeof src, "default");
        }
        int n = printf("%s%s = %s", L->src[i] == CFG_DEFAULT ? "; " : "", key, val);
        printf("%*s ; %s\n", n < 48 ? 48 - n : 0, "", src);
    }
}

int serve_opts_parse(int argc, char **argv, serve_conf *c)
{
    memset(c, 0, sizeof *c);
    static layered L; /* large (paths); one parse at a time (start, SIGHUP) */
    memset(&L, 0, sizeof L);
    const char *raw[NOPTS] = {0}, *names[NOPTS] = {0};
    int on[NOPTS] = {0};
    cli_flag flags[NOPTS + 3];
    size_t n = 0;
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (o->kind == OPT_SECTION)
            continue;
        if (o->kind != OPT_STR && o->kind != OPT_BOOL)
            *(long *)((char *)c + o->field) = SERVE_UNSET;
        if (o->kind == OPT_LIMIT_MIN)
            *(long *)((char *)c + o->period) = SERVE_UNSET;
        names[i] = o->name + 2;
        flags[n++] = (cli_flag){o->name, o->kind == OPT_BOOL, &raw[i], &on[i]};
    }
    const char *config = NULL;
    flags[n++] = (cli_flag){"--config", 0, &config, NULL};
    flags[n++] = (cli_flag){"--print-config", 1, NULL, &c->print_config};
    flags[n] = (cli_flag){NULL, 0, NULL, NULL};
    const char *help = usage();
    if (cli_parse(argc, argv, flags, help) < 0)
        return 2;
    int required;
    L.path = cfg_path(config, &required);
    static cfg_val fv[NOPTS];
    int problems = cfg_file_read(L.path, required, "serve", names, NOPTS, fv, &L.exists, &c->file);
    c->config = L.exists ? L.path : NULL;
    for (size_t i = 0; i < NOPTS; i++)
        if (names[i])
            pick(&L, i, raw[i] ? raw[i] : on[i] ? "true" : NULL, &fv[i]);
    for (size_t i = 0; i < NOPTS; i++) /* required, and checked first */
        if (opts[i].kind == OPT_STR && opts[i].field == F(dir) && !c->print_config && !problems &&
            cli_require(L.raw[i], opts[i].name, help) < 0)
            return 2;
    for (size_t i = 0; i < NOPTS; i++)
        if (names[i] && apply(&L, i, c) < 0)
            problems++;
    if (problems)
        return 2;
    if (c->print_config)
        print_config(&L, c);
    return 0;
}

void serve_conf_free(serve_conf *c)
{
    cfg_file_free(c->file);
    c->file = NULL;
}

int serve_opts_reload(serve_conf *cur, const serve_conf *next,
                      void (*changed)(const char *name, int live, void *arg), void *arg)
{
    int live = 0;
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (o->kind == OPT_SECTION)
            continue;
        char *a = (char *)cur + o->field;
        const char *b = (const char *)next + o->field;
        int same;
        if (o->kind == OPT_STR) {
            const char *x = *(const char **)a, *y = *(const char *const *)b;
            same = x == y || (x && y && !strcmp(x, y));
        } else if (o->kind == OPT_BOOL) {
            same = *(int *)a == *(const int *)b;
        } else {
            same =
                *(long *)a == *(const long *)b &&
                (o->kind != OPT_LIMIT_MIN || *(long *)((char *)cur + o->period) ==
                                                 *(const long *)((const char *)next + o->period));
        }
        if (same)
            continue;
        changed(o->name + 2, o->live, arg);
        if (!o->live)
            continue;
        /* live rows are numbers (a text would point into next's storage) */
        *(long *)a = *(const long *)b;
        if (o->kind == OPT_LIMIT_MIN)
            *(long *)((char *)cur + o->period) = *(const long *)((const char *)next + o->period);
        live++;
    }
    return live;
}

/* The database setting as serve resolves it below its flags (for the other
 * commands, cli_database): $FAPIAO_DATABASE, else the config file's
 * [serve] database key ($FAPIAO_CONFIG or the default path; problems in the
 * file are printed).  NULL when neither sets it.  The value lives until the
 * process ends. */
const char *serve_opts_database(void)
{
    const char *ev = getenv("FAPIAO_DATABASE");
    if (ev && *ev)
        return ev;
    static cfg_file *file;
    static cfg_val fv[NOPTS];
    const char *names[NOPTS] = {0};
    size_t db = NOPTS;
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].kind != OPT_SECTION) {
            names[i] = opts[i].name + 2;
            if (opts[i].field == F(database))
                db = i;
        }
    int required, exists = 0;
    const char *path = cfg_path(NULL, &required);
    if (!file)
        cfg_file_read(path, required, "serve", names, NOPTS, fv, &exists, &file);
    return db < NOPTS ? fv[db].raw : NULL;
}
