/*
 * dns-resolver — the resolver object of dns.h: the cache in front, a backend
 * behind (libunbound, a static zone, or a test's), and callbacks that always
 * run on a later turn of the event loop, never from inside dns_resolve() and
 * never after dns_query_cancel().
 */
#include "dns/dns-private.h"

#include "lib/clock.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *prev, *next;   /* the resolver's outstanding queries */
	struct dns_name key;
	uint16_t type;
	dns_answer_fn *cb;
	void *arg;
	void *handle;                    /* the backend's, while it works on it */
	struct dns_answer *answer;       /* once known, until delivered */
	struct event *deliver;
};

struct dns_resolver {
	struct event_base *base;
	const struct dns_backend *ops;
	void *impl;
	struct dns_cache *cache;
	struct dns_query *queries;
	dns_clock_fn *clock;
	void *clock_arg;
	unsigned long backend_calls;
};

static int64_t
default_clock(void *arg)
{
	return clock_mono_ms();
}

struct dns_resolver *
dns_resolver_new(struct event_base *base, const struct dns_backend *ops, void *impl)
{
	struct dns_resolver *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->cache = dns_cache_new(DNS_CACHE_ENTRIES)) == NULL) {
		free(r);
		ops->free(impl);
		return NULL;
	}
	r->base = base;
	r->ops = ops;
	r->impl = impl;
	r->clock = default_clock;
	return r;
}

struct event_base *
dns_resolver_base(const struct dns_resolver *r)
{
	return r->base;
}

void
dns_resolver_set_clock(struct dns_resolver *r, dns_clock_fn *clock, void *arg)
{
	r->clock = clock != NULL ? clock : default_clock;
	r->clock_arg = arg;
}

unsigned long
dns_resolver_backend_calls(const struct dns_resolver *r)
{
	return r->backend_calls;
}

static void
query_unlink(struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		q->r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void
query_destroy(struct dns_query *q)
{
	if (q->handle != NULL)
		q->r->ops->cancel(q->r->impl, q->handle);
	query_unlink(q);
	if (q->deliver != NULL)
		event_free(q->deliver);
	dns_answer_unref(&q->answer);
	free(q);
}

void
dns_query_cancel(struct dns_query **qp)
{
	struct dns_query *q = *qp;

	if (q == NULL)
		return;
	*qp = NULL;
	query_destroy(q);
}

void
dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;

	if (r == NULL)
		return;
	*rp = NULL;
	while (r->queries != NULL)
		query_destroy(r->queries);
	r->ops->free(r->impl);
	dns_cache_free(&r->cache);
	free(r);
}

static void
query_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_answer *a = q->answer;
	dns_answer_fn *cb = q->cb;
	void *cb_arg = q->arg;

	/* The query is gone before the callback runs: the callback may free the
	 * resolver or ask again. */
	q->answer = NULL;
	query_destroy(q);
	cb(a, cb_arg);
}

/* The answer is known: deliver it on the next turn of the loop. */
static void
query_answered(struct dns_query *q, struct dns_answer *a)
{
	q->answer = a;
	event_active(q->deliver, EV_TIMEOUT, 0);
}

static void
backend_done(struct dns_answer *a, void *arg)
{
	struct dns_query *q = arg;
	struct dns_resolver *r = q->r;

	q->handle = NULL;
	if (a == NULL)
		a = dns_answer_new(DNS_TEMPFAIL, 0, "out of memory for a DNS answer");
	if (a == NULL) {
		/* The caller still gets an answer: a static one, never freed. */
		static struct dns_answer oom = {
			.refs = 1, .status = DNS_TEMPFAIL, .why = (char *)"out of memory",
		};
		a = dns_answer_ref(&oom);
	}
	dns_cache_put(r->cache, &q->key, q->type, a, r->clock(r->clock_arg));
	query_answered(q, a);
}

struct dns_query *
dns_resolve(struct dns_resolver *r, const char *name, uint16_t type, dns_answer_fn *cb, void *arg)
{
	struct dns_query *q = calloc(1, sizeof(*q));
	struct dns_answer *a;
	const char *error;
	void *handle;

	if (q == NULL)
		return NULL;
	if ((q->deliver = event_new(r->base, -1, 0, query_deliver, q)) == NULL) {
		free(q);
		return NULL;
	}
	q->r = r;
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->prev = q;
	r->queries = q;
	if (dns_name_parse(name, strlen(name), NULL, &q->key, &error) < 0) {
		if ((a = dns_answer_failf(DNS_FORMERR, 0, "%.200s: %s", name, error)) == NULL)
			goto fail;
		query_answered(q, a);
		return q;
	}
	dns_name_lower(&q->key);
	if ((a = dns_cache_get(r->cache, &q->key, type, r->clock(r->clock_arg))) != NULL) {
		query_answered(q, a);
		return q;
	}
	r->backend_calls++;
	handle = r->ops->resolve(r->impl, name, type, backend_done, q);
	if (q->answer == NULL) {
		if (handle == NULL) {
			if ((a = dns_answer_new(DNS_TEMPFAIL, 0, "the resolver could not send the query"))
			    == NULL)
				goto fail;
			query_answered(q, a);
		}
		q->handle = handle;
	}
	return q;
fail:
	query_destroy(q);
	return NULL;
}

/* ---- the static-zone backend ---- */

static void *
zone_resolve(void *impl, const char *name, uint16_t type, dns_backend_done_fn *done, void *arg)
{
	done(dns_zone_lookup(impl, name, type), arg);
	return NULL;
}

static void
zone_cancel(void *impl, void *handle)
{
}

static void
zone_free(void *impl)
{
}

static const struct dns_backend zone_backend = {
	.resolve = zone_resolve, .cancel = zone_cancel, .free = zone_free,
};

struct dns_resolver *
dns_resolver_zone_new(struct event_base *base, const struct dns_zone *zone)
{
	/* The zone is only read; the backend's impl is untyped. */
	return dns_resolver_new(base, &zone_backend, (void *)(uintptr_t)zone);
}
