/*
 * libFuzzer target: the DKIM key record parser (RFC 6376 §3.6.1), and the
 * public-key decoding behind it (SubjectPublicKeyInfo or PKCS#1 DER for RSA, 32
 * raw octets for Ed25519, RFC 8463 §4).
 *
 * Invariants: a failed parse gives a sentence; a parsed record is revoked with
 * no key octets, or has 1..DKIM_KEYREC_P_MAX of them; a decoded RSA key has
 * 1024..8192 bits, an Ed25519 key came from exactly 32 octets. The same octets
 * as the raw DER of a public key are also decoded directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_pubkey(enum dkim_key_type type, const unsigned char *p, size_t len)
{
	const char *error = NULL;
	struct dkim_pubkey *k = dkim_pubkey_new(type, p, len, &error);
	EVP_PKEY *pk;

	if (k == NULL) {
		if (error == NULL || (type == DKIM_KEY_ED25519 && len == 32))
			__builtin_trap();
		return;
	}
	dkim_pubkey_free(&k);
	if (type == DKIM_KEY_ED25519) {
		if (len != 32)
			__builtin_trap();
		return;
	}
	if ((pk = dkim_crypto_rsa_pubkey(p, len, &error)) == NULL || !EVP_PKEY_is_a(pk, "RSA") ||
	    EVP_PKEY_get_bits(pk) < 1024 || EVP_PKEY_get_bits(pk) > 8192)
		__builtin_trap();
	EVP_PKEY_free(pk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_keyrec *k;
	const char *error = NULL;

	if (size > 70000 || (k = malloc(sizeof(*k))) == NULL)
		return 0;
	if (dkim_keyrec_parse(k, (const char *)data, size, &error) != 0) {
		if (error == NULL)
			__builtin_trap();
	} else if (k->revoked) {
		if (k->p_len != 0)
			__builtin_trap();
	} else {
		if (k->p_len < 1 || k->p_len > DKIM_KEYREC_P_MAX)
			__builtin_trap();
		check_pubkey(k->type, k->p, k->p_len);
	}
	free(k);
	if (size > 0 && size <= DKIM_KEYREC_P_MAX)
		check_pubkey(size == 32 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA, data, size);
	return 0;
}
