/*
 * hash-sched — when each password verification may use a hashing thread.
 *
 * Argon2id is the one thing in the auth process an attacker can make expensive,
 * so it runs on a bounded worker pool (never on the event loop) behind two lanes:
 *   - the familiar lane (a user logging in from an address that logged in to
 *     that account recently) always goes first;
 *   - the unfamiliar lane never holds every thread (one stays for familiar
 *     logins when there are two or more), and is capped at `rate` per second
 *     (a token bucket with a one-second burst); at most `queue_max` such
 *     jobs wait; beyond that hash_sched_submit() refuses (the login gets a
 *     temporary failure) rather than queueing without bound.
 * So an attack costs at most `threads` - 1 cores and `rate` hashes per second,
 * and a familiar login waits for at most its own hash plus the queue of other
 * familiar logins.
 */
#ifndef RAMPART_HASH_SCHED_H
#define RAMPART_HASH_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/workpool.h"

struct event_base;
struct hash_sched;

struct hash_sched *hash_sched_new(struct event_base *base, unsigned threads, double rate,
    size_t queue_max);
/* Runs every queued and running job to its done callback, then frees. */
void hash_sched_free(struct hash_sched **hs);
/* Queues run(arg) on a hashing thread, then done(arg) on the loop. -1 when the
 * unfamiliar lane is full (nothing is queued then). */
int hash_sched_submit(struct hash_sched *hs, bool familiar, workpool_fn *run, workpool_fn *done,
    void *arg);
/* Verifications started so far, per lane (for the benchmark and the log). */
uint64_t hash_sched_started(const struct hash_sched *hs, bool familiar);

#endif
