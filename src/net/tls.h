/*
 * tls — server TLS contexts (OpenSSL). Protocol code never calls OpenSSL: it asks
 * lineio to start TLS with a context from here.
 *
 * Contexts allow TLS 1.2 and 1.3 only, prefer the server's cipher order, refuse
 * renegotiation and compression, and release idle read/write buffers so an idle
 * TLS connection stays small.
 */
#ifndef RAMPART_TLS_H
#define RAMPART_TLS_H

#include <openssl/ssl.h>

/* Loads the certificate chain and key; NULL with a malloc'd sentence in *error_r. */
SSL_CTX *tls_server_ctx_new(const char *cert_path, const char *key_path, char **error_r);
void tls_ctx_free(SSL_CTX **ctx);
/* "WHAT PATH: OpenSSL's first queued error" (PATH left out when ""), malloc'd;
 * clears OpenSSL's error queue. NULL when out of memory. */
char *tls_error(const char *what, const char *path);

#endif
