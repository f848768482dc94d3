/*
 * smtp-client-txn — one mail transaction of the SMTP client: the local checks
 * (8BITMIME, SMTPUTF8, SIZE), MAIL FROM and RCPT TO with their extension
 * parameters, pipelined or one by one, the message data as DATA with
 * dot-stuffing or as BDAT chunks, streamed from the spool file with
 * back-pressure, the per-recipient results, and RSET after a transaction that
 * did not complete. See smtp-client.h.
 */
#include "smtp/smtp-client-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "net/lineio.h"
#include "queue/envelope.h"

void
txn_clear(struct client_txn *t)
{
	free(t->accepted);
	free(t->block);
	memset(t, 0, sizeof(*t));
}

/* A reply made up locally, for recipients never offered to the server. */
static void __attribute__((format(printf, 4, 5)))
txn_local_reply(struct smtp_reply *r, unsigned code, const char *enhanced, const char *fmt, ...)
{
	memset(r, 0, sizeof(*r));
	r->code = code;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", enhanced);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	r->nlines = 1;
}

static void
txn_set_all(struct client_txn *t, const struct smtp_reply *r)
{
	for (size_t i = 0; i < t->m->nrcpts; i++)
		t->m->rcpts[i].result = *r;
}

/* The reply to the data, or to DATA/BDAT when refused, for the recipients
 * that RCPT accepted. */
static void
txn_set_accepted(struct client_txn *t, const struct smtp_reply *r)
{
	for (size_t i = 0; i < t->m->nrcpts; i++) {
		if (t->accepted[i]) {
			t->m->rcpts[i].result = *r;
			t->accepted[i] = false;
		}
	}
	t->naccepted = 0;
}

static void
txn_call_done(struct smtp_client *c)
{
	struct client_txn *t = &c->txn;
	struct smtp_client_msg *m = t->m;
	smtp_client_done_fn *done = t->done;
	void *arg = t->done_arg;
	txn_clear(t);
	done(c, m, arg);
}

void
txn_finish(struct smtp_client *c)
{
	c->state = CS_IDLE;
	evtimer_del(c->timer);
	if (c->io != NULL)
		lineio_set_timeout(c->io, (int)client_command_timeout(c));
	txn_call_done(c);
}

void
txn_abort(struct smtp_client *c, const struct smtp_reply *reply)
{
	struct client_txn *t = &c->txn;
	static const struct smtp_reply none;
	for (size_t i = 0; i < t->m->nrcpts; i++) {
		struct smtp_reply *res = &t->m->rcpts[i].result;
		/* Accepted but the data not confirmed: nothing is known. */
		if ((t->accepted != NULL && t->accepted[i]) || res->code == 0)
			*res = reply != NULL ? *reply : none;
	}
	txn_call_done(c);
}

/* ---- local checks ---- */

/* Whether s has a control character (never in a valid address or xtext:
 * RFC 5321 §4.1.2, RFC 3461 §4), and whether it has 8-bit bytes. */
static bool
txn_bad_chars(const char *s, bool *eightbit)
{
	for (const unsigned char *p = (const unsigned char *)s; s != NULL && *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return true;
		if (*p >= 0x80)
			*eightbit = true;
	}
	return false;
}

/* Returns -1 when the message cannot go to this server (results filled). */
static int
txn_check(struct smtp_client *c, bool *utf8_r)
{
	struct client_txn *t = &c->txn;
	struct smtp_client_msg *m = t->m;
	const struct smtp_ehlo_caps *caps = &c->info.caps;
	struct smtp_reply r;
	bool utf8 = m->smtputf8, bad = txn_bad_chars(m->mail_from, &utf8);
	bad = txn_bad_chars(m->envid, &(bool){ false }) || bad;
	for (size_t i = 0; i < m->nrcpts; i++) {
		bad = txn_bad_chars(m->rcpts[i].address, &utf8) || bad;
		bad = txn_bad_chars(m->rcpts[i].orcpt, &(bool){ false }) || bad;
	}
	*utf8_r = utf8;
	if (bad) {
		txn_local_reply(&r, 501, "5.5.4", "control characters in an address or parameter");
	} else if (utf8 && !caps->smtputf8) {
		/* RFC 6531 §3.2, §3.5: no downgrade; "553 5.6.7" as the RFC suggests. */
		txn_local_reply(&r, 553, "5.6.7", "message needs SMTPUTF8, which %s does not offer",
		    c->peer_name[0] != '\0' ? c->peer_name : c->label);
	} else if (m->eightbit && !caps->eightbitmime) {
		/* RFC 6152 §3: 8-bit data must not go to a server without 8BITMIME;
		 * Rampart does not convert (RFC 3463 5.6.3: conversion required but
		 * not supported). */
		txn_local_reply(&r, 554, "5.6.3", "message needs 8BITMIME, which %s does not offer",
		    c->peer_name[0] != '\0' ? c->peer_name : c->label);
	} else if (caps->size && caps->size_max > 0 && t->total > caps->size_max) {
		/* RFC 1870 §6.1: the server would refuse it; do not send it. */
		txn_local_reply(&r, 552, "5.3.4", "message of %" PRIu64 " octets exceeds the limit "
		    "of %" PRIu64 " octets of %s", t->total, caps->size_max,
		    c->peer_name[0] != '\0' ? c->peer_name : c->label);
	} else {
		return 0;
	}
	log_info("smtp-client %s: message not sent: %u %s %s", c->label, r.code, r.enhanced,
	    r.text);
	txn_set_all(t, &r);
	return -1;
}

/* ---- commands ---- */

static unsigned
txn_data_init_timeout(const struct smtp_client *c)
{
	/* RFC 5321 §4.5.3.2.2: 2 minutes for DATA, against 5 for the others. */
	unsigned t = client_command_timeout(c) * 2 / 5;
	return t > 0 ? t : 1;
}

static unsigned
txn_block_timeout(const struct smtp_client *c)
{
	/* RFC 5321 §4.5.3.2.3: 3 minutes per data block, against 10 for the dot. */
	unsigned t = client_data_timeout(c) * 3 / 10;
	return t > 0 ? t : 1;
}

static void
txn_send_rcpt(struct smtp_client *c, size_t i)
{
	const struct smtp_client_rcpt *r = &c->txn.m->rcpts[i];
	char notify[48] = "", orcpt[ENVELOPE_MAX_STR + 16] = "";
	if (c->info.caps.dsn && r->notify != 0) {
		/* RFC 3461 §4.1: NEVER alone, or a list of the others. */
		if (r->notify & ENVELOPE_NOTIFY_NEVER) {
			snprintf(notify, sizeof(notify), " NOTIFY=NEVER");
		} else {
			snprintf(notify, sizeof(notify), " NOTIFY=%s%s%s",
			    r->notify & ENVELOPE_NOTIFY_SUCCESS ? "SUCCESS," : "",
			    r->notify & ENVELOPE_NOTIFY_FAILURE ? "FAILURE," : "",
			    r->notify & ENVELOPE_NOTIFY_DELAY ? "DELAY," : "");
			size_t n = strlen(notify);
			if (notify[n - 1] == ',')
				notify[n - 1] = '\0';
			else
				notify[0] = '\0';
		}
	}
	if (c->info.caps.dsn && r->orcpt != NULL)
		snprintf(orcpt, sizeof(orcpt), " ORCPT=%s", r->orcpt);
	client_send_line(c, "RCPT", "RCPT TO:<%s>%s%s", r->address, notify, orcpt);
}

static void
txn_send_rset(struct smtp_client *c)
{
	c->txn.step = TXN_RSET;
	client_send_line(c, "RSET", "RSET");
	client_expect(c, client_command_timeout(c));
}

static void
txn_send_data(struct smtp_client *c)
{
	c->txn.step = TXN_DATA;
	client_send_line(c, "DATA", "DATA");
	client_expect(c, txn_data_init_timeout(c));
}

int
txn_start(struct smtp_client *c)
{
	struct client_txn *t = &c->txn;
	struct smtp_client_msg *m = t->m;
	const struct smtp_ehlo_caps *caps = &c->info.caps;
	bool utf8;
	memset(&m->mail_result, 0, sizeof(m->mail_result));
	for (size_t i = 0; i < m->nrcpts; i++)
		memset(&m->rcpts[i].result, 0, sizeof(m->rcpts[i].result));
	t->total = (uint64_t)m->prepend_len + (uint64_t)(m->end - m->offset);
	if (txn_check(c, &utf8) < 0)
		return -1;
	t->accepted = calloc(m->nrcpts, sizeof(*t->accepted));
	if (t->accepted == NULL) {
		struct smtp_reply r;
		txn_local_reply(&r, 451, "4.3.0", "out of memory");
		txn_set_all(t, &r);
		return -1;
	}
	t->chunked = caps->chunking;

	char size[32] = "", envid[ENVELOPE_MAX_STR + 16] = "";
	if (caps->size)  /* RFC 1870 §6 */
		snprintf(size, sizeof(size), " SIZE=%" PRIu64, t->total);
	if (caps->dsn && m->envid != NULL)  /* RFC 3461 §4.4 */
		snprintf(envid, sizeof(envid), " ENVID=%s", m->envid);
	const char *ret = !caps->dsn ? "" : m->ret == ENVELOPE_RET_FULL ? " RET=FULL" :
	    m->ret == ENVELOPE_RET_HDRS ? " RET=HDRS" : "";
	client_send_line(c, "MAIL", "MAIL FROM:<%s>%s%s%s%s%s", m->mail_from, size,
	    m->eightbit ? " BODY=8BITMIME" : "", utf8 ? " SMTPUTF8" : "", ret, envid);
	t->step = TXN_MAIL;
	if (caps->pipelining) {
		/* RFC 2920 §3.1: MAIL, every RCPT and DATA in one go; with CHUNKING
		 * the BDAT waits for the RCPT replies, so nothing is sent for a
		 * message no recipient of which was accepted. */
		for (size_t i = 0; i < m->nrcpts; i++)
			txn_send_rcpt(c, i);
		t->rcpt_send = m->nrcpts;
		if (!t->chunked)
			client_send_line(c, "DATA", "DATA");
	}
	client_expect(c, client_command_timeout(c));
	return 0;
}

/* ---- the data ---- */

/* DATA: RFC 5321 §4.5.2, a line that starts with "." gets another. */
static void
txn_write_stuffed(struct smtp_client *c, const char *src, size_t n)
{
	struct client_txn *t = &c->txn;
	size_t i = 0;
	while (i < n) {
		if (t->bol && src[i] == '.')
			lineio_write(c->io, ".", 1);
		const char *lf = memchr(src + i, '\n', n - i);
		size_t seg = lf != NULL ? (size_t)(lf - (src + i)) + 1 : n - i;
		lineio_write(c->io, src + i, seg);
		t->bol = lf != NULL;
		i += seg;
	}
	if (n >= 2) {
		t->tail[0] = src[n - 2];
		t->tail[1] = src[n - 1];
	} else if (n == 1) {
		t->tail[0] = t->tail[1];
		t->tail[1] = src[0];
	}
}

/* The message could not be read: the transaction cannot be finished, so the
 * connection ends; the accepted recipients carry why (temporary). */
static void
txn_read_failed(struct smtp_client *c, const char *error)
{
	char why[CLIENT_WHY_MAX];
	struct smtp_reply r;
	txn_local_reply(&r, 451, "4.3.0", "cannot read the queued message: %s", error);
	txn_set_accepted(&c->txn, &r);
	snprintf(why, sizeof(why), "cannot read the queued message: %s", error);
	client_end(c, SMTP_CLIENT_LOST, NULL, why);
}

/* The end of the data: "." on a line of its own (RFC 5321 §4.1.1.4), after a
 * CRLF if the data does not end with one. */
static void
txn_send_dot(struct smtp_client *c)
{
	struct client_txn *t = &c->txn;
	if (t->total > 0 && (t->tail[0] != '\r' || t->tail[1] != '\n'))
		lineio_write(c->io, "\r\n", 2);
	client_send_line(c, ".", ".");
	t->step = TXN_DOT;
	client_expect(c, client_data_timeout(c));
}

void
txn_pump(struct smtp_client *c)
{
	struct client_txn *t = &c->txn;
	struct smtp_client_msg *m = t->m;
	if (t->step != TXN_PUMP)
		return;
	uint64_t limit = t->chunked ? t->chunk_end : t->total;
	while (t->pos < limit && lineio_output_pending(c->io) < SMTP_CLIENT_OUTPUT_HIGH) {
		uint64_t want = limit - t->pos;
		size_t n = want < SMTP_CLIENT_READ_BLOCK ? (size_t)want : SMTP_CLIENT_READ_BLOCK;
		const char *src;
		if (t->pos < m->prepend_len) {
			src = m->prepend + t->pos;
			if (n > m->prepend_len - t->pos)
				n = m->prepend_len - (size_t)t->pos;
		} else {
			if (t->block == NULL && (t->block = malloc(SMTP_CLIENT_READ_BLOCK)) == NULL) {
				txn_read_failed(c, "out of memory");
				return;
			}
			off_t at = m->offset + (off_t)(t->pos - m->prepend_len);
			ssize_t got;
			do
				got = pread(m->fd, t->block, n, at);
			while (got < 0 && errno == EINTR);
			if (got <= 0) {
				txn_read_failed(c, got < 0 ? strerror(errno) : "the file is shorter");
				return;
			}
			n = (size_t)got;
			src = t->block;
		}
		if (t->chunked)
			lineio_write(c->io, src, n);
		else
			txn_write_stuffed(c, src, n);
		t->pos += n;
	}
	if (t->pos < limit) {
		/* Back-pressure: more once the output has drained (input then
		 * calls txn_pump again). */
		client_expect(c, txn_block_timeout(c));
		lineio_wait_output(c->io);
		return;
	}
	if (!t->chunked) {
		txn_send_dot(c);
		return;
	}
	t->step = TXN_BDAT;
	client_expect(c, t->chunk_last ? client_data_timeout(c) : txn_block_timeout(c));
}

/* RFC 3030 §2: BDAT <size> [LAST] and exactly that many octets, no stuffing. */
static void
txn_send_chunk(struct smtp_client *c)
{
	struct client_txn *t = &c->txn;
	uint64_t left = t->total - t->pos;
	uint64_t size = left <= SMTP_CLIENT_CHUNK ? left : SMTP_CLIENT_CHUNK;
	t->chunk_end = t->pos + size;
	t->chunk_last = t->chunk_end == t->total;
	client_send_line(c, "BDAT", "BDAT %" PRIu64 "%s", size, t->chunk_last ? " LAST" : "");
	t->step = TXN_PUMP;
	txn_pump(c);
}

static void
txn_start_data(struct smtp_client *c)
{
	struct client_txn *t = &c->txn;
	t->pos = 0;
	t->bol = true;
	t->tail[0] = t->tail[1] = '\0';
	t->step = TXN_PUMP;
	txn_pump(c);
}

/* ---- replies ---- */

/* Every RCPT has been answered: on to the data, or RSET if nobody is left. */
static void
txn_rcpts_answered(struct smtp_client *c)
{
	struct client_txn *t = &c->txn;
	if (c->info.caps.pipelining && !t->chunked) {
		t->step = TXN_DATA;  /* DATA went with the RCPTs */
		client_expect(c, txn_data_init_timeout(c));
	} else if (t->naccepted == 0) {
		txn_send_rset(c);
	} else if (t->chunked) {
		t->pos = 0;
		txn_send_chunk(c);
	} else {
		txn_send_data(c);
	}
}

void
txn_reply(struct smtp_client *c, const struct smtp_reply *r)
{
	struct client_txn *t = &c->txn;
	struct smtp_client_msg *m = t->m;
	bool ok = smtp_reply_class(r) == 2;
	bool pipelining = c->info.caps.pipelining;
	switch (t->step) {
	case TXN_MAIL:
		t->mail_ok = ok;
		if (!ok) {
			m->mail_result = *r;
			txn_set_all(t, r);
		}
		t->step = TXN_RCPT;
		t->rcpt_reply = 0;
		if (pipelining) {
			client_expect(c, client_command_timeout(c));
		} else if (!ok) {
			txn_send_rset(c);
		} else {
			txn_send_rcpt(c, t->rcpt_send++);
			client_expect(c, client_command_timeout(c));
		}
		return;
	case TXN_RCPT: {
		size_t i = t->rcpt_reply++;
		if (t->mail_ok) {
			m->rcpts[i].result = *r;
			if (ok) {
				t->accepted[i] = true;
				t->naccepted++;
			}
		}
		if (t->rcpt_reply < m->nrcpts) {
			if (!pipelining)
				txn_send_rcpt(c, t->rcpt_send++);
			client_expect(c, client_command_timeout(c));
		} else {
			txn_rcpts_answered(c);
		}
		return;
	}
	case TXN_DATA:
		if (r->code == 354 && t->naccepted == 0) {
			/* RFC 2920 §3.1: DATA accepted though no RCPT was: the
			 * client sends just the dot. */
			client_send_line(c, ".", ".");
			t->step = TXN_DOT_DISCARD;
			client_expect(c, client_data_timeout(c));
		} else if (r->code == 354) {
			txn_start_data(c);
		} else {
			txn_set_accepted(t, r);
			txn_send_rset(c);
		}
		return;
	case TXN_DOT:
		/* RFC 5321 §4.1.1.4: the end of data ends the transaction. */
		txn_set_accepted(t, r);
		txn_finish(c);
		return;
	case TXN_DOT_DISCARD:
		txn_send_rset(c);
		return;
	case TXN_BDAT:
		if (ok && !t->chunk_last) {
			txn_send_chunk(c);
		} else if (ok) {
			txn_set_accepted(t, r);
			txn_finish(c);
		} else {
			/* RFC 3030 §2: no more chunks after a failed one; RSET. */
			txn_set_accepted(t, r);
			txn_send_rset(c);
		}
		return;
	case TXN_RSET:
		if (ok) {
			txn_finish(c);
			return;
		}
		client_end(c, SMTP_CLIENT_PROTOCOL, r, "RSET refused");
		return;
	case TXN_PUMP:
		break;
	}
	client_end(c, SMTP_CLIENT_PROTOCOL, r, "reply while the data was being sent");
}
