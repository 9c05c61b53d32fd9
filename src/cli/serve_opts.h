/* serve_opts.h — the options of `fapiao serve`, read from one table
 * (serve_opts.c: name, field, min, max, unit, default, whether SIGHUP
 * applies it, and help text in English and Chinese) that also prints
 * `fapiao serve --help` and `--print-config`.  Every row is a flag, a key
 * of the config file's [serve] section and a FAPIAO_<NAME> environment
 * variable (config.h; docs/configuration.md).  Adding an option is adding a
 * row and a field here. */
#ifndef FAPIAO_CLI_SERVE_OPTS_H
#define FAPIAO_CLI_SERVE_OPTS_H

#include <limits.h>

/* A number option that was not given (the server's default applies). */
#define SERVE_UNSET LONG_MIN

/* the console's pages where the package installs them */
#define FP_CONSOLE_DIR_DEFAULT "/usr/share/fapiao/console"

typedef struct serve_conf {
    /* text options: NULL when not given */
    const char *dir, *listen, *access_log, *codes_path, *trusted_proxy;
    const char *database; /* a postgresql:// URL or a file (docs/ha.md) */
    const char *cert, *key, *key_pass, *ocsp, *client_ca;
    const char *audit_key, *cp_sink, *metrics_listen, *metrics_token;
    const char *archive, *archive_command;
    const char *alerting;    /* --alerting FILE (docs/alerting.md) */
    const char *console_dir; /* --console-dir DIR (docs/console.md) */
    /* switches: 0 or 1 */
    int fault_injection, allow_private_webhooks;
    /* numbers, in the unit of their option; SERVE_UNSET when not given */
    long threads, token_ttl, max_body, range_warn, grace_s;
    long log_max_mb;
    long af_rate, af_period_s, af_burst, ar_rate, ar_burst;
    long c_rate, c_period_s, c_burst, g_rate, g_period_s, g_burst;
    long concurrency; /* -1: off */
    long resp_mem_mb, max_conns, max_per_ip, hs_ms, hdr_ms, body_ms, send_ms, idle_s;
    long ob_workers, render_timeout_s, backoff_ms, retry_for_s, wh_timeout_s;
    long render_backlog_max, render_age_max_s, od_wait_ms, job_retention_s; /* docs/outbox.md */
    long od_after_ms;
    long render_fg_workers;
    long min_free_mb, ob_free_mb, reserve_mb, probe_ms, slow_ms, deadline_ms;
    long archive_interval_s, archive_lag_warn_s;
    long metrics_top_n;  /* docs/alerting.md "Per seller and per client" */
    long audit_verify_s; /* docs/alerting.md "Audit verification" */
    /* not settings: how they were read */
    const char *config;    /* the config file read (NULL: none) */
    int print_config;      /* --print-config: printed; do not start */
    struct cfg_file *file; /* owns the text of the file's values */
} serve_conf;

/* Fills c from argv, then FAPIAO_* variables, then the config file
 * (--config FILE, $FAPIAO_CONFIG or /etc/fapiao/fapiao.conf), each value
 * through the same checks: 0, or 2 (every problem printed: the flag, the
 * variable, or FILE:LINE).  --help prints the help made from the table and
 * exits 0; --print-config prints every setting's value and source and sets
 * c->print_config.  Free c with serve_conf_free. */
int serve_opts_parse(int argc, char **argv, serve_conf *c);
void serve_conf_free(serve_conf *c);

/* After a SIGHUP: compares cur (what runs) with next (just read), calling
 * changed(name, live, arg) for every option whose value differs; live ones
 * (those SIGHUP applies: the table says which) are copied into cur, the
 * others stay as they run.  Returns how many live options changed. */
int serve_opts_reload(serve_conf *cur, const serve_conf *next,
                      void (*changed)(const char *name, int live, void *arg), void *arg);

/* The database setting without serve's flags: $FAPIAO_DATABASE, else the
 * config file's [serve] database key; NULL when neither sets it. */
const char *serve_opts_database(void);

#endif
