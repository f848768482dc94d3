/*
 * front-process — accepts client connections and runs their protocol sessions.
 *
 * One per core; each has its own SO_REUSEPORT socket per listener, bound by the
 * parent. It holds no secrets besides the TLS key: credentials and recipient
 * questions go to the auth process, messages to the queue process, over the
 * channels the parent hands it. Limits applied at accept time: connections per
 * listener and per client address (per front process). On CTL_STOP it stops
 * accepting, lets open transactions finish within the grace period, and exits.
 */
#ifndef RAMPART_FRONT_PROCESS_H
#define RAMPART_FRONT_PROCESS_H

struct config;

/* listen_fds[i] is this front's socket for cfg->listeners[i]. */
int front_process_main(const struct config *cfg, unsigned index, int ctl_fd,
    const int *listen_fds);

#endif
