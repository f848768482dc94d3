/*
 * smtp-reply — reading what an SMTP server answers, for the SMTP client.
 *
 * A reply is one or more lines "CODE-text" ... "CODE text" (RFC 5321 §4.2,
 * §4.2.1: every line of a multiline reply carries the same code; the last has a
 * space, or nothing, after the code). The text may start with an enhanced
 * status code "c.s.d" (RFC 3463, RFC 2034 §3), which is taken apart. The parser
 * is fed one line at a time (without CRLF) and is strict where a peer could
 * confuse us: a code outside 200..599, codes that differ between lines, a
 * missing separator, or more than SMTP_REPLY_MAX_LINES lines is an error (the
 * client then drops the connection as a protocol failure).
 *
 * smtp_ehlo_caps_parse() reads the service extensions of an EHLO reply
 * (RFC 5321 §4.1.1.1: one keyword per line after the first, with parameters).
 */
#ifndef RAMPART_SMTP_REPLY_H
#define RAMPART_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; servers exceed it. Longer
 * lines are an error for the parser (the client reads lines of at most this). */
#define SMTP_REPLY_MAX_LINE 4096
#define SMTP_REPLY_MAX_LINES 128
/* The text kept of a reply (lines joined by one space, after the enhanced code
 * of the first line); the rest is cut with "...". */
#define SMTP_REPLY_MAX_TEXT 1024

struct smtp_reply {
	unsigned code;              /* 200..599 */
	char enhanced[16];          /* "5.1.1", or "" when the reply has none */
	char text[SMTP_REPLY_MAX_TEXT + 1]; /* printable ASCII only: other bytes become '?' */
	size_t nlines;
};

struct smtp_reply_parser {
	struct smtp_reply reply;    /* being assembled; complete when feed returns 1 */
	size_t textlen;
	bool started;
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);
/* Feeds one line (no CRLF; may contain any byte). Returns 1 when it completes a
 * reply (p->reply holds it; the next feed starts a new one), 0 when more lines
 * are needed, -1 on a syntax error (*error_r says what; the parser is reset). */
int smtp_reply_parse_line(struct smtp_reply_parser *p, const char *line, size_t len,
    const char **error_r);

/* 2, 3, 4 or 5: the first digit of the code. */
static inline unsigned smtp_reply_class(const struct smtp_reply *r) { return r->code / 100; }
/* "550 5.1.1 text" into buf (always NUL-terminated, cut to size); returns buf. */
const char *smtp_reply_format(const struct smtp_reply *r, char *buf, size_t size);

/* The extensions Rampart uses, from an EHLO reply (RFC 5321 §4.1.1.1). */
struct smtp_ehlo_caps {
	bool starttls;              /* RFC 3207 */
	bool pipelining;            /* RFC 2920 */
	bool eightbitmime;          /* RFC 6152 */
	bool smtputf8;              /* RFC 6531 */
	bool chunking;              /* RFC 3030 (BDAT) */
	bool dsn;                   /* RFC 3461 */
	bool enhancedstatuscodes;   /* RFC 2034 */
	bool size;                  /* RFC 1870: SIZE offered */
	uint64_t size_max;          /* its parameter; 0 = no limit stated */
	bool auth_plain, auth_login;/* RFC 4954: mechanisms offered in AUTH */
};
/* Reads the caps from a complete 250 reply's lines. Keywords are
 * case-insensitive; unknown ones are ignored; a SIZE parameter that is not a
 * number is treated as "no limit stated"; "AUTH=..." (pre-RFC 4954 servers) is
 * read like "AUTH ...". Needs the raw lines, so it is fed like the parser: call
 * smtp_ehlo_caps_line() for every line after the first (the first carries the
 * server's name and greeting), with the text after the "250-" or "250 " prefix
 * (line + 4, len - 4; an empty text when the line is just "250"). Keywords other
 * than SIZE and AUTH count only without parameters. Caps are only added: start
 * with smtp_ehlo_caps_init() for each EHLO (RFC 3207 §4.2 after STARTTLS). */
void smtp_ehlo_caps_init(struct smtp_ehlo_caps *c);
void smtp_ehlo_caps_line(struct smtp_ehlo_caps *c, const char *line, size_t len);

#endif
