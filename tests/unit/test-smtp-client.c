/*
 * Unit tests for smtp-client: the outgoing SMTP session against a scripted
 * fake server.
 *
 * The fake server runs in a thread with blocking sockets (and blocking
 * OpenSSL after STARTTLS). Its script alternates "receive exactly these
 * bytes" and "send these bytes"; every byte the client sends is recorded and
 * compared, whole, with what the script expects, so an extra, missing or
 * reordered byte fails the test. A receive step also fails when the client
 * has sent *more* than the step expects (it did not wait for a reply), and
 * when it sends too little the step times out — which is how pipelining is
 * checked: the server answers nothing until it has MAIL, every RCPT and
 * DATA. The client runs on a libevent loop in the test's main thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/log.h"
#include "net/tls-client.h"
#include "queue/envelope.h"
#include "smtp/smtp-client.h"

/* ---------------------------------------------------------------- PKI */

/* A CA and a server certificate for mx.remote.test it signed, made at start. */
static struct {
	EVP_PKEY *ca_key, *leaf_key;
	X509 *ca, *leaf;
	char ca_path[64];
	SSL_CTX *server_ctx, *client_ctx;
	unsigned char spki_sha256[32];
} pki;

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(cert, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, long serial)
{
	X509 *x = X509_new();

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x));
	if (issuer == NULL) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, x, NID_subject_key_identifier, "hash");
	} else {
		char san[128];
		snprintf(san, sizeof(san), "DNS:%s", cn);
		add_ext(x, issuer, NID_subject_alt_name, san);
		add_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
	}
	assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

static int pki_setup(void **state)
{
	unsigned char *der = NULL;
	int len;
	char *error = NULL;

	signal(SIGPIPE, SIG_IGN);
	if (getenv("TEST_DEBUG") != NULL)
		log_init("test-smtp-client", true, LOG_LEVEL_DEBUG);
	else
		log_init("test-smtp-client", true, LOG_LEVEL_ERROR);
	pki.ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	pki.leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(pki.ca_key);
	assert_non_null(pki.leaf_key);
	pki.ca = make_cert(pki.ca_key, "Test CA", NULL, NULL, 1);
	pki.leaf = make_cert(pki.leaf_key, "mx.remote.test", pki.ca, pki.ca_key, 2);

	snprintf(pki.ca_path, sizeof(pki.ca_path), "/tmp/test-smtp-client-ca.XXXXXX");
	int fd = mkstemp(pki.ca_path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, pki.ca), 1);
	fclose(f);

	pki.server_ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(pki.server_ctx);
	assert_int_equal(SSL_CTX_use_certificate(pki.server_ctx, pki.leaf), 1);
	assert_int_equal(SSL_CTX_add1_chain_cert(pki.server_ctx, pki.ca), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(pki.server_ctx, pki.leaf_key), 1);
	/* No TLS 1.3 tickets: SSL_accept then ends with the client's Finished, even
	 * when the client hangs up right after its handshake (unverified). */
	SSL_CTX_set_num_tickets(pki.server_ctx, 0);

	pki.client_ctx = tls_client_ctx_new(pki.ca_path, &error);
	assert_null(error);
	assert_non_null(pki.client_ctx);

	len = i2d_PUBKEY(X509_get0_pubkey(pki.leaf), &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, pki.spki_sha256, NULL, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	return 0;
}

static int pki_teardown(void **state)
{
	unlink(pki.ca_path);
	SSL_CTX_free(pki.server_ctx);
	SSL_CTX_free(pki.client_ctx);
	X509_free(pki.ca);
	X509_free(pki.leaf);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.leaf_key);
	return 0;
}

/* ---------------------------------------------------------------- fake server */

/* S_TLS_ANY: a handshake the client may abandon (it hangs up as soon as it
 * has found the certificate unverified, before its Finished is flushed). */
enum step_kind { S_SEND, S_RECV, S_TLS, S_TLS_ANY, S_CLOSE };

struct step {
	enum step_kind kind;
	const char *text;
	size_t len;
};

#define SEND(s) { S_SEND, (s), sizeof(s) - 1 }
#define RECV(s) { S_RECV, (s), sizeof(s) - 1 }
#define TLS() { S_TLS, NULL, 0 }
#define TLS_ANY() { S_TLS_ANY, NULL, 0 }
#define CLOSE() { S_CLOSE, NULL, 0 }

struct server {
	int lfd, fd;
	uint16_t port;
	const struct step *steps;
	size_t nsteps;
	SSL *ssl;
	char *got;
	size_t got_len, got_cap;
	char error[256];
	char sni[256];
	pthread_t thread;
};

#define SERVER_WAIT_MS 5000

static bool server_io_wait(struct server *s)
{
	struct pollfd pfd = { s->fd, POLLIN, 0 };

	if (s->ssl != NULL && SSL_pending(s->ssl) > 0)
		return true;
	return poll(&pfd, 1, SERVER_WAIT_MS) > 0;
}

/* Reads what is there into the transcript; false at EOF, error or timeout. */
static bool server_read(struct server *s)
{
	char buf[65536];
	ssize_t n;

	if (!server_io_wait(s))
		return false;
	if (s->ssl != NULL)
		n = SSL_read(s->ssl, buf, sizeof(buf));
	else
		n = read(s->fd, buf, sizeof(buf));
	if (n <= 0)
		return false;
	if (s->got_len + (size_t)n > s->got_cap) {
		s->got_cap = (s->got_len + (size_t)n) * 2;
		s->got = realloc(s->got, s->got_cap);
		if (s->got == NULL)
			abort();
	}
	memcpy(s->got + s->got_len, buf, (size_t)n);
	s->got_len += (size_t)n;
	return true;
}

static bool server_write(struct server *s, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = s->ssl != NULL ? SSL_write(s->ssl, p, (int)len) : write(s->fd, p, len);
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd = { s->lfd, POLLIN, 0 };
	size_t need = 0;
	bool accepted;

	if (poll(&pfd, 1, SERVER_WAIT_MS) <= 0) {
		snprintf(s->error, sizeof(s->error), "no connection");
		return NULL;
	}
	s->fd = accept(s->lfd, NULL, NULL);
	if (s->fd < 0) {
		snprintf(s->error, sizeof(s->error), "accept: %s", strerror(errno));
		return NULL;
	}
	for (size_t i = 0; i < s->nsteps && s->error[0] == '\0'; i++) {
		const struct step *st = &s->steps[i];
		switch (st->kind) {
		case S_SEND:
			if (!server_write(s, st->text, st->len))
				snprintf(s->error, sizeof(s->error), "step %zu: write failed", i);
			break;
		case S_RECV:
			need += st->len;
			while (s->got_len < need && server_read(s))
				;
			if (s->got_len < need)
				snprintf(s->error, sizeof(s->error),
				    "step %zu: got %zu of %zu octets", i, s->got_len, need);
			else if (s->got_len > need &&
			    (i + 1 == s->nsteps || s->steps[i + 1].kind != S_RECV))
				snprintf(s->error, sizeof(s->error),
				    "step %zu: the client sent %zu octets ahead", i, s->got_len - need);
			break;
		case S_TLS:
		case S_TLS_ANY:
			s->ssl = SSL_new(pki.server_ctx);
			SSL_set_fd(s->ssl, s->fd);
			accepted = SSL_accept(s->ssl) == 1;
			if (!accepted && st->kind == S_TLS_ANY) {
				goto out;
			} else if (!accepted) {
				snprintf(s->error, sizeof(s->error), "step %zu: TLS accept failed", i);
			} else {
				const char *sni = SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name);
				snprintf(s->sni, sizeof(s->sni), "%s", sni != NULL ? sni : "");
			}
			break;
		case S_CLOSE:
			goto out;
		}
	}
	/* Whatever else the client sends until it closes is recorded too. */
	while (server_read(s))
		;
out:
	if (s->ssl != NULL)
		SSL_free(s->ssl);
	close(s->fd);
	return NULL;
}

static void server_start(struct server *s, const struct step *steps, size_t nsteps)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->steps = steps;
	s->nsteps = nsteps;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->lfd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->lfd, 1), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &slen), 0);
	s->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

/* The server name (SNI) the last TLS client asked for. */
static char last_sni[256];

/* Joins the server and checks the whole transcript against the script. */
static void server_finish(struct server *s)
{
	size_t want_len = 0;
	char *want;

	pthread_join(s->thread, NULL);
	memcpy(last_sni, s->sni, sizeof(last_sni));
	close(s->lfd);
	for (size_t i = 0; i < s->nsteps; i++)
		if (s->steps[i].kind == S_RECV)
			want_len += s->steps[i].len;
	want = malloc(want_len + 1);
	assert_non_null(want);
	want_len = 0;
	for (size_t i = 0; i < s->nsteps; i++) {
		if (s->steps[i].kind == S_RECV) {
			memcpy(want + want_len, s->steps[i].text, s->steps[i].len);
			want_len += s->steps[i].len;
		}
	}
	if (s->error[0] != '\0' || s->got_len != want_len ||
	    (want_len > 0 && memcmp(s->got, want, want_len) != 0)) {
		if (s->got_len < 4096 && want_len < 4096)
			print_error("server: %s\n--- expected ---\n%.*s--- got ---\n%.*s---\n",
			    s->error, (int)want_len, want, (int)s->got_len,
			    s->got != NULL ? s->got : "");
		else
			print_error("server: %s (expected %zu octets, got %zu)\n", s->error,
			    want_len, s->got_len);
		fail();
	}
	free(want);
	free(s->got);
}

/* ---------------------------------------------------------------- client */

struct run {
	struct event_base *base;
	struct smtp_client *c;
	struct smtp_client_msg **msgs;
	size_t nmsgs, next;
	bool in_call;           /* inside smtp_client_new/send: no callback may run */
	bool callback_in_call;
	int ready_calls, done_calls, closed_calls;
	int seq, done_seq, closed_seq;
	enum smtp_client_end end;
	struct smtp_reply end_reply;
	bool end_has_reply;
	char why[1024];
	struct smtp_client_info info;
	char tls_version[32];
	struct timespec t0, t1;
};

static void on_done(struct smtp_client *c, struct smtp_client_msg *m, void *arg);

/* Set by a test: `ready` leaves the session idle instead of sending or quitting. */
static bool stay_idle;

static void run_send(struct run *r, struct smtp_client *c)
{
	if (stay_idle)
		return;
	if (r->next < r->nmsgs) {
		assert_true(smtp_client_idle(c));
		r->in_call = true;
		assert_int_equal(smtp_client_send(c, r->msgs[r->next++], on_done, r), 0);
		r->in_call = false;
		assert_false(smtp_client_idle(c));
		/* Busy: a second message is refused. */
		assert_int_equal(smtp_client_send(c, r->msgs[r->next - 1], on_done, r), -1);
	} else {
		smtp_client_quit(c);
	}
}

static void on_ready(struct smtp_client *c, void *arg)
{
	struct run *r = arg;

	r->callback_in_call |= r->in_call;
	r->ready_calls++;
	run_send(r, c);
}

static void on_done(struct smtp_client *c, struct smtp_client_msg *m, void *arg)
{
	struct run *r = arg;

	r->callback_in_call |= r->in_call;
	r->done_calls++;
	r->done_seq = ++r->seq;
	if (smtp_client_idle(c))
		run_send(r, c);
}

static void on_closed(struct smtp_client *c, enum smtp_client_end end,
    const struct smtp_reply *reply, const char *why, void *arg)
{
	struct run *r = arg;

	r->callback_in_call |= r->in_call;
	r->closed_calls++;
	r->closed_seq = ++r->seq;
	r->end = end;
	r->end_has_reply = reply != NULL;
	if (reply != NULL)
		r->end_reply = *reply;
	snprintf(r->why, sizeof(r->why), "%s", why);
	r->info = *smtp_client_info(c);
	snprintf(r->tls_version, sizeof(r->tls_version), "%s",
	    r->info.tls_version != NULL ? r->info.tls_version : "");
	assert_false(smtp_client_idle(c));
	clock_gettime(CLOCK_MONOTONIC, &r->t1);
	event_base_loopbreak(r->base);
}

static const struct smtp_client_callbacks callbacks = { on_ready, on_closed };

static void on_safety(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;
	event_base_loopbreak(r->base);
}

static struct smtp_client_params default_params(void)
{
	struct smtp_client_params p;

	memset(&p, 0, sizeof(p));
	p.helo = "client.test";
	p.peer_name = "mx.remote.test";
	p.command_timeout = 5;
	p.data_timeout = 5;
	return p;
}

static void loop_idle(struct event_base *base)
{
	for (int i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

/* Runs a client against the script until it is closed. */
static void run_with(struct run *r, struct smtp_client_params *p, const struct step *steps,
    size_t nsteps, struct smtp_client_msg **msgs, size_t nmsgs)
{
	struct server s;
	struct sockaddr_in sin;
	struct timeval safety = { 30, 0 };
	struct event *ev;

	memset(r, 0, sizeof(*r));
	r->msgs = msgs;
	r->nmsgs = nmsgs;
	server_start(&s, steps, nsteps);
	r->base = event_base_new();
	assert_non_null(r->base);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(s.port);
	p->addr = (struct sockaddr *)&sin;
	p->addrlen = sizeof(sin);
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	r->in_call = true;
	r->c = smtp_client_new(r->base, p, &callbacks, r);
	r->in_call = false;
	assert_non_null(r->c);
	ev = evtimer_new(r->base, on_safety, r);
	evtimer_add(ev, &safety);
	event_base_dispatch(r->base);
	event_free(ev);
	smtp_client_free(&r->c);
	assert_null(r->c);
	/* libevent closes a freed bufferevent's socket from the loop; nothing of
	 * the client may run any more. */
	loop_idle(r->base);
	server_finish(&s);
	event_base_free(r->base);
	assert_false(r->callback_in_call);
	assert_int_equal(r->closed_calls, 1);
}

#define RUN(r, p, steps, msgs, n) run_with((r), (p), (steps), sizeof(steps) / sizeof((steps)[0]), (msgs), (n))

/* A message whose data sits at an offset of a spool-like file, between junk. */
struct testmsg {
	struct smtp_client_msg m;
	struct smtp_client_rcpt rcpts[4];
};

static void msg_init(struct testmsg *t, const char *data, size_t len, const char *prepend,
    size_t nrcpts)
{
	static const char *const addrs[] = { "b@y.test", "c@y.test", "d@y.test", "e@y.test" };
	char path[] = "/tmp/test-smtp-client-msg.XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "JUNK", 4), 4);
	if (len > 0)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(write(fd, "TAIL.\r\n", 7), 7);
	memset(t, 0, sizeof(*t));
	t->m.mail_from = "a@x.test";
	t->m.rcpts = t->rcpts;
	t->m.nrcpts = nrcpts;
	for (size_t i = 0; i < nrcpts; i++) {
		t->rcpts[i].address = addrs[i];
		/* Stale results must be cleared by the client. */
		t->rcpts[i].result.code = 999;
	}
	t->m.prepend = prepend != NULL ? prepend : "";
	t->m.prepend_len = prepend != NULL ? strlen(prepend) : 0;
	t->m.fd = fd;
	t->m.offset = 4;
	t->m.end = 4 + (off_t)len;
}

static void msg_free(struct testmsg *t)
{
	close(t->m.fd);
}

static void assert_result(const struct smtp_reply *r, unsigned code, const char *enhanced,
    const char *text)
{
	assert_int_equal(r->code, code);
	assert_string_equal(r->enhanced, enhanced);
	assert_string_equal(r->text, text);
}

#define GREETING "220 mx.remote.test ESMTP ready\r\n"
#define EHLO "EHLO client.test\r\n"
#define QUIT_OK RECV("QUIT\r\n"), SEND("221 2.0.0 bye\r\n")

/* ---------------------------------------------------------------- tests */

static void test_data_dot_stuffing(void **state)
{
	static const char data[] = "Subject: dots\r\n\r\n.x\r\nmiddle . dot\r\n..\r\n.\r\nend\r\n";
	static const struct step steps[] = {
		SEND(GREETING),
		RECV(EHLO),
		SEND("250-mx.remote.test hello\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"),
		SEND("250 2.1.0 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"),
		SEND("550 5.1.1 no such user\r\n"),
		RECV("RCPT TO:<c@y.test>\r\n"),
		SEND("250 2.1.5 ok\r\n"),
		RECV("DATA\r\n"),
		SEND("354 go ahead\r\n"),
		RECV("Received: by client.test\r\nSubject: dots\r\n\r\n..x\r\nmiddle . dot\r\n"
		    "...\r\n..\r\nend\r\n.\r\n"),
		SEND("250 2.0.0 queued as ABC\r\n"),
		QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, data, sizeof(data) - 1, "Received: by client.test\r\n", 2);
	RUN(&r, &p, steps, msgs, 1);
	assert_int_equal(r.ready_calls, 1);
	assert_int_equal(r.done_calls, 1);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_true(r.done_seq < r.closed_seq);
	assert_int_equal(t.m.mail_result.code, 0);
	assert_result(&t.rcpts[0].result, 550, "5.1.1", "no such user");
	assert_result(&t.rcpts[1].result, 250, "2.0.0", "queued as ABC");
	assert_string_equal(r.info.greeting_name, "mx.remote.test");
	assert_true(r.info.caps.eightbitmime);
	assert_true(r.info.caps.enhancedstatuscodes);
	assert_false(r.info.caps.pipelining);
	assert_false(r.info.tls);
	assert_false(r.info.authenticated);
	msg_free(&t);
}

/* Data without a final CRLF gets one before the dot; a first line starting
 * with "." is stuffed; an empty message is just the dot. */
static void test_data_edges(void **state)
{
	static const char data[] = ".start\r\nno newline";
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("DATA\r\n"), SEND("354 go\r\n"),
		RECV("..start\r\nno newline\r\n.\r\n"), SEND("250 one\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("DATA\r\n"), SEND("354 go\r\n"),
		RECV(".\r\n"), SEND("250 two\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("DATA\r\n"), SEND("354 go\r\n"),
		RECV("x\r\n.\r\n"), SEND("250 three\r\n"),
		QUIT_OK,
	};
	struct testmsg t1, t2, t3;
	struct smtp_client_msg *msgs[] = { &t1.m, &t2.m, &t3.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t1, data, sizeof(data) - 1, NULL, 1);
	msg_init(&t2, "", 0, NULL, 1);
	msg_init(&t3, "x", 1, NULL, 1);
	RUN(&r, &p, steps, msgs, 3);
	assert_int_equal(r.done_calls, 3);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_result(&t1.rcpts[0].result, 250, "", "one");
	assert_result(&t2.rcpts[0].result, 250, "", "two");
	assert_result(&t3.rcpts[0].result, 250, "", "three");
	msg_free(&t1);
	msg_free(&t2);
	msg_free(&t3);
}

/* RFC 2920: MAIL, the RCPTs and DATA in one go, with SIZE, BODY, DSN. */
static void test_pipelining(void **state)
{
	static const char data[] = "Subject: p\r\n\r\nbody\r\n";
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO),
		SEND("250-mx.remote.test\r\n250-PIPELINING\r\n250-DSN\r\n250-SIZE 1000000\r\n"
		    "250 8BITMIME\r\n"),
		RECV("MAIL FROM:<a@x.test> SIZE=20 BODY=8BITMIME RET=HDRS ENVID=env+2B1\r\n"
		    "RCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@y.test\r\n"
		    "RCPT TO:<c@y.test> NOTIFY=NEVER\r\n"
		    "RCPT TO:<d@y.test>\r\n"
		    "DATA\r\n"),
		SEND("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 unknown\r\n250 2.1.5 ok\r\n354 go\r\n"),
		RECV("Subject: p\r\n\r\nbody\r\n.\r\n"),
		SEND("250 2.0.0 done\r\n"),
		QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, data, sizeof(data) - 1, NULL, 3);
	t.m.eightbit = true;
	t.m.ret = ENVELOPE_RET_HDRS;
	t.m.envid = "env+2B1";
	t.rcpts[0].notify = ENVELOPE_NOTIFY_SUCCESS | ENVELOPE_NOTIFY_FAILURE;
	t.rcpts[0].orcpt = "rfc822;b@y.test";
	t.rcpts[1].notify = ENVELOPE_NOTIFY_NEVER;
	RUN(&r, &p, steps, msgs, 1);
	assert_int_equal(r.done_calls, 1);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_result(&t.rcpts[0].result, 250, "2.0.0", "done");
	assert_result(&t.rcpts[1].result, 550, "5.1.1", "unknown");
	assert_result(&t.rcpts[2].result, 250, "2.0.0", "done");
	assert_true(r.info.caps.pipelining);
	assert_true(r.info.caps.size);
	assert_int_equal(r.info.caps.size_max, 1000000);
	msg_free(&t);
}

/* RFC 2920 §3.1: 354 after every RCPT was refused: just the dot, then RSET;
 * the session then carries the next message. */
static void test_pipelining_no_rcpt(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250-mx.remote.test\r\n250 PIPELINING\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n"),
		SEND("250 ok\r\n550 5.1.1 no\r\n450 4.2.0 later\r\n354 go\r\n"),
		RECV(".\r\n"),
		SEND("554 5.5.1 no valid recipients\r\n"),
		RECV("RSET\r\n"),
		SEND("250 2.0.0 reset\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"),
		RECV("hello\r\n.\r\n"),
		SEND("250 2.0.0 second\r\n"),
		QUIT_OK,
	};
	struct testmsg t1, t2;
	struct smtp_client_msg *msgs[] = { &t1.m, &t2.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t1, "hello\r\n", 7, NULL, 2);
	msg_init(&t2, "hello\r\n", 7, NULL, 1);
	RUN(&r, &p, steps, msgs, 2);
	assert_int_equal(r.done_calls, 2);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_result(&t1.rcpts[0].result, 550, "5.1.1", "no");
	assert_result(&t1.rcpts[1].result, 450, "4.2.0", "later");
	assert_result(&t2.rcpts[0].result, 250, "2.0.0", "second");
	msg_free(&t1);
	msg_free(&t2);
}

/* DATA refused after accepted RCPTs: the recipients carry DATA's reply; RSET. */
static void test_pipelining_data_refused(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250-mx.remote.test\r\n250 PIPELINING\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n"),
		SEND("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n554 5.7.1 no data for you\r\n"),
		RECV("RSET\r\n"), SEND("250 ok\r\n"),
		QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, "x\r\n", 3, NULL, 2);
	RUN(&r, &p, steps, msgs, 1);
	assert_result(&t.rcpts[0].result, 554, "5.7.1", "no data for you");
	assert_result(&t.rcpts[1].result, 550, "5.1.1", "no");
	msg_free(&t);
}

/* MAIL refused: every recipient carries its reply; no RCPT is sent; RSET. */
static void test_mail_refused(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("550 5.7.1 sender rejected\r\n"),
		RECV("RSET\r\n"), SEND("250 ok\r\n"),
		QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, "x\r\n", 3, NULL, 2);
	RUN(&r, &p, steps, msgs, 1);
	assert_result(&t.m.mail_result, 550, "5.7.1", "sender rejected");
	assert_result(&t.rcpts[0].result, 550, "5.7.1", "sender rejected");
	assert_result(&t.rcpts[1].result, 550, "5.7.1", "sender rejected");
	msg_free(&t);
}

/* Without PIPELINING every RCPT refused: RSET, and no DATA. */
static void test_no_rcpt_accepted(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		RECV("MAIL FROM:<>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("550 5.1.1 no\r\n"),
		RECV("RSET\r\n"), SEND("250 ok\r\n"),
		QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, "x\r\n", 3, NULL, 1);
	t.m.mail_from = "";
	RUN(&r, &p, steps, msgs, 1);
	assert_result(&t.rcpts[0].result, 550, "5.1.1", "no");
	msg_free(&t);
}

/* RFC 3030: BDAT with the exact size, no dot-stuffing, one LAST chunk. */
static void test_bdat(void **state)
{
	static const char data[] = "Subject: b\r\n\r\n.x\r\n.\r\n";
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO),
		SEND("250-mx.remote.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"),
		SEND("250 ok\r\n250 ok\r\n"),
		RECV("BDAT 31 LAST\r\nX-Pre: 1\r\nSubject: b\r\n\r\n.x\r\n.\r\n"),
		SEND("250 2.0.0 chunked\r\n"),
		QUIT_OK,
	};
	static const struct step steps_nopipe[] = {
		SEND(GREETING), RECV(EHLO), SEND("250-mx.remote.test\r\n250 CHUNKING\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("BDAT 31 LAST\r\nX-Pre: 1\r\nSubject: b\r\n\r\n.x\r\n.\r\n"),
		SEND("250 2.0.0 chunked\r\n"),
		QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, data, sizeof(data) - 1, "X-Pre: 1\r\n", 1);
	RUN(&r, &p, steps, msgs, 1);
	assert_result(&t.rcpts[0].result, 250, "2.0.0", "chunked");
	assert_true(r.info.caps.chunking);
	msg_free(&t);

	msg_init(&t, data, sizeof(data) - 1, "X-Pre: 1\r\n", 1);
	RUN(&r, &p, steps_nopipe, msgs, 1);
	assert_result(&t.rcpts[0].result, 250, "2.0.0", "chunked");
	msg_free(&t);
}

/* A body of n octets: lines of varying length, some starting with ".". */
static char *make_body(size_t n, unsigned seed)
{
	char *b = malloc(n);
	size_t i = 0;

	assert_non_null(b);
	while (i < n) {
		seed = seed * 1103515245u + 12345u;
		size_t line = 1 + (seed >> 16) % 120;
		for (size_t k = 0; k < line && i < n; k++)
			b[i++] = k == 0 && (seed & 4) ? '.' : (char)('a' + (k + seed) % 26);
		if (i < n)
			b[i++] = '\r';
		if (i < n)
			b[i++] = '\n';
	}
	return b;
}

/* Dot-stuffs like RFC 5321 §4.5.2 for the expected transcript. */
static char *stuff(const char *src, size_t n, size_t *len_r)
{
	char *out = malloc(2 * n + 5);
	size_t o = 0;
	bool bol = true;

	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		if (bol && src[i] == '.')
			out[o++] = '.';
		out[o++] = src[i];
		bol = src[i] == '\n';
	}
	if (n < 2 || src[n - 2] != '\r' || src[n - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	*len_r = o + 3;
	return out;
}

/* Large messages: DATA streamed with back-pressure, BDAT in 1 MiB chunks. */
static void test_large(void **state)
{
	const size_t n = 2 * 1024 * 1024 + 512 * 1024 + 77;
	char *body = make_body(n, 7);
	size_t slen;
	char *stuffed = stuff(body, n, &slen);
	const size_t mib = 1024 * 1024;
	struct step data_steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("DATA\r\n"), SEND("354 go\r\n"),
		{ S_RECV, stuffed, slen }, SEND("250 2.0.0 big\r\n"),
		QUIT_OK,
	};
	struct step bdat_steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250-mx.remote.test\r\n250 CHUNKING\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("BDAT 1048576\r\n"), { S_RECV, body, mib }, SEND("250 2.0.0 one\r\n"),
		RECV("BDAT 1048576\r\n"), { S_RECV, body + mib, mib }, SEND("250 2.0.0 two\r\n"),
		RECV("BDAT 524365 LAST\r\n"), { S_RECV, body + 2 * mib, n - 2 * mib },
		SEND("250 2.0.0 last\r\n"),
		QUIT_OK,
	};
	struct step bdat_refused[] = {
		SEND(GREETING), RECV(EHLO), SEND("250-mx.remote.test\r\n250 CHUNKING\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("BDAT 1048576\r\n"), { S_RECV, body, mib },
		SEND("552 5.3.4 too big after all\r\n"),
		RECV("RSET\r\n"), SEND("250 ok\r\n"),
		QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, body, n, NULL, 1);
	RUN(&r, &p, data_steps, msgs, 1);
	assert_result(&t.rcpts[0].result, 250, "2.0.0", "big");
	msg_free(&t);

	msg_init(&t, body, n, NULL, 1);
	RUN(&r, &p, bdat_steps, msgs, 1);
	assert_result(&t.rcpts[0].result, 250, "2.0.0", "last");
	msg_free(&t);

	msg_init(&t, body, n, NULL, 1);
	RUN(&r, &p, bdat_refused, msgs, 1);
	assert_result(&t.rcpts[0].result, 552, "5.3.4", "too big after all");
	msg_free(&t);
	free(body);
	free(stuffed);
}

/* 421 in the middle: done (unresolved recipients get the 421), then closed. */
static void test_421_mid_transaction(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<c@y.test>\r\n"), SEND("550 5.1.1 no\r\n"),
		RECV("RCPT TO:<d@y.test>\r\n"), SEND("421 4.3.2 shutting down\r\n"),
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, "x\r\n", 3, NULL, 3);
	RUN(&r, &p, steps, msgs, 1);
	assert_int_equal(r.done_calls, 1);
	assert_true(r.done_seq < r.closed_seq);
	assert_int_equal(r.end, SMTP_CLIENT_SHUTDOWN);
	assert_true(r.end_has_reply);
	assert_result(&r.end_reply, 421, "4.3.2", "shutting down");
	assert_result(&t.rcpts[0].result, 421, "4.3.2", "shutting down");
	assert_result(&t.rcpts[1].result, 550, "5.1.1", "no");
	assert_result(&t.rcpts[2].result, 421, "4.3.2", "shutting down");
	msg_free(&t);
}

/* The server goes away after 354: accepted recipients have no result. */
static void test_lost_during_data(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<c@y.test>\r\n"), SEND("550 5.1.1 no\r\n"),
		RECV("DATA\r\n"), SEND("354 go\r\n"),
		RECV("x\r\n.\r\n"),
		CLOSE(),
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, "x\r\n", 3, NULL, 2);
	RUN(&r, &p, steps, msgs, 1);
	assert_int_equal(r.done_calls, 1);
	assert_true(r.done_seq < r.closed_seq);
	assert_int_equal(r.end, SMTP_CLIENT_LOST);
	assert_false(r.end_has_reply);
	assert_int_equal(t.rcpts[0].result.code, 0);
	assert_result(&t.rcpts[1].result, 550, "5.1.1", "no");
	msg_free(&t);
}

/* No 8BITMIME / SMTPUTF8 / room for the SIZE: refused locally, nothing sent;
 * `done` runs from the event loop, not from inside smtp_client_send. */
static void test_local_refusals(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250-mx.remote.test\r\n250 SIZE 10\r\n"),
		QUIT_OK,
	};
	struct testmsg t1, t2, t3, t4;
	struct smtp_client_msg *msgs[] = { &t1.m, &t2.m, &t3.m, &t4.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t1, "x\r\n", 3, NULL, 2);
	t1.m.eightbit = true;
	msg_init(&t2, "x\r\n", 3, NULL, 1);
	t2.m.smtputf8 = true;
	msg_init(&t3, "0123456789\r\n", 12, NULL, 1);
	msg_init(&t4, "x\r\n", 3, NULL, 1);
	t4.rcpts[0].address = "j\xc3\xb6rg@y.test";  /* UTF-8 without the flag */
	RUN(&r, &p, steps, msgs, 4);
	assert_int_equal(r.done_calls, 4);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_result(&t1.rcpts[0].result, 554, "5.6.3",
	    "message needs 8BITMIME, which mx.remote.test does not offer");
	assert_result(&t1.rcpts[1].result, 554, "5.6.3",
	    "message needs 8BITMIME, which mx.remote.test does not offer");
	assert_result(&t2.rcpts[0].result, 553, "5.6.7",
	    "message needs SMTPUTF8, which mx.remote.test does not offer");
	assert_result(&t3.rcpts[0].result, 552, "5.3.4",
	    "message of 12 octets exceeds the limit of 10 octets of mx.remote.test");
	assert_result(&t4.rcpts[0].result, 553, "5.6.7",
	    "message needs SMTPUTF8, which mx.remote.test does not offer");
	assert_int_equal(t1.m.mail_result.code, 0);
	msg_free(&t1);
	msg_free(&t2);
	msg_free(&t3);
	msg_free(&t4);
}

/* When offered, SMTPUTF8 and BODY=8BITMIME go on MAIL FROM. */
static void test_smtputf8_offered(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO),
		SEND("250-mx.remote.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"),
		RECV("MAIL FROM:<j\xc3\xb6rg@x.test> BODY=8BITMIME SMTPUTF8\r\n"), SEND("250 ok\r\n"),
		RECV("RCPT TO:<b@y.test>\r\n"), SEND("250 ok\r\n"),
		RECV("DATA\r\n"), SEND("354 go\r\n"),
		RECV("x\r\n.\r\n"), SEND("250 ok\r\n"),
		QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, "x\r\n", 3, NULL, 1);
	t.m.mail_from = "j\xc3\xb6rg@x.test";
	t.m.eightbit = true;
	t.m.smtputf8 = true;
	RUN(&r, &p, steps, msgs, 1);
	assert_result(&t.rcpts[0].result, 250, "", "ok");
	msg_free(&t);
}

/* An address with CR LF in it never reaches the wire. */
static void test_injection_refused(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n"), QUIT_OK,
	};
	struct testmsg t;
	struct smtp_client_msg *msgs[] = { &t.m };
	struct smtp_client_params p = default_params();
	struct run r;

	msg_init(&t, "x\r\n", 3, NULL, 1);
	t.rcpts[0].address = "b@y.test>\r\nRCPT TO:<evil@z.test";
	RUN(&r, &p, steps, msgs, 1);
	assert_int_equal(t.rcpts[0].result.code, 501);
	assert_string_equal(t.rcpts[0].result.enhanced, "5.5.4");
	msg_free(&t);
}

static double elapsed(const struct run *r)
{
	return (double)(r->t1.tv_sec - r->t0.tv_sec) + (double)(r->t1.tv_nsec - r->t0.tv_nsec) / 1e9;
}

/* A silent server: the command timeout ends the session. */
static void test_timeout(void **state)
{
	static const struct step greeting_only[] = { SEND(GREETING), RECV(EHLO) };
	static const struct step silent[] = { RECV("") };
	struct smtp_client_params p = default_params();
	struct run r;

	p.command_timeout = 1;
	RUN(&r, &p, silent, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_TIMEOUT);
	assert_int_equal(r.ready_calls, 0);
	assert_true(elapsed(&r) >= 0.9 && elapsed(&r) < 3.0);

	RUN(&r, &p, greeting_only, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_TIMEOUT);
	assert_true(elapsed(&r) >= 0.9 && elapsed(&r) < 3.0);
}

/* Credentials are never sent in clear text. */
static void test_auth_refused_without_tls(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250-mx.remote.test\r\n250 AUTH PLAIN LOGIN\r\n"),
	};
	struct smtp_client_params p = default_params();
	struct run r;

	p.auth_user = "user";
	p.auth_password = "pass";
	RUN(&r, &p, steps, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_AUTH_FAILED);
	assert_int_equal(r.ready_calls, 0);
	assert_false(r.end_has_reply);
	assert_non_null(strstr(r.why, "not encrypted"));
}

/* RFC 5321 §4.1.1.1: EHLO refused, HELO then. */
static void test_helo_fallback(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("502 5.5.2 what is EHLO\r\n"),
		RECV("HELO client.test\r\n"), SEND("250 mx.remote.test\r\n"),
		QUIT_OK,
	};
	struct smtp_client_params p = default_params();
	struct run r;

	RUN(&r, &p, steps, NULL, 0);
	assert_int_equal(r.ready_calls, 1);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_false(r.info.caps.pipelining);
}

static void test_greeting_refused(void **state)
{
	static const struct step refused[] = { SEND("554 5.7.1 go away\r\n") };
	static const struct step busy[] = { SEND("421 4.3.2 busy\r\n") };
	static const struct step ehlo_temp[] = {
		SEND(GREETING), RECV(EHLO), SEND("451 4.3.0 try later\r\n"),
	};
	struct smtp_client_params p = default_params();
	struct run r;

	RUN(&r, &p, refused, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_GREETING);
	assert_true(r.end_has_reply);
	assert_result(&r.end_reply, 554, "5.7.1", "go away");
	assert_int_equal(r.ready_calls, 0);

	RUN(&r, &p, busy, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_SHUTDOWN);
	assert_int_equal(r.end_reply.code, 421);

	RUN(&r, &p, ehlo_temp, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_GREETING);
	assert_int_equal(r.end_reply.code, 451);
}

static void test_protocol_errors(void **state)
{
	static char longline[5010];
	static const struct step bad[] = { SEND("hello there\r\n") };
	static const struct step mixed[] = { SEND("220-mx\r\n250 other\r\n") };
	struct step toolong[] = { { S_SEND, longline, sizeof(longline) } };
	static const struct step unexpected[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n250 surprise\r\n"),
	};
	static const struct step idle_421[] = {
		SEND(GREETING), RECV(EHLO), SEND("250 mx.remote.test\r\n421 4.4.2 idle too long\r\n"),
	};
	struct smtp_client_params p = default_params();
	struct run r;

	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "220 ", 4);
	memcpy(longline + sizeof(longline) - 2, "\r\n", 2);
	RUN(&r, &p, bad, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_PROTOCOL);
	RUN(&r, &p, mixed, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_PROTOCOL);
	RUN(&r, &p, toolong, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_PROTOCOL);
	assert_non_null(strstr(r.why, "too long"));

	/* A reply nobody asked for while idle; 421 while idle. */
	stay_idle = true;
	RUN(&r, &p, unexpected, NULL, 0);
	assert_int_equal(r.ready_calls, 1);
	assert_int_equal(r.end, SMTP_CLIENT_PROTOCOL);
	assert_non_null(strstr(r.why, "unexpected reply in idle"));
	RUN(&r, &p, idle_421, NULL, 0);
	assert_int_equal(r.ready_calls, 1);
	assert_int_equal(r.end, SMTP_CLIENT_SHUTDOWN);
	stay_idle = false;
}

static void test_tls_missing(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND("250-mx.remote.test\r\n250 PIPELINING\r\n"),
	};
	struct smtp_client_params p = default_params();
	struct run r;

	p.starttls = true;
	p.tls_required = true;
	RUN(&r, &p, steps, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_TLS_MISSING);
	assert_int_equal(r.ready_calls, 0);
}

static void test_connect_refused(void **state)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct smtp_client_params p = default_params();
	struct run r;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
	close(fd);  /* nobody listens there now */

	memset(&r, 0, sizeof(r));
	r.base = event_base_new();
	p.addr = (struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	r.in_call = true;
	r.c = smtp_client_new(r.base, &p, &callbacks, &r);
	r.in_call = false;
	assert_non_null(r.c);
	assert_int_equal(r.closed_calls, 0);
	event_base_dispatch(r.base);
	assert_false(r.callback_in_call);
	assert_int_equal(r.closed_calls, 1);
	assert_int_equal(r.end, SMTP_CLIENT_CONNECT_FAILED);
	assert_non_null(strstr(r.why, "refused"));
	smtp_client_free(&r.c);
	event_base_free(r.base);
}

/* quit before ready: closed(QUIT) from the loop; freeing inside closed works. */
static void on_closed_free(struct smtp_client *c, enum smtp_client_end end,
    const struct smtp_reply *reply, const char *why, void *arg)
{
	struct run *r = arg;

	on_closed(c, end, reply, why, arg);
	smtp_client_free(&r->c);
}

static void on_quit_timer(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	r->in_call = true;
	smtp_client_quit(r->c);
	r->in_call = false;
}

static void test_quit_early_and_free_in_callback(void **state)
{
	static const struct step steps[] = { RECV("") };
	static const struct smtp_client_callbacks cb = { on_ready, on_closed_free };
	struct server s;
	struct sockaddr_in sin;
	struct smtp_client_params p = default_params();
	struct run r;
	struct timeval later = { 0, 200000 };

	memset(&r, 0, sizeof(r));
	server_start(&s, steps, 1);
	r.base = event_base_new();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(s.port);
	p.addr = (struct sockaddr *)&sin;
	p.addrlen = sizeof(sin);
	r.c = smtp_client_new(r.base, &p, &cb, &r);
	assert_non_null(r.c);
	/* The server stays silent: the client is waiting for the greeting. */
	struct event *ev = evtimer_new(r.base, on_quit_timer, &r);
	evtimer_add(ev, &later);
	event_base_dispatch(r.base);
	event_free(ev);
	assert_false(r.callback_in_call);
	assert_int_equal(r.closed_calls, 1);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_null(r.c);
	loop_idle(r.base);
	server_finish(&s);
	event_base_free(r.base);
}

/* ---------------------------------------------------------------- STARTTLS */

struct tls_arg {
	struct tls_client_policy policy;
	struct tls_tlsa tlsa;
	unsigned char hash[32];
};

static SSL *make_ssl(void *arg)
{
	struct tls_arg *t = arg;
	const char *error = NULL;
	SSL *ssl = tls_client_ssl_new(pki.client_ctx, &t->policy, &error);

	if (ssl == NULL)
		print_error("tls_client_ssl_new: %s\n", error);
	return ssl;
}

static void tls_params(struct smtp_client_params *p, struct tls_arg *t, enum tls_verify_mode mode,
    const char *host)
{
	memset(t, 0, sizeof(*t));
	t->policy.mode = mode;
	t->policy.host = host;
	if (mode == TLS_VERIFY_DANE) {
		memcpy(t->hash, pki.spki_sha256, sizeof(t->hash));
		t->tlsa = (struct tls_tlsa){ 3, 1, 1, t->hash, sizeof(t->hash) };
		t->policy.tlsa = &t->tlsa;
		t->policy.ntlsa = 1;
	}
	p->starttls = true;
	p->tls_new = make_ssl;
	p->tls_arg = t;
}

#define EHLO_TLS "250-mx.remote.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"

/* Reads the file written while stderr pointed at it. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);

	assert_non_null(f);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_starttls_auth_plain(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 2.0.0 go ahead\r\n"),
		TLS(),
		RECV(EHLO), SEND("250-mx.remote.test\r\n250 AUTH PLAIN LOGIN\r\n"),
		RECV("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"), SEND("235 2.7.0 ok\r\n"),
		QUIT_OK,
	};
	struct smtp_client_params p = default_params();
	struct tls_arg t;
	struct run r;
	char logpath[] = "/tmp/test-smtp-client-log.XXXXXX";
	int logfd = mkstemp(logpath);
	int saved = dup(2);

	tls_params(&p, &t, TLS_VERIFY_PKIX, "mx.remote.test");
	p.verify_required = true;
	p.tls_required = true;
	p.auth_user = "user";
	p.auth_password = "pass";
	/* Debug logging to a file: it must name AUTH but never carry its data. */
	assert_true(logfd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(logfd, 2);
	log_set_level(LOG_LEVEL_DEBUG);
	RUN(&r, &p, steps, NULL, 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(logfd);
	log_set_level(getenv("TEST_DEBUG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	char *log = slurp(logpath);
	unlink(logpath);
	assert_non_null(strstr(log, "> AUTH PLAIN"));
	assert_non_null(strstr(log, "> STARTTLS"));
	assert_non_null(strstr(log, "< 235"));
	assert_null(strstr(log, "AHVzZXIAcGFzcw"));
	assert_null(strstr(log, "pass"));
	free(log);

	assert_int_equal(r.ready_calls, 1);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_true(r.info.tls);
	assert_true(r.info.tls_verified);
	assert_false(r.info.dane);
	assert_true(r.info.authenticated);
	assert_string_equal(r.tls_version, "TLSv1.3");
	assert_string_equal(last_sni, "mx.remote.test");
	/* Caps are those of the EHLO after TLS (RFC 3207 §4.2). */
	assert_false(r.info.caps.starttls);
	assert_false(r.info.caps.pipelining);
	assert_true(r.info.caps.auth_plain);
}

static void test_starttls_auth_login(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS(),
		RECV(EHLO), SEND("250-mx.remote.test\r\n250 AUTH LOGIN\r\n"),
		RECV("AUTH LOGIN\r\n"), SEND("334 VXNlcm5hbWU6\r\n"),
		RECV("dXNlcg==\r\n"), SEND("334 UGFzc3dvcmQ6\r\n"),
		RECV("cGFzcw==\r\n"), SEND("235 2.7.0 ok\r\n"),
		QUIT_OK,
	};
	static const struct step refused[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS(),
		RECV(EHLO), SEND("250-mx.remote.test\r\n250 AUTH PLAIN\r\n"),
		RECV("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"), SEND("535 5.7.8 bad credentials\r\n"),
	};
	/* A 334 after the initial response: the response again, alone. */
	static const struct step plain_334[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS(),
		RECV(EHLO), SEND("250-mx.remote.test\r\n250 AUTH PLAIN\r\n"),
		RECV("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"), SEND("334 \r\n"),
		RECV("AHVzZXIAcGFzcw==\r\n"), SEND("235 2.7.0 ok\r\n"),
		QUIT_OK,
	};
	static const struct step no_mech[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS(),
		RECV(EHLO), SEND("250-mx.remote.test\r\n250 AUTH CRAM-MD5\r\n"),
	};
	struct smtp_client_params p = default_params();
	struct tls_arg t;
	struct run r;

	tls_params(&p, &t, TLS_VERIFY_NONE, "mx.remote.test");
	p.auth_user = "user";
	p.auth_password = "pass";
	RUN(&r, &p, steps, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_true(r.info.authenticated);
	assert_false(r.info.tls_verified);  /* nothing was checked: not "verified" */

	RUN(&r, &p, refused, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_AUTH_FAILED);
	assert_result(&r.end_reply, 535, "5.7.8", "bad credentials");
	assert_int_equal(r.ready_calls, 0);

	RUN(&r, &p, plain_334, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_true(r.info.authenticated);

	RUN(&r, &p, no_mech, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_AUTH_FAILED);
	assert_false(r.end_has_reply);
}

static void test_starttls_unverified(void **state)
{
	static const struct step required[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS_ANY(),
	};
	static const struct step opportunistic[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS(),
		RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		QUIT_OK,
	};
	struct smtp_client_params p = default_params();
	struct tls_arg t;
	struct run r;

	tls_params(&p, &t, TLS_VERIFY_PKIX, "other.test");
	p.verify_required = true;
	RUN(&r, &p, required, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_TLS_UNVERIFIED);
	assert_true(r.info.tls);
	assert_false(r.info.tls_verified);
	assert_non_null(r.info.verify_error);
	assert_int_equal(r.ready_calls, 0);

	p.verify_required = false;
	RUN(&r, &p, opportunistic, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_int_equal(r.ready_calls, 1);
	assert_true(r.info.tls);
	assert_false(r.info.tls_verified);
}

static void test_starttls_dane(void **state)
{
	static const struct step ok[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS(),
		RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		QUIT_OK,
	};
	static const struct step bad[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS_ANY(),
	};
	struct smtp_client_params p = default_params();
	struct tls_arg t;
	struct run r;

	/* DANE-EE ignores the name: a host the certificate does not name. */
	tls_params(&p, &t, TLS_VERIFY_DANE, "mx.other.test");
	p.verify_required = true;
	p.tls_required = true;
	RUN(&r, &p, ok, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_true(r.info.tls_verified);
	assert_true(r.info.dane);
	assert_string_equal(last_sni, "mx.other.test");

	tls_params(&p, &t, TLS_VERIFY_DANE, "mx.remote.test");
	t.hash[0] ^= 1;
	RUN(&r, &p, bad, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_TLS_UNVERIFIED);
	assert_false(r.info.tls_verified);
	assert_false(r.info.dane);
}

static void test_starttls_refused_or_failed(void **state)
{
	static const struct step refused[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("454 4.7.0 TLS not available\r\n"),
		QUIT_OK,
	};
	static const struct step refused_required[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("454 4.7.0 TLS not available\r\n"),
	};
	static const struct step broken[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\nthis is not TLS\r\n\r\n"), CLOSE(),
	};
	struct smtp_client_params p = default_params();
	struct tls_arg t;
	struct run r;

	tls_params(&p, &t, TLS_VERIFY_NONE, "mx.remote.test");
	RUN(&r, &p, refused, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_int_equal(r.ready_calls, 1);
	assert_false(r.info.tls);

	p.tls_required = true;
	RUN(&r, &p, refused_required, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_TLS_FAILED);
	assert_int_equal(r.end_reply.code, 454);

	p.tls_required = false;
	RUN(&r, &p, broken, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_TLS_FAILED);
	assert_int_equal(r.ready_calls, 0);
}

/* RFC 3207 §4.2: what the server sent after 220, before the handshake, is
 * dropped (here a fake EHLO reply that would offer AUTH PLAIN in clear). */
static void test_starttls_injection(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n250 injected\r\n"),
		TLS(),
		RECV(EHLO), SEND("250 mx.remote.test\r\n"),
		QUIT_OK,
	};
	struct smtp_client_params p = default_params();
	struct tls_arg t;
	struct run r;

	tls_params(&p, &t, TLS_VERIFY_NONE, "mx.remote.test");
	RUN(&r, &p, steps, NULL, 0);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_true(r.info.tls);
}

/* A message over TLS, pipelined. */
static void test_starttls_message(void **state)
{
	static const struct step steps[] = {
		SEND(GREETING), RECV(EHLO), SEND(EHLO_TLS),
		RECV("STARTTLS\r\n"), SEND("220 go\r\n"),
		TLS(),
		RECV(EHLO), SEND("250-mx.remote.test\r\n250 PIPELINING\r\n"),
		RECV("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"),
		RECV("..hi\r\n.\r\n"), SEND("250 2.0.0 tls\r\n"),
		QUIT_OK,
	};
	struct testmsg m;
	struct smtp_client_msg *msgs[] = { &m.m };
	struct smtp_client_params p = default_params();
	struct tls_arg t;
	struct run r;

	msg_init(&m, ".hi\r\n", 5, NULL, 1);
	tls_params(&p, &t, TLS_VERIFY_PKIX, "mx.remote.test");
	p.verify_required = true;
	RUN(&r, &p, steps, msgs, 1);
	assert_int_equal(r.end, SMTP_CLIENT_QUIT);
	assert_result(&m.rcpts[0].result, 250, "2.0.0", "tls");
	msg_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_dot_stuffing),
		cmocka_unit_test(test_data_edges),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_pipelining_no_rcpt),
		cmocka_unit_test(test_pipelining_data_refused),
		cmocka_unit_test(test_mail_refused),
		cmocka_unit_test(test_no_rcpt_accepted),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_421_mid_transaction),
		cmocka_unit_test(test_lost_during_data),
		cmocka_unit_test(test_local_refusals),
		cmocka_unit_test(test_smtputf8_offered),
		cmocka_unit_test(test_injection_refused),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_auth_refused_without_tls),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_greeting_refused),
		cmocka_unit_test(test_protocol_errors),
		cmocka_unit_test(test_tls_missing),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_quit_early_and_free_in_callback),
		cmocka_unit_test(test_starttls_auth_plain),
		cmocka_unit_test(test_starttls_auth_login),
		cmocka_unit_test(test_starttls_unverified),
		cmocka_unit_test(test_starttls_dane),
		cmocka_unit_test(test_starttls_refused_or_failed),
		cmocka_unit_test(test_starttls_injection),
		cmocka_unit_test(test_starttls_message),
	};
	return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
