/*
 * mta-sts-private — what the files of MTA-STS share and nobody else needs:
 * policy copies and the cache file format (mta-sts.c), the HTTP/1.1 response
 * parser (mta-sts-http.c), the HTTPS fetch (mta-sts-fetch.c), and test hooks
 * of the cache (mta-sts-cache.c).
 */
#ifndef RAMPART_MTA_STS_PRIVATE_H
#define RAMPART_MTA_STS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "queue/mta-sts.h"

struct dns_resolver;
struct event_base;

/* ---- policies (mta-sts.c) ---- */

/* An LDH host name (RFC 5321 §4.1.2 Domain, A-labels only): labels of 1-63
 * letters, digits and inner hyphens, at most 253 octets, no final dot. */
bool mta_sts_domain_valid(const char *s, size_t len);
/* Deep copy into dst (overwritten); -1 when memory runs out (dst cleared). */
int mta_sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src);

/*
 * The cache file of a domain, cache_dir/<domain> (lower case), is text:
 *   id: <the TXT id the policy was fetched for>
 *   fetched_at: <unix time, decimal>
 *   version: STSv1
 *   mode: enforce
 *   max_age: 604800
 *   mx: mx1.example.com
 *   ...
 * that is, two lines of our own followed by the policy as §3.2 writes it (as
 * parsed: max_age capped, mx patterns lower case), so that the same parser
 * reads it back. format: a malloc'd text (NULL when out of memory); unformat:
 * -1 with a sentence when the file is not one.
 */
char *mta_sts_policy_format(const struct mta_sts_policy *p, size_t *len_r);
int mta_sts_policy_unformat(const char *text, size_t len, struct mta_sts_policy *p,
    const char **error_r);

/* ---- the HTTP/1.1 response parser (mta-sts-http.c) ---- */

/* Octets of status line, headers and chunk trailers together (§3.3 does not
 * say; a policy server needs a few hundred). */
#define MTA_STS_HTTP_HEAD_MAX 8192
/* A chunk-size line, extensions included. */
#define MTA_STS_HTTP_CHUNK_LINE_MAX 1024

/*
 * A resumable parser of one HTTP/1.1 response (RFC 9112) to our GET: status
 * line, header fields, then a body delimited by Content-Length, by chunked
 * transfer coding (§7.1), or by the end of the connection. 1xx responses are
 * skipped. It fails as early as it can: a status other than 200 (3xx: RFC
 * 8461 §3.3, redirects are not followed), a Content-Type other than text/plain
 * (parameters allowed), a body larger than MTA_STS_POLICY_MAX, a head larger
 * than MTA_STS_HTTP_HEAD_MAX, obsolete line folding, a transfer coding other
 * than chunked, conflicting Content-Lengths. Lines may end in CRLF or LF.
 */
enum mta_sts_http_state {
	MTA_STS_HTTP_STATUS, MTA_STS_HTTP_HEADER, MTA_STS_HTTP_BODY_LENGTH,
	MTA_STS_HTTP_BODY_CLOSE, MTA_STS_HTTP_CHUNK_SIZE, MTA_STS_HTTP_CHUNK_DATA,
	MTA_STS_HTTP_CHUNK_END, MTA_STS_HTTP_TRAILER, MTA_STS_HTTP_DONE, MTA_STS_HTTP_FAILED,
};

struct mta_sts_http {
	enum mta_sts_http_state state;
	unsigned status;              /* of the final response, once read */
	size_t head;                  /* head octets so far */
	char line[MTA_STS_HTTP_HEAD_MAX + 1];
	size_t linelen;
	bool have_length, chunked, text_plain, have_type;
	uint64_t length;              /* Content-Length */
	uint64_t left;                /* of the body or the current chunk */
	char *body;                   /* MTA_STS_POLICY_MAX + 1 octets, allocated lazily */
	size_t bodylen;
	const char *error;            /* once FAILED: errbuf or a static sentence */
	char errbuf[160];
};

/* Makes h ready for a response. */
void mta_sts_http_init(struct mta_sts_http *h);
void mta_sts_http_clear(struct mta_sts_http *h);
/* Feeds data: 1 when the response is complete (the body is in h->body,
 * NUL-terminated, h->bodylen octets; octets after it are ignored), 0 when more
 * is needed, -1 with a sentence when the response is refused (then again -1 on
 * every later call). */
int mta_sts_http_feed(struct mta_sts_http *h, const char *data, size_t len, const char **error_r);
/* The connection ended (clean: the peer's TLS close_notify was received): 1 when
 * the response is complete (a body read to the end of the connection needs a
 * clean end, RFC 9112 §8 - a truncated policy must not be taken), -1 with a
 * sentence otherwise. */
int mta_sts_http_eof(struct mta_sts_http *h, bool clean, const char **error_r);

/* ---- the HTTPS fetch (mta-sts-fetch.c) ---- */

struct mta_sts_fetch;
/* body: the policy text (NUL-terminated, len octets; the callee takes it and
 * frees it) or NULL with why. Runs once, on the loop, never from inside
 * mta_sts_fetch_start(). */
typedef void mta_sts_fetch_fn(char *body, size_t len, const char *why, void *arg);

/* GET https://mta-sts.<domain>[:port]/.well-known/mta-sts.txt: resolves the host
 * (AAAA then A, through dns), tries its addresses in turn (at most 8), verifies
 * the certificate names the host (PKIX), then reads the response with the
 * parser above. timeout_ms bounds the whole fetch. NULL with a sentence when
 * it could not even start. */
struct mta_sts_fetch *mta_sts_fetch_start(struct event_base *base, struct dns_resolver *dns,
    SSL_CTX *ctx, const char *domain, unsigned port, unsigned timeout_ms,
    mta_sts_fetch_fn *fn, void *arg, const char **error_r);
/* Before fn has run: it never will. */
void mta_sts_fetch_cancel(struct mta_sts_fetch **f);

/* ---- the cache (mta-sts-cache.c): test hooks ---- */

/* The wall clock the cache reads (unix seconds); NULL = the real one. */
typedef int64_t mta_sts_clock_fn(void *arg);
void mta_sts_cache_set_clock(struct mta_sts_cache *c, mta_sts_clock_fn *fn, void *arg);
/* HTTPS fetches started so far. */
unsigned long mta_sts_cache_fetches(const struct mta_sts_cache *c);
/* Domains held in memory. */
size_t mta_sts_cache_count(const struct mta_sts_cache *c);

#endif
