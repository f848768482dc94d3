/*
 * ctl-msg — messages between the parent and its children (control channel).
 *
 * The parent brokers every channel between children: it creates a socketpair and
 * sends one end to each side with CTL_PEER, at start-up and whenever a child is
 * restarted, so a restarted queue or front is wired exactly like the first one.
 */
#ifndef RAMPART_CTL_MSG_H
#define RAMPART_CTL_MSG_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum ctl_msg_type {
	CTL_PEER = 1,   /* parent → child: the attached fd is a channel to (kind, index) */
	CTL_STOP,       /* parent → child: stop accepting, finish within grace seconds, exit */
	CTL_READY,      /* child → parent: set up and serving (no payload) */
};

enum proc_kind { PROC_PARENT, PROC_AUTH, PROC_QUEUE, PROC_FRONT, PROC_KEYS };

const char *proc_kind_name(enum proc_kind kind);

struct ctl_peer {
	enum proc_kind kind;
	uint32_t index;        /* front number; 0 for auth, queue and keys */
	uint32_t generation;   /* of the front (reloads start a new generation) */
};
void ctl_peer_encode(struct evbuffer *b, const struct ctl_peer *m);
int ctl_peer_decode(const void *data, size_t len, struct ctl_peer *m, const char **error_r);

struct ctl_stop {
	uint32_t grace_seconds;
	/* 0: shutdown — idle sessions are closed (421) now, busy ones after their
	 * transaction. 1: drain after a reload — sessions go on undisturbed until they
	 * end; the grace period only bounds how long. */
	uint8_t drain;
};
void ctl_stop_encode(struct evbuffer *b, const struct ctl_stop *m);
int ctl_stop_decode(const void *data, size_t len, struct ctl_stop *m, const char **error_r);

#endif
