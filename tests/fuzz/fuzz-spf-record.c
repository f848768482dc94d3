/*
 * libFuzzer target: spf-record and spf-macro. The input is an SPF record
 * ("v=spf1 " is put in front when it does not start with it, so the fuzzer
 * reaches the terms at once), parsed from an exact-size copy; every
 * domain-spec of the result (mechanisms, redirect=, exp=) is expanded with a
 * fixed context, IPv4 and IPv6. The input is also checked and, when valid,
 * expanded as explanation text and as a domain-spec on its own.
 *
 * Invariants: a parse either gives a record or an error sentence (printable,
 * under 256 octets); every term has a known mechanism and qualifier, prefix
 * lengths within their family, a NUL-terminated text; a domain expansion is
 * at most 253 octets; an explanation at most
 * SPF_EXPLANATION_MAX; expanding twice gives the same result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/spf-macro.h"
#include "mailauth/spf-record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct spf_macro_ctx ctx4 = {
	.s = "strong-bad@email.example.com", .l = "strong-bad", .o = "email.example.com",
	.d = "email.example.com", .i = "192.0.2.3", .p = "mx.example.org",
	.h = "mx.example.org", .c = "192.0.2.3", .r = "example.net", .t = "1234567890",
	.v = "in-addr",
};

static const struct spf_macro_ctx ctx6 = {
	.s = "~jack&jill=up@a.b.c.d.e.f.g.example.com", .l = "~jack&jill=up",
	.o = "a.b.c.d.e.f.g.example.com", .d = "x.example.com",
	.i = "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1",
	.p = "unknown", .h = "JUMPIN' JUPITER", .c = "2001:db8::cb01", .r = "unknown",
	.t = "0", .v = "ip6",
};

static void expand_domain(const char *spec)
{
	static char a[SPF_MACRO_OUT], b[SPF_MACRO_OUT];

	for (int k = 0; k < 2; k++) {
		const struct spf_macro_ctx *ctx = k == 0 ? &ctx4 : &ctx6;
		size_t na = spf_macro_expand(spec, SPF_MACRO_DOMAIN, ctx, a);
		size_t nb = spf_macro_expand(spec, SPF_MACRO_DOMAIN, ctx, b);
		if (na > 253 || na != strlen(a) || na != nb || strcmp(a, b) != 0)
			__builtin_trap();
	}
}

static void check_record(const struct spf_record *rec)
{
	for (size_t i = 0; i < rec->nterms; i++) {
		const struct spf_term *t = &rec->terms[i];
		if (t->mech > SPF_MECH_EXISTS || t->cidr4 > 32 || t->cidr6 > 128 || t->text == NULL)
			__builtin_trap();
		if (t->qualifier != SPF_RESULT_PASS && t->qualifier != SPF_RESULT_FAIL &&
		    t->qualifier != SPF_RESULT_SOFTFAIL && t->qualifier != SPF_RESULT_NEUTRAL)
			__builtin_trap();
		if (strlen(t->text) == 0 || strchr(t->text, ' ') != NULL)
			__builtin_trap();
		if (t->domain != NULL) {
			const char *why = NULL;
			if (spf_macro_check(t->domain, strlen(t->domain), SPF_MACRO_DOMAIN, &why) != 0)
				__builtin_trap();
			(void)spf_macro_uses_p(t->domain);
			expand_domain(t->domain);
		}
	}
	if (rec->redirect != NULL)
		expand_domain(rec->redirect);
	if (rec->exp != NULL)
		expand_domain(rec->exp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char prefix[] = "v=spf1 ";
	const char *error = NULL;
	struct spf_record *rec = NULL;
	size_t len = size;
	char *text;

	if (size > 70000)
		return 0;
	if (size < 6 || memcmp(data, prefix, 6) != 0)
		len += sizeof(prefix) - 1;
	if ((text = malloc(len > 0 ? len : 1)) == NULL)
		return 0;
	if (len != size)
		memcpy(text, prefix, sizeof(prefix) - 1);
	memcpy(text + (len - size), data, size);
	if (spf_record_parse(text, len, &rec, &error) == 0) {
		if (rec == NULL)
			__builtin_trap();
		check_record(rec);
		spf_record_free(&rec);
	} else {
		if (rec != NULL || error == NULL || strlen(error) >= 256)
			__builtin_trap();
		for (const char *p = error; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				__builtin_trap();
	}
	free(text);

	/* The raw input as explanation text and as a domain-spec. */
	char *copy = malloc(size + 1);
	static char out[SPF_MACRO_OUT];
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (spf_macro_check(copy, size, SPF_MACRO_EXPLAIN, &error) == 0) {
		size_t n = spf_macro_expand(copy, SPF_MACRO_EXPLAIN, &ctx6, out);
		if (n > SPF_EXPLANATION_MAX || n != strlen(out))
			__builtin_trap();
	}
	if (spf_macro_check(copy, size, SPF_MACRO_DOMAIN, &error) == 0)
		expand_domain(copy);
	free(copy);
	return 0;
}
