/* serve_opts.h — the options of `fapiao serve`, read from one table
 * (serve_opts.c: name, field, min, max, unit, default and help text in
 * English and Chinese) that also prints `fapiao serve --help`.  Adding an
 * option is adding a row and a field here. */
#ifndef FAPIAO_CLI_SERVE_OPTS_H
#define FAPIAO_CLI_SERVE_OPTS_H

#include <limits.h>

/* A number option that was not given (the server's default applies). */
#define SERVE_UNSET LONG_MIN

typedef struct serve_conf {
    /* text options: NULL when not given */
    const char *dir, *listen, *access_log, *codes_path, *trusted_proxy;
    const char *cert, *key, *key_pass, *ocsp, *client_ca;
    const char *audit_key, *cp_sink, *metrics_listen, *metrics_token;
    /* switches: 0 or 1 */
    int fault_injection, allow_private_webhooks;
    /* numbers, in the unit of their option; SERVE_UNSET when not given */
    long threads, token_ttl, max_body, range_warn, grace_s;
    long log_max_mb;
    long af_rate, af_period_s, af_burst, ar_rate, ar_burst;
    long c_rate, c_burst, g_rate, g_burst, concurrency; /* concurrency -1: off */
    long resp_mem_mb, max_conns, max_per_ip, hs_ms, hdr_ms, body_ms, send_ms, idle_s;
    long ob_workers, render_timeout_s, backoff_ms, retry_for_s, wh_timeout_s;
    long min_free_mb, ob_free_mb, reserve_mb, probe_ms, slow_ms, deadline_ms;
} serve_conf;

/* Parses argv into c: 0, or 2 (a usage error, printed).  --help prints the
 * help made from the table and exits 0. */
int serve_opts_parse(int argc, char **argv, serve_conf *c);

#endif
