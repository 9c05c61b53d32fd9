/* money.c — integer-fen money, exact decimal products, the one rounding
 * function, tax rates and capital amounts (大写).  No floating point here:
 * a binary fraction cannot hold 19.99 and yields the wrong 分 digit. */
#include "fapiao/money.h"
#include "fapiao/err.h"
#include "fapiao/json.h"

#include <string.h>

__int128 fp_round_div(__int128 n, __int128 d)
{
    int neg = n < 0;
    __int128 m = neg ? -n : n;
    __int128 q = m / d, r = m % d;
    if (2 * r >= d)
        q++;
    return neg ? -q : q;
}

/* Shared scanner for "[-]digits[.digits]": fills int/frac spans. */
static int scan_decimal(const char *s, int *neg, const char **ip, int *ni, const char **fp, int *nf)
{
    *neg = 0;
    if (*s == '-') {
        *neg = 1;
        s++;
    }
    *ip = s;
    *ni = 0;
    while (s[*ni] >= '0' && s[*ni] <= '9')
        (*ni)++;
    if (*ni == 0)
        return FP_EINVAL;
    if (*ni > 1 && s[0] == '0')
        return FP_EINVAL; /* "007" */
    s += *ni;
    *fp = s;
    *nf = 0;
    if (*s == '.') {
        s++;
        *fp = s;
        while (s[*nf] >= '0' && s[*nf] <= '9')
            (*nf)++;
        if (*nf == 0)
            return FP_EINVAL; /* "1." */
        s += *nf;
    }
    return *s ? FP_EINVAL : 0;
}

int fp_money_parse(const char *s, int64_t *fen)
{
    int neg, ni, nf;
    const char *ip, *fp;
    if (!s || scan_decimal(s, &neg, &ip, &ni, &fp, &nf) < 0)
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

void fp_money_format(int64_t fen, char *buf)
{
    uint64_t m = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
    char tmp[32];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + m % 10);
        m /= 10;
    } while (m || n < 3);
    char *o = buf;
    if (fen < 0)
        *o++ = '-';
    for (int i = n - 1; i >= 0; i--) {
        *o++ = tmp[i];
        if (i == 2)
            *o++ = '.';
    }
    *o = 0;
}

void fp_jw_kmoney(fp_jw *w, const char *k, int64_t fen)
{
    char m[FP_MONEY_STRLEN];
    fp_money_format(fen, m);
    fp_jw_kstr(w, k, m);
}

int fp_dec_parse(const char *s, fp_dec *d)
{
    int neg, ni, nf;
    const char *ip, *fp;
    if (!s || strlen(s) > FP_DEC_MAXLEN)
        return s ? FP_ERANGE : FP_EINVAL;
    if (scan_decimal(s, &neg, &ip, &ni, &fp, &nf) < 0)
        return FP_EINVAL;
    if (nf > FP_DEC_MAXSCALE)
        return FP_ERANGE;
    int n = 0;
    for (int i = 0; i < ni; i++)
        d->digits[n++] = ip[i];
    for (int i = 0; i < nf; i++)
        d->digits[n++] = fp[i];
    d->digits[n] = 0;
    /* strip leading zeros, keep one */
    int lead = 0;
    while (lead < n - 1 && d->digits[lead] == '0')
        lead++;
    memmove(d->digits, d->digits + lead, (size_t)(n - lead + 1));
    d->ndigits = n - lead;
    d->scale = nf;
    d->neg = neg && !fp_dec_is_zero(d);
    return 0;
}

int fp_dec_is_zero(const fp_dec *d)
{
    return d->ndigits == 1 && d->digits[0] == '0';
}

/* |a * b| split at one fen: *q = whole fen (truncated), *half = the rest is
 * >= half a fen, *rest = the rest is not zero.  FP_ERANGE past (18,2). */
static int dec_mul_split(const fp_dec *a, const fp_dec *b, int64_t *q_out, int *half, int *rest)
{
    /* Schoolbook product of at most 25 x 25 digits, least significant first. */
    int prod[2 * FP_DEC_MAXLEN + 2] = {0};
    int na = a->ndigits, nb = b->ndigits, np = na + nb;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            prod[i + j] += (a->digits[na - 1 - i] - '0') * (b->digits[nb - 1 - j] - '0');
    for (int k = 0; k < np; k++) {
        prod[k + 1] += prod[k] / 10;
        prod[k] %= 10;
    }
    /* the value is prod / 10^scale; digits at positions < cut are below a fen */
    int cut = a->scale + b->scale - 2;
    __int128 q = 0;
    for (int k = np - 1; k >= 0 && k >= cut; k--) {
        if (q > (__int128)FP_MONEY_MAX_FEN)
            return FP_ERANGE;
        q = q * 10 + prod[k];
    }
    for (int k = 0; k < -cut; k++) /* scale < 2: append zeros */
        q *= 10;
    if (q > (__int128)FP_MONEY_MAX_FEN)
        return FP_ERANGE;
    /* The first digit below a fen decides half-up; any non-zero digit
     * below makes the product inexact.  Positions >= np are zeros. */
    *half = cut > 0 && cut - 1 < np && prod[cut - 1] >= 5;
    *rest = 0;
    for (int k = 0; k < cut && k < np; k++)
        *rest |= prod[k] != 0;
    *q_out = (int64_t)q;
    return 0;
}

int fp_dec_mul_fen(const fp_dec *a, const fp_dec *b, int64_t *fen)
{
    int64_t q;
    int half, rest;
    int rc = dec_mul_split(a, b, &q, &half, &rest);
    if (rc < 0)
        return rc;
    /* the same half-up rule as fp_round_div, on the digits directly:
     * (q * 10^cut + rest) would not fit any integer type */
    if (half)
        q++;
    if (q > FP_MONEY_MAX_FEN)
        return FP_ERANGE;
    *fen = (a->neg != b->neg) ? -q : q;
    return 0;
}

int fp_dec_mul_within(const fp_dec *a, const fp_dec *b, int64_t fen, int64_t tol)
{
    int64_t q;
    int half, rest;
    if (dec_mul_split(a, b, &q, &half, &rest) < 0)
        return 0;
    /* exact |a*b| = q + f with 0 <= f < 1 fen (f > 0 iff rest); compare
     * against the caller's amount with the sign of the product */
    int64_t target = (a->neg != b->neg) ? -fen : fen;
    int64_t d = q - target;
    return d >= -tol && d <= (rest ? tol - 1 : tol);
}

int fp_unit_price(int64_t fen, const fp_dec *q, char *buf, size_t n)
{
    /* price * 10^13 = fen * 10^(11 + scale) / digits, by long division:
     * the divisor has at most 25 digits, so every partial remainder times
     * ten fits 128 bits, and the quotient is collected as decimal digits. */
    unsigned __int128 d = 0;
    for (int i = 0; i < q->ndigits; i++)
        d = d * 10 + (unsigned)(q->digits[i] - '0');
    if (d == 0)
        return FP_ERANGE;
    uint64_t m = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
    char qd[80];
    int nq = 0;
    unsigned __int128 r = m; /* the leading "digit" is the whole fen value */
    unsigned __int128 head = r / d;
    r %= d;
    char tmp[48];
    int nt = 0;
    do {
        tmp[nt++] = (char)('0' + (int)(head % 10));
        head /= 10;
    } while (head);
    while (nt)
        qd[nq++] = tmp[--nt];
    for (int i = 0; i < 11 + q->scale; i++) {
        r *= 10;
        qd[nq++] = (char)('0' + (int)(r / d));
        r %= d;
    }
    if (2 * r >= d) { /* half up, carrying through the digit string */
        int i = nq - 1;
        while (i >= 0 && qd[i] == '9')
            qd[i--] = '0';
        if (i >= 0) {
            qd[i]++;
        } else {
            memmove(qd + 1, qd, (size_t)nq++);
            qd[0] = '1';
        }
    }
    /* qd is price * 10^13: integer digits, then 13 decimals */
    if (nq < FP_DEC_MAXSCALE + 1) { /* at least one integer digit */
        int pad = FP_DEC_MAXSCALE + 1 - nq;
        memmove(qd + pad, qd, (size_t)nq);
        memset(qd, '0', (size_t)pad);
        nq += pad;
    }
    int nint = nq - FP_DEC_MAXSCALE, lead = 0;
    while (lead < nint - 1 && qd[lead] == '0')
        lead++;
    int last = nq; /* drop trailing zeros of the fraction */
    while (last > nint && qd[last - 1] == '0')
        last--;
    size_t o = 0;
    for (int i = lead; i < nint; i++) {
        if (o + 1 >= n)
            return FP_ERANGE;
        buf[o++] = qd[i];
    }
    if (last > nint) {
        if (o + 1 >= n)
            return FP_ERANGE;
        buf[o++] = '.';
        for (int i = nint; i < last; i++) {
            if (o + 1 >= n)
                return FP_ERANGE;
            buf[o++] = qd[i];
        }
    }
    buf[o] = 0;
    return o > FP_DEC_MAXLEN ? FP_ERANGE : 0;
}

int fp_rate_parse(const char *s, int *bp)
{
    int neg, ni, nf;
    const char *ip, *fp;
    if (!s || scan_decimal(s, &neg, &ip, &ni, &fp, &nf) < 0 || neg)
        return FP_EINVAL;
    if (ni != 1 || ip[0] != '0')
        return FP_ERANGE; /* rates are fractions: "0.13" */
    int v = 0;
    for (int i = 0; i < nf; i++) {
        if (i >= 4) {
            if (fp[i] != '0')
                return FP_ERANGE;
            continue;
        }
        v = v * 10 + (fp[i] - '0');
    }
    for (int i = nf; i < 4; i++)
        v *= 10;
    *bp = v;
    return 0;
}

void fp_rate_format(int bp, char *buf, size_t n)
{
    /* shortest form with at least two decimals: 0.13, 0.06, 0.015, 0.00 */
    char d[5];
    d[0] = (char)('0' + bp / 1000 % 10);
    d[1] = (char)('0' + bp / 100 % 10);
    d[2] = (char)('0' + bp / 10 % 10);
    d[3] = (char)('0' + bp % 10);
    d[4] = 0;
    int len = 4;
    while (len > 2 && d[len - 1] == '0')
        d[--len] = 0;
    if (n > 0) {
        size_t i = 0;
        const char *p = "0.";
        while (*p && i + 1 < n)
            buf[i++] = *p++;
        for (int k = 0; k < len && i + 1 < n; k++)
            buf[i++] = d[k];
        buf[i] = 0;
    }
}

int64_t fp_tax_of(int64_t amount_fen, int rate_bp)
{
    return (int64_t)fp_round_div((__int128)amount_fen * rate_bp, 10000);
}

int64_t fp_net_of_gross(int64_t gross_fen, int rate_bp)
{
    return (int64_t)fp_round_div((__int128)gross_fen * 10000, 10000 + rate_bp);
}

/* ---- capital amounts (大写) ---- */

static const char *const cn_digit[10] = {"零", "壹", "贰", "叁", "肆",
                                         "伍", "陆", "柒", "捌", "玖"};
static const char *const cn_pos[4] = {"", "拾", "佰", "仟"};

typedef struct sbuf {
    char *p;
    size_t n, len;
    int overflow;
} sbuf;

static void put(sbuf *b, const char *s)
{
    size_t l = strlen(s);
    if (b->len + l + 1 > b->n) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, l + 1);
    b->len += l;
}

int fp_capital(int64_t fen, char *buf, size_t n)
{
    sbuf b = {buf, n, 0, 0};
    if (n == 0)
        return FP_ERANGE;
    buf[0] = 0;
    if (fen > FP_MONEY_MAX_FEN || fen < -FP_MONEY_MAX_FEN)
        return FP_ERANGE; /* the groups below cover (18,2) only */
    uint64_t m = fen < 0 ? (uint64_t)0 - (uint64_t)fen : (uint64_t)fen;
    if (fen < 0)
        put(&b, "（负数）");
    uint64_t yuan = m / 100;
    int jiao = (int)(m / 10 % 10), fenp = (int)(m % 10);

    if (yuan > 0) {
        /* groups of four digits: units, 万, 亿, 万亿 */
        int g[4];
        uint64_t y = yuan;
        for (int i = 0; i < 4; i++) {
            g[i] = (int)(y % 10000);
            y /= 10000;
        }
        static const char *const gunit[4] = {"", "万", "亿", "万"};
        int emitted = 0, zero_pending = 0;
        for (int gi = 3; gi >= 0; gi--) {
            if (g[gi] == 0) {
                if (emitted)
                    zero_pending = 1;
                continue;
            }
            for (int p = 3; p >= 0; p--) {
                int dgt = g[gi] / (p == 3 ? 1000 : p == 2 ? 100 : p == 1 ? 10 : 1) % 10;
                if (dgt == 0) {
                    if (emitted)
                        zero_pending = 1;
                    continue;
                }
                if (zero_pending)
                    put(&b, "零");
                zero_pending = 0;
                put(&b, cn_digit[dgt]);
                put(&b, cn_pos[p]);
                emitted = 1;
            }
            put(&b, gunit[gi]);
            if (gi == 3 && g[2] == 0)
                put(&b, "亿"); /* 壹万亿 */
            /* Zeros at the end of a group are absorbed by its unit
             * (107000 -> 壹拾万柒仟); a zero leading the next group or a
             * whole zero group still writes one 零. */
            zero_pending = 0;
        }
        put(&b, "圆");
    }
    if (jiao == 0 && fenp == 0) {
        if (yuan == 0)
            put(&b, "零圆");
        put(&b, "整");
    } else {
        if (jiao > 0) {
            put(&b, cn_digit[jiao]);
            put(&b, "角");
        } else if (yuan > 0) {
            put(&b, "零"); /* 16409.02 -> …圆零贰分 */
        }
        if (fenp > 0) {
            put(&b, cn_digit[fenp]);
            put(&b, "分");
        } else {
            put(&b, "整");
        }
    }
    return b.overflow ? FP_ERANGE : 0;
}
