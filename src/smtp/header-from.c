/*
 * header-from — the From: field of a submitted message: a resumable scanner over
 * the header section, and an RFC 5322 §3.4 address-list parser for its body.
 *
 * The scanner is a byte-at-a-time state machine, so chunk boundaries cannot
 * change its result. The parser is a one-token-lookahead recursive descent over
 * a lexer that skips CFWS and remembers whether any was skipped, which is how
 * CFWS inside an addr-spec is found and refused. Each addr-spec's text is handed
 * to smtp_address_parse_mailbox for validation and normalisation.
 */
#include "smtp/header-from.h"

#include <string.h>

#include "smtp/smtp-address.h"

/* ------------------------------------------------------------------ scanner */

enum scan_state {
	SCAN_LINE_START, /* at the first octet of a line */
	SCAN_NAME,       /* in a field name, matching "from" */
	SCAN_NAME_WSP,   /* after "from", WSP before the colon (RFC 5322 §4.5.2 obs-from) */
	SCAN_BODY,       /* in a field body or a continuation line */
	SCAN_SKIP,       /* rest of a line that is no From: field */
};

void header_from_scan_init(struct header_from_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->state = SCAN_LINE_START;
}

static bool is_wsp(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

static unsigned char to_lower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + ('a' - 'A')) : ch;
}

/* An octet of the first From: body. Unfolding (RFC 5322 §2.2.3) happens by the
 * line end never getting here; the WSP that starts a continuation line does. */
static void scan_keep(struct header_from_scan *s, unsigned char ch)
{
	if (!s->body_started && is_wsp(ch))
		return;
	s->body_started = true;
	if (ch == '\0' || ch == '\r')
		s->value_bad = true;
	if (s->value_len >= HEADER_FROM_VALUE_MAX) {
		s->too_long = true;
		return;
	}
	s->value[s->value_len++] = (char)ch;
	s->value[s->value_len] = '\0';
}

static void scan_field_from(struct header_from_scan *s)
{
	/* RFC 5322 §3.6: exactly one From:. All are counted, only the first kept. */
	if (s->from_count < 0xffffffffu)
		s->from_count++;
	s->capturing = s->from_count == 1;
	s->state = SCAN_BODY;
}

/* One octet of a line, the line end excluded. */
static void scan_octet(struct header_from_scan *s, unsigned char ch)
{
	static const char from[] = "from";

	if (ch == '\0')
		s->bad_octet = true;
	switch ((enum scan_state)s->state) {
	case SCAN_LINE_START:
		if (is_wsp(ch)) {
			/* RFC 5322 §2.2.3: a continuation of the field before, if any. */
			s->state = SCAN_BODY;
			if (s->capturing)
				scan_keep(s, ch);
			return;
		}
		s->capturing = false;
		s->name_pos = 0;
		s->state = SCAN_NAME;
		/* A new field name starts with this octet. */
		if (to_lower(ch) == (unsigned char)from[0])
			s->name_pos = 1;
		else
			s->state = SCAN_SKIP;
		return;
	case SCAN_NAME:
		if (s->name_pos < 4 && to_lower(ch) == (unsigned char)from[s->name_pos])
			s->name_pos++;
		else if (s->name_pos == 4 && ch == ':')
			scan_field_from(s);
		else if (s->name_pos == 4 && is_wsp(ch))
			s->state = SCAN_NAME_WSP;
		else
			s->state = SCAN_SKIP; /* another field, or no field at all */
		return;
	case SCAN_NAME_WSP:
		if (ch == ':')
			scan_field_from(s);
		else if (!is_wsp(ch))
			s->state = SCAN_SKIP;
		return;
	case SCAN_BODY:
		if (s->capturing)
			scan_keep(s, ch);
		return;
	case SCAN_SKIP:
		return;
	}
}

static void scan_line_end(struct header_from_scan *s)
{
	/* RFC 5322 §2.1: the header section ends at the first empty line. */
	if (s->state == SCAN_LINE_START)
		s->done = true;
	s->state = SCAN_LINE_START;
}

/* A CR is held back until the next octet says whether it ends the line. A
 * CR that does not is content, and suspicious: some readers end lines there. */
static void scan_lone_cr(struct header_from_scan *s)
{
	s->pending_cr = false;
	s->bad_octet = true;
	scan_octet(s, '\r');
}

size_t header_from_scan_feed(struct header_from_scan *s, const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t i;

	for (i = 0; i < len && !s->done; i++) {
		if (s->octets >= HEADER_FROM_SECTION_MAX) {
			s->overflow = true;
			s->done = true;
			break;
		}
		s->octets++;
		if (p[i] == '\n') {
			s->pending_cr = false; /* CRLF or bare LF: one line end */
			scan_line_end(s);
			continue;
		}
		if (s->pending_cr)
			scan_lone_cr(s);
		if (p[i] == '\r')
			s->pending_cr = true;
		else
			scan_octet(s, p[i]);
	}
	return i;
}

void header_from_scan_finish(struct header_from_scan *s)
{
	if (s->done)
		return;
	if (s->pending_cr)
		scan_lone_cr(s);
	s->done = true;
}

bool header_from_scan_done(const struct header_from_scan *s)
{
	return s->done;
}

unsigned header_from_scan_count(const struct header_from_scan *s)
{
	return s->from_count;
}

bool header_from_scan_too_long(const struct header_from_scan *s)
{
	return s->too_long;
}

bool header_from_scan_overflow(const struct header_from_scan *s)
{
	return s->overflow;
}

bool header_from_scan_bad_octet(const struct header_from_scan *s)
{
	return s->bad_octet;
}

const char *header_from_scan_value(const struct header_from_scan *s)
{
	/* A NUL would cut the string short and a cut body could still parse, to
	 * an address other than the one written: hand out nothing instead. */
	if (s->from_count == 0 || s->too_long || s->value_bad)
		return "";
	return s->value;
}

int header_from_scan_check(const struct header_from_scan *s, const char **error_r)
{
	if (!s->done)
		*error_r = "The message header was not read to its end.";
	else if (s->overflow)
		*error_r = "The message header section is longer than 1 MiB.";
	else if (s->bad_octet)
		*error_r = "The message header section contains a NUL or a bare CR.";
	else if (s->from_count == 0)
		*error_r = "The message has no From: field (RFC 5322 §3.6).";
	else if (s->from_count > 1)
		*error_r = "The message has more than one From: field (RFC 5322 §3.6).";
	else if (s->too_long)
		*error_r = "The From: field of the message is too long.";
	else
		return 0;
	return -1;
}

/* ------------------------------------------------------------------- lexer */

enum tok_type {
	TOK_END,
	TOK_ATOM,    /* 1*atext, RFC 5322 §3.2.3, RFC 6532 §3.2 UTF-8 included */
	TOK_QUOTED,  /* quoted-string, RFC 5322 §3.2.4, quotes included */
	TOK_LITERAL, /* domain-literal, RFC 5322 §3.4.1, brackets included */
	TOK_SPECIAL, /* one of < > : ; @ , . */
};

struct token {
	enum tok_type type;
	unsigned char ch; /* the special */
	const char *start;
	const char *end;
	bool cfws_before; /* CFWS (RFC 5322 §3.2.2) came between this and the last */
};

struct parser {
	const unsigned char *p; /* lexer position, just past tok */
	struct token tok;       /* lookahead */
	struct header_mailboxes *out;
	const char *error;
};

static bool is_atext(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') ||
	       (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

static int parse_fail(struct parser *ps, const char *error)
{
	if (ps->error == NULL)
		ps->error = error;
	return -1;
}

/*
 * Length of the octets at p that may stand in text (qtext, ctext: both are
 * VCHAR minus a few specials, plus WSP) — one printable ASCII octet or WSP, or a
 * strictly valid UTF-8 character (RFC 6532 §3.2) — or 0 for a control
 * character, DEL or invalid UTF-8. obs-qtext and obs-ctext (RFC 5322 §4.1),
 * which allow controls, are not accepted: NUL, CR and LF must never pass.
 */
static size_t text_len(const unsigned char *p)
{
	if (*p == ' ' || *p == '\t' || (*p > 32 && *p < 127))
		return 1;
	if (*p >= 0x80)
		return smtp_address_utf8_seq(p, strnlen((const char *)p, 4));
	return 0;
}

/* comment = "(" *([FWS] ccontent) [FWS] ")", nesting, RFC 5322 §3.2.2. */
static int lex_comment(struct parser *ps)
{
	unsigned depth = 0;

	do {
		size_t n;

		if (*ps->p == '\0')
			return parse_fail(ps, "The From: field has an unterminated comment.");
		if (*ps->p == '(') {
			depth++;
			ps->p++;
		} else if (*ps->p == ')') {
			depth--;
			ps->p++;
		} else if (*ps->p == '\\') {
			/* quoted-pair = "\" (VCHAR / WSP), RFC 5322 §3.2.1 */
			if ((n = text_len(ps->p + 1)) == 0)
				return parse_fail(ps, "The From: field has an invalid quoted-pair.");
			ps->p += 1 + n;
		} else if ((n = text_len(ps->p)) != 0)
			ps->p += n;
		else
			return parse_fail(ps, "The From: field contains a control character or invalid UTF-8.");
	} while (depth > 0);
	return 0;
}

/* quoted-string = DQUOTE *([FWS] qcontent) [FWS] DQUOTE, RFC 5322 §3.2.4. */
static int lex_quoted(struct parser *ps)
{
	ps->p++;
	for (;;) {
		size_t n;

		if (*ps->p == '\0')
			return parse_fail(ps, "The From: field has an unterminated quoted string.");
		if (*ps->p == '"') {
			ps->p++;
			return 0;
		}
		if (*ps->p == '\\') {
			if ((n = text_len(ps->p + 1)) == 0)
				return parse_fail(ps, "The From: field has an invalid quoted-pair.");
			ps->p += 1 + n;
		} else if ((n = text_len(ps->p)) != 0)
			ps->p += n;
		else
			return parse_fail(ps, "The From: field contains a control character or invalid UTF-8.");
	}
}

/* domain-literal = "[" *dtext "]", RFC 5322 §3.4.1, without FWS or the
 * obs-dtext quoted-pairs: smtp-address judges what is inside. */
static int lex_literal(struct parser *ps)
{
	ps->p++;
	while (*ps->p != ']') {
		if (*ps->p == '\0')
			return parse_fail(ps, "The From: field has an unterminated domain literal.");
		if (*ps->p <= 32 || *ps->p >= 127 || *ps->p == '[' || *ps->p == '\\')
			return parse_fail(ps, "The From: field has an invalid domain literal.");
		ps->p++;
	}
	ps->p++;
	return 0;
}

/* Reads the next token into ps->tok, skipping CFWS before it. */
static int lex_next(struct parser *ps)
{
	struct token *t = &ps->tok;

	t->cfws_before = false;
	for (;;) {
		if (is_wsp(*ps->p))
			ps->p++;
		else if (*ps->p == '(') {
			if (lex_comment(ps) < 0)
				return -1;
		} else
			break;
		t->cfws_before = true;
	}
	t->start = (const char *)ps->p;
	t->ch = *ps->p;
	switch (*ps->p) {
	case '\0':
		t->type = TOK_END;
		break;
	case '"':
		t->type = TOK_QUOTED;
		if (lex_quoted(ps) < 0)
			return -1;
		break;
	case '[':
		t->type = TOK_LITERAL;
		if (lex_literal(ps) < 0)
			return -1;
		break;
	case '<': case '>': case ':': case ';': case '@': case ',': case '.':
		t->type = TOK_SPECIAL;
		ps->p++;
		break;
	default:
		t->type = TOK_ATOM;
		for (;;) {
			size_t n;

			if (is_atext(*ps->p))
				ps->p++;
			else if (*ps->p >= 0x80 && (n = text_len(ps->p)) != 0)
				ps->p += n;
			else
				break;
		}
		if ((const char *)ps->p == t->start) {
			if (*ps->p == ')' || *ps->p == ']' || *ps->p == '\\')
				return parse_fail(ps, "The From: field has a stray special character.");
			return parse_fail(ps, "The From: field contains a control character or invalid UTF-8.");
		}
		break;
	}
	t->end = (const char *)ps->p;
	return 0;
}

static bool tok_is(const struct parser *ps, unsigned char special)
{
	return ps->tok.type == TOK_SPECIAL && ps->tok.ch == special;
}

static bool tok_is_word(const struct parser *ps)
{
	return ps->tok.type == TOK_ATOM || ps->tok.type == TOK_QUOTED;
}

/* ------------------------------------------------------------------ parser */

static int add_mailbox(struct parser *ps, const char *start, const char *end)
{
	struct smtp_address a;
	enum smtp_address_error reason;
	const char *error;

	if (ps->out->n >= HEADER_FROM_MAX_MAILBOXES)
		return parse_fail(ps, "The From: field lists more than 32 addresses.");
	if (smtp_address_parse_mailbox(start, (size_t)(end - start), SMTP_ADDRESS_ALLOW_UTF8,
				       &a, &reason, &error) < 0) {
		if (reason == SMTP_ADDRESS_ERR_TOO_LONG)
			return parse_fail(ps, "An address in the From: field is too long "
					      "(RFC 5321 §4.5.3.1).");
		return parse_fail(ps, "An address in the From: field is not a valid mailbox.");
	}
	_Static_assert(sizeof(ps->out->addr[0]) > SMTP_ADDRESS_MAILBOX_MAX, "addr too small");
	memcpy(ps->out->addr[ps->out->n], a.mailbox, strlen(a.mailbox) + 1);
	ps->out->n++;
	return 0;
}

/*
 * The rest of an addr-spec whose local part, start..tok, was already read: "@"
 * and the domain, all without CFWS in between (RFC 5322 allows it there; mail
 * readers differ on what it means, so it is refused).
 */
static int parse_addr_spec_rest(struct parser *ps, const char *start)
{
	const char *end;

	if (!tok_is(ps, '@') || ps->tok.cfws_before)
		return parse_fail(ps, "The From: field has text where an address was expected.");
	if (lex_next(ps) < 0)
		return -1;
	if (ps->tok.cfws_before ||
	    (ps->tok.type != TOK_ATOM && ps->tok.type != TOK_LITERAL))
		return parse_fail(ps, "An address in the From: field has no domain.");
	if (ps->tok.type == TOK_LITERAL) {
		end = ps->tok.end;
		if (lex_next(ps) < 0)
			return -1;
	} else {
		/* dot-atom: the lexer split it at the dots. */
		do {
			end = ps->tok.end;
			if (lex_next(ps) < 0)
				return -1;
		} while (!ps->tok.cfws_before && (ps->tok.type == TOK_ATOM || tok_is(ps, '.')));
	}
	if (!ps->tok.cfws_before && ps->tok.type != TOK_END && ps->tok.type != TOK_SPECIAL)
		return parse_fail(ps, "An address in the From: field is not a valid mailbox.");
	return add_mailbox(ps, start, end);
}

/* addr-spec = local-part "@" domain, RFC 5322 §3.4.1, no CFWS inside. */
static int parse_addr_spec(struct parser *ps)
{
	const char *start = ps->tok.start;

	if (!tok_is_word(ps) && !tok_is(ps, '.'))
		return parse_fail(ps, "The From: field has an empty or malformed address.");
	do {
		if (lex_next(ps) < 0)
			return -1;
	} while (!ps->tok.cfws_before && (tok_is_word(ps) || tok_is(ps, '.')));
	return parse_addr_spec_rest(ps, start);
}

/* obs-route = obs-domain-list ":", RFC 5322 §4.4, read and ignored: the
 * mailbox is what follows (RFC 5321 Appendix C). Accepted strictly as
 * "@domain *("," "@domain") ":"". */
static int parse_obs_route(struct parser *ps)
{
	for (;;) {
		if (!tok_is(ps, '@'))
			return parse_fail(ps, "The From: field has a malformed source route.");
		if (lex_next(ps) < 0)
			return -1;
		if (ps->tok.type != TOK_ATOM)
			return parse_fail(ps, "The From: field has a malformed source route.");
		while (!ps->tok.cfws_before && (ps->tok.type == TOK_ATOM || tok_is(ps, '.'))) {
			if (lex_next(ps) < 0)
				return -1;
		}
		if (tok_is(ps, ':'))
			return lex_next(ps);
		if (!tok_is(ps, ','))
			return parse_fail(ps, "The From: field has a malformed source route.");
		if (lex_next(ps) < 0)
			return -1;
	}
}

/* angle-addr = [CFWS] "<" [obs-route] addr-spec ">" [CFWS], RFC 5322 §3.4, §4.4;
 * tok is "<". */
static int parse_angle_addr(struct parser *ps)
{
	if (lex_next(ps) < 0)
		return -1;
	if (tok_is(ps, '>'))
		return parse_fail(ps, "The From: field has an empty address <>.");
	if (tok_is(ps, '@') && parse_obs_route(ps) < 0)
		return -1;
	if (parse_addr_spec(ps) < 0)
		return -1;
	if (!tok_is(ps, '>'))
		return parse_fail(ps, "An address in the From: field lacks its closing >.");
	return lex_next(ps);
}

/*
 * address = mailbox / group; mailbox = name-addr / addr-spec; name-addr =
 * [display-name] angle-addr; display-name = phrase = 1*word / obs-phrase
 * (word *(word / "." / CFWS)), RFC 5322 §3.4, §4.1. A run of words and dots is
 * read first; what follows decides: "<" makes it a display name, ":" a group
 * name, "@" the local part of an addr-spec. A display name that holds "@" or
 * any other special ends up in none of these and is refused, so
 * "alice@evil.org <bob@good.org>" fails rather than yield either address.
 */
static int parse_address(struct parser *ps, bool in_group)
{
	const char *start = ps->tok.start;
	bool first_dot = tok_is(ps, '.');
	bool words = false, spaced = false;

	while (tok_is_word(ps) || tok_is(ps, '.')) {
		if (words && ps->tok.cfws_before)
			spaced = true;
		words = true;
		if (lex_next(ps) < 0)
			return -1;
	}
	if (tok_is(ps, '@')) {
		if (!words || spaced)
			return parse_fail(ps, "The From: field has an empty or malformed address.");
		return parse_addr_spec_rest(ps, start);
	}
	if (words && first_dot)
		return parse_fail(ps, "The From: field has a malformed display name.");
	if (tok_is(ps, '<'))
		return parse_angle_addr(ps);
	if (tok_is(ps, ':') && words) {
		/* group = display-name ":" [group-list] ";" [CFWS], RFC 5322 §3.4 */
		if (in_group)
			return parse_fail(ps, "The From: field nests a group in a group.");
		if (lex_next(ps) < 0)
			return -1;
		if (!tok_is(ps, ';')) {
			for (;;) {
				if (parse_address(ps, true) < 0)
					return -1;
				if (tok_is(ps, ';'))
					break;
				if (!tok_is(ps, ','))
					return parse_fail(ps, "A group in the From: field does not end with ;.");
				if (lex_next(ps) < 0)
					return -1;
			}
		}
		return lex_next(ps);
	}
	if (words)
		return parse_fail(ps, "The From: field has a name without an address.");
	if (ps->tok.type == TOK_END)
		return parse_fail(ps, "The From: field holds no address.");
	return parse_fail(ps, "The From: field has an empty or malformed address.");
}

int header_from_parse(const char *value, struct header_mailboxes *out, const char **error_r)
{
	struct parser ps = { .p = (const unsigned char *)value, .out = out };

	out->n = 0;
	if (lex_next(&ps) < 0)
		goto fail;
	/* address-list = address *("," address), RFC 5322 §3.4; no obs empty members. */
	for (;;) {
		if (parse_address(&ps, false) < 0)
			goto fail;
		if (ps.tok.type == TOK_END)
			break;
		if (!tok_is(&ps, ',')) {
			parse_fail(&ps, "The From: field has text after an address.");
			goto fail;
		}
		if (lex_next(&ps) < 0)
			goto fail;
	}
	if (out->n == 0) {
		parse_fail(&ps, "The From: field holds no address.");
		goto fail;
	}
	return 0;
fail:
	*error_r = ps.error;
	return -1;
}
