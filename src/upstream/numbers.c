/* numbers.c — pre-assigned numbers (预赋码, QDFPPLFM) as our number ranges
 * (docs/upstream.md, "Numbers"): the answer's first and last numbers split
 * into the prefix and the sequence part `fapiao ranges` stores, and the
 * business serial that makes a retried download ask for the same range. */
#include "fapiao/upstream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int digits20(const char *s)
{
    if (strlen(s) != 20)
        return 0;
    for (int i = 0; i < 20; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int64_t seq15(const char *s)
{
    int64_t v = 0;
    for (int i = 5; i < 20; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int fp_up_numbers_range(const fp_up_numbers *n, char prefix[6], int64_t *first, int64_t *last,
                        fp_err *err)
{
    if (!digits20(n->first) || !digits20(n->last) || memcmp(n->first, n->last, 5))
        return fp_fail(err, FP_EINVAL, "QDFPPLFM: %s..%s is not one range of 20-digit numbers",
                       n->first, n->last);
    *first = seq15(n->first);
    *last = seq15(n->last);
    if (*first < 1 || *last < *first)
        return fp_fail(err, FP_EINVAL, "QDFPPLFM: %s..%s is empty", n->first, n->last);
    memcpy(prefix, n->first, 5);
    prefix[5] = 0;
    return 0;
}

void fp_up_numbers_serial(const char *tax_id, int64_t nth, char out[64])
{
    snprintf(out, 64, "FM%.20s%06" PRId64, tax_id, nth);
}
