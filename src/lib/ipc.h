/*
 * ipc — framed messages between Rampart's processes.
 *
 * A channel is one end of an AF_UNIX SOCK_SEQPACKET socketpair, so the kernel
 * keeps message boundaries and a passed file descriptor travels with exactly one
 * frame. A frame is a 12-byte header (type, request id, payload length, all u32
 * little-endian) and a payload of at most IPC_MAX_FRAME bytes. A message larger
 * than that (an envelope with a thousand recipients) travels as several frames
 * whose type carries IPC_MORE, reassembled by the receiver up to IPC_MAX_PAYLOAD;
 * payloads are encoded with wire.h by the message's owner module. Sends never block: frames the kernel
 * cannot take yet wait in the channel (their fds dup'ed) and are flushed when
 * the socket is writable. A peer that sends a malformed frame, or hangs up,
 * closes the channel: on_close runs once and the owner frees the channel.
 */
#ifndef RAMPART_IPC_H
#define RAMPART_IPC_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct ipc_channel;

#define IPC_MAX_FRAME (56 * 1024)
#define IPC_MAX_PAYLOAD (4 * 1024 * 1024)
#define IPC_MORE 0x80000000u

struct ipc_frame {
	uint32_t type;
	uint32_t id;
	const void *data;
	size_t len;
	int fd;          /* a passed descriptor or -1; set to -1 to keep it, else it is closed */
};

typedef void ipc_frame_fn(struct ipc_channel *ch, struct ipc_frame *frame, void *ctx);
typedef void ipc_close_fn(struct ipc_channel *ch, void *ctx);

/* Takes ownership of fd (made non-blocking and close-on-exec). */
struct ipc_channel *ipc_channel_new(struct event_base *base, int fd, const char *peer_name,
    ipc_frame_fn *on_frame, ipc_close_fn *on_close, void *ctx);
void ipc_channel_free(struct ipc_channel **ch);
/* Delivers every frame already queued on the socket (a dead peer's last words,
 * such as its ready report) before the channel is freed. */
void ipc_channel_drain(struct ipc_channel *ch);
const char *ipc_channel_peer(const struct ipc_channel *ch);

/* Sends a frame; fd (or -1) is duplicated by the kernel, the caller keeps its own.
 * Returns -1 only when the channel is already closed or the payload is too large. */
int ipc_send(struct ipc_channel *ch, uint32_t type, uint32_t id, const void *data, size_t len,
    int fd);
/* Same, draining an evbuffer built with wire.h. */
int ipc_send_buf(struct ipc_channel *ch, uint32_t type, uint32_t id, struct evbuffer *payload,
    int fd);
/* Bytes waiting to be sent (for back-pressure decisions). */
size_t ipc_pending(const struct ipc_channel *ch);

/* Creates a SOCK_SEQPACKET socketpair, close-on-exec. */
int ipc_socketpair(int fds[2]);

#endif
