/* fuzz_token.c — the bearer token and client secret parsers: arbitrary bytes
 * must never verify (they carry no valid MAC), never crash, and a token we
 * issue must always verify to the claims it was issued with. */
#include "fapiao/auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char key[FP_TOKEN_KEY_LEN] = "fuzz-key-0123456789abcdef-fuzz!";
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    fp_token_claims c;
    if (fp_token_verify(key, s, 0, &c) != FP_TOKEN_INVALID && strncmp(s, "fpt1.", 5) != 0)
        abort(); /* only our format can ever verify */
    (void)fp_secret_wellformed(s);

    /* round trip: a client id made from the input */
    fp_token_claims in = {0}, out;
    size_t n = size < sizeof in.client_id - 1 ? size : sizeof in.client_id - 1;
    for (size_t i = 0; i < n; i++)
        in.client_id[i] = (char)('a' + data[i] % 26); /* ids are [a-z0-9-] */
    in.seller_id = size;
    in.expires = 2000000000;
    char tok[FP_TOKEN_MAX];
    if (fp_token_issue(key, &in, tok) == 0) {
        if (fp_token_verify(key, tok, 1000, &out) != FP_TOKEN_OK ||
            strcmp(out.client_id, in.client_id) != 0 || out.seller_id != in.seller_id ||
            out.expires != in.expires)
            abort();
        if (fp_token_verify(key, tok, 2000000000, &out) != FP_TOKEN_OK ||
            fp_token_verify(key, tok, 2000000001, &out) != FP_TOKEN_EXPIRED)
            abort();
        tok[strlen(tok) - 2] ^= 1; /* a changed MAC never verifies */
        if (fp_token_verify(key, tok, 1000, &out) == FP_TOKEN_OK)
            abort();
    }
    free(s);
    return 0;
}
