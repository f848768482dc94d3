/* queue-process — see queue-process.h. */
#include "queue/queue-process.h"
#include "queue/delivery.h"
#include "queue/envelope.h"
#include "queue/queue-msg.h"
#include "queue/spool.h"
#include "lib/config.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/workpool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

struct queue_ctx;
struct qfront;

/* One open transaction: a spool file in incoming/ that a front is writing. */
struct qtxn {
	struct qtxn *next;
	struct qfront *front;       /* NULL once the front went away mid-commit */
	struct queue_ctx *q;
	char id[SPOOL_ID_LEN + 1];
	int fd;
	uint32_t commit_req;        /* request id of the pending commit */
	struct spool_commit_info info;  /* what the commit reported (added, folder copied) */
	bool committing;
	int commit_rc, commit_errno;
};

struct qfront {
	struct qfront *next, **prevp;
	struct queue_ctx *q;
	struct ipc_channel *ch;
	struct qtxn *txns;
};

/* A committed message waiting for (or in) delivery. */
struct qmsg {
	struct qmsg *next, **prevp;
	struct queue_ctx *q;
	struct event *timer;
	unsigned attempts;
	bool busy, recovered;
	struct delivery_job job;
};

struct queue_ctx {
	const struct config *cfg;
	struct event_base *base;
	struct spool *spool;
	struct workpool *workers;
	struct qfront *fronts;
	struct qmsg *msgs;
	struct evbuffer *out;
	bool stopping;
};

static void qmsg_schedule(struct qmsg *m, int delay);

/* ---- transactions from fronts ---- */

static void
queue_reply(struct ipc_channel *ch, struct evbuffer *out, uint32_t type, uint32_t id,
    enum queue_status status, const char *spool_id, int fd)
{
	struct queue_result r = { status, spool_id };
	queue_result_encode(out, &r);
	ipc_send_buf(ch, type, id, out, fd);
}

static enum queue_status
status_for_errno(int errnum)
{
	return spool_error_class(errnum) == SPOOL_ERROR_NO_SPACE ? QUEUE_NO_SPACE : QUEUE_TEMPFAIL;
}

static void
queue_open(struct qfront *fr, struct ipc_frame *f)
{
	struct queue_ctx *q = fr->q;
	struct envelope *e = NULL;
	const char *error;
	int fd = -1;

	if (q->stopping) {
		queue_reply(fr->ch, q->out, QUEUE_OPEN_RES, f->id, QUEUE_TEMPFAIL, "", -1);
		return;
	}
	if (queue_open_req_decode(f->data, f->len, &e, &error) < 0) {
		log_warn("queue: bad open request from %s: %s", ipc_channel_peer(fr->ch), error);
		queue_reply(fr->ch, q->out, QUEUE_OPEN_RES, f->id, QUEUE_TEMPFAIL, "", -1);
		return;
	}
	if (spool_create(q->spool, e, &fd, &error) < 0) {
		int err = errno;
		log_error("queue: cannot create a spool file: %s", error);
		queue_reply(fr->ch, q->out, QUEUE_OPEN_RES, f->id, status_for_errno(err), "", -1);
		envelope_free(&e);
		return;
	}
	struct qtxn *t = calloc(1, sizeof(*t));
	if (t == NULL)
		fatal("out of memory");
	snprintf(t->id, sizeof(t->id), "%s", e->id);
	t->fd = fd;
	t->front = fr;
	t->q = q;
	t->next = fr->txns;
	fr->txns = t;
	queue_reply(fr->ch, q->out, QUEUE_OPEN_RES, f->id, QUEUE_OK, t->id, fd);
	envelope_free(&e);
}

static struct qtxn **
qtxn_find(struct qfront *fr, const char *id)
{
	for (struct qtxn **tp = &fr->txns; *tp != NULL; tp = &(*tp)->next)
		if (strcmp((*tp)->id, id) == 0)
			return tp;
	return NULL;
}

static void
qtxn_free(struct qtxn *t)
{
	if (t->fd >= 0)
		close(t->fd);
	free((char *)t->info.added);
	free((char *)t->info.folder);
	free(t);
}

static void
queue_abort_txn(struct queue_ctx *q, struct qtxn *t)
{
	const char *error;
	if (spool_abort(q->spool, t->id, &error) < 0)
		log_warn("queue: cannot remove aborted %s: %s", t->id, error);
	qtxn_free(t);
}

static void
commit_run(void *arg)
{
	struct qtxn *t = arg;
	const char *error;
	errno = 0;
	t->commit_rc = spool_commit_with(t->q->spool, t->id, t->fd, &t->info, &error);
	t->commit_errno = errno;
	if (t->commit_rc < 0)
		log_error("queue: commit of %s failed: %s", t->id, error);
}

static struct qmsg *qmsg_new(struct queue_ctx *q, const char *id, bool recovered);

static void
commit_done(void *arg)
{
	struct qtxn *t = arg;
	struct queue_ctx *q = t->q;
	enum queue_status st = t->commit_rc == 0 ? QUEUE_OK : status_for_errno(t->commit_errno);
	if (t->commit_rc < 0) {
		/* Nothing durable: drop the partial file so nothing half-written is kept. */
		const char *error;
		spool_abort(q->spool, t->id, &error);
	}
	if (t->front != NULL) {
		struct qtxn **tp = qtxn_find(t->front, t->id);
		if (tp != NULL)
			*tp = t->next;
		queue_reply(t->front->ch, q->out, QUEUE_COMMIT_RES, t->commit_req, st, t->id, -1);
	}
	if (st == QUEUE_OK) {
		log_info("queue: %s queued", t->id);
		qmsg_schedule(qmsg_new(q, t->id, false), 0);
	}
	qtxn_free(t);
}

static void
queue_commit(struct qfront *fr, struct ipc_frame *f)
{
	struct queue_ref ref;
	const char *error;
	struct qtxn **tp;
	if (queue_ref_decode(f->data, f->len, &ref, &error) < 0) {
		log_warn("queue: bad commit of %s from %s: %s", ref.id[0] != '\0' ? ref.id : "?",
		    ipc_channel_peer(fr->ch), error);
		/* The front answers 4xx and forgets the file: release it here. */
		if ((tp = qtxn_find(fr, ref.id)) != NULL && !(*tp)->committing) {
			struct qtxn *t = *tp;
			*tp = t->next;
			queue_abort_txn(fr->q, t);
		}
		queue_reply(fr->ch, fr->q->out, QUEUE_COMMIT_RES, f->id, QUEUE_TEMPFAIL, "", -1);
		return;
	}
	tp = qtxn_find(fr, ref.id);
	if (tp == NULL || (*tp)->committing) {
		log_warn("queue: commit of unknown transaction %s", ref.id);
		queue_reply(fr->ch, fr->q->out, QUEUE_COMMIT_RES, f->id, QUEUE_TEMPFAIL, ref.id, -1);
		return;
	}
	struct qtxn *t = *tp;
	/* The frame goes when this returns; the commit runs on a worker later. */
	char *added = malloc(ref.added_len + 1), *folder = strdup(ref.folder);
	if (added == NULL || folder == NULL)
		fatal("out of memory");
	memcpy(added, ref.added, ref.added_len + 1);
	t->info = (struct spool_commit_info){
		.data_size = ref.size, .added = added, .added_len = ref.added_len, .folder = folder,
	};
	t->committing = true;
	t->commit_req = f->id;
	workpool_submit(fr->q->workers, commit_run, commit_done, t);
}

static void
queue_abort(struct qfront *fr, struct ipc_frame *f)
{
	struct queue_ref ref;
	const char *error;
	if (queue_ref_decode(f->data, f->len, &ref, &error) < 0)
		return;
	struct qtxn **tp = qtxn_find(fr, ref.id);
	if (tp == NULL || (*tp)->committing)
		return;
	struct qtxn *t = *tp;
	*tp = t->next;
	queue_abort_txn(fr->q, t);
}

static void
queue_on_front_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct qfront *fr = arg;
	switch (f->type) {
	case QUEUE_OPEN_REQ: queue_open(fr, f); break;
	case QUEUE_COMMIT_REQ: queue_commit(fr, f); break;
	case QUEUE_ABORT: queue_abort(fr, f); break;
	default:
		log_warn("queue: unknown message type %u from %s", f->type, ipc_channel_peer(ch));
	}
}

static void
queue_on_front_close(struct ipc_channel *ch, void *arg)
{
	struct qfront *fr = arg;
	/* The front is gone: whatever it did not commit never got a 250. */
	while (fr->txns != NULL) {
		struct qtxn *t = fr->txns;
		fr->txns = t->next;
		if (t->committing)
			t->front = NULL;   /* commit_done still owns it */
		else
			queue_abort_txn(fr->q, t);
	}
	*fr->prevp = fr->next;
	if (fr->next != NULL)
		fr->next->prevp = fr->prevp;
	ipc_channel_free(&fr->ch);
	free(fr);
}

static void
queue_on_peer(const struct ctl_peer *peer, int fd, void *ctx)
{
	struct queue_ctx *q = ctx;
	char name[32];
	snprintf(name, sizeof(name), "front/%u", peer->index);
	struct qfront *fr = calloc(1, sizeof(*fr));
	if (fr == NULL)
		fatal("out of memory");
	fr->q = q;
	fr->ch = ipc_channel_new(q->base, fd, name, queue_on_front_frame, queue_on_front_close, fr);
	fr->next = q->fronts;
	if (fr->next != NULL)
		fr->next->prevp = &fr->next;
	fr->prevp = &q->fronts;
	q->fronts = fr;
}

/* ---- delivery ---- */

static void qmsg_on_timer(evutil_socket_t fd, short what, void *arg);

static struct qmsg *
qmsg_new(struct queue_ctx *q, const char *id, bool recovered)
{
	struct qmsg *m = calloc(1, sizeof(*m));
	if (m == NULL)
		fatal("out of memory");
	m->q = q;
	m->recovered = recovered;
	snprintf(m->job.id, sizeof(m->job.id), "%s", id);
	m->job.spool = q->spool;
	m->job.mail_dir = q->cfg->mail_dir;
	m->job.hostname = q->cfg->hostname;
	m->timer = evtimer_new(q->base, qmsg_on_timer, m);
	m->next = q->msgs;
	if (m->next != NULL)
		m->next->prevp = &m->next;
	m->prevp = &q->msgs;
	q->msgs = m;
	return m;
}

static void
qmsg_free(struct qmsg *m)
{
	*m->prevp = m->next;
	if (m->next != NULL)
		m->next->prevp = m->prevp;
	event_free(m->timer);
	free(m);
}

static void
deliver_run(void *arg)
{
	struct qmsg *m = arg;
	m->job.check_existing = m->recovered || m->attempts > 1;
	delivery_run(&m->job);
}

static void
deliver_done(void *arg)
{
	struct qmsg *m = arg;
	struct queue_ctx *q = m->q;
	m->busy = false;
	switch (m->job.outcome) {
	case DELIVERY_COMPLETE:
		log_info("queue: %s delivered (%u mailbox%s)", m->job.id, m->job.delivered,
		    m->job.delivered == 1 ? "" : "es");
		qmsg_free(m);
		return;
	case DELIVERY_GONE:
		qmsg_free(m);
		return;
	case DELIVERY_RETRY:
		break;
	}
	if (q->stopping)
		return;
	int64_t delay = q->cfg->queue_retry_min;
	for (unsigned i = 1; i < m->attempts && delay < q->cfg->queue_retry_max; i++)
		delay *= 2;
	if (delay > q->cfg->queue_retry_max)
		delay = q->cfg->queue_retry_max;
	log_warn("queue: %s deferred (attempt %u): %s; retry in %llds", m->job.id, m->attempts,
	    m->job.error, (long long)delay);
	qmsg_schedule(m, (int)delay);
}

static void
qmsg_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct qmsg *m = arg;
	if (m->busy || m->q->stopping)
		return;
	m->busy = true;
	m->attempts++;
	workpool_submit(m->q->workers, deliver_run, deliver_done, m);
}

static void
qmsg_schedule(struct qmsg *m, int delay)
{
	struct timeval tv = { delay, 0 };
	evtimer_add(m->timer, &tv);
}

static int
queue_recover_one(const char *id, void *ctx)
{
	struct queue_ctx *q = ctx;
	qmsg_schedule(qmsg_new(q, id, true), 0);
	return 0;
}

static void
queue_on_stop(unsigned grace, bool drain, void *ctx)
{
	struct queue_ctx *q = ctx;
	q->stopping = true;
	event_base_loopexit(q->base, NULL);
}

int
queue_process_main(const struct config *cfg, int ctl_fd)
{
	static const struct proc_hooks hooks = { queue_on_peer, queue_on_stop };
	struct queue_ctx q = { .cfg = cfg };
	const char *error;

	proc_set_role("queue");
	proc_drop_privileges(cfg, "queue");
	if (spool_open(cfg->spool_dir, &q.spool, &error) < 0)
		fatal("queue: %s", error);
	if (spool_clean_incoming(q.spool, &error) < 0)
		log_error("queue: cleaning incoming/: %s", error);
	q.base = event_base_new();
	q.out = evbuffer_new();
	if (q.base == NULL || q.out == NULL)
		fatal("queue: out of memory");
	q.workers = workpool_new(q.base, (unsigned)cfg->delivery_workers, "delivery");
	struct ipc_channel *ctl = proc_control_attach(q.base, ctl_fd, &hooks, &q);
	if (spool_list(q.spool, queue_recover_one, &q, &error) < 0)
		log_error("queue: listing the queue: %s", error);
	proc_ready(ctl);
	event_base_dispatch(q.base);

	/* Finish what is running: commits answer their fronts, deliveries record. */
	workpool_free(&q.workers);
	while (q.fronts != NULL)
		queue_on_front_close(q.fronts->ch, q.fronts);
	while (q.msgs != NULL)
		qmsg_free(q.msgs);
	ipc_channel_free(&ctl);
	spool_close(&q.spool);
	evbuffer_free(q.out);
	event_base_free(q.base);
	return 0;
}
