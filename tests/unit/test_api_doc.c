/* test_api_doc.c — docs/api.md lists every API error code: the page's table
 * is generated from src/core/errors.c, and this test fails when a row is
 * added there and not on the page (or the page loses one), naming the code
 * with its HTTP status as the table has it. */
#include "check.h"
#include "fapiao/err.h"

#include <stdio.h>

int main(void)
{
    size_t len = 0;
    char *doc = check_read_file(FP_SOURCE_DIR "/docs/api.md", &len);
    if (!CHECK(doc != NULL))
        return check_summary();
    for (int i = 1; i < FPC__COUNT; i++) {
        const fp_code_info *c = fp_code_get((fp_code)i);
        char row[128];
        snprintf(row, sizeof row, "| `%s` | %d |", c->name, c->http_status);
        check_ctx("%s", c->name);
        CHECK_CONTAINS(doc, row);
    }
    free(doc);
    return check_summary();
}
