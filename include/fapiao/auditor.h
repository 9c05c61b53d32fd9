/* auditor.h — the auditor's tools over a stored audit log (src/auditor/):
 * verification of a database or an exported bundle, export, listing, and
 * shipping signed checkpoints to an append-only place (docs/audit.md).
 * They read the store; the chain's format they check is audit.h's, which
 * the store uses to write it. */
#ifndef FAPIAO_AUDITOR_H
#define FAPIAO_AUDITOR_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/audit.h"
#include "fapiao/err.h"

struct fp_store; /* store.h */

/* ---- verification ---- */
typedef enum fp_audit_kind {
    FP_AUDIT_INTACT = 0,
    FP_AUDIT_ALTERED,     /* a record's content or hashes were changed */
    FP_AUDIT_RELINKED,    /* a self-consistent record that does not link to its predecessor */
    FP_AUDIT_MISSING,     /* records deleted: a gap, or the beginning of the log */
    FP_AUDIT_REORDERED,   /* a record stored in another record's place */
    FP_AUDIT_UNCHAINED,   /* a record without hashes (inserted behind the store's back) */
    FP_AUDIT_TRUNCATED,   /* a checkpoint covers records past the end of the log */
    FP_AUDIT_CP_FORGED,   /* a checkpoint whose signature does not verify */
    FP_AUDIT_CP_MISMATCH, /* a validly signed checkpoint that disagrees with the chain */
    FP_AUDIT_CP_MISSING,  /* a deleted checkpoint (a gap in their ids) */
    FP_AUDIT_BAD_BUNDLE,  /* a bundle that is cut short, malformed or signed by another key */
    FP_AUDIT__KINDS
} fp_audit_kind;
/* "intact", "altered", "missing", … (stable: used in --json output) */
const char *fp_audit_kind_name(fp_audit_kind k);

typedef struct fp_audit_report {
    int64_t records, first_id, last_id; /* verified records (ids 0: none) */
    int64_t checkpoints;                /* verified checkpoints (the anchor included) */
    int64_t cp_id, cp_upto;             /* the last verified checkpoint (0: none) */
    unsigned char cp_hash[FP_AUDIT_HASH_LEN];
    int64_t anchor_cp;     /* the verification started at this checkpoint (pruned log or
                              --from-checkpoint); 0: at record 1 */
    int64_t unsigned_tail; /* verified records after the last checkpoint */
    fp_audit_kind kind;    /* INTACT, or the first finding */
    int64_t record;        /* the first bad record (0: none or not a record finding) */
    int64_t checkpoint;    /* the checkpoint of a checkpoint finding (0: none) */
    char en[256], zh[256]; /* the finding in words */
    /* Time going backwards (docs/operations.md, "Clock"): not tampering,
     * the chain holds either way, but a clock that stepped back.  Steps of
     * more than FP_AUDIT_TS_TOLERANCE seconds are counted: records whose ts
     * is below an earlier record's, and (database only) invoices whose
     * issued_at is below an earlier stored invoice's. */
    int64_t ts_back, ts_back_first, ts_back_max; /* count, first record id, largest step (s) */
    int64_t inv_back, inv_back_max;
    char inv_back_first[24]; /* the first such invoice's number */
} fp_audit_report;

#define FP_AUDIT_TS_TOLERANCE 60

/* Verifies the database at db_path, opened read-only in one read
 * transaction (a running server may keep writing).  from_cp > 0 starts at
 * that checkpoint's signed hash.  Returns 0 when the verification ran (rep
 * says what it found), FP_ENOTFOUND when from_cp does not exist, FP_EIO
 * when the database cannot be read. */
int fp_audit_verify_db(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN],
                       int64_t from_cp, fp_audit_report *rep, fp_err *err);

/* The same on a store the caller has open (a running server's: one of its
 * read connections, docs/alerting.md "Audit verification"), the chain
 * only: without the invoices' clock check.  A second store opened on the
 * live database in the same process can drop the server's POSIX locks on
 * its files (closing any descriptor of a file does; under ASan it ended in
 * a SIGBUS on -shm), so the server uses this one. */
int fp_audit_verify_store(struct fp_store *s, const unsigned char pk[FP_AUDIT_KEY_LEN],
                          int64_t from_cp, fp_audit_report *rep, fp_err *err);

/* Verifies an exported bundle.  pk NULL: against the public key the bundle
 * names (bundle_pk gets it either way; a bundle naming another key than pk
 * is a finding).  0 when the verification ran, FP_EIO when the file cannot
 * be read. */
int fp_audit_verify_bundle(const char *path, const unsigned char *pk,
                           unsigned char bundle_pk[FP_AUDIT_KEY_LEN], fp_audit_report *rep,
                           fp_err *err);

/* Writes a bundle of records from..to (0: the beginning / the end),
 * widened to checkpoint boundaries so that it verifies on its own: it
 * starts after the last checkpoint before `from` (which it carries as the
 * anchor) and ends at the first checkpoint at or after `to`.  *first and
 * *last get the record ids written (0 when none). */
int fp_audit_export(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN], int64_t from,
                    int64_t to, const char *out_path, int64_t *first, int64_t *last, fp_err *err);

/* Calls fn for the newest `limit` records, newest first. */
int fp_audit_list(const char *db_path, int limit, void (*fn)(const fp_audit_row *r, void *arg),
                  void *arg, fp_err *err);

/* ---- shipping checkpoints (docs/audit.md "Shipping checkpoints") ----
 * Appends the checkpoints the destination does not hold yet, one JSON line
 * each (the bundle's checkpoint lines): dest is a directory (the lines go
 * to DIR/checkpoints.jsonl, opened O_APPEND, fsync'd, so the file may be
 * chattr +a or on a write-once mount) or "cmd:COMMAND" (run by /bin/sh
 * with the new lines on stdin; exit 0 acknowledges them, state_path
 * remembers the last one acknowledged).  *shipped gets how many. */
int fp_audit_ship(const char *db_path, const char *dest, const char *state_path, int64_t *shipped,
                  fp_err *err);

/* Checks the database against shipped checkpoints (a checkpoints.jsonl or
 * the directory holding it): each must carry a valid signature under pk
 * and name the hash the log's record has now.  0 when the check ran (rep
 * says what it found: FP_AUDIT_CP_MISMATCH when the log was rewritten
 * after a checkpoint was shipped). */
int fp_audit_check_shipped(const char *db_path, const unsigned char pk[FP_AUDIT_KEY_LEN],
                           const char *shipped_path, fp_audit_report *rep, fp_err *err);

/* A thread that ships every interval_ms (and once more when stopped). */
typedef struct fp_audit_shipper fp_audit_shipper;
int fp_audit_shipper_start(const char *db_path, const char *dest, int interval_ms,
                           fp_audit_shipper **out, fp_err *err);
void fp_audit_shipper_stop(fp_audit_shipper *sh);

#endif
