/* qr_png.c — a QR code as a PNG for the TOTP enrolment (console.h): the
 * modules from libqrencode, the PNG written here (8-bit grey, one IDAT
 * through zlib), so no image library is needed. */
#include "internal.h"

#include <arpa/inet.h>
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SCALE 4
#define QUIET 4

static unsigned char *chunk(unsigned char *p, const char *type, const unsigned char *d, uint32_t n)
{
    uint32_t be = htonl(n);
    memcpy(p, &be, 4);
    memcpy(p + 4, type, 4);
    if (n)
        memcpy(p + 8, d, n);
    uint32_t crc = htonl((uint32_t)crc32(crc32(0, NULL, 0), p + 4, n + 4));
    memcpy(p + 8 + n, &crc, 4);
    return p + 12 + n;
}

int fp_qr_png(const char *text, unsigned char **png, size_t *len)
{
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (!q)
        return FP_EINVAL;
    size_t side = ((size_t)q->width + 2 * QUIET) * SCALE, row = side + 1;
    unsigned char *raw = malloc(row * side);
    uLongf zlen = compressBound((uLong)(row * side));
    unsigned char *z = malloc(zlen), *out = malloc(zlen + 64);
    if (!raw || !z || !out) {
        free(raw), free(z), free(out);
        QRcode_free(q);
        return FP_ENOMEM;
    }
    memset(raw, 0xff, row * side);
    for (size_t y = 0; y < side; y++) {
        raw[y * row] = 0; /* filter: none */
        long my = (long)(y / SCALE) - QUIET;
        for (size_t x = 0; x < side; x++) {
            long mx = (long)(x / SCALE) - QUIET;
            if (my >= 0 && mx >= 0 && my < q->width && mx < q->width &&
                (q->data[my * q->width + mx] & 1))
                raw[y * row + 1 + x] = 0;
        }
    }
    int zrc = compress2(z, &zlen, raw, (uLong)(row * side), 9);
    unsigned char ihdr[13] = {0};
    uint32_t w = htonl((uint32_t)side);
    memcpy(ihdr, &w, 4);
    memcpy(ihdr + 4, &w, 4);
    ihdr[8] = 8; /* bit depth; colour type 0 (grey), compression, filter, interlace 0 */
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    unsigned char *p = chunk(out + 8, "IHDR", ihdr, sizeof ihdr);
    p = chunk(p, "IDAT", z, (uint32_t)zlen);
    p = chunk(p, "IEND", NULL, 0);
    free(raw);
    free(z);
    QRcode_free(q);
    if (zrc != Z_OK) {
        free(out);
        return FP_ENOMEM;
    }
    *png = out;
    *len = (size_t)(p - out);
    return 0;
}
