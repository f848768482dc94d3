/* Unit tests for auth/hash-sched: the familiar lane goes first, the unfamiliar
 * lane is held to its rate and its queue bound, concurrency never exceeds the
 * thread count, and freeing still answers every queued job. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/hash-sched.h"

static atomic_int running, max_running;
static int order[64], norder, done_count;
static struct event_base *base;

struct job {
	int id;
	int64_t done_ms;
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
job_run(void *arg)
{
	int now = atomic_fetch_add(&running, 1) + 1;
	int seen = atomic_load(&max_running);
	while (now > seen && !atomic_compare_exchange_weak(&max_running, &seen, now))
		;
	usleep(20000);
	atomic_fetch_sub(&running, 1);
}

static void
job_done(void *arg)
{
	struct job *j = arg;
	j->done_ms = now_ms();
	if (norder < 64)
		order[norder++] = j->id;
	done_count++;
}

static void
wait_done(int n, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	while (done_count < n && now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
}

static int
setup(void **state)
{
	base = event_base_new();
	norder = done_count = 0;
	atomic_store(&running, 0);
	atomic_store(&max_running, 0);
	return base == NULL;
}

static int
teardown(void **state)
{
	event_base_free(base);
	return 0;
}

/* One thread, busy with an unfamiliar job: familiar ones queued later still
 * run before the unfamiliar ones queued earlier. */
static void
test_familiar_first(void **state)
{
	struct hash_sched *hs = hash_sched_new(base, 1, 1000, 100);
	struct job j[6];
	for (int i = 0; i < 6; i++)
		j[i].id = i;
	for (int i = 0; i < 3; i++)
		assert_int_equal(hash_sched_submit(hs, false, job_run, job_done, &j[i]), 0);
	for (int i = 3; i < 6; i++)
		assert_int_equal(hash_sched_submit(hs, true, job_run, job_done, &j[i]), 0);
	wait_done(6, 5000);
	assert_int_equal(done_count, 6);
	int expect[6] = { 0, 3, 4, 5, 1, 2 };
	for (int i = 0; i < 6; i++)
		assert_int_equal(order[i], expect[i]);
	assert_int_equal(atomic_load(&max_running), 1);
	assert_int_equal(hash_sched_started(hs, true), 3);
	assert_int_equal(hash_sched_started(hs, false), 3);
	hash_sched_free(&hs);
	assert_null(hs);
}

/* Rate 5/s with a burst of 5: 12 unfamiliar jobs take more than a second, and
 * the queue bound refuses the ones beyond it. */
static void
test_rate_and_bound(void **state)
{
	struct hash_sched *hs = hash_sched_new(base, 4, 5, 8);
	struct job j[20];
	int accepted = 0;
	int64_t start = now_ms();
	for (int i = 0; i < 20; i++) {
		j[i].id = i;
		if (hash_sched_submit(hs, false, job_run, job_done, &j[i]) == 0)
			accepted++;
	}
	/* 3 start at once (one of the 4 threads stays free for familiar logins;
	 * the burst would allow 5), 8 may wait, the rest are refused */
	assert_int_equal(accepted, 11);
	wait_done(accepted, 10000);
	assert_int_equal(done_count, accepted);
	/* the 8 waiting jobs have 2 tokens left and 5/s: at least 1.2 s */
	assert_true(now_ms() - start >= 1200);
	assert_true(atomic_load(&max_running) <= 3);
	/* familiar jobs are never refused nor rate-limited */
	done_count = 0;
	start = now_ms();
	for (int i = 0; i < 20; i++)
		assert_int_equal(hash_sched_submit(hs, true, job_run, job_done, &j[i]), 0);
	wait_done(20, 5000);
	assert_int_equal(done_count, 20);
	assert_true(now_ms() - start < 1000);
	hash_sched_free(&hs);
}

/* Freeing with jobs queued behind the rate still answers each one. */
static void
test_free_answers_all(void **state)
{
	struct hash_sched *hs = hash_sched_new(base, 1, 1, 50);
	struct job j[10];
	for (int i = 0; i < 10; i++) {
		j[i].id = i;
		assert_int_equal(hash_sched_submit(hs, false, job_run, job_done, &j[i]), 0);
	}
	hash_sched_free(&hs);
	assert_int_equal(done_count, 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_familiar_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_and_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_answers_all, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
