/* ipc — see ipc.h. */
#include "lib/ipc.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <sodium.h>

#define IPC_HEADER 12
/* A peer that stops reading must not make us buffer without bound. */
#define IPC_MAX_PENDING (64u * 1024 * 1024)

struct ipc_out {
	struct ipc_out *next;
	size_t len;
	int fd;
	uint8_t bytes[];
};

/* Queued frames may hold credentials: wiped before their memory goes back. */
static void
out_free(struct ipc_out *o)
{
	sodium_memzero(o->bytes, o->len);
	free(o);
}


struct ipc_channel {
	int fd;
	char *peer;
	struct event *ev_read, *ev_write;
	struct ipc_out *head, **tail;
	size_t pending;
	ipc_frame_fn *on_frame;
	ipc_close_fn *on_close;
	void *ctx;
	bool closed;
	bool *freed_flag;        /* set when freed from inside a callback */
	struct evbuffer *partial; /* frames of a message still arriving (IPC_MORE) */
	uint8_t rbuf[IPC_HEADER + IPC_MAX_FRAME + 1];
};

int
ipc_socketpair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
}

static void
ipc_close(struct ipc_channel *ch)
{
	if (ch->closed)
		return;
	ch->closed = true;
	event_del(ch->ev_read);
	event_del(ch->ev_write);
	if (ch->on_close != NULL)
		ch->on_close(ch, ch->ctx);
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Returns 1 sent, 0 would block, -1 error. */
static int
ipc_sendmsg(int sock, const uint8_t *bytes, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)bytes, .iov_len = len };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } cm;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n >= 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
			return 0;
		return -1;
	}
}

static void
ipc_flush(struct ipc_channel *ch)
{
	while (ch->head != NULL) {
		struct ipc_out *o = ch->head;
		int rc = ipc_sendmsg(ch->fd, o->bytes, o->len, o->fd);
		if (rc == 0) {
			event_add(ch->ev_write, NULL);
			return;
		}
		if (rc < 0) {
			log_warn("ipc: send to %s failed: %m", ch->peer);
			ipc_close(ch);
			return;
		}
		ch->head = o->next;
		if (ch->head == NULL)
			ch->tail = &ch->head;
		ch->pending -= o->len;
		if (o->fd >= 0)
			close(o->fd);
		out_free(o);
	}
}

static void
ipc_on_write(evutil_socket_t fd, short what, void *arg)
{
	ipc_flush(arg);
}

static int
ipc_read_one(struct ipc_channel *ch)
{
	struct iovec iov = { .iov_base = ch->rbuf, .iov_len = sizeof(ch->rbuf) };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * 4)]; } cm;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
	ssize_t n = recvmsg(ch->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1; /* peer closed */

	int passed = -1, extra = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (passed < 0)
				passed = f;
			else {
				close(f);
				extra++;
			}
		}
	}
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || extra > 0 || n < IPC_HEADER ||
	    get_u32(ch->rbuf + 8) != (uint32_t)n - IPC_HEADER) {
		log_warn("ipc: malformed frame from %s; closing the channel", ch->peer);
		if (passed >= 0)
			close(passed);
		return -1;
	}
	uint32_t type = get_u32(ch->rbuf);
	size_t plen = (size_t)n - IPC_HEADER;
	if ((type & IPC_MORE) != 0 || evbuffer_get_length(ch->partial) > 0) {
		if (passed >= 0 && (type & IPC_MORE) != 0) {
			close(passed);
			log_warn("ipc: descriptor on a partial frame from %s; closing", ch->peer);
			return -1;
		}
		if (evbuffer_get_length(ch->partial) + plen > IPC_MAX_PAYLOAD) {
			log_warn("ipc: message from %s exceeds %u bytes; closing", ch->peer,
			    (unsigned)IPC_MAX_PAYLOAD);
			if (passed >= 0)
				close(passed);
			return -1;
		}
		evbuffer_add(ch->partial, ch->rbuf + IPC_HEADER, plen);
		if ((type & IPC_MORE) != 0)
			return 1;
	}
	struct ipc_frame f = {
		.type = type, .id = get_u32(ch->rbuf + 4),
		.data = ch->rbuf + IPC_HEADER, .len = plen, .fd = passed,
	};
	if (evbuffer_get_length(ch->partial) > 0) {
		f.len = evbuffer_get_length(ch->partial);
		f.data = evbuffer_pullup(ch->partial, -1);
	}
	bool freed = false;
	ch->freed_flag = &freed;
	ch->on_frame(ch, &f, ch->ctx);
	if (f.fd >= 0)
		close(f.fd);
	if (freed)
		return 2;
	ch->freed_flag = NULL;
	evbuffer_drain(ch->partial, evbuffer_get_length(ch->partial));
	return 1;
}

static void
ipc_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_channel *ch = arg;
	/* Bounded batch per wakeup, so one busy peer cannot starve the loop. */
	for (int i = 0; i < 64 && !ch->closed; i++) {
		int rc = ipc_read_one(ch);
		if (rc == 2)
			return; /* freed by its owner inside the callback */
		if (rc < 0) {
			ipc_close(ch);
			return;
		}
		if (rc == 0)
			return;
	}
}

void
ipc_channel_drain(struct ipc_channel *ch)
{
	/* The peer is gone, so what it sent is finite: no batch bound here. */
	while (ch != NULL && !ch->closed) {
		int rc = ipc_read_one(ch);
		if (rc == 2 || rc <= 0)
			return;
	}
}

struct ipc_channel *
ipc_channel_new(struct event_base *base, int fd, const char *peer_name,
    ipc_frame_fn *on_frame, ipc_close_fn *on_close, void *ctx)
{
	struct ipc_channel *ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		fatal("out of memory");
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	ch->fd = fd;
	ch->peer = strdup(peer_name);
	ch->tail = &ch->head;
	ch->on_frame = on_frame;
	ch->on_close = on_close;
	ch->ctx = ctx;
	ch->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, ipc_on_read, ch);
	ch->ev_write = event_new(base, fd, EV_WRITE, ipc_on_write, ch);
	ch->partial = evbuffer_new();
	event_add(ch->ev_read, NULL);
	return ch;
}

void
ipc_channel_free(struct ipc_channel **chp)
{
	struct ipc_channel *ch = *chp;
	if (ch == NULL)
		return;
	*chp = NULL;
	if (ch->freed_flag != NULL)
		*ch->freed_flag = true;
	event_free(ch->ev_read);
	event_free(ch->ev_write);
	while (ch->head != NULL) {
		struct ipc_out *o = ch->head;
		ch->head = o->next;
		if (o->fd >= 0)
			close(o->fd);
		out_free(o);
	}
	close(ch->fd);
	evbuffer_free(ch->partial);
	free(ch->peer);
	free(ch);
}

const char *
ipc_channel_peer(const struct ipc_channel *ch)
{
	return ch->peer;
}

size_t
ipc_pending(const struct ipc_channel *ch)
{
	return ch->pending;
}

static int ipc_send_frame(struct ipc_channel *ch, uint32_t type, uint32_t id, const void *data,
    size_t len, int fd);

int
ipc_send(struct ipc_channel *ch, uint32_t type, uint32_t id, const void *data, size_t len, int fd)
{
	if (ch == NULL || ch->closed || len > IPC_MAX_PAYLOAD || (type & IPC_MORE) != 0)
		return -1;
	const uint8_t *p = data;
	while (len > IPC_MAX_FRAME) {
		if (ipc_send_frame(ch, type | IPC_MORE, id, p, IPC_MAX_FRAME, -1) < 0)
			return -1;
		p += IPC_MAX_FRAME;
		len -= IPC_MAX_FRAME;
	}
	return ipc_send_frame(ch, type, id, p, len, fd);
}

static int
ipc_send_frame(struct ipc_channel *ch, uint32_t type, uint32_t id, const void *data, size_t len,
    int fd)
{
	if (ch->closed)
		return -1;
	if (ch->pending + len > IPC_MAX_PENDING) {
		log_error("ipc: %s is not reading; closing the channel", ch->peer);
		ipc_close(ch);
		return -1;
	}
	struct ipc_out *o = malloc(sizeof(*o) + IPC_HEADER + len);
	if (o == NULL)
		fatal("out of memory");
	put_u32(o->bytes, type);
	put_u32(o->bytes + 4, id);
	put_u32(o->bytes + 8, (uint32_t)len);
	if (len > 0)
		memcpy(o->bytes + IPC_HEADER, data, len);
	o->len = IPC_HEADER + len;
	o->fd = -1;
	o->next = NULL;

	if (ch->head == NULL) {
		int rc = ipc_sendmsg(ch->fd, o->bytes, o->len, fd);
		if (rc == 1) {
			out_free(o);
			return 0;
		}
		if (rc < 0) {
			out_free(o);
			log_warn("ipc: send to %s failed: %m", ch->peer);
			ipc_close(ch);
			return -1;
		}
	}
	if (fd >= 0 && (o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		out_free(o);
		log_error("ipc: dup: %m");
		return -1;
	}
	*ch->tail = o;
	ch->tail = &o->next;
	ch->pending += o->len;
	event_add(ch->ev_write, NULL);
	return 0;
}

int
ipc_send_buf(struct ipc_channel *ch, uint32_t type, uint32_t id, struct evbuffer *payload, int fd)
{
	size_t len = evbuffer_get_length(payload);
	if (len > IPC_MAX_PAYLOAD) {
		evbuffer_drain(payload, len);
		log_error("ipc: frame of %zu bytes to %s is too large", len, ipc_channel_peer(ch));
		return -1;
	}
	unsigned char *bytes = evbuffer_pullup(payload, -1);
	int rc = ipc_send(ch, type, id, bytes, len, fd);
	/* Payloads may carry credentials (a login): no copy outlives the send. */
	if (bytes != NULL)
		sodium_memzero(bytes, len);
	evbuffer_drain(payload, len);
	return rc;
}
