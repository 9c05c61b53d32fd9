/* fuzz_money.c — the money parsers and arithmetic on arbitrary strings.
 *
 * The input is split at '\n' into strings (at most 64 bytes each).  Each
 * string goes through fp_money_parse, fp_dec_parse and fp_rate_parse; each
 * consecutive pair of decimals through fp_dec_mul_fen.  Invariants, each an
 * abort() when broken:
 *  - fp_money_parse agrees with a reference grammar written here
 *    ([-](0|[1-9][0-9]*)(.[0-9]+)?, <= 2 decimals, <= 16 integer digits);
 *  - format(parse(s)) re-parses to the same fen;
 *  - fp_capital fits a 128-byte buffer for every parsed value and its
 *    negation, and refuses (FP_ERANGE) one byte less than it needs;
 *  - fp_dec_parse yields canonical digits; fp_dec_mul_fen is commutative,
 *    stays within (18,2), and matches an __int128 reference when the
 *    operands are small enough;
 *  - rates parse to 0..9999 basis points and format back to themselves;
 *  - tax and net-of-gross keep the sign and magnitude bounds. */
#include "fapiao/err.h"
#include "fapiao/money.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXS 64

static void fail(const char *what, const char *s)
{
    fprintf(stderr, "invariant broken: %s for \"%s\"\n", what, s);
    abort();
}

/* Reference for fp_money_parse's contract. */
static int ref_money(const char *s, int64_t *fen)
{
    const char *p = s;
    int neg = *p == '-';
    p += neg;
    const char *ip = p;
    while (*p >= '0' && *p <= '9')
        p++;
    int ni = (int)(p - ip), nf = 0;
    if (ni == 0 || (ni > 1 && ip[0] == '0'))
        return FP_EINVAL;
    const char *fp = NULL;
    if (*p == '.') {
        fp = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        nf = (int)(p - fp);
        if (nf == 0)
            return FP_EINVAL;
    }
    if (*p)
        return FP_EINVAL;
    if (nf > 2 || ni > 16)
        return FP_ERANGE;
    int64_t v = 0;
    for (int i = 0; i < ni; i++)
        v = v * 10 + (ip[i] - '0');
    for (int i = 0; i < 2; i++)
        v = v * 10 + (i < nf ? fp[i] - '0' : 0);
    *fen = neg ? -v : v;
    return 0;
}

static void check_capital(int64_t fen, const char *s)
{
    char buf[128];
    if (fp_capital(fen, buf, sizeof buf) != 0)
        fail("fp_capital does not fit 128 bytes", s);
    size_t need = strlen(buf) + 1;
    if (need > sizeof buf)
        fail("fp_capital result not terminated", s);
    char *exact = malloc(need); /* heap, so ASan sees a one-byte overrun */
    if (fp_capital(fen, exact, need) != 0 || strcmp(exact, buf) != 0)
        fail("fp_capital differs with an exact-size buffer", s);
    if (fp_capital(fen, exact, need - 1) != FP_ERANGE)
        fail("fp_capital accepted a short buffer", s);
    free(exact);
    if ((fen < 0) != (strncmp(buf, "（负数）", strlen("（负数）")) == 0))
        fail("fp_capital sign prefix", s);
}

static void check_money(const char *s)
{
    int64_t fen = 0, ref = 0;
    int rc = fp_money_parse(s, &fen);
    int want = ref_money(s, &ref);
    if (rc != want || (rc == 0 && fen != ref))
        fail("fp_money_parse disagrees with the reference grammar", s);
    if (rc != 0)
        return;
    if (fen > FP_MONEY_MAX_FEN || fen < -FP_MONEY_MAX_FEN)
        fail("parsed money outside (18,2)", s);
    char out[FP_MONEY_STRLEN];
    int64_t again = 0;
    fp_money_format(fen, out);
    if (fp_money_parse(out, &again) != 0 || again != fen)
        fail("format(parse(s)) does not re-parse to the same fen", s);
    check_capital(fen, s);
    check_capital(-fen, s);
}

static int check_dec(const char *s, fp_dec *d)
{
    if (fp_dec_parse(s, d) != 0)
        return 0;
    if (d->ndigits < 1 || d->ndigits > FP_DEC_MAXLEN || (int)strlen(d->digits) != d->ndigits)
        fail("fp_dec digits length", s);
    for (int i = 0; i < d->ndigits; i++)
        if (d->digits[i] < '0' || d->digits[i] > '9')
            fail("fp_dec non-digit", s);
    if (d->ndigits > 1 && d->digits[0] == '0')
        fail("fp_dec leading zero", s);
    if (d->scale < 0 || d->scale > FP_DEC_MAXSCALE)
        fail("fp_dec scale", s);
    if (d->neg && fp_dec_is_zero(d))
        fail("fp_dec negative zero", s);
    return 1;
}

static void check_mul(const fp_dec *a, const fp_dec *b, const char *s)
{
    int64_t ab = 0, ba = 0;
    int r1 = fp_dec_mul_fen(a, b, &ab), r2 = fp_dec_mul_fen(b, a, &ba);
    if (r1 != r2 || (r1 == 0 && ab != ba))
        fail("fp_dec_mul_fen not commutative", s);
    if (r1 != 0 && r1 != FP_ERANGE)
        fail("fp_dec_mul_fen unexpected error", s);
    if (r1 == 0 && (ab > FP_MONEY_MAX_FEN || ab < -FP_MONEY_MAX_FEN))
        fail("fp_dec_mul_fen outside (18,2)", s);
    if (r1 == 0 && ab < 0 && a->neg == b->neg)
        fail("fp_dec_mul_fen sign", s);
    if (a->ndigits + b->ndigits > 36)
        return;
    /* reference in __int128: |A*B| / 10^(sa+sb-2), half up */
    __int128 A = 0, B = 0;
    for (int i = 0; i < a->ndigits; i++)
        A = A * 10 + (a->digits[i] - '0');
    for (int i = 0; i < b->ndigits; i++)
        B = B * 10 + (b->digits[i] - '0');
    __int128 m = A * B, d = 1;
    int shift = a->scale + b->scale - 2;
    for (int k = 0; k < shift; k++)
        d *= 10;
    for (int k = 0; k < -shift; k++)
        m *= 10;
    __int128 q = m / d;
    if (2 * (m % d) >= d)
        q++;
    if (q > FP_MONEY_MAX_FEN) {
        if (r1 != FP_ERANGE)
            fail("fp_dec_mul_fen should be out of range", s);
        return;
    }
    int64_t want = (int64_t)((a->neg != b->neg) ? -q : q);
    if (r1 != 0 || ab != want)
        fail("fp_dec_mul_fen differs from the reference", s);
}

static void check_rate(const char *s, int64_t fen, int have_fen)
{
    int bp = -1;
    if (fp_rate_parse(s, &bp) != 0)
        return;
    if (bp < 0 || bp > 9999)
        fail("rate outside 0..9999 bp", s);
    char out[16];
    int again = -1;
    fp_rate_format(bp, out, sizeof out);
    if (fp_rate_parse(out, &again) != 0 || again != bp)
        fail("rate format does not re-parse", s);
    if (!have_fen)
        return;
    int64_t tax = fp_tax_of(fen, bp);
    int64_t mag = fen < 0 ? -fen : fen, tmag = tax < 0 ? -tax : tax;
    if (tmag > mag || (tax != 0 && (tax < 0) != (fen < 0)))
        fail("fp_tax_of bounds", s);
    int64_t net = fp_net_of_gross(fen, bp);
    int64_t nmag = net < 0 ? -net : net;
    if (nmag > mag || (net != 0 && (net < 0) != (fen < 0)))
        fail("fp_net_of_gross bounds", s);
    int64_t back = net + fp_tax_of(net, bp) - fen;
    if (back > 1 || back < -1)
        fail("net + tax(net) more than a fen from gross", s);
}

/* libFuzzer's entry point (also called by replay_main.c). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[MAXS + 1];
    fp_dec prev, cur;
    int have_prev = 0, have_fen = 0;
    int64_t last_fen = 0;
    size_t i = 0;
    while (i <= size) {
        size_t n = 0;
        while (i < size && data[i] != '\n') {
            if (n < MAXS)
                s[n++] = data[i] ? (char)data[i] : '?';
            i++;
        }
        i++; /* the separator (or the end) */
        s[n] = 0;

        check_money(s);
        int64_t fen;
        if (fp_money_parse(s, &fen) == 0) {
            last_fen = fen;
            have_fen = 1;
        }
        if (check_dec(s, &cur)) {
            if (have_prev)
                check_mul(&prev, &cur, s);
            check_mul(&cur, &cur, s);
            prev = cur;
            have_prev = 1;
        }
        check_rate(s, last_fen, have_fen);
    }
    return 0;
}
