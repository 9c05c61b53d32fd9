/* tls_gen.c — one loaded generation of certificate chain, key and OCSP
 * response (tls_internal.h): freeing it, and the private copy each
 * handshake parses from it (tls.c's opening comment says why a copy). */
#include "tls_internal.h"

#include <gnutls/ocsp.h>
#include <gnutls/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp_tls_log(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fapiao: tls: %s\n", msg);
}

void fp_tls_fmt_time(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

void fp_tls_wipe_free(gnutls_datum_t *d)
{
    if (d->data) {
        gnutls_memset(d->data, 0, d->size);
        free(d->data);
    }
    d->data = NULL;
    d->size = 0;
}

void fp_tls_gen_free(tls_gen *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < g->nchain; i++)
        free(g->chain[i].data);
    fp_tls_wipe_free(&g->key);
    free(g->ocsp.data);
    free(g);
}

/* Copies a GnuTLS-allocated datum into malloc'd memory and frees it. */
int fp_tls_take_datum(gnutls_datum_t *src, gnutls_datum_t *dst)
{
    dst->data = malloc(src->size ? src->size : 1);
    if (!dst->data) {
        gnutls_memset(src->data, 0, src->size);
        gnutls_free(src->data);
        return -1;
    }
    memcpy(dst->data, src->data, src->size);
    dst->size = src->size;
    gnutls_memset(src->data, 0, src->size);
    gnutls_free(src->data);
    src->data = NULL;
    return 0;
}

/* The one way a key is turned into what a handshake signs with: the
 * certificate callback (retrieve), the check at load and the test
 * handshake all go through here.  The stored form is unencrypted PKCS#8
 * DER: it names the algorithm and the curve itself.  (GnuTLS's
 * gnutls_x509_privkey_export2 of an EC key read from PKCS#8 writes a SEC1
 * structure without its curve, which imports as a key on no curve:
 * handshakes then fail or crash — issue 13, item 3.) */
int fp_tls_import_handshake_key(const gnutls_datum_t *der, gnutls_privkey_t *out)
{
    gnutls_privkey_t key = NULL;
    int rc = gnutls_privkey_init(&key);
    if (rc < 0)
        return rc;
    if ((rc = gnutls_privkey_import_x509_raw(key, der, GNUTLS_X509_FMT_DER, NULL,
                                             GNUTLS_PKCS_PLAIN)) < 0) {
        gnutls_privkey_deinit(key);
        return rc;
    }
    *out = key;
    return 0;
}

static void free_copies(gnutls_pcert_st *pc, unsigned npc, gnutls_privkey_t key,
                        gnutls_ocsp_data_st *ocsp)
{
    for (unsigned i = 0; i < npc; i++)
        gnutls_pcert_deinit(&pc[i]);
    gnutls_free(pc);
    gnutls_privkey_deinit(key);
    if (ocsp)
        gnutls_free(ocsp->response.data);
    gnutls_free(ocsp);
}

/* A private copy of generation g for one session: GnuTLS frees it with
 * the session (GNUTLS_CERT_RETR_DEINIT_ALL).  The key goes through
 * fp_tls_import_handshake_key, like the checks at load. */
int fp_tls_gen_copy(const tls_gen *g, gnutls_pcert_st **certs, unsigned *ncerts,
                    gnutls_ocsp_data_st **ocsp, unsigned *nocsp, gnutls_privkey_t *pkey)
{
    gnutls_pcert_st *pc = NULL;
    gnutls_privkey_t key = NULL;
    gnutls_ocsp_data_st *od = NULL;
    unsigned npc = 0;
    int rc = GNUTLS_E_MEMORY_ERROR;
    pc = gnutls_calloc(g->nchain, sizeof *pc);
    if (!pc)
        goto fail;
    for (; npc < g->nchain; npc++)
        if ((rc = gnutls_pcert_import_x509_raw(&pc[npc], &g->chain[npc], GNUTLS_X509_FMT_DER, 0)) <
            0)
            goto fail;
    if ((rc = fp_tls_import_handshake_key(&g->key, &key)) < 0)
        goto fail;
    if (g->ocsp.size) {
        rc = GNUTLS_E_MEMORY_ERROR;
        if (!(od = gnutls_calloc(1, sizeof *od)) ||
            !(od->response.data = gnutls_malloc(g->ocsp.size)))
            goto fail;
        memcpy(od->response.data, g->ocsp.data, g->ocsp.size);
        od->response.size = g->ocsp.size;
        od->exptime = g->ocsp_exptime;
    }
    *certs = pc;
    *ncerts = npc;
    *pkey = key;
    *ocsp = od;
    *nocsp = od ? 1 : 0;
    return 0;
fail:
    free_copies(pc, npc, key, od);
    return rc < 0 ? rc : GNUTLS_E_INTERNAL_ERROR;
}
