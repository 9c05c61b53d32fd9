/* internal.h — declarations for src/render only: the font and its subsets
 * (pdf_font.c), the PDF file and its content streams (pdf_write.c), the
 * text layer (pdf_text.c: measuring, fitting text into a cell) as the
 * layout (pdf.c) uses them.  Not part of any public header. */
#ifndef FAPIAO_RENDER_INTERNAL_H
#define FAPIAO_RENDER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "fapiao/pdf.h"

/* Geometry is in millimetres, converted to points for the PDF. */
#define MM(v) ((v) * (72.0 / 25.4))

/* Reference size for measuring, line height factor, and where a glyph's
 * visual centre lies above its baseline (in ems; CJK ideographs and digits
 * of WenQuanYi Micro Hei both sit around 0.36 em). */
#define REF_SIZE 10.0
#define LINE_H   1.15
#define CENTRE   0.36

enum { AL_LEFT, AL_CENTRE, AL_RIGHT };

/* ---- the font (pdf_font.c) ---- */

typedef struct fp_pdf_font fp_pdf_font;

int fp_pdf_font_new(const char *path, fp_pdf_font **out, fp_err *err);
void fp_pdf_font_free(fp_pdf_font *f);
/* The glyph id of code point cp (0, .notdef, when the font lacks it). */
unsigned fp_pdf_font_glyph(fp_pdf_font *f, uint32_t cp);
/* A glyph's advance at 1 pt. */
double fp_pdf_font_advance(const fp_pdf_font *f, unsigned gid);
const char *fp_pdf_font_name(const fp_pdf_font *f);
/* A subset of the font's glyphs (the glyphs of one document, or of the
 * form); the fp_pdf_font_… subset functions below work on the selected one. */
typedef struct fp_pdf_subset fp_pdf_subset;
int fp_pdf_subset_new(const fp_pdf_font *f, fp_pdf_subset **out); /* 0 or FP_ENOMEM */
void fp_pdf_subset_free(fp_pdf_subset *s);
/* The id of glyph gid in s, -1 when s lacks it. */
int fp_pdf_subset_id(const fp_pdf_subset *s, unsigned gid);
void fp_pdf_font_select(fp_pdf_font *f, fp_pdf_subset *s);
/* Empties the selected subset (glyph 0 only). */
void fp_pdf_font_begin(fp_pdf_font *f);
/* The subset's id (the CID drawn) of glyph gid, first drawn for code point
 * cp (0: none); 0xffffffff when the subset cannot grow (out of memory, more
 * than 65,535 glyphs, an inconsistent composite glyph). */
uint32_t fp_pdf_font_use(fp_pdf_font *f, unsigned gid, uint32_t cp);
unsigned fp_pdf_font_nused(const fp_pdf_font *f);
/* Width (1000 units per em) and first code point of subset glyph id. */
double fp_pdf_font_used_width(const fp_pdf_font *f, unsigned id);
uint32_t fp_pdf_font_used_cp(const fp_pdf_font *f, unsigned id);
/* In 1000 units per em. */
void fp_pdf_font_metrics(const fp_pdf_font *f, double bbox[4], double *ascent, double *descent,
                         double *cap_height);
void fp_pdf_font_tag(const fp_pdf_font *f, char tag[7]);
/* The subset's TrueType program appended to out. */
int fp_pdf_font_subset(fp_pdf_font *f, fp_buf *out, fp_err *err);
/* The same program, in another glyph order, already compressed: a zlib
 * stream appended to out, its uncompressed length in *raw_len, and the
 * CIDToGIDMap (CID = subset id -> the program's glyph, 2 bytes each)
 * appended to cidmap.  Pieces are kept across documents (pdf_font.c). */
int fp_pdf_font_subset_z(fp_pdf_font *f, fp_buf *out, size_t *raw_len, fp_buf *cidmap, fp_err *err);

/* ---- the renderer ---- */

/* One measured string: one cluster per character (one glyph each with
 * this font): its code point, glyph, advance at 1 pt and byte offset. */
typedef struct meas {
    char *txt; /* the string, control characters blanked */
    size_t txt_cap;
    uint32_t *cp;
    unsigned *gid;
    double *adv;
    int *off; /* per cluster + 1 */
    int cap, ncl;
    uint16_t *dcid;       /* a line about to be drawn, as CIDs */
    unsigned char *dfont; /* and the font of each: 0 the form's, 1 the document's */
    int dcid_cap, dfont_cap;
} meas;

struct libdeflate_compressor;

struct fp_pdf_renderer {
    fp_pdf_font *font;
    /* Two subsets of the one face: the form's (every character of the
     * fixed labels, digits, capital letters, the 大写 numerals), built and
     * compressed once per renderer and copied into every PDF as it is, and
     * the document's (the other characters it draws), built per PDF.  Only
     * the second costs anything per document. */
    fp_pdf_subset *form, *doc;
    fp_buf form_objs;   /* the form font's five objects, ready to copy */
    size_t form_off[5]; /* their offsets in form_objs */
    unsigned ell_gid;   /* "…" */
    double ell_adv;     /* its advance at 1 pt */
    meas m;
    fp_buf cs;   /* a page's content stream */
    fp_buf path; /* the path being built */
    fp_buf prog; /* the font subset's program */
    fp_buf tmp;  /* the ToUnicode CMap, the /W array */
    struct libdeflate_compressor *z;
    unsigned char *zbuf; /* compressed stream */
    size_t zcap;
    size_t *xref; /* object offsets */
    size_t xref_cap;
};

/* ---- a page's content stream (pdf_write.c) ---- */

typedef struct fp_pdf_dc {
    fp_pdf_renderer *r;
    fp_buf *cs, *path;
    fp_err *err;
    int rc;
    double col[3];             /* the colour set by fp_pdf_colour */
    double fill[3], stroke[3]; /* what the stream last set */
    double lw, lw_set;
    int fill_set, stroke_set;
} fp_pdf_dc;

/* The colour of the next text, fill and stroke (like cairo's source). */
void fp_pdf_colour(fp_pdf_dc *c, double r, double g, double b);
void fp_pdf_line_width(fp_pdf_dc *c, double w);
/* Path construction in points, y down (the page's top left is 0, 0). */
void fp_pdf_move(fp_pdf_dc *c, double x, double y);
void fp_pdf_line(fp_pdf_dc *c, double x, double y);
void fp_pdf_rect(fp_pdf_dc *c, double x, double y, double w, double h);
void fp_pdf_stroke(fp_pdf_dc *c);
void fp_pdf_fill(fp_pdf_dc *c);
/* Fills the path built in units of `unit` points from (x, y). */
void fp_pdf_fill_scaled(fp_pdf_dc *c, double x, double y, double unit);
/* n subset glyphs (CIDs, of the form's font where font[i] is 0, else of
 * the document's) at size with the baseline's left end at x, y. */
void fp_pdf_glyphs(fp_pdf_dc *c, const uint16_t *cid, const unsigned char *font, int n, double size,
                   double x, double y);
/* Records a failure once (the first one wins). */
void fp_pdf_dfail(fp_pdf_dc *c, int code, const char *msg);

/* ---- the text (pdf_text.c) ---- */

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

/* ---- the file (pdf_write.c) ---- */

/* Document-wide facts the writer needs. */
typedef struct fp_pdf_meta {
    const char *title;   /* UTF-8 */
    const char *created; /* yyyy-MM-ddTHH:mm:ss[Z|±hh:mm] */
} fp_pdf_meta;

typedef struct fp_pdf_file {
    fp_pdf_renderer *r;
    fp_buf *out;
    size_t start;
    int npages, page, range, nomem;
} fp_pdf_file;

/* The characters of the form (pdf.c): the form font's glyphs. */
extern const char fp_pdf_form_chars[];
/* Builds r->form_objs from the characters; 0 or a FP_E… code (err set). */
int fp_pdf_form_font(fp_pdf_renderer *r, const char *chars, fp_err *err);

/* Starts the file in out (the document's subset begins); 0 or a FP_E… code. */
int fp_pdf_file_begin(fp_pdf_file *f, fp_pdf_renderer *r, fp_buf *out, int npages);
/* A page context whose content stream is ready for drawing. */
void fp_pdf_page_begin(fp_pdf_file *f, fp_pdf_dc *c, fp_err *err);
/* Writes the page drawn into c; 0 or a FP_E… code (err set). */
int fp_pdf_page_end(fp_pdf_file *f, fp_pdf_dc *c, fp_err *err);
/* The font, the catalogue, the xref; 0 or a FP_E… code (err set). */
int fp_pdf_file_end(fp_pdf_file *f, const fp_pdf_meta *meta, fp_err *err);

#endif
