/* fapiao-client/doctor.h — the diagnose hook of libfapiao-client that runs
 * the connection doctor (src/doctor/, docs/doctor.md): DNS, TCP, TLS, HTTP
 * in order, the first failing layer's finding code.  It is not part of the
 * shared library (the doctor needs c-ares and GnuTLS); programs built in the
 * fapiao tree, the fapiao CLI among them, link src/client/doctor_hook.c and
 * set
 *     opts.diagnose = fpc_doctor_diagnose;
 * A connection-level failure then carries the doctor's verdict
 * (TLS_CERT_EXPIRED, TCP_TIMEOUT…) and its article instead of the guess
 * from curl's error. */
#ifndef FAPIAO_CLIENT_DOCTOR_H
#define FAPIAO_CLIENT_DOCTOR_H

#include "fapiao-client/client.h"

/* arg: unused (NULL).  Bounded by the doctor's per-step timeout (5 s). */
void fpc_doctor_diagnose(const char *base_url, const char *cacert, fpc_error *err, void *arg);

#endif
