/* server.h — the HTTPS API server: libmicrohttpd with GnuTLS, an internal
 * epoll thread pool, a routing table, request ids, bounded per-request
 * memory and a JSON access log.  Issuing requests are handed to the store's
 * writer and their connections suspended until the group commit returns. */
#ifndef FAPIAO_SERVER_H
#define FAPIAO_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/store.h"
#include "fapiao/taxcode.h"

typedef struct fp_server_opts {
    char host[64];
    int port;
    int threads; /* MHD worker threads (default: CPU count) */
    const char *cert_path, *key_path;
    struct fp_tls *tls;             /* optional (tls.h): else read from cert_path/key_path */
    const unsigned char *token_key; /* FP_TOKEN_KEY_LEN bytes */
    int token_ttl;                  /* seconds, default 3600 */
    size_t max_body;                /* default 1 MiB */
    int max_connections;            /* default 1024 */
    int max_connections_per_ip;     /* default 64; -1: no limit */
    int handshake_timeout_ms;       /* accept → first TLS record, default 2000 */
    const char *trusted_proxies;    /* CIDRs sending PROXY v2 headers (NULL: none) */
    int idle_timeout;               /* seconds, default 30 */
    int header_timeout_ms;          /* handshake + headers, default 10000 */
    int body_timeout_ms;            /* the body after the headers, default 30000 */
    const char *access_log;         /* path, "-" for stderr, NULL/"off" for none */
    int64_t access_log_max_bytes;   /* rotate to PATH.1 beyond (default 0: none) */
    /* the authentication-failure budget (docs/security.md "Authentication
     * failures"): failures per second and burst per client address
     * (default 5, burst 30; -1: no limit), and failures recorded one by
     * one (audit + access log) per second over all addresses (default 10,
     * burst 50; -1: every one) */
    int64_t auth_fail_rate, auth_fail_burst;
    int64_t auth_fail_period_s; /* auth_fail_rate per this many seconds (0: 1) */
    int64_t auth_record_rate, auth_record_burst;
    int64_t range_warn; /* warn when fewer numbers remain (default 1000) */
    fp_store *store;
    const fp_taxcode_table *codes;
    struct fp_outbox *outbox; /* optional: metrics, kicks on re-drive */
    const char *pdf_dir;      /* where the outbox writes PDFs */
    /* optional: the upload worker's metrics (upload.h) */
    struct fp_uploader *uploader;
    int upstream; /* [upstream] configured: a red invoice needs its form filed (redkeeper.h) */
    /* admission: token buckets (requests/s and burst; 0 = unlimited) over
     * all /v1 requests and per client id (per address for /v1/token), and an
     * adaptive limit on issue requests in flight to the store (0 = off) */
    int64_t global_rate, global_burst; /* default 0: unlimited */
    int64_t client_rate, client_burst; /* default 1000/s, burst 1200 */
    int64_t global_period_s;           /* global_rate per this many s (0: 1; 60: N/min) */
    int64_t client_period_s;           /* client_rate per this many s (0: 1; 60: N/min) */
    int concurrency_max;               /* adaptive limit's ceiling, default 1024; -1 off */
    struct fp_health *health;          /* optional: degraded mode, /readyz checks */
    int fault_injection;               /* tests only: GET/POST /v1/_faults */
    int shutdown_grace_ms; /* stop: how long in-flight requests may finish (default 10 s) */
    /* slow readers (docs/security.md "Response memory"): response bodies
     * held in memory for clients that have not read them yet may total
     * response_memory bytes (default 64 MiB; a new large one is refused with
     * 503 beyond it), and a response must be sent within send_timeout_ms
     * (default 60000) or its connection is cut */
    size_t response_memory;
    int send_timeout_ms;
    /* /metrics (docs/security.md "Metrics exposure"): a bearer token every
     * scrape must carry (NULL: none), and a separate plain-HTTP listener on
     * a loopback address serving only /metrics (metrics_host "": none;
     * metrics_port 0: any).  With either, /metrics on the main port needs
     * the token, or is absent (404) when there is no token. */
    const char *metrics_token;
    char metrics_host[64];
    int metrics_port;
    /* the metrics listener's invoices issued per seller and per client: the
     * top this many by volume, the rest as "other" (default 20; topn.h) */
    int metrics_top_n;
    /* the operations console (docs/console.md): its logins and sessions
     * (NULL: /console/api answers 404) and the folder of its static files
     * (NULL: /console/ answers 404) */
    struct fp_console *console;
    const char *console_dir;
} fp_server_opts;

typedef struct fp_server fp_server;

int fp_server_start(const fp_server_opts *o, fp_server **out, fp_err *err);
/* Stops (docs/operations.md, "Shutdown"): answers everything read so far,
 * lets in-flight issues commit within the grace period, then answers the
 * rest (queued: 503 SHUTTING_DOWN, nothing stored; in a committing batch:
 * 503 OUTCOME_UNKNOWN), closes idle keep-alive connections, stops. */
void fp_server_stop(fp_server *s);
/* Opens the access log's path again (SIGHUP, after logrotate moved it):
 * 0, or an FP_E… code (the old file is kept). */
int fp_server_reopen_log(fp_server *s, fp_err *err);
/* Replaces the rate limits (SIGHUP; docs/configuration.md) with o's
 * client_rate, client_burst, global_rate, global_burst and auth_* fields
 * (the same defaults as at start): new buckets, full.  0, or an FP_E… code
 * (the old limits stay). */
int fp_server_set_limits(fp_server *s, const fp_server_opts *o, fp_err *err);
/* Replaces the tax code table new requests are checked against (SIGHUP,
 * after `fapiao taxcodes import`) and returns the previous one.  A request
 * already running may still read the previous table: the caller keeps it
 * until fp_server_stop returns. */
const fp_taxcode_table *fp_server_set_codes(fp_server *s, const fp_taxcode_table *codes);
/* The port actually bound (useful with port 0). */
int fp_server_port(const fp_server *s);
/* The metrics listener's port (0: none). */
int fp_server_metrics_port(const fp_server *s);
/* The server's metrics registry (the built-in alert evaluator samples it
 * and registers its own families there; docs/alerting.md). */
struct fp_metrics *fp_server_metrics(fp_server *s);
/* The built-in alerting's history (fp_alerting_history): the console's
 * overview reads it (and watches its series there for a day).  NULL
 * returns once no answer reads the previous one: call it before the
 * history is freed. */
struct fp_ahist;
void fp_server_set_history(fp_server *s, struct fp_ahist *h);

#endif
