/* password — see password.h. */
#include "auth/password.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

_Static_assert(PASSWORD_HASH_MAX == crypto_pwhash_STRBYTES, "hash buffer size");

/* No 0/O/o, 1/l/I/i: a generated password is read off a screen and typed. */
static const char generate_alphabet[] =
    "23456789"
    "abcdefghjkmnpqrstuvwxyz"
    "ABCDEFGHJKLMNPQRSTUVWXYZ";

#define ARGON2ID_PREFIX "$argon2id$"
#define ARGON2I_PREFIX "$argon2i$"

static int
fail(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	return -1;
}

int
password_init(const char **error_r)
{
	/* sodium_init returns 1 when already initialised */
	if (sodium_init() < 0)
		return fail(error_r, "libsodium could not be initialised.");
	return 0;
}

int
password_hash(const char *password, const struct password_params *params,
    char hash_r[PASSWORD_HASH_MAX], const char **error_r)
{
	if (password_init(error_r) < 0)
		return -1;
	size_t len = strlen(password);
	if (len > PASSWORD_MAX_BYTES)
		return fail(error_r, "The password is longer than 1024 bytes.");
	if (params->opslimit < crypto_pwhash_OPSLIMIT_MIN ||
	    params->opslimit > crypto_pwhash_OPSLIMIT_MAX ||
	    params->memlimit < crypto_pwhash_MEMLIMIT_MIN ||
	    params->memlimit > crypto_pwhash_MEMLIMIT_MAX)
		return fail(error_r, "The Argon2id cost settings are out of range.");
	if (crypto_pwhash_str(hash_r, password, len, params->opslimit, params->memlimit) != 0)
		return fail(error_r, "Not enough memory to compute the password hash.");
	return 0;
}

/* An Argon2 string crypto_pwhash_str_verify can take (it reads it to the NUL). */
static bool
hash_is_argon2(const char *hash)
{
	return strnlen(hash, PASSWORD_HASH_MAX) < PASSWORD_HASH_MAX &&
	    (strncmp(hash, ARGON2ID_PREFIX, strlen(ARGON2ID_PREFIX)) == 0 ||
	    strncmp(hash, ARGON2I_PREFIX, strlen(ARGON2I_PREFIX)) == 0);
}

int
password_verify(const char *hash, const char *password, const char **error_r)
{
	if (password_init(error_r) < 0)
		return -1;
	if (!hash_is_argon2(hash))
		return fail(error_r, "The stored password hash is not in a supported format.");
	size_t len = strlen(password);
	if (len > PASSWORD_MAX_BYTES)
		return 0;   /* could never have been set */
	errno = 0;
	if (crypto_pwhash_str_verify(hash, password, len) == 0)
		return 1;
	/* libsodium answers -1 to a mismatch (errno EINVAL), to a string it cannot
	 * parse and to a failed allocation alike; tell them apart. */
	if (errno == ENOMEM)
		return fail(error_r, "Not enough memory to verify the password.");
	if (strncmp(hash, ARGON2ID_PREFIX, strlen(ARGON2ID_PREFIX)) == 0 &&
	    crypto_pwhash_str_needs_rehash(hash, crypto_pwhash_OPSLIMIT_MIN,
	    crypto_pwhash_MEMLIMIT_MIN) < 0)
		return fail(error_r, "The stored password hash is malformed.");
	return 0;
}

int
password_needs_rehash(const char *hash, const struct password_params *params)
{
	if (sodium_init() < 0 || !hash_is_argon2(hash))
		return -1;
	if (strncmp(hash, ARGON2I_PREFIX, strlen(ARGON2I_PREFIX)) == 0)
		return 1;   /* Argon2i: verified, then upgraded to Argon2id */
	return crypto_pwhash_str_needs_rehash(hash, params->opslimit, params->memlimit);
}

int
password_generate(char *buf, size_t len)
{
	if (len < PASSWORD_GENERATED_LENGTH + 1 || sodium_init() < 0)
		return -1;
	const uint32_t n = (uint32_t)(sizeof(generate_alphabet) - 1);
	for (size_t i = 0; i < PASSWORD_GENERATED_LENGTH; i++)
		buf[i] = generate_alphabet[randombytes_uniform(n)];
	buf[PASSWORD_GENERATED_LENGTH] = '\0';
	return 0;
}
