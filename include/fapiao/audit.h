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
 * transactions; this module is the format (hashing, signing, key files).
 * The offline side — verifying a database or an exported bundle, exporting,
 * listing, shipping checkpoints — is auditor.h's (src/auditor/), above the
 * store.  docs/audit.md describes the formats and what a verification does
 * and does not prove. */
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

#endif
