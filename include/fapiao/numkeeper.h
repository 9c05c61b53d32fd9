/* numkeeper.h — the number keeper: with the tax platform configured, `fapiao
 * serve` downloads pre-assigned numbers (预赋码, QDFPPLFM) into a seller's
 * number ranges whenever fewer than `low` of its numbers are left
 * (docs/upstream.md, "Numbers"), so issuing goes on across the end of a
 * range.  One thread: every check_ms (and at start) it compares each
 * enabled seller's numbers left this year with low and downloads `batch`
 * (≤ 5000) at a time, at most 8 per seller and pass, into the same ranges
 * table `fapiao ranges import` writes.  A download's business serial
 * (ywlsh) counts the seller's ranges: a download whose answer was lost is
 * asked again with the same serial, and the platform hands out the same
 * range, which is then stored once.  Failures are logged (one JSON line on
 * stderr with the outcome's kind) and retried at the next pass. */
#ifndef FAPIAO_NUMKEEPER_H
#define FAPIAO_NUMKEEPER_H

#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/store.h"
#include "fapiao/upstream.h"

typedef struct fp_numkeeper fp_numkeeper;

typedef struct fp_numkeeper_opts {
    fp_store *store;
    const fp_upstream_conf *conf; /* kept: must outlive the keeper */
    long batch;                   /* numbers per download (1–5000) */
    long low;                     /* download below this many left */
    long check_ms;                /* between passes */
} fp_numkeeper_opts;

typedef struct fp_numkeeper_stats {
    uint64_t downloads, numbers, failures;
} fp_numkeeper_stats;

int fp_numkeeper_start(const fp_numkeeper_opts *o, fp_numkeeper **out, fp_err *err);
/* Stops the thread (an HTTP call in flight ends within its timeout). */
void fp_numkeeper_stop(fp_numkeeper *k);
void fp_numkeeper_stats_get(fp_numkeeper *k, fp_numkeeper_stats *out);

#endif
