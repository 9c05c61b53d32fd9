/* test_json.c — json.h: the UTF-8 validator, the strict parser (duplicate
 * keys, depth, escaped NULs, NUL bytes, trailing data), the bounded buffer
 * and the writer, whose output is compared byte for byte. */
#include "check.h"

#include "fapiao/json.h"
#include "fapiao/money.h"

#include <stdlib.h>
#include <string.h>

/* ---- fp_utf8_valid ---- */

static void test_utf8(void)
{
    static const struct {
        const char *name, *s;
        size_t n; /* 0: strlen */
        int valid;
    } cases[] = {
        {"empty", "", 0, 1},
        {"ascii", "hello, world", 0, 1},
        {"ascii DEL", "\x7f", 0, 1},
        {"CJK", "发票号码", 0, 1},
        {"full-width parens", "（负数）", 0, 1},
        {"2-byte U+00E9", "\xC3\xA9", 0, 1},
        {"2-byte lowest U+0080", "\xC2\x80", 0, 1},
        {"3-byte lowest U+0800", "\xE0\xA0\x80", 0, 1},
        {"U+D7FF before surrogates", "\xED\x9F\xBF", 0, 1},
        {"U+E000 after surrogates", "\xEE\x80\x80", 0, 1},
        {"U+FFFF", "\xEF\xBF\xBF", 0, 1},
        {"4-byte emoji U+1F600", "\xF0\x9F\x98\x80", 0, 1},
        {"4-byte lowest U+10000", "\xF0\x90\x80\x80", 0, 1},
        {"U+10FFFF", "\xF4\x8F\xBF\xBF", 0, 1},
        {"mixed", "a\xC3\xA9中\xF0\x9F\x98\x80z", 0, 1},
        {"NUL byte is valid UTF-8", "a\0b", 3, 1},
        /* around the eight-byte ASCII runs */
        {"ASCII run then CJK", "abcdefghijklmnop中", 0, 1},
        {"2-byte across a word boundary", "0123456\xC3\xA9", 0, 1},
        {"ASCII run, 17 bytes", "abcdefghijklmnopq", 0, 1},
        {"ASCII run then truncated 2-byte", "abcdefghij\xC3", 0, 0},
        {"ASCII run then surrogate", "abcdefgh\xED\xA0\x80", 0, 0},
        {"ASCII run then lone continuation", "abcdefgh\x80", 0, 0},
        {"invalid inside a word",
         "abc\xFF"
         "defgh",
         0, 0},
        {"NUL inside an ASCII run", "abc\0defghijk", 12, 1},
        /* invalid */
        {"overlong 2-byte C0 80", "\xC0\x80", 0, 0},
        {"overlong 2-byte C1 BF", "\xC1\xBF", 0, 0},
        {"overlong 3-byte E0 80 80", "\xE0\x80\x80", 0, 0},
        {"overlong 3-byte E0 9F BF", "\xE0\x9F\xBF", 0, 0},
        {"overlong 4-byte F0 80 80 80", "\xF0\x80\x80\x80", 0, 0},
        {"overlong 4-byte F0 8F BF BF", "\xF0\x8F\xBF\xBF", 0, 0},
        {"surrogate ED A0 80", "\xED\xA0\x80", 0, 0},
        {"surrogate ED BF BF", "\xED\xBF\xBF", 0, 0},
        {"surrogate pair as CESU-8", "\xED\xA0\xBD\xED\xB8\x80", 0, 0},
        {"above U+10FFFF F4 90 80 80", "\xF4\x90\x80\x80", 0, 0},
        {"F5 lead", "\xF5\x80\x80\x80", 0, 0},
        {"FF byte", "\xFF", 0, 0},
        {"FE byte", "\xFE", 0, 0},
        {"lone continuation", "\x80", 0, 0},
        {"continuation after ascii", "a\xBF", 0, 0},
        {"truncated 2-byte", "\xC3", 0, 0},
        {"truncated 3-byte", "\xE4\xB8", 0, 0},
        {"truncated 4-byte", "\xF0\x9F\x98", 0, 0},
        {"truncated at end of CJK text", "发票\xE5\x8F", 0, 0},
        {"bad continuation", "\xE4\x28\x80", 0, 0},
        {"ascii in place of continuation", "\xC3\x41", 0, 0},
        {"5-byte form", "\xF8\x88\x80\x80\x80", 0, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("utf8[%zu] %s", i, cases[i].name);
        size_t n = cases[i].n ? cases[i].n : strlen(cases[i].s);
        CHECK_EQ_INT(fp_utf8_valid(cases[i].s, n), cases[i].valid);
    }
    /* the length argument is honoured: a valid prefix of a longer buffer */
    check_ctx("utf8 prefix");
    CHECK_EQ_INT(fp_utf8_valid("ab\xFF", 2), 1);
    CHECK_EQ_INT(fp_utf8_valid("\xE4\xB8\xAD", 2), 0);

    static const struct {
        const char *s;
        size_t len;
    } lens[] = {{"", 0}, {"abc", 3}, {"发票", 2}, {"a中\xF0\x9F\x98\x80", 3}, {"（个人）", 4}};
    for (size_t i = 0; i < NCASES(lens); i++) {
        check_ctx("utf8_len[%zu]", i);
        CHECK_EQ_INT(fp_utf8_len(lens[i].s), lens[i].len);
    }
    check_ctx("%s", "");
}

/* ---- fp_json_parse ---- */

static char *nested(const char *open, const char *close, int depth, const char *inner)
{
    size_t lo = strlen(open), lc = strlen(close), li = strlen(inner);
    char *s = malloc((lo + lc) * (size_t)depth + li + 1), *p = s;
    for (int i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, inner, li);
    p += li;
    for (int i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = 0;
    return s;
}

static void test_parse(void)
{
    static const struct {
        const char *name, *body;
        size_t len; /* 0: strlen */
        int max_depth;
        fp_code code;       /* FPC_NONE: parses */
        const char *detail; /* substring of detail, or NULL */
    } cases[] = {
        {"object", "{\"a\":1}", 0, 32, FPC_NONE, NULL},
        {"array", "[1,2,3]", 0, 32, FPC_NONE, NULL},
        {"scalar string", "\"x\"", 0, 32, FPC_NONE, NULL},
        {"whitespace around", " \n\t{\"a\":[true,false,null]}\r\n ", 0, 32, FPC_NONE, NULL},
        {"CJK keys and values", "{\"名称\":\"软件维护服务费\"}", 0, 32, FPC_NONE, NULL},
        {"same key in different objects", "{\"a\":{\"b\":1},\"b\":{\"a\":2}}", 0, 32, FPC_NONE,
         NULL},
        {"same key in sibling array objects", "{\"items\":[{\"x\":1},{\"x\":2}]}", 0, 32, FPC_NONE,
         NULL},
        {"escaped backslash before u0000", "{\"a\":\"\\\\u0000\"}", 0, 32, FPC_NONE, NULL},
        {"brackets inside strings do not count", "{\"a\":\"[[[[{{{{\"}", 0, 2, FPC_NONE, NULL},
        {"escaped quote in string", "{\"a\":\"x\\\"[[[[\"}", 0, 2, FPC_NONE, NULL},
        {"length shorter than the buffer", "{\"a\":1}garbage", 7, 32, FPC_NONE, NULL},
        {"\\u0001 is fine", "{\"a\":\"\\u0001\"}", 0, 32, FPC_NONE, NULL},
        /* duplicates */
        {"duplicate at top level", "{\"a\":1,\"a\":2}", 0, 32, FPC_DUPLICATE_FIELD, "a"},
        {"duplicate non-adjacent", "{\"drawer\":1,\"x\":0,\"drawer\":2}", 0, 32,
         FPC_DUPLICATE_FIELD, "drawer"},
        {"duplicate in array of objects", "{\"items\":[{\"x\":1},{\"name\":1,\"y\":2,\"name\":3}]}",
         0, 32, FPC_DUPLICATE_FIELD, "name"},
        {"duplicate deep", "[[[{\"k\":{\"z\":1,\"z\":1}}]]]", 0, 32, FPC_DUPLICATE_FIELD, "z"},
        {"duplicate via escape", "{\"a\":1,\"\\u0061\":2}", 0, 32, FPC_DUPLICATE_FIELD, "a"},
        {"duplicate null values", "{\"n\":null,\"n\":null}", 0, 32, FPC_DUPLICATE_FIELD, "n"},
        {"duplicate empty key", "{\"\":1,\"\":2}", 0, 32, FPC_DUPLICATE_FIELD,
         NULL}, /* detail not empty */
        {"duplicate CJK key", "{\"名\":1,\"名\":2}", 0, 32, FPC_DUPLICATE_FIELD, "名"},
        {"two duplicates: the first in key order", "{\"b\":1,\"a\":1,\"b\":2,\"a\":2}", 0, 32,
         FPC_DUPLICATE_FIELD, "\"a\""},
        /* escaped NUL, NUL bytes */
        {"escaped NUL in value", "{\"a\":\"x\\u0000y\"}", 0, 32, FPC_MALFORMED_JSON, "\\u0000"},
        {"escaped NUL in key", "{\"\\u0000\":1}", 0, 32, FPC_MALFORMED_JSON, "\\u0000"},
        {"NUL byte after value", "{\"a\":1}\0", 8, 32, FPC_MALFORMED_JSON, "NUL"},
        {"NUL byte in string", "{\"a\":\"x\0y\"}", 11, 32, FPC_MALFORMED_JSON, "NUL"},
        {"NUL byte first", "\0{}", 3, 32, FPC_MALFORMED_JSON, "NUL"},
        /* syntax */
        {"empty", "", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"only whitespace", "  \n", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"trailing garbage", "{\"a\":1} x", 0, 32, FPC_MALFORMED_JSON, "after"},
        {"two values", "{}{}", 0, 32, FPC_MALFORMED_JSON, "after"},
        {"trailing comma", "{\"a\":1,}", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"unterminated object", "{\"a\":1", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"unterminated string", "{\"a\":\"x}", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"single quotes", "{'a':1}", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"bare word", "{\"a\":yes}", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"lone high surrogate escape", "{\"a\":\"\\ud800\"}", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"truncated by length", "{\"a\":1}", 5, 32, FPC_MALFORMED_JSON, NULL},
        /* RFC 8259 forbids these; cJSON alone accepts them */
        {"raw control character in string", "{\"a\":\"x\x01y\"}", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"raw newline in string", "{\"a\":\"x\ny\"}", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"number with a leading zero", "[01]", 0, 32, FPC_MALFORMED_JSON, NULL},
        {"number ending in a dot", "[1.]", 0, 32, FPC_MALFORMED_JSON, NULL},
        /* encoding */
        {"invalid UTF-8 in value", "{\"a\":\"\xC0\x80\"}", 0, 32, FPC_INVALID_UTF8, NULL},
        {"surrogate bytes in key", "{\"\xED\xA0\x80\":1}", 0, 32, FPC_INVALID_UTF8, NULL},
        {"latin-1 byte", "{\"a\":\"caf\xE9\"}", 0, 32, FPC_INVALID_UTF8, NULL},
        /* depth */
        {"depth 2 at limit 2", "{\"a\":[1]}", 0, 2, FPC_NONE, NULL},
        {"depth 3 over limit 2", "{\"a\":[[1]]}", 0, 2, FPC_TOO_DEEP, NULL},
        {"depth 3 over limit 2, objects", "{\"a\":{\"b\":{}}}", 0, 2, FPC_TOO_DEEP, NULL},
        {"siblings do not add depth", "[[1],[2],[3],{\"a\":1},[]]", 0, 2, FPC_NONE, NULL},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("json_parse[%zu] %s", i, cases[i].name);
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].body);
        fp_code code = FPC_NONE;
        char detail[128] = "";
        cJSON *j =
            fp_json_parse(cases[i].body, len, cases[i].max_depth, &code, detail, sizeof detail);
        if (cases[i].code == FPC_NONE) {
            CHECK_MSG(j != NULL, "want success, got code %d (%s)", (int)code, detail);
        } else {
            CHECK(j == NULL);
            CHECK_EQ_INT(code, cases[i].code);
            CHECK(detail[0] != 0);
            if (cases[i].detail)
                CHECK_CONTAINS(detail, cases[i].detail);
        }
        cJSON_Delete(j);
    }

    /* depth limits with generated nesting, at and just over the limit */
    static const struct {
        const char *open, *close, *inner;
        int depth, max;
        fp_code code;
    } deep[] = {
        {"[", "]", "", 32, 32, FPC_NONE},          {"[", "]", "", 33, 32, FPC_TOO_DEEP},
        {"{\"a\":", "}", "1", 31, 32, FPC_NONE},   {"{\"a\":", "}", "{}", 32, 32, FPC_TOO_DEEP},
        {"[", "]", "", 100000, 32, FPC_TOO_DEEP}, /* must not recurse 100000 deep */
        {"[{\"k\":", "}]", "0", 16, 32, FPC_NONE}, {"[{\"k\":", "}]", "[]", 16, 32, FPC_TOO_DEEP},
    };
    for (size_t i = 0; i < NCASES(deep); i++) {
        check_ctx("json_parse depth[%zu] %d x %s, max %d", i, deep[i].depth, deep[i].open,
                  deep[i].max);
        char *s = nested(deep[i].open, deep[i].close, deep[i].depth, deep[i].inner);
        fp_code code = FPC_NONE;
        char detail[128] = "";
        cJSON *j = fp_json_parse(s, strlen(s), deep[i].max, &code, detail, sizeof detail);
        if (deep[i].code == FPC_NONE) {
            CHECK_MSG(j != NULL, "want success, got code %d (%s)", (int)code, detail);
        } else {
            CHECK(j == NULL);
            CHECK_EQ_INT(code, deep[i].code);
        }
        cJSON_Delete(j);
        free(s);
    }

    /* a parsed value is what it says */
    check_ctx("json_parse values");
    fp_code code;
    char detail[64];
    const char *body = "{\"a\":\"\\u53d1\\u7968\",\"b\":[1,2],\"c\":\"x\\n\"}";
    cJSON *j = fp_json_parse(body, strlen(body), 8, &code, detail, sizeof detail);
    if (CHECK(j != NULL)) {
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "a")), "发票");
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "b")), 2);
        CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "c")), "x\n");
    }
    cJSON_Delete(j);
    check_ctx("%s", "");
}

/* An object of more keys than find_dup sorts on the stack (32): a
 * duplicate is still found, the first in key order of several. */
static void test_parse_many_keys(void)
{
    for (int nkeys = 31; nkeys <= 70; nkeys += 13) {
        check_ctx("%d keys", nkeys);
        fp_buf b;
        fp_buf_init(&b, 0);
        fp_buf_puts(&b, "{");
        for (int i = 0; i < nkeys; i++)
            fp_buf_printf(&b, "%s\"k%03d\":%d", i ? "," : "", nkeys - i, i);
        fp_buf_puts(&b, ",\"k005\":0,\"k002\":0}");
        size_t len = 0;
        char *body = fp_buf_take(&b, &len);
        fp_code code = FPC_NONE;
        char detail[128] = "";
        cJSON *j = fp_json_parse(body, len, 32, &code, detail, sizeof detail);
        CHECK(j == NULL);
        CHECK_EQ_INT(code, FPC_DUPLICATE_FIELD);
        CHECK_EQ_STR(detail, "\"k002\"");
        cJSON_Delete(j);
        free(body);
    }
    check_ctx("%s", "");
}

/* ---- fp_buf ---- */

static void test_buf(void)
{
    check_ctx("buf basics");
    fp_buf b;
    fp_buf_init(&b, 0);
    fp_buf_puts(&b, "ab");
    fp_buf_append(&b, "cdef", 2);
    fp_buf_printf(&b, "-%d-%s", 42, "x");
    size_t len = 0;
    char *s = fp_buf_take(&b, &len);
    CHECK_EQ_STR(s, "abcd-42-x");
    CHECK_EQ_INT(len, 9);
    free(s);

    check_ctx("buf empty take");
    fp_buf_init(&b, 0);
    s = fp_buf_take(&b, &len);
    CHECK_EQ_STR(s, "");
    CHECK_EQ_INT(len, 0);
    free(s);

    check_ctx("buf printf longer than its scratch buffer");
    fp_buf_init(&b, 0);
    char big[2000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    fp_buf_printf(&b, "<%s>", big);
    s = fp_buf_take(&b, &len);
    CHECK_EQ_INT(len, sizeof big + 1);
    CHECK(s && s[0] == '<' && s[len - 1] == '>' && s[1000] == 'q');
    free(s);

    check_ctx("buf max: exactly max fits, one more overflows");
    fp_buf_init(&b, 8);
    fp_buf_puts(&b, "12345678");
    CHECK_EQ_INT(b.overflow, 0);
    fp_buf_puts(&b, "9");
    CHECK_EQ_INT(b.overflow, 1);
    fp_buf_puts(&b, "");
    CHECK(fp_buf_take(&b, &len) == NULL);
    fp_buf_free(&b);

    check_ctx("buf reserve: room up front, same text");
    fp_buf_init(&b, 0);
    fp_buf_reserve(&b, 100);
    CHECK(b.p != NULL && b.cap == 100 && b.len == 0 && b.p[0] == 0);
    fp_buf_puts(&b, "ab");
    CHECK(b.cap == 100);
    fp_buf_reserve(&b, 1000); /* not empty: nothing happens */
    CHECK(b.cap == 100);
    s = fp_buf_take(&b, &len);
    CHECK_EQ_STR(s, "ab");
    free(s);

    check_ctx("buf reserve: never beyond max, and max still holds");
    fp_buf_init(&b, 8);
    fp_buf_reserve(&b, 1000);
    CHECK(b.cap == 9);
    fp_buf_puts(&b, "12345678");
    CHECK_EQ_INT(b.overflow, 0);
    fp_buf_puts(&b, "9");
    CHECK_EQ_INT(b.overflow, 1);
    fp_buf_free(&b);

    check_ctx("buf free twice");
    fp_buf_init(&b, 0);
    fp_buf_puts(&b, "x");
    fp_buf_free(&b);
    fp_buf_free(&b);
    CHECK(b.p == NULL);
    check_ctx("%s", "");
}

/* ---- writer ---- */

static void w_empty_obj(fp_jw *w)
{
    fp_jw_obj_open(w);
    fp_jw_obj_close(w);
}

static void w_empty_arr(fp_jw *w)
{
    fp_jw_arr_open(w);
    fp_jw_arr_close(w);
}

static void w_scalars(fp_jw *w)
{
    fp_jw_obj_open(w);
    fp_jw_kstr(w, "s", "x");
    fp_jw_kint(w, "i", -42);
    fp_jw_kbool(w, "t", 1);
    fp_jw_kbool(w, "f", 0);
    fp_jw_key(w, "n");
    fp_jw_null(w);
    fp_jw_kstr(w, "null_str", NULL);
    fp_jw_kint(w, "max", 9223372036854775807LL);
    fp_jw_obj_close(w);
}

static void w_money(fp_jw *w)
{
    fp_jw_obj_open(w);
    fp_jw_kmoney(w, "a", 95400);
    fp_jw_kmoney(w, "b", -5);
    fp_jw_kmoney(w, "c", 0);
    fp_jw_obj_close(w);
}

static void w_escapes(fp_jw *w)
{
    fp_jw_obj_open(w);
    fp_jw_kstr(w, "q", "say \"hi\"");
    fp_jw_kstr(w, "bs", "C:\\dir\\");
    fp_jw_kstr(w, "ws", "a\nb\rc\td");
    fp_jw_kstr(w, "ctl", "\x01\x08\x0c\x1f");
    fp_jw_kstr(w, "del", "\x7f");
    fp_jw_kstr(w, "cjk", "（个人）");
    fp_jw_kstr(w, "slash", "a/b");
    fp_jw_kstr(w, "k\"e\\y\n", "v");
    fp_jw_obj_close(w);
}

static void w_nested(fp_jw *w)
{
    fp_jw_obj_open(w);
    fp_jw_kint(w, "a", 1);
    fp_jw_key(w, "arr");
    fp_jw_arr_open(w);
    fp_jw_int(w, 1);
    fp_jw_str(w, "two");
    fp_jw_obj_open(w);
    fp_jw_kbool(w, "x", 1);
    fp_jw_kstr(w, "y", "z");
    fp_jw_obj_close(w);
    fp_jw_arr_open(w);
    fp_jw_arr_close(w);
    fp_jw_obj_open(w);
    fp_jw_obj_close(w);
    fp_jw_null(w);
    fp_jw_arr_close(w);
    fp_jw_key(w, "obj");
    fp_jw_obj_open(w);
    fp_jw_key(w, "inner");
    fp_jw_obj_open(w);
    fp_jw_kint(w, "d", 4);
    fp_jw_obj_close(w);
    fp_jw_kint(w, "after", 5);
    fp_jw_obj_close(w);
    fp_jw_kint(w, "last", 6);
    fp_jw_obj_close(w);
}

static void w_array_of_objects(fp_jw *w)
{
    fp_jw_arr_open(w);
    for (int i = 0; i < 3; i++) {
        fp_jw_obj_open(w);
        fp_jw_kint(w, "line", i + 1);
        fp_jw_key(w, "tags");
        fp_jw_arr_open(w);
        for (int k = 0; k < i; k++)
            fp_jw_int(w, k);
        fp_jw_arr_close(w);
        fp_jw_obj_close(w);
    }
    fp_jw_arr_close(w);
}

static void w_raw(fp_jw *w)
{
    fp_jw_obj_open(w);
    fp_jw_key(w, "r");
    fp_jw_raw(w, "{\"pre\":[1]}");
    fp_jw_key(w, "s");
    fp_jw_raw(w, "2");
    fp_jw_obj_close(w);
}

static void w_top_array_scalars(fp_jw *w)
{
    fp_jw_arr_open(w);
    fp_jw_str(w, "");
    fp_jw_bool(w, 0);
    fp_jw_int(w, 0);
    fp_jw_raw(w, "1.5");
    fp_jw_arr_close(w);
}

static void test_writer(void)
{
    static const struct {
        const char *name;
        void (*write)(fp_jw *);
        const char *want;
    } cases[] = {
        {"empty object", w_empty_obj, "{}"},
        {"empty array", w_empty_arr, "[]"},
        {"scalars", w_scalars,
         "{\"s\":\"x\",\"i\":-42,\"t\":true,\"f\":false,\"n\":null,\"null_str\":null,"
         "\"max\":9223372036854775807}"},
        {"money", w_money, "{\"a\":\"954.00\",\"b\":\"-0.05\",\"c\":\"0.00\"}"},
        {"escapes", w_escapes,
         "{\"q\":\"say \\\"hi\\\"\",\"bs\":\"C:\\\\dir\\\\\",\"ws\":\"a\\nb\\rc\\td\","
         "\"ctl\":\"\\u0001\\u0008\\u000c\\u001f\",\"del\":\"\x7f\",\"cjk\":\"（个人）\","
         "\"slash\":\"a/b\",\"k\\\"e\\\\y\\n\":\"v\"}"},
        {"nested", w_nested,
         "{\"a\":1,\"arr\":[1,\"two\",{\"x\":true,\"y\":\"z\"},[],{},null],"
         "\"obj\":{\"inner\":{\"d\":4},\"after\":5},\"last\":6}"},
        {"array of objects", w_array_of_objects,
         "[{\"line\":1,\"tags\":[]},{\"line\":2,\"tags\":[0]},{\"line\":3,\"tags\":[0,1]}]"},
        {"raw", w_raw, "{\"r\":{\"pre\":[1]},\"s\":2}"},
        {"array of scalars", w_top_array_scalars, "[\"\",false,0,1.5]"},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("writer[%zu] %s", i, cases[i].name);
        fp_buf b;
        fp_jw w;
        fp_buf_init(&b, 0);
        fp_jw_init(&w, &b);
        cases[i].write(&w);
        CHECK_EQ_INT(w.depth, 0);
        size_t len;
        char *out = fp_buf_take(&b, &len);
        CHECK_EQ_STR(out, cases[i].want);
        if (out) {
            CHECK_EQ_INT(len, strlen(out));
            /* and it is strict JSON */
            fp_code code;
            char detail[64];
            cJSON *j = fp_json_parse(out, len, 32, &code, detail, sizeof detail);
            CHECK_MSG(j != NULL, "writer output does not parse: %s", detail);
            cJSON_Delete(j);
        }
        free(out);
    }

    /* fp_json_escape alone */
    static const struct {
        const char *in, *out;
    } esc[] = {
        {"", ""},
        {"plain", "plain"},
        {"\"", "\\\""},
        {"\\", "\\\\"},
        {"\n\r\t", "\\n\\r\\t"},
        {"\x1b[0m", "\\u001b[0m"},
        {"\x10", "\\u0010"},
        {"a\"b\\c\x01", "a\\\"b\\\\c\\u0001"},
        {"发票\"", "发票\\\""},
    };
    for (size_t i = 0; i < NCASES(esc); i++) {
        check_ctx("json_escape[%zu]", i);
        fp_buf b;
        fp_buf_init(&b, 0);
        fp_json_escape(&b, esc[i].in);
        char *out = fp_buf_take(&b, NULL);
        CHECK_EQ_STR(out, esc[i].out);
        free(out);
    }

    /* a bounded buffer: the writer's overflow surfaces as NULL from take */
    check_ctx("writer overflow");
    fp_buf b;
    fp_jw w;
    fp_buf_init(&b, 16);
    fp_jw_init(&w, &b);
    fp_jw_obj_open(&w);
    fp_jw_kstr(&w, "key", "a value longer than sixteen bytes");
    fp_jw_obj_close(&w);
    CHECK(fp_buf_take(&b, NULL) == NULL);
    check_ctx("%s", "");
}

int main(void)
{
    test_utf8();
    test_parse();
    test_parse_many_keys();
    test_buf();
    test_writer();
    return check_summary();
}
