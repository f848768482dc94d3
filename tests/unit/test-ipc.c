/* Unit tests for lib/ipc and lib/ipc-call over a real SOCK_SEQPACKET socketpair. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "lib/ipc.h"
#include "lib/ipc-call.h"

struct rx {
	struct event_base *base;
	unsigned frames;
	uint32_t last_type, last_id;
	size_t last_len;
	uint8_t *last_data;
	int last_fd;
	bool closed;
	unsigned want;
};

static void
on_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct rx *rx = arg;
	rx->frames++;
	rx->last_type = f->type;
	rx->last_id = f->id;
	rx->last_len = f->len;
	free(rx->last_data);
	rx->last_data = malloc(f->len + 1);
	memcpy(rx->last_data, f->data, f->len);
	if (f->fd >= 0) {
		rx->last_fd = f->fd;
		f->fd = -1;
	}
	if (rx->frames >= rx->want)
		event_base_loopbreak(rx->base);
}

static void
on_close(struct ipc_channel *ch, void *arg)
{
	struct rx *rx = arg;
	rx->closed = true;
	event_base_loopbreak(rx->base);
}

static void
run_until(struct event_base *base)
{
	struct timeval tv = { 5, 0 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
test_frames_and_fd_passing(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	assert_int_equal(ipc_socketpair(sv), 0);
	struct rx rx = { .base = base, .last_fd = -1, .want = 2 };
	struct ipc_channel *a = ipc_channel_new(base, sv[0], "a", on_frame, on_close, &rx);
	struct ipc_channel *b = ipc_channel_new(base, sv[1], "b", on_frame, on_close, &rx);
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(ipc_send(a, 42, 7, "abc", 3, -1), 0);
	assert_int_equal(ipc_send(a, 43, 8, "", 0, p[1]), 0);
	close(p[1]);
	run_until(base);
	assert_int_equal(rx.frames, 2);
	assert_int_equal(rx.last_type, 43);
	assert_int_equal(rx.last_id, 8);
	assert_true(rx.last_fd >= 0);
	/* The passed descriptor is the pipe's write end: data arrives at p[0]. */
	assert_int_equal(write(rx.last_fd, "x", 1), 1);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(c, 'x');
	close(rx.last_fd);
	close(p[0]);
	ipc_channel_free(&a);
	ipc_channel_free(&b);
	free(rx.last_data);
	event_base_free(base);
}

static void
test_large_message_is_split_and_reassembled(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	assert_int_equal(ipc_socketpair(sv), 0);
	struct rx rx = { .base = base, .last_fd = -1, .want = 1 };
	struct ipc_channel *a = ipc_channel_new(base, sv[0], "a", on_frame, on_close, &rx);
	struct ipc_channel *b = ipc_channel_new(base, sv[1], "b", on_frame, on_close, &rx);
	size_t len = 3 * IPC_MAX_FRAME + 123;
	uint8_t *big = malloc(len);
	for (size_t i = 0; i < len; i++)
		big[i] = (uint8_t)(i * 31);
	assert_int_equal(ipc_send(a, 9, 1, big, len, -1), 0);
	run_until(base);
	assert_int_equal(rx.frames, 1);
	assert_int_equal(rx.last_type, 9);
	assert_int_equal(rx.last_len, len);
	assert_memory_equal(rx.last_data, big, len);
	/* Too large for any message: refused at the sender. */
	assert_int_equal(ipc_send(a, 9, 1, big, IPC_MAX_PAYLOAD + 1, -1), -1);
	free(big);
	ipc_channel_free(&a);
	ipc_channel_free(&b);
	free(rx.last_data);
	event_base_free(base);
}

static void
test_malformed_frame_closes_channel(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	assert_int_equal(ipc_socketpair(sv), 0);
	struct rx rx = { .base = base, .last_fd = -1, .want = 1 };
	struct ipc_channel *b = ipc_channel_new(base, sv[1], "peer", on_frame, on_close, &rx);
	/* Header claims 100 payload bytes, frame carries 2. */
	const uint8_t bad[] = { 1, 0, 0, 0, 1, 0, 0, 0, 100, 0, 0, 0, 'x', 'y' };
	assert_int_equal(send(sv[0], bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
	run_until(base);
	assert_int_equal(rx.frames, 0);
	assert_true(rx.closed);
	/* A send on a closed channel fails instead of queueing. */
	assert_int_equal(ipc_send(b, 1, 1, "x", 1, -1), -1);
	close(sv[0]);
	ipc_channel_free(&b);
	event_base_free(base);
}

static void
test_peer_hangup_closes_channel(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	assert_int_equal(ipc_socketpair(sv), 0);
	struct rx rx = { .base = base, .last_fd = -1, .want = 1 };
	struct ipc_channel *b = ipc_channel_new(base, sv[1], "peer", on_frame, on_close, &rx);
	close(sv[0]);
	run_until(base);
	assert_true(rx.closed);
	ipc_channel_free(&b);
	event_base_free(base);
}

/* A dead peer's last frames are still delivered by a drain, without the loop running
 * (the parent reads a child's ready report when it reaps it). */
static void
test_drain_delivers_a_dead_peers_last_frames(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	assert_int_equal(ipc_socketpair(sv), 0);
	struct rx rx = { .base = base, .last_fd = -1, .want = 100 };
	struct ipc_channel *a = ipc_channel_new(base, sv[0], "a", on_frame, on_close, &rx);
	struct ipc_channel *b = ipc_channel_new(base, sv[1], "b", on_frame, on_close, &rx);
	for (uint32_t i = 0; i < 70; i++)   /* more than one read batch */
		assert_int_equal(ipc_send(a, 1, i, "r", 1, -1), 0);
	ipc_channel_free(&a);
	ipc_channel_drain(b);
	assert_int_equal(rx.frames, 70);
	assert_int_equal(rx.last_id, 69);
	ipc_channel_drain(b);              /* nothing more, and no harm */
	assert_int_equal(rx.frames, 70);
	ipc_channel_drain(NULL);
	ipc_channel_free(&b);
	free(rx.last_data);
	event_base_free(base);
}

/* ipc-call: answers find their callers; cancelled calls go to the orphan handler;
 * a closed channel fails every waiting call once. */
struct call_result {
	int answered, failed;
	uint32_t type;
};

static void
on_reply(struct ipc_frame *f, void *arg)
{
	struct call_result *r = arg;
	if (f == NULL)
		r->failed++;
	else {
		r->answered++;
		r->type = f->type;
	}
}

static int orphans;
static void
on_orphan(struct ipc_frame *f, void *ctx)
{
	orphans++;
}

struct echo {
	struct event_base *base;
	bool silent;      /* receive but never answer */
};

static void
echo_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct echo *e = arg;
	if (!e->silent)
		ipc_send(ch, f->type + 1, f->id, f->data, f->len, -1);
}

static void
client_frame(struct ipc_channel *ch, struct ipc_frame *f, void *arg)
{
	struct ipc_client *cl = arg;
	ipc_client_dispatch(cl, f);
}

static void
client_close(struct ipc_channel *ch, void *arg)
{
	ipc_client_attach(arg, NULL);
}

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

static void
test_calls(void **state)
{
	struct event_base *base = event_base_new();
	int sv[2];
	assert_int_equal(ipc_socketpair(sv), 0);
	struct ipc_client *cl = ipc_client_new();
	ipc_client_set_orphan(cl, on_orphan, NULL);
	ipc_client_attach(cl, ipc_channel_new(base, sv[0], "server", client_frame, client_close, cl));
	struct echo e = { base, false };
	struct ipc_channel *srv = ipc_channel_new(base, sv[1], "client", echo_frame, NULL, &e);

	struct call_result r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, "q", 1);
	struct ipc_call *c1 = ipc_call_start(cl, 10, b, on_reply, &r1);
	evbuffer_add(b, "q", 1);
	struct ipc_call *c2 = ipc_call_start(cl, 20, b, on_reply, &r2);
	assert_non_null(c1);
	assert_non_null(c2);
	ipc_call_cancel(&c2);
	assert_null(c2);
	struct timeval tv = { 0, 200000 };
	event_base_once(base, -1, EV_TIMEOUT, stop_cb, base, &tv);
	event_base_dispatch(base);
	assert_int_equal(r1.answered, 1);
	assert_int_equal(r1.type, 11);
	assert_int_equal(r2.answered + r2.failed, 0);
	assert_int_equal(orphans, 1);

	/* Server goes away with a call in flight: the call fails exactly once. */
	e.silent = true;
	evbuffer_add(b, "q", 1);
	struct ipc_call *c3 = ipc_call_start(cl, 30, b, on_reply, &r3);
	assert_non_null(c3);
	event_base_once(base, -1, EV_TIMEOUT, stop_cb, base, &tv);
	event_base_dispatch(base);
	assert_int_equal(r3.failed, 0);
	ipc_channel_free(&srv);
	event_base_once(base, -1, EV_TIMEOUT, stop_cb, base, &tv);
	event_base_dispatch(base);
	assert_int_equal(r3.failed, 1);
	assert_int_equal(r3.answered, 0);
	assert_null(ipc_client_channel(cl));
	/* No channel: a new call cannot start. */
	evbuffer_add(b, "q", 1);
	assert_null(ipc_call_start(cl, 40, b, on_reply, &r3));
	evbuffer_free(b);
	ipc_client_free(&cl);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_and_fd_passing),
		cmocka_unit_test(test_large_message_is_split_and_reassembled),
		cmocka_unit_test(test_malformed_frame_closes_channel),
		cmocka_unit_test(test_peer_hangup_closes_channel),
		cmocka_unit_test(test_drain_delivers_a_dead_peers_last_frames),
		cmocka_unit_test(test_calls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
