/* findings.h — the finding codes of the connection doctor (and of server
 * alerts), one table: code, layer, exit code, severity and a one-line title
 * in zh-CN and English.  Every code has a knowledge-base article
 * kb/<CODE>.md; a test fails if one is missing. */
#ifndef FAPIAO_FINDINGS_H
#define FAPIAO_FINDINGS_H

typedef enum fp_layer {
    FP_LAYER_NONE = 0, /* healthy */
    FP_LAYER_LOCAL,    /* proxy variables, clock */
    FP_LAYER_DNS,
    FP_LAYER_TCP,
    FP_LAYER_TLS,
    FP_LAYER_HTTP,
    FP_LAYER_API,
    FP_LAYER_SERVER, /* alerts the server raises about itself */
} fp_layer;

typedef enum fp_severity { FP_SEV_INFO = 0, FP_SEV_WARN, FP_SEV_ERROR } fp_severity;

typedef struct fp_finding {
    const char *code; /* "TLS_CERT_EXPIRED" */
    fp_layer layer;
    int exit_code; /* stable per layer: 0 ok, 10 local … 60 api, 70 server */
    fp_severity severity;
    const char *zh, *en;
} fp_finding;

const fp_finding *fp_findings(int *n);
const fp_finding *fp_finding_get(const char *code);
const char *fp_layer_name(fp_layer l);

#endif
