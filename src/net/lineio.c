/* lineio — see lineio.h. */
#include "net/lineio.h"
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <sodium.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

struct lineio {
	struct event_base *base;
	struct bufferevent *bev;
	const struct lineio_callbacks *cb;
	void *ctx;
	SSL *ssl;
	bool paused;
	bool closing;
	bool output_wait;  /* reading stopped until output drains */
	struct event *drain_timer;  /* STARTTLS: waits for the socket layer to drain */
	/* bufferevent timeouts do not cover the TLS handshake: a peer that never
	 * finishes it is timed out by this timer instead. */
	struct event *handshake_timer;
	bool handshaking;           /* TLS started, handshake not finished */
	bool discarding;   /* inside an overlong line, dropping until LF */
	int timeout;
	lineio_tls_done_fn *tls_done;  /* client STARTTLS: handshake finished */
};

static void lineio_on_read(struct bufferevent *bev, void *arg);
static void lineio_on_write(struct bufferevent *bev, void *arg);
static void lineio_on_event(struct bufferevent *bev, short what, void *arg);

static void
lineio_handshake_failed(struct lineio *io)
{
	/* Nothing can be said to a peer without TLS: the connection just ends. */
	log_info("lineio: TLS handshake not completed within %d s", io->timeout);
	io->cb->event(io, LINEIO_ERROR, io->ctx);
}

static void
lineio_on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
	lineio_handshake_failed(arg);
}

static void
lineio_start_handshake_timer(struct lineio *io)
{
	io->handshaking = true;
	if (io->handshake_timer == NULL)
		io->handshake_timer = evtimer_new(io->base, lineio_on_handshake_timeout, io);
	struct timeval tv = { io->timeout, 0 };
	evtimer_add(io->handshake_timer, &tv);
}

static void
lineio_setup_bev(struct lineio *io)
{
	bufferevent_setcb(io->bev, lineio_on_read, lineio_on_write, lineio_on_event, io);
	/* Read at most this much ahead of the protocol: back-pressure for the rest. */
	bufferevent_setwatermark(io->bev, EV_READ, 0, LINEIO_MAX_BUFFERED);
	lineio_set_timeout(io, io->timeout);
	if (io->paused)
		bufferevent_disable(io->bev, EV_READ);
	else
		bufferevent_enable(io->bev, EV_READ);
	bufferevent_enable(io->bev, EV_WRITE);
}

static SSL *
lineio_new_ssl(SSL_CTX *tls_ctx)
{
	SSL *ssl = SSL_new(tls_ctx);
	return ssl;
}

struct lineio *
lineio_new(struct event_base *base, int fd, SSL_CTX *tls_ctx,
    const struct lineio_callbacks *cb, void *ctx)
{
	struct lineio *io = calloc(1, sizeof(*io));
	if (io == NULL) {
		close(fd);
		return NULL;
	}
	io->base = base;
	io->cb = cb;
	io->ctx = ctx;
	io->timeout = 300;
	evutil_make_socket_nonblocking(fd);
	if (tls_ctx != NULL) {
		io->ssl = lineio_new_ssl(tls_ctx);
		if (io->ssl != NULL)
			io->bev = bufferevent_openssl_socket_new(base, fd, io->ssl,
			    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	} else {
		io->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (io->bev == NULL) {
		if (io->ssl != NULL)
			SSL_free(io->ssl);
		close(fd);
		free(io);
		return NULL;
	}
	lineio_setup_bev(io);
	if (io->ssl != NULL) {
		bufferevent_openssl_set_allow_dirty_shutdown(io->bev, 1);
		lineio_start_handshake_timer(io);
	}
	return io;
}

void
lineio_free(struct lineio **iop)
{
	struct lineio *io = *iop;
	if (io == NULL)
		return;
	*iop = NULL;
	if (io->drain_timer != NULL)
		event_free(io->drain_timer);
	if (io->handshake_timer != NULL)
		event_free(io->handshake_timer);
	/* The SSL object (if any) is freed with its bufferevent (BEV_OPT_CLOSE_ON_FREE). */
	bufferevent_free(io->bev);
	free(io);
}

static void
lineio_on_read(struct bufferevent *bev, void *arg)
{
	struct lineio *io = arg;
	if (!io->paused && !io->closing && !io->output_wait)
		io->cb->input(io, io->ctx);
}

/* After STARTTLS the TLS filter writes into the socket bufferevent below it;
 * "flushed" means that one is empty too, or the last reply would be lost. */
static bool
lineio_fully_flushed(struct lineio *io)
{
	if (evbuffer_get_length(bufferevent_get_output(io->bev)) != 0)
		return false;
	struct bufferevent *under = bufferevent_get_underlying(io->bev);
	return under == NULL || evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

static void
lineio_on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
	struct lineio *io = arg;
	if (lineio_fully_flushed(io)) {
		io->cb->event(io, LINEIO_FLUSHED, io->ctx);
		return;
	}
	struct timeval tv = { 0, 10000 };
	evtimer_add(io->drain_timer, &tv);
}

static void
lineio_on_write(struct bufferevent *bev, void *arg)
{
	struct lineio *io = arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	if (io->closing) {
		if (lineio_fully_flushed(io)) {
			io->cb->event(io, LINEIO_FLUSHED, io->ctx);
			return;
		}
		if (io->drain_timer == NULL)
			io->drain_timer = evtimer_new(io->base, lineio_on_drain_timer, io);
		lineio_on_drain_timer(-1, 0, io);
	} else if (io->output_wait) {
		io->output_wait = false;
		if (!io->paused) {
			bufferevent_enable(io->bev, EV_READ);
			io->cb->input(io, io->ctx);
		}
	}
}

void
lineio_wait_output(struct lineio *io)
{
	io->output_wait = true;
	bufferevent_disable(io->bev, EV_READ);
}

static void
lineio_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct lineio *io = arg;
	if (what & BEV_EVENT_CONNECTED) {
		/* TLS handshake complete. */
		io->handshaking = false;
		if (io->handshake_timer != NULL)
			evtimer_del(io->handshake_timer);
		lineio_tls_done_fn *done = io->tls_done;
		io->tls_done = NULL;
		if (done != NULL)
			done(io, io->ctx);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (io->handshaking) {
			lineio_handshake_failed(io);
			return;
		}
		io->cb->event(io, LINEIO_TIMEOUT, io->ctx);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		io->cb->event(io, io->closing ? LINEIO_FLUSHED : LINEIO_EOF, io->ctx);
		return;
	}
	io->cb->event(io, io->closing ? LINEIO_FLUSHED : LINEIO_ERROR, io->ctx);
}

/* Command lines can carry credentials (an AUTH line is a base64 password):
 * consumed bytes are zeroed before the buffer lets them go, since a partly
 * drained chunk keeps them until it is freed. */
static void
wipe_drain(struct evbuffer *in, size_t len)
{
	struct evbuffer_iovec v[4];
	size_t left = len;
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET);
	while (left > 0) {
		int n = evbuffer_peek(in, (ev_ssize_t)left, &pos, v, 4);
		if (n <= 0)
			break;
		size_t done = 0;
		for (int i = 0; i < n && i < 4 && left > 0; i++) {
			size_t k = v[i].iov_len < left ? v[i].iov_len : left;
			sodium_memzero(v[i].iov_base, k);
			left -= k;
			done += k;
		}
		if (n <= 4 || evbuffer_ptr_set(in, &pos, done, EVBUFFER_PTR_ADD) < 0)
			break;
	}
	evbuffer_drain(in, len);
}

int
lineio_read_line(struct lineio *io, char *buf, size_t max, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(io->bev);
	for (;;) {
		struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
		size_t avail = evbuffer_get_length(in);
		if (io->discarding) {
			if (lf.pos < 0) {
				wipe_drain(in, avail);
				return 0;
			}
			wipe_drain(in, (size_t)lf.pos + 1);
			io->discarding = false;
			continue;
		}
		if (lf.pos < 0) {
			/* No LF yet: fine unless the line already exceeds its limit (+ CR). */
			if (avail > max + 1) {
				wipe_drain(in, avail);
				io->discarding = true;
				return -1;
			}
			return 0;
		}
		size_t linelen = (size_t)lf.pos;
		size_t content = linelen;
		if (content > 0) {
			char last;
			struct evbuffer_ptr p;
			evbuffer_ptr_set(in, &p, content - 1, EVBUFFER_PTR_SET);
			evbuffer_copyout_from(in, &p, &last, 1);
			if (last == '\r')
				content--;
		}
		if (content > max) {
			wipe_drain(in, linelen + 1);
			return -1;
		}
		evbuffer_copyout(in, buf, content);
		buf[content] = '\0';
		wipe_drain(in, linelen + 1);
		*len_r = content;
		return 1;
	}
}

struct evbuffer *
lineio_input(struct lineio *io)
{
	return bufferevent_get_input(io->bev);
}

void
lineio_pause(struct lineio *io, bool paused)
{
	if (io->paused == paused)
		return;
	io->paused = paused;
	if (paused) {
		bufferevent_disable(io->bev, EV_READ);
	} else if (!io->closing && !io->output_wait) {
		bufferevent_enable(io->bev, EV_READ);
		/* Input may already be buffered: let the owner see it without waiting
		 * for more bytes to arrive. */
		if (evbuffer_get_length(bufferevent_get_input(io->bev)) > 0)
			bufferevent_trigger(io->bev, EV_READ, BEV_OPT_DEFER_CALLBACKS);
	}
}

void
lineio_write(struct lineio *io, const void *data, size_t len)
{
	bufferevent_write(io->bev, data, len);
}

static void
lineio_secret_cleanup(const void *data, size_t len, void *extra)
{
	sodium_memzero(extra, len);
	free(extra);
}

void
lineio_write_secret(struct lineio *io, const void *data, size_t len)
{
	if (len == 0)
		return;
	char *copy = malloc(len);
	if (copy == NULL)
		return;  /* the reply will not come: the owner's timeout ends it */
	memcpy(copy, data, len);
	if (evbuffer_add_reference(bufferevent_get_output(io->bev), copy, len,
	    lineio_secret_cleanup, copy) != 0) {
		sodium_memzero(copy, len);
		free(copy);
	}
}

void
lineio_printf(struct lineio *io, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(io->bev), fmt, ap);
	va_end(ap);
}

size_t
lineio_output_pending(struct lineio *io)
{
	return evbuffer_get_length(bufferevent_get_output(io->bev));
}

void
lineio_set_timeout(struct lineio *io, int seconds)
{
	io->timeout = seconds;
	if (!io->closing && io->handshake_timer != NULL &&
	    evtimer_pending(io->handshake_timer, NULL)) {
		struct timeval hs = { seconds, 0 };
		evtimer_add(io->handshake_timer, &hs);
	}
	struct timeval rt = { seconds, 0 };
	/* Output must drain within the same budget, or the peer is not reading. */
	struct timeval wt = { seconds, 0 };
	bufferevent_set_timeouts(io->bev, &rt, &wt);
}

void
lineio_close_after_flush(struct lineio *io)
{
	io->closing = true;
	bufferevent_disable(io->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(io->bev)) == 0)
		bufferevent_trigger(io->bev, EV_WRITE, BEV_OPT_DEFER_CALLBACKS);
}

/* Puts a TLS filter over the connection (STARTTLS, either side); ssl is
 * consumed, freed on failure. */
static int
lineio_wrap_tls(struct lineio *io, SSL *ssl, enum bufferevent_ssl_state state)
{
	struct bufferevent *tls = bufferevent_openssl_filter_new(io->base, io->bev, ssl, state,
	    BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	io->bev = tls;
	io->ssl = ssl;
	lineio_setup_bev(io);
	lineio_start_handshake_timer(io);
	return 0;
}

int
lineio_starttls(struct lineio *io, SSL_CTX *tls_ctx, const char *reply)
{
	/* RFC 3207 §4.2: anything the client sent after STARTTLS, before the
	 * handshake, must be discarded (command injection). */
	struct evbuffer *in = bufferevent_get_input(io->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	SSL *ssl = lineio_new_ssl(tls_ctx);
	if (ssl == NULL)
		return -1;
	bufferevent_write(io->bev, reply, strlen(reply));
	/* The clear-text reply is already in the socket bufferevent's output; the
	 * filter writes its TLS records after it, in order. */
	return lineio_wrap_tls(io, ssl, BUFFEREVENT_SSL_ACCEPTING);
}

int
lineio_starttls_client(struct lineio *io, SSL *ssl, lineio_tls_done_fn *done)
{
	/* RFC 3207 §4.2: what the server sent after its 220, before the handshake,
	 * is not to be trusted (injection); it is dropped unread. */
	struct evbuffer *in = bufferevent_get_input(io->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	io->tls_done = done;
	io->discarding = false;
	return lineio_wrap_tls(io, ssl, BUFFEREVENT_SSL_CONNECTING);
}

bool
lineio_is_tls(struct lineio *io)
{
	return io->ssl != NULL;
}

bool
lineio_tls_info(struct lineio *io, const char **version_r, const char **cipher_r, int *bits_r)
{
	if (io->ssl == NULL)
		return false;
	*version_r = SSL_get_version(io->ssl);
	*cipher_r = SSL_get_cipher_name(io->ssl);
	*bits_r = SSL_get_cipher_bits(io->ssl, NULL);
	return true;
}
