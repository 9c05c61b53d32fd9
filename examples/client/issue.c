/* issue.c — issue one invoice through libfapiao-client (docs/client.md).
 *   cc issue.c -lfapiao-client -o issue
 *   ./issue https://erp-fapiao:8443 CLIENT_ID SECRET ca.crt SERIAL invoice.json
 * Run it again with the same SERIAL: the same invoice comes back. */
#include <fapiao-client/client.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 7)
        return fprintf(stderr, "usage: %s URL ID SECRET CA SERIAL FILE\n", argv[0]), 2;
    static char doc[1 << 20];
    FILE *f = fopen(argv[6], "rb");
    size_t len = f ? fread(doc, 1, sizeof doc, f) : 0;
    if (f)
        fclose(f);
    fpc_opts o = {.servers = argv[1],
                  .client_id = argv[2],
                  .client_secret = argv[3],
                  .cacert = argv[4],
                  .deadline_ms = 60000};
    fpc_client *c;
    fpc_error err;
    fpc_result res;
    if (len == 0 || fpc_client_new(&o, &c, &err) < 0)
        return fprintf(stderr, "cannot start: %s\n", len ? err.message : argv[6]), 2;
    int rc = fpc_issue(c, argv[5], doc, len, &res, &err);
    if (rc == 0)
        printf("%s%s\n", res.number, res.replayed ? " (issued before)" : "");
    else /* err.retryable: try again later with the same serial */
        fprintf(stderr, "%s [%s %s] %s\n", err.code, err.finding, err.article, err.message);
    fpc_result_free(&res);
    fpc_client_free(c);
    return rc == 0 ? 0 : err.retryable ? 4 : 3;
}
