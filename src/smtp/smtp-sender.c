/*
 * smtp-sender — accountability of authenticated senders.
 *
 * A user who logged in may send only as an address they own: their own, an
 * alias that delivers to them, or a send-as grant (the auth process decides,
 * directory_may_send_as). That holds for the envelope sender (MAIL FROM) and
 * for every mailbox of the From: header (RFC 5322 §3.6.2), which is what the
 * recipient's MUA shows. Otherwise 553 5.7.1. The header is scanned as the
 * message streams to the spool (header-from), so nothing is read twice.
 * A message must have exactly one From: field (RFC 5322 §3.6).
 */
#include "smtp/smtp-session-private.h"
#include "queue/queue-msg.h"
#include "auth/auth-msg.h"
#include "lib/ipc-call.h"
#include "lib/log.h"
#include "queue/envelope.h"
#include "smtp/header-from.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

typedef void sender_ok_fn(struct smtp_session *s, void *arg);

struct sender_call {
	struct smtp_session *s;
	sender_ok_fn *ok;
	void *arg;              /* malloc'd; ours until ok() takes it */
	char address[256];
};

static void
sender_call_free(void *arg)
{
	struct sender_call *c = arg;
	free(c->arg);
	free(c);
}

static void
on_sender_reply(struct ipc_frame *f, void *arg)
{
	struct sender_call *c = arg;
	struct smtp_session *s = c->s;
	struct auth_sender_res res = { AUTH_SENDER_TEMPFAIL };
	const char *error = "auth unavailable";
	smtp_resume(s);
	if (f == NULL || auth_sender_res_decode(f->data, f->len, &res, &error) < 0) {
		log_error("smtp %s: sender check: %s", s->sid, error);
		res.status = AUTH_SENDER_TEMPFAIL;
	}
	switch (res.status) {
	case AUTH_SENDER_OK: {
		sender_ok_fn *ok = c->ok;
		void *okarg = c->arg;
		free(c);
		ok(s, okarg);
		return;
	}
	case AUTH_SENDER_DENIED:
		log_info("smtp %s: %s may not send as <%s>", s->sid, s->user, c->address);
		/* RFC 5321 §4.2.2 553 mailbox name not allowed; RFC 3463 5.7.1. */
		smtp_reply(s, 553, "5.7.1", "<%s>: Sender address not owned by user %s",
		    c->address, s->user);
		smtp_count_error(s);
		break;
	case AUTH_SENDER_TEMPFAIL:
		smtp_reply(s, 451, "4.3.0", "Temporary failure, try again later");
		break;
	}
	/* At end of data the refused message is dropped (at MAIL there is none yet). */
	if (s->txn != NULL)
		smtp_txn_reset(s);
	sender_call_free(c);
}

/* Asks auth whether s->user owns address; ok(s, arg) when it does. arg is
 * malloc'd and freed here on any other outcome. Returns false when the
 * question could not be sent (then a 451 has been sent, arg freed). */
static bool
sender_ask(struct smtp_session *s, const char *address, sender_ok_fn *ok, void *arg)
{
	struct sender_call *c = calloc(1, sizeof(*c));
	struct evbuffer *b = evbuffer_new();
	struct ipc_call *call = NULL;
	if (c != NULL && b != NULL) {
		c->s = s;
		c->ok = ok;
		c->arg = arg;
		snprintf(c->address, sizeof(c->address), "%s", address);
		struct auth_sender_req req = { s->user, c->address };
		auth_sender_req_encode(b, &req);
		call = ipc_call_start(s->srv->auth, AUTH_SENDER_REQ, b, on_sender_reply, c);
	}
	if (b != NULL)
		evbuffer_free(b);
	if (call == NULL) {
		if (c != NULL)
			sender_call_free(c);
		else
			free(arg);
		smtp_reply(s, 451, "4.3.0", "Temporary failure, try again later");
		return false;
	}
	ipc_call_own_arg(call, sender_call_free);
	smtp_wait(s, call);
	return true;
}

void
smtp_sender_check_mail(struct smtp_session *s, const char *address,
    void (*ok)(struct smtp_session *s, void *arg), void *arg)
{
	sender_ask(s, address, ok, arg);
}

void
smtp_sender_scan(struct smtp_session *s, size_t from)
{
	struct smtp_txn *t = s->txn;
	if (t->from_scan == NULL || header_from_scan_done(t->from_scan))
		return;
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(t->buf, &pos, from, EVBUFFER_PTR_SET) < 0)
		return;
	struct evbuffer_iovec v[8];
	while (!header_from_scan_done(t->from_scan)) {
		int n = evbuffer_peek(t->buf, -1, &pos, v, 8);
		if (n <= 0)
			return;
		size_t moved = 0;
		for (int i = 0; i < n && i < 8 && !header_from_scan_done(t->from_scan); i++) {
			header_from_scan_feed(t->from_scan, v[i].iov_base, v[i].iov_len);
			moved += v[i].iov_len;
		}
		if (n <= 8 || evbuffer_ptr_set(t->buf, &pos, moved, EVBUFFER_PTR_ADD) < 0)
			return;
	}
}

/* ---- end of data: the From: mailboxes ---- */

static void check_next(struct smtp_session *s, void *arg);

static void
refuse(struct smtp_session *s, int code, const char *enh, const char *text)
{
	smtp_reply(s, code, enh, "%s", text);
	smtp_txn_reset(s);
}

static void
check_next(struct smtp_session *s, void *arg)
{
	free(arg);
	struct smtp_txn *t = s->txn;
	if (t == NULL)
		return;
	const char *mail_from = t->env->mail_from != NULL ? t->env->mail_from : "";
	while (t->from_next < t->from->n) {
		const char *addr = t->from->addr[t->from_next++];
		if (mail_from[0] != '\0' && strcasecmp(addr, mail_from) == 0)
			continue;   /* already checked at MAIL */
		/* The continuation carries no data of its own: a 1-byte token. */
		void *token = malloc(1);
		if (token == NULL) {
			refuse(s, 451, "4.3.0", "Local error in processing");
			return;
		}
		if (!sender_ask(s, addr, check_next, token))
			smtp_txn_reset(s);
		return;
	}
	/* t->from stays until the transaction ends: the commit names the domain
	 * to sign for (smtp_sender_sign_domain). */
	t->after_check(s);
}

void
smtp_sender_check_from(struct smtp_session *s, void (*next)(struct smtp_session *s))
{
	struct smtp_txn *t = s->txn;
	const char *error;
	if (t->from_scan == NULL) {
		next(s);
		return;
	}
	header_from_scan_finish(t->from_scan);
	if (header_from_scan_check(t->from_scan, &error) < 0) {
		log_info("smtp %s: message from %s refused: %s", s->sid, s->user, error);
		/* RFC 5322 §3.6: exactly one From: field. */
		refuse(s, 550, "5.6.0", error);
		return;
	}
	t->from = malloc(sizeof(*t->from));
	if (t->from == NULL) {
		refuse(s, 451, "4.3.0", "Local error in processing");
		return;
	}
	if (header_from_parse(header_from_scan_value(t->from_scan), t->from, &error) < 0) {
		log_info("smtp %s: message from %s refused: From: %s", s->sid, s->user, error);
		refuse(s, 553, "5.7.1", "Cannot tell who the From: header names");
		return;
	}
	t->from_next = 0;
	t->after_check = next;
	check_next(s, NULL);
}

const char *
smtp_sender_sign_domain(const struct smtp_session *s)
{
	const struct smtp_txn *t = s->txn;
	if (s->user[0] == '\0' || t == NULL || t->from == NULL || t->from->n == 0)
		return NULL;
	const char *at = strrchr(t->from->addr[0], '@');
	if (at == NULL || !queue_sign_domain_valid(at + 1))
		return NULL;
	return at + 1;
}
