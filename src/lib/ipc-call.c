/* ipc-call — see ipc-call.h. */
#include "lib/ipc-call.h"
#include "lib/log.h"

#include <stdlib.h>

struct ipc_call {
	struct ipc_call *next, **prevp;
	uint32_t id;
	ipc_reply_fn *fn;      /* NULL once cancelled */
	void *arg;
	void (*cleanup)(void *arg);   /* frees arg if the call is cancelled */
};

struct ipc_client {
	struct ipc_channel *ch;
	struct ipc_call *pending, **tail;
	uint32_t next_id;
	ipc_orphan_fn *orphan;
	void *orphan_ctx;
};

struct ipc_client *
ipc_client_new(void)
{
	struct ipc_client *cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		fatal("out of memory");
	cl->tail = &cl->pending;
	return cl;
}

static void
call_unlink(struct ipc_client *cl, struct ipc_call *c)
{
	*c->prevp = c->next;
	if (c->next != NULL)
		c->next->prevp = c->prevp;
	else
		cl->tail = c->prevp;
}

void
ipc_client_fail_all(struct ipc_client *cl)
{
	while (cl->pending != NULL) {
		struct ipc_call *c = cl->pending;
		call_unlink(cl, c);
		if (c->fn != NULL)
			c->fn(NULL, c->arg);
		free(c);
	}
}

void
ipc_client_free(struct ipc_client **clp)
{
	struct ipc_client *cl = *clp;
	if (cl == NULL)
		return;
	*clp = NULL;
	ipc_client_fail_all(cl);
	ipc_channel_free(&cl->ch);
	free(cl);
}

void
ipc_client_attach(struct ipc_client *cl, struct ipc_channel *ch)
{
	ipc_client_fail_all(cl);
	ipc_channel_free(&cl->ch);
	cl->ch = ch;
}

struct ipc_channel *
ipc_client_channel(struct ipc_client *cl)
{
	return cl->ch;
}

void
ipc_client_set_orphan(struct ipc_client *cl, ipc_orphan_fn *fn, void *ctx)
{
	cl->orphan = fn;
	cl->orphan_ctx = ctx;
}

int
ipc_client_dispatch(struct ipc_client *cl, struct ipc_frame *frame)
{
	/* Answers come back in order on one channel, so the match is nearly always the head. */
	for (struct ipc_call *c = cl->pending; c != NULL; c = c->next) {
		if (c->id != frame->id)
			continue;
		call_unlink(cl, c);
		if (c->fn != NULL)
			c->fn(frame, c->arg);
		else if (cl->orphan != NULL)
			cl->orphan(frame, cl->orphan_ctx);
		free(c);
		return 0;
	}
	log_warn("ipc: unexpected answer %u (type %u) from %s", frame->id, frame->type,
	    cl->ch != NULL ? ipc_channel_peer(cl->ch) : "?");
	return -1;
}

struct ipc_call *
ipc_call_start(struct ipc_client *cl, uint32_t type, struct evbuffer *payload,
    ipc_reply_fn *fn, void *arg)
{
	if (cl->ch == NULL)
		return NULL;
	uint32_t id = ++cl->next_id;
	if (ipc_send_buf(cl->ch, type, id, payload, -1) < 0)
		return NULL;
	struct ipc_call *c = calloc(1, sizeof(*c));
	if (c == NULL)
		fatal("out of memory");
	c->id = id;
	c->fn = fn;
	c->arg = arg;
	c->prevp = cl->tail;
	*cl->tail = c;
	cl->tail = &c->next;
	return c;
}

void
ipc_call_cancel(struct ipc_call **callp)
{
	struct ipc_call *c = *callp;
	*callp = NULL;
	if (c == NULL || c->fn == NULL)
		return;
	c->fn = NULL;
	if (c->cleanup != NULL)
		c->cleanup(c->arg);
	c->arg = NULL;
}

void
ipc_call_own_arg(struct ipc_call *call, void (*cleanup)(void *arg))
{
	call->cleanup = cleanup;
}
