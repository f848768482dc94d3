/*
 * mta-sts — the pure parts of MTA-STS (RFC 8461): the _mta-sts TXT record
 * (§3.1), the policy body (§3.2), MX pattern matching (§4.1), and the policy
 * cache file format (mta-sts-private.h). No I/O here; mta-sts-fetch.c fetches,
 * mta-sts-cache.c decides.
 *
 * Both grammars are taken as written: field names and the values "STSv1",
 * "testing", "enforce", "none" are case-sensitive (%s in the ABNF). Policies are
 * read a little more leniently than the ABNF where nothing can go wrong by it:
 * blank lines are skipped and an mx pattern may end in a dot.
 */
#include "queue/mta-sts.h"
#include "queue/mta-sts-private.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ascii.h"
#include "lib/error.h"

/* sts-ext-name / sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool
ext_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > 32 || !(ascii_is_alpha((unsigned char)s[0]) || ascii_is_digit((unsigned char)s[0])))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

/* ------------------------------------------------------------ TXT (§3.1) */

bool
mta_sts_txt_is_sts(const char *txt, size_t len)
{
	/* "records that do not begin with "v=STSv1;" are discarded"; the ABNF
	 * allows white space before the ";", and "v=STSv1" alone is a record that
	 * claims to be one but is not valid. */
	if (len < 7 || memcmp(txt, "v=STSv1", 7) != 0)
		return false;
	return len == 7 || txt[7] == ';' || ascii_is_wsp((unsigned char)txt[7]);
}

/*
 * sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
 * sts-field-delim = *WSP ";" *WSP
 * sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
 * sts-extension   = sts-ext-name "=" sts-ext-value
 * sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
 * Trailing white space is tolerated; "id" must appear exactly once.
 */
int
mta_sts_txt_parse(const char *txt, size_t len, char id_out[33])
{
	size_t i = 7, idlen = 0;
	bool have_id = false;

	if (len < 7 || memcmp(txt, "v=STSv1", 7) != 0)
		return -1;
	for (;;) {
		size_t start, eq;

		while (i < len && ascii_is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len)
			break;
		if (txt[i] != ';')
			return -1;
		i++;
		while (i < len && ascii_is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len)
			break;          /* the optional final delimiter */
		start = i;
		while (i < len && txt[i] != '=' && txt[i] != ';' && !ascii_is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len || txt[i] != '=' || !ext_name_valid(txt + start, i - start))
			return -1;
		eq = i++;
		while (i < len) {
			unsigned char c = (unsigned char)txt[i];
			if (c < 0x21 || c > 0x7e || c == ';' || c == '=')
				break;
			i++;
		}
		if (i == eq + 1)
			return -1;      /* empty value */
		if (eq - start == 2 && memcmp(txt + start, "id", 2) == 0) {
			size_t vlen = i - eq - 1;
			if (have_id || vlen > 32)
				return -1;
			for (size_t k = eq + 1; k < i; k++)
				if (!ascii_is_alpha((unsigned char)txt[k]) && !ascii_is_digit((unsigned char)txt[k]))
					return -1;
			memcpy(id_out, txt + eq + 1, vlen);
			idlen = vlen;
			have_id = true;
		}
		if (i < len && txt[i] == '=')
			return -1;
	}
	/* "v=STSv1" needs at least one field after it: the loop only accepted a
	 * field after a ";", so a record with no id is refused here. */
	if (!have_id)
		return -1;
	id_out[idlen] = '\0';
	return 0;
}

/* ------------------------------------------------------------ policy (§3.2) */

const char *
mta_sts_mode_name(enum mta_sts_mode mode)
{
	switch (mode) {
	case MTA_STS_NONE:
		return "none";
	case MTA_STS_TESTING:
		return "testing";
	case MTA_STS_ENFORCE:
		return "enforce";
	}
	return "?";
}

void
mta_sts_policy_clear(struct mta_sts_policy *p)
{
	for (size_t i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	memset(p, 0, sizeof(*p));
}

bool
mta_sts_policy_fresh(const struct mta_sts_policy *p, int64_t now)
{
	return now >= p->fetched_at - 300 && now < p->fetched_at + (int64_t)p->max_age;
}

/* An LDH host name (RFC 5321 §4.1.2 Domain, A-labels only): labels of 1-63
 * letters, digits and inner hyphens, at most 253 octets. */
bool
mta_sts_domain_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)s[i] : '.';
		if (c == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if (ascii_is_alpha(c) || ascii_is_digit(c) || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* sts-policy-mx-value = ["*."] Domain; kept lower case, a final dot dropped. */
static int
add_mx(struct mta_sts_policy *p, const char *v, size_t len, unsigned line, const char **error_r)
{
	size_t off = 0;
	char *copy;

	if (p->nmx == MTA_STS_MX_MAX)
		return error_fail(error_r, EINVAL, "line %u: more than %d mx patterns", line,
		    MTA_STS_MX_MAX);
	if (len > 1 && v[len - 1] == '.')
		len--;
	if (len >= 2 && v[0] == '*' && v[1] == '.')
		off = 2;
	if (!mta_sts_domain_valid(v + off, len - off))
		return error_fail(error_r, EINVAL, "line %u: the mx pattern is not a host name "
		    "or \"*.\" and a host name", line);
	if ((copy = malloc(len + 1)) == NULL)
		return error_fail(error_r, ENOMEM, "out of memory");
	for (size_t i = 0; i < len; i++)
		copy[i] = (char)ascii_lower((unsigned char)v[i]);
	copy[len] = '\0';
	p->mx[p->nmx++] = copy;
	return 0;
}

/* One "key: value" line (CR already removed, no LF). */
static int
parse_line(struct mta_sts_policy *p, const char *s, size_t len, unsigned line, unsigned *seen,
    const char **error_r)
{
	enum { SEEN_VERSION = 1, SEEN_MODE = 2, SEEN_MAX_AGE = 4 };
	size_t colon, v, end = len;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* sts-policy-vchar is %x21-7E or UTF-8; WSP only between. */
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return error_fail(error_r, EINVAL, "line %u: control character 0x%02x", line, c);
	}
	for (colon = 0; colon < len && s[colon] != ':'; colon++)
		;
	if (colon == len)
		return error_fail(error_r, EINVAL, "line %u: not a \"key: value\" line", line);
	if (!ext_name_valid(s, colon))
		return error_fail(error_r, EINVAL, "line %u: not a valid field name", line);
	for (v = colon + 1; v < len && ascii_is_wsp((unsigned char)s[v]); v++)
		;
	while (end > v && ascii_is_wsp((unsigned char)s[end - 1]))
		end--;
	if (end == v)
		return error_fail(error_r, EINVAL, "line %u: empty value", line);

	const char *val = s + v;
	size_t vlen = end - v;
#define KEY(k) (colon == sizeof(k) - 1 && memcmp(s, k, sizeof(k) - 1) == 0)
#define VAL(k) (vlen == sizeof(k) - 1 && memcmp(val, k, sizeof(k) - 1) == 0)
	if (KEY("version")) {
		if (*seen & SEEN_VERSION)
			return error_fail(error_r, EINVAL, "line %u: version given twice", line);
		if (!VAL("STSv1"))
			return error_fail(error_r, EINVAL, "line %u: version is not STSv1", line);
		*seen |= SEEN_VERSION;
	} else if (KEY("mode")) {
		if (*seen & SEEN_MODE)
			return error_fail(error_r, EINVAL, "line %u: mode given twice", line);
		if (VAL("enforce"))
			p->mode = MTA_STS_ENFORCE;
		else if (VAL("testing"))
			p->mode = MTA_STS_TESTING;
		else if (VAL("none"))
			p->mode = MTA_STS_NONE;
		else
			return error_fail(error_r, EINVAL, "line %u: mode is not enforce, testing "
			    "or none", line);
		*seen |= SEEN_MODE;
	} else if (KEY("max_age")) {
		uint64_t n = 0;
		if (*seen & SEEN_MAX_AGE)
			return error_fail(error_r, EINVAL, "line %u: max_age given twice", line);
		/* sts-policy-max-age-value = 1*10(DIGIT); capped at a year. */
		if (vlen > 10)
			return error_fail(error_r, EINVAL, "line %u: max_age has more than 10 "
			    "digits", line);
		for (size_t i = 0; i < vlen; i++) {
			if (!ascii_is_digit((unsigned char)val[i]))
				return error_fail(error_r, EINVAL, "line %u: max_age is not a "
				    "number", line);
			n = n * 10 + (uint64_t)(val[i] - '0');
		}
		p->max_age = n > MTA_STS_MAX_AGE_MAX ? MTA_STS_MAX_AGE_MAX : (uint32_t)n;
		*seen |= SEEN_MAX_AGE;
	} else if (KEY("mx")) {
		return add_mx(p, val, vlen, line, error_r);
	}
	/* Other fields: "senders MUST ignore" them (§3.2). */
#undef KEY
#undef VAL
	return 0;
}

int
mta_sts_policy_parse(const char *text, size_t len, struct mta_sts_policy *p, const char **error_r)
{
	unsigned seen = 0, line = 0;
	size_t pos = 0;

	memset(p, 0, sizeof(*p));
	if (len > MTA_STS_POLICY_MAX)
		return error_fail(error_r, EFBIG, "the policy is larger than %d octets",
		    MTA_STS_POLICY_MAX);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		size_t llen = end - pos;
		bool blank = true;

		line++;
		if (llen > 0 && text[end - 1] == '\r')
			llen--;          /* sts-policy-term = LF / CRLF */
		if (llen > MTA_STS_LINE_MAX) {
			mta_sts_policy_clear(p);
			return error_fail(error_r, EINVAL, "line %u: longer than %d octets", line,
			    MTA_STS_LINE_MAX);
		}
		for (size_t i = 0; i < llen && blank; i++)
			blank = ascii_is_wsp((unsigned char)text[pos + i]);
		if (!blank && parse_line(p, text + pos, llen, line, &seen, error_r) < 0) {
			mta_sts_policy_clear(p);
			return -1;
		}
		pos = end + 1;
	}
	const char *missing = !(seen & 1) ? "version" : !(seen & 2) ? "mode" :
	    !(seen & 4) ? "max_age" : p->nmx == 0 && p->mode != MTA_STS_NONE ? "mx" : NULL;
	if (missing != NULL) {
		mta_sts_policy_clear(p);
		return error_fail(error_r, EINVAL, "the policy has no %s field", missing);
	}
	return 0;
}

/* ------------------------------------------------------------ MX match (§4.1) */

/* Whether a (a pattern, lower case) and b[0..blen) are equal, ASCII case-insensitively. */
static bool
name_eq(const char *a, const char *b, size_t blen)
{
	if (strlen(a) != blen)
		return false;
	for (size_t i = 0; i < blen; i++)
		if ((unsigned char)a[i] != ascii_lower((unsigned char)b[i]))
			return false;
	return true;
}

bool
mta_sts_mx_match(const struct mta_sts_policy *p, const char *host)
{
	size_t len = strlen(host);

	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0)
		return false;
	for (size_t i = 0; i < p->nmx; i++) {
		const char *pat = p->mx[i];
		if (pat[0] == '*' && pat[1] == '.') {
			/* "*.example.com" matches "mx.example.com" but neither
			 * "example.com" nor "a.b.example.com": the wildcard is exactly
			 * one whole leftmost label. */
			const char *dot = memchr(host, '.', len);
			if (dot != NULL && dot != host &&
			    name_eq(pat + 2, dot + 1, len - (size_t)(dot + 1 - host)))
				return true;
		} else if (name_eq(pat, host, len)) {
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------ copies and files */

int
mta_sts_policy_copy(struct mta_sts_policy *dst, const struct mta_sts_policy *src)
{
	*dst = *src;
	dst->nmx = 0;
	for (size_t i = 0; i < src->nmx; i++) {
		if ((dst->mx[i] = strdup(src->mx[i])) == NULL) {
			mta_sts_policy_clear(dst);
			return -1;
		}
		dst->nmx = i + 1;
	}
	return 0;
}

char *
mta_sts_policy_format(const struct mta_sts_policy *p, size_t *len_r)
{
	size_t cap = 256, len;
	char *buf;

	for (size_t i = 0; i < p->nmx; i++)
		cap += strlen(p->mx[i]) + 5;
	if ((buf = malloc(cap)) == NULL)
		return NULL;
	len = (size_t)snprintf(buf, cap, "id: %s\nfetched_at: %" PRId64 "\n"
	    "version: STSv1\nmode: %s\nmax_age: %" PRIu32 "\n",
	    p->id, p->fetched_at, mta_sts_mode_name(p->mode), p->max_age);
	for (size_t i = 0; i < p->nmx && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "mx: %s\n", p->mx[i]);
	if (len >= cap) {
		free(buf);
		return NULL;
	}
	*len_r = len;
	return buf;
}

/* "key: value\n" at the start of text[*pos..len) for this key; the value is
 * returned NUL-terminated in out (size octets), *pos moves past the line. */
static int
file_field(const char *text, size_t len, size_t *pos, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key), start, end;
	const char *nl;

	if (len - *pos < klen + 2 || memcmp(text + *pos, key, klen) != 0 ||
	    text[*pos + klen] != ':' || text[*pos + klen + 1] != ' ')
		return -1;
	start = *pos + klen + 2;
	if ((nl = memchr(text + start, '\n', len - start)) == NULL)
		return -1;
	end = (size_t)(nl - text);
	if (end - start == 0 || end - start >= size)
		return -1;
	memcpy(out, text + start, end - start);
	out[end - start] = '\0';
	*pos = end + 1;
	return 0;
}

int
mta_sts_policy_unformat(const char *text, size_t len, struct mta_sts_policy *p,
    const char **error_r)
{
	char id[40], when[24], check[33], *end;
	size_t pos = 0;
	long long at;

	memset(p, 0, sizeof(*p));
	if (file_field(text, len, &pos, "id", id, sizeof(id)) < 0 ||
	    file_field(text, len, &pos, "fetched_at", when, sizeof(when)) < 0)
		return error_fail(error_r, EINVAL, "the file does not start with id and "
		    "fetched_at lines");
	/* The id is checked as the TXT record's would be. */
	char txt[64];
	int n = snprintf(txt, sizeof(txt), "v=STSv1; id=%s", id);
	if (n < 0 || (size_t)n >= sizeof(txt) || mta_sts_txt_parse(txt, (size_t)n, check) < 0)
		return error_fail(error_r, EINVAL, "the id is not valid");
	errno = 0;
	at = strtoll(when, &end, 10);
	if (errno != 0 || *end != '\0' || at < 0)
		return error_fail(error_r, EINVAL, "fetched_at is not a time");
	if (mta_sts_policy_parse(text + pos, len - pos, p, error_r) < 0)
		return -1;
	memcpy(p->id, check, strlen(check) + 1);
	p->fetched_at = at;
	return 0;
}
