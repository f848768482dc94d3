/*
 * Unit tests for queue-ctl: the request parser (pure), and the admin socket
 * with server and client in one process — the server's event loop runs in a
 * thread, the tests are its clients (queue_ctl_request() and raw sockets).
 *
 * Covered: each verb reaches its op with the right id; op errors and missing
 * ops; bad requests (too long, unknown verb, invalid or missing id, NUL) are
 * answered "error ..." without any op call; a request sent whole, one byte at
 * a time and in random chunks; a silent or slow client is dropped at the
 * deadline; the connection limit; deferred answers (and a client that leaves
 * before one); no daemon, a stale socket, a live lock; the socket file's mode,
 * replacement and removal; a spool path longer than sun_path; what the client
 * lets through to a terminal; the SO_PEERCRED rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "queue/queue-ctl.h"
#include "test-tmpdir.h"

#define ID1 "0006157a3b2c4d5e9f8a7b6c"
#define ID2 "00061580ffffffff00000001"
#define MISSING "0000000000000000deadbeef"   /* ops answer "no message with that id" */
#define DEFER_OK "0000000000000000defe0001"  /* hold/delete defer, then ok */
#define DEFER_ERR "0000000000000000defe0002" /* release defers, then error */

/* ---------------------------------------------------------------- parser */

static void
test_parse(void **state)
{
	static const struct {
		const char *line;
		int rc;
		enum queue_ctl_verb verb;
		const char *id_or_error;
	} cases[] = {
		{ "retry " ID1, 0, QUEUE_CTL_RETRY, ID1 },
		{ "delete " ID1, 0, QUEUE_CTL_DELETE, ID1 },
		{ "hold " ID2, 0, QUEUE_CTL_HOLD, ID2 },
		{ "release " ID2, 0, QUEUE_CTL_RELEASE, ID2 },
		{ "show " ID1 "\r", 0, QUEUE_CTL_SHOW, ID1 },
		{ "retry-all", 0, QUEUE_CTL_RETRY_ALL, "" },
		{ "retry-all\r", 0, QUEUE_CTL_RETRY_ALL, "" },
		{ "retry-all " ID1, -1, 0, "retry-all takes no message id" },
		{ "retry-all ", -1, 0, "retry-all takes no message id" },
		{ "", -1, 0, "unknown verb (retry, delete, hold, release, show, retry-all)" },
		{ "frob " ID1, -1, 0, "unknown verb (retry, delete, hold, release, show, retry-all)" },
		{ "HOLD " ID1, -1, 0, "unknown verb (retry, delete, hold, release, show, retry-all)" },
		{ "hol " ID1, -1, 0, "unknown verb (retry, delete, hold, release, show, retry-all)" },
		{ "holds " ID1, -1, 0, "unknown verb (retry, delete, hold, release, show, retry-all)" },
		{ " hold " ID1, -1, 0, "unknown verb (retry, delete, hold, release, show, retry-all)" },
		{ "hold", -1, 0, "a message id is needed" },
		{ "hold ", -1, 0, "a message id is needed" },
		{ "hold  " ID1, -1, 0, "invalid message id" },
		{ "hold " ID1 " ", -1, 0, "invalid message id" },
		{ "hold " ID1 "0", -1, 0, "invalid message id" },
		{ "hold 0006157A3B2C4D5E9F8A7B6C", -1, 0, "invalid message id" },
		{ "hold 0006157a3b2c4d5e9f8a7b6", -1, 0, "invalid message id" },
		{ "hold ../../../../etc/passwd..", -1, 0, "invalid message id" },
		{ "hold " ID1 "\r\r", -1, 0, "invalid message id" },
		{ "retry\t" ID1, -1, 0, "unknown verb (retry, delete, hold, release, show, retry-all)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct queue_ctl_request r;
		const char *error = NULL;
		int rc = queue_ctl_parse(cases[i].line, strlen(cases[i].line), &r, &error);
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d", cases[i].line, rc);
		if (rc == 0) {
			assert_int_equal(r.verb, cases[i].verb);
			assert_string_equal(r.id, cases[i].id_or_error);
		} else {
			assert_string_equal(error, cases[i].id_or_error);
		}
	}
	/* A NUL inside; lengths beyond the line limit. */
	struct queue_ctl_request r;
	const char *error;
	static const char nul[] = "hold " ID1 "\0x";
	assert_int_equal(queue_ctl_parse(nul, sizeof(nul) - 1, &r, &error), -1);
	assert_string_equal(error, "the request holds a NUL byte");
	char big[QUEUE_CTL_MAX_LINE + 2];
	memset(big, 'a', sizeof(big));
	assert_int_equal(queue_ctl_parse(big, sizeof(big), &r, &error), -1);
	assert_string_equal(error, "the request line is too long");
	/* The parser reads only len bytes. */
	assert_int_equal(queue_ctl_parse("retry-allXYZ", 9, &r, &error), 0);
	assert_int_equal(r.verb, QUEUE_CTL_RETRY_ALL);
	for (int v = QUEUE_CTL_RETRY; v <= QUEUE_CTL_RETRY_ALL; v++)
		assert_string_not_equal(queue_ctl_verb_name((enum queue_ctl_verb)v), "?");
	assert_string_equal(queue_ctl_verb_name(QUEUE_CTL_DELETE), "delete");
	assert_string_equal(queue_ctl_verb_name((enum queue_ctl_verb)99), "?");
}

static void
test_peer_rule(void **state)
{
	assert_true(queue_ctl_peer_allowed(0, 1000));
	assert_true(queue_ctl_peer_allowed(1000, 1000));
	assert_true(queue_ctl_peer_allowed(0, 0));
	assert_false(queue_ctl_peer_allowed(1001, 1000));
	assert_false(queue_ctl_peer_allowed(1000, 0));
	assert_false(queue_ctl_peer_allowed(65534, 1000));
	assert_true(queue_ctl_no_daemon(ENOENT));
	assert_true(queue_ctl_no_daemon(ECONNREFUSED));
	assert_false(queue_ctl_no_daemon(EACCES));
	assert_false(queue_ctl_no_daemon(EBUSY));
}

/* ---------------------------------------------------------------- server fixture */

struct server {
	char dir[256];            /* the spool directory */
	struct event_base *base;
	struct queue_ctl *ctl;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	unsigned calls;
	enum queue_ctl_verb last_verb;
	char last_id[SPOOL_ID_LEN + 1];
	struct queue_ctl_req *deferred;
	int defer_rc;
	struct event *defer_timer;
	struct event *stop;       /* activated from the test thread: the loop ends */
};

static void
record(struct server *s, enum queue_ctl_verb verb, const char *id)
{
	pthread_mutex_lock(&s->lock);
	s->calls++;
	s->last_verb = verb;
	snprintf(s->last_id, sizeof(s->last_id), "%s", id != NULL ? id : "");
	pthread_mutex_unlock(&s->lock);
}

static void
on_defer_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	queue_ctl_answer(&s->deferred, s->defer_rc, s->defer_rc < 0 ? "busy\nright now" : NULL);
	assert_null(s->deferred);
}

/* The answer comes 200 ms later, from the loop. */
static int
defer(struct server *s, int rc)
{
	s->deferred = queue_ctl_defer(s->ctl);
	s->defer_rc = rc;
	struct timeval tv = { 0, 200000 };
	evtimer_add(s->defer_timer, &tv);
	return 1;
}

static int
op_common(struct server *s, enum queue_ctl_verb verb, const char *id, const char **error_r)
{
	record(s, verb, id);
	if (strcmp(id, MISSING) == 0) {
		*error_r = "no message with that id";
		return -1;
	}
	if (strcmp(id, DEFER_OK) == 0 && (verb == QUEUE_CTL_HOLD || verb == QUEUE_CTL_DELETE))
		return defer(s, 0);
	if (strcmp(id, DEFER_ERR) == 0 && verb == QUEUE_CTL_RELEASE)
		return defer(s, -1);
	return 0;
}

static int
op_retry(const char *id, void *ctx, const char **error_r)
{
	return op_common(ctx, QUEUE_CTL_RETRY, id, error_r);
}

static int
op_remove(const char *id, void *ctx, const char **error_r)
{
	return op_common(ctx, QUEUE_CTL_DELETE, id, error_r);
}

static int
op_hold(const char *id, void *ctx, const char **error_r)
{
	return op_common(ctx, QUEUE_CTL_HOLD, id, error_r);
}

static int
op_release(const char *id, void *ctx, const char **error_r)
{
	return op_common(ctx, QUEUE_CTL_RELEASE, id, error_r);
}

static const char show_text[] =
    "attempts 2\nnext attempt in 60s\n"
    "carol@remote.test: 451 4.7.1 \x1b[31mgreylisted\r\n"
    "last line without LF";

static int
op_show(const char *id, FILE *out, void *ctx, const char **error_r)
{
	struct server *s = ctx;
	record(s, QUEUE_CTL_SHOW, id);
	if (strcmp(id, MISSING) == 0) {
		fputs("this text is not sent", out);
		*error_r = "no message with that id";
		return -1;
	}
	fputs(show_text, out);
	return 0;
}

static int
op_retry_all(void *ctx, const char **error_r)
{
	record(ctx, QUEUE_CTL_RETRY_ALL, NULL);
	return 0;
}

static const struct queue_ctl_ops all_ops = {
	op_retry, op_remove, op_hold, op_release, op_show, op_retry_all,
};
/* A daemon that knows only some verbs. */
static const struct queue_ctl_ops some_ops = {
	.retry = op_retry, .show = op_show,
};

/* A loopbreak made before the loop starts would be lost; an active event is not. */
static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	event_base_loopbreak(s->base);
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void
server_start(struct server *s)
{
	const char *error = NULL;
	s->ctl = queue_ctl_new(s->base, s->dir, &all_ops, s, &error);
	if (s->ctl == NULL)
		fail_msg("queue_ctl_new: %s", error);
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	s->running = true;
}

static void
server_stop(struct server *s)
{
	if (!s->running)
		return;
	event_active(s->stop, 0, 0);
	pthread_join(s->thread, NULL);
	s->running = false;
	queue_ctl_free(&s->ctl);
	assert_null(s->ctl);
}

static int
setup(void **state)
{
	struct server *s = calloc(1, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/rampart-ctl-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	pthread_mutex_init(&s->lock, NULL);
	s->base = event_base_new();
	assert_non_null(s->base);
	s->defer_timer = evtimer_new(s->base, on_defer_timer, s);
	s->stop = event_new(s->base, -1, 0, on_stop, s);
	*state = s;
	return 0;
}

static int
setup_started(void **state)
{
	setup(state);
	server_start(*state);
	return 0;
}

static int
teardown(void **state)
{
	struct server *s = *state;
	server_stop(s);
	event_free(s->defer_timer);
	event_free(s->stop);
	event_base_free(s->base);
	test_rm_tree(s->dir);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return 0;
}

static unsigned
calls(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	unsigned n = s->calls;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- raw client */

/* The socket address of dir's control socket (short paths only). */
static void
ctl_addr(struct sockaddr_un *sa, const char *dir)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t dl = strlen(dir), nl = strlen(QUEUE_CTL_SOCKET);
	assert_true(dl + 1 + nl < sizeof(sa->sun_path));
	memcpy(sa->sun_path, dir, dl);
	sa->sun_path[dl] = '/';
	memcpy(sa->sun_path + dl + 1, QUEUE_CTL_SOCKET, nl + 1);
}

static int
raw_connect(const char *dir)
{
	struct sockaddr_un sa;
	ctl_addr(&sa, dir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Everything the server sends until it closes (at most size - 1 bytes, 10 s). */
static size_t
raw_read_all(int fd, char *buf, size_t size)
{
	size_t have = 0;
	double end = now_s() + 10;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int wait = (int)((end - now_s()) * 1000);
		assert_true(wait > 0);
		assert_int_equal(poll(&p, 1, wait), 1);
		ssize_t n = read(fd, buf + have, size - 1 - have);
		if (n < 0 && errno == ECONNRESET)
			break;
		assert_true(n >= 0);
		if (n == 0)
			break;
		have += (size_t)n;
		assert_true(have < size - 1);
	}
	buf[have] = '\0';
	return have;
}

/* Sends text in chunks (plan 0: whole, 1: bytes, 2: random) and returns the answer. */
static void
raw_exchange(struct server *s, const char *text, size_t len, int plan, char *answer,
    size_t size)
{
	int fd = raw_connect(s->dir);
	unsigned seed = 7;
	for (size_t off = 0; off < len;) {
		size_t n = len - off;
		if (plan == 1)
			n = 1;
		else if (plan == 2) {
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 5;
			if (n > len - off)
				n = len - off;
		}
		ssize_t w = send(fd, text + off, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
			break;   /* the server answered early (a line too long) and closed */
		assert_true(w > 0);
		off += (size_t)w;
		if (plan != 0)
			usleep(2000);
	}
	raw_read_all(fd, answer, size);
	close(fd);
}

/* ---------------------------------------------------------------- tests */

static void
test_each_verb_reaches_its_op(void **state)
{
	struct server *s = *state;
	static const struct {
		const char *verb, *id;
		enum queue_ctl_verb expect;
	} cases[] = {
		{ "retry", ID1, QUEUE_CTL_RETRY },
		{ "delete", ID2, QUEUE_CTL_DELETE },
		{ "hold", ID1, QUEUE_CTL_HOLD },
		{ "release", ID2, QUEUE_CTL_RELEASE },
		{ "retry-all", NULL, QUEUE_CTL_RETRY_ALL },
	};
	char ebuf[256];
	const char *error;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);
		unsigned before = calls(s);
		int rc = queue_ctl_request(s->dir, cases[i].verb, cases[i].id, out, ebuf,
		    sizeof(ebuf), &error);
		fclose(out);
		if (rc != 0)
			fail_msg("%s: %d %s", cases[i].verb, rc, error);
		assert_int_equal(calls(s), before + 1);
		assert_int_equal(s->last_verb, cases[i].expect);
		assert_string_equal(s->last_id, cases[i].id != NULL ? cases[i].id : "");
		assert_string_equal(text, "");   /* nothing after "ok" */
		free(text);
	}

	/* show: the op's text after "ok", control bytes made harmless, a final LF added. */
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_int_equal(queue_ctl_request(s->dir, "show", ID2, out, ebuf, sizeof(ebuf), &error), 0);
	fclose(out);
	assert_int_equal(s->last_verb, QUEUE_CTL_SHOW);
	assert_string_equal(s->last_id, ID2);
	assert_string_equal(text, "attempts 2\nnext attempt in 60s\n"
	    "carol@remote.test: 451 4.7.1 ?[31mgreylisted?\nlast line without LF\n");
	free(text);

	/* What the server sends on the wire, exactly. */
	char answer[1024];
	raw_exchange(s, "show " ID1 "\n", strlen("show " ID1 "\n"), 0, answer, sizeof(answer));
	assert_string_equal(answer, "ok\n" "attempts 2\nnext attempt in 60s\n"
	    "carol@remote.test: 451 4.7.1 \x1b[31mgreylisted\r\nlast line without LF\n");
	raw_exchange(s, "hold " ID2 "\r\n", strlen("hold " ID2 "\r\n"), 0, answer, sizeof(answer));
	assert_string_equal(answer, "ok\n");
	assert_string_equal(s->last_id, ID2);
}

static void
test_op_errors(void **state)
{
	struct server *s = *state;
	char ebuf[256], answer[512];
	const char *error = NULL;
	static const char *const verbs[] = { "retry", "delete", "hold", "release", "show" };
	for (size_t i = 0; i < 5; i++) {
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);
		assert_int_equal(queue_ctl_request(s->dir, verbs[i], MISSING, out, ebuf,
		    sizeof(ebuf), &error), 1);
		fclose(out);
		assert_ptr_equal(error, ebuf);
		assert_string_equal(error, "no message with that id");
		assert_string_equal(text, "");   /* show's partial text is not sent */
		assert_string_equal(s->last_id, MISSING);
		free(text);
	}
	raw_exchange(s, "show " MISSING "\n", strlen("show " MISSING "\n"), 0, answer,
	    sizeof(answer));
	assert_string_equal(answer, "error no message with that id\n");

	/* An error sentence is cut to what the caller's buffer holds. */
	char small[8];
	assert_int_equal(queue_ctl_request(s->dir, "hold", MISSING, NULL, small, sizeof(small),
	    &error), 1);
	assert_string_equal(error, "no mess");

	/* A daemon without some ops says so, and calls nothing. */
	server_stop(s);
	s->ctl = queue_ctl_new(s->base, s->dir, &some_ops, s, &error);
	assert_non_null(s->ctl);
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	s->running = true;
	unsigned before = calls(s);
	assert_int_equal(queue_ctl_request(s->dir, "release", ID1, NULL, ebuf, sizeof(ebuf),
	    &error), 1);
	assert_string_equal(error, "this rampartd does not support release");
	assert_int_equal(queue_ctl_request(s->dir, "retry-all", NULL, NULL, ebuf, sizeof(ebuf),
	    &error), 1);
	assert_string_equal(error, "this rampartd does not support retry-all");
	assert_int_equal(calls(s), before);
	assert_int_equal(queue_ctl_request(s->dir, "retry", ID1, NULL, ebuf, sizeof(ebuf),
	    &error), 0);
	assert_int_equal(calls(s), before + 1);
}

static void
test_bad_requests(void **state)
{
	struct server *s = *state;
	static char long_line[300];
	char answer[512];
	memset(long_line, 'a', sizeof(long_line));
	static const char nul[] = "hold " ID1 "\0\n";
	static const struct {
		const char *text;
		size_t len;
		const char *answer;
	} cases[] = {
		{ "frob " ID1 "\n", 0, "error unknown verb (retry, delete, hold, release, show, "
		    "retry-all)\n" },
		{ "hold xyz\n", 0, "error invalid message id\n" },
		{ "hold ../../etc/passwd\n", 0, "error invalid message id\n" },
		{ "hold\n", 0, "error a message id is needed\n" },
		{ "\n", 0, "error unknown verb (retry, delete, hold, release, show, retry-all)\n" },
		{ "retry-all " ID1 "\n", 0, "error retry-all takes no message id\n" },
		{ nul, sizeof(nul) - 1, "error the request holds a NUL byte\n" },
		{ long_line, sizeof(long_line), "error the request line is too long\n" },
		/* 129 octets, then LF: one over. */
		{ long_line, QUEUE_CTL_MAX_LINE + 1, "error the request line is too long\n" },
		/* Only the first line counts: what follows is never read. */
		{ "hold xyz\nhold " ID1 "\n", 0, "error invalid message id\n" },
	};
	unsigned before = calls(s);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];
		size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].text);
		memcpy(text, cases[i].text, len);
		if (cases[i].text == long_line && len == QUEUE_CTL_MAX_LINE + 1)
			text[len++] = '\n';
		for (int plan = 0; plan < 3; plan++) {
			raw_exchange(s, text, len, plan, answer, sizeof(answer));
			if (strcmp(answer, cases[i].answer) != 0)
				fail_msg("case %zu plan %d: %s", i, plan, answer);
		}
	}
	assert_int_equal(calls(s), before);

	/* Exactly 128 octets is a line the parser sees (and refuses as a verb). */
	char text[QUEUE_CTL_MAX_LINE + 1];
	memset(text, 'a', QUEUE_CTL_MAX_LINE);
	text[QUEUE_CTL_MAX_LINE] = '\n';
	raw_exchange(s, text, sizeof(text), 0, answer, sizeof(answer));
	assert_string_equal(answer, "error unknown verb (retry, delete, hold, release, show, "
	    "retry-all)\n");

	/* The client refuses to send a bad request at all. */
	char ebuf[128];
	const char *error;
	assert_int_equal(queue_ctl_request(s->dir, "hold", "xyz", NULL, ebuf, sizeof(ebuf),
	    &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(error, "bad request: invalid message id");
	assert_int_equal(queue_ctl_request(s->dir, "hold", NULL, NULL, ebuf, sizeof(ebuf),
	    &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_ctl_request(s->dir, "hold", ID1 "\nretry-all", NULL, ebuf,
	    sizeof(ebuf), &error), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(calls(s), before);
}

/* The same request whole, one byte at a time and in random chunks. */
static void
test_request_in_pieces(void **state)
{
	struct server *s = *state;
	static const char *const requests[] = { "hold " ID1 "\n", "release " ID2 "\r\n",
	    "retry-all\n", "delete " ID2 "\n" };
	static const enum queue_ctl_verb verbs[] = { QUEUE_CTL_HOLD, QUEUE_CTL_RELEASE,
	    QUEUE_CTL_RETRY_ALL, QUEUE_CTL_DELETE };
	static const char *const ids[] = { ID1, ID2, "", ID2 };
	char answer[256];
	for (size_t i = 0; i < 4; i++) {
		for (int plan = 0; plan < 3; plan++) {
			unsigned before = calls(s);
			raw_exchange(s, requests[i], strlen(requests[i]), plan, answer, sizeof(answer));
			assert_string_equal(answer, "ok\n");
			assert_int_equal(calls(s), before + 1);
			assert_int_equal(s->last_verb, verbs[i]);
			assert_string_equal(s->last_id, ids[i]);
		}
	}
}

static void
test_silent_client_dropped(void **state)
{
	struct server *s = *state;
	char answer[256], ebuf[128];
	const char *error = NULL;
	/* A one-second deadline, set before the loop runs. */
	s->ctl = queue_ctl_new(s->base, s->dir, &all_ops, s, &error);
	assert_non_null(s->ctl);
	queue_ctl_set_timeout(s->ctl, 1);
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	s->running = true;

	/* Nothing at all. */
	int fd = raw_connect(s->dir);
	double start = now_s();
	assert_int_equal(raw_read_all(fd, answer, sizeof(answer)), 0);
	double took = now_s() - start;
	assert_true(took > 0.8 && took < 5);
	close(fd);

	/* A request that never ends, sent slowly: the deadline counts from the start. */
	fd = raw_connect(s->dir);
	start = now_s();
	for (int i = 0; i < 6; i++) {
		if (send(fd, "h", 1, MSG_NOSIGNAL) != 1)
			break;
		usleep(300000);
	}
	assert_int_equal(raw_read_all(fd, answer, sizeof(answer)), 0);
	took = now_s() - start;
	assert_true(took > 0.8 && took < 5);
	close(fd);

	/* A complete line without its LF, then silence. */
	fd = raw_connect(s->dir);
	assert_int_equal(send(fd, "hold " ID1, 29, MSG_NOSIGNAL), 29);
	assert_int_equal(raw_read_all(fd, answer, sizeof(answer)), 0);
	close(fd);
	assert_int_equal(calls(s), 0);

	/* The server still serves. */
	assert_int_equal(queue_ctl_request(s->dir, "hold", ID1, NULL, ebuf, sizeof(ebuf),
	    &error), 0);
	assert_int_equal(calls(s), 1);
}

static void
test_connection_limit(void **state)
{
	struct server *s = *state;
	int fds[QUEUE_CTL_MAX_CONNS];
	char answer[256], ebuf[128];
	const char *error;
	for (int i = 0; i < QUEUE_CTL_MAX_CONNS; i++)
		fds[i] = raw_connect(s->dir);
	/* Accepted in order: the next one is over the limit. */
	usleep(100000);
	int fd = raw_connect(s->dir);
	raw_read_all(fd, answer, sizeof(answer));
	close(fd);
	assert_string_equal(answer, "error too many control connections; try again\n");
	for (int i = 0; i < QUEUE_CTL_MAX_CONNS; i++)
		close(fds[i]);
	/* Once the server has seen them go, a request passes again. */
	int rc = -1;
	for (int tries = 0; tries < 100 && rc != 0; tries++) {
		rc = queue_ctl_request(s->dir, "retry", ID1, NULL, ebuf, sizeof(ebuf), &error);
		if (rc != 0)
			usleep(20000);
	}
	assert_int_equal(rc, 0);
}

static void
test_deferred_answers(void **state)
{
	struct server *s = *state;
	char ebuf[128], answer[256];
	const char *error;

	double start = now_s();
	assert_int_equal(queue_ctl_request(s->dir, "hold", DEFER_OK, NULL, ebuf, sizeof(ebuf),
	    &error), 0);
	assert_true(now_s() - start >= 0.15);
	assert_int_equal(s->last_verb, QUEUE_CTL_HOLD);
	assert_string_equal(s->last_id, DEFER_OK);

	assert_int_equal(queue_ctl_request(s->dir, "release", DEFER_ERR, NULL, ebuf, sizeof(ebuf),
	    &error), 1);
	assert_string_equal(error, "busy right now");

	/* The client leaves before the answer: the request waits for its answer, alone. */
	int fd = raw_connect(s->dir);
	assert_int_equal(send(fd, "delete " DEFER_OK "\n", 32, MSG_NOSIGNAL), 32);
	usleep(50000);
	close(fd);
	usleep(400000);
	assert_null(s->deferred);
	assert_int_equal(s->last_verb, QUEUE_CTL_DELETE);

	/* Other clients are served while one waits. */
	fd = raw_connect(s->dir);
	assert_int_equal(send(fd, "hold " DEFER_OK "\n", 30, MSG_NOSIGNAL), 30);
	usleep(50000);
	assert_int_equal(queue_ctl_request(s->dir, "retry", ID1, NULL, ebuf, sizeof(ebuf),
	    &error), 0);
	raw_read_all(fd, answer, sizeof(answer));
	close(fd);
	assert_string_equal(answer, "ok\n");

	/* queue_ctl_free() with a request still deferred frees it. */
	fd = raw_connect(s->dir);
	assert_int_equal(send(fd, "hold " DEFER_OK "\n", 30, MSG_NOSIGNAL), 30);
	for (int i = 0; i < 100 && s->deferred == NULL; i++)
		usleep(10000);
	assert_non_null(s->deferred);
	server_stop(s);
	evtimer_del(s->defer_timer);
	s->deferred = NULL;   /* freed by queue_ctl_free() (LeakSanitizer checks) */
	/* libevent closes a freed bufferevent's socket from the loop: run it once. */
	event_base_loop(s->base, EVLOOP_NONBLOCK);
	raw_read_all(fd, answer, sizeof(answer));
	assert_string_equal(answer, "");
	close(fd);
}

static void
test_no_daemon(void **state)
{
	struct server *s = *state;
	char ebuf[256], path[300];
	const char *error;

	/* Nothing there at all. */
	assert_int_equal(queue_ctl_request(s->dir, "hold", ID1, NULL, ebuf, sizeof(ebuf),
	    &error), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(queue_ctl_no_daemon(errno));
	assert_non_null(strstr(error, "rampartd is not running"));

	/* A socket file nobody listens on (a daemon that died). */
	struct sockaddr_un sa;
	ctl_addr(&sa, s->dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(queue_ctl_request(s->dir, "hold", ID1, NULL, ebuf, sizeof(ebuf),
	    &error), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_true(queue_ctl_no_daemon(errno));

	/* Someone holds the spool lock but nothing answers: not "not running". */
	int lock = queue_ctl_lock_spool(s->dir, &error);
	assert_true(lock >= 0);
	assert_int_equal(queue_ctl_lock_spool(s->dir, &error), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_int_equal(queue_ctl_request(s->dir, "hold", ID1, NULL, ebuf, sizeof(ebuf),
	    &error), -1);
	assert_int_equal(errno, EBUSY);
	assert_false(queue_ctl_no_daemon(errno));
	assert_non_null(strstr(error, "does not answer"));

	/* queue_ctl_new waits about 2 s for the lock, then gives up. */
	double start = now_s();
	assert_null(queue_ctl_new(s->base, s->dir, &all_ops, s, &error));
	assert_true(now_s() - start >= 1.5);
	assert_non_null(strstr(error, "holds the spool"));
	close(lock);

	/* A spool directory that does not exist. */
	snprintf(path, sizeof(path), "%s/nowhere", s->dir);
	assert_int_equal(queue_ctl_request(path, "hold", ID1, NULL, ebuf, sizeof(ebuf), &error),
	    -1);
	assert_true(queue_ctl_no_daemon(errno));
	assert_int_equal(queue_ctl_lock_spool(path, &error), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_socket_file(void **state)
{
	struct server *s = *state;
	char path[300], ebuf[128];
	struct stat st;
	const char *error;
	snprintf(path, sizeof(path), "%s/%s", s->dir, QUEUE_CTL_SOCKET);

	/* Something else in the way: refused, left alone. */
	close(open(path, O_WRONLY | O_CREAT, 0600));
	assert_null(queue_ctl_new(s->base, s->dir, &all_ops, s, &error));
	assert_non_null(strstr(error, "not a socket"));
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);
	/* ... and the lock went with the failure. */
	int lock = queue_ctl_lock_spool(s->dir, &error);
	assert_true(lock >= 0);
	close(lock);

	/* A stale socket is replaced; the new one is 0600. */
	struct sockaddr_un sa;
	ctl_addr(&sa, s->dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	server_start(s);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(queue_ctl_request(s->dir, "hold", ID1, NULL, ebuf, sizeof(ebuf), &error),
	    0);
	/* While it runs, the lock is taken. */
	assert_int_equal(queue_ctl_lock_spool(s->dir, &error), -1);
	assert_int_equal(errno, EWOULDBLOCK);

	/* Freed: the socket file goes, the lock is free. */
	server_stop(s);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	lock = queue_ctl_lock_spool(s->dir, &error);
	assert_true(lock >= 0);
	close(lock);

	/* A socket file that replaced ours is not removed at free. */
	server_start(s);
	assert_int_equal(unlink(path), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	server_stop(s);
	assert_int_equal(lstat(path, &st), 0);
	unlink(path);
	queue_ctl_free(&s->ctl);   /* NULL is fine */
}

static void
test_long_spool_path(void **state)
{
	struct server *s = *state;
	char ebuf[128];
	const char *error;
	/* Deeper than sun_path can name: bound and reached through /proc. */
	size_t len = strlen(s->dir);
	while (strlen(s->dir) < sizeof(((struct sockaddr_un *)0)->sun_path) + 20) {
		strcat(s->dir, "/deeper-and-deeper");
		assert_int_equal(mkdir(s->dir, 0700), 0);
	}
	server_start(s);
	assert_int_equal(queue_ctl_request(s->dir, "release", ID2, NULL, ebuf, sizeof(ebuf),
	    &error), 0);
	assert_int_equal(s->last_verb, QUEUE_CTL_RELEASE);
	assert_string_equal(s->last_id, ID2);
	server_stop(s);
	assert_int_equal(queue_ctl_request(s->dir, "release", ID2, NULL, ebuf, sizeof(ebuf),
	    &error), -1);
	assert_true(queue_ctl_no_daemon(errno));
	s->dir[len] = '\0';   /* teardown removes the whole tree */
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_peer_rule),
		cmocka_unit_test_setup_teardown(test_each_verb_reaches_its_op, setup_started, teardown),
		cmocka_unit_test_setup_teardown(test_op_errors, setup_started, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup_started, teardown),
		cmocka_unit_test_setup_teardown(test_request_in_pieces, setup_started, teardown),
		cmocka_unit_test_setup_teardown(test_silent_client_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, setup_started, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_answers, setup_started, teardown),
		cmocka_unit_test_setup_teardown(test_no_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_spool_path, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
