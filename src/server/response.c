/* response.c — every answer goes out here: the common headers (request id,
 * no-store, HSTS, Connection: close while stopping), the response-memory
 * budget (http_limits.h), the count into the request metrics, the send
 * deadline (conn_guard.h), and problem+json with its audit record and the
 * authentication-failure budget (auth_gate.c).  Below the route handlers
 * and server.c: nothing here calls back into them. */
#include "internal.h"
#include "audit_queue.h"
#include "conn_guard.h"
#include "http_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp_req_count(fp_req *r)
{
    if (r->counted)
        return;
    r->counted = 1;
    fp_server_metrics_request(r->srv, r->route, r->status, fp_now_us() - r->t0_us);
}

fp_guarded *fp_req_guarded(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The headers of every answer, queueing, the send deadline. */
static enum MHD_Result queue(fp_req *r, int status, const char *ctype, struct MHD_Response *resp,
                             const char *const *headers)
{
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "X-Request-Id", fp_req_echo_id(r));
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    /* HTTPS only, always: browsers and careful clients should never try
     * plain HTTP for this host */
    MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    for (const char *const *h = headers; h && h[0]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    /* stopping: no further request on this connection (docs/operations.md) */
    if (r->close_conn || atomic_load(&r->srv->stopping))
        MHD_add_response_header(resp, "Connection", "close");
    r->responded = 1;
    r->status = status;
    /* counted before the answer is queued: a client that has its answer
     * finds it in /metrics (on_completed runs only after the last byte is
     * sent, maybe after the client's next request) */
    fp_req_count(r);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (r->body_read) /* an early answer (413, 400) leaves the body deadline */
        fp_conn_guard_sending(r->srv->guard, fp_req_guarded(r->conn), r->srv->o.send_timeout_ms);
    return ok;
}

enum MHD_Result fp_respond(fp_req *r, int status, const char *ctype, char *body, size_t len,
                           const char *const *headers)
{
    /* a body the client has not read stays in memory: large ones need room
     * in the budget (docs/security.md "Response memory"); the answer to a
     * write (the write is done) and to the operator's unauthenticated
     * endpoints (/metrics, /readyz, ...) are counted but never refused */
    size_t earlier = r->resp_held; /* an earlier answer's, if any */
    if (r->route && (r->route->writes || r->route->auth != AUTH_BEARER)) {
        fp_resp_budget_add(r->srv, len);
    } else if (fp_resp_budget_take(r->srv, len) < 0) {
        free(body);
        return fp_resp_budget_refuse(r);
    }
    r->resp_held = len;
    fp_resp_budget_release(r->srv, earlier);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    r->resp_len = len;
    return queue(r, status, ctype, resp, headers);
}

enum MHD_Result fp_respond_response(fp_req *r, int status, const char *ctype,
                                    struct MHD_Response *resp)
{
    return queue(r, status, ctype, resp, NULL);
}

enum MHD_Result fp_respond_json(fp_req *r, int status, char *body, size_t len)
{
    return fp_respond(r, status, "application/json", body, len, NULL);
}

enum MHD_Result fp_respond_buf(fp_req *r, int status, fp_buf *b)
{
    size_t len;
    char *body = fp_buf_take(b, &len);
    return body ? fp_respond_json(r, status, body, len) : MHD_NO;
}

enum MHD_Result fp_problem(fp_req *r, fp_code code, const char *zh, const char *en,
                           const fp_errors *es)
{
    /* a 401 or 403 passes the failure budget first: beyond it the answer
     * is a cheap 429, or the usual one without its own audit record and
     * log line (docs/security.md, "Authentication failures") */
    int st = fp_code_get(code)->http_status;
    const char *reason = fp_code_get(code)->name;
    int recorded = 1;
    char lzh[160], len_[160];
    if ((st == 401 || st == 403) && !r->auth_gated) {
        r->auth_gated = 1;
        int wait_s = 0;
        fp_auth_gate g = fp_auth_gate_failure(r, &wait_s);
        if (g == FP_AUTH_GATE_LIMITED) {
            code = FPC_AUTH_FAILURES_LIMITED;
            r->retry_after = wait_s;
            snprintf(lzh, sizeof lzh, "此地址认证失败过多，请在 %d 秒后重试", wait_s);
            snprintf(len_, sizeof len_,
                     "Too many authentication failures from this address; retry in %d s", wait_s);
            zh = lzh;
            en = len_;
            es = NULL;
        }
        recorded = g == FP_AUTH_GATE_RECORD;
    } else if (code == FPC_AUTH_FAILURES_LIMITED) {
        recorded = 0; /* refused before the credential check (POST /v1/token) */
        r->auth_gated = 1;
    }
    const fp_code_info *ci = fp_code_get(code);
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 1u << 20);
    fp_jw_init(&w, &b);
    char type[96];
    snprintf(type, sizeof type, "urn:fapiao:error:%s", ci->name);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "type", type);
    fp_jw_kint(&w, "status", ci->http_status);
    fp_jw_kstr(&w, "code", ci->name);
    fp_jw_kstr(&w, "title", ci->title);
    fp_jw_kstr(&w, "message_zh", zh ? zh : ci->zh);
    fp_jw_kstr(&w, "message_en", en ? en : ci->en);
    fp_jw_kstr(&w, "request_id", fp_req_echo_id(r));
    if (es && es->n > 0) {
        fp_jw_key(&w, "errors");
        fp_jw_arr_open(&w);
        for (int i = 0; i < es->n; i++) {
            const fp_field_error *e = &es->e[i];
            fp_jw_obj_open(&w);
            fp_jw_kstr(&w, "field", e->field);
            fp_jw_kstr(&w, "code", fp_code_get(e->code)->name);
            fp_jw_kstr(&w, "message_zh", e->zh);
            fp_jw_kstr(&w, "message_en", e->en);
            fp_jw_obj_close(&w);
        }
        fp_jw_arr_close(&w);
        if (es->dropped)
            fp_jw_kint(&w, "errors_omitted", es->dropped);
    }
    fp_jw_obj_close(&w);
    size_t len;
    char *body = fp_buf_take(&b, &len);
    if (!body)
        return MHD_NO;
    r->code = ci->name;
    if (r->auth_gated && !recorded) {
        /* counted into one record per address, action and window */
        r->log_suppressed = 1;
        fp_audit_queue_count(r->srv->audit_q, r->client_ip,
                             st == 403 ? "auth.denied" : "auth.failure", reason);
    } else if (ci->http_status == 401 || ci->http_status == 403) {
        /* every authentication or authorization failure is audited */
        char target[96];
        snprintf(target, sizeof target, "%s %.80s", r->method, r->url);
        /* who: the token's client, or the client id a failed exchange tried;
         * the seller: the token's, or the tried client's (its auditor sees
         * attempts on its credentials); NULL seller: instance-wide */
        int tok = r->claims.client_id[0] != 0;
        fp_audit_queue_add(r->srv->audit_q, tok ? r->claims.client_id : r->attempted_id,
                           ci->http_status == 401 ? "auth.failure" : "auth.denied", target, r->rid,
                           r->client_ip, ci->name, tok ? r->claims.seller_id : r->attempted_seller,
                           r->client_rid);
    }
    const char *hdrs[7] = {NULL};
    int h = 0;
    if (ci->http_status == 401) {
        hdrs[h++] = "WWW-Authenticate";
        hdrs[h++] = code == FPC_TOKEN_EXPIRED ? "Bearer error=\"invalid_token\", "
                                                "error_description=\"token expired\""
                                              : "Bearer";
    }
    char retry[16];
    if (ci->http_status == 429 || ci->http_status == 503) {
        snprintf(retry, sizeof retry, "%d", r->retry_after > 0 ? r->retry_after : 1);
        hdrs[h++] = "Retry-After";
        hdrs[h++] = retry;
    }
    if (ci->http_status == 413 && !r->close_conn) {
        hdrs[h++] = "Connection";
        hdrs[h++] = "close";
    }
    return fp_respond(r, ci->http_status, "application/problem+json", body, len, hdrs);
}

const char *fp_req_echo_id(const fp_req *r)
{
    return r->client_rid[0] ? r->client_rid : r->rid;
}

enum MHD_Result fp_resp_budget_refuse(fp_req *r)
{
    atomic_fetch_add(&r->srv->resp_refused, 1);
    r->retry_after = 2;
    return fp_problem(r, FPC_RESPONSE_MEMORY_EXHAUSTED, NULL, NULL, NULL);
}

enum MHD_Result fp_problem_errors(fp_req *r, const fp_errors *es)
{
    fp_code top = fp_errors_top(es);
    /* a document-level error (bad JSON, bad UTF-8) has no field: message only */
    if (es->n == 1 && es->e[0].field[0] == 0)
        return fp_problem(r, top, es->e[0].zh, es->e[0].en, NULL);
    return fp_problem(r, top, NULL, NULL, es);
}
