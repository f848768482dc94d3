/*
 * rsa-ifma — s^e mod n for RSA moduli of up to 2048 bits with AVX-512 IFMA; see
 * rsa-ifma.h.
 *
 * Numbers are 40 limbs of 52 bits (2080 bits), least significant first, held
 * in five 512-bit vectors of eight limbs. Multiplication is Montgomery's with
 * R = 2^2080, word by word (one limb of b per step, "almost Montgomery": inputs
 * and outputs below 2n, which R > 4n allows):
 *
 *   for each limb b_i:  acc += a * b_i;  y = acc_0 * (-1/n mod 2^52) mod 2^52;
 *                       acc += n * y;    acc /= 2^52 (acc_0 is now 0 mod 2^52)
 *
 * vpmadd52luq/vpmadd52huq give the low and high 52 bits of 52x52-bit products,
 * added to 64-bit lanes; lanes are left unnormalised (each takes at most 160
 * additions of < 2^52, far below 2^64) and carried once at the end. The
 * products with a go to one accumulator and those with n to another, so the
 * two chains run side by side; the division by 2^52 is a shift by one lane.
 *
 * y depends on lane 0 of the sum, which the vectors give only late; so lanes 0
 * and 1 are also followed in scalar code (their products recomputed with 64x64
 * multiplies), and the vectors are read two steps ahead, off the critical path.
 *
 * e is processed left to right: s·R (from R^2 mod n, made once per key with
 * OpenSSL's BN), then a squaring per bit and a multiplication by s·R per set
 * bit, and the last multiplication, by s itself, leaves the Montgomery form.
 * For e = 65537: 18 multiplications of about 0.4 µs each on the reference VM.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "mailauth/rsa-ifma.h"

#define LIMBS 40                    /* 40 x 52 = 2080 bits */
#define VECS 5                      /* 8 limbs a vector */
#define MASK52 ((UINT64_C(1) << 52) - 1)
#define MAX_OCTETS 256              /* n of up to 2048 bits: R = 2^2080 > 4n */
#define LE_OCTETS (LIMBS * 52 / 8 + 8)   /* little-endian scratch, with room to read 8 past */

struct rsa_ifma_key {
	uint64_t n[LIMBS];
	uint64_t rr[LIMBS];         /* R^2 mod n */
	uint64_t k0;                /* -1/n mod 2^52 */
	uint64_t e;
	size_t len;                 /* octets of n */
	unsigned char n_be[MAX_OCTETS];
};

/* Big-endian octets (at most MAX_OCTETS) to limbs: the octets reversed into a
 * little-endian buffer, then each limb read as 8 octets from its first and
 * shifted (x86-64 is little-endian; elsewhere this file is not used). */
static void limbs_from_be(uint64_t out[LIMBS], const unsigned char *be, size_t len)
{
	unsigned char le[LE_OCTETS];
	size_t i = 0;

	memset(le + len, 0, sizeof(le) - len);
	for (; len - i >= 8; i += 8) {
		uint64_t w;

		memcpy(&w, be + len - i - 8, 8);
		w = __builtin_bswap64(w);
		memcpy(le + i, &w, 8);
	}
	for (; i < len; i++)
		le[i] = be[len - 1 - i];
	for (size_t k = 0; k < LIMBS; k++) {
		size_t bit = 52 * k;
		uint64_t w;

		memcpy(&w, le + bit / 8, 8);
		out[k] = (w >> (bit % 8)) & MASK52;
	}
}

/* Limbs (normalised, value below 2^(8 len)) to len big-endian octets. */
static void limbs_to_be(unsigned char *be, size_t len, const uint64_t in[LIMBS])
{
	unsigned char le[LE_OCTETS];
	size_t i = 0;

	memset(le, 0, sizeof(le));
	for (size_t k = 0; k < LIMBS; k++) {
		size_t bit = 52 * k;
		uint64_t w;

		memcpy(&w, le + bit / 8, 8);
		w |= in[k] << (bit % 8);
		memcpy(le + bit / 8, &w, 8);
	}
	for (; len - i >= 8; i += 8) {
		uint64_t w;

		memcpy(&w, le + i, 8);
		w = __builtin_bswap64(w);
		memcpy(be + len - i - 8, &w, 8);
	}
	for (; i < len; i++)
		be[len - 1 - i] = le[i];
}

/* a >= b, limb by limb from the top. */
static bool limbs_ge(const uint64_t a[LIMBS], const uint64_t b[LIMBS])
{
	for (size_t k = LIMBS; k-- > 0;)
		if (a[k] != b[k])
			return a[k] > b[k];
	return true;
}

static void limbs_sub(uint64_t a[LIMBS], const uint64_t b[LIMBS])
{
	uint64_t borrow = 0;

	for (size_t k = 0; k < LIMBS; k++) {
		uint64_t d = a[k] - b[k] - borrow;

		borrow = d >> 63;
		a[k] = d & MASK52;
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 8")
#endif

/* r = a b / R mod n, almost: a, b < 2n with normalised limbs give r < 2n,
 * normalised. Returns -1 if the last carry is not zero (it cannot be when the
 * inputs are as said). r may be a or b. */
__attribute__((target("avx512f,avx512ifma")))
static int amm(uint64_t r[LIMBS], const uint64_t a[LIMBS], const uint64_t b[LIMBS],
    const uint64_t n[LIMBS], uint64_t k0)
{
	const __m512i zero = _mm512_setzero_si512();
	__m512i va[VECS], vn[VECS], x[VECS], y[VECS];
	const uint64_t a0 = a[0], a1 = a[1], a2 = a[2], n0 = n[0], n1 = n[1], n2 = n[2];
	uint64_t l0 = 0, l1 = 0, t[LIMBS], u[LIMBS], c = 0;

	UNROLL
	for (int v = 0; v < VECS; v++) {
		va[v] = _mm512_loadu_si512(a + 8 * v);
		vn[v] = _mm512_loadu_si512(n + 8 * v);
		x[v] = y[v] = zero;
	}
	for (int i = 0; i < LIMBS; i++) {
		const uint64_t bi = b[i];
		const __m512i vb = _mm512_set1_epi64((long long)bi);
		/* Lane 2 now is lane 1 after this step's shift, before its
		 * products: read here, needed only at the end of the step. */
		const uint64_t lane2 = (uint64_t)_mm_cvtsi128_si64(
		    _mm512_extracti32x4_epi32(_mm512_add_epi64(x[0], y[0]), 1));
		const unsigned __int128 p0 = (unsigned __int128)a0 * bi;
		const uint64_t acc0 = l0 + ((uint64_t)p0 & MASK52);
		const uint64_t q = (acc0 * k0) & MASK52;
		const __m512i vq = _mm512_set1_epi64((long long)q);
		const unsigned __int128 m0 = (unsigned __int128)n0 * q;
		const unsigned __int128 p1 = (unsigned __int128)a1 * bi, m1 = (unsigned __int128)n1 * q;
		const unsigned __int128 p2 = (unsigned __int128)a2 * bi, m2 = (unsigned __int128)n2 * q;
		/* acc0 + low(n0 q) is 0 mod 2^52: what is above goes to lane 1. */
		const uint64_t carry = (acc0 + ((uint64_t)m0 & MASK52)) >> 52;

		UNROLL
		for (int v = 0; v < VECS; v++) {
			x[v] = _mm512_madd52lo_epu64(x[v], va[v], vb);
			y[v] = _mm512_madd52lo_epu64(y[v], vn[v], vq);
		}
		/* Divide by 2^52: every lane one down; lane 0 takes the carry. */
		UNROLL
		for (int v = 0; v < VECS - 1; v++) {
			x[v] = _mm512_alignr_epi64(x[v + 1], x[v], 1);
			y[v] = _mm512_alignr_epi64(y[v + 1], y[v], 1);
		}
		x[VECS - 1] = _mm512_alignr_epi64(zero, x[VECS - 1], 1);
		y[VECS - 1] = _mm512_alignr_epi64(zero, y[VECS - 1], 1);
		x[0] = _mm512_add_epi64(x[0], _mm512_maskz_set1_epi64(1, (long long)carry));
		/* The high halves belong one lane up: after the shift, in place. */
		UNROLL
		for (int v = 0; v < VECS; v++) {
			x[v] = _mm512_madd52hi_epu64(x[v], va[v], vb);
			y[v] = _mm512_madd52hi_epu64(y[v], vn[v], vq);
		}
		/* The same for lanes 0 and 1, in scalar code. */
		l0 = l1 + ((uint64_t)p1 & MASK52) + (uint64_t)(p0 >> 52) + ((uint64_t)m1 & MASK52) +
		    (uint64_t)(m0 >> 52) + carry;
		l1 = lane2 + ((uint64_t)p2 & MASK52) + (uint64_t)(p1 >> 52) + ((uint64_t)m2 & MASK52) +
		    (uint64_t)(m1 >> 52);
	}
	UNROLL
	for (int v = 0; v < VECS; v++) {
		_mm512_storeu_si512(t + 8 * v, x[v]);
		_mm512_storeu_si512(u + 8 * v, y[v]);
	}
	for (int k = 0; k < LIMBS; k++) {
		uint64_t s = t[k] + u[k] + c;

		r[k] = s & MASK52;
		c = s >> 52;
	}
	return c == 0 ? 0 : -1;
}

bool rsa_ifma_available(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
}
#else
static int amm(uint64_t r[LIMBS], const uint64_t a[LIMBS], const uint64_t b[LIMBS],
    const uint64_t n[LIMBS], uint64_t k0)
{
	return -1;
}

bool rsa_ifma_available(void)
{
	return false;
}
#endif

/* R^2 mod n, with OpenSSL's BN (once per key). */
static int rr_mod_n(uint64_t out[LIMBS], const unsigned char *n_be, size_t len)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *n = BN_bin2bn(n_be, (int)len, NULL), *r = BN_new();
	unsigned char be[MAX_OCTETS];
	int ret = -1;

	if (ctx != NULL && n != NULL && r != NULL && BN_set_bit(r, 2 * 52 * LIMBS) == 1 &&
	    BN_mod(r, r, n, ctx) == 1 && BN_bn2binpad(r, be, (int)len) == (int)len) {
		limbs_from_be(out, be, len);
		ret = 0;
	}
	BN_free(r);
	BN_free(n);
	BN_CTX_free(ctx);
	return ret;
}

struct rsa_ifma_key *rsa_ifma_key_new(const unsigned char *n, size_t nlen, uint64_t e)
{
	struct rsa_ifma_key *k;
	uint64_t inv = 1;

	if (nlen == 0 || nlen > MAX_OCTETS || n[0] == 0 || (n[nlen - 1] & 1) == 0 ||
	    (nlen == 1 && n[0] < 3) || e < 3 || (e & 1) == 0 || !rsa_ifma_available())
		return NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->len = nlen;
	k->e = e;
	memcpy(k->n_be, n, nlen);
	limbs_from_be(k->n, n, nlen);
	/* n0^-1 mod 2^64 by Newton's iteration (each step doubles the correct
	 * low bits: 1 → 2 → ... → 64), then negated mod 2^52. */
	for (int i = 0; i < 6; i++)
		inv *= 2 - k->n[0] * inv;
	k->k0 = (0 - inv) & MASK52;
	if (rr_mod_n(k->rr, n, nlen) < 0) {
		free(k);
		return NULL;
	}
	return k;
}

void rsa_ifma_key_free(struct rsa_ifma_key **kp)
{
	free(*kp);
	*kp = NULL;
}

size_t rsa_ifma_key_len(const struct rsa_ifma_key *k)
{
	return k->len;
}

int rsa_ifma_public(const struct rsa_ifma_key *k, const unsigned char *s, size_t slen,
    unsigned char *out)
{
	uint64_t sl[LIMBS], sr[LIMBS], x[LIMBS];
	int top = 63;

	/* RFC 8017 §5.2.2 step 1: s must be below n (and §8.2.2 step 1: k octets). */
	if (slen != k->len || memcmp(s, k->n_be, slen) >= 0)
		return -1;
	limbs_from_be(sl, s, slen);
	if (amm(sr, sl, k->rr, k->n, k->k0) < 0)       /* s R mod n */
		return -1;
	memcpy(x, sr, sizeof(x));
	while ((k->e >> top & 1) == 0)
		top--;
	/* Bits below the top one, down to bit 1; bit 0 (e is odd) is the last
	 * multiplication, by s itself, which also leaves the Montgomery form. */
	for (int bit = top - 1; bit >= 1; bit--) {
		if (amm(x, x, x, k->n, k->k0) < 0 ||
		    ((k->e >> bit & 1) != 0 && amm(x, x, sr, k->n, k->k0) < 0))
			return -1;
	}
	if (amm(x, x, x, k->n, k->k0) < 0 || amm(x, x, sl, k->n, k->k0) < 0)
		return -1;
	if (limbs_ge(x, k->n))
		limbs_sub(x, k->n);
	if (limbs_ge(x, k->n))
		return -1;              /* cannot happen: x was below 2n */
	limbs_to_be(out, k->len, x);
	return 0;
}
