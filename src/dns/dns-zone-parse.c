/*
 * dns-zone-parse — reads an RFC 1035 §5.1 master file into a static zone.
 *
 * The text is cut into logical lines (parentheses join physical lines, ";"
 * starts a comment, quoted strings keep their blanks) and each line becomes one
 * record or directive. Tokens keep their backslash escapes; names and TXT
 * strings decode them (\X is X, \DDD is the octet DDD). Every error names the
 * line the record starts on.
 */
#include "dns/dns-private.h"

#include "lib/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZONE_TOKENS_MAX 65536u     /* fields in one record */
#define TXT_STRING_MAX 255u        /* RFC 1035 §3.3: <character-string> */
#define RDATA_MAX 65535u           /* RFC 1035 §3.2.1: RDLENGTH is 16 bits */
#define TTL_MAX 2147483647u        /* RFC 2181 §8 */

struct ztok {
	const char *p;
	size_t len;
	bool quoted;
};

struct zparser {
	const char *text;
	size_t len, pos;
	unsigned line, start_line;
	struct ztok *toks;
	size_t ntoks, cap;
	bool owner_blank;
	struct dns_name origin, prev_owner;
	bool have_prev, have_default_ttl, have_last_ttl;
	uint32_t default_ttl, last_ttl;
	struct dns_zone *z;
	char err[DNS_NAME_TEXT_MAX + 128];
};

__attribute__((format(printf, 2, 3))) static int
zp_fail(struct zparser *zp, const char *fmt, ...)
{
	char msg[DNS_NAME_TEXT_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(zp->err, sizeof(zp->err), "line %u: %s", zp->start_line, msg);
	return -1;
}

static bool
tok_is(const struct ztok *t, const char *word)
{
	return !t->quoted && t->len == strlen(word) && strncasecmp(t->p, word, t->len) == 0;
}

static int
zp_push(struct zparser *zp, const char *p, size_t len, bool quoted)
{
	if (zp->ntoks == zp->cap) {
		size_t ncap = zp->cap == 0 ? 16 : zp->cap * 2;
		struct ztok *n;

		if (ncap > ZONE_TOKENS_MAX)
			return zp_fail(zp, "the record has more than %u fields", ZONE_TOKENS_MAX);
		if ((n = realloc(zp->toks, ncap * sizeof(*n))) == NULL)
			return zp_fail(zp, "out of memory");
		zp->toks = n;
		zp->cap = ncap;
	}
	zp->toks[zp->ntoks++] = (struct ztok){ p, len, quoted };
	return 0;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Reads the next logical line into zp->toks: 1, 0 at the end, -1 on error. */
static int
zp_next_line(struct zparser *zp)
{
	unsigned depth = 0;

	zp->ntoks = 0;
	if (zp->pos >= zp->len)
		return 0;
	zp->start_line = zp->line;
	zp->owner_blank = is_blank(zp->text[zp->pos]);
	while (zp->pos < zp->len) {
		char c = zp->text[zp->pos];
		size_t start;

		if (c == '\n') {
			zp->pos++;
			zp->line++;
			if (depth == 0)
				return 1;
		} else if (is_blank(c)) {
			zp->pos++;
		} else if (c == '\0') {
			return zp_fail(zp, "the file contains a NUL octet");
		} else if (c == ';') {
			while (zp->pos < zp->len && zp->text[zp->pos] != '\n')
				zp->pos++;
		} else if (c == '(') {
			if (depth > 0)
				return zp_fail(zp, "parentheses cannot nest");
			depth++;
			zp->pos++;
		} else if (c == ')') {
			if (depth == 0)
				return zp_fail(zp, "\")\" without \"(\"");
			depth--;
			zp->pos++;
		} else if (c == '"') {
			start = ++zp->pos;
			for (;;) {
				if (zp->pos >= zp->len || zp->text[zp->pos] == '\n')
					return zp_fail(zp, "a quoted string is not closed on its line");
				c = zp->text[zp->pos];
				if (c == '\0')
					return zp_fail(zp, "the file contains a NUL octet");
				if (c == '"')
					break;
				zp->pos += c == '\\' && zp->pos + 1 < zp->len &&
				    zp->text[zp->pos + 1] != '\n' ? 2 : 1;
			}
			if (zp_push(zp, zp->text + start, zp->pos - start, true) < 0)
				return -1;
			zp->pos++;
		} else {
			start = zp->pos;
			while (zp->pos < zp->len) {
				c = zp->text[zp->pos];
				if (c == '\\' && zp->pos + 1 < zp->len && zp->text[zp->pos + 1] != '\n' &&
				    zp->text[zp->pos + 1] != '\0') {
					zp->pos += 2;
					continue;
				}
				if (is_blank(c) || c == '\n' || c == ';' || c == '(' || c == ')' ||
				    c == '"' || c == '\0')
					break;
				zp->pos++;
			}
			if (zp_push(zp, zp->text + start, zp->pos - start, false) < 0)
				return -1;
		}
	}
	if (depth > 0)
		return zp_fail(zp, "\"(\" is not closed before the end of the file");
	return 1;
}

static int
parse_uint(const struct ztok *t, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (t->quoted || t->len == 0 || t->len > 10)
		return -1;
	for (size_t i = 0; i < t->len; i++) {
		if (t->p[i] < '0' || t->p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(t->p[i] - '0');
	}
	if (v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* "3600", or BIND's units: "1h30m", "2d", "1w" (s, m, h, d, w). */
static int
parse_ttl(const struct ztok *t, uint32_t *out)
{
	uint64_t total = 0, num = 0;
	bool digits = false, units = false;

	if (t->quoted || t->len == 0 || t->len > 32)
		return -1;
	for (size_t i = 0; i < t->len; i++) {
		char c = t->p[i];
		uint64_t mult;

		if (c >= '0' && c <= '9') {
			num = num * 10 + (uint64_t)(c - '0');
			if (num > TTL_MAX)
				return -1;
			digits = true;
			continue;
		}
		switch (c | 0x20) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		case 'w': mult = 604800; break;
		default: return -1;
		}
		if (!digits)
			return -1;
		total += num * mult;
		if (total > TTL_MAX)
			return -1;
		num = 0;
		digits = false;
		units = true;
	}
	if (digits)
		total += num;
	else if (!units)
		return -1;
	if (total > TTL_MAX)
		return -1;
	*out = (uint32_t)total;
	return 0;
}

/* A name field: "@" is the origin, relative names get the origin appended. */
static int
zp_name(struct zparser *zp, const struct ztok *t, const char *what, struct dns_name *out)
{
	const char *error;

	if (t->quoted)
		return zp_fail(zp, "the %s is quoted", what);
	if (t->len == 1 && t->p[0] == '@') {
		*out = zp->origin;
		return 0;
	}
	if (dns_name_parse(t->p, t->len, &zp->origin, out, &error) < 0) {
		char why[128];

		snprintf(why, sizeof(why), "%s", error);
		return zp_fail(zp, "the %s \"%.*s\" is not valid: %s", what,
		    t->len > 64 ? 64 : (int)t->len, t->p, why);
	}
	return 0;
}

static int
zp_name_text(struct zparser *zp, const struct ztok *t, const char *what, char **out)
{
	struct dns_name n;
	char buf[DNS_NAME_TEXT_MAX];

	if (zp_name(zp, t, what, &n) < 0)
		return -1;
	dns_name_format(&n, buf, sizeof(buf));
	if ((*out = strdup(buf)) == NULL)
		return zp_fail(zp, "out of memory");
	return 0;
}

/* Decodes one <character-string> (RFC 1035 §5.1) into out[0..255]. */
static int
zp_string(struct zparser *zp, const struct ztok *t, unsigned char *out, size_t *olen)
{
	size_t n = 0;

	for (size_t i = 0; i < t->len; i++) {
		unsigned char c = (unsigned char)t->p[i];

		if (c == '\\') {
			if (++i == t->len)
				return zp_fail(zp, "a string ends with a lone backslash");
			c = (unsigned char)t->p[i];
			if (c >= '0' && c <= '9') {
				unsigned v;

				if (i + 2 >= t->len || t->p[i + 1] < '0' || t->p[i + 1] > '9' ||
				    t->p[i + 2] < '0' || t->p[i + 2] > '9')
					return zp_fail(zp, "a \\DDD escape needs three digits");
				v = (unsigned)(c - '0') * 100 + (unsigned)(t->p[i + 1] - '0') * 10 +
				    (unsigned)(t->p[i + 2] - '0');
				if (v > 255)
					return zp_fail(zp, "a \\DDD escape is above 255");
				c = (unsigned char)v;
				i += 2;
			}
		}
		if (n == TXT_STRING_MAX)
			return zp_fail(zp, "a string is longer than 255 octets");
		out[n++] = c;
	}
	*olen = n;
	return 0;
}

static int
zp_txt(struct zparser *zp, const struct ztok *t, size_t n, struct dns_rr *rr)
{
	unsigned char s[TXT_STRING_MAX];
	size_t wire = 0, len = 0;
	char *data;

	if (n == 0)
		return zp_fail(zp, "a TXT record needs at least one string");
	/* RDATA_MAX bounds the concatenation whatever the number of strings. */
	if ((data = malloc((n < RDATA_MAX / TXT_STRING_MAX ? n * TXT_STRING_MAX : RDATA_MAX) + 1)) ==
	    NULL)
		return zp_fail(zp, "out of memory");
	for (size_t i = 0; i < n; i++) {
		size_t sl = 0;

		if (zp_string(zp, &t[i], s, &sl) < 0) {
			free(data);
			return -1;
		}
		wire += sl + 1;
		if (wire > RDATA_MAX) {
			free(data);
			return zp_fail(zp, "the TXT record is longer than 65535 octets");
		}
		memcpy(data + len, s, sl);
		len += sl;
	}
	data[len] = '\0';
	rr->u.txt.data = data;
	rr->u.txt.len = len;
	rr->u.txt.nstrings = (unsigned)n;
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 6698 §2.2: usage, selector, matching type, then hex (blanks allowed). */
static int
zp_tlsa(struct zparser *zp, const struct ztok *t, size_t n, struct dns_rr *rr)
{
	uint32_t v[3];
	size_t digits = 0, len = 0;
	unsigned char *data;
	int hi = -1;

	if (n < 4)
		return zp_fail(zp, "a TLSA record needs usage, selector, matching type and data");
	for (size_t i = 0; i < 3; i++)
		if (parse_uint(&t[i], 255, &v[i]) < 0)
			return zp_fail(zp, "a TLSA field is not a number from 0 to 255");
	for (size_t i = 3; i < n; i++)
		digits += t[i].len;
	if (digits % 2 != 0 || digits / 2 > RDATA_MAX - 3)
		return zp_fail(zp, "the TLSA data is not a whole number of octets under 64 KiB");
	if ((data = malloc(digits / 2 + 1)) == NULL)
		return zp_fail(zp, "out of memory");
	for (size_t i = 3; i < n; i++) {
		for (size_t k = 0; k < t[i].len; k++) {
			int h = t[i].quoted ? -1 : hexval(t[i].p[k]);

			if (h < 0) {
				free(data);
				return zp_fail(zp, "the TLSA data is not hexadecimal");
			}
			if (hi < 0) {
				hi = h;
			} else {
				data[len++] = (unsigned char)(hi << 4 | h);
				hi = -1;
			}
		}
	}
	data[len] = 0;
	rr->u.tlsa.usage = (uint8_t)v[0];
	rr->u.tlsa.selector = (uint8_t)v[1];
	rr->u.tlsa.mtype = (uint8_t)v[2];
	rr->u.tlsa.data = data;
	rr->u.tlsa.len = len;
	return 0;
}

static int
zp_addr(struct zparser *zp, const struct ztok *t, size_t n, int af, void *out)
{
	char buf[64];

	if (n != 1 || t->quoted || t->len >= sizeof(buf))
		return zp_fail(zp, "an %s record needs one address", af == AF_INET ? "A" : "AAAA");
	memcpy(buf, t->p, t->len);
	buf[t->len] = '\0';
	if (inet_pton(af, buf, out) != 1)
		return zp_fail(zp, "\"%s\" is not an IPv%c address", buf, af == AF_INET ? '4' : '6');
	return 0;
}

/* Parses the RDATA of type from t[0..n) into rr. */
static int
zp_rdata(struct zparser *zp, uint16_t type, const struct ztok *t, size_t n, struct dns_rr *rr)
{
	uint32_t pref;

	rr->type = type;
	switch (type) {
	case DNS_T_A:
		return zp_addr(zp, t, n, AF_INET, &rr->u.a);
	case DNS_T_AAAA:
		return zp_addr(zp, t, n, AF_INET6, &rr->u.aaaa);
	case DNS_T_MX:
		if (n != 2)
			return zp_fail(zp, "an MX record needs a preference and a host");
		if (parse_uint(&t[0], 65535, &pref) < 0)
			return zp_fail(zp, "the MX preference is not a number from 0 to 65535");
		rr->u.mx.pref = (uint16_t)pref;
		/* RFC 7505 §3: a host of "." is a null MX, given as "". */
		return zp_name_text(zp, &t[1], "MX host", &rr->u.mx.host);
	case DNS_T_CNAME:
	case DNS_T_PTR:
	case DNS_T_NS:
		if (n != 1)
			return zp_fail(zp, "a %s record needs one name", dns_type_name(type));
		return zp_name_text(zp, &t[0], "target name", &rr->u.name);
	case DNS_T_TXT:
	case DNS_T_SPF:
		return zp_txt(zp, t, n, rr);
	case DNS_T_TLSA:
		return zp_tlsa(zp, t, n, rr);
	default:
		return zp_fail(zp, "type %s is not supported", dns_type_name(type));
	}
}

static struct dns_zone_rec *
zp_add(struct zparser *zp, const struct dns_name *owner)
{
	struct dns_zone *z = zp->z;
	struct dns_zone_rec *r;

	if (z->nrecs == z->cap) {
		size_t ncap = z->cap == 0 ? 64 : z->cap * 2;

		if (z->nrecs >= DNS_ZONE_RECORDS_MAX) {
			zp_fail(zp, "the zone has more than %u records", DNS_ZONE_RECORDS_MAX);
			return NULL;
		}
		if ((r = realloc(z->recs, ncap * sizeof(*r))) == NULL) {
			zp_fail(zp, "out of memory");
			return NULL;
		}
		z->recs = r;
		z->cap = ncap;
	}
	r = &z->recs[z->nrecs];
	memset(r, 0, sizeof(*r));
	r->owner = *owner;
	r->seq = z->nrecs;
	return r;
}

static int
zp_directive(struct zparser *zp)
{
	const struct ztok *t = zp->toks;

	if (tok_is(&t[0], "$ORIGIN")) {
		struct dns_name n;

		if (zp->ntoks != 2)
			return zp_fail(zp, "$ORIGIN needs one name");
		if (zp_name(zp, &t[1], "origin", &n) < 0)
			return -1;
		zp->origin = n;
		return 0;
	}
	if (tok_is(&t[0], "$TTL")) {
		if (zp->ntoks != 2 || parse_ttl(&t[1], &zp->default_ttl) < 0)
			return zp_fail(zp, "$TTL needs one TTL (seconds, at most 2147483647)");
		zp->have_default_ttl = true;
		zp->z->neg_ttl = zp->default_ttl;
		return 0;
	}
	if (tok_is(&t[0], "$INCLUDE"))
		return zp_fail(zp, "$INCLUDE is not supported");
	return zp_fail(zp, "unknown directive \"%.*s\"", t[0].len > 32 ? 32 : (int)t[0].len, t[0].p);
}

static int
zp_record(struct zparser *zp)
{
	const struct ztok *t = zp->toks;
	struct dns_zone_rec *rec;
	struct dns_name owner;
	bool have_ttl = false, have_class = false;
	uint32_t ttl = 0;
	size_t i = 0;
	char tname[16];
	int type;

	if (zp->ntoks == 0)
		return 0;
	if (!zp->owner_blank) {
		if (!t[0].quoted && t[0].len > 0 && t[0].p[0] == '$')
			return zp_directive(zp);
		if (zp_name(zp, &t[0], "owner name", &owner) < 0)
			return -1;
		i = 1;
	} else {
		if (!zp->have_prev)
			return zp_fail(zp, "the first record has no owner name");
		owner = zp->prev_owner;
	}
	zp->prev_owner = owner;
	zp->have_prev = true;
	/* RFC 1035 §5.1: [<TTL>] [<class>] or [<class>] [<TTL>], both optional. */
	while (i < zp->ntoks && !t[i].quoted) {
		if (!have_ttl && t[i].len > 0 && t[i].p[0] >= '0' && t[i].p[0] <= '9') {
			if (parse_ttl(&t[i], &ttl) < 0)
				return zp_fail(zp, "the TTL is not valid (seconds, at most 2147483647)");
			have_ttl = true;
		} else if (!have_class && tok_is(&t[i], "IN")) {
			have_class = true;
		} else if (!have_class && (tok_is(&t[i], "CH") || tok_is(&t[i], "HS") ||
		    tok_is(&t[i], "CS"))) {
			return zp_fail(zp, "only class IN is supported");
		} else {
			break;
		}
		i++;
	}
	if (i == zp->ntoks || t[i].quoted)
		return zp_fail(zp, "the record has no type");
	if (have_ttl) {
		zp->last_ttl = ttl;
		zp->have_last_ttl = true;
	} else {
		ttl = zp->have_default_ttl ? zp->default_ttl :
		    zp->have_last_ttl ? zp->last_ttl : DNS_ZONE_NEG_TTL;
	}
	if (tok_is(&t[i], "TIMEOUT")) {
		if (i + 1 != zp->ntoks)
			return zp_fail(zp, "TIMEOUT takes no data");
		if ((rec = zp_add(zp, &owner)) == NULL)
			return -1;
		rec->timeout = true;
		zp->z->nrecs++;
		return 0;
	}
	if (t[i].len >= sizeof(tname) || (memcpy(tname, t[i].p, t[i].len),
	    tname[t[i].len] = '\0', type = dns_type_parse(tname)) < 0)
		return zp_fail(zp, "unknown type \"%.*s\"", t[i].len > 32 ? 32 : (int)t[i].len, t[i].p);
	if ((rec = zp_add(zp, &owner)) == NULL)
		return -1;
	rec->rr.ttl = ttl;
	if (zp_rdata(zp, (uint16_t)type, &t[i + 1], zp->ntoks - i - 1, &rec->rr) < 0) {
		dns_rr_clear(&rec->rr);
		return -1;
	}
	zp->z->nrecs++;
	return 0;
}

struct dns_zone *
dns_zone_parse(const char *text, size_t len, const char **error_r)
{
	struct zparser zp;
	struct dns_zone *z;
	int ret;

	if (len > DNS_ZONE_TEXT_MAX) {
		error_fail(error_r, EFBIG, "the zone is larger than %u octets", DNS_ZONE_TEXT_MAX);
		return NULL;
	}
	if ((z = calloc(1, sizeof(*z))) == NULL) {
		error_fail(error_r, ENOMEM, "out of memory");
		return NULL;
	}
	z->neg_ttl = DNS_ZONE_NEG_TTL;
	memset(&zp, 0, sizeof(zp));
	zp.text = text;
	zp.len = len;
	zp.line = 1;
	zp.z = z;
	zp.origin.wire[0] = 0;
	zp.origin.len = 1;
	while ((ret = zp_next_line(&zp)) > 0)
		if (zp_record(&zp) < 0)
			break;
	free(zp.toks);
	if (zp.err[0] != '\0' || dns_zone_index(z) < 0) {
		if (zp.err[0] == '\0')
			snprintf(zp.err, sizeof(zp.err), "out of memory");
		error_fail(error_r, EINVAL, "%s", zp.err);
		dns_zone_free(&z);
		return NULL;
	}
	return z;
}

struct dns_zone *
dns_zone_load(const char *path, const char **error_r)
{
	struct dns_zone *z;
	struct stat st;
	char *buf, why[DNS_NAME_TEXT_MAX + 128];
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		error_fail(error_r, errno, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > DNS_ZONE_TEXT_MAX) {
		close(fd);
		error_fail(error_r, EINVAL, "%s: not a regular file of at most %u octets", path,
		    DNS_ZONE_TEXT_MAX);
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		error_fail(error_r, ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	z = dns_zone_parse(buf, got, error_r);
	free(buf);
	if (z == NULL) {
		snprintf(why, sizeof(why), "%s", *error_r);
		error_fail(error_r, EINVAL, "%s %s", path, why);
	}
	return z;
}
