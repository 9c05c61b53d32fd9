/* money.h — exact money and decimal arithmetic.
 *
 * Money is int64_t fen (分) everywhere inside fapiao; decimal strings exist
 * only at the edges.  Quantities and unit prices (up to 13 decimals, 25
 * characters) are kept as decimal digit strings and multiplied exactly.
 * Rounding is half up, away from zero for negatives (四舍五入), and is done by
 * fp_round_div() alone. */
#ifndef FAPIAO_MONEY_H
#define FAPIAO_MONEY_H

#include <stdint.h>
#include <stddef.h>

/* (18,2): at most 16 integer digits. */
#define FP_MONEY_MAX_FEN 999999999999999999LL
#define FP_MONEY_STRLEN  24 /* "-9999999999999999.99" + NUL, rounded up */

/* Parses "1234.56", "-100", "0.5" into fen.  At most 2 decimals, no exponent,
 * no '+', no leading zeros beyond one, |value| <= FP_MONEY_MAX_FEN.
 * Returns 0, FP_EINVAL (syntax) or FP_ERANGE (too many decimals or too big). */
int fp_money_parse(const char *s, int64_t *fen);

/* Writes "1234.56" / "-0.05" (always two decimals). buf >= FP_MONEY_STRLEN. */
void fp_money_format(int64_t fen, char *buf);
/* Writes "k":"<money>" with a JSON writer (json.h, the library layer: the
 * writer knows no money, money knows the writer). */
struct fp_jw;
void fp_jw_kmoney(struct fp_jw *w, const char *k, int64_t fen);

/* A non-negative or negative decimal as digits and scale: value =
 * (neg ? -1 : 1) * digits / 10^scale.  digits has no leading zeros
 * (except "0"). */
#define FP_DEC_MAXLEN   25
#define FP_DEC_MAXSCALE 13
typedef struct fp_dec {
    char digits[FP_DEC_MAXLEN + 1];
    int ndigits;
    int scale;
    int neg;
} fp_dec;

/* Parses a quantity or unit price: <= 25 characters, <= 13 decimals.
 * Returns 0, FP_EINVAL or FP_ERANGE. */
int fp_dec_parse(const char *s, fp_dec *d);
int fp_dec_is_zero(const fp_dec *d);

/* a * b rounded half up to fen.  FP_ERANGE when out of (18,2). */
int fp_dec_mul_fen(const fp_dec *a, const fp_dec *b, int64_t *fen);
/* 1 if |a * b - fen| <= tol fen, compared exactly (not after rounding). */
int fp_dec_mul_within(const fp_dec *a, const fp_dec *b, int64_t fen, int64_t tol);

/* The unit price of a line from its amount: |fen| ÷ |q| in yuan, rounded
 * half up to 13 decimals and written in the shortest form ("31.4433333333333",
 * "450").  The net unit price of a tax-inclusive line (docs/domain.md).
 * FP_ERANGE when q is 0, the price needs more than FP_DEC_MAXLEN characters
 * or buf (>= FP_DEC_MAXLEN + 1) is short. */
int fp_unit_price(int64_t fen, const fp_dec *q, char *buf, size_t n);

/* Rounds n / d half away from zero.  d > 0. */
__int128 fp_round_div(__int128 n, __int128 d);

/* A tax rate as basis points of 1/10000 (0.13 -> 1300, 0.015 -> 150).
 * Syntax only; which rates are allowed is the invoice core's business. */
int fp_rate_parse(const char *s, int *bp);
void fp_rate_format(int bp, char *buf, size_t n);

/* tax = round(amount * rate); amount = round(gross / (1 + rate)). */
int64_t fp_tax_of(int64_t amount_fen, int rate_bp);
int64_t fp_net_of_gross(int64_t gross_fen, int rate_bp);

/* 价税合计 in capital numerals (大写), e.g. 壹仟肆佰零玖圆伍角整; negative
 * amounts get the （负数） prefix.  Returns 0, or FP_ERANGE if buf is short
 * (128 bytes always suffice) or |fen| > FP_MONEY_MAX_FEN. */
int fp_capital(int64_t fen, char *buf, size_t n);

#endif
