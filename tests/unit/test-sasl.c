/*
 * Unit tests for sasl: strict base64 (RFC 4648 §4, §10 vectors, and a reference
 * decoder on mutated inputs), mechanism lookup and listing, PLAIN (RFC 4616 §2
 * syntax, §4 examples, a reference model on random messages), LOGIN
 * (draft-murchison-sasl-login-00), the RFC 4954 §4 wire rules ("*", "=", 12288),
 * wiping of secrets, the SASL_FORWARD plumbing (with a test mechanism), and the
 * assertions on out-of-order calls.
 *
 * Every response is fed from a heap block of exactly its length with no NUL
 * after it, so ASan catches any read past len. The exchange consumes whole lines
 * (line extraction is lineio's job), so "byte at a time" becomes: every
 * truncation of a response, each with its exact expected outcome.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sasl/sasl-base64.h"
#include "sasl/sasl-private.h"
#include "sasl/sasl.h"

#define S(lit) (lit), (sizeof(lit) - 1) /* a literal and its length, NULs included */

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ---- helpers ---------------------------------------------------------------- */

/* Feeds s[0..len) to the exchange from an exact-size heap copy (NULL when empty). */
static enum sasl_status
feed(struct sasl_exchange *x, const void *s, size_t len, bool initial, const char **ch,
     enum sasl_fail *fail)
{
	char *copy = NULL;
	enum sasl_status st;

	if (len > 0) {
		copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, s, len);
	}
	st = sasl_exchange_step(x, copy, len, initial, ch, fail);
	free(copy);
	/* The contract on the out-parameters, whatever happened. */
	if (st == SASL_CONTINUE)
		assert_non_null(*ch);
	else
		assert_null(*ch);
	if (st == SASL_FAIL)
		assert_int_not_equal(*fail, SASL_FAIL_NONE);
	else
		assert_int_equal(*fail, SASL_FAIL_NONE);
	/* The decoded response never outlives the step. */
	assert_true(sasl_exchange_decoded_zero(x));
	if (st == SASL_FAIL) {
		assert_null(sasl_exchange_credentials(x));
		assert_true(sasl_exchange_state_zero(x));
	}
	return st;
}

static enum sasl_status
feed_str(struct sasl_exchange *x, const char *s, bool initial, const char **ch,
	 enum sasl_fail *fail)
{
	return feed(x, s, strlen(s), initial, ch, fail);
}

/* The base64 of raw[0..len), malloc'd. */
static char *
b64(const void *raw, size_t len)
{
	size_t size = SASL_BASE64_ENCODED_LEN(len) + 1;
	char *out = malloc(size);

	assert_non_null(out);
	assert_int_equal(sasl_base64_encode(raw, len, out, size), 0);
	assert_int_equal(strlen(out), size - 1);
	return out;
}

static const struct sasl_mech *
mech(const char *name)
{
	const struct sasl_mech *m = sasl_mech_find(name, strlen(name));

	assert_non_null(m);
	return m;
}

struct outcome {
	enum sasl_status st;
	enum sasl_fail fail;
	char authzid[SASL_FIELD_MAX + 1], authcid[SASL_FIELD_MAX + 1], secret[SASL_FIELD_MAX + 1];
	size_t secret_len;
};

/* Runs a PLAIN exchange on msg[0..len): as the initial response, or (initial
 * false) as the response to the empty challenge that follows an AUTH without one. */
static void
plain_run(const void *msg, size_t len, bool as_initial, struct outcome *o)
{
	struct sasl_exchange *x = sasl_exchange_new(mech("PLAIN"));
	char *enc = b64(msg, len);
	const char *ch;

	assert_non_null(x);
	memset(o, 0, sizeof(*o));
	if (as_initial) {
		/* RFC 4954 §4: an empty initial response is sent as "=". */
		o->st = feed_str(x, len == 0 ? "=" : enc, true, &ch, &o->fail);
	} else {
		assert_int_equal(feed(x, NULL, 0, true, &ch, &o->fail), SASL_CONTINUE);
		assert_string_equal(ch, "");
		o->st = feed_str(x, enc, false, &ch, &o->fail);
	}
	if (o->st == SASL_DONE) {
		const struct sasl_credentials *c = sasl_exchange_credentials(x);

		assert_non_null(c);
		assert_true(strlen(c->authzid) <= SASL_FIELD_MAX);
		assert_true(strlen(c->authcid) <= SASL_FIELD_MAX);
		assert_int_equal(strlen(c->secret), c->secret_len);
		strcpy(o->authzid, c->authzid);
		strcpy(o->authcid, c->authcid);
		memcpy(o->secret, c->secret, c->secret_len + 1);
		o->secret_len = c->secret_len;
	}
	free(enc);
	sasl_exchange_free(&x);
	assert_null(x);
}

static void
expect_plain_ok(const void *msg, size_t len, const char *authzid, const char *authcid,
		const char *secret)
{
	struct outcome o;

	for (int as_initial = 0; as_initial <= 1; as_initial++) {
		plain_run(msg, len, as_initial, &o);
		assert_int_equal(o.st, SASL_DONE);
		assert_string_equal(o.authzid, authzid);
		assert_string_equal(o.authcid, authcid);
		assert_string_equal(o.secret, secret);
		assert_int_equal(o.secret_len, strlen(secret));
	}
}

static void
expect_plain_fail(const void *msg, size_t len, enum sasl_fail fail)
{
	struct outcome o;

	for (int as_initial = 0; as_initial <= 1; as_initial++) {
		plain_run(msg, len, as_initial, &o);
		assert_int_equal(o.st, SASL_FAIL);
		assert_int_equal(o.fail, fail);
	}
}

/* A reference UTF-8 check written differently from the module's: decode each
 * code point, then reject overlong forms, surrogates and values past U+10FFFF. */
static bool
ref_utf8(const unsigned char *s, size_t n)
{
	static const uint32_t min[] = { 0, 0x80, 0x800, 0x10000 };

	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		uint32_t cp;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else
			return false;
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* A reference base64 decoder (RFC 4648 §4, canonical): 0 or -1. */
static int
ref_b64(const char *s, size_t n, unsigned char *out, size_t *olen)
{
	size_t o = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		unsigned v[4];
		size_t pads = 0;

		for (size_t j = 0; j < 4; j++) {
			const char *p;

			if (s[i + j] == '=') {
				if (i + 4 != n || j < 2 || (j == 2 && s[i + 3] != '='))
					return -1;
				v[j] = 0;
				pads++;
			} else if (s[i + j] == '\0' || (p = strchr(alphabet, s[i + j])) == NULL)
				return -1;
			else
				v[j] = (unsigned)(p - alphabet);
		}
		if ((pads == 2 && (v[1] & 0x0f) != 0) || (pads == 1 && (v[2] & 0x03) != 0))
			return -1;
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pads < 2)
			out[o++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
		if (pads < 1)
			out[o++] = (unsigned char)(v[2] << 6 | v[3]);
	}
	*olen = o;
	return 0;
}

/* ---- base64 ----------------------------------------------------------------- */

/* RFC 4648 §10 test vectors, both ways. */
static void
test_base64_vectors(void **state)
{
	static const char *const v[][2] = {
		{ "", "" },         { "f", "Zg==" },         { "fo", "Zm8=" },
		{ "foo", "Zm9v" },  { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	unsigned char out[16];
	size_t n;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *enc = b64(v[i][0], strlen(v[i][0]));

		assert_string_equal(enc, v[i][1]);
		free(enc);
		n = 99;
		assert_int_equal(sasl_base64_decode(v[i][1], strlen(v[i][1]), out, sizeof(out), &n), 0);
		assert_int_equal(n, strlen(v[i][0]));
		assert_memory_equal(out, v[i][0], n);
	}
	/* All 256 octet values survive a round trip, and "+" and "/" appear. */
	unsigned char all[256], back[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	char *enc = b64(all, sizeof(all));
	assert_non_null(strchr(enc, '+'));
	assert_non_null(strchr(enc, '/'));
	assert_int_equal(sasl_base64_decode(enc, strlen(enc), back, sizeof(back), &n), 0);
	assert_int_equal(n, 256);
	assert_memory_equal(back, all, 256);
	free(enc);
}

static void
test_base64_rejects(void **state)
{
	static const char *const bad[] = {
		"Zg=", "Zg", "Z", "Zm9vY", "Zm9v=", /* not a multiple of 4 */
		"Zm9v\r\n", " Zm9v", "Zm9v ", "Zm 9", "Zm\t9", "Zm9v\n", /* whitespace */
		"Zg==Zg==", "Zm=v", "=Zm9", "Z===", "====", "Zm9v====", /* misplaced "=" */
		"Zh==", "Zm9=", /* non-zero pad bits (RFC 4648 §3.5) */
		"Zm-v", "Zm_v", "Zm.v", "Zm9\x80", "Zm9\xff", "Zm%v", /* outside the alphabet */
	};
	unsigned char out[16];
	size_t n = 77;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sasl_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out), &n) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* A NUL inside is not base64 either. */
	assert_int_equal(sasl_base64_decode("Zm\0v", 4, out, sizeof(out), &n), -1);
	/* The canonical forms of "Zh==" and "Zm9=" are accepted. */
	assert_int_equal(sasl_base64_decode("Zg==", 4, out, sizeof(out), &n), 0);
	assert_int_equal(sasl_base64_decode("Zm8=", 4, out, sizeof(out), &n), 0);
	/* A refused input leaves zeros where it was written, and *out_len_r alone. */
	memset(out, 0xaa, sizeof(out));
	n = 77;
	assert_int_equal(sasl_base64_decode("c2VjcmV0c2VjcmV0Zh==", 20, out, sizeof(out), &n), -1);
	assert_int_equal(n, 77);
	for (size_t i = 0; i < 13; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(out[13], 0xaa);
}

static void
test_base64_bounds(void **state)
{
	unsigned char out[8];
	char enc[9];
	size_t n;

	/* "Zm9vYmFy" is 6 octets: fits 6, not 5; nothing is written past out_size. */
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(sasl_base64_decode("Zm9vYmFy", 8, out, 6, &n), 0);
	assert_int_equal(n, 6);
	assert_int_equal(out[6], 0xaa);
	memset(out, 0xaa, sizeof(out));
	assert_int_equal(sasl_base64_decode("Zm9vYmFy", 8, out, 5, &n), -1);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xaa);
	/* "Zm9vYg==" is 4 octets: padding counts. */
	assert_int_equal(sasl_base64_decode("Zm9vYg==", 8, out, 4, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(sasl_base64_decode("Zm9vYg==", 8, out, 3, &n), -1);
	/* An empty text decodes to nothing, even into no room. */
	assert_int_equal(sasl_base64_decode("", 0, out, 0, &n), 0);
	assert_int_equal(n, 0);

	/* Encoding 4 octets needs 8 characters and a NUL. */
	assert_int_equal(sasl_base64_encode("foob", 4, enc, 9), 0);
	assert_string_equal(enc, "Zm9vYg==");
	memset(enc, 'x', sizeof(enc));
	assert_int_equal(sasl_base64_encode("foob", 4, enc, 8), -1);
	assert_int_equal(enc[0], 'x');
	assert_int_equal(sasl_base64_encode("", 0, enc, 1), 0);
	assert_string_equal(enc, "");
	assert_int_equal(sasl_base64_encode("", 0, enc, 0), -1);
}

/* The module against the reference decoder, on valid encodings of random octets
 * with random damage: same verdict, same output. */
static void
test_base64_differential(void **state)
{
	static const char damage[] = "= \r\n-_\x80\xff" "Az+/09";
	unsigned char raw[64], got[64], want[64];
	size_t ngot, nwant;
	unsigned accepted = 0, refused = 0;

	srand(4648);
	for (int iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)rand() % 40;
		for (size_t i = 0; i < len; i++)
			raw[i] = (unsigned char)rand();
		char *enc = b64(raw, len);
		size_t elen = strlen(enc);
		int edits = rand() % 3;

		for (int e = 0; e < edits && elen > 0; e++) {
			int what = rand() % 4;
			if (what == 0)
				elen--; /* truncate */
			else if (what == 1)
				enc[rand() % (int)elen] = damage[rand() % (int)(sizeof(damage) - 1)];
			else
				enc[rand() % (int)elen] = alphabet[rand() % 64];
		}
		int r = sasl_base64_decode(enc, elen, got, sizeof(got), &ngot);
		int w = ref_b64(enc, elen, want, &nwant);
		if (r != w)
			fail_msg("verdict %d, reference %d on \"%.*s\"", r, w, (int)elen, enc);
		if (r == 0) {
			assert_int_equal(ngot, nwant);
			assert_memory_equal(got, want, ngot);
			accepted++;
		} else
			refused++;
		free(enc);
	}
	/* Both verdicts were exercised plenty. */
	assert_true(accepted > 3000 && refused > 3000);
}

/* ---- mechanisms --------------------------------------------------------------- */

static void
test_mech_find(void **state)
{
	const struct sasl_mech *plain = sasl_mech_find("PLAIN", 5);
	const struct sasl_mech *login = sasl_mech_find("LOGIN", 5);

	assert_non_null(plain);
	assert_non_null(login);
	assert_ptr_not_equal(plain, login);
	assert_string_equal(sasl_mech_name(plain), "PLAIN");
	assert_string_equal(sasl_mech_name(login), "LOGIN");
	assert_true(sasl_mech_plaintext(plain));
	assert_true(sasl_mech_plaintext(login));
	/* Case-insensitive. */
	assert_ptr_equal(sasl_mech_find("plain", 5), plain);
	assert_ptr_equal(sasl_mech_find("PlAiN", 5), plain);
	assert_ptr_equal(sasl_mech_find("login", 5), login);
	assert_ptr_equal(sasl_mech_find("lOgIn", 5), login);
	/* The length counts, not a NUL. */
	assert_ptr_equal(sasl_mech_find("PLAINX", 5), plain);
	assert_null(sasl_mech_find("PLAIN", 4));
	assert_null(sasl_mech_find("PLAINX", 6));
	assert_null(sasl_mech_find("PLAIN\0", 6));
	assert_null(sasl_mech_find(" PLAIN", 6));
	assert_null(sasl_mech_find("", 0));
	/* Unknown or not (yet) implemented. */
	assert_null(sasl_mech_find("CRAM-MD5", 8));
	assert_null(sasl_mech_find("SCRAM-SHA-256", 13));
	assert_null(sasl_mech_find("XOAUTH2", 7));
	assert_null(sasl_mech_find("ANONYMOUS", 9));
	/* Not a locale-dependent fold: dotless/dotted i variants are not "I". */
	assert_null(sasl_mech_find("PLA\xc4\xb1N", 6));
}

static void
test_mech_list(void **state)
{
	const char *all = sasl_mech_list(true);

	assert_string_equal(all, "PLAIN LOGIN");
	assert_string_equal(sasl_mech_list(false), "");
	assert_ptr_equal(sasl_mech_list(true), all); /* static, built once */
	/* Every listed name is found, under its own name. */
	for (const char *p = all; *p != '\0';) {
		size_t n = strcspn(p, " ");
		const struct sasl_mech *m = sasl_mech_find(p, n);

		assert_non_null(m);
		assert_int_equal(strlen(sasl_mech_name(m)), n);
		assert_memory_equal(sasl_mech_name(m), p, n);
		p += n + (p[n] == ' ');
	}
}

static void
test_fail_reasons(void **state)
{
	const enum sasl_fail all[] = { SASL_FAIL_NONE, SASL_FAIL_CANCELLED, SASL_FAIL_BAD_BASE64,
				       SASL_FAIL_MALFORMED, SASL_FAIL_TOO_LONG };

	for (size_t i = 0; i < 5; i++) {
		assert_true(strlen(sasl_fail_reason(all[i])) > 10);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(sasl_fail_reason(all[i]), sasl_fail_reason(all[j]));
	}
}

/* ---- PLAIN ------------------------------------------------------------------- */

/* RFC 4616 §4, both examples, on the wire as the RFC shows them. */
static void
test_plain_rfc4616_examples(void **state)
{
	struct sasl_exchange *x = sasl_exchange_new(mech("PLAIN"));
	const struct sasl_credentials *c;
	const char *ch;
	enum sasl_fail fail;

	/* "C: a002 AUTHENTICATE "PLAIN" / S: + "" / C: {21} \0tim\0tanstaaftanstaaf" */
	assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
	assert_string_equal(ch, "");
	assert_null(sasl_exchange_credentials(x));
	assert_int_equal(feed_str(x, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", false, &ch, &fail), SASL_DONE);
	c = sasl_exchange_credentials(x);
	assert_non_null(c);
	assert_string_equal(c->authzid, "");
	assert_string_equal(c->authcid, "tim");
	assert_string_equal(c->secret, "tanstaaftanstaaf");
	assert_int_equal(c->secret_len, 16);
	assert_ptr_equal(sasl_exchange_mech(x), mech("PLAIN"));
	sasl_exchange_free(&x);

	/* "Ursel\0Kurt\0xipj3plmq", as an initial response (RFC 4954 §4). */
	x = sasl_exchange_new(mech("plain"));
	assert_int_equal(feed_str(x, "VXJzZWwAS3VydAB4aXBqM3BsbXE=", true, &ch, &fail), SASL_DONE);
	c = sasl_exchange_credentials(x);
	assert_string_equal(c->authzid, "Ursel");
	assert_string_equal(c->authcid, "Kurt");
	assert_string_equal(c->secret, "xipj3plmq");
	assert_int_equal(c->secret_len, 9);
	sasl_exchange_free(&x);
	assert_null(x);
	sasl_exchange_free(&x); /* already NULL: fine */
	sasl_exchange_free(NULL);
}

/* RFC 4616 §2 syntax: where the NULs are. */
static void
test_plain_nul_positions(void **state)
{
	expect_plain_ok(S("\0t\0p"), "", "t", "p");
	expect_plain_ok(S("z\0t\0p"), "z", "t", "p");
	expect_plain_ok(S("user@example.org\0user@example.org\0pass word"), "user@example.org",
			"user@example.org", "pass word");
	expect_plain_fail(S(""), SASL_FAIL_MALFORMED);             /* empty message */
	expect_plain_fail(S("tim"), SASL_FAIL_MALFORMED);          /* no NUL */
	expect_plain_fail(S("\0tim"), SASL_FAIL_MALFORMED);        /* one NUL */
	expect_plain_fail(S("tim\0pw"), SASL_FAIL_MALFORMED);      /* one NUL */
	expect_plain_fail(S("\0"), SASL_FAIL_MALFORMED);
	expect_plain_fail(S("\0\0"), SASL_FAIL_MALFORMED);         /* empty authcid, passwd */
	expect_plain_fail(S("\0\0pw"), SASL_FAIL_MALFORMED);       /* empty authcid */
	expect_plain_fail(S("z\0\0pw"), SASL_FAIL_MALFORMED);      /* empty authcid */
	expect_plain_fail(S("\0tim\0"), SASL_FAIL_MALFORMED);      /* empty passwd */
	expect_plain_fail(S("\0tim\0pw\0"), SASL_FAIL_MALFORMED);  /* a third NUL */
	expect_plain_fail(S("\0tim\0p\0w"), SASL_FAIL_MALFORMED);  /* NUL inside passwd */
	expect_plain_fail(S("a\0b\0c\0d"), SASL_FAIL_MALFORMED);
	expect_plain_fail(S("\0\0\0"), SASL_FAIL_MALFORMED);
	expect_plain_fail(S("\0\0\0\0"), SASL_FAIL_MALFORMED);
}

/* RFC 4616 §2: up to 255 octets each; authzid may be absent, the others not. */
static void
test_plain_lengths(void **state)
{
	char f255[256], f256[257], msg[1024];
	size_t n;

	memset(f255, 'a', 255);
	f255[255] = '\0';
	memset(f256, 'b', 256);
	f256[256] = '\0';

	n = (size_t)snprintf(msg, sizeof(msg), "%s%c%s%c%s", f255, 0, f255, 0, f255);
	assert_int_equal(n, 767);
	expect_plain_ok(msg, n, f255, f255, f255);

	n = (size_t)snprintf(msg, sizeof(msg), "%s%c%s%c%s", f256, 0, "u", 0, "p");
	expect_plain_fail(msg, n, SASL_FAIL_MALFORMED);
	n = (size_t)snprintf(msg, sizeof(msg), "%c%s%c%s", 0, f256, 0, "p");
	expect_plain_fail(msg, n, SASL_FAIL_MALFORMED);
	n = (size_t)snprintf(msg, sizeof(msg), "%c%s%c%s", 0, "u", 0, f256);
	expect_plain_fail(msg, n, SASL_FAIL_MALFORMED);
	/* The limit is in octets, not characters: 127 "é" (254 octets) pass,
	 * 128 (256 octets) do not. */
	char wide[257];
	for (int i = 0; i < 128; i++)
		memcpy(wide + 2 * i, "\xc3\xa9", 2);
	memcpy(msg, "\0u\0", 3);
	memcpy(msg + 3, wide, 256);
	wide[254] = '\0';
	expect_plain_ok(msg, 3 + 254, "", "u", wide);
	expect_plain_fail(msg, 3 + 256, SASL_FAIL_MALFORMED);
}

/* RFC 4616 §2 / RFC 3629 §4: all three fields must be UTF-8. */
static void
test_plain_utf8(void **state)
{
	static const char *const bad[] = {
		"\x80",             /* lone continuation */
		"a\xbf",            /* lone continuation */
		"\xc3\x28",         /* bad continuation */
		"\xc3",             /* truncated */
		"\xe2\x82",         /* truncated */
		"\xf0\x9f\x98",     /* truncated */
		"\xc0\xaf",         /* overlong "/" */
		"\xc1\xbf",         /* overlong */
		"\xe0\x80\xaf",     /* overlong */
		"\xf0\x80\x80\xaf", /* overlong */
		"\xed\xa0\x80",     /* surrogate U+D800 */
		"\xed\xbf\xbf",     /* surrogate U+DFFF */
		"\xf4\x90\x80\x80", /* U+110000 */
		"\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80", "\xfe", "\xff",
	};
	static const char *const good[] = {
		"zo\xc3\xab",       /* zoë */
		"\xe2\x82\xac",     /* € */
		"\xed\x9f\xbf",     /* U+D7FF */
		"\xee\x80\x80",     /* U+E000 */
		"\xf0\x9f\x98\x80", /* U+1F600 */
		"\xf4\x8f\xbf\xbf", /* U+10FFFF */
		"\x7f\x01",
	};
	char msg[64];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* In each of the three fields in turn. */
		n = (size_t)snprintf(msg, sizeof(msg), "%s%c%s%c%s", bad[i], 0, "u", 0, "p");
		expect_plain_fail(msg, n, SASL_FAIL_MALFORMED);
		n = (size_t)snprintf(msg, sizeof(msg), "%c%s%c%s", 0, bad[i], 0, "p");
		expect_plain_fail(msg, n, SASL_FAIL_MALFORMED);
		n = (size_t)snprintf(msg, sizeof(msg), "%c%s%c%s", 0, "u", 0, bad[i]);
		expect_plain_fail(msg, n, SASL_FAIL_MALFORMED);
		assert_false(sasl_utf8_valid((const unsigned char *)bad[i], strlen(bad[i])));
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = (size_t)snprintf(msg, sizeof(msg), "%s%c%s%c%s", good[i], 0, good[i], 0, good[i]);
		expect_plain_ok(msg, n, good[i], good[i], good[i]);
	}
}

/* The module against a reference model of RFC 4616 §2 on random messages built
 * from NULs, ASCII and UTF-8 fragments, fields around the 255-octet limit. */
static void
test_plain_differential(void **state)
{
	static const unsigned char pool[] = { 0, 'a', 'Z', 0xc3, 0xa9, 0x80, 0xbf, 0xe2, 0x82,
					      0xac, 0xed, 0xa0, 0xf0, 0x9f, 0xf4, 0x90, 0xc0, 0xff };
	static const size_t lens[] = { 0, 1, 2, 3, 4, 7, 100, 253, 254, 255, 256, 257 };
	static const char *const valid[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80" };
	unsigned char msg[1100];
	unsigned ok = 0, bad = 0;

	srand(4616);
	for (int iter = 0; iter < 3000; iter++) {
		size_t n = 0;
		int fields = rand() % 4 != 0 ? 3 : 1 + rand() % 4;
		bool mostly_ascii = rand() % 4 != 0;

		for (int f = 0; f < fields; f++) {
			size_t flen = lens[rand() % (int)(sizeof(lens) / sizeof(lens[0]))];
			size_t start;

			if (f > 0)
				msg[n++] = 0;
			start = n;
			/* Either ASCII with some valid UTF-8 sequences (which may
			 * overshoot flen by up to 3 octets), or random octets from the
			 * pool. */
			while (n - start < flen) {
				if (!mostly_ascii) {
					msg[n++] = pool[1 + rand() % (int)(sizeof(pool) - 1)];
				} else if (rand() % 20 == 0) {
					const char *seq = valid[rand() % 3];
					memcpy(msg + n, seq, strlen(seq));
					n += strlen(seq);
				} else
					msg[n++] = (unsigned char)('a' + rand() % 26);
			}
		}
		/* The model: exactly two NULs, field lengths, UTF-8. */
		size_t nuls = 0, pos[2] = { 0, 0 };
		for (size_t i = 0; i < n; i++)
			if (msg[i] == 0 && nuls++ < 2)
				pos[nuls - 1] = i;
		bool want = nuls == 2;
		size_t zl = pos[0], cl = pos[1] - pos[0] - 1, pl = n - pos[1] - 1;
		if (want)
			want = zl <= 255 && cl >= 1 && cl <= 255 && pl >= 1 && pl <= 255 &&
			       ref_utf8(msg, zl) && ref_utf8(msg + zl + 1, cl) &&
			       ref_utf8(msg + pos[1] + 1, pl);

		struct outcome o;
		plain_run(msg, n, rand() % 2, &o);
		if (!want) {
			assert_int_equal(o.st, SASL_FAIL);
			assert_int_equal(o.fail, SASL_FAIL_MALFORMED);
			bad++;
			continue;
		}
		assert_int_equal(o.st, SASL_DONE);
		assert_int_equal(strlen(o.authzid), zl);
		assert_memory_equal(o.authzid, msg, zl);
		assert_int_equal(strlen(o.authcid), cl);
		assert_memory_equal(o.authcid, msg + zl + 1, cl);
		assert_int_equal(o.secret_len, pl);
		assert_memory_equal(o.secret, msg + pos[1] + 1, pl);
		ok++;
	}
	if (ok < 300 || bad < 300)
		fail_msg("too few cases: %u accepted, %u refused", ok, bad);
}

/* Every truncation of a valid response, with its exact outcome: not a multiple
 * of 4 is bad base64; 4k characters decode to the first 3k octets of
 * "\0tim\0tanstaaftanstaaf", which is a valid message once the password has
 * begun. */
static void
test_plain_truncations(void **state)
{
	static const char msg[] = "\0tim\0tanstaaftanstaaf";
	static const char wire[] = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";

	for (size_t len = 0; len <= sizeof(wire) - 1; len++) {
		struct sasl_exchange *x = sasl_exchange_new(mech("PLAIN"));
		const char *ch;
		enum sasl_fail fail;
		enum sasl_status st;

		assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
		st = feed(x, wire, len, false, &ch, &fail);
		if (len % 4 != 0) {
			assert_int_equal(st, SASL_FAIL);
			assert_int_equal(fail, SASL_FAIL_BAD_BASE64);
		} else if (len / 4 * 3 < 6) {
			assert_int_equal(st, SASL_FAIL);
			assert_int_equal(fail, SASL_FAIL_MALFORMED);
		} else {
			const struct sasl_credentials *c = sasl_exchange_credentials(x);
			size_t plen = len / 4 * 3 - 5;

			assert_int_equal(st, SASL_DONE);
			assert_string_equal(c->authcid, "tim");
			assert_int_equal(c->secret_len, plen);
			assert_memory_equal(c->secret, msg + 5, plen);
		}
		sasl_exchange_free(&x);
	}
}

/* RFC 4954 §4 on PLAIN: "=" is an empty initial response, "*" cancels only as a
 * response, "" is an empty response, and base64 must be strict. */
static void
test_plain_wire_rules(void **state)
{
	struct sasl_exchange *x;
	const char *ch;
	enum sasl_fail fail;

	/* "=": an empty message, which PLAIN cannot accept. */
	x = sasl_exchange_new(mech("PLAIN"));
	assert_int_equal(feed_str(x, "=", true, &ch, &fail), SASL_FAIL);
	assert_int_equal(fail, SASL_FAIL_MALFORMED);
	sasl_exchange_free(&x);

	/* "*" as the initial response is not a cancellation: it is not base64. */
	x = sasl_exchange_new(mech("PLAIN"));
	assert_int_equal(feed_str(x, "*", true, &ch, &fail), SASL_FAIL);
	assert_int_equal(fail, SASL_FAIL_BAD_BASE64);
	sasl_exchange_free(&x);

	/* "*" as a response cancels. */
	x = sasl_exchange_new(mech("PLAIN"));
	assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
	assert_int_equal(feed_str(x, "*", false, &ch, &fail), SASL_FAIL);
	assert_int_equal(fail, SASL_FAIL_CANCELLED);
	sasl_exchange_free(&x);

	/* "**", "* ", " *" are not "*": bad base64. "=" as a response is not the
	 * empty response (that is ""). */
	static const char *const not_cancel[] = { "**", "* ", " *", "*\r", "=", "==", "AA=*" };
	for (size_t i = 0; i < sizeof(not_cancel) / sizeof(not_cancel[0]); i++) {
		x = sasl_exchange_new(mech("PLAIN"));
		assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
		assert_int_equal(feed_str(x, not_cancel[i], false, &ch, &fail), SASL_FAIL);
		assert_int_equal(fail, SASL_FAIL_BAD_BASE64);
		sasl_exchange_free(&x);
	}

	/* "": the empty response; PLAIN needs a message. */
	x = sasl_exchange_new(mech("PLAIN"));
	assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
	assert_int_equal(feed(x, "", 0, false, &ch, &fail), SASL_FAIL);
	assert_int_equal(fail, SASL_FAIL_MALFORMED);
	sasl_exchange_free(&x);

	/* A valid message in sloppy base64 is refused, as initial response and as
	 * response: missing padding, line breaks, spaces, URL-safe alphabet. */
	static const char *const sloppy[] = {
		"VXJzZWwAS3VydAB4aXBqM3BsbXE",   "VXJzZWwAS3VydAB4aXBqM3BsbXE=\r",
		"VXJzZWwAS3VydAB4aXBqM3BsbXE= ", " VXJzZWwAS3VydAB4aXBqM3BsbXE=",
		"VXJzZWwA S3VydAB4aXBqM3BsbXE=", "VXJzZWwAS3VydAB4aXBqM3BsbXF=",
		"VXJzZWwAS3VydAB4aXBqM3BsbXE==", "VXJzZWwAS3VydAB4aXBqM3BsbXE=AAAA",
	};
	for (size_t i = 0; i < sizeof(sloppy) / sizeof(sloppy[0]); i++) {
		x = sasl_exchange_new(mech("PLAIN"));
		assert_int_equal(feed_str(x, sloppy[i], true, &ch, &fail), SASL_FAIL);
		assert_int_equal(fail, SASL_FAIL_BAD_BASE64);
		sasl_exchange_free(&x);
		x = sasl_exchange_new(mech("PLAIN"));
		assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
		assert_int_equal(feed_str(x, sloppy[i], false, &ch, &fail), SASL_FAIL);
		assert_int_equal(fail, SASL_FAIL_BAD_BASE64);
		sasl_exchange_free(&x);
	}
}

/* RFC 4954 §4: 12288 octets must be accepted; more is SASL_FAIL_TOO_LONG. */
static void
test_too_long(void **state)
{
	char *big = malloc(SASL_RESPONSE_MAX + 1);
	struct sasl_exchange *x;
	const char *ch;
	enum sasl_fail fail;

	assert_non_null(big);
	memset(big, 'A', SASL_RESPONSE_MAX + 1);

	for (int m = 0; m < 2; m++) {
		const char *name = m == 0 ? "PLAIN" : "LOGIN";

		/* 12289 characters: too long, as initial response or response, even
		 * though it is not base64 either. */
		x = sasl_exchange_new(mech(name));
		assert_int_equal(feed(x, big, SASL_RESPONSE_MAX + 1, true, &ch, &fail), SASL_FAIL);
		assert_int_equal(fail, SASL_FAIL_TOO_LONG);
		sasl_exchange_free(&x);
		x = sasl_exchange_new(mech(name));
		assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
		assert_int_equal(feed(x, big, SASL_RESPONSE_MAX + 1, false, &ch, &fail), SASL_FAIL);
		assert_int_equal(fail, SASL_FAIL_TOO_LONG);
		sasl_exchange_free(&x);

		/* 12288 characters are decoded (9216 zero octets) and then refused by
		 * the mechanism, not by the length limit. */
		x = sasl_exchange_new(mech(name));
		assert_int_equal(feed(x, big, SASL_RESPONSE_MAX, true, &ch, &fail), SASL_FAIL);
		assert_int_equal(fail, SASL_FAIL_MALFORMED);
		sasl_exchange_free(&x);
		x = sasl_exchange_new(mech(name));
		assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
		assert_int_equal(feed(x, big, SASL_RESPONSE_MAX, false, &ch, &fail), SASL_FAIL);
		assert_int_equal(fail, SASL_FAIL_MALFORMED);
		sasl_exchange_free(&x);
	}
	free(big);
}

/* ---- LOGIN ------------------------------------------------------------------- */

static void
test_login_exchange(void **state)
{
	struct sasl_exchange *x = sasl_exchange_new(mech("LOGIN"));
	const struct sasl_credentials *c;
	const char *ch;
	enum sasl_fail fail;

	assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
	assert_string_equal(ch, "VXNlcm5hbWU6"); /* "Username:" */
	assert_true(sasl_exchange_state_zero(x));
	assert_int_equal(feed_str(x, "dGlt", false, &ch, &fail), SASL_CONTINUE); /* "tim" */
	assert_string_equal(ch, "UGFzc3dvcmQ6"); /* "Password:" */
	assert_null(sasl_exchange_credentials(x));
	assert_false(sasl_exchange_state_zero(x)); /* the user name is kept */
	assert_int_equal(feed_str(x, "dGFuc3RhYWZ0YW5zdGFhZg==", false, &ch, &fail), SASL_DONE);
	c = sasl_exchange_credentials(x);
	assert_non_null(c);
	assert_string_equal(c->authzid, "");
	assert_string_equal(c->authcid, "tim");
	assert_string_equal(c->secret, "tanstaaftanstaaf");
	assert_int_equal(c->secret_len, 16);
	sasl_exchange_free(&x);
	assert_null(x);
}

/* Some clients send the user name as the initial response: the next challenge
 * is "Password:". */
static void
test_login_initial_response(void **state)
{
	struct sasl_exchange *x = sasl_exchange_new(mech("login"));
	const struct sasl_credentials *c;
	const char *ch;
	enum sasl_fail fail;

	assert_int_equal(feed_str(x, "dXNlckBleGFtcGxlLm9yZw==", true, &ch, &fail), SASL_CONTINUE);
	assert_string_equal(ch, "UGFzc3dvcmQ6");
	assert_int_equal(feed_str(x, "cA==", false, &ch, &fail), SASL_DONE);
	c = sasl_exchange_credentials(x);
	assert_string_equal(c->authzid, "");
	assert_string_equal(c->authcid, "user@example.org");
	assert_string_equal(c->secret, "p");
	assert_int_equal(c->secret_len, 1);
	sasl_exchange_free(&x);
}

/* Runs LOGIN with user[0..ulen) and password[0..plen) as responses; returns the
 * last status, *fail, and *at (1 = failed on the user name, 2 = on the password). */
static enum sasl_status
login_run(const void *user, size_t ulen, const void *pass, size_t plen, enum sasl_fail *fail,
	  int *at)
{
	struct sasl_exchange *x = sasl_exchange_new(mech("LOGIN"));
	char *eu = b64(user, ulen), *ep = b64(pass, plen);
	const char *ch;
	enum sasl_status st;

	*at = 1;
	assert_int_equal(feed(x, NULL, 0, true, &ch, fail), SASL_CONTINUE);
	st = feed_str(x, eu, false, &ch, fail);
	if (st == SASL_CONTINUE) {
		assert_string_equal(ch, "UGFzc3dvcmQ6");
		*at = 2;
		st = feed_str(x, ep, false, &ch, fail);
		if (st == SASL_DONE) {
			const struct sasl_credentials *c = sasl_exchange_credentials(x);
			assert_int_equal(strlen(c->authcid), ulen);
			assert_memory_equal(c->authcid, user, ulen);
			assert_int_equal(c->secret_len, plen);
			assert_memory_equal(c->secret, pass, plen);
			assert_string_equal(c->authzid, "");
		}
	}
	free(eu);
	free(ep);
	sasl_exchange_free(&x);
	return st;
}

static void
test_login_fields(void **state)
{
	char f255[255], f256[256];
	enum sasl_fail fail;
	int at;

	memset(f255, 'u', sizeof(f255));
	memset(f256, 'v', sizeof(f256));
	assert_int_equal(login_run(f255, 255, f255, 255, &fail, &at), SASL_DONE);
	assert_int_equal(login_run("u", 1, "p", 1, &fail, &at), SASL_DONE);
	/* The password is octets: an 8-bit legacy password goes through. */
	assert_int_equal(login_run("u", 1, S("\xe9t\xe9"), &fail, &at), SASL_DONE);
	assert_int_equal(login_run(S("zo\xc3\xab"), S("\xff\x80"), &fail, &at), SASL_DONE);

	struct {
		const char *u;
		size_t ulen;
		const char *p;
		size_t plen;
		int at;
	} bad[] = {
		{ "", 0, "p", 1, 1 },              /* empty user name */
		{ f256, 256, "p", 1, 1 },          /* 256 octets */
		{ "u\0v", 3, "p", 1, 1 },          /* NUL inside */
		{ "\0", 1, "p", 1, 1 },
		{ "u\0", 2, "p", 1, 1 },
		{ "\xc3\x28", 2, "p", 1, 1 },      /* not UTF-8 */
		{ "\xed\xa0\x80", 3, "p", 1, 1 },  /* surrogate */
		{ "u", 1, "", 0, 2 },              /* empty password */
		{ "u", 1, f256, 256, 2 },          /* 256 octets */
		{ "u", 1, "p\0q", 3, 2 },          /* NUL inside */
		{ "u", 1, "\0", 1, 2 },
		{ "u", 1, "pq\0", 3, 2 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(login_run(bad[i].u, bad[i].ulen, bad[i].p, bad[i].plen, &fail, &at),
				 SASL_FAIL);
		assert_int_equal(fail, SASL_FAIL_MALFORMED);
		assert_int_equal(at, bad[i].at);
	}
}

static void
test_login_wire_rules(void **state)
{
	struct sasl_exchange *x;
	const char *ch;
	enum sasl_fail fail;

	/* "=": an empty user name. */
	x = sasl_exchange_new(mech("LOGIN"));
	assert_int_equal(feed_str(x, "=", true, &ch, &fail), SASL_FAIL);
	assert_int_equal(fail, SASL_FAIL_MALFORMED);
	sasl_exchange_free(&x);

	/* Cancelled at the user name prompt, and at the password prompt: the user
	 * name kept so far is wiped. */
	x = sasl_exchange_new(mech("LOGIN"));
	assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
	assert_int_equal(feed_str(x, "*", false, &ch, &fail), SASL_FAIL);
	assert_int_equal(fail, SASL_FAIL_CANCELLED);
	sasl_exchange_free(&x);
	x = sasl_exchange_new(mech("LOGIN"));
	assert_int_equal(feed_str(x, "dGlt", true, &ch, &fail), SASL_CONTINUE);
	assert_false(sasl_exchange_state_zero(x));
	assert_int_equal(feed_str(x, "*", false, &ch, &fail), SASL_FAIL);
	assert_int_equal(fail, SASL_FAIL_CANCELLED);
	assert_true(sasl_exchange_state_zero(x));
	sasl_exchange_free(&x);

	/* Bad base64 at the password. */
	x = sasl_exchange_new(mech("LOGIN"));
	assert_int_equal(feed_str(x, "dGlt", true, &ch, &fail), SASL_CONTINUE);
	assert_int_equal(feed_str(x, "cGFzcw", false, &ch, &fail), SASL_FAIL);
	assert_int_equal(fail, SASL_FAIL_BAD_BASE64);
	sasl_exchange_free(&x);
}

/* ---- secrets ----------------------------------------------------------------- */

/* What free does to the credentials, observed through sasl_exchange_wipe (the
 * same code without the final free, so the bytes can still be read). */
static void
test_wipe(void **state)
{
	for (int m = 0; m < 2; m++) {
		struct sasl_exchange *x = sasl_exchange_new(mech(m == 0 ? "PLAIN" : "LOGIN"));
		const struct sasl_credentials *c;
		const char *ch, *secret, *authcid;
		enum sasl_fail fail;
		size_t n;

		if (m == 0) {
			assert_int_equal(feed_str(x, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", true, &ch, &fail),
					 SASL_DONE);
		} else {
			assert_int_equal(feed_str(x, "dGlt", true, &ch, &fail), SASL_CONTINUE);
			assert_int_equal(feed_str(x, "dGFuc3RhYWZ0YW5zdGFhZg==", false, &ch, &fail),
					 SASL_DONE);
		}
		c = sasl_exchange_credentials(x);
		secret = c->secret;
		authcid = c->authcid;
		n = c->secret_len;
		assert_int_equal(n, 16);
		assert_memory_equal(secret, "tanstaaftanstaaf", 16);
		assert_false(sasl_exchange_state_zero(x));
		assert_true(sasl_exchange_decoded_zero(x));

		sasl_exchange_wipe(x);
		for (size_t i = 0; i <= n; i++)
			assert_int_equal(secret[i], 0);
		for (size_t i = 0; i < 4; i++)
			assert_int_equal(authcid[i], 0);
		assert_true(sasl_exchange_state_zero(x));
		assert_null(sasl_exchange_credentials(x));
		sasl_exchange_wipe(x); /* idempotent */
		sasl_exchange_free(&x);
		assert_null(x);
	}
}

/* Every failure leaves no credentials and an all-zero state (checked in feed()
 * for every failing step of every test); here a failure after a kept secret. */
static void
test_failure_leaves_nothing(void **state)
{
	struct sasl_exchange *x = sasl_exchange_new(mech("LOGIN"));
	const char *ch;
	enum sasl_fail fail;

	assert_int_equal(feed_str(x, "c2VjcmV0LXVzZXI=", true, &ch, &fail), SASL_CONTINUE);
	assert_false(sasl_exchange_state_zero(x));
	assert_int_equal(feed(x, S("cGFzcwBx"), false, &ch, &fail), SASL_FAIL); /* "pass\0q" */
	assert_int_equal(fail, SASL_FAIL_MALFORMED);
	assert_true(sasl_exchange_state_zero(x));
	assert_true(sasl_exchange_decoded_zero(x));
	assert_null(sasl_exchange_credentials(x));
	sasl_exchange_free(&x);
}

/* ---- SASL_FORWARD, with a test mechanism ----------------------------------- */

struct fwd_state {
	unsigned char blob[16];
	size_t blob_len;
	bool forwarded;
	char user[4];
};
static int fwd_frees;

static enum sasl_status
fwd_step(void *state, const unsigned char *in, size_t len, bool have_input,
	 struct sasl_mech_out *out, enum sasl_fail *fail_r)
{
	struct fwd_state *s = state;

	if (!have_input) {
		out->data = (const unsigned char *)"go";
		out->len = 2;
		return SASL_CONTINUE;
	}
	if (!s->forwarded && len <= sizeof(s->blob)) {
		memcpy(s->blob, in, len);
		s->blob_len = len;
		s->forwarded = true;
		out->data = s->blob;
		out->len = len;
		return SASL_FORWARD;
	}
	if (s->forwarded && len == 3 && memcmp(in, "fin", 3) == 0) {
		strcpy(s->user, "u");
		out->creds.authzid = "";
		out->creds.authcid = s->user;
		out->creds.secret = NULL;
		out->creds.secret_len = 0;
		return SASL_DONE;
	}
	*fail_r = SASL_FAIL_MALFORMED;
	return SASL_FAIL;
}

static enum sasl_status
fwd_answer(void *state, const unsigned char *in, size_t len, struct sasl_mech_out *out,
	   enum sasl_fail *fail_r)
{
	if (len == 2 && memcmp(in, "ok", 2) == 0) {
		out->data = (const unsigned char *)"more";
		out->len = 4;
		return SASL_CONTINUE;
	}
	*fail_r = SASL_FAIL_MALFORMED;
	return SASL_FAIL;
}

static void
fwd_free(void *state)
{
	fwd_frees++;
}

static const struct sasl_mech_ops fwd_ops = {
	.state_size = sizeof(struct fwd_state),
	.step = fwd_step,
	.answer = fwd_answer,
	.free = fwd_free,
};
static const struct sasl_mech fwd_mech = { "X-TEST-FORWARD", 0, &fwd_ops };

static void
test_forward(void **state)
{
	struct sasl_exchange *x = sasl_exchange_new(&fwd_mech);
	const struct sasl_credentials *c;
	const char *ch;
	enum sasl_fail fail;
	const void *blob;
	size_t n;

	fwd_frees = 0;
	assert_int_equal(feed(x, NULL, 0, true, &ch, &fail), SASL_CONTINUE);
	assert_string_equal(ch, "Z28="); /* "go" */
	assert_int_equal(feed_str(x, "aGVsbG8=", false, &ch, &fail), SASL_FORWARD); /* "hello" */
	blob = sasl_exchange_forward_blob(x, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(blob, "hello", 5);
	assert_int_equal(sasl_exchange_answer(x, "ok", 2, &ch, &fail), SASL_CONTINUE);
	assert_string_equal(ch, "bW9yZQ=="); /* "more" */
	assert_int_equal(fail, SASL_FAIL_NONE);
	assert_int_equal(feed_str(x, "Zmlu", false, &ch, &fail), SASL_DONE); /* "fin" */
	c = sasl_exchange_credentials(x);
	assert_string_equal(c->authcid, "u");
	assert_null(c->secret);
	assert_int_equal(c->secret_len, 0);
	sasl_exchange_free(&x);
	assert_int_equal(fwd_frees, 1);

	/* The auth process says no: FAIL, state released once, not again at free. */
	fwd_frees = 0;
	x = sasl_exchange_new(&fwd_mech);
	assert_int_equal(feed_str(x, "aGk=", true, &ch, &fail), SASL_FORWARD);
	assert_int_equal(sasl_exchange_answer(x, "no", 2, &ch, &fail), SASL_FAIL);
	assert_null(ch);
	assert_int_equal(fail, SASL_FAIL_MALFORMED);
	assert_int_equal(fwd_frees, 1);
	assert_true(sasl_exchange_state_zero(x));
	assert_null(sasl_exchange_credentials(x));
	sasl_exchange_free(&x);
	assert_int_equal(fwd_frees, 1);

	/* Freed while a forward is pending. */
	fwd_frees = 0;
	x = sasl_exchange_new(&fwd_mech);
	assert_int_equal(feed_str(x, "aGk=", true, &ch, &fail), SASL_FORWARD);
	sasl_exchange_free(&x);
	assert_int_equal(fwd_frees, 1);
}

/* ---- programmer errors assert ------------------------------------------------ */

static void
run_child(int what)
{
	struct sasl_exchange *x = sasl_exchange_new(what == 5 ? &fwd_mech : mech("PLAIN"));
	const char *ch;
	enum sasl_fail fail;

	switch (what) {
	case 0: /* step after DONE */
		sasl_exchange_step(x, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", 28, true, &ch, &fail);
		sasl_exchange_step(x, "", 0, false, &ch, &fail);
		break;
	case 1: /* step after FAIL */
		sasl_exchange_step(x, "*", 1, true, &ch, &fail);
		sasl_exchange_step(x, "", 0, false, &ch, &fail);
		break;
	case 2: /* the first step is not marked initial */
		sasl_exchange_step(x, "", 0, false, &ch, &fail);
		break;
	case 3: /* a later step marked initial */
		sasl_exchange_step(x, NULL, 0, true, &ch, &fail);
		sasl_exchange_step(x, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", 28, true, &ch, &fail);
		break;
	case 4: /* an answer nobody asked for */
		sasl_exchange_answer(x, "ok", 2, &ch, &fail);
		break;
	case 5: /* a client step while a forward is pending */
		sasl_exchange_step(x, "aGk=", 4, true, &ch, &fail);
		sasl_exchange_step(x, "", 0, false, &ch, &fail);
		break;
	default:
		break;
	}
	sasl_exchange_free(&x);
}

static void
test_programmer_errors_assert(void **state)
{
#ifdef NDEBUG
	skip();
#endif
	for (int what = 0; what <= 5; what++) {
		pid_t pid;
		int status;

		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);
			if (fd >= 0)
				dup2(fd, STDERR_FILENO);
			run_child(what);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
			fail_msg("case %d did not assert (status %d)", what, status);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_rejects),
		cmocka_unit_test(test_base64_bounds),
		cmocka_unit_test(test_base64_differential),
		cmocka_unit_test(test_mech_find),
		cmocka_unit_test(test_mech_list),
		cmocka_unit_test(test_fail_reasons),
		cmocka_unit_test(test_plain_rfc4616_examples),
		cmocka_unit_test(test_plain_nul_positions),
		cmocka_unit_test(test_plain_lengths),
		cmocka_unit_test(test_plain_utf8),
		cmocka_unit_test(test_plain_differential),
		cmocka_unit_test(test_plain_truncations),
		cmocka_unit_test(test_plain_wire_rules),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_login_exchange),
		cmocka_unit_test(test_login_initial_response),
		cmocka_unit_test(test_login_fields),
		cmocka_unit_test(test_login_wire_rules),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_failure_leaves_nothing),
		cmocka_unit_test(test_forward),
		cmocka_unit_test(test_programmer_errors_assert),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
