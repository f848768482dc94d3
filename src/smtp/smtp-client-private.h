/*
 * smtp-client-private — what smtp-client.c (connection, replies, lifetime),
 * smtp-client-setup.c (greeting to AUTH) and smtp-client-txn.c (one mail
 * transaction and its data) share.
 */
#ifndef RAMPART_SMTP_CLIENT_PRIVATE_H
#define RAMPART_SMTP_CLIENT_PRIVATE_H

#include <stdarg.h>
#include <sys/socket.h>

#include "smtp/smtp-client.h"
#include "smtp/smtp-reply.h"

struct event;
struct lineio;

/* BDAT chunk size, and the size up to which a message goes in one BDAT LAST. */
#define SMTP_CLIENT_CHUNK (1024 * 1024)
/* Message data is read from the spool in blocks of this size ... */
#define SMTP_CLIENT_READ_BLOCK (64 * 1024)
/* ... while less than this is waiting in the output buffer (back-pressure). */
#define SMTP_CLIENT_OUTPUT_HIGH (256 * 1024)

/* Sentences for logs and `closed`: a label, a formatted reply and some words. */
#define CLIENT_FMT_MAX (SMTP_REPLY_MAX_TEXT + 32)
#define CLIENT_WHY_MAX (CLIENT_FMT_MAX + 512)

/* Where the session is; each state but IDLE, LOCAL and CLOSED awaits a reply. */
enum client_state {
	CS_CONNECTING,
	CS_GREETING,
	CS_EHLO,
	CS_HELO,
	CS_STARTTLS,
	CS_HANDSHAKE,       /* TLS handshake under way: no reply awaited */
	CS_AUTH,            /* AUTH PLAIN / AUTH LOGIN sent */
	CS_AUTH_USER,       /* AUTH LOGIN: user name sent */
	CS_AUTH_PASS,       /* AUTH LOGIN: password sent */
	CS_IDLE,
	CS_TXN,             /* a transaction: txn.step says which reply is next */
	CS_LOCAL,           /* a message refused locally; done is on its way */
	CS_QUIT,
	CS_CLOSED,
};

/* Which reply of a transaction comes next (in the order the commands went). */
enum txn_step {
	TXN_MAIL,
	TXN_RCPT,           /* the reply to RCPT number txn.rcpt_reply */
	TXN_DATA,           /* 354 expected */
	TXN_PUMP,           /* sending data: no reply expected */
	TXN_DOT,            /* the reply to the final "." */
	TXN_DOT_DISCARD,    /* the reply to a "." sent with no recipient (RFC 2920 §3.1) */
	TXN_BDAT,           /* the reply to the current BDAT chunk */
	TXN_RSET,
};

struct client_txn {
	struct smtp_client_msg *m;
	smtp_client_done_fn *done;
	void *done_arg;
	enum txn_step step;
	bool mail_ok;
	bool *accepted;          /* per recipient: RCPT accepted, data reply due */
	size_t naccepted;
	size_t rcpt_send;        /* next RCPT to send (without PIPELINING) */
	size_t rcpt_reply;       /* next RCPT whose reply is due */
	/* The data: virtual bytes [0, total) = prepend then fd [offset, end). */
	uint64_t total, pos;
	bool chunked;            /* BDAT rather than DATA */
	uint64_t chunk_end;      /* BDAT: where the current chunk ends */
	bool chunk_last;
	/* DATA dot-stuffing: at the start of a line; the last two bytes sent. */
	bool bol;
	char tail[2];
	char *block;             /* SMTP_CLIENT_READ_BLOCK bytes */
};

struct smtp_client {
	struct event_base *base;
	struct smtp_client_params p;       /* strings below are our copies */
	struct sockaddr_storage addr;
	char *helo, *peer_name, *auth_user, *auth_password;
	size_t auth_user_len, auth_password_len;
	char label[320];                   /* "peer[address]" for logs */
	struct smtp_client_callbacks cb;
	void *cb_arg;

	enum client_state state;
	int fd;                            /* until lineio owns it */
	struct event *conn_ev;
	struct lineio *io;
	struct event *timer;               /* the reply (or connect) deadline */
	struct event *defer;               /* runs callbacks outside the caller's call */
	SSL *ssl;                          /* owned by io */
	struct smtp_reply_parser parser;
	struct smtp_ehlo_caps caps_new;    /* caps being read from an EHLO reply */
	char line[SMTP_REPLY_MAX_LINE + 1];
	struct smtp_client_info info;
	bool tls_tried;
	bool auth_login;                   /* AUTH LOGIN rather than PLAIN */

	/* Deferred: a local `done`, or an end of the connection. */
	bool defer_done;
	bool defer_end;
	enum smtp_client_end defer_end_why;
	char defer_why[256];

	struct client_txn txn;
	/* Callbacks may free the client: it is kept until the outermost entry
	 * point returns (hold), then destroyed if freed meanwhile. */
	unsigned hold;
	bool freed;
};

/* smtp-client.c */
/* Entry points from the event loop hold the client; release is false when
 * a callback freed it meanwhile (it is then destroyed). */
void client_hold(struct smtp_client *c);
bool client_release(struct smtp_client *c);
void client_send_line(struct smtp_client *c, const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void client_expect(struct smtp_client *c, unsigned seconds);
void client_end(struct smtp_client *c, enum smtp_client_end end,
    const struct smtp_reply *reply, const char *why);
/* Whether the client was freed or closed by a callback just run. */
static inline bool client_gone(const struct smtp_client *c)
{
	return c->freed || c->state == CS_CLOSED;
}
unsigned client_command_timeout(const struct smtp_client *c);
unsigned client_data_timeout(const struct smtp_client *c);

/* smtp-client-setup.c */
void setup_reply(struct smtp_client *c, const struct smtp_reply *r);

/* smtp-client-txn.c */
/* Starts a transaction (after local checks); 0, or -1 when it was refused
 * locally (results filled in; the caller defers `done`). */
int txn_start(struct smtp_client *c);
/* A complete reply while in CS_TXN. */
void txn_reply(struct smtp_client *c, const struct smtp_reply *r);
/* The output has drained: send more data if sending. */
void txn_pump(struct smtp_client *c);
/* The transaction ends with the connection: unresolved recipients get `reply`
 * (a 421) or no result; `done` runs. */
void txn_abort(struct smtp_client *c, const struct smtp_reply *reply);
/* Calls `done` for a finished transaction and makes the client idle. */
void txn_finish(struct smtp_client *c);
void txn_clear(struct client_txn *t);

#endif
