/*
 * smtp-client — one outgoing SMTP connection, asynchronous on an event loop.
 *
 * The queue's relay opens a client to one address of a destination (an MX
 * host or the smarthost), and the client runs the session: TCP connect with a
 * timeout, the greeting, EHLO (HELO when EHLO is refused, RFC 5321 §4.1.1.1),
 * STARTTLS (RFC 3207) when offered and wanted, EHLO again, AUTH PLAIN or LOGIN
 * (RFC 4954) when credentials are given — only ever over TLS — and then reports
 * `ready`. The owner then sends messages one after another on the same
 * connection (smtp_client_send), each answered by its `done` callback with a
 * result per recipient, and ends with smtp_client_quit().
 *
 * Per message: MAIL FROM with SIZE (RFC 1870), BODY=8BITMIME (RFC 6152),
 * SMTPUTF8 (RFC 6531) and, when the server offers DSN (RFC 3461), RET and ENVID;
 * RCPT TO with NOTIFY and ORCPT when DSN is offered; then the data with BDAT
 * (RFC 3030, when CHUNKING is offered) or DATA with dot-stuffing (RFC 5321
 * §4.5.2), streamed from the file in 64 KiB blocks with back-pressure (the
 * message is never held in memory). With PIPELINING (RFC 2920 §3.1) MAIL, the
 * RCPTs and DATA go in one write; with CHUNKING, MAIL and the RCPTs, and BDAT
 * (one "BDAT n LAST" up to 1 MiB, else 1 MiB chunks, each reply awaited) once
 * some RCPT was accepted.
 *
 * Rampart does not downgrade. A message with 8-bit data must not be sent as
 * such to a server without 8BITMIME (RFC 6152 §3): every recipient gets a
 * permanent 554 5.6.3 made up locally (RFC 3463: "conversion required but not
 * supported"). A message that needs SMTPUTF8 (the flag, or a UTF-8 address)
 * for a server that does not offer it: 553 5.6.7 per recipient (RFC 6531 §3.5
 * suggests it; RFC 6531 §3.2). SIZE larger than the server's limit: 552 5.3.4
 * (RFC 1870 §6.1). An address or parameter with a control character (CR, LF,
 * ...): 501 5.5.4. None of these sends anything; made-up replies carry code,
 * enhanced code and a text such as "message needs 8BITMIME, which
 * mx.remote.test does not offer".
 *
 * After a transaction that did not complete (MAIL refused, no RCPT accepted,
 * DATA or a BDAT chunk refused, or RFC 2920 §3.1's lone "." after a 354 with no
 * recipient), RSET; a refused RSET ends the connection (PROTOCOL). A 421 at any
 * point ends the connection (SHUTDOWN, after `done` for a message in flight);
 * server lines longer than SMTP_REPLY_MAX_LINE or unparseable replies end it
 * as PROTOCOL.
 *
 * Timeouts follow RFC 5321 §4.5.3.2 (greeting and MAIL/RCPT 5 min, DATA 2 min,
 * each data block 3 min, final dot 10 min), scaled by the params: greeting,
 * EHLO, STARTTLS (and its handshake), AUTH, MAIL, RCPT, RSET: command_timeout;
 * DATA's 354: 2/5 of it; each data block written (the output must drain):
 * 3/10 of data_timeout; the reply to the final "." or BDAT LAST: data_timeout.
 * An idle session ends (TIMEOUT) after command_timeout; QUIT waits 10 s at most.
 *
 * TLS: the owner supplies the SSL object (tls-client.h sets up SNI, DANE or
 * PKIX verification); the handshake runs with verification *recorded*, not
 * enforced by OpenSSL, and the client then applies the params: tls_required
 * fails the connection if STARTTLS is not offered or the handshake fails;
 * verify_required fails it if the certificate did not verify. Failures are
 * temporary (4.7.5 / 4.7.4) so the message waits for a fixed peer.
 * Opportunistic TLS (neither required) falls back to plain text when the
 * handshake fails: the connection is closed and `closed` reports
 * SMTP_CLIENT_TLS_FAILED so the owner can reconnect without STARTTLS; a
 * STARTTLS refused by the server (454) then just goes on in clear text on the
 * same connection. Whatever the server sent after its 220 to STARTTLS is
 * dropped unread (RFC 3207 §4.2), and the caps are those of the second EHLO.
 *
 * AUTH (PLAIN preferred, else LOGIN) is only ever sent over TLS: credentials
 * with a clear-text session end it with SMTP_CLIENT_AUTH_FAILED. No secret is
 * logged: the debug log shows each command's verb and each reply's code, never
 * AUTH data; the base64 buffers are wiped, and the queued copy too once written.
 */
#ifndef RAMPART_SMTP_CLIENT_H
#define RAMPART_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "smtp/smtp-reply.h"

struct event_base;
struct smtp_client;

/* Why a connection ended (the `closed` callback). */
enum smtp_client_end {
	SMTP_CLIENT_QUIT,            /* we sent QUIT (or freed it) after our work */
	SMTP_CLIENT_CONNECT_FAILED,  /* TCP connect failed or timed out */
	SMTP_CLIENT_GREETING,        /* the greeting or EHLO/HELO was refused (reply says) */
	SMTP_CLIENT_TLS_FAILED,      /* handshake failed, or STARTTLS refused with tls_required */
	SMTP_CLIENT_TLS_UNVERIFIED,  /* handshake done but verification required and failed */
	SMTP_CLIENT_TLS_MISSING,     /* tls_required and STARTTLS not offered */
	SMTP_CLIENT_AUTH_FAILED,     /* AUTH refused (reply says), or no usable mechanism,
	                              * or credentials given but the session is not TLS */
	SMTP_CLIENT_PROTOCOL,        /* unparseable reply, line too long */
	SMTP_CLIENT_TIMEOUT,         /* a reply did not come in time */
	SMTP_CLIENT_LOST,            /* the peer closed, a socket error, or the message
	                              * file could not be read mid-transaction */
	SMTP_CLIENT_SHUTDOWN,        /* the server said 421 */
};
const char *smtp_client_end_name(enum smtp_client_end e);

struct smtp_client_params {
	const struct sockaddr *addr;   /* where to connect (copied) */
	socklen_t addrlen;
	const char *helo;              /* our name for EHLO */
	const char *peer_name;         /* the host's name (MX name or smarthost), for logs */
	/* STARTTLS: off entirely, or tried when offered. */
	bool starttls;
	bool tls_required;             /* no TLS, no delivery (policy, MTA-STS, DANE) */
	bool verify_required;          /* the certificate must verify (PKIX or DANE) */
	/* Makes the SSL object for this connection (SNI, DANE/PKIX set up); NULL
	 * fails the TLS step. Called once, when STARTTLS is answered 220. */
	SSL *(*tls_new)(void *arg);
	void *tls_arg;
	/* Smarthost credentials (copied; the copy is wiped on free). NULL = no AUTH. */
	const char *auth_user;
	const char *auth_password;
	/* RFC 5321 §4.5.3.2 timeouts in seconds; 0 = the RFC's value. */
	unsigned connect_timeout;      /* default 30 */
	unsigned command_timeout;      /* greeting, EHLO, MAIL, RCPT, RSET: default 300 */
	unsigned data_timeout;         /* DATA/BDAT blocks and the final reply: default 600 */
};

/* What the session established, for logs and for the owner's decisions. */
struct smtp_client_info {
	struct smtp_ehlo_caps caps;    /* of the last EHLO (after STARTTLS when TLS) */
	bool tls;                      /* the session is encrypted */
	const char *tls_version;       /* "TLSv1.3", NULL without TLS */
	const char *tls_cipher;
	bool tls_verified;             /* the certificate verified (PKIX or DANE) */
	bool dane;                     /* ... and it was by a TLSA record */
	const char *verify_error;      /* X509 verification error text when not verified */
	bool authenticated;            /* AUTH succeeded */
	char greeting_name[256];       /* first word of the 220 greeting */
};

struct smtp_client_callbacks {
	/* The session is set up and idle: send a message or quit. Called once. */
	void (*ready)(struct smtp_client *c, void *arg);
	/* The connection is gone (before or after ready). `reply` is the server's
	 * reply that ended it (greeting, STARTTLS, AUTH, 421), NULL when none;
	 * `why` a sentence for logs. The client must not be used afterwards, except
	 * to be freed (which the owner must do, here or later). */
	void (*closed)(struct smtp_client *c, enum smtp_client_end end,
	    const struct smtp_reply *reply, const char *why, void *arg);
};

/* One recipient of a message, with its outcome once `done` is called. */
struct smtp_client_rcpt {
	const char *address;       /* the forward-path, without <> */
	unsigned notify;           /* ENVELOPE_NOTIFY_* bits, 0 = not given */
	const char *orcpt;         /* "rfc822;xtext" or NULL */
	/* out: the RCPT reply, or when RCPT was accepted, the reply to the data
	 * (or to DATA/BDAT when refused), or a locally made-up reply (above);
	 * the 421 when the server closed with one before the outcome was known;
	 * code 0 = no reply (connection lost or not attempted: temporary). */
	struct smtp_reply result;
};

struct smtp_client_msg {
	const char *mail_from;     /* reverse-path without <>; "" = null sender */
	bool eightbit;             /* BODY=8BITMIME was given on submission */
	bool smtputf8;             /* SMTPUTF8 needed */
	unsigned ret;              /* ENVELOPE_RET_* */
	const char *envid;         /* ENVID xtext or NULL */
	struct smtp_client_rcpt *rcpts;
	size_t nrcpts;
	/* The data: prepend (header fields we add, CRLF lines, may be empty) then
	 * bytes [offset, end) of fd, which hold CRLF lines as received (not
	 * dot-stuffed, no final "."). Read with pread(); fd is not closed. */
	const char *prepend;
	size_t prepend_len;
	int fd;
	off_t offset, end;
	/* out: the reply to MAIL FROM when it was refused (then every recipient
	 * carries the same), else code 0 */
	struct smtp_reply mail_result;
};

typedef void smtp_client_done_fn(struct smtp_client *c, struct smtp_client_msg *m, void *arg);

/* Starts connecting; NULL when out of memory or the socket cannot be made
 * (errno set). Callbacks never run from inside this call. */
struct smtp_client *smtp_client_new(struct event_base *base,
    const struct smtp_client_params *p, const struct smtp_client_callbacks *cb, void *arg);
/* After `ready` or a previous `done`, when idle: runs one transaction. m and
 * everything it points to must stay valid until done(c, m, arg) runs; done
 * runs exactly once, never from inside this call. If the connection ends
 * during the transaction, done runs first (recipients without a reply keep code
 * 0) and then `closed`. -1 if the client is not idle. */
int smtp_client_send(struct smtp_client *c, struct smtp_client_msg *m,
    smtp_client_done_fn *done, void *arg);
/* Whether the session is idle and may carry another message. */
bool smtp_client_idle(const struct smtp_client *c);
const struct smtp_client_info *smtp_client_info(const struct smtp_client *c);
/* Sends QUIT (RFC 5321 §4.1.1.10) and closes after the reply or a short timeout;
 * then `closed` runs with SMTP_CLIENT_QUIT. */
void smtp_client_quit(struct smtp_client *c);
/* Closes at once (no callbacks afterwards) and frees. NULL is fine. May be
 * called from inside any of the client's callbacks (the memory goes when the
 * callback returns); a transaction in flight then gets no `done`. */
void smtp_client_free(struct smtp_client **c);

#endif
