/*
 * Unit tests for auth-results (RFC 8601): exact bytes of the field Rampart
 * writes (quoting per RFC 2045 and §2.2, folding per RFC 5322 §2.1.1 and
 * §2.2.3, values made safe), and auth_results_is_ours over many bodies:
 * comments (nested), versions, quoted ids, case, and prefix tricks.
 *
 * Every formatted field is also checked structurally: one field, CRLF line
 * ends only, every continuation line starting with WSP, lines within 78 octets
 * where no single element is longer, and unfolding it gives the logical text.
 * is_ours reads from exact-size heap copies, so ASan sees reads past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/auth-results.h"

/* Checks the shape of a formatted field; returns the longest line. */
static size_t check_field(const char *f)
{
	size_t len = strlen(f), line = 0, longest = 0;

	assert_true(len > 2);
	assert_memory_equal(f, "Authentication-Results: ", 24);
	assert_memory_equal(f + len - 2, "\r\n", 2);
	for (size_t i = 0; i < len; i++) {
		if (f[i] == '\r') {
			assert_int_equal(f[i + 1], '\n');
			continue;
		}
		if (f[i] == '\n') {
			assert_true(i > 0 && f[i - 1] == '\r');
			if (i + 1 < len) {
				/* a continuation line starts with WSP and is not blank */
				assert_true(f[i + 1] == ' ' || f[i + 1] == '\t');
				size_t k = i + 1;
				while (f[k] == ' ' || f[k] == '\t')
					k++;
				assert_int_not_equal(f[k], '\r');
			}
			if (line > longest)
				longest = line;
			line = 0;
			continue;
		}
		assert_true((unsigned char)f[i] >= 0x20 || f[i] == '\t');
		assert_int_not_equal((unsigned char)f[i], 0x7f);
		line++;
	}
	assert_true(longest <= 998);
	return longest;
}

/* Unfolds: "\r\n\t" and "\r\n " become one space (the folds Rampart makes
 * replace one space), and the trailing CRLF goes. */
static char *unfold(const char *f)
{
	char *u = malloc(strlen(f) + 1);
	size_t n = 0;

	assert_non_null(u);
	for (size_t i = 0; f[i] != '\0'; i++) {
		if (f[i] == '\r' && f[i + 1] == '\n') {
			if (f[i + 2] == '\0')
				break;
			u[n++] = ' ';
			i += 2;
			continue;
		}
		u[n++] = f[i];
	}
	u[n] = '\0';
	return u;
}

static void expect_field(struct auth_results *ar, const char *golden)
{
	char *f = auth_results_format(ar);

	assert_non_null(f);
	if (strcmp(f, golden) != 0)
		fail_msg("got:\n%s\nwant:\n%s", f, golden);
	(void)check_field(f);
	free(f);
}

static void test_none(void **state)
{
	struct auth_results *ar = auth_results_new("mx.example.org");

	assert_non_null(ar);
	expect_field(ar, "Authentication-Results: mx.example.org; none\r\n");
	auth_results_free(&ar);
	assert_null(ar);
	auth_results_free(&ar);
}

static void test_golden(void **state)
{
	struct auth_results *ar = auth_results_new("mx.example.org");

	auth_results_add(ar, "spf", "pass", NULL, "smtp.mailfrom", "user@example.org", NULL);
	auth_results_add(ar, "dkim", "pass", NULL,
	    "header.d", "example.org", "header.s", "sel", "header.b", "abcdefgh", NULL);
	auth_results_add(ar, "dmarc", "pass", NULL, "header.from", "example.org", NULL);
	expect_field(ar,
	    "Authentication-Results: mx.example.org;\r\n"
	    "\tspf=pass smtp.mailfrom=user@example.org;\r\n"
	    "\tdkim=pass header.d=example.org header.s=sel header.b=abcdefgh;\r\n"
	    "\tdmarc=pass header.from=example.org\r\n");
	auth_results_free(&ar);
}

static void test_quoting(void **state)
{
	struct auth_results *ar = auth_results_new("mx.example.org");

	/* reason is always quoted; '"' and '\' are escaped */
	auth_results_add(ar, "spf", "fail", "the \"sender\" is \\ not allowed",
	    "smtp.mailfrom", "a b@example.org", NULL);
	/* tokens (RFC 2045 §5.1) as is; '/' '=' are tspecials */
	auth_results_add(ar, "dkim", "fail", NULL, "header.b", "ab/d+f==", "header.s", "s-1_x.y", NULL);
	/* address forms (§2.2 pvalue) as is; others quoted */
	auth_results_add(ar, "spf", "pass", NULL, "smtp.mailfrom", "@example.org",
	    "smtp.helo", "localhost", "smtp.mailfrom", "a@localhost", NULL);
	auth_results_add(ar, "x", "y", NULL, "a.b", "", "a.c", "a@b-.org", "a.d", "a..b@c.org",
	    "a.e", "(x)", NULL);
	expect_field(ar,
	    "Authentication-Results: mx.example.org;\r\n"
	    "\tspf=fail reason=\"the \\\"sender\\\" is \\\\ not allowed\"\r\n"
	    "\tsmtp.mailfrom=\"a b@example.org\";\r\n"
	    "\tdkim=fail header.b=\"ab/d+f==\" header.s=s-1_x.y;\r\n"
	    "\tspf=pass smtp.mailfrom=@example.org smtp.helo=localhost\r\n"
	    "\tsmtp.mailfrom=\"a@localhost\";\r\n"
	    "\tx=y a.b=\"\" a.c=\"a@b-.org\" a.d=\"a..b@c.org\" a.e=\"(x)\"\r\n");
	auth_results_free(&ar);
	/* a quoted authserv-id: it is an RFC 2045 value, so no address form */
	ar = auth_results_new("mx example");
	expect_field(ar, "Authentication-Results: \"mx example\"; none\r\n");
	auth_results_free(&ar);
	ar = auth_results_new("r@example.org");
	expect_field(ar, "Authentication-Results: \"r@example.org\"; none\r\n");
	auth_results_free(&ar);
}

static void test_unsafe(void **state)
{
	struct auth_results *ar = auth_results_new("mx.example.org\r\nX-Evil: 1");

	/* CR, LF, other controls and invalid UTF-8 become "?"; UTF-8 stays */
	auth_results_add(ar, "dkim\r\n", "pa ss", "bad\r\nX-Injected: yes",
	    "header.d", "ex\tample\x7f.org\xff", "header.i", "j\xc3\xb6" "e@b\xc3\xbc" "cher.example",
	    "header\n.s", "\xc0\xaf", NULL);
	auth_results_add(ar, "", "", NULL, NULL);
	expect_field(ar,
	    "Authentication-Results: \"mx.example.org??X-Evil: 1\";\r\n"
	    "\tdkim--=pa-ss reason=\"bad??X-Injected: yes\" header.d=\"ex?ample?.org?\"\r\n"
	    "\theader.i=\"j\xc3\xb6" "e@b\xc3\xbc" "cher.example\" header-.s=\"??\";\r\n"
	    "\tx=x\r\n");
	auth_results_free(&ar);
}

static void test_folding(void **state)
{
	struct auth_results *ar = auth_results_new("mx.example.org");
	char *f, *u;

	/* elements move to a new line when the line would pass 78 octets */
	auth_results_add(ar, "dkim", "pass", NULL,
	    "header.d", "a-rather-long-signing-domain.example.org",
	    "header.s", "selector-2024-01", "header.i", "@a-rather-long-signing-domain.example.org",
	    "header.b", "AbCdEfGh", NULL);
	expect_field(ar,
	    "Authentication-Results: mx.example.org;\r\n"
	    "\tdkim=pass header.d=a-rather-long-signing-domain.example.org\r\n"
	    "\theader.s=selector-2024-01 header.i=@a-rather-long-signing-domain.example.org\r\n"
	    "\theader.b=AbCdEfGh\r\n");
	auth_results_free(&ar);

	/* a long quoted reason folds at its own spaces; unfolding restores it */
	ar = auth_results_new("mx.example.org");
	auth_results_add(ar, "spf", "softfail",
	    "the host 192.0.2.1 is not one of the hosts that example.org designates as "
	    "permitted senders, and the domain asks for a soft fail (~all) in its record",
	    "smtp.mailfrom", "bounce@example.org", NULL);
	auth_results_add(ar, "dmarc", "fail", "p=reject dis=quarantine", "header.from", "example.org", NULL);
	f = auth_results_format(ar);
	assert_non_null(f);
	assert_true(check_field(f) <= 78);
	assert_string_equal(f,
	    "Authentication-Results: mx.example.org;\r\n"
	    "\tspf=softfail\r\n"
	    "\treason=\"the host 192.0.2.1 is not one of the hosts that example.org\r\n"
	    " designates as permitted senders, and the domain asks for a soft fail (~all)\r\n"
	    " in its record\" smtp.mailfrom=bounce@example.org;\r\n"
	    "\tdmarc=fail reason=\"p=reject dis=quarantine\" header.from=example.org\r\n");
	u = unfold(f);
	assert_string_equal(u,
	    "Authentication-Results: mx.example.org; spf=softfail reason=\"the host 192.0.2.1 is "
	    "not one of the hosts that example.org designates as permitted senders, and the "
	    "domain asks for a soft fail (~all) in its record\" smtp.mailfrom=bounce@example.org; "
	    "dmarc=fail reason=\"p=reject dis=quarantine\" header.from=example.org");
	free(u);
	free(f);
	auth_results_free(&ar);

	/* an unbreakable value stays whole on its own line; values are capped at
	 * 400 octets (cut between UTF-8 characters) */
	char big[1001];
	memset(big, 'a', 1000);
	big[1000] = '\0';
	ar = auth_results_new("mx.example.org");
	auth_results_add(ar, "dkim", "pass", NULL, "header.d", "example.org", "header.b", big, NULL);
	f = auth_results_format(ar);
	assert_non_null(f);
	size_t longest = check_field(f);
	assert_int_equal(longest, 1 + strlen("header.b=") + 400);
	assert_non_null(strstr(f, "\theader.b=aaaa"));
	free(f);
	auth_results_free(&ar);
	for (size_t i = 0; i + 1 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);          /* 500 x "é" */
	ar = auth_results_new("mx.example.org");
	auth_results_add(ar, "x", "y", "", "a.b", big + 1, NULL);   /* starts mid-character */
	f = auth_results_format(ar);
	assert_non_null(f);
	(void)check_field(f);
	u = unfold(f);
	/* "?" for the stray continuation byte, then 199 whole characters */
	assert_int_equal(strlen(u), strlen("Authentication-Results: mx.example.org; x=y reason=\"\" a.b=\"\"") + 399);
	assert_non_null(strstr(u, "a.b=\"?\xc3\xa9"));
	free(u);
	free(f);
	auth_results_free(&ar);
}

/* Random elements (words of random lengths, spaces, quotes): the field always
 * has the right shape, lines stay within 78 octets when every word fits, and
 * unfolding gives back the text. */
static void test_folding_random(void **state)
{
	unsigned seed = 12345;

	for (int round = 0; round < 500; round++) {
		struct auth_results *ar = auth_results_new("mx.example.org");
		char value[3][200];
		for (int v = 0; v < 3; v++) {
			size_t n = 0, len;
			seed = seed * 1103515245u + 12345u;
			len = (seed >> 16) % 150;
			for (size_t i = 0; i < len; i++) {
				seed = seed * 1103515245u + 12345u;
				unsigned r = (seed >> 16) % 40;
				value[v][n++] = r < 6 ? ' ' : r == 6 ? '"' : r == 7 ? '\\' : (char)('a' + r % 26);
			}
			value[v][n] = '\0';
		}
		auth_results_add(ar, "spf", "pass", value[0], "smtp.mailfrom", value[1], NULL);
		auth_results_add(ar, "dkim", "fail", NULL, "header.d", value[2], "header.s", "s", NULL);
		char *f = auth_results_format(ar);
		assert_non_null(f);
		(void)check_field(f);
		/* the logical text: quoting is known, so rebuild it */
		char *u = unfold(f);
		assert_memory_equal(u, "Authentication-Results: mx.example.org; spf=pass reason=\"", 57);
		/* every word of the reason is there, in order, with its spaces */
		const char *p = u + 57;
		for (const char *q = value[0]; *q != '\0'; q++) {
			if (*q == '"' || *q == '\\')
				assert_int_equal(*p++, '\\');
			assert_int_equal(*p++, *q);
		}
		assert_int_equal(*p, '"');
		free(u);
		free(f);
		auth_results_free(&ar);
	}
}

/* ------------------------------------------------------------------ is_ours */

static bool ours(const char *body, size_t len, const char *id)
{
	char *copy = malloc(len > 0 ? len : 1);
	bool r;

	assert_non_null(copy);
	memcpy(copy, body, len);
	r = auth_results_is_ours(copy, len, id);
	free(copy);
	return r;
}

struct ours_case {
	const char *body;
	bool ours;
};

static void test_is_ours(void **state)
{
	static const struct ours_case cases[] = {
		{ "mx.example.org; spf=pass smtp.mailfrom=a@example.org", true },
		{ "MX.Example.ORG; none", true },
		{ "  mx.example.org;", true },
		{ " \t\r\n mx.example.org ;", true },
		{ "(comment) mx.example.org; spf=pass", true },
		{ "(x) mx.example.org (y); none", true },
		{ "(nested (comment) \\) here) mx.example.org;", true },
		{ "((((((((deep)))))))) mx.example.org;", true },
		{ "mx.example.org 1; spf=pass", true },
		{ "mx.example.org(c);", true },
		{ "mx.example.org", true },
		{ "mx.example.org\r\n", true },
		{ "mx.example.org garbage", true },
		{ "\"mx.example.org\"; none", true },
		{ "\"MX.example.org\" 1; none", true },
		{ "\"mx.exa\\mple.org\";", true },
		{ "\"mx.example\r\n.org\";", true },
		{ "(\"x) mx.example.org;", true },
		{ "\"mx.example.org \";", false },
		{ "\" mx.example.org\";", false },
		{ "\"mx.example.org", false },
		{ "\"mx.example.or\";", false },
		{ "mx.example.org.evil; spf=pass", false },
		{ "mx.example.orgx;", false },
		{ "xmx.example.org;", false },
		{ "mx.example;", false },
		{ "mx.example.org/evil;", false },
		{ "mx.example.org\"x\";", false },
		{ "mx.example.org=x;", false },
		{ "mx.example.org@x;", false },
		{ "; mx.example.org", false },
		{ "other.example; mx.example.org", false },
		{ "other.example (mx.example.org); spf=pass", false },
		{ "(mx.example.org) other.example;", false },
		{ "(unterminated mx.example.org;", false },
		{ "(a) (b mx.example.org;", false },
		{ "", false },
		{ "   ", false },
		{ "(only a comment)", false },
		{ ";", false },
		{ "\xff\xfe garbage", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool r = ours(cases[i].body, strlen(cases[i].body), "mx.example.org");
		if (r != cases[i].ours)
			fail_msg("case %zu \"%s\": %d", i, cases[i].body, r);
	}
	/* the length is what counts, not a NUL */
	assert_true(ours("mx.example.orgX", 14, "mx.example.org"));
	assert_false(ours("mx.example.org\0;", 16, "mx.example.org"));
	assert_false(ours("mx.example.or", 13, "mx.example.org"));
	assert_false(ours("\"mx.example.org\"", 15, "mx.example.org"));
	/* no id never matches */
	assert_false(ours("mx.example.org;", 15, ""));
	assert_false(ours(";", 1, ""));
	assert_false(ours("\"\";", 3, ""));
	assert_false(auth_results_is_ours("mx.example.org;", 15, NULL));
	/* what we write is ours, and only ours */
	struct auth_results *ar = auth_results_new("Mx.Example.Org");
	auth_results_add(ar, "spf", "pass", NULL, NULL);
	char *f = auth_results_format(ar);
	const char *body = f + strlen("Authentication-Results:");
	assert_true(auth_results_is_ours(body, strlen(body), "mx.example.org"));
	assert_false(auth_results_is_ours(body, strlen(body), "mx.example"));
	free(f);
	auth_results_free(&ar);
	ar = auth_results_new("r@example.org");
	f = auth_results_format(ar);
	body = f + strlen("Authentication-Results:");
	assert_true(auth_results_is_ours(body, strlen(body), "R@example.org"));
	free(f);
	auth_results_free(&ar);
	ar = auth_results_new("mx \"quoted\" (id)");
	f = auth_results_format(ar);
	body = f + strlen("Authentication-Results:");
	assert_true(auth_results_is_ours(body, strlen(body), "mx \"quoted\" (id)"));
	assert_false(auth_results_is_ours(body, strlen(body), "mx"));
	free(f);
	auth_results_free(&ar);
}

static void test_null_tolerant(void **state)
{
	auth_results_add(NULL, "spf", "pass", NULL, NULL);
	assert_null(auth_results_format(NULL));
	struct auth_results *ar = auth_results_new(NULL);
	assert_non_null(ar);
	auth_results_add(ar, NULL, NULL, NULL, "header.d", "example.org", "odd", NULL);
	expect_field(ar, "Authentication-Results: \"\";\r\n\tx=x header.d=example.org\r\n");
	auth_results_free(&ar);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_unsafe),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_folding_random),
		cmocka_unit_test(test_is_ours),
		cmocka_unit_test(test_null_tolerant),
	};

	return cmocka_run_group_tests_name("auth-results", tests, NULL, NULL);
}
