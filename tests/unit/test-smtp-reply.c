/*
 * Unit tests for smtp-reply: the client's reply parser (RFC 5321 §4.2, §4.2.1,
 * enhanced codes of RFC 3463 / RFC 2034) and the EHLO keyword reader
 * (RFC 5321 §4.1.1.1 and the extensions Rampart uses).
 *
 * The parser is fed lines, so "byte at a time" does not apply; instead every
 * line is an exact-size heap copy (ASan catches reads past it), and the same
 * reply is fed as one line and as several where the result must agree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp-reply.h"

/* Feeds one line as an exact-size heap copy; checks the error contract. */
static int feed_n(struct smtp_reply_parser *p, const char *line, size_t len)
{
	char *copy = malloc(len > 0 ? len : 1);
	const char *error = NULL;
	int rc;

	assert_non_null(copy);
	memcpy(copy, line, len);
	rc = smtp_reply_parse_line(p, copy, len, &error);
	free(copy);
	if (rc < 0)
		assert_non_null(error);
	else
		assert_null(error);
	return rc;
}

static int feed(struct smtp_reply_parser *p, const char *line)
{
	return feed_n(p, line, strlen(line));
}

/* Feeds NULL-terminated lines; all but the last must return 0. */
static int feed_all(struct smtp_reply_parser *p, const char *const *lines)
{
	int rc = 0;

	for (size_t i = 0; lines[i] != NULL; i++) {
		rc = feed(p, lines[i]);
		if (lines[i + 1] != NULL && rc != 0)
			return rc;
	}
	return rc;
}

static void test_single_line(void **state)
{
	struct smtp_reply_parser p;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, "250 OK"), 1);
	assert_int_equal(p.reply.code, 250);
	assert_string_equal(p.reply.enhanced, "");
	assert_string_equal(p.reply.text, "OK");
	assert_int_equal(p.reply.nlines, 1);
	assert_int_equal(smtp_reply_class(&p.reply), 2);

	/* The next feed starts a new reply. */
	assert_int_equal(feed(&p, "354 Start mail input; end with <CRLF>.<CRLF>"), 1);
	assert_int_equal(p.reply.code, 354);
	assert_string_equal(p.reply.text, "Start mail input; end with <CRLF>.<CRLF>");
	assert_int_equal(p.reply.nlines, 1);

	/* RFC 5321 §4.2: the text is optional. */
	assert_int_equal(feed(&p, "250"), 1);
	assert_int_equal(p.reply.code, 250);
	assert_string_equal(p.reply.text, "");
	assert_int_equal(feed(&p, "221 "), 1);
	assert_int_equal(p.reply.code, 221);
	assert_string_equal(p.reply.text, "");
}

static void test_enhanced(void **state)
{
	struct smtp_reply_parser p;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, "550 5.1.1 User unknown"), 1);
	assert_int_equal(p.reply.code, 550);
	assert_string_equal(p.reply.enhanced, "5.1.1");
	assert_string_equal(p.reply.text, "User unknown");

	assert_int_equal(feed(&p, "452 4.5.3 Too many recipients"), 1);
	assert_string_equal(p.reply.enhanced, "4.5.3");
	assert_string_equal(p.reply.text, "Too many recipients");

	/* Three-digit subject and detail; the code alone. */
	assert_int_equal(feed(&p, "250 2.123.456"), 1);
	assert_string_equal(p.reply.enhanced, "2.123.456");
	assert_string_equal(p.reply.text, "");

	/* Not enhanced codes: they stay in the text. */
	static const struct { const char *line, *text; } plain[] = {
		{ "550 2.1.1 wrong class", "2.1.1 wrong class" },
		{ "550 5.1 too short", "5.1 too short" },
		{ "550 5.1234.1 long subject", "5.1234.1 long subject" },
		{ "550 5.1.1234 long detail", "5.1.1234 long detail" },
		{ "550 5.1.1x glued", "5.1.1x glued" },
		{ "550 5..1 empty", "5..1 empty" },
		{ "550 5.a.1 letters", "5.a.1 letters" },
		{ "250 OK", "OK" },
	};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		assert_int_equal(feed(&p, plain[i].line), 1);
		assert_string_equal(p.reply.enhanced, "");
		assert_string_equal(p.reply.text, plain[i].text);
	}
}

static void test_multiline(void **state)
{
	struct smtp_reply_parser p;
	static const char *const ehlo[] = {
		"250-mx.remote.test Hello client.test [192.0.2.1]",
		"250-SIZE 10240000",
		"250-PIPELINING",
		"250 HELP",
		NULL,
	};

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, ehlo[0]), 0);
	assert_int_equal(feed(&p, ehlo[1]), 0);
	assert_int_equal(feed(&p, ehlo[2]), 0);
	assert_int_equal(feed(&p, ehlo[3]), 1);
	assert_int_equal(p.reply.code, 250);
	assert_int_equal(p.reply.nlines, 4);
	assert_string_equal(p.reply.text,
	    "mx.remote.test Hello client.test [192.0.2.1] SIZE 10240000 PIPELINING HELP");

	/* The enhanced code repeated on every line (RFC 2034 §3) is taken once. */
	static const char *const gmail[] = {
		"550-5.1.1 The email account that you tried to reach does not exist.",
		"550-5.1.1 Please try double-checking the recipient's email address",
		"550 5.1.1 for typos. x1si123 - gsmtp",
		NULL,
	};
	assert_int_equal(feed_all(&p, gmail), 1);
	assert_string_equal(p.reply.enhanced, "5.1.1");
	assert_string_equal(p.reply.text,
	    "The email account that you tried to reach does not exist. Please try "
	    "double-checking the recipient's email address for typos. x1si123 - gsmtp");
	assert_int_equal(p.reply.nlines, 3);

	/* A different enhanced code on a later line stays in the text. */
	static const char *const mixed[] = { "550-5.1.1 first", "550 5.7.1 second", NULL };
	assert_int_equal(feed_all(&p, mixed), 1);
	assert_string_equal(p.reply.enhanced, "5.1.1");
	assert_string_equal(p.reply.text, "first 5.7.1 second");

	/* Empty lines add nothing, not even a space. */
	static const char *const empty[] = { "220-", "220-mx ESMTP", "220-", "220", NULL };
	assert_int_equal(feed_all(&p, empty), 1);
	assert_string_equal(p.reply.text, "mx ESMTP");
	assert_int_equal(p.reply.nlines, 4);
}

/* The same reply on one line and on several lines: same code and text. */
static void test_split_agrees(void **state)
{
	struct smtp_reply_parser a, b;
	static const char *const split[] = {
		"451-4.7.1 Greylisted,", "451-4.7.1 please", "451 4.7.1 try again later", NULL,
	};

	smtp_reply_parser_init(&a);
	smtp_reply_parser_init(&b);
	assert_int_equal(feed(&a, "451 4.7.1 Greylisted, please try again later"), 1);
	assert_int_equal(feed_all(&b, split), 1);
	assert_int_equal(a.reply.code, b.reply.code);
	assert_string_equal(a.reply.enhanced, b.reply.enhanced);
	assert_string_equal(a.reply.text, b.reply.text);
	assert_int_equal(a.reply.nlines, 1);
	assert_int_equal(b.reply.nlines, 3);
}

static void test_bad_lines(void **state)
{
	struct smtp_reply_parser p;
	static const char *const bad[] = {
		"", "2", "25", "2x0 OK", "x50 OK", "199 too low", "600 too high", "000",
		"099 x", "250x missing separator", "250\tOK", "250_OK", " 250 OK", "-250 OK",
	};

	smtp_reply_parser_init(&p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(feed(&p, bad[i]), -1);
	/* Edges that are fine. */
	assert_int_equal(feed(&p, "200 x"), 1);
	assert_int_equal(feed(&p, "599 x"), 1);
	/* A NUL in the code position. */
	assert_int_equal(feed_n(&p, "25\0 OK", 6), -1);
	/* After an error the parser starts afresh. */
	assert_int_equal(feed(&p, "250-first"), 0);
	assert_int_equal(feed(&p, "250+bad"), -1);
	assert_int_equal(feed(&p, "220 fresh"), 1);
	assert_int_equal(p.reply.code, 220);
	assert_string_equal(p.reply.text, "fresh");
	assert_int_equal(p.reply.nlines, 1);
}

static void test_mismatched_codes(void **state)
{
	struct smtp_reply_parser p;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, "250-mx"), 0);
	assert_int_equal(feed(&p, "251 other"), -1);
	assert_int_equal(feed(&p, "250-mx"), 0);
	assert_int_equal(feed(&p, "550-other"), -1);
	/* Reset: the next line starts a new reply. */
	assert_int_equal(feed(&p, "550 5.0.0 x"), 1);
	assert_int_equal(p.reply.code, 550);
}

static void test_too_many_lines(void **state)
{
	struct smtp_reply_parser p;

	smtp_reply_parser_init(&p);
	for (size_t i = 0; i < SMTP_REPLY_MAX_LINES - 1; i++)
		assert_int_equal(feed(&p, "250-x"), 0);
	assert_int_equal(feed(&p, "250 y"), 1);
	assert_int_equal(p.reply.nlines, SMTP_REPLY_MAX_LINES);

	for (size_t i = 0; i < SMTP_REPLY_MAX_LINES; i++)
		assert_int_equal(feed(&p, "250-x"), 0);
	assert_int_equal(feed(&p, "250-x"), -1);
	assert_int_equal(feed(&p, "250 z"), 1);
	assert_string_equal(p.reply.text, "z");
}

static void test_long_line(void **state)
{
	struct smtp_reply_parser p;
	char *line = malloc(SMTP_REPLY_MAX_LINE + 1);

	assert_non_null(line);
	memset(line, 'a', SMTP_REPLY_MAX_LINE + 1);
	memcpy(line, "250 ", 4);
	smtp_reply_parser_init(&p);
	assert_int_equal(feed_n(&p, line, SMTP_REPLY_MAX_LINE + 1), -1);
	assert_int_equal(feed_n(&p, line, SMTP_REPLY_MAX_LINE), 1);
	/* The text is cut at SMTP_REPLY_MAX_TEXT and marked with "...". */
	assert_int_equal(strlen(p.reply.text), SMTP_REPLY_MAX_TEXT);
	assert_memory_equal(p.reply.text + SMTP_REPLY_MAX_TEXT - 3, "...", 3);
	assert_int_equal(p.reply.text[0], 'a');
	free(line);

	/* Exactly SMTP_REPLY_MAX_TEXT octets of text: kept whole, no "...". */
	char exact[4 + SMTP_REPLY_MAX_TEXT];
	memset(exact, 'b', sizeof(exact));
	memcpy(exact, "250 ", 4);
	assert_int_equal(feed_n(&p, exact, sizeof(exact)), 1);
	assert_int_equal(strlen(p.reply.text), SMTP_REPLY_MAX_TEXT);
	assert_int_equal(p.reply.text[SMTP_REPLY_MAX_TEXT - 1], 'b');

	/* Many lines: the joined text is cut the same way. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(feed(&p, "250-0123456789012345678901234567890123456789"), 0);
	assert_int_equal(feed(&p, "250 end"), 1);
	assert_int_equal(strlen(p.reply.text), SMTP_REPLY_MAX_TEXT);
	assert_string_equal(p.reply.text + SMTP_REPLY_MAX_TEXT - 3, "...");
}

static void test_unprintable(void **state)
{
	struct smtp_reply_parser p;

	smtp_reply_parser_init(&p);
	assert_int_equal(feed_n(&p, "550 a\x01" "b\xff" "c\0d\x7f", 12), 1);
	assert_string_equal(p.reply.text, "a?b?c?d?");
	assert_int_equal(feed(&p, "550 caf\xc3\xa9\tok"), 1);
	assert_string_equal(p.reply.text, "caf???ok");
}

static void test_format(void **state)
{
	struct smtp_reply_parser p;
	char buf[64];

	smtp_reply_parser_init(&p);
	assert_int_equal(feed(&p, "550 5.1.1 User unknown"), 1);
	assert_string_equal(smtp_reply_format(&p.reply, buf, sizeof(buf)), "550 5.1.1 User unknown");
	assert_string_equal(smtp_reply_format(&p.reply, buf, 8), "550 5.1");
	assert_int_equal(feed(&p, "250 OK"), 1);
	assert_string_equal(smtp_reply_format(&p.reply, buf, sizeof(buf)), "250 OK");
	assert_int_equal(feed(&p, "354"), 1);
	assert_string_equal(smtp_reply_format(&p.reply, buf, sizeof(buf)), "354");
	assert_int_equal(feed(&p, "250 2.0.0"), 1);
	assert_string_equal(smtp_reply_format(&p.reply, buf, sizeof(buf)), "250 2.0.0");
	buf[0] = 'x';
	smtp_reply_format(&p.reply, buf, 0);
	assert_int_equal(buf[0], 'x');
}

/* ---------------------------------------------------------------- EHLO caps */

/* Feeds the lines of an EHLO reply to both, as the client does: caps from
 * line + 4 of every line after the first. */
static void ehlo(struct smtp_ehlo_caps *c, const char *const *lines)
{
	struct smtp_reply_parser p;
	int rc = 0;

	smtp_reply_parser_init(&p);
	smtp_ehlo_caps_init(c);
	for (size_t i = 0; lines[i] != NULL; i++) {
		size_t len = strlen(lines[i]);
		char *copy = malloc(len + 1);
		const char *error = NULL;

		assert_non_null(copy);
		memcpy(copy, lines[i], len);
		rc = smtp_reply_parse_line(&p, copy, len, &error);
		assert_true(rc >= 0);
		if (i > 0)
			smtp_ehlo_caps_line(c, len > 4 ? copy + 4 : "", len > 4 ? len - 4 : 0);
		free(copy);
	}
	assert_int_equal(rc, 1);
	assert_int_equal(p.reply.code, 250);
}

static void caps_line(struct smtp_ehlo_caps *c, const char *line)
{
	size_t len = strlen(line);
	char *copy = malloc(len > 0 ? len : 1);

	assert_non_null(copy);
	memcpy(copy, line, len);
	smtp_ehlo_caps_line(c, copy, len);
	free(copy);
}

static void test_caps_all(void **state)
{
	struct smtp_ehlo_caps c;
	static const char *const lines[] = {
		"250-mx.remote.test at your service, [192.0.2.1]",
		"250-SIZE 35882577",
		"250-8BITMIME",
		"250-STARTTLS",
		"250-ENHANCEDSTATUSCODES",
		"250-PIPELINING",
		"250-CHUNKING",
		"250-DSN",
		"250-AUTH CRAM-MD5 PLAIN LOGIN",
		"250 SMTPUTF8",
		NULL,
	};

	ehlo(&c, lines);
	assert_true(c.size);
	assert_int_equal(c.size_max, 35882577);
	assert_true(c.eightbitmime);
	assert_true(c.starttls);
	assert_true(c.enhancedstatuscodes);
	assert_true(c.pipelining);
	assert_true(c.chunking);
	assert_true(c.dsn);
	assert_true(c.auth_plain);
	assert_true(c.auth_login);
	assert_true(c.smtputf8);
}

static void test_caps_none(void **state)
{
	struct smtp_ehlo_caps c, zero;
	/* The first line is the greeting: keywords there do not count. */
	static const char *const lines[] = {
		"250-STARTTLS PIPELINING 8BITMIME",
		"250-X-EXPS GSSAPI",
		"250-XFORWARD NAME ADDR",
		"250 HELP",
		NULL,
	};
	static const char *const only[] = { "250 mx.remote.test STARTTLS", NULL };

	memset(&zero, 0, sizeof(zero));
	ehlo(&c, lines);
	assert_memory_equal(&c, &zero, sizeof(c));
	ehlo(&c, only);
	assert_memory_equal(&c, &zero, sizeof(c));
}

static void test_caps_case(void **state)
{
	struct smtp_ehlo_caps c;

	smtp_ehlo_caps_init(&c);
	caps_line(&c, "pipelining");
	caps_line(&c, "StartTLS");
	caps_line(&c, "8bitmime");
	caps_line(&c, "size 1000");
	caps_line(&c, "auth login");
	caps_line(&c, "chunking ");
	assert_true(c.pipelining);
	assert_true(c.starttls);
	assert_true(c.eightbitmime);
	assert_true(c.size);
	assert_int_equal(c.size_max, 1000);
	assert_true(c.auth_login);
	assert_false(c.auth_plain);
	assert_true(c.chunking);
}

static void test_caps_size(void **state)
{
	static const struct { const char *line; uint64_t max; } cases[] = {
		{ "SIZE", 0 },
		{ "SIZE ", 0 },
		{ "SIZE 0", 0 },
		{ "SIZE 52428800", 52428800 },
		{ "SIZE  52428800 ", 52428800 },
		{ "SIZE abc", 0 },
		{ "SIZE 10MB", 0 },
		{ "SIZE -1", 0 },
		{ "SIZE 1 2", 0 },
		{ "SIZE 18446744073709551615", UINT64_MAX },
		{ "SIZE 18446744073709551616", 0 },
		{ "SIZE 99999999999999999999999", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_ehlo_caps c;
		smtp_ehlo_caps_init(&c);
		caps_line(&c, cases[i].line);
		assert_true(c.size);
		assert_true(c.size_max == cases[i].max);
	}
	struct smtp_ehlo_caps c;
	smtp_ehlo_caps_init(&c);
	caps_line(&c, "SIZEX 100");
	assert_false(c.size);
}

static void test_caps_auth(void **state)
{
	static const struct { const char *line; bool plain, login; } cases[] = {
		{ "AUTH PLAIN LOGIN", true, true },
		{ "AUTH LOGIN", false, true },
		{ "AUTH=LOGIN PLAIN", true, true },
		{ "AUTH=PLAIN", true, false },
		{ "AUTH CRAM-MD5 DIGEST-MD5", false, false },
		{ "AUTH", false, false },
		{ "AUTH PLAINX LOGINY", false, false },
		{ "AUTH XPLAIN", false, false },
		{ "AUTH  plain\tlogin ", true, true },
		{ "AUTHX PLAIN", false, false },
		{ "XAUTH PLAIN", false, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_ehlo_caps c;
		smtp_ehlo_caps_init(&c);
		caps_line(&c, cases[i].line);
		assert_int_equal(c.auth_plain, cases[i].plain);
		assert_int_equal(c.auth_login, cases[i].login);
	}
}

static void test_caps_strict_keywords(void **state)
{
	static const char *const lines[] = {
		"STARTTLSX", "STARTTLS now", "PIPELINING=1", "8BITMIMEX", "DSNX", "XDSN",
		"CHUNKING yes", "SMTPUTF8 x", "ENHANCEDSTATUSCODE", "", " STARTTLS", "=",
	};
	struct smtp_ehlo_caps c, zero;

	memset(&zero, 0, sizeof(zero));
	smtp_ehlo_caps_init(&c);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		caps_line(&c, lines[i]);
	assert_memory_equal(&c, &zero, sizeof(c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_enhanced),
		cmocka_unit_test(test_multiline),
		cmocka_unit_test(test_split_agrees),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_mismatched_codes),
		cmocka_unit_test(test_too_many_lines),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_unprintable),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_caps_all),
		cmocka_unit_test(test_caps_none),
		cmocka_unit_test(test_caps_case),
		cmocka_unit_test(test_caps_size),
		cmocka_unit_test(test_caps_auth),
		cmocka_unit_test(test_caps_strict_keywords),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
