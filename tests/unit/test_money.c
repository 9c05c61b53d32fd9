/* test_money.c — money.h: fen parsing and formatting, exact decimal
 * products, the one rounding function, rates, tax arithmetic and capital
 * amounts (大写).  Expected values were computed by hand or with Python's
 * decimal module (ROUND_HALF_UP), never with binary floating point. */
#include "check.h"

#include "fapiao/err.h"
#include "fapiao/money.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---- fp_money_parse / fp_money_format ---- */

static void test_money_parse(void)
{
    static const struct {
        const char *in;
        int rc;
        int64_t fen;
    } cases[] = {
        {"0", 0, 0},
        {"0.00", 0, 0},
        {"-0", 0, 0},
        {"-0.00", 0, 0},
        {"1", 0, 100},
        {"1.5", 0, 150},
        {"0.5", 0, 50},
        {"0.05", 0, 5},
        {"1234.56", 0, 123456},
        {"-100", 0, -10000},
        {"-0.01", 0, -1},
        {"19.99", 0, 1999}, /* (int)(19.99 * 100) == 1998 in binary floating point */
        {"1000000.05", 0, 100000005},
        {"9999999999999999.99", 0, FP_MONEY_MAX_FEN}, /* 16 integer digits: the maximum */
        {"-9999999999999999.99", 0, -FP_MONEY_MAX_FEN},
        {"1000000000000000", 0, 100000000000000000LL},
        /* syntax */
        {"", FP_EINVAL, 0},
        {"-", FP_EINVAL, 0},
        {"--1", FP_EINVAL, 0},
        {"1.", FP_EINVAL, 0},
        {".5", FP_EINVAL, 0},
        {"-.5", FP_EINVAL, 0},
        {"1e3", FP_EINVAL, 0},
        {"1E3", FP_EINVAL, 0},
        {"+1", FP_EINVAL, 0},
        {"01", FP_EINVAL, 0},
        {"00", FP_EINVAL, 0},
        {"00.5", FP_EINVAL, 0},
        {"-01", FP_EINVAL, 0},
        {" 1", FP_EINVAL, 0},
        {"1 ", FP_EINVAL, 0},
        {"1,000", FP_EINVAL, 0},
        {"1.2.3", FP_EINVAL, 0},
        {"0x10", FP_EINVAL, 0},
        {"１", FP_EINVAL, 0}, /* full-width digit */
        {"abc", FP_EINVAL, 0},
        {"NaN", FP_EINVAL, 0},
        {"1.-5", FP_EINVAL, 0},
        /* range */
        {"1.001", FP_ERANGE, 0},
        {"0.000", FP_ERANGE, 0},
        {"12345678901234567", FP_ERANGE, 0}, /* 17 integer digits */
        {"10000000000000000.00", FP_ERANGE, 0},
        {"-12345678901234567", FP_ERANGE, 0},
        {"99999999999999999999999999999999", FP_ERANGE, 0}, /* would overflow int64 */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("money_parse[%zu] \"%s\"", i, cases[i].in);
        int64_t fen = -424242;
        int rc = fp_money_parse(cases[i].in, &fen);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (cases[i].rc == 0)
            CHECK_EQ_INT(fen, cases[i].fen);
    }
    check_ctx("money_parse(NULL)");
    int64_t fen;
    CHECK_EQ_INT(fp_money_parse(NULL, &fen), FP_EINVAL);
    check_ctx("%s", "");
}

static void test_money_format(void)
{
    static const struct {
        int64_t fen;
        const char *out;
    } cases[] = {
        {0, "0.00"},
        {1, "0.01"},
        {-1, "-0.01"},
        {-5, "-0.05"},
        {10, "0.10"},
        {100, "1.00"},
        {123456, "1234.56"},
        {-123456, "-1234.56"},
        {100000005, "1000000.05"},
        {FP_MONEY_MAX_FEN, "9999999999999999.99"},
        {-FP_MONEY_MAX_FEN, "-9999999999999999.99"},
        /* outside (18,2) but must not overflow the FP_MONEY_STRLEN buffer */
        {INT64_MAX, "92233720368547758.07"},
        {INT64_MIN, "-92233720368547758.08"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("money_format[%zu] %lld", i, (long long)cases[i].fen);
        char buf[FP_MONEY_STRLEN + 8];
        memset(buf, 'X', sizeof buf);
        fp_money_format(cases[i].fen, buf);
        CHECK_EQ_STR(buf, cases[i].out);
        CHECK(strlen(buf) < FP_MONEY_STRLEN);
    }
    check_ctx("%s", "");
}

/* format(parse(s)) == canonical s, and parse(format(v)) == v. */
static void test_money_round_trip(void)
{
    static const struct {
        const char *in, *canon;
    } cases[] = {
        {"0", "0.00"},
        {"-0", "0.00"},
        {"1.5", "1.50"},
        {"0.05", "0.05"},
        {"-7", "-7.00"},
        {"1234.56", "1234.56"},
        {"9999999999999999.99", "9999999999999999.99"},
        {"-9999999999999999.9", "-9999999999999999.90"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("round_trip[%zu] \"%s\"", i, cases[i].in);
        int64_t fen, again;
        char buf[FP_MONEY_STRLEN];
        if (!CHECK_EQ_INT(fp_money_parse(cases[i].in, &fen), 0))
            continue;
        fp_money_format(fen, buf);
        CHECK_EQ_STR(buf, cases[i].canon);
        CHECK_EQ_INT(fp_money_parse(buf, &again), 0);
        CHECK_EQ_INT(again, fen);
    }
    /* a sweep of values, including the edges of the range */
    static const int64_t vals[] = {0,
                                   1,
                                   9,
                                   10,
                                   99,
                                   100,
                                   101,
                                   999999,
                                   1000000,
                                   123456789012345678LL,
                                   FP_MONEY_MAX_FEN - 1,
                                   FP_MONEY_MAX_FEN};
    for (size_t i = 0; i < NCASES(vals); i++) {
        for (int sign = -1; sign <= 1; sign += 2) {
            int64_t v = vals[i] * sign, back = -1;
            char buf[FP_MONEY_STRLEN];
            check_ctx("round_trip value %lld", (long long)v);
            fp_money_format(v, buf);
            CHECK_EQ_INT(fp_money_parse(buf, &back), 0);
            CHECK_EQ_INT(back, v);
        }
    }
    check_ctx("%s", "");
}

/* ---- fp_dec_parse ---- */

static void test_dec_parse(void)
{
    static const struct {
        const char *in;
        int rc;
        const char *digits;
        int scale, neg;
    } cases[] = {
        {"0", 0, "0", 0, 0},
        {"-0", 0, "0", 0, 0}, /* no negative zero */
        {"-0.000", 0, "0", 3, 0},
        {"1", 0, "1", 0, 0},
        {"1000.00", 0, "100000", 2, 0},
        {"0.5", 0, "5", 1, 0},
        {"0.0001", 0, "1", 4, 0},
        {"-2.50", 0, "250", 2, 1},
        {"352.7314285714", 0, "3527314285714", 10, 0},
        {"0.0000000000001", 0, "1", 13, 0}, /* 13 decimals */
        {"1.1234567890123", 0, "11234567890123", 13, 0},
        {"1234567890123456789012345", 0, "1234567890123456789012345", 0, 0}, /* 25 chars */
        {"-123456789012.12345678901", 0, "12345678901212345678901", 11, 1},  /* 25 chars */
        {"12345678901.1234567890123", 0, "123456789011234567890123", 13, 0}, /* 25 chars */
        /* too long / too many decimals */
        {"12345678901234567890123456", FP_ERANGE, NULL, 0, 0}, /* 26 chars */
        {"-1234567890123456789012345", FP_ERANGE, NULL, 0, 0}, /* 26 chars with sign */
        {"0.00000000000001", FP_ERANGE, NULL, 0, 0},           /* 14 decimals */
        {"1.12345678901234", FP_ERANGE, NULL, 0, 0},
        /* syntax */
        {"", FP_EINVAL, NULL, 0, 0},
        {"-", FP_EINVAL, NULL, 0, 0},
        {"1.", FP_EINVAL, NULL, 0, 0},
        {".5", FP_EINVAL, NULL, 0, 0},
        {"1e3", FP_EINVAL, NULL, 0, 0},
        {"+1", FP_EINVAL, NULL, 0, 0},
        {"01", FP_EINVAL, NULL, 0, 0},
        {" 1", FP_EINVAL, NULL, 0, 0},
        {"1/2", FP_EINVAL, NULL, 0, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("dec_parse[%zu] \"%s\"", i, cases[i].in);
        fp_dec d;
        memset(&d, 0x55, sizeof d);
        int rc = fp_dec_parse(cases[i].in, &d);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (cases[i].rc != 0 || rc != 0)
            continue;
        CHECK_EQ_STR(d.digits, cases[i].digits);
        CHECK_EQ_INT(d.ndigits, (int)strlen(cases[i].digits));
        CHECK_EQ_INT(d.scale, cases[i].scale);
        CHECK_EQ_INT(d.neg, cases[i].neg);
        CHECK_EQ_INT(fp_dec_is_zero(&d), strcmp(cases[i].digits, "0") == 0);
    }
    check_ctx("dec_parse(NULL)");
    fp_dec d;
    CHECK_EQ_INT(fp_dec_parse(NULL, &d), FP_EINVAL);
    check_ctx("%s", "");
}

/* ---- fp_dec_mul_fen ---- */

static void test_dec_mul_fen(void)
{
    static const struct {
        const char *a, *b;
        int rc;
        int64_t fen;
    } cases[] = {
        {"1", "1000.00", 0, 100000},
        {"3", "352.7314285714", 0, 105819}, /* 1058.1942857142 -> 1058.19 */
        {"7", "0.0014285714286", 0, 1},     /* 0.0100000000002 */
        {"0.5", "0.01", 0, 1},              /* 0.005: half up */
        {"0.4999", "0.01", 0, 0},           /* 0.004999: down */
        {"0.5000000000001", "0.01", 0, 1},
        {"0.0049999999999", "1", 0, 0}, /* just below half a fen */
        {"0.005", "1", 0, 1},           /* exactly half a fen */
        {"0.015", "1", 0, 2},
        {"0.025", "1", 0, 3}, /* half up, not half even */
        {"0.3333333333333", "3", 0, 100},
        {"12", "3", 0, 3600}, /* scale 0: fen appended */
        {"1.5", "2", 0, 300}, /* scale 1 */
        {"0", "123.45", 0, 0},
        {"-0", "123.45", 0, 0},
        /* negative operands: half away from zero, sign by the operands */
        {"-0.5", "0.01", 0, -1},
        {"0.5", "-0.01", 0, -1},
        {"-0.5", "-0.01", 0, 1},
        {"-0.4999", "0.01", 0, 0}, /* rounds to zero: no -0 */
        {"-0.001", "1", 0, 0},
        {"-3", "352.7314285714", 0, -105819},
        {"-0.025", "1", 0, -3},
        /* very long operands: 25 characters, 13 decimals, 26 product decimals */
        {"0.0000000000001", "9999999999999999999999999", 0, 100000000000000},
        {"1234567890.1234567890123", "0.0000000000009", 0, 0},
        {"99999999999.9999999999999", "99999.999999", 0, 999999999990000000LL},
        {"12345678901.2345678901234", "1.5", 0, 1851851835185LL},
        {"999999999999.999999999999", "0.0000000000001", 0, 10}, /* 9.99…9 fen */
        /* products below a tenth of a fen, with fewer product digits than
         * decimals below the fen: the remainder must still be scaled by
         * 10^(scale-2), so these all round to 0 */
        {"0.007", "0.09", 0, 0},                      /* 0.00063 */
        {"0.0009", "0.9", 0, 0},                      /* 0.00081 */
        {"-0.006", "0.09", 0, 0},                     /* -0.00054 */
        {"0.0000000000009", "0.0000000000009", 0, 0}, /* 8.1e-25 */
        {"0.0000000000001", "0.0000000000001", 0, 0},
        /* the top of the range */
        {"9999999999999999.99", "1", 0, FP_MONEY_MAX_FEN},
        {"4999999999999999.995", "2", 0, FP_MONEY_MAX_FEN},
        {"-9999999999999999.99", "1", 0, -FP_MONEY_MAX_FEN},
        {"9999999999999999.995", "1", FP_ERANGE, 0}, /* rounds up past the maximum */
        {"10000000000000000", "1", FP_ERANGE, 0},
        {"99999999999999999", "1", FP_ERANGE, 0},
        {"9999999999999999", "1000", FP_ERANGE, 0},
        {"1234567890123456789012345", "1234567890123456789012345", FP_ERANGE, 0},
        {"-123456789012345678901234", "9", FP_ERANGE, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("dec_mul_fen[%zu] %s x %s", i, cases[i].a, cases[i].b);
        fp_dec a, b;
        if (!CHECK_EQ_INT(fp_dec_parse(cases[i].a, &a), 0) ||
            !CHECK_EQ_INT(fp_dec_parse(cases[i].b, &b), 0))
            continue;
        int64_t fen = -424242, fen2 = -424242;
        int rc = fp_dec_mul_fen(&a, &b, &fen);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (cases[i].rc == 0 && rc == 0)
            CHECK_EQ_INT(fen, cases[i].fen);
        /* commutative */
        CHECK_EQ_INT(fp_dec_mul_fen(&b, &a, &fen2), rc);
        if (rc == 0)
            CHECK_EQ_INT(fen2, fen);
    }
    check_ctx("%s", "");
}

/* Random operands small enough for __int128, against an independent
 * reference: |A·B| / 10^(sa+sb-2), remainder compared with half. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void random_decimal(char buf[64], __int128 *scaled, int *scale)
{
    int ni = 1 + (int)(rng() % 9), nf = (int)(rng() % 7), neg = rng() % 4 == 0;
    uint64_t ip = rng(), fp;
    int tiny = rng() % 3 == 0; /* 0.000…d: a single digit far below the fen */
    if (tiny) {
        ni = 0;
        nf = 1 + (int)(rng() % 13);
    }
    uint64_t lim = 1;
    for (int k = 0; k < ni; k++)
        lim *= 10;
    ip %= lim;
    uint64_t flim = 1;
    for (int k = 0; k < nf; k++)
        flim *= 10;
    fp = tiny ? 1 + rng() % 9 : rng() % flim;
    if (nf)
        snprintf(buf, 64, "%s%llu.%0*llu", neg ? "-" : "", (unsigned long long)ip, nf,
                 (unsigned long long)fp);
    else
        snprintf(buf, 64, "%s%llu", neg ? "-" : "", (unsigned long long)ip);
    *scaled = ((__int128)ip * (__int128)flim + fp) * (neg ? -1 : 1);
    *scale = nf;
}

static void test_dec_mul_fen_random(void)
{
    int bad = 0;
    for (int iter = 0; iter < 20000 && bad < 5; iter++) {
        char sa[64], sb[64];
        __int128 A, B;
        int ea, eb;
        random_decimal(sa, &A, &ea);
        random_decimal(sb, &B, &eb);
        fp_dec a, b;
        if (fp_dec_parse(sa, &a) || fp_dec_parse(sb, &b)) {
            CHECK_MSG(0, "random operand did not parse: %s or %s", sa, sb);
            bad++;
            continue;
        }
        __int128 n = A * B, d = 1, m = n < 0 ? -n : n;
        int shift = ea + eb - 2;
        for (int k = 0; k < shift; k++)
            d *= 10;
        for (int k = 0; k < -shift; k++)
            m *= 10;
        __int128 q = m / d, r = m % d;
        if (2 * r >= d)
            q++;
        int64_t want = (int64_t)(n < 0 ? -q : q), got = 0;
        int rc = fp_dec_mul_fen(&a, &b, &got);
        if (q > FP_MONEY_MAX_FEN) {
            if (!CHECK_MSG(rc == FP_ERANGE, "%s x %s: want FP_ERANGE, got rc %d", sa, sb, rc))
                bad++;
        } else if (!CHECK_MSG(rc == 0 && got == want, "%s x %s: want %lld, got rc %d fen %lld", sa,
                              sb, (long long)want, rc, (long long)got)) {
            bad++;
        }
    }
}

/* ---- fp_round_div ---- */

static void test_round_div(void)
{
    static const struct {
        long long n, d, q;
    } cases[] = {
        {0, 7, 0},         {4, 10, 0},       {5, 10, 1},       {6, 10, 1},   {14, 10, 1},
        {15, 10, 2},       {25, 10, 3},      {35, 10, 4},      {-4, 10, 0},  {-5, 10, -1},
        {-15, 10, -2},     {-25, 10, -3},    {1, 3, 0},        {2, 3, 1},    {-1, 3, 0},
        {-2, 3, -1},       {7, 7, 1},        {-7, 7, -1},      {1, 2, 1},    {-1, 2, -1},
        {1, 1, 1},         {99, 100, 1},     {49, 100, 0},     {50, 100, 1}, {-50, 100, -1},
        {10599, 10600, 1}, {5300, 10600, 1}, {5299, 10600, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("round_div[%zu] %lld/%lld", i, cases[i].n, cases[i].d);
        CHECK_EQ_INT((long long)fp_round_div(cases[i].n, cases[i].d), cases[i].q);
        /* symmetric: round(-x) == -round(x) */
        CHECK_EQ_INT((long long)fp_round_div(-(__int128)cases[i].n, cases[i].d), -cases[i].q);
    }
    /* beyond 64 bits */
    check_ctx("round_div wide");
    __int128 big = (__int128)FP_MONEY_MAX_FEN * 10000 + 5000;
    CHECK(fp_round_div(big, 10000) == (__int128)FP_MONEY_MAX_FEN + 1);
    CHECK(fp_round_div(-big, 10000) == -((__int128)FP_MONEY_MAX_FEN + 1));
    CHECK(fp_round_div(big - 1, 10000) == (__int128)FP_MONEY_MAX_FEN);
    check_ctx("%s", "");
}

/* ---- rates ---- */

static void test_rate_parse(void)
{
    static const struct {
        const char *in;
        int rc, bp;
    } cases[] = {
        {"0.13", 0, 1300},
        {"0.09", 0, 900},
        {"0.06", 0, 600},
        {"0.05", 0, 500},
        {"0.03", 0, 300},
        {"0.015", 0, 150},
        {"0.01", 0, 100},
        {"0", 0, 0},
        {"0.0", 0, 0},
        {"0.00", 0, 0},
        {"0.130", 0, 1300},
        {"0.13000000", 0, 1300},
        {"0.9999", 0, 9999},
        {"0.0001", 0, 1},
        {"0.00001", FP_ERANGE, 0}, /* finer than a basis point of a percent */
        {"0.13001", FP_ERANGE, 0},
        {"1", FP_ERANGE, 0}, /* rates are fractions, not percent */
        {"1.0", FP_ERANGE, 0},
        {"13", FP_ERANGE, 0},
        {"-0.13", FP_EINVAL, 0},
        {".13", FP_EINVAL, 0},
        {"0.", FP_EINVAL, 0},
        {"00.13", FP_EINVAL, 0},
        {"13%", FP_EINVAL, 0},
        {"0.13%", FP_EINVAL, 0},
        {"", FP_EINVAL, 0},
        {"+0.13", FP_EINVAL, 0},
        {" 0.13", FP_EINVAL, 0},
        {"1e-1", FP_EINVAL, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("rate_parse[%zu] \"%s\"", i, cases[i].in);
        int bp = -1;
        int rc = fp_rate_parse(cases[i].in, &bp);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (cases[i].rc == 0)
            CHECK_EQ_INT(bp, cases[i].bp);
    }
    check_ctx("rate_parse(NULL)");
    int bp;
    CHECK_EQ_INT(fp_rate_parse(NULL, &bp), FP_EINVAL);
    check_ctx("%s", "");
}

static void test_rate_format(void)
{
    static const struct {
        int bp;
        size_t n;
        const char *out;
    } cases[] = {
        {1300, 16, "0.13"},
        {900, 16, "0.09"},
        {600, 16, "0.06"},
        {500, 16, "0.05"},
        {300, 16, "0.03"},
        {150, 16, "0.015"},
        {100, 16, "0.01"},
        {0, 16, "0.00"},
        {1, 16, "0.0001"},
        {1234, 16, "0.1234"},
        {9999, 16, "0.9999"},
        {1000, 16, "0.10"},
        /* truncated to the buffer, always NUL-terminated */
        {150, 5, "0.01"},
        {1300, 3, "0."},
        {1300, 1, ""},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("rate_format[%zu] %d n=%zu", i, cases[i].bp, cases[i].n);
        char buf[16];
        memset(buf, 'X', sizeof buf);
        fp_rate_format(cases[i].bp, buf, cases[i].n);
        CHECK_EQ_STR(buf, cases[i].out);
        /* the full form parses back */
        if (cases[i].n == 16) {
            int bp = -1;
            CHECK_EQ_INT(fp_rate_parse(buf, &bp), 0);
            CHECK_EQ_INT(bp, cases[i].bp);
        }
    }
    check_ctx("rate_format n=0 writes nothing");
    char z = 'X';
    fp_rate_format(1300, &z, 0);
    CHECK_EQ_INT(z, 'X');
    check_ctx("%s", "");
}

/* ---- tax arithmetic ---- */

static void test_tax(void)
{
    static const struct {
        int64_t amount;
        int bp;
        int64_t tax;
    } tax_cases[] = {
        {100000, 600, 6000}, /* 1000.00 x 6% = 60.00 */
        {-10000, 600, -600},
        {90000, 600, 5400},
        {1999, 1300, 260}, /* 19.99 x 13% = 2.5987 */
        {1999, 500, 100},  /* 19.99 x 5% = 0.9995 -> 1.00 */
        {50, 900, 5},      /* 0.045: floats give 0.04 */
        {250, 900, 23},    /* 0.225: floats give 0.22 */
        {25, 600, 2},      /* 0.015: floats give 0.01 */
        {-50, 900, -5},    /* symmetric */
        {50, 1300, 7},     /* 0.065 */
        {1, 1300, 0},
        {4, 1300, 1},  /* 0.0052 */
        {3, 1300, 0},  /* 0.0039 */
        {100, 150, 2}, /* 1.00 x 1.5% = 0.015 */
        {123456, 0, 0},
        {FP_MONEY_MAX_FEN, 1300, 130000000000000000LL}, /* 99999999999999999.87 -> no overflow */
    };
    for (size_t i = 0; i < NCASES(tax_cases); i++) {
        check_ctx("tax_of[%zu] %lld @ %d", i, (long long)tax_cases[i].amount, tax_cases[i].bp);
        CHECK_EQ_INT(fp_tax_of(tax_cases[i].amount, tax_cases[i].bp), tax_cases[i].tax);
    }
    static const struct {
        int64_t gross;
        int bp;
        int64_t net;
    } net_cases[] = {
        {106000, 600, 100000}, /* 1060.00 / 1.06 */
        {95400, 600, 90000},
        {1999, 1300, 1769}, /* 19.99 / 1.13 = 17.690265… */
        {1999, 300, 1941},  /* 19.99 / 1.03 = 19.407766… */
        {113, 1300, 100},
        {1, 1300, 1}, /* 0.00884… -> 0.01 */
        {-106000, 600, -100000},
        {-1999, 1300, -1769},
        {10000, 0, 10000},
        {10150, 150, 10000},
        {53, 600, 50}, /* 0.53 / 1.06 = 0.50 exactly */
        {FP_MONEY_MAX_FEN, 1300, 884955752212389380LL},
    };
    for (size_t i = 0; i < NCASES(net_cases); i++) {
        check_ctx("net_of_gross[%zu] %lld @ %d", i, (long long)net_cases[i].gross, net_cases[i].bp);
        int64_t net = fp_net_of_gross(net_cases[i].gross, net_cases[i].bp);
        CHECK_EQ_INT(net, net_cases[i].net);
    }
    check_ctx("%s", "");
}

/* ---- capital amounts ---- */

static void test_capital(void)
{
    static const struct {
        int64_t fen;
        const char *words;
    } cases[] = {
        /* the official table of capital amounts (docs/domain.md), with its
         * optional 整 / 零 as the table lists them */
        {140950, "壹仟肆佰零玖圆伍角整"},
        {600714, "陆仟零柒圆壹角肆分"},
        {10700053, "壹拾万柒仟圆伍角叁分"},
        {1640902, "壹万陆仟肆佰零玖圆零贰分"},
        {10001000, "壹拾万零壹拾圆整"},
        {100000005, "壹佰万圆零伍分"},
        {5, "伍分"},
        {1000, "壹拾圆整"},
        /* more */
        {0, "零圆整"},
        {50, "伍角整"},
        {55, "伍角伍分"},
        {1005, "壹拾圆零伍分"},
        {100, "壹圆整"},
        {1100, "壹拾壹圆整"},
        {1000000, "壹万圆整"},
        {1000100, "壹万零壹圆整"},
        {1010000, "壹万零壹佰圆整"},
        {101010, "壹仟零壹拾圆壹角整"},
        {10000000000LL, "壹亿圆整"},
        {10000000700LL, "壹亿零柒圆整"},
        {10001000000LL, "壹亿零壹万圆整"},
        {100000000000LL, "壹拾亿圆整"},
        {10000000000000LL, "壹仟亿圆整"},
        {100000000000000LL, "壹万亿圆整"},
        {100010000000000LL, "壹万零壹亿圆整"},
        {100001000000000LL, "壹万亿零壹仟万圆整"},
        {100000010000000LL, "壹万亿零壹拾万圆整"},
        {123456780000000000LL, "壹仟贰佰叁拾肆万伍仟陆佰柒拾捌亿圆整"},
        {FP_MONEY_MAX_FEN,
         "玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖圆玖角玖分"},
        /* red (negative) amounts */
        {-140950, "（负数）壹仟肆佰零玖圆伍角整"},
        {-5, "（负数）伍分"},
        {-95400, "（负数）玖佰伍拾肆圆整"},
        {-FP_MONEY_MAX_FEN,
         "（负数）玖仟玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖圆玖角玖分"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("capital[%zu] %lld", i, (long long)cases[i].fen);
        char buf[128];
        memset(buf, 'X', sizeof buf);
        CHECK_EQ_INT(fp_capital(cases[i].fen, buf, sizeof buf), 0);
        CHECK_EQ_STR(buf, cases[i].words);
        /* the exact size needed works, one byte less is FP_ERANGE */
        size_t need = strlen(cases[i].words) + 1;
        char exact[128];
        CHECK_EQ_INT(fp_capital(cases[i].fen, exact, need), 0);
        CHECK_EQ_STR(exact, cases[i].words);
        CHECK_EQ_INT(fp_capital(cases[i].fen, exact, need - 1), FP_ERANGE);
    }
    /* beyond (18,2) there are no words (the next unit would be 亿亿): the
     * value must be refused, not written with its top digits dropped */
    static const int64_t too_big[] = {FP_MONEY_MAX_FEN + 1, INT64_MAX, -FP_MONEY_MAX_FEN - 1,
                                      INT64_MIN};
    for (size_t i = 0; i < NCASES(too_big); i++) {
        check_ctx("capital beyond (18,2): %lld", (long long)too_big[i]);
        char big[128];
        CHECK_EQ_INT(fp_capital(too_big[i], big, sizeof big), FP_ERANGE);
    }
    check_ctx("capital small buffers");
    char buf[8];
    CHECK_EQ_INT(fp_capital(140950, buf, 0), FP_ERANGE);
    CHECK_EQ_INT(fp_capital(140950, buf, 1), FP_ERANGE);
    CHECK_EQ_INT(fp_capital(140950, buf, sizeof buf), FP_ERANGE);
    CHECK_EQ_INT(fp_capital(0, buf, 4), FP_ERANGE); /* 零圆整 needs 10 bytes */
    /* never writes past n */
    char guard[16];
    memset(guard, 'G', sizeof guard);
    fp_capital(FP_MONEY_MAX_FEN, guard, 8);
    for (size_t k = 8; k < sizeof guard; k++)
        CHECK_EQ_INT(guard[k], 'G');
    check_ctx("%s", "");
}

/* ---- fp_unit_price: the net unit price amount ÷ quantity ---- */

static void test_unit_price(void)
{
    /* expected values from Python's decimal module, ROUND_HALF_UP at 13 */
    static const struct {
        int64_t fen;
        const char *q;
        int rc;
        const char *want;
    } cases[] = {
        {9433, "3", 0, "31.4433333333333"}, /* 3 × 33.33 gross at 6%: net 94.33 */
        {9434, "3", 0, "31.4466666666667"}, /* half up at the 13th decimal */
        {45000, "1", 0, "450"},
        {101, "3", 0, "0.3366666666667"},
        {100, "3", 0, "0.3333333333333"},
        {1, "3", 0, "0.0033333333333"},
        {1, "9999999999999", 0, "0"},
        {9433, "0.003", 0, "31443.3333333333333"},
        {-9433, "-3", 0, "31.4433333333333"}, /* magnitudes */
        {6667, "0.6667", 0, "100"},
        {0, "5", 0, "0"},
        {999999999999999999LL, "0.0000000000001", FP_ERANGE, NULL}, /* 29 digits */
        {100, "0", FP_ERANGE, NULL},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("unit_price[%zu] %lld / %s", i, (long long)cases[i].fen, cases[i].q);
        fp_dec q;
        char buf[32];
        CHECK_EQ_INT(fp_dec_parse(cases[i].q, &q), 0);
        CHECK_EQ_INT(fp_unit_price(cases[i].fen, &q, buf, sizeof buf), cases[i].rc);
        if (cases[i].rc == 0) {
            CHECK_EQ_STR(buf, cases[i].want);
            fp_dec p;
            CHECK_EQ_INT(fp_dec_parse(buf, &p), 0); /* a valid 25-character decimal */
        }
    }
    check_ctx("unit_price: short buffer");
    fp_dec q;
    char small[4];
    fp_dec_parse("3", &q);
    CHECK_EQ_INT(fp_unit_price(9433, &q, small, sizeof small), FP_ERANGE);
    check_ctx("%s", "");
}

int main(void)
{
    test_unit_price();
    test_money_parse();
    test_money_format();
    test_money_round_trip();
    test_dec_parse();
    test_dec_mul_fen();
    test_dec_mul_fen_random();
    test_round_div();
    test_rate_parse();
    test_rate_format();
    test_tax();
    test_capital();
    return check_summary();
}
