/* test_proxy.c — proxy.h: the PROXY protocol v2 parser on hand-built
 * headers: TCP over IPv4 and IPv6, LOCAL, TLVs (well-formed, truncated, a
 * CRC32C that matches or not, against a table-driven CRC of the test's
 * own), every prefix of a valid header asking for more bytes, and each
 * field out of its allowed values refused. */
#include "check.h"

#include "fapiao/err.h"
#include "fapiao/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

static const unsigned char SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* signature, ver_cmd, fam, then body; the length field from body_len */
static size_t build(unsigned char *out, int ver_cmd, int fam, const unsigned char *body,
                    size_t body_len)
{
    memcpy(out, SIG, 12);
    out[12] = (unsigned char)ver_cmd;
    out[13] = (unsigned char)fam;
    out[14] = (unsigned char)(body_len >> 8);
    out[15] = (unsigned char)body_len;
    if (body_len)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

static const unsigned char v4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0x9C, 0x40, 0x01, 0xBB};

static uint32_t crc_table[256];

static uint32_t crc32c_table(const unsigned char *p, size_t n)
{
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            crc_table[i] = c;
        }
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

static void test_valid(void)
{
    unsigned char h[FP_PROXY_V2_MAX];
    fp_proxy_v2 r;
    size_t n = build(h, 0x21, 0x11, v4, sizeof v4);
    check_ctx("tcp4");
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, &r, NULL), 28);
    const struct sockaddr_in *s = (const struct sockaddr_in *)&r.src;
    char ip[64];
    inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
    CHECK_EQ_STR(ip, "192.0.2.1");
    CHECK_EQ_INT(ntohs(s->sin_port), 40000);
    CHECK_EQ_INT(r.local, 0);
    CHECK_EQ_INT((int)r.src_len, (int)sizeof(struct sockaddr_in));
    /* bytes after the header are not part of it */
    h[n] = 0x16;
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n + 1, &r, NULL), 28);

    check_ctx("tcp6");
    unsigned char a6[36] = {0};
    a6[0] = 0x20, a6[1] = 0x01, a6[2] = 0x0d, a6[3] = 0xb8, a6[15] = 7;
    a6[31] = 1, a6[32] = 0x12, a6[33] = 0x34;
    n = build(h, 0x21, 0x21, a6, sizeof a6);
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, &r, NULL), 52);
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&r.src)->sin6_addr, ip, sizeof ip);
    CHECK_EQ_STR(ip, "2001:db8::7");
    CHECK_EQ_INT(ntohs(((const struct sockaddr_in6 *)&r.src)->sin6_port), 0x1234);

    check_ctx("local unspec");
    n = build(h, 0x20, 0x00, NULL, 0);
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, &r, NULL), 16);
    CHECK_EQ_INT(r.local, 1);
    check_ctx("local with an address (ignored)");
    n = build(h, 0x20, 0x11, v4, sizeof v4);
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, &r, NULL), 28);
    CHECK_EQ_INT(r.local, 1);

    check_ctx("tlvs: noop, unknown type, crc32c");
    unsigned char body[64];
    memcpy(body, v4, 12);
    size_t b = 12;
    memcpy(body + b, "\x04\x00\x02xy", 5), b += 5;       /* NOOP */
    memcpy(body + b, "\xE0\x00\x00", 3), b += 3;         /* unknown, empty */
    memcpy(body + b, "\x03\x00\x04\0\0\0\0", 7), b += 7; /* CRC32C, zero for now */
    n = build(h, 0x21, 0x11, body, b);
    uint32_t crc = crc32c_table(h, n);
    h[n - 4] = (unsigned char)(crc >> 24), h[n - 3] = (unsigned char)(crc >> 16);
    h[n - 2] = (unsigned char)(crc >> 8), h[n - 1] = (unsigned char)crc;
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, &r, NULL), (int)n);
    h[20] ^= 1; /* the source address changed: the CRC no longer matches */
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, &r, NULL), FP_EINVAL);
    h[20] ^= 1;
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, &r, NULL), (int)n);

    check_ctx("crc32c of \"123456789\" (the standard check value)");
    CHECK(crc32c_table((const unsigned char *)"123456789", 9) == 0xE3069283u);
}

static void test_prefixes(void)
{
    unsigned char h[64];
    size_t n = build(h, 0x21, 0x11, v4, sizeof v4);
    for (size_t k = 1; k < n; k++) {
        check_ctx("prefix of %zu bytes", k);
        size_t need = 0;
        CHECK_EQ_INT(fp_proxy_v2_parse(h, k, NULL, &need), 0);
        CHECK_EQ_INT((int)need, k < 16 ? 16 : (int)n);
    }
}

static void test_refused(void)
{
    unsigned char h[FP_PROXY_V2_MAX + 64], body[FP_PROXY_V2_MAX];
    memset(body, 0, sizeof body);
    memcpy(body, v4, 12);
    static const unsigned char zero4[12] = {0, 0, 0, 0, 1, 2, 3, 4, 0, 1, 0, 1};
    static const unsigned char zero6[36] = {[16] = 1, [33] = 1};
    const struct {
        const char *what;
        int ver_cmd, fam;
        const unsigned char *body;
        size_t len;
    } cases[] = {
        {"version 1", 0x11, 0x11, v4, 12},
        {"version 3", 0x31, 0x11, v4, 12},
        {"command 2", 0x22, 0x11, v4, 12},
        {"UDP over IPv4", 0x21, 0x12, v4, 12},
        {"UNIX stream", 0x21, 0x31, body, 216},
        {"UNSPEC with PROXY", 0x21, 0x00, v4, 12},
        {"undefined family", 0x21, 0x13, v4, 12},
        {"undefined family for LOCAL", 0x20, 0x41, v4, 12},
        {"shorter than the addresses", 0x21, 0x11, v4, 11},
        {"IPv6 length with IPv4 family too short", 0x21, 0x21, body, 12},
        {"source 0.0.0.0", 0x21, 0x11, zero4, 12},
        {"source ::", 0x21, 0x21, zero6, 36},
        {"TLV header cut", 0x21, 0x11,
         (const unsigned char *)"\xc0\0\x02\x01\x02\x03\x04"
                                "\x05\x06\x07\x08\x09\x0a\x0b\x0c",
         14},
        {"longer than the maximum", 0x21, 0x11, body, FP_PROXY_V2_MAX - 15},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("refused[%zu] %s", i, cases[i].what);
        size_t n = build(h, cases[i].ver_cmd, cases[i].fam, cases[i].body, cases[i].len);
        CHECK_EQ_INT(fp_proxy_v2_parse(h, n, NULL, NULL), FP_EINVAL);
    }
    check_ctx("TLV value longer than the header");
    static const unsigned char long_tlv[] = {0x04, 0x00, 0x09, 'a', 'b'};
    memcpy(body + 12, long_tlv, sizeof long_tlv);
    size_t n = build(h, 0x21, 0x11, body, 17);
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, NULL, NULL), FP_EINVAL);
    check_ctx("CRC32C TLV of 3 bytes");
    static const unsigned char crc3[] = {0x03, 0x00, 0x03, 'a', 'b', 'c'};
    memcpy(body + 12, crc3, sizeof crc3);
    n = build(h, 0x21, 0x11, body, 18);
    CHECK_EQ_INT(fp_proxy_v2_parse(h, n, NULL, NULL), FP_EINVAL);
    check_ctx("not a signature: refused from the first byte");
    CHECK_EQ_INT(fp_proxy_v2_parse((const unsigned char *)"\x16", 1, NULL, NULL), FP_EINVAL);
    CHECK_EQ_INT(fp_proxy_v2_parse((const unsigned char *)"PROXY TCP4 ", 11, NULL, NULL),
                 FP_EINVAL);
    check_ctx("version refused as soon as it is in");
    memcpy(h, SIG, 12);
    h[12] = 0x11;
    CHECK_EQ_INT(fp_proxy_v2_parse(h, 13, NULL, NULL), FP_EINVAL);
}

static void test_looks_like(void)
{
    const struct {
        const char *in;
        size_t n;
        int want;
    } cases[] = {
        {"PROX", 4, 1},
        {"PROXY TCP4 ", 11, 1},
        {"\r\n\r\n\0\r", 6, 1},
        {"\x16\x03\x01", 3, 0},
        {"GET / ", 6, 0},
        {"PROXX", 5, 0},
        {"", 0, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("looks_like[%zu]", i);
        CHECK_EQ_INT(fp_proxy_looks_like((const unsigned char *)cases[i].in, cases[i].n),
                     cases[i].want);
    }
}

int main(void)
{
    test_valid();
    test_prefixes();
    test_refused();
    test_looks_like();
    return check_summary();
}
