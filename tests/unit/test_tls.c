/* test_tls.c — the TLS credentials module (tls.h): what fp_tls_new refuses
 * and why, reload keeping the old credentials on bad files, the process-wide
 * attachment, and handshakes racing with reloads (the certificate callback
 * called from threads while the main thread reloads, for ASan/TSan to
 * judge).  Certificates are made here with GnuTLS's X.509 API in a
 * temporary directory. */
#include "check.h"
#include "fapiao/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[64];
static char paths[256][128];
static int npaths;

static const char *path_of(const char *name)
{
    snprintf(paths[npaths], sizeof paths[0], "%s/%s", dir, name);
    return paths[npaths++];
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_ < 0) {                                                                              \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, gnutls_strerror(r_));    \
            exit(2);                                                                               \
        }                                                                                          \
    } while (0)

static gnutls_x509_privkey_t gen_key(int rsa_bits)
{
    gnutls_x509_privkey_t k;
    OK(gnutls_x509_privkey_init(&k));
    if (rsa_bits)
        OK(gnutls_x509_privkey_generate(k, GNUTLS_PK_RSA, (unsigned)rsa_bits, 0));
    else
        OK(gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA,
                                        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0));
    return k;
}

/* A certificate for key, valid from now+nb to now+na seconds, signed by
 * issuer (NULL: self-signed). */
static gnutls_x509_crt_t make_crt(const char *cn, gnutls_x509_privkey_t key, long nb, long na,
                                  int ca, unsigned serial, gnutls_x509_crt_t issuer,
                                  gnutls_x509_privkey_t issuer_key)
{
    gnutls_x509_crt_t c;
    char dn[128];
    unsigned char ser[4] = {(unsigned char)(serial >> 24), (unsigned char)(serial >> 16),
                            (unsigned char)(serial >> 8), (unsigned char)serial};
    time_t now = time(NULL);
    snprintf(dn, sizeof dn, "CN=%s", cn);
    OK(gnutls_x509_crt_init(&c));
    OK(gnutls_x509_crt_set_version(c, 3));
    OK(gnutls_x509_crt_set_serial(c, ser, sizeof ser));
    OK(gnutls_x509_crt_set_activation_time(c, now + nb));
    OK(gnutls_x509_crt_set_expiration_time(c, now + na));
    OK(gnutls_x509_crt_set_dn(c, dn, NULL));
    OK(gnutls_x509_crt_set_key(c, key));
    OK(gnutls_x509_crt_set_basic_constraints(c, ca, -1));
    OK(gnutls_x509_crt_set_key_usage(c, ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
                                           : GNUTLS_KEY_DIGITAL_SIGNATURE));
    if (!ca)
        OK(gnutls_x509_crt_set_key_purpose_oid(c, GNUTLS_KP_TLS_WWW_SERVER, 0));
    OK(gnutls_x509_crt_sign2(c, issuer ? issuer : c, issuer_key ? issuer_key : key,
                             GNUTLS_DIG_SHA256, 0));
    return c;
}

static void save_crts(const char *path, gnutls_x509_crt_t *crts, int n)
{
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < n; i++) {
        gnutls_datum_t d;
        OK(gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_PEM, &d));
        fwrite(d.data, 1, d.size, f);
        gnutls_free(d.data);
    }
    fclose(f);
}

static void save_key(const char *path, gnutls_x509_privkey_t k)
{
    gnutls_datum_t d;
    OK(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &d));
    write_file(path, d.data, d.size);
    gnutls_free(d.data);
}

/* The test PKI. */
static gnutls_x509_privkey_t ca_key, leaf_key, other_key, weak_key, inter_key;
static gnutls_x509_crt_t ca_crt;

/* Writes a leaf signed by the CA; returns the cert path.  The key is
 * written to key_path when given. */
static const char *leaf(const char *name, gnutls_x509_privkey_t k, long nb, long na,
                        unsigned serial, int with_ca)
{
    gnutls_x509_crt_t c = make_crt("localhost", k, nb, na, 0, serial, ca_crt, ca_key);
    gnutls_x509_crt_t chain[2] = {c, ca_crt};
    const char *p = path_of(name);
    save_crts(p, chain, with_ca ? 2 : 1);
    gnutls_x509_crt_deinit(c);
    return p;
}

static const char *key_file(const char *name, gnutls_x509_privkey_t k)
{
    const char *p = path_of(name);
    save_key(p, k);
    return p;
}

static const char *text_file(const char *name, const char *text)
{
    const char *p = path_of(name);
    write_file(p, text, strlen(text));
    return p;
}

/* Runs fp_tls_new with stderr captured into out. */
static int new_capturing(const fp_tls_opts *o, fp_tls **t, fp_err *err, char *out, size_t cap)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    static const char *log;
    if (!log)
        log = path_of("stderr.txt");
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);
    int rc = fp_tls_new(o, t, err);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *text = check_read_file(log, NULL);
    snprintf(out, cap, "%s", text ? text : "");
    free(text);
    return rc;
}

static void test_refusals(void)
{
    const char *good_key = key_file("leaf.key", leaf_key);
    const char *weak = key_file("weak.key", weak_key);
    const char *other = key_file("other.key", other_key);
    /* an intermediate that has run out, signing a fresh leaf */
    gnutls_x509_crt_t inter =
        make_crt("old intermediate", inter_key, -400 * 86400L, -86400L, 1, 50, ca_crt, ca_key);
    gnutls_x509_crt_t lf =
        make_crt("localhost", leaf_key, -60, 30 * 86400L, 0, 51, inter, inter_key);
    gnutls_x509_crt_t chain[2] = {lf, inter}, reversed[2] = {ca_crt, lf};
    const char *expired_inter = path_of("expired-inter.pem");
    save_crts(expired_inter, chain, 2);
    const char *unsorted = path_of("unsorted.pem");
    gnutls_x509_crt_deinit(lf);
    lf = make_crt("localhost", leaf_key, -60, 30 * 86400L, 0, 52, ca_crt, ca_key);
    reversed[1] = lf;
    save_crts(unsorted, reversed, 2);
    gnutls_x509_crt_deinit(lf);
    gnutls_x509_crt_deinit(inter);

    const struct {
        const char *name, *cert, *key;
        int rc;
        const char *msg;
    } cases[] = {
        {"expired", leaf("expired.pem", leaf_key, -90 * 86400L, -60, 2, 0), good_key, FP_EINVAL,
         "has expired"},
        {"not yet valid", leaf("future.pem", leaf_key, 3600, 90 * 86400L, 3, 0), good_key,
         FP_EINVAL, "not yet valid"},
        {"key of another certificate", leaf("good.pem", leaf_key, -60, 90 * 86400L, 4, 1), other,
         FP_EINVAL, "does not belong to the certificate"},
        {"weak key", leaf("weak.pem", weak_key, -60, 90 * 86400L, 5, 0), weak, FP_EINVAL,
         "too weak"},
        {"expired intermediate", expired_inter, good_key, FP_EINVAL, "certificate 1"},
        {"chain out of order", unsorted, good_key, FP_EINVAL, "out of order"},
        {"garbled cert",
         text_file("garbled.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
         good_key, FP_EINVAL, "garbled"},
        {"no PEM", text_file("nopem.pem", "hello\n"), good_key, FP_EINVAL, "no PEM certificate"},
        {"empty cert", text_file("empty.pem", ""), good_key, FP_EINVAL, "is empty"},
        {"missing cert", path_of("missing.pem"), good_key, FP_EIO, "cannot read the certificate"},
        {"directory as cert", dir, good_key, FP_EIO, "not a regular file"},
        {"garbled key", leaf("good2.pem", leaf_key, -60, 90 * 86400L, 6, 0),
         text_file("garbled.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
         FP_EINVAL, "not a PEM private key"},
        {"encrypted key", leaf("good3.pem", leaf_key, -60, 90 * 86400L, 7, 0),
         text_file("enc.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                              "-----END ENCRYPTED PRIVATE KEY-----\n"),
         FP_EINVAL, "is encrypted"},
        {"missing key", leaf("good4.pem", leaf_key, -60, 90 * 86400L, 8, 0), path_of("nokey"),
         FP_EIO, "cannot read the private key"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("refuse[%zu] %s", i, cases[i].name);
        fp_tls_opts o = {.cert_path = cases[i].cert, .key_path = cases[i].key};
        fp_tls *t = (fp_tls *)1;
        fp_err err = {0};
        CHECK_EQ_INT(fp_tls_new(&o, &t, &err), cases[i].rc);
        CHECK(t == NULL);
        CHECK_CONTAINS(err.msg, cases[i].msg);
        CHECK_CONTAINS(err.msg, " / "); /* Chinese / English */
    }
    check_ctx("refuse: bad OCSP response and client CA");
    const char *crt = leaf("ocsp-leaf.pem", leaf_key, -60, 90 * 86400L, 9, 1);
    fp_tls_opts o = {.cert_path = crt, .key_path = good_key, .ocsp_path = crt};
    fp_tls *t = NULL;
    fp_err err = {0};
    CHECK_EQ_INT(fp_tls_new(&o, &t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "OCSP response");
    o.ocsp_path = NULL;
    o.client_ca_path = text_file("ca-garbled.pem", "not a CA\n");
    CHECK_EQ_INT(fp_tls_new(&o, &t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "client CA file");
    CHECK_EQ_INT(fp_tls_new(NULL, &t, &err), FP_EINVAL);
}

static void test_load_and_warn(void)
{
    check_ctx("load");
    const char *key = key_file("k1.key", leaf_key);
    const char *crt = leaf("l1.pem", leaf_key, -60, 90 * 86400L, 0x1234, 1);
    fp_tls_opts o = {.cert_path = crt, .key_path = key};
    fp_tls *t = NULL;
    fp_err err = {0};
    char out[2048];
    if (!CHECK_EQ_INT(new_capturing(&o, &t, &err, out, sizeof out), 0))
        return;
    CHECK_CONTAINS(out, "loaded");
    CHECK(strstr(out, "warning") == NULL);
    CHECK_EQ_INT(fp_tls_generation(t), 1);
    CHECK(fp_tls_not_after(t) > (int64_t)time(NULL) + 89 * 86400L);
    CHECK(fp_tls_not_after(t) <= (int64_t)time(NULL) + 90 * 86400L);
    char serial[48];
    fp_tls_serial_hex(t, serial, sizeof serial);
    CHECK_EQ_STR(serial, "1234"); /* DER integer: minimal bytes */
    CHECK_EQ_INT(fp_tls_stapling(t), 0);
    CHECK_EQ_INT(fp_tls_has_client_ca(t), 0);
    CHECK(fp_tls_ref(t) == t);
    fp_tls_free(t); /* one reference left */
    CHECK_EQ_INT(fp_tls_generation(t), 1);
    fp_tls_free(t);
    fp_tls_free(NULL);

    check_ctx("warn under 30 days");
    o.cert_path = leaf("soon.pem", leaf_key, -60, 10 * 86400L - 3600, 0x99, 0);
    if (CHECK_EQ_INT(new_capturing(&o, &t, &err, out, sizeof out), 0)) {
        CHECK_CONTAINS(out, "warning");
        CHECK_CONTAINS(out, "expires in 9 days");
        fp_tls_free(t);
    }
    check_ctx("client CA");
    o.client_ca_path = leaf("client-ca.pem", leaf_key, -60, 90 * 86400L, 0x98, 1);
    if (CHECK_EQ_INT(new_capturing(&o, &t, &err, out, sizeof out), 0)) {
        CHECK_EQ_INT(fp_tls_has_client_ca(t), 1);
        fp_tls_free(t);
    }
}

static void test_reload(void)
{
    check_ctx("reload");
    const char *key = path_of("live.key"), *crt = path_of("live.pem");
    save_key(key, leaf_key);
    gnutls_x509_crt_t c =
        make_crt("localhost", leaf_key, -60, 90 * 86400L, 0, 0x111, ca_crt, ca_key);
    save_crts(crt, &c, 1);
    gnutls_x509_crt_deinit(c);
    fp_tls_opts o = {.cert_path = crt, .key_path = key};
    fp_tls *t = NULL;
    fp_err err = {0};
    char out[2048], serial[48];
    if (!CHECK_EQ_INT(new_capturing(&o, &t, &err, out, sizeof out), 0))
        return;
    /* a good replacement: new serial, generation 2 */
    c = make_crt("localhost", other_key, -60, 90 * 86400L, 0, 0x222, ca_crt, ca_key);
    save_crts(crt, &c, 1);
    gnutls_x509_crt_deinit(c);
    save_key(key, other_key);
    CHECK_EQ_INT(fp_tls_reload(t, &err), 0);
    CHECK_EQ_INT(fp_tls_generation(t), 2);
    fp_tls_serial_hex(t, serial, sizeof serial);
    CHECK_EQ_STR(serial, "0222");
    /* bad replacements keep generation 2 and its serial */
    const char *bad[][2] = {
        {"cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
        {"key", "nonsense"},
        {"cert", ""}};
    for (size_t i = 0; i < NCASES(bad); i++) {
        check_ctx("reload bad[%zu] %s", i, bad[i][0]);
        write_file(bad[i][0][0] == 'c' ? crt : key, bad[i][1], strlen(bad[i][1]));
        CHECK(fp_tls_reload(t, &err) < 0);
        CHECK_EQ_INT(fp_tls_generation(t), 2);
        fp_tls_serial_hex(t, serial, sizeof serial);
        CHECK_EQ_STR(serial, "0222");
        /* put the good files back */
        c = make_crt("localhost", other_key, -60, 90 * 86400L, 0, 0x222, ca_crt, ca_key);
        save_crts(crt, &c, 1);
        gnutls_x509_crt_deinit(c);
        save_key(key, other_key);
    }
    /* key and certificate swapped out of step: the old pair stays */
    check_ctx("reload mismatched pair");
    save_key(key, leaf_key);
    CHECK_EQ_INT(fp_tls_reload(t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "does not belong");
    CHECK_EQ_INT(fp_tls_generation(t), 2);
    fp_tls_free(t);
}

static void test_attach(void)
{
    check_ctx("attach");
    const char *key = key_file("a.key", leaf_key);
    const char *crt = leaf("a.pem", leaf_key, -60, 90 * 86400L, 0x77, 0);
    fp_tls_opts o = {.cert_path = crt, .key_path = key};
    fp_tls *a = NULL, *b = NULL;
    fp_err err = {0};
    char out[2048];
    if (!CHECK_EQ_INT(new_capturing(&o, &a, &err, out, sizeof out), 0) ||
        !CHECK_EQ_INT(new_capturing(&o, &b, &err, out, sizeof out), 0))
        return;
    struct MHD_OptionItem items[4];
    CHECK_EQ_INT(fp_tls_mhd_options(a, items, 3, &err), FP_EINVAL);
    CHECK_EQ_INT(fp_tls_mhd_options(a, items, 4, &err), 0);
    CHECK_EQ_INT(items[0].option, MHD_OPTION_HTTPS_CERT_CALLBACK2);
    CHECK_EQ_INT(items[1].option, MHD_OPTION_END);
    CHECK_EQ_INT(fp_tls_mhd_options(a, items, 4, &err), 0); /* again: same one */
    CHECK_EQ_INT(fp_tls_mhd_options(b, items, 4, &err), FP_EBUSY);
    fp_tls_detach(b); /* not attached: no effect */
    CHECK_EQ_INT(fp_tls_mhd_options(b, items, 4, &err), FP_EBUSY);
    fp_tls_detach(a);
    CHECK_EQ_INT(fp_tls_mhd_options(b, items, 4, &err), 0);
    fp_tls_free(b); /* freeing detaches */
    CHECK_EQ_INT(fp_tls_mhd_options(a, items, 4, &err), 0);
    fp_tls_detach(a);
    fp_tls_free(a);
    char hex[65] = "x";
    CHECK_EQ_INT(fp_tls_peer_sha256(NULL, hex), FP_ENOTFOUND);
    CHECK_EQ_STR(hex, "");
}

/* ---- handshakes racing with reloads ---- */

static gnutls_certificate_retrieve_function3 *retrieve_fn;
static atomic_int stop, calls, failures;

static void *handshaker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        gnutls_session_t s;
        if (gnutls_init(&s, GNUTLS_SERVER) < 0)
            continue;
        gnutls_transport_set_int(s, -1);
        gnutls_pcert_st *pc = NULL;
        gnutls_ocsp_data_st *ocsp = NULL;
        gnutls_privkey_t key = NULL;
        unsigned npc = 0, nocsp = 0, flags = 0;
        int rc = retrieve_fn(s, NULL, &pc, &npc, &ocsp, &nocsp, &key, &flags);
        if (rc < 0 || npc != 1 || !key || flags != GNUTLS_CERT_RETR_DEINIT_ALL) {
            atomic_fetch_add(&failures, 1);
        } else {
            /* the copy is usable on its own: sign with it */
            gnutls_datum_t data = {(unsigned char *)"x", 1}, sig = {0};
            if (gnutls_privkey_sign_data(key, GNUTLS_DIG_SHA256, 0, &data, &sig) < 0)
                atomic_fetch_add(&failures, 1);
            gnutls_free(sig.data);
        }
        /* what GnuTLS does with the session (GNUTLS_CERT_RETR_DEINIT_ALL) */
        for (unsigned i = 0; i < npc; i++)
            gnutls_pcert_deinit(&pc[i]);
        gnutls_free(pc);
        gnutls_privkey_deinit(key);
        gnutls_free(ocsp);
        gnutls_deinit(s);
        atomic_fetch_add(&calls, 1);
    }
    return NULL;
}

static void test_reload_race(void)
{
    check_ctx("reload race");
    const char *key = path_of("race.key"), *crt = path_of("race.pem");
    save_key(key, leaf_key);
    gnutls_x509_crt_t c = make_crt("localhost", leaf_key, -60, 90 * 86400L, 0, 1, ca_crt, ca_key);
    save_crts(crt, &c, 1);
    gnutls_x509_crt_deinit(c);
    fp_tls_opts o = {.cert_path = crt, .key_path = key};
    fp_tls *t = NULL;
    fp_err err = {0};
    char out[2048];
    if (!CHECK_EQ_INT(new_capturing(&o, &t, &err, out, sizeof out), 0))
        return;
    struct MHD_OptionItem items[4];
    if (!CHECK_EQ_INT(fp_tls_mhd_options(t, items, 4, &err), 0))
        return;
    retrieve_fn = (gnutls_certificate_retrieve_function3 *)items[0].ptr_value;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, handshaker, NULL);
    fflush(stderr);
    int saved = dup(STDERR_FILENO), devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDERR_FILENO); /* one "reloaded" line per reload */
    close(devnull);
    /* at least 40 reloads and 200 handshakes interleaved (bounded: 20 s) */
    int reloads = 0, tries = 0;
    time_t until = time(NULL) + 20;
    while ((tries < 40 || atomic_load(&calls) < 200) && time(NULL) < until) {
        reloads += fp_tls_reload(t, &err) == 0;
        tries++;
    }
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(reloads, tries);
    CHECK(tries >= 40);
    CHECK_EQ_INT(fp_tls_generation(t), 1 + tries);
    CHECK(atomic_load(&calls) >= 200);
    CHECK_EQ_INT(atomic_load(&failures), 0);
    fp_tls_detach(t);
    fp_tls_free(t);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/fp_test_tls_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    ca_key = gen_key(0);
    leaf_key = gen_key(0);
    other_key = gen_key(0);
    inter_key = gen_key(0);
    weak_key = gen_key(1024);
    ca_crt = make_crt("fapiao unit CA", ca_key, -86400L, 365 * 86400L, 1, 1, NULL, NULL);

    test_refusals();
    test_load_and_warn();
    test_reload();
    test_attach();
    test_reload_race();

    gnutls_x509_crt_deinit(ca_crt);
    gnutls_x509_privkey_t keys[] = {ca_key, leaf_key, other_key, inter_key, weak_key};
    for (size_t i = 0; i < NCASES(keys); i++)
        gnutls_x509_privkey_deinit(keys[i]);
    for (int i = 0; i < npaths; i++)
        unlink(paths[i]);
    rmdir(dir);
    return check_summary();
}
