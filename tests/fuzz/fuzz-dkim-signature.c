/*
 * libFuzzer target: the DKIM-Signature parser (RFC 6376 §3.5), and the verifier
 * around it. The input is parsed as a field value; then it is put in a message
 * ("From: ...", "DKIM-Signature:" + input, a body) and verified against a zone
 * that holds an Ed25519 key at sel._domainkey.example.com, so that inputs with
 * d=example.com; s=sel reach key checks, header hashing and the signature check.
 *
 * Invariants: a successful parse has a valid d= and s=, 1..DKIM_SIG_H_MAX h=
 * names including From, 1..DKIM_SIG_B_MAX octets of b=, b='s raw span inside
 * the input, and x >= t; a failed one gives a sentence. The verifier finishes
 * in one step with exactly one result, never "pass" (nothing here can sign).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "mailauth/dkim-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dns_zone *zone;

static void check_parse(const char *text, size_t len)
{
	struct dkim_sig *s = malloc(sizeof(*s));
	const char *error = NULL;
	bool from = false;

	if (s == NULL)
		return;
	if (dkim_sig_parse(s, text, len, &error) != 0) {
		if (error == NULL)
			__builtin_trap();
		dkim_sig_clear(s);
		free(s);
		return;
	}
	if (s->d == NULL || s->s == NULL || !dkim_domain_valid(s->d, strlen(s->d)) ||
	    !dkim_domain_valid(s->s, strlen(s->s)))
		__builtin_trap();
	if (s->nh < 1 || s->nh > DKIM_SIG_H_MAX || s->b_len < 1 || s->b_len > DKIM_SIG_B_MAX)
		__builtin_trap();
	for (size_t i = 0; i < s->nh; i++)
		from = from || dkim_name_eq(s->h[i].p, s->h[i].len, "from", 4);
	if (!from || s->b_raw_start > s->b_raw_end || s->b_raw_end > len)
		__builtin_trap();
	if (s->has_t && s->has_x && s->x < s->t)
		__builtin_trap();
	dkim_sig_clear(s);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char head[] = "From: joe@example.com\r\nTo: x@example.net\r\nDKIM-Signature:";
	static const char tail[] = "\r\n\r\nHello.\r\n";
	struct dkim_verify *v;
	struct dns_view *view;
	char *msg;

	if (size > 65536)
		return 0;
	if (zone == NULL) {
		static const char z[] = "sel._domainkey.example.com. IN TXT "
		    "\"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"\n"
		    "rsa._domainkey.example.com. IN TXT \"v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\"\n"
		    "slow._domainkey.example.com. TIMEOUT\n";
		const char *error = NULL;

		if ((zone = dns_zone_parse(z, sizeof(z) - 1, &error)) == NULL)
			__builtin_trap();
	}
	check_parse((const char *)data, size);

	if ((msg = malloc(sizeof(head) + size + sizeof(tail))) == NULL)
		return 0;
	memcpy(msg, head, sizeof(head) - 1);
	memcpy(msg + sizeof(head) - 1, data, size);
	memcpy(msg + sizeof(head) - 1 + size, tail, sizeof(tail) - 1);
	v = dkim_verify_new(1700000000);
	dkim_verify_feed(v, msg, sizeof(head) - 1 + size + sizeof(tail) - 1);
	dkim_verify_finish(v);
	view = dns_view_new(zone);
	if (dkim_verify_step(view, v) != 1)
		__builtin_trap();
	for (size_t i = 0; i < dkim_verify_count(v); i++) {
		const struct dkim_result *r = dkim_verify_result(v, i);

		if (r->status == DKIM_STATUS_PASS || r->reason == NULL || r->reason[0] == '\0' ||
		    strlen(r->b) > 12)
			__builtin_trap();
	}
	dns_view_free(&view);
	dkim_verify_free(&v);
	free(msg);
	return 0;
}
