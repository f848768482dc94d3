/*
 * relay — sending queued messages to other servers, in the queue process.
 *
 * The queue hands over one job per (message, destination): the recipients of
 * one domain (or all remote recipients when a smarthost takes everything).
 * Jobs wait in their destination's line; the relay opens connections to the
 * destination as jobs need them, up to relay.destination_concurrency per
 * destination and relay.max_connections in all, and a connection carries job
 * after job (up to relay.messages_per_connection), staying open
 * relay.connection_idle seconds for the next one.
 *
 * A connection: route.h says which hosts and addresses, in order; for each
 * host the transport policy is decided (RFC 8461 §2 and RFC 7672: DANE where
 * the host has usable TLSA records — TLS with a certificate matching them or
 * no delivery; else MTA-STS enforce — only MX hosts the policy names, TLS with
 * a PKIX-valid certificate for the host, or no delivery; else opportunistic
 * STARTTLS, falling back to plain text on the same address once if the
 * handshake fails, RFC 7435 / RFC 3207 §4.1), and addresses are tried until
 * one gives a session. When none does, the destination backs off
 * (relay.destination_backoff, doubling) and its waiting jobs end with a
 * temporary failure saying why; the queue retries each message on its own
 * schedule.
 *
 * Every delivery is logged with the host, address, TLS version and cipher and
 * how the certificate was checked (dane, pkix, or unverified).
 */
#ifndef RAMPART_RELAY_H
#define RAMPART_RELAY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "smtp/smtp-client.h"

struct config;
struct dns_resolver;
struct event_base;
struct mta_sts_cache;
struct relay;

struct relay_job {
	/* in */
	const char *id;                 /* spool id, for logs */
	const char *domain;             /* destination domain, lower case */
	struct smtp_client_msg msg;     /* envelope and data; results land in msg.rcpts[i].result */
	/* out */
	char host[256];                 /* the host that answered last, "" when none */
	char addr[64];
	char tls[128];                  /* "TLSv1.3 TLS_AES_256_GCM_SHA384 verified=dane", "none" */
	bool remote_dsn;                /* the server offered DSN: it reports success itself */
	/* A result for recipients left without a reply (code 0): why nothing was
	 * delivered — permanent (route: null MX, no such domain) or temporary. */
	struct smtp_reply fallback;
};

typedef void relay_done_fn(struct relay_job *job, void *arg);

/* password: the smarthost's, for AUTH with relay.user (relay-secret.h), or NULL;
 * the caller keeps it alive and wipes it after relay_free(). */
struct relay *relay_new(struct event_base *base, const struct config *cfg,
    struct dns_resolver *dns, SSL_CTX *tls_ctx, struct mta_sts_cache *mta_sts,
    const char *password);
/* Closes every connection at once; jobs still waiting are not called back. */
void relay_free(struct relay **r);

/* Queues a job; done(job, arg) runs later, exactly once (job and what it
 * points to must stay valid until then). */
void relay_submit(struct relay *r, struct relay_job *job, relay_done_fn *done, void *arg);
/* Connections open now (for show and tests). */
size_t relay_connections(const struct relay *r);

#endif
