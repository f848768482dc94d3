/*
 * dmarc — the DMARC check (RFC 7489 §6.6): policy discovery through a dns_view,
 * identifier alignment, and the policy and disposition for the message.
 *
 * The check is a dns_step_fn: each step asks the view for _dmarc.FROM (then
 * _dmarc.ORG, §6.6.3 step 3) and returns 0 while an answer is missing. What is
 * decided is kept, so a step that is called again only continues; given the
 * same answers it always reaches the same result.
 *
 * Results (RFC 7489 §11.2, RFC 8601 §2.7.x), and the choices behind them:
 *   none      no DMARC record at FROM or ORG, or several (§6.6.3 step 5: "DMARC
 *             processing is not applied");
 *   pass      an aligned SPF pass or an aligned DKIM pass (§4.2);
 *   fail      a record, and neither aligns;
 *   temperror the lookup failed transiently (TEMPFAIL, or DNSSEC bogus):
 *             §6.6.3 leaves DNS errors to the receiver, and retrying may give
 *             a definite answer;
 *   permerror no usable From: domain (absent, or not a valid DNS name, or
 *             one that _dmarc. makes too long: FORMERR), or the one DMARC
 *             record is malformed and cannot be rescued by §6.6.3 step 6 —
 *             §11.2 names "a syntactically incorrect DMARC record" as the
 *             example of permerror.
 * Only fail carries a policy; pct sampling (§6.6.4) lowers the disposition of
 * messages outside the sample by one step.
 */
#include "mailauth/dmarc.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN_MAX 253

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	}
	return "none";
}

const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE: return "none";
	case DMARC_RESULT_PASS: return "pass";
	case DMARC_RESULT_FAIL: return "fail";
	case DMARC_RESULT_TEMPERROR: return "temperror";
	case DMARC_RESULT_PERMERROR: return "permerror";
	}
	return "permerror";
}

enum stage { STAGE_FROM, STAGE_ORG, STAGE_DONE };

struct dmarc_check {
	const struct dmarc_psl *psl;
	enum stage stage;
	bool from_ok;
	char from[DOMAIN_MAX + 1], org[DOMAIN_MAX + 1];
	bool spf_pass;
	char *spf_domain;
	char **dkim;
	size_t ndkim;
	int sample;
	/* the outcome */
	enum dmarc_result result;
	enum dmarc_policy policy, disposition;
	const char *reason;
};

/* A From: domain DMARC can look up: 1..253 octets, labels of 1..63. */
static bool domain_usable(const char *d)
{
	return dns_name_text_valid(d);
}

struct dmarc_check *dmarc_check_new(const struct dmarc_psl *psl, const struct dmarc_input *in)
{
	struct dmarc_check *c = calloc(1, sizeof(*c));

	assert(in->sample >= -1 && in->sample <= 99);
	if (c == NULL)
		return NULL;
	c->psl = psl;
	c->spf_pass = in->spf_pass;
	/* §6.6.4: decide the sample once, so that steps are repeatable. */
	c->sample = in->sample >= 0 ? in->sample : (int)randombytes_uniform(100);
	if (in->from_domain != NULL && strlen(in->from_domain) < sizeof(c->from)) {
		for (size_t i = 0; in->from_domain[i] != '\0'; i++) {
			char ch = in->from_domain[i];
			c->from[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + ('a' - 'A')) : ch;
		}
		c->from_ok = domain_usable(c->from) &&
		    dmarc_org_domain(psl, c->from, c->org, sizeof(c->org)) != NULL;
	}
	if (in->spf_domain != NULL && (c->spf_domain = strdup(in->spf_domain)) == NULL)
		goto fail;
	if (in->ndkim > 0) {
		c->dkim = calloc(in->ndkim, sizeof(*c->dkim));
		if (c->dkim == NULL)
			goto fail;
		for (size_t i = 0; i < in->ndkim; i++) {
			c->dkim[i] = strdup(in->dkim_pass_domains[i] != NULL ?
			    in->dkim_pass_domains[i] : "");
			if (c->dkim[i] == NULL)
				goto fail;
			c->ndkim = i + 1;
		}
	}
	return c;
fail:
	dmarc_check_free(&c);
	return NULL;
}

void dmarc_check_free(struct dmarc_check **cp)
{
	struct dmarc_check *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->ndkim; i++)
		free(c->dkim[i]);
	free(c->dkim);
	free(c->spf_domain);
	free(c);
	*cp = NULL;
}

static void finish(struct dmarc_check *c, enum dmarc_result r, const char *reason)
{
	c->stage = STAGE_DONE;
	c->result = r;
	c->reason = reason;
}

/* §3.1, §4.2: pass when SPF passed for an aligned domain or any passing DKIM
 * signature's d= is aligned; then the policy and its disposition. */
static void evaluate(struct dmarc_check *c, const struct dmarc_record *rec, bool at_org)
{
	bool pass = c->spf_pass && dmarc_aligned(c->psl, c->from, c->spf_domain,
	    rec->aspf_strict);

	for (size_t i = 0; !pass && i < c->ndkim; i++)
		pass = dmarc_aligned(c->psl, c->from, c->dkim[i], rec->adkim_strict);
	/* §6.3 sp: the record found at the Organizational Domain for a subdomain
	 * of it; a record found at the From: domain itself always gives p. */
	c->policy = at_org ? rec->sp : rec->p;
	if (pass) {
		finish(c, DMARC_RESULT_PASS, "aligned SPF or DKIM pass");
		return;
	}
	c->disposition = c->policy;
	if (c->sample >= rec->pct) {
		/* §6.6.4: outside the sample, reject becomes quarantine and
		 * quarantine becomes local classification (none). */
		if (c->policy == DMARC_POLICY_REJECT)
			c->disposition = DMARC_POLICY_QUARANTINE;
		else
			c->disposition = DMARC_POLICY_NONE;
	}
	finish(c, DMARC_RESULT_FAIL, "no aligned SPF or DKIM pass");
}

/* Looks up _dmarc.name; returns 0 when unanswered, 1 when the check is over,
 * 2 when no record was found there (go on). */
static int discover(struct dmarc_check *c, struct dns_view *v, const char *name, bool at_org)
{
	char qname[DOMAIN_MAX + 16];
	const struct dns_answer *a;
	const struct dns_rr *found = NULL;
	size_t nfound = 0;

	snprintf(qname, sizeof(qname), "_dmarc.%s", name);
	a = dns_view_lookup(v, qname, DNS_T_TXT);
	if (a == NULL)
		return 0;
	switch (a->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
		return 2;
	case DNS_TEMPFAIL:
	case DNS_BOGUS:
		finish(c, DMARC_RESULT_TEMPERROR, "the DMARC record lookup failed");
		return 1;
	case DNS_FORMERR:
		/* The name cannot be asked (e.g. _dmarc. makes it too long) or
		 * the answer is malformed: retrying will not help. */
		finish(c, DMARC_RESULT_PERMERROR, "the DMARC record could not be looked up");
		return 1;
	}
	/* §6.6.3 steps 2 and 4: keep only records that start with v=DMARC1. */
	for (size_t i = 0; i < a->n; i++) {
		const struct dns_rr *rr = &a->rr[i];
		if (rr->type == DNS_T_TXT && dmarc_record_is_dmarc(rr->u.txt.data, rr->u.txt.len)) {
			found = rr;
			nfound++;
		}
	}
	if (nfound == 0)
		return 2;
	if (nfound > 1) {
		finish(c, DMARC_RESULT_NONE, "several DMARC records were published");
		return 1;
	}
	struct dmarc_record rec;
	const char *error = NULL;
	if (dmarc_record_parse(found->u.txt.data, found->u.txt.len, &rec, &error) < 0) {
		finish(c, DMARC_RESULT_PERMERROR, error);
		return 1;
	}
	evaluate(c, &rec, at_org);
	return 1;
}

int dmarc_check_step(struct dns_view *v, void *arg)
{
	struct dmarc_check *c = arg;
	int r;

	if (c->stage == STAGE_DONE)
		return 1;
	if (!c->from_ok) {
		finish(c, DMARC_RESULT_PERMERROR, "no usable RFC5322.From domain");
		return 1;
	}
	if (c->stage == STAGE_FROM) {
		r = discover(c, v, c->from, false);
		if (r != 2)
			return r;
		/* §6.6.3 step 3: the Organizational Domain, if different. */
		if (strcmp(c->org, c->from) == 0) {
			finish(c, DMARC_RESULT_NONE, "no DMARC record");
			return 1;
		}
		c->stage = STAGE_ORG;
	}
	r = discover(c, v, c->org, true);
	if (r != 2)
		return r;
	finish(c, DMARC_RESULT_NONE, "no DMARC record");
	return 1;
}

enum dmarc_result dmarc_check_result(const struct dmarc_check *c)
{
	return c->stage == STAGE_DONE ? c->result : DMARC_RESULT_TEMPERROR;
}

enum dmarc_policy dmarc_check_policy(const struct dmarc_check *c)
{
	return c->stage == STAGE_DONE ? c->policy : DMARC_POLICY_NONE;
}

enum dmarc_policy dmarc_check_disposition(const struct dmarc_check *c)
{
	return c->stage == STAGE_DONE && c->result == DMARC_RESULT_FAIL ? c->disposition :
	    DMARC_POLICY_NONE;
}

const char *dmarc_check_from_domain(const struct dmarc_check *c)
{
	return c->from;
}

const char *dmarc_check_reason(const struct dmarc_check *c)
{
	return c->stage == STAGE_DONE ? c->reason : "the DMARC check has not finished";
}
