/* upstream.h — the tax platform's direct connection (乐企), fapiao as its
 * client: the wire format of docs/upstream.md in one module.
 *
 *   sm4.c       SM4-ECB with PKCS#7 padding (libgcrypt's GCRY_CIPHER_SM4)
 *   envelope.c  request: JSON → SM4 → base64, the headers, the URL;
 *               response: {"body": "<JSON text>", "httpStatusCode"} →
 *               {"Response": {"Data": base64 SM4 | "Error": {...}}} → the
 *               decrypted data's returncode; every failure mapped to one
 *               fp_up_kind (IP not registered, key wrong, maintenance, …)
 *   http.c      one POST over libcurl with timeouts; what a transport failure
 *               means (nothing sent / outcome unknown)
 *   services.c  one function per service (QDFPSC, CXQDFPSCJG, QDFPPLFM, …)
 *   fields.c    our stored invoice document → QDFPSC's fields, one table
 *   credit.c    what an invoice does to the credit line, the rules in one place
 *   numbers.c   QDFPPLFM's answer as a number range, the download's serial
 *   redforms.c  the platform's red form states as ours (one table), the
 *               filing's business serial
 *
 * Every field name comes from public third-party sources and is to be
 * checked against the official manual (docs/upstream.md says which). */
#ifndef FAPIAO_UPSTREAM_H
#define FAPIAO_UPSTREAM_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/invoice_doc.h"
#include "fapiao/red.h"

#define FP_SM4_KEY_LEN 16
#define FP_SM4_BLOCK   16
/* The largest plaintext sent or accepted (a batch of invoices). */
#define FP_UP_MAX_BODY (8u << 20)

/* ---- SM4 (sm4.c) ------------------------------------------------------ */

/* "0123…ef" (32 hex digits, any case) → key.  FP_EINVAL otherwise. */
int fp_sm4_key_parse(const char *hex, uint8_t key[FP_SM4_KEY_LEN]);
/* One block, for the published test vector. */
int fp_sm4_block(const uint8_t key[FP_SM4_KEY_LEN], const uint8_t in[FP_SM4_BLOCK],
                 uint8_t out[FP_SM4_BLOCK]);
/* PKCS#7: len bytes become fp_pkcs7_padded_len(len) (always 1–16 more). */
size_t fp_pkcs7_padded_len(size_t len);
/* Writes the padding after buf[0..len) (buf has room for the padded length). */
void fp_pkcs7_pad(uint8_t *buf, size_t len);
/* The message length of a padded buffer, or FP_ECRYPTO when the padding
 * does not check (what a wrong key looks like). */
int fp_pkcs7_unpad(const uint8_t *buf, size_t len, size_t *out_len);
/* Pads and encrypts; *out (malloc'd) gets *out_len bytes. */
int fp_sm4_encrypt(const uint8_t key[FP_SM4_KEY_LEN], const void *in, size_t len, uint8_t **out,
                   size_t *out_len, fp_err *err);
/* Decrypts and unpads; *out (malloc'd, NUL-terminated) gets *out_len bytes.
 * FP_ECRYPTO when the length is not whole blocks or the padding is wrong. */
int fp_sm4_decrypt(const uint8_t key[FP_SM4_KEY_LEN], const void *in, size_t len, uint8_t **out,
                   size_t *out_len, fp_err *err);

/* ---- what went wrong (envelope.c) ------------------------------------- */

typedef enum fp_up_kind {
    FP_UP_OK = 0,
    FP_UP_CONNECT,           /* DNS, refused, reset or TLS before sending: nothing sent */
    FP_UP_IP_NOT_REGISTERED, /* 403: our address is not registered (备案) */
    FP_UP_KEY_WRONG,         /* the platform could not decrypt, or we cannot */
    FP_UP_UNIT_WRONG,        /* jrdwptbh / sydwptbh / ability not known to the platform */
    FP_UP_MAINTENANCE,       /* the platform is in a maintenance window */
    FP_UP_RATE_LIMITED,      /* 429 or the platform's flow control */
    FP_UP_SERVER,            /* 5xx: the platform failed (nothing to learn about our call) */
    FP_UP_TIMEOUT_UNKNOWN,   /* sent, no answer in time: the outcome is unknown */
    FP_UP_PROTOCOL,          /* an answer not shaped as the envelope */
    FP_UP_REFUSED,           /* the service answered, returncode not "00" */
    FP_UP_NOT_FOUND,         /* returncode "01": nothing found (queries) */
    FP_UP_LOCAL,             /* our side: configuration, memory */
    FP_UP__COUNT
} fp_up_kind;

typedef struct fp_up_kind_info {
    const char *name; /* "IP_NOT_REGISTERED" */
    const char *zh, *en;
    int maybe_done; /* the platform may have acted on the request */
    int retry;      /* worth retrying later unchanged */
} fp_up_kind_info;

const fp_up_kind_info *fp_up_kind_get(fp_up_kind k);

/* The outcome of one call. */
typedef struct fp_up_result {
    fp_up_kind kind;
    int http_status;     /* 0: no HTTP answer */
    char code[32];       /* the platform's Error.code or returncode */
    char message[256];   /* its message, or ours */
    char request_id[64]; /* Response.RequestId when given */
} fp_up_result;

/* ---- configuration ------------------------------------------------------ */

typedef struct fp_upstream_conf {
    const char *url;  /* base, e.g. https://lqpt.chinatax.gov.cn:8443 */
    const char *nlbm; /* ability code (能力编码), 202007 */
    const char *jrdwptbh, *sydwptbh, *ptbh;
    uint8_t key[FP_SM4_KEY_LEN];
    int sandbox;            /* /access/newsandbox/… and sxcsbz = 1 */
    const char *ylbm;       /* sandbox test case (NULL: none) */
    const char *ca_file;    /* trust this CA file instead of the system's (NULL) */
    int connect_timeout_ms; /* 0: 5000 */
    int timeout_ms;         /* the whole call; 0: 30000 */
} fp_upstream_conf;

/* ---- the envelope (envelope.c) ---------------------------------------- */

/* url/access/v2/invoke/{nlbm}/{fwbm} (sandbox: /access/newsandbox/v2/…)
 * into out[cap]; FP_ERANGE when it does not fit. */
int fp_up_url(const fp_upstream_conf *c, const char *fwbm, char *out, size_t cap);
/* The request body: base64(SM4(json)).  *b64 malloc'd, NUL-terminated. */
int fp_up_seal(const uint8_t key[FP_SM4_KEY_LEN], const char *json, size_t len, char **b64,
               fp_err *err);
/* Reads an answer (HTTP status, body[0..len)) and fills res.  On FP_UP_OK
 * (and on FP_UP_REFUSED / FP_UP_NOT_FOUND, whose data also says why)
 * *data is the decrypted data object (caller deletes), else NULL.
 * Returns res->kind.  Never reads beyond len; bounded in size and depth. */
fp_up_kind fp_up_open(const uint8_t key[FP_SM4_KEY_LEN], int http_status, const char *body,
                      size_t len, cJSON **data, fp_up_result *res);

/* ---- the call (http.c) ------------------------------------------------ */

/* POSTs request (a JSON value: object or array) to service fwbm and opens
 * the answer.  Returns res->kind; *data as fp_up_open. */
fp_up_kind fp_up_call(const fp_upstream_conf *c, const char *fwbm, const cJSON *request,
                      cJSON **data, fp_up_result *res);

/* ---- the services (services.c) ---------------------------------------- */

#define FP_UP_MAX_NUMBERS 5000 /* QDFPPLFM: lysl per call */

typedef struct fp_up_numbers {
    char first[21], last[21]; /* fpqshm, fpzzhm */
    long count;               /* lysl */
} fp_up_numbers;

typedef struct fp_up_credit {
    char state[8];              /* ztsxbz */
    char granted[24];           /* bysxed: this month's credit (yuan, decimal) */
    char usable[24];            /* kysyed */
    char downloaded[24];        /* yxzed */
    char downloaded_unused[24]; /* yxzwsyed */
    char period[8];             /* sq: yyyyMM */
} fp_up_credit;

typedef struct fp_up_window {
    char from[24], to[24]; /* syqjq, syqjz */
} fp_up_window;

typedef struct fp_up_upload_item {
    char number[21]; /* fphm */
    char status[8];  /* "00": accepted */
    char message[256];
} fp_up_upload_item;

typedef struct fp_up_red_form {
    char uuid[64];
    char number[32]; /* hzfpxxqrdbh */
    char state[8];   /* hzqrxxztDm, 01–13 */
} fp_up_red_form;

/* QDFPPLFM: count (1–5000) pre-assigned numbers under serial ywlsh. */
fp_up_kind fp_up_numbers_download(const fp_upstream_conf *c, const char *nsrsbh, long count,
                                  const char *ywlsh, fp_up_numbers *out, fp_up_result *res);
/* CXSXED */
fp_up_kind fp_up_credit_query(const fp_upstream_conf *c, const char *nsrsbh, fp_up_credit *out,
                              fp_up_result *res);
/* XZTHSXED: download (give_back 0) or return (1) amount (yuan, decimal). */
fp_up_kind fp_up_credit_transfer(const fp_upstream_conf *c, const char *nsrsbh, int give_back,
                                 const char *amount, const char *ywlsh, fp_up_window *out,
                                 fp_up_result *res);
/* TZSXEDYXQ: the credit's validity after the monthly filing (yyyy-MM). */
fp_up_kind fp_up_credit_adjust(const fp_upstream_conf *c, const char *nsrsbh, const char *month,
                               fp_up_result *res);
/* The platform's red form a red invoice is issued on: its uuid and its
 * number (hzfpxxqrdbh), as QDHZQRDSQ (or the platform's list) gave them. */
typedef struct fp_up_red_ref {
    const char *uuid, *number;
} fp_up_red_ref;
/* QDFPSC: n stored invoice documents (fields.c maps them) → sllsh[64];
 * forms[i] names red docs[i]'s form (forms NULL, or a blue's entry unused). */
fp_up_kind fp_up_upload(const fp_upstream_conf *c, const fp_invoice_doc *const *docs, int n,
                        const fp_up_red_ref *forms, char sllsh[64], fp_up_result *res);
/* CXQDFPSCJG: per-invoice results of sllsh into items[0..cap), *n set. */
fp_up_kind fp_up_upload_result(const fp_upstream_conf *c, const char *nsrsbh, const char *sllsh,
                               fp_up_upload_item *items, int cap, int *n, fp_up_result *res);
/* What one CXQDFPSCJG item says of its invoice.  A resend of a number the
 * platform already holds is answered per invoice as a duplicate: that
 * invoice is stored upstream, so it counts as accepted, never as a
 * rejection (inferred, docs/upstream.md §5: check the real status code). */
typedef enum {
    FP_UP_ITEM_ACCEPTED = 0, /* status "00" */
    FP_UP_ITEM_DUPLICATE,    /* already stored: status "02", or a message saying 重复 */
    FP_UP_ITEM_REJECTED      /* anything else: the message says why */
} fp_up_item_verdict;
fp_up_item_verdict fp_up_item_verdict_of(const fp_up_upload_item *it);
/* QDHZQRDSQ: a red form for red (the draft red invoice's lines) against
 * blue, under business serial ywlsh (NULL: none sent; fp_up_red_serial). */
fp_up_kind fp_up_red_apply(const fp_upstream_conf *c, const fp_invoice_doc *blue,
                           const fp_invoice_doc *red, const char *ywlsh, fp_up_red_form *out,
                           fp_up_result *res);
/* QDHZQRDQR: qrlx 'Y' confirm, 'N' reject, 'C' withdraw. */
fp_up_kind fp_up_red_answer(const fp_upstream_conf *c, const char *nsrsbh, const char *uuid,
                            const char *number, char qrlx, fp_up_result *res);
/* CXQDHZQRDLB: one page of forms (state "" for all); *data the answer. */
fp_up_kind fp_up_red_list(const fp_upstream_conf *c, const char *nsrsbh, const char *state,
                          int page, int page_size, cJSON **data, fp_up_result *res);
/* CXQDHZQRDMX: one form's detail into out (and *data when not NULL). */
fp_up_kind fp_up_red_detail(const fp_upstream_conf *c, const char *nsrsbh, const char *uuid,
                            fp_up_red_form *out, cJSON **data, fp_up_result *res);
/* CXSSFLBM: codes changed since sjc (yyyyMMddHHmmss, "" the first time). */
fp_up_kind fp_up_taxcodes(const fp_upstream_conf *c, const char *nsrsbh, const char *since,
                          cJSON **data, fp_up_result *res);
/* CXKYSL: the usable rates (also the doctor's harmless query). */
fp_up_kind fp_up_rates(const fp_upstream_conf *c, cJSON **data, fp_up_result *res);

/* ---- pre-assigned numbers (numbers.c) ---------------------------------- */

/* QDFPPLFM's answer as a range of ours: fpqshm / fpzzhm (20 digits each,
 * one prefix) → prefix (yy + province + channel, 5 digits) and the
 * 15-digit sequence part of the first and last.  FP_EINVAL otherwise. */
int fp_up_numbers_range(const fp_up_numbers *n, char prefix[6], int64_t *first, int64_t *last,
                        fp_err *err);
/* The business serial (ywlsh) of a seller's nth download (n: the ranges
 * it holds): the same until that download is stored, so a retry after a
 * lost answer asks for the same range again (docs/upstream.md §5). */
void fp_up_numbers_serial(const char *tax_id, int64_t nth, char out[64]);

/* A whole number the platform sent as a string ("lysl", "chyyDm",
 * "lzmxxh"): decimal digits only, within [lo, hi], into *out: 0, or
 * FP_EINVAL for anything else ("12abc", "", " 1", out of range), never a
 * silent 0 or a prefix (services.c). */
int fp_up_whole(const char *s, long lo, long hi, long *out);

/* ---- red forms (redforms.c) -------------------------------------------- */

/* The platform's red form state (hzqrxxztDm, "01"–"13") as ours: 0, or
 * FP_EINVAL for a code the table does not know (docs/upstream.md "Red
 * forms" lists the table). */
int fp_up_red_state(const char *hzqrxxztDm, fp_red_state *out);
/* The business serial (ywlsh) of filing our form form_no for tax_id: the
 * same on every attempt, so a retry after a lost answer gets the form the
 * platform already made instead of a second one. */
void fp_up_red_serial(const char *tax_id, const char *form_no, char out[64]);

/* ---- the credit line (credit.c) ---------------------------------------- */

/* What invoice d does to the credit of month (yyyyMM, set): *fen > 0 takes,
 * < 0 gives back, 0 nothing.  A blue takes total_amount (excluding VAT); a
 * red gives its amount back only when its blue (issued blue_issued_at) is
 * of the same month.  FP_EINVAL on a document without these. */
int fp_up_credit_effect(const fp_invoice_doc *d, const char *blue_issued_at, int64_t *fen,
                        char month[7], fp_err *err);
/* The same rule on its parts, for the issuing transaction: a blue takes
 * amount (fen, excluding VAT); a red (amount < 0) gives it back when
 * blue_month equals month (yyyyMM), else 0. */
int64_t fp_up_credit_fen(int red, int64_t amount, const char *month, const char *blue_month);
/* The credit month (yyyyMM, China Standard Time) of an issue time (unix s). */
void fp_up_credit_month(int64_t unix_s, char out[7]);

/* ---- field mapping (fields.c) ----------------------------------------- */

/* One stored invoice document → QDFPSC's invoice object (ptbh from c; a
 * red invoice's platform form, uuid and number, from form).  NULL with err
 * on a document the mapping cannot carry (a red one without both). */
cJSON *fp_up_invoice_fields(const fp_invoice_doc *d, const char *ptbh, const fp_up_red_ref *form,
                            fp_err *err);
/* The red form request (QDHZQRDSQ) for red's lines against blue. */
cJSON *fp_up_red_form_fields(const fp_invoice_doc *blue, const fp_invoice_doc *red, fp_err *err);
/* The mapping table for docs and tests: row i (NULL past the end). */
typedef struct fp_up_field {
    const char *level;  /* "invoice" or "line" */
    const char *name;   /* the platform's name: "fphm" */
    const char *source; /* ours: "number", "items[].amount", "(constant 5)" */
} fp_up_field;
const fp_up_field *fp_up_field_at(size_t i);

#endif
