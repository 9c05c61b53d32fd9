/* test_taxcode.c — taxcode.h: the shape of a 19-digit tax classification
 * code, loading the sample table, lookups, and refusing broken tables with a
 * message that names the file and line. */
#include "check.h"

#include "fapiao/err.h"
#include "fapiao/taxcode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FP_SOURCE_DIR
#error "FP_SOURCE_DIR must be defined by the build"
#endif
#define SAMPLE FP_SOURCE_DIR "/data/taxcodes-sample.csv"

static void test_shape(void)
{
    static const struct {
        const char *code;
        int valid;
    } cases[] = {
        {"3040201000000000000", 1},
        {"1090511030000000000", 1},
        {"1010101010000000000", 1},
        {"1000000000000000000", 1}, /* only the first level */
        {"6999999999999999999", 1}, /* all ten levels */
        {"5010101010101010101", 1},
        {"2000000000000000000", 1},
        {"304020100000000000", 0},   /* 18 digits */
        {"30402010000000000000", 0}, /* 20 digits */
        {"", 0},
        {"0040201000000000000", 0}, /* first digit 0 */
        {"7040201000000000000", 0}, /* first digit 7 */
        {"9040201000000000000", 0},
        {"3040001000000000000", 0}, /* a 00 level followed by 01 */
        {"3000000000000000001", 0},
        {"3040201000000000001", 0},
        {"1000000000000000010", 0},
        {"304020100000000000a", 0},
        {"30402010000000000 0", 0},
        {" 304020100000000000", 0},
        {"3040201000000000000\n", 0},
        {"３040201000000000000", 0}, /* full-width digit */
        {"-304020100000000000", 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("valid_shape[%zu] \"%s\"", i, cases[i].code);
        CHECK_EQ_INT(fp_taxcode_valid_shape(cases[i].code), cases[i].valid);
    }
    check_ctx("valid_shape(NULL)");
    CHECK_EQ_INT(fp_taxcode_valid_shape(NULL), 0);
    check_ctx("%s", "");
}

static void test_sample(void)
{
    check_ctx("load sample %s", SAMPLE);
    fp_taxcode_table *t = NULL;
    fp_err err = {0};
    int rc = fp_taxcode_load(SAMPLE, &t, &err);
    if (!CHECK_MSG(rc == 0 && t, "load failed: %d %s", rc, err.msg))
        return;
    CHECK_EQ_INT(fp_taxcode_count(t), 8);

    static const struct {
        const char *code;
        const char *short_name; /* NULL: not found */
        int rates[8], nrates, summary;
    } cases[] = {
        {"3040201000000000000", "信息技术服务", {600, 300, 100, 0}, 4, 0},
        {"3040200000000000000", "信息技术服务", {600}, 1, 1},
        {"1090511030000000000", "计算机配套产品", {1300, 300, 100}, 3, 0},
        {"1010101010000000000", "谷物", {900, 300, 100, 0}, 4, 0},
        {"3010101000000000000", "陆路运输服务", {900, 300, 100}, 3, 0},
        {"3040502000000000000", "咨询服务", {600, 300, 100}, 3, 0},
        {"3040203000000000000", NULL, {0}, 0, 0}, /* well-formed, not in the table */
        {"1000000000000000000", NULL, {0}, 0, 0},
        {"6999999999999999999", NULL, {0}, 0, 0}, /* beyond the last row */
        {"304020100000000000", NULL, {0}, 0, 0},  /* a prefix of a listed code */
        {"", NULL, {0}, 0, 0},
        {"code", NULL, {0}, 0, 0}, /* the header is not a row */
        /* a listed code followed by more characters is a different code */
        {"30402010000000000001", NULL, {0}, 0, 0},
        {"3040201000000000000 ", NULL, {0}, 0, 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        check_ctx("find[%zu] \"%s\"", i, cases[i].code);
        const fp_taxcode *c = fp_taxcode_find(t, cases[i].code);
        if (!cases[i].short_name) {
            CHECK_MSG(c == NULL, "found %s for \"%s\"", c ? c->code : "", cases[i].code);
            continue;
        }
        if (!CHECK(c != NULL))
            continue;
        CHECK_EQ_STR(c->code, cases[i].code);
        CHECK_EQ_STR(c->short_name, cases[i].short_name);
        CHECK_EQ_INT(c->summary, cases[i].summary);
        if (CHECK_EQ_INT(c->nrates, cases[i].nrates))
            for (int k = 0; k < c->nrates; k++)
                CHECK_EQ_INT(c->rates_bp[k], cases[i].rates[k]);
    }
    check_ctx("find(NULL)");
    CHECK(fp_taxcode_find(t, NULL) == NULL);
    CHECK(fp_taxcode_find(NULL, "3040201000000000000") == NULL);
    CHECK_EQ_INT(fp_taxcode_count(NULL), 0);
    fp_taxcode_free(t);
    fp_taxcode_free(NULL); /* a no-op */
    check_ctx("%s", "");
}

/* Tables written to a fresh temporary directory. */
static char tmpdir[64];

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(content, f);
    fclose(f);
}

static void test_bad_files(void)
{
    static char long_line[1400];
    memset(long_line, 0, sizeof long_line);
    strcpy(long_line, "3040201000000000000,");
    memset(long_line + strlen(long_line), 'x', 1100);
    strcat(long_line, ",0.06,0\n");

    static const struct {
        const char *name, *content;
        int rc;
        const char *msg; /* substring of err.msg */
        int count;       /* rows when rc == 0 */
    } cases[] = {
        {"ok.csv", "code,short_name,rates,summary\n3040201000000000000,信息技术服务,0.06,0\n", 0,
         NULL, 1},
        {"crlf.csv", "# comment\r\n3040201000000000000,信息技术服务,0.06;0.03,0\r\n\r\n", 0, NULL,
         1},
        {"no_final_newline.csv", "3040201000000000000,信息技术服务,0.06,0", 0, NULL, 1},
        {"three_columns.csv", "3040201000000000000,信息技术服务,0.06\n", FP_EINVAL, "4 fields", 0},
        {"five_columns.csv", "3040201000000000000,信息技术服务,0.06,0,extra\n", FP_EINVAL,
         "4 fields", 0},
        {"one_column.csv", "3040201000000000000\n", FP_EINVAL, "4 fields", 0},
        {"bad_rate.csv", "3040201000000000000,信息技术服务,0.06;six,0\n", FP_EINVAL, "bad rate", 0},
        {"percent_rate.csv", "3040201000000000000,信息技术服务,6%,0\n", FP_EINVAL, "bad rate", 0},
        {"rate_100.csv", "3040201000000000000,信息技术服务,1,0\n", FP_EINVAL, "bad rate", 0},
        {"negative_rate.csv", "3040201000000000000,信息技术服务,-0.06,0\n", FP_EINVAL, "bad rate",
         0},
        {"nine_rates.csv", "3040201000000000000,x,0.13;0.09;0.06;0.05;0.03;0.015;0.01;0;0.02,0\n",
         FP_EINVAL, "bad rate", 0},
        {"duplicate.csv",
         "3040201000000000000,信息技术服务,0.06,0\n1010101010000000000,谷物,0.09,0\n"
         "3040201000000000000,信息技术服务,0.03,0\n",
         FP_EINVAL, "3040201000000000000", 0},
        {"bad_code.csv", "304020100000000000,信息技术服务,0.06,0\n", FP_EINVAL, ":1:", 0},
        {"bad_code_line3.csv", "# c\n3040201000000000000,a,0.06,0\n7040201000000000000,b,0.06,0\n",
         FP_EINVAL, ":3:", 0},
        {"empty_name.csv", "3040201000000000000,,0.06,0\n", FP_EINVAL, "short name", 0},
        {"long_line.csv", long_line, FP_EINVAL, "too long", 0},
    };
    for (size_t i = 0; i < NCASES(cases); i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", tmpdir, cases[i].name);
        write_file(path, cases[i].content);
        check_ctx("load %s", cases[i].name);
        fp_taxcode_table *t = NULL;
        fp_err err = {0};
        int rc = fp_taxcode_load(path, &t, &err);
        CHECK_EQ_INT(rc, cases[i].rc);
        if (cases[i].rc == 0) {
            CHECK(t != NULL);
            CHECK_EQ_INT(fp_taxcode_count(t), cases[i].count);
        } else {
            CHECK(t == NULL);
            CHECK_EQ_INT(err.code, cases[i].rc);
            CHECK_CONTAINS(err.msg, cases[i].msg);
            CHECK_CONTAINS(err.msg, cases[i].name); /* the message names the file */
        }
        fp_taxcode_free(t);
        unlink(path);
    }

    check_ctx("load a missing file");
    char path[128];
    snprintf(path, sizeof path, "%s/does-not-exist.csv", tmpdir);
    fp_taxcode_table *t = NULL;
    fp_err err = {0};
    CHECK_EQ_INT(fp_taxcode_load(path, &t, &err), FP_EIO);
    CHECK(t == NULL);
    CHECK_EQ_INT(err.code, FP_EIO);
    CHECK_CONTAINS(err.msg, "does-not-exist.csv");

    check_ctx("load with a NULL fp_err");
    CHECK_EQ_INT(fp_taxcode_load(path, &t, NULL), FP_EIO);

    check_ctx("load a directory");
    t = NULL;
    int rc = fp_taxcode_load(tmpdir, &t, &err);
    CHECK(rc < 0);
    CHECK(t == NULL);
    fp_taxcode_free(rc == 0 ? t : NULL);
    check_ctx("%s", "");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fp_test_taxcode_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_shape();
    test_sample();
    test_bad_files();
    rmdir(tmpdir);
    return check_summary();
}
