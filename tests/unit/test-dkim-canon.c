/*
 * Unit tests for DKIM canonicalisation (RFC 6376 §3.4) and the header section
 * collector: the RFC's own example (§3.4.5), edge cases (empty bodies, trailing
 * WSP, WSP-only lines, missing final CRLF, bare LF and CR, long runs of empty
 * lines), header unfolding and name case, and a naive whole-input reference
 * implementation that the streaming canonicaliser must match on random bodies.
 * Every input is fed whole, one octet at a time, split at every point (short
 * inputs) and in random chunks (exact-size heap copies), and all must agree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim-private.h"

/* ---------------------------------------------------------------- body */

enum plan { PLAN_WHOLE, PLAN_BYTES, PLAN_SPLIT, PLAN_RANDOM };

static void buf_sink(void *arg, const void *data, size_t len)
{
	/* The canonicaliser hands over at most its buffer at a time. */
	assert_true(len > 0 && len <= DKIM_CANON_OUT);
	dkim_buf_add(arg, data, len);
}

static size_t next_chunk(enum plan plan, size_t off, size_t left, size_t split, unsigned *seed)
{
	switch (plan) {
	case PLAN_WHOLE:
		return left;
	case PLAN_BYTES:
		return 1;
	case PLAN_SPLIT:
		return off < split ? split - off : left;
	case PLAN_RANDOM:
		*seed = *seed * 1103515245u + 12345u;
		return 1 + (size_t)((*seed >> 16) % 4099);
	}
	return left;
}

/* Canonicalises in[0..len) by plan into out (freshly initialised). */
static void canon_by(bool relaxed, const char *in, size_t len, enum plan plan, size_t split,
    unsigned seed, struct dkim_buf *out)
{
	struct dkim_body_canon *c = malloc(sizeof(*c));
	size_t off = 0;

	assert_non_null(c);
	memset(out, 0, sizeof(*out));
	dkim_body_canon_init(c, relaxed, buf_sink, out);
	dkim_body_canon_feed(c, "", 0);
	while (off < len) {
		size_t want = next_chunk(plan, off, len - off, split, &seed);
		char *copy;

		if (want > len - off)
			want = len - off;
		copy = malloc(want);
		assert_non_null(copy);
		memcpy(copy, in + off, want);
		dkim_body_canon_feed(c, copy, want);
		free(copy);
		off += want;
	}
	dkim_body_canon_finish(c);
	dkim_body_canon_finish(c);          /* idempotent */
	dkim_body_canon_feed(c, "late", 4); /* ignored after finish */
	assert_false(out->failed);
	assert_int_equal(c->total, out->len);
	free(c);
}

static void assert_buf(const struct dkim_buf *b, const char *want, size_t wlen)
{
	if (b->len != wlen || (wlen > 0 && memcmp(b->p, want, wlen) != 0))
		fail_msg("canonical body differs (%zu octets, want %zu)", b->len, wlen);
}

/* Canonicalises every way and checks each result against want. */
static void check_body_n(bool relaxed, const char *in, size_t len, const char *want, size_t wlen)
{
	struct dkim_buf out;

	canon_by(relaxed, in, len, PLAN_WHOLE, 0, 0, &out);
	assert_buf(&out, want, wlen);
	dkim_buf_free(&out);
	if (len <= 100000) {
		canon_by(relaxed, in, len, PLAN_BYTES, 0, 0, &out);
		assert_buf(&out, want, wlen);
		dkim_buf_free(&out);
	}
	for (size_t split = 1; len <= 400 && split < len; split++) {
		canon_by(relaxed, in, len, PLAN_SPLIT, split, 0, &out);
		assert_buf(&out, want, wlen);
		dkim_buf_free(&out);
	}
	for (unsigned seed = 1; seed <= 8; seed++) {
		canon_by(relaxed, in, len, PLAN_RANDOM, 0, seed, &out);
		assert_buf(&out, want, wlen);
		dkim_buf_free(&out);
	}
}

static void check_body(bool relaxed, const char *in, const char *want)
{
	check_body_n(relaxed, in, strlen(in), want, strlen(want));
}

static void test_rfc6376_example_body(void **state)
{
	/* RFC 6376 §3.4.5. */
	static const char body[] = " C \r\nD \t E\r\n\r\n\r\n";

	check_body(true, body, " C\r\nD E\r\n");
	check_body(false, body, " C \r\nD \t E\r\n");
}

static void test_body_edges(void **state)
{
	/* §3.4.3: an empty body is one CRLF in simple; §3.4.4: empty in relaxed. */
	check_body(false, "", "\r\n");
	check_body(true, "", "");
	check_body(false, "\r\n", "\r\n");
	check_body(true, "\r\n", "");
	check_body(false, "\r\n\r\n\r\n", "\r\n");
	check_body(true, "\r\n\r\n\r\n", "");
	/* A last line without CRLF gets one. */
	check_body(false, "abc", "abc\r\n");
	check_body(true, "abc", "abc\r\n");
	check_body(true, "abc  ", "abc\r\n");
	/* Lines of only WSP: content in simple, empty in relaxed. */
	check_body(false, "  \r\n", "  \r\n");
	check_body(true, "  \r\n", "");
	check_body(true, "a\r\n  \r\nb\r\n", "a\r\n\r\nb\r\n");
	check_body(false, "x\r\n \r\n\t\r\n", "x\r\n \r\n\t\r\n");
	check_body(true, "x\r\n \r\n\t\r\n\r\n", "x\r\n");
	/* Trailing WSP goes; inner runs become one SP; leading WSP stays as one SP. */
	check_body(true, "a \t\r\n", "a\r\n");
	check_body(true, " \t a  b \r\n", " a b\r\n");
	check_body(false, " \t a  b \r\n", " \t a  b \r\n");
	/* Empty lines inside the body are kept. */
	check_body(true, "\r\n\r\nx", "\r\n\r\nx\r\n");
	check_body(false, "\r\n\r\nx\r\n\r\n", "\r\n\r\nx\r\n");
	/* A bare LF is a line end; a CR not before LF is content. */
	check_body(false, "a\nb\n\n", "a\r\nb\r\n");
	check_body(true, "a \nb\n\n", "a\r\nb\r\n");
	check_body(false, "a\rb\r\n", "a\rb\r\n");
	check_body(true, "a \rb\r\n", "a \rb\r\n");
	check_body(false, "a\r", "a\r\r\n");
	check_body(false, "a\r\r\n", "a\r\r\n");
	check_body(false, "\r", "\r\r\n");
	check_body(true, "\r\r", "\r\r\r\n");
	check_body(true, "\r\r\n\n", "\r\r\n");
	check_body(false, "\n\r\n\n", "\r\n");
}

static void test_body_many_empty_lines(void **state)
{
	/* 100000 empty lines, then text: counted, then written through several
	 * buffer flushes; and as trailing lines, dropped. */
	size_t n = 100000;
	char *in = malloc(2 * n + 2), *want = malloc(2 * n + 4);

	for (size_t i = 0; i < n; i++)
		memcpy(in + 2 * i, "\r\n", 2);
	memcpy(in + 2 * n, "x", 2);
	memcpy(want, in, 2 * n + 1);
	memcpy(want + 2 * n + 1, "\r\n", 3);
	check_body_n(false, in, 2 * n + 1, want, 2 * n + 3);
	check_body_n(true, in, 2 * n + 1, want, 2 * n + 3);
	check_body_n(false, in, 2 * n, "\r\n", 2);
	check_body_n(true, in, 2 * n, "", 0);
	free(in);
	free(want);
}

static void test_body_long_line(void **state)
{
	/* A 100 KiB line: the hot path across flushes. */
	size_t n = 100 * 1024;
	char *in = malloc(n + 3);

	memset(in, 'q', n);
	memcpy(in + n, "\r\n", 3);
	check_body_n(false, in, n + 2, in, n + 2);
	check_body_n(true, in, n + 2, in, n + 2);
	free(in);
}

/* The RFC's rules applied naively to the whole body, line by line. */
static void reference(bool relaxed, const char *in, size_t len, struct dkim_buf *out)
{
	struct dkim_buf line = { 0 };
	size_t keep = 0;   /* out->len after the last non-empty line */
	bool open = false;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i <= len; i++) {
		bool end = i == len || in[i] == '\n' || (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n');

		if (!end) {
			dkim_buf_add(&line, &in[i], 1);
			open = true;
			continue;
		}
		if (i == len && !open)
			break;
		if (in[i < len ? i : 0] == '\r' && i < len)
			i++;
		if (relaxed) {
			/* WSP runs to one SP, then no SP at the end. */
			size_t w = 0;

			for (size_t r = 0; r < line.len; r++) {
				bool ws = line.p[r] == ' ' || line.p[r] == '\t';

				if (ws && w > 0 && line.p[w - 1] == ' ')
					continue;
				line.p[w++] = ws ? ' ' : line.p[r];
			}
			while (w > 0 && line.p[w - 1] == ' ')
				w--;
			line.len = w;
		}
		dkim_buf_add(out, line.p, line.len);
		dkim_buf_add(out, "\r\n", 2);
		if (line.len > 0)
			keep = out->len;
		line.len = 0;
		open = false;
	}
	out->len = keep;          /* trailing empty lines are ignored */
	if (!relaxed && out->len == 0)
		dkim_buf_add(out, "\r\n", 2);
	dkim_buf_free(&line);
}

static void test_body_against_reference(void **state)
{
	static const char alphabet[] = "ab \t\r\n\r\n";
	unsigned seed = 12345;

	for (int round = 0; round < 3000; round++) {
		char in[300];
		size_t len;
		struct dkim_buf ref;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % sizeof(in);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		for (int r = 0; r < 2; r++) {
			reference(r, in, len, &ref);
			if (round < 300)
				check_body_n(r, in, len, ref.p != NULL ? ref.p : "", ref.len);
			else {
				struct dkim_buf out;

				canon_by(r, in, len, PLAN_RANDOM, 0, seed, &out);
				assert_buf(&out, ref.p, ref.len);
				dkim_buf_free(&out);
			}
			dkim_buf_free(&ref);
		}
	}
}

/* Bodies that are mostly canonical already (words, single spaces, CR LF), with
 * now and then one thing the clean-chunk path must not copy as it is: a TAB,
 * two SPs, an SP before the line end or last in a chunk, an empty line, a line
 * of WSP, a bare CR or LF, a CR of content, a line starting with SP, a line end
 * split across chunks. Run with each vector level the machine has (the chunk
 * code and the general path must agree with the reference everywhere). */
static size_t mostly_clean_body(char *in, size_t cap, unsigned *seed)
{
	static const char *const odd[] = {
		"\t", "  ", " \r\n", "\r\n\r\n", " \t \r\n", "\r", "\n", "a\rb", "\r\n ", "\r\n\r\nx",
		"   ", "\r\n\r\n\r\n", "\t\r\n", "x \r\n\r\n",
	};
	size_t len = 0, target;

	*seed = *seed * 1103515245u + 12345u;
	target = (*seed >> 16) % cap;
	while (len + 16 < target) {
		unsigned r;

		*seed = *seed * 1103515245u + 12345u;
		r = *seed >> 16;
		if (r % 97 == 0) {
			const char *o = odd[(r / 97) % (sizeof(odd) / sizeof(odd[0]))];

			memcpy(in + len, o, strlen(o));
			len += strlen(o);
		} else if (r % 13 == 0) {
			memcpy(in + len, "\r\n", 2);
			len += 2;
		} else if (r % 5 == 0) {
			in[len++] = ' ';
			in[len++] = 'w';
		} else {
			in[len++] = (char)('a' + r % 26);
		}
	}
	return len;
}

static void test_body_clean_chunks(void **state)
{
	int levels[] = { 1, 2, 3 };

	for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]); l++) {
		unsigned seed = 777;

		if (dkim_canon_simd(levels[l]) != levels[l])
			continue;       /* not x86-64, or no AVX2 or AVX-512BW */
		for (int round = 0; round < 400; round++) {
			static char in[3000];
			size_t len = mostly_clean_body(in, sizeof(in), &seed);
			struct dkim_buf ref;

			for (int r = 0; r < 2; r++) {
				reference(r, in, len, &ref);
				check_body_n(r, in, len, ref.p != NULL ? ref.p : "", ref.len);
				dkim_buf_free(&ref);
			}
		}
	}
	dkim_canon_simd(0);
}

/* A clean body runs through the chunk path: 10 KiB of 72-octet lines come out
 * unchanged in both algorithms, whatever the vector level. */
static void test_body_clean_is_identity(void **state)
{
	static char in[10240];
	size_t len = 0;

	while (len + 74 <= sizeof(in)) {
		for (int i = 0; i < 72; i++, len++)
			in[len] = i % 9 == 4 ? ' ' : (char)('a' + len % 26);
		in[len++] = '\r';
		in[len++] = '\n';
	}
	for (int level = 1; level <= 3; level++) {
		if (dkim_canon_simd(level) != level)
			continue;
		check_body_n(false, in, len, in, len);
		check_body_n(true, in, len, in, len);
	}
	dkim_canon_simd(0);
}

/* ---------------------------------------------------------------- header fields */

static void check_header(bool relaxed, const char *field, const char *want)
{
	struct dkim_buf out = { 0 };

	dkim_canon_header(&out, relaxed, field, strlen(field));
	assert_false(out.failed);
	if (out.len != strlen(want) || memcmp(out.p, want, out.len) != 0)
		fail_msg("\"%s\" -> \"%.*s\", want \"%s\"", field, (int)out.len, out.p, want);
	dkim_buf_free(&out);
}

static void test_rfc6376_example_header(void **state)
{
	/* RFC 6376 §3.4.5. */
	check_header(true, "A: X\r\n", "a:X\r\n");
	check_header(true, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n");
	check_header(false, "A: X\r\n", "A: X\r\n");
	check_header(false, "B : Y\t\r\n\tZ  \r\n", "B : Y\t\r\n\tZ  \r\n");
}

static void test_header_relaxed(void **state)
{
	check_header(true, "Subject: Hello  World \r\n", "subject:Hello World\r\n");
	check_header(true, "SUBJECT \t:\tx\r\n", "subject:x\r\n");
	check_header(true, "X-Empty:\r\n", "x-empty:\r\n");
	check_header(true, "X-WS:   \t \r\n", "x-ws:\r\n");
	check_header(true, "To: a,\r\n\tb,\r\n c\r\n", "to:a, b, c\r\n");
	/* A fold right after the colon (OpenDKIM once got this wrong). */
	check_header(true, "Name:\r\n\tvalue\r\n", "name:value\r\n");
	check_header(true, "Name:\r\n \r\n value \r\n", "name:value\r\n");
	/* Only the name is lower-cased. */
	check_header(true, "X-Mixed: MiXeD CaSe\r\n", "x-mixed:MiXeD CaSe\r\n");
	/* A bare CR in a value is content. */
	check_header(true, "X: a\rb\r\n", "x:a\rb\r\n");
	/* 8-bit octets pass through. */
	check_header(true, "Subject: caf\xc3\xa9\r\n", "subject:caf\xc3\xa9\r\n");
	/* No colon: all of it is the name. */
	check_header(true, "NotAField \r\n", "notafield\r\n");
	/* Without a final CRLF (the signature field as hashed) one is added. */
	check_header(true, "DKIM-Signature: a=1; b=", "dkim-signature:a=1; b=\r\n");
	check_header(false, "DKIM-Signature: a=1; b=", "DKIM-Signature: a=1; b=");
	/* Longer than the internal chunk. */
	{
		char field[3000], want[3000];
		size_t n = (size_t)sprintf(field, "X-Long:"), w = (size_t)sprintf(want, "x-long:");

		for (int i = 0; i < 500; i++) {
			n += (size_t)sprintf(field + n, " \t ab");
			w += (size_t)sprintf(want + w, i == 0 ? "ab" : " ab");
		}
		sprintf(field + n, "  \r\n");
		sprintf(want + w, "\r\n");
		check_header(true, field, want);
	}
}

/* ---------------------------------------------------------------- header section */

struct collected {
	struct dkim_header h;
	size_t consumed;
};

static void collect_by(const char *in, size_t len, enum plan plan, size_t split, unsigned seed,
    struct collected *c)
{
	size_t off = 0;

	dkim_header_init(&c->h);
	c->consumed = 0;
	while (off < len && !c->h.done) {
		size_t want = next_chunk(plan, off, len - off, split, &seed);
		char *copy;
		size_t n;

		if (want > len - off)
			want = len - off;
		copy = malloc(want);
		memcpy(copy, in + off, want);
		n = dkim_header_feed(&c->h, copy, want);
		free(copy);
		assert_true(n <= want);
		if (n < want)
			assert_true(c->h.done);
		off += n;
		c->consumed += n;
	}
	if (c->h.done)
		assert_int_equal(dkim_header_feed(&c->h, "x", 1), 0);
	dkim_header_finish(&c->h);
	dkim_header_finish(&c->h);
}

/* Collects every way; checks the kept section, the octets taken and the fields. */
static void check_collect(const char *in, const char *want, size_t want_consumed,
    const char *const *names)
{
	size_t len = strlen(in);

	for (int p = 0; p < 4; p++) {
		size_t splits = p == PLAN_SPLIT ? len : 1;

		for (size_t s = 1; s <= splits; s++) {
			struct collected c;
			size_t nf = 0;

			collect_by(in, len, (enum plan)p, s, (unsigned)s, &c);
			assert_int_equal(c.h.len, strlen(want));
			assert_memory_equal(c.h.buf != NULL ? c.h.buf : "", want, c.h.len);
			assert_int_equal(c.consumed, want_consumed);
			while (names[nf] != NULL)
				nf++;
			assert_int_equal(c.h.nfields, nf);
			for (size_t f = 0; f < nf; f++) {
				const struct dkim_field *fl = &c.h.fields[f];

				assert_int_equal(fl->name_len, strlen(names[f]));
				assert_memory_equal(c.h.buf + fl->off, names[f], fl->name_len);
				assert_memory_equal(c.h.buf + fl->off + fl->len - 2, "\r\n", 2);
			}
			dkim_header_free(&c.h);
		}
	}
}

static void test_header_section(void **state)
{
	static const char *const two[] = { "From", "Subject", NULL };
	static const char *const none[] = { NULL };
	static const char *const odd[] = { "", "X", "", NULL };

	check_collect("From: a\r\nSubject: b\r\n\tc\r\n\r\nbody\r\n",
	    "From: a\r\nSubject: b\r\n\tc\r\n", 27, two);
	/* LF line ends become CRLF. */
	check_collect("From: a\nSubject: b\n\tc\n\nbody\n",
	    "From: a\r\nSubject: b\r\n\tc\r\n", 23, two);
	/* Mixed, and WSP before the colon. */
	check_collect("From : a\r\nSubject\t: b\n\tc\r\n\nbody",
	    "From : a\r\nSubject\t: b\r\n\tc\r\n", 27, two);
	/* No empty line: all header; a last line without a line end gets one. */
	check_collect("From: a\r\nSubject: b\r\n\tc", "From: a\r\nSubject: b\r\n\tc\r\n", 23, two);
	/* An empty header section. */
	check_collect("\r\nbody", "", 2, none);
	check_collect("\nbody", "", 1, none);
	check_collect("", "", 0, none);
	/* Bare CRs are content; a line without a colon has no name. */
	check_collect(" lead\r\nX: \ra\r\r\nno colon\r\n\r\n", " lead\r\nX: \ra\r\r\nno colon\r\n", 27, odd);
	check_collect("\rX: 1\r\n\r\n", "\rX: 1\r\n", 9, (const char *const[]){ "\rX", NULL });
}

static void test_header_overflow(void **state)
{
	struct dkim_buf in = { 0 };
	struct collected c;

	while (in.len < DKIM_MAX_HEADER_OCTETS + 5000)
		dkim_buf_add(&in, "X-Filler: 01234567890123456789\r\n", 32);
	dkim_buf_add(&in, "\r\nbody", 6);
	for (unsigned seed = 0; seed < 3; seed++) {
		collect_by(in.p, in.len, seed == 0 ? PLAN_WHOLE : PLAN_RANDOM, 0, seed, &c);
		assert_true(c.h.overflow);
		assert_int_equal(c.consumed, in.len - 4);        /* the empty line was found */
		assert_true(c.h.len <= DKIM_MAX_HEADER_OCTETS);
		assert_int_equal(c.h.len % 32, 0);               /* whole lines only */
		assert_int_equal(c.h.nfields, c.h.len / 32);
		dkim_header_free(&c.h);
	}
	dkim_buf_free(&in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6376_example_body),
		cmocka_unit_test(test_body_edges),
		cmocka_unit_test(test_body_many_empty_lines),
		cmocka_unit_test(test_body_long_line),
		cmocka_unit_test(test_body_against_reference),
		cmocka_unit_test(test_body_clean_chunks),
		cmocka_unit_test(test_body_clean_is_identity),
		cmocka_unit_test(test_rfc6376_example_header),
		cmocka_unit_test(test_header_relaxed),
		cmocka_unit_test(test_header_section),
		cmocka_unit_test(test_header_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
