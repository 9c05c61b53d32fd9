/* proxy.c — PROXY protocol v2 header parser (proxy.h).
 *
 * Layout (all integers big-endian):
 *   12  signature \r\n\r\n\0\r\nQUIT\n
 *    1  version (high nibble, must be 2) and command (0 LOCAL, 1 PROXY)
 *    1  address family (1 INET, 2 INET6, 3 UNIX) and transport (1 STREAM)
 *    2  length of what follows
 *    …  addresses: INET 4+4+2+2, INET6 16+16+2+2 (source, destination,
 *       source port, destination port), then TLVs (type 1, length 2, value).
 *
 * PROXY headers must name a TCP stream over IPv4 or IPv6 with a source that
 * is a real address; LOCAL ones (the proxy's health checks) may carry any
 * defined family and their address is ignored.  TLVs must tile the rest of
 * the header exactly; a CRC32C TLV must be 4 bytes and match; others are
 * skipped. */
#include "fapiao/proxy.h"
#include "fapiao/err.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

enum { PP2_TYPE_CRC32C = 0x03 };

/* Address block size by family/transport byte; 0: not a defined value. */
static const struct {
    unsigned char fam;
    unsigned short addr_len;
    int proxy_ok; /* acceptable for the PROXY command */
} families[] = {
    {0x00, 0, 0},   /* UNSPEC */
    {0x11, 12, 1},  /* TCP over IPv4 */
    {0x12, 12, 0},  /* UDP over IPv4 */
    {0x21, 36, 1},  /* TCP over IPv6 */
    {0x22, 36, 0},  /* UDP over IPv6 */
    {0x31, 216, 0}, /* UNIX stream */
    {0x32, 216, 0}, /* UNIX datagram */
};

int fp_proxy_looks_like(const unsigned char *p, size_t n)
{
    static const char v1[6] = "PROXY ";
    if (n == 0)
        return 0;
    size_t k = n < sizeof sig ? n : sizeof sig;
    if (memcmp(p, sig, k) == 0)
        return 1;
    k = n < sizeof v1 ? n : sizeof v1;
    return memcmp(p, v1, k) == 0;
}

static uint32_t crc32c(const unsigned char *p, size_t n, size_t zero_from, size_t zero_to)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= (i >= zero_from && i < zero_to) ? 0 : p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int fp_proxy_v2_parse(const unsigned char *p, size_t n, fp_proxy_v2 *out, size_t *need)
{
    size_t k = n < sizeof sig ? n : sizeof sig;
    if (memcmp(p, sig, k) != 0)
        return FP_EINVAL;
    if (n >= 13 && (p[12] >> 4 != 2 || (p[12] & 0x0F) > 1))
        return FP_EINVAL;
    int local = n >= 13 && (p[12] & 0x0F) == 0;
    int fi = -1;
    if (n >= 14) {
        for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
            if (families[i].fam == p[13])
                fi = (int)i;
        if (fi < 0 || (!local && !families[fi].proxy_ok))
            return FP_EINVAL;
    }
    if (n < FP_PROXY_V2_FIXED) {
        if (need)
            *need = FP_PROXY_V2_FIXED;
        return 0;
    }
    size_t len = (size_t)p[14] << 8 | p[15];
    size_t total = FP_PROXY_V2_FIXED + len;
    if (total > FP_PROXY_V2_MAX || len < families[fi].addr_len)
        return FP_EINVAL;
    if (n < total) {
        if (need)
            *need = total;
        return 0;
    }
    /* TLVs tile the rest exactly */
    size_t at = FP_PROXY_V2_FIXED + families[fi].addr_len;
    while (at < total) {
        if (total - at < 3)
            return FP_EINVAL;
        size_t vlen = (size_t)p[at + 1] << 8 | p[at + 2];
        if (vlen > total - at - 3)
            return FP_EINVAL;
        if (p[at] == PP2_TYPE_CRC32C) {
            if (vlen != 4)
                return FP_EINVAL;
            uint32_t want = (uint32_t)p[at + 3] << 24 | (uint32_t)p[at + 4] << 16 |
                            (uint32_t)p[at + 5] << 8 | p[at + 6];
            if (crc32c(p, total, at + 3, at + 7) != want)
                return FP_EINVAL;
        }
        at += 3 + vlen;
    }
    fp_proxy_v2 r;
    memset(&r, 0, sizeof r);
    r.local = local;
    if (!local) {
        const unsigned char *a = p + FP_PROXY_V2_FIXED;
        if (p[13] == 0x11) {
            struct sockaddr_in *s = (struct sockaddr_in *)&r.src, *d = (struct sockaddr_in *)&r.dst;
            if (all_zero(a, 4))
                return FP_EINVAL; /* 0.0.0.0 is no client */
            s->sin_family = d->sin_family = AF_INET;
            memcpy(&s->sin_addr, a, 4);
            memcpy(&d->sin_addr, a + 4, 4);
            memcpy(&s->sin_port, a + 8, 2);
            memcpy(&d->sin_port, a + 10, 2);
            r.src_len = r.dst_len = sizeof(struct sockaddr_in);
        } else {
            struct sockaddr_in6 *s = (struct sockaddr_in6 *)&r.src,
                                *d = (struct sockaddr_in6 *)&r.dst;
            if (all_zero(a, 16))
                return FP_EINVAL; /* :: is no client */
            s->sin6_family = d->sin6_family = AF_INET6;
            memcpy(&s->sin6_addr, a, 16);
            memcpy(&d->sin6_addr, a + 16, 16);
            memcpy(&s->sin6_port, a + 32, 2);
            memcpy(&d->sin6_port, a + 34, 2);
            r.src_len = r.dst_len = sizeof(struct sockaddr_in6);
        }
    }
    if (out)
        *out = r;
    return (int)total;
}
