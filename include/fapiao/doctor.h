/* doctor.h — the layered connection diagnosis behind `fapiao doctor <url>`.
 *
 * Walks the layers a connection crosses, in order, and stops at the first
 * one that fails (later layers are "skipped"):
 *   local  proxy variables (https_proxy/HTTPS_PROXY/http_proxy, NO_PROXY),
 *          --proxy or a --pac file, and what the proxy answers to CONNECT;
 *          the clock against the server's Date
 *   dns    c-ares: A and AAAA, TTL, answer time (skipped for an IP literal or
 *          a matching --resolve)
 *   tcp    a nonblocking connect to every resolved address (at most 4)
 *   tls    GnuTLS handshake on the connected socket (SNI = host; TLS 1.2 and
 *          1.3 only, as today's clients), then the chain checked against
 *          --cacert or the system trust store
 *   http   GET /readyz and /healthz with libcurl pinned to the same address
 *   api    POST /v1/token and GET /v1/invoices?limit=1 (only with a credential)
 * Each finding is a code of findings.h; the verdict is the first error by
 * layer order, or OK (possibly with warnings).  A connection reset after
 * connect() succeeded (during the TLS handshake or before the HTTP answer)
 * is still TCP_RESET on the tcp phase; the phase it struck fails too.  The
 * clock is checked last, against the Date of any answer.  Every network
 * step is bounded by the timeout; a server that accepts and says nothing is
 * named after one timeout (http://, HTTP_TIMEOUT) or two (https://: the
 * ClientHello, then a plain-HTTP probe, TLS_TIMEOUT).  The whole run opens
 * only a handful of connections.  The parsers and the classification of
 * answers are in src/doctor/doctor_parse.h (no sockets; fuzzed).
 *
 * JSON document (fp_doctor_json):
 *   {
 *     "url": "https://host:port/", "scheme": "https", "host": "…", "port": 8443,
 *     "exit_code": 40,                 // the verdict's exit code, 0 healthy
 *     "verdict": {"code": "TLS_SELF_SIGNED", "layer": "tls", "severity": "error",
 *                 "exit_code": 40, "title": "…", "message": "what was seen",
 *                 "cause": "…", "fix": "…", "article": "kb/TLS_SELF_SIGNED.md"},
 *     "warnings": [{"code": "TLS_CERT_EXPIRING_SOON", "layer": "tls", "phase": "tls",
 *                   "severity": "warn"|"info", "title": "…", "message": "…",
 *                   "article": "kb/….md"}],      // info and warn findings
 *     "findings": [ every finding, errors too, same shape as warnings ],
 *     "phases": [{"name": "local"|"dns"|"tcp"|"tls"|"http"|"api",
 *                 "status": "ok"|"warn"|"fail"|"skipped",
 *                 "duration_ms": 1.23, "finding": "CODE" or null,
 *                 "note": "why skipped / short summary",
 *                 "details": { phase-specific keys, see below }}],
 *     "total_ms": 12.3
 *   }
 * Phase details: local {proxy, proxy_var, no_proxy, local_time, server_date,
 * clock_skew_s; proxy_status, proxy_authenticate (the proxy's answer to
 * CONNECT); pac, pac_result, pac_error (--pac)}; dns {server, source,
 * addresses:[{address, family, ttl}], a, aaaa (c-ares status names);
 * expected, trusted_addresses (--expect-address, --trusted-dns)}; tcp
 * {attempts:[{address, result, errno, connect_ms}], connected}; tls
 * {protocol, cipher, subject, issuer, not_before, not_after, days_left,
 * chain_length, key, verify, ocsp, pin (the leaf's "sha256//…"), top_issuer,
 * client_priority; on a failed handshake alert, handshake_error, errno,
 * legacy_protocol (what the server speaks when it refused TLS 1.2+, or
 * "none"); client_cert_requested; small_mss_probe {mss, handshake, ms} (a
 * stalled handshake tried again with a small MSS)};
 * http {readyz_status, healthz_status, request_id, retry_after, location,
 * content_type, problem_code, checks:[…], fapiao, captive_portal}; api
 * {token_status, invoices_status, problem_code, scope}.
 *
 * The phases and findings are in zh-CN or English (messages of the report
 * are English; titles, causes and fixes come in both via the table and the
 * knowledge base). */
#ifndef FAPIAO_DOCTOR_H
#define FAPIAO_DOCTOR_H

#include "fapiao/err.h"
#include "fapiao/findings.h"
#include "fapiao/kb.h"

#include <stdio.h>

struct cJSON;

typedef struct fp_doctor_opts {
    const char *url;        /* http:// or https://host[:port][/…] */
    int timeout_ms;         /* per network step; 5000 when 0 */
    const char *dns_server; /* "IP[:port],…" for c-ares, NULL = resolv.conf */
    const char *cacert;     /* PEM file to trust, NULL = system store */
    const char *token;      /* bearer token to try, or */
    const char *client_id, *client_secret;
    const char *resolve; /* "host:port:addr" — skip DNS for that name */
    int family;          /* 0 both, 4 or 6 */
    const char *proxy;   /* --proxy URL: instead of the proxy variables */
    /* DNS_WRONG_ADDRESS: the addresses the name should resolve to, "IP,…",
     * and/or a resolver to trust, "IP[:port]" (asked besides the usual one) */
    const char *expect_address, *trusted_dns;
    const char *pac; /* --pac FILE: a proxy auto-config file, run as a browser would */
    /* --upstream: the tax platform (url is its base); the http and api
     * layers are then one CXKYSL query through the envelope
     * (doctor_upstream.c, docs/upstream.md) */
    const struct fp_upstream_conf *upstream;
    /* What the TLS layer expects of the chain (TLS_INTERCEPTED): a substring
     * of an issuer's name (--expect-issuer), the server's key as
     * "sha256//BASE64[;sha256//…]" (--pin, curl's and `fapiao issue
     * --pin`'s syntax).  NULL: not checked. */
    const char *expect_issuer, *pin;
    /* An older client stack simulated (TLS_CLIENT_TOO_OLD): the highest
     * version offered, 10 11 12 13 (--tls-max 1.0 …; 0 default), or a
     * GnuTLS priority string (--tls-priority) that replaces the default. */
    int tls_max;
    const char *tls_priority;
} fp_doctor_opts;

enum { FP_DOC_LOCAL, FP_DOC_DNS, FP_DOC_TCP, FP_DOC_TLS, FP_DOC_HTTP, FP_DOC_API, FP_DOC_NPHASES };

typedef enum fp_phase_status {
    FP_PHASE_OK = 0,
    FP_PHASE_WARN,
    FP_PHASE_FAIL,
    FP_PHASE_SKIPPED
} fp_phase_status;

typedef struct fp_doctor_phase {
    const char *name;
    fp_phase_status status;
    double ms;
    const char *finding;   /* the phase's worst finding code, or NULL */
    char note[256];        /* "skipped (--resolve)", a short summary, … */
    struct cJSON *details; /* object, owned */
} fp_doctor_phase;

#define FP_DOCTOR_MAX_HITS 24

typedef struct fp_doctor_hit {
    const fp_finding *f;
    int phase; /* FP_DOC_… */
    char msg[512];
} fp_doctor_hit;

typedef struct fp_doctor_report {
    char scheme[8];
    char host[256];
    int port;
    char url[1024];
    fp_doctor_phase phase[FP_DOC_NPHASES];
    fp_doctor_hit hits[FP_DOCTOR_MAX_HITS];
    int nhits;
    const fp_doctor_hit *verdict; /* NULL = OK */
    double total_ms;
} fp_doctor_report;

/* Runs the diagnosis.  Returns 0 with *out set (whatever the verdict), or a
 * negative FP_E… (bad URL or option: FP_EINVAL) with a message in err. */
int fp_doctor_run(const fp_doctor_opts *o, fp_doctor_report **out, fp_err *err);
void fp_doctor_report_free(fp_doctor_report *r);

/* 0 when healthy, else the verdict's exit_code (10 local … 60 api). */
int fp_doctor_exit_code(const fp_doctor_report *r);
/* The verdict's finding code: "OK" when healthy. */
const char *fp_doctor_verdict_code(const fp_doctor_report *r);

/* The readable report; kb (may be NULL) supplies cause and fix. */
void fp_doctor_print(const fp_doctor_report *r, const fp_kb *kb, FILE *f, int color, int zh);

/* The JSON document described above; malloc'd, NULL on ENOMEM. */
char *fp_doctor_json(const fp_doctor_report *r, const fp_kb *kb, int zh);

#endif
