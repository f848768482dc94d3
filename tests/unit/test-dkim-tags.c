/*
 * Unit tests for the DKIM tag-list parser (RFC 6376 §3.2) and the two parsers
 * built on it: DKIM-Signature fields (§3.5) and key records (§3.6.1), one test
 * per rule, plus base64 with FWS and domain-name checks.
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

/* ---------------------------------------------------------------- tag lists */

static struct dkim_tags *parse_ok(const char *text)
{
	struct dkim_tags *t = malloc(sizeof(*t));
	const char *error = NULL;

	assert_non_null(t);
	if (dkim_tags_parse(t, text, strlen(text), &error) < 0)
		fail_msg("\"%s\": %s", text, error);
	return t;
}

static void tags_free(struct dkim_tags *t)
{
	dkim_tags_clear(t);
	free(t);
}

static void expect_tag(const struct dkim_tags *t, const char *name, const char *value)
{
	const struct dkim_tag *tag = dkim_tags_find(t, name);

	assert_non_null(tag);
	assert_string_equal(tag->value, value);
	assert_int_equal(tag->value_len, strlen(value));
}

static void parse_bad(const char *text, size_t len, const char *reason_part)
{
	struct dkim_tags t;
	const char *error = NULL;

	assert_int_equal(dkim_tags_parse(&t, text, len, &error), -1);
	assert_non_null(error);
	if (strstr(error, reason_part) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", text, error, reason_part);
	assert_null(t.buf);
	assert_int_equal(t.n, 0);
	dkim_tags_clear(&t);
}

static void test_tags_basic(void **state)
{
	struct dkim_tags *t = parse_ok("v=1; a=rsa-sha256;d=example.com");

	assert_int_equal(t->n, 3);
	assert_string_equal(t->tag[0].name, "v");
	expect_tag(t, "v", "1");
	expect_tag(t, "a", "rsa-sha256");
	expect_tag(t, "d", "example.com");
	assert_null(dkim_tags_find(t, "x"));
	tags_free(t);
}

static void test_tags_whitespace(void **state)
{
	/* FWS around names, '=' and values; inner whitespace kept; raw offsets
	 * cover the value with its whitespace. */
	static const char text[] = " \t a = 1 ;\r\n\tb=2  3\r\n ;c= ; d_9x=\t; e=x;";
	struct dkim_tags *t = parse_ok(text);
	const struct dkim_tag *b;

	assert_int_equal(t->n, 5);
	expect_tag(t, "a", "1");
	expect_tag(t, "b", "2  3");
	expect_tag(t, "c", "");
	expect_tag(t, "d_9x", "");
	expect_tag(t, "e", "x");
	b = dkim_tags_find(t, "b");
	assert_int_equal(b->raw_start, (size_t)(strstr(text, "b=") + 2 - text));
	assert_int_equal(b->raw_end, (size_t)(strstr(text, "\r\n ;") + 3 - text));
	tags_free(t);
	/* Empty lists. */
	t = parse_ok("");
	assert_int_equal(t->n, 0);
	tags_free(t);
	t = parse_ok(" \r\n\t ");
	assert_int_equal(t->n, 0);
	tags_free(t);
	/* A trailing ';' with whitespace after it. */
	t = parse_ok("a=1; \r\n ");
	assert_int_equal(t->n, 1);
	tags_free(t);
	/* Names are case-sensitive (§3.2). */
	t = parse_ok("V=1; v=2");
	expect_tag(t, "V", "1");
	expect_tag(t, "v", "2");
	tags_free(t);
	/* Octets >= 0x80 and '=' inside a value. */
	t = parse_ok("z=caf\xc3\xa9; b=ab==");
	expect_tag(t, "z", "caf\xc3\xa9");
	expect_tag(t, "b", "ab==");
	tags_free(t);
}

static void test_tags_errors(void **state)
{
	parse_bad("a=1; a=2", 8, "twice");
	parse_bad("a=1;;b=2", 8, "empty");
	parse_bad(";a=1", 4, "empty");
	parse_bad("a=1; ;", 6, "empty");
	parse_bad("1a=1", 4, "letter");
	parse_bad("=1", 2, "letter");
	parse_bad("_a=1", 4, "letter");
	parse_bad("a b=1", 5, "'='");
	parse_bad("a", 1, "'='");
	parse_bad("a-b=1", 5, "'='");
	parse_bad("a=1\x01", 4, "control");
	parse_bad("a=1\x7f", 4, "control");
	parse_bad("a=x\0y", 5, "control");
	{
		char big[1000];
		size_t n = 0;

		for (int i = 0; i <= DKIM_TAGS_MAX; i++)
			n += (size_t)sprintf(big + n, "t%d=%d;", i, i);
		parse_bad(big, n, "too many");
	}
	{
		char *big = malloc(DKIM_TAGS_TEXT_MAX + 2);

		memset(big, ' ', DKIM_TAGS_TEXT_MAX + 1);
		memcpy(big, "a=", 2);
		parse_bad(big, DKIM_TAGS_TEXT_MAX + 1, "too long");
		free(big);
	}
}

static int collect(const char *p, size_t len, void *arg)
{
	struct dkim_buf *b = arg;

	dkim_buf_add(b, "[", 1);
	dkim_buf_add(b, p, len);
	dkim_buf_add(b, "]", 1);
	return 0;
}

static void test_list_each(void **state)
{
	struct dkim_buf b = { 0 };

	dkim_list_each("from : to:\r\n\tsubject::", collect, &b);
	dkim_buf_add(&b, "", 1);
	assert_string_equal(b.p, "[from][to][subject][][]");
	dkim_buf_free(&b);
	dkim_list_each("", collect, &b);
	dkim_buf_add(&b, "", 1);
	assert_string_equal(b.p, "[]");
	dkim_buf_free(&b);
}

static void test_base64(void **state)
{
	unsigned char out[16];
	size_t n;

	assert_int_equal(dkim_base64_decode("aGVs bG8=", 9, out, sizeof(out), &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "hello", 5);
	assert_int_equal(dkim_base64_decode(" aG\r\n\tVs\r\n bG8 = ", 17, out, sizeof(out), &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(dkim_base64_decode("", 0, out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dkim_base64_decode("aGVsbG8", 7, out, sizeof(out), &n), -1);   /* no padding */
	assert_int_equal(dkim_base64_decode("aGV!bG8=", 8, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_base64_decode("aGVsbG8=", 8, out, 4, &n), -1);          /* too long */
	assert_int_equal(dkim_base64_decode("aGVsbG8=", 8, out, 5, &n), 0);
	assert_int_equal(dkim_base64_decode("YQ==", 4, out, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 'a');
	assert_int_equal(dkim_base64_decode("YWI=", 4, out, sizeof(out), &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "ab", 2);
	assert_int_equal(dkim_base64_decode("YWJj", 4, out, 2, &n), -1);
	assert_int_equal(dkim_base64_decode("Y===", 4, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_base64_decode("YQ=", 3, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_base64_decode("=", 1, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_base64_decode("YWJj=", 5, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_base64_decode("YQ==YQ==", 8, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_base64_decode("YQ\0=", 4, out, sizeof(out), &n), -1);
	/* Round trips of every length and octet value. */
	for (size_t len = 0; len < 40; len++) {
		unsigned char data[40], back[40];
		char *s;

		for (size_t i = 0; i < len; i++)
			data[i] = (unsigned char)(i * 37 + len * 101);
		s = dkim_base64_encode(data, len);
		assert_int_equal(dkim_base64_decode(s, strlen(s), back, len, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(back, data, len);
		free(s);
	}
	{
		char *s = dkim_base64_encode((const unsigned char *)"hello", 5);

		assert_string_equal(s, "aGVsbG8=");
		free(s);
	}
	/* RFC 4648 §10 test vectors, both ways. */
	static const char *const vec[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	for (size_t v = 0; v < sizeof(vec) / sizeof(vec[0]); v++) {
		char *s = dkim_base64_encode((const unsigned char *)vec[v][0], strlen(vec[v][0]));

		assert_string_equal(s, vec[v][1]);
		free(s);
		assert_int_equal(dkim_base64_decode(vec[v][1], strlen(vec[v][1]), out, sizeof(out),
		    &n), 0);
		assert_int_equal(n, strlen(vec[v][0]));
		assert_memory_equal(out, vec[v][0], n);
	}
	/* Whole quanta after padding, and a quantum that does not fit. */
	assert_int_equal(dkim_base64_decode("YQ==YWJj", 8, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_base64_decode("YQ== YWJj", 9, out, sizeof(out), &n), -1);
	assert_int_equal(dkim_base64_decode("YWJjYWJj", 8, out, 5, &n), -1);
	assert_int_equal(dkim_base64_decode("YWJjYWJj", 8, out, 6, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(dkim_base64_decode("YW Jj\r\n\tYWJj", 12, out, sizeof(out), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "abcabc", 6);
}

static void test_domain_valid(void **state)
{
	static const char *const good[] = {
		"example.com", "a", "sub-1.Example.COM", "_x.example", "202611e", "a.b.c.d",
	};
	static const char *const bad[] = {
		"", ".example.com", "example.com.", "exa mple.com", "a..b", "ex@mple.com",
		"caf\xc3\xa9.example", "a;b",
	};
	char longlabel[70], longname[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(dkim_domain_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(dkim_domain_valid(bad[i], strlen(bad[i])));
	memset(longlabel, 'a', 64);
	assert_false(dkim_domain_valid(longlabel, 64));
	assert_true(dkim_domain_valid(longlabel, 63));
	for (size_t i = 0; i < sizeof(longname); i++)
		longname[i] = i % 2 ? '.' : 'a';
	assert_true(dkim_domain_valid(longname, 253));
	assert_false(dkim_domain_valid(longname, 255));
	assert_true(dkim_name_eq("From", 4, "fROM", 4));
	assert_false(dkim_name_eq("From", 4, "From:", 5));
	assert_false(dkim_name_eq("Fro[", 4, "Fro{", 4));
}

/* ---------------------------------------------------------------- DKIM-Signature */

#define SIG_BASE "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; bh=aGVsbG8=; b=YWJj"

static struct dkim_sig *sig_ok(const char *text)
{
	struct dkim_sig *s = malloc(sizeof(*s));
	const char *error = NULL;

	assert_non_null(s);
	if (dkim_sig_parse(s, text, strlen(text), &error) < 0)
		fail_msg("\"%s\": %s", text, error);
	return s;
}

static void sig_free(struct dkim_sig *s)
{
	dkim_sig_clear(s);
	free(s);
}

static void sig_bad(const char *text, const char *reason_part)
{
	struct dkim_sig *s = malloc(sizeof(*s));
	const char *error = NULL;

	assert_int_equal(dkim_sig_parse(s, text, strlen(text), &error), -1);
	if (error == NULL || strstr(error, reason_part) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", text, error, reason_part);
	sig_free(s);
}

static void test_sig_good(void **state)
{
	struct dkim_sig *s = sig_ok(SIG_BASE);

	assert_int_equal(s->alg, DKIM_ALG_RSA_SHA256);
	assert_string_equal(s->a, "rsa-sha256");
	assert_string_equal(s->d, "example.com");
	assert_string_equal(s->s, "sel");
	assert_null(s->i);
	assert_string_equal(s->i_domain, "example.com");
	/* c= absent: simple/simple. */
	assert_false(s->relaxed_header);
	assert_false(s->relaxed_body);
	assert_int_equal(s->nh, 2);
	assert_int_equal(s->bh_len, 5);
	assert_memory_equal(s->bh, "hello", 5);
	assert_int_equal(s->b_len, 3);
	assert_memory_equal(s->b, "abc", 3);
	assert_false(s->has_l || s->has_t || s->has_x);
	assert_memory_equal(&SIG_BASE[s->b_raw_start], "YWJj", 4);
	assert_int_equal(s->b_raw_end, strlen(SIG_BASE));
	sig_free(s);

	/* Everything, folded, with FWS in b=, bh= and h=, and an unknown tag. */
	{
		static const char text[] = " v=1;\r\n\ta=ed25519-sha256; c=relaxed;\r\n d=Example.COM; "
		    "s=brisbane; i=joe@Football.example.com; q=dns/txt:other/x;\r\n\tt=1518460054; "
		    "x=1518460054; l=76; h=From : to :\r\n\tsubject:from; z=From:foo|To:bar; "
		    "foo=bar; bh=aGVs\r\n\tbG8=; b=YW\r\n Jj \r\n\t;";
		const char *b;

		s = sig_ok(text);
		assert_int_equal(s->alg, DKIM_ALG_ED25519_SHA256);
		assert_true(s->relaxed_header);
		assert_false(s->relaxed_body);      /* "relaxed" alone: body simple */
		assert_string_equal(s->i, "joe@Football.example.com");
		assert_string_equal(s->i_domain, "Football.example.com");
		assert_int_equal(s->nh, 4);
		assert_int_equal(s->h[0].len, 4);
		assert_memory_equal(s->h[0].p, "From", 4);
		assert_memory_equal(s->h[2].p, "subject", 7);
		assert_true(s->has_l && s->l == 76);
		assert_true(s->has_t && s->t == 1518460054);
		assert_true(s->has_x && s->x == 1518460054);
		assert_int_equal(s->b_len, 3);
		b = strstr(text, "b=YW");
		assert_int_equal(s->b_raw_start, (size_t)(b + 2 - text));
		assert_int_equal(s->b_raw_end, strlen(text) - 1);   /* up to the final ';' */
		sig_free(s);
	}
	s = sig_ok(SIG_BASE "; c=simple/relaxed");
	assert_false(s->relaxed_header);
	assert_true(s->relaxed_body);
	sig_free(s);
	s = sig_ok(SIG_BASE "; c=relaxed/relaxed");
	assert_true(s->relaxed_header && s->relaxed_body);
	sig_free(s);
	s = sig_ok("v=1; a=rsa-sha1; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj");
	assert_int_equal(s->alg, DKIM_ALG_RSA_SHA1);
	assert_string_equal(dkim_alg_name(s->alg), "rsa-sha1");
	sig_free(s);
	/* i= equal to d=, with an empty local part; a 76-digit l= saturates. */
	s = sig_ok(SIG_BASE "; i=@example.com; l=9999999999999999999999999999999999999999999999999999999999999999999999999999");
	assert_string_equal(s->i_domain, "example.com");
	assert_true(s->l == UINT64_MAX);
	sig_free(s);
	/* i= is dkim-quoted-printable (§2.11): decoded, FWS dropped. */
	s = sig_ok(SIG_BASE "; i=jlong@messiah=2Eexample.com");
	assert_string_equal(s->i, "jlong@messiah.example.com");
	sig_free(s);
	s = sig_ok(SIG_BASE "; i=jlong=40example.com");
	assert_string_equal(s->i, "jlong@example.com");
	assert_string_equal(s->i_domain, "example.com");
	sig_free(s);
	s = sig_ok(SIG_BASE "; i=jo e@exa\r\n mple.com");
	assert_string_equal(s->i, "joe@example.com");
	sig_free(s);
	s = sig_ok(SIG_BASE "; i=j=3dx=3d@example.com");
	assert_string_equal(s->i, "j=x=@example.com");
	sig_free(s);
	/* Tag names are case-sensitive: "V=2" is an unknown tag. */
	s = sig_ok(SIG_BASE "; V=2; D=x");
	sig_free(s);
}

static void test_sig_rules(void **state)
{
	/* Required tags. */
	sig_bad("a=rsa-sha256; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "v=");
	sig_bad("v=1; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "a=");
	sig_bad("v=1; a=rsa-sha256; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "d=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; h=from; bh=aGVsbG8=; b=YWJj", "s=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; bh=aGVsbG8=; b=YWJj", "h=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=from; b=YWJj", "bh=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=aGVsbG8=", "b=");
	/* v=1 only. */
	sig_bad("v=2; a=rsa-sha256; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "v=");
	sig_bad("v=1.0; a=rsa-sha256; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "v=");
	/* a=. */
	sig_bad("v=1; a=rsa-sha512; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "a=");
	sig_bad("v=1; a=RSA-SHA256; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "a=");
	/* b=, bh=. */
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=", "empty");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJ", "b=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=aGV*bG8=; b=YWJj", "bh=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=; b=YWJj", "bh=");
	{
		/* b= longer than any RSA signature we take (8192 bits). */
		char text[3000];
		size_t n = (size_t)sprintf(text, "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; "
		    "bh=aGVsbG8=; b=");

		for (int i = 0; i < 1400; i++)
			text[n++] = 'A';
		text[n] = '\0';
		sig_bad(text, "b=");
	}
	/* c=. */
	sig_bad(SIG_BASE "; c=relaxed/fancy", "c=");
	sig_bad(SIG_BASE "; c=Relaxed", "c=");
	sig_bad(SIG_BASE "; c=", "c=");
	sig_bad(SIG_BASE "; c=relaxed/", "c=");
	/* d=, s=. */
	sig_bad("v=1; a=rsa-sha256; d=exa mple.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "d=");
	sig_bad("v=1; a=rsa-sha256; d=.example.com; s=sel; h=from; bh=aGVsbG8=; b=YWJj", "d=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=se/l; h=from; bh=aGVsbG8=; b=YWJj", "s=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=; h=from; bh=aGVsbG8=; b=YWJj", "s=");
	/* h= must include From, and be names. */
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=to:subject; bh=aGVsbG8=; b=YWJj", "From");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=from::to; bh=aGVsbG8=; b=YWJj", "h=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=from:t o; bh=aGVsbG8=; b=YWJj", "h=");
	sig_bad("v=1; a=rsa-sha256; d=example.com; s=sel; h=; bh=aGVsbG8=; b=YWJj", "h=");
	{
		char text[3000];
		size_t n = (size_t)sprintf(text, "v=1; a=rsa-sha256; d=example.com; s=sel; "
		    "bh=aGVsbG8=; b=YWJj; h=from");

		for (int i = 0; i < DKIM_SIG_H_MAX; i++)
			n += (size_t)sprintf(text + n, ":x");
		sig_bad(text, "too many");
	}
	/* i=. */
	sig_bad(SIG_BASE "; i=joe.example.com", "@");
	sig_bad(SIG_BASE "; i=joe@example.org", "i=");
	sig_bad(SIG_BASE "; i=joe@notexample.com", "i=");
	sig_bad(SIG_BASE "; i=joe@com", "i=");
	sig_bad(SIG_BASE "; i=joe@", "i=");
	sig_bad(SIG_BASE "; i=joe=4@example.com", "quoted-printable");
	sig_bad(SIG_BASE "; i=joe=zz@example.com", "quoted-printable");
	sig_bad(SIG_BASE "; i=jo=20e@example.com", "quoted-printable");
	sig_bad(SIG_BASE "; i=jo=00e@example.com", "quoted-printable");
	sig_bad(SIG_BASE "; i=joe@example.com=", "quoted-printable");
	{
		char text[700];
		int n = snprintf(text, sizeof(text), "%s; i=", SIG_BASE);

		for (int i = 0; i < 330; i++)
			text[n++] = 'x';
		snprintf(text + n, sizeof(text) - (size_t)n, "@example.com");
		sig_bad(text, "too long");
	}
	/* l=, t=, x=. */
	sig_bad(SIG_BASE "; l=", "l=");
	sig_bad(SIG_BASE "; l=-1", "l=");
	sig_bad(SIG_BASE "; l=1 2", "l=");
	sig_bad(SIG_BASE "; l=99999999999999999999999999999999999999999999999999999999999999999999999999999", "l=");
	sig_bad(SIG_BASE "; t=now", "t=");
	sig_bad(SIG_BASE "; x=+5", "x=");
	sig_bad(SIG_BASE "; t=100; x=99", "x=");
	/* q=. */
	sig_bad(SIG_BASE "; q=dns", "q=");
	sig_bad(SIG_BASE "; q=", "q=");
	/* Duplicates, and a broken tag list. */
	sig_bad(SIG_BASE "; d=example.org", "twice");
	sig_bad(SIG_BASE ";; x=1", "empty");
}

/* What a failed parse keeps: d=, s= and a= once each was found valid. */
static void test_sig_partial(void **state)
{
	struct dkim_sig *s = malloc(sizeof(*s));
	const char *error = NULL;
	static const char text[] = "v=1; a=rsa-sha256; d=example.com; s=sel; h=to; bh=aGVsbG8=; b=YWJj";

	assert_int_equal(dkim_sig_parse(s, text, strlen(text), &error), -1);
	assert_string_equal(s->d, "example.com");
	assert_string_equal(s->s, "sel");
	assert_string_equal(s->a, "rsa-sha256");
	sig_free(s);
	s = malloc(sizeof(*s));
	assert_int_equal(dkim_sig_parse(s, "d=bad domain; s=x", 17, &error), -1);
	assert_null(s->d);
	assert_null(s->s);
	sig_free(s);
}

/* ---------------------------------------------------------------- key records */

static struct dkim_keyrec *key_ok(const char *text)
{
	struct dkim_keyrec *k = malloc(sizeof(*k));
	const char *error = NULL;

	assert_non_null(k);
	if (dkim_keyrec_parse(k, text, strlen(text), &error) < 0)
		fail_msg("\"%s\": %s", text, error);
	return k;
}

static void key_bad(const char *text, const char *reason_part)
{
	struct dkim_keyrec *k = malloc(sizeof(*k));
	const char *error = NULL;

	assert_int_equal(dkim_keyrec_parse(k, text, strlen(text), &error), -1);
	if (error == NULL || strstr(error, reason_part) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", text, error, reason_part);
	free(k);
}

static void test_key_records(void **state)
{
	struct dkim_keyrec *k = key_ok("p=aGVsbG8=");

	/* Defaults: rsa, every hash, every service, no flags. */
	assert_int_equal(k->type, DKIM_KEY_RSA);
	assert_true(k->sha256_ok && k->sha1_ok && k->email_ok);
	assert_false(k->testing || k->strict || k->revoked);
	assert_int_equal(k->p_len, 5);
	assert_memory_equal(k->p, "hello", 5);
	free(k);

	k = key_ok("v=DKIM1; h=sha256; k=ed25519; n=a note; s=email; t=y:s:z; g=*; p=aGVs bG8=");
	assert_int_equal(k->type, DKIM_KEY_ED25519);
	assert_true(k->sha256_ok);
	assert_false(k->sha1_ok);
	assert_true(k->email_ok && k->testing && k->strict);
	assert_int_equal(k->p_len, 5);
	free(k);

	k = key_ok("v=DKIM1; p=");
	assert_true(k->revoked);
	free(k);
	k = key_ok("v=DKIM1; p= \t ");
	assert_true(k->revoked);
	free(k);
	k = key_ok("h=sha1:foo; s=tlsrpt; t=x; p=aGVsbG8=");
	assert_false(k->sha256_ok);
	assert_true(k->sha1_ok);
	assert_false(k->email_ok);
	assert_false(k->testing || k->strict);
	free(k);
	k = key_ok("s = * ; p=aGVsbG8=;");
	assert_true(k->email_ok);
	free(k);

	key_bad("", "p=");
	key_bad("v=DKIM1; k=rsa", "p=");
	key_bad("v=DKIM1; k=dsa; p=aGVsbG8=", "k=");
	key_bad("v=DKIM1; k=RSA; p=aGVsbG8=", "k=");
	key_bad("v=DKIM2; p=aGVsbG8=", "DKIM1");
	key_bad("k=rsa; v=DKIM1; p=aGVsbG8=", "first");
	key_bad("v=DKIM1; p=aGVsbG8", "p=");
	key_bad("v=DKIM1; p=!!!!", "p=");
	key_bad("v=DKIM1; p=aGVsbG8=; p=aGVsbG8=", "twice");
	key_bad("v=spf1 -all", "DKIM1");
	{
		/* p= longer than DKIM_KEYREC_P_MAX once decoded. */
		char *text = malloc(8000);
		size_t n = (size_t)sprintf(text, "p=");

		for (int i = 0; i < 7000; i++)
			text[n++] = 'A';
		text[n] = '\0';
		key_bad(text, "p=");
		free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags_basic),
		cmocka_unit_test(test_tags_whitespace),
		cmocka_unit_test(test_tags_errors),
		cmocka_unit_test(test_list_each),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_domain_valid),
		cmocka_unit_test(test_sig_good),
		cmocka_unit_test(test_sig_rules),
		cmocka_unit_test(test_sig_partial),
		cmocka_unit_test(test_key_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
