/* fuzz_json.c — fp_json_parse on arbitrary bytes (max depth 32).
 *
 * Invariants, each an abort() when broken:
 *  - a refusal carries one of the four documented codes and a terminated
 *    detail;
 *  - an accepted document is valid UTF-8 throughout;
 *  - the accepted tree, written back out with the fp_jw_* writer, is again
 *    accepted by fp_json_parse and equal to the original (cJSON_Compare),
 *    which exercises escaping, commas after keys and nesting up to the
 *    depth limit. */
#include "fapiao/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

static void write_node(fp_jw *w, const cJSON *n, int *lossy)
{
    if (cJSON_IsObject(n)) {
        fp_jw_obj_open(w);
        for (const cJSON *c = n->child; c; c = c->next) {
            fp_jw_key(w, c->string);
            write_node(w, c, lossy);
        }
        fp_jw_obj_close(w);
    } else if (cJSON_IsArray(n)) {
        fp_jw_arr_open(w);
        for (const cJSON *c = n->child; c; c = c->next)
            write_node(w, c, lossy);
        fp_jw_arr_close(w);
    } else if (cJSON_IsString(n)) {
        fp_jw_str(w, n->valuestring);
    } else if (cJSON_IsNumber(n)) {
        if (isfinite(n->valuedouble)) {
            char num[40];
            snprintf(num, sizeof num, "%.17g", n->valuedouble);
            fp_jw_raw(w, num);
        } else { /* 1e999 parses to inf, which JSON cannot write */
            *lossy = 1;
            fp_jw_null(w);
        }
    } else if (cJSON_IsBool(n)) {
        fp_jw_bool(w, cJSON_IsTrue(n));
    } else {
        fp_jw_null(w);
    }
}

/* libFuzzer's entry point (also called by replay_main.c). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    fp_code code = FPC_NONE;
    char detail[128];
    memset(detail, 0x7f, sizeof detail);
    cJSON *doc = fp_json_parse(body, size, MAX_DEPTH, &code, detail, sizeof detail);
    if (!doc) {
        if (code != FPC_MALFORMED_JSON && code != FPC_INVALID_UTF8 && code != FPC_TOO_DEEP &&
            code != FPC_DUPLICATE_FIELD)
            abort();
        if (!memchr(detail, 0, sizeof detail))
            abort();
        return 0;
    }
    if (!fp_utf8_valid(body, size) || memchr(body, 0, size))
        abort();

    fp_buf b;
    fp_jw w;
    int lossy = 0;
    fp_buf_init(&b, 0);
    fp_jw_init(&w, &b);
    write_node(&w, doc, &lossy);
    if (w.depth != 0)
        abort();
    size_t len = 0;
    char *out = fp_buf_take(&b, &len);
    if (!out || strlen(out) != len)
        abort();
    cJSON *again = fp_json_parse(out, len, MAX_DEPTH, &code, detail, sizeof detail);
    if (!again) {
        fprintf(stderr, "rewritten document refused (%d: %s): %s\n", (int)code, detail, out);
        abort();
    }
    if (!lossy && !cJSON_Compare(doc, again, 1)) {
        fprintf(stderr, "rewritten document differs: %s\n", out);
        abort();
    }
    cJSON_Delete(again);
    cJSON_Delete(doc);
    free(out);
    return 0;
}
