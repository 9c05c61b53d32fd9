/* taxcode.h — tax classification codes (税收分类编码): 19 digits, level
 * structure, and the table (code, short name 简称, allowed rates, summary
 * flag) loaded from a CSV file that operators replace when the bureau
 * publishes a new one.  The repository ships only a small sample table
 * (data/taxcodes-sample.csv), labelled as such. */
#ifndef FAPIAO_TAXCODE_H
#define FAPIAO_TAXCODE_H

#include "fapiao/err.h"

typedef struct fp_taxcode_table fp_taxcode_table;

typedef struct fp_taxcode {
    char code[20];
    char short_name[96];
    int rates_bp[8]; /* allowed rates in basis points */
    int nrates;
    int summary; /* 汇总项: not usable on an invoice */
} fp_taxcode;

/* Syntax and level structure: 19 digits, first digit 1-6, and once a
 * two-digit level is 00 every later level is 00 too. */
int fp_taxcode_valid_shape(const char *code);

/* CSV: code,short_name,rates(;-separated, e.g. 0.13;0.09),summary(0/1).
 * Lines starting with '#' and a header line starting with "code" are
 * skipped. */
int fp_taxcode_load(const char *path, fp_taxcode_table **out, fp_err *err);
void fp_taxcode_free(fp_taxcode_table *t);
const fp_taxcode *fp_taxcode_find(const fp_taxcode_table *t, const char *code);
int fp_taxcode_count(const fp_taxcode_table *t);

#endif
