/* pdf_text.c — the PDF's text: the renderer (its font, loaded once, see
 * pdf_font.c), strings measured once and fitted into their cells (shrunk,
 * wrapped, cut with "…"), drawn as runs of subset glyphs (pdf_write.c).
 * The layout that uses it is pdf.c.  Geometry in millimetres (MM()) and
 * font sizes are the only floating point here.
 *
 * Measuring: one cluster per character, the character's glyph from the
 * font's cmap and its advance from hmtx (unhinted, so advances scale
 * linearly with the size); fitting is then arithmetic on those advances. */
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The deflate level of the PDF's streams: 1.  The font's outlines barely
 * compress at any level (49 KB to 31 KB at 6, 33 KB at 1), and level 6
 * costs twice the whole render's CPU time of level 1
 * (docs/render-performance.md). */
#define DEFLATE_LEVEL 1

void fp_pdf_renderer_free(fp_pdf_renderer *r)
{
    if (!r)
        return;
    fp_pdf_subset_free(r->form);
    fp_pdf_subset_free(r->doc);
    fp_buf_free(&r->form_objs);
    fp_pdf_font_free(r->font);
    if (r->z)
        libdeflate_free_compressor(r->z);
    free(r->m.txt);
    free(r->m.cp);
    free(r->m.gid);
    free(r->m.adv);
    free(r->m.off);
    free(r->m.dcid);
    free(r->m.dfont);
    fp_buf_free(&r->cs);
    fp_buf_free(&r->path);
    fp_buf_free(&r->prog);
    fp_buf_free(&r->tmp);
    free(r->zbuf);
    free(r->xref);
    free(r);
}

int fp_pdf_renderer_new(const char *font_path, fp_pdf_renderer **out, fp_err *err)
{
    *out = NULL;
    if (!font_path)
        font_path = FP_PDF_DEFAULT_FONT;
    fp_pdf_renderer *r = calloc(1, sizeof *r);
    if (!r)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    int rc = fp_pdf_font_new(font_path, &r->font, err);
    if (rc) {
        free(r);
        return rc;
    }
    fp_buf_init(&r->cs, FP_PDF_MAX_PDF);
    fp_buf_init(&r->path, FP_PDF_MAX_PDF);
    fp_buf_init(&r->prog, FP_PDF_MAX_PDF);
    fp_buf_init(&r->tmp, FP_PDF_MAX_PDF);
    r->z = libdeflate_alloc_compressor(DEFLATE_LEVEL);
    if (!r->z) {
        fp_pdf_renderer_free(r);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    r->ell_gid = fp_pdf_font_glyph(r->font, 0x2026);
    if (r->ell_gid == 0) {
        fp_pdf_renderer_free(r);
        return fp_fail(err, FP_EIO, "font %s cannot map characters to glyphs", font_path);
    }
    r->ell_adv = fp_pdf_font_advance(r->font, r->ell_gid);
    fp_buf_init(&r->form_objs, FP_PDF_MAX_PDF);
    if (fp_pdf_subset_new(r->font, &r->form) < 0 || fp_pdf_subset_new(r->font, &r->doc) < 0) {
        fp_pdf_renderer_free(r);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    if ((rc = fp_pdf_form_font(r, fp_pdf_form_chars, err)) < 0) {
        fp_pdf_renderer_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- measuring and fitting ---- */

static void dfail(fp_pdf_dc *c, int code, const char *msg)
{
    fp_pdf_dfail(c, code, msg);
}

static int grow(fp_pdf_dc *c, void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) {
        dfail(c, FP_ENOMEM, "out of memory");
        return -1;
    }
    *p = np;
    *cap = nc;
    return 0;
}

/* The code point at s[*i] (strict UTF-8: no overlong forms, surrogates or
 * values past U+10FFFF), *i moved past it; -1 when invalid. */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char c0 = s[*i];
    if (c0 < 0x80) {
        (*i)++;
        return c0;
    }
    int n = c0 >= 0xf0 ? 3 : c0 >= 0xe0 ? 2 : c0 >= 0xc2 ? 1 : -1;
    if (n < 0 || c0 > 0xf4 || *i + (size_t)n >= len)
        return -1;
    uint32_t cp = c0 & (0x3fu >> n);
    for (int k = 1; k <= n; k++) {
        if ((s[*i + (size_t)k] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[*i + (size_t)k] & 0x3f);
    }
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += (size_t)n + 1;
    return (int32_t)cp;
}

/* Measures s into c->r->m; returns the number of clusters (0 for an empty
 * string or on failure). */
int fp_pdf_measure(fp_pdf_dc *c, const char *s)
{
    meas *m = &c->r->m;
    if (c->rc || !s || !*s)
        return 0;
    size_t len = strlen(s);
    if (len > INT32_MAX / 2) {
        dfail(c, FP_EINVAL, "text too long");
        return 0;
    }
    if (grow(c, (void **)&m->txt, &m->txt_cap, len + 1, 1) < 0)
        return 0;
    size_t cap = (size_t)m->cap, c2 = cap, c3 = cap, c4 = cap;
    if (grow(c, (void **)&m->cp, &cap, len + 1, sizeof *m->cp) < 0 ||
        grow(c, (void **)&m->gid, &c2, len + 1, sizeof *m->gid) < 0 ||
        grow(c, (void **)&m->adv, &c3, len + 1, sizeof *m->adv) < 0 ||
        grow(c, (void **)&m->off, &c4, len + 1, sizeof *m->off) < 0)
        return 0;
    m->cap = (int)cap;
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = (unsigned char)s[i];
        m->txt[i] = (ch && (ch < 0x20 || ch == 0x7f)) ? ' ' : (char)ch;
    }
    const unsigned char *u = (const unsigned char *)m->txt;
    int n = 0;
    for (size_t i = 0; i < len;) {
        m->off[n] = (int)i;
        int32_t cp = utf8_next(u, len, &i);
        if (cp < 0) {
            dfail(c, FP_EINVAL, "text cannot be drawn");
            return 0;
        }
        unsigned g = fp_pdf_font_glyph(c->r->font, (uint32_t)cp);
        m->cp[n] = (uint32_t)cp;
        m->gid[n] = g;
        m->adv[n] = fp_pdf_font_advance(c->r->font, g);
        n++;
    }
    m->off[n] = (int)len;
    m->ncl = n;
    return n;
}

double fp_pdf_width(const meas *m, int a, int b)
{
    double w = 0;
    for (int i = a; i < b; i++)
        w += m->adv[i];
    return w;
}

/* 1 if cluster i is a printable ASCII character other than a blank. */
static int latin_word(const meas *m, int i)
{
    unsigned char ch = (unsigned char)m->txt[m->off[i]];
    return ch > ' ' && ch < 0x80;
}

/* Greedy line breaking of the measured text at size sz into lines no wider
 * than w (points); starts[] gets up to max line starts.  Returns the number
 * of lines needed, counting at most max + 1. */
static int wrap(const meas *m, double sz, double w, int *starts, int max, int words)
{
    int lines = 0, i = 0;
    while (i < m->ncl && lines <= max) {
        if (lines > 0)
            while (i < m->ncl && m->txt[m->off[i]] == ' ')
                i++; /* no blank at the start of a continuation line */
        if (i >= m->ncl)
            break;
        if (lines < max)
            starts[lines] = i;
        lines++;
        int start = i;
        double x = m->adv[i] * sz;
        i++;
        while (i < m->ncl && x + m->adv[i] * sz <= w)
            x += m->adv[i++] * sz;
        /* Chinese breaks anywhere; a Latin word moves to the next line
         * whole when the line has a blank to break at */
        if (words && i < m->ncl && latin_word(m, i) && latin_word(m, i - 1)) {
            int k = i - 1;
            while (k > start && m->txt[m->off[k]] != ' ')
                k--;
            if (k > start)
                i = k;
        }
    }
    return lines;
}

/* Draws clusters [a, b) of the measured text, plus "…" when ell, at size sz
 * with the left end at x and the baseline at y (points). */
static void draw_run(fp_pdf_dc *c, int a, int b, int ell, double sz, double x, double y)
{
    meas *m = &c->r->m;
    if (c->rc || (a >= b && !ell))
        return;
    size_t ng = (size_t)(b - a) + (ell ? 1 : 0);
    size_t cap = (size_t)m->dcid_cap;
    if (grow(c, (void **)&m->dcid, &cap, ng, sizeof *m->dcid) < 0)
        return;
    m->dcid_cap = (int)cap;
    size_t fcap = (size_t)m->dfont_cap;
    if (grow(c, (void **)&m->dfont, &fcap, ng, 1) < 0)
        return;
    m->dfont_cap = (int)fcap;
    fp_pdf_renderer *r = c->r;
    size_t k = 0;
    for (int i = a; i <= b; i++) {
        int last = i == b;
        if (last && !ell)
            break;
        unsigned gid = last ? r->ell_gid : m->gid[i];
        uint32_t cp = last ? 0x2026 : m->cp[i];
        int id = fp_pdf_subset_id(r->form, gid);
        if (id >= 0) {
            m->dfont[k] = 0;
        } else {
            uint32_t d = fp_pdf_font_use(r->font, gid, cp);
            if (d == 0xffffffffu) {
                dfail(c, FP_ENOMEM, "out of memory");
                return;
            }
            id = (int)d;
            m->dfont[k] = 1;
        }
        m->dcid[k++] = (uint16_t)id;
    }
    fp_pdf_glyphs(c, m->dcid, m->dfont, (int)k, sz, x, y);
}

/* Draws s inside the box (x, y, w, h in mm): at size if it fits on one
 * line, else at the largest size down to min_size at which it fits on one
 * line or (wrap) on as many lines as the box holds; failing that, at
 * min_size on as many lines as fit, the last cut with "…".  Nothing is
 * drawn outside the box. */
void fp_pdf_text_box(fp_pdf_dc *c, const char *s, double x, double y, double w, double h,
                     double size, double min_size, int align, int wrap_ok)
{
    enum { MAXL = 16 };
    meas *m = &c->r->m;
    int n = fp_pdf_measure(c, s);
    if (n == 0)
        return;
    double wp = MM(w), hp = MM(h), total = fp_pdf_width(m, 0, n);
    int starts[MAXL + 1], nl = 1, ell = 0;
    double sz = size;
    for (;;) {
        if (sz < min_size)
            sz = min_size;
        int maxl = wrap_ok ? (int)(hp / (sz * LINE_H)) : 1;
        if (maxl < 1)
            maxl = 1;
        if (maxl > MAXL)
            maxl = MAXL;
        starts[0] = 0;
        if (total * sz <= wp) {
            nl = 1;
            break;
        }
        if (maxl > 1 && (nl = wrap(m, sz, wp, starts, maxl, 1)) <= maxl)
            break;
        if (sz <= min_size) {
            /* Latin words broken where they must, else cut */
            nl = maxl > 1 ? wrap(m, sz, wp, starts, maxl, 0) : 2; /* 2: does not fit */
            if (nl > maxl) {
                nl = maxl;
                ell = 1;
            }
            break;
        }
        sz -= 0.5;
    }
    starts[nl] = n;
    double lh = sz * LINE_H, top = MM(y) + (hp - nl * lh) / 2;
    for (int i = 0; i < nl; i++) {
        int a = starts[i], b = starts[i + 1];
        int cut = ell && i == nl - 1;
        double lw;
        if (cut) {
            /* as much of the rest as fits with the "…" */
            double room = wp - c->r->ell_adv * sz;
            b = a;
            lw = 0;
            while (b < n && lw + m->adv[b] * sz <= room)
                lw += m->adv[b++] * sz;
            lw += c->r->ell_adv * sz;
        } else {
            /* trailing blanks do not count when aligning */
            while (b > a + 1 && m->txt[m->off[b - 1]] == ' ')
                b--;
            lw = fp_pdf_width(m, a, b) * sz;
        }
        double lx = MM(x);
        if (align == AL_RIGHT)
            lx += wp - lw;
        else if (align == AL_CENTRE)
            lx += (wp - lw) / 2;
        double base = top + i * lh + lh / 2 + CENTRE * sz;
        draw_run(c, a, b, cut, sz, lx, base);
    }
}

/* One line of text, left-aligned at x with its centre at cy (mm); returns
 * its width in mm. */
double fp_pdf_label(fp_pdf_dc *c, const char *s, double x, double cy, double size)
{
    int n = fp_pdf_measure(c, s);
    if (n == 0)
        return 0;
    double w = fp_pdf_width(&c->r->m, 0, n) * size;
    draw_run(c, 0, n, 0, size, MM(x), MM(cy) + CENTRE * size);
    return w * 25.4 / 72.0;
}

/* Characters of s stacked top to bottom, centred in the column (x, y, w, h). */
void fp_pdf_vertical(fp_pdf_dc *c, const char *s, double x, double y, double w, double h,
                     double size)
{
    int n = fp_pdf_measure(c, s);
    if (n == 0)
        return;
    double pitch = size * 1.12 * 25.4 / 72.0;
    double cy = y + (h - n * pitch) / 2 + pitch / 2;
    for (int i = 0; i < n; i++, cy += pitch) {
        meas *m = &c->r->m;
        draw_run(c, i, i + 1, 0, size, MM(x + w / 2) - m->adv[i] * size / 2,
                 MM(cy) + CENTRE * size);
    }
}
