/*
 * Unit tests for mta-sts (RFC 8461): the TXT record (§3.1), the policy (§3.2),
 * MX matching (§4.1), the cache file format, the HTTP/1.1 response parser, and
 * the fetch and cache against a real HTTPS server.
 *
 * Inputs to the parsers are exact-size heap copies with no NUL after them, so
 * ASan catches any read past the length. The HTTP parser is fed each response
 * whole, one byte at a time, split in two at every point, and in random chunks;
 * all runs must agree on the outcome, the body and the error.
 *
 * The server is a small TLS HTTP server on a thread (OpenSSL, blocking), with
 * a CA and certificates made at test time; DNS answers come from a static zone
 * the test rewrites between lookups (TTL 0, so the resolver keeps nothing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dns/dns-private.h"
#include "lib/log.h"
#include "net/tls-client.h"
#include "queue/mta-sts.h"
#include "queue/mta-sts-private.h"

/* ================================================================ helpers */

static char *
heap_copy(const char *s, size_t len)
{
	char *c = malloc(len > 0 ? len : 1);

	assert_non_null(c);
	memcpy(c, s, len);
	return c;
}

static int
txt_n(const char *s, size_t len, char id[33])
{
	char *c = heap_copy(s, len);
	int rc = mta_sts_txt_parse(c, len, id);
	free(c);
	return rc;
}

static int
txt(const char *s, char id[33])
{
	return txt_n(s, strlen(s), id);
}

static bool
is_sts(const char *s)
{
	char *c = heap_copy(s, strlen(s));
	bool r = mta_sts_txt_is_sts(c, strlen(s));
	free(c);
	return r;
}

/* Parses s; on failure returns -1 and copies the error into err (if not NULL). */
static int
policy_n(const char *s, size_t len, struct mta_sts_policy *p, char *err, size_t errsize)
{
	char *c = heap_copy(s, len);
	const char *error = NULL;
	int rc = mta_sts_policy_parse(c, len, p, &error);

	free(c);
	if (rc < 0) {
		assert_non_null(error);
		if (err != NULL)
			snprintf(err, errsize, "%s", error);
		/* Nothing is left to free after a failure. */
		assert_int_equal(p->nmx, 0);
	}
	return rc;
}

static int
policy(const char *s, struct mta_sts_policy *p, char *err, size_t errsize)
{
	return policy_n(s, strlen(s), p, err, errsize);
}

/* ================================================================ TXT (§3.1) */

static void
test_txt(void **state)
{
	char id[33];

	assert_int_equal(txt("v=STSv1; id=20160831085700Z;", id), 0);   /* §3.1's example */
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(txt("v=STSv1; id=20160831085700Z", id), 0);
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(txt("v=STSv1;id=a", id), 0);
	assert_string_equal(id, "a");
	assert_int_equal(txt("v=STSv1 ;\tid=abc ; ", id), 0);
	assert_string_equal(id, "abc");
	/* 32 alphanumerics is the most. */
	assert_int_equal(txt("v=STSv1; id=0123456789abcdefghijABCDEFGHIJkl", id), 0);
	assert_string_equal(id, "0123456789abcdefghijABCDEFGHIJkl");
	assert_int_equal(txt("v=STSv1; id=0123456789abcdefghijABCDEFGHIJklm", id), -1);
	/* Extensions are allowed, before or after the id. */
	assert_int_equal(txt("v=STSv1; ext-1.x=va:lue!; id=X1; other_=1", id), 0);
	assert_string_equal(id, "X1");
	assert_int_equal(txt("v=STSv1; idx=1; id=2", id), 0);
	assert_string_equal(id, "2");

	/* Not records: */
	const char *bad[] = {
		"", "v=STSv1", "v=STSv1;", "v=STSv1; ", "v=STSv1; id=", "v=STSv1; id=a-b",
		"v=STSv1; id=a b", "v=STSv1; id=abc; id=abc", "v=STSv2; id=1", "v=stsv1; id=1",
		"V=STSv1; id=1", " v=STSv1; id=1", "v=STSv10; id=1", "v=STSv1 id=1",
		"v=STSv1; ID=1", "v=STSv1; id =1", "v=STSv1; id= 1", "v=STSv1;; id=1",
		"v=STSv1; id=1;;", "v=STSv1; id=1; ext", "v=STSv1; id=1; ext=", "v=STSv1; id=1; =x",
		"v=STSv1; id=1; e=a=b", "v=STSv1; id=1; _e=1", "v=STSv1; id=1; e=\x80",
		"v=STSv1; id=1; 0123456789012345678901234567890123=1", "v=STSv1; id=\xc3\xa9",
		"id=1; v=STSv1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (txt(bad[i], id) != -1)
			fail_msg("accepted as a TXT record: \"%s\"", bad[i]);
	}
	/* A NUL inside is not an alphanumeric. */
	assert_int_equal(txt_n("v=STSv1; id=a\0b", 15, id), -1);
	assert_int_equal(txt_n("v=STSv1; id=ab\0", 15, id), -1);
}

static void
test_txt_is_sts(void **state)
{
	assert_true(is_sts("v=STSv1; id=1"));
	assert_true(is_sts("v=STSv1;"));
	assert_true(is_sts("v=STSv1 ; id=1"));
	assert_true(is_sts("v=STSv1"));
	assert_true(is_sts("v=STSv1; garbage"));
	assert_false(is_sts("v=STSv10; id=1"));
	assert_false(is_sts("v=spf1 -all"));
	assert_false(is_sts("V=STSv1; id=1"));
	assert_false(is_sts(" v=STSv1; id=1"));
	assert_false(is_sts("v=STS"));
	assert_false(is_sts(""));
}

/* ================================================================ policy (§3.2) */

static void
test_policy_rfc_example(void **state)
{
	/* §3.2's example, with CRLF as served and with LF. */
	const char *crlf = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
	    "mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";
	const char *lf = "version: STSv1\nmode: enforce\nmx: mail.example.com\n"
	    "mx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800";
	const char *texts[] = { crlf, lf };
	struct mta_sts_policy p;

	for (size_t t = 0; t < 2; t++) {
		assert_int_equal(policy(texts[t], &p, NULL, 0), 0);
		assert_int_equal(p.mode, MTA_STS_ENFORCE);
		assert_int_equal(p.max_age, 604800);
		assert_int_equal(p.nmx, 3);
		assert_string_equal(p.mx[0], "mail.example.com");
		assert_string_equal(p.mx[1], "*.example.net");
		assert_string_equal(p.mx[2], "backupmx.example.com");
		assert_string_equal(p.id, "");
		assert_int_equal(p.fetched_at, 0);
		mta_sts_policy_clear(&p);
		assert_int_equal(p.nmx, 0);
	}
}

static void
test_policy_forms(void **state)
{
	struct mta_sts_policy p;
	char err[200];

	/* testing; order free; unknown fields ignored; white space around values;
	 * blank lines; mx lower-cased, a final dot dropped. */
	assert_int_equal(policy("max_age: 86400   \nmx:MX1.Example.COM.\n\n"
	    "future_field: anything at all \xc3\xa9\nmode:\ttesting\r\n  \nversion: STSv1\n",
	    &p, err, sizeof(err)), 0);
	assert_int_equal(p.mode, MTA_STS_TESTING);
	assert_int_equal(p.max_age, 86400);
	assert_int_equal(p.nmx, 1);
	assert_string_equal(p.mx[0], "mx1.example.com");
	mta_sts_policy_clear(&p);

	/* mode none needs no mx, and keeps those given. */
	assert_int_equal(policy("version: STSv1\nmode: none\nmax_age: 0\n", &p, NULL, 0), 0);
	assert_int_equal(p.mode, MTA_STS_NONE);
	assert_int_equal(p.max_age, 0);
	assert_int_equal(p.nmx, 0);
	mta_sts_policy_clear(&p);

	/* max_age is capped at a year (31557600), up to 10 digits. */
	assert_int_equal(policy("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 9999999999\n",
	    &p, NULL, 0), 0);
	assert_int_equal(p.max_age, MTA_STS_MAX_AGE_MAX);
	mta_sts_policy_clear(&p);
	assert_int_equal(policy("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 31557601\n",
	    &p, NULL, 0), 0);
	assert_int_equal(p.max_age, 31557600);
	mta_sts_policy_clear(&p);
	assert_int_equal(policy("version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 0031557599\n",
	    &p, NULL, 0), 0);
	assert_int_equal(p.max_age, 31557599);
	mta_sts_policy_clear(&p);

	/* Exactly MTA_STS_MX_MAX mx lines are fine. */
	char big[8192];
	size_t n = (size_t)snprintf(big, sizeof(big), "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int i = 0; i < MTA_STS_MX_MAX; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "mx: mx%d.example.com\n", i);
	assert_int_equal(policy(big, &p, NULL, 0), 0);
	assert_int_equal(p.nmx, MTA_STS_MX_MAX);
	assert_string_equal(p.mx[63], "mx63.example.com");
	mta_sts_policy_clear(&p);
	/* One more is refused. */
	snprintf(big + n, sizeof(big) - n, "mx: one-too-many.example.com\n");
	assert_int_equal(policy(big, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 64 mx"));

	/* A line of MTA_STS_LINE_MAX octets (an unknown field) is fine; one more is not. */
	char line[MTA_STS_LINE_MAX + 200];
	for (size_t extra = 0; extra < 2; extra++) {
		n = (size_t)snprintf(line, sizeof(line), "version: STSv1\nmode: none\nmax_age: 1\nx: ");
		size_t start = n - 3;
		while (n - start < MTA_STS_LINE_MAX + extra)
			line[n++] = 'v';
		line[n++] = '\r';
		line[n++] = '\n';
		line[n] = '\0';
		if (extra == 0) {
			assert_int_equal(policy(line, &p, NULL, 0), 0);
			mta_sts_policy_clear(&p);
		} else {
			assert_int_equal(policy(line, &p, err, sizeof(err)), -1);
			assert_string_equal(err, "line 4: longer than 1024 octets");
		}
	}
}

static void
test_policy_errors(void **state)
{
	static const struct { const char *text, *error; } cases[] = {
		{ "mode: enforce\nmx: a.b\nmax_age: 1\n", "the policy has no version field" },
		{ "version: STSv1\nmx: a.b\nmax_age: 1\n", "the policy has no mode field" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\n", "the policy has no max_age field" },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\n", "the policy has no mx field" },
		{ "version: STSv1\nmode: testing\nmax_age: 1\n", "the policy has no mx field" },
		{ "", "the policy has no version field" },
		{ "version: STSv2\nmode: enforce\nmx: a.b\nmax_age: 1\n",
		  "line 1: version is not STSv1" },
		{ "version: stsv1\nmode: enforce\nmx: a.b\nmax_age: 1\n",
		  "line 1: version is not STSv1" },
		{ "version: STSv1\nmode: Enforce\nmx: a.b\nmax_age: 1\n",
		  "line 2: mode is not enforce, testing or none" },
		{ "version: STSv1\nmode: strict\nmx: a.b\nmax_age: 1\n",
		  "line 2: mode is not enforce, testing or none" },
		{ "version: STSv1\nmode: enforce testing\nmx: a.b\nmax_age: 1\n",
		  "line 2: mode is not enforce, testing or none" },
		{ "version: STSv1\nmode: enforce\nmode: testing\nmx: a.b\nmax_age: 1\n",
		  "line 3: mode given twice" },
		{ "version: STSv1\nversion: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n",
		  "line 2: version given twice" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\nmax_age: 2\n",
		  "line 5: max_age given twice" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 12345678901\n",
		  "line 4: max_age has more than 10 digits" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: -1\n",
		  "line 4: max_age is not a number" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1d\n",
		  "line 4: max_age is not a number" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age:\n", "line 4: empty value" },
		{ "version: STSv1\nmode: enforce\nmx: a..b\nmax_age: 1\n",
		  "line 3: the mx pattern is not a host name or \"*.\" and a host name" },
		{ "version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n",
		  "line 3: the mx pattern is not a host name or \"*.\" and a host name" },
		{ "version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n",
		  "line 3: the mx pattern is not a host name or \"*.\" and a host name" },
		{ "version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n",
		  "line 3: the mx pattern is not a host name or \"*.\" and a host name" },
		{ "version: STSv1\nmode: enforce\nmx: *mx.b\nmax_age: 1\n",
		  "line 3: the mx pattern is not a host name or \"*.\" and a host name" },
		{ "version: STSv1\nmode: enforce\nmx: -a.b\nmax_age: 1\n",
		  "line 3: the mx pattern is not a host name or \"*.\" and a host name" },
		{ "version: STSv1\nmode: enforce\nmx: a_b.c\nmax_age: 1\n",
		  "line 3: the mx pattern is not a host name or \"*.\" and a host name" },
		{ "version: STSv1\nmode: enforce\nmx: a.b c.d\nmax_age: 1\n",
		  "line 3: the mx pattern is not a host name or \"*.\" and a host name" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age 1\n",
		  "line 4: not a \"key: value\" line" },
		{ "version: STSv1\nmode: enforce\n mx: a.b\nmax_age: 1\n",
		  "line 3: not a valid field name" },
		{ "version: STSv1\nmode : enforce\nmx: a.b\nmax_age: 1\n",
		  "line 2: not a valid field name" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\r\rmax_age: 1\n",
		  "line 3: control character 0x0d" },
		{ "version: STSv1\nmode: enforce\nmx: a.b\nmax_age: 1\n\x7f: 1\n",
		  "line 5: control character 0x7f" },
	};
	struct mta_sts_policy p;
	char err[200];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (policy(cases[i].text, &p, err, sizeof(err)) != -1)
			fail_msg("accepted: \"%s\"", cases[i].text);
		if (strcmp(err, cases[i].error) != 0)
			fail_msg("\"%s\": error \"%s\", wanted \"%s\"", cases[i].text, err,
			    cases[i].error);
	}
	/* A NUL is a control character. */
	assert_int_equal(policy_n("version: STSv1\nmode: none\0\nmax_age: 1\n", 38, &p, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "line 2: control character 0x00");
	/* Longer than MTA_STS_POLICY_MAX. */
	size_t len = MTA_STS_POLICY_MAX + 1;
	char *huge = malloc(len);
	assert_non_null(huge);
	memset(huge, '\n', len);
	memcpy(huge, "version: STSv1\nmode: none\nmax_age: 1\n", 37);
	assert_int_equal(policy_n(huge, len, &p, err, sizeof(err)), -1);
	assert_string_equal(err, "the policy is larger than 65536 octets");
	assert_int_equal(policy_n(huge, len - 1, &p, err, sizeof(err)), 0);
	mta_sts_policy_clear(&p);
	free(huge);
}

static void
test_policy_prefixes(void **state)
{
	/* Every prefix of a policy parses or fails cleanly (ASan watches the copy). */
	const char *text = "version: STSv1\r\nmode: testing\r\nmx: *.example.net\r\n"
	    "mx: mail.example.com\r\nmax_age: 604800\r\n";
	size_t len = strlen(text), ok = 0;
	struct mta_sts_policy p;

	for (size_t i = 0; i <= len; i++) {
		if (policy_n(text, i, &p, NULL, 0) == 0) {
			ok++;
			assert_int_equal(p.nmx, 2);
			mta_sts_policy_clear(&p);
		}
	}
	/* From "max_age: 6" on, every prefix is a complete policy. */
	assert_int_equal(ok, strlen("604800\r\n"));
}

/* ================================================================ MX (§4.1) */

static void
test_mx_match(void **state)
{
	struct mta_sts_policy p;

	assert_int_equal(policy("version: STSv1\nmode: enforce\nmax_age: 1\n"
	    "mx: *.example.com\nmx: mail.Example.NET\n", &p, NULL, 0), 0);
	assert_true(mta_sts_mx_match(&p, "mx.example.com"));
	assert_true(mta_sts_mx_match(&p, "MX.EXAMPLE.COM"));
	assert_true(mta_sts_mx_match(&p, "mx.example.com."));
	assert_true(mta_sts_mx_match(&p, "a-b.example.com"));
	assert_false(mta_sts_mx_match(&p, "a.b.example.com"));
	assert_false(mta_sts_mx_match(&p, "example.com"));
	assert_false(mta_sts_mx_match(&p, ".example.com"));
	assert_false(mta_sts_mx_match(&p, "mx.example.com.evil"));
	assert_false(mta_sts_mx_match(&p, "mxexample.com"));
	assert_false(mta_sts_mx_match(&p, "mx.xexample.com"));
	assert_true(mta_sts_mx_match(&p, "mail.example.net"));
	assert_true(mta_sts_mx_match(&p, "MAIL.example.net."));
	assert_false(mta_sts_mx_match(&p, "x.mail.example.net"));
	assert_false(mta_sts_mx_match(&p, "mail.example.ne"));
	assert_false(mta_sts_mx_match(&p, "ail.example.net"));
	assert_false(mta_sts_mx_match(&p, ""));
	assert_false(mta_sts_mx_match(&p, "."));
	mta_sts_policy_clear(&p);

	/* A policy with no mx (mode none) matches nothing. */
	assert_int_equal(policy("version: STSv1\nmode: none\nmax_age: 1\n", &p, NULL, 0), 0);
	assert_false(mta_sts_mx_match(&p, "mx.example.com"));
	mta_sts_policy_clear(&p);
}

static void
test_fresh(void **state)
{
	struct mta_sts_policy p = { .max_age = 100, .fetched_at = 1000 };

	assert_true(mta_sts_policy_fresh(&p, 1000));
	assert_true(mta_sts_policy_fresh(&p, 1099));
	assert_false(mta_sts_policy_fresh(&p, 1100));
	/* A little clock skew is tolerated, a policy from the future is not. */
	assert_true(mta_sts_policy_fresh(&p, 800));
	assert_false(mta_sts_policy_fresh(&p, 699));
	p.max_age = 0;
	assert_false(mta_sts_policy_fresh(&p, 1000));
}

/* ================================================================ cache file */

static void
test_file_format(void **state)
{
	struct mta_sts_policy p, q;
	const char *error = NULL;
	size_t len;
	char *text;

	assert_int_equal(policy("version: STSv1\nmode: enforce\nmax_age: 604800\n"
	    "mx: MX.example.com\nmx: *.example.net\n", &p, NULL, 0), 0);
	memcpy(p.id, "abc123", 7);
	p.fetched_at = 1700000000;
	text = mta_sts_policy_format(&p, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	assert_string_equal(text, "id: abc123\nfetched_at: 1700000000\nversion: STSv1\n"
	    "mode: enforce\nmax_age: 604800\nmx: mx.example.com\nmx: *.example.net\n");
	assert_int_equal(mta_sts_policy_unformat(text, len, &q, &error), 0);
	assert_string_equal(q.id, "abc123");
	assert_int_equal(q.fetched_at, 1700000000);
	assert_int_equal(q.mode, MTA_STS_ENFORCE);
	assert_int_equal(q.max_age, 604800);
	assert_int_equal(q.nmx, 2);
	assert_string_equal(q.mx[1], "*.example.net");
	mta_sts_policy_clear(&q);
	/* Every truncation is refused or gives a policy, never a crash. */
	for (size_t i = 0; i < len; i++) {
		char *c = heap_copy(text, i);
		if (mta_sts_policy_unformat(c, i, &q, &error) == 0)
			mta_sts_policy_clear(&q);
		free(c);
	}
	free(text);
	mta_sts_policy_clear(&p);

	static const char *bad[] = {
		"fetched_at: 1\nid: a\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"id: a-b\nfetched_at: 1\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"id: a\nfetched_at: x\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"id: a\nfetched_at: -5\nversion: STSv1\nmode: none\nmax_age: 1\n",
		"id: a\nfetched_at: 1\nversion: STSv1\nmode: none\n",
		"id: \nfetched_at: 1\nversion: STSv1\nmode: none\nmax_age: 1\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mta_sts_policy_unformat(bad[i], strlen(bad[i]), &q, &error), -1);
}

/* ================================================================ HTTP parser */

struct http_result {
	int rc;
	char *body;
	size_t bodylen;
	char error[200];
	unsigned status;
};

enum plan { PLAN_WHOLE, PLAN_BYTES, PLAN_SPLIT, PLAN_RANDOM };

static void
http_run(const char *in, size_t len, enum plan plan, size_t split, unsigned seed, bool eof,
    bool clean, struct http_result *r)
{
	struct mta_sts_http *h = malloc(sizeof(*h));
	const char *error = NULL;
	size_t off = 0;
	int rc = 0;

	assert_non_null(h);
	mta_sts_http_init(h);
	while (off < len && rc == 0) {
		size_t want;
		switch (plan) {
		case PLAN_WHOLE:
			want = len - off;
			break;
		case PLAN_BYTES:
			want = 1;
			break;
		case PLAN_SPLIT:
			want = off < split ? split - off : len - off;
			break;
		default:
			seed = seed * 1103515245u + 12345u;
			want = 1 + (seed >> 16) % 61;
			break;
		}
		if (want > len - off)
			want = len - off;
		char *c = heap_copy(in + off, want);
		rc = mta_sts_http_feed(h, c, want, &error);
		free(c);
		off += want;
	}
	if (rc == 0 && eof)
		rc = mta_sts_http_eof(h, clean, &error);
	memset(r, 0, sizeof(*r));
	r->rc = rc;
	r->status = h->status;
	if (rc < 0) {
		assert_non_null(error);
		snprintf(r->error, sizeof(r->error), "%s", error);
		/* Once refused, always refused. */
		assert_int_equal(mta_sts_http_feed(h, "x", 1, &error), -1);
		assert_int_equal(mta_sts_http_eof(h, true, &error), -1);
	}
	if (rc == 1) {
		assert_non_null(h->body);
		assert_int_equal(h->body[h->bodylen], '\0');
		r->body = heap_copy(h->body, h->bodylen);
		r->bodylen = h->bodylen;
		/* More input after the end changes nothing. */
		assert_int_equal(mta_sts_http_feed(h, "junk", 4, &error), 1);
	}
	mta_sts_http_clear(h);
	free(h);
}

/* Runs every plan over in; all must agree; returns the whole-run result. */
static void
http_all(const char *in, size_t len, bool eof, bool clean, struct http_result *out)
{
	struct http_result r;

	http_run(in, len, PLAN_WHOLE, 0, 0, eof, clean, out);
	for (int k = 0; k < 12 + (int)(len < 400 ? len : 0); k++) {
		if (k == 0)
			http_run(in, len, PLAN_BYTES, 0, 0, eof, clean, &r);
		else if (k < 12)
			http_run(in, len, PLAN_RANDOM, 0, (unsigned)k * 7919u, eof, clean, &r);
		else
			http_run(in, len, PLAN_SPLIT, (size_t)(k - 12), 0, eof, clean, &r);
		assert_int_equal(r.rc, out->rc);
		assert_string_equal(r.error, out->error);
		assert_int_equal(r.status, out->status);
		assert_int_equal(r.bodylen, out->bodylen);
		if (r.bodylen > 0)
			assert_memory_equal(r.body, out->body, r.bodylen);
		free(r.body);
	}
}

static const char POLICY[] = "version: STSv1\r\nmode: enforce\r\nmx: mx.remote.test\r\n"
    "max_age: 86400\r\n";

static void
test_http_ok(void **state)
{
	static const struct { const char *in; bool eof, clean; const char *body; } cases[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		  false, false, "hello" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
		  false, false, "hello" },
		{ "HTTP/1.0 200 Fine\nContent-Type: TEXT/Plain; charset=utf-8\ncontent-length:  5 \n\nhello",
		  false, false, "hello" },
		{ "HTTP/1.1 200\r\ncontent-type:text/plain;charset=\"us-ascii\"\r\n"
		  "Transfer-Encoding: Chunked\r\n\r\n2\r\nhe\r\n3;ext=1\r\nllo\r\n0\r\nX-T: 1\r\n\r\n",
		  false, false, "hello" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "A\nhellohello\n0\n\n", false, false, "hellohello" },
		/* Read to the end of the connection, which must be a clean TLS close. */
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello",
		  true, true, "hello" },
		{ "HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		  "Content-Length: 2\r\n\r\nhi", false, false, "hi" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
		  false, false, "" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi",
		  false, false, "hi" },
	};
	struct http_result r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http_all(cases[i].in, strlen(cases[i].in), cases[i].eof, cases[i].clean, &r);
		if (r.rc != 1)
			fail_msg("case %zu: rc %d (%s)", i, r.rc, r.error);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.bodylen, strlen(cases[i].body));
		assert_memory_equal(r.body, cases[i].body, r.bodylen);
		free(r.body);
	}

	/* A realistic policy, chunked in odd sizes. */
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nServer: t\r\n"
	    "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
	    (size_t)7, 7, POLICY, strlen(POLICY) - 7, POLICY + 7);
	http_all(buf, (size_t)n, false, false, &r);
	assert_int_equal(r.rc, 1);
	assert_int_equal(r.bodylen, strlen(POLICY));
	assert_memory_equal(r.body, POLICY, r.bodylen);
	free(r.body);
}

static void
test_http_refused(void **state)
{
	static const struct { const char *in; bool eof, clean; const char *error; } cases[] = {
		{ "HTTP/1.1 301 Moved Permanently\r\nLocation: https://evil.test/\r\n\r\n", false, false,
		  "the server redirects (HTTP 301), and redirects are not followed (RFC 8461 §3.3)" },
		{ "HTTP/1.1 302 Found\r\n", false, false,
		  "the server redirects (HTTP 302), and redirects are not followed (RFC 8461 §3.3)" },
		{ "HTTP/1.1 404 Not Found\r\n\r\n", false, false, "the server answered HTTP 404, not 200" },
		{ "HTTP/1.1 204 No Content\r\n\r\n", false, false, "the server answered HTTP 204, not 200" },
		{ "HTTP/1.1 101 Switching\r\n\r\n", false, false, "the server switched protocols (HTTP 101)" },
		{ "HTTP/2 200\r\n\r\n", false, false, "the server's answer is not an HTTP/1 status line" },
		{ "HTTP/1.1 2000 OK\r\n", false, false, "the server's answer is not an HTTP/1 status line" },
		{ "SSH-2.0-OpenSSH\r\n", false, false, "the server's answer is not an HTTP/1 status line" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, false,
		  "the policy has no Content-Type (RFC 8461 §3.2 wants text/plain)" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello", false, false,
		  "the policy's Content-Type is not text/plain (RFC 8461 §3.2)" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plainx\r\nContent-Length: 5\r\n\r\nhello", false, false,
		  "the policy's Content-Type is not text/plain (RFC 8461 §3.2)" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\n\r\n", false, false,
		  "the policy's Content-Type is not text/plain (RFC 8461 §3.2)" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 65537\r\n\r\n", false, false,
		  "the policy is larger than 65536 octets" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 99999999999999999999999\r\n",
		  false, false, "the policy is larger than 65536 octets" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n", false, false,
		  "the response has two different Content-Lengths" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n", false, false,
		  "the response's Content-Length is not a number" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n", false, false,
		  "the response's Content-Length is not a number" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n", false, false,
		  "the response uses a transfer coding other than chunked" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", false, false,
		  "the response uses a transfer coding other than chunked" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 5\r\n\r\n", false, false,
		  "the response has both Transfer-Encoding and Content-Length" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n folded\r\n", false, false,
		  "the response folds a header line (obsolete, RFC 9112 §5.2)" },
		{ "HTTP/1.1 200 OK\r\nContent-Type : text/plain\r\n", false, false,
		  "the response has a malformed header line" },
		{ "HTTP/1.1 200 OK\r\nno colon\r\n", false, false, "the response has a malformed header line" },
		{ "HTTP/1.1 200 OK\r\nX: a\x01z\r\n", false, false,
		  "the response has a control character in a header" },
		{ "HTTP/1.1 200 OK\r\nX: a\rz\r\n", false, false,
		  "the response has a NUL or bare CR in its head" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		  false, false, "the response has a malformed chunk size" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "2\r\nhiX\r\n", false, false, "the response has data after a chunk" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "10001\r\n", false, false, "the policy is larger than 65536 octets" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "fffffffffffffffffffffffffffff\r\n", false, false, "the policy is larger than 65536 octets" },
		/* The end of the connection before the end of the response. */
		{ "", true, true, "the server closed the connection without answering" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", true, true,
		  "the connection ended before the response was complete" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhell", true, true,
		  "the connection ended before the response was complete" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "5\r\nhello\r\n", true, true, "the connection ended before the response was complete" },
		{ "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello", true, false,
		  "the connection ended without a TLS close_notify, so the policy may be truncated" },
	};
	struct http_result r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http_all(cases[i].in, strlen(cases[i].in), cases[i].eof, cases[i].clean, &r);
		if (r.rc != -1)
			fail_msg("case %zu accepted (rc %d)", i, r.rc);
		if (strcmp(r.error, cases[i].error) != 0)
			fail_msg("case %zu: \"%s\", wanted \"%s\"", i, r.error, cases[i].error);
	}
	/* Without an end, an incomplete response is just incomplete. */
	http_all("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n", 44, false, false, &r);
	assert_int_equal(r.rc, 0);
}

static void
test_http_limits(void **state)
{
	struct http_result r;
	size_t cap = 200000, n;
	char *buf = malloc(cap);

	assert_non_null(buf);
	/* A head of exactly MTA_STS_HTTP_HEAD_MAX octets is fine, one more is not. */
	for (int extra = 0; extra < 2; extra++) {
		n = (size_t)snprintf(buf, cap, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX: ");
		size_t tail = strlen("\r\nContent-Length: 1\r\n\r\n");
		while (n + tail < MTA_STS_HTTP_HEAD_MAX + (size_t)extra)
			buf[n++] = 'a';
		n += (size_t)snprintf(buf + n, cap - n, "\r\nContent-Length: 1\r\n\r\nZ");
		http_all(buf, n, false, false, &r);
		if (extra == 0) {
			assert_int_equal(r.rc, 1);
			assert_int_equal(r.bodylen, 1);
			free(r.body);
		} else {
			assert_int_equal(r.rc, -1);
			assert_string_equal(r.error, "the response's header section is larger than 8192 octets");
		}
	}
	/* Many small header lines add up the same way. */
	n = (size_t)snprintf(buf, cap, "HTTP/1.1 200 OK\r\n");
	while (n < 9000)
		n += (size_t)snprintf(buf + n, cap - n, "X: y\r\n");
	http_all(buf, n, false, false, &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.error, "the response's header section is larger than 8192 octets");

	/* A body of exactly MTA_STS_POLICY_MAX octets, read to the end; then one more. */
	for (int extra = 0; extra < 2; extra++) {
		n = (size_t)snprintf(buf, cap, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
		memset(buf + n, 'p', MTA_STS_POLICY_MAX + (size_t)extra);
		n += MTA_STS_POLICY_MAX + (size_t)extra;
		http_all(buf, n, true, true, &r);
		if (extra == 0) {
			assert_int_equal(r.rc, 1);
			assert_int_equal(r.bodylen, MTA_STS_POLICY_MAX);
			free(r.body);
		} else {
			assert_int_equal(r.rc, -1);
			assert_string_equal(r.error, "the policy is larger than 65536 octets");
		}
	}
	/* Chunks that add up past the limit. */
	n = (size_t)snprintf(buf, cap, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 5; i++) {
		n += (size_t)snprintf(buf + n, cap - n, "4000\r\n");
		memset(buf + n, 'c', 0x4000);
		n += 0x4000;
		n += (size_t)snprintf(buf + n, cap - n, "\r\n");
	}
	http_all(buf, n, false, false, &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.error, "the policy is larger than 65536 octets");
	/* A chunk-size line with endless extensions. */
	n = (size_t)snprintf(buf, cap, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n1;");
	memset(buf + n, 'e', 2000);
	n += 2000;
	http_all(buf, n, false, false, &r);
	assert_int_equal(r.rc, -1);
	assert_string_equal(r.error, "the response has a chunk-size line longer than 1024 octets");
	free(buf);
}

/* ================================================================ TLS server */

struct server {
	pthread_t thread;
	pthread_mutex_t mu;
	int lfd;
	unsigned port;
	volatile bool stop;
	SSL_CTX *good, *wrong, *untrusted;
	/* What to do, set by the test: */
	SSL_CTX *use;
	char *response;
	size_t response_len;
	bool no_close_notify, stall;
	/* What happened: */
	unsigned requests;
	char last_request[1024];
};

static void *
server_main(void *arg)
{
	struct server *s = arg;

	while (!s->stop) {
		struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = 5 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		pthread_mutex_lock(&s->mu);
		SSL_CTX *ctx = s->use;
		bool stall = s->stall, dirty = s->no_close_notify;
		char *resp = heap_copy(s->response != NULL ? s->response : "", s->response_len);
		size_t resp_len = s->response_len;
		pthread_mutex_unlock(&s->mu);

		SSL *ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1) {
			char req[1024];
			size_t n = 0;
			while (n < sizeof(req) - 1) {
				int r = SSL_read(ssl, req + n, (int)(sizeof(req) - 1 - n));
				if (r <= 0)
					break;
				n += (size_t)r;
				req[n] = '\0';
				if (strstr(req, "\r\n\r\n") != NULL)
					break;
			}
			req[n] = '\0';
			if (strstr(req, "\r\n\r\n") == NULL)
				goto next;      /* the client gave up (its certificate check) */
			pthread_mutex_lock(&s->mu);
			s->requests++;
			memcpy(s->last_request, req, n + 1);
			pthread_mutex_unlock(&s->mu);
			if (stall) {
				/* Until the client gives up (or 3 s). */
				struct pollfd cfd = { .fd = fd, .events = POLLIN };
				for (int i = 0; i < 60 && !s->stop && poll(&cfd, 1, 50) == 0; i++)
					;
			} else {
				size_t off = 0;
				while (off < resp_len) {
					int w = SSL_write(ssl, resp + off, (int)(resp_len - off));
					if (w <= 0)
						break;
					off += (size_t)w;
				}
				if (!dirty)
					SSL_shutdown(ssl);
			}
		}
next:
		ERR_clear_error();
		SSL_free(ssl);
		close(fd);
		free(resp);
	}
	return NULL;
}

static EVP_PKEY *
make_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	assert_non_null(k);
	return k;
}

static void
add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *
make_cert(const char *cn, const char *san, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
	static long serial = 1;
	X509 *c = X509_new();

	assert_non_null(c);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_set_pubkey(c, key);
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, issuer != NULL ? X509_get_subject_name(issuer) : name);
	if (san == NULL) {
		add_ext(c, issuer != NULL ? issuer : c, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c, issuer != NULL ? issuer : c, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(c, issuer, NID_ext_key_usage, "serverAuth");
		add_ext(c, issuer, NID_subject_alt_name, san);
	}
	assert_true(X509_sign(c, issuer_key, EVP_sha256()) > 0);
	return c;
}

static SSL_CTX *
server_ctx(X509 *cert, EVP_PKEY *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	return ctx;
}

/* ================================================================ the world */

struct world {
	struct event_base *base;
	struct server srv;
	struct dns_zone *zone;
	unsigned txt_queries;
	struct dns_resolver *dns;
	SSL_CTX *client;
	char dir[64];
	char ca_file[96];
	struct mta_sts_cache *cache;
	int64_t now;
};

static void *
tdns_resolve(void *impl, const char *name, uint16_t type, dns_backend_done_fn *done, void *arg)
{
	struct world *w = impl;

	if (type == DNS_T_TXT)
		w->txt_queries++;
	done(dns_zone_lookup(w->zone, name, type), arg);
	return NULL;
}

static void
tdns_cancel(void *impl, void *handle)
{
}

static void
tdns_free(void *impl)
{
}

static const struct dns_backend tdns = {
	.resolve = tdns_resolve, .cancel = tdns_cancel, .free = tdns_free,
};

/* Replaces the zone: text after a $TTL 0 (nothing is cached) and $ORIGIN test. */
static void
world_zone(struct world *w, const char *records)
{
	char text[2048];
	const char *error = NULL;

	snprintf(text, sizeof(text), "$TTL 0\n$ORIGIN test.\n%s", records);
	dns_zone_free(&w->zone);
	w->zone = dns_zone_parse(text, strlen(text), &error);
	if (w->zone == NULL)
		fail_msg("zone: %s", error);
}

/* remote.test with a TXT record of this id, its policy host at 127.0.0.1. */
static void
world_good_zone(struct world *w, const char *id)
{
	char text[256];

	snprintf(text, sizeof(text), "_mta-sts.remote TXT \"v=STSv1; id=%s;\"\n"
	    "mta-sts.remote A 127.0.0.1\n", id);
	world_zone(w, text);
}

static void
world_serve(struct world *w, SSL_CTX *use, const char *response)
{
	pthread_mutex_lock(&w->srv.mu);
	free(w->srv.response);
	w->srv.response = strdup(response);
	w->srv.response_len = strlen(response);
	w->srv.use = use;
	w->srv.no_close_notify = w->srv.stall = false;
	pthread_mutex_unlock(&w->srv.mu);
}

static void
world_serve_policy(struct world *w, const char *policy_text)
{
	char resp[4096];

	snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", strlen(policy_text), policy_text);
	world_serve(w, w->srv.good, resp);
}

static unsigned
world_requests(struct world *w)
{
	pthread_mutex_lock(&w->srv.mu);
	unsigned n = w->srv.requests;
	pthread_mutex_unlock(&w->srv.mu);
	return n;
}

static int64_t
world_clock(void *arg)
{
	return ((struct world *)arg)->now;
}

static void
world_cache(struct world *w, unsigned timeout)
{
	const char *error = NULL;

	mta_sts_cache_free(&w->cache);
	w->cache = mta_sts_cache_new(w->base, w->dns, w->client, w->dir, w->srv.port, timeout, &error);
	if (w->cache == NULL)
		fail_msg("cache: %s", error);
	mta_sts_cache_set_clock(w->cache, world_clock, w);
}

static const char *ENFORCE =
    "version: STSv1\nmode: enforce\nmx: mx1.remote.test\nmx: *.mx.remote.test\nmax_age: 86400\n";

static int
world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);

	assert_non_null(w);
	w->now = 1700000000;
	w->base = event_base_new();
	assert_non_null(w->base);

	/* CA, the right certificate, one for another name, one from another CA. */
	EVP_PKEY *cakey = make_key(), *key = make_key(), *otherkey = make_key();
	X509 *ca = make_cert("Test CA", NULL, cakey, NULL, cakey);
	X509 *other = make_cert("Other CA", NULL, otherkey, NULL, otherkey);
	X509 *good = make_cert("mta-sts.remote.test", "DNS:mta-sts.remote.test", key, ca, cakey);
	X509 *wrong = make_cert("wrong", "DNS:mta-sts.elsewhere.test,DNS:remote.test", key, ca, cakey);
	X509 *untrusted = make_cert("mta-sts.remote.test", "DNS:mta-sts.remote.test", key, other,
	    otherkey);
	w->srv.good = server_ctx(good, key);
	w->srv.wrong = server_ctx(wrong, key);
	w->srv.untrusted = server_ctx(untrusted, key);

	strcpy(w->dir, "/tmp/test-mta-sts-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->ca_file, sizeof(w->ca_file), "%s/ca.pem", w->dir);
	FILE *f = fopen(w->ca_file, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, ca), 1);
	fclose(f);
	char *ctx_error = NULL;
	w->client = tls_client_ctx_new(w->ca_file, &ctx_error);
	if (w->client == NULL)
		fail_msg("tls_client_ctx_new: %s", ctx_error);
	strcat(w->dir, "/cache");
	X509_free(ca);
	X509_free(other);
	X509_free(good);
	X509_free(wrong);
	X509_free(untrusted);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	EVP_PKEY_free(otherkey);

	w->srv.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(w->srv.lfd >= 0);
	assert_int_equal(bind(w->srv.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(w->srv.lfd, 16), 0);
	assert_int_equal(getsockname(w->srv.lfd, (struct sockaddr *)&sin, &sl), 0);
	w->srv.port = ntohs(sin.sin_port);
	pthread_mutex_init(&w->srv.mu, NULL);
	world_serve_policy(w, ENFORCE);
	assert_int_equal(pthread_create(&w->srv.thread, NULL, server_main, &w->srv), 0);

	world_good_zone(w, "1");
	w->dns = dns_resolver_new(w->base, &tdns, w);
	assert_non_null(w->dns);
	world_cache(w, 10);
	*state = w;
	return 0;
}

static int
world_teardown(void **state)
{
	struct world *w = *state;
	char cmd[200];

	mta_sts_cache_free(&w->cache);
	dns_resolver_free(&w->dns);
	dns_zone_free(&w->zone);
	w->srv.stop = true;
	pthread_join(w->srv.thread, NULL);
	close(w->srv.lfd);
	SSL_CTX_free(w->srv.good);
	SSL_CTX_free(w->srv.wrong);
	SSL_CTX_free(w->srv.untrusted);
	SSL_CTX_free(w->client);
	free(w->srv.response);
	pthread_mutex_destroy(&w->srv.mu);
	event_base_free(w->base);
	w->dir[strlen(w->dir) - strlen("/cache")] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
	assert_int_equal(system(cmd), 0);
	free(w);
	return 0;
}

/* What a lookup gave. */
struct got {
	bool done;
	unsigned calls;
	bool have;
	struct mta_sts_policy p;
	char why[700];
};

static void
got_fn(const struct mta_sts_policy *p, const char *why, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->done = true;
	g->have = p != NULL;
	if (p != NULL)
		assert_int_equal(mta_sts_policy_copy(&g->p, p), 0);
	snprintf(g->why, sizeof(g->why), "%s", why != NULL ? why : "");
}

static void
got_clear(struct got *g)
{
	if (g->have)
		mta_sts_policy_clear(&g->p);
	memset(g, 0, sizeof(*g));
}

static void
run_until(struct world *w, struct got *g, int n)
{
	for (int i = 0; i < 2000; i++) {
		bool all = true;
		for (int k = 0; k < n; k++)
			all = all && g[k].done;
		if (all)
			return;
		event_base_loop(w->base, EVLOOP_ONCE);
	}
	fail_msg("the lookup never finished");
}

static void
lookup(struct world *w, const char *domain, struct got *g)
{
	got_clear(g);
	assert_non_null(mta_sts_get(w->cache, domain, got_fn, g));
	assert_false(g->done);          /* never from inside mta_sts_get() */
	run_until(w, g, 1);
	assert_int_equal(g->calls, 1);
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* ================================================================ fetch and cache */

#define why_has(why, want) do { \
	if (strstr((why), (want)) == NULL) \
		fail_msg("why: \"%s\", wanted \"%s\" in it", (why), (want)); \
} while (0)

static void
test_fetch_and_cache(void **state)
{
	struct world *w = *state;
	struct got g = { 0 };
	char path[200], want[600];

	/* A first lookup fetches. */
	lookup(w, "Remote.TEST.", &g);
	assert_string_equal(g.why, "");
	assert_true(g.have);
	assert_int_equal(g.p.mode, MTA_STS_ENFORCE);
	assert_int_equal(g.p.nmx, 2);
	assert_string_equal(g.p.mx[0], "mx1.remote.test");
	assert_string_equal(g.p.mx[1], "*.mx.remote.test");
	assert_int_equal(g.p.max_age, 86400);
	assert_string_equal(g.p.id, "1");
	assert_int_equal(g.p.fetched_at, 1700000000);
	assert_true(mta_sts_mx_match(&g.p, "a.mx.remote.test"));
	assert_int_equal(world_requests(w), 1);
	assert_int_equal(mta_sts_cache_fetches(w->cache), 1);
	snprintf(want, sizeof(want), "GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
	    "Host: mta-sts.remote.test:%u\r\n", w->srv.port);
	assert_memory_equal(w->srv.last_request, want, strlen(want));
	assert_non_null(strstr(w->srv.last_request, "\r\nConnection: close\r\n"));
	/* ... and keeps the policy in a file. */
	snprintf(path, sizeof(path), "%s/remote.test", w->dir);
	assert_string_equal(read_file(path), "id: 1\nfetched_at: 1700000000\nversion: STSv1\n"
	    "mode: enforce\nmax_age: 86400\nmx: mx1.remote.test\nmx: *.mx.remote.test\n");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* Same id, fresh: from the cache, no request (the TXT is asked again). */
	unsigned txt_before = w->txt_queries;
	w->now += 3600;
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.why, "");
	assert_string_equal(g.p.id, "1");
	assert_int_equal(g.p.fetched_at, 1700000000);
	assert_int_equal(world_requests(w), 1);
	assert_int_equal(w->txt_queries, txt_before + 1);

	/* The id changed: fetched again, and the new policy is used. */
	world_good_zone(w, "2");
	world_serve_policy(w, "version: STSv1\nmode: testing\nmx: mx2.remote.test\nmax_age: 7200\n");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_int_equal(g.p.mode, MTA_STS_TESTING);
	assert_string_equal(g.p.id, "2");
	assert_int_equal(g.p.fetched_at, 1700003600);
	assert_int_equal(world_requests(w), 2);

	/* Expired (max_age 7200): fetched again although the id is the same. */
	w->now += 7199;
	lookup(w, "remote.test", &g);
	assert_int_equal(world_requests(w), 2);
	w->now += 1;
	lookup(w, "remote.test", &g);
	assert_int_equal(world_requests(w), 3);
	assert_int_equal(g.p.fetched_at, 1700003600 + 7200);

	/* The server is down, the id changed: the cached policy is used, and why said. */
	world_zone(w, "_mta-sts.remote TXT \"v=STSv1; id=3;\"\nmta-sts.remote A 127.0.0.2\n");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.p.id, "2");
	assert_int_equal(g.p.mode, MTA_STS_TESTING);
	why_has(g.why, "https://mta-sts.remote.test/ at 127.0.0.2: Connection refused");
	why_has(g.why, "; the cached policy (id 2) is used");
	assert_int_equal(world_requests(w), 3);

	/* No TXT record at all: the cached policy still applies (§3.1), quietly. */
	world_zone(w, "mta-sts.remote A 127.0.0.1\n");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.p.id, "2");
	assert_string_equal(g.why, "");

	/* Two v=STSv1 records: not usable; the cached policy, with why. */
	world_zone(w, "_mta-sts.remote TXT \"v=STSv1; id=4;\"\n_mta-sts.remote TXT \"v=STSv1; id=5\"\n"
	    "_mta-sts.remote TXT \"other\"\nmta-sts.remote A 127.0.0.1\n");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.why, "_mta-sts.remote.test has 2 v=STSv1 TXT records, not one; "
	    "the cached policy (id 2) is used");
	/* A record of another kind next to ours is discarded (§3.1). */
	world_zone(w, "_mta-sts.remote TXT \"v=STSv1; id=2;\"\n_mta-sts.remote TXT \"v=spf1 -all\"\n"
	    "mta-sts.remote A 127.0.0.1\n");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.why, "");
	assert_int_equal(world_requests(w), 3);

	/* Once expired and unreachable: nothing, and why. */
	w->now += 7200;
	world_zone(w, "_mta-sts.remote TXT \"v=STSv1; id=3;\"\nmta-sts.remote A 127.0.0.2\n");
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	why_has(g.why, "Connection refused");
	assert_null(strstr(g.why, "cached"));
	got_clear(&g);
}

static void
test_restart(void **state)
{
	struct world *w = *state;
	struct got g = { 0 };

	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_int_equal(world_requests(w), 1);
	/* A new cache over the same directory: the policy comes from the file. */
	world_cache(w, 10);
	assert_int_equal(mta_sts_cache_count(w->cache), 0);
	w->now += 60;
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.why, "");
	assert_string_equal(g.p.id, "1");
	assert_int_equal(g.p.fetched_at, 1700000000);
	assert_int_equal(g.p.nmx, 2);
	assert_int_equal(world_requests(w), 1);
	assert_int_equal(mta_sts_cache_fetches(w->cache), 0);
	assert_int_equal(mta_sts_cache_count(w->cache), 1);

	/* After a restart with the server down and no TXT: the file still serves. */
	world_cache(w, 10);
	world_zone(w, "");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.p.id, "1");

	/* A damaged file is ignored (and a good fetch replaces it). */
	char path[200];
	snprintf(path, sizeof(path), "%s/remote.test", w->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("id: 1\nfetched_at: 1700000000\nversion: STSv1\nmode: enforce\n", f);
	fclose(f);
	world_cache(w, 10);
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	assert_string_equal(g.why, "");
	world_good_zone(w, "1");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_int_equal(world_requests(w), 2);
	assert_non_null(strstr(read_file(path), "\nmax_age: 86400\n"));
	got_clear(&g);
}

/* The server answers resp (or serves with ctx): no policy, and why. */
static void
expect_failure(struct world *w, SSL_CTX *ctx, const char *resp, const char *why)
{
	struct got g = { 0 };
	unsigned before = world_requests(w);

	world_serve(w, ctx, resp);
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	if (strstr(g.why, why) == NULL)
		fail_msg("why: \"%s\", wanted \"%s\" in it", g.why, why);
	assert_int_equal(mta_sts_cache_count(w->cache), 1);
	/* Nothing was cached: the next lookup tries again. */
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	assert_true(world_requests(w) >= before);
	got_clear(&g);
}

static void
test_fetch_failures(void **state)
{
	struct world *w = *state;
	char big[MTA_STS_POLICY_MAX + 200];

	expect_failure(w, w->srv.wrong, "", "https://mta-sts.remote.test/ at 127.0.0.1: the "
	    "certificate is not valid for the host: hostname mismatch");
	assert_int_equal(world_requests(w), 0);
	expect_failure(w, w->srv.untrusted, "", "https://mta-sts.remote.test/ at 127.0.0.1: the "
	    "certificate is not valid for the host: unable to get local issuer certificate");
	assert_int_equal(world_requests(w), 0);
	expect_failure(w, w->srv.good, "HTTP/1.1 301 Moved\r\nLocation: https://mta-sts.remote.test/x\r\n"
	    "Content-Length: 0\r\n\r\n", "https://mta-sts.remote.test/ at 127.0.0.1: the server "
	    "redirects (HTTP 301), and redirects are not followed (RFC 8461 §3.3)");
	assert_int_equal(world_requests(w), 2);
	expect_failure(w, w->srv.good, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
	    "the server answered HTTP 404, not 200");
	expect_failure(w, w->srv.good, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
	    "Content-Length: 5\r\n\r\nhello", "the policy's Content-Type is not text/plain");
	int n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
	memset(big + n, '\n', MTA_STS_POLICY_MAX + 1);
	big[n + MTA_STS_POLICY_MAX + 1] = '\0';
	expect_failure(w, w->srv.good, big, "the policy is larger than 65536 octets");
	expect_failure(w, w->srv.good, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 100000\r\n\r\n", "the policy is larger than 65536 octets");
	expect_failure(w, w->srv.good, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 20\r\n\r\nversion: STSv1\n", "the connection ended before the "
	    "response was complete");
	expect_failure(w, w->srv.good, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 15\r\n\r\nversion: STSv1\n", "the policy at "
	    "https://mta-sts.remote.test/ is not valid: the policy has no mode field");

	/* A body read to the end: needs the TLS close_notify. */
	char resp[1024];
	snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n%s", ENFORCE);
	world_serve(w, w->srv.good, resp);
	pthread_mutex_lock(&w->srv.mu);
	w->srv.no_close_notify = true;
	pthread_mutex_unlock(&w->srv.mu);
	struct got g = { 0 };
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	why_has(g.why, "the connection ended without a TLS close_notify, so the "
	    "policy may be truncated");
	world_serve(w, w->srv.good, resp);
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_int_equal(g.p.mode, MTA_STS_ENFORCE);

	/* Chunked. */
	snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n", strlen(ENFORCE), ENFORCE);
	world_good_zone(w, "9");
	world_serve(w, w->srv.good, resp);
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.p.id, "9");
	got_clear(&g);
}

static void
test_dns_cases(void **state)
{
	struct world *w = *state;
	struct got g = { 0 };

	/* No TXT record and nothing cached: no policy, nothing wrong, no fetch. */
	world_zone(w, "mta-sts.remote A 127.0.0.1\n");
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	assert_string_equal(g.why, "");
	assert_int_equal(mta_sts_cache_fetches(w->cache), 0);
	/* Only other TXT records: the same. */
	world_zone(w, "_mta-sts.remote TXT \"v=STSv10; id=1\"\n");
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	assert_string_equal(g.why, "");
	/* An invalid record. */
	world_zone(w, "_mta-sts.remote TXT \"v=STSv1; id=not-valid\"\n");
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	assert_string_equal(g.why, "the TXT record at _mta-sts.remote.test is not valid");
	/* The record's strings are joined (§3.1). */
	world_zone(w, "_mta-sts.remote TXT \"v=STSv1; \" \"id=77\"\nmta-sts.remote A 127.0.0.1\n");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.p.id, "77");
	/* A TXT lookup that fails. */
	world_zone(w, "_mta-sts.other TIMEOUT\n");
	lookup(w, "other.test", &g);
	assert_false(g.have);
	why_has(g.why, "the TXT lookup of _mta-sts.other.test failed");
	/* The policy host has no address. */
	world_zone(w, "_mta-sts.other TXT \"v=STSv1; id=1\"\n");
	lookup(w, "other.test", &g);
	assert_false(g.have);
	assert_string_equal(g.why, "mta-sts.other.test has no address (AAAA: nxdomain; A: nxdomain)");
	/* IPv6 first: ::1 refuses (the server listens on 127.0.0.1), then 127.0.0.1. */
	world_zone(w, "_mta-sts.remote TXT \"v=STSv1; id=78\"\nmta-sts.remote A 127.0.0.1\n"
	    "mta-sts.remote AAAA ::1\n");
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.p.id, "78");
	/* Names that cannot be looked up. */
	const char *bad[] = { "", ".", "a..b", "a/b", "../etc", "a b", "x_y.test", "-a.test" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lookup(w, bad[i], &g);
		assert_false(g.have);
		why_has(g.why, "is not a domain MTA-STS can look up");
	}
	got_clear(&g);
}

static void
test_mode_none(void **state)
{
	struct world *w = *state;
	struct got g = { 0 };

	world_serve_policy(w, "version: STSv1\nmode: none\nmax_age: 86400\n");
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	assert_string_equal(g.why, "");
	/* Cached as none: no second fetch. */
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	assert_int_equal(world_requests(w), 1);
	got_clear(&g);
}

static void
test_shared_and_cancel(void **state)
{
	struct world *w = *state;
	struct got g[3] = { 0 };

	/* Three lookups at once: one TXT query, one fetch, three answers. */
	unsigned txt_before = w->txt_queries;
	assert_non_null(mta_sts_get(w->cache, "remote.test", got_fn, &g[0]));
	assert_non_null(mta_sts_get(w->cache, "REMOTE.test", got_fn, &g[1]));
	struct mta_sts_lookup *l = mta_sts_get(w->cache, "remote.test", got_fn, &g[2]);
	assert_non_null(l);
	mta_sts_cancel(&l);
	assert_null(l);
	run_until(w, g, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_true(g[i].have);
		assert_string_equal(g[i].p.id, "1");
	}
	assert_int_equal(world_requests(w), 1);
	assert_int_equal(w->txt_queries, txt_before + 1);
	/* The cancelled one never runs. */
	for (int i = 0; i < 20; i++)
		event_base_loop(w->base, EVLOOP_NONBLOCK);
	assert_int_equal(g[2].calls, 0);
	got_clear(&g[0]);
	got_clear(&g[1]);

	/* Cancelled while its fetch runs: the fetch still fills the cache. */
	world_good_zone(w, "2");
	l = mta_sts_get(w->cache, "remote.test", got_fn, &g[2]);
	mta_sts_cancel(&l);
	for (int i = 0; i < 400 && world_requests(w) < 2; i++)
		event_base_loop(w->base, EVLOOP_ONCE);
	lookup(w, "remote.test", &g[0]);
	assert_string_equal(g[0].p.id, "2");
	assert_int_equal(g[2].calls, 0);
	assert_int_equal(mta_sts_cache_fetches(w->cache), 2);
	got_clear(&g[0]);

	/* A lookup left outstanding when the cache is freed is not called. */
	world_good_zone(w, "3");
	l = mta_sts_get(w->cache, "remote.test", got_fn, &g[2]);
	assert_non_null(l);
	mta_sts_cache_free(&w->cache);
	for (int i = 0; i < 20; i++)
		event_base_loop(w->base, EVLOOP_NONBLOCK);
	assert_int_equal(g[2].calls, 0);
}

/* A callback that frees the cache, and one that asks again from inside. */
struct nested {
	struct world *w;
	unsigned calls;
	bool free_cache;
	struct got inner;
	char mx0[64];
};

static void
nested_fn(const struct mta_sts_policy *p, const char *why, void *arg)
{
	struct nested *n = arg;

	n->calls++;
	assert_non_null(p);
	if (n->free_cache) {
		mta_sts_cache_free(&n->w->cache);
		return;
	}
	/* Asking again from inside the callback leaves p valid. */
	assert_non_null(mta_sts_get(n->w->cache, "remote.test", got_fn, &n->inner));
	snprintf(n->mx0, sizeof(n->mx0), "%s", p->mx[0]);
}

static void
test_callbacks(void **state)
{
	struct world *w = *state;
	struct nested n = { .w = w };

	assert_non_null(mta_sts_get(w->cache, "remote.test", nested_fn, &n));
	while (n.calls == 0)
		event_base_loop(w->base, EVLOOP_ONCE);
	assert_string_equal(n.mx0, "mx1.remote.test");
	run_until(w, &n.inner, 1);
	assert_true(n.inner.have);
	got_clear(&n.inner);

	n.calls = 0;
	n.free_cache = true;
	assert_non_null(mta_sts_get(w->cache, "remote.test", nested_fn, &n));
	while (n.calls == 0)
		event_base_loop(w->base, EVLOOP_ONCE);
	assert_null(w->cache);
}

static void
test_timeout(void **state)
{
	struct world *w = *state;
	struct got g = { 0 };

	world_cache(w, 1);
	pthread_mutex_lock(&w->srv.mu);
	w->srv.stall = true;
	pthread_mutex_unlock(&w->srv.mu);
	lookup(w, "remote.test", &g);
	assert_false(g.have);
	assert_true(strstr(g.why, "timed out") != NULL || strstr(g.why, "took longer than 1 s") != NULL);

	/* With a fresh policy cached, the timeout falls back to it. */
	world_serve_policy(w, ENFORCE);
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	world_good_zone(w, "2");
	pthread_mutex_lock(&w->srv.mu);
	w->srv.stall = true;
	pthread_mutex_unlock(&w->srv.mu);
	lookup(w, "remote.test", &g);
	assert_true(g.have);
	assert_string_equal(g.p.id, "1");
	why_has(g.why, "; the cached policy (id 1) is used");
	got_clear(&g);
}

static void
test_lru(void **state)
{
	struct world *w = *state;
	struct got g = { 0 };
	char name[64];

	/* More domains than the memory holds (none has a TXT record): bounded. */
	world_zone(w, "");
	for (int i = 0; i < MTA_STS_CACHE_ENTRIES + 50; i++) {
		snprintf(name, sizeof(name), "d%d.test", i);
		lookup(w, name, &g);
		assert_false(g.have);
	}
	assert_int_equal(mta_sts_cache_count(w->cache), MTA_STS_CACHE_ENTRIES);
	got_clear(&g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_txt_is_sts),
		cmocka_unit_test(test_policy_rfc_example),
		cmocka_unit_test(test_policy_forms),
		cmocka_unit_test(test_policy_errors),
		cmocka_unit_test(test_policy_prefixes),
		cmocka_unit_test(test_mx_match),
		cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_file_format),
		cmocka_unit_test(test_http_ok),
		cmocka_unit_test(test_http_refused),
		cmocka_unit_test(test_http_limits),
		cmocka_unit_test_setup_teardown(test_fetch_and_cache, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_restart, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_fetch_failures, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_dns_cases, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_mode_none, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_shared_and_cancel, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_callbacks, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_timeout, world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_lru, world_setup, world_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	log_init("test-mta-sts", true, getenv("TEST_DEBUG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
