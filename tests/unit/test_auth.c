/* test_auth.c — client ids, access tokens, the role model (src/security/)
 * and the credential store's secrets (src/store/clients.c) on a real
 * SQLite file: the same hashing work for unknown and known client ids,
 * the cap of live secrets, the secret a token names.
 *
 * The attacks of issue 13 these pin down: a client id with '|' injected
 * token fields (`probeN|0|99999999999` read as client probeN, seller 0,
 * expiring in 5138); the token exchange answered faster for unknown ids;
 * 300 rotations left 301 live secrets. */
#include "check.h"

#include "fapiao/auth.h"
#include "fapiao/crypto.h"
#include "fapiao/rbac.h"
#include "fapiao/store.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/fapiao-test-auth-XXXXXX";
static const unsigned char key[FP_TOKEN_KEY_LEN] = "test-key-0123456789abcdef-test!";

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void test_client_ids(void)
{
    static const struct {
        const char *id;
        int valid;
    } cases[] = {
        {"demo", 1},
        {"cli-0123abcd", 1},
        {"A.b_c-9", 1},
        {"x", 1},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1},  /* 64 */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0}, /* 65 */
        {"", 0},
        {"probeN|0|99999999999", 0},
        {"a b", 0},
        {"a/b", 0},
        {"a:b", 0},
        {"\xe5\x8f\x91", 0},
        {"a\nb", 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("client id %zu \"%s\"", i, cases[i].id);
        CHECK_EQ_INT(fp_client_id_valid(cases[i].id), cases[i].valid);
    }
    check_ctx("sanitize");
    char out[FP_CLIENT_ID_MAX + 1];
    fp_client_id_sanitize("probeN|0|9\n\xe5", out);
    CHECK_EQ_STR(out, "probeN?0?9??");
    char longid[200];
    memset(longid, 'z', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    fp_client_id_sanitize(longid, out);
    CHECK_EQ_INT((int)strlen(out), FP_CLIENT_ID_MAX);
    check_ctx("%s", "");
}

static void test_tokens(void)
{
    fp_token_claims in = {.seller_id = 3, .expires = 2000000000, .secret_id = 41}, out;
    snprintf(in.client_id, sizeof in.client_id, "cli-abc.DEF_9");
    char tok[FP_TOKEN_MAX];
    check_ctx("round trip");
    CHECK_EQ_INT(fp_token_issue(key, &in, tok), 0);
    CHECK(strncmp(tok, "fpt2.", 5) == 0);
    CHECK_EQ_INT(fp_token_verify(key, tok, 1000, &out), FP_TOKEN_OK);
    CHECK_EQ_STR(out.client_id, in.client_id);
    CHECK(out.seller_id == 3 && out.expires == 2000000000 && out.secret_id == 41);
    CHECK_EQ_INT(fp_token_verify(key, tok, 2000000001, &out), FP_TOKEN_EXPIRED);

    /* the issue-13 id: refused at issue (before: a token of client probeN,
     * seller 0, expiring 99999999999) */
    check_ctx("injection");
    fp_token_claims bad = in;
    snprintf(bad.client_id, sizeof bad.client_id, "probeN|0|99999999999");
    CHECK_EQ_INT(fp_token_issue(key, &bad, tok), FP_EINVAL);
    static const struct {
        int64_t seller, expires, secret;
    } zero[] = {{0, 2000000000, 1}, {-1, 2000000000, 1}, {1, 0, 1}, {1, 2000000000, 0}};
    for (size_t i = 0; i < NCASES(zero); i++) {
        check_ctx("refused claims %zu", i);
        fp_token_claims z = in;
        z.seller_id = zero[i].seller;
        z.expires = zero[i].expires;
        z.secret_id = zero[i].secret;
        CHECK_EQ_INT(fp_token_issue(key, &z, tok), FP_EINVAL);
    }

    /* a version-1 token, even correctly signed, is no longer accepted: its
     * text payload is the injectable one */
    check_ctx("version 1");
    const char *v1 = "probeN|0|99999999999|1|1765000000|nonce";
    unsigned char mac[32];
    char p64[128], m64[48], t1[FP_TOKEN_MAX];
    fp_hmac_sha256(key, FP_TOKEN_KEY_LEN, v1, strlen(v1), mac);
    fp_b64url_encode((const unsigned char *)v1, strlen(v1), p64);
    fp_b64url_encode(mac, 32, m64);
    snprintf(t1, sizeof t1, "fpt1.%s.%s", p64, m64);
    CHECK_EQ_INT(fp_token_verify(key, t1, 1000, &out), FP_TOKEN_INVALID);
    snprintf(t1, sizeof t1, "fpt2.%s.%s", p64, m64);
    CHECK_EQ_INT(fp_token_verify(key, t1, 1000, &out), FP_TOKEN_INVALID);

    /* a signed payload with a bad layout is still refused: a length byte
     * that does not fit, an id with a '|', seller 0 */
    static const struct {
        const char *what;
        unsigned char len;
        const char *id;
        int64_t seller;
    } layouts[] = {
        {"length past the end", 60, "abc", 1},
        {"length zero", 0, "abc", 1},
        {"pipe in id", 8, "a|0|9999", 1},
        {"seller zero", 3, "abc", 0},
    };
    for (size_t i = 0; i < NCASES(layouts); i++) {
        check_ctx("layout: %s", layouts[i].what);
        unsigned char pl[128], m[32], buf[160];
        size_t n = 0, idn = strlen(layouts[i].id);
        pl[n++] = layouts[i].len;
        memcpy(pl + n, layouts[i].id, idn);
        n += idn;
        int64_t f[3] = {layouts[i].seller, 2000000000, 7};
        for (int k = 0; k < 3; k++)
            for (int b = 7; b >= 0; b--)
                pl[n++] = (unsigned char)((uint64_t)f[k] >> (8 * b));
        memset(pl + n, 'n', 9);
        n += 9;
        memcpy(buf, "fpt2", 4);
        memcpy(buf + 4, pl, n);
        fp_hmac_sha256(key, FP_TOKEN_KEY_LEN, buf, 4 + n, m);
        fp_b64url_encode(pl, n, p64);
        fp_b64url_encode(m, 32, m64);
        snprintf(t1, sizeof t1, "fpt2.%s.%s", p64, m64);
        CHECK_EQ_INT(fp_token_verify(key, t1, 1000, &out), FP_TOKEN_INVALID);
    }
    check_ctx("%s", "");
}

static void test_roles(void)
{
    static const struct {
        const char *s;
        int rc;
        unsigned roles;
    } cases[] = {
        {"issuer", 0, FP_ROLE_ISSUER},
        {"issuer,reviewer,auditor,admin", 0, FP_ROLE_SELLER},
        {"operator", 0, FP_ROLE_OPERATOR},
        {"operator-auditor", 0, FP_ROLE_OPERATOR_AUDITOR},
        {"operator,operator-auditor", 0, FP_ROLE_INSTANCE},
        {"operator,issuer", -1, 0}, /* never both kinds */
        {"auditor,operator-auditor", -1, 0},
        {"operator-", -1, 0},
        {"issuer,issuer", -1, 0},
        {"", -1, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("roles \"%s\"", cases[i].s);
        unsigned r = 0;
        int rc = fp_roles_parse(cases[i].s, &r);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (rc == 0) {
            CHECK_EQ_INT((int)r, (int)cases[i].roles);
            char back[96];
            fp_roles_format(r, back, sizeof back);
            CHECK_EQ_STR(back, cases[i].s);
        }
    }
    /* the matrix of docs/security.md for the instance-wide roles */
    check_ctx("operator permissions");
    CHECK(fp_roles_instance_wide(FP_ROLE_OPERATOR) &&
          fp_roles_instance_wide(FP_ROLE_OPERATOR_AUDITOR));
    CHECK(!fp_roles_instance_wide(FP_ROLE_SELLER));
    CHECK(fp_roles_allow(FP_ROLE_OPERATOR_AUDITOR, FP_PERM_AUDIT_READ));
    CHECK(!fp_roles_allow(FP_ROLE_OPERATOR, FP_PERM_AUDIT_READ));
    CHECK(fp_roles_allow(FP_ROLE_OPERATOR, FP_PERM_JOBS_REDRIVE));
    CHECK(!fp_roles_allow(FP_ROLE_OPERATOR_AUDITOR, FP_PERM_JOBS_REDRIVE));
    for (fp_perm p = FP_PERM_INVOICES_ISSUE; p <= FP_PERM_RED_FORMS_READ; p++)
        CHECK_MSG(!fp_roles_allow(FP_ROLE_INSTANCE, p), "operators hold %s", fp_perm_name(p));
    check_ctx("%s", "");
}

static fp_store *open_store(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.db", tmpdir, name);
    fp_store_opts o = {.path = path};
    fp_store *s = NULL;
    fp_err err = {0};
    if (!CHECK_MSG(fp_store_open(&o, &s, &err) == 0, "fp_store_open: %s", err.msg))
        exit(1);
    fp_seller sel = {.name = "Seller", .tax_id = "91310000MA1FL00001"};
    int64_t id;
    if (!CHECK_MSG(fp_store_add_seller(s, &sel, &id, &err) == 0, "add_seller: %s", err.msg))
        exit(1);
    return s;
}

static int count_live(const char *client_id, int64_t secret_id, int64_t expires_at, void *arg)
{
    (void)secret_id;
    (void)expires_at;
    return strcmp(client_id, "rot") == 0 ? ++*(int *)arg : 0;
}

static void live_cb(const char *client_id, int64_t secret_id, int64_t expires_at, void *arg)
{
    (void)count_live(client_id, secret_id, expires_at, arg);
}

static void test_store_secrets(void)
{
    fp_store *s = open_store("secrets");
    fp_err err = {0};
    char sec1[FP_SECRET_LEN + 1], other[FP_SECRET_LEN + 1];
    fp_secret_generate(sec1);
    fp_secret_generate(other);
    fp_client_info c = {.seller_id = 1, .roles = FP_ROLE_ISSUER};
    snprintf(c.client_id, sizeof c.client_id, "known");
    CHECK_EQ_INT(fp_store_client_create(s, &c, sec1, NULL, &err), 0);

    check_ctx("creating bad ids");
    fp_client_info bad = c;
    snprintf(bad.client_id, sizeof bad.client_id, "probeN|0|99999999999");
    CHECK_EQ_INT(fp_store_client_create(s, &bad, sec1, NULL, &err), FP_EINVAL);
    bad = c;
    snprintf(bad.client_id, sizeof bad.client_id, "zero-seller");
    bad.seller_id = 0;
    CHECK_EQ_INT(fp_store_client_create(s, &bad, sec1, NULL, &err), FP_EINVAL);

    /* The same work whatever the id: count the secret hashes of each path.
     * (Structure, not timing: a timing assertion would be flaky.) */
    int64_t now = (int64_t)time(NULL);
    static const struct {
        const char *what, *id;
        int secret_ok, rc;
    } cases[] = {
        {"known, right secret", "known", 1, 0},
        {"known, wrong secret", "known", 0, FP_ECRYPTO},
        {"unknown id", "nobody", 0, FP_ENOTFOUND},
        {"malformed id", "a|b", 0, FP_ENOTFOUND},
    };
    uint64_t work[NCASES(cases)];
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("check_secret: %s", cases[i].what);
        fp_client_info out;
        memset(&out, 0, sizeof out);
        uint64_t before = fp_secret_hash_count();
        int rc = fp_store_client_check_secret(s, cases[i].id, cases[i].secret_ok ? sec1 : other,
                                              now, &out);
        work[i] = fp_secret_hash_count() - before;
        CHECK_EQ_INT(rc, cases[i].rc);
        CHECK_MSG(work[i] == work[0], "%llu hashes, %llu for a known id",
                  (unsigned long long)work[i], (unsigned long long)work[0]);
        CHECK(work[i] >= FP_SECRETS_LIVE_MAX);
        if (rc == 0)
            CHECK(out.matched_secret_id > 0);
    }

    /* rotation keeps at most two live secrets; the token's secret id names
     * the one that matched */
    check_ctx("rotation cap");
    fp_client_info r = c;
    snprintf(r.client_id, sizeof r.client_id, "rot");
    char secs[5][FP_SECRET_LEN + 1];
    fp_secret_generate(secs[0]);
    CHECK_EQ_INT(fp_store_client_create(s, &r, secs[0], NULL, &err), 0);
    for (int i = 1; i < 5; i++) {
        fp_secret_generate(secs[i]);
        CHECK_EQ_INT(fp_store_client_rotate(s, "rot", secs[i], now, 3600, NULL, &err), 0);
        int live = 0;
        CHECK_EQ_INT(fp_store_live_secrets(s, now, live_cb, &live), 0);
        CHECK_EQ_INT(live, 2);
    }
    fp_client_info out;
    int64_t ids[5] = {0};
    for (int i = 0; i < 5; i++) {
        check_ctx("rotation cap: secret %d of 5", i + 1);
        int rc = fp_store_client_check_secret(s, "rot", secs[i], now, &out);
        CHECK_EQ_INT(rc, i >= 3 ? 0 : FP_ECRYPTO); /* only the last two */
        ids[i] = rc == 0 ? out.matched_secret_id : 0;
    }
    CHECK(ids[3] > 0 && ids[4] > ids[3]);

    /* overlap 0: the previous secret ends at once */
    check_ctx("overlap 0");
    char last[FP_SECRET_LEN + 1];
    fp_secret_generate(last);
    CHECK_EQ_INT(fp_store_client_rotate(s, "rot", last, now, 0, NULL, &err), 0);
    CHECK_EQ_INT(fp_store_client_check_secret(s, "rot", secs[4], now, &out), FP_ECRYPTO);
    CHECK_EQ_INT(fp_store_client_check_secret(s, "rot", last, now, &out), 0);
    int live = 0;
    CHECK_EQ_INT(fp_store_live_secrets(s, now, live_cb, &live), 0);
    CHECK_EQ_INT(live, 1);
    check_ctx("%s", "");
    fp_store_close(s);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_client_ids();
    test_tokens();
    test_roles();
    test_store_secrets();
    CHECK_MSG(nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", tmpdir);
    return check_summary();
}
