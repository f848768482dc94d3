/*
 * libFuzzer target: SASL exchanges (PLAIN, LOGIN) and the strict base64 under them.
 *
 * Input: one control byte, then "\n"-separated segments.
 *   bit 0     mechanism: PLAIN or LOGIN
 *   bits 1-2  initial response: 0 none, 1 "=", 2-3 the first segment
 *   bit 3     segments are raw octets that the harness base64-encodes (to explore
 *             the mechanisms' syntax) rather than wire text (to explore the
 *             wire rules and the decoder)
 * Each further segment is one client response, until the exchange ends.
 *
 * Invariants (a violation traps): canonical base64 round-trips exactly; a
 * challenge is valid base64 within SASL_CHALLENGE_MAX; credentials exist only
 * after SASL_DONE and respect RFC 4616 §2 bounds; after SASL_FAIL nothing
 * secret is left; the decoded response is wiped after every step.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sasl/sasl-base64.h"
#include "sasl/sasl-private.h"
#include "sasl/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond))                                                          \
			__builtin_trap();                                             \
	} while (0)

/* Canonical base64: what decodes must encode back to the very same text. */
static void
check_base64(const uint8_t *data, size_t size)
{
	size_t cap = SASL_BASE64_DECODED_MAX(size), n;
	unsigned char *out = malloc(cap > 0 ? cap : 1);
	char *again;

	CHECK(out != NULL);
	if (sasl_base64_decode((const char *)data, size, out, cap, &n) == 0) {
		CHECK(n <= cap);
		again = malloc(SASL_BASE64_ENCODED_LEN(n) + 1);
		CHECK(again != NULL);
		CHECK(sasl_base64_encode(out, n, again, SASL_BASE64_ENCODED_LEN(n) + 1) == 0);
		CHECK(strlen(again) == size && memcmp(again, data, size) == 0);
		free(again);
	}
	free(out);
}

static void
check_credentials(const struct sasl_mech *m, const struct sasl_credentials *c)
{
	size_t z, a;

	CHECK(c != NULL && c->authzid != NULL && c->authcid != NULL && c->secret != NULL);
	z = strlen(c->authzid);
	a = strlen(c->authcid);
	CHECK(z <= SASL_FIELD_MAX);
	CHECK(a >= 1 && a <= SASL_FIELD_MAX);
	CHECK(c->secret_len >= 1 && c->secret_len <= SASL_FIELD_MAX);
	CHECK(strlen(c->secret) == c->secret_len);
	CHECK(sasl_utf8_valid((const unsigned char *)c->authcid, a));
	CHECK(sasl_utf8_valid((const unsigned char *)c->authzid, z));
	if (strcmp(sasl_mech_name(m), "LOGIN") == 0)
		CHECK(z == 0);
	else
		CHECK(sasl_utf8_valid((const unsigned char *)c->secret, c->secret_len));
}

/* Feeds one segment; returns the status. With encode, the segment is raw octets. */
static enum sasl_status
feed(struct sasl_exchange *x, const uint8_t *seg, size_t len, bool initial, bool encode)
{
	static const char unset[] = "unset";
	const char *ch = unset, *text = (const char *)seg;
	enum sasl_fail fail = SASL_FAIL_TOO_LONG;
	enum sasl_status st;
	char *enc = NULL;
	size_t tlen = len;

	if (encode) {
		enc = malloc(SASL_BASE64_ENCODED_LEN(len) + 1);
		CHECK(enc != NULL);
		CHECK(sasl_base64_encode(seg, len, enc, SASL_BASE64_ENCODED_LEN(len) + 1) == 0);
		text = enc;
		tlen = strlen(enc);
		if (initial && tlen == 0) {
			text = "="; /* RFC 4954 §4: an empty initial response */
			tlen = 1;
		}
	}
	st = sasl_exchange_step(x, tlen > 0 ? text : NULL, tlen, initial, &ch, &fail);
	free(enc);

	CHECK(sasl_exchange_decoded_zero(x));
	switch (st) {
	case SASL_CONTINUE: {
		size_t n = strlen(ch), got;
		unsigned char raw[SASL_CHALLENGE_RAW_MAX];

		CHECK(fail == SASL_FAIL_NONE);
		CHECK(n <= SASL_CHALLENGE_MAX);
		CHECK(sasl_base64_decode(ch, n, raw, sizeof(raw), &got) == 0);
		CHECK(sasl_exchange_credentials(x) == NULL);
		break;
	}
	case SASL_DONE:
		CHECK(ch == NULL && fail == SASL_FAIL_NONE);
		check_credentials(sasl_exchange_mech(x), sasl_exchange_credentials(x));
		break;
	case SASL_FAIL:
		CHECK(ch == NULL && fail != SASL_FAIL_NONE);
		CHECK(strlen(sasl_fail_reason(fail)) > 0);
		CHECK(sasl_exchange_credentials(x) == NULL);
		CHECK(sasl_exchange_state_zero(x));
		/* Reasons the wire text decides alone. */
		if (fail == SASL_FAIL_CANCELLED)
			CHECK(!initial && tlen == 1 && text != NULL);
		if (fail == SASL_FAIL_TOO_LONG)
			CHECK(tlen > SASL_RESPONSE_MAX);
		if (encode && tlen <= SASL_RESPONSE_MAX)
			CHECK(fail == SASL_FAIL_MALFORMED);
		break;
	case SASL_FORWARD:
		CHECK(0); /* PLAIN and LOGIN never forward */
		break;
	}
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct sasl_mech *m;
	struct sasl_exchange *x;
	const uint8_t *p, *end;
	enum sasl_status st;
	unsigned ctl, ir;
	bool encode;

	check_base64(data, size);
	if (size == 0)
		return 0;
	ctl = data[0];
	m = sasl_mech_find((ctl & 1) ? "LOGIN" : "PLAIN", 5);
	CHECK(m != NULL);
	ir = (ctl >> 1) & 3;
	encode = (ctl & 8) != 0;
	p = data + 1;
	end = data + size;

	x = sasl_exchange_new(m);
	CHECK(x != NULL);
	CHECK(sasl_exchange_state_zero(x) && sasl_exchange_decoded_zero(x));
	if (ir == 0)
		st = feed(x, NULL, 0, true, false);
	else if (ir == 1)
		st = feed(x, (const uint8_t *)"=", 1, true, false);
	else {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		/* A segment that is empty means "no initial response" in wire mode. */
		st = feed(x, p, len, true, encode);
		p = nl != NULL ? nl + 1 : end;
	}
	while (st == SASL_CONTINUE && p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		st = feed(x, p, len, false, encode);
		p = nl != NULL ? nl + 1 : end;
	}
	if (st != SASL_DONE)
		CHECK(sasl_exchange_credentials(x) == NULL);
	sasl_exchange_free(&x);
	CHECK(x == NULL);
	return 0;
}
