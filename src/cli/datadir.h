/* datadir.h — the data directory's layout, in one place (datadir.c): the
 * files `fapiao init` makes and `serve`, `check`, `audit` and the other
 * commands find there.  The secrets among them: docs/security.md, "Secrets
 * at rest". */
#ifndef FAPIAO_CLI_DATADIR_H
#define FAPIAO_CLI_DATADIR_H

#include <stddef.h>

typedef enum {
    CLI_DD_DB,          /* fapiao.db: the store (SQLite; -wal, -shm beside it) */
    CLI_DD_LOCK,        /* fapiao.lock: held by the one fapiao serve */
    CLI_DD_TLS_DIR,     /* tls/ */
    CLI_DD_TLS_CERT,    /* tls/server.crt */
    CLI_DD_TLS_KEY,     /* tls/server.key */
    CLI_DD_TOKEN_KEY,   /* token.key: signs access tokens */
    CLI_DD_AUDIT_KEY,   /* audit.key (+ .pub): signs audit checkpoints */
    CLI_DD_WEBHOOK_KEY, /* webhook.key: seals webhook secrets */
    CLI_DD_TAXCODES,    /* taxcodes.csv: the tax classification codes */
    CLI_DD_ACCESS_LOG,  /* access.log */
    CLI_DD_PDF_DIR,     /* pdf/: rendered invoices */
    CLI_DD_CONSOLE_KEY, /* console.key: seals the console users' TOTP seeds */
    CLI_DD__N
} cli_dd_file;

/* The file's name inside the data directory ("tls/server.crt"). */
const char *cli_dd_name(cli_dd_file f);
/* DIR/name into out (cap bytes): 0, or -1 when it does not fit (out then
 * holds as much as fits). */
int cli_dd_path(char *out, size_t cap, const char *dir, cli_dd_file f);

#endif
