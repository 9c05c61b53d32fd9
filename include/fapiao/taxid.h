/* taxid.h — taxpayer identifiers: the 18-character unified social credit
 * code (USCC, GB 32100-2015) with its check character, the older 15, 17
 * and 20 character ids, which have no checksum and are accepted with a
 * warning, and, for natural-person buyers, the 18-character resident
 * identity number (GB 11643-1999) with its own check character
 * (docs/domain.md). */
#ifndef FAPIAO_TAXID_H
#define FAPIAO_TAXID_H

typedef enum fp_taxid_kind {
    FP_TAXID_INVALID = 0,
    FP_TAXID_USCC,     /* 18 characters, check character verified */
    FP_TAXID_LEGACY,   /* 15/17/20 characters: accept, warn */
    FP_TAXID_RESIDENT, /* 18-character resident id, check character verified */
} fp_taxid_kind;

/* Check character for the first 17 characters of a USCC, or 0 if they
 * contain a character outside the alphabet. */
char fp_uscc_check_char(const char *first17);
fp_taxid_kind fp_taxid_classify(const char *s);

/* Check character ('0'-'9' or 'X') of a resident identity number from its
 * first 17 characters, or 0 if they are not all digits. */
char fp_resident_id_check_char(const char *first17);
/* 1 if s has the shape of a resident identity number (17 digits, then a
 * digit or X), whatever its check character. */
int fp_resident_id_shape(const char *s);
/* The id of a natural-person buyer: a string of resident-id shape is
 * validated as a resident id only (FP_TAXID_RESIDENT or INVALID), anything
 * else as fp_taxid_classify. */
fp_taxid_kind fp_taxid_classify_person(const char *s);

#endif
