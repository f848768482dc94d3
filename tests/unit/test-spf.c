/*
 * Unit tests for spf: check_host() of RFC 7208 against small static zones.
 *
 * Every check is run three ways and all three must agree on the result, the
 * reason and the explanation: on a view over the zone (synchronous: the first
 * step must finish), on an empty view filled round by round with every
 * question the step left (what the pump does), and on an empty view given one
 * answer per round, picked at random (the step is resumed many times, and
 * must count every limit exactly once).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "mailauth/spf.h"

struct outcome {
	enum spf_result result;
	char reason[300];
	char explanation[600];
	char domain[300];
	char identity[600];
	unsigned rounds;        /* rounds of questions, answering all each time */
	unsigned questions;     /* distinct questions asked */
};

static struct dns_zone *zone_parse(const char *text)
{
	const char *error = NULL;
	struct dns_zone *z = dns_zone_parse(text, strlen(text), &error);

	if (z == NULL)
		fail_msg("zone did not parse: %s", error);
	return z;
}

static struct spf_check *check_new(const char *ip, const char *sender, const char *helo,
    bool helo_identity)
{
	const char *error = NULL;
	struct spf_check *c = helo_identity ? spf_check_new_helo(ip, helo, "mx.receiver.example", &error) :
	    spf_check_new_mailfrom(ip, helo, sender, "mx.receiver.example", &error);

	if (c == NULL)
		fail_msg("check_new: %s", error);
	return c;
}

static void outcome_fill(struct outcome *o, const struct spf_check *c)
{
	const char *e = spf_check_explanation(c);

	o->result = spf_check_result(c);
	snprintf(o->reason, sizeof(o->reason), "%s", spf_check_reason(c));
	snprintf(o->explanation, sizeof(o->explanation), "%s", e != NULL ? e : "(none)");
	snprintf(o->domain, sizeof(o->domain), "%s", spf_check_domain(c));
	snprintf(o->identity, sizeof(o->identity), "%s", spf_check_identity(c));
}

/* Steps c on an empty view, answering from z: all questions per round, or
 * (one_by_one) one random question per round. */
static void pump_by_hand(const struct dns_zone *z, struct spf_check *c, bool one_by_one,
    unsigned *seed, struct outcome *o)
{
	struct dns_view *v = dns_view_new(NULL);
	unsigned rounds = 0;

	assert_non_null(v);
	while (spf_check_step(v, c) == 0) {
		size_t iter = 0, n = 0, pick;
		const char *name;
		uint16_t type;

		rounds++;
		assert_true(rounds < 5000);
		while (dns_view_question(v, &iter, &name, &type))
			n++;
		assert_true(n > 0);     /* a step that waits has asked something */
		*seed = *seed * 1103515245u + 12345u;
		pick = (*seed >> 16) % n;
		iter = 0;
		for (size_t i = 0; dns_view_question(v, &iter, &name, &type); i++) {
			if (one_by_one && i != pick)
				continue;
			struct dns_answer *a = dns_zone_lookup(z, name, type);
			assert_non_null(a);
			/* dns_view_put keeps the name; copy it first, the iterator's may go. */
			char copy[300];
			snprintf(copy, sizeof(copy), "%s", name);
			assert_int_equal(dns_view_put(v, copy, type, a), 0);
			dns_answer_unref(&a);
			if (one_by_one)
				break;
			iter = 0;       /* the list changed: start again */
		}
	}
	assert_int_equal(spf_check_step(v, c), 1);      /* done stays done */
	o->rounds = rounds;
	o->questions = dns_view_lookups(v);
	dns_view_free(&v);
}

static void run_check(const char *zone, const char *ip, const char *sender, const char *helo,
    bool helo_identity, struct outcome *o)
{
	struct dns_zone *z = zone_parse(zone);
	struct dns_view *v = dns_view_new(z);
	struct spf_check *c = check_new(ip, sender, helo, helo_identity);
	struct outcome all, one;
	unsigned seed = 12345;

	assert_int_equal(spf_check_step(v, c), 1);
	outcome_fill(o, c);
	spf_check_free(&c);
	assert_null(c);
	dns_view_free(&v);

	c = check_new(ip, sender, helo, helo_identity);
	pump_by_hand(z, c, false, &seed, &all);
	outcome_fill(&all, c);
	spf_check_free(&c);
	for (int k = 0; k < 3; k++) {
		c = check_new(ip, sender, helo, helo_identity);
		pump_by_hand(z, c, true, &seed, &one);
		outcome_fill(&one, c);
		spf_check_free(&c);
		assert_int_equal(one.result, o->result);
		assert_string_equal(one.reason, o->reason);
		assert_string_equal(one.explanation, o->explanation);
	}
	assert_int_equal(all.result, o->result);
	assert_string_equal(all.reason, o->reason);
	assert_string_equal(all.explanation, o->explanation);
	o->rounds = all.rounds;
	o->questions = all.questions;
	dns_zone_free(&z);
}

/* Checks the MAIL FROM identity and asserts the result and a part of the reason. */
static void expect(const char *zone, const char *ip, const char *sender, enum spf_result want,
    const char *reason_part, struct outcome *out)
{
	struct outcome o;

	run_check(zone, ip, sender, "helo.example.org", false, &o);
	if (o.result != want)
		fail_msg("%s from %s: %s (%s), not %s", sender, ip, spf_result_name(o.result),
		    o.reason, spf_result_name(want));
	if (reason_part != NULL && strstr(o.reason, reason_part) == NULL)
		fail_msg("%s from %s: the reason \"%s\" lacks \"%s\"", sender, ip, o.reason,
		    reason_part);
	if (out != NULL)
		*out = o;
}

/* ---------------------------------------------------------------- tests */

static void test_results(void **state)
{
	const char *zone =
	    "example.com. TXT \"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~ip4:198.51.100.1 "
	    "?ip4:198.51.100.2 -all\"\n"
	    "example.com. TXT \"some other text\"\n"
	    "nospf.example.com. TXT \"hello\"\n"
	    "empty.example.com. TXT \"v=spf1\"\n"
	    "caps.example.com. TXT \"V=SPF1 IP4:192.0.2.9 -ALL\"\n";
	struct outcome o;
	(void)state;

	expect(zone, "192.0.2.77", "alice@example.com", SPF_RESULT_PASS,
	    "matched ip4:192.0.2.0/24", &o);
	assert_string_equal(o.domain, "example.com");
	assert_string_equal(o.identity, "alice@example.com");
	assert_string_equal(o.explanation, "(none)");
	expect(zone, "2001:db8:1::5", "alice@example.com", SPF_RESULT_PASS, "ip6:2001:db8::/32", NULL);
	expect(zone, "198.51.100.1", "alice@example.com", SPF_RESULT_SOFTFAIL, NULL, NULL);
	expect(zone, "198.51.100.2", "alice@example.com", SPF_RESULT_NEUTRAL, NULL, NULL);
	expect(zone, "198.51.100.3", "alice@EXAMPLE.com.", SPF_RESULT_FAIL, "matched -all", &o);
	assert_string_equal(o.domain, "example.com");
	assert_string_equal(o.explanation,
	    "domain of EXAMPLE.com does not designate 198.51.100.3 as permitted sender");
	/* An IPv4-mapped client is checked as IPv4 (§5). */
	expect(zone, "::ffff:192.0.2.1", "alice@example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "2001:db9::1", "alice@example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "192.0.2.1", "bob@nospf.example.com", SPF_RESULT_NONE, "no SPF record", NULL);
	expect(zone, "192.0.2.1", "bob@nxdomain.example.com", SPF_RESULT_NONE, NULL, NULL);
	expect(zone, "192.0.2.1", "bob@empty.example.com", SPF_RESULT_NEUTRAL,
	    "no mechanism matched", NULL);
	expect(zone, "192.0.2.9", "bob@caps.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "192.0.2.8", "bob@caps.example.com", SPF_RESULT_FAIL, NULL, NULL);
}

static void test_initial_processing(void **state)
{
	const char *zone =
	    "example.com. TXT \"v=spf1 -all exp=why.example.com\"\n"
	    "why.example.com. TXT \"%{l} at %{o} via %{h}: %{s}\"\n"
	    "helo.example.org. TXT \"v=spf1 a -all\"\n"
	    "helo.example.org. A 192.0.2.5\n";
	struct outcome o;
	(void)state;

	/* §4.3: no local-part: "postmaster". */
	expect(zone, "192.0.2.1", "@example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation,
	    "postmaster at example.com via helo.example.org: postmaster@example.com");
	assert_string_equal(o.identity, "postmaster@example.com");
	/* The letters' values are made printable (this goes into an SMTP reply). */
	expect(zone, "192.0.2.1", "caf\xc3\xa9\r\n@example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation,
	    "caf???? at example.com via helo.example.org: caf????@example.com");
	/* The null path checks postmaster@HELO. */
	expect(zone, "192.0.2.5", "", SPF_RESULT_PASS, "matched a", &o);
	assert_string_equal(o.identity, "postmaster@helo.example.org");
	assert_string_equal(o.domain, "helo.example.org");
	expect(zone, "192.0.2.6", "", SPF_RESULT_FAIL, NULL, NULL);
	/* A sender without "@" is a domain. */
	expect(zone, "192.0.2.1", "example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.identity, "postmaster@example.com");
	/* A quoted local-part with "@": the domain follows the last one. */
	expect(zone, "192.0.2.1", "\"a@b\"@example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation,
	    "\"a@b\" at example.com via helo.example.org: \"a@b\"@example.com");

	/* Malformed domains are "none" at once, with no DNS question. */
	static const char *const bad[] = {
		"x@A123456789012345678901234567890123456789012345678901234567890123.example.com",
		"x@A...example.com", "x@.example.com", "x@localhost", "x@[192.0.2.1]", "x@",
		"x@example..com",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect(zone, "192.0.2.1", bad[i], SPF_RESULT_NONE, "not a valid domain name", &o);
		assert_int_equal(o.questions, 0);
	}
	/* 63-octet labels are fine. */
	expect("a12345678901234567890123456789012345678901234567890123456789012.example.com. "
	    "TXT \"v=spf1 -all\"\n", "192.0.2.1",
	    "x@A12345678901234567890123456789012345678901234567890123456789012.example.com",
	    SPF_RESULT_FAIL, NULL, NULL);

	/* The HELO identity (§2.3). */
	run_check(zone, "192.0.2.5", NULL, "helo.example.org", true, &o);
	assert_int_equal(o.result, SPF_RESULT_PASS);
	assert_string_equal(o.identity, "postmaster@helo.example.org");
	run_check(zone, "192.0.2.5", NULL, "OEMCOMPUTER", true, &o);
	assert_int_equal(o.result, SPF_RESULT_NONE);

	const char *error = NULL;
	assert_null(spf_check_new_mailfrom("192.0.2.300", "h.example", "a@b.example", NULL, &error));
	assert_non_null(error);
	assert_null(spf_check_new_helo("example.com", "h.example", NULL, &error));
	assert_null(spf_check_new_helo(NULL, "h.example", NULL, &error));
	assert_null(spf_check_new_helo("fe80::1%eth0", "h.example", NULL, &error));
}

static void test_record_selection(void **state)
{
	const char *zone =
	    "two.example.com. TXT \"v=spf1 -all\"\n"
	    "two.example.com. TXT \"v=spf1 +all\"\n"
	    "ten.example.com. TXT \"v=spf10 +all\"\n"
	    "ten.example.com. TXT \"v=spf1 -all\"\n"
	    "split.example.com. TXT \"v=spf1 ip4:\" \"192.0.2.5 -all\"\n"
	    "nospace.example.com. TXT \"v=spf1\" \"mx -all\"\n"
	    "spfonly.example.com. SPF \"v=spf1 +all\"\n"
	    "spfonly.example.com. A 192.0.2.1\n"
	    "bad.example.com. TXT \"v=spf1 a:foo.example.com -alll\"\n"
	    "timeout.example.com. TIMEOUT\n";
	(void)state;

	expect(zone, "192.0.2.1", "a@two.example.com", SPF_RESULT_PERMERROR, "2 SPF records", NULL);
	expect(zone, "192.0.2.1", "a@ten.example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "192.0.2.5", "a@split.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "192.0.2.5", "a@nospace.example.com", SPF_RESULT_NONE, NULL, NULL);
	/* §4.4: only TXT is asked; type SPF (99) is never used. */
	expect(zone, "192.0.2.1", "a@spfonly.example.com", SPF_RESULT_NONE, NULL, NULL);
	expect(zone, "192.0.2.1", "a@bad.example.com", SPF_RESULT_PERMERROR, "-alll", NULL);
	expect(zone, "192.0.2.1", "a@timeout.example.com", SPF_RESULT_TEMPERROR, "DNS error", NULL);
}

static void test_a_mx(void **state)
{
	const char *zone =
	    "example.com. TXT \"v=spf1 a/24//64 mx:mx.example.com/30 -all\"\n"
	    "example.com. A 192.0.2.10\n"
	    "example.com. AAAA 2001:db8:1:2::10\n"
	    "mx.example.com. MX 10 m1.example.com.\n"
	    "mx.example.com. MX 20 m2.example.com.\n"
	    "mx.example.com. MX 30 nx.example.com.\n"
	    "m1.example.com. A 198.51.100.8\n"
	    "m2.example.com. AAAA 2001:db8:9::1\n"
	    "nullmx.example.com. TXT \"v=spf1 mx -all\"\n"
	    "nullmx.example.com. MX 0 .\n"
	    "tmx.example.com. TXT \"v=spf1 mx -all\"\n"
	    "tmx.example.com. MX 0 timeout.example.com.\n"
	    "timeout.example.com. TIMEOUT\n"
	    "ta.example.com. TXT \"v=spf1 ip4:192.0.2.1 a:timeout.example.com -all\"\n"
	    "ex.example.com. TXT \"v=spf1 exists:%{ir}.bl.example.com -all\"\n"
	    "1.2.0.192.bl.example.com. A 127.0.0.2\n"
	    "B.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.bl.example.com. "
	    "A 127.0.0.2\n";
	struct outcome o;
	(void)state;

	expect(zone, "192.0.2.99", "a@example.com", SPF_RESULT_PASS, "matched a/24//64", NULL);
	expect(zone, "192.0.3.10", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "2001:db8:1:2:ffff::1", "a@example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "2001:db8:1:3::1", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "198.51.100.11", "a@example.com", SPF_RESULT_PASS, "mx:mx.example.com/30", &o);
	/* The MX hosts' addresses are asked in one round (TXT, A, MX, then all hosts). */
	assert_int_equal(o.rounds, 4);
	expect(zone, "198.51.100.12", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	/* IPv6 client: AAAA of the hosts; /30 is the IPv4 length, the IPv6 one is 128. */
	expect(zone, "2001:db8:9::1", "a@example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "2001:db8:9::2", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "192.0.2.1", "a@nullmx.example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "192.0.2.1", "a@tmx.example.com", SPF_RESULT_TEMPERROR, "timeout.example.com",
	    NULL);
	expect(zone, "192.0.2.1", "a@ta.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "192.0.2.2", "a@ta.example.com", SPF_RESULT_TEMPERROR, NULL, NULL);
	expect(zone, "192.0.2.1", "a@ex.example.com", SPF_RESULT_PASS, "exists:", NULL);
	expect(zone, "192.0.2.2", "a@ex.example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "2001:db8::b", "a@ex.example.com", SPF_RESULT_PASS, NULL, NULL);
}

static void test_include(void **state)
{
	const char *zone =
	    "example.com. TXT \"v=spf1 include:pass.example.com include:fail.example.com "
	    "include:soft.example.com include:neutral.example.com -all\"\n"
	    "pass.example.com. TXT \"v=spf1 ip4:192.0.2.1 ?all\"\n"
	    "fail.example.com. TXT \"v=spf1 ip4:192.0.2.2 -all\"\n"
	    "soft.example.com. TXT \"v=spf1 ip4:192.0.2.3 ~all\"\n"
	    "neutral.example.com. TXT \"v=spf1 ?ip4:192.0.2.4 ip4:192.0.2.5\"\n"
	    "none.example.com. TXT \"v=spf1 include:nothing.example.com +all\"\n"
	    "temp.example.com. TXT \"v=spf1 include:timeout.example.com +all\"\n"
	    "perm.example.com. TXT \"v=spf1 include:bad.example.com +all\"\n"
	    "bad.example.com. TXT \"v=spf1 moo\"\n"
	    "timeout.example.com. TIMEOUT\n"
	    "q.example.com. TXT \"v=spf1 ~include:pass.example.com -all\"\n"
	    "deep.example.com. TXT \"v=spf1 -include:d1.example.com +all\"\n"
	    "d1.example.com. TXT \"v=spf1 include:d2.example.com -all\"\n"
	    "d2.example.com. TXT \"v=spf1 redirect=d3.example.com\"\n"
	    "d3.example.com. TXT \"v=spf1 ip4:192.0.2.200 -all\"\n";
	(void)state;

	/* §5.2: pass matches; fail, softfail, neutral do not. */
	expect(zone, "192.0.2.1", "a@example.com", SPF_RESULT_PASS, "include:pass.example.com", NULL);
	expect(zone, "192.0.2.2", "a@example.com", SPF_RESULT_PASS, "include:fail.example.com", NULL);
	expect(zone, "192.0.2.3", "a@example.com", SPF_RESULT_PASS, "include:soft", NULL);
	expect(zone, "192.0.2.5", "a@example.com", SPF_RESULT_PASS, "include:neutral", NULL);
	expect(zone, "192.0.2.4", "a@example.com", SPF_RESULT_FAIL, "matched -all", NULL);
	expect(zone, "192.0.2.9", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	/* none, temperror, permerror. */
	expect(zone, "192.0.2.9", "a@none.example.com", SPF_RESULT_PERMERROR, "has no SPF record", NULL);
	expect(zone, "192.0.2.9", "a@temp.example.com", SPF_RESULT_TEMPERROR, NULL, NULL);
	expect(zone, "192.0.2.9", "a@perm.example.com", SPF_RESULT_PERMERROR, "moo", NULL);
	/* The include's qualifier is the result. */
	expect(zone, "192.0.2.1", "a@q.example.com", SPF_RESULT_SOFTFAIL, NULL, NULL);
	/* Nested, through a redirect within an include. */
	expect(zone, "192.0.2.200", "a@deep.example.com", SPF_RESULT_FAIL, "include:d1", NULL);
	expect(zone, "192.0.2.201", "a@deep.example.com", SPF_RESULT_PASS, "+all", NULL);
}

static void test_redirect_exp(void **state)
{
	const char *zone =
	    "example.com. TXT \"v=spf1 ip4:192.0.2.1 redirect=_spf.example.com exp=orig.example.com\"\n"
	    "_spf.example.com. TXT \"v=spf1 ip4:192.0.2.2 -all exp=%{d}.why.example.com\"\n"
	    "orig.example.com. TXT \"the original\"\n"
	    "_spf.example.com.why.example.com. TXT \"no: %{i} is not %{d} (%{c} %{v} %{r}); see %{L}\"\n"
	    "all.example.com. TXT \"v=spf1 -all redirect=_spf.example.com\"\n"
	    "nowhere.example.com. TXT \"v=spf1 redirect=nothing.example.com\"\n"
	    "loop.example.com. TXT \"v=spf1 ip4:192.0.2.1 redirect=loop.example.com\"\n"
	    "inc.example.com. TXT \"v=spf1 -include:incd.example.com -all\"\n"
	    "incd.example.com. TXT \"v=spf1 +all exp=orig.example.com\"\n"
	    "two.example.com. TXT \"v=spf1 -all exp=twice.example.com\"\n"
	    "twice.example.com. TXT \"one\"\n"
	    "twice.example.com. TXT \"two\"\n"
	    "ctl.example.com. TXT \"v=spf1 -all exp=ctl.why.example.com\"\n"
	    "ctl.why.example.com. TXT \"line\\013\\010break\"\n"
	    "pct.example.com. TXT \"v=spf1 -all exp=pct.why.example.com\"\n"
	    "pct.why.example.com. TXT \"100%\"\n"
	    "nonascii.example.com. TXT \"v=spf1 -all exp=na.why.example.com\"\n"
	    "na.why.example.com. TXT \"caf\\195\\169\"\n"
	    "tmo.example.com. TXT \"v=spf1 -all exp=timeout.example.com\"\n"
	    "timeout.example.com. TIMEOUT\n"
	    "exp-nx.example.com. TXT \"v=spf1 -all exp=nx.example.com\"\n"
	    "multi.example.com. TXT \"v=spf1 -all exp=multi.why.example.com\"\n"
	    "multi.why.example.com. TXT \"split \" \"in two\"\n";
	struct outcome o;
	(void)state;

	expect(zone, "192.0.2.1", "a@example.com", SPF_RESULT_PASS, "ip4:192.0.2.1", NULL);
	expect(zone, "192.0.2.2", "a@example.com", SPF_RESULT_PASS, "ip4:192.0.2.2", NULL);
	/* §6.2: after redirect=, the target's exp= is used, with %{d} the target. */
	expect(zone, "192.0.2.3", "~a&b@example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation,
	    "no: 192.0.2.3 is not _spf.example.com (192.0.2.3 in-addr mx.receiver.example); "
	    "see ~a%26b");
	expect(zone, "2001:db8::cb01", "a@example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation,
	    "no: 2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1 is not "
	    "_spf.example.com (2001:db8::cb01 ip6 mx.receiver.example); see a");
	/* §5.1: with "all" anywhere, redirect= is never reached. */
	expect(zone, "192.0.2.2", "a@all.example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "192.0.2.2", "a@nowhere.example.com", SPF_RESULT_PERMERROR,
	    "redirect=nothing.example.com has no SPF record", NULL);
	expect(zone, "192.0.2.2", "a@loop.example.com", SPF_RESULT_PERMERROR, "more than 10", NULL);
	expect(zone, "192.0.2.1", "a@loop.example.com", SPF_RESULT_PASS, NULL, NULL);
	/* §6.2: an included record's exp= is not used. */
	expect(zone, "192.0.2.1", "a@inc.example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation,
	    "domain of inc.example.com does not designate 192.0.2.1 as permitted sender");
	/* Problems with the explanation: the default one. */
	static const char *const defaults[] = { "two", "ctl", "pct", "nonascii", "tmo", "exp-nx" };
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		char sender[64], want[128];
		snprintf(sender, sizeof(sender), "a@%s.example.com", defaults[i]);
		snprintf(want, sizeof(want), "domain of %s.example.com does not designate "
		    "192.0.2.1 as permitted sender", defaults[i]);
		expect(zone, "192.0.2.1", sender, SPF_RESULT_FAIL, NULL, &o);
		assert_string_equal(o.explanation, want);
	}
	expect(zone, "192.0.2.1", "a@multi.example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation, "split in two");
	/* Upper-case letters are URL-escaped. */
	expect(zone, "192.0.2.3", "caf\xc3\xa9\r\n@example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation, "no: 192.0.2.3 is not _spf.example.com "
	    "(192.0.2.3 in-addr mx.receiver.example); see caf%C3%A9%0D%0A");
}

static void test_terms_limit(void **state)
{
	const char *zone =
	    "at.example.com. TXT \"v=spf1 a mx a mx a mx a mx a ptr ip4:192.0.2.1 -all\"\n"
	    "over.example.com. TXT \"v=spf1 a mx a mx a mx a mx a ptr a ip4:192.0.2.1 -all\"\n"
	    "at.example.com. A 198.51.100.1\n"
	    "at.example.com. MX 10 at.example.com.\n"
	    "over.example.com. A 198.51.100.1\n"
	    "over.example.com. MX 10 over.example.com.\n"
	    "inc.example.com. TXT \"v=spf1 a include:eight.example.com ip4:192.0.2.1 mx -all\"\n"
	    "inc.example.com. A 198.51.100.1\n"
	    "eight.example.com. TXT \"v=spf1 a a a a a a a a\"\n"
	    "eight.example.com. A 198.51.100.1\n"
	    "inc2.example.com. TXT \"v=spf1 a include:eight.example.com a ip4:192.0.2.1 -all\"\n"
	    "inc2.example.com. A 198.51.100.1\n"
	    "loop1.example.com. TXT \"v=spf1 include:loop2.example.com\"\n"
	    "loop2.example.com. TXT \"v=spf1 include:loop1.example.com\"\n";
	struct outcome o;
	(void)state;

	/* §4.6.4: counted as they are evaluated; 10 is fine, the 11th is not. */
	expect(zone, "192.0.2.1", "a@at.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "192.0.2.1", "a@over.example.com", SPF_RESULT_PERMERROR,
	    "more than 10 DNS-querying terms", NULL);
	expect(zone, "192.0.2.1", "a@inc.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "192.0.2.1", "a@inc2.example.com", SPF_RESULT_PERMERROR, NULL, NULL);
	expect(zone, "192.0.2.1", "a@loop1.example.com", SPF_RESULT_PERMERROR, "more than 10", NULL);

	/* A chain of 10 includes is fine (c0 -> c10); 11 are not (d0 -> d11). */
	char chain[4096];
	size_t n = 0;
	for (int i = 0; i < 10; i++)
		n += (size_t)snprintf(chain + n, sizeof(chain) - n,
		    "c%d.example.com. TXT \"v=spf1 include:c%d.example.com\"\n", i, i + 1);
	for (int i = 0; i < 11; i++)
		n += (size_t)snprintf(chain + n, sizeof(chain) - n,
		    "d%d.example.com. TXT \"v=spf1 include:d%d.example.com\"\n", i, i + 1);
	snprintf(chain + n, sizeof(chain) - n, "c10.example.com. TXT \"v=spf1 +all\"\n"
	    "d11.example.com. TXT \"v=spf1 +all\"\n");
	expect(chain, "192.0.2.1", "a@c0.example.com", SPF_RESULT_PASS, "include:c1", &o);
	assert_int_equal(o.rounds, 11);
	expect(chain, "192.0.2.1", "a@d0.example.com", SPF_RESULT_PERMERROR, "more than 10", NULL);
}

static void test_void_limit(void **state)
{
	const char *zone =
	    "two.example.com. TXT \"v=spf1 a:nx1.example.com a:nx2.example.com ?all\"\n"
	    "three.example.com. TXT \"v=spf1 a:nx1.example.com a:nx2.example.com "
	    "exists:nx3.example.com ?all\"\n"
	    "nodata.example.com. TXT \"v=spf1 a:txt.example.com mx:txt.example.com "
	    "a:txt.example.com ?all\"\n"
	    "txt.example.com. TXT \"x\"\n"
	    "mxv.example.com. TXT \"v=spf1 mx ?all\"\n"
	    "mxv.example.com. MX 1 nx1.example.com.\n"
	    "mxv.example.com. MX 2 nx2.example.com.\n"
	    "mxv.example.com. MX 3 nx3.example.com.\n"
	    "ok.example.com. TXT \"v=spf1 a:nx1.example.com a:nx2.example.com ip4:192.0.2.1 ?all\"\n"
	    "bad.example.com. TXT \"v=spf1 a:..example.com a:nx1.example.com a:nx2.example.com ?all\"\n"
	    "exp.example.com. TXT \"v=spf1 a:nx1.example.com a:nx2.example.com -all "
	    "exp=nx3.example.com\"\n";
	struct outcome o;
	(void)state;

	expect(zone, "192.0.2.1", "a@two.example.com", SPF_RESULT_NEUTRAL, NULL, NULL);
	expect(zone, "192.0.2.1", "a@three.example.com", SPF_RESULT_PERMERROR, "void", NULL);
	expect(zone, "192.0.2.1", "a@nodata.example.com", SPF_RESULT_PERMERROR, "void", NULL);
	expect(zone, "192.0.2.1", "a@mxv.example.com", SPF_RESULT_PERMERROR, "void", NULL);
	expect(zone, "192.0.2.1", "a@ok.example.com", SPF_RESULT_PASS, NULL, NULL);
	/* An invalid target name is not asked, so it is not void. */
	expect(zone, "192.0.2.1", "a@bad.example.com", SPF_RESULT_NEUTRAL, NULL, NULL);
	/* exp= lookups do not count (§4.6.4). */
	expect(zone, "192.0.2.1", "a@exp.example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_non_null(strstr(o.explanation, "does not designate"));
}

static void test_mx_limit(void **state)
{
	char zone[8192];
	size_t n = 0;
	(void)state;

	n += (size_t)snprintf(zone + n, sizeof(zone) - n,
	    "ten.example.com. TXT \"v=spf1 mx -all\"\n"
	    "eleven.example.com. TXT \"v=spf1 mx -all\"\n");
	for (int i = 0; i < 11; i++) {
		if (i < 10)
			n += (size_t)snprintf(zone + n, sizeof(zone) - n,
			    "ten.example.com. MX %d m%d.example.com.\n", i, i);
		n += (size_t)snprintf(zone + n, sizeof(zone) - n,
		    "eleven.example.com. MX %d m%d.example.com.\n"
		    "m%d.example.com. A 192.0.2.%d\n", i, i, i, i + 1);
	}
	expect(zone, "192.0.2.10", "a@ten.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "192.0.2.11", "a@ten.example.com", SPF_RESULT_FAIL, NULL, NULL);
	/* §4.6.4: more than 10 MX names is a permerror, even if one matches. */
	expect(zone, "192.0.2.1", "a@eleven.example.com", SPF_RESULT_PERMERROR, "more than 10 MX",
	    NULL);
}

static void test_ptr(void **state)
{
	char zone[8192];
	size_t n;
	struct outcome o;
	(void)state;

	n = (size_t)snprintf(zone, sizeof(zone), "%s",
	    "example.com. TXT \"v=spf1 ptr -all\"\n"
	    "other.example.com. TXT \"v=spf1 ptr:example.org -all\"\n"
	    "p.example.com. TXT \"v=spf1 -all exp=why.example.com\"\n"
	    "why.example.com. TXT \"connect from %{p}\"\n"
	    "e7.example.com. TXT \"v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com\"\n"
	    "mx.e7.example.com.should.example.com. A 127.0.0.2\n"
	    "mx.example.com.ok.example.com. A 127.0.0.2\n"
	    "1.2.0.192.in-addr.arpa. PTR mail.example.com.\n"
	    "mail.example.com. A 192.0.2.1\n"
	    "2.2.0.192.in-addr.arpa. PTR forged.example.com.\n"
	    "forged.example.com. A 192.0.2.99\n"
	    "3.2.0.192.in-addr.arpa. PTR host.example.org.\n"
	    "host.example.org. A 192.0.2.3\n"
	    "4.2.0.192.in-addr.arpa. TIMEOUT\n"
	    "42.218.168.192.in-addr.arpa. PTR mx.example.com.\n"
	    "42.218.168.192.in-addr.arpa. PTR mx.e7.example.com.\n"
	    "mx.example.com. A 192.168.218.42\n"
	    "mx.e7.example.com. A 192.168.218.42\n"
	    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. "
	    "PTR v6.example.com.\n"
	    "v6.example.com. AAAA 2001:db8::1\n");
	/* 11 PTR names; only the first 10 are looked at, and the 11th would match. */
	for (int i = 1; i <= 11; i++)
		n += (size_t)snprintf(zone + n, sizeof(zone) - n,
		    "5.2.0.192.in-addr.arpa. PTR n%d.example%s.\n"
		    "n%d.example%s. A 192.0.2.5\n", i, i == 11 ? ".com" : ".net", i,
		    i == 11 ? ".com" : ".net");

	expect(zone, "192.0.2.1", "a@example.com", SPF_RESULT_PASS, "matched ptr", NULL);
	expect(zone, "192.0.2.2", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "192.0.2.3", "a@other.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "192.0.2.3", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	/* §5.5: a DNS error on the PTR lookup is no match, not temperror. */
	expect(zone, "192.0.2.4", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "192.0.2.5", "a@example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "2001:db8::1", "a@example.com", SPF_RESULT_PASS, NULL, NULL);
	/* %{p}: the validated name, "unknown" without one. */
	expect(zone, "192.0.2.1", "a@p.example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation, "connect from mail.example.com");
	expect(zone, "192.0.2.2", "a@p.example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation, "connect from unknown");
	expect(zone, "192.0.2.4", "a@p.example.com", SPF_RESULT_FAIL, NULL, &o);
	assert_string_equal(o.explanation, "connect from unknown");
	/* A name below <domain> is preferred (§7.3). */
	expect(zone, "192.168.218.42", "a@e7.example.com", SPF_RESULT_PASS, NULL, NULL);
}

static void test_macros_in_terms(void **state)
{
	const char *zone =
	    "e11.example.com. TXT \"v=spf1 exists:%{i}.%{l2r-}.user.%{d2}\"\n"
	    "1.2.3.4.gladstone.philip.user.example.com. A 127.0.0.2\n"
	    "e12.example.com. TXT \"v=spf1 exists:%{l2r+-}.user.%{d2}\"\n"
	    "bar.foo.user.example.com. A 127.0.0.2\n"
	    "e9.example.com. TXT \"v=spf1 a:%{H} -all\"\n"
	    "mail.example.net. A 1.2.3.4\n"
	    "pct.example.com. TXT \"v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all\"\n"
	    "macro\\037percent\\032\\032space\\03720url-space.example.com. A 1.2.3.4\n"
	    "long.example.com. TXT \"v=spf1 a:%{l}.example.com -all\"\n"
	    "emptylabel.example.com. TXT \"v=spf1 a:foo..example.com -all\"\n"
	    /* A backslash in a name SPF makes is an octet, not an escape. */
	    "bs.example.com. TXT \"v=spf1 a:x\\\\046y.example.com -all\"\n"
	    "x\\092046y.example.com. A 1.2.3.4\n"
	    "x.y.example.com. A 1.2.3.5\n";
	(void)state;

	expect(zone, "1.2.3.4", "philip-gladstone-test@e11.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "1.2.3.4", "foo-bar+zip+quux@e12.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "1.2.3.4", "x@pct.example.com", SPF_RESULT_PASS, NULL, NULL);
	/* A label over 63 octets, or an empty one: no match, not an error. */
	expect(zone, "1.2.3.4", "x123456789x123456789x123456789x123456789x123456789x123456789xxxx"
	    "@long.example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "1.2.3.4", "x@emptylabel.example.com", SPF_RESULT_FAIL, NULL, NULL);
	expect(zone, "1.2.3.4", "x@bs.example.com", SPF_RESULT_PASS, NULL, NULL);
	expect(zone, "1.2.3.5", "x@bs.example.com", SPF_RESULT_FAIL, NULL, NULL);

	struct outcome o;
	run_check(zone, "1.2.3.4", "x@e9.example.com", "mail.example.net", false, &o);
	assert_int_equal(o.result, SPF_RESULT_PASS);
	run_check(zone, "1.2.3.4", "x@e9.example.com", "JUMPIN' JUPITER", false, &o);
	assert_int_equal(o.result, SPF_RESULT_FAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_initial_processing),
		cmocka_unit_test(test_record_selection),
		cmocka_unit_test(test_a_mx),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_redirect_exp),
		cmocka_unit_test(test_terms_limit),
		cmocka_unit_test(test_void_limit),
		cmocka_unit_test(test_mx_limit),
		cmocka_unit_test(test_ptr),
		cmocka_unit_test(test_macros_in_terms),
	};

	return cmocka_run_group_tests_name("spf", tests, NULL, NULL);
}
