/*
 * smtp-inbound — mail authentication on the MX path (RFC 7208, RFC 6376,
 * RFC 7489, RFC 8601), for the sessions of mx listeners that did not log in.
 *
 * While the message streams into the spool, its bytes also go to the check
 * (DKIM body hashes are computed on the fly), and the header section is held
 * back from the spool until it is complete, so that any Authentication-Results
 * field claiming our authserv-id can be taken out before it is written
 * (RFC 8601 §5). A header section larger than INBOUND_HEADER_MAX is refused at
 * the end of data (552 5.3.4), so nothing claiming our id can pass by being
 * large. At the end of data the check asks DNS (input paused meanwhile); then
 * DMARC p=reject gives 550 5.7.1, p=quarantine delivery to Junk (when
 * dmarc_action = enforce), and our Authentication-Results field goes with the
 * commit, for the queue to put on top of the message.
 */
#include "smtp/smtp-inbound.h"
#include "smtp/smtp-session-private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "dns/dns.h"
#include "lib/config.h"
#include "lib/log.h"
#include "mailauth/auth-results.h"
#include "mailauth/mailauth.h"
#include "net/lineio.h"
#include "queue/envelope.h"
#include "queue/queue-msg.h"

/* The header section is held in memory up to this size (DKIM keeps as much). */
#define INBOUND_HEADER_MAX DKIM_MAX_HEADER_OCTETS

struct smtp_inbound {
	struct mailauth *check;
	struct dns_view *view;
	struct dns_pump *pump;
	void (*next)(struct smtp_session *s);
	size_t msg_start;        /* offset in t->buf of the first message octet */
	unsigned hdr_state;      /* 0 in a line, 1 at a line start, 2 after CR there */
	bool header_done;        /* the header section has gone through the filter */
	bool header_too_big;
	size_t header_end;       /* offset in t->buf of the empty line, once found */
	bool header_end_found;
	char *added;             /* our Authentication-Results field */
	const char *folder;
};

int
smtp_mailauth_open(struct smtp_mailauth *ma, const struct config *cfg, struct event_base *base,
    const char **error_r)
{
	memset(ma, 0, sizeof(*ma));
	if (cfg->dns_zone[0] != '\0') {
		if ((ma->zone = dns_zone_load(cfg->dns_zone, error_r)) == NULL)
			return -1;
		ma->dns = dns_resolver_zone_new(base, ma->zone);
	} else {
		ma->dns = dns_resolver_unbound_new(base, cfg->dns_resolver,
		    cfg->dns_resolver[0] == '\0', cfg->dns_trust_anchor,
		    (unsigned)cfg->dns_timeout, error_r);
	}
	if (ma->dns == NULL) {
		if (ma->zone != NULL)
			*error_r = "out of memory";
		smtp_mailauth_close(ma);
		return -1;
	}
	if ((ma->psl = dmarc_psl_load(NULL, error_r)) == NULL) {
		smtp_mailauth_close(ma);
		return -1;
	}
	if ((ma->keys = dkim_key_cache_new(0)) == NULL) {
		*error_r = "out of memory";
		smtp_mailauth_close(ma);
		return -1;
	}
	return 0;
}

void
smtp_mailauth_close(struct smtp_mailauth *ma)
{
	dns_resolver_free(&ma->dns);
	dns_zone_free(&ma->zone);
	dmarc_psl_free(&ma->psl);
	dkim_key_cache_free(&ma->keys);
}

void
smtp_inbound_begin(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const struct smtp_server *srv = s->srv;
	if (srv->mailauth == NULL || srv->listener->role != LISTENER_ROLE_MX ||
	    !srv->cfg->mailauth_check || s->user[0] != '\0' || t->inbound != NULL)
		return;
	struct smtp_inbound *in = calloc(1, sizeof(*in));
	if (in == NULL) {
		log_error("smtp %s: out of memory: no mail authentication for this message", s->sid);
		return;
	}
	const char *error;
	struct mailauth_params p = {
		.ip = s->addr, .helo = s->helo, .mail_from = t->env->mail_from,
		.authserv_id = srv->cfg->authserv_id, .now = time(NULL),
		.psl = srv->mailauth->psl, .dmarc_sample = -1, .keys = srv->mailauth->keys,
	};
	if ((in->check = mailauth_new(&p, &error)) == NULL) {
		log_error("smtp %s: no mail authentication for this message: %s", s->sid, error);
		free(in);
		return;
	}
	in->msg_start = evbuffer_get_length(t->buf);
	in->hdr_state = 1;
	t->inbound = in;
}

/* Whether the field starting at p (len octets, up to its final line end) is an
 * Authentication-Results field naming our authserv-id (RFC 8601 §5). */
static bool
field_is_our_results(const char *p, size_t len, const char *authserv_id)
{
	static const char name[] = "authentication-results";
	size_t n = sizeof(name) - 1;
	if (len <= n || strncasecmp(p, name, n) != 0)
		return false;
	size_t i = n;
	while (i < len && (p[i] == ' ' || p[i] == '\t'))   /* RFC 5322 §4.5 obs WSP */
		i++;
	if (i >= len || p[i] != ':')
		return false;
	return auth_results_is_ours(p + i + 1, len - i - 1, authserv_id);
}

/*
 * Rewrites t->buf's header section [msg_start, end) without the fields that
 * claim our authserv-id. Lines end at LF (a CR before it belongs to the line
 * end), so a message with bare LFs cannot hide a field from this filter.
 */
static void
filter_header(struct smtp_session *s, size_t end)
{
	struct smtp_txn *t = s->txn;
	struct smtp_inbound *in = t->inbound;
	in->header_done = true;
	if (end <= in->msg_start)
		return;
	const char *h = (const char *)evbuffer_pullup(t->buf, (ev_ssize_t)end);
	struct evbuffer *out = evbuffer_new();
	if (h == NULL || out == NULL) {
		if (out != NULL)
			evbuffer_free(out);
		in->header_too_big = true;   /* cannot filter: refuse rather than pass it on */
		return;
	}
	unsigned removed = 0;
	bool ok = evbuffer_add(out, h, in->msg_start) == 0;
	size_t pos = in->msg_start;
	while (ok && pos < end) {
		size_t fend = pos;
		do {   /* a field: its first line and every line starting with WSP */
			const char *lf = memchr(h + fend, '\n', end - fend);
			fend = lf != NULL ? (size_t)(lf - h) + 1 : end;
		} while (fend < end && (h[fend] == ' ' || h[fend] == '\t'));
		if (field_is_our_results(h + pos, fend - pos, s->srv->cfg->authserv_id))
			removed++;
		else
			ok = evbuffer_add(out, h + pos, fend - pos) == 0;
		pos = fend;
	}
	if (!ok) {
		evbuffer_free(out);
		in->header_too_big = true;
		return;
	}
	if (removed > 0) {
		log_info("smtp %s: removed %u Authentication-Results field%s claiming our "
		    "authserv-id", s->sid, removed, removed == 1 ? "" : "s");
		evbuffer_drain(t->buf, end);
		evbuffer_prepend_buffer(t->buf, out);
	}
	evbuffer_free(out);
}

/* Looks for the empty line ending the header section in new octets (RFC 5322
 * §2.1); sets header_end to the offset of that line. */
static void
find_header_end(struct smtp_inbound *in, const char *p, size_t len, size_t base)
{
	for (size_t i = 0; i < len && !in->header_end_found; i++) {
		char c = p[i];
		if (in->hdr_state == 1 && c == '\n') {
			in->header_end = base + i;
			in->header_end_found = true;
		} else if (in->hdr_state == 1 && c == '\r') {
			in->hdr_state = 2;
		} else if (in->hdr_state == 2 && c == '\n') {
			in->header_end = base + i - 1;
			in->header_end_found = true;
		} else {
			in->hdr_state = c == '\n' ? 1 : 0;
		}
	}
}

void
smtp_inbound_scan(struct smtp_session *s, size_t from)
{
	struct smtp_txn *t = s->txn;
	struct smtp_inbound *in = t->inbound;
	if (in == NULL)
		return;
	struct evbuffer_ptr pos;
	size_t total = evbuffer_get_length(t->buf);
	size_t at = from;
	struct evbuffer_iovec v[8];
	while (at < total && evbuffer_ptr_set(t->buf, &pos, at, EVBUFFER_PTR_SET) == 0) {
		int n = evbuffer_peek(t->buf, -1, &pos, v, 8);
		if (n <= 0)
			break;
		for (int i = 0; i < n && i < 8; i++) {
			mailauth_feed(in->check, v[i].iov_base, v[i].iov_len);
			if (!in->header_done && !in->header_end_found)
				find_header_end(in, v[i].iov_base, v[i].iov_len, at);
			at += v[i].iov_len;
		}
	}
	if (in->header_done)
		return;
	if (in->header_end_found)
		filter_header(s, in->header_end);
	else if (total - in->msg_start > INBOUND_HEADER_MAX) {
		in->header_done = true;        /* let it flow; refused at the end */
		in->header_too_big = true;
	}
}

bool
smtp_inbound_holding(const struct smtp_session *s)
{
	return s->txn != NULL && s->txn->inbound != NULL && !s->txn->inbound->header_done;
}

void
smtp_inbound_release(struct smtp_session *s)
{
	struct smtp_inbound *in = s->txn->inbound;
	if (in == NULL || in->header_done)
		return;
	/* The message ended inside its header section: all of it is header. */
	filter_header(s, evbuffer_get_length(s->txn->buf));
}

static void
inbound_done(void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = s->txn;
	struct smtp_inbound *in = t->inbound;
	dns_pump_free(&in->pump);
	s->checking = false;
	smtp_resume(s);
	const char *summary = mailauth_summary(in->check);
	enum mailauth_verdict verdict = mailauth_verdict(in->check);
	bool enforce = strcmp(s->srv->cfg->dmarc_action, "enforce") == 0;
	if (verdict == MAILAUTH_REJECT && enforce) {
		/* RFC 7489 §6.6.4 / §10.3: reject after DATA with 550 5.7.1. */
		log_info("smtp %s: message from %s refused: %s", s->sid, s->addr, summary);
		smtp_reply(s, 550, "5.7.1", "Message rejected: DMARC policy of %s",
		    mailauth_dmarc_domain(in->check));
		smtp_txn_reset(s);
		return;
	}
	if (verdict == MAILAUTH_QUARANTINE && enforce)
		in->folder = "Junk";
	log_info("smtp %s: mail authentication: %s%s", s->sid, summary,
	    in->folder != NULL ? "; to Junk" : "");
	if ((in->added = mailauth_auth_results(in->check)) == NULL) {
		smtp_reply(s, 451, "4.3.0", "Local error in processing");
		smtp_txn_reset(s);
		return;
	}
	const char *why;
	if (queue_added_check(in->added, strlen(in->added), &why) < 0) {
		/* Never expected (the formatter writes valid fields); the queue would
		 * refuse the commit, so deliver without the field rather than never. */
		log_error("smtp %s: Authentication-Results not added: %s", s->sid, why);
		in->added[0] = '\0';
	}
	in->next(s);
}

/* The pump gives step and done the same argument: the session. */
static int
inbound_step(struct dns_view *v, void *arg)
{
	struct smtp_session *s = arg;
	return mailauth_step(v, s->txn->inbound->check);
}

void
smtp_inbound_check(struct smtp_session *s, void (*next)(struct smtp_session *s))
{
	struct smtp_txn *t = s->txn;
	struct smtp_inbound *in = t->inbound;
	if (in == NULL) {
		next(s);
		return;
	}
	if (in->header_too_big) {
		log_info("smtp %s: message from %s refused: header section over %u octets",
		    s->sid, s->addr, (unsigned)INBOUND_HEADER_MAX);
		smtp_reply(s, 552, "5.3.4", "Message header section too large");
		smtp_txn_reset(s);
		return;
	}
	mailauth_finish(in->check);
	in->next = next;
	in->view = dns_view_new(NULL);
	unsigned deadline = (unsigned)s->srv->cfg->dns_timeout + 1000;
	if (in->view != NULL)
		in->pump = dns_pump_start(s->srv->mailauth->dns, in->view, deadline,
		    inbound_step, inbound_done, s);
	if (in->pump == NULL) {
		smtp_reply(s, 451, "4.3.0", "Local error in processing");
		smtp_txn_reset(s);
		return;
	}
	s->checking = true;
	lineio_pause(s->io, true);
}

void
smtp_inbound_added(const struct smtp_session *s, const char **added, const char **folder)
{
	const struct smtp_inbound *in = s->txn->inbound;
	*added = in != NULL && in->added != NULL ? in->added : "";
	*folder = in != NULL && in->folder != NULL ? in->folder : "";
}

void
smtp_inbound_free(struct smtp_txn *t)
{
	struct smtp_inbound *in = t->inbound;
	if (in == NULL)
		return;
	t->inbound = NULL;
	dns_pump_free(&in->pump);
	dns_view_free(&in->view);
	mailauth_free(&in->check);
	free(in->added);
	free(in);
}
