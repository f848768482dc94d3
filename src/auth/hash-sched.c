/* hash-sched — see hash-sched.h. */
#include "auth/hash-sched.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

struct hash_job {
	struct hash_job *next;
	struct hash_sched *hs;
	bool familiar;
	workpool_fn *run, *done;
	void *arg;
};

struct hash_lane {
	struct hash_job *head, **tail;
	size_t len;
	uint64_t started;
};

struct hash_sched {
	struct workpool *pool;
	struct event *timer;
	unsigned threads, running;
	unsigned running_unfamiliar;  /* at most threads - 1 (when threads > 1) */
	double rate, tokens;        /* unfamiliar lane's bucket */
	int64_t refilled_ms;
	size_t queue_max;
	struct hash_lane lane[2];   /* [1] familiar, [0] unfamiliar */
};

static void hash_sched_pump(struct hash_sched *hs);

static void
job_done(void *arg)
{
	struct hash_job *j = arg;
	struct hash_sched *hs = j->hs;
	hs->running--;
	if (!j->familiar)
		hs->running_unfamiliar--;
	j->done(j->arg);
	free(j);
	hash_sched_pump(hs);
}

static void
job_run(void *arg)
{
	struct hash_job *j = arg;
	j->run(j->arg);
}

static struct hash_job *
lane_pop(struct hash_lane *l)
{
	struct hash_job *j = l->head;
	l->head = j->next;
	if (l->head == NULL)
		l->tail = &l->head;
	l->len--;
	l->started++;
	return j;
}

static void
refill(struct hash_sched *hs)
{
	int64_t now = clock_mono_ms();
	hs->tokens += (double)(now - hs->refilled_ms) * hs->rate / 1000.0;
	if (hs->tokens > hs->rate)
		hs->tokens = hs->rate < 1 ? 1 : hs->rate;   /* burst: one second's worth */
	hs->refilled_ms = now;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	hash_sched_pump(arg);
}

static void
hash_sched_pump(struct hash_sched *hs)
{
	while (hs->running < hs->threads) {
		struct hash_job *j = NULL;
		if (hs->lane[1].len > 0) {
			j = lane_pop(&hs->lane[1]);
		} else if (hs->lane[0].len > 0) {
			/* One thread stays free for a familiar login: it waits for at
			 * most its own hash, never behind an attacker's. */
			if (hs->threads > 1 && hs->running_unfamiliar >= hs->threads - 1)
				return;
			refill(hs);
			if (hs->tokens < 1.0) {
				double wait = (1.0 - hs->tokens) / hs->rate;
				struct timeval tv = { (time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6) + 1000 };
				if (!evtimer_pending(hs->timer, NULL))
					evtimer_add(hs->timer, &tv);
				return;
			}
			hs->tokens -= 1.0;
			j = lane_pop(&hs->lane[0]);
			hs->running_unfamiliar++;
		} else {
			return;
		}
		hs->running++;
		workpool_submit(hs->pool, job_run, job_done, j);
	}
}

struct hash_sched *
hash_sched_new(struct event_base *base, unsigned threads, double rate, size_t queue_max)
{
	struct hash_sched *hs = calloc(1, sizeof(*hs));
	if (hs == NULL)
		return NULL;
	hs->pool = workpool_new(base, threads, "hash");
	hs->timer = evtimer_new(base, on_timer, hs);
	if (hs->pool == NULL || hs->timer == NULL) {
		hash_sched_free(&hs);
		return NULL;
	}
	hs->threads = threads;
	hs->rate = rate;
	hs->tokens = rate < 1 ? 1 : rate;
	hs->refilled_ms = clock_mono_ms();
	hs->queue_max = queue_max;
	for (int i = 0; i < 2; i++)
		hs->lane[i].tail = &hs->lane[i].head;
	return hs;
}

void
hash_sched_free(struct hash_sched **hsp)
{
	struct hash_sched *hs = *hsp;
	if (hs == NULL)
		return;
	*hsp = NULL;
	/* Queued jobs still get their answer (a done without a run would lie). */
	hs->threads = (unsigned)-1;
	hs->rate = 1e12;
	hs->tokens = 1e12;
	hash_sched_pump(hs);
	workpool_free(&hs->pool);
	if (hs->timer != NULL)
		event_free(hs->timer);
	free(hs);
}

int
hash_sched_submit(struct hash_sched *hs, bool familiar, workpool_fn *run, workpool_fn *done,
    void *arg)
{
	struct hash_lane *l = &hs->lane[familiar ? 1 : 0];
	if (!familiar && l->len >= hs->queue_max)
		return -1;
	struct hash_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -1;
	j->hs = hs;
	j->familiar = familiar;
	j->run = run;
	j->done = done;
	j->arg = arg;
	*l->tail = j;
	l->tail = &j->next;
	l->len++;
	hash_sched_pump(hs);
	return 0;
}

uint64_t
hash_sched_started(const struct hash_sched *hs, bool familiar)
{
	return hs->lane[familiar ? 1 : 0].started;
}
