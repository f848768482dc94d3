/*
 * proc — what every child process does the same way: name itself in the log,
 * drop privileges, and follow its control channel to the parent (CTL_PEER hands
 * it channels to other children, CTL_STOP asks it to finish, and the parent
 * hanging up means exit at once — a child never outlives its parent).
 */
#ifndef RAMPART_PROC_H
#define RAMPART_PROC_H

#include "lib/ctl-msg.h"
#include "lib/ipc.h"

#include <stdbool.h>

struct config;
struct event_base;

struct proc_hooks {
	/* A channel to another process arrived; the hook owns fd. */
	void (*peer)(const struct ctl_peer *peer, int fd, void *ctx);
	/* Graceful stop requested (drain: after a reload, see struct ctl_stop). */
	void (*stop)(unsigned grace_seconds, bool drain, void *ctx);
};

/* Sets up the control channel on ctl_fd; the returned channel lives until exit. */
struct ipc_channel *proc_control_attach(struct event_base *base, int ctl_fd,
    const struct proc_hooks *hooks, void *ctx);
/* Tells the parent this child is set up and serving: a death after this is a
 * crash to restart from at once, not a start-up failure to back off from. */
void proc_ready(struct ipc_channel *ctl);
/* Names the process "rampartd-ROLE" in ps and /proc/PID/comm, and in the log. */
void proc_set_role(const char *role);
/* Switches to cfg->user when running as root and a user is configured. */
void proc_drop_privileges(const struct config *cfg, const char *role);

#endif
