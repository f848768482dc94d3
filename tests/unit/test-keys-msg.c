/*
 * Unit tests for keys-msg: the messages between the queue and the keys process.
 * Every type round-trips (encode, decode, same values, and the decoded message
 * encodes to the same octets); every prefix of a valid encoding and every
 * encoding with a trailing octet is refused; every bound the decoders promise
 * (counts, digest and signature lengths, statuses, key types, name syntax) is
 * hit from both sides.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "keys/keys-msg.h"
#include "lib/wire.h"

/* The octets of b (malloc'd), emptying it. */
static unsigned char *take(struct evbuffer *b, size_t *len_r)
{
	size_t len = evbuffer_get_length(b);
	unsigned char *p = malloc(len > 0 ? len : 1);

	assert_non_null(p);
	assert_int_equal(evbuffer_remove(b, p, len), (int)len);
	*len_r = len;
	return p;
}

/* Exact-size heap copy, so ASan sees any read past the end. */
static unsigned char *copy_of(const unsigned char *p, size_t len)
{
	unsigned char *c = malloc(len > 0 ? len : 1);

	assert_non_null(c);
	memcpy(c, p, len);
	return c;
}

enum kind { SELECTORS, SIGN_REQ, SIGN_RES };

static int decode_any(enum kind k, const unsigned char *p, size_t len, const char **error)
{
	unsigned char *c = copy_of(p, len);
	int rc;

	*error = NULL;
	if (k == SELECTORS) {
		struct keys_selectors m;

		rc = keys_selectors_decode(c, len, &m, error);
		if (rc < 0)
			assert_null(m.v);
		free(m.v);
	} else if (k == SIGN_REQ) {
		struct keys_sign_req m;

		rc = keys_sign_req_decode(c, len, &m, error);
	} else {
		struct keys_sign_res m;

		rc = keys_sign_res_decode(c, len, &m, error);
	}
	free(c);
	if (rc < 0)
		assert_non_null(*error);
	return rc;
}

/* Every proper prefix fails, a trailing octet fails, the whole passes. */
static void check_truncations(enum kind k, const unsigned char *p, size_t len)
{
	const char *error;
	unsigned char *longer = malloc(len + 1);

	assert_int_equal(decode_any(k, p, len, &error), 0);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(decode_any(k, p, i, &error), -1);
	assert_non_null(longer);
	memcpy(longer, p, len);
	longer[len] = 0;
	assert_int_equal(decode_any(k, longer, len + 1, &error), -1);
	assert_string_equal(error, "trailing bytes after message");
	free(longer);
}

/* ---------------------------------------------------------------- names */

static void test_name_valid(void **state)
{
	char label63[64], label64[65], long253[254], long254[255];

	memset(label63, 'a', 63);
	label63[63] = '\0';
	memset(label64, 'a', 64);
	label64[64] = '\0';
	/* 253 = 63 + 1 + 63 + 1 + 63 + 1 + 61 */
	snprintf(long253, sizeof(long253), "%s.%s.%s.%.61s", label63, label63, label63, label63);
	assert_int_equal(strlen(long253), 253);
	snprintf(long254, sizeof(long254), "%s.%s.%s.%.62s", label63, label63, label63, label63);
	assert_int_equal(strlen(long254), 254);

	assert_true(keys_name_valid("example.org", true));
	assert_true(keys_name_valid("a", true));
	assert_true(keys_name_valid("sel_1-x.sub", true));
	assert_true(keys_name_valid(label63, true));
	assert_true(keys_name_valid(long253, true));
	assert_true(keys_name_valid("Sel2026E", false));
	assert_false(keys_name_valid("Sel2026E", true));
	assert_false(keys_name_valid("Example.org", true));
	assert_false(keys_name_valid(label64, false));
	assert_false(keys_name_valid(long254, false));
	assert_false(keys_name_valid("", false));
	assert_false(keys_name_valid(".", false));
	assert_false(keys_name_valid("..", false));
	assert_false(keys_name_valid("../etc", false));
	assert_false(keys_name_valid("a/b", false));
	assert_false(keys_name_valid("example.org.", false));
	assert_false(keys_name_valid(".example.org", false));
	assert_false(keys_name_valid("a..b", false));
	assert_false(keys_name_valid("a b", false));
	assert_false(keys_name_valid("caf\xc3\xa9", false));
	assert_false(keys_name_valid("a\tb", false));
}

/* ---------------------------------------------------------------- KEYS_SELECTORS */

static void test_selectors_round_trip(void **state)
{
	const struct keys_selector in[] = {
		{ "example.org", "2026e", DKIM_KEY_ED25519 },
		{ "example.org", "2026r", DKIM_KEY_RSA },
		{ "other.example", "Sel_1", DKIM_KEY_RSA },
	};
	struct evbuffer *b = evbuffer_new();
	struct keys_selectors m;
	const char *error = NULL;
	unsigned char *p, *again;
	size_t len, len2;

	for (size_t n = 0; n <= 3; n++) {
		keys_selectors_encode(b, in, n);
		p = take(b, &len);
		assert_int_equal(keys_selectors_decode(p, len, &m, &error), 0);
		assert_int_equal(m.n, n);
		if (n == 0)
			assert_null(m.v);
		for (size_t i = 0; i < n; i++) {
			assert_string_equal(m.v[i].domain, in[i].domain);
			assert_string_equal(m.v[i].selector, in[i].selector);
			assert_int_equal(m.v[i].type, in[i].type);
		}
		keys_selectors_encode(b, m.v, m.n);
		again = take(b, &len2);
		assert_int_equal(len2, len);
		assert_memory_equal(again, p, len);
		free(again);
		free(m.v);
		check_truncations(SELECTORS, p, len);
		free(p);
	}
	evbuffer_free(b);
}

static void test_selectors_max(void **state)
{
	struct keys_selector *v = calloc(KEYS_SELECTORS_MAX + 1, sizeof(*v));
	struct evbuffer *b = evbuffer_new();
	struct keys_selectors m;
	const char *error = NULL;
	unsigned char *p;
	size_t len;

	assert_non_null(v);
	for (size_t i = 0; i <= KEYS_SELECTORS_MAX; i++)
		v[i] = (struct keys_selector){ "example.org", "s", DKIM_KEY_ED25519 };
	keys_selectors_encode(b, v, KEYS_SELECTORS_MAX);
	p = take(b, &len);
	assert_int_equal(keys_selectors_decode(p, len, &m, &error), 0);
	assert_int_equal(m.n, KEYS_SELECTORS_MAX);
	free(m.v);
	free(p);

	/* One more than the maximum: the count alone refuses it. */
	wire_put_u32(b, KEYS_SELECTORS_MAX + 1);
	for (size_t i = 0; i <= KEYS_SELECTORS_MAX; i++) {
		wire_put_str(b, "example.org");
		wire_put_str(b, "s");
		wire_put_u8(b, 0);
	}
	p = take(b, &len);
	assert_int_equal(keys_selectors_decode(p, len, &m, &error), -1);
	assert_null(m.v);
	assert_int_equal(m.n, 0);
	free(p);

	/* A count the frame cannot hold: refused before any allocation. */
	wire_put_u32(b, KEYS_SELECTORS_MAX);
	wire_put_str(b, "example.org");
	wire_put_str(b, "s");
	wire_put_u8(b, 0);
	p = take(b, &len);
	assert_int_equal(keys_selectors_decode(p, len, &m, &error), -1);
	assert_string_equal(error, "malformed or truncated message");
	assert_null(m.v);
	free(p);
	free(v);
	evbuffer_free(b);
}

/* One selector with these fields, encoded by hand. */
static int selectors_one(const char *domain, const char *selector, uint8_t type,
    const char **error)
{
	struct evbuffer *b = evbuffer_new();
	unsigned char *p;
	size_t len;
	int rc;

	wire_put_u32(b, 1);
	wire_put_str(b, domain);
	wire_put_str(b, selector);
	wire_put_u8(b, type);
	p = take(b, &len);
	rc = decode_any(SELECTORS, p, len, error);
	free(p);
	evbuffer_free(b);
	return rc;
}

static void test_selectors_bad_fields(void **state)
{
	const char *error;

	assert_int_equal(selectors_one("example.org", "s1", 1, &error), 0);
	assert_int_equal(selectors_one("example.org", "s1", 2, &error), -1);
	assert_string_equal(error, "unknown key type");
	assert_int_equal(selectors_one("example.org", "s1", 255, &error), -1);
	assert_int_equal(selectors_one("Example.org", "s1", 0, &error), -1);
	assert_string_equal(error, "invalid domain or selector name");
	assert_int_equal(selectors_one("example.org", "../s1", 0, &error), -1);
	assert_int_equal(selectors_one("example.org", "", 0, &error), -1);
	assert_int_equal(selectors_one("", "s1", 0, &error), -1);
	assert_int_equal(selectors_one(NULL, "s1", 0, &error), -1);
	assert_string_equal(error, "malformed or truncated message");
	assert_int_equal(selectors_one("example.org", NULL, 0, &error), -1);
}

/* ---------------------------------------------------------------- KEYS_SIGN_REQ */

static void test_sign_req_round_trip(void **state)
{
	struct keys_sign_req in = { .n = 0 }, out;
	struct evbuffer *b = evbuffer_new();
	const char *error = NULL;
	unsigned char *p, *again;
	size_t len, len2;

	for (size_t n = 1; n <= KEYS_SIGN_MAX; n++) {
		in.items[n - 1].domain = n % 2 ? "example.org" : "b.example";
		in.items[n - 1].selector = n % 3 ? "Sel" : "x-1";
		memset(in.items[n - 1].digest, (int)n, 32);
		in.items[n - 1].digest[31] = 0xff;
		in.n = n;
		keys_sign_req_encode(b, &in);
		p = take(b, &len);
		assert_int_equal(keys_sign_req_decode(p, len, &out, &error), 0);
		assert_int_equal(out.n, n);
		for (size_t i = 0; i < n; i++) {
			assert_string_equal(out.items[i].domain, in.items[i].domain);
			assert_string_equal(out.items[i].selector, in.items[i].selector);
			assert_memory_equal(out.items[i].digest, in.items[i].digest, 32);
		}
		keys_sign_req_encode(b, &out);
		again = take(b, &len2);
		assert_int_equal(len2, len);
		assert_memory_equal(again, p, len);
		free(again);
		check_truncations(SIGN_REQ, p, len);
		free(p);
	}
	evbuffer_free(b);
}

static int sign_req_raw(uint32_t count, size_t items, const char *domain,
    const char *selector, size_t digest_len, const char **error)
{
	struct evbuffer *b = evbuffer_new();
	unsigned char digest[64] = { 0 }, *p;
	size_t len;
	int rc;

	wire_put_u32(b, count);
	for (size_t i = 0; i < items; i++) {
		wire_put_str(b, domain);
		wire_put_str(b, selector);
		wire_put_blob(b, digest, digest_len);
	}
	p = take(b, &len);
	rc = decode_any(SIGN_REQ, p, len, error);
	free(p);
	evbuffer_free(b);
	return rc;
}

static void test_sign_req_bounds(void **state)
{
	const char *error;

	assert_int_equal(sign_req_raw(1, 1, "example.org", "s", 32, &error), 0);
	assert_int_equal(sign_req_raw(KEYS_SIGN_MAX, KEYS_SIGN_MAX, "a.b", "s", 32, &error), 0);
	assert_int_equal(sign_req_raw(KEYS_SIGN_MAX + 1, KEYS_SIGN_MAX + 1, "a.b", "s", 32,
	    &error), -1);
	assert_int_equal(sign_req_raw(UINT32_MAX, 1, "a.b", "s", 32, &error), -1);
	assert_int_equal(sign_req_raw(0, 0, "a.b", "s", 32, &error), -1);
	assert_string_equal(error, "a signing request without items");
	assert_int_equal(sign_req_raw(1, 1, "example.org", "s", 31, &error), -1);
	assert_string_equal(error, "a digest that is not 32 octets");
	assert_int_equal(sign_req_raw(1, 1, "example.org", "s", 33, &error), -1);
	assert_int_equal(sign_req_raw(1, 1, "example.org", "s", 0, &error), -1);
	assert_int_equal(sign_req_raw(1, 1, "EXAMPLE.org", "s", 32, &error), -1);
	assert_string_equal(error, "invalid domain or selector name");
	assert_int_equal(sign_req_raw(1, 1, "example.org", "s/..", 32, &error), -1);
	assert_int_equal(sign_req_raw(1, 1, NULL, "s", 32, &error), -1);
	assert_int_equal(sign_req_raw(2, 1, "example.org", "s", 32, &error), -1);
}

/* ---------------------------------------------------------------- KEYS_SIGN_RES */

static void test_sign_res_round_trip(void **state)
{
	struct keys_sign_res in = { .n = 0 }, out;
	struct evbuffer *b = evbuffer_new();
	const char *error = NULL;
	unsigned char *p, *again;
	size_t len, len2;

	for (size_t n = 0; n <= KEYS_SIGN_MAX; n++) {
		if (n > 0) {
			struct keys_sig *s = &in.sigs[n - 1];

			s->status = (enum keys_status)((n - 1) % 3);
			s->len = s->status == KEYS_OK ? (n == 1 ? KEYS_SIG_MAX : 64) : 0;
			for (size_t i = 0; i < s->len; i++)
				s->sig[i] = (unsigned char)(i * 7 + n);
		}
		in.n = n;
		keys_sign_res_encode(b, &in);
		p = take(b, &len);
		assert_int_equal(keys_sign_res_decode(p, len, &out, &error), 0);
		assert_int_equal(out.n, n);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(out.sigs[i].status, in.sigs[i].status);
			assert_int_equal(out.sigs[i].len, in.sigs[i].len);
			assert_memory_equal(out.sigs[i].sig, in.sigs[i].sig, in.sigs[i].len);
		}
		keys_sign_res_encode(b, &out);
		again = take(b, &len2);
		assert_int_equal(len2, len);
		assert_memory_equal(again, p, len);
		free(again);
		check_truncations(SIGN_RES, p, len);
		free(p);
	}
	evbuffer_free(b);
}

static int sign_res_raw(uint32_t count, uint8_t status, size_t siglen, const char **error)
{
	struct evbuffer *b = evbuffer_new();
	unsigned char sig[KEYS_SIG_MAX + 8] = { 1 }, *p;
	size_t len;
	int rc;

	wire_put_u32(b, count);
	for (uint32_t i = 0; i < count && i <= KEYS_SIGN_MAX; i++) {
		wire_put_u8(b, status);
		wire_put_blob(b, sig, siglen);
	}
	p = take(b, &len);
	rc = decode_any(SIGN_RES, p, len, error);
	free(p);
	evbuffer_free(b);
	return rc;
}

static void test_sign_res_bounds(void **state)
{
	const char *error;

	assert_int_equal(sign_res_raw(1, KEYS_OK, 1, &error), 0);
	assert_int_equal(sign_res_raw(1, KEYS_OK, KEYS_SIG_MAX, &error), 0);
	assert_int_equal(sign_res_raw(1, KEYS_OK, KEYS_SIG_MAX + 1, &error), -1);
	assert_string_equal(error, "a signature of 0 or more than 512 octets");
	assert_int_equal(sign_res_raw(1, KEYS_OK, 0, &error), -1);
	assert_int_equal(sign_res_raw(1, KEYS_NO_KEY, 0, &error), 0);
	assert_int_equal(sign_res_raw(1, KEYS_FAILED, 0, &error), 0);
	assert_int_equal(sign_res_raw(1, KEYS_NO_KEY, 1, &error), -1);
	assert_string_equal(error, "a signature with a failure status");
	assert_int_equal(sign_res_raw(1, KEYS_FAILED + 1, 0, &error), -1);
	assert_string_equal(error, "unknown signing status");
	assert_int_equal(sign_res_raw(1, 0xff, 1, &error), -1);
	assert_int_equal(sign_res_raw(KEYS_SIGN_MAX, KEYS_OK, 64, &error), 0);
	assert_int_equal(sign_res_raw(KEYS_SIGN_MAX + 1, KEYS_OK, 64, &error), -1);
	assert_int_equal(sign_res_raw(0, KEYS_OK, 64, &error), 0);   /* "could not read" */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_selectors_round_trip),
		cmocka_unit_test(test_selectors_max),
		cmocka_unit_test(test_selectors_bad_fields),
		cmocka_unit_test(test_sign_req_round_trip),
		cmocka_unit_test(test_sign_req_bounds),
		cmocka_unit_test(test_sign_res_round_trip),
		cmocka_unit_test(test_sign_res_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
