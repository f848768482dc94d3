/*
 * ipc-call — request/response over an ipc channel.
 *
 * The caller of ipc_call_start() keeps the returned handle with whatever waits
 * for the answer (a session), so the continuation stays with the session, not in
 * a table far from it. If the session goes away first it cancels the handle; the
 * answer, when it comes, goes to the client's orphan handler instead (which, for
 * example, releases a spool file the answer carried). If the channel closes, every
 * waiting callback runs once with frame == NULL.
 */
#ifndef RAMPART_IPC_CALL_H
#define RAMPART_IPC_CALL_H

#include "lib/ipc.h"

struct ipc_client;
struct ipc_call;

typedef void ipc_reply_fn(struct ipc_frame *reply, void *arg);
typedef void ipc_orphan_fn(struct ipc_frame *reply, void *ctx);

struct ipc_client *ipc_client_new(void);
void ipc_client_free(struct ipc_client **cl);
/* Attaches (or replaces) the channel; pending calls on an old one fail first. */
void ipc_client_attach(struct ipc_client *cl, struct ipc_channel *ch);
struct ipc_channel *ipc_client_channel(struct ipc_client *cl);
void ipc_client_set_orphan(struct ipc_client *cl, ipc_orphan_fn *fn, void *ctx);
/* Feed every frame the channel receives; returns 0 when it answered a call. */
int ipc_client_dispatch(struct ipc_client *cl, struct ipc_frame *frame);
/* Fails every pending call (channel closed). */
void ipc_client_fail_all(struct ipc_client *cl);

/* NULL when there is no channel or the send failed: the caller answers with a 4xx. */
struct ipc_call *ipc_call_start(struct ipc_client *cl, uint32_t type, struct evbuffer *payload,
    ipc_reply_fn *fn, void *arg);
/* The callback will not run; an arg handed over with ipc_call_own_arg() is freed. */
void ipc_call_cancel(struct ipc_call **call);
/* When the call is cancelled, cleanup(arg) frees what only the callback would
 * have freed (a reply callback that runs still frees it itself). */
void ipc_call_own_arg(struct ipc_call *call, void (*cleanup)(void *arg));

#endif
