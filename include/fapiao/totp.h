/* totp.h — time-based one-time passwords (RFC 6238 on RFC 4226's HOTP),
 * the console's mandatory second factor (docs/console.md).
 *
 * HMAC-SHA-1, -256 or -512 (nettle) over the 8-byte big-endian time step,
 * dynamic truncation, 6..8 decimal digits.  The seed travels as base32
 * (RFC 4648, no padding) in an otpauth:// URI, as authenticator apps read
 * it.  Replay protection is the caller's: fp_totp_verify returns the time
 * step that matched, and the caller refuses any step <= the last one it
 * accepted for that user. */
#ifndef FAPIAO_TOTP_H
#define FAPIAO_TOTP_H

#include <stddef.h>
#include <stdint.h>

typedef enum { FP_TOTP_SHA1 = 0, FP_TOTP_SHA256, FP_TOTP_SHA512 } fp_totp_alg;

#define FP_TOTP_STEP_S   30
#define FP_TOTP_SEED_LEN 20 /* the seed fapiao makes (SHA-1, 160 bits) */
#define FP_TOTP_SEED_MAX 64
#define FP_TOTP_B32_MAX  104 /* base32 of FP_TOTP_SEED_MAX bytes, with NUL */

/* The code for time step `step` (unix time / 30) as `digits` digits with
 * leading zeros into out (digits + 1 bytes).  0, or FP_EINVAL. */
int fp_totp_code(fp_totp_alg alg, const unsigned char *seed, size_t seed_len, uint64_t step,
                 int digits, char *out);

/* Checks `code` (6 digits, SHA-1) against the steps now-window..now+window
 * (each a 30 s step; window 1 accepts a clock one step off).  Returns the
 * matching step (> 0) or -1; compares in constant time per step. */
int64_t fp_totp_verify(const unsigned char *seed, size_t seed_len, int64_t unix_now, int window,
                       const char *code);

/* Base32 (RFC 4648 alphabet, no padding).  encode: out needs
 * ceil(8n/5)+1 bytes.  decode: ignores case, spaces and '='; returns the
 * decoded length or -1. */
void fp_base32_encode(const unsigned char *in, size_t n, char *out);
int fp_base32_decode(const char *in, unsigned char *out, size_t cap);

#endif
