/* envelope — see envelope.h. */
#include "queue/envelope.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lib/wire.h"

/* An id is a spool id (spool.h) but the envelope only insists it is a short
 * token that is safe as a file name. */
#define ENVELOPE_MAX_ID 64

struct envelope *
envelope_new(void)
{
	struct envelope *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->mail_from = strdup("");
	e->helo = strdup("");
	e->client_addr = strdup("");
	e->listener = strdup("");
	if (e->mail_from == NULL || e->helo == NULL || e->client_addr == NULL ||
	    e->listener == NULL) {
		envelope_free(&e);
		return NULL;
	}
	e->body = ENVELOPE_BODY_7BIT;
	e->ret = ENVELOPE_RET_NONE;
	return e;
}

void
envelope_free(struct envelope **ep)
{
	struct envelope *e = ep == NULL ? NULL : *ep;
	if (e == NULL)
		return;
	*ep = NULL;
	for (size_t i = 0; i < e->rcpt_count; i++) {
		free(e->rcpts[i].address);
		free(e->rcpts[i].mailbox);
		free(e->rcpts[i].orcpt);
	}
	free(e->rcpts);
	free(e->id);
	free(e->mail_from);
	free(e->envid);
	free(e->helo);
	free(e->client_addr);
	free(e->listener);
	free(e->auth_user);
	free(e);
}

int
envelope_set_str(char **field, const char *value)
{
	char *copy = NULL;
	if (value != NULL && (copy = strdup(value)) == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

int
envelope_add_rcpt(struct envelope *e, const char *address, const char *mailbox,
    const char *orcpt, unsigned notify)
{
	if (e->rcpt_count >= ENVELOPE_MAX_RCPTS)
		return -1;
	if (e->rcpt_count == e->rcpt_alloc) {
		size_t n = e->rcpt_alloc == 0 ? 4 : e->rcpt_alloc * 2;
		if (n > ENVELOPE_MAX_RCPTS)
			n = ENVELOPE_MAX_RCPTS;
		struct envelope_rcpt *p = reallocarray(e->rcpts, n, sizeof(*p));
		if (p == NULL)
			return -1;
		e->rcpts = p;
		e->rcpt_alloc = n;
	}
	struct envelope_rcpt rc = {
		.notify = notify,
		.status = ENVELOPE_RCPT_PENDING,
		.status_offset = -1,
	};
	if (envelope_set_str(&rc.address, address) < 0 ||
	    envelope_set_str(&rc.mailbox, mailbox) < 0 ||
	    envelope_set_str(&rc.orcpt, orcpt) < 0) {
		free(rc.address);
		free(rc.mailbox);
		return -1;
	}
	e->rcpts[e->rcpt_count++] = rc;
	return 0;
}

size_t
envelope_pending_count(const struct envelope *e)
{
	size_t n = 0;
	for (size_t i = 0; i < e->rcpt_count; i++)
		if (e->rcpts[i].status == ENVELOPE_RCPT_PENDING)
			n++;
	return n;
}

/* A string may be NULL only when optional; none may hold control characters:
 * they would let a peer forge header lines (Return-Path, Received) downstream. */
static bool
str_ok(const char *s, bool optional)
{
	if (s == NULL)
		return optional;
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++, n++)
		if (*p < 0x20 || *p == 0x7f || n >= ENVELOPE_MAX_STR)
			return false;
	return true;
}

static bool
id_ok(const char *id)
{
	if (id == NULL)
		return true;
	size_t n = strlen(id);
	if (n == 0 || n > ENVELOPE_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return true;
}

static bool
notify_ok(unsigned notify)
{
	if ((notify & ~ENVELOPE_NOTIFY_MASK) != 0)
		return false;
	/* RFC 3461 §4.1: NEVER, or any combination of SUCCESS, FAILURE, DELAY. */
	return !((notify & ENVELOPE_NOTIFY_NEVER) != 0 && notify != ENVELOPE_NOTIFY_NEVER);
}

int
envelope_check(const struct envelope *e, const char **error_r)
{
	if (!id_ok(e->id)) {
		*error_r = "invalid envelope id";
		return -1;
	}
	if (!str_ok(e->mail_from, false) || !str_ok(e->envid, true) ||
	    !str_ok(e->helo, false) || !str_ok(e->client_addr, false) ||
	    !str_ok(e->listener, false) || !str_ok(e->auth_user, true)) {
		*error_r = "envelope field missing, too long or holding control characters";
		return -1;
	}
	if (e->body != ENVELOPE_BODY_7BIT && e->body != ENVELOPE_BODY_8BITMIME) {
		*error_r = "invalid envelope body type";
		return -1;
	}
	if (e->ret != ENVELOPE_RET_NONE && e->ret != ENVELOPE_RET_FULL &&
	    e->ret != ENVELOPE_RET_HDRS) {
		*error_r = "invalid envelope DSN RET value";
		return -1;
	}
	if (e->received_at < 0) {
		*error_r = "invalid envelope reception time";
		return -1;
	}
	if (e->rcpt_count > ENVELOPE_MAX_RCPTS) {
		*error_r = "too many recipients in envelope";
		return -1;
	}
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct envelope_rcpt *rc = &e->rcpts[i];
		if (!str_ok(rc->address, false) || rc->address[0] == '\0' ||
		    !str_ok(rc->mailbox, true) || (rc->mailbox != NULL && rc->mailbox[0] == '\0') ||
		    !str_ok(rc->orcpt, true)) {
			*error_r = "envelope recipient missing, too long or holding control characters";
			return -1;
		}
		if (!notify_ok(rc->notify)) {
			*error_r = "invalid envelope recipient NOTIFY value";
			return -1;
		}
		if (rc->status != ENVELOPE_RCPT_PENDING && rc->status != ENVELOPE_RCPT_DONE &&
		    rc->status != ENVELOPE_RCPT_FAILED) {
			*error_r = "invalid envelope recipient status";
			return -1;
		}
	}
	return 0;
}

/*
 * IPC encoding. Field order:
 *   str id, str mail_from, u8 body, u8 smtputf8, u8 ret, str envid,
 *   u64 size_declared, str helo, str client_addr, u32 client_port, str listener,
 *   str auth_user, u64 received_at, u32 rcpt_count,
 *   rcpt_count × { str address, str mailbox, str orcpt, u8 notify, u8 status }
 */
void
envelope_wire_put(struct evbuffer *b, const struct envelope *e)
{
	wire_put_str(b, e->id);
	wire_put_str(b, e->mail_from);
	wire_put_u8(b, (uint8_t)e->body);
	wire_put_u8(b, e->smtputf8 ? 1 : 0);
	wire_put_u8(b, (uint8_t)e->ret);
	wire_put_str(b, e->envid);
	wire_put_u64(b, e->size_declared);
	wire_put_str(b, e->helo);
	wire_put_str(b, e->client_addr);
	wire_put_u32(b, e->client_port);
	wire_put_str(b, e->listener);
	wire_put_str(b, e->auth_user);
	wire_put_u64(b, (uint64_t)e->received_at);
	wire_put_u32(b, (uint32_t)e->rcpt_count);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		const struct envelope_rcpt *rc = &e->rcpts[i];
		wire_put_str(b, rc->address);
		wire_put_str(b, rc->mailbox);
		wire_put_str(b, rc->orcpt);
		wire_put_u8(b, (uint8_t)rc->notify);
		wire_put_u8(b, (uint8_t)rc->status);
	}
}

/* The smallest encoding of one recipient: three NULL strings and two bytes. */
#define RCPT_MIN_WIRE (3 * 4 + 2)

/* Copies a decoded string into *field; false (and r->bad) on failure. */
static bool
get_str(struct wire_reader *r, char **field, bool optional)
{
	const char *s = optional ? wire_get_str(r) : wire_get_str_nn(r);
	if (r->bad)
		return false;
	if (s != NULL && strlen(s) > ENVELOPE_MAX_STR) {
		r->bad = true;
		return false;
	}
	if (envelope_set_str(field, s) < 0) {
		r->bad = true;
		return false;
	}
	return true;
}

int
envelope_wire_get(struct wire_reader *r, struct envelope **e_r)
{
	const char *error;
	struct envelope *e = envelope_new();

	*e_r = NULL;
	if (e == NULL) {
		r->bad = true;
		return -1;
	}
	if (!get_str(r, &e->id, true) || !get_str(r, &e->mail_from, false))
		goto bad;
	uint8_t body = wire_get_u8(r), utf8 = wire_get_u8(r), ret = wire_get_u8(r);
	if (body > ENVELOPE_BODY_8BITMIME || utf8 > 1 || ret > ENVELOPE_RET_HDRS)
		goto bad;
	e->body = (enum envelope_body)body;
	e->smtputf8 = utf8 == 1;
	e->ret = (enum envelope_ret)ret;
	if (!get_str(r, &e->envid, true))
		goto bad;
	e->size_declared = wire_get_u64(r);
	if (!get_str(r, &e->helo, false) || !get_str(r, &e->client_addr, false))
		goto bad;
	uint32_t port = wire_get_u32(r);
	if (port > UINT16_MAX)
		goto bad;
	e->client_port = (uint16_t)port;
	if (!get_str(r, &e->listener, false) || !get_str(r, &e->auth_user, true))
		goto bad;
	uint64_t when = wire_get_u64(r);
	if (when > INT64_MAX)
		goto bad;
	e->received_at = (int64_t)when;
	uint32_t n = wire_get_count(r, ENVELOPE_MAX_RCPTS);
	/* Do not trust the count further than the bytes that could back it. */
	if (r->bad || (size_t)n > r->left / RCPT_MIN_WIRE)
		goto bad;
	for (uint32_t i = 0; i < n; i++) {
		if (envelope_add_rcpt(e, "", NULL, NULL, 0) < 0)
			goto bad;
		struct envelope_rcpt *rc = &e->rcpts[e->rcpt_count - 1];
		if (!get_str(r, &rc->address, false) || !get_str(r, &rc->mailbox, true) ||
		    !get_str(r, &rc->orcpt, true))
			goto bad;
		uint8_t notify = wire_get_u8(r), status = wire_get_u8(r);
		if (r->bad || status > ENVELOPE_RCPT_FAILED)
			goto bad;
		rc->notify = notify;
		rc->status = (enum envelope_rcpt_status)status;
	}
	if (r->bad || envelope_check(e, &error) < 0)
		goto bad;
	*e_r = e;
	return 0;
bad:
	r->bad = true;
	envelope_free(&e);
	return -1;
}
