/*
 * tls-client — client TLS contexts and per-connection SSL objects with SNI and
 * PKIX or DANE verification set up (see tls-client.h). The handshake itself is
 * lineio's; the verdict is read afterwards with tls_client_verified().
 */
#include "net/tls-client.h"
#include "net/tls.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* The SSL remembers the mode it was made for (ex_data), so that
 * tls_client_verified() knows what "verified" means for it. */
static int tls_mode_index = -1;

SSL_CTX *
tls_client_ctx_new(const char *ca_file, char **error_r)
{
	if (tls_mode_index < 0) {
		tls_mode_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
		if (tls_mode_index < 0) {
			*error_r = tls_error("cannot allocate TLS ex_data index", "");
			return NULL;
		}
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*error_r = tls_error("cannot create TLS client context", "");
		return NULL;
	}
	/* RFC 8996: nothing older than TLS 1.2. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* The handshake completes whatever the certificate; the SMTP client reads
	 * the result and enforces the destination's policy itself. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	int ok = ca_file != NULL && ca_file[0] != '\0' ?
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx);
	if (ok != 1) {
		*error_r = tls_error("cannot load trusted roots",
		    ca_file != NULL ? ca_file : "");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		*error_r = tls_error("cannot enable DANE", "");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* RFC 6698 §2.1: selector 0 (certificate) or 1 (SPKI); matching type 0 (the
 * data itself), 1 (SHA2-256) or 2 (SHA2-512), whose digests have fixed sizes. */
static bool
tls_tlsa_is_usable(const struct tls_tlsa *t)
{
	/* RFC 7672 §3.1.3: PKIX-TA(0) and PKIX-EE(1) are not for SMTP. */
	if (t->usage != 2 && t->usage != 3)
		return false;
	if (t->selector > 1 || t->data == NULL)
		return false;
	switch (t->mtype) {
	case 0:
		return t->len > 0;
	case 1:
		return t->len == 32;
	case 2:
		return t->len == 64;
	default:
		return false;
	}
}

size_t
tls_tlsa_usable(const struct tls_tlsa *tlsa, size_t n)
{
	size_t usable = 0;
	for (size_t i = 0; i < n; i++)
		if (tls_tlsa_is_usable(&tlsa[i]))
			usable++;
	return usable;
}

static int
tls_client_dane_setup(SSL *ssl, const struct tls_client_policy *p, const char **error_r)
{
	if (SSL_dane_enable(ssl, p->host) <= 0) {
		*error_r = "cannot enable DANE on the connection";
		return -1;
	}
	/* RFC 7672 §3.1.1: DANE-EE(3) ignores the names in the certificate. */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	/* RFC 7672 §3.2.2: DANE-TA(2) checks the name, with the MX host name (the
	 * TLSA base domain) and any other names the caller accepts. */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	for (const char *const *n = p->names; n != NULL && *n != NULL; n++) {
		if (SSL_add1_host(ssl, *n) != 1) {
			*error_r = "cannot add a name to verify";
			return -1;
		}
	}
	size_t added = 0;
	for (size_t i = 0; i < p->ntlsa; i++) {
		const struct tls_tlsa *t = &p->tlsa[i];
		if (!tls_tlsa_is_usable(t))
			continue;
		int r = SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype, t->data, t->len);
		if (r < 0) {
			*error_r = "cannot add a TLSA record";
			return -1;
		}
		if (r > 0)
			added++;
	}
	if (added == 0) {
		/* OpenSSL would fall back to PKIX: the caller must decide instead
		 * (RFC 7672 §2.2, no usable records = no DANE). */
		*error_r = "no usable TLSA record";
		return -1;
	}
	return 0;
}

SSL *
tls_client_ssl_new(SSL_CTX *ctx, const struct tls_client_policy *p, const char **error_r)
{
	if (p->host == NULL || p->host[0] == '\0') {
		*error_r = "no host name for TLS";
		return NULL;
	}
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL) {
		*error_r = "cannot create a TLS connection object";
		return NULL;
	}
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	SSL_set_ex_data(ssl, tls_mode_index, (void *)(uintptr_t)(p->mode + 1));
	/* RFC 6066 §3: SNI, so a server with several names shows the right one
	 * (RFC 7672 §8.1 asks DANE clients to send it). */
	if (SSL_set_tlsext_host_name(ssl, p->host) != 1) {
		*error_r = "cannot set the TLS server name (SNI)";
		SSL_free(ssl);
		return NULL;
	}
	int rc = 0;
	switch (p->mode) {
	case TLS_VERIFY_NONE:
		break;
	case TLS_VERIFY_PKIX:
		/* RFC 6125 §6.4.3 and RFC 8461 §4.2: a wildcard covers one whole label. */
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(ssl, p->host) != 1) {
			*error_r = "cannot set the name to verify";
			rc = -1;
		}
		break;
	case TLS_VERIFY_DANE:
		rc = tls_client_dane_setup(ssl, p, error_r);
		break;
	}
	ERR_clear_error();
	if (rc < 0) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

bool
tls_client_verified(SSL *ssl, bool *dane_r, const char **why_r)
{
	*dane_r = false;
	*why_r = NULL;
	uintptr_t tag = tls_mode_index >= 0 ? (uintptr_t)SSL_get_ex_data(ssl, tls_mode_index) : 0;
	if (tag == 0) {
		/* Not made by tls_client_ssl_new(): nothing is known, fail closed. */
		*why_r = "no verification policy on the connection";
		return false;
	}
	if (tag - 1 == TLS_VERIFY_NONE) {
		/* Opportunistic: encrypted, but nobody checked who is at the other end,
		 * so the log must not call it verified. */
		*why_r = "the certificate was not checked (no policy asks for it)";
		return false;
	}
	/* No certificate at all also leaves the result at X509_V_OK. */
	if (SSL_get0_peer_certificate(ssl) == NULL) {
		*why_r = "the server sent no certificate";
		return false;
	}
	long res = SSL_get_verify_result(ssl);
	if (res != X509_V_OK) {
		*why_r = X509_verify_cert_error_string(res);
		return false;
	}
	if (tag - 1 == TLS_VERIFY_DANE) {
		if (SSL_get0_dane_authority(ssl, NULL, NULL) < 0) {
			*why_r = "no TLSA record matched";
			return false;
		}
		*dane_r = true;
	}
	return true;
}
