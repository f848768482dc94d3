/*
 * rsa-ifma — the RSA public-key operation (RSAVP1, RFC 8017 §5.2.2: m = s^e mod
 * n) for moduli of up to 2048 bits, with the AVX-512 IFMA instructions (52-bit
 * multiply-add, eight lanes). About 2.3 times as fast as OpenSSL 3.0's, whose
 * public operation on this size runs on 64-bit scalar multiplies; DKIM
 * verification (dkim-crypto.c) uses it when the CPU has the instructions and
 * falls back to OpenSSL otherwise.
 *
 * Only public values go through it (n, e, the signature), so nothing here needs
 * to run in constant time. Results are checked against OpenSSL's BN_mod_exp()
 * by tests/unit/test-rsa-ifma.c and tests/fuzz/fuzz-rsa-ifma.c.
 */
#ifndef RAMPART_MAILAUTH_RSA_IFMA_H
#define RAMPART_MAILAUTH_RSA_IFMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rsa_ifma_key;

/* Whether this CPU (and OS) runs AVX-512F and IFMA code. */
bool rsa_ifma_available(void);

/* A key from n (big-endian, no leading zero octet, odd, 2 to 2048 bits) and e
 * (odd, at least 3). NULL when the CPU lacks IFMA, the key does not fit, or
 * memory runs out: the caller then uses another implementation. */
struct rsa_ifma_key *rsa_ifma_key_new(const unsigned char *n, size_t nlen, uint64_t e);
void rsa_ifma_key_free(struct rsa_ifma_key **k);
/* The length of n in octets: k of RFC 8017. */
size_t rsa_ifma_key_len(const struct rsa_ifma_key *k);

/* RSAVP1: out (k octets, big-endian) = s^e mod n for s of exactly k octets.
 * -1 when s >= n ("signature representative out of range") or on an internal
 * inconsistency (then nothing can be concluded: the caller fails closed). */
int rsa_ifma_public(const struct rsa_ifma_key *k, const unsigned char *s, size_t slen,
    unsigned char *out);

#endif
