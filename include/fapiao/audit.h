/* audit.h — the tamper-evident audit log: formats, keys and offline checks.
 *
 * Every audit record is a link of a hash chain.  Record i stores prev_hash
 * (the hash of record i-1; 32 zero bytes for record 1) and hash = SHA-256
 * of a canonical, length-prefixed encoding of (id, ts, actor, action,
 * target, request_id, client_ip, outcome[, seller_id, client_request_id],
 * prev_hash): the bracketed fields (migration 7) are hashed, under a
 * version-2 tag, only when one of them is set, so records from before
 * them keep their hashes.  Ids are consecutive
 * (the store assigns them), so a deleted record is a gap, a changed one a
 * hash mismatch and a moved one a record whose hash only fits another id.
 * Checkpoints sign (checkpoint id, upto_id, upto_hash, ts) with the
 * server's Ed25519 key, so whoever can write the database but not read the
 * key cannot re-hash the chain after a change without a checkpoint
 * disagreeing, nor cut the tail off below a checkpoint.
 *
 * The store (store.h) appends records and writes checkpoints inside its
 * transactions; this module is the format (hashing, signing, key files)
 * and the offline side: verifying a database or an exported bundle,
 * exporting and listing.  docs/audit.md describes the formats and what a
 * verification does and does not prove. */
#ifndef FAPIAO_AUDIT_H
#define FAPIAO_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/err.h"

#define FP_AUDIT_HASH_LEN 32
#define FP_AUDIT_SIG_LEN  64
#define FP_AUDIT_KEY_LEN  32 /* Ed25519 seed and public key */

/* What a caller records.  actor, action and outcome are required; target,
 * request_id and client_ip may be NULL (stored as SQL NULL, which hashes
 * differently from "").  seller_id: the seller the record belongs to (a
 * seller-scoped auditor sees it), 0 for an instance-wide record (only
 * operator-auditors see it).  request_id is the server's id of the
 * request; client_request_id the X-Request-Id the client sent, if any. */
typedef struct fp_audit_rec {
    int64_t ts; /* unix seconds; 0: now */
    const char *actor, *action, *target, *request_id, *client_ip, *outcome;
    int64_t seller_id;
    const char *client_request_id;
} fp_audit_rec;

enum {
    FP_AUDIT_ACTOR,
    FP_AUDIT_ACTION,
    FP_AUDIT_TARGET,
    FP_AUDIT_REQUEST_ID,
    FP_AUDIT_CLIENT_IP,
    FP_AUDIT_OUTCOME,
    FP_AUDIT__V1_FIELDS,                      /* the fields of a version-1 record */
    FP_AUDIT_SELLER_ID = FP_AUDIT__V1_FIELDS, /* as decimal text */
    FP_AUDIT_CLIENT_REQUEST_ID,
    FP_AUDIT__FIELDS
};
extern const char *const fp_audit_field_names[FP_AUDIT__FIELDS]; /* column names */

/* A text column as stored: p NULL is SQL NULL, otherwise n bytes. */
typedef struct fp_audit_text {
    const char *p;
    size_t n;
} fp_audit_text;

/* A record as stored.  The hashes are whatever the row holds (NULL, or a
 * blob of any length: a verifier must not trust them). */
typedef struct fp_audit_row {
    int64_t id, ts;
    fp_audit_text f[FP_AUDIT__FIELDS];
    const unsigned char *prev_hash, *hash;
    size_t prev_len, hash_len;
    char seller_text[24]; /* fp_audit_row_from_rec: f[FP_AUDIT_SELLER_ID] points here */
} fp_audit_row;

/* Fills row's id, ts and fields from rec (hashes left NULL). */
void fp_audit_row_from_rec(fp_audit_row *row, int64_t id, const fp_audit_rec *rec);
/* The record hash of row's id, ts and fields linked to prev. */
void fp_audit_hash(const fp_audit_row *row, const unsigned char prev[FP_AUDIT_HASH_LEN],
                   unsigned char out[FP_AUDIT_HASH_LEN]);

/* A signed checkpoint: records 1..upto_id hash to upto_hash. */
typedef struct fp_audit_cp {
    int64_t id, upto_id, ts;
    unsigned char upto_hash[FP_AUDIT_HASH_LEN];
    unsigned char sig[FP_AUDIT_SIG_LEN];
    int malformed; /* a stored blob had the wrong length: never valid */
} fp_audit_cp;

/* Signs cp's id, upto_id, upto_hash and ts into cp->sig (sk: the seed,
 * pk: its public key).  0 or FP_ECRYPTO. */
int fp_audit_cp_sign(fp_audit_cp *cp, const unsigned char sk[FP_AUDIT_KEY_LEN],
                     const unsigned char pk[FP_AUDIT_KEY_LEN]);
/* 1 when cp->sig is pk's signature of cp, else 0. */
int fp_audit_cp_valid(const fp_audit_cp *cp, const unsigned char pk[FP_AUDIT_KEY_LEN]);

/* ---- keys ----
 * DIR/audit.key: the 32-byte Ed25519 seed followed by the 32-byte public
 * key, as 128 lowercase hex digits and a newline, mode 0600.
 * DIR/audit.pub: the public key as 64 hex digits and a newline (mode
 * 0644): copy it somewhere the server cannot write, and verify against
 * that copy. */

/* The key and public-key paths: key_path, or "audit.key" beside db_path;
 * the public key is the key path with ".key" replaced by ".pub" (or
 * ".pub" appended).  FP_ERANGE when cap is too small. */
int fp_audit_key_paths(const char *db_path, const char *key_path, char *key, char *pub, size_t cap);
/* Loads the key, creating it (and the public key) when missing and
 * may_create is set (the caller passes 0 once the log holds a signed
 * checkpoint); a missing key is never made anew while its public key
 * exists.  The key must pass the key-file rule (keyfile.h: 0600 when the
 * service user owns it, 0640 at most when root does); refuses a public key
 * that is not the key's.  FP_ENOTFOUND (with what to restore) when the key
 * is missing and may not be created. */
int fp_audit_key_open(const char *key_path, const char *pub_path, int may_create,
                      unsigned char sk[FP_AUDIT_KEY_LEN], unsigned char pk[FP_AUDIT_KEY_LEN],
                      fp_err *err);
int fp_audit_pub_load(const char *pub_path, unsigned char pk[FP_AUDIT_KEY_LEN], fp_err *err);
/* 0 when hex is exactly 2n hex digits (surrounding white space allowed). */
int fp_audit_unhex(const char *hex, unsigned char *out, size_t n);

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
