/*
 * Unit tests for dns-packet: reading DNS response packets (RFC 1035 §4.1) into
 * answers, as libunbound hands them over.
 *
 * Packets are built here by hand, compression pointers included, and parsed
 * from exact-size heap copies so ASan catches any read past the end. Every
 * proper prefix of each valid packet must be refused as FORMERR, never crash.
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

#include "dns/dns-private.h"

struct pkt {
	unsigned char b[2048];
	size_t n;
};

static void put8(struct pkt *p, unsigned v)
{
	assert_true(p->n < sizeof(p->b));
	p->b[p->n++] = (unsigned char)v;
}

static void put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

static void put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

/* An uncompressed name from "a.b.c" ("" = the root). */
static void putname(struct pkt *p, const char *name)
{
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t l = dot != NULL ? (size_t)(dot - name) : strlen(name);

		put8(p, (unsigned)l);
		for (size_t i = 0; i < l; i++)
			put8(p, (unsigned char)name[i]);
		name += l + (dot != NULL);
	}
	put8(p, 0);
}

static void putptr(struct pkt *p, size_t off)
{
	put16(p, 0xc000 | (unsigned)off);
}

/* The header and one question; returns the offset of the question's name. */
static size_t begin(struct pkt *p, unsigned rcode, unsigned an, unsigned ns, const char *qname,
		    uint16_t qtype)
{
	p->n = 0;
	put16(p, 0x1234);
	put16(p, 0x8180 | rcode);
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, 0);
	putname(p, qname);
	put16(p, qtype);
	put16(p, 1);
	return 12;
}

/* A record header after its owner name; returns where RDLENGTH goes. */
static size_t rr(struct pkt *p, uint16_t type, uint16_t class, uint32_t ttl)
{
	size_t at;

	put16(p, type);
	put16(p, class);
	put32(p, ttl);
	at = p->n;
	put16(p, 0);
	return at;
}

static void rdlen(struct pkt *p, size_t at)
{
	size_t len = p->n - at - 2;

	p->b[at] = (unsigned char)(len >> 8);
	p->b[at + 1] = (unsigned char)(len & 0xff);
}

static struct dns_answer *parse(const struct pkt *p, size_t len, const char *qname, uint16_t qtype)
{
	unsigned char *copy = malloc(len > 0 ? len : 1);
	struct dns_name q;
	const char *error;
	struct dns_answer *a;

	assert_non_null(copy);
	memcpy(copy, p->b, len);
	assert_int_equal(dns_name_parse(qname, strlen(qname), NULL, &q, &error), 0);
	a = dns_packet_parse(copy, len, &q, qtype);
	free(copy);
	assert_non_null(a);
	return a;
}

/* Every proper prefix is FORMERR (the counts promise more than is there). */
static void prefixes_fail(const struct pkt *p, const char *qname, uint16_t qtype)
{
	for (size_t len = 0; len < p->n; len++) {
		struct dns_answer *a = parse(p, len, qname, qtype);

		if (a->status != DNS_FORMERR)
			fail_msg("prefix of %zu/%zu octets: %s", len, p->n, dns_status_name(a->status));
		dns_answer_unref(&a);
	}
}

static void test_a_compressed(void **state)
{
	struct pkt p;
	size_t q = begin(&p, 0, 2, 0, "Mail.Example.com", DNS_T_A), at;
	struct dns_answer *a;
	char buf[INET_ADDRSTRLEN];

	putptr(&p, q);
	at = rr(&p, DNS_T_A, 1, 300);
	put32(&p, 0xc0000201);
	rdlen(&p, at);
	putptr(&p, q);
	at = rr(&p, DNS_T_A, 1, 100);
	put32(&p, 0xc0000202);
	rdlen(&p, at);
	a = parse(&p, p.n, "mail.example.com", DNS_T_A);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->ttl, 100);
	assert_string_equal(inet_ntop(AF_INET, &a->rr[0].u.a, buf, sizeof(buf)), "192.0.2.1");
	assert_string_equal(inet_ntop(AF_INET, &a->rr[1].u.a, buf, sizeof(buf)), "192.0.2.2");
	assert_int_equal(a->rr[0].ttl, 300);
	assert_false(a->secure);
	dns_answer_unref(&a);
	prefixes_fail(&p, "mail.example.com", DNS_T_A);
}

static void test_cname_chain(void **state)
{
	struct pkt p;
	size_t q = begin(&p, 0, 4, 0, "www.example.com", DNS_T_TXT), at, c1, c2;
	struct dns_answer *a;

	/* Out of order: the target's TXT, then the CNAMEs, then an unrelated TXT. */
	c2 = p.n;
	putname(&p, "target.example.net");
	at = rr(&p, DNS_T_TXT, 1, 500);
	put8(&p, 3);
	put8(&p, 'o');
	put8(&p, 'n');
	put8(&p, 'e');
	put8(&p, 0);
	put8(&p, 3);
	put8(&p, 't');
	put8(&p, 'w');
	put8(&p, 'o');
	rdlen(&p, at);
	putptr(&p, q);
	at = rr(&p, DNS_T_CNAME, 1, 60);
	c1 = p.n;
	put8(&p, 3);
	put8(&p, 'm');
	put8(&p, 'i');
	put8(&p, 'd');
	putptr(&p, q + 4);          /* mid.example.com */
	rdlen(&p, at);
	putptr(&p, c1);
	at = rr(&p, DNS_T_CNAME, 1, 30);
	putptr(&p, c2);
	rdlen(&p, at);
	putptr(&p, q);              /* www itself has no TXT: not reported */
	at = rr(&p, DNS_T_A, 1, 5);
	put32(&p, 0x7f000001);
	rdlen(&p, at);
	a = parse(&p, p.n, "WWW.example.COM", DNS_T_TXT);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 1);
	/* "one", "" and "two": joined with nothing between (dns.h). */
	assert_int_equal(a->rr[0].u.txt.len, 6);
	assert_memory_equal(a->rr[0].u.txt.data, "onetwo", 7);
	assert_int_equal(a->rr[0].u.txt.nstrings, 3);
	assert_int_equal(a->ttl, 30);
	dns_answer_unref(&a);
	/* Asking for the CNAME itself gives it. */
	a = parse(&p, p.n, "www.example.com", DNS_T_CNAME);
	assert_int_equal(a->n, 1);
	assert_string_equal(a->rr[0].u.name, "mid.example.com");
	dns_answer_unref(&a);
	/* NODATA at the chain's end. */
	a = parse(&p, p.n, "www.example.com", DNS_T_MX);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 0);
	assert_int_equal(a->ttl, 0);      /* no SOA: not to be cached */
	dns_answer_unref(&a);
	prefixes_fail(&p, "www.example.com", DNS_T_TXT);
}

static void test_cname_loop(void **state)
{
	struct pkt p;
	size_t q = begin(&p, 0, 2, 0, "a.test", DNS_T_A), at, b;
	struct dns_answer *a;

	putptr(&p, q);
	at = rr(&p, DNS_T_CNAME, 1, 60);
	b = p.n;
	putname(&p, "b.test");
	rdlen(&p, at);
	putptr(&p, b);
	at = rr(&p, DNS_T_CNAME, 1, 60);
	putptr(&p, q);
	rdlen(&p, at);
	a = parse(&p, p.n, "a.test", DNS_T_A);
	assert_int_equal(a->status, DNS_TEMPFAIL);
	assert_non_null(strstr(a->why, "CNAME"));
	dns_answer_unref(&a);
}

static void test_other_types(void **state)
{
	struct pkt p;
	size_t q = begin(&p, 0, 4, 0, "x.test", DNS_T_MX), at;
	struct dns_answer *a;
	char buf[INET6_ADDRSTRLEN];

	putptr(&p, q);
	at = rr(&p, DNS_T_MX, 1, 10);
	put16(&p, 5);
	putptr(&p, q);
	rdlen(&p, at);
	putptr(&p, q);
	at = rr(&p, DNS_T_MX, 1, 10);
	put16(&p, 0);
	put8(&p, 0);                /* null MX (RFC 7505) */
	rdlen(&p, at);
	putptr(&p, q);
	at = rr(&p, DNS_T_MX, 3, 10);   /* class CH: ignored */
	put16(&p, 1);
	put8(&p, 0);
	rdlen(&p, at);
	putptr(&p, q);
	at = rr(&p, DNS_T_AAAA, 1, 10);
	put32(&p, 0x20010db8);
	put32(&p, 0);
	put32(&p, 0);
	put32(&p, 1);
	rdlen(&p, at);
	a = parse(&p, p.n, "x.test", DNS_T_MX);
	assert_int_equal(a->n, 2);
	assert_int_equal(a->rr[0].u.mx.pref, 5);
	assert_string_equal(a->rr[0].u.mx.host, "x.test");
	assert_int_equal(a->rr[1].u.mx.pref, 0);
	assert_string_equal(a->rr[1].u.mx.host, "");
	dns_answer_unref(&a);
	a = parse(&p, p.n, "x.test", DNS_T_AAAA);
	assert_int_equal(a->n, 1);
	assert_string_equal(inet_ntop(AF_INET6, &a->rr[0].u.aaaa, buf, sizeof(buf)),
			    "2001:db8::1");
	dns_answer_unref(&a);
	prefixes_fail(&p, "x.test", DNS_T_MX);

	q = begin(&p, 0, 2, 0, "_25._tcp.x.test", DNS_T_TLSA);
	putptr(&p, q);
	at = rr(&p, DNS_T_TLSA, 1, 10);
	put8(&p, 3);
	put8(&p, 1);
	put8(&p, 1);
	put16(&p, 0xabcd);
	rdlen(&p, at);
	putptr(&p, q);
	at = rr(&p, DNS_T_PTR, 1, 10);
	putname(&p, "we\\ird.test");
	rdlen(&p, at);
	a = parse(&p, p.n, "_25._tcp.x.test", DNS_T_TLSA);
	assert_int_equal(a->n, 1);
	assert_int_equal(a->rr[0].u.tlsa.usage, 3);
	assert_int_equal(a->rr[0].u.tlsa.len, 2);
	assert_int_equal(a->rr[0].u.tlsa.data[0], 0xab);
	dns_answer_unref(&a);
	a = parse(&p, p.n, "_25._tcp.x.test", DNS_T_PTR);
	assert_int_equal(a->n, 1);
	/* Octets that need it are escaped in presentation form. */
	assert_string_equal(a->rr[0].u.name, "we\\\\ird.test");
	dns_answer_unref(&a);
}

static void test_negative(void **state)
{
	struct pkt p;
	size_t at;
	struct dns_answer *a;

	/* NXDOMAIN with an SOA: the negative TTL is min(TTL, MINIMUM), RFC 2308 §5. */
	begin(&p, 3, 0, 1, "nope.example.com", DNS_T_A);
	putname(&p, "example.com");
	at = rr(&p, 6, 1, 900);
	putname(&p, "ns.example.com");
	putname(&p, "hostmaster.example.com");
	put32(&p, 1);
	put32(&p, 2);
	put32(&p, 3);
	put32(&p, 4);
	put32(&p, 120);
	rdlen(&p, at);
	a = parse(&p, p.n, "nope.example.com", DNS_T_A);
	assert_int_equal(a->status, DNS_NXDOMAIN);
	assert_int_equal(a->n, 0);
	assert_int_equal(a->ttl, 120);
	dns_answer_unref(&a);
	prefixes_fail(&p, "nope.example.com", DNS_T_A);
	/* The same as NOERROR: NODATA. */
	p.b[3] = 0x80;
	a = parse(&p, p.n, "nope.example.com", DNS_T_A);
	assert_int_equal(a->status, DNS_OK);
	assert_int_equal(a->n, 0);
	assert_int_equal(a->ttl, 120);
	dns_answer_unref(&a);
	/* SERVFAIL, REFUSED and others are temporary. */
	for (unsigned rcode = 1; rcode < 16; rcode++) {
		if (rcode == 3)
			continue;
		p.b[3] = (unsigned char)(0x80 | rcode);
		a = parse(&p, p.n, "nope.example.com", DNS_T_A);
		assert_int_equal(a->status, DNS_TEMPFAIL);
		assert_non_null(a->why);
		dns_answer_unref(&a);
	}
}

static void test_malformed(void **state)
{
	struct pkt p;
	size_t q, at;
	struct dns_answer *a;

	/* A pointer to itself, and one pointing forward. */
	begin(&p, 0, 1, 0, "a.test", DNS_T_A);
	putptr(&p, p.n);
	at = rr(&p, DNS_T_A, 1, 1);
	put32(&p, 1);
	rdlen(&p, at);
	a = parse(&p, p.n, "a.test", DNS_T_A);
	assert_int_equal(a->status, DNS_FORMERR);
	dns_answer_unref(&a);
	begin(&p, 0, 1, 0, "a.test", DNS_T_A);
	putptr(&p, p.n + 2);
	putname(&p, "a.test");
	a = parse(&p, p.n, "a.test", DNS_T_A);
	assert_int_equal(a->status, DNS_FORMERR);
	dns_answer_unref(&a);
	/* An A record of 5 octets; a TXT string longer than its record. */
	q = begin(&p, 0, 1, 0, "a.test", DNS_T_A);
	putptr(&p, q);
	at = rr(&p, DNS_T_A, 1, 1);
	put32(&p, 1);
	put8(&p, 1);
	rdlen(&p, at);
	a = parse(&p, p.n, "a.test", DNS_T_A);
	assert_int_equal(a->status, DNS_FORMERR);
	dns_answer_unref(&a);
	q = begin(&p, 0, 1, 0, "a.test", DNS_T_TXT);
	putptr(&p, q);
	at = rr(&p, DNS_T_TXT, 1, 1);
	put8(&p, 5);
	put8(&p, 'x');
	rdlen(&p, at);
	put8(&p, 'y');              /* the packet goes on, the record does not */
	put8(&p, 'y');
	put8(&p, 'y');
	put8(&p, 'y');
	a = parse(&p, p.n, "a.test", DNS_T_TXT);
	assert_int_equal(a->status, DNS_FORMERR);
	dns_answer_unref(&a);
	/* A name over 255 octets, built from pointers to long labels. */
	begin(&p, 0, 1, 0, "a.test", DNS_T_A);
	{
		size_t prev = 0;

		for (int i = 0; i < 5; i++) {
			size_t here = p.n;

			put8(&p, 63);
			for (int k = 0; k < 63; k++)
				put8(&p, 'x');
			if (i == 0)
				put8(&p, 0);
			else
				putptr(&p, prev);
			prev = here;
		}
		putptr(&p, prev);
	}
	at = rr(&p, DNS_T_A, 1, 1);
	put32(&p, 1);
	rdlen(&p, at);
	a = parse(&p, p.n, "a.test", DNS_T_A);
	assert_int_equal(a->status, DNS_FORMERR);
	dns_answer_unref(&a);
	/* Extended label types (0x40, 0x80) are refused. */
	begin(&p, 0, 1, 0, "a.test", DNS_T_A);
	put8(&p, 0x41);
	put8(&p, 0);
	a = parse(&p, p.n, "a.test", DNS_T_A);
	assert_int_equal(a->status, DNS_FORMERR);
	dns_answer_unref(&a);
	/* Too short for a header. */
	a = parse(&p, 11, "a.test", DNS_T_A);
	assert_int_equal(a->status, DNS_FORMERR);
	dns_answer_unref(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_compressed),
		cmocka_unit_test(test_cname_chain),
		cmocka_unit_test(test_cname_loop),
		cmocka_unit_test(test_other_types),
		cmocka_unit_test(test_negative),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
