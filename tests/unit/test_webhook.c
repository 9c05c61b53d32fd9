/* test_webhook.c — webhook signatures, event bodies and URLs (webhook.h).
 * The signature vector was computed independently with
 *   printf '%s' '1764300000.00112233445566778899aabbccddeeff.{"id":"evt_1"}' |
 *     openssl dgst -sha256 -hmac whsec_test_secret_0123456789 -hex */
#include "check.h"
#include "fapiao/webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

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

static void test_target_policy(void)
{
    static const struct {
        const char *url;
        const char *cls; /* NULL: may be reached */
    } cases[] = {
        {"http://127.0.0.1/", "loopback"},
        {"http://127.255.1.2:99/", "loopback"},
        {"http://2130706433/", "loopback"},
        {"http://0x7f.1/", "loopback"},
        {"http://127.0.0.1./", "loopback"},
        {"http://10.0.0.1/", "private"},
        {"http://172.16.0.1/", "private"},
        {"http://172.31.255.255/", "private"},
        {"http://172.32.0.1/", NULL},
        {"http://192.168.0.1/", "private"},
        {"http://169.254.1.1/", "link-local"},
        {"http://169.254.169.254/", "metadata"},
        {"http://100.100.100.200/", "metadata"},
        {"http://100.64.0.1/", "shared (carrier-grade NAT)"},
        {"http://0.0.0.0/", "unspecified"},
        {"http://224.0.0.1/", "multicast"},
        {"http://255.255.255.255/", "reserved"},
        {"http://8.8.8.8/", NULL},
        {"https://8.8.8.8@10.0.0.1/", "private"},
        {"http://[::1]/", "loopback"},
        {"http://[::]/", "unspecified"},
        {"http://[fc00::1]/", "private"},
        {"http://[fdff::1]/", "private"},
        {"http://[fd00:ec2::254]/", "metadata"},
        {"http://[fe80::1%25eth0]/", "link-local"},
        {"http://[febf::1]/", "link-local"},
        {"http://[ff02::1]/", "multicast"},
        {"http://[::ffff:127.0.0.1]/", "loopback"},
        {"http://[::ffff:8.8.8.8]/", NULL},
        {"http://[64:ff9b::a00:1]/", "private"},
        {"http://[2002:c0a8:0101::1]/", "private"},
        {"http://[2001:db8::1]/", NULL},
        {"http://[2400:3200::1]/", NULL},
        {"http://localhost/", NULL}, /* a name: judged when connecting */
        {"http://example.com/", NULL},
        {"http://10.0.0.1.example.com/", NULL},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("url_class[%zu] %s", i, cases[i].url);
        const char *got = fp_webhook_url_class(cases[i].url);
        CHECK_EQ_STR(got ? got : "(allowed)", cases[i].cls ? cases[i].cls : "(allowed)");
    }
    /* the connect-time check sees socket addresses */
    struct sockaddr_in a4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.168.7.7", &a4.sin_addr);
    CHECK_EQ_STR(fp_webhook_addr_class((struct sockaddr *)&a4), "private");
    inet_pton(AF_INET, "1.1.1.1", &a4.sin_addr);
    CHECK(fp_webhook_addr_class((struct sockaddr *)&a4) == NULL);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:169.254.169.254", &a6.sin6_addr);
    CHECK_EQ_STR(fp_webhook_addr_class((struct sockaddr *)&a6), "metadata");
    inet_pton(AF_INET6, "2606:4700::1111", &a6.sin6_addr);
    CHECK(fp_webhook_addr_class((struct sockaddr *)&a6) == NULL);
    CHECK_EQ_STR(fp_webhook_class_zh("loopback"), "回环");
}

int main(void)
{
    test_sign();
    test_secret();
    test_body();
    test_urls();
    test_target_policy();
    return check_summary();
}
