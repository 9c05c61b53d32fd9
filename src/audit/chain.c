/* chain.c — the audit log's formats: the canonical record encoding that
 * is hashed, the checkpoint message that is signed, and the key files.
 *
 * Why length prefixes: with plain concatenation ("ab","c") and ("a","bc")
 * would hash alike; every text field is a 4-byte big-endian length (or
 * 0xFFFFFFFF for SQL NULL, so NULL and "" differ) followed by its bytes,
 * and the integers are fixed 8-byte big-endian.  A leading tag names the
 * format version, so a later format can never collide with this one.
 *
 * Ed25519 comes from GnuTLS (nettle's own lives in libhogweed, which is
 * not linked).  GnuTLS cannot derive a public key from a seed, so the key
 * file holds both, like libsodium's 64-byte secret key. */
#include "fapiao/audit.h"
#include "fapiao/crypto.h"
#include "fapiao/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const fp_audit_field_names[FP_AUDIT__FIELDS] = {
    "actor",     "action",  "target",    "request_id",
    "client_ip", "outcome", "seller_id", "client_request_id",
};

static const char record_tag[8] = {'F', 'P', 'A', 'U', 'D', 'R', 'v', '1'};
/* a record with a seller or a client request id (migration 7) */
static const char record_tag2[8] = {'F', 'P', 'A', 'U', 'D', 'R', 'v', '2'};
static const char checkpoint_tag[8] = {'F', 'P', 'A', 'U', 'D', 'C', 'v', '1'};

static void put64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--, u >>= 8)
        p[i] = (unsigned char)u;
}

static void put32(unsigned char *p, uint32_t u)
{
    for (int i = 3; i >= 0; i--, u >>= 8)
        p[i] = (unsigned char)u;
}

void fp_audit_row_from_rec(fp_audit_row *row, int64_t id, const fp_audit_rec *rec)
{
    memset(row, 0, sizeof *row);
    row->id = id;
    row->ts = rec->ts;
    const char *seller = NULL;
    if (rec->seller_id > 0) {
        snprintf(row->seller_text, sizeof row->seller_text, "%lld", (long long)rec->seller_id);
        seller = row->seller_text;
    }
    const char *v[FP_AUDIT__FIELDS] = {rec->actor,      rec->action,           rec->target,
                                       rec->request_id, rec->client_ip,        rec->outcome,
                                       seller,          rec->client_request_id};
    for (int i = 0; i < FP_AUDIT__FIELDS; i++) {
        row->f[i].p = v[i];
        row->f[i].n = v[i] ? strlen(v[i]) : 0;
    }
}

void fp_audit_hash(const fp_audit_row *row, const unsigned char prev[FP_AUDIT_HASH_LEN],
                   unsigned char out[FP_AUDIT_HASH_LEN])
{
    struct sha256_ctx c;
    unsigned char head[8 + 8 + 8];
    int nf = FP_AUDIT__V1_FIELDS;
    for (int i = FP_AUDIT__V1_FIELDS; i < FP_AUDIT__FIELDS; i++)
        if (row->f[i].p)
            nf = FP_AUDIT__FIELDS;
    sha256_init(&c);
    memcpy(head, nf == FP_AUDIT__FIELDS ? record_tag2 : record_tag, 8);
    put64(head + 8, row->id);
    put64(head + 16, row->ts);
    sha256_update(&c, sizeof head, head);
    for (int i = 0; i < nf; i++) {
        unsigned char len[4];
        /* SQLite caps a value at 1e9 bytes, so a real length never reaches
         * the NULL marker */
        put32(len, row->f[i].p ? (uint32_t)row->f[i].n : 0xFFFFFFFFu);
        sha256_update(&c, 4, len);
        if (row->f[i].p && row->f[i].n)
            sha256_update(&c, row->f[i].n, (const uint8_t *)row->f[i].p);
    }
    sha256_update(&c, FP_AUDIT_HASH_LEN, prev);
    sha256_digest(&c, FP_AUDIT_HASH_LEN, out);
}

/* tag || id || upto_id || upto_hash || ts */
#define CP_MSG_LEN (8 + 8 + 8 + FP_AUDIT_HASH_LEN + 8)
static void cp_message(const fp_audit_cp *cp, unsigned char msg[CP_MSG_LEN])
{
    memcpy(msg, checkpoint_tag, 8);
    put64(msg + 8, cp->id);
    put64(msg + 16, cp->upto_id);
    memcpy(msg + 24, cp->upto_hash, FP_AUDIT_HASH_LEN);
    put64(msg + 24 + FP_AUDIT_HASH_LEN, cp->ts);
}

/* Ed25519 over msg with (sk, pk): 0 or FP_ECRYPTO. */
static int ed25519_sign(const unsigned char sk[FP_AUDIT_KEY_LEN],
                        const unsigned char pk[FP_AUDIT_KEY_LEN], const unsigned char *msg,
                        size_t len, unsigned char sig[FP_AUDIT_SIG_LEN])
{
    gnutls_privkey_t k = NULL;
    gnutls_datum_t x = {(unsigned char *)pk, FP_AUDIT_KEY_LEN};
    gnutls_datum_t d = {(unsigned char *)sk, FP_AUDIT_KEY_LEN};
    gnutls_datum_t m = {(unsigned char *)msg, (unsigned)len}, out = {NULL, 0};
    int ok = gnutls_privkey_init(&k) == 0 &&
             gnutls_privkey_import_ecc_raw(k, GNUTLS_ECC_CURVE_ED25519, &x, NULL, &d) == 0 &&
             gnutls_privkey_sign_data2(k, GNUTLS_SIGN_EDDSA_ED25519, 0, &m, &out) == 0 &&
             out.size == FP_AUDIT_SIG_LEN;
    if (ok)
        memcpy(sig, out.data, FP_AUDIT_SIG_LEN);
    else
        memset(sig, 0, FP_AUDIT_SIG_LEN);
    gnutls_free(out.data);
    gnutls_privkey_deinit(k);
    return ok ? 0 : FP_ECRYPTO;
}

static int ed25519_verify(const unsigned char pk[FP_AUDIT_KEY_LEN], const unsigned char *msg,
                          size_t len, const unsigned char sig[FP_AUDIT_SIG_LEN])
{
    gnutls_pubkey_t p = NULL;
    gnutls_datum_t x = {(unsigned char *)pk, FP_AUDIT_KEY_LEN};
    gnutls_datum_t m = {(unsigned char *)msg, (unsigned)len};
    gnutls_datum_t s = {(unsigned char *)sig, FP_AUDIT_SIG_LEN};
    int ok = gnutls_pubkey_init(&p) == 0 &&
             gnutls_pubkey_import_ecc_raw(p, GNUTLS_ECC_CURVE_ED25519, &x, NULL) == 0 &&
             gnutls_pubkey_verify_data2(p, GNUTLS_SIGN_EDDSA_ED25519, 0, &m, &s) >= 0;
    gnutls_pubkey_deinit(p);
    return ok;
}

int fp_audit_cp_sign(fp_audit_cp *cp, const unsigned char sk[FP_AUDIT_KEY_LEN],
                     const unsigned char pk[FP_AUDIT_KEY_LEN])
{
    unsigned char msg[CP_MSG_LEN];
    cp_message(cp, msg);
    cp->malformed = 0;
    return ed25519_sign(sk, pk, msg, sizeof msg, cp->sig);
}

int fp_audit_cp_valid(const fp_audit_cp *cp, const unsigned char pk[FP_AUDIT_KEY_LEN])
{
    if (cp->malformed)
        return 0;
    unsigned char msg[CP_MSG_LEN];
    cp_message(cp, msg);
    return ed25519_verify(pk, msg, sizeof msg, cp->sig);
}

/* ---- key files ---- */

int fp_audit_key_paths(const char *db_path, const char *key_path, char *key, char *pub, size_t cap)
{
    int n;
    if (key_path && *key_path) {
        n = snprintf(key, cap, "%s", key_path);
    } else {
        const char *slash = strrchr(db_path, '/');
        n = slash ? snprintf(key, cap, "%.*s/audit.key", (int)(slash - db_path), db_path)
                  : snprintf(key, cap, "audit.key");
    }
    if (n < 0 || (size_t)n >= cap)
        return FP_ERANGE;
    size_t len = strlen(key);
    if (len >= 4 && !strcmp(key + len - 4, ".key"))
        n = snprintf(pub, cap, "%.*s.pub", (int)(len - 4), key);
    else
        n = snprintf(pub, cap, "%s.pub", key);
    return n < 0 || (size_t)n >= cap ? FP_ERANGE : 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int fp_audit_unhex(const char *hex, unsigned char *out, size_t n)
{
    while (*hex == ' ' || *hex == '\t' || *hex == '\n' || *hex == '\r')
        hex++;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return FP_EINVAL;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    for (hex += 2 * n; *hex; hex++)
        if (*hex != ' ' && *hex != '\t' && *hex != '\n' && *hex != '\r')
            return FP_EINVAL;
    return 0;
}

/* Reads a small key file (at most 511 bytes) holding n bytes as hex; a
 * secret key (secret set) must pass the key-file rule (keyfile.h) first. */
static int read_hex_file(const char *path, unsigned char *out, size_t n, int secret, fp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fp_fail(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO, "open %s: %s", path,
                       strerror(errno));
    char buf[512];
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fp_fail(err, FP_EIO, "stat %s: %s", path, strerror(e));
    }
    if (secret) {
        int rc =
            fp_keyfile_check_stat(&st, geteuid(), path, "审计签名密钥", "audit signing key", err);
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    ssize_t got = read(fd, buf, sizeof buf - 1);
    int e = errno;
    close(fd);
    if (got < 0)
        return fp_fail(err, FP_EIO, "read %s: %s", path, strerror(e));
    buf[got] = 0;
    int rc = fp_audit_unhex(buf, out, n);
    explicit_bzero(buf, sizeof buf);
    if (rc < 0)
        return fp_fail(err, FP_EINVAL, "%s: not a key (want %zu hex digits)", path, 2 * n);
    return 0;
}

/* Creates path holding v as hex, atomically (a temporary file linked into
 * place, so a crash never leaves half a key, and of two processes creating
 * it at once one wins).  FP_ECONFLICT when path already exists. */
static int write_hex_file(const char *path, const unsigned char *v, size_t n, int mode, fp_err *err)
{
    char tmp[4200], text[2 * 2 * FP_AUDIT_KEY_LEN + 2];
    if (2 * n + 2 > sizeof text)
        return fp_fail(err, FP_ERANGE, "key too long");
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return fp_fail(err, FP_ERANGE, "path too long: %s", path);
    fp_hex(v, n, text);
    text[2 * n] = '\n';
    text[2 * n + 1] = 0;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return fp_fail(err, FP_EIO, "create %s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    int ok =
        fchmod(fd, (mode_t)mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    explicit_bzero(text, sizeof text);
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    int rc = 0;
    if (!ok)
        rc = fp_fail(err, FP_EIO, "write %s: %s", tmp, strerror(e));
    else if (link(tmp, path) != 0)
        rc = errno == EEXIST ? FP_ECONFLICT
                             : fp_fail(err, FP_EIO, "link %s: %s", path, strerror(errno));
    unlink(tmp);
    return rc;
}

int fp_audit_pub_load(const char *pub_path, unsigned char pk[FP_AUDIT_KEY_LEN], fp_err *err)
{
    return read_hex_file(pub_path, pk, FP_AUDIT_KEY_LEN, 0, err);
}

/* A fresh key pair: seed || public key. */
static int generate(unsigned char key[2 * FP_AUDIT_KEY_LEN], fp_err *err)
{
    gnutls_privkey_t k = NULL;
    gnutls_ecc_curve_t curve;
    gnutls_datum_t x = {NULL, 0}, d = {NULL, 0};
    int ok = gnutls_privkey_init(&k) == 0 &&
             gnutls_privkey_generate(k, GNUTLS_PK_EDDSA_ED25519,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_ED25519), 0) == 0 &&
             gnutls_privkey_export_ecc_raw2(k, &curve, &x, NULL, &d, 0) == 0 &&
             x.size == FP_AUDIT_KEY_LEN && d.size == FP_AUDIT_KEY_LEN;
    if (ok) {
        memcpy(key, d.data, FP_AUDIT_KEY_LEN);
        memcpy(key + FP_AUDIT_KEY_LEN, x.data, FP_AUDIT_KEY_LEN);
    }
    if (d.data)
        explicit_bzero(d.data, d.size);
    gnutls_free(x.data);
    gnutls_free(d.data);
    gnutls_privkey_deinit(k);
    return ok ? 0 : fp_fail(err, FP_ECRYPTO, "cannot generate an Ed25519 key");
}

/* Why a missing key is not simply made anew once the log holds a signed
 * checkpoint (or a public key exists): a fresh pair would sign whatever
 * the log then says, and a rewritten log would verify against the new
 * audit.pub.  The operator restores the key instead (docs/audit.md). */
static int key_missing(const char *key_path, const char *why_en, fp_err *err)
{
    return fp_fail(err, FP_ENOTFOUND,
                   "审计密钥缺失 / the audit key %s is missing but %s: restore it from your "
                   "backup (or point --audit-key at it); no new key is made (docs/audit.md)",
                   key_path, why_en);
}

int fp_audit_key_open(const char *key_path, const char *pub_path, int may_create,
                      unsigned char sk[FP_AUDIT_KEY_LEN], unsigned char pk[FP_AUDIT_KEY_LEN],
                      fp_err *err)
{
    unsigned char key[2 * FP_AUDIT_KEY_LEN];
    int rc = read_hex_file(key_path, key, sizeof key, 1, err);
    if (rc == FP_ENOTFOUND) {
        if (!may_create)
            return key_missing(key_path, "the audit log already holds signed checkpoints", err);
        if (access(pub_path, F_OK) == 0) {
            char en[4200];
            snprintf(en, sizeof en, "its public key %s is still there", pub_path);
            return key_missing(key_path, en, err);
        }
        if ((rc = generate(key, err)) < 0)
            return rc;
        rc = write_hex_file(key_path, key, sizeof key, 0600, err);
        if (rc == FP_ECONFLICT) /* another process made it first: use that one */
            rc = read_hex_file(key_path, key, sizeof key, 1, err);
    }
    if (rc == 0) {
        memcpy(sk, key, FP_AUDIT_KEY_LEN);
        memcpy(pk, key + FP_AUDIT_KEY_LEN, FP_AUDIT_KEY_LEN);
    }
    explicit_bzero(key, sizeof key);
    if (rc < 0)
        return rc;
    /* the public half must belong to the seed: a signature made with both
     * verifies only then */
    static const unsigned char probe[] = "fapiao audit key self-test";
    unsigned char sig[FP_AUDIT_SIG_LEN];
    if (ed25519_sign(sk, pk, probe, sizeof probe, sig) < 0 ||
        !ed25519_verify(pk, probe, sizeof probe, sig))
        return fp_fail(err, FP_ECRYPTO, "%s: the public key does not belong to the private key",
                       key_path);
    unsigned char have[FP_AUDIT_KEY_LEN];
    rc = read_hex_file(pub_path, have, sizeof have, 0, NULL);
    if (rc == FP_ENOTFOUND) {
        rc = write_hex_file(pub_path, pk, FP_AUDIT_KEY_LEN, 0644, err);
        if (rc == FP_ECONFLICT)
            rc = read_hex_file(pub_path, have, sizeof have, 0, err) < 0 ? FP_EIO
                 : memcmp(have, pk, FP_AUDIT_KEY_LEN)
                     ? fp_fail(err, FP_ECONFLICT, "%s is not the public key of %s", pub_path,
                               key_path)
                     : 0;
        return rc;
    }
    if (rc < 0)
        return fp_fail(err, rc, "cannot read %s (want 64 hex digits)", pub_path);
    if (memcmp(have, pk, FP_AUDIT_KEY_LEN))
        return fp_fail(err, FP_ECONFLICT,
                       "%s is not the public key of %s (was one of them replaced?)", pub_path,
                       key_path);
    return 0;
}
