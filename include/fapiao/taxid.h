/* taxid.h — taxpayer identifiers: the 18-character unified social credit
 * code (USCC, GB 32100-2015) with its check character, and the older 15, 17
 * and 20 character ids, which have no checksum and are accepted with a
 * warning. */
#ifndef FAPIAO_TAXID_H
#define FAPIAO_TAXID_H

typedef enum fp_taxid_kind {
    FP_TAXID_INVALID = 0,
    FP_TAXID_USCC,   /* 18 characters, check character verified */
    FP_TAXID_LEGACY, /* 15/17/20 characters: accept, warn */
} fp_taxid_kind;

/* Check character for the first 17 characters of a USCC, or 0 if they
 * contain a character outside the alphabet. */
char fp_uscc_check_char(const char *first17);
fp_taxid_kind fp_taxid_classify(const char *s);

#endif
