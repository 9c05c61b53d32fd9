/* fuzz_taxcode.c — the tax code CSV loader on arbitrary file contents: it
 * either loads a table whose every row is findable and well-shaped, or
 * refuses with a message; never crashes or leaks. */
#include "fapiao/taxcode.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/fapiao-fuzz-taxcode-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    fp_taxcode_table *t = NULL;
    fp_err err = {0};
    if (fp_taxcode_load(path, &t, &err) == 0) {
        /* every loaded code has the right shape and is found by lookup */
        FILE *f = fopen(path, "r");
        char line[1100];
        while (f && fgets(line, sizeof line, f)) {
            if (strlen(line) >= 19 && fp_taxcode_valid_shape((line[19] = 0, line))) {
                const fp_taxcode *c = fp_taxcode_find(t, line);
                if (c && (!fp_taxcode_valid_shape(c->code) || c->nrates > 8))
                    abort();
            }
        }
        if (f)
            fclose(f);
    } else if (err.msg[0] == 0) {
        abort(); /* a refusal always says why */
    }
    fp_taxcode_free(t);
    unlink(path);
    return 0;
}
