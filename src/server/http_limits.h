/* http_limits.h — request refusals libmicrohttpd does not make itself and
 * the response-memory budget (http_limits.c, docs/security.md "HTTP parsing"
 * and "Response memory"). */
#ifndef FAPIAO_SERVER_HTTP_LIMITS_H
#define FAPIAO_SERVER_HTTP_LIMITS_H

#include "internal.h"

/* MHD_OPTION_URI_LOG_CALLBACK: sees the request target before it is
 * unescaped.  Returns fp_http_nul_mark() when it holds %00 (the unescaped
 * path or argument would be cut there), else NULL; the value becomes the
 * request's first *ctx. */
void *fp_http_uri_seen(void *cls, const char *uri, struct MHD_Connection *c);
void *fp_http_nul_mark(void);

/* 1 when the request's framing is ambiguous: Content-Length together with
 * Transfer-Encoding, Content-Length values that differ, more than one
 * Transfer-Encoding header, or one other than "chunked". */
int fp_http_framing_ambiguous(struct MHD_Connection *c);

/* Appends "key": path to the JSON object, at most max bytes of it, as
 * valid UTF-8: bytes that are not part of a valid UTF-8 sequence are
 * written as %XX (the log line stays valid JSON and UTF-8). */
void fp_http_log_path(fp_jw *w, const char *key, const char *path, size_t max);

/* Responses larger than this count against the budget when they start. */
#define FP_LARGE_RESPONSE (64u << 10)

/* The response-memory budget: bytes of response bodies held in memory
 * until their client has read them.  take adds n and returns 0, or returns
 * FP_EBUSY without adding when n is at least FP_LARGE_RESPONSE and the
 * budget would be exceeded; add adds n whatever the budget. */
int fp_resp_budget_take(fp_server *s, size_t n);
void fp_resp_budget_add(fp_server *s, size_t n);
void fp_resp_budget_release(fp_server *s, size_t n);
/* Appends the budget's and the send deadline's metrics. */
void fp_http_limits_metrics(fp_server *s, fp_buf *b);

#endif
