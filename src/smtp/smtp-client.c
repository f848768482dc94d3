/*
 * smtp-client — one outgoing SMTP connection: the TCP connect, replies read
 * and dispatched by state, deadlines, QUIT, the end of the connection and the
 * client's lifetime (callbacks may free it). The session set-up (greeting,
 * EHLO, STARTTLS, AUTH) is in smtp-client-setup.c, the mail transactions in
 * smtp-client-txn.c. See smtp-client.h for the contract.
 */
#include "smtp/smtp-client-private.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/event.h>
#include <sodium.h>

#include "lib/log.h"
#include "lib/netaddr.h"
#include "net/lineio.h"

/* QUIT waits this long at most for its reply. */
#define CLIENT_QUIT_TIMEOUT 10

static const char *const state_names[] = {
	[CS_CONNECTING] = "connect", [CS_GREETING] = "greeting", [CS_EHLO] = "EHLO",
	[CS_HELO] = "HELO", [CS_STARTTLS] = "STARTTLS", [CS_HANDSHAKE] = "TLS handshake",
	[CS_AUTH] = "AUTH", [CS_AUTH_USER] = "AUTH", [CS_AUTH_PASS] = "AUTH",
	[CS_IDLE] = "idle", [CS_TXN] = "transaction", [CS_LOCAL] = "transaction",
	[CS_QUIT] = "QUIT", [CS_CLOSED] = "closed",
};

const char *
smtp_client_end_name(enum smtp_client_end e)
{
	switch (e) {
	case SMTP_CLIENT_QUIT: return "quit";
	case SMTP_CLIENT_CONNECT_FAILED: return "connect-failed";
	case SMTP_CLIENT_GREETING: return "greeting";
	case SMTP_CLIENT_TLS_FAILED: return "tls-failed";
	case SMTP_CLIENT_TLS_UNVERIFIED: return "tls-unverified";
	case SMTP_CLIENT_TLS_MISSING: return "tls-missing";
	case SMTP_CLIENT_AUTH_FAILED: return "auth-failed";
	case SMTP_CLIENT_PROTOCOL: return "protocol";
	case SMTP_CLIENT_TIMEOUT: return "timeout";
	case SMTP_CLIENT_LOST: return "lost";
	case SMTP_CLIENT_SHUTDOWN: return "shutdown";
	}
	return "unknown";
}

unsigned
client_command_timeout(const struct smtp_client *c)
{
	return c->p.command_timeout != 0 ? c->p.command_timeout : 300;
}

unsigned
client_data_timeout(const struct smtp_client *c)
{
	return c->p.data_timeout != 0 ? c->p.data_timeout : 600;
}

static void client_on_input(struct lineio *io, void *ctx);
static void client_on_event(struct lineio *io, enum lineio_event ev, void *ctx);
static const struct lineio_callbacks client_io_callbacks = {
	.input = client_on_input,
	.event = client_on_event,
};

/* ---- lifetime ---- */

void
client_hold(struct smtp_client *c)
{
	c->hold++;
}

static char *
secret_free(char *s, size_t len)
{
	if (s != NULL) {
		sodium_memzero(s, len);
		free(s);
	}
	return NULL;
}

/* Stops all I/O: no event can reach the client afterwards but `defer`. */
static void
client_teardown(struct smtp_client *c)
{
	if (c->conn_ev != NULL) {
		event_free(c->conn_ev);
		c->conn_ev = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	lineio_free(&c->io);
	c->ssl = NULL;
	if (c->timer != NULL)
		evtimer_del(c->timer);
}

static void
client_destroy(struct smtp_client *c)
{
	client_teardown(c);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->defer != NULL)
		event_free(c->defer);
	txn_clear(&c->txn);
	c->auth_user = secret_free(c->auth_user, c->auth_user_len);
	c->auth_password = secret_free(c->auth_password, c->auth_password_len);
	free(c->helo);
	free(c->peer_name);
	free(c);
}

bool
client_release(struct smtp_client *c)
{
	assert(c->hold > 0);
	if (--c->hold == 0 && c->freed) {
		client_destroy(c);
		return false;
	}
	return true;
}

void
smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	if (c->hold > 0) {
		/* Inside one of our callbacks: finished when it returns. */
		client_teardown(c);
		c->freed = true;
		c->state = CS_CLOSED;
		return;
	}
	client_destroy(c);
}

/* ---- output and deadlines ---- */

void
client_send_line(struct smtp_client *c, const char *verb, const char *fmt, ...)
{
	char small[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	log_debug("smtp-client %s: > %s", c->label, verb);
	if ((size_t)n < sizeof(small)) {
		lineio_write(c->io, small, (size_t)n);
	} else {
		char *big = malloc((size_t)n + 1);
		if (big == NULL)
			return;  /* no reply will come: the deadline ends the session */
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		lineio_write(c->io, big, (size_t)n);
		free(big);
	}
	lineio_write(c->io, "\r\n", 2);
}

/* A reply (or, while data is sent, progress) is due within `seconds`; the
 * output must also drain within that time. */
void
client_expect(struct smtp_client *c, unsigned seconds)
{
	struct timeval tv = { (time_t)seconds, 0 };
	evtimer_add(c->timer, &tv);
	if (c->io != NULL)
		lineio_set_timeout(c->io, (int)seconds);
}

/* ---- the end of the connection ---- */

void
client_end(struct smtp_client *c, enum smtp_client_end end,
    const struct smtp_reply *reply, const char *why)
{
	if (c->state == CS_CLOSED)
		return;
	client_teardown(c);
	c->defer_end = false;
	if (end == SMTP_CLIENT_QUIT)
		log_debug("smtp-client %s: closed: %s", c->label, why);
	else
		log_info("smtp-client %s: %s: %s", c->label, smtp_client_end_name(end), why);
	enum client_state was = c->state;
	c->state = CS_CLOSED;
	if (c->txn.m != NULL) {
		if (was == CS_LOCAL)
			c->defer_done = false;  /* its results stand; done runs now */
		txn_abort(c, end == SMTP_CLIENT_SHUTDOWN && was != CS_LOCAL ? reply : NULL);
		if (c->freed)
			return;
	}
	c->cb.closed(c, end, reply, why, c->cb_arg);
}

static void
client_on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	client_hold(c);
	if (c->defer_end) {
		client_end(c, c->defer_end_why, NULL, c->defer_why);
	} else if (c->defer_done) {
		c->defer_done = false;
		txn_finish(c);
	}
	client_release(c);
}

/* Ends the connection from the event loop, not from the owner's call. */
static void
client_schedule_end(struct smtp_client *c, enum smtp_client_end end, const char *why)
{
	client_teardown(c);
	c->defer_end = true;
	c->defer_end_why = end;
	snprintf(c->defer_why, sizeof(c->defer_why), "%.*s", (int)sizeof(c->defer_why) - 1, why);
	event_active(c->defer, 0, 0);
}

static void
client_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	char why[CLIENT_WHY_MAX];
	client_hold(c);
	switch (c->state) {
	case CS_QUIT:
		client_end(c, SMTP_CLIENT_QUIT, NULL, "no reply to QUIT");
		break;
	case CS_HANDSHAKE:
		client_end(c, SMTP_CLIENT_TLS_FAILED, NULL, "TLS handshake timed out");
		break;
	case CS_CONNECTING:
		snprintf(why, sizeof(why), "connect timed out after %u s",
		    c->p.connect_timeout != 0 ? c->p.connect_timeout : 30);
		client_end(c, SMTP_CLIENT_CONNECT_FAILED, NULL, why);
		break;
	default:
		snprintf(why, sizeof(why), "timeout in %s", state_names[c->state]);
		client_end(c, SMTP_CLIENT_TIMEOUT, NULL, why);
		break;
	}
	client_release(c);
}

static void
client_on_event(struct lineio *io, enum lineio_event ev, void *ctx)
{
	struct smtp_client *c = ctx;
	char why[CLIENT_WHY_MAX];
	client_hold(c);
	if (c->state == CS_QUIT) {
		client_end(c, SMTP_CLIENT_QUIT, NULL, "closed after QUIT");
	} else if (c->state == CS_HANDSHAKE) {
		client_end(c, SMTP_CLIENT_TLS_FAILED, NULL, "TLS handshake failed");
	} else if (ev == LINEIO_TIMEOUT && c->state == CS_IDLE) {
		snprintf(why, sizeof(why), "idle for %u s", client_command_timeout(c));
		client_end(c, SMTP_CLIENT_TIMEOUT, NULL, why);
	} else if (ev == LINEIO_TIMEOUT) {
		snprintf(why, sizeof(why), "timeout in %s", state_names[c->state]);
		client_end(c, SMTP_CLIENT_TIMEOUT, NULL, why);
	} else if (ev == LINEIO_EOF) {
		snprintf(why, sizeof(why), "connection closed by the server in %s",
		    state_names[c->state]);
		client_end(c, SMTP_CLIENT_LOST, NULL, why);
	} else {
		snprintf(why, sizeof(why), "connection error in %s: %s", state_names[c->state],
		    errno != 0 ? strerror(errno) : "TLS or socket error");
		client_end(c, SMTP_CLIENT_LOST, NULL, why);
	}
	client_release(c);
}

static void
client_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	char why[CLIENT_WHY_MAX], fmt[CLIENT_FMT_MAX];
	smtp_reply_format(r, fmt, sizeof(fmt));
	if (c->state == CS_QUIT) {
		client_end(c, SMTP_CLIENT_QUIT, NULL, "QUIT answered");
		return;
	}
	if (r->code == 421) {
		/* RFC 5321 §3.8: the server is closing the transmission channel. */
		snprintf(why, sizeof(why), "%s is closing the connection: %s", c->label, fmt);
		client_end(c, SMTP_CLIENT_SHUTDOWN, r, why);
		return;
	}
	evtimer_del(c->timer);
	switch (c->state) {
	case CS_GREETING:
	case CS_EHLO:
	case CS_HELO:
	case CS_STARTTLS:
	case CS_AUTH:
	case CS_AUTH_USER:
	case CS_AUTH_PASS:
		setup_reply(c, r);
		return;
	case CS_TXN:
		txn_reply(c, r);
		return;
	case CS_CONNECTING:
	case CS_HANDSHAKE:
	case CS_IDLE:
	case CS_LOCAL:
	case CS_QUIT:
	case CS_CLOSED:
		break;
	}
	snprintf(why, sizeof(why), "unexpected reply in %s: %s", state_names[c->state], fmt);
	client_end(c, SMTP_CLIENT_PROTOCOL, r, why);
}

static void
client_read(struct smtp_client *c)
{
	while (!client_gone(c) && c->io != NULL && c->state != CS_HANDSHAKE) {
		size_t len;
		const char *error;
		int rc = lineio_read_line(c->io, c->line, SMTP_REPLY_MAX_LINE, &len);
		if (rc == 0)
			return;
		if (rc < 0) {
			client_end(c, SMTP_CLIENT_PROTOCOL, NULL, "reply line too long");
			return;
		}
		rc = smtp_reply_parse_line(&c->parser, c->line, len, &error);
		if (rc < 0) {
			char why[CLIENT_WHY_MAX];
			snprintf(why, sizeof(why), "bad reply: %s", error);
			client_end(c, SMTP_CLIENT_PROTOCOL, NULL, why);
			return;
		}
		/* RFC 5321 §4.1.1.1: the extensions are on the lines after the first. */
		if (c->state == CS_EHLO && c->parser.reply.nlines > 1)
			smtp_ehlo_caps_line(&c->caps_new, len > 4 ? c->line + 4 : "",
			    len > 4 ? len - 4 : 0);
		if (rc == 0)
			continue;
		log_debug("smtp-client %s: < %u", c->label, c->parser.reply.code);
		client_reply(c, &c->parser.reply);
	}
}

static void
client_on_input(struct lineio *io, void *ctx)
{
	struct smtp_client *c = ctx;
	client_hold(c);
	if (c->state == CS_TXN && c->txn.step == TXN_PUMP)
		txn_pump(c);
	client_read(c);
	client_release(c);
}

/* ---- connecting ---- */

static void
client_on_connect(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	char why[CLIENT_WHY_MAX];
	client_hold(c);
	int err = 0;
	socklen_t elen = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	event_free(c->conn_ev);
	c->conn_ev = NULL;
	if (err != 0) {
		snprintf(why, sizeof(why), "connect failed: %s", strerror(err));
		client_end(c, SMTP_CLIENT_CONNECT_FAILED, NULL, why);
	} else {
		c->io = lineio_new(c->base, c->fd, NULL, &client_io_callbacks, c);
		c->fd = -1;  /* lineio owns (or has closed) it */
		if (c->io == NULL) {
			client_end(c, SMTP_CLIENT_LOST, NULL, "out of memory");
		} else {
			c->state = CS_GREETING;
			client_expect(c, client_command_timeout(c));
		}
	}
	client_release(c);
}

static char *
client_strdup(const char *s, size_t *len_r, bool *ok)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*ok = false;
	else if (len_r != NULL)
		*len_r = strlen(d);
	return d;
}

struct smtp_client *
smtp_client_new(struct event_base *base, const struct smtp_client_params *p,
    const struct smtp_client_callbacks *cb, void *arg)
{
	assert(p->addr != NULL && p->addrlen <= sizeof(struct sockaddr_storage));
	assert(p->helo != NULL && cb->ready != NULL && cb->closed != NULL);
	struct smtp_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = -1;
	c->base = base;
	c->p = *p;
	memcpy(&c->addr, p->addr, p->addrlen);
	c->p.addr = (const struct sockaddr *)&c->addr;
	c->cb = *cb;
	c->cb_arg = arg;
	bool ok = true;
	c->helo = client_strdup(p->helo, NULL, &ok);
	c->peer_name = client_strdup(p->peer_name != NULL ? p->peer_name : "", NULL, &ok);
	c->auth_user = client_strdup(p->auth_user, &c->auth_user_len, &ok);
	if (p->auth_user != NULL)
		c->auth_password = client_strdup(p->auth_password != NULL ? p->auth_password : "",
		    &c->auth_password_len, &ok);
	c->p.helo = c->helo;
	c->p.peer_name = c->peer_name;
	c->p.auth_user = c->auth_user;
	c->p.auth_password = c->auth_password;
	c->timer = evtimer_new(base, client_on_timer, c);
	c->defer = event_new(base, -1, 0, client_on_defer, c);
	if (!ok || c->timer == NULL || c->defer == NULL) {
		client_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	struct netaddr na;
	char addr[NETADDR_TEXT_MAX] = "?";
	if (netaddr_from_sockaddr(c->p.addr, &na) == 0)
		netaddr_format(&na, addr, sizeof(addr));
	snprintf(c->label, sizeof(c->label), "%.255s[%s]", c->peer_name, addr);

	c->fd = socket(c->p.addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		int e = errno;
		client_destroy(c);
		errno = e;
		return NULL;
	}
	/* Commands and the end of data are small writes that wait for a reply:
	 * with Nagle each would sit out the peer's delayed ACK (tens of ms). */
	int one = 1;
	if (c->p.addr->sa_family == AF_INET || c->p.addr->sa_family == AF_INET6)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = CS_CONNECTING;
	if (connect(c->fd, c->p.addr, p->addrlen) < 0 && errno != EINPROGRESS) {
		char why[CLIENT_WHY_MAX];
		snprintf(why, sizeof(why), "connect failed: %s", strerror(errno));
		client_schedule_end(c, SMTP_CLIENT_CONNECT_FAILED, why);
		return c;
	}
	/* Connected at once, or under way: writable tells either way. */
	c->conn_ev = event_new(base, c->fd, EV_WRITE, client_on_connect, c);
	if (c->conn_ev == NULL) {
		client_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	struct timeval tv = { (time_t)(p->connect_timeout != 0 ? p->connect_timeout : 30), 0 };
	event_add(c->conn_ev, NULL);
	evtimer_add(c->timer, &tv);
	log_debug("smtp-client %s: connecting", c->label);
	return c;
}

/* ---- the owner's calls ---- */

int
smtp_client_send(struct smtp_client *c, struct smtp_client_msg *m,
    smtp_client_done_fn *done, void *arg)
{
	if (c->state != CS_IDLE || c->freed || m->nrcpts == 0)
		return -1;
	assert(m->end >= m->offset);
	c->txn.m = m;
	c->txn.done = done;
	c->txn.done_arg = arg;
	c->state = CS_TXN;
	if (txn_start(c) < 0) {
		/* Refused locally: `done` still runs from the event loop. */
		c->state = CS_LOCAL;
		c->defer_done = true;
		event_active(c->defer, 0, 0);
	}
	return 0;
}

bool
smtp_client_idle(const struct smtp_client *c)
{
	return c->state == CS_IDLE && !c->freed;
}

const struct smtp_client_info *
smtp_client_info(const struct smtp_client *c)
{
	return &c->info;
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c->freed || c->state == CS_CLOSED || c->state == CS_QUIT || c->defer_end)
		return;
	if (c->state != CS_IDLE) {
		client_schedule_end(c, SMTP_CLIENT_QUIT, "closed by its owner");
		return;
	}
	client_send_line(c, "QUIT", "QUIT");
	c->state = CS_QUIT;
	unsigned t = client_command_timeout(c);
	client_expect(c, t < CLIENT_QUIT_TIMEOUT ? t : CLIENT_QUIT_TIMEOUT);
}
