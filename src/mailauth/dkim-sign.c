/*
 * dkim-sign — making a DKIM-Signature (RFC 6376 §5) for a message as it streams
 * in; the private-key operation itself is dkim_key_sign_digest(), possibly in
 * another process.
 *
 * Fields signed: by default From, To, Subject, Date and Message-ID, each listed
 * in h= once more than it occurs (§8.15 over-signing: none of them can be added
 * later without breaking the signature), and Cc, Reply-To, In-Reply-To,
 * References, MIME-Version, Content-Type, Content-Transfer-Encoding and List-*
 * as often as they occur. A caller's list is used the same way: its names are
 * signed as often as they occur ("X-*" matching by prefix), the five above
 * over-signed, and From always.
 *
 * The field is folded at 76 columns with CRLF TAB; b= is broken with FWS, which
 * §3.5 allows and canonicalisation removes with the value.
 */
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dkim-private.h"

#define FOLD_COLUMNS 76

static const char *const default_headers[] = {
	"from", "to", "subject", "date", "message-id", "cc", "reply-to", "in-reply-to",
	"references", "mime-version", "content-type", "content-transfer-encoding", "list-*",
	NULL,
};
static const char *const oversigned[] = {
	"from", "to", "subject", "date", "message-id", NULL,
};

struct dkim_sign {
	char *domain, *selector, *identity;
	enum dkim_key_type type;
	bool relaxed_header, relaxed_body;
	const char *const *headers; /* NULL-terminated: default_headers or owned_headers */
	char **owned_headers;       /* a copy of the caller's list; NULL for the default */
	time_t timestamp, expire;
	struct dkim_header hdr;
	EVP_MD_CTX *md;
	bool body_started, finished, failed, digest_ready;
	unsigned char bh[32];
	struct dkim_name h[DKIM_SIG_H_MAX];
	size_t nh;
	struct dkim_buf prefix;     /* the field up to and including "b=" */
	size_t col;                 /* the column after it */
	/* Last: its 16 KiB output buffer is not cleared at dkim_sign_new(). */
	struct dkim_body_canon canon;
};

static void body_sink(void *arg, const void *data, size_t len)
{
	struct dkim_sign *s = arg;

	if (EVP_DigestUpdate(s->md, data, len) != 1)
		s->failed = true;
}

/* A field name as h= takes it (RFC 5322 ftext), optionally ending in '*'. */
static bool header_name_valid(const char *n)
{
	if (*n == '\0')
		return false;
	for (; *n != '\0'; n++)
		if ((unsigned char)*n < 0x21 || (unsigned char)*n > 0x7e || *n == ':' || *n == ';')
			return false;
	return true;
}

/* §3.5 i=: the domain must be d= or a subdomain; the local part VALCHARs. */
static bool identity_valid(const char *i, const char *d)
{
	const char *at = strrchr(i, '@');
	size_t il, dl = strlen(d);

	if (at == NULL)
		return false;
	for (const char *p = i; p < at; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || *p == ';')
			return false;
	il = strlen(at + 1);
	if (at - i > 64 || !dkim_domain_valid(at + 1, il) || il < dl ||
	    (il > dl && at[il - dl] != '.'))
		return false;
	return dkim_name_eq(at + 1 + il - dl, dl, d, dl);
}

void dkim_sign_free(struct dkim_sign **sp)
{
	struct dkim_sign *s = *sp;

	if (s == NULL)
		return;
	free(s->domain);
	free(s->selector);
	free(s->identity);
	for (size_t i = 0; s->owned_headers != NULL && s->owned_headers[i] != NULL; i++)
		free(s->owned_headers[i]);
	free(s->owned_headers);
	EVP_MD_CTX_free(s->md);
	dkim_header_free(&s->hdr);
	dkim_buf_free(&s->prefix);
	free(s);
	*sp = NULL;
}

struct dkim_sign *dkim_sign_new(const struct dkim_sign_params *p, const char **error_r)
{
	const char *const *list = p->headers != NULL ? p->headers : default_headers;
	struct dkim_sign *s;
	size_t n = 0;

	if (p->domain == NULL || !dkim_domain_valid(p->domain, strlen(p->domain))) {
		*error_r = "The signing domain is not a valid domain name.";
		return NULL;
	}
	if (p->selector == NULL || !dkim_domain_valid(p->selector, strlen(p->selector))) {
		*error_r = "The selector is not valid.";
		return NULL;
	}
	if (p->identity != NULL && !identity_valid(p->identity, p->domain)) {
		*error_r = "The identity (i=) is not an address at the domain or a subdomain.";
		return NULL;
	}
	if (p->type != DKIM_KEY_ED25519 && p->type != DKIM_KEY_RSA) {
		*error_r = "The key type is unknown.";
		return NULL;
	}
	if (p->timestamp < 0 || p->expire < 0 ||
	    (p->timestamp != 0 && p->expire != 0 && p->expire < p->timestamp)) {
		*error_r = "The expiry time (x=) is before the timestamp (t=).";
		return NULL;
	}
	while (list[n] != NULL) {
		if (!header_name_valid(list[n])) {
			*error_r = "A header field name to sign is not valid.";
			return NULL;
		}
		n++;
	}
	/* Everything but the canonicaliser's output buffer is cleared (the
	 * canonicaliser's own fields are set by dkim_body_canon_init()). */
	if ((s = malloc(sizeof(*s))) == NULL)
		goto oom;
	memset(s, 0, offsetof(struct dkim_sign, canon));
	dkim_body_canon_init(&s->canon, !p->simple_body, body_sink, s);
	dkim_header_init(&s->hdr);
	s->type = p->type;
	s->relaxed_header = !p->simple_header;
	s->relaxed_body = !p->simple_body;
	s->timestamp = p->timestamp;
	s->expire = p->expire;
	if ((s->domain = strdup(p->domain)) == NULL || (s->selector = strdup(p->selector)) == NULL ||
	    (p->identity != NULL && (s->identity = strdup(p->identity)) == NULL))
		goto oom;
	if (list == default_headers) {
		s->headers = default_headers;
	} else {
		if ((s->owned_headers = calloc(n + 1, sizeof(*s->owned_headers))) == NULL)
			goto oom;
		for (size_t i = 0; i < n; i++)
			if ((s->owned_headers[i] = strdup(list[i])) == NULL)
				goto oom;
		s->headers = (const char *const *)s->owned_headers;
	}
	if ((s->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->md, dkim_crypto_sha256(), NULL) != 1)
		goto oom;
	return s;
oom:
	dkim_sign_free(&s);
	*error_r = "Out of memory.";
	return NULL;
}

void dkim_sign_feed(struct dkim_sign *s, const void *data, size_t len)
{
	size_t n = 0;

	if (s->finished)
		return;
	if (!s->body_started) {
		n = dkim_header_feed(&s->hdr, data, len);
		if (!s->hdr.done)
			return;
		s->body_started = true;
	}
	dkim_body_canon_feed(&s->canon, (const char *)data + n, len - n);
}

void dkim_sign_finish(struct dkim_sign *s)
{
	if (s->finished)
		return;
	s->body_started = true;
	dkim_header_finish(&s->hdr);
	dkim_body_canon_finish(&s->canon);
	if (EVP_DigestFinal_ex(s->md, s->bh, NULL) != 1)
		s->failed = true;
	s->finished = true;
}

static bool is_oversigned(const char *name)
{
	for (size_t i = 0; oversigned[i] != NULL; i++)
		if (dkim_name_eq(name, strlen(name), oversigned[i], strlen(oversigned[i])))
			return true;
	return false;
}

static void h_add(struct dkim_sign *s, const char *p, size_t len)
{
	if (s->nh < DKIM_SIG_H_MAX) {
		s->h[s->nh].p = p;
		s->h[s->nh].len = len;
		s->nh++;
	}
}

/* Adds name to h= once per occurrence (once more when over-signed). */
static void h_add_name(struct dkim_sign *s, const char *name, size_t len, bool over)
{
	const struct dkim_header *hd = &s->hdr;

	for (size_t i = 0; i < s->nh; i++)
		if (dkim_name_eq(s->h[i].p, s->h[i].len, name, len))
			return;      /* listed twice by the caller */
	for (size_t f = 0; f < hd->nfields; f++)
		if (dkim_name_eq(hd->buf + hd->fields[f].off, hd->fields[f].name_len, name, len))
			h_add(s, name, len);
	if (over)
		h_add(s, name, len);
}

static void build_h(struct dkim_sign *s)
{
	const struct dkim_header *hd = &s->hdr;
	bool from = false;

	for (size_t i = 0; s->headers[i] != NULL; i++)
		from = from || dkim_name_eq(s->headers[i], strlen(s->headers[i]), "from", 4);
	if (!from)
		h_add_name(s, "from", 4, true);     /* §5.4: From MUST be signed */
	for (size_t i = 0; s->headers[i] != NULL; i++) {
		const char *name = s->headers[i];
		size_t len = strlen(name);

		if (name[len - 1] != '*') {
			h_add_name(s, name, len, is_oversigned(name));
			continue;
		}
		/* A prefix: each distinct name that matches, as it occurs. */
		for (size_t f = 0; f < hd->nfields; f++) {
			const struct dkim_field *fl = &hd->fields[f];

			if (fl->name_len > 0 && fl->name_len >= len - 1 &&
			    dkim_name_eq(hd->buf + fl->off, len - 1, name, len - 1))
				h_add_name(s, hd->buf + fl->off, fl->name_len, false);
		}
	}
}

/* Appends tok, after a space or a fold when it would pass the column limit. */
static void put_token(struct dkim_sign *s, const char *tok, size_t len, bool space)
{
	if (s->col + (space ? 1 : 0) + len > FOLD_COLUMNS && s->col > 1) {
		dkim_buf_add(&s->prefix, "\r\n\t", 3);
		s->col = 1;
	} else if (space) {
		dkim_buf_add(&s->prefix, " ", 1);
		s->col++;
	}
	dkim_buf_add(&s->prefix, tok, len);
	s->col += len;
}

/* "name=value;" as one token. */
static void put_tag(struct dkim_sign *s, const char *name, const char *value)
{
	char tok[600];
	size_t nl = strlen(name), vl = strlen(value);

	/* Put together by hand: snprintf() here was a visible share of a signature. */
	if (nl + vl + 2 > sizeof(tok)) {
		s->prefix.failed = true;
		return;
	}
	memcpy(tok, name, nl);
	tok[nl] = '=';
	memcpy(tok + nl + 1, value, vl);
	tok[nl + 1 + vl] = ';';
	put_token(s, tok, nl + vl + 2, true);
}

static void build_prefix(struct dkim_sign *s)
{
	char num[32], *bh;

	dkim_buf_add(&s->prefix, "DKIM-Signature:", 15);
	s->col = 15;
	put_tag(s, "v", "1");
	put_tag(s, "a", s->type == DKIM_KEY_ED25519 ? "ed25519-sha256" : "rsa-sha256");
	put_tag(s, "c", s->relaxed_header ?
	    (s->relaxed_body ? "relaxed/relaxed" : "relaxed/simple") :
	    (s->relaxed_body ? "simple/relaxed" : "simple/simple"));
	put_tag(s, "d", s->domain);
	put_tag(s, "s", s->selector);
	if (s->timestamp != 0) {
		snprintf(num, sizeof(num), "%lld", (long long)s->timestamp);
		put_tag(s, "t", num);
	}
	if (s->expire != 0) {
		snprintf(num, sizeof(num), "%lld", (long long)s->expire);
		put_tag(s, "x", num);
	}
	if (s->identity != NULL) {
		/* §2.11 dkim-quoted-printable: '=' is the only octet left to
		 * encode (identity_valid() refused the others). */
		char qp[3 * 330];
		size_t o = 0;

		for (const char *p = s->identity; *p != '\0' && o + 4 < sizeof(qp); p++) {
			if (*p == '=') {
				memcpy(qp + o, "=3D", 3);
				o += 3;
			} else {
				qp[o++] = *p;
			}
		}
		qp[o] = '\0';
		put_tag(s, "i", qp);
	}
	for (size_t i = 0; i < s->nh; i++) {
		char tok[300];
		size_t n = 0;

		if (s->h[i].len + 3 > sizeof(tok)) {
			s->prefix.failed = true;
			return;
		}
		if (i == 0) {
			memcpy(tok, "h=", 2);
			n = 2;
		}
		memcpy(tok + n, s->h[i].p, s->h[i].len);
		n += s->h[i].len;
		tok[n++] = i + 1 < s->nh ? ':' : ';';
		put_token(s, tok, n, i == 0);
	}
	if ((bh = dkim_base64_encode(s->bh, sizeof(s->bh))) == NULL) {
		s->prefix.failed = true;
		return;
	}
	put_tag(s, "bh", bh);
	free(bh);
	put_token(s, "b=", 2, true);
}

int dkim_sign_digest(struct dkim_sign *s, unsigned char digest[32], const char **error_r)
{
	if (!s->finished) {
		*error_r = "The message has not been finished.";
		return -1;
	}
	if (s->hdr.overflow) {
		*error_r = "The header section is longer than 256 KiB.";
		return -1;
	}
	if (s->failed || s->hdr.failed) {
		*error_r = "Out of memory.";
		return -1;
	}
	/* RFC 6376 §5.4: From MUST be signed; a message without one has no author
	 * to vouch for (and no DMARC alignment): refuse rather than sign nothing. */
	bool has_from = false;
	for (size_t f = 0; f < s->hdr.nfields && !has_from; f++)
		has_from = dkim_name_eq(s->hdr.buf + s->hdr.fields[f].off,
		    s->hdr.fields[f].name_len, "from", 4);
	if (!has_from) {
		*error_r = "The message has no From: field (RFC 6376 section 5.4).";
		return -1;
	}
	if (!s->digest_ready) {
		s->nh = 0;
		dkim_buf_free(&s->prefix);
		build_h(s);
		build_prefix(s);
		if (s->prefix.failed) {
			*error_r = "Out of memory.";
			return -1;
		}
		s->digest_ready = true;
	}
	/* §3.7: the header hash, with this field (b= empty) last. */
	return dkim_header_hash(&s->hdr, s->h, s->nh, s->relaxed_header, s->prefix.p,
	    s->prefix.len, digest, error_r);
}

char *dkim_sign_header(struct dkim_sign *s, const unsigned char *sig, size_t siglen)
{
	struct dkim_buf out = { 0 };
	char *b64;
	size_t col = s->col, len, off = 0;

	if (!s->digest_ready || (b64 = dkim_base64_encode(sig, siglen)) == NULL)
		return NULL;
	len = strlen(b64);
	dkim_buf_add(&out, s->prefix.p, s->prefix.len);
	while (off < len) {
		size_t room = col < FOLD_COLUMNS ? FOLD_COLUMNS - col : 0;

		if (room == 0) {
			dkim_buf_add(&out, "\r\n\t", 3);
			col = 1;
			continue;
		}
		if (room > len - off)
			room = len - off;
		dkim_buf_add(&out, b64 + off, room);
		off += room;
		col += room;
	}
	dkim_buf_add(&out, "\r\n", 3);   /* with the NUL */
	free(b64);
	if (out.failed) {
		dkim_buf_free(&out);
		return NULL;
	}
	return out.p;
}
