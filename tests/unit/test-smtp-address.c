/*
 * Unit tests for smtp-address: RFC 5321 §4.1.2 Path / Mailbox, RFC 6531 UTF-8,
 * RFC 5321 §4.5.3.1 limits, and the open-relay address forms of
 * ../shared/conformance/smtp-relay/open-relay-tests.json.
 *
 * Every input is copied into a heap block of exactly its length, with no NUL
 * after it, so ASan catches any read past len.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "smtp/smtp-address.h"
#include "smtp/smtp-parse.h"

static const unsigned PATH_ALL = SMTP_ADDRESS_ALLOW_NULL | SMTP_ADDRESS_ALLOW_POSTMASTER;

/* Parses s (len octets, exact-size heap copy) as a path; returns the result. */
static int path_n(const char *s, size_t len, unsigned flags, struct smtp_address *a,
		  size_t *consumed, enum smtp_address_error *reason)
{
	char *copy = malloc(len > 0 ? len : 1);
	const char *error = NULL;
	size_t dummy;
	int ret;

	assert_non_null(copy);
	memcpy(copy, s, len);
	ret = smtp_address_parse_path(copy, len, flags, a, consumed != NULL ? consumed : &dummy,
				      reason, &error);
	if (ret < 0)
		assert_non_null(error);
	free(copy);
	return ret;
}

static int path(const char *s, unsigned flags, struct smtp_address *a,
		enum smtp_address_error *reason)
{
	return path_n(s, strlen(s), flags, a, NULL, reason);
}

static int mailbox(const char *s, unsigned flags, struct smtp_address *a,
		   enum smtp_address_error *reason)
{
	size_t len = strlen(s);
	char *copy = malloc(len > 0 ? len : 1);
	const char *error = NULL;
	int ret;

	assert_non_null(copy);
	memcpy(copy, s, len);
	ret = smtp_address_parse_mailbox(copy, len, flags, a, reason, &error);
	free(copy);
	return ret;
}

static void expect_ok(const char *s, unsigned flags, const char *local, const char *domain)
{
	struct smtp_address a;

	if (path(s, flags, &a, NULL) != 0)
		fail_msg("rejected: %s", s);
	assert_string_equal(a.local, local);
	assert_string_equal(a.domain, domain);
}

static void expect_err(const char *s, unsigned flags, enum smtp_address_error want)
{
	struct smtp_address a;
	enum smtp_address_error reason;

	if (path(s, flags, &a, &reason) != -1)
		fail_msg("accepted: %s", s);
	assert_int_equal(reason, want);
}

/* EXPECT_ERRS(flags, reason, "input", ...): each input is refused with reason. */
#define EXPECT_ERRS(flags, reason, ...)                                                  \
	do {                                                                             \
		static const char *const list_[] = { __VA_ARGS__ };                      \
		for (size_t i_ = 0; i_ < sizeof(list_) / sizeof(list_[0]); i_++)        \
			expect_err(list_[i_], (flags), (reason));                        \
	} while (0)

/* RFC 5321 §4.1.2: Path = "<" Mailbox ">" */
static void test_simple_path(void **state)
{
	struct smtp_address a;
	size_t consumed;

	assert_int_equal(path_n("<user@example.com> SIZE=1", 25, 0, &a, &consumed, NULL), 0);
	assert_int_equal(consumed, 18);
	assert_string_equal(a.local, "user");
	assert_string_equal(a.domain, "example.com");
	assert_string_equal(a.mailbox, "user@example.com");
	assert_int_equal(a.domain_type, SMTP_ADDRESS_DOMAIN_NAME);
	assert_false(a.null_path || a.postmaster || a.had_route || a.utf8);
}

/* RFC 5321 §2.4: domains are case-insensitive, local parts are not. */
static void test_case(void **state)
{
	expect_ok("<John.Doe@Example.COM>", 0, "John.Doe", "example.com");
}

/* RFC 5321 §4.1.1.2 / §4.5.5: the null reverse-path. */
static void test_null_path(void **state)
{
	struct smtp_address a;
	size_t consumed;

	assert_int_equal(path_n("<>", 2, SMTP_ADDRESS_ALLOW_NULL, &a, &consumed, NULL), 0);
	assert_true(a.null_path);
	assert_int_equal(consumed, 2);
	assert_string_equal(a.mailbox, "");
	expect_err("<>", SMTP_ADDRESS_ALLOW_POSTMASTER, SMTP_ADDRESS_ERR_SYNTAX);
}

/* RFC 5321 §4.1.1.3: "<Postmaster>" without domain, any case, RCPT only. */
static void test_postmaster(void **state)
{
	struct smtp_address a;

	assert_int_equal(path("<PostMaster>", SMTP_ADDRESS_ALLOW_POSTMASTER, &a, NULL), 0);
	assert_true(a.postmaster);
	assert_string_equal(a.local, "PostMaster");
	assert_string_equal(a.domain, "");
	assert_int_equal(a.domain_type, SMTP_ADDRESS_DOMAIN_NONE);
	expect_err("<postmaster>", SMTP_ADDRESS_ALLOW_NULL, SMTP_ADDRESS_ERR_SYNTAX);
	expect_ok("<postmaster@Example.org>", PATH_ALL, "postmaster", "example.org");
	assert_int_equal(path("<postmaster@example.org>", PATH_ALL, &a, NULL), 0);
	assert_false(a.postmaster);
	expect_err("<postmasters>", PATH_ALL, SMTP_ADDRESS_ERR_SYNTAX);
}

/* RFC 5321 §4.1.2 A-d-l and Appendix C: source routes are accepted and ignored. */
static void test_source_route(void **state)
{
	struct smtp_address a;

	assert_int_equal(path("<@a.example:user@c.example>", 0, &a, NULL), 0);
	assert_true(a.had_route);
	assert_string_equal(a.mailbox, "user@c.example");
	assert_int_equal(path("<@a.example,@B.example:user@C.example>", 0, &a, NULL), 0);
	assert_true(a.had_route);
	assert_string_equal(a.domain, "c.example");
}

/* RFC 5321 §4.1.2: At-domain = "@" Domain — no literal, no empty hop. */
static void test_source_route_invalid(void **state)
{
	EXPECT_ERRS(0, SMTP_ADDRESS_ERR_SYNTAX, "<@[192.0.2.1]:user@c.example>", "<@a.example>",
		"<@a.example,b.example:u@c>", "<@:u@c>", "<@a,:u@c>", "<@a:>", "<@a::u@c>");
}

/* RFC 5321 §4.1.2: a Quoted-string equivalent to a Dot-string is normalised. */
static void test_quoted_unquoted(void **state)
{
	expect_ok("<\"john.doe\"@x.example>", 0, "john.doe", "x.example");
	expect_ok("<\"\\j\\o\\e\"@x.example>", 0, "joe", "x.example");
	expect_ok("<\"user%ext\"@x.example>", 0, "user%ext", "x.example");
}

/* RFC 5321 §4.1.2 qtextSMTP / quoted-pairSMTP: other quoted forms kept as given. */
static void test_quoted_kept(void **state)
{
	expect_ok("<\"john doe\"@x.example>", 0, "\"john doe\"", "x.example");
	expect_ok("<\"a\\\"b\"@x.example>", 0, "\"a\\\"b\"", "x.example");
	expect_ok("<\"\"@x.example>", 0, "\"\"", "x.example");
	expect_ok("<\"a..b\"@x.example>", 0, "\"a..b\"", "x.example");
	expect_ok("<\".a\"@x.example>", 0, "\".a\"", "x.example");
	expect_ok("<\"user@ext\"@x.example>", 0, "\"user@ext\"", "x.example");
}

/* RFC 5321 §4.1.2: no controls in qtextSMTP; quoted-pair is %d92 %d32-126. */
static void test_quoted_invalid(void **state)
{
	EXPECT_ERRS(0, SMTP_ADDRESS_ERR_SYNTAX, "<\"a\tb\"@x>", "<\"a\\\tb\"@x>", "<\"ab@x>",
		"<\"ab\\\"@x>", "<\"a\"b@x>");
	expect_err("<\"a\\\xc3\xa9\"@x>", SMTP_ADDRESS_ALLOW_UTF8, SMTP_ADDRESS_ERR_SYNTAX);
}

/* RFC 5322 §3.2.3 atext in a Dot-string, including "%" and "!" (never routing). */
static void test_dot_string(void **state)
{
	expect_ok("<a+tag@x.example>", 0, "a+tag", "x.example");
	expect_ok("<{a}|b~#$&'*/=?^_`-@x.example>", 0, "{a}|b~#$&'*/=?^_`-", "x.example");
	expect_ok("<user%ext.example@local.example>", 0, "user%ext.example", "local.example");
	expect_ok("<ext.example!user@local.example>", 0, "ext.example!user", "local.example");
}

/* RFC 5321 §4.1.2: Dot-string = Atom *("." Atom). */
static void test_dot_string_invalid(void **state)
{
	EXPECT_ERRS(0, SMTP_ADDRESS_ERR_SYNTAX, "<.a@x>", "<a.@x>", "<a..b@x>", "<a b@x>", "<a(b)@x>",
		"<a,b@x>", "<a[b]@x>", "<a\\b@x>", "<user>", "<user@>", "<@>");
}

/* RFC 5321 §4.1.2: one "@" only: user@ext@local is invalid. */
static void test_double_at(void **state)
{
	EXPECT_ERRS(0, SMTP_ADDRESS_ERR_SYNTAX, "<user@ext.example@local.example>",
		"<user@@local.example>");
}

/* RFC 5321 §4.1.2 Path: brackets are required, nothing inside after the mailbox. */
static void test_brackets(void **state)
{
	EXPECT_ERRS(0, SMTP_ADDRESS_ERR_SYNTAX, "user@x.example", "<user@x.example",
		"< user@x.example>", "<user@x.example >", "");
	expect_err("<", PATH_ALL, SMTP_ADDRESS_ERR_SYNTAX);
}

/* RFC 5321 §4.1.2 Domain: Let-dig [Ldh-str], no empty label, no trailing dot. */
static void test_domain_syntax(void **state)
{
	expect_ok("<u@a-b.c0.example>", 0, "u", "a-b.c0.example");
	expect_ok("<u@123.example>", 0, "u", "123.example");
	expect_ok("<u@localhost>", 0, "u", "localhost");
	EXPECT_ERRS(0, SMTP_ADDRESS_ERR_SYNTAX, "<u@example.com.>", "<u@.example.com>", "<u@a..b>",
		"<u@-a.example>", "<u@a-.example>", "<u@a_b.example>", "<u@a b>");
}

/* RFC 5321 §4.1.3 address literals, checked with inet_pton. */
static void test_literal_ipv4(void **state)
{
	struct smtp_address a;
	static const uint8_t want[4] = { 192, 0, 2, 1 };

	assert_int_equal(path("<u@[192.0.2.1]>", 0, &a, NULL), 0);
	assert_string_equal(a.domain, "[192.0.2.1]");
	assert_int_equal(a.domain_type, SMTP_ADDRESS_DOMAIN_IPV4);
	assert_memory_equal(a.literal, want, 4);
}

/* RFC 5321 §4.1.3 IPv6-address-literal; tag normalised to "IPv6:", hex lowercased. */
static void test_literal_ipv6(void **state)
{
	struct smtp_address a;
	uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	want[15] = 1;
	assert_int_equal(path("<u@[ipv6:2001:DB8::1]>", 0, &a, NULL), 0);
	assert_string_equal(a.domain, "[IPv6:2001:db8::1]");
	assert_int_equal(a.domain_type, SMTP_ADDRESS_DOMAIN_IPV6);
	assert_memory_equal(a.literal, want, 16);
	expect_ok("<u@[IPv6:::ffff:192.0.2.1]>", 0, "u", "[IPv6:::ffff:192.0.2.1]");
	expect_ok("<u@[IPv6:::1]>", 0, "u", "[IPv6:::1]");
}

/* RFC 5321 §4.1.3: malformed literals and unknown General-address-literal tags. */
static void test_literal_invalid(void **state)
{
	EXPECT_ERRS(0, SMTP_ADDRESS_ERR_SYNTAX, "<u@[300.1.1.1]>", "<u@[1.2.3]>", "<u@[1.2.3.4.5]>",
		"<u@[]>", "<u@[1.2.3.4>", "<u@[IPv6:zz::1]>", "<u@[IPv6:fe80::1%eth0]>", "<u@[IPv6:1.2.3.4]>",
		"<u@[x-tag:foo]>", "<u@[1.2.3.4]x>", "<u@[1.2.3.4].example>", "<u@[1.2.3.4 ]>");
}

/* RFC 5321 §4.5.3.1.1: local part at most 64 octets. */
static void test_local_limit(void **state)
{
	char buf[128];
	struct smtp_address a;

	snprintf(buf, sizeof(buf), "<%.*s@x.example>", 64,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(path(buf, 0, &a, NULL), 0);
	assert_int_equal(strlen(a.local), 64);
	snprintf(buf, sizeof(buf), "<%.*s@x.example>", 65,
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	expect_err(buf, 0, SMTP_ADDRESS_ERR_TOO_LONG);
	/* quoted: the limit applies to the octets as sent */
	snprintf(buf, sizeof(buf), "<\"%.*s\"@x.example>", 63,
		 "a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a");
	expect_err(buf, 0, SMTP_ADDRESS_ERR_TOO_LONG);
}

static void fill_domain(char *out, size_t len)
{
	/* labels of 63 octets separated by dots, len octets in all */
	for (size_t i = 0; i < len; i++)
		out[i] = (i % 64 == 63) ? '.' : 'd';
	out[len] = '\0';
}

/* RFC 5321 §4.5.3.1.3: path at most 256 octets, punctuation included. */
static void test_path_limit(void **state)
{
	char local[65], dom[300], buf[600];

	memset(local, 'l', 64);
	local[64] = '\0';
	fill_domain(dom, 189);
	snprintf(buf, sizeof(buf), "<%s@%s>", local, dom);
	assert_int_equal(strlen(buf), 256);
	expect_ok(buf, 0, local, dom);
	fill_domain(dom, 190);
	snprintf(buf, sizeof(buf), "<%s@%s>", local, dom);
	expect_err(buf, 0, SMTP_ADDRESS_ERR_TOO_LONG);
	/* a long source route counts too */
	fill_domain(dom, 190);
	snprintf(buf, sizeof(buf), "<@%s:%s@%s>", dom, local, "x.example");
	expect_err(buf, 0, SMTP_ADDRESS_ERR_TOO_LONG);
}

/* RFC 5321 §4.5.3.1.2 domain 255 octets; RFC 1035 §2.3.4 label 63. */
static void test_domain_limit(void **state)
{
	char dom[300], buf[600];
	struct smtp_address a;
	enum smtp_address_error reason;

	fill_domain(dom, 257); /* 257 octets, not ending with a dot */
	snprintf(buf, sizeof(buf), "u@%s", dom);
	assert_int_equal(mailbox(buf, 0, &a, &reason), -1);
	assert_int_equal(reason, SMTP_ADDRESS_ERR_TOO_LONG);
	memset(dom, 'd', 64);
	dom[64] = '\0';
	snprintf(buf, sizeof(buf), "<u@%s.example>", dom);
	expect_err(buf, 0, SMTP_ADDRESS_ERR_TOO_LONG);
	dom[63] = '\0';
	snprintf(buf, sizeof(buf), "<u@%s.example>", dom);
	assert_int_equal(path(buf, 0, &a, NULL), 0);
}

/* RFC 6531 §3.3: UTF-8 in local part and domain under SMTPUTF8. */
static void test_utf8_allowed(void **state)
{
	struct smtp_address a;
	const char *s = "<\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae@"
			"\xcf\x80\xce\xb1\xcf\x81\xce\xac.Example>";

	assert_int_equal(path(s, SMTP_ADDRESS_ALLOW_UTF8, &a, NULL), 0);
	assert_true(a.utf8);
	assert_string_equal(a.local, "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae");
	/* only ASCII letters are lowercased */
	assert_string_equal(a.domain, "\xcf\x80\xce\xb1\xcf\x81\xce\xac.example");
	expect_ok("<\"\xc3\xa9 x\"@x.example>", SMTP_ADDRESS_ALLOW_UTF8, "\"\xc3\xa9 x\"", "x.example");
	expect_ok("<\"\xc3\xa9\"@x.example>", SMTP_ADDRESS_ALLOW_UTF8, "\xc3\xa9", "x.example");
}

/* RFC 6531 §3.5: without SMTPUTF8, a non-ASCII address is refused (553 5.6.7). */
static void test_utf8_not_allowed(void **state)
{
	EXPECT_ERRS(0, SMTP_ADDRESS_ERR_UTF8, "<\xc3\xa9@x.example>", "<u@\xc3\xa9.example>",
		"<\"\xc3\xa9\"@x.example>");
}

/* RFC 3629 §4 via RFC 6531: overlongs, surrogates, > U+10FFFF, truncation. */
static void test_utf8_invalid(void **state)
{
	static const char *const bad[] = {
		"<\xc0\xaf@x>", "<\xc1\xbf@x>", "<\xe0\x9f\xbf@x>", "<\xf0\x8f\xbf\xbf@x>",
		"<\xed\xa0\x80@x>", "<\xed\xbf\xbf@x>", "<\xf4\x90\x80\x80@x>", "<\xf5\x80\x80\x80@x>",
		"<\xff@x>", "<\x80@x>", "<\xe2\x82@x>", "<u@\xe2\x82>", "<u@\xc3\x28.x>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(bad[i], SMTP_ADDRESS_ALLOW_UTF8, SMTP_ADDRESS_ERR_SYNTAX);
}

/* RFC 3629 §4: boundaries of each sequence length. */
static void test_utf8_seq(void **state)
{
	static const struct {
		const char *s;
		size_t len, want;
	} v[] = {
		{ "\xc2\x80", 2, 2 }, { "\xdf\xbf", 2, 2 }, { "\xe0\xa0\x80", 3, 3 },
		{ "\xed\x9f\xbf", 3, 3 }, { "\xee\x80\x80", 3, 3 }, { "\xef\xbf\xbf", 3, 3 },
		{ "\xf0\x90\x80\x80", 4, 4 }, { "\xf4\x8f\xbf\xbf", 4, 4 },
		{ "\xc1\xbf", 2, 0 }, { "\xe0\x9f\xbf", 3, 0 }, { "\xed\xa0\x80", 3, 0 },
		{ "\xf0\x8f\xbf\xbf", 4, 0 }, { "\xf4\x90\x80\x80", 4, 0 }, { "\xc2\x80", 1, 0 },
		{ "\xe0\xa0\x80", 2, 0 }, { "\xc2\xc0", 2, 0 }, { "a", 1, 0 }, { "\x80", 1, 0 },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(smtp_address_utf8_seq((const unsigned char *)v[i].s, v[i].len), v[i].want);
	assert_true(smtp_address_utf8_valid("a\xc3\xa9z", 4));
	assert_false(smtp_address_utf8_valid("a\xc3", 2));
}

/* Fuzz robustness: NUL and controls inside an address, given by length. */
static void test_embedded_nul(void **state)
{
	struct smtp_address a;
	enum smtp_address_error reason;

	assert_int_equal(path_n("<a\0b@x>", 7, 0, &a, NULL, &reason), -1);
	assert_int_equal(path_n("<ab@x\0>", 7, 0, &a, NULL, &reason), -1);
	assert_int_equal(path_n("<\"a\0\"@x>", 8, 0, &a, NULL, &reason), -1);
	expect_err("<a\r@x>", 0, SMTP_ADDRESS_ERR_SYNTAX);
}

/* Fuzz robustness: every proper prefix of a valid path is rejected, no overread. */
static void test_truncation(void **state)
{
	static const char *const ok[] = {
		"<@a.example,@b.example:\"q\\\"x\"@[IPv6:2001:db8::1]>",
		"<postmaster>", "<>", "<u@[192.0.2.1]>", "<\xc3\xa9@\xc3\xa9.example>",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t len = strlen(ok[i]);
		struct smtp_address a;

		assert_int_equal(path_n(ok[i], len, PATH_ALL | SMTP_ADDRESS_ALLOW_UTF8, &a, NULL, NULL), 0);
		for (size_t n = 0; n < len; n++)
			assert_int_equal(path_n(ok[i], n, PATH_ALL | SMTP_ADDRESS_ALLOW_UTF8, &a, NULL, NULL), -1);
	}
}

/* RFC 5321 §4.1.2 Mailbox on its own (no brackets, no route). */
static void test_mailbox(void **state)
{
	struct smtp_address a;
	enum smtp_address_error reason;

	assert_int_equal(mailbox("User@Example.ORG", 0, &a, NULL), 0);
	assert_string_equal(a.mailbox, "User@example.org");
	assert_int_equal(mailbox("u@x>", 0, &a, &reason), -1);
	assert_int_equal(mailbox("u@a@b", 0, &a, &reason), -1);
	assert_int_equal(mailbox("<u@x>", 0, &a, &reason), -1);
	assert_int_equal(mailbox("", 0, &a, &reason), -1);
	assert_int_equal(mailbox("\xc3\xa9@x", 0, &a, &reason), -1);
	assert_int_equal(reason, SMTP_ADDRESS_ERR_UTF8);
}

/* ---- ../shared/conformance/smtp-relay/open-relay-tests.json ---- */

/* Placeholder values (the file's "placeholders"): the server under test is
 * mx.rampart.test at 198.51.100.25, accepting mail for rampart.test. */
static const char *const placeholders[][2] = {
	{ "{from}", "antispam" },
	{ "{to}", "relaytest" },
	{ "{domain}", "relaytest.example" },
	{ "{DOMAIN_UPPER}", "RELAYTEST.EXAMPLE" },
	{ "{ip}", "198.51.100.25" },
	{ "{srvname}", "mx.rampart.test" },
	{ "{local_domain}", "rampart.test" },
};

/* What the RCPT of each case parses to: the (local, domain) a relay check sees. */
static const struct relay_expect {
	const char *id;
	const char *local;  /* NULL: rejected with 501 5.1.3 */
	const char *domain;
	bool route;
} relay_expect[] = {
	{ "nmap-01", "relaytest", "relaytest.example", false },
	{ "nmap-02", "relaytest", "relaytest.example", false },
	{ "nmap-03", "relaytest", "relaytest.example", false },
	{ "nmap-04", "relaytest", "relaytest.example", false },
	{ "nmap-05", "relaytest%relaytest.example", "[198.51.100.25]", false },
	{ "nmap-06", "relaytest%relaytest.example", "mx.rampart.test", false },
	{ "nmap-07", NULL, NULL, false },  /* quoted, no domain */
	{ "nmap-08", NULL, NULL, false },  /* quoted, no domain */
	{ "nmap-09", NULL, NULL, false },  /* two "@" */
	{ "nmap-10", "\"relaytest@relaytest.example\"", "[198.51.100.25]", false },
	{ "nmap-11", NULL, NULL, false },  /* two "@" */
	{ "nmap-12", NULL, NULL, false },  /* literal in a source route */
	{ "nmap-13", "relaytest", "relaytest.example", true },
	{ "nmap-14", NULL, NULL, false },  /* bang path, no domain */
	{ "nmap-15", "relaytest.example!relaytest", "[198.51.100.25]", false },
	{ "nmap-16", "relaytest.example!relaytest", "mx.rampart.test", false },
	{ "supp-01", "relaytest", "relaytest.example", true },
	{ "supp-02", "relaytest%relaytest.example", "rampart.test", false },
	{ "supp-03", "\"relaytest@relaytest.example\"", "rampart.test", false },
	{ "supp-04", "relaytest.example!relaytest", "rampart.test", false },
	{ "supp-05", NULL, NULL, false },  /* two "@" */
	{ "supp-06", "relaytest%relaytest.example", "localhost", false },
	{ "supp-07", "relaytest%relaytest.example", "[127.0.0.1]", false },
	{ "supp-08", "relaytest", "[192.0.2.1]", false },
	{ "supp-09", "relaytest", "[IPv6:2001:db8::1]", false },
	{ "supp-10", NULL, NULL, false },  /* trailing dot */
	{ "supp-11", "relaytest", "relaytest.example", false },
	{ "supp-12", "relaytest", "rampart.test.relaytest.example", false },
	{ "supp-13", "relaytest", "evil-rampart.test", false },
	{ "supp-14", "relaytest", "relaytest.example", false },
	{ "supp-15", "relaytest", "relaytest.example", false },
	{ "supp-16", NULL, NULL, false },  /* no angle brackets */
	{ "supp-17", "relaytest", "relaytest.example", false },
};

static void subst(const char *tmpl, char *out, size_t size)
{
	size_t n = 0;

	while (*tmpl != '\0') {
		const char *val = NULL;
		size_t klen = 0;

		for (size_t k = 0; k < sizeof(placeholders) / sizeof(placeholders[0]); k++) {
			klen = strlen(placeholders[k][0]);
			if (strncmp(tmpl, placeholders[k][0], klen) == 0) {
				val = placeholders[k][1];
				break;
			}
		}
		if (val != NULL) {
			assert_true(n + strlen(val) < size);
			memcpy(out + n, val, strlen(val));
			n += strlen(val);
			tmpl += klen;
		} else {
			assert_true(n + 1 < size);
			out[n++] = *tmpl++;
		}
	}
	out[n] = '\0';
}

static void check_relay_case(const char *id, const char *mail_from, const char *rcpt_to)
{
	const struct relay_expect *e = NULL;
	char from[300], to[300], line[700];
	struct smtp_mail_args mail;
	struct smtp_rcpt_args rcpt;
	const unsigned ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_DSN;
	const char *enh, *error;
	int code;

	for (size_t i = 0; i < sizeof(relay_expect) / sizeof(relay_expect[0]); i++) {
		if (strcmp(relay_expect[i].id, id) == 0)
			e = &relay_expect[i];
	}
	if (e == NULL)
		fail_msg("conformance case %s has no expectation here", id);
	subst(mail_from, from, sizeof(from));
	subst(rcpt_to, to, sizeof(to));

	/* Every MAIL FROM of the file is well-formed. */
	snprintf(line, sizeof(line), "FROM:<%s>", from);
	if (smtp_parse_mail(line, strlen(line), ext, &mail, &code, &enh, &error) != 0)
		fail_msg("%s: MAIL %s rejected: %s", id, line, error);
	assert_int_equal(mail.from.null_path, from[0] == '\0');

	if (strcmp(id, "supp-16") == 0)
		snprintf(line, sizeof(line), "TO: %s", to);
	else if (strcmp(id, "supp-17") == 0)
		snprintf(line, sizeof(line), "TO:<%s> NOTIFY=NEVER ORCPT=rfc822;relaytest@rampart.test",
			 to);
	else
		snprintf(line, sizeof(line), "TO:<%s>", to);

	if (e->local == NULL) {
		if (smtp_parse_rcpt(line, strlen(line), ext, &rcpt, &code, &enh, &error) != -1)
			fail_msg("%s: RCPT %s accepted as %s", id, line, rcpt.to.mailbox);
		assert_int_equal(code, 501);
		assert_string_equal(enh, "5.1.3");
		return;
	}
	if (smtp_parse_rcpt(line, strlen(line), ext, &rcpt, &code, &enh, &error) != 0)
		fail_msg("%s: RCPT %s rejected: %s", id, line, error);
	assert_string_equal(rcpt.to.local, e->local);
	assert_string_equal(rcpt.to.domain, e->domain);
	assert_int_equal(rcpt.to.had_route, e->route);
	assert_false(rcpt.to.postmaster);
	/* The mailbox the session acts on is exactly local@domain: the relay check
	 * on domain covers it (no %, ! or route interpretation anywhere). */
	snprintf(line, sizeof(line), "%s@%s", e->local, e->domain);
	assert_string_equal(rcpt.to.mailbox, line);
	if (strcmp(id, "supp-17") == 0) {
		assert_int_equal(rcpt.notify, SMTP_NOTIFY_NEVER);
		assert_string_equal(rcpt.orcpt_type, "rfc822");
		assert_string_equal(rcpt.orcpt_addr, "relaytest@rampart.test");
	}
}

/* RFC 5321 §3.6, §4.1.2, Appendix C: the open-relay address forms. */
static void test_open_relay_conformance(void **state)
{
	const char *srcdir = getenv("RAMPART_SRCDIR");
	char file[4096];
	json_error_t jerr;
	json_t *root, *cases, *c;
	size_t i, seen = 0;

	snprintf(file, sizeof(file), "%s/../shared/conformance/smtp-relay/open-relay-tests.json",
		 srcdir != NULL ? srcdir : ".");
	root = json_load_file(file, 0, &jerr);
	if (root == NULL) {
		print_message("skipping: %s: %s\n", file, jerr.text);
		skip();
	}
	cases = json_object_get(root, "cases");
	assert_true(json_is_array(cases));
	json_array_foreach(cases, i, c) {
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *from = json_string_value(json_object_get(c, "mail_from"));
		const char *to = json_string_value(json_object_get(c, "rcpt_to"));

		assert_non_null(id);
		assert_non_null(from);
		assert_non_null(to);
		check_relay_case(id, from, to);
		seen++;
	}
	assert_int_equal(seen, sizeof(relay_expect) / sizeof(relay_expect[0]));
	json_decref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_path),
		cmocka_unit_test(test_case),
		cmocka_unit_test(test_null_path),
		cmocka_unit_test(test_postmaster),
		cmocka_unit_test(test_source_route),
		cmocka_unit_test(test_source_route_invalid),
		cmocka_unit_test(test_quoted_unquoted),
		cmocka_unit_test(test_quoted_kept),
		cmocka_unit_test(test_quoted_invalid),
		cmocka_unit_test(test_dot_string),
		cmocka_unit_test(test_dot_string_invalid),
		cmocka_unit_test(test_double_at),
		cmocka_unit_test(test_brackets),
		cmocka_unit_test(test_domain_syntax),
		cmocka_unit_test(test_literal_ipv4),
		cmocka_unit_test(test_literal_ipv6),
		cmocka_unit_test(test_literal_invalid),
		cmocka_unit_test(test_local_limit),
		cmocka_unit_test(test_path_limit),
		cmocka_unit_test(test_domain_limit),
		cmocka_unit_test(test_utf8_allowed),
		cmocka_unit_test(test_utf8_not_allowed),
		cmocka_unit_test(test_utf8_invalid),
		cmocka_unit_test(test_utf8_seq),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_open_relay_conformance),
	};

	return cmocka_run_group_tests_name("smtp-address", tests, NULL, NULL);
}
