/*
 * dkimbench — DKIM signatures and verifications per second through Rampart's
 * own code path (mailauth/dkim.h), for one message, with ed25519-sha256 and
 * rsa-sha256. Built and run by bench/mailauth/run.py, which links it against the
 * static libraries of a build directory.
 *
 *   dkimbench [-s SECONDS] [-r RUNS] [-b RSA_BITS] [-m MESSAGE_FILE] [-k TMPDIR]
 *   dkimbench -w FILE      writes the built-in 10 KiB message to FILE and exits
 *
 * Signing, per operation: dkim_sign_new, dkim_sign_feed (the whole message),
 * dkim_sign_finish, dkim_sign_digest, dkim_key_sign_digest, dkim_sign_header —
 * what the keys process and the queue do together for one message.
 * Verifying, per operation: dkim_verify_new, feed, finish, a fresh dns_view on a
 * static zone holding the key's TXT record, dkim_verify_step until done, and a
 * check that the result is "pass" — once with no key cache (the key record is
 * parsed and the key set up every time: a first message from a signer), once
 * with a struct dkim_key_cache (the steady state of a daemon that keeps one per
 * process: the record is still parsed, the key is found by its p= octets).
 *
 * Also measured: SHA-256 of the whole message (EVP_Digest), the part of the
 * DKIM work no implementation can skip (the body hash, RFC 6376 §3.7), and the
 * primitive Rampart itself calls (dkim_key_sign_digest() and
 * dkim_pubkey_verify() over a 32-octet digest: libsodium for Ed25519; for RSA
 * OpenSSL, or rsa-ifma.c to verify on CPUs with AVX-512 IFMA), from which
 * run.py derives what DKIM adds to it.
 *
 * Each run lasts SECONDS; a rate is operations / user CPU seconds of this
 * process (what `openssl speed` divides by, unless -elapsed), and the wall-clock
 * rate is given too. Output: one JSON object on stdout.
 */
#include "dns/dns.h"
#include "mailauth/dkim-private.h"
#include "mailauth/dkim.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 32

struct rate {
	double cpu[MAX_RUNS], wall[MAX_RUNS];
};

static double
now_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now_user(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
}

static void
die(const char *what, const char *error)
{
	fprintf(stderr, "dkimbench: %s: %s\n", what, error != NULL ? error : "failed");
	exit(1);
}

/* A 10 KiB message: the usual header fields and 72-character body lines. */
static char *
make_message(size_t size, size_t *len_r)
{
	char *m = malloc(size + 128);
	if (m == NULL)
		die("malloc", NULL);
	int n = snprintf(m, size, "From: Alice <alice@example.com>\r\n"
	    "To: Bob <bob@example.org>\r\nSubject: A benchmark message\r\n"
	    "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
	    "Message-ID: <bench.1@example.com>\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	size_t len = (size_t)n, line = 0;
	while (len + 74 <= size) {
		for (int i = 0; i < 72; i++)
			m[len++] = (char)('a' + (line * 7 + (size_t)i) % 26);
		m[len++] = '\r';
		m[len++] = '\n';
		line++;
	}
	while (len + 2 < size)
		m[len++] = 'z';
	m[len++] = '\r';
	m[len++] = '\n';
	*len_r = len;
	return m;
}

static char *
read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		die(path, "cannot open");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap != 0 ? cap * 2 : 65536;
			if (cap > (64u << 20) || (buf = realloc(buf, cap)) == NULL)
				die(path, "too large");
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	*len_r = len;
	return buf;
}

/* One signature: returns the DKIM-Signature field (malloc'd). */
static char *
sign_once(const struct dkim_sign_params *p, const struct dkim_key *key, const char *msg,
    size_t len)
{
	const char *error = NULL;
	unsigned char digest[32], sig[512];
	size_t siglen = 0;
	struct dkim_sign *s = dkim_sign_new(p, &error);
	if (s == NULL)
		die("dkim_sign_new", error);
	dkim_sign_feed(s, msg, len);
	dkim_sign_finish(s);
	if (dkim_sign_digest(s, digest, &error) < 0)
		die("dkim_sign_digest", error);
	if (dkim_key_sign_digest(key, digest, sig, &siglen, &error) < 0)
		die("dkim_key_sign_digest", error);
	char *field = dkim_sign_header(s, sig, siglen);
	if (field == NULL)
		die("dkim_sign_header", NULL);
	dkim_sign_free(&s);
	return field;
}

/* One verification (keys from cache; NULL: none); returns the first
 * signature's status. */
static enum dkim_status
verify_once(const struct dns_zone *zone, const char *msg, size_t len,
    struct dkim_key_cache *cache)
{
	struct dkim_verify *v = dkim_verify_new_cached(time(NULL), cache);
	dkim_verify_feed(v, msg, len);
	dkim_verify_finish(v);
	struct dns_view *view = dns_view_new(zone);
	int done = 0;
	for (int i = 0; i < 16 && done == 0; i++)
		done = dkim_verify_step(view, v);
	enum dkim_status st = DKIM_STATUS_TEMPERROR;
	if (done == 1 && dkim_verify_count(v) > 0)
		st = dkim_verify_result(v, 0)->status;
	dns_view_free(&view);
	dkim_verify_free(&v);
	return st;
}

struct algo {
	const char *name;             /* a= */
	enum dkim_key_type type;
	struct dkim_key *key;
	struct dns_zone *zone;
	char *signed_msg;
	size_t signed_len;
	struct dkim_pubkey *pub;      /* the published key, for the bare primitive */
	struct rate sign, verify, verify_cached, prim_sign, prim_verify;
};

/* The zone line for sel._domainkey.example.com with the TXT split into
 * strings of at most 255 octets (RFC 1035 §3.3.14). */
static char *
zone_text(const char *selector, const char *txt)
{
	size_t len = strlen(txt);
	char *z = malloc(len + len / 255 * 3 + 128), *p = z;
	if (z == NULL)
		die("malloc", NULL);
	p += sprintf(p, "%s._domainkey.example.com. 300 IN TXT", selector);
	for (size_t off = 0; off < len; off += 255)
		p += sprintf(p, " \"%.*s\"", (int)(len - off < 255 ? len - off : 255), txt + off);
	strcpy(p, "\n");
	return z;
}

static void
setup(struct algo *a, const char *selector, unsigned bits, const char *dir, const char *msg,
    size_t len)
{
	const char *error = NULL;
	char path[4096], *txt = NULL;
	snprintf(path, sizeof(path), "%s/%s.key", dir, selector);
	unlink(path);
	if (dkim_key_generate(a->type, bits, path, &txt, &error) < 0)
		die("dkim_key_generate", error);
	if ((a->key = dkim_key_load(path, &error)) == NULL)
		die("dkim_key_load", error);
	unlink(path);
	struct dkim_keyrec *rec = malloc(sizeof(*rec));
	if (rec == NULL || dkim_keyrec_parse(rec, txt, strlen(txt), &error) < 0 ||
	    (a->pub = dkim_pubkey_new(a->type, rec->p, rec->p_len, &error)) == NULL)
		die("the published key", error);
	free(rec);
	char *zt = zone_text(selector, txt);
	if ((a->zone = dns_zone_parse(zt, strlen(zt), &error)) == NULL)
		die("dns_zone_parse", error);
	free(zt);
	free(txt);
	struct dkim_sign_params p = { .domain = "example.com", .selector = selector,
	    .type = a->type, .timestamp = time(NULL) };
	char *field = sign_once(&p, a->key, msg, len);
	a->signed_len = strlen(field) + len;
	if ((a->signed_msg = malloc(a->signed_len)) == NULL)
		die("malloc", NULL);
	memcpy(a->signed_msg, field, strlen(field));
	memcpy(a->signed_msg + strlen(field), msg, len);
	free(field);
	enum dkim_status st = verify_once(a->zone, a->signed_msg, a->signed_len, NULL);
	if (st != DKIM_STATUS_PASS)
		die(a->name, "the benchmark message does not verify (dkim is not implemented yet?)");
}

/* What one timed operation needs. */
struct op_ctx {
	struct algo *a;
	const struct dkim_sign_params *params;
	const char *msg;
	size_t len;
	struct dkim_key_cache *cache;
	unsigned char digest[32], sig[512];
	size_t siglen;
};

static void
op_sign(struct op_ctx *c)
{
	free(sign_once(c->params, c->a->key, c->msg, c->len));
}

static void
op_verify(struct op_ctx *c)
{
	if (verify_once(c->a->zone, c->a->signed_msg, c->a->signed_len, NULL) != DKIM_STATUS_PASS)
		die(c->a->name, "a verification did not pass");
}

/* Steady state: the key is in the process's cache (one miss per run at most). */
static void
op_verify_cached(struct op_ctx *c)
{
	if (verify_once(c->a->zone, c->a->signed_msg, c->a->signed_len, c->cache) !=
	    DKIM_STATUS_PASS)
		die(c->a->name, "a cached verification did not pass");
}

/* The primitive alone, over a digest, as Rampart calls it. */
static void
op_prim_sign(struct op_ctx *c)
{
	const char *error = NULL;
	if (dkim_key_sign_digest(c->a->key, c->digest, c->sig, &c->siglen, &error) < 0)
		die("dkim_key_sign_digest", error);
}

static void
op_prim_verify(struct op_ctx *c)
{
	const char *error = NULL;
	if (dkim_pubkey_verify(c->a->pub, c->digest, c->sig, c->siglen, &error) < 0)
		die("dkim_pubkey_verify", error);
}

/* Runs op for seconds; the rates go to r[run]. */
static void
timed(void (*op)(struct op_ctx *), struct op_ctx *c, double seconds, struct rate *r, int run)
{
	long n = 0;
	double w0 = now_wall(), u0 = now_user(), w1;
	do {
		op(c);
		n++;
	} while ((w1 = now_wall()) - w0 < seconds);
	r->wall[run] = (double)n / (w1 - w0);
	r->cpu[run] = (double)n / (now_user() - u0);
}

static void
measure(struct algo *a, int run, double seconds, const char *selector, const char *msg,
    size_t len, struct dkim_key_cache *cache)
{
	struct dkim_sign_params p = { .domain = "example.com", .selector = selector,
	    .type = a->type, .timestamp = time(NULL) };
	struct op_ctx c = { .a = a, .params = &p, .msg = msg, .len = len, .cache = cache,
	    .digest = { 1, 2, 3 } };

	timed(op_sign, &c, seconds, &a->sign, run);
	timed(op_verify, &c, seconds, &a->verify, run);
	timed(op_verify_cached, &c, seconds, &a->verify_cached, run);
	op_prim_sign(&c);        /* a signature for op_prim_verify */
	timed(op_prim_sign, &c, seconds / 2, &a->prim_sign, run);
	timed(op_prim_verify, &c, seconds / 2, &a->prim_verify, run);
}

/* SHA-256 of the message per second (user CPU). */
static double
sha256_rate(const char *msg, size_t len, double seconds)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	long n = 0;
	double w0 = now_wall(), u0 = now_user();
	do {
		if (EVP_Digest(msg, len, md, &mdlen, EVP_sha256(), NULL) != 1)
			die("EVP_Digest", NULL);
		n++;
	} while (now_wall() - w0 < seconds);
	return (double)n / (now_user() - u0);
}

static void
print_list(const char *name, const double *v, int runs, const char *sep)
{
	printf("\"%s\": [", name);
	for (int i = 0; i < runs; i++)
		printf("%s%.1f", i > 0 ? ", " : "", v[i]);
	printf("]%s", sep);
}

int
main(int argc, char **argv)
{
	double seconds = 2;
	int runs = 5, opt;
	unsigned bits = 2048;
	const char *msg_file = NULL, *tmp = NULL, *write_to = NULL;
	while ((opt = getopt(argc, argv, "s:r:b:m:k:w:")) != -1) {
		switch (opt) {
		case 's': seconds = atof(optarg); break;
		case 'r': runs = atoi(optarg); break;
		case 'b': bits = (unsigned)atoi(optarg); break;
		case 'm': msg_file = optarg; break;
		case 'k': tmp = optarg; break;
		case 'w': write_to = optarg; break;
		default:
			fprintf(stderr, "usage: dkimbench [-s SECONDS] [-r RUNS] [-b RSA_BITS] "
			    "[-m MESSAGE] [-k TMPDIR] | -w FILE\n");
			return 2;
		}
	}
	if (write_to != NULL) {
		size_t wlen;
		char *w = make_message(10240, &wlen);
		FILE *f = fopen(write_to, "wb");
		if (f == NULL || fwrite(w, 1, wlen, f) != wlen || fclose(f) != 0)
			die(write_to, "cannot write");
		free(w);
		return 0;
	}
	if (runs < 1 || runs > MAX_RUNS || seconds <= 0)
		die("options", "1..32 runs of a positive number of seconds");
	char dirbuf[] = "/tmp/dkimbench.XXXXXX";
	const char *dir = tmp != NULL ? tmp : mkdtemp(dirbuf);
	if (dir == NULL)
		die("mkdtemp", NULL);
	size_t len;
	char *msg = msg_file != NULL ? read_file(msg_file, &len) : make_message(10240, &len);

	static struct algo algos[] = {
		{ .name = "ed25519-sha256", .type = DKIM_KEY_ED25519 },
		{ .name = "rsa-sha256", .type = DKIM_KEY_RSA },
	};
	static const char *const selectors[] = { "benche", "benchr" };
	for (int i = 0; i < 2; i++)
		setup(&algos[i], selectors[i], bits, dir, msg, len);
	if (tmp == NULL)
		rmdir(dir);
	/* Runs alternate between the algorithms, so a busy moment on the machine
	 * does not land on one of them only. */
	struct dkim_key_cache *cache = dkim_key_cache_new(0);
	if (cache == NULL)
		die("dkim_key_cache_new", NULL);
	for (int r = 0; r < runs; r++)
		for (int i = 0; i < 2; i++)
			measure(&algos[i], r, seconds, selectors[i], msg, len, cache);
	dkim_key_cache_free(&cache);

	double sha[MAX_RUNS];
	for (int r = 0; r < runs; r++)
		sha[r] = sha256_rate(msg, len, seconds / 2);
	printf("{\"message_octets\": %zu, \"rsa_bits\": %u, \"seconds\": %.2f, \"runs\": %d,\n",
	    len, bits, seconds, runs);
	putchar(' ');
	print_list("sha256_message_cpu", sha, runs, ",\n");
	for (int i = 0; i < 2; i++) {
		printf(" \"%s\": {", algos[i].name);
		print_list("sign_cpu", algos[i].sign.cpu, runs, ", ");
		print_list("sign_wall", algos[i].sign.wall, runs, ", ");
		print_list("verify_cpu", algos[i].verify.cpu, runs, ", ");
		print_list("verify_wall", algos[i].verify.wall, runs, ", ");
		print_list("verify_cached_cpu", algos[i].verify_cached.cpu, runs, ", ");
		print_list("verify_cached_wall", algos[i].verify_cached.wall, runs, ", ");
		print_list("prim_sign_cpu", algos[i].prim_sign.cpu, runs, ", ");
		print_list("prim_verify_cpu", algos[i].prim_verify.cpu, runs, "");
		printf("}%s\n", i == 0 ? "," : "}");
		dkim_key_free(&algos[i].key);
		dkim_pubkey_free(&algos[i].pub);
		dns_zone_free(&algos[i].zone);
		free(algos[i].signed_msg);
	}
	free(msg);
	return 0;
}
