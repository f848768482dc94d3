/*
 * Unit tests for tls-client (client contexts, SSL objects with SNI and PKIX or
 * DANE verification, the verdict after the handshake) and for lineio's client
 * side of STARTTLS.
 *
 * A CA, a server certificate it signed for mx.remote.test and one with
 * wildcard names are made at start with OpenSSL. A fake TLS server runs in a
 * thread on one end of a socketpair; the client does a blocking handshake on
 * the other (or, for lineio, an event-loop one), and the verdict of
 * tls_client_verified() is checked for each policy.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/log.h"
#include "net/lineio.h"
#include "net/tls-client.h"

/* ---------------------------------------------------------------- PKI */

static struct {
	EVP_PKEY *ca_key, *leaf_key, *wild_key;
	X509 *ca, *leaf, *wild;
	char ca_path[64];
	SSL_CTX *server_ctx, *wild_ctx;
	SSL_CTX *client_ctx;        /* trusts the CA */
	SSL_CTX *client_system;     /* the system's roots only */
	unsigned char spki_sha256[32], spki_sha512[64], cert_sha256[32], ca_spki_sha256[32];
	unsigned char *spki_der;
	int spki_len;
} pki;

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* issuer NULL: a self-signed CA; else a server certificate with SAN `san`. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
    EVP_PKEY *issuer_key, long serial)
{
	X509 *x = X509_new();

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x));
	if (issuer == NULL) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, x, NID_subject_key_identifier, "hash");
	} else {
		add_ext(x, issuer, NID_subject_alt_name, san);
		add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
	}
	assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static SSL_CTX *server_ctx(X509 *leaf, EVP_PKEY *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, leaf), 1);
	assert_int_equal(SSL_CTX_add1_chain_cert(ctx, pki.ca), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

static void spki_digest(X509 *x, const EVP_MD *md, unsigned char *out)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(X509_get0_pubkey(x), &der);

	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, out, NULL, md, NULL), 1);
	OPENSSL_free(der);
}

static int pki_setup(void **state)
{
	char *error = NULL;
	unsigned int n;

	signal(SIGPIPE, SIG_IGN);
	log_init("test-tls-client", true, getenv("TEST_DEBUG") != NULL ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_ERROR);
	pki.ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	pki.leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	pki.wild_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(pki.ca_key);
	assert_non_null(pki.leaf_key);
	assert_non_null(pki.wild_key);
	pki.ca = make_cert(pki.ca_key, "Test CA", NULL, NULL, NULL, 1);
	pki.leaf = make_cert(pki.leaf_key, "mx.remote.test", "DNS:mx.remote.test", pki.ca,
	    pki.ca_key, 2);
	pki.wild = make_cert(pki.wild_key, "wild", "DNS:*.remote.test,DNS:m*.other.test", pki.ca,
	    pki.ca_key, 3);

	snprintf(pki.ca_path, sizeof(pki.ca_path), "/tmp/test-tls-client-ca.XXXXXX");
	int fd = mkstemp(pki.ca_path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, pki.ca), 1);
	fclose(f);

	pki.server_ctx = server_ctx(pki.leaf, pki.leaf_key);
	pki.wild_ctx = server_ctx(pki.wild, pki.wild_key);
	pki.client_ctx = tls_client_ctx_new(pki.ca_path, &error);
	assert_null(error);
	assert_non_null(pki.client_ctx);
	pki.client_system = tls_client_ctx_new(NULL, &error);
	assert_null(error);
	assert_non_null(pki.client_system);

	spki_digest(pki.leaf, EVP_sha256(), pki.spki_sha256);
	spki_digest(pki.leaf, EVP_sha512(), pki.spki_sha512);
	spki_digest(pki.ca, EVP_sha256(), pki.ca_spki_sha256);
	assert_int_equal(X509_digest(pki.leaf, EVP_sha256(), pki.cert_sha256, &n), 1);
	assert_int_equal(n, 32);
	pki.spki_len = i2d_PUBKEY(X509_get0_pubkey(pki.leaf), &pki.spki_der);
	assert_true(pki.spki_len > 0);
	return 0;
}

static int pki_teardown(void **state)
{
	unlink(pki.ca_path);
	SSL_CTX_free(pki.server_ctx);
	SSL_CTX_free(pki.wild_ctx);
	SSL_CTX_free(pki.client_ctx);
	SSL_CTX_free(pki.client_system);
	X509_free(pki.ca);
	X509_free(pki.leaf);
	X509_free(pki.wild);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.leaf_key);
	EVP_PKEY_free(pki.wild_key);
	OPENSSL_free(pki.spki_der);
	return 0;
}

/* ---------------------------------------------------------------- server */

struct tserver {
	int fd;
	SSL_CTX *ctx;
	const char *clear;     /* written in clear text before the handshake */
	bool no_tls;           /* close instead of TLS */
	const char *send;      /* written after the handshake */
	bool accepted;
	char got[256];         /* read after the handshake until EOF */
	size_t got_len;
	char sni[256];
	pthread_t thread;
};

static void *tserver_main(void *arg)
{
	struct tserver *s = arg;
	SSL *ssl;

	if (s->clear != NULL && write(s->fd, s->clear, strlen(s->clear)) < 0)
		goto out;
	if (s->no_tls)
		goto out;
	ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, s->fd);
	s->accepted = SSL_accept(ssl) == 1;
	if (s->accepted) {
		const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		snprintf(s->sni, sizeof(s->sni), "%s", sni != NULL ? sni : "");
		if (s->send != NULL)
			SSL_write(ssl, s->send, (int)strlen(s->send));
		for (;;) {
			int n = SSL_read(ssl, s->got + s->got_len, (int)(sizeof(s->got) - 1 - s->got_len));
			if (n <= 0)
				break;
			s->got_len += (size_t)n;
		}
	}
	SSL_free(ssl);
out:
	close(s->fd);
	return NULL;
}

/* Starts a server on one end of a socketpair; returns the client's end. */
static int tserver_start(struct tserver *s, SSL_CTX *ctx)
{
	int sv[2];

	memset(s, 0, sizeof(*s));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s->fd = sv[1];
	s->ctx = ctx;
	return sv[0];
}

static void tserver_run(struct tserver *s)
{
	assert_int_equal(pthread_create(&s->thread, NULL, tserver_main, s), 0);
}

/* ---------------------------------------------------------------- handshakes */

struct verdict {
	bool ssl_made, verified, dane;
	char why[256];
	char sni[256];
};

/* A blocking handshake with the policy against a server with ctx. */
static struct verdict handshake(SSL_CTX *client, SSL_CTX *server, const struct tls_client_policy *p)
{
	struct verdict v;
	struct tserver s;
	const char *error = NULL, *why = NULL;
	int fd = tserver_start(&s, server);
	SSL *ssl = tls_client_ssl_new(client, p, &error);

	memset(&v, 0, sizeof(v));
	tserver_run(&s);
	if (ssl == NULL) {
		assert_non_null(error);
		snprintf(v.why, sizeof(v.why), "%s", error);
		close(fd);
		pthread_join(s.thread, NULL);
		return v;
	}
	v.ssl_made = true;
	SSL_set_fd(ssl, fd);
	assert_int_equal(SSL_connect(ssl), 1);
	v.verified = tls_client_verified(ssl, &v.dane, &why);
	if (!v.verified)
		assert_non_null(why);
	else
		assert_null(why);
	snprintf(v.why, sizeof(v.why), "%s", why != NULL ? why : "");
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	pthread_join(s.thread, NULL);
	assert_true(s.accepted);
	snprintf(v.sni, sizeof(v.sni), "%s", s.sni);
	return v;
}

static struct tls_client_policy policy(enum tls_verify_mode mode, const char *host,
    const struct tls_tlsa *tlsa, size_t n)
{
	struct tls_client_policy p;

	memset(&p, 0, sizeof(p));
	p.mode = mode;
	p.host = host;
	p.tlsa = tlsa;
	p.ntlsa = n;
	return p;
}

static void test_ctx(void **state)
{
	char *error = NULL;
	SSL_CTX *ctx = tls_client_ctx_new("/nonexistent/ca.pem", &error);

	assert_null(ctx);
	assert_non_null(error);
	assert_non_null(strstr(error, "/nonexistent/ca.pem"));
	free(error);
	error = NULL;
	ctx = tls_client_ctx_new("", &error);  /* "" = the system's roots */
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);
}

static void test_tlsa_usable(void **state)
{
	static const unsigned char h32[32], h64[64], full[91];
	const struct tls_tlsa recs[] = {
		{ 3, 1, 1, h32, 32 },   /* usable */
		{ 2, 0, 2, h64, 64 },   /* usable */
		{ 3, 0, 0, full, 91 },  /* usable */
		{ 0, 0, 1, h32, 32 },   /* PKIX-TA: not for SMTP */
		{ 1, 1, 1, h32, 32 },   /* PKIX-EE: not for SMTP */
		{ 4, 1, 1, h32, 32 },   /* unknown usage */
		{ 3, 2, 1, h32, 32 },   /* unknown selector */
		{ 3, 1, 3, h32, 32 },   /* unknown matching type */
		{ 3, 1, 1, h32, 31 },   /* SHA-256 of the wrong length */
		{ 3, 1, 2, h64, 32 },   /* SHA-512 of the wrong length */
		{ 3, 1, 0, full, 0 },   /* empty */
	};

	assert_int_equal(tls_tlsa_usable(recs, sizeof(recs) / sizeof(recs[0])), 3);
	assert_int_equal(tls_tlsa_usable(recs + 3, 8), 0);
	assert_int_equal(tls_tlsa_usable(NULL, 0), 0);
}

static void test_ssl_new_errors(void **state)
{
	const struct tls_tlsa unusable[] = { { 1, 1, 1, pki.spki_sha256, 32 } };
	struct tls_client_policy p = policy(TLS_VERIFY_NONE, "", NULL, 0);
	const char *error = NULL;

	assert_null(tls_client_ssl_new(pki.client_ctx, &p, &error));
	assert_non_null(error);
	error = NULL;
	p.host = NULL;
	assert_null(tls_client_ssl_new(pki.client_ctx, &p, &error));
	assert_non_null(error);
	/* DANE without a usable record is the caller's decision, not PKIX. */
	error = NULL;
	p = policy(TLS_VERIFY_DANE, "mx.remote.test", unusable, 1);
	assert_null(tls_client_ssl_new(pki.client_ctx, &p, &error));
	assert_string_equal(error, "no usable TLSA record");
	p = policy(TLS_VERIFY_DANE, "mx.remote.test", NULL, 0);
	assert_null(tls_client_ssl_new(pki.client_ctx, &p, &error));

	/* An SSL not made by tls_client_ssl_new() has no policy: fail closed. */
	SSL *raw = SSL_new(pki.client_ctx);
	bool dane = true;
	const char *why = NULL;
	assert_non_null(raw);
	assert_false(tls_client_verified(raw, &dane, &why));
	assert_false(dane);
	assert_non_null(why);
	SSL_free(raw);
}

static void test_none(void **state)
{
	struct tls_client_policy p = policy(TLS_VERIFY_NONE, "mx.remote.test", NULL, 0);
	struct verdict v = handshake(pki.client_system, pki.server_ctx, &p);

	/* The handshake completes, but an unchecked certificate is not "verified". */
	assert_true(v.ssl_made);
	assert_false(v.verified);
	assert_false(v.dane);
	assert_string_equal(v.sni, "mx.remote.test");
}

static void test_pkix(void **state)
{
	struct tls_client_policy p = policy(TLS_VERIFY_PKIX, "mx.remote.test", NULL, 0);
	struct verdict v = handshake(pki.client_ctx, pki.server_ctx, &p);

	assert_true(v.verified);
	assert_false(v.dane);
	assert_string_equal(v.sni, "mx.remote.test");

	/* The right name but a root we do not trust. */
	v = handshake(pki.client_system, pki.server_ctx, &p);
	assert_false(v.verified);
	assert_string_equal(v.why, "self-signed certificate in certificate chain");

	/* A trusted chain for another name. */
	p.host = "mx.other.test";
	v = handshake(pki.client_ctx, pki.server_ctx, &p);
	assert_false(v.verified);
	assert_string_equal(v.why, "hostname mismatch");
	assert_string_equal(v.sni, "mx.other.test");
}

/* RFC 6125 §6.4.3: "*" covers one whole left-most label, nothing partial. */
static void test_pkix_wildcards(void **state)
{
	static const struct { const char *host; bool ok; } cases[] = {
		{ "mx.remote.test", true },
		{ "a.remote.test", true },
		{ "a.b.remote.test", false },
		{ "remote.test", false },
		{ "mx.other.test", false },  /* m*.other.test is a partial wildcard */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_client_policy p = policy(TLS_VERIFY_PKIX, cases[i].host, NULL, 0);
		struct verdict v = handshake(pki.client_ctx, pki.wild_ctx, &p);
		assert_int_equal(v.verified, cases[i].ok);
	}
}

static void test_dane_ee(void **state)
{
	unsigned char wrong[32];
	const struct tls_tlsa spki256[] = { { 3, 1, 1, pki.spki_sha256, 32 } };
	const struct tls_tlsa spki512[] = { { 3, 1, 2, pki.spki_sha512, 64 } };
	const struct tls_tlsa cert256[] = { { 3, 0, 1, pki.cert_sha256, 32 } };
	const struct tls_tlsa spkifull[] = { { 3, 1, 0, pki.spki_der, (size_t)pki.spki_len } };
	const struct tls_tlsa bad[] = { { 3, 1, 1, wrong, 32 } };
	/* Unusable and wrong records around the one that matches. */
	const struct tls_tlsa mixed[] = {
		{ 1, 1, 1, pki.spki_sha256, 32 }, { 3, 1, 1, wrong, 32 },
		{ 3, 1, 1, pki.spki_sha256, 32 },
	};
	const struct { const struct tls_tlsa *t; size_t n; bool ok; } cases[] = {
		{ spki256, 1, true }, { spki512, 1, true }, { cert256, 1, true },
		{ spkifull, 1, true }, { bad, 1, false }, { mixed, 3, true },
	};

	memcpy(wrong, pki.spki_sha256, 32);
	wrong[31] ^= 0x80;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* DANE-EE: no trusted root and a host the certificate does not name
		 * (RFC 7672 §3.1.1); only the record counts. */
		struct tls_client_policy p = policy(TLS_VERIFY_DANE, "mx.elsewhere.test",
		    cases[i].t, cases[i].n);
		struct verdict v = handshake(pki.client_system, pki.server_ctx, &p);
		assert_true(v.ssl_made);
		assert_int_equal(v.verified, cases[i].ok);
		assert_int_equal(v.dane, cases[i].ok);
		assert_string_equal(v.sni, "mx.elsewhere.test");
		if (!cases[i].ok)
			assert_true(v.why[0] != '\0');
	}
}

/* DANE-TA (usage 2): the CA from the record, and the name checked against the
 * host and the extra names (RFC 7672 §3.2.2). */
static void test_dane_ta(void **state)
{
	const struct tls_tlsa ta[] = { { 2, 1, 1, pki.ca_spki_sha256, 32 } };
	const struct tls_tlsa leaf_as_ta[] = { { 2, 1, 1, pki.spki_sha256, 32 } };
	const char *const names[] = { "backup.test", "mx.remote.test", NULL };
	struct tls_client_policy p = policy(TLS_VERIFY_DANE, "mx.remote.test", ta, 1);
	struct verdict v = handshake(pki.client_system, pki.server_ctx, &p);

	assert_true(v.verified);
	assert_true(v.dane);

	p.host = "remote.test";
	v = handshake(pki.client_system, pki.server_ctx, &p);
	assert_false(v.verified);
	assert_false(v.dane);

	p.names = names;
	v = handshake(pki.client_system, pki.server_ctx, &p);
	assert_true(v.verified);
	assert_true(v.dane);

	/* A TA record that names no certificate of the chain's issuers. */
	p = policy(TLS_VERIFY_DANE, "mx.remote.test", leaf_as_ta, 1);
	p.names = NULL;
	v = handshake(pki.client_system, pki.wild_ctx, &p);
	assert_false(v.verified);
}

/* ---------------------------------------------------------------- lineio STARTTLS */

struct lclient {
	struct event_base *base;
	struct lineio *io;
	SSL *ssl;
	int stage;              /* 0 before 220, 1 handshaking, 2 TLS up */
	bool done_called, error;
	char lines[4][64];
	size_t nlines;
};

static void lc_done(struct lineio *io, void *ctx)
{
	struct lclient *c = ctx;
	const char *version = NULL, *cipher = NULL;
	int bits = 0;

	c->done_called = true;
	c->stage = 2;
	assert_true(lineio_is_tls(io));
	assert_true(lineio_tls_info(io, &version, &cipher, &bits));
	assert_string_equal(version, "TLSv1.3");
	assert_true(bits >= 128);
}

static void lc_input(struct lineio *io, void *ctx)
{
	struct lclient *c = ctx;
	char buf[65];
	size_t len;

	while (lineio_read_line(io, buf, 64, &len) == 1) {
		if (c->nlines < 4)
			snprintf(c->lines[c->nlines++], sizeof(c->lines[0]), "%.63s", buf);
		if (c->stage == 0 && strcmp(buf, "220 go") == 0) {
			assert_false(lineio_is_tls(io));
			assert_int_equal(lineio_starttls_client(io, c->ssl, lc_done), 0);
			c->stage = 1;
			return;
		}
		if (c->stage == 2 && strcmp(buf, "hello over tls") == 0) {
			lineio_write_secret(io, "secret bye\r\n", 12);
			lineio_write(io, "\r\n", 2);
			lineio_close_after_flush(io);
		}
	}
}

static void lc_event(struct lineio *io, enum lineio_event ev, void *ctx)
{
	struct lclient *c = ctx;

	if (ev != LINEIO_FLUSHED)
		c->error = true;
	event_base_loopbreak(c->base);
}

static const struct lineio_callbacks lc_callbacks = { lc_input, lc_event };

static void run_lineio(struct tserver *s, int fd, struct lclient *c)
{
	struct tls_client_policy p = policy(TLS_VERIFY_PKIX, "mx.remote.test", NULL, 0);
	const char *error = NULL;
	struct timeval safety = { 10, 0 };

	memset(c, 0, sizeof(*c));
	c->base = event_base_new();
	c->ssl = tls_client_ssl_new(pki.client_ctx, &p, &error);
	assert_non_null(c->ssl);
	c->io = lineio_new(c->base, fd, NULL, &lc_callbacks, c);
	assert_non_null(c->io);
	lineio_set_timeout(c->io, 5);
	tserver_run(s);
	event_base_loopexit(c->base, &safety);
	event_base_dispatch(c->base);
	if (c->stage == 0)
		SSL_free(c->ssl);  /* never handed to lineio */
	lineio_free(&c->io);
	for (int i = 0; i < 5; i++)
		event_base_loop(c->base, EVLOOP_NONBLOCK);
	pthread_join(s->thread, NULL);
	event_base_free(c->base);
}

static void test_lineio_starttls(void **state)
{
	struct tserver s;
	struct lclient c;
	int fd = tserver_start(&s, pki.server_ctx);

	/* What follows the 220 in clear text is dropped (RFC 3207 §4.2). */
	s.clear = "220 go\r\n250 injected\r\n";
	s.send = "hello over tls\r\n";
	run_lineio(&s, fd, &c);
	assert_false(c.error);
	assert_true(c.done_called);
	assert_true(s.accepted);
	assert_int_equal(c.nlines, 2);
	assert_string_equal(c.lines[0], "220 go");
	assert_string_equal(c.lines[1], "hello over tls");
	assert_int_equal(s.got_len, 14);
	assert_memory_equal(s.got, "secret bye\r\n\r\n", 14);
	assert_string_equal(s.sni, "mx.remote.test");
}

static void test_lineio_starttls_fails(void **state)
{
	struct tserver s;
	struct lclient c;
	int fd = tserver_start(&s, pki.server_ctx);

	s.clear = "220 go\r\n";
	s.no_tls = true;
	run_lineio(&s, fd, &c);
	assert_int_equal(c.stage, 1);
	assert_false(c.done_called);
	assert_true(c.error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctx),
		cmocka_unit_test(test_tlsa_usable),
		cmocka_unit_test(test_ssl_new_errors),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_pkix),
		cmocka_unit_test(test_pkix_wildcards),
		cmocka_unit_test(test_dane_ee),
		cmocka_unit_test(test_dane_ta),
		cmocka_unit_test(test_lineio_starttls),
		cmocka_unit_test(test_lineio_starttls_fails),
	};
	return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
