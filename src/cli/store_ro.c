/* store_ro.c — the store opened read-only for the commands that only look
 * (ranges list, keys list, outbox list): no migration, no writer, no
 * checkpoint signed on close, and a cleanly stopped database's files keep
 * every byte (store.h fp_store_opts.read_only). */
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "fapiao/store.h"

fp_store *cli_open_store_ro(const char *dir)
{
    char db[PATH_MAX];
    snprintf(db, sizeof db, "%s/fapiao.db", dir);
    if (cli_check_data_dir(dir, 0, NULL, NULL) < 0)
        return NULL;
    fp_store_opts o = {.path = db, .read_conns = 1, .read_only = 1};
    fp_store *s = NULL;
    fp_err err = {0};
    if (fp_store_open(&o, &s, &err) < 0) {
        cli_fail("无法打开数据库", "cannot open the database", err.msg);
        return NULL;
    }
    return s;
}
