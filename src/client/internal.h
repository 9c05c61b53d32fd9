/* internal.h — what the files of src/client share: the client object, one
 * HTTP attempt (transport.c) and the error helpers.  Not a public header;
 * include/fapiao-client/client.h is the library's face. */
#ifndef FPC_INTERNAL_H
#define FPC_INTERNAL_H

#include "fapiao-client/client.h"
#include "fapiao/breaker.h"

#include <curl/curl.h>

#define FPC_MAX_ADDRS 8
#define FPC_MAX_BODY  (64u << 20) /* the largest answer kept (a PDF) */

typedef struct fpc_addr {
    char base[256];        /* "https://host:port", no trailing slash */
    int64_t skip_until_ms; /* health memory: not tried before this unless nothing else is left */
    fp_breaker br;
} fpc_addr;

struct fpc_client {
    fpc_opts o; /* the strings point into the copies below */
    char *servers, *client_id, *client_secret, *cacert, *pin, *ua;
    fpc_addr a[FPC_MAX_ADDRS];
    int n, preferred; /* addresses; the one that answered last */
    CURL *h;
    /* per-call state kept across calls (transport.c): what c->h was last
     * given, so an unchanged URL or header list is not set again, and the
     * header list of an authenticated GET, rebuilt when the token changes */
    char url[1024];
    const struct curl_slist *hs_set;
    struct curl_slist *get_hs;
    char errbuf[CURL_ERROR_SIZE];
    char token[2048];
    int64_t token_refresh_ms, token_expiry_ms; /* monotonic */
    uint64_t rng;
};

/* One attempt's request and outcome. */
typedef struct fpc_attempt {
    const char *method, *path, *body, *key;
    size_t len;
    int auth;
    /* out */
    int status;      /* 0: failed at the connection level */
    int sent;        /* 0: the request cannot have reached the server */
    int retry_after; /* seconds, -1 absent */
    int replayed;
    int tls_verify;   /* 1: the server's certificate or key was refused (pin, chain) */
    char problem[48]; /* the answer's problem code, or "" */
    char ctype[96];
    char code[48];    /* connection level: CONNECT, TIMEOUT, TLS, PIN_MISMATCH, TOO_LARGE */
    char finding[48]; /* connection level: the finding the curl error suggests */
    char detail[320]; /* curl's message, the phase */
    char *buf;        /* the answer's body, malloc'd */
    size_t blen, bcap;
} fpc_attempt;

/* Sets the options every attempt shares on c->h; -1 when curl refuses one
 * (a pin with a curl built without pinning, …). */
int fpc_transport_init(fpc_client *c);
/* Frees what the transport keeps in c (its header list). */
void fpc_transport_free(fpc_client *c);
/* Runs one attempt against address ai with c's curl handle. */
void fpc_attempt_run(fpc_client *c, int ai, fpc_attempt *at);
void fpc_attempt_reset(fpc_attempt *at);

/* err from a final answer or connection failure; the problem code's
 * finding from the table in transport.c. */
void fpc_error_from_attempt(fpc_error *err, int rc, const fpc_attempt *at, const char *server);
void fpc_error_set(fpc_error *err, int rc, const char *code, const char *zh, const char *en);

int64_t fpc_now_ms(void);

#endif
