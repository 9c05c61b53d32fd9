/* access_log.h — the JSON access log's file (access_log.c): one line per
 * request, one write(2) per line on an O_APPEND descriptor, a size cap with
 * rotation, and a count of the lines the failure budget kept out
 * (docs/security.md, "Authentication failures"). */
#ifndef FAPIAO_SERVER_ACCESS_LOG_H
#define FAPIAO_SERVER_ACCESS_LOG_H

#include "fapiao/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fp_access_log fp_access_log;

/* path "-": standard error (never rotated).  max_bytes > 0: a line that
 * would take the file past it first renames the file to PATH.1 (replacing
 * an older PATH.1) and starts a new one, so the log takes at most about
 * 2 x max_bytes; 0: no cap.  summary_ms: how often at most a line says
 * how many lines were left out. */
int fp_access_log_open(const char *path, int64_t max_bytes, int summary_ms, fp_access_log **out,
                       fp_err *err);
/* Writes the pending left-out count, closes. */
void fp_access_log_close(fp_access_log *l);
/* One whole line, '\n' included.  Thread-safe. */
void fp_access_log_line(fp_access_log *l, const char *line, size_t len);
/* One request not logged (beyond the authentication-failure budget):
 * counted, and reported by a line {"event":"access_log_suppressed",
 * "count":N,...} at most every summary_ms. */
void fp_access_log_suppress(fp_access_log *l);
/* Reopens PATH (for logrotate's move-then-signal; SIGHUP). */
int fp_access_log_reopen(fp_access_log *l, fp_err *err);

typedef struct fp_access_log_stats {
    uint64_t lines, suppressed, rotations;
} fp_access_log_stats;
void fp_access_log_stats_get(fp_access_log *l, fp_access_log_stats *out);

#endif
