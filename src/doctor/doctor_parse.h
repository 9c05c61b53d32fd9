/* doctor_parse.h — the parts of the connection doctor that read untrusted
 * text and touch no socket: the URL, --resolve and --dns-server, the proxy
 * variables and NO_PROXY, and the classification of what the server
 * answered to GET /readyz, POST /v1/token and GET /v1/invoices (status,
 * headers, fapiao's /readyz JSON or problem+json) into finding codes.
 *
 * Internal to src/doctor/ and fuzz/fuzz_doctor_*.c, which drive every
 * function here with arbitrary bytes; doctor_net.c,
 * doctor_tls.c and doctor_http.c do the network part. */
#ifndef FAPIAO_DOCTOR_PARSE_H
#define FAPIAO_DOCTOR_PARSE_H

#include "fapiao/doctor.h"

#include <stddef.h>

/* "https://host[:port][/…]" or "http://…" into r->scheme, r->host (IPv6
 * brackets removed, never empty), r->port (443/80 by default) and r->url.
 * 0, or FP_EINVAL with a message in err. */
int fp_doctor_parse_url(const char *url, fp_doctor_report *r, fp_err *err);

/* --resolve "host:port:addr": a non-empty host, a port 1–65535 and an IPv4
 * or IPv6 literal (optionally in [ ]).  0, or -1 when malformed. */
int fp_doctor_parse_resolve(const char *spec, char *host, size_t hostsz, int *port, char *addr,
                            size_t addrsz);

/* --dns-server "IP[:port],…" with IPv6 as "[addr]:port" or a bare address:
 * 1 when every entry is valid (and so acceptable to c-ares), else 0. */
int fp_doctor_dns_servers_ok(const char *csv);

/* --expect-address "IP,…": 1 when every entry (separated by commas or
 * spaces, at most 8) is an IPv4 or IPv6 literal, else 0. */
int fp_doctor_addr_list_ok(const char *list);

/* Does NO_PROXY (names separated by commas or spaces; ".suffix", "*" and
 * "host:port" entries) cover host?  Suffixes match at a dot boundary. */
int fp_doctor_no_proxy_covers(const char *np, const char *host);

/* A proxy variable "[scheme://][user[:pw]@]host[:port][/…]" into host and
 * port ("1080" when none is given).  0, or -1 when there is no host. */
int fp_doctor_parse_proxy(const char *proxy, char *host, size_t hostsz, char *port, size_t portsz);

/* One HTTP answer as the doctor saw it.  Strings are "" when absent. */
typedef struct fp_doctor_answer {
    long status;
    const char *body; /* NUL-terminated, or NULL */
    const char *ctype, *retry_after, *location;
    const char *host; /* the host asked for (a redirect elsewhere), or NULL */
} fp_doctor_answer;

/* A finding the classifier names, with what was seen. */
typedef struct fp_doctor_line {
    const char *code; /* a row of findings.c */
    char msg[512];
} fp_doctor_line;

enum { FP_DOC_STEP_READYZ, FP_DOC_STEP_TOKEN, FP_DOC_STEP_INVOICES, FP_DOC_NSTEPS };

/* Classifies the answer to one step into findings, in order (at most max
 * lines; errors first, then warnings such as NUMBER_RANGE_LOW); returns the
 * number written, 0 when the answer is healthy.  details (may be NULL) gets
 * what the answer told: problem_code, fapiao, checks, location, scope.  For
 * a successful TOKEN step, token (may be NULL) receives the access token. */
int fp_doctor_classify(int step, const fp_doctor_answer *a, struct cJSON *details,
                       fp_doctor_line *out, int max, char *token, size_t tokensz);

#endif
