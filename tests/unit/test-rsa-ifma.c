/*
 * Unit tests for rsa-ifma (RSAVP1 with AVX-512 IFMA, RFC 8017 §5.2.2): every
 * result is compared with OpenSSL's BN_mod_exp() — random moduli of 1024 to
 * 2048 bits, exponents 3, 65537 and random odd ones, representatives at the
 * edges (0, 1, n-1, n-2) and with long runs of ones or zeros, moduli just
 * below 2^k and with all-ones limbs — and out-of-range representatives are
 * refused. Skipped on CPUs without IFMA (the code is then never used).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/rand.h>

#include "mailauth/rsa-ifma.h"

static BN_CTX *ctx;

static int setup(void **state)
{
	ctx = BN_CTX_new();
	return ctx != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	BN_CTX_free(ctx);
	return 0;
}

/* Checks s^e mod n against OpenSSL for s given as a BIGNUM below n. */
static void check_one(const BIGNUM *n, uint64_t e, const BIGNUM *s)
{
	int len = BN_num_bytes(n);
	unsigned char nb[256], sb[256], got[256], want[256];
	BIGNUM *be = BN_new(), *m = BN_new();
	struct rsa_ifma_key *k;

	assert_true(len <= 256);
	assert_int_equal(BN_bn2bin(n, nb), len);
	assert_int_equal(BN_bn2binpad(s, sb, len), len);
	assert_non_null(k = rsa_ifma_key_new(nb, (size_t)len, e));
	assert_int_equal(rsa_ifma_key_len(k), (size_t)len);
	assert_int_equal(BN_set_word(be, e), 1);
	assert_int_equal(BN_mod_exp(m, s, be, n, ctx), 1);
	assert_int_equal(BN_bn2binpad(m, want, len), len);
	assert_int_equal(rsa_ifma_public(k, sb, (size_t)len, got), 0);
	assert_memory_equal(got, want, (size_t)len);
	rsa_ifma_key_free(&k);
	assert_null(k);
	BN_free(be);
	BN_free(m);
}

static BIGNUM *random_modulus(int bits)
{
	BIGNUM *n = BN_new();

	assert_int_equal(BN_rand(n, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD), 1);
	return n;
}

static void test_random_against_openssl(void **state)
{
	static const int sizes[] = { 2048, 2047, 2000, 1536, 1024 };
	static const uint64_t exps[] = { 65537, 3, 17 };

	if (!rsa_ifma_available())
		skip();
	for (int round = 0; round < 300; round++) {
		BIGNUM *n = random_modulus(sizes[round % 5]), *s = BN_new();
		uint64_t e = exps[round % 3];

		if (round % 7 == 6) {
			/* A random odd exponent of up to 64 bits. */
			assert_int_equal(RAND_bytes((unsigned char *)&e, sizeof(e)), 1);
			e |= 1;
			if (e < 3)
				e = 3;
		}
		assert_int_equal(BN_rand_range(s, n), 1);
		check_one(n, e, s);
		BN_free(s);
		BN_free(n);
	}
}

static void test_edges_against_openssl(void **state)
{
	if (!rsa_ifma_available())
		skip();
	for (int round = 0; round < 40; round++) {
		BIGNUM *n, *s = BN_new();

		if (round % 4 == 0) {
			/* n = 2^2048 - small odd: every limb all ones. */
			n = BN_new();
			assert_int_equal(BN_set_bit(n, 2048), 1);
			assert_int_equal(BN_sub_word(n, (BN_ULONG)(2 * round + 1)), 1);
		} else if (round % 4 == 1) {
			/* n = 2^2047 + small odd: long runs of zeros. */
			n = BN_new();
			assert_int_equal(BN_set_bit(n, 2047), 1);
			assert_int_equal(BN_add_word(n, (BN_ULONG)(2 * round + 1)), 1);
		} else {
			n = random_modulus(round % 4 == 2 ? 2048 : 1025);
		}
		/* 0, 1, 2, n-1, n-2, and runs of ones just below n's size. */
		BN_zero(s);
		check_one(n, 65537, s);
		assert_int_equal(BN_one(s), 1);
		check_one(n, 65537, s);
		assert_int_equal(BN_set_word(s, 2), 1);
		check_one(n, 3, s);
		assert_non_null(BN_copy(s, n));
		assert_int_equal(BN_sub_word(s, 1), 1);
		check_one(n, 65537, s);
		check_one(n, 3, s);
		assert_int_equal(BN_sub_word(s, 1), 1);
		check_one(n, 65537, s);
		BN_zero(s);
		assert_int_equal(BN_set_bit(s, BN_num_bits(n) - 1), 1);
		assert_int_equal(BN_sub_word(s, 1), 1);        /* 0111...1 */
		check_one(n, 65537, s);
		BN_free(s);
		BN_free(n);
	}
}

/* RFC 8017 §5.2.2 step 1: s >= n is out of range; §8.2.2 step 1: s must have
 * exactly k octets. */
static void test_out_of_range(void **state)
{
	BIGNUM *n;
	unsigned char nb[256], sb[257], out[256];
	struct rsa_ifma_key *k;

	if (!rsa_ifma_available())
		skip();
	n = random_modulus(2048);
	assert_int_equal(BN_bn2bin(n, nb), 256);
	assert_non_null(k = rsa_ifma_key_new(nb, 256, 65537));
	memcpy(sb, nb, 256);
	assert_int_equal(rsa_ifma_public(k, sb, 256, out), -1);     /* s = n */
	sb[255] ^= 2;                                                /* n + 2 or n - 2 */
	assert_int_equal(rsa_ifma_public(k, sb, 256, out), memcmp(sb, nb, 256) > 0 ? -1 : 0);
	memset(sb, 0xff, 256);
	assert_int_equal(rsa_ifma_public(k, sb, 256, out), -1);
	memset(sb, 0, sizeof(sb));
	assert_int_equal(rsa_ifma_public(k, sb, 255, out), -1);     /* not k octets */
	assert_int_equal(rsa_ifma_public(k, sb, 257, out), -1);
	assert_int_equal(rsa_ifma_public(k, sb, 256, out), 0);      /* 0 is in range */
	rsa_ifma_key_free(&k);
	BN_free(n);
}

/* Keys it does not take: the caller falls back to OpenSSL. */
static void test_keys_refused(void **state)
{
	unsigned char nb[300];

	memset(nb, 0xff, sizeof(nb));
	assert_null(rsa_ifma_key_new(nb, 257, 65537));    /* over 2048 bits */
	assert_null(rsa_ifma_key_new(nb, 0, 65537));
	assert_null(rsa_ifma_key_new(nb, 256, 65536));    /* even e */
	assert_null(rsa_ifma_key_new(nb, 256, 1));
	nb[255] = 0xfe;
	assert_null(rsa_ifma_key_new(nb, 256, 65537));    /* even n */
	nb[255] = 0xff;
	nb[0] = 0;
	assert_null(rsa_ifma_key_new(nb, 256, 65537));    /* a leading zero octet */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_openssl),
		cmocka_unit_test(test_edges_against_openssl),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_keys_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
