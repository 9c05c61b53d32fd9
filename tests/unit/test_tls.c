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
#include <sys/socket.h>
#include <sys/stat.h>
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

/* Files are written 0600: key files must pass the permission rule. */
static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, data, n) != (ssize_t)n) {
        perror(path);
        exit(2);
    }
    close(fd);
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
    char *all = NULL;
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        gnutls_datum_t d;
        OK(gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_PEM, &d));
        all = realloc(all, len + d.size);
        memcpy(all + len, d.data, d.size);
        len += d.size;
        gnutls_free(d.data);
    }
    write_file(path, all, len);
    free(all);
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
        {"encrypted key without passphrase file",
         leaf("good3.pem", leaf_key, -60, 90 * 86400L, 7, 0),
         text_file("enc.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                              "-----END ENCRYPTED PRIVATE KEY-----\n"),
         FP_EINVAL, "give its passphrase with --key-passphrase-file"},
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

/* ---- key formats, passphrases and real handshakes (issue 13, item 3) ---- */

/* PKCS#8 as OpenSSL 3 writes it (`openssl genpkey`, `openssl pkcs8
 * -topk8`): for EC keys the curve is only in the AlgorithmIdentifier, not
 * repeated inside the ECPrivateKey as GnuTLS's own PKCS#8 does.  That
 * difference is what broke handshakes (issue 13, item 3), so these keys
 * are made by the openssl tool. */
enum key_fmt { FMT_NATIVE, FMT_PKCS8, FMT_PKCS8_ENC, FMT_PKCS8_GNUTLS_ENC };
static const char passphrase[] = "correct horse battery staple";

static void openssl_pkcs8(const char *native, const char *out, int encrypt)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "openssl pkcs8 -topk8 %s -in '%s' -out '%s' 2>&1",
             encrypt ? "-v2 aes-256-cbc -passout 'pass:correct horse battery staple'" : "-nocrypt",
             native, out);
    if (system(cmd) != 0) {
        fprintf(stderr, "failed: %s\n", cmd);
        exit(2);
    }
    chmod(out, 0600);
}

static void save_key_as(const char *path, gnutls_x509_privkey_t k, enum key_fmt f)
{
    gnutls_datum_t d;
    if (f == FMT_PKCS8_GNUTLS_ENC)
        OK(gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_PEM, passphrase,
                                             GNUTLS_PKCS_PBES2_AES_256, &d));
    else /* PKCS#1 for RSA, SEC1 for EC */
        OK(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &d));
    if (f == FMT_NATIVE || f == FMT_PKCS8_GNUTLS_ENC) {
        write_file(path, d.data, d.size);
    } else {
        char native[160];
        snprintf(native, sizeof native, "%s.native", path);
        write_file(native, d.data, d.size);
        openssl_pkcs8(native, path, f == FMT_PKCS8_ENC);
        unlink(native);
    }
    gnutls_free(d.data);
}

/* A real handshake over a socketpair: a GnuTLS client that verifies the
 * chain against the test CA, against a server session that takes its
 * certificate from fn (the daemon's callback), then one record each way.
 * 0 and the serial of the certificate the client got, or -1. */
static int real_handshake(gnutls_certificate_retrieve_function3 *fn, const char *version,
                          char *serial, size_t cap)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    gnutls_certificate_credentials_t scred, ccred;
    gnutls_session_t ss, cs;
    char prio[512];
    OK(gnutls_certificate_allocate_credentials(&scred));
    OK(gnutls_certificate_allocate_credentials(&ccred));
    gnutls_certificate_set_retrieve_function3(scred, fn);
    OK(gnutls_certificate_set_x509_trust(ccred, &ca_crt, 1));
    OK(gnutls_init(&ss, GNUTLS_SERVER | GNUTLS_NONBLOCK));
    OK(gnutls_init(&cs, GNUTLS_CLIENT | GNUTLS_NONBLOCK));
    snprintf(prio, sizeof prio, "%s:-VERS-ALL:+VERS-%s", FP_TLS_PRIORITIES, version);
    OK(gnutls_priority_set_direct(ss, prio, NULL));
    snprintf(prio, sizeof prio, "NORMAL:-VERS-ALL:+VERS-%s", version);
    OK(gnutls_priority_set_direct(cs, prio, NULL));
    OK(gnutls_credentials_set(ss, GNUTLS_CRD_CERTIFICATE, scred));
    OK(gnutls_credentials_set(cs, GNUTLS_CRD_CERTIFICATE, ccred));
    gnutls_session_set_verify_cert(cs, NULL, 0); /* the chain, against the CA */
    gnutls_transport_set_int(ss, sv[0]);
    gnutls_transport_set_int(cs, sv[1]);
    int sr = GNUTLS_E_AGAIN, cr = GNUTLS_E_AGAIN, rc = -1;
    for (int i = 0; i < 64 && (sr != 0 || cr != 0); i++) {
        if (cr != 0 && (cr = gnutls_handshake(cs)) < 0 && gnutls_error_is_fatal(cr))
            break;
        if (sr != 0 && (sr = gnutls_handshake(ss)) < 0 && gnutls_error_is_fatal(sr))
            break;
    }
    if (sr != 0 || cr != 0) {
        fprintf(stderr, "handshake %s: client %s, server %s\n", version, gnutls_strerror(cr),
                gnutls_strerror(sr));
        goto out;
    }
    char buf[8];
    if (gnutls_record_send(cs, "ping", 4) != 4)
        goto out;
    ssize_t n = GNUTLS_E_AGAIN;
    for (int i = 0; i < 16 && n == GNUTLS_E_AGAIN; i++)
        n = gnutls_record_recv(ss, buf, sizeof buf);
    if (n != 4 || memcmp(buf, "ping", 4) != 0)
        goto out;
    unsigned np = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(cs, &np);
    gnutls_x509_crt_t c;
    unsigned char ser[20];
    size_t sn = sizeof ser;
    if (!peers || np == 0 || gnutls_x509_crt_init(&c) < 0)
        goto out;
    if (gnutls_x509_crt_import(c, &peers[0], GNUTLS_X509_FMT_DER) == 0 &&
        gnutls_x509_crt_get_serial(c, ser, &sn) == 0 && 2 * sn < cap) {
        for (size_t i = 0; i < sn; i++)
            snprintf(serial + 2 * i, 3, "%02x", ser[i]);
        rc = 0;
    }
    gnutls_x509_crt_deinit(c);
out:
    gnutls_deinit(cs);
    gnutls_deinit(ss);
    gnutls_certificate_free_credentials(scred);
    gnutls_certificate_free_credentials(ccred);
    close(sv[0]);
    close(sv[1]);
    return rc;
}

static gnutls_x509_privkey_t rsa_key, p384_key;

static const struct {
    const char *name;
    gnutls_x509_privkey_t *key;
    enum key_fmt fmt;
    const char *header;
} formats[] = {
    {"RSA-2048 PKCS#1", &rsa_key, FMT_NATIVE, "-----BEGIN RSA PRIVATE KEY-----"},
    {"RSA-2048 PKCS#8", &rsa_key, FMT_PKCS8, "-----BEGIN PRIVATE KEY-----"},
    {"P-256 SEC1", &leaf_key, FMT_NATIVE, "-----BEGIN EC PRIVATE KEY-----"},
    {"P-256 PKCS#8", &leaf_key, FMT_PKCS8, "-----BEGIN PRIVATE KEY-----"},
    {"P-384 SEC1", &p384_key, FMT_NATIVE, "-----BEGIN EC PRIVATE KEY-----"},
    {"P-384 PKCS#8", &p384_key, FMT_PKCS8, "-----BEGIN PRIVATE KEY-----"},
    {"P-256 PKCS#8 encrypted", &leaf_key, FMT_PKCS8_ENC, "-----BEGIN ENCRYPTED PRIVATE KEY-----"},
    {"RSA-2048 PKCS#8 encrypted (GnuTLS)", &rsa_key, FMT_PKCS8_GNUTLS_ENC,
     "-----BEGIN ENCRYPTED PRIVATE KEY-----"},
};

/* Writes the certificate and key of formats[i] to crt/key; serial 0x5iX. */
static void write_format(size_t i, unsigned serial, const char *crt, const char *key)
{
    gnutls_x509_crt_t c =
        make_crt("localhost", *formats[i].key, -60, 90 * 86400L, 0, serial, ca_crt, ca_key);
    save_crts(crt, &c, 1);
    gnutls_x509_crt_deinit(c);
    save_key_as(key, *formats[i].key, formats[i].fmt);
    char *text = check_read_file(key, NULL);
    CHECK(text && strncmp(text, formats[i].header, strlen(formats[i].header)) == 0);
    free(text);
}

static gnutls_certificate_retrieve_function3 *attach(fp_tls *t)
{
    struct MHD_OptionItem items[4];
    fp_err err = {0};
    if (!CHECK_EQ_INT(fp_tls_mhd_options(t, items, 4, &err), 0))
        return NULL;
    return (gnutls_certificate_retrieve_function3 *)items[0].ptr_value;
}

static void check_handshakes(gnutls_certificate_retrieve_function3 *fn, const char *want)
{
    for (int v = 0; v < 2; v++) {
        char serial[48] = "";
        CHECK_EQ_INT(real_handshake(fn, v ? "TLS1.2" : "TLS1.3", serial, sizeof serial), 0);
        CHECK_EQ_STR(serial, want);
    }
}

static void test_key_formats_at_start(void)
{
    const char *pass = text_file("pass.txt", "correct horse battery staple\n");
    for (size_t i = 0; i < NCASES(formats); i++) {
        check_ctx("start with %s", formats[i].name);
        char crt[128], key[128], name[32], want[16];
        snprintf(name, sizeof name, "fmt%zu.pem", i);
        snprintf(crt, sizeof crt, "%s", path_of(name));
        snprintf(name, sizeof name, "fmt%zu.key", i);
        snprintf(key, sizeof key, "%s", path_of(name));
        write_format(i, 0x500 + (unsigned)i, crt, key);
        fp_tls_opts o = {.cert_path = crt, .key_path = key};
        if (formats[i].fmt >= FMT_PKCS8_ENC)
            o.key_passphrase_path = pass;
        fp_tls *t = NULL;
        fp_err err = {0};
        char out[2048];
        if (!CHECK_EQ_INT(new_capturing(&o, &t, &err, out, sizeof out), 0)) {
            fprintf(stderr, "  %s\n", err.msg);
            continue;
        }
        CHECK_CONTAINS(out, "test handshakes TLS 1.3 and 1.2 passed");
        gnutls_certificate_retrieve_function3 *fn = attach(t);
        snprintf(want, sizeof want, "%04x", 0x500 + (unsigned)i);
        if (fn)
            check_handshakes(fn, want);
        fp_tls_detach(t);
        fp_tls_free(t);
    }
}

static void test_key_formats_on_reload(void)
{
    check_ctx("reload through every format");
    const char *crt = path_of("rl.pem"), *key = path_of("rl.key");
    const char *pass = path_of("rl-pass.txt");
    write_file(pass, passphrase, strlen(passphrase)); /* no newline: also fine */
    write_format(0, 0x600, crt, key);
    fp_tls_opts o = {.cert_path = crt, .key_path = key, .key_passphrase_path = pass};
    fp_tls *t = NULL;
    fp_err err = {0};
    char out[2048], want[16];
    if (!CHECK_EQ_INT(new_capturing(&o, &t, &err, out, sizeof out), 0))
        return;
    gnutls_certificate_retrieve_function3 *fn = attach(t);
    if (!fn)
        return;
    check_handshakes(fn, "0600");
    for (size_t i = 0; i < NCASES(formats); i++) {
        check_ctx("reload to %s", formats[i].name);
        unsigned serial = 0x610 + (unsigned)i;
        write_format(i, serial, crt, key);
        if (!CHECK_EQ_INT(fp_tls_reload(t, &err), 0)) {
            fprintf(stderr, "  %s\n", err.msg);
            continue;
        }
        CHECK_EQ_INT(fp_tls_generation(t), 2 + i);
        snprintf(want, sizeof want, "%04x", serial);
        check_handshakes(fn, want);
    }
    uint64_t gen = fp_tls_generation(t);
    snprintf(want, sizeof want, "%04x", 0x610 + (unsigned)NCASES(formats) - 1);

    /* a wrong passphrase, a loose or empty passphrase file, a mismatched
     * key: refused, the previous credentials go on serving */
    check_ctx("reload with a wrong passphrase");
    write_format(6, 0x700, crt, key);
    write_file(pass, "wrong horse\n", 12);
    CHECK_EQ_INT(fp_tls_reload(t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "wrong passphrase");
    CHECK_CONTAINS(err.msg, "私钥无法用口令解密");
    check_ctx("reload with a passphrase file of mode 0644");
    write_file(pass, passphrase, strlen(passphrase));
    chmod(pass, 0644);
    CHECK_EQ_INT(fp_tls_reload(t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "key passphrase file has mode 0644");
    CHECK_CONTAINS(err.msg, pass);
    CHECK_CONTAINS(err.msg, "chmod");
    check_ctx("reload with an empty passphrase file");
    write_file(pass, "\n", 1);
    CHECK_EQ_INT(fp_tls_reload(t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "one non-empty line");
    check_ctx("reload with a key of mode 0644");
    write_file(pass, passphrase, strlen(passphrase));
    chmod(key, 0644);
    CHECK_EQ_INT(fp_tls_reload(t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "private key has mode 0644");
    CHECK_CONTAINS(err.msg, key);
    chmod(key, 0600);
    check_ctx("reload with a mismatched encrypted key");
    save_key_as(key, other_key, FMT_PKCS8_ENC);
    CHECK_EQ_INT(fp_tls_reload(t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "does not belong to the certificate");
    check_ctx("after the refused reloads");
    CHECK_EQ_INT(fp_tls_generation(t), gen);
    check_handshakes(fn, want);
    /* and the right files are taken again */
    save_key_as(key, leaf_key, FMT_PKCS8_ENC);
    CHECK_EQ_INT(fp_tls_reload(t, &err), 0);
    check_handshakes(fn, "0700");
    fp_tls_detach(t);
    fp_tls_free(t);
}

static void test_passphrase_refusals(void)
{
    const char *crt = path_of("pp.pem"), *key = path_of("pp.key");
    write_format(6, 0x800, crt, key);
    const struct {
        const char *name, *pass_text;
        int mode, rc;
        const char *msg;
    } cases[] = {
        {"wrong passphrase", "not it\n", 0600, FP_EINVAL, "wrong passphrase"},
        {"passphrase file 0640", "correct horse battery staple\n", 0640, FP_EINVAL, "chmod 600"},
        {"passphrase file 0604", "correct horse battery staple\n", 0604, FP_EINVAL,
         "has mode 0604"},
        {"two lines", "correct horse\nbattery staple\n", 0600, FP_EINVAL, "one non-empty line"},
        {"missing passphrase file", NULL, 0, FP_EIO, "cannot read the key passphrase file"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("passphrase refusal[%zu] %s", i, cases[i].name);
        char name[32];
        snprintf(name, sizeof name, "pass%zu.txt", i);
        const char *pass = path_of(name);
        if (cases[i].pass_text) {
            write_file(pass, cases[i].pass_text, strlen(cases[i].pass_text));
            chmod(pass, (mode_t)cases[i].mode);
        }
        /* root's files may be group-readable: 0640 is refused only for
         * the service user's own files */
        if (cases[i].mode == 0640 && geteuid() == 0)
            continue;
        fp_tls_opts o = {.cert_path = crt, .key_path = key, .key_passphrase_path = pass};
        fp_tls *t = (fp_tls *)1;
        fp_err err = {0};
        CHECK_EQ_INT(fp_tls_new(&o, &t, &err), cases[i].rc);
        CHECK(t == NULL);
        CHECK_CONTAINS(err.msg, cases[i].msg);
        CHECK_CONTAINS(err.msg, " / ");
    }
}

/* A certificate whose key usage does not allow signatures: the key is the
 * certificate's, but no ECDHE handshake can complete with it.  The test
 * handshake finds it at start and on reload. */
static void test_selftest_refuses_unusable_certificate(void)
{
    check_ctx("test handshake refuses a certificate without digitalSignature");
    gnutls_x509_crt_t c =
        make_crt("localhost", leaf_key, -60, 90 * 86400L, 0, 0x901, ca_crt, ca_key);
    OK(gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_KEY_ENCIPHERMENT));
    OK(gnutls_x509_crt_sign2(c, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0));
    const char *bad = path_of("nosign.pem"), *key = key_file("nosign.key", leaf_key);
    save_crts(bad, &c, 1);
    gnutls_x509_crt_deinit(c);
    fp_tls_opts o = {.cert_path = bad, .key_path = key};
    fp_tls *t = (fp_tls *)1;
    fp_err err = {0};
    CHECK_EQ_INT(fp_tls_new(&o, &t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "test handshake");
    CHECK_CONTAINS(err.msg, "测试握手");
    /* on reload: the good pair stays */
    const char *live = path_of("nosign-live.pem");
    c = make_crt("localhost", leaf_key, -60, 90 * 86400L, 0, 0x902, ca_crt, ca_key);
    save_crts(live, &c, 1);
    gnutls_x509_crt_deinit(c);
    o.cert_path = live;
    char out[2048];
    if (!CHECK_EQ_INT(new_capturing(&o, &t, &err, out, sizeof out), 0))
        return;
    char *text = check_read_file(bad, NULL);
    write_file(live, text, strlen(text));
    free(text);
    CHECK_EQ_INT(fp_tls_reload(t, &err), FP_EINVAL);
    CHECK_CONTAINS(err.msg, "test handshake");
    CHECK_EQ_INT(fp_tls_generation(t), 1);
    gnutls_certificate_retrieve_function3 *fn = attach(t);
    if (fn)
        check_handshakes(fn, "0902");
    fp_tls_detach(t);
    fp_tls_free(t);
}

static void test_key_permissions(void)
{
    check_ctx("key file permissions");
    const char *crt = leaf("perm.pem", leaf_key, -60, 90 * 86400L, 0xa01, 0);
    const char *key = key_file("perm.key", leaf_key);
    fp_tls_opts o = {.cert_path = crt, .key_path = key};
    const struct {
        int mode, ok_as_root, ok_as_user;
    } modes[] = {{0600, 1, 1}, {0400, 1, 1}, {0640, 1, 0}, {0644, 0, 0},
                 {0660, 0, 0}, {0604, 0, 0}, {0666, 0, 0}};
    for (size_t i = 0; i < NCASES(modes); i++) {
        check_ctx("key mode %04o", modes[i].mode);
        chmod(key, (mode_t)modes[i].mode);
        fp_tls *t = NULL;
        fp_err err = {0};
        char out[2048];
        int want_ok = geteuid() == 0 ? modes[i].ok_as_root : modes[i].ok_as_user;
        int rc = new_capturing(&o, &t, &err, out, sizeof out);
        CHECK_EQ_INT(rc, want_ok ? 0 : FP_EINVAL);
        if (!want_ok) {
            char m[32];
            snprintf(m, sizeof m, "has mode %04o", modes[i].mode);
            CHECK_CONTAINS(err.msg, m);
            CHECK_CONTAINS(err.msg, "私钥权限过宽");
            CHECK_CONTAINS(err.msg, key);
        }
        fp_tls_free(t);
    }
    chmod(key, 0600);
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
    rsa_key = gen_key(2048);
    OK(gnutls_x509_privkey_init(&p384_key));
    OK(gnutls_x509_privkey_generate(p384_key, GNUTLS_PK_ECDSA,
                                    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), 0));
    ca_crt = make_crt("fapiao unit CA", ca_key, -86400L, 365 * 86400L, 1, 1, NULL, NULL);

    test_refusals();
    test_load_and_warn();
    test_reload();
    test_attach();
    test_reload_race();
    test_key_formats_at_start();
    test_key_formats_on_reload();
    test_passphrase_refusals();
    test_selftest_refuses_unusable_certificate();
    test_key_permissions();

    gnutls_x509_crt_deinit(ca_crt);
    gnutls_x509_privkey_t keys[] = {ca_key,   leaf_key, other_key, inter_key,
                                    weak_key, rsa_key,  p384_key};
    for (size_t i = 0; i < NCASES(keys); i++)
        gnutls_x509_privkey_deinit(keys[i]);
    for (int i = 0; i < npaths; i++)
        unlink(paths[i]);
    rmdir(dir);
    return check_summary();
}
