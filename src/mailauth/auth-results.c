/*
 * auth-results — the Authentication-Results header field (RFC 8601): writing
 * ours, and recognising fields that claim our authserv-id (§5).
 *
 * Writing: the authserv-id on the first line, each resinfo on a line of its
 * own ("\r\n\t"), its elements (method=result, reason, ptype.property=value)
 * separated by spaces and folded onto new lines when a line would pass 78
 * octets (RFC 5322 §2.1.1); a quoted value that is still too long is folded at
 * its own spaces, which unfolding restores (RFC 5322 §3.2.4: FWS inside a
 * quoted-string). Values are RFC 2045 tokens, or RFC 8601 §2.2 pvalue address
 * forms ([local-part] "@" domain-name), or else quoted strings. Everything
 * from the caller is made safe first: control characters and invalid UTF-8
 * become "?", values are capped so that no line can pass 998 octets (§2.1.1).
 *
 * Recognising: [CFWS] authserv-id, where the id is an RFC 2045 value (token or
 * quoted-string), compared without ASCII case (§2.5). The id is the claim, so
 * what follows it only has to end it (CFWS, ";" or the end); comments nest and
 * are skipped with a counter, not recursion.
 */
#include "mailauth/auth-results.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VALUE_MAX 400    /* octets of a value before quoting */
#define KEYWORD_MAX 64   /* method, result, ptype.property */
#define LINE_MAX_SOFT 78

struct ar_prop {
	char *name, *value;
};

struct ar_res {
	char *method, *result, *reason;
	struct ar_prop *props;
	size_t nprops;
};

struct auth_results {
	char *id;
	struct ar_res *res;
	size_t n;
	bool failed;     /* memory ran out: format gives NULL */
};

/* ------------------------------------------------------------ making safe */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
	unsigned cp;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2; cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3; cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4; cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A copy of s with control characters and invalid UTF-8 replaced by "?",
 * at most VALUE_MAX octets (cut between characters). */
static char *safe_value(const char *s)
{
	size_t len = strlen(s), o = 0;
	char *out = malloc(VALUE_MAX + 1);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len;) {
		const unsigned char *p = (const unsigned char *)s + i;
		size_t n = utf8_len(p, len - i);
		if (n == 0 || (n == 1 && (p[0] < 0x20 || p[0] == 0x7f))) {
			if (o + 1 > VALUE_MAX)
				break;
			out[o++] = '?';
			i += n == 0 ? 1 : n;
			continue;
		}
		if (o + n > VALUE_MAX)
			break;
		memcpy(out + o, p, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	return out;
}

static bool is_keyword_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_';
}

/* method, result and ptype.property are keywords (§2.2); anything else in them
 * becomes "-" ("x" when empty). */
static char *safe_keyword(const char *s)
{
	size_t len = strnlen(s, KEYWORD_MAX);
	char *out = malloc(len + 2);

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		out[i] = is_keyword_char(s[i]) ? s[i] : '-';
	if (len == 0)
		out[len++] = 'x';
	out[len] = '\0';
	return out;
}

/* ---------------------------------------------------------------- building */

struct auth_results *auth_results_new(const char *authserv_id)
{
	struct auth_results *ar = calloc(1, sizeof(*ar));

	if (ar == NULL)
		return NULL;
	ar->id = safe_value(authserv_id != NULL ? authserv_id : "");
	if (ar->id == NULL) {
		free(ar);
		return NULL;
	}
	return ar;
}

static void res_clear(struct ar_res *r)
{
	free(r->method);
	free(r->result);
	free(r->reason);
	for (size_t i = 0; i < r->nprops; i++) {
		free(r->props[i].name);
		free(r->props[i].value);
	}
	free(r->props);
}

void auth_results_add(struct auth_results *ar, const char *method, const char *result,
    const char *reason, ...)
{
	struct ar_res r = { .method = NULL };
	struct ar_res *grown;
	va_list ap;
	size_t count = 0;

	if (ar == NULL || ar->failed)
		return;
	va_start(ap, reason);
	while (va_arg(ap, const char *) != NULL)
		count++;
	va_end(ap);
	r.method = safe_keyword(method != NULL ? method : "");
	r.result = safe_keyword(result != NULL ? result : "");
	r.reason = reason != NULL ? safe_value(reason) : NULL;
	r.props = calloc(count / 2 + 1, sizeof(*r.props));
	if (r.method == NULL || r.result == NULL || (reason != NULL && r.reason == NULL) ||
	    r.props == NULL)
		goto fail;
	va_start(ap, reason);
	/* An odd trailing name (a caller's mistake) is left out. */
	for (size_t i = 0; i < count / 2; i++) {
		const char *name = va_arg(ap, const char *);
		const char *value = va_arg(ap, const char *);
		struct ar_prop *p = &r.props[r.nprops];
		p->name = safe_keyword(name);
		p->value = safe_value(value);
		r.nprops++;
		if (p->name == NULL || p->value == NULL) {
			va_end(ap);
			goto fail;
		}
	}
	va_end(ap);
	grown = realloc(ar->res, (ar->n + 1) * sizeof(*ar->res));
	if (grown == NULL)
		goto fail;
	ar->res = grown;
	ar->res[ar->n++] = r;
	return;
fail:
	res_clear(&r);
	ar->failed = true;
}

void auth_results_free(struct auth_results **arp)
{
	struct auth_results *ar = *arp;

	if (ar == NULL)
		return;
	for (size_t i = 0; i < ar->n; i++)
		res_clear(&ar->res[i]);
	free(ar->res);
	free(ar->id);
	free(ar);
	*arp = NULL;
}

/* -------------------------------------------------------------- formatting */

struct out {
	char *buf;
	size_t len, size, line;   /* line: octets on the current line */
	bool failed;
};

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->len + n + 1 > o->size) {
		size_t size = o->size * 2 + n + 64;
		char *b = realloc(o->buf, size);
		if (b == NULL) {
			o->failed = true;
			return;
		}
		o->buf = b;
		o->size = size;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
	const char *nl = NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			nl = s + i;
	}
	o->line = nl != NULL ? (size_t)(s + n - nl - 1) : o->line + n;
}

static void out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* RFC 2045 §5.1 token: CHAR except SPACE, CTLs and tspecials. */
static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c) != NULL)
			return false;
	}
	return true;
}

static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 8601 §2.2 pvalue's [ [ local-part ] "@" ] domain-name, with a dot-atom
 * local part and an RFC 6376 domain-name (LDH labels, at least two). */
static bool is_address_form(const char *s)
{
	const char *at = strrchr(s, '@');
	size_t labels = 0, label = 0;

	if (at == NULL)
		return false;
	for (const char *p = s; p < at; p++) {
		if (*p == '.' ? (p == s || p[-1] == '.' || p + 1 == at) : !is_atext((unsigned char)*p))
			return false;
	}
	for (const char *p = at + 1;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || p[-1] == '-' || (*p == '.' && p[1] == '\0'))
				return false;
			labels++;
			label = 0;
			if (*p == '\0')
				break;
			continue;
		}
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9');
		if (!alnum && (*p != '-' || label == 0))
			return false;
		label++;
	}
	return labels >= 2;
}

/* How a value may be written: always quoted (reason), an RFC 2045 value
 * (token or quoted-string: the authserv-id, §2.2), or a pvalue (properties). */
enum quoting { QUOTE_ALWAYS, QUOTE_VALUE, QUOTE_PVALUE };

/* Appends value as written in the field: as is, or as a quoted-string. */
static void out_value(struct out *o, const char *v, enum quoting q)
{
	if ((q == QUOTE_VALUE && is_token(v)) ||
	    (q == QUOTE_PVALUE && (is_token(v) || is_address_form(v)))) {
		out_str(o, v);
		return;
	}
	out_put(o, "\"", 1);
	for (; *v != '\0'; v++) {
		if (*v == '"' || *v == '\\')
			out_put(o, "\\", 1);
		out_put(o, v, 1);
	}
	out_put(o, "\"", 1);
}

/* Places one element (no CR/LF in it; spaces only inside a quoted string) on
 * the current line after a space, or on a new line; a quoted string too long
 * for any line is folded at its own spaces. */
static void place(struct out *o, const char *elem, bool first_on_line)
{
	size_t len = strlen(elem);

	if (!first_on_line) {
		if (o->line + 1 + len > LINE_MAX_SOFT) {
			out_str(o, "\r\n\t");
		} else {
			out_put(o, " ", 1);
		}
	}
	if (o->line + len <= LINE_MAX_SOFT) {
		out_put(o, elem, len);
		return;
	}
	/* Word by word; the fold comes before a space, which stays as the WSP
	 * that starts the continuation line, and never before an empty word. */
	const char *p = elem;
	for (bool first = true;; first = false) {
		const char *sp = strchr(p, ' ');
		size_t n = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if (!first) {
			if (n > 0 && o->line + 1 + n > LINE_MAX_SOFT && o->line > 1)
				out_put(o, "\r\n ", 3);
			else
				out_put(o, " ", 1);
		}
		out_put(o, p, n);
		if (sp == NULL)
			break;
		p = sp + 1;
	}
}

/* Formats "name=value" (value written as out_value does) into a new string. */
static char *element(const char *name, const char *value, enum quoting q, bool semi)
{
	struct out e = { .buf = NULL };

	out_str(&e, name);
	out_put(&e, "=", 1);
	out_value(&e, value, q);
	if (semi)
		out_put(&e, ";", 1);
	if (e.failed) {
		free(e.buf);
		return NULL;
	}
	return e.buf;
}

static void format_res(struct out *o, const struct ar_res *r, bool last)
{
	size_t nelem = 1 + (r->reason != NULL ? 1 : 0) + r->nprops;
	size_t k = 0;

	out_str(o, "\r\n\t");
	for (size_t i = 0; i < nelem && !o->failed; i++) {
		bool semi = !last && i + 1 == nelem;
		char *e;
		if (i == 0) {
			e = element(r->method, r->result, QUOTE_VALUE, semi);
		} else if (i == 1 && r->reason != NULL) {
			e = element("reason", r->reason, QUOTE_ALWAYS, semi);
		} else {
			e = element(r->props[k].name, r->props[k].value, QUOTE_PVALUE, semi);
			k++;
		}
		if (e == NULL) {
			o->failed = true;
			return;
		}
		place(o, e, i == 0);
		free(e);
	}
}

char *auth_results_format(const struct auth_results *ar)
{
	struct out o = { .buf = NULL };

	if (ar == NULL || ar->failed)
		return NULL;
	out_str(&o, "Authentication-Results: ");
	out_value(&o, ar->id, QUOTE_VALUE);
	out_put(&o, ";", 1);
	if (ar->n == 0) {
		/* §2.2 no-result */
		place(&o, "none", false);
	}
	for (size_t i = 0; i < ar->n; i++)
		format_res(&o, &ar->res[i], i + 1 == ar->n);
	out_str(&o, "\r\n");
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}

/* ------------------------------------------------------------- recognising */

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips CFWS from *pos; false on an unterminated comment. */
static bool skip_cfws(const char *s, size_t len, size_t *pos)
{
	size_t depth = 0, i = *pos;

	for (; i < len; i++) {
		char c = s[i];
		if (depth > 0 && c == '\\') {
			i++;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && !is_fws(c))
			break;
	}
	*pos = i < len ? i : len;
	return depth == 0;
}

bool auth_results_is_ours(const char *value, size_t len, const char *authserv_id)
{
	size_t pos = 0, idlen = authserv_id != NULL ? strlen(authserv_id) : 0, k = 0;

	if (idlen == 0 || !skip_cfws(value, len, &pos) || pos >= len)
		return false;
	if (value[pos] == '"') {
		/* quoted-string: compare the unescaped content as it goes */
		for (pos++; pos < len && value[pos] != '"'; pos++) {
			char c = value[pos];
			if (c == '\\') {
				if (++pos >= len)
					return false;
				c = value[pos];
			} else if (c == '\r' || c == '\n') {
				continue;   /* folding inside the quoted string */
			}
			if (k >= idlen || strncasecmp(&c, authserv_id + k, 1) != 0)
				return false;
			k++;
		}
		if (pos >= len)
			return false;
		pos++;
	} else {
		size_t start = pos;
		while (pos < len) {
			unsigned char c = (unsigned char)value[pos];
			if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?=", c) != NULL)
				break;
			pos++;
		}
		if (pos - start != idlen || strncasecmp(value + start, authserv_id, idlen) != 0)
			return false;
		k = idlen;
	}
	if (k != idlen)
		return false;
	/* The id must end here: CFWS, ";" or the end of the field. */
	return pos >= len || is_fws(value[pos]) || value[pos] == '(' || value[pos] == ';';
}
