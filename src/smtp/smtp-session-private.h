/*
 * smtp-session-private — the session state shared by smtp-session.c (I/O, data,
 * lifecycle) and smtp-commands.c (the command table and handlers).
 */
#ifndef RAMPART_SMTP_SESSION_PRIVATE_H
#define RAMPART_SMTP_SESSION_PRIVATE_H

#include "smtp/smtp-session.h"
#include "smtp/smtp-data.h"
#include "smtp/smtp-parse.h"

#include <stdint.h>

struct envelope;
struct event;
struct evbuffer;
struct header_from_scan;
struct header_mailboxes;
struct sasl_exchange;
struct ipc_call;
struct lineio;

/* RFC 5321 §4.5.3.1.4: 512 octets with CRLF; RFC 3461 §5 (DSN) lets MAIL grow by
 * 100 and RCPT by 500 octets. Longer input is refused with 500 5.5.2. */
#define SMTP_CMD_MAX 510
#define SMTP_CMD_MAX_MAIL (SMTP_CMD_MAX + 100)
#define SMTP_CMD_MAX_RCPT (SMTP_CMD_MAX + 500)
#define SMTP_LINE_MAX SMTP_CMD_MAX_RCPT
/* Message bytes are written to the spool file in blocks of about this size. */
#define SMTP_WRITE_BLOCK (64 * 1024)
/* Longest authenticated user name (a directory address, RFC 5321 §4.5.3.1.3). */
#define SMTP_USER_MAX 254

enum smtp_state {
	SMTP_STATE_COMMAND,   /* reading command lines */
	SMTP_STATE_DATA,      /* inside DATA, until <CRLF>.<CRLF> */
	SMTP_STATE_BDAT,      /* inside a BDAT chunk */
	SMTP_STATE_AUTH,      /* reading SASL responses (RFC 4954 §4) */
	SMTP_STATE_CLOSING,   /* flushing the last reply */
};

struct smtp_txn {
	struct envelope *env;
	unsigned rcpt_cmds;       /* RCPT commands accepted (the limit counts these) */
	char id[32];              /* spool id once the queue opened the file */
	int fd;                   /* spool file, -1 until opened */
	struct evbuffer *buf;     /* message bytes not yet written */
	uint64_t written;
	int write_errno;          /* first write error (ENOSPC → 452 4.3.1) */
	struct smtp_data_decoder dec;
	bool bdat;                /* this transaction uses BDAT (RFC 3030) */
	bool mail_smtputf8;
	/* Authenticated sessions: the From: header must be the user's too. */
	struct header_from_scan *from_scan;
	struct header_mailboxes *from;   /* parsed at the end of data */
	unsigned from_next;              /* next From: mailbox to ask auth about */
	void (*after_check)(struct smtp_session *s);
	/* mx: mail authentication of this message (smtp-inbound.c), NULL = none. */
	struct smtp_inbound *inbound;
};

/* A reply decided before its time (e.g. for a BDAT chunk still to be read). */
struct smtp_owed_reply {
	int code;                 /* 0: none owed */
	const char *enh, *text;
};

struct smtp_session {
	const struct smtp_server *srv;
	struct lineio *io;
	smtp_session_end_fn *on_end;
	void *end_ctx;
	enum smtp_state state;
	char sid[17];             /* session id in logs and Received: */
	char addr[64];            /* client address, text */
	unsigned port;
	char helo[256];           /* EHLO/HELO argument ("" before) */
	bool esmtp;               /* EHLO (not HELO) */
	bool stopping;            /* server shutdown: 421 at the next idle moment */
	unsigned errors;
	struct smtp_txn *txn;     /* NULL outside MAIL..end of data */
	struct ipc_call *call;    /* a question to auth/queue in flight; input paused */
	void (*after_open)(struct smtp_session *s);
	/* BDAT chunk being read (RFC 3030); kept here since a chunk must be consumed
	 * even when there is no transaction to put it in. */
	uint64_t bdat_left;
	bool bdat_last;
	struct smtp_owed_reply bdat_refusal;  /* discard the chunk, then reply this */
	/* SMTP AUTH (smtp-auth.c) */
	char user[SMTP_USER_MAX + 1];     /* authenticated canonical address, "" = none */
	unsigned auth_failures;
	struct sasl_exchange *sasl;
	char *sasl_line;                      /* SASL response buffer, in SMTP_STATE_AUTH only */
	struct event *hold;                   /* a reply held back (failed login) */
	struct smtp_owed_reply held;
	bool holding;
	bool checking;                        /* mail authentication asking DNS; input paused */
	char line[SMTP_LINE_MAX + 1];
};

/* smtp-session.c */
void smtp_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Counts a refused command; after max_errors, 421 and close (returns true). */
bool smtp_count_error(struct smtp_session *s);
void smtp_close(struct smtp_session *s, int code, const char *enh, const char *text);
void smtp_wait(struct smtp_session *s, struct ipc_call *call);
void smtp_resume(struct smtp_session *s);
void smtp_txn_reset(struct smtp_session *s);
struct smtp_txn *smtp_txn_begin(struct smtp_session *s);
/* DATA accepted: open the spool file, then 354 (RFC 5321 §4.1.1.4). */
void smtp_data_begin(struct smtp_session *s);
/* BDAT chunk announced: read size octets; refusal (code 0 = none) is replied after. */
void smtp_bdat_begin(struct smtp_session *s, uint64_t size, bool last,
    const struct smtp_owed_reply *refusal);
/* STARTTLS swapped the transport: forget everything (RFC 3207 §4.2). */
void smtp_session_reset_after_tls(struct smtp_session *s);
bool smtp_session_tls(struct smtp_session *s);

/* smtp-commands.c */
void smtp_dispatch(struct smtp_session *s, const char *line, size_t len);
/* The extensions an EHLO session may use in MAIL/RCPT parameters. */
unsigned smtp_extensions(const struct smtp_session *s);

/* smtp-auth.c: SMTP AUTH (RFC 4954) over the SASL layer, decisions by auth. */
/* Whether this session may authenticate now (role, TLS or loopback testing). */
bool smtp_auth_offered(struct smtp_session *s);
void smtp_cmd_auth(struct smtp_session *s, const struct smtp_command *cmd);
/* A line read in SMTP_STATE_AUTH; len > SASL_RESPONSE_MAX means too long. */
void smtp_auth_response(struct smtp_session *s, const char *line, size_t len, bool too_long);
/* Forget the login (STARTTLS, RFC 3207 §4.2) and free what AUTH holds. */
void smtp_auth_reset(struct smtp_session *s);
/* Sends code/enh/text after delay_ms, input paused meanwhile (then closes if close). */
void smtp_reply_later(struct smtp_session *s, unsigned delay_ms, int code, const char *enh,
    const char *text);

/* smtp-sender.c: accountability of authenticated senders (553 5.7.1). */
/* MAIL FROM of an authenticated session: ask auth, then ok(s) or refuse. */
void smtp_sender_check_mail(struct smtp_session *s, const char *address,
    void (*ok)(struct smtp_session *s, void *arg), void *arg);
/* Feeds message octets just decoded into t->buf from offset `from` on. */
void smtp_sender_scan(struct smtp_session *s, size_t from);
/* End of data: every From: mailbox must be the user's; then next(s), else a
 * refusal has been sent and the transaction reset. */
void smtp_sender_check_from(struct smtp_session *s, void (*next)(struct smtp_session *s));
/* After the check: the domain an authenticated user's message is DKIM-signed
 * for (the first From: mailbox's, checked to belong to the user), NULL when
 * the session is not authenticated or the domain is not a plain domain name. */
const char *smtp_sender_sign_domain(const struct smtp_session *s);

/* smtp-inbound.c: SPF, DKIM, DMARC and Authentication-Results on mx (RFC 8601). */
/* The spool file is open: start checking this message (when it applies). */
void smtp_inbound_begin(struct smtp_session *s);
/* Octets just decoded into t->buf from offset `from` on. */
void smtp_inbound_scan(struct smtp_session *s, size_t from);
/* Whether the header section is still held back from the spool. */
bool smtp_inbound_holding(const struct smtp_session *s);
/* The end of the message: release a header section still held. */
void smtp_inbound_release(struct smtp_session *s);
/* End of data: check, then next(s) — or a refusal has been sent and the
 * transaction reset. */
void smtp_inbound_check(struct smtp_session *s, void (*next)(struct smtp_session *s));
/* What the commit carries: the fields to add on top ("" none) and the folder. */
void smtp_inbound_added(const struct smtp_session *s, const char **added, const char **folder);
void smtp_inbound_free(struct smtp_txn *t);

/* smtp-received.c: the Received: trace header (RFC 5321 §4.4), CRLF-terminated. */
void smtp_received_header(struct smtp_session *s, struct evbuffer *out);

#endif
