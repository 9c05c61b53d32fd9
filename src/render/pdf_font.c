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
#include <zlib.h>
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
    /* fp_pdf_font_subset_z: simple glyphs compressed once, each on its own
     * (raw deflate ending byte-aligned), kept for every later document */
    struct zseg {
        uint32_t off, zlen, adler, sum; /* zlen 0: not compressed yet */
    } * seg;
    unsigned char *zpool;
    size_t zpool_len, zpool_cap;
    z_stream zs, zd; /* level 9 for the kept segments, 1 per document */
    int zs_ok, zd_ok;
    /* the constant tables (OS/2, cvt, fpgm, post, prep) as one segment */
    unsigned char *cz, *cblk; /* compressed, and as it is */
    size_t cz_len, c_len, c_off[NT];
    uint32_t c_adler, c_sum[NT];
    int c_has[NT];
    /* per document */
    uint16_t *order, *fgid; /* font glyph -> subset id, and back */
    unsigned order_cap;
    unsigned char *pbuf, *zbuf; /* the fresh chunk, and compressed */
    size_t pbuf_cap, zbuf_cap;
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
    free(f->seg);
    free(f->zpool);
    free(f->cz);
    free(f->cblk);
    free(f->order);
    free(f->fgid);
    free(f->pbuf);
    free(f->zbuf);
    if (f->zs_ok)
        deflateEnd(&f->zs);
    if (f->zd_ok)
        deflateEnd(&f->zd);
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

static int zcache_init(fp_pdf_font *f);

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
    int rc = zcache_init(f);
    if (rc) {
        fp_pdf_font_free(f);
        return rc == FP_ENOMEM ? fp_fail(err, FP_ENOMEM, "out of memory")
                               : fp_fail(err, FP_EIO, "zlib: cannot compress font tables");
    }
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

/* ---- the document's subset, compressed from kept pieces ----
 *
 * Most of a CJK subset's bytes are simple glyphs (the components the
 * ideographs are composed of in this font), the same bytes in every
 * document that uses them.  Each is compressed once, as raw deflate blocks
 * ending byte-aligned (zlib's Z_FULL_FLUSH: independent of what precedes),
 * and kept; a document's font program is then a zlib stream concatenated
 * from one freshly compressed chunk (the table directory, head, hhea, maxp,
 * loca, hmtx, glyph 0 and the composite glyphs, whose component references
 * are renumbered per document), the kept segments of its simple glyphs,
 * the kept segment of the constant tables, an empty final block, and the
 * Adler-32 combined from the pieces' (adler32_combine).  The font's glyph
 * order (chunk first, kept glyphs after) is not the order of the CIDs the
 * content stream uses, so the PDF maps them with a CIDToGIDMap stream.
 * The kept segments are bounded (ZPOOL_MAX); past it a simple glyph goes
 * into the fresh chunk like a composite. */

#define ZPOOL_MAX ((size_t)16 << 20)

static const unsigned char post3[32] = {0, 3, 0, 0}; /* version 3: no glyph names */

/* in[0..n) as raw deflate ending byte-aligned, appended to *buf; 0, -1
 * (zlib failed), -2 (more than max bytes, or out of memory). */
static int zseg(z_stream *z, const unsigned char *in, size_t n, unsigned char **buf, size_t *len,
                size_t *cap, size_t max)
{
    if (deflateReset(z) != Z_OK)
        return -1;
    size_t bound = deflateBound(z, n) + 64;
    if (*len + bound > *cap) {
        size_t nc = *cap ? *cap : 65536;
        while (nc < *len + bound)
            nc *= 2;
        if (nc > max && *len + bound <= max)
            nc = max;
        if (nc > max)
            return -2;
        unsigned char *p = realloc(*buf, nc);
        if (!p)
            return -2;
        *buf = p;
        *cap = nc;
    }
    z->next_in = (unsigned char *)in;
    z->avail_in = (uInt)n;
    z->next_out = *buf + *len;
    z->avail_out = (uInt)bound;
    if (deflate(z, Z_FULL_FLUSH) != Z_OK || z->avail_in != 0 || z->avail_out == 0)
        return -1;
    *len += bound - z->avail_out;
    return 0;
}

static int zcache_init(fp_pdf_font *f)
{
    if (deflateInit2(&f->zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return FP_ENOMEM;
    f->zs_ok = 1;
    if (deflateInit2(&f->zd, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return FP_ENOMEM;
    f->zd_ok = 1;
    f->seg = calloc(f->nglyphs, sizeof *f->seg);
    if (!f->seg)
        return FP_ENOMEM;
    static const int constant[] = {T_OS2, T_CVT, T_FPGM, T_POST, T_PREP};
    size_t total = 0;
    for (size_t i = 0; i < sizeof constant / sizeof *constant; i++) {
        int t = constant[i];
        size_t n = t == T_POST ? sizeof post3 : f->tab_len[t];
        if (t != T_POST && !f->tab[t])
            continue;
        f->c_has[t] = 1;
        f->c_off[t] = total;
        total += (n + 3) & ~(size_t)3;
    }
    unsigned char *blk = calloc(1, total ? total : 1);
    if (!blk)
        return FP_ENOMEM;
    for (int t = 0; t < NT; t++) {
        if (!f->c_has[t])
            continue;
        const unsigned char *src = t == T_POST ? post3 : f->tab[t];
        size_t n = t == T_POST ? sizeof post3 : f->tab_len[t];
        memcpy(blk + f->c_off[t], src, n);
        f->c_sum[t] = 0;
        for (size_t i = 0; i + 4 <= ((n + 3) & ~(size_t)3); i += 4)
            f->c_sum[t] += be32(blk + f->c_off[t] + i);
    }
    f->c_len = total;
    f->c_adler = (uint32_t)adler32(adler32(0, NULL, 0), blk, (uInt)total);
    size_t cap = 0;
    int rc = zseg(&f->zs, blk, total, &f->cz, &f->cz_len, &cap, (size_t)1 << 24);
    f->cblk = blk;
    return rc == 0 ? 0 : rc == -2 ? FP_ENOMEM : FP_EIO;
}

/* 4-byte-word sum of p[0..n) padded with zeros. */
static uint32_t sum4(const unsigned char *p, size_t n)
{
    return checksum(p, n);
}

/* Keeps glyph g's compressed segment; 0, or -1 when it cannot be kept. */
static int keep(fp_pdf_font *f, unsigned g, size_t off, size_t len)
{
    if (f->seg[g].zlen)
        return 0;
    unsigned char tmp[4096], *in = tmp;
    size_t padded = (len + 3) & ~(size_t)3;
    if (padded > sizeof tmp && !(in = malloc(padded)))
        return -1;
    memcpy(in, f->tab[T_GLYF] + off, len);
    memset(in + len, 0, padded - len);
    size_t at = f->zpool_len;
    int rc = zseg(&f->zs, in, padded, &f->zpool, &f->zpool_len, &f->zpool_cap, ZPOOL_MAX);
    if (rc == 0) {
        f->seg[g].off = (uint32_t)at;
        f->seg[g].zlen = (uint32_t)(f->zpool_len - at);
        f->seg[g].adler = (uint32_t)adler32(adler32(0, NULL, 0), in, (uInt)padded);
        f->seg[g].sum = sum4(in, padded);
    }
    if (in != tmp)
        free(in);
    return rc == 0 ? 0 : -1;
}

static int renumber_font(fp_pdf_font *f, unsigned char *gid_at, void *arg)
{
    const uint16_t *fgid = arg;
    unsigned g = be16(gid_at);
    if (g >= f->nglyphs || f->cur->stamp[g] != f->cur->gen)
        return -1;
    put16(gid_at, fgid[f->cur->new_id[g]]);
    return 0;
}

static int grow_to(void **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc);
    if (!np)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* The font's glyph order: glyph 0 and what goes into the fresh chunk
 * first, then (use_kept) the kept simple glyphs; f->order and f->fgid.
 * Without use_kept the order is the subset's. */
static int order_glyphs(fp_pdf_font *f, int use_kept, unsigned *nfresh, size_t *fresh_glyf,
                        size_t *kept_raw, fp_err *err)
{
    fp_pdf_subset *s = f->cur;
    unsigned n = s->nused, nf = 0, nk = 0;
    if (n > f->order_cap) {
        uint16_t *o = realloc(f->order, n * sizeof *o);
        if (o)
            f->order = o;
        uint16_t *fg = realloc(f->fgid, n * sizeof *fg);
        if (fg)
            f->fgid = fg;
        if (!o || !fg)
            return fp_fail(err, FP_ENOMEM, "out of memory");
        f->order_cap = n;
    }
    *fresh_glyf = *kept_raw = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned id = 0; id < n; id++) {
            unsigned g = s->used[id];
            size_t off, len;
            if (glyph_span(f, g, &off, &len) < 0)
                return fp_fail(err, FP_EIO, "font: glyph %u has no consistent outline", g);
            int kept = use_kept && id != 0 && len >= 10 &&
                       (int16_t)be16(f->tab[T_GLYF] + off) >= 0 &&
                       (f->seg[g].zlen || (pass == 0 && keep(f, g, off, len) == 0));
            if (kept != pass)
                continue;
            unsigned at = pass ? nf + nk++ : nf++;
            f->order[at] = (uint16_t)id;
            f->fgid[id] = (uint16_t)at;
            *(pass ? kept_raw : fresh_glyf) += (len + 3) & ~(size_t)3;
        }
    *nfresh = nf;
    return 0;
}

/* The table directory at P, entries for tabs[] at the offsets given;
 * returns the font's checksum (the directory's and every table's). */
static uint32_t directory(unsigned char *P, const int *tabs, int ntab, const size_t at[NT],
                          const size_t len[NT], const uint32_t sum[NT])
{
    put32(P, 0x00010000);
    put16(P + 4, (uint32_t)ntab);
    unsigned es = 0;
    while ((2u << es) <= (unsigned)ntab)
        es++;
    put16(P + 6, 16u << es);
    put16(P + 8, es);
    put16(P + 10, (uint32_t)ntab * 16 - (16u << es));
    uint32_t total = 0;
    for (int i = 0; i < ntab; i++) {
        int t = tabs[i];
        unsigned char *e = P + 12 + 16 * i;
        memcpy(e, tag_names[t], 4);
        put32(e + 4, sum[t]);
        put32(e + 8, (uint32_t)at[t]);
        put32(e + 12, (uint32_t)len[t]);
        total += sum[t];
    }
    return total + sum4(P, 12 + 16 * (size_t)ntab);
}

/* Builds the selected subset's font program, all but the kept glyphs and
 * the constant tables, into f->pbuf: directory, head, hhea, maxp, loca,
 * hmtx and the fresh glyphs, in that order; then come the kept glyphs (the
 * rest of glyf) and the constant tables (at *const_at).  *plen: the bytes
 * in f->pbuf. */
static int assemble(fp_pdf_font *f, int use_kept, size_t *plen, unsigned *nfresh, size_t *const_at,
                    fp_err *err)
{
    fp_pdf_subset *s = f->cur;
    unsigned n = s->nused;
    size_t fresh_glyf, kept_raw;
    int rc = order_glyphs(f, use_kept, nfresh, &fresh_glyf, &kept_raw, err);
    if (rc)
        return rc;
    int tabs[NT], ntab = 0;
    for (int t = 0; t < NT; t++)
        if (f->c_has[t] || t == T_GLYF || t == T_HEAD || t == T_HHEA || t == T_HMTX ||
            t == T_LOCA || t == T_MAXP)
            tabs[ntab++] = t;
    size_t at[NT] = {0}, len[NT] = {0};
    uint32_t sum[NT] = {0};
    len[T_HEAD] = 54;
    len[T_HHEA] = 36;
    len[T_MAXP] = f->tab_len[T_MAXP];
    len[T_LOCA] = 4u * (n + 1);
    len[T_HMTX] = 4u * n;
    len[T_GLYF] = fresh_glyf + kept_raw;
    at[T_HEAD] = 12 + 16u * (size_t)ntab;
    at[T_HHEA] = at[T_HEAD] + 56;
    at[T_MAXP] = at[T_HHEA] + 36;
    at[T_LOCA] = at[T_MAXP] + ((len[T_MAXP] + 3) & ~(size_t)3);
    at[T_HMTX] = at[T_LOCA] + len[T_LOCA];
    at[T_GLYF] = at[T_HMTX] + len[T_HMTX];
    *const_at = at[T_GLYF] + len[T_GLYF];
    for (int t = 0; t < NT; t++)
        if (f->c_has[t]) {
            at[t] = *const_at + f->c_off[t];
            len[t] = t == T_POST ? sizeof post3 : f->tab_len[t];
            sum[t] = f->c_sum[t];
        }
    *plen = at[T_GLYF] + fresh_glyf;
    if (grow_to((void **)&f->pbuf, &f->pbuf_cap, *plen) < 0)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    unsigned char *P = f->pbuf;
    memset(P, 0, *plen);
    memcpy(P + at[T_HEAD], f->tab[T_HEAD], 54);
    put32(P + at[T_HEAD] + 8, 0);  /* checkSumAdjustment, set below */
    put16(P + at[T_HEAD] + 50, 1); /* long loca */
    memcpy(P + at[T_HHEA], f->tab[T_HHEA], 36);
    put16(P + at[T_HHEA] + 34, n);
    memcpy(P + at[T_MAXP], f->tab[T_MAXP], len[T_MAXP]);
    put16(P + at[T_MAXP] + 4, n);
    /* loca, hmtx and the fresh glyphs, in the font's order */
    const unsigned char *hm = f->tab[T_HMTX];
    size_t go = 0, fo = 0;
    for (unsigned k = 0; k < n; k++) {
        unsigned g = s->used[f->order[k]];
        size_t off, gl;
        glyph_span(f, g, &off, &gl);
        put32(P + at[T_LOCA] + 4 * k, (uint32_t)go);
        put16(P + at[T_HMTX] + 4 * k, f->adv_of[g]);
        memcpy(P + at[T_HMTX] + 4 * k + 2,
               g < f->nhm ? hm + 4 * g + 2 : hm + 4 * f->nhm + 2 * (g - f->nhm), 2);
        size_t padded = (gl + 3) & ~(size_t)3;
        if (k < *nfresh) {
            unsigned char *d = P + at[T_GLYF] + fo;
            memcpy(d, f->tab[T_GLYF] + off, gl);
            if (gl >= 10 && (int16_t)be16(d) < 0 &&
                each_component(f, d, gl, renumber_font, f->fgid) < 0)
                return fp_fail(err, FP_EIO, "font: composite glyph %u is inconsistent", g);
            sum[T_GLYF] += sum4(d, padded);
            fo += padded;
        } else {
            sum[T_GLYF] += f->seg[g].sum;
        }
        go += padded;
    }
    put32(P + at[T_LOCA] + 4 * n, (uint32_t)go);
    for (int t = T_HEAD; t <= T_MAXP; t++)
        if (t != T_GLYF && t != T_NAME)
            sum[t] = sum4(P + at[t], len[t]);
    uint32_t total = directory(P, tabs, ntab, at, len, sum);
    put32(P + at[T_HEAD] + 8, 0xB1B0AFBAu - total);
    return 0;
}

int fp_pdf_font_subset(fp_pdf_font *f, fp_buf *out, fp_err *err)
{
    size_t plen, const_at;
    unsigned nfresh;
    int rc = assemble(f, 0, &plen, &nfresh, &const_at, err);
    if (rc)
        return rc;
    fp_buf_append(out, f->pbuf, plen);
    fp_buf_append(out, f->cblk, f->c_len);
    return out->overflow ? fp_fail(err, FP_ENOMEM, "out of memory") : 0;
}

int fp_pdf_font_subset_z(fp_pdf_font *f, fp_buf *out, size_t *raw_len, fp_buf *cidmap, fp_err *err)
{
    fp_pdf_subset *s = f->cur;
    unsigned n = s->nused, nfresh;
    size_t plen, const_at;
    int rc = assemble(f, 1, &plen, &nfresh, &const_at, err);
    if (rc)
        return rc;
    /* CIDToGIDMap: CID (subset id) -> the font's glyph */
    for (unsigned id = 0; id < n; id++) {
        unsigned char b[2];
        put16(b, f->fgid[id]);
        fp_buf_append(cidmap, b, 2);
    }
    /* the zlib stream: header, the fresh chunk, the kept segments, the
     * constant tables, an empty final block, the Adler-32 */
    uLong adler = adler32(adler32(0, NULL, 0), f->pbuf, (uInt)plen);
    static const unsigned char zhead[2] = {0x78, 0x01}, zfinal[2] = {0x03, 0x00};
    fp_buf_append(out, zhead, 2);
    size_t zl = 0;
    rc = zseg(&f->zd, f->pbuf, plen, &f->zbuf, &zl, &f->zbuf_cap, (size_t)1 << 30);
    if (rc)
        return rc == -2 ? fp_fail(err, FP_ENOMEM, "out of memory")
                        : fp_fail(err, FP_EIO, "zlib: cannot compress the font");
    fp_buf_append(out, f->zbuf, zl);
    for (unsigned k = nfresh; k < n; k++) {
        unsigned g = s->used[f->order[k]];
        size_t off, len;
        glyph_span(f, g, &off, &len);
        fp_buf_append(out, f->zpool + f->seg[g].off, f->seg[g].zlen);
        adler = adler32_combine(adler, f->seg[g].adler, (z_off_t)((len + 3) & ~(size_t)3));
    }
    fp_buf_append(out, f->cz, f->cz_len);
    adler = adler32_combine(adler, f->c_adler, (z_off_t)f->c_len);
    fp_buf_append(out, zfinal, 2);
    unsigned char ab[4];
    put32(ab, (uint32_t)adler);
    fp_buf_append(out, ab, 4);
    if (out->overflow || cidmap->overflow)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    *raw_len = const_at + f->c_len;
    return 0;
}
