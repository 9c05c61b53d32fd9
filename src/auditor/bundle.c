/* bundle.c — verifying an exported bundle (JSON lines, docs/audit.md) with
 * the verifier of verify.c. */
#include "internal.h"

/* ---- bundles: JSON lines (docs/audit.md) ---- */

/* Reads one line into buf (without the newline): its length, -1 at EOF,
 * -2 when longer than the buffer. */
long fp_av_read_line(FILE *f, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, f))
        return -1;
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    else if (!feof(f))
        return -2;
    return (long)n;
}

int fp_av_json_i64(const cJSON *o, const char *k, int64_t *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x))
        return -1;
    double d = x->valuedouble;
    if (d != d || d < -9007199254740992.0 || d > 9007199254740992.0 || d != (double)(int64_t)d)
        return -1;
    *v = (int64_t)d;
    return 0;
}

static int json_text(const cJSON *o, const char *k, fp_audit_text *t)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNull(x)) {
        t->p = NULL;
        t->n = 0;
        return 0;
    }
    if (!cJSON_IsString(x))
        return -1;
    t->p = x->valuestring;
    t->n = strlen(x->valuestring);
    return 0;
}

/* A hex field of n bytes: 1 decoded, 0 present but not n bytes of hex, -1
 * absent. */
static int json_hex(const cJSON *o, const char *k, unsigned char *out, size_t n)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNull(x))
        return 0;
    if (!cJSON_IsString(x))
        return -1;
    return strlen(x->valuestring) == 2 * n && fp_audit_unhex(x->valuestring, out, n) == 0;
}

const char *fp_av_json_type(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

typedef struct bundle_rec {
    fp_audit_row row;
    unsigned char prev[FP_AUDIT_HASH_LEN], hash[FP_AUDIT_HASH_LEN];
} bundle_rec;

static int parse_record(const cJSON *o, bundle_rec *b)
{
    fp_audit_row *r = &b->row;
    memset(r, 0, sizeof *r);
    if (fp_av_json_i64(o, "id", &r->id) < 0 || fp_av_json_i64(o, "ts", &r->ts) < 0)
        return -1;
    for (int i = 0; i < FP_AUDIT__FIELDS; i++)
        if (json_text(o, fp_audit_field_names[i], &r->f[i]) < 0 &&
            (i < FP_AUDIT__V1_FIELDS ||
             cJSON_GetObjectItemCaseSensitive(o, fp_audit_field_names[i])))
            return -1; /* the fields of migration 7 may be absent (older bundles): NULL */
    int p = json_hex(o, "prev_hash", b->prev, FP_AUDIT_HASH_LEN);
    int h = json_hex(o, "hash", b->hash, FP_AUDIT_HASH_LEN);
    if (p < 0 || h < 0)
        return -1;
    /* a hash that is not 32 bytes of hex reads as a wrong-length hash */
    r->prev_hash = b->prev;
    r->prev_len = p ? FP_AUDIT_HASH_LEN : 0;
    r->hash = b->hash;
    r->hash_len = h ? FP_AUDIT_HASH_LEN : 0;
    if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "prev_hash")) &&
        cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "hash")))
        r->prev_hash = r->hash = NULL;
    return 0;
}

int fp_av_parse_cp(const cJSON *o, fp_audit_cp *cp)
{
    memset(cp, 0, sizeof *cp);
    if (fp_av_json_i64(o, "id", &cp->id) < 0 || fp_av_json_i64(o, "upto_id", &cp->upto_id) < 0 ||
        fp_av_json_i64(o, "ts", &cp->ts) < 0)
        return -1;
    int h = json_hex(o, "upto_hash", cp->upto_hash, FP_AUDIT_HASH_LEN);
    int s = json_hex(o, "signature", cp->sig, FP_AUDIT_SIG_LEN);
    if (h < 0 || s < 0)
        return -1;
    cp->malformed = !h || !s;
    return 0;
}

/* The reorder diagnosis for a bundle: a second pass over the file. */
static int bundle_find(void *arg, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id)
{
    FILE *f = fopen(arg, "r");
    char *line = f ? malloc(BUNDLE_LINE_MAX) : NULL;
    int found = 0;
    long n;
    while (line && !found && (n = fp_av_read_line(f, line, BUNDLE_LINE_MAX)) >= 0) {
        cJSON *o = cJSON_ParseWithLength(line, (size_t)n);
        bundle_rec b;
        if (o && !strcmp(fp_av_json_type(o), "record") && parse_record(o, &b) == 0 &&
            b.row.hash_len == FP_AUDIT_HASH_LEN && !memcmp(b.hash, h, FP_AUDIT_HASH_LEN)) {
            *id = b.row.id;
            found = 1;
        }
        cJSON_Delete(o);
    }
    free(line);
    if (f)
        fclose(f);
    return found;
}

int fp_audit_verify_bundle(const char *path, const unsigned char *pk,
                           unsigned char bundle_pk[FP_AUDIT_KEY_LEN], fp_audit_report *rep,
                           fp_err *err)
{
    verifier v;
    fp_av_genesis(&v, rep, pk);
    memset(bundle_pk, 0, FP_AUDIT_KEY_LEN);
    FILE *f = fopen(path, "r");
    if (!f)
        return fp_fail(err, errno == ENOENT ? FP_ENOTFOUND : FP_EIO, "open %s: %s", path,
                       strerror(errno));
    char *line = malloc(BUNDLE_LINE_MAX);
    if (!line) {
        fclose(f);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    v.find = bundle_find;
    v.find_arg = (void *)path;
    long n, lineno = 0;
    int64_t start = 0, end = 0, nrec = 0, ncp = 0;
    int state = 0; /* 0: header next, 1: anchor next, 2: body, 3: after the end line */
    while (!v.done && (n = fp_av_read_line(f, line, BUNDLE_LINE_MAX)) != -1) {
        lineno++;
        cJSON *o = n >= 0 ? cJSON_ParseWithLength(line, (size_t)n) : NULL;
        const char *type = o ? fp_av_json_type(o) : "";
        if (!o) {
            fp_av_found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "line %ld of the bundle is not JSON",
                        "包第 %ld 行不是 JSON", lineno);
        } else if (state == 0) {
            int64_t ver = 0;
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "pubkey");
            if (strcmp(type, BUNDLE_FORMAT) || fp_av_json_i64(o, "version", &ver) < 0 ||
                ver != BUNDLE_VERSION || fp_av_json_i64(o, "start", &start) < 0 ||
                fp_av_json_i64(o, "end", &end) < 0 || !cJSON_IsString(k) ||
                fp_audit_unhex(k->valuestring, bundle_pk, FP_AUDIT_KEY_LEN) < 0 || start < 1) {
                fp_av_found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0,
                            "not a fapiao audit bundle (version %d): bad header line",
                            "不是 fapiao 审计日志包（第 %d 版）：首行无效", BUNDLE_VERSION);
            } else if (pk && memcmp(pk, bundle_pk, FP_AUDIT_KEY_LEN)) {
                fp_av_found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0,
                            "the bundle is signed with another key than the expected public key",
                            "该包的签名公钥与预期的公钥不同");
            } else {
                if (!pk)
                    v.pk = bundle_pk;
                v.start = v.next_id = start;
                state = start > 1 ? 1 : 2;
            }
        } else if (state == 1) {
            fp_audit_cp cp;
            if (strcmp(type, "checkpoint") || fp_av_parse_cp(o, &cp) < 0 || cp.upto_id != start - 1)
                fp_av_found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0,
                            "the bundle starts at record %lld but does not carry the checkpoint "
                            "before it",
                            "该包从第 %lld 条记录开始，却没有其前一个检查点", (long long)start);
            else
                fp_av_anchor(&v, &cp, 0);
            state = 2;
        } else if (state == 2 && !strcmp(type, "record")) {
            bundle_rec b;
            if (parse_record(o, &b) < 0)
                fp_av_found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "line %ld: malformed record",
                            "第 %ld 行：记录格式无效", lineno);
            else
                fp_av_record(&v, &b.row);
            nrec++;
        } else if (state == 2 && !strcmp(type, "checkpoint")) {
            fp_audit_cp cp;
            if (fp_av_parse_cp(o, &cp) < 0)
                fp_av_found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "line %ld: malformed checkpoint",
                            "第 %ld 行：检查点格式无效", lineno);
            else
                fp_av_checkpoint(&v, &cp);
            ncp++;
        } else if (state == 2 && !strcmp(type, "end")) {
            int64_t want_rec = -1, want_cp = -1;
            fp_av_json_i64(o, "records", &want_rec);
            fp_av_json_i64(o, "checkpoints", &want_cp);
            if (want_rec != nrec || want_cp != ncp || (nrec && v.next_id - 1 != end))
                fp_av_found(
                    &v, FP_AUDIT_BAD_BUNDLE, 0, 0,
                    "the bundle's end line says %lld records and %lld checkpoints ending at "
                    "record %lld; it holds %lld and %lld",
                    "包末行称有 %lld 条记录、%lld 个检查点，止于第 %lld 条；实际为 %lld 条、%lld "
                    "个",
                    (long long)want_rec, (long long)want_cp, (long long)end, (long long)nrec,
                    (long long)ncp);
            state = 3;
        } else {
            fp_av_found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "line %ld of the bundle is unexpected (%s)",
                        "包第 %ld 行不应出现（%s）", lineno, state == 3 ? "after the end" : type);
        }
        cJSON_Delete(o);
    }
    int rc = 0;
    if (ferror(f))
        rc = fp_fail(err, FP_EIO, "read %s: %s", path, strerror(errno));
    else if (state != 3)
        fp_av_found(&v, FP_AUDIT_BAD_BUNDLE, 0, 0, "the bundle is cut short (no end line)",
                    "包不完整（缺少末行）");
    if (rc == 0)
        fp_av_end(&v);
    free(line);
    fclose(f);
    return rc;
}
