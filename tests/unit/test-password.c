/*
 * Unit tests for password: Argon2id hash and verify (with the smallest costs,
 * for speed), needs_rehash, malformed hashes, and generated passwords.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "auth/password.h"

static const struct password_params fast = {
	.opslimit = crypto_pwhash_OPSLIMIT_MIN,
	.memlimit = crypto_pwhash_MEMLIMIT_MIN,
};

static void
test_hash_verify(void **state)
{
	char hash[PASSWORD_HASH_MAX];
	const char *error = NULL;
	assert_int_equal(password_init(&error), 0);
	assert_int_equal(password_hash("correct stapler drizzle", &fast, hash, &error), 0);
	assert_true(strncmp(hash, "$argon2id$v=19$", 15) == 0);
	assert_null(strstr(hash, "correct"));
	assert_int_equal(password_verify(hash, "correct stapler drizzle", &error), 1);
	assert_int_equal(password_verify(hash, "correct stapler drizzlE", &error), 0);
	assert_int_equal(password_verify(hash, "", &error), 0);
	/* every hash has its own salt */
	char hash2[PASSWORD_HASH_MAX];
	assert_int_equal(password_hash("correct stapler drizzle", &fast, hash2, &error), 0);
	assert_string_not_equal(hash, hash2);
	assert_int_equal(password_verify(hash2, "correct stapler drizzle", &error), 1);
}

static void
test_utf8_and_empty(void **state)
{
	char hash[PASSWORD_HASH_MAX];
	const char *error;
	const char *pw = "\xd0\xb6\xd1\x83\xd0\xba \xc3\xa9t\xc3\xa9 \xe2\x82\xac";
	assert_int_equal(password_hash(pw, &fast, hash, &error), 0);
	assert_int_equal(password_verify(hash, pw, &error), 1);
	assert_int_equal(password_hash("", &fast, hash, &error), 0);
	assert_int_equal(password_verify(hash, "", &error), 1);
	assert_int_equal(password_verify(hash, "x", &error), 0);
}

static void
test_needs_rehash(void **state)
{
	char hash[PASSWORD_HASH_MAX];
	const char *error;
	assert_int_equal(password_hash("Vivid-Otter-Quarry-49", &fast, hash, &error), 0);
	assert_int_equal(password_needs_rehash(hash, &fast), 0);
	struct password_params more_ops = fast;
	more_ops.opslimit++;
	assert_int_equal(password_needs_rehash(hash, &more_ops), 1);
	struct password_params more_mem = fast;
	more_mem.memlimit *= 2;
	assert_int_equal(password_needs_rehash(hash, &more_mem), 1);
	/* Argon2i (older libsodium default) is verified, then upgraded */
	char h2i[crypto_pwhash_argon2i_STRBYTES];
	assert_int_equal(crypto_pwhash_argon2i_str(h2i, "legacy-pass", 11,
	    crypto_pwhash_argon2i_OPSLIMIT_MIN, crypto_pwhash_argon2i_MEMLIMIT_MIN), 0);
	assert_int_equal(password_verify(h2i, "legacy-pass", &error), 1);
	assert_int_equal(password_verify(h2i, "legacy-pasS", &error), 0);
	assert_int_equal(password_needs_rehash(h2i, &fast), 1);
	/* not Argon2 at all */
	assert_int_equal(password_needs_rehash("$6$salt$abcdef", &fast), -1);
	assert_int_equal(password_needs_rehash("", &fast), -1);
}

static void
test_bad_hashes(void **state)
{
	const char *error = NULL;
	assert_int_equal(password_verify("$6$saltsalt$0123456789abcdef", "x", &error), -1);
	assert_non_null(error);
	assert_int_equal(password_verify("", "x", &error), -1);
	error = NULL;
	assert_int_equal(password_verify("$argon2id$v=19$m=garbage", "x", &error), -1);
	assert_string_equal(error, "The stored password hash is malformed.");
	/* a hash string longer than any real one */
	char longh[300];
	memset(longh, 'a', sizeof(longh) - 1);
	memcpy(longh, "$argon2id$", 10);
	longh[sizeof(longh) - 1] = '\0';
	assert_int_equal(password_verify(longh, "x", &error), -1);
}

static void
test_bad_params_and_input(void **state)
{
	char hash[PASSWORD_HASH_MAX];
	const char *error = NULL;
	struct password_params bad = { .opslimit = 0, .memlimit = crypto_pwhash_MEMLIMIT_MIN };
	assert_int_equal(password_hash("whatever-long-enough", &bad, hash, &error), -1);
	assert_non_null(error);
	bad.opslimit = crypto_pwhash_OPSLIMIT_MIN;
	bad.memlimit = 1024;
	assert_int_equal(password_hash("whatever-long-enough", &bad, hash, &error), -1);
	char big[PASSWORD_MAX_BYTES + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(password_hash(big, &fast, hash, &error), -1);
	assert_int_equal(password_hash("ok", &fast, hash, &error), 0);
	assert_int_equal(password_verify(hash, big, &error), 0);
}

static void
test_generate(void **state)
{
	static const char alphabet[] = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
	char small[PASSWORD_GENERATED_LENGTH];
	assert_int_equal(password_generate(small, sizeof(small)), -1);

	char prev[PASSWORD_GENERATED_LENGTH + 1] = "";
	int seen[256] = { 0 };
	for (int i = 0; i < 200; i++) {
		char pw[PASSWORD_GENERATED_LENGTH + 8];
		assert_int_equal(password_generate(pw, sizeof(pw)), 0);
		assert_int_equal(strlen(pw), PASSWORD_GENERATED_LENGTH);
		for (size_t j = 0; j < PASSWORD_GENERATED_LENGTH; j++) {
			assert_non_null(strchr(alphabet, pw[j]));
			seen[(unsigned char)pw[j]]++;
		}
		assert_string_not_equal(pw, prev);
		memcpy(prev, pw, sizeof(prev));
		sodium_memzero(pw, sizeof(pw));
	}
	/* 4000 draws over 55 symbols: every symbol shows up, look-alikes never */
	for (const char *c = alphabet; *c != '\0'; c++)
		assert_true(seen[(unsigned char)*c] > 0);
	assert_int_equal(seen['0'] + seen['O'] + seen['o'] + seen['1'] + seen['l'] + seen['I'] +
	    seen['i'], 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_utf8_and_empty),
		cmocka_unit_test(test_needs_rehash),
		cmocka_unit_test(test_bad_hashes),
		cmocka_unit_test(test_bad_params_and_input),
		cmocka_unit_test(test_generate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
