/* Unit tests for lib/workpool: every job runs once, done callbacks run on the loop
 * thread, concurrency never exceeds the thread count, and free drains everything. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/workpool.h"

#define JOBS 200

static atomic_int running, max_running, ran;
static int done_count;
static pthread_t loop_thread;
static struct event_base *base;

static void
job_run(void *arg)
{
	int now = atomic_fetch_add(&running, 1) + 1;
	int seen = atomic_load(&max_running);
	while (now > seen && !atomic_compare_exchange_weak(&max_running, &seen, now))
		;
	usleep(200);
	atomic_fetch_add(&ran, 1);
	atomic_fetch_sub(&running, 1);
}

static void
job_done(void *arg)
{
	assert_true(pthread_equal(pthread_self(), loop_thread));
	if (++done_count == JOBS)
		event_base_loopbreak(base);
}

static void
test_jobs_run_once_bounded(void **state)
{
	base = event_base_new();
	loop_thread = pthread_self();
	struct workpool *p = workpool_new(base, 3, "test");
	for (int i = 0; i < JOBS; i++)
		workpool_submit(p, job_run, job_done, NULL);
	assert_int_equal(workpool_backlog(p), JOBS);
	struct timeval tv = { 10, 0 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_int_equal(atomic_load(&ran), JOBS);
	assert_int_equal(done_count, JOBS);
	assert_true(atomic_load(&max_running) <= 3);
	assert_int_equal(workpool_backlog(p), 0);
	workpool_free(&p);
	assert_null(p);
	event_base_free(base);
}

static void
test_free_drains_queued_jobs(void **state)
{
	base = event_base_new();
	loop_thread = pthread_self();
	atomic_store(&ran, 0);
	done_count = 0;
	struct workpool *p = workpool_new(base, 1, "drain");
	for (int i = 0; i < 20; i++)
		workpool_submit(p, job_run, job_done, NULL);
	workpool_free(&p);   /* without running the loop */
	assert_int_equal(atomic_load(&ran), 20);
	assert_int_equal(done_count, 20);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_run_once_bounded),
		cmocka_unit_test(test_free_drains_queued_jobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
