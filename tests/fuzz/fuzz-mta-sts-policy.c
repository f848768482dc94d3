/*
 * libFuzzer target: MTA-STS parsing (RFC 8461). The input is, at once, a
 * _mta-sts TXT record (mta_sts_txt_parse, mta_sts_txt_is_sts), a policy body
 * (mta_sts_policy_parse), a policy cache file (mta_sts_policy_unformat), and
 * an HTTP response carrying a policy (mta-sts-http.c), the last fed whole and
 * in chunks whose sizes come from the input itself.
 *
 * Invariants: a TXT record that parses claims to be one and has an id of 1-32
 * alphanumerics; a policy that parses has a known mode, max_age within the
 * cap, at most MTA_STS_MX_MAX lower-case patterns that match a host made from
 * them, and mx unless mode is none; formatting it and reading it back gives
 * the same policy; every failure carries a sentence; the HTTP parser gives
 * the same outcome, body and error however the input is cut, and never a body
 * over MTA_STS_POLICY_MAX.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/mta-sts.h"
#include "queue/mta-sts-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_txt(const char *s, size_t size)
{
	char id[33];
	size_t n;

	memset(id, 0xa5, sizeof(id));
	if (mta_sts_txt_parse(s, size, id) != 0)
		return;
	if (!mta_sts_txt_is_sts(s, size))
		__builtin_trap();
	n = strnlen(id, sizeof(id));
	if (n == 0 || n > 32)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
		    (id[i] >= 'A' && id[i] <= 'Z')))
			__builtin_trap();
}

static void
same_policy(const struct mta_sts_policy *a, const struct mta_sts_policy *b)
{
	if (a->mode != b->mode || a->max_age != b->max_age || a->nmx != b->nmx ||
	    strcmp(a->id, b->id) != 0 || a->fetched_at != b->fetched_at)
		__builtin_trap();
	for (size_t i = 0; i < a->nmx; i++)
		if (strcmp(a->mx[i], b->mx[i]) != 0)
			__builtin_trap();
}

static void
check_policy(const char *s, size_t size)
{
	struct mta_sts_policy p, q;
	const char *error = NULL;
	char host[300];

	if (mta_sts_policy_parse(s, size, &p, &error) != 0) {
		if (error == NULL || p.nmx != 0)
			__builtin_trap();
		return;
	}
	if (p.mode > MTA_STS_ENFORCE || p.max_age > MTA_STS_MAX_AGE_MAX || p.nmx > MTA_STS_MX_MAX ||
	    (p.mode != MTA_STS_NONE && p.nmx == 0))
		__builtin_trap();
	for (size_t i = 0; i < p.nmx; i++) {
		const char *m = p.mx[i];
		for (const char *c = m; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				__builtin_trap();
		/* "*.rest" matches "x.rest"; a plain name matches itself, in capitals. */
		snprintf(host, sizeof(host), "%s%s", m[0] == '*' ? "x" : "", m[0] == '*' ? m + 1 : m);
		for (char *c = host; *c != '\0'; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 'a' + 'A');
		if (!mta_sts_mx_match(&p, host))
			__builtin_trap();
	}
	memcpy(p.id, "fuzz1", 6);
	p.fetched_at = 1700000000;
	size_t len = 0;
	char *text = mta_sts_policy_format(&p, &len);
	if (text != NULL) {
		if (mta_sts_policy_unformat(text, len, &q, &error) != 0)
			__builtin_trap();
		same_policy(&p, &q);
		mta_sts_policy_clear(&q);
		free(text);
	}
	mta_sts_policy_clear(&p);
}

static void
check_file(const char *s, size_t size)
{
	struct mta_sts_policy p;
	const char *error = NULL;

	if (mta_sts_policy_unformat(s, size, &p, &error) != 0) {
		if (error == NULL)
			__builtin_trap();
		return;
	}
	mta_sts_policy_clear(&p);
}

struct http_out {
	int rc;
	char error[160];
	char *body;
	size_t bodylen;
};

/* Feeds s in chunks: cut == 0 whole, else sizes taken from the input's bytes. */
static void
http_run(const char *s, size_t size, unsigned cut, struct http_out *o)
{
	static struct mta_sts_http h;
	const char *error = NULL;
	size_t off = 0, k = 0;
	int rc = 0;

	mta_sts_http_init(&h);
	while (off < size && rc == 0) {
		size_t n = cut == 0 ? size - off : 1 + ((unsigned char)s[k++ % size] + cut) % 23;
		if (n > size - off)
			n = size - off;
		/* An exact-size copy: a read past the chunk is caught. */
		char *c = malloc(n);
		if (c == NULL)
			return;
		memcpy(c, s + off, n);
		rc = mta_sts_http_feed(&h, c, n, &error);
		free(c);
		off += n;
	}
	if (rc == 0)
		rc = mta_sts_http_eof(&h, (size & 1) != 0, &error);
	o->rc = rc;
	o->error[0] = '\0';
	o->body = NULL;
	o->bodylen = 0;
	if (rc < 0) {
		if (error == NULL)
			__builtin_trap();
		snprintf(o->error, sizeof(o->error), "%s", error);
	} else if (rc == 1) {
		if (h.bodylen > MTA_STS_POLICY_MAX || h.body[h.bodylen] != '\0')
			__builtin_trap();
		o->body = h.body;
		o->bodylen = h.bodylen;
		h.body = NULL;
	} else {
		__builtin_trap();       /* after the end, 1 or -1 */
	}
	mta_sts_http_clear(&h);
}

static void
check_http(const char *s, size_t size)
{
	struct http_out whole, cut;

	http_run(s, size, 0, &whole);
	for (unsigned c = 1; c <= 2; c++) {
		http_run(s, size, c, &cut);
		if (cut.rc != whole.rc || strcmp(cut.error, whole.error) != 0 ||
		    cut.bodylen != whole.bodylen ||
		    (cut.bodylen > 0 && memcmp(cut.body, whole.body, cut.bodylen) != 0))
			__builtin_trap();
		free(cut.body);
	}
	if (whole.rc == 1)
		check_policy(whole.body, whole.bodylen);
	free(whole.body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size > 0 ? size : 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	check_txt(s, size);
	check_policy(s, size);
	check_file(s, size);
	check_http(s, size);
	free(s);
	return 0;
}
