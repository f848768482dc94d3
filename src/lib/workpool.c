/* workpool — see workpool.h. */
#include "lib/workpool.h"
#include "lib/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

struct job {
	struct job *next;
	workpool_fn *run, *done;
	void *arg;
};

struct job_list {
	struct job *head, **tail;
};

struct workpool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job_list todo, finished;
	bool stopping;
	int efd;
	struct event *ev;
	unsigned nthreads;
	pthread_t *threads;
	size_t backlog;
	char name[32];
};

static void
list_push(struct job_list *l, struct job *j)
{
	j->next = NULL;
	*l->tail = j;
	l->tail = &j->next;
}

static struct job *
list_take_all(struct job_list *l)
{
	struct job *h = l->head;
	l->head = NULL;
	l->tail = &l->head;
	return h;
}

static void *
worker_main(void *arg)
{
	struct workpool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->todo.head == NULL && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->todo.head == NULL)
			break;
		struct job *j = p->todo.head;
		p->todo.head = j->next;
		if (p->todo.head == NULL)
			p->todo.tail = &p->todo.head;
		pthread_mutex_unlock(&p->lock);
		j->run(j->arg);
		pthread_mutex_lock(&p->lock);
		bool was_empty = p->finished.head == NULL;
		list_push(&p->finished, j);
		if (was_empty) {
			uint64_t one = 1;
			if (write(p->efd, &one, sizeof(one)) < 0) {
				/* The counter cannot overflow here; nothing to do. */
			}
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void
workpool_deliver(struct workpool *p)
{
	pthread_mutex_lock(&p->lock);
	struct job *j = list_take_all(&p->finished);
	pthread_mutex_unlock(&p->lock);
	while (j != NULL) {
		struct job *next = j->next;
		p->backlog--;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
		j = next;
	}
}

static void
workpool_on_event(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another wakeup already drained it. */
	}
	workpool_deliver(arg);
}

struct workpool *
workpool_new(struct event_base *base, unsigned threads, const char *name)
{
	struct workpool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		fatal("out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	p->todo.tail = &p->todo.head;
	p->finished.tail = &p->finished.head;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0)
		fatal("workpool %s: eventfd: %m", name);
	p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, workpool_on_event, p);
	event_add(p->ev, NULL);
	p->nthreads = threads == 0 ? 1 : threads;
	p->threads = calloc(p->nthreads, sizeof(*p->threads));
	for (unsigned i = 0; i < p->nthreads; i++)
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
			fatal("workpool %s: cannot start a thread", name);
	return p;
}

void
workpool_free(struct workpool **pp)
{
	struct workpool *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	workpool_deliver(p);
	event_free(p->ev);
	close(p->efd);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

void
workpool_submit(struct workpool *p, workpool_fn *run, workpool_fn *done, void *arg)
{
	struct job *j = malloc(sizeof(*j));
	if (j == NULL)
		fatal("out of memory");
	j->run = run;
	j->done = done;
	j->arg = arg;
	p->backlog++;
	pthread_mutex_lock(&p->lock);
	list_push(&p->todo, j);
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

size_t
workpool_backlog(const struct workpool *p)
{
	return p->backlog;
}
