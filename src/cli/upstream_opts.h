/* upstream_opts.h — the [upstream] section of the config file: how fapiao
 * reaches the tax platform (docs/upstream.md §6).  One table of keys
 * (upstream_opts.c); the SM4 key is read from key-file (0600, never
 * printed or logged). */
#ifndef FAPIAO_CLI_UPSTREAM_OPTS_H
#define FAPIAO_CLI_UPSTREAM_OPTS_H

#include "config.h"
#include "fapiao/upstream.h"

typedef struct upstream_conf {
    fp_upstream_conf c; /* its strings point into file */
    const char *key_file, *tax_id;
    long upload_batch;     /* invoices per QDFPSC */
    long numbers_batch;    /* numbers per QDFPPLFM */
    long numbers_low;      /* download more below this many left */
    long numbers_check_ms; /* how often serve looks (numkeeper.h) */
    /* the upload worker (upload.h) */
    long upload_poll_ms, upload_backoff_ms, upload_backoff_max_ms;
    long red_check_ms; /* how often serve looks (redkeeper.h) */
    cfg_file *file;
    int configured; /* the file has an [upstream] url */
} upstream_conf;

/* Reads path's (cfg_path(explicit_path)) [upstream] section and the key
 * file.  0, or the number of problems (printed).  A file without the
 * section leaves configured 0 and returns 0. */
int upstream_conf_read(const char *explicit_path, upstream_conf *u);
void upstream_conf_free(upstream_conf *u);
/* The keys with their meaning, for --help. */
void upstream_conf_help(void);
/* `fapiao upstream credit refresh|show` (cmd_upcredit.c); argv[0] "credit". */
int cmd_upstream_credit(int argc, char **argv);

#endif
