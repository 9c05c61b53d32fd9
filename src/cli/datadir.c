/* datadir.c — the data directory's file names (datadir.h). */
#include "datadir.h"

#include <stdio.h>

static const char *const names[CLI_DD__N] = {
    [CLI_DD_DB] = "fapiao.db",
    [CLI_DD_LOCK] = "fapiao.lock",
    [CLI_DD_TLS_DIR] = "tls",
    [CLI_DD_TLS_CERT] = "tls/server.crt",
    [CLI_DD_TLS_KEY] = "tls/server.key",
    [CLI_DD_TOKEN_KEY] = "token.key",
    [CLI_DD_AUDIT_KEY] = "audit.key",
    [CLI_DD_WEBHOOK_KEY] = "webhook.key",
    [CLI_DD_TAXCODES] = "taxcodes.csv",
    [CLI_DD_ACCESS_LOG] = "access.log",
    [CLI_DD_PDF_DIR] = "pdf",
    [CLI_DD_CONSOLE_KEY] = "console.key",
};

const char *cli_dd_name(cli_dd_file f)
{
    return (unsigned)f < CLI_DD__N ? names[f] : "";
}

int cli_dd_path(char *out, size_t cap, const char *dir, cli_dd_file f)
{
    int n = snprintf(out, cap, "%s/%s", dir, cli_dd_name(f));
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}
