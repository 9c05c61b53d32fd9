/* #include "fapiao/server.h": a comment, not an include */
#include "fapiao/money.h"
#include "fapiao/json.h"
static const char *s = "#include \"fapiao/server.h\"";
#include "fapiao/store.h"

int fp_x(void)
{
    return 0;
}
