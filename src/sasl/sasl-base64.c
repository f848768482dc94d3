/* sasl-base64 — see sasl-base64.h. */
#include "sasl/sasl-base64.h"

#include <stdbool.h>

#include <sodium.h>

/* 0xff when lo <= c <= hi, else 0 (all three below 256), without a branch: both
 * differences stay below 256 exactly when c is in range; otherwise one of them
 * wraps around and >> 8 leaves 0xffffff, whose complement has a zero low byte. */
static unsigned
ct_in_range(unsigned c, unsigned lo, unsigned hi)
{
	return ~(((c - lo) | (hi - c)) >> 8) & 0xffU;
}

/* The 6-bit value of a character of the RFC 4648 §4 alphabet (Table 1), or a
 * value with bit 8 set when c is not in it ("=" included: padding is handled by
 * position in the caller). */
static unsigned
b64_value(unsigned char ch)
{
	unsigned c = ch;
	unsigned upper = ct_in_range(c, 'A', 'Z'), lower = ct_in_range(c, 'a', 'z');
	unsigned digit = ct_in_range(c, '0', '9');
	unsigned plus = ct_in_range(c, '+', '+'), slash = ct_in_range(c, '/', '/');
	unsigned v = (upper & (c - 'A')) | (lower & (c - 'a' + 26)) | (digit & (c - '0' + 52)) |
		     (plus & 62U) | (slash & 63U);
	unsigned valid = upper | lower | digit | plus | slash;

	return v | ((~valid & 0xffU) << 8);
}

int
sasl_base64_decode(const char *in, size_t len, unsigned char *out, size_t out_size,
		   size_t *out_len_r)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pad = 0, o = 0, need;
	unsigned bad = 0;

	/* RFC 4648 §4: the encoded output is always a multiple of 4 characters when
	 * padded; padding is one or two "=" at the very end (§3.2). */
	if (len % 4 != 0)
		return -1;
	if (len > 0 && s[len - 1] == '=') {
		pad++;
		if (s[len - 2] == '=')
			pad++;
	}
	need = SASL_BASE64_DECODED_MAX(len) - pad;
	if (need > out_size)
		return -1;

	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		size_t drop = last ? pad : 0;
		unsigned a = b64_value(s[i]), b = b64_value(s[i + 1]);
		unsigned c = drop == 2 ? 0 : b64_value(s[i + 2]);
		unsigned d = drop >= 1 ? 0 : b64_value(s[i + 3]);
		unsigned long quad = ((unsigned long)(a & 63U) << 18) | ((b & 63U) << 12) |
				     ((c & 63U) << 6) | (d & 63U);

		bad |= (a | b | c | d) & ~63U;
		/* RFC 4648 §3.5: the pad bits of the last quantum must be zero for the
		 * encoding to be canonical; we reject the others. */
		if (drop == 2)
			bad |= (b & 0x0fU) << 8;
		else if (drop == 1)
			bad |= (c & 0x03U) << 8;
		out[o++] = (unsigned char)(quad >> 16);
		if (drop < 2)
			out[o++] = (unsigned char)(quad >> 8);
		if (drop < 1)
			out[o++] = (unsigned char)quad;
	}
	if (bad != 0) {
		sodium_memzero(out, o);
		return -1;
	}
	*out_len_r = o;
	return 0;
}

int
sasl_base64_encode(const void *in, size_t len, char *out, size_t out_size)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = in;
	size_t o = 0;

	if (out_size == 0 || len > (out_size - 1) / 4 * 3)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		size_t n = len - i < 3 ? len - i : 3;
		unsigned long quad = (unsigned long)p[i] << 16;

		if (n > 1)
			quad |= (unsigned long)p[i + 1] << 8;
		if (n > 2)
			quad |= p[i + 2];
		out[o++] = alphabet[(quad >> 18) & 63];
		out[o++] = alphabet[(quad >> 12) & 63];
		out[o++] = n > 1 ? alphabet[(quad >> 6) & 63] : '=';
		out[o++] = n > 2 ? alphabet[quad & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}
