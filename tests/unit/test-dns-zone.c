/*
 * Unit tests for the static zone (dns-zone-parse.c, dns-zone.c), names
 * (dns-name.c), answers (dns-answer.c) and views (dns-view.c).
 *
 * Zone texts are parsed from exact-size heap copies with no NUL after them, so
 * ASan catches any read past len; every zone is also parsed with CRLF line ends
 * and must answer the same. Lookups assert exact statuses, counts, TTLs and
 * record data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns/dns.h"

/* Parses text (exact-size copy); NULL with *error on failure. */
static struct dns_zone *parse_n(const char *text, size_t len, const char **error)
{
	char *copy = malloc(len > 0 ? len : 1);
	struct dns_zone *z;

	assert_non_null(copy);
	memcpy(copy, text, len);
	*error = NULL;
	z = dns_zone_parse(copy, len, error);
	free(copy);
	if (z == NULL)
		assert_non_null(*error);
	return z;
}

static struct dns_zone *parse_ok(const char *text)
{
	const char *error;
	struct dns_zone *z = parse_n(text, strlen(text), &error);

	if (z == NULL)
		fail_msg("zone did not parse: %s", error);
	return z;
}

/* The same text with every "\n" turned into "\r\n". */
static struct dns_zone *parse_crlf(const char *text)
{
	size_t len = strlen(text), n = 0;
	char *crlf = malloc(2 * len + 1);
	const char *error;
	struct dns_zone *z;

	assert_non_null(crlf);
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n')
			crlf[n++] = '\r';
		crlf[n++] = text[i];
	}
	z = parse_n(crlf, n, &error);
	free(crlf);
	if (z == NULL)
		fail_msg("CRLF zone did not parse: %s", error);
	return z;
}

/* Expects a parse error whose sentence contains want. */
static void parse_err(const char *text, const char *want)
{
	const char *error;
	struct dns_zone *z = parse_n(text, strlen(text), &error);

	if (z != NULL) {
		dns_zone_free(&z);
		fail_msg("zone parsed but should not have: %s", text);
	}
	if (strstr(error, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", error, want);
}

static struct dns_answer *look(const struct dns_zone *z, const char *name, uint16_t type,
			       enum dns_status status, size_t n)
{
	struct dns_answer *a = dns_zone_lookup(z, name, type);

	assert_non_null(a);
	if (a->status != status || a->n != n)
		fail_msg("%s %s: got %s n=%zu (%s), want %s n=%zu", name, dns_type_name(type),
			 dns_status_name(a->status), a->n, a->why ? a->why : "-",
			 dns_status_name(status), n);
	assert_int_equal(a->refs, 1);
	assert_false(a->secure);
	return a;
}

static void expect(const struct dns_zone *z, const char *name, uint16_t type,
		   enum dns_status status, size_t n)
{
	struct dns_answer *a = look(z, name, type, status, n);

	dns_answer_unref(&a);
	assert_null(a);
}

static void expect_txt(const struct dns_zone *z, const char *name, uint16_t type,
		       const char *data, size_t len, unsigned nstrings)
{
	struct dns_answer *a = look(z, name, type, DNS_OK, 1);

	assert_int_equal(a->rr[0].type, type);
	assert_int_equal(a->rr[0].u.txt.len, len);
	assert_int_equal(a->rr[0].u.txt.nstrings, nstrings);
	assert_memory_equal(a->rr[0].u.txt.data, data, len);
	assert_int_equal(a->rr[0].u.txt.data[len], '\0');
	dns_answer_unref(&a);
}

static void expect_a(const struct dns_zone *z, const char *name, const char *addr, uint32_t ttl)
{
	struct dns_answer *a = look(z, name, DNS_T_A, DNS_OK, 1);
	char buf[INET_ADDRSTRLEN];

	assert_string_equal(inet_ntop(AF_INET, &a->rr[0].u.a, buf, sizeof(buf)), addr);
	/* The answer's TTL: the record's, or less after CNAMEs. */
	assert_true(a->rr[0].ttl >= ttl);
	assert_int_equal(a->ttl, ttl);
	dns_answer_unref(&a);
}

/* ------------------------------------------------------------------ syntax */

static const char basic_zone[] =
	"; a comment line\n"
	"$ORIGIN example.com.\n"
	"$TTL 3600\n"
	"@            IN TXT  \"v=spf1 \" \"-all\"\n"
	"             MX 10 mail\n"
	"             MX 20 mail2.example.net.\n"
	"mail    60   IN A    192.0.2.1\n"
	"mail2   IN   120 A   192.0.2.2 ; class before TTL\n"
	"v6           AAAA    2001:db8::1\n"
	"1.2.0.192.in-addr.arpa. PTR mail\n"
	"alias        CNAME   mail\n"
	"sub          NS      ns1.sub\n"
	"_25._tcp.mail TLSA 3 1 1 ( 0123456789abcdef\n"
	"                           0123456789ABCDEF )\n"
	"spf          SPF     \"v=spf1 a -all\"\n"
	"words        TXT     v=spf1 ip4:192.0.2.0/24 -all\n"
	"empty        TXT     \"\"\n"
	"esc          TXT     \"a\\\"b\\\\c\\065\\000d\" \"\" e\\;f\n"
	"multi        TXT     ( \"one\"   ; comment inside\n"
	"                       \"two\" )\n"
	"nullmx       MX      0 .\n"
	"units   1h30m TXT    \"x\"\n";

static void test_records(void **state)
{
	struct dns_zone *zones[2] = { parse_ok(basic_zone), parse_crlf(basic_zone) };

	for (int k = 0; k < 2; k++) {
		struct dns_zone *z = zones[k];
		struct dns_answer *a;
		char buf[INET6_ADDRSTRLEN];
		static const unsigned char tlsa[] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
						      0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

		expect_txt(z, "example.com", DNS_T_TXT, "v=spf1 -all", 11, 2);
		a = look(z, "example.com", DNS_T_MX, DNS_OK, 2);
		assert_int_equal(a->rr[0].u.mx.pref, 10);
		assert_string_equal(a->rr[0].u.mx.host, "mail.example.com");
		assert_int_equal(a->rr[1].u.mx.pref, 20);
		assert_string_equal(a->rr[1].u.mx.host, "mail2.example.net");
		assert_int_equal(a->ttl, 3600);
		dns_answer_unref(&a);
		expect_a(z, "mail.example.com", "192.0.2.1", 60);
		expect_a(z, "mail2.example.com", "192.0.2.2", 120);
		a = look(z, "v6.example.com", DNS_T_AAAA, DNS_OK, 1);
		assert_string_equal(inet_ntop(AF_INET6, &a->rr[0].u.aaaa, buf, sizeof(buf)),
				    "2001:db8::1");
		dns_answer_unref(&a);
		a = look(z, "1.2.0.192.in-addr.arpa", DNS_T_PTR, DNS_OK, 1);
		assert_string_equal(a->rr[0].u.name, "mail.example.com");
		dns_answer_unref(&a);
		a = look(z, "alias.example.com", DNS_T_CNAME, DNS_OK, 1);
		assert_string_equal(a->rr[0].u.name, "mail.example.com");
		dns_answer_unref(&a);
		a = look(z, "sub.example.com", DNS_T_NS, DNS_OK, 1);
		assert_string_equal(a->rr[0].u.name, "ns1.sub.example.com");
		dns_answer_unref(&a);
		a = look(z, "_25._tcp.mail.example.com", DNS_T_TLSA, DNS_OK, 1);
		assert_int_equal(a->rr[0].u.tlsa.usage, 3);
		assert_int_equal(a->rr[0].u.tlsa.selector, 1);
		assert_int_equal(a->rr[0].u.tlsa.mtype, 1);
		assert_int_equal(a->rr[0].u.tlsa.len, sizeof(tlsa));
		assert_memory_equal(a->rr[0].u.tlsa.data, tlsa, sizeof(tlsa));
		dns_answer_unref(&a);
		/* SPF (type 99) is its own type: a TXT query does not see it. */
		expect_txt(z, "spf.example.com", DNS_T_SPF, "v=spf1 a -all", 13, 1);
		expect(z, "spf.example.com", DNS_T_TXT, DNS_OK, 0);
		expect_txt(z, "words.example.com", DNS_T_TXT, "v=spf1ip4:192.0.2.0/24-all", 26, 3);
		expect_txt(z, "empty.example.com", DNS_T_TXT, "", 0, 1);
		expect_txt(z, "esc.example.com", DNS_T_TXT, "a\"b\\cA\0de;f", 11, 3);
		expect_txt(z, "multi.example.com", DNS_T_TXT, "onetwo", 6, 2);
		a = look(z, "nullmx.example.com", DNS_T_MX, DNS_OK, 1);
		assert_int_equal(a->rr[0].u.mx.pref, 0);
		assert_string_equal(a->rr[0].u.mx.host, "");
		dns_answer_unref(&a);
		a = look(z, "units.example.com", DNS_T_TXT, DNS_OK, 1);
		assert_int_equal(a->ttl, 5400);
		dns_answer_unref(&a);
		dns_zone_free(&z);
		assert_null(z);
	}
}

static void test_origin_and_ttl_defaults(void **state)
{
	/* No $TTL: an omitted TTL is the previous record's (RFC 1035 §5.1), the
	 * first defaults to 300; names without $ORIGIN are absolute. */
	struct dns_zone *z = parse_ok(
		"a.example 100 A 192.0.2.1\n"
		"b.example A 192.0.2.2\n"
		"$ORIGIN example.org.\n"
		"c A 192.0.2.3\n"
		"$ORIGIN sub\n"                 /* relative to example.org. */
		"d A 192.0.2.4\n"
		"@ A 192.0.2.5\n"
		"e.example.net. A 192.0.2.6\n");
	struct dns_answer *a;

	expect_a(z, "a.example", "192.0.2.1", 100);
	expect_a(z, "b.example", "192.0.2.2", 100);
	expect_a(z, "c.example.org", "192.0.2.3", 100);
	expect_a(z, "d.sub.example.org", "192.0.2.4", 100);
	expect_a(z, "sub.example.org", "192.0.2.5", 100);
	expect_a(z, "e.example.net", "192.0.2.6", 100);
	/* The negative TTL without $TTL is 300. */
	a = look(z, "nothing.example", DNS_T_A, DNS_NXDOMAIN, 0);
	assert_int_equal(a->ttl, 300);
	dns_answer_unref(&a);
	dns_zone_free(&z);

	z = parse_ok("$TTL 1d\nx.test A 192.0.2.9\n");
	expect_a(z, "x.test", "192.0.2.9", 86400);
	a = look(z, "y.test", DNS_T_A, DNS_NXDOMAIN, 0);
	assert_int_equal(a->ttl, 86400);
	dns_answer_unref(&a);
	a = look(z, "x.test", DNS_T_TXT, DNS_OK, 0);
	assert_int_equal(a->ttl, 86400);
	dns_answer_unref(&a);
	dns_zone_free(&z);

	/* An empty zone (or only comments) answers NXDOMAIN for everything. */
	z = parse_ok("; nothing\n\n   \n");
	expect(z, "example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	expect(z, "", DNS_T_A, DNS_NXDOMAIN, 0);
	dns_zone_free(&z);
	z = parse_ok("");
	expect(z, "example.com", DNS_T_TXT, DNS_NXDOMAIN, 0);
	dns_zone_free(&z);
}

static void test_strings_and_names_limits(void **state)
{
	char zone[2048], name[400];
	char s255[256], s256[257];
	struct dns_zone *z;
	struct dns_answer *a;

	memset(s255, 'x', 255);
	s255[255] = '\0';
	memset(s256, 'y', 256);
	s256[256] = '\0';
	snprintf(zone, sizeof(zone), "t.test TXT \"%s\" %s\n", s255, s255);
	z = parse_ok(zone);
	a = look(z, "t.test", DNS_T_TXT, DNS_OK, 1);
	assert_int_equal(a->rr[0].u.txt.len, 510);
	assert_int_equal(a->rr[0].u.txt.nstrings, 2);
	dns_answer_unref(&a);
	dns_zone_free(&z);
	snprintf(zone, sizeof(zone), "t.test TXT \"%s\"\n", s256);
	parse_err(zone, "line 1: a string is longer than 255 octets");
	/* \DDD counts as one octet: 255 of them is fine. */
	{
		char esc[255 * 4 + 1];

		for (int i = 0; i < 255; i++)
			memcpy(esc + 4 * i, "\\065", 4);
		esc[255 * 4] = '\0';
		snprintf(zone, sizeof(zone), "t.test TXT \"%s\"\n", esc);
		z = parse_ok(zone);
		a = look(z, "t.test", DNS_T_TXT, DNS_OK, 1);
		assert_int_equal(a->rr[0].u.txt.len, 255);
		assert_int_equal(a->rr[0].u.txt.data[254], 'A');
		dns_answer_unref(&a);
		dns_zone_free(&z);
	}

	/* A 63-octet label is the most (RFC 1035 §2.3.4). */
	memset(name, 'a', 63);
	snprintf(name + 63, sizeof(name) - 63, ".test");
	snprintf(zone, sizeof(zone), "%s A 192.0.2.1\n", name);
	z = parse_ok(zone);
	expect_a(z, name, "192.0.2.1", 300);
	/* A 64-octet label in a query: not a name (FORMERR), not NXDOMAIN. */
	memset(name, 'a', 64);
	snprintf(name + 64, sizeof(name) - 64, ".test");
	a = look(z, name, DNS_T_A, DNS_FORMERR, 0);
	assert_non_null(a->why);
	assert_non_null(strstr(a->why, "longer than 63"));
	dns_answer_unref(&a);
	dns_zone_free(&z);
	snprintf(zone, sizeof(zone), "ok.test A 192.0.2.1\n%s A 192.0.2.1\n", name);
	parse_err(zone, "line 2: the owner name");

	/* 255 octets in wire form: 4 labels of 61 + "x" label... build 253 chars. */
	{
		char big[300];
		size_t n = 0;

		/* 3 x (63 + dot) + 61 = 253 text octets: 255 in wire form. */
		for (int i = 0; i < 3; i++) {
			memset(big + n, 'b', 63);
			n += 63;
			big[n++] = '.';
		}
		memset(big + n, 'c', 61);
		n += 61;
		big[n] = '\0';
		snprintf(zone, sizeof(zone), "%s. A 192.0.2.7\n", big);
		z = parse_ok(zone);
		expect_a(z, big, "192.0.2.7", 300);
		/* One more octet is too long, in a query and in a zone. */
		big[n] = 'c';
		big[n + 1] = '\0';
		expect(z, big, DNS_T_A, DNS_FORMERR, 0);
		dns_zone_free(&z);
		snprintf(zone, sizeof(zone), "%s. A 192.0.2.7\n", big);
		parse_err(zone, "longer than 255 octets");
	}

	/* Owner names may hold any octet via \DDD, dots and NULs included. */
	z = parse_ok("a\\.b.test TXT dot\n"
		     "a\\000b.test TXT nul\n"
		     "a\\032b.test TXT space\n");
	expect_txt(z, "a\\.b.test", DNS_T_TXT, "dot", 3, 1);
	expect_txt(z, "a\\046b.test", DNS_T_TXT, "dot", 3, 1);
	expect(z, "a.b.test", DNS_T_TXT, DNS_NXDOMAIN, 0);
	expect_txt(z, "a\\000b.test", DNS_T_TXT, "nul", 3, 1);
	expect_txt(z, "a\\ b.test", DNS_T_TXT, "space", 5, 1);
	expect(z, "ab.test", DNS_T_TXT, DNS_NXDOMAIN, 0);
	dns_zone_free(&z);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "a.test TXT \"open\n", "line 1: a quoted string is not closed" },
		{ "a.test A 192.0.2.1\nb.test TXT (\"x\"\n\"y\"\n", "line 2: \"(\" is not closed" },
		{ "a.test A 192.0.2.1 )\n", "line 1: \")\" without \"(\"" },
		{ "a.test TXT ((\"x\"))\n", "line 1: parentheses cannot nest" },
		{ "\n\na.test A 192.0.2\n", "line 3: \"192.0.2\" is not an IPv4 address" },
		{ "a.test AAAA 192.0.2.1\n", "line 1: \"192.0.2.1\" is not an IPv6 address" },
		{ "a.test A\n", "line 1: an A record needs one address" },
		{ "a.test A 192.0.2.1 192.0.2.2\n", "line 1: an A record needs one address" },
		{ "a.test MX 10\n", "line 1: an MX record needs a preference and a host" },
		{ "a.test MX 65536 b.test.\n", "line 1: the MX preference" },
		{ "a.test MX x b.test.\n", "line 1: the MX preference" },
		{ "a.test CNAME\n", "line 1: a CNAME record needs one name" },
		{ "a.test CNAME \"b.test\"\n", "line 1: the target name is quoted" },
		{ "a.test TXT\n", "line 1: a TXT record needs at least one string" },
		{ "a.test TXT \"x\\\"\n", "line 1: a quoted string is not closed" },
		{ "a.test TXT \"\\25\"\n", "line 1: a \\DDD escape needs three digits" },
		{ "a.test TXT \"\\256\"\n", "line 1: a \\DDD escape is above 255" },
		{ "a.test TLSA 3 1 1\n", "line 1: a TLSA record needs" },
		{ "a.test TLSA 3 1 1 abc\n", "line 1: the TLSA data is not a whole number" },
		{ "a.test TLSA 3 1 1 zz\n", "line 1: the TLSA data is not hexadecimal" },
		{ "a.test TLSA 256 1 1 00\n", "line 1: a TLSA field" },
		{ "a.test FOO x\n", "line 1: unknown type \"FOO\"" },
		{ "a.test IN\n", "line 1: the record has no type" },
		{ "a.test CH TXT \"x\"\n", "line 1: only class IN is supported" },
		{ "a.test 99999999999 A 192.0.2.1\n", "line 1: the TTL is not valid" },
		{ "a.test 1x A 192.0.2.1\n", "line 1: the TTL is not valid" },
		{ "  A 192.0.2.1\n", "line 1: the first record has no owner name" },
		{ "a..test A 192.0.2.1\n", "line 1: the owner name \"a..test\" is not valid: " },
		{ "\"a.test\" A 192.0.2.1\n", "line 1: the owner name is quoted" },
		{ "a\\25.test A 192.0.2.1\n", "line 1: the owner name" },
		{ "$INCLUDE other.zone\n", "line 1: $INCLUDE is not supported" },
		{ "$ORIGIN\n", "line 1: $ORIGIN needs one name" },
		{ "$TTL x\n", "line 1: $TTL needs one TTL" },
		{ "$FOO bar\n", "line 1: unknown directive \"$FOO\"" },
		{ "a.test TIMEOUT x\n", "line 1: TIMEOUT takes no data" },
		{ "ok.test A 192.0.2.1\n; c\n\nb.test TXT (\n \"x\"\n ) junk junk2 \"\\999\"\n",
		  "line 4: a \\DDD escape is above 255" },
	};
	static const char nul[] = "a.test TXT \"x\0y\"\n";
	const char *error;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_err(cases[i].text, cases[i].want);
	assert_null(parse_n(nul, sizeof(nul) - 1, &error));
	assert_non_null(strstr(error, "NUL"));
}

/* ---------------------------------------------------------------- lookups */

static const char lookup_zone[] =
	"$ORIGIN example.com.\n"
	"$TTL 600\n"
	"@          TXT   \"v=spf1 -all\"\n"
	"Mixed.Case A     192.0.2.10\n"
	"a.b        A     192.0.2.11\n"         /* b.example.com is an empty non-terminal */
	"c1   100   CNAME c2\n"
	"c2   50    CNAME c3\n"
	"c3   200   A     192.0.2.12\n"
	"dead       CNAME nowhere\n"
	"loop1      CNAME loop2\n"
	"loop2      CNAME loop1\n"
	"self       CNAME self\n"
	"t          TIMEOUT\n"
	"spft       TXT   \"v=spf1 -all\"\n"
	"           TIMEOUT\n"
	"*.w        TXT   \"wild\"\n"
	"x.w        A     192.0.2.13\n"
	"*.cw       CNAME c3\n";

static void chain(char *zone, size_t size, int hops)
{
	size_t n = (size_t)snprintf(zone, size, "$ORIGIN chain.test.\n");

	for (int i = 0; i < hops; i++)
		n += (size_t)snprintf(zone + n, size - n, "h%d CNAME h%d\n", i, i + 1);
	snprintf(zone + n, size - n, "h%d A 192.0.2.99\n", hops);
}

static void test_lookups(void **state)
{
	struct dns_zone *z = parse_ok(lookup_zone);
	struct dns_answer *a;
	char zone[1024];

	/* Case-insensitive, final dot or not (RFC 4343). */
	expect_a(z, "mixed.case.example.com", "192.0.2.10", 600);
	expect_a(z, "MIXED.CASE.EXAMPLE.COM.", "192.0.2.10", 600);
	expect_txt(z, "EXAMPLE.com", DNS_T_TXT, "v=spf1 -all", 11, 1);
	/* NODATA: the name exists, not with this type. */
	a = look(z, "mixed.case.example.com", DNS_T_TXT, DNS_OK, 0);
	assert_int_equal(a->ttl, 600);
	assert_null(a->why);
	dns_answer_unref(&a);
	/* NXDOMAIN, with the negative TTL. */
	a = look(z, "missing.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	assert_int_equal(a->ttl, 600);
	dns_answer_unref(&a);
	expect(z, "a.a.b.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	expect(z, "example.org", DNS_T_A, DNS_NXDOMAIN, 0);
	/* Empty non-terminals exist (RFC 8020): NODATA, and their ancestors too. */
	expect(z, "b.example.com", DNS_T_A, DNS_OK, 0);
	expect(z, "B.Example.Com", DNS_T_TXT, DNS_OK, 0);
	expect(z, "case.example.com", DNS_T_A, DNS_OK, 0);
	expect(z, "com", DNS_T_A, DNS_OK, 0);
	expect(z, "", DNS_T_A, DNS_OK, 0);
	/* CNAME chains are followed; the TTL is the smallest on the way. */
	expect_a(z, "c1.example.com", "192.0.2.12", 50);
	a = look(z, "c1.example.com", DNS_T_A, DNS_OK, 1);
	assert_int_equal(a->rr[0].ttl, 200);
	dns_answer_unref(&a);
	expect_a(z, "c3.example.com", "192.0.2.12", 200);
	a = look(z, "c1.example.com", DNS_T_CNAME, DNS_OK, 1);
	assert_string_equal(a->rr[0].u.name, "c2.example.com");
	assert_int_equal(a->ttl, 100);
	dns_answer_unref(&a);
	a = look(z, "c1.example.com", DNS_T_TXT, DNS_OK, 0);   /* NODATA at the end */
	assert_int_equal(a->ttl, 50);
	dns_answer_unref(&a);
	a = look(z, "dead.example.com", DNS_T_A, DNS_NXDOMAIN, 0);
	dns_answer_unref(&a);
	/* Loops and self-loops are a temporary failure with a reason. */
	a = look(z, "loop1.example.com", DNS_T_A, DNS_TEMPFAIL, 0);
	assert_non_null(strstr(a->why, "CNAME"));
	assert_int_equal(a->ttl, 0);
	dns_answer_unref(&a);
	expect(z, "self.example.com", DNS_T_TXT, DNS_TEMPFAIL, 0);
	/* TIMEOUT: every type it has no records of times out. */
	a = look(z, "t.example.com", DNS_T_A, DNS_TEMPFAIL, 0);
	assert_non_null(a->why);
	dns_answer_unref(&a);
	expect(z, "T.EXAMPLE.COM", DNS_T_TXT, DNS_TEMPFAIL, 0);
	expect(z, "x.t.example.com", DNS_T_TXT, DNS_NXDOMAIN, 0);
	expect_txt(z, "spft.example.com", DNS_T_TXT, "v=spf1 -all", 11, 1);
	expect(z, "spft.example.com", DNS_T_SPF, DNS_TEMPFAIL, 0);
	/* Wildcards (RFC 4592): only for names that do not exist. */
	expect_txt(z, "anything.w.example.com", DNS_T_TXT, "wild", 4, 1);
	expect_txt(z, "a.b.w.example.com", DNS_T_TXT, "wild", 4, 1);
	expect(z, "x.w.example.com", DNS_T_TXT, DNS_OK, 0);
	expect_a(z, "x.w.example.com", "192.0.2.13", 600);
	expect(z, "w.example.com", DNS_T_TXT, DNS_OK, 0);       /* an ENT */
	expect(z, "q.x.w.example.com", DNS_T_TXT, DNS_NXDOMAIN, 0); /* encloser is x.w */
	expect_a(z, "zz.cw.example.com", "192.0.2.12", 200);
	dns_zone_free(&z);

	/* Eight CNAMEs are followed; a ninth is too many. */
	chain(zone, sizeof(zone), 8);
	z = parse_ok(zone);
	expect_a(z, "h0.chain.test", "192.0.2.99", 300);
	dns_zone_free(&z);
	chain(zone, sizeof(zone), 9);
	z = parse_ok(zone);
	expect(z, "h0.chain.test", DNS_T_A, DNS_TEMPFAIL, 0);
	expect_a(z, "h1.chain.test", "192.0.2.99", 300);
	dns_zone_free(&z);
}

static void test_query_names(void **state)
{
	struct dns_zone *z = parse_ok("example.com A 192.0.2.1\n");
	static const char *bad[] = { "a..example.com", ".example.com", "example.com..",
				     "a\\", "a\\25", "a\\999" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dns_answer *a = look(z, bad[i], DNS_T_A, DNS_FORMERR, 0);

		assert_non_null(a->why);
		assert_non_null(strstr(a->why, bad[i]));
		dns_answer_unref(&a);
	}
	expect_a(z, "example.com.", "192.0.2.1", 300);
	expect_a(z, "ex\\097mple.com", "192.0.2.1", 300);
	expect(z, ".", DNS_T_A, DNS_OK, 0);
	dns_zone_free(&z);
}

static void test_load(void **state)
{
	char path[] = "/tmp/test-dns-zone-XXXXXX";
	int fd = mkstemp(path);
	const char *error;
	struct dns_zone *z;
	static const char good[] = "x.test A 192.0.2.1\n";
	static const char bad[] = "x.test A 192.0.2.1\ny.test A nope\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, good, sizeof(good) - 1), sizeof(good) - 1);
	z = dns_zone_load(path, &error);
	assert_non_null(z);
	expect_a(z, "x.test", "192.0.2.1", 300);
	dns_zone_free(&z);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, bad, sizeof(bad) - 1, 0), sizeof(bad) - 1);
	assert_null(dns_zone_load(path, &error));
	assert_non_null(strstr(error, path));
	assert_non_null(strstr(error, "line 2: \"nope\" is not an IPv4 address"));
	close(fd);
	unlink(path);
	assert_null(dns_zone_load(path, &error));
	assert_non_null(strstr(error, path));
	assert_null(dns_zone_load("/", &error));
}

/* ------------------------------------------------------ answers and names */

static void test_answers_and_names(void **state)
{
	struct dns_answer *a = dns_answer_new(DNS_TEMPFAIL, 5, "why not");
	struct dns_answer *b;

	assert_int_equal(a->refs, 1);
	assert_string_equal(a->why, "why not");
	assert_int_equal(a->ttl, 5);
	b = dns_answer_ref(a);
	assert_ptr_equal(a, b);
	assert_int_equal(a->refs, 2);
	dns_answer_unref(&b);
	assert_null(b);
	assert_int_equal(a->refs, 1);
	dns_answer_unref(&a);
	dns_answer_unref(&a);   /* NULL: nothing */

	assert_string_equal(dns_type_name(DNS_T_TXT), "TXT");
	assert_string_equal(dns_type_name(DNS_T_SPF), "SPF");
	assert_string_equal(dns_type_name(DNS_T_TLSA), "TLSA");
	assert_string_equal(dns_type_name(257), "TYPE257");
	assert_int_equal(dns_type_parse("txt"), DNS_T_TXT);
	assert_int_equal(dns_type_parse("Aaaa"), DNS_T_AAAA);
	assert_int_equal(dns_type_parse("MX"), DNS_T_MX);
	assert_int_equal(dns_type_parse("TIMEOUT"), -1);
	assert_int_equal(dns_type_parse(""), -1);
	assert_string_equal(dns_status_name(DNS_OK), "ok");
	assert_string_equal(dns_status_name(DNS_NXDOMAIN), "nxdomain");
	assert_string_equal(dns_status_name(DNS_TEMPFAIL), "tempfail");
	assert_string_equal(dns_status_name(DNS_BOGUS), "bogus");
	assert_string_equal(dns_status_name(DNS_FORMERR), "formerr");
}

/* ------------------------------------------------------------------ views */

static void test_view_with_zone(void **state)
{
	struct dns_zone *z = parse_ok(lookup_zone);
	struct dns_view *v = dns_view_new(z);
	const struct dns_answer *a, *b;
	size_t it = 0;
	const char *name;
	uint16_t type;

	a = dns_view_lookup(v, "example.com", DNS_T_TXT);
	assert_non_null(a);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	/* The same question, any case: the same answer object. */
	b = dns_view_lookup(v, "EXAMPLE.COM.", DNS_T_TXT);
	assert_ptr_equal(a, b);
	assert_int_equal(dns_view_lookups(v), 1);
	a = dns_view_lookup(v, "missing.example.com", DNS_T_A);
	assert_int_equal(a->status, DNS_NXDOMAIN);
	a = dns_view_lookup(v, "t.example.com", DNS_T_A);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	a = dns_view_lookup(v, "a..b", DNS_T_A);
	assert_int_equal(a->status, DNS_FORMERR);
	assert_ptr_equal(dns_view_lookup(v, "a..b", DNS_T_A), a);
	assert_int_equal(dns_view_lookups(v), 4);
	/* Nothing is left for a pump. */
	assert_false(dns_view_question(v, &it, &name, &type));
	dns_view_free(&v);
	assert_null(v);
	dns_zone_free(&z);
}

static void test_view_without_zone(void **state)
{
	struct dns_view *v = dns_view_new(NULL);
	struct dns_answer *ans = dns_answer_new(DNS_NXDOMAIN, 60, NULL);
	const struct dns_answer *a;
	size_t it = 0;
	const char *name;
	uint16_t type;
	char buf[64];

	assert_null(dns_view_lookup(v, "Example.com", DNS_T_TXT));
	assert_null(dns_view_lookup(v, "example.COM.", DNS_T_TXT));   /* deduplicated */
	assert_null(dns_view_lookup(v, "example.com", DNS_T_A));
	/* Invalid names are known at once. */
	a = dns_view_lookup(v, "bad..name", DNS_T_A);
	assert_non_null(a);
	assert_int_equal(a->status, DNS_FORMERR);
	assert_int_equal(dns_view_lookups(v), 3);
	assert_true(dns_view_question(v, &it, &name, &type));
	assert_string_equal(name, "Example.com");
	assert_int_equal(type, DNS_T_TXT);
	assert_true(dns_view_question(v, &it, &name, &type));
	assert_string_equal(name, "example.com");
	assert_int_equal(type, DNS_T_A);
	assert_false(dns_view_question(v, &it, &name, &type));

	assert_int_equal(dns_view_put(v, "EXAMPLE.com", DNS_T_TXT, ans), 0);
	assert_int_equal(ans->refs, 2);
	a = dns_view_lookup(v, "example.com", DNS_T_TXT);
	assert_ptr_equal(a, ans);
	/* A second answer to the same question does not replace the first. */
	{
		struct dns_answer *other = dns_answer_new(DNS_OK, 1, NULL);

		assert_int_equal(dns_view_put(v, "example.com", DNS_T_TXT, other), 0);
		assert_int_equal(other->refs, 1);
		dns_answer_unref(&other);
	}
	assert_ptr_equal(dns_view_lookup(v, "example.com", DNS_T_TXT), ans);
	assert_int_equal(dns_view_put(v, "a..b", DNS_T_TXT, ans), -1);
	it = 0;
	assert_true(dns_view_question(v, &it, &name, &type));
	assert_int_equal(type, DNS_T_A);
	assert_false(dns_view_question(v, &it, &name, &type));
	dns_answer_unref(&ans);

	/* At most DNS_VIEW_QUESTIONS_MAX questions; more are TEMPFAIL at once. */
	for (unsigned i = dns_view_lookups(v); i < DNS_VIEW_QUESTIONS_MAX; i++) {
		snprintf(buf, sizeof(buf), "n%u.example", i);
		assert_null(dns_view_lookup(v, buf, DNS_T_A));
	}
	assert_int_equal(dns_view_lookups(v), DNS_VIEW_QUESTIONS_MAX);
	a = dns_view_lookup(v, "one-more.example", DNS_T_A);
	assert_non_null(a);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	assert_null(dns_view_lookup(v, "n5.example", DNS_T_A));   /* still pending */
	dns_view_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_origin_and_ttl_defaults),
		cmocka_unit_test(test_strings_and_names_limits),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_query_names),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_answers_and_names),
		cmocka_unit_test(test_view_with_zone),
		cmocka_unit_test(test_view_without_zone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
