/* pdf_write.c — the PDF file itself, written directly: the content stream
 * of each page (rules, rectangles, text as glyph runs of one CID font), the
 * embedded font subset with its ToUnicode map, the catalogue and the xref.
 *
 * Why not cairo (docs/render-performance.md): for this one fixed layout,
 * cairo spent most of a render replaying its recording surface, printing
 * numbers with printf and compressing with zlib at its default level; the
 * layout needs only lines, filled rectangles and text, which this file
 * writes in a few microseconds.  The operators used are the ones cairo
 * wrote for the same drawing (the page starts with a y-down matrix, so the
 * layout's coordinates are cairo's), so the page looks the same.
 *
 * Two fonts, both subsets of the one face (internal.h says why): /f0 the
 * form's, whose objects are built once per renderer and copied into every
 * file as they are, and /f1 the document's.  Object numbers are fixed:
 * 1 catalogue, 2 page tree, 3 document info, 4..8 the form's font and 9..14
 * the document's (each: the Type0 font, its CIDFontType2, the font
 * descriptor, the font program (FontFile2), the ToUnicode CMap; the
 * document's also a CIDToGIDMap, its program being assembled from kept
 * pieces in its own glyph order, see pdf_font.c), then per page i the page
 * (15 + 2i) and its content stream (16 + 2i).  Streams are
 * compressed with libdeflate (zlib format, FlateDecode); the form font's at
 * libdeflate's highest level, since that is paid once. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define OBJ_CATALOG 1
#define OBJ_PAGES   2
#define OBJ_INFO    3
#define OBJ_FORM    4 /* the form's font, 5 objects */
#define OBJ_DOC     9 /* the document's font, 5 objects */
/* within a font's five: */
#define O_FONT      0
#define O_CIDFONT   1
#define O_DESC      2
#define O_PROG      3
#define O_TOUNI     4
#define O_CIDMAP    5 /* the document's font only: its CIDToGIDMap */
#define OBJ_PAGE(i) (15 + 2 * (i))
#define NOBJ(np)    (15 + 2 * (np)) /* with object 0 */
#define FORM_LEVEL  12

#define PAGE_W_PT 683.149606 /* 241 mm */
#define PAGE_H_PT 396.850394 /* 140 mm */

/* ---- numbers and small writers ---- */

/* v with at most `decimals` decimals (3 or 6), trailing zeros dropped. */
static void numd(fp_buf *b, double v, int decimals)
{
    char s[32], *p = s + sizeof s;
    int neg = v < 0;
    if (neg)
        v = -v;
    if (v > 1e12)
        v = 1e12;
    unsigned scale = decimals == 6 ? 1000000 : 1000;
    unsigned long long m = (unsigned long long)(v * scale + 0.5);
    unsigned frac = (unsigned)(m % scale);
    unsigned long long whole = m / scale;
    if (frac) {
        int digits = decimals;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        for (int i = 0; i < digits; i++) {
            *--p = (char)('0' + frac % 10);
            frac /= 10;
        }
        *--p = '.';
    }
    do {
        *--p = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    if (neg && m)
        *--p = '-';
    fp_buf_append(b, p, (size_t)(s + sizeof s - p));
}

/* Path coordinates and widths: 3 decimals (what cairo writes). */
static void num(fp_buf *b, double v)
{
    numd(b, v, 3);
}

static void lit(fp_buf *b, const char *s)
{
    fp_buf_append(b, s, strlen(s));
}

static void uint_(fp_buf *b, unsigned long long v)
{
    char s[24], *p = s + sizeof s;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    fp_buf_append(b, p, (size_t)(s + sizeof s - p));
}

static void hex4(fp_buf *b, unsigned v)
{
    static const char hx[] = "0123456789abcdef";
    char s[4] = {hx[(v >> 12) & 15], hx[(v >> 8) & 15], hx[(v >> 4) & 15], hx[v & 15]};
    fp_buf_append(b, s, 4);
}

/* ---- the content stream ---- */

void fp_pdf_dfail(fp_pdf_dc *c, int code, const char *msg)
{
    if (c->rc)
        return;
    c->rc = code;
    fp_fail(c->err, code, "%s", msg);
}

void fp_pdf_colour(fp_pdf_dc *c, double r, double g, double b)
{
    c->col[0] = r;
    c->col[1] = g;
    c->col[2] = b;
}

void fp_pdf_line_width(fp_pdf_dc *c, double w)
{
    c->lw = w;
}

static void rgb(fp_pdf_dc *c, double *have, int *set, const char *op)
{
    if (*set && memcmp(have, c->col, sizeof c->col) == 0)
        return;
    memcpy(have, c->col, sizeof c->col);
    *set = 1;
    for (int i = 0; i < 3; i++) {
        num(c->cs, c->col[i]);
        fp_buf_append(c->cs, " ", 1);
    }
    lit(c->cs, op);
}

/* Path operators go to their own buffer: the colour and width must be set
 * before a path starts, and only stroke or fill says which applies. */
static void point(fp_pdf_dc *c, double x, double y, const char *op)
{
    num(c->path, x);
    fp_buf_append(c->path, " ", 1);
    num(c->path, y);
    lit(c->path, op);
}

void fp_pdf_move(fp_pdf_dc *c, double x, double y)
{
    point(c, x, y, " m ");
}

void fp_pdf_line(fp_pdf_dc *c, double x, double y)
{
    point(c, x, y, " l ");
}

void fp_pdf_rect(fp_pdf_dc *c, double x, double y, double w, double h)
{
    point(c, x, y, " ");
    point(c, w, h, " re ");
}

static void stroke_state(fp_pdf_dc *c);

static void paint(fp_pdf_dc *c, const char *op)
{
    if (c->path->overflow)
        c->cs->overflow = 1;
    else
        fp_buf_append(c->cs, c->path->p, c->path->len);
    c->path->len = 0;
    lit(c->cs, op);
}

void fp_pdf_stroke(fp_pdf_dc *c)
{
    if (c->path->len == 0)
        return;
    stroke_state(c);
    paint(c, "S\n");
}

void fp_pdf_fill(fp_pdf_dc *c)
{
    if (c->path->len == 0)
        return;
    rgb(c, c->fill, &c->fill_set, "rg\n");
    paint(c, "f\n");
}

void fp_pdf_fill_scaled(fp_pdf_dc *c, double x, double y, double unit)
{
    if (c->path->len == 0)
        return;
    rgb(c, c->fill, &c->fill_set, "rg\n");
    fp_buf *b = c->cs;
    lit(b, "q ");
    numd(b, unit, 6);
    lit(b, " 0 0 ");
    numd(b, unit, 6);
    fp_buf_append(b, " ", 1);
    numd(b, x, 6);
    fp_buf_append(b, " ", 1);
    numd(b, y, 6);
    lit(b, " cm\n");
    paint(c, "f Q\n");
}

void fp_pdf_glyphs(fp_pdf_dc *c, const uint16_t *cid, const unsigned char *font, int n, double size,
                   double x, double y)
{
    fp_buf *b = c->cs;
    rgb(c, c->fill, &c->fill_set, "rg\n");
    lit(b, "BT ");
    num(b, size);
    lit(b, " 0 0 ");
    num(b, -size);
    fp_buf_append(b, " ", 1);
    num(b, x);
    fp_buf_append(b, " ", 1);
    num(b, y);
    lit(b, " Tm");
    /* one Tj per run of one font: Tj moves on by the glyphs' widths */
    for (int i = 0; i < n;) {
        int j = i;
        lit(b, font[i] ? " /f1 1 Tf <" : " /f0 1 Tf <");
        for (; j < n && font[j] == font[i]; j++)
            hex4(b, cid[j]);
        lit(b, ">Tj");
        i = j;
    }
    lit(b, " ET\n");
}

/* Sets the stroke state for the path about to be built (colour, width). */
static void stroke_state(fp_pdf_dc *c)
{
    rgb(c, c->stroke, &c->stroke_set, "RG\n");
    if (c->lw != c->lw_set) {
        num(c->cs, c->lw);
        lit(c->cs, " w\n");
        c->lw_set = c->lw;
    }
}

/* ---- the file ---- */

static void emit(fp_pdf_file *f, const void *p, size_t n)
{
    if (f->range || f->nomem)
        return;
    if (f->out->len + n > f->out->max) {
        f->range = 1;
        return;
    }
    fp_buf_append(f->out, p, n);
    if (f->out->overflow)
        f->nomem = 1;
}

static int file_rc(fp_pdf_file *f, fp_err *err)
{
    if (f->range)
        return fp_fail(err, FP_ERANGE, "the PDF exceeds the output limit (%zu bytes)", f->out->max);
    if (f->nomem)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    return 0;
}

static void obj_start(fp_pdf_file *f, int n)
{
    f->r->xref[n] = f->out->len - f->start;
    char s[32];
    int k = snprintf(s, sizeof s, "%d 0 obj\n", n);
    emit(f, s, (size_t)k);
}

static void emit_buf(fp_pdf_file *f, const fp_buf *b)
{
    if (b->overflow)
        f->nomem = 1;
    else
        emit(f, b->p, b->len);
}

/* A stream object: data[0..n) compressed; extra goes into its dictionary. */
static void stream_obj(fp_pdf_file *f, int obj, const void *data, size_t n, const char *extra)
{
    fp_pdf_renderer *r = f->r;
    size_t bound = libdeflate_zlib_compress_bound(r->z, n);
    if (bound > r->zcap) {
        unsigned char *z = realloc(r->zbuf, bound);
        if (!z) {
            f->nomem = 1;
            return;
        }
        r->zbuf = z;
        r->zcap = bound;
    }
    size_t zn = libdeflate_zlib_compress(r->z, data, n, r->zbuf, r->zcap);
    if (zn == 0) {
        f->nomem = 1;
        return;
    }
    char s[160];
    obj_start(f, obj);
    int k = snprintf(s, sizeof s, "<< /Length %zu /Filter /FlateDecode%s >>\nstream\n", zn, extra);
    emit(f, s, (size_t)k);
    emit(f, r->zbuf, zn);
    emit(f, "\nendstream\nendobj\n", 18);
}

int fp_pdf_file_begin(fp_pdf_file *f, fp_pdf_renderer *r, fp_buf *out, int npages)
{
    memset(f, 0, sizeof *f);
    f->r = r;
    f->out = out;
    f->start = out->len;
    f->npages = npages;
    size_t need = (size_t)NOBJ(npages);
    if (need > r->xref_cap) {
        size_t *x = realloc(r->xref, need * sizeof *x);
        if (!x)
            return FP_ENOMEM;
        r->xref = x;
        r->xref_cap = need;
    }
    fp_pdf_font_select(r->font, r->doc);
    fp_pdf_font_begin(r->font);
    emit(f, "%PDF-1.5\n%\xb5\xed\xae\xfb\n", 15);
    return f->range ? FP_ERANGE : f->nomem ? FP_ENOMEM : 0;
}

void fp_pdf_page_begin(fp_pdf_file *f, fp_pdf_dc *c, fp_err *err)
{
    memset(c, 0, sizeof *c);
    c->r = f->r;
    c->cs = &f->r->cs;
    c->path = &f->r->path;
    c->err = err;
    c->lw = 2.0; /* the PDF's default is 1; cairo's, which the layout assumes, 2 */
    c->cs->len = 0;
    c->cs->overflow = 0;
    c->path->len = 0;
    c->path->overflow = 0;
    /* y down, square caps: the conventions the layout was written in */
    lit(c->cs, "1 0 0 -1 0 396.850394 cm\n2 J\n");
}

int fp_pdf_page_end(fp_pdf_file *f, fp_pdf_dc *c, fp_err *err)
{
    if (c->rc)
        return c->rc;
    if (c->cs->overflow)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    int i = f->page++;
    stream_obj(f, OBJ_PAGE(i) + 1, c->cs->p, c->cs->len, "");
    char s[300];
    obj_start(f, OBJ_PAGE(i));
    int k = snprintf(s, sizeof s,
                     "<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.6f %.6f]\n"
                     "/Resources << /Font << /f0 %d 0 R /f1 %d 0 R >> >> /Contents %d 0 R >>\n"
                     "endobj\n",
                     OBJ_PAGES, PAGE_W_PT, PAGE_H_PT, OBJ_FORM, OBJ_DOC, OBJ_PAGE(i) + 1);
    emit(f, s, (size_t)k);
    return file_rc(f, err);
}

/* A PDF text string for s (UTF-8): <FEFF…> in UTF-16BE. */
static void text_string(fp_buf *b, const char *s)
{
    lit(b, "<feff");
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp = *p++;
        int more = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0;
        cp &= more == 3 ? 0x07 : more == 2 ? 0x0f : more == 1 ? 0x1f : 0x7f;
        for (; more > 0 && (*p & 0xc0) == 0x80; more--)
            cp = cp << 6 | (*p++ & 0x3f);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            hex4(b, 0xd800 | (cp >> 10));
            hex4(b, 0xdc00 | (cp & 0x3ff));
        } else {
            hex4(b, cp);
        }
    }
    lit(b, ">");
}

/* The UTF-16BE of cp as ToUnicode hex. */
static void cmap_unicode(fp_buf *b, uint32_t cp)
{
    fp_buf_append(b, "<", 1);
    if (cp >= 0x10000) {
        cp -= 0x10000;
        hex4(b, 0xd800 | (cp >> 10));
        hex4(b, 0xdc00 | (cp & 0x3ff));
    } else {
        hex4(b, cp);
    }
    fp_buf_append(b, ">", 1);
}

/* The selected subset of the font as the five objects from base on. */
static int write_font(fp_pdf_file *f, int base, fp_err *err)
{
    fp_pdf_renderer *r = f->r;
    fp_pdf_font *font = r->font;
    unsigned n = fp_pdf_font_nused(font);
    char tag[7], s[512];
    fp_pdf_font_tag(font, tag);
    const char *name = fp_pdf_font_name(font);
    int k;

    /* the program */
    r->prog.len = 0;
    r->prog.overflow = 0;
    int doc = base == OBJ_DOC;
    if (doc) {
        fp_buf *map = &r->tmp;
        map->len = 0;
        map->overflow = 0;
        size_t raw = 0;
        int rc = fp_pdf_font_subset_z(font, &r->prog, &raw, map, err);
        if (rc)
            return rc;
        k = snprintf(s, sizeof s, "<< /Length %zu /Filter /FlateDecode /Length1 %zu >>\nstream\n",
                     r->prog.len, raw);
        obj_start(f, base + O_PROG);
        emit(f, s, (size_t)k);
        emit_buf(f, &r->prog);
        emit(f, "\nendstream\nendobj\n", 18);
        stream_obj(f, base + O_CIDMAP, map->p, map->len, "");
    } else {
        int rc = fp_pdf_font_subset(font, &r->prog, err);
        if (rc)
            return rc;
        k = snprintf(s, sizeof s, " /Length1 %zu", r->prog.len);
        stream_obj(f, base + O_PROG, r->prog.p, r->prog.len, s);
    }

    /* ToUnicode: every CID drawn for a character maps back to it */
    fp_buf *b = &r->tmp;
    b->len = 0;
    b->overflow = 0;
    lit(b, "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
           "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
           "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
           "1 begincodespacerange\n<0000> <ffff>\nendcodespacerange\n");
    unsigned mapped = 0;
    for (unsigned i = 1; i < n; i++)
        mapped += fp_pdf_font_used_cp(font, i) != 0;
    for (unsigned i = 1, done = 0; i < n;) {
        unsigned chunk = mapped - done < 100 ? mapped - done : 100;
        if (chunk == 0)
            break;
        uint_(b, chunk);
        lit(b, " beginbfchar\n");
        for (unsigned w = 0; w < chunk && i < n; i++) {
            uint32_t cp = fp_pdf_font_used_cp(font, i);
            if (!cp)
                continue;
            fp_buf_append(b, "<", 1);
            hex4(b, i);
            fp_buf_append(b, "> ", 2);
            cmap_unicode(b, cp);
            fp_buf_append(b, "\n", 1);
            w++;
            done++;
        }
        lit(b, "endbfchar\n");
    }
    lit(b, "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    if (b->overflow)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    stream_obj(f, base + O_TOUNI, b->p, b->len, "");

    /* the fonts and the descriptor */
    obj_start(f, base + O_FONT);
    k = snprintf(s, sizeof s,
                 "<< /Type /Font /Subtype /Type0 /BaseFont /%s+%s /Encoding /Identity-H\n"
                 "/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>\nendobj\n",
                 tag, name, base + O_CIDFONT, base + O_TOUNI);
    emit(f, s, (size_t)k);

    b->len = 0;
    lit(b, "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /");
    lit(b, tag);
    fp_buf_append(b, "+", 1);
    lit(b, name);
    lit(b, "\n/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>\n"
           "/FontDescriptor ");
    uint_(b, (unsigned)(base + O_DESC));
    if (doc) {
        lit(b, " 0 R /CIDToGIDMap ");
        uint_(b, (unsigned)(base + O_CIDMAP));
        lit(b, " 0 R\n/W [0 [");
    } else {
        lit(b, " 0 R /CIDToGIDMap /Identity\n/W [0 [");
    }
    for (unsigned i = 0; i < n; i++) {
        if (i)
            fp_buf_append(b, (i % 16) ? " " : "\n", 1);
        num(b, fp_pdf_font_used_width(font, i));
    }
    lit(b, "]] >>\nendobj\n");
    obj_start(f, base + O_CIDFONT);
    emit_buf(f, b);

    double bbox[4], asc, desc, cap;
    fp_pdf_font_metrics(font, bbox, &asc, &desc, &cap);
    obj_start(f, base + O_DESC);
    k = snprintf(s, sizeof s,
                 "<< /Type /FontDescriptor /FontName /%s+%s /Flags 4\n"
                 "/FontBBox [%.0f %.0f %.0f %.0f] /ItalicAngle 0 /Ascent %.0f /Descent %.0f\n"
                 "/CapHeight %.0f /StemV 80 /FontFile2 %d 0 R >>\nendobj\n",
                 tag, name, bbox[0], bbox[1], bbox[2], bbox[3], asc, desc, cap, base + O_PROG);
    emit(f, s, (size_t)k);
    return file_rc(f, err);
}

int fp_pdf_form_font(fp_pdf_renderer *r, const char *chars, fp_err *err)
{
    if (r->xref_cap < (size_t)NOBJ(1)) {
        size_t *x = realloc(r->xref, (size_t)NOBJ(1) * sizeof *x);
        if (!x)
            return fp_fail(err, FP_ENOMEM, "out of memory");
        r->xref = x;
        r->xref_cap = (size_t)NOBJ(1);
    }
    fp_pdf_font_select(r->font, r->form);
    fp_pdf_font_begin(r->font);
    const unsigned char *p = (const unsigned char *)chars;
    while (*p) {
        uint32_t cp = *p++;
        int more = cp >= 0xf0 ? 3 : cp >= 0xe0 ? 2 : cp >= 0xc0 ? 1 : 0;
        cp &= more == 3 ? 0x07 : more == 2 ? 0x0f : more == 1 ? 0x1f : 0x7f;
        for (; more > 0 && (*p & 0xc0) == 0x80; more--)
            cp = cp << 6 | (*p++ & 0x3f);
        unsigned gid = fp_pdf_font_glyph(r->font, cp);
        if (gid && fp_pdf_font_use(r->font, gid, cp) == 0xffffffffu)
            return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    /* compressed once, so at the highest level */
    struct libdeflate_compressor *z = r->z;
    r->z = libdeflate_alloc_compressor(FORM_LEVEL);
    if (!r->z) {
        r->z = z;
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    fp_pdf_file f = {.r = r, .out = &r->form_objs};
    r->form_objs.len = 0;
    int rc = write_font(&f, OBJ_FORM, err);
    libdeflate_free_compressor(r->z);
    r->z = z;
    for (int i = 0; i < 5; i++)
        r->form_off[i] = r->xref[OBJ_FORM + i];
    fp_pdf_font_select(r->font, r->doc);
    return rc;
}

/* "yyyy-MM-ddTHH:mm:ss[Z|±hh:mm]" -> D:yyyyMMddHHmmss[Z|±hh'mm'] */
static void pdf_date(char *d, size_t n, const char *iso)
{
    size_t len = strlen(iso);
    char zone[16] = "";
    if (len >= 25)
        snprintf(zone, sizeof zone, "%c%.2s'%.2s'", iso[19], iso + 20, iso + 23);
    else if (len >= 20 && iso[19] == 'Z')
        snprintf(zone, sizeof zone, "Z");
    snprintf(d, n, "D:%.4s%.2s%.2s%.2s%.2s%.2s%s", iso, iso + 5, iso + 8, iso + 11, iso + 14,
             iso + 17, zone);
}

int fp_pdf_file_end(fp_pdf_file *f, const fp_pdf_meta *meta, fp_err *err)
{
    fp_pdf_renderer *r = f->r;
    /* the form's font as built, then the document's */
    size_t at = f->out->len - f->start;
    emit_buf(f, &r->form_objs);
    for (int i = 0; i < 5; i++)
        r->xref[OBJ_FORM + i] = at + r->form_off[i];
    int rc = write_font(f, OBJ_DOC, err);
    if (rc)
        return rc;
    char s[160];
    int k;
    obj_start(f, OBJ_CATALOG);
    k = snprintf(s, sizeof s, "<< /Type /Catalog /Pages %d 0 R >>\nendobj\n", OBJ_PAGES);
    emit(f, s, (size_t)k);

    fp_buf *b = &r->tmp;
    b->len = 0;
    b->overflow = 0;
    lit(b, "<< /Type /Pages /Count ");
    uint_(b, (unsigned)f->npages);
    lit(b, "\n/Kids [");
    for (int i = 0; i < f->npages; i++) {
        if (i)
            fp_buf_append(b, (i % 10) ? " " : "\n", 1);
        uint_(b, (unsigned)OBJ_PAGE(i));
        lit(b, " 0 R");
    }
    lit(b, "] >>\nendobj\n");
    obj_start(f, OBJ_PAGES);
    emit_buf(f, b);

    char date[40];
    pdf_date(date, sizeof date, meta->created);
    b->len = 0;
    lit(b, "<< /Title ");
    text_string(b, meta->title);
    lit(b, "\n/Creator (fapiao) /Producer (fapiao) /CreationDate (");
    lit(b, date);
    lit(b, ") >>\nendobj\n");
    obj_start(f, OBJ_INFO);
    emit_buf(f, b);

    size_t nobj = (size_t)NOBJ(f->npages), xref_at = f->out->len - f->start;
    b->len = 0;
    lit(b, "xref\n0 ");
    uint_(b, nobj);
    lit(b, "\n0000000000 65535 f \n");
    for (size_t i = 1; i < nobj; i++) {
        k = snprintf(s, sizeof s, "%010zu 00000 n \n", r->xref[i]);
        fp_buf_append(b, s, (size_t)k);
    }
    lit(b, "trailer\n<< /Size ");
    uint_(b, nobj);
    lit(b, " /Root 1 0 R /Info 3 0 R >>\nstartxref\n");
    uint_(b, xref_at);
    lit(b, "\n%%EOF\n");
    emit_buf(f, b);
    return file_rc(f, err);
}
