/* taxid.c — USCC check character (GB 32100-2015) and legacy id shapes. */
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
