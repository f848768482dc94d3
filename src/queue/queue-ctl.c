/* queue-ctl — see queue-ctl.h. */
#include "queue/queue-ctl.h"
#include "lib/log.h"
#include "net/lineio.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

/* The longest sentence put after "error " on the wire. */
#define ERROR_MAX 512
/* How long queue_ctl_new() waits for a CLI that holds the spool lock. */
#define LOCK_WAIT_MS 2000

static const char *const verb_names[] = {
	[QUEUE_CTL_RETRY] = "retry",
	[QUEUE_CTL_DELETE] = "delete",
	[QUEUE_CTL_HOLD] = "hold",
	[QUEUE_CTL_RELEASE] = "release",
	[QUEUE_CTL_SHOW] = "show",
	[QUEUE_CTL_RETRY_ALL] = "retry-all",
};
#define VERB_COUNT (sizeof(verb_names) / sizeof(verb_names[0]))

/* One client connection (and, once deferred, the request it waits on). */
struct queue_ctl_req {
	struct queue_ctl_req *next, **prevp;
	struct queue_ctl *ctl;
	struct lineio *io;        /* NULL once the client has gone (deferred only) */
	struct event *deadline;   /* until the request line is complete */
	bool deferred;
};

struct queue_ctl {
	struct event_base *base;
	const struct queue_ctl_ops *ops;
	void *ctx;
	int dir_fd;               /* the spool directory, flock()ed */
	struct evconnlistener *listener;
	struct event *resume;     /* re-enables accepting after EMFILE */
	dev_t sock_dev;           /* the socket file we made, removed at free */
	ino_t sock_ino;
	struct queue_ctl_req *reqs;
	unsigned nreqs;
	int timeout;
	struct queue_ctl_req *serving;   /* inside an op call */
};

/* ---------------------------------------------------------------- pieces */

const char *
queue_ctl_verb_name(enum queue_ctl_verb verb)
{
	return (size_t)verb < VERB_COUNT ? verb_names[verb] : "?";
}

int
queue_ctl_parse(const char *line, size_t len, struct queue_ctl_request *r,
    const char **error_r)
{
	memset(r, 0, sizeof(*r));
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "the request holds a NUL byte";
		return -1;
	}
	if (len > QUEUE_CTL_MAX_LINE) {
		*error_r = "the request line is too long";
		return -1;
	}
	const char *sp = memchr(line, ' ', len);
	size_t vlen = sp != NULL ? (size_t)(sp - line) : len;
	size_t v = 0;
	while (v < VERB_COUNT && (strlen(verb_names[v]) != vlen ||
	    memcmp(verb_names[v], line, vlen) != 0))
		v++;
	if (v == VERB_COUNT) {
		*error_r = "unknown verb (retry, delete, hold, release, show, retry-all)";
		return -1;
	}
	r->verb = (enum queue_ctl_verb)v;
	if (r->verb == QUEUE_CTL_RETRY_ALL) {
		if (sp != NULL) {
			*error_r = "retry-all takes no message id";
			return -1;
		}
		return 0;
	}
	size_t idlen = sp != NULL ? len - vlen - 1 : 0;
	if (sp == NULL || idlen == 0) {
		*error_r = "a message id is needed";
		return -1;
	}
	char id[SPOOL_ID_LEN + 2];
	if (idlen > SPOOL_ID_LEN) {
		*error_r = "invalid message id";
		return -1;
	}
	memcpy(id, sp + 1, idlen);
	id[idlen] = '\0';
	if (!spool_id_valid(id)) {
		*error_r = "invalid message id";
		return -1;
	}
	memcpy(r->id, id, sizeof(r->id));
	return 0;
}

bool
queue_ctl_peer_allowed(uid_t peer, uid_t self)
{
	return peer == 0 || peer == self;
}

bool
queue_ctl_no_daemon(int errnum)
{
	return errnum == ENOENT || errnum == ECONNREFUSED;
}

int
queue_ctl_lock_spool(const char *spool_dir, const char **error_r)
{
	int fd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = "cannot open the spool directory";
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		close(fd);
		*error_r = err == EWOULDBLOCK ? "another process (a running rampartd queue) holds "
		    "the spool" : "cannot lock the spool directory";
		errno = err;
		return -1;
	}
	return fd;
}

/* The socket's address: the path itself, or through /proc when it is longer
 * than sun_path (dir_fd must then be an fd on the spool directory). */
static int
ctl_address(const char *dir, int dir_fd, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", dir, QUEUE_CTL_SOCKET);
	if (n > 0 && (size_t)n < sizeof(sa->sun_path))
		return 0;
	if (dir_fd < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dir_fd,
	    QUEUE_CTL_SOCKET);
	return 0;
}

/* An error sentence made safe for one line: control bytes become spaces. */
static void
sanitize_sentence(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src != NULL && src[i] != '\0' && i + 1 < size; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	dst[i] = '\0';
}

/* ---------------------------------------------------------------- server */

static void
req_free(struct queue_ctl_req *r)
{
	*r->prevp = r->next;
	if (r->next != NULL)
		r->next->prevp = r->prevp;
	r->ctl->nreqs--;
	lineio_free(&r->io);
	if (r->deadline != NULL)
		event_free(r->deadline);
	free(r);
}

/* Sends the answer and closes once it is out. */
static void
req_answer(struct queue_ctl_req *r, int rc, const char *error, const char *body, size_t len)
{
	if (r->io == NULL) {
		req_free(r);
		return;
	}
	if (rc == 0) {
		lineio_write(r->io, "ok\n", 3);
		if (len > 0) {
			lineio_write(r->io, body, len);
			if (body[len - 1] != '\n')
				lineio_write(r->io, "\n", 1);
		}
	} else {
		char clean[ERROR_MAX];
		sanitize_sentence(clean, sizeof(clean), error != NULL ? error : "failed");
		lineio_printf(r->io, "error %s\n", clean);
	}
	lineio_close_after_flush(r->io);
}

static void
req_show(struct queue_ctl_req *r, const char *id)
{
	struct queue_ctl *c = r->ctl;
	const char *error = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) {
		req_answer(r, -1, "out of memory", NULL, 0);
		return;
	}
	int rc = c->ops->show(id, f, c->ctx, &error);
	if (fclose(f) != 0 && rc == 0) {
		rc = -1;
		error = "out of memory";
	}
	req_answer(r, rc, error, buf, rc == 0 ? len : 0);
	free(buf);
}

static void
req_serve(struct queue_ctl_req *r, const struct queue_ctl_request *q)
{
	struct queue_ctl *c = r->ctl;
	const struct queue_ctl_ops *ops = c->ops;
	const char *error = NULL;
	int rc;

	bool present = q->verb == QUEUE_CTL_RETRY ? ops->retry != NULL :
	    q->verb == QUEUE_CTL_DELETE ? ops->remove != NULL :
	    q->verb == QUEUE_CTL_HOLD ? ops->hold != NULL :
	    q->verb == QUEUE_CTL_RELEASE ? ops->release != NULL :
	    q->verb == QUEUE_CTL_SHOW ? ops->show != NULL : ops->retry_all != NULL;
	if (!present) {
		char why[64];
		snprintf(why, sizeof(why), "this rampartd does not support %s",
		    queue_ctl_verb_name(q->verb));
		req_answer(r, -1, why, NULL, 0);
		return;
	}
	log_info("queue: control: %s%s%s", queue_ctl_verb_name(q->verb),
	    q->id[0] != '\0' ? " " : "", q->id);
	if (q->verb == QUEUE_CTL_SHOW) {
		req_show(r, q->id);
		return;
	}
	c->serving = r;
	switch (q->verb) {
	case QUEUE_CTL_RETRY: rc = ops->retry(q->id, c->ctx, &error); break;
	case QUEUE_CTL_DELETE: rc = ops->remove(q->id, c->ctx, &error); break;
	case QUEUE_CTL_HOLD: rc = ops->hold(q->id, c->ctx, &error); break;
	case QUEUE_CTL_RELEASE: rc = ops->release(q->id, c->ctx, &error); break;
	default: rc = ops->retry_all(c->ctx, &error); break;
	}
	c->serving = NULL;
	/* 1 (and only 1) goes with queue_ctl_defer(). */
	assert((rc == 1) == r->deferred);
	if (rc != 1)
		req_answer(r, rc, error, NULL, 0);
}

static void
req_on_input(struct lineio *io, void *arg)
{
	struct queue_ctl_req *r = arg;
	struct queue_ctl_request q;
	char line[QUEUE_CTL_MAX_LINE + 1];
	const char *error;
	size_t len = 0;

	int got = lineio_read_line(io, line, QUEUE_CTL_MAX_LINE, &len);
	if (got == 0)
		return;
	/* One request per connection: nothing more is read. */
	lineio_pause(io, true);
	evtimer_del(r->deadline);
	if (got < 0)
		req_answer(r, -1, "the request line is too long", NULL, 0);
	else if (queue_ctl_parse(line, len, &q, &error) < 0)
		req_answer(r, -1, error, NULL, 0);
	else
		req_serve(r, &q);
}

static void
req_on_event(struct lineio *io, enum lineio_event ev, void *arg)
{
	struct queue_ctl_req *r = arg;
	if (r->deferred) {
		/* The op still holds the request: keep it, without its client. */
		lineio_free(&r->io);
		return;
	}
	req_free(r);
}

static const struct lineio_callbacks req_callbacks = { req_on_input, req_on_event };

static void
req_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct queue_ctl_req *r = arg;
	log_info("queue: control: no request within %d s; closing", r->ctl->timeout);
	req_free(r);
}

/* Refusals before a connection is set up: one line, best effort. */
static void
refuse_fd(int fd, const char *line)
{
	if (send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("queue: control: cannot send a refusal: %s", strerror(errno));
	close(fd);
}

static void
ctl_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct queue_ctl *c = arg;
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || clen != sizeof(cred) ||
	    !queue_ctl_peer_allowed(cred.uid, geteuid())) {
		log_warn("queue: control: connection from uid %ld refused",
		    clen == sizeof(cred) ? (long)cred.uid : -1L);
		refuse_fd(fd, "error permission denied\n");
		return;
	}
	if (c->nreqs >= QUEUE_CTL_MAX_CONNS) {
		log_warn("queue: control: more than %d connections; refusing one",
		    QUEUE_CTL_MAX_CONNS);
		refuse_fd(fd, "error too many control connections; try again\n");
		return;
	}
	struct queue_ctl_req *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		refuse_fd(fd, "error out of memory\n");
		return;
	}
	r->ctl = c;
	r->next = c->reqs;
	if (r->next != NULL)
		r->next->prevp = &r->next;
	r->prevp = &c->reqs;
	c->reqs = r;
	c->nreqs++;
	r->deadline = evtimer_new(c->base, req_on_deadline, r);
	r->io = lineio_new(c->base, fd, NULL, &req_callbacks, r);   /* owns fd */
	if (r->deadline == NULL || r->io == NULL) {
		req_free(r);
		return;
	}
	lineio_set_timeout(r->io, c->timeout);
	struct timeval tv = { c->timeout, 0 };
	evtimer_add(r->deadline, &tv);
}

static void
ctl_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct queue_ctl *c = arg;
	evconnlistener_enable(c->listener);
}

static void
ctl_on_accept_error(struct evconnlistener *l, void *arg)
{
	struct queue_ctl *c = arg;
	/* Out of descriptors: the socket stays readable, so pause instead of spinning. */
	log_warn("queue: control: accept failed: %s; pausing for a second", strerror(errno));
	evconnlistener_disable(l);
	struct timeval tv = { 1, 0 };
	evtimer_add(c->resume, &tv);
}

/* Takes the spool lock, waiting a little for a CLI that holds it briefly. */
static int
lock_with_wait(const char *dir, const char **error_r)
{
	for (int waited = 0;; waited += 50) {
		int fd = queue_ctl_lock_spool(dir, error_r);
		if (fd >= 0 || errno != EWOULDBLOCK || waited >= LOCK_WAIT_MS)
			return fd;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* Makes the listening socket; a stale socket file (the lock proves nobody
 * serves it) is replaced. */
static int
ctl_listen(struct queue_ctl *c, const char *dir, const char **error_r)
{
	struct sockaddr_un sa;
	struct stat st;

	if (fstatat(c->dir_fd, QUEUE_CTL_SOCKET, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = "something that is not a socket is in the way of " QUEUE_CTL_SOCKET;
			return -1;
		}
		if (unlinkat(c->dir_fd, QUEUE_CTL_SOCKET, 0) < 0) {
			*error_r = "cannot remove the stale " QUEUE_CTL_SOCKET;
			return -1;
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = "cannot create the control socket";
		return -1;
	}
	if (ctl_address(dir, c->dir_fd, &sa) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		*error_r = "cannot bind the control socket";
		close(fd);
		return -1;
	}
	/* The spool directory is 0700 already; the mode says it once more. */
	if (fchmodat(c->dir_fd, QUEUE_CTL_SOCKET, 0600, 0) < 0 ||
	    fstatat(c->dir_fd, QUEUE_CTL_SOCKET, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    listen(fd, QUEUE_CTL_MAX_CONNS) < 0) {
		*error_r = "cannot set up the control socket";
		unlinkat(c->dir_fd, QUEUE_CTL_SOCKET, 0);
		close(fd);
		return -1;
	}
	c->sock_dev = st.st_dev;
	c->sock_ino = st.st_ino;
	c->listener = evconnlistener_new(c->base, ctl_on_accept, c,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (c->listener == NULL) {
		*error_r = "cannot listen on the control socket";
		unlinkat(c->dir_fd, QUEUE_CTL_SOCKET, 0);
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(c->listener, ctl_on_accept_error);
	return 0;
}

struct queue_ctl *
queue_ctl_new(struct event_base *base, const char *spool_dir,
    const struct queue_ctl_ops *ops, void *ctx, const char **error_r)
{
	struct queue_ctl *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	c->base = base;
	c->ops = ops;
	c->ctx = ctx;
	c->timeout = QUEUE_CTL_TIMEOUT;
	c->dir_fd = lock_with_wait(spool_dir, error_r);
	if (c->dir_fd < 0) {
		free(c);
		return NULL;
	}
	c->resume = evtimer_new(base, ctl_on_resume, c);
	if (c->resume == NULL || ctl_listen(c, spool_dir, error_r) < 0) {
		if (c->resume != NULL)
			event_free(c->resume);
		close(c->dir_fd);
		free(c);
		return NULL;
	}
	return c;
}

void
queue_ctl_free(struct queue_ctl **cp)
{
	struct queue_ctl *c = cp == NULL ? NULL : *cp;
	struct stat st;
	if (c == NULL)
		return;
	*cp = NULL;
	while (c->reqs != NULL)
		req_free(c->reqs);
	evconnlistener_free(c->listener);
	event_free(c->resume);
	/* Only our own socket file: never one that replaced it. */
	if (fstatat(c->dir_fd, QUEUE_CTL_SOCKET, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == c->sock_dev && st.st_ino == c->sock_ino)
		unlinkat(c->dir_fd, QUEUE_CTL_SOCKET, 0);
	close(c->dir_fd);   /* releases the lock */
	free(c);
}

void
queue_ctl_set_timeout(struct queue_ctl *c, int seconds)
{
	c->timeout = seconds;
}

struct queue_ctl_req *
queue_ctl_defer(struct queue_ctl *c)
{
	assert(c->serving != NULL && !c->serving->deferred);
	c->serving->deferred = true;
	return c->serving;
}

void
queue_ctl_answer(struct queue_ctl_req **rp, int rc, const char *error)
{
	struct queue_ctl_req *r = *rp;
	assert(r != NULL && r->deferred);
	*rp = NULL;
	r->deferred = false;
	req_answer(r, rc < 0 ? -1 : 0, error, NULL, 0);
}

/* ---------------------------------------------------------------- client */

/* -1 with errno err and a sentence in error_buf. */
static int
client_fail(char *error_buf, size_t error_size, const char **error_r, int err,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
client_fail(char *error_buf, size_t error_size, const char **error_r, int err,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_buf, error_size, fmt, ap);
	va_end(ap);
	*error_r = error_buf;
	errno = err;
	return -1;
}

/* Control bytes of the daemon's text (it may quote a remote server) are not
 * sent to the operator's terminal. */
static void
copy_clean(FILE *out, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		fputc((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : (int)ch, out);
	}
}

/* Connects to the control socket; -1 with errno (ENOENT, ECONNREFUSED...). */
static int
client_connect(const char *spool_dir)
{
	struct sockaddr_un sa;
	int dir_fd = -1, err;
	if (ctl_address(spool_dir, -1, &sa) < 0) {
		/* A long spool path: through /proc, as the server bound it. */
		if ((dir_fd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			return -1;
		ctl_address(spool_dir, dir_fd, &sa);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { QUEUE_CTL_ANSWER_TIMEOUT, 0 };
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		if (fd >= 0)
			close(fd);
		if (dir_fd >= 0)
			close(dir_fd);
		errno = err;
		return -1;
	}
	if (dir_fd >= 0)
		close(dir_fd);
	return fd;
}

static int
send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
queue_ctl_request(const char *spool_dir, const char *verb, const char *id, FILE *out,
    char *error_buf, size_t error_size, const char **error_r)
{
	char line[QUEUE_CTL_MAX_ANSWER_LINE + 1], buf[4096];
	struct queue_ctl_request q;
	const char *why;
	size_t have = 0;
	int state = -1;      /* -1: first line not complete; 0: ok; 1: error */

	*error_r = error_buf;
	int n = snprintf(line, sizeof(line), "%s%s%s\n", verb, id != NULL ? " " : "",
	    id != NULL ? id : "");
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    queue_ctl_parse(line, (size_t)n - 1, &q, &why) < 0)
		return client_fail(error_buf, error_size, error_r, EINVAL, "bad request: %s",
		    n > 0 && (size_t)n < sizeof(line) ? why : "too long");
	int fd = client_connect(spool_dir);
	if (fd < 0) {
		int err = errno;
		if (!queue_ctl_no_daemon(err))
			return client_fail(error_buf, error_size, error_r, err,
			    "cannot connect to %s/%s: %s", spool_dir, QUEUE_CTL_SOCKET, strerror(err));
		/* Nothing listens: rampartd is down, unless its queue holds the lock. */
		int lock = queue_ctl_lock_spool(spool_dir, &why);
		if (lock < 0 && errno == EWOULDBLOCK)
			return client_fail(error_buf, error_size, error_r, EBUSY,
			    "rampartd's queue holds the spool %s but does not answer on %s",
			    spool_dir, QUEUE_CTL_SOCKET);
		if (lock >= 0)
			close(lock);
		return client_fail(error_buf, error_size, error_r, err,
		    "rampartd is not running (nothing listens on %s/%s)", spool_dir, QUEUE_CTL_SOCKET);
	}
	if (send_all(fd, line, (size_t)n) < 0) {
		int err = errno;
		close(fd);
		return client_fail(error_buf, error_size, error_r, err,
		    "cannot send the request to rampartd: %s", strerror(err));
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int err = errno;
			close(fd);
			if (err == EAGAIN || err == EWOULDBLOCK)
				return client_fail(error_buf, error_size, error_r, ETIMEDOUT,
				    "rampartd did not answer within %d s; the request may still be "
				    "carried out", QUEUE_CTL_ANSWER_TIMEOUT);
			return client_fail(error_buf, error_size, error_r, err,
			    "cannot read rampartd's answer: %s", strerror(err));
		}
		if (got == 0)
			break;
		size_t off = 0;
		if (state < 0) {
			const char *nl = memchr(buf, '\n', (size_t)got);
			size_t take = nl != NULL ? (size_t)(nl - buf) : (size_t)got;
			if (have + take > QUEUE_CTL_MAX_ANSWER_LINE) {
				close(fd);
				return client_fail(error_buf, error_size, error_r, EPROTO,
				    "rampartd's answer is not understood (first line too long)");
			}
			memcpy(line + have, buf, take);
			have += take;
			if (nl == NULL)
				continue;
			line[have] = '\0';
			off = take + 1;
			if (strcmp(line, "ok") == 0) {
				state = 0;
			} else if (strncmp(line, "error ", 6) == 0) {
				state = 1;
				sanitize_sentence(error_buf, error_size, line + 6);
			} else {
				close(fd);
				return client_fail(error_buf, error_size, error_r, EPROTO,
				    "rampartd's answer is not understood");
			}
		}
		if (state == 0 && out != NULL)
			copy_clean(out, buf + off, (size_t)got - off);
	}
	close(fd);
	if (state < 0)
		return client_fail(error_buf, error_size, error_r, EPROTO,
		    "rampartd closed the connection without an answer");
	return state;
}
