/* relay — see relay.h. */
#include "queue/relay.h"
#include "queue/mta-sts.h"
#include "queue/route.h"
#include "dns/dns.h"
#include "lib/config.h"
#include "lib/log.h"
#include "net/tls-client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

struct rjob {
	TAILQ_ENTRY(rjob) link;
	struct relay_job *job;
	relay_done_fn *done;
	void *arg;
};
TAILQ_HEAD(rjob_list, rjob);

struct conn;

struct dest {
	struct dest *next;
	struct relay *r;
	char *key;                      /* the domain */
	struct rjob_list jobs;
	struct conn *conns;
	size_t nconns;
	time_t backoff_until;
	int64_t backoff;                /* seconds; 0 = none yet */
	struct smtp_reply backoff_reply;/* what waiting jobs are told during back-off */
	struct event *kick;
};

enum conn_state { CONN_ROUTING, CONN_CONNECTING, CONN_IDLE, CONN_SENDING, CONN_QUITTING };

struct conn {
	struct conn *next;
	struct dest *d;
	enum conn_state state;
	struct route_lookup *rl;
	struct route *route;
	struct mta_sts_lookup *sl;
	bool sts_pending;
	enum mta_sts_mode sts_mode;
	struct mta_sts_policy sts;      /* patterns copied out of the cache */
	size_t host, addr;
	bool plain;                     /* retrying this address without STARTTLS */
	enum tls_verify_mode check;     /* how the current attempt checks the certificate */
	bool enforce;                   /* ... and whether a failed check ends it */
	struct smtp_client *c;
	struct rjob *cur;
	unsigned sent;
	struct event *idle;
	char why[512];                  /* why the last attempt failed */
	bool why_permanent;
	const char *why_enhanced;
};

struct relay {
	struct event_base *base;
	const struct config *cfg;
	struct dns_resolver *dns;
	SSL_CTX *tls_ctx;
	struct mta_sts_cache *mta_sts;
	const char *password;     /* smarthost AUTH, or NULL */
	struct dest *dests;
	size_t nconns;
};

static void dest_kick(struct dest *d);
static void conn_try_next(struct conn *cn);
static void conn_take(struct conn *cn);
static struct conn *conn_new(struct dest *d);

/* ---- results ---- */

static void
reply_make(struct smtp_reply *rep, unsigned code, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
reply_make(struct smtp_reply *rep, unsigned code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	memset(rep, 0, sizeof(*rep));
	rep->code = code;
	rep->nlines = 1;
	snprintf(rep->enhanced, sizeof(rep->enhanced), "%s", enhanced);
	va_start(ap, fmt);
	vsnprintf(rep->text, sizeof(rep->text), fmt, ap);
	va_end(ap);
}

static void
job_finish(struct dest *d, struct rjob *rj)
{
	struct relay_job *job = rj->job;
	for (size_t i = 0; i < job->msg.nrcpts; i++) {
		struct smtp_client_rcpt *rc = &job->msg.rcpts[i];
		char line[SMTP_REPLY_MAX_TEXT + 32];
		const char *what = rc->result.code / 100 == 2 ? "sent" :
		    rc->result.code / 100 == 5 ? "bounced" : "deferred";
		/* host=none when no host was reached (no route, every host down). */
		log_info("relay: %s to=<%s> host=%s%s%s%s tls=%s status=%s (%s)", job->id,
		    rc->address, job->host[0] != '\0' ? job->host : "none",
		    job->addr[0] != '\0' ? "[" : "", job->addr, job->addr[0] != '\0' ? "]" : "",
		    job->tls[0] != '\0' ?
		    job->tls : "none", what, smtp_reply_format(&rc->result, line, sizeof(line)));
	}
	rj->done(job, rj->arg);
	free(rj);
}

/* Ends a job without a session: every recipient gets rep. */
static void
job_fail(struct dest *d, struct rjob *rj, const struct smtp_reply *rep)
{
	for (size_t i = 0; i < rj->job->msg.nrcpts; i++)
		rj->job->msg.rcpts[i].result = *rep;
	job_finish(d, rj);
}

/* ---- destinations ---- */

static void
dest_free(struct dest *d)
{
	struct dest **dp = &d->r->dests;
	while (*dp != d)
		dp = &(*dp)->next;
	*dp = d->next;
	event_free(d->kick);
	free(d->key);
	free(d);
}

static void
dest_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct dest *d = arg;
	struct relay *r = d->r;
	time_t now = time(NULL);

	if (d->backoff_until > now) {
		/* Back-off: the queue retries each message on its own schedule. */
		struct rjob *rj;
		while ((rj = TAILQ_FIRST(&d->jobs)) != NULL) {
			TAILQ_REMOVE(&d->jobs, rj, link);
			job_fail(d, rj, &d->backoff_reply);
		}
	}
	/* Jobs for idle connections first, then new connections as jobs need them. */
	size_t waiting = 0, starting = 0;
	struct rjob *rj;
	TAILQ_FOREACH(rj, &d->jobs, link)
		waiting++;
	for (struct conn *cn = d->conns; cn != NULL && waiting > 0; cn = cn->next) {
		if (cn->state == CONN_IDLE) {
			conn_take(cn);
			waiting--;
		} else if (cn->state == CONN_ROUTING || cn->state == CONN_CONNECTING) {
			starting++;
		}
	}
	while (waiting > starting && d->nconns < (size_t)r->cfg->relay_destination_concurrency &&
	    r->nconns < (size_t)r->cfg->relay_max_connections) {
		if (conn_new(d) == NULL)
			break;
		starting++;
	}
	if (TAILQ_EMPTY(&d->jobs) && d->conns == NULL) {
		if (d->backoff_until <= now) {
			dest_free(d);
		} else {
			/* Forget the destination once its back-off is over. */
			struct timeval tv = { d->backoff_until - now, 0 };
			event_add(d->kick, &tv);
		}
	}
}

static void
dest_kick(struct dest *d)
{
	struct timeval tv = { 0, 0 };
	event_add(d->kick, &tv);
}

static struct dest *
dest_get(struct relay *r, const char *key)
{
	for (struct dest *d = r->dests; d != NULL; d = d->next)
		if (strcasecmp(d->key, key) == 0)
			return d;
	struct dest *d = calloc(1, sizeof(*d));
	if (d == NULL || (d->key = strdup(key)) == NULL ||
	    (d->kick = evtimer_new(r->base, dest_on_kick, d)) == NULL) {
		if (d != NULL)
			free(d->key);
		free(d);
		return NULL;
	}
	d->r = r;
	TAILQ_INIT(&d->jobs);
	d->next = r->dests;
	r->dests = d;
	return d;
}

/* No attempt of this connection gave a session. */
static void
dest_unreachable(struct dest *d, struct conn *cn)
{
	struct relay *r = d->r;
	struct smtp_reply rep;
	if (cn->why_permanent)
		reply_make(&rep, 550, cn->why_enhanced, "%s", cn->why);
	else
		reply_make(&rep, 451, cn->why_enhanced != NULL ? cn->why_enhanced : "4.4.1", "%s",
		    cn->why);
	/* Other connections of this destination that are up take the jobs. */
	for (struct conn *o = d->conns; o != NULL; o = o->next)
		if (o != cn && (o->state == CONN_IDLE || o->state == CONN_SENDING))
			return;
	if (!cn->why_permanent) {
		int64_t max = r->cfg->queue_retry_max;
		d->backoff = d->backoff == 0 ? r->cfg->relay_destination_backoff :
		    (d->backoff * 2 > max ? max : d->backoff * 2);
		d->backoff_until = time(NULL) + d->backoff;
		d->backoff_reply = rep;
		log_warn("relay: %s unreachable, backing off %llds: %s", d->key,
		    (long long)d->backoff, cn->why);
	}
	struct rjob *rj;
	while ((rj = TAILQ_FIRST(&d->jobs)) != NULL) {
		TAILQ_REMOVE(&d->jobs, rj, link);
		job_fail(d, rj, &rep);
	}
}

/* ---- connections ---- */

static void
conn_free(struct conn *cn)
{
	struct dest *d = cn->d;
	struct conn **cp = &d->conns;
	while (*cp != cn)
		cp = &(*cp)->next;
	*cp = cn->next;
	d->nconns--;
	d->r->nconns--;
	route_cancel(&cn->rl);
	route_free(&cn->route);
	mta_sts_cancel(&cn->sl);
	mta_sts_policy_clear(&cn->sts);
	smtp_client_free(&cn->c);
	if (cn->idle != NULL)
		event_free(cn->idle);
	free(cn);
	/* A slot is free: this destination or another may use it. */
	dest_kick(d);
	for (struct dest *o = d->r->dests; o != NULL; o = o->next)
		if (o != d && !TAILQ_EMPTY(&o->jobs))
			dest_kick(o);
}

static void
conn_why(struct conn *cn, bool permanent, const char *enhanced, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
conn_why(struct conn *cn, bool permanent, const char *enhanced, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cn->why, sizeof(cn->why), fmt, ap);
	va_end(ap);
	cn->why_permanent = permanent;
	cn->why_enhanced = enhanced;
}

static void
on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *cn = arg;
	if (cn->state == CONN_IDLE && cn->c != NULL) {
		cn->state = CONN_QUITTING;
		smtp_client_quit(cn->c);
	}
}

static void on_sent(struct smtp_client *c, struct smtp_client_msg *m, void *arg);

static void
conn_take(struct conn *cn)
{
	struct dest *d = cn->d;
	struct rjob *rj = TAILQ_FIRST(&d->jobs);
	if (cn->state != CONN_IDLE)
		return;
	if (rj == NULL || cn->sent >= (unsigned)d->r->cfg->relay_messages_per_connection) {
		if (rj == NULL && cn->sent < (unsigned)d->r->cfg->relay_messages_per_connection &&
		    d->r->cfg->relay_connection_idle > 0) {
			struct timeval tv = { d->r->cfg->relay_connection_idle, 0 };
			evtimer_add(cn->idle, &tv);
			return;
		}
		cn->state = CONN_QUITTING;
		smtp_client_quit(cn->c);
		if (rj != NULL)
			dest_kick(d);
		return;
	}
	evtimer_del(cn->idle);
	TAILQ_REMOVE(&d->jobs, rj, link);
	cn->cur = rj;
	cn->state = CONN_SENDING;
	cn->sent++;
	struct relay_job *job = rj->job;
	const struct route_host *h = &cn->route->hosts[cn->host];
	snprintf(job->host, sizeof(job->host), "%s", h->name);
	snprintf(job->addr, sizeof(job->addr), "%s", h->addrs[cn->addr].text);
	const struct smtp_client_info *info = smtp_client_info(cn->c);
	if (info->tls)
		snprintf(job->tls, sizeof(job->tls), "%s/%s verified=%s", info->tls_version,
		    info->tls_cipher, info->dane ? "dane" : info->tls_verified ? "pkix" : "no");
	else
		snprintf(job->tls, sizeof(job->tls), "none");
	job->remote_dsn = info->caps.dsn;
	for (size_t i = 0; i < job->msg.nrcpts; i++)
		memset(&job->msg.rcpts[i].result, 0, sizeof(job->msg.rcpts[i].result));
	memset(&job->msg.mail_result, 0, sizeof(job->msg.mail_result));
	if (smtp_client_send(cn->c, &job->msg, on_sent, cn) < 0) {
		struct smtp_reply rep;
		reply_make(&rep, 451, "4.3.0", "internal error: connection not idle");
		cn->cur = NULL;
		job_fail(d, rj, &rep);
	}
}

static void
on_sent(struct smtp_client *c, struct smtp_client_msg *m, void *arg)
{
	struct conn *cn = arg;
	struct rjob *rj = cn->cur;
	struct dest *d = cn->d;
	cn->cur = NULL;
	for (size_t i = 0; i < m->nrcpts; i++)
		if (m->rcpts[i].result.code == 0)
			reply_make(&m->rcpts[i].result, 451, "4.4.2",
			    "connection to %s lost during the transaction", rj->job->host);
	if (smtp_client_idle(c)) {
		cn->state = CONN_IDLE;
		job_finish(d, rj);
		conn_take(cn);
	} else {
		job_finish(d, rj);
	}
}

static void
on_ready(struct smtp_client *c, void *arg)
{
	struct conn *cn = arg;
	struct dest *d = cn->d;
	const struct smtp_client_info *info = smtp_client_info(c);
	const struct route_host *h = &cn->route->hosts[cn->host];
	log_info("relay: connected to %s[%s] for %s: tls=%s%s%s%s", h->name,
	    h->addrs[cn->addr].text, d->key, info->tls ? info->tls_version : "none",
	    info->tls ? " verified=" : "", info->tls ? (info->dane ? "dane" :
	    info->tls_verified ? "pkix" : "no") : "",
	    cn->sts_mode == MTA_STS_TESTING && !(info->tls && info->tls_verified) ?
	    " (MTA-STS testing: enforce would refuse this)" : "");
	d->backoff = 0;
	d->backoff_until = 0;
	cn->state = CONN_IDLE;
	conn_take(cn);
}

static void
on_closed(struct smtp_client *c, enum smtp_client_end end, const struct smtp_reply *reply,
    const char *why, void *arg)
{
	struct conn *cn = arg;
	const struct route_host *h = &cn->route->hosts[cn->host];
	char line[SMTP_REPLY_MAX_TEXT + 32];
	if (cn->state == CONN_CONNECTING) {
		bool tls_required = cn->enforce;
		conn_why(cn, false, end == SMTP_CLIENT_TLS_UNVERIFIED ? "4.7.5" : "4.4.1",
		    "%s[%s]: %s%s%s", h->name, h->addrs[cn->addr].text, why,
		    reply != NULL ? ": " : "", reply != NULL ?
		    smtp_reply_format(reply, line, sizeof(line)) : "");
		log_warn("relay: %s: %s", cn->d->key, cn->why);
		smtp_client_free(&cn->c);
		/* RFC 7435: opportunistic TLS that fails falls back to plain text once. */
		if (end == SMTP_CLIENT_TLS_FAILED && !tls_required && !cn->plain) {
			cn->plain = true;
		} else {
			cn->plain = false;
			cn->addr++;
		}
		conn_try_next(cn);
		return;
	}
	if (end != SMTP_CLIENT_QUIT)
		log_info("relay: connection to %s[%s] ended: %s", h->name,
		    h->addrs[cn->addr].text, why);
	conn_free(cn);
}

static const struct smtp_client_callbacks client_cb = { on_ready, on_closed };

static SSL *
conn_tls_new(void *arg)
{
	struct conn *cn = arg;
	const struct route_host *h = &cn->route->hosts[cn->host];
	const char *error = NULL;
	struct tls_client_policy p = { .mode = cn->check, .host = h->name };
	if (cn->check == TLS_VERIFY_DANE) {
		p.tlsa = h->tlsa;
		p.ntlsa = h->ntlsa;
	}
	SSL *ssl = tls_client_ssl_new(cn->d->r->tls_ctx, &p, &error);
	if (ssl == NULL)
		log_error("relay: TLS for %s: %s", h->name, error != NULL ? error : "failed");
	return ssl;
}

/* Tries the next host/address of the route; ends the connection when none is left. */
static void
conn_try_next(struct conn *cn)
{
	struct dest *d = cn->d;
	struct relay *r = d->r;
	const struct config *cfg = r->cfg;
	bool smarthost = cfg->relay_host[0] != '\0';
	for (;;) {
		if (cn->host >= cn->route->nhosts) {
			dest_unreachable(d, cn);
			conn_free(cn);
			return;
		}
		const struct route_host *h = &cn->route->hosts[cn->host];
		if (cn->addr >= h->naddrs) {
			cn->host++;
			cn->addr = 0;
			continue;
		}
		bool tls_required = false;
		cn->check = TLS_VERIFY_NONE;
		cn->enforce = false;
		if (smarthost) {
			if (strcmp(cfg->relay_tls, "verify") == 0)
				cn->check = TLS_VERIFY_PKIX;
			cn->enforce = cn->check != TLS_VERIFY_NONE;
			tls_required = strcmp(cfg->relay_tls, "opportunistic") != 0;
		} else if (h->tlsa_state == ROUTE_TLSA_USABLE && tls_tlsa_usable(h->tlsa, h->ntlsa) > 0) {
			/* RFC 7672 §2.2: usable TLSA records: authenticated TLS or nothing.
			 * RFC 8461 §2: MTA-STS never overrides a DANE failure. */
			cn->check = TLS_VERIFY_DANE;
			cn->enforce = tls_required = true;
		} else if (cn->sts_mode != MTA_STS_NONE) {
			/* RFC 8461 §4.1: only MX hosts the policy names; §4.2: a valid
			 * certificate. In testing mode (§5) checked and logged only. */
			bool enforce = cn->sts_mode == MTA_STS_ENFORCE;
			if (!mta_sts_mx_match(&cn->sts, h->name)) {
				conn_why(cn, false, "4.7.5", "MTA-STS policy of %s does not list MX host %s",
				    d->key, h->name);
				log_warn("relay: %s%s", cn->why, enforce ? "" :
				    " (testing mode: delivering anyway)");
				if (enforce) {
					cn->host++;
					cn->addr = 0;
					continue;
				}
			}
			cn->check = TLS_VERIFY_PKIX;
			cn->enforce = tls_required = enforce;
		}
		struct smtp_client_params p = {
			.addr = (const struct sockaddr *)&h->addrs[cn->addr].ss,
			.addrlen = h->addrs[cn->addr].len,
			.helo = cfg->relay_helo,
			.peer_name = h->name,
			.starttls = !cn->plain,
			.tls_required = tls_required,
			.verify_required = cn->enforce,
			.tls_new = conn_tls_new,
			.tls_arg = cn,
			.auth_user = smarthost && d->r->password != NULL ? cfg->relay_user : NULL,
			.auth_password = smarthost ? d->r->password : NULL,
			.connect_timeout = (unsigned)cfg->relay_connect_timeout,
			.command_timeout = (unsigned)cfg->relay_command_timeout,
			.data_timeout = (unsigned)cfg->relay_data_timeout,
		};
		cn->state = CONN_CONNECTING;
		cn->c = smtp_client_new(r->base, &p, &client_cb, cn);
		if (cn->c != NULL)
			return;
		conn_why(cn, false, "4.4.1", "%s[%s]: cannot connect: %m", h->name,
		    h->addrs[cn->addr].text);
		cn->addr++;
	}
}

static void
conn_route_ready(struct conn *cn)
{
	if (cn->rl != NULL || cn->sts_pending)
		return;
	struct route *rt = cn->route;
	if (rt->status != ROUTE_OK) {
		conn_why(cn, rt->status == ROUTE_PERMFAIL, rt->status == ROUTE_PERMFAIL ?
		    rt->enhanced : (rt->enhanced[0] != '\0' ? rt->enhanced : "4.4.3"), "%s", rt->why);
		log_warn("relay: %s: %s", cn->d->key, rt->why);
		dest_unreachable(cn->d, cn);
		conn_free(cn);
		return;
	}
	conn_try_next(cn);
}

static void
on_route(struct route *rt, void *arg)
{
	struct conn *cn = arg;
	cn->rl = NULL;
	cn->route = rt;
	conn_route_ready(cn);
}

static void
on_sts(const struct mta_sts_policy *policy, const char *why, void *arg)
{
	struct conn *cn = arg;
	cn->sl = NULL;
	cn->sts_pending = false;
	if (why != NULL)
		log_info("relay: MTA-STS for %s: %s", cn->d->key, why);
	if (policy != NULL) {
		cn->sts_mode = policy->mode;
		cn->sts.mode = policy->mode;
		for (size_t i = 0; i < policy->nmx && i < MTA_STS_MX_MAX; i++)
			if ((cn->sts.mx[cn->sts.nmx] = strdup(policy->mx[i])) != NULL)
				cn->sts.nmx++;
	}
	conn_route_ready(cn);
}

static struct conn *
conn_new(struct dest *d)
{
	struct relay *r = d->r;
	const struct config *cfg = r->cfg;
	struct conn *cn = calloc(1, sizeof(*cn));
	if (cn == NULL || (cn->idle = evtimer_new(r->base, on_idle_timeout, cn)) == NULL) {
		free(cn);
		return NULL;
	}
	cn->d = d;
	cn->state = CONN_ROUTING;
	cn->next = d->conns;
	d->conns = cn;
	d->nconns++;
	r->nconns++;
	bool smarthost = cfg->relay_host[0] != '\0';
	struct route_params rp = {
		.base = r->base,
		.smarthost = smarthost ? cfg->relay_host : NULL,
		.port = (unsigned)cfg->relay_port,
		.ipv6 = cfg->relay_ipv6,
		.dane = cfg->relay_dane && !smarthost,
		.myname = cfg->hostname,
	};
	if (!smarthost && cfg->relay_mta_sts && r->mta_sts != NULL) {
		cn->sts_pending = true;
		cn->sl = mta_sts_get(r->mta_sts, d->key, on_sts, cn);
		if (cn->sl == NULL)
			cn->sts_pending = false;
	}
	cn->rl = route_resolve(r->dns, d->key, &rp, on_route, cn);
	if (cn->rl == NULL) {
		conn_free(cn);
		return NULL;
	}
	return cn;
}

/* ---- the relay ---- */

struct relay *
relay_new(struct event_base *base, const struct config *cfg, struct dns_resolver *dns,
    SSL_CTX *tls_ctx, struct mta_sts_cache *mta_sts, const char *password)
{
	struct relay *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->base = base;
	r->cfg = cfg;
	r->dns = dns;
	r->tls_ctx = tls_ctx;
	r->mta_sts = mta_sts;
	r->password = password;
	return r;
}

void
relay_free(struct relay **rp)
{
	struct relay *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	while (r->dests != NULL) {
		struct dest *d = r->dests;
		struct rjob *rj;
		while ((rj = TAILQ_FIRST(&d->jobs)) != NULL) {
			TAILQ_REMOVE(&d->jobs, rj, link);
			free(rj);
		}
		while (d->conns != NULL) {
			struct conn *cn = d->conns;
			if (cn->cur != NULL) {
				free(cn->cur);
				cn->cur = NULL;
			}
			d->conns = cn->next;
			route_cancel(&cn->rl);
			route_free(&cn->route);
			mta_sts_cancel(&cn->sl);
			mta_sts_policy_clear(&cn->sts);
			smtp_client_free(&cn->c);
			event_free(cn->idle);
			free(cn);
		}
		r->dests = d->next;
		event_free(d->kick);
		free(d->key);
		free(d);
	}
	free(r);
}

void
relay_submit(struct relay *r, struct relay_job *job, relay_done_fn *done, void *arg)
{
	struct rjob *rj = calloc(1, sizeof(*rj));
	struct dest *d = rj != NULL ? dest_get(r, job->domain) : NULL;
	if (d == NULL)
		fatal("relay: out of memory");
	rj->job = job;
	rj->done = done;
	rj->arg = arg;
	job->host[0] = job->addr[0] = job->tls[0] = '\0';
	TAILQ_INSERT_TAIL(&d->jobs, rj, link);
	dest_kick(d);
}

size_t
relay_connections(const struct relay *r)
{
	return r->nconns;
}
