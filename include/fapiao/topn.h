/* topn.h — counters per key (a seller, a client) with a cardinality cap:
 * the N keys with the most counts get their own series, every other key
 * adds to one series labelled "other" (docs/alerting.md, "Per seller and
 * per client").
 *
 * The N slots are handed out at scrape time to the keys with the largest
 * counts while slots are free, and a key keeps its slot until the process
 * restarts: a counter that changed hands would go backwards, which
 * Prometheus's rate() reads as a reset.  A key's own series counts from
 * when it got its slot; what it counted before stays in "other", so both
 * only ever grow (at the first scrape nothing was shown yet, and the keys
 * that get a slot then bring their whole count).  A key literally named "other" never gets a slot.
 * At most FP_TOPN_KEYS distinct keys are remembered; beyond them counts go to "other" straight
 * away.  Thread-safe. */
#ifndef FAPIAO_TOPN_H
#define FAPIAO_TOPN_H

#include <stdint.h>

#include "fapiao/json.h"

#define FP_TOPN_KEYS 4096
#define FP_TOPN_KEY  72 /* longer keys are cut (a client id has 64 at most) */

typedef struct fp_topn fp_topn;

/* n: the slots (>= 1).  NULL when out of memory. */
fp_topn *fp_topn_new(int n);
void fp_topn_free(fp_topn *t);
void fp_topn_inc(fp_topn *t, const char *key);
/* Appends the counter family `name` with one label: up to n keys and
 * "other" (always present). */
void fp_topn_metrics(fp_topn *t, fp_buf *b, const char *name, const char *help, const char *label);

#endif
