/* services.c — one function per platform service (docs/upstream.md §2).
 *
 * Each builds its request from a table of (name, value) pairs, calls
 * fp_up_call and copies the answer's fields out by name.  The decrypted
 * answer carries them beside returncode; some captured payloads nest them
 * in a "data" object, so both places are looked at (field()). */
#include "fapiao/upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv {
    const char *k, *v;
} kv;

/* An object of string members; NULL values are left out. */
static cJSON *object_of(const kv *p, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++)
        if (p[i].v && !cJSON_AddStringToObject(o, p[i].k, p[i].v)) {
            cJSON_Delete(o);
            return NULL;
        }
    return o;
}

static fp_up_kind oom(fp_up_result *res)
{
    memset(res, 0, sizeof *res);
    snprintf(res->message, sizeof res->message, "out of memory");
    return res->kind = FP_UP_LOCAL;
}

/* Calls fwbm with the pairs; *data as fp_up_call (NULL: deleted here). */
static fp_up_kind call(const fp_upstream_conf *c, const char *fwbm, const kv *p, size_t n,
                       cJSON **data, fp_up_result *res)
{
    cJSON *req = object_of(p, n), *d = NULL;
    if (!req)
        return oom(res);
    fp_up_kind k = fp_up_call(c, fwbm, req, &d, res);
    cJSON_Delete(req);
    if (data)
        *data = d;
    else
        cJSON_Delete(d);
    return k;
}

static const cJSON *field(const cJSON *data, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, name);
    if (!v)
        v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(data, "data"), name);
    return v;
}

/* data's name as text into out[cap] ("" when absent); 0, or -1 when
 * required and absent. */
static int copy(const cJSON *data, const char *name, char *out, size_t cap, int required)
{
    const cJSON *v = field(data, name);
    if (cJSON_IsString(v))
        snprintf(out, cap, "%s", v->valuestring);
    else if (cJSON_IsNumber(v)) { /* as cJSON prints it: no arithmetic on it here */
        char *t = cJSON_PrintUnformatted(v);
        snprintf(out, cap, "%s", t ? t : "");
        free(t);
    } else {
        out[0] = 0;
        return required ? -1 : 0;
    }
    return 0;
}

static fp_up_kind missing(fp_up_result *res, const char *what)
{
    snprintf(res->message, sizeof res->message, "the answer lacks %s", what);
    return res->kind = FP_UP_PROTOCOL;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

fp_up_kind fp_up_numbers_download(const fp_upstream_conf *c, const char *nsrsbh, long count,
                                  const char *ywlsh, fp_up_numbers *out, fp_up_result *res)
{
    char n[24], lysl[24];
    snprintf(n, sizeof n, "%ld", count);
    const kv p[] = {{"nsrsbh", nsrsbh}, {"lysl", n}, {"ywlsh", ywlsh}};
    memset(out, 0, sizeof *out);
    if (count < 1 || count > FP_UP_MAX_NUMBERS) {
        memset(res, 0, sizeof *res);
        snprintf(res->message, sizeof res->message, "lysl must be 1-%d", FP_UP_MAX_NUMBERS);
        return res->kind = FP_UP_LOCAL;
    }
    cJSON *d;
    fp_up_kind k = call(c, "QDFPPLFM", p, N(p), &d, res);
    if (k == FP_UP_OK) {
        if (copy(d, "fpqshm", out->first, sizeof out->first, 1) ||
            copy(d, "fpzzhm", out->last, sizeof out->last, 1))
            k = missing(res, "fpqshm / fpzzhm");
        else if (!copy(d, "lysl", lysl, sizeof lysl, 0)) {
            long got = count;
            if (lysl[0] && fp_up_whole(lysl, 1, FP_UP_MAX_NUMBERS, &got) < 0)
                k = missing(res, "lysl (not a count of numbers)");
            out->count = (int)got;
        }
    }
    cJSON_Delete(d);
    return k;
}

fp_up_kind fp_up_credit_query(const fp_upstream_conf *c, const char *nsrsbh, fp_up_credit *out,
                              fp_up_result *res)
{
    const kv p[] = {{"nsrsbh", nsrsbh}};
    memset(out, 0, sizeof *out);
    cJSON *d;
    fp_up_kind k = call(c, "CXSXED", p, N(p), &d, res);
    if (k == FP_UP_OK) {
        const struct {
            const char *name;
            char *dst;
            size_t cap;
        } f[] = {{"ztsxbz", out->state, sizeof out->state},
                 {"bysxed", out->granted, sizeof out->granted},
                 {"kysyed", out->usable, sizeof out->usable},
                 {"yxzed", out->downloaded, sizeof out->downloaded},
                 {"yxzwsyed", out->downloaded_unused, sizeof out->downloaded_unused},
                 {"sq", out->period, sizeof out->period}};
        for (size_t i = 0; i < N(f); i++)
            copy(d, f[i].name, f[i].dst, f[i].cap, 0);
        if (!out->usable[0])
            k = missing(res, "kysyed");
    }
    cJSON_Delete(d);
    return k;
}

fp_up_kind fp_up_credit_transfer(const fp_upstream_conf *c, const char *nsrsbh, int give_back,
                                 const char *amount, const char *ywlsh, fp_up_window *out,
                                 fp_up_result *res)
{
    const kv p[] = {{"nsrsbh", nsrsbh},
                    {"ptbh", c->ptbh},
                    {"sqlx", give_back ? "1" : "0"},
                    {"sqed", amount},
                    {"ywlsh", ywlsh}};
    memset(out, 0, sizeof *out);
    cJSON *d;
    fp_up_kind k = call(c, "XZTHSXED", p, N(p), &d, res);
    if (k == FP_UP_OK) {
        copy(d, "syqjq", out->from, sizeof out->from, 0);
        copy(d, "syqjz", out->to, sizeof out->to, 0);
    }
    cJSON_Delete(d);
    return k;
}

fp_up_kind fp_up_credit_adjust(const fp_upstream_conf *c, const char *nsrsbh, const char *month,
                               fp_up_result *res)
{
    const kv p[] = {{"xsfnsrsbh", nsrsbh}, {"sxedsq", month}};
    return call(c, "TZSXEDYXQ", p, N(p), NULL, res);
}

fp_up_kind fp_up_upload(const fp_upstream_conf *c, const fp_invoice_doc *const *docs, int n,
                        const fp_up_red_ref *forms, char sllsh[64], fp_up_result *res)
{
    /* a JSON array of invoices, as the PHP SDK sends (docs/upstream.md §3) */
    cJSON *req = cJSON_CreateArray(), *d = NULL;
    sllsh[0] = 0;
    if (!req)
        return oom(res);
    for (int i = 0; i < n; i++) {
        fp_err err = {0};
        cJSON *inv = fp_up_invoice_fields(docs[i], c->ptbh, forms ? &forms[i] : NULL, &err);
        if (!inv || !cJSON_AddItemToArray(req, inv)) {
            cJSON_Delete(inv);
            cJSON_Delete(req);
            memset(res, 0, sizeof *res);
            snprintf(res->message, sizeof res->message, "%s",
                     err.msg[0] ? err.msg : "out of memory");
            return res->kind = FP_UP_LOCAL;
        }
    }
    fp_up_kind k = fp_up_call(c, "QDFPSC", req, &d, res);
    cJSON_Delete(req);
    if (k == FP_UP_OK && copy(d, "sllsh", sllsh, 64, 1))
        k = missing(res, "sllsh");
    cJSON_Delete(d);
    return k;
}

fp_up_kind fp_up_upload_result(const fp_upstream_conf *c, const char *nsrsbh, const char *sllsh,
                               fp_up_upload_item *items, int cap, int *n, fp_up_result *res)
{
    const kv p[] = {{"nsrsbh", nsrsbh}, {"sllsh", sllsh}};
    *n = 0;
    cJSON *d;
    fp_up_kind k = call(c, "CXQDFPSCJG", p, N(p), &d, res);
    if (k == FP_UP_OK) {
        const cJSON *list = field(d, "fpxxList");
        const cJSON *arr = cJSON_IsArray(list) ? list : NULL;
        cJSON *e;
        if (!arr)
            k = missing(res, "fpxxList");
        cJSON_ArrayForEach(e, arr)
        {
            if (*n >= cap)
                break;
            fp_up_upload_item *it = &items[*n];
            if (copy(e, "fphm", it->number, sizeof it->number, 1) ||
                copy(e, "status", it->status, sizeof it->status, 1)) {
                k = missing(res, "fphm / status");
                break;
            }
            copy(e, "message", it->message, sizeof it->message, 0);
            (*n)++;
        }
    }
    cJSON_Delete(d);
    return k;
}

fp_up_item_verdict fp_up_item_verdict_of(const fp_up_upload_item *it)
{
    /* the duplicate's status code and wording are inferred (docs/upstream.md
     * §5): one code, and the words a message of the platform would use */
    static const char *const dup_words[] = {"号码重复", "重复上传", "已上传", "duplicate"};
    if (!strcmp(it->status, "00"))
        return FP_UP_ITEM_ACCEPTED;
    if (!strcmp(it->status, "02"))
        return FP_UP_ITEM_DUPLICATE;
    for (size_t i = 0; i < sizeof dup_words / sizeof dup_words[0]; i++)
        if (strstr(it->message, dup_words[i]))
            return FP_UP_ITEM_DUPLICATE;
    return FP_UP_ITEM_REJECTED;
}

static fp_up_kind read_form(cJSON *d, fp_up_red_form *out, fp_up_result *res)
{
    if (copy(d, "uuid", out->uuid, sizeof out->uuid, 1))
        return missing(res, "uuid");
    copy(d, "hzfpxxqrdbh", out->number, sizeof out->number, 0);
    copy(d, "hzqrxxztDm", out->state, sizeof out->state, 0);
    return FP_UP_OK;
}

fp_up_kind fp_up_red_apply(const fp_upstream_conf *c, const fp_invoice_doc *blue,
                           const fp_invoice_doc *red, const char *ywlsh, fp_up_red_form *out,
                           fp_up_result *res)
{
    memset(out, 0, sizeof *out);
    fp_err err = {0};
    cJSON *req = fp_up_red_form_fields(blue, red, &err), *d = NULL;
    if (!req) {
        memset(res, 0, sizeof *res);
        snprintf(res->message, sizeof res->message, "%s", err.msg);
        return res->kind = FP_UP_LOCAL;
    }
    if (ywlsh && !cJSON_AddStringToObject(req, "ywlsh", ywlsh)) {
        cJSON_Delete(req);
        return oom(res);
    }
    fp_up_kind k = fp_up_call(c, "QDHZQRDSQ", req, &d, res);
    cJSON_Delete(req);
    if (k == FP_UP_OK)
        k = read_form(d, out, res);
    cJSON_Delete(d);
    return k;
}

fp_up_kind fp_up_red_answer(const fp_upstream_conf *c, const char *nsrsbh, const char *uuid,
                            const char *number, char qrlx, fp_up_result *res)
{
    char t[2] = {qrlx, 0};
    if (!strchr("YNC", qrlx) || !qrlx) {
        memset(res, 0, sizeof *res);
        snprintf(res->message, sizeof res->message, "qrlx must be Y, N or C");
        return res->kind = FP_UP_LOCAL;
    }
    const kv p[] = {{"xsfnsrsbh", nsrsbh}, {"uuid", uuid}, {"hzqrdbh", number}, {"qrlx", t}};
    return call(c, "QDHZQRDQR", p, N(p), NULL, res);
}

fp_up_kind fp_up_red_list(const fp_upstream_conf *c, const char *nsrsbh, const char *state,
                          int page, int page_size, cJSON **data, fp_up_result *res)
{
    char pn[16], ps[16];
    snprintf(pn, sizeof pn, "%d", page);
    snprintf(ps, sizeof ps, "%d", page_size);
    const kv p[] = {{"yhjslx", "0"},
                    {"xsfnsrsbh", nsrsbh},
                    {"hzqrxxztDm", state ? state : ""},
                    {"pageNumber", pn},
                    {"pageSize", ps}};
    return call(c, "CXQDHZQRDLB", p, N(p), data, res);
}

fp_up_kind fp_up_red_detail(const fp_upstream_conf *c, const char *nsrsbh, const char *uuid,
                            fp_up_red_form *out, cJSON **data, fp_up_result *res)
{
    const kv p[] = {{"xsfnsrsbh", nsrsbh}, {"uuid", uuid}};
    memset(out, 0, sizeof *out);
    cJSON *d;
    fp_up_kind k = call(c, "CXQDHZQRDMX", p, N(p), &d, res);
    if (k == FP_UP_OK)
        k = read_form(d, out, res);
    if (data)
        *data = d;
    else
        cJSON_Delete(d);
    return k;
}

fp_up_kind fp_up_taxcodes(const fp_upstream_conf *c, const char *nsrsbh, const char *since,
                          cJSON **data, fp_up_result *res)
{
    const kv p[] = {{"nsrsbh", nsrsbh}, {"sjc", since ? since : ""}, {"sjswjgdm", ""}};
    return call(c, "CXSSFLBM", p, N(p), data, res);
}

fp_up_kind fp_up_rates(const fp_upstream_conf *c, cJSON **data, fp_up_result *res)
{
    return call(c, "CXKYSL", NULL, 0, data, res);
}

int fp_up_whole(const char *s, long lo, long hi, long *out)
{
    long v = 0;
    if (!s || !*s)
        return FP_EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (hi - (*p - '0')) / 10)
            return FP_EINVAL; /* not a digit, or past hi (no overflow) */
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return FP_EINVAL;
    *out = v;
    return 0;
}
