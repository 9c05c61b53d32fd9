/* internal.h — declarations for src/render only: the PDF's text layer
 * (pdf_text.c: the font, measuring, fitting text into a cell) as the layout
 * (pdf.c) uses it.  Not part of any public header. */
#ifndef FAPIAO_RENDER_INTERNAL_H
#define FAPIAO_RENDER_INTERNAL_H

#include <cairo.h>
#include <stddef.h>

#include "fapiao/pdf.h"

/* Geometry is in millimetres, converted to points for cairo. */
#define MM(v) ((v) * (72.0 / 25.4))

/* Reference size for measuring, line height factor, and where a glyph's
 * visual centre lies above its baseline (in ems; CJK ideographs and digits
 * of WenQuanYi Micro Hei both sit around 0.36 em). */
#define REF_SIZE 10.0
#define LINE_H   1.15
#define CENTRE   0.36

enum { AL_LEFT, AL_CENTRE, AL_RIGHT };

/* One measured string: clusters (one per character with this font) with
 * their advance at 1 pt, byte offset and first glyph; glyphs at REF_SIZE. */
typedef struct meas {
    char *txt; /* the string, control characters blanked */
    size_t txt_cap;
    cairo_glyph_t *gl; /* allocated by cairo_glyph_allocate */
    int ngl, gl_cap;
    cairo_text_cluster_t *cl; /* allocated by cairo_text_cluster_allocate */
    int ncl, cl_cap;
    double *adv; /* per cluster */
    int *off;    /* per cluster + 1: byte offsets */
    int *g0;     /* per cluster + 1: first glyph */
    int arr_cap;
    /* a line about to be drawn */
    cairo_glyph_t *dg;
    int dg_cap;
    cairo_text_cluster_t *dcl;
    int dcl_cap;
    char *ubuf;
    size_t ubuf_cap;
} meas;

struct fp_pdf_renderer {
    cairo_font_face_t *face;
    cairo_font_options_t *opts;
    cairo_scaled_font_t *ref; /* REF_SIZE, for measuring */
    unsigned long ell_index;  /* "…" */
    double ell_adv;           /* its advance at 1 pt */
    meas m;
};

typedef struct fp_pdf_dc {
    fp_pdf_renderer *r;
    cairo_t *cr;
    fp_err *err;
    int rc;
} fp_pdf_dc;

/* Measures s into c->r->m; returns the number of clusters (0 for an empty
 * string or on failure, which sets c->rc). */
int fp_pdf_measure(fp_pdf_dc *c, const char *s);
/* Width of clusters [a, b) of a measured string at 1 pt. */
double fp_pdf_width(const meas *m, int a, int b);
/* Draws s inside the box (x, y, w, h in mm): at size if it fits on one
 * line, else at the largest size down to min_size at which it fits on one
 * line or (wrap_ok) on as many lines as the box holds; failing that, at
 * min_size on as many lines as fit, the last cut with "…".  Nothing is
 * drawn outside the box.  align: AL_LEFT, AL_CENTRE, AL_RIGHT. */
void fp_pdf_text_box(fp_pdf_dc *c, const char *s, double x, double y, double w, double h,
                     double size, double min_size, int align, int wrap_ok);
/* One line of text, left-aligned at x with its centre at cy (mm); returns
 * its width in mm. */
double fp_pdf_label(fp_pdf_dc *c, const char *s, double x, double cy, double size);
/* Characters of s stacked top to bottom, centred in the column (x, y, w, h). */
void fp_pdf_vertical(fp_pdf_dc *c, const char *s, double x, double y, double w, double h,
                     double size);

#endif
