/*
 * Unit tests for header-from: the resumable From: scanner (RFC 5322 §2.1, §2.2.3,
 * §3.6) and the From: address-list parser (RFC 5322 §3.4, §4.4, RFC 6532).
 *
 * Every message is scanned whole, one byte at a time, split in two at every
 * point (short messages), and in random chunks; every chunk is an exact-size
 * heap copy so ASan catches any read past it. All runs must agree on every
 * result, including the number of octets consumed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/header-from.h"

/* ---------------------------------------------------------------- scanner */

struct scan_result {
	size_t consumed;
	unsigned count;
	bool too_long, overflow, bad_octet, check_ok;
	char value[HEADER_FROM_VALUE_MAX + 1];
};

enum plan { PLAN_WHOLE, PLAN_BYTES, PLAN_SPLIT, PLAN_RANDOM };

static size_t chunk_len(enum plan plan, size_t off, size_t left, size_t split, unsigned *seed)
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
		return 1 + (size_t)((*seed >> 16) % 97);
	}
	return left;
}

/* Scans msg[0..len) by plan and fills r. */
static void scan_by(const char *msg, size_t len, enum plan plan, size_t split, unsigned seed,
		    struct scan_result *r)
{
	struct header_from_scan *s = malloc(sizeof(*s));
	const char *error = NULL;
	size_t off = 0;

	assert_non_null(s);
	header_from_scan_init(s);
	while (off < len && !header_from_scan_done(s)) {
		size_t want = chunk_len(plan, off, len - off, split, &seed);
		size_t n;
		char *copy;

		if (want > len - off)
			want = len - off;
		copy = malloc(want);
		assert_non_null(copy);
		memcpy(copy, msg + off, want);
		n = header_from_scan_feed(s, copy, want);
		free(copy);
		assert_true(n <= want);
		if (n < want)
			assert_true(header_from_scan_done(s));
		off += n;
	}
	if (header_from_scan_done(s))
		assert_int_equal(header_from_scan_feed(s, "x", 1), 0);
	header_from_scan_finish(s);
	assert_true(header_from_scan_done(s));
	r->consumed = off;
	r->count = header_from_scan_count(s);
	r->too_long = header_from_scan_too_long(s);
	r->overflow = header_from_scan_overflow(s);
	r->bad_octet = header_from_scan_bad_octet(s);
	r->check_ok = header_from_scan_check(s, &error) == 0;
	if (!r->check_ok)
		assert_non_null(error);
	assert_true(strlen(header_from_scan_value(s)) <= HEADER_FROM_VALUE_MAX);
	strcpy(r->value, header_from_scan_value(s));
	free(s);
}

static void assert_same(const struct scan_result *a, const struct scan_result *b)
{
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->count, b->count);
	assert_int_equal(a->too_long, b->too_long);
	assert_int_equal(a->overflow, b->overflow);
	assert_int_equal(a->bad_octet, b->bad_octet);
	assert_int_equal(a->check_ok, b->check_ok);
	assert_string_equal(a->value, b->value);
}

/* Scans msg every way; all must agree. The whole-feed result lands in r. */
static void scan_n(const char *msg, size_t len, struct scan_result *r)
{
	struct scan_result *other = malloc(sizeof(*other));

	assert_non_null(other);
	scan_by(msg, len, PLAN_WHOLE, 0, 0, r);
	if (len <= 4096) {
		scan_by(msg, len, PLAN_BYTES, 0, 0, other);
		assert_same(r, other);
	}
	for (size_t split = 1; len <= 300 && split < len; split++) {
		scan_by(msg, len, PLAN_SPLIT, split, 0, other);
		assert_same(r, other);
	}
	for (unsigned seed = 1; seed <= (len <= 4096 ? 20u : 3u); seed++) {
		scan_by(msg, len, PLAN_RANDOM, 0, seed, other);
		assert_same(r, other);
	}
	free(other);
}

static void scan(const char *msg, struct scan_result *r)
{
	scan_n(msg, strlen(msg), r);
}

/* The usual outcome: one From:, value as given, consumed up to the empty line. */
static void expect_from(const char *msg, const char *value, size_t consumed)
{
	struct scan_result r;

	scan(msg, &r);
	assert_int_equal(r.count, 1);
	assert_string_equal(r.value, value);
	assert_int_equal(r.consumed, consumed);
	assert_false(r.too_long);
	assert_false(r.overflow);
	assert_false(r.bad_octet);
	assert_true(r.check_ok);
}

static void test_scan_simple(void **state)
{
	static const char msg[] = "Subject: hi\r\nFrom: alice@example.org\r\nTo: b@x\r\n\r\n"
				  "body\r\nFrom: mallory@evil.org\r\n";

	(void)state;
	expect_from(msg, "alice@example.org", strlen(msg) - strlen("body\r\nFrom: mallory@evil.org\r\n"));
}

static void test_scan_folded(void **state)
{
	static const char msg[] = "Subject: hi\r\nFrom: Alice\r\n <alice@example.org>\r\n"
				  "\t(comment)\r\nTo: b@x\r\n  c@y\r\n\r\nbody";

	(void)state;
	expect_from(msg, "Alice <alice@example.org>\t(comment)", strlen(msg) - 4);
	/* An empty first line: the body starts on the continuation. */
	expect_from("From:\r\n \t alice@example.org\r\n\r\n", "alice@example.org", 31);
	/* Trailing WSP is kept; the WSP after the colon is not. */
	expect_from("From:   a@x.org  \r\n\r\n", "a@x.org  ", 21);
}

static void test_scan_bare_lf(void **state)
{
	static const char msg[] = "Subject: hi\nFrom: Alice\n <alice@example.org>\nTo: b@x\n\nbody\n";
	static const char mixed[] = "Subject: hi\r\nFrom: Alice\n <alice@example.org>\r\n\nbody\r\n";

	(void)state;
	expect_from(msg, "Alice <alice@example.org>", strlen(msg) - 5);
	expect_from(mixed, "Alice <alice@example.org>", strlen(mixed) - 6);
}

static void test_scan_header_only(void **state)
{
	(void)state;
	expect_from("Subject: x\r\nFrom: a@x.org", "a@x.org", 25);
	expect_from("From: a@x.org\r\n", "a@x.org", 15);
	expect_from("From: a@x.org\r\n b@y.org", "a@x.org b@y.org", 23);
}

static void test_scan_field_names(void **state)
{
	struct scan_result r;

	(void)state;
	expect_from("FROM: a@x.org\r\n\r\n", "a@x.org", 17);
	expect_from("fRoM: a@x.org\r\n\r\n", "a@x.org", 17);
	/* RFC 5322 §4.5.2 obs-from: WSP before the colon. */
	expect_from("from : a@x.org\r\n\r\n", "a@x.org", 18);
	expect_from("From\t \t:a@x.org\r\n\r\n", "a@x.org", 19);
	/* Other fields and non-fields are not From:. */
	scan("Resent-From: a@x.org\r\nFrom-X: b\r\nFromage: c\r\nFro: d\r\n"
	     "From x: e\r\nFrom a@x.org Sat Jan  1 00:00:00 2000\r\n:From: f\r\n"
	     "From\r\n : g\r\nX: From: h\r\n\r\n", &r);
	assert_int_equal(r.count, 0);
	assert_string_equal(r.value, "");
	assert_false(r.check_ok);
}

static void test_scan_skips_non_fields(void **state)
{
	(void)state;
	/* A first line starting with WSP and lines without a colon end nothing. */
	expect_from(" From: nobody@x.org\r\nno colon here\r\nFrom: a@x.org\r\n\r\n", "a@x.org", 53);
	/* Continuations belong to their own field, never to the From: before it. */
	expect_from("From: a@x.org\r\nSubject: s\r\n b@y.org\r\n\r\n", "a@x.org", 39);
	expect_from("From: a@x.org\r\nno colon\r\n b@y.org\r\n\r\n", "a@x.org", 37);
}

static void test_scan_count(void **state)
{
	struct scan_result r;

	(void)state;
	scan("From: a@x.org\r\nSubject: s\r\nfrom : b@y.org\r\n\r\n", &r);
	assert_int_equal(r.count, 2);
	assert_string_equal(r.value, "a@x.org");
	assert_false(r.check_ok);
	/* The body is not the header: a From: there does not count. */
	scan("Subject: s\r\n\r\nFrom: b@y.org\r\n", &r);
	assert_int_equal(r.count, 0);
	assert_int_equal(r.consumed, 14);
	assert_false(r.check_ok);
	/* No header at all. */
	scan("\r\nFrom: a@x.org\r\n", &r);
	assert_int_equal(r.count, 0);
	assert_int_equal(r.consumed, 2);
	scan("", &r);
	assert_int_equal(r.count, 0);
	assert_int_equal(r.consumed, 0);
	assert_false(r.check_ok);
}

static void test_scan_too_long(void **state)
{
	size_t pad = HEADER_FROM_VALUE_MAX - strlen("a@x.org");
	char *msg = malloc(HEADER_FROM_VALUE_MAX + 64);
	struct scan_result r;
	int len;

	(void)state;
	assert_non_null(msg);
	/* Exactly the maximum, folded: kept. */
	len = snprintf(msg, HEADER_FROM_VALUE_MAX + 64, "From: a@x.org\r\n%*s\r\n\r\n", (int)pad, "");
	scan_n(msg, (size_t)len, &r);
	assert_int_equal(r.count, 1);
	assert_false(r.too_long);
	assert_int_equal(strlen(r.value), HEADER_FROM_VALUE_MAX);
	assert_true(r.check_ok);
	/* One more: flagged, and the cut value is not handed out. */
	len = snprintf(msg, HEADER_FROM_VALUE_MAX + 64, "From: a@x.org\r\n%*s\r\n\r\n", (int)pad + 1, "");
	scan_n(msg, (size_t)len, &r);
	assert_int_equal(r.count, 1);
	assert_true(r.too_long);
	assert_string_equal(r.value, "");
	assert_false(r.check_ok);
	assert_int_equal(r.consumed, (size_t)len);
	free(msg);
}

static void test_scan_section_limit(void **state)
{
	const size_t max = HEADER_FROM_SECTION_MAX;
	char *msg = malloc(max + 64);
	struct scan_result r;
	size_t len, i;

	(void)state;
	assert_non_null(msg);
	/* Exactly 1 MiB including the empty line: whole. */
	len = (size_t)sprintf(msg, "From: a@x.org\r\nX-Pad: ");
	while (len < max - 4)
		msg[len++] = 'p';
	memcpy(msg + len, "\r\n\r\nbody", 8);
	len += 8;
	scan_n(msg, len, &r);
	assert_false(r.overflow);
	assert_int_equal(r.consumed, max);
	assert_true(r.check_ok);
	assert_string_equal(r.value, "a@x.org");
	/* One octet more: overflow, and a From: past the limit goes unseen. */
	len = (size_t)sprintf(msg, "From: a@x.org\r\n");
	for (i = 0; len < max - 3; i++)
		len += (size_t)sprintf(msg + len, "X-%zu: y\r\n", i);
	len = max - 3;
	memcpy(msg + len, "\r\nFrom: b@y.org\r\n\r\n", 19);
	len += 19;
	scan_n(msg, len, &r);
	assert_true(r.overflow);
	assert_int_equal(r.consumed, max);
	assert_int_equal(r.count, 1);
	assert_false(r.check_ok);
	free(msg);
}

static void test_scan_bad_octets(void **state)
{
	static const char nul_from[] = "From: a@x.org\0 b@y.org\r\n\r\n";
	static const char nul_other[] = "Subject: a\0b\r\nFrom: a@x.org\r\n\r\n";
	struct scan_result r;

	(void)state;
	scan_n(nul_from, sizeof(nul_from) - 1, &r);
	assert_int_equal(r.count, 1);
	assert_true(r.bad_octet);
	assert_string_equal(r.value, ""); /* never the cut "a@x.org" */
	assert_false(r.check_ok);
	scan_n(nul_other, sizeof(nul_other) - 1, &r);
	assert_true(r.bad_octet);
	assert_string_equal(r.value, "a@x.org");
	assert_false(r.check_ok);
	/* A bare CR: some readers would see a second From: here. */
	scan("Subject: a\rFrom: evil@bad.org\r\nFrom: a@x.org\r\n\r\n", &r);
	assert_true(r.bad_octet);
	assert_int_equal(r.count, 1);
	assert_false(r.check_ok);
	scan("From: a@x.org\r\r\n\r\n", &r);
	assert_true(r.bad_octet);
	assert_string_equal(r.value, "");
	assert_int_equal(r.consumed, 18);
	/* CR at the very end of the message. */
	scan("From: a@x.org\r", &r);
	assert_true(r.bad_octet);
	assert_false(r.check_ok);
	/* After the header, anything goes. */
	scan("From: a@x.org\r\n\r\n\0\r\r", &r);
	assert_false(r.bad_octet);
	assert_true(r.check_ok);
}

/* Random messages built from fragments that stress line ends and folding:
 * every feeding plan must agree. */
static void test_scan_random_messages(void **state)
{
	static const char *const frag[] = {
		"From:", "from :", "FROM", ": ", "From", "\r\n", "\n", "\r", " ", "\t",
		"a@x.org", "Subject: s", "<b@y.org>", "\r\n\r\n", "\n\n", "X", "\0", ":",
	};
	char msg[512];
	unsigned seed = 7;

	(void)state;
	for (int iter = 0; iter < 300; iter++) {
		struct scan_result r;
		size_t len = 0;

		while (len < sizeof(msg) - 16) {
			const char *f;
			size_t flen;

			seed = seed * 1103515245u + 12345u;
			f = frag[(seed >> 16) % (sizeof(frag) / sizeof(frag[0]))];
			flen = f[0] == '\0' ? 1 : strlen(f);
			memcpy(msg + len, f, flen);
			len += flen;
			if ((seed >> 8) % 23 == 0)
				break;
		}
		scan_n(msg, len, &r);
	}
}

/* ----------------------------------------------------------------- parser */

static void expect_parse(const char *value, unsigned n, ...)
{
	struct header_mailboxes *mb = malloc(sizeof(*mb));
	const char *error = NULL;
	va_list ap;

	assert_non_null(mb);
	if (header_from_parse(value, mb, &error) != 0)
		fail_msg("rejected: %s (%s)", value, error);
	assert_int_equal(mb->n, n);
	va_start(ap, n);
	for (unsigned i = 0; i < n; i++)
		assert_string_equal(mb->addr[i], va_arg(ap, const char *));
	va_end(ap);
	free(mb);
}

static void expect_fail(const char *value)
{
	struct header_mailboxes *mb = malloc(sizeof(*mb));
	const char *error = NULL;

	assert_non_null(mb);
	if (header_from_parse(value, mb, &error) != -1)
		fail_msg("accepted: %s (first %s)", value, mb->n > 0 ? mb->addr[0] : "-");
	assert_non_null(error);
	assert_true(strlen(error) > 10);
	free(mb);
}

static void test_parse_examples(void **state)
{
	(void)state;
	expect_parse("alice@example.org", 1, "alice@example.org");
	expect_parse("Alice <alice@example.org>", 1, "alice@example.org");
	expect_parse("\"Alice Q. Smith\" <alice@example.org>", 1, "alice@example.org");
	expect_parse("\"Smith, Alice\" <alice@example.org>", 1, "alice@example.org");
	expect_parse("alice@example.org (Alice Smith)", 1, "alice@example.org");
	expect_parse("(comment (nested)) Alice <alice@example.org>", 1, "alice@example.org");
	expect_parse("=?UTF-8?B?w4FsaWNl?= <alice@example.org>", 1, "alice@example.org");
	expect_parse("\xc3\x85lice <\xc3\xa5lice@ex\xc3\xa4mple.org>", 1,
		     "\xc3\xa5lice@ex\xc3\xa4mple.org");
	expect_parse("a@x.org, b@y.org", 2, "a@x.org", "b@y.org");
	expect_parse("Group: a@x.org, B <b@y.org>;", 2, "a@x.org", "b@y.org");
	expect_parse("<alice@example.org>", 1, "alice@example.org");
	expect_parse("\"a b\"@example.org", 1, "\"a b\"@example.org");
	expect_parse("<@route:alice@example.org>", 1, "alice@example.org");
	expect_parse("Alice <alice@EXAMPLE.ORG>", 1, "alice@example.org");
	expect_parse("a@[192.0.2.1]", 1, "a@[192.0.2.1]");
}

static void test_parse_forms(void **state)
{
	(void)state;
	/* Display names: obs-phrase, quoted-pairs, UTF-8, no space before "<". */
	expect_parse("Alice Q. Smith <a@x.org>", 1, "a@x.org");
	expect_parse("\"A \\\"q\\\" \\\\ B\" <a@x.org>", 1, "a@x.org");
	expect_parse("Alice<a@x.org>", 1, "a@x.org");
	expect_parse("\"\" <a@x.org>", 1, "a@x.org");
	expect_parse("J\xc3\xbcrgen M\xc3\xbcller <a@x.org>", 1, "a@x.org");
	/* CFWS around the address, inside the brackets too. */
	expect_parse("  \t a@x.org \t ", 1, "a@x.org");
	expect_parse("< a@x.org >", 1, "a@x.org");
	expect_parse("(a) < (b) a@x.org (c) > (d)", 1, "a@x.org");
	expect_parse("a@x.org(Alice (the \\) one))", 1, "a@x.org");
	expect_parse("(\xc3\xa9t\xc3\xa9) a@x.org", 1, "a@x.org");
	/* Quoted local parts: unquoted when a plain dot-atom, else kept. */
	expect_parse("\"alice\"@example.org", 1, "alice@example.org");
	expect_parse("\"a.b\"@example.org", 1, "a.b@example.org");
	expect_parse("\"a@b\"@example.org", 1, "\"a@b\"@example.org");
	expect_parse("A <\"a b\"@example.org>", 1, "\"a b\"@example.org");
	expect_parse("a.b+tag@x.org", 1, "a.b+tag@x.org");
	expect_parse("A@X.Org", 1, "A@x.org");
	expect_parse("a@EX\xc3\x84MPLE.ORG", 1, "a@ex\xc3\x84mple.org");
	expect_parse("a@[IPv6:2001:DB8::1]", 1, "a@[IPv6:2001:db8::1]");
	expect_parse("A <a@[192.0.2.1]>", 1, "a@[192.0.2.1]");
	/* Routes, lists, groups. */
	expect_parse("<@r1.example,@r2.example:a@x.org>", 1, "a@x.org");
	expect_parse("A <a@x.org>, \"B\" <b@y.org>, c@z.org (C)", 3, "a@x.org", "b@y.org", "c@z.org");
	expect_parse("Undisclosed:;, a@x.org", 1, "a@x.org");
	expect_parse("G: a@x.org;, H: (none) b@y.org ; , c@z.org", 3, "a@x.org", "b@y.org", "c@z.org");
	expect_parse("G:a@x.org,b@y.org;", 2, "a@x.org", "b@y.org");
	expect_parse("bob@good.org, alice@evil.org", 2, "bob@good.org", "alice@evil.org");
}

static void test_parse_failures(void **state)
{
	(void)state;
	expect_fail("");
	expect_fail("   ");
	expect_fail("(just a comment)");
	expect_fail("Alice");
	expect_fail("Alice Smith");
	expect_fail("<>");
	expect_fail("Alice <>");
	expect_fail("alice@");
	expect_fail("alice@ ");
	expect_fail("@example.org");
	expect_fail("Alice <alice@example.org");
	expect_fail("alice@example.org>");
	expect_fail("<alice@example.org");
	expect_fail("\"Alice <alice@example.org>");
	expect_fail("\"Alice\\\" <alice@example.org>");
	expect_fail("(Alice <alice@example.org>");
	expect_fail("(a (b) <alice@example.org>");
	expect_fail("alice@example.org (a (b)");
	expect_fail("alice@example.org)");
	expect_fail("alice@example.org]");
	expect_fail("\\alice@example.org");
	expect_fail("alice@example.org;");
	expect_fail("alice@example.org:");
	expect_fail("Alice: alice@example.org");        /* group without ";" */
	expect_fail("G: H: a@x.org;;");                  /* nested group */
	expect_fail("Undisclosed recipients:;");         /* no mailbox at all */
	expect_fail("G: a@x.org, ;");
	expect_fail("a@x.org,");
	expect_fail(",a@x.org");
	expect_fail("a@x.org,,b@y.org");
	expect_fail("a@x.org b@y.org");
	expect_fail("<a@x.org> <b@y.org>");
	expect_fail("Alice <a@x.org> Bob");
	expect_fail("Smith, Alice <a@x.org>");
	expect_fail(". Alice <a@x.org>");
	expect_fail("a@x.org.");
	expect_fail("a@x..org");
	expect_fail(".a@x.org");
	expect_fail("a.@x.org");
	expect_fail("a..b@x.org");
	expect_fail("a@b@x.org");
	expect_fail("a@-x.org");
	expect_fail("a@x_y.org");
	expect_fail("a@[300.1.1.1]");
	expect_fail("a@[192.0.2.1");
	expect_fail("a@[ 192.0.2.1]");
	expect_fail("a@[192.0.2.1]x");
	expect_fail("a@x.org\"q\"");
	expect_fail("\"a\"b@x.org");
	expect_fail("\"a\".b@x.org");                    /* obs-local-part */
	expect_fail("\"a\tb\"@x.org");                   /* not an RFC 5321 Quoted-string */
	expect_fail("<@:a@x.org>");
	expect_fail("<@r1.example a@x.org>");
	expect_fail("<@[192.0.2.1]:a@x.org>");
	expect_fail("Alice <<a@x.org>>");
}

static void test_parse_tricks(void **state)
{
	(void)state;
	/* A display name that looks like an address is not a phrase. */
	expect_fail("alice@evil.org <bob@good.org>");
	expect_fail("bob@good.org <alice@evil.org>");
	expect_fail("Bob bob@good.org <alice@evil.org>");
	/* A quoted one is a phrase; the angle-addr is the address (caller's policy). */
	expect_parse("\"bob@good.org\" <alice@evil.org>", 1, "alice@evil.org");
	/* Comments never give the address. */
	expect_parse("(bob@good.org) alice@evil.org", 1, "alice@evil.org");
	expect_parse("alice@evil.org (bob@good.org)", 1, "alice@evil.org");
	expect_parse("(<bob@good.org>) <alice@evil.org>", 1, "alice@evil.org");
	/* CFWS inside an addr-spec: readers disagree, so refused. */
	expect_fail("bob(@good.org)@evil.org");
	expect_fail("alice(x)@evil.org");
	expect_fail("alice@(x)evil.org");
	expect_fail("alice @ evil.org");
	expect_fail("alice@evil .org");
	expect_fail("alice@evil. org");
	expect_fail("alice .smith@evil.org");
	expect_fail("<alice (x)@evil.org>");
	expect_fail("<alice@evil.org(x).com>");
	/* Control characters and broken UTF-8 anywhere. */
	expect_fail("a@x.org\r\n");
	expect_fail("a@x.org\r\nFrom: b@y.org");
	expect_fail("a@x.org\nb@y.org");
	expect_fail("a@x.org (\x01)");
	expect_fail("\"\x7f\" <a@x.org>");
	expect_fail("a@x.org\x7f");
	expect_fail("(\r) a@x.org");
	expect_fail("\"a\r\n b\" <a@x.org>");
	expect_fail("\xc3 <a@x.org>");
	expect_fail("a@x.org (\xc3)");
	expect_fail("\"\xc0\xaf\" <a@x.org>");          /* overlong */
	expect_fail("\xed\xa0\x80 <a@x.org>");          /* surrogate */
	expect_fail("a\\@b@x.org");
	expect_fail("\"\\\xc3\" <a@x.org>");
	/* A NUL ends the C string: a value with one never gets here from the
	 * scanner (see test_scan_bad_octets), and nothing reads past it. */
	expect_parse("a@x.org\0, b@y.org", 1, "a@x.org");
}

static void test_parse_limits(void **state)
{
	char value[2048], local[65], dom[256];
	size_t len = 0;

	(void)state;
	/* 32 mailboxes, flat and in a group; 33 is too many. */
	for (int i = 0; i < 32; i++)
		len += (size_t)sprintf(value + len, "%sm%d@x.org", i > 0 ? ", " : "", i);
	{
		struct header_mailboxes mb;
		const char *error;

		assert_int_equal(header_from_parse(value, &mb, &error), 0);
		assert_int_equal(mb.n, 32);
		assert_string_equal(mb.addr[31], "m31@x.org");
		strcpy(value + len, ", m32@x.org");
		assert_int_equal(header_from_parse(value, &mb, &error), -1);
		assert_non_null(strstr(error, "32"));
	}
	len = (size_t)sprintf(value, "G:");
	for (int i = 0; i < 33; i++)
		len += (size_t)sprintf(value + len, "%sm%d@x.org", i > 0 ? "," : "", i);
	strcpy(value + len, ";");
	expect_fail(value);

	/* 254 octets is the longest address (RFC 5321 §4.5.3.1.3); 255 fails. */
	memset(local, 'l', 64);
	local[64] = '\0';
	sprintf(dom, "%.63s.%.63s.%.61s", local, local, local); /* 189 octets */
	sprintf(value, "A <%s@%s>", local, dom);
	assert_int_equal(strlen(local) + 1 + strlen(dom), 254);
	{
		char want[512];

		snprintf(want, sizeof(want), "%s@%s", local, dom);
		expect_parse(value, 1, want);
	}
	sprintf(value, "A <%s@%s.l>", local, dom);
	expect_fail(value);
	sprintf(value, "%s@%sl", local, dom);
	expect_fail(value);
	/* Local part over 64 octets (RFC 5321 §4.5.3.1.1). */
	sprintf(value, "%sl@x.org", local);
	expect_fail(value);
}

/* The scanner and the parser together, as the submission server uses them. */
static void test_end_to_end(void **state)
{
	static const char msg[] =
		"Received: from x\r\n\tby y\r\n"
		"From: \"Smith,\r\n Alice\" (the\r\n\tauthor)\r\n <alice@EXAMPLE.org>\r\n"
		"Subject: test\r\n\r\nFrom: mallory@evil.org\r\n";
	struct header_mailboxes mb;
	struct scan_result r;
	const char *error;

	(void)state;
	scan(msg, &r);
	assert_true(r.check_ok);
	assert_string_equal(r.value, "\"Smith, Alice\" (the\tauthor) <alice@EXAMPLE.org>");
	assert_int_equal(header_from_parse(r.value, &mb, &error), 0);
	assert_int_equal(mb.n, 1);
	assert_string_equal(mb.addr[0], "alice@example.org");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_simple),
		cmocka_unit_test(test_scan_folded),
		cmocka_unit_test(test_scan_bare_lf),
		cmocka_unit_test(test_scan_header_only),
		cmocka_unit_test(test_scan_field_names),
		cmocka_unit_test(test_scan_skips_non_fields),
		cmocka_unit_test(test_scan_count),
		cmocka_unit_test(test_scan_too_long),
		cmocka_unit_test(test_scan_section_limit),
		cmocka_unit_test(test_scan_bad_octets),
		cmocka_unit_test(test_scan_random_messages),
		cmocka_unit_test(test_parse_examples),
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_parse_failures),
		cmocka_unit_test(test_parse_tricks),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_end_to_end),
	};

	return cmocka_run_group_tests_name("header-from", tests, NULL, NULL);
}
