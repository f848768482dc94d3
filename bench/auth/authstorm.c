/*
 * authstorm — the SMTP AUTH load generator of bench/auth, in C (OpenSSL, epoll),
 * so that the client's TLS costs little next to the server's on a shared
 * machine. One single-threaded process; bench/auth/run.py starts several.
 *
 * Every session: TCP connect from a chosen source address (127.x.y.z), TLS
 * (implicit, or STARTTLS with -s), EHLO, then by mode:
 *   login   closed loop: CLIENTS sessions at a time, each AUTH PLAIN (RFC 4616)
 *           with an initial response (RFC 4954 §4) and QUIT, each login a new
 *           connection, over the (source, user, password) lines of PAIRFILE, each
 *           line used at most BUDGET times, from START for SECONDS;
 *   probe   open loop: a login every 1/RATE s from START for SECONDS, from the
 *           first line of PAIRFILE, each timed from before connect to its reply;
 *   attack  CONNS connections with up to DEPTH wrong AUTH PLAIN outstanding each,
 *           RATE attempts per second in all (open-loop slots; a slot with no
 *           connection ready is lost, not sent later), PER_CONN attempts per
 *           connection, then QUIT and a new source address (INDEX, INDEX+NPROCS,
 *           ... of the sequence attack_address() describes, from BASE).
 * At the end one JSON object on stdout, in the shapes bench/auth/authload.py
 * returns. The benchmark's password is given in PAIRFILE, never on the command
 * line (ps).
 *
 * Build: cc -O2 -o authstorm authstorm.c -lssl -lcrypto (run.py does it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LINE_MAX_LEN 1024
#define IN_SIZE 8192
#define OUT_SIZE 2048
#define MAX_PAIRS 4096
#define MAX_USERS 16
#define MAX_BINS 4096
#define MAX_SAMPLES 200000
#define SESSION_TIMEOUT 30.0

enum mode { MODE_LOGIN, MODE_PROBE, MODE_ATTACK };

enum state {
	ST_CONNECTING,
	ST_HANDSHAKE,
	ST_GREET,
	ST_EHLO,
	ST_STARTTLS,
	ST_AUTH,      /* login/probe: waiting for the AUTH reply */
	ST_ATTACK,    /* attack: sending and reading AUTH replies */
	ST_QUIT,
};

struct conn {
	int fd;
	SSL *ssl;
	enum state st;
	bool tls, want_write, in_ready_list, reported;
	char in[IN_SIZE];
	size_t inlen;
	char out[OUT_SIZE];
	size_t outlen;
	double t0, t_auth, sched;  /* monotonic start, AUTH sent; probe: scheduled (epoch) */
	int pair;
	int sent, outstanding;
	char src[32];
	struct conn *next_ready;
	struct conn *next_all, **prevp_all;   /* every open connection, to free at the end */
};

struct pair {
	char src[32], user[256], pass[256];
	int uses;
};

struct sample {
	double sched, lat, auth_lat;
	int code;
	char err[48];
};

static struct {
	enum mode mode;
	int port;
	bool starttls;
	double start, seconds, rate;
	int clients, budget, conns, depth, per_conn, index, nprocs;
	long base;
	bool narrow;
	char domain[128];
	char users[MAX_USERS][256];
	int nusers;
	struct pair pairs[MAX_PAIRS];
	int npairs, next_pair;
	bool exhausted;
} cfg = {
	.port = 0, .clients = 16, .budget = 50, .conns = 500, .depth = 1, .per_conn = 40,
	.nprocs = 1, .rate = 1000, .seconds = 10, .domain = "example.test",
};

static SSL_CTX *ctx;
static int ep;
static int active;          /* sessions open */
static struct conn *ready_head, *ready_tail;
static struct conn *all_conns;

/* results */
static long ok_count, sent_total, conns_opened, closed_by_server;
static long fail_codes[600], reply_codes[600];
static long sent_bins[MAX_BINS], reply_bins[MAX_BINS];
static long conn_fail_connect, conn_fail_tls, conn_fail_greeting, conn_fail_other;
static double *lat, *auth_lat;
static long nlat;
static struct sample *samples;
static long nsamples;
static double last_ok;
static char first_error[256];

static double
now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now_epoch(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
bin_of(double epoch)
{
	long b = (long)(epoch - cfg.start);
	if (b < 0)
		b = 0;
	if (b >= MAX_BINS)
		b = MAX_BINS - 1;
	return (int)b;
}

/* The k-th attacker address; the same sequence as authload.attack_address(). */
static void
attack_address(long k, char *buf, size_t size)
{
	if (cfg.narrow || k % 16 == 0) {
		long j = cfg.narrow ? k : k / 16;
		snprintf(buf, size, "127.0.0.%ld", 2 + j % 253);
		return;
	}
	k -= k / 16 + 1;
	long a = 1 + k % 63;
	k /= 63;
	long b = k % 256;
	k /= 256;
	long c = 1 + k % 254;
	snprintf(buf, size, "127.%ld.%ld.%ld", a, b, c);
}

/* "AUTH PLAIN base64(\0user\0pass)\r\n" into out; its length. */
static size_t
auth_plain(char *out, size_t size, const char *user, const char *pass)
{
	unsigned char raw[600];
	size_t ul = strlen(user), pl = strlen(pass);
	if (ul + pl + 2 > sizeof(raw) || size < 16 + 4 * ((ul + pl + 4) / 3) + 4)
		return 0;
	raw[0] = 0;
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = 0;
	memcpy(raw + 2 + ul, pass, pl);
	memcpy(out, "AUTH PLAIN ", 11);
	int n = EVP_EncodeBlock((unsigned char *)out + 11, raw, (int)(ul + pl + 2));
	memcpy(out + 11 + n, "\r\n", 2);
	return 11 + (size_t)n + 2;
}

static void
note_error(const char *src, const char *what)
{
	if (first_error[0] == '\0')
		snprintf(first_error, sizeof(first_error), "%s: %s", src, what);
}

/* ---- connection plumbing ---- */

static void
set_events(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	if (c->want_write || c->st == ST_CONNECTING)
		ev.events |= EPOLLOUT;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
ready_remove(struct conn *c)
{
	if (!c->in_ready_list)
		return;
	struct conn **pp = &ready_head, *prev = NULL;
	while (*pp != NULL && *pp != c) {
		prev = *pp;
		pp = &(*pp)->next_ready;
	}
	if (*pp == c) {
		*pp = c->next_ready;
		if (ready_tail == c)
			ready_tail = prev;
	}
	c->next_ready = NULL;
	c->in_ready_list = false;
}

static void
ready_push(struct conn *c)
{
	if (c->in_ready_list || c->st != ST_ATTACK || c->outstanding >= cfg.depth ||
	    c->sent >= cfg.per_conn)
		return;
	c->next_ready = NULL;
	if (ready_tail != NULL)
		ready_tail->next_ready = c;
	else
		ready_head = c;
	ready_tail = c;
	c->in_ready_list = true;
}

static void conn_start(void);

static void
conn_close(struct conn *c)
{
	ready_remove(c);
	if (c->ssl != NULL) {
		SSL_set_quiet_shutdown(c->ssl, 1);
		SSL_free(c->ssl);
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	*c->prevp_all = c->next_all;
	if (c->next_all != NULL)
		c->next_all->prevp_all = c->prevp_all;
	free(c);
	active--;
}

/* Writes what is buffered; false when the connection failed. */
static bool
conn_flush(struct conn *c)
{
	while (c->outlen > 0) {
		int n;
		if (c->tls) {
			n = SSL_write(c->ssl, c->out, (int)c->outlen);
			if (n <= 0) {
				int e = SSL_get_error(c->ssl, n);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					c->want_write = true;
					set_events(c);
					return true;
				}
				return false;
			}
		} else {
			n = (int)write(c->fd, c->out, c->outlen);
			if (n < 0) {
				if (errno == EAGAIN) {
					c->want_write = true;
					set_events(c);
					return true;
				}
				return false;
			}
		}
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	if (c->want_write) {
		c->want_write = false;
		set_events(c);
	}
	return true;
}

static bool
conn_send(struct conn *c, const char *data, size_t len)
{
	if (c->outlen + len > sizeof(c->out))
		return false;
	memcpy(c->out + c->outlen, data, len);
	c->outlen += len;
	return conn_flush(c);
}

static bool
conn_handshake(struct conn *c)
{
	int r = SSL_connect(c->ssl);
	if (r == 1) {
		c->tls = true;
		c->want_write = false;
		if (cfg.starttls) {
			c->st = ST_EHLO;
			return conn_send(c, "EHLO bench.localdomain\r\n", 24);
		}
		c->st = ST_GREET;
		set_events(c);
		return true;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		c->want_write = e == SSL_ERROR_WANT_WRITE;
		set_events(c);
		return true;
	}
	conn_fail_tls++;
	note_error(c->src, "TLS handshake failed");
	return false;
}

static bool
conn_tls_begin(struct conn *c)
{
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL)
		return false;
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, "bench.localdomain");
	c->st = ST_HANDSHAKE;
	return conn_handshake(c);
}

static struct conn *
conn_open(const char *src)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	snprintf(c->src, sizeof(c->src), "%s", src);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		free(c);
		conn_fail_other++;
		return NULL;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, src, &sa.sin_addr);
	struct sockaddr_in da = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port) };
	inet_pton(AF_INET, "127.0.0.1", &da.sin_addr);
	if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    (connect(c->fd, (struct sockaddr *)&da, sizeof(da)) < 0 && errno != EINPROGRESS)) {
		note_error(src, strerror(errno));
		close(c->fd);
		free(c);
		conn_fail_connect++;
		return NULL;
	}
	c->st = ST_CONNECTING;
	c->t0 = now_mono();
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	c->next_all = all_conns;
	if (all_conns != NULL)
		all_conns->prevp_all = &c->next_all;
	c->prevp_all = &all_conns;
	all_conns = c;
	active++;
	return c;
}

/* ---- the modes' decisions ---- */

static void
login_result(struct conn *c, int code, const char *err)
{
	if (c->reported)
		return;   /* one result per login */
	c->reported = true;
	double t = now_mono();
	double l = t - c->t0, al = c->st == ST_AUTH ? t - c->t_auth : 0.0;
	if (cfg.mode == MODE_PROBE) {
		if (nsamples < MAX_SAMPLES) {
			struct sample *s = &samples[nsamples++];
			s->sched = c->sched;
			s->code = code;
			s->lat = l;
			s->auth_lat = code == 235 ? al : 0.0;
			snprintf(s->err, sizeof(s->err), "%s", err);
		}
		return;
	}
	if (code == 235) {
		if (now_epoch() <= cfg.start + cfg.seconds) {
			ok_count++;
			if (nlat < MAX_SAMPLES) {
				lat[nlat] = l;
				auth_lat[nlat++] = al;
			}
			last_ok = now_epoch();
		}
	} else {
		fail_codes[code >= 0 && code < 600 ? code : 0]++;
		note_error(c->src, err);
	}
}

/* The session reached the point where it acts (after EHLO). */
static bool
session_ready(struct conn *c)
{
	if (cfg.mode == MODE_ATTACK) {
		c->st = ST_ATTACK;
		conns_opened++;
		ready_push(c);
		return true;
	}
	char buf[OUT_SIZE];
	struct pair *p = &cfg.pairs[c->pair];
	size_t n = auth_plain(buf, sizeof(buf), p->user, p->pass);
	c->st = ST_AUTH;
	c->t_auth = now_mono();
	return n > 0 && conn_send(c, buf, n);
}

static bool
attack_send(struct conn *c)
{
	char user[300], pass[16], buf[OUT_SIZE];
	static const char alphabet[] = "abcdefghijkmnopqrstuvwxyz0123456789";
	for (int i = 0; i < 12; i++)
		pass[i] = alphabet[(unsigned)random() % (sizeof(alphabet) - 1)];
	pass[12] = '\0';
	if (cfg.nusers > 0 && random() % 2 == 0)
		snprintf(user, sizeof(user), "%s", cfg.users[random() % cfg.nusers]);
	else
		snprintf(user, sizeof(user), "guess%ld@%s", random() % 1000000, cfg.domain);
	size_t n = auth_plain(buf, sizeof(buf), user, pass);
	c->sent++;
	c->outstanding++;
	sent_total++;
	sent_bins[bin_of(now_epoch())]++;
	return n > 0 && conn_send(c, buf, n);
}

/* One complete reply (its last line) arrived; false: close the connection. */
static bool
on_reply(struct conn *c, int code, const char *line)
{
	switch (c->st) {
	case ST_GREET:
		if (code != 220) {
			conn_fail_greeting++;
			note_error(c->src, line);
			if (cfg.mode != MODE_ATTACK)
				login_result(c, 0, line);
			return false;
		}
		c->st = ST_EHLO;
		return conn_send(c, "EHLO bench.localdomain\r\n", 24);
	case ST_EHLO:
		if (code != 250) {
			conn_fail_other++;
			note_error(c->src, line);
			if (cfg.mode != MODE_ATTACK)
				login_result(c, 0, line);
			return false;
		}
		if (cfg.starttls && !c->tls) {
			c->st = ST_STARTTLS;
			return conn_send(c, "STARTTLS\r\n", 10);
		}
		return session_ready(c);
	case ST_STARTTLS:
		if (code != 220) {
			conn_fail_other++;
			if (cfg.mode != MODE_ATTACK)
				login_result(c, 0, line);
			return false;
		}
		return conn_tls_begin(c);
	case ST_AUTH:
		login_result(c, code, line);
		if (code != 235)
			return false;
		c->st = ST_QUIT;
		return conn_send(c, "QUIT\r\n", 6);
	case ST_ATTACK:
		if (code == 221)
			return false;
		if (code == 421) {
			/* Follows the 535 of the last allowed failure: not an answer of its own. */
			closed_by_server++;
			return false;
		}
		reply_codes[code >= 0 && code < 600 ? code : 0]++;
		reply_bins[bin_of(now_epoch())]++;
		c->outstanding--;
		if (c->sent >= cfg.per_conn && c->outstanding == 0) {
			c->st = ST_QUIT;
			return conn_send(c, "QUIT\r\n", 6);
		}
		ready_push(c);
		return true;
	case ST_QUIT:
		return false;
	case ST_CONNECTING:
	case ST_HANDSHAKE:
		break;
	}
	return false;
}

/* Reads what is there and handles every complete reply; false: close. */
static bool
conn_read(struct conn *c)
{
	for (;;) {
		int n;
		if (c->inlen >= sizeof(c->in) - 1)
			return false;
		if (c->tls) {
			n = SSL_read(c->ssl, c->in + c->inlen, (int)(sizeof(c->in) - 1 - c->inlen));
			if (n <= 0) {
				int e = SSL_get_error(c->ssl, n);
				if (e == SSL_ERROR_WANT_READ)
					break;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->want_write = true;
					set_events(c);
					break;
				}
				return false;
			}
		} else {
			n = (int)read(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);
			if (n == 0)
				return false;
			if (n < 0) {
				if (errno == EAGAIN)
					break;
				return false;
			}
		}
		c->inlen += (size_t)n;
		/* Complete lines; a reply ends with "NNN " (RFC 5321 §4.2.1). */
		size_t start = 0;
		for (size_t i = 0; i < c->inlen; i++) {
			if (c->in[i] != '\n')
				continue;
			char line[LINE_MAX_LEN];
			size_t len = i + 1 - start;
			if (len >= sizeof(line))
				len = sizeof(line) - 1;
			memcpy(line, c->in + start, len);
			line[len] = '\0';
			line[strcspn(line, "\r\n")] = '\0';
			start = i + 1;
			if (strlen(line) >= 4 && line[3] == '-')
				continue;
			int code = atoi(line);
			enum state before = c->st;
			if (!on_reply(c, code, line))
				return false;
			if (before == ST_STARTTLS) {
				/* RFC 3207 §4.2: nothing read before TLS counts after it. */
				c->inlen = 0;
				return true;
			}
		}
		memmove(c->in, c->in + start, c->inlen - start);
		c->inlen -= start;
	}
	return true;
}

static void
conn_event(struct conn *c, uint32_t events)
{
	bool ok = true;
	if (c->st == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			conn_fail_connect++;
			note_error(c->src, strerror(err));
			if (cfg.mode != MODE_ATTACK)
				login_result(c, 0, strerror(err));
			conn_close(c);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		if (cfg.starttls) {
			c->st = ST_GREET;
			set_events(c);
			return;
		}
		ok = conn_tls_begin(c);
	} else if (c->st == ST_HANDSHAKE) {
		ok = conn_handshake(c);
	} else {
		if (c->want_write && (events & (EPOLLOUT | EPOLLIN)))
			ok = conn_flush(c);
		if (ok && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			ok = conn_read(c);
	}
	if (!ok) {
		if (cfg.mode != MODE_ATTACK && (c->st == ST_HANDSHAKE || c->st == ST_GREET ||
		    c->st == ST_EHLO || c->st == ST_AUTH))
			login_result(c, 0, "connection closed");
		conn_close(c);
	}
}

/* ---- what starts sessions ---- */

static long attack_k;

static void
conn_start(void)
{
	if (cfg.mode == MODE_ATTACK) {
		char src[32];
		attack_address(cfg.base + cfg.index + attack_k * cfg.nprocs, src, sizeof(src));
		attack_k++;
		conn_open(src);
		return;
	}
	/* login: the next pair with budget left */
	for (int tries = 0; tries < cfg.npairs; tries++) {
		int i = cfg.next_pair++ % cfg.npairs;
		if (cfg.pairs[i].uses < cfg.budget) {
			cfg.pairs[i].uses++;
			struct conn *c = conn_open(cfg.pairs[i].src);
			if (c != NULL)
				c->pair = i;
			else
				login_result(&(struct conn){ .t0 = now_mono() }, 0, "connect failed");
			return;
		}
	}
	cfg.exhausted = true;
}

static int
load_pairs(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char line[1024];
	while (cfg.npairs < MAX_PAIRS && fgets(line, sizeof(line), f) != NULL) {
		struct pair *p = &cfg.pairs[cfg.npairs];
		if (sscanf(line, "%31s %255s %255s", p->src, p->user, p->pass) == 3)
			cfg.npairs++;
	}
	fclose(f);
	return cfg.npairs > 0 ? 0 : -1;
}

static void
print_json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
print_codes(const char *name, const long *codes)
{
	printf("\"%s\": {", name);
	bool first = true;
	for (int i = 0; i < 600; i++) {
		if (codes[i] == 0)
			continue;
		printf("%s\"%d\": %ld", first ? "" : ", ", i, codes[i]);
		first = false;
	}
	printf("}");
}

static void
print_bins(const char *name, const long *bins, int n)
{
	printf("\"%s\": [", name);
	for (int i = 0; i < n; i++)
		printf("%s%ld", i ? ", " : "", bins[i]);
	printf("]");
}

static double
cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
report(void)
{
	double cpu = cpu_seconds();
	printf("{\"cpu\": %.4f, ", cpu);
	if (cfg.mode == MODE_LOGIN) {
		printf("\"ok\": %ld, \"last\": %.6f, \"exhausted\": %s, ", ok_count, last_ok,
		    cfg.exhausted ? "true" : "false");
		print_codes("fail", fail_codes);
		printf(", \"lat\": [");
		for (long i = 0; i < nlat; i++)
			printf("%s%.6f", i ? ", " : "", lat[i]);
		printf("], \"auth_lat\": [");
		for (long i = 0; i < nlat; i++)
			printf("%s%.6f", i ? ", " : "", auth_lat[i]);
		printf("], ");
	} else if (cfg.mode == MODE_PROBE) {
		printf("\"samples\": [");
		for (long i = 0; i < nsamples; i++) {
			const struct sample *s = &samples[i];
			printf("%s[%.6f, %d, %.6f, %.6f, ", i ? ", " : "", s->sched, s->code, s->lat,
			    s->auth_lat);
			print_json_string(s->err);
			printf("]");
		}
		printf("], ");
	} else {
		int nb = (int)cfg.seconds + 2;
		if (nb > MAX_BINS)
			nb = MAX_BINS;
		printf("\"sent\": %ld, \"conns\": %ld, \"closed_by_server\": %ld, ", sent_total,
		    conns_opened, closed_by_server);
		print_codes("replies", reply_codes);
		printf(", \"conn_fail\": {\"connect\": %ld, \"tls\": %ld, \"greeting\": %ld, "
		    "\"other\": %ld}, ", conn_fail_connect, conn_fail_tls, conn_fail_greeting,
		    conn_fail_other);
		print_bins("sent_bins", sent_bins, nb);
		printf(", ");
		print_bins("reply_bins", reply_bins, nb);
		printf(", ");
	}
	printf("\"errors\": [");
	if (first_error[0] != '\0')
		print_json_string(first_error);
	printf("]}\n");
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: authstorm login|probe|attack -p PORT [-s] [-T START] [-t SECONDS] [-r RATE]\n"
	    "       [-c CLIENTS|CONNS] [-b BUDGET] [-f PAIRFILE] [-d DEPTH] [-k PER_CONN]\n"
	    "       [-U user,user] [-D DOMAIN] [-i INDEX] [-n NPROCS] [-B BASE] [-N (narrow)]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "login") == 0)
		cfg.mode = MODE_LOGIN;
	else if (strcmp(argv[1], "probe") == 0)
		cfg.mode = MODE_PROBE;
	else if (strcmp(argv[1], "attack") == 0)
		cfg.mode = MODE_ATTACK;
	else
		usage();
	const char *pairfile = NULL;
	cfg.start = now_epoch();
	int opt;
	optind = 2;
	while ((opt = getopt(argc, argv, "p:sT:t:r:c:b:f:d:k:U:D:i:n:B:N")) != -1) {
		switch (opt) {
		case 'p': cfg.port = atoi(optarg); break;
		case 's': cfg.starttls = true; break;
		case 'T': cfg.start = atof(optarg); break;
		case 't': cfg.seconds = atof(optarg); break;
		case 'r': cfg.rate = atof(optarg); break;
		case 'c': cfg.clients = cfg.conns = atoi(optarg); break;
		case 'b': cfg.budget = atoi(optarg); break;
		case 'f': pairfile = optarg; break;
		case 'd': cfg.depth = atoi(optarg); break;
		case 'k': cfg.per_conn = atoi(optarg); break;
		case 'U': {
			char *save = NULL;
			for (char *u = strtok_r(optarg, ",", &save); u != NULL && cfg.nusers < MAX_USERS;
			    u = strtok_r(NULL, ",", &save))
				snprintf(cfg.users[cfg.nusers++], sizeof(cfg.users[0]), "%s", u);
			break;
		}
		case 'D': snprintf(cfg.domain, sizeof(cfg.domain), "%s", optarg); break;
		case 'i': cfg.index = atoi(optarg); break;
		case 'n': cfg.nprocs = atoi(optarg); break;
		case 'B': cfg.base = atol(optarg); break;
		case 'N': cfg.narrow = true; break;
		default: usage();
		}
	}
	if (cfg.port <= 0 || cfg.rate <= 0 || cfg.nprocs < 1 || cfg.depth < 1)
		usage();
	if (cfg.mode != MODE_ATTACK && (pairfile == NULL || load_pairs(pairfile) < 0)) {
		fprintf(stderr, "authstorm: no pairs (source user password) in %s\n",
		    pairfile != NULL ? pairfile : "(none)");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);   /* a peer that closed is seen as a write error */
	srandom((unsigned)getpid() ^ (unsigned)(unsigned long long)(now_epoch() * 1000));
	lat = calloc(MAX_SAMPLES, sizeof(*lat));
	auth_lat = calloc(MAX_SAMPLES, sizeof(*auth_lat));
	samples = calloc(MAX_SAMPLES, sizeof(*samples));
	ctx = SSL_CTX_new(TLS_client_method());
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lat == NULL || auth_lat == NULL || samples == NULL || ctx == NULL || ep < 0) {
		fprintf(stderr, "authstorm: cannot initialise\n");
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* Every connection a full handshake, as the Python client does. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

	double mono0 = now_mono(), epoch0 = now_epoch();
	double start_mono = mono0 + (cfg.start - epoch0);
	double end_mono = start_mono + cfg.seconds;
	double interval = 1.0 / cfg.rate;
	double next_slot = start_mono;
	long probes = 0, nprobes = (long)(cfg.rate * cfg.seconds + 0.5);

	/* The attack's connections open before START (the caller leaves time). */
	if (cfg.mode == MODE_ATTACK)
		for (int i = 0; i < cfg.conns; i++)
			conn_start();

	struct epoll_event evs[256];
	for (;;) {
		double t = now_mono();
		bool sending = t < end_mono;
		if (cfg.mode == MODE_LOGIN && sending && t >= start_mono)
			for (int i = 0; active < cfg.clients && !cfg.exhausted && i < 64; i++)
				conn_start();
		if (cfg.mode == MODE_PROBE) {
			while (probes < nprobes && t >= start_mono + (double)probes / cfg.rate) {
				struct conn *c = conn_open(cfg.pairs[0].src);
				double sched = cfg.start + (double)probes / cfg.rate;
				if (c != NULL) {
					c->pair = 0;
					c->sched = sched;
				} else if (nsamples < MAX_SAMPLES) {
					samples[nsamples++] = (struct sample){ .sched = sched, .code = 0 };
				}
				probes++;
			}
		}
		if (cfg.mode == MODE_ATTACK) {
			/* Keep CONNS sessions: a closed one is replaced by a new address. */
			for (int i = 0; sending && active < cfg.conns && i < 64; i++)
				conn_start();
			if (next_slot < t - 0.1)
				next_slot = t - 0.1;   /* catch up on at most 0.1 s of slots */
			while (sending && t >= next_slot && ready_head != NULL) {
				struct conn *c = ready_head;
				ready_remove(c);
				next_slot += interval;
				if (!attack_send(c))
					conn_close(c);
				else
					ready_push(c);
			}
		}
		/* The end. */
		if (cfg.mode == MODE_ATTACK && t >= end_mono + 3.0)
			break;
		if (cfg.mode == MODE_LOGIN && (t >= end_mono || cfg.exhausted) &&
		    (active == 0 || t >= end_mono + SESSION_TIMEOUT))
			break;
		if (cfg.mode == MODE_PROBE && probes >= nprobes &&
		    (active == 0 || t >= end_mono + SESSION_TIMEOUT))
			break;
		int timeout = 50;
		/* Whole milliseconds, rounded up: slots due meanwhile go out together. */
		if (cfg.mode == MODE_ATTACK && sending && ready_head != NULL)
			timeout = next_slot > t ? (int)((next_slot - t) * 1000) + 1 : 0;
		if (cfg.mode == MODE_PROBE && probes < nprobes) {
			double nt = start_mono + (double)probes / cfg.rate - t;
			timeout = nt > 0 ? (int)(nt * 1000) + 1 : 0;
		}
		if (cfg.mode == MODE_LOGIN && t < start_mono)
			timeout = (int)((start_mono - t) * 1000);
		int n = epoll_wait(ep, evs, 256, timeout > 50 ? 50 : timeout);
		for (int i = 0; i < n; i++)
			conn_event(evs[i].data.ptr, evs[i].events);
	}
	report();
	while (all_conns != NULL)
		conn_close(all_conns);
	SSL_CTX_free(ctx);
	close(ep);
	free(lat);
	free(auth_lat);
	free(samples);
	return 0;
}
