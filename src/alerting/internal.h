/* internal.h — what the files of src/alerting/ share: the series matcher
 * (match.c) the history and the evaluator both use. */
#ifndef FAPIAO_ALERTING_INTERNAL_H
#define FAPIAO_ALERTING_INTERNAL_H

#include <regex.h>
#include <stddef.h>

#include "fapiao/alerting.h"

#define FP_AMATCH_MAX 4

/* A family name and up to FP_AMATCH_MAX label matchers: k=v (equal) or
 * k=~re (the whole value matches the POSIX extended regex re). */
typedef struct fp_amatch {
    char name[128];
    int n;
    struct {
        char label[64];
        char value[256];
        int is_re;
        regex_t re;
    } m[FP_AMATCH_MAX];
} fp_amatch;

/* metric: the family; match: "k=v,k=~re" or NULL.  0 or FP_EINVAL. */
int fp_amatch_parse(fp_amatch *m, const char *metric, const char *match, fp_err *err);
void fp_amatch_free(fp_amatch *m);
/* 1 when the series key (its family name key[0..name_len)) matches. */
int fp_amatch_key(const fp_amatch *m, const char *key, size_t name_len);

#endif
