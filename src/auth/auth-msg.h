/*
 * auth-msg — messages between a front process and the auth process.
 *
 * The front never opens the directory: it asks whether a recipient is local
 * (RCPT), whether credentials are good (a login: the auth process applies the
 * guard, checks the hash and answers with a decision, never with a hash), and
 * whether an authenticated user may use a sender address (MAIL FROM, From:).
 * Each type's encoder and decoder sit side by side here.
 */
#ifndef RAMPART_AUTH_MSG_H
#define RAMPART_AUTH_MSG_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define AUTH_MAX_MAILBOXES 1000

enum auth_msg_type {
	AUTH_RCPT_REQ = 100,
	AUTH_RCPT_RES,
	AUTH_LOGIN_REQ,
	AUTH_LOGIN_RES,
	AUTH_SENDER_REQ,
	AUTH_SENDER_RES,
	AUTH_LOGIN_REPORT,   /* one-way: a refusal the front decided, for the audit log */
};

enum auth_rcpt_status {
	AUTH_RCPT_OK,            /* local; mailboxes lists where it is delivered */
	AUTH_RCPT_NOT_LOCAL,     /* the domain is not ours */
	AUTH_RCPT_NO_SUCH_USER,  /* our domain, nobody by that name */
	AUTH_RCPT_TEMPFAIL,      /* the directory could not answer now */
};

struct auth_rcpt_req {
	const char *address;     /* normalised mailbox, local@domain */
};
void auth_rcpt_req_encode(struct evbuffer *b, const struct auth_rcpt_req *m);
int auth_rcpt_req_decode(const void *data, size_t len, struct auth_rcpt_req *m,
    const char **error_r);

struct auth_rcpt_res {
	enum auth_rcpt_status status;
	uint32_t nmailboxes;
	const char *mailboxes[AUTH_MAX_MAILBOXES];   /* point into the frame */
};
void auth_rcpt_res_encode(struct evbuffer *b, const struct auth_rcpt_res *m);
/* m is large: callers allocate it, not the stack of a deep call chain. */
int auth_rcpt_res_decode(const void *data, size_t len, struct auth_rcpt_res *m,
    const char **error_r);

/* ---- login ---- */

/* Longest secret a login may carry (passwords: 255 octets, RFC 4616 §2; room
 * for app passwords and tokens later). */
#define AUTH_SECRET_MAX 4096

/* The protocol a login is for: each can be switched off per user and domain. */
enum auth_protocol {
	AUTH_PROTO_SMTP,
	AUTH_PROTO_IMAP,
	AUTH_PROTO_POP3,
};
const char *auth_protocol_name(enum auth_protocol p);

struct auth_login_req {
	enum auth_protocol protocol;
	const char *listener;     /* listener name */
	const char *mech;         /* SASL mechanism name */
	const char *ip;           /* client address, text */
	uint32_t port;
	const char *tls;          /* "TLSv1.3", or "" without TLS */
	const char *session;      /* session id for the audit log */
	const char *authzid;      /* "" when absent */
	const char *authcid;      /* the login name as the client gave it */
	const void *secret;       /* NOT NUL-terminated */
	size_t secret_len;
};
/* The frame holds the secret: senders and receivers wipe it (ipc does). */
void auth_login_req_encode(struct evbuffer *b, const struct auth_login_req *m);
int auth_login_req_decode(const void *data, size_t len, struct auth_login_req *m,
    const char **error_r);

enum auth_login_status {
	AUTH_LOGIN_OK,
	AUTH_LOGIN_FAIL,          /* 535 5.7.8 after delay_ms */
	AUTH_LOGIN_TEMPFAIL,      /* 454 4.7.0 (directory or hashing unavailable, busy) */
};

/* Why a login failed: the audit log's reason; the client only ever sees 535. */
enum auth_fail_reason {
	AUTH_REASON_NONE,
	AUTH_REASON_BAD_CREDENTIALS,
	AUTH_REASON_UNKNOWN_USER,
	AUTH_REASON_LOCKED_OUT,
	AUTH_REASON_RATE_LIMITED,
	AUTH_REASON_BLOCKED,
	AUTH_REASON_TLS_REQUIRED,
	AUTH_REASON_MECH_DISABLED,
	AUTH_REASON_PROTOCOL_DISABLED,
	AUTH_REASON_NETWORK_NOT_ALLOWED,
	AUTH_REASON_ACCOUNT_DISABLED,
	AUTH_REASON_MALFORMED,
	AUTH_REASON_CANCELLED,
	AUTH_REASON_TEMPORARY,
	AUTH_REASON_COUNT
};
/* "bad-credentials", "unknown-user", ...: the audit log's words. */
const char *auth_fail_reason_name(enum auth_fail_reason r);

struct auth_login_res {
	enum auth_login_status status;
	enum auth_fail_reason reason;
	uint32_t delay_ms;        /* wait this long before answering the client */
	const char *user;         /* OK: the canonical address logged in, else "" */
};
void auth_login_res_encode(struct evbuffer *b, const struct auth_login_res *m);
int auth_login_res_decode(const void *data, size_t len, struct auth_login_res *m,
    const char **error_r);

/*
 * A refusal the front decided itself (TLS required, unknown mechanism, client
 * cancelled, malformed exchange) still goes to the audit log: the front reports
 * it with this message (no answer expected). secret is always empty.
 */
struct auth_login_report {
	struct auth_login_req login;
	enum auth_fail_reason reason;
};
void auth_login_report_encode(struct evbuffer *b, const struct auth_login_report *m);
int auth_login_report_decode(const void *data, size_t len, struct auth_login_report *m,
    const char **error_r);

/* ---- sender rights ---- */

struct auth_sender_req {
	const char *user;         /* the authenticated canonical address */
	const char *address;      /* the envelope or header sender to check */
};
void auth_sender_req_encode(struct evbuffer *b, const struct auth_sender_req *m);
int auth_sender_req_decode(const void *data, size_t len, struct auth_sender_req *m,
    const char **error_r);

enum auth_sender_status {
	AUTH_SENDER_OK,           /* the user owns it: own address, alias, send-as grant */
	AUTH_SENDER_DENIED,       /* 553 5.7.1 */
	AUTH_SENDER_TEMPFAIL,     /* 451 4.3.0 */
};
struct auth_sender_res {
	enum auth_sender_status status;
};
void auth_sender_res_encode(struct evbuffer *b, const struct auth_sender_res *m);
int auth_sender_res_decode(const void *data, size_t len, struct auth_sender_res *m,
    const char **error_r);

#endif
