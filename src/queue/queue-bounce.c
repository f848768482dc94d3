/*
 * queue-bounce — writing a delivery status notification into the spool
 * (queue-private.h, dsn.h).
 *
 * On a worker: dsn_compose() reads the original from its spool fd, then the
 * notification becomes a new spool message like any other (spool_create,
 * write, spool_commit: durable before the original's recipients are marked
 * FAILED). Its envelope: the null reverse-path (RFC 5321 §4.5.5, RFC 3461
 * §6.2), one recipient, the original envelope sender. Mail that left through
 * the relay was always submitted by an authenticated user (nothing else may
 * relay), so a notification about it goes to that user's own mailbox; any
 * other goes out to the sender's address through the relay.
 */
#include "queue/queue-private.h"
#include "queue/envelope.h"
#include "lib/fdio.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/workpool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct bounce_req {
	struct queue_ctx *q;
	struct dsn_params params;
	struct envelope *env;       /* of the notification */
	bounce_done_fn *done;
	void *arg;
	bool ok;
	char id[SPOOL_ID_LEN + 1];
};

static void
bounce_run(void *arg)
{
	struct bounce_req *b = arg;
	const char *error = NULL;
	char *text = NULL;
	size_t len = 0;
	int fd = -1;

	if (dsn_compose(&b->params, &text, &len, &error) < 0) {
		log_error("queue: notification about %s: %s", b->params.env->id, error);
		return;
	}
	if (dsn_has_8bit(text, len))
		b->env->body = ENVELOPE_BODY_8BITMIME;
	b->env->size_declared = len;
	if (spool_create(b->q->spool, b->env, &fd, &error) < 0) {
		log_error("queue: notification about %s: %s", b->params.env->id, error);
		free(text);
		return;
	}
	snprintf(b->id, sizeof(b->id), "%s", b->env->id);
	if (fd_write_all(fd, text, len) < 0 || spool_commit(b->q->spool, b->id, fd, &error) < 0) {
		log_error("queue: notification about %s: %s", b->params.env->id,
		    error != NULL ? error : strerror(errno));
		spool_abort(b->q->spool, b->id, &error);
	} else {
		b->ok = true;
	}
	close(fd);
	free(text);
}

static void
bounce_done(void *arg)
{
	struct bounce_req *b = arg;
	if (b->ok) {
		log_info("queue: %s: notification %s queued for <%s>", b->params.env->id, b->id,
		    b->params.env->mail_from);
		if (!b->q->stopping)
			qmsg_schedule(qmsg_new(b->q, b->id, false), 0);
	}
	b->done(b->arg, b->ok);
	envelope_free(&b->env);
	free(b);
}

void
queue_bounce(struct queue_ctx *q, const struct spool_message *msg, int fd,
    const struct dsn_rcpt *rcpts, size_t n, int64_t retry_until, bounce_done_fn *done,
    void *arg)
{
	const struct envelope *orig = msg->envelope;
	struct bounce_req *b = calloc(1, sizeof(*b));
	struct envelope *e = envelope_new();
	if (b == NULL || e == NULL)
		fatal("out of memory");
	const char *mailbox = orig->auth_user;   /* NULL: the sender is elsewhere */
	if (envelope_set_str(&e->mail_from, "") < 0 ||
	    envelope_set_str(&e->helo, q->cfg->hostname) < 0 ||
	    envelope_set_str(&e->client_addr, "127.0.0.1") < 0 ||
	    envelope_set_str(&e->listener, "notification") < 0 ||
	    envelope_add_rcpt(e, orig->mail_from, mailbox, NULL, ENVELOPE_NOTIFY_NEVER) < 0)
		fatal("out of memory");
	e->smtputf8 = orig->smtputf8;
	e->received_at = time(NULL);
	b->q = q;
	b->env = e;
	b->done = done;
	b->arg = arg;
	b->params = (struct dsn_params){
		.reporting_mta = q->cfg->hostname,
		.env = orig,
		.rcpts = rcpts,
		.nrcpts = n,
		.now = time(NULL),
		.retry_until = retry_until,
		.fd = fd,
		.offset = msg->data_offset,
		.end = msg->data_end,
		.prepend = msg->added,
		.prepend_len = msg->added_len,
	};
	workpool_submit(q->workers, bounce_run, bounce_done, b);
}
