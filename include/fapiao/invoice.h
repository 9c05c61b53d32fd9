/* invoice.h — the invoice model: parse an issue request (JSON), validate it
 * against the 数电票 rules of docs/domain.md, compute amounts, tax and totals exactly in fen,
 * and write the response document.  Usable without the server.
 *
 * Every refusal names its field path (items[3].tax) and a code with zh and
 * en messages, and all refusals of one request are reported together. */
#ifndef FAPIAO_INVOICE_H
#define FAPIAO_INVOICE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/json.h"
#include "fapiao/taxcode.h"

#define FP_MAX_ITEMS        5000
#define FP_MAX_FIELD_ERRORS 50
#define FP_NUMBER_LEN       20

typedef struct fp_field_error {
    char field[64];
    fp_code code;
    char zh[192];
    char en[192];
} fp_field_error;

typedef struct fp_errors {
    fp_field_error e[FP_MAX_FIELD_ERRORS];
    int n;
    int dropped; /* errors beyond the cap */
} fp_errors;

void fp_errors_add(fp_errors *es, fp_code code, const char *field, const char *zh, const char *en);
/* The code of the whole request: the first error's code if all errors share
 * it, else INVALID_FIELD. */
fp_code fp_errors_top(const fp_errors *es);

typedef enum { FP_LINE_NORMAL = 0, FP_LINE_DISCOUNT = 1, FP_LINE_DISCOUNTED = 2 } fp_line_kind;
typedef enum {
    FP_POLICY_NONE = 0,
    FP_POLICY_EXEMPT,
    FP_POLICY_NON_TAXABLE,
    FP_POLICY_SIMPLIFIED,
    FP_POLICY_REDUCED
} fp_policy;

typedef struct fp_party {
    const char *name, *tax_id, *address, *phone, *bank, *account, *email;
    int natural_person;
} fp_party;

typedef struct fp_item {
    const char *name, *tax_code, *spec, *unit, *quantity, *unit_price;
    const char *short_name; /* from the tax code table */
    /* A tax-inclusive line shows the net unit price (amount ÷ quantity,
     * docs/domain.md): unit_price then points at net_price and the caller's
     * gross price is kept as unit_price_with_tax (NULL otherwise). */
    const char *unit_price_with_tax;
    char net_price[32];
    fp_line_kind kind;
    fp_policy policy;
    int rate_bp;
    int64_t amount, tax, amount_with_tax;
} fp_item;

typedef struct fp_invoice {
    cJSON *doc;           /* owns every const char * above */
    char invoice_type[3]; /* "01" 专票, "02" 普票 */
    int price_includes_tax;
    fp_party buyer;
    fp_item *items;
    int nitems;
    const char *remark, *drawer;
    int64_t total_amount, total_tax, total_with_tax;
    char warnings[4][96]; /* machine codes, e.g. LEGACY_TAX_ID */
    int nwarnings;
    /* red invoices only (set by fp_red_render): color is red when set */
    const char *original_number, *red_form_no, *red_reason;
} fp_invoice;

/* Policy flag names on the wire ("exempt", …) and back. */
const char *fp_policy_name(fp_policy p);
fp_policy fp_policy_from_name(const char *s);

/* A seller (销售方) as stored (`fapiao sellers`, docs/sellers.md).  The
 * name, tax id, address, phone, bank and account go into every invoice
 * document; tax_bureau (主管税务机关代码, 11 digits, "" when not set) into
 * the XML; drawer and remark are the defaults for a request without
 * them; a disabled seller issues nothing. */
typedef struct fp_seller {
    int64_t id; /* set by the store's reads */
    char name[301 * 4];
    char tax_id[21];
    char address[301 * 4];
    char phone[61 * 4];
    char bank[121 * 4];
    char account[101 * 4];
    char tax_bureau[16];
    char drawer[61 * 4];
    char remark[451 * 4];
    int disabled;
} fp_seller;

/* What a seller fills in when the request leaves it out (NULL or "": no
 * default): drawer, then required only when there is no default, and
 * remark.  The request hash (fp_invoice_canonical) is of the body as sent,
 * so a default changed between retries does not make a retry a new
 * request. */
typedef struct fp_invoice_defaults {
    const char *drawer, *remark;
} fp_invoice_defaults;

/* Parses and validates body.  On success fills inv and returns 0.  On
 * failure returns FP_EINVAL with every refusal in es (es->n >= 1).  Call
 * fp_invoice_clear(inv) in both cases.  codes may be NULL (codes are then
 * checked for shape only, and the short name is empty). */
int fp_invoice_parse(const char *body, size_t len, const fp_taxcode_table *codes, fp_invoice *inv,
                     fp_errors *es);
/* The same with a seller's defaults (def may be NULL: none). */
int fp_invoice_parse_with(const char *body, size_t len, const fp_taxcode_table *codes,
                          const fp_invoice_defaults *def, fp_invoice *inv, fp_errors *es);
void fp_invoice_clear(fp_invoice *inv);

/* Canonical form of a request for idempotency: SHA-256-sized digest input.
 * The canonical text is the parsed document printed without whitespace. */
char *fp_invoice_canonical(const fp_invoice *inv);

/* The response document.  The number is written as 20 '0' placeholders
 * whose byte offsets are stored in num_off[] (count *nnum) so that the
 * store can patch in the number it assigns inside the transaction. */
#define FP_NUM_SLOTS 4
typedef struct fp_doc {
    char *json;
    size_t len;
    size_t num_off[FP_NUM_SLOTS];
    int nnum;
} fp_doc;

int fp_invoice_render(const fp_invoice *inv, const fp_seller *seller, const char *serial,
                      const char *issued_at, fp_doc *out);
void fp_doc_patch_number(fp_doc *d, const char number[FP_NUMBER_LEN]);

/* Appends the stored document doc[0..len) to out with its top-level
 * "status" replaced by status (and "failure" added after it when failure is
 * not empty): the document is written once as "accepted", the state moves
 * on in the store (jobs.h). */
void fp_doc_append_status(fp_buf *out, const char *doc, size_t len, const char *status,
                          const char *failure);

#endif
