/* tlsgen.h — a self-signed server certificate for a demo or test install
 * (ECDSA P-256, SAN 127.0.0.1, ::1 and localhost), written as PEM files
 * with the key readable by the owner only. */
#ifndef FAPIAO_TLSGEN_H
#define FAPIAO_TLSGEN_H

#include "fapiao/err.h"

int fp_tls_selfsigned(const char *cert_path, const char *key_path, int days, fp_err *err);

#endif
