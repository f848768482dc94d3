/*
 * smtp-session — connection lifecycle, the input loop (commands, DATA, BDAT),
 * replies, and the hand-off of each message to the queue. See smtp-session.h.
 */
#include "smtp/smtp-session-private.h"
#include "auth/auth-msg.h"
#include "lib/config.h"
#include "lib/ipc-call.h"
#include "lib/log.h"
#include "net/lineio.h"
#include "queue/envelope.h"
#include "queue/queue-msg.h"
#include "sasl/sasl.h"
#include "smtp/header-from.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

static void smtp_on_input(struct lineio *io, void *ctx);
static void smtp_on_event(struct lineio *io, enum lineio_event ev, void *ctx);
static const struct lineio_callbacks smtp_io_callbacks = { smtp_on_input, smtp_on_event };

void
smtp_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (enh != NULL)
		lineio_printf(s->io, "%d %s %s\r\n", code, enh, text);
	else
		lineio_printf(s->io, "%d %s\r\n", code, text);
	if (code >= 400)
		log_info("smtp %s: %s: %d %s %s", s->sid, s->addr, code, enh != NULL ? enh : "", text);
}

void
smtp_close(struct smtp_session *s, int code, const char *enh, const char *text)
{
	if (s->state == SMTP_STATE_CLOSING)
		return;
	if (code != 0)
		smtp_reply(s, code, enh, "%s", text);
	s->state = SMTP_STATE_CLOSING;
	ipc_call_cancel(&s->call);
	lineio_set_timeout(s->io, 30);
	lineio_close_after_flush(s->io);
}

bool
smtp_count_error(struct smtp_session *s)
{
	if (++s->errors < (unsigned)s->srv->cfg->max_errors)
		return false;
	/* RFC 5321 §4.2.2 / §3.8: 421 then close the transmission channel. */
	smtp_close(s, 421, "4.7.0", "Too many errors, closing connection");
	return true;
}

static void
smtp_end(struct smtp_session *s)
{
	log_info("smtp %s: disconnect from %s", s->sid, s->addr);
	if (s->on_end != NULL)
		s->on_end(s, s->end_ctx);
	smtp_session_free(&s);
}

void
smtp_session_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	ipc_call_cancel(&s->call);
	smtp_txn_reset(s);
	smtp_auth_reset(s);
	lineio_free(&s->io);
	free(s);
}

/* ---- transactions ---- */

struct smtp_txn *
smtp_txn_begin(struct smtp_session *s)
{
	struct smtp_txn *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->env = envelope_new();
	t->buf = evbuffer_new();
	if (t->env == NULL || t->buf == NULL) {
		envelope_free(&t->env);
		if (t->buf != NULL)
			evbuffer_free(t->buf);
		free(t);
		return NULL;
	}
	t->fd = -1;
	if (s->user[0] != '\0') {
		t->from_scan = malloc(sizeof(*t->from_scan));
		if (t->from_scan == NULL) {
			envelope_free(&t->env);
			evbuffer_free(t->buf);
			free(t);
			return NULL;
		}
		header_from_scan_init(t->from_scan);
	}
	s->txn = t;
	return t;
}

void
smtp_txn_reset(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	if (t == NULL)
		return;
	s->txn = NULL;
	if (t->fd >= 0) {
		/* Opened but not committed: the queue removes the file. */
		struct evbuffer *b = evbuffer_new();
		struct queue_ref ref = { .id = t->id };
		if (b != NULL) {
			queue_ref_encode(b, &ref);
			if (ipc_client_channel(s->srv->queue) != NULL)
				ipc_send_buf(ipc_client_channel(s->srv->queue), QUEUE_ABORT, 0, b, -1);
			evbuffer_free(b);
		}
		close(t->fd);
	}
	smtp_inbound_free(t);
	s->checking = false;
	envelope_free(&t->env);
	evbuffer_free(t->buf);
	free(t->from_scan);
	free(t->from);
	free(t);
}

void
smtp_wait(struct smtp_session *s, struct ipc_call *call)
{
	s->call = call;
	lineio_pause(s->io, true);
}

void
smtp_resume(struct smtp_session *s)
{
	s->call = NULL;
	if (s->state == SMTP_STATE_CLOSING)
		return;
	lineio_pause(s->io, false);
}

/* ---- handing the message to the queue ---- */

static void
smtp_on_open_reply(struct ipc_frame *f, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = s->txn;
	struct queue_result r = { QUEUE_TEMPFAIL, "" };
	const char *error = "no answer";
	void (*next)(struct smtp_session *) = s->after_open;

	smtp_resume(s);
	if (f != NULL && queue_result_decode(f->data, f->len, &r, &error) == 0 &&
	    r.status == QUEUE_OK && f->fd >= 0 && t != NULL) {
		t->fd = f->fd;
		f->fd = -1;
		snprintf(t->id, sizeof(t->id), "%s", r.id);
		smtp_received_header(s, t->buf);
		smtp_inbound_begin(s);
		next(s);
		return;
	}
	struct smtp_owed_reply fail = { 451, "4.3.0", "Temporary failure, try again later" };
	if (r.status == QUEUE_NO_SPACE)
		fail = (struct smtp_owed_reply){ 452, "4.3.1", "Insufficient system storage" };
	else
		log_error("smtp %s: the queue did not open a spool file: %s", s->sid,
		    f == NULL ? "queue unavailable" : error);
	if (next == smtp_data_begin) {
		smtp_reply(s, fail.code, fail.enh, "%s", fail.text);
		return;
	}
	/* BDAT: the chunk is still to be read and thrown away, then refused. */
	smtp_txn_reset(s);
	s->bdat_refusal = fail;
	s->state = SMTP_STATE_BDAT;
	lineio_set_timeout(s->io, (int)s->srv->cfg->smtp_data_timeout);
}

static void
smtp_txn_open(struct smtp_session *s, void (*next)(struct smtp_session *s))
{
	struct evbuffer *b = evbuffer_new();
	if (b == NULL) {
		smtp_reply(s, 451, "4.3.0", "Temporary failure, try again later");
		return;
	}
	queue_open_req_encode(b, s->txn->env);
	s->after_open = next;
	struct ipc_call *c = ipc_call_start(s->srv->queue, QUEUE_OPEN_REQ, b, smtp_on_open_reply, s);
	evbuffer_free(b);
	if (c == NULL) {
		smtp_on_open_reply(NULL, s);
		return;
	}
	smtp_wait(s, c);
}

static void
smtp_on_commit_reply(struct ipc_frame *f, void *arg)
{
	struct smtp_session *s = arg;
	struct queue_result r = { QUEUE_TEMPFAIL, "" };
	const char *error = "queue unavailable";
	smtp_resume(s);
	if (f != NULL && queue_result_decode(f->data, f->len, &r, &error) == 0 &&
	    r.status == QUEUE_OK) {
		/* RFC 5321 §4.1.1.4: 250 only now that the message is durable. */
		smtp_reply(s, 250, "2.0.0", "Ok: queued as %s", s->txn->id);
		log_info("smtp %s: %s accepted from %s, %llu octets", s->sid, s->txn->id, s->addr,
		    (unsigned long long)s->txn->written);
	} else if (r.status == QUEUE_NO_SPACE) {
		smtp_reply(s, 452, "4.3.1", "Insufficient system storage");
	} else {
		smtp_reply(s, 451, "4.3.0", "Temporary failure, try again later");
	}
	/* Committed or refused, the queue is done with this file either way. */
	if (s->txn->fd >= 0)
		close(s->txn->fd);
	s->txn->fd = -1;
	smtp_txn_reset(s);
	if (s->stopping)
		smtp_close(s, 421, "4.3.2", "Service shutting down, closing connection");
}

static bool
smtp_flush_message(struct smtp_session *s, bool all)
{
	struct smtp_txn *t = s->txn;
	if (!all && smtp_inbound_holding(s))
		return true;
	while (t->write_errno == 0 && evbuffer_get_length(t->buf) > 0 &&
	    (all || evbuffer_get_length(t->buf) >= SMTP_WRITE_BLOCK)) {
		int n = evbuffer_write(t->buf, t->fd);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			t->write_errno = errno;
			log_error("smtp %s: writing %s: %s", s->sid, t->id, strerror(errno));
		} else {
			t->written += (uint64_t)n;
		}
	}
	if (t->write_errno != 0)
		evbuffer_drain(t->buf, evbuffer_get_length(t->buf));
	return t->write_errno == 0;
}

static void smtp_message_commit(struct smtp_session *s);

/* The message belongs to its sender: check its authentication (mx), then commit. */
static void
smtp_message_check(struct smtp_session *s)
{
	smtp_inbound_check(s, smtp_message_commit);
}

/* The end of DATA or of the last BDAT chunk: refuse, or check and commit. */
static void
smtp_message_end(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	enum smtp_data_error derr = smtp_data_error(&t->dec);
	s->state = SMTP_STATE_COMMAND;
	lineio_set_timeout(s->io, (int)s->srv->cfg->smtp_command_timeout);
	if (derr != SMTP_DATA_ERR_NONE) {
		int code;
		const char *enh, *text;
		smtp_data_error_reply(derr, &code, &enh, &text);
		smtp_reply(s, code, enh, "%s", text);
		smtp_txn_reset(s);
		return;
	}
	smtp_inbound_release(s);
	if (!smtp_flush_message(s, true)) {
		if (t->write_errno == ENOSPC || t->write_errno == EDQUOT)
			smtp_reply(s, 452, "4.3.1", "Insufficient system storage");
		else
			smtp_reply(s, 451, "4.3.0", "Local error in processing");
		smtp_txn_reset(s);
		return;
	}
	smtp_sender_check_from(s, smtp_message_check);
}

/* The message is whole and allowed: make it durable, then 250. */
static void
smtp_message_commit(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct evbuffer *b = evbuffer_new();
	struct queue_ref ref = { .id = t->id, .size = t->written };
	smtp_inbound_added(s, &ref.added, &ref.folder);
	ref.added_len = strlen(ref.added);
	ref.sign_domain = smtp_sender_sign_domain(s);
	struct ipc_call *c = NULL;
	if (b != NULL) {
		queue_ref_encode(b, &ref);
		c = ipc_call_start(s->srv->queue, QUEUE_COMMIT_REQ, b, smtp_on_commit_reply, s);
		evbuffer_free(b);
	}
	if (c == NULL) {
		smtp_on_commit_reply(NULL, s);
		return;
	}
	smtp_wait(s, c);
}

static void
smtp_data_go(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	smtp_data_init(&t->dec, SMTP_DATA_DOT, (uint64_t)s->srv->cfg->message_size_limit,
	    (size_t)s->srv->cfg->max_line_length);
	s->state = SMTP_STATE_DATA;
	lineio_set_timeout(s->io, (int)s->srv->cfg->smtp_data_timeout);
	smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

void
smtp_data_begin(struct smtp_session *s)
{
	if (s->txn->fd >= 0) {
		smtp_data_go(s);
		return;
	}
	smtp_txn_open(s, smtp_data_begin);
}

static void
smtp_bdat_go(struct smtp_session *s)
{
	s->state = SMTP_STATE_BDAT;
	lineio_set_timeout(s->io, (int)s->srv->cfg->smtp_data_timeout);
}

void
smtp_bdat_begin(struct smtp_session *s, uint64_t size, bool last,
    const struct smtp_owed_reply *refusal)
{
	s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_refusal = refusal != NULL ? *refusal : (struct smtp_owed_reply){ 0, NULL, NULL };
	if (s->bdat_refusal.code != 0 || s->txn->fd >= 0) {
		smtp_bdat_go(s);
		return;
	}
	if (!s->txn->bdat) {
		s->txn->bdat = true;
		smtp_data_init(&s->txn->dec, SMTP_DATA_RAW,
		    (uint64_t)s->srv->cfg->message_size_limit, (size_t)s->srv->cfg->max_line_length);
	}
	smtp_txn_open(s, smtp_bdat_go);
}

/* Feeds buffered input to the DATA decoder; true when the message ended. */
static bool
smtp_data_step(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct evbuffer *in = lineio_input(s->io);
	while (evbuffer_get_length(in) > 0 && !smtp_data_done(&t->dec)) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t before = evbuffer_get_length(t->buf);
		size_t used = smtp_data_feed(&t->dec, v.iov_base, v.iov_len, t->buf);
		evbuffer_drain(in, used);
		if (smtp_data_error(&t->dec) != SMTP_DATA_ERR_NONE) {
			evbuffer_drain(t->buf, evbuffer_get_length(t->buf));
		} else {
			smtp_sender_scan(s, before);
			smtp_inbound_scan(s, before);
			smtp_flush_message(s, false);
		}
	}
	if (!smtp_data_done(&t->dec))
		return false;
	smtp_message_end(s);
	return true;
}

/* Reads the current BDAT chunk; true when it is complete. */
static bool
smtp_bdat_step(struct smtp_session *s)
{
	struct evbuffer *in = lineio_input(s->io);
	struct smtp_txn *t = s->bdat_refusal.code == 0 ? s->txn : NULL;
	while (s->bdat_left > 0 && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t take = v.iov_len < s->bdat_left ? v.iov_len : (size_t)s->bdat_left;
		if (t != NULL) {
			size_t before = evbuffer_get_length(t->buf);
			smtp_data_feed(&t->dec, v.iov_base, take, t->buf);
			if (smtp_data_error(&t->dec) != SMTP_DATA_ERR_NONE) {
				evbuffer_drain(t->buf, evbuffer_get_length(t->buf));
			} else {
				smtp_sender_scan(s, before);
				smtp_inbound_scan(s, before);
				smtp_flush_message(s, false);
			}
		}
		evbuffer_drain(in, take);
		s->bdat_left -= take;
	}
	if (s->bdat_left > 0)
		return false;
	s->state = SMTP_STATE_COMMAND;
	lineio_set_timeout(s->io, (int)s->srv->cfg->smtp_command_timeout);
	if (t == NULL) {
		smtp_reply(s, s->bdat_refusal.code, s->bdat_refusal.enh, "%s", s->bdat_refusal.text);
		smtp_count_error(s);
		return true;
	}
	enum smtp_data_error derr = smtp_data_error(&t->dec);
	if (derr != SMTP_DATA_ERR_NONE || !s->bdat_last) {
		if (derr == SMTP_DATA_ERR_NONE) {
			smtp_reply(s, 250, "2.0.0", "Ok");
			return true;
		}
		/* RFC 3030 §4: the transaction failed; chunks already pipelined
		 * behind this one are read and refused (no transaction any more). */
		smtp_message_end(s);
		return true;
	}
	size_t before = evbuffer_get_length(t->buf);
	smtp_data_finish_raw(&t->dec, t->buf);
	smtp_sender_scan(s, before);
	smtp_inbound_scan(s, before);
	smtp_message_end(s);
	return true;
}

/* ---- input and connection events ---- */

/* Replies waiting in our output past this make us stop reading (pipelining abuse). */
#define SMTP_MAX_OUTPUT (64 * 1024)

static void
smtp_on_input(struct lineio *io, void *ctx)
{
	struct smtp_session *s = ctx;
	size_t len;
	while (s->call == NULL && !s->holding && !s->checking && s->state != SMTP_STATE_CLOSING) {
		if (lineio_output_pending(io) > SMTP_MAX_OUTPUT) {
			lineio_wait_output(io);
			return;
		}
		switch (s->state) {
		case SMTP_STATE_DATA:
			if (!smtp_data_step(s))
				return;
			continue;
		case SMTP_STATE_BDAT:
			if (!smtp_bdat_step(s))
				return;
			continue;
		case SMTP_STATE_AUTH: {
			/* RFC 4954 §4: responses of up to 12288 octets must be accepted. */
			int rc = lineio_read_line(io, s->sasl_line, SASL_RESPONSE_MAX, &len);
			if (rc == 0)
				return;
			smtp_auth_response(s, s->sasl_line, len, rc < 0);
			continue;
		}
		case SMTP_STATE_CLOSING:
			return;
		case SMTP_STATE_COMMAND:
			break;
		}
		int rc = lineio_read_line(io, s->line, SMTP_LINE_MAX, &len);
		if (rc == 0)
			return;
		if (rc < 0) {
			/* RFC 5321 §4.5.3.1.4 and §4.2.2: 500 for a line too long. */
			smtp_reply(s, 500, "5.5.2", "Line too long");
			smtp_count_error(s);
			continue;
		}
		smtp_dispatch(s, s->line, len);
	}
}

static void
smtp_on_event(struct lineio *io, enum lineio_event ev, void *ctx)
{
	struct smtp_session *s = ctx;
	switch (ev) {
	case LINEIO_TIMEOUT:
		if (s->state != SMTP_STATE_CLOSING) {
			log_info("smtp %s: timeout from %s in state %d", s->sid, s->addr, s->state);
			/* RFC 5321 §4.5.3.2: the server may close after its timeout, with 421. */
			smtp_close(s, 421, "4.4.2", "Timeout exceeded, closing connection");
			return;
		}
		break;
	case LINEIO_EOF:
		if (s->txn != NULL && s->state != SMTP_STATE_COMMAND)
			log_info("smtp %s: %s disconnected during message data", s->sid, s->addr);
		break;
	case LINEIO_ERROR:
	case LINEIO_FLUSHED:
		break;
	}
	smtp_end(s);
}

/* ---- lifecycle ---- */

bool
smtp_session_tls(struct smtp_session *s)
{
	return lineio_is_tls(s->io);
}

void
smtp_session_reset_after_tls(struct smtp_session *s)
{
	smtp_txn_reset(s);
	smtp_auth_reset(s);
	s->helo[0] = '\0';
	s->esmtp = false;
}

static void
smtp_format_peer(struct smtp_session *s, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, s->addr, sizeof(s->addr));
		s->port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, s->addr, sizeof(s->addr));
		s->port = ntohs(in6->sin6_port);
	} else {
		snprintf(s->addr, sizeof(s->addr), "unknown");
	}
}

struct smtp_session *
smtp_session_new(const struct smtp_server *srv, int fd, const struct sockaddr *peer,
    socklen_t peerlen, smtp_session_end_fn *on_end, void *ctx)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->srv = srv;
	s->on_end = on_end;
	s->end_ctx = ctx;
	uint64_t rnd;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
	snprintf(s->sid, sizeof(s->sid), "%016llx", (unsigned long long)rnd);
	smtp_format_peer(s, peer);
	SSL_CTX *implicit = srv->listener->role == LISTENER_ROLE_SUBMISSIONS ? srv->tls : NULL;
	s->io = lineio_new(srv->base, fd, implicit, &smtp_io_callbacks, s);
	if (s->io == NULL) {
		free(s);
		return NULL;
	}
	lineio_set_timeout(s->io, (int)srv->cfg->smtp_command_timeout);
	log_info("smtp %s: connect from %s:%u on %s", s->sid, s->addr, s->port,
	    srv->listener->name);
	/* RFC 5321 §4.2: greeting; ESMTP in it signals extensions (§3.1). */
	smtp_reply(s, 220, NULL, "%s ESMTP Rampart", srv->cfg->hostname);
	return s;
}

void
smtp_session_shutdown(struct smtp_session *s)
{
	s->stopping = true;
	if (s->txn == NULL && s->call == NULL && s->state == SMTP_STATE_COMMAND)
		smtp_close(s, 421, "4.3.2", "Service shutting down, closing connection");
}
