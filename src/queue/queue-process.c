/* queue-process — see queue-process.h. */
#include "queue/queue-process.h"
#include "queue/queue-private.h"
#include "queue/envelope.h"
#include "queue/mta-sts.h"
#include "queue/queue-ctl.h"
#include "queue/queue-msg.h"
#include "queue/queue-sign.h"
#include "queue/relay.h"
#include "queue/relay-secret.h"
#include "queue/spool.h"
#include "dns/dns.h"
#include "lib/config.h"
#include "lib/ctl-msg.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/workpool.h"
#include "net/tls.h"
#include "net/tls-client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

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
	off_t data_offset;          /* where the message starts in the file */
	char *sign_domain;          /* sign for this domain before committing */
};

struct qfront {
	struct qfront *next, **prevp;
	struct queue_ctx *q;
	struct ipc_channel *ch;
	struct qtxn *txns;
};


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
	t->data_offset = lseek(fd, 0, SEEK_CUR);
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
	free(t->sign_domain);
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

/* The DKIM-Signature fields go on top of what the front added (RFC 6376 §5.6:
 * prepended to the header). */
static void
commit_signed(void *arg, char *fields, const char *error)
{
	struct qtxn *t = arg;
	if (fields == NULL) {
		log_error("queue: %s: DKIM signing for %s failed: %s", t->id, t->sign_domain, error);
		t->commit_rc = -1;
		t->commit_errno = EAGAIN;
		commit_done(t);
		return;
	}
	size_t flen = strlen(fields);
	if (flen > 0) {
		char *added = malloc(flen + t->info.added_len + 1);
		if (added == NULL)
			fatal("out of memory");
		memcpy(added, fields, flen);
		memcpy(added + flen, t->info.added, t->info.added_len + 1);
		free((char *)t->info.added);
		t->info.added = added;
		t->info.added_len += flen;
	}
	free(fields);
	workpool_submit(t->q->workers, commit_run, commit_done, t);
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
	if (ref.sign_domain[0] != '\0') {
		if ((t->sign_domain = strdup(ref.sign_domain)) == NULL)
			fatal("out of memory");
		queue_signer_sign(fr->q->signer, t->sign_domain, t->fd, t->data_offset,
		    t->data_offset + (off_t)ref.size, commit_signed, t);
		return;
	}
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
	if (peer->kind == PROC_KEYS) {
		queue_signer_attach(q->signer, fd);
		return;
	}
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

static int
queue_recover_one(const char *id, void *ctx)
{
	struct queue_ctx *q = ctx;
	qmsg_schedule(qmsg_new(q, id, true), 0);
	return 0;
}

/* ---- the admin socket (queue-ctl.h) ---- */

static struct qmsg *
ctl_find(struct queue_ctx *q, const char *id, const char **error_r)
{
	struct qmsg *m = qmsg_find(q, id);
	if (m == NULL)
		*error_r = "no queued message with that id";
	return m;
}

static int
ctl_retry(const char *id, void *ctx, const char **error_r)
{
	struct qmsg *m = ctl_find(ctx, id, error_r);
	if (m == NULL)
		return -1;
	if (!m->busy)
		qmsg_schedule(m, 0);
	log_info("queue: %s: retry now, as the operator asked", id);
	return 0;
}

static int
ctl_retry_all(void *ctx, const char **error_r)
{
	struct queue_ctx *q = ctx;
	for (struct qmsg *m = q->msgs; m != NULL; m = m->next)
		if (!m->busy)
			qmsg_schedule(m, 0);
	log_info("queue: retrying every message now, as the operator asked");
	return 0;
}

/* An operator's change to a message in a delivery attempt is made when the
 * attempt ends (queue-attempt.c), and answered then: one such request at a time. */
static int
after_attempt(struct queue_ctx *q, struct qmsg *m, bool *flag, const char **error_r)
{
	if (m->ctl_req != NULL) {
		*error_r = "another request for this message waits for its delivery attempt";
		return -1;
	}
	*flag = true;
	m->ctl_req = queue_ctl_defer(q->ctl);
	return 1;
}

static int
ctl_remove(const char *id, void *ctx, const char **error_r)
{
	struct queue_ctx *q = ctx;
	enum spool_place place;
	if (qmsg_find(q, id) == NULL && spool_locate(q->spool, id, &place, error_r) == 0 &&
	    place == SPOOL_HELD) {
		if (spool_remove_held(q->spool, id, error_r) < 0)
			return -1;
		log_info("queue: %s (held) deleted by the operator", id);
		return 0;
	}
	struct qmsg *m = ctl_find(q, id, error_r);
	if (m == NULL)
		return -1;
	if (m->busy)
		return after_attempt(q, m, &m->remove_after, error_r);
	if (spool_remove(q->spool, id, error_r) < 0)
		return -1;
	log_info("queue: %s deleted by the operator", id);
	qmsg_free(m);
	return 0;
}

static int
ctl_hold(const char *id, void *ctx, const char **error_r)
{
	struct queue_ctx *q = ctx;
	struct qmsg *m = ctl_find(q, id, error_r);
	if (m == NULL)
		return -1;
	if (m->busy)
		return after_attempt(q, m, &m->hold_after, error_r);
	if (spool_hold(q->spool, id, error_r) < 0)
		return -1;
	log_info("queue: %s held by the operator", id);
	qmsg_free(m);
	return 0;
}

static int
ctl_release(const char *id, void *ctx, const char **error_r)
{
	struct queue_ctx *q = ctx;
	if (qmsg_find(q, id) != NULL) {
		*error_r = "that message is not held";
		return -1;
	}
	if (spool_release(q->spool, id, error_r) < 0)
		return -1;
	log_info("queue: %s released by the operator", id);
	qmsg_schedule(qmsg_new(q, id, true), 0);
	return 0;
}

static int
ctl_show(const char *id, FILE *out, void *ctx, const char **error_r)
{
	struct queue_ctx *q = ctx;
	enum spool_place place;
	if (qmsg_find(q, id) == NULL && spool_locate(q->spool, id, &place, error_r) == 0 &&
	    place == SPOOL_HELD) {
		fprintf(out, "state: held (rampart queue release %s)\n", id);
		return 0;
	}
	struct qmsg *m = ctl_find(q, id, error_r);
	if (m == NULL)
		return -1;
	fprintf(out, "attempts: %u\n", m->attempts);
	if (m->busy)
		fprintf(out, "state: being delivered now\n");
	else if (m->waiting)
		fprintf(out, "state: due, waiting for a delivery slot\n");
	else if (m->next_attempt > 0)
		fprintf(out, "next attempt: in %llds\n",
		    (long long)(m->next_attempt - time(NULL) > 0 ? m->next_attempt - time(NULL) : 0));
	if (m->last_error[0] != '\0')
		fprintf(out, "last error: %s\n", m->last_error);
	return 0;
}

static const struct queue_ctl_ops ctl_ops = {
	.retry = ctl_retry, .remove = ctl_remove, .hold = ctl_hold, .release = ctl_release,
	.show = ctl_show, .retry_all = ctl_retry_all,
};

static void
queue_on_stop(unsigned grace, bool drain, void *ctx)
{
	struct queue_ctx *q = ctx;
	q->stopping = true;
	event_base_loopexit(q->base, NULL);
}

/* DNS for routing: the static zone when configured, else libunbound. Opened
 * before privileges are dropped (the trust anchor and zone files). */
static void
queue_open_dns(struct queue_ctx *q)
{
	const struct config *cfg = q->cfg;
	const char *error = "out of memory";
	if (cfg->dns_zone[0] != '\0') {
		if ((q->zone = dns_zone_load(cfg->dns_zone, &error)) == NULL)
			fatal("queue: %s", error);
		q->dns = dns_resolver_zone_new(q->base, q->zone);
	} else {
		q->dns = dns_resolver_unbound_new(q->base, cfg->dns_resolver,
		    cfg->dns_resolver[0] == '\0', cfg->dns_trust_anchor,
		    (unsigned)cfg->dns_timeout, &error);
	}
	if (q->dns == NULL)
		fatal("queue: DNS: %s", error);
}

int
queue_process_main(const struct config *cfg, int ctl_fd)
{
	static const struct proc_hooks hooks = { queue_on_peer, queue_on_stop };
	struct queue_ctx q = { .cfg = cfg };
	q.wait_tail = &q.wait_head;
	const char *error;
	char *tls_error = NULL;

	proc_set_role("queue");
	q.base = event_base_new();
	q.out = evbuffer_new();
	if (q.base == NULL || q.out == NULL)
		fatal("queue: out of memory");
	queue_open_dns(&q);
	if ((q.tls_ctx = tls_client_ctx_new(cfg->relay_ca_file, &tls_error)) == NULL)
		fatal("queue: outgoing TLS: %s", tls_error != NULL ? tls_error : "failed");
	/* The smarthost password: read here, by this process alone (relay-secret.h),
	 * before privileges go (the file may be root's). Fail closed. */
	char *relay_password = NULL;
	if (cfg->relay_password_file[0] != '\0' &&
	    relay_secret_load(cfg->relay_password_file, &relay_password, &error) < 0)
		fatal("queue: relay.password_file %s %s", cfg->relay_password_file, error);
	proc_drop_privileges(cfg, "queue");
	if (spool_open(cfg->spool_dir, &q.spool, &error) < 0)
		fatal("queue: %s", error);
	if (spool_clean_incoming(q.spool, &error) < 0)
		log_error("queue: cleaning incoming/: %s", error);
	q.workers = workpool_new(q.base, (unsigned)cfg->delivery_workers, "delivery");
	q.signer = queue_signer_new(q.base, q.workers);
	if (q.signer == NULL)
		fatal("queue: out of memory");
	if (cfg->relay_mta_sts && cfg->relay_host[0] == '\0') {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/mta-sts", cfg->spool_dir);
		q.mta_sts = mta_sts_cache_new(q.base, q.dns, q.tls_ctx, dir,
		    (unsigned)cfg->relay_mta_sts_port, 30, &error);
		if (q.mta_sts == NULL)
			log_error("queue: MTA-STS off: %s", error);
	}
	q.relay = relay_new(q.base, cfg, q.dns, q.tls_ctx, q.mta_sts, relay_password);
	if (q.relay == NULL)
		fatal("queue: out of memory");
	/* It holds the spool lock that keeps `rampart queue` off the files while
	 * we run: no queue process without it (the parent restarts us). */
	q.ctl = queue_ctl_new(q.base, cfg->spool_dir, &ctl_ops, &q, &error);
	if (q.ctl == NULL)
		fatal("queue: admin socket: %s", error);
	struct ipc_channel *ctl = proc_control_attach(q.base, ctl_fd, &hooks, &q);
	if (spool_list(q.spool, queue_recover_one, &q, &error) < 0)
		log_error("queue: listing the queue: %s", error);
	proc_ready(ctl);
	event_base_dispatch(q.base);

	/* Finish what is running: commits answer their fronts, deliveries record;
	 * then outgoing connections close (their messages stay queued). */
	workpool_free(&q.workers);
	relay_free(&q.relay);
	relay_secret_free(&relay_password);
	while (q.fronts != NULL)
		queue_on_front_close(q.fronts->ch, q.fronts);
	while (q.msgs != NULL) {
		q.msgs->busy = false;
		qmsg_free(q.msgs);
	}
	queue_ctl_free(&q.ctl);
	queue_signer_free(&q.signer);
	mta_sts_cache_free(&q.mta_sts);
	dns_resolver_free(&q.dns);
	dns_zone_free(&q.zone);
	tls_ctx_free(&q.tls_ctx);
	ipc_channel_free(&ctl);
	spool_close(&q.spool);
	evbuffer_free(q.out);
	event_base_free(q.base);
	return 0;
}
