/*
 * auth-process — the only process that opens the directory.
 *
 * Front processes ask it, over their channels, whether a recipient is local and
 * where it is delivered (AUTH_RCPT_REQ). Credential checks, the guard and the
 * audit log come here too, so secrets never live in a network-facing process.
 */
#ifndef RAMPART_AUTH_PROCESS_H
#define RAMPART_AUTH_PROCESS_H

struct config;

/* Runs the auth process's loop; returns the exit status. */
int auth_process_main(const struct config *cfg, int ctl_fd);

#endif
