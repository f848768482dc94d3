/* proc — see proc.h. */
#include "lib/proc.h"
#include "lib/config.h"
#include "lib/log.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <unistd.h>

struct proc_control {
	const struct proc_hooks *hooks;
	void *ctx;
};

static void
proc_on_ctl_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct proc_control *pc = arg;
	const char *error;
	switch (f->type) {
	case CTL_PEER: {
		struct ctl_peer peer;
		if (ctl_peer_decode(f->data, f->len, &peer, &error) < 0 || f->fd < 0) {
			log_error("control: bad CTL_PEER: %s", f->fd < 0 ? "no descriptor" : error);
			return;
		}
		int fd = f->fd;
		f->fd = -1;
		pc->hooks->peer(&peer, fd, pc->ctx);
		break;
	}
	case CTL_STOP: {
		struct ctl_stop stop;
		if (ctl_stop_decode(f->data, f->len, &stop, &error) < 0) {
			log_error("control: bad CTL_STOP: %s", error);
			return;
		}
		pc->hooks->stop(stop.grace_seconds, stop.drain != 0, pc->ctx);
		break;
	}
	default:
		log_warn("control: unknown message type %u", f->type);
	}
}

static void
proc_on_ctl_close(struct ipc_channel *ch, void *arg)
{
	/* The parent is gone: nobody supervises us, so stop now. */
	log_info("parent went away; exiting");
	_exit(0);
}

struct ipc_channel *
proc_control_attach(struct event_base *base, int ctl_fd, const struct proc_hooks *hooks,
    void *ctx)
{
	struct proc_control *pc = calloc(1, sizeof(*pc));
	if (pc == NULL)
		fatal("out of memory");
	pc->hooks = hooks;
	pc->ctx = ctx;
	return ipc_channel_new(base, ctl_fd, "parent", proc_on_ctl_frame, proc_on_ctl_close, pc);
}

void
proc_ready(struct ipc_channel *ctl)
{
	ipc_send(ctl, CTL_READY, 0, NULL, 0, -1);
}

void
proc_set_role(const char *role)
{
	char comm[16], ident[64];
	snprintf(comm, sizeof(comm), "rampartd-%s", role);
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	snprintf(ident, sizeof(ident), "rampartd/%s", role);
	log_set_ident(ident);
}

void
proc_drop_privileges(const struct config *cfg, const char *role)
{
	if (cfg->user[0] == '\0' || geteuid() != 0)
		return;
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL)
		fatal("%s: no such user '%s'", role, cfg->user);
	if (setgroups(1, &pw->pw_gid) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		fatal("%s: cannot switch to user %s: %m", role, cfg->user);
}
