/* fuzz_invoice.c — fp_invoice_parse on arbitrary bodies, with the sample
 * tax-code table loaded once.
 *
 * Invariants, each an abort() when broken:
 *  - a refusal reports at least one error, each with a known code and
 *    non-empty zh and en messages;
 *  - an accepted invoice has 1..5000 lines, totals that are the sums of
 *    its lines (without int64 overflow), amount_with_tax = amount + tax per
 *    line and in total, 0 < total <= (18,2), and docs/domain.md §2's tolerances:
 *    per line |amount x rate - tax| <= 0.06 (0 tax on exempt lines), in
 *    total |Σ amount x rate - total tax| <= 1.27;
 *  - its canonical text parses again to the same totals;
 *  - the rendered document is strict JSON with FP_NUM_SLOTS placeholder
 *    slots, and is still strict JSON, with the number in every slot, after
 *    fp_doc_patch_number.
 *
 * The table is found next to this source file (fuzz/ -> data/), so the
 * replay test and the libFuzzer binary work from any directory. */
#include "fapiao/invoice.h"
#include "fapiao/json.h"
#include "fapiao/money.h"
#include "fapiao/taxcode.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fp_taxcode_table *codes;

static void load_codes(void)
{
    char path[4096];
    const char *src = __FILE__; /* .../fuzz/fuzz_invoice.c */
    const char *slash = strrchr(src, '/');
    size_t dir = slash ? (size_t)(slash - src) : 0; /* .../fuzz */
    snprintf(path, sizeof path, "%.*s/../data/taxcodes-sample.csv", (int)dir, slash ? src : ".");
    fp_err err = {0};
    if (fp_taxcode_load(path, &codes, &err) < 0 &&
        fp_taxcode_load("data/taxcodes-sample.csv", &codes, &err) < 0) {
        fprintf(stderr, "fuzz_invoice: cannot load the sample tax code table: %s\n", err.msg);
        abort();
    }
}

static void bad(const char *what)
{
    fprintf(stderr, "invariant broken: %s\n", what);
    abort();
}

static void check_doc(const fp_invoice *inv)
{
    static const fp_seller seller = {
        .name = "厦门某某软件有限公司",
        .tax_id = "91350200MA2YJ1XR9G",
        .address = "厦门市思明区某某路1号",
        .phone = "0592-1234567",
        .bank = "某某银行厦门分行",
        .account = "6222000000000001",
    };
    fp_doc doc;
    if (fp_invoice_render(inv, &seller, "fuzz-serial-1", "2026-01-02 03:04:05", &doc) != 0)
        bad("render failed");
    if (!doc.json || strlen(doc.json) != doc.len)
        bad("render length");
    fp_code code;
    char detail[128];
    cJSON *j = fp_json_parse(doc.json, doc.len, 32, &code, detail, sizeof detail);
    if (!j) {
        fprintf(stderr, "%s\n%s\n", detail, doc.json);
        bad("rendered document is not strict JSON");
    }
    cJSON_Delete(j);
    if (doc.nnum != FP_NUM_SLOTS)
        bad("number slot count");
    for (int k = 0; k < doc.nnum; k++)
        if (doc.num_off[k] + FP_NUMBER_LEN > doc.len ||
            memcmp(doc.json + doc.num_off[k], "00000000000000000000", FP_NUMBER_LEN) != 0)
            bad("number slot does not hold the placeholder");
    static const char number[FP_NUMBER_LEN + 1] = "26350000000000012345";
    fp_doc_patch_number(&doc, number);
    j = fp_json_parse(doc.json, doc.len, 32, &code, detail, sizeof detail);
    if (!j)
        bad("patched document is not strict JSON");
    const char *num = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "number"));
    if (!num || strcmp(num, number) != 0)
        bad("patched number");
    cJSON_Delete(j);
    free(doc.json);
}

static void check_accepted(const fp_invoice *inv)
{
    if (inv->nitems < 1 || inv->nitems > FP_MAX_ITEMS)
        bad("line count");
    int64_t sa = 0, st = 0;
    __int128 exact_tax = 0; /* Σ amount × rate, in fen × 10^4 */
    for (int i = 0; i < inv->nitems; i++) {
        const fp_item *it = &inv->items[i];
        if (it->amount_with_tax != it->amount + it->tax)
            bad("line amount_with_tax != amount + tax");
        __int128 line = (__int128)it->amount * it->rate_bp, diff = line - (__int128)it->tax * 10000;
        if (it->policy == FP_POLICY_EXEMPT || it->policy == FP_POLICY_NON_TAXABLE
                ? it->tax != 0
                : (diff > 6 * 10000 || diff < -6 * 10000))
            bad("line |amount x rate - tax| > 0.06");
        exact_tax += line;
        if (it->amount > FP_MONEY_MAX_FEN || it->amount < -FP_MONEY_MAX_FEN)
            bad("line amount outside (18,2)");
        if (__builtin_add_overflow(sa, it->amount, &sa) || __builtin_add_overflow(st, it->tax, &st))
            bad("totals overflow int64");
    }
    if (sa != inv->total_amount || st != inv->total_tax)
        bad("totals are not the sums of the lines");
    __int128 tdiff = exact_tax - (__int128)inv->total_tax * 10000;
    if (tdiff > 127 * 10000 || tdiff < -127 * 10000)
        bad("|Σ amount x rate - total tax| > 1.27");
    if (inv->total_with_tax != inv->total_amount + inv->total_tax)
        bad("total_with_tax != total_amount + total_tax");
    if (inv->total_with_tax <= 0 || inv->total_with_tax > FP_MONEY_MAX_FEN)
        bad("total outside (0, (18,2)]");
    char words[128];
    if (fp_capital(inv->total_with_tax, words, sizeof words) != 0)
        bad("capital amount of the total");

    char *canon = fp_invoice_canonical(inv);
    if (!canon)
        bad("canonical form");
    fp_invoice again;
    fp_errors es;
    if (fp_invoice_parse(canon, strlen(canon), codes, &again, &es) != 0)
        bad("canonical form is refused");
    if (again.total_amount != inv->total_amount || again.total_tax != inv->total_tax)
        bad("canonical form parses to other totals");
    fp_invoice_clear(&again);
    free(canon);
    check_doc(inv);
}

/* libFuzzer's entry point (also called by replay_main.c). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!codes)
        load_codes();
    fp_invoice inv;
    fp_errors es;
    int rc = fp_invoice_parse((const char *)data, size, codes, &inv, &es);
    if (rc == 0) {
        if (es.n != 0)
            bad("accepted with errors");
        check_accepted(&inv);
    } else {
        if (rc != FP_EINVAL || es.n < 1 || es.n > FP_MAX_FIELD_ERRORS)
            bad("refusal without errors");
        for (int k = 0; k < es.n; k++) {
            const fp_field_error *e = &es.e[k];
            if (e->code <= FPC_NONE || e->code >= FPC__COUNT || !e->zh[0] || !e->en[0] ||
                !memchr(e->field, 0, sizeof e->field))
                bad("malformed field error");
        }
    }
    fp_invoice_clear(&inv); /* also after a refusal: parse may have allocated */
    return 0;
}
