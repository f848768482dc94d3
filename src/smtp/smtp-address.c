/*
 * smtp-address — RFC 5321 §4.1.2 Path / Mailbox parser (RFC 6531 §3.3 with SMTPUTF8).
 *
 * A cursor walks s[0..len) and never reads past its end. Output goes only into the
 * fixed arrays of struct smtp_address, each bounded by an RFC limit checked before
 * the copy.
 */
#include "smtp/smtp-address.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

struct cursor {
	const unsigned char *p;
	const unsigned char *end;
	unsigned flags;
	bool utf8;
	enum smtp_address_error reason;
	const char *error;
};

static int fail(struct cursor *c, enum smtp_address_error reason, const char *error)
{
	c->reason = reason;
	c->error = error;
	return -1;
}

static bool is_alpha(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static unsigned char to_lower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

/* atext, RFC 5322 §3.2.3 (ASCII part; RFC 6531 adds UTF8-non-ascii separately). */
static bool is_atext(unsigned char ch)
{
	return is_alpha(ch) || is_digit(ch) ||
	       (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

size_t smtp_address_utf8_seq(const unsigned char *p, size_t left)
{
	/* RFC 3629 §4: the lead byte fixes the length and the range of the second
	 * byte, which is where overlongs, surrogates and > U+10FFFF are excluded. */
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (left == 0)
		return 0;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 3;
		if (p[0] == 0xE0)
			lo = 0xA0; /* overlong */
		else if (p[0] == 0xED)
			hi = 0x9F; /* UTF-16 surrogates */
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 4;
		if (p[0] == 0xF0)
			lo = 0x90; /* overlong */
		else if (p[0] == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else
		return 0;
	if (left < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	}
	return n;
}

bool smtp_address_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = smtp_address_utf8_seq(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* One non-ASCII character at c->p: its length, or 0 with the error set. */
static size_t take_utf8(struct cursor *c)
{
	size_t n = smtp_address_utf8_seq(c->p, (size_t)(c->end - c->p));

	if (n == 0) {
		fail(c, SMTP_ADDRESS_ERR_SYNTAX, "invalid UTF-8 in address");
		return 0;
	}
	if ((c->flags & SMTP_ADDRESS_ALLOW_UTF8) == 0) {
		fail(c, SMTP_ADDRESS_ERR_UTF8,
		     "non-ASCII address requires SMTPUTF8 (RFC 6531 §3.5)");
		return 0;
	}
	c->utf8 = true;
	return n;
}

/* Dot-string = Atom *("." Atom), RFC 5321 §4.1.2. Non-ASCII octets here were
 * already validated as UTF-8 under SMTPUTF8 (RFC 6531 §3.3 atext). */
static bool dot_string_valid(const unsigned char *s, size_t len)
{
	bool in_atom = false;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (!in_atom)
				return false;
			in_atom = false;
		} else if (is_atext(s[i]) || s[i] >= 0x80)
			in_atom = true;
		else
			return false;
	}
	return in_atom;
}

/* Local-part = Dot-string / Quoted-string, RFC 5321 §4.1.2. */
static int parse_local(struct cursor *c, struct smtp_address *a)
{
	const unsigned char *start = c->p;
	unsigned char content[SMTP_ADDRESS_LOCAL_MAX];
	size_t clen = 0, n;
	bool quoted = false;

	if (c->p < c->end && *c->p == '"') {
		quoted = true;
		c->p++;
		for (;;) {
			const unsigned char *ch;

			if (c->p >= c->end)
				return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "unterminated quoted local part");
			if (*c->p == '"') {
				c->p++;
				break;
			}
			if (*c->p == '\\') {
				/* quoted-pairSMTP = %d92 %d32-126 (ASCII even under RFC 6531) */
				if (c->end - c->p < 2 || c->p[1] < 32 || c->p[1] > 126)
					return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "invalid quoted-pair in local part");
				ch = c->p + 1;
				n = 1;
				c->p += 2;
			} else if (*c->p >= 32 && *c->p <= 126) {
				ch = c->p;
				n = 1;
				c->p++;
			} else if (*c->p >= 0x80) {
				if ((n = take_utf8(c)) == 0)
					return -1;
				ch = c->p;
				c->p += n;
			} else
				return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "control character in quoted local part");
			if ((size_t)(c->p - start) > SMTP_ADDRESS_LOCAL_MAX || clen + n > sizeof(content))
				return fail(c, SMTP_ADDRESS_ERR_TOO_LONG,
					    "local part longer than 64 octets (RFC 5321 §4.5.3.1.1)");
			memcpy(content + clen, ch, n);
			clen += n;
		}
	} else {
		for (;;) {
			const unsigned char *atom = c->p;

			while (c->p < c->end) {
				if (is_atext(*c->p))
					c->p++;
				else if (*c->p >= 0x80) {
					if ((n = take_utf8(c)) == 0)
						return -1;
					c->p += n;
				} else
					break;
			}
			if (c->p == atom)
				return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "invalid or empty local part");
			if ((size_t)(c->p - start) > SMTP_ADDRESS_LOCAL_MAX)
				return fail(c, SMTP_ADDRESS_ERR_TOO_LONG,
					    "local part longer than 64 octets (RFC 5321 §4.5.3.1.1)");
			if (c->p < c->end && *c->p == '.') {
				c->p++;
				continue;
			}
			break;
		}
	}

	size_t rawlen = (size_t)(c->p - start);
	if (rawlen > SMTP_ADDRESS_LOCAL_MAX)
		return fail(c, SMTP_ADDRESS_ERR_TOO_LONG,
			    "local part longer than 64 octets (RFC 5321 §4.5.3.1.1)");
	if (quoted && dot_string_valid(content, clen)) {
		/* RFC 5321 §4.1.2: a quoted form equivalent to a Dot-string is the
		 * Dot-string; normalising it keeps one spelling per mailbox. */
		memcpy(a->local, content, clen);
		a->local[clen] = '\0';
	} else {
		memcpy(a->local, start, rawlen);
		a->local[rawlen] = '\0';
	}
	return 0;
}

/* address-literal, RFC 5321 §4.1.3: IPv4 or "IPv6:" only. */
static int parse_literal(struct cursor *c, struct smtp_address *a)
{
	const unsigned char *content;
	char buf[64];
	size_t clen;

	c->p++; /* "[" */
	content = c->p;
	while (c->p < c->end && *c->p != ']') {
		/* dcontent = %d33-90 / %d94-126 */
		if (*c->p < 33 || *c->p > 126 || *c->p == '[' || *c->p == '\\')
			return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "invalid character in address literal");
		c->p++;
		if ((size_t)(c->p - content) >= sizeof(buf))
			return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "invalid address literal");
	}
	if (c->p >= c->end)
		return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "unterminated address literal");
	clen = (size_t)(c->p - content);
	c->p++; /* "]" */
	memcpy(buf, content, clen);
	buf[clen] = '\0';

	if (clen > 5 && strncasecmp(buf, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, buf + 5, a->literal) != 1)
			return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "invalid IPv6 address literal");
		a->domain_type = SMTP_ADDRESS_DOMAIN_IPV6;
		memcpy(a->domain, "[IPv6:", 6);
		for (size_t i = 5; i < clen; i++)
			a->domain[i + 1] = (char)to_lower((unsigned char)buf[i]);
		a->domain[clen + 1] = ']';
		a->domain[clen + 2] = '\0';
		return 0;
	}
	if (memchr(buf, ':', clen) != NULL)
		return fail(c, SMTP_ADDRESS_ERR_SYNTAX,
			    "unsupported address literal (only IPv4 and IPv6: are known)");
	/* inet_pton takes exactly four dotted decimals: Snum 3("." Snum). */
	if (inet_pton(AF_INET, buf, a->literal) != 1)
		return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "invalid IPv4 address literal");
	a->domain_type = SMTP_ADDRESS_DOMAIN_IPV4;
	a->domain[0] = '[';
	memcpy(a->domain + 1, buf, clen);
	a->domain[clen + 1] = ']';
	a->domain[clen + 2] = '\0';
	return 0;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * (RFC 5321 §4.1.2), or a U-label under RFC 6531. With a == NULL (a source
 * route) the domain is only checked, and literals are refused: At-domain takes a
 * Domain, not an address-literal.
 */
static int parse_domain(struct cursor *c, struct smtp_address *a)
{
	const unsigned char *start = c->p;

	if (c->p < c->end && *c->p == '[') {
		if (a == NULL)
			return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "address literal in a source route");
		return parse_literal(c, a);
	}
	for (;;) {
		const unsigned char *label = c->p;
		bool ascii = true, hyphen_end = false;
		size_t n;

		while (c->p < c->end) {
			if (is_alpha(*c->p) || is_digit(*c->p) || *c->p == '-') {
				if (*c->p == '-' && c->p == label)
					return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "domain label starts with a hyphen");
				hyphen_end = *c->p == '-';
				c->p++;
			} else if (*c->p >= 0x80) {
				if ((n = take_utf8(c)) == 0)
					return -1;
				ascii = false;
				hyphen_end = false;
				c->p += n;
			} else
				break;
		}
		if (c->p == label)
			return fail(c, SMTP_ADDRESS_ERR_SYNTAX,
				    "missing domain, empty label or trailing dot in domain");
		if (hyphen_end)
			return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "domain label ends with a hyphen");
		if (ascii && c->p - label > 63)
			return fail(c, SMTP_ADDRESS_ERR_TOO_LONG,
				    "domain label longer than 63 octets (RFC 1035 §2.3.4)");
		if ((size_t)(c->p - start) > SMTP_ADDRESS_DOMAIN_MAX)
			return fail(c, SMTP_ADDRESS_ERR_TOO_LONG,
				    "domain longer than 255 octets (RFC 5321 §4.5.3.1.2)");
		if (c->p < c->end && *c->p == '.') {
			c->p++;
			continue;
		}
		break;
	}
	if (a != NULL) {
		size_t dlen = (size_t)(c->p - start);

		for (size_t i = 0; i < dlen; i++)
			a->domain[i] = (char)to_lower(start[i]);
		a->domain[dlen] = '\0';
		a->domain_type = SMTP_ADDRESS_DOMAIN_NAME;
	}
	return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ), RFC 5321 §4.1.2. */
static int parse_mailbox(struct cursor *c, struct smtp_address *a)
{
	size_t llen, dlen;

	c->utf8 = false; /* a route's domains are not part of the mailbox */
	if (parse_local(c, a) < 0)
		return -1;
	if (c->p >= c->end || *c->p != '@')
		return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "missing @domain in address");
	c->p++;
	if (parse_domain(c, a) < 0)
		return -1;
	llen = strlen(a->local);
	dlen = strlen(a->domain);
	if (llen + 1 + dlen > SMTP_ADDRESS_MAILBOX_MAX)
		return fail(c, SMTP_ADDRESS_ERR_TOO_LONG,
			    "address longer than 256 octets (RFC 5321 §4.5.3.1.3)");
	memcpy(a->mailbox, a->local, llen);
	a->mailbox[llen] = '@';
	memcpy(a->mailbox + llen + 1, a->domain, dlen + 1);
	a->utf8 = c->utf8;
	return 0;
}

/* What follows a mailbox when it should have ended. */
static int fail_trailing(struct cursor *c)
{
	if (c->p < c->end && *c->p == '@')
		return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "more than one @ in address");
	return fail(c, SMTP_ADDRESS_ERR_SYNTAX, "invalid character after address");
}

static void cursor_init(struct cursor *c, const char *s, size_t len, unsigned flags)
{
	c->p = (const unsigned char *)s;
	c->end = len > 0 ? c->p + len : c->p; /* (NULL, 0) is allowed */
	c->flags = flags;
	c->utf8 = false;
	c->reason = SMTP_ADDRESS_ERR_NONE;
	c->error = NULL;
}

static int finish(struct cursor *c, int ret, enum smtp_address_error *reason_r,
		  const char **error_r)
{
	if (reason_r != NULL)
		*reason_r = ret < 0 ? c->reason : SMTP_ADDRESS_ERR_NONE;
	if (ret < 0)
		*error_r = c->error;
	return ret;
}

int smtp_address_parse_path(const char *s, size_t len, unsigned flags,
			    struct smtp_address *addr, size_t *consumed_r,
			    enum smtp_address_error *reason_r, const char **error_r)
{
	static const char postmaster[] = "postmaster>";
	const size_t pmlen = sizeof(postmaster) - 1;
	struct cursor c;

	memset(addr, 0, sizeof(*addr));
	cursor_init(&c, s, len, flags);
	if (len == 0 || s[0] != '<')
		return finish(&c, fail(&c, SMTP_ADDRESS_ERR_SYNTAX, "address must be enclosed in <>"),
			      reason_r, error_r);
	c.p++;
	if (c.p < c.end && *c.p == '>') {
		if ((flags & SMTP_ADDRESS_ALLOW_NULL) == 0)
			return finish(&c, fail(&c, SMTP_ADDRESS_ERR_SYNTAX, "empty address not allowed here"),
				      reason_r, error_r);
		addr->null_path = true; /* RFC 5321 §4.5.5 */
		*consumed_r = 2;
		return finish(&c, 0, reason_r, error_r);
	}
	if ((flags & SMTP_ADDRESS_ALLOW_POSTMASTER) != 0 && (size_t)(c.end - c.p) >= pmlen &&
	    strncasecmp((const char *)c.p, postmaster, pmlen) == 0) {
		/* RFC 5321 §4.1.1.3: "<Postmaster>" needs no domain (any case). */
		memcpy(addr->local, c.p, pmlen - 1);
		memcpy(addr->mailbox, c.p, pmlen - 1);
		addr->postmaster = true;
		*consumed_r = 1 + pmlen;
		return finish(&c, 0, reason_r, error_r);
	}
	if (c.p < c.end && *c.p == '@') {
		/* A-d-l = At-domain *( "," At-domain ) ":" — checked, then ignored
		 * (RFC 5321 §4.1.2 and Appendix C): the mailbox alone is used. */
		for (;;) {
			c.p++; /* "@" */
			if (parse_domain(&c, NULL) < 0)
				return finish(&c, -1, reason_r, error_r);
			if (c.p < c.end && *c.p == ',' && c.end - c.p >= 2 && c.p[1] == '@') {
				c.p++;
				continue;
			}
			if (c.p < c.end && *c.p == ':') {
				c.p++;
				break;
			}
			return finish(&c, fail(&c, SMTP_ADDRESS_ERR_SYNTAX, "invalid source route"),
				      reason_r, error_r);
		}
		addr->had_route = true;
	}
	if (parse_mailbox(&c, addr) < 0)
		return finish(&c, -1, reason_r, error_r);
	if (c.p >= c.end || *c.p != '>')
		return finish(&c, fail_trailing(&c), reason_r, error_r);
	c.p++;
	if ((size_t)(c.p - (const unsigned char *)s) > SMTP_ADDRESS_PATH_MAX)
		return finish(&c, fail(&c, SMTP_ADDRESS_ERR_TOO_LONG,
				       "path longer than 256 octets (RFC 5321 §4.5.3.1.3)"),
			      reason_r, error_r);
	*consumed_r = (size_t)(c.p - (const unsigned char *)s);
	return finish(&c, 0, reason_r, error_r);
}

int smtp_address_parse_mailbox(const char *s, size_t len, unsigned flags,
			       struct smtp_address *addr,
			       enum smtp_address_error *reason_r, const char **error_r)
{
	struct cursor c;

	memset(addr, 0, sizeof(*addr));
	cursor_init(&c, s, len, flags & SMTP_ADDRESS_ALLOW_UTF8);
	if (parse_mailbox(&c, addr) < 0)
		return finish(&c, -1, reason_r, error_r);
	if (c.p != c.end)
		return finish(&c, fail_trailing(&c), reason_r, error_r);
	if (len > SMTP_ADDRESS_MAILBOX_MAX)
		return finish(&c, fail(&c, SMTP_ADDRESS_ERR_TOO_LONG,
				       "address longer than 256 octets (RFC 5321 §4.5.3.1.3)"),
			      reason_r, error_r);
	return finish(&c, 0, reason_r, error_r);
}
