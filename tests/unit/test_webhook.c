/* test_webhook.c — webhook signatures, event bodies and URLs (webhook.h).
 * The signature vector was computed independently with
 *   printf '%s' '1764300000.00112233445566778899aabbccddeeff.{"id":"evt_1"}' |
 *     openssl dgst -sha256 -hmac whsec_test_secret_0123456789 -hex */
#include "check.h"
#include "fapiao/webhook.h"

#include <string.h>

static void test_sign(void)
{
    check_ctx("sign");
    char sig[68];
    const char body[] = "{\"id\":\"evt_1\"}";
    fp_webhook_sign("whsec_test_secret_0123456789", "1764300000",
                    "00112233445566778899aabbccddeeff", body, strlen(body), sig);
    CHECK_EQ_STR(sig, "v1=f3cb050cce693fbf2437639c9447bbb3fb10ec9ba2a7586e4e475221ae6576e4");
    /* one byte of the body, the timestamp or the nonce changes it */
    char other[68];
    fp_webhook_sign("whsec_test_secret_0123456789", "1764300001",
                    "00112233445566778899aabbccddeeff", body, strlen(body), other);
    CHECK(strcmp(sig, other) != 0);
    fp_webhook_sign("whsec_test_secret_0123456789", "1764300000",
                    "00112233445566778899aabbccddeefe", body, strlen(body), other);
    CHECK(strcmp(sig, other) != 0);
    fp_webhook_sign("whsec_test_secret_0123456789", "1764300000",
                    "00112233445566778899aabbccddeeff", "{\"id\":\"evt_2\"}", strlen(body), other);
    CHECK(strcmp(sig, other) != 0);
}

static void test_secret(void)
{
    check_ctx("secret");
    char a[64], b[64];
    CHECK_EQ_INT(fp_webhook_secret_generate(a), 0);
    CHECK_EQ_INT(fp_webhook_secret_generate(b), 0);
    CHECK(strncmp(a, "whsec_", 6) == 0);
    CHECK_EQ_INT(strlen(a), 6 + 43);
    CHECK(strcmp(a, b) != 0);
}

static void test_body(void)
{
    check_ctx("body");
    fp_job j = {.kind = FP_JOB_NOTIFY, .first_at = 1764300000123LL};
    strcpy(j.invoice_number, "26440000000000000001");
    strcpy(j.event, "invoice.rendered");
    strcpy(j.event_id, "evt_26440000000000000001_rendered");
    fp_buf b1, b2;
    fp_buf_init(&b1, 0);
    fp_buf_init(&b2, 0);
    fp_webhook_body(&j, "serial-\"1\"", NULL, &b1);
    CHECK_EQ_STR(b1.p,
                 "{\"id\":\"evt_26440000000000000001_rendered\",\"type\":\"invoice.rendered\","
                 "\"created_at\":\"2025-11-28T11:20:00+08:00\",\"data\":{\"number\":"
                 "\"26440000000000000001\",\"serial\":\"serial-\\\"1\\\"\",\"status\":"
                 "\"rendered\",\"links\":{\"self\":\"/v1/invoices/26440000000000000001\","
                 "\"pdf\":\"/v1/invoices/26440000000000000001/pdf\"}}}");
    /* the same job gives the same bytes (the retry carries the same event) */
    j.attempts = 7;
    fp_webhook_body(&j, "serial-\"1\"", NULL, &b2);
    CHECK_EQ_STR(b1.p, b2.p);
    fp_buf_free(&b2);
    fp_buf_init(&b2, 0);
    strcpy(j.event, "invoice.failed");
    fp_webhook_body(&j, "s", "render timed out", &b2);
    CHECK(strstr(b2.p, "\"status\":\"failed\",\"failure\":\"render timed out\"") != NULL);
    fp_buf_free(&b1);
    fp_buf_free(&b2);
}

static void test_urls(void)
{
    static const struct {
        const char *url;
        int ok;
    } cases[] = {
        {"https://erp.example.com/fapiao/hook", 1},
        {"http://127.0.0.1:8080/hook", 1},
        {"http://[::1]:8080/", 1},
        {"ftp://example.com/", 0},
        {"https://", 0},
        {"https:///path", 0},
        {"http://:80/", 0},
        {"http://exa mple.com/", 0},
        {"http://example.com/\n", 0},
        {"example.com/hook", 0},
        {"", 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("url_ok[%zu] %s", i, cases[i].url);
        CHECK_EQ_INT(fp_webhook_url_ok(cases[i].url), cases[i].ok);
    }
}

int main(void)
{
    test_sign();
    test_secret();
    test_body();
    test_urls();
    return check_summary();
}
