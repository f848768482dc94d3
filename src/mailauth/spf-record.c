/*
 * spf-record — the SPF record parser (RFC 7208 §4.5, §4.6, §5, §6, §12).
 *
 * The record is split at spaces only (§4.6.1: terms are separated by one or
 * more SP; a tab, CR or LF is a syntax error, not a separator). Each term is
 * a directive ([qualifier] mechanism) or a modifier (name "=" value); names are
 * case-insensitive. The work buffer holds two copies of the record: one kept
 * as written (each term's text, for reasons and errors) and one cut up into
 * domain-specs.
 */
#include "mailauth/spf-record.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailauth/spf-macro.h"

static const char *const mech_names[] = {
	[SPF_MECH_ALL] = "all", [SPF_MECH_INCLUDE] = "include", [SPF_MECH_A] = "a",
	[SPF_MECH_MX] = "mx", [SPF_MECH_PTR] = "ptr", [SPF_MECH_IP4] = "ip4",
	[SPF_MECH_IP6] = "ip6", [SPF_MECH_EXISTS] = "exists",
};

static _Thread_local char parse_error[256];

bool
spf_record_is_v1(const char *text, size_t len)
{
	/* §4.5: "v=spf1" then SP or the end; "v=spf10" or "v=spf1mx" are not. */
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 && (len == 6 || text[6] == ' ');
}

/* Fills parse_error with "the term 'TERM' ...: why", TERM made printable and short. */
static int
term_error(const char *term, size_t len, const char *why, const char **error_r)
{
	char shown[80];
	size_t n = 0;

	for (size_t i = 0; i < len && n + 5 < sizeof(shown); i++) {
		unsigned char c = (unsigned char)term[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			shown[n++] = (char)c;
		else
			n += (size_t)snprintf(shown + n, sizeof(shown) - n, "\\x%02x", c);
	}
	shown[n] = '\0';
	snprintf(parse_error, sizeof(parse_error), "syntax error in the term \"%s%s\": %s",
	    shown, n + 5 >= sizeof(shown) ? "..." : "", why);
	*error_r = parse_error;
	return -1;
}

/* "/" ("0" / %x31-39 0*2DIGIT), at most max (§12 ip4-cidr-length, ip6-cidr-length). */
static int
parse_cidr(const char *digits, size_t len, unsigned max, uint8_t *bits)
{
	unsigned v = 0;

	if (len == 0 || len > 3 || (digits[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (digits[i] < '0' || digits[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(digits[i] - '0');
	}
	if (v > max)
		return -1;
	*bits = (uint8_t)v;
	return 0;
}

/* Splits a trailing dual-cidr-length ("/24", "//64", "/24//64") off s, in
 * place. Returns -1 for a length out of range or with a leading zero. */
static int
strip_dual_cidr(char *s, struct spf_term *t)
{
	size_t end = strlen(s), d = end;

	while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9')
		d--;
	if (d < end && d >= 2 && s[d - 1] == '/' && s[d - 2] == '/') {
		if (parse_cidr(s + d, end - d, 128, &t->cidr6) < 0)
			return -1;
		end = d - 2;
		s[end] = '\0';
		d = end;
		while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9')
			d--;
	}
	if (d < end && d >= 1 && s[d - 1] == '/') {
		if (parse_cidr(s + d, end - d, 32, &t->cidr4) < 0)
			return -1;
		s[d - 1] = '\0';
	}
	return 0;
}

/* ip4 / ip6: ":" network [ "/" length ] (§5.6). */
static const char *
parse_ip(char *rest, struct spf_term *t)
{
	bool v6 = t->mech == SPF_MECH_IP6;
	char *slash;

	if (rest[0] != ':')
		return "ip4 and ip6 need \":\" and a network (RFC 7208 section 5.6)";
	rest++;
	if ((slash = strchr(rest, '/')) != NULL) {
		*slash = '\0';
		if (parse_cidr(slash + 1, strlen(slash + 1), v6 ? 128 : 32,
		    v6 ? &t->cidr6 : &t->cidr4) < 0)
			return "a bad prefix length (RFC 7208 section 5.6)";
	}
	if (inet_pton(v6 ? AF_INET6 : AF_INET, rest, t->addr) != 1)
		return v6 ? "not an IPv6 network (RFC 7208 section 5.6)" :
		    "not an IPv4 network (RFC 7208 section 5.6)";
	return NULL;
}

/* Checks a domain-spec (the rest after ":" or "="), which must not be empty. */
static const char *
check_domain(const char *spec)
{
	const char *why = NULL;

	if (spf_macro_check(spec, strlen(spec), SPF_MACRO_DOMAIN, &why) < 0)
		return why;
	return NULL;
}

/* [ ":" domain-spec ] after a, mx (their lengths already cut off) and ptr. */
static const char *
optional_domain(char *rest, struct spf_term *t)
{
	if (rest[0] == '\0')
		return NULL;
	if (rest[0] != ':')
		return "unexpected text after the mechanism name (RFC 7208 section 12)";
	t->domain = rest + 1;
	return check_domain(t->domain);
}

/* The mechanism part of a directive, in work (a private copy of the term). */
static const char *
parse_mechanism(char *work, struct spf_term *t)
{
	size_t k = strcspn(work, ":/");
	char *rest = work + k;
	size_t m;

	for (m = 0; m < sizeof(mech_names) / sizeof(mech_names[0]); m++)
		if (strlen(mech_names[m]) == k && strncasecmp(work, mech_names[m], k) == 0)
			break;
	if (m == sizeof(mech_names) / sizeof(mech_names[0]))
		return "not a known mechanism or a modifier (RFC 7208 sections 5, 6)";
	t->mech = (uint8_t)m;
	t->cidr4 = 32;
	t->cidr6 = 128;
	switch (t->mech) {
	case SPF_MECH_ALL:
		return rest[0] == '\0' ? NULL : "\"all\" takes no argument (RFC 7208 section 5.1)";
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (rest[0] != ':')
			return "include and exists need \":\" and a domain (RFC 7208 sections 5.2, 5.7)";
		t->domain = rest + 1;
		return check_domain(t->domain);
	case SPF_MECH_A:
	case SPF_MECH_MX:
		if (strip_dual_cidr(rest, t) < 0)
			return "a bad prefix length (RFC 7208 section 5.6)";
		return optional_domain(rest, t);
	case SPF_MECH_PTR:
		return optional_domain(rest, t);
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		return parse_ip(rest, t);
	}
	return "not a known mechanism";
}

/* A modifier when the term is name "=" ..., name = ALPHA *( ALPHA / DIGIT /
 * "-" / "_" / "." ) (§12); returns the length of the name, or 0. */
static size_t
modifier_name(const char *s)
{
	size_t n = 0;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return 0;
	while (s[n] != '\0' && (strchr("-_.", s[n]) != NULL ||
	    (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
	    (s[n] >= '0' && s[n] <= '9')))
		n++;
	return s[n] == '=' ? n : 0;
}

static const char *
parse_modifier(struct spf_record *rec, char *work, size_t namelen)
{
	char *value = work + namelen + 1;
	const char **slot = NULL;
	const char *why = NULL;

	if (namelen == 8 && strncasecmp(work, "redirect", 8) == 0)
		slot = &rec->redirect;
	else if (namelen == 3 && strncasecmp(work, "exp", 3) == 0)
		slot = &rec->exp;
	if (slot == NULL) {
		/* §6: unknown modifiers are ignored, but must be well formed. */
		if (spf_macro_check(value, strlen(value), SPF_MACRO_MODIFIER, &why) < 0)
			return why;
		return NULL;
	}
	if (*slot != NULL)
		return "redirect= and exp= may appear at most once (RFC 7208 section 6)";
	*slot = value;
	return check_domain(value);
}

/* One term, work being its private copy; fills *t when it is a directive. */
static const char *
parse_term(struct spf_record *rec, char *work, struct spf_term *t, bool *is_mech)
{
	static const char quals[] = "+-?~";
	static const uint8_t qual_results[] = { SPF_RESULT_PASS, SPF_RESULT_FAIL,
	    SPF_RESULT_NEUTRAL, SPF_RESULT_SOFTFAIL };
	size_t namelen;

	*is_mech = false;
	for (const char *p = work; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e)
			return "a character outside printable ASCII (RFC 7208 sections 4.6.1, 12)";
	if ((namelen = modifier_name(work)) > 0)
		return parse_modifier(rec, work, namelen);
	t->qualifier = SPF_RESULT_PASS;
	const char *q = strchr(quals, work[0]);
	if (work[0] != '\0' && q != NULL) {
		t->qualifier = qual_results[q - quals];
		work++;
		if (modifier_name(work) > 0)
			return "a modifier takes no qualifier (RFC 7208 section 4.6.1)";
	}
	*is_mech = true;
	return parse_mechanism(work, t);
}

int
spf_record_parse(const char *text, size_t len, struct spf_record **rec_r, const char **error_r)
{
	struct spf_record *rec;
	size_t nterms = 0;

	*rec_r = NULL;
	if (len > SPF_RECORD_MAX) {
		*error_r = "the SPF record is longer than a DNS message can be";
		return -1;
	}
	if (!spf_record_is_v1(text, len)) {
		*error_r = "not an SPF record: it does not begin with \"v=spf1\" (RFC 7208 section 4.5)";
		return -1;
	}
	for (size_t i = 6; i < len; i++)
		if (text[i] != ' ' && text[i - 1] == ' ')
			nterms++;
	if ((rec = calloc(1, sizeof(*rec))) == NULL ||
	    (rec->buf = malloc(2 * (len + 1))) == NULL ||
	    (nterms > 0 && (rec->terms = calloc(nterms, sizeof(*rec->terms))) == NULL)) {
		spf_record_free(&rec);
		*error_r = "out of memory";
		return -1;
	}
	/* Two copies, spaces turned into NULs: [0, len] as written, then the work copy. */
	char *shown = rec->buf, *work = rec->buf + len + 1;
	memcpy(shown, text, len);
	shown[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (shown[i] == ' ')
			shown[i] = '\0';
	memcpy(work, shown, len + 1);

	size_t i = 6;
	while (i < len) {
		if (text[i] == ' ') {
			i++;
			continue;
		}
		/* A term runs to the next space or the end. */
		size_t tlen = 0;
		while (i + tlen < len && text[i + tlen] != ' ')
			tlen++;
		struct spf_term *t = &rec->terms[rec->nterms];
		bool is_mech = false;
		const char *why;
		if (memchr(text + i, '\0', tlen) != NULL)
			why = "a NUL octet (RFC 7208 section 12)";
		else
			why = parse_term(rec, work + i, t, &is_mech);
		if (why != NULL) {
			spf_record_free(&rec);
			return term_error(text + i, tlen, why, error_r);
		}
		if (is_mech) {
			t->text = shown + i;
			rec->nterms++;
		}
		i += tlen;
	}
	*rec_r = rec;
	return 0;
}

void
spf_record_free(struct spf_record **rec)
{
	if (*rec == NULL)
		return;
	free((*rec)->terms);
	free((*rec)->buf);
	free(*rec);
	*rec = NULL;
}
