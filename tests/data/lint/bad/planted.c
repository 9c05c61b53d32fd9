/* planted.c — fixture for tests/unit/test_nofloat.c (never compiled).
 * Every line whose comment says "BAD:" must be flagged with exactly the
 * tokens listed after it, in order; every other line must not be: float,
 * double, strtod and 1.0 inside this comment do not count. */
#include <stdlib.h>
// a line comment with double and 2.5 \
   continued by a backslash: strtod 1e3 atof

static const char *s = "float 1.5 \" double 2e9";
static const char *s2 = u8"long double" "\\";
static const char c = '.', q = '"', bs = '\\';
static int hex = 0x1E3 + 0XABE5;
static int plain = 10UL + 07 + sizeof(int);
static int floaty, doubled, my_strtod, atof_x; /* 0.5 in a comment */
static double d;                        /* BAD: double */
static float f = 2;                     /* BAD: float */
static long double ld;                  /* BAD: double */
static int n = (int)1e3;                /* BAD: 1e3 */
static int m = (int)1.0 + 1;            /* BAD: 1.0 */
static int k = (int).5f;                /* BAD: .5f */
static int h = (int)0x1p4;              /* BAD: 0x1p4 */
static int t = (int)2.;                 /* BAD: 2. */
static int e(const char *x) { return (int)strtod(x, 0) + (int)atof(x) + (int)strtof(x, 0); } /* BAD: strtod atof strtof */
static struct { int a; } st = {.a = 1}; /* a designator, not a number */
static int v(int x, ...) { return x + st.a; }
