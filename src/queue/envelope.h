/*
 * envelope — what the queue knows about one message besides its bytes.
 *
 * An envelope is built by the front process from the SMTP transaction (MAIL FROM
 * and its parameters, the RCPTs, who the client is), sent to the queue process
 * over IPC (envelope_wire_put / envelope_wire_get, side by side below) and written
 * into the message's spool file (spool.h). Every string is owned by the envelope
 * and freed by envelope_free(). Required strings are never NULL ("" when unknown);
 * the optional ones say so below.
 *
 * One RCPT that expands (aliases) to several local mailboxes is stored as several
 * recipient entries with the same `address`, one per `mailbox`, so that delivery
 * status is tracked per mailbox.
 */
#ifndef RAMPART_QUEUE_ENVELOPE_H
#define RAMPART_QUEUE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct evbuffer;
struct wire_reader;

/* Limits enforced by envelope_check(), hence by the IPC decoder and the spool
 * loader. RFC 5321 §4.5.3.1 limits paths to 256 octets and RFC 3461 §4.2 an
 * ORCPT to 500 characters; 1024 bytes leaves room for both. */
#define ENVELOPE_MAX_RCPTS 10000
#define ENVELOPE_MAX_STR 1024

/* BODY= of MAIL FROM (RFC 6152). */
enum envelope_body {
	ENVELOPE_BODY_7BIT,
	ENVELOPE_BODY_8BITMIME,
};

/* RET= of MAIL FROM (RFC 3461 §4.3); NONE when not given. */
enum envelope_ret {
	ENVELOPE_RET_NONE,
	ENVELOPE_RET_FULL,
	ENVELOPE_RET_HDRS,
};

/* NOTIFY= of RCPT TO (RFC 3461 §4.1), a bit mask. 0 means "not given" (the
 * RFC's default then is FAILURE,DELAY). NEVER cannot be combined with others. */
#define ENVELOPE_NOTIFY_NEVER   0x01u
#define ENVELOPE_NOTIFY_SUCCESS 0x02u
#define ENVELOPE_NOTIFY_FAILURE 0x04u
#define ENVELOPE_NOTIFY_DELAY   0x08u
#define ENVELOPE_NOTIFY_MASK    0x0fu

enum envelope_rcpt_status {
	ENVELOPE_RCPT_PENDING,  /* not delivered yet */
	ENVELOPE_RCPT_DONE,     /* delivered (or relayed) */
	ENVELOPE_RCPT_FAILED,   /* permanently failed; a bounce is due or was sent */
};

struct envelope_rcpt {
	char *address;          /* as given in RCPT TO, normalised; never "" */
	char *mailbox;          /* the local mailbox after alias expansion; NULL = remote */
	char *orcpt;            /* ORCPT= (RFC 3461 §4.2), "addr-type;xtext"; may be NULL */
	unsigned notify;        /* ENVELOPE_NOTIFY_* bits, 0 = not given */
	enum envelope_rcpt_status status;
	/* Where this recipient's status byte lives in its spool file, -1 when the
	 * envelope is not (yet) backed by one. Set by spool_create and spool_load;
	 * not sent over IPC. */
	off_t status_offset;
};

struct envelope {
	char *id;               /* spool id; NULL until spool_create() assigns one */
	char *mail_from;        /* reverse-path; "" is the null sender <> */
	enum envelope_body body;
	bool smtputf8;          /* SMTPUTF8 given (RFC 6531) */
	enum envelope_ret ret;
	char *envid;            /* ENVID= (RFC 3461 §4.4), may be NULL */
	uint64_t size_declared; /* SIZE= (RFC 1870), 0 when not given */
	char *helo;             /* the EHLO/HELO argument */
	char *client_addr;      /* numeric IP address of the client, as text */
	uint16_t client_port;
	char *listener;         /* name of the listener the client came in on */
	char *auth_user;        /* authenticated user, NULL when none */
	int64_t received_at;    /* unix time the transaction started */

	struct envelope_rcpt *rcpts;
	size_t rcpt_count;
	size_t rcpt_alloc;
};

/* A new empty envelope: required strings "", optional ones NULL, no recipients,
 * body 7BIT, ret NONE. NULL when out of memory. */
struct envelope *envelope_new(void);
/* Frees everything and sets *e to NULL; NULL and *e == NULL are fine. */
void envelope_free(struct envelope **e);

/* Replaces the owned string *field (any char * member of an envelope or one of
 * its recipients) by a copy of value (NULL allowed for optional fields):
 *     envelope_set_str(&e->helo, "client.example.org");
 * -1 when out of memory (the field is then unchanged). */
int envelope_set_str(char **field, const char *value);

/* Appends a recipient with status PENDING. mailbox and orcpt may be NULL.
 * -1 when out of memory or when ENVELOPE_MAX_RCPTS are already there. */
int envelope_add_rcpt(struct envelope *e, const char *address, const char *mailbox,
    const char *orcpt, unsigned notify);

/* The number of recipients still PENDING. */
size_t envelope_pending_count(const struct envelope *e);

/* Checks the invariants every consumer relies on: required strings present,
 * lengths within ENVELOPE_MAX_STR, no control characters (bytes < 0x20 and 0x7f)
 * in any string, enums and notify masks valid, recipient addresses non-empty,
 * at most ENVELOPE_MAX_RCPTS recipients. 0 when fine, else -1 and a sentence. */
int envelope_check(const struct envelope *e, const char **error_r);

/* IPC encoding (lib/wire.h). The decoder allocates a new envelope, bounds every
 * count and length and runs envelope_check(); on any failure it sets r->bad
 * (so wire_reader_finish() reports it), leaves *e_r NULL and returns -1. It does
 * not require the reader to be at its end: an envelope may be part of a larger
 * message. status_offset is not transmitted (decoded as -1). */
void envelope_wire_put(struct evbuffer *b, const struct envelope *e);
int envelope_wire_get(struct wire_reader *r, struct envelope **e_r);

#endif
