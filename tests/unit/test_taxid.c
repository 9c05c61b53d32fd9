/* test_taxid.c — taxid.h: the USCC check character of GB 32100-2015, its
 * alphabet (no I O S V Z), the digit-only region code, and the legacy 15/17/20
 * character ids that are accepted without a checksum.
 *
 * Generated codes are checked against an independent implementation of the
 * standard (weights 3^i mod 31) written here, then every single-character
 * substitution and every adjacent transposition is shown to be caught.
 *
 * Natural persons' resident identity numbers (GB 11643-1999: weights
 * 2^(17-i) mod 11, check "10X98765432"[sum mod 11]) are checked the same
 * way: known numbers, a table, and every single-digit substitution. */
#include "check.h"

#include "fapiao/taxid.h"

#include <stdint.h>
#include <string.h>

static const char ALPHABET[] = "0123456789ABCDEFGHJKLMNPQRTUWXY"; /* 31 characters */

/* Reference check character: weights are 3^i mod 31 (1, 3, 9, 27, 19, …). */
static char ref_check(const char *first17)
{
    int sum = 0, w = 1;
    for (int i = 0; i < 17; i++) {
        const char *p = strchr(ALPHABET, first17[i]);
        if (!first17[i] || !p)
            return 0;
        sum += (int)(p - ALPHABET) * w;
        w = w * 3 % 31;
    }
    return ALPHABET[(31 - sum % 31) % 31];
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static unsigned rng(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* A random well-formed USCC: authority, type, 6-digit region, 9-char
 * organisation code, check character. */
static void random_uscc(char out[19])
{
    for (int i = 0; i < 17; i++)
        out[i] = (i >= 2 && i < 8) ? (char)('0' + rng(10)) : ALPHABET[rng(31)];
    out[17] = ref_check(out);
    out[18] = 0;
}

static void test_known(void)
{
    check_ctx("known valid USCC");
    CHECK_EQ_INT(fp_uscc_check_char("91350200MA2YJ1XR9"), 'G');
    CHECK_EQ_INT(ref_check("91350200MA2YJ1XR9"), 'G'); /* the reference agrees */
    CHECK_EQ_INT(fp_taxid_classify("91350200MA2YJ1XR9G"), FP_TAXID_USCC);
    check_ctx("%s", "");
}

static void test_classify_table(void)
{
    static const struct {
        const char *id;
        fp_taxid_kind kind;
    } cases[] = {
        {"91350200MA2YJ1XR9G", FP_TAXID_USCC},
        {"91350200MA2YJ1XR9H", FP_TAXID_INVALID}, /* wrong check character */
        {"91350200MA2YJ1XR90", FP_TAXID_INVALID},
        {"91350200ma2yj1xr9g", FP_TAXID_INVALID}, /* lowercase */
        {"91350200MA2YJ1XR9g", FP_TAXID_INVALID},
        {"9135020OMA2YJ1XR9G", FP_TAXID_INVALID}, /* letter O in the region code */
        /* I O S V Z are outside the alphabet wherever they stand */
        {"91350200IA2YJ1XR9G", FP_TAXID_INVALID},
        {"91350200OA2YJ1XR9G", FP_TAXID_INVALID},
        {"91350200SA2YJ1XR9G", FP_TAXID_INVALID},
        {"91350200VA2YJ1XR9G", FP_TAXID_INVALID},
        {"91350200ZA2YJ1XR9G", FP_TAXID_INVALID},
        {"91350200MA2YJ1XR9I", FP_TAXID_INVALID},
        {"91350200MA2YJ1XR9Z", FP_TAXID_INVALID},
        {"I1350200MA2YJ1XR9G", FP_TAXID_INVALID},
        {"91350200MA2YJ1XR9-", FP_TAXID_INVALID},
        {" 1350200MA2YJ1XR9G", FP_TAXID_INVALID},
        /* legacy ids: 15, 17 or 20 digits/capitals, no checksum */
        {"110108000000000", FP_TAXID_LEGACY},      /* 15 */
        {"11010819800101123", FP_TAXID_LEGACY},    /* 17 */
        {"12345678901234567890", FP_TAXID_LEGACY}, /* 20 */
        {"ABCDEFGHIJKLMNO", FP_TAXID_LEGACY},      /* 15, letters I O allowed */
        {"440301X99999999SZ00", FP_TAXID_INVALID}, /* 19 */
        {"44030199999999900ZX", FP_TAXID_INVALID}, /* 19 */
        {"110108000000000XYZ12", FP_TAXID_LEGACY}, /* 20 */
        {"11010800000000a", FP_TAXID_INVALID},     /* lowercase */
        {"110108-00000000", FP_TAXID_INVALID},
        {"1101080000000 0", FP_TAXID_INVALID},
        {"11010819800101123-", FP_TAXID_INVALID}, /* 18 with '-' */
        /* other lengths */
        {"", FP_TAXID_INVALID},
        {"9", FP_TAXID_INVALID},
        {"11010800000000", FP_TAXID_INVALID},        /* 14 */
        {"1101080000000000", FP_TAXID_INVALID},      /* 16 */
        {"9135020MA2YJ1XR9G", FP_TAXID_LEGACY},      /* 17: a USCC missing a char */
        {"913502000MA2YJ1XR9G", FP_TAXID_INVALID},   /* 19 */
        {"123456789012345678901", FP_TAXID_INVALID}, /* 21 */
        {"91350200MA2YJ1XR9G91350200MA2YJ1XR9G", FP_TAXID_INVALID},
        {"中文中文中", FP_TAXID_INVALID}, /* 15 bytes of UTF-8 */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("classify[%zu] \"%s\"", i, cases[i].id);
        CHECK_EQ_INT(fp_taxid_classify(cases[i].id), cases[i].kind);
    }
    check_ctx("%s", "");
}

static void test_check_char_rejects(void)
{
    static const char *const bad[] = {
        "91350200IA2YJ1XR9", "91350200OA2YJ1XR9", "91350200SA2YJ1XR9", "91350200VA2YJ1XR9",
        "91350200ZA2YJ1XR9", "91350200mA2YJ1XR9", "9135020",           "",
        "91350200MA2YJ1XR ",
    };
    for (size_t i = 0; i < NCASES(bad); i++) {
        check_ctx("check_char rejects \"%s\"", bad[i]);
        CHECK_EQ_INT(fp_uscc_check_char(bad[i]), 0);
    }
    check_ctx("%s", "");
}

static void test_generated(void)
{
    int failures = 0;
    for (int n = 0; n < 200 && failures < 10; n++) {
        char id[19];
        random_uscc(id);
        check_ctx("generated %s", id);
        if (!CHECK_EQ_INT(fp_uscc_check_char(id), id[17]) ||
            !CHECK_EQ_INT(fp_taxid_classify(id), FP_TAXID_USCC)) {
            failures++;
            continue;
        }
        /* every single-character substitution, with in-alphabet characters
         * and with the excluded letters and lowercase, is detected */
        static const char extra[] = "IOSVZaz -";
        for (int pos = 0; pos < 18; pos++) {
            char subs[sizeof ALPHABET + sizeof extra];
            snprintf(subs, sizeof subs, "%s%s", ALPHABET, extra);
            for (const char *c = subs; *c; c++) {
                if (*c == id[pos])
                    continue;
                char m[19];
                memcpy(m, id, sizeof m);
                m[pos] = *c;
                if (!CHECK_MSG(fp_taxid_classify(m) == FP_TAXID_INVALID,
                               "substitution %s -> %s (position %d) not detected", id, m, pos + 1))
                    failures++;
            }
        }
        /* adjacent transpositions among the weighted positions */
        for (int pos = 0; pos + 1 < 17; pos++) {
            if (id[pos] == id[pos + 1])
                continue;
            char m[19];
            memcpy(m, id, sizeof m);
            m[pos] = id[pos + 1];
            m[pos + 1] = id[pos];
            if (!CHECK_MSG(fp_taxid_classify(m) == FP_TAXID_INVALID,
                           "transposition %s -> %s (positions %d,%d) not detected", id, m, pos + 1,
                           pos + 2))
                failures++;
        }
    }
    check_ctx("%s", "");
}

/* ---- resident identity numbers (GB 11643-1999) ---- */

static char ref_resident_check(const char *first17)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int w = 1;
        for (int k = 0; k < 17 - i; k++)
            w = w * 2 % 11;
        sum += (first17[i] - '0') * w;
    }
    return "10X98765432"[sum % 11];
}

static void test_resident_ids(void)
{
    static const struct {
        const char *id;
        fp_taxid_kind person; /* fp_taxid_classify_person */
        fp_taxid_kind plain;  /* fp_taxid_classify (no natural person) */
    } cases[] = {
        /* the standard's example and numbers ending in a digit */
        {"11010519491231002X", FP_TAXID_RESIDENT, FP_TAXID_INVALID},
        {"440524188001010014", FP_TAXID_RESIDENT, FP_TAXID_INVALID},
        {"110101199003078030", FP_TAXID_INVALID, FP_TAXID_INVALID}, /* wants X */
        {"110105194912310020", FP_TAXID_INVALID, FP_TAXID_INVALID}, /* wants X */
        {"440524188001010015", FP_TAXID_INVALID, FP_TAXID_INVALID},
        {"11010519491231002x", FP_TAXID_INVALID, FP_TAXID_INVALID}, /* X is upper case */
        {"11010519491231002", FP_TAXID_LEGACY, FP_TAXID_LEGACY},    /* 17: no checksum */
        {"1101051949123100X2", FP_TAXID_INVALID, FP_TAXID_INVALID},
        /* not resident-id shaped: validated as a taxpayer id */
        {"91350200MA2YJ1XR9G", FP_TAXID_USCC, FP_TAXID_USCC},
        {"110108000000000", FP_TAXID_LEGACY, FP_TAXID_LEGACY},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("resident[%zu] %s", i, cases[i].id);
        CHECK_EQ_INT(fp_taxid_classify_person(cases[i].id), cases[i].person);
        CHECK_EQ_INT(fp_taxid_classify(cases[i].id), cases[i].plain);
    }
    check_ctx("resident check characters");
    CHECK_EQ_INT(fp_resident_id_check_char("11010519491231002"), 'X');
    CHECK_EQ_INT(fp_resident_id_check_char("1101051949123100A"), 0);
    /* generated numbers agree with the reference; every single-digit
     * substitution is caught */
    int caught = 0, tried = 0;
    for (int n = 0; n < 2000; n++) {
        char id[19];
        for (int k = 0; k < 17; k++)
            id[k] = (char)('0' + rng(10));
        id[17] = ref_resident_check(id);
        id[18] = 0;
        check_ctx("generated resident id %s", id);
        CHECK_EQ_INT(fp_resident_id_check_char(id), id[17]);
        CHECK_EQ_INT(fp_taxid_classify_person(id), FP_TAXID_RESIDENT);
        int pos = (int)rng(17);
        char bad[19];
        memcpy(bad, id, sizeof bad);
        bad[pos] = (char)('0' + (bad[pos] - '0' + 1 + (int)rng(9)) % 10);
        tried++;
        caught += fp_taxid_classify_person(bad) == FP_TAXID_INVALID;
    }
    check_ctx("single-digit substitutions");
    CHECK_EQ_INT(caught, tried);
    check_ctx("%s", "");
}

int main(void)
{
    test_known();
    test_classify_table();
    test_check_char_rejects();
    test_generated();
    test_resident_ids();
    return check_summary();
}
