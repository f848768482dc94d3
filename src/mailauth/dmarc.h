/*
 * dmarc — Domain-based Message Authentication, Reporting and Conformance
 * (RFC 7489): the record, the author's domain, the organisational domain, the
 * alignment of SPF and DKIM results with it, and the policy to apply.
 *
 * No I/O: the record is found through a dns_view (dns.h), stepping the check
 * like the others; the organisational domain comes from the Public Suffix List
 * (libpsl, reading Debian's publicsuffix file).
 */
#ifndef RAMPART_MAILAUTH_DMARC_H
#define RAMPART_MAILAUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "dns/dns.h"

enum dmarc_policy {
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};
const char *dmarc_policy_name(enum dmarc_policy p);  /* "none", "quarantine", "reject" */

/* RFC 7489 §6.3, with RFC 8601 §2.7 result names. */
enum dmarc_result {
	DMARC_RESULT_NONE,       /* no record for the author's domain or its organisation,
	                          * or several (§6.6.3 step 5) */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR,  /* no usable From: domain, or a malformed record (§11.2) */
};
const char *dmarc_result_name(enum dmarc_result r);

struct dmarc_record {
	enum dmarc_policy p, sp;      /* sp = p when absent (§6.3) */
	bool adkim_strict, aspf_strict;
	int pct;                      /* 0..100, 100 when absent */
	char rua[512], ruf[512];      /* as written ("" when absent) */
};
/* Parses a TXT record (RFC 7489 §6.3, §6.4). Returns 0, or -1 with a sentence
 * (no v=DMARC1 first, no p=, a bad value) — then the record is to be ignored.
 * A missing or bad p=, or a bad sp=, with a valid rua= URI gives p = sp = none
 * instead (§6.6.3 step 6). Unknown tags are ignored; tag names and keyword
 * values are case-insensitive, "DMARC1" is not. */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r,
    const char **error_r);
/* Whether a TXT record starts with the v=DMARC1 tag (§6.6.3 steps 2 and 4: the
 * records that count, valid or not, when choosing the one record). */
bool dmarc_record_is_dmarc(const char *txt, size_t len);

/*
 * The RFC5322.From domain of a header section (CRLF line ends, as received):
 * RFC 7489 §6.6.1. Returns 1 with the domain (lower case) in domain[size];
 * 0 when there is no From: field or it has no domain; -1 when it cannot be
 * decided (several From: fields, several addresses with different domains,
 * unparseable): a receiver may reject such a message.
 */
int dmarc_from_domain(const char *headers, size_t len, char *domain, size_t size,
    const char **error_r);

/* The Public Suffix List. path NULL = Debian's publicsuffix package
 * (/usr/share/publicsuffix/public_suffix_list.dafsa, else .dat), else libpsl's
 * newest or built-in copy; a path given that cannot be read is an error. */
struct dmarc_psl;
struct dmarc_psl *dmarc_psl_load(const char *path, const char **error_r);
void dmarc_psl_free(struct dmarc_psl **psl);
/* The organisational domain of domain (RFC 7489 §3.2), lower case, into buf;
 * a public suffix is its own. NULL when domain is no valid name or buf too small. */
const char *dmarc_org_domain(const struct dmarc_psl *psl, const char *domain, char *buf,
    size_t size);
/* Whether auth_domain (SPF or DKIM d=) is aligned with from_domain (§3.1):
 * strict = the same name, relaxed = the same Organizational Domain. Names are
 * compared without ASCII case; one final dot is ignored; empty labels never align. */
bool dmarc_aligned(const struct dmarc_psl *psl, const char *from_domain,
    const char *auth_domain, bool strict);

/* What the other checks found, for alignment (§3.1). */
struct dmarc_input {
	const char *from_domain;
	bool spf_pass;                 /* SPF result was pass ... */
	const char *spf_domain;        /* ... for this domain (MAIL FROM or HELO) */
	const char *const *dkim_pass_domains;  /* d= of each passing DKIM signature */
	size_t ndkim;
	int sample;                    /* 0..99 for pct (§6.6.4); -1 = random */
};

struct dmarc_check;
/* Copies what in points to; psl is borrowed (must outlive the check). NULL when
 * memory runs out. The pct sample (-1) is drawn here, once. */
struct dmarc_check *dmarc_check_new(const struct dmarc_psl *psl, const struct dmarc_input *in);
/* A dns_step_fn (arg is the struct dmarc_check *): looks up _dmarc.FROM, then
 * _dmarc.ORG when needed (§6.6.3). */
int dmarc_check_step(struct dns_view *v, void *check);
enum dmarc_result dmarc_check_result(const struct dmarc_check *c);
/* The policy the record asks for this message (p, or sp for a subdomain), for
 * pass and fail alike; NONE when no record was used. */
enum dmarc_policy dmarc_check_policy(const struct dmarc_check *c);
/* What to do after pct sampling (§6.6.4): policy, or one step down when the
 * message fell outside pct (reject -> quarantine -> none). NONE unless fail. */
enum dmarc_policy dmarc_check_disposition(const struct dmarc_check *c);
/* The From: domain as given, ASCII lower-cased ("" when NULL or over 253 octets). */
const char *dmarc_check_from_domain(const struct dmarc_check *c);
const char *dmarc_check_reason(const struct dmarc_check *c);   /* for logs/comments */
void dmarc_check_free(struct dmarc_check **c);

#endif
