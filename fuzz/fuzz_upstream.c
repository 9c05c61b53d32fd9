/* fuzz_upstream.c — the reading of the tax platform's answers
 * (fp_up_open in src/upstream/envelope.c) on arbitrary bytes.
 *
 * Input: the first byte picks the HTTP status (200, 403, 429, 500, 503 …),
 * the rest is the body.  The key is the GB/T 32907 test key, so corpus
 * files may carry real sealed Data.
 * Invariants, each an abort() when broken:
 *  - the kind is a row of the kinds table, and res.kind is it;
 *  - data is handed out only with OK, REFUSED or NOT_FOUND, and is an object;
 *  - code, message and request id are terminated within their buffers. */
#include "fapiao/upstream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = {200, 403, 429, 500, 502, 503, 404, 200};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[FP_SM4_KEY_LEN] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                                0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
    if (size < 1)
        return 0;
    int status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    cJSON *d = (cJSON *)1;
    fp_up_result res;
    fp_up_kind k = fp_up_open(key, status, (const char *)data + 1, size - 1, &d, &res);
    if ((int)k < 0 || k >= FP_UP__COUNT || res.kind != k)
        abort();
    if (d && !(k == FP_UP_OK || k == FP_UP_REFUSED || k == FP_UP_NOT_FOUND))
        abort();
    if (d && !cJSON_IsObject(d))
        abort();
    if (!memchr(res.code, 0, sizeof res.code) || !memchr(res.message, 0, sizeof res.message) ||
        !memchr(res.request_id, 0, sizeof res.request_id))
        abort();
    cJSON_Delete(d);
    return 0;
}
