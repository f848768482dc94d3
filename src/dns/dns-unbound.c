/*
 * dns-unbound — the libunbound backend of dns_resolver_unbound_new (dns.h).
 *
 * libunbound runs on the process's own event loop (ub_ctx_create_event): no
 * thread, no forked helper. Its callback hands over the answer packet, which
 * dns-packet.c reads. Every query has our own timer as well: when it fires the
 * caller gets TEMPFAIL and the query is orphaned, to be dropped whenever
 * libunbound finishes it. libunbound 1.17's ub_cancel() does not support
 * event-based contexts (it deletes state the resolver still uses), so cancelling
 * orphans too; ub_ctx_delete() ends whatever is left.
 */
#include "dns/dns-private.h"

#include "lib/error.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound-event.h>
#include <unbound.h>

struct ubq;

struct ub_backend {
	struct ub_ctx *ctx;
	struct event_base *base;
	unsigned timeout_ms;
	struct ubq *queries;          /* every query libunbound still holds */
};

struct ubq {
	struct ub_backend *b;
	struct ubq *prev, *next;
	dns_backend_done_fn *done;    /* NULL once orphaned */
	void *arg;
	struct dns_name qname;
	uint16_t type;
	struct event *timer;
	bool in_resolve, finished;
};

static void
ubq_free(struct ubq *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		q->b->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	if (q->timer != NULL)
		event_free(q->timer);
	free(q);
}

/* Gives the caller its answer (if it still wants one) and orphans the query. */
static void
ubq_answer(struct ubq *q, struct dns_answer *a)
{
	dns_backend_done_fn *done = q->done;

	q->done = NULL;
	if (q->timer != NULL)
		evtimer_del(q->timer);
	if (done != NULL)
		done(a, q->arg);
	else
		dns_answer_unref(&a);
}

static void
ubq_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ubq *q = arg;
	char name[DNS_NAME_TEXT_MAX];

	dns_name_format(&q->qname, name, sizeof(name));
	ubq_answer(q, dns_answer_failf(DNS_TEMPFAIL, 0, "%.200s %s: no answer within %u ms",
	    name, dns_type_name(q->type), q->b->timeout_ms));
}

static void
ubq_callback(void *arg, int rcode, void *packet, int packet_len, int sec, char *why_bogus,
    int was_ratelimited)
{
	struct ubq *q = arg;
	struct dns_answer *a = NULL;

	if (q->done != NULL) {
		if (sec == 1) {
			/* RFC 4035 §4.3: bogus data is not given out. */
			a = dns_answer_failf(DNS_BOGUS, 0, "DNSSEC validation failed: %.300s",
			    why_bogus != NULL ? why_bogus : "no reason given");
		} else if ((rcode == 0 || rcode == 3) && packet != NULL && packet_len >= 12) {
			/* The packet's own RCODE decides (NXDOMAIN is in it). */
			a = dns_packet_parse(packet, (size_t)packet_len, &q->qname, q->type);
			/* Answers are made once and shared: set before anyone sees it. */
			if (a != NULL && sec == 2 &&
			    (a->status == DNS_OK || a->status == DNS_NXDOMAIN))
				a->secure = true;
		} else if (rcode == 3) {
			a = dns_answer_new(DNS_NXDOMAIN, 0, NULL);
		} else {
			/* SERVFAIL (unbound's word for timeouts and broken
			 * servers), REFUSED, or no packet at all. */
			a = dns_answer_failf(DNS_TEMPFAIL, 0, "the resolver failed (RCODE %d%s)",
			    rcode, was_ratelimited ? ", rate-limited" : "");
		}
		ubq_answer(q, a);
	}
	if (q->in_resolve)
		q->finished = true;   /* freed by ub_resolve's caller */
	else
		ubq_free(q);
}

static void *
ub_resolve_q(void *impl, const char *name, uint16_t type, dns_backend_done_fn *done, void *arg)
{
	struct ub_backend *b = impl;
	struct ubq *q = calloc(1, sizeof(*q));
	const char *error;
	int ret, id = 0;

	if (q == NULL)
		return NULL;
	if (dns_name_parse(name, strlen(name), NULL, &q->qname, &error) < 0 ||
	    (q->timer = evtimer_new(b->base, ubq_timeout, q)) == NULL) {
		free(q);
		return NULL;
	}
	q->b = b;
	q->done = done;
	q->arg = arg;
	q->type = type;
	q->next = b->queries;
	if (b->queries != NULL)
		b->queries->prev = q;
	b->queries = q;
	if (b->timeout_ms > 0) {
		struct timeval tv = { b->timeout_ms / 1000, (b->timeout_ms % 1000) * 1000 };

		evtimer_add(q->timer, &tv);
	}
	/* The callback may run inside (local data, unbound's cache). */
	q->in_resolve = true;
	ret = ub_resolve_event(b->ctx, name, type, 1, q, ubq_callback, &id);
	q->in_resolve = false;
	if (ret != 0) {
		ubq_answer(q, dns_answer_failf(DNS_TEMPFAIL, 0, "the resolver cannot ask: %s",
		    ub_strerror(ret)));
		ubq_free(q);
		return NULL;
	}
	if (q->finished) {
		ubq_free(q);
		return NULL;
	}
	return q;
}

static void
ub_cancel_q(void *impl, void *handle)
{
	struct ubq *q = handle;

	/* Orphaned: dropped when libunbound calls back (or at ub_ctx_delete). */
	q->done = NULL;
	evtimer_del(q->timer);
}

static void
ub_free_backend(void *impl)
{
	struct ub_backend *b = impl;

	if (b == NULL)
		return;
	if (b->ctx != NULL)
		ub_ctx_delete(b->ctx);
	while (b->queries != NULL)
		ubq_free(b->queries);
	free(b);
}

static const struct dns_backend unbound_backend = {
	.resolve = ub_resolve_q, .cancel = ub_cancel_q, .free = ub_free_backend,
};

static int
ub_setup(struct ub_backend *b, const char *forward, bool resolv_conf, const char *trust_anchor,
    const char **error_r)
{
	int ret;

	/* Forwarders on 127.0.0.1 (a local validating resolver, tests) are fine. */
	if ((ret = ub_ctx_set_option(b->ctx, "do-not-query-localhost:", "no")) != 0)
		return error_fail(error_r, EINVAL, "libunbound refused an option: %s",
		    ub_strerror(ret));
	if (forward != NULL && forward[0] != '\0') {
		if ((ret = ub_ctx_set_fwd(b->ctx, forward)) != 0)
			return error_fail(error_r, EINVAL, "cannot forward to \"%s\": %s", forward,
			    ub_strerror(ret));
	} else if (resolv_conf) {
		if ((ret = ub_ctx_resolvconf(b->ctx, NULL)) != 0)
			return error_fail(error_r, EINVAL, "cannot read /etc/resolv.conf: %s",
			    ub_strerror(ret));
	}
	if (trust_anchor != NULL && trust_anchor[0] != '\0' &&
	    (ret = ub_ctx_add_ta_file(b->ctx, trust_anchor)) != 0)
		return error_fail(error_r, EINVAL, "cannot read the trust anchor %s: %s",
		    trust_anchor, ub_strerror(ret));
	/* libunbound answers names under "test." itself, NXDOMAIN (RFC 6761 §6.2);
	 * a server we forward to may serve them (test setups). Last: this
	 * finalises the context, after which no option can change. */
	if (forward != NULL && forward[0] != '\0' &&
	    (ret = ub_ctx_zone_add(b->ctx, "test.", "transparent")) != 0)
		return error_fail(error_r, EINVAL, "libunbound refused a local zone: %s",
		    ub_strerror(ret));
	return 0;
}

struct dns_resolver *
dns_resolver_unbound_new(struct event_base *base, const char *forward, bool resolv_conf,
    const char *trust_anchor, unsigned timeout_ms, const char **error_r)
{
	struct ub_backend *b = calloc(1, sizeof(*b));
	struct dns_resolver *r;

	if (b == NULL) {
		error_fail(error_r, ENOMEM, "out of memory");
		return NULL;
	}
	b->base = base;
	b->timeout_ms = timeout_ms;
	if ((b->ctx = ub_ctx_create_event(base)) == NULL) {
		free(b);
		error_fail(error_r, ENOMEM, "cannot create a libunbound context");
		return NULL;
	}
	if (ub_setup(b, forward, resolv_conf, trust_anchor, error_r) < 0) {
		ub_free_backend(b);
		return NULL;
	}
	if ((r = dns_resolver_new(base, &unbound_backend, b)) == NULL)
		error_fail(error_r, ENOMEM, "out of memory");
	return r;
}
