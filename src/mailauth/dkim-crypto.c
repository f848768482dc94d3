/*
 * dkim-crypto — every OpenSSL call of DKIM: public keys from key records and
 * signature checks (RFC 6376 §3.3, RFC 8301, RFC 8463), and the private keys a
 * signer uses (load, generate, sign a digest, publish the public half).
 *
 * Both algorithms sign the same thing, the 32-octet SHA-256 of the canonical
 * header fields: RSASSA-PKCS1-v1_5 wraps it in a SHA-256 DigestInfo (RFC 8017
 * §9.2), Ed25519 signs the 32 octets as its message (RFC 8463 §3).
 *
 * RSA is OpenSSL's. Ed25519 signatures are made and checked by libsodium, which
 * does in 18 and 49 µs what OpenSSL 3.0 does in 43 and 112 (its EVP layer
 * fetches SHA-512 at every call): the same RFC 8032 function, so the same
 * signatures (Ed25519 is deterministic), and libsodium's check refuses
 * small-order public keys and R values, with which a signature could be made
 * to verify without the private key. OpenSSL still reads, writes and makes the
 * key files (PKCS#8 PEM).
 *
 * A struct dkim_key keeps a signing context made once at load time, so that each
 * signature costs only the primitive and no set-up; a key is therefore used by
 * one thread at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "lib/fdio.h"
#include "mailauth/dkim-private.h"
#include "mailauth/rsa-ifma.h"

#define KEY_FILE_MAX 65536
#define RSA_VERIFY_MIN_BITS 1024   /* RFC 8301 §3.2: smaller keys MUST NOT be accepted */
#define RSA_VERIFY_MAX_BITS 8192   /* bounds the work a peer's key can cause */
#define RSA_SIGN_MAX_BITS 4096     /* dkim_key_sign_digest() writes at most 512 octets */

struct dkim_key {
	EVP_PKEY *pkey;
	enum dkim_key_type type;
	bool ed_ready;
	/* Ed25519: libsodium's secret key (seed and public key). In the struct,
	 * wiped when it is freed: one sodium_malloc() region (three mappings) per
	 * key would not scale to a host's tens of thousands of keys, and OpenSSL's
	 * copy of the key is in ordinary memory anyway. */
	unsigned char ed_sk[crypto_sign_ed25519_SECRETKEYBYTES];
	EVP_PKEY_CTX *rsa_ctx;     /* RSA: initialised for PKCS#1 v1.5 with SHA-256 */
};

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *dkim_crypto_sha256(void)
{
	/* An explicit fetch, once: EVP_sha256() would look it up at every init. */
	pthread_once(&sha256_once, sha256_fetch);
	return sha256 != NULL ? sha256 : EVP_sha256();
}

/* ---------------------------------------------------------------- verifying */

/* One DER element (X.690 §8.1) with the given tag at *p, definite length; its
 * contents in *body, *blen; *p moves past it. */
static int der_take(const unsigned char **p, const unsigned char *end, unsigned char tag,
    const unsigned char **body, size_t *blen)
{
	const unsigned char *q = *p;
	size_t len;

	if (end - q < 2 || q[0] != tag)
		return -1;
	len = q[1];
	q += 2;
	if (len & 0x80) {
		size_t n = len & 0x7f;

		if (n == 0 || n > 3 || (size_t)(end - q) < n)
			return -1;
		for (len = 0; n > 0; n--)
			len = len << 8 | *q++;
	}
	if ((size_t)(end - q) < len)
		return -1;
	*body = q;
	*blen = len;
	*p = q + len;
	return 0;
}

/* The modulus and exponent of an RSA public key in SubjectPublicKeyInfo (RFC
 * 5280 §4.1.2.7, RFC 8017 A.1.1) or bare RSAPublicKey DER, read here: OpenSSL
 * 3's d2i_PUBKEY() costs several times an RSA-2048 verification. Both are
 * positive; leading zero octets are removed. */
static int rsa_der_parse(const unsigned char *der, size_t len, const unsigned char **n_r,
    size_t *nl_r, const unsigned char **e_r, size_t *el_r)
{
	static const unsigned char rsa_oid[] = {   /* 1.2.840.113549.1.1.1 */
		0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
	};
	const unsigned char *p = der, *end = der + len, *seq, *n, *e;
	size_t seql, nl, el;

	if (der_take(&p, end, 0x30, &seq, &seql) < 0 || p != end)
		return -1;
	if (seql > 0 && seq[0] == 0x30) {
		/* SubjectPublicKeyInfo: AlgorithmIdentifier, then a BIT STRING. */
		const unsigned char *q = seq, *qe = seq + seql, *alg, *a, *oid, *bits;
		size_t algl, oidl, bitsl;

		if (der_take(&q, qe, 0x30, &alg, &algl) < 0)
			return -1;
		a = alg;
		if (der_take(&a, alg + algl, 0x06, &oid, &oidl) < 0 || oidl != sizeof(rsa_oid) ||
		    memcmp(oid, rsa_oid, oidl) != 0)
			return -1;
		if (a != alg + algl && (alg + algl - a != 2 || a[0] != 0x05 || a[1] != 0x00))
			return -1;      /* parameters: NULL or absent */
		if (der_take(&q, qe, 0x03, &bits, &bitsl) < 0 || q != qe || bitsl < 1 || bits[0] != 0)
			return -1;
		p = bits + 1;
		end = bits + bitsl;
		if (der_take(&p, end, 0x30, &seq, &seql) < 0 || p != end)
			return -1;
	}
	/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
	p = seq;
	end = seq + seql;
	if (der_take(&p, end, 0x02, &n, &nl) < 0 || der_take(&p, end, 0x02, &e, &el) < 0 ||
	    p != end || nl == 0 || el == 0 || (n[0] & 0x80) || (e[0] & 0x80))
		return -1;
	while (nl > 1 && n[0] == 0)
		n++, nl--;
	while (el > 1 && e[0] == 0)
		e++, el--;
	*n_r = n;
	*nl_r = nl;
	*e_r = e;
	*el_r = el;
	return 0;
}

/* The key built with EVP_PKEY_fromdata(). */
static EVP_PKEY *rsa_from_der(const unsigned char *der, size_t len)
{
	const unsigned char *n, *e;
	size_t nl, el;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;

	if (rsa_der_parse(der, len, &n, &nl, &e, &el) < 0)
		return NULL;
	if ((bn = BN_bin2bn(n, (int)nl, NULL)) == NULL || (be = BN_bin2bn(e, (int)el, NULL)) == NULL ||
	    BN_num_bits(bn) > 16384 || !BN_is_odd(be) || BN_is_one(be))
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}

/* The AVX-512 IFMA form of a plain-DER key of 1024 to 2048 bits (rsa-ifma.h),
 * or NULL: no IFMA, another size or form, or an exponent OpenSSL's path judges
 * (even or 1: refused there; over 64 bits). */
static struct rsa_ifma_key *rsa_fast_key(const unsigned char *der, size_t len)
{
	const unsigned char *n, *e;
	size_t nl, el, bits;
	uint64_t ev = 0;

	if (rsa_der_parse(der, len, &n, &nl, &e, &el) < 0 || el > 8 || n[0] == 0)
		return NULL;
	bits = 8 * nl - (size_t)__builtin_clz(n[0]) + (8 * sizeof(unsigned) - 8);
	if (bits < RSA_VERIFY_MIN_BITS || bits > 2048)
		return NULL;
	for (size_t i = 0; i < el; i++)
		ev = ev << 8 | e[i];
	return rsa_ifma_key_new(n, nl, ev);
}

EVP_PKEY *dkim_crypto_rsa_pubkey(const unsigned char *p, size_t len, const char **error_r)
{
	EVP_PKEY *pk;

	/* RFC 6376 §3.6.1 p= for rsa: an RSAPublicKey in SubjectPublicKeyInfo; some
	 * publish the bare PKCS#1 RSAPublicKey, which is accepted too. */
	if ((pk = rsa_from_der(p, len)) == NULL) {
		/* Not plain DER as expected: OpenSSL's own decoders, which take
		 * BER variants too but cost some 140 µs a key. */
		const unsigned char *q = p;

		pk = d2i_PUBKEY(NULL, &q, (long)len);
		if (pk == NULL || q != p + len) {
			EVP_PKEY_free(pk);
			q = p;
			pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)len);
			if (pk != NULL && q != p + len) {
				EVP_PKEY_free(pk);
				pk = NULL;
			}
		}
	}
	ERR_clear_error();
	if (pk == NULL || !EVP_PKEY_is_a(pk, "RSA")) {
		EVP_PKEY_free(pk);
		*error_r = "The key record's p= is not an RSA public key.";
		return NULL;
	}
	if (EVP_PKEY_get_bits(pk) < RSA_VERIFY_MIN_BITS) {
		EVP_PKEY_free(pk);
		*error_r = "The RSA key is shorter than 1024 bits (RFC 8301).";
		return NULL;
	}
	if (EVP_PKEY_get_bits(pk) > RSA_VERIFY_MAX_BITS) {
		EVP_PKEY_free(pk);
		*error_r = "The RSA key is longer than 8192 bits.";
		return NULL;
	}
	{
		/* RFC 8017 §3.1: e is odd and at least 3 (OpenSSL's decoders, the
		 * fallback above, do not check; e = 1 would make every padded
		 * digest its own signature). */
		BIGNUM *e = NULL;
		bool e_ok = EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) == 1 &&
		    BN_is_odd(e) && !BN_is_one(e);

		BN_free(e);
		ERR_clear_error();
		if (!e_ok) {
			EVP_PKEY_free(pk);
			*error_r = "The RSA key's public exponent is not an odd number above 1.";
			return NULL;
		}
	}
	return pk;
}

/* A public key ready to verify: for RSA up to 2048 bits on a CPU with AVX-512
 * IFMA, rsa-ifma's form (n, R^2 mod n); for other RSA keys the EVP_PKEY and a
 * context initialised once, so that a cached key costs only the primitive per
 * verification (the Montgomery form of n is computed at the first use and
 * kept); for Ed25519 the 32 octets libsodium takes. */
struct dkim_pubkey {
	enum dkim_key_type type;
	struct rsa_ifma_key *rsa_fast;
	EVP_PKEY *pk;              /* RSA without rsa_fast */
	EVP_PKEY_CTX *rsa_ctx;     /* RSA without rsa_fast: verify_init, PKCS#1 v1.5 */
	unsigned char ed_pk[crypto_sign_ed25519_PUBLICKEYBYTES];
};

/* RFC 8017 §9.2 EMSA-PKCS1-v1_5 for SHA-256: T = DigestInfo || H. */
static const unsigned char sha256_prefix[19] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};

/* RFC 8017 §8.2.2 with rsa-ifma: RSAVP1, then the whole encoded message
 * EM = 0x00 0x01 PS(0xff...) 0x00 T compared with the one expected (step 3,
 * no parsing of what the signature decrypts to). */
static bool rsa_fast_verify(const struct rsa_ifma_key *k, const unsigned char digest[32],
    const unsigned char *sig, size_t siglen)
{
	unsigned char em[256], want[256];
	size_t len = rsa_ifma_key_len(k), tlen = sizeof(sha256_prefix) + 32;

	if (siglen != len || len < tlen + 11 || rsa_ifma_public(k, sig, siglen, em) < 0)
		return false;
	want[0] = 0x00;
	want[1] = 0x01;
	memset(want + 2, 0xff, len - tlen - 3);
	want[len - tlen - 1] = 0x00;
	memcpy(want + len - tlen, sha256_prefix, sizeof(sha256_prefix));
	memcpy(want + len - 32, digest, 32);
	return memcmp(em, want, len) == 0;
}

struct dkim_pubkey *dkim_pubkey_new(enum dkim_key_type type, const unsigned char *p,
    size_t len, const char **error_r)
{
	struct dkim_pubkey *k;

	if (sodium_init() < 0) {
		*error_r = "libsodium cannot be initialised.";
		return NULL;
	}
	if (type == DKIM_KEY_ED25519 && len != sizeof(k->ed_pk)) {
		/* RFC 8463 §4: p= is the 32-octet public key itself. */
		*error_r = "The Ed25519 key is not 32 octets.";
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		*error_r = "Out of memory.";
		return NULL;
	}
	k->type = type;
	if (type == DKIM_KEY_ED25519) {
		memcpy(k->ed_pk, p, sizeof(k->ed_pk));
		return k;
	}
	if ((k->rsa_fast = rsa_fast_key(p, len)) != NULL)
		return k;
	if ((k->pk = dkim_crypto_rsa_pubkey(p, len, error_r)) == NULL) {
		free(k);
		return NULL;
	}
	/* No signature digest is set (in OpenSSL 3.0 that is a second fetch, a
	 * few µs): the DigestInfo is given whole instead, see dkim_pubkey_verify(). */
	if ((k->rsa_ctx = EVP_PKEY_CTX_new(k->pk, NULL)) == NULL ||
	    EVP_PKEY_verify_init(k->rsa_ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(k->rsa_ctx, RSA_PKCS1_PADDING) != 1) {
		ERR_clear_error();
		dkim_pubkey_free(&k);
		*error_r = "The key cannot be used for verifying.";
		return NULL;
	}
	return k;
}

int dkim_pubkey_verify(struct dkim_pubkey *k, const unsigned char digest[32],
    const unsigned char *sig, size_t siglen, const char **error_r)
{
	bool ok;

	if (k->type == DKIM_KEY_ED25519) {
		/* RFC 8463 §3: Ed25519 (RFC 8032 §5.1.7) over the 32 octets. */
		ok = siglen == crypto_sign_ed25519_BYTES &&
		    crypto_sign_ed25519_verify_detached(sig, digest, 32, k->ed_pk) == 0;
	} else if (k->rsa_fast != NULL) {
		ok = rsa_fast_verify(k->rsa_fast, digest, sig, siglen);
	} else {
		/* With no digest set, OpenSSL checks the padding and compares the
		 * whole of T, which is what a SHA-256 signature check does. */
		unsigned char t[sizeof(sha256_prefix) + 32];

		memcpy(t, sha256_prefix, sizeof(sha256_prefix));
		memcpy(t + sizeof(sha256_prefix), digest, 32);
		/* RFC 8017 §8.2.2 step 1: S must be k octets (OpenSSL also takes a
		 * shorter one, as a number); as rsa_fast_verify() does. */
		ok = siglen == (size_t)EVP_PKEY_get_size(k->pk) &&
		    EVP_PKEY_verify(k->rsa_ctx, sig, siglen, t, sizeof(t)) == 1;
		ERR_clear_error();
	}
	if (!ok) {
		*error_r = "The signature does not verify.";
		return -1;
	}
	return 0;
}

void dkim_pubkey_free(struct dkim_pubkey **kp)
{
	struct dkim_pubkey *k = *kp;

	if (k == NULL)
		return;
	rsa_ifma_key_free(&k->rsa_fast);
	EVP_PKEY_CTX_free(k->rsa_ctx);
	EVP_PKEY_free(k->pk);
	free(k);
	*kp = NULL;
}

/* ---------------------------------------------------------------- private keys */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;       /* encrypted keys are not supported; never prompt */
}

/* Takes pkey; checks it and prepares its signing context. */
static struct dkim_key *key_wrap(EVP_PKEY *pkey, const char **error_r)
{
	struct dkim_key *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		EVP_PKEY_free(pkey);
		*error_r = "Out of memory.";
		return NULL;
	}
	k->pkey = pkey;
	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		unsigned char seed[crypto_sign_ed25519_SEEDBYTES];
		unsigned char pk[crypto_sign_ed25519_PUBLICKEYBYTES], pub[sizeof(pk)];
		size_t seedlen = sizeof(seed), publen = sizeof(pub);
		bool ok;

		k->type = DKIM_KEY_ED25519;
		/* RFC 8032 §5.1.5: the private key is the 32-octet seed; libsodium
		 * expands it. The public key it derives must be OpenSSL's. */
		ok = sodium_init() >= 0 &&
		    EVP_PKEY_get_raw_private_key(pkey, seed, &seedlen) == 1 &&
		    seedlen == sizeof(seed) &&
		    EVP_PKEY_get_raw_public_key(pkey, pub, &publen) == 1 && publen == sizeof(pub) &&
		    crypto_sign_ed25519_seed_keypair(pk, k->ed_sk, seed) == 0 &&
		    sodium_memcmp(pk, pub, sizeof(pk)) == 0;
		sodium_memzero(seed, sizeof(seed));
		k->ed_ready = ok;
		if (!ok) {
			*error_r = "The Ed25519 key cannot be used for signing.";
			goto fail;
		}
	} else if (EVP_PKEY_is_a(pkey, "RSA")) {
		k->type = DKIM_KEY_RSA;
		if (EVP_PKEY_get_bits(pkey) < RSA_VERIFY_MIN_BITS ||
		    EVP_PKEY_get_bits(pkey) > RSA_SIGN_MAX_BITS) {
			*error_r = "The RSA key is not between 1024 and 4096 bits.";
			goto fail;
		}
		if ((k->rsa_ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL ||
		    EVP_PKEY_sign_init(k->rsa_ctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(k->rsa_ctx, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(k->rsa_ctx, dkim_crypto_sha256()) != 1) {
			*error_r = "The RSA key cannot be used for signing.";
			goto fail;
		}
	} else {
		*error_r = "The key is neither Ed25519 nor RSA.";
		goto fail;
	}
	return k;
fail:
	ERR_clear_error();
	dkim_key_free(&k);
	return NULL;
}

struct dkim_key *dkim_key_parse(const char *pem, size_t len, const char **error_r)
{
	BIO *bio;
	EVP_PKEY *pkey;

	if (len > KEY_FILE_MAX) {
		*error_r = "The key is too long to be a PEM private key.";
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		*error_r = "Out of memory.";
		return NULL;
	}
	/* PKCS#8 "PRIVATE KEY", or the traditional "RSA PRIVATE KEY" (PKCS#1). */
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL) {
		*error_r = "The key is not an unencrypted PEM private key.";
		return NULL;
	}
	return key_wrap(pkey, error_r);
}

struct dkim_key *dkim_key_load(const char *path, const char **error_r)
{
	struct dkim_key *k = NULL;
	struct stat st;
	char *buf = NULL;
	ssize_t n = 0;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		*error_r = "The key file cannot be opened.";
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
		*error_r = "The key file is not a regular file of at most 64 KiB.";
		goto out;
	}
	if ((buf = malloc(KEY_FILE_MAX)) == NULL) {
		*error_r = "Out of memory.";
		goto out;
	}
	while (got < KEY_FILE_MAX && ((n = read(fd, buf + got, KEY_FILE_MAX - got)) > 0 ||
	    (n < 0 && errno == EINTR)))
		if (n > 0)
			got += (size_t)n;
	if (n < 0) {
		*error_r = "The key file cannot be read.";
		goto out;
	}
	k = dkim_key_parse(buf, got, error_r);
out:
	if (buf != NULL) {
		sodium_memzero(buf, KEY_FILE_MAX);
		free(buf);
	}
	close(fd);
	return k;
}

enum dkim_key_type dkim_key_type(const struct dkim_key *k)
{
	return k->type;
}

void dkim_key_free(struct dkim_key **kp)
{
	struct dkim_key *k = *kp;

	if (k == NULL)
		return;
	sodium_memzero(k->ed_sk, sizeof(k->ed_sk));
	EVP_PKEY_CTX_free(k->rsa_ctx);
	EVP_PKEY_free(k->pkey);     /* OpenSSL clears private key material */
	free(k);
	*kp = NULL;
}

char *dkim_key_txt(const struct dkim_key *k)
{
	unsigned char raw[32], *der = NULL;
	const unsigned char *pub = raw;
	size_t len = sizeof(raw);
	char *b64, *txt = NULL;

	if (k->type == DKIM_KEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &len) != 1 || len != 32)
			return NULL;
	} else {
		int n = i2d_PUBKEY(k->pkey, &der);   /* SubjectPublicKeyInfo, §3.6.1 */

		if (n <= 0)
			return NULL;
		pub = der;
		len = (size_t)n;
	}
	if ((b64 = dkim_base64_encode(pub, len)) != NULL) {
		const char *kt = k->type == DKIM_KEY_ED25519 ? "ed25519" : "rsa";

		if (asprintf(&txt, "v=DKIM1; k=%s; p=%s", kt, b64) < 0)
			txt = NULL;
		free(b64);
	}
	OPENSSL_free(der);
	return txt;
}

int dkim_key_sign_digest(const struct dkim_key *k, const unsigned char digest[32],
    unsigned char *sig, size_t *siglen_r, const char **error_r)
{
	size_t len = 512;
	bool ok;

	if (k->type == DKIM_KEY_ED25519) {
		/* RFC 8463 §3: the 32 octets are the message (PureEdDSA). */
		unsigned long long n = 0;

		ok = k->ed_ready && crypto_sign_ed25519_detached(sig, &n, digest, 32, k->ed_sk) == 0;
		len = (size_t)n;
	} else {
		ok = EVP_PKEY_sign(k->rsa_ctx, sig, &len, digest, 32) == 1;
		ERR_clear_error();
	}
	if (!ok) {
		*error_r = "Signing failed.";
		return -1;
	}
	*siglen_r = len;
	return 0;
}

int dkim_key_generate(enum dkim_key_type type, unsigned rsa_bits, const char *path,
    char **txt_r, const char **error_r)
{
	struct dkim_key *k = NULL;
	EVP_PKEY *pkey;
	BIO *bio = NULL;
	char *pem = NULL;
	long pemlen = 0;
	int fd = -1, ret = -1;

	*txt_r = NULL;
	if (type == DKIM_KEY_RSA) {
		if (rsa_bits == 0)
			rsa_bits = 2048;
		if (rsa_bits < RSA_VERIFY_MIN_BITS || rsa_bits > RSA_SIGN_MAX_BITS) {
			*error_r = "RSA keys must have 1024 to 4096 bits.";
			return -1;
		}
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
	} else {
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	}
	if (pkey == NULL) {
		ERR_clear_error();
		*error_r = "Key generation failed.";
		return -1;
	}
	if ((k = key_wrap(pkey, error_r)) == NULL)
		return -1;
	/* PKCS#8 PEM, in a buffer that is wiped before it is freed. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (pemlen = BIO_get_mem_data(bio, &pem)) <= 0) {
		ERR_clear_error();
		*error_r = "The key cannot be written as PEM.";
		goto out;
	}
	if ((*txt_r = dkim_key_txt(k)) == NULL) {
		*error_r = "Out of memory.";
		goto out;
	}
	/* Never overwrite a key: a published selector's key must not change. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		*error_r = errno == EEXIST ? "The key file exists already; it is never overwritten." :
		    "The key file cannot be created.";
		goto out;
	}
	if (fd_write_all(fd, pem, (size_t)pemlen) < 0 || fsync(fd) < 0) {
		*error_r = "The key file cannot be written.";
		unlink(path);
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0 && close(fd) < 0 && ret == 0) {
		*error_r = "The key file cannot be written.";
		unlink(path);
		ret = -1;
	}
	if (pem != NULL)
		sodium_memzero(pem, (size_t)pemlen);
	BIO_free(bio);
	dkim_key_free(&k);
	if (ret < 0) {
		free(*txt_r);
		*txt_r = NULL;
	}
	return ret;
}
