/* pdf_font.c — the PDF's one font: loaded once per renderer (a warm render
 * worker keeps it for every document it draws), characters mapped to
 * glyphs and advances through a cache, and per document a TrueType subset
 * holding only the glyphs that document uses.
 *
 * Why a subsetter of our own (docs/render-performance.md): the PDF needs a
 * CIDFontType2 font program, i.e. the glyf outlines of the glyphs used,
 * renumbered 0..n-1 (the content stream's CIDs are the new glyph ids,
 * CIDToGIDMap /Identity), with loca, hmtx, hhea, maxp, head and the hinting
 * tables.  That is copying bytes: the outlines are not parsed, only the
 * component references of composite glyphs are renumbered.  FreeType loads
 * the raw tables (FT_Load_Sfnt_Table, face 0 of the TTC), maps characters
 * (FT_Get_Char_Index) and gives the PostScript name; nothing else of the
 * font is touched per document, so a subset costs microseconds. */
#include <ft2build.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include FT_FREETYPE_H
#include FT_TRUETYPE_TABLES_H
#include FT_TRUETYPE_TAGS_H

#include "internal.h"

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The tables a subset copies or rebuilds, in the order of their tags (a
 * font's table directory is sorted). */
enum {
    T_OS2,
    T_CVT,
    T_FPGM,
    T_GLYF,
    T_HEAD,
    T_HHEA,
    T_HMTX,
    T_LOCA,
    T_MAXP,
    T_NAME,
    T_POST,
    T_PREP,
    NT
};
static const char tag_names[NT][5] = {"OS/2", "cvt ", "fpgm", "glyf", "head", "hhea",
                                      "hmtx", "loca", "maxp", "name", "post", "prep"};

static FT_ULong tag_of(int t)
{
    const char *s = tag_names[t];
    return FT_MAKE_TAG(s[0], s[1], s[2], s[3]);
}

struct fp_pdf_font {
    FT_Library lib;
    FT_Face face;
    unsigned char *tab[NT]; /* raw tables of the font (NULL when absent and optional) */
    size_t tab_len[NT];
    unsigned upem, nglyphs, nhm;
    int long_loca;
    char psname[64];
    int16_t bbox[4]; /* font units */
    int16_t ascent, descent, cap_height;
    /* the character cache: BMP code point -> glyph id + 1 (0: not looked
     * up yet) and the glyph's advance in font units */
    uint16_t *bmp_gid;
    uint16_t *adv_of;   /* per glyph id */
    fp_pdf_subset *cur; /* the subset glyphs are added to (fp_pdf_font_select) */
};

/* A subset: old glyph id -> new id, valid where stamp[] holds the current
 * generation (so starting a new one is not a clear of 50,000 entries). */
struct fp_pdf_subset {
    uint32_t *stamp;
    uint16_t *new_id;
    uint32_t gen;
    uint16_t *used;    /* new id -> old glyph id */
    uint32_t *used_cp; /* new id -> the first code point drawn with it (ToUnicode) */
    unsigned nused, used_cap, nglyphs;
};

int fp_pdf_subset_new(const fp_pdf_font *f, fp_pdf_subset **out)
{
    fp_pdf_subset *s = calloc(1, sizeof *s);
    if (s) {
        s->nglyphs = f->nglyphs;
        s->stamp = calloc(f->nglyphs, sizeof *s->stamp);
        s->new_id = calloc(f->nglyphs, sizeof *s->new_id);
    }
    if (!s || !s->stamp || !s->new_id) {
        fp_pdf_subset_free(s);
        return FP_ENOMEM;
    }
    *out = s;
    return 0;
}

void fp_pdf_subset_free(fp_pdf_subset *s)
{
    if (!s)
        return;
    free(s->stamp);
    free(s->new_id);
    free(s->used);
    free(s->used_cp);
    free(s);
}

int fp_pdf_subset_id(const fp_pdf_subset *s, unsigned gid)
{
    return gid < s->nglyphs && s->stamp[gid] == s->gen ? s->new_id[gid] : -1;
}

void fp_pdf_font_select(fp_pdf_font *f, fp_pdf_subset *s)
{
    f->cur = s;
}

void fp_pdf_font_free(fp_pdf_font *f)
{
    if (!f)
        return;
    for (int t = 0; t < NT; t++)
        free(f->tab[t]);
    free(f->bmp_gid);
    free(f->adv_of);
    if (f->face)
        FT_Done_Face(f->face);
    if (f->lib)
        FT_Done_FreeType(f->lib);
    free(f);
}

static int load_table(fp_pdf_font *f, int t)
{
    FT_ULong len = 0;
    if (FT_Load_Sfnt_Table(f->face, tag_of(t), 0, NULL, &len) != 0 || len == 0)
        return -1;
    f->tab[t] = malloc(len);
    if (!f->tab[t])
        return -2;
    if (FT_Load_Sfnt_Table(f->face, tag_of(t), 0, f->tab[t], &len) != 0)
        return -1;
    f->tab_len[t] = len;
    return 0;
}

int fp_pdf_font_new(const char *path, fp_pdf_font **out, fp_err *err)
{
    *out = NULL;
    fp_pdf_font *f = calloc(1, sizeof *f);
    if (!f)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    FT_Error fe = FT_Init_FreeType(&f->lib);
    if (fe) {
        free(f);
        return fp_fail(err, fe == FT_Err_Out_Of_Memory ? FP_ENOMEM : FP_EIO,
                       "cannot initialise FreeType (error %d)", fe);
    }
    fe = FT_New_Face(f->lib, path, 0, &f->face);
    if (fe || !FT_IS_SCALABLE(f->face) || !FT_IS_SFNT(f->face)) {
        fp_pdf_font_free(f);
        if (fe == FT_Err_Out_Of_Memory)
            return fp_fail(err, FP_ENOMEM, "out of memory loading font %s", path);
        return fp_fail(err, FP_EIO, "cannot load font %s (FreeType error %d%s)", path, fe,
                       fe ? "" : ": not a scalable TrueType font");
    }
    /* required: the outlines and their metrics; optional: the rest */
    static const int required[] = {T_GLYF, T_HEAD, T_HHEA, T_HMTX, T_LOCA, T_MAXP};
    for (int t = 0; t < NT; t++) {
        if (t == T_POST || t == T_NAME)
            continue; /* a subset gets a post table without glyph names, and
                       * no name table (a PDF names the font itself) */
        int rc = load_table(f, t);
        if (rc == -2) {
            fp_pdf_font_free(f);
            return fp_fail(err, FP_ENOMEM, "out of memory loading font %s", path);
        }
        for (size_t k = 0; rc < 0 && k < sizeof required / sizeof *required; k++)
            if (required[k] == t) {
                fp_pdf_font_free(f);
                return fp_fail(err, FP_EIO, "font %s: no %s table (not a TrueType outline font)",
                               path, tag_names[t]);
            }
    }
    const unsigned char *head = f->tab[T_HEAD], *hhea = f->tab[T_HHEA], *maxp = f->tab[T_MAXP];
    if (f->tab_len[T_HEAD] < 54 || f->tab_len[T_HHEA] < 36 || f->tab_len[T_MAXP] < 6) {
        fp_pdf_font_free(f);
        return fp_fail(err, FP_EIO, "font %s: truncated head, hhea or maxp table", path);
    }
    f->upem = be16(head + 18);
    f->long_loca = be16(head + 50) != 0;
    f->nglyphs = be16(maxp + 4);
    f->nhm = be16(hhea + 34);
    for (int i = 0; i < 4; i++)
        f->bbox[i] = (int16_t)be16(head + 36 + 2 * i);
    f->ascent = (int16_t)be16(hhea + 4);
    f->descent = (int16_t)be16(hhea + 6);
    f->cap_height = f->ascent;
    if (f->tab[T_OS2] && f->tab_len[T_OS2] >= 90 && be16(f->tab[T_OS2]) >= 2)
        f->cap_height = (int16_t)be16(f->tab[T_OS2] + 88);
    size_t loca_need = (size_t)(f->nglyphs + 1) * (f->long_loca ? 4 : 2);
    if (f->upem == 0 || f->nglyphs == 0 || f->nhm == 0 || f->nhm > f->nglyphs ||
        f->tab_len[T_LOCA] < loca_need ||
        f->tab_len[T_HMTX] < 4u * f->nhm + 2u * (f->nglyphs - f->nhm)) {
        fp_pdf_font_free(f);
        return fp_fail(err, FP_EIO, "font %s: inconsistent glyph tables", path);
    }
    const char *ps = FT_Get_Postscript_Name(f->face);
    snprintf(f->psname, sizeof f->psname, "%s", ps && *ps ? ps : "Font");
    for (char *p = f->psname; *p; p++) /* a PDF name: no delimiters or blanks */
        if (*p <= ' ' || *p > '~' || strchr("()<>[]{}/%#", *p))
            *p = '-';
    f->bmp_gid = calloc(65536, sizeof *f->bmp_gid);
    f->adv_of = malloc(f->nglyphs * sizeof *f->adv_of);
    if (!f->bmp_gid || !f->adv_of) {
        fp_pdf_font_free(f);
        return fp_fail(err, FP_ENOMEM, "out of memory");
    }
    const unsigned char *hmtx = f->tab[T_HMTX];
    for (unsigned g = 0; g < f->nglyphs; g++)
        f->adv_of[g] = be16(hmtx + 4 * (g < f->nhm ? g : f->nhm - 1));
    *out = f;
    return 0;
}

unsigned fp_pdf_font_glyph(fp_pdf_font *f, uint32_t cp)
{
    if (cp < 65536) {
        uint16_t g = f->bmp_gid[cp];
        if (g)
            return g - 1u;
        FT_UInt gi = FT_Get_Char_Index(f->face, cp);
        if (gi >= f->nglyphs || gi >= 65535)
            gi = 0;
        f->bmp_gid[cp] = (uint16_t)(gi + 1);
        return gi;
    }
    FT_UInt gi = FT_Get_Char_Index(f->face, cp);
    return gi < f->nglyphs ? gi : 0;
}

double fp_pdf_font_advance(const fp_pdf_font *f, unsigned gid)
{
    return (double)f->adv_of[gid] / f->upem;
}

const char *fp_pdf_font_name(const fp_pdf_font *f)
{
    return f->psname;
}

/* ---- the subset of one document ---- */

static int glyph_span(const fp_pdf_font *f, unsigned g, size_t *off, size_t *len)
{
    const unsigned char *l = f->tab[T_LOCA];
    size_t a, b;
    if (f->long_loca) {
        a = be32(l + 4 * g);
        b = be32(l + 4 * (g + 1));
    } else {
        a = 2u * be16(l + 2 * g);
        b = 2u * be16(l + 2 * (g + 1));
    }
    if (b < a || b > f->tab_len[T_GLYF])
        return -1;
    *off = a;
    *len = b - a;
    return 0;
}

/* Calls fn(f, component glyph id position in data) for each component of a
 * composite glyph; 0, or -1 when the glyph's bytes are inconsistent. */
typedef int (*comp_fn)(fp_pdf_font *f, unsigned char *gid_at, void *arg);
static int each_component(fp_pdf_font *f, unsigned char *d, size_t len, comp_fn fn, void *arg)
{
    size_t p = 10;
    for (;;) {
        if (p + 4 > len)
            return -1;
        uint16_t flags = be16(d + p);
        if (fn(f, d + p + 2, arg) < 0)
            return -1;
        p += 4 + ((flags & 0x0001) ? 4 : 2);
        if (flags & 0x0008)
            p += 2;
        else if (flags & 0x0040)
            p += 4;
        else if (flags & 0x0080)
            p += 8;
        if (!(flags & 0x0020))
            return 0;
    }
}

void fp_pdf_font_begin(fp_pdf_font *f)
{
    if (++f->cur->gen == 0) { /* wrapped: forget every stamp */
        memset(f->cur->stamp, 0, f->nglyphs * sizeof *f->cur->stamp);
        f->cur->gen = 1;
    }
    f->cur->nused = 0;
    fp_pdf_font_use(f, 0, 0); /* .notdef is glyph 0 of every TrueType font */
}

static uint32_t use_depth(fp_pdf_font *f, unsigned gid, uint32_t cp, int depth);

static int use_component(fp_pdf_font *f, unsigned char *gid_at, void *arg)
{
    int depth = *(int *)arg;
    unsigned g = be16(gid_at);
    if (g >= f->nglyphs || depth > 8)
        return -1;
    return use_depth(f, g, 0, depth + 1) == 0xffffffffu ? -1 : 0;
}

static uint32_t use_depth(fp_pdf_font *f, unsigned gid, uint32_t cp, int depth)
{
    if (gid >= f->nglyphs)
        gid = 0;
    if (f->cur->stamp[gid] == f->cur->gen) {
        uint16_t id = f->cur->new_id[gid];
        if (!f->cur->used_cp[id])
            f->cur->used_cp[id] = cp;
        return id;
    }
    if (f->cur->nused >= 65535)
        return 0xffffffffu;
    if (f->cur->nused == f->cur->used_cap) {
        unsigned nc = f->cur->used_cap ? f->cur->used_cap * 2 : 256;
        uint16_t *u = realloc(f->cur->used, nc * sizeof *u);
        if (u)
            f->cur->used = u;
        uint32_t *c = realloc(f->cur->used_cp, nc * sizeof *c);
        if (c)
            f->cur->used_cp = c;
        if (!u || !c)
            return 0xffffffffu;
        f->cur->used_cap = nc;
    }
    uint32_t id = f->cur->nused++;
    f->cur->stamp[gid] = f->cur->gen;
    f->cur->new_id[gid] = (uint16_t)id;
    f->cur->used[id] = (uint16_t)gid;
    f->cur->used_cp[id] = cp;
    size_t off, len;
    if (glyph_span(f, gid, &off, &len) == 0 && len >= 10 &&
        (int16_t)be16(f->tab[T_GLYF] + off) < 0) {
        /* a composite: its components join the subset too (renumbered when
         * the subset is written) */
        if (each_component(f, f->tab[T_GLYF] + off, len, use_component, &depth) < 0)
            return 0xffffffffu;
    }
    return id;
}

uint32_t fp_pdf_font_use(fp_pdf_font *f, unsigned gid, uint32_t cp)
{
    return use_depth(f, gid, cp, 0);
}

unsigned fp_pdf_font_nused(const fp_pdf_font *f)
{
    return f->cur->nused;
}

double fp_pdf_font_used_width(const fp_pdf_font *f, unsigned id)
{
    return (double)f->adv_of[f->cur->used[id]] * 1000.0 / f->upem;
}

uint32_t fp_pdf_font_used_cp(const fp_pdf_font *f, unsigned id)
{
    return f->cur->used_cp[id];
}

void fp_pdf_font_metrics(const fp_pdf_font *f, double bbox[4], double *ascent, double *descent,
                         double *cap_height)
{
    for (int i = 0; i < 4; i++)
        bbox[i] = f->bbox[i] * 1000.0 / f->upem;
    *ascent = f->ascent * 1000.0 / f->upem;
    *descent = f->descent * 1000.0 / f->upem;
    *cap_height = f->cap_height * 1000.0 / f->upem;
}

/* A 6-letter subset tag from the glyphs used: the same subset, the same tag. */
void fp_pdf_font_tag(const fp_pdf_font *f, char tag[7])
{
    uint64_t h = 1469598103934665603ull;
    for (unsigned i = 0; i < f->cur->nused; i++) {
        h ^= f->cur->used[i];
        h *= 1099511628211ull;
    }
    for (int i = 0; i < 6; i++) {
        tag[i] = (char)('A' + h % 26);
        h /= 26;
    }
    tag[6] = 0;
}

static int renumber(fp_pdf_font *f, unsigned char *gid_at, void *arg)
{
    (void)arg;
    unsigned g = be16(gid_at);
    if (g >= f->nglyphs || f->cur->stamp[g] != f->cur->gen)
        return -1;
    put16(gid_at, f->cur->new_id[g]);
    return 0;
}

static uint32_t checksum(const unsigned char *p, size_t n)
{
    uint32_t s = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        s += be32(p + i);
    if (i < n) {
        unsigned char last[4] = {0};
        memcpy(last, p + i, n - i);
        s += be32(last);
    }
    return s;
}

/* The subset font program (a TrueType file) into out; 0, or FP_ENOMEM /
 * FP_EIO (a glyph's data is inconsistent). */
int fp_pdf_font_subset(fp_pdf_font *f, fp_buf *out, fp_err *err)
{
    unsigned n = f->cur->nused;
    /* sizes: glyf (each glyph padded to 4 bytes), loca (long), hmtx (every
     * glyph with its own advance) */
    size_t glyf_len = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t off, len;
        if (glyph_span(f, f->cur->used[i], &off, &len) < 0)
            return fp_fail(err, FP_EIO, "font: glyph %u has no consistent outline",
                           f->cur->used[i]);
        glyf_len += (len + 3) & ~(size_t)3;
    }
    static const unsigned char post3[32] = {0, 3, 0, 0}; /* version 3: no glyph names */
    size_t len[NT];
    int present[NT];
    unsigned ntab = 0;
    for (int t = 0; t < NT; t++) {
        len[t] = f->tab_len[t];
        present[t] = f->tab[t] != NULL;
    }
    present[T_POST] = 1;
    len[T_POST] = sizeof post3;
    len[T_GLYF] = glyf_len;
    len[T_LOCA] = 4u * (n + 1);
    len[T_HMTX] = 4u * n;
    len[T_HEAD] = 54;
    len[T_HHEA] = 36;
    len[T_MAXP] = f->tab_len[T_MAXP];
    for (int t = 0; t < NT; t++)
        ntab += (unsigned)present[t];
    size_t dir = 12 + 16u * ntab, total = dir;
    for (int t = 0; t < NT; t++)
        if (present[t])
            total += (len[t] + 3) & ~(size_t)3;
    size_t start = out->len;
    if (out->len + total > out->max)
        return fp_fail(err, FP_ENOMEM, "font subset too large");
    /* grow out once, then fill it in place */
    static const unsigned char zeros[256];
    for (size_t left = total; left > 0;) {
        size_t k = left < sizeof zeros ? left : sizeof zeros;
        fp_buf_append(out, zeros, k);
        left -= k;
    }
    if (out->overflow)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    unsigned char *base = (unsigned char *)out->p + start;
    put32(base, 0x00010000);
    put16(base + 4, ntab);
    unsigned es = 0;
    while ((2u << es) <= ntab)
        es++;
    put16(base + 6, 16u << es);
    put16(base + 8, es);
    put16(base + 10, ntab * 16 - (16u << es));
    size_t pos = dir;
    unsigned k = 0;
    unsigned char *head_at = NULL;
    for (int t = 0; t < NT; t++) {
        if (!present[t])
            continue;
        unsigned char *d = base + pos;
        switch (t) {
        case T_GLYF: {
            size_t o = 0;
            for (unsigned i = 0; i < n; i++) {
                size_t off, gl;
                glyph_span(f, f->cur->used[i], &off, &gl);
                memcpy(d + o, f->tab[T_GLYF] + off, gl);
                if (gl >= 10 && (int16_t)be16(d + o) < 0 &&
                    each_component(f, d + o, gl, renumber, NULL) < 0) {
                    out->len = start;
                    return fp_fail(err, FP_EIO, "font: composite glyph %u is inconsistent",
                                   f->cur->used[i]);
                }
                o += (gl + 3) & ~(size_t)3;
            }
            break;
        }
        case T_LOCA: {
            size_t o = 0;
            for (unsigned i = 0; i < n; i++) {
                put32(d + 4 * i, (uint32_t)o);
                size_t off, gl;
                glyph_span(f, f->cur->used[i], &off, &gl);
                o += (gl + 3) & ~(size_t)3;
            }
            put32(d + 4 * n, (uint32_t)o);
            break;
        }
        case T_HMTX: {
            const unsigned char *h = f->tab[T_HMTX];
            for (unsigned i = 0; i < n; i++) {
                unsigned g = f->cur->used[i];
                put16(d + 4 * i, f->adv_of[g]);
                memcpy(d + 4 * i + 2,
                       g < f->nhm ? h + 4 * g + 2 : h + 4 * f->nhm + 2 * (g - f->nhm), 2);
            }
            break;
        }
        case T_HEAD:
            memcpy(d, f->tab[T_HEAD], 54);
            put32(d + 8, 0);  /* checkSumAdjustment, set below */
            put16(d + 50, 1); /* long loca */
            head_at = d;
            break;
        case T_HHEA:
            memcpy(d, f->tab[T_HHEA], 36);
            put16(d + 34, n);
            break;
        case T_MAXP:
            memcpy(d, f->tab[T_MAXP], len[t]);
            put16(d + 4, n);
            break;
        case T_POST:
            memcpy(d, post3, sizeof post3);
            break;
        default:
            memcpy(d, f->tab[t], len[t]);
        }
        unsigned char *e = base + 12 + 16 * k++;
        memcpy(e, tag_names[t], 4);
        put32(e + 4, checksum(d, len[t]));
        put32(e + 8, (uint32_t)pos);
        put32(e + 12, (uint32_t)len[t]);
        pos += (len[t] + 3) & ~(size_t)3;
    }
    if (head_at)
        put32(head_at + 8, 0xB1B0AFBAu - checksum(base, total));
    return 0;
}
