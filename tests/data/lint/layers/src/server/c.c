#include "internal.h"

/* calls into a.c, nothing calls back: not a loop */
int fp_d(void)
{
    return fp_a(3);
}
