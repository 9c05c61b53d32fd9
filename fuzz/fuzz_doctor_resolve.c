/* fuzz_doctor_resolve.c — the doctor's option parsers on arbitrary bytes:
 * --resolve "host:port:addr" and --dns-server "IP[:port],…"
 * (src/doctor/doctor_parse.c).
 *
 * Invariants, each an abort() when broken:
 *  - an accepted --resolve has a host of no ':' , space or control byte, a
 *    port in 1..65535 and an address inet_pton takes; written back out it
 *    parses again to the same three;
 *  - a --dns-server list the doctor accepts is one c-ares accepts too (the
 *    doctor hands it to ares_set_servers_ports_csv unchanged);
 *  - every entry of an accepted --expect-address list is an address
 *    inet_pton takes. */
#include "../src/doctor/doctor_parse.h"

#include <arpa/inet.h>
#include <ares.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_resolve(const char *s)
{
    char host[256], addr[64], h2[256], a2[64];
    int port = -1, p2 = -1;
    memset(host, 0x7f, sizeof host);
    memset(addr, 0x7f, sizeof addr);
    if (fp_doctor_parse_resolve(s, host, sizeof host, &port, addr, sizeof addr) < 0)
        return;
    if (!memchr(host, 0, sizeof host) || !host[0] || strchr(host, ':') || port < 1 ||
        port > 65535 || !memchr(addr, 0, sizeof addr))
        abort();
    for (const char *p = host; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            abort();
    unsigned char a[16];
    if (inet_pton(AF_INET, addr, a) != 1 && inet_pton(AF_INET6, addr, a) != 1)
        abort();
    char again[512];
    int v6 = strchr(addr, ':') != NULL;
    snprintf(again, sizeof again, "%s:%d:%s%s%s", host, port, v6 ? "[" : "", addr, v6 ? "]" : "");
    if (fp_doctor_parse_resolve(again, h2, sizeof h2, &p2, a2, sizeof a2) < 0 ||
        strcmp(h2, host) != 0 || p2 != port || strcmp(a2, addr) != 0) {
        fprintf(stderr, "round trip of %s\n", again);
        abort();
    }
}

static void check_dns_servers(const char *s)
{
    static ares_channel ch;
    static int ready;
    if (!fp_doctor_dns_servers_ok(s))
        return;
    if (!ready) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS || ares_init(&ch) != ARES_SUCCESS)
            return;
        ready = 1;
    }
    int st = ares_set_servers_ports_csv(ch, s);
    if (st != ARES_SUCCESS) {
        fprintf(stderr, "--dns-server \"%s\": the doctor accepts it, c-ares says %s\n", s,
                ares_strerror(st));
        abort();
    }
}

static void check_addr_list(const char *s)
{
    if (!fp_doctor_addr_list_ok(s))
        return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    unsigned char a[16];
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
        if (inet_pton(AF_INET, t, a) != 1 && inet_pton(AF_INET6, t, a) != 1)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    check_resolve(s);
    check_dns_servers(s);
    check_addr_list(s);
    free(s);
    return 0;
}
