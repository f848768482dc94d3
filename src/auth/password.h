/*
 * password — Argon2id password hashes (libsodium) and generated passwords.
 *
 * Hashes are the self-describing PHC strings of crypto_pwhash_str
 * ("$argon2id$v=19$m=65536,t=3,p=1$salt$hash"): each carries its own random
 * salt and cost, so the cost can be raised later and old hashes upgraded at the
 * next successful login (password_needs_rehash). Hashing is slow on purpose
 * (tens to hundreds of milliseconds): the auth process runs it on its worker
 * pool, never on the event loop. This module never logs and never copies a
 * plaintext password; callers wipe theirs with sodium_memzero.
 */
#ifndef RAMPART_PASSWORD_H
#define RAMPART_PASSWORD_H

#include <stddef.h>

/* Size of the buffer password_hash() fills, terminating NUL included. */
#define PASSWORD_HASH_MAX 128   /* == crypto_pwhash_STRBYTES */
/* Characters in a generated password (buffer: one more); about 115 bits. */
#define PASSWORD_GENERATED_LENGTH 20
/* Longest password accepted for hashing or checking, in bytes. */
#define PASSWORD_MAX_BYTES 1024

struct password_params {
	unsigned long long opslimit;   /* Argon2id passes (config argon2_opslimit) */
	size_t memlimit;               /* bytes (config argon2_memlimit) */
};

/* Initialises the library (sodium_init); idempotent. -1 if it cannot. */
int password_init(const char **error_r);

/* Hashes password into hash_r. -1 (out of memory, or limits out of range). */
int password_hash(const char *password, const struct password_params *params,
    char hash_r[PASSWORD_HASH_MAX], const char **error_r);

/*
 * 1 when password matches hash, 0 when it does not, -1 when hash is not an
 * Argon2 string this build can verify or the memory it asks for cannot be had.
 * Constant-time in the password (crypto_pwhash_str_verify).
 */
int password_verify(const char *hash, const char *password, const char **error_r);

/*
 * 1 when hash was made with other parameters (or is Argon2i) and should be
 * replaced by a fresh hash after the next successful verify, 0 when it is
 * current, -1 when it is not an Argon2 hash at all.
 */
int password_needs_rehash(const char *hash, const struct password_params *params);

/*
 * Writes a random password of PASSWORD_GENERATED_LENGTH characters from an
 * alphabet without look-alikes (no 0/O/o, 1/l/I/i) plus the NUL into buf,
 * drawn uniformly with randombytes_uniform: about 115 bits, far above any
 * policy's entropy floor. -1 if len < PASSWORD_GENERATED_LENGTH + 1.
 */
int password_generate(char *buf, size_t len);

#endif
