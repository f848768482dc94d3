/*
 * dkim-canon — DKIM canonicalisation, RFC 6376 §3.4: "simple" and "relaxed" for
 * header fields (one whole field at a time) and for the body (streaming).
 *
 * The body canonicaliser keeps a few flags and a count of empty lines: trailing
 * empty lines are ignored by both algorithms (§3.4.3, §3.4.4), so they are only
 * counted, and written out when a line with content follows. Output is staged in
 * a fixed buffer and handed to the sink (a hash update) in large chunks; runs
 * of text are copied 16 octets at a time (SSE2) or with one table look-up per
 * octet, with no call per octet or per line.
 *
 * Line ends: CRLF, or a bare LF (taken as CRLF). A CR not followed by LF is
 * content. A CR at the end of one piece waits for the next piece to decide.
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "mailauth/dkim-private.h"

/* ---------------------------------------------------------------- headers */

static bool is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

void dkim_canon_header(struct dkim_buf *out, bool relaxed, const char *field, size_t len)
{
	const unsigned char *f = (const unsigned char *)field;
	const unsigned char *colon;
	unsigned char chunk[512];
	size_t n = 0, name_end, i;
	bool pending_sp = false, any = false;

	if (!relaxed) {
		/* §3.4.1: the field exactly as it is, folding and case included. */
		dkim_buf_add(out, field, len);
		return;
	}
	/* §3.4.2: lower-case the name; unfold; reduce every run of WSP to one SP;
	 * delete WSP at the end of the value and around the colon. */
	colon = memchr(f, ':', len);
	name_end = colon != NULL ? (size_t)(colon - f) : len;
	if (colon == NULL) {
		/* A line that is not a field: all of it counts as the name. */
		while (name_end >= 2 && f[name_end - 2] == '\r' && f[name_end - 1] == '\n')
			name_end -= 2;
	}
	while (name_end > 0 && is_wsp(f[name_end - 1]))
		name_end--;
	for (i = 0; i < name_end; i++) {
		unsigned char c = f[i];

		if (n == sizeof(chunk)) {
			dkim_buf_add(out, chunk, n);
			n = 0;
		}
		chunk[n++] = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 'a' - 'A') : c;
	}
	if (colon != NULL) {
		if (n == sizeof(chunk)) {
			dkim_buf_add(out, chunk, n);
			n = 0;
		}
		chunk[n++] = ':';
		for (i = (size_t)(colon - f) + 1; i < len; i++) {
			unsigned char c = f[i];

			if (c == '\r' && i + 1 < len && f[i + 1] == '\n') {
				i++;            /* unfold: CRLF goes, the WSP after it stays */
				continue;
			}
			if (is_wsp(c)) {
				pending_sp = any;
				continue;
			}
			if (n + 2 > sizeof(chunk)) {
				dkim_buf_add(out, chunk, n);
				n = 0;
			}
			if (pending_sp)
				chunk[n++] = ' ';
			pending_sp = false;
			chunk[n++] = c;
			any = true;
		}
	}
	if (n + 2 > sizeof(chunk)) {
		dkim_buf_add(out, chunk, n);
		n = 0;
	}
	chunk[n++] = '\r';
	chunk[n++] = '\n';
	dkim_buf_add(out, chunk, n);
}

/* ---------------------------------------------------------------- body */

enum { C_TEXT, C_WSP, C_CR, C_LF };

/* Octet classes: in simple, WSP is text. */
static const unsigned char class_simple[256] = { ['\r'] = C_CR, ['\n'] = C_LF };
static const unsigned char class_relaxed[256] = {
	['\r'] = C_CR, ['\n'] = C_LF, [' '] = C_WSP, ['\t'] = C_WSP,
};

void dkim_body_canon_init(struct dkim_body_canon *c, bool relaxed, dkim_canon_sink_fn *sink,
    void *arg)
{
	c->relaxed = relaxed;
	c->pending_cr = c->pending_sp = c->line_open = c->finished = false;
	c->empty_lines = 0;
	c->total = 0;
	c->sink = sink;
	c->arg = arg;
	c->outlen = 0;
}

static void flush(struct dkim_body_canon *c)
{
	if (c->outlen > 0) {
		c->sink(c->arg, c->out, c->outlen);
		c->total += c->outlen;
		c->outlen = 0;
	}
}

/* Writes out the empty lines that turned out not to be trailing. */
static void put_empty_lines(struct dkim_body_canon *c)
{
	while (c->empty_lines > 0) {
		size_t room = (DKIM_CANON_OUT - c->outlen) / 2;
		size_t k = c->empty_lines < room ? (size_t)c->empty_lines : room;

		if (k == 0) {
			flush(c);
			continue;
		}
		for (size_t j = 0; j < k; j++) {
			c->out[c->outlen++] = '\r';
			c->out[c->outlen++] = '\n';
		}
		c->empty_lines -= k;
	}
}

/* One octet of line content (with the SP a pending WSP run stands for). */
static void put_text(struct dkim_body_canon *c, unsigned char ch)
{
	if (!c->line_open) {
		put_empty_lines(c);
		c->line_open = true;
	}
	if (DKIM_CANON_OUT - c->outlen < 2)
		flush(c);
	if (c->pending_sp)
		c->out[c->outlen++] = ' ';
	c->pending_sp = false;
	c->out[c->outlen++] = ch;
}

static void line_end(struct dkim_body_canon *c)
{
	/* §3.4.4: WSP at the end of a line is ignored (pending_sp dropped); a line
	 * left with nothing is empty, and empty lines are only counted. */
	if (c->line_open) {
		if (DKIM_CANON_OUT - c->outlen < 2)
			flush(c);
		c->out[c->outlen++] = '\r';
		c->out[c->outlen++] = '\n';
		c->line_open = false;
	} else {
		c->empty_lines++;
	}
	c->pending_sp = false;
}

/* Input is taken in blocks of at most CANON_BLOCK octets, with room for twice
 * that (plus 2) free in the output before each: no octet of input makes more
 * than two of output, so the inner loop needs no bounds checks. */
#define CANON_BLOCK ((DKIM_CANON_OUT - 2) / 2)

/* Canonicalises p[0..n) (data_end: the end of the caller's piece, for looking
 * past a CR at the end of the block); returns the octets consumed (n, or n - 1
 * when a CR at the very end must wait for the next piece). */
static size_t canon_block(struct dkim_body_canon *c, const unsigned char *p, size_t n,
    const unsigned char *data_end)
{
	const unsigned char *cls = c->relaxed ? class_relaxed : class_simple;
	const unsigned char *start = p, *end = p + n;
	unsigned char *out = c->out;
	size_t o = c->outlen;
	bool open = c->line_open, sp = c->pending_sp;
#ifdef __SSE2__
	/* The octets that end a run of text: CR, LF, and in relaxed SP and TAB. */
	const __m128i s1 = _mm_set1_epi8('\r'), s2 = _mm_set1_epi8('\n');
	const __m128i s3 = _mm_set1_epi8(c->relaxed ? ' ' : '\r');
	const __m128i s4 = _mm_set1_epi8(c->relaxed ? '\t' : '\n');
#endif

	while (p < end) {
		unsigned char k;

#ifdef __SSE2__
		/* Prose: 16 octets with no CR, LF or TAB and no two SPs together
		 * (and no SP last, which could be trailing) canonicalise to
		 * themselves, in a line with content and no WSP pending; so do
		 * such octets up to a CR LF (see below). */
		while (open && !sp && end - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
			unsigned spaces = c->relaxed ?
			    (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, s3)) : 0;
			unsigned other = (unsigned)_mm_movemask_epi8(_mm_or_si128(
			    _mm_or_si128(_mm_cmpeq_epi8(v, s1), _mm_cmpeq_epi8(v, s2)),
			    _mm_cmpeq_epi8(v, s4)));

			if (other != 0) {
				/* The common line end: text, then CR LF, then the next
				 * line's first octet is text too. Up to the CR it is
				 * the case above (no WSP right before the CR: it would be
				 * trailing); the line end is copied and the next line is
				 * open. Anything else is left to the code below. */
				unsigned j = (unsigned)__builtin_ctz(other);
				unsigned before = spaces & ((1u << j) - 1);
				unsigned char nb;

				if (p[j] != '\r' || (size_t)(end - p) < j + 3 || p[j + 1] != '\n' ||
				    (before & (before >> 1)) != 0 ||
				    (j > 0 && (spaces >> (j - 1) & 1) != 0))
					break;
				_mm_storeu_si128((__m128i *)(void *)(out + o), v);
				o += j;
				out[o++] = '\r';
				out[o++] = '\n';
				p += j + 2;
				nb = p[0];
				if (nb == '\r' || nb == '\n' || cls[nb] == C_WSP) {
					open = false;   /* maybe empty, or leading WSP */
					break;
				}
				continue;
			}
			if ((spaces & (spaces >> 1)) != 0 || (spaces & 0x8000) != 0)
				break;
			_mm_storeu_si128((__m128i *)(void *)(out + o), v);
			o += 16;
			p += 16;
		}
		if (p == end)
			break;
#endif
		k = cls[*p];
		if (k == C_TEXT || (k == C_CR && p + 1 < data_end && p[1] != '\n')) {
			if (!open) {
				if (c->empty_lines > 0) {
					/* Not trailing after all: write them, then make
					 * room again for the rest of the block. */
					c->outlen = o;
					put_empty_lines(c);
					if (DKIM_CANON_OUT - c->outlen < 2 * (size_t)(end - p) + 2)
						flush(c);
					o = c->outlen;
				}
				open = true;
			}
			if (sp) {
				out[o++] = ' ';
				sp = false;
			}
			/* The hot path: a run of text (a CR here is content). */
			out[o++] = *p++;
#ifdef __SSE2__
			/* 16 octets at a time: copy them all, keep those before
			 * the first special one. There is room (see CANON_BLOCK). */
			while (end - p >= 16) {
				__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
				__m128i m = _mm_or_si128(
				    _mm_or_si128(_mm_cmpeq_epi8(v, s1), _mm_cmpeq_epi8(v, s2)),
				    _mm_or_si128(_mm_cmpeq_epi8(v, s3), _mm_cmpeq_epi8(v, s4)));
				unsigned bits = (unsigned)_mm_movemask_epi8(m);

				_mm_storeu_si128((__m128i *)(void *)(out + o), v);
				if (bits != 0) {
					unsigned keep = (unsigned)__builtin_ctz(bits);

					o += keep;
					p += keep;
					break;
				}
				o += 16;
				p += 16;
			}
#endif
			while (p < end && cls[*p] == C_TEXT)
				out[o++] = *p++;
			continue;
		}
		if (k == C_WSP) {
			sp = true;
			p++;
			continue;
		}
		if (k == C_CR) {
			if (p + 1 == data_end)
				break;          /* the next piece decides */
			p++;                    /* CR LF: the LF ends the line below */
		}
		p++;
		/* A line end. §3.4.4: WSP at the end of a line is ignored; a line
		 * left with nothing is empty, and empty lines are only counted. */
		if (open) {
			out[o++] = '\r';
			out[o++] = '\n';
			open = false;
		} else {
			c->empty_lines++;
		}
		sp = false;
	}
	c->outlen = o;
	c->line_open = open;
	c->pending_sp = sp;
	return (size_t)(p - start);
}

void dkim_body_canon_feed(struct dkim_body_canon *c, const void *data, size_t len)
{
	const unsigned char *p = data, *end = p + len;

	if (len == 0 || c->finished)
		return;
	if (c->pending_cr) {
		c->pending_cr = false;
		if (*p == '\n') {
			p++;
			line_end(c);
		} else {
			put_text(c, '\r');
		}
	}
	while (p < end) {
		size_t n = (size_t)(end - p) < CANON_BLOCK ? (size_t)(end - p) : CANON_BLOCK;
		size_t took;

		if (DKIM_CANON_OUT - c->outlen < 2 * n + 2)
			flush(c);
		took = canon_block(c, p, n, end);
		p += took;
		if (took < n) {
			c->pending_cr = true;   /* a CR ends the piece */
			break;
		}
	}
}

void dkim_body_canon_finish(struct dkim_body_canon *c)
{
	if (c->finished)
		return;
	if (c->pending_cr) {
		c->pending_cr = false;
		put_text(c, '\r');
	}
	/* §3.4.3 / §3.4.4: a last line without CRLF gets one. */
	if (c->line_open)
		line_end(c);
	c->empty_lines = 0;
	/* §3.4.3: an empty body is one CRLF in simple; in relaxed it stays empty. */
	if (!c->relaxed && c->total + c->outlen == 0) {
		c->out[c->outlen++] = '\r';
		c->out[c->outlen++] = '\n';
	}
	flush(c);
	c->finished = true;
}
