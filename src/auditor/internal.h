/* internal.h — what the audit folder's files share (not a public header):
 * the verifier (verify.c) that the database and bundle sources feed, the
 * database read through the store (a read-only snapshot), and the bundle/checkpoint line helpers
 * that export (export.c) and shipping (sink.c) reuse.  verify.c depends on nothing here but itself;
 * bundle.c and export.c on verify.c; sink.c on both. */
#ifndef FAPIAO_AUDIT_INTERNAL_H
#define FAPIAO_AUDIT_INTERNAL_H

#include "fapiao/audit.h"
#include "fapiao/auditor.h"
#include "fapiao/crypto.h"
#include "fapiao/json.h"
#include "fapiao/store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fapiao/json.h"

typedef struct verifier {
    const unsigned char *pk;
    fp_audit_report *rep;
    int64_t start;                         /* the first record id expected */
    int64_t next_id;                       /* the id the next record must have */
    unsigned char head[FP_AUDIT_HASH_LEN]; /* hash of record next_id - 1 (or the anchor) */
    int64_t last_cp_id;                    /* the last checkpoint seen (sequence) */
    int64_t last_cp_upto;                  /* where the last verified checkpoint ends */
    int64_t prune_upto, prune_cp;          /* the log starts after a prune at prune_upto */
    int prune_seen;
    int have_trunc; /* a checkpoint beyond the records seen so far */
    fp_audit_cp trunc;
    /* the record whose stored hash is h (for the reorder diagnosis); 1 found */
    int (*find)(void *arg, const unsigned char h[FP_AUDIT_HASH_LEN], int64_t *id);
    void *find_arg;
    int done;
    int64_t max_ts; /* the latest record time seen */
} verifier;

/* bundles: JSON lines (docs/audit.md) */
#define BUNDLE_LINE_MAX (1 << 20)
#define BUNDLE_FORMAT   "fapiao-audit-bundle"
#define BUNDLE_VERSION  1

/* Records the verifier's first finding; en and zh are printf formats
 * sharing the arguments. */
__attribute__((format(printf, 5, 7))) int fp_av_found(verifier *v, fp_audit_kind k, int64_t record,
                                                      int64_t cp, const char *en, const char *zh,
                                                      ...);

/* fn on a read snapshot of the audit log of the database at db_path (a
 * store opened read-only: store.h fp_store_audit_snapshot): fn's result,
 * or an error opening it (FP_ENOTFOUND: no such database). */
int fp_av_snapshot(const char *db_path, int (*fn)(fp_audit_snap *a, void *arg), void *arg,
                   fp_err *err);
int fp_av_anchor(verifier *v, const fp_audit_cp *cp, int pruned);
int fp_av_checkpoint(verifier *v, const fp_audit_cp *cp);
void fp_av_end(verifier *v);
void fp_av_genesis(verifier *v, fp_audit_report *rep, const unsigned char *pk);
int fp_av_record(verifier *v, const fp_audit_row *r);
long fp_av_read_line(FILE *f, char *buf, size_t cap);
const char *fp_av_json_type(const cJSON *o);
int fp_av_parse_cp(const cJSON *o, fp_audit_cp *cp);
void fp_av_write_cp_line(fp_buf *b, const fp_audit_cp *cp);
int fp_av_json_i64(const cJSON *o, const char *k, int64_t *v);

#endif
