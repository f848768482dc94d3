/* front-process — see front-process.h. */
#include "front/front-process.h"
#include "lib/config.h"
#include "lib/ipc-call.h"
#include "lib/log.h"
#include "lib/netaddr.h"
#include "lib/proc.h"
#include "net/tls.h"
#include "smtp/smtp-inbound.h"
#include "smtp/smtp-session.h"
#include "queue/queue-msg.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#define CLIENT_SLOTS 4096   /* open-addressing table of per-address counts */

struct front_conn {
	struct front_conn *next, **prevp;
	struct front_listener *fl;
	struct smtp_session *session;
	uint8_t key[16];
};

struct front_listener {
	struct front_ctx *front;
	const struct config_listener *cfg;
	struct cidr_list allow, deny;   /* who may connect (checked at accept) */
	struct evconnlistener *lev;
	struct smtp_server server;
	unsigned active;
};

struct client_slot {
	uint8_t key[16];
	unsigned count;   /* 0 = free */
};

struct front_ctx {
	const struct config *cfg;
	unsigned index;
	struct event_base *base;
	SSL_CTX *tls;
	struct smtp_mailauth mailauth;  /* resolver and PSL for mx checks */
	bool mailauth_on;
	struct ipc_client *auth, *queue;
	struct front_listener *listeners;
	struct front_conn *conns;
	unsigned nconns;
	struct client_slot *clients;
	bool stopping;
	struct event *grace_timer;
};

/* ---- connections per client address ---- */

static void
addr_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		/* IPv4-mapped form, so both families share one table. */
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

static struct client_slot *
client_slot(struct front_ctx *f, const uint8_t key[16], bool create)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	struct client_slot *free_slot = NULL;
	for (unsigned n = 0; n < CLIENT_SLOTS; n++) {
		struct client_slot *c = &f->clients[(h + n) % CLIENT_SLOTS];
		if (c->count > 0 && memcmp(c->key, key, 16) == 0)
			return c;
		if (c->count == 0 && free_slot == NULL)
			free_slot = c;
		if (c->count == 0 && !create)
			continue;
	}
	if (!create || free_slot == NULL)
		return NULL;
	memcpy(free_slot->key, key, 16);
	return free_slot;
}

/* ---- sessions ---- */

static void
front_maybe_exit(struct front_ctx *f)
{
	if (f->stopping && f->conns == NULL)
		event_base_loopexit(f->base, NULL);
}

static void
front_conn_end(struct smtp_session *s, void *arg)
{
	struct front_conn *c = arg;
	struct front_ctx *f = c->fl->front;
	struct client_slot *slot = client_slot(f, c->key, false);
	if (slot != NULL && slot->count > 0)
		slot->count--;
	c->fl->active--;
	f->nconns--;
	*c->prevp = c->next;
	if (c->next != NULL)
		c->next->prevp = c->prevp;
	free(c);
	front_maybe_exit(f);
}

static void
refuse(const struct front_listener *fl, int fd, const char *reply)
{
	/* Best effort, non-blocking: the client may not even read it. On an
	 * implicit-TLS listener the first byte must be TLS (RFC 8314 §3): no
	 * clear-text reply there, just the close. */
	if (fl->cfg->role != LISTENER_ROLE_SUBMISSIONS && write(fd, reply, strlen(reply)) < 0) {
		/* nothing to do */
	}
	close(fd);
}

static void
front_on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
    void *arg)
{
	struct front_listener *fl = arg;
	struct front_ctx *f = fl->front;
	uint8_t key[16];

	if (f->stopping) {
		close(fd);
		return;
	}
	if (fl->active >= (unsigned)fl->cfg->max_connections) {
		log_warn("front: listener %s is full (%u connections)", fl->cfg->name, fl->active);
		/* RFC 5321 §3.8: 421 when the service is not available. */
		refuse(fl, fd, "421 4.3.2 Too many connections, try again later\r\n");
		return;
	}
	struct netaddr peer;
	if (netaddr_from_sockaddr(sa, &peer) == 0 &&
	    (cidr_list_contains(&fl->deny, &peer) ||
	    (fl->allow.n > 0 && !cidr_list_contains(&fl->allow, &peer)))) {
		char text[NETADDR_TEXT_MAX];
		netaddr_format(&peer, text, sizeof(text));
		log_warn("front: %s refused on %s: network not allowed", text, fl->cfg->name);
		/* RFC 5321 §3.1: 554 instead of the greeting. */
		refuse(fl, fd, "554 5.7.1 Access denied\r\n");
		return;
	}
	addr_key(sa, key);
	struct client_slot *slot = client_slot(f, key, true);
	if (slot == NULL || slot->count >= (unsigned)f->cfg->max_connections_per_ip) {
		log_warn("front: too many connections from one address on %s", fl->cfg->name);
		refuse(fl, fd, "421 4.7.0 Too many connections from your address\r\n");
		return;
	}
	/* Replies and TLS handshake messages are written whole: Nagle would only
	 * add a delayed-ACK round (~40 ms) to each exchange. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct front_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	memcpy(c->key, key, 16);
	c->fl = fl;
	c->session = smtp_session_new(&fl->server, fd, sa, (socklen_t)salen, front_conn_end, c);
	if (c->session == NULL) {
		free(c);
		return;
	}
	slot->count++;
	fl->active++;
	f->nconns++;
	c->next = f->conns;
	if (c->next != NULL)
		c->next->prevp = &c->next;
	c->prevp = &f->conns;
	f->conns = c;
}

/* ---- channels to auth and queue ---- */

static void
front_on_client_frame(struct ipc_channel *ch, struct ipc_frame *frame, void *arg)
{
	ipc_client_dispatch(arg, frame);
}

static void
front_on_client_close(struct ipc_channel *ch, void *arg)
{
	struct ipc_client *cl = arg;
	log_warn("front: channel to %s closed", ipc_channel_peer(ch));
	/* Waiting sessions answer 451; a new channel comes when the peer restarts. */
	ipc_client_attach(cl, NULL);
}

static void
front_queue_orphan(struct ipc_frame *frame, void *ctx)
{
	struct ipc_client *queue = ctx;
	struct queue_result r;
	const char *error;
	/* A session went away while the queue opened a file for it: release it. */
	if (frame->type != QUEUE_OPEN_RES || queue_result_decode(frame->data, frame->len, &r,
	    &error) < 0 || r.status != QUEUE_OK)
		return;
	struct evbuffer *b = evbuffer_new();
	struct queue_ref ref = { .id = r.id };
	if (b == NULL)
		return;
	queue_ref_encode(b, &ref);
	if (ipc_client_channel(queue) != NULL)
		ipc_send_buf(ipc_client_channel(queue), QUEUE_ABORT, 0, b, -1);
	evbuffer_free(b);
}

static void
front_on_peer(const struct ctl_peer *peer, int fd, void *ctx)
{
	struct front_ctx *f = ctx;
	struct ipc_client *cl = peer->kind == PROC_AUTH ? f->auth :
	    peer->kind == PROC_QUEUE ? f->queue : NULL;
	if (cl == NULL) {
		close(fd);
		return;
	}
	/* ipc_client_attach frees the old channel, whose close callback is not re-run. */
	ipc_client_attach(cl, ipc_channel_new(f->base, fd, proc_kind_name(peer->kind),
	    front_on_client_frame, front_on_client_close, cl));
}

/* ---- stopping ---- */

static void
front_on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct front_ctx *f = arg;
	log_info("front: grace period over, closing %u session(s)", f->nconns);
	while (f->conns != NULL) {
		struct front_conn *c = f->conns;
		smtp_session_free(&c->session);
		front_conn_end(NULL, c);
	}
	event_base_loopexit(f->base, NULL);
}

static void
front_on_stop(unsigned grace, bool drain, void *ctx)
{
	struct front_ctx *f = ctx;
	if (f->stopping && drain)
		return;
	if (f->grace_timer != NULL) {
		/* A shutdown after a drain: the shorter grace applies from now. */
		event_free(f->grace_timer);
		f->grace_timer = NULL;
	}
	f->stopping = true;
	for (size_t i = 0; i < f->cfg->nlisteners; i++)
		if (f->listeners[i].lev != NULL) {
			evconnlistener_free(f->listeners[i].lev);
			f->listeners[i].lev = NULL;
		}
	if (!drain) {
		for (struct front_conn *c = f->conns, *next; c != NULL; c = next) {
			next = c->next;
			smtp_session_shutdown(c->session);
		}
	}
	struct timeval tv = { grace, 0 };
	f->grace_timer = evtimer_new(f->base, front_on_grace, f);
	evtimer_add(f->grace_timer, &tv);
	front_maybe_exit(f);
}

static bool
front_has_mx(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].role == LISTENER_ROLE_MX)
			return true;
	return false;
}

int
front_process_main(const struct config *cfg, unsigned index, int ctl_fd, const int *listen_fds)
{
	static const struct proc_hooks hooks = { front_on_peer, front_on_stop };
	struct front_ctx f = { .cfg = cfg, .index = index };
	char role[16];

	snprintf(role, sizeof(role), "front%u", index);
	proc_set_role(role);
	if (cfg->tls_cert[0] != '\0') {
		char *error = NULL;
		f.tls = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, &error);
		if (f.tls == NULL)
			fatal("front: %s", error);
	}
	f.base = event_base_new();
	/* Before dropping privileges: the zone file and the resolver's files may
	 * be readable by root only. */
	if (f.base != NULL && cfg->mailauth_check && front_has_mx(cfg)) {
		const char *why;
		if (smtp_mailauth_open(&f.mailauth, cfg, f.base, &why) < 0)
			fatal("front: mail authentication: %s", why);
		f.mailauth_on = true;
	}
	proc_drop_privileges(cfg, "front");
	f.auth = ipc_client_new();
	f.queue = ipc_client_new();
	f.clients = calloc(CLIENT_SLOTS, sizeof(*f.clients));
	f.listeners = calloc(cfg->nlisteners, sizeof(*f.listeners));
	if (f.base == NULL || f.clients == NULL || (cfg->nlisteners > 0 && f.listeners == NULL))
		fatal("front: out of memory");
	ipc_client_set_orphan(f.queue, front_queue_orphan, f.queue);
	struct ipc_channel *ctl = proc_control_attach(f.base, ctl_fd, &hooks, &f);

	for (size_t i = 0; i < cfg->nlisteners; i++) {
		struct front_listener *fl = &f.listeners[i];
		fl->front = &f;
		fl->cfg = &cfg->listeners[i];
		fl->server = (struct smtp_server){
			.cfg = cfg, .listener = fl->cfg, .base = f.base, .tls = f.tls,
			.auth = f.auth, .queue = f.queue,
			.mailauth = f.mailauth_on ? &f.mailauth : NULL,
		};
		const char *why;
		if (cidr_list_parse(fl->cfg->allow, &fl->allow, &why) < 0 ||
		    cidr_list_parse(fl->cfg->deny, &fl->deny, &why) < 0)
			fatal("front: listener %s: %s", fl->cfg->name, why);
		if (fl->cfg->allow_plaintext_auth)
			log_warn("front: listener %s: allow_plaintext_auth is on: loopback clients may "
			    "send passwords WITHOUT TLS. For testing only.", fl->cfg->name);
		fl->lev = evconnlistener_new(f.base, front_on_accept, fl, LEV_OPT_CLOSE_ON_FREE, -1,
		    listen_fds[i]);
		if (fl->lev == NULL)
			fatal("front: cannot listen on %s", fl->cfg->name);
	}
	proc_ready(ctl);
	event_base_dispatch(f.base);

	while (f.conns != NULL) {
		struct front_conn *c = f.conns;
		smtp_session_free(&c->session);
		front_conn_end(NULL, c);
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		if (f.listeners[i].lev != NULL)
			evconnlistener_free(f.listeners[i].lev);
		cidr_list_free(&f.listeners[i].allow);
		cidr_list_free(&f.listeners[i].deny);
	}
	if (f.grace_timer != NULL)
		event_free(f.grace_timer);
	ipc_client_free(&f.auth);
	ipc_client_free(&f.queue);
	ipc_channel_free(&ctl);
	tls_ctx_free(&f.tls);
	smtp_mailauth_close(&f.mailauth);
	free(f.clients);
	free(f.listeners);
	event_base_free(f.base);
	return 0;
}
