/* fapiao-client/client.h — libfapiao-client: a resilient client of the
 * fapiao issuing API for ERP connectors (docs/client.md).
 *
 * What it does for the caller, so that "cannot connect" becomes a delay and
 * never a lost or doubled invoice:
 *   tokens       POST /v1/token with the client credential; the token is
 *                refreshed before it expires (at 90 % of its life, at most
 *                60 s before), and a 401 TOKEN_EXPIRED / UNAUTHENTICATED
 *                (a rotated secret's token) gets one refresh and one retry.
 *   idempotency  the caller's serial is the Idempotency-Key of the issue and
 *                every retry of it sends the same key: the server answers
 *                a retry with the invoice it already issued.
 *   retries      exponential backoff with full jitter (a delay drawn evenly
 *                from [0, min(cap, base * 2^n)]), Retry-After honoured (the
 *                server's wait is a floor), an overall deadline.  Retried:
 *                connection errors, 429, 503 and other 5xx for keyed POSTs
 *                and GETs; 409 (IDEMPOTENCY_IN_PROGRESS); a 401 once after a
 *                token refresh.  Never any other 4xx.  A POST without a key
 *                is retried only when it was never sent (connect failed)
 *                or the server refused it before acting (429, 503).
 *   failover     several base URLs; a failed address is skipped for
 *                skip_ms (health memory) and has its own circuit breaker;
 *                the last address that worked is tried first.
 *   timeouts     per phase: connect, TLS handshake, first byte, total (per
 *                attempt), besides the overall deadline.
 *   pinning      optional: the server key's "sha256//BASE64" (curl's
 *                CURLOPT_PINNEDPUBLICKEY).  A key that fails the pin is
 *                final once every address has shown one: FPC_EREJECTED,
 *                code PIN_MISMATCH, finding TLS_PIN_MISMATCH, never
 *                retried after a wait (no wait fixes it).
 *   errors       a final failure fills fpc_error: the server's problem code
 *                or the client's, a finding code of the connection doctor
 *                (TLS_CERT_EXPIRED, TCP_FILTERED…) with its knowledge-base
 *                article, and whether the outcome is unknown (resubmit with
 *                the same serial) or permanent (fix the request).
 *
 * Dependencies: libcurl and libcjson only.  The doctor's layer checks
 * (c-ares, GnuTLS, in the fapiao tree) are not linked: without a diagnose
 * hook the finding comes from how the connection failed (curl's error);
 * with one (fpc_opts.diagnose; the fapiao CLI sets the doctor's) a
 * connection-level failure runs the full layered diagnosis and its verdict
 * replaces it.
 *
 * Threads: a client is used by one thread at a time (it keeps one curl
 * handle, so connections are reused); use one client per thread.
 * Errors: functions return 0 or a negative FPC_E… code and fill *err
 * (which may be NULL).  Strings in fpc_error are NUL-terminated. */
#ifndef FAPIAO_CLIENT_H
#define FAPIAO_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    FPC_OK = 0,
    FPC_EINVAL = -1,      /* a bad argument or option: nothing was sent */
    FPC_ENOMEM = -2,      /* out of memory */
    FPC_EREJECTED = -3,   /* the server refused the request for good (4xx), or every
                             server's key failed the pin (code PIN_MISMATCH, status 0):
                             fix it; nothing was issued */
    FPC_EUNAVAILABLE = -4 /* gave up on a transient failure (deadline, attempts, breakers):
                             the outcome of a POST is unknown; send it again later with the
                             same serial */
};

/* The final error of a call. */
typedef struct fpc_error {
    int rc;            /* the FPC_E… code returned */
    int status;        /* HTTP status of the last answer, 0 when none came */
    char code[48];     /* the server's problem code (VALIDATION…, TOKEN_EXPIRED), or the
                          client's: CONNECT, TIMEOUT, TLS, PIN_MISMATCH, DEADLINE,
                          BREAKER_OPEN, INVALID_ARGUMENT, NO_MEMORY */
    char finding[48];  /* the doctor's finding code (TCP_REFUSED, TLS_CERT_EXPIRED,
                          AUTH_IP_NOT_ALLOWED…), "" when none applies */
    char article[96];  /* its knowledge-base article, "kb/<FINDING>.md", or "" */
    char message[512]; /* English, for humans */
    char message_zh[512];
    char server[256]; /* the base URL of the last attempt */
    int attempts;     /* HTTP attempts made (token fetches included) */
    int retryable;    /* 1: the outcome is unknown or transient (FPC_EUNAVAILABLE) */
} fpc_error;

/* Runs the doctor's layered checks against base_url after a
 * connection-level failure; fills err->finding and err->article (and may
 * add to the messages).  fpc_doctor_diagnose (fapiao-client/doctor.h, in
 * the fapiao tree) is one. */
typedef void (*fpc_diagnose_fn)(const char *base_url, const char *cacert, fpc_error *err,
                                void *arg);

typedef struct fpc_opts {
    const char *servers;   /* "https://a:8443,https://b:8443" (at most 8) */
    const char *client_id; /* the client credential */
    const char *client_secret;
    const char *cacert;        /* PEM file of the CA to trust; NULL: the system store */
    const char *pinned_pubkey; /* "sha256//BASE64[;sha256//…]"; NULL: no pinning */
    int connect_timeout_ms;    /* TCP connect; default 3000 */
    int tls_timeout_ms;        /* TLS handshake after connect; default 5000 */
    int first_byte_timeout_ms; /* from the request sent to the first answer byte; default 15000 */
    int total_timeout_ms;      /* one attempt, whole; default 30000 */
    int deadline_ms;           /* a whole call, retries included; default 120000 */
    int max_attempts;          /* per call; 0 (default): as many as the deadline allows */
    int backoff_base_ms;       /* default 100 */
    int backoff_cap_ms;        /* default 10000 */
    int skip_ms;               /* a failed address is skipped this long; default 30000 */
    uint64_t seed;             /* the jitter's random seed; 0: from the clock and pid */
    fpc_diagnose_fn diagnose;  /* NULL: the finding from the curl error only */
    void *diagnose_arg;
    const char *user_agent; /* NULL or "" (default): no User-Agent line, as raw libcurl;
                               the server knows a caller by its credential.  Each header
                               byte costs libcurl ~100 instructions a call (docs/client.md) */
} fpc_opts;

typedef struct fpc_client fpc_client;

/* A client for opts (copied).  Nothing is sent until the first call. */
int fpc_client_new(const fpc_opts *opts, fpc_client **out, fpc_error *err);
void fpc_client_free(fpc_client *c); /* NULL: no-op */

/* An answer: status, the body (malloc'd, NUL-terminated; fpc_result_free),
 * and for an issue the invoice number and whether the server replayed an
 * earlier answer to the same key (Idempotent-Replayed: true). */
typedef struct fpc_result {
    int status;
    char *body;
    size_t len;
    char content_type[96];
    char number[24];
    int replayed;
} fpc_result;

void fpc_result_free(fpc_result *r);

/* POST /v1/invoices with Idempotency-Key: serial ([A-Za-z0-9_.:-]{1,64}).
 * 0 with the 201 in *res; or an FPC_E… with *err. */
int fpc_issue(fpc_client *c, const char *serial, const char *json, size_t len, fpc_result *res,
              fpc_error *err);

/* GET path ("/v1/invoices/NUMBER", "/v1/invoices/NUMBER/pdf"…): 0 with a 2xx
 * (not 202) answer in *res.  A 202 (a PDF not rendered yet) is retried
 * after its Retry-After within the deadline. */
int fpc_get(fpc_client *c, const char *path, fpc_result *res, fpc_error *err);

/* ---- the retry policy, exposed for tests and for callers with their own loop ---- */

/* What to do with one attempt's outcome. */
typedef enum fpc_verdict {
    FPC_DONE = 0, /* success: return it */
    FPC_RETRY,    /* transient: back off and try again (maybe another address) */
    FPC_REFRESH,  /* 401 on a token: refresh it once and try again */
    FPC_FAIL      /* final: never retried */
} fpc_verdict;

typedef enum fpc_kind {
    FPC_KIND_GET = 0, /* a read: safe to repeat */
    FPC_KIND_KEYED,   /* a POST with an Idempotency-Key: safe to repeat */
    FPC_KIND_UNKEYED  /* a POST without one: repeated only when it cannot have acted */
} fpc_kind;

/* status: the HTTP status, or 0 when the attempt failed at the connection
 * level; sent: 0 when the request cannot have reached the server (resolve
 * or connect failed); problem: the answer's problem code or NULL;
 * refreshed: 1 when this call has already refreshed its token after a 401. */
fpc_verdict fpc_classify(fpc_kind kind, int status, int sent, const char *problem, int refreshed);

/* The n-th backoff (n from 0) with full jitter: uniform in
 * [0, min(cap_ms, base_ms * 2^n)]; *rng is the generator's state (never 0). */
int64_t fpc_backoff_ms(int n, int base_ms, int cap_ms, uint64_t *rng);

/* The wait before the next attempt: Retry-After (seconds, -1 when absent) is a
 * floor that the jittered backoff may only lengthen (up to base_ms more); no
 * Retry-After: fpc_backoff_ms.  Neither is cut by the cap: the caller stops
 * when the wait would pass its deadline. */
int64_t fpc_retry_wait_ms(int n, int retry_after_s, int base_ms, int cap_ms, uint64_t *rng);

/* Retry-After's value: delta-seconds or an HTTP-date (now_s: Unix seconds);
 * -1 when absent or malformed; at most 86400. */
int fpc_parse_retry_after(const char *value, int64_t now_s);

#ifdef __cplusplus
}
#endif
#endif
