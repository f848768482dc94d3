/*
 * tls-client — TLS for connections Rampart makes (relay to other servers,
 * MTA-STS policy fetches), with the certificate check a destination calls for.
 *
 * One context per process (tls_client_ctx_new): TLS 1.2 and 1.3, the system's
 * trusted roots (or a CA file, for tests and private smarthosts), DANE enabled
 * (SSL_CTX_dane_enable). Per connection, tls_client_ssl_new() makes the SSL
 * object with SNI and what is to be verified:
 *   - TLS_VERIFY_NONE: opportunistic (RFC 7435): encrypt, check nothing.
 *   - TLS_VERIFY_PKIX: the chain must lead to a trusted root and the
 *     certificate must name `host` (RFC 6125; MTA-STS, RFC 8461 §4.2; smarthosts).
 *   - TLS_VERIFY_DANE: the TLSA records given (from a DNSSEC-secure answer,
 *     RFC 7672 §2.2) must match: usage 3 (DANE-EE) matches the end-entity
 *     certificate or key and ignores names and expiry (RFC 7672 §3.1.1);
 *     usage 2 (DANE-TA) a trust anchor in the chain, with the name checked
 *     against `host` and `names` (RFC 7672 §3.2.2). Usages 0 and 1 are unusable
 *     for SMTP (RFC 7672 §3.1.3) and skipped; when no usable record is left the
 *     connection is treated as having no TLSA records at all, which the caller
 *     decides about (RFC 7672 §2.2: "usable TLSA records" — none means
 *     opportunistic). Selector 0/1, matching type 0/1/2 all work.
 * OpenSSL is told SSL_VERIFY_NONE so the handshake completes either way; the
 * verdict is read afterwards with tls_client_verified() and the SMTP client
 * enforces it when the policy requires it (so it can say why in the log).
 */
#ifndef RAMPART_TLS_CLIENT_H
#define RAMPART_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

/* ca_file: PEM roots to trust instead of the system's (NULL or "" = system). */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char **error_r);

enum tls_verify_mode { TLS_VERIFY_NONE, TLS_VERIFY_PKIX, TLS_VERIFY_DANE };

struct tls_tlsa {
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t len;
};

struct tls_client_policy {
	enum tls_verify_mode mode;
	const char *host;              /* SNI and the name to verify (no final dot) */
	const char *const *names;      /* DANE-TA: more acceptable names; NULL-terminated, may be NULL */
	const struct tls_tlsa *tlsa;   /* DANE: the records */
	size_t ntlsa;
};

/* How many of the records a DANE policy could use (usages 2 and 3 with a known
 * selector and matching type); 0 = treat as "no TLSA". */
size_t tls_tlsa_usable(const struct tls_tlsa *tlsa, size_t n);

/* A new client SSL for the policy; NULL with a sentence in *error_r. */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const struct tls_client_policy *p, const char **error_r);

/* After the handshake: whether the peer's certificate was verified under the
 * policy the SSL was made with (never for TLS_VERIFY_NONE: nothing was checked;
 * the caller enforces only what its policy requires), whether DANE matched,
 * and when not verified, why (static or SSL-owned text). */
bool tls_client_verified(SSL *ssl, bool *dane_r, const char **why_r);

#endif
