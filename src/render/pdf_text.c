/* pdf_text.c — the PDF's text: one FreeType face given to cairo, strings
 * measured once and fitted into their cells (shrunk, wrapped, cut with
 * "…").  The layout that uses it is pdf.c; why it works this way is said at
 * the top of pdf.c.  Geometry in millimetres (MM()) and font sizes are the
 * only floating point here. */
#include <cairo-ft.h>
#include <cairo.h>
#include <ft2build.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include FT_FREETYPE_H

#include "internal.h"

/* ---- the renderer: the font ---- */

/* FreeType objects, freed by cairo when it drops the last reference to the
 * font face (its caches may outlive the renderer). */
typedef struct ft_hold {
    FT_Library lib;
    FT_Face face;
} ft_hold;

static const cairo_user_data_key_t ft_key;

static void hold_free(void *p)
{
    ft_hold *h = p;
    if (h->face)
        FT_Done_Face(h->face);
    if (h->lib)
        FT_Done_FreeType(h->lib);
    free(h);
}

void fp_pdf_renderer_free(fp_pdf_renderer *r)
{
    if (!r)
        return;
    if (r->ref)
        cairo_scaled_font_destroy(r->ref);
    if (r->face)
        cairo_font_face_destroy(r->face);
    if (r->opts)
        cairo_font_options_destroy(r->opts);
    free(r->m.txt);
    cairo_glyph_free(r->m.gl);
    cairo_text_cluster_free(r->m.cl);
    free(r->m.adv);
    free(r->m.off);
    free(r->m.g0);
    free(r->m.dg);
    free(r->m.dcl);
    free(r->m.ubuf);
    free(r);
}

int fp_pdf_renderer_new(const char *font_path, fp_pdf_renderer **out, fp_err *err)
{
    *out = NULL;
    if (!font_path)
        font_path = FP_PDF_DEFAULT_FONT;
    fp_pdf_renderer *r = calloc(1, sizeof *r);
    ft_hold *h = calloc(1, sizeof *h);
    if (!r || !h) {
        free(r);
        free(h);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    FT_Error fe = FT_Init_FreeType(&h->lib);
    if (fe) {
        hold_free(h);
        free(r);
        return fp_fail(err, fe == FT_Err_Out_Of_Memory ? FP_ENOMEM : FP_EIO,
                       "cannot initialise FreeType (error %d)", fe);
    }
    fe = FT_New_Face(h->lib, font_path, 0, &h->face);
    if (fe || !FT_IS_SCALABLE(h->face)) {
        hold_free(h);
        free(r);
        if (fe == FT_Err_Out_Of_Memory)
            return fp_fail(err, FP_ENOMEM, "out of memory loading font %s", font_path);
        return fp_fail(err, FP_EIO, "cannot load font %s (FreeType error %d%s)", font_path, fe,
                       fe ? "" : ": not a scalable font");
    }
    /* Unhinted: PDF glyphs are outlines, and advances must scale linearly. */
    r->face =
        cairo_ft_font_face_create_for_ft_face(h->face, FT_LOAD_NO_HINTING | FT_LOAD_NO_BITMAP);
    if (cairo_font_face_status(r->face) != CAIRO_STATUS_SUCCESS ||
        cairo_font_face_set_user_data(r->face, &ft_key, h, hold_free) != CAIRO_STATUS_SUCCESS) {
        cairo_font_face_destroy(r->face); /* a nil face when creation failed */
        r->face = NULL;
        hold_free(h);
        fp_pdf_renderer_free(r);
        return fp_fail(err, FP_ENOMEM, "out of memory creating the cairo font face");
    }
    r->opts = cairo_font_options_create();
    cairo_font_options_set_hint_style(r->opts, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(r->opts, CAIRO_HINT_METRICS_OFF);
    cairo_matrix_t fm, ctm;
    cairo_matrix_init_scale(&fm, REF_SIZE, REF_SIZE);
    cairo_matrix_init_identity(&ctm);
    r->ref = cairo_scaled_font_create(r->face, &fm, &ctm, r->opts);
    if (cairo_font_options_status(r->opts) != CAIRO_STATUS_SUCCESS ||
        cairo_scaled_font_status(r->ref) != CAIRO_STATUS_SUCCESS) {
        fp_pdf_renderer_free(r);
        return fp_fail(err, FP_ENOMEM, "cannot create a scaled font from %s", font_path);
    }
    cairo_glyph_t *g = NULL;
    int ng = 0;
    cairo_text_extents_t ext;
    if (cairo_scaled_font_text_to_glyphs(r->ref, 0, 0, "…", 3, &g, &ng, NULL, NULL, NULL) !=
            CAIRO_STATUS_SUCCESS ||
        ng != 1) {
        cairo_glyph_free(g);
        fp_pdf_renderer_free(r);
        return fp_fail(err, FP_EIO, "font %s cannot map characters to glyphs", font_path);
    }
    cairo_scaled_font_glyph_extents(r->ref, g, 1, &ext);
    r->ell_index = g[0].index;
    r->ell_adv = ext.x_advance / REF_SIZE;
    cairo_glyph_free(g);
    *out = r;
    return 0;
}

/* ---- measuring and fitting ---- */

static void dfail(fp_pdf_dc *c, int code, const char *msg)
{
    if (c->rc)
        return;
    c->rc = code;
    fp_fail(c->err, code, "%s", msg);
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
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = (unsigned char)s[i];
        m->txt[i] = (ch && (ch < 0x20 || ch == 0x7f)) ? ' ' : (char)ch;
    }
    cairo_glyph_t *gl = m->gl;
    cairo_text_cluster_t *cl = m->cl;
    int ngl = m->gl_cap, ncl = m->cl_cap;
    cairo_text_cluster_flags_t flags = 0;
    cairo_status_t st = cairo_scaled_font_text_to_glyphs(c->r->ref, 0, 0, m->txt, (int)len, &gl,
                                                         &ngl, &cl, &ncl, &flags);
    /* cairo may have replaced the arrays (then they are ours to free) */
    if (gl != m->gl) {
        cairo_glyph_free(m->gl);
        m->gl = gl;
        m->gl_cap = ngl;
    }
    if (cl != m->cl) {
        cairo_text_cluster_free(m->cl);
        m->cl = cl;
        m->cl_cap = ncl;
    }
    if (st != CAIRO_STATUS_SUCCESS) {
        dfail(c, st == CAIRO_STATUS_NO_MEMORY ? FP_ENOMEM : FP_EINVAL,
              st == CAIRO_STATUS_NO_MEMORY ? "out of memory" : "text cannot be drawn");
        return 0;
    }
    m->ngl = ngl;
    m->ncl = ncl;
    size_t cap = (size_t)m->arr_cap, c2 = cap, c3 = cap;
    if (grow(c, (void **)&m->adv, &cap, (size_t)ncl + 1, sizeof *m->adv) < 0 ||
        grow(c, (void **)&m->off, &c2, (size_t)ncl + 1, sizeof *m->off) < 0 ||
        grow(c, (void **)&m->g0, &c3, (size_t)ncl + 1, sizeof *m->g0) < 0)
        return 0;
    m->arr_cap = (int)cap;
    int off = 0, g = 0;
    for (int i = 0; i < ncl; i++) {
        m->off[i] = off;
        m->g0[i] = g;
        off += m->cl[i].num_bytes;
        g += m->cl[i].num_glyphs;
    }
    m->off[ncl] = off;
    m->g0[ncl] = g;
    for (int i = 0; i < ncl; i++) {
        if (i + 1 < ncl) {
            m->adv[i] = (m->gl[m->g0[i + 1]].x - m->gl[m->g0[i]].x) / REF_SIZE;
        } else {
            cairo_text_extents_t e;
            cairo_scaled_font_glyph_extents(c->r->ref, m->gl + m->g0[i], m->ngl - m->g0[i], &e);
            m->adv[i] = e.x_advance / REF_SIZE;
        }
    }
    return ncl;
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
    size_t ng = (size_t)(m->g0[b] - m->g0[a]) + (ell ? 1 : 0);
    size_t nc = (size_t)(b - a) + (ell ? 1 : 0);
    size_t nb = (size_t)(m->off[b] - m->off[a]) + (ell ? 3 : 0);
    size_t gcap = (size_t)m->dg_cap, ccap = (size_t)m->dcl_cap;
    if (grow(c, (void **)&m->dg, &gcap, ng, sizeof *m->dg) < 0 ||
        grow(c, (void **)&m->dcl, &ccap, nc, sizeof *m->dcl) < 0 ||
        grow(c, (void **)&m->ubuf, &m->ubuf_cap, nb, 1) < 0)
        return;
    m->dg_cap = (int)gcap;
    m->dcl_cap = (int)ccap;
    double s = sz / REF_SIZE, x0 = m->gl[m->g0[a]].x;
    size_t k = 0;
    for (int g = m->g0[a]; g < m->g0[b]; g++, k++) {
        m->dg[k].index = m->gl[g].index;
        m->dg[k].x = x + (m->gl[g].x - x0) * s;
        m->dg[k].y = y;
    }
    memcpy(m->dcl, m->cl + a, (size_t)(b - a) * sizeof *m->dcl);
    memcpy(m->ubuf, m->txt + m->off[a], (size_t)(m->off[b] - m->off[a]));
    if (ell) {
        m->dg[k].index = c->r->ell_index;
        m->dg[k].x = x + fp_pdf_width(m, a, b) * sz;
        m->dg[k].y = y;
        m->dcl[nc - 1].num_bytes = 3;
        m->dcl[nc - 1].num_glyphs = 1;
        memcpy(m->ubuf + nb - 3, "…", 3);
    }
    cairo_set_font_size(c->cr, sz);
    cairo_show_text_glyphs(c->cr, m->ubuf, (int)nb, m->dg, (int)ng, m->dcl, (int)nc, 0);
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
