/* internal.h — what the server's files share: the per-request context, the
 * route table entry, and response helpers.  Not a public header. */
#ifndef FAPIAO_SERVER_INTERNAL_H
#define FAPIAO_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "fapiao/auth.h"
#include "fapiao/invoice.h"
#include "fapiao/json.h"
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

#define FP_SELLER_CACHE 8

struct fp_server {
    fp_server_opts o;
    struct MHD_Daemon *d;
    int log_fd;
    int port;
    atomic_int stopping;
    atomic_int inflight; /* suspended issue requests */
    atomic_uint_fast64_t req_counter;
    char rid_prefix[9];
    /* metrics (server_metrics.c): per route (last row: unmatched) and
     * status class 1xx..5xx, made at start so the hot path never looks up */
    struct fp_metrics *metrics;
    struct fp_metric *m_requests[32][6];
    struct fp_metric *m_duration[32];
    struct fp_metric *m_inflight, *m_conns, *m_conns_total, *m_limited[4];
    struct fp_metric *m_batch, *m_fsync;
    struct fp_conn_guard *guard;
    struct fp_acceptor *acc; /* owns the listening socket (acceptor.h) */
    struct fp_ratelimit *rl;
    struct fp_client_cache *clients;
    struct fp_audit_queue *audit_q; /* authentication failures */
    struct fp_adaptive *adaptive;
    pthread_mutex_t seller_lock;
    struct {
        int64_t id;
        fp_seller s;
    } sellers[FP_SELLER_CACHE];
    int nsellers;
};

struct fp_req {
    fp_server *srv;
    struct MHD_Connection *conn;
    const char *method, *url;
    const fp_route *route;
    char param[72]; /* the {} segment */
    char rid[72];
    char client_ip[48];
    int64_t t0_us;
    fp_buf body;
    int too_large;
    int responded;
    int status;
    size_t resp_len;
    fp_token_claims claims;
    fp_issue_req *issue; /* while suspended / after resume */
    const char *code;    /* error code of the answer, for the log */
    int retry_after;     /* seconds for a 429/503 problem (0: 1) */
    int admitted;        /* holds an adaptive-limit slot (released once) */
    int64_t submit_ns;   /* when it went to the store */
};

/* Responses.  Each returns the MHD result of queueing. */
enum MHD_Result fp_respond(fp_req *r, int status, const char *ctype, char *body, size_t len,
                           const char *const *headers);
enum MHD_Result fp_respond_json(fp_req *r, int status, char *body, size_t len);
enum MHD_Result fp_problem(fp_req *r, fp_code code, const char *zh, const char *en,
                           const fp_errors *es);

/* Handlers (handlers.c). */
enum MHD_Result fp_h_token(fp_req *r);
enum MHD_Result fp_h_issue(fp_req *r);
enum MHD_Result fp_h_issue_resumed(fp_req *r);
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

struct fp_cached_client;
int fp_check_client_ip(fp_req *r, const struct fp_cached_client *c, enum MHD_Result *res);

/* server_metrics.c: registers every family (0 or an FP_E… code), records
 * a finished request, frees. */
int fp_server_metrics_init(fp_server *s, const fp_route *routes, size_t nroutes, fp_err *err);
void fp_server_metrics_request(fp_server *s, size_t route_ix, int status, int64_t dur_us);
void fp_server_metrics_free(fp_server *s);
/* Why a request was not admitted (fapiao_admission_refused_total{reason}). */
enum { FP_REFUSED_GLOBAL = 0, FP_REFUSED_CLIENT, FP_REFUSED_CONCURRENCY, FP_REFUSED_DEGRADED };

/* Reads invoice `number` of the caller's seller; on failure answers 404 or
 * 503 into *res and returns 1. */
int fp_load_invoice(fp_req *r, const char *number, char **doc, size_t *len, enum MHD_Result *res);

const char *fp_openapi_json(void);
int fp_server_seller(fp_server *s, int64_t id, fp_seller *out);
int64_t fp_now_us(void);
int64_t fp_now_ns(void);

#endif
