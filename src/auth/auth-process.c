/* auth-process — see auth-process.h. */
#include "auth/auth-process.h"
#include "auth/auth-msg.h"
#include "auth/auth-private.h"
#include "auth/directory.h"
#include "lib/config.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

struct postmaster_search {
	struct auth_ctx *a;
	struct directory_rcpt *r;
	int found;
};

static int
postmaster_try_domain(const char *domain, void *arg)
{
	struct postmaster_search *ps = arg;
	char address[300];
	const char *error;
	snprintf(address, sizeof(address), "postmaster@%s", domain);
	directory_rcpt_free(ps->r);
	if (directory_lookup_rcpt(ps->a->dir, address, 0, ps->r, &error) < 0) {
		ps->found = -1;
		return 1;
	}
	ps->found = ps->r->status == DIRECTORY_RCPT_OK && ps->r->nmailboxes > 0;
	return ps->found;   /* non-zero stops the listing */
}

/*
 * RFC 5321 §4.1.1.3 and §4.5.1: a bare <Postmaster> must be accepted. It is the
 * postmaster of this host's name if that is a local domain, else of the first
 * local domain (in name order) that has one.
 */
static int
lookup_bare_postmaster(struct auth_ctx *a, struct directory_rcpt *r, const char **error_r)
{
	struct postmaster_search ps = { a, r, 0 };
	postmaster_try_domain(a->cfg->hostname, &ps);
	if (ps.found == 0 && directory_domain_list(a->dir, postmaster_try_domain, &ps, error_r) < 0)
		return -1;
	if (ps.found < 0) {
		*error_r = "postmaster look-up failed";
		return -1;
	}
	if (ps.found == 0) {
		directory_rcpt_free(r);
		r->status = DIRECTORY_RCPT_NO_SUCH_USER;
	}
	return 0;
}

static void
auth_answer_rcpt(struct auth_ctx *a, struct ipc_channel *ch, struct ipc_frame *f)
{
	struct auth_rcpt_req req;
	const char *error;
	if (auth_rcpt_req_decode(f->data, f->len, &req, &error) < 0) {
		log_warn("auth: bad RCPT request from %s: %s", ipc_channel_peer(ch), error);
		return;
	}
	struct directory_rcpt r = { 0 };
	char delim = a->cfg->recipient_delimiter[0];
	struct auth_rcpt_res *res = a->res;
	res->nmailboxes = 0;
	int rc = strcasecmp(req.address, "postmaster") == 0 ?
	    lookup_bare_postmaster(a, &r, &error) :
	    directory_lookup_rcpt(a->dir, req.address, delim, &r, &error);
	if (rc < 0) {
		log_error("auth: recipient look-up failed: %s", error);
		res->status = AUTH_RCPT_TEMPFAIL;
	} else {
		switch (r.status) {
		case DIRECTORY_RCPT_OK:
			res->status = AUTH_RCPT_OK;
			for (size_t i = 0; i < r.nmailboxes && i < AUTH_MAX_MAILBOXES; i++)
				res->mailboxes[res->nmailboxes++] = r.mailboxes[i];
			if (res->nmailboxes == 0)
				res->status = AUTH_RCPT_NO_SUCH_USER; /* only external targets: not yet */
			break;
		case DIRECTORY_RCPT_NOT_LOCAL_DOMAIN:
			res->status = AUTH_RCPT_NOT_LOCAL;
			break;
		case DIRECTORY_RCPT_NO_SUCH_USER:
			res->status = AUTH_RCPT_NO_SUCH_USER;
			break;
		case DIRECTORY_RCPT_TOO_MANY:
			log_warn("auth: %s expands to too many recipients", req.address);
			res->status = AUTH_RCPT_TEMPFAIL;
			break;
		}
	}
	auth_rcpt_res_encode(a->out, res);
	ipc_send_buf(ch, AUTH_RCPT_RES, f->id, a->out, -1);
	directory_rcpt_free(&r);
}

static void
auth_on_front_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct auth_front *fr = arg;
	switch (f->type) {
	case AUTH_RCPT_REQ:
		auth_answer_rcpt(fr->auth, ch, f);
		break;
	case AUTH_LOGIN_REQ:
		auth_login_request(fr, f);
		break;
	case AUTH_LOGIN_REPORT:
		auth_login_report(fr, f);
		break;
	case AUTH_SENDER_REQ:
		auth_sender_request(fr, f);
		break;
	default:
		log_warn("auth: unknown message type %u from %s", f->type, ipc_channel_peer(ch));
	}
}

void
auth_front_release(struct auth_front *fr)
{
	if (fr->ch == NULL && fr->pending == 0)
		free(fr);
}

/* The channel goes now; logins still hashing keep the struct until they end. */
static void
auth_on_front_close(struct ipc_channel *ch, void *arg)
{
	struct auth_front *fr = arg;
	*fr->prevp = fr->next;
	if (fr->next != NULL)
		fr->next->prevp = fr->prevp;
	ipc_channel_free(&fr->ch);
	auth_front_release(fr);
}

static void
auth_on_peer(const struct ctl_peer *peer, int fd, void *ctx)
{
	struct auth_ctx *a = ctx;
	char name[32];
	snprintf(name, sizeof(name), "front/%u", peer->index);
	struct auth_front *fr = calloc(1, sizeof(*fr));
	if (fr == NULL)
		fatal("out of memory");
	fr->auth = a;
	fr->ch = ipc_channel_new(a->base, fd, name, auth_on_front_frame, auth_on_front_close, fr);
	fr->next = a->fronts;
	if (fr->next != NULL)
		fr->next->prevp = &fr->next;
	fr->prevp = &a->fronts;
	a->fronts = fr;
}

static void
auth_on_stop(unsigned grace, bool drain, void *ctx)
{
	struct auth_ctx *a = ctx;
	event_base_loopexit(a->base, NULL);
}

int
auth_process_main(const struct config *cfg, int ctl_fd)
{
	static const struct proc_hooks hooks = { auth_on_peer, auth_on_stop };
	struct auth_ctx a = { .cfg = cfg };
	char *error = NULL;

	proc_set_role("auth");
	/* Privileges go first: the directory's files belong to the service user. */
	proc_drop_privileges(cfg, "auth");
	a.dir = directory_open(cfg->directory_path, &error);
	if (a.dir == NULL)
		fatal("auth: %s", error);
	a.base = event_base_new();
	a.out = evbuffer_new();
	a.res = calloc(1, sizeof(*a.res));
	if (a.base == NULL || a.out == NULL || a.res == NULL)
		fatal("auth: out of memory");
	const char *err;
	if (auth_guard_init(&a, &err) < 0 || auth_login_init(&a, &err) < 0)
		fatal("auth: %s", err);
	struct ipc_channel *ctl = proc_control_attach(a.base, ctl_fd, &hooks, &a);
	proc_ready(ctl);
	log_debug("auth: ready, directory %s", cfg->directory_path);
	event_base_dispatch(a.base);
	while (a.fronts != NULL)
		auth_on_front_close(a.fronts->ch, a.fronts);
	auth_login_deinit(&a);   /* finishes logins in flight (their fronts are gone) */
	auth_guard_deinit(&a);
	ipc_channel_free(&ctl);
	directory_close(&a.dir);
	evbuffer_free(a.out);
	free(a.res);
	event_base_free(a.base);
	return 0;
}
