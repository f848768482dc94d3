/*
 * queue-attempt — one delivery attempt of one queued message (queue-private.h).
 *
 *   1. On a worker: local recipients into their Maildirs (delivery.h); the
 *      message stays loaded, with an fd on its data, for the steps below.
 *   2. On the loop: the remote recipients, one relay job per destination
 *      domain (or one for the smarthost), all at once (relay.h).
 *   3. The results: 2xx -> DONE; 5xx -> a bounce, then FAILED; anything else
 *      stays pending with its error. A recipient pending past queue_lifetime
 *      fails with 4.4.7 (RFC 3463). Notifications (RFC 3461 §6.2, §4.1 NOTIFY)
 *      go to the envelope sender, never to the null sender (RFC 5321 §4.5.5:
 *      no notification about a notification). Recipients that failed are
 *      marked FAILED only once their bounce is durable, so a crash before that
 *      repeats the bounce rather than losing it.
 *   4. Nothing pending: the spool file goes. Else the next attempt after
 *      queue_retry_min, doubling per attempt up to queue_retry_max.
 */
#include "queue/queue-private.h"
#include "queue/envelope.h"
#include "queue/queue-ctl.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/workpool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

struct qattempt {
	struct qmsg *m;
	struct delivery_job job;
	struct relay_job *rjobs;
	size_t nrjobs, pending;
	struct smtp_client_rcpt *rcpts;   /* remote recipients, grouped by job */
	size_t *index;                    /* their envelope indexes */
	char **domains;                   /* per job */
	size_t nr;
	struct dsn_rcpt *dsn;
	char (*dsn_status)[16];
	char (*dsn_diag)[SMTP_REPLY_MAX_TEXT + 32];
	size_t ndsn;
	size_t *fail;                     /* envelope indexes to mark FAILED after the bounce */
	size_t nfail;
};

static void attempt_results(struct qattempt *a);
static void attempt_end(struct qattempt *a);

/* ---- messages ---- */

static void qmsg_on_timer(evutil_socket_t fd, short what, void *arg);

struct qmsg *
qmsg_new(struct queue_ctx *q, const char *id, bool recovered)
{
	struct qmsg *m = calloc(1, sizeof(*m));
	if (m == NULL)
		fatal("out of memory");
	m->q = q;
	m->recovered = recovered;
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->timer = evtimer_new(q->base, qmsg_on_timer, m);
	if (m->timer == NULL)
		fatal("out of memory");
	m->next = q->msgs;
	if (m->next != NULL)
		m->next->prevp = &m->next;
	m->prevp = &q->msgs;
	q->msgs = m;
	return m;
}

static void
wait_unlink(struct qmsg *m)
{
	struct queue_ctx *q = m->q;
	*m->wait_prevp = m->wait_next;
	if (m->wait_next != NULL)
		m->wait_next->wait_prevp = m->wait_prevp;
	else
		q->wait_tail = m->wait_prevp;
	m->wait_next = NULL;
	m->wait_prevp = NULL;
	m->waiting = false;
}

/* The answer to an operator's hold or delete that waited for the attempt. */
static void
ctl_answer(struct qmsg *m, int rc, const char *error)
{
	if (m->ctl_req != NULL)
		queue_ctl_answer(&m->ctl_req, rc, error);
}

void
qmsg_free(struct qmsg *m)
{
	ctl_answer(m, -1, "the queue process is stopping");
	if (m->waiting)
		wait_unlink(m);
	*m->prevp = m->next;
	if (m->next != NULL)
		m->next->prevp = m->prevp;
	event_free(m->timer);
	free(m);
}

struct qmsg *
qmsg_find(struct queue_ctx *q, const char *id)
{
	for (struct qmsg *m = q->msgs; m != NULL; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

void
qmsg_schedule(struct qmsg *m, int64_t delay)
{
	struct timeval tv = { delay, 0 };
	m->next_attempt = time(NULL) + delay;
	evtimer_add(m->timer, &tv);
}

/* ---- the attempt ---- */

static void
attempt_free(struct qattempt *a)
{
	if (a->job.fd >= 0)
		close(a->job.fd);
	spool_message_free(&a->job.msg);
	for (size_t i = 0; i < a->nrjobs; i++)
		free(a->domains[i]);
	free(a->domains);
	free(a->rjobs);
	free(a->rcpts);
	free(a->index);
	free(a->dsn);
	free(a->dsn_status);
	free(a->dsn_diag);
	free(a->fail);
	free(a);
}

/* The attempt is over: remove, hold, or schedule the next one. */
static void
attempt_finish(struct qattempt *a)
{
	struct qmsg *m = a->m;
	struct queue_ctx *q = m->q;
	const char *error;
	size_t pending = a->job.msg != NULL ? envelope_pending_count(a->job.msg->envelope) : 1;
	bool gone = a->job.outcome == DELIVERY_GONE;
	attempt_free(a);
	m->attempt = NULL;
	m->busy = false;
	if (gone) {
		ctl_answer(m, -1, "the message's spool file is gone");
		qmsg_free(m);
		return;
	}
	if (pending == 0 || m->remove_after) {
		int rc = spool_remove(q->spool, m->id, &error);
		if (rc < 0)
			log_warn("queue: %s: cannot remove: %s", m->id, error);
		if (pending == 0) {
			log_info("queue: %s done", m->id);
			/* A delete is satisfied (nothing is left); a hold is not. */
			ctl_answer(m, m->remove_after ? 0 : -1,
			    "it was delivered by the attempt that was under way");
		} else {
			log_info("queue: %s deleted by the operator", m->id);
			ctl_answer(m, rc, rc < 0 ? error : NULL);
		}
		qmsg_free(m);
		return;
	}
	if (m->hold_after) {
		int rc = spool_hold(q->spool, m->id, &error);
		if (rc < 0)
			log_error("queue: %s: cannot hold: %s", m->id, error);
		else
			log_info("queue: %s held by the operator", m->id);
		ctl_answer(m, rc, rc < 0 ? error : NULL);
		qmsg_free(m);
		return;
	}
	if (q->stopping)
		return;
	int64_t delay = q->cfg->queue_retry_min;
	for (unsigned i = 1; i < m->attempts && delay < q->cfg->queue_retry_max; i++)
		delay *= 2;
	if (delay > q->cfg->queue_retry_max)
		delay = q->cfg->queue_retry_max;
	log_warn("queue: %s deferred (attempt %u): %s; retry in %llds", m->id, m->attempts,
	    m->last_error[0] != '\0' ? m->last_error : "temporary failure", (long long)delay);
	qmsg_schedule(m, delay);
}

static void
after_bounce(void *arg, bool ok)
{
	struct qattempt *a = arg;
	struct envelope *e = a->job.msg->envelope;
	const char *error;
	for (size_t i = 0; i < a->nfail && ok; i++)
		if (e->rcpts[a->fail[i]].status == ENVELOPE_RCPT_PENDING &&
		    spool_mark_rcpt(a->m->q->spool, e, a->fail[i], ENVELOPE_RCPT_FAILED, &error) < 0)
			log_warn("queue: %s: cannot record a failure: %s", a->m->id, error);
	if (!ok && a->nfail > 0)
		snprintf(a->m->last_error, sizeof(a->m->last_error),
		    "the bounce could not be written; trying again");
	attempt_end(a);
}

/* Notes a notification line for recipient index. */
static void
dsn_add(struct qattempt *a, size_t index, enum dsn_action action, const char *status,
    const char *remote, const char *diag, const char *explanation)
{
	const struct envelope_rcpt *r = &a->job.msg->envelope->rcpts[index];
	unsigned want = action == DSN_FAILED ? ENVELOPE_NOTIFY_FAILURE :
	    action == DSN_DELAYED ? ENVELOPE_NOTIFY_DELAY : ENVELOPE_NOTIFY_SUCCESS;
	/* RFC 3461 §4.1: NOTIFY absent means FAILURE,DELAY (SUCCESS only when asked). */
	unsigned notify = r->notify != 0 ? r->notify :
	    (ENVELOPE_NOTIFY_FAILURE | ENVELOPE_NOTIFY_DELAY);
	if (!(notify & want) || a->job.msg->envelope->mail_from[0] == '\0')
		return;
	size_t k = a->ndsn++;
	snprintf(a->dsn_status[k], sizeof(a->dsn_status[k]), "%s", status);
	snprintf(a->dsn_diag[k], sizeof(a->dsn_diag[k]), "%s", diag != NULL ? diag : "");
	a->dsn[k] = (struct dsn_rcpt){
		.address = r->address, .orcpt = r->orcpt, .action = action,
		.status = a->dsn_status[k], .remote_mta = remote,
		.diagnostic = diag != NULL ? a->dsn_diag[k] : NULL,
		.explanation = explanation, .last_attempt = time(NULL),
	};
}

static void
attempt_results(struct qattempt *a)
{
	struct qmsg *m = a->m;
	struct queue_ctx *q = m->q;
	struct envelope *e = a->job.msg->envelope;
	const char *error;
	time_t now = time(NULL);
	size_t n = e->rcpt_count;

	a->dsn = calloc(n + 1, sizeof(*a->dsn));
	a->dsn_status = calloc(n + 1, sizeof(*a->dsn_status));
	a->dsn_diag = calloc(n + 1, sizeof(*a->dsn_diag));
	a->fail = calloc(n + 1, sizeof(*a->fail));
	if (a->dsn == NULL || a->dsn_status == NULL || a->dsn_diag == NULL || a->fail == NULL)
		fatal("out of memory");
	if (a->job.local_temp)
		snprintf(m->last_error, sizeof(m->last_error), "%s", a->job.error);
	for (size_t i = 0; i < a->job.nfailures; i++) {
		dsn_add(a, a->job.failures[i].index, DSN_FAILED, "5.2.0", NULL, NULL,
		    a->job.failures[i].why);
		a->fail[a->nfail++] = a->job.failures[i].index;
	}
	/* Remote results, job by job. */
	for (size_t j = 0, k = 0; j < a->nrjobs; j++) {
		struct relay_job *job = &a->rjobs[j];
		for (size_t i = 0; i < job->msg.nrcpts; i++, k++) {
			const struct smtp_reply *rep = &job->msg.rcpts[i].result;
			size_t idx = a->index[k];
			char line[SMTP_REPLY_MAX_TEXT + 32], status[16];
			smtp_reply_format(rep, line, sizeof(line));
			dsn_status_of_reply(rep->code, rep->enhanced, status);
			const char *remote = job->host[0] != '\0' ? job->host : NULL;
			if (rep->code / 100 == 2) {
				if (spool_mark_rcpt(q->spool, e, idx, ENVELOPE_RCPT_DONE, &error) < 0)
					log_warn("queue: %s: cannot record delivery: %s", m->id, error);
				/* RFC 3461 §6.2.2: a server without DSN cannot report success. */
				if (!job->remote_dsn)
					dsn_add(a, idx, DSN_RELAYED, status, remote, line, NULL);
			} else if (rep->code / 100 == 5) {
				dsn_add(a, idx, DSN_FAILED, status, remote, remote != NULL ? line : NULL,
				    remote != NULL ? NULL : rep->text);
				a->fail[a->nfail++] = idx;
			} else {
				snprintf(m->last_error, sizeof(m->last_error), "<%.200s>: %.300s",
				    e->rcpts[idx].address, line);
			}
		}
	}
	/* Past the lifetime: what is still pending fails (RFC 3463 4.4.7). */
	bool expired = now - e->received_at >= q->cfg->queue_lifetime;
	int64_t until = e->received_at + q->cfg->queue_lifetime;
	bool warn = !expired && q->cfg->queue_delay_warning > 0 && !m->delay_warned &&
	    now - e->received_at >= q->cfg->queue_delay_warning;
	bool *failing = calloc(n + 1, sizeof(*failing));
	if (failing == NULL)
		fatal("out of memory");
	for (size_t k = 0; k < a->nfail; k++)
		failing[a->fail[k]] = true;
	for (size_t i = 0; i < n && (expired || warn); i++) {
		if (e->rcpts[i].status != ENVELOPE_RCPT_PENDING || failing[i])
			continue;
		if (expired) {
			dsn_add(a, i, DSN_FAILED, "4.4.7", NULL, NULL, m->last_error[0] != '\0' ?
			    m->last_error : "delivery time expired");
			a->fail[a->nfail++] = i;
		} else {
			dsn_add(a, i, DSN_DELAYED, "4.4.7", NULL, NULL, m->last_error[0] != '\0' ?
			    m->last_error : "delivery is delayed");
		}
	}
	free(failing);
	if (warn)
		m->delay_warned = true;
	if (expired)
		log_warn("queue: %s expired after %llds", m->id,
		    (long long)(now - e->received_at));
	if (a->ndsn > 0) {
		queue_bounce(q, a->job.msg, a->job.fd, a->dsn, a->ndsn, until, after_bounce, a);
		return;
	}
	if (a->nfail > 0 && e->mail_from[0] == '\0')
		log_info("queue: %s: no notification for the null sender (RFC 5321 §4.5.5)", m->id);
	after_bounce(a, true);
}

static void
on_relay_done(struct relay_job *job, void *arg)
{
	struct qattempt *a = arg;
	if (--a->pending == 0)
		attempt_results(a);
}

static const char *
rcpt_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at != NULL ? at + 1 : address;
}

static int
by_domain(const void *x, const void *y, void *arg)
{
	const struct envelope *e = arg;
	const size_t *i = x, *j = y;
	int c = strcasecmp(rcpt_domain(e->rcpts[*i].address), rcpt_domain(e->rcpts[*j].address));
	return c != 0 ? c : (*i < *j ? -1 : *i > *j);
}

/* Step 2: one relay job per destination. */
static void
attempt_relay(struct qattempt *a)
{
	struct queue_ctx *q = a->m->q;
	struct spool_message *msg = a->job.msg;
	struct envelope *e = msg->envelope;
	bool smarthost = q->cfg->relay_host[0] != '\0';
	size_t n = 0;

	a->index = calloc(e->rcpt_count + 1, sizeof(*a->index));
	a->rcpts = calloc(e->rcpt_count + 1, sizeof(*a->rcpts));
	if (a->index == NULL || a->rcpts == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < e->rcpt_count; i++)
		if (e->rcpts[i].status == ENVELOPE_RCPT_PENDING && e->rcpts[i].mailbox == NULL)
			a->index[n++] = i;
	a->nr = n;
	if (n == 0 || q->relay == NULL) {
		if (n > 0)
			snprintf(a->m->last_error, sizeof(a->m->last_error), "no relay available");
		attempt_results(a);
		return;
	}
	if (!smarthost)
		qsort_r(a->index, n, sizeof(*a->index), by_domain, e);
	size_t njobs = 0;
	for (size_t k = 0; k < n; k++)
		if (k == 0 || (!smarthost && strcasecmp(rcpt_domain(e->rcpts[a->index[k]].address),
		    rcpt_domain(e->rcpts[a->index[k - 1]].address)) != 0))
			njobs++;
	a->rjobs = calloc(njobs, sizeof(*a->rjobs));
	a->domains = calloc(njobs, sizeof(*a->domains));
	if (a->rjobs == NULL || a->domains == NULL)
		fatal("out of memory");
	a->nrjobs = njobs;
	a->pending = njobs;
	size_t j = 0;
	for (size_t k = 0; k < n; j++) {
		const char *dom = smarthost ? q->cfg->relay_host :
		    rcpt_domain(e->rcpts[a->index[k]].address);
		size_t start = k;
		while (k < n && (smarthost || strcasecmp(rcpt_domain(e->rcpts[a->index[k]].address),
		    dom) == 0)) {
			const struct envelope_rcpt *r = &e->rcpts[a->index[k]];
			a->rcpts[k] = (struct smtp_client_rcpt){ .address = r->address,
			    .notify = r->notify, .orcpt = r->orcpt };
			k++;
		}
		if ((a->domains[j] = strdup(dom)) == NULL)
			fatal("out of memory");
		for (char *c = a->domains[j]; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		struct relay_job *job = &a->rjobs[j];
		job->id = a->m->id;
		job->domain = a->domains[j];
		job->msg = (struct smtp_client_msg){
			.mail_from = e->mail_from,
			.eightbit = e->body == ENVELOPE_BODY_8BITMIME,
			.smtputf8 = e->smtputf8,
			.ret = e->ret,
			.envid = e->envid,
			.rcpts = &a->rcpts[start],
			.nrcpts = k - start,
			.prepend = msg->added,
			.prepend_len = msg->added_len,
			.fd = a->job.fd,
			.offset = msg->data_offset,
			.end = msg->data_end,
		};
	}
	for (j = 0; j < njobs; j++)
		relay_submit(q->relay, &a->rjobs[j], on_relay_done, a);
}

static void
deliver_run(void *arg)
{
	struct qattempt *a = arg;
	delivery_run(&a->job);
}

static void
deliver_done(void *arg)
{
	struct qattempt *a = arg;
	switch (a->job.outcome) {
	case DELIVERY_GONE:
		attempt_end(a);
		return;
	case DELIVERY_RETRY:
		snprintf(a->m->last_error, sizeof(a->m->last_error), "%s", a->job.error);
		attempt_end(a);
		return;
	case DELIVERY_DONE:
		break;
	}
	if (a->m->q->stopping) {
		attempt_end(a);
		return;
	}
	if (a->job.delivered > 0)
		log_info("queue: %s delivered (%u mailbox%s)", a->m->id, a->job.delivered,
		    a->job.delivered == 1 ? "" : "es");
	attempt_relay(a);
}

static void attempt_start(struct qmsg *m);

/* Due messages that waited for a slot start now, oldest first. */
static void
queue_start_waiting(struct queue_ctx *q)
{
	while (!q->stopping && q->wait_head != NULL &&
	    q->active < (unsigned)q->cfg->queue_active_limit) {
		struct qmsg *m = q->wait_head;
		wait_unlink(m);
		attempt_start(m);
	}
}

static void
attempt_end(struct qattempt *a)
{
	struct queue_ctx *q = a->m->q;
	attempt_finish(a);
	q->active--;
	queue_start_waiting(q);
}

static void
qmsg_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct qmsg *m = arg;
	struct queue_ctx *q = m->q;
	if (m->busy || m->waiting || q->stopping)
		return;
	if (q->active >= (unsigned)q->cfg->queue_active_limit) {
		m->wait_next = NULL;
		m->wait_prevp = q->wait_tail;
		*q->wait_tail = m;
		q->wait_tail = &m->wait_next;
		m->waiting = true;
		return;
	}
	attempt_start(m);
}

static void
attempt_start(struct qmsg *m)
{
	struct queue_ctx *q = m->q;
	struct qattempt *a = calloc(1, sizeof(*a));
	if (a == NULL)
		fatal("out of memory");
	a->m = m;
	a->job.fd = -1;
	snprintf(a->job.id, sizeof(a->job.id), "%s", m->id);
	a->job.spool = q->spool;
	a->job.mail_dir = q->cfg->mail_dir;
	a->job.hostname = q->cfg->hostname;
	m->busy = true;
	q->active++;
	m->attempt = a;
	m->attempts++;
	m->next_attempt = 0;
	a->job.check_existing = m->recovered || m->attempts > 1;
	workpool_submit(q->workers, deliver_run, deliver_done, a);
}
