/*
 * queue-private — what the queue process's files share: the process context
 * and the state of each queued message.
 *
 * queue-process.c runs the process (fronts, commits, signing, the admin socket);
 * queue-attempt.c runs one delivery attempt of one message (local Maildirs on a
 * worker, remote recipients through the relay, then bounces and the next
 * retry); queue-bounce.c writes a delivery status notification into the spool.
 */
#ifndef RAMPART_QUEUE_PRIVATE_H
#define RAMPART_QUEUE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "queue/delivery.h"
#include "queue/dsn.h"
#include "queue/relay.h"
#include "queue/spool.h"

struct config;
struct dns_resolver;
struct dns_zone;
struct event;
struct event_base;
struct evbuffer;
struct mta_sts_cache;
struct queue_ctl;
struct queue_signer;
struct workpool;
struct qfront;
struct qmsg;

struct queue_ctx {
	const struct config *cfg;
	struct event_base *base;
	struct spool *spool;
	struct workpool *workers;
	struct qfront *fronts;
	struct qmsg *msgs;
	struct evbuffer *out;
	struct queue_signer *signer;
	struct dns_resolver *dns;
	struct dns_zone *zone;
	SSL_CTX *tls_ctx;
	struct mta_sts_cache *mta_sts;
	struct relay *relay;
	struct queue_ctl *ctl;
	/* Attempts in flight, at most cfg->queue_active_limit; due messages beyond
	 * that wait here in order (so a large backlog holds no files open). */
	unsigned active;
	struct qmsg *wait_head, **wait_tail;
	bool stopping;
};

/* A committed message waiting for (or in) a delivery attempt. */
struct qmsg {
	struct qmsg *next, **prevp;
	struct queue_ctx *q;
	struct event *timer;
	char id[SPOOL_ID_LEN + 1];
	unsigned attempts;
	bool busy;                  /* an attempt runs */
	bool waiting;               /* due, in the queue_ctx wait list */
	struct qmsg *wait_next, **wait_prevp;
	bool recovered;             /* found at start-up: an earlier copy may exist */
	bool delay_warned;
	bool hold_after, remove_after;  /* admin asked during an attempt */
	struct queue_ctl_req *ctl_req;  /* ... and waits for the answer */
	time_t next_attempt;        /* 0 = not scheduled */
	char last_error[512];
	struct qattempt *attempt;   /* while busy */
};

/* queue-attempt.c */
struct qmsg *qmsg_new(struct queue_ctx *q, const char *id, bool recovered);
/* Unlinks and frees (the message must not be busy). */
void qmsg_free(struct qmsg *m);
struct qmsg *qmsg_find(struct queue_ctx *q, const char *id);
/* Starts an attempt delay seconds from now (0 = at once). */
void qmsg_schedule(struct qmsg *m, int64_t delay);

/* queue-bounce.c: spools the notification for failed (or delayed, relayed)
 * recipients of msg; done(arg, ok) runs on the loop once the new message is
 * durable (ok) or could not be written (!ok: the caller keeps its recipients
 * pending so the bounce is tried again). The new message is scheduled. */
struct bounce_req;
typedef void bounce_done_fn(void *arg, bool ok);
void queue_bounce(struct queue_ctx *q, const struct spool_message *msg, int fd,
    const struct dsn_rcpt *rcpts, size_t n, int64_t retry_until, bounce_done_fn *done,
    void *arg);

#endif
