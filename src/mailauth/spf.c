/*
 * spf — check_host() of RFC 7208 §4, run as a resumable step against a view.
 *
 * Here: the check object and its inputs (§4.1, §4.3), the frames of
 * check_host() in progress (the top one, one per include:, redirect= replacing
 * its frame, §6.1), the record lookup and selection (§4.4, §4.5), the include
 * result table (§5.2), the result of a record that nothing matched (§4.7), and
 * the explanation of a fail (§6.2). The mechanisms are in spf-eval.c.
 */
#include "mailauth/spf-private.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *
spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_RESULT_NONE: return "none";
	case SPF_RESULT_NEUTRAL: return "neutral";
	case SPF_RESULT_PASS: return "pass";
	case SPF_RESULT_FAIL: return "fail";
	case SPF_RESULT_SOFTFAIL: return "softfail";
	case SPF_RESULT_TEMPERROR: return "temperror";
	case SPF_RESULT_PERMERROR: return "permerror";
	}
	return "permerror";
}

/* ---------------------------------------------------------------- the check */

static int
parse_ip(struct spf_check *c, const char *ip)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const char hex[] = "0123456789ABCDEF";

	if (ip == NULL)
		return -1;
	if (inet_pton(AF_INET, ip, c->ip) == 1) {
		c->family = 4;
	} else if (inet_pton(AF_INET6, ip, c->ip) == 1) {
		c->family = 6;
		if (memcmp(c->ip, mapped, sizeof(mapped)) == 0) {  /* RFC 7208 §5 */
			memmove(c->ip, c->ip + 12, 4);
			memset(c->ip + 4, 0, 12);
			c->family = 4;
		}
	} else {
		return -1;
	}
	inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->ip, c->ip_text, sizeof(c->ip_text));
	if (c->family == 4) {
		snprintf(c->ip_dotted, sizeof(c->ip_dotted), "%s", c->ip_text);
	} else {
		/* §7.3: "i" of an IPv6 address is its 32 nibbles, dot-separated. */
		size_t n = 0;
		for (int i = 0; i < 16; i++) {
			c->ip_dotted[n++] = hex[c->ip[i] >> 4];
			c->ip_dotted[n++] = '.';
			c->ip_dotted[n++] = hex[c->ip[i] & 15];
			c->ip_dotted[n++] = i < 15 ? '.' : '\0';
		}
	}
	return 0;
}

static char *
lower_copy(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p != NULL && *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return d;
}

/* §4.1, §4.3: <sender> as local-part "@" domain; no local-part = "postmaster". */
static struct spf_check *
check_new(const char *ip, const char *helo, const char *sender, const char *receiver,
    const char **error_r)
{
	struct spf_check *c = calloc(1, sizeof(*c));
	const char *at;

	if (c == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	if (parse_ip(c, ip) < 0) {
		free(c);
		*error_r = "the client address is not an IPv4 or IPv6 address";
		return NULL;
	}
	helo = helo != NULL ? helo : "";
	if (sender == NULL || sender[0] == '\0')
		sender = helo;
	/* The last "@": a quoted local-part may hold one (RFC 5321 §4.1.2). */
	at = strrchr(sender, '@');
	const char *dom = at != NULL ? at + 1 : sender;
	size_t dlen = strlen(dom);
	if (dlen > 0 && dom[dlen - 1] == '.')   /* an absolute name; DNS names here have no final dot */
		dlen--;
	c->domain = strndup(dom, dlen);
	c->local = at != NULL && at != sender ? strndup(sender, (size_t)(at - sender)) :
	    strdup("postmaster");
	c->helo = strdup(helo);
	c->receiver = strdup(receiver != NULL && receiver[0] != '\0' ? receiver : "unknown");
	if (c->domain != NULL && c->local != NULL) {
		size_t n = strlen(c->local) + strlen(c->domain) + 2;
		if ((c->identity = malloc(n)) != NULL)
			snprintf(c->identity, n, "%s@%s", c->local, c->domain);
		c->domain_lc = lower_copy(c->domain);
	}
	snprintf(c->timestamp, sizeof(c->timestamp), "%lld", (long long)time(NULL));
	if (c->identity == NULL || c->domain_lc == NULL || c->helo == NULL || c->receiver == NULL) {
		spf_check_free(&c);
		*error_r = "out of memory";
		return NULL;
	}
	c->result = SPF_RESULT_NONE;
	return c;
}

struct spf_check *
spf_check_new_mailfrom(const char *ip, const char *helo, const char *sender,
    const char *receiver, const char **error_r)
{
	return check_new(ip, helo, sender, receiver, error_r);
}

struct spf_check *
spf_check_new_helo(const char *ip, const char *helo, const char *receiver, const char **error_r)
{
	return check_new(ip, helo, NULL, receiver, error_r);
}

/* Replaces every octet outside printable ASCII with "?". */
static void
make_printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

void
spf_finish(struct spf_check *c, enum spf_result r, const char *fmt, ...)
{
	va_list ap;

	c->result = r;
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	/* Names in it may come from the peer (HELO, MAIL FROM): logs and A-R
	 * comments get printable ASCII only. */
	make_printable(c->reason);
	/* §6.2: a fail of the top check_host() is explained; its frame stays. */
	c->state = r == SPF_RESULT_FAIL && c->depth > 0 ? SPF_ST_EXP : SPF_ST_DONE;
}

/* ---------------------------------------------------------------- frames */

/*
 * Frame top finished with r (a result of check_host() on its domain): at the
 * top it is the check's result; within an include it is mapped by §5.2 (and a
 * pass matches the include term, which may finish the frame below, and so on).
 */
static void
frame_done(struct spf_check *c, enum spf_result r, const char *reason)
{
	char why[SPF_REASON_MAX];

	snprintf(why, sizeof(why), "%s", reason);
	for (;;) {
		struct spf_frame *f = &c->frames[c->depth - 1];
		if (r == SPF_RESULT_NONE && f->redirected) {
			/* §6.1: a redirect= target without a record is a permerror. */
			snprintf(why, sizeof(why), "redirect=%.200s has no SPF record", f->domain);
			r = SPF_RESULT_PERMERROR;
		}
		if (c->depth == 1 || r == SPF_RESULT_TEMPERROR || r == SPF_RESULT_PERMERROR) {
			if (c->depth > 1) {
				/* The top frame's domain and record stay for the reason only. */
				c->depth = 1;
			}
			spf_finish(c, r, "%s", why);
			return;
		}
		char inner[SPF_DOMAIN_MAX + 1];
		snprintf(inner, sizeof(inner), "%s", f->domain);
		spf_record_free(&f->rec);
		c->depth--;
		struct spf_frame *p = &c->frames[c->depth - 1];
		const struct spf_term *t = &p->rec->terms[p->term];
		c->term_counted = false;
		switch (r) {
		case SPF_RESULT_PASS:
			/* §5.2: the include matches; its qualifier is the result of p. */
			snprintf(why, sizeof(why), "matched %.200s", t->text);
			r = t->qualifier;
			continue;
		case SPF_RESULT_NONE:
			snprintf(why, sizeof(why), "%.100s: %.100s has no SPF record (RFC 7208 section 5.2)",
			    t->text, inner);
			r = SPF_RESULT_PERMERROR;
			continue;
		default:    /* fail, softfail, neutral: no match */
			p->term++;
			return;
		}
	}
}

/* §4.4, §4.5: the one "v=spf1" TXT record of the frame's domain. Returns 1
 * when f->rec is set, 0 when waiting, -1 when the frame is finished. */
static int
frame_fetch(struct spf_check *c, struct dns_view *v, struct spf_frame *f)
{
	const struct dns_answer *a;
	const struct dns_rr *found = NULL;
	unsigned count = 0;
	const char *error;
	char why[SPF_REASON_MAX];

	if (!spf_name_valid(f->domain)) {
		snprintf(why, sizeof(why), "%.200s is not a valid domain name", f->domain);
		frame_done(c, SPF_RESULT_NONE, why);
		return -1;
	}
	if ((a = spf_lookup(v, f->domain, DNS_T_TXT)) == NULL)
		return 0;
	if (spf_answer_failed(a)) {
		spf_finish(c, SPF_RESULT_TEMPERROR, "DNS error looking up TXT %.200s: %.200s",
		    f->domain, a->why != NULL ? a->why : dns_status_name(a->status));
		return -1;
	}
	/* An include or redirect target without records is a void lookup too. */
	if (spf_answer_void(a) && (c->depth > 1 || f->redirected) && !spf_count_void(c))
		return -1;
	for (size_t i = 0; a->status == DNS_OK && i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];
		if (rr->type == DNS_T_TXT && spf_record_is_v1(rr->u.txt.data, rr->u.txt.len)) {
			found = rr;
			count++;
		}
	}
	if (count == 0) {
		snprintf(why, sizeof(why), "no SPF record at %.200s", f->domain);
		frame_done(c, SPF_RESULT_NONE, why);
		return -1;
	}
	if (count > 1) {
		spf_finish(c, SPF_RESULT_PERMERROR, "%u SPF records at %.200s (RFC 7208 section 4.5)",
		    count, f->domain);
		return -1;
	}
	if (spf_record_parse(found->u.txt.data, found->u.txt.len, &f->rec, &error) < 0) {
		spf_finish(c, SPF_RESULT_PERMERROR, "the SPF record of %.100s: %s", f->domain,
		    error);
		return -1;
	}
	return 1;
}

/* §6.1: nothing matched and the record has redirect=: check_host() on its
 * target replaces this frame. Returns 1 to go on, 0 pending, -1 finished. */
static int
frame_redirect(struct spf_check *c, struct dns_view *v, struct spf_frame *f)
{
	char target[SPF_MACRO_OUT];

	if (!c->term_counted) {
		c->term_counted = true;
		if (++c->terms > SPF_TERMS_LIMIT) {
			spf_finish(c, SPF_RESULT_PERMERROR, "more than %d DNS-querying terms "
			    "(RFC 7208 section 4.6.4) at redirect=%.100s", SPF_TERMS_LIMIT, f->rec->redirect);
			return -1;
		}
	}
	int r = spf_expand_domain(c, v, f, f->rec->redirect, SPF_MACRO_DOMAIN, target);
	if (r <= 0)
		return r;
	spf_record_free(&f->rec);
	spf_frame_set_domain(f, target);
	f->term = 0;
	f->redirected = true;
	c->term_counted = false;
	return 1;
}

/* Runs the top frame until it waits or the check finishes. 0: waiting. */
static int
run(struct spf_check *c, struct dns_view *v)
{
	while (c->state == SPF_ST_RUN) {
		struct spf_frame *f = &c->frames[c->depth - 1];
		if (f->rec == NULL) {
			int r = frame_fetch(c, v, f);
			if (r <= 0) {
				if (r == 0)
					return 0;
				continue;
			}
		}
		if (f->term == f->rec->nterms) {
			if (f->rec->redirect != NULL) {
				int r = frame_redirect(c, v, f);
				if (r == 0)
					return 0;
				continue;
			}
			/* §4.7: no match and no redirect= is neutral. */
			frame_done(c, SPF_RESULT_NEUTRAL, "no mechanism matched");
			continue;
		}
		const struct spf_term *t = &f->rec->terms[f->term];
		char why[SPF_REASON_MAX];
		switch (spf_eval_term(c, v, f, t)) {
		case SPF_EV_PENDING:
			return 0;
		case SPF_EV_MATCH:
			c->term_counted = false;
			snprintf(why, sizeof(why), "matched %.200s", t->text);
			frame_done(c, t->qualifier, why);
			break;
		case SPF_EV_NOMATCH:
			c->term_counted = false;
			f->term++;
			break;
		case SPF_EV_PUSHED:
		case SPF_EV_FINISHED:
			break;
		}
	}
	return 1;
}

/* ---------------------------------------------------------------- exp= */

static void
default_explanation(struct spf_check *c)
{
	char buf[SPF_EXPLANATION_MAX + 1];

	snprintf(buf, sizeof(buf), "domain of %.253s does not designate %s as permitted sender",
	    c->domain, c->ip_text);
	make_printable(buf);
	c->explanation = strdup(buf);
}

/* §6.2: the explanation of a fail. Any problem (a DNS error, no record or
 * several, a syntax error, non-ASCII text) means no exp= at all. 0: waiting. */
static int
explain(struct spf_check *c, struct dns_view *v)
{
	const struct spf_frame *f = &c->frames[0];
	char name[SPF_MACRO_OUT], text[SPF_MACRO_OUT];
	const struct dns_answer *a;
	const char *error;

	if (f->rec == NULL || f->rec->exp == NULL)
		goto fallback;
	int r = spf_expand_domain(c, v, f, f->rec->exp, SPF_MACRO_DOMAIN, name);
	if (r == 0)
		return 0;
	if (!spf_name_valid(name))
		goto fallback;
	if ((a = spf_lookup(v, name, DNS_T_TXT)) == NULL)
		return 0;
	if (a->status != DNS_OK || a->n != 1 || a->rr[0].type != DNS_T_TXT)
		goto fallback;
	const char *data = a->rr[0].u.txt.data;
	size_t len = a->rr[0].u.txt.len;
	if (len >= SPF_RECORD_MAX || spf_macro_check(data, len, SPF_MACRO_EXPLAIN, &error) < 0)
		goto fallback;
	if (spf_expand_domain(c, v, f, data, SPF_MACRO_EXPLAIN, text) == 0)
		return 0;
	/* The text was printable; the values of the letters (the sender's local
	 * part, the HELO name) may not be, and this goes into an SMTP reply. */
	make_printable(text);
	c->explanation = strdup(text);
	return 1;
fallback:
	default_explanation(c);
	return 1;
}

/* ---------------------------------------------------------------- the step */

int
spf_check_step(struct dns_view *v, void *arg)
{
	struct spf_check *c = arg;

	if (c->state == SPF_ST_START) {
		/* §4.3: a malformed or single-label domain, or an address literal,
		 * has no policy: "none" at once. */
		if (!spf_name_valid(c->domain) || strchr(c->domain, '.') == NULL ||
		    c->domain[0] == '[') {
			spf_finish(c, SPF_RESULT_NONE, "%.200s is not a valid domain name",
			    c->domain);
			return 1;
		}
		memset(&c->frames[0], 0, sizeof(c->frames[0]));
		spf_frame_set_domain(&c->frames[0], c->domain);
		c->depth = 1;
		c->state = SPF_ST_RUN;
	}
	if (c->state == SPF_ST_RUN && run(c, v) == 0)
		return 0;
	if (c->state == SPF_ST_EXP) {
		if (explain(c, v) == 0)
			return 0;
		c->state = SPF_ST_DONE;
	}
	return 1;
}

enum spf_result
spf_check_result(const struct spf_check *c)
{
	return c->result;
}

const char *
spf_check_domain(const struct spf_check *c)
{
	return c->domain_lc;
}

const char *
spf_check_identity(const struct spf_check *c)
{
	return c->identity;
}

const char *
spf_check_explanation(const struct spf_check *c)
{
	return c->result == SPF_RESULT_FAIL ? c->explanation : NULL;
}

const char *
spf_check_reason(const struct spf_check *c)
{
	return c->reason;
}

void
spf_check_free(struct spf_check **cp)
{
	struct spf_check *c = *cp;

	if (c == NULL)
		return;
	for (unsigned i = 0; i < SPF_DEPTH_MAX; i++)
		spf_record_free(&c->frames[i].rec);
	for (unsigned i = 0; i < c->nptr; i++)
		free(c->ptr_names[i]);
	free(c->identity);
	free(c->local);
	free(c->domain);
	free(c->domain_lc);
	free(c->helo);
	free(c->receiver);
	free(c->explanation);
	free(c);
	*cp = NULL;
}
