/* tls — see tls.h. */
#include "net/tls.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>

char *
tls_error(const char *what, const char *path)
{
	char buf[256] = "";
	unsigned long e = ERR_get_error();
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	char *out;
	if (asprintf(&out, "%s%s%s: %s", what, path[0] != '\0' ? " " : "", path,
	    buf[0] != '\0' ? buf : "failed") < 0)
		return NULL;
	return out;
}

SSL_CTX *
tls_server_ctx_new(const char *cert_path, const char *key_path, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = tls_error("cannot create TLS context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* CLEANSE_PLAINTEXT: decrypted records (AUTH lines carry passwords) are
	 * wiped once handed over, not left in OpenSSL's buffer. */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CLEANSE_PLAINTEXT);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* TLS 1.2: forward-secret AEAD suites only (Mozilla "intermediate"). */
	SSL_CTX_set_cipher_list(ctx,
	    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		*error_r = tls_error("cannot load certificate", cert_path);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		*error_r = tls_error("cannot load private key", key_path);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_error("private key does not match the certificate", key_path);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void
tls_ctx_free(SSL_CTX **ctx)
{
	if (*ctx != NULL)
		SSL_CTX_free(*ctx);
	*ctx = NULL;
}
