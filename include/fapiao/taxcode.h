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
/* The same; on a failure in a line, *bad_line is its number (1-based; 0
 * for a failure of the whole file: unreadable, too many rows, a code
 * listed twice).  The layout: docs/taxcodes.md. */
int fp_taxcode_load_at(const char *path, fp_taxcode_table **out, int *bad_line, fp_err *err);
/* Row i (0..count-1) in code order, or NULL. */
const fp_taxcode *fp_taxcode_at(const fp_taxcode_table *t, int i);
void fp_taxcode_free(fp_taxcode_table *t);
const fp_taxcode *fp_taxcode_find(const fp_taxcode_table *t, const char *code);
int fp_taxcode_count(const fp_taxcode_table *t);
/* 1 when a and b hold the same rows (codes, names, rates, summary flags). */
int fp_taxcode_same(const fp_taxcode_table *a, const fp_taxcode_table *b);

#endif
