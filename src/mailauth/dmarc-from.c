/*
 * dmarc-from — the RFC5322.From domain of a received header section, the
 * identifier DMARC evaluates (RFC 7489 §3.1, §6.6.1).
 *
 * The header section is scanned line by line (LF or CRLF ends a line; an empty
 * line ends the section). Every field named "From" is counted (RFC 5322 §3.6
 * allows exactly one); the body of the first is unfolded (§2.2.3) into a bounded
 * buffer and parsed as an address-list (§3.4): display names, quoted strings,
 * comments (nested, counted, never recursed into), angle addresses with an
 * obsolete route (§4.4), domain literals and groups (which cannot nest). The
 * parser is a flat state machine over tokens, so hostile input costs linear
 * time and constant stack.
 *
 * Leniency: a quoted display name followed by a bare addr-spec ("\"Joe\"
 * joe@example.com") and empty list elements (§4.4 obs-mbox-list) are accepted,
 * because the domain is still unambiguous; anything else that does not parse is
 * -1, as are several From fields and several domains (§6.6.1 leaves these to
 * the receiver; refusing to guess is the safe choice). A domain literal is no
 * domain name (0). UTF-8 (RFC 6532) passes through as is; only ASCII letters
 * are lowered.
 */
#include "mailauth/dmarc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FROM_VALUE_MAX 8192    /* unfolded From: body; far above any real one */
#define COMMENT_DEPTH_MAX 64

static bool is_wsp(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

/* RFC 5322 §3.2.3 atext, with RFC 6532 §3.2 UTF8-non-ascii, and "." so that a
 * dot-atom (or obs-local-part's dots) comes out as one word. */
static bool is_word(unsigned char ch)
{
	if (ch >= 0x80)
		return true;
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", ch) != NULL;
}

enum tok {
	TOK_END, TOK_WORD, TOK_QSTR, TOK_DLIT,
	TOK_LT, TOK_GT, TOK_AT, TOK_COMMA, TOK_COLON, TOK_SEMI,
	TOK_BAD,
};

struct lexer {
	const unsigned char *s;
	size_t len, pos;
	const unsigned char *text;    /* of the last WORD or DLIT */
	size_t text_len;
};

/* Skips CFWS (§3.2.2). Returns -1 on an unterminated or too deep comment. */
static int skip_cfws(struct lexer *lx)
{
	size_t depth = 0;

	while (lx->pos < lx->len) {
		unsigned char ch = lx->s[lx->pos];
		if (depth > 0 && ch == '\\' && lx->pos + 1 < lx->len) {
			lx->pos += 2;
			continue;
		}
		if (ch == '(') {
			if (++depth > COMMENT_DEPTH_MAX)
				return -1;
		} else if (ch == ')' && depth > 0) {
			depth--;
		} else if (depth == 0 && !is_wsp(ch)) {
			break;
		}
		lx->pos++;
	}
	return depth == 0 ? 0 : -1;
}

static enum tok lex(struct lexer *lx)
{
	if (skip_cfws(lx) < 0)
		return TOK_BAD;
	if (lx->pos >= lx->len)
		return TOK_END;
	unsigned char ch = lx->s[lx->pos];
	size_t start = lx->pos;
	switch (ch) {
	case '<': lx->pos++; return TOK_LT;
	case '>': lx->pos++; return TOK_GT;
	case '@': lx->pos++; return TOK_AT;
	case ',': lx->pos++; return TOK_COMMA;
	case ':': lx->pos++; return TOK_COLON;
	case ';': lx->pos++; return TOK_SEMI;
	case '"':
		/* §3.2.4 quoted-string; its content does not matter here. */
		for (lx->pos++; lx->pos < lx->len; lx->pos++) {
			if (lx->s[lx->pos] == '\\')
				lx->pos++;
			else if (lx->s[lx->pos] == '"')
				break;
		}
		if (lx->pos >= lx->len)
			return TOK_BAD;
		lx->pos++;
		return TOK_QSTR;
	case '[':
		/* §3.4.1 domain-literal: dtext and quoted-pairs, no nesting. */
		for (lx->pos++; lx->pos < lx->len; lx->pos++) {
			unsigned char c = lx->s[lx->pos];
			if (c == '\\')
				lx->pos++;
			else if (c == ']' || c == '[')
				break;
		}
		if (lx->pos >= lx->len || lx->s[lx->pos] != ']')
			return TOK_BAD;
		lx->pos++;
		lx->text = lx->s + start;
		lx->text_len = lx->pos - start;
		return TOK_DLIT;
	default:
		break;
	}
	if (!is_word(ch))
		return TOK_BAD;
	while (lx->pos < lx->len && is_word(lx->s[lx->pos]))
		lx->pos++;
	lx->text = lx->s + start;
	lx->text_len = lx->pos - start;
	return TOK_WORD;
}

/* §3.2.3 dot-atom-text: no leading, trailing or doubled dot. */
static bool is_dot_atom(const unsigned char *p, size_t len)
{
	if (len == 0 || p[0] == '.' || p[len - 1] == '.')
		return false;
	for (size_t i = 1; i < len; i++) {
		if (p[i] == '.' && p[i - 1] == '.')
			return false;
	}
	return true;
}

/* RFC 3629 well-formed UTF-8. */
static bool is_utf8(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		size_t n;
		unsigned min;
		unsigned cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1; min = 0x80; cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2; min = 0x800; cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3; min = 0x10000; cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* The domains found so far: the first is kept; another one must equal it. */
struct found {
	char *domain;
	size_t size;
	bool have, literal, differ;
};

static int found_domain(struct found *f, enum tok t, const unsigned char *p, size_t len,
    const char **error_r)
{
	if (t == TOK_DLIT) {
		f->literal = true;
		return 0;
	}
	if (!is_dot_atom(p, len) || !is_utf8(p, len)) {
		*error_r = "the From: address has a malformed domain";
		return -1;
	}
	if (len >= f->size) {
		*error_r = "the From: domain is too long";
		return -1;
	}
	if (f->have) {
		if (strlen(f->domain) != len || strncasecmp(f->domain, (const char *)p, len) != 0)
			f->differ = true;
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		f->domain[i] = (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
	}
	f->domain[len] = '\0';
	f->have = true;
	return 0;
}

/* Parses an address-list (§3.4) and records the domain of every mailbox. */
static int parse_address_list(const unsigned char *s, size_t len, struct found *f,
    const char **error_r)
{
	struct lexer lx = { .s = s, .len = len };
	bool in_group = false;
	enum tok t = lex(&lx);

	for (;;) {
		/* Start of an address (or of a mailbox inside a group): a phrase. */
		size_t words = 0;
		while (t == TOK_WORD || t == TOK_QSTR) {
			words++;
			t = lex(&lx);
		}
		if (t == TOK_LT) {
			/* angle-addr, with an optional obs-route "@a,@b:" (§4.4) */
			t = lex(&lx);
			if (t == TOK_AT) {
				while (t != TOK_COLON && t != TOK_END && t != TOK_BAD && t != TOK_GT)
					t = lex(&lx);
				if (t != TOK_COLON)
					goto bad;
				t = lex(&lx);
			}
			size_t local = 0;
			while (t == TOK_WORD || t == TOK_QSTR) {
				local++;
				t = lex(&lx);
			}
			if (local == 0 || t != TOK_AT)
				goto bad;
			t = lex(&lx);
			if (t != TOK_WORD && t != TOK_DLIT)
				goto bad;
			if (found_domain(f, t, lx.text, lx.text_len, error_r) < 0)
				return -1;
			if (lex(&lx) != TOK_GT)
				goto bad;
			t = lex(&lx);
		} else if (t == TOK_AT) {
			/* addr-spec; the phrase was its local part */
			if (words == 0)
				goto bad;
			t = lex(&lx);
			if (t != TOK_WORD && t != TOK_DLIT)
				goto bad;
			if (found_domain(f, t, lx.text, lx.text_len, error_r) < 0)
				return -1;
			t = lex(&lx);
		} else if (t == TOK_COLON) {
			/* group = display-name ":" [group-list] ";" — groups do not nest */
			if (words == 0 || in_group)
				goto bad;
			in_group = true;
			t = lex(&lx);
			continue;
		} else if (words > 0) {
			goto bad;   /* a phrase that is no address */
		}
		/* After an address, or an empty element. */
		if (t == TOK_SEMI && in_group) {
			in_group = false;
			t = lex(&lx);
		}
		if (t == TOK_COMMA) {
			t = lex(&lx);
			continue;
		}
		if (t == TOK_END && !in_group)
			return 0;
		goto bad;
	}
bad:
	*error_r = "the From: field is not a valid address list";
	return -1;
}

/* Finds the From: fields; unfolds the first into *value (malloc'd). Returns the
 * number of From: fields (0, 1, 2 meaning "more than one"), or -1. */
static int find_from(const char *headers, size_t len, unsigned char **value,
    size_t *value_len, const char **error_r)
{
	unsigned char *buf = NULL;
	size_t n = 0;
	int count = 0;
	bool capturing = false;

	*value = NULL;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(headers + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - headers) : len;
		size_t next = nl != NULL ? end + 1 : len;
		const char *line = headers + pos;
		size_t line_len = end - pos;

		if (line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		pos = next;
		if (line_len == 0)
			break;   /* the empty line ends the header section (§2.1) */
		if (is_wsp((unsigned char)line[0])) {
			if (!capturing)
				continue;
		} else {
			capturing = false;
			/* field-name *WSP ":" (§3.6.2, §4.5 obs-from) */
			if (line_len < 4 || strncasecmp(line, "from", 4) != 0)
				continue;
			size_t k = 4;
			while (k < line_len && is_wsp((unsigned char)line[k]))
				k++;
			if (k >= line_len || line[k] != ':')
				continue;
			if (++count > 1)
				break;
			capturing = true;
			buf = malloc(FROM_VALUE_MAX);
			if (buf == NULL) {
				*error_r = "out of memory";
				return -1;
			}
			line += k + 1;
			line_len -= k + 1;
		}
		/* Unfolding: the line break goes, the WSP that follows stays. */
		if (line_len > FROM_VALUE_MAX - n) {
			free(buf);
			*error_r = "the From: field is too long";
			return -1;
		}
		memcpy(buf + n, line, line_len);
		n += line_len;
	}
	*value = buf;
	*value_len = n;
	return count;
}

int dmarc_from_domain(const char *headers, size_t len, char *domain, size_t size,
    const char **error_r)
{
	unsigned char *value;
	size_t value_len = 0;
	struct found f = { .domain = domain, .size = size };
	int count, ret;

	if (size > 0)
		domain[0] = '\0';
	count = find_from(headers, len, &value, &value_len, error_r);
	if (count < 0)
		return -1;
	if (count > 1) {
		free(value);
		*error_r = "the message has more than one From: field";
		return -1;
	}
	if (count == 0) {
		*error_r = "the message has no From: field";
		return 0;
	}
	for (size_t i = 0; i < value_len; i++) {
		if (value[i] < 0x20 && !is_wsp(value[i])) {
			free(value);
			*error_r = "the From: field contains control characters";
			return -1;
		}
	}
	ret = parse_address_list(value, value_len, &f, error_r);
	free(value);
	if (ret < 0) {
		if (size > 0)
			domain[0] = '\0';
		return -1;
	}
	if (f.differ || (f.have && f.literal)) {
		domain[0] = '\0';
		*error_r = "the From: field has addresses in different domains";
		return -1;
	}
	if (!f.have) {
		*error_r = "the From: field names no domain";
		return 0;
	}
	return 1;
}
