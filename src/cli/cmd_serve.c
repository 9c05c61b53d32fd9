/* cmd_serve.c — `fapiao serve --data-dir DIR [--listen HOST:PORT]`: opens
 * the store, starts the HTTPS server, and stops both cleanly on SIGINT or
 * SIGTERM (queued invoices are committed and answered first).  SIGHUP
 * re-reads the settings (serve_opts.h) and applies the live ones, reloads
 * TLS and reopens the access log.  Under systemd (Type=notify) it says
 * READY=1 once listening, STOPPING=1 when stopping, and pings the watchdog
 * from the health thread (docs/configuration.md). */
#include "cli.h"
#include "datadir.h"
#include "serve_opts.h"
#include "fapiao/alerting.h"
#include "upstream_opts.h"
#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/auditwatch.h"
#include "fapiao/auth.h"
#include "fapiao/backup.h"
#include "fapiao/console.h"
#include "fapiao/seal.h"
#include "fapiao/health.h"
#include "fapiao/jobs.h"
#include "fapiao/keyfile.h"
#include "fapiao/outbox.h"
#include "fapiao/rbac.h"
#include "fapiao/server.h"
#include "fapiao/store.h"
#include "fapiao/taxcode.h"
#include "fapiao/upload.h"
#include "fapiao/credit.h"
#include "fapiao/numkeeper.h"
#include "fapiao/uploader.h"
#include "fapiao/redkeeper.h"
#include "fapiao/tls.h"

#include <curl/curl.h>
#include <systemd/sd-daemon.h>
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
    cli_dd_path(path, sizeof path, dir, CLI_DD_WEBHOOK_KEY);
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

/* The health thread's round: systemd's watchdog (WatchdogSec=) is fed
 * only while the checks keep running. */
static void watchdog_ping(void *arg)
{
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

/* What one run of the server holds: the options, what they became, the
 * data directory's paths, and the parts started (stopped in reverse). */
typedef struct serve_run {
    serve_conf c;
    fp_server_opts so;
    fp_outbox_opts oo;
    fp_health_opts ho;
    int min_free_mb, ob_free_mb, reserve_mb;
    char db[PATH_MAX], crt[PATH_MAX], key[PATH_MAX], tkey[PATH_MAX], tc[PATH_MAX];
    char alog[PATH_MAX], pdf_dir[PATH_MAX], self[PATH_MAX], akey[PATH_MAX];
    unsigned char token_key[FP_TOKEN_KEY_LEN];
    char mtoken[257];
    const char *audit_key;
    int lockfd;
    fp_taxcode_table *codes;
    upstream_conf up; /* [upstream] (docs/upstream.md) */
    /* tables replaced by a SIGHUP, kept until the server stops */
    fp_taxcode_table *old_codes[64];
    int nold_codes;
    fp_store *store;
    fp_audit_shipper *shipper;
    fp_auditwatch *auditwatch; /* the server verifies its audit chain (auditwatch.h) */
    fp_archiver *archiver;     /* --archive (docs/recovery.md) */
    fp_outbox *outbox;
    fp_numkeeper *numkeeper; /* [upstream]: numbers downloaded (numkeeper.h) */
    fp_uploader *uploader;   /* [upstream]: uploads to the tax platform (upload.h) */
    fp_redkeeper *redkeeper; /* [upstream]: red forms filed (redkeeper.h) */
    fp_health *health;
    fp_tls *tls;
    fp_server *srv;
    fp_notify_conf alert_conf; /* --alerting (docs/alerting.md) */
    fp_alerting *alerting;
    struct fp_console *console; /* logins and sessions (docs/console.md) */
} serve_run;

/* The number options into the server's, outbox's and health checks'
 * settings (what is not given stays 0: their defaults apply).  0, or 2
 * after a usage error. */
static int apply_numbers(serve_run *r)
{
    const serve_conf *c = &r->c;
    fp_server_opts *so = &r->so;
    fp_outbox_opts *oo = &r->oo;
#define GIVEN(x) (c->x != SERVE_UNSET)
    const struct {
        long v;
        int *out;
    } ints[] = {
        {c->threads, &so->threads},
        {c->token_ttl, &so->token_ttl},
        {c->ob_workers, &oo->workers},
        {c->render_timeout_s, &oo->render_timeout_ms},
        {c->backoff_ms, &oo->backoff_ms},
        {c->wh_timeout_s, &oo->webhook_timeout_ms},
        {c->probe_ms, &r->ho.interval_ms},
        {c->min_free_mb, &r->min_free_mb},
        {c->ob_free_mb, &r->ob_free_mb},
        {c->reserve_mb, &r->reserve_mb},
        {c->max_conns, &so->max_connections},
        {c->max_per_ip, &so->max_connections_per_ip},
        {c->idle_s, &so->idle_timeout},
        {c->hdr_ms, &so->header_timeout_ms},
        {c->body_ms, &so->body_timeout_ms},
        {c->send_ms, &so->send_timeout_ms},
        {c->hs_ms, &so->handshake_timeout_ms},
        {c->concurrency, &so->concurrency_max},
        {c->metrics_top_n, &so->metrics_top_n},
    };
    r->reserve_mb = -1;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v != SERVE_UNSET)
            *ints[i].out = (int)ints[i].v;
    const struct {
        long v;
        int64_t *out;
    } wide[] = {{c->range_warn, &so->range_warn},
                {c->c_rate, &so->client_rate},
                {c->c_period_s, &so->client_period_s},
                {c->c_burst, &so->client_burst},
                {c->g_rate, &so->global_rate},
                {c->g_period_s, &so->global_period_s},
                {c->g_burst, &so->global_burst},
                {c->af_rate, &so->auth_fail_rate},
                {c->af_period_s, &so->auth_fail_period_s},
                {c->af_burst, &so->auth_fail_burst},
                {c->ar_rate, &so->auth_record_rate},
                {c->ar_burst, &so->auth_record_burst}};
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (wide[i].v != SERVE_UNSET)
            *wide[i].out = wide[i].v;
    if (GIVEN(max_body))
        so->max_body = (size_t)c->max_body;
    /* a rate of 0 means unlimited, not "use the default" */
    if (GIVEN(c_rate) && so->client_rate == 0)
        so->client_rate = -1;
    if (GIVEN(af_rate) && so->auth_fail_rate == 0)
        so->auth_fail_rate = -1;
    if (GIVEN(ar_rate) && so->auth_record_rate == 0)
        so->auth_record_rate = -1;
    so->access_log_max_bytes = (GIVEN(log_max_mb) ? (int64_t)c->log_max_mb : 100) << 20;
    if (GIVEN(grace_s))
        so->shutdown_grace_ms = (int)c->grace_s * 1000;
    if (GIVEN(resp_mem_mb))
        so->response_memory = (size_t)c->resp_mem_mb << 20;
    oo->allow_private_webhooks = c->allow_private_webhooks;
    oo->render_timeout_ms *= 1000;
    oo->webhook_timeout_ms *= 1000;
    if (GIVEN(retry_for_s))
        oo->retry_for_ms = (int64_t)c->retry_for_s * 1000;
    /* the bounded backlog (docs/outbox.md): 0 given means never / kept */
    if (GIVEN(render_backlog_max))
        oo->render_backlog_max = c->render_backlog_max ? c->render_backlog_max : -1;
    if (GIVEN(render_age_max_s))
        oo->render_age_max_ms = c->render_age_max_s ? (int64_t)c->render_age_max_s * 1000 : -1;
    if (GIVEN(od_wait_ms))
        oo->on_demand_wait_ms = (int)c->od_wait_ms;
    if (GIVEN(od_after_ms))
        oo->on_demand_after_ms = c->od_after_ms ? c->od_after_ms : -1;
    if (GIVEN(render_fg_workers))
        oo->render_fg_workers = c->render_fg_workers ? (int)c->render_fg_workers : -1;
    if (GIVEN(job_retention_s))
        oo->job_retention_ms = c->job_retention_s ? (int64_t)c->job_retention_s * 1000 : -1;
    /* the disk thresholds are one ordered set: outbox > degrade > reserve */
    if (!r->min_free_mb)
        r->min_free_mb = 64;
    if (!r->ob_free_mb)
        r->ob_free_mb = 4 * r->min_free_mb;
    if (r->reserve_mb < 0)
        r->reserve_mb = r->min_free_mb / 4;
    if (!(r->ob_free_mb > r->min_free_mb && r->min_free_mb > r->reserve_mb)) {
        cli_error("磁盘阈值须满足 --outbox-min-free-mb > --min-free-mb > --reserve-mb",
                  "the disk thresholds must be --outbox-min-free-mb > --min-free-mb > "
                  "--reserve-mb");
        return 2;
    }
#undef GIVEN
    return 0;
}

/* The text options checked before the data directory is touched: 0 or 2. */
static int apply_texts(serve_run *r)
{
    const serve_conf *c = &r->c;
    if (parse_listen(c->listen ? c->listen : "127.0.0.1:8443", r->so.host, sizeof r->so.host,
                     &r->so.port) < 0) {
        cli_error("--listen 格式应为 HOST:PORT，例如 127.0.0.1:8443",
                  "--listen must be HOST:PORT, e.g. 127.0.0.1:8443");
        return 2;
    }
    if (c->trusted_proxy) {
        fp_allowlist tp;
        char bad[64] = "";
        if (fp_allowlist_parse(c->trusted_proxy, &tp, bad, sizeof bad) < 0) {
            char zh[160], en[160];
            snprintf(zh, sizeof zh, "--trusted-proxy 中的 %s 不是 IPv4/IPv6 地址或 CIDR", bad);
            snprintf(en, sizeof en, "--trusted-proxy: %s is not an IPv4/IPv6 address or CIDR", bad);
            cli_error(zh, en);
            return 2;
        }
        r->so.trusted_proxies = c->trusted_proxy;
    }
    /* --archive ships SQLite's change log; PostgreSQL archives its WAL
     * with pgBackRest (docs/recovery.md) */
    if (c->archive && c->database && fp_store_is_url(c->database)) {
        cli_error("--archive 只适用于内置的 SQLite 数据库；PostgreSQL 请用 pgBackRest 归档 WAL"
                  "（docs/recovery.md）",
                  "--archive works with the embedded SQLite database only; on PostgreSQL "
                  "archive the WAL with pgBackRest (docs/recovery.md)");
        return 2;
    }
    return 0;
}

/* The data directory's paths; it must be one, not lost, and not served by
 * another process (the lock is held until exit).  0, 1 or 2. */
static int open_data_dir(serve_run *r)
{
    const char *dir = r->c.dir;
    cli_dd_path(r->db, sizeof r->db, dir, CLI_DD_DB);
    snprintf(r->crt, sizeof r->crt, "%s", r->c.cert ? r->c.cert : "");
    snprintf(r->key, sizeof r->key, "%s", r->c.key ? r->c.key : "");
    if (!r->c.cert)
        cli_dd_path(r->crt, sizeof r->crt, dir, CLI_DD_TLS_CERT);
    if (!r->c.key)
        cli_dd_path(r->key, sizeof r->key, dir, CLI_DD_TLS_KEY);
    cli_dd_path(r->tkey, sizeof r->tkey, dir, CLI_DD_TOKEN_KEY);
    cli_dd_path(r->tc, sizeof r->tc, dir, CLI_DD_TAXCODES);
    cli_dd_path(r->alog, sizeof r->alog, dir, CLI_DD_ACCESS_LOG);
    cli_dd_path(r->pdf_dir, sizeof r->pdf_dir, dir, CLI_DD_PDF_DIR);
    if (cli_database_lost(dir)) /* docs/storage.md */
        return 1;
    char hint_zh[PATH_MAX + 64], hint_en[PATH_MAX + 64];
    snprintf(hint_zh, sizeof hint_zh, "；先运行 fapiao init --data-dir %s", dir);
    snprintf(hint_en, sizeof hint_en, "; run fapiao init --data-dir %s first", dir);
    cli_database_set(r->c.database); /* serve's own --database, for the check */
    if (cli_check_data_dir(dir, 1, hint_zh, hint_en) < 0)
        return 1;
    /* One server per data directory: the store's single writer assigns
     * numbers from memory, so a second process must not write beside it.
     * The lock lives as long as the process (released by the kernel even on
     * kill -9). */
    char lockp[PATH_MAX];
    cli_dd_path(lockp, sizeof lockp, dir, CLI_DD_LOCK);
    r->lockfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (r->lockfd < 0 || flock(r->lockfd, LOCK_EX | LOCK_NB) < 0) {
        char zh[PATH_MAX + 128], en[PATH_MAX + 128];
        snprintf(zh, sizeof zh, "另一个 fapiao serve 正在使用数据目录 %s", dir);
        snprintf(en, sizeof en, "another fapiao serve is using the data directory %s", dir);
        cli_error(zh, en);
        if (r->lockfd >= 0)
            close(r->lockfd);
        return 1;
    }
    return 0;
}

/* The secrets: the metrics token, the token signing key, and the audit and
 * webhook keys' permissions; then the tax code table.  0, 1 or 2. */
static int load_secrets(serve_run *r)
{
    fp_err err = {0};
    r->audit_key = r->c.audit_key ? r->c.audit_key : cli_audit_key();
    if (r->c.metrics_listen && parse_listen(r->c.metrics_listen, r->so.metrics_host,
                                            sizeof r->so.metrics_host, &r->so.metrics_port) < 0) {
        cli_error("--metrics-listen 格式应为 HOST:PORT，例如 127.0.0.1:9464",
                  "--metrics-listen must be HOST:PORT, e.g. 127.0.0.1:9464");
        return 2;
    }
    if (r->c.alerting && fp_notify_conf_read(r->c.alerting, &r->alert_conf, &err) < 0) {
        cli_fail("告警配置不可用，拒绝启动", "the alerting file cannot be used; not starting",
                 err.msg);
        return 1;
    }
    if (r->c.metrics_token && read_metrics_token(r->c.metrics_token, r->mtoken, &err) < 0) {
        cli_fail("监控令牌不可用，拒绝启动", "the metrics token cannot be used; not starting",
                 err.msg);
        return 1;
    }
    r->so.metrics_token = r->c.metrics_token ? r->mtoken : NULL;
    if (read_token_key(r->tkey, r->token_key, &err) < 0 ||
        check_audit_key(r->db, r->audit_key, &err) < 0 || check_webhook_key(r->c.dir, &err) < 0) {
        cli_fail("密钥文件不可用，拒绝启动", "a key file cannot be used; not starting", err.msg);
        return 1;
    }
    warn_loose_dir(r->c.dir);
    if (fp_taxcode_load(r->c.codes_path ? r->c.codes_path : r->tc, &r->codes, &err) < 0) {
        cli_fail("无法加载税收分类编码表", "cannot load the tax code table", err.msg);
        return 1;
    }
    return 0;
}

/* The notifier's silences (docs/alerting.md "Silences"): those active now,
 * read from the store each evaluation round, so that `fapiao alerts
 * silence` takes effect at the next one. */
typedef struct silence_out {
    char (*out)[512];
    int cap, n;
} silence_out;

static void add_silence(const fp_silence *x, void *arg)
{
    silence_out *o = arg;
    if (o->n < o->cap)
        snprintf(o->out[o->n++], sizeof o->out[0], "%s", x->matchers);
}

static int read_silences(void *arg, int64_t now_s, char (*out)[512], int cap)
{
    silence_out o = {out, cap, 0};
    return fp_store_silences(arg, now_s, add_silence, &o) < 0 ? -1 : o.n;
}

/* The server verifies its own audit chain every --audit-verify-interval
 * (docs/alerting.md "Audit verification"): 0, or 1 with the failure printed. */
static int start_auditwatch(serve_run *r)
{
    long every = r->c.audit_verify_s != SERVE_UNSET ? r->c.audit_verify_s : 300;
    char akey[PATH_MAX], apub[PATH_MAX];
    fp_err err = {0};
    if (every == 0)
        return 0;
    if (fp_audit_key_paths(r->db, r->audit_key, akey, apub, sizeof akey) < 0 ||
        fp_auditwatch_start(r->store, apub, (int)every, fp_server_metrics(r->srv), &r->auditwatch,
                            &err) < 0) {
        cli_fail("无法启动审计日志校验", "cannot start the audit log verification", err.msg);
        return 1;
    }
    return 0;
}

/* Stops what start_services started, in reverse order (NULLs skipped). */
static void stop_services(serve_run *r)
{
    if (r->srv)
        fp_server_set_history(r->srv, NULL); /* the overview reads the alerting's */
    fp_alerting_stop(r->alerting);           /* it samples the server's registry */
    fp_server_stop(r->srv);
    fp_auditwatch_stop(r->auditwatch); /* after the server: its registry calls it */
    fp_console_free(r->console);
    fp_tls_free(r->tls);
    if (r->outbox)
        fp_outbox_set_pause(r->outbox, NULL, NULL); /* it asks the health checks */
    fp_health_stop(r->health);
    fp_outbox_stop(r->outbox);
    fp_numkeeper_stop(r->numkeeper);
    fp_uploader_stop(r->uploader);
    fp_redkeeper_stop(r->redkeeper);
    fp_archiver_stop(r->archiver); /* a last round: the commits so far */
    fp_store_close(r->store);
    fp_audit_shipper_stop(r->shipper); /* after the store's closing checkpoint */
    fp_taxcode_free(r->codes);
    for (int i = 0; i < r->nold_codes; i++)
        fp_taxcode_free(r->old_codes[i]);
}

/* The store, with its webhook secrets sealed and its checkpoints shipped:
 * 0, or 1 with the failure printed. */
static int open_store(serve_run *r)
{
    fp_err err = {0};
    /* PostgreSQL: the default audit key is DIR/audit.key, as SQLite derives
     * it from its file (docs/ha.md); without a path that store signs nothing */
    char apub[PATH_MAX];
    const char *u = r->c.database;
    if (!r->audit_key && u &&
        (!strncmp(u, "postgresql://", 13) || !strncmp(u, "postgres://", 11)) &&
        fp_audit_key_paths(r->db, NULL, r->akey, apub, sizeof r->akey) == 0)
        r->audit_key = r->akey;
    fp_store_opts sto = {.path = r->c.database ? r->c.database : r->db, /* docs/ha.md */
                         .slow_write_ms = r->c.slow_ms != SERVE_UNSET ? (int)r->c.slow_ms : 0,
                         .write_deadline_ms =
                             r->c.deadline_ms != SERVE_UNSET ? (int)r->c.deadline_ms : 0,
                         .start_check = FP_START_CHECK_AUTO,
                         .audit_key_path = r->audit_key, /* docs/storage.md */
                         .key_dir = r->c.dir};
    int src = fp_store_open(&sto, &r->store, &err);
    /* A full disk can leave no room for the -shm file SQLite needs even to
     * read (docs/storage-space.md): the reserve is for this. */
    if (src < 0 && fp_health_release_reserve(r->c.dir)) {
        fprintf(stderr,
                "{\"event\":\"reserve_released\",\"reason\":\"opening the store failed: %s\"}\n",
                err.msg);
        src = fp_store_open(&sto, &r->store, &err);
    }
    if (src < 0) {
        cli_fail("无法打开数据库", "cannot open the database", err.msg);
        return 1;
    }
    /* the tax platform configured: every invoice gets an upload row in its
     * issuing transaction (upload.h, docs/upstream.md) */
    if (upstream_conf_read(r->c.config, &r->up))
        return 1;
    fp_store_set_upload(r->store, r->up.configured);
    fp_store_set_credit(r->store, r->up.configured); /* credit.h: checked while known */
    /* webhook secrets stored in plaintext by earlier versions are sealed
     * (docs/security.md "Secrets at rest") */
    int sealed = 0;
    if (fp_store_webhook_seal_all(r->store, &sealed, &err) < 0) {
        cli_fail("无法加密 webhook 密钥", "cannot encrypt the webhook secrets", err.msg);
        return 1;
    }
    if (sealed)
        fprintf(stderr, "fapiao: 已加密 %d 个 webhook 密钥 / sealed %d webhook secrets at rest\n",
                sealed, sealed);
    /* a sink that cannot take the checkpoints so far refuses the start */
    int64_t shipped = 0;
    if (r->c.cp_sink &&
        (fp_audit_ship(r->db, r->c.cp_sink, NULL, &shipped, &err) < 0 ||
         fp_audit_shipper_start(r->db, r->c.cp_sink, 2000, &r->shipper, &err) < 0)) {
        cli_fail("审计检查点无法送出", "cannot ship audit checkpoints", err.msg);
        return 1;
    }
    fp_archive_opts ao = {
        .dir = r->c.archive,
        .data_dir = r->c.dir,
        .interval_s = r->c.archive_interval_s != SERVE_UNSET ? (int)r->c.archive_interval_s : 10,
        .command = r->c.archive_command};
    if (r->c.archive && fp_archiver_start(r->store, &ao, &r->archiver, &err) < 0) {
        cli_fail("无法启动持续归档", "cannot start continuous archiving", err.msg);
        return 1;
    }
    return 0;
}

/* The console's logins and sessions, its TOTP seeds sealed with
 * DIR/console.key (made 0600 on first use), and its pages' folder: 0, or
 * 1 with the failure printed. */
static int start_console(serve_run *r)
{
    char path[4096];
    unsigned char key[FP_SEAL_KEY_LEN];
    fp_err err = {0};
    if (cli_dd_path(path, sizeof path, r->c.dir, CLI_DD_CONSOLE_KEY) < 0 ||
        fp_seal_key_load(path, 1, key, &err) < 0) {
        cli_fail("无法读取控制台密钥", "cannot read the console key", err.msg);
        return 1;
    }
    fp_console_opts co = {.store = r->store, .seal_key = key};
    int rc = fp_console_new(&co, &r->console, &err);
    memset(key, 0, sizeof key);
    if (rc < 0) {
        cli_fail("无法启动控制台", "cannot start the console", err.msg);
        return 1;
    }
    r->so.console = r->console;
    r->so.console_dir = r->c.console_dir ? r->c.console_dir : FP_CONSOLE_DIR_DEFAULT;
    return 0;
}

/* The outbox, the health checks, TLS and the HTTPS server: 0, or 1 with
 * the failure printed (what started is stopped by the caller). */
static int start_services(serve_run *r)
{
    fp_err err = {0};
    /* the renderer processes run this same binary */
    ssize_t sn = readlink("/proc/self/exe", r->self, sizeof r->self - 1);
    r->self[sn > 0 ? sn : 0] = 0;
    r->oo.store = r->store;
    r->oo.pdf_dir = r->pdf_dir;
    r->oo.render_exe = sn > 0 ? r->self : "/proc/self/exe";
    if (fp_outbox_start(&r->oo, &r->outbox, &err) < 0) {
        cli_fail("无法启动发票 PDF 与通知任务", "cannot start the PDF and notification jobs",
                 err.msg);
        return 1;
    }
    fp_numkeeper_opts nk = {r->store, &r->up.c, r->up.numbers_batch, r->up.numbers_low,
                            r->up.numbers_check_ms};
    if (r->up.configured && fp_numkeeper_start(&nk, &r->numkeeper, &err) < 0) {
        cli_fail("无法启动号码下载", "cannot start the number downloads", err.msg);
        return 1;
    }
    fp_uploader_opts uo = {.store = r->store,
                           .up = &r->up.c,
                           .batch = (int)r->up.upload_batch,
                           .poll_ms = (int)r->up.upload_poll_ms,
                           .backoff_ms = (int)r->up.upload_backoff_ms,
                           .backoff_max_ms = (int)r->up.upload_backoff_max_ms};
    if (r->up.configured && fp_uploader_start(&uo, &r->uploader, &err) < 0) {
        cli_fail("无法启动发票上传", "cannot start the invoice uploads", err.msg);
        return 1;
    }
    fp_redkeeper_opts rk = {r->store, &r->up.c, r->up.red_check_ms};
    if (r->up.configured && fp_redkeeper_start(&rk, &r->redkeeper, &err) < 0) {
        cli_fail("无法启动红字确认单提交", "cannot start filing red forms", err.msg);
        return 1;
    }
    fp_server_opts *so = &r->so;
    so->outbox = r->outbox;
    so->uploader = r->uploader;
    so->upstream = r->up.configured; /* red invoices only on filed forms */
    so->pdf_dir = r->pdf_dir;
    fp_health_opts *ho = &r->ho;
    ho->store = r->store;
    ho->data_dir = r->c.dir;
    ho->cert_path = r->crt;
    ho->min_free_bytes = (int64_t)r->min_free_mb << 20;
    ho->outbox_min_free_bytes = (int64_t)r->ob_free_mb << 20;
    ho->reserve_bytes = r->reserve_mb ? (int64_t)r->reserve_mb << 20 : -1;
    ho->outbox = r->outbox;
    ho->range_warn = so->range_warn;
    ho->archiver = r->archiver;
    ho->archive_lag_warn_s =
        r->c.archive_lag_warn_s != SERVE_UNSET ? (int)r->c.archive_lag_warn_s : 60;
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0) { /* WATCHDOG_USEC (systemd) */
        ho->on_round = watchdog_ping;
        if (wd_usec < 3000000)
            fprintf(stderr,
                    "fapiao: 警告 / warning: WatchdogSec 少于 3 秒，健康检查约每秒一轮 / "
                    "WatchdogSec is under 3 s; the health checks run about once a second\n");
    }
    if (fp_health_start(ho, &r->health, &err) < 0) {
        cli_fail("无法启动健康检查", "cannot start the health checks", err.msg);
        return 1;
    }
    so->health = r->health;
    fp_outbox_set_pause(r->outbox, pause_outbox, r->health);
    so->fault_injection = r->c.fault_injection;
    if (r->c.fault_injection)
        fprintf(stderr,
                "fapiao: 已启用故障注入（仅供测试）/ fault injection enabled (tests only)\n");
    so->cert_path = r->crt;
    so->key_path = r->key;
    so->token_key = r->token_key;
    so->access_log = r->c.access_log ? r->c.access_log : r->alog;
    so->store = r->store;
    so->codes = r->codes;
    /* the chain and key are checked before anything listens */
    fp_tls_opts to = {.cert_path = r->crt,
                      .key_path = r->key,
                      .key_passphrase_path = r->c.key_pass,
                      .ocsp_path = r->c.ocsp,
                      .client_ca_path = r->c.client_ca};
    if (start_console(r))
        return 1;
    int tls_rc = fp_tls_new(&to, &r->tls, &err);
    so->tls = r->tls;
    if (tls_rc < 0) {
        cli_fail("TLS 证书不可用，拒绝启动", "the TLS certificate cannot be used", err.msg);
        cli_tls_missing_hint(r->crt, r->key);
    } else if (fp_server_start(so, &r->srv, &err) < 0)
        cli_fail("无法启动 HTTPS 服务", "cannot start the HTTPS server", err.msg);
    r->alert_conf.silences = read_silences;
    r->alert_conf.silences_arg = r->store;
    if (!r->c.alerting) /* no receivers: the history and rules for the console's overview */
        r->alert_conf.interval_s = 5;
    if (r->srv &&
        fp_alerting_start(&r->alert_conf, fp_server_metrics(r->srv), &r->alerting, &err) < 0) {
        cli_fail("无法启动内置告警", "cannot start the built-in alerting", err.msg);
        return 1;
    }
    if (r->srv)
        fp_server_set_history(r->srv, fp_alerting_history(r->alerting));
    return r->srv ? start_auditwatch(r) : 1;
}

/* The names a SIGHUP found changed: applied, or needing a restart. */
typedef struct changes {
    char live[1024], restart[1024];
} changes;

static void note_change(const char *name, int live, void *arg)
{
    changes *ch = arg;
    char *list = live ? ch->live : ch->restart;
    size_t n = strlen(list);
    snprintf(list + n, sizeof ch->live - n, "%s%s", n ? ", " : "", name);
}

/* SIGHUP: the tax code table read again (after `fapiao taxcodes import`,
 * docs/taxcodes.md) when its file changed; a table that does not load
 * keeps the old one. */
static void reload_codes(serve_run *r)
{
    const char *path = r->c.codes_path ? r->c.codes_path : r->tc;
    fp_taxcode_table *t = NULL;
    fp_err err = {0};
    if (r->nold_codes == (int)(sizeof r->old_codes / sizeof r->old_codes[0])) {
        fprintf(stderr, "fapiao: 税收分类编码表已重新加载过多次，请重启以加载新表 / the tax "
                        "code table was reloaded too often: restart to load a new one\n");
        return;
    }
    if (fp_taxcode_load(path, &t, &err) < 0) {
        fprintf(stderr,
                "fapiao: 税收分类编码表无法加载，继续使用原表 / cannot load the tax code table, "
                "keeping the previous one: %s\n",
                err.msg);
        return;
    }
    if (fp_taxcode_same(t, r->codes)) {
        fp_taxcode_free(t);
        return;
    }
    r->old_codes[r->nold_codes++] = r->codes;
    fp_server_set_codes(r->srv, t);
    r->codes = t;
    fprintf(stderr, "fapiao: 已重新加载税收分类编码表 / reloaded the tax code table: %d codes\n",
            fp_taxcode_count(t));
}

/* SIGHUP: the flags, variables and config file read again through the same
 * checks; the live settings (rate limits) take effect, the others changed
 * are named as needing a restart.  A file with problems (printed with
 * FILE:LINE) changes nothing. */
static void reload_settings(serve_run *r, int argc, char **argv)
{
    serve_conf nc;
    serve_run *t = calloc(1, sizeof *t);
    int rc = serve_opts_parse(argc, argv, &nc);
    if (!rc && t) {
        t->c = nc;
        rc = apply_numbers(t); /* the numbers as the server takes them */
    }
    if (rc || !t) {
        fprintf(stderr, "fapiao: 配置有误，保留原设置 / the configuration has errors; keeping "
                        "the previous settings\n");
        serve_conf_free(&nc);
        free(t);
        return;
    }
    changes ch = {{0}, {0}};
    serve_conf before = r->c;
    fp_err err = {0};
    if (serve_opts_reload(&r->c, &nc, note_change, &ch) > 0 &&
        fp_server_set_limits(r->srv, &t->so, &err) < 0) {
        r->c = before;
        fprintf(stderr,
                "fapiao: 限流设置无法更新，保留原设置 / cannot update the rate limits; "
                "keeping the previous ones: %s\n",
                err.msg);
    } else if (ch.live[0]) {
        fprintf(stderr, "fapiao: 已应用 / applied: %s\n", ch.live);
    }
    if (ch.restart[0])
        fprintf(stderr,
                "fapiao: 以下设置已更改，需重启才能生效 / changed, needs a restart to take "
                "effect: %s\n",
                ch.restart);
    if (!ch.live[0] && !ch.restart[0])
        fprintf(stderr, "fapiao: 配置已重新读取，无更改 / configuration re-read, unchanged\n");
    serve_conf_free(&nc);
    free(t);
}

/* Until SIGINT or SIGTERM; SIGHUP reloads the settings and TLS and reopens
 * the access log. */
static void serve_until_signal(serve_run *r, sigset_t *set, int argc, char **argv)
{
    fp_err err = {0};
    const char *h = r->so.host, *mh = r->so.metrics_host;
    fprintf(stderr, "fapiao: 正在监听 / listening on https://%s%s%s:%d (data %s, %d tax codes)\n",
            strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", fp_server_port(r->srv),
            r->c.dir, fp_taxcode_count(r->codes));
    if (r->c.config)
        fprintf(stderr, "fapiao: 配置文件 / config file %s\n", r->c.config);
    if (fp_server_metrics_port(r->srv))
        fprintf(stderr, "fapiao: 监控指标 / metrics on http://%s%s%s:%d/metrics\n",
                strchr(mh, ':') ? "[" : "", mh, strchr(mh, ':') ? "]" : "",
                fp_server_metrics_port(r->srv));
    /* systemd (Type=notify): listening, the store open; no-op without
     * NOTIFY_SOCKET */
    sd_notifyf(0, "READY=1\nSTATUS=listening on port %d", fp_server_port(r->srv));
    int sig = 0;
    while (sigwait(set, &sig) != 0 || sig == SIGHUP) {
        if (sig == SIGHUP) {
            sd_notify(0, "RELOADING=1\nSTATUS=reloading");
            reload_settings(r, argc, argv);
            reload_codes(r);
        }
        /* new handshakes take the re-read files; open connections keep
         * theirs; bad files keep the old certificate */
        if (sig == SIGHUP && fp_tls_reload(r->tls, &err) < 0)
            fprintf(stderr,
                    "fapiao: TLS 证书重新加载失败，继续使用原证书 / TLS reload failed, keeping "
                    "the previous certificate: %s\n",
                    err.msg);
        /* and the access log is opened again (after logrotate moved it) */
        if (sig == SIGHUP && fp_server_reopen_log(r->srv, &err) < 0)
            fprintf(stderr, "fapiao: 访问日志无法重新打开 / cannot reopen the access log: %s\n",
                    err.msg);
        if (sig == SIGHUP)
            sd_notifyf(0, "READY=1\nSTATUS=listening on port %d", fp_server_port(r->srv));
        sig = 0;
    }
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    fprintf(stderr, "fapiao: 收到信号 %d，正在停止 / signal %d, stopping\n", sig, sig);
}

int cmd_serve(int argc, char **argv)
{
    static serve_run run; /* large (paths), and one per process */
    serve_run *r = &run;
    int rc = serve_opts_parse(argc, argv, &r->c);
    if (rc || r->c.print_config)
        return rc;
    harden_process();
    if ((rc = apply_texts(r)) || (rc = apply_numbers(r)) || (rc = open_data_dir(r)) ||
        (rc = load_secrets(r)))
        return rc;
    /* Signals are taken by sigwait below; block them before any thread
     * starts so that no worker thread receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP); /* reloads the settings and the TLS certificate */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread uses libcurl */
    if (open_store(r) || start_services(r)) {
        stop_services(r);
        return 1;
    }
    serve_until_signal(r, &set, argc, argv);
    stop_services(r);
    serve_conf_free(&r->c);
    fprintf(stderr, "fapiao: 已停止 / stopped\n");
    return 0;
}
