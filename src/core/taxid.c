/* taxid.c — USCC check character (GB 32100-2015), legacy id shapes, and
 * the resident identity number of natural persons (GB 11643-1999). */
#include "fapiao/taxid.h"

#include <string.h>

static const char alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
static const int weights[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

static int value_of(char c)
{
    const char *p = c ? strchr(alphabet, c) : NULL;
    return p ? (int)(p - alphabet) : -1;
}

char fp_uscc_check_char(const char *first17)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int v = value_of(first17[i]);
        if (v < 0)
            return 0;
        sum += v * weights[i];
    }
    return alphabet[(31 - sum % 31) % 31];
}

fp_taxid_kind fp_taxid_classify(const char *s)
{
    size_t n = strlen(s);
    if (n == 18) {
        for (int i = 2; i < 8; i++) /* region code: digits */
            if (s[i] < '0' || s[i] > '9')
                return FP_TAXID_INVALID;
        char c = fp_uscc_check_char(s);
        return c && c == s[17] ? FP_TAXID_USCC : FP_TAXID_INVALID;
    }
    if (n != 15 && n != 17 && n != 20)
        return FP_TAXID_INVALID;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')))
            return FP_TAXID_INVALID;
    }
    return FP_TAXID_LEGACY;
}

/* GB 11643-1999: weights 2^(17-i) mod 11 for positions 1-17, check
 * character "10X98765432"[sum mod 11]. */
static const int rid_weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};

char fp_resident_id_check_char(const char *first17)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (first17[i] < '0' || first17[i] > '9')
            return 0;
        sum += (first17[i] - '0') * rid_weights[i];
    }
    return "10X98765432"[sum % 11];
}

int fp_resident_id_shape(const char *s)
{
    if (strlen(s) != 18)
        return 0;
    for (int i = 0; i < 17; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return (s[17] >= '0' && s[17] <= '9') || s[17] == 'X';
}

fp_taxid_kind fp_taxid_classify_person(const char *s)
{
    if (!fp_resident_id_shape(s))
        return fp_taxid_classify(s);
    return fp_resident_id_check_char(s) == s[17] ? FP_TAXID_RESIDENT : FP_TAXID_INVALID;
}
