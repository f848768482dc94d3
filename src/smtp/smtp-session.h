/*
 * smtp-session — one SMTP server connection (RFC 5321) on a front process.
 *
 * The session runs the protocol state machine over lineio; recipient look-ups go
 * to the auth process and messages to the queue process through the server's
 * ipc clients, and a 250 after DATA/BDAT is sent only once the queue reports the
 * message durable. The role of the listener decides policy (mx: local recipients
 * only; submission: STARTTLS; submissions: implicit TLS).
 */
#ifndef RAMPART_SMTP_SESSION_H
#define RAMPART_SMTP_SESSION_H

#include <stdbool.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

struct config;
struct config_listener;
struct event_base;
struct ipc_client;
struct smtp_mailauth;
struct smtp_session;

/* What the sessions of one listener on one front share. */
struct smtp_server {
	const struct config *cfg;
	const struct config_listener *listener;
	struct event_base *base;
	SSL_CTX *tls;                 /* NULL: no STARTTLS, no implicit TLS */
	struct ipc_client *auth;
	struct ipc_client *queue;
	const struct smtp_mailauth *mailauth;  /* mx checks (smtp-inbound.h); NULL = off */
};

typedef void smtp_session_end_fn(struct smtp_session *s, void *ctx);

/* Starts a session on an accepted socket (owned from now on) and greets. */
struct smtp_session *smtp_session_new(const struct smtp_server *srv, int fd,
    const struct sockaddr *peer, socklen_t peerlen, smtp_session_end_fn *on_end, void *ctx);
/* Frees at once (the end callback is not called). */
void smtp_session_free(struct smtp_session **s);
/* Graceful stop: an idle session gets 421 now, a busy one after its transaction. */
void smtp_session_shutdown(struct smtp_session *s);

#endif
