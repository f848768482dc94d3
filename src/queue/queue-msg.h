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
 */
#ifndef RAMPART_QUEUE_MSG_H
#define RAMPART_QUEUE_MSG_H

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

/* QUEUE_COMMIT_REQ and QUEUE_ABORT. */
struct queue_ref {
	const char *id;
	uint64_t size;           /* bytes the front wrote after the envelope (commit only) */
};
void queue_ref_encode(struct evbuffer *b, const struct queue_ref *m);
int queue_ref_decode(const void *data, size_t len, struct queue_ref *m, const char **error_r);

#endif
