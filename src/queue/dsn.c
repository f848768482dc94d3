/* dsn — see dsn.h. */
#include "queue/dsn.h"
#include "lib/error.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <sodium.h>

/* RFC 5322 §2.1.1: a line SHOULD stay within 78 characters and MUST within 998. */
#define FOLD_AT 78
#define LINE_MAX_OCTETS 998
/* The longest piece of a line we fold: a word longer than that is split. */
#define PIECE_MAX 900
#define ADDR_MAX 512            /* an address as reported (RFC 5321 §4.5.3.1.3: paths are 256) */
#define HOST_MAX 255            /* RFC 1035 §2.3.4 */
#define ENVID_MAX 200           /* RFC 3461 §4.4: ENVID is at most 100 characters */
#define DIAG_MAX 1200           /* a remote reply or our explanation */
#define HEADERS_MAX (64 * 1024) /* the returned header section */
#define HEADERS_READ_MAX (16 * HEADERS_MAX) /* input read looking for its end */
#define TEXT_RCPTS_MAX 100      /* recipients named in the human part, per kind */
#define READ_CHUNK 65536
#define BOUNDARY_TRIES 16

/* ---- output: an evbuffer that remembers a failed append ---- */

struct out {
	struct evbuffer *b;
	bool failed;
};

static void
out_add(struct out *o, const void *p, size_t n)
{
	if (!o->failed && n > 0 && evbuffer_add(o->b, p, n) < 0)
		o->failed = true;
}

static void
out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!o->failed && evbuffer_add_vprintf(o->b, fmt, ap) < 0)
		o->failed = true;
	va_end(ap);
}

/* A malloc'd formatted string, NULL when out of memory. */
static char * __attribute__((format(printf, 1, 2)))
str_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (s == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* ---- values from outside ---- */

/* The length of the valid UTF-8 character at p (RFC 3629 §4: no overlong
 * forms, surrogates or code points past U+10FFFF), 0 when there is none. p is
 * NUL-terminated, and a NUL is never a continuation octet, so no read passes it. */
static size_t
utf8_char_len(const unsigned char *p)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
		    (p[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

/*
 * A copy of s fit to stand in one header field or line: CR, LF and TAB become
 * spaces, runs of spaces one and none at either end; other control characters
 * (C0, DEL, C1) are dropped; octets above 0x7f are kept when utf8 and they form
 * valid UTF-8, else each becomes '?'. Cut to at most max (>= 3) octets, never
 * inside a character, ending in "..." when cut. NULL when out of memory.
 */
static char *
clean_value(const char *s, size_t max, bool utf8)
{
	char *r = malloc(max + 1);
	size_t n = 0;
	bool space = false, cut = false;

	if (r == NULL)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
		const unsigned char *ch = p;
		size_t clen = 1;

		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			space = n > 0;
			p++;
			continue;
		}
		if (*p < 0x20 || *p == 0x7f) {
			p++;
			continue;
		}
		if (*p >= 0x80) {
			clen = utf8 ? utf8_char_len(p) : 0;
			if (clen == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
				p += 2; /* a C1 control */
				continue;
			}
			if (clen == 0) {
				ch = (const unsigned char *)"?";
				clen = 1;
				p++;
			} else
				p += clen;
		} else
			p++;
		if (n + (space ? 1 : 0) + clen > max) {
			cut = true;
			break;
		}
		if (space)
			r[n++] = ' ';
		space = false;
		memcpy(r + n, ch, clen);
		n += clen;
	}
	if (cut) {
		while (n > 0 && n + 3 > max) {
			n--;
			while (n > 0 && ((unsigned char)r[n] & 0xc0) == 0x80)
				n--;
		}
		while (n > 0 && r[n - 1] == ' ')
			n--;
		memcpy(r + n, "...", 3);
		n += 3;
	}
	r[n] = '\0';
	return r;
}

/* A host name or address literal as we show it: letters, digits and
 * ". - _ [ ] :" only, at most HOST_MAX octets. NULL when out of memory. */
static char *
clean_host(const char *s)
{
	char *r = malloc(HOST_MAX + 1);
	size_t n = 0;

	if (r == NULL)
		return NULL;
	for (; *s != '\0' && n < HOST_MAX; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr(".-_[]:", c) != NULL)
			r[n++] = (char)c;
	}
	r[n] = '\0';
	return r;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* RFC 3461 §4: xtext decoded ("+XX" is the octet XX) into a malloc'd *out.
 * 1 when done, 0 when s is malformed (*out NULL), -1 when out of memory. What
 * comes out is cleaned by the caller. */
static int
xtext_decode(const char *s, char **out)
{
	char *r = malloc(strlen(s) + 1);
	size_t n = 0;

	*out = NULL;
	if (r == NULL)
		return -1;
	while (*s != '\0') {
		if (*s == '+') {
			int hi = hex_value(s[1]), lo = hi < 0 ? -1 : hex_value(s[2]);
			if (lo < 0 || (hi == 0 && lo == 0)) {
				free(r);
				return 0;
			}
			r[n++] = (char)(hi * 16 + lo);
			s += 3;
		} else
			r[n++] = *s++;
	}
	r[n] = '\0';
	*out = r;
	return 1;
}

/* ---- dates: RFC 5322 §3.3, always in UTC with the zone written +0000 ---- */

#define DATE_MAX 64

static void
format_date(int64_t t, char *buf, size_t size)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	time_t tt = (time_t)t;

	/* Years past 9999 do not fit RFC 5322's 4DIGIT year. */
	if (t < 0 || t > INT64_C(253402300799) || gmtime_r(&tt, &tm) == NULL) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* ---- folding (RFC 5322 §2.2.3) ---- */

struct fold {
	struct out *o;
	const char *cont;   /* written after the CRLF of a line break */
	bool field;         /* a header field: a fold keeps the space before the word */
	size_t col;         /* octets on the current line */
	bool content;       /* the current line holds something a break may follow */
	bool sep;           /* the next word is preceded by a space */
};

/* Starts a line with first; field: a header field, whose folds are CRLF and
 * the word's own space (RFC 5322 §2.2.3); else text, whose continuation lines
 * start with cont instead of the space. */
static void
fold_start(struct fold *f, struct out *o, const char *first, bool field, const char *cont)
{
	f->o = o;
	f->cont = cont;
	f->field = field;
	f->col = strlen(first);
	f->content = false; /* no fold right after a field name */
	f->sep = f->col > 0;
	out_str(o, first);
}

static void
fold_break(struct fold *f)
{
	out_str(f->o, "\r\n");
	out_str(f->o, f->cont);
	f->col = strlen(f->cont);
	f->content = false;
	f->sep = f->field;
}

/* Appends the space-separated words of text (a clean value), folding before a
 * word that would pass FOLD_AT; a word longer than PIECE_MAX is split, so that
 * no line comes near 998 octets. Unfolding gives back the text (split words
 * aside), since the space that separates words is the one after the fold. */
static void
fold_words(struct fold *f, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		if (*p == ' ') {
			p++;
			continue;
		}
		size_t n = strcspn(p, " ");
		if (f->sep && f->content && f->col + 1 + n > FOLD_AT)
			fold_break(f);
		if (f->sep) {
			out_add(f->o, " ", 1);
			f->col++;
		}
		while (f->col + n > PIECE_MAX) {
			size_t k = PIECE_MAX - f->col;
			while (k > 0 && ((unsigned char)p[k] & 0xc0) == 0x80)
				k--;
			if (k == 0)
				k = PIECE_MAX - f->col;
			out_add(f->o, p, k);
			p += k;
			n -= k;
			fold_break(f);
			if (f->sep) {
				out_add(f->o, " ", 1);
				f->col++;
			}
		}
		out_add(f->o, p, n);
		p += n;
		f->col += n;
		f->content = true;
		f->sep = true;
	}
}

static void
fold_end(struct fold *f)
{
	out_str(f->o, "\r\n");
}

/* "Name: a b" as one (folded) field; b may be NULL. */
static void
out_field(struct out *o, const char *name, const char *a, const char *b)
{
	struct fold f;
	fold_start(&f, o, name, true, "");
	fold_words(&f, a);
	if (b != NULL)
		fold_words(&f, b);
	fold_end(&f);
}

/* ---- the recipients, made safe once ---- */

struct rcpt_view {
	const struct dsn_rcpt *in;
	char *addr;         /* cleaned */
	char *addr_field;   /* "rfc822; addr" or "utf-8; addr" (RFC 6533 §3) */
	char *orcpt_field;  /* "type; decoded" or NULL */
	char *remote;       /* cleaned host or NULL */
	char *diag;         /* cleaned remote reply or NULL */
	char *expl;         /* cleaned explanation or NULL */
	char status[16];
};

struct compose {
	const struct dsn_params *p;
	bool global;        /* SMTPUTF8: RFC 6533 types, UTF-8 kept */
	char *host, *sender, *envid;
	struct rcpt_view *r;
	bool full;          /* the whole message is returned */
	struct out text, status, ret, msg;
};

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* RFC 6533 §3: in a utf-8 address, octets outside QCHAR (space, '+', '=',
 * '\\') are written as \x{HEX}; UTF-8 is kept (utf-8-addr-unitext). */
static char *
utf8_addr_field(const char *addr)
{
	size_t len = strlen(addr);
	char *r = malloc(7 + 6 * len + 1), *w;

	if (r == NULL)
		return NULL;
	w = r + sprintf(r, "utf-8; ");
	for (; *addr != '\0'; addr++) {
		unsigned char c = (unsigned char)*addr;
		if (c == ' ' || c == '+' || c == '=' || c == '\\')
			w += sprintf(w, "\\x{%X}", c);
		else
			*w++ = (char)c;
	}
	*w = '\0';
	return r;
}

/* Original-Recipient (RFC 3464 §2.3.1) from ORCPT "type;xtext": the type kept
 * as given, the address decoded (RFC 3461 §4.2) — except for the utf-8 type,
 * whose utf-8-addr-xtext is already fit to show (RFC 6533 §3). NULL with
 * *oom false when the ORCPT is malformed: the field is then left out. */
static char *
orcpt_field(const char *orcpt, bool utf8, bool *oom)
{
	const char *semi = strchr(orcpt, ';');
	size_t tlen = semi == NULL ? 0 : (size_t)(semi - orcpt);
	char *value, *clean, *r;

	*oom = false;
	if (tlen == 0 || tlen > 32 || semi[1] == '\0')
		return NULL;
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)orcpt[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.'))
			return NULL;
	}
	if (tlen == 5 && strncasecmp(orcpt, "utf-8", 5) == 0) {
		if ((value = strdup(semi + 1)) == NULL) {
			*oom = true;
			return NULL;
		}
	} else {
		int rc = xtext_decode(semi + 1, &value);
		if (rc <= 0) {
			*oom = rc < 0;
			return NULL;
		}
	}
	clean = clean_value(value, ADDR_MAX, utf8);
	free(value);
	if (clean == NULL || clean[0] == '\0') {
		*oom = clean == NULL;
		free(clean);
		return NULL;
	}
	r = str_printf("%.*s; %s", (int)tlen, orcpt, clean);
	free(clean);
	*oom = r == NULL;
	return r;
}

static bool
status_valid(const char *s)
{
	size_t i = 0;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		for (i = 0; i < 3 && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == 0 || s[i] != (part == 0 ? '.' : '\0'))
			return false;
		s += i + 1;
	}
	return true;
}

const char *
dsn_status_of_reply(unsigned code, const char *enhanced, char *buf)
{
	/* RFC 3463 §3: the class of the enhanced code must agree with the reply. */
	if (code >= 200 && code < 600 && status_valid(enhanced) &&
	    (unsigned)(enhanced[0] - '0') == code / 100) {
		snprintf(buf, 16, "%s", enhanced);
		return buf;
	}
	snprintf(buf, 16, "%s", code >= 500 && code < 600 ? "5.0.0" :
	    code >= 200 && code < 300 ? "2.0.0" : "4.0.0");
	return buf;
}

static const char *
action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_FAILED:    return "failed";
	case DSN_DELAYED:   return "delayed";
	case DSN_DELIVERED: return "delivered";
	case DSN_RELAYED:   return "relayed";
	case DSN_EXPANDED:  return "expanded";
	}
	return "failed";
}

static int
rcpt_prepare(struct compose *c, const struct dsn_rcpt *in, struct rcpt_view *v)
{
	bool oom = false;

	v->in = in;
	v->addr = clean_value(in->address != NULL ? in->address : "", ADDR_MAX, c->global);
	if (v->addr == NULL)
		return -1;
	v->addr_field = is_ascii(v->addr) ? str_printf("rfc822; %s", v->addr) :
	    utf8_addr_field(v->addr);
	if (v->addr_field == NULL)
		return -1;
	if (in->orcpt != NULL && (v->orcpt_field = orcpt_field(in->orcpt, c->global, &oom)) == NULL &&
	    oom)
		return -1;
	if (in->remote_mta != NULL) {
		if ((v->remote = clean_host(in->remote_mta)) == NULL)
			return -1;
		if (v->remote[0] == '\0') {
			free(v->remote);
			v->remote = NULL;
		}
	}
	if (in->diagnostic != NULL && (v->diag = clean_value(in->diagnostic, DIAG_MAX, c->global)) == NULL)
		return -1;
	if (in->explanation != NULL &&
	    (v->expl = clean_value(in->explanation, DIAG_MAX, c->global)) == NULL)
		return -1;
	if (status_valid(in->status))
		snprintf(v->status, sizeof(v->status), "%s", in->status);
	else
		snprintf(v->status, sizeof(v->status), "%s", in->action == DSN_FAILED ? "5.0.0" :
		    in->action == DSN_DELAYED ? "4.0.0" : "2.0.0");
	return 0;
}

static void
rcpt_view_free(struct rcpt_view *v)
{
	free(v->addr);
	free(v->addr_field);
	free(v->orcpt_field);
	free(v->remote);
	free(v->diag);
	free(v->expl);
}

/* ---- part 1: the words for people ---- */

enum kind { KIND_FAILED, KIND_DELAYED, KIND_SUCCESS, KIND_COUNT };

static enum kind
kind_of(enum dsn_action a)
{
	return a == DSN_FAILED ? KIND_FAILED : a == DSN_DELAYED ? KIND_DELAYED : KIND_SUCCESS;
}

/* A wrapped paragraph, and an empty line after it unless last. */
static void
paragraph(struct out *o, const char *text, bool last)
{
	struct fold f;
	fold_start(&f, o, "", false, "");
	fold_words(&f, text);
	fold_end(&f);
	if (!last)
		out_str(o, "\r\n");
}

/* "<bob@remote.test>: host mx.remote.test said: 550 5.1.1 no such user" */
static void
text_rcpt(struct out *o, const struct rcpt_view *v)
{
	struct fold f;
	char *who = str_printf("<%s>:", v->addr);
	const char *what = NULL;

	if (who == NULL) {
		o->failed = true;
		return;
	}
	fold_start(&f, o, "", false, "    ");
	fold_words(&f, who);
	free(who);
	if (v->diag != NULL) {
		if (v->remote != NULL) {
			fold_words(&f, "host");
			fold_words(&f, v->remote);
			fold_words(&f, "said:");
		} else
			fold_words(&f, "the receiving server said:");
		fold_words(&f, v->diag);
	} else if (v->expl != NULL) {
		fold_words(&f, v->expl);
	} else {
		switch (v->in->action) {
		case DSN_FAILED:    what = "delivery failed"; break;
		case DSN_DELAYED:   what = "not delivered yet"; break;
		case DSN_DELIVERED: what = "delivered"; break;
		case DSN_RELAYED:   what = "handed on to a system that sends no delivery reports"; break;
		case DSN_EXPANDED:  what = "delivered to a list or alias, which sent it on"; break;
		}
		fold_words(&f, what);
		if (v->remote != NULL) {
			char *host = str_printf("(host %s)", v->remote);
			if (host == NULL)
				o->failed = true;
			else
				fold_words(&f, host);
			free(host);
		}
	}
	fold_end(&f);
}

static void
compose_text(struct compose *c)
{
	static const char *const intro[KIND_COUNT] = {
		"I'm sorry to have to tell you that your message could not be delivered to "
		"one or more recipients: the mail system has given up on the addresses below.",
		"This is only a warning: your message has not been delivered yet to the "
		"addresses below. You do not need to send it again.",
		"Good news: your message has been delivered to the addresses below, and you "
		"asked to be told.",
	};
	const struct dsn_params *p = c->p;
	struct out *o = &c->text;
	char *line;

	line = str_printf("This is the mail system at host %s.", c->host);
	if (line == NULL) {
		o->failed = true;
		return;
	}
	paragraph(o, line, false);
	free(line);
	for (int k = 0; k < KIND_COUNT; k++) {
		size_t shown = 0, total = 0;
		for (size_t i = 0; i < p->nrcpts; i++)
			total += kind_of(c->r[i].in->action) == (enum kind)k;
		if (total == 0)
			continue;
		paragraph(o, intro[k], false);
		for (size_t i = 0; i < p->nrcpts && shown < TEXT_RCPTS_MAX; i++) {
			if (kind_of(c->r[i].in->action) != (enum kind)k)
				continue;
			text_rcpt(o, &c->r[i]);
			shown++;
		}
		if (shown < total)
			out_printf(o, "    ... and %zu more: the report below lists them all.\r\n",
			    total - shown);
		out_str(o, "\r\n");
		if (k == KIND_DELAYED && p->retry_until > 0) {
			char date[DATE_MAX];
			format_date(p->retry_until, date, sizeof(date));
			line = str_printf("The mail system will keep trying until %s, and will "
			    "tell you if it has to give up.", date);
			if (line == NULL) {
				o->failed = true;
				return;
			}
			paragraph(o, line, false);
			free(line);
		}
	}
	paragraph(o, c->full ? "Your message is attached below." :
	    p->env->ret == ENVELOPE_RET_FULL ?
	    "Your message was too large to return whole; its header section is attached below." :
	    "The header section of your message is attached below.", false);
	paragraph(o, "If you need help, please forward this notice to your postmaster; the "
	    "machine-readable report that follows tells them what happened.", true);
}

/* ---- part 2: the report for machines (RFC 3464 §2.2, §2.3) ---- */

static void
compose_status(struct compose *c)
{
	const struct dsn_params *p = c->p;
	struct out *o = &c->status;
	char date[DATE_MAX];

	/* §2.2: Original-Envelope-Id, Reporting-MTA, then Arrival-Date. */
	if (c->envid != NULL)
		out_field(o, "Original-Envelope-Id:", c->envid, NULL);
	out_field(o, "Reporting-MTA:", "dns;", c->host);
	if (p->env->received_at > 0) {
		format_date(p->env->received_at, date, sizeof(date));
		out_field(o, "Arrival-Date:", date, NULL);
	}
	for (size_t i = 0; i < p->nrcpts; i++) {
		const struct rcpt_view *v = &c->r[i];
		out_str(o, "\r\n");
		/* §2.3: in the order of the grammar. */
		if (v->orcpt_field != NULL)
			out_field(o, "Original-Recipient:", v->orcpt_field, NULL);
		out_field(o, "Final-Recipient:", v->addr_field, NULL);
		out_field(o, "Action:", action_name(v->in->action), NULL);
		out_field(o, "Status:", v->status, NULL);
		if (v->remote != NULL)
			out_field(o, "Remote-MTA:", "dns;", v->remote);
		if (v->diag != NULL)
			out_field(o, "Diagnostic-Code:", "smtp;", v->diag);
		else if (v->expl != NULL)
			out_field(o, "Diagnostic-Code:", "X-Rampart;", v->expl);
		if (v->in->last_attempt > 0) {
			format_date(v->in->last_attempt, date, sizeof(date));
			out_field(o, "Last-Attempt-Date:", date, NULL);
		}
		if (v->in->action == DSN_DELAYED && p->retry_until > 0) {
			format_date(p->retry_until, date, sizeof(date));
			out_field(o, "Will-Retry-Until:", date, NULL);
		}
	}
}

/* ---- part 3: the original, as CRLF lines of at most 998 octets ---- */

struct ret_lines {
	struct out *o;
	bool headers_only;  /* stop after the empty line that ends the header section */
	bool body;          /* past that empty line */
	bool done;
	bool cr;            /* the last octet seen was a CR */
	size_t raw;         /* octets of the current line seen, CR aside */
	size_t len;         /* octets of it kept */
	char line[LINE_MAX_OCTETS];
};

static void
ret_line_end(struct ret_lines *r)
{
	if (r->headers_only && evbuffer_get_length(r->o->b) + r->len + 2 > HEADERS_MAX) {
		r->done = true; /* cut at a line boundary */
		return;
	}
	/* A header line that had only dropped octets (NULs) is left out: written
	 * empty it would end the header section early for whoever reads it. */
	if (r->body || r->len > 0 || r->raw == 0) {
		out_add(r->o, r->line, r->len);
		out_add(r->o, "\r\n", 2);
	}
	if (r->raw == 0) {
		r->body = true;
		if (r->headers_only)
			r->done = true;
	}
	r->raw = r->len = 0;
	r->cr = false;
}

/* MIME 7bit and 8bit (RFC 2045 §2.7, §2.8): no NUL, CR and LF only as CRLF,
 * lines of at most 998 octets. A bare LF ends a line; a bare CR and NUL are
 * dropped; the rest of an overlong line is cut. */
static void
ret_feed(struct ret_lines *r, const char *data, size_t n)
{
	for (size_t i = 0; i < n && !r->done; i++) {
		char ch = data[i];
		if (ch == '\n') {
			ret_line_end(r);
			continue;
		}
		r->cr = false;
		if (ch == '\r') {
			r->cr = true;
			continue;
		}
		r->raw++;
		if (ch != '\0' && r->len < LINE_MAX_OCTETS)
			r->line[r->len++] = ch;
	}
}

static void
ret_finish(struct ret_lines *r)
{
	if (!r->done && r->raw > 0)
		ret_line_end(r);
}

static int
compose_returned(struct compose *c, const char **error_r)
{
	const struct dsn_params *p = c->p;
	struct ret_lines *r = calloc(1, sizeof(*r));
	char *chunk = malloc(READ_CHUNK);
	off_t pos = p->offset;
	size_t read_total = 0;
	int ret = 0;

	if (r == NULL || chunk == NULL) {
		free(r);
		free(chunk);
		return error_fail(error_r, ENOMEM, "out of memory composing a notification");
	}
	r->o = &c->ret;
	r->headers_only = !c->full;
	if (p->prepend != NULL)
		ret_feed(r, p->prepend, p->prepend_len);
	while (!r->done && pos < p->end) {
		size_t want = (size_t)(p->end - pos) < READ_CHUNK ? (size_t)(p->end - pos) : READ_CHUNK;
		ssize_t got = pread(p->fd, chunk, want, pos);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int err = errno;
			ret = error_fail(error_r, err, "reading the original message failed: %s",
			    strerror(err));
			break;
		}
		if (got == 0) {
			ret = error_fail(error_r, EIO, "the original message is shorter than recorded");
			break;
		}
		ret_feed(r, chunk, (size_t)got);
		pos += got;
		read_total += (size_t)got;
		if (r->headers_only && read_total >= HEADERS_READ_MAX)
			break;
	}
	if (ret == 0)
		ret_finish(r);
	free(chunk);
	free(r);
	return ret;
}

/* ---- assembly ---- */

bool
dsn_has_8bit(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)msg[i] >= 0x80)
			return true;
	return false;
}

/* The part's bytes in one piece (evbuffer_pullup), or NULL when it is empty or
 * memory ran out (then *failed is set). */
static const char *
buf_linear(struct evbuffer *b, bool *failed)
{
	const char *d = evbuffer_get_length(b) == 0 ? NULL : (const char *)evbuffer_pullup(b, -1);
	if (d == NULL && evbuffer_get_length(b) > 0)
		*failed = true;
	return d;
}

static bool
buf_has_8bit(struct evbuffer *b, bool *failed)
{
	const char *d = buf_linear(b, failed);
	return d != NULL && dsn_has_8bit(d, evbuffer_get_length(b));
}

static void
out_buf(struct out *o, struct evbuffer *b)
{
	const char *d = buf_linear(b, &o->failed);
	if (d != NULL)
		out_add(o, d, evbuffer_get_length(b));
}


static bool
buf_contains(struct evbuffer *b, const char *s)
{
	return evbuffer_search(b, s, strlen(s), NULL).pos != -1;
}

/* RFC 2046 §5.1.1: a boundary must not occur in what it encloses. "=_" cannot
 * appear in quoted-printable or base64 either; the rest is random. */
static int
pick_boundary(struct compose *c, char *buf, size_t size)
{
	for (int i = 0; i < BOUNDARY_TRIES; i++) {
		unsigned char rnd[16];
		char hex[2 * sizeof(rnd) + 1];
		randombytes_buf(rnd, sizeof(rnd));
		sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
		snprintf(buf, size, "=_rampart_%s", hex);
		if (!buf_contains(c->text.b, buf) && !buf_contains(c->status.b, buf) &&
		    !buf_contains(c->ret.b, buf))
			return 0;
	}
	return -1;
}

static void
part_header(struct out *o, const char *boundary, const char *desc, const char *type,
    bool eightbit)
{
	out_printf(o, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n"
	    "Content-Transfer-Encoding: %s\r\n\r\n", boundary, desc, type,
	    eightbit ? "8bit" : "7bit");
}

static enum kind
worst_kind(const struct compose *c)
{
	enum kind w = KIND_SUCCESS;
	for (size_t i = 0; i < c->p->nrcpts; i++)
		if (kind_of(c->r[i].in->action) < w)
			w = kind_of(c->r[i].in->action);
	return w;
}

static void
assemble(struct compose *c, const char *boundary)
{
	static const char *const subject[KIND_COUNT] = {
		"Undelivered Mail Returned to Sender",
		"Delayed Mail (still being retried)",
		"Successful Mail Delivery Report",
	};
	const struct dsn_params *p = c->p;
	struct out *o = &c->msg;
	bool text8 = buf_has_8bit(c->text.b, &o->failed);
	bool status8 = buf_has_8bit(c->status.b, &o->failed);
	bool ret8 = buf_has_8bit(c->ret.b, &o->failed);
	enum kind worst = worst_kind(c);
	unsigned char rnd[8];
	char date[DATE_MAX], idhex[2 * sizeof(rnd) + 1];
	struct fold f;

	format_date(p->now, date, sizeof(date));
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(idhex, sizeof(idhex), rnd, sizeof(rnd));

	out_printf(o, "From: \"Mail Delivery System\" <MAILER-DAEMON@%s>\r\n", c->host);
	fold_start(&f, o, "To:", true, "");
	char *to = str_printf("<%s>", c->sender);
	if (to == NULL)
		o->failed = true;
	else
		fold_words(&f, to);
	free(to);
	fold_end(&f);
	out_printf(o, "Subject: %s\r\nDate: %s\r\nMessage-ID: <%" PRId64 ".%s@%s>\r\n"
	    "MIME-Version: 1.0\r\nAuto-Submitted: auto-replied\r\n", subject[worst], date,
	    p->now, idhex, c->host);
	/* RFC 6522 §3: report-type names the second part's subtype. */
	out_printf(o, "Content-Type: multipart/report; report-type=%s;\r\n\tboundary=\"%s\"\r\n",
	    c->global ? "global-delivery-status" : "delivery-status", boundary);
	/* RFC 2045 §6.4: a multipart's encoding is 7bit or 8bit, by what it holds. */
	out_printf(o, "Content-Transfer-Encoding: %s\r\n\r\n",
	    text8 || status8 || ret8 || !is_ascii(c->sender) ? "8bit" : "7bit");
	out_str(o, "This is a MIME-encapsulated message.\r\n");

	part_header(o, boundary, "Notification", text8 ? "text/plain; charset=utf-8" :
	    "text/plain; charset=us-ascii", text8);
	out_buf(o, c->text.b);

	/* RFC 6533 §6.2, §6.3: the global types when the envelope was SMTPUTF8. */
	part_header(o, boundary, "Delivery report", c->global ? "message/global-delivery-status" :
	    "message/delivery-status", status8);
	out_buf(o, c->status.b);

	part_header(o, boundary, c->full ? "Original message" : "Original message headers",
	    c->full ? (c->global ? "message/global" : "message/rfc822") :
	    (c->global ? "message/global-headers" : "text/rfc822-headers"), ret8);
	out_buf(o, c->ret.b);

	out_printf(o, "\r\n--%s--\r\n", boundary);
}

static void
compose_free(struct compose *c)
{
	if (c->r != NULL)
		for (size_t i = 0; i < c->p->nrcpts; i++)
			rcpt_view_free(&c->r[i]);
	free(c->r);
	free(c->host);
	free(c->sender);
	free(c->envid);
	struct out *outs[] = { &c->text, &c->status, &c->ret, &c->msg };
	for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++)
		if (outs[i]->b != NULL)
			evbuffer_free(outs[i]->b);
}

static int
compose_prepare(struct compose *c)
{
	const struct dsn_params *p = c->p;

	c->host = clean_host(p->reporting_mta);
	if (c->host != NULL && c->host[0] == '\0') {
		free(c->host);
		c->host = strdup("localhost");
	}
	c->sender = clean_value(p->env->mail_from, ADDR_MAX, c->global);
	if (c->host == NULL || c->sender == NULL)
		return -1;
	/* RFC 3461 §4.4: ENVID is xtext; the report shows it decoded. */
	if (p->env->envid != NULL && p->env->envid[0] != '\0') {
		char *raw;
		int rc = xtext_decode(p->env->envid, &raw);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			c->envid = clean_value(raw, ENVID_MAX, false);
			free(raw);
			if (c->envid == NULL)
				return -1;
			if (c->envid[0] == '\0') {
				free(c->envid);
				c->envid = NULL;
			}
		}
	}
	c->r = calloc(p->nrcpts, sizeof(*c->r));
	if (c->r == NULL)
		return -1;
	for (size_t i = 0; i < p->nrcpts; i++)
		if (rcpt_prepare(c, &p->rcpts[i], &c->r[i]) < 0)
			return -1;
	c->text.b = evbuffer_new();
	c->status.b = evbuffer_new();
	c->ret.b = evbuffer_new();
	c->msg.b = evbuffer_new();
	return c->text.b == NULL || c->status.b == NULL || c->ret.b == NULL || c->msg.b == NULL ?
	    -1 : 0;
}

int
dsn_compose(const struct dsn_params *p, char **msg_r, size_t *len_r, const char **error_r)
{
	struct compose c;
	char boundary[64];
	int ret = -1, saved_errno;

	assert(p != NULL && p->env != NULL && p->reporting_mta != NULL);
	*msg_r = NULL;
	*len_r = 0;
	if (p->env->mail_from == NULL || p->env->mail_from[0] == '\0')
		return error_fail(error_r, EINVAL,
		    "no notification is sent to the null reverse-path (RFC 3461 §6.2)");
	if (p->nrcpts == 0 || p->rcpts == NULL)
		return error_fail(error_r, EINVAL, "a notification needs at least one recipient");
	if (p->offset < 0 || p->end < p->offset || (p->end > p->offset && p->fd < 0))
		return error_fail(error_r, EINVAL, "the original message's extent is invalid");

	memset(&c, 0, sizeof(c));
	c.p = p;
	c.global = p->env->smtputf8;
	/* RFC 3461 §4.3: the whole message only when asked and not too large. */
	c.full = p->env->ret == ENVELOPE_RET_FULL &&
	    (uint64_t)(p->end - p->offset) + p->prepend_len <= DSN_RETURN_MAX;
	if (compose_prepare(&c) < 0) {
		error_fail(error_r, ENOMEM, "out of memory composing a notification");
		goto out;
	}
	if (compose_returned(&c, error_r) < 0)
		goto out;
	compose_text(&c);
	compose_status(&c);
	if (c.text.failed || c.status.failed || c.ret.failed) {
		error_fail(error_r, ENOMEM, "out of memory composing a notification");
		goto out;
	}
	if (pick_boundary(&c, boundary, sizeof(boundary)) < 0) {
		error_fail(error_r, EIO, "no MIME boundary could be found that the message lacks");
		goto out;
	}
	assemble(&c, boundary);
	size_t len = evbuffer_get_length(c.msg.b);
	char *msg = c.msg.failed ? NULL : malloc(len + 1);
	if (msg == NULL) {
		error_fail(error_r, ENOMEM, "out of memory composing a notification");
		goto out;
	}
	evbuffer_remove(c.msg.b, msg, len);
	msg[len] = '\0';
	*msg_r = msg;
	*len_r = len;
	ret = 0;
out:
	saved_errno = errno;
	compose_free(&c);
	errno = saved_errno;
	return ret;
}
