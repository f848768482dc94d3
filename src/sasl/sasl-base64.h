/*
 * sasl-base64 — the base64 of SASL exchanges (RFC 4648 §4), strict and bounded.
 *
 * SMTP AUTH (RFC 4954 §4), IMAP AUTHENTICATE (RFC 9051 §6.2.2) and POP3 AUTH
 * (RFC 5034 §4) carry every challenge and response in base64. What a client sends
 * usually holds a password, so the decoder:
 * - accepts only the canonical encoding: a multiple of 4 characters from the
 *   RFC 4648 §4 alphabet, "=" padding only as the last one or two characters, and
 *   zero pad bits (RFC 4648 §3.5 allows rejecting non-zero ones). No whitespace,
 *   no line breaks, no URL-safe alphabet (RFC 4648 §3.1–3.3);
 * - maps characters to values without table look-ups or branches on the data, so
 *   cache and branch timing do not follow the secret;
 * - never writes past out_size and wipes what it wrote when it refuses the input.
 * The encoder is for challenges (never secret); it always pads.
 */
#ifndef RAMPART_SASL_BASE64_H
#define RAMPART_SASL_BASE64_H

#include <stddef.h>

/* Octets that a base64 text of n characters can decode to, at most. */
#define SASL_BASE64_DECODED_MAX(n) ((n) / 4 * 3)
/* Characters (without the NUL) that encoding n octets produces. */
#define SASL_BASE64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/*
 * Decodes in[0..len) (no NUL needed) into out[0..out_size). Returns 0 with
 * *out_len_r set, or -1 when the text is not canonical base64 or its decoded
 * length exceeds out_size; out then holds only zeros where it was written.
 * An empty text decodes to zero octets.
 */
int sasl_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_size,
		       size_t *out_len_r);

/*
 * Encodes in[0..len) into out, NUL-terminated. out_size must be at least
 * SASL_BASE64_ENCODED_LEN(len) + 1; returns 0, or -1 (out untouched) when it is
 * not.
 */
int sasl_base64_encode(const void *in, size_t len, char *out, size_t out_size);

#endif
