/*
 * queue-msg — messages between a front process and the queue process.
 *
 * A transaction: QUEUE_OPEN_REQ carries the envelope; the answer carries the
 * spool id and, as a passed descriptor, the spool file opened for appending, into
 * which the front writes the Received: header and the message. QUEUE_COMMIT_REQ
 * asks the queue to make it durable (fsync file, rename, fsync directory); only
 * after QUEUE_COMMIT_RES with status OK may the front answer 250. QUEUE_ABORT
 * releases an opened file (no answer). Each type's encoder and decoder sit side
 * by side here.
 *
 * The commit may carry what the front learnt only at the end of the data (mail
 * authentication on the mx listener): header fields to put above the message
 * when it is delivered (our Authentication-Results, RFC 8601 §5) and the folder
 * to deliver it to ("Junk" when DMARC says quarantine, RFC 7489 §6.3). The queue
 * keeps both in the spool file with the message (spool.h, version 2).
 */
#ifndef RAMPART_QUEUE_MSG_H
#define RAMPART_QUEUE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct envelope;
struct evbuffer;

enum queue_msg_type {
	QUEUE_OPEN_REQ = 200,
	QUEUE_OPEN_RES,
	QUEUE_COMMIT_REQ,
	QUEUE_COMMIT_RES,
	QUEUE_ABORT,
};

enum queue_status {
	QUEUE_OK,
	QUEUE_TEMPFAIL,        /* 451 4.3.0 */
	QUEUE_NO_SPACE,        /* 452 4.3.1 (RFC 3463: mail system full) */
};

/* QUEUE_OPEN_REQ: the envelope (queue/envelope.h). */
void queue_open_req_encode(struct evbuffer *b, const struct envelope *e);
int queue_open_req_decode(const void *data, size_t len, struct envelope **e_r,
    const char **error_r);

/* QUEUE_OPEN_RES (with the spool fd when status is OK); QUEUE_COMMIT_RES. */
struct queue_result {
	enum queue_status status;
	const char *id;          /* spool id ("" on failure) */
};
void queue_result_encode(struct evbuffer *b, const struct queue_result *m);
int queue_result_decode(const void *data, size_t len, struct queue_result *m,
    const char **error_r);

/* The most header text a commit may add above a message. */
#define QUEUE_ADDED_MAX (64 * 1024)

/* QUEUE_COMMIT_REQ and QUEUE_ABORT. Fields after size are for the commit; an
 * abort leaves them zero (NULL, 0). */
struct queue_ref {
	const char *id;
	uint64_t size;           /* bytes the front wrote after the envelope (commit only):
	                          * the queue checks the file holds exactly that many */
	/* Header fields to put above the message on delivery: complete fields with
	 * CRLF line ends, at most QUEUE_ADDED_MAX octets (queue_added_check()).
	 * NULL or added_len 0 = none. Encoding reads added_len octets; decoded, it is
	 * NUL-terminated (added[added_len] == '\0') and points into the frame. */
	const char *added;
	size_t added_len;
	/* NULL or "" = INBOX; otherwise a folder queue_folder_valid() accepts.
	 * Decoded, never NULL. */
	const char *folder;
	/* Authenticated submissions: the From: domain (lower case, LDH labels) the
	 * queue signs the message for (DKIM, queue-sign.h) when it has a key; NULL
	 * or "" = do not sign. Decoded, never NULL. */
	const char *sign_domain;
};
/* Whether d is a lower-case LDH domain name fit for sign_domain. */
bool queue_sign_domain_valid(const char *d);
/* Encodes as given; the queue refuses (QUEUE_TEMPFAIL) a commit whose added or
 * folder is not valid, so a front checks them first with the functions below. */
void queue_ref_encode(struct evbuffer *b, const struct queue_ref *m);
/* Checks every limit: added as queue_added_check(), folder as
 * queue_folder_valid(). On failure m->id is still the decoded id when that much
 * was readable ("" otherwise), so the queue can release the transaction. */
int queue_ref_decode(const void *data, size_t len, struct queue_ref *m, const char **error_r);

/*
 * Whether added (len octets) is a header section fragment the queue will put
 * above a message: at most QUEUE_ADDED_MAX octets; a sequence of lines, each
 * ending with CRLF and at most 998 octets before it (RFC 5322 §2.1.1); no NUL,
 * no bare CR or LF, no other control character than HTAB; the first line of each
 * field is "name:" (name = printable US-ASCII except ':', RFC 5322 §3.6.8)
 * followed by the value; a continuation line starts with SP or HTAB and holds
 * something other than white space (RFC 5322 §3.2.2: a line of only white space
 * is obsolete folding and could read as the end of the header). 8-bit octets are
 * allowed in values (RFC 6532). len 0 is valid (nothing to add).
 * 0 when valid, else -1 with *error_r.
 */
int queue_added_check(const char *added, size_t len, const char **error_r);

/* Whether folder names a folder the queue delivers to: "" (INBOX) or "Junk".
 * Strict because the name reaches the file system (maildir.h). */
bool queue_folder_valid(const char *folder);

#endif
