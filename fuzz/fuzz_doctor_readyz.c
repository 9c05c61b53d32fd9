/* fuzz_doctor_readyz.c — the doctor's reading of a server's answers
 * (fp_doctor_classify in src/doctor/doctor_parse.c): fapiao's /readyz JSON,
 * the POST /v1/token answer and problem+json, on arbitrary bytes.
 *
 * Input: a first line "STEP STATUS [RETRY-AFTER]" (STEP readyz, token or
 * invoices), then the body.  Without such a line the whole input is the body
 * of a 200 to /readyz.
 * Invariants, each an abort() when broken:
 *  - every finding named is a row of findings.c, its message terminated;
 *  - at most one error, and it comes first (warnings only follow it);
 *  - any 5xx is an error; a 200 to GET /v1/invoices is healthy; a healthy
 *    token answer hands out a non-empty token;
 *  - the phase details stay printable JSON. */
#include "../src/doctor/doctor_parse.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const steps[] = {"readyz", "token", "invoices"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    int step = FP_DOC_STEP_READYZ;
    long status = 200;
    char retry[64] = "";
    const char *body = s;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = 0;
        char name[16];
        long st;
        int n = 0;
        if (sscanf(s, "%15s %ld %n", name, &st, &n) >= 2 && st >= 100 && st <= 599) {
            for (int i = 0; i < 3; i++)
                if (strcmp(name, steps[i]) == 0) {
                    step = i;
                    status = st;
                    snprintf(retry, sizeof retry, "%s", s + n);
                    body = nl + 1;
                }
        }
        if (body == s)
            *nl = '\n';
    }
    fp_doctor_answer a = {.status = status,
                          .body = body,
                          .ctype = "application/json",
                          .retry_after = retry,
                          .location = "https://elsewhere.example/",
                          .host = "fapiao.example"};
    cJSON *details = cJSON_CreateObject();
    fp_doctor_line out[4];
    char token[64];
    memset(out, 0x7f, sizeof out);
    memset(token, 0x7f, sizeof token);
    int n = fp_doctor_classify(step, &a, details, out, 4, token, sizeof token);
    if (n < 0 || n > 4 || !memchr(token, 0, sizeof token))
        abort();
    int errors = 0;
    for (int i = 0; i < n; i++) {
        const fp_finding *f = fp_finding_get(out[i].code);
        if (!f || !memchr(out[i].msg, 0, sizeof out[i].msg))
            abort();
        if (f->severity == FP_SEV_ERROR && (errors++ || i > 0))
            abort();
    }
    if (status >= 500 && !errors)
        abort();
    if (step == FP_DOC_STEP_INVOICES && status == 200 && n)
        abort();
    if (step == FP_DOC_STEP_TOKEN && n == 0 && !token[0])
        abort();
    char *printed = cJSON_PrintUnformatted(details);
    if (!printed)
        abort();
    cJSON *back = cJSON_Parse(printed);
    if (!back)
        abort();
    cJSON_Delete(back);
    free(printed);
    cJSON_Delete(details);
    free(s);
    return 0;
}
