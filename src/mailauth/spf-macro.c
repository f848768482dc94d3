/*
 * spf-macro — SPF macro strings (RFC 7208 §7): syntax check and expansion.
 *
 * The check follows the ABNF of §7.1 and §12 to the letter; the expansion
 * follows §7.3: split the letter's value at the delimiters (default "."),
 * optionally reverse the parts, keep the N right-hand ones, join them with
 * ".", and URL-escape the result when the letter is upper case. All of it runs
 * in space bounded by SPF_MACRO_OUT whatever the input, and in time linear in
 * the input and the values.
 */
#include "mailauth/spf-macro.h"

#include <assert.h>
#include <string.h>

#include "lib/ascii.h"

/* Transformer digits beyond this are all the parts anyway (a value is never
 * this long): saturating keeps the arithmetic safe. */
#define DIGITS_CAP 100000u
/* What a domain expansion keeps of its right-hand side once the buffer is
 * full: more than a 253-octet name and the dot before it. */
#define DOMAIN_KEEP 300

/* delimiter = "." / "-" / "+" / "," / "/" / "_" / "=" (§7.1) */
static bool
is_delimiter(unsigned char c)
{
	return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

/* macro-literal = %x21-24 / %x26-7E (§7.1) */
static bool
is_literal(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '%';
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum )   (§7.1) */
static bool
is_toplabel(const char *s, size_t len)
{
	bool alpha = false, hyphen = false;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '-')
			hyphen = true;
		else if (ascii_is_alpha(c))
			alpha = true;
		else if (!ascii_is_digit(c))
			return false;
	}
	if (!hyphen)
		return alpha;
	return s[0] != '-' && s[len - 1] != '-';
}

/* Reads "{" letter transformers *delimiter "}" at text[*pos] (just after the
 * "%"). Returns the letter (as written), or 0 on a syntax error. */
static unsigned char
parse_expand(const char *text, size_t len, size_t *pos, enum spf_macro_kind kind,
    const char **error_r)
{
	size_t p = *pos + 1;
	unsigned digits = 0;
	bool have_digits = false;
	unsigned char letter;

	if (p >= len) {
		*error_r = "a macro \"%{\" is not closed (RFC 7208 section 7.1)";
		return 0;
	}
	letter = (unsigned char)text[p++];
	if (strchr("slodiphcrtv", ascii_lower(letter)) == NULL || letter == '\0') {
		*error_r = "an unknown macro letter (RFC 7208 section 7.2)";
		return 0;
	}
	if (kind != SPF_MACRO_EXPLAIN && strchr("crt", ascii_lower(letter)) != NULL) {
		*error_r = "the macro letters c, r and t are allowed only in explanation "
		    "text (RFC 7208 section 7.2)";
		return 0;
	}
	while (p < len && ascii_is_digit((unsigned char)text[p])) {
		have_digits = true;
		digits = digits * 10 + (unsigned)(text[p++] - '0');
		if (digits > DIGITS_CAP)
			digits = DIGITS_CAP;
	}
	if (have_digits && digits == 0) {
		*error_r = "a macro keeps zero parts; the number must be nonzero (RFC 7208 section 7.3)";
		return 0;
	}
	if (p < len && ascii_lower((unsigned char)text[p]) == 'r')
		p++;
	while (p < len && is_delimiter((unsigned char)text[p]))
		p++;
	if (p >= len || text[p] != '}') {
		*error_r = "a macro has a bad transformer or delimiter, or no \"}\" "
		    "(RFC 7208 section 7.1)";
		return 0;
	}
	*pos = p + 1;
	return letter;
}

int
spf_macro_check(const char *text, size_t len, enum spf_macro_kind kind, const char **error_r)
{
	size_t pos = 0, tail = 0;   /* tail: where the literal text after the last macro starts */
	bool ends_in_macro = false;

	while (pos < len) {
		unsigned char c = (unsigned char)text[pos];
		if (c == '%') {
			if (pos + 1 >= len) {
				*error_r = "a \"%\" ends the macro string (RFC 7208 section 7.1)";
				return -1;
			}
			c = (unsigned char)text[pos + 1];
			if (c == '%' || c == '_' || c == '-') {
				pos += 2;
			} else if (c == '{') {
				pos++;
				if (parse_expand(text, len, &pos, kind, error_r) == 0)
					return -1;
			} else {
				*error_r = "a \"%\" is not followed by \"{\", \"%\", \"_\" or \"-\" "
				    "(RFC 7208 section 7.1)";
				return -1;
			}
			tail = pos;
			ends_in_macro = true;
		} else if (is_literal(c) || (c == ' ' && kind == SPF_MACRO_EXPLAIN)) {
			pos++;
			ends_in_macro = false;
		} else {
			*error_r = "a character that is not allowed in a macro string "
			    "(RFC 7208 section 7.1)";
			return -1;
		}
	}
	if (kind != SPF_MACRO_DOMAIN || ends_in_macro)
		return 0;
	/* domain-end = ( "." toplabel [ "." ] ) / macro-expand */
	size_t end = len;
	if (end > tail && text[end - 1] == '.')
		end--;
	size_t dot = end;
	while (dot > tail && text[dot - 1] != '.')
		dot--;
	if (dot == tail || !is_toplabel(text + dot, end - dot)) {
		*error_r = "a domain-spec must end in a macro or a dot and a top-level "
		    "label with a letter (RFC 7208 section 7.1)";
		return -1;
	}
	return 0;
}

bool
spf_macro_uses_p(const char *text)
{
	for (const char *s = text; *s != '\0'; s++) {
		if (s[0] != '%' || s[1] == '\0')
			continue;
		if (s[1] == '{' && ascii_lower((unsigned char)s[2]) == 'p')
			return true;
		s++;    /* "%%", "%_", "%-", or the "{" */
	}
	return false;
}

/* ---------------------------------------------------------------- output */

struct out {
	char *buf;
	size_t len;
	enum spf_macro_kind kind;
	bool cut;               /* a domain's left side was dropped */
};

static void
out_char(struct out *o, char c)
{
	if (o->kind == SPF_MACRO_DOMAIN) {
		if (o->len == SPF_MACRO_OUT - 1) {
			memmove(o->buf, o->buf + o->len - DOMAIN_KEEP, DOMAIN_KEEP);
			o->len = DOMAIN_KEEP;
			o->cut = true;
		}
	} else if (o->len >= SPF_EXPLANATION_MAX) {
		return;
	}
	o->buf[o->len++] = c;
}

/* RFC 3986 §2.3: unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
static void
out_value_char(struct out *o, unsigned char c, bool escape)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!escape || ascii_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
		out_char(o, (char)c);
		return;
	}
	out_char(o, '%');
	out_char(o, hex[c >> 4]);
	out_char(o, hex[c & 15]);
}

/* Emits value[start..end) with delimiters turned into ".". */
static void
out_part(struct out *o, const char *value, size_t start, size_t end, const char *delims,
    bool escape)
{
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)value[i];
		out_value_char(o, strchr(delims, c) != NULL && c != '\0' ? '.' : c, escape);
	}
}

/*
 * §7.3: split value at delims, reverse if asked, keep the `keep` right-hand
 * parts (0 = all), join with ".". Without reversal that is a suffix of the
 * value; with it, the first `keep` parts of the value, last first.
 */
static void
out_transformed(struct out *o, const char *value, unsigned keep, bool reverse,
    const char *delims, bool escape)
{
	size_t len = strlen(value), nparts = 1;

	for (size_t i = 0; i < len; i++)
		if (strchr(delims, value[i]) != NULL)
			nparts++;
	if (keep == 0 || keep > nparts)
		keep = (unsigned)(nparts < DIGITS_CAP ? nparts : DIGITS_CAP);
	if (!reverse) {
		size_t start = len, seen = 0;
		while (start > 0) {
			if (strchr(delims, value[start - 1]) != NULL && ++seen == keep)
				break;
			start--;
		}
		out_part(o, value, start, len, delims, escape);
		return;
	}
	/* The end of part number keep-1 (0-based), then parts backwards from there. */
	size_t end = 0, seen = 0;
	while (end < len) {
		if (strchr(delims, value[end]) != NULL && ++seen == keep)
			break;
		end++;
	}
	for (;;) {
		size_t start = end;
		while (start > 0 && strchr(delims, value[start - 1]) == NULL)
			start--;
		out_part(o, value, start, end, delims, escape);
		if (start == 0)
			break;
		out_value_char(o, '.', escape);
		end = start - 1;
	}
}

static const char *
letter_value(const struct spf_macro_ctx *ctx, unsigned char letter)
{
	switch (ascii_lower(letter)) {
	case 's': return ctx->s;
	case 'l': return ctx->l;
	case 'o': return ctx->o;
	case 'd': return ctx->d;
	case 'i': return ctx->i;
	case 'p': return ctx->p;
	case 'h': return ctx->h;
	case 'c': return ctx->c;
	case 'r': return ctx->r;
	case 't': return ctx->t;
	case 'v': return ctx->v;
	default: return "";
	}
}

/* Expands "{...}" at text[*pos] (just after the "%"); the syntax was checked. */
static void
expand_one(struct out *o, const char *text, size_t *pos, const struct spf_macro_ctx *ctx)
{
	size_t p = *pos + 1;
	unsigned char letter = (unsigned char)text[p++];
	unsigned keep = 0;
	bool reverse = false;
	char delims[8];
	size_t nd = 0;

	while (ascii_is_digit((unsigned char)text[p])) {
		keep = keep * 10 + (unsigned)(text[p++] - '0');
		if (keep > DIGITS_CAP)
			keep = DIGITS_CAP;
	}
	if (ascii_lower((unsigned char)text[p]) == 'r') {
		reverse = true;
		p++;
	}
	while (is_delimiter((unsigned char)text[p])) {
		if (nd < sizeof(delims) - 1 && memchr(delims, text[p], nd) == NULL)
			delims[nd++] = text[p];
		p++;
	}
	if (nd == 0)
		delims[nd++] = '.';
	delims[nd] = '\0';
	assert(text[p] == '}');
	*pos = p + 1;
	const char *value = letter_value(ctx, letter);
	out_transformed(o, value != NULL ? value : "", keep, reverse, delims,
	    ascii_is_alpha(letter) && letter < 'a');
}

/* §7.3: a name longer than 253 octets loses whole labels from the left. */
static size_t
domain_finish(struct out *o)
{
	char *b = o->buf;
	size_t len = o->len, start = 0;

	if (len > 0 && b[len - 1] == '.')
		len--;
	if (len > SPF_DOMAIN_MAX || o->cut) {
		start = len > SPF_DOMAIN_MAX ? len - SPF_DOMAIN_MAX : 0;
		while (start < len && start > 0 && b[start - 1] != '.')
			start++;
		if (start >= len)   /* no dot: one huge label; invalid however it is cut */
			start = len > SPF_DOMAIN_MAX ? len - SPF_DOMAIN_MAX : 0;
		memmove(b, b + start, len - start);
		len -= start;
	}
	b[len] = '\0';
	return len;
}

size_t
spf_macro_expand(const char *text, enum spf_macro_kind kind, const struct spf_macro_ctx *ctx,
    char *out)
{
	struct out o = { .buf = out, .len = 0, .kind = kind, .cut = false };
	size_t pos = 0;

	while (text[pos] != '\0') {
		if (text[pos] != '%') {
			out_char(&o, text[pos++]);
			continue;
		}
		switch (text[pos + 1]) {
		case '%':
			out_char(&o, '%');
			pos += 2;
			break;
		case '_':
			out_char(&o, ' ');
			pos += 2;
			break;
		case '-':
			out_char(&o, '%');
			out_char(&o, '2');
			out_char(&o, '0');
			pos += 2;
			break;
		case '\0':     /* not a checked string; stop rather than read past it */
			pos++;
			break;
		default:
			pos++;
			expand_one(&o, text, &pos, ctx);
			break;
		}
	}
	if (kind == SPF_MACRO_DOMAIN)
		return domain_finish(&o);
	out[o.len] = '\0';
	return o.len;
}
