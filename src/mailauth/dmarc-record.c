/*
 * dmarc-record — the DMARC policy record (RFC 7489 §6.3, grammar §6.4).
 *
 * A record is "v=DMARC1" followed by ";"-separated tag=value pairs. The rules
 * applied here, with the reasons:
 *   - v must be the first tag and its value exactly "DMARC1": the ABNF spells it
 *     with %x octets, so it is case-sensitive, while tag names and the keyword
 *     values are quoted ABNF strings and so case-insensitive (RFC 5234 §2.3).
 *   - p is required (§6.3) and must come after v (§6.3 "MUST appear in that
 *     order"); other tags may appear in any order.
 *   - A missing or invalid p, or an invalid sp, is survivable only through
 *     §6.6.3 step 6: when rua names at least one syntactically valid URI the
 *     record is treated as "v=DMARC1; p=none"; otherwise it is rejected.
 *   - Invalid adkim, aspf, pct, ri or rf values reject the record (the header
 *     contract, and OpenDMARC's behaviour): these change what the check decides
 *     or what the owner asked for, so guessing is worse than ignoring. For rf,
 *     §6.3 explicitly allows ignoring the entire record.
 *   - fo only shapes failure reports, which Rampart does not send: unknown fo
 *     options are dropped (§6.3 "Syntax errors in the remainder of the record
 *     SHOULD be discarded in favor of default values").
 *   - Unknown tags are ignored (§6.3), as are fragments without "=" (they name
 *     no tag we could apply). A known tag given twice rejects the record: the
 *     owner's intent is ambiguous.
 */
#include "mailauth/dmarc.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static bool is_wsp(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_hex(char ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A slice of the record. */
struct span {
	const char *p;
	size_t len;
};

static bool span_is(struct span s, const char *word)
{
	return s.len == strlen(word) && strncasecmp(s.p, word, s.len) == 0;
}

static struct span span_trim(struct span s)
{
	while (s.len > 0 && is_wsp(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_wsp(s.p[s.len - 1]))
		s.len--;
	return s;
}

/* Length of "v" *WSP "=" *WSP "DMARC1" *WSP when txt starts with it and it is
 * followed by ";" or the end (§6.4 dmarc-version, dmarc-sep); else 0. */
static size_t version_len(const char *txt, size_t len)
{
	size_t i = 0;

	if (len == 0 || (txt[0] != 'v' && txt[0] != 'V'))
		return 0;
	i = 1;
	while (i < len && is_wsp(txt[i]))
		i++;
	if (i >= len || txt[i] != '=')
		return 0;
	i++;
	while (i < len && is_wsp(txt[i]))
		i++;
	if (len - i < 6 || memcmp(txt + i, "DMARC1", 6) != 0)
		return 0;
	i += 6;
	while (i < len && is_wsp(txt[i]))
		i++;
	if (i < len && txt[i] != ';')
		return 0;
	return i;
}

bool dmarc_record_is_dmarc(const char *txt, size_t len)
{
	return version_len(txt, len) > 0;
}

static int parse_policy(struct span v, enum dmarc_policy *p)
{
	if (span_is(v, "none"))
		*p = DMARC_POLICY_NONE;
	else if (span_is(v, "quarantine"))
		*p = DMARC_POLICY_QUARANTINE;
	else if (span_is(v, "reject"))
		*p = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

static int parse_mode(struct span v, bool *strict)
{
	if (span_is(v, "r"))
		*strict = false;
	else if (span_is(v, "s"))
		*strict = true;
	else
		return -1;
	return 0;
}

/* 1*DIGIT up to max; max < 2^32. */
static int parse_uint(struct span v, size_t max_digits, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (v.len == 0 || v.len > max_digits)
		return -1;
	for (size_t i = 0; i < v.len; i++) {
		if (!is_digit(v.p[i]))
			return -1;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	if (n > max)
		return -1;
	*out = n;
	return 0;
}

/* Calls fn on each element of a sep-separated list, WSP trimmed; stops at -1. */
static int list_each(struct span v, char sep, int (*fn)(struct span))
{
	size_t start = 0;

	for (size_t i = 0; i <= v.len; i++) {
		if (i < v.len && v.p[i] != sep)
			continue;
		struct span e = { v.p + start, i - start };
		if (fn(span_trim(e)) < 0)
			return -1;
		start = i + 1;
	}
	return 0;
}

/* rf: Keyword *(*WSP ":" Keyword), registered formats only (§6.3, §11.5): afrf. */
static int rf_element(struct span e)
{
	return span_is(e, "afrf") ? 0 : -1;
}

/* fo: unknown options are dropped (see the top of the file), so never fails. */
static int fo_element(struct span e)
{
	(void)e;
	return 0;
}

/* dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ] (§6.4), the URI
 * checked as RFC 3986 §3.1 scheme ":" followed by URI characters (§2). Returns
 * 0 when valid, -1 otherwise. */
static int uri_element(struct span e)
{
	size_t i = 0, end = e.len;

	if (e.len == 0 || !is_alpha(e.p[0]))
		return -1;
	while (i < end && (is_alpha(e.p[i]) || is_digit(e.p[i]) || e.p[i] == '+' ||
	    e.p[i] == '-' || e.p[i] == '.'))
		i++;
	if (i >= end || e.p[i] != ':')
		return -1;
	i++;
	/* The optional size limit after "!" (commas and "!" in the URI itself
	 * must be percent-encoded). */
	const char *bang = memchr(e.p + i, '!', end - i);
	if (bang != NULL) {
		size_t b = (size_t)(bang - e.p) + 1, digits = 0;
		while (b < end && is_digit(e.p[b])) {
			b++;
			digits++;
		}
		if (b < end && strchr("kmgt", e.p[b] | 0x20) != NULL && e.p[b] != '\0')
			b++;
		if (digits == 0 || b != end)
			return -1;
		end = (size_t)(bang - e.p);
	}
	if (i == end)
		return -1;
	for (; i < end; i++) {
		char ch = e.p[i];
		if (ch == '%') {
			if (end - i < 3 || !is_hex(e.p[i + 1]) || !is_hex(e.p[i + 2]))
				return -1;
			i += 2;
		} else if (!is_alpha(ch) && !is_digit(ch) &&
		    strchr("-._~:/?#[]@$&'()*+=", ch) == NULL) {
			return -1;
		} else if (ch == '\0') {
			return -1;
		}
	}
	return 0;
}

/* Whether any element of a comma-separated URI list is valid. */
static bool uri_list_has_valid(struct span v)
{
	size_t start = 0;

	for (size_t i = 0; i <= v.len; i++) {
		if (i < v.len && v.p[i] != ',')
			continue;
		struct span e = { v.p + start, i - start };
		if (uri_element(span_trim(e)) == 0)
			return true;
		start = i + 1;
	}
	return false;
}

/* Keeps the URI list as written, or the longest prefix of whole elements that
 * fits (the list is informational here: Rampart sends no reports). */
static void keep_text(struct span v, char *buf, size_t size)
{
	size_t n = v.len;

	if (n >= size) {
		n = size - 1;
		while (n > 0 && v.p[n] != ',')
			n--;
		struct span cut = span_trim((struct span){ v.p, n });
		n = cut.len;
	}
	memcpy(buf, v.p, n);
	buf[n] = '\0';
}

enum tag_bit {
	TAG_P = 1 << 0, TAG_SP = 1 << 1, TAG_ADKIM = 1 << 2, TAG_ASPF = 1 << 3,
	TAG_PCT = 1 << 4, TAG_RUA = 1 << 5, TAG_RUF = 1 << 6, TAG_FO = 1 << 7,
	TAG_RF = 1 << 8, TAG_RI = 1 << 9, TAG_V = 1 << 10,
};

static const struct {
	const char *name;
	unsigned bit;
} known_tags[] = {
	{ "p", TAG_P }, { "sp", TAG_SP }, { "adkim", TAG_ADKIM }, { "aspf", TAG_ASPF },
	{ "pct", TAG_PCT }, { "rua", TAG_RUA }, { "ruf", TAG_RUF }, { "fo", TAG_FO },
	{ "rf", TAG_RF }, { "ri", TAG_RI }, { "v", TAG_V },
};

struct parse_state {
	unsigned seen;
	bool p_ok, sp_ok, rua_valid;
};

/* One tag=value. Returns 0, or -1 with a sentence. */
static int parse_tag(struct span name, struct span value, struct dmarc_record *r,
    struct parse_state *st, const char **error_r)
{
	unsigned bit = 0;
	uint64_t n;

	for (size_t i = 0; i < sizeof(known_tags) / sizeof(known_tags[0]); i++) {
		if (span_is(name, known_tags[i].name))
			bit = known_tags[i].bit;
	}
	if (bit == 0)
		return 0;   /* §6.3: unknown tags MUST be ignored */
	if ((st->seen & bit) != 0) {
		*error_r = "a DMARC record tag appears twice";
		return -1;
	}
	st->seen |= bit;
	switch ((enum tag_bit)bit) {
	case TAG_V:
		break;   /* unreachable: a second v= is caught as a duplicate */
	case TAG_P:
		st->p_ok = parse_policy(value, &r->p) == 0;
		break;
	case TAG_SP:
		st->sp_ok = parse_policy(value, &r->sp) == 0;
		break;
	case TAG_ADKIM:
		if (parse_mode(value, &r->adkim_strict) < 0) {
			*error_r = "the DMARC adkim= value is neither r nor s";
			return -1;
		}
		break;
	case TAG_ASPF:
		if (parse_mode(value, &r->aspf_strict) < 0) {
			*error_r = "the DMARC aspf= value is neither r nor s";
			return -1;
		}
		break;
	case TAG_PCT:
		/* §6.3: "plain-text integer between 0 and 100, inclusive" */
		if (parse_uint(value, 3, 100, &n) < 0) {
			*error_r = "the DMARC pct= value is not an integer from 0 to 100";
			return -1;
		}
		r->pct = (int)n;
		break;
	case TAG_RI:
		/* §6.3: "plain-text 32-bit unsigned integer" */
		if (parse_uint(value, 10, UINT32_MAX, &n) < 0) {
			*error_r = "the DMARC ri= value is not a 32-bit unsigned integer";
			return -1;
		}
		break;
	case TAG_RF:
		if (list_each(value, ':', rf_element) < 0) {
			*error_r = "the DMARC rf= value names an unregistered report format";
			return -1;
		}
		break;
	case TAG_FO:
		(void)list_each(value, ':', fo_element);
		break;
	case TAG_RUA:
		st->rua_valid = uri_list_has_valid(value);
		keep_text(value, r->rua, sizeof(r->rua));
		break;
	case TAG_RUF:
		keep_text(value, r->ruf, sizeof(r->ruf));
		break;
	}
	return 0;
}

int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r,
    const char **error_r)
{
	struct parse_state st = { .seen = 0 };
	size_t i;

	memset(r, 0, sizeof(*r));
	r->pct = 100;
	if (len == 0) {
		*error_r = "the DMARC record is empty";
		return -1;
	}
	i = version_len(txt, len);
	if (i == 0) {
		*error_r = "the record does not start with v=DMARC1";
		return -1;
	}
	for (size_t k = 0; k < len; k++) {
		unsigned char ch = (unsigned char)txt[k];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			*error_r = "the DMARC record contains control characters";
			return -1;
		}
	}
	st.seen = TAG_V;
	while (i < len) {
		/* At a ";" (dmarc-sep); the tag runs to the next one. */
		i++;
		const char *semi = memchr(txt + i, ';', len - i);
		size_t end = semi != NULL ? (size_t)(semi - txt) : len;
		struct span tag = span_trim((struct span){ txt + i, end - i });
		const char *eq = memchr(tag.p, '=', tag.len);

		i = end;
		if (tag.len == 0 || eq == NULL)
			continue;
		struct span name = span_trim((struct span){ tag.p, (size_t)(eq - tag.p) });
		struct span value = span_trim((struct span){ eq + 1,
		    tag.len - (size_t)(eq - tag.p) - 1 });
		if (parse_tag(name, value, r, &st, error_r) < 0)
			return -1;
	}
	if ((st.seen & TAG_SP) == 0) {
		r->sp = r->p;   /* §6.3: sp absent, p applies to subdomains */
		st.sp_ok = true;
	}
	if (!st.p_ok || !st.sp_ok) {
		/* §6.6.3 step 6 */
		if (!st.rua_valid) {
			*error_r = st.p_ok ? "the DMARC sp= value is not valid" :
			    (st.seen & TAG_P) != 0 ? "the DMARC p= value is not valid" :
			    "the DMARC record has no p= tag";
			return -1;
		}
		r->p = r->sp = DMARC_POLICY_NONE;
	}
	return 0;
}
