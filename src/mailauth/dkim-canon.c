/*
 * dkim-canon — DKIM canonicalisation, RFC 6376 §3.4: "simple" and "relaxed" for
 * header fields (one whole field at a time) and for the body (streaming).
 *
 * The body canonicaliser keeps a few flags and a count of empty lines: trailing
 * empty lines are ignored by both algorithms (§3.4.3, §3.4.4), so they are only
 * counted, and written out when a line with content follows. Output is staged in
 * a fixed buffer and handed to the sink (a hash update) in large chunks.
 *
 * Most of a body is already canonical: on x86-64, 64 octets at a time are
 * classified at once (CR, LF, SP, TAB as bit masks, with SSE2, AVX2 or
 * AVX-512BW, whichever the CPU has), and a
 * chunk in which every line end is CR LF, no line is empty and (relaxed) there
 * is no TAB, no two SPs together and no SP before a line end is copied as it is
 * (see chunk_clean()). Everything else, and other machines, take the general
 * path: runs of text copied 16 octets at a time (SSE2) or with one table
 * look-up per octet, with no call per octet or per line.
 *
 * Line ends: CRLF, or a bare LF (taken as CRLF). A CR not followed by LF is
 * content. A CR at the end of one piece waits for the next piece to decide.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CANON_CHUNKS 1
#endif

#include "mailauth/dkim-private.h"

/* ---------------------------------------------------------------- headers */

static bool is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

void dkim_canon_header(struct dkim_buf *out, bool relaxed, const char *field, size_t len)
{
	const unsigned char *restrict f = (const unsigned char *)field;
	const unsigned char *colon;
	unsigned char *restrict o, *start;
	size_t name_end, i;
	bool pending_sp = false, any = false;

	if (!relaxed) {
		/* §3.4.1: the field exactly as it is, folding and case included. */
		dkim_buf_add(out, field, len);
		return;
	}
	/* §3.4.2: lower-case the name; unfold; reduce every run of WSP to one SP;
	 * delete WSP at the end of the value and around the colon. No octet of
	 * input makes more than one of output (a run of WSP makes at most one
	 * SP), so with the CRLF the result takes at most len + 2 octets. */
	if (len > SIZE_MAX - 2 || !dkim_buf_reserve(out, len + 2))
		return;
	o = start = (unsigned char *)out->p + out->len;
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

		*o++ = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 'a' - 'A') : c;
	}
	if (colon != NULL) {
		*o++ = ':';
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
			if (pending_sp)
				*o++ = ' ';
			pending_sp = false;
			*o++ = c;
			any = true;
		}
	}
	*o++ = '\r';
	*o++ = '\n';
	out->len += (size_t)(o - start);
}

#ifdef CANON_CHUNKS
/* ---------------------------------------------------------------- 64-octet chunks */

/* Where CR, LF, SP and TAB are in 64 octets: bit i for octet i. */
struct chunk_masks {
	uint64_t cr, lf, sp, tab;
};

static inline uint64_t movemask16(__m128i v, __m128i c)
{
	return (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, c));
}

static inline void masks_sse2(const unsigned char *p, struct chunk_masks *m)
{
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
	const __m128i sp = _mm_set1_epi8(' '), tab = _mm_set1_epi8('\t');

	m->cr = m->lf = m->sp = m->tab = 0;
	for (unsigned i = 0; i < 4; i++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));

		m->cr |= movemask16(v, cr) << (16 * i);
		m->lf |= movemask16(v, lf) << (16 * i);
		m->sp |= movemask16(v, sp) << (16 * i);
		m->tab |= movemask16(v, tab) << (16 * i);
	}
}

__attribute__((target("avx512bw")))
static inline void masks_avx512(const unsigned char *p, struct chunk_masks *m)
{
	__m512i v = _mm512_loadu_si512((const void *)p);

	m->cr = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
	m->lf = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
	m->sp = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(' '));
	m->tab = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\t'));
}

__attribute__((target("avx2")))
static inline uint64_t movemask32(__m256i v, __m256i c)
{
	return (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, c));
}

__attribute__((target("avx2")))
static inline void masks_avx2(const unsigned char *p, struct chunk_masks *m)
{
	const __m256i cr = _mm256_set1_epi8('\r'), lf = _mm256_set1_epi8('\n');
	const __m256i sp = _mm256_set1_epi8(' '), tab = _mm256_set1_epi8('\t');
	__m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
	__m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));

	m->cr = movemask32(lo, cr) | movemask32(hi, cr) << 32;
	m->lf = movemask32(lo, lf) | movemask32(hi, lf) << 32;
	m->sp = movemask32(lo, sp) | movemask32(hi, sp) << 32;
	m->tab = movemask32(lo, tab) | movemask32(hi, tab) << 32;
}

/* Whether 64 octets canonicalise to themselves, starting in a line with
 * content (open) or at the start of a line with no empty lines pending, with
 * no WSP pending:
 * - every line end is CR LF within the chunk (no bare CR or LF, §3.4.3; no CR
 *   last, whose LF would be in the next chunk);
 * - no line starts with CR: an empty line must be counted, not copied, and a
 *   CR of content at a line's start is left to the general path;
 * - relaxed (§3.4.4): no TAB, no two SPs together, no SP before a line end and
 *   no SP last (the next octet decides what it is). A single SP between words,
 *   or at a line's start, stands for itself. */
static inline bool chunk_clean(const struct chunk_masks *m, bool relaxed, bool open)
{
	uint64_t line_starts = m->lf << 1 | (open ? 0 : 1);

	if (m->lf != m->cr << 1 || (m->cr >> 63) != 0 || (line_starts & m->cr) != 0)
		return false;
	if (!relaxed)
		return true;
	return m->tab == 0 && (m->sp & (m->sp >> 1)) == 0 && (m->sp & (m->cr >> 1)) == 0 &&
	    (m->sp >> 63) == 0;
}

/* Copies clean chunks from p[0..n) to out; returns the octets taken (a
 * multiple of 64) and sets *open for the state after them. */
#define CLEAN_CHUNKS(masks)                                                         \
	size_t done = 0;                                                            \
	struct chunk_masks m;                                                       \
	while (n - done >= 64) {                                                    \
		masks(p + done, &m);                                                \
		if (!chunk_clean(&m, relaxed, *open))                               \
			break;                                                      \
		memcpy(out + done, p + done, 64);                                   \
		*open = (m.lf >> 63) == 0;                                          \
		done += 64;                                                         \
	}                                                                           \
	return done

typedef size_t clean_chunks_fn(const unsigned char *p, size_t n, unsigned char *out,
    bool relaxed, bool *open);

static size_t clean_chunks_sse2(const unsigned char *p, size_t n, unsigned char *out,
    bool relaxed, bool *open)
{
	CLEAN_CHUNKS(masks_sse2);
}

__attribute__((target("avx2")))
static size_t clean_chunks_avx2(const unsigned char *p, size_t n, unsigned char *out,
    bool relaxed, bool *open)
{
	CLEAN_CHUNKS(masks_avx2);
}

__attribute__((target("avx512bw")))
static size_t clean_chunks_avx512(const unsigned char *p, size_t n, unsigned char *out,
    bool relaxed, bool *open)
{
	CLEAN_CHUNKS(masks_avx512);
}

static clean_chunks_fn *clean_chunks = clean_chunks_sse2;
static pthread_once_t clean_chunks_once = PTHREAD_ONCE_INIT;

static void clean_chunks_pick(void)
{
	__builtin_cpu_init();
	clean_chunks = clean_chunks_sse2;
	if (__builtin_cpu_supports("avx512bw"))
		clean_chunks = clean_chunks_avx512;
	else if (__builtin_cpu_supports("avx2"))
		clean_chunks = clean_chunks_avx2;
}

int dkim_canon_simd(int level)
{
	pthread_once(&clean_chunks_once, clean_chunks_pick);
	if (level == 0)
		clean_chunks_pick();
	else if (level == 1)
		clean_chunks = clean_chunks_sse2;
	else if (level == 2 && __builtin_cpu_supports("avx2"))
		clean_chunks = clean_chunks_avx2;
	else if (level == 3 && __builtin_cpu_supports("avx512bw"))
		clean_chunks = clean_chunks_avx512;
	else if (level != -1)
		return -1;
	return clean_chunks == clean_chunks_avx512 ? 3 : clean_chunks == clean_chunks_avx2 ? 2 : 1;
}
#else
int dkim_canon_simd(int level)
{
	return level <= 0 ? 0 : -1;
}
#endif

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
#ifdef CANON_CHUNKS
	pthread_once(&clean_chunks_once, clean_chunks_pick);
#endif
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
#ifdef CANON_CHUNKS
	const unsigned char *retry = p;
#endif
#ifdef __SSE2__
	/* The octets that end a run of text: CR, LF, and in relaxed SP and TAB. */
	const __m128i s1 = _mm_set1_epi8('\r'), s2 = _mm_set1_epi8('\n');
	const __m128i s3 = _mm_set1_epi8(c->relaxed ? ' ' : '\r');
	const __m128i s4 = _mm_set1_epi8(c->relaxed ? '\t' : '\n');
#endif

	while (p < end) {
		unsigned char k;

#ifdef CANON_CHUNKS
		/* Clean chunks, copied whole. After a chunk that is not clean the
		 * general path goes at least 64 octets before the next try, so text
		 * that is never clean costs one look per 64 octets. */
		if (!sp && (open || c->empty_lines == 0) && p >= retry && end - p >= 64) {
			size_t took = clean_chunks(p, (size_t)(end - p), out + o, c->relaxed, &open);

			p += took;
			o += took;
			retry = end - p > 64 ? p + 64 : end;
			if (p == end)
				break;
		}
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
