/* fuzz_token.c — the bearer token, client id and client secret parsers:
 * arbitrary bytes must never verify (they carry no valid MAC), never crash;
 * a token we issue must always verify to the claims it was issued with, and
 * a client id the input makes (any bytes, '|' included: issue 13) is
 * either valid, and round-trips exactly, or refused at issue. */
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
    if (fp_token_verify(key, s, 0, &c) != FP_TOKEN_INVALID && strncmp(s, "fpt2.", 5) != 0)
        abort(); /* only our format can ever verify */
    (void)fp_secret_wellformed(s);

    /* round trip: a client id made of the input's printable bytes as they
     * are (so '|', ' ', ':' occur), a seller and a secret id from its size */
    fp_token_claims in = {0}, out;
    size_t n = 0;
    for (size_t i = 0; i < size && n < sizeof in.client_id - 1; i++)
        if (data[i] > 0x20 && data[i] < 0x7f)
            in.client_id[n++] = (char)data[i];
    in.seller_id = (int64_t)size % 5; /* 0 must be refused */
    in.expires = 2000000000;
    in.secret_id = (int64_t)size + 1;
    char tok[FP_TOKEN_MAX];
    int issued = fp_token_issue(key, &in, tok) == 0;
    if (issued != (fp_client_id_valid(in.client_id) && in.seller_id >= 1))
        abort(); /* a bad id or seller 0 must never make a token */
    if (issued) {
        if (fp_token_verify(key, tok, 1000, &out) != FP_TOKEN_OK ||
            strcmp(out.client_id, in.client_id) != 0 || out.seller_id != in.seller_id ||
            out.expires != in.expires || out.secret_id != in.secret_id)
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
