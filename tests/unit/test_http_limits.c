/* test_http_limits.c — the request-target and access-log helpers of
 * src/server/http_limits.c (docs/security.md "HTTP parsing"). */
#include "check.h"
#include "../../src/server/http_limits.h"

static void test_nul_in_target(void)
{
    static const struct {
        const char *uri;
        int nul;
    } cases[] = {
        {"/v1/invoices/1%00/xml", 1},
        {"/v1/invoices?serial=a%00", 1},
        {"/healthz%00", 1},
        {"/v1/%0", 0},
        {"/v1/%10%20%a0", 0},
        {"/v1/invoices/100", 0},
        {"%", 0},
        {"", 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("uri_seen[%zu] %s", i, cases[i].uri);
        void *got = fp_http_uri_seen(NULL, cases[i].uri, NULL);
        CHECK_EQ_INT(got == fp_http_nul_mark(), cases[i].nul);
        CHECK(cases[i].nul || got == NULL);
    }
}

static void test_log_path(void)
{
    static const struct {
        const char *in;
        size_t max;
        const char *want; /* the JSON written */
    } cases[] = {
        {"/v1/invoices", 255, "{\"path\":\"/v1/invoices\"}"},
        {"/v1/\xff\xfe/x", 255, "{\"path\":\"/v1/%FF%FE/x\"}"},
        {"/\xc3\x28", 255, "{\"path\":\"/%C3(\"}"},
        {"/\xe5\x8f", 255, "{\"path\":\"/%E5%8F\"}"},
        {"/\xe5\x8f\x91\xe7\xa5\xa8", 255, "{\"path\":\"/\xe5\x8f\x91\xe7\xa5\xa8\"}"},
        {"/\xe5\x8f\x91\xe7\xa5\xa8", 5, "{\"path\":\"/\xe5\x8f\x91\"}"}, /* cut whole */
        {"/\x01\"\\", 255, "{\"path\":\"/\\u0001\\\"\\\\\"}"},
        {"/\xed\xa0\x80", 255, "{\"path\":\"/%ED%A0%80\"}"}, /* a surrogate */
        {"/\xc0\xaf", 255, "{\"path\":\"/%C0%AF\"}"},        /* over-long */
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("log_path[%zu]", i);
        fp_buf b;
        fp_jw w;
        fp_buf_init(&b, 0);
        fp_jw_init(&w, &b);
        fp_jw_obj_open(&w);
        fp_http_log_path(&w, "path", cases[i].in, cases[i].max);
        fp_jw_obj_close(&w);
        CHECK_EQ_STR(b.p, cases[i].want);
        CHECK(fp_utf8_valid(b.p, b.len));
        fp_buf_free(&b);
    }
    /* a long path of 3-byte characters stays valid when cut */
    char big[3 * 400 + 2] = "/";
    for (int i = 0; i < 400; i++)
        memcpy(big + 1 + 3 * i, "\xe7\xa5\xa8", 3);
    big[sizeof big - 1] = 0;
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 0);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_http_log_path(&w, "path", big, 255);
    fp_jw_obj_close(&w);
    CHECK(fp_utf8_valid(b.p, b.len));
    CHECK(b.len <= 255 + 12);
    fp_buf_free(&b);
}

int main(void)
{
    test_nul_in_target();
    test_log_path();
    return check_summary();
}
