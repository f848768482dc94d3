/*
 * Unit tests for smtp-data: DATA dot-unstuffing and end detection (RFC 5321
 * §4.5.2), BDAT raw chunks (RFC 3030), bare CR / LF rejection against SMTP
 * smuggling (RFC 5321 §2.3.8), limits (RFC 5321 §4.5.3.1.6, RFC 1870).
 *
 * Every case is fed whole, one octet at a time, split in two at every position,
 * and in random chunk sizes; all runs must give the same output, consumption,
 * state and error. Each chunk is an exact-size heap copy so ASan sees overreads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/smtp-data.h"

struct dcase {
	const char *name;
	enum smtp_data_mode mode;
	uint64_t max_size;
	size_t max_line;
	const char *in;
	size_t in_len;
	const char *out;
	size_t out_len;
	size_t rest; /* input octets left unconsumed (pipelined commands) */
	bool done;
	bool finish; /* RAW: smtp_data_finish_raw at the end */
	enum smtp_data_error error;
	bool eightbit;
};

#define IN(s) .in = (s), .in_len = sizeof(s) - 1
#define OUT(s) .out = (s), .out_len = sizeof(s) - 1

enum plan { PLAN_WHOLE, PLAN_BYTE, PLAN_SPLIT, PLAN_RANDOM };

struct run {
	char *out;
	size_t out_len, consumed;
	bool done;
	enum smtp_data_error error;
	bool eightbit;
	uint64_t size;
	int finish_ret;
};

static size_t next_chunk(enum plan plan, size_t off, size_t left, size_t split, unsigned *seed)
{
	switch (plan) {
	case PLAN_WHOLE:
		return left;
	case PLAN_BYTE:
		return 1;
	case PLAN_SPLIT:
		return off < split ? split - off : left;
	case PLAN_RANDOM:
		break;
	}
	*seed = *seed * 1103515245u + 12345u;
	size_t n = 1 + (*seed >> 16) % ((*seed & 1) != 0 ? 7 : 97);
	return n < left ? n : left;
}

static struct run run_plan(const struct dcase *c, enum plan plan, size_t split, unsigned seed)
{
	struct smtp_data_decoder d;
	struct evbuffer *out = evbuffer_new();
	struct run r = { 0 };
	size_t off = 0;

	assert_non_null(out);
	smtp_data_init(&d, c->mode, c->max_size, c->max_line);
	while (off < c->in_len) {
		size_t n = next_chunk(plan, off, c->in_len - off, split, &seed);
		char *chunk = malloc(n);
		size_t used;

		assert_non_null(chunk);
		memcpy(chunk, c->in + off, n);
		used = smtp_data_feed(&d, chunk, n, out);
		free(chunk);
		assert_true(used <= n);
		off += used;
		if (used < n) {
			/* only the terminator stops consumption early */
			assert_true(smtp_data_done(&d));
			break;
		}
	}
	r.finish_ret = c->finish ? smtp_data_finish_raw(&d, out) : 0;
	r.consumed = off;
	r.done = smtp_data_done(&d);
	r.error = smtp_data_error(&d);
	r.eightbit = smtp_data_8bit(&d);
	r.size = smtp_data_size(&d);
	r.out_len = evbuffer_get_length(out);
	r.out = malloc(r.out_len + 1);
	assert_non_null(r.out);
	evbuffer_copyout(out, r.out, r.out_len);
	evbuffer_free(out);
	return r;
}

static void check_run(const struct dcase *c, const struct run *r, const char *how)
{
	if (r->out_len != c->out_len || memcmp(r->out, c->out, c->out_len) != 0)
		fail_msg("%s (%s): output %zu octets \"%.*s\", want %zu", c->name, how, r->out_len,
			 (int)r->out_len, r->out, c->out_len);
	if (r->consumed != c->in_len - c->rest)
		fail_msg("%s (%s): consumed %zu, want %zu", c->name, how, r->consumed,
			 c->in_len - c->rest);
	if (r->done != (c->done || c->finish))
		fail_msg("%s (%s): done %d", c->name, how, r->done);
	if (r->error != c->error)
		fail_msg("%s (%s): error %d, want %d", c->name, how, r->error, c->error);
	if (r->eightbit != c->eightbit)
		fail_msg("%s (%s): 8bit %d", c->name, how, r->eightbit);
	if (c->finish)
		assert_int_equal(r->finish_ret, c->error == SMTP_DATA_ERR_NONE ? 0 : -1);
	if (c->error == SMTP_DATA_ERR_NONE)
		assert_true(r->size == c->out_len);
}

/* Whole, byte at a time, every two-way split, and random chunkings. */
static void run_case(const struct dcase *c)
{
	struct run r;

	r = run_plan(c, PLAN_WHOLE, 0, 0);
	check_run(c, &r, "whole");
	free(r.out);
	r = run_plan(c, PLAN_BYTE, 0, 0);
	check_run(c, &r, "byte at a time");
	free(r.out);
	for (size_t k = 1; k < c->in_len; k++) {
		r = run_plan(c, PLAN_SPLIT, k, 0);
		check_run(c, &r, "split");
		free(r.out);
	}
	for (unsigned seed = 1; seed <= 50; seed++) {
		r = run_plan(c, PLAN_RANDOM, 0, seed);
		check_run(c, &r, "random chunks");
		free(r.out);
	}
}

static void run_cases(const struct dcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_case(&cases[i]);
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

/* RFC 5321 §4.5.2: end of data, with DATA's CRLF counting as the first one. */
static void test_dot_end(void **state)
{
	static const struct dcase cases[] = {
		{ "§4.5.2 empty message", SMTP_DATA_DOT, 0, 1000, IN(".\r\n"), OUT(""), 0, true },
		{ "§4.5.2 simple", SMTP_DATA_DOT, 0, 1000, IN("Subject: x\r\n\r\nbody\r\n.\r\n"),
		  OUT("Subject: x\r\n\r\nbody\r\n"), 0, true },
		{ "§4.5.2 empty lines", SMTP_DATA_DOT, 0, 1000, IN("\r\n\r\n.\r\n"), OUT("\r\n\r\n"), 0, true },
		{ "§4.5.2 not yet ended", SMTP_DATA_DOT, 0, 1000, IN("body\r\n"), OUT("body\r\n"), 0, false },
		{ "§4.5.2 dot not at line start", SMTP_DATA_DOT, 0, 1000, IN("body.\r\na.b\r\n"),
		  OUT("body.\r\na.b\r\n"), 0, false },
		{ "§4.5.2 dot then text", SMTP_DATA_DOT, 0, 1000, IN("body\r\n. \r\n"), OUT("body\r\n \r\n"), 0, false },
		{ "§4.5.2 pending dot", SMTP_DATA_DOT, 0, 1000, IN("body\r\n."), OUT("body\r\n"), 0, false },
		{ "§4.5.2 pending dot CR", SMTP_DATA_DOT, 0, 1000, IN("body\r\n.\r"), OUT("body\r\n"), 0, false },
	};

	RUN(cases);
}

/* RFC 5321 §4.5.2: the first "." of a line is removed (transparency). */
static void test_dot_unstuff(void **state)
{
	static const struct dcase cases[] = {
		{ "§4.5.2 stuffed dot line", SMTP_DATA_DOT, 0, 1000, IN("..\r\n.\r\n"), OUT(".\r\n"), 0, true },
		{ "§4.5.2 stuffed leading dot", SMTP_DATA_DOT, 0, 1000, IN("..leading\r\n...\r\n.\r\n"),
		  OUT(".leading\r\n..\r\n"), 0, true },
		{ "§4.5.2 unstuffed dot text", SMTP_DATA_DOT, 0, 1000, IN(".x\r\n.\r\n"), OUT("x\r\n"), 0, true },
		{ "§4.5.2 dot at start of every line", SMTP_DATA_DOT, 0, 1000,
		  IN("a\r\n..b\r\n..\r\n..c.\r\n.\r\n"), OUT("a\r\n.b\r\n.\r\n.c.\r\n"), 0, true },
	};

	RUN(cases);
}

/* RFC 5321 §4.5.2 / RFC 2920: what follows the terminator is left unconsumed. */
static void test_dot_pipelining(void **state)
{
	static const struct dcase cases[] = {
		{ "pipelined QUIT", SMTP_DATA_DOT, 0, 1000, IN("body\r\n.\r\nQUIT\r\n"), OUT("body\r\n"), 6, true },
		{ "pipelined MAIL", SMTP_DATA_DOT, 0, 1000, IN(".\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\n"),
		  OUT(""), 29, true },
		{ "second terminator left", SMTP_DATA_DOT, 0, 1000, IN("a\r\n.\r\n.\r\n"), OUT("a\r\n"), 3, true },
	};

	RUN(cases);
}

/* RFC 6152: 8-bit content is noticed. */
static void test_eightbit(void **state)
{
	static const struct dcase cases[] = {
		{ "RFC 6152 8bit", SMTP_DATA_DOT, 0, 1000, IN("caf\xc3\xa9\r\n.\r\n"), OUT("caf\xc3\xa9\r\n"),
		  0, true, false, SMTP_DATA_ERR_NONE, true },
		{ "RFC 6152 7bit", SMTP_DATA_DOT, 0, 1000, IN("cafe\r\n.\r\n"), OUT("cafe\r\n"), 0, true },
		{ "RFC 6152 8bit stuffed", SMTP_DATA_DOT, 0, 1000, IN(".\xff\r\n.\r\n"), OUT("\xff\r\n"),
		  0, true, false, SMTP_DATA_ERR_NONE, true },
	};

	RUN(cases);
}

/* RFC 5322 §3.5, RFC 2045 §2.8: NUL is refused; scanning goes on to the end. */
static void test_nul(void **state)
{
	static const struct dcase cases[] = {
		{ "NUL", SMTP_DATA_DOT, 0, 1000, IN("a\0b\r\n.\r\nQUIT\r\n"), OUT("a"), 6, true, false,
		  SMTP_DATA_ERR_NUL },
		{ "NUL at line start", SMTP_DATA_DOT, 0, 1000, IN("a\r\n\0.\r\n.\r\n"), OUT("a\r\n"), 0, true,
		  false, SMTP_DATA_ERR_NUL },
	};

	RUN(cases);
}

/* RFC 1870: more than max_size decoded octets → 552 5.3.4, bounded output. */
static void test_too_big(void **state)
{
	static const struct dcase cases[] = {
		{ "RFC 1870 at limit", SMTP_DATA_DOT, 12, 1000, IN("0123456789\r\n.\r\n"),
		  OUT("0123456789\r\n"), 0, true },
		{ "RFC 1870 over limit", SMTP_DATA_DOT, 10, 1000, IN("0123456789\r\n.\r\nQUIT\r\n"),
		  OUT("0123456789"), 6, true, false, SMTP_DATA_ERR_TOO_BIG },
		{ "RFC 1870 stuffing dot not counted", SMTP_DATA_DOT, 4, 1000, IN("..a\r\n.\r\n"),
		  OUT(".a\r\n"), 0, true },
		{ "RFC 1870 raw over limit", SMTP_DATA_RAW, 3, 1000, IN("abcdef"), OUT("abc"), 0, false,
		  false, SMTP_DATA_ERR_TOO_BIG },
	};

	RUN(cases);
}

/* RFC 5321 §4.5.3.1.6: a line is at most max_line octets with its CRLF, not
 * counting the stuffing dot. */
static void test_line_too_long(void **state)
{
	static const struct dcase cases[] = {
		{ "§4.5.3.1.6 at limit", SMTP_DATA_DOT, 0, 10, IN("12345678\r\n.\r\n"), OUT("12345678\r\n"),
		  0, true },
		{ "§4.5.3.1.6 over by LF", SMTP_DATA_DOT, 0, 10, IN("123456789\r\n.\r\n"), OUT("123456789\r"),
		  0, true, false, SMTP_DATA_ERR_LINE_TOO_LONG },
		{ "§4.5.3.1.6 over by text", SMTP_DATA_DOT, 0, 10, IN("ok\r\n12345678901234\r\n.\r\n"),
		  OUT("ok\r\n1234567890"), 0, true, false, SMTP_DATA_ERR_LINE_TOO_LONG },
		{ "§4.5.3.1.6 stuffing dot not counted", SMTP_DATA_DOT, 0, 10, IN("..2345678\r\n.\r\n"),
		  OUT(".2345678\r\n"), 0, true },
		{ "§4.5.3.1.6 count restarts per line", SMTP_DATA_DOT, 0, 6, IN("1234\r\n1234\r\n1234\r\n.\r\n"),
		  OUT("1234\r\n1234\r\n1234\r\n"), 0, true },
		{ "§4.5.3.1.6 raw", SMTP_DATA_RAW, 0, 4, IN("ab\r\nabc\r\n"), OUT("ab\r\nabc\r"), 0, false,
		  false, SMTP_DATA_ERR_LINE_TOO_LONG },
	};

	RUN(cases);
}

/* The FIRST error is kept; the decoder still finds the real terminator. */
static void test_first_error_wins(void **state)
{
	static const struct dcase cases[] = {
		{ "NUL then long line", SMTP_DATA_DOT, 0, 5, IN("\0\r\n123456789\r\n.\r\n"), OUT(""), 0, true,
		  false, SMTP_DATA_ERR_NUL },
		{ "long line then bare LF", SMTP_DATA_DOT, 0, 5, IN("123456789\nx\r\n.\r\nQUIT\r\n"),
		  OUT("12345"), 6, true, false, SMTP_DATA_ERR_LINE_TOO_LONG },
		{ "too big and long on the same octet", SMTP_DATA_DOT, 5, 5, IN("123456\r\n.\r\n"),
		  OUT("12345"), 0, true, false, SMTP_DATA_ERR_TOO_BIG },
		{ "bare CR then too big", SMTP_DATA_DOT, 3, 0, IN("a\rbcdef\r\n.\r\n"), OUT("a\r"), 0, true,
		  false, SMTP_DATA_ERR_BARE_CR },
	};

	RUN(cases);
}

/* RFC 5321 §2.3.8: bare CR and bare LF are refused, never normalised. */
static void test_bare_cr_lf(void **state)
{
	static const struct dcase cases[] = {
		{ "§2.3.8 bare LF", SMTP_DATA_DOT, 0, 1000, IN("a\nb\r\n.\r\n"), OUT("a"), 0, true, false,
		  SMTP_DATA_ERR_BARE_LF },
		{ "§2.3.8 bare CR", SMTP_DATA_DOT, 0, 1000, IN("a\rb\r\n.\r\n"), OUT("a\r"), 0, true, false,
		  SMTP_DATA_ERR_BARE_CR },
		/* <LF>.<CRLF> as the first line: the LF is bare, the "." is no terminator. */
		{ "§2.3.8 LF first", SMTP_DATA_DOT, 0, 1000, IN("\n.\r\n"), OUT(""), 0, false, false,
		  SMTP_DATA_ERR_BARE_LF },
		{ "§2.3.8 CR CR LF", SMTP_DATA_DOT, 0, 1000, IN("a\r\r\nb\r\n.\r\n"), OUT("a\r"), 0, true,
		  false, SMTP_DATA_ERR_BARE_CR },
		{ "§2.3.8 LF CR LF", SMTP_DATA_DOT, 0, 1000, IN("a\n\r\nb\r\n.\r\n"), OUT("a"), 0, true, false,
		  SMTP_DATA_ERR_BARE_LF },
		/* A real <CRLF>.<CRLF> right after a bare CR is the end for every reader. */
		{ "§2.3.8 bare CR before terminator", SMTP_DATA_DOT, 0, 1000, IN("a\r\r\n.\r\nX"), OUT("a\r"),
		  1, true, false, SMTP_DATA_ERR_BARE_CR },
	};

	RUN(cases);
}

/*
 * SMTP smuggling (SEC Consult, December 2023; Postfix and Sendmail advisories):
 * an end-of-data look-alike followed by a smuggled transaction. None may end
 * the message: it ends only at the real <CRLF>.<CRLF>, with the error recorded
 * and nothing of the smuggled commands in the output.
 */
static void test_smuggling(void **state)
{
	static const struct {
		const char *name;
		const char *variant;
		size_t variant_len;
		enum smtp_data_error error;
		const char *out_tail; /* what of the variant reaches the output */
	} v[] = {
		{ "<LF>.<LF>", "\n.\n", 3, SMTP_DATA_ERR_BARE_LF, "" },
		{ "<LF>.<CR><LF>", "\n.\r\n", 4, SMTP_DATA_ERR_BARE_LF, "" },
		{ "<CR><LF>.<LF>", "\r\n.\n", 4, SMTP_DATA_ERR_BARE_LF, "\r\n" },
		{ "<CR>.<CR>", "\r.\r", 3, SMTP_DATA_ERR_BARE_CR, "\r" },
		{ "<CR>.<CR><LF>", "\r.\r\n", 4, SMTP_DATA_ERR_BARE_CR, "\r" },
		{ "<CR><LF>.<CR>", "\r\n.\r", 4, SMTP_DATA_ERR_BARE_CR, "\r\n" },
		{ "<LF>.<CR>", "\n.\r", 3, SMTP_DATA_ERR_BARE_LF, "" },
		{ "<CR><LF>.<CR><CR><LF>", "\r\n.\r\r\n", 6, SMTP_DATA_ERR_BARE_CR, "\r\n" },
		{ "<LF><LF>.<LF><LF>", "\n\n.\n\n", 5, SMTP_DATA_ERR_BARE_LF, "" },
		{ "<CR><CR>.<CR><CR>", "\r\r.\r\r", 5, SMTP_DATA_ERR_BARE_CR, "\r" },
		{ "<CR><LF><NUL>.<CR><LF>", "\r\n\0.\r\n", 6, SMTP_DATA_ERR_NUL, "\r\n" },
		{ "<CR><LF>.<LF><CR><LF>", "\r\n.\n\r\n", 6, SMTP_DATA_ERR_BARE_LF, "\r\n" },
	};
	static const char head[] = "Subject: s\r\n\r\nhello";
	static const char smuggled[] = "MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@y.example>\r\n"
				       "DATA\r\nsmuggled\r\n";
	static const char end[] = "\r\n.\r\n";
	static const char after[] = "QUIT\r\n";

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char in[512], out[128];
		size_t n = 0, o;
		struct dcase c = { .name = v[i].name, .mode = SMTP_DATA_DOT, .max_line = 1000 };

#define PUT(s, len) (memcpy(in + n, (s), (len)), n += (len))
		PUT(head, sizeof(head) - 1);
		PUT(v[i].variant, v[i].variant_len);
		PUT(smuggled, sizeof(smuggled) - 1);
		PUT(end, sizeof(end) - 1);
		PUT(after, sizeof(after) - 1);
#undef PUT
		o = (size_t)snprintf(out, sizeof(out), "%s%s", head, v[i].out_tail);
		c.in = in;
		c.in_len = n;
		c.out = out;
		c.out_len = o;
		c.rest = sizeof(after) - 1;
		c.done = true;
		c.error = v[i].error;
		run_case(&c);

		/* And without the real terminator: never done. */
		c.in_len = n - (sizeof(end) - 1) - (sizeof(after) - 1);
		c.rest = 0;
		c.done = false;
		run_case(&c);
	}
}

/* RFC 3030 §3: BDAT data is taken as is: no dot handling, no end. */
static void test_raw(void **state)
{
	static const struct dcase cases[] = {
		{ "RFC 3030 dots kept", SMTP_DATA_RAW, 0, 1000, IN("a.b\r\n.\r\n..\r\nrest"),
		  OUT("a.b\r\n.\r\n..\r\nrest"), 0, false },
		{ "RFC 3030 leading dot", SMTP_DATA_RAW, 0, 1000, IN(".\r\n"), OUT(".\r\n"), 0, false },
		{ "RFC 3030 bare LF", SMTP_DATA_RAW, 0, 1000, IN("a\nb"), OUT("a"), 0, false, false,
		  SMTP_DATA_ERR_BARE_LF },
		{ "RFC 3030 bare CR", SMTP_DATA_RAW, 0, 1000, IN("a\rb\r\n"), OUT("a\r"), 0, false, false,
		  SMTP_DATA_ERR_BARE_CR },
		{ "RFC 3030 8bit", SMTP_DATA_RAW, 0, 1000, IN("\xc3\xa9\r\n"), OUT("\xc3\xa9\r\n"), 0, false,
		  false, SMTP_DATA_ERR_NONE, true },
	};

	RUN(cases);
}

/* RFC 3030 §3 / RFC 5321 §2.3.8: BDAT LAST completes the last line. */
static void test_raw_finish(void **state)
{
	static const struct dcase cases[] = {
		{ "LAST adds CRLF", SMTP_DATA_RAW, 0, 1000, IN("abc"), OUT("abc\r\n"), 0, false, true },
		{ "LAST keeps CRLF", SMTP_DATA_RAW, 0, 1000, IN("abc\r\n"), OUT("abc\r\n"), 0, false, true },
		{ "LAST empty message", SMTP_DATA_RAW, 0, 1000, IN(""), OUT(""), 0, false, true },
		{ "LAST trailing bare CR", SMTP_DATA_RAW, 0, 1000, IN("abc\r"), OUT("abc\r"), 0, false, true,
		  SMTP_DATA_ERR_BARE_CR },
		{ "LAST CRLF makes line too long", SMTP_DATA_RAW, 0, 5, IN("abcd"), OUT("abcd\r"), 0, false,
		  true, SMTP_DATA_ERR_LINE_TOO_LONG },
		{ "LAST CRLF makes message too big", SMTP_DATA_RAW, 5, 0, IN("abcd"), OUT("abcd\r"), 0, false,
		  true, SMTP_DATA_ERR_TOO_BIG },
		{ "LAST after error", SMTP_DATA_RAW, 0, 0, IN("a\nb"), OUT("a"), 0, false, true,
		  SMTP_DATA_ERR_BARE_LF },
	};

	RUN(cases);
}

/* Once the terminator is seen, nothing more is consumed (RFC 5321 §4.5.2). */
static void test_after_done(void **state)
{
	struct smtp_data_decoder d;
	struct evbuffer *out = evbuffer_new();

	smtp_data_init(&d, SMTP_DATA_DOT, 0, 1000);
	assert_int_equal(smtp_data_feed(&d, "x\r\n.\r\n", 6, out), 6);
	assert_true(smtp_data_done(&d));
	assert_int_equal(smtp_data_feed(&d, "more", 4, out), 0);
	assert_int_equal(smtp_data_feed(&d, NULL, 0, out), 0);
	assert_int_equal(evbuffer_get_length(out), 3);
	evbuffer_free(out);
}

/* CONVENTIONS §6: O(1) state; output bounded by max_size after an error. */
static void test_bounded_memory(void **state)
{
	struct smtp_data_decoder d;
	struct evbuffer *out = evbuffer_new();
	static char block[65536];

	memset(block, 'x', sizeof(block));
	smtp_data_init(&d, SMTP_DATA_DOT, 100000, 1000);
	for (int i = 0; i < 160; i++) /* 10 MiB, one endless line */
		assert_int_equal(smtp_data_feed(&d, block, sizeof(block), out), sizeof(block));
	assert_int_equal(smtp_data_error(&d), SMTP_DATA_ERR_LINE_TOO_LONG);
	assert_true(evbuffer_get_length(out) <= 1000);
	assert_true(smtp_data_size(&d) == 160u * sizeof(block));
	assert_int_equal(smtp_data_feed(&d, "\r\n.\r\n", 5, out), 5);
	assert_true(smtp_data_done(&d));
	evbuffer_free(out);
}

/* Differential: random inputs over the interesting octets give identical results
 * whatever the chunking (the run fast path against the byte-at-a-time path). */
static void test_random_inputs(void **state)
{
	static const char alphabet[] = { 'a', '.', '.', '\r', '\n', '\r', '\n', '\0', (char)0xc3 };
	unsigned seed = 12345;

	for (int iter = 0; iter < 400; iter++) {
		char in[48];
		size_t len = 1 + (size_t)iter % sizeof(in);
		struct dcase c = { .name = "random",
				   .mode = iter % 2 == 0 ? SMTP_DATA_DOT : SMTP_DATA_RAW,
				   .max_size = (uint64_t)(iter % 5) * 8,
				   .max_line = (size_t)(iter % 3) * 6 };
		struct run ref;

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alphabet[(seed >> 16) % sizeof(alphabet)];
		}
		c.in = in;
		c.in_len = len;
		c.finish = c.mode == SMTP_DATA_RAW;
		ref = run_plan(&c, PLAN_BYTE, 0, 0);
		c.out = ref.out;
		c.out_len = ref.out_len;
		c.rest = len - ref.consumed;
		c.done = ref.done && !c.finish;
		c.error = ref.error;
		c.eightbit = ref.eightbit;
		run_case(&c);
		free(ref.out);
	}
}

/* RFC 5321 §4.2.3/§4.5.3.1.9, RFC 3463: the reply for each error. */
static void test_error_replies(void **state)
{
	static const struct {
		enum smtp_data_error e;
		int code;
		const char *enh;
	} v[] = {
		{ SMTP_DATA_ERR_NONE, 250, "2.0.0" },
		{ SMTP_DATA_ERR_TOO_BIG, 552, "5.3.4" },
		{ SMTP_DATA_ERR_LINE_TOO_LONG, 500, "5.6.0" },
		{ SMTP_DATA_ERR_BARE_LF, 550, "5.6.0" },
		{ SMTP_DATA_ERR_BARE_CR, 550, "5.6.0" },
		{ SMTP_DATA_ERR_NUL, 550, "5.6.0" },
		{ SMTP_DATA_ERR_INTERNAL, 451, "4.3.0" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int code;
		const char *enh, *text;

		smtp_data_error_reply(v[i].e, &code, &enh, &text);
		assert_int_equal(code, v[i].code);
		assert_string_equal(enh, v[i].enh);
		assert_non_null(text);
		assert_int_equal(enh[0] - '0', code / 100);
	}
	{
		int code;
		const char *enh, *text;

		smtp_data_error_reply(SMTP_DATA_ERR_BARE_LF, &code, &enh, &text);
		assert_string_equal(text, "bare CR or LF not allowed, RFC 5321 §2.3.8");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_end),
		cmocka_unit_test(test_dot_unstuff),
		cmocka_unit_test(test_dot_pipelining),
		cmocka_unit_test(test_eightbit),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_first_error_wins),
		cmocka_unit_test(test_bare_cr_lf),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_raw_finish),
		cmocka_unit_test(test_after_done),
		cmocka_unit_test(test_bounded_memory),
		cmocka_unit_test(test_random_inputs),
		cmocka_unit_test(test_error_replies),
	};

	return cmocka_run_group_tests_name("smtp-data", tests, NULL, NULL);
}
