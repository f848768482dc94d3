/*
 * smtp-reply — the SMTP client's reply parser and EHLO keyword reader
 * (see smtp-reply.h). Pure: lines in, a reply or an error out, no I/O.
 */
#include "smtp/smtp-reply.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

static int
reply_fail(struct smtp_reply_parser *p, const char *why, const char **error_r)
{
	*error_r = why;
	smtp_reply_parser_init(p);
	return -1;
}

static bool
is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

/*
 * An enhanced status code "class.subject.detail" at the start of s (RFC 3463
 * §2: class 2, 4 or 5, subject and detail 1 to 3 digits), followed by a space
 * or the end. Its class must agree with the reply code (RFC 2034 §3 puts the
 * same class in both); otherwise the text is left as it is. Returns the
 * length of the code (0 when there is none).
 */
static size_t
enhanced_scan(const char *s, size_t len, unsigned code)
{
	if (len < 5 || s[0] != (char)('0' + code / 100) || s[1] != '.')
		return 0;
	size_t i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && is_digit((unsigned char)s[i]) && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* Appends text, turning anything but printable ASCII into '?'. When the text
 * is full, the last three characters become "..." to show it was cut. */
static void
text_append(struct smtp_reply_parser *p, const char *s, size_t len)
{
	char *t = p->reply.text;
	for (size_t i = 0; i < len; i++) {
		if (p->textlen == SMTP_REPLY_MAX_TEXT) {
			memcpy(t + SMTP_REPLY_MAX_TEXT - 3, "...", 3);
			break;
		}
		unsigned char ch = (unsigned char)s[i];
		t[p->textlen++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	t[p->textlen] = '\0';
}

int
smtp_reply_parse_line(struct smtp_reply_parser *p, const char *line, size_t len,
    const char **error_r)
{
	if (len > SMTP_REPLY_MAX_LINE)
		return reply_fail(p, "reply line too long", error_r);
	/* RFC 5321 §4.2: Reply-code [ SP textstring ] CRLF, or Reply-code "-" ... */
	if (len < 3 || !is_digit((unsigned char)line[0]) || !is_digit((unsigned char)line[1]) ||
	    !is_digit((unsigned char)line[2]))
		return reply_fail(p, "reply does not start with a three-digit code", error_r);
	unsigned code = (unsigned)(line[0] - '0') * 100 + (unsigned)(line[1] - '0') * 10 +
	    (unsigned)(line[2] - '0');
	if (code < 200 || code > 599)
		return reply_fail(p, "reply code outside 200..599", error_r);
	bool last;
	if (len == 3 || line[3] == ' ')
		last = true;
	else if (line[3] == '-')
		last = false;
	else
		return reply_fail(p, "reply code not followed by a space or '-'", error_r);

	if (!p->started) {
		memset(&p->reply, 0, sizeof(p->reply));
		p->textlen = 0;
		p->started = true;
		p->reply.code = code;
	} else if (code != p->reply.code) {
		/* RFC 5321 §4.2.1: every line of a multiline reply has the same code. */
		return reply_fail(p, "reply lines carry different codes", error_r);
	}
	if (++p->reply.nlines > SMTP_REPLY_MAX_LINES)
		return reply_fail(p, "reply has too many lines", error_r);

	const char *text = len > 4 ? line + 4 : "";
	size_t tlen = len > 4 ? len - 4 : 0;
	size_t elen = enhanced_scan(text, tlen, code);
	if (elen > 0 && p->reply.nlines == 1) {
		memcpy(p->reply.enhanced, text, elen);
		p->reply.enhanced[elen] = '\0';
	} else if (elen > 0 && (elen != strlen(p->reply.enhanced) ||
	    memcmp(text, p->reply.enhanced, elen) != 0)) {
		elen = 0;  /* a different code on a later line stays in the text */
	}
	text += elen;
	tlen -= elen;
	while (tlen > 0 && *text == ' ') {
		text++;
		tlen--;
	}
	if (tlen > 0) {
		if (p->textlen > 0)
			text_append(p, " ", 1);
		text_append(p, text, tlen);
	}
	if (!last)
		return 0;
	p->started = false;
	return 1;
}

const char *
smtp_reply_format(const struct smtp_reply *r, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	int n = snprintf(buf, size, "%03u%s%s%s%s", r->code,
	    r->enhanced[0] != '\0' ? " " : "", r->enhanced,
	    r->text[0] != '\0' ? " " : "", r->text);
	if (n < 0)
		buf[0] = '\0';
	return buf;
}

void
smtp_ehlo_caps_init(struct smtp_ehlo_caps *c)
{
	memset(c, 0, sizeof(*c));
}

static bool
is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* Whether the keyword s[0..klen) is `name` (RFC 5321 §4.1.1.1: case-insensitive). */
static bool
keyword_is(const char *s, size_t klen, const char *name)
{
	return klen == strlen(name) && strncasecmp(s, name, klen) == 0;
}

/* SIZE's parameter (RFC 1870 §4): digits; anything else, or a number too large
 * for 64 bits, counts as "no limit stated". */
static uint64_t
size_param(const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i = 0;
	while (i < len && is_space(s[i]))
		i++;
	size_t start = i;
	for (; i < len && is_digit((unsigned char)s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (i == start)
		return 0;
	while (i < len && is_space(s[i]))
		i++;
	return i == len ? v : 0;
}

/* AUTH's parameters: mechanism names separated by spaces (RFC 4954 §3). */
static void
auth_params(struct smtp_ehlo_caps *c, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && is_space(s[i]))
			i++;
		size_t start = i;
		while (i < len && !is_space(s[i]))
			i++;
		if (keyword_is(s + start, i - start, "PLAIN"))
			c->auth_plain = true;
		else if (keyword_is(s + start, i - start, "LOGIN"))
			c->auth_login = true;
	}
}

void
smtp_ehlo_caps_line(struct smtp_ehlo_caps *c, const char *line, size_t len)
{
	size_t k = 0;
	while (k < len && !is_space(line[k]) && line[k] != '=')
		k++;
	/* Old servers write "AUTH=LOGIN PLAIN" (before RFC 4954); it means the same. */
	if (k < len && line[k] == '=' && !keyword_is(line, k, "AUTH"))
		return;
	const char *param = line + k + (k < len ? 1 : 0);
	size_t plen = k < len ? len - k - 1 : 0;
	bool bare = true;  /* no parameter, or only blanks */
	for (size_t i = 0; i < plen; i++)
		if (!is_space(param[i]))
			bare = false;

	if (keyword_is(line, k, "AUTH")) {
		auth_params(c, param, plen);
	} else if (keyword_is(line, k, "SIZE")) {
		c->size = true;
		c->size_max = size_param(param, plen);
	} else if (!bare) {
		return;  /* the other keywords take no parameters */
	} else if (keyword_is(line, k, "STARTTLS")) {
		c->starttls = true;
	} else if (keyword_is(line, k, "PIPELINING")) {
		c->pipelining = true;
	} else if (keyword_is(line, k, "8BITMIME")) {
		c->eightbitmime = true;
	} else if (keyword_is(line, k, "SMTPUTF8")) {
		c->smtputf8 = true;
	} else if (keyword_is(line, k, "CHUNKING")) {
		c->chunking = true;
	} else if (keyword_is(line, k, "DSN")) {
		c->dsn = true;
	} else if (keyword_is(line, k, "ENHANCEDSTATUSCODES")) {
		c->enhancedstatuscodes = true;
	}
}
