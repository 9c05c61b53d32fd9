#include "internal.h"

static int fp_c(int x)
{
    return x;
}

int fp_b(int x)
{
    return fp_c(x) ? fp_a(x - 1) : 0;
}
