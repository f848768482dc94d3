/*
 * Unit tests for DKIM verifying and signing (dkim.h): RFC 8463 Appendix A (both
 * signatures of the example message pass), sign-then-verify for both algorithms
 * and all four canonicalisations, one-octet changes that must fail, and every
 * key and signature rule that decides a result (l=, x=, t=s, t=y, revoked keys,
 * k= and h= of the key, small RSA keys, rsa-sha1, several TXT records, DNS
 * errors). Keys come from a static zone (dns_zone_parse), so every step is
 * synchronous; RFC 8463's records and expectations are read from the conformance
 * folder's vectors.json (skipped when absent). Every message is verified whole, one octet at a time and in
 * random chunks (exact-size heap copies), and all runs must agree.
 *
 * Signatures with arbitrary tags are made here with the private pieces
 * (canonicaliser, header hash) and OpenSSL directly, so that the verifier can
 * be shown signatures our signer never makes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "dns/dns.h"
#include "mailauth/dkim-private.h"
#include "mailauth/dkim.h"

#define NOW 1700000000

/* ---------------------------------------------------------------- helpers */

static char *read_all(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len_r = (size_t)n;
	return buf;
}

/* ../shared/conformance/<rel> from the source root, or NULL when absent. */
static char *conformance(const char *rel)
{
	const char *src = getenv("RAMPART_SRCDIR");
	char *path;
	struct stat st;

	if (asprintf(&path, "%s/../shared/conformance/%s", src != NULL ? src : ".", rel) < 0)
		return NULL;
	if (stat(path, &st) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

static char *b64(const unsigned char *p, size_t len)
{
	char *s = dkim_base64_encode(p, len);

	assert_non_null(s);
	return s;
}

/* A zone line: name TXT, split into quoted strings of at most 255 octets. */
static void zone_txt(struct dkim_buf *z, const char *name, const char *txt)
{
	size_t len = strlen(txt);

	dkim_buf_add(z, name, strlen(name));
	dkim_buf_add(z, ". 300 IN TXT", 12);
	for (size_t off = 0; off < len || off == 0; off += 200) {
		dkim_buf_add(z, " \"", 2);
		for (size_t i = off; i < len && i < off + 200; i++) {
			if (txt[i] == '"' || txt[i] == '\\')
				dkim_buf_add(z, "\\", 1);
			dkim_buf_add(z, &txt[i], 1);
		}
		dkim_buf_add(z, "\"", 1);
		if (len == 0)
			break;
	}
	dkim_buf_add(z, "\n", 1);
}

static struct dns_zone *zone_make(struct dkim_buf *z)
{
	const char *error = NULL;
	struct dns_zone *zone = dns_zone_parse(z->p != NULL ? z->p : "", z->len, &error);

	if (zone == NULL)
		fail_msg("zone: %s", error);
	dkim_buf_free(z);
	return zone;
}

/* Public key record text for pk. */
static char *key_txt(EVP_PKEY *pk, bool pkcs1, const char *extra)
{
	unsigned char raw[32], *der = NULL;
	size_t len = sizeof(raw);
	char *p, *txt;
	bool ed = EVP_PKEY_is_a(pk, "ED25519");

	if (ed) {
		assert_int_equal(EVP_PKEY_get_raw_public_key(pk, raw, &len), 1);
		p = b64(raw, len);
	} else {
		int n = pkcs1 ? i2d_PublicKey(pk, &der) : i2d_PUBKEY(pk, &der);

		assert_true(n > 0);
		p = b64(der, (size_t)n);
		OPENSSL_free(der);
	}
	assert_true(asprintf(&txt, "v=DKIM1; k=%s; %sp=%s", ed ? "ed25519" : "rsa",
	    extra != NULL ? extra : "", p) > 0);
	free(p);
	return txt;
}

static EVP_PKEY *ed_key, *rsa_key, *rsa1024_key;
/* A key cache shared by every verification of the run (made in keys_setup):
 * results must be the same with it (a hit or a miss) as without it. */
static struct dkim_key_cache *shared_cache;


static int keys_setup(void **state)
{
	ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa1024_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	shared_cache = dkim_key_cache_new(8);
	return shared_cache != NULL && ed_key != NULL && rsa_key != NULL && rsa1024_key != NULL ? 0 : -1;
}

static int keys_teardown(void **state)
{
	EVP_PKEY_free(ed_key);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(rsa1024_key);
	dkim_key_cache_free(&shared_cache);
	return 0;
}

/* ---------------------------------------------------------------- verifying */

enum plan { PLAN_WHOLE, PLAN_BYTES, PLAN_RANDOM };

static struct dkim_verify *verify_with(const char *msg, size_t len, const struct dns_zone *z,
    time_t now, enum plan plan, unsigned seed, struct dkim_key_cache *cache)
{
	struct dkim_verify *v = dkim_verify_new_cached(now, cache);
	struct dns_view *view;
	size_t off = 0;

	assert_non_null(v);
	while (off < len) {
		size_t want = len - off;
		char *copy;

		if (plan == PLAN_BYTES)
			want = 1;
		else if (plan == PLAN_RANDOM) {
			seed = seed * 1103515245u + 12345u;
			want = 1 + (seed >> 16) % 173;
		}
		if (want > len - off)
			want = len - off;
		copy = malloc(want);
		assert_non_null(copy);
		memcpy(copy, msg + off, want);
		dkim_verify_feed(v, copy, want);
		free(copy);
		off += want;
	}
	dkim_verify_finish(v);
	view = dns_view_new(z);
	assert_non_null(view);
	assert_int_equal(dkim_verify_step(view, v), 1);
	/* A second step changes nothing (results are kept). */
	assert_int_equal(dkim_verify_step(view, v), 1);
	dns_view_free(&view);
	return v;
}

static struct dkim_verify *verify_by(const char *msg, size_t len, const struct dns_zone *z,
    time_t now, enum plan plan, unsigned seed)
{
	return verify_with(msg, len, z, now, plan, seed, NULL);
}

static void assert_same_results(const struct dkim_verify *a, const struct dkim_verify *b)
{
	assert_int_equal(dkim_verify_count(a), dkim_verify_count(b));
	for (size_t i = 0; i < dkim_verify_count(a); i++) {
		const struct dkim_result *x = dkim_verify_result(a, i), *y = dkim_verify_result(b, i);

		assert_int_equal(x->status, y->status);
		assert_string_equal(x->reason, y->reason);
		assert_string_equal(x->domain, y->domain);
		assert_string_equal(x->b, y->b);
		assert_int_equal(x->testing, y->testing);
	}
}

/* Verifies every way; all must agree. Returns the whole-feed verifier. */
static struct dkim_verify *verify(const char *msg, size_t len, const struct dns_zone *z,
    time_t now)
{
	struct dkim_verify *v = verify_by(msg, len, z, now, PLAN_WHOLE, 0), *o;

	if (len <= 20000) {
		o = verify_by(msg, len, z, now, PLAN_BYTES, 0);
		assert_same_results(v, o);
		dkim_verify_free(&o);
	}
	for (unsigned seed = 1; seed <= 4; seed++) {
		o = verify_by(msg, len, z, now, PLAN_RANDOM, seed);
		assert_same_results(v, o);
		dkim_verify_free(&o);
	}
	/* With the shared key cache, twice (the second time every key is a hit). */
	for (int i = 0; i < 2; i++) {
		o = verify_with(msg, len, z, now, PLAN_WHOLE, 0, shared_cache);
		assert_same_results(v, o);
		dkim_verify_free(&o);
	}
	return v;
}

/* The one signature's status, with its reason shown on mismatch. */
static void expect_one(const char *msg, size_t len, const struct dns_zone *z, time_t now,
    enum dkim_status want, const char *reason_part)
{
	struct dkim_verify *v = verify(msg, len, z, now);
	const struct dkim_result *r;

	assert_int_equal(dkim_verify_count(v), 1);
	r = dkim_verify_result(v, 0);
	if (r->status != want)
		fail_msg("status %s, want %s (%s)", dkim_status_name(r->status),
		    dkim_status_name(want), r->reason);
	if (reason_part != NULL && strstr(r->reason, reason_part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", r->reason, reason_part);
	if (want == DKIM_STATUS_PASS)
		assert_string_equal(r->reason, "");
	dkim_verify_free(&v);
}

/* ---------------------------------------------------------------- a signer with any tags */

static void buf_sink(void *arg, const void *data, size_t len)
{
	dkim_buf_add(arg, data, len);
}

/* Signs msg with pk: the field is "DKIM-Signature: TAGS; h=H; bh=...; b=...",
 * the body hash over the first l canonical octets (UINT64_MAX: all). */
static char *sign_custom(const char *msg, const char *tags, const char *h, bool rh, bool rb,
    uint64_t l, EVP_PKEY *pk, size_t *len_r)
{
	const char *body = strstr(msg, "\r\n\r\n");
	struct dkim_buf canon = { 0 }, field = { 0 }, out = { 0 };
	struct dkim_body_canon *bc = malloc(sizeof(*bc));
	struct dkim_header hd;
	struct dkim_name names[64];
	unsigned char bh[32], digest[32], sig[1024];
	size_t nn = 0, siglen = sizeof(sig);
	const char *error = NULL;
	char *bh64, *sig64, *hcopy = strdup(h);

	assert_non_null(bc);
	assert_non_null(body);
	body += 4;
	dkim_body_canon_init(bc, rb, buf_sink, &canon);
	dkim_body_canon_feed(bc, body, strlen(body));
	dkim_body_canon_finish(bc);
	free(bc);
	assert_int_equal(EVP_Digest(canon.p, l < canon.len ? (size_t)l : canon.len, bh, NULL,
	    EVP_sha256(), NULL), 1);
	dkim_buf_free(&canon);
	bh64 = b64(bh, 32);
	for (char *p = strtok(hcopy, ":"); p != NULL; p = strtok(NULL, ":")) {
		while (*p == ' ')
			p++;
		names[nn].p = p;
		names[nn].len = strcspn(p, " ");
		nn++;
	}
	dkim_buf_add(&field, "DKIM-Signature: ", 16);
	dkim_buf_add(&field, tags, strlen(tags));
	if (strstr(tags, "c=") == NULL) {
		dkim_buf_add(&field, rh ? "; c=relaxed" : "; c=simple", rh ? 11 : 10);
		dkim_buf_add(&field, rb ? "/relaxed" : "/simple", rb ? 8 : 7);
	}
	dkim_buf_add(&field, "; h=", 4);
	dkim_buf_add(&field, h, strlen(h));
	dkim_buf_add(&field, "; bh=", 5);
	dkim_buf_add(&field, bh64, strlen(bh64));
	dkim_buf_add(&field, "; b=", 4);
	dkim_header_init(&hd);
	dkim_header_feed(&hd, msg, strlen(msg));
	dkim_header_finish(&hd);
	assert_int_equal(dkim_header_hash(&hd, names, nn, rh, field.p, field.len, digest, &error), 0);
	dkim_header_free(&hd);
	if (EVP_PKEY_is_a(pk, "ED25519")) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();

		assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk), 1);
		assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, digest, 32), 1);
		EVP_MD_CTX_free(ctx);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);

		assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()), 1);
		assert_int_equal(EVP_PKEY_sign(ctx, sig, &siglen, digest, 32), 1);
		EVP_PKEY_CTX_free(ctx);
	}
	sig64 = b64(sig, siglen);
	dkim_buf_add(&out, field.p, field.len);
	dkim_buf_add(&out, sig64, strlen(sig64));
	dkim_buf_add(&out, "\r\n", 2);
	dkim_buf_add(&out, msg, strlen(msg) + 1);
	assert_false(out.failed);
	*len_r = out.len - 1;
	free(bh64);
	free(sig64);
	free(hcopy);
	dkim_buf_free(&field);
	return out.p;
}

static const char MSG[] =
	"From: Joe <joe@example.com>\r\n"
	"To: Sue <sue@example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
	"Message-ID: <20030712040037.46341.5F8J@example.com>\r\n"
	"X-Unsigned: anything\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"We lost the game.  Are you hungry yet?\r\n"
	"\r\n"
	"Joe.\r\n";

static const char H5[] = "from:to:subject:date:message-id";

/* A zone with sel._domainkey.example.com for pk (record text from key_txt). */
static struct dns_zone *zone_for(EVP_PKEY *pk, const char *extra)
{
	struct dkim_buf z = { 0 };
	char *txt = key_txt(pk, false, extra);

	zone_txt(&z, "sel._domainkey.example.com", txt);
	free(txt);
	return zone_make(&z);
}

/* ---------------------------------------------------------------- RFC 8463 */

/* vectors.json: the A.2 records into a zone, and the expected results. */
static struct dns_zone *rfc8463_zone(json_t **vec_r)
{
	char *path = conformance("dkim/rfc8463/vectors.json");
	json_error_t jerr;
	json_t *vec, *txt, *val;
	const char *name;
	struct dkim_buf z = { 0 };

	if (path == NULL)
		return NULL;
	vec = json_load_file(path, 0, &jerr);
	free(path);
	if (vec == NULL)
		fail_msg("vectors.json: %s", jerr.text);
	txt = json_object_get(vec, "dns_txt");
	assert_true(json_object_size(txt) == 2);
	json_object_foreach(txt, name, val)
		zone_txt(&z, name, json_string_value(val));
	*vec_r = vec;
	return zone_make(&z);
}

static void test_rfc8463_vectors(void **state)
{
	char *dir = conformance("dkim/rfc8463/rfc8463-A3-signed.eml");
	char *msg, *lf;
	size_t len, n = 0, e;
	struct dns_zone *zone;
	struct dkim_verify *v;
	json_t *vec = NULL, *exp;

	if (dir == NULL || (zone = rfc8463_zone(&vec)) == NULL) {
		free(dir);
		skip();
	}
	msg = read_all(dir, &len);
	assert_non_null(msg);
	v = verify(msg, len, zone, NOW);
	/* As vectors.json expects, signature by signature. */
	json_array_foreach(json_object_get(vec, "expected"), e, exp) {
		size_t k = (size_t)json_integer_value(json_object_get(exp, "signature_index"));
		const struct dkim_result *r;

		assert_true(k < dkim_verify_count(v));
		r = dkim_verify_result(v, k);
		assert_string_equal(dkim_status_name(r->status),
		    json_string_value(json_object_get(exp, "result")));
		assert_string_equal(r->algorithm, json_string_value(json_object_get(exp, "a")));
		assert_string_equal(r->domain, json_string_value(json_object_get(exp, "d")));
		assert_string_equal(r->selector, json_string_value(json_object_get(exp, "s")));
	}
	assert_int_equal(e, 2);
	assert_int_equal(dkim_verify_count(v), 2);
	for (size_t i = 0; i < 2; i++) {
		const struct dkim_result *r = dkim_verify_result(v, i);

		if (r->status != DKIM_STATUS_PASS)
			fail_msg("signature %zu: %s (%s)", i, dkim_status_name(r->status), r->reason);
		assert_string_equal(r->domain, "football.example.com");
		assert_string_equal(r->identity, "@football.example.com");
		assert_false(r->testing);
	}
	assert_string_equal(dkim_verify_result(v, 0)->selector, "brisbane");
	assert_string_equal(dkim_verify_result(v, 0)->algorithm, "ed25519-sha256");
	assert_string_equal(dkim_verify_result(v, 0)->b, "9/dsDChY0YMT");
	assert_string_equal(dkim_verify_result(v, 1)->selector, "test");
	assert_string_equal(dkim_verify_result(v, 1)->algorithm, "rsa-sha256");
	assert_string_equal(dkim_verify_result(v, 1)->b, "icKcLSEZYXJ9");
	{
		size_t hl;
		const char *h = dkim_verify_headers(v, &hl);

		assert_true(hl > 0);
		assert_memory_equal(h, msg, hl);
		assert_memory_equal(h + hl - 2, "\r\n", 2);
		assert_memory_equal(msg + hl, "\r\n", 2);   /* the empty line follows */
	}
	dkim_verify_free(&v);

	/* The same message with LF line ends: a bare LF is taken as CRLF. */
	lf = malloc(len + 1);
	assert_non_null(lf);
	for (size_t i = 0; i < len; i++)
		if (msg[i] != '\r')
			lf[n++] = msg[i];
	v = verify(lf, n, zone, NOW);
	assert_int_equal(dkim_verify_count(v), 2);
	assert_int_equal(dkim_verify_result(v, 0)->status, DKIM_STATUS_PASS);
	assert_int_equal(dkim_verify_result(v, 1)->status, DKIM_STATUS_PASS);
	dkim_verify_free(&v);

	/* One octet of the body changed: both fail on the body hash. */
	{
		char *m = strdup(msg);
		char *p = strstr(m, "hungry");

		p[0] = 'H';
		v = verify(m, len, zone, NOW);
		for (size_t i = 0; i < 2; i++) {
			assert_int_equal(dkim_verify_result(v, i)->status, DKIM_STATUS_FAIL);
			assert_non_null(strstr(dkim_verify_result(v, i)->reason, "body hash"));
		}
		dkim_verify_free(&v);
		free(m);
	}
	dns_zone_free(&zone);
	json_decref(vec);
	free(lf);
	free(msg);
	free(dir);
}

/* The ed25519 key of RFC 8463 A.1 signs (our signer) and verifies. */
static void test_rfc8463_key_signs(void **state)
{
	static const unsigned char seed[32] = {
		0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4,
		0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
		0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
	};
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	char *txt = key_txt(pk, false, NULL);

	/* RFC 8463 A.2's published key. */
	assert_string_equal(txt, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
	free(txt);
	EVP_PKEY_free(pk);
}

/* ---------------------------------------------------------------- sign, then verify */

static struct dkim_key *load_pkey(EVP_PKEY *pk)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	long n;
	const char *error = NULL;
	struct dkim_key *k;

	assert_int_equal(PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &pem);
	k = dkim_key_parse(pem, (size_t)n, &error);
	if (k == NULL)
		fail_msg("dkim_key_parse: %s", error);
	BIO_free(bio);
	return k;
}

/* Ed25519 is made by libsodium (dkim-crypto.c): for random keys and digests its
 * signatures are OpenSSL's octet for octet (RFC 8032 signing is deterministic),
 * OpenSSL accepts them, and a one-bit change in the digest or the signature is
 * refused by both. */
static void test_ed25519_matches_openssl(void **state)
{
	for (int round = 0; round < 50; round++) {
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		struct dkim_key *k = load_pkey(pk);
		unsigned char digest[32], mine[512], theirs[64], pub[32];
		size_t mylen = 0, theirlen = sizeof(theirs), publen = sizeof(pub);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		struct dkim_pubkey *vk;
		const char *error = NULL;

		for (size_t i = 0; i < sizeof(digest); i++)
			digest[i] = (unsigned char)(round * 31 + i * 7);
		assert_int_equal(dkim_key_sign_digest(k, digest, mine, &mylen, &error), 0);
		assert_int_equal(mylen, 64);
		assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk), 1);
		assert_int_equal(EVP_DigestSign(ctx, theirs, &theirlen, digest, 32), 1);
		assert_memory_equal(mine, theirs, 64);
		assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk), 1);
		assert_int_equal(EVP_DigestVerify(ctx, mine, 64, digest, 32), 1);
		EVP_MD_CTX_free(ctx);

		assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pub, &publen), 1);
		vk = dkim_pubkey_new(DKIM_KEY_ED25519, pub, publen, &error);
		assert_non_null(vk);
		assert_int_equal(dkim_pubkey_verify(vk, digest, theirs, 64, &error), 0);
		assert_int_equal(dkim_pubkey_verify(vk, digest, theirs, 63, &error), -1);
		theirs[round % 64] ^= 1;
		assert_int_equal(dkim_pubkey_verify(vk, digest, theirs, 64, &error), -1);
		assert_string_equal(error, "The signature does not verify.");
		theirs[round % 64] ^= 1;
		digest[round % 32] ^= 0x80;
		assert_int_equal(dkim_pubkey_verify(vk, digest, theirs, 64, &error), -1);
		dkim_pubkey_free(&vk);
		dkim_key_free(&k);
		EVP_PKEY_free(pk);
	}
}

/* A published key that is a point of small order (here the neutral element,
 * encoded 01 00..00) lets anyone make a "signature" that the cofactorless
 * equation accepts for every message: R = the neutral element, S = 0 (OpenSSL
 * 3.0's EVP_DigestVerify() accepts it). Such keys and R values are refused
 * (RFC 8032 §5.1.7 leaves this to the verifier; libsodium checks both), so the
 * forgery fails. */
static void test_ed25519_small_order_key_refused(void **state)
{
	unsigned char neutral[32] = { 1 }, sig[64] = { 1 }, digest[32] = { 0 };
	const char *error = NULL;
	struct dkim_pubkey *vk = dkim_pubkey_new(DKIM_KEY_ED25519, neutral, 32, &error);

	assert_non_null(vk);
	assert_int_equal(dkim_pubkey_verify(vk, digest, sig, 64, &error), -1);
	digest[0] = 1;
	assert_int_equal(dkim_pubkey_verify(vk, digest, sig, 64, &error), -1);
	dkim_pubkey_free(&vk);
	/* Not 32 octets: not an Ed25519 key. */
	assert_null(dkim_pubkey_new(DKIM_KEY_ED25519, neutral, 31, &error));
	assert_string_equal(error, "The Ed25519 key is not 32 octets.");
}

/* RSA checks (dkim_pubkey_verify) agree with OpenSSL for keys that take the
 * AVX-512 IFMA path (1024 to 2048 bits, when the CPU has it) and for those that
 * do not (3072): OpenSSL's PKCS#1 v1.5 SHA-256 signatures pass; a changed bit,
 * another digest, s >= n, a short signature, and encodings that are not
 * EMSA-PKCS1-v1_5 with SHA-256's DigestInfo (RFC 8017 §9.2) fail. */
static void sign_raw(EVP_PKEY *pk, const unsigned char *t, size_t tlen, unsigned char *sig,
    size_t *siglen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);

	/* No digest set: OpenSSL pads t as it is (type 1 padding, §9.2 step 5). */
	assert_int_equal(EVP_PKEY_sign_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_sign(c, sig, siglen, t, tlen), 1);
	EVP_PKEY_CTX_free(c);
}

static void test_rsa_verify_paths(void **state)
{
	static const unsigned bits[] = { 1024, 2048, 3072 };
	static const unsigned char sha256_info[19] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
	};
	static const unsigned char sha1_info[15] = {
		0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
	};

	for (size_t b = 0; b < sizeof(bits) / sizeof(bits[0]); b++) {
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits[b]);
		struct dkim_key *k = load_pkey(pk);
		unsigned char *der = NULL, sig[512], t[64];
		int derlen = i2d_PUBKEY(pk, &der);
		const char *error = NULL;
		struct dkim_pubkey *vk = dkim_pubkey_new(DKIM_KEY_RSA, der, (size_t)derlen, &error);
		size_t siglen = sizeof(sig), n = bits[b] / 8;

		assert_non_null(vk);
		for (int round = 0; round < 20; round++) {
			unsigned char digest[32];

			for (size_t i = 0; i < 32; i++)
				digest[i] = (unsigned char)(round * 13 + i * b);
			assert_int_equal(dkim_key_sign_digest(k, digest, sig, &siglen, &error), 0);
			assert_int_equal(siglen, n);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen, &error), 0);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen - 1, &error), -1);
			sig[round * 7 % n] ^= 0x10;
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen, &error), -1);
			sig[round * 7 % n] ^= 0x10;
			digest[round] ^= 1;
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen, &error), -1);
		}
		{
			unsigned char digest[32] = { 7 };
			BIGNUM *bn = NULL;

			/* The right encoding made by hand passes... */
			memcpy(t, sha256_info, sizeof(sha256_info));
			memcpy(t + sizeof(sha256_info), digest, 32);
			siglen = sizeof(sig);
			sign_raw(pk, t, sizeof(sha256_info) + 32, sig, &siglen);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen, &error), 0);
			/* ...the bare digest (no DigestInfo) does not... */
			siglen = sizeof(sig);
			sign_raw(pk, digest, 32, sig, &siglen);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen, &error), -1);
			/* ...nor SHA-1's DigestInfo with 20 of the octets... */
			memcpy(t, sha1_info, sizeof(sha1_info));
			memcpy(t + sizeof(sha1_info), digest, 20);
			siglen = sizeof(sig);
			sign_raw(pk, t, sizeof(sha1_info) + 20, sig, &siglen);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen, &error), -1);
			/* ...nor T with an octet more (the padding one shorter). */
			memcpy(t, sha256_info, sizeof(sha256_info));
			memcpy(t + sizeof(sha256_info), digest, 32);
			t[sizeof(sha256_info) + 32] = 0;
			siglen = sizeof(sig);
			sign_raw(pk, t, sizeof(sha256_info) + 33, sig, &siglen);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen, &error), -1);
			/* s = n is out of range (RFC 8017 §5.2.2). */
			assert_int_equal(EVP_PKEY_get_bn_param(pk, "n", &bn), 1);
			assert_int_equal(BN_bn2binpad(bn, sig, (int)n), (int)n);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, n, &error), -1);
			BN_free(bn);
		}
		{
			/* RFC 8017 §8.2.2 step 1: a signature of fewer than k octets
			 * is invalid even when it is the right number (a valid one
			 * whose first octet is 0, without it), on both paths. */
			unsigned char digest[32] = { 0 };
			int found = 0;

			for (int tries = 0; tries < 4096 && !found; tries++) {
				digest[0] = (unsigned char)tries;
				digest[1] = (unsigned char)(tries >> 8);
				siglen = sizeof(sig);
				assert_int_equal(dkim_key_sign_digest(k, digest, sig, &siglen, &error), 0);
				found = sig[0] == 0;
			}
			assert_true(found);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig, siglen, &error), 0);
			assert_int_equal(dkim_pubkey_verify(vk, digest, sig + 1, siglen - 1, &error), -1);
		}
		dkim_pubkey_free(&vk);
		OPENSSL_free(der);
		dkim_key_free(&k);
		EVP_PKEY_free(pk);
	}
}

/* RFC 8017 §3.1: e is an odd integer of at least 3. A published key with e = 1
 * (every padded digest would be its own signature) or an even e is refused,
 * whichever decoder reads it; e = 3 is taken. */
static void test_rsa_exponent_rules(void **state)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	BIGNUM *bn = NULL;
	unsigned char n[256], der[300];
	static const unsigned long exps[] = { 1, 2, 65536, 3, 65537 };

	assert_int_equal(EVP_PKEY_get_bn_param(pk, "n", &bn), 1);
	assert_int_equal(BN_bn2binpad(bn, n, 256), 256);
	for (size_t i = 0; i < sizeof(exps) / sizeof(exps[0]); i++) {
		/* RSAPublicKey ::= SEQUENCE { INTEGER n, INTEGER e } (PKCS#1). */
		size_t o = 0, el = exps[i] > 0xffff ? 3 : exps[i] > 0xff ? 2 : 1;
		const char *error = NULL;
		struct dkim_pubkey *vk;
		EVP_PKEY *dk;

		der[o++] = 0x30;
		der[o++] = 0x82;
		der[o++] = (unsigned char)((4 + 1 + 256 + 2 + el) >> 8);
		der[o++] = (unsigned char)(4 + 1 + 256 + 2 + el);
		der[o++] = 0x02;
		der[o++] = 0x82;
		der[o++] = 0x01;
		der[o++] = 0x01;
		der[o++] = 0x00;
		memcpy(der + o, n, 256);
		o += 256;
		der[o++] = 0x02;
		der[o++] = (unsigned char)el;
		for (size_t b = el; b-- > 0;)
			der[o++] = (unsigned char)(exps[i] >> (8 * b));
		vk = dkim_pubkey_new(DKIM_KEY_RSA, der, o, &error);
		dk = dkim_crypto_rsa_pubkey(der, o, &error);
		if (exps[i] >= 3 && exps[i] % 2 == 1) {
			assert_non_null(vk);
			assert_non_null(dk);
		} else {
			assert_null(vk);
			assert_null(dk);
			assert_non_null(strstr(error, "exponent"));
		}
		dkim_pubkey_free(&vk);
		EVP_PKEY_free(dk);
	}
	BN_free(bn);
	EVP_PKEY_free(pk);
}

/* Signs msg through dkim.h, fed in random chunks; returns field + msg. */
static char *sign_msg(const struct dkim_key *k, const struct dkim_sign_params *p, const char *msg,
    size_t len, unsigned seed, size_t *len_r)
{
	const char *error = NULL;
	struct dkim_sign *s = dkim_sign_new(p, &error);
	unsigned char digest[32], sig[512];
	size_t siglen, off = 0;
	char *field, *out;

	if (s == NULL)
		fail_msg("dkim_sign_new: %s", error);
	while (off < len) {
		size_t want = len - off;

		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			want = 1 + (seed >> 16) % 61;
			if (want > len - off)
				want = len - off;
		}
		dkim_sign_feed(s, msg + off, want);
		off += want;
	}
	dkim_sign_finish(s);
	assert_int_equal(dkim_sign_digest(s, digest, &error), 0);
	assert_int_equal(dkim_key_sign_digest(k, digest, sig, &siglen, &error), 0);
	field = dkim_sign_header(s, sig, siglen);
	assert_non_null(field);
	/* Folded: no line over 78 octets, CRLF TAB continuation. */
	for (const char *l = field; *l != '\0';) {
		const char *e = strstr(l, "\r\n");

		assert_non_null(e);
		assert_true(e - l <= 78);
		l = e + 2;
		if (*l != '\0')
			assert_int_equal(*l, '\t');
	}
	assert_true(asprintf(&out, "%s%.*s", field, (int)len, msg) > 0);
	*len_r = strlen(field) + len;
	free(field);
	dkim_sign_free(&s);
	return out;
}

/* The A.1 message: its simple body hash is the one vectors.json gives, and our
 * signer with the A.1 Ed25519 key makes a signature that the A.2 record
 * verifies. */
static void test_rfc8463_sign(void **state)
{
	static const unsigned char seed[32] = {
		0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4,
		0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
		0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
	};
	char *path = conformance("dkim/rfc8463/rfc6376-A1-unsigned.eml"), *msg, *out, *bh;
	json_t *vec = NULL;
	struct dns_zone *zone;
	size_t len, olen;
	EVP_PKEY *pk;
	struct dkim_key *k;
	struct dkim_sign_params p = {
		.domain = "football.example.com", .selector = "brisbane", .type = DKIM_KEY_ED25519,
		.simple_header = true, .simple_body = true, .timestamp = 1518460054,
		.identity = "@football.example.com",
	};
	struct dkim_verify *v;

	if (path == NULL || (zone = rfc8463_zone(&vec)) == NULL) {
		free(path);
		skip();
	}
	msg = read_all(path, &len);
	assert_non_null(msg);
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	k = load_pkey(pk);
	out = sign_msg(k, &p, msg, len, 3, &olen);
	assert_true(asprintf(&bh, "bh=%s;",
	    json_string_value(json_object_get(vec, "body_hash_sha256_simple"))) > 0);
	assert_non_null(strstr(out, bh));
	v = verify(out, olen, zone, NOW);
	assert_int_equal(dkim_verify_count(v), 1);
	assert_int_equal(dkim_verify_result(v, 0)->status, DKIM_STATUS_PASS);
	assert_string_equal(dkim_verify_result(v, 0)->identity, "@football.example.com");
	dkim_verify_free(&v);
	free(bh);
	free(out);
	dkim_key_free(&k);
	EVP_PKEY_free(pk);
	dns_zone_free(&zone);
	json_decref(vec);
	free(msg);
	free(path);
}

static void round_trip(EVP_PKEY *pk, bool sh, bool sb, const char *msg, size_t len)
{
	struct dkim_key *k = load_pkey(pk);
	struct dkim_sign_params p = {
		.domain = "example.com", .selector = "sel", .type = dkim_key_type(k),
		.simple_header = sh, .simple_body = sb, .timestamp = NOW - 60,
	};
	struct dns_zone *z = zone_for(pk, NULL);
	size_t slen, slen2;
	char *signed_msg = sign_msg(k, &p, msg, len, 0, &slen);
	char *signed2 = sign_msg(k, &p, msg, len, 7, &slen2);
	struct dkim_verify *v;
	const struct dkim_result *r;

	/* Fed whole or in pieces, the signer makes the same field (Ed25519 and
	 * RSA PKCS#1 v1.5 are both deterministic). */
	assert_int_equal(slen, slen2);
	assert_memory_equal(signed_msg, signed2, slen);
	v = verify(signed_msg, slen, z, NOW);
	assert_int_equal(dkim_verify_count(v), 1);
	r = dkim_verify_result(v, 0);
	if (r->status != DKIM_STATUS_PASS)
		fail_msg("%s %s/%s: %s", r->algorithm, sh ? "simple" : "relaxed",
		    sb ? "simple" : "relaxed", r->reason);
	assert_string_equal(r->domain, "example.com");
	assert_string_equal(r->selector, "sel");
	assert_string_equal(r->identity, "@example.com");
	assert_string_equal(r->algorithm, dkim_key_type(k) == DKIM_KEY_ED25519 ?
	    "ed25519-sha256" : "rsa-sha256");
	assert_int_equal(strlen(r->b), 12);
	dkim_verify_free(&v);
	free(signed_msg);
	free(signed2);
	dns_zone_free(&z);
	dkim_key_free(&k);
}

static const char *const shapes[] = {
	MSG,
	/* empty body */
	"From: a@example.com\r\nSubject: empty\r\n\r\n",
	/* no body at all, no empty line */
	"From: a@example.com\r\nSubject: none\r\n",
	/* trailing blank lines and whitespace-only lines */
	"From: a@example.com\r\n\r\nline  \r\n \t \r\n\r\n\r\n\r\n",
	/* folded headers, odd spacing, repeated fields */
	"From: a@example.com\r\nSubject:  folded\r\n\tover  two\r\n  lines \r\nTo: x@y\r\nTo: z@w\r\n"
	"Received: one\r\nReceived: two\r\n\r\nbody\r\n",
	/* 8-bit UTF-8 */
	"From: =?utf-8?q?J=C3=B6?= <j@example.com>\r\nSubject: caf\xc3\xa9\r\n\r\nna\xc3\xafve \xe2\x82\xac\r\n",
	/* a last line without CRLF */
	"From: a@example.com\r\n\r\nno newline at the end",
	/* LF line ends */
	"From: a@example.com\nSubject: lf\n\nline one\n\nline  two \n\n",
	/* List-* and MIME fields */
	"From: a@example.com\r\nList-Id: <l.example.com>\r\nList-Unsubscribe: <mailto:u@example.com>\r\n"
	"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nx\r\n",
};

static void test_sign_verify_round_trips(void **state)
{
	EVP_PKEY *keys[] = { ed_key, rsa_key };

	for (size_t k = 0; k < 2; k++)
		for (int c = 0; c < 4; c++)
			for (size_t m = 0; m < sizeof(shapes) / sizeof(shapes[0]); m++)
				round_trip(keys[k], c & 1, c & 2, shapes[m], strlen(shapes[m]));
}

static void test_sign_long_message(void **state)
{
	/* 300 KiB of body: many canonicaliser flushes, random line lengths. */
	size_t n = 0, cap = 300 * 1024;
	char *msg = malloc(cap + 200);
	unsigned seed = 5;

	assert_non_null(msg);
	n = (size_t)sprintf(msg, "From: a@example.com\r\nSubject: long\r\n\r\n");
	while (n < cap) {
		seed = seed * 1103515245u + 12345u;
		switch ((seed >> 16) % 7) {
		case 0:
			msg[n++] = '\r';
			msg[n++] = '\n';
			break;
		case 1:
			msg[n++] = ' ';
			break;
		case 2:
			msg[n++] = '\t';
			break;
		default:
			msg[n++] = (char)('a' + (seed >> 20) % 26);
			break;
		}
	}
	msg[n] = '\0';
	round_trip(ed_key, false, false, msg, n);
	round_trip(ed_key, true, true, msg, n);
	free(msg);
}

/* Our signer's h=: over-signing, as-they-occur fields, List-*. */
static void test_sign_header_list(void **state)
{
	struct dkim_key *k = load_pkey(ed_key);
	struct dkim_sign_params p = {
		.domain = "example.com", .selector = "sel", .type = DKIM_KEY_ED25519,
		.identity = "joe@sub.example.com", .timestamp = 1000, .expire = 2000,
	};
	const char *msg = shapes[8];
	size_t len;
	char *out = sign_msg(k, &p, msg, strlen(msg), 0, &len);
	char *unfolded = malloc(len + 1);
	size_t n = 0;

	/* Unfolded: CRLF TAB read as one SP (or nothing inside h=). */
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '\r' || out[i] == '\n')
			continue;
		if (out[i] == '\t' && n > 0 && unfolded[n - 1] != ':')
			unfolded[n++] = ' ';
		else if (out[i] != '\t')
			unfolded[n++] = out[i];
	}
	unfolded[n] = '\0';
	if (strstr(unfolded, "h=from:from:to:subject:date:message-id:mime-version:"
	    "content-type:List-Id:List-Unsubscribe;") == NULL)
		fail_msg("%s", unfolded);
	assert_non_null(strstr(unfolded, " t=1000; x=2000; i=joe@sub.example.com;"));
	assert_non_null(strstr(unfolded, "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; "
	    "d=example.com; s=sel;"));
	free(unfolded);
	free(out);

	/* A caller's list: From is added; listed names as they occur. */
	{
		const char *const hl[] = { "Subject", "X-*", NULL };
		const char *m2 = "From: a@example.com\r\nX-A: 1\r\nX-B: 2\r\nX-A: 3\r\n\r\n";

		p.headers = hl;
		p.identity = NULL;
		p.timestamp = p.expire = 0;
		out = sign_msg(k, &p, m2, strlen(m2), 0, &len);
		/* Subject is over-signed although absent; X-A occurs twice. */
		assert_non_null(strstr(out, "h=from:from:Subject:X-A:X-A:X-B;"));
		free(out);
	}
	/* An '=' in the identity is written dkim-quoted-printable, and reads back. */
	{
		struct dns_zone *z = zone_for(ed_key, NULL);
		struct dkim_verify *v;

		p.headers = NULL;
		p.identity = "a=b@example.com";
		out = sign_msg(k, &p, MSG, strlen(MSG), 0, &len);
		assert_non_null(strstr(out, "i=a=3Db@example.com;"));
		v = verify(out, len, z, NOW);
		assert_int_equal(dkim_verify_result(v, 0)->status, DKIM_STATUS_PASS);
		assert_string_equal(dkim_verify_result(v, 0)->identity, "a=b@example.com");
		dkim_verify_free(&v);
		free(out);
		dns_zone_free(&z);
	}
	/* Bad parameters. */
	{
		const char *error = NULL;
		struct dkim_sign_params bad = p;

		bad.headers = NULL;
		bad.domain = "bad domain";
		assert_null(dkim_sign_new(&bad, &error));
		assert_non_null(error);
		bad = p;
		bad.headers = NULL;
		bad.identity = "joe@example.org";
		assert_null(dkim_sign_new(&bad, &error));
		bad.identity = "joe@notexample.com";
		assert_null(dkim_sign_new(&bad, &error));
		bad.identity = NULL;
		bad.timestamp = 10;
		bad.expire = 5;
		assert_null(dkim_sign_new(&bad, &error));
	}
	dkim_key_free(&k);
}

/* ---------------------------------------------------------------- one-octet changes */

static void test_changes_fail(void **state)
{
	struct dkim_key *k = load_pkey(ed_key);
	struct dns_zone *z = zone_for(ed_key, NULL);
	static const char *const signed_names[] = {
		"From: ", "To: ", "Subject: ", "Date: ", "Message-ID: ",
	};

	for (int c = 0; c < 4; c++) {
		struct dkim_sign_params p = {
			.domain = "example.com", .selector = "sel", .type = DKIM_KEY_ED25519,
			.simple_header = c & 1, .simple_body = c & 2,
		};
		size_t len, body;
		char *m = sign_msg(k, &p, MSG, strlen(MSG), 0, &len);

		expect_one(m, len, z, NOW, DKIM_STATUS_PASS, NULL);
		body = (size_t)(strstr(m, "\r\n\r\n") + 4 - m);
		/* Every octet of the body that canonicalisation keeps. */
		for (size_t i = body; i < len; i++) {
			char saved = m[i];
			struct dkim_verify *v;

			if (m[i] == '\r' || m[i] == '\n' || m[i] == ' ')
				continue;
			m[i] = saved == 'x' ? 'y' : 'x';
			v = verify_by(m, len, z, NOW, PLAN_WHOLE, 0);
			assert_int_equal(dkim_verify_result(v, 0)->status, DKIM_STATUS_FAIL);
			assert_non_null(strstr(dkim_verify_result(v, 0)->reason, "body hash"));
			dkim_verify_free(&v);
			m[i] = saved;
		}
		/* An added line at the end of the body. */
		{
			char *m2;

			assert_true(asprintf(&m2, "%sP.S.\r\n", m) > 0);
			expect_one(m2, len + 6, z, NOW, DKIM_STATUS_FAIL, "body hash");
			free(m2);
		}
		/* One octet of each signed field. */
		for (size_t f = 0; f < 5; f++) {
			char *p1 = strstr(m + 1, signed_names[f]) + strlen(signed_names[f]);

			p1[1] ^= 0x01;
			expect_one(m, len, z, NOW, DKIM_STATUS_FAIL, "does not verify");
			p1[1] ^= 0x01;
		}
		/* An unsigned field may change. */
		{
			char *p1 = strstr(m, "anything");

			p1[0] = 'A';
			expect_one(m, len, z, NOW, DKIM_STATUS_PASS, NULL);
			p1[0] = 'a';
		}
		/* Over-signing: a second From (or Subject) added anywhere fails. */
		{
			char *m2;

			assert_true(asprintf(&m2, "%.*sFrom: evil@example.org\r\n%s", (int)body - 2,
			    m, m + body - 2) > 0);
			expect_one(m2, len + 24, z, NOW, DKIM_STATUS_FAIL, "does not verify");
			free(m2);
			assert_true(asprintf(&m2, "Subject: new\r\n%s", m) > 0);
			expect_one(m2, len + 14, z, NOW, DKIM_STATUS_FAIL, "does not verify");
			free(m2);
		}
		/* Relaxed only: whitespace and header case changes do not matter. */
		if (c == 0) {
			char *m2 = strdup(m);
			char *p1 = strstr(m2, "Subject: ");

			p1[0] = 's';
			p1[1] = 'U';
			expect_one(m2, len, z, NOW, DKIM_STATUS_PASS, NULL);
			free(m2);
			assert_true(asprintf(&m2, "%s \t \r\n\r\n", m) > 0);
			expect_one(m2, len + 7, z, NOW, DKIM_STATUS_PASS, NULL);
			free(m2);
		}
		free(m);
	}
	dns_zone_free(&z);
	dkim_key_free(&k);
}

/* ---------------------------------------------------------------- signature rules */

static void test_body_length(void **state)
{
	struct dns_zone *z = zone_for(rsa_key, NULL);
	const char *tags = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel";
	size_t canon_len = strlen("Hi.\r\n\r\nWe lost the game. Are you hungry yet?\r\n\r\nJoe.\r\n");
	char t[200], *m;
	size_t len;

	/* l= exactly the body: pass. */
	snprintf(t, sizeof(t), "%s; l=%zu", tags, canon_len);
	m = sign_custom(MSG, t, H5, true, true, canon_len, rsa_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PASS, NULL);
	free(m);
	/* l= shorter than the body: the signature is valid but leaves a part
	 * unsigned: policy. */
	snprintf(t, sizeof(t), "%s; l=%d", tags, 5);
	m = sign_custom(MSG, t, H5, true, true, 5, rsa_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_POLICY, "l=");
	/* ... and a wrong hash over those 5 octets still fails. */
	m[len - 6] = 'X';
	expect_one(m, len, z, NOW, DKIM_STATUS_POLICY, "l=");
	{
		char *b = strstr(m, "\r\n\r\nHi.") + 4;

		b[0] = 'h';
		expect_one(m, len, z, NOW, DKIM_STATUS_FAIL, "body hash");
	}
	free(m);
	/* l= longer than the body: permerror. */
	snprintf(t, sizeof(t), "%s; l=%zu", tags, canon_len + 1);
	m = sign_custom(MSG, t, H5, true, true, canon_len + 1, rsa_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PERMERROR, "l=");
	free(m);
	/* l=0 on an empty relaxed body: the whole (empty) body. */
	{
		const char *e = "From: a@example.com\r\n\r\n";

		snprintf(t, sizeof(t), "%s; l=0", tags);
		m = sign_custom(e, t, "from", true, true, 0, rsa_key, &len);
		expect_one(m, len, z, NOW, DKIM_STATUS_PASS, NULL);
		free(m);
	}
	/* A huge l= (76 digits) saturates: longer than the body. */
	snprintf(t, sizeof(t), "%s; l=%s", tags,
	    "9999999999999999999999999999999999999999999999999999999999999999999999999999");
	m = sign_custom(MSG, t, H5, true, true, UINT64_MAX, rsa_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PERMERROR, "l=");
	free(m);
	dns_zone_free(&z);
}

static void test_times(void **state)
{
	struct dns_zone *z = zone_for(ed_key, NULL);
	const char *base = "v=1; a=ed25519-sha256; d=example.com; s=sel";
	char t[200], *m;
	size_t len;

	snprintf(t, sizeof(t), "%s; t=%d; x=%d", base, NOW - 100, NOW + 100);
	m = sign_custom(MSG, t, H5, false, false, UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PASS, NULL);
	expect_one(m, len, z, NOW + 100, DKIM_STATUS_PASS, NULL);
	expect_one(m, len, z, NOW + 101, DKIM_STATUS_PERMERROR, "expired");
	free(m);
	/* x= before t=: permerror whatever the time. */
	snprintf(t, sizeof(t), "%s; t=%d; x=%d", base, NOW, NOW - 1);
	m = sign_custom(MSG, t, H5, false, false, UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW - 10, DKIM_STATUS_PERMERROR, "x=");
	free(m);
	/* x= equal to t= is accepted (as dkimpy does). */
	snprintf(t, sizeof(t), "%s; t=%d; x=%d", base, NOW, NOW);
	m = sign_custom(MSG, t, H5, false, false, UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PASS, NULL);
	free(m);
	dns_zone_free(&z);
}

static void test_rsa_sha1_policy(void **state)
{
	struct dns_zone *z = zone_for(rsa_key, NULL);
	char *m;
	size_t len;

	m = sign_custom(MSG, "v=1; a=rsa-sha1; d=example.com; s=sel", H5, false, false,
	    UINT64_MAX, rsa_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_POLICY, "rsa-sha1");
	free(m);
	dns_zone_free(&z);
}

static void test_signature_syntax_permerror(void **state)
{
	struct dns_zone *z = zone_for(ed_key, NULL);
	static const struct {
		const char *tags, *h, *reason;
	} cases[] = {
		{ "a=ed25519-sha256; d=example.com; s=sel", H5, "v=" },
		{ "v=2; a=ed25519-sha256; d=example.com; s=sel", H5, "v=" },
		{ "v=1; a=ed448-sha512; d=example.com; s=sel", H5, "a=" },
		{ "v=1; a=ed25519-sha256; d=example.com; s=sel", "to:subject", "From" },
		{ "v=1; a=ed25519-sha256; d=example.com; s=sel; i=joe@example.org", H5, "i=" },
		{ "v=1; a=ed25519-sha256; d=example.com; s=sel; i=joe@badexample.com", H5, "i=" },
		{ "v=1; a=ed25519-sha256; d=example.com; s=sel; q=dns/xyz", H5, "q=" },
		{ "v=1; a=ed25519-sha256; d=example.com; s=sel; c=fancy", H5, "c=" },
		{ "v=1; a=ed25519-sha256; d=example.com; s=sel; l=12a", H5, "l=" },
		{ "v=1; a=ed25519-sha256; d=example.com; s=sel; v=1", H5, "twice" },
		{ "v=1; a=ed25519-sha256; d=example.com", H5, "s=" },
		{ "v=1; a=ed25519-sha256; d=exa mple.com; s=sel", H5, "d=" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *m = sign_custom(MSG, cases[i].tags, cases[i].h, false, false, UINT64_MAX,
		    ed_key, &len);

		expect_one(m, len, z, NOW, DKIM_STATUS_PERMERROR, cases[i].reason);
		free(m);
	}
	/* What parsed is still shown. */
	{
		size_t len;
		char *m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=sel",
		    "subject", false, false, UINT64_MAX, ed_key, &len);
		struct dkim_verify *v = verify(m, len, z, NOW);

		assert_string_equal(dkim_verify_result(v, 0)->domain, "example.com");
		assert_string_equal(dkim_verify_result(v, 0)->selector, "sel");
		dkim_verify_free(&v);
		free(m);
	}
	/* i= within d=, and q=dns/txt, accepted. */
	{
		size_t len;
		char *m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=sel; "
		    "i=joe@Mail.EXAMPLE.com; q=dns/txt; z=From:x", H5, false, false, UINT64_MAX,
		    ed_key, &len);
		struct dkim_verify *v = verify(m, len, z, NOW);

		assert_int_equal(dkim_verify_result(v, 0)->status, DKIM_STATUS_PASS);
		assert_string_equal(dkim_verify_result(v, 0)->identity, "joe@Mail.EXAMPLE.com");
		dkim_verify_free(&v);
		free(m);
	}
	dns_zone_free(&z);
}

/* ---------------------------------------------------------------- key rules */

static void key_case(EVP_PKEY *sign_with, const char *alg, const char *record, const char *tags_extra,
    enum dkim_status want, const char *reason, bool testing)
{
	struct dkim_buf zb = { 0 };
	struct dns_zone *z;
	char t[300], *m;
	size_t len;
	struct dkim_verify *v;

	zone_txt(&zb, "sel._domainkey.example.com", record);
	z = zone_make(&zb);
	snprintf(t, sizeof(t), "v=1; a=%s; d=example.com; s=sel%s", alg,
	    tags_extra != NULL ? tags_extra : "");
	m = sign_custom(MSG, t, H5, true, true, UINT64_MAX, sign_with, &len);
	expect_one(m, len, z, NOW, want, reason);
	v = verify_by(m, len, z, NOW, PLAN_WHOLE, 0);
	assert_int_equal(dkim_verify_result(v, 0)->testing, testing);
	dkim_verify_free(&v);
	free(m);
	dns_zone_free(&z);
}

static void test_key_rules(void **state)
{
	char *ed = key_txt(ed_key, false, NULL), *rsa = key_txt(rsa_key, false, NULL);
	char *rsa1 = key_txt(rsa_key, true, NULL);
	char rec[2000];
	const char *edp = strstr(ed, "p="), *rsap = strstr(rsa, "p=");

	key_case(ed_key, "ed25519-sha256", ed, NULL, DKIM_STATUS_PASS, NULL, false);
	key_case(rsa_key, "rsa-sha256", rsa, NULL, DKIM_STATUS_PASS, NULL, false);
	/* PKCS#1 RSAPublicKey, as some publish. */
	key_case(rsa_key, "rsa-sha256", rsa1, NULL, DKIM_STATUS_PASS, NULL, false);
	/* No v=, no k= (rsa by default). */
	key_case(rsa_key, "rsa-sha256", rsap, NULL, DKIM_STATUS_PASS, NULL, false);
	/* Revoked. */
	key_case(ed_key, "ed25519-sha256", "v=DKIM1; k=ed25519; p=", NULL, DKIM_STATUS_FAIL,
	    "revoked", false);
	/* k= does not match a=. */
	snprintf(rec, sizeof(rec), "v=DKIM1; k=rsa; %s", edp);
	key_case(ed_key, "ed25519-sha256", rec, NULL, DKIM_STATUS_PERMERROR, "k=", false);
	snprintf(rec, sizeof(rec), "v=DKIM1; k=ed25519; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PERMERROR, "k=", false);
	/* Unknown k=. */
	snprintf(rec, sizeof(rec), "v=DKIM1; k=dsa; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PERMERROR, "k=", false);
	/* h= of the key excludes sha256. */
	snprintf(rec, sizeof(rec), "v=DKIM1; h=sha1; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PERMERROR, "h=", false);
	snprintf(rec, sizeof(rec), "v=DKIM1; h=sha1 : sha256; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PASS, NULL, false);
	/* s= service types. */
	snprintf(rec, sizeof(rec), "v=DKIM1; s=tlsrpt; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PERMERROR, "s=", false);
	snprintf(rec, sizeof(rec), "v=DKIM1; s=tlsrpt:email; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PASS, NULL, false);
	snprintf(rec, sizeof(rec), "v=DKIM1; s=*; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PASS, NULL, false);
	/* t=y: testing, reported. */
	snprintf(rec, sizeof(rec), "v=DKIM1; t=y; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PASS, NULL, true);
	/* t=s: the i= domain must be d= itself. */
	snprintf(rec, sizeof(rec), "v=DKIM1; t=s:y; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, "; i=@sub.example.com", DKIM_STATUS_PERMERROR,
	    "t=s", true);
	key_case(rsa_key, "rsa-sha256", rec, "; i=joe@example.com", DKIM_STATUS_PASS, NULL, true);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PASS, NULL, true);
	/* v= not first, or not DKIM1. */
	snprintf(rec, sizeof(rec), "k=rsa; v=DKIM1; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PERMERROR, "v=", false);
	snprintf(rec, sizeof(rec), "v=DKIM2; %s", rsap);
	key_case(rsa_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PERMERROR, "v=", false);
	/* Garbage, and a key of the wrong size. */
	key_case(rsa_key, "rsa-sha256", "v=DKIM1; p=!!!", NULL, DKIM_STATUS_PERMERROR, "p=", false);
	key_case(rsa_key, "rsa-sha256", "v=DKIM1; k=rsa", NULL, DKIM_STATUS_PERMERROR, "p=", false);
	key_case(ed_key, "ed25519-sha256", "v=DKIM1; k=ed25519; p=AAAA", NULL,
	    DKIM_STATUS_PERMERROR, "32", false);
	key_case(rsa_key, "rsa-sha256", "v=DKIM1; k=rsa; p=AAAA", NULL, DKIM_STATUS_PERMERROR,
	    "RSA", false);
	/* The wrong key: fail. */
	key_case(rsa1024_key, "rsa-sha256", rsa, NULL, DKIM_STATUS_FAIL, "does not verify", false);
	free(ed);
	free(rsa);
	free(rsa1);
}

static void test_small_rsa_keys(void **state)
{
	static const size_t bits[] = { 512, 768 };

	for (size_t i = 0; i < 2; i++) {
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits[i]);
		char *rec = key_txt(pk, false, NULL);

		assert_non_null(pk);
		key_case(pk, "rsa-sha256", rec, NULL, DKIM_STATUS_PERMERROR, "1024", false);
		free(rec);
		EVP_PKEY_free(pk);
	}
	/* 1024 bits is the minimum, and enough. */
	{
		char *rec = key_txt(rsa1024_key, false, NULL);

		key_case(rsa1024_key, "rsa-sha256", rec, NULL, DKIM_STATUS_PASS, NULL, false);
		free(rec);
	}
}

static void test_dns_outcomes(void **state)
{
	char *ed = key_txt(ed_key, false, NULL), *rsa = key_txt(rsa_key, false, NULL);
	struct dkim_buf zb = { 0 };
	struct dns_zone *z;
	char *m;
	size_t len;

	zone_txt(&zb, "sel._domainkey.example.com", "not a key record at all");
	zone_txt(&zb, "sel._domainkey.example.com", ed);
	zone_txt(&zb, "two._domainkey.example.com", rsa);
	zone_txt(&zb, "two._domainkey.example.com", "v=DKIM1; k=ed25519; p=");
	zone_txt(&zb, "bad._domainkey.example.com", "v=spf1 -all");
	zone_txt(&zb, "bad._domainkey.example.com", "; ;");
	zone_txt(&zb, "empty._domainkey.example.com", "");
	dkim_buf_add(&zb, "slow._domainkey.example.com. TIMEOUT\n", 37);
	dkim_buf_add(&zb, "nodata._domainkey.example.com. 300 IN A 192.0.2.1\n", 50);
	z = zone_make(&zb);

	/* Several records: one that parses and verifies is enough. */
	m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=sel", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PASS, NULL);
	free(m);
	/* Two records, neither verifies: the first that parsed decides. */
	m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=two", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PERMERROR, "k=");
	free(m);
	/* None parses. */
	m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=bad", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PERMERROR, "does not parse");
	free(m);
	m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=empty", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PERMERROR, "p=");
	free(m);
	/* NXDOMAIN, NODATA: no key. TIMEOUT: temperror. */
	m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=none", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PERMERROR, "No key");
	free(m);
	m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=nodata", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_PERMERROR, "No key");
	free(m);
	m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=slow", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	expect_one(m, len, z, NOW, DKIM_STATUS_TEMPERROR, "temporarily");
	free(m);
	dns_zone_free(&z);
	free(ed);
	free(rsa);
}

/* The step asks for keys it does not have, and waits. */
static void test_step_waits_for_dns(void **state)
{
	struct dns_zone *z = zone_for(ed_key, NULL);
	size_t len;
	char *m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=sel", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	struct dkim_verify *v = dkim_verify_new(NOW);
	struct dns_view *empty = dns_view_new(NULL), *full = dns_view_new(z);

	dkim_verify_feed(v, m, len);
	dkim_verify_finish(v);
	assert_int_equal(dkim_verify_step(empty, v), 0);
	assert_int_equal(dkim_verify_result(v, 0)->status, DKIM_STATUS_TEMPERROR);
	assert_true(dns_view_lookups(empty) >= 1);
	assert_int_equal(dkim_verify_step(full, v), 1);
	assert_int_equal(dkim_verify_result(v, 0)->status, DKIM_STATUS_PASS);
	dns_view_free(&empty);
	dns_view_free(&full);
	dkim_verify_free(&v);
	free(m);
	dns_zone_free(&z);
}

static void test_unsigned_and_limits(void **state)
{
	struct dns_zone *z = zone_for(ed_key, NULL);
	struct dkim_verify *v = verify(MSG, strlen(MSG), z, NOW);
	struct dkim_buf b = { 0 };
	char *m;
	size_t len;

	assert_int_equal(dkim_verify_count(v), 0);
	assert_int_equal(dkim_verify_ignored(v), 0);
	dkim_verify_free(&v);

	/* Ten signatures: eight examined, in order, two ignored. */
	m = sign_custom(MSG, "v=1; a=ed25519-sha256; d=example.com; s=sel", H5, true, true,
	    UINT64_MAX, ed_key, &len);
	for (int i = 0; i < 9; i++) {
		static const char bad[] =
		    "DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=x; h=from; bh=; b=\r\n";

		dkim_buf_add(&b, bad, sizeof(bad) - 1);
	}
	dkim_buf_add(&b, m, len);
	v = verify(b.p, b.len, z, NOW);
	assert_int_equal(dkim_verify_count(v), 8);
	assert_int_equal(dkim_verify_ignored(v), 2);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(dkim_verify_result(v, i)->status, DKIM_STATUS_PERMERROR);
	dkim_verify_free(&v);
	dkim_buf_free(&b);

	/* A header section past 256 KiB: permerror, and only whole lines kept. */
	dkim_buf_add(&b, m, (size_t)(strstr(m, "\r\n\r\n") + 2 - m));
	while (b.len < DKIM_MAX_HEADER_OCTETS + 1000)
		dkim_buf_add(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n", 52);
	dkim_buf_add(&b, "\r\nbody\r\n", 8);
	v = verify_by(b.p, b.len, z, NOW, PLAN_WHOLE, 0);
	assert_int_equal(dkim_verify_count(v), 1);
	assert_int_equal(dkim_verify_result(v, 0)->status, DKIM_STATUS_PERMERROR);
	{
		size_t hl;
		const char *h = dkim_verify_headers(v, &hl);

		assert_true(hl <= DKIM_MAX_HEADER_OCTETS);
		assert_memory_equal(h + hl - 2, "\r\n", 2);
	}
	dkim_verify_free(&v);
	dkim_buf_free(&b);
	free(m);
	dns_zone_free(&z);
}

/* ---------------------------------------------------------------- keys */

static void test_key_generate(void **state)
{
	char dir[] = "/tmp/test-dkim-XXXXXX", *path, *txt = NULL, *txt2;
	const char *error = NULL;
	struct dkim_key *k;
	struct dkim_keyrec rec;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	for (int t = 0; t < 2; t++) {
		enum dkim_key_type type = t == 0 ? DKIM_KEY_ED25519 : DKIM_KEY_RSA;

		assert_true(asprintf(&path, "%s/k%d.key", dir, t) > 0);
		assert_int_equal(dkim_key_generate(type, 0, path, &txt, &error), 0);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(dkim_keyrec_parse(&rec, txt, strlen(txt), &error), 0);
		assert_int_equal(rec.type, type);
		/* Never overwritten. */
		txt2 = (char *)"unchanged";
		assert_int_equal(dkim_key_generate(type, 0, path, &txt2, &error), -1);
		assert_null(txt2);
		assert_non_null(strstr(error, "exists"));
		/* It loads, and publishes the same record. */
		k = dkim_key_load(path, &error);
		assert_non_null(k);
		assert_int_equal(dkim_key_type(k), type);
		txt2 = dkim_key_txt(k);
		assert_string_equal(txt, txt2);
		if (type == DKIM_KEY_RSA) {
			EVP_PKEY *pk = dkim_crypto_rsa_pubkey(rec.p, rec.p_len, &error);

			assert_non_null(pk);
			assert_int_equal(EVP_PKEY_get_bits(pk), 2048);
			EVP_PKEY_free(pk);
		}
		{
			FILE *f = fopen(path, "r");
			char line[64];

			assert_non_null(fgets(line, sizeof(line), f));
			assert_string_equal(line, "-----BEGIN PRIVATE KEY-----\n");   /* PKCS#8 */
			fclose(f);
		}
		free(txt2);
		free(txt);
		dkim_key_free(&k);
		assert_null(k);
		unlink(path);
		free(path);
	}
	/* RSA sizes. */
	assert_true(asprintf(&path, "%s/small.key", dir) > 0);
	assert_int_equal(dkim_key_generate(DKIM_KEY_RSA, 768, path, &txt, &error), -1);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(dkim_key_generate(DKIM_KEY_RSA, 1024, path, &txt, &error), 0);
	free(txt);
	unlink(path);
	free(path);
	/* Not a directory we can write. */
	assert_int_equal(dkim_key_generate(DKIM_KEY_ED25519, 0, "/nonexistent/dir/k.key", &txt,
	    &error), -1);
	rmdir(dir);
}

static void test_key_parse(void **state)
{
	const char *error = NULL;
	char *vec = conformance("dkim/rfc8463/vectors.json");
	static const char garbage[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

	assert_null(dkim_key_parse(garbage, sizeof(garbage) - 1, &error));
	assert_non_null(error);
	assert_null(dkim_key_parse("", 0, &error));
	assert_null(dkim_key_load("/nonexistent", &error));
	/* A 512-bit RSA key is refused for signing. */
	{
		EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
		BIO *bio = BIO_new(BIO_s_mem());
		char *pem;
		long n;

		PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL);
		n = BIO_get_mem_data(bio, &pem);
		assert_null(dkim_key_parse(pem, (size_t)n, &error));
		assert_non_null(strstr(error, "1024"));
		BIO_free(bio);
		EVP_PKEY_free(pk);
	}
	/* RFC 8463 A.1's RSA key, PKCS#1 PEM: its TXT is the published one. */
	if (vec != NULL) {
		size_t len;
		char *json = read_all(vec, &len), *pem = malloc(len), *o = pem, *txt;
		const char *p = strstr(json, "-----BEGIN RSA");
		struct dkim_key *k;

		assert_non_null(p);
		for (; strncmp(p, "-----\\n\"", 8) != 0; p++) {
			if (p[0] == '\\' && p[1] == 'n')
				*o++ = '\n', p++;
			else
				*o++ = *p;
		}
		o += sprintf(o, "-----\n");
		k = dkim_key_parse(pem, (size_t)(o - pem), &error);
		if (k == NULL)
			fail_msg("%s", error);
		assert_int_equal(dkim_key_type(k), DKIM_KEY_RSA);
		txt = dkim_key_txt(k);
		assert_string_equal(txt, "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB");
		free(txt);
		dkim_key_free(&k);
		free(pem);
		free(json);
		free(vec);
	}
	/* The same key signs twice with the same result (the kept context is
	 * reusable). */
	{
		struct dkim_key *k = load_pkey(ed_key);
		unsigned char d[32] = { 1, 2, 3 }, s1[512], s2[512];
		size_t l1, l2;

		assert_int_equal(dkim_key_sign_digest(k, d, s1, &l1, &error), 0);
		assert_int_equal(dkim_key_sign_digest(k, d, s2, &l2, &error), 0);
		assert_int_equal(l1, 64);
		assert_int_equal(l2, 64);
		assert_memory_equal(s1, s2, 64);
		dkim_key_free(&k);
		k = load_pkey(rsa_key);
		assert_int_equal(dkim_key_sign_digest(k, d, s1, &l1, &error), 0);
		assert_int_equal(dkim_key_sign_digest(k, d, s2, &l2, &error), 0);
		assert_int_equal(l1, 256);
		assert_memory_equal(s1, s2, 256);
		dkim_key_free(&k);
	}
}

/* ---------------------------------------------------------------- key cache */

/* Verifies msg with cache; returns the first result's status. */
static enum dkim_status cached_status(const char *msg, size_t len, const struct dns_zone *z,
    struct dkim_key_cache *c)
{
	struct dkim_verify *v = verify_with(msg, len, z, NOW, PLAN_WHOLE, 0, c);
	enum dkim_status st;

	assert_int_equal(dkim_verify_count(v), 1);
	st = dkim_verify_result(v, 0)->status;
	dkim_verify_free(&v);
	return st;
}

static void expect_stats(const struct dkim_key_cache *c, size_t n, uint64_t hits,
    uint64_t misses)
{
	uint64_t h, m;

	dkim_key_cache_stats(c, &h, &m);
	assert_int_equal(dkim_key_cache_count(c), n);
	assert_int_equal(h, hits);
	assert_int_equal(m, misses);
}

static void test_key_cache(void **state)
{
	struct dkim_key_cache *c = dkim_key_cache_new(2);
	struct dkim_key *ed = load_pkey(ed_key), *rsa = load_pkey(rsa_key);
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct dkim_sign_params p = {
		.domain = "example.com", .selector = "sel", .type = DKIM_KEY_ED25519,
		.timestamp = NOW - 60,
	};
	struct dns_zone *zed = zone_for(ed_key, NULL), *zrsa = zone_for(rsa_key, NULL);
	struct dns_zone *zother = zone_for(other, NULL), *zbad = zone_for(ed_key, NULL);
	struct dkim_buf zb = { 0 };
	size_t elen, rlen;
	char *em, *rm;

	assert_non_null(c);
	assert_non_null(other);
	em = sign_msg(ed, &p, MSG, strlen(MSG), 0, &elen);
	p.type = DKIM_KEY_RSA;
	rm = sign_msg(rsa, &p, MSG, strlen(MSG), 0, &rlen);
	expect_stats(c, 0, 0, 0);

	/* A miss, then hits: the same key is used again and still verifies. */
	assert_int_equal(cached_status(em, elen, zed, c), DKIM_STATUS_PASS);
	expect_stats(c, 1, 0, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cached_status(em, elen, zed, c), DKIM_STATUS_PASS);
	expect_stats(c, 1, 3, 1);
	assert_int_equal(cached_status(rm, rlen, zrsa, c), DKIM_STATUS_PASS);
	assert_int_equal(cached_status(rm, rlen, zrsa, c), DKIM_STATUS_PASS);
	expect_stats(c, 2, 4, 2);

	/* A changed record (another key at the same name) is a miss, and the
	 * signature fails against it; the bound (2) evicts the least recently used
	 * entry (Ed25519's, as RSA's was used last). */
	assert_int_equal(cached_status(em, elen, zother, c), DKIM_STATUS_FAIL);
	expect_stats(c, 2, 4, 3);
	assert_int_equal(cached_status(rm, rlen, zrsa, c), DKIM_STATUS_PASS);
	expect_stats(c, 2, 5, 3);
	assert_int_equal(cached_status(em, elen, zed, c), DKIM_STATUS_PASS);
	expect_stats(c, 2, 5, 4);       /* evicted before: a miss again */
	/* The other key was evicted now (least recently used), RSA stays. */
	assert_int_equal(cached_status(rm, rlen, zrsa, c), DKIM_STATUS_PASS);
	expect_stats(c, 2, 6, 4);
	for (int i = 0; i < 20; i++)
		assert_true(dkim_key_cache_count(c) <= 2);

	/* A key that does not parse is not kept; a bad signature with a cached key
	 * fails, and the key still verifies good ones after that. */
	zone_txt(&zb, "sel._domainkey.example.com", "v=DKIM1; k=ed25519; p=AAAA");
	dns_zone_free(&zbad);
	zbad = zone_make(&zb);
	assert_int_equal(cached_status(em, elen, zbad, c), DKIM_STATUS_PERMERROR);
	expect_stats(c, 2, 6, 5);
	{
		char *bad = malloc(elen + 1), *b = NULL;

		assert_non_null(bad);
		memcpy(bad, em, elen);
		bad[elen] = '\0';
		/* The b= tag (not bh=): after a space, a tab or a ';'. */
		for (char *q = strstr(bad, "b="); q != NULL && b == NULL; q = strstr(q + 1, "b="))
			if (q > bad && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == ';'))
				b = q + 2;
		assert_non_null(b);
		if (b != NULL)
			b[0] = b[0] == 'A' ? 'B' : 'A';
		assert_int_equal(cached_status(bad, elen, zed, c), DKIM_STATUS_FAIL);
		assert_int_equal(cached_status(em, elen, zed, c), DKIM_STATUS_PASS);
		assert_int_equal(cached_status(bad, elen, zed, c), DKIM_STATUS_FAIL);
		assert_int_equal(cached_status(em, elen, zed, c), DKIM_STATUS_PASS);
		expect_stats(c, 2, 10, 5);
		free(bad);
	}
	dkim_key_cache_free(&c);
	assert_null(c);
	dkim_key_cache_free(&c);       /* NULL: nothing */

	/* 0 is the default size; larger than the maximum is capped; a cache
	 * freed with entries frees them (ASan checks). */
	c = dkim_key_cache_new(0);
	assert_non_null(c);
	assert_int_equal(cached_status(em, elen, zed, c), DKIM_STATUS_PASS);
	dkim_key_cache_free(&c);
	c = dkim_key_cache_new((size_t)1 << 40);
	assert_non_null(c);
	dkim_key_cache_free(&c);

	free(em);
	free(rm);
	dns_zone_free(&zed);
	dns_zone_free(&zrsa);
	dns_zone_free(&zother);
	dns_zone_free(&zbad);
	EVP_PKEY_free(other);
	dkim_key_free(&ed);
	dkim_key_free(&rsa);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8463_vectors),
		cmocka_unit_test(test_rfc8463_key_signs),
		cmocka_unit_test(test_ed25519_matches_openssl),
		cmocka_unit_test(test_ed25519_small_order_key_refused),
		cmocka_unit_test(test_rsa_verify_paths),
		cmocka_unit_test(test_rsa_exponent_rules),
		cmocka_unit_test(test_rfc8463_sign),
		cmocka_unit_test(test_sign_verify_round_trips),
		cmocka_unit_test(test_sign_long_message),
		cmocka_unit_test(test_sign_header_list),
		cmocka_unit_test(test_changes_fail),
		cmocka_unit_test(test_body_length),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_rsa_sha1_policy),
		cmocka_unit_test(test_signature_syntax_permerror),
		cmocka_unit_test(test_key_rules),
		cmocka_unit_test(test_small_rsa_keys),
		cmocka_unit_test(test_dns_outcomes),
		cmocka_unit_test(test_step_waits_for_dns),
		cmocka_unit_test(test_unsigned_and_limits),
		cmocka_unit_test(test_key_generate),
		cmocka_unit_test(test_key_parse),
		cmocka_unit_test(test_key_cache),
	};

	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
