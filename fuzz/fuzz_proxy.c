/* fuzz_proxy.c — the PROXY protocol v2 parser (proxy.h): arbitrary bytes
 * never crash it; an accepted header is consistent (its length within the
 * input and at most FP_PROXY_V2_MAX, an IPv4 or IPv6 source unless LOCAL),
 * every shorter prefix of it asks for more bytes, and bytes after it do not
 * change the answer. */
#include "fapiao/proxy.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fp_proxy_v2 r;
    size_t need = 0;
    int n = fp_proxy_v2_parse(data, size, &r, &need);
    (void)fp_proxy_looks_like(data, size);
    if (n == 0 && (need <= size || need > FP_PROXY_V2_MAX))
        abort(); /* asks for more than it has, never beyond the maximum */
    if (n <= 0)
        return 0;
    if ((size_t)n > size || n > FP_PROXY_V2_MAX || n < FP_PROXY_V2_FIXED)
        abort();
    if (!r.local && !((r.src.ss_family == AF_INET && r.src_len == sizeof(struct sockaddr_in)) ||
                      (r.src.ss_family == AF_INET6 && r.src_len == sizeof(struct sockaddr_in6))))
        abort();
    if (!fp_proxy_looks_like(data, size))
        abort();
    for (size_t k = 1; k < (size_t)n; k += 1 + k / 8)
        if (fp_proxy_v2_parse(data, k, NULL, &need) != 0 || need <= k)
            abort();
    unsigned char *more = malloc((size_t)n + 8);
    if (!more)
        return 0;
    memcpy(more, data, (size_t)n);
    memset(more + n, 0x16, 8);
    if (fp_proxy_v2_parse(more, (size_t)n + 8, NULL, NULL) != n)
        abort();
    free(more);
    return 0;
}
