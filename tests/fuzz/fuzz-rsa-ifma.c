/*
 * libFuzzer target: rsa-ifma (RSAVP1 with AVX-512 IFMA) against OpenSSL's
 * BN_mod_exp(). The input makes a modulus (odd, 1 to 256 octets, no leading
 * zero octet),
 * a representative and an exponent; every in-range result must equal
 * OpenSSL's, and s >= n must be refused. Any difference traps. On a CPU
 * without IFMA there is nothing to compare and the target returns at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "mailauth/rsa-ifma.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static BN_CTX *ctx;
	unsigned char n[256], s[256], got[256], want[256];
	size_t len;
	uint64_t e;
	struct rsa_ifma_key *k;
	BIGNUM *bn, *bs, *be, *bm;
	int r;

	if (size < 3 || !rsa_ifma_available())
		return 0;
	if (ctx == NULL && (ctx = BN_CTX_new()) == NULL)
		abort();
	/* Octet 0: the length of n; octet 1: which exponent; then n, then s. */
	len = 1 + data[0] % 256;
	e = data[1] % 4 == 0 ? 3 : data[1] % 4 == 1 ? 17 : data[1] % 4 == 2 ? 65537 :
	    ((uint64_t)data[1] << 32) | 0x10001;
	data += 2;
	size -= 2;
	memset(n, 0xa5, sizeof(n));
	memcpy(n, data, size < len ? size : len);
	if (n[0] == 0)
		n[0] = 1;               /* no leading zero octet; any top bit */
	n[len - 1] |= 1;
	if (len == 1 && n[0] < 3)
		return 0;
	memset(s, 0, sizeof(s));
	if (size > len)
		memcpy(s, data + len, size - len < len ? size - len : len);
	if ((k = rsa_ifma_key_new(n, len, e)) == NULL)
		__builtin_trap();       /* every such key fits */
	r = rsa_ifma_public(k, s, len, got);
	if (memcmp(s, n, len) >= 0) {
		if (r != -1)
			__builtin_trap();
	} else {
		bn = BN_bin2bn(n, (int)len, NULL);
		bs = BN_bin2bn(s, (int)len, NULL);
		be = BN_new();
		bm = BN_new();
		if (bn == NULL || bs == NULL || be == NULL || bm == NULL ||
		    BN_set_word(be, e) != 1 || BN_mod_exp(bm, bs, be, bn, ctx) != 1 ||
		    BN_bn2binpad(bm, want, (int)len) != (int)len)
			abort();
		if (r != 0 || memcmp(got, want, len) != 0)
			__builtin_trap();
		BN_free(bn);
		BN_free(bs);
		BN_free(be);
		BN_free(bm);
	}
	rsa_ifma_key_free(&k);
	return 0;
}
