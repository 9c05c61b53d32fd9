/* planted.h — fixture: a header is linted too. */
typedef double fp_bad_t; /* BAD: double */
#define FP_BAD_HALF 0.5e0 /* BAD: 0.5e0 */
