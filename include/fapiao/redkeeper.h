/* redkeeper.h — the red keeper: with the tax platform configured, `fapiao
 * serve` files every red form made through the API on the platform
 * (QDHZQRDSQ) and follows its state there (CXQDHZQRDMX) while it waits for
 * the other side (docs/upstream.md, "Red forms").  One thread: every
 * check_ms (and at start) it takes the forms the store names as due
 * (fp_store_red_forms_upstream): a form not yet filed is filed under a
 * business serial made from its number, so a filing whose answer was lost
 * is asked again with the same serial and the platform answers with the
 * form it already made; a filed form awaiting the buyer or seller is
 * looked up.  The platform's uuid, number and state are stored on the
 * form, and our state follows the platform's (fp_up_red_state's table):
 * a red invoice is issued only on a form the platform confirmed or needs
 * no confirmation for.  Our answers (the reviewer's confirm / reject of a
 * form the buyer filed, our withdraw of one we filed) wait on the form
 * (fp_store_red_form_answer) and are sent with QDHZQRDQR after a look at
 * the form, so a lost reply never sends one twice; and each pass lists
 * the forms buyers filed about each seller's invoices that await the
 * seller (CXQDHZQRDLB, state 03) and takes each in once
 * (fp_store_red_form_adopt), awaiting_seller.  Failures are logged (one JSON line on stderr with
 * the outcome's kind) and retried at the next pass, waiting longer after
 * each failure (to 60 s). */
#ifndef FAPIAO_REDKEEPER_H
#define FAPIAO_REDKEEPER_H

#include <stdint.h>

#include "fapiao/err.h"
#include "fapiao/store.h"
#include "fapiao/upstream.h"

typedef struct fp_redkeeper fp_redkeeper;

typedef struct fp_redkeeper_opts {
    fp_store *store;
    const fp_upstream_conf *conf; /* kept: must outlive the keeper */
    long check_ms;                /* between passes */
} fp_redkeeper_opts;

typedef struct fp_redkeeper_stats {
    uint64_t filed, synced, failures;
} fp_redkeeper_stats;

int fp_redkeeper_start(const fp_redkeeper_opts *o, fp_redkeeper **out, fp_err *err);
/* Stops the thread (an HTTP call in flight ends within its timeout). */
void fp_redkeeper_stop(fp_redkeeper *k);
void fp_redkeeper_stats_get(fp_redkeeper *k, fp_redkeeper_stats *out);

#endif
