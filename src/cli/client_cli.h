/* client_cli.h — what the client commands (cmd_issue.c, cmd_spool.c) share:
 * their flags, the credential file, the libfapiao-client handle, and how an
 * outcome is printed (docs/client.md). */
#ifndef FAPIAO_CLIENT_CLI_H
#define FAPIAO_CLIENT_CLI_H

#include "fapiao-client/client.h"

#include <stddef.h>

#define CMD_EXIT_REJECTED    3           /* the server refused for good: fix the request */
#define CMD_EXIT_UNAVAILABLE 4           /* the outcome is unknown: run it again, same serial */
#define MAX_DOC              (16u << 20) /* the largest invoice file or batch line read */

struct cJSON;

typedef struct client_args {
    const char *server, *credential, *cacert, *pin, *deadline, *serial, *batch, *out, *spool,
        *state, *timeouts;
    int json;
    const char *pos[2]; /* positional arguments */
    int npos;
} client_args;

/* The flags' help shared by every client command. */
extern const char cli_client_usage[];

/* Parses argv; need_server: --server and --credential (or $FAPIAO_SERVER,
 * $FAPIAO_CREDENTIAL) are required.  -1 after a usage error. */
int cli_client_args(int argc, char **argv, client_args *a, const char *usage, int need_server);
/* A whole file ("-": stdin), at most 16 MiB; NULL with errno. */
char *cli_client_read(const char *path, size_t *len);
/* The client for a's flags (the doctor as its diagnose hook); *cred holds
 * the strings it uses: free it after the client.  NULL after a message. */
fpc_client *cli_client_open(const client_args *a, struct cJSON **cred);
/* GET path with the client for a's flags: 0 with *res filled (free it), or
 * the command's exit code after the error was printed. */
int cli_client_get(const client_args *a, const char *path, fpc_result *res);
/* 3 refused, 4 unavailable, 2 bad argument */
int cli_client_exit(int rc);
void cli_client_print_error(const fpc_error *e);
struct cJSON *cli_client_error_json(const fpc_error *e); /* {code, status, finding, …} */
void cli_client_print_json(struct cJSON *o);             /* prints one line and frees o */
void cli_client_progress(long done, long total, long ok, long failed);
/* issue --spool (cmd_spool.c) */
int cli_spool_issue(const client_args *a);

#endif
