/* test_console.c — the console's sessions and delays (console.h) on a
 * clock the test moves: a session ends after its idle timeout and at its
 * absolute lifetime however busy, logout ends it, a forged or short cookie
 * finds nothing; the delays grow past the free failures, are per key,
 * reach their cap and never more, and a success clears them.  Login
 * itself (store, Argon2id, TOTP) is tested end to end in
 * tests/e2e/test_console.py. */
#include "check.h"
#include "fapiao/seal.h"

#include "../../src/console/internal.h"

#include <string.h>

static fp_console *make(void)
{
    unsigned char key[FP_SEAL_KEY_LEN] = {0};
    fp_console_opts o = {.seal_key = key, .idle_s = 60, .max_s = 300};
    fp_console *c = NULL;
    fp_err err = {0};
    CHECK_EQ_INT(fp_console_new(&o, &c, &err), 0);
    return c;
}

static void test_sessions(void)
{
    fp_console *c = make();
    fp_user u = {.name = "li.na", .roles = 4, .seller_id = 7};
    char sid[48], other[48];
    fp_console_who who, got;
    fp_session_create(c, &u, 1000, sid, &who);
    fp_session_create(c, &u, 1000, other, &who);
    CHECK(strlen(sid) == 43 && strcmp(sid, other) != 0);
    CHECK_EQ_INT(fp_console_session(c, sid, 1059, &got), 0);
    CHECK_EQ_STR(got.user, "li.na");
    CHECK(got.roles == 4 && got.seller_id == 7 && strlen(got.csrf) == 43);
    /* busy: every 50 s keeps it alive until its absolute end (1300) */
    int alive = 0;
    for (int64_t t = 1100; t < 1400; t += 50)
        alive += fp_console_session(c, sid, t, &got) == 0;
    CHECK_EQ_INT(alive, 4); /* 1100, 1150, 1200, 1250; 1300 on: past its lifetime */
    /* idle: the other one was last seen at 1000 */
    CHECK_EQ_INT(fp_console_session(c, other, 1061, &got), FP_ENOTFOUND);
    /* logout; forged and short values */
    char third[48];
    fp_session_create(c, &u, 2000, third, &who);
    CHECK_EQ_INT(fp_console_session(c, third, 2001, &got), 0);
    fp_console_logout(c, third);
    CHECK_EQ_INT(fp_console_session(c, third, 2002, &got), FP_ENOTFOUND);
    char forged[48];
    memcpy(forged, third, sizeof forged);
    forged[0] = forged[0] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(fp_console_session(c, forged, 2002, &got), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_console_session(c, "short", 2002, &got), FP_ENOTFOUND);
    CHECK_EQ_INT(fp_console_session(c, NULL, 2002, &got), FP_ENOTFOUND);
    fp_console_free(c);
    fp_console_free(NULL);
}

static void test_throttle(void)
{
    fp_console *c = make();
    int64_t now = 5000;
    int waits[8];
    for (int i = 0; i < 8; i++) {
        fp_throttle_fail(c, "ip:a", now, 3, 900);
        waits[i] = fp_throttle_wait(c, "ip:a", now);
    }
    static const int want[8] = {0, 0, 0, 1, 2, 4, 8, 16};
    for (int i = 0; i < 8; i++) {
        check_ctx("failure %d", i + 1);
        CHECK_EQ_INT(waits[i], want[i]);
    }
    check_ctx("%s", "");
    CHECK_EQ_INT(fp_throttle_wait(c, "ip:b", now), 0); /* per key */
    CHECK_EQ_INT(fp_throttle_wait(c, "ip:a", now + 16), 0);
    for (int i = 0; i < 40; i++)
        fp_throttle_fail(c, "user:x", now, 5, 60);
    CHECK_EQ_INT(fp_throttle_wait(c, "user:x", now), 60); /* capped, never a lockout */
    fp_throttle_ok(c, "user:x");
    CHECK_EQ_INT(fp_throttle_wait(c, "user:x", now), 0);
    /* a full table gives way without losing the key in use */
    char key[32];
    for (int i = 0; i < FP_THROTTLE_KEYS + 10; i++) {
        snprintf(key, sizeof key, "ip:%d", i);
        fp_throttle_fail(c, key, now + 1 + i, 0, 900);
    }
    CHECK_EQ_INT(fp_throttle_wait(c, key, now + 1 + FP_THROTTLE_KEYS + 9), 1);
    fp_console_free(c);
}

/* The delays and the hash cap answer before anything is read or hashed:
 * the console here has no store at all, so reaching it would crash. */
static void test_refused_before_hashing(void)
{
    fp_console *c = make();
    fp_login_req q = {
        .user = "wang", .password = "irrelevant", .totp = "000000", .ip = "192.0.2.7", .now = 9000};
    fp_login_res x;
    for (int i = 0; i < 4; i++)
        fp_throttle_fail(c, "ip:192.0.2.7", 9000, 3, 900);
    fp_console_login(c, &q, &x);
    CHECK(x.st == FP_LOGIN_THROTTLED && x.retry_after == 1);
    fp_throttle_ok(c, "ip:192.0.2.7");
    for (int i = 0; i < 7; i++) /* the user's own delay, from other addresses */
        fp_throttle_fail(c, "user:wang", 9000, 5, 60);
    fp_console_login(c, &q, &x);
    CHECK(x.st == FP_LOGIN_THROTTLED && x.retry_after == 2);
    fp_throttle_ok(c, "user:wang");
    atomic_store(&c->hashing, c->max_hashes); /* every slot taken */
    fp_console_login(c, &q, &x);
    CHECK(x.st == FP_LOGIN_BUSY && x.retry_after == 1);
    CHECK_EQ_INT(atomic_load(&c->hashing), c->max_hashes); /* the refused one gave its slot back */
    CHECK_EQ_INT(c->max_hashes, 1);
    fp_login_res_clear(&x);
    fp_console_free(c);
}

int main(void)
{
    test_sessions();
    test_throttle();
    test_refused_before_hashing();
    return check_summary();
}
