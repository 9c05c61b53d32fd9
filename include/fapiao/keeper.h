/* keeper.h — a keeper thread: the loop the number keeper (numkeeper.h) and
 * the red keeper (redkeeper.h) share.  pass(arg) runs at once and then
 * every every_ms; after a pass that failed (nonzero) the wait doubles, to
 * 60 s, and goes back to every_ms after one that did not.  Stopping wakes
 * the wait; a pass in progress is waited for. */
#ifndef FAPIAO_KEEPER_H
#define FAPIAO_KEEPER_H

#include <stddef.h>

#include "fapiao/err.h"

typedef struct fp_keeper fp_keeper;

/* name: for the error when the thread cannot start ("number keeper"). */
int fp_keeper_start(const char *name, int (*pass)(void *arg), void *arg, long every_ms,
                    fp_keeper **out, fp_err *err);
void fp_keeper_stop(fp_keeper *k); /* NULL: a no-op */

/* msg as text for a JSON log line's string: quotes, backslashes and
 * control characters left out, cut to cap - 1 bytes. */
void fp_keeper_clean(const char *msg, char *out, size_t cap);

#endif
