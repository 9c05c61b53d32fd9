/* doctor_hook.c — fpc_doctor_diagnose: after a connection-level failure,
 * the doctor's layered checks (src/doctor/) name the cause; its verdict and
 * knowledge-base article replace the guess the curl error gave.  Linked by
 * the fapiao CLI, not by the shared library (include/fapiao-client/doctor.h
 * says why). */
#include "fapiao-client/doctor.h"
#include "fapiao/doctor.h"

#include <stdio.h>
#include <string.h>

void fpc_doctor_diagnose(const char *base_url, const char *cacert, fpc_error *err, void *arg)
{
    (void)arg;
    fp_doctor_opts o = {.url = base_url, .timeout_ms = 5000, .cacert = cacert};
    fp_doctor_report *r = NULL;
    if (fp_doctor_run(&o, &r, NULL) < 0)
        return;
    if (r->verdict) {
        const char *code = r->verdict->f->code;
        snprintf(err->finding, sizeof err->finding, "%s", code);
        snprintf(err->article, sizeof err->article, "kb/%s.md", code);
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, "; doctor: %s (%s)", code,
                 r->verdict->msg);
        n = strlen(err->message_zh);
        snprintf(err->message_zh + n, sizeof err->message_zh - n, "；诊断：%s（%s）", code,
                 r->verdict->msg);
    }
    fp_doctor_report_free(r);
}
