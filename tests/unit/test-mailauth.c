/*
 * Unit tests for mailauth: the whole inbound check (SPF, DKIM, then DMARC on
 * their results, RFC 7489 §4.2) and the Authentication-Results field it writes
 * (RFC 8601), driven synchronously by a static zone through a dns_view.
 *
 * Keys are made per run (dkim_key_generate into a temporary directory) and
 * their TXT records put into the zone, so signing and verification meet
 * through DNS as they do in the daemon. Each message is also fed one byte at a
 * time, which must give the same field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns/dns.h"
#include "mailauth/mailauth.h"

static struct dmarc_psl *psl;
static struct dkim_key *key;
static char *key_txt;
static char tmpdir[] = "/tmp/test-mailauth-XXXXXX";

static int setup(void **state)
{
	const char *error = NULL;
	char path[256];
	if ((psl = dmarc_psl_load(NULL, &error)) == NULL || mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/good.key", tmpdir);
	char *txt = NULL;
	if (dkim_key_generate(DKIM_KEY_ED25519, 0, path, &txt, &error) < 0)
		return -1;
	key_txt = txt;
	key = dkim_key_load(path, &error);
	unlink(path);
	rmdir(tmpdir);
	return key != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	dmarc_psl_free(&psl);
	dkim_key_free(&key);
	free(key_txt);
	return 0;
}

/* good.example: SPF allows 192.0.2.1, a DKIM key at sel, p=reject.
 * bad.example: SPF allows only 192.0.2.99, p=reject. q.example: p=quarantine.
 * half.example: p=reject pct=50. slow.example: its TXT lookups time out. */
static struct dns_zone *
make_zone(void)
{
	char text[4096];
	snprintf(text, sizeof(text),
	    "$TTL 300\n"
	    "good.example. TXT \"v=spf1 ip4:192.0.2.1 -all\"\n"
	    "sel._domainkey.good.example. TXT \"%s\"\n"
	    "_dmarc.good.example. TXT \"v=DMARC1; p=reject\"\n"
	    "bad.example. TXT \"v=spf1 ip4:192.0.2.99 -all\"\n"
	    "_dmarc.bad.example. TXT \"v=DMARC1; p=reject\"\n"
	    "q.example. TXT \"v=spf1 ip4:192.0.2.99 -all\"\n"
	    "_dmarc.q.example. TXT \"v=DMARC1; p=quarantine\"\n"
	    "half.example. TXT \"v=spf1 -all\"\n"
	    "_dmarc.half.example. TXT \"v=DMARC1; p=reject; pct=50\"\n"
	    "helo.example. TXT \"v=spf1 ip4:192.0.2.1 -all\"\n"
	    "slow.example. TIMEOUT\n"
	    "_dmarc.slow.example. TIMEOUT\n", key_txt);
	const char *error = NULL;
	struct dns_zone *z = dns_zone_parse(text, strlen(text), &error);
	if (z == NULL)
		fail_msg("zone: %s", error);
	return z;
}

static char *
sign(const char *msg)
{
	const char *error = NULL;
	struct dkim_sign_params p = { .domain = "good.example", .selector = "sel",
	    .type = DKIM_KEY_ED25519 };
	struct dkim_sign *s = dkim_sign_new(&p, &error);
	assert_non_null(s);
	dkim_sign_feed(s, msg, strlen(msg));
	dkim_sign_finish(s);
	unsigned char digest[32], sig[512];
	size_t siglen = 0;
	assert_int_equal(dkim_sign_digest(s, digest, &error), 0);
	assert_int_equal(dkim_key_sign_digest(key, digest, sig, &siglen, &error), 0);
	char *field = dkim_sign_header(s, sig, siglen);
	dkim_sign_free(&s);
	char *out = malloc(strlen(field) + strlen(msg) + 1);
	strcpy(out, field);
	strcat(out, msg);
	free(field);
	return out;
}

struct outcome {
	enum mailauth_verdict verdict;
	char *field;
};

/* Runs the check over msg, fed whole (step = 0) or in pieces of `step` octets. */
static struct outcome
check_fed(const char *ip, const char *helo, const char *from, const char *msg, size_t step,
    int sample)
{
	struct dns_zone *z = make_zone();
	struct dns_view *v = dns_view_new(z);
	const char *error = NULL;
	struct mailauth_params p = { .ip = ip, .helo = helo, .mail_from = from,
	    .authserv_id = "mx.example.net", .now = 1900000000, .psl = psl,
	    .dmarc_sample = sample };
	struct mailauth *m = mailauth_new(&p, &error);
	assert_non_null(m);
	size_t len = strlen(msg);
	if (step == 0)
		step = len > 0 ? len : 1;
	for (size_t i = 0; i < len; i += step)
		mailauth_feed(m, msg + i, len - i < step ? len - i : step);
	mailauth_finish(m);
	/* The view answers from the zone at once: one step finishes. */
	assert_int_equal(mailauth_step(v, m), 1);
	assert_int_equal(mailauth_step(v, m), 1);   /* done stays done */
	struct outcome o = { mailauth_verdict(m), mailauth_auth_results(m) };
	assert_non_null(o.field);
	mailauth_free(&m);
	dns_view_free(&v);
	dns_zone_free(&z);
	return o;
}

static struct outcome
check(const char *ip, const char *helo, const char *from, const char *msg, int sample)
{
	struct outcome whole = check_fed(ip, helo, from, msg, 0, sample);
	struct outcome bytes = check_fed(ip, helo, from, msg, 1, sample);
	assert_string_equal(whole.field, bytes.field);
	free(bytes.field);
	return whole;
}

#define MSG(from) "From: Bob <" from ">\r\nTo: alice@example.net\r\nSubject: hi\r\n" \
	"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n\r\nHello.\r\n"

static void test_all_pass(void **state)
{
	char *msg = sign(MSG("bob@good.example"));
	struct outcome o = check("192.0.2.1", "mail.good.example", "bob@good.example", msg, 99);
	assert_int_equal(o.verdict, MAILAUTH_ACCEPT);
	/* RFC 8601 §2.2: authserv-id, then one resinfo per method. */
	assert_non_null(strstr(o.field, "Authentication-Results: mx.example.net;\r\n"));
	assert_non_null(strstr(o.field, "spf=pass smtp.mailfrom=bob@good.example;"));
	assert_non_null(strstr(o.field, "dkim=pass header.d=good.example header.s=sel header.b="));
	assert_non_null(strstr(o.field, "dmarc=pass header.from=good.example\r\n"));
	assert_null(strstr(o.field, "reason="));
	free(o.field);
	free(msg);
}

static void test_dkim_alone_aligns(void **state)
{
	/* RFC 7489 §4.2: DKIM pass and aligned is enough, SPF failing or not. */
	char *msg = sign(MSG("bob@good.example"));
	struct outcome o = check("203.0.113.5", "x.example", "bob@good.example", msg, 99);
	assert_int_equal(o.verdict, MAILAUTH_ACCEPT);
	assert_non_null(strstr(o.field, "spf=fail"));
	assert_non_null(strstr(o.field, "dmarc=pass"));
	free(o.field);
	free(msg);
}

static void test_broken_signature_and_spf_fail_reject(void **state)
{
	char *msg = sign(MSG("bob@good.example"));
	msg[strlen(msg) - 3] = '!';                     /* one body octet changed */
	struct outcome o = check("203.0.113.5", "x.example", "bob@good.example", msg, 99);
	assert_int_equal(o.verdict, MAILAUTH_REJECT);
	assert_non_null(strstr(o.field, "dkim=fail"));
	assert_non_null(strstr(o.field, "dmarc=fail reason=\"p=reject dis=reject\""));
	free(o.field);
	free(msg);
}

static void test_unsigned_spf_fail_policies(void **state)
{
	struct outcome o = check("192.0.2.1", "x.example", "bob@bad.example",
	    MSG("bob@bad.example"), 0);
	assert_int_equal(o.verdict, MAILAUTH_REJECT);
	assert_non_null(strstr(o.field, "dkim=none;"));
	free(o.field);
	o = check("192.0.2.1", "x.example", "bob@q.example", MSG("bob@q.example"), 0);
	assert_int_equal(o.verdict, MAILAUTH_QUARANTINE);
	free(o.field);
	/* RFC 7489 §6.6.4: outside pct, one step down (reject → quarantine). */
	o = check("192.0.2.1", "x.example", "bob@half.example", MSG("bob@half.example"), 49);
	assert_int_equal(o.verdict, MAILAUTH_REJECT);
	free(o.field);
	o = check("192.0.2.1", "x.example", "bob@half.example", MSG("bob@half.example"), 50);
	assert_int_equal(o.verdict, MAILAUTH_QUARANTINE);
	assert_non_null(strstr(o.field, "p=reject dis=quarantine"));
	free(o.field);
}

static void test_spf_aligned_from_other_mail_from_fails(void **state)
{
	/* SPF passes for good.example, but the author is bad.example: not aligned. */
	struct outcome o = check("192.0.2.1", "x.example", "bob@good.example",
	    MSG("bob@bad.example"), 0);
	assert_non_null(strstr(o.field, "spf=pass"));
	assert_non_null(strstr(o.field, "dmarc=fail"));
	assert_int_equal(o.verdict, MAILAUTH_REJECT);
	free(o.field);
}

static void test_null_sender_uses_helo(void **state)
{
	/* RFC 7208 §2.4: the null reverse-path is checked as postmaster@HELO. */
	struct outcome o = check("192.0.2.1", "helo.example", "", MSG("bob@good.example"), 0);
	assert_non_null(strstr(o.field, "spf=pass smtp.helo=helo.example"));
	free(o.field);
}

static void test_no_from_is_permerror(void **state)
{
	struct outcome o = check("192.0.2.1", "x.example", "bob@good.example",
	    "Subject: no author\r\n\r\nbody\r\n", 0);
	assert_int_equal(o.verdict, MAILAUTH_ACCEPT);
	assert_non_null(strstr(o.field, "dmarc=permerror"));
	free(o.field);
}

static void test_dns_timeout_is_temperror_and_accepted(void **state)
{
	struct outcome o = check("192.0.2.1", "x.example", "bob@slow.example",
	    MSG("bob@slow.example"), 0);
	assert_int_equal(o.verdict, MAILAUTH_ACCEPT);
	assert_non_null(strstr(o.field, "spf=temperror"));
	assert_non_null(strstr(o.field, "dmarc=temperror"));
	free(o.field);
}

static void test_hostile_values_stay_one_field(void **state)
{
	/* A MAIL FROM with quotes and a semicolon cannot break the field apart. */
	struct outcome o = check("192.0.2.1", "x;\"y", "\"a;b\"@bad.example",
	    MSG("bob@bad.example"), 0);
	size_t fields = 0;
	for (const char *p = o.field; (p = strstr(p, "\r\n")) != NULL; p += 2)
		if (p[2] != '\t' && p[2] != ' ' && p[2] != '\0')
			fields++;
	assert_int_equal(fields, 0);
	assert_null(strstr(o.field, "\n\n"));
	free(o.field);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_pass),
		cmocka_unit_test(test_dkim_alone_aligns),
		cmocka_unit_test(test_broken_signature_and_spf_fail_reject),
		cmocka_unit_test(test_unsigned_spf_fail_policies),
		cmocka_unit_test(test_spf_aligned_from_other_mail_from_fails),
		cmocka_unit_test(test_null_sender_uses_helo),
		cmocka_unit_test(test_no_from_is_permerror),
		cmocka_unit_test(test_dns_timeout_is_temperror_and_accepted),
		cmocka_unit_test(test_hostile_values_stay_one_field),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
