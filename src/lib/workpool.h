/*
 * workpool — a bounded set of threads for blocking work (fsync, Maildir writes,
 * Argon2id) so that an event loop never blocks.
 *
 * workpool_submit() queues a job: run(arg) executes on a worker thread and must
 * touch only what arg owns; then done(arg) runs back on the loop's thread.
 * Concurrency is capped by the thread count, which is the point: it bounds the
 * CPU and disk work that peers can cause. Jobs run in submission order.
 */
#ifndef RAMPART_WORKPOOL_H
#define RAMPART_WORKPOOL_H

#include <stddef.h>

struct event_base;
struct workpool;

typedef void workpool_fn(void *arg);

struct workpool *workpool_new(struct event_base *base, unsigned threads, const char *name);
/* Waits for running jobs, runs queued ones, delivers every done callback, then frees. */
void workpool_free(struct workpool **pool);
void workpool_submit(struct workpool *pool, workpool_fn *run, workpool_fn *done, void *arg);
/* Jobs submitted and not yet done (queued, running or awaiting their done callback). */
size_t workpool_backlog(const struct workpool *pool);

#endif
