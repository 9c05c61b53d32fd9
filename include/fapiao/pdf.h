/* pdf.h — the invoice PDF (a display copy; the data is authoritative, see
 * docs/domain.md), written directly (no drawing library) from the stored
 * invoice document, the same JSON fp_xml_from_doc reads (include/fapiao/xml.h).
 *
 * Rendering (src/render/pdf.c).  One page is 241 mm x 140 mm, the 数电票
 * paper size, laid out like the tax bureau's 数电票:
 *
 *   QR code (top left)   电子发票（普通发票）        发票号码：<number>
 *   [红字 stamp, red]    ══════════════════          开票日期：yyyy年MM月dd日
 *                                                    [红冲原发票号码：… (red)]
 *   ┌ 购买方信息: 名称, 统一社会信用代码/纳税人识别号 │ 销售方信息: the same ┐
 *   │ 项目名称 规格型号 单位 数量 单价 金额 税率/征收率 税额               │
 *   │ FP_PDF_ROWS_PER_PAGE line rows                                        │
 *   │ 合计                                   ¥total_amount      ¥total_tax │
 *   │ 价税合计（大写） ⊗ total_with_tax_words        （小写）¥total_with_tax │
 *   └ 备注 remark                                                           ┘
 *   开票人：<drawer>                                         第 n 页 / 共 N 页
 *
 * Title: 电子发票（增值税专用发票） for invoice_type "01", 电子发票（普通发票）
 * for "02".  Every value is the document's string, printed as given (amounts
 * are never converted, so a red invoice shows its negative amounts as
 * stored); tax_rate "0.06" is shown as 6%.  Display rules as in xml.h: an
 * exempt line (policy "exempt") shows 免税 and tax ***, a non-taxable line
 * (policy "non_taxable") shows 不征税 and an empty tax cell.  A text too wide
 * for its cell is shrunk a little, then wrapped onto as many lines as the
 * cell holds, and finally cut with "…"; it never leaves its cell.  A red
 * invoice (color "red") carries a red 红字 stamp left of the title and, when
 * the document has original_number, 红冲原发票号码 under the date.
 *
 * Pages: FP_PDF_ROWS_PER_PAGE lines per page, so an invoice of n lines has
 * ceil(n / FP_PDF_ROWS_PER_PAGE) pages.  Every page repeats the header (QR,
 * title, number, date, buyer, seller) and shows 第 n 页 / 共 N 页; 合计,
 * 价税合计 and 备注 are on the last page only, earlier pages say where the
 * table continues.
 *
 * QR code (libqrencode, error correction M, 8-bit mode) carries, modelled on
 * the 数电票 code, eight comma-separated fields:
 *
 *     01,<kind>,,<number>,<total_amount>,<yyyymmdd>,,
 *
 *   01            format version
 *   <kind>        31 for invoice_type "01" (电子发票（增值税专用发票）),
 *                 32 for "02" (电子发票（普通发票）)
 *   (empty)       发票代码: 数电票 have none
 *   <number>      the 20-digit invoice number
 *   <total_amount> 合计金额 (excluding tax) exactly as the document gives it,
 *                 e.g. 900.00, -1000.00 on a red invoice
 *   <yyyymmdd>    the issue date (from issued_at)
 *   (empty)       校验码: the tax bureau's check code, which we do not have
 *   (empty)       trailing field, as on the bureau's code
 *   e.g. "01,32,,26440000000000012345,900.00,20261125,,"
 *
 * Fonts: one TrueType face (default: Debian's fonts-wqy-microhei, face 0 of
 * the TTC) is loaded once per renderer with FreeType; every PDF embeds two
 * subsets of it (the form's characters, built once per renderer, and the
 * document's other characters), so a 10-line invoice is about 51 KB and
 * every character the font has renders, rare name characters (堃 喆 昇 赟 珺)
 * included.  The PDF's creation date is the invoice's issued_at, so the
 * same document gives the same bytes.  Why the renderer is built this way
 * and what it costs: docs/render-performance.md.
 *
 * Isolation (src/render/pdf_pool.c).  A render runs our PDF writer,
 * FreeType, zlib and libqrencode over data from the store; a bug or a
 * pathological document in them must not take the server down, stall it,
 * or eat its memory.  The pool keeps persistent worker PROCESSES
 * (`<exe> render-worker`, started with posix_spawn: the server is
 * multi-threaded, so fork without exec is out).  Each worker runs at
 * SCHED_IDLE (unless the pool is a foreground one: docs/render-performance.md),
 * limits its own address space (RLIMIT_AS, skipped in
 * sanitizer builds, whose shadow memory needs terabytes of it), reads
 * requests on stdin and writes replies on stdout, both one end of a
 * socketpair (a socket, not a pipe, so the parent can send with
 * MSG_NOSIGNAL: a worker that dies mid-request is an EPIPE, never a SIGPIPE
 * in the server, whatever its signal dispositions).  Framing, all integers
 * unsigned 32-bit big-endian:
 *
 *   request   len, doc[len]                 (len <= FP_PDF_MAX_DOC)
 *   reply     status, pages, len, data[len] status 0: data is the PDF;
 *                                           otherwise -status is the FP_E…
 *                                           code and data the error message
 *
 * (The worker keeps private copies of fds 0 and 1 for this and points fd 0
 * at /dev/null and fd 1 at stderr, so a library's stray printf cannot
 * corrupt the framing.)
 *
 * A caller takes a free worker (waiting for one within its time bound),
 * sends, and waits for the reply until timeout_ms from the call: on timeout
 * the worker is killed (SIGKILL) and reaped, FP_ETIMEDOUT returned, and a
 * fresh worker is spawned by the next render that needs that slot.  A
 * worker that dies (a crash, RLIMIT_AS making an allocation fail inside a
 * library that then aborts) gives FP_EIO with the reason ("render worker
 * killed by signal 6 (Aborted)"), one that reports running out of memory
 * gives FP_EIO "render worker: out of memory" and exits so that the next
 * render gets a fresh process; both are reaped at once, so no zombies stay
 * behind.  A document the renderer rejects comes back as FP_EINVAL with the
 * renderer's message (retrying it cannot help).  A worker found dead before
 * its request was sent (killed while idle) is replaced and the request sent
 * again, once, without the caller seeing it.
 *
 * When the server goes away, an idle worker reads EOF and exits; a busy one
 * finishes its render and exits on the failed write, and one stuck in a
 * render ends itself with alarm() at timeout_ms + 6 s (fp_pdf_worker_limits).
 * PR_SET_PDEATHSIG is not used: it fires when the *thread* that spawned the
 * worker exits, which would kill workers under a live server.
 *
 * Test-only fault hooks, read by the worker from its environment (the pool
 * passes the server's environment on):
 *   FP_RENDER_FAULT=sleep  the worker sleeps forever on a document whose
 *                          remark contains "FAULT:SLEEP" (proves timeouts)
 *   FP_RENDER_FAULT=crash  the worker abort()s on a document whose remark
 *                          contains "FAULT:CRASH" (proves crash recovery)
 *   FP_RENDER_FAULT=sleep,crash enables both.  Without the variable the
 *   remark is never looked at. */
#ifndef FAPIAO_PDF_H
#define FAPIAO_PDF_H

#include <stddef.h>

#include "fapiao/err.h"
#include "fapiao/json.h"

#define FP_PDF_DEFAULT_FONT  "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
#define FP_PDF_ROWS_PER_PAGE 10
/* Largest document a worker accepts, largest PDF it returns (a 5,000-line
 * invoice, the most docs/domain.md allows, is about 8 MB). */
#define FP_PDF_MAX_DOC (16u << 20)
#define FP_PDF_MAX_PDF (128u << 20)

/* Pages an invoice of n lines takes. */
#define FP_PDF_PAGES(n) (((n) + FP_PDF_ROWS_PER_PAGE - 1) / FP_PDF_ROWS_PER_PAGE)

/* ---- in-process rendering ---- */

/* Holds the loaded font.  Not thread-safe: one renderer per thread. */
typedef struct fp_pdf_renderer fp_pdf_renderer;

/* font_path NULL: FP_PDF_DEFAULT_FONT (face 0 of a TTC).  FP_EIO when the
 * font cannot be loaded, FP_ENOMEM. */
int fp_pdf_renderer_new(const char *font_path, fp_pdf_renderer **out, fp_err *err);
void fp_pdf_renderer_free(fp_pdf_renderer *r);

/* Renders the invoice document doc[0..len) as a PDF appended to out
 * (initialised by the caller); *pages (may be NULL) gets the page count.
 * Returns 0, FP_EINVAL when the document is not JSON or lacks / mistypes a
 * field the PDF needs (err names it: "invoice document lacks buyer.name"),
 * FP_ERANGE when the PDF would exceed out->max, FP_ENOMEM.  On failure out
 * is left as it was. */
int fp_pdf_render(fp_pdf_renderer *r, const char *doc, size_t len, fp_buf *out, int *pages,
                  fp_err *err);

/* The QR code's text (see above) for doc, NUL-terminated into buf[n]
 * (128 bytes suffice).  Returns 0, FP_EINVAL like fp_pdf_render, FP_ERANGE
 * when buf is too small. */
int fp_pdf_qr_text(const char *doc, size_t len, char *buf, size_t n, fp_err *err);

/* ---- isolation: a pool of worker processes ---- */

typedef struct fp_pdf_pool fp_pdf_pool;

typedef struct fp_pdf_pool_opts {
    const char *exe;       /* worker executable, e.g. /proc/self/exe resolved with readlink */
    const char *font_path; /* NULL: default */
    int workers;           /* 0: 2 */
    int timeout_ms;        /* per render, 0: 30000 */
    size_t mem_limit;      /* address space per worker, 0: 1 GiB (not applied under sanitizers) */
    int foreground;        /* 0: workers run at SCHED_IDLE (background rendering, never taking
                            * CPU from issuing); 1: at the normal policy, for a pool whose renders
                            * someone waits for (the render-on-first-request hook,
                            * docs/render-performance.md) */
} fp_pdf_pool_opts;

/* Starts opts->workers workers.  FP_EINVAL for bad options, FP_EIO when a
 * worker cannot be started (the executable is missing ...), FP_ENOMEM. */
int fp_pdf_pool_new(const fp_pdf_pool_opts *opts, fp_pdf_pool **out, fp_err *err);

/* Thread-safe; blocks the caller at most opts->timeout_ms in all (waiting
 * for a free worker included).  Same contract as fp_pdf_render, plus
 * FP_ETIMEDOUT (the worker was killed; no PDF) and FP_EIO (the worker
 * died or could not be started; err says why).  The server keeps running
 * whatever happens in a worker. */
int fp_pdf_pool_render(fp_pdf_pool *p, const char *doc, size_t len, fp_buf *out, int *pages,
                       fp_err *err);

/* Closes the workers' stdin, gives them a second to exit, then kills and
 * reaps them.  No render may be in flight.  NULL is a no-op. */
void fp_pdf_pool_free(fp_pdf_pool *p);

/* ---- the worker side (`fapiao render-worker`) ---- */

/* Limits of this worker process: its scheduling policy (SCHED_IDLE unless
 * foreground; nice 19 where SCHED_IDLE is refused), RLIMIT_AS to mem_bytes
 * (0: no change; not applied in sanitizer builds, returning 0), and a
 * render that runs render_ms + 6 s (render_ms > 0) ends the process with
 * SIGALRM — the pool kills it at render_ms already; this bounds an orphan.
 * FP_EIO when setrlimit or both sched_setscheduler and setpriority fail. */
int fp_pdf_worker_limits(size_t mem_bytes, int render_ms, int foreground, fp_err *err);

/* The worker loop: requests on stdin, replies on stdout (framing above)
 * until EOF on stdin.  Returns the process exit status: 0 after EOF
 * between requests, 1 on a broken stream, 3 after an out-of-memory reply.
 * If the font cannot be loaded, every request is answered with that
 * error. */
int fp_pdf_worker_main(const char *font_path);

#endif
