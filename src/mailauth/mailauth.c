/* mailauth — see mailauth.h: SPF + DKIM, then DMARC, then Authentication-Results. */
#include "mailauth/mailauth.h"
#include "mailauth/auth-results.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mailauth {
	char *mail_from, *helo, *authserv_id;
	const struct dmarc_psl *psl;
	int dmarc_sample;
	struct spf_check *spf;
	struct dkim_verify *dkim;
	bool spf_done, dkim_done, dmarc_started, done;
	/* DMARC (RFC 7489 §6.6.1): the author's domain, then the check. */
	int from_status;            /* 1 found, 0 none, -1 undecidable */
	const char *from_error;
	char from_domain[256];
	struct dmarc_check *dmarc;
	char summary[512];
};

struct mailauth *
mailauth_new(const struct mailauth_params *p, const char **error_r)
{
	struct mailauth *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	m->mail_from = strdup(p->mail_from);
	m->helo = strdup(p->helo);
	m->authserv_id = strdup(p->authserv_id);
	m->psl = p->psl;
	m->dmarc_sample = p->dmarc_sample;
	if (m->mail_from == NULL || m->helo == NULL || m->authserv_id == NULL) {
		*error_r = "out of memory";
		mailauth_free(&m);
		return NULL;
	}
	/* RFC 7208 §2.4: the MAIL FROM identity; for the null reverse-path,
	 * spf_check_new_mailfrom() checks postmaster@HELO. */
	m->spf = spf_check_new_mailfrom(p->ip, p->helo, p->mail_from, p->authserv_id, error_r);
	if (m->spf == NULL) {
		mailauth_free(&m);
		return NULL;
	}
	if ((m->dkim = dkim_verify_new_cached(p->now, p->keys)) == NULL) {
		*error_r = "out of memory";
		mailauth_free(&m);
		return NULL;
	}
	return m;
}

void
mailauth_feed(struct mailauth *m, const void *data, size_t len)
{
	dkim_verify_feed(m->dkim, data, len);
}

void
mailauth_finish(struct mailauth *m)
{
	dkim_verify_finish(m->dkim);
}

/* RFC 7489 §4.2: DMARC takes the SPF result for the MAIL FROM (or HELO) domain
 * and the d= of every passing DKIM signature. */
static int
dmarc_begin(struct mailauth *m)
{
	size_t hlen;
	const char *headers = dkim_verify_headers(m->dkim, &hlen);
	m->from_status = dmarc_from_domain(headers, hlen, m->from_domain,
	    sizeof(m->from_domain), &m->from_error);
	if (m->from_status != 1)
		return 0;
	size_t n = dkim_verify_count(m->dkim), npass = 0;
	const char **pass = calloc(n + 1, sizeof(*pass));
	if (pass == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct dkim_result *r = dkim_verify_result(m->dkim, i);
		if (r->status == DKIM_STATUS_PASS)
			pass[npass++] = r->domain;
	}
	struct dmarc_input in = {
		.from_domain = m->from_domain,
		.spf_pass = spf_check_result(m->spf) == SPF_RESULT_PASS,
		.spf_domain = spf_check_domain(m->spf),
		.dkim_pass_domains = pass,
		.ndkim = npass,
		.sample = m->dmarc_sample,
	};
	m->dmarc = dmarc_check_new(m->psl, &in);
	free(pass);
	return m->dmarc != NULL ? 0 : -1;
}

int
mailauth_step(struct dns_view *v, void *arg)
{
	struct mailauth *m = arg;
	if (m->done)
		return 1;
	if (!m->spf_done)
		m->spf_done = spf_check_step(v, m->spf) == 1;
	if (!m->dkim_done)
		m->dkim_done = dkim_verify_step(v, m->dkim) == 1;
	if (!m->spf_done || !m->dkim_done)
		return 0;
	if (!m->dmarc_started) {
		m->dmarc_started = true;
		if (dmarc_begin(m) < 0) {
			m->from_status = -1;
			m->from_error = "out of memory";
		}
	}
	if (m->dmarc != NULL && dmarc_check_step(v, m->dmarc) != 1)
		return 0;
	m->done = true;
	return 1;
}

enum mailauth_verdict
mailauth_verdict(const struct mailauth *m)
{
	if (m->dmarc == NULL || dmarc_check_result(m->dmarc) != DMARC_RESULT_FAIL)
		return MAILAUTH_ACCEPT;
	switch (dmarc_check_disposition(m->dmarc)) {
	case DMARC_POLICY_REJECT:
		return MAILAUTH_REJECT;
	case DMARC_POLICY_QUARANTINE:
		return MAILAUTH_QUARANTINE;
	case DMARC_POLICY_NONE:
		break;
	}
	return MAILAUTH_ACCEPT;
}

const char *
mailauth_dmarc_domain(const struct mailauth *m)
{
	return m->dmarc != NULL ? dmarc_check_from_domain(m->dmarc) : "";
}

/* An optional reason: NULL when there is nothing to say. */
static const char *
reason_or_null(const char *reason)
{
	return reason != NULL && reason[0] != '\0' ? reason : NULL;
}

static void
add_spf(const struct mailauth *m, struct auth_results *ar)
{
	enum spf_result r = spf_check_result(m->spf);
	const char *reason = r == SPF_RESULT_PASS ? NULL : reason_or_null(spf_check_reason(m->spf));
	/* RFC 8601 §2.7.2: smtp.mailfrom, or smtp.helo for the HELO identity. */
	if (m->mail_from[0] != '\0')
		auth_results_add(ar, "spf", spf_result_name(r), reason,
		    "smtp.mailfrom", m->mail_from, NULL);
	else
		auth_results_add(ar, "spf", spf_result_name(r), reason, "smtp.helo", m->helo, NULL);
}

static void
add_dkim(const struct mailauth *m, struct auth_results *ar)
{
	size_t n = dkim_verify_count(m->dkim);
	if (n == 0) {
		auth_results_add(ar, "dkim", "none", NULL, NULL);   /* RFC 8601 §2.7.1 */
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct dkim_result *r = dkim_verify_result(m->dkim, i);
		const char *reason = r->status == DKIM_STATUS_PASS ? NULL : reason_or_null(r->reason);
		if (r->domain[0] == '\0')
			auth_results_add(ar, "dkim", dkim_status_name(r->status), reason, NULL);
		else
			auth_results_add(ar, "dkim", dkim_status_name(r->status), reason,
			    "header.d", r->domain, "header.s", r->selector, "header.b", r->b, NULL);
	}
}

static void
add_dmarc(const struct mailauth *m, struct auth_results *ar)
{
	if (m->dmarc == NULL) {
		/* RFC 7489 §6.6.1: a message without exactly one author domain cannot
		 * be checked (receivers SHOULD reject it): permerror. */
		auth_results_add(ar, "dmarc", "permerror", m->from_status == 0 ? "no From: domain" :
		    reason_or_null(m->from_error), NULL);
		return;
	}
	enum dmarc_result r = dmarc_check_result(m->dmarc);
	char reason[128];
	const char *why = NULL;
	if (r == DMARC_RESULT_FAIL) {
		snprintf(reason, sizeof(reason), "p=%s dis=%s",
		    dmarc_policy_name(dmarc_check_policy(m->dmarc)),
		    dmarc_policy_name(dmarc_check_disposition(m->dmarc)));
		why = reason;
	} else if (r == DMARC_RESULT_TEMPERROR || r == DMARC_RESULT_PERMERROR) {
		why = reason_or_null(dmarc_check_reason(m->dmarc));
	}
	auth_results_add(ar, "dmarc", dmarc_result_name(r), why,
	    "header.from", dmarc_check_from_domain(m->dmarc), NULL);
}

char *
mailauth_auth_results(const struct mailauth *m)
{
	struct auth_results *ar = auth_results_new(m->authserv_id);
	if (ar == NULL)
		return NULL;
	add_spf(m, ar);
	add_dkim(m, ar);
	add_dmarc(m, ar);
	char *field = auth_results_format(ar);
	auth_results_free(&ar);
	return field;
}

const char *
mailauth_summary(struct mailauth *m)
{
	char dkim[256] = "";
	size_t n = dkim_verify_count(m->dkim);
	for (size_t i = 0; i < n && strlen(dkim) + 80 < sizeof(dkim); i++) {
		const struct dkim_result *r = dkim_verify_result(m->dkim, i);
		snprintf(dkim + strlen(dkim), sizeof(dkim) - strlen(dkim), "%s%s (%.64s)",
		    i > 0 ? "," : "", dkim_status_name(r->status), r->domain);
	}
	const char *dmarc = m->dmarc != NULL ? dmarc_result_name(dmarc_check_result(m->dmarc)) :
	    "permerror";
	snprintf(m->summary, sizeof(m->summary), "spf=%s dkim=%s dmarc=%s",
	    spf_result_name(spf_check_result(m->spf)), n > 0 ? dkim : "none", dmarc);
	if (m->dmarc != NULL && dmarc_check_result(m->dmarc) == DMARC_RESULT_FAIL)
		snprintf(m->summary + strlen(m->summary), sizeof(m->summary) - strlen(m->summary),
		    " (%s: p=%s dis=%s)", dmarc_check_from_domain(m->dmarc),
		    dmarc_policy_name(dmarc_check_policy(m->dmarc)),
		    dmarc_policy_name(dmarc_check_disposition(m->dmarc)));
	return m->summary;
}

void
mailauth_free(struct mailauth **mp)
{
	struct mailauth *m = *mp;
	if (m == NULL)
		return;
	*mp = NULL;
	spf_check_free(&m->spf);
	dkim_verify_free(&m->dkim);
	dmarc_check_free(&m->dmarc);
	free(m->mail_from);
	free(m->helo);
	free(m->authserv_id);
	free(m);
}
