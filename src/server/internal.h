/* internal.h — what the server's files share: the per-request context, the
 * route table entry, and response helpers.  Not a public header. */
#ifndef FAPIAO_SERVER_INTERNAL_H
#define FAPIAO_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "fapiao/audit.h"
#include "fapiao/auth.h"
#include "fapiao/clock.h"
#include "fapiao/invoice.h"
#include "fapiao/json.h"
#include "fapiao/ratelimit.h"
#include "fapiao/rbac.h"
#include "fapiao/server.h"

typedef struct fp_req fp_req;
typedef enum MHD_Result (*fp_handler)(fp_req *r);

typedef enum { AUTH_NONE = 0, AUTH_BEARER = 1 } fp_auth_need;

typedef struct fp_route {
    const char *method;
    const char *pattern; /* "/v1/invoices/{}": {} is one path segment */
    fp_handler handler;
    fp_auth_need auth;
    int writes;   /* changes stored state: refused while degraded */
    fp_perm perm; /* what the caller's roles must allow (rbac.h) */
} fp_route;

#define FP_SELLER_CACHE 32

/* The rate limits a SIGHUP may replace (limits.c): admission per credential
 * and over all (rl, NULL: none), and the authentication-failure budget
 * (auth_gate.c): per address (authrl, NULL: none), and of failures recorded
 * one by one over all addresses (auth_record). */
typedef struct fp_limits {
    struct fp_ratelimit *rl;
    struct fp_ratelimit *authrl;
    fp_bucket auth_record;
} fp_limits;
#define FP_LIMITS_RETIRED_MAX 16

struct fp_server {
    fp_server_opts o;
    struct MHD_Daemon *d;
    int port;
    atomic_int stopping;
    atomic_int inflight; /* suspended issue requests */
    /* the suspended issue requests, for shutdown (fp_server_stop) */
    pthread_mutex_t park_lock;
    struct fp_req *parked;
    atomic_uint_fast64_t req_counter;
    char rid_prefix[9];
    /* metrics (server_metrics.c): per route (last row: unmatched) and
     * status class 1xx..5xx, made at start so the hot path never looks up */
    struct fp_metrics *metrics;
    const fp_route *routes; /* the route table (server.c), for the per-route rows */
    size_t nroutes;
    struct fp_metric *m_requests[48][6];
    struct fp_metric *m_duration[48];
    struct fp_metric *m_inflight, *m_conns, *m_conns_total, *m_limited[4];
    struct fp_metric *m_batch, *m_fsync;
    struct MHD_Daemon *metrics_d; /* --metrics-listen (server_metrics.c) */
    /* invoices issued per seller and per client, top N + "other" (topn.h):
     * with --metrics-listen only, served there only */
    struct fp_topn *by_seller, *by_client;
    int metrics_port;
    struct fp_conn_guard *guard;
    struct fp_acceptor *acc; /* owns the listening socket (acceptor.h) */
    /* the rate limits (limits.c): borrowed with fp_limits_hold, replaced
     * whole by fp_server_set_limits (SIGHUP) */
    struct fp_limits *_Atomic limits;
    /* the tax code table (fp_server_set_codes; o.codes at start) */
    const fp_taxcode_table *_Atomic codes;
    atomic_long limits_users;
    pthread_mutex_t limits_lock;
    struct fp_limits *retired[FP_LIMITS_RETIRED_MAX]; /* still held when replaced */
    int nretired;
    struct fp_client_cache *clients;
    struct fp_ahist *_Atomic history; /* the alerting's (fp_server_set_history): the overview */
    atomic_int history_users;         /* overview answers reading it now */
    struct fp_audit_queue *audit_q;   /* authentication failures */
    struct fp_access_log *alog;       /* NULL: no access log */
    struct fp_metric *m_authfail[3];
    struct fp_adaptive *adaptive;
    pthread_mutex_t seller_lock;
    struct {
        int64_t id;
        fp_seller s;
    } sellers[FP_SELLER_CACHE];
    int nsellers;
    int64_t seller_gen;      /* the sellers' generation the cache was read at (sellers.c) */
    atomic_size_t resp_held; /* response bytes in memory (http_limits.h) */
    atomic_uint_fast64_t resp_refused;
};

struct fp_req {
    fp_server *srv;
    struct MHD_Connection *conn;
    const char *method, *url;
    const fp_route *route;
    char param[72];      /* the {} segment */
    char rid[72];        /* the server's id of the request (logs, audit) */
    char client_rid[72]; /* the X-Request-Id the client sent, if valid ("": none) */
    char client_ip[48];
    int64_t t0_us;
    fp_buf body;
    int too_large;
    int responded;
    int counted; /* in fapiao_http_requests_total (before the answer is queued) */
    int status;
    size_t resp_len;
    fp_token_claims claims;
    int64_t scope_seller;     /* after authorize: the caller's seller, 0 for an instance-wide
                                 role (operator, operator-auditor: every seller) */
    char attempted_id[65];    /* POST /v1/token: the client id tried (sanitised), for audit */
    int64_t attempted_seller; /* ... and its seller when that client exists */
    fp_issue_req *issue;      /* while suspended / after resume */
    const char *code;         /* error code of the answer, for the log */
    int retry_after;          /* seconds for a 429/503 problem (0: 1) */
    int admitted;             /* holds an adaptive-limit slot (released once) */
    int64_t submit_ns;        /* when it went to the store */
    int abandoned;            /* answered at shutdown while its batch committed */
    int issue_pending;        /* suspended for the writer; holds an inflight count until its
                                 resumed handler runs, or its connection ends (issue_gone) */
    fp_req *park_prev, *park_next;
    int parked;
    int close_conn;     /* answer with Connection: close */
    int body_read;      /* the whole request is read */
    size_t resp_held;   /* counted in the response-memory budget */
    int auth_gated;     /* a failure that went through the budget once */
    int log_suppressed; /* beyond the budget: no access-log line of its own */
    /* GET .../pdf rendered on demand (delivery.c): 1 while suspended for
     * the outbox, 2 resumed with od_result (fp_outbox_od_result) */
    int pdf_od, od_result;
};

/* An issue request as handed to the store.  `claim` decides, once, who
 * answers the client: the writer's done callback (1) or shutdown (2),
 * which then leaves the request to the writer to free. */
typedef struct fp_parked_issue {
    fp_issue_req ir; /* first: the store sees only this */
    atomic_int claim;
} fp_parked_issue;

/* What the store's failure text is when shutdown cancels the queue. */
#define FP_SHUTDOWN_WHY "server stopping: not stored"

/* The list of suspended issue requests (park.c): park and unpark under
 * s->park_lock (park takes it; unpark's caller holds it); abandon answers
 * every request still unclaimed at shutdown and returns how many. */
void fp_server_park(fp_server *s, fp_req *r);
void fp_server_unpark(fp_server *s, fp_req *r);
int fp_server_abandon_parked(fp_server *s);

/* Responses (response.c).  Each returns the MHD result of queueing. */
enum MHD_Result fp_respond(fp_req *r, int status, const char *ctype, char *body, size_t len,
                           const char *const *headers);
enum MHD_Result fp_respond_json(fp_req *r, int status, char *body, size_t len);
/* The JSON document built in b (taken from it) as the answer. */
enum MHD_Result fp_respond_buf(fp_req *r, int status, fp_buf *b);
/* Queues a response made elsewhere (a stream) with the common headers;
 * takes resp's reference. */
enum MHD_Result fp_respond_response(fp_req *r, int status, const char *ctype,
                                    struct MHD_Response *resp);
/* fapiao_upstream_credit_remaining_fen{seller} (metrics_credit.c). */
void fp_credit_metrics(fp_server *s, fp_buf *b);
enum MHD_Result fp_problem(fp_req *r, fp_code code, const char *zh, const char *en,
                           const fp_errors *es);
/* The 503 RESPONSE_MEMORY_EXHAUSTED answer (counted; http_limits.h). */
enum MHD_Result fp_resp_budget_refuse(fp_req *r);
/* Counts a finished request into the request metrics, once (when its
 * answer is queued, or at completion for one never answered). */
void fp_req_count(fp_req *r);
/* The connection's slow-request guard (conn_guard.h), NULL if none. */
struct fp_guarded *fp_req_guarded(struct MHD_Connection *c);

/* The authentication-failure budget (auth_gate.c; docs/security.md,
 * "Authentication failures").  fp_problem passes every 401/403 through
 * fp_auth_gate_failure: LIMITED (the address is over its budget: answer
 * 429 AUTH_FAILURES_LIMITED, Retry-After), COUNT (over the budget of
 * records: the usual answer, counted, no record or log line of its own),
 * RECORD (audited and logged one by one).  fp_auth_gate_blocked asks,
 * spending nothing, whether the address is over its budget (before the
 * token exchange hashes a secret). */
typedef enum { FP_AUTH_GATE_RECORD = 0, FP_AUTH_GATE_COUNT, FP_AUTH_GATE_LIMITED } fp_auth_gate;
/* The window of the counted records and of the access log's summary line. */
#define FP_AUTH_WINDOW_MS 10000
/* limits.c: the set from s->o (defaults filled in) at start; a request's
 * borrow of the current set (release it after its check); freeing at
 * stop. */
int fp_limits_init(fp_server *s, fp_err *err);
fp_limits *fp_limits_hold(fp_server *s);
void fp_limits_release(fp_server *s);
void fp_limits_stop(fp_server *s);
void fp_limits_free(fp_limits *l);
fp_auth_gate fp_auth_gate_failure(fp_req *r, int *retry_after_s);
int fp_auth_gate_blocked(fp_req *r, int *retry_after_s);

/* A 400/422 for a body that failed its checks: the field errors, or the
 * message alone for a document-level one (bad JSON). */
enum MHD_Result fp_problem_errors(fp_req *r, const fp_errors *es);

/* request.c: a request header (NULL if absent); 1 when a Content-Type is
 * application/json; the audit record of a change the request makes
 * (target and outcome left to the store), written in the change's own
 * transaction. */
const char *fp_req_header(fp_req *r, const char *name);
int fp_req_is_json(const char *ct);
/* The request's JSON body (nesting at most depth), or NULL after answering
 * it (*answered: 415 without a JSON content type, 400 for what does not
 * parse); the caller frees the document. */
cJSON *fp_req_json_body(fp_req *r, int depth, enum MHD_Result *answered);
fp_audit_rec fp_req_audit(const fp_req *r, const char *action);

/* Issuing (handlers_invoices.c).  Blue and red issues differ only in how
 * the request becomes a document: a prepare function fills ir (doc,
 * request hash, type, buyer, total; for red also the form and the blue
 * number) or answers with a problem, in which case it returns 1 with *res
 * set.  fp_issue_common checks the Idempotency-Key, takes the adaptive
 * limit's slot, and answers or suspends the request for the writer. */
typedef int (*fp_issue_prepare_fn)(fp_req *r, const char *key, const char *issued_at,
                                   const fp_seller *seller, fp_issue_req *ir, enum MHD_Result *res);
enum MHD_Result fp_issue_common(fp_req *r, fp_issue_prepare_fn prep);

/* Handlers: handlers_token.c, handlers_invoices.c, handlers_red.c,
 * handlers_ops.c, metrics_endpoint.c, faults.c. */
enum MHD_Result fp_h_token(fp_req *r);
enum MHD_Result fp_h_issue(fp_req *r);
enum MHD_Result fp_h_issue_resumed(fp_req *r);
enum MHD_Result fp_h_issue_abandoned(fp_req *r);
void fp_issue_gone(fp_server *s, fp_req *r);
enum MHD_Result fp_h_pdf_resumed(fp_req *r); /* delivery.c: after an on-demand render */
enum MHD_Result fp_h_get_invoice(fp_req *r);
enum MHD_Result fp_h_list_invoices(fp_req *r);
enum MHD_Result fp_h_healthz(fp_req *r);
enum MHD_Result fp_h_readyz(fp_req *r);
enum MHD_Result fp_h_openapi(fp_req *r);
enum MHD_Result fp_h_metrics(fp_req *r);
enum MHD_Result fp_h_red_form_create(fp_req *r);
enum MHD_Result fp_h_red_form_get(fp_req *r);
enum MHD_Result fp_h_red_form_act(fp_req *r);
enum MHD_Result fp_h_red_invoice(fp_req *r);
enum MHD_Result fp_h_faults(fp_req *r);
enum MHD_Result fp_h_rotate_secret(fp_req *r);
/* GET /v1/invoices's page, sent as it is read (list_stream.c). */
enum MHD_Result fp_list_invoices_send(fp_req *r, const fp_list_query *q);

/* store_admin.c: the store's fail-stop (docs/storage.md).  refuse answers
 * 503 STORE_FAILSTOP into *res and returns 1 while writes are stopped;
 * corrupt_row answers 500 STORE_CORRUPT_ROW naming what. */
int fp_failstop_refuse(fp_req *r, int outcome_unknown, enum MHD_Result *res);
enum MHD_Result fp_corrupt_row(fp_req *r, const char *what);
enum MHD_Result fp_h_store_check(fp_req *r);
enum MHD_Result fp_h_tls_failures(fp_req *r); /* handlers_ops.c */
/* handlers_credentials.c: the admin's credential routes; the answer that
 * shows a new secret once (no-store; previous_until < 0: not said); a
 * rotation body's overlap_seconds (0..30 days) into *overlap. */
enum MHD_Result fp_h_credentials_list(fp_req *r);
enum MHD_Result fp_h_credentials_create(fp_req *r);
enum MHD_Result fp_h_credentials_rotate(fp_req *r);
enum MHD_Result fp_h_credentials_revoke(fp_req *r);
enum MHD_Result fp_secret_answer(fp_req *r, int status, const char *client_id, const char *secret,
                                 const char *roles, int64_t previous_until);
void fp_req_overlap(const cJSON *doc, int64_t *overlap, fp_errors *es);

/* Authorization (authz.c, the checks listed there).  fp_authorize: a
 * bearer request, after the token's signature and expiry: the client as
 * it is now and the route's permission; sets r->scope_seller.
 * fp_authorize_client: the same checks for a client already in hand (the
 * token exchange: secret_live 1).  1 with *res set when refused. */
int fp_authorize(fp_req *r, enum MHD_Result *res);
struct fp_cached_client;
int fp_authorize_client(fp_req *r, const struct fp_cached_client *c, int secret_live,
                        enum MHD_Result *res);
/* Check 5 alone (the roles allow the route's permission) and the seller
 * scope: for a console session, whose user is no API client. */
int fp_authorize_roles(fp_req *r, unsigned roles, int64_t seller_id, enum MHD_Result *res);
/* handlers_console.c (docs/console.md): a bearer route reached with the
 * console's session cookie instead of a token.  0 when the request has no
 * such cookie (the bearer check goes on); else 1 with *res set when
 * refused (no session, no CSRF header on a change, missing permission), or
 * 2 when the session is good (r->claims and the scope set). */
int fp_console_gate(fp_req *r, enum MHD_Result *res);
/* The security headers of every console answer (console_static.c has the
 * Content-Security-Policy: no inline script, frame-ancestors 'none'). */
extern const char fp_console_csp[];
#define FP_CONSOLE_SECURITY_HEADERS                                                                \
    "Content-Security-Policy", fp_console_csp, "Referrer-Policy", "no-referrer",                   \
        "X-Content-Type-Options", "nosniff", "X-Frame-Options", "DENY"
/* /console/ (not /console/api/): the static files (GET and HEAD). */
enum MHD_Result fp_console_static(fp_req *r);
enum MHD_Result fp_h_console_login(fp_req *r);
enum MHD_Result fp_h_console_logout(fp_req *r);
enum MHD_Result fp_h_console_session(fp_req *r);
/* The console's own routes after login: 0 with *who, else 1 with *res
 * (404 without a console, 401 without a session); and their JSON answer
 * with the security headers (b is taken). */
struct fp_console_who;
int fp_console_need_session(fp_req *r, struct fp_console_who *who, enum MHD_Result *res);
enum MHD_Result fp_console_answer(fp_req *r, int status, fp_buf *b);
/* console_overview.c: GET /console/api/overview (docs/console.md). */
enum MHD_Result fp_h_console_overview(fp_req *r);
/* The X-Request-Id of the answer: the client's own when it sent a valid
 * one (docs/api.md §4), else the server's. */
const char *fp_req_echo_id(const fp_req *r);

/* server_metrics.c: registers every family (0 or an FP_E… code), records
 * a finished request, frees. */
int fp_server_metrics_init(fp_server *s, const fp_route *routes, size_t nroutes, fp_err *err);
void fp_server_metrics_request(fp_server *s, const fp_route *route, int status, int64_t dur_us);
/* An invoice stored: the metrics listener's per-seller and per-client counts. */
void fp_server_metrics_issued(fp_server *s, int64_t seller_id, const char *client_id);
void fp_server_metrics_free(fp_server *s);
/* metrics_endpoint.c: starts the separate /metrics listener when
 * o.metrics_host is set (0 or an FP_E… code); unlisten (first thing in
 * fp_server_stop) stops it. */
int fp_server_metrics_listen(fp_server *s, fp_err *err);
void fp_server_metrics_unlisten(fp_server *s);
/* Why a request was not admitted (fapiao_admission_refused_total{reason}). */
enum { FP_REFUSED_GLOBAL = 0, FP_REFUSED_CLIENT, FP_REFUSED_CONCURRENCY, FP_REFUSED_DEGRADED };

/* Reads invoice `number` of the caller's seller; on failure answers 404 or
 * 503 into *res and returns 1. */
int fp_load_invoice(fp_req *r, const char *number, char **doc, size_t *len, enum MHD_Result *res);

const char *fp_openapi_json(void);
int fp_server_seller(fp_server *s, int64_t id, fp_seller *out);
/* The request clocks: CLOCK_MONOTONIC (clock.h). */
static inline int64_t fp_now_us(void)
{
    return fp_mono_us();
}
static inline int64_t fp_now_ns(void)
{
    return fp_mono_ns();
}

#endif
