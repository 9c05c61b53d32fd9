#include "fapiao/store.h"
#include "internal.h"

int fp_a(int x)
{
    return x ? fp_b(x - 1) : 0;
}
