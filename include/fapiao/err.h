/* err.h — the one error convention of fapiao.
 *
 * Library functions return 0 on success or a negative FP_E… code, and put a
 * message for humans into an fp_err the caller passes (may be NULL).  API
 * errors that reach clients are identified by an fp_code (the machine code of
 * docs/api.md §5) and carry a Chinese and an English message from one table
 * (src/lib/errors.c), so every message exists in both languages. */
#ifndef FAPIAO_ERR_H
#define FAPIAO_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum {
    FP_OK = 0,
    FP_EINVAL = -1, /* bad argument or input */
    FP_ENOMEM = -2,
    FP_EIO = -3, /* file, socket or database I/O */
    FP_ENOTFOUND = -4,
    FP_ERANGE = -5, /* value outside its allowed range */
    FP_ECRYPTO = -6,
    FP_EBUSY = -7,
    FP_ECONFLICT = -8,
    FP_ETIMEDOUT = -9, /* a time bound ran out */
    FP_ECORRUPT = -10, /* stored data no longer reads back as written */
    FP_ENOSYS = -11,   /* not implemented (yet) by this store backend */
};

typedef struct fp_err {
    int code; /* FP_E… */
    char msg[256];
} fp_err;

/* Formats into err (if not NULL) and returns code, so `return fp_fail(err,
 * FP_EIO, "open %s: %s", p, strerror(errno));` reads naturally. */
int fp_fail(fp_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with a va_list (for a caller's own printf-like wrapper). */
int fp_failv(fp_err *err, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* The first failure of a reader or writer that goes on through many
 * steps (the invoice document reader, the XML writer): later failures are
 * dropped, so the message names the first cause.  where names the part
 * being handled, for messages ("seller", "items[2]"). */
typedef struct fp_first_err {
    fp_err *err;
    int rc; /* the first failure's code, 0 while all is well */
    char where[40];
} fp_first_err;
void fp_first_fail(fp_first_err *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* API error codes (docs/api.md §5 "Error codes"); the order is the table's order. */
typedef enum fp_code {
    FPC_NONE = 0,
    FPC_MALFORMED_JSON,
    FPC_INVALID_UTF8,
    FPC_BODY_TOO_LARGE,
    FPC_UNSUPPORTED_MEDIA_TYPE,
    FPC_FIELD_REQUIRED,
    FPC_FIELD_TYPE,
    FPC_INVALID_FIELD,
    FPC_UNKNOWN_FIELD,
    FPC_DUPLICATE_FIELD,
    FPC_TOO_DEEP,
    FPC_TOLERANCE_EXCEEDED,
    FPC_INVALID_TAX_ID,
    FPC_INVALID_TAX_CODE,
    FPC_RATE_NOT_ALLOWED,
    FPC_AMOUNT_OUT_OF_RANGE,
    FPC_INVALID_DISCOUNT,
    FPC_SPECIAL_INVOICE_NOT_ALLOWED, /* 专票 to a natural person, or with 免税/不征税 */
    FPC_NON_TAXABLE_MISMATCH,        /* category-6 code without 不征税, or the reverse */
    FPC_IDEMPOTENCY_KEY_REQUIRED,
    FPC_IDEMPOTENCY_KEY_INVALID,
    FPC_IDEMPOTENCY_KEY_REUSED,
    FPC_IDEMPOTENCY_IN_PROGRESS,
    FPC_UNAUTHENTICATED,
    FPC_TOKEN_EXPIRED,
    FPC_FORBIDDEN,
    FPC_IP_NOT_ALLOWED,
    FPC_NOT_FOUND,
    FPC_METHOD_NOT_ALLOWED,
    FPC_RATE_LIMITED,
    FPC_DEGRADED,
    FPC_NUMBER_RANGE_EXHAUSTED,
    FPC_RED_EXCEEDS_BLUE,
    FPC_RED_FORM_STATE,
    FPC_RENDER_FAILED,
    FPC_JOB_STATE,
    FPC_SHUTTING_DOWN,
    FPC_OUTCOME_UNKNOWN,
    FPC_CLOCK_BEHIND,
    FPC_CLOCK_JUMPED,
    FPC_WRITE_TIMEOUT,
    FPC_WRITE_OUTCOME_UNKNOWN,
    FPC_PDF_RETRYING,
    FPC_INTERNAL,
    FPC_AMBIGUOUS_FRAMING, /* Content-Length/Transfer-Encoding conflict (docs/security.md) */
    FPC_INVALID_PATH,      /* NUL in the request target */
    FPC_RESPONSE_MEMORY_EXHAUSTED, /* the response-memory budget is spent */
    FPC_STORE_FAILSTOP,            /* 503: writes stopped after an I/O error or corruption */
    FPC_STORE_CORRUPT_ROW,         /* 500: a stored document no longer parses */
    FPC_AUTH_FAILURES_LIMITED,     /* 429: this address failed authentication too often */
    FPC_SELLER_DISABLED,           /* 403: the credential's seller is disabled (fapiao sellers) */
    FPC_CREDIT_EXCEEDED,      /* 422: the month's credit line (授信额度) would be exceeded */
    FPC_CREDENTIAL_PROTECTED, /* 403: an admin or instance-wide credential: the CLI's only */
    FPC_CREDENTIAL_STATE,     /* 409: the credential is revoked */
    FPC_CREDENTIAL_EXISTS,    /* 409: a credential with that client_id exists */
    FPC__COUNT
} fp_code;

typedef struct fp_code_info {
    const char *name;  /* "MALFORMED_JSON" */
    int http_status;   /* status when this is the top-level error */
    const char *title; /* short English title */
    const char *zh;    /* default Chinese message */
    const char *en;    /* default English message */
} fp_code_info;

const fp_code_info *fp_code_get(fp_code c);

#endif
