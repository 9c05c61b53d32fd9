/* json.h — strict JSON input and a small JSON writer.
 *
 * Input: the body is checked for valid UTF-8, NUL bytes, escaped NULs and
 * nesting depth before cJSON parses it, and every object is checked for
 * duplicate keys after (cJSON accepts both), so the rest of the code sees
 * only well-formed, unambiguous documents.
 *
 * Output: fp_buf is a bounded growable buffer; fp_jw_* append JSON tokens to
 * it with correct escaping, so response bodies are built byte-for-byte
 * deterministically (idempotent replays must be byte-identical). */
#ifndef FAPIAO_JSON_H
#define FAPIAO_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"

typedef struct fp_buf {
    char *p;
    size_t len, cap, max; /* max: hard limit; 0 means 16 MiB */
    int overflow;         /* set once an append did not fit */
} fp_buf;

void fp_buf_init(fp_buf *b, size_t max);
void fp_buf_free(fp_buf *b);
void fp_buf_append(fp_buf *b, const void *s, size_t n);
void fp_buf_puts(fp_buf *b, const char *s);
void fp_buf_printf(fp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Detaches the NUL-terminated contents (caller frees), or NULL on overflow. */
char *fp_buf_take(fp_buf *b, size_t *len);

/* Strict parse.  On failure returns NULL and sets *code (MALFORMED_JSON,
 * INVALID_UTF8, TOO_DEEP, DUPLICATE_FIELD) and a detail ("at byte 17",
 * or the duplicated key). */
cJSON *fp_json_parse(const char *body, size_t len, int max_depth, fp_code *code, char *detail,
                     size_t detail_len);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int fp_utf8_valid(const char *s, size_t n);
/* Number of code points in a valid UTF-8 string. */
size_t fp_utf8_len(const char *s);

/* JSON writer.  Commas are the caller's business via fp_jw_key's first flag
 * kept in the writer state. */
typedef struct fp_jw {
    fp_buf *b;
    int need_comma[32];
    int depth;
} fp_jw;

void fp_jw_init(fp_jw *w, fp_buf *b);
/* fp_buf_init(b, cap), then fp_jw_init(w, b). */
void fp_jw_start(fp_jw *w, fp_buf *b, size_t cap);
void fp_jw_obj_open(fp_jw *w);
void fp_jw_obj_close(fp_jw *w);
void fp_jw_arr_open(fp_jw *w);
void fp_jw_arr_close(fp_jw *w);
void fp_jw_key(fp_jw *w, const char *k);
void fp_jw_str(fp_jw *w, const char *s); /* NULL writes null */
void fp_jw_int(fp_jw *w, long long v);
void fp_jw_bool(fp_jw *w, int v);
void fp_jw_null(fp_jw *w);
void fp_jw_raw(fp_jw *w, const char *json); /* an already-encoded value */
/* key + value shorthands */
void fp_jw_kstr(fp_jw *w, const char *k, const char *s);
void fp_jw_kint(fp_jw *w, const char *k, long long v);
void fp_jw_kbool(fp_jw *w, const char *k, int v);

/* Appends s JSON-escaped (without quotes). */
void fp_json_escape(fp_buf *b, const char *s);

#endif
