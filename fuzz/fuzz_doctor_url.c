/* fuzz_doctor_url.c — the doctor's URL parser, the proxy-variable parser
 * and NO_PROXY matching (src/doctor/doctor_parse.c) on arbitrary bytes.
 *
 * The input is the URL and the proxy variable; when it holds a newline, the
 * part before is a NO_PROXY list and the part after a host name.
 * Invariants, each an abort() when broken:
 *  - an accepted URL has scheme http or https, a host of 1–255 bytes with no
 *    space or control byte, a port in 1..65535; written back out (IPv6 in
 *    [ ]) it parses again to the same scheme, host and port;
 *  - a refused URL carries a terminated, non-empty message;
 *  - an accepted proxy has a non-empty host and a numeric port 1..65535;
 *  - NO_PROXY "*" covers every host, and a plain name covers itself. */
#include "../src/doctor/doctor_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_url(const char *s)
{
    static fp_doctor_report r, again;
    fp_err err;
    memset(&err, 0x7f, sizeof err);
    memset(&r, 0, sizeof r);
    if (fp_doctor_parse_url(s, &r, &err) < 0) {
        if (!memchr(err.msg, 0, sizeof err.msg) || !err.msg[0])
            abort();
        return;
    }
    size_t hl = strnlen(r.host, sizeof r.host);
    if (hl == 0 || hl >= sizeof r.host || r.port < 1 || r.port > 65535)
        abort();
    if (strcmp(r.scheme, "https") != 0 && strcmp(r.scheme, "http") != 0)
        abort();
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)r.host[i] <= ' ' || r.host[i] == 0x7f)
            abort();
    char url[1024];
    int v6 = strchr(r.host, ':') != NULL;
    snprintf(url, sizeof url, "%s://%s%s%s:%d/", r.scheme, v6 ? "[" : "", r.host, v6 ? "]" : "",
             r.port);
    memset(&again, 0, sizeof again);
    if (fp_doctor_parse_url(url, &again, &err) < 0 || strcmp(again.host, r.host) != 0 ||
        again.port != r.port || strcmp(again.scheme, r.scheme) != 0) {
        fprintf(stderr, "round trip of %s: %s\n", url, err.msg);
        abort();
    }
}

static void check_proxy(const char *s)
{
    char host[256], port[16];
    memset(host, 0x7f, sizeof host);
    memset(port, 0x7f, sizeof port);
    if (fp_doctor_parse_proxy(s, host, sizeof host, port, sizeof port) < 0)
        return;
    if (!memchr(host, 0, sizeof host) || !host[0] || !memchr(port, 0, sizeof port))
        abort();
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || end == port || p < 1 || p > 65535)
        abort();
}

static void check_no_proxy(const char *np, const char *host)
{
    (void)fp_doctor_no_proxy_covers(np, host);
    if (!*host)
        return;
    if (!fp_doctor_no_proxy_covers("*", host))
        abort();
    if (strlen(host) < 1000 && !strpbrk(host, ", :") && host[0] != '.' &&
        !fp_doctor_no_proxy_covers(host, host))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    check_url(s);
    check_proxy(s);
    char *nl = memchr(s, '\n', size);
    if (nl) {
        *nl = 0;
        check_no_proxy(s, nl + 1);
    }
    free(s);
    return 0;
}
