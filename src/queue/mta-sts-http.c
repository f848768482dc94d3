/*
 * mta-sts-http — a resumable parser of the one HTTP/1.1 response an MTA-STS
 * policy fetch reads (RFC 8461 §3.3 over RFC 9112). Bytes in, a body or a
 * refusal out; no I/O. It understands only what that response needs, and
 * refuses the rest rather than guessing: see mta-sts-private.h.
 */
#include "queue/mta-sts-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
http_fail(struct mta_sts_http *h, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
http_fail(struct mta_sts_http *h, const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->errbuf, sizeof(h->errbuf), fmt, ap);
	va_end(ap);
	h->error = h->errbuf;
	h->state = MTA_STS_HTTP_FAILED;
	*error_r = h->error;
	return -1;
}

void
mta_sts_http_init(struct mta_sts_http *h)
{
	memset(h, 0, sizeof(*h));
	h->state = MTA_STS_HTTP_STATUS;
}

void
mta_sts_http_clear(struct mta_sts_http *h)
{
	free(h->body);
	mta_sts_http_init(h);
}

static bool
is_tchar(unsigned char c)
{
	/* RFC 9110 §5.6.2 tchar */
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4) */
static int
on_status(struct mta_sts_http *h, const char *s, size_t len, const char **error_r)
{
	unsigned code;

	if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') ||
	    s[8] != ' ' || s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' ||
	    s[11] < '0' || s[11] > '9' || (len > 12 && s[12] != ' '))
		return http_fail(h, error_r, "the server's answer is not an HTTP/1 status line");
	code = (unsigned)(s[9] - '0') * 100 + (unsigned)(s[10] - '0') * 10 + (unsigned)(s[11] - '0');
	h->status = code;
	if (code == 101)
		return http_fail(h, error_r, "the server switched protocols (HTTP 101)");
	if (code >= 300 && code < 400)
		return http_fail(h, error_r, "the server redirects (HTTP %u), and redirects are "
		    "not followed (RFC 8461 §3.3)", code);
	if (code != 200 && code >= 200)
		return http_fail(h, error_r, "the server answered HTTP %u, not 200", code);
	h->state = MTA_STS_HTTP_HEADER;
	return 0;
}

/* The header section ended (the empty line). */
static int
on_head_end(struct mta_sts_http *h, const char **error_r)
{
	if (h->status < 200) {
		/* A 1xx interim response: its headers mean nothing to us; the
		 * final response follows (RFC 9110 §15.2). */
		h->have_length = h->chunked = h->text_plain = h->have_type = false;
		h->state = MTA_STS_HTTP_STATUS;
		return 0;
	}
	if (!h->have_type)
		return http_fail(h, error_r, "the policy has no Content-Type (RFC 8461 §3.2 "
		    "wants text/plain)");
	if (!h->text_plain)
		return http_fail(h, error_r, "the policy's Content-Type is not text/plain "
		    "(RFC 8461 §3.2)");
	if (h->chunked && h->have_length)
		/* RFC 9112 §6.3 point 3: "ought to be handled as an error". */
		return http_fail(h, error_r, "the response has both Transfer-Encoding and "
		    "Content-Length");
	if ((h->body = malloc(MTA_STS_POLICY_MAX + 1)) == NULL)
		return http_fail(h, error_r, "out of memory for the policy");
	if (h->chunked) {
		h->state = MTA_STS_HTTP_CHUNK_SIZE;
	} else if (h->have_length) {
		h->left = h->length;
		h->state = h->left == 0 ? MTA_STS_HTTP_DONE : MTA_STS_HTTP_BODY_LENGTH;
	} else {
		h->state = MTA_STS_HTTP_BODY_CLOSE;
	}
	return 0;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 §5) */
static int
on_header(struct mta_sts_http *h, const char *s, size_t len, const char **error_r)
{
	size_t colon = 0, v, end = len;

	if (len == 0)
		return on_head_end(h, error_r);
	if (is_ows(s[0]))
		return http_fail(h, error_r, "the response folds a header line (obsolete, RFC "
		    "9112 §5.2)");
	while (colon < len && is_tchar((unsigned char)s[colon]))
		colon++;
	/* §5.1: no white space between the name and the colon. */
	if (colon == 0 || colon == len || s[colon] != ':')
		return http_fail(h, error_r, "the response has a malformed header line");
	for (v = colon + 1; v < len && is_ows(s[v]); v++)
		;
	while (end > v && is_ows(s[end - 1]))
		end--;
	for (size_t i = v; i < end; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return http_fail(h, error_r, "the response has a control character in "
			    "a header");

	const char *val = s + v;
	size_t vlen = end - v;
#define NAME(n) (colon == sizeof(n) - 1 && strncasecmp(s, n, sizeof(n) - 1) == 0)
	if (NAME("Content-Length")) {
		uint64_t n = 0;
		if (vlen == 0)
			return http_fail(h, error_r, "the response has an empty Content-Length");
		for (size_t i = 0; i < vlen; i++) {
			if (val[i] < '0' || val[i] > '9')
				return http_fail(h, error_r, "the response's Content-Length is "
				    "not a number");
			if (n <= MTA_STS_POLICY_MAX)
				n = n * 10 + (uint64_t)(val[i] - '0');
		}
		if (n > MTA_STS_POLICY_MAX)
			return http_fail(h, error_r, "the policy is larger than %d octets",
			    MTA_STS_POLICY_MAX);
		if (h->have_length && h->length != n)
			return http_fail(h, error_r, "the response has two different "
			    "Content-Lengths");
		h->have_length = true;
		h->length = n;
	} else if (NAME("Transfer-Encoding")) {
		/* Only "chunked", once: another coding would need decoding. */
		if (h->chunked || vlen != 7 || strncasecmp(val, "chunked", 7) != 0)
			return http_fail(h, error_r, "the response uses a transfer coding other "
			    "than chunked");
		h->chunked = true;
	} else if (NAME("Content-Type")) {
		/* media-type = type "/" subtype parameters (RFC 9110 §8.3.1) */
		size_t mt = 0;
		while (mt < vlen && val[mt] != ';')
			mt++;
		while (mt > 0 && is_ows(val[mt - 1]))
			mt--;
		bool plain = mt == 10 && strncasecmp(val, "text/plain", 10) == 0;
		h->text_plain = (h->have_type ? h->text_plain : true) && plain;
		h->have_type = true;
	}
#undef NAME
	return 0;
}

/* chunk-size [ chunk-ext ] (RFC 9112 §7.1) */
static int
on_chunk_size(struct mta_sts_http *h, const char *s, size_t len, const char **error_r)
{
	uint64_t n = 0;
	size_t i = 0;
	size_t room = MTA_STS_POLICY_MAX - h->bodylen;

	for (; i < len; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			break;
		if (n <= room)
			n = n * 16 + d;
	}
	if (i == 0 || (i < len && s[i] != ';' && !is_ows(s[i])))
		return http_fail(h, error_r, "the response has a malformed chunk size");
	if (n > room)
		return http_fail(h, error_r, "the policy is larger than %d octets",
		    MTA_STS_POLICY_MAX);
	if (n == 0) {
		h->state = MTA_STS_HTTP_TRAILER;
	} else {
		h->left = n;
		h->state = MTA_STS_HTTP_CHUNK_DATA;
	}
	return 0;
}

/* A complete line (LF and a CR before it removed) in the current state. */
static int
on_line(struct mta_sts_http *h, const char *s, size_t len, const char **error_r)
{
	switch (h->state) {
	case MTA_STS_HTTP_STATUS:
		return on_status(h, s, len, error_r);
	case MTA_STS_HTTP_HEADER:
		return on_header(h, s, len, error_r);
	case MTA_STS_HTTP_CHUNK_SIZE:
		return on_chunk_size(h, s, len, error_r);
	case MTA_STS_HTTP_CHUNK_END:
		if (len != 0)
			return http_fail(h, error_r, "the response has data after a chunk");
		h->state = MTA_STS_HTTP_CHUNK_SIZE;
		return 0;
	case MTA_STS_HTTP_TRAILER:
		/* Trailer fields are read and ignored. */
		if (len == 0)
			h->state = MTA_STS_HTTP_DONE;
		return 0;
	default:
		break;
	}
	return 0;
}

static bool
line_state(enum mta_sts_http_state s)
{
	return s == MTA_STS_HTTP_STATUS || s == MTA_STS_HTTP_HEADER ||
	    s == MTA_STS_HTTP_CHUNK_SIZE || s == MTA_STS_HTTP_CHUNK_END || s == MTA_STS_HTTP_TRAILER;
}

int
mta_sts_http_feed(struct mta_sts_http *h, const char *data, size_t len, const char **error_r)
{
	size_t pos = 0;

	while (pos < len && h->state != MTA_STS_HTTP_DONE && h->state != MTA_STS_HTTP_FAILED) {
		if (line_state(h->state)) {
			bool head = h->state != MTA_STS_HTTP_CHUNK_SIZE &&
			    h->state != MTA_STS_HTTP_CHUNK_END;
			size_t max = head ? MTA_STS_HTTP_HEAD_MAX - h->head : MTA_STS_HTTP_CHUNK_LINE_MAX;
			const char *nl = memchr(data + pos, '\n', len - pos);
			size_t take = nl != NULL ? (size_t)(nl - (data + pos)) : len - pos;

			/* The line with its LF must fit in what is left of the limit. */
			if (h->linelen + take + (nl != NULL) > max)
				return http_fail(h, error_r, head ? "the response's header section is "
				    "larger than %d octets" : "the response has a chunk-size line "
				    "longer than %d octets", head ? MTA_STS_HTTP_HEAD_MAX :
				    MTA_STS_HTTP_CHUNK_LINE_MAX);
			memcpy(h->line + h->linelen, data + pos, take);
			h->linelen += take;
			pos += take;
			if (nl == NULL)
				break;
			pos++;
			if (head)
				h->head += h->linelen + 1;
			size_t l = h->linelen;
			h->linelen = 0;
			if (l > 0 && h->line[l - 1] == '\r')
				l--;
			if (memchr(h->line, '\0', l) != NULL || memchr(h->line, '\r', l) != NULL)
				return http_fail(h, error_r, "the response has a NUL or bare CR in "
				    "its head");
			if (on_line(h, h->line, l, error_r) < 0)
				return -1;
		} else {
			/* BODY_LENGTH, BODY_CLOSE, CHUNK_DATA: copy what the body may hold. */
			size_t n = len - pos;
			if (h->state != MTA_STS_HTTP_BODY_CLOSE && n > h->left)
				n = (size_t)h->left;
			if (n > MTA_STS_POLICY_MAX - h->bodylen)
				return http_fail(h, error_r, "the policy is larger than %d octets",
				    MTA_STS_POLICY_MAX);
			memcpy(h->body + h->bodylen, data + pos, n);
			h->bodylen += n;
			pos += n;
			if (h->state == MTA_STS_HTTP_BODY_CLOSE)
				continue;
			h->left -= n;
			if (h->left == 0)
				h->state = h->state == MTA_STS_HTTP_CHUNK_DATA ? MTA_STS_HTTP_CHUNK_END :
				    MTA_STS_HTTP_DONE;
		}
	}
	if (h->state == MTA_STS_HTTP_FAILED) {
		*error_r = h->error;
		return -1;
	}
	if (h->state != MTA_STS_HTTP_DONE)
		return 0;
	h->body[h->bodylen] = '\0';
	return 1;
}

int
mta_sts_http_eof(struct mta_sts_http *h, bool clean, const char **error_r)
{
	switch (h->state) {
	case MTA_STS_HTTP_DONE:
		return 1;
	case MTA_STS_HTTP_FAILED:
		*error_r = h->error;
		return -1;
	case MTA_STS_HTTP_BODY_CLOSE:
		/* RFC 9112 §8: without the TLS close_notify the body may have been
		 * cut short by an attacker; a shorter policy could lose its mx lines. */
		if (!clean)
			return http_fail(h, error_r, "the connection ended without a TLS "
			    "close_notify, so the policy may be truncated");
		h->body[h->bodylen] = '\0';
		h->state = MTA_STS_HTTP_DONE;
		return 1;
	case MTA_STS_HTTP_STATUS:
		if (h->status == 0 && h->linelen == 0)
			return http_fail(h, error_r, "the server closed the connection without "
			    "answering");
		break;
	default:
		break;
	}
	return http_fail(h, error_r, "the connection ended before the response was complete");
}
