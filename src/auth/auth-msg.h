/*
 * auth-msg — messages between a front process and the auth process.
 *
 * The front never opens the directory: it asks. In this version it asks only
 * whether a recipient is local (RCPT on every listener); credentials join in the
 * authentication work. Each type's encoder and decoder sit side by side here.
 */
#ifndef RAMPART_AUTH_MSG_H
#define RAMPART_AUTH_MSG_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define AUTH_MAX_MAILBOXES 1000

enum auth_msg_type {
	AUTH_RCPT_REQ = 100,
	AUTH_RCPT_RES,
};

enum auth_rcpt_status {
	AUTH_RCPT_OK,            /* local; mailboxes lists where it is delivered */
	AUTH_RCPT_NOT_LOCAL,     /* the domain is not ours */
	AUTH_RCPT_NO_SUCH_USER,  /* our domain, nobody by that name */
	AUTH_RCPT_TEMPFAIL,      /* the directory could not answer now */
};

struct auth_rcpt_req {
	const char *address;     /* normalised mailbox, local@domain */
};
void auth_rcpt_req_encode(struct evbuffer *b, const struct auth_rcpt_req *m);
int auth_rcpt_req_decode(const void *data, size_t len, struct auth_rcpt_req *m,
    const char **error_r);

struct auth_rcpt_res {
	enum auth_rcpt_status status;
	uint32_t nmailboxes;
	const char *mailboxes[AUTH_MAX_MAILBOXES];   /* point into the frame */
};
void auth_rcpt_res_encode(struct evbuffer *b, const struct auth_rcpt_res *m);
/* m is large: callers allocate it, not the stack of a deep call chain. */
int auth_rcpt_res_decode(const void *data, size_t len, struct auth_rcpt_res *m,
    const char **error_r);

#endif
