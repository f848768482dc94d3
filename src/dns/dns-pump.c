/*
 * dns-pump — runs a mail check that asks a dns_view (dns.h): step, resolve
 * every question the step left in the view at once, step again when all are
 * answered, until the step says it is done.
 *
 * Each round has a deadline: a question still unanswered when it passes is
 * answered TEMPFAIL, so done() is always reached (RFC 7208 §4.6.4 asks for
 * such a bound on SPF's DNS work). done() runs on the event loop, never from
 * inside dns_pump_start(); the pump may be freed at any time, from inside
 * step() or done() included.
 */
#include "dns/dns-private.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pump_question {
	struct dns_pump *p;
	struct dns_query *q;     /* NULL once answered */
	char *name;
	uint16_t type;
};

struct dns_pump {
	struct dns_resolver *r;
	struct dns_view *v;
	unsigned deadline_ms;
	dns_step_fn *step;
	dns_done_fn *done;
	void *arg;
	struct pump_question *qs;   /* this round's */
	size_t nq, outstanding;
	struct event *next;         /* runs the step (or done) on the next turn */
	struct event *deadline;
	bool in_step, freed, finished;
};

static void
pump_clear_round(struct dns_pump *p)
{
	for (size_t i = 0; i < p->nq; i++) {
		dns_query_cancel(&p->qs[i].q);
		free(p->qs[i].name);
	}
	free(p->qs);
	p->qs = NULL;
	p->nq = p->outstanding = 0;
	if (p->deadline != NULL)
		evtimer_del(p->deadline);
}

static void
pump_destroy(struct dns_pump *p)
{
	pump_clear_round(p);
	if (p->next != NULL)
		event_free(p->next);
	if (p->deadline != NULL)
		event_free(p->deadline);
	free(p);
}

void
dns_pump_free(struct dns_pump **pp)
{
	struct dns_pump *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (p->in_step) {
		/* The step is running on our stack: free when it returns. */
		p->freed = true;
		pump_clear_round(p);
		return;
	}
	pump_destroy(p);
}

static void pump_round_done(struct dns_pump *p);

static void
pump_answer(struct dns_answer *a, void *arg)
{
	struct pump_question *pq = arg;
	struct dns_pump *p = pq->p;

	pq->q = NULL;
	dns_view_put(p->v, pq->name, pq->type, a);
	dns_answer_unref(&a);
	if (--p->outstanding == 0)
		pump_round_done(p);
}

static void
pump_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct dns_pump *p = arg;

	for (size_t i = 0; i < p->nq; i++) {
		struct pump_question *pq = &p->qs[i];
		struct dns_answer *a;

		if (pq->q == NULL)
			continue;
		dns_query_cancel(&pq->q);
		a = dns_answer_failf(DNS_TEMPFAIL, 0, "%.200s %s: no answer within %u ms",
		    pq->name, dns_type_name(pq->type), p->deadline_ms);
		if (a != NULL) {
			dns_view_put(p->v, pq->name, pq->type, a);
			dns_answer_unref(&a);
		}
		p->outstanding--;
	}
	pump_round_done(p);
}

/* Sends every unanswered question of the view; 1 when there were some. */
static int
pump_ask(struct dns_pump *p)
{
	const char *name;
	uint16_t type;
	size_t it = 0, n = 0;

	while (dns_view_question(p->v, &it, &name, &type))
		n++;
	if (n == 0)
		return 0;
	if ((p->qs = calloc(n, sizeof(*p->qs))) == NULL)
		goto oom;
	it = 0;
	while (p->nq < n && dns_view_question(p->v, &it, &name, &type)) {
		struct pump_question *pq = &p->qs[p->nq];

		pq->p = p;
		pq->type = type;
		if ((pq->name = strdup(name)) == NULL)
			goto oom;
		p->nq++;
	}
	/* Counted before any callback can run: all are deferred anyway. */
	p->outstanding = p->nq;
	for (size_t i = 0; i < p->nq; i++) {
		struct pump_question *pq = &p->qs[i];

		if ((pq->q = dns_resolve(p->r, pq->name, pq->type, pump_answer, pq)) == NULL)
			goto oom;
	}
	if (p->deadline_ms > 0) {
		struct timeval tv = { p->deadline_ms / 1000, (p->deadline_ms % 1000) * 1000 };

		evtimer_add(p->deadline, &tv);
	}
	return 1;
oom:
	/* Every question left unanswered becomes a TEMPFAIL; the step decides. */
	pump_clear_round(p);
	it = 0;
	while (dns_view_question(p->v, &it, &name, &type)) {
		static struct dns_answer oom = {
			.refs = 1, .status = DNS_TEMPFAIL, .why = (char *)"out of memory",
		};

		dns_view_put(p->v, name, type, &oom);
	}
	return -1;
}

/* Runs the step; then asks its questions, or schedules done(). */
static void
pump_step(struct dns_pump *p)
{
	int ret;

	p->in_step = true;
	ret = p->step(p->v, p->arg);
	p->in_step = false;
	if (p->freed) {
		pump_destroy(p);
		return;
	}
	if (ret == 0) {
		int asked = pump_ask(p);

		if (asked > 0)
			return;
		if (asked < 0) {
			/* The questions were answered TEMPFAIL: step again. */
			event_active(p->next, EV_TIMEOUT, 0);
			return;
		}
		/* A step that asked nothing new cannot progress: it is done. */
	}
	p->finished = true;
	event_active(p->next, EV_TIMEOUT, 0);
}

static void
pump_next(evutil_socket_t fd, short what, void *arg)
{
	struct dns_pump *p = arg;

	if (p->finished) {
		/* Last: done() may free the pump. */
		p->done(p->arg);
		return;
	}
	pump_step(p);
}

static void
pump_round_done(struct dns_pump *p)
{
	pump_clear_round(p);
	pump_step(p);
}

struct dns_pump *
dns_pump_start(struct dns_resolver *r, struct dns_view *v, unsigned deadline_ms,
    dns_step_fn *step, dns_done_fn *done, void *arg)
{
	struct dns_pump *p = calloc(1, sizeof(*p));
	struct event_base *base = dns_resolver_base(r);

	if (p == NULL)
		return NULL;
	p->r = r;
	p->v = v;
	p->deadline_ms = deadline_ms;
	p->step = step;
	p->done = done;
	p->arg = arg;
	if ((p->next = event_new(base, -1, 0, pump_next, p)) == NULL ||
	    (p->deadline = evtimer_new(base, pump_deadline, p)) == NULL) {
		pump_destroy(p);
		return NULL;
	}
	/* The first step runs now (dns.h); done() only ever from the loop. */
	pump_step(p);
	return p;
}
