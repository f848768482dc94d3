/*
 * Unit tests for spf-record (the SPF record parser, RFC 7208 §4.5, §4.6, §5,
 * §6, §12) and spf-macro (macro strings, §7).
 *
 * The parser takes a whole record (a TXT answer is complete, so there is
 * nothing to resume): every record is parsed from a heap block of exactly its
 * length with no NUL after it, so ASan catches any read past it, and every
 * prefix of every record is parsed too (it must succeed or fail cleanly, and
 * the same way twice). Expansion is checked against the RFC's own examples
 * (§7.4) and against a simple reference for the 253-octet truncation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/spf-macro.h"
#include "mailauth/spf-record.h"

/* Parses s[0..len) from an exact-size heap copy. */
static int parse_n(const char *s, size_t len, struct spf_record **rec, const char **error)
{
	char *copy = malloc(len > 0 ? len : 1);
	int ret;

	assert_non_null(copy);
	memcpy(copy, s, len);
	*error = NULL;
	ret = spf_record_parse(copy, len, rec, error);
	free(copy);
	if (ret < 0) {
		assert_null(*rec);
		assert_non_null(*error);
	} else {
		assert_non_null(*rec);
	}
	return ret;
}

static int parse(const char *s, struct spf_record **rec, const char **error)
{
	return parse_n(s, strlen(s), rec, error);
}

/* A record that must parse; returns it. */
static struct spf_record *parse_ok(const char *s)
{
	struct spf_record *rec = NULL;
	const char *error;

	if (parse(s, &rec, &error) < 0)
		fail_msg("\"%s\" should parse: %s", s, error);
	return rec;
}

/* A record that must not parse; the error must name the offending term. */
static void parse_bad(const char *s, const char *term)
{
	struct spf_record *rec = NULL;
	const char *error;

	if (parse(s, &rec, &error) == 0)
		fail_msg("\"%s\" should not parse", s);
	if (term != NULL && strstr(error, term) == NULL)
		fail_msg("\"%s\": the error \"%s\" does not name \"%s\"", s, error, term);
}

/* ---------------------------------------------------------------- version */

static void test_is_v1(void **state)
{
	(void)state;
	assert_true(spf_record_is_v1("v=spf1", 6));
	assert_true(spf_record_is_v1("v=spf1 -all", 11));
	assert_true(spf_record_is_v1("V=SPF1 -all", 11));        /* ABNF literals are case-insensitive */
	assert_true(spf_record_is_v1("v=spf1 ", 7));
	assert_false(spf_record_is_v1("v=spf10", 7));
	assert_false(spf_record_is_v1("v=spf1mx", 8));            /* §4.5: SP or end after the version */
	assert_false(spf_record_is_v1("v=spf1\t-all", 11));
	assert_false(spf_record_is_v1("v=spf", 5));
	assert_false(spf_record_is_v1(" v=spf1", 7));
	assert_false(spf_record_is_v1("spf2.0/pra", 10));
	assert_false(spf_record_is_v1("", 0));
	assert_true(spf_record_is_v1("v=spf1 \0x", 9));           /* a v1 record, with a syntax error */
}

/* ---------------------------------------------------------------- terms */

static void test_mechanisms(void **state)
{
	struct spf_record *rec = parse_ok("v=spf1 +all -include:_spf.example.com ~a "
	    "?a:mail.example.com/24 "
	    "a//64 a:x.example.com/16//48 mx mx:%{d}/27 ptr ptr:example.org "
	    "ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{ir}.%{v}.bl.example.net ip4:198.51.100.7 "
	    "ip6:2001:db8::1");
	(void)state;

	assert_int_equal(rec->nterms, 15);
	assert_null(rec->redirect);
	assert_null(rec->exp);
	const struct spf_term *t = rec->terms;
	assert_int_equal(t[0].mech, SPF_MECH_ALL);
	assert_int_equal(t[0].qualifier, SPF_RESULT_PASS);
	assert_string_equal(t[0].text, "+all");
	assert_int_equal(t[1].mech, SPF_MECH_INCLUDE);
	assert_int_equal(t[1].qualifier, SPF_RESULT_FAIL);
	assert_string_equal(t[1].domain, "_spf.example.com");
	assert_int_equal(t[2].mech, SPF_MECH_A);
	assert_int_equal(t[2].qualifier, SPF_RESULT_SOFTFAIL);
	assert_null(t[2].domain);
	assert_int_equal(t[2].cidr4, 32);
	assert_int_equal(t[2].cidr6, 128);
	assert_int_equal(t[3].qualifier, SPF_RESULT_NEUTRAL);
	assert_string_equal(t[3].domain, "mail.example.com");
	assert_int_equal(t[3].cidr4, 24);
	assert_int_equal(t[3].cidr6, 128);
	assert_null(t[4].domain);
	assert_int_equal(t[4].cidr4, 32);
	assert_int_equal(t[4].cidr6, 64);
	assert_string_equal(t[5].domain, "x.example.com");
	assert_int_equal(t[5].cidr4, 16);
	assert_int_equal(t[5].cidr6, 48);
	assert_string_equal(t[5].text, "a:x.example.com/16//48");
	assert_int_equal(t[6].mech, SPF_MECH_MX);
	assert_null(t[6].domain);
	assert_string_equal(t[7].domain, "%{d}");
	assert_int_equal(t[7].cidr4, 27);
	assert_int_equal(t[8].mech, SPF_MECH_PTR);
	assert_null(t[8].domain);
	assert_string_equal(t[9].domain, "example.org");
	assert_int_equal(t[10].mech, SPF_MECH_IP4);
	assert_int_equal(t[10].cidr4, 24);
	assert_memory_equal(t[10].addr, "\xc0\x00\x02\x00", 4);
	assert_int_equal(t[11].mech, SPF_MECH_IP6);
	assert_int_equal(t[11].cidr6, 32);
	assert_memory_equal(t[11].addr, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\0", 16);
	assert_int_equal(t[12].mech, SPF_MECH_EXISTS);
	assert_string_equal(t[12].domain, "%{ir}.%{v}.bl.example.net");
	assert_int_equal(t[13].cidr4, 32);
	assert_int_equal(t[14].cidr6, 128);
	spf_record_free(&rec);
	assert_null(rec);
	spf_record_free(&rec);
}

static void test_case_and_spaces(void **state)
{
	struct spf_record *rec = parse_ok("V=SPF1   A:Example.COM  MX/24 IP4:192.0.2.1 "
	    "Include:x.example.net "
	    "REDIRECT=r.example.net EXP=e.example.net   ");
	(void)state;

	assert_int_equal(rec->nterms, 4);
	assert_int_equal(rec->terms[0].mech, SPF_MECH_A);
	assert_string_equal(rec->terms[0].domain, "Example.COM");
	assert_int_equal(rec->terms[1].mech, SPF_MECH_MX);
	assert_int_equal(rec->terms[1].cidr4, 24);
	assert_int_equal(rec->terms[2].mech, SPF_MECH_IP4);
	assert_int_equal(rec->terms[3].mech, SPF_MECH_INCLUDE);
	assert_string_equal(rec->redirect, "r.example.net");
	assert_string_equal(rec->exp, "e.example.net");
	spf_record_free(&rec);

	rec = parse_ok("v=spf1");
	assert_int_equal(rec->nterms, 0);
	spf_record_free(&rec);
	rec = parse_ok("v=spf1 ");
	assert_int_equal(rec->nterms, 0);
	spf_record_free(&rec);
}

static void test_modifiers(void **state)
{
	struct spf_record *rec;
	(void)state;

	/* §6: unknown modifiers are ignored (but checked), anywhere in the record. */
	rec = parse_ok("v=spf1 moo=cow foo.bar-baz_9=%{d}.x%{l} v=spf1 -all empty= "
	    "redirect=_spf.%{d2}");
	assert_int_equal(rec->nterms, 1);
	assert_int_equal(rec->terms[0].mech, SPF_MECH_ALL);
	assert_int_equal(rec->terms[0].qualifier, SPF_RESULT_FAIL);
	assert_string_equal(rec->redirect, "_spf.%{d2}");
	spf_record_free(&rec);

	rec = parse_ok("v=spf1 exp=explain._spf.%{d} -all");
	assert_string_equal(rec->exp, "explain._spf.%{d}");
	spf_record_free(&rec);

	/* A name that is a mechanism's but followed by "=" is a modifier. */
	rec = parse_ok("v=spf1 a=b mx=c.d");
	assert_int_equal(rec->nterms, 0);
	spf_record_free(&rec);
}

static void test_dual_cidr(void **state)
{
	static const struct { const char *rec; int cidr4, cidr6; const char *domain; } ok[] = {
		{ "v=spf1 a/0", 0, 128, NULL },
		{ "v=spf1 a/32", 32, 128, NULL },
		{ "v=spf1 a//0", 32, 0, NULL },
		{ "v=spf1 a//128", 32, 128, NULL },
		{ "v=spf1 mx/1//1", 1, 1, NULL },
		{ "v=spf1 a:foo.example/24//64", 24, 64, "foo.example" },
		{ "v=spf1 mx:%%%_/.Clara.de/27", 27, 128, "%%%_/.Clara.de" },
		{ "v=spf1 a:%{d}//97", 32, 97, "%{d}" },
		{ "v=spf1 a:foo//bar.example", 32, 128, "foo//bar.example" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct spf_record *rec = parse_ok(ok[i].rec);
		assert_int_equal(rec->nterms, 1);
		assert_int_equal(rec->terms[0].cidr4, ok[i].cidr4);
		assert_int_equal(rec->terms[0].cidr6, ok[i].cidr6);
		if (ok[i].domain == NULL)
			assert_null(rec->terms[0].domain);
		else
			assert_string_equal(rec->terms[0].domain, ok[i].domain);
		spf_record_free(&rec);
	}
}

static void test_syntax_errors(void **state)
{
	static const struct { const char *rec, *term; } bad[] = {
		{ "v=spf1 moo", "moo" },                          /* unknown mechanism */
		{ "v=spf1 ip4:192.0.2.0/8 ?all moo", "moo" },
		{ "v=spf1 =a ?all", "=a" },
		{ "v=spf1 -all:3030", "all:3030" },
		{ "v=spf1 all/24", "all/24" },
		{ "v=spf1 include", "include" },
		{ "v=spf1 include:", "include:" },
		{ "v=spf1 include:example.com/24", "include:" },  /* domain-end "com/24" */
		{ "v=spf1 exists", "exists" },
		{ "v=spf1 exists:", "exists:" },
		{ "v=spf1 a:", "a:" },
		{ "v=spf1 a:example.com:8080", "8080" },
		{ "v=spf1 a:mail.example.com,", "a:mail" },       /* commas do not separate */
		{ "v=spf1 a:localhost", "localhost" },            /* §7.1 domain-end needs a dot */
		{ "v=spf1 a:1.2.3.4", "a:1.2.3.4" },              /* toplabel needs a letter */
		{ "v=spf1 a:example.-com", "-com" },
		{ "v=spf1 a:example.com-", "com-" },
		{ "v=spf1 a:%{d}.", "%{d}." },
		{ "v=spf1 a/33", "a/33" },
		{ "v=spf1 a//129", "a//129" },
		{ "v=spf1 a/024", "a/024" },
		{ "v=spf1 a/24/64", "a/24/64" },
		{ "v=spf1 a/", "a/" },
		{ "v=spf1 a:foo.example/", "foo.example/" },
		{ "v=spf1 ptr/24", "ptr/24" },
		{ "v=spf1 ptr:example.com/24", "ptr:" },
		{ "v=spf1 ip4", "ip4" },
		{ "v=spf1 ip4:", "ip4:" },
		{ "v=spf1 ip4:192.0.0.n", "192.0.0.n" },
		{ "v=spf1 ip4:1.2.3.444/24", "1.2.3.444" },
		{ "v=spf1 ip4:1.2.03.4/24", "1.2.03.4" },
		{ "v=spf1 ip4:1.2.3.4/33", "1.2.3.4/33" },
		{ "v=spf1 ip4:1.2.3.4/247", "/247" },
		{ "v=spf1 ip4:1.2.3.4//24", "//24" },
		{ "v=spf1 ip4:1.2.3", "1.2.3" },
		{ "v=spf1 ip4:::1", "ip4:::1" },
		{ "v=spf1 ip6:2001:db8:ZZZZ:: ?all", "ZZZZ" },
		{ "v=spf1 ip6:1.2.3.4", "ip6:1.2.3.4" },
		{ "v=spf1 ip6:::1/129", "/129" },
		{ "v=spf1 ip6:::1//64", "//64" },
		{ "v=spf1 ip6:fe80::1%eth0", "fe80" },
		{ "v=spf1 ip", "ip" },
		{ "v=spf1 prt", "prt" },
		{ "v=spf1 all.", "all." },
		{ "v=spf1 -redirect=x.example", "redirect" },     /* a modifier takes no qualifier */
		{ "v=spf1 redirect=", "redirect=" },
		{ "v=spf1 redirect=a.example redirect=b.example", "redirect=b" },
		{ "v=spf1 exp=a.example -all exp=b.example", "exp=b" },
		{ "v=spf1 exp=", "exp=" },
		{ "v=spf1 exp=%{r}.example.com -all", "%{r}" },   /* c, r, t only in exp text */
		{ "v=spf1 a:%{c}.example.com", "%{c}" },
		{ "v=spf1 moo=%{t}", "moo=" },
		{ "v=spf1 moo=%", "moo=%" },
		{ "v=spf1 moo=%x", "moo=%x" },
		{ "v=spf1 -exists:%(ir).sbl.example.com ?all", "%(ir)" },
		{ "v=spf1 exists:foo%.sbl.example.com", "foo%" },
		{ "v=spf1 a:%{a}.example.com -all", "%{a}" },
		{ "v=spf1 a:%{d0}.example.com", "%{d0}" },
		{ "v=spf1 a:%{d2r:}.example.com", "%{d2r:}" },
		{ "v=spf1 a:%{d", "%{d" },
		{ "v=spf1 a:%{", "%{" },
		{ "v=spf1 a:%{}.example.com", "%{}" },
		{ "v=spf1 a:ctrl.example.com\rptr -all", "ctrl" },
		{ "v=spf1 ip4:192.0.2.5\n include:x.example ~all", "192.0.2.5" },
		{ "v=spf1 a:\xEF\xBB\xBFgarbage.example.net -all", "garbage" },
		{ "v=spf1 \x80" "a:example.net -all", "\\x80" },
		{ "v=spf1 a:example.net \x96" "all", "\\x96" },
		{ "v=spf1\ta", NULL },                             /* not v1 at all */
		{ "v=spf10", NULL },
		{ "v=spf1 1foo=bar", "1foo" },
		{ "v=spf1 foo:bar", "foo:bar" },
		{ "v=spf1 +", "+" },
		{ "v=spf1 -", "-" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i].rec, bad[i].term);
}

static void test_nul_and_long(void **state)
{
	struct spf_record *rec = NULL;
	const char *error;
	(void)state;

	/* A NUL octet inside a term, and after the version. */
	assert_int_equal(parse_n("v=spf1 a\0b -all", 15, &rec, &error), -1);
	assert_non_null(strstr(error, "NUL"));
	assert_int_equal(parse_n("v=spf1 \0", 8, &rec, &error), -1);

	/* The shown term is short and printable however long and odd the term. */
	char big[3000];
	memcpy(big, "v=spf1 moo", 10);
	memset(big + 10, '\x01', sizeof(big) - 10);
	assert_int_equal(parse_n(big, sizeof(big), &rec, &error), -1);
	assert_true(strlen(error) < 256);
	for (const char *p = error; *p != '\0'; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);

	/* Longer than any DNS message. */
	char *huge = malloc(SPF_RECORD_MAX + 2);
	assert_non_null(huge);
	memcpy(huge, "v=spf1", 6);
	memset(huge + 6, ' ', SPF_RECORD_MAX + 2 - 6);
	assert_int_equal(parse_n(huge, SPF_RECORD_MAX + 1, &rec, &error), -1);
	/* At the limit, many terms: parses, bounded. */
	for (size_t i = 7; i + 1 < SPF_RECORD_MAX; i += 2)
		huge[i] = 'a';
	assert_int_equal(parse_n(huge, SPF_RECORD_MAX, &rec, &error), 0);
	assert_int_equal(rec->nterms, (SPF_RECORD_MAX - 7) / 2);
	spf_record_free(&rec);
	free(huge);
}

/* Every prefix of these parses or fails cleanly, and the same way twice. */
static void test_prefixes(void **state)
{
	static const char *const recs[] = {
		"v=spf1 +all -include:_spf.example.com ~a ?a:mail.example.com/24//64 redirect=x.example",
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{ir}.%{v}.%{d2}.bl exp=%{l}.x.example",
		"v=spf1 mx:%{d}/27 ptr:%{D2R+-}.example moo=%{s} -all",
	};
	(void)state;

	for (size_t r = 0; r < sizeof(recs) / sizeof(recs[0]); r++) {
		size_t len = strlen(recs[r]);
		for (size_t n = 0; n <= len; n++) {
			struct spf_record *a = NULL, *b = NULL;
			const char *ea, *eb;
			int ra = parse_n(recs[r], n, &a, &ea);
			char save[256];
			snprintf(save, sizeof(save), "%s", ra < 0 ? ea : "");
			int rb = parse_n(recs[r], n, &b, &eb);
			assert_int_equal(ra, rb);
			if (ra == 0) {
				assert_int_equal(a->nterms, b->nterms);
				for (size_t i = 0; i < a->nterms; i++)
					assert_string_equal(a->terms[i].text, b->terms[i].text);
			} else {
				assert_string_equal(save, eb);
			}
			spf_record_free(&a);
			spf_record_free(&b);
		}
	}
}

/* ---------------------------------------------------------------- macros */

static void macro_ok(const char *s, enum spf_macro_kind kind)
{
	const char *error = NULL;
	if (spf_macro_check(s, strlen(s), kind, &error) != 0)
		fail_msg("\"%s\" should be a good macro string: %s", s, error);
}

static void macro_bad(const char *s, enum spf_macro_kind kind)
{
	const char *error = NULL;
	if (spf_macro_check(s, strlen(s), kind, &error) == 0)
		fail_msg("\"%s\" should be a bad macro string", s);
	assert_non_null(error);
}

static void test_macro_syntax(void **state)
{
	(void)state;
	macro_ok("example.com", SPF_MACRO_DOMAIN);
	macro_ok("example.com.", SPF_MACRO_DOMAIN);
	macro_ok("%{d}", SPF_MACRO_DOMAIN);
	macro_ok("foo.%{d}", SPF_MACRO_DOMAIN);
	macro_ok("%{d}.com", SPF_MACRO_DOMAIN);
	macro_ok("x.1-2", SPF_MACRO_DOMAIN);                  /* toplabel with a hyphen, no letter */
	macro_ok("x.a1", SPF_MACRO_DOMAIN);
	macro_ok("%{S}%{L}%{O}%{D}%{I}%{P}%{H}%{V}.x", SPF_MACRO_DOMAIN);
	macro_ok("%{d2}%{dr}%{d2r}%{d10R}%{l-}%{l.-+,/_=}%{l1r-}%{d007}.x", SPF_MACRO_DOMAIN);
	macro_ok("%%%_%-", SPF_MACRO_DOMAIN);                  /* domain-end may be "%%" etc. */
	macro_ok("a.b.%-", SPF_MACRO_DOMAIN);
	macro_ok("", SPF_MACRO_MODIFIER);
	macro_ok("anything!~%{s}", SPF_MACRO_MODIFIER);
	macro_ok("Connections from %{c} at %{t} to %{r} not authorized.", SPF_MACRO_EXPLAIN);
	macro_ok("", SPF_MACRO_EXPLAIN);

	macro_bad("", SPF_MACRO_DOMAIN);
	macro_bad("com", SPF_MACRO_DOMAIN);
	macro_bad("com.", SPF_MACRO_DOMAIN);
	macro_bad(".", SPF_MACRO_DOMAIN);
	macro_bad("x.123", SPF_MACRO_DOMAIN);
	macro_bad("x.-a", SPF_MACRO_DOMAIN);
	macro_bad("x.a-", SPF_MACRO_DOMAIN);
	macro_bad("x.a_b", SPF_MACRO_DOMAIN);
	macro_bad("%{d}com", SPF_MACRO_DOMAIN);
	macro_bad("%{d}.", SPF_MACRO_DOMAIN);
	macro_bad("x.com..", SPF_MACRO_DOMAIN);
	macro_bad("%{c}.x", SPF_MACRO_DOMAIN);
	macro_bad("%{r}.x", SPF_MACRO_DOMAIN);
	macro_bad("%{T}.x", SPF_MACRO_DOMAIN);
	macro_bad("%{t}", SPF_MACRO_MODIFIER);
	macro_bad("%{x}.x", SPF_MACRO_DOMAIN);
	macro_bad("%{d0}.x", SPF_MACRO_DOMAIN);
	macro_bad("%{d00}.x", SPF_MACRO_DOMAIN);
	macro_bad("%{dr2}.x", SPF_MACRO_DOMAIN);               /* digits before "r" */
	macro_bad("%{d;}.x", SPF_MACRO_DOMAIN);
	macro_bad("%{d.x", SPF_MACRO_DOMAIN);
	macro_bad("%d.x", SPF_MACRO_DOMAIN);
	macro_bad("x.com%", SPF_MACRO_DOMAIN);
	macro_bad("a b.com", SPF_MACRO_DOMAIN);                /* SP only in explanations */
	macro_bad("a\tb", SPF_MACRO_EXPLAIN);
	macro_bad("line\r\nbreak", SPF_MACRO_EXPLAIN);
	macro_bad("caf\xc3\xa9", SPF_MACRO_EXPLAIN);
	{
		const char *error = NULL;
		assert_int_equal(spf_macro_check("a\0b.com", 7, SPF_MACRO_DOMAIN, &error), -1);
		assert_int_equal(spf_macro_check("%{d", 2, SPF_MACRO_DOMAIN, &error), -1);
		assert_int_equal(spf_macro_check("nul\0x", 5, SPF_MACRO_EXPLAIN, &error), -1);
	}
	assert_true(spf_macro_uses_p("%{p}"));
	assert_true(spf_macro_uses_p("x.%{P2}.y"));
	assert_false(spf_macro_uses_p("%%{p}"));
	assert_false(spf_macro_uses_p("p.%{d}"));
	assert_false(spf_macro_uses_p("%"));
}

static const struct spf_macro_ctx rfc_ctx = {
	.s = "strong-bad@email.example.com", .l = "strong-bad", .o = "email.example.com",
	.d = "email.example.com", .i = "192.0.2.3", .p = "mx.example.org", .h = "mx.example.org",
	.c = "192.0.2.3", .r = "example.net", .t = "1234567890", .v = "in-addr",
};

static void expands(const struct spf_macro_ctx *ctx, const char *in, enum spf_macro_kind kind,
    const char *want)
{
	char out[SPF_MACRO_OUT];
	const char *error = NULL;

	if (spf_macro_check(in, strlen(in), kind, &error) != 0)
		fail_msg("\"%s\": %s", in, error);
	size_t n = spf_macro_expand(in, kind, ctx, out);
	assert_int_equal(n, strlen(out));
	if (strcmp(out, want) != 0)
		fail_msg("\"%s\" expanded to \"%s\", not \"%s\"", in, out, want);
}

/* RFC 7208 §7.4, the examples, in order. */
static void test_macro_rfc_examples(void **state)
{
	(void)state;
	const enum spf_macro_kind X = SPF_MACRO_EXPLAIN;
	expands(&rfc_ctx, "%{s}", X, "strong-bad@email.example.com");
	expands(&rfc_ctx, "%{o}", X, "email.example.com");
	expands(&rfc_ctx, "%{d}", X, "email.example.com");
	expands(&rfc_ctx, "%{d4}", X, "email.example.com");
	expands(&rfc_ctx, "%{d3}", X, "email.example.com");
	expands(&rfc_ctx, "%{d2}", X, "example.com");
	expands(&rfc_ctx, "%{d1}", X, "com");
	expands(&rfc_ctx, "%{dr}", X, "com.example.email");
	expands(&rfc_ctx, "%{d2r}", X, "example.email");
	expands(&rfc_ctx, "%{l}", X, "strong-bad");
	expands(&rfc_ctx, "%{l-}", X, "strong.bad");
	expands(&rfc_ctx, "%{lr}", X, "strong-bad");
	expands(&rfc_ctx, "%{lr-}", X, "bad.strong");
	expands(&rfc_ctx, "%{l1r-}", X, "strong");
	const enum spf_macro_kind D = SPF_MACRO_DOMAIN;
	expands(&rfc_ctx, "%{ir}.%{v}._spf.%{d2}", D, "3.2.0.192.in-addr._spf.example.com");
	expands(&rfc_ctx, "%{lr-}.lp._spf.%{d2}", D, "bad.strong.lp._spf.example.com");
	expands(&rfc_ctx, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", D,
	    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	expands(&rfc_ctx, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", D,
	    "3.2.0.192.in-addr.strong.lp._spf.example.com");
	expands(&rfc_ctx, "%{d2}.trusted-domains.example.net", D,
	    "example.com.trusted-domains.example.net");

	struct spf_macro_ctx six = rfc_ctx;
	six.i = "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1";
	six.v = "ip6";
	expands(&six, "%{ir}.%{v}._spf.%{d2}", D,
	    "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com");
}

static void test_macro_more(void **state)
{
	(void)state;
	const enum spf_macro_kind X = SPF_MACRO_EXPLAIN, D = SPF_MACRO_DOMAIN;
	expands(&rfc_ctx, "%{p}", X, "mx.example.org");
	expands(&rfc_ctx, "%{p2}", X, "example.org");
	expands(&rfc_ctx, "%{p2}.trusted-domains.example.net.", D,
	    "example.org.trusted-domains.example.net");     /* the final dot goes */
	expands(&rfc_ctx, "%{c} %{r} %{t} %{h} %{v}", X,
	    "192.0.2.3 example.net 1234567890 mx.example.org in-addr");
	expands(&rfc_ctx, "%%%_%-", X, "% %20");
	expands(&rfc_ctx, "macro%%percent%_%_space%-url-space.example.com", D,
	    "macro%percent  space%20url-space.example.com");
	expands(&rfc_ctx, "%{d99}", X, "email.example.com");
	expands(&rfc_ctx, "%{d99999999999999}", X, "email.example.com");
	expands(&rfc_ctx, "%{d99r}", X, "com.example.email");
	expands(&rfc_ctx, "%{d1r}", X, "email");
	macro_bad("%{s.@}", X);                                        /* "@" is no delimiter */
	expands(&rfc_ctx, "%{s1}", X, "com");
	expands(&rfc_ctx, "%{s=}", X, "strong-bad@email.example.com");
	expands(&rfc_ctx, "%{l2r+-}.user", X, "bad.strong.user");

	/* Several delimiters; empty parts are kept. */
	struct spf_macro_ctx c2 = rfc_ctx;
	c2.l = "foo-bar+zip+quux";
	expands(&c2, "%{l2r+-}", X, "bar.foo");
	expands(&c2, "%{l+-}", X, "foo.bar.zip.quux");
	expands(&c2, "%{lr+}", X, "quux.zip.foo-bar");
	c2.l = "a..b";
	expands(&c2, "%{lr}", X, "b..a");
	expands(&c2, "%{l2}", X, ".b");
	c2.l = "";
	expands(&c2, "[%{l}][%{lr}][%{l1}]", X, "[][][]");

	/* §7.3: upper case letters are URL-escaped (RFC 3986 unreserved kept). */
	struct spf_macro_ctx c3 = rfc_ctx;
	c3.l = "~jack&jill=up-a_b3.c";
	expands(&c3, "http://example.com/why.html?l=%{L}", X,
	    "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c");
	c3.s = "a b/c\"d@e";
	expands(&c3, "%{S}", X, "a%20b%2Fc%22d%40e");
	expands(&c3, "%{s}", X, "a b/c\"d@e");
	c3.h = "JUMPIN' JUPITER";
	expands(&c3, "%{H}", D, "JUMPIN%27%20JUPITER");
}

/* A 253-octet cut by a simple reference: whole expansion, then drop labels. */
static void reference_cut(const char *full, char *want, size_t size)
{
	size_t len = strlen(full), start = 0;

	if (len > 0 && full[len - 1] == '.')
		len--;
	while (len - start > 253) {
		const char *dot = memchr(full + start, '.', len - start);
		if (dot == NULL) {
			start = len - 253;
			break;
		}
		start = (size_t)(dot - full) + 1;
	}
	snprintf(want, size, "%.*s", (int)(len - start), full + start);
}

static void test_macro_truncation(void **state)
{
	(void)state;
	/* The suite's "somewhat long" exp: 258 octets lose "foobar.". */
	struct spf_macro_ctx c = rfc_ctx;
	c.o = "somewhat.long.exp.example.com";
	expands(&c, "foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com", SPF_MACRO_DOMAIN,
	    "somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp."
	    "example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat."
	    "long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com."
	    "example.com");

	/* Many macros and long literals, against the reference, for several lengths. */
	static char spec[70000], full[400000], want[400], out[SPF_MACRO_OUT];
	unsigned seed = 7;
	for (int round = 0; round < 200; round++) {
		size_t n = 0, f = 0;
		int parts = 1 + round * 7;
		for (int k = 0; k < parts; k++) {
			seed = seed * 1103515245u + 12345u;
			switch ((seed >> 16) % 4) {
			case 0:
				n += (size_t)sprintf(spec + n, "%%{d}.");
				f += (size_t)sprintf(full + f, "%s.", c.d);
				break;
			case 1:
				n += (size_t)sprintf(spec + n, "%%{l}-x.");
				f += (size_t)sprintf(full + f, "%s-x.", c.l);
				break;
			case 2: {
				int len = 1 + (int)((seed >> 8) % 70);
				memset(spec + n, 'q', (size_t)len);
				memset(full + f, 'q', (size_t)len);
				n += (size_t)len;
				f += (size_t)len;
				spec[n++] = '.';
				full[f++] = '.';
				break;
			}
			default:
				n += (size_t)sprintf(spec + n, "%%{ir}.");
				f += (size_t)sprintf(full + f, "3.2.0.192.");
				break;
			}
		}
		n += (size_t)sprintf(spec + n, "example.com%s", round % 2 ? "." : "");
		f += (size_t)sprintf(full + f, "example.com%s", round % 2 ? "." : "");
		spec[n] = full[f] = '\0';
		reference_cut(full, want, sizeof(want));
		size_t got = spf_macro_expand(spec, SPF_MACRO_DOMAIN, &c, out);
		assert_true(got <= 253);
		assert_string_equal(out, want);
	}

	/* One huge label: never more than 253 octets, whatever it is. */
	memset(spec, 'z', 5000);
	strcpy(spec + 5000, ".com");
	assert_true(spf_macro_expand(spec, SPF_MACRO_DOMAIN, &c, out) <= 253);

	/* Explanations are cut at SPF_EXPLANATION_MAX. */
	for (int i = 0; i < 2000; i++)
		memcpy(spec + 4 * i, "%{S}", 4);
	spec[8000] = '\0';
	size_t got = spf_macro_expand(spec, SPF_MACRO_EXPLAIN, &c, out);
	assert_int_equal(got, SPF_EXPLANATION_MAX);
	assert_int_equal(strlen(out), SPF_EXPLANATION_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_v1),
		cmocka_unit_test(test_mechanisms),
		cmocka_unit_test(test_case_and_spaces),
		cmocka_unit_test(test_modifiers),
		cmocka_unit_test(test_dual_cidr),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_nul_and_long),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_macro_syntax),
		cmocka_unit_test(test_macro_rfc_examples),
		cmocka_unit_test(test_macro_more),
		cmocka_unit_test(test_macro_truncation),
	};

	return cmocka_run_group_tests_name("spf-record", tests, NULL, NULL);
}
