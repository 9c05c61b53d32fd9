/* console.h — the operations console's people side (src/console/;
 * docs/console.md): login with password + TOTP, the TOTP enrolment with a
 * one-time token, growing delays against guessing, a cap on concurrent
 * Argon2id hashes, and sessions.  No HTTP here: the server's
 * handlers_console.c turns requests into these calls and the answers into
 * cookies and JSON.
 *
 * Sessions are kept in memory (a restart signs everybody out), each with
 * an idle timeout and an absolute lifetime, and a CSRF token the page
 * sends back as a header on every state-changing request.  A session
 * carries the user's roles and seller, which the server checks exactly as
 * it checks an API client's (authz.c). */
#ifndef FAPIAO_CONSOLE_H
#define FAPIAO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/store.h"

typedef struct fp_console fp_console;

typedef struct fp_console_opts {
    fp_store *store;
    const unsigned char *seal_key; /* FP_SEAL_KEY_LEN bytes: seals the TOTP seeds */
    int idle_s;                    /* session idle timeout (0: 900 s) */
    int max_s;                     /* session absolute lifetime (0: 12 h) */
    int max_hashes;                /* Argon2id hashes at once (0: 1; see docs/console.md) */
    const char *issuer;            /* the otpauth:// issuer (NULL: "fapiao") */
} fp_console_opts;

int fp_console_new(const fp_console_opts *o, fp_console **out, fp_err *err);
void fp_console_free(fp_console *c); /* NULL: no-op */

/* Who a session is. */
typedef struct fp_console_who {
    char user[FP_USER_NAME_MAX + 1];
    unsigned roles;
    int64_t seller_id;
    char csrf[48];
    int64_t expires; /* the absolute end (unix s) */
} fp_console_who;

typedef enum {
    FP_LOGIN_OK = 0,    /* a session: sid, who */
    FP_LOGIN_ENROLLED,  /* the second factor enrolled: otpauth, qr_png, recovery */
    FP_LOGIN_BAD,       /* refused (why says which, for the audit log only) */
    FP_LOGIN_THROTTLED, /* too many failures from this address or for this user: retry_after */
    FP_LOGIN_BUSY,      /* too many hashes running: retry_after */
    FP_LOGIN_ERROR      /* the store failed */
} fp_login_status;

typedef struct fp_login_req {
    const char *user, *password;
    const char *totp;        /* 6 digits (login) */
    const char *enrol_token; /* instead of totp: the first login */
    const char *recovery;    /* instead of totp: one of the recovery codes (used up) */
    const char *ip;
    int64_t now; /* unix s */
} fp_login_req;

#define FP_RECOVERY_CODES 8
typedef struct fp_login_res {
    fp_login_status st;
    int retry_after;
    const char *why; /* bad_password, bad_totp, totp_replayed, disabled, ... */
    fp_console_who who;
    char sid[48];
    char otpauth[512];
    char recovery[FP_RECOVERY_CODES][16];
    unsigned char *qr_png; /* malloc'd; fp_login_res_clear frees */
    size_t qr_len;
} fp_login_res;

/* Never blocks on another login; hashes at most once. */
void fp_console_login(fp_console *c, const fp_login_req *q, fp_login_res *out);
void fp_login_res_clear(fp_login_res *r);

/* The session sid at now (touched: its idle timer restarts): 0 with *who,
 * or FP_ENOTFOUND (unknown, idle too long, or past its lifetime). */
int fp_console_session(fp_console *c, const char *sid, int64_t now, fp_console_who *who);
void fp_console_logout(fp_console *c, const char *sid);
/* The session lifetime (Max-Age of the cookie). */
int fp_console_max_age(const fp_console *c);

/* A QR code of text as a PNG (grey, 4 pixels a module, a 4-module quiet
 * zone): 0 with *png malloc'd, or FP_ENOMEM / FP_EINVAL. */
int fp_qr_png(const char *text, unsigned char **png, size_t *len);

#endif
