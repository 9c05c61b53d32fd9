/* doctor_report.c — the doctor's report: readable text (colour on a
 * terminal) and the JSON document of doctor.h.  Cause and fix come from the
 * knowledge-base article of the verdict's code: the first paragraph of its
 * 原因/Cause and 解决/Fix sections in the wanted language. */
#include "fapiao/doctor.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *status_name(fp_phase_status s)
{
    switch (s) {
    case FP_PHASE_OK:
        return "ok";
    case FP_PHASE_WARN:
        return "warn";
    case FP_PHASE_FAIL:
        return "fail";
    default:
        return "skipped";
    }
}

static const char *sev_name(fp_severity s)
{
    return s == FP_SEV_ERROR ? "error" : s == FP_SEV_WARN ? "warn" : "info";
}

static int has_cjk(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0xe3 && (unsigned char)p[i] <= 0xe9)
            return 1;
    return 0;
}

/* The first paragraph of the section (zh: one with CJK, en: one without),
 * lines joined; "" when there is no article or section. */
static void kb_para(const fp_kb *kb, const char *code, const char *heading, int zh, char *out,
                    size_t n)
{
    out[0] = 0;
    const fp_kb_article *a = kb ? fp_kb_get(kb, code) : NULL;
    const char *body;
    size_t len;
    if (!a || fp_kb_section(a, heading, &body, &len) != 0)
        return;
    const char *p = body, *end = body + len;
    while (p < end) {
        while (p < end && (*p == '\n' || *p == '\r' || *p == ' '))
            p++;
        const char *q = p;
        while (q < end && !(q[0] == '\n' && q + 1 < end && q[1] == '\n'))
            q++;
        if (q > p && has_cjk(p, (size_t)(q - p)) == zh && *p != '-' && *p != '|') {
            size_t o = 0;
            for (const char *s = p; s < q && o + 1 < n; s++)
                out[o++] = *s == '\n' ? (zh ? 0 : ' ') : *s;
            /* zh lines join without a space: drop the NULs */
            size_t w = 0;
            for (size_t i = 0; i < o; i++)
                if (out[i])
                    out[w++] = out[i];
            while (w > 0 && (out[w - 1] == ' ' || out[w - 1] == '\r'))
                w--;
            out[w] = 0;
            return;
        }
        p = q;
    }
}

static const char *title(const fp_finding *f, int zh)
{
    return zh ? f->zh : f->en;
}

char *fp_doctor_json(const fp_doctor_report *r, const fp_kb *kb, int zh)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "url", r->url);
    cJSON_AddStringToObject(root, "scheme", r->scheme);
    cJSON_AddStringToObject(root, "host", r->host);
    cJSON_AddNumberToObject(root, "port", r->port);
    cJSON_AddNumberToObject(root, "exit_code", fp_doctor_exit_code(r));
    const fp_finding *vf = r->verdict ? r->verdict->f : fp_finding_get("OK");
    cJSON *v = cJSON_AddObjectToObject(root, "verdict");
    cJSON_AddStringToObject(v, "code", vf->code);
    cJSON_AddStringToObject(v, "layer", fp_layer_name(vf->layer));
    cJSON_AddStringToObject(v, "severity", sev_name(vf->severity));
    cJSON_AddNumberToObject(v, "exit_code", vf->exit_code);
    cJSON_AddStringToObject(v, "title", title(vf, zh));
    cJSON_AddStringToObject(v, "message", r->verdict ? r->verdict->msg : "");
    char buf[2048];
    kb_para(kb, vf->code, zh ? "## 原因" : "## 原因", zh, buf, sizeof buf);
    cJSON_AddStringToObject(v, "cause", buf);
    kb_para(kb, vf->code, "## 解决", zh, buf, sizeof buf);
    cJSON_AddStringToObject(v, "fix", buf);
    snprintf(buf, sizeof buf, "kb/%s.md", vf->code);
    cJSON_AddStringToObject(v, "article", buf);
    cJSON *warn = cJSON_AddArrayToObject(root, "warnings");
    cJSON *all = cJSON_AddArrayToObject(root, "findings");
    for (int i = 0; i < r->nhits; i++) {
        const fp_doctor_hit *h = &r->hits[i];
        for (int k = 0; k < 2; k++) {
            if (k == 0 && h->f->severity == FP_SEV_ERROR)
                continue;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "code", h->f->code);
            cJSON_AddStringToObject(o, "layer", fp_layer_name(h->f->layer));
            cJSON_AddStringToObject(o, "phase", r->phase[h->phase].name);
            cJSON_AddStringToObject(o, "severity", sev_name(h->f->severity));
            cJSON_AddStringToObject(o, "title", title(h->f, zh));
            cJSON_AddStringToObject(o, "message", h->msg);
            snprintf(buf, sizeof buf, "kb/%s.md", h->f->code);
            cJSON_AddStringToObject(o, "article", buf);
            cJSON_AddItemToArray(k == 0 ? warn : all, o);
        }
    }
    cJSON *ph = cJSON_AddArrayToObject(root, "phases");
    for (int i = 0; i < FP_DOC_NPHASES; i++) {
        const fp_doctor_phase *p = &r->phase[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddStringToObject(o, "status", status_name(p->status));
        cJSON_AddNumberToObject(o, "duration_ms", (double)(long long)(p->ms * 1000) / 1000.0);
        if (p->finding)
            cJSON_AddStringToObject(o, "finding", p->finding);
        else
            cJSON_AddNullToObject(o, "finding");
        cJSON_AddStringToObject(o, "note", p->note);
        cJSON_AddItemToObject(o, "details", cJSON_Duplicate(p->details, 1));
        cJSON_AddItemToArray(ph, o);
    }
    cJSON_AddNumberToObject(root, "total_ms", (double)(long long)(r->total_ms * 1000) / 1000.0);
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

static void print_value(FILE *f, const cJSON *it)
{
    if (cJSON_IsString(it)) {
        fputs(it->valuestring, f);
    } else {
        char *s = cJSON_PrintUnformatted(it);
        if (s) {
            fputs(s, f);
            free(s);
        }
    }
}

void fp_doctor_print(const fp_doctor_report *r, const fp_kb *kb, FILE *f, int color, int zh)
{
    const char *red = color ? "\033[31m" : "", *green = color ? "\033[32m" : "",
               *yellow = color ? "\033[33m" : "", *dim = color ? "\033[2m" : "",
               *bold = color ? "\033[1m" : "", *off = color ? "\033[0m" : "";
    fprintf(f, "%sfapiao doctor %s%s\n", bold, r->url, off);
    for (int i = 0; i < FP_DOC_NPHASES; i++) {
        const fp_doctor_phase *p = &r->phase[i];
        const char *col = p->status == FP_PHASE_OK     ? green
                          : p->status == FP_PHASE_WARN ? yellow
                          : p->status == FP_PHASE_FAIL ? red
                                                       : dim;
        fprintf(f, "  %s%-7s%s %-5s %8.1f ms  %s\n", col, status_name(p->status), off, p->name,
                p->ms, p->note);
        const cJSON *it;
        cJSON_ArrayForEach(it, p->details)
        {
            fprintf(f, "  %s        %s: ", dim, it->string);
            print_value(f, it);
            fprintf(f, "%s\n", off);
        }
        for (int k = 0; k < r->nhits; k++)
            if (r->hits[k].phase == i) {
                const fp_doctor_hit *h = &r->hits[k];
                const char *hc = h->f->severity == FP_SEV_ERROR  ? red
                                 : h->f->severity == FP_SEV_WARN ? yellow
                                                                 : "";
                fprintf(f, "          %s%s%s: %s\n", hc, h->f->code, off, h->msg);
            }
    }
    const fp_finding *vf = r->verdict ? r->verdict->f : fp_finding_get("OK");
    char buf[2048];
    fprintf(f, "\n%s%s%s: %s%s%s — %s\n", bold, zh ? "结论" : "verdict", off,
            r->verdict ? red : green, vf->code, off, title(vf, zh));
    if (r->verdict)
        fprintf(f, "  %s: %s\n", zh ? "发现" : "seen", r->verdict->msg);
    if (r->verdict) {
        kb_para(kb, vf->code, "## 原因", zh, buf, sizeof buf);
        if (buf[0])
            fprintf(f, "  %s: %s\n", zh ? "原因" : "cause", buf);
        kb_para(kb, vf->code, "## 解决", zh, buf, sizeof buf);
        if (buf[0])
            fprintf(f, "  %s: %s\n", zh ? "解决" : "fix", buf);
    } else {
        for (int k = 0; k < r->nhits; k++)
            if (r->hits[k].f->severity != FP_SEV_ERROR)
                fprintf(f, "  %s%s: %s%s — %s\n", yellow, zh ? "提示" : "warning",
                        r->hits[k].f->code, off, r->hits[k].msg);
    }
    fprintf(f, "  %s: kb/%s.md\n", zh ? "文章" : "article", vf->code);
    fprintf(f, "  %s: %d  (%.1f ms)\n", zh ? "退出码" : "exit code", fp_doctor_exit_code(r),
            r->total_ms);
}
