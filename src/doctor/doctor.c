/* doctor.c — the layered connection diagnosis (see doctor.h).  Each layer
 * is a function that fills its phase and adds findings (doctor_net.c,
 * doctor_tls.c, doctor_http.c); the run stops at the first layer with an
 * error.  Network code: c-ares for DNS (so the
 * answer's TTL and the exact failure are visible), plain nonblocking
 * sockets for TCP, GnuTLS on that very socket for TLS (verification is done
 * after the handshake so that every problem gets a name instead of a
 * handshake abort), libcurl pinned to the same address for HTTP/API. */
#include "doctor_internal.h"
#include "doctor_parse.h"

#include <ares.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const phase_names[FP_DOC_NPHASES] = {"local", "dns",  "tcp",
                                                        "tls",   "http", "api"};

int fp_doctor_run(const fp_doctor_opts *o, fp_doctor_report **out, fp_err *err)
{
    *out = NULL;
    if (!o || !o->url)
        return fp_fail(err, FP_EINVAL, "no URL");
    fp_doctor_report *r = calloc(1, sizeof *r);
    if (!r)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    int rc = fp_doctor_parse_url(o->url, r, err);
    if (rc < 0) {
        free(r);
        return rc;
    }
    if (o->dns_server && !fp_doctor_dns_servers_ok(o->dns_server)) {
        free(r);
        return fp_fail(err, FP_EINVAL, "--dns-server wants IP[:port] (IPv6 as [addr]:port)");
    }
    if (o->resolve) {
        char rh[256], ra[INET6_ADDRSTRLEN + 2];
        int rp;
        if (fp_doctor_parse_resolve(o->resolve, rh, sizeof rh, &rp, ra, sizeof ra) < 0) {
            free(r);
            return fp_fail(err, FP_EINVAL,
                           "--resolve wants host:port:addr (addr an IPv4 or IPv6 address)");
        }
    }
    const char *why = NULL;
    if (fp_doc_tls_opts_check(o, &why) < 0) {
        free(r);
        return fp_fail(err, FP_EINVAL, "%s", why);
    }
    if ((o->trusted_dns && !fp_doctor_dns_servers_ok(o->trusted_dns)) ||
        (o->expect_address && !fp_doctor_addr_list_ok(o->expect_address))) {
        free(r);
        return fp_fail(err, FP_EINVAL,
                       "--trusted-dns wants IP[:port], --expect-address IP[,IP…] (IPv4 or IPv6)");
    }
    if (o->client_id && !o->client_secret) {
        free(r);
        return fp_fail(err, FP_EINVAL, "--client-id needs --client-secret");
    }
    for (int i = 0; i < FP_DOC_NPHASES; i++) {
        r->phase[i].name = phase_names[i];
        r->phase[i].details = cJSON_CreateObject();
        r->phase[i].status = FP_PHASE_SKIPPED;
        snprintf(r->phase[i].note, sizeof r->phase[i].note, "skipped (an earlier layer failed)");
    }
    static int inited;
    if (!inited) {
        ares_library_init(ARES_LIB_INIT_ALL);
        gnutls_global_init();
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = 1;
    }
    dctx c = {.o = o, .r = r, .timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 5000, .fd = -1};
    double t0 = fp_doc_now_ms();
    int https = strcmp(r->scheme, "https") == 0;
    int stop = 0;
    fp_doc_layer_local(&c);
    stop = fp_doc_failed(&c, FP_DOC_LOCAL);
    if (!stop) {
        fp_doc_layer_dns(&c);
        stop = fp_doc_failed(&c, FP_DOC_DNS);
    }
    if (!stop) {
        fp_doc_layer_tcp(&c);
        stop = fp_doc_failed(&c, FP_DOC_TCP);
    }
    if (!stop && https) {
        fp_doc_layer_tls(&c);
        stop = fp_doc_failed(&c, FP_DOC_TLS);
    } else if (!stop) {
        r->phase[FP_DOC_TLS].status = FP_PHASE_SKIPPED;
        fp_doc_note(&c, FP_DOC_TLS, "skipped (http://)");
    }
    if (!stop && o->upstream) {
        fp_doc_layer_upstream(&c);
        stop = 1;
    }
    if (!stop) {
        fp_doc_layer_http(&c);
        stop = fp_doc_failed(&c, FP_DOC_HTTP) || r->phase[FP_DOC_HTTP].finding != NULL;
        if (!fp_doc_failed(&c, FP_DOC_HTTP) && stop && r->phase[FP_DOC_HTTP].finding &&
            strcmp(r->phase[FP_DOC_HTTP].finding, "HTTP_REDIRECT") != 0)
            stop = 0; /* warnings such as NUMBER_RANGE_LOW do not stop */
    }
    if (!stop && (o->client_id || o->token)) {
        fp_doc_layer_api(&c);
    } else if (!stop) {
        r->phase[FP_DOC_API].status = FP_PHASE_SKIPPED;
        fp_doc_note(&c, FP_DOC_API, "skipped (no --token or --client-id)");
    }
    if (c.fd >= 0)
        fp_doc_check_clock(&c);
    if (c.fd >= 0)
        close(c.fd);
    if (c.curl)
        curl_easy_cleanup(c.curl);
    r->total_ms = fp_doc_now_ms() - t0;
    /* verdict: the first error by layer order */
    for (int i = 0; i < r->nhits; i++) {
        const fp_doctor_hit *h = &r->hits[i];
        if (h->f->severity != FP_SEV_ERROR)
            continue;
        if (!r->verdict || h->phase < r->verdict->phase)
            r->verdict = h;
    }
    *out = r;
    return 0;
}

void fp_doctor_report_free(fp_doctor_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < FP_DOC_NPHASES; i++)
        cJSON_Delete(r->phase[i].details);
    free(r);
}

int fp_doctor_exit_code(const fp_doctor_report *r)
{
    return r && r->verdict ? r->verdict->f->exit_code : 0;
}

const char *fp_doctor_verdict_code(const fp_doctor_report *r)
{
    return r && r->verdict ? r->verdict->f->code : "OK";
}
