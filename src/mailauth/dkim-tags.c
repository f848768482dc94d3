/*
 * dkim-tags — the tag=value list of RFC 6376 §3.2, shared by DKIM-Signature fields
 * (§3.5) and key records (§3.6.1), with the small helpers both need: base64 of
 * b=, bh= and p=, domain-name checks, and a growable buffer.
 *
 *   tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
 *   tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
 *   tag-name  =  ALPHA *ALNUMPUNC
 *   tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
 *   tval      =  1*VALCHAR          VALCHAR = %x21-3A / %x3C-7E
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "mailauth/dkim-private.h"

bool dkim_buf_reserve(struct dkim_buf *b, size_t more)
{
	size_t cap = b->cap != 0 ? b->cap : 256;
	char *p;

	if (b->failed)
		return false;
	if (more <= b->cap - b->len)
		return true;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2) {
			b->failed = true;
			return false;
		}
		cap *= 2;
	}
	if ((p = realloc(b->p, cap)) == NULL) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void dkim_buf_add(struct dkim_buf *b, const void *data, size_t len)
{
	if (len == 0 || !dkim_buf_reserve(b, len))
		return;
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

void dkim_buf_free(struct dkim_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

void dkim_tags_clear(struct dkim_tags *t)
{
	free(t->buf);
	t->buf = NULL;
	t->n = 0;
}

int dkim_tags_parse(struct dkim_tags *t, const char *text, size_t len, const char **error_r)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t pos = 0, out = 0;

	t->buf = NULL;
	t->n = 0;
	if (len > DKIM_TAGS_TEXT_MAX) {
		*error_r = "The tag list is too long.";
		return -1;
	}
	/* Names and values are disjoint parts of text, each tag at least "x=":
	 * their copies with a NUL each fit in 2 * len + 2. */
	if ((t->buf = malloc(2 * len + 2)) == NULL) {
		*error_r = "Out of memory.";
		return -1;
	}
	for (;;) {
		struct dkim_tag *tag;
		size_t name_start, name_end, vstart, vend;

		while (pos < len && is_ws(s[pos]))
			pos++;
		if (pos == len)
			break;       /* empty list, or after a trailing ';' */
		if (!is_alpha(s[pos])) {
			*error_r = s[pos] == ';' ? "The tag list has an empty tag-spec." :
			    "A tag name does not start with a letter.";
			goto fail;
		}
		name_start = pos;
		while (pos < len && (is_alpha(s[pos]) || is_digit(s[pos]) || s[pos] == '_'))
			pos++;
		name_end = pos;
		while (pos < len && is_ws(s[pos]))
			pos++;
		if (pos == len || s[pos] != '=') {
			*error_r = "A tag name is not followed by '='.";
			goto fail;
		}
		pos++;
		if (t->n == DKIM_TAGS_MAX) {
			*error_r = "The tag list has too many tags.";
			goto fail;
		}
		tag = &t->tag[t->n];
		tag->raw_start = pos;
#ifdef __SSE2__
		/* 16 octets at a time while there is no ';' and no octet the loop
		 * below must look at (a control character other than WSP, DEL). */
		while (len - pos >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + pos));
			__m128i printable = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x21)), v);
			__m128i ws = _mm_or_si128(
			    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
			    _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'))),
			    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
			    _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
			__m128i stop = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(';')),
			    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)),
			    _mm_andnot_si128(_mm_or_si128(printable, ws), _mm_set1_epi8(-1))));
			unsigned bits = (unsigned)_mm_movemask_epi8(stop);

			if (bits != 0) {
				pos += (size_t)__builtin_ctz(bits);
				break;
			}
			pos += 16;
		}
#endif
		while (pos < len && s[pos] != ';') {
			if ((s[pos] < 0x21 && !is_ws(s[pos])) || s[pos] == 0x7f) {
				*error_r = "A tag value contains a control character.";
				goto fail;
			}
			pos++;
		}
		tag->raw_end = pos;
		vstart = tag->raw_start;
		vend = pos;
		while (vstart < vend && is_ws(s[vstart]))
			vstart++;
		while (vend > vstart && is_ws(s[vend - 1]))
			vend--;
		/* RFC 6376 §3.2: "Tags with duplicate names MUST NOT occur". */
		for (size_t i = 0; i < t->n; i++) {
			if (strlen(t->tag[i].name) == name_end - name_start &&
			    memcmp(t->tag[i].name, s + name_start, name_end - name_start) == 0) {
				*error_r = "A tag occurs twice.";
				goto fail;
			}
		}
		tag->name = t->buf + out;
		memcpy(t->buf + out, s + name_start, name_end - name_start);
		out += name_end - name_start;
		t->buf[out++] = '\0';
		tag->value = t->buf + out;
		tag->value_len = vend - vstart;
		memcpy(t->buf + out, s + vstart, vend - vstart);
		out += vend - vstart;
		t->buf[out++] = '\0';
		t->n++;
		if (pos == len)
			break;
		pos++;   /* ';' */
	}
	return 0;
fail:
	dkim_tags_clear(t);
	return -1;
}

const struct dkim_tag *dkim_tags_find(const struct dkim_tags *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->tag[i].name[0] == name[0] && strcmp(t->tag[i].name, name) == 0)
			return &t->tag[i];
	return NULL;
}

/* RFC 4648 §4 alphabet: 0..63; '=' -2; SP, TAB, CR, LF -3 (skipped); else -1. */
static const signed char b64[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -3, -3, -1, -1, -3, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-3, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -2, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

int dkim_base64_decode(const char *s, size_t len, unsigned char *out, size_t max, size_t *len_r)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t acc = 0;
	unsigned nq = 0, pad = 0;      /* characters in this quantum; '=' seen */
	size_t o = 0, i = 0;

	while (i < len) {
		int v;

		/* Four alphabet characters at a quantum's start: three octets. */
		if (nq == 0 && len - i >= 4 && max - o >= 3) {
			int a = b64[u[i]], b = b64[u[i + 1]], c = b64[u[i + 2]], d = b64[u[i + 3]];

			if ((a | b | c | d) >= 0) {
				if (pad > 0)
					return -1;      /* data after padding */
				acc = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 |
				    (uint32_t)d;
				out[o++] = (unsigned char)(acc >> 16);
				out[o++] = (unsigned char)(acc >> 8);
				out[o++] = (unsigned char)acc;
				acc = 0;
				i += 4;
				continue;
			}
		}
		v = b64[u[i++]];
		if (v >= 0) {
			if (pad > 0)
				return -1;      /* data after padding */
			acc = acc << 6 | (uint32_t)v;
			if (++nq == 4) {
				if (max - o < 3)
					return -1;
				out[o++] = (unsigned char)(acc >> 16);
				out[o++] = (unsigned char)(acc >> 8);
				out[o++] = (unsigned char)acc;
				nq = 0;
				acc = 0;
			}
		} else if (v == -2) {
			pad++;
		} else if (v != -3) {
			return -1;
		}
	}
	/* Padding is required: a last quantum of 2 or 3 characters ends with
	 * "==" or "=". */
	if (pad == 0 && nq == 0) {
		*len_r = o;
		return 0;
	}
	if (nq < 2 || nq + pad != 4 || max - o < nq - 1)
		return -1;
	acc <<= 6 * pad;
	out[o++] = (unsigned char)(acc >> 16);
	if (nq == 3)
		out[o++] = (unsigned char)(acc >> 8);
	*len_r = o;
	return 0;
}

char *dkim_base64_encode(const unsigned char *data, size_t len)
{
	/* RFC 4648 §4, padded. The data is public (hashes, signatures, public
	 * keys): a table look-up per character is fine here. */
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *s, *o;
	size_t i = 0;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 2 || (s = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	o = s;
	for (; len - i >= 3; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = alphabet[v >> 6 & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i > 0) {
		uint32_t v = (uint32_t)data[i] << 16 | (len - i == 2 ? (uint32_t)data[i + 1] << 8 : 0);

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[v >> 12 & 63];
		*o++ = len - i == 2 ? alphabet[v >> 6 & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return s;
}

bool dkim_domain_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (is_alpha(c) || is_digit(c) || c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label != 0;
}
