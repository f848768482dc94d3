/*
 * smtp-parse — SMTP command lines, MAIL/RCPT arguments with their ESMTP
 * parameters, BDAT arguments and xtext. Pure: bounded reads, fixed outputs.
 */
#include "smtp/smtp-parse.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "EHLO", SMTP_VERB_EHLO },
	{ "HELO", SMTP_VERB_HELO },
	{ "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },
	{ "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT },
	{ "HELP", SMTP_VERB_HELP },
	{ "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN },
	{ "STARTTLS", SMTP_VERB_STARTTLS },
	{ "AUTH", SMTP_VERB_AUTH },
};

const char *smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (verbs[i].verb == verb)
			return verbs[i].name;
	}
	return "UNKNOWN";
}

int smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd,
		       const char **error_r)
{
	size_t vlen;

	cmd->verb = SMTP_VERB_UNKNOWN;
	cmd->name = line;
	cmd->name_len = 0;
	cmd->arg = "";
	cmd->arg_len = 0;
	if (len == 0) {
		*error_r = "empty command line";
		return -1;
	}
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "NUL byte in command line";
		return -1;
	}
	if (memchr(line, '\r', len) != NULL || memchr(line, '\n', len) != NULL) {
		/* RFC 5321 §2.3.8: CR and LF only ever appear together, ending a line. */
		*error_r = "bare CR or LF in command line (RFC 5321 §2.3.8)";
		return -1;
	}
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++) {
		unsigned char ch = (unsigned char)line[vlen];

		if (ch < 33 || ch > 126) {
			*error_r = "non-ASCII or control character in command verb";
			return -1;
		}
	}
	if (vlen == 0) {
		*error_r = "command line starts with a space";
		return -1;
	}
	cmd->name_len = vlen;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		/* RFC 5321 §2.4: verbs are case-insensitive; the whole word must match. */
		if (strlen(verbs[i].name) == vlen && strncasecmp(line, verbs[i].name, vlen) == 0) {
			cmd->verb = verbs[i].verb;
			break;
		}
	}
	if (vlen < len) {
		cmd->arg = line + vlen + 1;
		cmd->arg_len = len - vlen - 1;
	}
	return 0;
}

/* ---- xtext, RFC 3461 §4 ---- */

static int hex_upper(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Walks xtext s[0..len). Writes the decoded octets to out when out != NULL
 * (at most outsize - 1, then a NUL). printable: every decoded octet must be
 * printable US-ASCII, as RFC 3461 §4.2 and §4.4 require of ORCPT and ENVID.
 */
static int xtext_scan(const char *s, size_t len, char *out, size_t outsize,
		      size_t *outlen_r, bool printable)
{
	size_t i = 0, n = 0;

	while (i < len) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '+') {
			int hi, lo;

			if (len - i < 3 || (hi = hex_upper(s[i + 1])) < 0 || (lo = hex_upper(s[i + 2])) < 0)
				return -1;
			ch = (unsigned char)(hi * 16 + lo);
			if (ch == '\0')
				return -1;
			i += 3;
		} else if (ch >= '!' && ch <= '~' && ch != '=') {
			i++;
		} else
			return -1;
		if (printable && (ch < 0x20 || ch > 0x7E))
			return -1;
		if (out != NULL) {
			if (n + 1 >= outsize)
				return -1;
			out[n] = (char)ch;
		}
		n++;
	}
	if (out != NULL) {
		if (outsize == 0)
			return -1;
		out[n] = '\0';
	}
	if (outlen_r != NULL)
		*outlen_r = n;
	return 0;
}

bool smtp_xtext_valid(const char *s, size_t len)
{
	return xtext_scan(s, len, NULL, 0, NULL, false) == 0;
}

int smtp_xtext_decode(const char *s, size_t len, char *out, size_t outsize, size_t *outlen_r)
{
	return xtext_scan(s, len, out, outsize, outlen_r, false);
}

/* ---- ESMTP parameters, RFC 5321 §4.1.2 ---- */

struct reply {
	int *code_r;
	const char **enh_r;
	const char **error_r;
};

static int fail(const struct reply *r, int code, const char *enh, const char *error)
{
	*r->code_r = code;
	*r->enh_r = enh;
	*r->error_r = error;
	return -1;
}

static int fail_address(const struct reply *r, enum smtp_address_error reason,
			const char *error, const char *enh)
{
	if (reason == SMTP_ADDRESS_ERR_UTF8)
		return fail(r, 553, "5.6.7", error); /* RFC 6531 §3.5 */
	/* RFC 5321 §4.5.3.1.9: "501 Path too long"; syntax errors are 501 too. */
	return fail(r, 501, enh, error);
}

struct param {
	const char *kw;
	size_t kwlen;
	const char *val; /* NULL when the keyword had no "=" value */
	size_t vlen;
};

static bool is_alnum(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/*
 * esmtp-param = esmtp-keyword ["=" esmtp-value] after one or more SP.
 * Returns 1 with *pr set, 0 at the end of the line, -1 on a syntax error.
 * With utf8, esmtp-value may hold UTF-8 (RFC 6531 §3.3).
 */
static int next_param(const char **pp, const char *end, bool utf8, struct param *pr)
{
	const char *p = *pp;

	if (p == end)
		return 0;
	if (*p != ' ')
		return -1;
	while (p < end && *p == ' ')
		p++; /* tolerate several spaces, and trailing ones */
	if (p == end) {
		*pp = p;
		return 0;
	}
	pr->kw = p;
	if (!is_alnum((unsigned char)*p))
		return -1;
	while (p < end && (is_alnum((unsigned char)*p) || *p == '-'))
		p++;
	pr->kwlen = (size_t)(p - pr->kw);
	pr->val = NULL;
	pr->vlen = 0;
	if (p < end && *p == '=') {
		pr->val = ++p;
		while (p < end) {
			unsigned char ch = (unsigned char)*p;
			size_t n;

			if (ch >= 33 && ch <= 126 && ch != '=')
				p++;
			else if (ch >= 0x80 && utf8 &&
				 (n = smtp_address_utf8_seq((const unsigned char *)p, (size_t)(end - p))) > 0)
				p += n;
			else
				break;
		}
		pr->vlen = (size_t)(p - pr->val);
		if (pr->vlen == 0)
			return -1;
	}
	if (p < end && *p != ' ')
		return -1;
	*pp = p;
	return 1;
}

static bool word_eq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* The index of pr's keyword in names[], or -1. */
static int param_index(const struct param *pr, const char *const *names, int count)
{
	for (int i = 0; i < count; i++) {
		if (word_eq(pr->kw, pr->kwlen, names[i]))
			return i;
	}
	return -1;
}

/* size-value = 1*20DIGIT (RFC 1870), within uint64_t. */
static int parse_u64(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	return 0;
}

/* Copies a validated raw value into a fixed field of size max + 1. */
static void copy_value(char *dst, const char *src, size_t len)
{
	memcpy(dst, src, len);
	dst[len] = '\0';
}

enum { MAIL_SIZE, MAIL_BODY, MAIL_SMTPUTF8, MAIL_RET, MAIL_ENVID, MAIL_AUTH, MAIL_COUNT };
static const char *const mail_param_names[MAIL_COUNT] = {
	"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH",
};
static const unsigned mail_param_ext[MAIL_COUNT] = {
	SMTP_EXT_SIZE, SMTP_EXT_8BITMIME, SMTP_EXT_SMTPUTF8, SMTP_EXT_DSN, SMTP_EXT_DSN, SMTP_EXT_AUTH,
};

static int mail_param(const struct reply *r, int idx, const struct param *pr,
		      struct smtp_mail_args *out)
{
	if (idx == MAIL_SMTPUTF8) {
		if (pr->val != NULL)
			return fail(r, 501, "5.5.4", "SMTPUTF8 takes no value (RFC 6531 §3.4)");
		out->smtputf8 = true;
		return 0;
	}
	if (pr->val == NULL)
		return fail(r, 501, "5.5.4", "MAIL parameter needs a value");
	switch (idx) {
	case MAIL_SIZE:
		if (pr->vlen > 20 || parse_u64(pr->val, pr->vlen, &out->size) < 0)
			return fail(r, 501, "5.5.4", "invalid SIZE value (RFC 1870)");
		out->size_set = true;
		return 0;
	case MAIL_BODY:
		if (word_eq(pr->val, pr->vlen, "7BIT"))
			out->body = SMTP_BODY_7BIT;
		else if (word_eq(pr->val, pr->vlen, "8BITMIME"))
			out->body = SMTP_BODY_8BITMIME;
		else if (word_eq(pr->val, pr->vlen, "BINARYMIME"))
			return fail(r, 555, "5.5.4", "BODY=BINARYMIME is not supported (RFC 3030)");
		else
			return fail(r, 501, "5.5.4", "invalid BODY value (RFC 6152)");
		return 0;
	case MAIL_RET:
		if (word_eq(pr->val, pr->vlen, "FULL"))
			out->ret = SMTP_RET_FULL;
		else if (word_eq(pr->val, pr->vlen, "HDRS"))
			out->ret = SMTP_RET_HDRS;
		else
			return fail(r, 501, "5.5.4", "invalid RET value (RFC 3461 §4.3)");
		return 0;
	case MAIL_ENVID:
		if (pr->vlen > SMTP_ENVID_MAX ||
		    xtext_scan(pr->val, pr->vlen, NULL, 0, NULL, true) < 0)
			return fail(r, 501, "5.5.4", "invalid ENVID value (RFC 3461 §4.4)");
		copy_value(out->envid, pr->val, pr->vlen);
		return 0;
	case MAIL_AUTH:
		if (pr->vlen > SMTP_AUTH_PARAM_MAX || !smtp_xtext_valid(pr->val, pr->vlen))
			return fail(r, 501, "5.5.4", "invalid AUTH value (RFC 4954 §5)");
		copy_value(out->auth, pr->val, pr->vlen);
		return 0;
	default:
		return fail(r, 555, "5.5.4", "unsupported MAIL parameter");
	}
}

int smtp_parse_mail(const char *arg, size_t len, unsigned ext, struct smtp_mail_args *out,
		    int *code_r, const char **enh_r, const char **error_r)
{
	const struct reply r = { code_r, enh_r, error_r };
	const char *p = arg, *end = len > 0 ? arg + len : arg, *error;
	enum smtp_address_error reason;
	unsigned flags = SMTP_ADDRESS_ALLOW_NULL, seen = 0;
	struct param pr;
	size_t n;
	int ret;

	memset(out, 0, sizeof(*out));
	if (len < 5 || strncasecmp(arg, "FROM:", 5) != 0)
		return fail(&r, 501, "5.5.4", "syntax: MAIL FROM:<address> [parameters]");
	p += 5;
	if (p < end && *p == ' ')
		p++;
	if ((ext & SMTP_EXT_SMTPUTF8) != 0)
		flags |= SMTP_ADDRESS_ALLOW_UTF8;
	if (smtp_address_parse_path(p, (size_t)(end - p), flags, &out->from, &n, &reason, &error) < 0)
		return fail_address(&r, reason, error, "5.1.7");
	p += n;

	while ((ret = next_param(&p, end, (ext & SMTP_EXT_SMTPUTF8) != 0, &pr)) > 0) {
		int idx = param_index(&pr, mail_param_names, MAIL_COUNT);

		/* RFC 5321 §4.1.1.11: unknown, or of an extension we did not offer. */
		if (idx < 0 || (ext & mail_param_ext[idx]) == 0)
			return fail(&r, 555, "5.5.4", "unsupported MAIL parameter");
		if ((seen & (1u << idx)) != 0)
			return fail(&r, 501, "5.5.4", "duplicate MAIL parameter");
		seen |= 1u << idx;
		if (mail_param(&r, idx, &pr, out) < 0)
			return -1;
	}
	if (ret < 0)
		return fail(&r, 501, "5.5.4", "syntax error in MAIL parameters");
	if (out->from.utf8 && !out->smtputf8)
		return fail(&r, 553, "5.6.7",
			    "non-ASCII sender address needs the SMTPUTF8 parameter (RFC 6531 §3.4)");
	return 0;
}

/* NOTIFY="NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ), RFC 3461 §4.1. */
static int parse_notify(const char *s, size_t len, unsigned *notify_r)
{
	static const char *const names[] = { "NEVER", "SUCCESS", "FAILURE", "DELAY" };
	unsigned notify = 0;
	size_t i = 0;

	while (i <= len) {
		size_t j = i;
		unsigned bit = 0;

		while (j < len && s[j] != ',')
			j++;
		for (unsigned k = 0; k < 4; k++) {
			if (word_eq(s + i, j - i, names[k]))
				bit = 1u << k;
		}
		if (bit == 0 || (notify & bit) != 0)
			return -1;
		notify |= bit;
		i = j + 1;
	}
	if ((notify & SMTP_NOTIFY_NEVER) != 0 && notify != SMTP_NOTIFY_NEVER)
		return -1;
	*notify_r = notify;
	return 0;
}

/* ORCPT=addr-type ";" xtext, RFC 3461 §4.2; addr-type is an atom. */
static int parse_orcpt(const char *s, size_t len, struct smtp_rcpt_args *out)
{
	const char *semi = memchr(s, ';', len);
	size_t tlen, alen;

	if (semi == NULL || len > SMTP_ORCPT_MAX)
		return -1;
	tlen = (size_t)(semi - s);
	alen = len - tlen - 1;
	if (tlen == 0 || alen == 0)
		return -1;
	for (size_t i = 0; i < tlen; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!is_alnum(ch) && (ch == '\0' || strchr("!#$%&'*+-/=?^_`{|}~", ch) == NULL))
			return -1;
	}
	if (xtext_scan(semi + 1, alen, NULL, 0, NULL, true) < 0)
		return -1;
	copy_value(out->orcpt_type, s, tlen);
	copy_value(out->orcpt_addr, semi + 1, alen);
	return 0;
}

enum { RCPT_NOTIFY, RCPT_ORCPT, RCPT_COUNT };
static const char *const rcpt_param_names[RCPT_COUNT] = { "NOTIFY", "ORCPT" };

int smtp_parse_rcpt(const char *arg, size_t len, unsigned ext, struct smtp_rcpt_args *out,
		    int *code_r, const char **enh_r, const char **error_r)
{
	const struct reply r = { code_r, enh_r, error_r };
	const char *p = arg, *end = len > 0 ? arg + len : arg, *error;
	enum smtp_address_error reason;
	unsigned flags = SMTP_ADDRESS_ALLOW_POSTMASTER, seen = 0;
	struct param pr;
	size_t n;
	int ret;

	memset(out, 0, sizeof(*out));
	if (len < 3 || strncasecmp(arg, "TO:", 3) != 0)
		return fail(&r, 501, "5.5.4", "syntax: RCPT TO:<address> [parameters]");
	p += 3;
	if (p < end && *p == ' ')
		p++;
	if ((ext & SMTP_EXT_SMTPUTF8) != 0)
		flags |= SMTP_ADDRESS_ALLOW_UTF8;
	if (smtp_address_parse_path(p, (size_t)(end - p), flags, &out->to, &n, &reason, &error) < 0)
		return fail_address(&r, reason, error, "5.1.3");
	p += n;

	while ((ret = next_param(&p, end, (ext & SMTP_EXT_SMTPUTF8) != 0, &pr)) > 0) {
		int idx = param_index(&pr, rcpt_param_names, RCPT_COUNT);

		if (idx < 0 || (ext & SMTP_EXT_DSN) == 0)
			return fail(&r, 555, "5.5.4", "unsupported RCPT parameter");
		if ((seen & (1u << idx)) != 0)
			return fail(&r, 501, "5.5.4", "duplicate RCPT parameter");
		seen |= 1u << idx;
		if (pr.val == NULL)
			return fail(&r, 501, "5.5.4", "RCPT parameter needs a value");
		if (idx == RCPT_NOTIFY && parse_notify(pr.val, pr.vlen, &out->notify) < 0)
			return fail(&r, 501, "5.5.4", "invalid NOTIFY value (RFC 3461 §4.1)");
		if (idx == RCPT_ORCPT && parse_orcpt(pr.val, pr.vlen, out) < 0)
			return fail(&r, 501, "5.5.4", "invalid ORCPT value (RFC 3461 §4.2)");
	}
	if (ret < 0)
		return fail(&r, 501, "5.5.4", "syntax error in RCPT parameters");
	return 0;
}

int smtp_parse_bdat(const char *arg, size_t len, uint64_t *size_r, bool *last_r,
		    const char **error_r)
{
	size_t digits = 0;

	while (digits < len && arg[digits] >= '0' && arg[digits] <= '9')
		digits++;
	if (digits == 0) {
		*error_r = "syntax: BDAT <chunk-size> [LAST]";
		return -1;
	}
	if (parse_u64(arg, digits, size_r) < 0) {
		*error_r = "BDAT chunk size too large";
		return -1;
	}
	if (digits == len) {
		*last_r = false;
		return 0;
	}
	/* RFC 3030 §3: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] */
	if (len - digits == 5 && arg[digits] == ' ' && strncasecmp(arg + digits + 1, "LAST", 4) == 0) {
		*last_r = true;
		return 0;
	}
	*error_r = "syntax: BDAT <chunk-size> [LAST]";
	return -1;
}
