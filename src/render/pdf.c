/* pdf.c — the invoice document (JSON) as a 数电票-style PDF: the layout.
 * Text in one TrueType face, embedded as a subset (pdf_font.c), the QR code
 * from libqrencode drawn as filled rectangles, the file written directly
 * (pdf_write.c; it replaced cairo, see docs/render-performance.md).  The
 * layout, what the QR code carries and the paging rule are described in
 * include/fapiao/pdf.h.  The text (measuring, fitting into a cell) is
 * pdf_text.c's.
 *
 * Why the code looks the way it does:
 *  - Every string is measured once (each character's glyph and advance
 *    from the font, unhinted, so advances scale linearly); fitting it into
 *    its cell — shrinking, wrapping, cutting with "…" — is then arithmetic
 *    on those advances, and the glyphs are drawn as one run per line, each
 *    glyph remembered with its character for the ToUnicode map (text can be
 *    copied and searched).
 *  - Geometry is in millimetres converted to points (MM()); it is the only
 *    floating point here.  Amounts are the document's strings, copied.
 *  - The document is read strictly by the one reader, invoice_doc.c, as for
 *    the XML: it comes from our own store, so a missing or mistyped field is
 *    corruption to report, naming the field, not something to draw around. */
#include "fapiao/pdf.h"

#include <errno.h>
#include <qrencode.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fapiao/invoice_doc.h"
#include "fapiao/money.h"
#include "internal.h"

/* ---- geometry (millimetres) ---- */

#define PAGE_W  241.0
#define PAGE_H  140.0
#define FRAME_L 10.0
#define FRAME_R 231.0
#define FRAME_T 27.0
#define PARTY_B 45.0                                    /* bottom of the buyer / seller block */
#define HEAD_B  51.0                                    /* bottom of the table's header row */
#define ROW_H   5.2                                     /* one line of the table */
#define ROWS_B  (HEAD_B + FP_PDF_ROWS_PER_PAGE * ROW_H) /* 103 */
#define TOTAL_B (ROWS_B + 6.0)                          /* 合计 */
#define GROSS_B (TOTAL_B + 7.0)                         /* 价税合计 */
#define FRAME_B (GROSS_B + 13.0)                        /* 备注 */
#define SIDE_W  6.0 /* the column of a vertical label (购买方信息, 备注) */
#define QR_X    12.0
#define QR_Y    4.5
#define QR_SIZE 20.0
#define INFO_X  166.0 /* number and date, top right */
#define PAD     1.5   /* inside a table cell, left and right */

/* Colours: the form in the red-brown of the bureau's 数电票, data in black. */
#define FORM  0.60, 0.30, 0.16
#define INK   0.0, 0.0, 0.0
#define STAMP 0.86, 0.08, 0.08

/* The item table's columns, left to right (their widths add up to the
 * frame's 221 mm).  Numbers are right-aligned, as on the bureau's form. */
enum { C_NAME, C_SPEC, C_UNIT, C_QTY, C_PRICE, C_AMOUNT, C_RATE, C_TAX, NCOLS };
static const struct {
    const char *title;
    double width;
    int align, wrap;
} cols[NCOLS] = {
    [C_NAME] = {"项目名称", 64, AL_LEFT, 1},      [C_SPEC] = {"规格型号", 22, AL_LEFT, 1},
    [C_UNIT] = {"单位", 13, AL_CENTRE, 1},        [C_QTY] = {"数量", 22, AL_RIGHT, 1},
    [C_PRICE] = {"单价", 24, AL_RIGHT, 1},        [C_AMOUNT] = {"金额", 28, AL_RIGHT, 0},
    [C_RATE] = {"税率/征收率", 20, AL_CENTRE, 0}, [C_TAX] = {"税额", 28, AL_RIGHT, 0},
};

/* The characters nearly every invoice draws: the labels of every page,
 * the 大写 numerals of the amount in words, digits and the punctuation of
 * amounts, rates and dates.  They are the form font's glyphs (internal.h),
 * embedded in every PDF and compressed once per renderer.  Characters of
 * only some invoices (the title's 增值税专用 or 普通, 红冲原, the
 * continuation line, letters of tax ids) are left out, since every PDF
 * would carry them: they go into the document's font when drawn, like any
 * character missing here. */
const char fp_pdf_form_chars[] = "电子发票（）号码：开日期年月"
                                 "购买方销售信息名称统一社会用代纳人识别"
                                 "项目规格型位数量单价金额税率征收合计　¥⊗大写小"
                                 "备注第页共"
                                 "零壹贰叁肆伍陆柒捌玖拾佰仟万亿圆角分整"
                                 " 0123456789.-%*/…";

/* ---- the document (read by invoice_doc.c) as the PDF shows it ---- */

typedef fp_doc_party party;

typedef struct item {
    const char *name, *spec, *unit, *qty, *price, *amount, *rate, *tax;
    char rate_buf[16]; /* "6%" */
} item;

typedef struct inv {
    const char *number, *issued_at, *title, *qr_kind;
    int red;
    party buyer, seller;
    item *items;
    int nitems;
    const char *total_amount, *total_tax, *total_with_tax, *words, *remark, *drawer, *original;
    char date_cn[32]; /* 2026年11月25日 */
    char ymd[9];      /* 20261125 */
    char created[32]; /* PDF creation date: issued_at when well-formed */
} inv;

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* "yyyy-MM-dd…" (checked by the reader) -> date_cn, ymd; the PDF creation
 * date from a full "yyyy-MM-ddTHH:mm:ss" with an optional zone. */
static void parse_issued(inv *v, const char *s)
{
    size_t n = strlen(s);
    snprintf(v->date_cn, sizeof v->date_cn, "%.4s年%.2s月%.2s日", s, s + 5, s + 8);
    snprintf(v->ymd, sizeof v->ymd, "%.4s%.2s%.2s", s, s + 5, s + 8);
    int full = n >= 19 && s[10] == 'T' && is_digits(s + 11, 2) && s[13] == ':' &&
               is_digits(s + 14, 2) && s[16] == ':' && is_digits(s + 17, 2);
    const char *z = s + 19;
    int zone_ok = full && (n == 19 || strcmp(z, "Z") == 0 ||
                           (n == 25 && (z[0] == '+' || z[0] == '-') && is_digits(z + 1, 2) &&
                            z[3] == ':' && is_digits(z + 4, 2)));
    if (zone_ok)
        snprintf(v->created, sizeof v->created, "%s", s);
    else
        snprintf(v->created, sizeof v->created, "%.10sT00:00:00", s);
}

/* "0.06" -> "6%", "0.015" -> "1.5%"; anything fp_rate_parse rejects is
 * shown as given. */
static const char *rate_text(const char *rate, char *buf, size_t n)
{
    int bp;
    if (fp_rate_parse(rate, &bp) < 0 || bp < 0)
        return rate;
    int whole = bp / 100, frac = bp % 100;
    if (frac == 0)
        snprintf(buf, n, "%d%%", whole);
    else if (frac % 10 == 0)
        snprintf(buf, n, "%d.%d%%", whole, frac / 10);
    else
        snprintf(buf, n, "%d.%02d%%", whole, frac);
    return buf;
}

/* Fills v from d (strings point into d); 0 or FP_ENOMEM. */
static int view_of(const fp_invoice_doc *d, inv *v, fp_err *err)
{
    memset(v, 0, sizeof *v);
    v->number = d->number;
    v->issued_at = d->issued_at;
    parse_issued(v, d->issued_at);
    v->title = d->type->title;
    v->qr_kind = d->type->qr;
    v->red = d->red;
    v->seller = d->seller;
    v->buyer = d->buyer;
    v->total_amount = d->total_amount;
    v->total_tax = d->total_tax;
    v->total_with_tax = d->total_with_tax;
    v->words = d->total_with_tax_words;
    v->drawer = d->drawer;
    v->remark = d->remark;
    v->original = d->original_number;
    v->items = calloc((size_t)d->nitems, sizeof *v->items);
    if (!v->items)
        return fp_fail(err, FP_ENOMEM, "out of memory");
    for (int i = 0; i < d->nitems; i++) {
        const fp_doc_item *it = &d->items[i];
        item *t = &v->items[i];
        t->name = it->name;
        t->spec = it->spec;
        t->unit = it->unit;
        t->qty = it->quantity;
        t->price = it->unit_price; /* the net price, also on tax-inclusive lines */
        t->amount = it->amount;
        t->rate = it->shown_rate ? it->shown_rate
                                 : rate_text(it->tax_rate, t->rate_buf, sizeof t->rate_buf);
        t->tax = it->shown_rate ? it->shown_tax : it->tax;
    }
    v->nitems = d->nitems;
    return 0;
}

static int qr_text(const inv *v, char *buf, size_t n)
{
    int k = snprintf(buf, n, "01,%s,,%s,%s,%s,,", v->qr_kind, v->number, v->total_amount, v->ymd);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* ---- drawing ---- */

static void hline(fp_pdf_dc *c, double x0, double x1, double y)
{
    fp_pdf_move(c, MM(x0), MM(y));
    fp_pdf_line(c, MM(x1), MM(y));
}

static void vline(fp_pdf_dc *c, double x, double y0, double y1)
{
    fp_pdf_move(c, MM(x), MM(y0));
    fp_pdf_line(c, MM(x), MM(y1));
}

static void draw_qr(fp_pdf_dc *c, const QRcode *q)
{
    int n = q->width;
    double mod = QR_SIZE / n;
    fp_pdf_colour(c, INK);
    for (int y = 0; y < n; y++) {
        const unsigned char *row = q->data + (size_t)y * (size_t)n;
        for (int x = 0; x < n;) {
            if (!(row[x] & 1)) {
                x++;
                continue;
            }
            int x1 = x;
            while (x1 < n && (row[x1] & 1))
                x1++;
            fp_pdf_rect(c, x, y, x1 - x, 1); /* in modules */
            x = x1;
        }
    }
    /* one path (no seams between modules), in module units: short numbers */
    fp_pdf_fill_scaled(c, MM(QR_X), MM(QR_Y), MM(mod));
}

/* A label in the form's colour followed by a value in ink, on one line
 * centred at cy, the value fitted into what is left up to x_end. */
static void pair(fp_pdf_dc *c, const char *lbl, const char *val, double x, double cy, double x_end,
                 double h, double size)
{
    fp_pdf_colour(c, FORM);
    double lw = fp_pdf_label(c, lbl, x, cy, size);
    fp_pdf_colour(c, INK);
    if (val && x + lw < x_end)
        fp_pdf_text_box(c, val, x + lw, cy - h / 2, x_end - (x + lw), h, size + 0.5, 5.5, AL_LEFT,
                        1);
}

static void draw_header(fp_pdf_dc *c, const inv *v, const QRcode *q)
{
    draw_qr(c, q);

    /* title, with the double rule under it */
    fp_pdf_colour(c, FORM);
    int n = fp_pdf_measure(c, v->title);
    double tw = fp_pdf_width(&c->r->m, 0, n) * 17.0 * 25.4 / 72.0;
    double tx = PAGE_W / 2 - tw / 2;
    fp_pdf_label(c, v->title, tx, 13.0, 17.0);
    fp_pdf_line_width(c, 0.6);
    hline(c, tx - 4, tx + tw + 4, 18.2);
    hline(c, tx - 4, tx + tw + 4, 19.0);
    fp_pdf_stroke(c);

    if (v->red) {
        /* a stamp-like 红字 between the QR code and the title */
        double sx = 46.0, sy = 6.5, sw = 20.0, sh = 11.0;
        fp_pdf_colour(c, STAMP);
        fp_pdf_line_width(c, 1.4);
        fp_pdf_rect(c, MM(sx), MM(sy), MM(sw), MM(sh));
        fp_pdf_stroke(c);
        fp_pdf_line_width(c, 0.5);
        fp_pdf_rect(c, MM(sx + 0.9), MM(sy + 0.9), MM(sw - 1.8), MM(sh - 1.8));
        fp_pdf_stroke(c);
        fp_pdf_text_box(c, "红字", sx, sy, sw, sh, 16.0, 10.0, AL_CENTRE, 0);
    }

    pair(c, "发票号码：", v->number, INFO_X, 9.5, FRAME_R, 4.5, 8.5);
    pair(c, "开票日期：", v->date_cn, INFO_X, 15.0, FRAME_R, 4.5, 8.5);
    if (v->red && v->original)
        pair(c, "红冲原发票号码：", v->original, INFO_X, 20.5, FRAME_R, 4.5, 8.5);

    /* buyer | seller */
    const double half = (FRAME_L + FRAME_R) / 2;
    const struct {
        const char *title;
        const party *p;
        double x0, x1;
    } sides[2] = {
        {"购买方信息", &v->buyer, FRAME_L, half},
        {"销售方信息", &v->seller, half, FRAME_R},
    };
    for (int i = 0; i < 2; i++) {
        double x0 = sides[i].x0, x1 = sides[i].x1, cx = x0 + SIDE_W + 1.5;
        fp_pdf_colour(c, FORM);
        fp_pdf_vertical(c, sides[i].title, x0, FRAME_T, SIDE_W, PARTY_B - FRAME_T, 7.5);
        pair(c, "名称：", sides[i].p->name, cx, FRAME_T + 3.5, x1 - 1.5, 5.0, 8.0);
        pair(c, "统一社会信用代码/纳税人识别号：", sides[i].p->tax_id, cx, FRAME_T + 8.5, x1 - 1.5,
             4.0, 7.5);
        /* address + phone, bank + account (issue 16): the seller's from
         * `fapiao sellers`, the buyer's when the request gave them */
        const char *two[2][2] = {{sides[i].p->address, sides[i].p->phone},
                                 {sides[i].p->bank, sides[i].p->account}};
        static const char *const lbl[2] = {"地址、电话：", "开户行及账号："};
        for (int k = 0; k < 2; k++) {
            char txt[2048];
            snprintf(txt, sizeof txt, "%s%s%s", two[k][0] ? two[k][0] : "",
                     two[k][0] && *two[k][0] && two[k][1] && *two[k][1] ? " " : "",
                     two[k][1] ? two[k][1] : "");
            pair(c, lbl[k], txt, cx, FRAME_T + 12.5 + 3.8 * k, x1 - 1.5, 3.5, 7.0);
        }
    }

    /* the table's header row */
    fp_pdf_colour(c, FORM);
    double x = FRAME_L;
    for (int k = 0; k < NCOLS; k++) {
        fp_pdf_text_box(c, cols[k].title, x, PARTY_B, cols[k].width, HEAD_B - PARTY_B, 8.0, 6.0,
                        AL_CENTRE, 0);
        x += cols[k].width;
    }
}

static void draw_row(fp_pdf_dc *c, const item *t, double y)
{
    const char *cells[NCOLS] = {t->name,  t->spec,   t->unit, t->qty,
                                t->price, t->amount, t->rate, t->tax};
    double x = FRAME_L;
    fp_pdf_colour(c, INK);
    for (int k = 0; k < NCOLS; k++) {
        if (cells[k])
            fp_pdf_text_box(c, cells[k], x + PAD, y, cols[k].width - 2 * PAD, ROW_H, 7.5,
                            cols[k].wrap ? 5.5 : 4.5, cols[k].align, cols[k].wrap);
        x += cols[k].width;
    }
}

/* x of the left edge of column k */
static double col_x(int k)
{
    double x = FRAME_L;
    for (int i = 0; i < k; i++)
        x += cols[i].width;
    return x;
}

static void draw_totals(fp_pdf_dc *c, const inv *v)
{
    char buf[64];
    const double gross_label = 52.0;

    fp_pdf_colour(c, FORM);
    fp_pdf_text_box(c, "合　　计", col_x(C_NAME), ROWS_B, cols[C_NAME].width, TOTAL_B - ROWS_B, 8.5,
                    6, AL_CENTRE, 0);
    fp_pdf_colour(c, INK);
    snprintf(buf, sizeof buf, "¥%s", v->total_amount);
    fp_pdf_text_box(c, buf, col_x(C_AMOUNT) + PAD, ROWS_B, cols[C_AMOUNT].width - 2 * PAD,
                    TOTAL_B - ROWS_B, 8.5, 4.5, AL_RIGHT, 0);
    snprintf(buf, sizeof buf, "¥%s", v->total_tax);
    fp_pdf_text_box(c, buf, col_x(C_TAX) + PAD, ROWS_B, cols[C_TAX].width - 2 * PAD,
                    TOTAL_B - ROWS_B, 8.5, 4.5, AL_RIGHT, 0);

    /* 价税合计 */
    fp_pdf_colour(c, FORM);
    fp_pdf_text_box(c, "价税合计（大写）", FRAME_L, TOTAL_B, gross_label - FRAME_L,
                    GROSS_B - TOTAL_B, 8.5, 6, AL_CENTRE, 0);
    double cy = (TOTAL_B + GROSS_B) / 2;
    fp_pdf_label(c, "⊗", gross_label + 2.0, cy, 9.0);
    fp_pdf_colour(c, INK);
    fp_pdf_text_box(c, v->words, gross_label + 6.0, TOTAL_B, 108.0, GROSS_B - TOTAL_B, 9.0, 5.5,
                    AL_LEFT, 0);
    fp_pdf_colour(c, FORM);
    double lw = fp_pdf_label(c, "（小写）", 168.0, cy, 8.5);
    fp_pdf_colour(c, INK);
    snprintf(buf, sizeof buf, "¥%s", v->total_with_tax);
    fp_pdf_text_box(c, buf, 168.0 + lw, TOTAL_B, FRAME_R - 1.5 - (168.0 + lw), GROSS_B - TOTAL_B,
                    9.0, 5.0, AL_LEFT, 0);

    /* 备注 */
    fp_pdf_colour(c, FORM);
    fp_pdf_vertical(c, "备注", FRAME_L, GROSS_B, SIDE_W, FRAME_B - GROSS_B, 8.0);
    fp_pdf_colour(c, INK);
    if (v->remark)
        fp_pdf_text_box(c, v->remark, FRAME_L + SIDE_W + 1.5, GROSS_B + 0.5,
                        FRAME_R - FRAME_L - SIDE_W - 3.0, FRAME_B - GROSS_B - 1.0, 8.0, 5.5,
                        AL_LEFT, 1);

    /* rules of the bottom part */
    fp_pdf_colour(c, FORM);
    fp_pdf_line_width(c, 0.5);
    hline(c, FRAME_L, FRAME_R, ROWS_B);
    hline(c, FRAME_L, FRAME_R, TOTAL_B);
    hline(c, FRAME_L, FRAME_R, GROSS_B);
    vline(c, gross_label, TOTAL_B, GROSS_B);
    vline(c, FRAME_L + SIDE_W, GROSS_B, FRAME_B);
    fp_pdf_stroke(c);
}

static void draw_page(fp_pdf_dc *c, const inv *v, const QRcode *q, int page, int npages)
{
    char buf[96];
    draw_header(c, v, q);

    int first = page * FP_PDF_ROWS_PER_PAGE;
    for (int i = 0; i < FP_PDF_ROWS_PER_PAGE && first + i < v->nitems; i++)
        draw_row(c, &v->items[first + i], HEAD_B + i * ROW_H);

    if (page == npages - 1) {
        draw_totals(c, v);
    } else {
        fp_pdf_colour(c, FORM);
        snprintf(buf, sizeof buf, "（本页未完，续见第 %d 页）", page + 2);
        fp_pdf_text_box(c, buf, FRAME_L, ROWS_B, FRAME_R - FRAME_L, FRAME_B - ROWS_B, 9.0, 6.0,
                        AL_CENTRE, 0);
        fp_pdf_line_width(c, 0.5);
        hline(c, FRAME_L, FRAME_R, ROWS_B);
        fp_pdf_stroke(c);
    }

    /* the frame */
    fp_pdf_colour(c, FORM);
    fp_pdf_line_width(c, 0.8);
    fp_pdf_rect(c, MM(FRAME_L), MM(FRAME_T), MM(FRAME_R - FRAME_L), MM(FRAME_B - FRAME_T));
    fp_pdf_stroke(c);
    fp_pdf_line_width(c, 0.5);
    const double half = (FRAME_L + FRAME_R) / 2;
    hline(c, FRAME_L, FRAME_R, PARTY_B);
    vline(c, half, FRAME_T, PARTY_B);
    vline(c, FRAME_L + SIDE_W, FRAME_T, PARTY_B);
    vline(c, half + SIDE_W, FRAME_T, PARTY_B);
    fp_pdf_stroke(c);

    /* footer */
    double fy = FRAME_B + 4.5;
    pair(c, "开票人：", v->drawer, FRAME_L + 2.0, fy, 120.0, 4.5, 8.5);
    fp_pdf_colour(c, FORM);
    snprintf(buf, sizeof buf, "第 %d 页 / 共 %d 页", page + 1, npages);
    fp_pdf_text_box(c, buf, 150.0, fy - 2.25, FRAME_R - 150.0, 4.5, 8.0, 6.0, AL_RIGHT, 0);
}

/* ---- output ---- */

static int render(fp_pdf_renderer *r, const inv *v, const QRcode *q, fp_buf *out, fp_err *err)
{
    int npages = FP_PDF_PAGES(v->nitems);
    fp_pdf_file f;
    int rc = fp_pdf_file_begin(&f, r, out, npages);
    if (rc)
        return fp_fail(err, rc,
                       rc == FP_ERANGE ? "the PDF exceeds the output limit" : "out of memory");
    for (int p = 0; p < npages; p++) {
        fp_pdf_dc c;
        fp_pdf_page_begin(&f, &c, err);
        draw_page(&c, v, q, p, npages);
        if ((rc = fp_pdf_page_end(&f, &c, err)) != 0)
            return rc;
    }
    char title[64];
    snprintf(title, sizeof title, "电子发票 %s", v->number);
    fp_pdf_meta meta = {.title = title, .created = v->created};
    return fp_pdf_file_end(&f, &meta, err);
}

/* Reads doc; on success the caller frees v->items and clears d. */
static int load(const char *doc, size_t len, fp_invoice_doc *d, inv *v, fp_err *err)
{
    int rc = fp_invoice_doc_read(doc, len, d, err);
    if (rc == 0 && (rc = view_of(d, v, err)) < 0)
        fp_invoice_doc_clear(d);
    return rc;
}

int fp_pdf_qr_text(const char *doc, size_t len, char *buf, size_t n, fp_err *err)
{
    fp_invoice_doc d;
    inv v;
    int rc = load(doc, len, &d, &v, err);
    if (rc)
        return rc;
    if (qr_text(&v, buf, n) < 0)
        rc = fp_fail(err, FP_ERANGE, "QR text buffer too small");
    free(v.items);
    fp_invoice_doc_clear(&d);
    return rc;
}

int fp_pdf_render(fp_pdf_renderer *r, const char *doc, size_t len, fp_buf *out, int *pages,
                  fp_err *err)
{
    if (!r || !out)
        return fp_fail(err, FP_EINVAL, "no renderer or output buffer");
    fp_invoice_doc d;
    inv v;
    int rc = load(doc, len, &d, &v, err);
    if (rc)
        return rc;
    size_t start = out->len;
    int overflow = out->overflow;
    int had_mem = out->p != NULL;
    char text[160];
    QRcode *q = NULL;
    if (qr_text(&v, text, sizeof text) < 0) {
        rc = fp_fail(err, FP_EINVAL, "invoice document: total_amount too long for the QR code");
    } else if (!(q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1))) {
        rc = errno == ENOMEM ? fp_fail(err, FP_ENOMEM, "out of memory")
                             : fp_fail(err, FP_EINVAL, "cannot encode the QR code");
    } else {
        rc = render(r, &v, q, out, err);
    }
    QRcode_free(q);
    if (rc) {
        if (!had_mem) /* as it was: nothing allocated (a caller's error path frees nothing) */
            fp_buf_free(out);
        out->len = start; /* as it was */
        out->overflow = overflow;
    } else if (pages) {
        *pages = FP_PDF_PAGES(v.nitems);
    }
    free(v.items);
    fp_invoice_doc_clear(&d);
    return rc;
}
