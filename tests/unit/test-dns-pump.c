/*
 * Unit tests for the resolver (dns-resolver.c), its cache (dns-cache.c) and
 * the pump (dns-pump.c), on a real libevent loop.
 *
 * The backend is a test one (dns-private.h): it answers from a static zone and
 * counts what reaches it, or, for names listed as "hanging", never answers, so
 * the pump's deadline must. The cache's clock is a fake one the tests move.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns-private.h"

/* ------------------------------------------------------------ test backend */

struct hang {
	struct hang *next;
	char name[64];
};

struct test_backend {
	const struct dns_zone *zone;
	const char *hang_name;      /* never answered (case-insensitive) */
	unsigned calls, cancels, freed;
	unsigned outstanding;
};

static void *tb_resolve(void *impl, const char *name, uint16_t type, dns_backend_done_fn *done,
			void *arg)
{
	struct test_backend *b = impl;

	b->calls++;
	if (b->hang_name != NULL && strcasecmp(name, b->hang_name) == 0) {
		struct hang *h = calloc(1, sizeof(*h));

		assert_non_null(h);
		snprintf(h->name, sizeof(h->name), "%s", name);
		b->outstanding++;
		return h;
	}
	/* Answer at once, from inside resolve: the resolver must still defer. */
	done(dns_zone_lookup(b->zone, name, type), arg);
	return NULL;
}

static void tb_cancel(void *impl, void *handle)
{
	struct test_backend *b = impl;

	b->cancels++;
	b->outstanding--;
	free(handle);
}

static void tb_free(void *impl)
{
	struct test_backend *b = impl;

	b->freed++;
}

static const struct dns_backend test_ops = { tb_resolve, tb_cancel, tb_free };

static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
	return fake_now;
}

static const char zone_text[] =
	"$ORIGIN example.com.\n"
	"$TTL 300\n"
	"@      60  TXT \"v=spf1 include:inc -all\"\n"
	"inc   600  TXT \"v=spf1 a:mail -all\"\n"
	"mail  120  A   192.0.2.1\n"
	"           MX  10 mail\n"
	"slow       TIMEOUT\n";

struct fixture {
	struct event_base *base;
	struct dns_zone *zone;
	struct test_backend tb;
	struct dns_resolver *r;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error;

	assert_non_null(f);
	f->base = event_base_new();
	assert_non_null(f->base);
	f->zone = dns_zone_parse(zone_text, strlen(zone_text), &error);
	assert_non_null(f->zone);
	f->tb.zone = f->zone;
	f->r = dns_resolver_new(f->base, &test_ops, &f->tb);
	assert_non_null(f->r);
	fake_now = 1000000;
	dns_resolver_set_clock(f->r, fake_clock, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dns_resolver_free(&f->r);
	assert_null(f->r);
	assert_int_equal(f->tb.freed, 1);
	assert_int_equal(f->tb.outstanding, 0);
	dns_zone_free(&f->zone);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void expire(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Runs the loop until *flag, failing after 5 s. */
static void run_until(struct event_base *base, const bool *flag)
{
	struct timeval limit = { 5, 0 };
	bool timed_out = false;
	struct event *guard = evtimer_new(base, expire, &timed_out);

	assert_non_null(guard);
	evtimer_add(guard, &limit);
	while (!*flag && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	assert_true(*flag);
}

/* --------------------------------------------------------- resolve, cancel */

struct got {
	bool called;
	unsigned count;
	struct dns_answer *a;
};

static void got_answer(struct dns_answer *a, void *arg)
{
	struct got *g = arg;

	g->called = true;
	g->count++;
	dns_answer_unref(&g->a);
	g->a = a;
}

static void test_resolve_deferred(void **state)
{
	struct fixture *f = *state;
	struct got g = { 0 };
	struct dns_query *q = dns_resolve(f->r, "mail.example.com", DNS_T_A, got_answer, &g);

	assert_non_null(q);
	/* Answered inside resolve by the backend, yet not delivered yet. */
	assert_false(g.called);
	run_until(f->base, &g.called);
	assert_int_equal(g.count, 1);
	assert_int_equal(g.a->status, DNS_OK);
	assert_int_equal(g.a->n, 1);
	assert_int_equal(g.a->ttl, 120);
	dns_answer_unref(&g.a);
	/* Invalid names are FORMERR without reaching the backend. */
	g.called = false;
	assert_non_null(dns_resolve(f->r, "a..b", DNS_T_A, got_answer, &g));
	assert_false(g.called);
	run_until(f->base, &g.called);
	assert_int_equal(g.a->status, DNS_FORMERR);
	assert_int_equal(f->tb.calls, 1);
	dns_answer_unref(&g.a);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 };
	struct dns_query *q1, *q2, *q3;
	struct timeval tv = { 0, 50000 };

	f->tb.hang_name = "slow.example.com";
	/* Answered by the backend but not yet delivered: cancelled. */
	q1 = dns_resolve(f->r, "mail.example.com", DNS_T_A, got_answer, &g1);
	/* A cache hit, not yet delivered: cancelled. */
	q2 = dns_resolve(f->r, "mail.example.com", DNS_T_A, got_answer, &g2);
	/* Still with the backend: cancelled there too. */
	q3 = dns_resolve(f->r, "slow.example.com", DNS_T_A, got_answer, &g3);
	assert_non_null(q1);
	assert_non_null(q2);
	assert_non_null(q3);
	assert_int_equal(f->tb.calls, 2);
	dns_query_cancel(&q1);
	dns_query_cancel(&q2);
	dns_query_cancel(&q3);
	assert_null(q1);
	dns_query_cancel(&q1);   /* NULL: nothing */
	assert_int_equal(f->tb.cancels, 1);
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_false(g1.called);
	assert_false(g2.called);
	assert_false(g3.called);
	/* Outstanding queries at dns_resolver_free are cancelled (teardown checks). */
	assert_non_null(dns_resolve(f->r, "slow.example.com", DNS_T_TXT, got_answer, &g3));
	assert_non_null(dns_resolve(f->r, "mail.example.com", DNS_T_MX, got_answer, &g3));
}

/* Frees the resolver from inside a callback: the other queries never answer. */
struct free_ctx {
	struct fixture *f;
	unsigned calls;
};

static void free_resolver_cb(struct dns_answer *a, void *arg)
{
	struct free_ctx *c = arg;

	dns_answer_unref(&a);
	c->calls++;
	dns_resolver_free(&c->f->r);
}

static void test_free_from_callback(void **state)
{
	struct fixture *f = *state;
	struct free_ctx c = { f, 0 };
	struct timeval tv = { 0, 50000 };

	assert_non_null(dns_resolve(f->r, "mail.example.com", DNS_T_A, free_resolver_cb, &c));
	assert_non_null(dns_resolve(f->r, "example.com", DNS_T_TXT, free_resolver_cb, &c));
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_int_equal(c.calls, 1);
	assert_null(f->r);
	/* teardown: freeing NULL is fine, the backend was freed once. */
}

/* ------------------------------------------------------------------ cache */

static void ask(struct fixture *f, const char *name, uint16_t type, enum dns_status status)
{
	struct got g = { 0 };

	assert_non_null(dns_resolve(f->r, name, type, got_answer, &g));
	run_until(f->base, &g.called);
	assert_int_equal(g.count, 1);
	assert_int_equal(g.a->status, status);
	dns_answer_unref(&g.a);
}

static void test_cache_ttl(void **state)
{
	struct fixture *f = *state;

	ask(f, "mail.example.com", DNS_T_A, DNS_OK);             /* TTL 120 */
	assert_int_equal(f->tb.calls, 1);
	ask(f, "MAIL.Example.COM.", DNS_T_A, DNS_OK);            /* a hit, any case */
	assert_int_equal(f->tb.calls, 1);
	assert_int_equal(dns_resolver_backend_calls(f->r), 1);
	ask(f, "mail.example.com", DNS_T_MX, DNS_OK);            /* another type: a miss */
	assert_int_equal(f->tb.calls, 2);
	fake_now += 119999;
	ask(f, "mail.example.com", DNS_T_A, DNS_OK);
	assert_int_equal(f->tb.calls, 2);
	fake_now += 1;                                           /* 120 s: expired */
	ask(f, "mail.example.com", DNS_T_A, DNS_OK);
	assert_int_equal(f->tb.calls, 3);
	/* Negative answers are kept for the negative TTL ($TTL 300). */
	ask(f, "nope.example.com", DNS_T_A, DNS_NXDOMAIN);
	ask(f, "nope.example.com", DNS_T_A, DNS_NXDOMAIN);
	assert_int_equal(f->tb.calls, 4);
	ask(f, "mail.example.com", DNS_T_TXT, DNS_OK);           /* NODATA */
	ask(f, "mail.example.com", DNS_T_TXT, DNS_OK);
	assert_int_equal(f->tb.calls, 5);
	fake_now += 300000;
	ask(f, "nope.example.com", DNS_T_A, DNS_NXDOMAIN);
	assert_int_equal(f->tb.calls, 6);
	/* Temporary failures are never kept. */
	ask(f, "slow.example.com", DNS_T_A, DNS_TEMPFAIL);
	ask(f, "slow.example.com", DNS_T_A, DNS_TEMPFAIL);
	assert_int_equal(f->tb.calls, 8);
}

static void test_cache_bounds(void **state)
{
	struct dns_cache *c = dns_cache_new(2);
	struct dns_name n1, n2, n3;
	struct dns_answer *ok = dns_answer_new(DNS_OK, 100, NULL);
	struct dns_answer *long_ttl = dns_answer_new(DNS_OK, 7 * 86400, NULL);
	struct dns_answer *temp = dns_answer_new(DNS_TEMPFAIL, 100, "x");
	struct dns_answer *zero = dns_answer_new(DNS_OK, 0, NULL);
	struct dns_answer *a;
	const char *error;

	assert_int_equal(dns_name_parse("one.test", 8, NULL, &n1, &error), 0);
	assert_int_equal(dns_name_parse("two.test", 8, NULL, &n2, &error), 0);
	assert_int_equal(dns_name_parse("three.test", 10, NULL, &n3, &error), 0);
	dns_cache_put(c, &n1, DNS_T_A, ok, 0);
	dns_cache_put(c, &n2, DNS_T_A, ok, 0);
	assert_int_equal(dns_cache_count(c), 2);
	/* one is used, so two is the least recently used and goes. */
	a = dns_cache_get(c, &n1, DNS_T_A, 1);
	assert_ptr_equal(a, ok);
	dns_answer_unref(&a);
	dns_cache_put(c, &n3, DNS_T_A, ok, 0);
	assert_int_equal(dns_cache_count(c), 2);
	assert_null(dns_cache_get(c, &n2, DNS_T_A, 1));
	a = dns_cache_get(c, &n1, DNS_T_A, 1);
	assert_non_null(a);
	dns_answer_unref(&a);
	a = dns_cache_get(c, &n3, DNS_T_A, 1);
	assert_non_null(a);
	dns_answer_unref(&a);
	/* Not kept: TEMPFAIL, TTL 0. Replacing an entry keeps the count. */
	dns_cache_put(c, &n2, DNS_T_A, temp, 0);
	dns_cache_put(c, &n2, DNS_T_TXT, zero, 0);
	assert_null(dns_cache_get(c, &n2, DNS_T_A, 1));
	assert_null(dns_cache_get(c, &n2, DNS_T_TXT, 1));
	/* A week's TTL is kept a day at most. */
	dns_cache_put(c, &n1, DNS_T_A, long_ttl, 0);
	assert_int_equal(dns_cache_count(c), 2);
	a = dns_cache_get(c, &n1, DNS_T_A, 86400 * 1000 - 1);
	assert_ptr_equal(a, long_ttl);
	dns_answer_unref(&a);
	assert_null(dns_cache_get(c, &n1, DNS_T_A, 86400 * 1000));
	assert_int_equal(dns_cache_count(c), 1);
	dns_cache_free(&c);
	assert_null(c);
	assert_int_equal(ok->refs, 1);
	assert_int_equal(long_ttl->refs, 1);
	assert_int_equal(temp->refs, 1);
	dns_answer_unref(&ok);
	dns_answer_unref(&long_ttl);
	dns_answer_unref(&temp);
	dns_answer_unref(&zero);
}

/* ------------------------------------------------------------------- pump */

/* An SPF-like check over two rounds: the domain's TXT and the MX of mail
 * first, then the include's TXT and mail's A (named by the first answers). */
struct check {
	unsigned steps, done_calls;
	bool started, finished, free_in_done, free_in_step;
	struct dns_pump *pump;
	const struct dns_answer *txt, *inc, *a;
	const char *first_name;      /* what the first round asks, twice */
};

static int check_step(struct dns_view *v, void *arg)
{
	struct check *c = arg;
	const struct dns_answer *mx;

	c->steps++;
	if (c->free_in_step && c->steps == 2) {
		dns_pump_free(&c->pump);
		return 0;
	}
	c->txt = dns_view_lookup(v, c->first_name, DNS_T_TXT);
	/* The same question again, another case: one question. */
	(void)dns_view_lookup(v, "EXAMPLE.COM", DNS_T_TXT);
	mx = dns_view_lookup(v, "mail.example.com", DNS_T_MX);
	if (c->txt == NULL || mx == NULL)
		return 0;
	c->inc = dns_view_lookup(v, "inc.example.com", DNS_T_TXT);
	c->a = dns_view_lookup(v, mx->n > 0 ? mx->rr[0].u.mx.host : "none", DNS_T_A);
	if (c->inc == NULL || c->a == NULL)
		return 0;
	return 1;
}

static void check_done(void *arg)
{
	struct check *c = arg;

	assert_true(c->started);
	c->done_calls++;
	c->finished = true;
	if (c->free_in_done)
		dns_pump_free(&c->pump);
}

static void test_pump_rounds(void **state)
{
	struct fixture *f = *state;
	struct dns_view *v = dns_view_new(NULL);
	struct check c = { .first_name = "example.com" };

	c.pump = dns_pump_start(f->r, v, 1000, check_step, check_done, &c);
	c.started = true;
	assert_non_null(c.pump);
	assert_int_equal(c.steps, 1);
	assert_false(c.finished);
	run_until(f->base, &c.finished);
	assert_int_equal(c.done_calls, 1);
	assert_int_equal(c.steps, 3);
	assert_int_equal(f->tb.calls, 4);
	assert_int_equal(dns_view_lookups(v), 4);
	assert_int_equal(c.txt->status, DNS_OK);
	assert_int_equal(c.inc->rr[0].u.txt.len, 18);
	assert_int_equal(c.a->n, 1);
	dns_pump_free(&c.pump);
	assert_null(c.pump);
	dns_view_free(&v);

	/* The same check again on a fresh view: all from the cache. */
	v = dns_view_new(NULL);
	memset(&c, 0, sizeof(c));
	c.first_name = "example.com";
	c.free_in_done = true;
	c.pump = dns_pump_start(f->r, v, 1000, check_step, check_done, &c);
	c.started = true;
	run_until(f->base, &c.finished);
	assert_null(c.pump);    /* freed from inside done() */
	assert_int_equal(c.steps, 3);
	assert_int_equal(f->tb.calls, 4);
	dns_view_free(&v);

	/* A view over the zone: one step, done() still on the loop. */
	v = dns_view_new(f->zone);
	memset(&c, 0, sizeof(c));
	c.first_name = "example.com";
	c.pump = dns_pump_start(f->r, v, 0, check_step, check_done, &c);
	c.started = true;
	assert_int_equal(c.steps, 1);
	assert_false(c.finished);
	run_until(f->base, &c.finished);
	assert_int_equal(c.done_calls, 1);
	dns_pump_free(&c.pump);
	dns_view_free(&v);
}

static void test_pump_deadline(void **state)
{
	struct fixture *f = *state;
	struct dns_view *v = dns_view_new(NULL);
	struct check c = { .first_name = "slow.example.com" };
	struct timeval t0, t1;

	/* A backend that never answers for slow.example.com: the deadline does. */
	f->tb.hang_name = "slow.example.com";
	evutil_gettimeofday(&t0, NULL);
	c.pump = dns_pump_start(f->r, v, 100, check_step, check_done, &c);
	c.started = true;
	run_until(f->base, &c.finished);
	evutil_gettimeofday(&t1, NULL);
	assert_true(c.finished);
	assert_int_equal(c.txt->status, DNS_TEMPFAIL);
	assert_non_null(strstr(c.txt->why, "no answer within 100 ms"));
	assert_int_equal(f->tb.cancels, 1);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000 >= 95);
	/* The round after the deadline still ran. */
	assert_int_equal(c.a->status, DNS_OK);
	dns_pump_free(&c.pump);
	dns_view_free(&v);
}

static void test_pump_free_early(void **state)
{
	struct fixture *f = *state;
	struct dns_view *v = dns_view_new(NULL);
	struct check c = { .first_name = "slow.example.com" };
	struct timeval tv = { 0, 200000 };

	/* Freed while a question is with the backend: cancelled, done() never runs. */
	f->tb.hang_name = "slow.example.com";
	c.pump = dns_pump_start(f->r, v, 50, check_step, check_done, &c);
	c.started = true;
	assert_int_equal(f->tb.outstanding, 1);
	dns_pump_free(&c.pump);
	assert_int_equal(f->tb.outstanding, 0);
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_int_equal(c.done_calls, 0);
	assert_int_equal(c.steps, 1);
	dns_view_free(&v);

	/* Freed from inside the second step: nothing more happens. */
	v = dns_view_new(NULL);
	memset(&c, 0, sizeof(c));
	c.first_name = "example.com";
	c.free_in_step = true;
	c.pump = dns_pump_start(f->r, v, 1000, check_step, check_done, &c);
	c.started = true;
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_null(c.pump);
	assert_int_equal(c.steps, 2);
	assert_int_equal(c.done_calls, 0);
	dns_view_free(&v);

	/* Freed after done() was scheduled but before it ran: it never runs. */
	v = dns_view_new(f->zone);
	memset(&c, 0, sizeof(c));
	c.first_name = "example.com";
	c.pump = dns_pump_start(f->r, v, 0, check_step, check_done, &c);
	dns_pump_free(&c.pump);
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_int_equal(c.done_calls, 0);
	dns_view_free(&v);
}

/* A step that returns 0 without leaving a question cannot progress: done. */
static int stuck_step(struct dns_view *v, void *arg)
{
	unsigned *n = arg;

	(*n)++;
	return 0;
}

static void stuck_done(void *arg)
{
	unsigned *n = arg;

	*n += 100;
}

static void test_pump_stuck_step(void **state)
{
	struct fixture *f = *state;
	struct dns_view *v = dns_view_new(NULL);
	unsigned n = 0;
	struct dns_pump *p = dns_pump_start(f->r, v, 0, stuck_step, stuck_done, &n);
	struct timeval tv = { 0, 50000 };

	assert_non_null(p);
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	assert_int_equal(n, 101);
	dns_pump_free(&p);
	dns_view_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve_deferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_ttl, setup, teardown),
		cmocka_unit_test(test_cache_bounds),
		cmocka_unit_test_setup_teardown(test_pump_rounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pump_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pump_free_early, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pump_stuck_step, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
