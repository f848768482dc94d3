/*
 * Unit tests for lib/netaddr: numeric address parsing (and what it refuses),
 * IPv4-mapped normalisation, canonical formatting, masks, CIDR prefixes and
 * lists, containment, and round trips.
 *
 * These parsers take complete NUL-terminated strings, not streams, so instead of
 * byte-at-a-time feeding every input is copied into a heap block of exactly its
 * size (ASan catches a read past the NUL), every proper prefix of a valid input
 * is parsed too (it must fail or give a valid result, never crash), and lists are
 * re-joined with random separators and must give the same entries.
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
#include <sys/socket.h>

#include "lib/netaddr.h"

/* text in an exact-size heap copy */
static char *
dup_exact(const char *s, size_t len)
{
	char *c = malloc(len + 1);
	assert_non_null(c);
	memcpy(c, s, len);
	c[len] = '\0';
	return c;
}

static int
parse_n(const char *s, size_t len, struct netaddr *a)
{
	char *c = dup_exact(s, len);
	int ret = netaddr_parse(c, a);
	free(c);
	return ret;
}

static int
cidr_n(const char *s, size_t len, struct cidr *cd, const char **error)
{
	char *c = dup_exact(s, len);
	int ret = cidr_parse(c, cd, error);
	free(c);
	return ret;
}

/* s parses, and formats back as want (canonical text). */
static void
expect_addr(const char *s, int family, const char *want)
{
	struct netaddr a, b;
	char buf[NETADDR_TEXT_MAX];

	if (parse_n(s, strlen(s), &a) != 0)
		fail_msg("rejected: %s", s);
	assert_int_equal(a.family, family);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(parse_n(buf, strlen(buf), &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* Every proper prefix fails or parses to something that formats. */
	for (size_t i = 0; i < strlen(s); i++) {
		if (parse_n(s, i, &b) == 0) {
			netaddr_format(&b, buf, sizeof(buf));
			assert_true(buf[0] != '\0');
		}
	}
}

static void
expect_bad_addr(const char *s)
{
	struct netaddr a;

	memset(&a, 0xaa, sizeof(a));
	if (parse_n(s, strlen(s), &a) != -1)
		fail_msg("accepted: %s", s);
	assert_int_equal(a.family, 0); /* zeroed on failure */
}

static void
test_parse_v4(void **state)
{
	struct netaddr a;

	expect_addr("192.0.2.1", 4, "192.0.2.1");
	expect_addr("0.0.0.0", 4, "0.0.0.0");
	expect_addr("255.255.255.255", 4, "255.255.255.255");
	assert_int_equal(netaddr_parse("10.1.2.3", &a), 0);
	static const uint8_t want[16] = { 10, 1, 2, 3 };
	assert_memory_equal(a.bytes, want, 16); /* the rest zero */
}

static void
test_parse_v6(void **state)
{
	expect_addr("2001:db8::1", 6, "2001:db8::1");
	expect_addr("2001:0DB8:0000:0000:0000:0000:0000:0001", 6, "2001:db8::1");
	expect_addr("::", 6, "::");
	expect_addr("::1", 6, "::1");
	expect_addr("fe80::1:2:3:4", 6, "fe80::1:2:3:4");
	expect_addr("2001:db8:0:0:1:0:0:1", 6, "2001:db8::1:0:0:1"); /* RFC 5952 §4.2.3 */
	expect_addr("::1.2.3.4", 6, "::1.2.3.4"); /* IPv4-compatible: not mapped, stays v6 */
}

/* RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is the IPv4 address. */
static void
test_parse_mapped(void **state)
{
	struct netaddr a, b;

	expect_addr("::ffff:192.0.2.1", 4, "192.0.2.1");
	expect_addr("::FFFF:c000:0201", 4, "192.0.2.1");
	assert_int_equal(netaddr_parse("::ffff:192.0.2.1", &a), 0);
	assert_int_equal(netaddr_parse("192.0.2.1", &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_true(netaddr_equal(&a, &b));
	/* ::fffe:… and ::1:ffff:… are ordinary IPv6. */
	expect_addr("::fffe:192.0.2.1", 6, "::fffe:c000:201");
	expect_addr("0:0:0:0:1:ffff:c000:201", 6, "::1:ffff:c000:201");
}

static void
test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", " ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-1", "01.2.3.4",
		"1.2.3.04", "0x7f.0.0.1", "127.1", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n",
		"1.2.3.4/32", "localhost", "::1%lo", "fe80::1%eth0", "1::2::3", ":::",
		"2001:db8::g", "12345::", "1:2:3:4:5:6:7:8:9", "[::1]", "::ffff:1.2.3",
		"1.2.3.4:25", "-1.2.3.4", "+1.2.3.4",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_addr(bad[i]);
	/* An embedded NUL ends the string: "1.2.3.4\0junk" is 1.2.3.4. */
	struct netaddr a;
	assert_int_equal(parse_n("1.2.3.4\0junk", 12, &a), 0);
}

static void
test_from_sockaddr(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr sa = { .sa_family = AF_UNIX };
	struct netaddr a;
	char buf[NETADDR_TEXT_MAX];

	inet_pton(AF_INET, "198.51.100.9", &sin.sin_addr);
	assert_int_equal(netaddr_from_sockaddr((struct sockaddr *)&sin, &a), 0);
	assert_int_equal(a.family, 4);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "198.51.100.9");

	inet_pton(AF_INET6, "::ffff:198.51.100.9", &sin6.sin6_addr);
	assert_int_equal(netaddr_from_sockaddr((struct sockaddr *)&sin6, &a), 0);
	assert_int_equal(a.family, 4);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "198.51.100.9");

	inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
	assert_int_equal(netaddr_from_sockaddr((struct sockaddr *)&sin6, &a), 0);
	assert_int_equal(a.family, 6);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8::5");

	assert_int_equal(netaddr_from_sockaddr(&sa, &a), -1);
}

static void
test_format_small_buffer(void **state)
{
	struct netaddr a;
	char buf[NETADDR_TEXT_MAX];

	assert_int_equal(netaddr_parse("2001:db8:1234:5678:9abc:def0:1234:5678", &a), 0);
	memset(buf, 'x', sizeof(buf));
	netaddr_format(&a, buf, 10);
	assert_string_equal(buf, "");
	netaddr_format(&a, buf, 0); /* writes nothing */
	assert_string_equal(buf, "");
	/* The longest text fits NETADDR_TEXT_MAX. */
	assert_int_equal(netaddr_parse("ffff:ffff:ffff:ffff:ffff:fffe:255.255.255.255", &a), 0);
	netaddr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "ffff:ffff:ffff:ffff:ffff:fffe:ffff:ffff");
	struct netaddr bad = { .family = 5 };
	netaddr_format(&bad, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void
expect_mask(const char *in, unsigned bits, const char *want)
{
	struct netaddr a, m;
	char buf[NETADDR_TEXT_MAX];

	assert_int_equal(netaddr_parse(in, &a), 0);
	netaddr_mask(&a, bits, &m);
	netaddr_format(&m, buf, sizeof(buf));
	assert_string_equal(buf, want);
	netaddr_mask(&a, bits, &a); /* in place */
	assert_memory_equal(&a, &m, sizeof(a));
}

static void
test_mask(void **state)
{
	expect_mask("192.0.2.255", 24, "192.0.2.0");
	expect_mask("192.0.2.255", 25, "192.0.2.128");
	expect_mask("192.0.2.255", 31, "192.0.2.254");
	expect_mask("192.0.2.255", 32, "192.0.2.255");
	expect_mask("192.0.2.255", 33, "192.0.2.255");
	expect_mask("192.0.2.255", 0, "0.0.0.0");
	expect_mask("255.255.255.255", 1, "128.0.0.0");
	expect_mask("255.255.255.255", 7, "254.0.0.0");
	expect_mask("2001:db8:aaaa:bbbb:cccc::1", 64, "2001:db8:aaaa:bbbb::");
	expect_mask("2001:db8:aaaa:bbff:cccc::1", 56, "2001:db8:aaaa:bb00::");
	expect_mask("2001:db8:aaaa:bbbb:cccc::1", 48, "2001:db8:aaaa::");
	expect_mask("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 127, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
	expect_mask("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_mask("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1000, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	expect_mask("ffff::1", 0, "::");
}

static void
test_loopback(void **state)
{
	static const struct {
		const char *s;
		bool yes;
	} cases[] = {
		{ "127.0.0.1", true }, { "127.255.255.254", true }, { "127.0.0.0", true },
		{ "::1", true }, { "::ffff:127.0.0.1", true }, { "128.0.0.1", false },
		{ "126.255.255.255", false }, { "::", false }, { "::2", false },
		{ "::127.0.0.1", false }, { "1::1", false }, { "10.0.0.1", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct netaddr a;
		assert_int_equal(netaddr_parse(cases[i].s, &a), 0);
		if (netaddr_is_loopback(&a) != cases[i].yes)
			fail_msg("loopback(%s) != %d", cases[i].s, cases[i].yes);
	}
}

static void
expect_cidr(const char *s, const char *want)
{
	struct cidr c, c2;
	const char *error = NULL;
	char buf[CIDR_TEXT_MAX];

	if (cidr_n(s, strlen(s), &c, &error) != 0)
		fail_msg("rejected: %s (%s)", s, error);
	cidr_format(&c, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(cidr_parse(buf, &c2, &error), 0);
	assert_memory_equal(&c, &c2, sizeof(c));
	assert_true(cidr_contains(&c, &c.net));
	for (size_t i = 0; i < strlen(s); i++) {
		if (cidr_n(s, i, &c2, &error) == 0) {
			cidr_format(&c2, buf, sizeof(buf));
			assert_true(buf[0] != '\0');
		} else {
			assert_non_null(error);
		}
	}
}

static void
expect_bad_cidr(const char *s, const char *why)
{
	struct cidr c;
	const char *error = NULL;

	memset(&c, 0xaa, sizeof(c));
	if (cidr_n(s, strlen(s), &c, &error) != -1)
		fail_msg("accepted: %s", s);
	assert_string_equal(error, why);
	assert_int_equal(c.bits, 0);
	assert_int_equal(c.net.family, 0);
}

static void
test_cidr_parse(void **state)
{
	expect_cidr("10.0.0.0/8", "10.0.0.0/8");
	expect_cidr("192.0.2.7", "192.0.2.7/32");
	expect_cidr("192.0.2.7/32", "192.0.2.7/32");
	expect_cidr("0.0.0.0/0", "0.0.0.0/0");
	expect_cidr("2001:db8::/32", "2001:db8::/32");
	expect_cidr("::1", "::1/128");
	expect_cidr("::/0", "::/0");
	expect_cidr("2001:DB8:0::/48", "2001:db8::/48");
	/* Host bits are accepted and cleared. */
	expect_cidr("192.0.2.7/24", "192.0.2.0/24");
	expect_cidr("10.255.255.255/9", "10.128.0.0/9");
	expect_cidr("2001:db8::1/64", "2001:db8::/64");
	expect_cidr("2001:db8:ffff:ffff::/33", "2001:db8:8000::/33");
	/* Mapped prefixes of ≥ 96 bits are IPv4 prefixes. */
	expect_cidr("::ffff:192.0.2.0/120", "192.0.2.0/24");
	expect_cidr("::ffff:192.0.2.9", "192.0.2.9/32");
	expect_cidr("::ffff:0:0/96", "0.0.0.0/0");
	expect_cidr("::ffff:192.0.2.0/95", "::fffe:0:0/95");
	expect_cidr("::ffff:192.0.2.0/80", "::/80");
}

static void
test_cidr_bad(void **state)
{
	expect_bad_cidr("", "Missing IP address.");
	expect_bad_cidr("/8", "Missing IP address.");
	expect_bad_cidr("10.0.0.0/", "Missing prefix length after '/'.");
	expect_bad_cidr("10.0.0.0/33", "Prefix length out of range for IPv4 (0-32).");
	expect_bad_cidr("10.0.0.0/999", "Prefix length out of range for IPv4 (0-32).");
	expect_bad_cidr("10.0.0.0/1000", "Prefix length out of range for IPv4 (0-32).");
	expect_bad_cidr("10.0.0.0/00000000000000000000000000000000000000008", "Prefix length has a leading zero.");
	expect_bad_cidr("2001:db8::/129", "Prefix length out of range for IPv6 (0-128).");
	expect_bad_cidr("10.0.0.0/-1", "Prefix length is not a decimal number.");
	expect_bad_cidr("10.0.0.0/+8", "Prefix length is not a decimal number.");
	expect_bad_cidr("10.0.0.0/ 8", "Prefix length is not a decimal number.");
	expect_bad_cidr("10.0.0.0/8 ", "Prefix length is not a decimal number.");
	expect_bad_cidr("10.0.0.0/8/8", "Prefix length is not a decimal number.");
	expect_bad_cidr("10.0.0.0/0x8", "Prefix length is not a decimal number.");
	expect_bad_cidr("10.0.0.0/08", "Prefix length has a leading zero.");
	expect_bad_cidr("10.0.0.0/00", "Prefix length has a leading zero.");
	expect_bad_cidr("10.0.0/8", "Not a numeric IP address.");
	expect_bad_cidr("example.com/8", "Not a numeric IP address.");
	expect_bad_cidr(" 10.0.0.0/8", "Not a numeric IP address.");
	expect_bad_cidr("fe80::1%eth0/64", "Not a numeric IP address.");
	expect_bad_cidr("0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0/64",
			"Not an IP address (too long).");
}

static void
test_cidr_format_small(void **state)
{
	struct cidr c;
	const char *error;
	char buf[CIDR_TEXT_MAX];

	assert_int_equal(cidr_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", &c, &error), 0);
	cidr_format(&c, buf, sizeof(buf));
	assert_string_equal(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124");
	cidr_format(&c, buf, strlen("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124")); /* one short */
	assert_string_equal(buf, "");
}

static bool
contains(const char *prefix, const char *addr)
{
	struct cidr c;
	struct netaddr a;
	const char *error;

	assert_int_equal(cidr_parse(prefix, &c, &error), 0);
	assert_int_equal(netaddr_parse(addr, &a), 0);
	return cidr_contains(&c, &a);
}

static void
test_cidr_contains(void **state)
{
	assert_true(contains("10.0.0.0/8", "10.255.0.1"));
	assert_false(contains("10.0.0.0/8", "11.0.0.0"));
	assert_false(contains("10.0.0.0/8", "9.255.255.255"));
	assert_true(contains("192.0.2.128/25", "192.0.2.200"));
	assert_false(contains("192.0.2.128/25", "192.0.2.127"));
	assert_true(contains("192.0.2.7", "192.0.2.7"));
	assert_false(contains("192.0.2.7", "192.0.2.6"));
	assert_true(contains("0.0.0.0/0", "203.0.113.1"));
	assert_false(contains("0.0.0.0/0", "2001:db8::1")); /* families differ */
	assert_false(contains("::/0", "203.0.113.1"));
	assert_true(contains("::/0", "2001:db8::1"));
	assert_true(contains("2001:db8::/32", "2001:db8:ffff::1"));
	assert_false(contains("2001:db8::/32", "2001:db9::1"));
	assert_true(contains("2001:db8:0:ff00::/57", "2001:db8:0:ff7f::1"));
	assert_false(contains("2001:db8:0:ff00::/57", "2001:db8:0:ff80::1"));
	/* A mapped client is the IPv4 client. */
	assert_true(contains("192.0.2.0/24", "::ffff:192.0.2.1"));
	assert_true(contains("::ffff:192.0.2.0/120", "192.0.2.1"));
	assert_true(contains("::1", "::1"));
	assert_false(contains("::1", "127.0.0.1"));
}

/* text parses to exactly the prefixes want (formatted), in order. */
static void
expect_list(const char *text, const char *const *want, size_t n)
{
	struct cidr_list l = { 0 };
	const char *error = NULL;
	char *c = dup_exact(text, strlen(text));
	char buf[CIDR_TEXT_MAX];

	if (cidr_list_parse(c, &l, &error) != 0)
		fail_msg("rejected: '%s' (%s)", text, error);
	free(c);
	assert_int_equal(l.n, n);
	if (n == 0)
		assert_null(l.v);
	for (size_t i = 0; i < n; i++) {
		cidr_format(&l.v[i], buf, sizeof(buf));
		assert_string_equal(buf, want[i]);
		assert_true(cidr_list_contains(&l, &l.v[i].net));
	}
	cidr_list_free(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
}

static void
expect_bad_list(const char *text, const char *why)
{
	struct cidr_list l = { (struct cidr *)&l, 99 }; /* junk: overwritten */
	const char *error = NULL;
	char *c = dup_exact(text, strlen(text));

	if (cidr_list_parse(c, &l, &error) != -1)
		fail_msg("accepted: '%s'", text);
	free(c);
	assert_string_equal(error, why);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
}

static void
test_list_parse(void **state)
{
	static const char *const two[] = { "10.0.0.0/8", "192.168.0.0/16" };
	static const char *const three[] = { "10.0.0.0/8", "::1/128", "2001:db8::/32" };

	expect_list("", NULL, 0);
	expect_list(" \t\r\n ", NULL, 0);
	expect_list("10.0.0.0/8,192.168.0.0/16", two, 2);
	expect_list("10.0.0.0/8, 192.168.0.0/16", two, 2);
	expect_list("10.0.0.0/8 192.168.0.0/16", two, 2);
	expect_list("  10.0.0.0/8 ,\t192.168.0.0/16\n", two, 2);
	expect_list("10.1.2.3/8 , 192.168.7.7/16", two, 2);
	expect_list("10.0.0.0/8 ::1, 2001:db8::/32", three, 3);
	static const char *const one[] = { "127.0.0.1/32" };
	expect_list("127.0.0.1", one, 1);
}

static void
test_list_bad(void **state)
{
	expect_bad_list(",", "Empty entry in the address list.");
	expect_bad_list("10.0.0.0/8,", "Empty entry in the address list.");
	expect_bad_list("10.0.0.0/8 , ", "Empty entry in the address list.");
	expect_bad_list(",10.0.0.0/8", "Empty entry in the address list.");
	expect_bad_list("10.0.0.0/8,,192.168.0.0/16", "Empty entry in the address list.");
	expect_bad_list("10.0.0.0/8, ,192.168.0.0/16", "Empty entry in the address list.");
	expect_bad_list("10.0.0.0/8, 10.0.0.0/33",
			"Address list entry '10.0.0.0/33': Prefix length out of range for IPv4 (0-32).");
	expect_bad_list("10.0.0.0/8;192.168.0.0/16",
			"Address list entry '10.0.0.0/8;192.168.0.0/16': Prefix length is not a decimal number.");
	expect_bad_list("localhost", "Address list entry 'localhost': Not a numeric IP address.");
	expect_bad_list("1.2.3.4 \x01\x7f",
			"Address list entry '?" "?': Not a numeric IP address.");
	char longtok[200];
	memset(longtok, 'a', sizeof(longtok) - 1);
	longtok[sizeof(longtok) - 1] = '\0';
	char want[200];
	snprintf(want, sizeof(want), "Address list entry '%.64s...': Not an IP address (too long).",
		 longtok);
	expect_bad_list(longtok, want);
}

/* At most CIDR_LIST_MAX entries; the error frees what was parsed (ASan/leak). */
static void
test_list_bound(void **state)
{
	size_t size = (CIDR_LIST_MAX + 1) * 20;
	char *text = malloc(size);
	struct cidr_list l;
	const char *error;
	size_t len = 0;

	assert_non_null(text);
	for (unsigned i = 0; i < CIDR_LIST_MAX; i++)
		len += (size_t)snprintf(text + len, size - len, "%s10.%u.%u.0/24", i ? "," : "",
					i / 256, i % 256);
	assert_int_equal(cidr_list_parse(text, &l, &error), 0);
	assert_int_equal(l.n, CIDR_LIST_MAX);
	struct netaddr a;
	assert_int_equal(netaddr_parse("10.3.255.77", &a), 0);
	assert_true(cidr_list_contains(&l, &a));
	assert_int_equal(netaddr_parse("10.4.0.1", &a), 0);
	assert_false(cidr_list_contains(&l, &a));
	cidr_list_free(&l);
	cidr_list_free(&l); /* twice is harmless */

	snprintf(text + len, size - len, " 10.99.0.0/16");
	assert_int_equal(cidr_list_parse(text, &l, &error), -1);
	assert_string_equal(error, "More than 1024 entries in the address list.");
	assert_null(l.v);
	free(text);
}

/* The same entries joined by random separators give the same list; every prefix
 * of the text fails or gives a list whose entries are all valid. */
static void
test_list_random_separators(void **state)
{
	static const char *const entries[] = {
		"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1", "172.16.0.0/12",
		"::ffff:198.51.100.0/120", "fe80::/10", "0.0.0.0/0",
	};
	static const char *const seps[] = { ",", " ", ", ", " ,", "\t", " , ", "\n", ",\t " };
	const size_t ne = sizeof(entries) / sizeof(entries[0]);
	struct cidr_list ref, l;
	const char *error;
	char text[512];

	srand(12345);
	for (int round = 0; round < 300; round++) {
		size_t len = 0;
		if (rand() % 2)
			len += (size_t)snprintf(text + len, sizeof(text) - len, "  ");
		for (size_t i = 0; i < ne; i++) {
			const char *sep = i == 0 ? "" : seps[rand() % 8];
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", sep, entries[i]);
		}
		if (rand() % 2)
			len += (size_t)snprintf(text + len, sizeof(text) - len, " \n");
		char *c = dup_exact(text, len);
		assert_int_equal(cidr_list_parse(c, &l, &error), 0);
		free(c);
		if (round == 0) {
			ref = l;
			assert_int_equal(ref.n, ne);
			continue;
		}
		assert_int_equal(l.n, ref.n);
		assert_memory_equal(l.v, ref.v, l.n * sizeof(*l.v));
		cidr_list_free(&l);

		for (size_t cut = 0; cut < len; cut++) {
			c = dup_exact(text, cut);
			if (cidr_list_parse(c, &l, &error) == 0) {
				assert_true(l.n <= ne);
				for (size_t i = 0; i < l.n; i++)
					assert_true(l.v[i].net.family == 4 || l.v[i].net.family == 6);
				cidr_list_free(&l);
			} else {
				assert_non_null(error);
				assert_null(l.v);
			}
			free(c);
		}
	}
	cidr_list_free(&ref);
}

/* Round trip of random addresses and prefixes through text. */
static void
test_round_trip_random(void **state)
{
	srand(777);
	for (int i = 0; i < 20000; i++) {
		struct netaddr a, b;
		struct cidr c, d;
		char buf[CIDR_TEXT_MAX];
		const char *error;

		memset(&a, 0, sizeof(a));
		a.family = rand() % 2 ? 4 : 6;
		for (unsigned k = 0; k < (a.family == 4 ? 4u : 16u); k++)
			a.bytes[k] = (uint8_t)(rand() % 4 == 0 ? 0 : rand());
		if (a.family == 6 && rand() % 8 == 0) /* sometimes mapped-looking */
			memcpy(a.bytes, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
		netaddr_format(&a, buf, sizeof(buf));
		assert_int_equal(netaddr_parse(buf, &b), 0);
		struct netaddr norm = a;
		if (a.family == 6 && memcmp(a.bytes, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
			memset(&norm, 0, sizeof(norm));
			norm.family = 4;
			memcpy(norm.bytes, a.bytes + 12, 4);
		}
		assert_memory_equal(&b, &norm, sizeof(b));

		c.bits = (uint8_t)(rand() % (netaddr_bits(&b) + 1));
		netaddr_mask(&b, c.bits, &c.net);
		cidr_format(&c, buf, sizeof(buf));
		assert_int_equal(cidr_parse(buf, &d, &error), 0);
		assert_memory_equal(&c, &d, sizeof(c));
		assert_true(cidr_contains(&c, &b));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_v4),
		cmocka_unit_test(test_parse_v6),
		cmocka_unit_test(test_parse_mapped),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_from_sockaddr),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_bad),
		cmocka_unit_test(test_cidr_format_small),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_list_parse),
		cmocka_unit_test(test_list_bad),
		cmocka_unit_test(test_list_bound),
		cmocka_unit_test(test_list_random_separators),
		cmocka_unit_test(test_round_trip_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
