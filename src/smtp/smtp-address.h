/*
 * smtp-address — the mailbox and path syntax of SMTP envelopes.
 *
 * A pure parser for RFC 5321 §4.1.2 Path / Mailbox (and RFC 6531 §3.3 when
 * SMTPUTF8 is in force): no I/O, no allocation, no reads past the given length,
 * no NUL termination assumed. The result lands in fixed arrays sized by the limits
 * of RFC 5321 §4.5.3.1.1–3, which are enforced.
 *
 * What it does, and deliberately does not do, for relay control:
 * - A source route (A-d-l, "<@a,@b:user@c>") is syntax-checked and ignored
 *   (RFC 5321 §4.1.2, Appendix C); had_route says one was there. The mailbox is
 *   user@c: the relay decision must be made on c.
 * - "%" and "!" are ordinary atext in a local part: "user%ext@local" is the local
 *   part "user%ext" at the domain "local". Nothing here (and nothing downstream)
 *   may interpret them as routing.
 * - A quoted local part stays quoted unless its content is a valid Dot-string:
 *   "\"user@ext\"@local" is the local part "\"user@ext\"" at "local".
 * - "user@ext@local", a trailing dot on the domain, and a literal inside a source
 *   route are syntax errors.
 *
 * Normalisation: the domain is lowercased (ASCII letters only; UTF-8 is kept as
 * given); an address literal keeps its text (with the tag spelled "IPv6:") and its
 * binary address is in literal[]; a quoted local part whose content is a valid
 * Dot-string is unquoted (quoted-pairs decoded); any other local part is kept as
 * given, case preserved (RFC 5321 §2.4: local parts are case-sensitive).
 */
#ifndef RAMPART_SMTP_ADDRESS_H
#define RAMPART_SMTP_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 §4.5.3.1.1–3, in octets; PATH includes "<", ">" and any source route. */
#define SMTP_ADDRESS_LOCAL_MAX 64
#define SMTP_ADDRESS_DOMAIN_MAX 255
#define SMTP_ADDRESS_PATH_MAX 256
/* A mailbox (local "@" domain) inside a path: the path minus its brackets. */
#define SMTP_ADDRESS_MAILBOX_MAX (SMTP_ADDRESS_PATH_MAX - 2)

enum smtp_address_flags {
	/* RFC 6531 §3.3: UTF-8 allowed in the local part and the domain. */
	SMTP_ADDRESS_ALLOW_UTF8 = 1 << 0,
	/* "<>" is accepted (reverse-path, RFC 5321 §4.1.1.2). */
	SMTP_ADDRESS_ALLOW_NULL = 1 << 1,
	/* "<Postmaster>" without a domain is accepted (RCPT, RFC 5321 §4.1.1.3). */
	SMTP_ADDRESS_ALLOW_POSTMASTER = 1 << 2,
};

enum smtp_address_error {
	SMTP_ADDRESS_ERR_NONE,
	SMTP_ADDRESS_ERR_SYNTAX,   /* not a Path / Mailbox (or invalid UTF-8) */
	SMTP_ADDRESS_ERR_TOO_LONG, /* RFC 5321 §4.5.3.1.1–3 */
	SMTP_ADDRESS_ERR_UTF8,     /* well-formed UTF-8 but ALLOW_UTF8 not given (RFC 6531 §3.5) */
};

enum smtp_address_domain_type {
	SMTP_ADDRESS_DOMAIN_NONE, /* null path or <postmaster> */
	SMTP_ADDRESS_DOMAIN_NAME,
	SMTP_ADDRESS_DOMAIN_IPV4, /* "[192.0.2.1]", literal[0..3] */
	SMTP_ADDRESS_DOMAIN_IPV6, /* "[IPv6:2001:db8::1]", literal[0..15] */
};

struct smtp_address {
	char local[SMTP_ADDRESS_LOCAL_MAX + 1];   /* normalised local part */
	char domain[SMTP_ADDRESS_DOMAIN_MAX + 1]; /* normalised domain; "" when none */
	/* local "@" domain; "" for the null path; just the local part for <postmaster>. */
	char mailbox[SMTP_ADDRESS_MAILBOX_MAX + 1];
	enum smtp_address_domain_type domain_type;
	uint8_t literal[16]; /* network byte order, for address literals */
	bool null_path;      /* "<>" */
	bool postmaster;     /* "<postmaster>" (any case) without a domain */
	bool had_route;      /* a source route was present and ignored */
	bool utf8;           /* the mailbox contains non-ASCII (needs SMTPUTF8) */
};

/*
 * Parses a Path ("<" [A-d-l ":"] Mailbox ">") at the start of s[0..len). It need
 * not extend to len: on success *consumed_r is the length up to and including
 * ">", so the caller can go on with ESMTP parameters. flags: enum
 * smtp_address_flags. Returns 0, or -1 with *reason_r (may be NULL) and *error_r
 * (a sentence) set; *addr is then unspecified.
 */
int smtp_address_parse_path(const char *s, size_t len, unsigned flags,
			    struct smtp_address *addr, size_t *consumed_r,
			    enum smtp_address_error *reason_r, const char **error_r);

/*
 * Parses exactly s[0..len) as a Mailbox (Local-part "@" Domain, no brackets,
 * no route), for addresses that arrive outside a path. Only ALLOW_UTF8 is
 * meaningful in flags. Same results as smtp_address_parse_path.
 */
int smtp_address_parse_mailbox(const char *s, size_t len, unsigned flags,
			       struct smtp_address *addr,
			       enum smtp_address_error *reason_r, const char **error_r);

/*
 * Length (2–4) of the strictly valid UTF-8 sequence of a non-ASCII character at
 * p (at most left octets available), or 0 when it is not one: ASCII, a stray
 * continuation byte, an overlong form, a surrogate, above U+10FFFF or truncated
 * (RFC 3629 §4).
 */
size_t smtp_address_utf8_seq(const unsigned char *p, size_t left);

/* Whether s[0..len) is entirely strictly valid UTF-8 (ASCII included). */
bool smtp_address_utf8_valid(const char *s, size_t len);

#endif
