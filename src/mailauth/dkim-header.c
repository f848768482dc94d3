/*
 * dkim-header — the header section of a message as DKIM needs it: collected as it
 * streams in (line ends made CRLF, at most DKIM_MAX_HEADER_OCTETS kept), split
 * into fields, and hashed as RFC 6376 §3.7 says for one signature's h= list.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "mailauth/dkim-private.h"

enum {
	ST_LINE_START,      /* at the start of a line */
	ST_LINE_START_CR,   /* a CR started the line: an empty line if LF follows */
	ST_IN_LINE,
	ST_IN_LINE_CR,      /* a CR in a line: the line end if LF follows */
};

void dkim_header_init(struct dkim_header *h)
{
	memset(h, 0, sizeof(*h));
	h->state = ST_LINE_START;
}

void dkim_header_free(struct dkim_header *h)
{
	free(h->buf);
	free(h->fields);
	memset(h, 0, sizeof(*h));
}

static void append(struct dkim_header *h, const char *p, size_t n)
{
	if (h->overflow || h->failed || n == 0)
		return;
	if (n > DKIM_MAX_HEADER_OCTETS - h->len) {
		h->overflow = true;
		return;
	}
	if (n > h->cap - h->len) {
		size_t cap = h->cap != 0 ? h->cap : 4096;
		char *b;

		while (cap - h->len < n)
			cap *= 2;
		if (cap > DKIM_MAX_HEADER_OCTETS)
			cap = DKIM_MAX_HEADER_OCTETS;
		if ((b = realloc(h->buf, cap)) == NULL) {
			h->failed = true;
			return;
		}
		h->buf = b;
		h->cap = cap;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
}

static void line_done(struct dkim_header *h)
{
	append(h, "\r\n", 2);
	h->state = ST_LINE_START;
	if (!h->overflow)
		h->line_start = h->len;
}

size_t dkim_header_feed(struct dkim_header *h, const void *data, size_t len)
{
	const char *p = data, *end = p + len;

	if (h->done)
		return 0;
	while (p < end) {
		switch (h->state) {
		case ST_LINE_START:
			if (*p == '\n') {
				h->done = true;     /* a bare LF: the empty line */
				return (size_t)(p + 1 - (const char *)data);
			}
			if (*p == '\r')
				p++, h->state = ST_LINE_START_CR;
			else
				h->state = ST_IN_LINE;
			break;
		case ST_LINE_START_CR:
			if (*p == '\n') {
				h->done = true;
				return (size_t)(p + 1 - (const char *)data);
			}
			append(h, "\r", 1);  /* content, not a line end */
			h->state = ST_IN_LINE;
			break;
		case ST_IN_LINE: {
			const char *q = p;

#ifdef __SSE2__
			/* To the line's CR or LF, 16 octets at a time. */
			while (end - q >= 16) {
				__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
				unsigned bits = (unsigned)_mm_movemask_epi8(_mm_or_si128(
				    _mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
				    _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));

				if (bits != 0) {
					q += __builtin_ctz(bits);
					break;
				}
				q += 16;
			}
#endif
			while (q < end && *q != '\r' && *q != '\n')
				q++;
			append(h, p, (size_t)(q - p));
			p = q;
			if (p == end)
				break;
			if (*p++ == '\n')
				line_done(h);
			else
				h->state = ST_IN_LINE_CR;
			break;
		}
		default: /* ST_IN_LINE_CR */
			if (*p == '\n') {
				p++;
				line_done(h);
			} else {
				append(h, "\r", 1);
				h->state = ST_IN_LINE;
			}
			break;
		}
	}
	return len;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Splits the section into fields: a field is a line that does not start with
 * WSP, with the continuation lines that follow it (RFC 5322 §2.2.3). */
static void index_fields(struct dkim_header *h)
{
	size_t count = 0, i = 0;

	for (i = 0; i < h->len;) {
		const char *lf = memchr(h->buf + i, '\n', h->len - i);

		if (i == 0 || !is_wsp(h->buf[i]))
			count++;
		i = lf != NULL ? (size_t)(lf - h->buf) + 1 : h->len;
	}
	if (count == 0)
		return;
	if ((h->fields = calloc(count, sizeof(*h->fields))) == NULL) {
		h->failed = true;
		return;
	}
	for (i = 0; i < h->len;) {
		const char *lf = memchr(h->buf + i, '\n', h->len - i);
		size_t next = lf != NULL ? (size_t)(lf - h->buf) + 1 : h->len;

		if (i == 0 || !is_wsp(h->buf[i])) {
			struct dkim_field *f = &h->fields[h->nfields++];
			const char *colon = memchr(h->buf + i, ':', next - i);

			f->off = i;
			if (colon != NULL) {
				size_t n = (size_t)(colon - (h->buf + i));

				while (n > 0 && is_wsp(h->buf[i + n - 1]))
					n--;
				f->name_len = n;
			}
		}
		h->fields[h->nfields - 1].len = next - h->fields[h->nfields - 1].off;
		i = next;
	}
	assert(h->nfields == count);
}

void dkim_header_finish(struct dkim_header *h)
{
	if (h->state == -1)
		return;         /* finished already */
	if (!h->done) {
		/* No empty line: the message is all header. A last line without a
		 * line end gets one. */
		if (h->state == ST_IN_LINE || h->state == ST_IN_LINE_CR)
			line_done(h);
		h->done = true;
	}
	/* Keep only whole lines of an over-long section. */
	if (h->overflow)
		h->len = h->line_start;
	h->state = -1;
	if (!h->failed)
		index_fields(h);
}

int dkim_header_hash(const struct dkim_header *h, const struct dkim_name *names, size_t n,
    bool relaxed, const char *sigfield, size_t siglen, unsigned char digest[32],
    const char **error_r)
{
	struct dkim_buf out = { 0 };
	int ret = 0;

	/* Each listing signs a different field, so the canonical fields take at
	 * most the whole section plus a CRLF each (dkim_canon_header()): one
	 * allocation. */
	if (h->len + siglen < SIZE_MAX / 2 && n < SIZE_MAX / 4)
		dkim_buf_reserve(&out, h->len + siglen + 2 * n + 2);
	for (size_t i = 0; i < n; i++) {
		size_t skip = 0;

		/* §5.4.2: the k-th listing of a name signs the k-th instance from
		 * the bottom; listings beyond the instances sign nothing. */
		for (size_t j = 0; j < i; j++)
			if (dkim_name_eq(names[j].p, names[j].len, names[i].p, names[i].len))
				skip++;
		for (size_t f = h->nfields; f-- > 0;) {
			const struct dkim_field *fl = &h->fields[f];

			if (fl->name_len == 0 ||
			    !dkim_name_eq(h->buf + fl->off, fl->name_len, names[i].p, names[i].len))
				continue;
			if (skip-- == 0) {
				dkim_canon_header(&out, relaxed, h->buf + fl->off, fl->len);
				break;
			}
		}
	}
	/* §3.7: the signature field itself, last, without its final CRLF. */
	dkim_canon_header(&out, relaxed, sigfield, siglen);
	if (out.len >= 2 && out.p[out.len - 2] == '\r' && out.p[out.len - 1] == '\n')
		out.len -= 2;
	if (out.failed) {
		*error_r = "Out of memory.";
		ret = -1;
	} else if (EVP_Digest(out.p, out.len, digest, NULL, dkim_crypto_sha256(), NULL) != 1) {
		*error_r = "SHA-256 failed.";
		ret = -1;
	}
	dkim_buf_free(&out);
	return ret;
}
