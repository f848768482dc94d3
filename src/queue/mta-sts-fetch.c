/*
 * mta-sts-fetch — the HTTPS GET of an MTA-STS policy (RFC 8461 §3.3).
 *
 * https://mta-sts.<domain>/.well-known/mta-sts.txt: the host's AAAA and A
 * records come from Rampart's resolver; its addresses are tried in turn (IPv6
 * first), each with a share of what is left of the time; the certificate must
 * be valid for the host (PKIX through tls-client.h; §3.3: the HTTPS endpoint
 * must present a certificate valid for the mta-sts host), else that address
 * failed.
 * Once a TLS session is up, the first answer is final: no other address is
 * asked, no redirect followed. The response is read by mta-sts-http.c.
 *
 * The whole fetch lives in one struct; the result is delivered from an event,
 * so the callback may free anything, the cache included.
 */
#include "queue/mta-sts-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "dns/dns.h"
#include "lib/clock.h"
#include "net/tls-client.h"

#define FETCH_ADDRS_MAX 8

struct mta_sts_fetch {
	struct event_base *base;
	struct dns_resolver *dns;
	SSL_CTX *ctx;
	char host[262];                        /* "mta-sts." + domain */
	unsigned port;
	mta_sts_fetch_fn *fn;
	void *arg;
	int64_t deadline_ms;                   /* monotonic */

	struct dns_query *q4, *q6;
	struct dns_answer *a4, *a6;
	struct sockaddr_storage addr[FETCH_ADDRS_MAX];
	socklen_t addrlen[FETCH_ADDRS_MAX];
	size_t naddr, next;
	char peer[INET6_ADDRSTRLEN + 8];       /* the address being tried, for messages */

	struct bufferevent *bev;               /* owns the SSL and the socket */
	SSL *ssl;
	bool connected;                        /* TLS is up: the answer is final */
	struct mta_sts_http http;

	struct event *timer;                   /* the whole fetch */
	struct event *attempt_timer;           /* this address */
	struct event *done;                    /* delivers the result */
	char *body;
	size_t bodylen;
	char why[512];
};

static void fetch_try_next(struct mta_sts_fetch *f);

static void
fetch_close(struct mta_sts_fetch *f)
{
	if (f->bev != NULL) {
		bufferevent_free(f->bev);      /* frees the SSL and closes the socket */
		f->bev = NULL;
		f->ssl = NULL;
	}
	if (f->attempt_timer != NULL)
		evtimer_del(f->attempt_timer);
}

/* The fetch is over: body (taken) or why; fn runs from the done event. */
static void
fetch_finish(struct mta_sts_fetch *f, char *body, size_t len, const char *why)
{
	fetch_close(f);
	dns_query_cancel(&f->q4);
	dns_query_cancel(&f->q6);
	evtimer_del(f->timer);
	f->body = body;
	f->bodylen = len;
	if (why != NULL && f->why != why)
		snprintf(f->why, sizeof(f->why), "%s", why);
	event_active(f->done, EV_TIMEOUT, 0);
}

static void
fetch_failf(struct mta_sts_fetch *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
fetch_failf(struct mta_sts_fetch *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	fetch_finish(f, NULL, 0, f->why);
}

void
mta_sts_fetch_cancel(struct mta_sts_fetch **fp)
{
	struct mta_sts_fetch *f = *fp;

	if (f == NULL)
		return;
	*fp = NULL;
	fetch_close(f);
	dns_query_cancel(&f->q4);
	dns_query_cancel(&f->q6);
	dns_answer_unref(&f->a4);
	dns_answer_unref(&f->a6);
	if (f->timer != NULL)
		event_free(f->timer);
	if (f->attempt_timer != NULL)
		event_free(f->attempt_timer);
	if (f->done != NULL)
		event_free(f->done);
	mta_sts_http_clear(&f->http);
	free(f->body);
	free(f);
}

static void
fetch_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct mta_sts_fetch *f = arg;
	mta_sts_fetch_fn *fn = f->fn;
	void *fn_arg = f->arg;
	char *body = f->body;
	size_t len = f->bodylen;
	char why[sizeof(f->why)];

	memcpy(why, f->why, sizeof(why));
	f->body = NULL;
	mta_sts_fetch_cancel(&f);
	fn(body, len, body != NULL ? NULL : why, fn_arg);
}

static void
fetch_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mta_sts_fetch *f = arg;

	if (f->why[0] != '\0' && !f->connected)
		fetch_failf(f, "https://%s/ timed out (before that: %.300s)", f->host, f->why);
	else
		fetch_failf(f, "https://%s/ timed out", f->host);
}

/* ---------------------------------------------------------------- TLS */

/* After the handshake: whether the certificate is valid for the host. The
 * SSL was made by tls_client_ssl_new() (TLS_VERIFY_PKIX), so the handshake
 * completed whatever the certificate; the verdict is read here. The chain
 * result is checked once more, so that a context not made by
 * tls_client_ctx_new() can only fail closed. */
static bool
fetch_verified(SSL *ssl, const char **why_r)
{
	bool dane = false;
	long rc;

	if (!tls_client_verified(ssl, &dane, why_r)) {
		if (*why_r == NULL)
			*why_r = "not verified";
		return false;
	}
	if (SSL_get0_peer_certificate(ssl) == NULL) {
		*why_r = "the server sent no certificate";
		return false;
	}
	if ((rc = SSL_get_verify_result(ssl)) != X509_V_OK) {
		*why_r = X509_verify_cert_error_string(rc);
		return false;
	}
	return true;
}

/* Why a connection or handshake failed, as a sentence in f->why. */
static void
fetch_note_error(struct mta_sts_fetch *f, int err)
{
	unsigned long e = bufferevent_get_openssl_error(f->bev);
	long vr = f->ssl != NULL ? SSL_get_verify_result(f->ssl) : X509_V_OK;
	char buf[256];

	/* libevent reports SSL_ERROR_SYSCALL (a socket error, errno says which)
	 * as the bare number 5, which is no OpenSSL error code. */
	if (vr != X509_V_OK) {
		snprintf(f->why, sizeof(f->why), "https://%s/ at %s: the certificate is not "
		    "valid for the host: %s", f->host, f->peer, X509_verify_cert_error_string(vr));
	} else if (ERR_GET_LIB(e) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(f->why, sizeof(f->why), "https://%s/ at %s: TLS failed: %.150s", f->host,
		    f->peer, buf);
	} else {
		snprintf(f->why, sizeof(f->why), "https://%s/ at %s: %s", f->host, f->peer,
		    err != 0 ? strerror(err) : "connection failed");
	}
	while (bufferevent_get_openssl_error(f->bev) != 0)
		;
}

/* ---------------------------------------------------------------- HTTP */

static void
fetch_http_done(struct mta_sts_fetch *f, int rc, const char *error)
{
	if (rc < 0) {
		fetch_failf(f, "https://%s/ at %s: %s", f->host, f->peer, error);
	} else if (rc > 0) {
		char *body = f->http.body;
		f->http.body = NULL;
		fetch_finish(f, body, f->http.bodylen, NULL);
	}
}

static void
fetch_read(struct bufferevent *bev, void *arg)
{
	struct mta_sts_fetch *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char buf[4096];
	const char *error = NULL;
	int rc = 0;

	while (rc == 0 && evbuffer_get_length(in) > 0) {
		int n = evbuffer_remove(in, buf, sizeof(buf));
		if (n <= 0)
			break;
		rc = mta_sts_http_feed(&f->http, buf, (size_t)n, &error);
	}
	fetch_http_done(f, rc, error);
}

static void
fetch_send_request(struct mta_sts_fetch *f)
{
	char port[16] = "";
	struct evbuffer *out = bufferevent_get_output(f->bev);

	/* RFC 9110 §7.2: Host carries the port when it is not the default. */
	if (f->port != 443)
		snprintf(port, sizeof(port), ":%u", f->port);
	evbuffer_add_printf(out, "GET /.well-known/mta-sts.txt HTTP/1.1\r\n"
	    "Host: %s%s\r\nUser-Agent: rampart\r\nAccept: text/plain\r\n"
	    "Connection: close\r\n\r\n", f->host, port);
	bufferevent_enable(f->bev, EV_READ);
}

static void
fetch_event(struct bufferevent *bev, short what, void *arg)
{
	struct mta_sts_fetch *f = arg;
	const char *error = NULL;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		const char *why;
		if (!fetch_verified(f->ssl, &why)) {
			snprintf(f->why, sizeof(f->why), "https://%s/ at %s: the certificate is "
			    "not valid for the host: %s", f->host, f->peer, why);
			fetch_close(f);
			fetch_try_next(f);
			return;
		}
		f->connected = true;
		evtimer_del(f->attempt_timer);
		fetch_send_request(f);
		return;
	}
	if (!f->connected) {
		fetch_note_error(f, err);
		fetch_close(f);
		fetch_try_next(f);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		bool clean = (SSL_get_shutdown(f->ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
		int rc = mta_sts_http_eof(&f->http, clean, &error);
		fetch_http_done(f, rc, error);
		return;
	}
	/* OpenSSL 3 reports a peer that closes without close_notify as an error
	 * ("unexpected eof while reading"); the parser decides what that means. */
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		while (bufferevent_get_openssl_error(bev) != 0)
			;
		int rc = mta_sts_http_eof(&f->http, false, &error);
		fetch_http_done(f, rc, error);
		return;
	}
	fetch_note_error(f, err);
	fetch_finish(f, NULL, 0, f->why);
}

/* ---------------------------------------------------------------- connecting */

static void
fetch_attempt_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct mta_sts_fetch *f = arg;

	snprintf(f->why, sizeof(f->why), "https://%s/ at %s: no TLS session in time", f->host,
	    f->peer);
	fetch_close(f);
	fetch_try_next(f);
}

static void
fetch_try_next(struct mta_sts_fetch *f)
{
	while (f->next < f->naddr) {
		size_t i = f->next++;
		const struct sockaddr *sa = (const struct sockaddr *)&f->addr[i];
		char ip[INET6_ADDRSTRLEN];
		int64_t left = f->deadline_ms - clock_mono_ms();

		if (sa->sa_family == AF_INET6) {
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
			snprintf(f->peer, sizeof(f->peer), "[%s]", ip);
		} else {
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
			snprintf(f->peer, sizeof(f->peer), "%s", ip);
		}
		f->http.state = MTA_STS_HTTP_STATUS;
		/* §3.3: the certificate must be valid for the mta-sts host (PKIX,
		 * RFC 6125 DNS-ID); SNI names it too. */
		const char *error = NULL;
		f->ssl = tls_client_ssl_new(f->ctx, &(struct tls_client_policy){
		    .mode = TLS_VERIFY_PKIX, .host = f->host }, &error);
		if (f->ssl == NULL) {
			fetch_failf(f, "https://%s/: %s", f->host, error);
			return;
		}
		f->bev = bufferevent_openssl_socket_new(f->base, -1, f->ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (f->bev == NULL) {
			SSL_free(f->ssl);
			f->ssl = NULL;
			fetch_failf(f, "https://%s/: out of memory", f->host);
			return;
		}
		/* The end of the connection is judged by the parser (close_notify
		 * or not), not by libevent. */
		bufferevent_openssl_set_allow_dirty_shutdown(f->bev, 1);
		bufferevent_setcb(f->bev, fetch_read, NULL, fetch_event, f);
		if (bufferevent_socket_connect(f->bev, sa, f->addrlen[i]) < 0) {
			snprintf(f->why, sizeof(f->why), "https://%s/ at %s: %s", f->host, f->peer,
			    strerror(errno));
			fetch_close(f);
			continue;
		}
		/* Each address left gets an equal share of the time left. */
		if (left < 1)
			left = 1;
		left /= (int64_t)(f->naddr - i);
		struct timeval tv = { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 };
		evtimer_add(f->attempt_timer, &tv);
		return;
	}
	fetch_finish(f, NULL, 0, f->why);
}

static void
fetch_add_addrs(struct mta_sts_fetch *f, const struct dns_answer *a)
{
	for (size_t i = 0; a != NULL && a->status == DNS_OK && i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];
		struct sockaddr_storage *ss = &f->addr[f->naddr];

		if (f->naddr == FETCH_ADDRS_MAX)
			return;
		memset(ss, 0, sizeof(*ss));
		if (rr->type == DNS_T_AAAA) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)f->port);
			s6->sin6_addr = rr->u.aaaa;
			f->addrlen[f->naddr++] = sizeof(*s6);
		} else if (rr->type == DNS_T_A) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)f->port);
			s4->sin_addr = rr->u.a;
			f->addrlen[f->naddr++] = sizeof(*s4);
		}
	}
}

static const char *
answer_text(const struct dns_answer *a)
{
	if (a->status == DNS_OK)
		return a->n == 0 ? "no records" : "ok";
	return a->why != NULL ? a->why : dns_status_name(a->status);
}

static void
fetch_answer(struct dns_answer *a, void *arg, bool v6)
{
	struct mta_sts_fetch *f = arg;

	if (v6) {
		f->q6 = NULL;
		f->a6 = a;
	} else {
		f->q4 = NULL;
		f->a4 = a;
	}
	if (f->a4 == NULL || f->a6 == NULL)
		return;
	fetch_add_addrs(f, f->a6);
	fetch_add_addrs(f, f->a4);
	if (f->naddr == 0) {
		fetch_failf(f, "%s has no address (AAAA: %.150s; A: %.150s)", f->host,
		    answer_text(f->a6), answer_text(f->a4));
		return;
	}
	fetch_try_next(f);
}

static void
fetch_answer4(struct dns_answer *a, void *arg)
{
	fetch_answer(a, arg, false);
}

static void
fetch_answer6(struct dns_answer *a, void *arg)
{
	fetch_answer(a, arg, true);
}

struct mta_sts_fetch *
mta_sts_fetch_start(struct event_base *base, struct dns_resolver *dns, SSL_CTX *ctx,
    const char *domain, unsigned port, unsigned timeout_ms, mta_sts_fetch_fn *fn, void *arg,
    const char **error_r)
{
	struct mta_sts_fetch *f = calloc(1, sizeof(*f));
	int n;

	if (f == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	f->base = base;
	f->dns = dns;
	f->ctx = ctx;
	f->port = port != 0 ? port : 443;
	f->fn = fn;
	f->arg = arg;
	f->deadline_ms = clock_mono_ms() + timeout_ms;
	mta_sts_http_init(&f->http);
	n = snprintf(f->host, sizeof(f->host), "mta-sts.%s", domain);
	if (n < 0 || (size_t)n >= sizeof(f->host) || !dns_name_text_valid(f->host)) {
		*error_r = "the policy host name would be too long";
		mta_sts_fetch_cancel(&f);
		return NULL;
	}
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	if ((f->timer = evtimer_new(base, fetch_timeout, f)) == NULL ||
	    (f->attempt_timer = evtimer_new(base, fetch_attempt_timeout, f)) == NULL ||
	    (f->done = event_new(base, -1, 0, fetch_deliver, f)) == NULL ||
	    evtimer_add(f->timer, &tv) < 0 ||
	    (f->q6 = dns_resolve(dns, f->host, DNS_T_AAAA, fetch_answer6, f)) == NULL ||
	    (f->q4 = dns_resolve(dns, f->host, DNS_T_A, fetch_answer4, f)) == NULL) {
		*error_r = "out of memory";
		mta_sts_fetch_cancel(&f);
		return NULL;
	}
	return f;
}
